"""Bounds on what an input file may make a reader allocate: tiny files that declare huge arrays
are refused (OversizeError naming the file and the array) before anything is allocated."""

from __future__ import annotations

import io
import pickle
import tracemalloc
import zipfile

import numpy as np
import pytest

from synthgen.core import limits
from synthgen.core.errors import CorruptFileError, OversizeError
from synthgen.core.smpl import ModelFileError, load_smpl_model
from synthgen.sources import motion_cache, threedpw
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
                                            r"\(1000000000x24x2 float64\); at most 134 MB for one array"):
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


# ---- pickles (3DPW sequence files, SMPL models) ---------------------------------------------------


def _pickled_array(values, shape: int) -> bytes:
    """A protocol-2 pickle of ``values`` (a 3-element array) whose state claims ``shape`` elements."""
    data = pickle.dumps(np.asarray(values), protocol=2)
    assert data.count(b"K\x03\x85") == 1
    return data.replace(b"K\x03\x85", b"J" + shape.to_bytes(4, "little") + b"\x85")


def _call(module: str, name: str, argument) -> bytes:
    """A protocol-2 pickle calling ``module.name(argument)``."""
    return (b"\x80\x02c" + f"{module}\n{name}\n".encode() + pickle.dumps(argument, protocol=2)[2:-1]
            + b"\x85R.")


HOSTILE_PICKLES = {  # name: (pickle, error, message)
    "object array with fewer elements than its shape (numpy crashed)": (
        _pickled_array(np.array([1, 2, 3], dtype=object), 10**6), CorruptFileError,
        r"corrupt: .*a numpy array of shape \(1000000,\) object pickled with 3 elements"),
    "array declaring 8 GB": (_pickled_array(np.zeros(3), 10**9), OversizeError,
                             r"too_large: an array declares 8 GB \(1000000000 float64\)"),
    "bytearray of a size": (_call("__builtin__", "bytearray", 10**12), OversizeError,
                            r"too_large: refused bytearray\(1000000000000,\)"),
    "numpy.ndarray called with a shape": (_call("numpy", "ndarray", (10**6, 10**6)), OversizeError,
                                          r"too_large: refused ndarray\(\(1000000, 1000000\),\)"),
}


@pytest.mark.parametrize("case", list(HOSTILE_PICKLES))
def test_a_pickle_that_would_allocate_what_it_declares_is_refused(tmp_path, case):
    data, error, message = HOSTILE_PICKLES[case]
    path = tmp_path / "seq.pkl"
    path.write_bytes(data)
    with pytest.raises(error, match=r"seq\.pkl: " + message):
        threedpw.load_pickle(path)
    with pytest.raises(ModelFileError, match=r"seq\.pkl: (corrupt or truncated pickle|refused to load)"):
        load_smpl_model(path)


def test_a_pickle_naming_a_huge_memo_index_allocates_nothing(tmp_path):
    """The C unpickler grows its memo list to the index a pickle names: 12 bytes cost 256 MB."""
    path = tmp_path / "memo.pkl"
    path.write_bytes(b"\x80\x02N" + b"r" + (2**24).to_bytes(4, "little") + b".")
    tracemalloc.start()
    try:
        assert threedpw.load_pickle(path) is None
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20
