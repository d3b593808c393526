"""``trainer predict``: per-frame 3D pose and SMPL parameters of the person in a video.

The video comes as a ``"video"`` store written by ``synthgen build-video VIDEO (--keypoints FILE
| --detector mediapipe) --match-store TRAIN --out V.zarr`` (:func:`synthgen.store.schema_video`:
crops, crop flow, keypoints and boxes made as the training data's, in clips covering the video).
This module reads it through :mod:`synthgen.store` only, checks it against the checkpoint's
training data (:func:`synthgen.store.check_compatible`: crop size, person height and, when the
network sees flow, the crop-flow backend), runs Motion HMR and keeps one prediction per frame
(the first clip covering a frame gives it, as in evaluation). The skeleton video is drawn on the
full frames decoded with OpenCV from the store's ``attrs["video"]``.

Outputs in ``out_dir``:

- ``predictions.npz``: ``frame`` (N,) int; ``pose`` (N, 72) SMPL axis-angle radians (global
  orientation first); ``betas`` (N, 10); ``camera`` (N, 3) weak-perspective ``(s, tx, ty)``
  (:func:`trainer.smpl.weak_perspective`); ``joints3d`` (N, 24, 3) metres in SMPL's model frame
  rotated by the predicted global orientation (x right, y down in the image, no translation);
  ``joints2d`` (N, 24, 2) the projection of ``joints3d``, frame pixels (x, y); ``keypoints2d``
  (N, 24, 2) and ``keypoint_confidence`` (N, 24) the input detections in SMPL slots, frame
  pixels; ``boxes`` (N, 3) ``(x0, y0, side)`` frame pixels; ``total_occlusion`` (N,) bool (fewer
  than 7 confident keypoints: the network saw a blank input there).
- ``predictions.json``: the same per frame, with the video, store, checkpoint, joint names and
  units.
- ``skeleton.mp4``: the video with the projected skeleton (grey on totally occluded frames).

Projection: the camera maps joints to normalised crop coordinates of the frame's box (the last
frame of a clip, predicted by the *future* head of the last pair, uses the box of the frame before
it, as in training); crop pixels ``(n + 1) * S / 2 - 0.5``, then frame pixels through the box.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from synthgen import store as synthstore
from synthgen.core.joints import SMPL_JOINT_NAMES, SMPL_PARENTS
from trainer.checkpoint import checkpoint_smpl, load_checkpoint, load_model
from trainer.config import MODALITIES
from trainer.evaluate import TrainingData, training_data
from trainer.forward import predict_parameters, select_device
from trainer.model.regressor import BETAS, CAMERA, POSE
from trainer.smpl import SMPLJoints, weak_perspective

#: Store arrays the network's inputs are made from (``flow`` only when it sees flow).
INPUTS = ("rgb", "joints2d_crop", "visibility", "total_occlusion")
#: Store arrays copied into the per-frame outputs, with their output names.
COPIED = {"joints2d": "keypoints2d", "keypoint_confidence": "keypoint_confidence",
          "boxes": "boxes", "total_occlusion": "total_occlusion"}


@dataclass(frozen=True)
class Prediction:
    """Per-frame predictions over a whole video (module docstring for units and frames)."""

    frame: np.ndarray
    pose: np.ndarray
    betas: np.ndarray
    camera: np.ndarray
    joints3d: np.ndarray
    joints2d: np.ndarray
    keypoints2d: np.ndarray
    keypoint_confidence: np.ndarray
    boxes: np.ndarray
    total_occlusion: np.ndarray

    def arrays(self) -> dict[str, np.ndarray]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class VideoStore:
    """A ``"video"`` store opened for prediction.

    Attributes
    ----------
    url : str
    reader : synthgen.store.StoreReader
    video : dict
        ``attrs["video"]``: ``path``, ``fps``, ``width``, ``height``, ``num_frames``,
        ``is_folder`` (and ``frames``, the file names in decode order, for a folder).
    clip_length : int
    """

    url: str
    reader: synthstore.StoreReader
    video: dict
    clip_length: int

    @property
    def attrs(self) -> dict:
        return self.reader.attrs


def open_video_store(url: str, *, video: str | Path | None = None) -> VideoStore:
    """Open a video store (``synthgen build-video``), refusing other kinds and unfinished ones.

    Parameters
    ----------
    video : str or Path, optional
        The store's video, if it moved (default: the path the store records).

    Raises
    ------
    FileNotFoundError
        No store at ``url``; the video is gone.
    ValueError
        Another schema version, another kind of store, or unfinished shards.
    """
    url = str(url)
    group = synthstore.open_group(url)
    kind = group.attrs.get("kind", "synthetic")
    if kind != "video":
        raise ValueError(f"{url} is a {kind!r} store, not a video store: make one with "
                         f"`synthgen build-video VIDEO --keypoints FILE --match-store TRAIN "
                         f"--out V.zarr`")
    done = synthstore.finished_shards(group)
    if not done.all():
        raise ValueError(f"{url}: {int((~done).sum())} of {done.size} shards unfinished (the "
                         f"build stopped); rebuild it with synthgen build-video --overwrite")
    info = dict(group.attrs["video"])
    if video is not None:
        info["path"] = str(video)
    if not Path(info["path"]).exists():
        raise FileNotFoundError(f"{url}: its video {info['path']} is gone; pass --video with "
                                f"its new path")
    return VideoStore(url, synthstore.StoreReader(url, group), info,
                      int(group.attrs["num_frames"]))


def check_video_store(video: VideoStore, training: TrainingData, *, uses_flow: bool) -> None:
    """Refuse a video store made differently from the network's training data.

    Raises
    ------
    ValueError
        Crop size, person height (when both record one) or, for a network that sees flow, the
        crop-flow backend differ; or the store has no flow and the network needs it.
    """
    if uses_flow and "flow" not in video.reader.specs:
        raise ValueError(f"{video.url} has no crop flow (built with --no-flow) but the network "
                         f"sees flow; rebuild it without --no-flow")
    synthstore.check_compatible(
        synthstore.spec(video.reader.group, source=f"video store {video.url}"), training.spec(),
        fields=("crop_size", "person_height") + (("crop_flow",) if uses_flow else ()),
        what=f"cannot predict on {video.url} with this network",
        hint=f"rebuild it with synthgen build-video ... --match-store {training.source}")


def _batch(video: VideoStore, examples: list[int], *, uses_flow: bool,
           device: torch.device) -> dict[str, torch.Tensor]:
    """Clips of the store as the device batch :func:`trainer.data.make_inputs` reads."""
    names = INPUTS + (("flow",) if uses_flow else ())
    rows = [video.reader.read_example(i, names) for i in examples]
    arrays = {name: np.stack([row[name] for row in rows]) for name in names}
    arrays["rgb"] = arrays["rgb"][:, :-1]
    if uses_flow:
        quantum = np.float32(video.reader.array_attrs("flow")["quantum_px"])
        arrays["flow_quantum"] = np.full(len(examples), quantum)
    return {name: torch.as_tensor(values).to(device) for name, values in arrays.items()}


def crop_boxes_of_predictions(boxes: np.ndarray) -> np.ndarray:
    """The box each test-time prediction of a clip is expressed in.

    Parameters
    ----------
    boxes : ndarray, shape (T, 3)
        The clip's boxes, frame pixels.

    Returns
    -------
    ndarray, shape (T, 3)
        Box t for frames t < T - 1 (current head of pair t); box T - 2 for frame T - 1 (future
        head of the last pair). A one-frame clip keeps its box.
    """
    index = np.arange(len(boxes))
    if len(boxes) >= 2:
        index[-1] = len(boxes) - 2
    return np.asarray(boxes)[index]


def normalised_to_frame(points: np.ndarray, boxes: np.ndarray, *, crop_size: int) -> np.ndarray:
    """Normalised crop coordinates (-1..1 edge to edge) of box t -> frame pixels (x, y).

    Parameters
    ----------
    points : ndarray, shape (T, J, 2)
    boxes : ndarray, shape (T, 3)
        ``(x0, y0, side)`` frame pixels.
    crop_size : int
        S, the crop side the boxes are resampled to (pixel centres at integers).

    Returns
    -------
    ndarray, shape (T, J, 2), float64
    """
    crop = (np.asarray(points, np.float64) + 1.0) * (crop_size / 2.0) - 0.5
    boxes = np.asarray(boxes, np.float64)
    return crop * (boxes[:, None, 2:3] / crop_size) + boxes[:, None, :2]


def predict_store(video: VideoStore, checkpoint: dict, *, training_store: str | None = None,
                  smpl: str | None = None, device: str = "auto",
                  log=print) -> tuple[Prediction, TrainingData]:
    """Run a checkpoint on a video store (module docstring).

    Parameters
    ----------
    video : VideoStore
        From :func:`open_video_store`.
    checkpoint : dict
        A ``last.pt`` of :func:`trainer.train.train` (:func:`trainer.checkpoint.load_checkpoint`).
    training_store : str, optional
        The checkpoint's training store, if it moved (its crop flow and crops are compared).
    smpl : str, optional
        SMPL model (default: the checkpoint's ``model.smpl``).
    device : str

    Returns
    -------
    Prediction, TrainingData
        The predictions, and the training data the store was checked against.

    Raises
    ------
    FileNotFoundError, ValueError
        As :func:`trainer.evaluate.training_data`, :func:`check_video_store`.
    synthgen.store.StoreDamageError
        A damaged shard.
    """
    training = training_data(checkpoint, training_store=training_store)
    torch_device = select_device(device)
    model, config = load_model(checkpoint, device=torch_device)
    uses_flow = "flow" in MODALITIES[config.data.modality]
    check_video_store(video, training, uses_flow=uses_flow)
    body = SMPLJoints.from_path(checkpoint_smpl(config, smpl), gender="neutral").to(torch_device)
    attrs = video.attrs
    if attrs.get("padded_frames"):
        log(f"note: the keypoints did not cover the last {attrs['padded_frames']} of "
            f"{video.video['num_frames']} frames: they count as frames without detection")
    log(f"{video.video['num_frames']} frames, {video.reader.num_examples} clips of "
        f"{video.clip_length}, crop flow: "
        f"{attrs['crop_flow']['name'] if uses_flow else 'not used by the network'}")
    rows: dict[str, list] = {name: [] for name in Prediction.__dataclass_fields__}
    size = training.crop_size

    @torch.no_grad()
    def run(examples: list[int]) -> None:
        theta = predict_parameters(model, _batch(video, examples, uses_flow=uses_flow,
                                                 device=torch_device),
                                   config=config.data, crop_size=size)
        joints = body(theta[..., POSE], theta[..., BETAS])
        projected = weak_perspective(joints, theta[..., CAMERA]).cpu().numpy()
        theta, joints = theta.cpu().numpy(), joints.cpu().numpy()
        for k, index in enumerate(examples):
            clip = video.reader.read_example(index, ("first_cover", "frame_index", *COPIED))
            keep = clip["first_cover"]
            boxes = crop_boxes_of_predictions(clip["boxes"])
            frame_px = normalised_to_frame(projected[k], boxes, crop_size=size)
            rows["frame"].append(clip["frame_index"][keep].astype(np.int64))
            rows["pose"].append(theta[k, keep, POSE])
            rows["betas"].append(theta[k, keep, BETAS])
            rows["camera"].append(theta[k, keep, CAMERA])
            rows["joints3d"].append(joints[k, keep])
            rows["joints2d"].append(frame_px[keep].astype(np.float32))
            for name, output in COPIED.items():
                rows[output].append(clip[name][keep])

    examples = list(range(video.reader.num_examples))
    for first in range(0, len(examples), config.data.batch_size):
        run(examples[first:first + config.data.batch_size])
    prediction = Prediction(**{name: np.concatenate(values) for name, values in rows.items()})
    order = np.argsort(prediction.frame, kind="stable")
    return Prediction(**{k: v[order] for k, v in prediction.arrays().items()}), training


# ----------------------------------------------------------------------------------------------
# Outputs

UNITS = {
    "frame": "video frame index (decode order)",
    "pose": "SMPL axis-angle, radians, global orientation first",
    "betas": "SMPL shape coefficients",
    "camera": "weak-perspective (s, tx, ty): s * (X[:2] + (tx, ty)) = normalised crop coordinates",
    "joints3d": "24 SMPL joints, metres, SMPL model frame rotated by the global orientation "
                "(x right, y down in the image), no translation",
    "joints2d": "projection of joints3d, frame pixels (x, y)",
    "keypoints2d": "input 2D keypoints in SMPL joint slots, frame pixels (x, y); 0 = none",
    "keypoint_confidence": "input keypoint confidence per SMPL joint (0 = none)",
    "boxes": "square crop box (x0, y0, side), frame pixels",
    "total_occlusion": "fewer than 7 confident keypoints: the network saw a blank input",
}


def write_prediction(prediction: Prediction, video: VideoStore, out_dir: str | Path, *,
                     meta: dict) -> dict[str, Path]:
    """Write ``predictions.npz``, ``predictions.json`` and ``skeleton.mp4`` (module docstring).

    Parameters
    ----------
    meta : dict
        JSON-serialisable facts recorded in the JSON (checkpoint, keypoint source, crop flow).

    Returns
    -------
    dict of str to Path
        ``npz``, ``json``, ``mp4``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"npz": out / "predictions.npz", "json": out / "predictions.json",
             "mp4": out / "skeleton.mp4"}
    np.savez_compressed(paths["npz"], **prediction.arrays())
    info = video.video
    document = {"video": info["path"], "fps": info["fps"], "width": info["width"],
                "height": info["height"], "num_frames": info["num_frames"],
                "store": video.url, "clip_length": video.clip_length, **meta,
                "joint_names": list(SMPL_JOINT_NAMES), "units": UNITS,
                "frames": [{name: np.asarray(value[i]).tolist()
                            for name, value in prediction.arrays().items()}
                           for i in range(len(prediction.frame))]}
    paths["json"].write_text(json.dumps(document))
    render_skeleton_video(video.video, prediction, paths["mp4"])
    return paths


#: BGR colours of the skeleton: the person's left side, right side, the middle.
LEFT, RIGHT, MIDDLE = (255, 128, 0), (0, 0, 255), (0, 200, 0)
OCCLUDED = (160, 160, 160)


def draw_skeleton(image: np.ndarray, joints: np.ndarray, *, occluded: bool,
                  keypoints: np.ndarray | None = None) -> np.ndarray:
    """Draw a 24-joint SMPL skeleton (frame pixels) and optional input keypoints on a BGR copy.

    Limbs of the person's left are blue, right red, the spine green; all grey when ``occluded``.
    Input keypoints (24, 2) are white dots (0 = none, not drawn).
    """
    out = np.ascontiguousarray(image).copy()
    shift = 4
    points = np.round(np.asarray(joints, np.float64) * (1 << shift)).astype(np.int64)
    for child, parent in enumerate(SMPL_PARENTS):
        if parent < 0:
            continue
        name = SMPL_JOINT_NAMES[child]
        colour = OCCLUDED if occluded else (LEFT if name.startswith("left") else
                                            RIGHT if name.startswith("right") else MIDDLE)
        cv2.line(out, tuple(map(int, points[child])), tuple(map(int, points[parent])), colour, 2,
                 cv2.LINE_AA, shift)
    if keypoints is not None:
        for point in np.asarray(keypoints, np.float64):
            if point.any():
                centre = tuple(int(v) for v in np.round(point * (1 << shift)))
                cv2.circle(out, centre, 2 << shift, (255, 255, 255), -1, cv2.LINE_AA, shift)
    if occluded:
        cv2.putText(out, "too few keypoints", (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    (255, 255, 255), 1, cv2.LINE_AA)
    return out


def iter_video_frames(video: dict):
    """The frames of a store's ``attrs["video"]`` in decode order, BGR uint8, decoded by OpenCV
    (a video file, or a frame folder's ``frames`` files)."""
    if video.get("is_folder"):
        for name in video["frames"]:
            image = cv2.imread(str(Path(video["path"]) / name), cv2.IMREAD_COLOR)
            if image is None:
                raise OSError(f"{Path(video['path']) / name}: OpenCV cannot read this frame")
            yield image
        return
    capture = cv2.VideoCapture(str(video["path"]))
    try:
        while True:
            ok, image = capture.read()
            if not ok:
                return
            yield image
    finally:
        capture.release()


def render_skeleton_video(video: dict, prediction: Prediction, path: Path) -> None:
    """The video with each frame's projected skeleton, mp4 (``mp4v``) at the video's rate.

    Parameters
    ----------
    video : dict
        A video store's ``attrs["video"]`` (:class:`VideoStore`).

    Raises
    ------
    OSError
        OpenCV cannot write mp4 here, or a frame does not decode.
    """
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"),
                             float(video["fps"] or 30.0), (video["width"], video["height"]))
    if not writer.isOpened():
        raise OSError(f"{path}: OpenCV cannot open an mp4v video writer here")
    wanted = {int(f): i for i, f in enumerate(prediction.frame)}
    try:
        for index, frame in enumerate(iter_video_frames(video)):
            if index >= video["num_frames"]:
                break
            if index not in wanted:
                continue
            i = wanted[index]
            writer.write(draw_skeleton(frame, prediction.joints2d[i],
                                       occluded=bool(prediction.total_occlusion[i]),
                                       keypoints=prediction.keypoints2d[i]))
    finally:
        writer.release()


def predict(store_url: str, checkpoint_path: str | Path, out_dir: str | Path, *,
            training_store: str | None = None, video: str | Path | None = None,
            smpl: str | None = None, device: str = "auto", log=print) -> dict[str, Path]:
    """``trainer predict``: a video store, the network, and the three output files.

    Parameters
    ----------
    store_url : str
        A video store (``synthgen build-video``).
    video : str or Path, optional
        The store's video, if it moved.

    Returns
    -------
    dict of str to Path
        ``npz``, ``json``, ``mp4``.
    """
    checkpoint = load_checkpoint(checkpoint_path)
    opened = open_video_store(store_url, video=video)
    prediction, training = predict_store(opened, checkpoint, training_store=training_store,
                                         smpl=smpl, device=device, log=log)
    keypoints = opened.attrs["keypoints"]
    meta = {"checkpoint": str(checkpoint_path), "keypoints": keypoints["source"],
            "keypoint_layout": keypoints["layout"], "crop_flow": opened.attrs["crop_flow"],
            "crop_size": training.crop_size}
    paths = write_prediction(prediction, opened, out_dir, meta=meta)
    log(f"wrote {', '.join(str(p) for p in paths.values())}")
    return paths
