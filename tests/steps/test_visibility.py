"""Visibility bitmask: each reason alone and combined, on hand-made joints, masks and depth."""

from __future__ import annotations

import numpy as np

from synthgen.core.joints import COCO14
from synthgen.core.types import BACKGROUND_DEPTH
from synthgen.steps.visibility import (BEHIND_DEPTH, OCCLUDER, OUTSIDE_FRAME, TOTAL_OCCLUSION,
                                       behind_depth, covered_by_mask, joint_pixels, mean_visible,
                                       outside_frame, visibility_bitmask)

H, W = 240, 320


def test_bits_are_distinct_powers_of_two():
    assert [OUTSIDE_FRAME, OCCLUDER, TOTAL_OCCLUSION, BEHIND_DEPTH] == [1, 2, 4, 8]


def test_outside_frame_uses_the_joint_pixel():
    joints = np.array([[[-0.5, 10], [-0.51, 10], [319.49, 239.49], [319.5, 10], [5, 239.5],
                        [5, -3]]])
    assert outside_frame(joints, H, W).tolist() == [[False, True, False, True, True, True]]
    assert joint_pixels(joints)[0, 2].tolist() == [319, 239]


def test_covered_by_mask_reads_the_mask_at_the_joint_pixel():
    mask = np.zeros((2, H, W), bool)
    mask[1, 50:60, 100:110] = True
    joints = np.array([[[104.6, 55.2], [400, 55]], [[104.6, 55.2], [110.6, 55]]])
    # Frame 0 has no mask; (104.6, 55.2) -> pixel (105, 55) in frame 1; (110.6, 55) -> 111: out.
    assert covered_by_mask(joints, mask).tolist() == [[False, False], [True, False]]


def test_behind_depth_needs_the_margin():
    depth = np.full((1, H, W), BACKGROUND_DEPTH, np.float32)
    depth[0, 100, 200] = 3.0
    joints2d = np.array([[[200, 100], [200, 100], [200, 100], [10, 10], [-20, 10]]], float)
    z = np.array([[3.2, 3.19, 2.0, 50.0, 50.0]])
    joints3d = np.concatenate([np.zeros((1, 5, 2)), z[..., None]], -1)
    # 3.2 >= 3.0 + 0.2: behind; 3.19: not; in front: not; background depth: not; outside: not.
    assert behind_depth(joints2d, joints3d, depth, margin_m=0.2).tolist() == [
        [True, False, False, False, False]]


def test_bitmask_combines_reasons():
    outside = np.array([[True, False, False, False], [True, False, False, False]])
    occluded = np.array([[False, True, False, True], [False, False, False, True]])
    behind = np.array([[False, False, False, True], [False, False, True, False]])
    total = np.array([False, True])
    bits = visibility_bitmask(outside=outside, occluded=occluded, total_occlusion=total,
                              behind=behind)
    assert bits.dtype == np.uint8
    assert bits.tolist() == [[1, 2, 0, 2 | 8], [1 | 4, 4, 4 | 8, 2 | 4]]


def test_reasons_from_hand_made_scene():
    # One frame: an occluder square, a depth map with a body at 2 m, four joints.
    occluder = np.zeros((1, H, W), bool)
    occluder[0, 0:50, 0:50] = True
    depth = np.full((1, H, W), BACKGROUND_DEPTH, np.float32)
    depth[0, 100:200, 100:200] = 2.0
    joints2d = np.array([[[20, 20], [150, 150], [20, 20], [330, 20]]], float)
    joints3d = np.zeros((1, 4, 3))
    joints3d[0, :, 2] = [2.5, 2.5, 1.0, 2.5]
    bits = visibility_bitmask(outside=outside_frame(joints2d, H, W),
                              occluded=covered_by_mask(joints2d, occluder),
                              total_occlusion=np.array([True]),
                              behind=behind_depth(joints2d, joints3d, depth, margin_m=0.2))
    assert bits.tolist() == [[2 | 4, 8 | 4, 2 | 4, 1 | 4]]


def test_mean_visible_counts_coco14_only():
    hidden = np.zeros((2, 24), np.uint8)
    hidden[0, COCO14[:4]] = OCCLUDER
    hidden[1, :] = 0
    non_coco = np.setdiff1d(np.arange(24), COCO14)
    hidden[1, non_coco] = OUTSIDE_FRAME
    assert mean_visible(hidden) == (10 + 14) / 2
    assert mean_visible(hidden > 0) == 12.0
