"""FlowNet (Dosovitskiy et al. 2015) and FlowNet 2.0 (Ilg et al. 2017) in plain PyTorch.

Module and parameter names, layer shapes, input normalisation and output scaling follow NVIDIA's
``flownet2-pytorch`` (``models.py``, ``networks/FlowNet{S,C,SD,Fusion}.py``), so its published
checkpoints (``FlowNet2_checkpoint.pth.tar``, ``FlowNet2-S_...``, ...) load with exact names and
shapes (:mod:`.flownet_checkpoint`). Only inference is implemented (the networks stay frozen) and
only ``batchNorm=False``, the setting of every published checkpoint.

Sub-networks (:class:`FlowNetS`, :class:`FlowNetC`, :class:`FlowNetSD`, :class:`FlowNetFusion`)
take normalised image stacks and return their finest prediction ``flow2`` at 1/4 resolution, in
units of ``1 / DIV_FLOW`` pixels (Fusion: full resolution, pixels). The complete models
(:data:`MODELS`) take ``(B, 3, 2, H, W)`` RGB in [0, 255] (H, W multiples of 64) and return
``(B, 2, H, W)`` flow in pixels, x then y, from image 0 to image 1: exactly the published
``forward`` in ``eval()`` mode.
"""

from __future__ import annotations

import torch
from torch import nn

from synthgen.steps.crop_flow.flownet_layers import (channel_norm, conv, correlation, deconv,
                                                     i_conv, predict_flow, resample2d, upsample,
                                                     upsample_flow)

#: Networks are trained on ground truth flow divided by this (``div_flow``).
DIV_FLOW = 20.0
#: Input intensities are divided by this after mean subtraction (``args.rgb_max``).
RGB_MAX = 255.0
#: Input height and width must be multiples of this (six stride-2 stages).
SIZE_MULTIPLE = 64


def normalise(inputs: torch.Tensor) -> torch.Tensor:
    """``(B, 3, 2, H, W)`` RGB in [0, 255] -> ``(B, 6, H, W)``: image 0 then image 1.

    Subtracts the per-example, per-channel mean over both images and divides by ``RGB_MAX``.
    """
    mean = inputs.mean(dim=(2, 3, 4), keepdim=True)
    x = (inputs - mean) / RGB_MAX
    return torch.cat((x[:, :, 0], x[:, :, 1]), dim=1)


class _Decoder(nn.Module):
    """The refinement half shared by FlowNetS and FlowNetC (levels 6 to 2)."""

    def _init_decoder(self, *, flow_bias: bool) -> None:
        self.deconv5 = deconv(1024, 512)
        self.deconv4 = deconv(1026, 256)
        self.deconv3 = deconv(770, 128)
        self.deconv2 = deconv(386, 64)
        self.predict_flow6 = predict_flow(1024)
        self.predict_flow5 = predict_flow(1026)
        self.predict_flow4 = predict_flow(770)
        self.predict_flow3 = predict_flow(386)
        self.predict_flow2 = predict_flow(194)
        self.upsampled_flow6_to_5 = upsample_flow(bias=flow_bias)
        self.upsampled_flow5_to_4 = upsample_flow(bias=flow_bias)
        self.upsampled_flow4_to_3 = upsample_flow(bias=flow_bias)
        self.upsampled_flow3_to_2 = upsample_flow(bias=flow_bias)

    def _decode(self, conv2, conv3, conv4, conv5, conv6) -> torch.Tensor:
        flow6 = self.predict_flow6(conv6)
        concat5 = torch.cat((conv5, self.deconv5(conv6), self.upsampled_flow6_to_5(flow6)), 1)
        flow5 = self.predict_flow5(concat5)
        concat4 = torch.cat((conv4, self.deconv4(concat5), self.upsampled_flow5_to_4(flow5)), 1)
        flow4 = self.predict_flow4(concat4)
        concat3 = torch.cat((conv3, self.deconv3(concat4), self.upsampled_flow4_to_3(flow4)), 1)
        flow3 = self.predict_flow3(concat3)
        concat2 = torch.cat((conv2, self.deconv2(concat3), self.upsampled_flow3_to_2(flow3)), 1)
        return self.predict_flow2(concat2)


class FlowNetS(_Decoder):
    """FlowNetSimple: the image stack through one encoder-decoder (``networks/FlowNetS.py``).

    Parameters
    ----------
    input_channels : int
        12 inside FlowNet2 (images, warped image, flow, brightness error), 6 for FlowNet2-S.
    """

    def __init__(self, input_channels: int = 12):
        super().__init__()
        self.conv1 = conv(input_channels, 64, kernel_size=7, stride=2)
        self.conv2 = conv(64, 128, kernel_size=5, stride=2)
        self.conv3 = conv(128, 256, kernel_size=5, stride=2)
        self.conv3_1 = conv(256, 256)
        self.conv4 = conv(256, 512, stride=2)
        self.conv4_1 = conv(512, 512)
        self.conv5 = conv(512, 512, stride=2)
        self.conv5_1 = conv(512, 512)
        self.conv6 = conv(512, 1024, stride=2)
        self.conv6_1 = conv(1024, 1024)
        self._init_decoder(flow_bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, input_channels, H, W) -> flow2 (B, 2, H/4, W/4) in 1/DIV_FLOW pixels."""
        out_conv2 = self.conv2(self.conv1(x))
        out_conv3 = self.conv3_1(self.conv3(out_conv2))
        out_conv4 = self.conv4_1(self.conv4(out_conv3))
        out_conv5 = self.conv5_1(self.conv5(out_conv4))
        out_conv6 = self.conv6_1(self.conv6(out_conv5))
        return self._decode(out_conv2, out_conv3, out_conv4, out_conv5, out_conv6)


class FlowNetC(_Decoder):
    """FlowNetCorr: a siamese encoder, correlation, then the decoder (``networks/FlowNetC.py``)."""

    def __init__(self):
        super().__init__()
        self.conv1 = conv(3, 64, kernel_size=7, stride=2)
        self.conv2 = conv(64, 128, kernel_size=5, stride=2)
        self.conv3 = conv(128, 256, kernel_size=5, stride=2)
        self.conv_redir = conv(256, 32, kernel_size=1, stride=1)
        self.conv3_1 = conv(473, 256)
        self.conv4 = conv(256, 512, stride=2)
        self.conv4_1 = conv(512, 512)
        self.conv5 = conv(512, 512, stride=2)
        self.conv5_1 = conv(512, 512)
        self.conv6 = conv(512, 1024, stride=2)
        self.conv6_1 = conv(1024, 1024)
        self._init_decoder(flow_bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 6, H, W) normalised images -> flow2 (B, 2, H/4, W/4) in 1/DIV_FLOW pixels."""
        out_conv2a = self.conv2(self.conv1(x[:, :3]))
        out_conv3a = self.conv3(out_conv2a)
        out_conv3b = self.conv3(self.conv2(self.conv1(x[:, 3:])))
        out_corr = nn.functional.leaky_relu(correlation(out_conv3a, out_conv3b), 0.1)
        in_conv3_1 = torch.cat((self.conv_redir(out_conv3a), out_corr.to(out_conv3a.dtype)), 1)
        out_conv3_1 = self.conv3_1(in_conv3_1)
        out_conv4 = self.conv4_1(self.conv4(out_conv3_1))
        out_conv5 = self.conv5_1(self.conv5(out_conv4))
        out_conv6 = self.conv6_1(self.conv6(out_conv5))
        return self._decode(out_conv2a, out_conv3_1, out_conv4, out_conv5, out_conv6)


class FlowNetSD(nn.Module):
    """FlowNet2's small-displacement network (``networks/FlowNetSD.py``)."""

    def __init__(self):
        super().__init__()
        self.conv0 = conv(6, 64)
        self.conv1 = conv(64, 64, stride=2)
        self.conv1_1 = conv(64, 128)
        self.conv2 = conv(128, 128, stride=2)
        self.conv2_1 = conv(128, 128)
        self.conv3 = conv(128, 256, stride=2)
        self.conv3_1 = conv(256, 256)
        self.conv4 = conv(256, 512, stride=2)
        self.conv4_1 = conv(512, 512)
        self.conv5 = conv(512, 512, stride=2)
        self.conv5_1 = conv(512, 512)
        self.conv6 = conv(512, 1024, stride=2)
        self.conv6_1 = conv(1024, 1024)
        self.deconv5 = deconv(1024, 512)
        self.deconv4 = deconv(1026, 256)
        self.deconv3 = deconv(770, 128)
        self.deconv2 = deconv(386, 64)
        self.inter_conv5 = i_conv(1026, 512)
        self.inter_conv4 = i_conv(770, 256)
        self.inter_conv3 = i_conv(386, 128)
        self.inter_conv2 = i_conv(194, 64)
        self.predict_flow6 = predict_flow(1024)
        self.predict_flow5 = predict_flow(512)
        self.predict_flow4 = predict_flow(256)
        self.predict_flow3 = predict_flow(128)
        self.predict_flow2 = predict_flow(64)
        self.upsampled_flow6_to_5 = upsample_flow(bias=True)
        self.upsampled_flow5_to_4 = upsample_flow(bias=True)
        self.upsampled_flow4_to_3 = upsample_flow(bias=True)
        self.upsampled_flow3_to_2 = upsample_flow(bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 6, H, W) normalised images -> flow2 (B, 2, H/4, W/4) in 1/DIV_FLOW pixels."""
        out_conv1 = self.conv1_1(self.conv1(self.conv0(x)))
        out_conv2 = self.conv2_1(self.conv2(out_conv1))
        out_conv3 = self.conv3_1(self.conv3(out_conv2))
        out_conv4 = self.conv4_1(self.conv4(out_conv3))
        out_conv5 = self.conv5_1(self.conv5(out_conv4))
        out_conv6 = self.conv6_1(self.conv6(out_conv5))
        flow6 = self.predict_flow6(out_conv6)
        concat5 = torch.cat((out_conv5, self.deconv5(out_conv6),
                             self.upsampled_flow6_to_5(flow6)), 1)
        flow5 = self.predict_flow5(self.inter_conv5(concat5))
        concat4 = torch.cat((out_conv4, self.deconv4(concat5), self.upsampled_flow5_to_4(flow5)), 1)
        flow4 = self.predict_flow4(self.inter_conv4(concat4))
        concat3 = torch.cat((out_conv3, self.deconv3(concat4), self.upsampled_flow4_to_3(flow4)), 1)
        flow3 = self.predict_flow3(self.inter_conv3(concat3))
        concat2 = torch.cat((out_conv2, self.deconv2(concat3), self.upsampled_flow3_to_2(flow3)), 1)
        return self.predict_flow2(self.inter_conv2(concat2))


class FlowNetFusion(nn.Module):
    """FlowNet2's fusion network (``networks/FlowNetFusion.py``): full-resolution output."""

    def __init__(self):
        super().__init__()
        self.conv0 = conv(11, 64)
        self.conv1 = conv(64, 64, stride=2)
        self.conv1_1 = conv(64, 128)
        self.conv2 = conv(128, 128, stride=2)
        self.conv2_1 = conv(128, 128)
        self.deconv1 = deconv(128, 32)
        self.deconv0 = deconv(162, 16)
        self.inter_conv1 = i_conv(162, 32)
        self.inter_conv0 = i_conv(82, 16)
        self.predict_flow2 = predict_flow(128)
        self.predict_flow1 = predict_flow(32)
        self.predict_flow0 = predict_flow(16)
        self.upsampled_flow2_to_1 = upsample_flow(bias=True)
        self.upsampled_flow1_to_0 = upsample_flow(bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 11, H, W) -> flow0 (B, 2, H, W) in pixels."""
        out_conv0 = self.conv0(x)
        out_conv1 = self.conv1_1(self.conv1(out_conv0))
        out_conv2 = self.conv2_1(self.conv2(out_conv1))
        flow2 = self.predict_flow2(out_conv2)
        concat1 = torch.cat((out_conv1, self.deconv1(out_conv2),
                             self.upsampled_flow2_to_1(flow2)), 1)
        flow1 = self.predict_flow1(self.inter_conv1(concat1))
        concat0 = torch.cat((out_conv0, self.deconv0(concat1), self.upsampled_flow1_to_0(flow1)), 1)
        return self.predict_flow0(self.inter_conv0(concat0))


def _refinement_input(x: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """FlowNet2's 12-channel stack: images, image 1 warped to image 0, flow / 20, error norm."""
    warped = resample2d(x[:, 3:], flow).to(x.dtype)
    error = channel_norm(x[:, :3] - warped)
    return torch.cat((x, warped, flow / DIV_FLOW, error), dim=1)


class FlowNet2S(FlowNetS):
    """FlowNet2-S (``models.FlowNet2S``): FlowNetS on the 6-channel image pair."""

    def __init__(self):
        super().__init__(input_channels=6)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """(B, 3, 2, H, W) RGB 0..255 -> (B, 2, H, W) flow in pixels."""
        return upsample(super().forward(normalise(inputs)) * DIV_FLOW, mode="bilinear")


class FlowNet2C(FlowNetC):
    """FlowNet2-C (``models.FlowNet2C``)."""

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """(B, 3, 2, H, W) RGB 0..255 -> (B, 2, H, W) flow in pixels."""
        return upsample(super().forward(normalise(inputs)) * DIV_FLOW, mode="bilinear")


class FlowNet2SD(FlowNetSD):
    """FlowNet2-SD (``models.FlowNet2SD``), the small-displacement network alone."""

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """(B, 3, 2, H, W) RGB 0..255 -> (B, 2, H, W) flow in pixels."""
        return upsample(super().forward(normalise(inputs)) * DIV_FLOW, mode="bilinear")


class FlowNet2CS(nn.Module):
    """FlowNet2-CS (``models.FlowNet2CS``): FlowNetC then one FlowNetS refinement."""

    def __init__(self):
        super().__init__()
        self.flownetc = FlowNetC()
        self.flownets_1 = FlowNetS()

    def _cs(self, x: torch.Tensor) -> torch.Tensor:
        flow_c = upsample(self.flownetc(x) * DIV_FLOW, mode="bilinear")
        return upsample(self.flownets_1(_refinement_input(x, flow_c)) * DIV_FLOW, mode="bilinear")

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """(B, 3, 2, H, W) RGB 0..255 -> (B, 2, H, W) flow in pixels."""
        return self._cs(normalise(inputs))


class FlowNet2CSS(FlowNet2CS):
    """FlowNet2-CSS (``models.FlowNet2CSS``; also the ``-ft-sd`` weights)."""

    def __init__(self):
        super().__init__()
        self.flownets_2 = FlowNetS()

    def _css(self, x: torch.Tensor) -> torch.Tensor:
        # The published code upsamples this last stage with 'nearest', the earlier ones bilinearly.
        return upsample(self.flownets_2(_refinement_input(x, self._cs(x))) * DIV_FLOW,
                        mode="nearest")

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """(B, 3, 2, H, W) RGB 0..255 -> (B, 2, H, W) flow in pixels."""
        return self._css(normalise(inputs))


class FlowNet2(FlowNet2CSS):
    """FlowNet 2.0 (``models.FlowNet2``): FlowNet2-CSS and FlowNet2-SD merged by FlowNetFusion."""

    def __init__(self):
        super().__init__()
        self.flownets_d = FlowNetSD()
        self.flownetfusion = FlowNetFusion()

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """(B, 3, 2, H, W) RGB 0..255 -> (B, 2, H, W) flow in pixels."""
        x = normalise(inputs)
        image0, image1 = x[:, :3], x[:, 3:]
        flow_css = self._css(x)
        # Divided, not multiplied, by DIV_FLOW: the published code does so to mimic the Caffe
        # original, and the fusion weights were trained with it (flownet2-pytorch issue #37).
        flow_sd = upsample(self.flownets_d(x) / DIV_FLOW, mode="nearest")
        error_css = channel_norm(image0 - resample2d(image1, flow_css).to(x.dtype))
        error_sd = channel_norm(image0 - resample2d(image1, flow_sd).to(x.dtype))
        fusion_input = torch.cat((image0, flow_sd.to(x.dtype), flow_css.to(x.dtype),
                                  channel_norm(flow_sd), channel_norm(flow_css), error_sd,
                                  error_css), dim=1)
        return self.flownetfusion(fusion_input)


#: Backend name -> model class; the names of NVIDIA's classes (checkpoint ``FlowNet2-S_...`` is
#: ``flownet2s``, ``FlowNet2_...`` is ``flownet2``). ``flownet2s`` is the FlowNetS architecture.
MODELS: dict[str, type[nn.Module]] = {
    "flownet2s": FlowNet2S,
    "flownet2c": FlowNet2C,
    "flownet2sd": FlowNet2SD,
    "flownet2cs": FlowNet2CS,
    "flownet2css": FlowNet2CSS,
    "flownet2": FlowNet2,
}
