"""TV-L1 optical flow: known sub-pixel shifts recovered, axis order and sign, batch = single."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from synthgen.config import CameraMotionConfig
from synthgen.steps import tvl1
from synthgen.steps.tvl1 import optical_flow_tvl1, optical_flow_tvl1_batch
from synthgen.testing.made_inputs import shifted_pair


@pytest.mark.parametrize("dx, dy", [(1.3, -0.4), (-2.7, 2.2), (0.25, 0.75)])
def test_known_shift_recovered_x_then_y(dx, dy):
    frame0, frame1 = shifted_pair(dx, dy)
    cfg = CameraMotionConfig()
    flow = optical_flow_tvl1(frame0, frame1, num_warp=cfg.num_warp, num_iter=cfg.num_iter,
                             num_levels=cfg.num_levels, downscale=cfg.downscale)
    assert flow.shape == (240, 320, 2) and flow.dtype == np.float32
    median = np.median(flow[16:-16, 16:-16].reshape(-1, 2), axis=0)
    np.testing.assert_allclose(median, [dx, dy], atol=0.08)


def test_full_resolution_defaults_on_gray_float_any_size():
    frame0, frame1 = shifted_pair(0.6, -1.1, size=(96, 128))
    gray0 = cv2.cvtColor(frame0, cv2.COLOR_RGB2GRAY).astype(np.float64) / 255
    gray1 = cv2.cvtColor(frame1, cv2.COLOR_RGB2GRAY).astype(np.float64) / 255
    flow = optical_flow_tvl1(gray0, gray1)
    assert flow.shape == (96, 128, 2)
    np.testing.assert_allclose(np.median(flow[8:-8, 8:-8].reshape(-1, 2), axis=0), [0.6, -1.1],
                               atol=0.05)


def test_large_motion_through_pyramid():
    frame0, frame1 = shifted_pair(9.0, -6.0)
    flow = optical_flow_tvl1(frame0, frame1, num_warp=3, num_levels=3, downscale=2)
    np.testing.assert_allclose(np.median(flow[24:-24, 24:-24].reshape(-1, 2), axis=0), [9.0, -6.0],
                               atol=0.1)


def test_batch_equals_single_pairs():
    pairs = [shifted_pair(0.5, 0.0, size=(64, 80)), shifted_pair(-1.0, 1.5, size=(64, 80))]
    frames0 = np.stack([p[0] for p in pairs])
    frames1 = np.stack([p[1] for p in pairs])
    batch = optical_flow_tvl1_batch(frames0, frames1, num_warp=2, num_levels=2)
    for b, (f0, f1) in enumerate(pairs):
        np.testing.assert_allclose(batch[b], optical_flow_tvl1(f0, f1, num_warp=2, num_levels=2),
                                   atol=1e-5)


def test_identical_frames_give_zero_flow():
    frame0, _ = shifted_pair(0, 0, size=(48, 64))
    assert np.abs(optical_flow_tvl1(frame0, frame0)).max() < 1e-6


@pytest.mark.parametrize("shape0, shape1, kwargs, match", [
    ((32, 32), (32, 40), {}, "differ in shape"),
    ((32, 32, 4), (32, 32, 4), {}, r"\(H, W\) or \(H, W, 3\)"),
    ((32, 32), (32, 32), {"num_warp": 0}, ">= 1"),
])
def test_bad_input_rejected(shape0, shape1, kwargs, match):
    with pytest.raises(ValueError, match=match):
        optical_flow_tvl1(np.zeros(shape0, np.uint8), np.zeros(shape1, np.uint8), **kwargs)


def test_initial_motion_reaches_displacements_beyond_the_pyramid():
    frame0, frame1 = shifted_pair(25.4, -7.3)
    cfg = CameraMotionConfig()
    kwargs = dict(attachment=cfg.attachment, tightness=cfg.tightness, num_warp=cfg.num_warp,
                  num_iter=cfg.num_iter, num_levels=cfg.num_levels)
    median = lambda flow: np.median(flow[0, 32:-32, 32:-32].reshape(-1, 2), axis=0)  # noqa: E731
    started = optical_flow_tvl1_batch(frame0[None], frame1[None], initial_motion=[[24.0, -6.0]], **kwargs)
    np.testing.assert_allclose(median(started), [25.4, -7.3], atol=0.05)
    unstarted = optical_flow_tvl1_batch(frame0[None], frame1[None], **kwargs)
    assert np.abs(median(unstarted) - [25.4, -7.3]).max() > 1.0


def test_initial_motion_of_wrong_shape_rejected():
    frames = np.zeros((2, 32, 32), np.uint8)
    with pytest.raises(ValueError, match=r"initial_motion must be \(2, 2\)"):
        optical_flow_tvl1_batch(frames, frames, initial_motion=np.zeros(2))


def _numpy_iterations(flow, p, warped, rho_c, inv_norm2, lt, theta, step, num_iter):
    """The TV-L1 iterations as whole-array numpy steps (the compiled loop's specification)."""
    gx, gy = warped[:, 1], warped[:, 2]
    u = [flow[:, 0], flow[:, 1]]
    for _ in range(num_iter):
        coef = np.clip(-((gx * u[0] + rho_c) + gy * u[1]) * inv_norm2, -lt, lt)
        for c, g in ((0, gx), (1, gy)):
            px, py = p[c]
            div = px.copy()
            div[..., 1:] -= px[..., :-1]
            div += py
            div[..., 1:, :] -= py[..., :-1, :]
            u[c] += coef * g
            u[c] += div * theta
        for c in range(2):
            px, py = p[c]
            dx, dy = np.zeros_like(u[c]), np.zeros_like(u[c])
            dx[..., :-1] = u[c][..., 1:] - u[c][..., :-1]
            dy[..., :-1, :] = u[c][..., 1:, :] - u[c][..., :-1, :]
            norm = np.sqrt(dx * dx + dy * dy) * step + 1
            px += dx * step
            px /= norm
            py += dy * step
            py /= norm


def test_compiled_iterations_equal_the_numpy_steps():
    # Same float32 operations in the same order: identical flow and dual variables.
    rng = np.random.default_rng(0)
    shape = (2, 13, 17)
    flow = rng.normal(0, 1, (2, 2) + shape[1:]).astype(np.float32)
    warped = rng.normal(0, 1, (2, 3) + shape[1:]).astype(np.float32)
    rho_c = rng.normal(0, 0.1, shape).astype(np.float32)
    inv_norm2 = (1 / np.maximum(warped[:, 1] ** 2 + warped[:, 2] ** 2, np.float32(1e-9)))
    args = (np.float32(0.3), np.float32(0.3), np.float32(0.25 / 0.3))
    p = np.zeros((2, 2) + shape, dtype=np.float32)
    expected_flow, expected_p = flow.copy(), p.copy()
    tvl1._iterate(flow, p, warped, rho_c, inv_norm2, *args, 4)
    _numpy_iterations(expected_flow, expected_p, warped, rho_c, inv_norm2, *args, 4)
    np.testing.assert_array_equal(flow, expected_flow)
    np.testing.assert_array_equal(p, expected_p)
