"""Read and write MATLAB ``.mat`` files, v5 (scipy) and v7.3 (HDF5), with scipy's conventions.

Whatever the file's kind, :func:`load_mat` returns what ``scipy.io.loadmat`` returns for a v5
file with default options: every numeric array at least 2-D in MATLAB's dimension order
(a MATLAB ``2x24xT`` array is a numpy ``(2, 24, T)`` array), logicals as uint8, a char row as a
1-element string array (``array(['01_01'])``), a cell array as an object array of the same shape
whose elements are loaded the same way. MATLAB drops trailing singleton dimensions beyond the
second, so a ``2x24x1`` array comes back ``(2, 24)``: callers read such arrays defensively.

v7.3 files are HDF5 with a 512-byte MATLAB header ("userblock"). HDF5 stores MATLAB's
column-major arrays with the dimensions reversed, so every dataset is transposed on reading and
writing; chars are uint16 code units (``MATLAB_class = 'char'``), cells are datasets of object
references into the ``#refs#`` group, empty arrays are a dims vector flagged ``MATLAB_empty``.

Both readers load only the variables asked for. v5: a walk over the variables' tags finds where
each one lies (decompressing only the first bytes of each, for its name) and scipy parses just the
bytes of the variables asked for. v7.3: h5py opens only the datasets named.

Neither reader allocates what a file merely declares: each variable's declared size (v5 array
headers, nested cells included; HDF5 dataset shapes) is checked against a bound
(:mod:`synthgen.core.limits`) before its data is read, and a compressed variable (v5 element,
HDF5 gzip chunk) is inflated only up to that bound.
"""

from __future__ import annotations

import io
import math
import struct
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import NamedTuple

import h5py
import numpy as np
import scipy.io

from synthgen.core.errors import (CorruptFileError, EmptyInputError, MissingFileError,
                                  MissingKeyError)
from synthgen.core.limits import Budget, check_h5_chunks

MAT_FORMATS = ("v5", "v7.3")

_HEADER_BYTES = 128
_USERBLOCK_BYTES = 512
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_MI_MATRIX, _MI_COMPRESSED = 14, 15

#: numpy dtype -> MATLAB class name (v7.3 ``MATLAB_class`` attribute).
_MATLAB_CLASS = {
    np.dtype(np.float64): "double", np.dtype(np.float32): "single",
    np.dtype(np.int8): "int8", np.dtype(np.uint8): "uint8",
    np.dtype(np.int16): "int16", np.dtype(np.uint16): "uint16",
    np.dtype(np.int32): "int32", np.dtype(np.uint32): "uint32",
    np.dtype(np.int64): "int64", np.dtype(np.uint64): "uint64",
    np.dtype(np.bool_): "logical",
}
_NUMPY_DTYPE = {name: dtype for dtype, name in _MATLAB_CLASS.items() if name != "logical"}
_NUMPY_DTYPE["logical"] = np.dtype(np.uint8)


def _check_file(path: Path) -> None:
    if not path.exists():
        raise MissingFileError(path, "file does not exist")
    if not path.is_file():
        raise MissingFileError(path, "is not a regular file")
    if path.stat().st_size == 0:
        raise EmptyInputError(path, "file is empty (0 bytes)")


def mat_format(path) -> str:
    """Kind of a MAT-file, from its header.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    str
        ``"v5"`` (MATLAB 5 to 7.2, scipy's format) or ``"v7.3"`` (HDF5; also accepted: a plain
        HDF5 file without MATLAB's 512-byte header).

    Raises
    ------
    MissingFileError, EmptyInputError
        The file does not exist or has 0 bytes.
    CorruptFileError
        The header is shorter than 128 bytes or is neither a v5 nor a v7.3 header (MATLAB v4
        files are not supported).
    """
    path = Path(path)
    _check_file(path)
    with open(path, "rb") as f:
        head = f.read(_USERBLOCK_BYTES + len(_HDF5_SIGNATURE))
    if head.startswith(_HDF5_SIGNATURE):
        return "v7.3"
    if len(head) < _HEADER_BYTES:
        raise CorruptFileError(path, f"only {len(head)} bytes, shorter than a MAT-file header (128)")
    endian = head[126:128]
    if not head.startswith(b"MATLAB") or endian not in (b"IM", b"MI"):
        raise CorruptFileError(path, "not a MATLAB v5 or v7.3 MAT-file (bad header)")
    version = struct.unpack("<H" if endian == b"IM" else ">H", head[124:126])[0]
    if version == 0x0100:
        return "v5"
    if version == 0x0200:
        if head[_USERBLOCK_BYTES:] != _HDF5_SIGNATURE:
            raise CorruptFileError(path, "MAT-file v7.3 header but no HDF5 data after it (truncated?)")
        return "v7.3"
    raise CorruptFileError(path, f"unknown MAT-file version 0x{version:04x}")


def _v5_element(buf: bytes, offset: int, endian: str) -> tuple[int, bytes, int]:
    """One v5 data element of ``buf`` at ``offset``: (type, data, offset of the next element)."""
    (first,) = struct.unpack(endian + "I", buf[offset:offset + 4])
    if first >> 16:  # small data element: type and size in one word, data in the tag's 4 bytes
        size = first >> 16
        return first & 0xFFFF, buf[offset + 4:offset + 4 + size], offset + 8
    mdtype, size = struct.unpack(endian + "II", buf[offset:offset + 8])
    return mdtype, buf[offset + 8:offset + 8 + size], offset + 8 + size + (-size) % 8


#: v5 array class codes 1..17 (mxCELL_CLASS ...) -> MATLAB class names.
_V5_CLASSES = ("cell", "struct", "object", "char", "sparse", "double", "single", "int8", "uint8",
               "int16", "uint16", "int32", "uint32", "int64", "uint64", "function", "opaque")
_V5_COMPLEX = 0x0800
#: Bytes of a v5 variable's element besides its data (tags, flags, dims, name, padding): what
#: its stored size may exceed the declared array's bytes by.
_V5_HEADER_SLACK = 4096


class _V5Header(NamedTuple):
    """What a v5 miMATRIX element declares before its data."""

    name: str
    cls: str
    complex: bool
    dims: tuple[int, ...]
    data_offset: int  #: offset in the element (tag included) of what follows the name

    def itemsize(self) -> int:
        """Bytes per element as loaded (object references 8, chars 4, sparse bounded by its data)."""
        if self.cls in _NUMPY_DTYPE:
            return _NUMPY_DTYPE[self.cls].itemsize * (2 if self.complex else 1)
        return {"char": 4, "sparse": 0}.get(self.cls, 8)


def _v5_header(head: bytes, endian: str, offset: int = 0) -> _V5Header:
    """Class, dims and name of the miMATRIX element at ``offset`` of ``head`` (tag included)."""
    mdtype, _, _ = _v5_element(head, offset, endian)
    if mdtype != _MI_MATRIX:
        raise ValueError(f"data element of type {mdtype}, expected a matrix (14)")
    _, flags, pos = _v5_element(head, offset + 8, endian)
    _, dims, pos = _v5_element(head, pos, endian)
    _, name, pos = _v5_element(head, pos, endian)
    (word,) = struct.unpack(endian + "I", flags[:4])
    code = word & 0xFF
    if not 1 <= code <= len(_V5_CLASSES):
        raise ValueError(f"unknown array class {code}")
    dims = struct.unpack(endian + "i" * (len(dims) // 4), dims[:len(dims) // 4 * 4])
    if any(d < 0 for d in dims):
        raise ValueError(f"negative dimensions {dims}")
    return _V5Header(bytes(name).decode("latin-1"), _V5_CLASSES[code - 1],
                     bool(word & _V5_COMPLEX), dims, pos - offset)


def _v5_check(buf: bytes, offset: int, endian: str, budget: Budget) -> None:
    """Count in ``budget`` what the miMATRIX element at ``offset`` (and every element nested in
    a cell, struct or object) declares, before scipy allocates any of it."""
    mdtype, body, _ = _v5_element(buf, offset, endian)
    if not body:  # an empty element: scipy's empty array
        return
    header = _v5_header(buf, endian, offset)
    budget.take(header.dims, header.itemsize(), header.cls)
    if header.cls not in ("cell", "struct", "object"):
        return
    end = offset + 8 + len(body)
    pos = offset + header.data_offset
    count = math.prod(header.dims)
    if header.cls != "cell":
        if header.cls == "object":
            _, _, pos = _v5_element(buf, pos, endian)  # class name
        _, length, pos = _v5_element(buf, pos, endian)
        _, names, pos = _v5_element(buf, pos, endian)
        (length,) = struct.unpack(endian + "i", length[:4])
        count *= len(names) // length if length > 0 else 0
    if count * 8 > end - pos:  # each element is a tagged miMATRIX, at least 8 bytes
        raise ValueError(f"{header.cls} of {count} elements in {end - pos} bytes")
    for _ in range(count):
        _v5_check(buf, pos, endian, budget)
        pos = _v5_element(buf, pos, endian)[2]


def _v5_index(path: Path) -> dict[str, tuple[int, int, _V5Header]]:
    """Name -> (offset, size in bytes, header) of each top-level variable of a v5 file, tag
    included.

    Reads only tags and the first few hundred bytes of each variable (decompressing just enough of
    a compressed one to see its name), so listing and picking variables never decompresses data
    that is not asked for. Raises when the last variable is cut short (``scipy.io.whosmat`` would
    silently stop there).
    """
    size = path.stat().st_size
    index = {}
    with open(path, "rb") as f:
        endian = "<" if f.read(_HEADER_BYTES)[126:128] == b"IM" else ">"
        pos = _HEADER_BYTES
        while pos < size:
            if size - pos < 8:
                raise CorruptFileError(path, f"truncated: {size - pos} stray bytes after variable {len(index)}")
            f.seek(pos)
            tag = f.read(8)
            mdtype, nbytes = struct.unpack(endian + "II", tag)
            if mdtype not in (_MI_MATRIX, _MI_COMPRESSED):
                raise CorruptFileError(path, f"variable {len(index) + 1}: data element of type {mdtype & 0xFFFF}, "
                                             "expected a matrix (14) or compressed data (15)")
            end = pos + 8 + nbytes
            if end > size:
                raise CorruptFileError(
                    path, f"truncated: variable {len(index) + 1} needs {end - size} more bytes than the file has"
                )
            try:
                if mdtype == _MI_COMPRESSED:
                    head = zlib.decompressobj().decompress(f.read(min(nbytes, 1024)), 1024)
                else:
                    head = tag + f.read(min(nbytes, 1024))
                header = _v5_header(head, endian)
                index[header.name] = (pos, end - pos, header)
            except (zlib.error, struct.error, ValueError) as exc:
                raise CorruptFileError(path, f"variable {len(index) + 1} has an unreadable header: {exc}") from exc
            pos = end
    return index


def mat_variables(path) -> list[str]:
    """Names of the variables of a MAT-file, without loading their data.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    list of str
        In file order (v5) or HDF5 order (v7.3); MATLAB's internal ``#refs#``/``#subsystem#``
        groups excluded.

    Raises
    ------
    MissingFileError, EmptyInputError, CorruptFileError
        Missing, empty, truncated or unparsable file.
    """
    path = Path(path)
    kind = mat_format(path)
    if kind == "v7.3":
        with _open_h5(path) as f:
            return [name for name in f.keys() if not name.startswith("#")]
    return list(_v5_index(path))


def load_mat(path, variable_names: Iterable[str] | None = None, *,
             max_shapes: Mapping[str, tuple[int, ...]] | None = None) -> dict[str, np.ndarray]:
    """Load variables of a v5 or v7.3 MAT-file as ``scipy.io.loadmat`` loads a v5 file.

    Parameters
    ----------
    path : str or Path
    variable_names : iterable of str, optional
        Load only these (the other variables' data is not read). ``None``: every variable.
    max_shapes : mapping of str to tuple of int, optional
        The largest shape the caller's format allows for a variable (``{"segm_1": (240, 320)}``);
        one declared larger (at :data:`synthgen.core.limits.MAX_ITEM_BYTES` per element) is
        refused before its data is read. Other variables: at most
        :data:`synthgen.core.limits.MAX_ARRAY_BYTES` each, elements of cells included.

    Returns
    -------
    dict of str to ndarray
        Variable name to value, with scipy's conventions (module docstring); no ``__header__``
        entries.

    Raises
    ------
    MissingFileError, EmptyInputError, CorruptFileError
        Missing, empty, truncated or unparsable file (or a MATLAB struct/object in v7.3).
    MissingKeyError
        A requested variable is not in the file.
    OversizeError
        A variable declares, holds or inflates to more than its bound (above).
    """
    path = Path(path)
    names = None if variable_names is None else list(variable_names)
    max_shapes = dict(max_shapes or {})
    if mat_format(path) == "v7.3":
        out = _load_h5(path, names, max_shapes)
    else:
        out = _load_v5(path, names, max_shapes)
    if names is not None:
        missing = [n for n in names if n not in out]
        if missing:
            raise MissingKeyError(path, f"variable(s) {', '.join(map(repr, missing))} not in the file")
    return out


def _load_v5(path: Path, names: list[str] | None, max_shapes: Mapping) -> dict[str, np.ndarray]:
    """scipy's loadmat, fed only the asked-for variables' bytes (located by :func:`_v5_index`),
    each checked against its :class:`~synthgen.core.limits.Budget` before it is read and inflated
    here (so scipy never sees a compressed element)."""
    index = _v5_index(path)  # also catches a truncated file, which scipy may half-read silently
    wanted = list(index) if names is None else list(dict.fromkeys(n for n in names if n in index))
    with open(path, "rb") as f:
        parts = [f.read(_HEADER_BYTES)]
        endian = "<" if parts[0][126:128] == b"IM" else ">"
        for name in wanted:
            offset, size, header = index[name]
            Budget(path, name, max_shapes.get(name)).take(header.dims, header.itemsize(), header.cls)
            budget = Budget(path, name, max_shapes.get(name))
            element = _v5_read(f, offset, size, endian, budget)
            try:
                _v5_check(memoryview(element), 0, endian, budget)  # a view: slices copy nothing
            except (struct.error, ValueError, IndexError) as exc:
                raise CorruptFileError(path, f"cannot parse MAT-file v5 variable {name!r}: {exc}") from exc
            parts.append(element)
    try:
        raw = scipy.io.loadmat(io.BytesIO(b"".join(parts)))
    except Exception as exc:  # scipy raises many types (ValueError, OSError, zlib.error...)
        raise CorruptFileError(path, f"cannot parse MAT-file v5: {exc}") from exc
    return {k: v for k, v in raw.items() if not k.startswith("__")}


def _v5_read(f, offset: int, size: int, endian: str, budget: Budget) -> bytes:
    """The miMATRIX element (tag included, padded to 8 bytes) of the variable at ``offset`` of
    ``f``, inflated if compressed, at most ``budget.limit`` plus :data:`_V5_HEADER_SLACK` bytes
    (else :class:`OversizeError`, before more than that is read or inflated; zlib never makes
    data smaller than that bound larger than it by more than the slack)."""
    cap = budget.limit + _V5_HEADER_SLACK
    f.seek(offset)
    mdtype, nbytes = struct.unpack(endian + "II", f.read(8))
    if nbytes > cap:
        budget.refuse_stream(cap)
    if mdtype == _MI_MATRIX:
        f.seek(offset)
        return f.read(size)
    inflate = zlib.decompressobj()
    try:
        out = inflate.decompress(f.read(nbytes), cap + 1)
        if len(out) > cap:
            budget.refuse_stream(cap)
        end = _v5_element(out, 0, endian)[2]
    except (zlib.error, struct.error) as exc:
        raise CorruptFileError(f.name, f"cannot parse MAT-file v5 variable {budget.name!r}: "
                                       f"it does not inflate ({exc})") from exc
    return out if end == len(out) else out[:end].ljust(end, b"\0")


def _open_h5(path: Path) -> h5py.File:
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise CorruptFileError(path, f"cannot open MAT-file v7.3 (HDF5): {exc}") from exc


def _load_h5(path: Path, names: list[str] | None, max_shapes: Mapping) -> dict[str, np.ndarray]:
    with _open_h5(path) as f:
        if names is None:
            names = [n for n in f.keys() if not n.startswith("#")]
        out = {}
        for name in names:
            if name in f:
                try:
                    out[name] = _h5_value(f, f[name], path, Budget(path, name, max_shapes.get(name)))
                except (OSError, KeyError, ValueError) as exc:
                    raise CorruptFileError(path, f"cannot read variable {name!r}: {exc}") from exc
    return out


def _attr_str(obj, key: str) -> str | None:
    value = obj.attrs.get(key)
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def _chars_to_strings(codes: np.ndarray) -> np.ndarray:
    """MATLAB char matrix (m, n) of code units -> scipy's (m,) array of n-character strings."""
    rows = ["".join(map(chr, row)) for row in np.atleast_2d(codes)]
    return np.array(rows, dtype=f"<U{max(codes.shape[-1], 1)}")


def _h5_value(f: h5py.File, obj, path: Path, budget: Budget):
    """One MATLAB value of a v7.3 file, each dataset's declared shape (and chunk shape) counted in
    ``budget`` before it is read."""
    name = budget.name
    cls = _attr_str(obj, "MATLAB_class")
    if isinstance(obj, h5py.Group) or cls not in (*_NUMPY_DTYPE, "char", "cell"):
        raise CorruptFileError(path, f"variable {name!r} is a MATLAB {cls or 'HDF5 group'}, not supported")
    itemsize = max(obj.dtype.itemsize, {"char": 4, "cell": 8}.get(cls) or _NUMPY_DTYPE[cls].itemsize)
    budget.take(max(obj.shape, obj.chunks or (), key=math.prod), itemsize, cls)
    check_h5_chunks(obj, budget)
    data = obj[()]
    if obj.attrs.get("MATLAB_empty", 0):
        dims = tuple(int(d) for d in np.atleast_1d(data))
        if math.prod(dims):
            raise CorruptFileError(path, f"variable {name!r} is flagged empty but has dimensions {dims}")
        if cls == "char":  # scipy's rows of empty strings
            budget.take(dims[:1], 4, cls)
            return np.zeros(dims[:1], dtype="<U1")
        return np.zeros(dims, dtype=object if cls == "cell" else _NUMPY_DTYPE[cls])
    data = data.T  # HDF5 holds MATLAB's column-major array with reversed dimensions
    if cls == "char":
        return _chars_to_strings(data)
    if cls == "cell":
        out = np.empty(data.shape, dtype=object)
        for index in np.ndindex(data.shape):
            out[index] = _h5_value(f, f[data[index]], path, budget)
        return out
    return np.asarray(data, dtype=_NUMPY_DTYPE[cls])


def to_str(value) -> str:
    """A MATLAB string as loaded (``array(['01_01'])``, a 1-element cell, or ``str``) -> ``str``."""
    while isinstance(value, np.ndarray):
        if value.size == 0:
            return ""
        if value.size != 1:
            raise ValueError(f"expected one string, got an array of shape {value.shape}")
        value = value.reshape(-1)[0]
    return str(value)


def to_str_list(value) -> list[str]:
    """A cell array of strings as loaded (e.g. SURREAL's (1, T) ``bg``) -> flat list, column-major.

    A plain char array (``array(['ab', 'cd'])``) gives its rows.
    """
    value = np.asarray(value)
    if value.dtype.kind == "U":
        return [str(v) for v in value.reshape(-1)]
    return [to_str(v) for v in value.reshape(-1, order="F")]


def _matlab_array(value):
    """Normalise a value the way MATLAB would hold it: str, object (cell) or numeric array >= 2-D.

    1-D arrays become rows (scipy's ``oned_as='row'``); trailing singleton dimensions beyond the
    second are dropped as MATLAB does (a (2, 24, 1) array is saved as 2x24).
    """
    if isinstance(value, str):
        return value
    arr = np.asarray(value)
    if arr.dtype.kind == "U":
        return str(arr.reshape(-1)[0]) if arr.size == 1 else arr
    arr = np.atleast_2d(arr)
    while arr.ndim > 2 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    return arr


def save_mat(path, variables: Mapping[str, object], *, mat_format: str = "v5", compress: bool = True) -> Path:
    """Write variables to a MAT-file that :func:`load_mat` (and scipy / MATLAB) read back.

    Parameters
    ----------
    path : str or Path
    variables : mapping of str to array_like or str
        Numeric arrays (bool is written as MATLAB logical), strings, arrays of strings, object
        arrays (written as cell arrays; elements are strings or numeric arrays).
    mat_format : {"v5", "v7.3"}
        ``"v5"`` via ``scipy.io.savemat``; ``"v7.3"`` as HDF5 via h5py with MATLAB's 512-byte
        header, ``MATLAB_class`` attributes, transposed datasets and ``#refs#`` for cells.
    compress : bool
        zlib (v5) or gzip (v7.3, datasets >= 4 KiB) compression.

    Returns
    -------
    Path
    """
    path = Path(path)
    if mat_format not in MAT_FORMATS:
        raise ValueError(f"mat_format must be one of {MAT_FORMATS}, got {mat_format!r}")
    values = {name: _matlab_array(v) for name, v in variables.items()}
    if mat_format == "v5":
        scipy.io.savemat(str(path), values, do_compression=compress)
        with open(path, "r+b") as f:  # scipy's header text holds the time of writing
            f.write(_header_text("5.0"))
        return path
    with h5py.File(path, "w", userblock_size=_USERBLOCK_BYTES, track_order=True) as f:
        refs = None
        for name, value in values.items():
            if isinstance(value, np.ndarray) and value.dtype == object and refs is None:
                refs = f.create_group("#refs#")
            _h5_write(f, name, value, refs, compress)
    header = _header_text("7.3") + b"\x00" * 8 + struct.pack("<H", 0x0200) + b"IM"
    with open(path, "r+b") as f:
        f.write(header.ljust(_USERBLOCK_BYTES, b"\x00"))
    return path


def _header_text(version: str) -> bytes:
    """The 116-byte descriptive text that opens a MAT-file. MATLAB and scipy put the time of
    writing there; ours names the writer instead, so that the same variables give the same bytes."""
    schema = " HDF5 schema 1.00 ." if version == "7.3" else ""
    return f"MATLAB {version} MAT-file, written by synthgen{schema}".encode("ascii").ljust(116, b" ")


def _h5_write(group, name: str, value, refs, compress: bool):
    """Write one MATLAB value as a dataset ``name`` of ``group``; cells put elements in ``refs``."""
    if isinstance(value, str) or (isinstance(value, np.ndarray) and value.dtype.kind == "U"):
        if not isinstance(value, str) and value.ndim > 1:
            raise TypeError(f"cannot write {name!r}: only 1-D string arrays (char matrix rows) are supported")
        rows = [value] if isinstance(value, str) else [str(v) for v in value]
        width = max(len(r) for r in rows)
        if width == 0:
            return _h5_write_empty(group, name, (len(rows) if len(rows) > 1 else 0, 0), "char")
        codes = np.array([[ord(c) for c in r.ljust(width)] for r in rows], dtype=np.uint16)
        ds = group.create_dataset(name, data=codes.T)
        ds.attrs["MATLAB_class"] = np.bytes_("char")
        ds.attrs["MATLAB_int_decode"] = np.int32(2)
        return ds
    if value.size == 0:
        cls = "cell" if value.dtype == object else _MATLAB_CLASS[value.dtype]
        return _h5_write_empty(group, name, value.shape, cls)
    if value.dtype == object:
        ref_data = np.empty(value.shape, dtype=h5py.ref_dtype)
        for index in np.ndindex(value.shape):
            element = _h5_write(refs, str(len(refs)), _matlab_array(value[index]), refs, compress)
            ref_data[index] = element.ref
        ds = group.create_dataset(name, data=ref_data.T)
        ds.attrs["MATLAB_class"] = np.bytes_("cell")
        return ds
    if value.dtype not in _MATLAB_CLASS:
        raise TypeError(f"cannot write {name!r} of dtype {value.dtype} to a MAT-file v7.3")
    options = {"compression": "gzip", "compression_opts": 4} if compress and value.nbytes >= 4096 else {}
    ds = group.create_dataset(name, data=value.T.astype(_NUMPY_DTYPE[_MATLAB_CLASS[value.dtype]]), **options)
    ds.attrs["MATLAB_class"] = np.bytes_(_MATLAB_CLASS[value.dtype])
    if value.dtype == np.bool_:
        ds.attrs["MATLAB_int_decode"] = np.int32(1)
    return ds


def _h5_write_empty(group, name: str, shape, cls: str):
    ds = group.create_dataset(name, data=np.array(shape, dtype=np.uint64))
    ds.attrs["MATLAB_class"] = np.bytes_(cls)
    ds.attrs["MATLAB_empty"] = np.uint8(1)
    return ds
