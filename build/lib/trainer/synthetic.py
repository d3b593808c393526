"""Small, self-consistent synthetic stores for the trainer's tests and benchmark.

Written with synthgen's public store writer (:func:`synthgen.store.create_store`,
:func:`synthgen.store.write_shard`, :func:`synthgen.store.mark_done`), so the trainer reads them exactly as it reads built stores.
Consistent means: ``joints3d`` are posed SMPL joints (:class:`trainer.smpl.SMPLJoints`) of a
moving person in camera metres, ``pose`` holding the camera-frame orientation (the store's
``joints_convention``); ``joints2d`` their SURREAL-camera projection; ``boxes`` HMR's
150-px-tall square boxes around them; ``joints2d_crop`` the joints in those boxes; ``visibility``
sets bit 1 outside the 320x240 frame, bit 2 on random occluded keypoints and bit 4 on totally
occluded frames; ``rgb`` draws a coloured blob per joint (also on totally occluded frames, as built stores
do: consumers zero them) and
``flow`` moves the pixels near each joint with that joint's motion from frame t to t + 1 in box t.
Nothing else about the images is realistic.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from synthgen import store as synthstore
from trainer.smpl import SMPLJoints

#: SURREAL's camera: focal length and principal point in pixels, frame size (width, height).
FOCAL, CENTRE, FRAME = 600.0, np.array([160.0, 120.0]), np.array([320.0, 240.0])
#: HMR's crop recipe: the keypoint box is this tall in a 224-pixel crop.
PERSON_HEIGHT, REFERENCE_CROP = 150.0, 224.0


def _rotation_x_pi_then_yaw(yaw: float) -> np.ndarray:
    """Model frame (y up, facing +z) -> camera frame (y down), person turned by ``yaw``."""
    c, s = np.cos(yaw), np.sin(yaw)
    turn = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return np.diag([1.0, -1.0, -1.0]) @ turn


def _person_poses(rng: np.random.Generator, frames: int) -> np.ndarray:
    """(frames, 72) axis-angle: a random rest pose swinging sinusoidally at hips, knees, arms."""
    base = rng.normal(0, 0.15, 72)
    base[:3] = 0
    base[16 * 3 + 2], base[17 * 3 + 2] = -1.2, 1.2  # arms down from the T-pose
    amplitude = np.zeros(72)
    for joint in (1, 2, 4, 5, 16, 17, 18, 19):
        amplitude[joint * 3: joint * 3 + 3] = rng.uniform(0.2, 0.6, 3)
    phase = rng.uniform(0, 2 * np.pi, 72)
    rate = rng.uniform(0.5, 1.5)
    t = np.arange(frames)[:, None] / 30.0
    return base + amplitude * np.sin(2 * np.pi * rate * t + phase)


def _blobs(points: np.ndarray, size: int, width: float) -> np.ndarray:
    """(..., J, 2) crop px -> (..., J, size, size) Gaussian weights."""
    grid = np.arange(size, dtype=np.float32)
    gx = np.exp(-0.5 * ((grid - points[..., 0:1]) / width) ** 2)
    gy = np.exp(-0.5 * ((grid - points[..., 1:2]) / width) ** 2)
    return gy[..., :, None] * gx[..., None, :]


def make_synthetic_store(url: str, smpl: SMPLJoints, *, num_examples: int = 12, num_frames: int = 8,
                         crop_size: int = 64, num_persons: int = 4, examples_per_shard: int = 4,
                         finished_shards: list[int] | None = None, seed: int = 0,
                         crop_flow: dict | None = None) -> None:
    """Write a synthetic store.

    Parameters
    ----------
    url : str
        Where to write (overwritten).
    smpl : SMPLJoints
        Body model posing the people.
    num_examples, num_frames, crop_size, examples_per_shard : int
        Store geometry (crop side in pixels).
    num_persons : int
        Distinct SURREAL identities (``surreal_index = example % num_persons``), recorded as
        ``attrs["sources"]["surreal"]`` entries ``"synthetic/person_<k>"``.
    finished_shards : list of int, optional
        Shards to write (default all); the others stay unfinished.
    seed : int
        Everything random derives from it.
    crop_flow : dict, optional
        The ``crop_flow`` attribute (default ``{"name": "synthetic", "params": {}}``).
    """
    rng = np.random.default_rng(seed)
    T, S = num_frames, crop_size
    persons = [dict(betas=rng.normal(0, 0.7, 10).astype(np.float32), gender=rng.integers(0, 2),
                    poses=_person_poses(rng, 4 * T), yaw=rng.uniform(-np.pi, np.pi))
               for _ in range(num_persons)]
    colours = rng.uniform(40, 255, (24, 3)).astype(np.float32)
    arrays = {name: np.zeros((num_examples, *spec.shape), spec.dtype)
              for name, spec in synthstore.schema(T, S).items()}
    quantum = 1.0 / 32.0
    for i in range(num_examples):
        p = i % num_persons
        person = persons[p]
        start = rng.integers(0, 3 * T)
        pose = person["poses"][start:start + T].astype(np.float32)
        with torch.no_grad():
            model = smpl(torch.as_tensor(pose), torch.as_tensor(person["betas"]).expand(T, 10))
        rotation = _rotation_x_pi_then_yaw(person["yaw"] + rng.normal(0, 0.3))
        position = np.array([rng.uniform(-0.5, 0.5), rng.uniform(-0.2, 0.2), rng.uniform(5, 7)])
        drift = rng.normal(0, 0.01, 3) * np.arange(T)[:, None]
        joints3d = model.numpy() @ rotation.T + (position + drift)[:, None, :]
        # The camera-frame orientation goes into the pose (the store's joints convention).
        pose[:, :3] = Rotation.from_matrix(
            rotation @ Rotation.from_rotvec(pose[:, :3]).as_matrix()).as_rotvec()
        joints2d = FOCAL * joints3d[..., :2] / joints3d[..., 2:3] + CENTRE
        low, high = joints2d.min(axis=1), joints2d.max(axis=1)
        side = (high[:, 1] - low[:, 1]) * REFERENCE_CROP / PERSON_HEIGHT
        boxes = np.concatenate([(low + high) / 2 - side[:, None] / 2, side[:, None]], axis=1)
        crop = (joints2d - boxes[:, None, :2]) * S / boxes[:, None, 2:]
        future = (joints2d[1:] - boxes[:-1, None, :2]) * S / boxes[:-1, None, 2:]
        visibility = np.where(((joints2d < 0) | (joints2d > FRAME - 1)).any(-1), 1, 0)
        visibility |= np.where(rng.random((T, 24)) < 0.1, 2, 0)
        total = np.zeros(T, bool)
        if rng.random() < 0.5:
            first = rng.integers(0, T - 1)
            total[first:first + rng.integers(1, 3)] = True
        visibility[total] |= 4
        weights = _blobs(crop, S, S / 24)  # (T, 24, S, S)
        rgb = np.einsum("tjyx,jc->tyxc", weights, colours).clip(0, 255)
        motion = future - crop[:-1]  # (T-1, 24, 2) crop px in box t
        near = weights[:-1] / np.maximum(weights[:-1].sum(axis=1, keepdims=True), 1e-3)
        flow = np.einsum("tjyx,tjc->tyxc", near * (weights[:-1].max(axis=1, keepdims=True) > 0.1),
                         motion)
        values = dict(rgb=rgb.astype(np.uint8), flow=synthstore.quantize_flow(flow, quantum),
                      joints2d=joints2d, joints2d_crop=crop, joints3d=joints3d,
                      visibility=visibility, total_occlusion=total, boxes=boxes, pose=pose,
                      betas=person["betas"], gender=person["gender"], seed=seed * 1000 + i,
                      surreal_index=p, surreal_start=start)
        for name, value in values.items():
            arrays[name][i] = value
    attrs = {"crop_flow": crop_flow or {"name": "synthetic", "params": {}},
             "sources": {"surreal": [f"synthetic/person_{k}" for k in range(num_persons)]}}
    group = synthstore.create_store(url, num_examples=num_examples, num_frames=T, crop_size=S,
                                    examples_per_shard=examples_per_shard, attrs=attrs,
                                    flow_quantum=quantum)
    shards = range(group.attrs["num_shards"]) if finished_shards is None else finished_shards
    for shard in shards:
        rows = synthstore.shard_slice(group, shard)
        synthstore.write_shard(group, shard, {k: v[rows] for k, v in arrays.items()})
        synthstore.mark_done(group, shard)
