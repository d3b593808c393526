"""FlowNet in plain PyTorch: parameter layout of the published checkpoints, layers, loader."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from synthgen.core.errors import CorruptFileError, EmptyInputError, MissingFileError, SourceError
from synthgen.steps.crop_flow import get_backend
from synthgen.steps.crop_flow.flownet import (MODELS, FlowNetC, FlowNetFusion, FlowNetS,
                                              FlowNetSD, normalise)
from synthgen.steps.crop_flow.flownet_backend import build_model, init_random_weights
from synthgen.steps.crop_flow.flownet_checkpoint import (CheckpointMismatchError,
                                                         load_checkpoint, read_state_dict)
from synthgen.steps.crop_flow.flownet_layers import channel_norm, correlation, resample2d


# --- The parameter layout of NVIDIA/flownet2-pytorch, written out from its source ---------------
# (networks/FlowNetS.py, FlowNetC.py, FlowNetSD.py, FlowNetFusion.py, models.py; batchNorm=False):
# conv/deconv/i_conv are nn.Sequential (names "<layer>.0.weight"), predict_flow is a bare Conv2d.

def _conv(name, cin, cout, k=3, sequential=True, bias=True):
    key = f"{name}.0" if sequential else name
    spec = {f"{key}.weight": (cout, cin, k, k)}
    if bias:
        spec[f"{key}.bias"] = (cout,)
    return spec


def _deconv(name, cin, cout):
    return {f"{name}.0.weight": (cin, cout, 4, 4), f"{name}.0.bias": (cout,)}


def _upflow(name, bias):
    return {f"{name}.weight": (2, 2, 4, 4), **({f"{name}.bias": (2,)} if bias else {})}


def _decoder(predict_in, flow_bias):
    spec = {}
    for level, (cin, cout) in zip((5, 4, 3, 2), ((1024, 512), (1026, 256), (770, 128), (386, 64))):
        spec |= _deconv(f"deconv{level}", cin, cout)
    for level, cin in zip((6, 5, 4, 3, 2), predict_in):
        spec |= _conv(f"predict_flow{level}", cin, 2, sequential=False)
    for a, b in ((6, 5), (5, 4), (4, 3), (3, 2)):
        spec |= _upflow(f"upsampled_flow{a}_to_{b}", flow_bias)
    return spec


def _encoder_tail():
    return (_conv("conv4", 256, 512) | _conv("conv4_1", 512, 512) | _conv("conv5", 512, 512)
            | _conv("conv5_1", 512, 512) | _conv("conv6", 512, 1024) | _conv("conv6_1", 1024, 1024))


def nvidia_flownets(input_channels):
    return (_conv("conv1", input_channels, 64, 7) | _conv("conv2", 64, 128, 5)
            | _conv("conv3", 128, 256, 5) | _conv("conv3_1", 256, 256) | _encoder_tail()
            | _decoder((1024, 1026, 770, 386, 194), flow_bias=False))


def nvidia_flownetc():
    return (_conv("conv1", 3, 64, 7) | _conv("conv2", 64, 128, 5) | _conv("conv3", 128, 256, 5)
            | _conv("conv_redir", 256, 32, 1) | _conv("conv3_1", 473, 256) | _encoder_tail()
            | _decoder((1024, 1026, 770, 386, 194), flow_bias=True))


def nvidia_flownetsd():
    spec = (_conv("conv0", 6, 64) | _conv("conv1", 64, 64) | _conv("conv1_1", 64, 128)
            | _conv("conv2", 128, 128) | _conv("conv2_1", 128, 128) | _conv("conv3", 128, 256)
            | _conv("conv3_1", 256, 256) | _encoder_tail()
            | _decoder((1024, 512, 256, 128, 64), flow_bias=True))
    for level, (cin, cout) in zip((5, 4, 3, 2), ((1026, 512), (770, 256), (386, 128), (194, 64))):
        spec |= _conv(f"inter_conv{level}", cin, cout)
    return spec


def nvidia_fusion():
    return (_conv("conv0", 11, 64) | _conv("conv1", 64, 64) | _conv("conv1_1", 64, 128)
            | _conv("conv2", 128, 128) | _conv("conv2_1", 128, 128) | _deconv("deconv1", 128, 32)
            | _deconv("deconv0", 162, 16) | _conv("inter_conv1", 162, 32)
            | _conv("inter_conv0", 82, 16) | _conv("predict_flow2", 128, 2, sequential=False)
            | _conv("predict_flow1", 32, 2, sequential=False)
            | _conv("predict_flow0", 16, 2, sequential=False)
            | _upflow("upsampled_flow2_to_1", True) | _upflow("upsampled_flow1_to_0", True))


def _prefixed(prefix, spec):
    return {f"{prefix}.{k}": v for k, v in spec.items()}


NVIDIA_LAYOUT = {
    "flownet2s": nvidia_flownets(6),
    "flownet2c": nvidia_flownetc(),
    "flownet2sd": nvidia_flownetsd(),
    "flownet2cs": _prefixed("flownetc", nvidia_flownetc()) | _prefixed("flownets_1",
                                                                         nvidia_flownets(12)),
}
NVIDIA_LAYOUT["flownet2css"] = NVIDIA_LAYOUT["flownet2cs"] | _prefixed("flownets_2",
                                                                       nvidia_flownets(12))
NVIDIA_LAYOUT["flownet2"] = (NVIDIA_LAYOUT["flownet2css"]
                             | _prefixed("flownets_d", nvidia_flownetsd())
                             | _prefixed("flownetfusion", nvidia_fusion()))


def _meta_model(name):
    with torch.device("meta"):
        return MODELS[name]()


def _save_checkpoint(path: Path, spec: dict, seed: int = 0) -> dict:
    """An NVIDIA-style checkpoint (as its convert.py writes) with random values for ``spec``."""
    gen = torch.Generator().manual_seed(seed)
    state = {k: torch.randn(shape, generator=gen) for k, shape in spec.items()}
    torch.save({"epoch": 0, "state_dict": state, "best_EPE": 1e10}, path)
    return state


# --- Layout ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(MODELS))
def test_parameter_names_and_shapes_are_flownet2_pytorchs(name):
    layout = {k: tuple(v.shape) for k, v in _meta_model(name).state_dict().items()}
    assert layout == NVIDIA_LAYOUT[name]


def test_parameter_counts_match_the_published_ones():
    # The counts written in flownet2-pytorch's models.py / networks/*.py.
    def count(module):
        return sum(p.numel() for p in module.parameters())
    with torch.device("meta"):
        assert count(FlowNetC()) == 39_175_298
        assert count(FlowNetSD()) == 45_371_666
        assert count(FlowNetFusion()) == 581_226
    assert count(_meta_model("flownet2")) == 162_518_834


# --- Layers ------------------------------------------------------------------------------------

def _reference_correlation(f0, f1, max_disp, stride):
    """Direct transcription of correlation_cuda_kernel.cu (kernel_size 1, stride1 1)."""
    b, c, h, w = f0.shape
    radius = max_disp // stride
    size = 2 * radius + 1
    padded = np.zeros((b, c, h + 2 * max_disp, w + 2 * max_disp), np.float64)
    padded[:, :, max_disp:max_disp + h, max_disp:max_disp + w] = f1
    out = np.zeros((b, size * size, h, w))
    for tj in range(-radius, radius + 1):
        for ti in range(-radius, radius + 1):
            tc = (tj + radius) * size + (ti + radius)
            y2 = max_disp + tj * stride
            x2 = max_disp + ti * stride
            out[:, tc] = (f0 * padded[:, :, y2:y2 + h, x2:x2 + w]).sum(1) / c
    return out


def test_correlation_matches_the_cuda_kernel():
    rng = np.random.default_rng(0)
    f0 = rng.standard_normal((2, 5, 9, 11)).astype(np.float32)
    f1 = rng.standard_normal((2, 5, 9, 11)).astype(np.float32)
    got = correlation(torch.from_numpy(f0), torch.from_numpy(f1), max_displacement=6, stride=2)
    assert got.shape == (2, 49, 9, 11)
    np.testing.assert_allclose(got.numpy(), _reference_correlation(f0, f1, 6, 2), atol=1e-5)


def test_correlation_peaks_at_the_true_displacement():
    rng = np.random.default_rng(1)
    f1 = torch.from_numpy(rng.standard_normal((1, 16, 32, 32)).astype(np.float32))
    f0 = torch.roll(f1, shifts=(2, -4), dims=(2, 3))    # f1 at (y + 2*-1, x + 2*2) = f0 at (y, x)
    corr = correlation(f0, f1)                            # FlowNetC's: 441 channels
    assert corr.shape == (1, 441, 32, 32)
    best = corr[0, :, 12:20, 12:20].mean((1, 2)).argmax().item()
    j, i = divmod(best, 21)
    assert (i - 10, j - 10) == (2, -1)


def _reference_resample(image, flow):
    """Direct transcription of resample2d_kernel.cu (kernel_size 1)."""
    b, c, h, w = image.shape
    out = np.zeros_like(image, dtype=np.float64)
    for n in range(b):
        for y in range(h):
            for x in range(w):
                xf, yf = x + flow[n, 0, y, x], y + flow[n, 1, y, x]
                alpha, beta = xf - np.floor(xf), yf - np.floor(yf)
                xl = min(max(int(np.floor(xf)), 0), w - 1)
                xr = min(max(int(np.floor(xf)) + 1, 0), w - 1)
                yt = min(max(int(np.floor(yf)), 0), h - 1)
                yb = min(max(int(np.floor(yf)) + 1, 0), h - 1)
                out[n, :, y, x] = ((1 - alpha) * (1 - beta) * image[n, :, yt, xl]
                                   + alpha * (1 - beta) * image[n, :, yt, xr]
                                   + (1 - alpha) * beta * image[n, :, yb, xl]
                                   + alpha * beta * image[n, :, yb, xr])
    return out


def test_resample2d_matches_the_cuda_kernel_inside_and_outside_the_image():
    rng = np.random.default_rng(2)
    image = rng.standard_normal((2, 3, 7, 9)).astype(np.float32)
    flow = rng.uniform(-12, 12, (2, 2, 7, 9)).astype(np.float32)     # many samples off the image
    got = resample2d(torch.from_numpy(image), torch.from_numpy(flow)).numpy()
    np.testing.assert_allclose(got, _reference_resample(image, flow), atol=1e-5)


def test_channel_norm_is_the_l2_norm_over_channels():
    x = torch.tensor([[[[3.0]], [[4.0]]]])
    assert channel_norm(x).shape == (1, 1, 1, 1)
    assert channel_norm(x).item() == pytest.approx(5.0)


def test_normalise_subtracts_the_mean_of_both_images_per_channel():
    inputs = torch.rand(2, 3, 2, 8, 8) * 255
    x = normalise(inputs)
    assert x.shape == (2, 6, 8, 8)
    pooled = torch.stack((x[:, :3], x[:, 3:]), 2)
    assert torch.allclose(pooled.mean((2, 3, 4)), torch.zeros(2, 3), atol=1e-5)
    assert torch.allclose(x[:, :3] * 255 + inputs.mean((2, 3, 4))[..., None, None],
                          inputs[:, :, 0], atol=1e-3)


# --- Sub-networks, one at a time, small inputs -------------------------------------------------

@pytest.mark.parametrize("module, channels, out_size", [
    (lambda: FlowNetS(12), 12, 16), (FlowNetC, 6, 16), (FlowNetSD, 6, 16), (FlowNetFusion, 11, 64)])
def test_sub_networks_predict_flow_at_their_resolution(module, channels, out_size):
    torch.manual_seed(0)
    net = module().eval()
    with torch.inference_mode():
        out = net(torch.randn(2, channels, 64, 64))
    assert out.shape == (2, 2, out_size, out_size)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", ["flownet2s", "flownet2c", "flownet2sd", "flownet2cs",
                                  pytest.param("flownet2css", marks=pytest.mark.slow)])
def test_every_model_runs_on_a_small_pair(name):   # flownet2: test_flownet2_gives_224x224_flow
    model = build_model(name, rng=np.random.default_rng(0))
    with torch.inference_mode():
        out = model(torch.rand(1, 3, 2, 64, 128) * 255)
    assert out.shape == (1, 2, 64, 128)
    assert torch.isfinite(out).all()


# --- Checkpoints -------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["flownet2s", "flownet2c", "flownet2cs"])
def test_published_style_checkpoint_loads_exactly(tmp_path, name):
    path = tmp_path / f"{name}_checkpoint.pth.tar"
    saved = _save_checkpoint(path, NVIDIA_LAYOUT[name])
    model = build_model(name, checkpoint=path)
    loaded = model.state_dict()
    assert loaded.keys() == saved.keys()
    for key, value in saved.items():
        assert torch.equal(loaded[key], value), key
    assert not model.training and not any(p.requires_grad for p in model.parameters())


def test_dataparallel_prefix_and_bare_state_dict_are_accepted(tmp_path):
    spec = NVIDIA_LAYOUT["flownet2s"]
    state = {f"module.{k}": torch.zeros(v) for k, v in spec.items()}
    torch.save({"state_dict": state}, tmp_path / "parallel.pth")
    torch.save({k: torch.ones(v) for k, v in spec.items()}, tmp_path / "bare.pth")
    assert read_state_dict(tmp_path / "parallel.pth").keys() == spec.keys()
    model = build_model("flownet2s", checkpoint=tmp_path / "bare.pth")
    assert all(torch.all(p == 1) for p in model.parameters())


@pytest.mark.slow
def test_flownet2_gives_224x224_flow():
    # Random weights: the full cascade's names/shapes are checked above and the loader is the
    # same for every model; a real 650 MB checkpoint file would only slow the suite.
    backend = get_backend("flownet2", rng=np.random.default_rng(0), batch_size=1)
    pairs = np.random.default_rng(0).integers(0, 256, (1, 2, 224, 224, 3), dtype=np.uint8)
    flow = backend.flow(pairs)
    assert flow.shape == (1, 224, 224, 2) and flow.dtype == np.float32
    assert np.isfinite(flow).all()


def test_missing_tensor_is_named(tmp_path):
    spec = dict(NVIDIA_LAYOUT["flownet2s"])
    del spec["predict_flow2.bias"]
    _save_checkpoint(tmp_path / "c.pth", spec)
    with pytest.raises(CheckpointMismatchError, match=r"missing: predict_flow2\.bias") as info:
        build_model("flownet2s", checkpoint=tmp_path / "c.pth")
    assert str(tmp_path / "c.pth") in str(info.value)


def test_unexpected_and_wrong_shape_tensors_are_named(tmp_path):
    spec = dict(NVIDIA_LAYOUT["flownet2s"])
    spec["conv1.0.weight"] = (64, 12, 7, 7)                 # FlowNetS of FlowNet2, not FlowNet2-S
    spec["upsampled_flow6_to_5.bias"] = (2,)                # FlowNetC has it, FlowNetS does not
    _save_checkpoint(tmp_path / "c.pth", spec)
    with pytest.raises(CheckpointMismatchError) as info:
        build_model("flownet2s", checkpoint=tmp_path / "c.pth")
    message = str(info.value)
    assert "unexpected: upsampled_flow6_to_5.bias" in message
    assert "wrong shape: conv1.0.weight (64, 12, 7, 7) (model: (64, 6, 7, 7))" in message
    assert "missing" not in message


def test_checkpoint_of_another_model_lists_the_mismatch(tmp_path):
    _save_checkpoint(tmp_path / "FlowNet2-C_checkpoint.pth.tar", NVIDIA_LAYOUT["flownet2c"])
    with pytest.raises(CheckpointMismatchError, match="FlowNet2CS .*missing: flownetc.conv1.0"):
        build_model("flownet2cs", checkpoint=tmp_path / "FlowNet2-C_checkpoint.pth.tar")


@pytest.mark.parametrize("content, error, match", [
    (None, MissingFileError, "not found"),
    (b"", EmptyInputError, "empty"),
    (b"this is a text file, not a checkpoint\n", CorruptFileError, "not a"),
])
def test_unreadable_files_are_rejected(tmp_path, content, error, match):
    path = tmp_path / "weights.pth.tar"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(error, match=match) as info:
        read_state_dict(path)
    assert isinstance(info.value, SourceError) and info.value.path == str(path)


def test_truncated_checkpoint_is_corrupt(tmp_path):
    path = tmp_path / "c.pth"
    _save_checkpoint(path, NVIDIA_LAYOUT["flownet2s"])
    path.write_bytes(path.read_bytes()[:100_000])
    with pytest.raises(CorruptFileError):
        read_state_dict(path)


@pytest.mark.parametrize("payload, match", [
    ([torch.zeros(2)], "holds a list"),
    (torch.zeros(3), "holds a Tensor"),
    ({"epoch": 0, "best_EPE": 1e10}, "no .state_dict. entry .*best_EPE, epoch"),
    ({"state_dict": {}}, "no parameters"),
    ({"state_dict": {"conv1.0.weight": 3}}, "not tensors: conv1.0.weight"),
])
def test_checkpoints_without_a_state_dict_are_rejected(tmp_path, payload, match):
    torch.save(payload, tmp_path / "c.pth")
    with pytest.raises(CorruptFileError, match=match):
        read_state_dict(tmp_path / "c.pth")


def test_pickled_objects_are_refused_not_run(tmp_path):
    torch.save({"state_dict": {"a": torch.zeros(1)}, "path": Path("/tmp")}, tmp_path / "c.pth")
    with pytest.raises(CorruptFileError, match="weights-only"):
        read_state_dict(tmp_path / "c.pth")


def test_plain_pickle_is_not_a_torch_file(tmp_path):
    (tmp_path / "c.pkl").write_bytes(pickle.dumps({"state_dict": {}}))
    with pytest.raises(CorruptFileError):
        read_state_dict(tmp_path / "c.pkl")


def test_failed_load_leaves_model_untouched(tmp_path):
    model = build_model("flownet2s", rng=np.random.default_rng(0))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    spec = dict(NVIDIA_LAYOUT["flownet2s"])
    spec["conv2.0.bias"] = (3,)
    _save_checkpoint(tmp_path / "c.pth", spec)
    with pytest.raises(CheckpointMismatchError):
        load_checkpoint(model, tmp_path / "c.pth")
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_model_needs_weights_or_rng():
    with pytest.raises(ValueError, match="exactly one"):
        build_model("flownet2s")
    with pytest.raises(ValueError, match="unknown FlowNet model"):
        build_model("flownet3", rng=np.random.default_rng(0))


def test_random_weights_come_from_the_generator():
    def weights(seed):
        net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ConvTranspose2d(8, 2, 4))
        init_random_weights(net, np.random.default_rng(seed))
        return net.state_dict()
    a, b, c = weights(5), weights(5), weights(6)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["0.weight"], c["0.weight"])
    bound = np.sqrt(6 / (3 * 9 + 8 * 9))                      # Xavier-uniform for conv 0
    assert a["0.weight"].abs().max() <= bound and a["0.weight"].abs().max() > 0.8 * bound
    assert 0 <= a["1.bias"].min() and a["1.bias"].max() < 1
