"""One writer per store (``synthgen.build.lock``): a second writer is refused naming the holder, a lock
left by a killed build is taken over, and two real ``synthgen build --overwrite`` into one --out
leave the first's store intact."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from synthgen import store
from synthgen.build.synthetic import build
from synthgen.config import Config
from synthgen.build.lock import LEASE_SECONDS, StoreLockedError, is_stale, lock_path, store_lock

HOLD = ("import sys, time\nfrom synthgen.build.lock import store_lock\n"
        "with store_lock(sys.argv[1]):\n    print('locked', flush=True)\n    time.sleep(600)\n")


def _holder_process(url: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, url], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_writer_is_refused_naming_the_holder_and_a_killed_holder_is_taken_over(tmp_path):
    url = str(tmp_path / "out.zarr")
    proc = _holder_process(url)
    try:
        with pytest.raises(StoreLockedError, match=rf"pid {proc.pid} on {socket.gethostname()} "
                                                   r"since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC"):
            with store_lock(url):
                pass
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    assert Path(lock_path(url)).exists()  # left behind by kill -9: stale, since flock died with it
    with store_lock(url):
        assert json.loads(Path(lock_path(url)).read_text())["pid"] == os.getpid()
    assert not Path(lock_path(url)).exists()


def test_lease_markers_on_object_stores_refuse_live_holders_and_take_over_stale_ones():
    import fsspec

    fs = fsspec.filesystem("memory")
    url = "memory://bucket/lease.zarr"
    marker = "/bucket/lease.zarr.lock"
    now = time.time()
    live = {"host": socket.gethostname(), "pid": os.getppid(), "started": now, "renewed": now,
            "lease_s": LEASE_SECONDS, "token": "x"}
    fs.pipe_file(marker, json.dumps(live).encode())
    with pytest.raises(StoreLockedError, match=f"pid {os.getppid()}"):
        with store_lock(url):
            pass
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    assert is_stale({**live, "pid": int(dead)})  # same host, pid gone
    other_host = {**live, "host": "elsewhere", "pid": 1}
    assert not is_stale(other_host)
    assert is_stale({**other_host, "renewed": now - LEASE_SECONDS - 1})  # lease expired
    fs.pipe_file(marker, json.dumps({**other_host, "renewed": now - LEASE_SECONDS - 1}).encode())
    with store_lock(url):
        held = json.loads(fs.cat_file(marker))
        assert held["pid"] == os.getpid() and held["host"] == socket.gethostname()
    assert not fs.exists(marker)


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_two_real_overwrite_builds_into_one_out_the_second_refuses(small_demo, tmp_path):
    pipeline = tmp_path / "t.toml"
    pipeline.write_text("[clip]\nlength = 8\n[store]\nexamples_per_shard = 2\n")
    out, cache = tmp_path / "out.zarr", tmp_path / "cache"

    def command(seed):
        return [sys.executable, "-m", "synthgen", "build", "--kinetics",
                str(small_demo.kinetics_dir), "--surreal", str(small_demo.surreal_dir), "--out",
                str(out), "--num-examples", "4", "--seed", str(seed), "--pipeline",
                str(pipeline), "--cache", str(cache), "--split", "all", "--serial", "--overwrite"]

    first = subprocess.Popen(command(7), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    lock = Path(lock_path(str(out)))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and first.poll() is None:
        if lock.exists() and lock.read_text():
            break
        time.sleep(0.02)
    assert first.poll() is None, "the first build ended before the second could start"
    second = subprocess.run(command(8), capture_output=True, text=True, timeout=120)
    first_out, first_err = first.communicate(timeout=300)
    assert first.returncode == 0, first_err
    assert second.returncode == 1
    assert second.stderr.strip().count("\n") == 0 and "Traceback" not in second.stderr
    assert f"is being written by pid {first.pid}" in second.stderr
    group = store.open_group(str(out))
    assert group.attrs["seed"] == 7 and store.finished_shards(group).all()
    reference = tmp_path / "reference.zarr"
    build(small_demo.kinetics_dir, small_demo.surreal_dir, str(reference), num_examples=4,
          seed=7, cfg=Config(name="t").replace(clip={"length": 8}, store={"examples_per_shard": 2}),
          cache_dir=cache, splits=None, serial=True, stream=io.StringIO())
    assert _digest(out) == _digest(reference)
    assert not lock.exists()


def test_every_build_takes_the_lock_before_reading_anything(tmp_path):
    from synthgen.build.threedpw import build_3dpw

    url = str(tmp_path / "out.zarr")
    proc = _holder_process(url)
    try:
        for run in (lambda: build(tmp_path / "none", tmp_path / "none", url, num_examples=1,
                                  serial=True, resume=True),
                    lambda: build_3dpw(tmp_path / "none", url, serial=True, overwrite=True)):
            with pytest.raises(StoreLockedError, match=f"pid {proc.pid}"):
                run()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.zarr.lock"]


def test_a_build_into_an_object_store_url_holds_a_lease(small_demo, tmp_path):
    import fsspec

    fs = fsspec.filesystem("memory")
    url, marker = "memory://leased/out.zarr", "/leased/out.zarr.lock"
    cfg = Config(name="t").replace(clip={"length": 8}, store={"examples_per_shard": 2})
    now = time.time()
    fs.pipe_file(marker, json.dumps({"host": "elsewhere", "pid": 1, "started": now,
                                     "renewed": now, "lease_s": LEASE_SECONDS}).encode())
    kwargs = dict(num_examples=2, seed=0, cfg=cfg, cache_dir=tmp_path / "cache", splits=None,
                  serial=True, stream=io.StringIO())
    with pytest.raises(StoreLockedError, match="pid 1 on elsewhere"):
        build(small_demo.kinetics_dir, small_demo.surreal_dir, url, **kwargs)
    assert not fs.exists("/leased/out.zarr/zarr.json") and not (tmp_path / "cache").exists()
    fs.rm_file(marker)
    assert build(small_demo.kinetics_dir, small_demo.surreal_dir, url, **kwargs).examples == 2
    assert fs.exists("/leased/out.zarr/zarr.json") and not fs.exists(marker)
