"""Embedded demo people: SURREAL-format clips rendered from the procedural body model.

``make_demo_people`` writes the real SURREAL tree (``cmu/{train,val,test}/run0/<seq>/<seq>_c0001.*``,
through ``synthgen.sources.surreal.write_surreal_clip``) and the body model as SMPL ``.pkl`` files,
so every real reader runs unchanged on a machine without SURREAL or SMPL.

Conventions (those of the real files, ``docs/formats.md``):

* World frame: SURREAL's (Blender's) right-handed world, metres, +y down, ground plane y = 0;
  the camera sits at ``camLoc = (d, -h, 0)`` (distance d along +x, height h above the ground) and
  looks along -x. Its world-to-camera rotation is SURREAL's reflection, so the images, like the
  real ones, show a mirror view of the posed body.
* Body: vertices and joints are the SMPL forward pass with global orientation
  ``R_x(pi/2) R_z(zrot) Rodrigues(pose[0:3])``, the body pose ``pose[3:]`` and the clip's betas,
  then translated; ``pose[0:3]`` is the motion's root orientation in a z-up "mocap" frame, as
  CMU's is in real SURREAL. zrot is one random angle per clip.
* Joints: the model's 24 SMPL joints. Like the released SURREAL files, most clips store them with
  left and right swapped relative to the part labels; every clip whose index is 1 mod 4 stores
  them in the true convention (``info_extra`` variable ``demo_sides``: "swapped" or "true").
  ``synthgen.sources.surreal.measure_sides`` recovers either from the part map.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from synthgen.core.camera import project, surreal_extrinsics, world_to_camera
from synthgen.demo.appearance import DOMAINS, check_domain, finish_frame, sample_betas, sample_look
from synthgen.demo.body_model import BodyModel, build_body_model, pose_body
from synthgen.core.joints import LEFT_RIGHT_SWAP
from synthgen.demo.motions import MOTION_KINDS, motion_set, sample_motion
from synthgen.demo.render import render_frame, surface_flow
from synthgen.sources.surreal import SURREAL_FPS, write_surreal_clip

#: Longest ground travel of the person over a clip (metres); longer motions are slowed down.
MAX_TRAVEL_M = 2.0
#: Camera's distance to the middle of the person's path (metres): mean and standard deviation of a
#: normal draw, kept within :data:`CAMERA_DISTANCE_SIGMAS` of the mean. SURREAL's (datageneration/
#: main_part1.py): ``camera_distance ~ N(8, 1)``, and the camera is placed at
#: ``(camera_distance, -1, 0) + pelvis - (rest pelvis + (1, -1, -1))``, i.e. about 1 m nearer than
#: that to the pelvis of the clip's first frame, at its height (the authors' 3Dto2D example:
#: 7.6 m). The earlier uniform 5-7 m made the demo people 1.16x as tall in pixels (median over
#: 48 clips: 172 against 148 px of 240) and 1.33x the area (4191 against 3149 px); on 200-example
#: demo builds the occluded fraction went from 49.0 % to 43.5 % with this change.
CAMERA_DISTANCE_M = (7.0, 1.0)
#: Largest distance of the camera-distance draw from its mean, in standard deviations.
CAMERA_DISTANCE_SIGMAS = 2.5
#: Range of the camera's height above the ground (metres).
CAMERA_HEIGHT_M = (0.8, 1.1)
_R_X90 = Rotation.from_euler("x", np.pi / 2).as_matrix()


def make_demo_people(out_dir, *, seed: int = 0, num_clips: int = 24, num_frames: int = 100,
                     indices=None, domain: str = "A", motions: str = "all") -> list[Path]:
    """Render demo people and write them as a SURREAL tree.

    Parameters
    ----------
    out_dir : str or Path
        Receives ``cmu/<split>/run0/<seq>/<seq>_c0001{.mp4,_info.mat,_segm.mat,_depth.mat,
        _gtflow.mat}`` (ground-truth person flow, SURREAL's convention: ``surreal.read_gtflow``).
    seed : int
        Clip k is drawn from ``numpy.random.default_rng([seed, k])`` (domain A; ``[seed, k, d]``
        for the domain's index d > 0): the same seed gives the same files, and clip k does not
        depend on ``num_clips``.
    num_clips : int
        The last clip goes to ``test``, the one before to ``val`` (with 3 or more clips), the rest
        to ``train``. Motions cycle through the kinds of ``motions`` (their first kind; a clip
        may cross-fade into another kind of the same set).
    num_frames : int
        Frames per clip (30 fps, 320x240).
    indices : iterable of int, optional
        Write only these clips of the ``num_clips`` (to split the work between processes).
    domain : str
        Appearance domain (``appearance.DOMAINS``).
    motions : str
        Motion set (a key of ``motions.MOTION_SETS``: ``all``, ``train``, ``heldout``).

    Returns
    -------
    list of Path
        The clips' ``.mp4`` files, in clip order.
    """
    out_dir = Path(out_dir)
    kinds = motion_set(motions)
    stream = [] if check_domain(domain) == "A" else [DOMAINS.index(domain)]
    models = {g: build_body_model(g) for g in ("female", "male")}
    paths = []
    for k in (range(num_clips) if indices is None else indices):
        clip = render_demo_clip(models, np.random.default_rng([seed, k, *stream]), num_frames=num_frames,
                                kind=kinds[(seed + k) % len(kinds)], true_sides=k % 4 == 1,
                                domain=domain, kinds=kinds)
        sequence = f"{k + 1:02d}_{MOTION_KINDS.index(clip['kind']) + 1:02d}"
        directory = out_dir / "cmu" / _split(k, num_clips) / "run0" / sequence
        paths.append(write_surreal_clip(directory, f"{sequence}_c0001", **clip["arrays"],
                                        info_extra=clip["info"]))
    return paths


def _split(k: int, num_clips: int) -> str:
    if k == num_clips - 1 and num_clips >= 2:
        return "test"
    if k == num_clips - 2 and num_clips >= 3:
        return "val"
    return "train"


def camera_distance(rng: np.random.Generator) -> float:
    """One draw of the camera's distance to the middle of the person's path, metres
    (:data:`CAMERA_DISTANCE_M`, :data:`CAMERA_DISTANCE_SIGMAS`); one standard normal of ``rng``."""
    mean, std = CAMERA_DISTANCE_M
    return float(mean + std * np.clip(rng.standard_normal(), -CAMERA_DISTANCE_SIGMAS, CAMERA_DISTANCE_SIGMAS))


def render_demo_clip(models: dict[str, BodyModel], rng: np.random.Generator, *, num_frames: int,
                     kind: str | None = None, true_sides: bool = False, zrot: float | None = None,
                     domain: str = "A", kinds: tuple[str, ...] = MOTION_KINDS) -> dict:
    """Draw and render one demo person clip.

    Parameters
    ----------
    models : dict
        ``{"female": BodyModel, "male": BodyModel}``.
    rng : numpy.random.Generator
        All randomness (gender, betas, motion, zrot, camera, placement, appearance).
    num_frames : int
    kind : str, optional
        Motion kind (``motions.MOTION_KINDS``); drawn when None.
    true_sides : bool
        Store the joints with true sides instead of SURREAL's released (swapped) convention.
    zrot : float, optional
        SURREAL's body rotation about the vertical (radians; pi/2 faces the camera at frame 0).
        Drawn when None, within 60 degrees of facing the camera or facing away from it: in a
        profile view one side's limbs hide the other's and the part map cannot tell the sides.
    domain : str
        Appearance domain (``appearance.DOMAINS``): clothing, light, body shapes, image finish.
    kinds : tuple of str
        Motion kinds to draw from (the kind when None, a transition's second kind).

    Returns
    -------
    dict
        ``"arrays"``: the keyword arguments of ``write_surreal_clip`` (rgb (T, 240, 320, 3) uint8,
        segm (T, 240, 320) uint8, depth (T, 240, 320) float32 with 1e10 background, joints2d
        (T, 24, 2) pixels, joints3d_world (T, 24, 3) world metres, pose (T, 72), betas (10,),
        cam_loc (3,), zrot (T,), gender, gtflow (T, 240, 320, 2) float32: ``person_flow``);
        ``"info"``: extra ``_info.mat`` strings; ``"kind"``.
    """
    gender = ("female", "male")[int(rng.integers(2))]
    model = models[gender]
    betas = sample_betas(domain, rng)
    motion = sample_motion(rng, num_frames, kind=kind, fps=SURREAL_FPS, kinds=kinds)
    if zrot is None:
        zrot = float(rng.choice([-0.5, 0.5]) * np.pi + rng.uniform(-np.pi / 3, np.pi / 3))

    # Motion frame (y up) -> SURREAL's mocap frame (z up) -> world (+y down).
    root = Rotation.from_rotvec(motion.pose[:, :3]).as_matrix()
    pose = motion.pose.copy()
    pose[:, :3] = Rotation.from_matrix(_R_X90 @ root).as_rotvec()
    to_world = _R_X90 @ Rotation.from_euler("z", zrot).as_matrix() @ _R_X90
    posed = pose.copy()
    posed[:, :3] = Rotation.from_matrix(to_world @ root).as_rotvec()
    vertices, joints = pose_body(model, betas, posed)

    travel = motion.translation * [1.0, 0.0, 1.0]
    extent = np.linalg.norm(travel[-1] - travel[0])
    if extent > MAX_TRAVEL_M:
        travel *= MAX_TRAVEL_M / extent
    shift = travel @ to_world.T
    shift -= shift.mean(axis=0)
    shift[:, 2] += rng.uniform(-0.3, 0.3)
    shift[:, 1] = -vertices[:, :, 1].max(axis=1) - motion.translation[:, 1]  # feet on (or above) y = 0
    vertices += shift[:, None]
    joints += shift[:, None]

    cam_loc = np.array([camera_distance(rng), -rng.uniform(*CAMERA_HEIGHT_M), 0.0])
    R, t = surreal_extrinsics(cam_loc)
    look = sample_look(domain, model.v_template, model.faces, model.face_joint, rng)
    appearance = look.appearance
    face_part = (model.face_joint + 1).astype(np.uint8)
    handedness = float(np.sign(np.linalg.det(R)))
    rgb = np.empty((num_frames,) + appearance.background.shape, dtype=np.uint8)
    segm = np.empty(rgb.shape[:3], dtype=np.uint8)
    depth = np.empty(rgb.shape[:3], dtype=np.float32)
    for i, v in enumerate(vertices):
        rgb[i], segm[i], depth[i] = render_frame(world_to_camera(v, R, t), model.faces, face_part, appearance,
                                                 handedness=handedness)
        rgb[i] = finish_frame(look, rgb[i], i)
    gtflow = person_flow(vertices, model.faces, R, t, handedness=handedness,
                         height=rgb.shape[1], width=rgb.shape[2])

    if not true_sides:
        joints = joints[:, LEFT_RIGHT_SWAP]
    joints2d = project(world_to_camera(joints, R, t))
    light = np.zeros((9, num_frames), dtype=np.float32)
    light[:3] = appearance.light_dir[:, None]
    light[3] = appearance.ambient
    info = {
        "bg": _cells(num_frames, "demo:backdrop"),
        "cloth": _cells(num_frames, f"demo:{appearance.cloth}"),
        "light": light,  # rows 0-2: direction to the light (camera frame), row 3: ambient
        "source": "synthgen-demo",
        "demo_motion": motion.kind if motion.params["then"] is None else f"{motion.kind}>{motion.params['then']}",
        "demo_domain": domain,
        "demo_sides": "true" if true_sides else "swapped",
    }
    arrays = dict(rgb=rgb, segm=segm, depth=depth, joints2d=joints2d, joints3d_world=joints, pose=pose,
                  betas=betas, cam_loc=cam_loc, zrot=np.full(num_frames, zrot), gender=gender,
                  gtflow=gtflow)
    return {"arrays": arrays, "info": info, "kind": motion.kind}


def person_flow(vertices_world, faces, R, t, *, handedness, height, width) -> np.ndarray:
    """Ground-truth flow of the person from each frame to the next (``render.surface_flow``).

    Parameters
    ----------
    vertices_world : ndarray, shape (T, V, 3)
        Posed vertices per frame, world metres.
    faces : ndarray, shape (F, 3)
    R, t : ndarray
        World-to-camera extrinsics (``synthgen.core.camera.surreal_extrinsics``).
    handedness : float
        ``sign(det R)``.
    height, width : int

    Returns
    -------
    ndarray, shape (T, H, W, 2), float32
        ``[i]``: frame pixels (x, y) from frame i to frame i+1 at frame i's person pixels, 0 on
        the background; the last frame (no next one) is all 0.
    """
    flow = np.zeros((len(vertices_world), height, width, 2), dtype=np.float32)
    cams = [world_to_camera(v, R, t) for v in vertices_world]
    for i in range(len(cams) - 1):
        flow[i] = surface_flow(cams[i], cams[i + 1], faces, handedness=handedness, height=height,
                               width=width)
    return flow


def _cells(num_frames: int, text: str) -> np.ndarray:
    cells = np.empty((1, num_frames), dtype=object)
    cells[:] = text
    return cells
