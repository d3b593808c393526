"""Ray at the edge: map a function over items on local cores or a cluster, with progress.

This is the only module that imports Ray. Results are yielded as they complete, tagged with the
item's index, so callers that need a deterministic output order sort or place them by index; the
work itself must never depend on scheduling.
"""

from __future__ import annotations

import logging
import os
import traceback
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from synthgen.progress import Progress


@dataclass(frozen=True)
class TaskFailure:
    """What an item's task raised, returned in place of its result.

    Attributes
    ----------
    error : str
        ``"ExceptionType: message"``.
    traceback : str
        The formatted traceback from the worker.
    """

    error: str
    traceback: str


def _guarded(fn: Callable, item):
    try:
        return fn(item)
    except Exception as exc:  # one bad item must never take the run down
        return TaskFailure(f"{type(exc).__name__}: {exc}", traceback.format_exc())


@contextmanager
def single_threaded():
    """Run OpenCV and torch on one thread inside the block (restored afterwards).

    A task that Ray counts as one CPU must not spread over every core of its node.
    """
    import cv2
    import torch

    cv_threads, torch_threads = cv2.getNumThreads(), torch.get_num_threads()
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(cv_threads)
        torch.set_num_threads(torch_threads)


@contextmanager
def ray_session(address: str | None = None, *, num_cpus: int | None = None,
                temp_dir: str | None = None):
    """Connect to Ray for the duration of a ``with`` block.

    Parameters
    ----------
    address : str, optional
        ``None`` starts a local Ray on this machine's cores (no dashboard); ``"auto"`` or
        ``"ray://host:port"`` joins an existing cluster (synthgen must be installed on its nodes).
    num_cpus : int, optional
        Cores for a local Ray (default: all).
    temp_dir : str, optional
        Ray's session files for a local Ray (default: Ray's own temp dir).

    A Ray already initialised in this process is reused and left running.
    """
    import ray

    if ray.is_initialized():
        yield ray
        return
    kwargs = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING,
                  configure_logging=True)
    if address is None:
        kwargs.update(num_cpus=num_cpus or os.cpu_count())
        if temp_dir is not None:
            kwargs["_temp_dir"] = temp_dir
        ray.init(**kwargs)
    else:
        ray.init(address=address, **kwargs)
    try:
        yield ray
    finally:
        ray.shutdown()


def ray_map(fn: Callable, items: Iterable, *, address: str | None = None,
            num_cpus: int | None = None, desc: str = "", serial: bool = False,
            max_in_flight: int | None = None, progress_stream=None) -> Iterator[tuple[int, object]]:
    """Apply ``fn`` to every item on Ray workers; yield ``(index, result)`` as tasks finish.

    Parameters
    ----------
    fn : callable
        A module-level function of one argument (it is pickled to the workers).
    items : iterable
        Arguments, one task each.
    address, num_cpus
        See :func:`ray_session`.
    desc : str
        Progress label; an empty string disables the progress line.
    serial : bool
        Run in this process, in order, without Ray (debugging; identical results).
    max_in_flight : int, optional
        Tasks submitted ahead of completion (default: twice the cluster's CPUs), which bounds the
        driver's memory however many items there are.
    progress_stream : file-like, optional
        Where progress goes (default stderr).

    Yields
    ------
    index : int
    result : object or TaskFailure
        ``fn(item)``, or a :class:`TaskFailure` if it raised.
    """
    items = list(items)
    progress = Progress(len(items), desc=desc, stream=progress_stream) if desc else None
    try:
        if serial:
            for index, item in enumerate(items):
                yield index, _guarded(fn, item)
                if progress:
                    progress.update()
            return
        with ray_session(address, num_cpus=num_cpus) as ray:
            remote = ray.remote(_guarded)
            limit = max_in_flight or max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))
            pending: dict = {}
            queue = iter(enumerate(items))
            for index, item in queue:
                pending[remote.remote(fn, item)] = index
                if len(pending) >= limit:
                    break
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                ref = done[0]
                index = pending.pop(ref)
                try:
                    result = ray.get(ref)
                except Exception as exc:  # worker crash, out of memory: record, go on
                    result = TaskFailure(f"{type(exc).__name__}: {exc}", traceback.format_exc())
                nxt = next(queue, None)
                if nxt is not None:
                    pending[remote.remote(fn, nxt[1])] = nxt[0]
                yield index, result
                if progress:
                    progress.update()
    finally:
        if progress:
            progress.close()
