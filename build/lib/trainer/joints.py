"""Joint sets the trainer needs, as indices into the 24 SMPL joints.

The trainer stands apart from ``synthgen`` and imports none of it; these sets are defined here a
second time, and ``tests/test_trainer_metrics.py`` asserts they equal ``synthgen.joints``'
``HEATMAP_KEYPOINTS`` and ``COCO14`` so the two cannot drift apart.

SMPL order: 0 pelvis, 1 L hip, 2 R hip, 3 spine1, 4 L knee, 5 R knee, 6 spine2, 7 L ankle,
8 R ankle, 9 spine3, 10 L foot, 11 R foot, 12 neck, 13 L collar, 14 R collar, 15 head,
16 L shoulder, 17 R shoulder, 18 L elbow, 19 R elbow, 20 L wrist, 21 R wrist, 22 L hand, 23 R hand.
"""

from __future__ import annotations

import numpy as np

#: Number of SMPL joints produced by the body model.
NUM_SMPL_JOINTS = 24

#: The 12 heatmap keypoints (right then left per limb, feet up): R ankle, R knee, R hip, L hip,
#: L knee, L ankle, R wrist, R elbow, R shoulder, L shoulder, L elbow, L wrist.
HEATMAP_KEYPOINTS = np.array([8, 5, 2, 1, 4, 7, 21, 19, 17, 16, 18, 20], dtype=np.int64)

#: The 14 evaluation joints common to SMPL and COCO: the 12 heatmap keypoints, then neck, head.
EVAL_JOINTS = np.concatenate([HEATMAP_KEYPOINTS, np.array([12, 15], dtype=np.int64)])
