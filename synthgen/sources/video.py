"""Low-level video decoding with OpenCV: probe a video file or frame folder, iterate its frames.

Frames are indexed in *decode order* (source frame ``j`` = the ``j``-th frame the decoder returns,
0-based); their time is taken as ``j / fps`` (constant frame rate). A *frame folder* is a directory
of ``.jpg``/``.jpeg``/``.png`` images (``img_00001.jpg``...), read in natural sort order, with a frame
rate given by the caller (30 fps by default).

Seeking: for a video file, :func:`iter_source_frames` jumps to the first wanted frame with
``CAP_PROP_POS_FRAMES`` and checks where it landed (the reported position and the timestamp of the
first decoded frame). If the landing is inexact (variable frame rate, broken index) it reopens the
file and decodes forward from frame 0, so the returned frames are always those a full decode gives.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from synthgen.core.errors import (
    CorruptFileError,
    EmptyInputError,
    MissingFileError,
    NoVideoStreamError,
)

VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".webm", ".mkv", ".avi", ".mov", ".flv", ".mpg", ".mpeg", ".wmv", ".3gp", ".ogv", ".ts"}
)
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png"})
DEFAULT_FOLDER_FPS = 30.0
# Bytes scanned for container headers when telling "no video stream" from "corrupt".
_SNIFF_BYTES = 1 << 16


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe` found out about a video file or frame folder.

    Attributes
    ----------
    path : str
        The video file or frame folder.
    fps : float
        Frames per second (the container's figure; the caller's ``folder_fps`` for a frame folder).
    num_frames : int
        Frames that actually decode (verified by reading the last one; see :func:`probe`).
    width, height : int
        Frame size in source pixels.
    claimed_frames : int
        The container's own frame count (may be an estimate; equals ``num_frames`` for folders).
    is_folder : bool
        Whether ``path`` is a frame folder.
    """

    path: str
    fps: float
    num_frames: int
    width: int
    height: int
    claimed_frames: int
    is_folder: bool = False


def natural_key(name: str) -> tuple:
    """Sort key that orders ``img_2`` before ``img_10`` (digit runs compared as integers)."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


def frame_files(folder: Path) -> list[Path]:
    """Image files of a frame folder in natural sort order (hidden files ignored)."""
    files = [p for p in folder.iterdir()
             if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")]
    return sorted(files, key=lambda p: natural_key(p.name))


def open_capture(path: str | Path, *, threads: int | None = None) -> cv2.VideoCapture:
    """Open a video file with OpenCV's FFmpeg backend (``threads``: decoder threads, None = OpenCV's
    default). The caller checks ``isOpened()``."""
    params = [] if threads is None else [cv2.CAP_PROP_N_THREADS, int(threads)]
    return cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, params)


def probe(path: str | Path, *, folder_fps: float = DEFAULT_FOLDER_FPS) -> VideoInfo:
    """Frame rate, verified frame count and size of a video file or frame folder.

    For a video file the container's frame count is checked by seeking to its last frame and
    reading it, then reading one more: if either disagrees, the frames are counted by decoding
    the whole file (``grab`` only), so ``num_frames`` is the number of frames that decode.

    Parameters
    ----------
    path : str or Path
        Video file or frame folder.
    folder_fps : float
        Frame rate assigned to a frame folder.

    Returns
    -------
    VideoInfo

    Raises
    ------
    MissingFileError
        ``path`` does not exist.
    EmptyInputError
        Zero-byte file, or a folder without images.
    NoVideoStreamError
        A media container without a video track (e.g. audio only).
    CorruptFileError
        Anything that is not a decodable video (truncated, garbage, not a container).
    """
    path = Path(path)
    if not path.exists():
        raise MissingFileError(path, "no such file or directory")
    if path.is_dir():
        return _probe_folder(path, folder_fps)
    if path.stat().st_size == 0:
        raise EmptyInputError(path, "zero-byte file")
    cap = open_capture(path)
    try:
        if not cap.isOpened():
            _raise_unopenable(path)
        fps = float(cap.get(cv2.CAP_PROP_FPS))
        claimed = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        ok, first = cap.read()
        if not ok:
            raise CorruptFileError(path, "the container opens but no frame decodes")
        if not math.isfinite(fps) or fps <= 0:
            raise CorruptFileError(path, f"invalid frame rate {fps!r} in the container")
        height, width = first.shape[:2]  # decoded size (after any rotation metadata is applied)
        num_frames = claimed if claimed > 0 and _last_frame_is(cap, claimed - 1) else None
    finally:
        cap.release()
    if num_frames is None:
        num_frames = _count_by_decoding(path)
    return VideoInfo(str(path), fps, num_frames, width, height, claimed_frames=max(claimed, 0))


def _last_frame_is(cap: cv2.VideoCapture, index: int) -> bool:
    """Whether frame ``index`` decodes and frame ``index + 1`` does not."""
    if index == 0:
        cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
    elif not cap.set(cv2.CAP_PROP_POS_FRAMES, index) or int(cap.get(cv2.CAP_PROP_POS_FRAMES)) != index:
        return False
    return cap.grab() and not cap.grab()


def _count_by_decoding(path: Path) -> int:
    cap = open_capture(path)
    try:
        count = 0
        while cap.grab():
            count += 1
    finally:
        cap.release()
    if count == 0:
        raise CorruptFileError(path, "no frame decodes")
    return count


def _probe_folder(folder: Path, folder_fps: float) -> VideoInfo:
    files = frame_files(folder)
    if not files:
        raise EmptyInputError(folder, "directory holds no .jpg/.jpeg/.png frames")
    first = read_image(files[0])
    return VideoInfo(str(folder), float(folder_fps), len(files), int(first.shape[1]), int(first.shape[0]),
                     claimed_frames=len(files), is_folder=True)


def read_image(path: Path) -> np.ndarray:
    """One frame image as RGB uint8, shape (H, W, 3) (grey images are expanded to 3 channels).

    Raises
    ------
    EmptyInputError, CorruptFileError
        Zero-byte or undecodable image.
    """
    if path.stat().st_size == 0:
        raise EmptyInputError(path, "zero-byte frame image")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise CorruptFileError(path, "frame image does not decode")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _raise_unopenable(path: Path) -> None:
    """Tell apart a media file without a video track from a corrupt or non-media file."""
    with open(path, "rb") as f:
        head = f.read(_SNIFF_BYTES)
    kind = _container_kind(head)
    if kind is None:
        raise CorruptFileError(path, f"not a video: content is no known media container (starts {head[:12]!r})")
    if kind == "audio":
        raise NoVideoStreamError(path, "an audio-only media file")
    if kind == "mp4":
        if b"moov" not in head and not _tail_has(path, b"moov"):
            raise CorruptFileError(path, "MP4/MOV without its 'moov' index: probably truncated")
        if not _file_has(path, b"vide"):
            raise NoVideoStreamError(path, "MP4/MOV container without a video track")
    if kind == "matroska" and b"\x83\x81\x01" not in head:
        raise NoVideoStreamError(path, "Matroska/WebM container without a video track")
    if kind == "avi" and b"vids" not in head:
        raise NoVideoStreamError(path, "AVI container without a video stream")
    raise CorruptFileError(path, f"{kind} container that FFmpeg cannot open (truncated or damaged)")


def _container_kind(head: bytes) -> str | None:
    if head[4:8] == b"ftyp":
        return "mp4"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "matroska"
    if head[:4] == b"RIFF":
        return {b"AVI ": "avi", b"WAVE": "audio"}.get(head[8:12], None)
    if head[:3] == b"ID3" or head[:4] in (b"fLaC", b"OggS") or head[:2] in (b"\xff\xfb", b"\xff\xf3"):
        return "audio"
    if head[:3] == b"FLV" or head[:4] == b"\x00\x00\x01\xba" or head[:1] == b"\x47":
        return "stream"
    return None


def _tail_has(path: Path, marker: bytes) -> bool:
    with open(path, "rb") as f:
        f.seek(0, 2)
        size = f.tell()
        f.seek(max(0, size - _SNIFF_BYTES))
        return marker in f.read()


def _file_has(path: Path, marker: bytes) -> bool:
    return marker in path.read_bytes()


def iter_source_frames(info: VideoInfo, indices: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """Decode the source frames at ``indices`` (sorted, may repeat), yielding ``(index, rgb)``.

    Only the span ``indices[0] .. indices[-1]`` is decoded (after a verified seek); frames in
    between that are not wanted are grabbed without colour conversion. A repeated index is yielded
    once per occurrence (the same array object).

    Parameters
    ----------
    info : VideoInfo
        From :func:`probe`.
    indices : ndarray of int, shape (K,)
        Non-decreasing source frame indices in ``[0, info.num_frames)``.

    Yields
    ------
    index : int
    frame : ndarray, shape (height, width, 3), uint8, RGB

    Raises
    ------
    CorruptFileError
        A frame that :func:`probe` counted does not decode.
    """
    indices = np.asarray(indices, dtype=np.int64)
    if indices.size == 0:
        return
    if indices[0] < 0 or indices[-1] >= info.num_frames or np.any(np.diff(indices) < 0):
        raise ValueError(f"indices must be sorted within [0, {info.num_frames}), got {indices[0]}..{indices[-1]}")
    frames = _folder_frames(info, indices) if info.is_folder else _video_frames(info, indices)
    yield from frames


def _folder_frames(info: VideoInfo, indices: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    files = frame_files(Path(info.path))
    if len(files) < info.num_frames:
        raise CorruptFileError(info.path, f"frame folder shrank to {len(files)} images (probed {info.num_frames})")
    last, frame = -1, None
    for index in indices.tolist():
        if index != last:
            frame, last = read_image(files[index]), index
            if frame.shape[:2] != (info.height, info.width):
                raise CorruptFileError(files[index], f"frame size {frame.shape[1]}x{frame.shape[0]} differs from "
                                                     f"the folder's first frame {info.width}x{info.height}")
        yield index, frame


def _video_frames(info: VideoInfo, indices: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    first = int(indices[0])
    cap = open_capture(info.path)
    try:
        if not cap.isOpened():
            raise CorruptFileError(info.path, "FFmpeg could not reopen the file")
        position = _seek(cap, first, info.fps)
        if position != first:  # inexact or failed seek: decode forward from the start instead
            cap.release()
            cap = open_capture(info.path)
            position = 0
        last, frame = -1, None
        for index in indices.tolist():
            if index != last:
                while position < index:
                    if not cap.grab():
                        raise CorruptFileError(info.path, f"decoding stopped at source frame {position} "
                                                          f"of {info.num_frames}")
                    position += 1
                ok, bgr = cap.read()
                if not ok:
                    raise CorruptFileError(info.path, f"source frame {index} of {info.num_frames} does not decode")
                position += 1
                frame, last = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), index
            yield index, frame
    finally:
        cap.release()


def _seek(cap: cv2.VideoCapture, index: int, fps: float) -> int:
    """Seek so that the next read returns frame ``index``; returns the position actually reached
    (``index`` on success, anything else means the caller must decode from 0).

    The landing is checked twice: the position OpenCV reports, and the timestamp of the frame
    before ``index`` (decoded here with ``grab``) against ``(index - 1) / fps``.
    """
    if index == 0:
        return 0
    probe_index = index - 1
    if not cap.set(cv2.CAP_PROP_POS_FRAMES, probe_index) or int(cap.get(cv2.CAP_PROP_POS_FRAMES)) != probe_index:
        return -1
    if not cap.grab():
        return -1
    stamp_ms = cap.get(cv2.CAP_PROP_POS_MSEC)
    if abs(stamp_ms - probe_index * 1000.0 / fps) > 0.5 * 1000.0 / fps:
        return -1
    return index


def write_video(path: str | Path, frames, *, fps: float, fourcc: str = "mp4v") -> Path:
    """Write RGB frames with OpenCV's FFmpeg writer.

    Parameters
    ----------
    path : str or Path
        Output file; its extension picks the container (``.mp4``, ``.avi``, ``.mkv``, ``.webm``).
    frames : iterable of ndarray, shape (H, W, 3), uint8, RGB
        At least one frame, all of the first frame's size.
    fps : float
        Frame rate written in the container.
    fourcc : str
        Codec four-character code (``"mp4v"``, ``"MJPG"``, ``"VP80"``...).

    Raises
    ------
    OSError
        OpenCV has no writer for this container and codec here.
    """
    frames = iter(frames)
    first = next(frames)
    height, width = first.shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*fourcc), float(fps),
                             (width, height))
    if not writer.isOpened():
        raise OSError(f"{path}: OpenCV cannot open a {fourcc} video writer here")
    try:
        for frame in itertools.chain([first], frames):
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    return Path(path)
