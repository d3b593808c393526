"""SURREAL reader/writer on small clips of a synthetic stick person written in the real format."""

from __future__ import annotations

import shutil

import cv2
import h5py
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from synthgen.core.camera import SURREAL_K, SURREAL_R, project, surreal_extrinsics, world_to_camera
from synthgen.core.smpl import mirror_pose
from synthgen.core.errors import (
    CorruptFileError,
    EmptyInputError,
    FrameCountMismatchError,
    InconsistentDataError,
    MissingFileError,
    MissingKeyError,
    OversizeError,
    ShortClipError,
)
from synthgen.core.joints import JOINT_PART_LABEL, LEFT_RIGHT_SWAP, SMPL_INDEX, SMPL_PARENTS
from synthgen.sources.mat import MAT_FORMATS, load_mat, save_mat, to_str, to_str_list
from synthgen.sources import surreal
from synthgen.sources import video as video_module
from synthgen.sources.surreal import ClipInfo, find_clips, measure_sides, read_clip, write_surreal_clip
from tests.core.smpl_check import rigid_fit, smplx_joints

H, W, T = 240, 320, 8
CAM_LOC = np.array([6.0, -0.8, 0.3])

#: A person facing the camera (its left on the image's right), frame pixels (x, y).
_SKELETON = {
    "pelvis": (160, 130), "left_hip": (172, 135), "right_hip": (148, 135), "spine1": (160, 115),
    "left_knee": (178, 170), "right_knee": (142, 170), "spine2": (160, 100), "left_ankle": (182, 205),
    "right_ankle": (138, 205), "spine3": (160, 90), "left_foot": (188, 213), "right_foot": (132, 213),
    "neck": (160, 70), "left_collar": (168, 75), "right_collar": (152, 75), "head": (160, 55),
    "left_shoulder": (180, 78), "right_shoulder": (140, 78), "left_elbow": (202, 95),
    "right_elbow": (118, 95), "left_wrist": (218, 112), "right_wrist": (102, 112),
    "left_hand": (224, 120), "right_hand": (96, 120),
}


def _person(num_frames=T):
    """Ground truth of a moving stick person whose part map, joints and depth agree.

    Returns a dict of write_surreal_clip's keyword arguments (true sides) plus ``joints2d_exact``
    (unrounded projection) and ``joints3d_cam``.
    """
    base = np.array([_SKELETON[name] for name in sorted(_SKELETON, key=SMPL_INDEX.get)], dtype=np.float64)
    left_arm = [SMPL_INDEX[n] for n in ("left_elbow", "left_wrist", "left_hand")]
    right_arm = [SMPL_INDEX[n] for n in ("right_elbow", "right_wrist", "right_hand")]
    rgb = np.zeros((num_frames, H, W, 3), np.uint8)
    segm = np.zeros((num_frames, H, W), np.uint8)
    depth = np.zeros((num_frames, H, W), np.float32)
    joints2d = np.zeros((num_frames, 24, 2))
    joints3d_cam = np.zeros((num_frames, 24, 3))
    palette = np.random.default_rng(1).integers(40, 255, (25, 3)).astype(np.uint8)
    for t in range(num_frames):
        xy = base + [3.0 * t + 0.3, 1.0 * t - 0.4]
        xy[left_arm, 1] += 2.0 * t
        xy[right_arm, 1] -= 2.0 * t
        joints2d[t] = xy
        children = set(SMPL_PARENTS[1:])
        for joint in range(1, 24):
            parent = SMPL_PARENTS[joint]
            pt = lambda j: (int(round(xy[j, 0])), int(round(xy[j, 1])))  # noqa: E731
            cv2.line(segm[t], pt(parent), pt(joint), int(JOINT_PART_LABEL[parent]), thickness=7)
            if joint not in children:
                cv2.circle(segm[t], pt(joint), 4, int(JOINT_PART_LABEL[joint]), thickness=-1)
        z = 5.0 + 0.02 * t + 0.01 * np.arange(24)
        joints3d_cam[t] = np.c_[(xy - SURREAL_K[:2, 2]) / SURREAL_K[[0, 1], [0, 1]] * z[:, None], z]
        depth[t] = np.where(segm[t] > 0, 5.0 + 0.02 * t + 0.001 * segm[t], 0.0)
        rgb[t] = np.where(segm[t, ..., None] > 0, palette[segm[t]], np.uint8((20 + 25 * t) % 256))
    joints3d_world = joints3d_cam @ SURREAL_R + CAM_LOC  # R is symmetric and orthogonal
    rng = np.random.default_rng(2)
    return dict(
        rgb=rgb, segm=segm, depth=depth, joints2d=joints2d, joints3d_world=joints3d_world,
        pose=rng.normal(0, 0.2, (num_frames, 72)), betas=rng.normal(0, 1, 10), cam_loc=CAM_LOC,
        zrot=np.linspace(0.1, 0.5, num_frames), gender="male", joints3d_cam=joints3d_cam,
    )


def _write(directory, name, truth, *, swapped=False, mat_format="v5"):
    kwargs = {k: v for k, v in truth.items() if k != "joints3d_cam"}
    if swapped:  # released-style files: joint sides opposite to the part map
        kwargs["joints2d"] = truth["joints2d"][:, LEFT_RIGHT_SWAP]
        kwargs["joints3d_world"] = truth["joints3d_world"][:, LEFT_RIGHT_SWAP]
    return write_surreal_clip(directory, name, mat_format=mat_format, **kwargs)


def _copy_clip(mp4, directory, name=None):
    directory.mkdir(parents=True, exist_ok=True)
    name = name or mp4.stem
    for suffix in (".mp4", "_info.mat", "_segm.mat", "_depth.mat"):
        shutil.copy(mp4.with_name(mp4.stem + suffix), directory / (name + suffix))
    return directory / f"{name}.mp4"


@pytest.fixture(scope="module")
def truth():
    return _person()


@pytest.fixture(scope="module")
def clips(tmp_path_factory, truth):
    directory = tmp_path_factory.mktemp("surreal")
    return {
        "v5": _write(directory / "v5", "01_01_c0001", truth),
        "v7.3": _write(directory / "v73", "01_01_c0001", truth, mat_format="v7.3"),
        "swapped": _write(directory / "swapped", "01_01_c0002", truth, swapped=True),
    }


@pytest.mark.parametrize("fmt", MAT_FORMATS)
def test_round_trip(clips, truth, fmt, smpl_dir):
    clip = read_clip(clips[fmt], smpl_dir=smpl_dir, sides="as_is")
    assert clip.num_frames == T and clip.start == 0 and clip.path == str(clips[fmt])
    assert clip.rgb.shape == (T, H, W, 3) and clip.rgb.dtype == np.uint8
    assert np.abs(clip.rgb.astype(int) - truth["rgb"]).mean() < 4  # mp4v is lossy
    np.testing.assert_array_equal(clip.segm, truth["segm"])
    assert clip.depth.dtype == np.float32
    np.testing.assert_array_equal(clip.depth[truth["segm"] > 0], truth["depth"][truth["segm"] > 0])
    assert (clip.depth[truth["segm"] == 0] == 1e10).all()
    assert clip.joints2d.shape == (T, 24, 2) and clip.joints2d.dtype == np.float32
    # SURREAL's camera mirrors: the seen body's left is the part map's right.
    np.testing.assert_array_equal(clip.joints2d, np.rint(truth["joints2d"])[:, LEFT_RIGHT_SWAP])
    # joints3d: SMPL joints of the stored pose, pelvis at the released pelvis in camera metres.
    assert clip.joints3d.shape == (T, 24, 3) and clip.joints3d.dtype == np.float32
    np.testing.assert_allclose(clip.joints3d[:, 0], truth["joints3d_cam"][:, 0], atol=1e-5)
    np.testing.assert_allclose(clip.pose[:, 3:], mirror_pose(truth["pose"])[:, 3:], atol=1e-6)
    np.testing.assert_allclose(clip.betas, truth["betas"], atol=1e-6)
    np.testing.assert_allclose(clip.zrot, truth["zrot"], atol=1e-6)
    assert clip.gender == "male" and not clip.sides_swapped
    np.testing.assert_array_equal(clip.K, SURREAL_K)
    np.testing.assert_array_equal(clip.cam_loc, CAM_LOC)


def test_info_file_has_every_surreal_key(clips):
    for fmt in MAT_FORMATS:
        info = load_mat(clips[fmt].with_name("01_01_c0001_info.mat"))
        shapes = {k: v.shape for k, v in info.items()}
        assert shapes == {
            "sequence": (1,), "clipNo": (1, 1), "source": (1,), "bg": (1, T), "cloth": (1, T),
            "light": (9, T), "stride": (1, 1), "camDist": (1, 1), "camLoc": (3, 1), "zrot": (T, 1),
            "gender": (T, 1), "shape": (10, T), "pose": (72, T), "joints2D": (2, 24, T), "joints3D": (3, 24, T),
        }, fmt
        assert info["joints2D"].dtype == info["joints3D"].dtype == np.float32
        assert info["gender"].dtype == np.uint8 and (info["gender"] == 1).all()
        assert to_str(info["sequence"]) == "01_01" and int(info["clipNo"][0, 0]) == 1
        assert to_str(info["source"]) == "cmu" and to_str_list(info["bg"]) == [""] * T
        # joints3D stays in world metres; the camera extrinsics reproduce joints2D.
        R, t = surreal_extrinsics(info["camLoc"])
        cam = world_to_camera(info["joints3D"].transpose(2, 1, 0), R, t)
        assert np.abs(project(cam) - info["joints2D"].transpose(2, 1, 0)).max() <= 0.71


def test_v5_and_v73_identical(clips, smpl_dir):
    a, b = read_clip(clips["v5"], smpl_dir=smpl_dir), read_clip(clips["v7.3"], smpl_dir=smpl_dir)
    for field in ("segm", "depth", "joints2d", "joints3d", "pose", "betas", "zrot", "cam_loc", "K"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)
    assert a.gender == b.gender and a.sides_swapped == b.sides_swapped
    assert np.abs(a.rgb.astype(int) - b.rgb).max() <= 2


@pytest.mark.parametrize("fmt", MAT_FORMATS)
def test_window(clips, fmt, smpl_dir):
    full = read_clip(clips[fmt], smpl_dir=smpl_dir)
    part = read_clip(clips[fmt], smpl_dir=smpl_dir, start=3, length=4)
    assert part.start == 3 and part.num_frames == 4
    for field in ("rgb", "segm", "depth", "joints2d", "joints3d", "pose", "zrot"):
        np.testing.assert_array_equal(getattr(part, field), getattr(full, field)[3:7], err_msg=field)
    # the background grey level tells which frame was decoded
    np.testing.assert_allclose(part.rgb[:, :20, :20].mean(axis=(1, 2, 3)), 20 + 25 * np.arange(3, 7), atol=8)
    tail = read_clip(clips[fmt], smpl_dir=smpl_dir, start=5)
    assert tail.num_frames == 3
    np.testing.assert_array_equal(tail.segm, full.segm[5:])


def test_unverifiable_seek_falls_back_to_decoding(clips, monkeypatch, smpl_dir):
    """When the capture cannot confirm a seek, frames are counted and skipped by decoding."""
    expected = read_clip(clips["v5"], smpl_dir=smpl_dir, start=3, length=4)
    monkeypatch.setattr(video_module, "_seek", lambda cap, index, fps: -1)
    clip = read_clip(clips["v5"], smpl_dir=smpl_dir, start=3, length=4)
    for field in ("rgb", "segm", "joints2d"):
        np.testing.assert_array_equal(getattr(clip, field), getattr(expected, field), err_msg=field)


def test_seek_is_frame_accurate_on_real_h264(shared_data):
    """Seeking a real H.264 video (long GOP) gives the frames that sequential decoding gives."""
    path = shared_data / "videos" / "kinetics400_armwrestling.mp4"
    cap = cv2.VideoCapture(str(path))
    frames = [cap.read()[1] for _ in range(153)]
    cap.release()
    height, width = frames[0].shape[:2]
    window = surreal._read_video_window(video_module.probe(path), 150, 3, (height, width))
    for i in range(3):
        np.testing.assert_array_equal(window[i], cv2.cvtColor(frames[150 + i], cv2.COLOR_BGR2RGB))


def test_one_frame_clip_with_squeezed_shapes(tmp_path, smpl_dir):
    truth = _person(1)
    mp4 = _write(tmp_path, "07_02_c0003", truth)
    info = load_mat(mp4.with_name("07_02_c0003_info.mat"))
    assert info["joints2D"].shape == (2, 24) and info["joints3D"].shape == (3, 24)  # MATLAB-squeezed
    clip = read_clip(mp4, smpl_dir=smpl_dir)
    assert clip.num_frames == 1 and clip.joints2d.shape == (1, 24, 2) and clip.pose.shape == (1, 72)
    np.testing.assert_allclose(clip.joints3d[:, 0], truth["joints3d_cam"][:, 0], atol=1e-5)
    np.testing.assert_allclose(clip.betas, truth["betas"], atol=1e-6)


def test_measure_sides(truth):
    straight = measure_sides(truth["segm"], truth["joints2d"])
    assert not straight.swapped and straight.decided and straight.confidence > 0.9
    swapped = measure_sides(truth["segm"], truth["joints2d"][:, LEFT_RIGHT_SWAP])
    assert swapped.swapped and swapped.confidence > 0.9
    off_body = measure_sides(truth["segm"], np.full((T, 24, 2), 5.0))
    assert off_body == (False, 0.0) and not off_body.decided
    one_vote = measure_sides(truth["segm"][:1], truth["joints2d"][:1], min_votes=100)
    assert not one_vote.decided and not one_vote.swapped


def test_swapped_clip_is_measured_and_fixed(clips, truth, smpl_dir):
    clip = read_clip(clips["swapped"], smpl_dir=smpl_dir)
    assert clip.sides_swapped
    straight = read_clip(clips["v5"], smpl_dir=smpl_dir)
    assert not straight.sides_swapped
    for field in ("joints2d", "joints3d", "pose"):  # the released side convention is undone
        np.testing.assert_array_equal(getattr(clip, field), getattr(straight, field), err_msg=field)
    np.testing.assert_array_equal(clip.joints2d, np.rint(truth["joints2d"])[:, LEFT_RIGHT_SWAP])


def test_sides_override(clips, truth, smpl_dir):
    as_is = read_clip(clips["swapped"], smpl_dir=smpl_dir, sides="as_is")
    assert not as_is.sides_swapped
    np.testing.assert_array_equal(as_is.joints2d, np.rint(truth["joints2d"]))
    forced = read_clip(clips["v5"], smpl_dir=smpl_dir, sides="swap")
    assert forced.sides_swapped
    np.testing.assert_array_equal(forced.joints2d, np.rint(truth["joints2d"]))
    with pytest.raises(ValueError, match="sides"):
        read_clip(clips["v5"], smpl_dir=smpl_dir, sides="left")


def test_joints3d_are_the_smpl_joints_of_the_body_the_image_shows(small_demo):
    """On the demo's SURREAL-format clips (rendered from SMPL-format models through SURREAL's
    reflecting camera): joints3d are smplx's joints of the returned pose, betas and gender
    (within 1 mm, up to one translation per frame), a proper rotation of the unrotated body, and
    they project onto the released (rounded) joints2D within rounding."""
    clips, _ = find_clips(small_demo.surreal_dir)
    errors = []
    for info in clips:
        clip = read_clip(info.path, smpl_dir=small_demo.smpl_dir)
        body = smplx_joints(small_demo.smpl_dir, clip.pose, clip.betas, clip.gender)
        offset = clip.joints3d - body
        assert np.linalg.norm(offset - offset[:, :1], axis=-1).max() < 1e-3
        unrotated = smplx_joints(small_demo.smpl_dir, np.c_[np.zeros((clip.num_frames, 3)),
                                                            clip.pose[:, 3:]], clip.betas, clip.gender)
        orientation = Rotation.from_rotvec(clip.pose[:, :3]).as_matrix()
        for t in range(clip.num_frames):
            rotation, residual = rigid_fit(unrotated[t], clip.joints3d[t])
            assert np.linalg.det(rotation) > 0 and residual < 1e-3
            np.testing.assert_allclose(rotation, orientation[t], atol=1e-4)
        errors.append(np.linalg.norm(project(clip.joints3d) - clip.joints2d, axis=-1))
    errors = np.concatenate(errors, axis=None)
    assert errors.max() <= np.sqrt(0.5) + 1e-3  # joints2D are rounded to whole pixels
    assert np.median(errors) < 0.45
    # Without the side exchange the labels would sit on the other limbs, tens of pixels away.
    swapped = np.linalg.norm(project(clip.joints3d[:, LEFT_RIGHT_SWAP]) - clip.joints2d, axis=-1)
    assert swapped.max() > 10


def test_find_clips(tmp_path, clips):
    root = tmp_path / "cmu"
    src = clips["v5"]
    _copy_clip(src, root / "train" / "run0" / "01_01", "01_01_c0001")
    _copy_clip(src, root / "train" / "run1" / "01_01", "01_01_c0002")
    _copy_clip(src, root / "val" / "run0" / "02_03", "02_03_c0001")
    _copy_clip(src, root / "test" / "run2" / "05_01", "05_01_c0004")
    _copy_clip(src, root / "elsewhere" / "a" / "b", "09_09_c0007")
    broken = _copy_clip(src, root / "train" / "run0" / "03_01", "03_01_c0001")
    broken.with_name("03_01_c0001_segm.mat").unlink()
    (root / "train" / "run0" / "01_01" / "notes.mp4").write_bytes(b"not a clip")

    found, skipped = find_clips(root)
    assert [c.path.name for c in found] == [
        "09_09_c0007.mp4", "05_01_c0004.mp4", "01_01_c0001.mp4", "01_01_c0002.mp4", "02_03_c0001.mp4",
    ]
    assert [c.split for c in found] == [None, "test", "train", "train", "val"]
    assert found[2] == ClipInfo(root / "train" / "run0" / "01_01" / "01_01_c0001.mp4", "train", "01_01", 1)
    assert found[1].sequence == "05_01" and found[1].clip_number == 4
    assert found[2].segm_path.name == "01_01_c0001_segm.mat" and found[2].segm_path.is_file()
    assert len(skipped) == 1 and skipped[0].file == str(broken)
    assert skipped[0].reason == "missing_file" and skipped[0].detail.startswith("03_01_c0001_segm.mat")

    train, skipped = find_clips(root, splits=["train"], count_frames=True)
    assert [c.path.name for c in train] == ["01_01_c0001.mp4", "01_01_c0002.mp4"]
    assert all(c.num_frames == T for c in train) and len(skipped) == 1
    assert [c.split for c in find_clips(root, splits=("val", "test"))[0]] == ["test", "val"]
    # any nesting: a directory below the tree
    assert [c.path.name for c in find_clips(root / "elsewhere")[0]] == ["09_09_c0007.mp4"]
    with pytest.raises(ValueError, match="splits"):
        find_clips(root, splits=["training"])
    with pytest.raises(MissingFileError, match="missing_file"):
        find_clips(tmp_path / "absent")


# ---- bad input: each case breaks one file of a copy of a good clip --------------------------------


def _rewrite_info(mp4, change):
    path = mp4.with_name(mp4.stem + "_info.mat")
    info = load_mat(path)
    change(info)
    save_mat(path, info)


def _drop(key):
    return lambda info: info.pop(key)


def _shift_joints2d(info):
    info["joints2D"] = info["joints2D"] + np.float32(3.0)


def _short_pose(info):
    info["pose"] = info["pose"][:, :-1]


def _seven_frame_video(mp4):
    truth = _person(T - 1)
    other = _write(mp4.parent / "other", mp4.stem, truth)
    shutil.copy(other, mp4)


def _seven_segm(mp4):
    path = mp4.with_name(mp4.stem + "_segm.mat")
    data = load_mat(path)
    save_mat(path, {k: v for k, v in data.items() if k != f"segm_{T}"})


def _segm_gap(mp4):
    path = mp4.with_name(mp4.stem + "_segm.mat")
    data = load_mat(path)
    save_mat(path, {k: v for k, v in data.items() if k != "segm_4"})


def _truncate(suffix, fraction=0.5):
    def change(mp4):
        path = mp4.with_name(mp4.stem + suffix)
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * fraction)])
    return change


def _empty(suffix):
    return lambda mp4: mp4.with_name(mp4.stem + suffix).write_bytes(b"")


def _remove(suffix):
    return lambda mp4: mp4.with_name(mp4.stem + suffix).unlink()


def _garbage_mp4(mp4):
    mp4.write_bytes(np.random.default_rng(3).integers(0, 256, 5000, dtype=np.uint8).tobytes())


def _huge_segm(mp4):
    """A tiny ``_segm.mat`` (HDF5) whose every frame declares 100000x100000 (10 GB of uint8)."""
    with h5py.File(mp4.with_name(mp4.stem + "_segm.mat"), "w") as f:
        for k in range(1, T + 1):
            frame = f.create_dataset(f"segm_{k}", shape=(100000, 100000), dtype=np.uint8, chunks=(100, 100))
            frame.attrs["MATLAB_class"] = np.bytes_("uint8")


def _small_video(mp4):
    writer = cv2.VideoWriter(str(mp4), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (160, 120))
    for t in range(T):
        writer.write(np.full((120, 160, 3), 20 * t, np.uint8))
    writer.release()


BAD_CASES = {
    "missing depth": (_remove("_depth.mat"), MissingFileError, r"_depth\.mat: missing_file"),
    "missing mp4": (_remove(".mp4"), MissingFileError, r"c0001\.mp4: missing_file"),
    "empty segm": (_empty("_segm.mat"), EmptyInputError, r"_segm\.mat: empty"),
    "empty mp4": (_empty(".mp4"), EmptyInputError, r"c0001\.mp4: empty"),
    "truncated info": (_truncate("_info.mat"), CorruptFileError, r"_info\.mat: corrupt"),
    "truncated depth": (_truncate("_depth.mat", 0.9), CorruptFileError, r"_depth\.mat: corrupt: truncated"),
    "corrupt mp4": (_garbage_mp4, CorruptFileError, r"c0001\.mp4: corrupt"),
    "missing key": (lambda m: _rewrite_info(m, _drop("camLoc")), MissingKeyError,
                    r"_info\.mat: missing_key: .*camLoc"),
    "segm gap": (_segm_gap, MissingKeyError, r"_segm\.mat: missing_key: segm_4 is missing"),
    "mp4 vs mat frames": (_seven_frame_video, FrameCountMismatchError,
                          r"c0001\.mp4: frame_count_mismatch: .*c0001\.mp4 7, .*_info\.mat 8"),
    "segm vs info frames": (_seven_segm, FrameCountMismatchError,
                            r"frame_count_mismatch: .*_info\.mat 8, .*_segm\.mat 7, .*_depth\.mat 8"),
    "info variables": (lambda m: _rewrite_info(m, _short_pose), FrameCountMismatchError,
                       r"_info\.mat: frame_count_mismatch: .*joints2D 8, .*pose 7"),
    "huge segm": (_huge_segm, OversizeError, r"_segm\.mat: too_large: declares 10 GB for segm_1 "
                                             r"\(100000x100000 uint8\); expected \(240, 320\)"),
    "video size": (_small_video, InconsistentDataError, r"c0001\.mp4: inconsistent: video frames are 160x120"),
    "joints2D off": (lambda m: _rewrite_info(m, _shift_joints2d), InconsistentDataError,
                     r"_info\.mat: inconsistent: joints2D is [34]\.\d+ px from the projection"),
}


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_bad_input(tmp_path, clips, case, smpl_dir):
    change, error, message = BAD_CASES[case]
    mp4 = _copy_clip(clips["v5"], tmp_path / "clip")
    change(mp4)
    with pytest.raises(error, match=message):
        read_clip(mp4, smpl_dir=smpl_dir)


@pytest.mark.parametrize("window", [dict(start=6, length=3), dict(start=T), dict(start=0, length=T + 1)])
def test_window_beyond_the_end(clips, window, smpl_dir):
    with pytest.raises(ShortClipError, match=rf"c0001\.mp4: too_short: .*clip's {T} frames"):
        read_clip(clips["v5"], smpl_dir=smpl_dir, **window)


def test_truncated_v73(tmp_path, clips, smpl_dir):
    mp4 = _copy_clip(clips["v7.3"], tmp_path / "clip")
    _truncate("_info.mat")(mp4)
    with pytest.raises(CorruptFileError, match=r"_info\.mat: corrupt"):
        read_clip(mp4, smpl_dir=smpl_dir)


def test_writer_rejects_bad_arguments(tmp_path, truth):
    kwargs = {k: v for k, v in truth.items() if k != "joints3d_cam"}
    with pytest.raises(ValueError, match="name"):
        write_surreal_clip(tmp_path, "clip", **kwargs)
    with pytest.raises(ValueError, match="pose"):
        write_surreal_clip(tmp_path, "01_01_c0001", **{**kwargs, "pose": kwargs["pose"][:-1]})
    with pytest.raises(ValueError, match="gender"):
        write_surreal_clip(tmp_path, "01_01_c0001", **{**kwargs, "gender": "x"})
