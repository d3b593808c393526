"""Crop pairs with known flow, to measure a backend's accuracy (tests and the benchmark).

Pair b shows a window of a still photo and the same window after a smooth affine motion (a
sub-pixel translation plus a small rotation and scale about the crop centre), both resampled
bicubically from the photo, so the true flow is known at every crop pixel.
"""

from __future__ import annotations

import cv2
import numpy as np


def known_flow_pairs(image: np.ndarray, count: int, *, rng: np.random.Generator, size: int = 224,
                     max_shift: float = 4.0, max_rotation_deg: float = 0.0,
                     max_scale: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Random crop pairs of ``image`` related by a known affine flow.

    Parameters
    ----------
    image : ndarray, shape (H, W, 3), uint8
        RGB photo, at least ``size + 2 * (max_shift + size * (max_rotation + max_scale))`` px.
    count : int
        Number of pairs B.
    rng : numpy.random.Generator
        Draws window positions and motions.
    size : int
        Crop side in pixels.
    max_shift : float
        Translation per axis, uniform in [-max_shift, max_shift] pixels.
    max_rotation_deg, max_scale : float
        Rotation (degrees) and relative scale change, uniform in [-max, max], about the centre.

    Returns
    -------
    pairs : ndarray, shape (B, 2, size, size, 3), uint8
    flow : ndarray, shape (B, size, size, 2), float32
        True displacement from crop 0 to crop 1 in crop pixels, x then y.
    """
    height, width = image.shape[:2]
    slack = max_shift + size * (np.deg2rad(max_rotation_deg) + max_scale) + 4
    if min(height, width) < size + 2 * slack:
        raise ValueError(f"image {image.shape[:2]} too small for {size} px crops with this motion")
    grid_y, grid_x = np.mgrid[0:size, 0:size].astype(np.float64)
    centre = (size - 1) / 2
    pairs = np.empty((count, 2, size, size, 3), dtype=np.uint8)
    flows = np.empty((count, size, size, 2), dtype=np.float32)
    source = image.astype(np.float32)
    for b in range(count):
        x0 = rng.uniform(slack, width - size - slack)
        y0 = rng.uniform(slack, height - size - slack)
        angle = np.deg2rad(rng.uniform(-max_rotation_deg, max_rotation_deg))
        scale = 1 + rng.uniform(-max_scale, max_scale)
        shift = rng.uniform(-max_shift, max_shift, size=2)
        motion = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        # Crop-0 pixel p moves to q = M (p - c) + c + t; crop 1 at q shows the photo at p.
        px, py = grid_x - centre, grid_y - centre
        flows[b, ..., 0] = motion[0, 0] * px + motion[0, 1] * py + centre + shift[0] - grid_x
        flows[b, ..., 1] = motion[1, 0] * px + motion[1, 1] * py + centre + shift[1] - grid_y
        inverse = np.linalg.inv(motion)
        qx, qy = grid_x - centre - shift[0], grid_y - centre - shift[1]
        src_x = inverse[0, 0] * qx + inverse[0, 1] * qy + centre
        src_y = inverse[1, 0] * qx + inverse[1, 1] * qy + centre
        pairs[b, 0] = _sample(source, grid_x + x0, grid_y + y0)
        pairs[b, 1] = _sample(source, src_x + x0, src_y + y0)
    return pairs, flows


def end_point_error(flow: np.ndarray, truth: np.ndarray, *, margin: int = 0) -> float:
    """Mean Euclidean distance between (B, H, W, 2) flows, ignoring ``margin`` px at the border."""
    height, width = flow.shape[1:3]
    inner = (slice(None), slice(margin, height - margin), slice(margin, width - margin))
    return float(np.linalg.norm(flow[inner] - truth[inner], axis=-1).mean())


def _sample(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    out = cv2.remap(image, x.astype(np.float32), y.astype(np.float32), cv2.INTER_CUBIC,
                    borderMode=cv2.BORDER_REFLECT)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
