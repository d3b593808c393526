"""The suite every executor must pass (in the style of zarr's shared store tests).

Subclass :class:`ExecutorSuite` in a test module and give it an ``executor`` fixture; the same
checks then hold for :class:`~synthgen.build.executor.SerialExecutor` and
:class:`~synthgen.build.executor.RayExecutor`: results equal a plain loop's, placed by index;
an exception comes back as a :class:`~synthgen.build.executor.TaskFailure` in its item's place
and the others still run; ticks count work inside tasks; task objects survive the pickle round
trip that takes them to workers.
"""

from __future__ import annotations

import io
import pickle
from dataclasses import dataclass

import pytest

from synthgen.build.executor import Executor, TaskFailure


@dataclass(frozen=True)
class Task:
    """A task object like the builds' shard tasks (a frozen dataclass with nested data)."""

    index: int
    values: tuple[float, ...]


def square_or_fail(x: int) -> int:
    """``x * x``; raises for ``x == 2`` (a failing task)."""
    if x == 2:
        raise ValueError("two is not allowed")
    return x * x


def echo(task: Task) -> Task:
    return task


def count_with_ticks(n: int, tick) -> int:
    """Reports ``n`` units of work, one at a time."""
    for _ in range(n):
        tick()
    return n


class ExecutorSuite:
    """Checks every :class:`~synthgen.build.executor.Executor` must pass."""

    @pytest.fixture(scope="class")
    @classmethod
    def executor(cls) -> Executor:
        raise NotImplementedError("a suite subclass gives the executor under test")

    def test_results_are_a_plain_loops_placed_by_index(self, executor):
        results = list(executor.map(square_or_fail, [0, 1, 3, 4, 5, 6]))
        assert sorted(i for i, _ in results) == list(range(6))
        assert dict(results) == {i: x * x for i, x in enumerate([0, 1, 3, 4, 5, 6])}

    def test_an_exception_comes_back_in_place_and_the_others_run(self, executor):
        results = dict(executor.map(square_or_fail, range(5)))
        assert isinstance(results[2], TaskFailure)
        assert results[2].error == "ValueError: two is not allowed"
        assert "square_or_fail" in results[2].traceback
        assert {k: v for k, v in results.items() if k != 2} == {0: 0, 1: 1, 3: 9, 4: 16}

    def test_ticks_count_work_inside_tasks(self, executor):
        stream = io.StringIO()
        results = dict(executor.map(count_with_ticks, [2, 3], desc="units", ticks=5,
                                    progress_stream=stream))
        assert results == {0: 2, 1: 3}
        assert stream.getvalue().splitlines()[-1].startswith("units 5/5 (100%)")

    def test_task_objects_survive_the_pickle_round_trip(self, executor):
        tasks = [Task(i, tuple(float(v) for v in range(i))) for i in range(4)]
        assert [pickle.loads(pickle.dumps(t)) for t in tasks] == tasks
        assert dict(executor.map(echo, tasks)) == dict(enumerate(tasks))

    def test_the_executor_itself_pickles(self, executor):
        copy = pickle.loads(pickle.dumps(executor))
        assert type(copy) is type(executor) and repr(copy) == repr(executor)

    def test_task_options_are_accepted(self, executor):
        assert dict(executor.map(square_or_fail, [3], task_options={"num_cpus": 1})) == {0: 9}
