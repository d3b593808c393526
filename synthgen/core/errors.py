"""Typed errors for bad input.

Every error about an input file carries the file's path and a short machine-readable ``reason``
(used as the key in a store's manifest of skipped inputs) plus a human message saying what to do.
"""

from __future__ import annotations

from pathlib import Path


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


class NonFiniteError(SourceError):
    """Values a step would use that are NaN or infinite (joints, pose, shape, depth...)."""

    reason = "non_finite"
