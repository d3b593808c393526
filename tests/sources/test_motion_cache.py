"""Motion cache: computed once, reused, keyed by content and parameters, atomic, skips bad videos.

Accuracy on the demo backgrounds (known camera motion, moving objects) and on whip pans up to
28 px per frame (textured, low-texture, motion-blurred; against OpenCV's DIS) is checked through
the cache, i.e. on the window medians the pipeline actually uses.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import warnings

import cv2
import numpy as np
import pytest

from synthgen.config import CameraMotionConfig, ClipConfig
from synthgen.demo.backgrounds import (ground_truth_camera_motion, make_demo_backgrounds,
                                       make_fast_pan_videos)
from synthgen.build import motion as motion_build
from synthgen.sources import motion_cache
from synthgen.sources.kinetics import iter_resized_frames
from synthgen.steps.camera_motion import ESTIMATES, camera_motion, integrate_camera_motion

CFG = CameraMotionConfig()
CLIP = ClipConfig()


@pytest.fixture(scope="module")
def demo_videos(tmp_path_factory):
    return make_demo_backgrounds(tmp_path_factory.mktemp("kinetics"), seed=0, num_videos=6,
                                 num_frames=32)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def _counting_frames(calls):
    from synthgen.sources.kinetics import iter_resized_frames

    def frames(path):
        calls.append(path)
        return iter_resized_frames(path)
    return frames


# wide_coffee: a known limitation of median-of-TV-L1 camera motion, not of the demo (see
# synthgen/demo/backgrounds.py): while the camera pans, its two objects (a quarter of the window)
# sit almost still in the frame next to the flat coffee surface, and TV-L1 (scikit-image's too)
# gives that flat static region the objects' motion, so about half the window's flow is not the
# camera's for several frames. Cache version 4 (version 3 plus undetermined tiles averaged with
# DIS), on the three windows: per-frame error 0.08-0.10 px, drift 1.5-2.1 px over 31 frames
# (version 3: 0.09-0.10, 1.8-2.9; version 2: 0.08-0.13, 1.9-2.7); OpenCV DIS medium on the centre
# window: 0.09 px, 1.7 px.
_WIDE_COFFEE = pytest.param("wide_coffee", marks=pytest.mark.xfail(
    strict=True, reason="objects held still beside a textureless region drift the median (known limit)"))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["pan_tissue", "zoom_chelsea", _WIDE_COFFEE, "portrait_motorcycle",
                                  "fast_camera", "frames_coins"])
def test_demo_camera_motion_accuracy(demo_videos, cache_dir, name):
    video = next(v for v in demo_videos if v.stem == name)
    motion = motion_build.load_or_compute(video, cache_dir, cfg=CFG, clip=CLIP)
    height, width = motion.frame_shape
    for crop in {(0, 0), ((height - 240) // 2, (width - 320) // 2), (height - 240, width - 320)}:
        truth = ground_truth_camera_motion(video, crop_yx=crop)[:30]
        estimate = motion_build.pair_motion(motion, start=0, length=31, crop_yx=crop,
                                      inlier_radius=CFG.inlier_radius)
        per_frame_error = np.abs(estimate - truth).max(axis=1)
        drift = np.abs(integrate_camera_motion(estimate) - integrate_camera_motion(truth)).max()
        assert np.median(per_frame_error) <= 0.1, (name, crop)
        assert drift <= 1.0, (name, crop)


def test_computed_once_then_reused_and_recomputed_on_change(demo_videos, tmp_path):
    video = next(v for v in demo_videos if v.stem == "pan_tissue")
    calls = []
    first = motion_build.load_or_compute(video, tmp_path, cfg=CFG, clip=CLIP,
                                         frames_fn=_counting_frames(calls))
    assert first.num_frames == 32 and first.medians.shape[-1] == 2
    again = motion_build.load_or_compute(video, tmp_path, cfg=CFG, clip=CLIP,
                                         frames_fn=_counting_frames(calls))
    assert len(calls) == 1
    np.testing.assert_array_equal(first.medians, again.medians)
    assert first.estimate.shape == first.reliability.shape == (31,)
    np.testing.assert_array_equal(first.estimate, again.estimate)
    np.testing.assert_array_equal(first.reliability, again.reliability)
    assert ((first.reliability > 0.5) & (first.reliability <= 1)).all()
    # Same content, batching or read-time radius changed: still served from the cache.
    same = dataclasses.replace(CFG, batch_pairs=3, inlier_radius=1.0)
    motion_build.load_or_compute(video, tmp_path, cfg=same, clip=CLIP,
                                 frames_fn=_counting_frames(calls))
    assert len(calls) == 1
    # A flow parameter changed: recomputed under a new key.
    other = dataclasses.replace(CFG, num_warp=CFG.num_warp + 1)
    assert motion_cache.cache_file(tmp_path, video, other, CLIP) != \
        motion_cache.cache_file(tmp_path, video, CFG, CLIP)
    motion_build.load_or_compute(video, tmp_path, cfg=other, clip=CLIP,
                                 frames_fn=_counting_frames(calls))
    assert len(calls) == 2
    # The video changed (mtime): a new key, never the stale file.
    old_key = motion_cache.cache_key(video, CFG, CLIP)
    stat = video.stat()
    os.utime(video, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert motion_cache.cache_key(video, CFG, CLIP) != old_key
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".tmp"]


def test_batching_does_not_change_results(demo_videos):
    from synthgen.sources.kinetics import iter_resized_frames

    video = next(v for v in demo_videos if v.stem == "frames_coins")
    a = motion_build.compute_video_motion(iter_resized_frames(video), CFG)
    b = motion_build.compute_video_motion(iter_resized_frames(video),
                                          dataclasses.replace(CFG, batch_pairs=5))
    np.testing.assert_allclose(a.medians, b.medians, atol=1e-5)


def test_unreadable_cache_file_is_recomputed(demo_videos, tmp_path):
    video = next(v for v in demo_videos if v.stem == "frames_coins")
    file = motion_cache.cache_file(tmp_path, video, CFG, CLIP)
    file.write_bytes(b"truncated")
    assert motion_cache.load(file) is None
    motion = motion_build.load_or_compute(video, tmp_path, cfg=CFG, clip=CLIP)
    assert motion_cache.load(file) is not None and motion.num_frames == 32


def test_a_damaged_cache_file_is_recomputed_without_leaking_its_handle(demo_videos, tmp_path):
    video = next(v for v in demo_videos if v.stem == "frames_coins")
    file = motion_cache.cache_file(tmp_path, video, CFG, CLIP)
    motion = motion_build.load_or_compute(video, tmp_path, cfg=CFG, clip=CLIP)
    motion_cache.save(dataclasses.replace(motion, reliability=motion.reliability * np.inf), file)
    assert motion_cache.load(file) is None  # infinite values: computed again
    file.write_bytes(b"PK\x03\x04 not a whole zip")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert motion_cache.load(file) is None
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]


def test_short_stream_rejected():
    from synthgen.core.errors import ShortClipError

    with pytest.raises(ShortClipError, match="fewer than 2 frames"):
        motion_build.compute_video_motion([np.zeros((240, 320, 3), np.uint8)], CFG, path="one.mp4")


def test_window_outside_video_rejected(demo_videos, tmp_path):
    video = next(v for v in demo_videos if v.stem == "frames_coins")
    motion = motion_build.load_or_compute(video, tmp_path, cfg=CFG, clip=CLIP)
    with pytest.raises(ValueError, match="outside"):
        motion_build.pair_motion(motion, start=10, length=31, crop_yx=(0, 0), inlier_radius=0.5)


@pytest.mark.slow
def test_cli_motion_on_demo_data(demo_videos, tmp_path):
    from click.testing import CliRunner

    from synthgen.cli import main

    root = demo_videos[0].parent.parent
    fast = tmp_path / "fast.toml"  # coarse flow: this checks the command, not the accuracy
    fast.write_text("[camera_motion]\ndownscale = 4\nnum_warp = 1\nnum_iter = 4\nnum_levels = 2\n")
    cache = tmp_path / "cache"
    result = CliRunner().invoke(main, ["motion", "--kinetics", str(root), "--cache", str(cache),
                                       "--pipeline", str(fast), "--serial"])
    assert result.exit_code == 0, result.output
    assert "computed 6" in result.output
    assert len(list(cache.glob("*.npz"))) == 6


@pytest.fixture(scope="module")
def fast_pans(tmp_path_factory):
    return make_fast_pan_videos(tmp_path_factory.mktemp("fast"), seed=0, num_frames=32)


def _dis_motion(video, num_frames):
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in iter_resized_frames(video)][:num_frames]
    return np.stack([camera_motion(dis.calc(a, b, None), inlier_radius=CFG.inlier_radius)
                     for a, b in zip(gray[:-1], gray[1:])])


@pytest.mark.parametrize("name, textured", [("whip_textured", True), ("whip_low_texture", False),
                                            ("whip_blurred", True)])
def test_fast_pan_recovered_and_not_worse_than_dis(fast_pans, tmp_path, name, textured):
    """Pans up to 28 px per frame: per-frame error <= 0.1 px on textured frames, and per-frame
    error and 31-frame drift not worse than OpenCV DIS (medium) on the same frames (measured, ours
    vs DIS: textured 0.016 / 0.14 px vs 0.048 / 0.57, low-texture 0.100 / 1.15 vs 0.732 / 11.2,
    blurred 0.025 / 0.18 vs 0.033 / 0.26)."""
    video = next(v for v in fast_pans if v.stem == name)
    motion = motion_build.load_or_compute(video, tmp_path, cfg=CFG, clip=CLIP)
    truth = ground_truth_camera_motion(video)[:30]
    assert np.abs(truth).max() >= 25
    ours = motion_build.pair_motion(motion, start=0, length=31, crop_yx=(0, 0), inlier_radius=CFG.inlier_radius)
    dis = _dis_motion(video, 31)

    def error_and_drift(estimate):
        per_frame = np.median(np.abs(estimate - truth).max(axis=1))
        return per_frame, np.abs(integrate_camera_motion(estimate) - integrate_camera_motion(truth)).max()

    (error, drift), (dis_error, dis_drift) = error_and_drift(ours), error_and_drift(dis)
    if textured:
        assert error <= 0.1 and drift <= 1.0
    assert error <= dis_error, (error, dis_error)
    assert drift <= dis_drift, (drift, dis_drift)
    assert {ESTIMATES[e] for e in motion.estimate} <= set(ESTIMATES)


def test_blurred_whip_pan_window_drifts_no_more_than_dis(tmp_path):
    """Frames 12-42 of a motion-blurred whip pan (seed 2; the pan ramps up, holds and turns
    back): ours drifts less than DIS (medium) over the 31 frames (measured 0.18 vs 0.32 px), and
    did not before the undetermined tiles were averaged with DIS (0.58 px)."""
    video = make_fast_pan_videos(tmp_path / "fast", seed=2, num_frames=43)[2]
    truth = ground_truth_camera_motion(video)[12:42]
    dis = _dis_motion(video, 43)[12:]

    def drift(cfg):
        motion = motion_build.load_or_compute(video, tmp_path / "cache", cfg=cfg, clip=CLIP)
        estimate = motion_build.pair_motion(motion, start=12, length=31, crop_yx=(0, 0),
                                            inlier_radius=cfg.inlier_radius)
        return np.abs(integrate_camera_motion(estimate) - integrate_camera_motion(truth)).max()

    dis_drift = np.abs(integrate_camera_motion(dis) - integrate_camera_motion(truth)).max()
    assert drift(CFG) <= dis_drift < drift(dataclasses.replace(CFG, blend_weak_tiles=False))
