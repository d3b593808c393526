"""Offline cache of each background video's flow statistics (method step 2, computed once).

One ``.npz`` file per video in the cache directory holds, for every consecutive frame pair of the
whole video (resampled to 30 fps and resized to cover 240x320 by the Kinetics reader, uncropped),
the translation of each ``tile`` x ``tile`` block (its median flow refined at full resolution,
:func:`synthgen.steps.camera_motion.pair_tile_motion`), float16, pixels of the resized frame,
x then y, and which estimate that flow is (``estimate``: TV-L1 from the phase-correlation start,
or the DIS fallback; codes in :data:`synthgen.steps.camera_motion.ESTIMATES`) with its
reliability (fraction of pixels it explains, :func:`synthgen.steps.camera_motion.reliability`).
Any 240x320 window's camera motion is then the area-weighted median of the tiles it covers
(:meth:`VideoMotion.pair_motion`). Measured on real clips, 16 px tiles reproduce the window's
full-resolution median to about 0.005 px (median) for about 1.2 kB per frame pair
(``benchmarks/bench_camera_motion.py``).

The file name is a hash of the video's resolved path, size and mtime (ns), every field of
:class:`~synthgen.config.CameraMotionConfig`, the clip geometry and :data:`CACHE_VERSION`: a
changed video or parameter gets a new key and is recomputed, never served stale. Files are written
to a temporary name and renamed, so a killed run never leaves a partial file; a file that cannot be
read is recomputed. ``manifest.json`` in the cache directory records the last run's skipped videos
with their reasons.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synthgen.config import CameraMotionConfig, ClipConfig
from synthgen.core.errors import MissingFileError, ShortClipError, SourceError
from synthgen.steps.camera_motion import pair_tile_motion, tile_weights, window_camera_motion

#: Bump when what is stored or how it is computed changes: every old file then misses.
#: 2: phase-correlation start, DIS fallback, per-pair estimate and reliability.
#: 3: TV-L1 at half resolution, tile translations refined at full resolution (Lucas-Kanade).
CACHE_VERSION = 3
MANIFEST = "manifest.json"
#: Fields that do not change what is stored (applied when reading, or batching only): not in the key.
_NOT_STORED = ("batch_pairs", "inlier_radius")

#: ``frames_fn(path)`` -> iterator of (H, W, 3) uint8 RGB frames at 30 fps, resized to cover the
#: clip size, uncropped (the Kinetics reader's streaming generator).
FramesFn = Callable[[str], Iterable[np.ndarray]]


@dataclass(frozen=True)
class VideoMotion:
    """Cached flow statistics of one video.

    Attributes
    ----------
    medians : ndarray, shape (P, R, C, 2), float32 (values rounded to float16, as stored)
        Per-tile translation (refined median flow) of the P = N-1 consecutive frame pairs of the
        video's N frames (30 fps), resized-frame pixels, x then y (pair t: frame t to frame t+1);
        NaN for a tile none of whose pixels has its match inside the next frame (left out of
        window medians).
    frame_shape : tuple of int
        (H, W) of the resized frames the tiles cover.
    tile : int
        Tile side, pixels.
    path : str
        The video.
    estimate : ndarray, shape (P,), uint8
        Which flow each pair's medians come from (index into
        :data:`synthgen.steps.camera_motion.ESTIMATES`).
    reliability : ndarray, shape (P,), float32 (rounded to float16, as stored)
        Fraction of the frame's pixels that flow explains, 0..1.
    """

    medians: np.ndarray
    frame_shape: tuple[int, int]
    tile: int
    path: str
    estimate: np.ndarray
    reliability: np.ndarray

    @property
    def num_frames(self) -> int:
        return int(self.medians.shape[0]) + 1

    def pair_motion(self, *, start: int, length: int, crop_yx: tuple[int, int],
                    crop_shape: tuple[int, int] = (240, 320),
                    inlier_radius: float) -> np.ndarray:
        """Camera motion of frames ``start .. start+length-1`` inside one crop window.

        Parameters
        ----------
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
        if start < 0 or length < 1 or start + length > self.num_frames:
            raise ValueError(f"{self.path}: frames {start}..{start + length - 1} outside the "
                             f"video's {self.num_frames} frames")
        weights = tile_weights(self.frame_shape, crop_yx, crop_shape, tile=self.tile)
        return window_camera_motion(self.medians[start:start + length - 1], weights,
                                    inlier_radius=inlier_radius)


def cache_key(video: str | Path, cfg: CameraMotionConfig, clip: ClipConfig) -> str:
    """Hex key of a video's identity and every parameter.

    The identity is the resolved path with the file's size and mtime, or for a frame folder the
    name, size and mtime of every frame image (so a frame replaced, added or removed in place
    changes the key; the folder's own mtime does not see a file rewritten in place).

    Raises
    ------
    synthgen.core.errors.MissingFileError
        If the video does not exist.
    """
    from synthgen.sources.video import frame_files

    path = Path(video).resolve()
    try:
        stat = path.stat()
        files = ([(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in frame_files(path)]
                 if path.is_dir() else None)
    except FileNotFoundError:
        raise MissingFileError(path, "video not found") from None
    identity = {"path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
                **({"frames": files} if files is not None else {}),
                "camera_motion": {k: v for k, v in dataclasses.asdict(cfg).items()
                                  if k not in _NOT_STORED},
                "height": clip.height,
                "width": clip.width, "fps": clip.fps, "version": CACHE_VERSION}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:24]


def cache_file(cache_dir: str | Path, video: str | Path, cfg: CameraMotionConfig,
               clip: ClipConfig) -> Path:
    """The cache file of ``video`` under these parameters: ``<cache_dir>/<stem>-<key>.npz``."""
    return Path(cache_dir) / f"{Path(video).stem}-{cache_key(video, cfg, clip)}.npz"


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


def save(motion: VideoMotion, file: str | Path) -> None:
    """Write ``motion`` to ``file`` atomically (temporary file in the same directory, then rename)."""
    file = Path(file)
    file.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=file.parent, prefix=f".{file.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, medians=motion.medians.astype(np.float16),
                                frame_shape=np.asarray(motion.frame_shape), tile=motion.tile,
                                path=motion.path, version=CACHE_VERSION,
                                estimate=motion.estimate.astype(np.uint8),
                                reliability=motion.reliability.astype(np.float16))
        os.chmod(tmp, 0o644)
        os.replace(tmp, file)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(file: str | Path) -> VideoMotion | None:
    """Read a cache file; ``None`` if it is absent, unreadable or of another version."""
    try:
        with np.load(file) as data:
            if int(data["version"]) != CACHE_VERSION:
                return None
            return VideoMotion(medians=data["medians"].astype(np.float32),
                               frame_shape=tuple(int(v) for v in data["frame_shape"]),
                               tile=int(data["tile"]), path=str(data["path"]),
                               estimate=data["estimate"].astype(np.uint8),
                               reliability=data["reliability"].astype(np.float32))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None


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
    skipped: list[dict]
    seconds: float = 0.0


def _cache_task(args: tuple) -> tuple[str, str, str]:
    """Ray task: ``("cached" | "computed" | "skipped", reason, detail)`` for one video."""
    video, cache_dir, cfg, clip = args
    try:
        if load(cache_file(cache_dir, video, cfg, clip)) is not None:
            return "cached", "", ""
        load_or_compute(video, cache_dir, cfg=cfg, clip=clip)
        return "computed", "", ""
    except SourceError as exc:
        return "skipped", exc.reason, exc.detail


def build_cache(videos: Iterable[str | Path], cache_dir: str | Path, *, cfg: CameraMotionConfig,
                clip: ClipConfig, skipped: Iterable[tuple[str, str]] = (),
                address: str | None = None, num_cpus: int | None = None, serial: bool = False,
                progress_stream=None) -> CacheRun:
    """Fill the cache for every video, in parallel over videos (Ray), with a progress line.

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
    skipped : iterable of (path, reason)
        Inputs already rejected by discovery, recorded in the manifest.
    address, num_cpus, serial
        See :func:`synthgen.parallel.ray_map`.
    progress_stream : file-like, optional
        Where the progress line goes (default stderr).
    """
    import time

    from synthgen.parallel import TaskFailure, ray_map

    start = time.monotonic()
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    videos = [str(v) for v in videos]
    run = CacheRun(computed=[], cached=[], skipped=[
        {"path": str(p), "reason": r, "detail": ""} for p, r in skipped])
    tasks = [(v, str(cache_dir), cfg, clip) for v in videos]
    for index, result in ray_map(_cache_task, tasks, address=address, num_cpus=num_cpus,
                                 desc="videos", serial=serial, progress_stream=progress_stream):
        if isinstance(result, TaskFailure):
            result = ("skipped", "error", result.error)
        status, reason, detail = result
        if status == "skipped":
            run.skipped.append({"path": videos[index], "reason": reason, "detail": detail})
        else:
            getattr(run, status).append(videos[index])
    run = dataclasses.replace(run, seconds=time.monotonic() - start)
    manifest = {"version": CACHE_VERSION, "camera_motion": dataclasses.asdict(cfg),
                "computed": len(run.computed), "cached": len(run.cached), "skipped": run.skipped}
    fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=".manifest.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(manifest, f, indent=1)
    os.replace(tmp, cache_dir / MANIFEST)
    return run
