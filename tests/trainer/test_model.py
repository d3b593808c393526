"""Motion HMR network: ResNet-50 (torchvision names), the light CNN, ImageNet loading, regressor,
mean params."""

from __future__ import annotations

import math

import h5py
import numpy as np
import pytest
import torch

from synthgen.core.smpl import ModelFileError
from synthgen.testing.made_inputs import deflated_zeros
from trainer.config import BACKBONE_NAMES
from trainer.model import (BACKBONES, MotionHMR, ResNet50, SmallCNN, clip_predictions,
                           load_imagenet_weights, mean_params)
from trainer.model.regressor import BETAS, CAMERA, NUM_PARAMS, POSE, IterativeRegressor

# torchvision.models.resnet50: 25,557,032 parameters, 320 state-dict entries.
TORCHVISION_RESNET50_PARAMETERS = 25_557_032


def _torchvision_resnet50_shapes() -> dict[str, tuple[int, ...]]:
    """Names and shapes of torchvision's resnet50 state dict, written out from its source."""
    shapes: dict[str, tuple[int, ...]] = {}

    def bn(prefix: str, n: int) -> None:
        for name in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{prefix}.{name}"] = (n,)
        shapes[f"{prefix}.num_batches_tracked"] = ()

    shapes["conv1.weight"] = (64, 3, 7, 7)
    bn("bn1", 64)
    inplanes = 64
    for stage, (blocks, planes) in enumerate([(3, 64), (4, 128), (6, 256), (3, 512)], start=1):
        for block in range(blocks):
            p = f"layer{stage}.{block}"
            shapes[f"{p}.conv1.weight"] = (planes, inplanes, 1, 1)
            bn(f"{p}.bn1", planes)
            shapes[f"{p}.conv2.weight"] = (planes, planes, 3, 3)
            bn(f"{p}.bn2", planes)
            shapes[f"{p}.conv3.weight"] = (planes * 4, planes, 1, 1)
            bn(f"{p}.bn3", planes * 4)
            if block == 0:
                shapes[f"{p}.downsample.0.weight"] = (planes * 4, inplanes, 1, 1)
                bn(f"{p}.downsample.1", planes * 4)
            inplanes = planes * 4
    shapes["fc.weight"] = (1000, 2048)
    shapes["fc.bias"] = (1000,)
    return shapes


def _fake_imagenet_state(seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in _torchvision_resnet50_shapes().items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(7, dtype=torch.long)
        else:
            state[key] = torch.randn(shape, generator=gen)
    return state


def test_resnet50_matches_torchvision_names_shapes_and_size():
    model = ResNet50()
    own = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert own == _torchvision_resnet50_shapes()
    assert sum(p.numel() for p in model.parameters()) == TORCHVISION_RESNET50_PARAMETERS


def test_imagenet_weights_load_exactly_with_extra_input_channels(tmp_path):
    state = _fake_imagenet_state()
    path = tmp_path / "resnet50.pth"
    torch.save(state, path)
    model = ResNet50(in_channels=5)
    extra_before = model.conv1.weight[:, 3:].detach().clone()
    load_imagenet_weights(model, path)
    own = model.state_dict()
    for key, value in state.items():
        if key == "conv1.weight":
            assert torch.equal(own[key][:, :3], value)
            assert torch.equal(own[key][:, 3:], extra_before)
        else:
            assert torch.equal(own[key], value), key


def test_imagenet_weights_without_fc_or_batch_counters_load(tmp_path):
    state = {k: v for k, v in _fake_imagenet_state().items()
             if not k.startswith("fc.") and not k.endswith("num_batches_tracked")}
    path = tmp_path / "trunk.pth"
    torch.save(state, path)
    model = ResNet50()
    load_imagenet_weights(model, path)
    assert torch.equal(model.layer4[2].bn3.running_var, state["layer4.2.bn3.running_var"])


@pytest.mark.parametrize("corruption, message", [
    ("rename",
     "missing 1 (e.g. layer3.5.conv2.weight) | unexpected 1 (e.g. layer3.5.conv_2.weight)"),
    ("reshape", "layer2.0.downsample.0.weight: file (512, 128, 1, 1), expected (512, 256, 1, 1)"),
    ("drop", "missing 1 (e.g. bn1.running_mean)"),
])
def test_wrong_state_dict_is_rejected_with_the_offending_keys(tmp_path, corruption, message):
    state = _fake_imagenet_state()
    if corruption == "rename":
        state["layer3.5.conv_2.weight"] = state.pop("layer3.5.conv2.weight")
    elif corruption == "reshape":
        state["layer2.0.downsample.0.weight"] = torch.zeros(512, 128, 1, 1)
    else:
        del state["bn1.running_mean"]
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    model = ResNet50()
    before = model.conv1.weight.detach().clone()
    with pytest.raises(ModelFileError, match="not a torchvision resnet50 state dict") as info:
        load_imagenet_weights(model, path)
    assert message in str(info.value) and str(path) in str(info.value)
    assert torch.equal(model.conv1.weight, before)  # nothing half-loaded


def test_non_state_dict_files_are_rejected(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        load_imagenet_weights(ResNet50(), tmp_path / "missing.pth")
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelFileError, match="not a readable PyTorch file"):
        load_imagenet_weights(ResNet50(), garbage)
    listing = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], listing)
    with pytest.raises(ModelFileError, match="expected a dict of tensors"):
        load_imagenet_weights(ResNet50(), listing)


def test_default_mean_params_stand_upright_with_hmr_camera():
    theta = mean_params()
    assert theta.shape == (NUM_PARAMS,) and theta.dtype == np.float32
    assert theta[POSE][0] == pytest.approx(math.pi) and not theta[POSE][1:].any()
    assert not theta[BETAS].any()
    assert theta[CAMERA].tolist() == pytest.approx([0.9, 0.0, 0.0])


def test_mean_params_read_from_hmr_h5(tmp_path):
    rng = np.random.default_rng(0)
    pose, shape = rng.normal(size=72), rng.normal(size=10)
    path = tmp_path / "neutral_smpl_mean_params.h5"
    with h5py.File(path, "w") as f:
        f["pose"] = pose
        f["shape"] = shape
    theta = mean_params(path)
    np.testing.assert_allclose(theta[POSE], pose, rtol=1e-6)
    np.testing.assert_allclose(theta[BETAS], shape, rtol=1e-6)
    assert theta[CAMERA].tolist() == pytest.approx([0.9, 0.0, 0.0])
    with h5py.File(path, "w") as f:
        f["pose"] = pose
    with pytest.raises(ModelFileError, match="lacks dataset 'shape'"):
        mean_params(path)
    not_h5 = tmp_path / "mean.h5"
    not_h5.write_bytes(b"junk")
    with pytest.raises(ModelFileError, match="not an HDF5"):
        mean_params(not_h5)
    with h5py.File(path, "w") as f:  # was accepted, and training failed in an SVD traceback
        f["pose"] = np.where(np.arange(72) == 3, np.nan, pose)
        f["shape"] = shape
    with pytest.raises(ModelFileError, match="dataset 'pose' holds NaN or infinite values"):
        mean_params(path)
    with h5py.File(path, "w") as f:  # declared, never written: refused before it is read
        f.create_dataset("pose", shape=(10**9, 24, 2), dtype=np.float64, chunks=(1000, 24, 2))
        f["shape"] = shape
    assert path.stat().st_size < 20_000
    with pytest.raises(ModelFileError, match="dataset 'pose' has 48000000000 values, expected 72"):
        mean_params(path)
    with h5py.File(path, "w") as f:  # 72 values whose gzip chunk inflates to 64 MB
        pose_data = f.create_dataset("pose", data=pose, chunks=(72,), compression="gzip")
        pose_data.id.write_direct_chunk((0,), deflated_zeros(64))
        f["shape"] = shape
    with pytest.raises(ModelFileError, match="pose holds more than 576 bytes of data; expected"):
        mean_params(path)


def test_regressor_starts_from_mean_and_iterates_three_times():
    init = mean_params()
    regressor = IterativeRegressor(8, init, hidden=16).eval()
    last = regressor.mlp[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.fill_(0.25)
    with torch.no_grad():
        theta = regressor(torch.randn(2, 8))
    np.testing.assert_allclose(theta.numpy(), np.tile(init + 3 * 0.25, (2, 1)), rtol=1e-6)


@pytest.fixture(scope="module")
def motion_hmr():
    torch.manual_seed(0)
    return MotionHMR(16).eval()


def test_motion_hmr_shapes_and_test_time_predictions(motion_hmr):
    inputs = torch.randn(2, 3, 16, 32, 32)
    with torch.no_grad():
        out = motion_hmr(inputs)
    assert out["current"].shape == (2, 3, NUM_PARAMS)
    assert out["future"].shape == (2, 3, NUM_PARAMS)
    assert out["features"].shape == (2, 3, 2048)
    clip = clip_predictions(out)
    assert clip.shape == (2, 4, NUM_PARAMS)
    assert torch.equal(clip[:, :3], out["current"]) and torch.equal(clip[:, 3], out["future"][:, 2])
    assert not torch.equal(out["current"], out["future"])  # two heads, two sets of weights
    with pytest.raises(ValueError, match=r"\(B, P, 16, H, W\)"):
        motion_hmr(torch.randn(1, 3, 15, 32, 32))


def test_motion_hmr_lstm_carries_information_both_ways_in_time(motion_hmr):
    inputs = torch.randn(1, 4, 16, 32, 32)
    late, early = inputs.clone(), inputs.clone()
    late[:, 3] = torch.randn(16, 32, 32)
    early[:, 0] = torch.randn(16, 32, 32)
    with torch.no_grad():
        base, after_late, after_early = (motion_hmr(x) for x in (inputs, late, early))
    # eval mode: the CNN treats pairs independently, so only the LSTM can link pairs 0 and 3
    assert torch.equal(after_late["features"][:, :3], base["features"][:, :3])
    assert not torch.allclose(after_late["current"][:, 0], base["current"][:, 0])  # backward
    assert not torch.allclose(after_early["future"][:, 3], base["future"][:, 3])  # forward


def test_motion_hmr_keeps_torchvision_names_for_its_resnet50_backbone(motion_hmr):
    names = {k.removeprefix("backbone."): tuple(v.shape)
             for k, v in motion_hmr.state_dict().items() if k.startswith("backbone.")}
    expected = _torchvision_resnet50_shapes()
    expected["conv1.weight"] = (64, 16, 7, 7)
    assert names == expected
    assert isinstance(motion_hmr.backbone, ResNet50) and motion_hmr.lstm.input_size == 2048


@pytest.mark.parametrize("size, grid", [(32, 2), (48, 3), (64, 4)])
def test_small_cnn_gives_fixed_width_features_at_any_input_size(size, grid):
    torch.manual_seed(0)
    model = SmallCNN(13).eval()
    with torch.no_grad():
        assert model.convs(torch.randn(2, 13, size, size)).shape == (2, 128, grid, grid)
        features = model(torch.randn(5, 13, size, size))
    assert features.shape == (5, SmallCNN.features) == (5, 256)
    assert (features >= 0).all() and features.abs().sum() > 0
    assert sum(p.numel() for p in model.parameters()) < 1_000_000  # vs ResNet-50's 25.6 M
    with pytest.raises(ValueError, match="in_channels"):
        SmallCNN(0)


def test_small_cnn_features_tell_where_a_heatmap_peaks():
    torch.manual_seed(0)
    model = SmallCNN(1).eval()
    left, right = torch.zeros(2, 1, 1, 48, 48)
    left[..., 24, 8] = right[..., 24, 40] = 1.0
    with torch.no_grad():
        a, b = model(left), model(right)
    assert not torch.allclose(a, b, atol=1e-4)


def test_motion_hmr_with_the_small_backbone():
    torch.manual_seed(0)
    model = MotionHMR(13, backbone="small", lstm_hidden=16, head_hidden=16,
                      regressor_hidden=16).eval()
    assert isinstance(model.backbone, SmallCNN) and model.lstm.input_size == 256
    assert all(k.startswith(("backbone.convs.", "backbone.fc.")) for k in model.state_dict()
               if k.startswith("backbone."))
    with torch.no_grad():
        out = model(torch.randn(2, 3, 13, 48, 48))
    assert out["current"].shape == out["future"].shape == (2, 3, NUM_PARAMS)
    assert out["features"].shape == (2, 3, 256)
    with pytest.raises(ValueError, match="unknown backbone 'vgg'"):
        MotionHMR(13, backbone="vgg")


def test_config_knows_the_same_backbones_as_the_model():
    assert set(BACKBONE_NAMES) == set(BACKBONES)


@pytest.mark.slow
def test_motion_hmr_trains_end_to_end():
    torch.manual_seed(1)
    model = MotionHMR(4, lstm_hidden=32, head_hidden=32, regressor_hidden=32)
    out = model(torch.randn(2, 2, 4, 32, 32))
    (out["current"].square().mean() + out["future"].square().mean()).backward()
    for name in ("backbone.conv1.weight", "lstm.weight_ih_l0_reverse",
                 "heads.current.2.mlp.0.weight", "heads.future.0.weight"):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name
