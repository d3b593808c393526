"""Plain containers passed between the readers (sources) and the pure pipeline steps.

No behaviour, no I/O: arrays plus the provenance needed to rebuild them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: SURREAL's depth of background pixels (metres); also the fill for pixels no person covers.
BACKGROUND_DEPTH = 1e10


@dataclass(frozen=True)
class SurrealClip:
    """A window of T frames of one SURREAL clip.

    Attributes
    ----------
    rgb : ndarray, shape (T, 240, 320, 3), uint8
        RGB frames.
    segm : ndarray, shape (T, 240, 320), uint8
        Part labels, 0 background, 1..24 SURREAL parts
        (``synthgen.core.joints.SURREAL_PART_NAMES``).
    depth : ndarray, shape (T, 240, 320), float32
        Metres along the camera axis; background pixels hold SURREAL's 1e10.
    joints2d : ndarray, shape (T, 24, 2), float32
        The released 2D joints in frame pixels (x, y), labelled as the body the image shows
        (:mod:`synthgen.sources.surreal`: SURREAL's camera mirrors, so its left is the part map's
        right).
    joints3d : ndarray, shape (T, 24, 3), float32
        SMPL joints of ``pose``, ``betas`` and ``gender`` in *camera* metres (x right, y down,
        z forward), pelvis at the released pelvis: the body the image shows, under a proper
        rotation. Their projection lies within rounding (0.71 px) of ``joints2d`` on the demo
        data.
    pose : ndarray, shape (T, 72), float32
        SMPL axis-angle of that body (radians): the released pose mirrored
        (``synthgen.core.smpl.mirror_pose``), global orientation in the camera frame.
    betas : ndarray, shape (10,), float32
        SMPL shape of the clip (first frame's ``shape``).
    gender : str
        ``"female"`` or ``"male"``.
    K : ndarray, shape (3, 3), float64
        Intrinsics in pixels.
    cam_loc : ndarray, shape (3,), float64
        Camera centre in world metres.
    zrot : ndarray, shape (T,), float32
        SURREAL's per-frame z rotation (radians).
    path : str
        The clip's ``.mp4``.
    start : int
        Index of the first frame of the window in the clip.
    sides_swapped : bool
        Whether the released joints had left/right swapped (and were therefore swapped back).
    gtflow : ndarray, shape (T, 240, 320, 2), float32, or None
        Ground-truth person flow from ``_gtflow.mat`` (``synthgen.sources.surreal.read_gtflow``):
        frame pixels (x, y) from frame t to t+1 at frame t's person pixels; None without the file.
        For evaluation only.
    """

    rgb: np.ndarray
    segm: np.ndarray
    depth: np.ndarray
    joints2d: np.ndarray
    joints3d: np.ndarray
    pose: np.ndarray
    betas: np.ndarray
    gender: str
    K: np.ndarray
    cam_loc: np.ndarray
    zrot: np.ndarray
    path: str
    start: int
    sides_swapped: bool
    gtflow: np.ndarray | None = None

    @property
    def num_frames(self) -> int:
        return int(self.rgb.shape[0])


@dataclass(frozen=True)
class BackgroundClip:
    """A window of T background frames, resampled to 30 fps, resized and cropped to 240x320.

    Attributes
    ----------
    frames : ndarray, shape (T, 240, 320, 3), uint8
        RGB frames.
    path : str
        Source video file or frame folder.
    start : int
        First frame of the window, as an index into the video resampled to 30 fps.
    crop_yx : tuple of int
        Top-left corner (y, x) of the 240x320 window in the resized video, in resized pixels.
    scale : float
        Resize factor applied to the source frames before cropping.
    """

    frames: np.ndarray
    path: str
    start: int
    crop_yx: tuple[int, int]
    scale: float

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])
