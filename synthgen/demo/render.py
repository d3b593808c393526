"""A small vectorised z-buffer rasteriser for the demo people (numpy only).

Renders a triangle mesh given in *camera* metres (OpenCV frame: x right, y down, z forward) through
pinhole intrinsics to the three SURREAL images: RGB (Lambertian shading of per-face clothing
colours over a background), part segmentation (0 background, 1..24 SURREAL parts) and depth
(metres along the camera axis, 1e10 background). Pixel (row i, column j) samples the image point
x = j, y = i: integer pixel coordinates are pixel centres, the convention of ``camera.project``.

Faces are far smaller than a pixel at SURREAL's distances, so a face is shaded flat and textured
at its centroid; there is no anti-aliasing (SURREAL's renders are not smooth either after H.264).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from synthgen.core.camera import SURREAL_HEIGHT, SURREAL_K, SURREAL_WIDTH
from synthgen.core.joints import SMPL_INDEX
from synthgen.core.types import BACKGROUND_DEPTH

_NEAR = 0.05


def rasterize(vertices_cam, faces, *, K=SURREAL_K, height=SURREAL_HEIGHT, width=SURREAL_WIDTH):
    """Visible face and depth at each pixel centre.

    Parameters
    ----------
    vertices_cam : ndarray, shape (V, 3)
        Camera-frame metres. Faces with a vertex nearer than 5 cm are dropped (not clipped).
    faces : ndarray, shape (F, 3), int
        Either winding; pass only the front faces of a closed mesh to halve the work.
    K : ndarray, shape (3, 3)
        Intrinsics in pixels.
    height, width : int

    Returns
    -------
    face_index : ndarray, shape (H, W), int64
        Index (into ``faces``) of the nearest face covering each pixel centre, -1 where none does.
    depth : ndarray, shape (H, W), float32
        Metres along the camera axis (perspective-correct), ``BACKGROUND_DEPTH`` where no face.
    """
    v = np.asarray(vertices_cam, dtype=np.float64)
    z = v[:, 2]
    safe_z = np.where(z > _NEAR, z, 1.0)
    px = K[0, 0] * v[:, 0] / safe_z + K[0, 2]
    py = K[1, 1] * v[:, 1] / safe_z + K[1, 2]
    tx, ty, tz = px[faces], py[faces], z[faces]
    x0 = np.maximum(np.ceil(_min3(tx)), 0).astype(np.int64)
    x1 = np.minimum(np.floor(_max3(tx)), width - 1).astype(np.int64)
    y0 = np.maximum(np.ceil(_min3(ty)), 0).astype(np.int64)
    y1 = np.minimum(np.floor(_max3(ty)), height - 1).astype(np.int64)
    w, h = x1 - x0 + 1, y1 - y0 + 1
    keep = np.flatnonzero((_min3(tz) > _NEAR) & (w > 0) & (h > 0))
    counts = (w * h)[keep]
    face = np.repeat(keep, counts)
    local = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    fw = w[face]
    sx = x0[face] + local % fw
    sy = y0[face] + local // fw

    # Edge functions: (la, lb, lc) / area are the barycentric coordinates of the pixel centre.
    ax, bx, cx = (tx[face, k] - sx for k in range(3))
    ay, by, cy = (ty[face, k] - sy for k in range(3))
    la, lb, lc = bx * cy - cx * by, cx * ay - ax * cy, ax * by - bx * ay
    area = la + lb + lc
    sign = np.sign(area)
    eps = -1e-9 * np.abs(area)
    inside = np.flatnonzero((area != 0) & (la * sign >= eps) & (lb * sign >= eps) & (lc * sign >= eps))
    face, area = face[inside], area[inside]
    inv_z = (la[inside] / tz[face, 0] + lb[inside] / tz[face, 1] + lc[inside] / tz[face, 2]) / area
    sample_depth = 1.0 / inv_z
    pixel = sy[inside] * width + sx[inside]

    order = np.lexsort((sample_depth, pixel))
    pixel, face, sample_depth = pixel[order], face[order], sample_depth[order]
    first = np.ones(len(pixel), dtype=bool)
    first[1:] = pixel[1:] != pixel[:-1]
    face_index = np.full(height * width, -1, dtype=np.int64)
    depth = np.full(height * width, BACKGROUND_DEPTH, dtype=np.float32)
    face_index[pixel[first]] = face[first]
    depth[pixel[first]] = sample_depth[first]
    return face_index.reshape(height, width), depth.reshape(height, width)


def _min3(a):
    return np.minimum(np.minimum(a[:, 0], a[:, 1]), a[:, 2])


def _max3(a):
    return np.maximum(np.maximum(a[:, 0], a[:, 1]), a[:, 2])


def face_normals(vertices_cam, faces, *, handedness=1.0):
    """Outward unit normals of the faces, shape (F, 3), camera frame.

    Parameters
    ----------
    vertices_cam : ndarray, shape (V, 3)
        Camera-frame metres.
    faces : ndarray, shape (F, 3)
        Wound counter-clockwise seen from outside in the mesh's own (right-handed) frame.
    handedness : float
        Determinant (+1 or -1) of the map from the mesh frame to the camera frame; SURREAL's
        world-to-camera rotation is a reflection (-1), which reverses the faces' winding.
    """
    v = vertices_cam[faces]
    normal = handedness * np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
    return normal / np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-20)


@dataclass(frozen=True)
class Appearance:
    """How one demo person looks in one clip.

    Attributes
    ----------
    albedo : ndarray, shape (F, 3), float64 in [0, 1]
        RGB reflectance of each face (clothing, skin, hair, shoes, texture).
    light_dir : ndarray, shape (3,)
        Unit vector towards the light, camera frame.
    ambient : float
    background : ndarray, shape (H, W, 3), uint8
        Static backdrop (SURREAL composites its people over random images).
    cloth : str
        Short description (stored as SURREAL's ``cloth`` info string).
    """

    albedo: np.ndarray
    light_dir: np.ndarray
    ambient: float
    background: np.ndarray
    cloth: str


_SKIN_TONES = np.array([[0.95, 0.8, 0.69], [0.87, 0.68, 0.54], [0.72, 0.52, 0.38], [0.55, 0.38, 0.26],
                        [0.38, 0.26, 0.18]])
_PATTERNS = ("solid", "stripes", "checks", "blotches")


def _joint_set(*names):
    return np.array([SMPL_INDEX[n] for n in names])


_TOP = _joint_set("spine1", "spine2", "spine3", "left_collar", "right_collar", "left_shoulder",
                  "right_shoulder")
_SLEEVES = _joint_set("left_elbow", "right_elbow")
_BOTTOM = _joint_set("pelvis", "left_hip", "right_hip")
_TROUSER_LEGS = _joint_set("left_knee", "right_knee")
_SHOES = _joint_set("left_ankle", "right_ankle", "left_foot", "right_foot")


def sample_appearance(rest_vertices, faces, face_joint, rng, *, height=SURREAL_HEIGHT, width=SURREAL_WIDTH):
    """Draw clothing, skin, hair, lighting and a backdrop for one clip.

    Parameters
    ----------
    rest_vertices : ndarray, shape (V, 3)
        Rest-pose vertices in the model frame (metres, y up); textures are painted in this frame
        so they stick to the body when it moves.
    faces : ndarray, shape (F, 3)
    face_joint : ndarray, shape (F,)
        Dominant skinning joint of each face (SMPL index).
    rng : numpy.random.Generator
    height, width : int
        Backdrop size in pixels.

    Returns
    -------
    Appearance
    """
    centre = rest_vertices[faces].mean(axis=1)
    skin = _SKIN_TONES[rng.integers(len(_SKIN_TONES))] * rng.uniform(0.92, 1.05)
    albedo = np.tile(np.clip(skin, 0, 1), (len(faces), 1))
    top, bottom = clothing_masks(face_joint, rng, sleeves=0.6, trouser_legs=0.7)
    words = []
    for mask, label in ((top, "top"), (bottom, "bottom")):
        pattern = _PATTERNS[rng.integers(len(_PATTERNS))]
        albedo[mask] = _paint(pattern, centre[mask], rng)
        words.append(f"{label}={pattern}")
    albedo[np.isin(face_joint, _SHOES)] = rng.uniform(0.05, 0.6) * rng.uniform(0.7, 1.0, 3)
    head = face_joint == SMPL_INDEX["head"]
    head_centre = centre[head].mean(axis=0)
    rel = centre - head_centre
    hair = head & ((rel[:, 1] > 0.02) | ((rel[:, 2] < -0.01) & (rel[:, 1] > -0.05)))
    albedo[hair] = rng.uniform(0.05, 0.45) * np.array([1.0, 0.8, 0.6]) * rng.uniform(0.7, 1.0)
    light = np.array([rng.uniform(-0.6, 0.6), rng.uniform(-0.9, -0.2), -1.0])
    return Appearance(
        albedo=np.clip(albedo, 0.0, 1.0),
        light_dir=light / np.linalg.norm(light),
        ambient=float(rng.uniform(0.3, 0.55)),
        background=_backdrop(rng, height, width),
        cloth=" ".join(words),
    )


def clothing_masks(face_joint, rng, *, sleeves: float, trouser_legs: float):
    """Faces (boolean (F,) masks) of a top, with sleeves with probability ``sleeves``, and of a
    bottom, with trouser legs with probability ``trouser_legs``; ``face_joint`` as in
    ``sample_appearance``."""
    top = np.isin(face_joint, _TOP)
    if rng.random() < sleeves:
        top |= np.isin(face_joint, _SLEEVES)
    bottom = np.isin(face_joint, _BOTTOM)
    if rng.random() < trouser_legs:
        bottom |= np.isin(face_joint, _TROUSER_LEGS)
    return top, bottom


def _paint(pattern, points, rng):
    """Colours (N, 3) of a clothing pattern at rest-pose points (N, 3) in metres."""
    base = rng.uniform(0.05, 0.95, 3)
    second = rng.uniform(0.05, 0.95, 3)
    if pattern == "solid":
        mix = np.zeros(len(points))
    elif pattern == "stripes":
        period = rng.uniform(0.03, 0.12)
        mix = (np.sin(2 * np.pi * points[:, 1] / period + rng.uniform(0, 2 * np.pi)) > 0).astype(float)
    elif pattern == "checks":
        period = rng.uniform(0.04, 0.1)
        mix = ((np.floor(points[:, 0] / period) + np.floor(points[:, 1] / period)
                + np.floor(points[:, 2] / period)) % 2).astype(float)
    else:  # blotches: a few random sinusoids, thresholded softly
        freq = rng.normal(scale=25.0, size=(4, 3))
        field = np.sin(points @ freq.T + rng.uniform(0, 2 * np.pi, 4)).sum(axis=1)
        mix = np.clip(0.5 + 0.5 * field, 0, 1)
    return (1 - mix)[:, None] * base + mix[:, None] * second


def _backdrop(rng, height, width):
    """A smooth random colour field with fine noise, (H, W, 3) uint8."""
    coarse = rng.uniform(0, 255, size=(4, 5, 3)).astype(np.float32)
    smooth = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    noise = rng.normal(0, 6, size=(height, width, 3)).astype(np.float32)
    return np.clip(smooth + noise, 0, 255).astype(np.uint8)


def render_frame(vertices_cam, faces, face_part, appearance: Appearance, *, K=SURREAL_K, handedness=1.0):
    """Render one frame of a person.

    Parameters
    ----------
    vertices_cam : ndarray, shape (V, 3)
        Posed vertices in camera metres.
    faces : ndarray, shape (F, 3)
    face_part : ndarray, shape (F,), uint8
        SURREAL part label (1..24) of each face.
    appearance : Appearance
        Its backdrop sets the image size.
    K : ndarray, shape (3, 3)
    handedness : float
        See ``face_normals``. Only faces whose outward normal points at the camera are drawn (the
        mesh is closed), lit by Lambert's law with the appearance's ambient term.

    Returns
    -------
    rgb : ndarray, shape (H, W, 3), uint8
    segm : ndarray, shape (H, W), uint8
        0 background, else the part label of the visible face.
    depth : ndarray, shape (H, W), float32
        Metres along the camera axis, ``BACKGROUND_DEPTH`` on the background.
    """
    height, width = appearance.background.shape[:2]
    normal = face_normals(vertices_cam, faces, handedness=handedness)
    front = np.flatnonzero(np.einsum("fk,fk->f", normal, vertices_cam[faces[:, 0]]) < 0)
    face_index, depth = rasterize(vertices_cam, faces[front], K=K, height=height, width=width)
    covered = face_index >= 0
    visible = front[face_index[covered]]
    shade = appearance.ambient + (1.0 - appearance.ambient) * np.clip(normal[visible] @ appearance.light_dir, 0, None)
    rgb = appearance.background.copy()
    rgb[covered] = np.clip(appearance.albedo[visible] * shade[:, None] * 255.0 + 0.5, 0, 255)
    segm = np.zeros((height, width), dtype=np.uint8)
    segm[covered] = face_part[visible]
    return rgb, segm, depth


def surface_flow(vertices_cam, next_vertices_cam, faces, *, K=SURREAL_K, handedness=1.0,
                 height=SURREAL_HEIGHT, width=SURREAL_WIDTH):
    """Ground-truth optical flow of a rendered person from one frame to the next.

    The surface point seen at each pixel centre of the first frame (the same visible front face
    as :func:`render_frame`, perspective-correct barycentric coordinates) is moved with its face's
    vertices to the second frame and projected again.

    Parameters
    ----------
    vertices_cam, next_vertices_cam : ndarray, shape (V, 3)
        Posed vertices of the two frames, camera metres (same mesh).
    faces : ndarray, shape (F, 3)
    K : ndarray, shape (3, 3)
        Intrinsics in pixels.
    handedness : float
        See :func:`face_normals`.
    height, width : int

    Returns
    -------
    flow : ndarray, shape (H, W, 2), float32
        Displacement in frame pixels, x (columns) then y (rows), of the person's surface point at
        each pixel of the first frame; 0 where the first frame shows no person. Occluded points
        (hidden in the second frame) keep their true motion.
    """
    v0 = np.asarray(vertices_cam, dtype=np.float64)
    v1 = np.asarray(next_vertices_cam, dtype=np.float64)
    normal = face_normals(v0, faces, handedness=handedness)
    front = np.flatnonzero(np.einsum("fk,fk->f", normal, v0[faces[:, 0]]) < 0)
    face_index, _ = rasterize(v0, faces[front], K=K, height=height, width=width)
    rows, cols = np.nonzero(face_index >= 0)
    tri = faces[front[face_index[rows, cols]]]                     # (N, 3) vertex indices
    z = v0[tri, 2]
    px = K[0, 0] * v0[tri, 0] / z + K[0, 2]
    py = K[1, 1] * v0[tri, 1] / z + K[1, 2]
    # Screen-space barycentrics of the pixel centre, then perspective-correct weights (l_i / z_i).
    ax, bx, cx = (px[:, k] - cols for k in range(3))
    ay, by, cy = (py[:, k] - rows for k in range(3))
    screen = np.stack([bx * cy - cx * by, cx * ay - ax * cy, ax * by - bx * ay], axis=1) / z
    weights = screen / screen.sum(axis=1, keepdims=True)
    moved = np.einsum("nk,nkc->nc", weights, v1[tri])
    flow = np.zeros((height, width, 2), dtype=np.float32)
    flow[rows, cols, 0] = K[0, 0] * moved[:, 0] / moved[:, 2] + K[0, 2] - cols
    flow[rows, cols, 1] = K[1, 1] * moved[:, 1] / moved[:, 2] + K[1, 2] - rows
    return flow
