"""The shard engine: create, lock, resume (only unfinished shards, refused on other inputs),
skips into the manifest, summary, and the GPU request every crop-flow job makes."""

from __future__ import annotations

import io

import numpy as np
import pytest

from synthgen import store
from synthgen.build.engine import Job, ShardResult, StorePlan, build_store, flow_task_options
from synthgen.build.executor import RayExecutor, SerialExecutor
from synthgen.build.lock import StoreLockedError, store_lock
from synthgen.build.synthetic import SyntheticJob
from synthgen.build.threedpw import ThreeDPWJob
from synthgen.config import Config
from synthgen.core.errors import Skip

CLIP, SIZE, PER_SHARD, NUM = 3, 16, 2, 5


def toy_shard(task: tuple, tick) -> ShardResult:
    """Task ``(url, shard, rows, fail)``: every array of a video store row as zeros,
    ``frame_index`` the row's index."""
    url, shard, rows, fail = task
    if fail:
        raise OSError(f"shard {shard} could not be read")
    group = store.open_group(url, mode="r+")
    arrays = {name: np.zeros((len(rows), *spec.shape), spec.dtype)
              for name, spec in store.full_schema(group.attrs).items()}
    arrays["frame_index"][:] = np.asarray(rows, np.int32)[:, None]
    for _ in rows:
        tick()
    store.write_shard(group, shard, arrays)
    return ShardResult(shard, (Skip(f"input{shard}", "corrupt", "x"), Skip("shared", "empty")))


class ToyJob(Job):
    desc = "rows"
    run_shard = staticmethod(toy_shard)

    def __init__(self, *, fail=(), tag="a"):
        self.fail, self.tag, self.built = set(fail), tag, []

    def prepare(self, executor, stream):
        attrs = {"crop_flow": None, "tag": self.tag, "skipped": [Skip("found", "too_short").to_dict()],
                 "summary": None}
        return StorePlan(num_examples=NUM, num_frames=CLIP, crop_size=SIZE,
                         examples_per_shard=PER_SHARD, attrs=attrs, resume_keys=("tag",),
                         kind="video", omit=("flow",))

    def tasks(self, url, group, shards):
        self.built += shards
        return [(url, s, tuple(range(store.shard_slice(group, s).start,
                                     store.shard_slice(group, s).stop)), s in self.fail)
                for s in shards]

    def summary(self, group):
        return {"rows": int(np.asarray(group["frame_index"][:, 0]).sum())}


def test_a_failed_shard_is_kept_out_and_resume_makes_only_it(tmp_path):
    url, stream = str(tmp_path / "toy.zarr"), io.StringIO()
    with pytest.raises(RuntimeError, match=r"1 shards failed .*--resume\): shard 1: OSError"):
        build_store(ToyJob(fail={1}), url, executor=SerialExecutor(), stream=stream)
    group = store.open_group(url)
    assert store.finished_shards(group).tolist() == [True, False, True]
    with pytest.raises(FileExistsError, match="--resume"):
        build_store(ToyJob(), url, executor=SerialExecutor(), stream=stream)
    job = ToyJob()
    run = build_store(job, url, executor=SerialExecutor(), resume=True, stream=stream)
    assert job.built == [1] and (run.shards_built, run.shards_reused) == (1, 2)
    group = store.open_group(url)
    assert np.asarray(group["frame_index"][:, 0]).tolist() == list(range(NUM))
    # The manifest: discovery's skip and every shard's, unique and sorted, in readable form.
    assert group.attrs["skipped"] == [s.to_dict() for s in sorted(
        {Skip("found", "too_short"), Skip("shared", "empty")}
        | {Skip(f"input{s}", "corrupt", "x") for s in range(3)})]
    assert run.skipped == tuple(Skip.from_dict(s) for s in group.attrs["skipped"])
    assert group.attrs["summary"]["rows"] == sum(range(NUM))
    assert group.attrs["summary"]["skipped_inputs"] == 5
    assert "building 5 rows in 3 shards of 2 (2 already done)" in stream.getvalue()


def test_resume_refuses_a_store_of_other_inputs(tmp_path):
    url = str(tmp_path / "toy.zarr")
    build_store(ToyJob(), url, executor=SerialExecutor(), stream=io.StringIO())
    with pytest.raises(ValueError, match="cannot resume: the store's 'tag' differs"):
        build_store(ToyJob(tag="b"), url, executor=SerialExecutor(), resume=True,
                    stream=io.StringIO())


def test_ray_and_serial_engines_write_the_same_bytes(tmp_path):
    serial, ray = tmp_path / "serial.zarr", tmp_path / "ray.zarr"
    build_store(ToyJob(), str(serial), executor=SerialExecutor(), stream=io.StringIO())
    build_store(ToyJob(), str(ray), executor=RayExecutor(num_cpus=2), stream=io.StringIO())
    files = sorted(p.relative_to(serial) for p in serial.rglob("c/*") if p.is_file())
    assert files and files == sorted(p.relative_to(ray) for p in ray.rglob("c/*") if p.is_file())
    assert all((serial / f).read_bytes() == (ray / f).read_bytes() for f in files)


def test_the_lock_is_taken_before_anything_is_made(tmp_path):
    url = str(tmp_path / "toy.zarr")
    with store_lock(url), pytest.raises(StoreLockedError):
        build_store(ToyJob(), url, executor=SerialExecutor(), stream=io.StringIO())
    assert not (tmp_path / "toy.zarr").exists()


class GPUCluster(RayExecutor):
    """A Ray executor that reports GPUs without a cluster (the request is what is tested)."""

    def gpus(self) -> float:
        return 2.0


ON_GPU = Config().replace(crop_flow={"backend": "tvl1_torch", "device": "cuda", "gpu_fraction": 0.5})


def test_shard_tasks_ask_for_a_gpu_share_only_when_crop_flow_runs_on_cuda():
    assert flow_task_options(Config().crop_flow, GPUCluster()) == {"num_cpus": 1}
    dis_on_cuda = ON_GPU.replace(crop_flow={"backend": "dis"})     # DIS never uses the GPU
    assert flow_task_options(dis_on_cuda.crop_flow, GPUCluster()) == {"num_cpus": 1}
    with pytest.raises(ValueError, match="use --flow-device cuda"):
        flow_task_options(ON_GPU.replace(crop_flow={"device": "cuda:1"}).crop_flow, GPUCluster())
    assert flow_task_options(ON_GPU.crop_flow, SerialExecutor()) == {"num_cpus": 1}
    assert flow_task_options(ON_GPU.crop_flow, GPUCluster()) == {"num_cpus": 1, "num_gpus": 0.5}
    with pytest.raises(RuntimeError, match="no GPU"):  # not connected to a cluster with GPUs
        flow_task_options(ON_GPU.crop_flow, RayExecutor())


@pytest.mark.parametrize("job", [
    SyntheticJob("k", "s", num_examples=1, seed=0, cfg=ON_GPU, flow_backend=None, cache_dir="c",
                 splits=None, smpl_dir=None),
    ThreeDPWJob("root", cfg=ON_GPU, crop_flow={}, splits=("test",)),
], ids=["synthetic", "3dpw"])
def test_every_crop_flow_job_makes_the_gpu_request(job):
    assert job.task_options(GPUCluster()) == {"num_cpus": 1, "num_gpus": 0.5}
    assert job.task_options(SerialExecutor()) == {"num_cpus": 1}


@pytest.mark.parametrize("damage,problem", [("truncate", "shard index checksum mismatch"),
                                            ("delete", "shard file missing")])
def test_resume_builds_a_damaged_finished_shard_again(tmp_path, damage, problem):
    """A truncated or deleted file of a finished shard was kept as finished: the resumed build
    said done and the store failed to read."""
    url, stream = str(tmp_path / "toy.zarr"), io.StringIO()
    build_store(ToyJob(), url, executor=SerialExecutor(), stream=io.StringIO())
    [shard_file] = [p for p in (tmp_path / "toy.zarr" / "frame_index" / "c" / "1").rglob("*")
                    if p.is_file()]
    intact = shard_file.read_bytes()
    if damage == "truncate":
        shard_file.write_bytes(intact[: len(intact) // 2])
    else:
        shard_file.unlink()
    job = ToyJob()
    run = build_store(job, url, executor=SerialExecutor(), resume=True, stream=stream)
    assert job.built == [1] and (run.shards_built, run.shards_reused) == (1, 2)
    assert f"shard 1 is damaged (array frame_index: {problem}" in stream.getvalue()
    assert shard_file.read_bytes() == intact
    assert store.damaged_shards(url, store.open_group(url)) == {}
