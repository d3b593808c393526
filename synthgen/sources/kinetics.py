"""Kinetics-style background videos: discovery, 30 fps resampling, cover-resize and 240x320 crops.

Conventions (method.md step 1)
------------------------------
Resampling
    Output frame ``i`` of the resampled clip (rate ``fps``, 30 by default) is the source frame
    nearest to time ``i / fps``, source frame ``j`` being at time ``j / source_fps``:
    ``j = floor(i * source_fps / fps + 0.5)`` (a tie goes to the later frame). The resampled video
    has every ``i`` whose ``j`` exists (:func:`num_frames_30fps`). Slower sources repeat frames,
    faster ones skip frames; a 30 fps source maps one to one.
Geometry
    Each frame is resized by ``scale = max(240 / h, 320 / w)`` so that one side matches exactly
    and the other covers (the covering side is ``round(side * scale)``, at least the target), with
    ``cv2.INTER_AREA`` when shrinking and ``cv2.INTER_LINEAR`` when enlarging; then a fixed
    240x320 window with top-left ``(y, x)`` in resized pixels is cut out of every frame.
    Cropping the frames of :func:`iter_resized_frames` gives exactly the frames of
    :func:`read_clip` (same resize code).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from synthgen.core.errors import EmptyInputError, MissingFileError, ShortClipError, Skip, SourceError
from synthgen.sources.video import (
    DEFAULT_FOLDER_FPS,
    IMAGE_EXTENSIONS,
    VIDEO_EXTENSIONS,
    VideoInfo,
    iter_source_frames,
    natural_key,
    probe,
)
from synthgen.core.types import BackgroundClip

OUTPUT_FPS = 30.0
_TIE_EPS = 1e-9


def find_videos(root: str | Path) -> tuple[list[Path], list[Skip]]:
    """Video files and frame folders under ``root`` (flat, one folder per class, or any nesting).

    A directory holding at least one ``.jpg``/``.jpeg``/``.png`` is a frame folder (one video; its
    subdirectories are not searched). Files with a video extension (``VIDEO_EXTENSIONS``, any
    case) are videos. Other files (annotations, ground-truth JSON...) and hidden entries are
    ignored. Nothing is decoded here: use :func:`probe_videos` to weed out corrupt files.

    Parameters
    ----------
    root : str or Path
        A directory, or a single file (taken as a video whatever its extension).

    Returns
    -------
    videos : list of Path
        Sorted (natural order of the full path), deterministic.
    skipped : list of Skip
        Zero-byte video files, broken symbolic links and leaf directories with nothing usable.
        A directory link back to a folder above it is not followed.

    Raises
    ------
    MissingFileError
        ``root`` does not exist.
    """
    root = Path(root)
    if not root.exists():
        raise MissingFileError(root, "no such file or directory")
    videos: list[Path] = []
    skipped: list[Skip] = []
    if root.is_file():
        _add_video_file(root, videos, skipped)
    else:
        _visit(root, videos, skipped)
        if not videos and not any(s.file == str(root) for s in skipped):
            skipped.append(Skip(root, EmptyInputError.reason, "no video files or frame folders anywhere inside"))
    key = lambda item: natural_key(str(item))  # noqa: E731
    return sorted(videos, key=key), sorted(skipped, key=lambda s: natural_key(s.file))


def _visit(folder: Path, videos: list[Path], skipped: list[Skip], seen: frozenset = frozenset()
           ) -> None:
    # ``seen``: the resolved folders above this one; a link back to one of them is not followed
    # (it would list the same videos again, ~40 times, until the path grows too long).
    seen = seen | {folder.resolve()}
    entries = sorted((e for e in folder.iterdir() if not e.name.startswith(".")), key=lambda e: natural_key(e.name))
    if any(e.is_file() and e.suffix.lower() in IMAGE_EXTENSIONS for e in entries):
        videos.append(folder)
        return
    for link in (e for e in entries if e.is_symlink() and not e.exists()):
        skipped.append(Skip(link, MissingFileError.reason,
                            f"broken symbolic link (to {os.readlink(link)})"))
    subdirs = [e for e in entries if e.is_dir() and e.resolve() not in seen]
    files = [e for e in entries if e.is_file() and e.suffix.lower() in VIDEO_EXTENSIONS]
    for f in files:
        _add_video_file(f, videos, skipped)
    for d in subdirs:
        _visit(d, videos, skipped, seen)
    if not subdirs and not files:
        skipped.append(Skip(folder, EmptyInputError.reason, "directory holds no video files or frame images"))


def _add_video_file(path: Path, videos: list[Path], skipped: list[Skip]) -> None:
    if path.stat().st_size == 0:
        skipped.append(Skip(path, EmptyInputError.reason, "zero-byte file"))
    else:
        videos.append(path)


def probe_videos(paths, *, min_frames: int = 0, fps: float = OUTPUT_FPS,
                 folder_fps: float = DEFAULT_FOLDER_FPS) -> tuple[list[VideoInfo], list[Skip]]:
    """Probe many videos, keeping the usable ones and collecting the others with a reason.

    Parameters
    ----------
    paths : iterable of str or Path
        E.g. the ``videos`` of :func:`find_videos`.
    min_frames : int
        Videos with fewer frames than this after resampling to ``fps`` are skipped (``too_short``).
    fps, folder_fps : float
        Output frame rate; frame rate of frame folders.

    Returns
    -------
    infos : list of VideoInfo
        In input order.
    skipped : list of Skip
        Each video that cannot be used.
    """
    infos, skipped = [], []
    for path in paths:
        try:
            info = probe(path, folder_fps=folder_fps)
        except SourceError as err:
            skipped.append(Skip.of(err))
            continue
        available = num_frames_30fps(info, fps=fps)
        if available < min_frames:
            skipped.append(Skip(path, ShortClipError.reason, f"{available} frames at {fps:g} fps, "
                                                             f"fewer than {min_frames}"))
        else:
            infos.append(info)
    return infos, skipped


def source_index(out_index, source_fps: float, *, fps: float = OUTPUT_FPS) -> np.ndarray:
    """Source frame shown at each output frame: the one nearest in time (ties: the later one).

    Parameters
    ----------
    out_index : int or array_like of int
        Frame indices of the clip resampled to ``fps``.
    source_fps : float
        The source's frame rate.
    fps : float
        Output frame rate.

    Returns
    -------
    ndarray of int64, same shape as ``out_index``
        ``floor(out_index * source_fps / fps + 0.5)``.
    """
    out_index = np.asarray(out_index, dtype=np.float64)
    return np.floor(out_index * source_fps / fps + 0.5 + _TIE_EPS).astype(np.int64)


def num_frames_30fps(info: VideoInfo, *, fps: float = OUTPUT_FPS) -> int:
    """Frames of the video resampled to ``fps``: the output frames whose nearest source frame exists."""
    n = max(0, math.ceil((info.num_frames - 0.5) * fps / info.fps))
    while source_index(n, info.fps, fps=fps) <= info.num_frames - 1:
        n += 1
    while n > 0 and source_index(n - 1, info.fps, fps=fps) > info.num_frames - 1:
        n -= 1
    return n


def cover_size(height: int, width: int, *, out_height: int = 240, out_width: int = 320) -> tuple[int, int, float]:
    """Size of a frame resized to cover ``out_height`` x ``out_width`` with one side matching exactly.

    Returns
    -------
    resized_height, resized_width : int
    scale : float
        ``max(out_height / height, out_width / width)`` (the nominal factor; the covering side is
        rounded to whole pixels, so its exact factor is ``resized / original``).
    """
    sy, sx = out_height / height, out_width / width
    if sy >= sx:
        return out_height, max(out_width, round(width * sy)), sy
    return max(out_height, round(height * sx)), out_width, sx


def resize_to_cover(frame: np.ndarray, *, out_height: int = 240, out_width: int = 320) -> np.ndarray:
    """Resize one frame (H, W, C) as :func:`cover_size` says (INTER_AREA to shrink, INTER_LINEAR to enlarge)."""
    rh, rw, scale = cover_size(frame.shape[0], frame.shape[1], out_height=out_height, out_width=out_width)
    if (rh, rw) == frame.shape[:2]:
        return frame
    interpolation = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
    return cv2.resize(frame, (rw, rh), interpolation=interpolation)


def choose_crop(resized_hw: tuple[int, int], *, crop_yx: tuple[int, int] | None = None,
                rng: np.random.Generator | None = None, height: int = 240, width: int = 320) -> tuple[int, int]:
    """Top-left ``(y, x)`` of the ``height`` x ``width`` window in a frame of size ``resized_hw``.

    ``crop_yx`` if given (checked to fit); else uniform over all windows drawn from ``rng``; else
    the centred window (``(rh - height) // 2, (rw - width) // 2``).
    """
    rh, rw = resized_hw
    if crop_yx is not None:
        y, x = int(crop_yx[0]), int(crop_yx[1])
        if not (0 <= y <= rh - height and 0 <= x <= rw - width):
            raise ValueError(f"crop_yx {(y, x)} does not fit a {height}x{width} window in {rh}x{rw} resized frames")
        return y, x
    if rng is not None:
        return int(rng.integers(0, rh - height + 1)), int(rng.integers(0, rw - width + 1))
    return (rh - height) // 2, (rw - width) // 2


def _frames(info: VideoInfo, indices: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """:func:`iter_source_frames`, blaming a frame image that does not decode on its folder.

    A frame folder is one video: its bad frame makes the whole video unusable, so the error names
    the folder (``exc.path``; the frame is in the detail) and the build skips that video.
    """
    try:
        yield from iter_source_frames(info, indices)
    except SourceError as exc:
        if exc.path == info.path:
            raise
        raise type(exc)(info.path, f"frame {Path(exc.path).name}: {exc.detail}") from None


def read_clip(path: str | Path, *, start: int, length: int, crop_yx: tuple[int, int] | None = None,
              rng: np.random.Generator | None = None, fps: float = OUTPUT_FPS, height: int = 240,
              width: int = 320, info: VideoInfo | None = None,
              folder_fps: float = DEFAULT_FOLDER_FPS) -> BackgroundClip:
    """A window of ``length`` frames of a video resampled to ``fps``, resized to cover and cropped.

    Only the needed span of source frames is decoded (verified seek, see ``synthgen.sources.video``).

    Parameters
    ----------
    path : str or Path
        Video file or frame folder.
    start : int
        First frame, as an index into the video resampled to ``fps``.
    length : int
        Number of frames T.
    crop_yx : (int, int), optional
        Top-left (y, x) of the window in resized pixels; default random from ``rng``, else centred.
    rng : numpy.random.Generator, optional
        Draws the crop when ``crop_yx`` is None.
    fps : float
        Output frame rate (SURREAL's 30).
    height, width : int
        Output frame size in pixels.
    info : VideoInfo, optional
        A previous :func:`probe` result (saves probing again).
    folder_fps : float
        Frame rate of a frame folder.

    Returns
    -------
    BackgroundClip
        ``frames`` (T, height, width, 3) uint8 RGB.

    Raises
    ------
    ShortClipError
        Fewer than ``start + length`` frames after resampling.
    SourceError
        Any error of :func:`probe` or a frame that does not decode (for a frame folder, the
        error's path is the folder).
    """
    if start < 0 or length < 1:
        raise ValueError(f"need start >= 0 and length >= 1, got start={start}, length={length}")
    info = probe(path, folder_fps=folder_fps) if info is None else info
    available = num_frames_30fps(info, fps=fps)
    if start + length > available:
        raise ShortClipError(info.path, f"{available} frames available at {fps:g} fps, asked for {length} "
                                        f"from frame {start} (up to frame {start + length - 1})")
    rh, rw, scale = cover_size(info.height, info.width, out_height=height, out_width=width)
    y, x = choose_crop((rh, rw), crop_yx=crop_yx, rng=rng, height=height, width=width)
    indices = source_index(np.arange(start, start + length), info.fps, fps=fps)
    out = np.empty((length, height, width, 3), dtype=np.uint8)
    last = -1
    for t, (index, frame) in enumerate(_frames(info, indices)):
        if index != last:
            crop = resize_to_cover(frame, out_height=height, out_width=width)[y:y + height, x:x + width]
            last = index
        out[t] = crop
    return BackgroundClip(frames=out, path=info.path, start=int(start), crop_yx=(y, x), scale=float(scale))


def iter_resized_frames(path: str | Path, *, fps: float = OUTPUT_FPS, height: int = 240, width: int = 320,
                        info: VideoInfo | None = None,
                        folder_fps: float = DEFAULT_FOLDER_FPS) -> Iterator[np.ndarray]:
    """Every frame of the video resampled to ``fps`` and resized to cover ``height`` x ``width``,
    NOT cropped, one at a time (memory stays flat).

    Yields
    ------
    frame : ndarray, shape (rh, rw, 3), uint8, RGB
        ``(rh, rw)`` from :func:`cover_size`; frame ``i`` of the resampled video, for ``i`` in
        ``range(num_frames_30fps(info))``. A repeated source frame is yielded as the same array:
        do not modify frames in place.
    """
    info = probe(path, folder_fps=folder_fps) if info is None else info
    indices = source_index(np.arange(num_frames_30fps(info, fps=fps)), info.fps, fps=fps)
    last, resized = -1, None
    for index, frame in _frames(info, indices):
        if index != last:
            resized, last = resize_to_cover(frame, out_height=height, out_width=width), index
        yield resized
