"""``synthgen build-3dpw``: 3DPW sequences in, a store of 31-frame evaluation clips out.

Top to bottom:

1. :func:`discover` finds the sequence files of the chosen splits, reads and checks each one
   (restricted unpickler, keys, shapes, frame counts) and the presence of every image, applies
   the protocol of :mod:`synthgen.steps.detections` to each actor and plans its clip windows.
   Unusable sequences and actors go to the skipped manifest with their reason.
2. :func:`run_shard` (a task per shard) reads each clip's frames at full resolution, crops
   them with the clip's boxes (``synthgen.steps.crops``), runs the crop-flow backend named by the
   pipeline on the paired crops and writes the whole shard (:func:`synthgen.store.schema_3dpw`).
3. The shard engine (:func:`synthgen.build.engine.build_store`, driven by :class:`ThreeDPWJob`)
   records skipped inputs and marks finished shards done; ``resume`` redoes only unmarked shards.
   Shard tasks ask Ray for ``crop_flow.gpu_fraction`` of a GPU when crop flow runs on CUDA.

The pipeline's ``clip.length`` is the clip length and its ``store.examples_per_shard`` the shard
size (a shard is assembled in memory: ~11 MB of crops and flow per 31-frame clip).

The store records its crop-flow backend under ``attrs["crop_flow"]`` exactly as a training store
does; :func:`check_same_backend` refuses a training store whose backend differs
(``--match-store``), since a network trained on one flow method cannot be evaluated on another.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from synthgen import store
from synthgen.build.engine import BuildRun, Job, ShardResult, StorePlan, build_store
from synthgen.build.engine import flow_task_options, skipped_lines, sorted_skips
from synthgen.build.executor import Executor, executor_for
from synthgen.clips import tracked_clip
from synthgen.config import Config, from_dict
from synthgen.core.errors import Skip, SourceError
from synthgen.core.joints import CONFIDENCE_THRESHOLD, MIN_VISIBLE, SMPL_FROM_OPENPOSE
from synthgen.steps.detections import (
    VISIBILITY_BITS,
    ActorTrack,
    actor_track,
    clip_windows,
)

@dataclass(frozen=True)
class SequenceSource:
    """A usable sequence: its file, images, frame count, actors and frame size (h, w) in pixels."""

    path: str
    name: str
    split: str
    image_dir: str
    num_frames: int
    num_actors: int
    frame_shape: tuple[int, int]


@dataclass(frozen=True)
class ClipPlan:
    """One example: ``length`` frames from ``start`` of actor ``actor`` of sequence ``sequence``
    (an index into the sources), with the frames it is first to cover."""

    sequence: int
    actor: int
    start: int
    first_cover: tuple[bool, ...]


@dataclass(frozen=True)
class Protocol:
    """The evaluation protocol's numbers (method section 3), recorded in the store."""

    clip_length: int = 31
    confidence_threshold: float = CONFIDENCE_THRESHOLD
    min_visible: int = MIN_VISIBLE

    def to_attrs(self) -> dict:
        return {"clip_length": self.clip_length,
                "confidence_threshold": self.confidence_threshold,
                "min_visible": self.min_visible, "openpose_to_smpl": dict(SMPL_FROM_OPENPOSE),
                "visibility_bits": dict(VISIBILITY_BITS)}


def track(actor, cfg: Config, protocol: Protocol) -> ActorTrack:
    """The protocol applied to one ``synthgen.sources.threedpw.Actor``.

    Raises
    ------
    ValueError
        Every frame of the actor is a total occlusion.
    """
    return actor_track(actor.keypoints, actor.confidence, size=cfg.crops.size,
                       person_height=cfg.crops.person_height,
                       threshold=protocol.confidence_threshold, min_visible=protocol.min_visible)


def discover(root, cfg: Config, protocol: Protocol, *, splits=("test",)
             ) -> tuple[list[SequenceSource], list[ClipPlan], list[Skip]]:
    """Read and check every sequence of ``splits`` under a 3DPW root and plan its clips.

    Returns
    -------
    sources : list of SequenceSource
        Sorted by path.
    plans : list of ClipPlan
        By sequence, actor, start.
    skipped : list of Skip
        Each unusable sequence (unreadable, unsafe, missing key or image) or actor (shorter than
        a clip, never detected), sorted.
    """
    from synthgen.sources.threedpw import check_images, find_sequences, read_sequence

    found, skipped = find_sequences(root, splits=splits)
    if not found:
        skipped.append(Skip(root, "empty", f"no 3DPW sequence file found (splits {list(splits)})"))
    sources, plans = [], []
    for item in found:
        try:
            sequence = read_sequence(item.path)
            frame_shape = check_images(item.image_dir, sequence.img_frame_ids)
        except SourceError as exc:
            skipped.append(Skip.of(exc))
            continue
        actor_plans = []
        for a, actor in enumerate(sequence.actors):
            starts, first_cover = clip_windows(sequence.num_frames, protocol.clip_length)
            if starts.size == 0:
                skipped.append(Skip(item.path, "too_short", f"actor {a}: {sequence.num_frames} "
                                    f"frames, {protocol.clip_length} needed"))
                continue
            try:
                track(actor, cfg, protocol)
            except ValueError as exc:
                skipped.append(Skip(item.path, "no_detection", f"actor {a}: {exc}"))
                continue
            actor_plans += [ClipPlan(len(sources), a, int(s), tuple(bool(c) for c in cover))
                            for s, cover in zip(starts, first_cover)]
        if actor_plans:
            sources.append(SequenceSource(str(item.path), sequence.name, item.split,
                                          str(item.image_dir), sequence.num_frames,
                                          len(sequence.actors), tuple(int(v) for v in frame_shape)))
            plans += actor_plans
    return sources, plans, sorted_skips(skipped)


def clip_arrays(sequence, plan: ClipPlan, tracked: ActorTrack, frames: np.ndarray, backend,
                cfg: Config) -> dict:
    """One example's row of every 3DPW store array (stored dtypes): the clip's crops, flow and
    detections (:func:`synthgen.clips.tracked_clip`, as ``build-video`` makes them) with the
    actor's ground truth.

    Parameters
    ----------
    sequence : synthgen.sources.threedpw.Sequence
    plan : ClipPlan
    tracked : ActorTrack
        The actor's protocol arrays over the whole sequence.
    frames : ndarray, shape (T, H, W, 3), uint8
        The clip's full-resolution frames.
    backend : synthgen.steps.crop_flow.FlowBackend
    """
    window = slice(plan.start, plan.start + len(plan.first_cover))
    actor = sequence.actors[plan.actor]
    row = tracked_clip(frames, tracked, window, size=cfg.crops.size, backend=backend)
    valid = actor.campose_valid[window]
    row.update(
        flow=store.quantize_flow(row["flow"], cfg.store.flow_quantum),
        betas=actor.betas.astype(np.float32),
        gender=np.uint8(store.GENDERS.index(actor.gender)),
        joints3d=actor.joints_cam[window].astype(np.float32),
        pose=actor.poses[window].astype(np.float32),
        campose_valid=valid.copy(),
        evaluate=valid & ~row["total_occlusion"] & np.asarray(plan.first_cover),
        sequence_index=np.int32(plan.sequence),
        actor=np.int32(plan.actor),
        frame_index=np.arange(window.start, window.stop).astype(np.int32),
        image_id=sequence.img_frame_ids[window].astype(np.int32),
    )
    return row


def _failed_row(plan: ClipPlan, cfg: Config) -> dict:
    """All zeros (``evaluate`` False) for a clip whose images failed to read."""
    specs = store.schema_3dpw(len(plan.first_cover), cfg.crops.size)
    row = {name: np.zeros(spec.shape, dtype=spec.dtype) for name, spec in specs.items()}
    row.update(sequence_index=np.int32(plan.sequence), actor=np.int32(plan.actor),
               frame_index=np.arange(plan.start, plan.start + len(plan.first_cover),
                                     dtype=np.int32))
    return row


@dataclass(frozen=True)
class ShardTask:
    """Everything a worker needs to make one shard (pickled to Ray)."""

    url: str
    shard: int
    plans: tuple[ClipPlan, ...]
    sources: tuple[SequenceSource, ...]
    config: dict
    protocol: Protocol


def run_shard(task: ShardTask, tick=lambda n=1: None) -> ShardResult:
    """Executor task: read, crop, flow and write one whole shard (not marked done); ``tick()``
    after each clip."""
    from synthgen.sources.threedpw import read_frames, read_sequence
    from synthgen.steps.crop_flow import backend_from_config

    cfg = from_dict(task.config)
    backend = backend_from_config(cfg.crop_flow)
    rows, skipped = [], []
    cache: dict = {}
    for plan in task.plans:
        source = task.sources[plan.sequence]
        try:
            if cache.get("path") != source.path:
                sequence = read_sequence(source.path)
                cache = {"path": source.path, "sequence": sequence, "tracks": {}}
            sequence, tracks = cache["sequence"], cache["tracks"]
            if plan.actor not in tracks:
                tracks[plan.actor] = track(sequence.actors[plan.actor], cfg, task.protocol)
            ids = sequence.img_frame_ids[plan.start:plan.start + len(plan.first_cover)]
            frames = read_frames(source.image_dir, ids)
        except SourceError as exc:
            skipped.append(Skip.of(exc, f"clip of actor {plan.actor} from frame {plan.start} "
                                        f"left empty: {exc.detail}"))
            rows.append(_failed_row(plan, cfg))
        else:
            rows.append(clip_arrays(sequence, plan, tracks[plan.actor], frames, backend, cfg))
        tick()
    arrays = {name: np.stack([row[name] for row in rows]) for name in rows[0]}
    store.write_shard(store.open_group(task.url, mode="r+"), task.shard, arrays)
    return ShardResult(task.shard, tuple(skipped))


def check_same_backend(training_url: str, crop_flow: dict, cfg: Config) -> None:
    """Refuse to make evaluation data a training store's network cannot be run on.

    Parameters
    ----------
    training_url : str
        A training store (its :func:`synthgen.store.spec`).
    crop_flow : dict
        ``{"name", "params"}`` of the backend this build uses.
    cfg : Config
        This build's configuration (crop size and person height are compared too).

    Raises
    ------
    FileNotFoundError, ValueError
        No store there; or the backends or the crops differ (both are named).
    """
    theirs = store.spec(store.open_group(str(training_url)),
                        source=f"training store {training_url}")
    ours = store.StoreSpec(source="this build", crop_size=cfg.crops.size,
                           person_height=cfg.crops.person_height, crop_flow=crop_flow)
    store.check_compatible(theirs, ours, fields=("crop_flow", "crop_size", "person_height"),
                           what="cannot match the training store",
                           hint="use the same --flow (and --flow-checkpoint) and crops as the "
                                "training data")


class ThreeDPWJob(Job):
    """The 3DPW build as a job of the shard engine."""

    desc = "clips"
    run_shard = staticmethod(run_shard)

    def __init__(self, root, *, cfg: Config, crop_flow: dict, splits):
        self.root, self.cfg, self.crop_flow, self.splits = root, cfg, crop_flow, splits
        self.protocol = Protocol(clip_length=cfg.clip.length)
        self.sources: list[SequenceSource] = []
        self.plans: list[ClipPlan] = []

    def prepare(self, executor: Executor, stream) -> StorePlan:
        cfg, protocol = self.cfg, self.protocol
        self.sources, self.plans, skipped = discover(self.root, cfg, protocol, splits=self.splits)
        print(f"{len(self.sources)} usable sequences, {len(self.plans)} clips of "
              f"{protocol.clip_length} frames", file=stream)
        if not self.plans:
            raise RuntimeError("no usable 3DPW clip: " + "; ".join(str(s) for s in skipped))
        attrs = {"config": cfg.to_dict(), "crop_flow": self.crop_flow,
                 "sources": {"sequences": [dataclasses.asdict(s) for s in self.sources]},
                 "skipped": [s.to_dict() for s in skipped], "genders": list(store.GENDERS),
                 "protocol": protocol.to_attrs(), "summary": None}
        return StorePlan(num_examples=len(self.plans), num_frames=protocol.clip_length,
                         crop_size=cfg.crops.size, examples_per_shard=cfg.store.examples_per_shard,
                         attrs=attrs, resume_keys=("config", "crop_flow", "sources", "protocol"),
                         kind="3dpw", clevel=cfg.store.clevel, flow_quantum=cfg.store.flow_quantum)

    def tasks(self, url: str, group, shards: list[int]) -> list[ShardTask]:
        return [ShardTask(url, s, tuple(self.plans[store.shard_slice(group, s)]),
                          tuple(self.sources), self.cfg.to_dict(), self.protocol) for s in shards]

    def task_options(self, executor: Executor) -> dict:
        return flow_task_options(self.cfg.crop_flow, executor)

    def summary(self, group) -> dict:
        return {"clips": len(self.plans), "sequences": len(self.sources),
                "evaluated_frames": int(np.asarray(group["evaluate"][:]).sum())}


@dataclass(frozen=True)
class Summary3DPW:
    """What a 3DPW build produced (``seconds`` measured, not stored)."""

    url: str
    sequences: int
    clips: int
    evaluated_frames: int
    shards_built: int
    shards_reused: int
    skipped: tuple[Skip, ...]
    seconds: float

    @classmethod
    def of(cls, run: BuildRun) -> Summary3DPW:
        return cls(run.url, run.summary["sequences"], run.summary["clips"],
                   run.summary["evaluated_frames"], run.shards_built, run.shards_reused,
                   run.skipped, run.seconds)

    def lines(self) -> list[str]:
        return ([f"store {self.url}: {self.clips} clips from {self.sequences} sequences, "
                 f"{self.evaluated_frames} frames to evaluate ({self.shards_built} shards built, "
                 f"{self.shards_reused} reused), in {self.seconds:.1f} s"]
                + skipped_lines(self.skipped))


def build_3dpw(root, out: str, *, cfg: Config | None = None, splits=("test",),
               match_store: str | None = None, resume: bool = False, overwrite: bool = False,
               address: str | None = None, num_cpus: int | None = None, serial: bool = False,
               stream=None) -> Summary3DPW:
    """Build (or resume) a store of 3DPW evaluation clips (module docstring).

    Parameters
    ----------
    root : path
        3DPW root (``sequenceFiles/``, ``imageFiles/``).
    out : str
        Store path or fsspec URL.
    cfg : Config, optional
        ``clip.length`` (frames per clip), ``crops``, ``crop_flow`` and ``store`` (shard size,
        flow quantum, compression) are used.
    match_store : str, optional
        A training store whose crop-flow backend and crops this build must match.
    resume : bool
        Continue a killed build of the same inputs and pipeline (finished shards are kept).
    address, num_cpus, serial
        The executor (:func:`synthgen.build.executor.executor_for`).

    Raises
    ------
    FileExistsError
        ``out`` holds a store and neither ``resume`` nor ``overwrite`` is given.
    synthgen.build.lock.StoreLockedError, synthgen.build.lock.StoreAccessError
        Another build is writing ``out``, or it cannot be written.
    ValueError
        Backend or crops differ from ``match_store``, or ``out`` is it; ``resume`` on a store of
        other inputs.
    RuntimeError
        No usable clip, or shards that failed (their errors are listed).
    """
    from synthgen.steps.crop_flow import backend_from_config

    cfg = cfg or Config()
    backend = backend_from_config(cfg.crop_flow)
    crop_flow = {"name": backend.name, "params": backend.params}
    if match_store is not None:
        store.check_not_input(out, match_store, "training store (--match-store)")
        check_same_backend(match_store, crop_flow, cfg)
    job = ThreeDPWJob(root, cfg=cfg, crop_flow=crop_flow, splits=splits)
    run = build_store(job, out, resume=resume, overwrite=overwrite, stream=stream,
                      executor=executor_for(serial=serial, address=address, num_cpus=num_cpus))
    return Summary3DPW.of(run)
