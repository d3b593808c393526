"""Training losses of Motion HMR and the pieces of the DANN baseline.

The loss (section 3.2, after Arnab et al. 2019): Procrustes-aligned 3D keypoint error plus 2D
reprojection error of the 3D keypoints through the weak-perspective camera, hidden keypoints
excluded from the 2D term, summed over every prediction (current and future heads of every pair).
"""

from __future__ import annotations

import torch
from torch import nn

from trainer.model.motion_hmr import HEADS
from trainer.procrustes import similarity_align
from trainer.smpl import weak_perspective


def pa_keypoint_error(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Procrustes-aligned 3D keypoint error, differentiable in ``pred``.

    Parameters
    ----------
    pred, target : Tensor, shape (..., J, 3)
        Predicted and true 3D keypoints in metres, same joint order.

    Returns
    -------
    Tensor, shape (...)
        Mean Euclidean distance (metres) between ``target`` and ``pred`` aligned to it by a
        similarity transform (proper rotation only).
    """
    return torch.linalg.vector_norm(similarity_align(pred, target) - target, dim=-1).mean(dim=-1)


def reprojection_error(pred: torch.Tensor, target: torch.Tensor,
                       visible: torch.Tensor) -> torch.Tensor:
    """L1 2D keypoint error over visible keypoints (HMR's keypoint loss).

    Parameters
    ----------
    pred, target : Tensor, shape (..., J, 2)
        Projected and true keypoints, x then y in normalised crop coordinates (see
        :func:`trainer.smpl.weak_perspective`).
    visible : Tensor, shape (..., J), bool
        True where the keypoint is visible; hidden ones contribute nothing.

    Returns
    -------
    Tensor, shape (...)
        Sum of |dx| + |dy| over visible keypoints divided by their number (0 with none visible).
    """
    weight = visible.to(pred.dtype)
    total = ((pred - target).abs().sum(dim=-1) * weight).sum(dim=-1)
    return total / weight.sum(dim=-1).clamp_min(1.0)


def pair_frames(per_frame: torch.Tensor) -> torch.Tensor:
    """Targets of the two heads: frames t and t + 1 of each pair.

    Parameters
    ----------
    per_frame : Tensor, shape (B, T, ...)
        One value per frame of a T-frame clip.

    Returns
    -------
    Tensor, shape (B, T - 1, 2, ...)
        ``[:, t, 0]`` is frame t (``current`` head), ``[:, t, 1]`` frame t + 1 (``future`` head).
    """
    return torch.stack([per_frame[:, :-1], per_frame[:, 1:]], dim=2)


def stack_heads(outputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """Stack the heads of :class:`trainer.model.MotionHMR` as :func:`pair_frames` orders targets.

    Parameters
    ----------
    outputs : dict
        Model output with ``current`` and ``future`` of shape (B, P, 85).

    Returns
    -------
    Tensor, shape (B, P, 2, 85)
    """
    return torch.stack([outputs[name] for name in HEADS], dim=2)


def keypoint_loss(joints: torch.Tensor, camera: torch.Tensor, target_joints: torch.Tensor,
                  target_keypoints: torch.Tensor, visible: torch.Tensor, *,
                  weight_2d: float = 1.0) -> dict[str, torch.Tensor]:
    """Motion HMR's loss over any number of predictions.

    Parameters
    ----------
    joints : Tensor, shape (..., J, 3)
        Predicted 3D keypoints, metres (e.g. :class:`trainer.smpl.SMPLJoints` output at
        :data:`synthgen.core.joints.COCO14`), leading dims e.g. (B, P, 2) for both heads.
    camera : Tensor, shape (..., 3)
        Predicted weak-perspective cameras ``(s, tx, ty)``.
    target_joints : Tensor, shape (..., J, 3)
        True 3D keypoints, metres (any frame: the alignment removes rotation and translation).
    target_keypoints : Tensor, shape (..., J, 2)
        True 2D keypoints, normalised crop coordinates, x then y.
    visible : Tensor, shape (..., J), bool
        2D visibility of the true keypoints.
    weight_2d : float
        Weight of the 2D term (decision: 1).

    Returns
    -------
    dict of str to Tensor (scalars)
        ``pa_3d``: mean Procrustes-aligned 3D error (metres); ``reprojection_2d``: mean 2D L1
        error; ``loss = pa_3d + weight_2d * reprojection_2d``. Means over predictions are their sum
        divided by the number of predictions, so the scale does not depend on batch size or clip
        length.
    """
    pa_3d = pa_keypoint_error(joints, target_joints).mean()
    reprojection_2d = reprojection_error(weak_perspective(joints, camera), target_keypoints,
                                         visible).mean()
    return {"loss": pa_3d + weight_2d * reprojection_2d, "pa_3d": pa_3d,
            "reprojection_2d": reprojection_2d}


class _GradientReversal(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: float) -> torch.Tensor:
        ctx.weight = weight
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.weight * grad, None


def reverse_gradient(x: torch.Tensor, weight: float = 1.0) -> torch.Tensor:
    """Identity forward; multiplies the gradient by ``-weight`` backward (Ganin & Lempitsky).

    Parameters
    ----------
    x : Tensor, any shape
    weight : float
        DANN loss weight (the paper sweeps 0.2 to 5).

    Returns
    -------
    Tensor, same shape as ``x``
    """
    return _GradientReversal.apply(x, weight)


class DomainAdversary(nn.Module):
    """DANN's domain classifier on the per-pair CNN features, behind a gradient reversal.

    Parameters
    ----------
    in_features : int
        Feature width (2048 for ResNet-50).
    hidden : int
        Hidden units (paper: 1024). Decision: "2-layer" read as two linear layers,
        ``in -> hidden -> ReLU -> 1``.
    weight : float
        Gradient-reversal weight, i.e. the DANN loss weight seen by the trunk.
    """

    def __init__(self, in_features: int = 2048, *, hidden: int = 1024, weight: float = 1.0):
        super().__init__()
        self.weight = weight
        self.mlp = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(inplace=True),
                                 nn.Linear(hidden, 1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Domain logits.

        Parameters
        ----------
        features : Tensor, shape (..., in_features)
            E.g. ``MotionHMR`` output ``features`` (B, P, 2048).

        Returns
        -------
        Tensor, shape (...)
            Logit of "real video" (train with ``binary_cross_entropy_with_logits`` against 1 for
            real, 0 for synthetic); the trunk receives the reversed, weighted gradient.
        """
        return self.mlp(reverse_gradient(features, self.weight)).squeeze(-1)
