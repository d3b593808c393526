"""Quality measures of superpixel labelings, for the superpixel tests and benchmark.

Labelings are ``(T, H, W)`` integer arrays (one label per pixel, frame pixels).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def tracking_iou(labels: np.ndarray, offsets: np.ndarray, t: int, k: int) -> float:
    """Area-weighted mean IoU of each superpixel of frame t, moved by the camera motion from t to
    t+k, with the same superpixel in frame t+k (over the area both frames see)."""
    height, width = labels.shape[1:]
    dx, dy = np.round(offsets[t + k] - offsets[t]).astype(int)
    moved = labels[t, max(-dy, 0):height - max(dy, 0), max(-dx, 0):width - max(dx, 0)]
    later = labels[t + k, max(dy, 0):height - max(-dy, 0), max(dx, 0):width - max(-dx, 0)]
    ious, areas = [], []
    for label in np.unique(moved):
        a, b = moved == label, later == label
        ious.append(np.count_nonzero(a & b) / np.count_nonzero(a | b))
        areas.append(np.count_nonzero(a))
    return float(np.average(ious, weights=areas))


def boundary_recall(labels: np.ndarray, reference: np.ndarray, *, tolerance: int = 2) -> float:
    """Fraction of the reference's in-frame boundary pixels within ``tolerance`` px (square) of a
    boundary of ``labels`` in the same frame. Both (T, H, W) int."""
    def boundaries(segments):
        edge = np.zeros(segments.shape, dtype=bool)
        edge[:, :-1] |= segments[:, :-1] != segments[:, 1:]
        edge[:, :, :-1] |= segments[:, :, :-1] != segments[:, :, 1:]
        return edge
    reference_edges = boundaries(reference)
    near = ndimage.binary_dilation(boundaries(labels),
                                   np.ones((1, 2 * tolerance + 1, 2 * tolerance + 1), dtype=bool))
    return np.count_nonzero(reference_edges & near) / max(np.count_nonzero(reference_edges), 1)


def undersegmentation_error(labels: np.ndarray, reference: np.ndarray) -> float:
    """Neubert & Protzel's under-segmentation error of ``labels`` against ``reference`` segments:
    sum over overlapping (segment, reference segment) pairs of min(inside, outside) / pixels."""
    ours = labels.ravel().astype(np.int64)
    pairs = np.bincount(reference.ravel().astype(np.int64) * (ours.max() + 1) + ours)
    which = np.nonzero(pairs)[0]
    inside = pairs[which]
    size = np.bincount(ours)[which % (ours.max() + 1)]
    return float(np.minimum(inside, size - inside).sum() / ours.size)
