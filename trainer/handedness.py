"""Handedness of a store's 3D joints: are they the SMPL body or its mirror image?

SURREAL's world-to-camera map is a reflection (``synthgen.camera.SURREAL_R``, determinant -1), so
the camera-frame ``joints3d`` of stores built from SURREAL clips are the mirror image of the SMPL
body of the stored ``pose`` and ``betas``. No SMPL pose can produce a mirrored skeleton (the body
model only rotates), and PA-MPJPE aligns by proper rotations only: against mirrored targets even
the true parameters score far from zero (the demo store: 129 mm median over its 96 examples, 0.00
mm after the fix below), and the 3D loss fights the 2D loss, which wants the unmirrored body.

The fix: negate the depth (z) of a mirrored store's camera-frame joints. Depth-negated joints are
a proper rotation of the SMPL body, and their image projection direction (x, y) is unchanged, so
the 2D keypoints, the heatmaps and the weak-perspective reprojection stay consistent with them.
Which stores are mirrored is measured, not assumed (:func:`measure_handedness`): 3DPW stores and
the trainer's own synthetic stores are not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from synthgen import store as synthstore
from trainer.joints import EVAL_JOINTS
from trainer.metrics import METRES_TO_MM, pa_mpjpe
from trainer.smpl import SMPLJoints

#: Examples of a store compared with the body model (spread over the store).
CHECK_EXAMPLES = 8
#: Largest median PA-MPJPE (mm) of the depth-negated joints for a store to count as mirrored: the
#: body model's gender and joint-regressor differences stay under 10 mm; joints unrelated to the
#: stored pose (e.g. test data) fit neither way.
MAX_FIT_MM = 25.0
#: Multiply camera-frame joints by this to negate their depth.
DEPTH_FLIP = np.array([1.0, 1.0, -1.0], dtype=np.float32)


@dataclass(frozen=True)
class Handedness:
    """Median PA-MPJPE (mm, 14 evaluation joints) between the SMPL joints of a store's ``pose``
    and ``betas`` and its ``joints3d`` as stored (``stored_mm``) and depth-negated
    (``flipped_mm``). ``mirrored`` when the depth-negated joints fit the body (within
    :data:`MAX_FIT_MM`) and better than the stored ones."""

    stored_mm: float
    flipped_mm: float

    @property
    def mirrored(self) -> bool:
        return self.flipped_mm < min(self.stored_mm, MAX_FIT_MM)


def unmirror(joints3d: np.ndarray) -> np.ndarray:
    """Depth-negated camera-frame joints ``(..., 3)`` metres (same dtype): the mirror image."""
    return joints3d * DEPTH_FLIP.astype(joints3d.dtype)


@torch.no_grad()
def measure_handedness(url: str, examples: np.ndarray, smpl: SMPLJoints) -> Handedness:
    """Compare a store's ``joints3d`` with the SMPL joints of its ``pose`` and ``betas``.

    Parameters
    ----------
    url : str
        Store path or URL.
    examples : ndarray, shape (N,), int
        Finished examples (:attr:`trainer.data.StoreInfo.examples`); up to
        :data:`CHECK_EXAMPLES` of them, evenly spaced, are read.
    smpl : SMPLJoints
        The trainer's body model (any gender: the handedness gap dwarfs gender differences).

    Returns
    -------
    Handedness
    """
    group = synthstore.open_group(url)
    pick = examples[np.unique(np.linspace(0, examples.size - 1, CHECK_EXAMPLES).round().astype(int))]
    selection = (np.sort(pick),)
    device = smpl.joint_template.device
    pose, betas = (torch.as_tensor(np.asarray(group[name].get_orthogonal_selection(selection)),
                                   dtype=torch.float64, device=device) for name in ("pose", "betas"))
    stored = np.asarray(group["joints3d"].get_orthogonal_selection(selection))[..., EVAL_JOINTS, :]
    body = smpl(pose, betas[:, None].expand(-1, pose.shape[1], -1))[..., EVAL_JOINTS, :]

    def error(joints: np.ndarray) -> float:
        target = torch.as_tensor(joints, dtype=torch.float64, device=device)
        return float(pa_mpjpe(body * METRES_TO_MM, target * METRES_TO_MM).median())

    return Handedness(stored_mm=error(stored), flipped_mm=error(unmirror(stored)))
