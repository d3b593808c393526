"""``synthgen build``: planning from the seed, byte-identical output whatever the execution, bad
inputs skipped with reasons, and resume after a real kill."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from synthgen import store
from synthgen.build.synthetic import PersonSource, Sources, VideoSource, build, plan_example, rebuild_example
from synthgen.core.camera import project
from synthgen.config import Config
from synthgen.sources.mat import mat_variables
from tests.core.smpl_check import rigid_fit, smplx_joints

#: Small clips and shards so a build takes seconds.
CFG = Config(name="test").replace(clip={"length": 8}, store={"examples_per_shard": 2})
NUM_EXAMPLES = 6


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _build(demo, out, *, cache, **kwargs):
    return build(demo.kinetics_dir, demo.surreal_dir, str(out), num_examples=NUM_EXAMPLES,
                 seed=kwargs.pop("seed", 3), cfg=CFG, cache_dir=cache, splits=None,
                 stream=kwargs.pop("stream", io.StringIO()), **kwargs)


@pytest.fixture(scope="module")
def reference(small_demo, tmp_path_factory):
    """An uninterrupted serial build, its cache and its file digests."""
    root = tmp_path_factory.mktemp("build")
    out, cache = root / "ref.zarr", root / "cache"
    summary = _build(small_demo, out, cache=cache, serial=True)
    return out, cache, _digest(out), summary


def test_plans_follow_from_seed_and_index_alone():
    sources = Sources(videos=(VideoSource("a.mp4", 40, (240, 426)), VideoSource("b.mp4", 9, (240, 320))),
                      people=(PersonSource("p.mp4", 100),), skipped=(), smpl_dir="smpl")
    a = plan_example(5, 1, sources, CFG)
    assert a == plan_example(5, 1, sources, CFG)
    assert a != plan_example(6, 1, sources, CFG) and a != plan_example(5, 2, sources, CFG)
    plans = [plan_example(i, 1, sources, CFG) for i in range(200)]
    for p in plans:
        video = sources.videos[p.video]
        assert 0 <= p.video_start <= video.num_frames - 8 and 0 <= p.person_start <= 92
        assert 0 <= p.crop_yx[0] <= video.frame_shape[0] - 240
        assert 0 <= p.crop_yx[1] <= video.frame_shape[1] - 320
    assert {p.video for p in plans} == {0, 1}
    excluded = plan_example(5, 1, sources, CFG, attempt=1, exclude_videos={0})
    assert excluded.video == 1 and excluded.seed != a.seed


def test_build_writes_every_example_with_consistent_arrays(reference):
    out, _, _, summary = reference
    assert summary.examples == NUM_EXAMPLES and summary.shards_built == 3
    ds = store.open_store(str(out))
    assert ds.sizes["example"] == NUM_EXAMPLES
    assert ds["rgb"].shape == (NUM_EXAMPLES, 8, 224, 224, 3)
    assert ds["flow"].shape == (NUM_EXAMPLES, 7, 224, 224, 2)
    assert ds.attrs["config"]["clip"]["length"] == 8
    assert ds.attrs["crop_flow"]["name"] == "dis"
    # Demo people ship ground-truth flow: the store keeps the ground-truth crop flow, whose
    # background (most of each crop) moves with the camera, scaled to crop pixels.
    assert ds.attrs["gt_crop_flow"] is True
    truth = ds["gt_crop_flow"].values
    assert truth.shape == ds["flow"].shape
    assert ds["gt_crop_flow"].attrs["quantum_px"] == ds["flow"].attrs["quantum_px"]
    scale = 224 / ds["boxes"].values[:, :-1, 2:3]
    camera = np.diff(ds["camera_motion"].values, axis=1) * scale
    np.testing.assert_allclose(np.median(truth, axis=(2, 3)), camera, atol=0.1)
    joints2d, boxes, crop = (ds[k].values for k in ("joints2d", "boxes", "joints2d_crop"))
    # The documented crop transform maps the frame joints to the stored crop joints.
    expected = (joints2d - boxes[..., None, :2]) * 224 / boxes[..., None, 2:3]
    np.testing.assert_allclose(crop, expected, atol=1e-3)
    # Camera motion is integrated with the centre frame as reference.
    assert np.all(ds["camera_motion"].values[:, 4] == 0)
    assert np.all(np.isin(ds["gender"].values, [0, 1]))
    assert ds["rgb"].values.any() and np.isfinite(ds["flow"].values).all()


def test_stored_joints3d_are_the_smpl_joints_of_the_stored_pose(reference, small_demo):
    """The store's joints3d: smplx's joints of the stored pose, betas and gender in camera metres
    (1 mm, one translation per frame), a proper rotation (det +1) of the unrotated body, and
    projected (plus the tracking offset) onto the stored joints2d within rounding."""
    out = reference[0]
    group = store.open_group(str(out))
    assert group.attrs["joints_convention"] == "smpl24_camera_posed"
    assert group.attrs["sources"]["smpl"] == str(Path(small_demo.smpl_dir).resolve())
    ds = store.open_store(str(out))
    errors = []
    for i in range(NUM_EXAMPLES):
        pose, betas, joints3d = (ds[k].values[i] for k in ("pose", "betas", "joints3d"))
        gender = store.GENDERS[int(ds["gender"].values[i])]
        offset = joints3d - smplx_joints(small_demo.smpl_dir, pose, betas, gender)
        assert np.linalg.norm(offset - offset[:, :1], axis=-1).max() < 1e-3
        unrotated = smplx_joints(small_demo.smpl_dir, np.c_[np.zeros((len(pose), 3)), pose[:, 3:]],
                                 betas, gender)
        for t in range(len(pose)):
            rotation, residual = rigid_fit(unrotated[t], joints3d[t])
            assert np.linalg.det(rotation) > 0 and residual < 1e-3
        tracked = project(joints3d) + ds["camera_motion"].values[i][:, None]
        errors.append(np.linalg.norm(tracked - ds["joints2d"].values[i], axis=-1))
    assert np.max(errors) <= np.sqrt(0.5) + 1e-3  # SURREAL's joints2D are rounded to pixels


def test_ray_build_is_byte_identical_to_serial(reference, small_demo, tmp_path):
    _, cache, digest, _ = reference
    out = tmp_path / "ray.zarr"
    _build(small_demo, out, cache=cache, num_cpus=2)
    assert _digest(out) == digest


def test_existing_store_needs_resume_or_overwrite_and_resume_checks_the_seed(reference, small_demo,
                                                                          tmp_path):
    ref, cache, _, _ = reference
    out = tmp_path / "copy.zarr"
    shutil.copytree(ref, out)
    with pytest.raises(FileExistsError, match="--resume"):
        _build(small_demo, out, cache=cache, serial=True)
    with pytest.raises(ValueError, match="cannot resume: the store's 'seed' differs"):
        _build(small_demo, out, cache=cache, serial=True, resume=True, seed=4)
    summary = _build(small_demo, out, cache=cache, serial=True, resume=True)
    assert summary.shards_built == 0 and summary.shards_reused == 3


def _declare_huge_frames(segm: Path) -> None:
    """Rewrite a ``_segm.mat`` as a tiny file whose every frame declares 100000x100000 uint8."""
    count = len(mat_variables(segm))
    with h5py.File(segm, "w") as f:
        for k in range(1, count + 1):
            frame = f.create_dataset(f"segm_{k}", shape=(100000, 100000), dtype=np.uint8, chunks=(100, 100))
            frame.attrs["MATLAB_class"] = np.bytes_("uint8")


def test_bad_inputs_are_skipped_with_reasons_and_the_build_goes_on(small_demo, tmp_path):
    kinetics, surreal = tmp_path / "kinetics", tmp_path / "surreal"
    shutil.copytree(small_demo.kinetics_dir, kinetics)
    shutil.copytree(small_demo.surreal_dir, surreal)
    (kinetics / "broken").mkdir()
    (kinetics / "broken" / "garbage.mp4").write_bytes(b"not a video at all" * 100)
    (kinetics / "broken" / "empty.webm").write_bytes(b"")
    (kinetics / "empty_folder").mkdir()
    info, segm = sorted(surreal.rglob("*_info.mat"))[0], sorted(surreal.rglob("*_segm.mat"))[1]
    info.write_bytes(info.read_bytes()[:200])  # truncated
    _declare_huge_frames(segm)
    summary = build(kinetics, surreal, str(tmp_path / "out.zarr"), num_examples=2, seed=0, cfg=CFG,
                    cache_dir=tmp_path / "cache", splits=None, smpl_dir=small_demo.smpl_dir,
                    serial=True, stream=io.StringIO())
    reasons = {Path(s.file).name: s.reason for s in summary.skipped}
    assert reasons["garbage.mp4"] == "corrupt"
    assert reasons["empty.webm"] == "empty"
    assert reasons[info.name] == "corrupt"
    assert reasons[segm.name] == "too_large"
    assert summary.examples == 2
    group = store.open_group(str(tmp_path / "out.zarr"))
    assert {Path(s["path"]).name for s in group.attrs["skipped"]} >= {"garbage.mp4", info.name}


def test_build_without_smpl_models_says_what_to_pass_in_one_line(small_demo, tmp_path):
    from click.testing import CliRunner

    from synthgen.cli.build import build as build_command

    surreal = tmp_path / "people" / "surreal"  # no 'smpl' beside it
    shutil.copytree(small_demo.surreal_dir, surreal)
    result = CliRunner().invoke(build_command, [
        "--kinetics", str(small_demo.kinetics_dir), "--surreal", str(surreal),
        "--out", str(tmp_path / "out.zarr"), "--serial", "--cache", str(tmp_path / "cache")])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and f"{surreal.parent / 'smpl'}: no such directory" in lines[0]
    assert "pass --smpl DIR" in lines[0]
    models = tmp_path / "models"
    shutil.copytree(small_demo.smpl_dir, models)
    (models / "SMPL_MALE.pkl").write_bytes(b"not a pickle")
    result = CliRunner().invoke(build_command, [
        "--kinetics", str(small_demo.kinetics_dir), "--surreal", str(surreal), "--smpl", str(models),
        "--out", str(tmp_path / "out.zarr"), "--serial", "--cache", str(tmp_path / "cache")])
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert "SMPL_MALE.pkl: corrupt or truncated pickle" in result.output
    assert not (tmp_path / "out.zarr").exists()


@pytest.mark.slow
def test_killed_build_resumes_to_the_same_bytes(reference, small_demo, tmp_path):
    _, cache, digest, _ = reference
    pipeline = tmp_path / "test.toml"
    pipeline.write_text('[clip]\nlength = 8\n[store]\nexamples_per_shard = 2\n')
    out = tmp_path / "killed.zarr"
    command = [sys.executable, "-m", "synthgen", "build", "--kinetics", str(small_demo.kinetics_dir),
               "--surreal", str(small_demo.surreal_dir), "--out", str(out), "--num-examples",
               str(NUM_EXAMPLES), "--seed", "3", "--pipeline", str(pipeline), "--cache", str(cache),
               "--split", "all", "--num-cpus", "1"]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 240
    done_marker = out / "shard_done" / "c" / "0"
    while time.monotonic() < deadline and proc.poll() is None:
        if done_marker.exists() or (out / "shard_done" / "c" / "1").exists():
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the build finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = store.finished_shards(store.open_group(str(out)))
    assert 0 < done.sum() < len(done), done
    resumed = subprocess.run(command + ["--resume"], capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert "already done" in resumed.stderr
    assert _digest(out) == digest


def test_any_example_rebuilds_alone_bit_identical(reference):
    out, cache, _, _ = reference
    group = store.open_group(str(out))
    for index in (0, NUM_EXAMPLES - 1):
        _, _, row = rebuild_example(str(out), index, cache_dir=cache)
        for name, value in row.items():
            np.testing.assert_array_equal(group[name][index], value, err_msg=name)
