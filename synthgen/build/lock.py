"""One writer per store: an exclusive lock that every build holds from before it creates, wipes or
resumes a store until it ends.

*Local paths* (``out/``): the lock is the file ``out.lock`` beside the store (not inside it:
creating a store empties its directory), locked with ``fcntl.flock``. It holds the holder's host,
pid and start time (JSON) for the refusal message. The kernel drops the lock when its process ends,
``kill -9`` included, so a lock file left by a killed build is stale by construction and the next
build simply takes it over. A build that ends removes the file. ``flock`` is only as good as the
file system's: on NFS use a store URL or one build host.

*Object-store URLs* (``s3://bucket/out.zarr``): the lock is a *lease marker*, the object
``<url>.lock`` holding ``{"host", "pid", "started", "renewed", "lease_s", "token"}`` (times in Unix
seconds). The holder rewrites ``renewed`` every ``lease_s / 4`` seconds from a background thread.
Another build takes the marker over only when it is stale: its lease expired (``renewed + lease_s``
in the past) or it names a pid on this host that is no longer alive. After writing the marker a
build reads it back and proceeds only if it still carries its own token. Object stores have no
atomic create-if-absent in fsspec, so two builds started within the same instant could both pass
that check; the lease guards against the common case (a second build started while one runs, a
build killed and resumed), not against such a simultaneous start.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import socket
import threading
import time
import uuid
from pathlib import Path

#: Seconds after its last renewal that a lease marker is considered stale (holder gone).
LEASE_SECONDS = 600.0
#: Suffix of the lock file or lease marker beside a store.
LOCK_SUFFIX = ".lock"


class StoreLockedError(RuntimeError):
    """Another live build holds the store's lock; the message names it (host, pid, start time)."""


class StoreAccessError(RuntimeError):
    """The store's location cannot be written (read-only directory, missing permission)."""


def _holder() -> dict:
    return {"host": socket.gethostname(), "pid": os.getpid(),
            "started": round(time.time(), 3)}


def _describe(url: str, holder: dict | None) -> str:
    if not holder:
        who = "another build that is just starting"
    else:
        when = datetime.datetime.fromtimestamp(holder.get("started", 0), datetime.timezone.utc)
        who = (f"pid {holder.get('pid')} on {holder.get('host')} since "
               f"{when:%Y-%m-%d %H:%M:%S} UTC")
    return (f"{url} is being written by {who}: wait for it to finish, stop it, or use "
            f"another --out")


def _pid_alive(pid: int) -> bool:
    if pid <= 0:  # not a process id (0 and -1 would address process groups)
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def lock_path(url: str) -> str:
    """Where the lock of store ``url`` lives: ``<url>.lock`` (a file, or an object for URLs)."""
    return url.rstrip("/") + LOCK_SUFFIX


@contextlib.contextmanager
def store_lock(url: str, *, lease_s: float = LEASE_SECONDS):
    """Hold the exclusive write lock of store ``url`` for the ``with`` block.

    Raises
    ------
    StoreLockedError
        Another live build holds it.
    StoreAccessError
        The lock cannot be created where the store would be (read-only or forbidden location).
    """
    if "://" in url and not url.startswith("file://"):
        with _lease(url, lease_s):
            yield
    else:
        with _flock(url.removeprefix("file://")):
            yield


@contextlib.contextmanager
def _flock(path: str):
    import fcntl

    lock = Path(lock_path(path))
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                text = os.pread(fd, 4096, 0)
                os.close(fd)
                holder = None
                with contextlib.suppress(ValueError):
                    holder = json.loads(text) if text else None
                raise StoreLockedError(_describe(path, holder)) from None
            # The holder before us may have removed the file after we opened it: lock the file
            # that is at the path now, not an orphaned inode.
            mine = os.fstat(fd)
            try:
                there = os.stat(lock)
            except FileNotFoundError:
                there = None
            if there is not None and (there.st_ino, there.st_dev) == (mine.st_ino, mine.st_dev):
                break
            os.close(fd)
    except OSError as exc:  # read-only, forbidden, or a path through a file
        raise StoreAccessError(f"cannot write {path}: {exc.strerror} ({exc.filename}); "
                               f"choose a writable --out") from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(_holder()).encode(), 0)
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock)
        os.close(fd)


def _read_marker(fs, marker: str) -> dict | None:
    try:
        return json.loads(fs.cat_file(marker))
    except FileNotFoundError:
        return None
    except ValueError:
        return {}  # unreadable marker: treated as stale


def is_stale(marker: dict, *, now: float | None = None) -> bool:
    """Whether a lease marker's holder is gone: lease expired, or a dead pid on this host."""
    now = time.time() if now is None else now
    if not marker:
        return True
    if marker.get("renewed", 0) + marker.get("lease_s", LEASE_SECONDS) < now:
        return True
    return marker.get("host") == socket.gethostname() and not _pid_alive(int(marker.get("pid", -1)))


@contextlib.contextmanager
def _lease(url: str, lease_s: float):
    import fsspec

    from synthgen.store import unreachable

    try:
        fs, root = fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:  # unknown protocol, or its package not installed
        raise StoreAccessError(f"cannot open {url}: {exc}") from None
    marker = lock_path(root)
    try:
        current = _read_marker(fs, marker)
    except Exception as exc:  # each fsspec backend raises its own (botocore's NoCredentialsError)
        raise StoreAccessError(unreachable(url, exc)) from None
    if current is not None and not is_stale(current):
        raise StoreLockedError(_describe(url, current))
    token = uuid.uuid4().hex
    mine = {**_holder(), "lease_s": lease_s, "token": token}

    def write():
        fs.pipe_file(marker, json.dumps({**mine, "renewed": round(time.time(), 3)}).encode())

    try:
        write()
    except OSError as exc:  # forbidden, no such bucket, unreachable endpoint
        raise StoreAccessError(f"cannot write {url}: {exc.strerror or exc}; choose a writable "
                               f"--out") from None
    time.sleep(0.05)  # let a racing writer's marker land before reading back
    back = _read_marker(fs, marker)
    if not back or back.get("token") != token:
        raise StoreLockedError(_describe(url, back))
    stop = threading.Event()

    def renew():
        while not stop.wait(lease_s / 4):
            with contextlib.suppress(OSError):  # a missed renewal is retried; the lease is 4x longer
                write()

    thread = threading.Thread(target=renew, name="store-lease", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        with contextlib.suppress(FileNotFoundError):
            if (_read_marker(fs, marker) or {}).get("token") == token:
                fs.rm_file(marker)


def store_exists(url: str) -> bool:
    """Whether ``url`` (a path or fsspec URL) already holds a store (its ``zarr.json``)."""
    if "://" in url and not url.startswith("file://"):
        import fsspec

        fs, root = fsspec.core.url_to_fs(url)
        return fs.exists(root.rstrip("/") + "/zarr.json")
    return (Path(url.removeprefix("file://")) / "zarr.json").exists()


@contextlib.contextmanager
def claim_store(url: str, *, resume: bool = False, overwrite: bool = False):
    """Take the write lock of store ``url`` and check that this build may write there.

    Every build's first step: nothing is created or wiped before the lock is held, and the
    existence check happens under it (so two ``--overwrite`` builds cannot both pass it).

    Raises
    ------
    StoreLockedError, StoreAccessError
        As :func:`store_lock`; also a local ``url`` that is a file or not writable.
    FileExistsError
        ``url`` holds a store and neither ``resume`` nor ``overwrite`` was given, or it is a
        local folder of files that are no store.
    """
    with store_lock(url, lease_s=LEASE_SECONDS):
        if store_exists(url) and not (resume or overwrite):
            raise FileExistsError(f"{url} already holds a store: pass --resume to continue it or "
                                  f"--overwrite to replace it")
        local = Path(url.removeprefix("file://"))
        if "://" not in url.removeprefix("file://") and local.exists():
            _check_local_target(local, url)
        yield


def _check_local_target(local: Path, url: str) -> None:
    """Refuse a local ``--out`` that is a file, not writable, or a folder of other files (creating
    a store empties its folder: a mistyped ``--out ~/data`` must not erase it)."""
    if not local.is_dir():
        raise StoreAccessError(f"{url} is a file, not a store folder: choose another --out")
    if not os.access(local, os.W_OK):
        raise StoreAccessError(f"cannot write {url}: permission denied; choose a writable --out")
    entries = list(local.iterdir())
    partial = any((entry / "zarr.json").is_file() for entry in entries if entry.is_dir())
    if entries and not (local / "zarr.json").exists() and not partial:
        raise FileExistsError(f"{url} holds files but no store: choose a new or empty --out "
                              f"(a build would delete them)")
