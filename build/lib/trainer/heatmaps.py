"""Keypoint heatmaps rendered on the device (method.md step 11): one Gaussian per keypoint."""

from __future__ import annotations

import torch


def render_heatmaps(keypoints: torch.Tensor, visible: torch.Tensor, *, size: int, crop_size: int,
                    sigma: float = 10.0) -> torch.Tensor:
    """Gaussian heatmaps of keypoints, at any output resolution.

    Parameters
    ----------
    keypoints : Tensor, shape (..., K, 2), float
        Keypoints in crop pixels of a ``crop_size`` crop, x then y; pixel (row i, column j) of the
        crop has its centre at (x, y) = (j, i).
    visible : Tensor, shape (..., K), bool
        False where the keypoint is hidden: its heatmap is all zeros.
    size : int
        Side of the output heatmaps in pixels. When ``size != crop_size`` the maps sample the
        crop-resolution Gaussian at the centres of the ``size`` x ``size`` grid laid over the crop
        (as area downsampling of the crop would place them).
    crop_size : int
        Side of the crop the keypoints are expressed in (224 in the paper).
    sigma : float
        Standard deviation in crop pixels at ``crop_size`` (paper: 10).

    Returns
    -------
    Tensor, shape (..., K, size, size), same dtype and device as ``keypoints``
        ``exp(-d^2 / (2 sigma^2))``: 1 at the keypoint's own position, 0 for hidden keypoints.
    """
    step = crop_size / size
    grid = (torch.arange(size, device=keypoints.device, dtype=keypoints.dtype) + 0.5) * step - 0.5
    dx = (grid - keypoints[..., 0:1]) ** 2  # (..., K, size) along x
    dy = (grid - keypoints[..., 1:2]) ** 2  # (..., K, size) along y
    scale = -0.5 / (sigma * sigma)
    maps = torch.exp(scale * dy)[..., :, None] * torch.exp(scale * dx)[..., None, :]
    return maps * visible[..., None, None].to(maps.dtype)
