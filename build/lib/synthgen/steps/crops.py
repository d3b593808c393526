"""HMR-style person crops and paired boxes (method steps 9 and 10).

Box format: ``(x0, y0, side)`` float64 in frame pixels: the top-left corner and side of a square
in the frame. Crop transform (frame pixels to crop pixels, x then y)::

    crop = (frame - (x0, y0)) * size / side

applied identically to images (``cv2.warpAffine``, integer values being pixel centres in both)
and to keypoints, so a keypoint lands on the crop pixel showing it. Crop areas outside the frame
are filled with zeros.

HMR's recipe: the box is centred on the keypoint box (all 24 joints, visibility ignored) and
scaled so that the keypoint-box height becomes ``person_height`` crop pixels:
``side = size * height / person_height``. Heights below ``MIN_KEYPOINT_HEIGHT`` are clamped.
"""

from __future__ import annotations

import cv2
import numpy as np

#: Smallest keypoint-box height (frame pixels) used for the scale; avoids a zero-size box.
MIN_KEYPOINT_HEIGHT = 1.0


def boxes_from_keypoints(joints2d: np.ndarray, *, size: int, person_height: float) -> np.ndarray:
    """One square box per frame that centres the person at ``person_height`` crop pixels tall.

    Parameters
    ----------
    joints2d : ndarray, shape (T, J, 2)
        Keypoints in frame pixels (x, y); all are used whatever their visibility.
    size : int
        Crop side in crop pixels (224).
    person_height : float
        Target keypoint-box height in crop pixels (150).

    Returns
    -------
    ndarray, shape (T, 3), float64
        ``(x0, y0, side)`` in frame pixels.
    """
    joints2d = np.asarray(joints2d, dtype=np.float64)
    low, high = joints2d.min(axis=1), joints2d.max(axis=1)
    centre = (low + high) / 2.0
    height = np.maximum(high[:, 1] - low[:, 1], MIN_KEYPOINT_HEIGHT)
    side = size * height / person_height
    return np.column_stack([centre - side[:, None] / 2.0, side])


def frame_to_crop(points: np.ndarray, box: np.ndarray, *, size: int) -> np.ndarray:
    """Map frame pixels (x, y) into the crop of ``box``: ``(p - (x0, y0)) * size / side``.

    Parameters
    ----------
    points : ndarray, shape (..., 2)
        Frame pixels (x, y).
    box : ndarray, shape (3,) or shape (..., 3) broadcastable to points' leading axes
        ``(x0, y0, side)`` in frame pixels.
    size : int
        Crop side in crop pixels.

    Returns
    -------
    ndarray, shape (..., 2), float64
        Crop pixels (x, y).
    """
    box = np.asarray(box, dtype=np.float64)
    points = np.asarray(points, dtype=np.float64)
    return (points - box[..., None, :2]) * (size / box[..., None, 2:3])


def crop_to_frame(points: np.ndarray, box: np.ndarray, *, size: int) -> np.ndarray:
    """Inverse of `frame_to_crop`: crop pixels (x, y) back to frame pixels."""
    box = np.asarray(box, dtype=np.float64)
    return np.asarray(points, dtype=np.float64) * (box[..., None, 2:3] / size) + box[..., None, :2]


def crop_image(image: np.ndarray, box: np.ndarray, *, size: int,
               nearest: bool = False) -> np.ndarray:
    """Resample the square ``box`` of an image to ``size`` x ``size``.

    Parameters
    ----------
    image : ndarray, shape (H, W) or (H, W, C), uint8
        Frame.
    box : ndarray, shape (3,)
        ``(x0, y0, side)`` in frame pixels.
    size : int
        Crop side in crop pixels.
    nearest : bool
        Nearest-neighbour sampling (masks) instead of bilinear (RGB).

    Returns
    -------
    ndarray, shape (size, size) or (size, size, C), same dtype
        Zeros where the box leaves the frame.
    """
    x0, y0, side = (float(v) for v in box)
    s = size / side
    matrix = np.array([[s, 0.0, -s * x0], [0.0, s, -s * y0]])
    flags = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    return cv2.warpAffine(image, matrix, (size, size), flags=flags,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def crop_frames(frames: np.ndarray, boxes: np.ndarray, *, size: int) -> np.ndarray:
    """Crop frame t with box t, for every t.

    Parameters
    ----------
    frames : ndarray, shape (T, H, W, 3), uint8
    boxes : ndarray, shape (T, 3)

    Returns
    -------
    ndarray, shape (T, size, size, 3), uint8
    """
    return np.stack([crop_image(f, b, size=size) for f, b in zip(frames, boxes)])


def crop_pairs(frames: np.ndarray, boxes: np.ndarray, *, size: int,
               frame_crops: np.ndarray | None = None) -> np.ndarray:
    """Paired boxes (appendix B): frames t and t+1 both cropped with box t, for t < T - 1.

    Parameters
    ----------
    frames : ndarray, shape (T, H, W, 3), uint8
    boxes : ndarray, shape (T, 3)
    frame_crops : ndarray, shape (T, size, size, 3), uint8, optional
        :func:`crop_frames` of the same frames and boxes, reused for frame t of each pair
        (only frames t+1 are then warped).

    Returns
    -------
    ndarray, shape (T - 1, 2, size, size, 3), uint8
        ``[t, 0]`` is frame t, ``[t, 1]`` frame t+1, both in box t.
    """
    if frame_crops is None:
        frame_crops = crop_frames(frames[:-1], boxes[:-1], size=size)
    following = np.stack([crop_image(frames[t + 1], boxes[t], size=size)
                          for t in range(len(frames) - 1)])
    return np.stack([frame_crops[:len(following)], following], axis=1)


def crop_masks(masks: np.ndarray, boxes: np.ndarray, *, size: int) -> np.ndarray:
    """Crop mask t with box t by nearest neighbour.

    Parameters
    ----------
    masks : ndarray, shape (T, H, W), bool
    boxes : ndarray, shape (T, 3)

    Returns
    -------
    ndarray, shape (T, size, size), bool
    """
    return np.stack([crop_image(m.view(np.uint8), b, size=size, nearest=True)
                     for m, b in zip(masks, boxes)]).astype(bool)
