"""TV-L1 optical flow (Zach, Pock & Bischof 2007), vectorised over a batch of frame pairs.

The duality-based TV-L1 scheme as detailed by Sánchez, Meinhardt-Llopis & Facciolo (IPOL 2013):
coarse-to-fine over a Gaussian pyramid; at each level the second frame is warped ``num_warp``
times by the current flow (bilinear ``cv2.remap``: on frames downscaled by 2 it gave a third of
bicubic's sub-pixel bias in the median flow), the data term is linearised around it, and
``num_iter`` alternations of the pointwise thresholding step (L1 data term) and one step of
Chambolle's dual projection (TV term) refine the flow. Every array operation runs on the whole
batch ``(B, 2, H, W)`` at once, so small frames and coarse levels cost little Python overhead.

``downscale`` computes the flow on frames shrunk by that factor (area averaging) and returns it
resized to the input size and multiplied by the factor: a global or smooth motion needs neither
full resolution nor many warps (see ``benchmarks/bench_camera_motion.py`` for the measured
trade-off). Works for any frame size (camera motion uses 240x320 frames, crop flow 224x224).

Parameters have scikit-image's meaning and units (``skimage.registration.optical_flow_tvl1``):
``attachment`` is lambda and ``tightness`` theta for intensities in [0, 1].
"""

from __future__ import annotations

import cv2
import numba
import numpy as np

#: RGB -> luma weights (ITU-R BT.601), the grey level the data term compares.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
#: Time step of the dual projection; 0.25 is the largest stable step in 2-D.
_TAU = 0.25
#: Coarsest pyramid level is never smaller than this many pixels on its short side.
_MIN_SIZE = 16


def optical_flow_tvl1(frame0: np.ndarray, frame1: np.ndarray, *, attachment: float = 15.0,
                      tightness: float = 0.3, num_warp: int = 5, num_iter: int = 10,
                      num_levels: int = 5, downscale: int = 1) -> np.ndarray:
    """TV-L1 optical flow from ``frame0`` to ``frame1``.

    Parameters
    ----------
    frame0, frame1 : ndarray, shape (H, W) or (H, W, 3)
        Grey or RGB frames of one size. uint8 (0..255) or float (0..1).
    attachment : float
        Weight of the L1 data term (lambda; larger follows the images more closely).
    tightness : float
        Coupling of the data and TV terms (theta; small keeps them close).
    num_warp : int
        Warps (re-linearisations of the data term) per pyramid level.
    num_iter : int
        Thresholding / dual-projection iterations per warp.
    num_levels : int
        Maximum pyramid levels (factor 2 each), the computed resolution included; fewer are used
        when the coarsest would be smaller than 16 px.
    downscale : int
        Compute on frames shrunk by this factor (1 = full resolution).

    Returns
    -------
    flow : ndarray, shape (H, W, 2), float32
        Displacement in input pixels, x (columns) then y (rows): the content at pixel (x, y) of
        ``frame0`` is at (x + flow[y, x, 0], y + flow[y, x, 1]) in ``frame1``.
        Note: scikit-image returns (row, column) order with the components first.

    Raises
    ------
    ValueError
        If the frames differ in shape or are not (H, W) or (H, W, 3).
    """
    frame0, frame1 = np.asarray(frame0), np.asarray(frame1)
    if frame0.ndim not in (2, 3) or (frame0.ndim == 3 and frame0.shape[-1] != 3):
        raise ValueError(f"frames must be (H, W) or (H, W, 3), got shape {frame0.shape}")
    return optical_flow_tvl1_batch(frame0[None], frame1[None], attachment=attachment,
                                   tightness=tightness, num_warp=num_warp, num_iter=num_iter,
                                   num_levels=num_levels, downscale=downscale)[0]


def optical_flow_tvl1_batch(frames0: np.ndarray, frames1: np.ndarray, *, attachment: float = 15.0,
                            tightness: float = 0.3, num_warp: int = 5, num_iter: int = 10,
                            num_levels: int = 5, downscale: int = 1,
                            initial_motion: np.ndarray | None = None) -> np.ndarray:
    """TV-L1 optical flow of B frame pairs at once (pair b: ``frames0[b]`` to ``frames1[b]``).

    Same algorithm, parameters and conventions as :func:`optical_flow_tvl1`; pair b's result
    equals ``optical_flow_tvl1(frames0[b], frames1[b], ...)``.

    Parameters
    ----------
    frames0, frames1 : ndarray, shape (B, H, W) or (B, H, W, 3)
        Grey or RGB frames, uint8 (0..255) or float (0..1).
    initial_motion : ndarray, shape (B, 2), optional
        A global displacement per pair (input pixels, x then y) the coarsest level starts from
        instead of zero flow, e.g. a phase-correlation estimate: the pyramid then only has to
        recover what differs from it, so displacements beyond its reach are found.

    Returns
    -------
    flow : ndarray, shape (B, H, W, 2), float32
        Displacement in input pixels, x then y, from ``frames0[b]`` to ``frames1[b]``.

    Raises
    ------
    ValueError
        If the two batches differ in shape, the layout is not one of the above, or a parameter
        is out of range.
    """
    frames0, frames1 = np.asarray(frames0), np.asarray(frames1)
    if frames0.shape != frames1.shape:
        raise ValueError(f"frame batches differ in shape: {frames0.shape} vs {frames1.shape}")
    if frames0.ndim not in (3, 4) or (frames0.ndim == 4 and frames0.shape[-1] != 3):
        raise ValueError(f"frames must be (B, H, W) or (B, H, W, 3), got shape {frames0.shape}")
    if min(num_warp, num_iter, num_levels, downscale) < 1:
        raise ValueError("num_warp, num_iter, num_levels and downscale must all be >= 1")
    if initial_motion is not None and np.shape(initial_motion) != (frames0.shape[0], 2):
        raise ValueError(f"initial_motion must be ({frames0.shape[0]}, 2), got {np.shape(initial_motion)}")
    height, width = frames0.shape[1:3]
    gray0, gray1 = _to_gray(frames0, downscale), _to_gray(frames1, downscale)
    pyramid0 = _pyramid(gray0, num_levels)
    pyramid1 = _pyramid(gray1, num_levels)
    flow = np.zeros((gray0.shape[0], 2) + pyramid0[0].shape[1:], dtype=np.float32)
    if initial_motion is not None:
        coarse_per_input = np.array([flow.shape[3] / width, flow.shape[2] / height], np.float32)
        flow += (np.asarray(initial_motion, np.float32) * coarse_per_input)[:, :, None, None]
    for level, (image0, image1) in enumerate(zip(pyramid0, pyramid1)):
        if level:
            flow = _resize_flow(flow, image0.shape[1:])
        flow = _tvl1_level(image0, image1, flow, attachment=attachment, tightness=tightness,
                           num_warp=num_warp, num_iter=num_iter)
    flow = np.moveaxis(flow, 1, -1)
    if downscale != 1 or flow.shape[1:3] != (height, width):
        flow = _resize_flow(np.moveaxis(flow, -1, 1), (height, width))
        flow = np.moveaxis(flow, 1, -1)
    return np.ascontiguousarray(flow, dtype=np.float32)


def _to_gray(frames: np.ndarray, downscale: int) -> np.ndarray:
    """(B, H, W[, 3]) uint8/float -> (B, H', W') float32 in [0, 1], shrunk by ``downscale``."""
    scale = np.float32(1 / 255) if frames.dtype == np.uint8 else np.float32(1)
    gray = frames.astype(np.float32) * scale
    if gray.ndim == 4:
        gray = gray @ _LUMA
    if downscale == 1:
        return np.ascontiguousarray(gray)
    size = (max(1, round(gray.shape[2] / downscale)), max(1, round(gray.shape[1] / downscale)))
    return np.stack([cv2.resize(g, size, interpolation=cv2.INTER_AREA) for g in gray])


def _pyramid(gray: np.ndarray, num_levels: int) -> list[np.ndarray]:
    """Gaussian pyramid (``cv2.pyrDown``), coarsest level first, finest = ``gray``."""
    levels = [gray]
    while len(levels) < num_levels and min(levels[-1].shape[1:]) >= 2 * _MIN_SIZE:
        levels.append(np.stack([cv2.pyrDown(g) for g in levels[-1]]))
    return levels[::-1]


def _resize_flow(flow: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of (B, 2, h, w) flow to (B, 2, *shape), values scaled to the new pixels."""
    height, width = shape
    scale = np.array([width / flow.shape[3], height / flow.shape[2]], dtype=np.float32)
    out = np.empty(flow.shape[:2] + (height, width), dtype=np.float32)
    for b in range(flow.shape[0]):
        for c in range(2):
            out[b, c] = cv2.resize(flow[b, c], (width, height), interpolation=cv2.INTER_LINEAR)
    return out * scale[None, :, None, None]


def image_gradient(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """d/dx and d/dy of (..., H, W) images: central differences, one-sided on the border.

    Units: image values per pixel; x along columns, y along rows.
    """
    gx = np.empty_like(image)
    gy = np.empty_like(image)
    gx[..., 1:-1] = 0.5 * (image[..., 2:] - image[..., :-2])
    gx[..., 0] = image[..., 1] - image[..., 0]
    gx[..., -1] = image[..., -1] - image[..., -2]
    gy[..., 1:-1, :] = 0.5 * (image[..., 2:, :] - image[..., :-2, :])
    gy[..., 0, :] = image[..., 1, :] - image[..., 0, :]
    gy[..., -1, :] = image[..., -1, :] - image[..., -2, :]
    return gx, gy


def _warp_with_gradient(image: np.ndarray, flow: np.ndarray, grid: tuple[np.ndarray, np.ndarray]
                        ) -> np.ndarray:
    """Sample ``image`` (B, H, W) and its central-difference gradient at x + flow.

    Returns (B, 3, H, W): warped image, d/dx, d/dy (bilinear, edge pixels replicated).
    """
    gx, gy = image_gradient(image)
    out = np.empty((image.shape[0], 3) + image.shape[1:], dtype=np.float32)
    for b in range(image.shape[0]):
        stack = np.dstack([image[b], gx[b], gy[b]])
        map_x = grid[0] + flow[b, 0]
        map_y = grid[1] + flow[b, 1]
        warped = cv2.remap(stack, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        out[b] = np.moveaxis(warped, -1, 0)
    return out


def _tvl1_level(image0: np.ndarray, image1: np.ndarray, flow: np.ndarray, *, attachment: float,
                tightness: float, num_warp: int, num_iter: int) -> np.ndarray:
    """Refine (B, 2, H, W) ``flow`` from ``image0`` to ``image1`` (B, H, W) at one pyramid level.

    The iterations are memory-bound: :func:`_iterate` runs them compiled, two passes over the
    arrays per iteration, each value computed by the same float32 operations in the same order as
    numpy's whole-array version (identical flow)."""
    height, width = image0.shape[1:]
    grid = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    lt = np.float32(attachment * tightness)
    theta = np.float32(tightness)
    step = np.float32(_TAU / tightness)
    flow = flow.copy()
    # Dual variables p[c, d]: component c of the flow, derivative direction d (x, y).
    p = np.zeros((2, 2) + image0.shape, dtype=np.float32)
    for _ in range(num_warp):
        warped = _warp_with_gradient(image1, flow, grid)
        gx, gy = warped[:, 1], warped[:, 2]           # dI1/dx, dI1/dy at x + u
        inv_norm2 = 1.0 / np.maximum(gx * gx + gy * gy, np.float32(1e-9))
        # rho(u) = rho_c + grad . u: the linearised brightness residual I1(x + u) - I0(x).
        rho_c = warped[:, 0] - image0 - gx * flow[:, 0] - gy * flow[:, 1]
        _iterate(flow, p, warped, rho_c, inv_norm2, lt, theta, step, num_iter)
    return flow


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _iterate(flow, p, warped, rho_c, inv_norm2, lt, theta, step, num_iter):
    """``num_iter`` TV-L1 iterations in place on ``flow`` (B, 2, H, W) and ``p`` (2, 2, B, H, W);
    ``warped`` (B, 3, H, W) holds I1(x + u) and its gradient, all float32.

    Per iteration: the data step v = u + c * grad with c = clip(-rho / |grad|^2, -lt, lt), the TV
    step u = v + theta * div(p) (backward differences), then the dual projection
    p <- (p + tau/theta grad u) / (1 + tau/theta |grad u|) (forward differences, 0 on the last
    row and column)."""
    num_pairs, _, height, width = flow.shape
    for _ in range(num_iter):
        for b in range(num_pairs):
            for y in range(height):
                _data_tv_row(flow[b, 0, y], flow[b, 1, y], warped[b, 1, y], warped[b, 2, y],
                             rho_c[b, y], inv_norm2[b, y], p[:, :, b], y, lt, theta)
            for c in range(2):
                u = flow[b, c]
                for y in range(height):
                    below = u[y + 1] if y + 1 < height else u[y]  # u[y]: dy = 0 on the last row
                    _dual_row(u[y], below, p[c, 0, b, y], p[c, 1, b, y], step)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _data_tv_row(u0, u1, gx, gy, rho_c, inv_norm2, p, y, lt, theta):
    """Data and TV steps of row ``y`` (1-D rows of the flow components and of the gradient;
    ``p`` (2, 2, H, W) of this pair, not updated here)."""
    width = len(u0)
    for x in range(width):
        rho = (gx[x] * u0[x] + rho_c[x]) + gy[x] * u1[x]
        coef = min(max(-(rho * inv_norm2[x]), -lt), lt)
        u0[x] = u0[x] + coef * gx[x]
        u1[x] = u1[x] + coef * gy[x]
    for c, u in ((0, u0), (1, u1)):
        px, py = p[c, 0, y], p[c, 1, y]
        if y > 0:
            above = p[c, 1, y - 1]
            u[0] = u[0] + ((px[0] + py[0]) - above[0]) * theta
            for x in range(1, width):
                u[x] = u[x] + (((px[x] - px[x - 1]) + py[x]) - above[x]) * theta
        else:
            u[0] = u[0] + (px[0] + py[0]) * theta
            for x in range(1, width):
                u[x] = u[x] + ((px[x] - px[x - 1]) + py[x]) * theta


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _dual_row(u, below, px, py, step):
    """Dual projection of one row of one flow component (``below``: the next row, or ``u`` itself
    on the last row, where the forward difference in y is 0; 0 on the last column in x)."""
    width = len(u)
    for x in range(width - 1):
        _dual_update(u[x + 1] - u[x], below[x] - u[x], px, py, x, step)
    _dual_update(np.float32(0), below[width - 1] - u[width - 1], px, py, width - 1, step)


@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _dual_update(dx, dy, px, py, x, step):
    norm = np.sqrt(dx * dx + dy * dy) * step + np.float32(1)
    px[x] = (px[x] + dx * step) / norm
    py[x] = (py[x] + dy * step) / norm
