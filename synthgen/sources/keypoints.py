"""2D keypoints of a user's video from files: OpenPose JSON, COCO keypoint JSON, BlazePose npz.

Every reader returns :class:`VideoKeypoints` in the **OpenPose-18 (COCO) layout** of 3DPW's
``poses2d`` (``synthgen.core.joints.OPENPOSE_NAMES``), so the 3DPW protocol of
:mod:`synthgen.steps.detections` (mapping to SMPL joints, visibility, total occlusions, boxes) applies
unchanged: :func:`synthgen.steps.detections.actor_track` takes ``keypoints`` and ``confidence``.

Layouts and how they reach OpenPose-18 (by keypoint name):

* OpenPose ``BODY_25`` and ``COCO`` (18) ``pose_keypoints_2d``: names shared with OpenPose-18
  (BODY_25's mid-hip, heels and toes are dropped).
* COCO-17 (``annotations[*].keypoints``): no neck; *decision*: the neck is the midpoint of the two
  shoulders with the smaller of their confidences (OpenPose's own definition of its neck).
  The third value of each triplet is read as a confidence clipped to [0, 1]: COCO's labelled
  flags 1 and 2 become 1, 0 (not labelled) stays 0, detector scores pass through.
* BlazePose-33 (MediaPipe Pose, :mod:`synthgen.sources.detector`): landmark ``visibility`` is the
  confidence; the neck as for COCO-17; eye centres and ears are kept, the other face, hand and
  foot landmarks dropped.

Frames: an OpenPose folder holds one ``*.json`` per frame, frame ``i`` being the ``i``-th file in
natural sort order. A COCO file orders its ``images`` by ``file_name`` (natural sort) and frame
``i`` is the ``i``-th image; a results list without ``images`` takes ``image_id`` as the 0-based
frame index. A frame with no person has confidence 0 everywhere.

Several people in a frame (*decision*): the person followed is the one with the largest summed
confidence on the first frame with anyone; on later frames the candidate whose confident keypoints'
centre lies nearest the previous choice's centre (frame pixels).

Coordinates are frame pixels, x then y, of the video the keypoints were made on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synthgen.core.errors import (CorruptFileError, EmptyInputError, MissingFileError,
                                  MissingKeyError, check_finite)
from synthgen.core.limits import read_npz
from synthgen.sources.video import natural_key
from synthgen.core.joints import CONFIDENCE_THRESHOLD, OPENPOSE_INDEX, OPENPOSE_NAMES

#: Most frames a keypoint file may index (9 h at 30 fps): a COCO results list's ``image_id`` is a
#: frame index, and the keypoints of every frame up to the largest are held in memory.
MAX_FRAMES = 1_000_000

#: OpenPose BODY_25 keypoint order (``pose_keypoints_2d`` of the default OpenPose model).
BODY25_NAMES: tuple[str, ...] = (
    "nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow",
    "left_wrist", "mid_hip", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee",
    "left_ankle", "right_eye", "left_eye", "right_ear", "left_ear", "left_big_toe",
    "left_small_toe", "left_heel", "right_big_toe", "right_small_toe", "right_heel",
)
#: COCO-17 keypoint order (COCO keypoint annotations and results).
COCO17_NAMES: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)
#: MediaPipe BlazePose-33 landmark order.
BLAZEPOSE_NAMES: tuple[str, ...] = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
    "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_pinky",
    "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb", "left_hip",
    "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "left_heel",
    "right_heel", "left_foot_index", "right_foot_index",
)
#: Layouts by name: the key of :attr:`VideoKeypoints.layout`.
LAYOUTS: dict[str, tuple[str, ...]] = {"openpose18": OPENPOSE_NAMES, "body25": BODY25_NAMES,
                                       "coco17": COCO17_NAMES, "blazepose33": BLAZEPOSE_NAMES}


@dataclass(frozen=True)
class VideoKeypoints:
    """One person's 2D keypoints over a video, OpenPose-18 layout.

    Attributes
    ----------
    keypoints : ndarray, shape (N, 18, 2), float64
        Frame pixels (x, y); 0 where ``confidence`` is 0.
    confidence : ndarray, shape (N, 18), float64
        In [0, 1]; 0 = no keypoint (no person on the frame, or not in the source layout).
    source : str
        The file or folder read.
    layout : str
        The source layout (a key of :data:`LAYOUTS`).
    """

    keypoints: np.ndarray
    confidence: np.ndarray
    source: str
    layout: str

    @property
    def num_frames(self) -> int:
        return len(self.keypoints)

    def detected(self, *, threshold: float = CONFIDENCE_THRESHOLD) -> np.ndarray:
        """(N,) bool: frames with at least one keypoint above ``threshold``."""
        return (self.confidence > threshold).any(axis=1)

    def padded(self, num_frames: int) -> "VideoKeypoints":
        """A copy extended to ``num_frames`` frames with frames of no detection at the end."""
        extra = num_frames - self.num_frames
        if extra < 0:
            raise ValueError(f"cannot pad {self.num_frames} frames down to {num_frames}")
        return VideoKeypoints(np.concatenate([self.keypoints, np.zeros((extra, 18, 2))]),
                              np.concatenate([self.confidence, np.zeros((extra, 18))]),
                              self.source, self.layout)


def to_openpose18(points: np.ndarray, confidence: np.ndarray, layout: str
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Re-order keypoints of a layout into OpenPose-18 (module docstring).

    Parameters
    ----------
    points : ndarray, shape (..., K, 2)
        Frame pixels (x, y) in ``layout`` order.
    confidence : ndarray, shape (..., K)
    layout : str
        A key of :data:`LAYOUTS` with K names.

    Returns
    -------
    keypoints : ndarray, shape (..., 18, 2), float64
        0 where the confidence is 0.
    confidence18 : ndarray, shape (..., 18), float64
        Clipped to [0, 1].
    """
    names = LAYOUTS[layout]
    points = np.asarray(points, dtype=np.float64)
    confidence = np.clip(np.asarray(confidence, dtype=np.float64), 0.0, 1.0)
    if points.shape[-2:] != (len(names), 2) or confidence.shape != points.shape[:-1]:
        raise ValueError(f"{layout} keypoints must be (..., {len(names)}, 2) with confidence "
                         f"(..., {len(names)}), got {points.shape} and {confidence.shape}")
    index = {name: i for i, name in enumerate(names)}
    out = np.zeros(points.shape[:-2] + (len(OPENPOSE_NAMES), 2))
    conf = np.zeros(points.shape[:-2] + (len(OPENPOSE_NAMES),))
    for k, name in enumerate(OPENPOSE_NAMES):
        if name in index:
            out[..., k, :] = points[..., index[name], :]
            conf[..., k] = confidence[..., index[name]]
    if "neck" not in index:
        left, right = index["left_shoulder"], index["right_shoulder"]
        neck = OPENPOSE_INDEX["neck"]
        out[..., neck, :] = (points[..., left, :] + points[..., right, :]) / 2.0
        conf[..., neck] = np.minimum(confidence[..., left], confidence[..., right])
    out[conf <= 0] = 0.0
    return out, conf


def select_person(candidates: list[tuple[np.ndarray, np.ndarray]], *,
                  threshold: float = CONFIDENCE_THRESHOLD) -> tuple[np.ndarray, np.ndarray]:
    """Follow one person through frames with several candidates (module docstring).

    Parameters
    ----------
    candidates : list of (ndarray, ndarray)
        Per frame, keypoints (P, 18, 2) frame pixels and confidences (P, 18) of its P >= 0 people.
    threshold : float
        Keypoints above it place a person's centre.

    Returns
    -------
    keypoints : ndarray, shape (N, 18, 2), float64
    confidence : ndarray, shape (N, 18), float64
        Zeros on frames without anyone.
    """
    keypoints = np.zeros((len(candidates), len(OPENPOSE_NAMES), 2))
    confidence = np.zeros((len(candidates), len(OPENPOSE_NAMES)))
    previous = None
    for i, (points, conf) in enumerate(candidates):
        if len(points) == 0:
            continue
        confident = conf > threshold
        counts = confident.sum(axis=1)
        centres = ((points * confident[..., None]).sum(axis=1)
                   / np.maximum(counts, 1)[:, None])
        if previous is None or not counts.any():
            choice = int(np.argmax(conf.sum(axis=1)))
        else:
            distance = np.linalg.norm(centres - previous, axis=1)
            choice = int(np.argmin(np.where(counts > 0, distance, np.inf)))
        keypoints[i], confidence[i] = points[choice], conf[choice]
        if counts[choice] > 0:
            previous = centres[choice]
    return keypoints, confidence


def _load_json(path: Path):
    if not path.is_file():
        raise MissingFileError(path, "no such keypoint file")
    if path.stat().st_size == 0:
        raise EmptyInputError(path, "empty keypoint file")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CorruptFileError(path, f"not valid JSON ({exc})") from exc


def _triplets(values, path: Path, what: str) -> tuple[np.ndarray, np.ndarray]:
    """A flat ``[x, y, c, ...]`` list -> points (K, 2), confidences (K,)."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise CorruptFileError(path, f"{what}: not a list of numbers") from exc
    if array.ndim != 1 or array.size % 3:
        raise CorruptFileError(path, f"{what}: {array.size} values, not (x, y, confidence) "
                                     f"triplets")
    array = array.reshape(-1, 3)
    return array[:, :2], array[:, 2]


def _layout_of(count: int, path: Path, layouts: tuple[str, ...]) -> str:
    for layout in layouts:
        if len(LAYOUTS[layout]) == count:
            return layout
    known = ", ".join(f"{name} ({len(LAYOUTS[name])})" for name in layouts)
    raise CorruptFileError(path, f"{count} keypoints per person: not one of the layouts {known}")


def read_openpose_folder(folder: str | Path) -> VideoKeypoints:
    """Read OpenPose's per-frame JSON files (``--write_json``) of one video.

    Parameters
    ----------
    folder : str or Path
        Holds one ``*.json`` per frame with ``people[*].pose_keypoints_2d`` in BODY_25 or COCO-18
        layout (the same in every file).

    Raises
    ------
    MissingFileError, EmptyInputError
        No such folder, or no JSON file in it.
    CorruptFileError, MissingKeyError
        A file that is not JSON, lacks ``people`` or ``pose_keypoints_2d``, or has another layout
        than the first; the message names the file.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise MissingFileError(folder, "no such OpenPose keypoint folder")
    files = sorted((p for p in folder.iterdir() if p.suffix == ".json" and p.is_file()
                    and not p.name.startswith(".")), key=lambda p: natural_key(p.name))
    if not files:
        raise EmptyInputError(folder, "no OpenPose .json file in the folder")
    layout = None
    candidates = []
    for path in files:
        data = _load_json(path)
        if not isinstance(data, dict) or "people" not in data:
            raise MissingKeyError(path, "no 'people' list: not an OpenPose keypoint file")
        people = []
        for person in data["people"]:
            if "pose_keypoints_2d" not in person:
                raise MissingKeyError(path, "a person lacks 'pose_keypoints_2d'")
            points, conf = _triplets(person["pose_keypoints_2d"], path, "pose_keypoints_2d")
            this = _layout_of(len(points), path, ("body25", "openpose18"))
            if layout not in (None, this):
                raise CorruptFileError(path, f"{this} keypoints after {layout} in earlier files")
            layout = this
            people.append(to_openpose18(points, conf, this))
        candidates.append(_stack(people))
    keypoints, confidence = select_person(candidates)
    return VideoKeypoints(keypoints, confidence, str(folder), layout or "openpose18")


def _stack(people: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    if not people:
        return np.zeros((0, len(OPENPOSE_NAMES), 2)), np.zeros((0, len(OPENPOSE_NAMES)))
    return np.stack([p for p, _ in people]), np.stack([c for _, c in people])


def read_coco_keypoints(path: str | Path) -> VideoKeypoints:
    """Read COCO-17 person keypoints of one video's frames (module docstring for frame order).

    Parameters
    ----------
    path : str or Path
        A COCO dataset file (``{"images": [...], "annotations": [...]}``) or a COCO results list
        (``[{"image_id", "keypoints", ...}, ...]``), 17 keypoints per person.

    Raises
    ------
    MissingFileError, EmptyInputError, CorruptFileError, MissingKeyError
        Naming the file and what is wrong (no annotation, an unknown ``image_id``, a negative
        frame index, another number of keypoints).
    """
    path = Path(path)
    data = _load_json(path)
    if isinstance(data, dict):
        if "annotations" not in data or "images" not in data:
            raise MissingKeyError(path, "a COCO keypoint file needs 'images' and 'annotations'")
        images = sorted(data["images"], key=lambda image: natural_key(str(image["file_name"])))
        frame_of = {image["id"]: i for i, image in enumerate(images)}
        annotations, num_frames = data["annotations"], len(images)
    elif isinstance(data, list):
        annotations = data
        frame_of = None
        try:
            ids = [int(a["image_id"]) for a in annotations]
        except (KeyError, TypeError, ValueError) as exc:
            raise MissingKeyError(path, "a COCO result lacks an integer 'image_id'") from exc
        if ids and min(ids) < 0:
            raise CorruptFileError(path, f"negative image_id {min(ids)} (read as a frame index)")
        if ids and max(ids) >= MAX_FRAMES:
            raise CorruptFileError(path, f"image_id {max(ids)} (read as a frame index) is beyond "
                                         f"any video ({MAX_FRAMES} frames at most)")
        num_frames = max(ids) + 1 if ids else 0
    else:
        raise CorruptFileError(path, "neither a COCO dataset object nor a results list")
    if num_frames == 0:
        raise EmptyInputError(path, "no image or keypoint annotation")
    people: list[list] = [[] for _ in range(num_frames)]
    for annotation in annotations:
        if "keypoints" not in annotation or "image_id" not in annotation:
            raise MissingKeyError(path, "an annotation lacks 'keypoints' or 'image_id'")
        image_id = annotation["image_id"]
        if frame_of is not None and image_id not in frame_of:
            raise CorruptFileError(path, f"annotation of unknown image_id {image_id}")
        frame = frame_of[image_id] if frame_of is not None else int(image_id)
        points, conf = _triplets(annotation["keypoints"], path, f"image {image_id} keypoints")
        _layout_of(len(points), path, ("coco17",))
        people[frame].append(to_openpose18(points, conf, "coco17"))
    keypoints, confidence = select_person([_stack(p) for p in people])
    return VideoKeypoints(keypoints, confidence, str(path), "coco17")


def read_blazepose_npz(path: str | Path) -> VideoKeypoints:
    """Read the output of :mod:`synthgen.sources.detector.mediapipe_runner`.

    Parameters
    ----------
    path : str or Path
        ``.npz`` with ``landmarks`` (N, 33, 2) frame pixels (x, y), ``visibility`` (N, 33) and
        ``detected`` (N,) bool.

    Raises
    ------
    MissingFileError, CorruptFileError, MissingKeyError
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(path, "no such detector output")
    arrays = read_npz(path, {"landmarks": (MAX_FRAMES, 33, 2), "visibility": (MAX_FRAMES, 33),
                             "detected": (MAX_FRAMES,)})
    for name in ("landmarks", "visibility", "detected"):
        if name not in arrays:
            raise MissingKeyError(path, f"detector output lacks {name!r}")
    visibility = np.where(arrays["detected"][:, None], arrays["visibility"], 0.0)
    try:
        keypoints, confidence = to_openpose18(arrays["landmarks"], visibility, "blazepose33")
    except ValueError as exc:
        raise CorruptFileError(path, str(exc)) from exc
    return VideoKeypoints(keypoints, confidence, str(path), "blazepose33")


def read_keypoints(path: str | Path) -> VideoKeypoints:
    """Read a keypoint file or folder, choosing the reader by what ``path`` is.

    A folder: OpenPose JSON (:func:`read_openpose_folder`); ``.npz``: BlazePose detector output
    (:func:`read_blazepose_npz`); ``.json``: COCO keypoints (:func:`read_coco_keypoints`).

    Raises
    ------
    SourceError
        As the readers; a missing path or another suffix (``MissingFileError`` /
        ``CorruptFileError``); a file whose structure is not its format's
        (``CorruptFileError``); NaN or infinite keypoints or confidences (``NonFiniteError``).
    """
    path = Path(path)
    if path.is_dir():
        reader = read_openpose_folder
    elif not path.exists():
        raise MissingFileError(path, "no such keypoint file or folder")
    elif path.suffix.lower() == ".npz":
        reader = read_blazepose_npz
    elif path.suffix.lower() == ".json":
        reader = read_coco_keypoints
    else:
        raise CorruptFileError(path, "unknown keypoint format: give an OpenPose JSON folder, a "
                                     "COCO .json file or a detector .npz")
    try:
        found = reader(path)
    except (KeyError, TypeError, AttributeError, IndexError, ValueError) as exc:
        # JSON of another structure than the format's, arrays of mismatched shapes
        raise CorruptFileError(path, f"not laid out as its format ({type(exc).__name__}: "
                                     f"{exc})") from exc
    check_finite(path, {"keypoints": found.keypoints, "confidence": found.confidence})
    return found
