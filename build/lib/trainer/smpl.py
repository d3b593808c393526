"""The trainer's SMPL: the body model (:class:`synthgen.core.smpl.SMPLJoints`, re-exported) and
HMR's weak-perspective camera."""

from __future__ import annotations

import torch

from synthgen.core.smpl import SMPLJoints

__all__ = ["SMPLJoints", "weak_perspective"]


def weak_perspective(joints: torch.Tensor, camera: torch.Tensor) -> torch.Tensor:
    """Project 3D joints with HMR's weak-perspective camera.

    Parameters
    ----------
    joints : Tensor, shape (..., J, 3)
        Joints in metres (:class:`SMPLJoints` output).
    camera : Tensor, shape (..., 3)
        ``(s, tx, ty)``: scale and a translation in metres.

    Returns
    -------
    Tensor, shape (..., J, 2)
        ``s * (X[:2] + (tx, ty))``: x then y in normalised crop coordinates, -1 at the left/top
        edge of the crop and +1 at the right/bottom edge (x right, y down).
    """
    return camera[..., None, :1] * (joints[..., :2] + camera[..., None, 1:])
