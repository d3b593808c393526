"""MAT-file reader/writer: v5 and v7.3 give what scipy gives for v5; bad files raise typed errors."""

from __future__ import annotations

import time

import h5py
import numpy as np
import pytest
import scipy.io

from synthgen.core.errors import (CorruptFileError, EmptyInputError, MissingFileError,
                                  MissingKeyError)
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
