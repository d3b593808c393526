"""Executors: the shared suite (``synthgen.testing.executor``) for Serial and Ray, and a local
Ray that starts with token authentication on and without Ray's opt-out warning."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap

import pytest

from synthgen.build.executor import RayExecutor, SerialExecutor, executor_for
from synthgen.testing.executor import ExecutorSuite, square_or_fail


def test_local_ray_keeps_token_auth_and_prints_no_warning(tmp_path):
    script = textwrap.dedent("""
        import os
        from synthgen.build.executor import ray_session
        with ray_session(num_cpus=1) as ray:
            assert ray.get(ray.put(7)) == 7
        print("mode", os.environ.get("RAY_AUTH_MODE"))
    """)
    env = {k: v for k, v in os.environ.items() if k != "RAY_AUTH_MODE"}
    env["HOME"] = str(tmp_path)  # no token yet: Ray generates one
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stderr
    assert "mode token" in done.stdout
    assert "Token authentication" not in done.stderr, done.stderr
    assert (tmp_path / ".ray" / "auth_token").is_file()  # authentication really is on


class TestSerialExecutor(ExecutorSuite):
    @pytest.fixture(scope="class")
    @classmethod
    def executor(cls):
        return SerialExecutor()

    def test_tasks_run_here_in_order(self, executor):
        assert [i for i, _ in executor.map(square_or_fail, range(5))] == list(range(5))


class TestRayExecutor(ExecutorSuite):
    @pytest.fixture(scope="class")
    @classmethod
    def executor(cls):
        executor = RayExecutor(num_cpus=2, max_in_flight=2)
        with executor.session():  # one local Ray for the class, shut down after it
            yield executor

    def test_tasks_run_in_worker_processes(self, executor):
        pids = {pid for _, pid in executor.map(worker_pid, range(4))}
        assert os.getpid() not in pids


def test_executor_for_follows_the_flags():
    assert isinstance(executor_for(serial=True), SerialExecutor)
    ray = executor_for(address="auto", num_cpus=3)
    assert isinstance(ray, RayExecutor) and (ray.address, ray.num_cpus) == ("auto", 3)


def worker_pid(_) -> int:
    return os.getpid()


def test_ray_build_goes_on_when_the_progress_queue_dies():
    # Ray kills actors too when the node runs low on memory: the progress queue must not take
    # the build down (it did: RayActorError out of the progress drain), nor fail later tasks.
    executor = RayExecutor(num_cpus=2, max_in_flight=2)
    results = dict(executor.map(kill_progress_then_square, range(6), desc="items",
                                ticks=6, progress_stream=io.StringIO()))
    assert results == {i: i * i for i in range(6)}


def kill_progress_then_square(item: int, tick) -> int:
    if item == 0:
        import ray

        ray.kill(tick.queue.actor)
    tick()
    return item * item
