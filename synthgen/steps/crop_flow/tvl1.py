"""TV-L1 flow of the crops (``synthgen.steps.tvl1``, as camera motion), the default before DIS."""

from __future__ import annotations

import numpy as np

from synthgen.config import CropFlowConfig
from synthgen.steps.crop_flow.base import FlowBackend
from synthgen.steps.tvl1 import optical_flow_tvl1_batch

_DEFAULT = CropFlowConfig()


class TVL1Backend(FlowBackend):
    """TV-L1 optical flow on the RGB crops (grey levels), batched over pairs.

    Parameters have the meaning of :func:`synthgen.steps.tvl1.optical_flow_tvl1_batch`; defaults
    are ``synthgen.config.CropFlowConfig``'s (flow computed at half resolution and returned at
    the crops' size; ``benchmarks/bench_crop_flow.py`` measures the trade-off). ``batch_size``
    pairs go through the vectorised solver at once (it bounds memory, not the result).
    """

    name = "tvl1"

    def __init__(self, *, attachment: float = _DEFAULT.tvl1_attachment,
                 tightness: float = _DEFAULT.tvl1_tightness,
                 num_warp: int = _DEFAULT.tvl1_num_warp, num_iter: int = _DEFAULT.tvl1_num_iter,
                 num_levels: int = _DEFAULT.tvl1_num_levels,
                 downscale: int = _DEFAULT.tvl1_downscale, batch_size: int = _DEFAULT.batch_size):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self._solver = dict(attachment=float(attachment), tightness=float(tightness),
                            num_warp=int(num_warp), num_iter=int(num_iter),
                            num_levels=int(num_levels), downscale=int(downscale))
        if min(num_warp, num_iter, num_levels, downscale) < 1:
            raise ValueError("num_warp, num_iter, num_levels and downscale must all be >= 1")
        self.batch_size = int(batch_size)

    @property
    def params(self) -> dict:
        return dict(self._solver)

    def _flow(self, pairs: np.ndarray) -> np.ndarray:
        chunks = [optical_flow_tvl1_batch(pairs[i:i + self.batch_size, 0],
                                          pairs[i:i + self.batch_size, 1], **self._solver)
                  for i in range(0, len(pairs), self.batch_size)]
        return np.concatenate(chunks)
