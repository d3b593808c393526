"""Camera motion: median flow per pair, centre-referenced integration, tile-median windows.

Accuracy is checked on synthetic videos with known sub-pixel camera motion and independently
moving objects covering up to a third of the frame, and on a real hand-held clip for stability.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data

from synthgen.config import CameraMotionConfig
from synthgen.steps.camera_motion import (camera_motion, integrate_camera_motion, tile_medians,
                                          tile_weights, window_camera_motion)
from synthgen.steps.tvl1 import optical_flow_tvl1_batch


def _flow(frames, cfg=CameraMotionConfig()):
    return optical_flow_tvl1_batch(frames[:-1], frames[1:], attachment=cfg.attachment,
                                   tightness=cfg.tightness, num_warp=cfg.num_warp,
                                   num_iter=cfg.num_iter, num_levels=cfg.num_levels,
                                   downscale=cfg.downscale)


def pink_noise_image(rng, shape):
    """An (H, W, 3) uint8 image with a natural 1/f amplitude spectrum: texture at every scale."""
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.rfftfreq(shape[1])[None, :]
    amplitude = 1.0 / np.maximum(np.hypot(fx, fy), 1.0 / max(shape))
    channels = []
    for _ in range(3):
        phase = np.exp(2j * np.pi * rng.random(amplitude.shape))
        channel = np.fft.irfft2(amplitude * phase, s=shape)
        channels.append((channel - channel.mean()) / channel.std())
    return np.clip(128 + 40 * np.stack(channels, axis=-1), 0, 255).astype(np.uint8)


def known_motion_video(rng, *, num_frames=31, object_fraction=1 / 3, size=(240, 320)):
    """Frames of a camera panning over a 1/f-noise scene (smooth random sub-pixel path, Lanczos resampling)
    with an independently moving textured object covering ``object_fraction`` of the frame.

    Returns frames (T, H, W, 3) uint8 and the true per-pair camera motion (T-1, 2), x then y.
    """
    scene = pink_noise_image(rng, (size[0] + 80, size[1] + 80))
    h, w = size
    steps = np.cumsum(rng.normal(0, 0.6, (num_frames - 1, 2)), axis=0) * 0.3 + rng.uniform(-2, 2, 2)
    path = np.concatenate([np.zeros((1, 2)), np.cumsum(steps, axis=0)])  # camera position (x, y)
    path -= path.mean(0)
    # Content at scene point s is at s - camera in the frame: motion = -(camera step).
    texture = cv2.resize(skimage.data.coffee(), (w, h))
    ow, oh = int(w * np.sqrt(object_fraction)), int(h * np.sqrt(object_fraction))
    obj_velocity = rng.uniform(-3, 3, 2)
    frames = []
    for t, (cx, cy) in enumerate(path):
        x0, y0 = (scene.shape[1] - w) / 2 + cx, (scene.shape[0] - h) / 2 + cy
        matrix = np.float32([[1, 0, x0], [0, 1, y0]])
        frame = cv2.warpAffine(scene, matrix, (w, h), flags=cv2.INTER_LANCZOS4 | cv2.WARP_INVERSE_MAP)
        ox, oy = (np.array([w / 4, h / 4]) + obj_velocity * t).astype(int)
        ox, oy = np.clip(ox, 0, w - ow), np.clip(oy, 0, h - oh)
        frame[oy:oy + oh, ox:ox + ow] = texture[:oh, t:t + ow]
        frames.append(frame)
    return np.stack(frames), -np.diff(path, axis=0)


def test_camera_motion_is_median_x_then_y():
    flow = np.zeros((10, 10, 2), np.float32)
    flow[..., 0], flow[..., 1] = 2.0, -1.0
    flow[:3] = 50.0  # outliers on 30% of the pixels
    np.testing.assert_allclose(camera_motion(flow), [2.0, -1.0])


def test_inlier_pass_removes_pull_of_moving_object():
    rng = np.random.default_rng(3)
    flow = rng.normal(0, 0.2, (60, 60, 2)) + [1.0, 0.5]
    flow[:20] += 4.0  # an object covering a third of the frame
    plain = camera_motion(flow)
    robust = camera_motion(flow, inlier_radius=0.5)
    assert np.abs(plain - [1.0, 0.5]).max() > 0.08
    assert np.abs(robust - [1.0, 0.5]).max() < 0.03


def test_integration_centre_reference_and_sign():
    motion = np.array([[1.0, 0.0], [2.0, -1.0], [0.5, 0.5], [1.0, 1.0]])  # T = 5, centre 2
    offsets = integrate_camera_motion(motion)
    np.testing.assert_allclose(offsets, [[-3, 1], [-2, 1], [0, 0], [0.5, 0.5], [1.5, 1.5]])


def test_window_median_from_tiles_matches_pixel_median():
    rng = np.random.default_rng(0)
    flow = rng.normal(0, 1, (50, 70, 2)).astype(np.float32) + [3.0, -2.0]
    flow[:, :35] += 0.3  # two motions, window straddles them
    medians = tile_medians(flow, tile=8)
    assert medians.shape == (7, 9, 2)
    np.testing.assert_allclose(medians[0, 0], np.median(flow[:8, :8].reshape(-1, 2), 0), rtol=1e-6)
    np.testing.assert_allclose(medians[6, 8], np.median(flow[48:, 64:].reshape(-1, 2), 0),
                               rtol=1e-6)
    weights = tile_weights((50, 70), (3, 5), (40, 56), tile=8)
    assert weights.sum() == 40 * 56
    estimate = window_camera_motion(medians[None], weights)[0]
    truth = camera_motion(flow[3:43, 5:61])
    np.testing.assert_allclose(estimate, truth, atol=0.1)


def test_weighted_median_equals_median_for_equal_weights():
    values = np.random.default_rng(1).normal(size=(3, 4, 5, 2))
    got = window_camera_motion(values, np.ones((4, 5)))
    np.testing.assert_allclose(got, np.median(values.reshape(3, -1, 2), axis=1))


def test_window_outside_frame_rejected():
    with pytest.raises(ValueError, match="does not fit"):
        tile_weights((240, 320), (1, 0), (240, 320), tile=16)


@pytest.mark.parametrize("seed, fraction", [(0, 0.0), (1, 1 / 3), (2, 1 / 3)])
def test_known_camera_motion_recovered(seed, fraction):
    frames, truth = known_motion_video(np.random.default_rng(seed), object_fraction=fraction)
    cfg = CameraMotionConfig()
    flow = _flow(frames, cfg)
    pixels = np.stack([camera_motion(f, inlier_radius=cfg.inlier_radius) for f in flow])
    medians = np.stack([tile_medians(f, tile=cfg.tile) for f in flow])
    weights = tile_weights((240, 320), (0, 0), (240, 320), tile=cfg.tile)
    tiles = window_camera_motion(medians, weights, inlier_radius=cfg.inlier_radius)
    for estimate in (pixels, tiles):
        _check_accuracy(estimate, truth)


def _check_accuracy(estimate, truth):
    per_frame_error = np.abs(estimate - truth).max(axis=1)
    drift = np.abs(integrate_camera_motion(estimate) - integrate_camera_motion(truth)).max()
    assert np.median(per_frame_error) <= 0.1
    assert drift <= 1.0


def test_real_handheld_clip_is_stable(shared_data):
    cap = cv2.VideoCapture(str(shared_data / "videos" / "handheld_pool_32frames.mp4"))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(cv2.resize(frame[..., ::-1], (320, 240), interpolation=cv2.INTER_AREA))
    assert len(frames) >= 31
    motion = np.stack([camera_motion(f) for f in _flow(np.stack(frames[:31]))])
    assert np.isfinite(motion).all()
    assert np.abs(motion).max() < 20  # plausible hand-held motion at 240x320
    # Smooth: frame-to-frame change of the motion is small next to the motion itself.
    assert np.median(np.abs(np.diff(motion, axis=0))) < 1.0
    offsets = integrate_camera_motion(motion)
    assert np.abs(offsets).max() < 100
