"""Load published FlowNet / FlowNet 2.0 PyTorch checkpoints into :mod:`.flownet` models.

The files of NVIDIA's ``flownet2-pytorch`` (``FlowNet2_checkpoint.pth.tar``,
``FlowNet2-S_checkpoint.pth.tar``, ...) hold ``{"epoch": ..., "state_dict": {...},
"best_EPE": ...}``; a bare ``state_dict`` (a dict of tensors) is accepted too, and so is a
``state_dict`` whose names all start with ``module.`` (saved from ``nn.DataParallel``), which is
stripped. Every other name must match the model's parameter names exactly, with equal shapes:
nothing is skipped, renamed or reshaped. Files are read with ``torch.load(weights_only=True)``,
so a checkpoint cannot run code.
"""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import torch
from torch import nn

from synthgen.core.errors import CorruptFileError, EmptyInputError, MissingFileError, SourceError

#: Prefix ``nn.DataParallel`` adds to every name.
_PARALLEL_PREFIX = "module."
#: At most this many names are listed per kind of mismatch in an error message.
_MAX_LISTED = 12


class CheckpointMismatchError(SourceError):
    """A readable checkpoint whose parameter names or shapes differ from the model's."""

    reason = "checkpoint_mismatch"


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The parameter tensors of a checkpoint file, on the CPU.

    Parameters
    ----------
    path : str or Path
        A ``torch.save`` file: ``{"state_dict": {name: tensor}, ...}`` or ``{name: tensor}``.

    Returns
    -------
    dict of str to Tensor
        Names as stored, a uniform ``module.`` prefix removed.

    Raises
    ------
    MissingFileError
        If ``path`` does not exist or is not a file.
    EmptyInputError
        If the file has zero bytes.
    CorruptFileError
        If it is not a PyTorch file (or is truncated), holds anything but plain tensors and
        numbers, or holds no dict of tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(path, "FlowNet checkpoint not found (give the path of a "
                                     "flownet2-pytorch *_checkpoint.pth.tar file)")
    if path.stat().st_size == 0:
        raise EmptyInputError(path, "FlowNet checkpoint file is empty")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "weights only" in str(error).lower():
            raise CorruptFileError(path, "holds objects other than tensors and numbers, refused "
                                         "by weights-only loading (a checkpoint cannot run "
                                         "code)") from error
        raise CorruptFileError(path, f"not a PyTorch file: {_first_line(error)}") from error
    except Exception as error:  # arbitrary bytes make the unpickler fail in arbitrary ways
        raise CorruptFileError(path, f"not a readable PyTorch file (truncated or another "
                                     f"format): {_first_line(error)}") from error
    if not isinstance(data, dict):
        raise CorruptFileError(path, f"checkpoint holds a {type(data).__name__}, expected a dict "
                                     "with a 'state_dict' or a dict of tensors")
    if "state_dict" in data:
        state = data["state_dict"]
    elif data and all(isinstance(v, torch.Tensor) for v in data.values()):
        state = data
    else:
        raise CorruptFileError(path, f"no 'state_dict' entry and not a dict of tensors (keys: "
                                     f"{_listing(sorted(map(str, data)))})")
    if not isinstance(state, dict) or not state:
        raise CorruptFileError(path, "checkpoint has no parameters: 'state_dict' is missing, "
                                     "empty or not a dict")
    not_tensors = sorted(str(k) for k, v in state.items() if not isinstance(v, torch.Tensor))
    if not_tensors:
        raise CorruptFileError(path, f"'state_dict' entries that are not tensors: "
                                     f"{_listing(not_tensors)}")
    if all(k.startswith(_PARALLEL_PREFIX) for k in state):
        state = {k[len(_PARALLEL_PREFIX):]: v for k, v in state.items()}
    return state


def check_state_dict(state: dict[str, torch.Tensor], model: nn.Module, *, path: str | Path) -> None:
    """Raise unless ``state`` has exactly the names and shapes of ``model.state_dict()``.

    Raises
    ------
    CheckpointMismatchError
        Naming the missing, unexpected and wrong-shape entries (with both shapes).
    """
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in state.items()}
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    wrong = sorted(f"{k} {found[k]} (model: {expected[k]})"
                   for k in set(expected) & set(found) if found[k] != expected[k])
    problems = [f"{label}: {_listing(names)}" for label, names in
                (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)) if names]
    if problems:
        raise CheckpointMismatchError(path, f"does not fit {type(model).__name__} "
                                            f"({len(expected)} tensors): " + "; ".join(problems))


def load_checkpoint(model: nn.Module, path: str | Path) -> nn.Module:
    """Copy a checkpoint's weights into ``model`` (in place, on the model's device and dtype).

    Returns ``model``. Raises what :func:`read_state_dict` and :func:`check_state_dict` raise;
    the model is untouched when they raise.
    """
    state = read_state_dict(path)
    check_state_dict(state, model, path=path)
    model.load_state_dict(state, strict=True, assign=_is_meta(model))
    return model


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file (recorded with the flow, so a store names its exact weights)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _is_meta(model: nn.Module) -> bool:
    return any(p.is_meta for p in model.parameters())


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:_MAX_LISTED])
    more = len(names) - _MAX_LISTED
    return shown + (f" ... and {more} more" if more > 0 else "")
