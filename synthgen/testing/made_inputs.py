"""Made inputs with known motion for tests and benchmarks (pans over photos, a shifted pair, a
stick-figure SURREAL clip), and a decompression bomb."""

from __future__ import annotations

import zlib

import cv2
import numpy as np
import skimage.data

from synthgen.core.camera import SURREAL_K
from synthgen.core.joints import NUM_SMPL_JOINTS, SMPL_INDEX
from synthgen.core.types import BACKGROUND_DEPTH, SurrealClip


def panned_clip(num_frames: int, velocity, *, photo: str = "coffee", height: int = 240,
                width: int = 320):
    """A pan over a skimage.data photo with a known camera motion (areas off the photo are black).

    Returns frames (T, H, W, 3) uint8 and offsets (T, 2) in frame pixels, zero at T // 2: content
    at x in the centre frame is at x + offsets[t] in frame t.
    """
    source = getattr(skimage.data, photo)()
    offsets = np.outer(np.arange(num_frames) - num_frames // 2, velocity).astype(np.float64)
    x0, y0 = (source.shape[1] - width) // 2, (source.shape[0] - height) // 2
    frames = np.stack([
        cv2.warpAffine(source, np.array([[1.0, 0.0, dx - x0], [0.0, 1.0, dy - y0]]),
                       (width, height), flags=cv2.INTER_LINEAR)
        for dx, dy in offsets])
    return frames, offsets


def shifted_pair(dx: float, dy: float, *, size=(240, 320)):
    """A photo and a copy whose content moved by (dx, dy) pixels (Lanczos, not our warp)."""
    image = skimage.data.astronaut()
    h, w = size
    y0, x0 = (image.shape[0] - h) // 2, (image.shape[1] - w) // 2
    frame0 = image[y0:y0 + h, x0:x0 + w]
    # dst(x) = src(x - d): content at x of frame0 is at x + d in frame1.
    matrix = np.float32([[1, 0, x0 - dx], [0, 1, y0 - dy]])
    frame1 = cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LANCZOS4 | cv2.WARP_INVERSE_MAP)
    return frame0, frame1


#: Stick-figure joints relative to the figure's centre, frame pixels (x, y), ~150 px tall.
_LAYOUT = {
    "pelvis": (0, 10), "left_hip": (12, 15), "right_hip": (-12, 15), "spine1": (0, -5),
    "left_knee": (14, 45), "right_knee": (-14, 45), "spine2": (0, -20), "left_ankle": (15, 72),
    "right_ankle": (-15, 72), "spine3": (0, -35), "left_foot": (18, 78), "right_foot": (-18, 78),
    "neck": (0, -50), "left_collar": (8, -45), "right_collar": (-8, -45), "head": (0, -68),
    "left_shoulder": (20, -45), "right_shoulder": (-20, -45), "left_elbow": (35, -25),
    "right_elbow": (-35, -25), "left_wrist": (45, -5), "right_wrist": (-10, 0),
    "left_hand": (50, 0), "right_hand": (-5, 5),
}
#: Joints behind the torso (a hand on the back): 0.5 m behind its surface.
_BEHIND = ("right_wrist", "right_hand")
_TORSO = (-22, -55, 22, 20)  # x0, y0, x1, y1 relative to the centre
_TORSO_LABEL = 4  # SURREAL "spine"


def synthetic_person(num_frames: int, *, drift=(1.0, 0.5)) -> SurrealClip:
    """A SURREAL-like clip: a stick figure of labelled squares and a torso, walking by ``drift``
    pixels per frame; depth 3 m (the right hand 0.5 m behind the torso); joints3d projected
    consistently with SURREAL_K."""
    height, width = 240, 320
    rgb = np.zeros((num_frames, height, width, 3), np.uint8)
    segm = np.zeros((num_frames, height, width), np.uint8)
    depth = np.full((num_frames, height, width), BACKGROUND_DEPTH, np.float32)
    joints2d = np.zeros((num_frames, NUM_SMPL_JOINTS, 2), np.float32)
    z = np.full(NUM_SMPL_JOINTS, 3.0)
    z[[SMPL_INDEX[n] for n in _BEHIND]] = 3.4
    for t in range(num_frames):
        cx, cy = np.array([160.0, 118.0]) + np.asarray(drift) * (t - num_frames // 2)
        # Far to near: hidden joints, torso (surface 2.9 m), other joints (surface 2.95 m).
        squares = [(SMPL_INDEX[n], 3.35) for n in _BEHIND]
        squares += [(j, 2.95) for n, j in SMPL_INDEX.items() if n not in _BEHIND]
        for j, (dx, dy) in ((SMPL_INDEX[n], xy) for n, xy in _LAYOUT.items()):
            joints2d[t, j] = (cx + dx, cy + dy)
        for j, surface in squares[:2]:
            _paint(rgb[t], segm[t], depth[t], joints2d[t, j], 4, j + 1, surface)
        x0, y0, x1, y1 = _TORSO
        torso = (cx + x0, cy + y0, cx + x1, cy + y1)
        _paint_box(rgb[t], segm[t], depth[t], torso, _TORSO_LABEL, 2.9)
        for j, surface in squares[2:]:
            _paint(rgb[t], segm[t], depth[t], joints2d[t, j], 4, j + 1, surface)
    u, v = joints2d[..., 0], joints2d[..., 1]
    fx, cx0, cy0 = SURREAL_K[0, 0], SURREAL_K[0, 2], SURREAL_K[1, 2]
    joints3d = np.stack([(u - cx0) * z / fx, (v - cy0) * z / fx, np.broadcast_to(z, u.shape)], -1)
    return SurrealClip(
        rgb=rgb, segm=segm, depth=depth, joints2d=joints2d, joints3d=joints3d.astype(np.float32),
        pose=np.linspace(0, 1, num_frames * 72, dtype=np.float32).reshape(num_frames, 72),
        betas=np.arange(10, dtype=np.float32), gender="female", K=SURREAL_K.copy(),
        cam_loc=np.zeros(3), zrot=np.zeros(num_frames, np.float32), path="synthetic.mp4", start=0,
        sides_swapped=False)


def _paint_box(rgb, segm, depth, box, label, surface):
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    rgb[y0:y1 + 1, x0:x1 + 1] = (40 + 8 * label, 250 - 9 * label, 100 + 5 * label)
    segm[y0:y1 + 1, x0:x1 + 1] = label
    depth[y0:y1 + 1, x0:x1 + 1] = surface


def _paint(rgb, segm, depth, centre, half, label, surface):
    x, y = np.floor(centre + 0.5)
    _paint_box(rgb, segm, depth, (x - half, y - half, x + half, y + half), label, surface)


def deflated_zeros(mebibytes: int, *, head: bytes = b"") -> bytes:
    """A zlib stream of ``head`` then ``mebibytes`` MiB of zeros (about 1 kB per MiB): a
    decompression bomb for the tests of bounded readers."""
    deflate = zlib.compressobj(9)
    block = bytes(1 << 20)
    return b"".join([deflate.compress(head)] + [deflate.compress(block) for _ in range(mebibytes)]
                    + [deflate.flush()])
