"""Motion-compensated SLIC: ours reproduces scikit-image's, follows a known camera pan, and gives
the paper's 10-30 superpixels per frame on real and demo clips."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from synthgen.config import SuperpixelConfig
from synthgen.demo.backgrounds import ground_truth_camera_motion, make_demo_backgrounds
from synthgen.sources.kinetics import read_clip
from synthgen.steps.camera_motion import integrate_camera_motion
from synthgen.steps.superpixels import (TOLERANCE, calibrated_slic, motion_compensated_slic,
                                        position_channels, superpixels_per_frame)
from synthgen.testing.made_inputs import panned_clip
from synthgen.testing.superpixels import boundary_recall, tracking_iou, undersegmentation_error

PAPER = dict(position_scale=5e-4, compactness=0.01)
LIMITS = SuperpixelConfig().segments_per_frame  # the paper's 10..30 superpixels per image
#: Clip lengths of the paper's Table 3; the two long ones take ~10-40 s each on one busy core.
LENGTHS = [8, 16, pytest.param(31, marks=pytest.mark.slow),
           pytest.param(56, marks=pytest.mark.slow)]


def phase_correlation_offsets(frames: np.ndarray) -> np.ndarray:
    """Camera offsets (T, 2) of a real clip, frame pixels (x, y), 0 at T // 2: OpenCV's phase
    correlation of consecutive grey frames, integrated (independent of synthgen's estimator)."""
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY).astype(np.float64) for f in frames]
    window = cv2.createHanningWindow(grey[0].shape[::-1], cv2.CV_64F)
    pairs = [cv2.phaseCorrelate(a, b, window)[0] for a, b in zip(grey[:-1], grey[1:])]
    return integrate_camera_motion(np.array(pairs))


@pytest.fixture(scope="module")
def pan():
    return panned_clip(11, (3.0, 1.0))


@pytest.fixture(scope="module")
def fast_pan():
    return panned_clip(11, (12.0, 4.0))


def _check_counts(frames: np.ndarray, offsets: np.ndarray) -> None:
    """Both ends of the paper's range as targets: every frame holds 10..30 superpixels."""
    for target in LIMITS:
        result = calibrated_slic(frames, offsets, target=target, limits=LIMITS, **PAPER)
        counts = superpixels_per_frame(result.labels)
        assert np.array_equal(counts, result.per_frame)
        assert LIMITS[0] <= counts.min() and counts.max() <= LIMITS[1], (target, counts)


@pytest.mark.parametrize("length", LENGTHS)
def test_real_clip_holds_10_to_30_superpixels_per_frame(shared_data, length):
    # The arm-wrestling clip from frame 190 holds a whip pan of up to ~30 px per frame.
    video = shared_data / "videos" / "kinetics400_armwrestling.mp4"
    frames = read_clip(video, start=190, length=length).frames
    _check_counts(frames, phase_correlation_offsets(frames))


@pytest.fixture(scope="module")
def demo_video(tmp_path_factory):
    """The demo's pan_tissue background (240x320 at 30 fps, 56 frames) and its true offsets."""
    path = make_demo_backgrounds(tmp_path_factory.mktemp("backgrounds"), num_videos=1,
                                 num_frames=56)[0]
    return path, integrate_camera_motion(ground_truth_camera_motion(path))


@pytest.mark.parametrize("length", LENGTHS)
def test_demo_clip_holds_10_to_30_superpixels_per_frame(demo_video, length):
    path, offsets = demo_video
    frames = read_clip(path, start=0, length=length).frames
    _check_counts(frames, integrate_camera_motion(np.diff(offsets[:length], axis=0)))


def test_superpixels_per_frame_counts_labels_present_in_each_frame():
    labels = np.array([[[1, 1], [2, 2]], [[3, 3], [3, 3]], [[1, 5], [7, 2]]])
    assert superpixels_per_frame(labels).tolist() == [2, 1, 4]


def test_calibration_corrects_the_request_and_is_deterministic(pan):
    frames, offsets = pan
    first = calibrated_slic(frames, offsets, target=10, limits=LIMITS, **PAPER)
    again = calibrated_slic(frames, offsets, target=10, limits=LIMITS, **PAPER)
    assert np.array_equal(first.labels, again.labels) and first.requested == again.requested
    # The first request (10 / 0.6 = 17 centres per frame) yields 9 per frame on this pan, below
    # the paper's range, so SLIC ran again with other grids (measured: 3 calls, the last asking
    # for 16 gives 10 per frame: the count is not monotonic in the request).
    plain = superpixels_per_frame(motion_compensated_slic(frames, offsets, segments_per_frame=17,
                                                          **PAPER))
    assert plain.min() < LIMITS[0], plain
    assert first.tries > 1 and first.requested != 17, first
    assert LIMITS[0] <= first.per_frame.min() and first.per_frame.max() <= LIMITS[1]
    assert abs(first.per_frame.mean() - 10) <= TOLERANCE * 10


def _ious(frames, offsets, *, compensated: bool, **options) -> np.ndarray:
    labels = motion_compensated_slic(frames, offsets if compensated else np.zeros_like(offsets),
                                     segments_per_frame=20, **PAPER, **options)
    return np.array([tracking_iou(labels, offsets, 0, k) for k in range(1, 11)])


def test_position_channels_subtract_camera_motion():
    offsets = np.array([[0.0, 0.0], [2.0, -1.0]])
    channels = position_channels(offsets, 4, 5, scale=0.5)
    assert channels.shape == (2, 4, 5, 2) and channels.dtype == np.float32
    assert channels[1, 3, 4].tolist() == [(4 - 2.0) * 0.5, (3 + 1.0) * 0.5]
    # The content at (x, y) of frame 0 is at (x + 2, y - 1) in frame 1: same features.
    assert np.array_equal(channels[0, 1, 1], channels[1, 0, 3])


@pytest.mark.parametrize("method", ["synthgen", "skimage"])
def test_slic_labels_are_consecutive_and_deterministic(pan, method):
    frames, offsets = pan[0][:5, :90, :120], pan[1][:5] - pan[1][2]
    first = motion_compensated_slic(frames, offsets, segments_per_frame=12, method=method, **PAPER)
    second = motion_compensated_slic(frames, offsets, segments_per_frame=12, method=method,
                                     **PAPER)
    assert first.shape == (5, 90, 120) and first.dtype == np.int32
    assert np.array_equal(first, second)
    assert np.array_equal(np.unique(first), np.arange(1, first.max() + 1))
    # 12 centres per frame requested (one layer in t; the pan adds a column): one label per
    # frame-sized superpixel is a few, twice the centres would be too many.
    assert 5 <= first.max() <= 24, first.max()


def test_unknown_method_is_rejected(pan):
    with pytest.raises(ValueError, match="unknown SLIC method 'opencv'"):
        motion_compensated_slic(pan[0][:2], pan[1][:2], segments_per_frame=10, method="opencv",
                                **PAPER)


@pytest.fixture(scope="module")
def still_clip(pan):
    frames = pan[0][:6, 40:160, 60:220]
    return frames, np.zeros((6, 2)), motion_compensated_slic(
        frames, np.zeros((6, 2)), segments_per_frame=20, method="skimage", **PAPER)


def test_full_resolution_mode_reproduces_skimage(still_clip):
    # Same features, grid, windows, distance and connectivity pass: only float rounding differs
    # (measured 99.9 % identical labels on 11 x 240 x 320).
    frames, offsets, reference = still_clip
    labels = motion_compensated_slic(frames, offsets, segments_per_frame=20, downsample=1,
                                     **PAPER)
    assert np.mean(labels == reference) > 0.99


def test_default_mode_is_as_close_to_skimage_as_skimage_is_to_itself(still_clip):
    # SLIC at compactness 0.01 is colour clustering and chaotic: +-1 grey level of noise moves
    # scikit-image's own result by a boundary recall of ~0.98 / under-segmentation error ~0.04-0.14
    # on this clip. With 20 superpixels per frame there are few boundaries, and the coarse-to-fine
    # default lands at 0.79 / 0.25 here (bench_superpixels for 240 x 320); the bounds are those
    # values less a margin.
    frames, offsets, reference = still_clip
    labels = motion_compensated_slic(frames, offsets, segments_per_frame=20, **PAPER)
    recall = boundary_recall(labels, reference)
    error = undersegmentation_error(labels, reference)
    assert recall > 0.7 and error < 0.4, (recall, error)
    assert 0.8 < labels.max() / reference.max() < 1.25, (labels.max(), reference.max())


def test_superpixels_follow_the_pan_at_the_paper_scale(pan, fast_pan):
    # Issue criterion: superpixels of frame 0 moved by the known camera motion overlap themselves
    # in frame k with IoU >= 0.8 up to k = 10. At 20 per frame (~60 px wide, windows +-120 px)
    # colour alone follows a 3 px/frame pan (uncompensated: measured 0.96 .. 0.92), so the
    # compensation shows on a 12 px/frame pan: 1.00 throughout with it, 0.88 .. 0.65 without
    # (bench_superpixels).
    assert np.all(_ious(*pan, compensated=True) >= 0.8)
    compensated = _ious(*fast_pan, compensated=True)
    plain = _ious(*fast_pan, compensated=False)
    assert np.all(compensated >= 0.95), compensated
    assert plain[-1] < 0.75 and np.all(plain[4:] < compensated[4:] - 0.15), plain


def test_skimage_call_compensates_only_mildly(fast_pan):
    # The paper's off-the-shelf call at its scale: windows and connectivity stay in raw pixels, so
    # on the 12 px/frame pan colour blobs follow it little better than without the channels
    # (measured k = 10: 0.66 vs 0.62; ours 1.00) -- the reason for method="synthgen".
    compensated = _ious(*fast_pan, compensated=True, method="skimage")
    plain = _ious(*fast_pan, compensated=False, method="skimage")
    assert compensated[-1] < 0.8, compensated
    assert compensated[-1] >= plain[-1], (compensated, plain)
