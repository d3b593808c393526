"""How much memory one array of an input file may take, checked against what the file declares
before the array is read.

A hostile or broken file can declare a huge array in a few bytes (a ``.mat`` header claiming
100000x100000, a zlib stream inflating to gigabytes, an ``.npz`` entry whose header states a giant
shape, a pickle naming a memo index of 10**9). Readers check the declared size against a
:class:`Budget` first and raise :class:`~synthgen.core.errors.OversizeError` (a skip, like other
bad inputs) instead of allocating.

Where a format fixes an array's shape (a SURREAL frame is 240x320), the bound is that shape at
:data:`MAX_ITEM_BYTES` per element; otherwise it is :data:`MAX_ARRAY_BYTES`.
"""

from __future__ import annotations

import math
import pickle
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from synthgen.core.errors import CorruptFileError, OversizeError

#: Bytes one array of an input file may take when its format does not fix the array's shape
#: (SURREAL ``_info.mat`` variables, motion caches, pickled arrays of 3DPW and SMPL files): the
#: per-frame values of a clip of hours, the largest array of a body model (SMPL-X ``shapedirs``,
#: 100 MB) fit.
MAX_ARRAY_BYTES = 128 * 2**20
#: Bytes per element of an array whose shape the format fixes: the widest real numeric type
#: (float64, int64), so a frame stored in any real type passes.
MAX_ITEM_BYTES = 8
#: HDF5 filter ids of the datasets we read (MATLAB v7.3 writes these): deflate (gzip), shuffle,
#: fletcher32.
_H5_DEFLATE = 1
_H5_FILTERS = (_H5_DEFLATE, 2, 3)


def format_bytes(nbytes: int) -> str:
    """``74.5 GB``-style size (decimal units)."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if nbytes >= scale:
            return f"{nbytes / scale:.3g} {unit}"
    return f"{nbytes} bytes"


class Budget:
    """The bytes one array of a file may still take while its parts are declared.

    Parameters
    ----------
    path : str or Path
        The file (named in the error).
    name : str
        The array (a variable, an entry).
    max_shape : tuple of int, optional
        The largest shape the format allows; ``None``: :data:`MAX_ARRAY_BYTES`.
    """

    def __init__(self, path, name: str, max_shape: tuple[int, ...] | None = None):
        self.path, self.name = path, name
        if max_shape is None:
            self.limit = MAX_ARRAY_BYTES
            self.expected = f"at most {format_bytes(MAX_ARRAY_BYTES)} for one array"
        else:
            self.limit = math.prod(max_shape) * MAX_ITEM_BYTES
            self.expected = f"expected {tuple(int(d) for d in max_shape)}"
        self.used = 0

    def take(self, shape, itemsize: int, kind: str) -> None:
        """Count an array part of ``shape`` (may be any size) and ``itemsize`` bytes per element.

        Raises
        ------
        OversizeError
            The parts counted so far exceed the limit.
        """
        self.used += math.prod(int(d) for d in shape) * int(itemsize)
        if self.used > self.limit:
            dims = "x".join(str(int(d)) for d in shape) or "scalar"
            raise OversizeError(self.path, f"declares {format_bytes(self.used)} for {self.name} "
                                           f"({dims} {kind}); {self.expected}")

    def refuse_stream(self, stored: int) -> None:
        """Raise :class:`OversizeError`: the array's stored bytes (``stored``, inflated or not)
        exceed what its declared size can need."""
        raise OversizeError(self.path, f"{self.name} holds more than {format_bytes(stored)} of "
                                       f"data; {self.expected}")


def check_h5_chunks(obj, budget: Budget) -> None:
    """Inflate each gzip chunk of an h5py dataset ``obj``, up to its declared size, before HDF5
    reads it:
    HDF5's deflate filter grows its buffer to whatever a chunk inflates to (a 400 kB file made it
    allocate 400 MB for a 240x320 frame). Filters other than those (MATLAB's) are refused.

    Raises
    ------
    OversizeError
        A chunk inflates to more than its declared size.
    CorruptFileError
        A chunk that does not inflate, or another filter.
    """
    path = budget.path
    plist = obj.id.get_create_plist()
    filters = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
    unknown = sorted(set(filters) - set(_H5_FILTERS))
    if unknown:
        raise CorruptFileError(path, f"variable {budget.name!r} uses HDF5 filter(s) {unknown}; "
                                     f"expected only gzip, shuffle and fletcher32")
    if _H5_DEFLATE not in filters:
        return
    skipped = 1 << filters.index(_H5_DEFLATE)  # a chunk's filter mask bit: stored uncompressed
    chunk_bytes = math.prod(obj.chunks) * obj.dtype.itemsize
    offsets = []
    obj.id.chunk_iter(lambda info: offsets.append(info.chunk_offset))
    for offset in offsets:
        mask, stored = obj.id.read_direct_chunk(offset)
        try:
            size = len(stored if mask & skipped else
                       zlib.decompressobj().decompress(stored, chunk_bytes + 1))
        except zlib.error as exc:
            raise CorruptFileError(path, f"variable {budget.name!r}: a chunk does not inflate "
                                         f"({exc})") from exc
        if size > chunk_bytes:
            budget.refuse_stream(chunk_bytes)


def check_npy(f, budget: Budget) -> None:
    """Count in ``budget`` the array a ``.npy`` stream (at its start) declares in its header.

    Raises
    ------
    OversizeError
        More than the budget.
    ValueError
        Not a ``.npy`` header.
    """
    version = np.lib.format.read_magic(f)
    header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
              else np.lib.format.read_array_header_2_0)
    shape, _, dtype = header(f)
    budget.take(shape, dtype.itemsize, str(dtype))


def read_npz(path, max_shapes: Mapping[str, tuple[int, ...]] | None = None) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file, each checked against its declared size before it is read.

    Parameters
    ----------
    path : str or Path
    max_shapes : mapping of str to tuple of int, optional
        Largest shape of an entry (others: :data:`MAX_ARRAY_BYTES`).

    Raises
    ------
    OversizeError
        An entry's ``.npy`` header declares more than its bound.
    CorruptFileError
        Not a zip of ``.npy`` entries, truncated, an object (pickled) entry.
    """
    path = Path(path)
    max_shapes = max_shapes or {}
    out = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                name = info.filename.removesuffix(".npy")
                with archive.open(info) as f:
                    check_npy(f, Budget(path, name, max_shapes.get(name)))
                with archive.open(info) as f:
                    out[name] = np.lib.format.read_array(f, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise CorruptFileError(path, f"not a readable .npz ({exc or 'empty file'})") from exc
    return out


class PickleSizeError(pickle.UnpicklingError):
    """A pickle that declares an array beyond :data:`MAX_ARRAY_BYTES`, or asks for a size."""


class BoundedUnpickler(pickle._Unpickler):
    """The pure-Python unpickler, checking what a pickle makes numpy and Python allocate.

    The C unpickler grows its memo list to whatever index the pickle names (a 12-byte pickle
    makes it zero gigabytes); this one's memo is a dict. Each numpy array's pickled state is
    checked before numpy reads it (its size against :data:`MAX_ARRAY_BYTES`, its data against its
    shape: numpy crashes on an object array pickled with fewer elements than its shape), and a
    call that allocates a size (``numpy.ndarray(shape)``, ``bytearray(n)``; pickles of data
    never make one) is refused. Subclasses define ``find_class`` (the allowed globals).

    Raises
    ------
    PickleSizeError
        Those cases; other malformed array states raise :class:`pickle.UnpicklingError`.
    """

    dispatch = dict(pickle._Unpickler.dispatch)

    def load_build(self):
        if isinstance(self.stack[-2], np.ndarray):
            _check_array_state(self.stack[-1])
        pickle._Unpickler.load_build(self)

    def load_reduce(self):
        _refuse_sized_call(self.stack[-2], self.stack[-1])
        pickle._Unpickler.load_reduce(self)

    def load_newobj(self):
        _refuse_sized_call(self.stack[-2], self.stack[-1])
        pickle._Unpickler.load_newobj(self)

    def load_newobj_ex(self):
        _refuse_sized_call(self.stack[-3], self.stack[-2])
        pickle._Unpickler.load_newobj_ex(self)

    dispatch[pickle.BUILD[0]] = load_build
    dispatch[pickle.REDUCE[0]] = load_reduce
    dispatch[pickle.NEWOBJ[0]] = load_newobj
    dispatch[pickle.NEWOBJ_EX[0]] = load_newobj_ex


def _refuse_sized_call(func, args) -> None:
    if func is np.ndarray or (func is bytearray and args and not isinstance(args[0], (str, bytes))):
        raise PickleSizeError(f"refused {func.__name__}{tuple(args)!r:.80}: a pickle of data "
                              f"holds its arrays' values, it never asks for a size")


def _check_array_state(state) -> None:
    """numpy's ``ndarray.__setstate__`` argument ``([version,] shape, dtype, fortran, data)``."""
    if not isinstance(state, tuple) or len(state) not in (4, 5):
        raise pickle.UnpicklingError("malformed numpy array state")
    shape, dtype, _, data = state[-4:]
    if (not isinstance(dtype, np.dtype) or not isinstance(shape, tuple)
            or not all(isinstance(d, int) and d >= 0 for d in shape)):
        raise pickle.UnpicklingError("malformed numpy array state (shape or dtype)")
    count = math.prod(shape)
    nbytes = count * dtype.itemsize
    if nbytes > MAX_ARRAY_BYTES:
        raise PickleSizeError(f"an array declares {format_bytes(nbytes)} "
                              f"({'x'.join(map(str, shape)) or 'scalar'} {dtype}); at most "
                              f"{format_bytes(MAX_ARRAY_BYTES)} for one array")
    held = len(data) if isinstance(data, (list, bytes, str, bytearray)) else None
    if held != (count if dtype.hasobject else nbytes):
        raise pickle.UnpicklingError(f"a numpy array of shape {shape} {dtype} pickled with "
                                     f"{held} {'elements' if dtype.hasobject else 'bytes'}")
