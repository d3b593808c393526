"""Typed errors for model files the trainer reads (SMPL models, mean parameters)."""

from __future__ import annotations

from pathlib import Path


class ModelFileError(ValueError):
    """A model file that exists but cannot be used.

    Parameters
    ----------
    path : str or Path
        The offending file.
    detail : str
        What is wrong, in words a user can act on.
    """

    def __init__(self, path: str | Path, detail: str):
        self.path = str(path)
        self.detail = detail
        super().__init__(f"{self.path}: {detail}")
