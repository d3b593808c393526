"""Shared pytest fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["tests.trainer.support"]

SHARED_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the repository (real third-party files); skip when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real third-party test data not found at {SHARED_DATA} (../shared is absent)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def small_demo(tmp_path_factory):
    """A small embedded demo dataset (3 SURREAL clips of 12 frames, 2 small background videos)."""
    from synthgen.demo.dataset import make_demo_data

    root = tmp_path_factory.mktemp("demo")
    return make_demo_data(root, seed=0, num_people=3, people_frames=12, num_backgrounds=2,
                          background_frames=16, test_size=True, workers=1)
