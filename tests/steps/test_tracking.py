"""Tracking: the person moves by a known sub-pixel offset, consistently in every channel."""

from __future__ import annotations

import numpy as np
import pytest

from synthgen.steps.tracking import BACKGROUND_DEPTH, shift_bilinear, shift_nearest, track_person
from synthgen.testing.made_inputs import synthetic_person


def test_shift_nearest_moves_by_the_rounded_offset():
    image = np.arange(6 * 7, dtype=np.int32).reshape(6, 7)
    out = shift_nearest(image, (2.4, -1.6), fill=-1)  # rounds to (2, -2)
    assert np.array_equal(out[:4, 2:], image[2:, :5])
    assert np.all(out[4:] == -1) and np.all(out[:, :2] == -1)
    assert np.array_equal(shift_nearest(image, (0.5, -0.5)), shift_nearest(image, (1, 0)))


def test_shift_bilinear_is_a_sub_pixel_translation():
    ys, xs = np.mgrid[:40, :50].astype(np.float32)
    ramp = 3 * xs + 2 * ys
    out = shift_bilinear(ramp, (2.25, -1.5))
    expected = 3 * (xs - 2.25) + 2 * (ys + 1.5)
    np.testing.assert_allclose(out[5:-5, 5:-5], expected[5:-5, 5:-5], atol=1e-3)
    assert np.all(out[:, :2] == 0)  # uncovered pixels are zero


def test_track_person_moves_every_channel_consistently():
    person = synthetic_person(3)
    offsets = np.array([[-4.3, 2.6], [0.0, 0.0], [7.75, -3.25]])
    tracked = track_person(person, offsets)
    expected = person.joints2d + offsets[:, None].astype(np.float32)
    np.testing.assert_array_equal(tracked.joints2d, expected)
    for t, (dx, dy) in enumerate(offsets):
        before, after = person.segm[t] > 0, tracked.segm[t] > 0
        # Masks and depth move by the rounded offset, exactly.
        centroid_shift = np.argwhere(after).mean(0) - np.argwhere(before).mean(0)
        np.testing.assert_allclose(centroid_shift, np.floor([dy + 0.5, dx + 0.5]), atol=1e-9)
        assert np.array_equal(tracked.depth[t] < BACKGROUND_DEPTH, after)
        # RGB moves by the exact sub-pixel offset (intensity-weighted centroid).
        weight_before = person.rgb[t].astype(float).sum(-1)
        weight_after = tracked.rgb[t].astype(float).sum(-1)
        grid = np.mgrid[:240, :320].reshape(2, -1)
        c0 = grid @ weight_before.ravel() / weight_before.sum()
        c1 = grid @ weight_after.ravel() / weight_after.sum()
        np.testing.assert_allclose(c1 - c0, [dy, dx], atol=0.05)
    # Joints still sit on their part after tracking.
    px = np.floor(tracked.joints2d + 0.5).astype(int)
    frames = np.arange(3)[:, None]
    assert np.all(tracked.segm[frames, px[..., 1], px[..., 0]] > 0)


def test_track_person_rejects_offsets_of_the_wrong_length():
    with pytest.raises(ValueError, match=r"offsets must have shape \(3, 2\)"):
        track_person(synthetic_person(3), np.zeros((2, 2)))
