"""TV-L1 flow of the crops in PyTorch (:mod:`synthgen.steps.tvl1_torch`), on a torch device."""

from __future__ import annotations

import numpy as np
import torch

from synthgen.config import CropFlowConfig
from synthgen.steps.crop_flow.tvl1 import TVL1Backend
from synthgen.steps.tvl1_torch import tvl1_flow

_DEFAULT = CropFlowConfig()


class TVL1TorchBackend(TVL1Backend):
    """TV-L1 on the crops' grey levels with the torch solver, ``batch_size`` pairs per call.

    Same parameters (``CropFlowConfig``'s ``tvl1_*``) and, to float32 rounding, the same flow as
    :class:`TVL1Backend` (``tests/steps/test_tvl1_torch.py``). ``device`` is a torch device
    (``"cpu"``, ``"cuda"``, ``"cuda:1"``); on a GPU, larger ``batch_size`` fills it better (the
    solver launches the same kernels for 1 or 256 pairs).

    The store's flow identity is ``name`` (``"tvl1_torch"``, distinct from the NumPy solver's
    ``"tvl1"``) and the solver parameters; the device is not part of it (CPU and CUDA agree to
    float rounding, far below the stored flow quantum), it is in the store's config.
    """

    name = "tvl1_torch"

    def __init__(self, *, device: str = "cpu", batch_size: int = _DEFAULT.batch_size,
                 **solver):
        super().__init__(batch_size=batch_size, **solver)
        self.device = torch.device(device)

    def _flow(self, pairs: np.ndarray) -> np.ndarray:
        out = []
        for start in range(0, len(pairs), self.batch_size):
            batch = torch.from_numpy(pairs[start:start + self.batch_size]).to(self.device)
            out.append(tvl1_flow(batch[:, 0], batch[:, 1], **self._solver).cpu().numpy())
        return np.concatenate(out)
