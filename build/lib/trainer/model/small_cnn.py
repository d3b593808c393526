"""A light per-pair CNN for small CPU runs (``model.backbone = "small"``; not in the paper).

Four 3x3 convolutions with stride 2 (32, 64, 128, 128 channels), each followed by batch norm and
ReLU, then an average pool to a fixed 3 x 3 grid, flattened, and a linear layer + ReLU to
:data:`SMALL_CNN_FEATURES` features. *Decision*: the pool keeps a coarse 3 x 3 layout instead of
ResNet-50's global average because a shallow network's receptive field is too small to tell
*where* a keypoint heatmap peaks after a global pool, and where the joints are is the pose.
"""

from __future__ import annotations

import torch
from torch import nn

from trainer.model.resnet import init_conv_bn

#: Output channels of the strided convolutions.
SMALL_CNN_CHANNELS = (32, 64, 128, 128)
#: Side of the pooled grid in front of the feature layer.
SMALL_CNN_GRID = 3
#: Width of the feature vector of one pair.
SMALL_CNN_FEATURES = 256


class SmallCNN(nn.Module):
    """Light CNN returning one feature vector per image.

    Parameters
    ----------
    in_channels : int
        Channels of the input images (modality channels, see :func:`trainer.data.input_channels`).

    Notes
    -----
    Convolutions are initialised Kaiming normal (``fan_out``, ReLU gain) as in
    :class:`trainer.model.resnet.ResNet50`; batch norms with weight 1 and bias 0.
    """

    features = SMALL_CNN_FEATURES

    def __init__(self, in_channels: int):
        super().__init__()
        if in_channels < 1:
            raise ValueError(f"in_channels must be >= 1, got {in_channels}")
        self.in_channels = in_channels
        layers, previous = [], in_channels
        for channels in SMALL_CNN_CHANNELS:
            layers += [nn.Conv2d(previous, channels, kernel_size=3, stride=2, padding=1, bias=False),
                       nn.BatchNorm2d(channels), nn.ReLU(inplace=True)]
            previous = channels
        self.convs = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(SMALL_CNN_GRID)
        self.fc = nn.Linear(previous * SMALL_CNN_GRID ** 2, SMALL_CNN_FEATURES)
        init_conv_bn(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features of a batch of images.

        Parameters
        ----------
        x : Tensor, shape (N, in_channels, H, W), float
            Images of any size; 48 x 48 gives exactly the 3 x 3 grid after the 16x downsampling
            (32 x 32 gives 2 x 2 maps, which the adaptive pool spreads over the grid).

        Returns
        -------
        Tensor, shape (N, 256)
            Non-negative features (after the ReLU).
        """
        return torch.relu(self.fc(torch.flatten(self.pool(self.convs(x)), 1)))
