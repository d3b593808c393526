"""SMPL model files: plain and chumpy pickles read safely, converted for smplx; SMPL joints."""

from __future__ import annotations

import io
import pickle
import sys
import types

import numpy as np
import pytest
import scipy.sparse
import smplx
import torch

from synthgen.core.smpl import (
    SMPL_KEYS,
    ModelFileError,
    RestrictedUnpickler,
    SMPLJoints,
    convert_smpl_model,
    load_pickle,
    load_smpl_model,
)
from synthgen.core.joints import NUM_SMPL_JOINTS
from trainer.smpl import weak_perspective

# SMPL's kinematic tree (parent of each joint; the root's entry is ignored, official files hold
# 4294967295 there).
SMPL_PARENTS = [4294967295, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19,
                20, 21]


def _random_smpl(rng: np.random.Generator, vertices: int) -> dict:
    """An SMPL-format model with random content: a J_regressor averaging ~10 vertices per joint."""
    regressor = np.zeros((NUM_SMPL_JOINTS, vertices))
    for joint in range(NUM_SMPL_JOINTS):
        picked = rng.choice(vertices, size=10, replace=False)
        regressor[joint, picked] = rng.dirichlet(np.ones(10))
    weights = rng.random((vertices, NUM_SMPL_JOINTS))
    return {
        "v_template": rng.normal(scale=0.3, size=(vertices, 3)),
        "shapedirs": rng.normal(scale=0.01, size=(vertices, 3, 10)),
        "posedirs": rng.normal(scale=0.01, size=(vertices, 3, 207)),
        "J_regressor": scipy.sparse.csc_matrix(regressor),
        "weights": weights / weights.sum(axis=1, keepdims=True),
        "kintree_table": np.array([SMPL_PARENTS, list(range(NUM_SMPL_JOINTS))], dtype=np.uint32),
        "f": rng.integers(0, vertices, size=(2 * vertices, 3)).astype(np.uint32),
        "bs_style": "lbs",
    }


def _assert_same_model(loaded: dict, original: dict) -> None:
    assert set(loaded) == set(SMPL_KEYS)
    for key in SMPL_KEYS:
        want = original[key]
        want = want.toarray() if scipy.sparse.issparse(want) else np.asarray(want)
        np.testing.assert_array_equal(loaded[key], want.astype(loaded[key].dtype), err_msg=key)


@pytest.fixture()
def small_model():
    return _random_smpl(np.random.default_rng(0), vertices=40)


def test_plain_pickle_loads(tmp_path, small_model):
    path = tmp_path / "SMPL_NEUTRAL.pkl"
    path.write_bytes(pickle.dumps(small_model, protocol=2))
    model = load_smpl_model(path)
    _assert_same_model(model, small_model)
    assert model["v_template"].dtype == np.float64 and model["f"].dtype == np.int64


def _chumpy_pickle(monkeypatch, model: dict) -> bytes:
    """Pickle ``model`` with shapedirs and v_template as chumpy-like ``Ch`` objects.

    chumpy's ``Ch.__getstate__`` pickles a copy of ``__dict__`` without ``_parents`` and
    ``_cache``; the value lives in ``'x'``. The fake ``chumpy.ch`` module exists only here.
    """

    class Ch:
        def __init__(self, x):
            self.x = np.asarray(x, dtype=np.float64)
            self._dirty_vars = {"x"}
            self._itr = None
            self._make_dense = False
            self._make_sparse = False
            self._depends_on_deps = {}
            self._parents = object()  # unpicklable in chumpy (a WeakKeyDictionary), dropped
            self._cache = {"r": None}

        def __getstate__(self):
            state = dict(self.__dict__)
            del state["_parents"], state["_cache"]
            return state

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    chumpy, chumpy_ch = types.ModuleType("chumpy"), types.ModuleType("chumpy.ch")
    chumpy_ch.Ch = Ch
    chumpy.ch = chumpy_ch
    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, "chumpy", chumpy)
        patch.setitem(sys.modules, "chumpy.ch", chumpy_ch)
        wrapped = dict(model, shapedirs=Ch(model["shapedirs"]), v_template=Ch(model["v_template"]))
        data = pickle.dumps(wrapped, protocol=2)  # Python 2 files are protocol 2
    assert "chumpy" not in sys.modules and "chumpy.ch" not in sys.modules
    assert b"chumpy.ch\nCh\n" in data
    return data


def test_chumpy_pickle_loads_without_chumpy(tmp_path, monkeypatch, small_model):
    path = tmp_path / "basicModel_neutral_lbs_10_207_0_v1.0.0.pkl"
    path.write_bytes(_chumpy_pickle(monkeypatch, small_model))
    with pytest.raises(ModuleNotFoundError):  # plain pickle cannot read it any more
        pickle.loads(path.read_bytes(), encoding="latin1")
    _assert_same_model(load_smpl_model(path), small_model)


def test_chumpy_expression_without_x_is_refused(tmp_path, monkeypatch, small_model):
    key_x = b"X\x01\x00\x00\x00x"  # the pickled string 'x' (BINUNICODE, length 1)
    data = _chumpy_pickle(monkeypatch, small_model).replace(key_x, b"X\x01\x00\x00\x00y")
    path = tmp_path / "derived.pkl"
    path.write_bytes(data)
    with pytest.raises(ModelFileError, match="chumpy object without an 'x' array"):
        load_smpl_model(path)


def test_python2_numpy_array_pickle_loads():
    """Bytes as a Python-2 cPickle writes an ndarray: numpy.core names, data as a str."""
    raw = np.arange(3, dtype="<f8").tobytes()

    def short_string(b: bytes) -> bytes:
        return b"U" + bytes([len(b)]) + b

    data = (b"\x80\x02cnumpy.core.multiarray\n_reconstruct\nq\x01cnumpy\nndarray\nq\x02K\x00\x85"
            + short_string(b"b") + b"\x87Rq\x03(K\x01K\x03\x85cnumpy\ndtype\nq\x04"
            + short_string(b"f8") + b"K\x00K\x01\x87Rq\x05(K\x03" + short_string(b"<")
            + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tbI00\n" + short_string(raw) + b"tb.")
    np.testing.assert_array_equal(load_pickle(data), [0.0, 1.0, 2.0])


def test_malicious_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    payload = f"cos\nsystem\n(S'touch {marker}'\ntR.".encode()
    with pytest.raises(pickle.UnpicklingError, match="forbidden global os.system"):
        load_pickle(payload)
    path = tmp_path / "SMPL_MALE.pkl"
    path.write_bytes(payload)
    with pytest.raises(ModelFileError, match="refused to load: forbidden global os.system") as info:
        load_smpl_model(path)
    assert str(path) in str(info.value)
    assert not marker.exists()
    builtin_eval = b"\x80\x02c__builtin__\neval\nX\x04\x00\x00\x001+1\x85R."
    with pytest.raises(pickle.UnpicklingError, match="forbidden global __builtin__.eval"):
        RestrictedUnpickler(io.BytesIO(builtin_eval), encoding="latin1").load()


def test_bad_smpl_files_are_rejected_with_reasons(tmp_path, small_model):
    with pytest.raises(FileNotFoundError, match="no such SMPL model file"):
        load_smpl_model(tmp_path / "absent.pkl")
    cases = {
        "empty.pkl": (b"", "empty file"),
        "truncated.pkl": (pickle.dumps(small_model, protocol=2)[:500],
                          "corrupt or truncated pickle"),
        "list.pkl": (pickle.dumps([1, 2], protocol=2), "expected a dict of arrays, found list"),
        "nokey.pkl": (pickle.dumps({k: v for k, v in small_model.items() if k != "posedirs"},
                                   protocol=2), r"missing keys \['posedirs'\]"),
        "shape.pkl": (pickle.dumps(dict(small_model, weights=small_model["weights"][:-1]),
                                   protocol=2), "SMPL key 'weights' has shape"),
        "betas.pkl": (pickle.dumps(dict(small_model, shapedirs=small_model["shapedirs"][..., :5]),
                                   protocol=2), "need at least 10"),
        "nan.pkl": (pickle.dumps(dict(small_model, v_template=np.where(
            np.arange(40)[:, None] == 5, np.nan, small_model["v_template"])), protocol=2),
            "SMPL key 'v_template' has 3 NaN or infinite values"),
        "parents.pkl": (pickle.dumps(dict(small_model, kintree_table=np.array(
            [SMPL_PARENTS[:5] + [99] + SMPL_PARENTS[6:], list(range(NUM_SMPL_JOINTS))],
            dtype=np.uint32)), protocol=2), "kintree_table is not SMPL's kinematic tree"),
        "text.pkl": (pickle.dumps(dict(small_model, weights="abc"), protocol=2),
                     "SMPL key 'weights' is not numeric"),
    }
    for name, (data, message) in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(ModelFileError, match=message) as info:
            load_smpl_model(path)
        assert info.value.path == str(path)


@pytest.mark.slow
def test_converted_chumpy_file_loads_in_smplx_and_joints_agree(tmp_path, monkeypatch):
    """Full-size (6890 vertices: smplx's extra joints index real vertex ids) random model."""
    rng = np.random.default_rng(1)
    original = _random_smpl(rng, vertices=6890)
    source = tmp_path / "official.pkl"
    source.write_bytes(_chumpy_pickle(monkeypatch, original))
    converted = convert_smpl_model(source, tmp_path / "models" / "SMPL_NEUTRAL.pkl")
    assert converted.name == "SMPL_NEUTRAL.pkl"

    reference = smplx.SMPL(model_path=str(converted.parent), gender="neutral")
    ours = SMPLJoints.from_path(source)
    pose = torch.as_tensor(rng.normal(scale=0.4, size=(3, 72)), dtype=torch.float32)
    betas = torch.as_tensor(rng.normal(size=(3, 10)), dtype=torch.float32)
    with torch.no_grad():
        want = reference(global_orient=pose[:, :3], body_pose=pose[:, 3:], betas=betas).joints
    got = ours(pose, betas)
    assert got.shape == (3, NUM_SMPL_JOINTS, 3)
    torch.testing.assert_close(got, want[:, :NUM_SMPL_JOINTS], atol=1e-5, rtol=1e-5)


def test_smpl_joints_rest_pose_gradients_and_batch_shape(tmp_path, small_model):
    path = tmp_path / "SMPL_FEMALE.pkl"
    path.write_bytes(pickle.dumps(small_model, protocol=2))
    smpl = SMPLJoints.from_path(tmp_path, gender="female")
    rest = small_model["J_regressor"] @ small_model["v_template"]
    joints = smpl(torch.zeros(2, 5, 72), torch.zeros(2, 5, 10))
    assert joints.shape == (2, 5, NUM_SMPL_JOINTS, 3)
    np.testing.assert_allclose(joints[1, 3].numpy(), rest, atol=1e-6)
    pose = torch.full((4, 72), 0.1, requires_grad=True)
    smpl(pose, torch.zeros(4, 10))[:, 20].sum().backward()  # left wrist
    # the wrist hangs off pelvis -> spine -> left collar/shoulder/elbow, not off the left hip
    assert pose.grad[:, 0:3].abs().sum() > 0 and pose.grad[:, 3 * 18:3 * 19].abs().sum() > 0
    assert not pose.grad[:, 3:6].any()
    with pytest.raises(ValueError, match="same leading shape"):
        smpl(torch.zeros(2, 72), torch.zeros(3, 10))


def test_weak_perspective_scales_after_translating():
    joints = torch.tensor([[[0.1, -0.2, 3.0], [0.0, 0.0, -1.0]]])
    camera = torch.tensor([[2.0, 0.5, -0.5]])
    np.testing.assert_allclose(weak_perspective(joints, camera).numpy(),
                               [[[1.2, -1.4], [1.0, -1.0]]], rtol=1e-6)


def test_mirrored_pose_poses_the_mirror_image_of_a_symmetric_body(smpl_dir):
    """mirror_pose: joints of the mirrored pose = S @ joints[LEFT_RIGHT_SWAP] (S = diag(-1, 1, 1))
    on the left-right symmetric demo model; mirroring twice is the identity."""
    from synthgen.core.smpl import mirror_pose
    from synthgen.core.joints import LEFT_RIGHT_SWAP

    body = SMPLJoints.from_path(smpl_dir, gender="male")
    rng = np.random.default_rng(4)
    pose = rng.normal(0.0, 0.4, (5, 72))
    betas = torch.as_tensor(rng.normal(0.0, 1.0, (5, 10)))
    with torch.no_grad():
        joints = body(torch.as_tensor(pose), betas).numpy()
        mirrored = body(torch.as_tensor(mirror_pose(pose)), betas).numpy()
    expected = joints[:, LEFT_RIGHT_SWAP] * [-1.0, 1.0, 1.0]
    offset = mirrored - expected  # the model frame's origin need not lie on the mirror plane
    assert np.linalg.norm(offset - offset[:, :1], axis=-1).max() < 1e-4
    np.testing.assert_array_equal(mirror_pose(mirror_pose(pose)), pose)
