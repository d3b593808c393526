"""Typed errors for model files the trainer reads (SMPL models, mean parameters)."""

from __future__ import annotations

from synthgen.core.smpl import ModelFileError

__all__ = ["ModelFileError"]
