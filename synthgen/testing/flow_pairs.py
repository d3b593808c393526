"""Crop pairs with known flow, to measure a backend's accuracy (tests and the benchmark).

:func:`known_flow_pairs`: pair b shows a window of a still photo and the same window after a
smooth affine motion (a sub-pixel translation plus a small rotation and scale about the crop
centre), both resampled bicubically from the photo, so the true flow is known at every crop pixel.

:func:`known_limb_flow_pairs`: the same background motion plus a "limb", a textured bar that
swings about one end (its own translation and rotation) over the background, as a person's arm
or leg moves within the crop; its edge is anti-aliased over one pixel and the true flow of every
crop-0 pixel is the motion of the layer its centre lies in.

:func:`demo_person_flow_pairs`: the paired crops of real pipeline examples (``make_example``) of
demo people (SURREAL files with ``_gtflow.mat``) over a panning demo background video, with the
ground-truth crop flow the renderer and the background's known camera motion give, and the
visible part label per pixel.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np


def known_flow_pairs(image: np.ndarray, count: int, *, rng: np.random.Generator, size: int = 224,
                     max_shift: float = 4.0, max_rotation_deg: float = 0.0,
                     max_scale: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Random crop pairs of ``image`` related by a known affine flow.

    Parameters
    ----------
    image : ndarray, shape (H, W, 3), uint8
        RGB photo, at least ``size + 2 * (max_shift + size * (max_rotation + max_scale))`` px.
    count : int
        Number of pairs B.
    rng : numpy.random.Generator
        Draws window positions and motions.
    size : int
        Crop side in pixels.
    max_shift : float
        Translation per axis, uniform in [-max_shift, max_shift] pixels.
    max_rotation_deg, max_scale : float
        Rotation (degrees) and relative scale change, uniform in [-max, max], about the centre.

    Returns
    -------
    pairs : ndarray, shape (B, 2, size, size, 3), uint8
    flow : ndarray, shape (B, size, size, 2), float32
        True displacement from crop 0 to crop 1 in crop pixels, x then y.
    """
    height, width = image.shape[:2]
    slack = max_shift + size * (np.deg2rad(max_rotation_deg) + max_scale) + 4
    if min(height, width) < size + 2 * slack:
        raise ValueError(f"image {image.shape[:2]} too small for {size} px crops with this motion")
    grid_y, grid_x = np.mgrid[0:size, 0:size].astype(np.float64)
    centre = (size - 1) / 2
    pairs = np.empty((count, 2, size, size, 3), dtype=np.uint8)
    flows = np.empty((count, size, size, 2), dtype=np.float32)
    source = image.astype(np.float32)
    for b in range(count):
        x0 = rng.uniform(slack, width - size - slack)
        y0 = rng.uniform(slack, height - size - slack)
        angle = np.deg2rad(rng.uniform(-max_rotation_deg, max_rotation_deg))
        scale = 1 + rng.uniform(-max_scale, max_scale)
        shift = rng.uniform(-max_shift, max_shift, size=2)
        motion = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        # Crop-0 pixel p moves to q = M (p - c) + c + t; crop 1 at q shows the photo at p.
        px, py = grid_x - centre, grid_y - centre
        flows[b, ..., 0] = motion[0, 0] * px + motion[0, 1] * py + centre + shift[0] - grid_x
        flows[b, ..., 1] = motion[1, 0] * px + motion[1, 1] * py + centre + shift[1] - grid_y
        inverse = np.linalg.inv(motion)
        qx, qy = grid_x - centre - shift[0], grid_y - centre - shift[1]
        src_x = inverse[0, 0] * qx + inverse[0, 1] * qy + centre
        src_y = inverse[1, 0] * qx + inverse[1, 1] * qy + centre
        pairs[b, 0] = _sample(source, grid_x + x0, grid_y + y0)
        pairs[b, 1] = _sample(source, src_x + x0, src_y + y0)
    return pairs, flows


def known_limb_flow_pairs(image: np.ndarray, texture: np.ndarray, count: int, *,
                          rng: np.random.Generator, size: int = 224, max_shift: float = 8.0,
                          max_limb_shift: float = 8.0, max_limb_rotation_deg: float = 5.0,
                          limb_length: tuple[float, float] = (90.0, 150.0),
                          limb_width: tuple[float, float] = (22.0, 40.0)
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Crop pairs of a translating background with a limb moving on its own over it.

    The background is :func:`known_flow_pairs` of ``image`` (translation only). The limb is a
    bar of ``texture`` (a window of it, resampled bicubically): one end (the "joint") lies in
    the central half of the crop, it points in a random direction, and between the two crops it
    rotates about that end by up to ``max_limb_rotation_deg`` and translates by up to
    ``max_limb_shift`` px per axis, independently of the background; so its flow varies along it
    (a 150 px limb rotated by 5 degrees moves its far end 13 px more than its joint).

    Parameters
    ----------
    image : ndarray, shape (H, W, 3), uint8
        RGB background photo (see :func:`known_flow_pairs` for the size it needs).
    texture : ndarray, shape (H', W', 3), uint8
        RGB photo the limb's surface is cut from, larger than ``2 * max(limb_length) + 16`` px
        on each side.
    count : int
        Number of pairs B.
    rng : numpy.random.Generator
        Draws the background windows and motions and the limb's place, shape and motion.
    size : int
        Crop side in pixels.
    max_shift : float
        Background translation per axis, uniform in [-max_shift, max_shift] pixels.
    max_limb_shift : float
        Limb translation per axis, uniform in [-max_limb_shift, max_limb_shift] pixels.
    max_limb_rotation_deg : float
        Limb rotation about its joint, uniform in [-max, max] degrees.
    limb_length, limb_width : (float, float)
        Ranges (uniform) of the bar's length and width in pixels.

    Returns
    -------
    pairs : ndarray, shape (B, 2, size, size, 3), uint8
    flow : ndarray, shape (B, size, size, 2), float32
        True displacement from crop 0 to crop 1 in crop pixels, x then y (the limb's motion where
        crop 0 shows the limb, the background's elsewhere, occluded or not in crop 1).
    limb : ndarray, shape (B, size, size), bool
        Crop-0 pixels whose centre lies on the limb.
    """
    if min(texture.shape[:2]) < 2 * limb_length[1] + 16:
        raise ValueError(f"texture {texture.shape[:2]} too small for limbs up to "
                         f"{limb_length[1]} px long")
    pairs, flows = known_flow_pairs(image, count, rng=rng, size=size, max_shift=max_shift)
    limbs = np.empty((count, size, size), dtype=bool)
    grid = np.stack(np.mgrid[0:size, 0:size][::-1], axis=-1).astype(np.float64)  # (x, y) per px
    surface = texture.astype(np.float32)
    for b in range(count):
        joint = rng.uniform(size / 4, 3 * size / 4, size=2)
        direction = rng.uniform(0, 2 * np.pi)
        length, width = rng.uniform(*limb_length), rng.uniform(*limb_width)
        angle = np.deg2rad(rng.uniform(-max_limb_rotation_deg, max_limb_rotation_deg))
        shift = rng.uniform(-max_limb_shift, max_limb_shift, size=2)
        reach = limb_length[1] + 8                      # texture (x, y) of the joint, with room
        origin = rng.uniform(reach, np.array(texture.shape[1::-1]) - reach)
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        # Crop-0 pixel p on the limb moves to q = R (p - joint) + joint + shift.
        moved = (grid - joint) @ rotation.T + joint + shift
        limb0 = _bar_alpha(grid - joint, direction, length, width)
        limbs[b] = limb0 >= 0.5
        flows[b][limbs[b]] = (moved - grid)[limbs[b]]
        for frame, local in ((0, grid - joint), (1, (grid - joint - shift) @ rotation)):
            alpha = _bar_alpha(local, direction, length, width)[..., None]
            bar = _sample(surface, local[..., 0] + origin[0], local[..., 1] + origin[1])
            pairs[b, frame] = np.rint(alpha * bar + (1 - alpha) * pairs[b, frame]).astype(np.uint8)
    return pairs, flows, limbs


def end_point_error(flow: np.ndarray, truth: np.ndarray, *, margin: int = 0,
                    where: np.ndarray | None = None) -> float:
    """Mean Euclidean distance between (B, H, W, 2) flows, ignoring ``margin`` px at the border.

    ``where`` (B, H, W) bool, if given, restricts the mean to those pixels (border still ignored).
    """
    height, width = flow.shape[1:3]
    inner = (slice(None), slice(margin, height - margin), slice(margin, width - margin))
    error = np.linalg.norm(flow[inner] - truth[inner], axis=-1)
    return float(error.mean() if where is None else error[where[inner]].mean())


def _bar_alpha(local: np.ndarray, direction: float, length: float, width: float) -> np.ndarray:
    """Coverage in [0, 1] of a bar from the origin along ``direction`` at (..., 2) offsets (x, y).

    One pixel of anti-aliasing: 0.5 + the signed distance to the bar's edge, clipped.
    """
    along = local[..., 0] * np.cos(direction) + local[..., 1] * np.sin(direction)
    across = -local[..., 0] * np.sin(direction) + local[..., 1] * np.cos(direction)
    inside = np.minimum(np.minimum(along, length - along), width / 2 - np.abs(across))
    return np.clip(inside + 0.5, 0.0, 1.0)


def _sample(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    out = cv2.remap(image, x.astype(np.float32), y.astype(np.float32), cv2.INTER_CUBIC,
                    borderMode=cv2.BORDER_REFLECT)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


#: SURREAL parts of the limbs' ends: hands (with fingers), feet (with toes), forearms and shins.
LIMB_PARTS: tuple[str, ...] = ("leftHand", "rightHand", "leftHandIndex1", "rightHandIndex1",
                               "leftFoot", "rightFoot", "leftToeBase", "rightToeBase",
                               "leftForeArm", "rightForeArm", "leftLeg", "rightLeg")


#: ``demo_person_flow_pairs`` label of crop pixels outside the frame.
OUTSIDE_FRAME = 255


def demo_person_flow_pairs(num_examples: int, *, seed: int = 0, num_frames: int = 31,
                           pair_step: int = 1, config=None
                           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Paired crops of demo examples with ground-truth crop flow and visible part labels.

    Example k is demo person clip k (``synthgen.demo.people.make_demo_people``: written as SURREAL
    files, its video lossy like the release's, and read back with its ``_gtflow.mat`` by the
    SURREAL reader) composited by ``make_example`` (tracking, occluder, crops as configured) over
    the panning demo video ``pan_tissue.avi`` (known camera motion,
    ``synthgen.demo.backgrounds``), starting at background frame k.

    Parameters
    ----------
    num_examples : int
    seed : int
        The demo people's seed (their motion kinds cycle from it) and each example's
        (``numpy.random.default_rng([seed, k])``).
    num_frames : int
        Frames per example (``config.clip.length`` is set to it).
    pair_step : int
        Keep every ``pair_step``-th pair of each example.
    config : synthgen.config.Config, optional

    Returns
    -------
    pairs : ndarray, shape (B, 2, S, S, 3), uint8
    flow : ndarray, shape (B, S, S, 2), float32
        Ground-truth crop flow (``synthgen.example.ground_truth_crop_flow``), crop pixels, x then y.
    parts : ndarray, shape (B, S, S), uint8
        Part label (1..24, ``synthgen.core.joints.SURREAL_PART_NAMES``) of the visible person at each
        crop pixel of the pair's first frame, 0 on the background and the occluder,
        ``OUTSIDE_FRAME`` where box t leaves the frame (no content, no ground truth).
    """
    from synthgen.config import Config
    from synthgen.demo.backgrounds import ground_truth_camera_motion, make_demo_backgrounds
    from synthgen.demo.body_model import GENDERS, write_smpl_model
    from synthgen.demo.people import make_demo_people
    from synthgen.example import example_layers, make_example
    from synthgen.sources import kinetics, surreal
    from synthgen.steps.camera_motion import integrate_camera_motion
    from synthgen.steps.composite import person_mask
    from synthgen.steps.crops import crop_image

    config = config or Config()
    config = replace(config, clip=replace(config.clip, length=num_frames))
    with tempfile.TemporaryDirectory() as tmp:
        video = make_demo_backgrounds(tmp, num_videos=1, num_frames=num_frames + num_examples)[0]
        motion = ground_truth_camera_motion(video)
        people = make_demo_people(tmp, seed=seed, num_clips=num_examples, num_frames=num_frames)
        smpl_dir = Path(tmp) / "smpl"
        for gender in GENDERS:
            write_smpl_model(smpl_dir, gender=gender)
        inputs = [(kinetics.read_clip(video, start=k, length=num_frames),
                   integrate_camera_motion(motion[k:k + num_frames - 1]),
                   surreal.read_clip(path, smpl_dir=smpl_dir))
                  for k, path in enumerate(people)]
    out_pairs, out_flow, out_parts = [], [], []
    for k, (background, offsets, person) in enumerate(inputs):
        example = make_example(background, offsets, person, np.random.default_rng([seed, k]), config)
        layers = example_layers(background, offsets, person, np.random.default_rng([seed, k]), config)
        visible = layers.tracked.segm * person_mask(layers.tracked.segm, layers.occluder.mask)
        keep = slice(0, num_frames - 1, pair_step)
        out_pairs.append(example.pair_crops[keep])
        out_flow.append(example.gt_crop_flow[keep])
        frame = np.ones(visible.shape[1:], dtype=np.uint8)
        labels = []
        for i in range(0, num_frames - 1, pair_step):
            label = crop_image(visible[i], example.boxes[i], size=config.crops.size, nearest=True)
            inside = crop_image(frame, example.boxes[i], size=config.crops.size, nearest=True)
            labels.append(np.where(inside > 0, label, OUTSIDE_FRAME))
        out_parts.append(np.stack(labels))
    return np.concatenate(out_pairs), np.concatenate(out_flow), np.concatenate(out_parts)
