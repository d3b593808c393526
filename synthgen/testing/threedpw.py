"""3DPW sequences written as the released dataset has them, for tests: a Python-2-style
protocol-2 pickle per sequence (:func:`dump_py2_pickle`) and JPEG frames
(:func:`write_sequence`), read back by :mod:`synthgen.sources.threedpw`."""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np
from numpy._core.multiarray import _reconstruct

from synthgen.sources.threedpw import image_paths


def write_sequence(root, split: str, name: str, *, frames: np.ndarray, genders, betas, poses,
                   trans, joint_positions, poses2d, cam_poses, cam_intrinsics, campose_valid,
                   img_frame_ids=None, jpeg_quality: int = 95) -> Path:
    """Write one sequence as 3DPW does: a Python-2-style pickle and ``image_%05d.jpg`` frames.

    Parameters
    ----------
    root : str or Path
        Dataset root; writes ``sequenceFiles/<split>/<name>.pkl`` and ``imageFiles/<name>/``.
    frames : ndarray, shape (N, H, W, 3), uint8
        RGB frames (any size).
    genders : list of {"m", "f"}
    betas : list of ndarray, shape (10,) or longer, one per actor
    poses, trans, joint_positions, poses2d, campose_valid : list, one array per actor
        Shapes (N, 72), (N, 3), (N, 72) world metres, (N, 3, 18) (x, y, confidence) frame pixels
        in OpenPose-18 order, (N,) bool.
    cam_poses : ndarray, shape (N, 4, 4)
        World-to-camera.
    cam_intrinsics : ndarray, shape (3, 3)
    img_frame_ids : ndarray, shape (N,), optional
        Image number of each frame (default ``arange(N)``).

    Returns
    -------
    Path
        The sequence file.
    """
    root = Path(root)
    frames = np.asarray(frames, dtype=np.uint8)
    frame_ids = np.arange(len(frames)) if img_frame_ids is None else np.asarray(img_frame_ids)
    data = {
        "sequence": name,
        "genders": list(genders),
        "betas": [np.asarray(b, dtype=np.float64) for b in betas],
        "poses": [np.asarray(p, dtype=np.float64) for p in poses],
        "trans": [np.asarray(t, dtype=np.float64) for t in trans],
        "jointPositions": [np.asarray(j, dtype=np.float64) for j in joint_positions],
        "poses2d": [np.asarray(p, dtype=np.float64) for p in poses2d],
        "cam_poses": np.asarray(cam_poses, dtype=np.float64),
        "cam_intrinsics": np.asarray(cam_intrinsics, dtype=np.float64),
        "campose_valid": [np.asarray(v, dtype=bool) for v in campose_valid],
        "img_frame_ids": frame_ids.astype(np.int64),
    }
    pkl = root / "sequenceFiles" / split / f"{name}.pkl"
    pkl.parent.mkdir(parents=True, exist_ok=True)
    with open(pkl, "wb") as f:
        dump_py2_pickle(data, f)
    image_dir = root / "imageFiles" / name
    image_dir.mkdir(parents=True, exist_ok=True)
    for path, frame in zip(image_paths(image_dir, frame_ids), frames):
        cv2.imwrite(str(path), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
    return pkl


#: Where Python 2 / NumPy 1 pickles find the functions numpy reductions call.
_PY2_GLOBALS = {_reconstruct: ("numpy.core.multiarray", "_reconstruct"),
                np.ndarray: ("numpy", "ndarray"), np.dtype: ("numpy", "dtype")}


def dump_py2_pickle(obj, file) -> None:
    """Pickle ``obj`` as Python 2's ``cPickle.dump(obj, f, 2)`` with NumPy 1 did.

    Strings (``str`` and ``bytes``) become Python-2 byte strings (``BINSTRING`` opcodes, latin-1),
    numpy arrays ``numpy.core.multiarray._reconstruct`` calls with their raw bytes as a byte
    string, as in the released 3DPW files. Supported: dict, list, tuple, str, bytes, bool, int,
    float, None, numpy arrays of numeric or bool dtype.
    """
    out = bytearray(b"\x80\x02")
    _emit(obj, out)
    out += b"."
    file.write(bytes(out))


def _emit(obj, out: bytearray) -> None:
    if obj is None:
        out += b"N"
    elif obj is True or obj is False:
        out += b"\x88" if obj else b"\x89"
    elif isinstance(obj, (int, np.integer)):
        value = int(obj)
        if 0 <= value < 256:
            out += b"K" + bytes([value])
        elif -2 ** 31 <= value < 2 ** 31:
            out += b"J" + struct.pack("<i", value)
        else:
            raw = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
            out += b"\x8a" + bytes([len(raw)]) + raw
    elif isinstance(obj, (float, np.floating)):
        out += b"G" + struct.pack(">d", float(obj))
    elif isinstance(obj, (str, bytes)):
        raw = obj.encode("latin-1") if isinstance(obj, str) else obj
        out += (b"U" + bytes([len(raw)]) if len(raw) < 256 else b"T" + struct.pack("<i", len(raw)))
        out += raw
    elif isinstance(obj, tuple):
        out += b"("
        for item in obj:
            _emit(item, out)
        out += b"t"
    elif isinstance(obj, list):
        out += b"]("
        for item in obj:
            _emit(item, out)
        out += b"e"
    elif isinstance(obj, dict):
        out += b"}("
        for key, value in obj.items():
            _emit(key, out)
            _emit(value, out)
        out += b"u"
    elif isinstance(obj, (np.ndarray, np.dtype)):
        if isinstance(obj, np.ndarray) and obj.dtype.kind not in "biuf":
            raise TypeError(f"cannot write a numpy array of dtype {obj.dtype} Python-2 style")
        function, args, state = obj.__reduce__()
        module, name = _PY2_GLOBALS[function]
        out += f"c{module}\n{name}\n".encode("ascii")
        _emit(args, out)
        out += b"R"
        _emit(state, out)
        out += b"b"
    elif isinstance(obj, type) and obj in _PY2_GLOBALS:
        module, name = _PY2_GLOBALS[obj]
        out += f"c{module}\n{name}\n".encode("ascii")
    else:
        raise TypeError(f"cannot write {type(obj).__name__} Python-2 style")
