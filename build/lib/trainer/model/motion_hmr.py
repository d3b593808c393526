"""Motion HMR (Doersch & Zisserman 2019, section 3.2 and appendix B).

Per frame pair: ResNet-50 -> global average pool (2048) -> a bidirectional LSTM over the pairs of a
clip (1024 hidden units per direction) -> two prediction heads, *current* (pose of frame t) and
*future* (pose of frame t + 1), each a 1024-unit layer followed by its own HMR iterative regressor
(3 iterations from the mean parameters). A clip of T frames gives P = T - 1 pairs and 2P
predictions; :func:`clip_predictions` keeps the T test-time ones. The per-pair CNN is
selectable (:data:`BACKBONES`): the paper's ResNet-50, or a light CNN for small CPU runs.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from trainer.model.regressor import NUM_PARAMS, IterativeRegressor, mean_params
from trainer.model.resnet import ResNet50
from trainer.model.small_cnn import SmallCNN

#: Names of the two prediction heads, in output-dict order.
HEADS = ("current", "future")
#: Per-pair CNNs by name (``model.backbone``): classes taking ``in_channels`` whose instances map
#: (N, in_channels, H, W) to (N, ``features``). ``resnet50`` is the paper's.
BACKBONES = {"resnet50": ResNet50, "small": SmallCNN}


class MotionHMR(nn.Module):
    """Motion HMR.

    Parameters
    ----------
    in_channels : int
        Channels per frame pair, fixed by the input modality (e.g. 3 flow + 12 heatmaps +
        1 total-occlusion indicator = 16).
    init_params : array_like, shape (85,), optional
        Starting point of both regressors; :func:`trainer.model.regressor.mean_params` by default.
    lstm_hidden : int
        Hidden units per LSTM direction (paper: 1024).
    head_hidden : int
        Width of the layer in front of each head (paper: 1024).
    regressor_hidden : int
        Width of HMR's regressor layers (HMR: 1024).
    iterations : int
        Regressor refinement steps (HMR: 3).
    dropout : float
        Dropout in the regressors (HMR: 0.5).
    backbone : str
        A key of :data:`BACKBONES`: ``"resnet50"`` (the paper's; its parameters are
        ``backbone.<torchvision name>``) or ``"small"`` (:class:`trainer.model.small_cnn.SmallCNN`).
        The LSTM's input width is the backbone's ``features``.

    Notes
    -----
    Decision (the paper is silent): the two heads share nothing after the LSTM; each has its own
    1024-unit layer (linear + ReLU) and its own regressor weights. ImageNet weights go into a
    ResNet-50 ``model.backbone`` with :func:`trainer.model.resnet.load_imagenet_weights`.
    """

    def __init__(self, in_channels: int, *, init_params: np.ndarray | None = None,
                 lstm_hidden: int = 1024, head_hidden: int = 1024, regressor_hidden: int = 1024,
                 iterations: int = 3, dropout: float = 0.5, backbone: str = "resnet50"):
        super().__init__()
        if backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {backbone!r}; known: {sorted(BACKBONES)}")
        init = mean_params() if init_params is None else init_params
        self.backbone = BACKBONES[backbone](in_channels)
        self.lstm = nn.LSTM(self.backbone.features, lstm_hidden, batch_first=True,
                            bidirectional=True)
        self.heads = nn.ModuleDict({
            name: nn.Sequential(
                nn.Linear(2 * lstm_hidden, head_hidden), nn.ReLU(inplace=True),
                IterativeRegressor(head_hidden, init, hidden=regressor_hidden,
                                   iterations=iterations, dropout=dropout),
            )
            for name in HEADS
        })

    @property
    def in_channels(self) -> int:
        return self.backbone.in_channels

    def forward(self, inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        """Predict SMPL and camera parameters for every pair of a batch of clips.

        Parameters
        ----------
        inputs : Tensor, shape (B, P, C, H, W), float
            B clips of P frame pairs, C = ``in_channels`` channels of H x W crop pixels
            (224 x 224 in the paper; any size >= 32 works).

        Returns
        -------
        dict
            ``current`` : Tensor, shape (B, P, 85), parameters of frame t of pair t;
            ``future`` : Tensor, shape (B, P, 85), parameters of frame t + 1 of pair t;
            ``features`` : Tensor, shape (B, P, F), the per-pair CNN features in front of
            the LSTM (input of a DANN adversary); F = ``backbone.features`` (2048 for ResNet-50).
            Parameter layout: :mod:`trainer.model.regressor`.

        Raises
        ------
        ValueError
            When ``inputs`` is not 5-D with ``in_channels`` channels.
        """
        if inputs.ndim != 5 or inputs.shape[2] != self.in_channels:
            raise ValueError(f"inputs must have shape (B, P, {self.in_channels}, H, W), "
                             f"got {tuple(inputs.shape)}")
        batch, pairs = inputs.shape[:2]
        features = self.backbone(inputs.flatten(0, 1)).view(batch, pairs, -1)
        memory = self.lstm(features)[0].flatten(0, 1)
        outputs = {name: head(memory).view(batch, pairs, NUM_PARAMS)
                   for name, head in self.heads.items()}
        outputs["features"] = features
        return outputs


def clip_predictions(outputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """The test-time predictions of a clip: every current one plus the last future one.

    Parameters
    ----------
    outputs : dict
        :meth:`MotionHMR.forward` output (``current`` and ``future``, shape (B, P, 85)).

    Returns
    -------
    Tensor, shape (B, P + 1, 85)
        Parameters of frames 0..P (a T = P + 1 frame clip).
    """
    return torch.cat([outputs["current"], outputs["future"][:, -1:]], dim=1)
