"""TV-L1 in PyTorch: agrees with the NumPy solver on the same pairs, recovers known motion,
repeats bit for bit, serves as crop-flow backend and camera-motion solver; CUDA where present."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import skimage.data
import torch

from synthgen.config import CameraMotionConfig, CropFlowConfig, from_dict
from synthgen.build.executor import single_threaded
from synthgen.steps.camera_motion import camera_motion, pair_flows
from synthgen.steps.crop_flow import TVL1TorchBackend, backend_from_config, get_backend
from synthgen.steps.tvl1 import optical_flow_tvl1_batch
from synthgen.steps.tvl1_torch import optical_flow_tvl1_torch, tvl1_flow
from synthgen.testing.flow_pairs import end_point_error, known_flow_pairs, known_limb_flow_pairs
from synthgen.testing.made_inputs import shifted_pair

#: Agreement of the torch and NumPy flows of the same pairs (px): mean difference, share of
#: pixels off by more than 0.01 px, largest difference. Measured on CPU: mean 5e-6 (crops) and
#: 4e-5 (camera motion, 25 px shift from a start); max 2e-4 on crops; at camera-motion settings
#: 31 of 76800 pixels above 0.01 px, max 0.14 px (rounding amplified where the warped gradient
#: nearly vanishes and the thresholding step divides by ~0).
AGREE_MEAN_PX, AGREE_PX, AGREE_SHARE, AGREE_MAX_PX = 1e-3, 0.01, 1e-3, 0.25

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread: the solver's many small operations ran 20x slower on two threads of a
    loaded machine (the crop-flow backend runs single-threaded in a build's shard tasks)."""
    with single_threaded():
        yield


def _crop_params(cfg: CropFlowConfig = CropFlowConfig()) -> dict:
    return dict(attachment=cfg.tvl1_attachment, tightness=cfg.tvl1_tightness,
                num_warp=cfg.tvl1_num_warp, num_iter=cfg.tvl1_num_iter,
                num_levels=cfg.tvl1_num_levels, downscale=cfg.tvl1_downscale)


def _camera_params(cfg: CameraMotionConfig = CameraMotionConfig()) -> dict:
    return dict(attachment=cfg.attachment, tightness=cfg.tightness, num_warp=cfg.num_warp,
                num_iter=cfg.num_iter, num_levels=cfg.num_levels, downscale=cfg.downscale)


@pytest.fixture(scope="module")
def crop_pairs():
    """Three 224x224 pairs of known affine flow (shift up to 4 px, 2 deg, 3%)."""
    return known_flow_pairs(skimage.data.astronaut(), 3, rng=np.random.default_rng(0),
                            max_shift=4.0, max_rotation_deg=2.0, max_scale=0.03)


def _assert_agree(ours, theirs):
    difference = np.linalg.norm(ours - theirs, axis=-1)
    assert difference.mean() < AGREE_MEAN_PX and difference.max() < AGREE_MAX_PX
    assert (difference > AGREE_PX).mean() < AGREE_SHARE


def test_agrees_with_numpy_solver_on_crops(crop_pairs):
    pairs, _ = crop_pairs
    ours = optical_flow_tvl1_torch(pairs[:, 0], pairs[:, 1], **_crop_params())
    assert ours.shape == (3, 224, 224, 2) and ours.dtype == np.float32
    _assert_agree(ours, optical_flow_tvl1_batch(pairs[:, 0], pairs[:, 1], **_crop_params()))


def test_agrees_with_numpy_solver_at_camera_motion_settings_from_a_start():
    frame0, frame1 = shifted_pair(25.4, -7.3)
    start = np.array([[24.0, -6.0]])
    kwargs = dict(_camera_params(), initial_motion=start)
    ours = optical_flow_tvl1_torch(frame0[None], frame1[None], **kwargs)
    _assert_agree(ours, optical_flow_tvl1_batch(frame0[None], frame1[None], **kwargs))
    np.testing.assert_allclose(np.median(ours[0, 32:-32, 32:-32].reshape(-1, 2), axis=0),
                               [25.4, -7.3], atol=0.05)


@pytest.mark.parametrize("dx, dy", [(1.3, -0.4), (-2.7, 2.2)])
def test_known_shift_recovered_x_then_y(dx, dy):
    frame0, frame1 = shifted_pair(dx, dy)
    flow = optical_flow_tvl1_torch(frame0[None], frame1[None], **_camera_params())[0]
    np.testing.assert_allclose(np.median(flow[16:-16, 16:-16].reshape(-1, 2), axis=0), [dx, dy],
                               atol=0.08)


def test_known_affine_and_limb_flow_recovered(crop_pairs):
    """The NumPy backend's bounds (tests/steps/crop_flow/test_backends.py) hold for the torch one."""
    pairs, truth = crop_pairs
    backend = get_backend("tvl1_torch")
    assert end_point_error(backend.flow(pairs), truth, margin=16) < 0.25
    pairs, truth, limb = known_limb_flow_pairs(
        skimage.data.astronaut(), skimage.data.coffee(), 2, rng=np.random.default_rng(2),
        max_shift=6.0, max_limb_shift=6.0, max_limb_rotation_deg=3.0)
    flow = backend.flow(pairs)
    assert end_point_error(flow, truth, margin=16, where=limb) < 1.1
    assert end_point_error(flow, truth, margin=16, where=~limb) < 0.4


def test_deterministic_and_independent_of_the_batch(crop_pairs):
    pairs, _ = crop_pairs
    first = optical_flow_tvl1_torch(pairs[:, 0], pairs[:, 1], **_crop_params())
    np.testing.assert_array_equal(first, optical_flow_tvl1_torch(pairs[:, 0], pairs[:, 1],
                                                                 **_crop_params()))
    alone = optical_flow_tvl1_torch(pairs[1:2, 0], pairs[1:2, 1], **_crop_params())
    np.testing.assert_array_equal(first[1:2], alone)


def test_grey_float_frames_of_odd_size_and_identical_frames():
    frame0, frame1 = shifted_pair(0.6, -1.1, size=(97, 130))
    gray = [torch.from_numpy(f.astype(np.float32) @ np.float32([0.299, 0.587, 0.114]) / 255)
            for f in (frame0, frame1)]
    flow = tvl1_flow(gray[0][None], gray[1][None])
    assert flow.shape == (1, 97, 130, 2) and flow.dtype == torch.float32
    np.testing.assert_allclose(np.median(flow[0, 8:-8, 8:-8].reshape(-1, 2).numpy(), axis=0),
                               [0.6, -1.1], atol=0.05)
    assert tvl1_flow(gray[0][None], gray[0][None]).abs().max() < 1e-6


@pytest.mark.parametrize("shape0, shape1, kwargs, match", [
    ((1, 32, 32), (1, 32, 40), {}, "differ in shape"),
    ((1, 32, 32, 4), (1, 32, 32, 4), {}, r"\(B, H, W\) or \(B, H, W, 3\)"),
    ((1, 32, 32), (1, 32, 32), {"num_iter": 0}, ">= 1"),
    ((2, 32, 32), (2, 32, 32), {"initial_motion": np.zeros(2)}, r"initial_motion must be \(2, 2\)"),
])
def test_bad_input_rejected(shape0, shape1, kwargs, match):
    with pytest.raises(ValueError, match=match):
        optical_flow_tvl1_torch(np.zeros(shape0, np.uint8), np.zeros(shape1, np.uint8), **kwargs)


def test_backend_from_config_takes_the_tvl1_parameters_and_device():
    cfg = from_dict({"crop_flow": {"backend": "tvl1_torch", "tvl1_num_iter": 7,
                                   "batch_size": 64}}).crop_flow
    backend = backend_from_config(cfg)
    assert isinstance(backend, TVL1TorchBackend) and backend.batch_size == 64
    assert backend.device == torch.device("cpu") and backend.params["num_iter"] == 7
    numpy_twin = backend_from_config(from_dict({"crop_flow": {"backend": "tvl1",
                                                              "tvl1_num_iter": 7}}).crop_flow)
    # The store tells the two solvers apart by name; their parameters are the same.
    assert (backend.name, numpy_twin.name) == ("tvl1_torch", "tvl1")
    assert backend.params == numpy_twin.params
    assert backend_from_config(cfg, device="cuda:1").device == torch.device("cuda:1")
    with pytest.raises(ValueError, match="takes no checkpoint"):
        get_backend("tvl1_torch", checkpoint="w.pth")


def test_store_record_names_the_solver_and_rebuilds_it():
    from synthgen import store
    from synthgen.build.video import flow_backend

    ours, numpy_twin = get_backend("tvl1_torch"), get_backend("tvl1")
    record = {"name": ours.name, "params": ours.params}
    rebuilt = flow_backend(record)
    assert isinstance(rebuilt, TVL1TorchBackend) and rebuilt.params == ours.params
    with pytest.raises(ValueError, match="differs"):
        store.check_compatible(store.StoreSpec("the training data", crop_flow=record),
                               store.StoreSpec("this build", crop_flow={
                                   "name": numpy_twin.name, "params": numpy_twin.params}),
                               fields=("crop_flow",), what="cannot evaluate")


def test_camera_motion_with_the_torch_solver():
    frame0, frame1 = shifted_pair(25.4, -7.3)
    cfg = CameraMotionConfig()
    torch_solver = functools.partial(optical_flow_tvl1_torch, device="cpu")
    ours = pair_flows(frame0[None], frame1[None], cfg, tvl1=torch_solver)
    theirs = pair_flows(frame0[None], frame1[None], cfg)
    np.testing.assert_array_equal(ours.estimate, theirs.estimate)
    np.testing.assert_allclose(ours.reliability, theirs.reliability, atol=1e-3)
    np.testing.assert_allclose(camera_motion(ours.flow[0], inlier_radius=cfg.inlier_radius),
                               camera_motion(theirs.flow[0], inlier_radius=cfg.inlier_radius),
                               atol=1e-3)


@requires_cuda
def test_cuda_agrees_with_cpu_and_repeats(crop_pairs):
    pairs, _ = crop_pairs
    cpu = optical_flow_tvl1_torch(pairs[:, 0], pairs[:, 1], **_crop_params())
    cuda = optical_flow_tvl1_torch(pairs[:, 0], pairs[:, 1], device="cuda", **_crop_params())
    _assert_agree(cuda, cpu)
    np.testing.assert_array_equal(cuda, optical_flow_tvl1_torch(
        pairs[:, 0], pairs[:, 1], device="cuda", **_crop_params()))
