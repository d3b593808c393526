"""Camera motion of a background clip from its optical flow (method step 2).

Per frame pair the camera motion is the median x and median y flow over the 240x320 window; over a
clip it is integrated with the centre frame as reference. The offline cache keeps per-tile medians
of each pair's flow over the whole (resized, uncropped) video frame, so the motion of any window is
taken later without the flow itself: :func:`tile_medians` makes them, :func:`window_camera_motion`
reads a window's motion back as the area-weighted median of the tiles it covers.

*Decision* (the paper says "median"): with ``inlier_radius`` finite the median is taken a second
time over the flow values within that radius of the first. An object covering a third of the
frame pulls the plain median towards its own motion by about 0.7 standard deviations of the
background's flow noise; the second pass removes most of that pull (on the demo backgrounds:
31-frame drift 0.78 -> 0.29 px on zoom_chelsea, 0.71 -> 0.29 px on portrait_motorcycle) and equals
the plain median when nothing moves independently. Known limit: an object held still in the frame
while the camera pans, beside a textureless region, lends that region its motion in the TV-L1 flow
(scikit-image's as well), and the median drifts (``wide_coffee`` demo video, 2 px over 31 frames).

Coordinates are pixels of the reader's resized frame (the 240x320 crop is a window of it), x then y.
"""

from __future__ import annotations

import numpy as np


def camera_motion(flow: np.ndarray, *, inlier_radius: float = np.inf) -> np.ndarray:
    """Median flow of one frame pair: the camera motion of that pair.

    Parameters
    ----------
    flow : ndarray, shape (H, W, 2)
        Displacement from frame t to frame t+1 in pixels, x then y.
    inlier_radius : float
        If finite, the median is taken again over the pixels whose flow lies within this many
        pixels (each of x and y) of the first median. ``inf`` is the paper's plain median; a finite
        radius removes the pull of independently moving objects (see module notes).

    Returns
    -------
    motion : ndarray, shape (2,), float64
        Median x and median y displacement, pixels.
    """
    values = np.asarray(flow, dtype=np.float64).reshape(1, -1, 2)
    return _robust_median(values, np.ones(values.shape[:2]), inlier_radius)[0]


def integrate_camera_motion(pair_motion: np.ndarray) -> np.ndarray:
    """Per-frame offsets from per-pair motion, the centre frame ``T // 2`` as reference.

    Parameters
    ----------
    pair_motion : ndarray, shape (T-1, 2)
        ``pair_motion[t]``: motion (x, y pixels) from frame t to frame t+1, optical-flow sign.

    Returns
    -------
    offsets : ndarray, shape (T, 2), float64
        ``offsets[T // 2] == 0``; content at pixel p of the centre frame is at ``p + offsets[t]``
        in frame t (x then y, pixels).
    """
    pair_motion = np.asarray(pair_motion, dtype=np.float64).reshape(-1, 2)
    positions = np.concatenate([np.zeros((1, 2)), np.cumsum(pair_motion, axis=0)])
    return positions - positions[len(positions) // 2]


def tile_medians(flow: np.ndarray, *, tile: int) -> np.ndarray:
    """Median flow of each ``tile`` x ``tile`` block of a frame pair's flow.

    Parameters
    ----------
    flow : ndarray, shape (H, W, 2)
        Displacement from frame t to frame t+1 in pixels, x then y.
    tile : int
        Tile side in pixels. The last tile row/column holds the ``H % tile`` / ``W % tile``
        remaining pixels when the size is not a multiple.

    Returns
    -------
    medians : ndarray, shape (ceil(H / tile), ceil(W / tile), 2), float32
        Tile (i, j) covers rows ``i*tile:(i+1)*tile`` and columns ``j*tile:(j+1)*tile``.
    """
    flow = np.asarray(flow, dtype=np.float32)
    height, width = flow.shape[:2]
    rows, cols = -(-height // tile), -(-width // tile)
    out = np.empty((rows, cols, 2), dtype=np.float32)
    full_r, full_c = height // tile, width // tile
    blocks = flow[:full_r * tile, :full_c * tile].reshape(full_r, tile, full_c, tile, 2)
    out[:full_r, :full_c] = np.median(blocks.transpose(0, 2, 1, 3, 4).reshape(full_r, full_c, -1, 2),
                                      axis=2)
    for i in range(rows):
        for j in range(cols):
            if i >= full_r or j >= full_c:
                block = flow[i * tile:(i + 1) * tile, j * tile:(j + 1) * tile]
                out[i, j] = np.median(block.reshape(-1, 2), axis=0)
    return out


def tile_weights(frame_shape: tuple[int, int], crop_yx: tuple[int, int], crop_shape: tuple[int, int],
                 *, tile: int) -> np.ndarray:
    """Number of pixels of each tile that lie inside a crop window.

    Parameters
    ----------
    frame_shape : (int, int)
        (H, W) of the frame the tiles cover, pixels.
    crop_yx : (int, int)
        Top-left corner (y, x) of the window in frame pixels.
    crop_shape : (int, int)
        (height, width) of the window, pixels.
    tile : int
        Tile side in pixels (as in :func:`tile_medians`).

    Returns
    -------
    weights : ndarray, shape (ceil(H / tile), ceil(W / tile)), float64

    Raises
    ------
    ValueError
        If the window does not fit inside the frame.
    """
    (height, width), (y0, x0), (ch, cw) = frame_shape, crop_yx, crop_shape
    if y0 < 0 or x0 < 0 or y0 + ch > height or x0 + cw > width:
        raise ValueError(f"crop window {crop_shape} at {crop_yx} does not fit in frame {frame_shape}")
    return np.outer(_overlap(height, y0, ch, tile), _overlap(width, x0, cw, tile))


def _overlap(size: int, start: int, length: int, tile: int) -> np.ndarray:
    lo = np.arange(0, size, tile)
    hi = np.minimum(lo + tile, size)
    return np.clip(np.minimum(hi, start + length) - np.maximum(lo, start), 0, None).astype(np.float64)


def window_camera_motion(medians: np.ndarray, weights: np.ndarray, *,
                         inlier_radius: float = np.inf) -> np.ndarray:
    """Camera motion of a crop window from per-tile medians: the weighted median over tiles.

    Parameters
    ----------
    medians : ndarray, shape (P, R, C, 2)
        Per-tile median flow of P frame pairs (:func:`tile_medians`), pixels, x then y.
    weights : ndarray, shape (R, C)
        Pixels of each tile inside the window (:func:`tile_weights`).
    inlier_radius : float
        As in :func:`camera_motion`, applied to the tiles.

    Returns
    -------
    pair_motion : ndarray, shape (P, 2), float64
        Motion of each pair in the window, pixels, x then y; approximates the median of the flow
        over the window's pixels (measured error in ``benchmarks/bench_camera_motion.py``).
    """
    medians = np.asarray(medians, dtype=np.float64)
    values = medians.reshape(medians.shape[0], -1, 2)
    w = np.broadcast_to(np.asarray(weights, dtype=np.float64).ravel(), values.shape[:2])
    return _robust_median(values, w, inlier_radius)


def _robust_median(values: np.ndarray, weights: np.ndarray, inlier_radius: float) -> np.ndarray:
    """Weighted median of (P, N, 2) values with (P, N) weights, re-taken over the inliers."""
    first = _weighted_median(values, weights)
    if not np.isfinite(inlier_radius):
        return first
    inlier = (np.abs(values - first[:, None]) <= inlier_radius).all(axis=-1)
    kept = weights * inlier
    second = _weighted_median(values, kept)
    return np.where((kept.sum(axis=1) > 0)[:, None], second, first)


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per pair and per component weighted median of (P, N, 2) values with (P, N) weights."""
    order = np.argsort(values, axis=1)
    sorted_values = np.take_along_axis(values, order, axis=1)
    cumulative = np.cumsum(np.take_along_axis(weights[..., None], order, axis=1), axis=1)
    half = 0.5 * cumulative[:, -1:]
    # Lower and upper weighted medians, averaged (as np.median does for an even count).
    lower = np.argmax(cumulative >= half, axis=1)
    upper = np.argmax(cumulative > half, axis=1)
    lo = np.take_along_axis(sorted_values, lower[:, None], axis=1)[:, 0]
    hi = np.take_along_axis(sorted_values, upper[:, None], axis=1)[:, 0]
    return 0.5 * (lo + hi)
