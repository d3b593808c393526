"""ResNet-50 with torchvision's parameter names, any number of input channels.

The module tree (``conv1``, ``bn1``, ``layer1`` … ``layer4`` of ``Bottleneck`` blocks with
``conv1/bn1/conv2/bn2/conv3/bn3`` and ``downsample.0/.1``, ``fc``) matches torchvision's
``resnet50`` exactly (v1.5: the stride of a block sits on its 3x3 convolution), so an ImageNet
state dict saved by torchvision loads with :func:`load_imagenet_weights` without torchvision.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from synthgen.core.smpl import ModelFileError
from synthgen.core.torch_file import TorchFileError, load_weights_only

#: Blocks per stage of ResNet-50.
RESNET50_LAYERS = (3, 4, 6, 3)
#: Width of the pooled feature vector of ResNet-50.
RESNET50_FEATURES = 2048
#: Number of ImageNet classes of torchvision's classifier ``fc``.
IMAGENET_CLASSES = 1000



def init_conv_bn(model: nn.Module) -> None:
    """torchvision's ResNet initialisation: He-normal convolutions (fan out), unit BatchNorm."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

class Bottleneck(nn.Module):
    """Bottleneck residual block (1x1 reduce, 3x3 with the stride, 1x1 expand by 4)."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, *, stride: int = 1):
        super().__init__()
        width = planes * self.expansion
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, width, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or inplanes != width:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, width, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(width),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet50(nn.Module):
    """ResNet-50 trunk returning globally average-pooled features.

    Parameters
    ----------
    in_channels : int
        Channels of the input images (3 for RGB; more for flow, heatmaps, indicator...).

    Notes
    -----
    Every convolution is initialised as torchvision does (Kaiming normal, ``fan_out``, ReLU gain),
    batch norms with weight 1 and bias 0. ``fc`` (2048 -> 1000) exists only so that torchvision's
    state dict has a home; :meth:`forward` never uses it. ``features``: width of the output.
    """

    features = RESNET50_FEATURES

    def __init__(self, in_channels: int = 3):
        super().__init__()
        if in_channels < 1:
            raise ValueError(f"in_channels must be >= 1, got {in_channels}")
        self.in_channels = in_channels
        self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        inplanes = 64
        for index, (blocks, planes) in enumerate(zip(RESNET50_LAYERS, (64, 128, 256, 512))):
            stride = 1 if index == 0 else 2
            layer = [Bottleneck(inplanes, planes, stride=stride)]
            inplanes = planes * Bottleneck.expansion
            layer += [Bottleneck(inplanes, planes) for _ in range(blocks - 1)]
            setattr(self, f"layer{index + 1}", nn.Sequential(*layer))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(RESNET50_FEATURES, IMAGENET_CLASSES)
        init_conv_bn(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features.

        Parameters
        ----------
        x : Tensor, shape (N, in_channels, H, W), float
            Images; H and W of at least 32 (224 in the paper).

        Returns
        -------
        Tensor, shape (N, 2048)
            Globally average-pooled output of ``layer4``.
        """
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)


def load_imagenet_weights(model: ResNet50, path: str | Path) -> None:
    """Load torchvision's ImageNet ``resnet50`` state dict into ``model`` in place.

    Parameters
    ----------
    model : ResNet50
        Target network, with any ``in_channels``.
    path : str or Path
        A ``.pth`` file holding torchvision's ``resnet50`` state dict (a plain dict of tensors;
        read with ``torch.load(weights_only=True)``, so no code in the file runs).

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    synthgen.core.smpl.ModelFileError
        When the file is not a state dict, or its keys or shapes differ from torchvision's
        ``resnet50`` (the message lists missing, unexpected and mis-shaped parameters).

    Notes
    -----
    Every parameter and batch-norm statistic is copied exactly. ``fc.*`` may be absent (a trunk
    saved without its classifier), and so may ``num_batches_tracked`` (files saved before
    PyTorch 0.4). ``conv1.weight`` in the file has 3 input channels (RGB): they fill input
    channels 0..2 of ``model.conv1``; any further channels keep the model's own random
    initialisation (Kaiming normal, ``fan_out``), so put the input whose statistics are closest
    to ImageNet RGB first. A model with fewer than 3 input channels takes the first ones.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such ImageNet weights file")
    try:
        state = load_weights_only(path)
    except TorchFileError as exc:
        raise ModelFileError(path, exc.detail) from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelFileError(path, "expected a dict of tensors (torchvision resnet50 state dict)")

    own = model.state_dict()
    optional = {k for k in own if k.startswith("fc.") or k.endswith("num_batches_tracked")}
    missing = sorted(set(own) - set(state) - optional)
    unexpected = sorted(set(state) - set(own))
    mis_shaped = []
    for key in sorted(set(own) & set(state)):
        expected = own[key].shape
        if key == "conv1.weight":
            expected = torch.Size((expected[0], 3, *expected[2:]))
        if state[key].shape != expected:
            mis_shaped.append(f"{key}: file {tuple(state[key].shape)}, expected {tuple(expected)}")
    if missing or unexpected or mis_shaped:
        problems = []
        if missing:
            problems.append(f"missing {len(missing)} (e.g. {', '.join(missing[:5])})")
        if unexpected:
            problems.append(f"unexpected {len(unexpected)} (e.g. {', '.join(unexpected[:5])})")
        if mis_shaped:
            problems.append(f"wrong shape: {'; '.join(mis_shaped[:5])}")
        raise ModelFileError(path, f"not a torchvision resnet50 state dict: {' | '.join(problems)}")

    with torch.no_grad():
        for key, value in state.items():
            if key == "conv1.weight":
                channels = min(3, model.in_channels)
                own[key][:, :channels].copy_(value[:, :channels])
            else:
                own[key].copy_(value)
