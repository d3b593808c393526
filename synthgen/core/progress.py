"""A plain-text progress reporter: items done, rate and ETA, throttled, safe for logs."""

from __future__ import annotations

import sys
import time


def _format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


class Progress:
    """Report ``done/total``, rate (items/s) and ETA on one line, at most every ``interval`` seconds.

    On a terminal the line is rewritten in place; otherwise (CI, log files) a new line is printed.

    Parameters
    ----------
    total : int
        Number of items expected.
    desc : str
        What is counted, e.g. ``"examples"``.
    stream : file-like, optional
        Where to write (default ``sys.stderr``).
    interval : float
        Minimum seconds between two reports (the last one is always printed).
    clock : callable
        Time source in seconds (injectable for tests).
    """

    def __init__(self, total: int, *, desc: str = "items", stream=None, interval: float = 1.0,
                 clock=time.monotonic):
        self.total = int(total)
        self.desc = desc
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval
        self._clock = clock
        self._start = clock()
        self._last = -float("inf")
        self.done = 0
        self._final_written = False
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def line(self) -> str:
        """The current report, e.g. ``"examples 40/200 (20%) 3.1/s ETA 00:52"``."""
        elapsed = max(self._clock() - self._start, 1e-9)
        rate = self.done / elapsed
        pct = 100.0 * self.done / self.total if self.total else 100.0
        remaining = self.total - self.done
        eta = _format_duration(remaining / rate) if rate > 0 else "--:--"
        return (f"{self.desc} {self.done}/{self.total} ({pct:.0f}%) {rate:.2f}/s "
                f"elapsed {_format_duration(elapsed)} ETA {eta}")

    def update(self, n: int = 1) -> None:
        """Count ``n`` more items done and report if the interval has passed."""
        self.done += n
        now = self._clock()
        if now - self._last >= self.interval or self.done >= self.total:
            self._last = now
            self._write()

    def _write(self) -> None:
        final = self.done >= self.total
        end = "\n" if final or not self._tty else "\r"
        self._final_written = final
        self.stream.write(self.line() + end)
        self.stream.flush()

    def close(self) -> None:
        """Print the final line (if the last update did not already)."""
        if not self._final_written:
            self._final_written = True
            self.stream.write(self.line() + "\n")
            self.stream.flush()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
