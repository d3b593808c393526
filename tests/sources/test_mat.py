"""MAT-file reader/writer: v5 and v7.3 give what scipy gives for v5; bad files raise typed errors."""

from __future__ import annotations

import struct
import time
import tracemalloc
import zlib

import h5py
import numpy as np
import pytest
import scipy.io

from synthgen.core import limits
from synthgen.core.errors import (CorruptFileError, EmptyInputError, MissingFileError,
                                  MissingKeyError, OversizeError)
from synthgen.testing.made_inputs import deflated_zeros
from synthgen.sources.mat import MAT_FORMATS, load_mat, mat_format, mat_variables, save_mat, to_str, to_str_list


def _variables():
    cell = np.empty((1, 3), dtype=object)
    cell[0, :] = ["bg/kitchen_0001.jpg", "cloth/a.png", ""]
    mixed = np.empty((2, 1), dtype=object)
    mixed[0, 0] = np.arange(6.0).reshape(2, 3)
    mixed[1, 0] = "text"
    return {
        "sequence": "01_01",
        "empty_string": "",
        "rows": np.array(["ab", "cd"]),
        "flag": np.array([True, False, True]),
        "count": 3,
        "scale": 2.5,
        "row": np.arange(4.0),
        "joints": np.arange(2 * 24 * 5, dtype=np.float32).reshape(2, 24, 5),
        "one_frame": np.arange(48, dtype=np.float32).reshape(2, 24, 1),
        "labels": np.arange(12, dtype=np.uint8).reshape(3, 4),
        "column": np.ones((7, 1), dtype=np.uint8),
        "int16_3d": np.arange(24, dtype=np.int16).reshape(2, 3, 4),
        "nothing": np.zeros((0, 3)),
        "bg": cell,
        "mixed": mixed,
    }


def _assert_same(a, b, name):
    assert a.dtype == b.dtype, name
    assert a.shape == b.shape, name
    if a.dtype == object:
        for x, y in zip(a.flat, b.flat):
            _assert_same(x, y, name)
    else:
        np.testing.assert_array_equal(a, b, err_msg=name)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    directory = tmp_path_factory.mktemp("mat")
    return {fmt: save_mat(directory / f"all_{fmt}.mat", _variables(), mat_format=fmt) for fmt in MAT_FORMATS}


def test_v5_and_v73_load_identically(files):
    v5, v73 = load_mat(files["v5"]), load_mat(files["v7.3"])
    assert set(v5) == set(v73) == set(_variables())
    for name in v5:
        _assert_same(v5[name], v73[name], name)


def test_scipy_conventions(files):
    for fmt, path in files.items():
        data = load_mat(path)
        assert data["sequence"].shape == (1,) and data["sequence"][0] == "01_01", fmt
        assert data["row"].shape == (1, 4), fmt  # 1-D written as a MATLAB row
        assert data["count"].shape == (1, 1) and data["count"].dtype == np.int64, fmt
        assert data["flag"].dtype == np.uint8, fmt  # logical loads as uint8
        assert data["one_frame"].shape == (2, 24), fmt  # trailing singleton dropped as MATLAB does
        np.testing.assert_array_equal(data["joints"], _variables()["joints"])
        assert data["bg"].shape == (1, 3) and data["bg"].dtype == object, fmt
        assert to_str_list(data["bg"]) == ["bg/kitchen_0001.jpg", "cloth/a.png", ""], fmt
        assert to_str(data["sequence"]) == "01_01" and to_str(data["empty_string"]) == "", fmt
        assert to_str_list(data["rows"]) == ["ab", "cd"], fmt
        assert to_str(data["mixed"][1, 0]) == "text", fmt


def test_plain_scipy_file_is_read(tmp_path):
    path = tmp_path / "scipy.mat"
    scipy.io.savemat(path, {"a": np.arange(3.0), "s": "x"})
    assert mat_format(path) == "v5"
    data = load_mat(path)
    np.testing.assert_array_equal(data["a"], [[0.0, 1.0, 2.0]])
    assert to_str(data["s"]) == "x"


def test_v73_layout_is_matlab_like(files):
    path = files["v7.3"]
    with open(path, "rb") as f:
        head = f.read(520)
    assert head.startswith(b"MATLAB 7.3 MAT-file")
    assert head[124:128] == b"\x00\x02IM"
    assert head[512:520] == b"\x89HDF\r\n\x1a\n"
    with h5py.File(path, "r") as f:
        assert f["joints"].shape == (5, 24, 2)  # column-major: dimensions reversed
        assert f["joints"].attrs["MATLAB_class"] == b"single"
        assert f["sequence"].attrs["MATLAB_class"] == b"char"
        assert f["bg"].attrs["MATLAB_class"] == b"cell"
    assert mat_format(path) == "v7.3"


def test_plain_hdf5_counts_as_v73(tmp_path):
    path = tmp_path / "plain.mat"
    with h5py.File(path, "w") as f:
        f["x"] = np.arange(6.0).reshape(3, 2)
        f["x"].attrs["MATLAB_class"] = np.bytes_("double")
    assert mat_format(path) == "v7.3"
    np.testing.assert_array_equal(load_mat(path)["x"], np.arange(6.0).reshape(3, 2).T)


@pytest.mark.parametrize("fmt", MAT_FORMATS)
def test_selected_variables_only(files, fmt):
    data = load_mat(files[fmt], ["joints", "sequence"])
    assert set(data) == {"joints", "sequence"}
    assert mat_variables(files[fmt]) == list(_variables())
    with pytest.raises(MissingKeyError, match=r"all_.*\.mat: missing_key: .*'segm_9'"):
        load_mat(files[fmt], ["joints", "segm_9"])


def _segm_file(path):
    rng = np.random.default_rng(0)
    frames = {f"segm_{i}": rng.integers(0, 25, (240, 320), dtype=np.uint8) for i in range(1, 6)}
    save_mat(path, frames)
    return frames


def test_v5_reads_only_the_variables_asked_for(tmp_path):
    """Damage inside the last variable's compressed data is not seen when reading the first."""
    path = tmp_path / "frames.mat"
    frames = _segm_file(path)
    data = bytearray(path.read_bytes())
    data[-2000:-1000] = bytes(1000)
    path.write_bytes(bytes(data))
    assert mat_variables(path) == list(frames)
    np.testing.assert_array_equal(load_mat(path, ["segm_1"])["segm_1"], frames["segm_1"])
    with pytest.raises(CorruptFileError, match=r"frames\.mat: corrupt: cannot parse"):
        load_mat(path, ["segm_5"])


@pytest.mark.parametrize("fraction", [0.05, 0.5, 0.99])
def test_v5_truncated_is_caught_even_when_reading_one_variable(tmp_path, fraction):
    path = tmp_path / "frames.mat"
    _segm_file(path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    for read in (mat_variables, load_mat, lambda p: load_mat(p, ["segm_1"])):
        with pytest.raises(CorruptFileError, match=r"frames\.mat: corrupt: truncated"):
            read(path)


def test_missing_and_empty(tmp_path):
    with pytest.raises(MissingFileError, match=r"nope\.mat: missing_file"):
        load_mat(tmp_path / "nope.mat")
    (tmp_path / "empty.mat").write_bytes(b"")
    with pytest.raises(EmptyInputError, match=r"empty\.mat: empty"):
        load_mat(tmp_path / "empty.mat")
    with pytest.raises(EmptyInputError, match=r"empty\.mat: empty"):
        mat_variables(tmp_path / "empty.mat")


@pytest.mark.parametrize("fmt", MAT_FORMATS)
def test_truncated(files, tmp_path, fmt):
    path = tmp_path / f"cut_{fmt}.mat"
    data = files[fmt].read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptFileError, match=rf"cut_{fmt}\.mat: corrupt"):
        load_mat(path)


@pytest.mark.parametrize(
    "content, detail",
    [(b"hello", "shorter than a MAT-file header"), (b"x" * 200, "not a MATLAB v5 or v7.3")],
)
def test_not_a_mat_file(tmp_path, content, detail):
    path = tmp_path / "junk.mat"
    path.write_bytes(content)
    with pytest.raises(CorruptFileError, match=rf"junk\.mat: corrupt: .*{detail}"):
        load_mat(path)


def test_v73_header_without_hdf5(files, tmp_path):
    path = tmp_path / "header_only.mat"
    path.write_bytes(files["v7.3"].read_bytes()[:512])
    with pytest.raises(CorruptFileError, match=r"header_only\.mat: corrupt: .*no HDF5"):
        load_mat(path)


def test_v73_struct_is_refused(tmp_path):
    path = tmp_path / "struct.mat"
    with h5py.File(path, "w") as f:
        f.create_group("s").attrs["MATLAB_class"] = np.bytes_("struct")
    with pytest.raises(CorruptFileError, match=r"struct\.mat: corrupt: variable 's' is a MATLAB struct"):
        load_mat(path)


@pytest.mark.parametrize("fmt", MAT_FORMATS)
def test_same_variables_give_the_same_bytes_at_any_time(tmp_path, monkeypatch, fmt):
    # scipy and MATLAB write the time into the header; demo data must rebuild to the same bytes.
    paths = []
    for i, when in enumerate(["Mon Jan  1 00:00:00 2024", "Tue Dec  1 14:59:59 2026"]):
        monkeypatch.setattr(time, "asctime", lambda *_, when=when: when)
        paths.append(save_mat(tmp_path / f"{i}.mat", _variables(), mat_format=fmt))
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert paths[0].read_bytes().startswith(f"MATLAB {'7.3' if fmt == 'v7.3' else '5.0'} MAT-file".encode())
    np.testing.assert_array_equal(load_mat(paths[0])["joints"], _variables()["joints"])
    if fmt == "v5":
        assert "joints" in scipy.io.loadmat(paths[0])


# ---- memory bombs: tiny files that declare (or inflate to) huge arrays are refused unread --------

_MI_INT8, _MI_INT32, _MI_UINT32, _MI_DOUBLE, _MI_MATRIX, _MI_COMPRESSED = 1, 5, 6, 9, 14, 15
_CELL, _DOUBLE = 1, 6


def _element(mdtype: int, data: bytes) -> bytes:
    return struct.pack("<II", mdtype, len(data)) + data + bytes(-len(data) % 8)


def _matrix(name: str, cls: int, dims, body: bytes = b"", data_bytes: int | None = None) -> bytes:
    """A little-endian v5 miMATRIX element; ``data_bytes``: a real-part tag declaring that many
    bytes (the data itself is then appended by the caller)."""
    head = (_element(_MI_UINT32, struct.pack("<II", cls, 0))
            + _element(_MI_INT32, struct.pack(f"<{len(dims)}i", *dims)) + _element(_MI_INT8, name.encode()))
    if data_bytes is not None:
        return struct.pack("<II", _MI_MATRIX, len(head) + 8 + data_bytes) + head + struct.pack(
            "<II", _MI_DOUBLE, data_bytes)
    return _element(_MI_MATRIX, head + body)


def _v5_file(path, *elements: bytes, compress: bool = True):
    header = b"MATLAB 5.0 MAT-file, made".ljust(116, b" ") + bytes(8) + struct.pack("<H", 0x0100) + b"IM"
    parts = [header]
    for element in elements:
        if compress:
            data = zlib.compress(element)
            element = struct.pack("<II", _MI_COMPRESSED, len(data)) + data
        parts.append(element)
    path.write_bytes(b"".join(parts))
    return path


_OK = _matrix("ok", _DOUBLE, (1, 2), _element(_MI_DOUBLE, np.array([1.0, 2.0]).tobytes()))


@pytest.mark.parametrize("compress", [True, False])
def test_v5_variable_declaring_a_huge_array_is_refused_before_reading(tmp_path, compress):
    path = _v5_file(tmp_path / "segm.mat", _OK, _matrix("segm_1", _DOUBLE, (100000, 100000),
                                                         _element(_MI_DOUBLE, bytes(8))), compress=compress)
    assert path.stat().st_size < 300
    np.testing.assert_array_equal(load_mat(path, ["ok"])["ok"], [[1.0, 2.0]])  # the others still read
    with pytest.raises(OversizeError, match=r"segm\.mat: too_large: declares 80 GB for segm_1 "
                                            r"\(100000x100000 double\); expected \(240, 320\)$"):
        load_mat(path, ["segm_1"], max_shapes={"segm_1": (240, 320)})
    with pytest.raises(OversizeError, match=r"declares 80 GB for segm_1 .*; at most 134 MB for one array"):
        load_mat(path)


def test_v5_cell_element_declaring_a_huge_array_is_refused(tmp_path):
    inner = _matrix("", _CELL, (100000, 100000))
    path = _v5_file(tmp_path / "cell.mat", _matrix("c", _CELL, (1, 1), inner))
    with pytest.raises(OversizeError, match=r"declares 80 GB for c \(100000x100000 cell\)"):
        load_mat(path)
    many = _matrix("c", _CELL, (1, 10**9), inner)  # more elements than the bytes could hold
    with pytest.raises(CorruptFileError, match=r"cannot parse .* 'c': cell of 1000000000 elements"):
        load_mat(_v5_file(tmp_path / "many.mat", many), max_shapes={"c": (1, 10**9)})


def _zlib_bomb(name: str, dims, mebibytes: int) -> bytes:
    """A compressed element declaring ``dims`` doubles whose data inflates to ``mebibytes`` MiB."""
    data = deflated_zeros(mebibytes, head=_matrix(name, _DOUBLE, dims, data_bytes=mebibytes << 20))
    return struct.pack("<II", _MI_COMPRESSED, len(data)) + data


def _refused_allocating_little(path, message: str, max_shape) -> None:
    """``load_mat`` of ``segm_1`` bounded by ``max_shape`` raises ``message``, allocating < 4 MB."""
    tracemalloc.start()
    try:
        with pytest.raises(OversizeError, match=message):
            load_mat(path, ["segm_1"], max_shapes={"segm_1": max_shape})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20


def test_v5_zlib_bomb_is_inflated_only_up_to_the_bound(tmp_path, monkeypatch):
    path = _v5_file(tmp_path / "bomb.mat", _zlib_bomb("segm_1", (240, 320), 64), compress=False)
    assert path.stat().st_size < 100_000  # 64 MB of zeros
    _refused_allocating_little(path, r"bomb\.mat: too_large: segm_1 holds more than 618 kB of data; "
                                     r"expected \(240, 320\)", (240, 320))
    monkeypatch.setattr(limits, "MAX_ARRAY_BYTES", 1 << 20)  # the bound of a variable of any shape
    with pytest.raises(OversizeError, match=r"segm_1 holds more than 1.05 MB of data; at most 1.05 MB"):
        load_mat(path)


def test_v73_dataset_declaring_a_huge_array_is_refused_before_reading(tmp_path):
    path = tmp_path / "joints.mat"
    with h5py.File(path, "w") as f:
        f.create_dataset("ok", data=np.ones((2, 1))).attrs["MATLAB_class"] = np.bytes_("double")
        huge = f.create_dataset("joints2D", shape=(10**9, 24, 2), dtype=np.float64, chunks=(1000, 24, 2))
        huge.attrs["MATLAB_class"] = np.bytes_("double")
        empty = f.create_dataset("nothing", data=np.array([10**6, 10**6], dtype=np.uint64))
        empty.attrs["MATLAB_class"] = np.bytes_("double")
        empty.attrs["MATLAB_empty"] = np.uint8(1)
    assert path.stat().st_size < 20_000
    assert load_mat(path, ["ok"])["ok"].shape == (1, 2)
    with pytest.raises(OversizeError, match=r"joints\.mat: too_large: declares 384 GB for joints2D "
                                            r"\(1000000000x24x2 double\); at most 134 MB"):
        load_mat(path, ["joints2D"])
    with pytest.raises(CorruptFileError, match=r"'nothing' is flagged empty but has dimensions"):
        load_mat(path, ["nothing"])


def test_v73_gzip_chunk_bomb_is_refused_before_hdf5_inflates_it(tmp_path):
    """HDF5's deflate filter inflates a chunk whatever its size: 64 MB for a 614 kB frame."""
    path = tmp_path / "bomb.mat"
    with h5py.File(path, "w") as f:
        frame = f.create_dataset("segm_1", shape=(320, 240), dtype=np.float64, chunks=(320, 240),
                                 compression="gzip")
        frame.attrs["MATLAB_class"] = np.bytes_("double")
        frame[...] = 1.0
        frame.id.write_direct_chunk((0, 0), deflated_zeros(64))
        lzf = f.create_dataset("lzf", data=np.ones((2, 2)), compression="lzf")
        lzf.attrs["MATLAB_class"] = np.bytes_("double")
    assert path.stat().st_size < 100_000
    _refused_allocating_little(path, r"bomb\.mat: too_large: segm_1 holds more than 614 kB of data; "
                                     r"expected \(240, 320\)", (240, 320))
    with pytest.raises(CorruptFileError, match=r"'lzf' uses HDF5 filter\(s\) \[32000\]; expected only gzip"):
        load_mat(path, ["lzf"])
