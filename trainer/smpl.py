"""SMPL joints from pose and shape, batched and differentiable, and the weak-perspective camera.

Joint positions are computed with smplx's own kinematics (``smplx.lbs.batch_rodrigues`` and
``batch_rigid_transform``) on the shaped rest joints ``J_regressor @ (v_template + shapedirs
betas)``; this equals the first 24 joints of ``smplx.SMPL``'s output (pose blend shapes move
vertices, never joints) without skinning the 6890 vertices.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from smplx.lbs import batch_rigid_transform, batch_rodrigues
from torch import nn

from trainer.joints import NUM_SMPL_JOINTS
from trainer.model.regressor import NUM_BETAS, NUM_POSE
from trainer.smpl_file import load_smpl_model


class SMPLJoints(nn.Module):
    """The 24 posed SMPL joints of a batch of bodies.

    Parameters
    ----------
    model : mapping of str to ndarray
        An SMPL model as :func:`trainer.smpl_file.load_smpl_model` returns it.

    Notes
    -----
    Buffers are float32 and follow ``.to(device)``. The kinematic tree stays a CPU tensor so that
    walking it on a GPU needs no device synchronisation.
    """

    def __init__(self, model: Mapping[str, np.ndarray]):
        super().__init__()
        regressor = np.asarray(model["J_regressor"], dtype=np.float64)
        template = regressor @ np.asarray(model["v_template"], dtype=np.float64)
        shapedirs = np.asarray(model["shapedirs"], dtype=np.float64)[:, :, :NUM_BETAS]
        joint_shapedirs = np.einsum("jv,vcb->jcb", regressor, shapedirs)
        self.register_buffer("joint_template", torch.as_tensor(template, dtype=torch.float32))
        self.register_buffer("joint_shapedirs",
                             torch.as_tensor(joint_shapedirs, dtype=torch.float32))
        parents = torch.as_tensor(np.asarray(model["kintree_table"])[0], dtype=torch.long).clone()
        parents[0] = -1
        self.parents = parents

    @classmethod
    def from_path(cls, path: str | Path, *, gender: str = "neutral") -> "SMPLJoints":
        """Build from an SMPL model pickle (official chumpy or converted; read safely).

        Parameters
        ----------
        path : str or Path
            A model file, or a directory holding ``SMPL_{NEUTRAL,MALE,FEMALE}.pkl`` (smplx's
            layout), from which ``gender`` picks one.
        gender : {"neutral", "male", "female"}
            Used only when ``path`` is a directory.

        Raises
        ------
        FileNotFoundError, trainer.errors.ModelFileError
            As :func:`trainer.smpl_file.load_smpl_model`.
        """
        path = Path(path)
        if path.is_dir():
            path = path / f"SMPL_{gender.upper()}.pkl"
        return cls(load_smpl_model(path))

    def forward(self, pose: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
        """Posed joints.

        Parameters
        ----------
        pose : Tensor, shape (..., 72)
            Axis-angle rotations in radians, global orientation first (SMPL joint order).
        betas : Tensor, shape (..., 10)
            Shape coefficients.

        Returns
        -------
        Tensor, shape (..., 24, 3)
            Joint positions in metres in SMPL's model frame (rotated by the global orientation;
            no translation, so the pelvis sits at its rest position rotated about the origin).
        """
        lead = pose.shape[:-1]
        if pose.shape[-1] != NUM_POSE or betas.shape != (*lead, NUM_BETAS):
            raise ValueError(f"pose must be (..., {NUM_POSE}) and betas (..., {NUM_BETAS}) with "
                             f"the same leading shape, got {tuple(pose.shape)} and "
                             f"{tuple(betas.shape)}")
        pose = pose.reshape(-1, NUM_POSE)
        rest = self.joint_template.to(pose.dtype) + torch.einsum(
            "jcb,nb->njc", self.joint_shapedirs.to(pose.dtype), betas.reshape(-1, NUM_BETAS))
        rotations = batch_rodrigues(pose.reshape(-1, 3)).view(-1, NUM_SMPL_JOINTS, 3, 3)
        joints, _ = batch_rigid_transform(rotations, rest, self.parents, dtype=pose.dtype)
        return joints.reshape(*lead, NUM_SMPL_JOINTS, 3)


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
