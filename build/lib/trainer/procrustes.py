"""Similarity Procrustes alignment of point sets, batched and differentiable (torch)."""

from __future__ import annotations

import torch


def similarity_align(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Align ``source`` to ``target`` by the best scale, rotation and translation.

    Parameters
    ----------
    source, target : Tensor, shape (..., J, 3)
        Point sets in the same units (e.g. metres); J >= 3 non-collinear points per set.

    Returns
    -------
    Tensor, shape (..., J, 3)
        ``s * source @ R + t`` minimising the squared distance to ``target``, in the target's
        frame and units. ``R`` is a proper rotation (det +1): the reflection that an unconstrained
        orthogonal Procrustes would allow is excluded (Umeyama's sign correction).

    Notes
    -----
    Gradients flow through the SVD; they are ill-defined only when two singular values of the
    cross-covariance coincide (degenerate point sets).
    """
    source_mean = source.mean(dim=-2, keepdim=True)
    target_mean = target.mean(dim=-2, keepdim=True)
    x = source - source_mean
    y = target - target_mean
    u, sigma, vh = torch.linalg.svd(x.transpose(-1, -2) @ y)
    sign = torch.sign(torch.linalg.det(u @ vh)).detach()
    sign = torch.where(sign == 0, torch.ones_like(sign), sign)
    correction = torch.cat([torch.ones_like(sigma[..., :2]), sign[..., None]], dim=-1)
    rotation = u @ (correction[..., :, None] * vh)
    scale = (sigma * correction).sum(dim=-1) / (x * x).sum(dim=(-1, -2)).clamp_min(1e-12)
    return scale[..., None, None] * (x @ rotation) + target_mean
