"""The network of a :class:`trainer.config.TrainConfig` (shared by train, eval and predict)."""

from __future__ import annotations

import numpy as np

from trainer.config import TrainConfig
from trainer.data import input_channels
from trainer.model.motion_hmr import MotionHMR
from trainer.model.regressor import mean_params
from trainer.model.resnet import load_imagenet_weights


def build_model(config: TrainConfig, *, init_params: np.ndarray | None = None) -> MotionHMR:
    """Motion HMR for ``config``: its ``model.backbone`` (ImageNet weights loaded when configured,
    which :class:`trainer.config.TrainConfig` allows only for ``resnet50``).

    ``init_params`` (85,): the regressors' starting point; default ``config.model.mean_params``
    (HMR's file; the upright zero pose when empty).
    """
    m = config.model
    if init_params is None:
        init_params = mean_params(m.mean_params or None)
    model = MotionHMR(input_channels(config.data.modality), init_params=init_params,
                      lstm_hidden=m.lstm_hidden, head_hidden=m.head_hidden,
                      regressor_hidden=m.regressor_hidden, iterations=m.iterations,
                      dropout=m.dropout, backbone=m.backbone)
    if m.imagenet_weights:
        load_imagenet_weights(model.backbone, m.imagenet_weights)
    return model
