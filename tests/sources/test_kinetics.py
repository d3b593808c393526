"""Kinetics reader: discovery, probing, verified seeks, 30 fps resampling, cover-resize + crop, bad input."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import cv2
import numpy as np
import pytest

from synthgen.demo.backgrounds import camera_track_path, make_demo_backgrounds
from synthgen.core.errors import (
    CorruptFileError,
    EmptyInputError,
    MissingFileError,
    NoVideoStreamError,
    ShortClipError,
    Skip,
)
from synthgen.sources.kinetics import (
    cover_size,
    find_videos,
    iter_resized_frames,
    num_frames_30fps,
    probe_videos,
    read_clip,
    resize_to_cover,
    source_index,
)
from synthgen.sources.video import probe

NUM_FRAMES = 16  # per demo video, at 30 fps


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The test-size demo set: mp4, avi, mkv, webm, a jpg folder; 30/25/24/60 fps; sources smaller
    than 240x320 in places (so the reader enlarges)."""
    root = tmp_path_factory.mktemp("demo_backgrounds")
    paths = make_demo_backgrounds(root, seed=3, test_size=True, num_frames=NUM_FRAMES)
    return root, paths


def _by_kind(paths, kind):
    return next(p for p in paths if (p.suffix.lstrip(".") or "frames") == kind)


def _full_decode(path):
    """Every source frame (RGB) by plain sequential decoding, the reference for seek tests."""
    if path.is_dir():
        return [cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in sorted(path.glob("*.jpg"))]
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, bgr = cap.read()
        if not ok:
            return frames
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def test_find_videos_layout_and_skips(demo, tmp_path):
    root, paths = demo
    videos, skipped = find_videos(root)
    assert set(videos) == set(paths)
    assert len(videos) == 6 and skipped == []  # the .camera_motion.json files are ignored
    assert any(v.is_dir() for v in videos)

    (tmp_path / "class_a").mkdir()
    (tmp_path / "class_a" / "b.mp4").write_bytes(b"x")
    (tmp_path / "class_a" / "a.MKV").write_bytes(b"x")
    (tmp_path / "class_a" / "notes.txt").write_text("not a video")
    (tmp_path / "class_a" / "zero.webm").write_bytes(b"")
    (tmp_path / "empty_class").mkdir()
    (tmp_path / "frames" / "vid_1").mkdir(parents=True)
    for i in (10, 2, 1):
        (tmp_path / "frames" / "vid_1" / f"img_{i}.png").write_bytes(b"x")
    videos, skipped = find_videos(tmp_path)
    assert [v.relative_to(tmp_path).as_posix() for v in videos] == ["class_a/a.MKV", "class_a/b.mp4", "frames/vid_1"]
    reasons = {Path(s.file).name: s.reason for s in skipped}
    assert reasons == {"zero.webm": "empty", "empty_class": "empty"}
    assert find_videos(videos[0]) == ([videos[0]], [])


def test_find_videos_empty_and_missing_root(tmp_path):
    assert find_videos(tmp_path) == ([], [Skip(tmp_path, "empty", "directory holds no video files or frame images")])
    with pytest.raises(MissingFileError, match="nope"):
        find_videos(tmp_path / "nope")


@pytest.mark.parametrize("kind", ["mp4", "avi", "mkv", "webm", "frames"])
def test_probe_matches_written_video(demo, kind):
    _, paths = demo
    path = _by_kind(paths, kind)
    track = json.loads(camera_track_path(path).read_text())
    info = probe(path)
    assert (info.fps, info.num_frames, info.width, info.height) == (
        track["fps"], track["num_frames"], track["width"], track["height"])
    assert info.is_folder == (kind == "frames")
    assert num_frames_30fps(info) >= NUM_FRAMES


@pytest.mark.parametrize("kind", ["mp4", "avi", "mkv", "webm", "frames"])
def test_window_read_equals_full_decode(demo, kind):
    """A seeked window gives exactly the frames of a full decode at the resampled indices."""
    _, paths = demo
    path = _by_kind(paths, kind)
    info = probe(path)
    reference = _full_decode(path)
    assert len(reference) == info.num_frames
    start, length = 9, 5
    rh, rw, _ = cover_size(info.height, info.width)
    crop = (rh - 240, rw - 320)  # bottom-right window
    clip = read_clip(path, start=start, length=length, crop_yx=crop)
    assert clip.frames.shape == (length, 240, 320, 3) and clip.frames.dtype == np.uint8
    assert clip.start == start and clip.crop_yx == crop
    for t, index in enumerate(source_index(np.arange(start, start + length), info.fps)):
        expected = resize_to_cover(reference[index])[crop[0]:crop[0] + 240, crop[1]:crop[1] + 320]
        np.testing.assert_array_equal(clip.frames[t], expected)
    full = list(iter_resized_frames(path, info=info))
    assert len(full) == num_frames_30fps(info) and full[0].shape == (rh, rw, 3)
    np.testing.assert_array_equal(np.stack(full[start:start + length])[:, crop[0]:crop[0] + 240,
                                                                       crop[1]:crop[1] + 320], clip.frames)


def test_source_index_nearest_frame():
    # 25 fps: output time i/30 -> source i*25/30 = 0, .83, 1.67, 2.5 (tie -> later), 3.33, 4.17, 5
    np.testing.assert_array_equal(source_index(np.arange(7), 25.0), [0, 1, 2, 3, 3, 4, 5])
    np.testing.assert_array_equal(source_index(np.arange(5), 60.0), [0, 2, 4, 6, 8])
    np.testing.assert_array_equal(source_index(np.arange(5), 24.0), [0, 1, 2, 2, 3])
    np.testing.assert_array_equal(source_index(np.arange(4), 30.0), [0, 1, 2, 3])


def test_num_frames_30fps_counts():
    from synthgen.sources.video import VideoInfo

    def n(fps, frames):
        return num_frames_30fps(VideoInfo("x", fps, frames, 320, 240, frames))

    assert n(30.0, 31) == 31
    assert n(25.0, 100) == 120  # i < (100 - 0.5) * 30 / 25 = 119.4
    assert n(60.0, 120) == 60
    assert n(60.0, 1) == 1
    for fps, frames in [(24.0, 58), (29.97, 300), (25.0, 7)]:
        count = n(fps, frames)
        assert source_index(count - 1, fps) <= frames - 1 < source_index(count, fps)


@pytest.mark.parametrize("kind", ["zoom", "fast"])
def test_resampled_sources_25_and_60_fps(demo, kind):
    """25 fps repeats source frames, 60 fps skips every other one."""
    _, paths = demo
    path = next(p for p in paths if p.name.startswith(kind))
    info = probe(path)
    assert info.fps == {"zoom": 25.0, "fast": 60.0}[kind]
    reference = _full_decode(path)
    clip = read_clip(path, start=0, length=12, crop_yx=(0, 0))
    expected = {"zoom": [0, 1, 2, 3, 3, 4, 5, 6, 7, 8, 8, 9], "fast": list(range(0, 24, 2))}[kind]
    for t, index in enumerate(expected):
        np.testing.assert_array_equal(clip.frames[t], resize_to_cover(reference[index])[:240, :320])


@pytest.mark.parametrize(("hw", "expected"), [
    ((240, 320), (240, 320, 1.0)),
    ((360, 480), (240, 320, 240 / 360)),
    ((480, 854), (240, 427, 0.5)),        # 16:9 landscape: height matches
    ((1080, 1920), (240, 427, 240 / 1080)),
    ((480, 272), (565, 320, 320 / 272)),  # portrait: width matches, enlarged
    ((120, 160), (240, 320, 2.0)),
    ((256, 340), (241, 320, 320 / 340)),
])
def test_cover_size(hw, expected):
    rh, rw, scale = cover_size(*hw)
    assert (rh, rw) == expected[:2] and scale == pytest.approx(expected[2])
    assert (rh == 240 and rw >= 320) or (rw == 320 and rh >= 240)


@pytest.mark.parametrize("kind", ["mp4", "mkv", "webm"])
def test_geometry_of_demo_videos(demo, kind):
    _, paths = demo
    path = _by_kind(paths, kind)
    info = probe(path)
    clip = read_clip(path, start=0, length=2, info=info)
    rh, rw, scale = cover_size(info.height, info.width)
    assert clip.frames.shape == (2, 240, 320, 3)
    assert clip.crop_yx == ((rh - 240) // 2, (rw - 320) // 2)  # centred without crop_yx or rng
    assert clip.scale == pytest.approx(scale)
    assert next(iter_resized_frames(path, info=info)).shape == (rh, rw, 3)


def test_random_crop_is_deterministic(demo):
    _, paths = demo
    path = _by_kind(paths, "webm")  # portrait: taller than 240 after resizing, room to move vertically
    rh, rw, _ = cover_size(probe(path).height, probe(path).width)
    assert rw == 320 and rh > 400
    a = read_clip(path, start=1, length=3, rng=np.random.default_rng(7))
    b = read_clip(path, start=1, length=3, rng=np.random.default_rng(7))
    assert a.crop_yx == b.crop_yx
    np.testing.assert_array_equal(a.frames, b.frames)
    crops = {read_clip(path, start=1, length=1, rng=np.random.default_rng(s)).crop_yx for s in range(8)}
    assert len(crops) > 1 and all(x == 0 and 0 <= y <= rh - 240 for y, x in crops)
    with pytest.raises(ValueError, match="does not fit"):
        read_clip(path, start=0, length=1, crop_yx=(400, 0))


def test_short_clip_names_file_and_counts(demo):
    _, paths = demo
    path = _by_kind(paths, "mp4")
    available = num_frames_30fps(probe(path))
    with pytest.raises(ShortClipError, match=rf"{path.name}.*{available} frames available.*asked for 31"):
        read_clip(path, start=0, length=31)
    with pytest.raises(ShortClipError):
        read_clip(path, start=available - 2, length=3)
    assert read_clip(path, start=available - 3, length=3).num_frames == 3


def _write_wav(path):
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(np.zeros(800, np.int16).tobytes())


def test_bad_files_raise_typed_errors(demo, tmp_path):
    _, paths = demo
    cases = {}
    cases["missing.mp4"] = MissingFileError
    (tmp_path / "empty.mp4").write_bytes(b"")
    cases["empty.mp4"] = EmptyInputError
    data = _by_kind(paths, "mp4").read_bytes()
    (tmp_path / "truncated.mp4").write_bytes(data[: len(data) // 2])  # index ('moov') is at the end
    cases["truncated.mp4"] = CorruptFileError
    (tmp_path / "garbage.mkv").write_bytes(np.random.default_rng(0).integers(0, 256, 4096, np.uint8).tobytes())
    cases["garbage.mkv"] = CorruptFileError
    (tmp_path / "text.mp4").write_text("this is not a video\n" * 20)
    cases["text.mp4"] = CorruptFileError
    _write_wav(tmp_path / "audio.mp4")
    cases["audio.mp4"] = NoVideoStreamError
    (tmp_path / "no_frames").mkdir()
    (tmp_path / "no_frames" / "readme.txt").write_text("x")
    cases["no_frames"] = EmptyInputError
    for name, error in cases.items():
        with pytest.raises(error, match=name):
            probe(tmp_path / name)
    infos, skipped = probe_videos([tmp_path / n for n in cases] + [_by_kind(paths, "mp4")], min_frames=NUM_FRAMES)
    assert [i.path for i in infos] == [str(_by_kind(paths, "mp4"))]
    assert [skip.reason for skip in skipped] == [
        "missing_file", "empty", "corrupt", "corrupt", "corrupt", "no_video_stream", "empty"]
    _, too_short = probe_videos([_by_kind(paths, "mp4")], min_frames=NUM_FRAMES + 100)
    assert too_short[0].reason == "too_short" and too_short[0].detail.endswith(f"fewer than {NUM_FRAMES + 100}")


def test_truncated_matroska_counts_decodable_frames(demo, tmp_path):
    """A cut-off mkv still opens: probe reports the frames that decode, not the container's claim."""
    _, paths = demo
    data = _by_kind(paths, "mkv").read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) // 2])
    info = probe(cut)
    assert 0 < info.num_frames < info.claimed_frames
    assert len(_full_decode(cut)) == info.num_frames
    with pytest.raises(ShortClipError, match="cut.mkv"):
        read_clip(cut, start=0, length=NUM_FRAMES, info=info)


def test_corrupt_frame_in_folder(demo, tmp_path):
    _, paths = demo
    folder = tmp_path / "vid"
    folder.mkdir()
    images = sorted(_by_kind(paths, "frames").glob("*.jpg"))
    for image in images[:6]:
        (folder / image.name).write_bytes(image.read_bytes())
    (folder / images[3].name).write_bytes(b"not a jpeg")
    assert probe(folder, folder_fps=25.0).fps == 25.0
    read_clip(folder, start=0, length=3)
    with pytest.raises(CorruptFileError, match=images[3].name):
        read_clip(folder, start=0, length=5)


def test_real_h264_clips(shared_data):
    """The real third-party H.264 clips: probe, a seeked window, resized/cropped shapes."""
    videos, skipped = find_videos(shared_data / "videos")
    assert skipped == [] and len(videos) >= 2
    by_name = {v.name: v for v in videos}
    pool = probe(by_name["handheld_pool_32frames.mp4"])
    assert (pool.fps, pool.num_frames, pool.width, pool.height) == (30.0, 32, 340, 256)
    kinetics = probe(by_name["kinetics400_armwrestling.mp4"])
    assert (kinetics.fps, kinetics.num_frames, kinetics.width, kinetics.height) == (28.0, 280, 340, 256)
    assert num_frames_30fps(kinetics) == 300
    reference = _full_decode(by_name["kinetics400_armwrestling.mp4"])
    clip = read_clip(by_name["kinetics400_armwrestling.mp4"], start=150, length=31, crop_yx=(1, 0), info=kinetics)
    assert clip.frames.shape == (31, 240, 320, 3) and clip.scale == pytest.approx(320 / 340)
    for t, index in enumerate(source_index(np.arange(150, 181), 28.0)):
        np.testing.assert_array_equal(clip.frames[t], resize_to_cover(reference[index])[1:241, :320])
    frames = iter_resized_frames(by_name["handheld_pool_32frames.mp4"], info=pool)
    assert sum(1 for f in frames if f.shape == (241, 320, 3)) == 32


@pytest.mark.parametrize("kind", ["mp4", "avi", "mkv", "webm"])
def test_seek_lands_exactly_and_fallback_gives_same_frames(demo, kind, monkeypatch):
    """Seeks in the demo containers land where asked (no silent full decode); a failed seek
    falls back to decoding from frame 0 with identical output."""
    from synthgen.sources import video

    _, paths = demo
    path = _by_kind(paths, kind)
    info = probe(path)
    cap = video.open_capture(path)
    assert video._seek(cap, info.num_frames - 2, info.fps) == info.num_frames - 2
    cap.release()
    seeked = read_clip(path, start=7, length=4, info=info).frames
    monkeypatch.setattr(video, "_seek", lambda cap, index, fps: -1)
    np.testing.assert_array_equal(read_clip(path, start=7, length=4, info=info).frames, seeked)


def test_find_videos_reports_broken_links_and_does_not_follow_loops(tmp_path):
    """A link back to a parent listed the same video ~40 times; a broken link was left unsaid."""
    (tmp_path / "cls").mkdir()
    (tmp_path / "cls" / "a.mp4").write_bytes(b"not empty")
    (tmp_path / "cls" / "up").symlink_to("..")
    (tmp_path / "cls" / "gone.mp4").symlink_to(tmp_path / "nowhere.mp4")
    videos, skipped = find_videos(tmp_path)
    assert videos == [tmp_path / "cls" / "a.mp4"]
    assert [(s.file, s.reason) for s in skipped] == [(str(tmp_path / "cls" / "gone.mp4"),
                                                      "missing_file")]
    assert "broken symbolic link" in skipped[0].detail
