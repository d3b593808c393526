"""SURREAL clips (Varol et al. 2017): discover, read a frame window, write files in the real format.

A clip is ``<seq>_c%04d.mp4`` with ``<seq>_c%04d_info.mat``, ``_segm.mat`` and ``_depth.mat``
beside it (``docs/formats.md``). :func:`read_clip` returns a :class:`synthgen.core.types.SurrealClip`
whose pose, 2D and 3D joints describe the body the image shows (below); :func:`write_surreal_clip`
writes the same four files as the real dataset (tests and the demo-data generator use it).

The body the image shows: SURREAL renders through a reflecting camera (``synthgen.core.camera.SURREAL_R``,
det -1), so its images are mirror views of the SMPL body of the released ``pose``. The reader
returns the SMPL body of the *mirrored* pose (:func:`synthgen.core.smpl.mirror_pose`), which is
that mirror view seen through a proper rotation (:func:`synthgen.core.camera.seen_body_orientation`):
``pose`` has its global orientation in the camera frame, ``joints3d`` are the SMPL joints of
``pose``, ``betas`` and ``gender`` (real SMPL forward kinematics, the ``smpl_dir`` models) moved so
that the pelvis is the released pelvis in camera metres, and ``joints2d`` carry the same labels:
the released ones with left and right exchanged, as the mirror exchanges them. Joints, pose and
pixels then agree on every side: the person's left hand as seen is ``left_wrist`` in all three.

Left/right of the released files: their joints may have left and right swapped relative to the
part map (whose labels are those of the released ``pose``'s body). :func:`measure_sides` decides it
per clip from where the lateral joints (wrists, elbows, knees, ankles) fall in the part map.
``read_clip(sides="measure")`` (default) applies the measurement; ``"as_is"`` and ``"swap"``
override it. This aligns the released 2D joints with the part map before the mirror above.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from synthgen.core.camera import (
    SURREAL_HEIGHT,
    SURREAL_K,
    SURREAL_WIDTH,
    project,
    seen_body_orientation,
    surreal_extrinsics,
    world_to_camera,
)
from synthgen.core.smpl import SMPLJoints, load_smpl_model, mirror_pose, model_file
from synthgen.core.errors import (
    CorruptFileError,
    EmptyInputError,
    FrameCountMismatchError,
    InconsistentDataError,
    MissingFileError,
    MissingKeyError,
    ShortClipError,
    Skip,
    SourceError,
    check_finite,
)
from synthgen.core.joints import (JOINT_PART_LABEL, LEFT_RIGHT_SWAP, NUM_SMPL_JOINTS, SMPL_INDEX,
                                  SMPL_PARENTS)
from synthgen.sources.mat import MAT_FORMATS, load_mat, mat_variables, save_mat
from synthgen.sources.video import VideoInfo, iter_source_frames, probe, write_video
from synthgen.core.types import BACKGROUND_DEPTH, SurrealClip

SPLITS = ("train", "val", "test")
SIDES = ("measure", "as_is", "swap")
#: SURREAL's frame rate.
SURREAL_FPS = 30.0
#: Sign of the x channel of ``_gtflow.mat`` against image x. SURREAL's ``main_part2.py`` saves
#: Blender's vector pass (channels R, G) as it comes, and its authors note that "after data
#: generation, x channel of the optical flow should be multiplied by -1" (gulvarol/surreal #3);
#: the reader applies it, the writer stores x with this sign (so files round-trip).
GTFLOW_X_SIGN = -1.0
#: joints2D are rounded to whole pixels: up to sqrt(0.5) ~ 0.71 px from the exact projection.
MAX_REPROJECTION_PX = 1.0
#: Joints whose neighbourhood in the part map decides the left/right convention.
SIDE_CHECK_JOINTS = (
    "left_wrist", "left_elbow", "left_knee", "left_ankle",
    "right_wrist", "right_elbow", "right_knee", "right_ankle",
)

_CLIP_RE = re.compile(r"^(?P<sequence>.+)_c(?P<clip>\d{4})\.mp4$")
_INFO_KEYS = ("joints2D", "joints3D", "pose", "shape", "camLoc", "zrot", "gender")
_GENDERS = ("female", "male")  # SURREAL's gender code 0, 1


@dataclass(frozen=True)
class ClipInfo:
    """One SURREAL clip found on disk.

    Attributes
    ----------
    path : Path
        The clip's ``.mp4``; the ``.mat`` files are :attr:`info_path`, :attr:`segm_path`,
        :attr:`depth_path`.
    split : str or None
        ``"train"``, ``"val"`` or ``"test"``: the path component nearest the file that names a
        split; ``None`` when none does.
    sequence : str
        CMU sequence name (``"01_01"``), from the file name.
    clip_number : int
        The ``NNNN`` of ``_cNNNN``.
    num_frames : int or None
        The video's verified frame count when :func:`find_clips` was asked to count, else None.
    """

    path: Path
    split: str | None
    sequence: str
    clip_number: int
    num_frames: int | None = None

    @property
    def info_path(self) -> Path:
        return _sibling(self.path, "info")

    @property
    def segm_path(self) -> Path:
        return _sibling(self.path, "segm")

    @property
    def depth_path(self) -> Path:
        return _sibling(self.path, "depth")


def _sibling(mp4_path: Path, kind: str) -> Path:
    return mp4_path.with_name(f"{mp4_path.stem}_{kind}.mat")


def gtflow_path(mp4_path) -> Path:
    """The ``<seq>_cNNNN_gtflow.mat`` beside a clip's ``.mp4`` (optional: not every release has it)."""
    return _sibling(Path(mp4_path), "gtflow")


def read_gtflow(mp4_path, *, start: int, length: int, num_frames: int) -> np.ndarray | None:
    """Ground-truth person flow of a window of a clip, or None when it has no ``_gtflow.mat``.

    *Decision* (convention; SURREAL documents only "ground truth optical flow per frame"):
    ``gtflow_k`` (1-based, like ``segm_k``) is the flow from frame k-1 to frame k (0-based)
    at frame k-1's pixels, in pixels, channel 0 x (columns) with sign ``GTFLOW_X_SIGN``, channel
    1 y (rows, down); ``gtflow_T``, the last frame's, has no next frame and is 0.

    Parameters
    ----------
    mp4_path : str or Path
    start, length : int
        0-based window, as :func:`read_clip`'s.
    num_frames : int
        Frames of the clip: the file must hold ``gtflow_1 .. gtflow_<num_frames>``.

    Returns
    -------
    ndarray, shape (length, 240, 320, 2), float32, or None
        ``[i]``: frame pixels (x, y) from window frame i to i+1 at frame i's person pixels
        (0 on the background and for the clip's last frame).

    Raises
    ------
    EmptyInputError, CorruptFileError, MissingKeyError, FrameCountMismatchError
        An empty or broken file, a missing ``gtflow_k``, a frame of another shape or with
        non-finite values, or another frame count than the clip's.
    """
    path = gtflow_path(mp4_path)
    if not path.exists():
        return None
    _check_exists(path)
    count = _numbered_count(path, "gtflow")
    if count != num_frames:
        raise FrameCountMismatchError(path, f"{count} gtflow frames, the clip has {num_frames}")
    names = [f"gtflow_{i + 1}" for i in range(start, start + length)]
    expected = (SURREAL_HEIGHT, SURREAL_WIDTH, 2)
    values = load_mat(path, names, max_shapes=dict.fromkeys(names, expected))
    for name in names:
        if np.shape(values[name]) != expected:
            raise CorruptFileError(path, f"{name} has shape {np.shape(values[name])}, expected {expected}")
    flow = np.stack([np.asarray(values[n], dtype=np.float32) for n in names])
    if not np.isfinite(flow).all():
        bad = names[int(np.flatnonzero(~np.isfinite(flow).all(axis=(1, 2, 3)))[0])]
        raise CorruptFileError(path, f"{bad} holds non-finite values")
    flow[..., 0] *= GTFLOW_X_SIGN
    return flow


def _check_exists(path: Path) -> None:
    if not path.is_file():
        raise MissingFileError(path, "file does not exist" if not path.exists() else "is not a regular file")
    if path.stat().st_size == 0:
        raise EmptyInputError(path, "file is empty (0 bytes)")


def _clip_files(mp4_path: Path) -> tuple[Path, Path, Path, Path]:
    """The clip's (mp4, info, segm, depth) paths, each checked to exist and be non-empty."""
    files = (mp4_path, _sibling(mp4_path, "info"), _sibling(mp4_path, "segm"), _sibling(mp4_path, "depth"))
    for path in files:
        _check_exists(path)
    return files


def find_clips(root, *, splits=None, count_frames: bool = False) -> tuple[list[ClipInfo], list[Skip]]:
    """Every SURREAL clip under ``root``, at any depth.

    Parameters
    ----------
    root : str or Path
        Usually the dataset's ``cmu`` directory (``{train,val,test}/runN/<seq>/...``); any nesting
        works: a clip is any ``*_cNNNN.mp4``.
    splits : iterable of {"train", "val", "test"}, optional
        Keep only clips whose split (:attr:`ClipInfo.split`) is one of these; clips outside any
        split directory are then left out. ``None``: every clip.
    count_frames : bool
        Open each video and fill :attr:`ClipInfo.num_frames` (verified count, a few ms per clip).

    Returns
    -------
    clips : list of ClipInfo
        Complete clips, sorted by path.
    skipped : list of Skip
        Each incomplete clip (a ``.mat`` missing or empty, or, when
        counting, an undecodable video), sorted by path. Never raised.

    Raises
    ------
    MissingFileError
        ``root`` does not exist or is not a directory.
    """
    root = Path(root)
    if not root.is_dir():
        raise MissingFileError(root, "directory does not exist" if not root.exists() else "is not a directory")
    wanted = None
    if splits is not None:
        wanted = set(splits)
        if not wanted <= set(SPLITS):
            raise ValueError(f"splits must be among {SPLITS}, got {sorted(wanted)}")
    clips, skipped = [], []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for filename in sorted(filenames):
            match = _CLIP_RE.match(filename)
            if match is None:
                continue
            mp4 = Path(dirpath) / filename
            split = next((p for p in reversed(mp4.relative_to(root).parts[:-1]) if p in SPLITS), None)
            if wanted is not None and split not in wanted:
                continue
            try:
                _clip_files(mp4)
                num_frames = probe(mp4).num_frames if count_frames else None
            except SourceError as exc:
                skipped.append(Skip(mp4, exc.reason, _describe(exc, mp4)))
                continue
            clips.append(ClipInfo(mp4, split, match["sequence"], int(match["clip"]), num_frames))
    clips.sort(key=lambda c: str(c.path))
    skipped.sort()
    return clips, skipped


def _describe(exc: SourceError, mp4: Path) -> str:
    """The error's detail, naming the file when it is not the clip's ``.mp4`` itself."""
    return exc.detail if exc.path == str(mp4) else f"{Path(exc.path).name}: {exc.detail}"


class SideMeasurement(NamedTuple):
    """Result of :func:`measure_sides`.

    Attributes
    ----------
    swapped : bool
        The joints' left/right labels are the opposite of the part map's. False when undecided.
    confidence : float
        In [0, 1]: ``|same - opposite| / (same + opposite)`` over decisive (frame, joint) votes;
        exactly 0.0 when the measurement is undecided (too few votes or too close a call), in
        which case the joints should be taken as they are.
    """

    swapped: bool
    confidence: float

    @property
    def decided(self) -> bool:
        return self.confidence > 0.0


def _limb_parts(joint: int) -> list[int]:
    """Part labels around a joint: its own bone and its parent's (a joint sits on their boundary)."""
    return [int(JOINT_PART_LABEL[joint]), int(JOINT_PART_LABEL[SMPL_PARENTS[joint]])]


def _side_tables() -> tuple[np.ndarray, np.ndarray]:
    """(k, label) -> whether a uint8 label is a part of the limb of joint k of SIDE_CHECK_JOINTS / of its twin."""
    own = np.zeros((len(_SIDE_JOINTS), 256), dtype=bool)
    twin = np.zeros((len(_SIDE_JOINTS), 256), dtype=bool)
    for k, joint in enumerate(_SIDE_JOINTS):
        own[k, _limb_parts(joint)] = True
        twin[k, _limb_parts(LEFT_RIGHT_SWAP[joint])] = True
    return own, twin


_SIDE_JOINTS = np.array([SMPL_INDEX[n] for n in SIDE_CHECK_JOINTS], dtype=np.int64)
_OWN_PARTS, _TWIN_PARTS = _side_tables()


def measure_sides(
    segm, joints2d, *, radius: int = 3, min_votes: int = 4, min_score: float = 0.5
) -> SideMeasurement:
    """Measure whether a clip's joints have left and right swapped relative to its part map.

    For each frame and each joint of :data:`SIDE_CHECK_JOINTS` (wrists, elbows, knees, ankles),
    count the pixels of a ``(2 radius + 1)``-square around the joint that carry a part of the
    joint's own limb (its bone and its parent's: e.g. left wrist -> leftHand, leftForeArm) and those
    that carry the twin limb's parts (rightHand, rightForeArm). The (frame, joint) votes "same"
    when its own parts dominate, "opposite" when the twin's do, and abstains otherwise (off the
    body, hidden behind the torso). ``score = (same - opposite) / (same + opposite)``.

    Parameters
    ----------
    segm : ndarray, shape (T, H, W), uint8
        SURREAL part labels (0 background, 1..24 ``synthgen.core.joints.SURREAL_PART_NAMES``).
    joints2d : ndarray, shape (T, 24, 2)
        SMPL joints in frame pixels (x, y), in the convention to test.
    radius : int
        Half-size in pixels of the neighbourhood looked at around each joint.
    min_votes : int
        Fewer decisive votes than this: undecided.
    min_score : float
        ``|score|`` below this (e.g. 0.5 = 75 % of votes agreeing): undecided.

    Returns
    -------
    SideMeasurement
        ``swapped`` is ``score < 0`` when decided; ``confidence`` is ``|score|``, 0.0 if undecided.
    """
    segm = np.asarray(segm)
    joints2d = np.asarray(joints2d, dtype=np.float64)
    num_frames, height, width = segm.shape
    if joints2d.shape != (num_frames, NUM_SMPL_JOINTS, 2):
        raise ValueError(f"joints2d must have shape ({num_frames}, {NUM_SMPL_JOINTS}, 2), got {joints2d.shape}")
    xy = joints2d[:, _SIDE_JOINTS, :]
    finite = np.isfinite(xy).all(axis=-1)
    xy = np.where(finite[..., None], np.rint(xy), -1.0 - radius).astype(np.int64)
    offsets = np.arange(-radius, radius + 1)
    xs = (xy[..., 0, None, None] + offsets[None, :]).reshape(num_frames, len(_SIDE_JOINTS), -1)
    ys = (xy[..., 1, None, None] + offsets[:, None]).reshape(num_frames, len(_SIDE_JOINTS), -1)
    inside = (xs >= 0) & (xs < width) & (ys >= 0) & (ys < height)
    frames = np.arange(num_frames)[:, None, None]
    labels = np.where(inside, segm[frames, ys.clip(0, height - 1), xs.clip(0, width - 1)], 0).astype(np.intp)
    joint_rows = np.arange(len(_SIDE_JOINTS))[None, :, None]
    own = _OWN_PARTS[joint_rows, labels].sum(axis=-1)
    twin = _TWIN_PARTS[joint_rows, labels].sum(axis=-1)
    same, opposite = int((own > twin).sum()), int((twin > own).sum())
    if same + opposite < min_votes:
        return SideMeasurement(False, 0.0)
    score = (same - opposite) / (same + opposite)
    if abs(score) < min_score:
        return SideMeasurement(False, 0.0)
    return SideMeasurement(score < 0, abs(score))


def _frames_last(value, lead: tuple[int, ...], name: str, path: Path) -> np.ndarray:
    """A per-frame ``_info.mat`` array as ``lead + (T,)``, accepting MATLAB's squeezed 1-frame shapes."""
    arr = np.asarray(value)
    if lead == ():
        if arr.ndim <= 2 and (arr.ndim < 2 or min(arr.shape) == 1):
            return arr.reshape(-1)
    elif arr.shape == lead:
        return arr[..., None]
    elif arr.ndim == len(lead) + 1 and arr.shape[:-1] == lead:
        return arr
    raise CorruptFileError(path, f"{name} has shape {arr.shape}, expected {lead + ('T',)}")


def _numbered_count(path: Path, prefix: str) -> int:
    """Number N of variables ``prefix_1 .. prefix_N`` of a ``.mat`` (checked to have no gap)."""
    numbers = sorted(int(m[1]) for n in mat_variables(path) if (m := re.fullmatch(rf"{prefix}_(\d+)", n)))
    if not numbers:
        raise MissingKeyError(path, f"no {prefix}_N variables")
    for expected, number in enumerate(numbers, start=1):
        if number != expected:
            raise MissingKeyError(
                path, f"{prefix}_{expected} is missing ({prefix}_1..{prefix}_{numbers[-1]} expected)"
            )
    return len(numbers)


def _read_video_window(info: VideoInfo, start: int, length: int, frame_shape: tuple[int, int]) -> np.ndarray:
    """RGB frames ``start .. start+length-1`` as (length, H, W, 3) uint8 (a verified seek to ``start``)."""
    if (info.height, info.width) != tuple(frame_shape):
        raise InconsistentDataError(info.path, f"video frames are {info.width}x{info.height}, segmentation is "
                                               f"{frame_shape[1]}x{frame_shape[0]}")
    rgb = np.empty((length, *frame_shape, 3), dtype=np.uint8)
    for i, (_, frame) in enumerate(iter_source_frames(info, np.arange(start, start + length))):
        rgb[i] = frame
    return rgb


def _load_frames(path: Path, prefix: str, start: int, length: int, dtype) -> np.ndarray:
    names = [f"{prefix}_{i + 1}" for i in range(start, start + length)]  # 1-based: segm_1 is frame 0
    expected = (SURREAL_HEIGHT, SURREAL_WIDTH)
    values = load_mat(path, names, max_shapes=dict.fromkeys(names, expected))
    frames = [np.asarray(values[n]) for n in names]
    for name, frame in zip(names, frames):
        if frame.shape != expected:
            raise CorruptFileError(path, f"{name} has shape {frame.shape}, expected {expected}")
    return np.stack(frames).astype(dtype, copy=False)


def _checked_info(mp4: Path, info_path: Path, segm_path: Path, depth_path: Path) -> tuple[dict, VideoInfo]:
    """Load ``_info.mat`` (frames last) and check that all four files agree on the frame count."""
    info = load_mat(info_path, _INFO_KEYS)
    joints2d = _frames_last(info["joints2D"], (2, NUM_SMPL_JOINTS), "joints2D", info_path)
    joints3d = _frames_last(info["joints3D"], (3, NUM_SMPL_JOINTS), "joints3D", info_path)
    pose = _frames_last(info["pose"], (72,), "pose", info_path)
    shape = np.asarray(info["shape"])
    shape = _frames_last(shape, shape.shape[:1], "shape", info_path)
    zrot = _frames_last(info["zrot"], (), "zrot", info_path)
    gender = _frames_last(info["gender"], (), "gender", info_path)
    per_variable = {"joints2D": joints2d, "joints3D": joints3d, "pose": pose, "shape": shape, "zrot": zrot,
                    "gender": gender}
    check_finite(info_path, dict(per_variable, camLoc=info["camLoc"]))
    counts = {name: arr.shape[-1] for name, arr in per_variable.items()}
    if len(set(counts.values())) > 1:
        listing = ", ".join(f"{name} {count}" for name, count in counts.items())
        raise FrameCountMismatchError(info_path, f"frame counts differ between variables: {listing}")
    if shape.shape[0] < 10:
        raise CorruptFileError(info_path, f"shape has {shape.shape[0]} betas, expected 10")
    cam_loc = np.asarray(info["camLoc"], dtype=np.float64)
    if cam_loc.size != 3:
        raise CorruptFileError(info_path, f"camLoc has shape {cam_loc.shape}, expected (3, 1)")
    gender_code = int(gender[0])
    if gender_code not in (0, 1):
        raise CorruptFileError(info_path, f"gender code {gender_code} is neither 0 (female) nor 1 (male)")

    video = probe(mp4)
    file_counts = {
        mp4: video.num_frames,
        info_path: counts["joints2D"],
        segm_path: _numbered_count(segm_path, "segm"),
        depth_path: _numbered_count(depth_path, "depth"),
    }
    if len(set(file_counts.values())) > 1:
        listing = ", ".join(f"{path.name} {count}" for path, count in file_counts.items())
        raise FrameCountMismatchError(mp4, f"the clip's files disagree on the number of frames: {listing}")
    arrays = dict(per_variable, camLoc=cam_loc, gender_code=gender_code)
    return arrays, video


def probe_clip(mp4_path) -> int:
    """Check a SURREAL clip's files as :func:`read_clip` does, without decoding frames.

    Returns
    -------
    num_frames : int
        The frame count all four files agree on.

    Raises
    ------
    SourceError
        The same errors as :func:`read_clip` for missing, corrupt or inconsistent files.
    """
    return _checked_info(*_clip_files(Path(mp4_path)))[1].num_frames


@functools.lru_cache(maxsize=4)
def _body_model(path: str) -> SMPLJoints:
    """The SMPL joint model of one model file, loaded once per process."""
    return SMPLJoints(load_smpl_model(path))


def check_smpl_dir(smpl_dir) -> None:
    """Check that ``smpl_dir`` holds readable ``SMPL_FEMALE.pkl`` and ``SMPL_MALE.pkl``.

    Raises
    ------
    FileNotFoundError, synthgen.core.smpl.ModelFileError
        The directory or a model is missing, or a model is unusable (the message names the file
        and why).
    """
    if not Path(smpl_dir).is_dir():
        raise FileNotFoundError(f"{smpl_dir}: no such directory")
    for gender in _GENDERS:
        _body_model(str(model_file(Path(smpl_dir), gender)))


@torch.no_grad()
def seen_body(pose, zrot, betas, pelvis_cam, model: SMPLJoints) -> tuple[np.ndarray, np.ndarray]:
    """The SMPL body a SURREAL image shows: its pose and joints in camera metres.

    Parameters
    ----------
    pose : ndarray, shape (T, 72)
        Released ``pose`` (global orientation in SURREAL's mocap frame, see ``zrot``).
    zrot : ndarray, shape (T,)
        Released ``zrot``, radians.
    betas : ndarray, shape (10,)
    pelvis_cam : ndarray, shape (T, 3)
        Released pelvis (joint 0 of ``joints3D``) in camera metres.
    model : SMPLJoints
        The clip's gendered SMPL model.

    Returns
    -------
    pose_cam : ndarray, shape (T, 72), float64
        The mirrored pose with its global orientation in the camera frame
        (:func:`synthgen.core.camera.seen_body_orientation`).
    joints3d : ndarray, shape (T, 24, 3), float64
        SMPL joints of ``pose_cam`` and ``betas``, camera metres (x right, y down, z forward),
        translated so that joint 0 is ``pelvis_cam``.
    """
    pose = np.asarray(pose, dtype=np.float64)
    root = Rotation.from_rotvec(pose[:, :3]).as_matrix()
    pose_cam = mirror_pose(pose)
    pose_cam[:, :3] = Rotation.from_matrix(seen_body_orientation(root, zrot)).as_rotvec()
    betas = np.repeat(np.asarray(betas, dtype=np.float64)[None], len(pose), axis=0)
    joints = model(torch.as_tensor(pose_cam), torch.as_tensor(betas)).numpy()
    return pose_cam, joints - joints[:, :1] + np.asarray(pelvis_cam, dtype=np.float64)[:, None]


def read_clip(
    mp4_path,
    *,
    smpl_dir,
    start: int = 0,
    length: int | None = None,
    sides: str = "measure",
    max_reprojection_px: float = MAX_REPROJECTION_PX,
) -> SurrealClip:
    """Read a window of frames of one SURREAL clip, checking that its four files agree.

    Only the window's frames are decoded (the video is seeked to ``start``) and only its
    ``segm_k``/``depth_k`` variables are loaded (names are 1-based: ``segm_1`` is frame 0).

    Parameters
    ----------
    mp4_path : str or Path
        ``<seq>_cNNNN.mp4``; ``_info.mat``, ``_segm.mat``, ``_depth.mat`` must be beside it.
    smpl_dir : str or Path
        Directory of the SMPL models, ``SMPL_FEMALE.pkl`` and ``SMPL_MALE.pkl`` (smplx's layout;
        official chumpy files are read safely).
    start : int
        First frame of the window (0-based).
    length : int, optional
        Number of frames; ``None``: to the end of the clip.
    sides : {"measure", "as_is", "swap"}
        Left/right convention of the released joints. ``"measure"``: :func:`measure_sides` on the
        window, swap back if it finds them swapped, keep them as they are if it is undecided (call
        ``measure_sides(clip.segm, clip.joints2d[:, LEFT_RIGHT_SWAP])`` to see its confidence).
        ``"as_is"``: never swap. ``"swap"``: always swap. This aligns the released 2D joints with the part map; the mirror
        (module docstring) exchanges sides again afterwards.
    max_reprojection_px : float
        Largest allowed distance (pixels) between ``joints2D`` and the projection of the released
        ``joints3D`` through SURREAL's camera (a check of the files).

    Returns
    -------
    SurrealClip
        The body the image shows (module docstring): ``pose`` (global orientation in the camera
        frame), ``joints3d`` its SMPL joints in camera metres, ``joints2d`` the released 2D joints
        in the same labels; ``K = SURREAL_K``; ``betas`` from the clip's first frame; ``gender``
        from the first frame's code (0 female, 1 male); ``sides_swapped`` whether the released
        joints were swapped relative to the part map; ``gtflow`` from ``_gtflow.mat`` when the clip
        has one (:func:`read_gtflow`), else None.

    Raises
    ------
    MissingFileError, EmptyInputError, CorruptFileError
        A file of the clip is missing, empty, truncated or undecodable.
    MissingKeyError
        A required variable is missing (``joints2D``, ..., or a ``segm_k``/``depth_k``).
    FrameCountMismatchError
        The video, the ``.mat`` files, or the variables of ``_info.mat`` disagree on the frame count.
    ShortClipError
        The window reaches beyond the clip.
    InconsistentDataError
        ``joints2D`` further than ``max_reprojection_px`` from the projection of ``joints3D``,
        joints behind the camera, or video frames of another size than the segmentation.
    """
    if sides not in SIDES:
        raise ValueError(f"sides must be one of {SIDES}, got {sides!r}")
    if start < 0 or (length is not None and length < 1):
        raise ValueError(f"need start >= 0 and length >= 1, got start={start}, length={length}")
    mp4, info_path, segm_path, depth_path = _clip_files(Path(mp4_path))
    info, video = _checked_info(mp4, info_path, segm_path, depth_path)
    num_frames = video.num_frames
    joints2d, joints3d, pose, shape, zrot = (info[k] for k in ("joints2D", "joints3D", "pose", "shape", "zrot"))
    cam_loc, gender_code = info["camLoc"], info["gender_code"]
    if length is None:
        length = num_frames - start
    if length < 1 or start + length > num_frames:
        raise ShortClipError(mp4, f"window of frames {start}..{start + max(length, 1) - 1} is beyond the "
                                  f"clip's {num_frames} frames")
    window = slice(start, start + length)

    segm = _load_frames(segm_path, "segm", start, length, np.uint8)
    depth = _load_frames(depth_path, "depth", start, length, np.float32)
    check_finite(depth_path, {f"depth_{start + 1}..{start + length}": depth})
    rgb = _read_video_window(video, start, length, segm.shape[1:])
    gtflow = read_gtflow(mp4, start=start, length=length, num_frames=num_frames)

    R, t = surreal_extrinsics(cam_loc)
    joints2d = joints2d[..., window].transpose(2, 1, 0).astype(np.float32)
    released = world_to_camera(joints3d[..., window].transpose(2, 1, 0), R, t)
    _check_reprojection(info_path, joints2d, released, start, max_reprojection_px)
    if sides == "measure":
        swapped = measure_sides(segm, joints2d).swapped
    else:
        swapped = sides == "swap"
    if not swapped:  # the mirror exchanges sides: part-map labels -> labels of the seen body
        joints2d = joints2d[:, LEFT_RIGHT_SWAP]
    betas = shape[:10, 0].astype(np.float32)
    model = _body_model(str(model_file(Path(smpl_dir), _GENDERS[gender_code])))
    pose_cam, joints3d = seen_body(pose[:, window].T, zrot[window], betas, released[:, 0], model)

    return SurrealClip(
        rgb=rgb,
        segm=segm,
        depth=depth,
        joints2d=np.ascontiguousarray(joints2d),
        joints3d=np.ascontiguousarray(joints3d, dtype=np.float32),
        pose=np.ascontiguousarray(pose_cam, dtype=np.float32),
        betas=betas,
        gender=_GENDERS[gender_code],
        K=SURREAL_K.copy(),
        cam_loc=cam_loc.reshape(3),
        zrot=zrot[window].astype(np.float32),
        path=str(mp4),
        start=start,
        sides_swapped=bool(swapped),
        gtflow=gtflow,
    )


def _check_reprojection(path: Path, joints2d, joints3d_cam, start: int, max_px: float) -> None:
    depth = joints3d_cam[..., 2]
    if (depth <= 0).any():
        frame, joint = np.argwhere(depth <= 0)[0]
        raise InconsistentDataError(path, f"joints3D behind the camera (frame {start + frame}, joint {joint})")
    error = np.linalg.norm(project(joints3d_cam) - joints2d, axis=-1)
    if not error.max() <= max_px:
        frame, joint = np.unravel_index(np.argmax(error), error.shape)
        raise InconsistentDataError(
            path,
            f"joints2D is {error[frame, joint]:.2f} px from the projection of joints3D by camLoc "
            f"(frame {start + frame}, joint {joint}); at most {max_px} px expected (integer rounding)",
        )


def write_surreal_clip(
    directory,
    name: str,
    *,
    rgb,
    segm,
    depth,
    joints2d,
    joints3d_world,
    pose,
    betas,
    cam_loc,
    zrot,
    gender,
    mat_format: str = "v5",
    info_extra=None,
    gtflow=None,
) -> Path:
    """Write a clip as SURREAL's files: ``<name>.mp4``, ``_info.mat``, ``_segm.mat``, ``_depth.mat``
    and, given ``gtflow``, ``_gtflow.mat``.

    Parameters
    ----------
    directory : str or Path
        Created if needed.
    name : str
        ``<sequence>_cNNNN``, e.g. ``"01_01_c0001"``.
    rgb : ndarray, shape (T, H, W, 3), uint8
        RGB frames; written with OpenCV (fourcc ``mp4v``, 30 fps): lossy.
    segm : ndarray, shape (T, H, W), uint8
        Part labels 0..24, written as ``segm_1 .. segm_T``.
    depth : ndarray, shape (T, H, W)
        Metres along the camera axis, written as float32 ``depth_1 .. depth_T``; pixels with
        ``segm == 0`` are written as background, 1e10.
    joints2d : ndarray, shape (T, 24, 2)
        Frame pixels (x, y), written rounded to integers as ``joints2D`` (2, 24, T) float32, in the
        side convention the caller chooses (the real files' may be swapped).
    joints3d_world : ndarray, shape (T, 24, 3)
        World metres, written as ``joints3D`` (3, 24, T) float32.
    pose : ndarray, shape (T, 72)
        SMPL axis-angle, written as ``pose`` (72, T).
    betas : array_like, shape (10,)
        Written as ``shape`` (10, T), repeated per frame.
    cam_loc : array_like, shape (3,)
        Camera centre in world metres, ``camLoc`` (3, 1).
    zrot : array_like, shape (T,)
        Radians, ``zrot`` (T, 1).
    gender : {"female", "male"} or {0, 1}
        ``gender`` (T, 1) uint8.
    mat_format : {"v5", "v7.3"}
        Kind of the three ``.mat`` files (real SURREAL: v5).
    gtflow : ndarray, shape (T, H, W, 2), optional
        Ground-truth person flow, frame pixels (x, y), frame i to i+1 at frame i's pixels (last
        frame 0); written as ``_gtflow.mat`` float32 ``gtflow_1 .. gtflow_T`` in SURREAL's
        convention (:func:`read_gtflow`: x times ``GTFLOW_X_SIGN``). None: no such file.
    info_extra : mapping, optional
        ``_info.mat`` variables to add or override. Defaults: ``sequence`` and ``clipNo`` from
        ``name``, ``source`` "cmu", ``bg`` and ``cloth`` (1, T) cells of empty strings, ``light``
        (9, T) zeros, ``stride`` 50, ``camDist`` the camera's distance to the first frame's pelvis.

    Returns
    -------
    Path
        The ``.mp4``.

    Raises
    ------
    ValueError
        Inconsistent shapes, a bad name or gender.
    OSError
        OpenCV cannot open a video writer.
    """
    match = _CLIP_RE.match(f"{name}.mp4")
    if match is None:
        raise ValueError(f"name must look like '<sequence>_cNNNN', got {name!r}")
    if mat_format not in MAT_FORMATS:
        raise ValueError(f"mat_format must be one of {MAT_FORMATS}, got {mat_format!r}")
    rgb = np.asarray(rgb)
    if rgb.ndim != 4 or rgb.shape[-1] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"rgb must be (T, H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
    num_frames, height, width = rgb.shape[:3]
    arrays = {
        "segm": (np.asarray(segm), (num_frames, height, width)),
        "depth": (np.asarray(depth), (num_frames, height, width)),
        "joints2d": (np.asarray(joints2d), (num_frames, NUM_SMPL_JOINTS, 2)),
        "joints3d_world": (np.asarray(joints3d_world), (num_frames, NUM_SMPL_JOINTS, 3)),
        "pose": (np.asarray(pose), (num_frames, 72)),
        "betas": (np.asarray(betas), (10,)),
        "cam_loc": (np.asarray(cam_loc, dtype=np.float64).reshape(-1), (3,)),
        "zrot": (np.asarray(zrot).reshape(-1), (num_frames,)),
    }
    if gtflow is not None:
        arrays["gtflow"] = (np.asarray(gtflow), (num_frames, height, width, 2))
    for key, (arr, expected) in arrays.items():
        if arr.shape != expected:
            raise ValueError(f"{key} must have shape {expected}, got {arr.shape}")
    if gender not in (*_GENDERS, 0, 1):
        raise ValueError(f"gender must be 'female', 'male', 0 or 1, got {gender!r}")
    gender_code = _GENDERS.index(gender) if isinstance(gender, str) else int(gender)
    segm = arrays["segm"][0].astype(np.uint8)
    depth = arrays["depth"][0].astype(np.float32)
    depth[segm == 0] = BACKGROUND_DEPTH
    joints3d_world = arrays["joints3d_world"][0]
    cam_loc = arrays["cam_loc"][0]

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    mp4 = directory / f"{name}.mp4"
    write_video(mp4, rgb, fps=SURREAL_FPS)

    strings = np.empty((1, num_frames), dtype=object)
    strings[:] = ""
    info = {
        "sequence": match["sequence"],
        "clipNo": int(match["clip"]),
        "source": "cmu",
        "bg": strings,
        "cloth": strings.copy(),
        "light": np.zeros((9, num_frames), dtype=np.float32),
        "stride": 50,
        "camDist": float(np.linalg.norm(cam_loc - joints3d_world[0, 0])),
        "camLoc": cam_loc.reshape(3, 1),
        "zrot": arrays["zrot"][0].astype(np.float32).reshape(num_frames, 1),
        "gender": np.full((num_frames, 1), gender_code, dtype=np.uint8),
        "shape": np.repeat(arrays["betas"][0].astype(np.float32)[:, None], num_frames, axis=1),
        "pose": arrays["pose"][0].T,
        "joints2D": np.rint(arrays["joints2d"][0]).astype(np.float32).transpose(2, 1, 0),
        "joints3D": joints3d_world.astype(np.float32).transpose(2, 1, 0),
    }
    info.update(info_extra or {})
    save_mat(_sibling(mp4, "info"), info, mat_format=mat_format)
    save_mat(_sibling(mp4, "segm"), {f"segm_{i + 1}": s for i, s in enumerate(segm)}, mat_format=mat_format)
    save_mat(_sibling(mp4, "depth"), {f"depth_{i + 1}": d for i, d in enumerate(depth)}, mat_format=mat_format)
    if gtflow is not None:
        stored = arrays["gtflow"][0].astype(np.float32)
        stored[..., 0] *= GTFLOW_X_SIGN
        save_mat(gtflow_path(mp4), {f"gtflow_{i + 1}": f for i, f in enumerate(stored)}, mat_format=mat_format)
    return mp4
