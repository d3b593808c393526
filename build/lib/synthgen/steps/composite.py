"""Paste the tracked, occluded person onto the background (method step 6)."""

from __future__ import annotations

import numpy as np


def person_mask(segm: np.ndarray, occluder_mask: np.ndarray) -> np.ndarray:
    """Hard person mask: SURREAL's ``segm > 0`` minus the occluder.

    Parameters
    ----------
    segm : ndarray, shape (T, H, W), uint8
        Tracked part labels (0 = background).
    occluder_mask : ndarray, shape (T, H, W), bool
        Pixels removed from the person.

    Returns
    -------
    ndarray, shape (T, H, W), bool
    """
    return (segm > 0) & ~occluder_mask


def composite(background: np.ndarray, person_rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Person pixels where ``mask``, background elsewhere (no blending).

    Parameters
    ----------
    background, person_rgb : ndarray, shape (T, H, W, 3), uint8
    mask : ndarray, shape (T, H, W), bool

    Returns
    -------
    ndarray, shape (T, H, W, 3), uint8
    """
    return np.where(mask[..., None], person_rgb, background)
