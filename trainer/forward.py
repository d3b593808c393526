"""The one forward path of Motion HMR: store batch -> network inputs -> parameters -> joints.

Training, validation, ``trainer eval``, ``trainer predict`` and the DANN baseline all run the
network through these functions, so what the network sees never differs between them.
"""

from __future__ import annotations

import torch

from synthgen.core.joints import COCO14, MIN_VISIBLE
from trainer.config import DataConfig
from trainer.data import hidden_keypoints, make_inputs
from trainer.losses import keypoint_loss, stack_heads
from trainer.model.motion_hmr import clip_predictions
from trainer.model.regressor import BETAS, CAMERA, POSE
from trainer.smpl import SMPLJoints


def select_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; anything else as torch spells it.

    Raises
    ------
    ValueError
        A name torch does not know, or a CUDA device this machine does not have.
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"unknown device {name!r}: use auto, cpu, cuda or cuda:N") from exc
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (device.index or 0) >= count:
            others = f", or cuda:0..{count - 1}" if count else ""
            raise ValueError(f"device {name!r}: this machine has {count} usable CUDA GPU(s); use "
                             f"--device auto or cpu{others}")
    return device


def network_inputs(batch: dict[str, torch.Tensor], *, config: DataConfig, crop_size: int,
                   generator: torch.Generator | None = None,
                   share: tuple[int, int] = (0, 1)) -> torch.Tensor:
    """Inputs (B, T-1, C, input_size, input_size) of a device batch (store array names).

    ``generator`` given (training): the visibility randomisation draws from it; None keeps the
    stored visibility (validation, eval, predict, DANN's real clips). ``share`` ``(rank, world)``:
    the batch is slice ``rank`` of a global batch of ``world`` equal slices; the randomisation is
    drawn for the global batch and this slice kept, so it equals one process's draw.
    """
    rank, world = share
    if generator is None or world == 1:
        hidden = hidden_keypoints(batch, config=config, generator=generator)
    else:
        visibility = batch["visibility"]
        size = visibility.shape[0]
        padded = visibility.new_zeros((size * world, *visibility.shape[1:]))
        padded[rank * size:(rank + 1) * size] = visibility
        hidden = hidden_keypoints({"visibility": padded}, config=config,
                                  generator=generator)[rank * size:(rank + 1) * size]
    return make_inputs(batch, config=config, crop_size=crop_size, hidden=hidden)


def predict_parameters(model: torch.nn.Module, batch: dict[str, torch.Tensor], *,
                       config: DataConfig, crop_size: int) -> torch.Tensor:
    """The test-time parameters (B, T, 85), float32, of every frame of the batch's clips
    (:func:`trainer.model.clip_predictions`; the stored visibility, no randomisation)."""
    inputs = network_inputs(batch, config=config, crop_size=crop_size)
    return clip_predictions(model(inputs)).float()


def predicted_joints(smpl: SMPLJoints, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The 14 evaluation joints (metres, SMPL model frame) and cameras of parameters (..., 85)."""
    joints = smpl(theta[..., POSE], theta[..., BETAS])[..., COCO14, :]
    return joints, theta[..., CAMERA]


def training_loss(outputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor],
                  smpl: SMPLJoints, *, weight_2d: float) -> dict[str, torch.Tensor]:
    """Motion HMR's loss on both heads of every pair, in float32, on the 14 evaluation joints.

    Parameters
    ----------
    outputs : dict
        :meth:`trainer.model.MotionHMR.forward` output.
    targets : dict
        :func:`trainer.data.make_targets` output.
    """
    joints, camera = predicted_joints(smpl, stack_heads(outputs).float())
    return keypoint_loss(joints, camera, targets["joints3d"][..., COCO14, :],
                         targets["keypoints"][..., COCO14, :],
                         targets["visible"][..., COCO14], weight_2d=weight_2d)


def evaluated_frames(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """(B, T) bool: frames of a synthetic batch that validation and eval count (at least
    :data:`synthgen.core.joints.MIN_VISIBLE` of the 14 joints visible, not a total occlusion)."""
    visible = (batch["visibility"][..., COCO14] == 0).sum(dim=-1)
    return (visible >= MIN_VISIBLE) & ~batch["total_occlusion"]
