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

#: Compiled on first use, cached on disk; no fastmath (identical results on every rebuild);
#: numpy's error model (float division by zero gives inf, as numpy, and loops vectorise).
_jit = numba.njit(cache=True, nogil=True, error_model="numpy")

#: Values of a feature vector: 3 colour, 2 position channels, then t, v, u.
NUM_FEATURES = 8


@_jit
def colour_feature(value, low, gain):
    """Feature of a colour value in 0..255 (``low``, ``gain``: the global rescaling of the SLIC
    features, ``superpixels._Features``), rounded to float32 (the precision of stored vectors)."""
    return np.float32((value / 255.0 - low) * gain)


@_jit
def position_feature(coordinate, low, gain, scale):
    """Feature of a compensated coordinate (pixels; ``scale``: the position channels' scale)."""
    return np.float32((coordinate * scale - low) * gain)


@_jit
def feature_vector(red, green, blue, t, v, u, low, gain, scale, out):
    """Write the vector of a pixel (or cell) into ``out`` (8,): colour in 0..255, frame ``t``,
    compensated ``(v, u)`` in pixels; ``low``, ``gain``, ``scale`` as :func:`colour_feature` and
    :func:`position_feature`. Every value is rounded to float32."""
    out[0] = colour_feature(red, low, gain)
    out[1] = colour_feature(green, low, gain)
    out[2] = colour_feature(blue, low, gain)
    out[3] = position_feature(u, low, gain, scale)
    out[4] = position_feature(v, low, gain, scale)
    out[5] = t
    out[6] = np.float32(v)
    out[7] = np.float32(u)


@_jit
def cell_vectors(frames, v, u, cell, low, gain, scale):
    """Vectors (T, R, C, 8) float32 of the mean colour and position of each ``cell`` x ``cell``
    pixel cell of ``frames`` (T, H, W, 3) uint8 (the last row and column hold the remainder);
    ``v`` (T, R) and ``u`` (T, C) are the compensated coordinates of each frame's cell rows and
    columns (their pixels' mean), pixels; ``low``, ``gain``, ``scale`` as :func:`feature_vector`."""
    num_frames, height, width = frames.shape[:3]
    rows, cols = v.shape[1], u.shape[1]
    vectors = np.empty((num_frames, rows, cols, NUM_FEATURES), dtype=np.float32)
    buffer = np.empty(NUM_FEATURES)
    sums = np.empty(3)
    for t in range(num_frames):
        for r in range(rows):
            for c in range(cols):
                sums[:] = 0.0
                y_end, x_end = min((r + 1) * cell, height), min((c + 1) * cell, width)
                for y in range(r * cell, y_end):
                    for x in range(c * cell, x_end):
                        for channel in range(3):
                            sums[channel] += frames[t, y, x, channel]
                count = (y_end - r * cell) * (x_end - c * cell)
                feature_vector(sums[0] / count, sums[1] / count, sums[2] / count, t, v[t, r],
                               u[t, c], low, gain, scale, buffer)
                vectors[t, r, c] = buffer
    return vectors


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
    centre = np.empty(NUM_FEATURES)
    for k in range(len(centres)):
        if not active[k]:
            continue
        centre[:] = centres[k]
        for t in range(max(int(low[k, 0]), 0), min(int(high[k, 0]), num_frames)):
            # v and u increase along the rows and columns: the window is a range of each.
            r0, r1 = _window_range(v[t], low[k, 1], high[k, 1])
            c0, c1 = _window_range(u[t], low[k, 2], high[k, 2])
            for r in range(r0, r1):
                for c in range(c0, c1):
                    d = 0.0
                    for j in range(NUM_FEATURES):
                        e = vectors[t, r, c, j] - centre[j]
                        d += e * e
                    if d < best[t, r, c]:
                        best[t, r, c] = d
                        out[t, r, c] = k
    return out


@_jit
def _window_range(coordinates, low, high):
    """Indices ``[start, stop)`` of the increasing ``coordinates`` with ``low <= q < high``."""
    start = 0
    while start < len(coordinates) and coordinates[start] < low:
        start += 1
    stop = start
    while stop < len(coordinates) and coordinates[stop] < high:
        stop += 1
    return start, stop


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
    ndarray, shape (T, H, W), int32
        Each pixel's nearest candidate whose window holds it (ties: the first of own cell, then
        the neighbours in row-major order), else its cell's label.
    """
    num_frames, height, width = frames.shape[:3]
    rows, cols = coarse.shape[1:]
    out = np.empty((num_frames, height, width), dtype=np.int32)
    colour = np.empty(256)  # feature of each 8-bit colour value
    for value in range(256):
        colour[value] = colour_feature(value, feature_low, gain)
    candidates = np.empty(9, dtype=np.int64)
    holds_v = np.empty(9, dtype=np.bool_)
    vector = np.empty(NUM_FEATURES)
    for t in range(num_frames):
        dx, dy = offsets[t, 0], offsets[t, 1]
        vector[5] = t
        for r in range(rows):
            for c in range(cols):
                own = coarse[t, r, c]
                # Distinct labels of the 3 x 3 cells, own first; those whose window misses frame t
                # are never chosen.
                candidates[0] = own
                n = 1
                for dr in range(-1, 2):
                    for dc in range(-1, 2):
                        label = coarse[t, min(max(r + dr, 0), rows - 1),
                                       min(max(c + dc, 0), cols - 1)]
                        if label < 0 or not low[label, 0] <= t < high[label, 0]:
                            continue
                        known = False
                        for i in range(n):
                            known = known or candidates[i] == label
                        if not known:
                            candidates[n] = label
                            n += 1
                y_end, x_end = min((r + 1) * cell, height), min((c + 1) * cell, width)
                if n == 1:  # own label only: chosen where its window holds a pixel, else kept
                    out[t, r * cell:y_end, c * cell:x_end] = own
                    continue
                for y in range(r * cell, y_end):
                    pv = y - dy
                    vector[4] = position_feature(pv, feature_low, gain, scale)
                    vector[6] = np.float32(pv)
                    for i in range(n):
                        k = candidates[i]
                        holds_v[i] = k >= 0 and low[k, 1] <= pv < high[k, 1]
                    for x in range(c * cell, x_end):
                        pu = x - dx
                        vector[0] = colour[frames[t, y, x, 0]]
                        vector[1] = colour[frames[t, y, x, 1]]
                        vector[2] = colour[frames[t, y, x, 2]]
                        vector[3] = position_feature(pu, feature_low, gain, scale)
                        vector[7] = np.float32(pu)
                        choice, best = own, np.inf
                        for i in range(n):
                            k = candidates[i]
                            if not (holds_v[i] and low[k, 2] <= pu < high[k, 2]
                                    and low[k, 0] <= t < high[k, 0]):
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
    labels : ndarray, shape (T, H, W), int32, C-contiguous
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
    plane = height * width
    flat = labels.ravel()  # voxels by flat index (t * H + y) * W + x
    connected = np.zeros(labels.shape, dtype=np.int32)  # 0: not yet visited
    out = connected.ravel()
    queue = np.empty(max(max_size, 1), dtype=np.int64)
    current = 1
    for start in range(flat.size):
        if out[start] > 0:
            continue
        adjacent = current
        label = flat[start]
        out[start] = current
        size, visited = 1, 0
        queue[0] = start
        while visited < size < max_size:
            p = queue[visited]
            t = p // plane
            y = (p - t * plane) // width
            x = p - t * plane - y * width
            # scikit-image's neighbour order: x + 1, x - 1, y + 1, y - 1, t + 1, t - 1 (the same
            # canvas voxel in frame t +- 1's pixels).
            for i in range(6):
                if i == 0:
                    if x + 1 >= width:
                        continue
                    q = p + 1
                elif i == 1:
                    if x == 0:
                        continue
                    q = p - 1
                elif i == 2:
                    if y + 1 >= height:
                        continue
                    q = p + width
                elif i == 3:
                    if y == 0:
                        continue
                    q = p - width
                else:
                    tt = t + 1 if i == 4 else t - 1
                    if not 0 <= tt < num_frames:
                        continue
                    yy = y + origin[t, 1] - origin[tt, 1]
                    xx = x + origin[t, 0] - origin[tt, 0]
                    if not (0 <= yy < height and 0 <= xx < width):
                        continue
                    q = (tt * height + yy) * width + xx
                seen = out[q]
                if seen == 0 and flat[q] == label:
                    out[q] = current
                    queue[size] = q
                    size += 1
                    if size >= max_size:
                        break
                elif seen > 0 and seen != current:
                    adjacent = seen
            visited += 1
        if size < min_size:
            for i in range(size):
                out[queue[i]] = adjacent
        else:
            current += 1
    return connected


@_jit
def labels_per_frame(labels):
    """Number of distinct labels (>= 0) in each frame of ``labels`` (T, H, W): (T,) int64."""
    num_frames = labels.shape[0]
    counts = np.zeros(num_frames, dtype=np.int64)
    seen = np.full(labels.max() + 1, -1, dtype=np.int64)  # last frame each label was seen in
    for t in range(num_frames):
        for value in labels[t].ravel():
            if seen[value] != t:
                seen[value] = t
                counts[t] += 1
    return counts
