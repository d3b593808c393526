"""The camera-motion cache build (method step 2, computed once per video): a job of the build.

Computes every background video's tile translations (:func:`compute_video_motion`, through
:func:`synthgen.steps.camera_motion.pair_tile_motion`) and stores them in the cache format of
:mod:`synthgen.sources.motion_cache`, one executor task per video (:func:`build_cache`), with a
progress line and a :class:`~synthgen.core.errors.Skip` per unusable video in
``<cache_dir>/manifest.json``. :func:`pair_motion` turns a cached video into one window's camera
motion.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synthgen.build.executor import Executor, SerialExecutor, TaskFailure
from synthgen.config import CameraMotionConfig, ClipConfig
from synthgen.core.errors import ShortClipError, Skip, SourceError
from synthgen.sources.motion_cache import CACHE_VERSION, VideoMotion, cache_file, load, save
from synthgen.steps.camera_motion import pair_tile_motion, tile_weights, window_camera_motion

#: The cache build's record of its last run, in the cache directory.
MANIFEST = "manifest.json"

#: ``frames_fn(path)`` -> iterator of (H, W, 3) uint8 RGB frames at 30 fps, resized to cover the
#: clip size, uncropped (the Kinetics reader's streaming generator).
FramesFn = Callable[[str], Iterable[np.ndarray]]


def pair_motion(motion: VideoMotion, *, start: int, length: int, crop_yx: tuple[int, int],
                crop_shape: tuple[int, int] = (240, 320), inlier_radius: float) -> np.ndarray:
    """Camera motion of frames ``start .. start+length-1`` of a cached video inside one window:
    the area-weighted median of the tiles the window covers.

    Parameters
    ----------
    motion : VideoMotion
        The video's cached statistics.
    start : int
        First frame (30 fps index, as ``BackgroundClip.start``).
    length : int
        T, frames in the clip.
    crop_yx : (int, int)
        Top-left (y, x) of the window in resized-frame pixels (``BackgroundClip.crop_yx``).
    crop_shape : (int, int)
        Window (height, width), pixels.
    inlier_radius : float
        See :func:`synthgen.steps.camera_motion.camera_motion` (``CameraMotionConfig``'s).

    Returns
    -------
    pair_motion : ndarray, shape (T-1, 2), float64
        Motion of each pair in the window, pixels, x then y (integrate with
        :func:`synthgen.steps.camera_motion.integrate_camera_motion`).

    Raises
    ------
    ValueError
        If the frames or the window fall outside the video.
    """
    medians = motion.window(start, length)
    weights = tile_weights(motion.frame_shape, crop_yx, crop_shape, tile=motion.tile)
    return window_camera_motion(medians, weights, inlier_radius=inlier_radius)


def compute_video_motion(frames: Iterable[np.ndarray], cfg: CameraMotionConfig, *,
                         path: str = "") -> VideoMotion:
    """Per-tile motion of every consecutive pair of a frame stream (:func:`~synthgen.steps.
    camera_motion.pair_tile_motion`), with each pair's estimate and reliability.

    Frames are processed ``cfg.batch_pairs`` pairs at a time, so memory stays bounded however long
    the video.

    Parameters
    ----------
    frames : iterable of ndarray, shape (H, W, 3), uint8
        All frames of the video in order (30 fps, resized, uncropped).
    cfg : CameraMotionConfig
        TV-L1 and tile parameters.
    path : str
        The video, for messages and the result.

    Raises
    ------
    synthgen.core.errors.ShortClipError
        If the stream has fewer than 2 frames.
    """
    medians, estimates, reliabilities = [], [], []
    chunk: list[np.ndarray] = []
    for frame in frames:
        chunk.append(frame)
        if len(chunk) == cfg.batch_pairs + 1:
            _add_chunk(chunk, cfg, medians, estimates, reliabilities)
            chunk = chunk[-1:]
    if len(chunk) > 1:
        _add_chunk(chunk, cfg, medians, estimates, reliabilities)
    if not medians:
        raise ShortClipError(path, "fewer than 2 frames: no frame pair for camera motion")
    # Rounded to the stored float16 now, so a fresh result equals what the cache serves later.
    return VideoMotion(medians=_as_stored(np.stack(medians)), frame_shape=tuple(chunk[-1].shape[:2]),
                       tile=cfg.tile, path=str(path), estimate=np.concatenate(estimates),
                       reliability=_as_stored(np.concatenate(reliabilities)))


def _add_chunk(chunk: list[np.ndarray], cfg: CameraMotionConfig, medians: list,
               estimates: list, reliabilities: list) -> None:
    frames = np.stack(chunk)
    motion = pair_tile_motion(frames[:-1], frames[1:], cfg)
    medians.extend(motion.medians)
    estimates.append(motion.estimate)
    reliabilities.append(motion.reliability)


def _as_stored(values: np.ndarray) -> np.ndarray:
    return values.astype(np.float16).astype(np.float32)


def load_or_compute(video: str | Path, cache_dir: str | Path, *, cfg: CameraMotionConfig,
                    clip: ClipConfig, frames_fn: FramesFn | None = None) -> VideoMotion:
    """The video's cached motion statistics, computing and saving them on a miss.

    Parameters
    ----------
    video : str or Path
        Background video (or frame folder) the Kinetics reader accepts.
    cache_dir : str or Path
        Cache directory (created if needed).
    cfg, clip
        Camera-motion parameters and clip geometry (both part of the key).
    frames_fn : callable, optional
        ``frames_fn(path)`` -> all frames at 30 fps, resized, uncropped; default the Kinetics
        reader's stream.

    Raises
    ------
    synthgen.core.errors.SourceError
        If the video is missing, corrupt or too short (from the reader).
    """
    file = cache_file(cache_dir, video, cfg, clip)
    cached = load(file)
    if cached is not None:
        return cached
    frames_fn = frames_fn or _kinetics_frames(clip)
    motion = compute_video_motion(frames_fn(str(video)), cfg, path=str(video))
    save(motion, file)
    return motion


def _kinetics_frames(clip: ClipConfig) -> FramesFn:
    from functools import partial

    from synthgen.sources.kinetics import iter_resized_frames
    return partial(iter_resized_frames, fps=clip.fps, height=clip.height, width=clip.width)


@dataclass(frozen=True)
class CacheRun:
    """Summary of :func:`build_cache`: paths computed now, already cached, and skipped with reason."""

    computed: list[str]
    cached: list[str]
    skipped: list[Skip]
    seconds: float = 0.0


def _cache_task(args: tuple) -> str | Skip:
    """Executor task: ``"cached"``, ``"computed"`` or the video's :class:`Skip`."""
    video, cache_dir, cfg, clip = args
    try:
        if load(cache_file(cache_dir, video, cfg, clip)) is not None:
            return "cached"
        load_or_compute(video, cache_dir, cfg=cfg, clip=clip)
        return "computed"
    except SourceError as exc:
        return Skip.of(exc)


def build_cache(videos: Iterable[str | Path], cache_dir: str | Path, *, cfg: CameraMotionConfig,
                clip: ClipConfig, skipped: Iterable[Skip] = (), executor: Executor | None = None,
                progress_stream=None) -> CacheRun:
    """Fill the cache for every video, one executor task per video, with a progress line.

    A video that cannot be read is skipped with its reason and the run goes on; the skipped list
    (those of discovery, ``skipped``, included) is written to ``<cache_dir>/manifest.json``.

    Parameters
    ----------
    videos : iterable of str or Path
        Videos to process.
    cache_dir : str or Path
        Cache directory (created if needed).
    cfg, clip
        Camera-motion parameters and clip geometry.
    skipped : iterable of Skip
        Inputs already rejected by discovery, recorded in the manifest.
    executor : Executor, optional
        Where the tasks run (default :class:`~synthgen.build.executor.SerialExecutor`).
    progress_stream : file-like, optional
        Where the progress line goes (default stderr).
    """
    start = time.monotonic()
    executor = executor or SerialExecutor()
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    videos = [str(v) for v in videos]
    run = CacheRun(computed=[], cached=[], skipped=list(skipped))
    tasks = [(v, str(cache_dir), cfg, clip) for v in videos]
    for index, result in executor.map(_cache_task, tasks, desc="videos",
                                      progress_stream=progress_stream):
        if isinstance(result, TaskFailure):
            result = Skip(videos[index], "error", result.error)
        if isinstance(result, Skip):
            run.skipped.append(result)
        else:
            getattr(run, result).append(videos[index])
    run = dataclasses.replace(run, seconds=time.monotonic() - start)
    manifest = {"version": CACHE_VERSION, "camera_motion": dataclasses.asdict(cfg),
                "computed": len(run.computed), "cached": len(run.cached),
                "skipped": [s.to_dict() for s in run.skipped]}
    fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=".manifest.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(manifest, f, indent=1)
    os.replace(tmp, cache_dir / MANIFEST)
    return run
