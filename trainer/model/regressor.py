"""HMR's iterative SMPL regressor and the layout of its 85 parameters.

A parameter vector ``theta`` (85,) is laid out as

* ``theta[POSE]``   (72,) SMPL axis-angle pose, radians: global orientation (3) then 23 joints;
* ``theta[BETAS]``  (10,) SMPL shape coefficients;
* ``theta[CAMERA]`` (3,)  weak-perspective camera ``(s, tx, ty)`` mapping SMPL metres to
  normalised crop coordinates (see :func:`trainer.smpl.weak_perspective`).

(HMR itself stores the camera first; this project puts it last.)
"""

from __future__ import annotations

import math
from pathlib import Path

import h5py
import numpy as np
import torch
from torch import nn

from synthgen.core.errors import SourceError
from synthgen.core.limits import Budget, check_h5_chunks
from synthgen.core.smpl import NUM_BETAS, NUM_POSE, ModelFileError

NUM_CAMERA = 3
NUM_PARAMS = NUM_POSE + NUM_BETAS + NUM_CAMERA
POSE = slice(0, NUM_POSE)
BETAS = slice(NUM_POSE, NUM_POSE + NUM_BETAS)
CAMERA = slice(NUM_POSE + NUM_BETAS, NUM_PARAMS)

#: HMR's mean weak-perspective camera (scale, tx, ty).
MEAN_CAMERA = (0.9, 0.0, 0.0)


def mean_params(path: str | Path | None = None) -> np.ndarray:
    """Starting point of the iterative regressor.

    Parameters
    ----------
    path : str or Path, optional
        HMR's mean-parameter file (``neutral_smpl_mean_params.h5``: datasets ``pose`` (72,) and
        ``shape`` (10,)). Without it: zero betas and a zero pose except the global orientation,
        a rotation by pi about x that turns SMPL's y-up body upright in the image (y down).

    Returns
    -------
    ndarray, shape (85,), float32
        ``pose | betas | camera`` with the camera :data:`MEAN_CAMERA`.

    Raises
    ------
    FileNotFoundError
        When ``path`` is given and does not exist.
    synthgen.core.smpl.ModelFileError
        When the file is not HDF5 or lacks ``pose``/``shape`` of the right sizes and finite
        values.
    """
    theta = np.zeros(NUM_PARAMS, dtype=np.float32)
    theta[CAMERA] = MEAN_CAMERA
    if path is None:
        theta[0] = math.pi
        return theta
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such mean-parameter file")
    fields = {}
    try:
        with h5py.File(path, "r") as f:
            for name, size in (("pose", NUM_POSE), ("shape", NUM_BETAS)):
                if not isinstance(f.get(name), h5py.Dataset):
                    raise ModelFileError(path, f"mean-parameter file lacks dataset {name!r}")
                if f[name].size != size:  # checked before reading: the file may declare 10**12
                    raise ModelFileError(path, f"dataset {name!r} has {f[name].size} values, "
                                               f"expected {size}")
                check_h5_chunks(f[name], Budget(path, name, (size,)))
                fields[name] = np.asarray(f[name], dtype=np.float32).reshape(-1)
    except OSError as exc:
        raise ModelFileError(path, f"not an HDF5 mean-parameter file ({exc})") from exc
    except SourceError as exc:  # a gzip chunk inflating beyond its size, an unknown filter
        raise ModelFileError(path, exc.detail) from exc
    for name in fields:
        if not np.isfinite(fields[name]).all():
            raise ModelFileError(path, f"dataset {name!r} holds NaN or infinite values")
    theta[POSE] = fields["pose"]
    theta[BETAS] = fields["shape"]
    return theta


class IterativeRegressor(nn.Module):
    """HMR's iterative error feedback: ``theta += f([features, theta])``, from the mean.

    Parameters
    ----------
    in_features : int
        Width of the feature vector of one frame.
    init_params : array_like, shape (85,)
        The starting ``theta`` (see :func:`mean_params`); stored as a buffer.
    hidden : int
        Width of the two hidden layers (HMR: 1024).
    iterations : int
        Refinement steps (HMR: 3).
    dropout : float
        Dropout probability after each hidden layer (HMR: 0.5).

    Notes
    -----
    As in HMR's ``Encoder_fc3_dropout``: fc -> ReLU -> dropout -> fc -> ReLU -> dropout -> fc to 85,
    the last layer initialised with Xavier-uniform gain 0.01 so the first updates are small.
    """

    def __init__(self, in_features: int, init_params: np.ndarray | torch.Tensor, *,
                 hidden: int = 1024, iterations: int = 3, dropout: float = 0.5):
        super().__init__()
        init = torch.as_tensor(np.asarray(init_params, dtype=np.float32))
        if init.shape != (NUM_PARAMS,):
            raise ValueError(f"init_params must have shape ({NUM_PARAMS},), "
                             f"got {tuple(init.shape)}")
        self.iterations = iterations
        self.register_buffer("init_params", init)
        self.mlp = nn.Sequential(
            nn.Linear(in_features + NUM_PARAMS, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(hidden, NUM_PARAMS),
        )
        nn.init.xavier_uniform_(self.mlp[-1].weight, gain=0.01)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Regress SMPL and camera parameters.

        Parameters
        ----------
        features : Tensor, shape (N, in_features)

        Returns
        -------
        Tensor, shape (N, 85)
            ``theta`` after the last iteration (layout in the module docstring).
        """
        theta = self.init_params.expand(features.shape[0], -1)
        for _ in range(self.iterations):
            theta = theta + self.mlp(torch.cat([features, theta], dim=1))
        return theta
