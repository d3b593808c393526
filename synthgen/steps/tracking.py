"""Track the SURREAL person with the background's camera motion (method step 3).

Every frame of the person (RGB, part labels, depth, 2D joints) is translated by the integrated
camera motion of the matching background frame, so the person moves with the scene.

Pixel coordinates everywhere are frame pixels, x right then y down, with integer values at pixel
centres (OpenCV's convention). An offset ``d = (dx, dy)`` moves content at ``p`` to ``p + d``.

*Decision* (method.md): RGB is resampled bilinearly (sub-pixel), part labels and depth by nearest
neighbour, which for a pure translation is an integer shift by the offset rounded half up; 2D
joints move by the exact offset. Mask and RGB therefore agree to within half a pixel.

3D joints are *not* changed: the image moved, the camera did not. Translating the image by ``d``
is the same as moving the principal point of the intrinsics ``K`` by ``d`` (``cx + dx, cy + dy``):
the camera-frame joints projected with that shifted ``K`` land on the tracked 2D joints. The
person's 3D pose in camera metres is unchanged, as the loss (Procrustes-aligned 3D, weak
perspective 2D) requires.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from synthgen.core.types import BACKGROUND_DEPTH, SurrealClip



@dataclass(frozen=True)
class TrackedPerson:
    """The person after tracking (frame pixels; see the module docstring).

    Attributes
    ----------
    rgb : ndarray, shape (T, H, W, 3), uint8
        Bilinearly shifted RGB; uncovered pixels are 0.
    segm : ndarray, shape (T, H, W), uint8
        Part labels shifted by the rounded offset; uncovered pixels are 0 (background).
    depth : ndarray, shape (T, H, W), float32
        Depth in metres shifted like ``segm``; uncovered pixels hold ``BACKGROUND_DEPTH``.
    joints2d : ndarray, shape (T, 24, 2), float32
        Joints in frame pixels (x, y) moved by the exact offsets.
    offsets : ndarray, shape (T, 2), float64
        The offsets applied, frame pixels (x, y).
    """

    rgb: np.ndarray
    segm: np.ndarray
    depth: np.ndarray
    joints2d: np.ndarray
    offsets: np.ndarray


def shift_bilinear(image: np.ndarray, offset) -> np.ndarray:
    """Translate an image by a sub-pixel offset with bilinear resampling.

    Parameters
    ----------
    image : ndarray, shape (H, W) or (H, W, C), uint8 or float32
    offset : array_like, shape (2,)
        ``(dx, dy)`` in pixels: content at ``(x, y)`` moves to ``(x + dx, y + dy)``.

    Returns
    -------
    ndarray, same shape and dtype as ``image``
        Pixels with no source are 0. OpenCV interpolates uint8 images with 1/32-pixel weights.
    """
    dx, dy = (float(v) for v in offset)
    height, width = image.shape[:2]
    matrix = np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]])
    return cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def shift_nearest(image: np.ndarray, offset, *, fill=0) -> np.ndarray:
    """Translate an image by an offset rounded half up to whole pixels (nearest neighbour).

    Parameters
    ----------
    image : ndarray, shape (H, W) or (H, W, C), any dtype
    offset : array_like, shape (2,)
        ``(dx, dy)`` in pixels, as in `shift_bilinear`.
    fill : scalar
        Value of the pixels with no source.

    Returns
    -------
    ndarray, same shape and dtype as ``image``
    """
    dx, dy = (int(np.floor(float(v) + 0.5)) for v in offset)
    height, width = image.shape[:2]
    out = np.full_like(image, fill)
    if abs(dx) >= width or abs(dy) >= height:
        return out
    out[max(dy, 0):height + min(dy, 0), max(dx, 0):width + min(dx, 0)] = \
        image[max(-dy, 0):height + min(-dy, 0), max(-dx, 0):width + min(-dx, 0)]
    return out


def track_person(person: SurrealClip, offsets: np.ndarray) -> TrackedPerson:
    """Translate every frame of a SURREAL clip by the camera offset of its frame.

    Parameters
    ----------
    person : SurrealClip
        T frames (see `synthgen.core.types.SurrealClip`).
    offsets : ndarray, shape (T, 2)
        Per-frame offsets ``(dx, dy)`` in frame pixels (the integrated camera motion, zero at the
        reference frame). All zeros gives an untracked copy (the "no tracking" ablation).

    Returns
    -------
    TrackedPerson
        3D joints are deliberately absent: they stay in camera metres (module docstring).

    Raises
    ------
    ValueError
        When ``offsets`` is not (T, 2) for the clip's T frames.
    """
    offsets = np.asarray(offsets, dtype=np.float64)
    if offsets.shape != (person.num_frames, 2):
        raise ValueError(f"offsets must have shape ({person.num_frames}, 2), got {offsets.shape}")
    rgb = np.stack([shift_bilinear(f, d) for f, d in zip(person.rgb, offsets)])
    segm = np.stack([shift_nearest(f, d) for f, d in zip(person.segm, offsets)])
    depth = np.stack([shift_nearest(f, d, fill=BACKGROUND_DEPTH)
                      for f, d in zip(person.depth, offsets)])
    joints2d = (person.joints2d + offsets[:, None, :]).astype(np.float32)
    return TrackedPerson(rgb=rgb, segm=segm, depth=depth.astype(np.float32), joints2d=joints2d,
                         offsets=offsets)
