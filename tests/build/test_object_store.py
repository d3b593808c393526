"""Object storage: builds, resume, the lease lock and every read path on ``s3://`` URLs, against a
real S3-compatible server (moto in server mode) started on 127.0.0.1 for this module.

The endpoint reaches s3fs the way a user passes it: the ``AWS_ENDPOINT_URL`` environment variable
(with ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``), which botocore reads.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import pickle
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from synthgen import store
from synthgen.build import lock
from synthgen.build.synthetic import build
from synthgen.cli import main
from tests.tools.tiny_store import CFG, NUM_EXAMPLES, make_tiny_store

moto_server = pytest.importorskip("moto.server", reason="moto[server] is not installed "
                                  "(pip install 'moto[server]' s3fs, or the 'test' extra)")
s3fs = pytest.importorskip("s3fs", reason="s3fs is not installed (pip install s3fs)")

BUCKET = "synthgen-test"


@pytest.fixture(scope="module")
def s3():
    """An S3 server on 127.0.0.1 with one bucket; the process environment points s3fs at it."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request otherwise
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": f"http://{host}:{port}",
           "AWS_EC2_METADATA_DISABLED": "true"}  # never ask a cloud for credentials
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
            patch.delenv(key, raising=False)
        s3fs.S3FileSystem.clear_instance_cache()  # no client made with other settings
        fs = s3fs.S3FileSystem(skip_instance_cache=True)
        fs.mkdir(BUCKET)
        try:
            yield fs
        finally:
            server.stop()


def _objects(fs, url: str) -> dict[str, str]:
    """sha256 of every object under ``url``, by key relative to it."""
    root = url.removeprefix("s3://").rstrip("/")
    fs.invalidate_cache()
    return {key[len(root) + 1:]: hashlib.sha256(fs.cat_file(key)).hexdigest()
            for key in sorted(fs.find(root))}


def _files(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _build(demo, out: str, cache, **kwargs):
    return build(demo.kinetics_dir, demo.surreal_dir, out, num_examples=NUM_EXAMPLES, seed=3,
                 cfg=CFG, cache_dir=cache, splits=None, serial=True, stream=io.StringIO(),
                 **kwargs)


def _build_args(demo, out: str, cache, tmp_path) -> list[str]:
    """``synthgen build`` arguments of the same build as :func:`_build`."""
    pipeline = tmp_path / "test.toml"  # CFG as a pipeline file (its name is the file's)
    pipeline.write_text("[clip]\nlength = 8\n[store]\nexamples_per_shard = 2\n")
    return ["build", "--kinetics", str(demo.kinetics_dir), "--surreal", str(demo.surreal_dir),
            "--out", out, "--num-examples", str(NUM_EXAMPLES), "--seed", "3", "--pipeline",
            str(pipeline), "--cache", str(cache), "--split", "all", "--serial"]


@pytest.fixture(scope="module")
def local(small_demo, tmp_path_factory):
    """The same tiny build on a local path (shared with tests/tools/test_inspect.py)."""
    return make_tiny_store(small_demo, tmp_path_factory)


@pytest.fixture(scope="module")
def s3_store(s3, small_demo, local) -> str:
    """An uninterrupted serial build into ``s3://``."""
    url = f"s3://{BUCKET}/tiny.zarr"
    summary = _build(small_demo, url, local.cache)
    assert summary.examples == NUM_EXAMPLES and summary.bytes_on_disk is None
    return url


def test_build_into_s3_writes_the_same_bytes_as_a_local_build(s3, s3_store, local):
    objects = _objects(s3, s3_store)
    assert "zarr.json" in objects and "rgb/c/0/0/0/0/0" in objects
    assert objects == _files(Path(local.url))
    assert not s3.exists(lock.lock_path(s3_store.removeprefix("s3://")))  # the lease is released


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_killed_build_resumes_to_the_same_bytes_taking_over_its_stale_marker(
        s3, s3_store, small_demo, local, monkeypatch, tmp_path):
    """A build that dies after writing shard 1's files but before marking it done, leaving its
    lease marker (a dead pid on this host), resumes to the bytes of the uninterrupted build."""
    import synthgen.build.synthetic as build_module

    url = f"s3://{BUCKET}/killed.zarr"
    run_shard = build_module.run_shard

    def dies_after_writing(task, tick=lambda n=1: None):
        result = run_shard(task, tick)
        if task.shard == 1:
            raise SystemExit("killed")  # no TaskFailure: the build itself stops here
        return result

    monkeypatch.setattr(build_module.SyntheticJob, "run_shard", staticmethod(dies_after_writing))
    with pytest.raises(SystemExit, match="killed"):
        _build(small_demo, url, local.cache)
    monkeypatch.undo()
    done = store.finished_shards(store.open_group(url))
    assert done.tolist() == [True, False]
    assert s3.exists(f"{BUCKET}/killed.zarr/rgb/c/1/0/0/0/0")  # written, not marked done
    marker = f"{BUCKET}/killed.zarr{lock.LOCK_SUFFIX}"
    s3.pipe_file(marker, json.dumps({"host": socket.gethostname(), "pid": _dead_pid(),
                                     "started": time.time(), "renewed": time.time(),
                                     "lease_s": lock.LEASE_SECONDS, "token": "dead"}).encode())
    refused = CliRunner().invoke(main, _build_args(small_demo, url, local.cache, tmp_path))
    assert refused.exit_code == 1 and "pass --resume" in refused.output
    resumed = CliRunner().invoke(main, _build_args(small_demo, url, local.cache, tmp_path)
                                 + ["--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert "(1 already done)" in resumed.output and "1 shards built, 1 reused" in resumed.output
    assert _objects(s3, url) == _objects(s3, s3_store)


def test_overwrite_replaces_every_object_of_an_s3_store(s3, s3_store, small_demo, local):
    url = f"s3://{BUCKET}/replaced.zarr"
    s3.copy(f"{BUCKET}/tiny.zarr", f"{BUCKET}/replaced.zarr", recursive=True)
    s3.pipe_file(f"{BUCKET}/replaced.zarr/rgb/c/9/0/0/0/0", b"left over")
    _build(small_demo, url, local.cache, overwrite=True)
    assert _objects(s3, url) == _objects(s3, s3_store)


def test_a_missing_bucket_is_one_line(s3, small_demo, local, tmp_path):
    url = "s3://no-such-bucket/out.zarr"
    result = CliRunner().invoke(main, _build_args(small_demo, url, local.cache, tmp_path))
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1, result.output
    assert url in result.output and "bucket" in result.output.lower()


def test_a_live_marker_refuses_a_second_build_naming_its_holder(s3, small_demo, local):
    url = f"s3://{BUCKET}/locked.zarr"
    with lock.store_lock(url):
        holder = json.loads(s3.cat_file(f"{BUCKET}/locked.zarr{lock.LOCK_SUFFIX}"))
        assert holder["pid"] > 0 and holder["renewed"] <= time.time()
        with pytest.raises(lock.StoreLockedError,
                           match=f"pid {holder['pid']} on {socket.gethostname()}"):
            _build(small_demo, url, local.cache)
    assert not s3.exists(f"{BUCKET}/locked.zarr")  # nothing was written


def test_an_expired_lease_of_another_host_is_taken_over_and_a_live_one_is_not(s3):
    url = f"s3://{BUCKET}/lease.zarr"
    marker = f"{BUCKET}/lease.zarr{lock.LOCK_SUFFIX}"
    other = {"host": "other-host", "pid": 1, "started": time.time() - 3600, "lease_s": 60.0,
             "token": "other"}
    s3.pipe_file(marker, json.dumps({**other, "renewed": time.time()}).encode())
    with pytest.raises(lock.StoreLockedError, match="pid 1 on other-host"), lock.store_lock(url):
        pass
    s3.pipe_file(marker, json.dumps({**other, "renewed": time.time() - 61}).encode())
    with lock.store_lock(url):
        assert json.loads(s3.cat_file(marker))["host"] == socket.gethostname()
    assert not s3.exists(marker)


def test_open_store_and_the_checked_reader_read_s3_like_a_local_store(s3, s3_store, local):
    remote, here = store.open_store(s3_store), store.open_store(local.url)
    assert remote.sizes == here.sizes and remote.attrs["seed"] == 3
    for name in ("rgb", "flow", "joints3d", "occluder_reason"):
        np.testing.assert_array_equal(remote[name].values, here[name].values, err_msg=name)
    reader = store.StoreReader(s3_store)
    reader.check_present()
    np.testing.assert_array_equal(reader.read_shard("joints2d", 1),
                                  store.open_group(local.url)["joints2d"][2:4])
    reader = pickle.loads(pickle.dumps(reader))  # as in a DataLoader worker
    np.testing.assert_array_equal(reader.read("rgb", 3), here["rgb"].values[3])


def test_a_damaged_object_is_named_by_the_reader(s3, s3_store):
    url = f"s3://{BUCKET}/damaged.zarr"
    s3.copy(f"{BUCKET}/tiny.zarr", f"{BUCKET}/damaged.zarr", recursive=True)
    key = f"{BUCKET}/damaged.zarr/pose/c/1/0/0"
    data = bytearray(s3.cat_file(key))
    data[10] ^= 0xFF
    s3.pipe_file(key, bytes(data))
    reader = store.StoreReader(url)
    np.testing.assert_array_equal(reader.read_shard("pose", 0),
                                  store.StoreReader(s3_store).read_shard("pose", 0))
    with pytest.raises(store.StoreDamageError, match="damaged.zarr.*pose.*shard 1"):
        reader.read_shard("pose", 1)
    s3.rm_file(key)
    with pytest.raises(store.StoreDamageError, match="missing"):
        store.open_store(url)


def test_training_reads_an_s3_store(s3_store, local):
    from trainer.data import ClipBatchSampler, ClipDataset, arrays_for, make_loader, open_stores

    infos = open_stores([s3_store])
    assert infos[0].examples.tolist() == list(range(NUM_EXAMPLES))
    items = np.array([[0, 1], [0, 3]])
    dataset = ClipDataset(infos, items, clip_length=5, arrays=arrays_for("flow_keypoints"))
    group = store.open_group(local.url)
    item = dataset[(1, 2)]
    np.testing.assert_array_equal(item["flow"], group["flow"][3, 2:6])
    np.testing.assert_array_equal(item["joints3d"], group["joints3d"][3, 2:7])
    assert item["flow_quantum"] == np.float32(group["flow"].attrs["quantum_px"])
    # A DataLoader worker process (forked after this process read) reopens the store.
    loader = make_loader(dataset, ClipBatchSampler(np.full(2, 8), clip_length=5, batch_size=2,
                                                   seed=0, shuffle=False),
                         num_workers=1, pin_memory=False)
    batch = next(iter(loader))
    np.testing.assert_array_equal(batch["joints3d"].numpy(), group["joints3d"][[1, 3], 1:6])


def test_trainer_trains_and_evaluates_on_an_s3_store(s3, smpl_dir, tmp_path):
    from trainer.cli import main as trainer
    from trainer.smpl import SMPLJoints
    from trainer.synthetic import make_synthetic_store

    url = f"s3://{BUCKET}/synthetic.zarr"
    make_synthetic_store(url, SMPLJoints.from_path(smpl_dir), num_examples=8, num_frames=6,
                         crop_size=48, num_persons=4, seed=3)
    tiny = ["--set", "data.clip_length=4", "--set", "data.input_size=32", "--set",
            "data.batch_size=2", "--set", "data.num_workers=0", "--set", "data.val_every=4",
            "--set", "model.lstm_hidden=16", "--set", "model.head_hidden=16", "--set",
            "model.regressor_hidden=16", "--set", "run.num_threads=1"]
    out = tmp_path / "run"
    trained = CliRunner().invoke(trainer, ["train", "--store", url, "--out", str(out), "--smpl",
                                           str(smpl_dir), "--steps", "2", *tiny])
    assert trained.exit_code == 0, trained.output
    assert json.loads((out / "config.json").read_text())["stores"] == [url]
    evaluated = CliRunner().invoke(trainer, ["eval", "--checkpoint", str(out / "last.pt"),
                                             "--store", url, "--device", "cpu"])
    assert evaluated.exit_code == 0, evaluated.output
    assert "PA-MPJPE" in evaluated.output


def test_missing_credentials_are_one_line(s3, s3_store, small_demo, local, smpl_dir, tmp_path,
                                         monkeypatch):
    from trainer.cli import main as trainer

    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    # Clients keep the credentials they were made with: new ones for this test, then the old.
    monkeypatch.setattr(s3fs.S3FileSystem, "_cache", {})
    built = CliRunner().invoke(main, _build_args(small_demo, f"s3://{BUCKET}/x.zarr",
                                                 local.cache, tmp_path))
    trained = CliRunner().invoke(trainer, ["train", "--store", s3_store, "--smpl", str(smpl_dir)])
    for result, url in ((built, f"s3://{BUCKET}/x.zarr"), (trained, s3_store)):
        assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
        assert f"cannot reach {url}: Unable to locate credentials" in result.output
