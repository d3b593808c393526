"""3DPW: restricted unpickling, the evaluation protocol, and ``build-3dpw`` stores.

The tests write small datasets in exactly 3DPW's format (Python-2-style pickles with the keys of
``docs/formats.md``, JPEG frames of any size) with a known camera and known detections.
"""

from __future__ import annotations

import io
import os
import pickle
import pickletools
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from synthgen import store
from synthgen.build.threedpw import Protocol, build_3dpw, check_same_backend, discover
from synthgen.cli import main
from synthgen.config import Config
from synthgen.core.errors import (
    CorruptFileError,
    InconsistentDataError,
    MissingFileError,
    MissingKeyError,
    NonFiniteError,
    SourceError,
)
from synthgen.core.joints import COCO14, SMPL_INDEX
from synthgen.core.joints import OPENPOSE_INDEX, SMPL_FROM_OPENPOSE
from synthgen.sources import threedpw
from synthgen.testing.threedpw import dump_py2_pickle, write_sequence
from synthgen.steps.crop_flow import backend_from_config
from synthgen.steps.crops import boxes_from_keypoints, crop_frames, crop_pairs
from synthgen.steps.detections import (
    LOW_CONFIDENCE,
    NO_KEYPOINT,
    actor_track,
    clip_windows,
    detection_boxes,
    openpose_to_smpl,
    total_occlusions,
    visibility_bits,
)
from synthgen.steps.visibility import TOTAL_OCCLUSION

#: Small crops and a quick TV-L1 keep the store tests fast; the protocol does not depend on them.
CFG = Config().replace(crops={"size": 48, "person_height": 32.0},
                       crop_flow={"backend": "tvl1", "tvl1_num_warp": 1, "tvl1_num_iter": 5,
                                  "tvl1_num_levels": 2})
CLIP = 8
#: Frames of actor 0 of every sequence with only 5 confident COCO-14 keypoints (total occlusion).
OCCLUDED_FRAMES = (3, 4)

# ---------------------------------------------------------------------------------------------
# A tiny 3DPW-format dataset


def _rotation_y(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _make_sequence(root, split, name, rng, *, num_frames, num_actors, height, width):
    """Write one sequence: people moving sideways under a panning camera; returns the truth."""
    focal = 0.6 * max(height, width)
    K = np.array([[focal, 0.0, width / 2], [0.0, focal, height / 2], [0.0, 0.0, 1.0]])
    cam_poses = np.tile(np.eye(4), (num_frames, 1, 1))
    for i in range(num_frames):
        cam_poses[i, :3, :3] = _rotation_y(0.004 * i)
        cam_poses[i, :3, 3] = [0.01 * i, 0.0, 4.0]
    texture = rng.integers(0, 256, (height + 64, width + 64, 3)).astype(np.uint8)
    frames = np.stack([np.roll(texture, (0, -i), axis=(0, 1))[:height, :width]
                       for i in range(num_frames)]).copy()
    truth = {"K": K, "cam_poses": cam_poses, "joints_world": [], "poses2d": []}
    lists = {k: [] for k in ("genders", "betas", "poses", "trans", "joints", "poses2d", "valid")}
    for a in range(num_actors):
        template = np.column_stack([rng.uniform(-0.3, 0.3, 24), rng.uniform(-0.8, 0.8, 24),
                                    rng.uniform(-0.1, 0.1, 24)])
        trans = np.column_stack([np.linspace(-0.4, 0.4, num_frames) + 0.8 * a - 0.4 * num_actors / 2,
                                 np.zeros(num_frames), np.zeros(num_frames)])
        joints_world = template[None] + trans[:, None]
        cam = threedpw.world_to_camera_frames(joints_world, cam_poses)
        pixels = cam @ K.T
        pixels = pixels[..., :2] / pixels[..., 2:3]
        poses2d = np.zeros((num_frames, 3, 18))
        for smpl_name, op_name in SMPL_FROM_OPENPOSE.items():
            poses2d[:, :2, OPENPOSE_INDEX[op_name]] = pixels[:, SMPL_INDEX[smpl_name]]
        for k, op_name in enumerate(("right_eye", "left_eye", "right_ear", "left_ear")):
            poses2d[:, :2, OPENPOSE_INDEX[op_name]] = pixels[:, SMPL_INDEX["head"]] + [k - 1.5, -2]
        poses2d[:, 2] = 0.9
        if a == 0:  # 5 confident COCO-14 keypoints (and confident eyes/ears): total occlusions
            for frame in OCCLUDED_FRAMES:
                poses2d[frame, 2, 5:14] = 0.05
        for i in range(num_frames):  # the person: a bright box over the joints
            (x0, y0), (x1, y1) = pixels[i].min(0).astype(int), pixels[i].max(0).astype(int)
            frames[i, max(y0, 0):y1, max(x0, 0):x1] = (200, 60 + 40 * a, 30)
        valid = np.ones(num_frames, dtype=bool)
        valid[-1] = False
        lists["genders"].append("mf"[a % 2])
        lists["betas"].append(rng.standard_normal(10))
        lists["poses"].append(rng.standard_normal((num_frames, 72)) * 0.1)
        lists["trans"].append(trans)
        lists["joints"].append(joints_world.reshape(num_frames, 72))
        lists["poses2d"].append(poses2d)
        lists["valid"].append(valid)
        truth["joints_world"].append(joints_world)
        truth["poses2d"].append(poses2d)
    path = write_sequence(
        root, split, name, frames=frames, genders=lists["genders"], betas=lists["betas"],
        poses=lists["poses"], trans=lists["trans"], joint_positions=lists["joints"],
        poses2d=lists["poses2d"], cam_poses=cam_poses, cam_intrinsics=K,
        campose_valid=lists["valid"])
    truth.update(path=path, frames=frames)
    return truth


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Two good test sequences (landscape, 1 actor, 12 frames; portrait, 2 actors, 9 frames),
    one good train sequence, and three bad test sequences."""
    root = tmp_path_factory.mktemp("3dpw")
    rng = np.random.default_rng(0)
    truths = {
        "courtyard_a": _make_sequence(root, "test", "courtyard_a", rng, num_frames=12,
                                      num_actors=1, height=96, width=128),
        "downtown_b": _make_sequence(root, "test", "downtown_b", rng, num_frames=9,
                                     num_actors=2, height=128, width=96),
        "outdoors_c": _make_sequence(root, "train", "outdoors_c", rng, num_frames=9,
                                     num_actors=1, height=96, width=128),
    }
    for name in ("bad_missing_key", "bad_truncated", "bad_missing_image"):
        _make_sequence(root, "test", name, rng, num_frames=9, num_actors=1, height=64, width=64)
    data = threedpw.load_pickle(root / "sequenceFiles/test/bad_missing_key.pkl")
    del data["cam_poses"]
    with open(root / "sequenceFiles/test/bad_missing_key.pkl", "wb") as f:
        dump_py2_pickle(data, f)
    raw = (root / "sequenceFiles/test/bad_truncated.pkl").read_bytes()
    (root / "sequenceFiles/test/bad_truncated.pkl").write_bytes(raw[:len(raw) // 2])
    (root / "imageFiles/bad_missing_image/image_00004.jpg").unlink()
    return root, truths


# ---------------------------------------------------------------------------------------------
# Restricted unpickling

#: Opcodes of Python 2's ``cPickle.dump(obj, f, 2)`` for dicts, lists, strings and numpy arrays.
PY2_OPCODES = {"PROTO", "EMPTY_DICT", "EMPTY_LIST", "MARK", "SETITEMS", "APPENDS", "TUPLE",
               "SHORT_BINSTRING", "BINSTRING", "GLOBAL", "REDUCE", "BUILD", "BININT1", "BININT",
               "LONG1", "BINFLOAT", "NONE", "NEWTRUE", "NEWFALSE", "STOP"}


def test_python2_pickle_is_written_with_python2_opcodes_and_loads_with_latin1(tmp_path):
    data = {"sequence": "caf\xe9", "raw": np.arange(256, dtype=np.uint8),
            "poses": [np.linspace(-1, 1, 6).reshape(2, 3)], "img_frame_ids": np.arange(3),
            "flags": np.array([True, False]), "n": None, "big": 2 ** 40, "neg": -3, "x": 0.5}
    buffer = io.BytesIO()
    dump_py2_pickle(data, buffer)
    raw = buffer.getvalue()
    opcodes = {op.name for op, _, _ in pickletools.genops(raw)}
    assert raw[:2] == b"\x80\x02"
    assert b"cnumpy.core.multiarray\n_reconstruct\n" in raw
    assert opcodes <= PY2_OPCODES, opcodes - PY2_OPCODES  # no Python-3 strings or framing
    assert {"SHORT_BINSTRING", "BINSTRING"} <= opcodes
    assert b"caf\xe9" in raw  # the latin-1 byte itself, as Python 2 wrote str
    path = tmp_path / "seq.pkl"
    path.write_bytes(raw)
    loaded = threedpw.load_pickle(path)
    assert loaded["sequence"] == "caf\xe9"
    np.testing.assert_array_equal(loaded["raw"], np.arange(256))
    assert loaded["raw"].dtype == np.uint8
    np.testing.assert_array_equal(loaded["poses"][0], data["poses"][0])
    np.testing.assert_array_equal(loaded["flags"], [True, False])
    assert (loaded["n"], loaded["big"], loaded["neg"], loaded["x"]) == (None, 2 ** 40, -3, 0.5)
    reference = pickle.loads(raw, encoding="latin1")  # the standard reader agrees
    np.testing.assert_array_equal(reference["raw"], loaded["raw"])
    # Pickles made by Python 3 (protocol 2 and 5) of the same data load too.
    for protocol in (2, 5):
        path.write_bytes(pickle.dumps(data, protocol=protocol))
        np.testing.assert_array_equal(threedpw.load_pickle(path)["poses"][0], data["poses"][0])


class _Exploit:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


@pytest.mark.parametrize("payload", ["os_system", "builtins_eval"])
def test_malicious_pickle_is_refused_without_running(tmp_path, payload):
    marker = tmp_path / "pwned"
    if payload == "os_system":
        evil = {"sequence": "x", "genders": _Exploit(f"touch {marker}")}
        raw = pickle.dumps(evil, protocol=2)
        refused = f"{os.system.__module__}.system"
    else:
        code = f"__import__('os').mkdir({str(marker)!r})".encode()
        raw = b"\x80\x02c__builtin__\neval\nU" + bytes([len(code)]) + code + b"\x85R."
        refused = "__builtin__.eval"
    path = tmp_path / "evil.pkl"
    path.write_bytes(raw)
    with pytest.raises(threedpw.UnsafePickleError) as info:
        threedpw.load_pickle(path)
    assert str(path) in str(info.value) and refused in str(info.value)
    assert info.value.reason == "unsafe_pickle"
    assert not marker.exists()


def test_bad_sequence_files_raise_source_errors_naming_file_and_reason(dataset, tmp_path):
    root, _ = dataset
    cases = {"bad_missing_key": (MissingKeyError, "cam_poses"),
             "bad_truncated": (CorruptFileError, "truncated")}
    for name, (error, words) in cases.items():
        path = root / "sequenceFiles/test" / f"{name}.pkl"
        with pytest.raises(error) as info:
            threedpw.read_sequence(path)
        assert str(path) in str(info.value) and words in str(info.value)
    empty = tmp_path / "empty.pkl"
    empty.write_bytes(b"")
    with pytest.raises(SourceError, match="empty"):
        threedpw.read_sequence(empty)
    with pytest.raises(MissingFileError, match="image_00004.jpg"):
        threedpw.check_images(root / "imageFiles/bad_missing_image", range(9))


def test_a_reflecting_camera_pose_is_refused(dataset, tmp_path):
    """3DPW stores declare proper-rotation camera joints: a cam_poses reflection is bad input."""
    root, truths = dataset
    data = threedpw.load_pickle(truths["courtyard_a"]["path"])
    data["cam_poses"][:, :3, 0] *= -1  # det R = -1
    path = tmp_path / "mirror.pkl"
    with open(path, "wb") as f:
        dump_py2_pickle(data, f)
    with pytest.raises(InconsistentDataError, match=r"mirror\.pkl: .*determinant -1\.0000, not \+1"):
        threedpw.read_sequence(path)


@pytest.mark.parametrize("key,index", [("jointPositions", (3, 5)), ("poses2d", (3, 0, 5)),
                                       ("poses", (2, 7)), ("trans", (0, 1)), ("betas", (4,))])
def test_nan_or_infinite_annotations_are_refused(dataset, tmp_path, key, index):
    """They were stored as they were (NaN joints3d / joints2d in the evaluation store)."""
    root, truths = dataset
    data = threedpw.load_pickle(truths["courtyard_a"]["path"])
    data[key][0] = np.array(data[key][0], dtype=np.float64)
    data[key][0][index] = np.inf if key == "trans" else np.nan
    path = tmp_path / "nan.pkl"
    with open(path, "wb") as f:
        dump_py2_pickle(data, f)
    with pytest.raises(NonFiniteError, match=rf"nan\.pkl: .*{key}\[0\] has 1 NaN or infinite"):
        threedpw.read_sequence(path)


# ---------------------------------------------------------------------------------------------
# Reading and the protocol


def test_reader_gives_camera_frame_joints_and_detections(dataset):
    root, truths = dataset
    truth = truths["downtown_b"]
    sequence = threedpw.read_sequence(truth["path"])
    assert sequence.name == "downtown_b" and sequence.num_frames == 9
    assert [a.gender for a in sequence.actors] == ["male", "female"]
    for a, actor in enumerate(sequence.actors):
        for i in (0, 5, 8):  # by hand: R X + t with the top of the 4x4 world-to-camera pose
            R, t = truth["cam_poses"][i, :3, :3], truth["cam_poses"][i, :3, 3]
            expected = np.array([R @ joint + t for joint in truth["joints_world"][a][i]])
            np.testing.assert_allclose(actor.joints_cam[i], expected, atol=1e-12)
        np.testing.assert_allclose(actor.keypoints, truth["poses2d"][a][:, :2].transpose(0, 2, 1))
        np.testing.assert_allclose(actor.confidence, truth["poses2d"][a][:, 2])
        assert actor.campose_valid.tolist() == [True] * 8 + [False]
    # The portrait frames are read at their own size (no 1920x1080 assumption).
    assert threedpw.check_images(root / "imageFiles/downtown_b", sequence.img_frame_ids) == (128, 96)
    # Projecting the camera-frame joints with the intrinsics lands on the (exact) detections.
    actor = sequence.actors[1]
    uvw = actor.joints_cam @ sequence.cam_intrinsics.T
    np.testing.assert_allclose(uvw[:, SMPL_INDEX["left_wrist"], :2] / uvw[:, SMPL_INDEX["left_wrist"], 2:],
                               actor.keypoints[:, OPENPOSE_INDEX["left_wrist"]], atol=1e-9)


def test_openpose_to_smpl_mapping():
    keypoints = np.stack([np.arange(18.0), 100 + np.arange(18.0)], axis=-1)[None]
    confidence = (0.5 + np.arange(18.0) / 100)[None]
    joints, conf = openpose_to_smpl(keypoints, confidence)
    expected = {"head": 0, "neck": 1, "right_shoulder": 2, "right_elbow": 3, "right_wrist": 4,
                "left_shoulder": 5, "left_elbow": 6, "left_wrist": 7, "right_hip": 8,
                "right_knee": 9, "right_ankle": 10, "left_hip": 11, "left_knee": 12,
                "left_ankle": 13}
    for name, op in expected.items():
        np.testing.assert_array_equal(joints[0, SMPL_INDEX[name]], [op, 100 + op])
        assert conf[0, SMPL_INDEX[name]] == confidence[0, op]
    assert sorted(SMPL_INDEX[n] for n in expected) == sorted(COCO14.tolist())
    unmapped = [i for i in range(24) if i not in COCO14]
    assert not joints[0, unmapped].any() and not conf[0, unmapped].any()


def test_total_occlusion_below_seven_confident_coco_keypoints():
    confidence = np.full((4, 18), 0.9)
    confidence[1, 7:14] = 0.1           # 7 COCO-14 keypoints left: visible (0.1 is not > 0.1)
    confidence[2, 6:14] = 0.1           # 6 left (eyes and ears do not count)
    confidence[3] = 0.0                 # no detection at all
    _, conf24 = openpose_to_smpl(np.zeros((4, 18, 2)), confidence)
    occluded = total_occlusions(conf24)
    assert occluded.tolist() == [False, False, True, True]
    bits = visibility_bits(conf24, occluded)
    assert np.all(bits[:, SMPL_INDEX["pelvis"]] & NO_KEYPOINT)
    assert bits[0, SMPL_INDEX["left_wrist"]] == 0
    assert bits[1, SMPL_INDEX["left_wrist"]] == LOW_CONFIDENCE  # 0.1 is hidden
    assert np.all(bits[2] & TOTAL_OCCLUSION) and not np.any(bits[:2] & TOTAL_OCCLUSION)


def test_boxes_from_detections_interpolated_over_total_occlusions():
    rng = np.random.default_rng(1)
    keypoints = rng.uniform(50, 150, (5, 18, 2)) + np.arange(5)[:, None, None] * 10
    confidence = np.full((5, 18), 0.9)
    confidence[0, 0] = 0.0  # a missed keypoint does not enter the box
    keypoints[0, 0] = (-500.0, -500.0)
    occluded = np.array([False, True, True, False, False])
    boxes = detection_boxes(keypoints, confidence, occluded, size=224, person_height=150)
    np.testing.assert_allclose(boxes[0], boxes_from_keypoints(keypoints[0, 1:][None], size=224,
                                                              person_height=150)[0])
    np.testing.assert_allclose(boxes[3], boxes_from_keypoints(keypoints[3:4], size=224,
                                                              person_height=150)[0])
    np.testing.assert_allclose(boxes[1], boxes[0] + (boxes[3] - boxes[0]) / 3)
    np.testing.assert_allclose(boxes[2], boxes[0] + 2 * (boxes[3] - boxes[0]) / 3)
    with pytest.raises(ValueError, match="no frame"):
        detection_boxes(keypoints, confidence, np.ones(5, bool), size=224, person_height=150)
    track = actor_track(keypoints, confidence, size=224, person_height=150)
    assert track.joints2d_crop(size=224)[0, SMPL_INDEX["head"]].tolist() == [0.0, 0.0]


def test_a_track_window_holds_those_frames_of_every_array():
    rng = np.random.default_rng(2)
    keypoints = rng.uniform(50, 150, (6, 18, 2))
    confidence = rng.uniform(0.0, 1.0, (6, 18))
    track = actor_track(keypoints, confidence, size=64, person_height=40)
    part = track.window(slice(2, 5))
    for name in ("joints2d", "confidence", "visibility", "total_occlusion", "boxes"):
        np.testing.assert_array_equal(getattr(part, name), getattr(track, name)[2:5])
    # Crop coordinates are per frame: a window's are those frames' of the whole track, exactly.
    np.testing.assert_array_equal(part.joints2d_crop(size=64), track.joints2d_crop(size=64)[2:5])


def test_clip_windows_cover_sequence_once():
    starts, first = clip_windows(70, 31)
    assert starts.tolist() == [0, 31, 39]
    assert first[:2].all() and first[2].tolist() == [False] * 23 + [True] * 8
    covered = np.concatenate([s + np.flatnonzero(f) for s, f in zip(starts, first)])
    assert sorted(covered.tolist()) == list(range(70))
    starts, first = clip_windows(62, 31)
    assert starts.tolist() == [0, 31] and first.all()
    assert clip_windows(30, 31)[0].size == 0


# ---------------------------------------------------------------------------------------------
# build-3dpw


@pytest.fixture(scope="module")
def built(dataset, tmp_path_factory):
    root, truths = dataset
    out = str(tmp_path_factory.mktemp("stores") / "3dpw.zarr")
    summary = build_3dpw(root, out, serial=True, stream=io.StringIO(),
                         cfg=CFG.replace(clip={"length": CLIP}, store={"examples_per_shard": 2}))
    return out, summary, truths


def test_store_has_documented_arrays_attrs_and_skips(built):
    out, summary, truths = built
    group = store.open_group(out)
    attrs = dict(group.attrs)
    assert attrs["kind"] == "3dpw" and attrs["joints_convention"] == "smpl24_camera_world_pose"
    specs = store.schema_3dpw(CLIP, 48)
    for name, spec in specs.items():
        assert group[name].shape == (summary.clips, *spec.shape), name
        assert group[name].dtype == np.dtype(spec.dtype), name
    # courtyard_a (12 frames): windows 0 and 4; downtown_b (9 frames) x 2 actors: windows 0, 1.
    assert summary.clips == 6 and summary.sequences == 2
    sequences = [s["name"] for s in attrs["sources"]["sequences"]]
    assert sequences == ["courtyard_a", "downtown_b"]
    assert attrs["protocol"]["min_visible"] == 7 and attrs["protocol"]["clip_length"] == CLIP
    skipped = {s["path"].split("/")[-1]: s for s in attrs["skipped"]}
    assert skipped["bad_missing_key.pkl"]["reason"] == "missing_key"
    assert "cam_poses" in skipped["bad_missing_key.pkl"]["detail"]
    assert skipped["bad_truncated.pkl"]["reason"] == "corrupt"
    assert skipped["image_00004.jpg"]["reason"] == "missing_file"
    assert "outdoors_c" not in str(attrs)  # train split not asked for
    data = store.open_store(out)
    assert data.sizes["example"] == 6 and data["flow"].dtype == np.float32
    np.testing.assert_array_equal(data["sequence_index"].values, [0, 0, 1, 1, 1, 1])
    np.testing.assert_array_equal(data["actor"].values, [0, 0, 0, 0, 1, 1])
    np.testing.assert_array_equal(data["frame_index"].values[1], np.arange(4, 12))


def test_store_clip_contents_match_protocol_camera_joints_and_named_backend(built):
    out, _, truths = built
    data = store.open_store(out)
    assert data.attrs["crop_flow"]["name"] == "tvl1"
    backend = backend_from_config(CFG.crop_flow)
    assert data.attrs["crop_flow"]["params"] == backend.params
    truth = truths["courtyard_a"]
    sequence = threedpw.read_sequence(truth["path"])
    actor = sequence.actors[0]
    example = data.isel(example=1)  # frames 4..11 of courtyard_a
    window = slice(4, 12)
    np.testing.assert_allclose(example["joints3d"].values, actor.joints_cam[window], atol=1e-6)
    # Frames 3, 4 are total occlusions; 0..3 were evaluated in window 0; the last is campose-invalid.
    occluded = example["total_occlusion"].values
    assert occluded.tolist() == [True] + [False] * 7
    first = data.isel(example=0)
    assert first["total_occlusion"].values.tolist() == [False] * 3 + [True, True] + [False] * 3
    assert first["evaluate"].values.tolist() == [True] * 3 + [False, False] + [True] * 3
    assert example["evaluate"].values.tolist() == [False] * 4 + [True] * 3 + [False]
    assert np.all(example["visibility"].values[0] & TOTAL_OCCLUSION)
    # Boxes and crops from the detections; flow = the named backend on the paired crops.
    boxes = example["boxes"].values.astype(np.float64)
    frames = threedpw.read_frames(root_images(truth), sequence.img_frame_ids[window])
    np.testing.assert_array_equal(example["rgb"].values, crop_frames(frames, boxes, size=48))
    flow = backend.flow(crop_pairs(frames, boxes, size=48))
    np.testing.assert_allclose(example["flow"].values, flow,
                               atol=data["flow"].attrs["quantum_px"] / 2 + 1e-6)
    assert np.abs(flow).max() > 0.2  # the scene moves: real flow, not zeros
    # Detections in the crop: the right ankle of the last frame.
    kp = truth["poses2d"][0][11, :2, OPENPOSE_INDEX["right_ankle"]]
    crop = (kp - boxes[-1, :2]) * 48 / boxes[-1, 2]
    np.testing.assert_allclose(example["joints2d_crop"].values[-1, SMPL_INDEX["right_ankle"]],
                               crop, atol=1e-3)
    assert int(example["gender"]) == store.GENDERS.index("male")


def root_images(truth):
    return truth["path"].parent.parent.parent / "imageFiles" / truth["path"].stem


def test_discover_splits_and_too_short_actors(dataset):
    root, _ = dataset
    sources, plans, skipped = discover(root, CFG, Protocol(clip_length=10), splits=("train",))
    assert sources == [] and plans == []
    assert any(s.reason == "too_short" and "outdoors_c" in s.file for s in skipped)


def test_backend_mismatch_with_training_store_is_refused(dataset, built, tmp_path):
    out, _, _ = built
    training = str(tmp_path / "train.zarr")
    flownet = {"name": "flownet2", "params": {"model": "flownet2", "checkpoint": "/w/a.pth",
                                              "checkpoint_sha256": "ab", "device": "cuda"}}
    store.create_store(training, num_examples=1, num_frames=CLIP, crop_size=48,
                       examples_per_shard=1, attrs={"crop_flow": flownet,
                                                    "config": CFG.to_dict()})
    ours = dict(store.open_group(out).attrs)["crop_flow"]
    with pytest.raises(ValueError, match="crop-flow backend differs"):
        check_same_backend(training, ours, CFG)
    # The same FlowNet weights run on another device, from another path, are the same flow.
    moved = {"name": "flownet2", "params": {**flownet["params"], "checkpoint": "/x/a.pth",
                                            "device": "cpu"}}
    check_same_backend(training, moved, CFG)
    with pytest.raises(ValueError, match=r"crop size \(px\) differs"):
        check_same_backend(training, moved, CFG.replace(crops={"size": 64}))
    result = CliRunner().invoke(main, ["build-3dpw", "--3dpw", str(dataset[0]),
                                       "--out", str(tmp_path / "x.zarr"), "--match-store",
                                       training])
    assert result.exit_code == 1 and "crop-flow backend differs" in result.output
    assert not (tmp_path / "x.zarr").exists()



def test_inspect_checks_a_3dpw_store_without_synthetic_statistics(built):
    out, _, _ = built
    result = CliRunner().invoke(main, ["inspect", out, "--quiet"])
    assert result.exit_code == 0, result.output
    assert "statistics: computed for synthetic training stores only (this store is '3dpw')" \
        in result.output
    assert "finished shards readable: OK" in result.output


def _pipeline(tmp_path) -> str:
    path = tmp_path / "pipe.toml"
    path.write_text('[crops]\nsize = 48\nperson_height = 32.0\n[crop_flow]\nbackend = "tvl1"\n'
                    'tvl1_num_warp = 1\ntvl1_num_iter = 5\ntvl1_num_levels = 2\n')
    return str(path)


def test_a_killed_3dpw_build_resumes_to_the_same_bytes(dataset, tmp_path):
    out, copy = tmp_path / "whole.zarr", tmp_path / "copy.zarr"
    args = ["build-3dpw", "--3dpw", str(dataset[0]), "--out", str(copy), "--pipeline",
            _pipeline(tmp_path), "--clip-length", str(CLIP), "--examples-per-shard", "2",
            "--serial"]
    assert CliRunner().invoke(main, args).exit_code == 0
    shutil.copytree(copy, out)
    group = store.open_group(str(copy), mode="r+")
    group["shard_done"][1] = False  # as if killed while writing shard 1
    group["rgb"][2:4] = 0
    refused = CliRunner().invoke(main, args)
    assert refused.exit_code == 1 and "--resume" in refused.output
    result = CliRunner().invoke(main, args + ["--resume"])
    assert result.exit_code == 0, result.output
    assert "(1 shards built, 2 reused)" in result.output
    group, original = store.open_group(str(copy)), store.open_group(str(out))
    assert store.finished_shards(group).all()
    for name in original.array_keys():
        np.testing.assert_array_equal(group[name][:], original[name][:], err_msg=name)
    other = CliRunner().invoke(main, args[:-3] + ["--examples-per-shard", "3", "--serial",
                                                  "--resume"])
    assert other.exit_code == 1 and "cannot resume" in other.output


def test_3dpw_stores_take_clip_length_and_shard_size_from_the_pipeline(built):
    out, summary, _ = built
    group = store.open_group(out)
    assert group.attrs["num_frames"] == CLIP == group.attrs["config"]["clip"]["length"]
    assert group.attrs["examples_per_shard"] == 2 == group.attrs["config"]["store"]["examples_per_shard"]
    assert group["rgb"].shards[0] == 2
