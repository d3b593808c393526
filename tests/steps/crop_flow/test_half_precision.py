"""FlowNet in half precision: the float16 paths a GPU build runs (autocast) or could run
(``.half()`` weights) are callable and close to float32; on CUDA where one is present."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synthgen.config import CropFlowConfig
from synthgen.steps.crop_flow import get_backend

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
#: Mean |float16 - float32| flow over mean |float32 flow| allowed (random FlowNet2-S weights);
#: measured on CPU: 3.7e-4 (autocast), 3.8e-4 (.half() weights).
HALF_RELATIVE = 1e-2


@pytest.fixture(scope="module")
def pairs():
    return np.random.default_rng(0).integers(0, 256, (2, 2, 96, 128, 3), dtype=np.uint8)


def _relative(half, full):
    assert half.dtype == np.float32 and np.isfinite(half).all()
    return np.abs(half - full).mean() / np.abs(full).mean()


def _flownet(device="cpu", **kwargs):
    return get_backend("flownet2s", rng=np.random.default_rng(0), device=device, batch_size=2,
                       **kwargs)


def test_float16_autocast_is_the_default_and_dropped_on_the_cpu():
    default = CropFlowConfig().mixed_precision
    assert default                      # what backend_from_config passes on a GPU build
    assert _flownet(mixed_precision=default).params["mixed_precision"] is False   # CPU: float32


def test_autocast_float16_path_is_callable_and_close(pairs):
    """The backend's autocast region run in float16 on the CPU (the backend enables it on CUDA
    only): correlation and warping cast back to float32 and the flow stays close."""
    backend = _flownet()
    full = backend.flow(pairs)
    backend.mixed_precision = True
    assert _relative(backend.flow(pairs), full) < HALF_RELATIVE


def test_half_weights_run_through_the_backend(pairs):
    backend = _flownet()
    full = backend.flow(pairs)
    backend.model.half()
    assert _relative(backend.flow(pairs), full) < HALF_RELATIVE


@requires_cuda
def test_cuda_float16_autocast_is_close_to_float32(pairs):
    half = _flownet("cuda", mixed_precision=True)
    assert half.params["mixed_precision"] is True
    full = _flownet("cuda", mixed_precision=False)
    assert _relative(half.flow(pairs), full.flow(pairs)) < HALF_RELATIVE
