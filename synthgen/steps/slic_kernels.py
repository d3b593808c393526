"""Compiled loops of our motion-compensated SLIC (:mod:`synthgen.steps.superpixels`).

numba ``@njit`` kernels, compiled on first use and cached on disk (``cache=True``: beside this
module in ``__pycache__``, or under ``NUMBA_CACHE_DIR``); no ``fastmath``, so every sum runs in
the written order and a rebuild gives identical labels.

Conventions: a clip is (T, H, W) in frame pixels; compensated coordinates are
``(t, v, u) = (t, y - dy[t], x - dx[t])`` with ``offsets[t] = (dx, dy)`` (x then y, pixels).
A feature vector has 8 values, ``[S * 5 SLIC features, t, v, u]`` (:func:`feature_vector`), so
that a squared vector difference is S^2 times SLIC's distance. A search window of a centre is
``low <= q < high`` per compensated axis (t, v, u).
"""

from __future__ import annotations

import numba
import numpy as np

#: Compiled on first use, cached on disk; no fastmath (identical results on every rebuild).
_jit = numba.njit(cache=True, nogil=True)

#: Values of a feature vector: 3 colour, 2 position channels, then t, v, u.
NUM_FEATURES = 8


@_jit
def feature_vector(red, green, blue, t, v, u, low, gain, scale, out):
    """Write the vector of a pixel (or cell) into ``out`` (8,): colour in 0..255, frame ``t``,
    compensated ``(v, u)`` in pixels; ``low``, ``gain``: the global rescaling of the SLIC
    features (``superpixels._Features``); ``scale``: the position channels' scale. Every value
    is rounded to float32 (the precision vectors are stored at)."""
    out[0] = np.float32((red / 255.0 - low) * gain)
    out[1] = np.float32((green / 255.0 - low) * gain)
    out[2] = np.float32((blue / 255.0 - low) * gain)
    out[3] = np.float32((u * scale - low) * gain)
    out[4] = np.float32((v * scale - low) * gain)
    out[5] = t
    out[6] = np.float32(v)
    out[7] = np.float32(u)


@_jit
def cell_vectors(colour, v, u, low, gain, scale):
    """Vectors (T, R, C, 8) float32 of cells with mean colour ``colour`` (T, R, C, 3) in 0..255;
    ``v`` (T, R) and ``u`` (T, C) are the compensated coordinates of each frame's cell rows and
    columns (their pixels' mean), pixels."""
    num_frames, rows, cols = colour.shape[:3]
    vectors = np.empty((num_frames, rows, cols, NUM_FEATURES), dtype=np.float32)
    buffer = np.empty(NUM_FEATURES)
    for t in range(num_frames):
        for r in range(rows):
            for c in range(cols):
                feature_vector(colour[t, r, c, 0], colour[t, r, c, 1], colour[t, r, c, 2], t,
                               v[t, r], u[t, c], low, gain, scale, buffer)
                vectors[t, r, c] = buffer
    return vectors


@_jit
def _inside(k, t, v, u, low, high):
    return (low[k, 0] <= t < high[k, 0] and low[k, 1] <= v < high[k, 1]
            and low[k, 2] <= u < high[k, 2])


@_jit
def _distance(vector, centres, k):
    total = 0.0
    for j in range(NUM_FEATURES):
        d = vector[j] - centres[k, j]
        total += d * d
    return total


@_jit
def assign(vectors, v, u, centres, active, low, high, labels):
    """One SLIC assignment of cells: each joins the nearest active centre whose window holds it.

    Parameters
    ----------
    vectors : ndarray, shape (T, R, C, 8), float32
        Cell vectors (:func:`cell_vectors`).
    v, u : ndarray, shapes (T, R) and (T, C), float64
        Compensated coordinates of the cell rows and columns, pixels.
    centres : ndarray, shape (N, 8), float64
        Centre vectors.
    active : ndarray, shape (N,), bool
        Centres that still have cells.
    low, high : ndarray, shape (N, 3), float64
        Search windows (t, v, u).
    labels : ndarray, shape (T, R, C), int64
        Previous labels, kept where no window holds a cell (-1: none).

    Returns
    -------
    ndarray, shape (T, R, C), int64
        New labels. Centres are visited in index order and replace a cell's label only when
        strictly nearer, so ties go to the lowest index (as scikit-image's loop).
    """
    num_frames, rows, cols = labels.shape
    out = labels.copy()
    best = np.full(labels.shape, np.inf)
    for k in range(len(centres)):
        if not active[k]:
            continue
        for t in range(max(int(low[k, 0]), 0), min(int(high[k, 0]), num_frames)):
            for r in range(rows):
                if not low[k, 1] <= v[t, r] < high[k, 1]:
                    continue
                for c in range(cols):
                    if not low[k, 2] <= u[t, c] < high[k, 2]:
                        continue
                    d = _distance(vectors[t, r, c], centres, k)
                    if d < best[t, r, c]:
                        best[t, r, c] = d
                        out[t, r, c] = k
    return out


@_jit
def centre_means(vectors, weights, labels, num_centres):
    """Weighted mean vectors (N, 8) float64 of each label's cells (``weights`` (R, C): pixels
    per cell; labels < 0 left out) and whether a label has any cell (N,) bool."""
    sums = np.zeros((num_centres, NUM_FEATURES))
    count = np.zeros(num_centres)
    num_frames, rows, cols = labels.shape
    for t in range(num_frames):
        for r in range(rows):
            for c in range(cols):
                k = labels[t, r, c]
                if k < 0:
                    continue
                w = weights[r, c]
                count[k] += w
                for j in range(NUM_FEATURES):
                    sums[k, j] += w * vectors[t, r, c, j]
    active = count > 0
    for k in range(num_centres):
        if active[k]:
            for j in range(NUM_FEATURES):
                sums[k, j] /= count[k]
    return sums, active


@_jit
def refine(frames, offsets, coarse, cell, centres, low, high, feature_low, gain, scale):
    """Full-resolution SLIC assignment among the labels of each pixel's cell and its 8 neighbours.

    Parameters
    ----------
    frames : ndarray, shape (T, H, W, 3), uint8
        RGB clip.
    offsets : ndarray, shape (T, 2), float64
        Camera offsets (dx, dy), pixels.
    coarse : ndarray, shape (T, R, C), int64
        Labels of ``cell`` x ``cell`` pixel cells (R = ceil(H / cell), C = ceil(W / cell)).
    cell : int
        Cell side, pixels.
    centres, low, high
        As :func:`assign`.
    feature_low, gain, scale : float
        As :func:`feature_vector`.

    Returns
    -------
    ndarray, shape (T, H, W), int64
        Each pixel's nearest candidate whose window holds it (ties: the first of own cell, then
        the neighbours in row-major order), else its cell's label.
    """
    num_frames, height, width = frames.shape[:3]
    rows, cols = coarse.shape[1:]
    out = np.empty((num_frames, height, width), dtype=np.int64)
    candidates = np.empty(9, dtype=np.int64)
    vector = np.empty(NUM_FEATURES)
    for t in range(num_frames):
        for r in range(rows):
            for c in range(cols):
                own = coarse[t, r, c]
                candidates[0] = own
                n = 1
                for dr in range(-1, 2):
                    for dc in range(-1, 2):
                        label = coarse[t, min(max(r + dr, 0), rows - 1),
                                       min(max(c + dc, 0), cols - 1)]
                        if label < 0:
                            continue
                        known = False
                        for i in range(n):
                            known = known or candidates[i] == label
                        if not known:
                            candidates[n] = label
                            n += 1
                y_end, x_end = min((r + 1) * cell, height), min((c + 1) * cell, width)
                if n == 1:  # one candidate: chosen where its window holds a pixel, else kept
                    out[t, r * cell:y_end, c * cell:x_end] = own
                    continue
                for y in range(r * cell, y_end):
                    pv = y - offsets[t, 1]
                    for x in range(c * cell, x_end):
                        pu = x - offsets[t, 0]
                        feature_vector(frames[t, y, x, 0], frames[t, y, x, 1], frames[t, y, x, 2],
                                       t, pv, pu, feature_low, gain, scale, vector)
                        choice, best = own, np.inf
                        for i in range(n):
                            k = candidates[i]
                            if k < 0 or not _inside(k, t, pv, pu, low, high):
                                continue
                            d = _distance(vector, centres, k)
                            if d < best:
                                best, choice = d, k
                        out[t, y, x] = choice
    return out


@_jit
def enforce_connectivity(labels, origin, min_size, max_size):
    """scikit-image's ``_enforce_label_connectivity_cython`` on frames pasted into a canvas.

    Frame t's pixel (y, x) is the canvas voxel ``(t, y + origin[t, 1], x + origin[t, 0])``;
    voxels outside every frame belong to no segment. Scans the canvas in raster order, grows each
    unvisited 6-connected component of equal labels by breadth-first search (at most
    ``max_size`` voxels) and merges one smaller than ``min_size`` into the last labelled
    component it touched, exactly as scikit-image's routine on that canvas.

    Parameters
    ----------
    labels : ndarray, shape (T, H, W), int64
        Labels (>= 0) of each frame.
    origin : ndarray, shape (T, 2), int64
        Canvas position (x, y) of each frame's top-left pixel.
    min_size, max_size : int
        Voxels.

    Returns
    -------
    ndarray, shape (T, H, W), int32
        Connected labels, consecutive from 1.
    """
    num_frames, height, width = labels.shape
    out = np.zeros(labels.shape, dtype=np.int32)  # 0: not yet visited
    queue = np.empty((max(max_size, 1), 3), dtype=np.int64)
    step_x = (1, -1, 0, 0, 0, 0)  # scikit-image's neighbour order
    step_y = (0, 0, 1, -1, 0, 0)
    step_t = (0, 0, 0, 0, 1, -1)
    current = 1
    for t0 in range(num_frames):
        for y0 in range(height):
            for x0 in range(width):
                if out[t0, y0, x0] > 0:
                    continue
                adjacent = current
                label = labels[t0, y0, x0]
                out[t0, y0, x0] = current
                size, visited = 1, 0
                queue[0, 0], queue[0, 1], queue[0, 2] = t0, y0, x0
                while visited < size < max_size:
                    t, y, x = queue[visited, 0], queue[visited, 1], queue[visited, 2]
                    for i in range(6):
                        tt = t + step_t[i]
                        if not 0 <= tt < num_frames:
                            continue
                        # Same canvas voxel, in frame tt's pixels.
                        yy = y + step_y[i] + origin[t, 1] - origin[tt, 1]
                        xx = x + step_x[i] + origin[t, 0] - origin[tt, 0]
                        if not (0 <= yy < height and 0 <= xx < width):
                            continue
                        if labels[tt, yy, xx] == label and out[tt, yy, xx] == 0:
                            out[tt, yy, xx] = current
                            queue[size, 0], queue[size, 1], queue[size, 2] = tt, yy, xx
                            size += 1
                            if size >= max_size:
                                break
                        elif out[tt, yy, xx] > 0 and out[tt, yy, xx] != current:
                            adjacent = out[tt, yy, xx]
                    visited += 1
                if size < min_size:
                    for i in range(size):
                        out[queue[i, 0], queue[i, 1], queue[i, 2]] = adjacent
                else:
                    current += 1
    return out
