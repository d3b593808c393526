"""The procedural SMPL-format body model: smplx loads it, and its outputs look human."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synthgen.demo.body_model import (
    NUM_VERTICES,
    build_body_model,
    pose_body,
    rodrigues,
    write_smpl_model,
)
from synthgen.core.joints import NUM_SMPL_JOINTS, SMPL_INDEX, SMPL_PARENTS

smplx = pytest.importorskip("smplx")


@pytest.fixture(scope="module")
def model():
    return build_body_model("neutral")


@pytest.fixture(scope="module")
def smpl_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("smpl")
    write_smpl_model(directory, gender="neutral")
    return directory


def winding_number(points, vertices, faces):
    """Generalised winding number of points (N, 3) w.r.t. a closed mesh (>= 1 inside)."""
    a, b, c = (vertices[faces[:, k]][None] - points[:, None] for k in range(3))
    la, lb, lc = (np.linalg.norm(x, axis=-1) for x in (a, b, c))
    det = np.einsum("nfk,nfk->nf", a, np.cross(b, c))
    dots = (la * lb * lc + np.einsum("nfk,nfk->nf", a, b) * lc + np.einsum("nfk,nfk->nf", b, c) * la
            + np.einsum("nfk,nfk->nf", c, a) * lb)
    return (2 * np.arctan2(det, dots)).sum(axis=1) / (4 * np.pi)


def _smplx_forward(layer, betas, pose):
    as_tensor = lambda x: torch.tensor(np.asarray(x)[None], dtype=torch.float32)  # noqa: E731
    with torch.no_grad():
        out = layer(betas=as_tensor(betas), global_orient=as_tensor(pose[:3]), body_pose=as_tensor(pose[3:]))
    return out.vertices[0].numpy().astype(np.float64), out.joints[0].numpy().astype(np.float64)


def test_smplx_loads_the_pkl_and_agrees_with_our_forward_pass(model, smpl_dir):
    layer = smplx.SMPL(model_path=str(smpl_dir), gender="neutral")
    rng = np.random.default_rng(3)
    for _ in range(3):
        betas = rng.normal(size=10)
        pose = rng.normal(scale=0.4, size=72)
        vertices, joints = _smplx_forward(layer, betas, pose)
        assert vertices.shape == (NUM_VERTICES, 3)
        ours_v, ours_j = pose_body(model, betas, pose[None])
        np.testing.assert_allclose(vertices, ours_v[0], atol=1e-4)
        np.testing.assert_allclose(joints[:NUM_SMPL_JOINTS], ours_j[0], atol=1e-4)
    # Unposed, the joints are the regressor applied to the shaped template.
    betas = rng.normal(size=10)
    _, joints = _smplx_forward(layer, betas, np.zeros(72))
    np.testing.assert_allclose(joints[:NUM_SMPL_JOINTS], model.rest_joints(betas), atol=1e-4)


def test_pickle_has_smpl_keys_and_shapes(smpl_dir):
    import pickle

    with open(smpl_dir / "SMPL_NEUTRAL.pkl", "rb") as f:
        data = pickle.load(f, encoding="latin1")
    assert data["v_template"].shape == (NUM_VERTICES, 3)
    assert data["shapedirs"].shape == (NUM_VERTICES, 3, 10)
    assert data["posedirs"].shape == (NUM_VERTICES, 3, 207)
    assert data["J_regressor"].shape == (NUM_SMPL_JOINTS, NUM_VERTICES)
    assert data["weights"].shape == (NUM_VERTICES, NUM_SMPL_JOINTS)
    assert data["kintree_table"].shape == (2, NUM_SMPL_JOINTS)
    assert list(data["kintree_table"][0, 1:]) == list(SMPL_PARENTS[1:])
    assert data["f"].shape[1] == 3 and data["f"].max() == NUM_VERTICES - 1
    assert all(type(v).__module__ in ("numpy", "builtins") for v in data.values())


def test_rest_pose_anatomy(model, smpl_dir):
    layer = smplx.SMPL(model_path=str(smpl_dir), gender="neutral")
    vertices, joints = _smplx_forward(layer, np.zeros(10), np.zeros(72))
    j = {name: joints[i] for name, i in SMPL_INDEX.items()}
    height = vertices[:, 1].max() - vertices[:, 1].min()
    assert 1.55 < height < 1.85
    assert 0.45 < j["head"][1] - j["pelvis"][1] < 0.75
    assert j["left_ankle"][1] < j["left_knee"][1] < j["left_hip"][1] < j["pelvis"][1]
    assert j["left_wrist"][0] > 0.5 and j["right_wrist"][0] < -0.5  # T-pose, left on +x
    span = vertices[:, 0].max() - vertices[:, 0].min()
    assert 0.85 < span / height < 1.1  # arm span about the stature
    # smplx's extra keypoints (vertex picks) sit on the matching anatomy.
    nose, left_big_toe, left_index = joints[24], joints[24 + 5], joints[24 + 11 + 1]
    assert nose[2] > j["head"][2] + 0.05 and abs(nose[0]) < 0.03
    assert np.linalg.norm(left_big_toe - j["left_foot"]) < 0.12 and left_big_toe[0] > 0
    assert np.linalg.norm(left_index - j["left_hand"]) < 0.12 and left_index[0] > j["left_hand"][0]


def test_joints_lie_inside_the_body_at_rest_and_posed(model):
    rng = np.random.default_rng(0)
    betas = rng.normal(size=10)
    pose = np.zeros((2, 72))
    pose[1] = rng.normal(scale=0.5, size=72)
    vertices, joints = pose_body(model, betas, pose)
    for v, j in zip(vertices, joints):
        assert winding_number(j, v, model.faces).min() > 0.5


def test_shape_directions_are_meaningful(model):
    heights = []
    for k in range(10):
        step = np.zeros(10)
        step[k] = 2.0
        delta = model.shaped(step) - model.v_template
        assert np.abs(delta).max() > 0.01, f"beta {k} barely changes the body"
        heights.append(np.ptp(model.shaped(step)[:, 1]) - np.ptp(model.v_template[:, 1]))
    assert heights[0] > 0.1  # beta 0: stature
    assert np.linalg.matrix_rank(model.shapedirs.reshape(-1, 10), tol=1e-6) == 10
    girth = np.zeros(10)
    girth[1] = 2.0
    waist = np.abs(model.v_template[:, 1] - model.rest_joints()[SMPL_INDEX["spine1"], 1]) < 0.02
    assert np.ptp(model.shaped(girth)[waist, 2]) > np.ptp(model.v_template[waist, 2]) + 0.02


def test_skinning_is_smooth_at_joints(model):
    assert np.allclose(model.weights.sum(axis=1), 1.0) and model.weights.min() >= 0
    assert np.allclose(model.J_regressor.sum(axis=1), 1.0)
    elbow = model.rest_joints()[SMPL_INDEX["left_elbow"]]
    near = np.linalg.norm(model.v_template - elbow, axis=1) < 0.05
    shared = model.weights[near][:, [SMPL_INDEX["left_shoulder"], SMPL_INDEX["left_elbow"]]]
    assert (shared.sum(axis=1) > 0.99).all() and (shared.max(axis=1) < 0.9).any()
    # Bending elbow and knee by 90 degrees deforms the blended capsules without tearing them.
    pose = np.zeros((1, 72))
    for name, rotvec in (("left_elbow", [0, -1.57, 0]), ("right_knee", [1.57, 0, 0])):
        pose[0, 3 * SMPL_INDEX[name]:3 * SMPL_INDEX[name] + 3] = rotvec
    posed, _ = pose_body(model, None, pose)
    edges = np.concatenate([model.faces[:, [0, 1]], model.faces[:, [1, 2]], model.faces[:, [2, 0]]])
    rest_len = np.linalg.norm(np.diff(model.v_template[edges], axis=1)[:, 0], axis=1)
    posed_len = np.linalg.norm(np.diff(posed[0][edges], axis=1)[:, 0], axis=1)
    stretch = posed_len / rest_len
    assert np.median(stretch) == pytest.approx(1.0) and stretch.max() < 2.5 and stretch.min() > 0.1


def test_every_part_has_faces_and_limbs_are_on_their_side(model):
    face_joint = model.face_joint
    assert np.bincount(face_joint, minlength=NUM_SMPL_JOINTS).min() > 50
    centre_x = model.v_template[model.faces].mean(axis=1)[:, 0]
    for name, i in SMPL_INDEX.items():  # (the inner thighs meet at the midline)
        if name.startswith("left_"):
            assert (centre_x[face_joint == i] > 0).mean() > 0.95, name
        if name.startswith("right_"):
            assert (centre_x[face_joint == i] < 0).mean() > 0.95, name


def test_genders_and_determinism():
    female, male = build_body_model("female"), build_body_model("male")
    assert np.ptp(female.v_template[:, 1]) < np.ptp(male.v_template[:, 1])
    again = build_body_model("female")
    assert np.array_equal(female.v_template, again.v_template)
    assert np.array_equal(female.shapedirs, again.shapedirs)
    with pytest.raises(ValueError, match="unknown gender"):
        build_body_model("other")


def test_rodrigues_matches_scipy():
    from scipy.spatial.transform import Rotation

    rotvecs = np.random.default_rng(1).normal(size=(20, 3))
    np.testing.assert_allclose(rodrigues(rotvecs), Rotation.from_rotvec(rotvecs).as_matrix(), atol=1e-12)
    np.testing.assert_allclose(rodrigues(np.zeros(3)), np.eye(3))
