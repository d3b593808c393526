"""The trainer's configuration: one frozen dataclass per section, defaults = the paper.

Trainer pipelines are TOML files ``synthgen/pipelines/train_*.toml`` with the sections below
(``[data] modality = "flow"``); a file may name a base with ``base = "train_full"``, whose tables it
overrides. Unknown sections or keys are errors, so a typo never falls back to a default silently.
The resolved config is saved with every checkpoint (:meth:`TrainConfig.to_dict`).

Paths (``model.smpl``, ``model.imagenet_weights``, ``model.mean_params``, ``dann.real_stores``)
are relative to the working directory; an empty string means "none".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from synthgen.core import config as core_config
from synthgen.core.config import PIPELINES_DIR, ConfigError, FieldError, Root, Section, setting

__all__ = ["PIPELINES_DIR", "BACKBONE_NAMES", "MODALITIES", "ConfigError", "TrainConfig",
           "load_train_config"]

#: Input modalities of Table 1 -> their parts, in channel order. RGB comes first when present,
#: else flow: :func:`trainer.model.resnet.load_imagenet_weights` gives channels 0-2 the ImageNet
#: filters. Every modality ends with the total-occlusion indicator channel.
MODALITIES = {
    "rgb": ("rgb",),
    "flow": ("flow",),
    "keypoints": ("keypoints",),
    "rgb_keypoints": ("rgb", "keypoints"),
    "flow_keypoints": ("flow", "keypoints"),
}

#: Per-pair CNNs ``model.backbone`` may name (:data:`trainer.model.BACKBONES`).
BACKBONE_NAMES = ("resnet50", "small")


@dataclass(frozen=True)
class DataConfig(Section):
    """What the network sees (method.md section 2 and steps 8 and 11).

    ``modality``: a key of :data:`MODALITIES`. ``clip_length``: frames per training clip T (T - 1
    pairs), a random window of each stored example (paper 31). ``input_size``: side in pixels of
    the network input; the stored crops (``crop_size``, 224) are area-downsampled to it on the
    device when smaller (paper: 224, no resampling). ``batch_size``: clips per step (paper: 3 for
    31 frames, 6 for 8 or 16, 2 for 56). ``num_workers``: DataLoader processes decompressing
    chunks. ``val_every``: one SURREAL clip in ``val_every`` (all its examples) is held out.
    ``heatmap_sigma``: Gaussian sigma in crop pixels at ``crop_size`` (paper 10).
    ``flow_scale``: flow divisor (paper 20). ``leg_unhide_probability``, ``flip_probability``:
    the training-time visibility randomisation (paper 0.5 and 0.05).
    ``allow_mixed_flow``: train on stores made with different crop-flow backends.
    """

    modality: str = setting("flow_keypoints", choices=tuple(MODALITIES))
    clip_length: int = setting(31, min=2)
    input_size: int = setting(224, min=32)
    batch_size: int = setting(3, min=1)
    num_workers: int = setting(4, min=0)
    val_every: int = setting(10, min=1)
    heatmap_sigma: float = setting(10.0, min=0.0)
    flow_scale: float = setting(20.0, min=1e-6)
    leg_unhide_probability: float = setting(0.5, min=0.0, max=1.0)
    flip_probability: float = setting(0.05, min=0.0, max=1.0)
    allow_mixed_flow: bool = False


@dataclass(frozen=True)
class ModelConfig(Section):
    """Motion HMR sizes (paper: 1024 everywhere, 3 iterations) and the files it starts from.

    ``backbone``: the per-pair CNN, ``"resnet50"`` (the paper's) or ``"small"`` (a light CNN for
    CPU demo runs, :class:`trainer.model.small_cnn.SmallCNN`; *decision*, not in the paper).

    ``smpl``: directory with ``SMPL_NEUTRAL.pkl`` (or a model file) for the loss and metrics.
    ``imagenet_weights``: torchvision ``resnet50`` state dict (``.pth``); empty = random init.
    Only for ``backbone = "resnet50"``.
    ``mean_params``: HMR's ``neutral_smpl_mean_params.h5``; empty = upright zero pose.
    ``init_from_training``: start the regressors instead from the training examples' mean body
    pose and shape (:func:`trainer.train.training_mean_params`; *decision* for runs without HMR's
    file: from the zero pose, Adam needs thousands of steps just to lower the arms).
    """

    backbone: str = setting("resnet50", choices=BACKBONE_NAMES)
    lstm_hidden: int = setting(1024, min=1)
    head_hidden: int = setting(1024, min=1)
    regressor_hidden: int = setting(1024, min=1)
    iterations: int = setting(3, min=1)
    dropout: float = setting(0.5, min=0.0, max=1.0)
    smpl: str = "demo_data/smpl"
    imagenet_weights: str = ""
    mean_params: str = ""
    init_from_training: bool = False

    def check(self):
        if self.imagenet_weights and self.backbone != "resnet50":
            raise FieldError("imagenet_weights", self.imagenet_weights,
                             f'empty: torchvision resnet50 weights need model.backbone = '
                             f'"resnet50", not {self.backbone!r}')


@dataclass(frozen=True)
class OptimConfig(Section):
    """AdamW (*decision*; the paper does not name its optimiser). ``steps``: total optimiser steps;
    ``grad_clip``: global gradient-norm clip (0 = off)."""

    lr: float = setting(1e-4, min=0.0)
    weight_decay: float = setting(1e-4, min=0.0)
    steps: int = setting(100_000, min=0)
    grad_clip: float = setting(10.0, min=0.0)


@dataclass(frozen=True)
class LossConfig(Section):
    """``weight_2d``: weight of the reprojection term (*decision* 1)."""

    weight_2d: float = setting(1.0, min=0.0)


@dataclass(frozen=True)
class DannConfig(Section):
    """DANN baseline (Table 1 "RGB+DANN"): adversary on the per-pair features through gradient
    reversal. ``weight`` 0 = off (paper sweeps 0.2..5). ``real_stores``: stores of unlabelled real
    clips (same schema; only ``rgb``, ``flow`` and ``total_occlusion`` are read)."""

    weight: float = setting(0.0, min=0.0)
    hidden: int = setting(1024, min=1)
    real_stores: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunConfig(Section):
    """``seed``: every random draw of the run; ``device``: ``auto`` (CUDA when present), ``cpu``,
    ``cuda``...; ``mixed_precision``: float16 autocast + GradScaler on CUDA (CPU stays float32);
    ``log_every``, ``val_every_steps``, ``checkpoint_every_steps``: in optimiser steps;
    ``val_max_clips``: cap on validation clips (0 = all); ``num_threads``: torch CPU threads of
    the training process (0 = torch's default; on a busy machine 1 can be several times faster
    than oversubscribed threads)."""

    seed: int = setting(0, min=0)
    device: str = "auto"
    mixed_precision: bool = True
    log_every: int = setting(50, min=1)
    val_every_steps: int = setting(2000, min=1)
    checkpoint_every_steps: int = setting(1000, min=1)
    val_max_clips: int = setting(0, min=0)
    num_threads: int = setting(0, min=0)


@dataclass(frozen=True)
class TrainConfig(Root):
    """The resolved trainer configuration. ``name``: the pipeline file it came from."""

    name: str = "default"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    dann: DannConfig = field(default_factory=DannConfig)
    run: RunConfig = field(default_factory=RunConfig)

    LABEL = "trainer config"


def load_train_config(pipeline: str | Path | None = None, *, overrides: dict | None = None,
                      sets=()) -> TrainConfig:
    """Load a trainer pipeline: a path to a ``.toml`` file or a name in ``synthgen/pipelines/``
    (``"train_demo"``), with ``sets`` (``"section.key=value"``) applied last. ``None`` gives the
    paper's defaults.

    Raises
    ------
    ConfigError
        No such pipeline or base (a ``FileNotFoundError`` too; the message lists the known trainer
        pipelines), TOML syntax, unknown section or key, or an invalid value.
    """
    return core_config.load(TrainConfig, pipeline, overrides=overrides, sets=sets,
                            trainer=True)
