"""Training loop of Motion HMR on synthgen stores.

One run: ``train(config, stores, out_dir=...)``. It writes into ``out_dir``:

- ``config.json``: the resolved :class:`trainer.config.TrainConfig` and the stores;
- ``metrics.csv``: every logged number (columns step, epoch, metric, value, wall_s), always;
- ``tensorboard/``: the same numbers as TensorBoard events, only when the ``tensorboard`` package
  is importable (``torch.utils.tensorboard`` needs it; it is not a dependency);
- ``last.pt``: the checkpoint (model, optimiser, grad scaler, epoch, step, position in the
  epoch's data order, every random state); ``resume=True`` continues from it exactly as if the
  run had not stopped (bit-identical on CPU);
- ``summary.json``: final validation PA-MPJPE and the two baselines.

Validation: PA-MPJPE in millimetres over the 14 evaluation joints, on held-out SURREAL clips
(:func:`trainer.data.split_stores`), centred windows of ``clip_length`` frames, the T test-time
predictions per clip (:func:`trainer.model.clip_predictions`), frames with at least 7 of the 14
joints visible and not totally occluded, averaged per person then over people (section 4).
Baselines on the same frames: the regressor's starting point (mean parameters) and the mean
training pose (generalised Procrustes mean of training frames).
"""

from __future__ import annotations

import csv
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy.spatial.transform import Rotation

from trainer.config import TrainConfig
from trainer.data import (ClipBatchSampler, ClipDataset, Split, StoreInfo, arrays_for,
                          hidden_keypoints, input_channels, make_inputs, make_loader,
                          make_targets, open_stores, read_array, set_handedness, split_stores,
                          to_device)
from trainer.joints import EVAL_JOINTS
from trainer.losses import DomainAdversary, keypoint_loss, stack_heads
from trainer.metrics import METRES_TO_MM, average_per_person, pa_mpjpe
from trainer.model import MotionHMR, clip_predictions, load_imagenet_weights, mean_params
from trainer.model.regressor import BETAS, CAMERA, NUM_POSE, POSE
from trainer.procrustes import similarity_align
from trainer.smpl import SMPLJoints

#: A frame is evaluated when at least this many of the 14 evaluation joints are visible.
MIN_VISIBLE_JOINTS = 7
#: Training examples read for the mean-training-pose baseline (at most).
BASELINE_EXAMPLES = 256
CHECKPOINT = "last.pt"


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


def select_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; anything else as torch spells it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _path_or_none(value: str) -> str | None:
    return value or None


def build_model(config: TrainConfig, *, init_params: np.ndarray | None = None) -> MotionHMR:
    """Motion HMR for ``config``: its ``model.backbone`` (ImageNet weights loaded when configured,
    which :class:`trainer.config.TrainConfig` allows only for ``resnet50``).

    ``init_params`` (85,): the regressors' starting point; default ``config.model.mean_params``.
    """
    m = config.model
    if init_params is None:
        init_params = mean_params(_path_or_none(m.mean_params))
    model = MotionHMR(input_channels(config.data.modality), init_params=init_params,
                      lstm_hidden=m.lstm_hidden, head_hidden=m.head_hidden,
                      regressor_hidden=m.regressor_hidden, iterations=m.iterations,
                      dropout=m.dropout, backbone=m.backbone)
    if m.imagenet_weights:
        load_imagenet_weights(model.backbone, m.imagenet_weights)
    return model


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
        Parameters whose global orientation and camera are kept (the stored global orientation
        is in SURREAL's world frame, not the camera's).

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


def predicted_joints(smpl: SMPLJoints, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The 14 evaluation joints (metres, SMPL model frame) and cameras of parameters (..., 85)."""
    joints = smpl(theta[..., POSE], theta[..., BETAS])[..., EVAL_JOINTS, :]
    return joints, theta[..., CAMERA]


def compute_loss(outputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor],
                 smpl: SMPLJoints, *, weight_2d: float) -> dict[str, torch.Tensor]:
    """Motion HMR's loss on both heads of every pair, in float32, on the 14 evaluation joints.

    Parameters
    ----------
    outputs : dict
        :meth:`MotionHMR.forward` output.
    targets : dict
        :func:`trainer.data.make_targets` output.
    """
    joints, camera = predicted_joints(smpl, stack_heads(outputs).float())
    return keypoint_loss(joints, camera, targets["joints3d"][..., EVAL_JOINTS, :],
                         targets["keypoints"][..., EVAL_JOINTS, :],
                         targets["visible"][..., EVAL_JOINTS], weight_2d=weight_2d)


def procrustes_mean(joints: torch.Tensor, *, iterations: int = 5) -> torch.Tensor:
    """Generalised Procrustes mean of point sets (N, J, 3) -> (J, 3), same units."""
    mean = joints[0]
    for _ in range(iterations):
        mean = similarity_align(joints, mean.expand_as(joints)).mean(dim=0)
    return mean


class _Log:
    """CSV log (always) and TensorBoard (when importable)."""

    def __init__(self, out_dir: Path, *, append: bool):
        self.start = time.perf_counter()
        path = out_dir / "metrics.csv"
        new = not (append and path.exists())
        self.file = open(path, "w" if new else "a", newline="")
        self.csv = csv.writer(self.file)
        if new:
            self.csv.writerow(["step", "epoch", "metric", "value", "wall_s"])
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            self.tensorboard = None
        else:
            self.tensorboard = SummaryWriter(str(out_dir / "tensorboard"))

    def write(self, step: int, epoch: int, values: dict[str, float]) -> None:
        wall = time.perf_counter() - self.start
        for name, value in values.items():
            self.csv.writerow([step, epoch, name, f"{value:.6g}", f"{wall:.1f}"])
            if self.tensorboard is not None:
                self.tensorboard.add_scalar(name, value, step)
        self.file.flush()

    def close(self) -> None:
        self.file.close()
        if self.tensorboard is not None:
            self.tensorboard.close()


class _Validator:
    """Validation PA-MPJPE of a model and of the two baselines on the same frames."""

    def __init__(self, config: TrainConfig, stores: list[StoreInfo], split: Split,
                 device: torch.device):
        data = config.data
        keep = split.items if not config.run.val_max_clips else split.items[:config.run.val_max_clips]
        self.persons = split.persons[:len(keep)]
        self.config = config
        self.crop_size = stores[0].crop_size
        self.device = device
        sampler = ClipBatchSampler(split.num_frames[:len(keep)], clip_length=data.clip_length,
                                   batch_size=data.batch_size, seed=0, shuffle=False)
        self.loader = make_loader(ClipDataset(stores, keep, clip_length=data.clip_length,
                                              arrays=arrays_for(data.modality)),
                                  sampler, num_workers=0, pin_memory=device.type == "cuda")
        self.targets = self.frame_persons = None

    @torch.no_grad()
    def __call__(self, model: MotionHMR, smpl: SMPLJoints) -> float:
        """PA-MPJPE (mm) of ``model`` (set to eval mode and back)."""
        was_training = model.training
        model.eval()
        errors, targets, persons = [], [], []
        for host in self.loader:
            batch = to_device(host, self.device)
            hidden = hidden_keypoints(batch, config=self.config.data, generator=None)
            inputs = make_inputs(batch, config=self.config.data, crop_size=self.crop_size,
                                 hidden=hidden)
            joints, _ = predicted_joints(smpl, clip_predictions(model(inputs)).float())
            truth = batch["joints3d"][..., EVAL_JOINTS, :].float()
            visible = (batch["visibility"][..., EVAL_JOINTS] == 0).sum(dim=-1)
            use = (visible >= MIN_VISIBLE_JOINTS) & ~batch["total_occlusion"]
            errors.append(pa_mpjpe(joints[use] * METRES_TO_MM, truth[use] * METRES_TO_MM).cpu())
            targets.append(truth[use].cpu())
            frame_person = np.repeat(self.persons[host["position"].numpy()], use.shape[1])
            persons.append(frame_person[use.cpu().numpy().reshape(-1)])
        model.train(was_training)
        self.targets = torch.cat(targets)
        self.frame_persons = np.concatenate(persons)
        if self.frame_persons.size == 0:
            raise ValueError("no validation frame has enough visible joints")
        return average_per_person(torch.cat(errors).numpy(), self.frame_persons)

    def of_pose(self, joints: torch.Tensor) -> float:
        """PA-MPJPE (mm) of predicting the fixed pose ``joints`` (14, 3) metres on every frame."""
        errors = pa_mpjpe(joints.expand_as(self.targets) * METRES_TO_MM,
                          self.targets * METRES_TO_MM)
        return average_per_person(errors.numpy(), self.frame_persons)


def _baselines(config: TrainConfig, stores: list[StoreInfo], train_split: Split,
               validator: _Validator, smpl: SMPLJoints, init: np.ndarray) -> dict[str, float]:
    init_joints, _ = predicted_joints(smpl.cpu(), torch.as_tensor(init))
    rng = np.random.default_rng(config.run.seed)
    count = min(BASELINE_EXAMPLES, len(train_split.items))
    sample = train_split.items[np.sort(rng.choice(len(train_split.items), count, replace=False))]
    joints = torch.as_tensor(read_array(stores, sample, "joints3d")[..., EVAL_JOINTS, :])
    mean_pose = procrustes_mean(joints.reshape(-1, len(EVAL_JOINTS), 3).double()).float()
    return {"baseline_mean_params_mm": validator.of_pose(init_joints.detach()),
            "baseline_mean_pose_mm": validator.of_pose(mean_pose)}


def _epoch_seed(seed: int, epoch: int) -> int:
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


def _save(path: Path, state: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def train(config: TrainConfig, stores: list[str], *, out_dir: str | Path, resume: bool = False,
          log=print) -> TrainResult:
    """Train Motion HMR on ``stores`` for ``config.optim.steps`` optimiser steps.

    Parameters
    ----------
    config : TrainConfig
    stores : list of str
        Store paths/URLs (finished shards only are read; mixed crop-flow backends refused unless
        ``config.data.allow_mixed_flow``).
    out_dir : str or Path
        Receives the files listed in the module docstring (created if missing).
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
        Unusable stores (see :func:`trainer.data.open_stores`), too few examples for one batch,
        DANN without real stores.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = None
    if resume:
        path = out_dir / CHECKPOINT
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no checkpoint to resume from")
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
        config = TrainConfig().replace(**checkpoint["config"])
        stores = checkpoint["stores"]
    data, run = config.data, config.run
    device = select_device(run.device)
    if run.num_threads > 0:
        torch.set_num_threads(run.num_threads)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True)
    amp = run.mixed_precision and device.type == "cuda"
    torch.manual_seed(run.seed)

    smpl = SMPLJoints.from_path(config.model.smpl, gender="neutral")
    infos = set_handedness(open_stores(list(stores), allow_mixed_flow=data.allow_mixed_flow),
                           smpl, log=log)
    crop_size = infos[0].crop_size
    train_split, val_split = split_stores(infos, val_every=data.val_every)
    sampler = ClipBatchSampler(train_split.num_frames, clip_length=data.clip_length,
                               batch_size=data.batch_size, seed=run.seed,
                               shards=train_split.shards)
    if len(sampler) == 0:
        raise ValueError(f"{len(train_split.items)} training examples: fewer than one batch of "
                         f"{data.batch_size}")
    if len(val_split.items) == 0:
        raise ValueError("no validation examples (too few SURREAL clips for data.val_every)")
    loader = make_loader(ClipDataset(infos, train_split.items, clip_length=data.clip_length,
                                     arrays=arrays_for(data.modality)),
                         sampler, num_workers=data.num_workers, pin_memory=device.type == "cuda")
    log(f"{len(train_split.items)} training and {len(val_split.items)} validation examples "
        f"({len(set(val_split.persons.tolist()))} held-out SURREAL clips) from {len(infos)} "
        f"store(s); {data.modality} input, {data.clip_length}-frame clips at "
        f"{data.input_size} px, batch {data.batch_size}, device {device}")

    init = mean_params(_path_or_none(config.model.mean_params))
    if config.model.init_from_training and checkpoint is None:
        init = training_mean_params(infos, train_split.items, base=init)
    model = build_model(config, init_params=init).to(device)
    adversary = real_batches = None
    params = list(model.parameters())
    if config.dann.weight > 0:
        if not config.dann.real_stores:
            raise ValueError("dann.weight > 0 needs dann.real_stores (stores of real clips)")
        adversary = DomainAdversary(model.backbone.features, hidden=config.dann.hidden,
                                    weight=config.dann.weight).to(device)
        params += list(adversary.parameters())
        real_infos = open_stores(list(config.dann.real_stores), allow_mixed_flow=True)
        real_items = np.concatenate([np.stack([np.full(s.examples.size, k), s.examples], axis=1)
                                     for k, s in enumerate(real_infos)])
        real_sampler = ClipBatchSampler(np.concatenate([np.full(s.examples.size, s.num_frames)
                                                        for s in real_infos]),
                                        clip_length=data.clip_length, batch_size=data.batch_size,
                                        seed=run.seed + 1)
        real_batches = _cycle(make_loader(
            ClipDataset(real_infos, real_items, clip_length=data.clip_length,
                        arrays=arrays_for(data.modality)),
            real_sampler, num_workers=0, pin_memory=device.type == "cuda"))
    optimizer = torch.optim.AdamW(params, lr=config.optim.lr, weight_decay=config.optim.weight_decay)
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    randomizer = torch.Generator(device=device)
    validator = _Validator(config, infos, val_split, device)

    if checkpoint is None:
        step = epoch = batch_in_epoch = 0
        figures = {"initial_val_pa_mpjpe_mm": validator(model, smpl.to(device))}
        figures.update(_baselines(config, infos, train_split, validator, smpl, init))
        (out_dir / "config.json").write_text(json.dumps(
            {"config": config.to_dict(), "stores": list(stores)}, indent=2))
    else:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scaler.load_state_dict(checkpoint["scaler"])
        if adversary is not None:
            adversary.load_state_dict(checkpoint["adversary"])
        step, epoch = checkpoint["step"], checkpoint["epoch"]
        batch_in_epoch = checkpoint["batch_in_epoch"]
        figures = checkpoint["figures"]
        torch.set_rng_state(checkpoint["torch_rng"])
        if device.type == "cuda":
            torch.cuda.set_rng_state(checkpoint["device_rng"], device)
        randomizer.set_state(checkpoint["randomizer"].to(randomizer.get_state().device))
        log(f"resumed from {out_dir / CHECKPOINT} at step {step} (epoch {epoch}, "
            f"batch {batch_in_epoch})")
    smpl = smpl.to(device)
    logger = _Log(out_dir, append=checkpoint is not None)
    if checkpoint is None:
        logger.write(0, 0, {"val/pa_mpjpe_mm": figures["initial_val_pa_mpjpe_mm"],
                            "val/baseline_mean_params_mm": figures["baseline_mean_params_mm"],
                            "val/baseline_mean_pose_mm": figures["baseline_mean_pose_mm"]})
        log(f"step 0: val PA-MPJPE {figures['initial_val_pa_mpjpe_mm']:.1f} mm; baselines: mean "
            f"params {figures['baseline_mean_params_mm']:.1f} mm, mean training pose "
            f"{figures['baseline_mean_pose_mm']:.1f} mm")

    def save() -> None:
        state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                 "scaler": scaler.state_dict(), "step": step, "epoch": epoch,
                 "batch_in_epoch": batch_in_epoch, "figures": figures,
                 "torch_rng": torch.get_rng_state(), "randomizer": randomizer.get_state().cpu(),
                 "config": config.to_dict(), "stores": list(stores),
                 "crop_flow": infos[0].crop_flow, "crop_size": crop_size,
                 "data_order": sampler.order(epoch)}
        if device.type == "cuda":
            state["device_rng"] = torch.cuda.get_rng_state(device)
        if adversary is not None:
            state["adversary"] = adversary.state_dict()
        _save(out_dir / CHECKPOINT, state)

    model.train()
    losses = {"loss": torch.tensor(float("nan"))}
    window = {"loss": 0.0, "pa_3d": 0.0, "reprojection_2d": 0.0, "clips": 0}
    tick = time.perf_counter()
    val = figures["initial_val_pa_mpjpe_mm"]
    try:
        while step < config.optim.steps:
            if batch_in_epoch == 0:
                randomizer.manual_seed(_epoch_seed(run.seed, epoch))
            sampler.set_epoch(epoch, skip_batches=batch_in_epoch)
            for host in loader:
                batch = to_device(host, device)
                hidden = hidden_keypoints(batch, config=data, generator=randomizer)
                inputs = make_inputs(batch, config=data, crop_size=crop_size, hidden=hidden)
                targets = make_targets(batch, crop_size=crop_size)
                with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
                    outputs = model(inputs)
                losses = compute_loss(outputs, targets, smpl, weight_2d=config.loss.weight_2d)
                total = losses["loss"]
                if adversary is not None:
                    total = total + _dann_loss(model, adversary, outputs["features"],
                                               next(real_batches), config, crop_size, device, amp)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(total).backward()
                if config.optim.grad_clip > 0:
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(params, config.optim.grad_clip)
                scaler.step(optimizer)
                scaler.update()
                step += 1
                batch_in_epoch += 1
                for name in ("loss", "pa_3d", "reprojection_2d"):
                    window[name] += float(losses[name].detach())
                window["clips"] += inputs.shape[0]
                if step % run.log_every == 0 or step == config.optim.steps:
                    count = run.log_every if step % run.log_every == 0 else step % run.log_every
                    rate = window["clips"] / (time.perf_counter() - tick)
                    means = {f"train/{n}": window[n] / count for n in ("loss", "pa_3d", "reprojection_2d")}
                    logger.write(step, epoch, {**means, "train/clips_per_s": rate})
                    log(f"step {step} epoch {epoch}: loss {means['train/loss']:.4f} (3D "
                        f"{means['train/pa_3d'] * METRES_TO_MM:.1f} mm, 2D "
                        f"{means['train/reprojection_2d']:.4f}), {rate:.2f} clips/s")
                    window = dict.fromkeys(window, 0.0)
                    tick = time.perf_counter()
                if step % run.val_every_steps == 0 or step == config.optim.steps:
                    val = validator(model, smpl)
                    logger.write(step, epoch, {"val/pa_mpjpe_mm": val})
                    log(f"step {step}: val PA-MPJPE {val:.1f} mm")
                    tick = time.perf_counter()
                if step % run.checkpoint_every_steps == 0 or step == config.optim.steps:
                    save()
                if step >= config.optim.steps:
                    break
            else:
                epoch += 1
                batch_in_epoch = 0
    finally:
        logger.close()
    result = TrainResult(steps=step, val_pa_mpjpe_mm=val,
                         baseline_mean_params_mm=figures["baseline_mean_params_mm"],
                         baseline_mean_pose_mm=figures["baseline_mean_pose_mm"],
                         initial_val_pa_mpjpe_mm=figures["initial_val_pa_mpjpe_mm"],
                         val_frames=int(validator.frame_persons.size),
                         last_loss=float(losses["loss"].detach()))
    (out_dir / "summary.json").write_text(json.dumps(result.__dict__, indent=2))
    log(f"done: {step} steps; validation PA-MPJPE {val:.1f} mm over {result.val_frames} frames "
        f"(initial {result.initial_val_pa_mpjpe_mm:.1f} mm); baselines: mean params "
        f"{result.baseline_mean_params_mm:.1f} mm, mean training pose "
        f"{result.baseline_mean_pose_mm:.1f} mm")
    return result


def _cycle(loader):
    """Batches of ``loader`` forever (its sampler's epoch 0 order, repeated)."""
    while True:
        yield from loader


def _dann_loss(model, adversary, synthetic_features, host, config, crop_size, device,
               amp) -> torch.Tensor:
    """Domain loss: synthetic features labelled 0, one batch of real clips labelled 1."""
    batch = to_device(host, device)
    hidden = hidden_keypoints(batch, config=config.data, generator=None)
    inputs = make_inputs(batch, config=config.data, crop_size=crop_size, hidden=hidden)
    with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
        real_features = model.backbone(inputs.flatten(0, 1))
    synthetic = adversary(synthetic_features.float())
    real = adversary(real_features.float())
    return (F.binary_cross_entropy_with_logits(synthetic, torch.zeros_like(synthetic))
            + F.binary_cross_entropy_with_logits(real, torch.ones_like(real)))
