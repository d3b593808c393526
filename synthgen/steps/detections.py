"""3DPW evaluation protocol on numpy arrays (method section 3): keypoints, occlusions, boxes, clips.

From one actor's OpenPose-18 detections (``poses2d`` of a 3DPW sequence file) to what a store of
evaluation clips holds, with the conventions of training stores:

* **Keypoint mapping** (:data:`SMPL_FROM_OPENPOSE`): the 12 limb keypoints map one to one; SMPL
  ``neck`` takes OpenPose's neck and SMPL ``head`` OpenPose's nose (*decision*: the common
  approximation; OpenPose has no head-centre point). Eyes and ears have no SMPL joint; they only
  help place the box. The other 10 SMPL joints (pelvis, spine, feet, hands, collars) have no
  detection.
* **Visibility**: a keypoint is visible when its confidence exceeds ``threshold`` (0.1). A frame
  with fewer than ``min_visible`` (7) visible keypoints of the 14 COCO joints
  (``synthgen.core.joints.COCO14``) is a **total occlusion**, fed to the network as such.
* **Hidden-reason bits** (``visibility``, as in training stores, 0 = visible):
  :data:`TOTAL_OCCLUSION` (4, shared with training) on every joint of a totally occluded frame,
  :data:`LOW_CONFIDENCE` (16) for a mapped joint at or below the threshold,
  :data:`NO_KEYPOINT` (32) for an SMPL joint the detector has no keypoint for.
* **Boxes** (*decision*): HMR's box (``synthgen.steps.crops.boxes_from_keypoints``) around the
  visible detections of all 18 OpenPose keypoints, on every frame that is not a total occlusion;
  on totally occluded frames (whose inputs are zeroed anyway) the box is linearly interpolated
  between the nearest boxed frames of the actor's whole sequence, and held constant before the
  first and after the last.
* **Clips** (*decision*): non-overlapping windows of ``length`` frames from frame 0; when the
  sequence length is not a multiple, one more window ends at the last frame. A frame covered by
  two windows is flagged for evaluation only in the first (``first_cover``), so every frame
  counts once.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from synthgen.core.joints import (
    COCO14,
    CONFIDENCE_THRESHOLD,
    MIN_VISIBLE,
    NUM_SMPL_JOINTS,
    OPENPOSE_INDEX,
    SMPL_FROM_OPENPOSE,
    SMPL_INDEX,
)
from synthgen.steps.crops import boxes_from_keypoints, frame_to_crop
from synthgen.steps.visibility import TOTAL_OCCLUSION

#: Index arrays: ``smpl[MAP_SMPL] = openpose[MAP_OPENPOSE]``.
MAP_SMPL = np.array([SMPL_INDEX[s] for s in SMPL_FROM_OPENPOSE], dtype=np.int64)
MAP_OPENPOSE = np.array([OPENPOSE_INDEX[o] for o in SMPL_FROM_OPENPOSE.values()], dtype=np.int64)

#: Hidden-reason bits of 3DPW stores, beside training's (``synthgen.steps.visibility``).
LOW_CONFIDENCE = np.uint8(16)
NO_KEYPOINT = np.uint8(32)
VISIBILITY_BITS = {"total_occlusion": int(TOTAL_OCCLUSION), "low_confidence": int(LOW_CONFIDENCE),
                   "no_keypoint": int(NO_KEYPOINT)}



def openpose_to_smpl(keypoints: np.ndarray, confidence: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Place OpenPose-18 detections in the 24 SMPL joint slots (:data:`SMPL_FROM_OPENPOSE`).

    Parameters
    ----------
    keypoints : ndarray, shape (N, 18, 2)
        Frame pixels (x, y), OpenPose-18 order.
    confidence : ndarray, shape (N, 18)

    Returns
    -------
    joints2d : ndarray, shape (N, 24, 2), float64
        Frame pixels (x, y); 0 for SMPL joints without a keypoint.
    confidence24 : ndarray, shape (N, 24), float64
        0 for SMPL joints without a keypoint.
    """
    keypoints = np.asarray(keypoints, dtype=np.float64)
    confidence = np.asarray(confidence, dtype=np.float64)
    joints2d = np.zeros((len(keypoints), NUM_SMPL_JOINTS, 2))
    confidence24 = np.zeros((len(keypoints), NUM_SMPL_JOINTS))
    joints2d[:, MAP_SMPL] = keypoints[:, MAP_OPENPOSE]
    confidence24[:, MAP_SMPL] = confidence[:, MAP_OPENPOSE]
    return joints2d, confidence24


def total_occlusions(confidence24: np.ndarray, *, threshold: float = CONFIDENCE_THRESHOLD,
                     min_visible: int = MIN_VISIBLE) -> np.ndarray:
    """Frames with fewer than ``min_visible`` of the 14 COCO joints above ``threshold``.

    Parameters
    ----------
    confidence24 : ndarray, shape (N, 24)
        Per SMPL joint (:func:`openpose_to_smpl`).

    Returns
    -------
    ndarray, shape (N,), bool
    """
    visible = np.asarray(confidence24)[:, COCO14] > threshold
    return visible.sum(axis=1) < min_visible


def visibility_bits(confidence24: np.ndarray, total_occlusion: np.ndarray, *,
                    threshold: float = CONFIDENCE_THRESHOLD) -> np.ndarray:
    """Hidden-reason bitmask per SMPL joint (module docstring; 0 = visible).

    Parameters
    ----------
    confidence24 : ndarray, shape (N, 24)
    total_occlusion : ndarray, shape (N,), bool

    Returns
    -------
    ndarray, shape (N, 24), uint8
    """
    confidence24 = np.asarray(confidence24)
    bits = np.zeros(confidence24.shape, dtype=np.uint8)
    mapped = np.zeros(NUM_SMPL_JOINTS, dtype=bool)
    mapped[MAP_SMPL] = True
    bits[:, ~mapped] |= NO_KEYPOINT
    bits[(confidence24 <= threshold) & mapped] |= LOW_CONFIDENCE
    bits[np.asarray(total_occlusion, dtype=bool)] |= TOTAL_OCCLUSION
    return bits


def detection_boxes(keypoints: np.ndarray, confidence: np.ndarray, total_occlusion: np.ndarray, *,
                    size: int, person_height: float,
                    threshold: float = CONFIDENCE_THRESHOLD) -> np.ndarray:
    """HMR boxes around the visible detections, interpolated over totally occluded frames.

    Parameters
    ----------
    keypoints : ndarray, shape (N, 18, 2)
        OpenPose-18 detections, frame pixels (x, y).
    confidence : ndarray, shape (N, 18)
    total_occlusion : ndarray, shape (N,), bool
        Frames without a box of their own (:func:`total_occlusions`).
    size, person_height
        Crop side and person height in crop pixels (``synthgen.config.CropConfig``).

    Returns
    -------
    ndarray, shape (N, 3), float64
        ``(x0, y0, side)`` in frame pixels.

    Raises
    ------
    ValueError
        No frame has a box of its own (every frame is a total occlusion).
    """
    keypoints = np.asarray(keypoints, dtype=np.float64)
    own = np.flatnonzero(~np.asarray(total_occlusion, dtype=bool))
    if own.size == 0:
        raise ValueError("no frame has enough confident detections for a box")
    boxes = np.empty((len(keypoints), 3))
    for i in own:
        visible = keypoints[i][np.asarray(confidence[i]) > threshold]
        boxes[i] = boxes_from_keypoints(visible[None], size=size, person_height=person_height)[0]
    frames = np.arange(len(keypoints))
    for k in range(3):
        boxes[:, k] = np.interp(frames, own, boxes[own, k])
    return boxes


@dataclass(frozen=True)
class ActorTrack:
    """One actor's detections after the protocol, over the whole sequence (N frames).

    Attributes
    ----------
    joints2d : ndarray, shape (N, 24, 2), float64
        Detections in SMPL joint slots, frame pixels (x, y); 0 where the detector gave nothing
        (unmapped joint or confidence 0).
    confidence : ndarray, shape (N, 24), float64
    visibility : ndarray, shape (N, 24), uint8
        Hidden-reason bits (:func:`visibility_bits`).
    total_occlusion : ndarray, shape (N,), bool
    boxes : ndarray, shape (N, 3), float64
        ``(x0, y0, side)`` frame pixels (:func:`detection_boxes`).
    """

    joints2d: np.ndarray
    confidence: np.ndarray
    visibility: np.ndarray
    total_occlusion: np.ndarray
    boxes: np.ndarray

    def joints2d_crop(self, *, size: int) -> np.ndarray:
        """Detections of frame t in box t, crop pixels (x, y); 0 where ``joints2d`` is.

        Returns
        -------
        ndarray, shape (N, 24, 2), float64
        """
        crop = frame_to_crop(self.joints2d, self.boxes, size=size)
        crop[self.confidence <= 0] = 0.0
        return crop

    def window(self, frames: slice) -> ActorTrack:
        """The track over ``frames`` only (views of its arrays)."""
        return ActorTrack(*(getattr(self, f.name)[frames] for f in fields(self)))


def actor_track(keypoints: np.ndarray, confidence: np.ndarray, *, size: int, person_height: float,
                threshold: float = CONFIDENCE_THRESHOLD,
                min_visible: int = MIN_VISIBLE) -> ActorTrack:
    """Apply the protocol (module docstring) to one actor's OpenPose-18 detections.

    Parameters
    ----------
    keypoints : ndarray, shape (N, 18, 2)
        Frame pixels (x, y).
    confidence : ndarray, shape (N, 18)
    size, person_height
        Crop side and person height, crop pixels.

    Raises
    ------
    ValueError
        Every frame is a total occlusion (no box can be placed).
    """
    joints2d, confidence24 = openpose_to_smpl(keypoints, confidence)
    joints2d[confidence24 <= 0] = 0.0
    occluded = total_occlusions(confidence24, threshold=threshold, min_visible=min_visible)
    return ActorTrack(
        joints2d=joints2d, confidence=confidence24,
        visibility=visibility_bits(confidence24, occluded, threshold=threshold),
        total_occlusion=occluded,
        boxes=detection_boxes(keypoints, confidence, occluded, size=size,
                              person_height=person_height, threshold=threshold))


def clip_windows(num_frames: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Windows of ``length`` frames covering ``num_frames`` (module docstring).

    Returns
    -------
    starts : ndarray, shape (K,), int64
        First frame of each window, ascending; empty when ``num_frames < length``.
    first_cover : ndarray, shape (K, length), bool
        Whether frame ``starts[k] + i`` is seen for the first time in window k.
    """
    if length < 1:
        raise ValueError(f"clip length must be >= 1, got {length}")
    if num_frames < length:
        return np.zeros(0, dtype=np.int64), np.zeros((0, length), dtype=bool)
    starts = list(range(0, num_frames - length + 1, length))
    if starts[-1] + length < num_frames:
        starts.append(num_frames - length)
    starts = np.asarray(starts, dtype=np.int64)
    previous_end = np.concatenate([[0], starts[:-1] + length])
    first_cover = starts[:, None] + np.arange(length)[None, :] >= previous_end[:, None]
    return starts, first_cover
