"""Bounds on what an input file may make a reader allocate: tiny files that declare huge arrays
are refused (OversizeError naming the file and the array) before anything is allocated."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from synthgen.core import limits
from synthgen.core.errors import CorruptFileError, OversizeError
from synthgen.sources import motion_cache
from synthgen.sources.keypoints import read_keypoints


def _npz(path, entries: dict):
    """An .npz whose entries are real arrays or (shape, dtype) headers followed by 16 bytes."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, value in entries.items():
            f = io.BytesIO()
            if isinstance(value, np.ndarray):
                np.lib.format.write_array(f, value)
            else:
                shape, dtype = value
                np.lib.format.write_array_header_1_0(
                    f, {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": shape})
                f.write(bytes(16))
            archive.writestr(f"{name}.npy", f.getvalue())
    return path


def test_format_bytes():
    assert [limits.format_bytes(n) for n in (12, 1500, 74_500_000_000)] == ["12 bytes", "1.5 kB", "74.5 GB"]


def test_npz_entry_declaring_a_huge_shape_is_refused_before_reading(tmp_path):
    path = _npz(tmp_path / "a.npz", {"small": np.arange(3), "huge": ((10**9, 24, 2), np.float64)})
    assert path.stat().st_size < 1000
    with pytest.raises(OversizeError, match=r"a\.npz: too_large: declares 384 GB for huge "
                                            r"\(1000000000x24x2 float64\); at most 67.1 MB for one array"):
        limits.read_npz(path)
    with pytest.raises(OversizeError, match=r"declares 7.68 kB for huge .*; expected \(10, 24, 2\)"):
        limits.read_npz(_npz(tmp_path / "b.npz", {"huge": ((20, 24, 2), np.float64)}),
                        {"huge": (10, 24, 2)})
    small = limits.read_npz(_npz(tmp_path / "c.npz", {"small": np.arange(3)}))["small"]
    np.testing.assert_array_equal(small, np.arange(3))
    with pytest.raises(CorruptFileError, match=r"d\.npz: corrupt: not a readable \.npz"):
        limits.read_npz(_npz(tmp_path / "d.npz", {"objects": np.array([None, 1], dtype=object)}))


def test_detector_npz_declaring_a_billion_frames_is_refused(tmp_path):
    path = _npz(tmp_path / "detections.npz", {"landmarks": ((10**9, 33, 2), np.float32),
                                             "visibility": np.ones((2, 33)), "detected": np.ones(2, bool)})
    with pytest.raises(OversizeError, match=r"detections\.npz: too_large: declares 264 GB for landmarks "
                                            r"\(1000000000x33x2 float32\); expected \(1000000, 33, 2\)"):
        read_keypoints(path)


def test_motion_cache_declaring_a_huge_array_is_computed_again(tmp_path):
    path = _npz(tmp_path / "cache.npz", {"version": np.array(motion_cache.CACHE_VERSION),
                                         "medians": ((10**8, 8, 8, 2), np.float16)})
    assert motion_cache.load(path) is None
