"""Demo background videos: layout, determinism, motion ranges, and the ground-truth camera motion
checked against an independent sub-pixel registration of the frames the reader returns."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest

from synthgen.demo.backgrounds import (
    camera_track_path,
    ground_truth_camera_motion,
    load_camera_track,
    make_demo_backgrounds,
    make_fast_pan_videos,
)
from synthgen.core.errors import MissingFileError
from synthgen.sources.kinetics import cover_size, num_frames_30fps, read_clip, source_index
from synthgen.sources.video import probe


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    return root, make_demo_backgrounds(root, seed=0, test_size=True, num_frames=24)


def _named(paths, prefix):
    return next(p for p in paths if p.name.startswith(prefix))


def test_layout_containers_rates_and_sizes(demo):
    root, paths = demo
    assert len(paths) == 6 and all(p.parent.parent == root for p in paths)  # <root>/<class>/<video>
    assert len({p.parent.name for p in paths}) == 6
    assert {p.suffix for p in paths} == {".mp4", ".avi", ".mkv", ".webm", ""}
    folder = next(p for p in paths if p.is_dir())
    assert sorted(f.name for f in folder.iterdir())[:2] == ["img_00001.jpg", "img_00002.jpg"]
    tracks = [json.loads(camera_track_path(p).read_text()) for p in paths]
    assert {t["fps"] for t in tracks} == {30.0, 25.0, 24.0, 60.0}
    shapes = {(t["height"], t["width"]) for t in tracks}
    assert len(shapes) == 6
    assert any(h > w for h, w in shapes) and any(w / h > 1.7 for h, w in shapes)  # portrait, 16:9
    for p in paths:
        assert num_frames_30fps(probe(p)) >= 24


def test_full_size_resolutions(tmp_path):
    paths = make_demo_backgrounds(tmp_path, num_videos=1, num_frames=3)
    info = probe(paths[0])
    assert (info.height, info.width, info.fps, info.num_frames) == (240, 320, 30.0, 3)


def test_same_seed_gives_identical_files(tmp_path):
    def files(root):
        return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    a = make_demo_backgrounds(tmp_path / "a", seed=5, test_size=True, num_frames=6)
    make_demo_backgrounds(tmp_path / "b", seed=5, test_size=True, num_frames=6)
    make_demo_backgrounds(tmp_path / "c", seed=6, test_size=True, num_frames=6)
    fa, fb, fc = files(tmp_path / "a"), files(tmp_path / "b"), files(tmp_path / "c")
    assert fa.keys() == fb.keys() and len(fa) > 6
    assert [k for k in fa if fa[k] != fb[k]] == []  # includes .mkv/.webm (muxer UIDs pinned)
    assert fa[a[0].relative_to(tmp_path / "a").as_posix()] != fc[a[0].relative_to(tmp_path / "a").as_posix()]


def _register(clip_frames, gt, margin=16):
    """Independent estimates of the shift of frame t+1 relative to frame t (x, y), per pair:
    ECC translation and cv2.phaseCorrelate, on windows pre-aligned by the integer part of ``gt``."""
    gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY).astype(np.float32) for f in clip_frames]
    h, w = gray[0].shape
    ecc, phase = [], []
    for t in range(len(gt)):
        nx, ny = np.round(gt[t]).astype(int)
        a = gray[t][margin:h - margin, margin:w - margin]
        b = gray[t + 1][margin + ny:h - margin + ny, margin + nx:w - margin + nx]
        _, warp = cv2.findTransformECC(a, b, np.eye(2, 3, dtype=np.float32), cv2.MOTION_TRANSLATION,
                                       (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 100, 1e-6), None, 1)
        ecc.append(warp[:, 2] + [nx, ny])
        window = cv2.createHanningWindow(a.shape[::-1], cv2.CV_64F)
        (dx, dy), _ = cv2.phaseCorrelate(a.astype(np.float64), b.astype(np.float64), window)
        phase.append([dx + nx, dy + ny])
    return np.array(ecc), np.array(phase)


@pytest.mark.parametrize("name", ["pan_tissue", "fast_camera"])  # 30 fps MJPG; 60 fps mp4v
@pytest.mark.parametrize("corner", [False, True])
def test_ground_truth_matches_registration(demo, name, corner):
    """On the videos without moving objects, the GT camera motion agrees with a sub-pixel
    registration of the reader's frames to well under 0.1 px (sign: optical flow)."""
    _, paths = demo
    path = _named(paths, name)
    info = probe(path)
    rh, rw, _ = cover_size(info.height, info.width)
    crop = (rh - 240, rw - 320) if corner else None
    clip = read_clip(path, start=0, length=num_frames_30fps(info), crop_yx=crop, info=info)
    gt = ground_truth_camera_motion(path, crop_yx=crop)
    assert gt.shape == (clip.num_frames - 1, 2)
    assert np.abs(gt).max() > 2.0  # real motion, so a sign or index error would show
    ecc, phase = _register(clip.frames, gt)
    ecc_error = np.abs(ecc - gt)
    assert np.median(ecc_error) < 0.04 and ecc_error.max() < 0.12
    # cv2.phaseCorrelate's sub-pixel centroid is itself biased by 0.05-0.3 px on these smooth
    # frames, so it only confirms the GT to a coarser tolerance (it would catch sign/index errors).
    assert np.median(np.abs(phase - gt)) < 0.4


def _without_objects(path, folder):
    """A copy of ``path``'s camera track with the moving objects removed, beside a stand-in name."""
    track = json.loads(camera_track_path(path).read_text())
    track["objects"] = []
    folder.mkdir(exist_ok=True)
    stand_in = folder / path.name
    camera_track_path(stand_in).write_text(json.dumps(track))
    return stand_in


def test_gt_of_zoom_at_window_centre(demo, tmp_path):
    """Without objects, the GT of a zoom at two windows differs by the zoom field between their centres."""
    _, paths = demo
    path = _named(paths, "zoom_chelsea")
    track = load_camera_track(path)
    assert 1.005 < track["magnification"].max() / track["magnification"].min() < 1.07
    info = probe(path)
    rh, rw, _ = cover_size(info.height, info.width)
    assert (rh, rw) == (240, 320)  # no room for a second window: test the formula on the portrait one
    path = _named(paths, "portrait_motorcycle")
    info = probe(path)
    rh, rw, _ = cover_size(info.height, info.width)
    k = load_camera_track(path)["magnification"]
    bare = _without_objects(path, tmp_path)
    top = ground_truth_camera_motion(bare, crop_yx=(0, 0))
    bottom = ground_truth_camera_motion(bare, crop_yx=(rh - 240, 0))
    idx = source_index(np.arange(len(top) + 1), info.fps)
    ratio = k[idx[1:]] / k[idx[:-1]]
    dy_video = (rh - 240) * info.height / rh  # distance between the window centres, video pixels
    np.testing.assert_allclose(bottom[:, 1] - top[:, 1], (ratio - 1) * dy_video * rh / info.height, atol=1e-9)
    np.testing.assert_allclose(bottom[:, 0], top[:, 0], atol=1e-9)


def test_gt_is_median_over_visible_background(demo, tmp_path):
    """Objects only matter to the GT through a zoom: a pan moves every static pixel alike, while a
    zoom's field is symmetric about the window centre only until an object hides one side."""
    _, paths = demo
    coins = _named(paths, "frames_coins")  # objects, no zoom
    assert load_camera_track(coins)["objects"]
    np.testing.assert_allclose(ground_truth_camera_motion(coins),
                               ground_truth_camera_motion(_without_objects(coins, tmp_path / "a")), atol=1e-9)
    wide = _named(paths, "wide_coffee")  # objects and zoom
    shift = np.abs(ground_truth_camera_motion(wide) - ground_truth_camera_motion(_without_objects(wide, tmp_path / "b")))
    assert 0.005 < shift.max() < 0.2


def test_motion_is_smooth_subpixel_and_bounded(tmp_path):
    paths = make_demo_backgrounds(tmp_path, seed=1, test_size=True, num_frames=72)
    for path in paths:
        gt = ground_truth_camera_motion(path)
        info = probe(path)
        idx = source_index(np.arange(len(gt) + 1), info.fps)
        moving = gt[idx[1:] != idx[:-1]]
        assert np.abs(gt).max() <= 6.5, path.name
        assert np.abs(moving).max() > 1.0, path.name
        fractions = np.abs(moving - np.round(moving))
        assert fractions.max() > 0.2 and np.std(fractions) > 0.05, path.name  # genuinely sub-pixel
        np.testing.assert_array_equal(gt[idx[1:] == idx[:-1]], 0.0)  # repeated source frame: no motion


def test_objects_stay_small_and_inside(demo):
    """Objects together cover at most a third of any 240x320 output window, and move."""
    _, paths = demo
    with_objects = 0
    for path in paths:
        track = json.loads(camera_track_path(path).read_text())
        scale = cover_size(track["height"], track["width"])[2]
        window_area = (240 / scale) * (320 / scale)  # the reader's output window in video pixels
        total = 0.0
        for obj in track["objects"]:
            w, h = obj["size_wh"]
            total += math.pi / 4 * w * h / window_area
            centres = np.array(obj["centre_xy"])
            assert len(centres) == track["num_frames"]
            assert (centres[:, 0] >= w / 2 - 1e-6).all() and (centres[:, 0] <= track["width"] - w / 2 + 1e-6).all()
            assert np.abs(np.diff(centres, axis=0)).max() > 0.5  # objects move
        assert total <= 1 / 3, path.name
        with_objects += bool(track["objects"])
    assert with_objects >= 3
    assert not load_camera_track(_named(paths, "pan_tissue"))["objects"]
    assert not load_camera_track(_named(paths, "fast_camera"))["objects"]


def test_gt_needs_a_track(tmp_path):
    video = tmp_path / "plain.mp4"
    video.write_bytes(b"x")
    with pytest.raises(MissingFileError, match="plain.camera_motion.json"):
        ground_truth_camera_motion(video)


def test_foreign_track_file_rejected(tmp_path):
    from synthgen.core.errors import CorruptFileError

    (tmp_path / "clip.camera_motion.json").write_text('{"format": "other"}')
    with pytest.raises(CorruptFileError, match="clip.camera_motion.json"):
        ground_truth_camera_motion(tmp_path / "clip.mp4")


@pytest.fixture(scope="module")
def fast_pans(tmp_path_factory):
    return make_fast_pan_videos(tmp_path_factory.mktemp("fast"), seed=0, num_frames=30)


def test_fast_pans_reach_25_px_per_frame_and_match_registration(fast_pans):
    """Three variants; pure translation reaching >= 25 px per frame, to and fro; the GT agrees with
    an ECC registration of the reader's frames (motion-blurred frames included)."""
    assert [p.stem for p in fast_pans] == ["whip_textured", "whip_low_texture", "whip_blurred"]
    for path in fast_pans:
        info = probe(path)
        assert (info.height, info.width, info.fps) == (240, 320, 30.0)
        gt = ground_truth_camera_motion(path)
        speed = np.abs(gt).max(axis=1)
        assert speed.max() >= 25 and (speed >= 25).sum() >= 10
        assert (gt[:, 0] > 5).any() and (gt[:, 0] < -5).any()  # pans back
        if path.stem != "whip_low_texture":
            clip = read_clip(path, start=0, length=30, info=info)
            ecc, _ = _register(clip.frames, gt, margin=32)
            assert np.median(np.abs(ecc - gt)) < 0.05, path.stem


def test_fast_pan_variants_differ_in_texture_and_blur(fast_pans):
    """Low-texture frames have far weaker gradients; blurred frames are smoother along the pan."""
    def gradients(path, frame):
        gray = read_clip(path, start=frame, length=1).frames[0].mean(axis=-1)
        return np.abs(np.diff(gray, axis=1)).mean(), np.abs(np.diff(gray, axis=0)).mean()

    textured, low = (gradients(p, 10) for p in fast_pans[:2])  # frame 10: at full speed
    assert low[0] < 0.4 * textured[0]
    (fast_x, fast_y), (still_x, still_y) = gradients(fast_pans[2], 10), gradients(fast_pans[2], 24)
    assert fast_x / fast_y < 0.8 * still_x / still_y  # frame 24: the pan reverses; mostly horizontal


def test_fast_pans_are_deterministic(tmp_path):
    a = make_fast_pan_videos(tmp_path / "a", seed=3, num_frames=4)
    b = make_fast_pan_videos(tmp_path / "b", seed=3, num_frames=4)
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
