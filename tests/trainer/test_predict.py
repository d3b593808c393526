"""``synthgen build-video`` and ``trainer predict``: keypoint files, the isolated detector, video
stores, and predictions on real video.

Real clips come from ``../shared/data/videos`` (fixture ``shared_data``; skipped when absent).
Detector tests skip with a message when the MediaPipe environment (``make detector``) is absent.
The checkpoints are those of ``tests/trainer/test_evaluate.py`` (train.py's format, TV-L1 training data).
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from synthgen.sources import detector
from synthgen import store as synthstore
from synthgen.cli import main as synthgen_main
from synthgen.core.errors import (CorruptFileError, EmptyInputError, FrameCountMismatchError,
                             MissingKeyError, NonFiniteError)
from synthgen.sources.video import probe, write_video
from synthgen.steps.crops import frame_to_crop
from synthgen.core.joints import OPENPOSE_INDEX, OPENPOSE_NAMES
from synthgen.build.video import flow_backend
from synthgen.clips import plan_video
from synthgen.sources.keypoints import (
    BLAZEPOSE_NAMES,
    BODY25_NAMES,
    COCO17_NAMES,
    VideoKeypoints,
    read_blazepose_npz,
    read_keypoints,
)
from tests.trainer.support import CFG, mean_pose_joints, tiny_config, tvl1_record, write_checkpoint
from trainer.checkpoint import load_checkpoint
from trainer.cli import main
from trainer.data import crop_to_normalised
from trainer.model import mean_params
from trainer.predict import (crop_boxes_of_predictions, normalised_to_frame, open_video_store,
                             predict, predict_store)
from trainer.smpl import SMPLJoints, weak_perspective
from trainer.synthetic import PERSON_HEIGHT, REFERENCE_CROP, make_synthetic_store

# ---------------------------------------------------------------------------------------------
# Keypoint files


def _person(names, centre, rng, *, confidence=0.9):
    """Keypoints (K, 2) of a layout scattered around ``centre`` and their confidences (K,)."""
    points = np.asarray(centre) + rng.uniform(-20, 20, (len(names), 2))
    return points, np.full(len(names), confidence)


def _flat(points, conf):
    return np.column_stack([points, conf]).reshape(-1).tolist()


def write_openpose(folder, frames, names):
    """``frames``: per frame a list of (points, conf); file names sort naturally, not lexically."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, people in enumerate(frames):
        document = {"version": 1.3, "people": [{"person_id": [-1], "pose_keypoints_2d":
                                                 _flat(p, c)} for p, c in people]}
        (folder / f"video_{i}_keypoints.json").write_text(json.dumps(document))


def test_openpose_body25_folder_maps_by_name_and_follows_one_person(tmp_path):
    rng = np.random.default_rng(0)
    a0, a1 = _person(BODY25_NAMES, (100, 100), rng), _person(BODY25_NAMES, (104, 102), rng)
    # Frame 1: a more confident stranger far away comes first in the list; frame 2: nobody.
    stranger = _person(BODY25_NAMES, (400, 300), rng, confidence=1.0)
    frames = [[a0], [stranger, a1]] + [[] for _ in range(9)] + [[a0]]
    write_openpose(tmp_path / "op", frames, BODY25_NAMES)
    found = read_keypoints(tmp_path / "op")
    assert found.layout == "body25" and found.num_frames == 12
    body25 = {n: i for i, n in enumerate(BODY25_NAMES)}
    for name in ("right_hip", "left_ankle", "nose", "neck", "left_ear"):
        np.testing.assert_allclose(found.keypoints[1, OPENPOSE_INDEX[name]], a1[0][body25[name]])
    np.testing.assert_allclose(found.keypoints[11], found.keypoints[0])  # video_11 after video_2
    assert found.detected().tolist() == [True, True] + [False] * 9 + [True]
    assert (found.keypoints[2] == 0).all() and (found.confidence[2] == 0).all()


def test_openpose_coco18_and_coco_json_layouts(tmp_path):
    rng = np.random.default_rng(1)
    person = _person(OPENPOSE_NAMES, (50, 60), rng)
    write_openpose(tmp_path / "op18", [[person]], OPENPOSE_NAMES)
    found = read_keypoints(tmp_path / "op18")
    assert found.layout == "openpose18"
    np.testing.assert_allclose(found.keypoints[0], person[0])
    # COCO-17 with an images table: frames by file name (img_2 before img_10), neck = midpoint.
    coco = {n: i for i, n in enumerate(COCO17_NAMES)}
    points, conf = _person(COCO17_NAMES, (80, 90), rng)
    conf[coco["left_shoulder"]], conf[coco["right_shoulder"]] = 1.0, 2.0  # COCO flags 1 and 2
    conf[coco["left_ankle"]] = 0.0  # not labelled
    document = {"images": [{"id": 7, "file_name": "img_10.jpg"},
                           {"id": 3, "file_name": "img_2.jpg"}],
                "annotations": [{"image_id": 7, "keypoints": _flat(points, conf)}],
                "categories": [{"id": 1, "name": "person"}]}
    (tmp_path / "coco.json").write_text(json.dumps(document))
    found = read_keypoints(tmp_path / "coco.json")
    assert found.layout == "coco17" and found.detected().tolist() == [False, True]
    neck = (points[coco["left_shoulder"]] + points[coco["right_shoulder"]]) / 2
    np.testing.assert_allclose(found.keypoints[1, OPENPOSE_INDEX["neck"]], neck)
    assert found.confidence[1, OPENPOSE_INDEX["neck"]] == 1.0
    assert found.confidence[1, OPENPOSE_INDEX["left_ankle"]] == 0.0
    np.testing.assert_allclose(found.keypoints[1, OPENPOSE_INDEX["right_knee"]],
                               points[coco["right_knee"]])
    # A results list: image_id is the frame index.
    results = [{"image_id": 2, "category_id": 1, "keypoints": _flat(points, conf), "score": 0.8}]
    (tmp_path / "results.json").write_text(json.dumps(results))
    assert read_keypoints(tmp_path / "results.json").detected().tolist() == [False, False, True]


def test_blazepose_npz_maps_to_openpose18(tmp_path):
    rng = np.random.default_rng(2)
    landmarks = rng.uniform(0, 300, (3, 33, 2)).astype(np.float32)
    visibility = rng.uniform(0.5, 1, (3, 33)).astype(np.float32)
    np.savez(tmp_path / "d.npz", landmarks=landmarks, visibility=visibility,
             detected=np.array([True, False, True]), width=320, height=240, fps=30.0)
    found = read_blazepose_npz(tmp_path / "d.npz")
    blaze = {n: i for i, n in enumerate(BLAZEPOSE_NAMES)}
    np.testing.assert_allclose(found.keypoints[0, OPENPOSE_INDEX["left_wrist"]],
                               landmarks[0, blaze["left_wrist"]], rtol=1e-6)
    np.testing.assert_allclose(found.keypoints[2, OPENPOSE_INDEX["right_eye"]],
                               landmarks[2, blaze["right_eye"]], rtol=1e-6)
    assert found.detected().tolist() == [True, False, True]


def test_bad_keypoint_files_name_the_file_and_reason(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(EmptyInputError, match="no OpenPose .json"):
        read_keypoints(tmp_path / "empty")
    bad = tmp_path / "op"
    bad.mkdir()
    (bad / "f_0.json").write_text('{"people": [{"pose_keypoints_2d": [1, 2')
    with pytest.raises(CorruptFileError, match="f_0.json.*not valid JSON"):
        read_keypoints(bad)
    (bad / "f_0.json").write_text(json.dumps({"people": [{"pose_keypoints_2d": [1.0] * 30}]}))
    with pytest.raises(CorruptFileError, match="10 keypoints per person"):
        read_keypoints(bad)
    (tmp_path / "c.json").write_text(json.dumps({"annotations": []}))
    with pytest.raises(MissingKeyError, match="c.json"):
        read_keypoints(tmp_path / "c.json")
    (tmp_path / "k.txt").write_text("x")
    with pytest.raises(CorruptFileError, match="unknown keypoint format"):
        read_keypoints(tmp_path / "k.txt")


@pytest.mark.parametrize("name,content,error,words", [
    ("huge.json", [{"image_id": 10 ** 12, "keypoints": [1, 2, 1] * 17}], CorruptFileError,
     "image_id 1000000000000 .* beyond any video"),  # was a 10**12-frame allocation (OOM kill)
    ("nan.json", [{"image_id": 0, "keypoints": [float("nan"), 2, 1] * 17}], NonFiniteError,
     r"keypoints has \d+ NaN"),
    ("images.json", {"images": 5, "annotations": []}, CorruptFileError,
     "not laid out as its format \\(TypeError"),
    ("name.json", {"images": [{"id": 1}], "annotations": []}, CorruptFileError,
     "not laid out as its format \\(KeyError: 'file_name'"),
    ("annotation.json", {"images": [{"id": 1, "file_name": "a"}], "annotations": [5]},
     CorruptFileError, "not laid out as its format"),
    ("empty.npz", b"", CorruptFileError, "not a readable .npz"),
    ("truncated.npz", b"PK\x03\x04 not a whole zip", CorruptFileError, "not a readable .npz"),
    ("lengths.npz", {"landmarks": np.zeros((3, 33, 2)), "visibility": np.ones((3, 33)),
                     "detected": np.ones(5, bool)}, CorruptFileError, "not laid out"),
])
def test_hostile_keypoint_files_are_source_errors_naming_the_file(tmp_path, name, content,
                                                                  error, words):
    """Each was a traceback (TypeError, KeyError, BadZipFile, broadcasting), an 'aborted' (empty
    .npz), NaN keypoints passed on, or a process killed for memory."""
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, dict) and name.endswith(".npz"):
        np.savez(path, **content)
    else:
        path.write_text(json.dumps(content))
    with pytest.raises(error, match=words) as caught:
        read_keypoints(path)
    assert caught.value.path == str(path)


# ---------------------------------------------------------------------------------------------
# Geometry and flow


def test_prediction_coordinates_map_back_through_the_box():
    rng = np.random.default_rng(3)
    boxes = np.column_stack([rng.uniform(0, 100, (4, 2)), rng.uniform(50, 200, 4)])
    frame_px = rng.uniform(0, 300, (4, 5, 2))
    crop = frame_to_crop(frame_px, boxes, size=48)
    normalised = crop_to_normalised(torch.as_tensor(crop), 48).numpy()  # training's targets
    np.testing.assert_allclose(normalised_to_frame(normalised, boxes, crop_size=48), frame_px)
    picked = crop_boxes_of_predictions(boxes)
    np.testing.assert_array_equal(picked, boxes[[0, 1, 2, 2]])  # last frame: the future head


def test_flow_backend_is_rebuilt_only_as_recorded():
    record = tvl1_record()
    assert flow_backend(record).params == record["params"]
    with pytest.raises(ValueError, match="unknown crop-flow backend 'synthetic'"):
        flow_backend({"name": "synthetic", "params": {}})
    with pytest.raises(ValueError, match="random weights"):
        flow_backend({"name": "flownet2s", "params": {"random_weights": True}})


# ---------------------------------------------------------------------------------------------
# Predictions on real video


def _standing_person(info, rng):
    """OpenPose-18 keypoints of a person standing in the middle of the frame, swaying; frames
    5-7 have only 5 confident COCO-14 keypoints (total occlusions)."""
    n = info.num_frames
    base = np.array([[0, -60], [0, -45], [-15, -45], [-22, -25], [-25, -5], [15, -45], [22, -25],
                     [25, -5], [-10, 0], [-12, 30], [-12, 60], [10, 0], [12, 30], [12, 60],
                     [-4, -63], [4, -63], [-8, -60], [8, -60]], dtype=float)
    sway = np.sin(np.arange(n) / 4.0)[:, None, None] * [6.0, 0.0]
    points = base[None] + sway + [info.width / 2, info.height / 2] + rng.normal(0, 1, (n, 18, 2))
    confidence = np.full((n, 18), 0.8)
    confidence[5:8, 5:14] = 0.05
    return VideoKeypoints(points, confidence, "test", "openpose18")


#: The person height the tiny training stores (which record none) are built with.
HEIGHT = PERSON_HEIGHT * CFG.crops.size / REFERENCE_CROP


def build_video_store(video, training_store, out, *, found=None, folder=None, extra=()):
    """``synthgen build-video`` of ``video`` with keypoints ``found`` (written as an OpenPose-18
    folder) or a ready keypoint ``folder``; the CLI result."""
    if folder is None:
        folder = out.parent / f"{out.stem}_openpose"
        write_openpose(folder, [[(p, c)] for p, c in zip(found.keypoints, found.confidence)],
                       OPENPOSE_NAMES)
    return CliRunner().invoke(synthgen_main, [
        "build-video", str(video), "--keypoints", str(folder), "--match-store",
        str(training_store), "--person-height", str(HEIGHT), "--out", str(out), *extra])


def test_a_video_shorter_than_the_clip_length_is_one_clip_and_the_summary_says_so(training_store,
                                                                                  tmp_path):
    """The documented decision (synthgen.clips) was silent: --clip-length 31 gave a clip of 6."""
    frames = np.random.default_rng(0).integers(0, 255, (6, 160, 160, 3), dtype=np.uint8)
    video = write_video(tmp_path / "short.mp4", frames, fps=30.0)
    found = _standing_person(probe(video), np.random.default_rng(4))
    built = build_video_store(video, training_store, tmp_path / "short.zarr", found=found,
                              extra=["--clip-length", "31", "--no-flow"])
    assert built.exit_code == 0, built.output
    assert ("6 frames in 1 clips of 6 (the video is shorter than the clip length 31: one clip of "
            "all its frames)") in built.output
    assert synthstore.open_group(str(tmp_path / "short.zarr")).attrs["num_frames"] == 6


@pytest.mark.parametrize("name", ["handheld_pool_32frames.mp4",
                                  pytest.param("kinetics400_armwrestling.mp4",
                                               marks=pytest.mark.slow)])
def test_predict_on_real_video_writes_well_formed_outputs(name, shared_data, constant_checkpoint,
                                                          training_store, smpl_dir, tmp_path):
    video = shared_data / "videos" / name
    info = probe(video)
    found = _standing_person(info, np.random.default_rng(4))
    store_url = tmp_path / "video.zarr"
    built = build_video_store(video, training_store, store_url, found=found)
    assert built.exit_code == 0, built.output
    group = synthstore.open_group(str(store_url))
    spec = synthstore.spec(group)
    assert (spec.kind, spec.joints_convention, spec.crop_size) == ("video", None, CFG.crops.size)
    synthstore.check_compatible(spec, synthstore.spec(synthstore.open_group(training_store)),
                                fields=("crop_size", "crop_flow", "flow_quantum"), what="match")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["predict", "--checkpoint", str(constant_checkpoint),
                                       "--store", str(store_url), "--out", str(out),
                                       "--device", "cpu"])
    assert result.exit_code == 0, result.output
    n = info.num_frames
    with np.load(out / "predictions.npz") as data:
        arrays = {k: data[k] for k in data.files}
    assert arrays["frame"].tolist() == list(range(n))  # every frame once, in order
    shapes = {"pose": (n, 72), "betas": (n, 10), "camera": (n, 3), "joints3d": (n, 24, 3),
              "joints2d": (n, 24, 2), "keypoints2d": (n, 24, 2), "boxes": (n, 3),
              "total_occlusion": (n,)}
    assert {k: arrays[k].shape for k in shapes} == shapes
    assert all(np.isfinite(arrays[k]).all() for k in shapes)
    assert np.flatnonzero(arrays["total_occlusion"]).tolist() == [5, 6, 7]
    # The constant network predicts the mean parameters: its projection, mapped back through
    # each frame's box (box t - 1 on the last frame of a clip), is known exactly.
    theta = mean_params()
    np.testing.assert_allclose(arrays["pose"], np.broadcast_to(theta[:72], (n, 72)), atol=1e-6)
    joints = torch.as_tensor(mean_pose_joints(smpl_dir), dtype=torch.float32)
    normalised = weak_perspective(joints, torch.as_tensor(theta[82:])).numpy()
    assert n % 8 == 0  # 8-frame clips tile both videos: frames 7, 15, ... use the box before
    boxes = arrays["boxes"].copy()
    last = np.arange(7, n, 8)
    boxes[last] = arrays["boxes"][last - 1]
    expected = normalised_to_frame(np.broadcast_to(normalised, (n, 24, 2)), boxes,
                                   crop_size=CFG.crops.size)
    np.testing.assert_allclose(arrays["joints2d"], expected, rtol=1e-4, atol=1e-3)
    centre = arrays["boxes"][:, :2] + arrays["boxes"][:, 2:] / 2
    offset = np.abs(arrays["joints2d"].mean(axis=1) - centre).max()
    assert offset < 0.25 * arrays["boxes"][:, 2].min()  # the body sits in its box
    document = json.loads((out / "predictions.json").read_text())
    assert len(document["frames"]) == n and document["joint_names"][0] == "pelvis"
    assert document["crop_flow"]["name"] == "tvl1"
    capture = cv2.VideoCapture(str(out / "skeleton.mp4"))
    count = 0
    while capture.read()[0]:
        count += 1
    assert count == n and int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)) == info.width
    capture.release()


def test_predict_on_a_frame_folder_draws_its_frames_in_natural_order(constant_checkpoint,
                                                                    training_store, tmp_path):
    """Frames frame_1 ... frame_16 (frame_k of brightness 15 * (k - 1)): the skeleton video
    shows them in decode order (frame_10 after frame_9), drawn from the files the store names."""
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(16):
        cv2.imwrite(str(folder / f"frame_{i + 1}.png"), np.full((240, 320, 3), 15 * i, np.uint8))
    found = _standing_person(probe(folder), np.random.default_rng(7))
    url = tmp_path / "folder.zarr"
    built = build_video_store(folder, training_store, url, found=found)
    assert built.exit_code == 0, built.output
    assert open_video_store(str(url)).video["frames"][9:11] == ["frame_10.png", "frame_11.png"]
    moved = folder.rename(tmp_path / "moved")
    with pytest.raises(FileNotFoundError, match="is gone; pass --video"):
        open_video_store(str(url))
    paths = predict(str(url), constant_checkpoint, tmp_path / "out", video=moved, device="cpu",
                    log=lambda _: None)
    capture = cv2.VideoCapture(str(paths["mp4"]))
    brightness = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        brightness.append(float(np.median(image)))
    capture.release()
    np.testing.assert_allclose(brightness, 15 * np.arange(16), atol=6)  # mp4v: +-4
    synthstore.open_group(str(url), mode="r+")["shard_done"][0] = False  # a build cut short
    with pytest.raises(ValueError, match="1 of 1 shards unfinished"):
        open_video_store(str(url), video=moved)


def test_keypoints_only_network_needs_no_crop_flow(shared_data, smpl_dir, tmp_path):
    """A network without flow input runs on a store built without flow, even when its training
    flow cannot be rebuilt; a network that sees flow is refused there."""
    video = shared_data / "videos" / "handheld_pool_32frames.mp4"
    store = str(tmp_path / "synthetic_flow.zarr")
    make_synthetic_store(store, SMPLJoints.from_path(smpl_dir), num_examples=4, num_frames=8,
                         crop_size=CFG.crops.size, num_persons=2)  # crop_flow "synthetic"
    found = _standing_person(probe(video), np.random.default_rng(5))
    refused = build_video_store(video, store, tmp_path / "flow.zarr", found=found)
    assert refused.exit_code == 1
    assert "unknown crop-flow backend 'synthetic'" in refused.output
    assert len(refused.output.strip().splitlines()) == 1
    url = tmp_path / "noflow.zarr"
    built = build_video_store(video, store, url, found=found, extra=["--no-flow"])
    assert built.exit_code == 0, built.output
    checkpoint = tmp_path / "last.pt"
    write_checkpoint(checkpoint, tiny_config(smpl_dir, data={"modality": "keypoints"}), [store])
    opened = open_video_store(str(url))
    assert opened.reader.num_examples == 4 and "flow" not in opened.reader.specs
    prediction, _ = predict_store(opened, load_checkpoint(checkpoint), device="cpu",
                                  log=lambda _: None)
    assert prediction.frame.tolist() == list(range(32))
    flow_checkpoint = tmp_path / "flow.pt"
    write_checkpoint(flow_checkpoint, tiny_config(smpl_dir), [store])
    with pytest.raises(ValueError, match="has no crop flow"):
        predict_store(opened, load_checkpoint(flow_checkpoint), device="cpu", log=lambda _: None)


def test_predict_refuses_stores_not_made_like_the_training_data(shared_data, smpl_dir,
                                                                training_store,
                                                                constant_checkpoint, tmp_path):
    video = shared_data / "videos" / "handheld_pool_32frames.mp4"
    with pytest.raises(ValueError, match="not a video store: make one with `synthgen build-video"):
        open_video_store(training_store)
    other = str(tmp_path / "small.zarr")  # 32-px crops, the network's were CFG.crops.size
    make_synthetic_store(other, SMPLJoints.from_path(smpl_dir), num_examples=2, num_frames=8,
                         crop_size=32, num_persons=1, crop_flow=tvl1_record())
    synthstore.open_group(other, mode="r+").attrs["config"] = {"crops": {"person_height": HEIGHT}}
    url = tmp_path / "small_video.zarr"
    found = _standing_person(probe(video), np.random.default_rng(6))
    assert build_video_store(video, other, url, found=found).exit_code == 0
    first = open_video_store(str(url)).reader.read_shard("flow", 0)
    again = build_video_store(video, other, url, found=found)
    assert again.exit_code == 1 and "already holds a store" in again.output
    assert build_video_store(video, other, url, found=found,
                             extra=["--overwrite"]).exit_code == 0
    np.testing.assert_array_equal(open_video_store(str(url)).reader.read_shard("flow", 0), first)
    synthstore.open_group(str(url), mode="r+")["shard_done"][0] = False  # as if killed
    resumed = build_video_store(video, other, url, found=found, extra=["--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert synthstore.finished_shards(synthstore.open_group(str(url))).all()
    np.testing.assert_array_equal(open_video_store(str(url)).reader.read_shard("flow", 0), first)
    other_clips = build_video_store(video, other, url, found=found,
                                    extra=["--resume", "--clip-length", "4"])
    assert other_clips.exit_code == 1 and "cannot resume" in other_clips.output
    mismatch = build_video_store(video, other, tmp_path / "x.zarr", found=found,
                                 extra=["--person-height", "20"])
    assert mismatch.exit_code == 1
    assert "person height in the crops (px) differs" in mismatch.output
    assert not (tmp_path / "x.zarr").exists()  # refused before anything was written
    result = CliRunner().invoke(main, ["predict", "--checkpoint", str(constant_checkpoint),
                                       "--store", str(url), "--out", str(tmp_path / "out"),
                                       "--device", "cpu"])
    assert result.exit_code == 1
    assert "crop size (px) differs" in result.output and "build-video" in result.output


def test_keypoints_longer_than_the_video_or_never_confident_are_refused(shared_data, tmp_path):
    video = shared_data / "videos" / "handheld_pool_32frames.mp4"
    long = VideoKeypoints(np.zeros((40, 18, 2)), np.ones((40, 18)), "kp", "openpose18")
    with pytest.raises(FrameCountMismatchError, match="40 keypoint frames"):
        plan_video(video, long, crop_size=48, person_height=32.0, clip_length=8)
    nobody = VideoKeypoints(np.zeros((32, 18, 2)), np.zeros((32, 18)), "kp", "openpose18")
    with pytest.raises(EmptyInputError, match="no frame"):
        plan_video(video, nobody, crop_size=48, person_height=32.0, clip_length=8)


# ---------------------------------------------------------------------------------------------
# The isolated detector


def test_missing_detector_environment_says_make_detector(monkeypatch, tmp_path,
                                                          training_store):
    monkeypatch.delenv(detector.ENV_VAR, raising=False)
    monkeypatch.setattr(detector, "DEFAULT_VENV", tmp_path / "absent")
    with pytest.raises(detector.DetectorUnavailableError, match="make detector"):
        detector.detector_python()
    (tmp_path / "clip.mp4").write_bytes(b"")  # the detector is looked for before the video
    result = CliRunner().invoke(synthgen_main, [
        "build-video", str(tmp_path / "clip.mp4"), "--detector", "mediapipe", "--match-store",
        training_store, "--person-height", "30", "--out", str(tmp_path / "v.zarr")])
    assert result.exit_code == 1 and "make detector" in result.output
    assert len(result.output.strip().splitlines()) == 1
    monkeypatch.setenv(detector.ENV_VAR, str(tmp_path / "no-python"))
    with pytest.raises(detector.DetectorUnavailableError, match="no-python"):
        detector.detector_python()


@pytest.fixture(scope="session")
def detector_python():
    try:
        return detector.detector_python()
    except detector.DetectorUnavailableError as exc:
        pytest.skip(f"MediaPipe detector environment absent ({exc})")


@pytest.mark.slow
def test_detector_finds_the_person_on_most_frames_and_predict_runs(
        shared_data, detector_python, constant_checkpoint, training_store, tmp_path):
    video = shared_data / "videos" / "kinetics400_armwrestling.mp4"
    url = tmp_path / "video.zarr"
    built = CliRunner().invoke(synthgen_main, [
        "build-video", str(video), "--detector", "mediapipe", "--match-store", training_store,
        "--person-height", str(HEIGHT), "--out", str(url)])
    assert built.exit_code == 0, built.output
    opened = open_video_store(str(url))
    rows = [opened.reader.read_example(i, ("first_cover", "keypoint_confidence"))
            for i in range(opened.reader.num_examples)]
    confidence = np.concatenate([r["keypoint_confidence"][r["first_cover"]] for r in rows])
    n = probe(video).num_frames
    assert len(confidence) == n
    assert (confidence > 0).any(axis=1).mean() > 0.6  # a person on most frames (MediaPipe: 224 of 280)
    paths = predict(str(url), constant_checkpoint, tmp_path / "out", device="cpu",
                    log=lambda _: None)
    with np.load(paths["npz"]) as data:
        assert data["frame"].tolist() == list(range(n))
        assert (~data["total_occlusion"]).mean() > 0.5  # 7+ confident COCO-14 keypoints
