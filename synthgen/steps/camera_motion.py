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

Large displacements (:func:`pair_flows`, *decision*; the paper says only "TVL1"): TV-L1's
coarse-to-fine pyramid (3 levels on the half-resolution 120x160 frames, depth set by the frame
size) reaches about 8 px per frame; whip pans in Kinetics reach 30. So each pair's TV-L1 starts
from a global translation (:func:`global_translation`): phase correlation on the frames at half
resolution (``cv2.phaseCorrelate``; at full resolution its whitening amplifies compression noise,
and it failed on motion-blurred frames, 17 px off), refined to sub-pixel accuracy there by robust
Lucas-Kanade. TV-L1 then only recovers what differs from that translation. Where the median of
the resulting flow and that translation disagree by more than ``fallback_px`` (one translation
for the frame; a disagreement means one of them failed, or an object dominated the phase
correlation), OpenCV's DIS flow (medium preset) is computed too, and the one that explains the
frames better is kept: higher :func:`reliability`, the fraction of pixels whose match lies inside
the next frame and whose grey level there differs by at most :data:`RELIABLE_RESIDUAL`. The cache
records per pair which estimate was kept (:data:`ESTIMATES`) and its reliability. Pixels whose
match leaves the frame (a 28 px strip at 28 px per frame) have no correspondence and get NaN
flow; the medians skip them (they biased a blurred whip pan's motion by +0.024 px per pair).

Sub-pixel refinement (:func:`refine_tile_motion`, *decision*): TV-L1 runs on frames shrunk by 2
(``CameraMotionConfig.downscale``), and each 16 px tile's median flow is then refined at full
resolution as one translation by Lucas-Kanade (a few Gauss-Newton steps on the tile's grey
levels). Why blurred whip pans drifted: where the grey levels have little gradient (motion blur
removes it along the pan), TV-L1's data term barely moves the flow in its few iterations, so
such tiles keep their start and their neighbours' smoothed flow. On the worst pair of the blurred
whip pan (where the pan accelerates and the two frames' blur differs), tiles with enough
structure for Lucas-Kanade were off by -0.02 px after refinement, the others by +0.26 px, and the
window median followed the latter. The sub-pixel start and the refinement took that video's
31-frame drift from 0.38 to 0.24 px (DIS: 0.26), and the full-resolution refinement gives back what
half-resolution TV-L1 loses on textured frames, at 0.6x the cost of full-resolution TV-L1. A tile
whose structure tensor is too weak to determine a translation (:data:`MIN_TILE_STRUCTURE`), or
whose refinement moves it more than :data:`MAX_REFINEMENT_PX`, keeps TV-L1's value: flat regions
and tiles holding two motions are left to the median.

Undetermined tiles (:func:`pair_tile_motion`, *decision*): over every 31-frame window of 96-frame
blurred whip pans (seeds 0-2) those tiles still carried TV-L1's bias, and the drift's median and
max were 0.34/0.56, 0.38/1.19, 0.44/0.58 px against DIS's 0.37/0.53, 0.25/0.46, 0.36/0.49. On the
worst pairs (where the pan speeds up) the determined tiles were within 0.1 px, TV-L1's others
+0.3 to +0.5 px off and DIS's -0.2 to -0.8 px: biased the other way. So where LK leaves at least
:data:`MIN_UNDETERMINED_FRACTION` of a TV-L1 pair's tiles undetermined, DIS (medium) is computed
and each undetermined tile takes the mean of the two tile medians (estimate ``"tvl1+dis"``);
drift median/max 0.35/0.46, 0.20/0.29, 0.26/0.44 px, all at most DIS's. Not where LK determines
fewer than :data:`MIN_DETERMINED_FRACTION` (a low-texture frame: DIS is 0.7 px off per frame
there, and the blend took that whip pan's drift from 1.2 to 4.7 px). Rejected: taking DIS's tile
(blurred pans 0.31/0.42, 0.25/0.35, 0.34/0.49: seed 1's median above DIS's), DIS's fast preset
or finest scale 2 (a quarter of the cost; portrait_motorcycle 0.27 -> 0.39-0.40 px), blending on
every pair (it lowers the demo videos' drift too, portrait_motorcycle 0.27 -> 0.19 px, but DIS
costs 60 % more per pair), weighting tiles by their structure (portrait_motorcycle 0.25 -> 0.70
px: textured moving objects pull the median), LK refinement of weak tiles (damped or
a lower :data:`MIN_TILE_STRUCTURE`: seed 0 better, seeds 1 and 2 worse), and the global
translation for them (zoom, ``wide_coffee``). Measured in
``benchmarks/bench_camera_motion.py``.

Coordinates are pixels of the reader's resized frame (the 240x320 crop is a window of it), x then y.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numba
import numpy as np

from synthgen.config import CameraMotionConfig
from synthgen.steps.tvl1 import image_gradient, optical_flow_tvl1_batch

#: Names of the per-pair estimates, indexed by the code the cache stores: TV-L1 (its tiles refined),
#: the DIS fallback, TV-L1 with its undetermined tiles averaged with DIS (:func:`pair_tile_motion`).
ESTIMATES = ("tvl1", "dis", "tvl1+dis")
#: Largest grey-level difference (of 255) between a pixel and its match that counts as explained.
RELIABLE_RESIDUAL = 8.0
#: Smallest eigenvalue of a tile's structure tensor, per pixel, in (grey levels of 255 per pixel)^2,
#: below which :func:`refine_tile_motion` leaves the tile's translation to TV-L1.
MIN_TILE_STRUCTURE = 4.0
#: Largest change (px, x or y) :func:`refine_tile_motion` may make to a tile's TV-L1 translation.
#: Smallest fraction of a pair's tiles :func:`refine_tile_motion` must determine for its other
#: tiles to be averaged with DIS (:func:`pair_tile_motion`; below it, low texture: DIS fails).
MIN_DETERMINED_FRACTION = 0.1
#: Smallest fraction of a pair's tiles left undetermined for DIS to be computed for them (below
#: it the few weak tiles barely move the median, and DIS would add 60 % to the cost).
MIN_UNDETERMINED_FRACTION = 0.5
MAX_REFINEMENT_PX = 1.0
#: Most Gauss-Newton steps refining the phase-correlation translation (:func:`global_translation`).
GLOBAL_REFINE_ITERATIONS = 5


@dataclass(frozen=True)
class PairFlows:
    """Flows of B frame pairs, which estimate each is, and how well it explains the frames.

    Attributes
    ----------
    flow : ndarray, shape (B, H, W, 2), float32
        Displacement from frame t to frame t+1, pixels, x then y; NaN where the match lies
        outside frame t+1.
    estimate : ndarray, shape (B,), uint8
        Index into :data:`ESTIMATES` of each pair's flow.
    reliability : ndarray, shape (B,), float32
        :func:`reliability` of each pair's flow, 0..1.
    """

    flow: np.ndarray
    estimate: np.ndarray
    reliability: np.ndarray


def pair_flows(frames0: np.ndarray, frames1: np.ndarray, cfg: CameraMotionConfig, *,
               tvl1=optical_flow_tvl1_batch) -> PairFlows:
    """Optical flow of B frame pairs for camera motion, robust to large displacements.

    TV-L1 (``cfg``'s parameters) initialised by :func:`global_translation`; where the flow's
    median and that translation differ by more than ``cfg.fallback_px`` in x or y, DIS (medium)
    replaces it if its :func:`reliability` is higher (module notes).

    Parameters
    ----------
    frames0, frames1 : ndarray, shape (B, H, W, 3), uint8
        RGB frames; pair b is ``frames0[b]`` to ``frames1[b]``.
    cfg : CameraMotionConfig
        TV-L1 parameters, ``phase_correlation`` and ``fallback_px``.
    tvl1 : callable
        The batched TV-L1 solver, with :func:`synthgen.steps.tvl1.optical_flow_tvl1_batch`'s
        signature; ``functools.partial(synthgen.steps.tvl1_torch.optical_flow_tvl1_torch,
        device="cuda")`` runs it on a GPU (the rest stays on the CPU).
    """
    return _pair_flows(frames0, frames1, _gray(frames0), _gray(frames1), cfg, tvl1)


def _pair_flows(frames0, frames1, gray0, gray1, cfg, tvl1):
    """:func:`pair_flows` given the frames' :func:`_gray` ``gray0``, ``gray1`` (B, H, W) uint8."""
    init = global_translation(gray0, gray1) if cfg.phase_correlation else None
    flow = tvl1(frames0, frames1, attachment=cfg.attachment, tightness=cfg.tightness,
                num_warp=cfg.num_warp, num_iter=cfg.num_iter, num_levels=cfg.num_levels,
                downscale=cfg.downscale, initial_motion=init)
    estimate = np.zeros(len(flow), dtype=np.uint8)
    score = np.array([reliability(g0, g1, f) for g0, g1, f in zip(gray0, gray1, flow)], np.float32)
    if init is not None:
        medians = np.array([[_median(np.ascontiguousarray(f[..., c]).ravel()) for c in range(2)]
                            for f in flow], dtype=np.float32)
        for b in np.flatnonzero(np.abs(medians - init).max(axis=1) > cfg.fallback_px):
            dis = _dis().calc(gray0[b], gray1[b], None)
            dis_score = reliability(gray0[b], gray1[b], dis)
            if dis_score > score[b]:
                flow[b], estimate[b], score[b] = dis, ESTIMATES.index("dis"), dis_score
    for f in flow:
        f[~_match_inside(f)[0]] = np.nan
    return PairFlows(flow=flow, estimate=estimate, reliability=score)


@dataclass(frozen=True)
class PairMotion:
    """Per-tile motion of B frame pairs (what the cache stores), which estimate, its reliability.

    Attributes
    ----------
    medians : ndarray, shape (B, R, C, 2), float32
        Translation of each ``tile`` x ``tile`` block from frame t to t+1 (:func:`tile_medians`
        refined by :func:`refine_tile_motion`), pixels, x then y; NaN where no pixel's match lies
        inside frame t+1.
    estimate, reliability : ndarray, shape (B,)
        As in :class:`PairFlows` (for ``"tvl1+dis"``, the reliability of the TV-L1 flow).
    """

    medians: np.ndarray
    estimate: np.ndarray
    reliability: np.ndarray


def pair_tile_motion(frames0: np.ndarray, frames1: np.ndarray, cfg: CameraMotionConfig
                     ) -> PairMotion:
    """Per-tile camera motion of B frame pairs: :func:`pair_flows`, :func:`tile_medians` of
    ``cfg.tile``, then ``cfg.refine_iterations`` steps of :func:`refine_tile_motion`; with
    ``cfg.blend_weak_tiles``, the undetermined tiles of a TV-L1 pair are averaged with DIS's tile
    medians where at least :data:`MIN_UNDETERMINED_FRACTION` and at most
    1 - :data:`MIN_DETERMINED_FRACTION` of its tiles are undetermined (module notes).

    Parameters
    ----------
    frames0, frames1 : ndarray, shape (B, H, W, 3), uint8
        RGB frames; pair b is ``frames0[b]`` to ``frames1[b]``.
    cfg : CameraMotionConfig
    """
    gray0, gray1 = _gray(frames0), _gray(frames1)
    flows = _pair_flows(frames0, frames1, gray0, gray1, cfg, optical_flow_tvl1_batch)
    medians, estimate = [], flows.estimate.copy()
    for b, (g0, g1, f) in enumerate(zip(gray0, gray1, flows.flow)):
        refined, determined = refine_tile_motion(g0, g1, tile_medians(f, tile=cfg.tile),
                                                 tile=cfg.tile, iterations=cfg.refine_iterations)
        finite = np.isfinite(refined).all(axis=-1)
        weak = ~determined & finite
        if (cfg.blend_weak_tiles and ESTIMATES[estimate[b]] == "tvl1"
                and determined.sum() >= MIN_DETERMINED_FRACTION * finite.sum()
                and weak.sum() >= MIN_UNDETERMINED_FRACTION * finite.sum()):
            dis = _dis().calc(g0, g1, None)
            dis[~_match_inside(dis)[0]] = np.nan
            blended = 0.5 * (refined + tile_medians(dis, tile=cfg.tile))
            weak &= np.isfinite(blended).all(axis=-1)
            refined[weak] = blended[weak]
            estimate[b] = ESTIMATES.index("tvl1+dis")
        medians.append(refined)
    return PairMotion(medians=np.stack(medians), estimate=estimate, reliability=flows.reliability)


def refine_tile_motion(gray0: np.ndarray, gray1: np.ndarray, medians: np.ndarray, *, tile: int,
                       iterations: int) -> np.ndarray:
    """Refine each tile's translation by Lucas-Kanade at full resolution (module notes).

    Each iteration warps ``gray1`` by every tile's current translation (bilinear), and takes one
    Gauss-Newton step per tile on the sum of squared grey-level differences over the tile's pixels
    whose match lies inside frame 1, with the mean of the two frames' gradients (symmetric in the
    two frames). Tiles whose structure tensor's smallest
    eigenvalue is below :data:`MIN_TILE_STRUCTURE` per pixel keep their value, as do tiles the
    steps move more than :data:`MAX_REFINEMENT_PX` in all.

    Parameters
    ----------
    gray0, gray1 : ndarray, shape (H, W), uint8
        Frames t and t+1.
    medians : ndarray, shape (ceil(H / tile), ceil(W / tile), 2)
        Start translation of each tile (:func:`tile_medians`), pixels, x then y; NaN tiles stay NaN.
    tile : int
        Tile side, pixels.
    iterations : int
        Gauss-Newton steps (0: ``medians`` returned unchanged).

    Returns
    -------
    medians : ndarray, same shape, float32
    refined : ndarray, shape (ceil(H / tile), ceil(W / tile)), bool
        Tiles the steps determined (the others keep their start).
    """
    start = np.asarray(medians, dtype=np.float32)
    if iterations == 0:
        return start.copy(), np.zeros(start.shape[:2], dtype=bool)
    image0, image1 = gray0.astype(np.float32), gray1.astype(np.float32)
    height, width = image0.shape
    rows, cols = start.shape[:2]
    labels = (np.arange(height)[:, None] // tile) * cols + np.arange(width)[None, :] // tile
    grad0 = image_gradient(image0)
    stack1 = np.dstack([image1, *image_gradient(image1)])
    valid = np.isfinite(start).all(axis=-1)
    motion = np.where(valid[..., None], start, 0).astype(np.float64)
    determined = np.zeros(rows * cols, dtype=bool)
    for _ in range(iterations):
        inside, map_x, map_y = _tile_match(motion, tile, height, width)
        warped = cv2.remap(stack1, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        sxx, sxy, syy, sxr, syr, count = _tile_sums(labels, inside, grad0[0], grad0[1], warped,
                                                    image0, rows * cols)
        det = sxx * syy - sxy * sxy
        trace = sxx + syy
        smallest = 0.5 * (trace - np.sqrt(np.maximum(trace * trace - 4 * det, 0)))
        determined = (smallest > MIN_TILE_STRUCTURE * np.maximum(count, 1)) & valid.ravel()
        det = np.where(determined, det, 1.0)
        step = np.stack([np.where(determined, -(syy * sxr - sxy * syr) / det, 0.0),
                         np.where(determined, -(sxx * syr - sxy * sxr) / det, 0.0)], axis=-1)
        motion += step.reshape(rows, cols, 2)
    refined = motion.astype(np.float32)
    keep = ~determined.reshape(rows, cols) | (np.abs(refined - start).max(axis=-1) > MAX_REFINEMENT_PX)
    refined[keep] = start[keep]
    return refined, ~keep


@numba.njit(cache=True, nogil=True)
def _tile_match(motion, tile, height, width):
    """:func:`_match_inside` of the per-pixel flow of tile translations ``motion`` (R, C, 2)
    float64 (each tile's value on its ``tile`` x ``tile`` pixels), without making that flow."""
    inside = np.empty((height, width), dtype=np.bool_)
    map_x = np.empty((height, width), dtype=np.float32)
    map_y = np.empty((height, width), dtype=np.float32)
    for y in range(height):
        for column in range(motion.shape[1]):
            dx = np.float32(motion[y // tile, column, 0])
            dy = np.float32(motion[y // tile, column, 1])
            my = np.float32(y) + dy
            for x in range(column * tile, min((column + 1) * tile, width)):
                mx = np.float32(x) + dx
                map_x[y, x], map_y[y, x] = mx, my
                inside[y, x] = mx >= 0 and mx <= width - 1 and my >= 0 and my <= height - 1
    return inside, map_x, map_y


@numba.njit(cache=True, nogil=True)
def _tile_sums(labels, inside, grad0_x, grad0_y, warped, image0, num_tiles):
    """Per-tile sums of the Gauss-Newton normal equations of :func:`refine_tile_motion`.

    ``gx = 0.5 * (grad0_x + warped[..., 1])``, ``gy`` likewise, ``r = warped[..., 0] - image0``
    (float32, per pixel, as numpy computes them); returns the float64 sums over the pixels of
    each tile (``labels`` (H, W)) whose match lies inside frame 1 (``inside``) of gx*gx, gx*gy,
    gy*gy, gx*r, gy*r and 1, in pixel order: the values of ``np.bincount(labels, weights)``
    (compiled, no fastmath: identical results, a sixth of the time).
    """
    sums = np.zeros((6, num_tiles))
    half = np.float32(0.5)
    height, width = labels.shape
    for y in range(height):
        for x in range(width):
            if not inside[y, x]:
                continue
            k = labels[y, x]
            gx = half * (grad0_x[y, x] + warped[y, x, 1])
            gy = half * (grad0_y[y, x] + warped[y, x, 2])
            residual = warped[y, x, 0] - image0[y, x]
            sums[0, k] += np.float64(gx * gx)
            sums[1, k] += np.float64(gx * gy)
            sums[2, k] += np.float64(gy * gy)
            sums[3, k] += np.float64(gx * residual)
            sums[4, k] += np.float64(gy * residual)
            sums[5, k] += 1.0
    return sums


def global_translation(gray0: np.ndarray, gray1: np.ndarray) -> np.ndarray:
    """Global translation of B grey frame pairs: phase correlation at half resolution, refined
    there by robust Lucas-Kanade (:func:`_refine_translation`).

    The refinement makes the start sub-pixel accurate where phase correlation is not (0.2-1.2 px
    off on motion-blurred and low-texture whip pans): TV-L1 hardly moves the flow of flat regions
    away from its start, and on the low-texture whip pan the 31-frame drift fell from 2.5 to
    1.2 px (``benchmarks/bench_camera_motion.py``).

    Parameters
    ----------
    gray0, gray1 : ndarray, shape (B, H, W), uint8

    Returns
    -------
    shift : ndarray, shape (B, 2), float64
        Displacement from ``gray0[b]`` to ``gray1[b]``, full-resolution pixels, x then y.
    """
    shifts = np.empty((len(gray0), 2))
    for b, (g0, g1) in enumerate(zip(gray0, gray1)):
        half0, half1 = (cv2.pyrDown(g.astype(np.float32)) for g in (g0, g1))
        h, w = half0.shape[0] // 2 * 2, half0.shape[1] // 2 * 2  # odd sizes bias OpenCV's peak
        window = cv2.createHanningWindow((w, h), cv2.CV_32F)
        # Copies: cv2.phaseCorrelate multiplies its inputs by the window in place.
        (dx, dy), _ = cv2.phaseCorrelate(half0[:h, :w].copy(), half1[:h, :w].copy(), window)
        shifts[b] = 2 * _refine_translation(half0, half1, np.array([dx, dy]))
    return shifts


def _refine_translation(image0: np.ndarray, image1: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """One translation (x, y px) from ``image0`` to ``image1`` (H, W float32) by up to
    :data:`GLOBAL_REFINE_ITERATIONS` Gauss-Newton steps from ``shift``, over the pixels whose match
    lies inside ``image1``, with Huber-like weights (residuals beyond twice their robust standard
    deviation count less: moving objects) and the two frames' mean gradient. ``shift`` is
    returned unchanged where a step is undetermined (a flat frame)."""
    grad0 = image_gradient(image0)
    stack1 = np.dstack([image1, *image_gradient(image1)])
    refined = shift.astype(np.float64)
    for _ in range(GLOBAL_REFINE_ITERATIONS):
        inside, map_x, map_y = _match_inside(np.broadcast_to(refined.astype(np.float32), image0.shape + (2,)))
        warped = cv2.remap(stack1, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        residual, gx, gy, median = _inside_residuals(warped, image0, grad0[0], grad0[1], inside)
        scale = 2 * 1.4826 * np.float32(median) + 1e-6  # numba returns a Python float
        sxx, sxy, syy, sxr, syr = (np.sum(t) for t in _weighted_terms(residual, gx, gy, scale))
        normal = np.array([[sxx, sxy], [sxy, syy]])
        if residual.size == 0 or np.linalg.det(normal) <= 1e-9 * max(np.trace(normal) ** 2, 1e-30):
            return shift.astype(np.float64)
        step = -np.linalg.solve(normal, [sxr, syr])
        refined += step
        if np.abs(step).max() < 1e-3:
            break
    return refined if np.isfinite(refined).all() else shift.astype(np.float64)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _inside_residuals(warped, image0, grad0_x, grad0_y, inside):
    """The per-pixel terms of :func:`_refine_translation` where ``inside``, in pixel order:
    ``r = warped[..., 0] - image0``, ``gx = 0.5 * (grad0_x + warped[..., 1])``, ``gy`` likewise
    (float32, as numpy computes them), and ``np.median(np.abs(r))`` (:func:`_median`)."""
    size = 0
    for y in range(inside.shape[0]):
        for x in range(inside.shape[1]):
            size += inside[y, x]
    residual = np.empty(size, dtype=np.float32)
    gx = np.empty(size, dtype=np.float32)
    gy = np.empty(size, dtype=np.float32)
    half = np.float32(0.5)
    n = 0
    for y in range(inside.shape[0]):
        for x in range(inside.shape[1]):
            if inside[y, x]:
                residual[n] = warped[y, x, 0] - image0[y, x]
                gx[n] = half * (grad0_x[y, x] + warped[y, x, 1])
                gy[n] = half * (grad0_y[y, x] + warped[y, x, 2])
                n += 1
    return residual, gx, gy, _median(np.abs(residual))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _weighted_terms(residual, gx, gy, scale):
    """(5, N) float32 terms of :func:`_refine_translation`'s normal equations, with ``weight =
    1 / max(1, |residual| / scale)``: weight * gx * gx, weight * gx * gy, weight * gy * gy,
    weight * gx * residual, weight * gy * residual (float32, as numpy computes them; the sums
    stay numpy's)."""
    terms = np.empty((5, len(residual)), dtype=np.float32)
    one = np.float32(1.0)
    for n in range(len(residual)):
        ratio = np.abs(residual[n]) / scale
        weight = one / (one if ratio <= one else ratio)  # np.maximum: NaN propagates
        wx, wy = weight * gx[n], weight * gy[n]
        terms[0, n], terms[1, n], terms[2, n] = wx * gx[n], wx * gy[n], wy * gy[n]
        terms[3, n], terms[4, n] = wx * residual[n], wy * residual[n]
    return terms


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _median(values):
    """``np.median`` of 1-D float32 ``values`` (float32; NaN if empty or any is NaN), exact: the
    middle one or two by radix selection on order-preserving keys of the bit patterns."""
    keys = np.empty(len(values), dtype=np.uint32)
    bits = values.view(np.uint32)
    sign = np.uint32(0x80000000)
    for n in range(len(values)):
        if np.isnan(values[n]):
            return np.float32(np.nan)
        keys[n] = ~bits[n] if bits[n] & sign else bits[n] | sign
    if len(keys) == 0:
        return np.float32(np.nan)
    pair = np.empty(2, dtype=np.uint32)
    pair[0] = _kth_key(keys, (len(keys) - 1) // 2)
    pair[1] = pair[0] if len(keys) % 2 else _kth_key(keys, len(keys) // 2)
    for k in range(2):
        pair[k] = pair[k] & ~sign if pair[k] & sign else ~pair[k]
    middle = pair.view(np.float32)
    return np.float32(0.5) * (middle[0] + middle[1])


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _kth_key(keys, rank):
    """The ``rank``-th smallest (from 0) of uint32 ``keys``: three histogram passes (11, 11 and
    10 bits), each over the keys sharing the bits fixed so far."""
    prefix = np.uint32(0)
    mask = np.uint32(0)
    for shift, width in ((21, 11), (10, 11), (0, 10)):
        digit_mask = np.uint32((1 << width) - 1)
        histogram = np.zeros(1 << width, dtype=np.int64)
        for key in keys:
            if (key & mask) == prefix:
                histogram[(key >> shift) & digit_mask] += 1
        digit = 0
        while rank >= histogram[digit]:
            rank -= histogram[digit]
            digit += 1
        prefix |= np.uint32(digit) << np.uint32(shift)
        mask |= digit_mask << np.uint32(shift)
    return prefix


def reliability(gray0: np.ndarray, gray1: np.ndarray, flow: np.ndarray) -> float:
    """Fraction of pixels a flow explains: match inside frame 1, grey levels within
    :data:`RELIABLE_RESIDUAL`.

    Parameters
    ----------
    gray0, gray1 : ndarray, shape (H, W), uint8
        Frames t and t+1.
    flow : ndarray, shape (H, W, 2)
        Displacement from frame t to t+1, pixels, x then y.
    """
    inside, map_x, map_y = _match_inside(flow)
    warped = cv2.remap(gray1.astype(np.float32), map_x, map_y, cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_REPLICATE)
    explained = inside & (np.abs(warped - gray0) <= RELIABLE_RESIDUAL)
    return float(explained.mean())


def _match_inside(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(H, W) bool: where x + flow lies inside the frame; and the match's x and y maps."""
    height, width = flow.shape[:2]
    map_x = np.arange(width, dtype=np.float32)[None, :] + flow[..., 0].astype(np.float32)
    map_y = np.arange(height, dtype=np.float32)[:, None] + flow[..., 1].astype(np.float32)
    inside = (map_x >= 0) & (map_x <= width - 1) & (map_y >= 0) & (map_y <= height - 1)
    return inside, map_x, map_y


def _gray(frames: np.ndarray) -> np.ndarray:
    return np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames])


def _dis() -> cv2.DISOpticalFlow:
    return cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)


def camera_motion(flow: np.ndarray, *, inlier_radius: float = np.inf) -> np.ndarray:
    """Median flow of one frame pair: the camera motion of that pair.

    Parameters
    ----------
    flow : ndarray, shape (H, W, 2)
        Displacement from frame t to frame t+1 in pixels, x then y; NaN pixels are left out.
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
        Displacement from frame t to frame t+1 in pixels, x then y; NaN pixels are left out.
    tile : int
        Tile side in pixels. The last tile row/column holds the ``H % tile`` / ``W % tile``
        remaining pixels when the size is not a multiple.

    Returns
    -------
    medians : ndarray, shape (ceil(H / tile), ceil(W / tile), 2), float32
        Tile (i, j) covers rows ``i*tile:(i+1)*tile`` and columns ``j*tile:(j+1)*tile``; NaN
        where all its pixels are.
    """
    values, count = _tile_values(np.asarray(flow, dtype=np.float32), tile)
    ordered = np.sort(values, axis=-1)  # NaNs sort last
    lo = np.take_along_axis(ordered, (np.maximum(count - 1, 0) // 2)[..., None], axis=-1)[..., 0]
    hi = np.take_along_axis(ordered, (count // 2)[..., None], axis=-1)[..., 0]
    return np.where(count > 0, 0.5 * (lo + hi), np.float32(np.nan))


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _tile_values(flow, tile):
    """Each tile's values of (H, W, 2) float32 ``flow`` by component, NaN-padded to
    ``tile * tile``: (R, C, 2, tile * tile) float32; and how many are finite, (R, C, 2) int64."""
    height, width = flow.shape[:2]
    rows, cols = -(-height // tile), -(-width // tile)
    values = np.empty((rows, cols, 2, tile * tile), dtype=np.float32)
    count = np.zeros((rows, cols, 2), dtype=np.int64)
    for i in range(rows):
        for j in range(cols):
            for c in range(2):
                lane = values[i, j, c]
                k = 0
                for y in range(i * tile, min((i + 1) * tile, height)):
                    for x in range(j * tile, min((j + 1) * tile, width)):
                        lane[k] = flow[y, x, c]
                        count[i, j, c] += np.isfinite(lane[k])
                        k += 1
                lane[k:] = np.nan
    return values, count


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
        Per-tile median flow of P frame pairs (:func:`tile_medians`), pixels, x then y; NaN
        tiles are left out.
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
    """Weighted median of (P, N, 2) values with (P, N) weights, re-taken over the inliers.
    Values with a NaN component get weight 0."""
    finite = np.isfinite(values).all(axis=-1)
    weights = np.where(finite, weights, 0.0)
    values = np.where(finite[..., None], values, 0.0)
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
