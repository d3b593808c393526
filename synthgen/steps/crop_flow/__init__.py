"""Optical flow of paired crops (method step 10, appendix B), by a backend chosen by name.

The paper runs a frozen FlowNet on each pair (frames t and t+1 cropped with the box of frame t,
224x224). Backends:

* ``"dis"``: OpenCV's DIS with variational refinement on the crops, refined once more at full
  resolution, the classical default, needing no weights (:class:`.dis.DISBackend`); optionally
  that last pass on colour with edge-aware smoothness (:mod:`.colour_refine`).
* ``"tvl1"``: TV-L1 (:mod:`synthgen.steps.tvl1`) on the crops, the classical default before DIS
  (:class:`.tvl1.TVL1Backend`).
* ``"tvl1_torch"``: the same TV-L1 in PyTorch on any torch device, batched (GPU builds; the
  ``tvl1_*`` parameters, :class:`.tvl1_torch.TVL1TorchBackend`).
* ``"flownet2"``, ``"flownet2s"`` (FlowNetS), ``"flownet2c"`` (FlowNetC), ``"flownet2cs"``,
  ``"flownet2css"``, ``"flownet2sd"``: FlowNet / FlowNet 2.0 in plain PyTorch with NVIDIA's
  published ``flownet2-pytorch`` checkpoints (:class:`.flownet_backend.FlowNetBackend`).

Every backend maps ``(B, 2, H, W, 3)`` uint8 RGB pairs to ``(B, H, W, 2)`` float32 flow in crop
pixels, x then y, from the first image to the second, and exposes ``name`` and ``params`` for the
store to record.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import numpy as np

from synthgen.config import CropFlowConfig
from synthgen.steps.crop_flow.base import FlowBackend, check_pairs
from synthgen.steps.crop_flow.dis import DISBackend
from synthgen.steps.crop_flow.flownet import MODELS
from synthgen.steps.crop_flow.flownet_backend import FlowNetBackend
from synthgen.steps.crop_flow.flownet_checkpoint import CheckpointMismatchError
from synthgen.steps.crop_flow.tvl1 import TVL1Backend
from synthgen.steps.crop_flow.tvl1_torch import TVL1TorchBackend

#: Classical backends (no weights): name -> class, built from their own parameters.
CLASSICAL = {"dis": DISBackend, "tvl1": TVL1Backend, "tvl1_torch": TVL1TorchBackend}
#: Prefix of a classical backend's fields in ``CropFlowConfig`` (default: its name and "_").
CONFIG_PREFIX = {"tvl1_torch": "tvl1_"}
#: Every backend name, for the config and command-line choices.
BACKENDS: tuple[str, ...] = tuple(CLASSICAL) + tuple(MODELS)
#: Backends that run on ``CropFlowConfig.device`` (torch); the others always run on the CPU.
DEVICE_BACKENDS: tuple[str, ...] = ("tvl1_torch",) + tuple(MODELS)

__all__ = ["BACKENDS", "CLASSICAL", "CheckpointMismatchError", "DEVICE_BACKENDS", "DISBackend", "FlowBackend",
           "FlowNetBackend", "TVL1Backend", "TVL1TorchBackend", "backend_from_config",
           "check_pairs", "get_backend"]


def get_backend(name: str, *, checkpoint: str | Path | None = None, device: str = "cpu",
                batch_size: int | None = None, mixed_precision: bool = True,
                rng: np.random.Generator | None = None, **classical_params) -> FlowBackend:
    """The crop-flow backend called ``name``.

    Parameters
    ----------
    name : str
        One of :data:`BACKENDS`.
    checkpoint : str or Path, optional
        FlowNet weights (a flownet2-pytorch ``*_checkpoint.pth.tar``); required for FlowNet
        backends unless ``rng`` is given, refused for the classical ones.
    device : str
        Torch device for FlowNet and ``"tvl1_torch"`` (the other classical backends run on the
        CPU).
    batch_size : int, optional
        Pairs per call of the TV-L1 solver or the network; default ``CropFlowConfig``'s (DIS
        takes one pair at a time).
    mixed_precision : bool
        FlowNet only: float16 autocast on CUDA.
    rng : numpy.random.Generator, optional
        FlowNet only: random weights instead of a checkpoint (tests and speed benchmarks).
    **classical_params
        ``"dis"``: the parameters of :class:`DISBackend`; ``"tvl1"`` and ``"tvl1_torch"``:
        ``attachment``, ``tightness``, ``num_warp``, ``num_iter``, ``num_levels``, ``downscale``.

    Raises
    ------
    ValueError
        Unknown name, or options that do not apply to the backend.
    SourceError
        A missing or bad checkpoint file.
    """
    batch_size = CropFlowConfig.batch_size if batch_size is None else batch_size
    if name in CLASSICAL:
        if checkpoint is not None or rng is not None:
            raise ValueError(f"backend {name!r} takes no checkpoint or random weights")
        if name == "tvl1":
            return TVL1Backend(batch_size=batch_size, **classical_params)
        if name == "tvl1_torch":
            return TVL1TorchBackend(device=device, batch_size=batch_size, **classical_params)
        return CLASSICAL[name](**classical_params)
    if name in MODELS:
        if classical_params:
            raise ValueError(f"backend {name!r} takes no classical-flow options: "
                             f"{sorted(classical_params)}")
        if checkpoint is None and rng is None:
            raise ValueError(f"backend {name!r} needs FlowNet weights: set crop_flow.checkpoint "
                             "to a flownet2-pytorch checkpoint, or use the classical default "
                             "backend 'dis'")
        return FlowNetBackend(name, checkpoint=checkpoint, rng=rng, device=device,
                              batch_size=batch_size, mixed_precision=mixed_precision)
    raise ValueError(f"unknown crop-flow backend {name!r}; known: {list(BACKENDS)}")


def backend_from_config(cfg: CropFlowConfig, *, device: str | None = None) -> FlowBackend:
    """The backend a pipeline's ``[crop_flow]`` section names; ``device`` overrides its device."""
    prefix = CONFIG_PREFIX.get(cfg.backend, f"{cfg.backend}_")
    classical = {field.name[len(prefix):]: getattr(cfg, field.name) for field in fields(cfg)
                 if cfg.backend in CLASSICAL and field.name.startswith(prefix)}
    return get_backend(cfg.backend, checkpoint=cfg.checkpoint, device=device or cfg.device,
                       batch_size=cfg.batch_size, mixed_precision=cfg.mixed_precision, **classical)
