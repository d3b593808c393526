"""The trainer's configuration: one frozen dataclass per section, defaults = the paper.

Trainer pipelines are TOML files ``pipelines/train_*.toml`` with the sections below
(``[data] modality = "flow"``); a file may name a base with ``base = "train_full"``, whose tables it
overrides. Unknown sections or keys are errors, so a typo never falls back to a default silently.
The resolved config is saved with every checkpoint (:meth:`TrainConfig.to_dict`).

Paths (``model.smpl``, ``model.imagenet_weights``, ``model.mean_params``, ``dann.real_stores``)
are relative to the working directory; an empty string means "none".
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

PIPELINES_DIR = Path(__file__).resolve().parent.parent / "pipelines"

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
class DataConfig:
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

    modality: str = "flow_keypoints"
    clip_length: int = 31
    input_size: int = 224
    batch_size: int = 3
    num_workers: int = 4
    val_every: int = 10
    heatmap_sigma: float = 10.0
    flow_scale: float = 20.0
    leg_unhide_probability: float = 0.5
    flip_probability: float = 0.05
    allow_mixed_flow: bool = False


@dataclass(frozen=True)
class ModelConfig:
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

    backbone: str = "resnet50"
    lstm_hidden: int = 1024
    head_hidden: int = 1024
    regressor_hidden: int = 1024
    iterations: int = 3
    dropout: float = 0.5
    smpl: str = "demo_data/smpl"
    imagenet_weights: str = ""
    mean_params: str = ""
    init_from_training: bool = False


@dataclass(frozen=True)
class OptimConfig:
    """AdamW (*decision*; the paper does not name its optimiser). ``steps``: total optimiser steps;
    ``grad_clip``: global gradient-norm clip (0 = off)."""

    lr: float = 1e-4
    weight_decay: float = 1e-4
    steps: int = 100_000
    grad_clip: float = 10.0


@dataclass(frozen=True)
class LossConfig:
    """``weight_2d``: weight of the reprojection term (*decision* 1)."""

    weight_2d: float = 1.0


@dataclass(frozen=True)
class DannConfig:
    """DANN baseline (Table 1 "RGB+DANN"): adversary on the per-pair features through gradient
    reversal. ``weight`` 0 = off (paper sweeps 0.2..5). ``real_stores``: stores of unlabelled real
    clips (same schema; only ``rgb``, ``flow`` and ``total_occlusion`` are read)."""

    weight: float = 0.0
    hidden: int = 1024
    real_stores: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunConfig:
    """``seed``: every random draw of the run; ``device``: ``auto`` (CUDA when present), ``cpu``,
    ``cuda``...; ``mixed_precision``: float16 autocast + GradScaler on CUDA (CPU stays float32);
    ``log_every``, ``val_every_steps``, ``checkpoint_every_steps``: in optimiser steps;
    ``val_max_clips``: cap on validation clips (0 = all); ``num_threads``: torch CPU threads of
    the training process (0 = torch's default; on a busy machine 1 can be several times faster
    than oversubscribed threads)."""

    seed: int = 0
    device: str = "auto"
    mixed_precision: bool = True
    log_every: int = 50
    val_every_steps: int = 2000
    checkpoint_every_steps: int = 1000
    val_max_clips: int = 0
    num_threads: int = 0


@dataclass(frozen=True)
class TrainConfig:
    """The resolved trainer configuration. ``name``: the pipeline file it came from."""

    name: str = "default"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    dann: DannConfig = field(default_factory=DannConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def __post_init__(self):
        if self.data.modality not in MODALITIES:
            raise ValueError(f"unknown modality {self.data.modality!r}; known: {sorted(MODALITIES)}")
        if self.data.clip_length < 2:
            raise ValueError(f"data.clip_length must be >= 2 (one pair), got {self.data.clip_length}")
        if self.data.input_size < 32:
            raise ValueError(f"data.input_size must be >= 32, got {self.data.input_size}")
        if self.model.backbone not in BACKBONE_NAMES:
            raise ValueError(f"unknown model.backbone {self.model.backbone!r}; "
                             f"known: {list(BACKBONE_NAMES)}")
        if self.model.imagenet_weights and self.model.backbone != "resnet50":
            raise ValueError(f"model.imagenet_weights are torchvision resnet50 weights: they need "
                             f"model.backbone = \"resnet50\", not {self.model.backbone!r}")

    def to_dict(self) -> dict:
        """Plain nested dict (JSON/TOML-serialisable)."""
        return _to_plain(dataclasses.asdict(self))

    def replace(self, **sections) -> "TrainConfig":
        """A copy with section fields replaced: ``cfg.replace(optim={"steps": 10})``."""
        return from_dict(_merge(self.to_dict(), sections))


def _to_plain(value):
    if isinstance(value, dict):
        return {k: _to_plain(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_to_plain(v) for v in value]
    return value


def _merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def from_dict(data: dict) -> TrainConfig:
    """Build a :class:`TrainConfig` from a nested dict.

    Raises
    ------
    ValueError
        On an unknown section or key (naming it and the known ones) or an invalid value.
    """
    kwargs = {}
    sections = {f.name: f for f in dataclasses.fields(TrainConfig)}
    for key, value in data.items():
        if key not in sections:
            raise ValueError(f"unknown trainer config section {key!r}; known: {sorted(sections)}")
        if key == "name":
            kwargs[key] = str(value)
            continue
        cls = sections[key].default_factory
        known = {f.name for f in dataclasses.fields(cls)}
        if not isinstance(value, dict):
            raise ValueError(f"trainer config section {key!r} must be a table, got {value!r}")
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(f"unknown trainer config key(s) {key}.{unknown}; known: {sorted(known)}")
        kwargs[key] = cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in value.items()})
    return TrainConfig(**kwargs)


def load_train_config(pipeline: str | Path | None = None) -> TrainConfig:
    """Load a trainer pipeline: a path to a ``.toml`` file or a name in ``pipelines/``
    (``"train_demo"``). ``None`` gives the paper's defaults.

    Raises
    ------
    FileNotFoundError
        No such pipeline (the message lists the known trainer pipelines).
    ValueError
        As :func:`from_dict`.
    """
    if pipeline is None:
        return TrainConfig()
    return from_dict(_read(pipeline))


def _resolve(pipeline: str | Path) -> Path:
    path = Path(pipeline)
    for candidate in (path, path.with_suffix(".toml"), PIPELINES_DIR / path.name,
                      PIPELINES_DIR / f"{path.name}.toml"):
        if candidate.is_file():
            return candidate
    known = sorted(p.stem for p in PIPELINES_DIR.glob("train_*.toml"))
    raise FileNotFoundError(f"no trainer pipeline {str(pipeline)!r}; known: {known}")


def _read(pipeline: str | Path) -> dict:
    path = _resolve(pipeline)
    with open(path, "rb") as f:
        data = tomllib.load(f)
    base = data.pop("base", None)
    if base is not None:
        data = _merge(_read(base), data)
    data["name"] = path.stem
    return data
