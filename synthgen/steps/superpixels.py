"""Motion-compensated video superpixels: SLIC on the whole background clip (method step 4).

The paper calls scikit-image's ``slic`` on the (T, H, W) volume with two extra channels holding
each pixel's ``(x, y)`` minus the integrated camera motion of its frame, times a small random scale
(appendix A). ``method="skimage"`` is that call. The default, ``method="synthgen"``, is our own
implementation of the same algorithm (same features, distance, grid, windows, iteration count and
connectivity rule) in which the cluster centres live in camera-compensated coordinates, as the
paper intends: content that moves with the camera keeps its superpixel.

Why our own: scikit-image's search windows (+-2 grid steps around each centre) and its own spatial
term are in uncompensated (t, y, x) pixels, and its connectivity pass links pixels across frames
only where they overlap in the raw volume. At the paper's position scale (4e-4..6e-4) colour
dominates the distance, so the windows and the connectivity pass, not the position channels, decide
where a cluster may go: a superpixel cannot follow content that pans several pixels per frame
(measured: tracking IoU 0.83 -> 0.59 from 1 to 10 frames apart). Ours shifts each cluster's window
in frame t by that frame's camera motion, measures the spatial term in compensated coordinates and
enforces connectivity in the compensated volume (0.96 -> 0.93, ``benchmarks/bench_superpixels.py``).

Algorithm (scikit-image's ``slic`` with ``convert2lab=False``, ``max_num_iter=10``, ``sigma=0``,
``enforce_connectivity=True``, ``min_size_factor=0.5``, ``max_size_factor=3``):

- Features: RGB in [0, 1] and the two position channels, rescaled together to [0, 1] by their
  global min and max, times ``1 / compactness``; distance = squared feature difference + squared
  (t, y, x) distance / step^2, with ``step`` the largest grid step.
- Centres start on ``skimage.util.regular_grid`` with zero features (so the first assignment is a
  spatial Voronoi partition); each pixel joins the nearest centre among those whose window
  ``[floor(c - 2 step), floor(c + 2 step + 1))`` per axis contains it (ties: lowest index); centres
  move to the mean of their pixels; clusters that lose all pixels are dropped.
- Connected components below half the mean segment size merge into an adjacent one
  (scikit-image's own connectivity routine).

*Decisions* (ours only)

- Superpixels per image (appendix A: "between 10 and 30 superpixels per image"): the grid has one
  layer in time, at the centre frame with a time step of T (its windows span the clip), and in
  each frame scikit-image's 2-D ``regular_grid`` of ``segments_per_frame`` points, so a centre
  is a superpixel of every frame. This is the grid scikit-image's own 3-D call builds for
  ``n_segments = segments_per_frame`` whenever ``T < sqrt(H * W / segments_per_frame)``.
  ``n_segments = T * segments_per_frame`` on the 3-D grid (before) gave cells ~16 frames long
  and 90-460 superpixels per frame (measured on 31-frame demo and real clips). Since colour
  dominates, a frame then holds only 0.4-0.9 of the centres: `calibrated_slic` sets the request
  from the count measured on the labels.
- Compensated coordinates are ``(t, y - dy[t], x - dx[t])``; the initial grid covers every
  compensated position some frame sees, with scikit-image's steps and phase (identical to
  scikit-image's grid when the offsets are zero).
- Speed: the first ``max_num_iter - 1`` iterations run on frames averaged over ``downsample`` x
  ``downsample`` pixel cells (centre means stay exact: a cell's mean is the mean of its pixels);
  the last assignment is at full resolution, each pixel choosing among the clusters of its cell and
  the 8 neighbouring cells. ``downsample=1`` is the plain algorithm at full resolution (it
  reproduces scikit-image's labels to 99.9 % of pixels on zero offsets). SLIC at compactness 0.01
  is colour clustering, chaotic under small perturbations: a 1-level noise on the input moves
  scikit-image's own result by under-segmentation error ~0.2; ``downsample=4`` is measured against
  that spread in ``benchmarks/bench_superpixels.py``.
- The loops (assignment, centre means, refinement, connectivity) are compiled numba kernels
  (:mod:`synthgen.steps.slic_kernels`), visiting centres and pixels in scikit-image's order;
  they replaced batched torch matrix products (the same labels on all but ~1e-6 of the pixels of
  a 31-frame pan, 2-3x faster; the connectivity pass gives scikit-image's routine's labels
  exactly). `compile_kernels` loads them (compiling on the first run of a machine).
- Colour space: RGB scaled to [0, 1], not Lab: scikit-image converts to Lab only for 3-channel
  input, so the paper's 5-channel call clustered in RGB ("a clustering in RGB/XYZ space",
  appendix A), and the position scale is only meaningful against colour in [0, 1].
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
from skimage.segmentation import slic
from skimage.util import regular_grid

from synthgen.steps import slic_kernels as kernels

#: `calibrated_slic`: SLIC calls at most, the fraction of the target its mean count may miss by,
#: and the typical ratio of superpixels per frame to centres per frame (its first request).
MAX_TRIES = 4
TOLERANCE = 0.25
TYPICAL_YIELD = 0.6


def position_channels(offsets: np.ndarray, height: int, width: int, *,
                      scale: float) -> np.ndarray:
    """Motion-compensated pixel coordinates, the two extra SLIC channels.

    Parameters
    ----------
    offsets : ndarray, shape (T, 2)
        Integrated camera motion ``(dx, dy)`` per frame in frame pixels (content at ``x`` in the
        reference frame is at ``x + dx`` in frame t). Zeros give plain image coordinates.
    height, width : int
        Frame size in pixels.
    scale : float
        Multiplier of the coordinates (unitless feature per pixel).

    Returns
    -------
    ndarray, shape (T, height, width, 2), float32
        ``((x - dx[t]) * scale, (y - dy[t]) * scale)``: the position of each pixel's content in
        the reference frame, scaled.
    """
    offsets = np.asarray(offsets, dtype=np.float64)
    channels = np.empty((len(offsets), height, width, 2), dtype=np.float32)
    channels[..., 0] = (np.arange(width)[None, None, :] - offsets[:, 0, None, None]) * scale
    channels[..., 1] = (np.arange(height)[None, :, None] - offsets[:, 1, None, None]) * scale
    return channels


def motion_compensated_slic(frames: np.ndarray, offsets: np.ndarray, *, segments_per_frame: int,
                            position_scale: float, compactness: float, method: str = "synthgen",
                            downsample: int = 4) -> np.ndarray:
    """Supervoxels of a video clip that follow the camera motion.

    Parameters
    ----------
    frames : ndarray, shape (T, H, W, 3), uint8
        RGB background clip.
    offsets : ndarray, shape (T, 2)
        Integrated camera motion ``(dx, dy)`` in frame pixels (see `position_channels`); zeros
        disable the motion compensation.
    segments_per_frame : int
        Centres requested per frame: scikit-image's ``regular_grid`` of one frame with this many
        points, in one layer at the centre frame with a time step of T (module docstring). The
        labels returned per frame are fewer or more (`calibrated_slic` aims at a count).
    position_scale : float
        Scale of the position channels (paper: 4e-4..6e-4).
    compactness : float
        SLIC's compactness (paper: 0.01).
    method : {"synthgen", "skimage"}
        ``"synthgen"``: our SLIC with compensated centres, windows and connectivity (module
        docstring); ``"skimage"``: the paper's off-the-shelf ``skimage.segmentation.slic`` call,
        where only the position channels are compensated.
    downsample : int
        ``"synthgen"`` only: cell side in pixels of the first iterations (1: all at full
        resolution).

    Returns
    -------
    ndarray, shape (T, H, W), int32
        Superpixel label of every pixel, 1..N (consecutive). Deterministic for a given input.
    """
    num_frames, height, width = frames.shape[:3]
    if method == "skimage":
        features = np.empty((num_frames, height, width, 5), dtype=np.float32)
        np.multiply(frames, np.float32(1.0 / 255.0), out=features[..., :3])
        features[..., 3:] = position_channels(offsets, height, width, scale=position_scale)
        labels = slic(features, n_segments=segments_per_frame, compactness=compactness,
                      convert2lab=False, start_label=1, channel_axis=-1)
        return labels.astype(np.int32)
    if method != "synthgen":
        raise ValueError(f"unknown SLIC method {method!r} (expected 'synthgen' or 'skimage')")
    if downsample < 1:
        raise ValueError(f"downsample must be >= 1, got {downsample}")
    return _compensated_slic(frames, np.asarray(offsets, dtype=np.float64),
                             segments_per_frame=segments_per_frame, position_scale=position_scale,
                             compactness=compactness, downsample=downsample)


def superpixels_per_frame(labels: np.ndarray) -> np.ndarray:
    """Number of distinct labels in each frame.

    Parameters
    ----------
    labels : ndarray of int, shape (T, H, W)
        Superpixel labels (>= 0).

    Returns
    -------
    ndarray, shape (T,), int64
        Superpixels present in frame t.
    """
    return kernels.labels_per_frame(np.ascontiguousarray(labels))


@dataclass(frozen=True)
class Superpixels:
    """Outcome of `calibrated_slic`.

    Attributes
    ----------
    labels : ndarray, shape (T, H, W), int32
        Superpixel labels 1..N.
    per_frame : ndarray, shape (T,), int64
        Superpixels present in each frame (`superpixels_per_frame`).
    requested : int
        ``segments_per_frame`` of the `motion_compensated_slic` call that gave ``labels``.
    tries : int
        SLIC calls made.
    """

    labels: np.ndarray
    per_frame: np.ndarray
    requested: int
    tries: int


def calibrated_slic(frames: np.ndarray, offsets: np.ndarray, *, target: int,
                    limits: tuple[int, int], position_scale: float, compactness: float,
                    method: str = "synthgen", downsample: int = 4) -> Superpixels:
    """`motion_compensated_slic` with the grid set so that each frame holds about ``target``
    superpixels, measured on the labels.

    At compactness 0.01 colour dominates the distance, so many centres end up with only
    fragments smaller than half a segment, which the connectivity pass merges away: a frame holds
    0.4-0.9 of the centres asked for (median 0.6, ``TYPICAL_YIELD``; measured on real and demo
    clips), and how many depends on the content. So the first call asks for
    ``target / TYPICAL_YIELD`` centres per frame; the request is then corrected by
    ``target / measured mean`` (or by ``limit / count`` of the frame furthest outside
    ``limits``), moved on to the next grid size when it rounds to a grid already tried, and SLIC
    rerun, up to ``MAX_TRIES`` calls, until every frame's
    count is within ``limits`` and the mean within ``TOLERANCE`` of the target. Otherwise the
    call that came closest (all frames within ``limits`` first, then the mean nearest the target)
    is returned.

    Parameters
    ----------
    frames, offsets, position_scale, compactness, method, downsample
        As `motion_compensated_slic`.
    target : int
        Wanted superpixels per frame (paper: drawn in 10..30 per example).
    limits : (int, int)
        Inclusive range every frame's count should fall in (paper: 10, 30).

    Returns
    -------
    Superpixels
        Deterministic for a given input.
    """
    height, width = frames.shape[1:3]
    best, best_key, request = None, None, max(1, round(target / TYPICAL_YIELD))
    tried = set()  # grid sizes tried: nearby requests often round to the same grid
    for tries in range(1, MAX_TRIES + 1):
        tried.add(_grid_size(height, width, request))
        labels = motion_compensated_slic(frames, offsets, segments_per_frame=request,
                                         position_scale=position_scale, compactness=compactness,
                                         method=method, downsample=downsample)
        counts = superpixels_per_frame(labels)
        mean = float(counts.mean())
        inside = bool(counts.min() >= limits[0] and counts.max() <= limits[1])
        key = (not inside, abs(mean - target))
        if best_key is None or key < best_key:
            best, best_key = Superpixels(labels, counts, request, tries), key
        if inside and abs(mean - target) <= TOLERANCE * target:
            break
        # Aim at the target; a frame outside the limits pulls the whole clip back instead.
        aim = (limits[1] / counts.max() if counts.max() > limits[1] else
               limits[0] / counts.min() if counts.min() < limits[0] else target / mean)
        request = max(1, round(request * aim))
        while request >= 1 and _grid_size(height, width, request) in tried:
            request += 1 if aim > 1 else -1
        if request < 1:
            break
    return Superpixels(best.labels, best.per_frame, best.requested, tries)


def compile_kernels() -> float:
    """Compile (or load from numba's disk cache) every kernel the default SLIC runs, on a tiny
    clip, so that a worker's first example does not pay for it; returns the seconds taken."""
    start = time.perf_counter()
    frames = np.zeros((2, 8, 8, 3), dtype=np.uint8)
    calibrated_slic(frames, np.zeros((2, 2)), target=2, limits=(1, 4), position_scale=5e-4,
                    compactness=0.01)
    return time.perf_counter() - start


class _Features:
    """The global rescaling of the SLIC features (RGB, then the x and y position channels): like
    scikit-image, global min/max to [0, 1], times 1 / compactness, and times the largest grid step
    S, so that a squared vector difference is S^2 times SLIC's distance
    (:func:`synthgen.steps.slic_kernels.feature_vector` makes the vectors: ``(value - low) *
    gain``).
    """

    def __init__(self, frames: np.ndarray, offsets: np.ndarray, *, scale: float,
                 compactness: float, step: float):
        height, width = frames.shape[1:3]
        self.scale = scale
        low_xy = -offsets.max(axis=0) * scale
        high_xy = (np.array([width - 1, height - 1]) - offsets.min(axis=0)) * scale
        self.low = min(frames.min() / 255.0, low_xy.min())
        span = max(frames.max() / 255.0, high_xy.max()) - self.low
        self.gain = step / compactness / (span if span > 0 else 1.0)


def _grid_size(height: int, width: int, segments_per_frame: int) -> int:
    """Centres of scikit-image's 2-D ``regular_grid`` of one frame (before the pan extends it)."""
    rows, cols = (len(range(*s.indices(n))) for s, n in
                  zip(regular_grid((height, width), segments_per_frame), (height, width)))
    return rows * cols


def _initial_centres(shape: tuple[int, int, int], segments_per_frame: int,
                     offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One layer of centres per clip: scikit-image's 2-D grid of each frame, extended over all
    compensated positions the frames see, at the centre frame with a time step of the clip length.

    Returns centres (N, 3) float64 in compensated ``(t, v, u)`` and the integer grid steps (3,).
    """
    num_frames, height, width = shape
    slices = (slice(num_frames // 2, None, num_frames),) + regular_grid((height, width),
                                                                         segments_per_frame)
    steps = np.array([1 if s.step is None else int(s.step) for s in slices])
    starts = [0 if s.start is None else int(s.start) for s in slices]
    bounds = ((0, num_frames - 1), (-offsets[:, 1].max(), height - 1 - offsets[:, 1].min()),
              (-offsets[:, 0].max(), width - 1 - offsets[:, 0].min()))
    axes = [start + step * np.arange(math.ceil((lo - start) / step),
                                     math.floor((hi - start) / step) + 1)
            for start, step, (lo, hi) in zip(starts, steps, bounds)]
    grid = np.meshgrid(*axes, indexing="ij")
    return np.stack([g.ravel() for g in grid], axis=1).astype(np.float64), steps


def _windows(centres: np.ndarray, steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """scikit-image's search windows: coordinate q is in iff ``low <= q < high`` (N, 3 each)."""
    return np.floor(centres - 2 * steps), np.floor(centres + 2 * steps + 1)


class _Cells:
    """The clip averaged over ``cell`` x ``cell`` pixel cells (the last row and column hold the
    remainder): ``vectors`` (T, R, C, 8) float32 of the cells' mean colour and position,
    ``weights`` (R, C) their pixel counts, ``v`` (T, R) and ``u`` (T, C) the compensated
    coordinates of each frame's cell rows and columns, pixels."""

    def __init__(self, frames: np.ndarray, offsets: np.ndarray, features: _Features, cell: int):
        height, width = frames.shape[1:3]
        rows, cols = -(-height // cell), -(-width // cell)
        count_y = np.clip(height - np.arange(rows) * cell, 0, cell)
        count_x = np.clip(width - np.arange(cols) * cell, 0, cell)
        self.weights = (count_y[:, None] * count_x[None, :]).astype(np.float64)
        self.v = (np.arange(rows) * cell + (count_y - 1) / 2.0)[None, :] - offsets[:, 1, None]
        self.u = (np.arange(cols) * cell + (count_x - 1) / 2.0)[None, :] - offsets[:, 0, None]
        self.vectors = kernels.cell_vectors(frames, self.v, self.u, cell, features.low,
                                            features.gain, features.scale)


def _compensated_slic(frames: np.ndarray, offsets: np.ndarray, *, segments_per_frame: int,
                      position_scale: float, compactness: float, downsample: int,
                      max_num_iter: int = 10) -> np.ndarray:
    """Our SLIC (module docstring); arguments as `motion_compensated_slic`."""
    num_frames, height, width = frames.shape[:3]
    grid, steps = _initial_centres((num_frames, height, width), segments_per_frame, offsets)
    features = _Features(frames, offsets, scale=position_scale, compactness=compactness,
                         step=float(steps.max()))
    frames = np.ascontiguousarray(frames)
    cells = _Cells(frames, offsets, features, downsample)
    centres = np.zeros((len(grid), kernels.NUM_FEATURES))
    centres[:, 5:] = grid
    active = np.ones(len(grid), dtype=bool)
    labels = np.full(cells.vectors.shape[:3], -1, dtype=np.int64)
    for _ in range(max_num_iter - 1 if downsample > 1 else max_num_iter):
        labels = kernels.assign(cells.vectors, cells.v, cells.u, centres, active,
                                *_windows(centres[:, 5:], steps), labels)
        centres, active = kernels.centre_means(cells.vectors, cells.weights, labels, len(grid))
    if downsample > 1:
        labels = kernels.refine(frames, offsets, labels, downsample,
                                centres, *_windows(centres[:, 5:], steps), features.low,
                                features.gain, features.scale)
    # Connectivity in the compensated volume: frames sit in a canvas at their integer-rounded
    # camera offsets, so that 6-connectivity across frames links pixels showing the same content.
    shift = np.round(offsets).astype(np.int64)
    segment_size = num_frames * height * width / len(grid)
    return kernels.enforce_connectivity(labels, shift.max(axis=0) - shift, int(0.5 * segment_size),
                                        int(3 * segment_size))
