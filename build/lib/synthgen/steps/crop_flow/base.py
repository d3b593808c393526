"""The interface every crop-flow backend implements (method step 10, appendix B).

A backend turns a batch of paired crops into optical flow. Pair t of an example holds frames t
and t+1 both cropped with the box of frame t, so the flow is in *crop* pixels of that box.
"""

from __future__ import annotations

import abc

import numpy as np


def check_pairs(pairs: np.ndarray) -> np.ndarray:
    """Validate a batch of crop pairs.

    Parameters
    ----------
    pairs : ndarray, shape (B, 2, H, W, 3), uint8
        RGB crops; ``pairs[b, 0]`` is the first image of pair b, ``pairs[b, 1]`` the second.

    Returns
    -------
    ndarray
        ``pairs`` as an ndarray (not copied).

    Raises
    ------
    ValueError
        On another shape or dtype.
    """
    pairs = np.asarray(pairs)
    if pairs.ndim != 5 or pairs.shape[1] != 2 or pairs.shape[4] != 3:
        raise ValueError(f"crop pairs must have shape (B, 2, H, W, 3), got {pairs.shape}")
    if pairs.dtype != np.uint8:
        raise ValueError(f"crop pairs must be uint8 RGB, got dtype {pairs.dtype}")
    return pairs


class FlowBackend(abc.ABC):
    """An optical-flow method for paired crops, chosen by :attr:`name`.

    Subclasses implement :meth:`_flow` and :attr:`params`; :meth:`flow` validates the input.
    ``name`` and ``params`` are what a store records about the flow it holds.
    """

    #: Registry name (``synthgen.steps.crop_flow.BACKENDS``).
    name: str = ""

    @property
    @abc.abstractmethod
    def params(self) -> dict:
        """Everything that determines the output: plain JSON-serialisable values."""

    def flow(self, pairs: np.ndarray) -> np.ndarray:
        """Optical flow of each pair, from its first image to its second.

        Parameters
        ----------
        pairs : ndarray, shape (B, 2, H, W, 3), uint8
            RGB crop pairs (224x224 in the pipeline), from any number of examples.

        Returns
        -------
        flow : ndarray, shape (B, H, W, 2), float32
            Displacement in crop pixels, x (columns) then y (rows): the content at pixel (x, y)
            of ``pairs[b, 0]`` is at ``(x + flow[b, y, x, 0], y + flow[b, y, x, 1])`` in
            ``pairs[b, 1]``.

        Raises
        ------
        ValueError
            If ``pairs`` is not (B, 2, H, W, 3) uint8.
        """
        pairs = check_pairs(pairs)
        if pairs.shape[0] == 0:
            return np.zeros((0,) + pairs.shape[2:4] + (2,), dtype=np.float32)
        out = self._flow(pairs)
        return np.ascontiguousarray(out, dtype=np.float32)

    @abc.abstractmethod
    def _flow(self, pairs: np.ndarray) -> np.ndarray:
        """Flow of a validated, non-empty batch; same contract as :meth:`flow`."""

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"
