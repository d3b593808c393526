"""Check stored joints against smplx itself: the SMPL joints of a pose, and the rigid map to them."""

from __future__ import annotations

import numpy as np
import smplx
import torch

from synthgen.core.joints import NUM_SMPL_JOINTS


def smplx_joints(smpl_dir, pose: np.ndarray, betas: np.ndarray, gender: str) -> np.ndarray:
    """``smplx.SMPL``'s 24 joints (metres, model frame, no translation) of poses (N, 72)."""
    model = smplx.SMPL(model_path=str(smpl_dir), gender=gender)
    pose = torch.as_tensor(np.asarray(pose, dtype=np.float32))
    betas = torch.as_tensor(np.asarray(betas, dtype=np.float32)).reshape(1, -1)
    betas = betas.expand(len(pose), -1)
    with torch.no_grad():
        out = model(global_orient=pose[:, :3], body_pose=pose[:, 3:], betas=betas)
    return out.joints[:, :NUM_SMPL_JOINTS].double().numpy()


def rigid_fit(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, float]:
    """Best orthogonal map (reflections allowed) of centred ``source`` (J, 3) onto centred
    ``target``; returns the matrix and the largest residual (metres)."""
    a, b = source - source.mean(axis=0), target - target.mean(axis=0)
    u, _, vt = np.linalg.svd(b.T @ a)
    rotation = u @ vt
    return rotation, float(np.linalg.norm(a @ rotation.T - b, axis=-1).max())
