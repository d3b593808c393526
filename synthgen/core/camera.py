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
#: It is nevertheless what reproduces the released ``joints2D`` from ``joints3D`` exactly, and what
#: SURREAL's Blender camera renders with: every SURREAL image is a mirror view of the SMPL body of
#: the released ``pose``.
SURREAL_R = np.array([[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])
#: The mirror of SMPL's model frame (x is the body's left-right axis): ``S @ X``.
SMPL_MIRROR = np.diag([-1.0, 1.0, 1.0])
#: Rotation by pi/2 about x: SURREAL's mocap frame (z up) to its world frame (formats.md).
R_X90 = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


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


def _rotation_z(angle):
    """Rotations by ``angle`` radians (shape (...)) about z, shape (..., 3, 3)."""
    c, s = np.cos(angle), np.sin(angle)
    zero, one = np.zeros_like(c), np.ones_like(c)
    return np.stack([np.stack([c, -s, zero], -1), np.stack([s, c, zero], -1),
                     np.stack([zero, zero, one], -1)], -2)


def seen_body_orientation(root_rotation, zrot):
    """Camera-frame global orientation of the body a SURREAL image shows.

    SURREAL's body has world orientation ``G = R_x(pi/2) R_z(zrot) Rodrigues(pose[0:3])``
    (formats.md) and is imaged through :data:`SURREAL_R` (a reflection), so the image shows its
    mirror. That mirror is the SMPL body of the mirrored pose (:func:`synthgen.core.smpl.mirror_pose`,
    global orientation ``S G S`` with ``S`` = :data:`SMPL_MIRROR`), seen through the proper
    rotation ``SURREAL_R @ S``. Its camera-frame orientation is therefore
    ``SURREAL_R @ S @ (S G S) = SURREAL_R @ G @ S``, a rotation (det +1).

    Parameters
    ----------
    root_rotation : ndarray, shape (..., 3, 3)
        ``Rodrigues(pose[0:3])`` of the released pose.
    zrot : ndarray, shape (...)
        SURREAL's ``zrot``, radians.

    Returns
    -------
    ndarray, shape (..., 3, 3)
        The SMPL global orientation, model frame to camera frame (x right, y down, z forward).
    """
    world = R_X90 @ _rotation_z(np.asarray(zrot, dtype=np.float64)) @ np.asarray(root_rotation)
    return SURREAL_R @ world @ SMPL_MIRROR


def world_to_camera(points, R, t):
    """Map points ``(..., 3)`` from world metres to camera metres: ``R @ X + t``."""
    points = np.asarray(points, dtype=np.float64)
    return points @ R.T + t


def project(points_cam, K=SURREAL_K):
    """Pinhole projection of camera-frame points ``(..., 3)`` (metres) to pixels ``(..., 2)`` (x, y)."""
    points_cam = np.asarray(points_cam, dtype=np.float64)
    uvw = points_cam @ np.asarray(K, dtype=np.float64).T
    return uvw[..., :2] / uvw[..., 2:3]
