"""Training Motion HMR on synthgen stores: ``train(config, stores, out_dir=...)``.

The run itself is a :class:`trainer.trainer.Trainer` (its module docstring lists the run folder:
``config.json``, ``metrics.csv``, ``tensorboard/``, ``curves.png``, ``last.pt``,
``summary.json``); ``resume=True`` continues from ``out_dir/last.pt`` exactly as if the run had
not stopped (bit-identical on CPU). This module holds what the run measures from the training
data: the regressors' starting point and the mean-training-pose baseline.

Validation: PA-MPJPE in millimetres over the 14 evaluation joints, on held-out SURREAL clips
(:func:`trainer.data.split_stores`), centred windows of ``clip_length`` frames, the T test-time
predictions per clip (:func:`trainer.model.clip_predictions`), frames with at least 7 of the 14
joints visible and not totally occluded (:func:`trainer.forward.evaluated_frames`), averaged per
person then over people (section 4). Baselines on the same frames: the regressor's starting point
(mean parameters) and the mean training pose (generalised Procrustes mean of training frames).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from trainer.checkpoint import CHECKPOINT, checkpoint_config, load_checkpoint, portable_location
from trainer.config import TrainConfig
from trainer.data import StoreInfo, read_array
from trainer.model.regressor import BETAS, NUM_POSE
from trainer.procrustes import similarity_align

#: Training examples read for the mean-training-pose baseline (at most).
BASELINE_EXAMPLES = 256


@dataclass(frozen=True)
class TrainResult:
    """Figures of a finished run (PA-MPJPE in mm on the validation frames)."""

    steps: int
    val_pa_mpjpe_mm: float
    baseline_mean_params_mm: float
    baseline_mean_pose_mm: float
    initial_val_pa_mpjpe_mm: float
    val_frames: int
    last_loss: float


def training_mean_params(stores: list[StoreInfo], items: np.ndarray, *,
                         base: np.ndarray) -> np.ndarray:
    """Regressor starting point from training data: mean body pose and mean shape.

    Parameters
    ----------
    stores : list of StoreInfo
    items : ndarray, shape (M, 2)
        Training examples (:attr:`trainer.data.Split.items`); every frame's stored ``pose``
        (axis-angle radians) and each example's ``betas`` are read.
    base : ndarray, shape (85,)
        Parameters whose global orientation and camera are kept (stores hold camera-frame
        orientations, ``synthgen.store.JOINTS_CONVENTIONS``, which are not averaged here).

    Returns
    -------
    ndarray, shape (85,), float32
        ``base`` with pose joints 1..23 replaced by the chordal L2 mean rotation of each joint
        over all training frames (``scipy.spatial.transform.Rotation.mean``), as axis-angle, and
        betas by the mean betas.
    """
    pose = read_array(stores, items, "pose").reshape(-1, NUM_POSE // 3, 3)
    theta = np.array(base, dtype=np.float32)
    for joint in range(1, NUM_POSE // 3):
        theta[3 * joint:3 * joint + 3] = Rotation.from_rotvec(pose[:, joint]).mean().as_rotvec()
    theta[BETAS] = read_array(stores, items, "betas").mean(axis=0)
    return theta


def procrustes_mean(joints: torch.Tensor, *, iterations: int = 5) -> torch.Tensor:
    """Generalised Procrustes mean of point sets (N, J, 3) -> (J, 3), same units."""
    mean = joints[0]
    for _ in range(iterations):
        mean = similarity_align(joints, mean.expand_as(joints)).mean(dim=0)
    return mean


def train(config: TrainConfig, stores: list[str] | None, *, out_dir: str | Path,
          resume: bool = False, log=print) -> TrainResult:
    """Train Motion HMR on ``stores`` for ``config.optim.steps`` optimiser steps.

    Parameters
    ----------
    config : TrainConfig
    stores : list of str or None
        Store paths/URLs (finished shards only are read; mixed crop-flow backends refused unless
        ``config.data.allow_mixed_flow``). With ``resume``: None or empty for the checkpoint's
        recorded stores; else they must be those.
    out_dir : str or Path
        The run folder (created if missing).
    resume : bool
        Continue from ``out_dir/last.pt`` (its config wins over ``config``).
    log : callable
        Receives one human-readable line per event.

    Returns
    -------
    TrainResult

    Raises
    ------
    FileNotFoundError
        ``resume`` without a checkpoint; a missing store or model file.
    ValueError
        A checkpoint refused by :func:`trainer.checkpoint.load_checkpoint` or holding no trainer
        state; no ``stores`` without ``resume``, or others than the resumed run's; unusable
        stores (see :func:`trainer.data.open_stores`), too few examples for one batch, DANN
        without real stores.
    """
    from trainer.trainer import Trainer  # trainer.trainer imports this module's helpers

    state = None
    if resume:
        path = Path(out_dir) / CHECKPOINT
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no checkpoint to resume from")
        checkpoint = load_checkpoint(path)
        if "trainer" not in checkpoint:
            raise ValueError(f"{path}: holds no trainer state to resume from")
        recorded = list(checkpoint["stores"])
        if stores and [portable_location(s) for s in stores] != recorded:
            raise ValueError(f"--store {' '.join(stores)} is not what the run in {out_dir} trains "
                             f"on ({' '.join(recorded)}): leave --store out to resume on its "
                             f"recorded stores, or start again with --overwrite")
        config, stores, state = checkpoint_config(checkpoint), recorded, checkpoint["trainer"]
    elif not stores:
        raise ValueError("no training store: give --store (it may be left out only with --resume)")
    run = Trainer(config, list(stores), out_dir=out_dir, log=log, initial_state=state)
    try:
        return run.fit()
    finally:
        run.close()
