"""Procedural human motions as SMPL pose sequences, for the embedded demo people.

Each motion is a set of joint-angle curves (sinusoids and smooth pulses of the motion's phase),
parameterised by ``speed`` (cycle-rate factor), ``amplitude`` (angle factor), ``phase`` (radians)
and ``side`` (+1 left, -1 right: the waving arm, kicking leg, leading fist, turning direction).

Frames: the *motion frame* is SMPL's model frame, metres, y up, the person facing +z at the start
(their left on +x). Conventions used for the curves (SMPL's rest T-pose has all local rotations
identity): a leg segment's *pitch* is a rotation about +x, positive when its lower end swings
backwards (-z); a foot's pitch is positive toes-down; a positive spine pitch leans forwards.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from synthgen.core.joints import NUM_SMPL_JOINTS, SMPL_INDEX

MOTION_KINDS = ("walk", "run", "wave", "squat", "turn", "jump", "kick", "punch", "idle", "sidestep",
                "arm_circles", "lunge", "jumping_jack", "reach", "march")
#: Motion sets of the demo people: ``train`` for training data, ``heldout`` (kinds no training clip
#: of the ``train`` set shows) for evaluation, ``all`` for both.
MOTION_SETS = {
    "all": MOTION_KINDS,
    "train": MOTION_KINDS[:11],
    "heldout": MOTION_KINDS[11:],
}
#: Chance that a sampled clip changes to a second kind of its set part-way through.
TRANSITION_PROBABILITY = 0.5
#: Duration of the cross-fade between two motions (seconds).
_BLEND_S = 0.6
#: Forward speed (m/s) per unit ``amplitude`` x cycle rate (Hz) of the travelling motions.
_STRIDE = {"walk": 1.25, "run": 2.0}


def motion_set(name: str) -> tuple[str, ...]:
    """The kinds of motion set ``name`` (a key of ``MOTION_SETS``); else a ValueError naming them."""
    if name not in MOTION_SETS:
        raise ValueError(f"unknown motion set {name!r}; known: {sorted(MOTION_SETS)}")
    return MOTION_SETS[name]


@dataclass(frozen=True)
class Motion:
    """A pose sequence in the motion frame.

    Attributes
    ----------
    kind : str
        One of ``MOTION_KINDS``.
    pose : ndarray, shape (T, 72), float64
        SMPL axis-angle (radians); ``pose[:, :3]`` is the root orientation in the motion frame.
    translation : ndarray, shape (T, 3), float64
        Metres in the motion frame: x and z are the ground-plane travel of the root since frame 0
        (travelling motions go along +z); y is the height of the feet's lowest point above the
        ground (0 except in flight).
    params : dict
        The parameters that generated it (kind, speed, amplitude, phase, side).
    """

    kind: str
    pose: np.ndarray
    translation: np.ndarray
    params: dict

    @property
    def num_frames(self) -> int:
        return int(self.pose.shape[0])


def sample_motion(rng: np.random.Generator, num_frames: int, *, kind: str | None = None,
                  fps: float = 30.0, kinds: tuple[str, ...] = MOTION_KINDS) -> Motion:
    """Draw a random motion from ``rng``: kind, parameters, a smoothly varying speed, a smooth
    personal style and, with ``TRANSITION_PROBABILITY``, a cross-fade into a second kind.

    Parameters
    ----------
    rng : numpy.random.Generator
    num_frames : int
    kind : str, optional
        One of ``MOTION_KINDS``; drawn uniformly from ``kinds`` when None.
    fps : float
    kinds : tuple of str
        Where the kind (when None) and the kind after a transition come from (a ``MOTION_SETS``
        value).

    Returns
    -------
    Motion
        ``kind`` is the first kind; ``params["then"]`` the second (None without a transition) and
        ``params["switch_frame"]`` the middle of the cross-fade.
    """
    if kind is None:
        kind = kinds[rng.integers(len(kinds))]
    params = dict(speed=float(rng.uniform(0.7, 1.35)), amplitude=float(rng.uniform(0.75, 1.15)),
                  phase=float(rng.uniform(0, 2 * np.pi)), side=int(rng.choice([-1, 1])))
    time = _warped_time(rng, num_frames, fps)
    motion = make_motion(kind, num_frames, fps=fps, time=time, **params)
    then, switch = None, None
    others = [k for k in kinds if k != kind]
    if others and rng.random() < TRANSITION_PROBABILITY:
        then = others[rng.integers(len(others))]
        second = make_motion(then, num_frames, fps=fps, time=time, speed=float(rng.uniform(0.7, 1.35)),
                             amplitude=float(rng.uniform(0.75, 1.15)), phase=float(rng.uniform(0, 2 * np.pi)),
                             side=int(rng.choice([-1, 1])))
        switch = int(rng.integers(num_frames // 4, max(num_frames // 4 + 1, 3 * num_frames // 4)))
        motion = _cross_fade(motion, second, switch, fps)
    style = _smooth_jitter(rng, num_frames, fps)
    local = Rotation.from_rotvec(style.reshape(-1, 3)) * Rotation.from_rotvec(motion.pose.reshape(-1, 3))
    pose = local.as_rotvec().reshape(num_frames, NUM_SMPL_JOINTS * 3)
    return Motion(kind, pose, motion.translation, {**motion.params, "then": then, "switch_frame": switch})


def _warped_time(rng: np.random.Generator, num_frames: int, fps: float) -> np.ndarray:
    """Motion time (seconds, (T,)) of each frame under a slowly varying speed factor in about
    [0.7, 1.4] (a log-speed sinusoid with a random period of 1.5-5 s)."""
    period = rng.uniform(1.5, 5.0)
    log_speed = 0.35 * np.sin(2 * np.pi * np.arange(num_frames) / (period * fps) + rng.uniform(0, 2 * np.pi))
    return np.concatenate([[0.0], np.cumsum(np.exp(log_speed[:-1]))]) / fps


def _cross_fade(first: Motion, second: Motion, switch: int, fps: float) -> Motion:
    """``first`` turning into ``second`` around frame ``switch``: joint rotations slerped with a
    smoothstep weight over ``_BLEND_S`` seconds, ground travel velocities blended likewise."""
    frames = np.arange(first.num_frames)
    u = np.clip((frames - switch) / (_BLEND_S * fps) + 0.5, 0, 1)
    w = u * u * (3 - 2 * u)
    a = Rotation.from_rotvec(first.pose.reshape(-1, 3))
    b = Rotation.from_rotvec(second.pose.reshape(-1, 3))
    delta = (a.inv() * b).as_rotvec() * np.repeat(w, NUM_SMPL_JOINTS)[:, None]
    pose = (a * Rotation.from_rotvec(delta)).as_rotvec().reshape(first.pose.shape)
    velocity = (1 - w)[:, None] * np.diff(first.translation, axis=0, prepend=first.translation[:1]) \
        + w[:, None] * np.diff(second.translation, axis=0, prepend=second.translation[:1])
    translation = np.cumsum(velocity, axis=0)
    translation[:, 1] = (1 - w) * first.translation[:, 1] + w * second.translation[:, 1]
    return Motion(first.kind, pose, translation, first.params)


def make_motion(kind: str, num_frames: int, *, fps: float = 30.0, speed: float = 1.0,
                amplitude: float = 1.0, phase: float = 0.0, side: int = 1,
                time: np.ndarray | None = None) -> Motion:
    """The deterministic joint-angle curves of one motion kind.

    Parameters
    ----------
    kind : str
        One of ``MOTION_KINDS``.
    num_frames : int
    fps : float
        Frames per second.
    speed : float
        Cycle-rate factor (1 = a typical adult's cadence).
    amplitude : float
        Joint-angle factor (1 = typical).
    phase : float
        Phase of the cycle at frame 0, radians.
    side : {1, -1}
        +1 uses the left limb (waving arm, kicking leg, leading fist) and turns left.
    time : ndarray, shape (T,), optional
        Motion time of each frame in seconds (a time warp); default ``frame / fps``.

    Returns
    -------
    Motion

    Raises
    ------
    ValueError
        For an unknown kind.
    """
    if kind not in MOTION_KINDS:
        raise ValueError(f"unknown motion kind {kind!r}; known: {MOTION_KINDS}")
    t = np.arange(num_frames) / fps if time is None else np.asarray(time, dtype=np.float64)
    body = _Body(num_frames)
    lift, forward = _CURVES[kind](body, t, speed=speed, amplitude=amplitude, phase=phase, side=side)
    translation = np.stack([np.zeros(num_frames), lift, forward], axis=1)
    pose = Rotation.from_matrix(body.rot.reshape(-1, 3, 3)).as_rotvec().reshape(num_frames, -1)
    params = dict(kind=kind, speed=speed, amplitude=amplitude, phase=phase, side=side)
    return Motion(kind, pose, translation, params)


class _Body:
    """Per-frame local joint rotations (T, 24, 3, 3), filled in by the motion curves."""

    def __init__(self, num_frames: int):
        self.rot = np.tile(np.eye(3), (num_frames, NUM_SMPL_JOINTS, 1, 1))

    def set(self, joint: str, matrix: np.ndarray):
        self.rot[:, SMPL_INDEX[joint]] = matrix

    def root(self, *, yaw=0.0, pitch=0.0, roll=0.0):
        self.set("pelvis", _ry(yaw) @ _rx(pitch) @ _rz(roll))

    def legs(self, thigh, shin, foot, *, root_pitch=0.0, spread=0.0):
        """Segment pitches (dict side -> (T,) radians, absolute in the motion frame)."""
        for s in ("left", "right"):
            sign = 1.0 if s == "left" else -1.0
            self.set(f"{s}_hip", _rx(thigh[s] - root_pitch) @ _rz(sign * spread))
            self.set(f"{s}_knee", _rx(shin[s] - thigh[s]))
            self.set(f"{s}_ankle", _rx(foot[s] - shin[s]))

    def arm(self, s: str, *, down, forward, elbow):
        """Arm hanging ``down`` from the T-pose, swung ``forward``, elbow bent forwards (radians)."""
        sign = 1.0 if s == "left" else -1.0
        self.set(f"{s}_shoulder", _rx(-np.asarray(forward)) @ _rz(-sign * np.asarray(down)))
        self.set(f"{s}_elbow", _ry(-sign * np.asarray(elbow)))

    def spine(self, *, pitch=0.0, twist=0.0, bend=0.0):
        for joint in ("spine1", "spine2", "spine3"):
            self.set(joint, _ry(twist / 3) @ _rx(pitch / 3) @ _rz(bend / 3))


def _axis_rotation(axis: int, angle) -> np.ndarray:
    angle = np.atleast_1d(np.asarray(angle, dtype=np.float64))
    c, s = np.cos(angle), np.sin(angle)
    m = np.zeros(angle.shape + (3, 3))
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    m[..., axis, axis] = 1.0
    m[..., i, i] = c
    m[..., j, j] = c
    m[..., i, j] = -s
    m[..., j, i] = s
    return m


def _rx(angle):
    return _axis_rotation(0, angle)


def _ry(angle):
    return _axis_rotation(1, angle)


def _rz(angle):
    return _axis_rotation(2, angle)


def _both(left, right):
    return {"left": left, "right": right}


def _stand(body: _Body, n: int, *, knee=0.05):
    zero = np.zeros(n)
    body.legs(_both(zero, zero), _both(zero + knee, zero + knee), _both(zero, zero))
    for s in ("left", "right"):
        body.arm(s, down=np.full(n, 1.3), forward=np.full(n, 0.05), elbow=np.full(n, 0.2))


def _gait(body, t, *, rate, amplitude, phase, hip, knee, knee_offset, lean, elbow, arm_swing):
    phi = 2 * np.pi * rate * t + phase
    thigh, shin, foot = {}, {}, {}
    for s, p in (("left", phi), ("right", phi + np.pi)):
        thigh[s] = -hip * amplitude * np.sin(p)
        flex = knee_offset + knee * amplitude * np.clip(np.cos(p + 0.4), 0, None) ** 2
        shin[s] = thigh[s] + flex
        foot[s] = -0.2 * amplitude * np.sin(p)
    body.root(yaw=0.08 * amplitude * np.sin(phi), pitch=np.full(len(t), lean), roll=0.03 * np.cos(2 * phi))
    body.legs(thigh, shin, foot, root_pitch=lean)
    body.spine(pitch=np.full(len(t), 0.5 * lean), twist=-0.12 * amplitude * np.sin(phi))
    body.arm("left", down=np.full(len(t), 1.25), forward=-arm_swing * amplitude * np.sin(phi),
             elbow=elbow + 0.25 * np.clip(-np.sin(phi), 0, None))
    body.arm("right", down=np.full(len(t), 1.25), forward=arm_swing * amplitude * np.sin(phi),
             elbow=elbow + 0.25 * np.clip(np.sin(phi), 0, None))
    return phi


def _walk(body, t, *, speed, amplitude, phase, side):
    rate = 0.9 * speed
    _gait(body, t, rate=rate, amplitude=amplitude, phase=phase, hip=0.38, knee=0.65, knee_offset=0.08,
          lean=0.04, elbow=0.25, arm_swing=0.35)
    return np.zeros(len(t)), _STRIDE["walk"] * amplitude * rate * t


def _run(body, t, *, speed, amplitude, phase, side):
    rate = 1.4 * speed
    phi = _gait(body, t, rate=rate, amplitude=amplitude, phase=phase, hip=0.6, knee=1.3, knee_offset=0.3,
                lean=0.15, elbow=1.3, arm_swing=0.6)
    lift = 0.05 * amplitude * np.clip(-np.cos(2 * phi), 0, None)
    return lift, _STRIDE["run"] * amplitude * rate * t


def _crouch(body, depth, *, lean=0.5, arms_forward=None):
    """Both legs bent with flat feet: ``depth`` (T,) in [0, 1]."""
    thigh = -1.35 * depth
    shin = 0.5 * depth
    body.root(pitch=lean * depth)
    body.legs(_both(thigh, thigh), _both(shin, shin), _both(0 * depth, 0 * depth), root_pitch=lean * depth)
    body.spine(pitch=-0.3 * lean * depth)
    forward = 1.3 * depth if arms_forward is None else arms_forward
    for s in ("left", "right"):
        body.arm(s, down=np.full(len(depth), 1.3), forward=forward, elbow=0.2 + 0.3 * depth)


def _squat(body, t, *, speed, amplitude, phase, side):
    phi = 2 * np.pi * 0.35 * speed * t + phase
    _crouch(body, np.clip(amplitude, 0, 1.2) * 0.5 * (1 - np.cos(phi)))
    return np.zeros(len(t)), np.zeros(len(t))


def _wave(body, t, *, speed, amplitude, phase, side):
    _stand(body, len(t))
    s = "left" if side > 0 else "right"
    sign = 1.0 if s == "left" else -1.0
    wave = np.sin(2 * np.pi * 1.5 * speed * t + phase)
    body.set(f"{s}_shoulder", _rx(np.full(len(t), -0.3)) @ _rz(np.full(len(t), sign * 0.35)))
    body.set(f"{s}_elbow", _rz(sign * (1.5 + 0.45 * amplitude * wave)))
    body.root(roll=0.03 * np.sin(2 * np.pi * 0.3 * t + phase))
    body.set("neck", _ry(np.full(len(t), sign * 0.2)))
    return np.zeros(len(t)), np.zeros(len(t))


def _turn(body, t, *, speed, amplitude, phase, side):
    phi = 2 * np.pi * 1.1 * speed * t + phase
    thigh, shin = {}, {}
    for s, p in (("left", phi), ("right", phi + np.pi)):
        thigh[s] = -0.15 * amplitude * np.clip(np.sin(p), 0, None)
        shin[s] = thigh[s] + 0.05 + 0.4 * amplitude * np.clip(np.sin(p), 0, None)
    body.legs(thigh, shin, _both(0 * t, 0 * t))
    body.root(yaw=side * 1.6 * speed * t)
    for s in ("left", "right"):
        body.arm(s, down=np.full(len(t), 1.2), forward=0.1 + 0.1 * np.sin(phi), elbow=np.full(len(t), 0.35))
    return np.zeros(len(t)), np.zeros(len(t))


def _jump(body, t, *, speed, amplitude, phase, side):
    u = (0.7 * speed * t + phase / (2 * np.pi)) % 1.0
    crouch = np.where(u < 0.3, np.sin(np.pi * u / 0.3), 0.0)
    flight = np.clip((u - 0.3) / 0.4, 0, 1) * (u < 0.7)
    land = np.where(u >= 0.7, 0.6 * np.sin(np.pi * (u - 0.7) / 0.3), 0.0)
    depth = 0.6 * (crouch + land)
    arms = -0.6 * crouch + 2.6 * np.sin(np.pi * flight) + 0.3 * land
    _crouch(body, depth, arms_forward=arms)
    lift = 0.25 * amplitude * 4 * flight * (1 - flight)
    return lift, np.zeros(len(t))


def _kick(body, t, *, speed, amplitude, phase, side):
    _stand(body, len(t), knee=0.1)
    u = (0.5 * speed * t + phase / (2 * np.pi)) % 1.0
    s = np.clip((u - 0.3) / 0.4, 0, 1)
    kick = np.sin(np.pi * s) ** 2
    leg, other = ("left", "right") if side > 0 else ("right", "left")
    lean = -0.15 * kick
    thigh = -1.2 * amplitude * kick
    shin = thigh + 1.3 * np.sin(np.pi * s) * (1 - s)
    zero = np.zeros(len(t))
    body.root(pitch=lean)
    body.legs({leg: thigh, other: zero}, {leg: shin, other: zero + 0.15}, {leg: 0.3 * kick, other: zero},
              root_pitch=lean)
    for a in ("left", "right"):
        body.arm(a, down=1.1 - 0.4 * kick, forward=np.full(len(t), 0.3), elbow=np.full(len(t), 0.4))
    return np.zeros(len(t)), np.zeros(len(t))


def _punch(body, t, *, speed, amplitude, phase, side):
    n = len(t)
    phi = 2 * np.pi * 0.9 * speed * t + phase
    zero = np.zeros(n)
    body.legs(_both(zero - 0.1, zero - 0.1), _both(zero + 0.15, zero + 0.15), _both(zero, zero), spread=0.12)
    twist = zero
    for s, p in (("left", phi), ("right", phi + np.pi)):
        sign = 1.0 if s == "left" else -1.0
        punch = amplitude * np.clip(np.sin(p if side > 0 else p + np.pi), 0, None) ** 3
        body.arm(s, down=1.1 + 0.4 * punch, forward=0.9 + 0.7 * punch, elbow=1.9 * (1 - punch) + 0.1)
        twist = twist - sign * 0.3 * punch
    body.spine(twist=twist)
    return zero, zero


def _idle(body, t, *, speed, amplitude, phase, side):
    _stand(body, len(t))
    body.root(roll=0.04 * amplitude * np.sin(2 * np.pi * 0.25 * speed * t + phase))
    body.set("neck", _ry(0.4 * amplitude * np.sin(2 * np.pi * 0.15 * speed * t + phase)))
    gesture = np.clip(np.sin(2 * np.pi * 0.3 * speed * t + 2 * phase), 0, None)
    s = "left" if side > 0 else "right"
    body.arm(s, down=1.3 - 0.4 * gesture, forward=0.05 + 0.6 * amplitude * gesture, elbow=0.2 + 1.2 * gesture)
    return np.zeros(len(t)), np.zeros(len(t))


def _sidestep(body, t, *, speed, amplitude, phase, side):
    """Stepping from side to side in place: legs spread and close, hips sway."""
    phi = 2 * np.pi * 0.8 * speed * t + phase
    n = len(t)
    zero = np.zeros(n)
    spread = 0.05 + 0.22 * amplitude * (0.5 - 0.5 * np.cos(phi))
    lift = 0.25 * np.clip(np.sin(phi), 0, None)
    body.legs(_both(zero - 0.5 * lift, zero - 0.5 * lift), _both(zero + 0.1 + lift, zero + 0.1 + lift),
              _both(zero, zero), spread=spread)
    body.root(roll=0.06 * amplitude * np.sin(phi), yaw=np.full(n, side * 0.2))
    for s in ("left", "right"):
        body.arm(s, down=1.2 - 0.2 * np.sin(phi), forward=np.full(n, 0.2), elbow=np.full(n, 0.5))
    return zero, zero


def _arm_circles(body, t, *, speed, amplitude, phase, side):
    """Both arms out to the sides, circling."""
    _stand(body, len(t))
    phi = 2 * np.pi * 1.0 * speed * t + phase
    for s in ("left", "right"):
        body.arm(s, down=0.15 + 0.45 * amplitude * np.cos(phi), forward=0.45 * amplitude * side * np.sin(phi),
                 elbow=np.full(len(t), 0.1))
    return np.zeros(len(t)), np.zeros(len(t))


def _lunge(body, t, *, speed, amplitude, phase, side):
    """Forward lunges: one leg steps forwards and bends, the other knee drops, hands on the hips."""
    phi = 2 * np.pi * 0.4 * speed * t + phase
    depth = np.clip(amplitude, 0, 1.2) * 0.5 * (1 - np.cos(phi))
    lead, back = ("left", "right") if side > 0 else ("right", "left")
    thigh = {lead: -1.1 * depth, back: 0.45 * depth}
    shin = {lead: thigh[lead] + 1.2 * depth, back: thigh[back] + 1.3 * depth}
    foot = {lead: 0 * depth, back: 0.4 * depth}
    body.legs(thigh, shin, foot)
    body.spine(pitch=0.1 * depth)
    for s in ("left", "right"):
        body.arm(s, down=np.full(len(t), 1.0), forward=np.full(len(t), -0.5), elbow=np.full(len(t), 1.6))
    return np.zeros(len(t)), np.zeros(len(t))


def _jumping_jack(body, t, *, speed, amplitude, phase, side):
    """Jumping jacks: legs spread and arms swing overhead on each hop."""
    phi = 2 * np.pi * 1.0 * speed * t + phase
    open_ = 0.5 - 0.5 * np.cos(phi)
    n = len(t)
    zero = np.zeros(n)
    body.legs(_both(zero, zero), _both(zero + 0.1, zero + 0.1), _both(zero + 0.1 * open_, zero + 0.1 * open_),
              spread=0.35 * amplitude * open_)
    for s in ("left", "right"):
        body.arm(s, down=1.3 - 2.6 * amplitude * open_, forward=np.full(n, 0.1), elbow=np.full(n, 0.15))
    lift = 0.06 * amplitude * np.abs(np.sin(phi))
    return lift, zero


def _reach(body, t, *, speed, amplitude, phase, side):
    """Bending forwards from the hips to reach towards the floor, and back up."""
    phi = 2 * np.pi * 0.35 * speed * t + phase
    depth = np.clip(amplitude, 0, 1.2) * 0.5 * (1 - np.cos(phi))
    zero = np.zeros(len(t))
    body.root(pitch=0.8 * depth)
    body.legs(_both(zero, zero), _both(zero + 0.1 + 0.3 * depth, zero + 0.1 + 0.3 * depth), _both(zero, zero),
              root_pitch=0.8 * depth)
    body.spine(pitch=0.6 * depth, twist=0.2 * side * depth)
    for s in ("left", "right"):
        body.arm(s, down=1.3 - 0.2 * depth, forward=0.05 + 1.0 * depth, elbow=0.2 - 0.1 * depth)
    return zero, zero


def _march(body, t, *, speed, amplitude, phase, side):
    """Marching in place with high knees and bent arms swinging."""
    phi = 2 * np.pi * 0.9 * speed * t + phase
    thigh, shin = {}, {}
    for s, p in (("left", phi), ("right", phi + np.pi)):
        up = np.clip(np.sin(p), 0, None)
        thigh[s] = -1.3 * amplitude * up
        shin[s] = thigh[s] + 0.05 + 1.6 * amplitude * up
    body.legs(thigh, shin, _both(0.3 * np.clip(np.sin(phi), 0, None), 0.3 * np.clip(-np.sin(phi), 0, None)))
    body.arm("left", down=np.full(len(t), 1.2), forward=-0.6 * amplitude * np.sin(phi), elbow=np.full(len(t), 1.5))
    body.arm("right", down=np.full(len(t), 1.2), forward=0.6 * amplitude * np.sin(phi), elbow=np.full(len(t), 1.5))
    return np.zeros(len(t)), np.zeros(len(t))


_CURVES = {"walk": _walk, "run": _run, "wave": _wave, "squat": _squat, "turn": _turn, "jump": _jump,
           "kick": _kick, "punch": _punch, "idle": _idle, "sidestep": _sidestep,
           "arm_circles": _arm_circles, "lunge": _lunge, "jumping_jack": _jumping_jack, "reach": _reach,
           "march": _march}


def _smooth_jitter(rng: np.random.Generator, num_frames: int, fps: float) -> np.ndarray:
    """A personal style: per-joint static offsets plus slow wobbles, axis-angle (T, 72), radians.

    The root (joint 0) is left untouched so the motion's heading stays as generated.
    """
    t = np.arange(num_frames) / fps
    num = NUM_SMPL_JOINTS * 3
    static = rng.normal(scale=0.04, size=num)
    freq = rng.uniform(0.1, 0.6, size=(3, num))
    amp = rng.normal(scale=0.025, size=(3, num))
    offset = rng.uniform(0, 2 * np.pi, size=(3, num))
    wobble = (amp[:, None] * np.sin(2 * np.pi * freq[:, None] * t[None, :, None] + offset[:, None])).sum(axis=0)
    jitter = static + wobble
    jitter[:, :3] = 0.0
    return jitter
