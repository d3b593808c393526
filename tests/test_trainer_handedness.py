"""Mirrored 3D joints (SURREAL's reflecting camera) are detected and read depth-negated, and the
regressor can start from the training data's mean pose."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synthgen import store as synthstore
from synthgen.demo.body_model import write_smpl_model
from trainer.data import ClipDataset, open_stores, read_array, set_handedness
from trainer.handedness import measure_handedness
from trainer.joints import EVAL_JOINTS
from trainer.metrics import pa_mpjpe
from trainer.model import mean_params
from trainer.model.regressor import BETAS, CAMERA
from trainer.smpl import SMPLJoints
from trainer.synthetic import make_synthetic_store
from trainer.train import training_mean_params

FRAMES = 6


@pytest.fixture(scope="module")
def smpl(tmp_path_factory) -> SMPLJoints:
    return SMPLJoints.from_path(write_smpl_model(tmp_path_factory.mktemp("smpl")))


@pytest.fixture(scope="module")
def stores(tmp_path_factory, smpl) -> tuple[str, str]:
    """A proper store and the same store seen through a reflecting camera (x negated)."""
    root = tmp_path_factory.mktemp("stores")
    proper, mirrored = str(root / "proper.zarr"), str(root / "mirrored.zarr")
    for url in (proper, mirrored):
        make_synthetic_store(url, smpl, num_examples=4, num_frames=FRAMES, crop_size=32, seed=3)
    group = synthstore.open_group(mirrored, mode="r+")
    group["joints3d"][:] = np.asarray(group["joints3d"][:]) * np.float32([-1, 1, 1])
    return proper, mirrored


def _body_error_mm(smpl, url, joints3d) -> float:
    """Median PA-MPJPE (mm) of the SMPL joints of a store's pose and betas against joints3d."""
    group = synthstore.open_group(url)
    pose = torch.as_tensor(np.asarray(group["pose"][:]))
    betas = torch.as_tensor(np.asarray(group["betas"][:]))[:, None].expand(-1, FRAMES, -1)
    body = smpl(pose, betas)[..., EVAL_JOINTS, :]
    target = torch.as_tensor(joints3d)[..., EVAL_JOINTS, :]
    return float(pa_mpjpe(body * 1000, target * 1000).median())


def test_mirrored_joints_are_detected(stores, smpl):
    proper, mirrored = stores
    infos = open_stores([proper, mirrored])
    assert measure_handedness(proper, infos[0].examples, smpl).stored_mm < 1.0
    found = measure_handedness(mirrored, infos[1].examples, smpl)
    assert found.mirrored and found.flipped_mm < 1.0 and found.stored_mm > 20.0
    lines = []
    assert [s.mirrored for s in set_handedness(infos, smpl, log=lines.append)] == [False, True]
    assert len(lines) == 1 and mirrored in lines[0] and "depth-negated" in lines[0]


def test_mirrored_store_reads_as_the_smpl_body_with_the_same_projection(stores, smpl):
    proper, mirrored = stores
    infos = set_handedness(open_stores([mirrored]), smpl)
    stored = np.asarray(synthstore.open_group(mirrored)["joints3d"][:])
    # As stored, even the true pose and shape cannot match: a mirror image is no SMPL pose.
    assert _body_error_mm(smpl, mirrored, stored) > 20.0
    items = np.stack([np.zeros(4, np.int64), infos[0].examples], axis=1)
    dataset = ClipDataset(infos, items, clip_length=FRAMES, arrays=("joints3d",))
    read = np.stack([dataset[(i, 0)]["joints3d"] for i in range(4)])
    assert _body_error_mm(smpl, mirrored, read) < 1.0
    np.testing.assert_array_equal(read[..., :2], stored[..., :2])  # image direction unchanged
    np.testing.assert_array_equal(read_array(infos, items, "joints3d"), read)


def test_training_mean_params_average_the_stored_pose(stores, smpl):
    proper, _ = stores
    infos = open_stores([proper])
    items = np.stack([np.zeros(4, np.int64), infos[0].examples], axis=1)
    base = mean_params()
    theta = training_mean_params(infos, items, base=base)
    group = synthstore.open_group(proper)
    pose = np.asarray(group["pose"][:]).reshape(-1, 72)
    np.testing.assert_array_equal(theta[:3], base[:3])
    np.testing.assert_array_equal(theta[CAMERA], base[CAMERA])
    np.testing.assert_allclose(theta[BETAS], np.asarray(group["betas"][:]).mean(axis=0), atol=1e-6)
    # Rotations varying little about each joint's mean: close to the mean axis-angle.
    np.testing.assert_allclose(theta[3:72], pose[:, 3:].mean(axis=0), atol=0.05)
    assert np.abs(theta[3:72]).max() > 0.1  # the synthetic rest pose is not zero
