"""One shard driver for every store build (synthetic, 3DPW, video).

A *job* says what its store is and how one shard is made; the engine does the rest, in the same
way for every kind of store:

1. take the store's write lock (:func:`synthgen.build.lock.claim_store`) before anything is
   created or wiped, and hold it to the end;
2. open the executor's session and let the job discover its inputs (:meth:`Job.prepare`, which
   may map tasks over the executor, e.g. the camera-motion cache);
3. create the store, or with ``resume`` reopen it after checking that it was made from the same
   inputs and settings (:func:`check_resumable`);
4. map :meth:`Job.run_shard` over the unfinished shards (one task each, with the job's resource
   request), with a progress line counting examples; each finished shard's skipped inputs go to
   the manifest (``attrs["skipped"]``, :class:`synthgen.core.errors.Skip` in its readable form)
   before the shard is marked done, so a killed build resumes to the same bytes;
5. write ``attrs["summary"]`` and return a :class:`BuildRun`.

A shard that fails is reported with its error; finished shards are kept and ``--resume`` redoes
the others.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from dataclasses import dataclass
from functools import partial

import synthgen
from synthgen import store
from synthgen.build.executor import Executor, TaskFailure, single_threaded
from synthgen.build.lock import claim_store, store_exists
from synthgen.core.errors import Skip
from synthgen.steps.crop_flow import DEVICE_BACKENDS


@dataclass(frozen=True)
class StorePlan:
    """What a job's store is: its geometry, its root attributes and what a resume must match.

    ``attrs`` are written at creation (JSON-serialisable; ``attrs["skipped"]`` is the manifest of
    inputs discovery skipped, as :meth:`Skip.to_dict`). ``resume_keys`` name the attributes a
    resumed store must hold unchanged (with ``num_examples`` and ``examples_per_shard``).
    """

    num_examples: int
    num_frames: int
    crop_size: int
    examples_per_shard: int
    attrs: dict
    resume_keys: tuple[str, ...]
    kind: str = "synthetic"
    clevel: int = 5
    flow_quantum: float | None = None
    omit: tuple[str, ...] = ()


@dataclass(frozen=True)
class ShardResult:
    """What one shard task returns: its shard and the inputs it skipped."""

    shard: int
    skipped: tuple[Skip, ...] = ()


class Job:
    """One kind of build. Subclasses set :attr:`desc` and implement the four methods."""

    #: What the progress line counts (``"examples"``, ``"clips"``).
    desc = "examples"

    def prepare(self, executor: Executor, stream) -> StorePlan:
        """Discover and check the inputs (inside the lock and the executor's session).

        Raises
        ------
        RuntimeError
            Nothing usable to build from (one line, the skipped inputs summarised).
        """
        raise NotImplementedError

    def tasks(self, url: str, group, shards: list[int]) -> list:
        """One picklable task per shard of ``shards`` (the unfinished ones, ascending)."""
        raise NotImplementedError

    def task_options(self, executor: Executor) -> dict:
        """Resources of a shard task (default one CPU)."""
        return {"num_cpus": 1}

    def summary(self, group) -> dict:
        """``attrs["summary"]`` of the finished store (the engine adds ``skipped_inputs`` and
        ``synthgen_version``); computed from the stored arrays, so a resumed build gives the
        same."""
        raise NotImplementedError

    @staticmethod
    def run_shard(task, tick) -> ShardResult:
        """Make and write one whole shard (not marked done); ``tick(n=1)`` after each example.

        A module-level function in practice (it is pickled to Ray workers).
        """
        raise NotImplementedError


@dataclass(frozen=True)
class BuildRun:
    """What the engine did (``seconds`` measured, not stored)."""

    url: str
    plan: StorePlan
    shards_built: int
    shards_reused: int
    skipped: tuple[Skip, ...]
    summary: dict
    seconds: float



def skipped_lines(skipped) -> list[str]:
    """``skipped inputs: N; n reason; ...`` and one indented line per skipped input (summaries)."""
    reasons = Counter(skip.reason for skip in skipped)
    return ([f"skipped inputs: {len(skipped)}"
             + "".join(f"; {n} {r}" for r, n in sorted(reasons.items()))]
            + [f"  {skip}" for skip in skipped])


def flow_task_options(crop_flow, executor: Executor) -> dict:
    """Resources of a shard task that computes crop flow: one CPU, plus ``gpu_fraction`` of a GPU
    when a torch backend (``DEVICE_BACKENDS``) runs on CUDA on a remote executor (so those tasks go
    to GPU nodes). DIS and NumPy TV-L1 never use the GPU, so they ask for none.

    Parameters
    ----------
    crop_flow : synthgen.config.CropFlowConfig
        ``device`` and ``gpu_fraction`` are used.

    Raises
    ------
    RuntimeError
        Crop flow on CUDA but the cluster has no GPU (the tasks would wait forever).
    ValueError
        A numbered CUDA device (``cuda:1``) on Ray, which shows each task only the GPU it gave it.
    """
    if (not executor.remote or not crop_flow.device.startswith("cuda")
            or crop_flow.backend not in DEVICE_BACKENDS):
        return {"num_cpus": 1}
    if crop_flow.device != "cuda":
        raise ValueError(f"crop-flow device {crop_flow.device!r} on Ray: Ray shows each shard task "
                         f"only the GPU it assigned, so use --flow-device cuda")
    if not executor.gpus():
        raise RuntimeError(f"crop flow on {crop_flow.device} but the Ray cluster has no GPU: "
                           f"use a cluster with GPU nodes or --flow-device cpu")
    return {"num_cpus": 1, "num_gpus": crop_flow.gpu_fraction}


def sorted_skips(skipped) -> list[Skip]:
    """Skipped inputs without duplicates, in a canonical order (so stores are reproducible)."""
    return sorted(set(skipped))


def record_skips(group, skipped) -> None:
    """Add ``skipped`` to the store's manifest (``attrs["skipped"]``), kept sorted and unique."""
    if skipped:
        old = [Skip.from_dict(s) for s in group.attrs["skipped"]]
        group.attrs["skipped"] = [s.to_dict() for s in sorted_skips([*old, *skipped])]


def check_resumable(group, plan: StorePlan) -> None:
    """Refuse to resume a store made from other inputs or settings than ``plan``.

    Raises
    ------
    ValueError
        One of ``plan.resume_keys``, the example count or the shard size differs (named).
    """
    expected = json.loads(json.dumps({**plan.attrs, "num_examples": plan.num_examples,
                                      "examples_per_shard": plan.examples_per_shard}))
    for key in (*plan.resume_keys, "num_examples", "examples_per_shard"):
        if group.attrs.get(key) != expected[key]:
            raise ValueError(f"cannot resume: the store's {key!r} differs from this build's "
                             f"(different data, seed or pipeline?); use a new --out, or drop "
                             f"--resume and pass --overwrite to start again")


def _on_one_core(run_shard, task, tick) -> ShardResult:
    """``run_shard(task, tick)`` with OpenCV and torch on one thread: a shard task owns one core
    (Ray's CPU accounting), and its bytes do not depend on the machine's thread count."""
    with single_threaded():
        return run_shard(task, tick)


def _open(out: str, plan: StorePlan, resume: bool):
    if resume and store_exists(out):
        group = store.open_group(out, mode="r+")
        check_resumable(group, plan)
        return group
    extra = {} if plan.flow_quantum is None else {"flow_quantum": plan.flow_quantum}
    return store.create_store(out, num_examples=plan.num_examples, num_frames=plan.num_frames,
                              crop_size=plan.crop_size, examples_per_shard=plan.examples_per_shard,
                              attrs=json.loads(json.dumps(plan.attrs)), clevel=plan.clevel,
                              kind=plan.kind, omit=plan.omit, **extra)


def build_store(job: Job, out: str, *, executor: Executor, resume: bool = False,
                overwrite: bool = False, stream=None) -> BuildRun:
    """Build (or resume) the store of ``job`` at ``out`` (module docstring).

    Raises
    ------
    FileExistsError, synthgen.build.lock.StoreLockedError, synthgen.build.lock.StoreAccessError
        As :func:`synthgen.build.lock.claim_store`.
    ValueError
        ``resume`` on a store made from other inputs or settings.
    RuntimeError
        Nothing to build from (from the job), or shards that failed (their errors listed;
        finished shards are kept).
    """
    start = time.monotonic()
    stream = stream or sys.stderr
    with claim_store(out, resume=resume, overwrite=overwrite), executor.session():
        plan = job.prepare(executor, stream)
        group = _open(out, plan, resume)
        if resume:  # a finished shard damaged since (a truncated copy...) is made again
            for shard, problem in store.damaged_shards(out, group).items():
                print(f"shard {shard} is damaged ({problem}): building it again", file=stream)
                store.discard_shard(out, group, shard)
        done = store.finished_shards(group)
        todo = [int(s) for s in range(len(done)) if not done[s]]
        tasks = job.tasks(out, group, todo)
        examples = sum(store.shard_slice(group, s).stop - store.shard_slice(group, s).start
                       for s in todo)
        print(f"building {plan.num_examples} {job.desc} in {len(done)} shards of "
              f"{plan.examples_per_shard} ({len(done) - len(todo)} already done)", file=stream)
        failures = []
        for index, result in executor.map(partial(_on_one_core, job.run_shard), tasks,
                                          desc=job.desc,
                                          progress_stream=stream, ticks=examples,
                                          task_options=job.task_options(executor)):
            if isinstance(result, TaskFailure):
                failures.append(f"shard {todo[index]}: {result.error}")
                print(f"shard {todo[index]} failed: {result.traceback}", file=stream)
                continue
            record_skips(group, result.skipped)
            store.mark_done(group, result.shard)
        if failures:
            raise RuntimeError(f"{len(failures)} shards failed (finished shards are kept; fix the "
                               f"cause and rerun with --resume): " + "; ".join(failures))
        skipped = tuple(Skip.from_dict(s) for s in group.attrs["skipped"])
        summary = {**job.summary(group), "skipped_inputs": len(skipped),
                   "synthgen_version": synthgen.__version__}
        group.attrs["summary"] = summary
    return BuildRun(out, plan, len(todo), len(done) - len(todo), skipped, summary,
                    time.monotonic() - start)
