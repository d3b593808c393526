"""FlowNet / FlowNet 2.0 as a crop-flow backend: batching, devices, mixed precision, sizes.

FlowNet needs height and width that are multiples of 64; a 224x224 crop is not. As the Caffe
release of FlowNet 2.0 does (``run-flownet.py``: adapted size, resample, rescale), each image is
resized bilinearly to the next multiples of 64 (224 -> 256), the flow is computed there, then
resized back bilinearly and its x and y components multiplied by ``W / W'`` and ``H / H'``
(224 / 256) so that it is in crop pixels again. Resizing keeps the whole crop in view, unlike
cropping to 192, and unlike zero padding it gives the network no artificial borders.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from synthgen.steps.crop_flow.base import FlowBackend
from synthgen.steps.crop_flow.flownet import MODELS, SIZE_MULTIPLE
from synthgen.steps.crop_flow.flownet_checkpoint import file_sha256, load_checkpoint


def build_model(name: str, *, checkpoint: str | Path | None = None,
                rng: np.random.Generator | None = None) -> nn.Module:
    """A FlowNet model in ``eval()`` mode on the CPU, gradients off.

    Parameters
    ----------
    name : str
        A key of :data:`synthgen.steps.crop_flow.flownet.MODELS`.
    checkpoint : str or Path, optional
        Published weights (:func:`.flownet_checkpoint.load_checkpoint`).
    rng : numpy.random.Generator, optional
        Random weights instead (Xavier-uniform weights, uniform [0, 1) biases: the published
        initialisation), for tests and speed benchmarks only: the flow is meaningless.

    Raises
    ------
    ValueError
        Unknown name, or not exactly one of ``checkpoint`` and ``rng``.
    SourceError
        A bad checkpoint (see :func:`.flownet_checkpoint.read_state_dict`).
    """
    if name not in MODELS:
        raise ValueError(f"unknown FlowNet model {name!r}; known: {sorted(MODELS)}")
    if (checkpoint is None) == (rng is None):
        raise ValueError(f"{name} needs exactly one of a checkpoint (published weights) or an "
                         "rng (random weights, for tests and benchmarks)")
    with torch.device("meta"):
        model = MODELS[name]()
    if checkpoint is not None:
        load_checkpoint(model, checkpoint)
    else:
        model.to_empty(device="cpu")
        init_random_weights(model, rng)
    return model.eval().requires_grad_(False)


def init_random_weights(model: nn.Module, rng: np.random.Generator) -> None:
    """Xavier-uniform weights and U[0, 1) biases drawn from ``rng``, in place.

    The published initialisation (``init.xavier_uniform_``, ``init.uniform_``), without torch's
    global random state.
    """
    with torch.no_grad():
        for param_name, param in model.named_parameters():
            if param_name.endswith("bias"):
                values = rng.random(param.shape, dtype=np.float32)
            else:
                receptive = math.prod(param.shape[2:])
                fan_in, fan_out = param.shape[1] * receptive, param.shape[0] * receptive
                bound = math.sqrt(6.0 / (fan_in + fan_out))
                values = rng.uniform(-bound, bound, size=param.shape).astype(np.float32)
            param.copy_(torch.from_numpy(values))


class FlowNetBackend(FlowBackend):
    """A frozen FlowNet model run on batches of crop pairs.

    Parameters
    ----------
    model : str
        A key of ``MODELS`` (``"flownet2"``, ``"flownet2s"``, ...); also the backend's name.
    checkpoint, rng
        Weights, as in :func:`build_model`.
    device : str
        Torch device (``"cpu"``, ``"cuda"``, ``"cuda:1"``).
    batch_size : int
        Pairs per forward pass.
    mixed_precision : bool
        Run convolutions in float16 under ``torch.autocast`` on CUDA devices (correlation and
        warping stay float32, as in the published fp16 mode). Ignored on the CPU, where float32
        is used (CPU half precision is slower and less accurate).
    """

    def __init__(self, model: str, *, checkpoint: str | Path | None = None,
                 rng: np.random.Generator | None = None, device: str = "cpu",
                 batch_size: int = 8, mixed_precision: bool = True):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.name = model
        self.device = torch.device(device)
        self.batch_size = int(batch_size)
        self.mixed_precision = bool(mixed_precision) and self.device.type == "cuda"
        self.model = build_model(model, checkpoint=checkpoint, rng=rng).to(self.device)
        self._weights = ({"checkpoint": str(Path(checkpoint).resolve()),
                          "checkpoint_sha256": file_sha256(checkpoint)}
                         if checkpoint is not None else {"checkpoint": None,
                                                         "checkpoint_sha256": None,
                                                         "random_weights": True})

    @property
    def params(self) -> dict:
        return {"model": self.name, **self._weights, "device": str(self.device),
                "mixed_precision": self.mixed_precision, "size_multiple": SIZE_MULTIPLE,
                "resize": "bilinear"}

    def _flow(self, pairs: np.ndarray) -> np.ndarray:
        height, width = pairs.shape[2:4]
        size = (_round_up(height), _round_up(width))
        scale = torch.tensor([width / size[1], height / size[0]], device=self.device)
        scale = scale.view(1, 2, 1, 1)
        out = []
        for start in range(0, len(pairs), self.batch_size):
            batch = torch.from_numpy(pairs[start:start + self.batch_size]).to(self.device)
            flow = self._forward(batch, size)
            if size != (height, width):
                flow = F.interpolate(flow, size=(height, width), mode="bilinear",
                                     align_corners=False) * scale
            out.append(flow.permute(0, 2, 3, 1).cpu().numpy())
        return np.concatenate(out)

    @torch.inference_mode()
    def _forward(self, batch: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """(B, 2, H, W, 3) uint8 on the device -> (B, 2, H', W') float32 flow at ``size``.

        The images take the weights' dtype (float32; float16 if the model was ``.half()``-ed)."""
        num, _, height, width, _ = batch.shape
        dtype = next((p.dtype for p in self.model.parameters()), torch.float32)
        images = batch.permute(0, 1, 4, 2, 3).reshape(num * 2, 3, height, width).to(dtype)
        if size != (height, width):
            images = F.interpolate(images, size=size, mode="bilinear", align_corners=False)
        inputs = images.view(num, 2, 3, *size).transpose(1, 2)        # (B, 3, 2, H', W')
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.mixed_precision):
            flow = self.model(inputs)
        return flow.float()


def _round_up(n: int) -> int:
    return -(-n // SIZE_MULTIPLE) * SIZE_MULTIPLE
