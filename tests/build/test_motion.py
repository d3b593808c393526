"""The camera-motion cache build: one task per video on any executor, a bad video skipped with
its reason (in the run and in the cache's manifest), a second run served from the cache."""

from __future__ import annotations

import json

import pytest

from synthgen.build.executor import RayExecutor, SerialExecutor
from synthgen.build.motion import MANIFEST, build_cache
from synthgen.config import CameraMotionConfig, ClipConfig
from synthgen.core.errors import Skip
from synthgen.demo.backgrounds import make_demo_backgrounds

CFG = CameraMotionConfig()
CLIP = ClipConfig()


@pytest.fixture(scope="module")
def demo_videos(tmp_path_factory):
    """Two short demo backgrounds (12 frames)."""
    return make_demo_backgrounds(tmp_path_factory.mktemp("kinetics"), num_frames=12,
                                 num_videos=2, seed=0)


def test_build_cache_skips_corrupt_video_with_reason(demo_videos, tmp_path):
    broken = tmp_path / "videos" / "broken.mp4"
    broken.parent.mkdir()
    broken.write_bytes(b"not a video at all")
    good = demo_videos[0]
    run = build_cache([good, broken], tmp_path / "cache", cfg=CFG, clip=CLIP,
                      skipped=[Skip("empty.mp4", "empty")])
    assert run.computed == [str(good)]
    reasons = {skip.file: skip.reason for skip in run.skipped}
    assert reasons == {str(broken): "corrupt", "empty.mp4": "empty"}
    manifest = json.loads((tmp_path / "cache" / MANIFEST).read_text())
    assert {item["reason"] for item in manifest["skipped"]} == {"corrupt", "empty"}
    rerun = build_cache([good], tmp_path / "cache", cfg=CFG, clip=CLIP)
    assert rerun.cached == [str(good)] and not rerun.computed


def test_ray_and_serial_cache_builds_agree(demo_videos, tmp_path):
    serial = build_cache(demo_videos, tmp_path / "serial", cfg=CFG, clip=CLIP,
                         executor=SerialExecutor())
    ray = build_cache(demo_videos, tmp_path / "ray", cfg=CFG, clip=CLIP,
                      executor=RayExecutor(num_cpus=2))
    assert sorted(serial.computed) == sorted(ray.computed) == sorted(str(v) for v in demo_videos)
    files = sorted(p.name for p in (tmp_path / "serial").glob("*.npz"))
    assert files == sorted(p.name for p in (tmp_path / "ray").glob("*.npz")) and len(files) == 2
    for name in files:
        assert (tmp_path / "serial" / name).read_bytes() == (tmp_path / "ray" / name).read_bytes()
