"""3DPW (von Marcard et al. 2018): discover, safely load and write sequence files and frames.

Tree (``docs/formats.md``)::

    <root>/sequenceFiles/{train,validation,test}/<sequence>.pkl
    <root>/imageFiles/<sequence>/image_%05d.jpg

A sequence file is a Python-2 pickle of a dict (:data:`REQUIRED_KEYS`) holding numpy arrays,
lists and strings. It is *data*: :func:`load_pickle` reads it with ``encoding='latin1'`` through a
restricted unpickler that resolves only the globals numpy arrays need (:data:`ALLOWED_GLOBALS`)
and refuses anything else (``os.system``, ``builtins.eval``...) before it can run.

:func:`read_sequence` checks keys, shapes and lengths and returns per-actor arrays, with the
ground-truth joints moved to the camera frame of every frame: ``X_cam = R X + t`` where
``[R | t]`` is the top of ``cam_poses[i]`` (world-to-camera). Files in exactly this format (a
Python-2-style protocol-2 pickle and JPEG frames) are written by
:func:`synthgen.testing.threedpw.write_sequence`, for tests.

Frame size is read from the images (1920x1080 or 1080x1920 in the dataset, anything in tests).
"""

from __future__ import annotations

import builtins
import codecs
import io
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from numpy._core.multiarray import _reconstruct, scalar
from numpy._core.numeric import _frombuffer

from synthgen.core.errors import (
    CorruptFileError,
    EmptyInputError,
    FrameCountMismatchError,
    InconsistentDataError,
    MissingFileError,
    MissingKeyError,
    OversizeError,
    Skip,
    SourceError,
    check_finite,
)
from synthgen.core.limits import BoundedUnpickler, PickleSizeError

SPLITS = ("train", "validation", "test")
REQUIRED_KEYS = ("sequence", "genders", "betas", "poses", "trans", "jointPositions", "poses2d",
                 "cam_poses", "cam_intrinsics", "campose_valid", "img_frame_ids")
#: Largest |det R - 1| of a valid frame's ``cam_poses`` rotation (a proper rotation: the
#: camera-frame joints of a 3DPW store are never mirrored).
MAX_ROTATION_DET_ERROR = 1e-3
#: Number of OpenPose keypoints in ``poses2d`` (order ``synthgen.core.joints.OPENPOSE_NAMES``).
NUM_OPENPOSE = 18
#: Image file name of frame id ``i`` inside ``imageFiles/<sequence>/``.
IMAGE_PATTERN = "image_{:05d}.jpg"
_GENDERS = {"f": "female", "m": "male"}

#: Every global a 3DPW pickle may name, mapped to what it resolves to: numpy array and dtype
#: reconstruction (``numpy.core`` in Python-2 and NumPy-1 files, ``numpy._core`` in NumPy-2 files;
#: ``_frombuffer`` for protocol-5 files), ``_codecs.encode`` (Python 3 protocol-2 pickles of
#: bytes) and plain builtin containers.
ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy.core.multiarray", "scalar"): scalar,
    ("numpy._core.multiarray", "scalar"): scalar,
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): codecs.encode,
    **{(module, name): getattr(builtins, name)
       for module in ("__builtin__", "builtins")
       for name in ("set", "frozenset", "bytearray", "complex", "slice")},
}


class UnsafePickleError(SourceError):
    """A pickle that names a global outside :data:`ALLOWED_GLOBALS` (it could run code)."""

    reason = "unsafe_pickle"


class _RestrictedUnpickler(BoundedUnpickler):
    def __init__(self, file, path: Path):
        super().__init__(file, encoding="latin1")
        self._path = path

    def find_class(self, module: str, name: str):
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                self._path, f"refused global {module}.{name}: a 3DPW file holds only numpy "
                            f"arrays and builtins, so it was not loaded") from None


def load_pickle(path) -> object:
    """Load a (Python-2) pickle as data: latin1 strings, numpy arrays and builtins only.

    Raises
    ------
    MissingFileError, EmptyInputError
        No file, or an empty one.
    UnsafePickleError
        The pickle names any other global (nothing of it is executed).
    OversizeError
        It declares an array beyond its bound or asks for a size
        (:class:`synthgen.core.limits.BoundedUnpickler`); nothing of it is allocated.
    CorruptFileError
        Truncated or not a pickle.
    """
    path = Path(path)
    _check_file(path)
    data = path.read_bytes()
    try:
        return _RestrictedUnpickler(io.BytesIO(data), path).load()
    except SourceError:
        raise
    except PickleSizeError as exc:
        raise OversizeError(path, str(exc)) from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
            KeyError, struct.error, UnicodeDecodeError, MemoryError) as exc:
        raise CorruptFileError(path, f"not a readable pickle (truncated or damaged): "
                                     f"{type(exc).__name__}: {exc}") from None


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise MissingFileError(path, "file does not exist" if not path.exists()
                               else "is not a regular file")
    if path.stat().st_size == 0:
        raise EmptyInputError(path, "file is empty (0 bytes)")


@dataclass(frozen=True)
class SequenceFile:
    """A 3DPW sequence file found on disk: ``path`` (the .pkl), ``name``, ``split``, ``image_dir``."""

    path: Path
    name: str
    split: str
    image_dir: Path


def find_sequences(root, *, splits=("test",)) -> tuple[list[SequenceFile], list[tuple[str, str]]]:
    """Every sequence file of the given splits under a 3DPW root.

    Parameters
    ----------
    root : str or Path
        The dataset root holding ``sequenceFiles/`` and ``imageFiles/``.
    splits : iterable of {"train", "validation", "test"}

    Returns
    -------
    sequences : list of SequenceFile
        Sorted by path. Only the files' presence is checked (see :func:`read_sequence`).
    skipped : list of Skip
        A split directory or an image directory that is missing, an empty sequence file. Never
        raised.

    Raises
    ------
    MissingFileError
        ``root`` is not a directory.
    ValueError
        An unknown split name.
    """
    root = Path(root)
    if not root.is_dir():
        raise MissingFileError(root, "3DPW root directory does not exist" if not root.exists()
                               else "is not a directory")
    unknown = set(splits) - set(SPLITS)
    if unknown:
        raise ValueError(f"splits must be among {SPLITS}, got {sorted(unknown)}")
    sequences, skipped = [], []
    for split in splits:
        folder = root / "sequenceFiles" / split
        if not folder.is_dir():
            skipped.append(Skip(folder, MissingFileError.reason, "split directory does not exist"))
            continue
        for pkl in sorted(folder.glob("*.pkl")):
            image_dir = root / "imageFiles" / pkl.stem
            if pkl.stat().st_size == 0:
                skipped.append(Skip(pkl, EmptyInputError.reason, "file is empty (0 bytes)"))
            elif not image_dir.is_dir():
                skipped.append(Skip(pkl, MissingFileError.reason,
                                    f"image directory {image_dir} does not exist"))
            else:
                sequences.append(SequenceFile(pkl, pkl.stem, split, image_dir))
    return sorted(sequences, key=lambda s: str(s.path)), sorted(skipped)


@dataclass(frozen=True)
class Actor:
    """One person of a sequence, N frames.

    Attributes
    ----------
    gender : {"female", "male"}
    betas : ndarray, shape (10,), float64
        SMPL shape.
    poses : ndarray, shape (N, 72), float64
        SMPL axis-angle (radians); global orientation in 3DPW's world frame.
    trans : ndarray, shape (N, 3), float64
        SMPL root translation, world metres.
    joints_world : ndarray, shape (N, 24, 3), float64
        24 SMPL joints (``jointPositions``), world metres.
    joints_cam : ndarray, shape (N, 24, 3), float64
        The same joints in the camera frame of each frame, metres (x right, y down, z forward).
    keypoints : ndarray, shape (N, 18, 2), float64
        OpenPose-18 detections (``poses2d``), frame pixels (x, y); zeros where missing.
    confidence : ndarray, shape (N, 18), float64
        Detector confidence of each keypoint (0 where missing).
    campose_valid : ndarray, shape (N,), bool
        Whether the camera pose (hence the ground truth) of the frame is valid.
    """

    gender: str
    betas: np.ndarray
    poses: np.ndarray
    trans: np.ndarray
    joints_world: np.ndarray
    joints_cam: np.ndarray
    keypoints: np.ndarray
    confidence: np.ndarray
    campose_valid: np.ndarray


@dataclass(frozen=True)
class Sequence:
    """A read 3DPW sequence.

    Attributes
    ----------
    path : Path
        The sequence file.
    name : str
        ``sequence`` as stored (the file stem in the dataset).
    img_frame_ids : ndarray, shape (N,), int64
        Image number of each frame (``image_%05d.jpg``).
    cam_poses : ndarray, shape (N, 4, 4), float64
        World-to-camera transforms.
    cam_intrinsics : ndarray, shape (3, 3), float64
        Pinhole matrix, pixels.
    actors : tuple of Actor
    """

    path: Path
    name: str
    img_frame_ids: np.ndarray
    cam_poses: np.ndarray
    cam_intrinsics: np.ndarray
    actors: tuple[Actor, ...]

    @property
    def num_frames(self) -> int:
        return len(self.img_frame_ids)


def world_to_camera_frames(points: np.ndarray, cam_poses: np.ndarray) -> np.ndarray:
    """Per-frame rigid transform of world points to camera coordinates: ``R_i X + t_i``.

    Parameters
    ----------
    points : ndarray, shape (N, J, 3)
        World metres.
    cam_poses : ndarray, shape (N, 4, 4)
        World-to-camera transforms ``[[R, t], [0, 1]]``.

    Returns
    -------
    ndarray, shape (N, J, 3), float64
        Camera metres.
    """
    cam_poses = np.asarray(cam_poses, dtype=np.float64)
    rotation, translation = cam_poses[:, :3, :3], cam_poses[:, :3, 3]
    return np.einsum("nij,nkj->nki", rotation, np.asarray(points, dtype=np.float64)) \
        + translation[:, None, :]


def _per_actor(data: dict, key: str, path: Path, count: int) -> list:
    value = data[key]
    if not isinstance(value, (list, tuple)) or len(value) != count:
        raise InconsistentDataError(path, f"{key!r} must be a list of one entry per actor "
                                          f"({count} actors in 'genders')")
    return list(value)


def _array(value, shape: tuple, key: str, path: Path) -> np.ndarray:
    """``value`` as float64 of ``shape`` (-1: any length), else InconsistentDataError."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InconsistentDataError(path, f"{key!r} is not numeric") from None
    if array.ndim != len(shape) or any(s != -1 and s != a for s, a in zip(shape, array.shape)):
        want = "x".join("N" if s == -1 else str(s) for s in shape)
        raise InconsistentDataError(path, f"{key!r} has shape {array.shape}, expected ({want})")
    return array


def read_sequence(path) -> Sequence:
    """Read and check one 3DPW sequence file.

    Parameters
    ----------
    path : str or Path
        ``sequenceFiles/<split>/<sequence>.pkl``.

    Returns
    -------
    Sequence

    Raises
    ------
    SourceError
        Missing, empty, truncated or unsafe file (:func:`load_pickle`); ``MissingKeyError`` for a
        key of :data:`REQUIRED_KEYS` absent; ``InconsistentDataError`` for a wrong shape, an
        unknown gender or a non-finite camera pose; ``FrameCountMismatchError`` when arrays
        disagree on the number of frames; ``NonFiniteError`` for NaN or infinite betas, poses,
        translations, joints or 2D keypoints. Messages name the file and the key.
    """
    path = Path(path)
    data = load_pickle(path)
    if not isinstance(data, dict):
        raise CorruptFileError(path, f"expected a pickled dict, got {type(data).__name__}")
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise MissingKeyError(path, f"missing key(s) {missing}; a 3DPW sequence file has "
                                    f"{list(REQUIRED_KEYS)}")
    frame_ids = _array(data["img_frame_ids"], (-1,), "img_frame_ids", path).astype(np.int64)
    num_frames = len(frame_ids)
    if num_frames == 0:
        raise EmptyInputError(path, "sequence has no frames ('img_frame_ids' is empty)")
    cam_poses = _array(data["cam_poses"], (-1, 4, 4), "cam_poses", path)
    intrinsics = _array(data["cam_intrinsics"], (3, 3), "cam_intrinsics", path)
    genders = data["genders"]
    if not isinstance(genders, (list, tuple)) or not genders:
        raise InconsistentDataError(path, "'genders' must be a non-empty list of 'm'/'f'")
    lengths = {"img_frame_ids": num_frames, "cam_poses": len(cam_poses)}
    actors = []
    per_actor = {k: _per_actor(data, k, path, len(genders))
                 for k in ("betas", "poses", "trans", "jointPositions", "poses2d", "campose_valid")}
    for a, gender in enumerate(genders):
        if str(gender) not in _GENDERS:
            raise InconsistentDataError(path, f"actor {a}: gender {gender!r} is not 'm' or 'f'")
        betas = np.asarray(per_actor["betas"][a], dtype=np.float64).reshape(-1)
        if betas.size < 10:
            raise InconsistentDataError(path, f"actor {a}: 'betas' has {betas.size} values, "
                                              f"at least 10 expected")
        poses = _array(per_actor["poses"][a], (-1, 72), f"poses[{a}]", path)
        trans = _array(per_actor["trans"][a], (-1, 3), f"trans[{a}]", path)
        joints = _array(per_actor["jointPositions"][a], (-1, 72), f"jointPositions[{a}]", path)
        poses2d = _array(per_actor["poses2d"][a], (-1, 3, NUM_OPENPOSE), f"poses2d[{a}]", path)
        valid = np.asarray(per_actor["campose_valid"][a]).reshape(-1).astype(bool)
        for key, value in ((f"poses[{a}]", poses), (f"trans[{a}]", trans),
                           (f"jointPositions[{a}]", joints), (f"poses2d[{a}]", poses2d),
                           (f"campose_valid[{a}]", valid)):
            lengths[key] = len(value)
        if len(set(lengths.values())) > 1:
            raise FrameCountMismatchError(path, "arrays disagree on the number of frames: "
                                          + ", ".join(f"{k} {n}" for k, n in lengths.items()))
        check_finite(path, {f"betas[{a}]": betas, f"poses[{a}]": poses, f"trans[{a}]": trans,
                            f"jointPositions[{a}]": joints, f"poses2d[{a}]": poses2d})
        joints_world = joints.reshape(num_frames, 24, 3)
        actors.append(Actor(
            gender=_GENDERS[str(gender)], betas=betas[:10], poses=poses, trans=trans,
            joints_world=joints_world,
            joints_cam=world_to_camera_frames(joints_world, cam_poses),
            keypoints=poses2d[:, :2, :].transpose(0, 2, 1).copy(),
            confidence=poses2d[:, 2, :].copy(), campose_valid=valid))
    valid = cam_poses[np.any([a.campose_valid for a in actors], axis=0)]
    if not np.all(np.isfinite(valid)):
        raise InconsistentDataError(path, "non-finite 'cam_poses' on frames marked valid")
    det = np.linalg.det(valid[:, :3, :3]) if len(valid) else np.ones(1)
    worst = det[np.argmax(np.abs(det - 1.0))]
    if not abs(worst - 1.0) <= MAX_ROTATION_DET_ERROR:
        raise InconsistentDataError(path, f"'cam_poses' rotation of a valid frame has determinant "
                                          f"{worst:.4f}, not +1: camera-frame joints would be "
                                          f"mirrored")
    return Sequence(path, str(data["sequence"]), frame_ids, cam_poses, intrinsics, tuple(actors))


def image_paths(image_dir, frame_ids) -> list[Path]:
    """``image_dir / image_%05d.jpg`` for each frame id."""
    return [Path(image_dir) / IMAGE_PATTERN.format(int(i)) for i in frame_ids]


def check_images(image_dir, frame_ids) -> tuple[int, int]:
    """Check that every frame's image exists and that the first decodes; its (height, width).

    Raises
    ------
    MissingFileError, EmptyInputError, CorruptFileError
        Naming the first missing, empty or undecodable image.
    """
    paths = image_paths(image_dir, frame_ids)
    for path in paths:
        _check_file(path)
    return read_image(paths[0]).shape[:2]


def read_image(path) -> np.ndarray:
    """One frame as RGB.

    Returns
    -------
    ndarray, shape (H, W, 3), uint8

    Raises
    ------
    MissingFileError, EmptyInputError, CorruptFileError
    """
    path = Path(path)
    _check_file(path)
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise CorruptFileError(path, "image cannot be decoded (truncated or not a JPEG/PNG)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_frames(image_dir, frame_ids) -> np.ndarray:
    """Frames of the given ids, RGB.

    Returns
    -------
    ndarray, shape (T, H, W, 3), uint8

    Raises
    ------
    SourceError
        A missing, empty or undecodable image, or images of different sizes.
    """
    paths = image_paths(image_dir, frame_ids)
    frames = [read_image(p) for p in paths]
    for path, frame in zip(paths, frames):
        if frame.shape != frames[0].shape:
            raise InconsistentDataError(path, f"image is {frame.shape[1]}x{frame.shape[0]}, the "
                                              f"sequence's first is "
                                              f"{frames[0].shape[1]}x{frames[0].shape[0]}")
    return np.stack(frames)
