"""Offline cache of each background video's flow statistics (method step 2, computed once).

One ``.npz`` file per video in the cache directory holds, for every consecutive frame pair of the
whole video (resampled to 30 fps and resized to cover 240x320 by the Kinetics reader, uncropped),
the translation of each ``tile`` x ``tile`` block (its median flow refined at full resolution,
:func:`synthgen.steps.camera_motion.pair_tile_motion`), float16, pixels of the resized frame,
x then y, and which estimate that flow is (``estimate``: TV-L1 from the phase-correlation start,
the DIS fallback, or TV-L1 with its undetermined tiles averaged with DIS; codes in
:data:`synthgen.steps.camera_motion.ESTIMATES`) with its
reliability (fraction of pixels it explains, :func:`synthgen.steps.camera_motion.reliability`).
Any 240x320 window's camera motion is then the area-weighted median of the tiles it covers
(:func:`synthgen.build.motion.pair_motion`; the cache build and the computing live in
:mod:`synthgen.build.motion`, the format here). Measured on real clips, 16 px tiles reproduce the
window's full-resolution median to about 0.005 px (median) for about 1.2 kB per frame pair
(``benchmarks/bench_camera_motion.py``).

The file name is a hash of the video's resolved path, size and mtime (ns), every field of
:class:`~synthgen.config.CameraMotionConfig`, the clip geometry and :data:`CACHE_VERSION`: a
changed video or parameter gets a new key and is recomputed, never served stale. Files are written
to a temporary name and renamed, so a killed run never leaves a partial file; a file that cannot be
read is recomputed. ``manifest.json`` in the cache directory records the last run's skipped videos
with their reasons (written by the cache build, :mod:`synthgen.build.motion`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synthgen.config import CameraMotionConfig, ClipConfig
from synthgen.core.errors import MissingFileError, SourceError
from synthgen.core.limits import read_npz

#: Bump when what is stored or how it is computed changes: every old file then misses.
#: 2: phase-correlation start, DIS fallback, per-pair estimate and reliability.
#: 3: TV-L1 at half resolution, tile translations refined at full resolution (Lucas-Kanade).
#: 4: undetermined tiles of pairs mostly undetermined averaged with DIS (estimate "tvl1+dis").
CACHE_VERSION = 4
#: Fields that do not change what is stored (applied when reading, or batching only): not in the key.
_NOT_STORED = ("batch_pairs", "inlier_radius")



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

    def window(self, start: int, length: int) -> np.ndarray:
        """Tile medians of the pairs of frames ``start .. start+length-1``, shape (length-1, R, C, 2).

        Raises
        ------
        ValueError
            If the frames fall outside the video.
        """
        if start < 0 or length < 1 or start + length > self.num_frames:
            raise ValueError(f"{self.path}: frames {start}..{start + length - 1} outside the "
                             f"video's {self.num_frames} frames")
        return self.medians[start:start + length - 1]



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
    """Read a cache file; ``None`` (computed again) if it is absent, unreadable, of another
    version or holds infinite medians or a non-finite reliability (NaN medians are tiles without
    a match, as computed)."""
    try:
        data = read_npz(file)  # each entry at most MAX_ARRAY_BYTES, checked before it is read
        if int(data["version"]) != CACHE_VERSION:
            return None
        motion = VideoMotion(medians=data["medians"].astype(np.float32),
                             frame_shape=tuple(int(v) for v in data["frame_shape"]),
                             tile=int(data["tile"]), path=str(data["path"]),
                             estimate=data["estimate"].astype(np.uint8),
                             reliability=data["reliability"].astype(np.float32))
    except (OSError, ValueError, KeyError, TypeError, SourceError):
        return None
    sound = not np.isinf(motion.medians).any() and np.isfinite(motion.reliability).all()
    return motion if sound else None
