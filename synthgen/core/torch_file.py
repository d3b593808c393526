"""Reading a user's PyTorch file (checkpoint, state dict) so that no code in it can run.

:func:`load_weights_only` is ``torch.load(weights_only=True)`` with its many failure types turned
into one :class:`TorchFileError` whose ``detail`` is a short reason. torch's own message for a
refused file advises re-running with ``weights_only=False``, which would run the file's code:
that advice never reaches the user.
"""

from __future__ import annotations

import pickle
import re
import warnings
import zipfile
from pathlib import Path

from synthgen.core.limits import format_bytes

#: torch's names for a refused global, by torch version ("Unsupported global: GLOBAL
#: builtins.exec ...", "Trying to load unsupported GLOBAL posix.system whose module ...").
_REFUSED_GLOBAL = re.compile(r"unsupported global:?\s+(?:GLOBAL\s+)?(\S+)", re.IGNORECASE)
_UNPICKLER_DETAIL = re.compile(r"WeightsUnpickler error:\s*(.+)")


class TorchFileError(ValueError):
    """A PyTorch file that cannot be used.

    Attributes ``path``, ``detail`` (the reason, in words) and ``unsafe`` (True when the file
    holds pickled objects other than tensors and plain data: loading it fully could run code).
    """

    def __init__(self, path: str | Path, detail: str, *, unsafe: bool = False):
        self.path, self.detail, self.unsafe = str(path), detail, unsafe
        super().__init__(f"{self.path}: {detail}")


def load_weights_only(path: str | Path):
    """``torch.load(path, map_location="cpu", weights_only=True)``: tensors and plain data only.

    Raises
    ------
    TorchFileError
        An empty, truncated or non-PyTorch file, one whose records declare more bytes than the
        file holds (refused unread), or (``unsafe``) one holding other objects, which is refused
        unread.
    """
    import torch

    path = Path(path)
    _check_record_sizes(path)
    try:
        with warnings.catch_warnings():  # torch warns about the pickle protocol of odd files
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        found = _REFUSED_GLOBAL.search(text)
        if found is not None:
            raise TorchFileError(path, f"refused: it holds pickled objects other than tensors "
                                       f"and plain data ({found.group(1).rstrip('.')}), which "
                                       f"could run code when loaded", unsafe=True) from exc
        detail = _UNPICKLER_DETAIL.search(text)
        raise TorchFileError(path, f"not a readable PyTorch file "
                                   f"({detail.group(1).strip() if detail else _first_line(text)})"
                             ) from exc
    except Exception as exc:  # torch raises many types for a damaged file
        if path.is_file() and path.stat().st_size == 0:
            raise TorchFileError(path, "empty file (0 bytes), not a PyTorch file") from exc
        raise TorchFileError(path, f"not a readable PyTorch file (truncated or another format: "
                                   f"{type(exc).__name__}: {_first_line(str(exc))})") from exc


def _check_record_sizes(path: Path) -> None:
    """Refuse a zip-format torch file whose records declare more bytes than the file's size:
    torch writes its records uncompressed, and reads one by allocating its declared size first
    (a 400 kB file with a deflated record made it allocate 400 MB)."""
    try:
        with zipfile.ZipFile(path) as archive:
            declared = sum(info.file_size for info in archive.infolist())
    except (OSError, zipfile.BadZipFile, ValueError):
        return  # not a zip (legacy format, damaged): torch.load says what it is
    size = path.stat().st_size
    if declared > size:
        raise TorchFileError(path, f"its records declare {format_bytes(declared)}, more than the "
                                   f"file's {format_bytes(size)} (torch stores them uncompressed): "
                                   f"a damaged or crafted file, refused unread")


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")
