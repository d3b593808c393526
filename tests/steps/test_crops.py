"""HMR crops: box from keypoints, crop transform round trip, image/keypoint agreement, pairs."""

from __future__ import annotations

import numpy as np

from synthgen.steps.crops import (boxes_from_keypoints, crop_frames, crop_image, crop_masks,
                                  crop_pairs, crop_to_frame, frame_to_crop)

S = 224


def _keypoints(centre, height, num_frames=1):
    joints = np.zeros((num_frames, 24, 2))
    joints[..., 0] = centre[0] + np.linspace(-20, 20, 24)
    joints[..., 1] = centre[1] + np.linspace(-height / 2, height / 2, 24)
    return joints


def test_box_centres_the_person_at_150_px():
    box = boxes_from_keypoints(_keypoints((160, 120), 100), size=S, person_height=150)[0]
    side = S * 100 / 150
    np.testing.assert_allclose(box, [160 - side / 2, 120 - side / 2, side])
    crop = frame_to_crop(_keypoints((160, 120), 100)[0], box, size=S)
    np.testing.assert_allclose(np.ptp(crop[:, 1]), 150)
    np.testing.assert_allclose((crop.min(0) + crop.max(0)) / 2, [S / 2, S / 2])


def test_crop_transform_round_trip():
    rng = np.random.default_rng(0)
    points = rng.uniform(-50, 400, size=(5, 24, 2))
    boxes = np.column_stack([rng.uniform(-30, 200, (5, 2)), rng.uniform(20, 400, 5)])
    crop = frame_to_crop(points, boxes, size=S)
    np.testing.assert_allclose(crop_to_frame(crop, boxes, size=S), points, atol=1e-9)
    np.testing.assert_allclose(crop[2, 3], (points[2, 3] - boxes[2, :2]) * S / boxes[2, 2])


def test_image_and_keypoints_agree_in_the_crop():
    frame = np.zeros((240, 320, 3), np.uint8)
    frame[150, 90] = 255  # a dot at frame pixel (x=90, y=150)
    box = np.array([40.0, 100.0, 112.0])  # 2x zoom
    crop = crop_image(frame, box, size=S)
    expected = frame_to_crop(np.array([[90.0, 150.0]]), box, size=S)[0]
    peak = np.unravel_index(np.argmax(crop[..., 0]), crop.shape[:2])
    np.testing.assert_allclose(peak[::-1], expected, atol=1.0)


def test_outside_the_frame_is_zero():
    frame = np.full((240, 320, 3), 200, np.uint8)
    crop = crop_image(frame, np.array([-100.0, -100.0, 224.0]), size=S)  # 1:1, corner off-frame
    assert np.all(crop[:99, :] == 0) and np.all(crop[:, :99] == 0)
    assert np.all(crop[101:, 101:] == 200)


def test_pairs_crop_both_frames_with_the_first_box():
    frames = np.zeros((3, 240, 320, 3), np.uint8)
    for t in range(3):
        frames[t, 100:140, 100 + 10 * t:140 + 10 * t] = 255  # a square moving 10 px/frame
    boxes = boxes_from_keypoints(np.stack([_keypoints((120 + 10 * t, 120), 80)[0]
                                           for t in range(3)]), size=S, person_height=150)
    pairs = crop_pairs(frames, boxes, size=S)
    crops = crop_frames(frames, boxes, size=S)
    assert pairs.shape == (2, 2, S, S, 3) and pairs.dtype == np.uint8
    np.testing.assert_array_equal(pairs[:, 0], crops[:2])
    for t in range(2):
        np.testing.assert_array_equal(pairs[t, 1], crop_image(frames[t + 1], boxes[t], size=S))
        # The square moved inside the fixed box, while in its own box it stays centred.
        assert not np.array_equal(pairs[t, 1], crops[t + 1])
        np.testing.assert_array_equal(crops[t + 1], crops[0])


def test_mask_crops_are_boolean_nearest():
    masks = np.zeros((1, 240, 320), bool)
    masks[0, 100:140, 100:140] = True
    crop = crop_masks(masks, np.array([[80.0, 80.0, 112.0]]), size=S)
    assert crop.dtype == bool and crop.shape == (1, S, S)
    # Frame pixels 100..139 (edges 99.5..139.5) land on crop 39..119: ties round either way.
    assert crop[0, 40:119, 40:119].all() and not crop[0, :38].any() and not crop[0, :, 121:].any()
    assert abs(int(crop.sum()) - 80 * 80) <= 2 * 80
