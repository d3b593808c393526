"""``synthgen build-video``: a user's video in, a ``"video"`` store for ``trainer predict`` out.

Top to bottom:

1. The video's 2D keypoints: a file (:func:`synthgen.sources.keypoints.read_keypoints`) or the
   isolated MediaPipe detector (:func:`synthgen.sources.detector.run_mediapipe`).
2. What the crops and crop flow must be is read from the training store (``--match-store``,
   :func:`synthgen.store.spec`): crop size, person height, flow quantum, the crop-flow backend
   (rebuilt by :func:`flow_backend`, which refuses any other) and, by
   default, the clip length (the store's ``num_frames``).
3. :func:`synthgen.clips.plan_video` and :func:`synthgen.clips.iter_clips` make the
   clips (the 3DPW protocol on the keypoints, HMR boxes, crops, crop flow), a shard per task of
   the shard engine (:func:`synthgen.build.engine.build_store`, driven by :class:`VideoJob`;
   :func:`synthgen.store.schema_video`), under the store's build lock; ``resume`` redoes only
   unfinished shards.

Root attributes: ``video`` (absolute path, fps, width, height, num_frames, is_folder and, for a
folder, ``frames``, its file names in decode order: where ``trainer predict`` reads the full
frames for its skeleton video), ``keypoints`` (source, layout), ``padded_frames``, ``crop_flow`` (None when the flow is left out, ``--no-flow``), ``config``
(``crops``: size, person_height), ``protocol``, ``match_store``, ``skipped`` (always empty: a
video that cannot be read stops the build) and ``summary`` (clips, frames, total_occlusions,
skipped_inputs, synthgen_version). ``joints_convention`` is None: a video store has no 3D joints.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synthgen import store
from synthgen.build.engine import Job, ShardResult, StorePlan, build_store
from synthgen.build.executor import Executor, SerialExecutor
from synthgen.build.threedpw import Protocol
from synthgen.core.flow import DEFAULT_FLOW_QUANTUM
from synthgen.steps.crop_flow import CLASSICAL, FlowBackend, get_backend

#: Clips per shard (a shard is assembled in memory).
EXAMPLES_PER_SHARD = 8
#: Detectors ``--detector`` can run.
DETECTORS = ("mediapipe",)


def video_keypoints(video, *, keypoints=None, detector: str | None = None, stream=None):
    """The 2D keypoints of a video (``synthgen.sources.keypoints.VideoKeypoints``): read from
    ``keypoints`` or detected by ``detector``.

    Raises
    ------
    ValueError
        Neither or both given; an unknown detector.
    SourceError
        An unreadable keypoint file.
    synthgen.sources.detector.DetectorUnavailableError
        ``detector`` without its environment (the message says ``make detector``).
    """
    from synthgen.sources.keypoints import read_keypoints

    if (keypoints is None) == (detector is None):
        raise ValueError("give exactly one of --keypoints FILE|DIR and --detector mediapipe")
    if keypoints is not None:
        return read_keypoints(keypoints)
    if detector not in DETECTORS:
        raise ValueError(f"unknown detector {detector!r}; known: {list(DETECTORS)}")
    from synthgen.sources.detector import detector_python, run_mediapipe

    python = detector_python()  # refused in one line before anything is said to run
    print(f"running MediaPipe Pose on {video} ({python})", file=stream or sys.stderr)
    return run_mediapipe(video, python=python, stream=stream)


def flow_backend(record: dict, *, checkpoint: str | Path | None = None, device: str = "cpu",
                 batch_size: int | None = None) -> FlowBackend:
    """The crop-flow backend a store's ``crop_flow`` record describes.

    Parameters
    ----------
    record : dict
        ``{"name", "params"}`` as stores record it (``attrs["crop_flow"]``).
    checkpoint : str or Path, optional
        FlowNet weights (default: the path the record names); their SHA-256 must match.
    device : str
        Torch device for FlowNet.
    batch_size : int, optional
        Pairs per call (does not change the flow).

    Raises
    ------
    ValueError
        An unknown backend, FlowNet without weights, random FlowNet weights (nothing to
        rebuild), or a rebuilt backend that differs from the record (both are named).
    SourceError
        A missing or bad FlowNet checkpoint.
    """
    name = record.get("name")
    params = dict(record.get("params", {}))
    if name in CLASSICAL:
        backend = get_backend(name, batch_size=batch_size, **params)
    else:
        if params.get("random_weights"):
            raise ValueError(f"the training data's {name} flow used random weights: it cannot be "
                             f"reproduced on new video")
        backend = get_backend(str(name), checkpoint=checkpoint or params.get("checkpoint"),
                              device=device, batch_size=batch_size)
    store.check_compatible(store.StoreSpec("the training data", crop_flow=record),
                           store.StoreSpec("the rebuilt backend", crop_flow={
                               "name": backend.name, "params": backend.params}),
                           fields=("crop_flow",), what="cannot rebuild the training data's flow")
    return backend


@dataclass(frozen=True)
class VideoSummary:
    """What a video build produced."""

    url: str
    frames: int
    clips: int
    clip_length: int
    total_occlusions: int
    crop_flow: str | None
    asked_length: int  #: the clip length asked for (``clip_length`` is less for a shorter video)

    def lines(self) -> list[str]:
        shorter = (f" (the video is shorter than the clip length {self.asked_length}: one clip "
                   f"of all its frames)" if self.clip_length < self.asked_length else "")
        return [f"store {self.url}: {self.frames} frames in {self.clips} clips of "
                f"{self.clip_length}{shorter}, {self.total_occlusions} frames with too few "
                f"keypoints, crop flow: {self.crop_flow or 'left out'}"]


@dataclass(frozen=True)
class ShardTask:
    """Everything a task needs to make one shard of a video store (picklable)."""

    url: str
    shard: int
    clips: slice
    plan: object  # synthgen.clips.VideoPlan
    flow_record: dict | None
    flow_checkpoint: str | None
    flow_device: str
    flow_quantum: float


def run_shard(task: ShardTask, tick=lambda n=1: None) -> ShardResult:
    """Executor task: read, crop, flow and write the clips of one shard (not marked done)."""
    from synthgen.clips import iter_clips

    backend = (None if task.flow_record is None else
               flow_backend(task.flow_record, checkpoint=task.flow_checkpoint,
                            device=task.flow_device))
    group = store.open_group(task.url, mode="r+")
    specs = store.full_schema(group.attrs)
    length = task.plan.clip_length
    rows: list[dict] = []
    for clip in iter_clips(task.plan, backend=backend, clips=task.clips):
        row = {name: getattr(clip, name) for name in specs if hasattr(clip, name)}
        row["flow"] = (np.zeros(specs["flow"].shape, specs["flow"].dtype) if clip.flow is None
                       else store.quantize_flow(clip.flow, task.flow_quantum))
        # (a flow left out of the store is dropped by write_shard)
        row["frame_index"] = np.arange(clip.start, clip.start + length, dtype=np.int32)
        rows.append(row)
        tick()
    store.write_shard(group, task.shard, {name: np.stack([r[name] for r in rows])
                                          for name in rows[0]})
    return ShardResult(task.shard)


class VideoJob(Job):
    """The video build as a job of the shard engine: keypoints and plan in :meth:`prepare`."""

    desc = "clips"
    run_shard = staticmethod(run_shard)

    def __init__(self, video, *, match_store: str, theirs, keypoints, detector, clip_length,
                 person_height: float, crop_flow: dict | None, flow_record: dict | None,
                 flow_checkpoint, flow_device: str, flow_quantum: float, examples_per_shard: int):
        self.video, self.match_store, self.theirs = video, match_store, theirs
        self.keypoints, self.detector, self.clip_length = keypoints, detector, clip_length
        self.person_height, self.crop_flow, self.flow_record = person_height, crop_flow, flow_record
        self.flow_checkpoint = None if flow_checkpoint is None else str(flow_checkpoint)
        self.flow_device, self.flow_quantum = flow_device, flow_quantum
        self.examples_per_shard = examples_per_shard
        self.plan = None

    def prepare(self, executor: Executor, stream) -> StorePlan:
        from synthgen.clips import plan_video

        found = video_keypoints(self.video, keypoints=self.keypoints, detector=self.detector,
                                stream=stream)
        plan = plan_video(self.video, found, crop_size=self.theirs.crop_size,
                          person_height=self.person_height, clip_length=self.clip_length)
        self.plan = plan
        attrs = {"video": _video_attrs(plan.video),
                 "keypoints": {"source": str(found.source), "layout": found.layout},
                 "padded_frames": plan.padded_frames, "crop_flow": self.crop_flow,
                 "config": {"crops": {"size": plan.crop_size,
                                      "person_height": self.person_height}},
                 "protocol": Protocol(clip_length=plan.clip_length).to_attrs(),
                 "match_store": str(self.match_store), "skipped": [], "summary": None}
        return StorePlan(num_examples=len(plan.starts), num_frames=plan.clip_length,
                         crop_size=plan.crop_size, examples_per_shard=self.examples_per_shard,
                         attrs=attrs, resume_keys=("video", "keypoints", "crop_flow", "config",
                                                   "protocol"),
                         kind="video", flow_quantum=self.flow_quantum,
                         omit=() if self.crop_flow is not None else ("flow",))

    def tasks(self, url: str, group, shards: list[int]) -> list[ShardTask]:
        return [ShardTask(url, s, store.shard_slice(group, s), self.plan, self.flow_record,
                          self.flow_checkpoint, self.flow_device, self.flow_quantum)
                for s in shards]

    def summary(self, group) -> dict:
        return {"clips": len(self.plan.starts), "frames": self.plan.video.num_frames,
                "total_occlusions": int(self.plan.track.total_occlusion.sum())}


def build_video(video, out: str, *, match_store: str, keypoints=None, detector: str | None = None,
                clip_length: int | None = None, person_height: float | None = None,
                flow: bool = True, flow_checkpoint=None, flow_device: str = "cpu",
                examples_per_shard: int = EXAMPLES_PER_SHARD, resume: bool = False,
                overwrite: bool = False, executor: Executor | None = None,
                stream=None) -> VideoSummary:
    """Build (or resume) a video store (module docstring).

    Parameters
    ----------
    video : path
        A video file or frame folder.
    out : str
        Store path or fsspec URL.
    match_store : str
        The network's training store: crops, flow and clip length are made as its.
    keypoints, detector
        Exactly one: a keypoint file or folder, or ``"mediapipe"``.
    clip_length : int, optional
        Frames per clip (default: the training store's ``num_frames``). A shorter video is one
        clip of all its frames (:mod:`synthgen.clips`), which the summary says.
    person_height : float, optional
        Person height in the crops, pixels: needed when the training store records none; must
        agree with it otherwise.
    flow : bool
        Compute the crop flow (False: leave ``flow`` out, for networks that do not see it).
    flow_checkpoint, flow_device
        FlowNet weights (when the training data's file moved) and torch device.
    resume : bool
        Continue a killed build of the same video, keypoints and training store.
    executor : Executor, optional
        Where the shard tasks run (default in this process).

    Raises
    ------
    FileExistsError, synthgen.build.lock.StoreLockedError, synthgen.build.lock.StoreAccessError
        As :func:`synthgen.build.lock.claim_store`.
    FileNotFoundError, ValueError
        No training store, or ``out`` is it; a person height missing or differing; a flow that
        cannot be rebuilt; ``resume`` on a store of another video.
    SourceError
        An unreadable video or keypoint file, mismatching keypoints, no frame with enough
        keypoints.
    """
    if examples_per_shard < 1:
        raise ValueError(f"need at least 1 clip per shard, got {examples_per_shard}")
    store.check_not_input(out, match_store, "training store (--match-store)")
    group = store.open_group(str(match_store))
    theirs = store.spec(group, source=f"training store {match_store}")
    height = theirs.person_height if person_height is None else float(person_height)
    if height is None:
        raise ValueError(f"training store {match_store} records no person height: pass "
                         f"--person-height (pixels in its {theirs.crop_size}-px crops)")
    quantum = theirs.flow_quantum or DEFAULT_FLOW_QUANTUM
    record = store.crop_flow_record(group.attrs) or {}
    backend = (flow_backend(record, checkpoint=flow_checkpoint, device=flow_device)
               if flow else None)
    crop_flow = None if backend is None else {"name": backend.name, "params": backend.params}
    ours = store.StoreSpec("this build", crop_size=theirs.crop_size, person_height=height,
                           flow_quantum=quantum, crop_flow=crop_flow)
    store.check_compatible(theirs, ours, fields=("crop_size", "person_height", "flow_quantum")
                           + (("crop_flow",) if flow else ()),
                           what="cannot match the training store",
                           hint="leave --person-height out or give the training store's")
    job = VideoJob(video, match_store=match_store, theirs=theirs, keypoints=keypoints,
                   detector=detector, clip_length=int(clip_length or group.attrs["num_frames"]),
                   person_height=height, crop_flow=crop_flow,
                   flow_record=None if backend is None else record,
                   flow_checkpoint=flow_checkpoint, flow_device=flow_device,
                   flow_quantum=quantum, examples_per_shard=examples_per_shard)
    run = build_store(job, out, executor=executor or SerialExecutor(), resume=resume,
                      overwrite=overwrite, stream=stream)
    plan = job.plan
    return VideoSummary(out, plan.video.num_frames, len(plan.starts), plan.clip_length,
                        run.summary["total_occlusions"],
                        None if crop_flow is None else crop_flow["name"], job.clip_length)


def _video_attrs(info) -> dict:
    """``attrs["video"]``: the probed video with its absolute path (and a folder's frame files,
    in decode order)."""
    from synthgen.sources.video import frame_files

    attrs = {**dataclasses.asdict(info), "path": str(Path(info.path).resolve())}
    if info.is_folder:
        attrs["frames"] = [path.name for path in frame_files(Path(attrs["path"]))]
    return attrs
