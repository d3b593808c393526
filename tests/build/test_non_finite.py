"""Non-finite inputs: a SURREAL clip with NaN in its pose, shape, joints or depth is skipped with a
reason (the build goes on), and the trainer refuses a store holding NaN, naming the example."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
import zarr

from synthgen.build.synthetic import build
from synthgen.config import Config
from synthgen.core.errors import NonFiniteError
from synthgen.sources.mat import load_mat, save_mat
from synthgen.sources.surreal import probe_clip, read_clip
from trainer.data import open_stores

CFG = Config(name="test").replace(clip={"length": 8}, store={"examples_per_shard": 2})


def _clips(root: Path) -> list[Path]:
    return sorted(root.rglob("*_c[0-9][0-9][0-9][0-9].mp4"))


def _poison_info(mp4: Path, key: str, value=np.nan) -> None:
    path = mp4.with_name(mp4.stem + "_info.mat")
    info = load_mat(path)
    values = np.array(info[key], dtype=np.float64)
    values.flat[values.size // 2] = value
    info[key] = values
    save_mat(path, info)


@pytest.fixture
def surreal(small_demo, tmp_path):
    root = tmp_path / "surreal"
    shutil.copytree(small_demo.surreal_dir, root)
    return root


@pytest.mark.parametrize("key,value", [("pose", np.nan), ("shape", np.inf), ("joints3D", np.nan),
                                       ("joints2D", -np.inf)])
def test_non_finite_info_variables_are_refused_naming_them(small_demo, surreal, key, value):
    mp4 = _clips(surreal)[0]
    _poison_info(mp4, key, value)
    for read in (probe_clip, lambda p: read_clip(p, start=0, length=4, smpl_dir=small_demo.smpl_dir)):
        with pytest.raises(NonFiniteError, match=rf"_info\.mat: non_finite: {key} has 1 NaN"):
            read(mp4)


def test_non_finite_depth_refuses_the_windows_that_use_it(small_demo, surreal):
    mp4 = _clips(surreal)[0]
    path = mp4.with_name(mp4.stem + "_depth.mat")
    depth = load_mat(path)
    depth["depth_10"] = np.full_like(np.asarray(depth["depth_10"]), np.nan)  # frame 9
    save_mat(path, depth)
    read_clip(mp4, start=0, length=8, smpl_dir=small_demo.smpl_dir)  # frames 0..7: fine
    with pytest.raises(NonFiniteError, match=r"_depth\.mat: non_finite: depth_3..10 has"):
        read_clip(mp4, start=2, length=8, smpl_dir=small_demo.smpl_dir)


def test_a_build_skips_a_clip_with_nan_pose_and_goes_on(small_demo, surreal, tmp_path):
    bad = _clips(surreal)[0]
    _poison_info(bad, "pose")
    summary = build(small_demo.kinetics_dir, surreal, str(tmp_path / "out.zarr"), num_examples=2,
                    seed=0, cfg=CFG, cache_dir=tmp_path / "cache", splits=None, serial=True,
                    smpl_dir=small_demo.smpl_dir, stream=io.StringIO())
    skipped = {(Path(s.file).name, s.reason) for s in summary.skipped}
    assert (bad.stem + "_info.mat", "non_finite") in skipped
    assert summary.examples == 2
    group = zarr.open_group(str(tmp_path / "out.zarr"), mode="r")
    assert str(bad) not in {p["path"] for p in group.attrs["sources"]["surreal"]}
    assert np.isfinite(group["pose"][:]).all()


def test_the_trainer_refuses_a_store_with_nan_naming_the_example(training_store, tmp_path):
    url = str(tmp_path / "nan.zarr")
    shutil.copytree(training_store, url)
    open_stores([url])
    group = zarr.open_group(url, mode="r+")
    betas = np.asarray(group["betas"][:])
    betas[2, 3] = np.nan
    group["betas"][:] = betas
    with pytest.raises(ValueError, match=r"nan\.zarr: example 2 has NaN or infinite values in "
                                         r"'betas'"):
        open_stores([url])
