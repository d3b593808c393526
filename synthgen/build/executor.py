"""Executors: map a function over items in this process or on Ray, behind one interface.

:class:`SerialExecutor` runs tasks here, in order; :class:`RayExecutor` runs them on local cores
or a cluster. Both yield ``(index, result)`` (a :class:`TaskFailure` for a task that raised), so
callers that need a deterministic output order place results by index; the work itself must
never depend on scheduling. This is the only module that imports Ray.
"""

from __future__ import annotations

import logging
import os
import socket
import traceback
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

from synthgen.core.progress import Progress

#: Ray's logger for its token-authentication set-up, and the notice it prints at each local start.
_TOKEN_LOGGER = "ray._private.authentication.authentication_token_setup"
_TOKEN_NOTICE = "Token authentication is enabled for this Ray cluster."


class _DropTokenNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(_TOKEN_NOTICE)


def _quiet_local_token_notice() -> None:
    """Drop Ray's "token authentication is enabled" notice (authentication itself stays on)."""
    logger = logging.getLogger(_TOKEN_LOGGER)
    if not any(isinstance(f, _DropTokenNotice) for f in logger.filters):
        logger.addFilter(_DropTokenNotice())


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


def _guarded(fn: Callable, item, tick=None):
    """``fn(item)``, or ``fn(item, tick)`` when a tick is given; an exception becomes the result."""
    try:
        return fn(item) if tick is None else fn(item, tick)
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


#: Seconds to wait for a cluster named by ``--address`` to accept a connection.
CONNECT_TIMEOUT_S = 10.0


def _check_reachable(address: str) -> None:
    """Fail at once, naming ``address``, when a ``host:port`` or ``ray://host:port`` Ray address
    accepts no connection (``ray.init`` would wait minutes on a GCS address where nothing
    listens). ``"auto"`` and malformed addresses are left to Ray, whose messages say what to do.

    Raises
    ------
    ConnectionError
        Nothing answers at the address within :data:`CONNECT_TIMEOUT_S`.
    """
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise ConnectionError(
            f"cannot reach a Ray cluster at --address {address} ({exc.strerror or exc}): start "
            f"one there (ray start --head), fix the address, or leave --address out for a local "
            f"Ray") from exc


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

    Raises
    ------
    ConnectionError
        Nothing answers at a ``host:port`` or ``ray://host:port`` address.
    """
    import ray

    if ray.is_initialized():
        yield ray
        return
    kwargs = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING,
                  configure_logging=True)
    if address is None:
        # A local Ray keeps Ray's default token authentication, without the notice Ray prints
        # about it on every start. Joining a cluster (below) keeps all of Ray's messages.
        _quiet_local_token_notice()
        kwargs.update(num_cpus=num_cpus or os.cpu_count())
        if temp_dir is not None:
            kwargs["_temp_dir"] = temp_dir
        ray.init(**kwargs)
    else:
        _check_reachable(address)
        ray.init(address=address, **kwargs)
    try:
        yield ray
    finally:
        ray.shutdown()


def cluster_gpus() -> float:
    """GPUs of the Ray cluster this process is connected to (0 when not connected)."""
    import ray

    return float(ray.cluster_resources().get("GPU", 0)) if ray.is_initialized() else 0.0


class _QueueTick:
    """Picklable ``tick(n=1)`` for Ray tasks: puts ``n`` on the driver's progress queue.

    Progress is best effort: if the queue's actor is gone (Ray kills it, like any worker, when
    the node runs out of memory), the tick does nothing and the task goes on.
    """

    def __init__(self, queue):
        self.queue = queue

    def __call__(self, n: int = 1) -> None:
        import ray

        try:
            self.queue.put(n)
        except ray.exceptions.RayError:
            pass


def _drain(queue, progress) -> bool:
    """Move the units tasks reported to the progress line; False once the queue's actor is gone
    (the line then stops, the tasks and their results do not depend on it)."""
    import ray

    try:
        while not queue.empty():
            progress.update(queue.get_nowait())
    except ray.exceptions.RayError:
        return False
    return True


class Executor:
    """Where tasks run. Subclasses: :class:`SerialExecutor`, :class:`RayExecutor`.

    Use ``with executor.session():`` around a whole build so that every :meth:`map` of it shares
    one Ray (a map outside a session opens its own).
    """

    #: Whether tasks leave this process (and are placed by their ``task_options``).
    remote = False

    def session(self):
        """A context manager holding the executor's resources (a Ray connection) open."""
        return nullcontext(self)

    def gpus(self) -> float:
        """GPUs tasks can request (0: tasks cannot be placed on GPUs by this executor)."""
        return 0.0

    def map(self, fn: Callable, items: Iterable, *, desc: str = "", progress_stream=None,
            ticks: int | None = None, task_options: dict | None = None
            ) -> Iterator[tuple[int, object]]:
        """Apply ``fn`` to every item; yield ``(index, result)`` as tasks finish.

        Parameters
        ----------
        fn : callable
            A module-level function of one argument (it is pickled to Ray workers), or of two
            with ``ticks``: ``fn(item, tick)``, where ``tick(n=1)`` reports ``n`` units done.
        items : iterable
            Arguments, one task each (picklable).
        desc : str
            Progress label; an empty string disables the progress line.
        progress_stream : file-like, optional
            Where progress goes (default stderr).
        ticks : int, optional
            Total units of work the tasks report through ``tick`` (e.g. examples in shards): the
            progress line counts those instead of finished tasks.
        task_options : dict, optional
            Resources of every task (e.g. ``{"num_cpus": 1, "num_gpus": 0.25}``); only Ray
            places tasks by them.

        Yields
        ------
        index : int
        result : object or TaskFailure
            ``fn(item)``, or a :class:`TaskFailure` if it raised.
        """
        items = list(items)
        total = len(items) if ticks is None else ticks
        progress = Progress(total, desc=desc, stream=progress_stream) if desc else None
        try:
            yield from self._run(fn, items, progress, ticks is not None, task_options or {})
        finally:
            if progress:
                progress.close()

    def _run(self, fn, items, progress, ticked: bool, task_options: dict):
        raise NotImplementedError


class SerialExecutor(Executor):
    """Every task in this process, in order, without Ray (debugging; identical results)."""

    def __repr__(self) -> str:
        return "SerialExecutor()"

    def _run(self, fn, items, progress, ticked, task_options):
        tick = progress.update if progress else (lambda n=1: None)
        for index, item in enumerate(items):
            yield index, _guarded(fn, item, tick if ticked else None)
            if progress and not ticked:
                progress.update()


class RayExecutor(Executor):
    """Tasks on Ray: a local Ray on this machine's cores, or a cluster.

    Parameters
    ----------
    address, num_cpus
        See :func:`ray_session`.
    max_in_flight : int, optional
        Tasks submitted ahead of completion (default: twice the cluster's CPUs), which bounds the
        driver's memory however many items there are.
    """

    remote = True

    def __init__(self, address: str | None = None, *, num_cpus: int | None = None,
                 max_in_flight: int | None = None):
        self.address = address
        self.num_cpus = num_cpus
        self.max_in_flight = max_in_flight

    def __repr__(self) -> str:
        return f"RayExecutor(address={self.address!r}, num_cpus={self.num_cpus!r})"

    def session(self):
        return ray_session(self.address, num_cpus=self.num_cpus)

    def gpus(self) -> float:
        return cluster_gpus()

    def _run(self, fn, items, progress, ticked, task_options):
        with ray_session(self.address, num_cpus=self.num_cpus) as ray:
            from ray.util.queue import Queue

            queue = Queue(actor_options={"num_cpus": 0}) if ticked else None
            remote = ray.remote(_guarded).options(**task_options)

            def submit(item):
                return remote.remote(fn, item, None if queue is None else _QueueTick(queue))

            limit = self.max_in_flight or max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))
            pending: dict = {}
            queue_iter = iter(enumerate(items))
            for index, item in queue_iter:
                pending[submit(item)] = index
                if len(pending) >= limit:
                    break
            draining = queue is not None and progress is not None
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
                draining = draining and _drain(queue, progress)
                if not done:
                    continue
                ref = done[0]
                index = pending.pop(ref)
                try:
                    result = ray.get(ref)
                except Exception as exc:  # worker crash, out of memory: record, go on
                    result = TaskFailure(f"{type(exc).__name__}: {exc}", traceback.format_exc())
                nxt = next(queue_iter, None)
                if nxt is not None:
                    pending[submit(nxt[1])] = nxt[0]
                yield index, result
                if progress and not ticked:
                    progress.update()
            if draining:
                _drain(queue, progress)


def executor_for(*, serial: bool = False, address: str | None = None,
                 num_cpus: int | None = None) -> Executor:
    """The executor the command-line flags ask for (``--serial``, ``--address``, ``--num-cpus``)."""
    return SerialExecutor() if serial else RayExecutor(address, num_cpus=num_cpus)
