"""SMPL model files and SMPL joints: read model files safely, pose the 24 joints.

:class:`SMPLJoints` computes joint positions with smplx's own kinematics
(``smplx.lbs.batch_rodrigues`` and ``batch_rigid_transform``) on the shaped rest joints
``J_regressor @ (v_template + shapedirs betas)``; this equals the first 24 joints of
``smplx.SMPL``'s output (pose blend shapes move vertices, never joints) without skinning the 6890
vertices.

Model files: read safely, chumpy or not, and convert to plain numpy.

The official ``SMPL_{NEUTRAL,MALE,FEMALE}.pkl`` / ``basicModel_*.pkl`` files are Python-2 pickles
holding chumpy ``Ch`` objects and scipy sparse matrices; chumpy cannot be imported on Python 3.11
with numpy 2. :class:`RestrictedUnpickler` reads them without chumpy and without running any code
from the file: ``find_class`` hands out only a short whitelist of numpy/scipy/builtin names, and
chumpy's ``Ch`` becomes a stand-in whose pickled state (``__dict__`` with the value in ``'x'``) is
turned into an ndarray afterwards. Any other global raises :class:`RefusedPickleError` (a
:class:`pickle.UnpicklingError`) naming it.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse

import torch
from smplx.lbs import batch_rigid_transform, batch_rodrigues
from torch import nn

from synthgen.core.joints import LEFT_RIGHT_SWAP, NUM_SMPL_JOINTS
from synthgen.core.limits import BoundedUnpickler

#: SMPL pose parameters: 24 axis-angle rotations (radians), global orientation first.
NUM_POSE = 3 * NUM_SMPL_JOINTS
#: Shape coefficients used everywhere (SURREAL's, the regressor's).
NUM_BETAS = 10

#: Keys smplx needs, with their shapes (V vertices, F faces; -1 means any size >= 1).
SMPL_KEYS: dict[str, tuple[int | str, ...]] = {
    "v_template": ("V", 3),
    "shapedirs": ("V", 3, -1),
    "posedirs": ("V", 3, 9 * (NUM_SMPL_JOINTS - 1)),
    "J_regressor": (NUM_SMPL_JOINTS, "V"),
    "weights": ("V", NUM_SMPL_JOINTS),
    "kintree_table": (2, NUM_SMPL_JOINTS),
    "f": ("F", 3),
}
#: Fewest shape coefficients a model must have.
MIN_BETAS = NUM_BETAS


class ModelFileError(ValueError):
    """A model file that exists but cannot be used.

    Parameters
    ----------
    path : str or Path
        The offending file.
    detail : str
        What is wrong, in words a user can act on.
    """

    def __init__(self, path: str | Path, detail: str):
        self.path = str(path)
        self.detail = detail
        super().__init__(f"{self.path}: {detail}")


class RefusedPickleError(pickle.UnpicklingError):
    """A pickle asks for something the restricted unpickler will not build (message says what)."""


class _ChumpyStandIn:
    """Holds the pickled ``__dict__`` of a chumpy ``Ch``; no chumpy code ever runs."""

    def __new__(cls, *args: Any) -> "_ChumpyStandIn":
        return super().__new__(cls)

    def __setstate__(self, state: Any) -> None:
        self.state = state


class _SparseStandIn:
    """Holds the pickled ``__dict__`` of a scipy CSC/CSR matrix until it is rebuilt."""

    format = ""

    def __new__(cls, *args: Any) -> "_SparseStandIn":
        return super().__new__(cls)

    def __setstate__(self, state: Any) -> None:
        self.state = state


class _CscStandIn(_SparseStandIn):
    format = "csc"


class _CsrStandIn(_SparseStandIn):
    format = "csr"


def _latin1_encode(text: str, encoding: str = "utf-8") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles of bytes use it, for latin-1 only."""
    if encoding != "latin1":
        raise RefusedPickleError(f"refused _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


def _reconstructor(cls: type, base: type, state: Any) -> Any:
    """``copy_reg._reconstructor`` (protocol 0/1 pickles of objects), for stand-ins only."""
    if not (isinstance(cls, type) and issubclass(cls, (_ChumpyStandIn, _SparseStandIn))):
        raise RefusedPickleError(f"refused copy_reg._reconstructor for {cls!r}")
    if base is not object or state is not None:
        raise RefusedPickleError("refused copy_reg._reconstructor with a non-object base")
    return cls.__new__(cls)


_RECONSTRUCT = np.zeros(0).__reduce__()[0]  # numpy's array reconstructor, wherever it lives
_SCALAR = np.float64(0).__reduce__()[0]  # numpy's scalar reconstructor
_ALLOWED: dict[tuple[str, str], Any] = {
    **{(module, "_reconstruct"): _RECONSTRUCT
       for module in ("numpy.core.multiarray", "numpy._core.multiarray")},
    **{(module, "scalar"): _SCALAR
       for module in ("numpy.core.multiarray", "numpy._core.multiarray")},
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_encode,
    **{(module, name): value for module in ("__builtin__", "builtins")
       for name, value in (("set", set), ("frozenset", frozenset), ("object", object))},
    **{(module, "_reconstructor"): _reconstructor for module in ("copy_reg", "copyreg")},
    **{(module, "Ch"): _ChumpyStandIn for module in ("chumpy.ch", "chumpy")},
    **{(module, "csc_matrix"): _CscStandIn
       for module in ("scipy.sparse.csc", "scipy.sparse._csc", "scipy.sparse")},
    **{(module, "csr_matrix"): _CsrStandIn
       for module in ("scipy.sparse.csr", "scipy.sparse._csr", "scipy.sparse")},
}


class RestrictedUnpickler(BoundedUnpickler):
    """Unpickler that resolves only whitelisted globals (numpy arrays, scipy CSC/CSR, chumpy Ch),
    with the bounds of :class:`synthgen.core.limits.BoundedUnpickler`.

    Any other global raises :class:`RefusedPickleError` (a :class:`pickle.UnpicklingError`).

    Use :func:`load_pickle`, which also replaces the stand-ins by plain values.
    """

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise RefusedPickleError(
                f"forbidden global {module}.{name} in pickle (only numpy arrays, scipy sparse "
                "matrices and chumpy Ch objects are allowed)") from None


def _plain(obj: Any) -> Any:
    """Replace stand-ins, recursively, by ndarrays and scipy sparse matrices."""
    if isinstance(obj, _ChumpyStandIn):
        state = getattr(obj, "state", None)
        if not isinstance(state, dict) or "x" not in state:
            raise RefusedPickleError(
                "chumpy object without an 'x' array (a derived chumpy expression); "
                "convert the file to plain numpy on a machine with chumpy")
        return np.asarray(_plain(state["x"]))
    if isinstance(obj, _SparseStandIn):
        state = getattr(obj, "state", None)
        if not isinstance(state, dict) or not {"data", "indices", "indptr"} <= state.keys():
            raise RefusedPickleError(f"{obj.format}_matrix without data/indices/indptr")
        shape = tuple(state.get("_shape", state.get("shape", ())))
        matrix_type = scipy.sparse.csc_matrix if obj.format == "csc" else scipy.sparse.csr_matrix
        return matrix_type((state["data"], state["indices"], state["indptr"]), shape=shape)
    if isinstance(obj, dict):
        return {key: _plain(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_plain(value) for value in obj)
    return obj


def load_pickle(data: bytes) -> Any:
    """Unpickle untrusted bytes with :class:`RestrictedUnpickler`, Python-2 strings as latin-1.

    Parameters
    ----------
    data : bytes
        The pickle.

    Returns
    -------
    object
        The unpickled value, chumpy objects replaced by ndarrays and sparse matrices rebuilt as
        ``scipy.sparse.csc_matrix`` / ``csr_matrix``.

    Raises
    ------
    RefusedPickleError
        On a forbidden global (the message names it) or a malformed chumpy/sparse object.
    pickle.UnpicklingError, EOFError
        On a corrupt, empty or truncated pickle.
    """
    return _plain(RestrictedUnpickler(io.BytesIO(data), encoding="latin1").load())


def _check_shapes(path: Path, model: dict[str, np.ndarray]) -> None:
    sizes: dict[str, int] = {}
    for key, spec in SMPL_KEYS.items():
        shape = model[key].shape
        ok = len(shape) == len(spec)
        for dim, want in zip(shape, spec):
            if isinstance(want, str):
                ok = ok and sizes.setdefault(want, dim) == dim
            elif want == -1:
                ok = ok and dim >= 1
            else:
                ok = ok and dim == want
        if not ok:
            raise ModelFileError(path, f"SMPL key {key!r} has shape {shape}, expected {spec} "
                                       f"(V vertices = {sizes.get('V', '?')})")
    if model["shapedirs"].shape[2] < MIN_BETAS:
        raise ModelFileError(path, f"shapedirs has {model['shapedirs'].shape[2]} shape "
                                   f"components, need at least {MIN_BETAS}")
    for key, value in model.items():
        bad = int(np.count_nonzero(~np.isfinite(value)))
        if bad:
            raise ModelFileError(path, f"SMPL key {key!r} has {bad} NaN or infinite values")
    parents = model["kintree_table"][0, 1:]
    if np.any((parents < 0) | (parents >= np.arange(1, NUM_SMPL_JOINTS))):
        raise ModelFileError(path, "kintree_table is not SMPL's kinematic tree: the parent of "
                                   "joint j must be a joint before it (0..j-1)")


def load_smpl_model(path: str | Path) -> dict[str, np.ndarray]:
    """Read an SMPL model pickle (official chumpy file or converted plain file) safely.

    Parameters
    ----------
    path : str or Path
        ``SMPL_{NEUTRAL,MALE,FEMALE}.pkl`` or ``basicModel_*.pkl``.

    Returns
    -------
    dict of str to ndarray
        Exactly the keys of :data:`SMPL_KEYS`, plain dense arrays: ``v_template`` (V, 3) and
        ``shapedirs`` (V, 3, >=10), ``posedirs`` (V, 3, 207), ``J_regressor`` (24, V),
        ``weights`` (V, 24) as float64, metres in SMPL's model frame (y up);
        ``kintree_table`` (2, 24) and ``f`` (F, 3) as int64.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    ModelFileError
        When the file is empty, truncated, holds a forbidden global (e.g. ``os.system``), is not a
        dict, lacks a key, has a key of the wrong shape, a non-numeric, NaN or infinite value, or
        a kinematic tree whose parents do not precede their joints; the message names the file
        and why.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such SMPL model file")
    data = path.read_bytes()
    if not data:
        raise ModelFileError(path, "empty file, not an SMPL model pickle")
    try:
        raw = load_pickle(data)
    except RefusedPickleError as exc:
        raise ModelFileError(path, f"refused to load: {exc}") from exc
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError) as exc:
        raise ModelFileError(
            path, f"corrupt or truncated pickle ({type(exc).__name__}: {exc})") from exc
    if not isinstance(raw, dict):
        raise ModelFileError(path, f"expected a dict of arrays, found {type(raw).__name__}")
    missing = [key for key in SMPL_KEYS if key not in raw]
    if missing:
        raise ModelFileError(path, f"not an SMPL model: missing keys {missing}")
    model = {}
    for key in SMPL_KEYS:
        value = raw[key]
        value = value.toarray() if scipy.sparse.issparse(value) else np.asarray(value)
        dtype = np.int64 if key in ("kintree_table", "f") else np.float64
        try:
            model[key] = value.astype(dtype)
        except (TypeError, ValueError) as exc:
            raise ModelFileError(path, f"SMPL key {key!r} is not numeric ({exc})") from exc
    _check_shapes(path, model)
    return model


def convert_smpl_model(source: str | Path, destination: str | Path) -> Path:
    """Write a plain-numpy copy of an SMPL model that ``smplx.SMPL`` loads.

    Parameters
    ----------
    source : str or Path
        Any file :func:`load_smpl_model` accepts (e.g. an official chumpy pickle).
    destination : str or Path
        Output pickle; name it ``SMPL_{NEUTRAL,MALE,FEMALE}.pkl`` in a directory so that
        ``smplx.SMPL(model_path=directory, gender=...)`` finds it. Parent directories are created.

    Returns
    -------
    Path
        ``destination``.

    Raises
    ------
    FileNotFoundError, ModelFileError
        As :func:`load_smpl_model`.
    """
    model = load_smpl_model(source)
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    with open(destination, "wb") as f:
        pickle.dump(model, f, protocol=4)
    return destination


#: Sign of each axis-angle component under the mirror of the model frame's x axis: a rotation
#: ``R`` becomes ``S R S`` with ``S = diag(-1, 1, 1)``, whose axis-angle is ``(wx, -wy, -wz)``.
_MIRROR_AXIS_ANGLE = np.array([1.0, -1.0, -1.0])


def mirror_pose(pose: np.ndarray) -> np.ndarray:
    """The SMPL pose of the mirror image of a body (mirrored in its model frame's x = 0 plane).

    Left and right joints swap (``synthgen.core.joints.LEFT_RIGHT_SWAP``) and every rotation ``R``
    becomes ``S R S`` (``S = diag(-1, 1, 1)``). For a left-right symmetric model the posed joints
    of the result are ``S @ joints[LEFT_RIGHT_SWAP]`` of the original (SMPL: to its few-mm
    asymmetry).

    Parameters
    ----------
    pose : ndarray, shape (..., 72)
        Axis-angle rotations, radians, global orientation first.

    Returns
    -------
    ndarray, shape (..., 72), same dtype
    """
    pose = np.asarray(pose)
    joints = pose.reshape(*pose.shape[:-1], NUM_SMPL_JOINTS, 3)[..., LEFT_RIGHT_SWAP, :]
    return (joints * _MIRROR_AXIS_ANGLE.astype(pose.dtype)).reshape(pose.shape)


def model_file(path: str | Path, gender: str = "neutral") -> Path:
    """The SMPL model file of ``gender`` when ``path`` is a directory (smplx's layout,
    ``SMPL_{NEUTRAL,MALE,FEMALE}.pkl``), else ``path`` itself."""
    path = Path(path)
    return path / f"SMPL_{gender.upper()}.pkl" if path.is_dir() else path


class SMPLJoints(nn.Module):
    """The 24 posed SMPL joints of a batch of bodies.

    Parameters
    ----------
    model : mapping of str to ndarray
        An SMPL model as :func:`load_smpl_model` returns it.

    Notes
    -----
    Buffers are float32 and follow ``.to(device)``. The kinematic tree stays a CPU tensor so that
    walking it on a GPU needs no device synchronisation.
    """

    def __init__(self, model: Mapping[str, np.ndarray]):
        super().__init__()
        regressor = np.asarray(model["J_regressor"], dtype=np.float64)
        template = regressor @ np.asarray(model["v_template"], dtype=np.float64)
        shapedirs = np.asarray(model["shapedirs"], dtype=np.float64)[:, :, :NUM_BETAS]
        joint_shapedirs = np.einsum("jv,vcb->jcb", regressor, shapedirs)
        self.register_buffer("joint_template", torch.as_tensor(template, dtype=torch.float32))
        self.register_buffer("joint_shapedirs",
                             torch.as_tensor(joint_shapedirs, dtype=torch.float32))
        parents = torch.as_tensor(np.asarray(model["kintree_table"])[0], dtype=torch.long).clone()
        parents[0] = -1
        self.parents = parents

    @classmethod
    def from_path(cls, path: str | Path, *, gender: str = "neutral") -> "SMPLJoints":
        """Build from an SMPL model pickle (official chumpy or converted; read safely).

        Parameters
        ----------
        path : str or Path
            A model file, or a directory holding ``SMPL_{NEUTRAL,MALE,FEMALE}.pkl`` (smplx's
            layout), from which ``gender`` picks one.
        gender : {"neutral", "male", "female"}
            Used only when ``path`` is a directory.

        Raises
        ------
        FileNotFoundError, ModelFileError
            As :func:`load_smpl_model`.
        """
        return cls(load_smpl_model(model_file(path, gender)))

    def forward(self, pose: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
        """Posed joints.

        Parameters
        ----------
        pose : Tensor, shape (..., 72)
            Axis-angle rotations in radians, global orientation first (SMPL joint order).
        betas : Tensor, shape (..., 10)
            Shape coefficients.

        Returns
        -------
        Tensor, shape (..., 24, 3)
            Joint positions in metres in SMPL's model frame (rotated by the global orientation;
            no translation, so the pelvis sits at its rest position rotated about the origin).
        """
        lead = pose.shape[:-1]
        if pose.shape[-1] != NUM_POSE or betas.shape != (*lead, NUM_BETAS):
            raise ValueError(f"pose must be (..., {NUM_POSE}) and betas (..., {NUM_BETAS}) with "
                             f"the same leading shape, got {tuple(pose.shape)} and "
                             f"{tuple(betas.shape)}")
        pose = pose.reshape(-1, NUM_POSE)
        rest = self.joint_template.to(pose.dtype) + torch.einsum(
            "jcb,nb->njc", self.joint_shapedirs.to(pose.dtype), betas.reshape(-1, NUM_BETAS))
        rotations = batch_rodrigues(pose.reshape(-1, 3)).view(-1, NUM_SMPL_JOINTS, 3, 3)
        joints, _ = batch_rigid_transform(rotations, rest, self.parents, dtype=pose.dtype)
        return joints.reshape(*lead, NUM_SMPL_JOINTS, 3)
