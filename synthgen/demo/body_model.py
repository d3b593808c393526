"""A procedural body model in SMPL's file format, for the embedded demo data.

No SMPL model may be shipped, so the demo people use a body built here from tapered elliptic
capsules (one per joint's bone, merged into one mesh) on SMPL's 24-joint kinematic tree. It follows
SMPL's conventions: rest T-pose in metres, y up, facing +z, the person's left on +x, pelvis at about
(0, -0.23, 0); 6890 vertices (so ``smplx``'s extra keypoints, which index vertices up to 6787, work);
10 shape directions; pose blend shapes all zero. ``write_smpl_model`` pickles it with exactly the
keys ``smplx.SMPL`` reads, so the real loader loads it unchanged.

How it is built
---------------
* Skeleton: joint positions are a function of 10 body measurements (stature, girth, leg length, arm
  length, shoulder width, hip width, torso length, belly depth, head size, limb thickness); the
  gendered models differ by their base measurements.
* Surface: each capsule is a ring-by-ring tube along a bone with hemispherical end caps. Every
  joint is the centre of one ring (the ring where the bone starting at the joint begins, or for
  the ankles the ring where the shin ends).
* Joint regressor: row j averages that ring's vertices, so it reproduces the joint exactly for the
  template and, the shape directions being linear, for every ``betas``.
* Shape directions: central finite differences of the mesh w.r.t. the measurements, one
  measurement per beta, scaled to a plausible spread per unit beta.
* Skinning weights: a capsule's vertices belong to its bone's joint, blended with a smoothstep
  over a short length around each end into the parent (at the start) and the child (at the end),
  so bends at joints are smooth. A face's part is its vertices' dominant joint.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from synthgen.core.joints import NUM_SMPL_JOINTS, SMPL_INDEX, SMPL_JOINT_NAMES, SMPL_PARENTS

NUM_VERTICES = 6890
NUM_BETAS = 10
NUM_POSE_BASIS = 9 * (NUM_SMPL_JOINTS - 1)
GENDERS = ("neutral", "female", "male")

#: The body measurements behind the 10 shape directions (multiplicative factors, 1 = base).
SHAPE_PARAMETER_NAMES = (
    "stature", "girth", "leg_length", "arm_length", "shoulder_width", "hip_width",
    "torso_length", "belly", "head_size", "limb_thickness",
)
#: Change of each measurement per unit beta (beta ~ N(0, 1) gives a plausible population).
_BETA_STEP = np.array([0.045, 0.08, 0.04, 0.04, 0.06, 0.07, 0.05, 0.12, 0.05, 0.08])
_BASE_MEASUREMENTS = {
    "male": np.array([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]),
    "female": np.array([0.93, 0.92, 1.0, 0.97, 0.88, 1.12, 0.98, 0.95, 0.97, 0.9]),
}
_BASE_MEASUREMENTS["neutral"] = 0.5 * (_BASE_MEASUREMENTS["male"] + _BASE_MEASUREMENTS["female"])
#: Where the pelvis joint sits in the rest pose (as in SMPL's templates), metres.
_PELVIS = np.array([0.0, -0.23, 0.0])
_FD_STEP = 1e-3


@dataclass(frozen=True)
class BodyModel:
    """An SMPL-format body model (arrays as in the SMPL ``.pkl``; metres, model frame y up).

    Attributes
    ----------
    v_template : ndarray, shape (V, 3), float64
        Rest T-pose vertices.
    shapedirs : ndarray, shape (V, 3, 10), float64
        Shape blend shapes (vertex offset per unit beta).
    J_regressor : ndarray, shape (24, V), float64
        Joint regressor; rows sum to 1.
    weights : ndarray, shape (V, 24), float64
        Skinning weights; rows sum to 1.
    faces : ndarray, shape (F, 3), int64
        Triangles, wound counter-clockwise seen from outside.
    gender : str
    """

    v_template: np.ndarray
    shapedirs: np.ndarray
    J_regressor: np.ndarray
    weights: np.ndarray
    faces: np.ndarray
    gender: str

    @property
    def parents(self) -> np.ndarray:
        return np.asarray(SMPL_PARENTS, dtype=np.int64)

    @property
    def face_joint(self) -> np.ndarray:
        """Dominant skinning joint of each face, shape (F,), int64 (its SURREAL part is this + 1)."""
        return np.argmax(self.weights[self.faces].sum(axis=1), axis=1)

    def rest_joints(self, betas=None) -> np.ndarray:
        """Rest-pose joints, shape (24, 3), metres in the model frame."""
        return self.J_regressor @ self.shaped(betas)

    def shaped(self, betas=None) -> np.ndarray:
        """Rest-pose vertices for ``betas`` (shape (10,), default zeros), shape (V, 3)."""
        if betas is None:
            return self.v_template.copy()
        return self.v_template + self.shapedirs @ np.asarray(betas, dtype=np.float64)

    def to_smpl_dict(self) -> dict:
        """The dict pickled as ``SMPL_<GENDER>.pkl`` (plain numpy arrays, smplx's keys)."""
        kintree = np.stack([np.asarray(SMPL_PARENTS, dtype=np.int64), np.arange(NUM_SMPL_JOINTS)])
        kintree[0, 0] = 2**32 - 1  # the official files' root marker (uint32 -1)
        return {
            "v_template": self.v_template,
            "shapedirs": self.shapedirs,
            "posedirs": np.zeros((len(self.v_template), 3, NUM_POSE_BASIS), dtype=np.float32),
            "J_regressor": self.J_regressor,
            "J": self.rest_joints(),
            "weights": self.weights,
            "kintree_table": kintree,
            "f": self.faces.astype(np.uint32),
            "bs_type": "lrotmin",
            "bs_style": "lbs",
        }


def build_body_model(gender: str = "neutral") -> BodyModel:
    """Build the procedural body model of one gender.

    Parameters
    ----------
    gender : {"neutral", "female", "male"}

    Returns
    -------
    BodyModel
        Deterministic (no randomness): the same gender always gives the same arrays.
    """
    if gender not in GENDERS:
        raise ValueError(f"unknown gender {gender!r}; expected one of {GENDERS}")
    base = _BASE_MEASUREMENTS[gender]
    mesh = _build_mesh(base)
    shapedirs = np.empty((NUM_VERTICES, 3, NUM_BETAS))
    for k in range(NUM_BETAS):
        step = np.zeros(NUM_BETAS)
        step[k] = _FD_STEP
        plus = _build_mesh(base + step).vertices
        minus = _build_mesh(base - step).vertices
        shapedirs[:, :, k] = (plus - minus) / (2 * _FD_STEP) * _BETA_STEP[k]
    order = _landmark_order(mesh)
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    return BodyModel(
        v_template=mesh.vertices[order],
        shapedirs=shapedirs[order],
        J_regressor=mesh.regressor[:, order],
        weights=mesh.weights[order],
        faces=inverse[mesh.faces],
        gender=gender,
    )


def write_smpl_model(directory, *, gender: str = "neutral") -> Path:
    """Write ``SMPL_<GENDER>.pkl`` (loadable by ``smplx.SMPL(model_path=directory, gender=...)``).

    Parameters
    ----------
    directory : str or Path
        Created if missing.
    gender : {"neutral", "female", "male"}

    Returns
    -------
    Path
        The written file (about 20 MB, mostly the zero pose blend shapes).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"SMPL_{gender.upper()}.pkl"
    with open(path, "wb") as f:
        pickle.dump(build_body_model(gender).to_smpl_dict(), f, protocol=4)
    return path


# ----------------------------------------------------------------------------------------------
# Forward pass (numpy, the same maths as smplx.lbs with zero pose blend shapes)


def rodrigues(axis_angle) -> np.ndarray:
    """Rotation matrices ``(..., 3, 3)`` from axis-angle vectors ``(..., 3)`` (radians)."""
    aa = np.asarray(axis_angle, dtype=np.float64)
    angle = np.linalg.norm(aa, axis=-1, keepdims=True)
    axis = aa / np.maximum(angle, 1e-12)
    x, y, z = np.moveaxis(axis, -1, 0)
    zero = np.zeros_like(x)
    k = np.stack([zero, -z, y, z, zero, -x, -y, x, zero], axis=-1).reshape(aa.shape[:-1] + (3, 3))
    s = np.sin(angle)[..., None]
    c = np.cos(angle)[..., None]
    return np.eye(3) + s * k + (1 - c) * (k @ k)


def pose_body(model: BodyModel, betas, pose, *, rotations=None) -> tuple[np.ndarray, np.ndarray]:
    """Linear blend skinning of the model, as ``smplx.SMPL`` computes it (without translation).

    Parameters
    ----------
    model : BodyModel
    betas : array_like, shape (10,)
    pose : array_like, shape (T, 72)
        Axis-angle per joint (radians); ``pose[:, :3]`` is the global orientation.
    rotations : ndarray, shape (T, 24, 3, 3), optional
        Per-joint rotation matrices used instead of ``pose`` (then ``pose`` may be None).

    Returns
    -------
    vertices : ndarray, shape (T, V, 3), float64
    joints : ndarray, shape (T, 24, 3), float64
        Metres in the model frame rotated by the global orientation about the rest pelvis.
    """
    if rotations is None:
        rotations = rodrigues(np.asarray(pose, dtype=np.float64).reshape(-1, NUM_SMPL_JOINTS, 3))
    num_frames = rotations.shape[0]
    v_shaped = model.shaped(betas)
    rest = model.J_regressor @ v_shaped
    parents = model.parents
    world_rot = np.empty((num_frames, NUM_SMPL_JOINTS, 3, 3))
    world_pos = np.empty((num_frames, NUM_SMPL_JOINTS, 3))
    world_rot[:, 0] = rotations[:, 0]
    world_pos[:, 0] = rest[0]
    for j in range(1, NUM_SMPL_JOINTS):
        p = parents[j]
        world_rot[:, j] = world_rot[:, p] @ rotations[:, j]
        world_pos[:, j] = world_pos[:, p] + world_rot[:, p] @ (rest[j] - rest[p])
    # Per-joint affine map of rest-pose points: X -> R_j (X - rest_j) + pos_j.
    offset = world_pos - np.einsum("tjab,jb->tja", world_rot, rest)
    affine = np.concatenate([world_rot, offset[..., None]], axis=-1)  # (T, 24, 3, 4)
    # One GEMM for all frames: blended[t, a, b, v] = sum_j affine[t, j, a, b] * weights[v, j].
    blended = (affine.transpose(0, 2, 3, 1).reshape(-1, NUM_SMPL_JOINTS) @ model.weights.T)
    blended = blended.reshape(num_frames, 3, 4, -1)
    vertices = blended[:, :, 3].copy()
    for axis in range(3):
        vertices += blended[:, :, axis] * v_shaped[:, axis]
    return np.ascontiguousarray(vertices.transpose(0, 2, 1)), world_pos


# ----------------------------------------------------------------------------------------------
# Mesh construction


@dataclass(frozen=True)
class _Capsule:
    """One tapered elliptic capsule: axis p0 -> p1, radii (across-u, across-v) at both ends."""

    owner: int
    p0: np.ndarray
    p1: np.ndarray
    r0: tuple[float, float]
    r1: tuple[float, float]
    cap0: float
    cap1: float
    rings: int
    segments: int
    parent_blend: bool
    child: int  # joint blended in at p1, or -1
    joint0: int  # joint at p0 (ring centre) or -1
    joint1: int  # joint at p1 or -1


@dataclass(frozen=True)
class _Mesh:
    vertices: np.ndarray
    faces: np.ndarray
    weights: np.ndarray
    regressor: np.ndarray


_CAP_RINGS = 4


def _skeleton(m: np.ndarray) -> np.ndarray:
    """Rest joints (24, 3) in metres for measurements ``m`` (SHAPE_PARAMETER_NAMES order)."""
    stature, _, leg, arm, shoulder, hip, torso, _, head, _ = m
    joints = np.zeros((NUM_SMPL_JOINTS, 3))
    offsets = {
        "spine1": (0.0, 0.115 * torso, -0.01),
        "spine2": (0.0, 0.135 * torso, 0.01),
        "spine3": (0.0, 0.055 * torso, 0.02),
        "neck": (0.0, 0.215 * torso, -0.035),
        "head": (0.0, 0.075 * head, 0.045 * head),
        "left_hip": (0.06 * hip, -0.09, 0.0),
        "left_knee": (0.035 * hip, -0.37 * leg, 0.0),
        "left_ankle": (-0.005, -0.40 * leg, -0.04),
        "left_foot": (0.015, -0.055, 0.12),
        "left_collar": (0.075 * shoulder, 0.125 * torso, -0.03),
        "left_shoulder": (0.10 * shoulder, 0.03, -0.01),
        "left_elbow": (0.26 * arm, -0.01, -0.02),
        "left_wrist": (0.25 * arm, 0.0, 0.0),
        "left_hand": (0.085 * arm, -0.005, -0.005),
    }
    mirror = np.array([-1.0, 1.0, 1.0])
    for j in range(1, NUM_SMPL_JOINTS):  # parents come before children
        name = SMPL_JOINT_NAMES[j]
        side = mirror if name.startswith("right_") else 1.0
        offset = np.asarray(offsets[name.replace("right_", "left_")]) * side
        joints[j] = joints[SMPL_PARENTS[j]] + stature * offset
    return joints + _PELVIS


def _capsules(m: np.ndarray, joints: np.ndarray) -> list[_Capsule]:
    stature, girth, _, _, _, hip, _, belly, head_size, limb = m
    t = stature * girth  # torso radii scale
    a = stature * np.sqrt(girth) * limb  # limb radii scale
    ji = SMPL_INDEX
    caps = [
        _Capsule(ji["pelvis"], joints[0], joints[3], (0.15 * t * hip, 0.105 * t * belly),
                 (0.145 * t, 0.1 * t * belly), 0.11 * t, 0.04 * t, 10, 28, False, 3, 0, 3),
        _Capsule(ji["spine1"], joints[3], joints[6], (0.145 * t, 0.1 * t * belly),
                 (0.145 * t, 0.105 * t * belly), 0.04 * t, 0.04 * t, 8, 28, True, 6, 3, 6),
        _Capsule(ji["spine2"], joints[6], joints[9], (0.145 * t, 0.105 * t * belly),
                 (0.155 * t, 0.11 * t), 0.04 * t, 0.04 * t, 6, 28, True, 9, 6, 9),
        _Capsule(ji["spine3"], joints[9], joints[12], (0.165 * t, 0.11 * t), (0.12 * t, 0.075 * t),
                 0.05 * t, 0.06 * t, 10, 28, True, 12, 9, 12),
        _Capsule(ji["neck"], joints[12], joints[15], (0.055 * a, 0.055 * a), (0.05 * a, 0.05 * a),
                 0.03 * a, 0.03 * a, 5, 16, True, 15, 12, 15),
    ]
    hs = stature * head_size
    head_top = joints[15] + hs * np.array([0.0, 0.11, 0.01])
    caps.append(_Capsule(ji["head"], joints[15], head_top, (0.075 * hs, 0.09 * hs), (0.08 * hs, 0.095 * hs),
                         0.05 * hs, 0.1 * hs, 10, 26, True, -1, 15, -1))
    for side, sign in (("left", 1.0), ("right", -1.0)):
        j = {k: ji[f"{side}_{k}"] for k in ("hip", "knee", "ankle", "foot", "collar", "shoulder",
                                           "elbow", "wrist", "hand")}
        heel = joints[j["ankle"]] + stature * np.array([0.0, -0.05, -0.055])
        toe_tip = joints[j["foot"]] + stature * np.array([0.0, -0.005, 0.06])
        finger_tip = joints[j["hand"]] + stature * np.array([sign * 0.08, -0.005, 0.0])
        caps += [
            _Capsule(j["hip"], joints[j["hip"]], joints[j["knee"]], (0.08 * a * hip ** 0.5, 0.085 * a),
                     (0.055 * a, 0.055 * a), 0.07 * a, 0.05 * a, 14, 20, True, j["knee"], j["hip"], j["knee"]),
            _Capsule(j["knee"], joints[j["knee"]], joints[j["ankle"]], (0.052 * a, 0.052 * a),
                     (0.035 * a, 0.035 * a), 0.05 * a, 0.035 * a, 14, 16, True, j["ankle"], j["knee"],
                     j["ankle"]),
            _Capsule(j["ankle"], heel, joints[j["foot"]], (0.04 * a, 0.035 * a), (0.05 * a, 0.025 * a),
                     0.03 * a, 0.02 * a, 4, 14, False, j["foot"], -1, j["foot"]),
            _Capsule(j["foot"], joints[j["foot"]], toe_tip, (0.048 * a, 0.022 * a), (0.045 * a, 0.018 * a),
                     0.015 * a, 0.02 * a, 3, 12, True, -1, j["foot"], -1),
            _Capsule(j["collar"], joints[j["collar"]], joints[j["shoulder"]], (0.055 * t, 0.055 * t),
                     (0.055 * t, 0.055 * t), 0.04 * t, 0.04 * t, 4, 16, True, j["shoulder"], j["collar"],
                     j["shoulder"]),
            _Capsule(j["shoulder"], joints[j["shoulder"]], joints[j["elbow"]], (0.05 * a, 0.05 * a),
                     (0.04 * a, 0.04 * a), 0.045 * a, 0.04 * a, 13, 16, True, j["elbow"], j["shoulder"],
                     j["elbow"]),
            _Capsule(j["elbow"], joints[j["elbow"]], joints[j["wrist"]], (0.04 * a, 0.04 * a),
                     (0.03 * a, 0.028 * a), 0.035 * a, 0.03 * a, 13, 14, True, j["wrist"], j["elbow"],
                     j["wrist"]),
            _Capsule(j["wrist"], joints[j["wrist"]], joints[j["hand"]], (0.04 * a, 0.016 * a),
                     (0.042 * a, 0.016 * a), 0.015 * a, 0.01 * a, 4, 12, True, j["hand"], j["wrist"],
                     j["hand"]),
            _Capsule(j["hand"], joints[j["hand"]], finger_tip, (0.038 * a, 0.012 * a), (0.03 * a, 0.01 * a),
                     0.01 * a, 0.012 * a, 4, 10, True, -1, j["hand"], -1),
        ]
    return caps


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _capsule_mesh(cap: _Capsule, parent: int):
    """Vertices, faces, weights (V, 24) and index of the rings at p0/p1 for one capsule."""
    axis = cap.p1 - cap.p0
    length = float(np.linalg.norm(axis))
    axis /= length
    ref = np.array([1.0, 0.0, 0.0]) if abs(axis[0]) < 0.8 else np.array([0.0, 0.0, 1.0])
    u = ref - (ref @ axis) * axis
    u /= np.linalg.norm(u)
    v = np.cross(axis, u)
    nc = _CAP_RINGS
    phi0 = -np.pi / 2 + (np.pi / 2) * np.arange(1, nc + 1) / nc  # start cap, ends at the p0 ring
    phi1 = (np.pi / 2) * np.arange(0, nc) / nc  # end cap, starts at the p1 ring
    s = np.concatenate([cap.cap0 * np.sin(phi0), length * np.arange(1, cap.rings) / cap.rings,
                        length + cap.cap1 * np.sin(phi1)])
    scale = np.concatenate([np.cos(phi0), np.ones(cap.rings - 1), np.cos(phi1)])
    frac = np.clip(s / length, 0.0, 1.0)[:, None]
    radii = ((1 - frac) * np.asarray(cap.r0) + frac * np.asarray(cap.r1)) * scale[:, None]
    theta = 2 * np.pi * np.arange(cap.segments) / cap.segments
    ring_pts = (cap.p0 + s[:, None, None] * axis
                + radii[:, None, 0:1] * np.cos(theta)[None, :, None] * u
                + radii[:, None, 1:2] * np.sin(theta)[None, :, None] * v)
    poles = np.stack([cap.p0 - cap.cap0 * axis, cap.p1 + cap.cap1 * axis])
    verts = np.concatenate([ring_pts.reshape(-1, 3), poles])
    s_all = np.concatenate([np.repeat(s, cap.segments), [-cap.cap0, length + cap.cap1]])

    n_rings, n_seg = len(s), cap.segments
    idx = np.arange(n_rings * n_seg).reshape(n_rings, n_seg)
    nxt = np.roll(idx, -1, axis=1)
    a, b, c, d = idx[:-1], nxt[:-1], idx[1:], nxt[1:]
    quads = np.concatenate([np.stack([a, b, c], -1).reshape(-1, 3), np.stack([b, d, c], -1).reshape(-1, 3)])
    south, north = n_rings * n_seg, n_rings * n_seg + 1
    fan0 = np.stack([np.full(n_seg, south), nxt[0], idx[0]], -1)
    fan1 = np.stack([np.full(n_seg, north), idx[-1], nxt[-1]], -1)
    faces = np.concatenate([fan0, quads, fan1])

    blend = min(0.8 * np.mean([*cap.r0, *cap.r1]), 0.4 * length)  # half-width of the blend, metres
    start = _smoothstep((s_all + blend) / (2 * blend)) if cap.parent_blend else np.ones_like(s_all)
    end = _smoothstep((length - s_all + blend) / (2 * blend)) if cap.child >= 0 else np.ones_like(s_all)
    weights = np.zeros((len(verts), NUM_SMPL_JOINTS))
    weights[:, cap.owner] = start * end
    if cap.parent_blend:
        weights[:, parent] += 1 - start
    if cap.child >= 0:
        weights[:, cap.child] += start * (1 - end)
    return verts, faces, weights, idx[nc - 1], idx[nc + cap.rings - 1]


def _build_mesh(measurements: np.ndarray) -> _Mesh:
    joints = _skeleton(measurements)
    all_v, all_f, all_w = [], [], []
    rings = {}
    count = 0
    caps = _capsules(measurements, joints)
    caps = _fit_vertex_budget(caps)
    for cap in caps:
        verts, faces, weights, ring0, ring1 = _capsule_mesh(cap, SMPL_PARENTS[cap.owner])
        all_v.append(verts)
        all_f.append(faces + count)
        all_w.append(weights)
        if cap.joint0 >= 0:
            rings.setdefault(cap.joint0, ring0 + count)
        if cap.joint1 >= 0:
            rings.setdefault(cap.joint1, ring1 + count)
        count += len(verts)
    vertices = np.concatenate(all_v)
    regressor = np.zeros((NUM_SMPL_JOINTS, len(vertices)))
    for j in range(NUM_SMPL_JOINTS):
        regressor[j, rings[j]] = 1.0 / len(rings[j])
    faces = np.concatenate(all_f)
    return _Mesh(vertices, faces, np.concatenate(all_w), regressor)


def _capsule_vertex_count(cap: _Capsule) -> int:
    return (2 * _CAP_RINGS + cap.rings - 1) * cap.segments + 2


def _fit_vertex_budget(caps: list[_Capsule]) -> list[_Capsule]:
    """Adjust the ring counts of the torso capsules so the mesh has exactly NUM_VERTICES."""
    deficit = NUM_VERTICES - sum(_capsule_vertex_count(c) for c in caps)
    # The chest has 28 segments, the head 26, the neck 16: one ring more or less on
    # each reaches any even deficit (the total is always even).
    torso, head, neck = 3, 5, 4
    for dt in range(-20, 21):
        for dh in range(-6, 7):
            rest = deficit - dt * caps[torso].segments - dh * caps[head].segments
            if rest % caps[neck].segments == 0 and abs(rest // caps[neck].segments) <= 4:
                dn = rest // caps[neck].segments
                caps = list(caps)
                caps[torso] = replace(caps[torso], rings=caps[torso].rings + dt)
                caps[head] = replace(caps[head], rings=caps[head].rings + dh)
                caps[neck] = replace(caps[neck], rings=caps[neck].rings + dn)
                return caps
    raise AssertionError(f"cannot reach {NUM_VERTICES} vertices (deficit {deficit})")


# ----------------------------------------------------------------------------------------------
# Landmarks: put the vertices smplx reads as extra keypoints at the matching anatomy.


def _landmark_targets(mesh: _Mesh) -> dict[str, np.ndarray]:
    j = mesh.regressor @ mesh.vertices
    head = j[SMPL_INDEX["head"]]
    targets = {
        "nose": head + [0.0, 0.05, 0.12],
        "reye": head + [-0.035, 0.09, 0.1], "leye": head + [0.035, 0.09, 0.1],
        "rear": head + [-0.09, 0.07, 0.0], "lear": head + [0.09, 0.07, 0.0],
    }
    for side, sign, prefix in (("left", 1.0, "l"), ("right", -1.0, "r")):
        hand = j[SMPL_INDEX[f"{side}_hand"]]
        tip = hand + [sign * 0.09, 0.0, 0.0]
        for finger, dz in zip(("thumb", "index", "middle", "ring", "pinky"), (0.03, 0.02, 0.005, -0.01, -0.025)):
            targets[prefix + finger] = tip + [0.0, 0.0, dz]
        ankle, foot = j[SMPL_INDEX[f"{side}_ankle"]], j[SMPL_INDEX[f"{side}_foot"]]
        side_name = "L" if side == "left" else "R"
        targets[f"{side_name}BigToe"] = foot + [-sign * 0.02, -0.02, 0.08]
        targets[f"{side_name}SmallToe"] = foot + [sign * 0.035, -0.02, 0.06]
        targets[f"{side_name}Heel"] = ankle + [0.0, -0.07, -0.08]
    return targets


def _landmark_order(mesh: _Mesh) -> np.ndarray:
    """Vertex permutation (new index -> old index) placing smplx's landmark vertices."""
    from smplx.vertex_ids import vertex_ids  # here: importing smplx imports torch (seconds)

    order = np.arange(len(mesh.vertices))
    position = np.arange(len(mesh.vertices))  # old index -> new index
    used = np.zeros(len(mesh.vertices), dtype=bool)
    for name, target in _landmark_targets(mesh).items():
        new = vertex_ids["smplh"][name]
        dist = np.linalg.norm(mesh.vertices - target, axis=1)
        dist[used] = np.inf
        old = int(np.argmin(dist))
        used[old] = True
        displaced, pos_old = order[new], position[old]
        order[new], order[pos_old] = old, displaced
        position[old], position[displaced] = new, pos_old
    return order
