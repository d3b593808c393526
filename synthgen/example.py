"""One training example (method.md section 1, steps 3-9): a pure function of its inputs.

``make_example`` tracks the SURREAL person with the camera motion, cuts a motion-compensated SLIC
superpixel out of it as an occluder, composites it onto the background, draws a total occlusion,
computes keypoint visibility with reasons and crops HMR-style boxes. No I/O.

Determinism: every random choice comes from the ``rng`` argument, drawn up front in a fixed order
(`draw_random`) whatever the config and the data, and SLIC is deterministic. The same generator
state gives a bit-identical example; ablations of the same seed share their draws (e.g. the same
total occlusion with and without the occluder).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from synthgen.config import Config
from synthgen.steps.composite import composite, person_mask
from synthgen.steps.crops import (boxes_from_keypoints, crop_frames, crop_image, crop_masks,
                                  crop_pairs, frame_to_crop)
from synthgen.steps.occluder import Occluder, apply_occluder, disabled_occluder, pick_superpixel
from synthgen.steps.superpixels import Superpixels, calibrated_slic
from synthgen.steps.total_occlusion import draw_total_occlusion, total_occlusion_indicator
from synthgen.steps.tracking import TrackedPerson, track_person
from synthgen.steps.visibility import (behind_depth, covered_by_mask, outside_frame,
                                       visibility_bitmask)
from synthgen.core.types import BackgroundClip, SurrealClip


@dataclass(frozen=True)
class RandomDraws:
    """Every random choice of one example, drawn in this order by `draw_random`.

    Attributes
    ----------
    segments_per_frame : int
        Target superpixels per frame (paper: 10..30), measured on SLIC's labels
        (`synthgen.steps.superpixels.calibrated_slic`).
    position_scale : float
        Scale of SLIC's position channels (paper: 4e-4..6e-4).
    superpixel_u : float
        Uniform [0, 1) choosing the occluder among the superpixels present.
    total_occlusion_start, total_occlusion_length : int
        Totally occluded frames ``start .. start + length - 1``; length 0 for none.
    """

    segments_per_frame: int
    position_scale: float
    superpixel_u: float
    total_occlusion_start: int
    total_occlusion_length: int


def draw_random(rng: np.random.Generator, config: Config) -> RandomDraws:
    """Draw all random choices of an example, always the same draws in the same order."""
    sp = config.superpixels
    segments = int(rng.integers(sp.segments_per_frame[0], sp.segments_per_frame[1] + 1))
    scale = float(rng.uniform(sp.position_scale[0], sp.position_scale[1]))
    u = float(rng.random())
    to = config.total_occlusion
    start, length = draw_total_occlusion(rng, config.clip.length, probability=to.probability,
                                         min_frames=to.min_frames, max_frames=to.max_frames)
    return RandomDraws(segments, scale, u, start, length)


@dataclass(frozen=True)
class Example:
    """Everything the store needs of one training example.

    Frame pixels are (x, y) in the 240x320 frame after tracking; crop pixels are (x, y) in the
    ``size`` x ``size`` crop (``synthgen.steps.crops``:
    ``crop = (frame - (x0, y0)) * size / side``).

    Attributes
    ----------
    rgb_crops : ndarray, shape (T, S, S, 3), uint8
        Composite frame t in box t. Not blanked on totally occluded frames (see
        ``synthgen.steps.total_occlusion``: the consumer zeroes inputs there).
    pair_crops : ndarray, shape (T-1, 2, S, S, 3), uint8
        Frames t and t+1 both in box t (for crop flow).
    occluder_crops : ndarray, shape (T, S, S), bool
        The occluding superpixel in box t (all False unless occluded).
    boxes : ndarray, shape (T, 3), float64
        ``(x0, y0, side)`` in frame pixels.
    joints2d : ndarray, shape (T, 24, 2), float32
        SMPL joints in frame pixels after tracking.
    joints2d_crop : ndarray, shape (T, 24, 2), float32
        Joints of frame t in box t, crop pixels.
    joints2d_pair_crop : ndarray, shape (T-1, 2, 24, 2), float32
        Joints of frames t and t+1 in box t, crop pixels (targets of pair t).
    joints3d : ndarray, shape (T, 24, 3), float32
        SMPL joints of ``pose``, ``betas`` and ``gender`` in camera metres (the body the image
        shows, :mod:`synthgen.sources.surreal`), unchanged by tracking (``synthgen.steps.tracking``).
    visibility : ndarray, shape (T, 24), uint8
        0 visible, else bits of ``synthgen.steps.visibility`` (1 outside, 2 occluder,
        4 total occlusion, 8 behind depth).
    total_occlusion : ndarray, shape (T,), bool
        Per-frame total-occlusion indicator.
    camera_offsets : ndarray, shape (T, 2), float64
        Integrated camera motion of the background, frame pixels (zeros for a static background).
    tracking_offsets : ndarray, shape (T, 2), float64
        Offsets applied to the person (``camera_offsets``, or zeros without tracking).
    pose : ndarray, shape (T, 72), float32
        SMPL axis-angle (radians) of that body, global orientation in the camera frame.
    betas : ndarray, shape (10,), float32
    gender : str
    occluder_reason : str
        ``"occluded"``, ``"missed_person"``, ``"too_few_visible"`` or ``"disabled"``.
    occluder_superpixel : int
        Candidate superpixel label (-1 when disabled).
    occluded_fraction : float
        Fraction of the person's pixels removed by the occluder.
    num_superpixels : int
        Superpixels SLIC returned over the clip (0 when disabled).
    superpixels_per_frame : float
        Mean number of superpixels per frame, measured on the labels (0 when disabled).
    slic_segments : int
        Centres per frame asked of SLIC after calibration (-1 when disabled).
    segments_per_frame : int
    position_scale : float
        The SLIC draws (recorded even when the occluder is disabled).
    provenance : dict
        Background and SURREAL sources plus the caller's fields.
    gt_crop_flow : ndarray, shape (T-1, S, S, 2), float32, or None
        Ground-truth flow of pair t (frames t and t+1 in box t), crop pixels (x, y), when the
        SURREAL clip has ground-truth flow (:func:`ground_truth_crop_flow`); for evaluation only.
    """

    rgb_crops: np.ndarray
    pair_crops: np.ndarray
    occluder_crops: np.ndarray
    boxes: np.ndarray
    joints2d: np.ndarray
    joints2d_crop: np.ndarray
    joints2d_pair_crop: np.ndarray
    joints3d: np.ndarray
    visibility: np.ndarray
    total_occlusion: np.ndarray
    camera_offsets: np.ndarray
    tracking_offsets: np.ndarray
    pose: np.ndarray
    betas: np.ndarray
    gender: str
    occluder_reason: str
    occluder_superpixel: int
    occluded_fraction: float
    num_superpixels: int
    superpixels_per_frame: float
    slic_segments: int
    segments_per_frame: int
    position_scale: float
    provenance: dict = field(default_factory=dict)
    gt_crop_flow: np.ndarray | None = None


def background_frames(background: BackgroundClip, camera_offsets: np.ndarray, *,
                      static: bool) -> tuple[np.ndarray, np.ndarray]:
    """The background frames and camera offsets, or the static-background ablation.

    Parameters
    ----------
    background : BackgroundClip
    camera_offsets : ndarray, shape (T, 2)
        Frame pixels (x, y), zero at frame T // 2.
    static : bool
        Repeat the reference frame T // 2 for all T frames, with zero camera motion.

    Returns
    -------
    frames : ndarray, shape (T, H, W, 3), uint8
    offsets : ndarray, shape (T, 2), float64
    """
    offsets = np.asarray(camera_offsets, dtype=np.float64)
    if not static:
        return background.frames, offsets
    num_frames = background.num_frames
    frames = np.broadcast_to(background.frames[num_frames // 2], background.frames.shape)
    return np.ascontiguousarray(frames), np.zeros_like(offsets)


def _check_inputs(background: BackgroundClip, camera_offsets: np.ndarray, person: SurrealClip,
                  config: Config) -> None:
    clip = config.clip
    frame_shape = (clip.length, clip.height, clip.width)
    if background.frames.shape != frame_shape + (3,):
        raise ValueError(f"background {background.path}: frames {background.frames.shape}, "
                         f"expected {frame_shape + (3,)} (config.clip)")
    if person.rgb.shape != frame_shape + (3,) or person.segm.shape != frame_shape:
        raise ValueError(f"SURREAL clip {person.path}: rgb {person.rgb.shape}, segm "
                         f"{person.segm.shape}, expected {frame_shape} frames (config.clip)")
    if camera_offsets.shape != (clip.length, 2):
        raise ValueError(f"camera_offsets {camera_offsets.shape}, expected ({clip.length}, 2)")
    if np.any(camera_offsets[clip.length // 2] != 0):
        raise ValueError(f"camera_offsets must be 0 at the reference frame {clip.length // 2}, "
                         f"got {camera_offsets[clip.length // 2]}")


@contextmanager
def _timed(timings: dict | None, name: str):
    start = time.perf_counter()
    yield
    if timings is not None:
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - start


@dataclass(frozen=True)
class ExampleLayers:
    """The frame-coordinate layers of one example, before cropping (240x320 frame pixels).

    Attributes
    ----------
    draws : RandomDraws
    frames : ndarray, shape (T, H, W, 3), uint8
        Background frames (the repeated reference frame for a static background).
    camera_offsets, tracking_offsets : ndarray, shape (T, 2), float64
        See :class:`Example`.
    tracked : synthgen.steps.tracking.TrackedPerson
        The SURREAL person translated by ``tracking_offsets``.
    superpixels : synthgen.steps.superpixels.Superpixels or None
        SLIC superpixels and their per-frame counts (None when the occluder is disabled).
    occluder : synthgen.steps.occluder.Occluder
    composited : ndarray, shape (T, H, W, 3), uint8
        The person, minus the occluder, pasted on the background.
    total_occlusion : ndarray, shape (T,), bool
    visibility : ndarray, shape (T, 24), uint8
    """

    draws: RandomDraws
    frames: np.ndarray
    camera_offsets: np.ndarray
    tracking_offsets: np.ndarray
    tracked: TrackedPerson
    superpixels: Superpixels | None
    occluder: Occluder
    composited: np.ndarray
    total_occlusion: np.ndarray
    visibility: np.ndarray

    @property
    def labels(self) -> np.ndarray | None:
        """Superpixel labels (T, H, W), None when the occluder is disabled."""
        return None if self.superpixels is None else self.superpixels.labels


def example_layers(background: BackgroundClip, camera_offsets: np.ndarray, person: SurrealClip,
                   rng: np.random.Generator, config: Config, *,
                   timings: dict[str, float] | None = None) -> ExampleLayers:
    """Steps 3-8 in frame coordinates: track, occlude, composite, total occlusion, visibility.

    Parameters and errors as :func:`make_example` (which crops these layers).
    """
    camera_offsets = np.asarray(camera_offsets, dtype=np.float64)
    _check_inputs(background, camera_offsets, person, config)
    draws = draw_random(rng, config)
    frames, camera_offsets = background_frames(background, camera_offsets,
                                               static=config.background.static)
    num_frames, height, width = frames.shape[:3]

    no_motion = np.zeros_like(camera_offsets)
    with _timed(timings, "tracking"):
        tracking_offsets = camera_offsets if config.tracking.enabled else no_motion
        tracked = track_person(person, tracking_offsets)

    with _timed(timings, "visibility"):
        outside = outside_frame(tracked.joints2d, height, width)
        behind = behind_depth(tracked.joints2d, person.joints3d, tracked.depth,
                              margin_m=config.visibility.behind_margin_m)

    superpixels = None
    if config.occluder.enabled:
        sp = config.superpixels
        with _timed(timings, "superpixels"):
            slic_offsets = camera_offsets if sp.motion_compensated else no_motion
            superpixels = calibrated_slic(frames, slic_offsets, target=draws.segments_per_frame,
                                          limits=sp.segments_per_frame,
                                          position_scale=draws.position_scale,
                                          compactness=sp.compactness, method=sp.method,
                                          downsample=sp.downsample)
        labels = superpixels.labels
        with _timed(timings, "occluder"):
            occluder = apply_occluder(labels, pick_superpixel(labels, draws.superpixel_u),
                                      tracked.segm > 0, tracked.joints2d, outside | behind,
                                      min_visible=config.occluder.min_visible)
    else:
        occluder = disabled_occluder((num_frames, height, width))

    with _timed(timings, "composite"):
        composited = composite(frames, tracked.rgb, person_mask(tracked.segm, occluder.mask))
        total = total_occlusion_indicator(num_frames, draws.total_occlusion_start,
                                          draws.total_occlusion_length)

    with _timed(timings, "visibility"):
        visibility = visibility_bitmask(outside=outside,
                                        occluded=covered_by_mask(tracked.joints2d, occluder.mask),
                                        total_occlusion=total, behind=behind)
    return ExampleLayers(draws, frames, camera_offsets, tracking_offsets, tracked, superpixels,
                         occluder, composited, total, visibility)


def ground_truth_crop_flow(layers: ExampleLayers, person_flow: np.ndarray, boxes: np.ndarray, *,
                           size: int) -> np.ndarray:
    """Ground-truth flow of the paired crops: the composited frames' flow t -> t+1 in box t.

    *Decision*: where frame t shows the (tracked, not occluded) person, the person's own flow
    (``SurrealClip.gtflow``, moved with the person by the tracking offset of frame t) plus the
    change of tracking offset; everywhere else (background and occluder, both moving with the
    scene) the change of camera offset. The background part is exact for a pure pan (the demo's
    ``pan_tissue.avi``), the translation part of the camera motion for a zoom, and wrong on a
    background object that moves by itself (its own motion is unknown). Sampled by nearest
    neighbour in crop space only (equal to composing the whole frame's flow, then cropping it).

    Parameters
    ----------
    layers : ExampleLayers
    person_flow : ndarray, shape (T, H, W, 2)
        The SURREAL clip's ground-truth flow (frame pixels, x then y, frame t to t+1 at frame t's
        pixels, before tracking).
    boxes : ndarray, shape (T, 3)
        ``(x0, y0, side)`` in frame pixels.
    size : int
        Crop side.

    Returns
    -------
    ndarray, shape (T-1, size, size, 2), float32
        Crop pixels (x, y): frame pixels times ``size / side`` (both frames of a pair share box
        t); 0 where box t leaves the frame.
    """
    camera = np.diff(layers.camera_offsets, axis=0)
    tracking = np.diff(layers.tracking_offsets, axis=0)
    visible = person_mask(layers.tracked.segm, layers.occluder.mask)
    # The person and frame masks share the flow's dtype and channel count: OpenCV's
    # nearest-neighbour warp then maps every crop pixel to the same frame pixel for all three.
    masks = np.ones(visible.shape[1:] + (2,), dtype=np.float32)
    flow = np.empty((len(camera), size, size, 2), dtype=np.float32)
    for t, box in enumerate(boxes[:len(camera)]):
        # The tracking shift (rounded half up to whole pixels, as tracking.shift_nearest) moves
        # box t's source window instead of the person's flow.
        dx, dy = (float(np.floor(float(v) + 0.5)) for v in layers.tracking_offsets[t])
        person = crop_image(np.asarray(person_flow[t], dtype=np.float32),
                            np.array([box[0] - dx, box[1] - dy, box[2]]), size=size, nearest=True)
        masks[..., 0] = visible[t]
        shown, framed = np.moveaxis(crop_image(masks, box, size=size, nearest=True) > 0, -1, 0)
        flow[t] = camera[t]
        np.copyto(flow[t], person + tracking[t], where=shown[..., None], casting="same_kind")
        flow[t][~framed] = 0
        flow[t] *= np.float32(size / box[2])
    return flow


def make_example(background: BackgroundClip, camera_offsets: np.ndarray, person: SurrealClip,
                 rng: np.random.Generator, config: Config, *,
                 provenance: Mapping[str, object] | None = None,
                 timings: dict[str, float] | None = None) -> Example:
    """Build one training example from a background clip and a SURREAL clip.

    Parameters
    ----------
    background : BackgroundClip
        T = ``config.clip.length`` frames of ``config.clip`` size.
    camera_offsets : ndarray, shape (T, 2)
        Integrated camera motion of the background in frame pixels (x, y), 0 at frame T // 2:
        content at ``x`` in that frame is at ``x + offset[t]`` in frame t.
    person : SurrealClip
        T frames of the same size.
    rng : numpy.random.Generator
        The example's own generator; consumed by `draw_random` only.
    config : Config
        Sections clip, background, tracking, superpixels, occluder, total_occlusion, visibility
        and crops are used.
    provenance : mapping, optional
        Caller's fields (seed, indices...) copied into ``Example.provenance``.
    timings : dict, optional
        If given, receives seconds per step (tracking, superpixels, occluder, composite,
        visibility, crops), for benchmarks.

    Returns
    -------
    Example

    Raises
    ------
    ValueError
        When the inputs do not have T = ``config.clip.length`` frames of the configured size, or
        the offsets are not 0 at frame T // 2.
    """
    layers = example_layers(background, camera_offsets, person, rng, config, timings=timings)
    draws, tracked, occluder = layers.draws, layers.tracked, layers.occluder
    composited = layers.composited
    with _timed(timings, "crops"):
        size = config.crops.size
        boxes = boxes_from_keypoints(tracked.joints2d, size=size,
                                     person_height=config.crops.person_height)
        joints_crop = frame_to_crop(tracked.joints2d, boxes, size=size)
        pair_joints = np.stack([tracked.joints2d[:-1], tracked.joints2d[1:]], axis=1)
        pair_joints_crop = frame_to_crop(pair_joints, boxes[:-1, None], size=size)
        rgb_crops = crop_frames(composited, boxes, size=size)
        pair_crops = crop_pairs(composited, boxes, size=size, frame_crops=rgb_crops)
        occluder_crops = crop_masks(occluder.mask, boxes, size=size)
        gt_crop_flow = None
        if person.gtflow is not None:
            gt_crop_flow = ground_truth_crop_flow(layers, person.gtflow, boxes, size=size)

    sources = {"background_path": background.path, "background_start": background.start,
               "background_crop_yx": tuple(background.crop_yx),
               "background_scale": background.scale, "surreal_path": person.path,
               "surreal_start": person.start, "surreal_sides_swapped": person.sides_swapped}
    return Example(
        rgb_crops=rgb_crops, pair_crops=pair_crops, occluder_crops=occluder_crops, boxes=boxes,
        joints2d=tracked.joints2d, joints2d_crop=joints_crop.astype(np.float32),
        joints2d_pair_crop=pair_joints_crop.astype(np.float32),
        joints3d=np.asarray(person.joints3d, dtype=np.float32), visibility=layers.visibility,
        total_occlusion=layers.total_occlusion, camera_offsets=layers.camera_offsets,
        tracking_offsets=layers.tracking_offsets,
        pose=np.asarray(person.pose, dtype=np.float32),
        betas=np.asarray(person.betas, dtype=np.float32), gender=person.gender,
        occluder_reason=occluder.reason, occluder_superpixel=occluder.superpixel,
        occluded_fraction=occluder.occluded_fraction,
        num_superpixels=0 if layers.labels is None else int(layers.labels.max()),
        superpixels_per_frame=(0.0 if layers.superpixels is None
                               else float(layers.superpixels.per_frame.mean())),
        slic_segments=-1 if layers.superpixels is None else layers.superpixels.requested,
        segments_per_frame=draws.segments_per_frame, position_scale=draws.position_scale,
        provenance={**sources, **dict(provenance or {})}, gt_crop_flow=gt_crop_flow)
