"""Shared pytest fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the repository (real third-party files); skip when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real third-party test data not found at {SHARED_DATA} (../shared is absent)")
    return SHARED_DATA
