"""Demo people: rasteriser, motions, rendered SURREAL clips and their round trip through the reader."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from synthgen.core.camera import project, surreal_extrinsics, world_to_camera
from synthgen.core.smpl import mirror_pose
from synthgen.demo.body_model import build_body_model, pose_body
from synthgen.demo.motions import MOTION_KINDS, make_motion, sample_motion
from synthgen.demo.people import camera_distance, make_demo_people, render_demo_clip
from synthgen.core.errors import CorruptFileError, FrameCountMismatchError
from synthgen.core.joints import LEFT_RIGHT_SWAP, SMPL_INDEX, SURREAL_PART_LABEL
from synthgen.demo.render import BACKGROUND_DEPTH, rasterize, surface_flow
from synthgen.sources.mat import load_mat, save_mat
from synthgen.sources.surreal import GTFLOW_X_SIGN, gtflow_path, measure_sides, read_clip


@pytest.fixture(scope="module")
def models():
    return {g: build_body_model(g) for g in ("female", "male")}


def _quad(x0, x1, y0, y1, z):
    vertices = np.array([[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z]], dtype=float)
    return vertices, np.array([[0, 1, 2], [0, 2, 3]])


# --- rasteriser --------------------------------------------------------------------------------


def test_rasterize_covers_exactly_the_projected_square_with_its_depth():
    vertices, faces = _quad(-0.4, 0.4, -0.2, 0.2, 4.0)  # 600 px/m at 4 m: x 100..220, y 90..150
    face_index, depth = rasterize(vertices, faces)
    covered = face_index >= 0
    ys, xs = np.nonzero(covered)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (100, 220, 90, 150)
    assert covered.sum() == 121 * 61
    assert np.all(depth[covered] == np.float32(4.0))
    assert np.all(depth[~covered] == BACKGROUND_DEPTH)


def test_rasterize_keeps_the_nearest_surface_whatever_the_order():
    far_v, far_f = _quad(-0.4, 0.4, -0.2, 0.2, 4.0)
    near_v, near_f = _quad(-0.1, 0.1, -0.1, 0.1, 2.0)
    for first, second in (((far_v, far_f), (near_v, near_f)), ((near_v, near_f), (far_v, far_f))):
        vertices = np.concatenate([first[0], second[0]])
        faces = np.concatenate([first[1], second[1] + 4])
        _, depth = rasterize(vertices, faces)
        assert depth[120, 160] == np.float32(2.0) and depth[120, 110] == np.float32(4.0)


def test_rasterize_depth_is_perspective_correct_on_a_slanted_plane():
    # Plane z = 4 + 0.5 x (camera metres): along the ray through pixel u, z = 4 / (1 - 0.5 (u - 160) / 600).
    xs = np.array([-1.0, 1.0])
    vertices = np.array([[x, y, 4 + 0.5 * x] for y in (-0.5, 0.5) for x in xs])
    faces = np.array([[0, 1, 3], [0, 3, 2]])
    _, depth = rasterize(vertices, faces)
    for u in (90, 160, 230):
        assert depth[120, u] == pytest.approx(4 / (1 - 0.5 * (u - 160) / 600), rel=1e-6)


# --- motions -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", MOTION_KINDS)
def test_every_motion_kind_gives_finite_seeded_poses(kind):
    a = sample_motion(np.random.default_rng(5), 40, kind=kind)
    b = sample_motion(np.random.default_rng(5), 40, kind=kind)
    c = sample_motion(np.random.default_rng(6), 40, kind=kind)
    assert a.pose.shape == (40, 72) and a.translation.shape == (40, 3)
    assert np.isfinite(a.pose).all() and np.array_equal(a.pose, b.pose)
    assert not np.allclose(a.pose, c.pose)


def test_walk_swings_the_legs_in_antiphase_and_travels_forward():
    walk = make_motion("walk", 90, speed=1.0, amplitude=1.0)
    left = walk.pose[:, 3 * SMPL_INDEX["left_hip"]]  # x component: flexion
    right = walk.pose[:, 3 * SMPL_INDEX["right_hip"]]
    assert np.corrcoef(left, right)[0, 1] < -0.9 and np.ptp(left) > 0.5
    speed = (walk.translation[-1, 2] - walk.translation[0, 2]) / 3.0
    assert 0.8 < speed < 1.6 and np.allclose(walk.translation[:, 0], 0)
    faster = make_motion("walk", 90, speed=1.3, amplitude=1.0)
    assert faster.translation[-1, 2] > walk.translation[-1, 2]


def test_jump_leaves_the_ground_and_squat_bends_the_knees(models):
    jump = make_motion("jump", 90)
    assert jump.translation[:, 1].max() > 0.15 and jump.translation[:, 1].min() == 0
    squat = make_motion("squat", 90)
    knee = np.linalg.norm(squat.pose[:, 3 * SMPL_INDEX["left_knee"]:3 * SMPL_INDEX["left_knee"] + 3], axis=1)
    assert np.ptp(knee) > 1.2
    # Posed, the squatting pelvis comes down towards the feet.
    _, joints = pose_body(models["male"], None, squat.pose)
    pelvis_height = joints[:, SMPL_INDEX["pelvis"], 1] - joints[:, SMPL_INDEX["left_ankle"], 1]
    assert pelvis_height.max() - pelvis_height.min() > 0.3


def test_turn_rotates_the_body_about_the_vertical():
    turn = make_motion("turn", 60, side=1)
    heading = Rotation.from_rotvec(turn.pose[:, :3]).apply([0.0, 0.0, 1.0])
    assert np.allclose(heading[:, 1], 0, atol=1e-9)
    angle = np.unwrap(np.arctan2(heading[:, 0], heading[:, 2]))
    assert angle[-1] - angle[0] > np.pi / 2


def test_unknown_motion_kind_is_rejected():
    with pytest.raises(ValueError, match="unknown motion kind 'moonwalk'"):
        make_motion("moonwalk", 10)


def test_surface_flow_of_a_translated_square_is_the_projected_translation():
    vertices, faces = _quad(-0.4, 0.4, -0.2, 0.2, 4.0)   # 600 px/m at 4 m
    faces = faces[:, ::-1]                               # wound to face the camera
    flow = surface_flow(vertices, vertices + [0.04, -0.08, 0.0], faces)  # 150 px/m
    covered = rasterize(vertices, faces)[0] >= 0
    np.testing.assert_allclose(flow[covered], np.broadcast_to([6.0, -12.0], flow[covered].shape),
                               atol=1e-4)
    assert np.all(flow[~covered] == 0)


def test_surface_flow_follows_perspective_on_a_receding_plane():
    vertices, faces = _quad(-0.4, 0.4, -0.2, 0.2, 4.0)
    faces = faces[:, ::-1]                               # wound to face the camera
    flow = surface_flow(vertices, vertices * [1, 1, 2.0], faces)  # twice as far: halves offsets
    ys, xs = np.nonzero(rasterize(vertices, faces)[0] >= 0)
    centre = np.array([160.0, 120.0])                    # SURREAL_K principal point
    expected = (centre - np.stack([xs, ys], axis=1)) / 2
    np.testing.assert_allclose(flow[ys, xs], expected, atol=1e-3)


# --- rendered clips ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def facing_clip(models):
    """An idle person facing the camera, joints in the true convention."""
    return render_demo_clip(models, np.random.default_rng(11), num_frames=4, kind="idle", true_sides=True,
                            zrot=np.pi / 2)


def test_clip_arrays_have_surreal_shapes_and_consistent_projection(facing_clip):
    a = facing_clip["arrays"]
    assert a["rgb"].shape == (4, 240, 320, 3) and a["rgb"].dtype == np.uint8
    assert a["segm"].shape == (4, 240, 320) and a["segm"].dtype == np.uint8 and a["segm"].max() <= 24
    assert a["depth"].dtype == np.float32 and np.all(a["depth"][a["segm"] == 0] == BACKGROUND_DEPTH)
    R, t = surreal_extrinsics(a["cam_loc"])
    joints_cam = world_to_camera(a["joints3d_world"], R, t)
    np.testing.assert_allclose(project(joints_cam), a["joints2d"], atol=1e-9)
    assert (4.0 < joints_cam[..., 0, 2]).all() and (joints_cam[..., 0, 2] < 8.0).all()
    assert (a["segm"] > 0).sum(axis=(1, 2)).min() > 1000  # the person is in view
    # Feet on the ground (world +y down, ground y = 0): the ankles are a few cm above it.
    ankles = a["joints3d_world"][:, [SMPL_INDEX["left_ankle"], SMPL_INDEX["right_ankle"]], 1]
    assert (ankles < -0.02).all() and (ankles > -0.2).all()


def test_rendered_depth_at_joints_is_the_body_surface_in_front_of_them(facing_clip):
    a = facing_clip["arrays"]
    R, t = surreal_extrinsics(a["cam_loc"])
    z = world_to_camera(a["joints3d_world"], R, t)[..., 2]
    x, y = np.rint(a["joints2d"]).astype(int).transpose(2, 0, 1)
    frames = np.arange(len(z))[:, None]
    surface = a["depth"][frames, y, x]
    gap = z - surface  # joints lie inside the body: the visible surface is in front of them
    assert (gap > -0.005).all()
    assert (gap < 0.25).mean() > 0.8


def test_left_wrist_falls_on_left_hand_parts_when_facing_the_camera(facing_clip):
    a = facing_clip["arrays"]
    left = {SURREAL_PART_LABEL["leftHand"], SURREAL_PART_LABEL["leftForeArm"]}
    right = {SURREAL_PART_LABEL["rightHand"], SURREAL_PART_LABEL["rightForeArm"]}
    for joints2d, own, twin in ((a["joints2d"], left, right), (a["joints2d"][:, LEFT_RIGHT_SWAP], right, left)):
        x, y = np.rint(joints2d[:, SMPL_INDEX["left_wrist"]]).astype(int).T
        patch = np.concatenate([a["segm"][i, y[i] - 2:y[i] + 3, x[i] - 2:x[i] + 3].ravel() for i in range(len(x))])
        assert np.isin(patch, list(own)).sum() > 3 * np.isin(patch, list(twin)).sum()
    # SURREAL's camera is a reflection: facing it, the person's left hand is on the image's left.
    assert (a["joints2d"][:, SMPL_INDEX["left_wrist"], 0] < a["joints2d"][:, SMPL_INDEX["pelvis"], 0]).all()


def test_global_orientation_follows_surreal_relation(facing_clip, models):
    a = facing_clip["arrays"]
    pose = a["pose"].copy()
    rx90 = Rotation.from_euler("x", np.pi / 2)
    zrot = Rotation.from_euler("z", a["zrot"][:, None])
    pose[:, :3] = (rx90 * zrot * Rotation.from_rotvec(a["pose"][:, :3])).as_rotvec()
    _, joints = pose_body(models[a["gender"]], a["betas"], pose)
    offset = a["joints3d_world"] - joints  # the same body up to one translation per frame
    np.testing.assert_allclose(offset, np.broadcast_to(offset[:, :1], offset.shape), atol=1e-9)


def test_released_convention_swaps_joints_and_the_reader_measures_both(models):
    rng_seed = 7
    swapped = render_demo_clip(models, np.random.default_rng(rng_seed), num_frames=6, kind="walk")
    true = render_demo_clip(models, np.random.default_rng(rng_seed), num_frames=6, kind="walk", true_sides=True)
    np.testing.assert_array_equal(swapped["arrays"]["joints3d_world"],
                                  true["arrays"]["joints3d_world"][:, LEFT_RIGHT_SWAP])
    assert measure_sides(swapped["arrays"]["segm"], swapped["arrays"]["joints2d"]).swapped
    measured = measure_sides(true["arrays"]["segm"], true["arrays"]["joints2d"])
    assert measured.decided and not measured.swapped


def test_same_seed_gives_identical_clips(models):
    a = render_demo_clip(models, np.random.default_rng(3), num_frames=3)
    b = render_demo_clip(models, np.random.default_rng(3), num_frames=3)
    c = render_demo_clip(models, np.random.default_rng(4), num_frames=3)
    for key, value in a["arrays"].items():
        assert np.array_equal(value, b["arrays"][key]), key
    assert not np.array_equal(a["arrays"]["rgb"], c["arrays"]["rgb"])


@pytest.mark.slow
def test_demo_people_round_trip_through_the_surreal_reader(tmp_path, models, smpl_dir):
    paths = make_demo_people(tmp_path, seed=2, num_clips=3, num_frames=5)
    assert [p.relative_to(tmp_path).parts[:3] for p in paths] == [
        ("cmu", "train", "run0"), ("cmu", "val", "run0"), ("cmu", "test", "run0")]
    for k, path in enumerate(paths):
        info = load_mat(path.with_name(path.stem + "_info.mat"), ["demo_motion", "demo_sides"])
        sides = str(np.asarray(info["demo_sides"]).ravel()[0])
        assert sides == ("true" if k == 1 else "swapped")
        expected = render_demo_clip(models, np.random.default_rng([2, k]), num_frames=5,
                                    kind=MOTION_KINDS[(2 + k) % len(MOTION_KINDS)], true_sides=k == 1)["arrays"]
        raw = read_clip(path, smpl_dir=smpl_dir, sides="as_is")
        np.testing.assert_array_equal(raw.gtflow, expected["gtflow"])
        np.testing.assert_array_equal(raw.segm, expected["segm"])
        np.testing.assert_array_equal(raw.depth, expected["depth"])
        np.testing.assert_array_equal(  # the mirror exchanges sides (synthgen.sources.surreal)
            raw.joints2d, np.rint(expected["joints2d"]).astype(np.float32)[:, LEFT_RIGHT_SWAP])
        np.testing.assert_allclose(raw.pose[:, 3:], mirror_pose(expected["pose"])[:, 3:], atol=1e-6)
        assert raw.gender == expected["gender"]
        # Lossy mp4 with 4:2:0 chroma: compare 5x5 means (fine clothing stripes do not survive).
        body = raw.segm > 0
        decoded, rendered = (np.stack([cv2.blur(f, (5, 5)) for f in video]).astype(int)
                             for video in (raw.rgb, expected["rgb"]))
        assert np.abs(decoded[body] - rendered[body]).mean() < 12
        measured = read_clip(path, smpl_dir=smpl_dir)  # sides="measure"
        assert measured.sides_swapped == (sides == "swapped")


def test_ground_truth_flow_carries_parts_to_the_next_frame(models):
    # Seed 0 draws a fast run (the demo's speed warps make some runs slow): parts move ~9 px.
    clip = render_demo_clip(models, np.random.default_rng(0), num_frames=3, kind="run")["arrays"]
    segm, flow = clip["segm"], clip["gtflow"]
    assert flow.shape == (3, 240, 320, 2) and flow.dtype == np.float32
    assert np.all(flow[-1] == 0) and np.all(flow[0][segm[0] == 0] == 0)
    rows, cols = np.nonzero(segm[0])
    moved = np.rint([cols + flow[0, rows, cols, 0], rows + flow[0, rows, cols, 1]]).astype(int)
    same = segm[1][moved[1].clip(0, 239), moved[0].clip(0, 319)] == segm[0][rows, cols]
    still = segm[1][rows, cols] == segm[0][rows, cols]
    assert same.mean() > 0.85 and still.mean() < 0.6


def test_gtflow_file_stores_x_with_surreals_sign(tmp_path, smpl_dir):
    path = make_demo_people(tmp_path, seed=0, num_clips=1, num_frames=3)[0]
    stored = load_mat(gtflow_path(path), ["gtflow_1"])["gtflow_1"]
    read = read_clip(path, start=0, length=1, smpl_dir=smpl_dir).gtflow[0]
    np.testing.assert_array_equal(stored[..., 0] * GTFLOW_X_SIGN, read[..., 0])
    np.testing.assert_array_equal(stored[..., 1], read[..., 1])
    gtflow_path(path).unlink()
    assert read_clip(path, smpl_dir=smpl_dir).gtflow is None


def test_bad_gtflow_files_are_named_with_the_reason(tmp_path, smpl_dir):
    path = make_demo_people(tmp_path, seed=0, num_clips=1, num_frames=3)[0]
    frame = np.zeros((240, 320, 2), dtype=np.float32)
    save_mat(gtflow_path(path), {"gtflow_1": frame, "gtflow_2": frame})
    with pytest.raises(FrameCountMismatchError, match="2 gtflow frames, the clip has 3"):
        read_clip(path, smpl_dir=smpl_dir)
    broken = frame.copy()
    broken[5, 5, 0] = np.nan
    save_mat(gtflow_path(path), {"gtflow_1": frame, "gtflow_2": broken, "gtflow_3": frame})
    with pytest.raises(CorruptFileError, match="gtflow_2 holds non-finite values"):
        read_clip(path, smpl_dir=smpl_dir)


def test_camera_distance_is_surreals():
    """SURREAL: camera_distance ~ N(8, 1) m, placed about 1 m nearer than that to the person."""
    rng = np.random.default_rng(0)
    draws = np.array([camera_distance(rng) for _ in range(4000)])
    assert abs(draws.mean() - 7.0) < 0.05 and 0.93 < draws.std() < 1.03
    assert draws.min() >= 4.5 and draws.max() <= 9.5
