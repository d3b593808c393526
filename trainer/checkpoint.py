"""Trainer checkpoints: one format, written and read here only (train, eval, predict, tests).

A checkpoint (``last.pt``) is a ``torch.save`` of a dict holding only tensors and plain data
(dict, list, tuple, str, int, float, bool, None), so it loads with
``torch.load(weights_only=True)``: unpickling runs no code, and a file holding anything else is
refused. Keys: ``model`` (state dict), ``config`` (:meth:`trainer.config.TrainConfig.to_dict`,
its paths absolute), ``stores`` (absolute paths or URLs), ``crop_flow``, ``crop_size``, and for
resuming ``trainer`` (:meth:`trainer.trainer.Trainer.state_dict`).

Portability: :func:`portable_location` makes every recorded path absolute at training time, so
``trainer eval`` and ``predict`` work from any folder; :func:`checkpoint_smpl` names the
``--smpl`` override when a recorded SMPL model is gone.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from synthgen.core.torch_file import TorchFileError, load_weights_only
from trainer.config import TrainConfig
from trainer.model.build import build_model
from trainer.model.motion_hmr import MotionHMR

#: File name of a run's checkpoint in its run folder.
CHECKPOINT = "last.pt"

_PLAIN = (str, int, float, bool, type(None))


def _check_plain(value, where: str) -> None:
    if isinstance(value, torch.Tensor) or isinstance(value, _PLAIN):
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, (str, int)):
                raise TypeError(f"checkpoint key {where}[{key!r}] is not a str or int")
            _check_plain(item, f"{where}[{key!r}]")
        return
    if isinstance(value, (list, tuple)):
        for k, item in enumerate(value):
            _check_plain(item, f"{where}[{k}]")
        return
    raise TypeError(f"checkpoint entry {where} is a {type(value).__name__}: only tensors and "
                    f"plain data load with weights_only=True")


def save_checkpoint(path: str | Path, state: dict) -> None:
    """Write ``state`` to ``path`` atomically (a temporary file, then a rename).

    Raises
    ------
    TypeError
        An entry that is not a tensor or plain data (it would not load with weights_only=True).
    """
    _check_plain(state, "checkpoint")
    path = Path(path)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path) -> dict:
    """Load a checkpoint with ``torch.load(weights_only=True)`` onto the CPU.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        A file holding pickled objects other than tensors and plain data (refused unread: it
        could run code), an unreadable file, not a trainer checkpoint (no ``model`` and
        ``config``), or a recorded config this trainer refuses.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    try:
        checkpoint = load_weights_only(path)
    except TorchFileError as exc:
        never = "; trainer checkpoints never do" if exc.unsafe else ""
        raise ValueError(f"{exc}{never}") from exc
    if not isinstance(checkpoint, dict) or not {"model", "config"} <= set(checkpoint):
        raise ValueError(f"{path}: not a trainer checkpoint (needs 'model' and 'config')")
    try:
        checkpoint_config(checkpoint)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}: its recorded training config does not load ({exc})") from exc
    return checkpoint


def checkpoint_config(checkpoint: dict) -> TrainConfig:
    """The resolved training config a checkpoint records."""
    return TrainConfig().replace(**checkpoint["config"])


def load_model(checkpoint: dict, *, device: torch.device) -> tuple[MotionHMR, TrainConfig]:
    """The checkpoint's network in eval mode on ``device``, and its resolved config.

    The ImageNet and mean-parameter files of the training config are not read: the state dict
    holds every weight and the regressors' starting point. ``run.num_threads`` > 0 sets torch's
    CPU threads, as in training.

    Raises
    ------
    ValueError
        Weights of other names or shapes than the network the recorded config builds.
    """
    config = checkpoint_config(checkpoint)
    if config.run.num_threads > 0:
        torch.set_num_threads(config.run.num_threads)
    model = build_model(config.replace(model={"imagenet_weights": "", "mean_params": ""}))
    try:
        model.load_state_dict(checkpoint["model"])
    except (RuntimeError, TypeError, AttributeError) as exc:  # torch's lists every mismatch
        problems = [line.strip() for line in str(exc).splitlines()[1:] if line.strip()] or [exc]
        raise ValueError(f"the checkpoint's weights do not fit the network its config describes "
                         f"({len(problems)} problem(s), e.g. {problems[0]}): a damaged "
                         f"checkpoint, or one written by another trainer version") from exc
    return model.to(device).eval(), config


def portable_location(location: str) -> str:
    """A path made absolute (resolved against the working directory); URLs and "" unchanged."""
    if not location or "://" in location:
        return location
    return str(Path(location).expanduser().resolve())


def portable_config(config: TrainConfig) -> TrainConfig:
    """``config`` with its file paths (``model.smpl``, ``model.imagenet_weights``,
    ``model.mean_params``, ``dann.real_stores``) absolute, as a checkpoint records them."""
    m = config.model
    return config.replace(
        model={"smpl": portable_location(m.smpl),
               "imagenet_weights": portable_location(m.imagenet_weights),
               "mean_params": portable_location(m.mean_params)},
        dann={"real_stores": [portable_location(s) for s in config.dann.real_stores]})


def checkpoint_smpl(config: TrainConfig, override: str | None = None) -> str:
    """The SMPL model to use with a checkpoint: ``override`` (``--smpl``), else the recorded one.

    Raises
    ------
    FileNotFoundError
        The recorded SMPL path is gone (the message says to pass ``--smpl``), or ``override``
        does not exist.
    """
    if override:
        if not Path(override).exists():
            raise FileNotFoundError(f"--smpl {override}: no such SMPL model file or directory")
        return override
    recorded = config.model.smpl
    if not Path(recorded).exists():
        raise FileNotFoundError(f"{recorded}: the SMPL model the checkpoint was trained with is "
                                f"gone (recorded path); pass --smpl with the SMPL model "
                                f"directory or file")
    return recorded
