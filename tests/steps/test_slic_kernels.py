"""The compiled SLIC loops: the connectivity pass is scikit-image's routine on the compensated
canvas, label counts per frame are numpy's."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.segmentation._slic import _enforce_label_connectivity_cython

from synthgen.steps.slic_kernels import enforce_connectivity, labels_per_frame


def blocky_labels(seed: int, shape=(5, 40, 50), values: int = 3) -> np.ndarray:
    """Random labels in 2 x 2 pixel blocks: many small components, touching across frames."""
    rng = np.random.default_rng(seed)
    num_frames, height, width = shape
    blocks = rng.integers(0, values, size=(num_frames, height // 2, width // 2))
    return np.repeat(np.repeat(blocks, 2, axis=1), 2, axis=2).astype(np.int32)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("min_size, max_size", [(10, 300), (50, 1000), (1, 20)])
def test_connectivity_is_scikit_images_routine_on_the_canvas(seed, min_size, max_size):
    labels = blocky_labels(seed)
    shift = np.round(np.cumsum(np.random.default_rng(seed).normal(0, 3, (5, 2)), axis=0))
    origin = (shift.max(axis=0) - shift).astype(np.int64)  # canvas (x, y) of each frame
    num_frames, height, width = labels.shape
    canvas = np.zeros((num_frames, height + origin[:, 1].max(), width + origin[:, 0].max()),
                      dtype=np.intp)  # 0: outside every frame
    views = [(t, slice(y, y + height), slice(x, x + width)) for t, (x, y) in enumerate(origin)]
    for view, frame in zip(views, labels):
        canvas[view] = frame + 1
    reference = _enforce_label_connectivity_cython(canvas, min_size, max_size, start_label=1)
    expected = np.stack([reference[view] for view in views])
    result = enforce_connectivity(labels, origin, min_size, max_size)
    assert result.dtype == np.int32
    np.testing.assert_array_equal(result, expected)


def test_labels_per_frame_counts_distinct_labels():
    labels = blocky_labels(2, values=40) * 3  # gaps between the values present
    expected = [len(np.unique(frame)) for frame in labels]
    np.testing.assert_array_equal(labels_per_frame(labels), expected)
