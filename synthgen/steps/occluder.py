"""One random superpixel as occluder (method step 5).

The chosen superpixel removes every person pixel it covers. It is rejected (no occlusion) when it
does not overlap the person at all, or when fewer than ``min_visible`` of the 14 COCO-common
joints remain visible per frame on average.

*Decision*: "visible" for that count means not hidden by any reason known at this step: outside
the frame, behind the depth map, or covered by the candidate. Total occlusions are drawn
independently afterwards and do not count (they simulate detector failures, not occluders).

How often an example ends up occluded is `outcome_probabilities`'s ``"occluded"``: the fraction of
the superpixels present that `apply_occluder` accepts (the draw is uniform over them). With
SURREAL-sized people (median 145 px tall) and 10-30 superpixels per frame it is 48 % on the demo
data and 51 % on real footage, against the paper's "roughly 30 %" (``benchmarks/bench_occluder.py``):
at compactness 0.01 SLIC clusters colour, its superpixels are ragged and interleaved, and the
person's outline over the clip meets about half of them (cells of a compact grid, as many per
frame, would give 35 %).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from synthgen.core.joints import COCO14
from synthgen.steps.visibility import covered_by_mask, mean_visible

OCCLUDED = "occluded"
MISSED_PERSON = "missed_person"
TOO_FEW_VISIBLE = "too_few_visible"
DISABLED = "disabled"
REASONS = (OCCLUDED, MISSED_PERSON, TOO_FEW_VISIBLE, DISABLED)


@dataclass(frozen=True)
class Occluder:
    """Outcome of the occluder step.

    Attributes
    ----------
    mask : ndarray, shape (T, H, W), bool
        The occluding superpixel in frame pixels; all False unless ``reason == "occluded"``.
    superpixel : int
        The candidate's label (1..N), -1 when disabled.
    reason : str
        One of ``REASONS``.
    occluded_fraction : float
        Fraction of the person's pixels (over the clip) removed; 0 unless occluded.
    candidate_visible : float
        Mean visible COCO-14 joints per frame with the candidate applied (NaN when disabled).
    """

    mask: np.ndarray
    superpixel: int
    reason: str
    occluded_fraction: float
    candidate_visible: float

    @property
    def occluded(self) -> bool:
        return self.reason == OCCLUDED


def disabled_occluder(shape: tuple[int, int, int]) -> Occluder:
    """The occluder of an example without occlusion (ablation): an empty (T, H, W) mask."""
    return Occluder(mask=np.zeros(shape, dtype=bool), superpixel=-1, reason=DISABLED,
                    occluded_fraction=0.0, candidate_visible=float("nan"))


def pick_superpixel(labels: np.ndarray, u: float) -> int:
    """The superpixel at quantile ``u`` of the labels present, uniformly over labels.

    Parameters
    ----------
    labels : ndarray of int, shape (T, H, W)
        Superpixel labels (>= 0).
    u : float
        A uniform draw in [0, 1), so the rng is consumed the same way whatever the labels.

    Returns
    -------
    int
        One of the labels present.
    """
    present = np.flatnonzero(np.bincount(labels.ravel()))
    return int(present[min(int(u * len(present)), len(present) - 1)])


def outcome_probabilities(labels: np.ndarray, person_mask: np.ndarray, joints2d: np.ndarray,
                          hidden: np.ndarray, *, min_visible: float) -> dict[str, float]:
    """Probability of each occluder outcome over the uniform draw of `pick_superpixel`.

    Parameters are those of `apply_occluder`, which judges every superpixel present.

    Returns
    -------
    dict
        ``{reason: fraction of the labels present with that outcome}`` for ``OCCLUDED``,
        ``MISSED_PERSON`` and ``TOO_FEW_VISIBLE`` (they sum to 1).
    """
    present = np.flatnonzero(np.bincount(labels.ravel()))
    reasons = [apply_occluder(labels, int(label), person_mask, joints2d, hidden,
                              min_visible=min_visible).reason for label in present]
    return {reason: reasons.count(reason) / len(present)
            for reason in (OCCLUDED, MISSED_PERSON, TOO_FEW_VISIBLE)}


def apply_occluder(labels: np.ndarray, superpixel: int, person_mask: np.ndarray,
                   joints2d: np.ndarray, hidden: np.ndarray, *, min_visible: float) -> Occluder:
    """Accept or reject one superpixel as the occluder of the person.

    Parameters
    ----------
    labels : ndarray of int, shape (T, H, W)
        Superpixel labels of the background clip.
    superpixel : int
        The candidate label (`pick_superpixel`).
    person_mask : ndarray, shape (T, H, W), bool
        The tracked person (``segm > 0``), frame pixels.
    joints2d : ndarray, shape (T, 24, 2)
        Tracked joints in frame pixels (x, y).
    hidden : ndarray, shape (T, 24), bool
        Joints already hidden for other reasons (outside the frame, behind the depth map).
    min_visible : float
        Minimum mean number of visible COCO-14 joints per frame (paper: 7).

    Returns
    -------
    Occluder
    """
    candidate = labels == superpixel
    person_pixels = int(np.count_nonzero(person_mask))
    removed = int(np.count_nonzero(candidate & person_mask))
    visible = mean_visible(hidden | covered_by_mask(joints2d, candidate), joints=COCO14)
    empty = np.zeros_like(candidate)
    if removed == 0:
        return Occluder(empty, superpixel, MISSED_PERSON, 0.0, visible)
    if visible < min_visible:
        return Occluder(empty, superpixel, TOO_FEW_VISIBLE, 0.0, visible)
    return Occluder(candidate, superpixel, OCCLUDED, removed / person_pixels, visible)
