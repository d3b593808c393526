"""A tiny store shared by the tools, notebook and object-store tests: 4 examples of 8-frame
clips in 2 shards, built once per session from the small demo (``tests/conftest.py``)."""

from __future__ import annotations

import io
from dataclasses import dataclass

from synthgen import store
from synthgen.build.synthetic import build
from synthgen.config import Config

CFG = Config(name="test").replace(clip={"length": 8}, store={"examples_per_shard": 2})
NUM_EXAMPLES = 4


@dataclass(frozen=True)
class TinyStore:
    url: str
    cache: str


def make_tiny_store(small_demo, tmp_path_factory) -> TinyStore:
    """The tiny store, built on first use in the session's base temporary directory."""
    root = tmp_path_factory.getbasetemp() / "inspect_tiny_store"
    out, cache = root / "tiny.zarr", root / "cache"
    tiny = TinyStore(str(out), str(cache))
    if out.exists() and store.finished_shards(store.open_group(tiny.url)).all():
        return tiny
    build(small_demo.kinetics_dir, small_demo.surreal_dir, str(out), num_examples=NUM_EXAMPLES,
          seed=3, cfg=CFG, cache_dir=cache, splits=None, overwrite=True, serial=True,
          stream=io.StringIO())
    return tiny
