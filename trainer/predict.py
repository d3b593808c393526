"""``trainer predict``: per-frame 3D pose and SMPL parameters of the person in a video.

Steps: 2D keypoints (a file read by :func:`synthgen.video_keypoints.read_keypoints`, or the
isolated MediaPipe detector of :mod:`synthgen.detector`) -> the 3DPW protocol, boxes, crops and
crop flow by the training data's backend, in clips of the network's length covering the video
(:mod:`synthgen.video_clips`, the public boundary this module uses; it never re-implements a
pipeline step) -> Motion HMR -> one prediction per frame (the first clip covering a frame gives
it, as in evaluation).

Outputs in ``out_dir``:

- ``predictions.npz``: ``frame`` (N,) int; ``pose`` (N, 72) SMPL axis-angle radians (global
  orientation first); ``betas`` (N, 10); ``camera`` (N, 3) weak-perspective ``(s, tx, ty)``
  (:func:`trainer.smpl.weak_perspective`); ``joints3d`` (N, 24, 3) metres in SMPL's model frame
  rotated by the predicted global orientation (x right, y down in the image, no translation);
  ``joints2d`` (N, 24, 2) the projection of ``joints3d``, frame pixels (x, y); ``keypoints2d``
  (N, 24, 2) and ``keypoint_confidence`` (N, 24) the input detections in SMPL slots, frame
  pixels; ``boxes`` (N, 3) ``(x0, y0, side)`` frame pixels; ``total_occlusion`` (N,) bool (fewer
  than 7 confident keypoints: the network saw a blank input there).
- ``predictions.json``: the same per frame, with the video, checkpoint, joint names and units.
- ``skeleton.mp4``: the video with the projected skeleton (grey on totally occluded frames).

The crop flow is only computed when the network's modality uses flow.

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

from synthgen.core.joints import SMPL_JOINT_NAMES, SMPL_PARENTS
from synthgen.sources.video import iter_source_frames
from synthgen.video_clips import VideoClip, VideoPlan, flow_backend, iter_clips, plan_video
from synthgen.video_keypoints import VideoKeypoints, read_keypoints
from trainer.checkpoint import checkpoint_smpl, load_checkpoint, load_model
from trainer.config import MODALITIES
from trainer.evaluate import TrainingData, training_data
from trainer.forward import predict_parameters, select_device
from trainer.model.regressor import BETAS, CAMERA, POSE
from trainer.smpl import SMPLJoints, weak_perspective

#: Detectors ``--detector`` can run.
DETECTORS = ("mediapipe",)


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


def video_keypoints(video: str | Path, *, keypoints: str | Path | None = None,
                    detector: str | None = None, out_dir: str | Path | None = None,
                    log=print) -> VideoKeypoints:
    """The 2D keypoints of a video: read from ``keypoints`` or detected by ``detector``.

    Raises
    ------
    ValueError
        Neither or both given; an unknown detector.
    SourceError
        An unreadable keypoint file.
    synthgen.detector.DetectorUnavailableError
        ``detector`` without its environment (the message says ``make detector``).
    """
    if (keypoints is None) == (detector is None):
        raise ValueError("give exactly one of --keypoints FILE|DIR and --detector mediapipe")
    if keypoints is not None:
        return read_keypoints(keypoints)
    if detector not in DETECTORS:
        raise ValueError(f"unknown detector {detector!r}; known: {list(DETECTORS)}")
    from synthgen.detector import run_mediapipe

    log(f"running MediaPipe Pose on {video} (isolated detector environment)")
    out = Path(out_dir) / "keypoints_mediapipe.npz" if out_dir is not None else None
    return run_mediapipe(video, out=out)


def _batch(clips: list[VideoClip], device: torch.device) -> dict[str, torch.Tensor]:
    """Clips as the device batch :func:`trainer.data.make_inputs` reads (store names)."""
    arrays = {"total_occlusion": [c.total_occlusion for c in clips],
              "joints2d_crop": [c.joints2d_crop for c in clips],
              "visibility": [c.visibility for c in clips],
              "rgb": [c.rgb[:-1] for c in clips]}
    if clips[0].flow is not None:
        arrays["flow"] = [c.flow for c in clips]
        arrays["flow_quantum"] = [np.float32(c.flow_quantum) for c in clips]
    return {name: torch.as_tensor(np.stack(values)).to(device) for name, values in arrays.items()}


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


def predict_video(video: str | Path, checkpoint: dict, keypoints: VideoKeypoints, *,
                  training_store: str | None = None, flow_checkpoint: str | None = None,
                  smpl: str | None = None, device: str = "auto", clip_length: int | None = None,
                  log=print) -> tuple[Prediction, VideoPlan, TrainingData]:
    """Run a checkpoint on a video (module docstring).

    Parameters
    ----------
    video : str or Path
        A video file or frame folder.
    checkpoint : dict
        A ``last.pt`` of :func:`trainer.train.train` (:func:`trainer.checkpoint.load_checkpoint`).
    keypoints : VideoKeypoints
        One row per frame (:func:`video_keypoints`).
    training_store : str, optional
        The checkpoint's training store, if it moved (crop flow and crops are read from it).
    flow_checkpoint : str, optional
        FlowNet weights, when the training data's flow was a FlowNet whose file moved.
    smpl : str, optional
        SMPL model (default: the checkpoint's ``model.smpl``).
    device : str
    clip_length : int, optional
        Frames per clip (default: the network's training clip length).

    Returns
    -------
    Prediction, VideoPlan, TrainingData
        The predictions, the clips, and the training data's crop flow and crops used.

    Raises
    ------
    FileNotFoundError, ValueError
        As :func:`trainer.evaluate.training_data`, :func:`synthgen.video_clips.flow_backend`.
    SourceError
        An unreadable video, mismatching keypoints, no frame with enough keypoints.
    """
    training = training_data(checkpoint, training_store=training_store)
    torch_device = select_device(device)
    model, config = load_model(checkpoint, device=torch_device)
    body = SMPLJoints.from_path(checkpoint_smpl(config, smpl), gender="neutral").to(torch_device)
    backend = (flow_backend(training.crop_flow or {}, checkpoint=flow_checkpoint,
                            device=str(torch_device))
               if "flow" in MODALITIES[config.data.modality] else None)
    plan = plan_video(video, keypoints, crop_size=training.crop_size,
                      person_height=training.crop_person_height,
                      clip_length=clip_length or config.data.clip_length)
    if plan.padded_frames:
        log(f"note: keypoints cover {keypoints.num_frames} of {plan.video.num_frames} frames; "
            f"the last {plan.padded_frames} count as frames without detection")
    log(f"{plan.video.num_frames} frames, {len(plan.starts)} clips of {plan.clip_length}, "
        f"{int(plan.track.total_occlusion.sum())} frames with too few keypoints, "
        f"crop flow: {backend.name if backend is not None else 'not used by the network'}")
    rows: dict[str, list] = {name: [] for name in Prediction.__dataclass_fields__}
    pending: list[VideoClip] = []

    @torch.no_grad()
    def run(clips: list[VideoClip]) -> None:
        theta = predict_parameters(model, _batch(clips, torch_device), config=config.data,
                                   crop_size=training.crop_size)
        joints = body(theta[..., POSE], theta[..., BETAS])
        projected = weak_perspective(joints, theta[..., CAMERA]).cpu().numpy()
        theta, joints = theta.cpu().numpy(), joints.cpu().numpy()
        for k, clip in enumerate(clips):
            keep = clip.first_cover
            boxes = crop_boxes_of_predictions(clip.boxes)
            frame_px = normalised_to_frame(projected[k], boxes, crop_size=training.crop_size)
            rows["frame"].append(clip.start + np.flatnonzero(keep))
            rows["pose"].append(theta[k, keep, POSE])
            rows["betas"].append(theta[k, keep, BETAS])
            rows["camera"].append(theta[k, keep, CAMERA])
            rows["joints3d"].append(joints[k, keep])
            rows["joints2d"].append(frame_px[keep].astype(np.float32))
            rows["keypoints2d"].append(clip.joints2d[keep])
            rows["keypoint_confidence"].append(clip.keypoint_confidence[keep])
            rows["boxes"].append(clip.boxes[keep])
            rows["total_occlusion"].append(clip.total_occlusion[keep])

    for clip in iter_clips(plan, backend=backend, flow_quantum=training.flow_quantum):
        pending.append(clip)
        if len(pending) == config.data.batch_size:
            run(pending)
            pending = []
    if pending:
        run(pending)
    prediction = Prediction(**{name: np.concatenate(values) for name, values in rows.items()})
    order = np.argsort(prediction.frame, kind="stable")
    return Prediction(**{k: v[order] for k, v in prediction.arrays().items()}), plan, training


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


def write_prediction(prediction: Prediction, plan: VideoPlan, out_dir: str | Path, *,
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
    info = plan.video
    document = {"video": info.path, "fps": info.fps, "width": info.width,
                "height": info.height, "num_frames": info.num_frames,
                "clip_length": plan.clip_length, **meta,
                "joint_names": list(SMPL_JOINT_NAMES), "units": UNITS,
                "frames": [{name: np.asarray(value[i]).tolist()
                            for name, value in prediction.arrays().items()}
                           for i in range(len(prediction.frame))]}
    paths["json"].write_text(json.dumps(document))
    render_skeleton_video(plan, prediction, paths["mp4"])
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


def render_skeleton_video(plan: VideoPlan, prediction: Prediction, path: Path) -> None:
    """The video with each frame's projected skeleton, mp4 (``mp4v``) at the video's rate.

    Raises
    ------
    OSError
        OpenCV cannot write mp4 here.
    """
    info = plan.video
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), float(info.fps or 30.0),
                             (info.width, info.height))
    if not writer.isOpened():
        raise OSError(f"{path}: OpenCV cannot open an mp4v video writer here")
    try:
        for index, frame in iter_source_frames(info, prediction.frame):
            i = int(np.searchsorted(prediction.frame, index))
            picture = draw_skeleton(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR),
                                    prediction.joints2d[i],
                                    occluded=bool(prediction.total_occlusion[i]),
                                    keypoints=prediction.keypoints2d[i])
            writer.write(picture)
    finally:
        writer.release()


def predict(video: str | Path, checkpoint_path: str | Path, out_dir: str | Path, *,
            keypoints: str | Path | None = None, detector: str | None = None,
            training_store: str | None = None, flow_checkpoint: str | None = None,
            smpl: str | None = None, device: str = "auto", clip_length: int | None = None,
            log=print) -> dict[str, Path]:
    """``trainer predict``: keypoints, network, and the three output files.

    Returns
    -------
    dict of str to Path
        ``npz``, ``json``, ``mp4`` (and ``keypoints`` when the detector ran).
    """
    checkpoint = load_checkpoint(checkpoint_path)  # refused before any detector runs
    found = video_keypoints(video, keypoints=keypoints, detector=detector, out_dir=out_dir,
                            log=log)
    detected = int(found.detected().sum())
    log(f"keypoints: {found.layout} from {found.source}, a person on {detected} of "
        f"{found.num_frames} frames")
    prediction, plan, training = predict_video(
        video, checkpoint, found, training_store=training_store,
        flow_checkpoint=flow_checkpoint, smpl=smpl, device=device, clip_length=clip_length,
        log=log)
    meta = {"checkpoint": str(checkpoint_path), "keypoints": found.source,
            "keypoint_layout": found.layout, "crop_flow": training.crop_flow,
            "crop_size": training.crop_size}
    paths = write_prediction(prediction, plan, out_dir, meta=meta)
    if detector is not None:
        paths["keypoints"] = Path(out_dir) / "keypoints_mediapipe.npz"
    log(f"wrote {', '.join(str(p) for p in paths.values())}")
    return paths
