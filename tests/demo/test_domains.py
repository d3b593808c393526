"""Demo appearance domains and motion sets: the sim-to-real proxy's train/test gap."""

from __future__ import annotations

import numpy as np
import pytest

from synthgen.demo.appearance import DOMAINS, check_domain, finish_frame, sample_betas, sample_look
from synthgen.demo.body_model import build_body_model
from synthgen.demo.dataset import make_demo_data
from synthgen.demo.motions import MOTION_KINDS, MOTION_SETS, make_motion, motion_set, sample_motion
from synthgen.demo.people import make_demo_people, render_demo_clip
from synthgen.core.joints import SMPL_INDEX
from synthgen.sources.mat import load_mat


@pytest.fixture(scope="module")
def models():
    return {g: build_body_model(g) for g in ("female", "male")}


def test_motion_sets_split_the_kinds():
    train, heldout = set(MOTION_SETS["train"]), set(MOTION_SETS["heldout"])
    assert len(MOTION_KINDS) > 9 and train and heldout
    assert not train & heldout
    assert train | heldout == set(MOTION_SETS["all"]) == set(MOTION_KINDS)
    with pytest.raises(ValueError, match="unknown motion set 'nope'.*heldout"):
        motion_set("nope")


def test_sampled_motions_stay_in_their_set_and_some_change_kind():
    heldout = set(MOTION_SETS["heldout"])
    seen_then = []
    for seed in range(12):
        motion = sample_motion(np.random.default_rng(seed), 60, kinds=MOTION_SETS["heldout"])
        assert motion.kind in heldout
        assert motion.params["then"] is None or motion.params["then"] in heldout - {motion.kind}
        seen_then.append(motion.params["then"])
        assert np.isfinite(motion.pose).all() and np.isfinite(motion.translation).all()
    assert any(t is not None for t in seen_then) and any(t is None for t in seen_then)


def test_a_transition_starts_as_one_kind_and_ends_as_another():
    # Find a draw that cross-fades; its first frames follow the first kind's curves and its last
    # frames the second's (up to the personal style's few-degree jitter).
    for seed in range(50):
        motion = sample_motion(np.random.default_rng(seed), 90, kind="squat", kinds=("squat", "arm_circles"))
        if motion.params["then"] is not None:
            break
    assert motion.params["then"] == "arm_circles"
    switch = motion.params["switch_frame"]
    assert 90 // 4 <= switch < 3 * 90 // 4
    # arm_circles raises the arms sideways (shoulders far from the hanging pose of a squat).
    shoulder = 3 * SMPL_INDEX["left_shoulder"]  # its axis-angle
    early = np.linalg.norm(motion.pose[:switch - 15, shoulder:shoulder + 3], axis=1)
    late = np.linalg.norm(motion.pose[switch + 15:, shoulder:shoulder + 3], axis=1)
    assert early.min() > 1.0  # squat: arm hangs (about 1.3 rad from the T-pose)
    assert late.mean() < early.mean() - 0.3


def test_time_warp_changes_the_timing_not_the_kind():
    plain = make_motion("walk", 60)
    warped = make_motion("walk", 60, time=(np.arange(60) / 30.0) ** 1.2)
    assert warped.pose.shape == plain.pose.shape
    np.testing.assert_allclose(warped.pose[0], plain.pose[0])
    assert np.abs(warped.pose[30:] - plain.pose[30:]).max() > 0.05


def test_domains_differ_in_shape_and_finish():
    assert DOMAINS == ("A", "B")
    with pytest.raises(ValueError, match="unknown appearance domain 'C'"):
        check_domain("C")
    rng = np.random.default_rng(0)
    a = np.stack([sample_betas("A", rng) for _ in range(50)])
    b = np.stack([sample_betas("B", rng) for _ in range(50)])
    assert np.abs(a).max() <= 2.5
    assert (b[:, [1, 7, 9]] >= 1.5).all() and (np.abs(b[:, 0]) >= 1.0).all()


def test_domain_b_looks_different_and_blurs_the_person(models):
    model = models["male"]
    a = sample_look("A", model.v_template, model.faces, model.face_joint, np.random.default_rng(3))
    b = sample_look("B", model.v_template, model.faces, model.face_joint, np.random.default_rng(3))
    assert a.blur_sigma == 0 and a.noise == 0 and b.blur_sigma > 0 and b.noise > 0
    assert not np.allclose(a.appearance.albedo, b.appearance.albedo)
    assert b.appearance.cloth.startswith("B ")
    image = np.zeros((40, 40, 3), np.uint8)
    image[:, 20:] = 255
    assert finish_frame(a, image, 0) is image
    soft = finish_frame(b, image, 0)
    assert np.array_equal(soft, finish_frame(b, image, 0))  # seeded noise: same bytes
    edge = soft[5:35, 18:23].astype(float).mean(axis=(0, 2))
    assert 10 < edge[1] < 245 and 10 < edge[2] < 245  # a hard edge became a ramp


def test_domain_b_clip_is_deterministic_and_sharp_edges_are_gone(models):
    kwargs = dict(num_frames=3, kind="lunge", domain="B", kinds=MOTION_SETS["heldout"])
    one = render_demo_clip(models, np.random.default_rng(9), **kwargs)
    two = render_demo_clip(models, np.random.default_rng(9), **kwargs)
    np.testing.assert_array_equal(one["arrays"]["rgb"], two["arrays"]["rgb"])
    assert one["info"]["demo_domain"] == "B"
    a = render_demo_clip(models, np.random.default_rng(9), num_frames=3, kind="lunge")
    # Blur: neighbouring pixels differ less in B than in A across the person's outline.
    def outline_step(clip):
        rgb, segm = clip["arrays"]["rgb"][0].astype(float), clip["arrays"]["segm"][0] > 0
        edge = segm[:, 1:] != segm[:, :-1]
        return np.abs(rgb[:, 1:] - rgb[:, :-1]).sum(axis=-1)[edge].mean()
    assert outline_step(one) < outline_step(a)


def test_make_demo_people_writes_domain_and_heldout_kinds(tmp_path):
    paths = make_demo_people(tmp_path, seed=1, num_clips=3, num_frames=4, domain="B", motions="heldout")
    heldout = set(MOTION_SETS["heldout"])
    for path in paths:
        info = load_mat(path.with_name(path.stem + "_info.mat"), ["demo_motion", "demo_domain"])
        assert str(np.asarray(info["demo_domain"]).ravel()[0]) == "B"
        kinds = str(np.asarray(info["demo_motion"]).ravel()[0]).split(">")
        assert set(kinds) <= heldout
    with pytest.raises(ValueError, match="unknown motion set"):
        make_demo_data(tmp_path / "bad", motions="everything")
    assert not (tmp_path / "bad").exists()
