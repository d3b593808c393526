"""Total occlusions: a contiguous run of frames where the person is missing (method step 7).

*Decision*: an example carries only the per-frame indicator; its crops are not blanked. The
consumer (trainer) sets every input channel (RGB, flow, heatmaps) of those frames to 0 and feeds
the indicator as an extra channel, so one store serves every input modality and flow is never
computed against a blank frame. Keypoints on those frames get visibility bit ``TOTAL_OCCLUSION``.
"""

from __future__ import annotations

import numpy as np


def draw_total_occlusion(rng: np.random.Generator, num_frames: int, *, probability: float,
                         min_frames: int, max_frames: int) -> tuple[int, int]:
    """Draw whether, where and how long the person is totally occluded.

    Always consumes the same three draws (occurs?, length, start), so later draws of the example
    do not depend on the outcome.

    Parameters
    ----------
    rng : numpy.random.Generator
    num_frames : int
        T.
    probability : float
        Chance that an example has a total occlusion (decision: 0.5).
    min_frames, max_frames : int
        Inclusive range of the run length (paper: up to 15), clipped to T; uniform.

    Returns
    -------
    start, length : int
        First frame and number of frames of the run; length 0 when there is none.
    """
    occurs = rng.random() < probability
    longest = min(max_frames, num_frames)
    length = int(rng.integers(min(min_frames, longest), longest + 1))
    start = int(rng.integers(0, num_frames - length + 1))
    return (start, length) if occurs else (0, 0)


def total_occlusion_indicator(num_frames: int, start: int, length: int) -> np.ndarray:
    """Per-frame indicator, True on frames ``start .. start + length - 1``.

    Returns
    -------
    ndarray, shape (num_frames,), bool
    """
    indicator = np.zeros(num_frames, dtype=bool)
    indicator[start:start + length] = True
    return indicator
