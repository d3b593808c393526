"""Motion-compensated SLIC: superpixels follow a known camera pan only with the compensation."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data

from synthgen.steps.superpixels import motion_compensated_slic, position_channels


def panned_clip(num_frames: int, velocity, *, photo: str = "coffee", height: int = 240,
                width: int = 320):
    """A pan over a skimage.data photo with a known camera motion (areas off the photo are black).

    Returns frames (T, H, W, 3) uint8 and offsets (T, 2) in frame pixels, zero at T // 2: content
    at x in the centre frame is at x + offsets[t] in frame t.
    """
    source = getattr(skimage.data, photo)()
    offsets = np.outer(np.arange(num_frames) - num_frames // 2, velocity).astype(np.float64)
    x0, y0 = (source.shape[1] - width) // 2, (source.shape[0] - height) // 2
    frames = np.stack([
        cv2.warpAffine(source, np.array([[1.0, 0.0, dx - x0], [0.0, 1.0, dy - y0]]),
                       (width, height), flags=cv2.INTER_LINEAR)
        for dx, dy in offsets])
    return frames, offsets


def tracking_iou(labels: np.ndarray, offsets: np.ndarray, t: int, k: int) -> float:
    """Area-weighted mean IoU of each superpixel of frame t, moved by the camera motion from t to
    t+k, with the same superpixel in frame t+k (over the area both frames see)."""
    height, width = labels.shape[1:]
    dx, dy = np.round(offsets[t + k] - offsets[t]).astype(int)
    moved = labels[t, max(-dy, 0):height - max(dy, 0), max(-dx, 0):width - max(dx, 0)]
    later = labels[t + k, max(dy, 0):height - max(-dy, 0), max(dx, 0):width - max(-dx, 0)]
    ious, areas = [], []
    for label in np.unique(moved):
        a, b = moved == label, later == label
        ious.append(np.count_nonzero(a & b) / np.count_nonzero(a | b))
        areas.append(np.count_nonzero(a))
    return float(np.average(ious, weights=areas))


@pytest.fixture(scope="module")
def pan():
    return panned_clip(11, (3.0, 1.0))


def _ious(frames, offsets, *, compensated: bool, scale: float) -> np.ndarray:
    labels = motion_compensated_slic(frames, offsets if compensated else np.zeros_like(offsets),
                                     segments_per_frame=20, position_scale=scale,
                                     compactness=0.01)
    return np.array([tracking_iou(labels, offsets, 0, k) for k in range(1, 11)])


def test_position_channels_subtract_camera_motion():
    offsets = np.array([[0.0, 0.0], [2.0, -1.0]])
    channels = position_channels(offsets, 4, 5, scale=0.5)
    assert channels.shape == (2, 4, 5, 2) and channels.dtype == np.float32
    assert channels[1, 3, 4].tolist() == [(4 - 2.0) * 0.5, (3 + 1.0) * 0.5]
    # The content at (x, y) of frame 0 is at (x + 2, y - 1) in frame 1: same features.
    assert np.array_equal(channels[0, 1, 1], channels[1, 0, 3])


def test_slic_labels_are_consecutive_and_deterministic(pan):
    frames, offsets = pan[0][:3, :60, :80], pan[1][:3] - pan[1][1]
    first = motion_compensated_slic(frames, offsets, segments_per_frame=12,
                                    position_scale=5e-4, compactness=0.01)
    second = motion_compensated_slic(frames, offsets, segments_per_frame=12,
                                     position_scale=5e-4, compactness=0.01)
    assert first.shape == (3, 60, 80) and first.dtype == np.int32
    assert np.array_equal(first, second)
    assert np.array_equal(np.unique(first), np.arange(1, first.max() + 1))


def test_superpixels_follow_the_pan_only_with_compensation(pan):
    # At 10x the paper's position scale the position channels matter: with compensation every
    # superpixel of frame 0 moved by the camera motion matches itself in frame k (IoU >= 0.8 up to
    # k = 10; measured 0.92 .. 0.85); without it they stay in place and the content slides
    # through them (measured 0.78 .. 0.15).
    compensated = _ious(*pan, compensated=True, scale=5e-3)
    plain = _ious(*pan, compensated=False, scale=5e-3)
    assert np.all(compensated >= 0.8), compensated
    assert np.all(plain[4:] < 0.5), plain


def test_compensation_helps_at_the_paper_scale(pan):
    # At the paper's scale (5e-4) colour dominates and the compensation is a mild pull:
    # measured mean IoU over k = 1..10 about 0.70 with it, 0.64 without; at k = 10 0.59 vs 0.49.
    compensated = _ious(*pan, compensated=True, scale=5e-4)
    plain = _ious(*pan, compensated=False, scale=5e-4)
    assert compensated[-1] > plain[-1] + 0.05, (compensated, plain)
    assert compensated.mean() > plain.mean() + 0.03, (compensated, plain)
