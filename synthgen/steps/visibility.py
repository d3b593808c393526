"""Keypoint visibility with reasons (method step 8), as a uint8 bitmask per joint and frame.

A joint is hidden when its bitmask is non-zero; the bits say why:

- ``OUTSIDE_FRAME`` (1): its pixel lies outside the H x W frame;
- ``OCCLUDER`` (2): its pixel is covered by the occluding superpixel;
- ``TOTAL_OCCLUSION`` (4): the frame is totally occluded;
- ``BEHIND_DEPTH`` (8): its camera z is at least ``margin_m`` behind the person's depth map at its
  pixel (a limb behind the body).

A joint's pixel is its frame position (x, y) rounded half up, integer values being pixel centres.
Joints outside the frame get no occluder or depth bit (there is no pixel to look at). Training-time
randomisation (unhiding legs, random flips) is not applied here: it belongs to the trainer.
"""

from __future__ import annotations

import numpy as np

from synthgen.core.joints import COCO14

OUTSIDE_FRAME = np.uint8(1)
OCCLUDER = np.uint8(2)
TOTAL_OCCLUSION = np.uint8(4)
BEHIND_DEPTH = np.uint8(8)


def joint_pixels(joints2d: np.ndarray) -> np.ndarray:
    """Pixel (column, row) of each joint: ``floor(x + 0.5), floor(y + 0.5)``.

    Parameters
    ----------
    joints2d : ndarray, shape (..., 2)
        Frame pixels (x, y).

    Returns
    -------
    ndarray, shape (..., 2), int64
    """
    return np.floor(np.asarray(joints2d, dtype=np.float64) + 0.5).astype(np.int64)


def outside_frame(joints2d: np.ndarray, height: int, width: int) -> np.ndarray:
    """Whether each joint's pixel lies outside the frame.

    Parameters
    ----------
    joints2d : ndarray, shape (T, J, 2)
        Frame pixels (x, y).
    height, width : int
        Frame size in pixels.

    Returns
    -------
    ndarray, shape (T, J), bool
    """
    px = joint_pixels(joints2d)
    return (px[..., 0] < 0) | (px[..., 0] >= width) | (px[..., 1] < 0) | (px[..., 1] >= height)


def _sample(image: np.ndarray, joints2d: np.ndarray, fill):
    """Per frame, the value of ``image[t]`` at each joint's pixel; ``fill`` outside the frame."""
    num_frames, height, width = image.shape[:3]
    px = joint_pixels(joints2d)
    inside = ~outside_frame(joints2d, height, width)
    cols = np.clip(px[..., 0], 0, width - 1)
    rows = np.clip(px[..., 1], 0, height - 1)
    frames = np.arange(num_frames)[:, None]
    return np.where(inside, image[frames, rows, cols], fill)


def covered_by_mask(joints2d: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Whether each joint's pixel is inside a per-frame mask.

    Parameters
    ----------
    joints2d : ndarray, shape (T, J, 2)
        Frame pixels (x, y).
    mask : ndarray, shape (T, H, W), bool
        E.g. the occluding superpixel.

    Returns
    -------
    ndarray, shape (T, J), bool
        False for joints outside the frame.
    """
    return _sample(np.asarray(mask, dtype=bool), joints2d, False).astype(bool)


def behind_depth(joints2d: np.ndarray, joints3d: np.ndarray, depth: np.ndarray, *,
                 margin_m: float) -> np.ndarray:
    """Whether each joint lies at least ``margin_m`` behind the depth map at its pixel.

    Parameters
    ----------
    joints2d : ndarray, shape (T, J, 2)
        Frame pixels (x, y), in the same (tracked) frame as ``depth``.
    joints3d : ndarray, shape (T, J, 3)
        Camera metres; only z (along the optical axis) is used.
    depth : ndarray, shape (T, H, W), float
        Person depth map in metres (background: SURREAL's 1e10, never in front of a joint).
    margin_m : float
        Metres (paper: 0.2).

    Returns
    -------
    ndarray, shape (T, J), bool
        ``z >= depth[pixel] + margin_m``; False outside the frame.
    """
    surface = _sample(np.asarray(depth, dtype=np.float64), joints2d, np.inf)
    return np.asarray(joints3d, dtype=np.float64)[..., 2] >= surface + margin_m


def visibility_bitmask(*, outside: np.ndarray, occluded: np.ndarray, total_occlusion: np.ndarray,
                       behind: np.ndarray) -> np.ndarray:
    """Combine the reasons into the per-joint bitmask.

    Parameters
    ----------
    outside, occluded, behind : ndarray, shape (T, J), bool
        From `outside_frame`, `covered_by_mask`, `behind_depth`.
    total_occlusion : ndarray, shape (T,), bool
        Per-frame total-occlusion indicator.

    Returns
    -------
    ndarray, shape (T, J), uint8
        0 = visible; otherwise an OR of the reason bits.
    """
    bits = (np.where(outside, OUTSIDE_FRAME, 0) | np.where(occluded, OCCLUDER, 0)
            | np.where(np.asarray(total_occlusion, dtype=bool)[:, None], TOTAL_OCCLUSION, 0)
            | np.where(behind, BEHIND_DEPTH, 0))
    return bits.astype(np.uint8)


def mean_visible(hidden: np.ndarray, *, joints: np.ndarray = COCO14) -> float:
    """Mean over frames of the number of visible joints of a set.

    Parameters
    ----------
    hidden : ndarray, shape (T, 24)
        Non-zero (bool True or a bitmask) where the joint is hidden.
    joints : ndarray of int
        Indices into the 24 SMPL joints (default: the 14 COCO-common joints).

    Returns
    -------
    float
    """
    return float(np.mean(np.sum(np.asarray(hidden)[:, joints] == 0, axis=1)))
