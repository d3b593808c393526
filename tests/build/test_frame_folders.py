"""Frame folders: a frame that does not decode skips the folder (the video), not the person, and
the camera-motion cache key sees a frame changed in place."""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from synthgen.build.synthetic import build, discover_sources, plan_example
from synthgen.config import Config
from synthgen.core.errors import CorruptFileError
from synthgen.sources.kinetics import read_clip
from synthgen.sources.motion_cache import cache_key

CFG = Config(name="test").replace(clip={"length": 8}, store={"examples_per_shard": 2})


def _frame_folder(folder: Path, frames: int = 16) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    texture = cv2.resize(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8), (400, 300))
    for t in range(frames):
        cv2.imwrite(str(folder / f"frame_{t:04d}.png"), np.roll(texture, 2 * t, axis=1))
    return folder


def _break_in_place(frame: Path) -> None:
    """Overwrite a frame with garbage of the same size, keeping its and its folder's mtimes."""
    stat, folder_stat = frame.stat(), frame.parent.stat()
    frame.write_bytes(b"\x00" * stat.st_size)
    os.utime(frame, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.utime(frame.parent, ns=(folder_stat.st_atime_ns, folder_stat.st_mtime_ns))


def test_a_bad_frame_is_blamed_on_its_folder(tmp_path):
    folder = _frame_folder(tmp_path / "video")
    (folder / "frame_0005.png").write_bytes(b"not a png")
    read_clip(folder, start=6, length=8)  # frames 6..13 do not touch it
    with pytest.raises(CorruptFileError, match=r"video: corrupt: frame frame_0005\.png: ") as exc:
        read_clip(folder, start=0, length=8)
    assert exc.value.path == str(folder)


def test_the_cache_key_covers_every_frame_file(tmp_path):
    folder = _frame_folder(tmp_path / "video")
    cfg = Config()
    key = cache_key(folder, cfg.camera_motion, cfg.clip)
    frame = folder / "frame_0003.png"
    data = frame.read_bytes()
    frame.write_bytes(data[::-1])  # same size, same folder mtime
    os.utime(folder, ns=(folder.stat().st_atime_ns, folder.stat().st_mtime_ns))
    changed = cache_key(folder, cfg.camera_motion, cfg.clip)
    assert changed != key
    (folder / "frame_0016.png").write_bytes(data)
    assert cache_key(folder, cfg.camera_motion, cfg.clip) not in (key, changed)


def test_a_build_skips_the_folder_of_a_bad_frame_not_the_person(small_demo, tmp_path):
    kinetics, cache = tmp_path / "kinetics", tmp_path / "cache"
    shutil.copytree(small_demo.kinetics_dir, kinetics)
    folder = _frame_folder(kinetics / "folder_video")
    sources = discover_sources(kinetics, small_demo.surreal_dir, CFG, cache_dir=cache,
                               splits=None, stream=io.StringIO())
    video = [v.path for v in sources.videos].index(str(folder))
    seed = next(s for s in range(100)  # a seed whose first example draws the folder's frame 0..7
                if (p := plan_example(0, s, sources, CFG)).video == video and p.video_start <= 4)
    _break_in_place(folder / "frame_0004.png")  # after its camera motion was cached
    summary = build(kinetics, small_demo.surreal_dir, str(tmp_path / "out.zarr"), num_examples=2,
                    seed=seed, cfg=CFG, cache_dir=cache, splits=None, serial=True,
                    stream=io.StringIO())
    assert summary.examples == 2
    blamed = {s.file: s for s in summary.skipped}
    assert blamed[str(folder)].reason == "corrupt"
    assert "frame_0004.png" in blamed[str(folder)].detail
    assert not any("surreal" in path for path in blamed), blamed
