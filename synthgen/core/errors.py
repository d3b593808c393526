"""Typed errors for bad input, and the record of an input a build skipped.

Every error about an input file carries the file's path and a short machine-readable ``reason``
(used as the key in a store's manifest of skipped inputs) plus a human message saying what to do.
A build that cannot use an input records a :class:`Skip` and goes on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


class SourceError(Exception):
    """An input (file, directory or clip) that cannot be used.

    Parameters
    ----------
    path : str or Path
        The offending file or directory.
    detail : str
        What is wrong, in words a user can act on.
    """

    reason = "bad_input"

    def __init__(self, path: str | Path, detail: str):
        self.path = str(path)
        self.detail = detail
        super().__init__(f"{self.path}: {self.reason}: {detail}")


class MissingFileError(SourceError):
    reason = "missing_file"


class EmptyInputError(SourceError):
    """A zero-byte file or a directory with nothing usable in it."""

    reason = "empty"


class CorruptFileError(SourceError):
    """A file that exists but cannot be parsed or decoded (truncated, wrong format...)."""

    reason = "corrupt"


class NoVideoStreamError(SourceError):
    reason = "no_video_stream"


class MissingKeyError(SourceError):
    """A .mat / .pkl file lacking a variable the format requires."""

    reason = "missing_key"


class FrameCountMismatchError(SourceError):
    """Files of one clip disagree on the number of frames."""

    reason = "frame_count_mismatch"


class ShortClipError(SourceError):
    """A clip or video with fewer usable frames than asked for."""

    reason = "too_short"


class InconsistentDataError(SourceError):
    """Values that contradict each other (e.g. joints2D far from the projection of joints3D)."""

    reason = "inconsistent"


class OversizeError(SourceError):
    """A file that declares (or inflates to) an array far larger than its format allows: refused
    before the array is allocated (:mod:`synthgen.core.limits`)."""

    reason = "too_large"


class NonFiniteError(SourceError):
    """Values a step would use that are NaN or infinite (joints, pose, shape, depth...)."""

    reason = "non_finite"


def check_finite(path: str | Path, arrays: dict) -> None:
    """Refuse NaN or infinite values in any of ``arrays`` (name -> array) read from ``path``.

    Raises
    ------
    NonFiniteError
        Naming the first such variable and how many of its values are not finite.
    """
    for name, values in arrays.items():
        values = np.asarray(values)
        if values.dtype.kind in "fc" and not np.isfinite(values).all():
            bad = int(np.size(values) - np.isfinite(values).sum())
            raise NonFiniteError(path, f"{name} has {bad} NaN or infinite values of "
                                       f"{np.size(values)}")


@dataclass(frozen=True, order=True)
class Skip:
    """An input (file, directory or clip) a build or a reader could not use, and why.

    Ordered by (file, reason, detail), so a sorted manifest is reproducible.

    Attributes
    ----------
    file : str
        The input.
    reason : str
        Machine-readable code: a :class:`SourceError` subclass's ``reason`` (``"corrupt"``,
        ``"too_short"``, ...), ``"error"`` for a task that failed otherwise.
    detail : str
        What is wrong, in words a user can act on (may be empty).
    """

    file: str
    reason: str
    detail: str = ""

    def __post_init__(self):
        object.__setattr__(self, "file", str(self.file))

    @classmethod
    def of(cls, error: SourceError, detail: str | None = None) -> Skip:
        """The skip a :class:`SourceError` stands for (``detail`` replaces the error's)."""
        return cls(error.path, error.reason, error.detail if detail is None else detail)

    def to_dict(self) -> dict:
        """The manifest's readable form: ``{"path", "reason", "detail"}``."""
        return {"path": self.file, "reason": self.reason, "detail": self.detail}

    @classmethod
    def from_dict(cls, item: dict) -> Skip:
        """Inverse of :meth:`to_dict` (a manifest entry)."""
        return cls(item["path"], item["reason"], item.get("detail", ""))

    def __str__(self) -> str:
        return f"{self.file}: {self.reason} {self.detail}".rstrip()
