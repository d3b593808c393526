"""The SURREAL camera and pinhole projection.

Frames: *world* is SURREAL's world frame (metres, +y down); *camera* is the OpenCV camera frame
(metres, x right, y down, z forward along the optical axis); *pixels* are image coordinates
(x right, y down) as given by ``K @ x_cam / z``, the convention of SURREAL's ``joints2D``
(principal point (160, 120) for 320x240 frames).
"""

from __future__ import annotations

import numpy as np

SURREAL_HEIGHT, SURREAL_WIDTH = 240, 320
SURREAL_K = np.array([[600.0, 0.0, 160.0], [0.0, 600.0, 120.0], [0.0, 0.0, 1.0]])
#: World-to-camera matrix of every SURREAL clip (formats.md). Its determinant is -1: it is a
#: reflection, not a rotation (SURREAL's world frame is left-handed relative to the camera frame).
#: It is nevertheless what reproduces the released ``joints2D`` from ``joints3D`` exactly.
SURREAL_R = np.array([[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])


def surreal_extrinsics(cam_loc):
    """World-to-camera rotation and translation of a SURREAL clip.

    Parameters
    ----------
    cam_loc : array_like, shape (3,)
        ``camLoc`` of ``_info.mat``: camera centre in world metres.

    Returns
    -------
    R : ndarray, shape (3, 3)
    t : ndarray, shape (3,)
        ``x_cam = R @ X_world + t`` in metres.
    """
    c = np.asarray(cam_loc, dtype=np.float64).reshape(3)
    return SURREAL_R.copy(), -SURREAL_R @ c


def world_to_camera(points, R, t):
    """Map points ``(..., 3)`` from world metres to camera metres: ``R @ X + t``."""
    points = np.asarray(points, dtype=np.float64)
    return points @ R.T + t


def project(points_cam, K=SURREAL_K):
    """Pinhole projection of camera-frame points ``(..., 3)`` (metres) to pixels ``(..., 2)`` (x, y)."""
    points_cam = np.asarray(points_cam, dtype=np.float64)
    uvw = points_cam @ np.asarray(K, dtype=np.float64).T
    return uvw[..., :2] / uvw[..., 2:3]
