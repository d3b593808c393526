"""A user's video as evaluation-style clips: keypoints -> boxes -> crops -> crop flow.

``synthgen build-video`` (:mod:`synthgen.build.video`) writes these clips to the ``"video"``
store that ``trainer predict`` reads: it gives a video and its 2D keypoints
(:mod:`synthgen.sources.keypoints`, :mod:`synthgen.sources.detector`) and gets back, clip by clip, the
arrays a 3DPW store row holds (same names, units: ``rgb``, ``flow`` (float32, quantised by the
build), ``joints2d``, ``joints2d_crop``, ``visibility``, ``total_occlusion``,
``boxes``, ``keypoint_confidence``), made exactly as ``synthgen build-3dpw`` makes them:

* the 3DPW protocol of :mod:`synthgen.steps.detections` on the keypoints (OpenPose-18 -> SMPL
  slots, confidence threshold, total occlusions below 7 confident COCO-14 keypoints, HMR boxes
  interpolated over totally occluded frames);
* clip windows of :func:`synthgen.steps.detections.clip_windows` (every frame first covered by
  exactly one clip); *decision*: a video shorter than one clip is one clip of all its frames;
* crops and paired crops of :mod:`synthgen.steps.crops`, flow by the backend the network was
  trained with (:func:`synthgen.build.video.flow_backend` rebuilds it from a store's
  ``crop_flow`` record and refuses any other).

Frames are read clip by clip (:func:`synthgen.sources.video.iter_source_frames`), so memory holds
one clip, never the whole video.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synthgen.core.errors import EmptyInputError, FrameCountMismatchError
from synthgen.core.joints import CONFIDENCE_THRESHOLD, MIN_VISIBLE
from synthgen.sources.video import VideoInfo, iter_source_frames, probe
from synthgen.steps.crop_flow import FlowBackend
from synthgen.steps.crops import crop_frames, crop_pairs
from synthgen.sources.keypoints import VideoKeypoints
from synthgen.steps.detections import ActorTrack, actor_track, clip_windows


@dataclass(frozen=True)
class VideoPlan:
    """A video, the protocol applied to its keypoints, and its clip windows.

    Attributes
    ----------
    video : VideoInfo
    track : ActorTrack
        Over all ``video.num_frames`` frames (frame pixels, SMPL joint slots).
    starts : ndarray, shape (K,), int64
        First frame of each clip.
    first_cover : ndarray, shape (K, L), bool
        Frame ``starts[k] + i`` is first covered by clip k (each frame is once).
    crop_size : int
        Crop side in pixels.
    padded_frames : int
        Frames at the end the keypoints did not cover (treated as frames without detection).
    """

    video: VideoInfo
    track: ActorTrack
    starts: np.ndarray
    first_cover: np.ndarray
    crop_size: int
    padded_frames: int

    @property
    def clip_length(self) -> int:
        return self.first_cover.shape[1]


@dataclass(frozen=True)
class VideoClip:
    """One clip of L frames, arrays as a 3DPW store row (``synthgen.store.schema_3dpw``).

    Attributes
    ----------
    start : int
        Video frame of the clip's first frame.
    first_cover : ndarray, shape (L,), bool
    rgb : ndarray, shape (L, S, S, 3), uint8
        Frame t in box t.
    flow : ndarray, shape (L - 1, S, S, 2), float32, or None
        Frames t and t + 1 in box t, crop pixels (x, y), as the backend computed it (the build
        quantises it for the store); None when no backend was given (a network that does not
        see flow).
    joints2d : ndarray, shape (L, 24, 2), float32
        Keypoints in SMPL slots, frame pixels (x, y); 0 where none.
    joints2d_crop : ndarray, shape (L, 24, 2), float32
        Keypoints of frame t in box t, crop pixels.
    visibility : ndarray, shape (L, 24), uint8
        Hidden-reason bits of :mod:`synthgen.steps.detections` (0 = visible).
    total_occlusion : ndarray, shape (L,), bool
    boxes : ndarray, shape (L, 3), float32
        ``(x0, y0, side)`` frame pixels.
    keypoint_confidence : ndarray, shape (L, 24), float32
    """

    start: int
    first_cover: np.ndarray
    rgb: np.ndarray
    flow: np.ndarray | None
    joints2d: np.ndarray
    joints2d_crop: np.ndarray
    visibility: np.ndarray
    total_occlusion: np.ndarray
    boxes: np.ndarray
    keypoint_confidence: np.ndarray


def plan_video(video: str | Path, keypoints: VideoKeypoints, *, crop_size: int,
               person_height: float, clip_length: int,
               threshold: float = CONFIDENCE_THRESHOLD, min_visible: int = MIN_VISIBLE
               ) -> VideoPlan:
    """Apply the protocol to a video's keypoints and plan its clips.

    Parameters
    ----------
    video : str or Path
        A video file or frame folder.
    keypoints : VideoKeypoints
        One row per frame of ``video``; fewer rows are padded with frames without detection.
    crop_size, person_height
        Crop side and person height in crop pixels (the training data's).
    clip_length : int
        Frames per clip (the network's).

    Raises
    ------
    SourceError
        The video cannot be read (``synthgen.sources.video.probe``).
    FrameCountMismatchError
        More keypoint frames than video frames.
    EmptyInputError
        No frame has ``min_visible`` confident keypoints: nowhere to put a box.
    """
    info = probe(video)
    if keypoints.num_frames > info.num_frames:
        raise FrameCountMismatchError(keypoints.source, f"{keypoints.num_frames} keypoint frames "
                                                        f"for a video of {info.num_frames} frames "
                                                        f"({video})")
    padded = info.num_frames - keypoints.num_frames
    keypoints = keypoints.padded(info.num_frames)
    try:
        track = actor_track(keypoints.keypoints, keypoints.confidence, size=crop_size,
                            person_height=person_height, threshold=threshold,
                            min_visible=min_visible)
    except ValueError as exc:
        raise EmptyInputError(keypoints.source, f"no frame of {video} has {min_visible} keypoints "
                                                f"above confidence {threshold}: {exc}") from exc
    length = min(clip_length, info.num_frames)
    starts, first_cover = clip_windows(info.num_frames, length)
    return VideoPlan(info, track, starts, first_cover, crop_size, padded)


def iter_clips(plan: VideoPlan, *, backend: FlowBackend | None,
               clips: slice = slice(None)) -> Iterator[VideoClip]:
    """The clips of a plan, in order, each read, cropped and flowed on demand.

    Parameters
    ----------
    plan : VideoPlan
    backend : FlowBackend or None
        The training data's crop flow (:func:`synthgen.build.video.flow_backend`); None skips
        the flow.
    clips : slice
        Which of the plan's clips (default all; a shard's range).

    Raises
    ------
    SourceError
        A frame that does not decode.
    """
    for start, cover in zip(plan.starts[clips].tolist(), plan.first_cover[clips]):
        window = slice(start, start + plan.clip_length)
        frames = np.stack([frame for _, frame in
                           iter_source_frames(plan.video, np.arange(window.start, window.stop))])
        yield VideoClip(start=start, first_cover=cover.copy(),
                        **tracked_clip(frames, plan.track, window, size=plan.crop_size,
                                       backend=backend))


def tracked_clip(frames: np.ndarray, track: ActorTrack, window: slice, *, size: int,
                 backend: FlowBackend | None) -> dict:
    """The arrays of one clip that its frames and its actor's track give, made in this one place
    for ``synthgen build-3dpw`` and ``synthgen build-video`` (3DPW store row names).

    Parameters
    ----------
    frames : ndarray, shape (L, H, W, 3), uint8
        Frames ``window`` of the sequence or video, full resolution.
    track : ActorTrack
        The actor's protocol arrays over the whole sequence or video.
    window : slice
        The clip's frames (``L = window.stop - window.start``).
    size : int
        Crop side, pixels.
    backend : FlowBackend or None
        Crop flow of the paired crops; None leaves ``flow`` None.

    Returns
    -------
    dict
        The fields of :class:`VideoClip` from ``rgb`` to ``keypoint_confidence``, same dtypes
        and frames (flow as the backend computed it, not quantised).
    """
    part = track.window(window)
    boxes = part.boxes
    rgb = crop_frames(frames, boxes, size=size)
    return {
        "rgb": rgb,
        "flow": None if backend is None else backend.flow(
            crop_pairs(frames, boxes, size=size, frame_crops=rgb)),
        "joints2d": part.joints2d.astype(np.float32),
        "joints2d_crop": part.joints2d_crop(size=size).astype(np.float32),
        "visibility": part.visibility.copy(),
        "total_occlusion": part.total_occlusion.copy(),
        "boxes": boxes.astype(np.float32),
        "keypoint_confidence": part.confidence.astype(np.float32),
    }
