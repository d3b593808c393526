"""Building blocks of FlowNet / FlowNet 2.0 in plain PyTorch (no CUDA extensions).

Each function reproduces one piece of NVIDIA's ``flownet2-pytorch`` (``networks/submodules.py``
and the CUDA packages ``correlation_package``, ``resample2d_package``, ``channelnorm_package``)
with the same parameter layout and the same arithmetic, so its published checkpoints load and
compute what they computed there, on CPU and GPU alike.

All tensors are ``(B, C, H, W)``; flows are ``(B, 2, H, W)`` in pixels of the tensor they act
on, x (columns) then y (rows).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: Negative slope of every LeakyReLU in FlowNet.
LEAKY_SLOPE = 0.1


def conv(in_planes: int, out_planes: int, *, kernel_size: int = 3,
         stride: int = 1) -> nn.Sequential:
    """Convolution + LeakyReLU(0.1), "same" padding; parameters ``0.weight``, ``0.bias``.

    ``submodules.conv`` with ``batchNorm=False`` (every published checkpoint).
    """
    return nn.Sequential(
        nn.Conv2d(in_planes, out_planes, kernel_size, stride=stride,
                  padding=(kernel_size - 1) // 2),
        nn.LeakyReLU(LEAKY_SLOPE, inplace=True))


def i_conv(in_planes: int, out_planes: int) -> nn.Sequential:
    """3x3 convolution without activation, inside a Sequential (``submodules.i_conv``)."""
    return nn.Sequential(nn.Conv2d(in_planes, out_planes, 3, stride=1, padding=1))


def deconv(in_planes: int, out_planes: int) -> nn.Sequential:
    """x2 transposed convolution (kernel 4, stride 2, padding 1) + LeakyReLU(0.1)."""
    return nn.Sequential(nn.ConvTranspose2d(in_planes, out_planes, 4, stride=2, padding=1),
                         nn.LeakyReLU(LEAKY_SLOPE, inplace=True))


def predict_flow(in_planes: int) -> nn.Conv2d:
    """3x3 convolution to the 2 flow channels (``submodules.predict_flow``)."""
    return nn.Conv2d(in_planes, 2, 3, stride=1, padding=1)


def upsample_flow(*, bias: bool) -> nn.ConvTranspose2d:
    """Learned x2 upsampling of a 2-channel flow (``upsampled_flowN_to_M``)."""
    return nn.ConvTranspose2d(2, 2, 4, 2, 1, bias=bias)


def correlation(features0: torch.Tensor, features1: torch.Tensor, *, max_displacement: int = 20,
                stride: int = 2) -> torch.Tensor:
    """FlowNetC's correlation layer (kernel 1, stride1 1), in float32.

    Output channel ``(j + r) * (2r + 1) + (i + r)`` for ``r = max_displacement // stride`` holds
    ``mean_c features0[c, y, x] * features1[c, y + j*stride, x + i*stride]`` with zeros outside
    ``features1`` (``pad_size = max_displacement``): j indexes the vertical displacement, i the
    horizontal one, as in ``correlation_cuda_kernel.cu``.

    Parameters
    ----------
    features0, features1 : Tensor, shape (B, C, H, W)

    Returns
    -------
    Tensor, shape (B, (2r + 1)**2, H, W), float32
    """
    radius = max_displacement // stride
    size = 2 * radius + 1
    channels, height, width = features0.shape[1:]
    with torch.autocast(features0.device.type, enabled=False):
        rows0 = features0.float().permute(0, 2, 3, 1)                      # (B, H, W, C)
        padded = F.pad(features1.float(), (max_displacement,) * 4)
        # Column x + i*stride of the padded row, for every x and horizontal displacement i.
        columns = (torch.arange(width, device=padded.device)[:, None]
                   + stride * torch.arange(size, device=padded.device)[None, :])
        columns = columns.expand(features0.shape[0], height, width, size)
        out = []
        for j in range(size):
            band = padded[:, :, j * stride: j * stride + height].permute(0, 2, 1, 3)
            # Every x against every padded column (one batched matmul), then the wanted ones.
            products = torch.matmul(rows0, band)                           # (B, H, W, W + 2m)
            out.append(torch.gather(products, 3, columns).permute(0, 3, 1, 2))
        return torch.cat(out, dim=1) / channels


def resample2d(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Backward warp: ``out[y, x] = image[y + flow_y, x + flow_x]``, bilinear, in float32.

    Coordinates outside the image read the nearest border pixel, exactly as the clamped
    neighbour indices of ``resample2d_kernel.cu`` (kernel_size 1) do.

    Parameters
    ----------
    image : Tensor, shape (B, C, H, W)
    flow : Tensor, shape (B, 2, H, W)
        Pixels, x then y.

    Returns
    -------
    Tensor, shape (B, C, H, W), float32
    """
    height, width = image.shape[2:]
    with torch.autocast(image.device.type, enabled=False):
        flow = flow.float()
        ys = torch.arange(height, device=flow.device, dtype=torch.float32).view(1, height, 1)
        xs = torch.arange(width, device=flow.device, dtype=torch.float32).view(1, 1, width)
        # align_corners=True maps -1/+1 to the centres of the first/last pixels.
        gx = (xs + flow[:, 0]) * (2 / max(width - 1, 1)) - 1
        gy = (ys + flow[:, 1]) * (2 / max(height - 1, 1)) - 1
        grid = torch.stack((gx, gy), dim=-1)
        return F.grid_sample(image.float(), grid, mode="bilinear", padding_mode="border",
                             align_corners=True)


def channel_norm(x: torch.Tensor) -> torch.Tensor:
    """L2 norm over channels (``ChannelNorm``, norm_deg 2): (B, C, H, W) -> (B, 1, H, W)."""
    return torch.linalg.vector_norm(x, dim=1, keepdim=True)


def upsample(x: torch.Tensor, *, mode: str) -> torch.Tensor:
    """x4 upsampling as ``nn.Upsample(scale_factor=4, mode=mode)`` computes in PyTorch >= 0.4.

    ``"bilinear"`` uses ``align_corners=False`` (the default the published code runs with today).
    """
    if mode == "nearest":
        return F.interpolate(x, scale_factor=4, mode="nearest")
    return F.interpolate(x, scale_factor=4, mode=mode, align_corners=False)
