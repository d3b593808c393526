"""The :class:`Trainer`: every model, optimiser, random state and data position of a run.

``Trainer(config, stores, out_dir=...)`` sets a run up, :meth:`Trainer.step` takes one optimiser
step, :meth:`Trainer.validate` measures validation PA-MPJPE, :meth:`Trainer.fit` runs to
``optim.steps`` with logging, validation and checkpoints; :meth:`Trainer.state_dict` and
:meth:`Trainer.load_state_dict` cover the network, the DANN adversary, the optimiser, the grad
scaler, the torch and visibility-randomisation RNGs and the positions of the training loader and
of DANN's real-data loader, so a resumed run continues bit-identically on the CPU.

Run folder (written by rank 0 only):

- ``config.json``: the resolved config (paths absolute) and the stores;
- ``metrics.csv`` (columns step, epoch, metric, value, wall_s) and ``tensorboard/`` (the same
  scalars as TensorBoard events); ``curves.png``: training loss and validation PA-MPJPE over
  steps, redrawn at every checkpoint;
- ``last.pt``: the checkpoint (:mod:`trainer.checkpoint`); ``summary.json``: final figures.

Multi-process (``torchrun --nproc_per_node N``, :class:`Distributed`): every rank reads the same
global batch order and takes its 1/N slice of each batch; gradients are averaged by
DistributedDataParallel and BatchNorm uses statistics of the global batch
(:class:`GlobalBatchNorm2d`); the visibility randomisation is drawn for the global batch, so the
run equals one process with the same global batch (``data.batch_size``) within float tolerance.
Dropout masks are drawn per rank (same distribution, other draws).
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
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Sampler
from torch.utils.tensorboard import SummaryWriter

from synthgen.core.joints import COCO14
from trainer.checkpoint import CHECKPOINT, portable_config, portable_location, save_checkpoint
from trainer.config import TrainConfig
from trainer.data import (ClipBatchSampler, ClipDataset, Split, StoreInfo, arrays_for,
                          make_loader, make_targets, open_stores, read_array, split_stores,
                          to_device)
from trainer.forward import (evaluated_frames, network_inputs, predict_parameters,
                             predicted_joints, select_device, training_loss)
from trainer.losses import DomainAdversary
from trainer.metrics import METRES_TO_MM, average_per_person, pa_mpjpe
from trainer.model.build import build_model
from trainer.model.motion_hmr import MotionHMR
from trainer.model.regressor import mean_params
from trainer.smpl import SMPLJoints
from trainer.train import (BASELINE_EXAMPLES, TrainResult, procrustes_mean,
                           training_mean_params)

#: The training-curve picture in the run folder.
CURVES = "curves.png"


# ----------------------------------------------------------------------------------------------
# Processes


@dataclass(frozen=True)
class Distributed:
    """This process's place in a ``torchrun`` job: ``rank`` of ``world_size``, ``local_rank``
    (its GPU on the node)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @classmethod
    def from_environment(cls) -> "Distributed":
        """Read ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` (set by torchrun; one process
        without them)."""
        return cls(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                   int(os.environ.get("LOCAL_RANK", 0)))

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def writer(self) -> bool:
        """True on the one process that writes the run folder (rank 0)."""
        return self.rank == 0


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics are those of the global batch over every rank.

    Two differentiable all-reduces per call (the sum, then the centred sum of squares), on any
    backend (gloo on CPUs, NCCL on GPUs); outside a process group, or in eval mode, plain
    BatchNorm. Running statistics are updated as :class:`torch.nn.BatchNorm2d` does.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized()
                and dist.get_world_size() > 1):
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce

        count = torch.tensor(float(x.numel() // x.shape[1]), device=x.device)
        count = all_reduce(count)
        mean = all_reduce(x.sum(dim=(0, 2, 3))) / count
        centred = x - mean[None, :, None, None]
        var = all_reduce((centred * centred).sum(dim=(0, 2, 3))) / count
        with torch.no_grad():
            self.num_batches_tracked += 1
            momentum = (1.0 / float(self.num_batches_tracked) if self.momentum is None
                        else self.momentum)
            self.running_mean.lerp_(mean.detach(), momentum)
            self.running_var.lerp_(var.detach() * count / (count - 1).clamp_min(1), momentum)
        out = centred * torch.rsqrt(var + self.eps)[None, :, None, None]
        return out * self.weight[None, :, None, None] + self.bias[None, :, None, None]


def _global_batch_norm(module: nn.Module) -> None:
    """Turn every BatchNorm2d below ``module`` into a :class:`GlobalBatchNorm2d` in place
    (same parameters and buffers)."""
    for name, child in module.named_children():
        if type(child) is nn.BatchNorm2d:
            child.__class__ = GlobalBatchNorm2d
        else:
            _global_batch_norm(child)


class RankBatches(Sampler):
    """Rank ``rank``'s contiguous 1/``world_size`` of every batch of a :class:`ClipBatchSampler`
    (all ranks compute the same global order)."""

    def __init__(self, sampler: ClipBatchSampler, process: Distributed):
        if sampler.batch_size % process.world_size:
            raise ValueError(f"data.batch_size {sampler.batch_size} is not divisible by the "
                             f"{process.world_size} processes: set a global batch that is")
        self.sampler = sampler
        self.share = self.batch_size = sampler.batch_size // process.world_size
        self.rank = process.rank

    def set_epoch(self, epoch: int, *, skip_batches: int = 0) -> None:
        self.sampler.set_epoch(epoch, skip_batches=skip_batches)

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self):
        for batch in self.sampler:
            yield batch[self.rank * self.share:(self.rank + 1) * self.share]


class LoaderCursor:
    """Batches of a loader over the epochs of its sampler, with a resumable position.

    ``epoch`` and ``batch`` (batches of that epoch already taken) are the whole state: the
    sampler's order depends only on ``(seed, epoch)``, so a restored cursor skips what was taken.
    """

    def __init__(self, loader, sampler):
        self.loader, self.sampler = loader, sampler
        self.epoch = self.batch = 0
        self._batches = None

    def next(self) -> dict[str, torch.Tensor]:
        """The next host batch (moving on to the next epoch after the last batch)."""
        if self.batch >= len(self.sampler):
            self.epoch, self.batch, self._batches = self.epoch + 1, 0, None
        if self._batches is None:
            self.sampler.set_epoch(self.epoch, skip_batches=self.batch)
            self._batches = iter(self.loader)
        host = next(self._batches)
        self.batch += 1
        return host

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "batch": self.batch}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.batch, self._batches = int(state["epoch"]), int(state["batch"]), None


# ----------------------------------------------------------------------------------------------
# Validation and logs


class Validator:
    """Validation PA-MPJPE of a model and of fixed poses on the same frames (millimetres)."""

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
        """PA-MPJPE (mm) of ``model`` (set to eval mode and back), per person then over people."""
        was_training = model.training
        model.eval()
        errors, targets, persons = [], [], []
        for host in self.loader:
            batch = to_device(host, self.device)
            theta = predict_parameters(model, batch, config=self.config.data,
                                       crop_size=self.crop_size)
            joints, _ = predicted_joints(smpl, theta)
            truth = batch["joints3d"][..., COCO14, :].float()
            use = evaluated_frames(batch)
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


class RunLog:
    """``metrics.csv``, TensorBoard events and ``curves.png`` of a run folder."""

    def __init__(self, out_dir: Path, *, append: bool):
        self.start = time.perf_counter()
        self.out_dir = out_dir
        self.path = out_dir / "metrics.csv"
        new = not (append and self.path.exists())
        self.file = open(self.path, "w" if new else "a", newline="")
        self.csv = csv.writer(self.file)
        if new:
            self.csv.writerow(["step", "epoch", "metric", "value", "wall_s"])
        self.tensorboard = SummaryWriter(str(out_dir / "tensorboard"))

    def write(self, step: int, epoch: int, values: dict[str, float]) -> None:
        wall = time.perf_counter() - self.start
        for name, value in values.items():
            self.csv.writerow([step, epoch, name, f"{value:.6g}", f"{wall:.1f}"])
            self.tensorboard.add_scalar(name, value, step)
        self.file.flush()
        self.tensorboard.flush()

    def plot(self) -> None:
        """Redraw ``curves.png`` from ``metrics.csv``."""
        plot_curves(self.path, self.out_dir / CURVES)

    def close(self) -> None:
        self.file.close()
        self.tensorboard.close()


def plot_curves(metrics_csv: Path, png: Path) -> None:
    """Training loss and validation PA-MPJPE (mm, with the two baselines) over optimiser steps,
    one PNG of two panels, from a run's ``metrics.csv``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[str, tuple[list, list]] = {}
    with open(metrics_csv, newline="") as f:
        for row in csv.DictReader(f):
            steps, values = series.setdefault(row["metric"], ([], []))
            steps.append(int(row["step"]))
            values.append(float(row["value"]))
    figure, (loss, val) = plt.subplots(1, 2, figsize=(10, 3.6))
    for name in ("train/loss", "train/pa_3d", "train/reprojection_2d"):
        if name in series:
            loss.plot(*series[name], label=name.removeprefix("train/"))
    loss.set(xlabel="step", ylabel="loss", title="training")
    if "val/pa_mpjpe_mm" in series:
        val.plot(*series["val/pa_mpjpe_mm"], marker="o", label="model")
    for name, style in (("val/baseline_mean_params_mm", ":"), ("val/baseline_mean_pose_mm", "--")):
        if name in series:
            val.axhline(series[name][1][-1], linestyle=style, color="grey",
                        label=name.removeprefix("val/baseline_").removesuffix("_mm"))
    val.set(xlabel="step", ylabel="PA-MPJPE (mm)", title="validation")
    for axes in (loss, val):
        if axes.lines:
            axes.legend(fontsize=8)
    figure.tight_layout()
    tmp = png.with_name(png.name + ".tmp.png")
    figure.savefig(tmp, dpi=100)
    plt.close(figure)
    os.replace(tmp, png)


# ----------------------------------------------------------------------------------------------
# The trainer


class _Networks(nn.Module):
    """Motion HMR and the DANN adversary in one module (one forward for DistributedDataParallel).

    ``forward(inputs, real_inputs)`` -> Motion HMR's outputs and the domain loss (synthetic
    features labelled 0, real 1; None without an adversary).
    """

    def __init__(self, model: MotionHMR, adversary: DomainAdversary | None):
        super().__init__()
        self.model, self.adversary = model, adversary

    def forward(self, inputs, real_inputs=None):
        outputs = self.model(inputs)
        if self.adversary is None:
            return outputs, None
        real_features = self.model.backbone(real_inputs.flatten(0, 1))
        synthetic = self.adversary(outputs["features"].float())
        real = self.adversary(real_features.float())
        domain = (F.binary_cross_entropy_with_logits(synthetic, torch.zeros_like(synthetic))
                  + F.binary_cross_entropy_with_logits(real, torch.ones_like(real)))
        return outputs, domain


def _epoch_seed(seed: int, epoch: int) -> int:
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


def _clip_loader(infos, items, num_frames, *, data, seed, num_workers, device, process,
                 shards=None):
    """A :class:`LoaderCursor` over shuffled training windows of ``items``, this rank's slice
    (shard-sequential epochs when ``shards`` labels each item's shard)."""
    sampler = ClipBatchSampler(num_frames, clip_length=data.clip_length,
                               batch_size=data.batch_size, seed=seed, shards=shards)
    batches = RankBatches(sampler, process)
    loader = make_loader(ClipDataset(infos, items, clip_length=data.clip_length,
                                     arrays=arrays_for(data.modality)),
                         batches, num_workers=num_workers, pin_memory=device.type == "cuda")
    return LoaderCursor(loader, batches)


class Trainer:
    """One training run of Motion HMR on synthgen stores (module docstring).

    Parameters
    ----------
    config : TrainConfig
    stores : list of str
        Store paths/URLs (made absolute and recorded).
    out_dir : str or Path
        The run folder (created by the writer process).
    log : callable
        Receives human-readable lines (rank 0 only).
    initial_state : dict, optional
        A :meth:`state_dict` to continue from: the regressors' start is then not re-measured,
        the validation baselines are taken from it.
    process : Distributed, optional
        This process's rank (default :meth:`Distributed.from_environment`); with more than one
        process a ``torch.distributed`` group is started if none is (ended by :meth:`close`).

    Raises
    ------
    FileNotFoundError
        A missing store or model file.
    ValueError
        Unusable stores, too few examples for one batch, DANN without real stores, a batch not
        divisible by the processes, an ``initial_state`` that does not load.
    """

    def __init__(self, config: TrainConfig, stores: list[str], *, out_dir: str | Path,
                 log=print, initial_state: dict | None = None,
                 process: Distributed | None = None):
        self.process = process or Distributed.from_environment()
        self.config = config = portable_config(config)
        self.stores = [portable_location(s) for s in stores]
        self.out_dir = Path(out_dir)
        self.log = log if self.process.writer else (lambda line: None)
        data, run = config.data, config.run
        device = select_device(run.device)
        if self.process.active:
            if device.type == "cuda":
                device = torch.device("cuda", self.process.local_rank)
                torch.cuda.set_device(device)
        self.device = device
        self.owns_group = self.process.active and not dist.is_initialized()
        if self.owns_group:
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        if run.num_threads > 0:
            torch.set_num_threads(run.num_threads)
        if device.type == "cpu":
            torch.use_deterministic_algorithms(True)
        self.amp = run.mixed_precision and device.type == "cuda"
        torch.manual_seed(run.seed + self.process.rank)

        smpl = SMPLJoints.from_path(config.model.smpl, gender="neutral")
        self.infos = open_stores(self.stores, allow_mixed_flow=data.allow_mixed_flow)
        self.crop_size = self.infos[0].crop_size
        self.train_split, self.val_split = split_stores(self.infos, val_every=data.val_every)
        if len(self.train_split.items) < data.batch_size:
            raise ValueError(f"{len(self.train_split.items)} training examples: fewer than one "
                             f"batch of {data.batch_size}")
        if len(self.val_split.items) == 0:
            raise ValueError("no validation examples (too few SURREAL clips for data.val_every)")
        self.train_batches = _clip_loader(self.infos, self.train_split.items,
                                          self.train_split.num_frames, data=data, seed=run.seed,
                                          num_workers=data.num_workers, device=device,
                                          process=self.process, shards=self.train_split.shards)
        self.log(f"{len(self.train_split.items)} training and {len(self.val_split.items)} "
                 f"validation examples ({len(set(self.val_split.persons.tolist()))} held-out "
                 f"SURREAL clips) from {len(self.infos)} store(s); {data.modality} input, "
                 f"{data.clip_length}-frame clips at {data.input_size} px, batch "
                 f"{data.batch_size}, device {device}"
                 + (f", {self.process.world_size} processes" if self.process.active else ""))

        self.init = mean_params(config.model.mean_params or None)
        if config.model.init_from_training and initial_state is None:
            self.init = training_mean_params(self.infos, self.train_split.items, base=self.init)
        self.model = build_model(config, init_params=self.init).to(device)
        self.adversary = self.real_batches = None
        if config.dann.weight > 0:
            if not config.dann.real_stores:
                raise ValueError("dann.weight > 0 needs dann.real_stores (stores of real clips)")
            self.adversary = DomainAdversary(self.model.backbone.features,
                                             hidden=config.dann.hidden,
                                             weight=config.dann.weight).to(device)
            real = open_stores(list(config.dann.real_stores), allow_mixed_flow=True)
            items = np.concatenate([np.stack([np.full(s.examples.size, k), s.examples], axis=1)
                                    for k, s in enumerate(real)])
            if len(items) < data.batch_size:
                raise ValueError(f"dann.real_stores hold {len(items)} examples: fewer than one "
                                 f"batch of {data.batch_size}")
            frames = np.concatenate([np.full(s.examples.size, s.num_frames) for s in real])
            self.real_batches = _clip_loader(real, items, frames, data=data, seed=run.seed + 1,
                                             num_workers=0, device=device, process=self.process)
        self.networks = _Networks(self.model, self.adversary)
        if self.process.active:
            _global_batch_norm(self.networks)
            self.networks = DistributedDataParallel(
                self.networks, device_ids=[device.index] if device.type == "cuda" else None)
        self.params = list(self.networks.parameters())
        self.optimizer = torch.optim.AdamW(self.params, lr=config.optim.lr,
                                           weight_decay=config.optim.weight_decay)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.randomizer = torch.Generator(device=device)
        self.validator = Validator(config, self.infos, self.val_split, device)
        self.smpl = smpl.to(device)
        self.global_step = 0
        self.figures: dict[str, float] = {}
        self.last_val = float("nan")
        if initial_state is not None:
            try:
                self.load_state_dict(initial_state)
            except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as exc:
                raise ValueError(f"the checkpoint's trainer state does not load "
                                 f"({type(exc).__name__}: {exc}): a damaged checkpoint, or one "
                                 f"written by another trainer version; start again with "
                                 f"--overwrite") from exc

    def close(self) -> None:
        """End the process group this trainer started (if any)."""
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()
        self.owns_group = False

    # -- state ---------------------------------------------------------------------------------

    def state_dict(self) -> dict:
        """Everything a resumed run needs, as tensors and plain data (a collective call when
        several processes run: every rank's torch RNG is gathered)."""
        torch_rng = [torch.get_rng_state()]
        if self.process.active:
            torch_rng = [torch.empty_like(torch_rng[0]) for _ in range(self.process.world_size)]
            dist.all_gather_object(torch_rng, torch.get_rng_state())
        state = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "scaler": self.scaler.state_dict(), "step": self.global_step,
                 "train_loader": self.train_batches.state_dict(),
                 "figures": {k: float(v) for k, v in self.figures.items()},
                 "torch_rng": torch_rng, "randomizer": self.randomizer.get_state().cpu(),
                 "world_size": self.process.world_size}
        if self.device.type == "cuda":
            state["device_rng"] = torch.cuda.get_rng_state(self.device)
        if self.adversary is not None:
            state["adversary"] = self.adversary.state_dict()
            state["real_loader"] = self.real_batches.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore a :meth:`state_dict` (same config, stores and number of processes).

        Raises
        ------
        ValueError
            Written by another number of processes.
        """
        if int(state.get("world_size", 1)) != self.process.world_size:
            raise ValueError(f"the checkpoint was written by {state['world_size']} processes; "
                             f"resume it with as many (now {self.process.world_size})")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        if self.adversary is not None:
            self.adversary.load_state_dict(state["adversary"])
            self.real_batches.load_state_dict(state["real_loader"])
        self.global_step = int(state["step"])
        self.train_batches.load_state_dict(state["train_loader"])
        self.figures = dict(state["figures"])
        self.last_val = self.figures.get("val_pa_mpjpe_mm", self.figures["initial_val_pa_mpjpe_mm"])
        torch.set_rng_state(state["torch_rng"][self.process.rank])
        if self.device.type == "cuda" and "device_rng" in state:
            torch.cuda.set_rng_state(state["device_rng"], self.device)
        self.randomizer.set_state(state["randomizer"].to(self.randomizer.get_state().device))

    def checkpoint(self) -> dict:
        """The checkpoint file's content: the model and what eval and predict read, and the
        trainer's :meth:`state_dict` under ``trainer``."""
        state = self.state_dict()
        return {"model": state["model"], "config": self.config.to_dict(),
                "stores": list(self.stores), "crop_flow": self.infos[0].crop_flow,
                "crop_size": self.crop_size, "step": self.global_step, "trainer": state}

    def save(self) -> None:
        """Write ``last.pt`` (rank 0; every rank takes part in gathering the state)."""
        content = self.checkpoint()
        if self.process.writer:
            save_checkpoint(self.out_dir / CHECKPOINT, content)

    # -- steps ---------------------------------------------------------------------------------

    def step(self) -> dict[str, float]:
        """One optimiser step on the next training batch.

        Returns
        -------
        dict
            ``loss``, ``pa_3d`` (metres), ``reprojection_2d`` of this process's batch, and
            ``clips`` (clips in it).
        """
        cursor, data = self.train_batches, self.config.data
        if cursor.batch == 0 or cursor.batch >= len(cursor.sampler):
            epoch = cursor.epoch + (cursor.batch >= len(cursor.sampler))
            self.randomizer.manual_seed(_epoch_seed(self.config.run.seed, epoch))
        batch = to_device(cursor.next(), self.device)
        share = (self.process.rank, self.process.world_size)
        inputs = network_inputs(batch, config=data, crop_size=self.crop_size,
                                generator=self.randomizer, share=share)
        real_inputs = None
        if self.real_batches is not None:
            real = to_device(self.real_batches.next(), self.device)
            real_inputs = network_inputs(real, config=data, crop_size=self.crop_size)
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
            outputs, domain = self.networks(inputs, real_inputs)
        targets = make_targets(batch, crop_size=self.crop_size)
        losses = training_loss(outputs, targets, self.smpl, weight_2d=self.config.loss.weight_2d)
        total = losses["loss"] if domain is None else losses["loss"] + domain
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        if self.config.optim.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.params, self.config.optim.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.global_step += 1
        return {**{k: float(v.detach()) for k, v in losses.items()}, "clips": inputs.shape[0]}

    def validate(self) -> float:
        """Validation PA-MPJPE (mm), measured by rank 0 and shared with every rank."""
        value = self.validator(self.model, self.smpl) if self.process.writer else 0.0
        if self.process.active:
            shared = torch.tensor([value], dtype=torch.float64)
            dist.broadcast(shared, 0)
            value = float(shared)
        self.last_val = value
        return value

    def _baselines(self) -> dict[str, float]:
        """The two fixed-pose baselines on the validation frames (after a :meth:`validate`)."""
        if not self.process.writer:
            return {"baseline_mean_params_mm": float("nan"), "baseline_mean_pose_mm": float("nan")}
        init_joints, _ = predicted_joints(self.smpl.cpu(), torch.as_tensor(self.init))
        self.smpl.to(self.device)
        rng = np.random.default_rng(self.config.run.seed)
        items = self.train_split.items
        count = min(BASELINE_EXAMPLES, len(items))
        sample = items[np.sort(rng.choice(len(items), count, replace=False))]
        joints = torch.as_tensor(read_array(self.infos, sample, "joints3d")[..., COCO14, :])
        mean_pose = procrustes_mean(joints.reshape(-1, len(COCO14), 3).double()).float()
        return {"baseline_mean_params_mm": self.validator.of_pose(init_joints.detach()),
                "baseline_mean_pose_mm": self.validator.of_pose(mean_pose)}

    # -- the run -------------------------------------------------------------------------------

    def fit(self) -> TrainResult:
        """Train to ``optim.steps`` steps: log every ``run.log_every``, validate every
        ``run.val_every_steps``, checkpoint every ``run.checkpoint_every_steps`` and at the end."""
        run, steps = self.config.run, self.config.optim.steps
        writer = self.process.writer
        fresh = not self.figures
        if writer:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        if fresh:
            self.figures = {"initial_val_pa_mpjpe_mm": self.validate(), **self._baselines()}
            if writer:
                (self.out_dir / "config.json").write_text(json.dumps(
                    {"config": self.config.to_dict(), "stores": self.stores}, indent=2))
        else:
            self.log(f"resumed from {self.out_dir / CHECKPOINT} at step {self.global_step} "
                     f"(epoch {self.train_batches.epoch}, batch {self.train_batches.batch})")
        logger = RunLog(self.out_dir, append=not fresh) if writer else None
        if fresh and writer:
            f = self.figures
            logger.write(0, 0, {"val/pa_mpjpe_mm": f["initial_val_pa_mpjpe_mm"],
                                "val/baseline_mean_params_mm": f["baseline_mean_params_mm"],
                                "val/baseline_mean_pose_mm": f["baseline_mean_pose_mm"]})
            self.log(f"step 0: val PA-MPJPE {f['initial_val_pa_mpjpe_mm']:.1f} mm; baselines: "
                     f"mean params {f['baseline_mean_params_mm']:.1f} mm, mean training pose "
                     f"{f['baseline_mean_pose_mm']:.1f} mm")
        self.networks.train()
        names = ("loss", "pa_3d", "reprojection_2d")
        window = dict.fromkeys((*names, "clips"), 0.0)
        last_loss, tick = float("nan"), time.perf_counter()
        try:
            while self.global_step < steps:
                figures = self.step()
                step, epoch = self.global_step, self.train_batches.epoch
                last_loss = figures["loss"]
                for name in window:
                    window[name] += figures[name]
                if step % run.log_every == 0 or step == steps:
                    count = run.log_every if step % run.log_every == 0 else step % run.log_every
                    rate = window["clips"] * self.process.world_size / (time.perf_counter() - tick)
                    means = {f"train/{n}": window[n] / count for n in names}
                    if writer:
                        logger.write(step, epoch, {**means, "train/clips_per_s": rate})
                    self.log(f"step {step} epoch {epoch}: loss {means['train/loss']:.4f} (3D "
                             f"{means['train/pa_3d'] * METRES_TO_MM:.1f} mm, 2D "
                             f"{means['train/reprojection_2d']:.4f}), {rate:.2f} clips/s")
                    window = dict.fromkeys(window, 0.0)
                    tick = time.perf_counter()
                if step % run.val_every_steps == 0 or step == steps:
                    val = self.validate()
                    self.figures["val_pa_mpjpe_mm"] = val
                    if writer:
                        logger.write(step, epoch, {"val/pa_mpjpe_mm": val})
                    self.log(f"step {step}: val PA-MPJPE {val:.1f} mm")
                    tick = time.perf_counter()
                if step % run.checkpoint_every_steps == 0 or step == steps:
                    self.save()
                    if writer:
                        logger.plot()
        finally:
            if writer:
                logger.close()
        f = self.figures
        result = TrainResult(steps=self.global_step, val_pa_mpjpe_mm=self.last_val,
                             baseline_mean_params_mm=f["baseline_mean_params_mm"],
                             baseline_mean_pose_mm=f["baseline_mean_pose_mm"],
                             initial_val_pa_mpjpe_mm=f["initial_val_pa_mpjpe_mm"],
                             val_frames=int(self.validator.frame_persons.size
                                            if self.validator.frame_persons is not None else 0),
                             last_loss=last_loss)
        if writer:
            (self.out_dir / "summary.json").write_text(json.dumps(result.__dict__, indent=2))
        self.log(f"done: {self.global_step} steps; validation PA-MPJPE {self.last_val:.1f} mm "
                 f"over {result.val_frames} frames (initial {f['initial_val_pa_mpjpe_mm']:.1f} "
                 f"mm); baselines: mean params {f['baseline_mean_params_mm']:.1f} mm, mean "
                 f"training pose {f['baseline_mean_pose_mm']:.1f} mm")
        return result
