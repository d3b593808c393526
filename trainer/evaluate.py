"""``trainer eval``: PA-MPJPE of a checkpoint on a store, by the paper's protocol (section 4).

Protocol (method.md section 3):

- the network sees each stored example whole (a 3DPW store's 31-frame clips) and gives one pose
  per frame (:func:`trainer.model.clip_predictions`);
- error: PA-MPJPE in millimetres on the 14 joints common to SMPL and COCO
  (:data:`synthgen.core.joints.COCO14`);
- frames evaluated: on a 3DPW store (``kind`` "3dpw") those its ``evaluate`` array flags
  (camera pose valid, at least 7 confident keypoints, counted in the first clip covering the
  frame only); on a synthetic store frames with at least 7 of the 14 joints visible and not a
  total occlusion (as training's validation);
- **the paper's figure**: the mean frame error of each person, then the mean over people. A person
  is (sequence, actor) on 3DPW and the SURREAL clip on a synthetic store (the ``persons`` of
  :func:`trainer.data.open_stores`). The frame-weighted mean (every frame counts once) is
  reported beside it. This is protocol ``paper`` (:data:`PROTOCOLS`).

Protocol ``h36m`` (with ``--h36m-regressor J_regressor_h36m.npy``, the variant of most published
3DPW tables, e.g. SPIN and VIBE): the same frames, 14 joints regressed by the H36M joint regressor
from the SMPL mesh, predicted (neutral model) and true (the stored pose and betas; gendered
models when the SMPL directory holds them), PA-MPJPE averaged over frames. Every output names
its protocol.

Refusals: a store whose crop-flow backend or crop size differs from the checkpoint's training
data (:func:`training_data`, :func:`check_store_matches`): a network trained on one flow method
cannot be measured on another.

Outputs (``out_dir``): ``summary.json``, ``per_sequence.csv``, ``per_person.csv``, ``frames.csv``
(one row per evaluated frame) and ``plots/<sequence>.png`` (error over time, one line per person,
drawn with OpenCV).

Boundary: the trainer reads stores through :mod:`synthgen.store` and compares what it must agree
on with a store by :func:`synthgen.store.check_compatible` over :func:`synthgen.store.spec`.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from smplx.lbs import lbs

from synthgen import store as synthstore
from synthgen.core.flow import DEFAULT_FLOW_QUANTUM
from synthgen.core.joints import COCO14, MIN_VISIBLE
from synthgen.core.limits import Budget, check_npy
from trainer.checkpoint import checkpoint_smpl, load_checkpoint, load_model
from trainer.config import TrainConfig
from trainer.data import (ClipBatchSampler, ClipDataset, StoreInfo, arrays_for, make_loader,
                          open_stores, to_device)
from trainer.forward import evaluated_frames, predict_parameters, predicted_joints, select_device
from trainer.metrics import METRES_TO_MM, average_per_person, pa_mpjpe
from trainer.model import MotionHMR
from trainer.model.regressor import BETAS, NUM_BETAS, POSE
from trainer.smpl import SMPLJoints
from trainer.synthetic import PERSON_HEIGHT, REFERENCE_CROP


# ----------------------------------------------------------------------------------------------
# Checkpoints and what they were trained on


@dataclass(frozen=True)
class TrainingData:
    """What a checkpoint's network was trained on, as far as its inputs depend on it.

    Attributes
    ----------
    crop_flow : dict or None
        The training store's crop-flow record (``{"name", "params"}``).
    crop_size : int
        Crop side, pixels.
    person_height : float or None
        Person height in the crops, pixels, when the training store records it.
    flow_quantum : float
        Pixels per stored flow unit.
    source : str
        Where this was read (the training store, or the checkpoint).
    """

    crop_flow: dict | None
    crop_size: int
    person_height: float | None
    flow_quantum: float
    source: str

    @property
    def crop_person_height(self) -> float:
        """The recorded person height, else HMR's recipe (150 px in a 224-px crop) scaled."""
        if self.person_height is not None:
            return self.person_height
        return PERSON_HEIGHT * self.crop_size / REFERENCE_CROP

    def spec(self) -> synthstore.StoreSpec:
        """What a store must agree on with this network (crop flow, crop size, person height)."""
        return synthstore.StoreSpec(f"the network's training data ({self.source})",
                                    crop_size=self.crop_size, person_height=self.person_height,
                                    crop_flow=self.crop_flow)


def _store_training_data(url: str) -> TrainingData:
    info = open_stores([url])[0]
    spec = synthstore.spec(synthstore.open_group(url), source=url)
    quantum = DEFAULT_FLOW_QUANTUM if spec.flow_quantum is None else spec.flow_quantum
    return TrainingData(info.crop_flow, info.crop_size, spec.person_height, quantum, url)


def training_data(checkpoint: dict, *, training_store: str | None = None) -> TrainingData:
    """Crop flow and crops of a checkpoint's training data.

    Read from ``training_store`` when given, else from the first of the checkpoint's ``stores``.
    A checkpoint that records ``crop_flow`` and ``crop_size`` itself needs no store; its record
    wins over a store's, and a differing store is refused.

    Raises
    ------
    ValueError
        ``training_store`` cannot be read; the checkpoint's training store is unreachable and the
        checkpoint records nothing; or the store disagrees with the checkpoint's record. The
        message says what to pass.
    """
    recorded_flow, recorded_size = checkpoint.get("crop_flow"), checkpoint.get("crop_size")
    url = training_store or next(iter(checkpoint.get("stores", [])), None)
    found, problem = None, "it names no training store"
    if url is not None:
        try:
            found = _store_training_data(str(url))
        except (FileNotFoundError, ValueError, KeyError) as exc:
            if training_store is not None:  # asked for: never replaced by the checkpoint's record
                raise ValueError(f"--training-store {training_store} cannot be read ({exc}): give "
                                 f"the network's training store, or leave --training-store out to "
                                 f"use what the checkpoint records") from exc
            problem = f"its training store {url} cannot be read ({exc})"
    if recorded_size is None:
        if found is None:
            raise ValueError(f"cannot tell which crop flow and crops the network was trained on: "
                             f"the checkpoint records none and {problem}; pass --training-store "
                             f"with the training store")
        return found
    if found is None:
        return TrainingData(recorded_flow, int(recorded_size), None,
                            float(checkpoint.get("flow_quantum", DEFAULT_FLOW_QUANTUM)),
                            "checkpoint")
    recorded = synthstore.StoreSpec("the checkpoint", crop_size=int(recorded_size),
                                    crop_flow=recorded_flow)
    synthstore.check_compatible(found.spec(), recorded, fields=("crop_flow", "crop_size"),
                                what=f"training store {url} is not what the checkpoint recorded",
                                hint="pass --training-store with the network's training store")
    return found


def check_store_matches(training: TrainingData, spec: synthstore.StoreSpec) -> None:
    """Refuse an evaluation store (its :func:`synthgen.store.spec`) made differently from the
    training data: another crop-flow backend, crop size or person height (when both record one).

    Raises
    ------
    ValueError
        From :func:`synthgen.store.check_compatible`, naming both sides and the differing field.
    """
    synthstore.check_compatible(
        spec, training.spec(), fields=("crop_flow", "crop_size", "person_height"),
        what=f"cannot evaluate {spec.source} with this network",
        hint=f"rebuild the store like the training data (synthgen build-3dpw --flow ... "
             f"--match-store {training.source})")


# ----------------------------------------------------------------------------------------------
# The protocol's arithmetic


@dataclass(frozen=True)
class FrameErrors:
    """One row per evaluated frame.

    Attributes
    ----------
    errors : ndarray, shape (N,), float64
        PA-MPJPE, millimetres.
    person : ndarray, shape (N,), str
        Person identity (``"<sequence>#<actor>"`` on 3DPW, the SURREAL clip on synthetic stores).
    sequence : ndarray, shape (N,), str
        3DPW sequence name; the SURREAL clip on synthetic stores.
    time : ndarray, shape (N,), int64
        Frame index in the sequence (3DPW) or SURREAL frame (synthetic).
    h36m_errors : ndarray, shape (N,), float64, or None
        PA-MPJPE (mm) of the same frames by the ``h36m`` protocol (:data:`PROTOCOLS`), when an
        H36M joint regressor was given.
    """

    errors: np.ndarray
    person: np.ndarray
    sequence: np.ndarray
    time: np.ndarray
    h36m_errors: np.ndarray | None = None


def protocol_means(errors: np.ndarray, person: np.ndarray) -> tuple[float, float]:
    """The paper's mean (per person, then over people) and the frame-weighted mean.

    Parameters
    ----------
    errors : ndarray, shape (N,)
    person : ndarray, shape (N,)

    Returns
    -------
    per_person, frame_weighted : float
        Input units.
    """
    return average_per_person(errors, person), float(np.mean(errors))


def person_table(frames: FrameErrors) -> list[dict]:
    """Per person: ``person``, ``sequence``, ``frames``, ``pa_mpjpe_mm`` (mean frame error)."""
    rows = []
    for name in sorted(set(frames.person.tolist())):
        mine = frames.person == name
        rows.append({"person": name, "sequence": str(frames.sequence[mine][0]),
                     "frames": int(mine.sum()), "pa_mpjpe_mm": float(frames.errors[mine].mean())})
    return rows


def sequence_table(frames: FrameErrors) -> list[dict]:
    """Per sequence: ``sequence``, ``people``, ``frames``, ``pa_mpjpe_mm`` (the ``paper``
    protocol's mean within the sequence), ``frame_weighted_mm`` and, with the ``h36m`` errors,
    ``h36m_mm``."""
    rows = []
    for name in sorted(set(frames.sequence.tolist())):
        mine = frames.sequence == name
        per_person, weighted = protocol_means(frames.errors[mine], frames.person[mine])
        row = {"sequence": name, "people": len(set(frames.person[mine].tolist())),
               "frames": int(mine.sum()), "pa_mpjpe_mm": per_person,
               "frame_weighted_mm": weighted}
        if frames.h36m_errors is not None:
            row["h36m_mm"] = float(frames.h36m_errors[mine].mean())
        rows.append(row)
    return rows


# ----------------------------------------------------------------------------------------------
# Stores to evaluate on


@dataclass(frozen=True)
class EvalStore:
    """A store to evaluate on: ``info`` (examples, people as ``persons``), ``sequence`` (E,) str
    the sequence of each example, ``kind`` ``"3dpw"`` or ``"synthetic"``."""

    info: StoreInfo
    sequence: np.ndarray
    kind: str


def open_eval_store(url: str) -> tuple[EvalStore, dict]:
    """A 3DPW or synthetic store's examples and people, and its root attributes.

    Raises
    ------
    ValueError
        A video store (no ground truth), or one without a finished shard.
    """
    group = synthstore.open_group(url)
    attrs = dict(group.attrs)
    if attrs.get("kind") == "video":
        raise ValueError(f"{url} is a video store, without ground truth to evaluate against: "
                         f"give a 3DPW or synthetic store, or run trainer predict on it")
    if attrs.get("kind", "synthetic") == "synthetic":
        info = open_stores([url])[0]
        return EvalStore(info, info.persons, "synthetic"), attrs
    examples = synthstore.finished_examples(group)
    if examples.size == 0:
        raise ValueError(f"{url}: store has no finished shard yet")
    names = [s["name"] for s in attrs["sources"]["sequences"]]
    index = group["sequence_index"].get_orthogonal_selection((examples,))
    sequence = np.asarray([names[i] for i in index], dtype=str)
    actor = np.asarray(group["actor"].get_orthogonal_selection((examples,)))
    persons = np.asarray([f"{s}#{a}" for s, a in zip(sequence, actor.tolist())], dtype=str)
    info = StoreInfo(url, int(attrs["num_frames"]), int(attrs["crop_size"]),
                     attrs.get("crop_flow"), examples, persons)
    return EvalStore(info, sequence, "3dpw"), attrs


# ----------------------------------------------------------------------------------------------
# The H36M-regressor protocol (the variant of most published 3DPW tables)

#: What each protocol ``trainer eval`` reports measures. ``paper``: Doersch & Zisserman's
#: (section 4); ``h36m``: the variant of SPIN's and VIBE's tables.
PROTOCOLS = {
    "paper": "PA-MPJPE on the 14 SMPL joints common to SMPL and COCO; mean per person, then over "
             "people",
    "h36m": "PA-MPJPE on 14 joints regressed from the SMPL mesh by an H36M joint regressor "
            "(J_regressor_h36m, 17 x 6890, joints H36M_TO_J14 as SPIN); ground truth from the "
            "stored pose and betas; mean over frames",
}
#: The 14 of the regressor's 17 H36M joints that SPIN and VIBE evaluate (their ``H36M_TO_J14``).
H36M_TO_J14 = (6, 5, 4, 1, 2, 3, 16, 15, 14, 11, 12, 13, 8, 10)
#: Joints of an H36M joint regressor.
H36M_JOINTS = 17


class SMPLMesh(SMPLJoints):
    """SMPL's posed mesh (``smplx.lbs.lbs``) besides its joints; built like
    :class:`trainer.smpl.SMPLJoints` (``SMPLMesh.from_path``)."""

    def __init__(self, model):
        super().__init__(model)
        posedirs = np.asarray(model["posedirs"], dtype=np.float32)
        buffers = {"v_template": model["v_template"],
                   "shapedirs": np.asarray(model["shapedirs"])[:, :, :NUM_BETAS],
                   "posedirs": posedirs.reshape(-1, posedirs.shape[-1]).T,
                   "J_regressor": model["J_regressor"], "lbs_weights": model["weights"]}
        for name, value in buffers.items():
            self.register_buffer(name, torch.as_tensor(np.asarray(value, dtype=np.float32)))

    @property
    def num_vertices(self) -> int:
        return int(self.v_template.shape[0])

    def vertices(self, pose: torch.Tensor, betas: torch.Tensor) -> torch.Tensor:
        """(..., V, 3) metres, SMPL model frame, of pose (..., 72) radians and betas (..., 10)."""
        lead = pose.shape[:-1]
        verts, _ = lbs(betas.reshape(-1, NUM_BETAS).float().contiguous(),
                       pose.reshape(-1, 72).float().contiguous(),
                       self.v_template, self.shapedirs, self.posedirs, self.J_regressor,
                       self.parents, self.lbs_weights)
        return verts.reshape(*lead, self.num_vertices, 3)


#: The first bytes of every .npy file.
_NPY_MAGIC = b"\x93NUMPY"


def load_h36m_regressor(path: str | Path, *, num_vertices: int) -> torch.Tensor:
    """An H36M joint regressor ``.npy`` (SPIN's ``J_regressor_h36m.npy``), read without pickle.

    Returns
    -------
    Tensor, shape (17, V), float32

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        Not a plain numeric ``.npy`` array of shape (17, V) with finite values.
    synthgen.core.errors.OversizeError
        Its header declares more than (17, V) values of 8 bytes (nothing is read).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such H36M joint regressor file")
    with open(path, "rb") as f:
        magic = f.read(len(_NPY_MAGIC))
    if magic != _NPY_MAGIC:
        start = "empty" if not magic else f"starts {magic!r}"
        raise ValueError(f"{path}: not a .npy file ({start})")
    try:
        with open(path, "rb") as f:  # a header declaring more than (17, V) is refused unread
            check_npy(f, Budget(path, "the regressor", (H36M_JOINTS, num_vertices)))
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        if "allow_pickle" in str(exc):  # numpy's advice (allow_pickle=True) could run code
            raise ValueError(f"{path}: refused: it holds pickled Python objects, which could "
                             f"run code when loaded; a regressor is a plain numeric array") from exc
        raise ValueError(f"{path}: truncated or damaged .npy file ({exc})") from exc
    if array.shape != (H36M_JOINTS, num_vertices) or not np.issubdtype(array.dtype, np.number):
        raise ValueError(f"{path}: an H36M joint regressor must be a ({H36M_JOINTS}, "
                         f"{num_vertices}) numeric array (joints x SMPL vertices), got "
                         f"{array.shape} {array.dtype}")
    if not np.isfinite(array).all():
        raise ValueError(f"{path}: the regressor holds non-finite values")
    return torch.as_tensor(array, dtype=torch.float32)


@dataclass(frozen=True)
class H36MProtocol:
    """What the ``h36m`` protocol needs: ``regressor`` (17, V); ``meshes`` per gender name of
    :data:`synthgen.store.GENDERS` the SMPL model of the ground truth; ``gendered`` whether
    those are the male and female models (else the neutral one stands in)."""

    regressor: torch.Tensor
    meshes: dict
    gendered: bool

    @classmethod
    def load(cls, regressor: str | Path, smpl: str | Path, *, neutral: SMPLMesh,
             device: torch.device) -> "H36MProtocol":
        """The regressor file and the ground truth's SMPL models (gendered when ``smpl`` is a
        directory holding ``SMPL_MALE.pkl`` and ``SMPL_FEMALE.pkl``)."""
        matrix = load_h36m_regressor(regressor, num_vertices=neutral.num_vertices).to(device)
        folder = Path(smpl)
        gendered = folder.is_dir() and all((folder / f"SMPL_{g.upper()}.pkl").is_file()
                                           for g in synthstore.GENDERS)
        meshes = {g: (SMPLMesh.from_path(folder, gender=g).to(device) if gendered else neutral)
                  for g in synthstore.GENDERS}
        return cls(matrix, meshes, gendered)

    def joints(self, vertices: torch.Tensor) -> torch.Tensor:
        """(..., 14, 3): the evaluated H36M joints of meshes (..., V, 3)."""
        return torch.einsum("jv,...vc->...jc", self.regressor, vertices)[..., H36M_TO_J14, :]

    def truth(self, pose: torch.Tensor, betas: torch.Tensor, gender: np.ndarray) -> torch.Tensor:
        """Ground-truth joints (B, T, 14, 3) from stored pose (B, T, 72), betas (B, 10) and
        gender codes (B,) (:data:`synthgen.store.GENDERS` index)."""
        out = torch.empty((*pose.shape[:2], len(H36M_TO_J14), 3), device=pose.device)
        for code, name in enumerate(synthstore.GENDERS):
            mine = torch.as_tensor(gender == code, device=pose.device)
            if mine.any():
                body_betas = betas[mine][:, None].expand(-1, pose.shape[1], -1)
                out[mine] = self.joints(self.meshes[name].vertices(pose[mine], body_betas))
        return out


# ----------------------------------------------------------------------------------------------
# Running the network on a store


@torch.no_grad()
def frame_errors(model: MotionHMR, config: TrainConfig, target: EvalStore, *,
                 smpl: SMPLJoints, device: torch.device, batch_size: int,
                 h36m: H36MProtocol | None = None) -> FrameErrors:
    """PA-MPJPE (mm) of every evaluated frame of a store (module docstring); by the ``h36m``
    protocol too when ``h36m`` is given (``smpl`` must then be an :class:`SMPLMesh`)."""
    info = target.info
    extra = ("evaluate", "frame_index") if target.kind == "3dpw" else ()
    if h36m is not None:
        extra += ("pose",)
    items = np.stack([np.zeros(info.examples.size, np.int64), info.examples], axis=1)
    dataset = ClipDataset([info], items,
                          clip_length=info.num_frames,
                          arrays=arrays_for(config.data.modality) + extra)
    sampler = ClipBatchSampler(np.full(info.examples.size, info.num_frames),
                               clip_length=info.num_frames, batch_size=batch_size, seed=0,
                               shuffle=False)
    loader = make_loader(dataset, sampler, num_workers=0, pin_memory=device.type == "cuda")
    group = synthstore.open_group(info.url)
    if target.kind == "synthetic":
        starts = np.asarray(group["surreal_start"].get_orthogonal_selection((info.examples,)))
    if h36m is not None:
        betas = np.asarray(group["betas"].get_orthogonal_selection((info.examples,)))
        genders = np.asarray(group["gender"].get_orthogonal_selection((info.examples,)))
    errors, persons, sequences, times, h36m_errors = [], [], [], [], []
    for host in loader:
        batch = to_device(host, device)
        theta = predict_parameters(model, batch, config=config.data, crop_size=info.crop_size)
        joints, _ = predicted_joints(smpl, theta)
        truth = batch["joints3d"][..., COCO14, :].float()
        error = pa_mpjpe(joints * METRES_TO_MM, truth * METRES_TO_MM).double().cpu().numpy()
        position = host["position"].numpy()
        frames = np.arange(info.num_frames)
        if target.kind == "3dpw":
            use = host["evaluate"].numpy()
            time = host["frame_index"].numpy().astype(np.int64)
        else:
            use = evaluated_frames(host).numpy()
            time = starts[position][:, None] + frames[None, :]
        if h36m is not None:
            predicted = h36m.joints(smpl.vertices(theta[..., POSE], theta[..., BETAS]))
            true = h36m.truth(batch["pose"], torch.as_tensor(betas[position], device=device),
                              genders[position])
            h36m_errors.append(pa_mpjpe(predicted * METRES_TO_MM, true * METRES_TO_MM)
                               .double().cpu().numpy()[use])
        errors.append(error[use])
        persons.append(np.repeat(info.persons[position], info.num_frames)[use.reshape(-1)])
        sequences.append(np.repeat(target.sequence[position], info.num_frames)[use.reshape(-1)])
        times.append(time[use])
    result = FrameErrors(np.concatenate(errors), np.concatenate(persons),
                         np.concatenate(sequences), np.concatenate(times),
                         np.concatenate(h36m_errors) if h36m is not None else None)
    if result.errors.size == 0:
        raise ValueError(f"{info.url}: no frame to evaluate (none flagged / with "
                         f"{MIN_VISIBLE} visible joints)")
    return result


# ----------------------------------------------------------------------------------------------
# The command


@dataclass(frozen=True)
class EvalResult:
    """Figures of one evaluation (millimetres).

    ``pa_mpjpe_mm``: the ``paper`` protocol (per person, then over people); ``frame_weighted_mm``:
    the same frame errors, every evaluated frame counted once; ``h36m_mm``: the ``h36m``
    protocol (frame-averaged; None without a regressor); ``frames``, ``people``: counts;
    ``sequences``, ``persons``: :func:`sequence_table` and :func:`person_table` rows;
    ``frame_errors``: every frame; ``h36m_ground_truth``: which SMPL models made the ``h36m``
    ground-truth meshes.
    """

    pa_mpjpe_mm: float
    frame_weighted_mm: float
    frames: int
    people: int
    sequences: list
    persons: list
    frame_errors: FrameErrors
    store: str
    checkpoint: str
    clip_length: int
    training_clip_length: int
    h36m_mm: float | None = None
    h36m_ground_truth: str | None = None

    def summary(self) -> dict:
        protocols = {"paper": {"pa_mpjpe_mm": self.pa_mpjpe_mm,
                               "frame_weighted_mm": self.frame_weighted_mm,
                               "description": PROTOCOLS["paper"]}}
        if self.h36m_mm is not None:
            protocols["h36m"] = {"pa_mpjpe_mm": self.h36m_mm, "description": PROTOCOLS["h36m"],
                                 "ground_truth": self.h36m_ground_truth}
        return {"pa_mpjpe_mm": self.pa_mpjpe_mm, "frame_weighted_mm": self.frame_weighted_mm,
                "frames": self.frames, "people": self.people, "store": self.store,
                "checkpoint": self.checkpoint, "clip_length": self.clip_length,
                "training_clip_length": self.training_clip_length,
                "protocol": "paper: " + PROTOCOLS["paper"], "protocols": protocols}

    def lines(self) -> list[str]:
        """The per-sequence table and the means, as printed by ``trainer eval``."""
        width = max([len("sequence")] + [len(r["sequence"]) for r in self.sequences])
        h36m = self.h36m_mm is not None
        extra = "  H36M-regressor" if h36m else ""
        out = [f"protocol paper: {PROTOCOLS['paper']}"]
        if h36m:
            out.append(f"protocol h36m: {PROTOCOLS['h36m']} ({self.h36m_ground_truth})")
        out.append(f"{'sequence':<{width}}  people  frames  PA-MPJPE  frame-weighted{extra}")
        rows = self.sequences + [{"sequence": "all", "people": self.people, "frames": self.frames,
                                  "pa_mpjpe_mm": self.pa_mpjpe_mm,
                                  "frame_weighted_mm": self.frame_weighted_mm,
                                  "h36m_mm": self.h36m_mm}]
        out += [f"{r['sequence']:<{width}}  {r['people']:>6}  {r['frames']:>6}  "
                f"{r['pa_mpjpe_mm']:>8.1f}  {r['frame_weighted_mm']:>14.1f}"
                + (f"  {r['h36m_mm']:>14.1f}" if h36m else "") for r in rows]
        out.append(f"PA-MPJPE {self.pa_mpjpe_mm:.1f} mm (protocol paper: mean per person, then "
                   f"over {self.people} people); frame-weighted {self.frame_weighted_mm:.1f} mm "
                   f"over {self.frames} frames")
        if h36m:
            out.append(f"PA-MPJPE {self.h36m_mm:.1f} mm (protocol h36m: H36M-regressor joints, "
                       f"mean over {self.frames} frames)")
        return out


def evaluate(checkpoint_path: str | Path, store_url: str, *, out_dir: str | Path | None = None,
             training_store: str | None = None, smpl: str | None = None, device: str = "auto",
             batch_size: int | None = None, h36m_regressor: str | Path | None = None,
             log=print) -> EvalResult:
    """Evaluate a checkpoint on a 3DPW or synthetic store (module docstring).

    Parameters
    ----------
    checkpoint_path : str or Path
        A ``last.pt`` of :func:`trainer.train.train`.
    store_url : str
        The store to evaluate on.
    out_dir : str or Path, optional
        Where to write the tables and plots (nothing written without it).
    training_store : str, optional
        The training store, when the checkpoint's recorded path moved.
    smpl : str, optional
        SMPL model file or directory (default: the checkpoint's ``model.smpl``).
    device : str
        ``auto``, ``cpu``, ``cuda``...
    batch_size : int, optional
        Clips per forward pass (default: the training batch size).
    h36m_regressor : str or Path, optional
        ``J_regressor_h36m.npy`` (17, 6890): also report the ``h36m`` protocol
        (:data:`PROTOCOLS`).
    log : callable
        Receives human-readable lines.

    Raises
    ------
    FileNotFoundError
        Missing checkpoint, store, regressor or SMPL file (a recorded SMPL path that is gone
        names ``--smpl``).
    ValueError
        Not a checkpoint, or one holding more than tensors and plain data; a store made with
        another crop flow or crops; a malformed regressor; nothing to evaluate.
    """
    checkpoint = load_checkpoint(checkpoint_path)
    training = training_data(checkpoint, training_store=training_store)
    target, attrs = open_eval_store(store_url)
    check_store_matches(training, synthstore.spec(attrs, source=store_url))
    torch_device = select_device(device)
    model, config = load_model(checkpoint, device=torch_device)
    if target.info.num_frames != config.data.clip_length:
        log(f"note: the store's clips have {target.info.num_frames} frames, the network was "
            f"trained on {config.data.clip_length}-frame clips (the paper evaluates at the "
            f"training length: build-3dpw --clip-length {config.data.clip_length})")
    smpl_path = checkpoint_smpl(config, smpl)
    body_class = SMPLMesh if h36m_regressor is not None else SMPLJoints
    body = body_class.from_path(smpl_path, gender="neutral").to(torch_device)
    h36m = (H36MProtocol.load(h36m_regressor, smpl_path, neutral=body, device=torch_device)
            if h36m_regressor is not None else None)
    frames = frame_errors(model, config, target, smpl=body, device=torch_device,
                          batch_size=batch_size or config.data.batch_size, h36m=h36m)
    per_person, weighted = protocol_means(frames.errors, frames.person)
    result = EvalResult(per_person, weighted, int(frames.errors.size),
                        len(set(frames.person.tolist())), sequence_table(frames),
                        person_table(frames), frames, str(store_url), str(checkpoint_path),
                        target.info.num_frames, config.data.clip_length,
                        h36m_mm=None if h36m is None else float(frames.h36m_errors.mean()),
                        h36m_ground_truth=None if h36m is None else (
                            "gendered SMPL models" if h36m.gendered else
                            "the neutral SMPL model (no SMPL_MALE/FEMALE.pkl beside it)"))
    if out_dir is not None:
        write_outputs(result, out_dir)
        log(f"wrote {out_dir}/summary.json, per_sequence.csv, per_person.csv, frames.csv, plots/")
    return result


# ----------------------------------------------------------------------------------------------
# Files and plots


def _write_csv(path: Path, rows: list[dict], columns: list[str]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: f"{v:.4f}" if isinstance(v, float) else v
                             for k, v in row.items() if k in columns})


def safe_name(name: str) -> str:
    """A file name for a sequence name (anything but letters, digits, ``-``, ``.`` -> ``_``)."""
    return re.sub(r"[^A-Za-z0-9.-]+", "_", name).strip("_") or "sequence"


def write_outputs(result: EvalResult, out_dir: str | Path) -> None:
    """Write ``summary.json``, the three CSV tables and one plot per sequence into ``out_dir``."""
    out = Path(out_dir)
    (out / "plots").mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(result.summary(), indent=2))
    h36m = result.frame_errors.h36m_errors
    _write_csv(out / "per_sequence.csv", result.sequences,
               ["sequence", "people", "frames", "pa_mpjpe_mm", "frame_weighted_mm"]
               + (["h36m_mm"] if h36m is not None else []))
    _write_csv(out / "per_person.csv", result.persons,
               ["person", "sequence", "frames", "pa_mpjpe_mm"])
    frames = result.frame_errors
    rows = [{"sequence": s, "person": p, "frame": int(t), "pa_mpjpe_mm": float(e)}
            for s, p, t, e in zip(frames.sequence, frames.person, frames.time, frames.errors)]
    if h36m is not None:
        for row, value in zip(rows, h36m):
            row["h36m_mm"] = float(value)
    _write_csv(out / "frames.csv", rows, ["sequence", "person", "frame", "pa_mpjpe_mm"]
               + (["h36m_mm"] if h36m is not None else []))
    for row in result.sequences:
        mine = frames.sequence == row["sequence"]
        lines = {person: (frames.time[mine & (frames.person == person)],
                          frames.errors[mine & (frames.person == person)])
                 for person in sorted(set(frames.person[mine].tolist()))}
        image = plot_errors(lines, title=f"{row['sequence']}: PA-MPJPE {row['pa_mpjpe_mm']:.1f} mm "
                                          f"(protocol paper)")
        path = out / "plots" / f"{safe_name(row['sequence'])}.png"
        if not cv2.imwrite(str(path), image):
            raise OSError(f"{path}: could not write the plot")


#: BGR colours of the plot's lines, in turn.
PLOT_COLOURS = ((180, 119, 31), (14, 127, 255), (44, 160, 44), (40, 39, 214), (189, 103, 148),
                (75, 86, 140), (194, 119, 227), (127, 127, 127))


def _nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 5 x 10^k at or above ``value`` (> 0)."""
    power = 10.0 ** np.floor(np.log10(value))
    return float(next(m * power for m in (1, 2, 5, 10) if m * power >= value))


def plot_errors(lines: dict[str, tuple[np.ndarray, np.ndarray]], *, title: str,
                size: tuple[int, int] = (360, 960)) -> np.ndarray:
    """A line plot of frame errors over time, drawn with OpenCV.

    Parameters
    ----------
    lines : dict of str to (ndarray, ndarray)
        Per person: frame indices (K,) and errors (K,) in mm; a gap in the frames breaks its line.
    title : str
    size : (int, int)
        Height and width of the image, pixels.

    Returns
    -------
    ndarray, shape (H, W, 3), uint8
        BGR image: white background, y from 0 mm, x over the frames shown, a legend.
    """
    height, width = size
    left, right, top, bottom = 64, 16, 32, 40
    image = np.full((height, width, 3), 255, np.uint8)
    times = np.concatenate([t for t, _ in lines.values()])
    values = np.concatenate([e for _, e in lines.values()])
    x0, x1 = float(times.min()), float(max(times.max(), times.min() + 1))
    y1 = _nice_ceiling(max(float(values.max()), 1.0))

    def to_pixel(t, e):
        x = left + (np.asarray(t, float) - x0) / (x1 - x0) * (width - left - right)
        y = height - bottom - np.asarray(e, float) / y1 * (height - top - bottom)
        return np.stack([x, y], axis=-1)

    font = cv2.FONT_HERSHEY_SIMPLEX
    for k in range(6):
        value = y1 * k / 5
        (_, y), = to_pixel([x0], [value])
        cv2.line(image, (left, int(round(y))), (width - right, int(round(y))), (225, 225, 225), 1)
        cv2.putText(image, f"{value:g}", (4, int(round(y)) + 4), font, 0.4, (60, 60, 60), 1,
                    cv2.LINE_AA)
    for k in range(6):
        t = x0 + (x1 - x0) * k / 5
        (x, _), = to_pixel([t], [0.0])
        cv2.putText(image, f"{t:.0f}", (int(round(x)) - 10, height - bottom + 16), font, 0.4,
                    (60, 60, 60), 1, cv2.LINE_AA)
    cv2.rectangle(image, (left, top), (width - right, height - bottom), (0, 0, 0), 1)
    cv2.putText(image, title, (left, top - 10), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(image, "frame", (width // 2, height - 6), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(image, "mm", (4, top - 10), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    shift = 4
    for k, (name, (t, e)) in enumerate(lines.items()):
        colour = PLOT_COLOURS[k % len(PLOT_COLOURS)]
        order = np.argsort(t, kind="stable")
        t, e = np.asarray(t)[order], np.asarray(e)[order]
        points = np.round(to_pixel(t, e) * (1 << shift)).astype(np.int32)
        for run in np.split(np.arange(len(t)), np.flatnonzero(np.diff(t) > 1) + 1):
            if len(run) > 1:
                cv2.polylines(image, [points[run]], False, colour, 1, cv2.LINE_AA, shift)
            else:
                cv2.circle(image, tuple(int(v) for v in points[run[0]]), 2 << shift, colour, -1,
                           cv2.LINE_AA, shift)
        cv2.putText(image, name, (width - right - 220, top + 16 + 16 * k), font, 0.4, colour, 1,
                    cv2.LINE_AA)
    return image
