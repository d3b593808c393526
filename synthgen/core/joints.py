"""Joint sets, defined once from the SMPL joint order.

All indices are into the 24 SMPL joints (SURREAL's ``joints2D``/``joints3D`` order, after the
left/right convention has been fixed by the SURREAL reader).
"""

from __future__ import annotations

import numpy as np

SMPL_JOINT_NAMES: tuple[str, ...] = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar",
    "right_collar", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hand", "right_hand",
)
NUM_SMPL_JOINTS = len(SMPL_JOINT_NAMES)
SMPL_INDEX = {name: i for i, name in enumerate(SMPL_JOINT_NAMES)}

SMPL_PARENTS: tuple[int, ...] = (
    -1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21,
)

#: The 12 limb keypoints rendered as heatmaps (method step 11): ankles, knees, hips, shoulders,
#: elbows, wrists, in the LSP/COCO-style order right-then-left per limb from the feet up.
HEATMAP_KEYPOINT_NAMES: tuple[str, ...] = (
    "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
    "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow", "left_wrist",
)
HEATMAP_KEYPOINTS = np.array([SMPL_INDEX[n] for n in HEATMAP_KEYPOINT_NAMES], dtype=np.int64)

#: The 14 joints common to SMPL and COCO used for visibility counts and evaluation: the 12 limb
#: keypoints plus neck and head (SMPL has no nose/eyes; its head and neck stand in for them).
COCO14_NAMES: tuple[str, ...] = HEATMAP_KEYPOINT_NAMES + ("neck", "head")
COCO14 = np.array([SMPL_INDEX[n] for n in COCO14_NAMES], dtype=np.int64)
#: A frame counts (is evaluated, is not a total occlusion) when at least this many of the
#: :data:`COCO14` joints are visible (method section 3).
MIN_VISIBLE = 7
#: A detected keypoint counts as visible when its confidence exceeds this (3DPW's ``poses2d``,
#: video keypoints; formats.md's *decision*).
CONFIDENCE_THRESHOLD = 0.1

#: OpenPose-18 (COCO) keypoint order of 3DPW's ``poses2d``.
OPENPOSE_NAMES: tuple[str, ...] = (
    "nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow",
    "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
    "right_eye", "left_eye", "right_ear", "left_ear",
)
OPENPOSE_INDEX = {name: i for i, name in enumerate(OPENPOSE_NAMES)}

#: SMPL joint name -> OpenPose-18 keypoint name, for the 14 COCO joints (``COCO14``).
SMPL_FROM_OPENPOSE: dict[str, str] = {
    **{name: name for name in (
        "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
        "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow",
        "left_wrist", "neck")},
    "head": "nose",
}

#: The leg keypoints (indices into SMPL 24) that the training-time domain randomisation unhides
#: together (method step 8, "unhide all leg keypoints"): hips, knees, ankles. These are the leg
#: joints among :data:`HEATMAP_KEYPOINTS`; the feet are not keypoints, so they are not listed.
LEG_JOINTS = np.array(
    [SMPL_INDEX[n] for n in ("left_hip", "right_hip", "left_knee", "right_knee",
                             "left_ankle", "right_ankle")],
    dtype=np.int64,
)


def _mirror_name(name: str) -> str:
    if name.startswith("left_"):
        return "right_" + name[5:]
    if name.startswith("right_"):
        return "left_" + name[6:]
    return name


#: Permutation that swaps every left joint with its right twin: ``joints[..., LEFT_RIGHT_SWAP, :]``.
LEFT_RIGHT_SWAP = np.array([SMPL_INDEX[_mirror_name(n)] for n in SMPL_JOINT_NAMES], dtype=np.int64)

#: SURREAL part-segmentation labels (1-based; 0 is background).
SURREAL_PART_NAMES: tuple[str, ...] = (
    "hips", "leftUpLeg", "rightUpLeg", "spine", "leftLeg", "rightLeg", "spine1", "leftFoot",
    "rightFoot", "spine2", "leftToeBase", "rightToeBase", "neck", "leftShoulder", "rightShoulder",
    "head", "leftArm", "rightArm", "leftForeArm", "rightForeArm", "leftHand", "rightHand",
    "leftHandIndex1", "rightHandIndex1",
)
SURREAL_PART_LABEL = {name: i + 1 for i, name in enumerate(SURREAL_PART_NAMES)}

#: Part label that lies around each SMPL joint (the bone that starts at the joint), by SMPL index.
#: SMPL joint j and SURREAL part j+1 describe the same bone: the orders coincide.
JOINT_PART_LABEL = np.arange(1, NUM_SMPL_JOINTS + 1, dtype=np.int64)
