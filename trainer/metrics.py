"""Evaluation metrics: MPJPE and PA-MPJPE, and the paper's per-person averaging.

Units: the errors are in the units of the inputs. The paper reports millimetres: pass joints in
metres multiplied by :data:`METRES_TO_MM`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from trainer.procrustes import similarity_align

#: Multiply metres by this to get the paper's millimetres.
METRES_TO_MM = 1000.0


def mpjpe(pred: torch.Tensor, target: torch.Tensor, *,
          root: Sequence[int] | None = None) -> torch.Tensor:
    """Mean per-joint position error.

    Parameters
    ----------
    pred, target : Tensor, shape (..., J, 3)
        Predicted and true joints, same units and joint order.
    root : sequence of int, optional
        Joints whose mean is subtracted from each set first (e.g. both hips); none by default.

    Returns
    -------
    Tensor, shape (...)
        Mean Euclidean distance over the J joints, in the input units.
    """
    if root is not None:
        index = list(root)
        pred = pred - pred[..., index, :].mean(dim=-2, keepdim=True)
        target = target - target[..., index, :].mean(dim=-2, keepdim=True)
    return torch.linalg.vector_norm(pred - target, dim=-1).mean(dim=-1)


def pa_mpjpe(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Procrustes-aligned MPJPE (the paper's metric).

    Parameters
    ----------
    pred, target : Tensor, shape (..., J, 3)
        Predicted and true joints, same units and joint order (for the paper: the 14
        evaluation joints, :data:`synthgen.core.joints.COCO14`, in mm).

    Returns
    -------
    Tensor, shape (...)
        MPJPE after the similarity alignment (scale, proper rotation, translation) of ``pred``
        to ``target``; a mirrored prediction is not forgiven.
    """
    return mpjpe(similarity_align(pred, target), target)


def average_per_person(errors: np.ndarray, person: np.ndarray) -> float:
    """Average frame errors per person, then over people (section 4 of the paper).

    Parameters
    ----------
    errors : ndarray, shape (N,)
        One error per evaluated frame.
    person : ndarray, shape (N,)
        Identifier of the person of each frame (any hashable dtype: ints or strings).

    Returns
    -------
    float
        Mean over people of each person's mean frame error (input units).

    Raises
    ------
    ValueError
        When the arrays differ in length or are empty.
    """
    errors = np.asarray(errors, dtype=np.float64)
    person = np.asarray(person)
    if errors.shape != person.shape or errors.ndim != 1 or errors.size == 0:
        raise ValueError(f"errors and person must be equal-length non-empty 1-D arrays, "
                         f"got {errors.shape} and {person.shape}")
    _, group = np.unique(person, return_inverse=True)
    return float(np.mean(np.bincount(group, weights=errors) / np.bincount(group)))
