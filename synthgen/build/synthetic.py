"""``synthgen build``: datasets in, a sharded store of training examples out.

Top to bottom:

1. :func:`discover_sources` finds the background videos and SURREAL clips, fills the camera-motion
   cache (:func:`synthgen.build.motion.build_cache`, a task per uncached video) and checks every
   SURREAL clip (a task each); unusable inputs go to the skipped manifest with their reason.
2. :func:`plan_example` decides, from the build seed and the example index alone, which video,
   window, crop, person and person window an example uses, and the example's own seed.
3. :func:`run_shard` (a task per shard) reads each example's inputs, calls the pure
   :func:`synthgen.example.make_example`, computes crop flow in batches and writes the whole shard.
4. The shard engine (:func:`synthgen.build.engine.build_store`, driven by :class:`SyntheticJob`)
   records each finished shard's skipped inputs in the store's manifest, then marks the shard
   done; ``resume`` redoes only unmarked shards.

Nothing depends on scheduling, worker count or cluster size: the same seed and sources give the
same bytes. An example whose inputs fail to read is re-planned (attempt 1, 2, ...) from its own
seed sequence, with the failing input recorded as skipped.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from synthgen import store
from synthgen.build.engine import (BuildRun, Job, ShardResult, StorePlan, build_store,
                                   flow_task_options, skipped_lines, sorted_skips)
from synthgen.build.executor import Executor, SerialExecutor, TaskFailure, executor_for
from synthgen.config import Config, from_dict
from synthgen.core.errors import Skip, SourceError
from synthgen.example import Example, make_example
from synthgen.sources.surreal import gtflow_path
from synthgen.steps.camera_motion import integrate_camera_motion
from synthgen.steps.occluder import OCCLUDED, REASONS as OCCLUDER_REASONS

#: Attempts at one example before the build gives up on it (each with other inputs).
MAX_ATTEMPTS = 8
#: Most examples one store may hold (100 M examples are ~120 TB at 8 frames). The build plans
#: every shard's task before it starts: 10**12 examples exhausted memory in planning.
MAX_EXAMPLES = 100_000_000


def default_cache_dir() -> Path:
    """The shared camera-motion cache: ``$SYNTHGEN_CACHE`` or ``~/.cache/synthgen/camera_motion``."""
    env = os.environ.get("SYNTHGEN_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "synthgen" / "camera_motion"


@dataclass(frozen=True)
class VideoSource:
    """A usable background video: ``num_frames`` at 30 fps, resized to ``frame_shape`` (h, w)."""

    path: str
    num_frames: int
    frame_shape: tuple[int, int]


@dataclass(frozen=True)
class PersonSource:
    """A usable SURREAL clip of ``num_frames`` frames."""

    path: str
    num_frames: int


@dataclass(frozen=True)
class Sources:
    """Everything a build draws from, in a fixed (sorted) order, plus what was skipped;
    ``smpl_dir`` is the directory of the SMPL models the people's joints are posed with."""

    videos: tuple[VideoSource, ...]
    people: tuple[PersonSource, ...]
    skipped: tuple[Skip, ...]
    smpl_dir: str

    def to_attrs(self) -> dict:
        return {"videos": [dataclasses.asdict(v) for v in self.videos],
                "surreal": [dataclasses.asdict(p) for p in self.people], "smpl": self.smpl_dir}


@dataclass(frozen=True)
class ExamplePlan:
    """Which inputs example ``index`` uses; every field follows from (build seed, index, attempt).

    ``video_start``/``person_start`` are first frames (30 fps indices), ``crop_yx`` the top-left
    (y, x) of the 240x320 window in the resized video, ``seed`` the seed of the example's own
    generator (``numpy.random.default_rng(seed)``, passed to ``make_example``).
    """

    index: int
    attempt: int
    seed: int
    video: int
    video_start: int
    crop_yx: tuple[int, int]
    person: int
    person_start: int


def _probe_person(path: str):
    """Executor task: a SURREAL clip's frame count after the reader's consistency checks, or its
    :class:`Skip`."""
    from synthgen.sources.surreal import probe_clip

    try:
        return probe_clip(path)
    except SourceError as exc:
        return Skip.of(exc)


def default_smpl_dir(surreal_dir) -> Path:
    """The SMPL model directory beside ``surreal_dir`` (``synthgen demo-data``'s layout)."""
    return Path(surreal_dir).parent / "smpl"


def discover_sources(kinetics_dir, surreal_dir, cfg: Config, *, cache_dir, splits=("train",),
                     smpl_dir=None, executor: Executor | None = None, stream=None) -> Sources:
    """Find, check and cache every input of a build.

    Parameters
    ----------
    kinetics_dir, surreal_dir : path
        Dataset roots (any nesting).
    smpl_dir : path, optional
        SMPL models (``SMPL_FEMALE.pkl``, ``SMPL_MALE.pkl``); default :func:`default_smpl_dir`.
    cfg : Config
        ``clip`` and ``camera_motion`` sections are used.
    cache_dir : path
        Camera-motion cache directory (shared by builds).
    splits : tuple of str or None
        SURREAL splits to draw people from (None: all).
    executor : Executor, optional
        Where the camera motion and the clip checks run (default in this process).

    Returns
    -------
    Sources
        Videos and clips with at least ``cfg.clip.length`` frames, sorted by path; none (and no
        camera motion computed) when no video or no SURREAL clip is found at all.

    Raises
    ------
    ValueError
        The SMPL models are missing or unusable (one line: which file, why, what to pass).
    """
    from synthgen.build.motion import build_cache
    from synthgen.sources.kinetics import find_videos
    from synthgen.sources.motion_cache import cache_file, load
    from synthgen.sources.surreal import check_smpl_dir, find_clips

    smpl_dir = Path(smpl_dir) if smpl_dir is not None else default_smpl_dir(surreal_dir)
    try:
        check_smpl_dir(smpl_dir)
    except (FileNotFoundError, ValueError) as exc:
        raise ValueError(f"SMPL models: {exc}; pass --smpl DIR, the directory of "
                         f"SMPL_FEMALE.pkl and SMPL_MALE.pkl") from exc
    stream = stream or sys.stderr
    executor = executor or SerialExecutor()
    length = cfg.clip.length
    videos, skipped = find_videos(kinetics_dir)
    if not videos:
        skipped.append(Skip(kinetics_dir, "empty", "no background video found"))
    clips, clip_skips = find_clips(surreal_dir, splits=splits)
    skipped += clip_skips
    if not clips:
        skipped.append(Skip(surreal_dir, "empty", _no_clips_detail(surreal_dir, splits)))
    if not videos or not clips:  # nothing to build from: stop before any camera motion
        return Sources((), (), tuple(sorted_skips(skipped)), str(smpl_dir.resolve()))
    print(f"camera motion of {len(videos)} background videos (cache {cache_dir})", file=stream)
    run = build_cache(videos, cache_dir, cfg=cfg.camera_motion, clip=cfg.clip, executor=executor,
                      progress_stream=stream)
    skipped += run.skipped
    bad = {skip.file for skip in run.skipped}
    video_sources = []
    for path in sorted(str(v) for v in videos if str(v) not in bad):
        motion = load(cache_file(cache_dir, path, cfg.camera_motion, cfg.clip))
        if motion is None:
            skipped.append(Skip(path, "error", "camera motion missing from the cache"))
        elif motion.num_frames < length:
            skipped.append(Skip(path, "too_short", f"{motion.num_frames} frames at 30 fps, "
                                                   f"{length} needed"))
        else:
            video_sources.append(VideoSource(path, motion.num_frames, tuple(motion.frame_shape)))

    paths = sorted(str(c.path) for c in clips)
    print(f"checking {len(paths)} SURREAL clips", file=stream)
    people = []
    for index, result in sorted(executor.map(_probe_person, paths, desc="clips",
                                             progress_stream=stream), key=lambda item: item[0]):
        if isinstance(result, TaskFailure):
            skipped.append(Skip(paths[index], "error", result.error))
        elif isinstance(result, Skip):
            skipped.append(result)
        elif result < length:
            skipped.append(Skip(paths[index], "too_short", f"{result} frames, {length} needed"))
        else:
            people.append(PersonSource(paths[index], int(result)))
    return Sources(tuple(video_sources), tuple(people), tuple(sorted_skips(skipped)),
                   str(smpl_dir.resolve()))


def _no_clips_detail(surreal_dir, splits) -> str:
    """Why no SURREAL clip was found: the splits asked for and the clips each split does hold."""
    from synthgen.sources.surreal import find_clips

    if splits is None:
        return "no SURREAL clip (*_cNNNN.mp4 with its .mat files) anywhere inside"
    found = Counter(c.split or "outside any split folder" for c in find_clips(surreal_dir)[0])
    holds = ", ".join(f"{n} in {split}" for split, n in sorted(found.items())) or "none at all"
    return (f"no SURREAL clip in split(s) {', '.join(splits)}; clips found: {holds} "
            f"(choose --split accordingly, or --split all)")


def nothing_to_build(sources: Sources) -> str:
    """The one-line reason a build has nothing to draw from, with the skipped inputs summarised."""
    reasons = Counter(s.reason for s in sources.skipped)
    empty = [f"{s.file}: {s.detail}" for s in sources.skipped if s.reason == "empty"]
    missing = " or ".join(what for what, have in (("background video", sources.videos),
                                                  ("SURREAL clip", sources.people)) if not have)
    return (f"nothing to build from: no usable {missing}; skipped inputs: "
            + (", ".join(f"{n} {r}" for r, n in sorted(reasons.items())) or "none")
            + "".join(f"; {line}" for line in empty)
            + " (check --kinetics, --surreal and --split; each skipped input is listed above)")


def example_seed(build_seed: int, index: int, attempt: int = 0) -> int:
    """The seed of example ``index`` (attempt ``attempt``), a uint64 from the build seed alone."""
    state = np.random.SeedSequence([build_seed, index, attempt]).generate_state(1, np.uint64)
    return int(state[0])


def plan_example(index: int, build_seed: int, sources: Sources, cfg: Config, *, attempt: int = 0,
                 exclude_videos=(), exclude_people=()) -> ExamplePlan:
    """Choose the inputs of one example from its seed (see :class:`ExamplePlan`).

    Raises
    ------
    RuntimeError
        If no usable video or person remains.
    """
    seed = example_seed(build_seed, index, attempt)
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])
    videos = [i for i in range(len(sources.videos)) if i not in set(exclude_videos)]
    people = [i for i in range(len(sources.people)) if i not in set(exclude_people)]
    if not videos or not people:
        raise RuntimeError("no usable background video or SURREAL clip left: see the skipped "
                           "inputs above, and check --kinetics and --surreal")
    length, height, width = cfg.clip.length, cfg.clip.height, cfg.clip.width
    video = videos[int(rng.integers(len(videos)))]
    v = sources.videos[video]
    video_start = int(rng.integers(v.num_frames - length + 1))
    crop_yx = (int(rng.integers(v.frame_shape[0] - height + 1)),
               int(rng.integers(v.frame_shape[1] - width + 1)))
    person = people[int(rng.integers(len(people)))]
    person_start = int(rng.integers(sources.people[person].num_frames - length + 1))
    return ExamplePlan(index, attempt, seed, video, video_start, crop_yx, person, person_start)


def example_rng(plan: ExamplePlan) -> np.random.Generator:
    """The generator ``make_example`` consumes: a stream of the plan's seed apart from the plan's."""
    return np.random.default_rng(np.random.SeedSequence(plan.seed).spawn(2)[1])


def example_inputs(plan: ExamplePlan, sources: Sources, cfg: Config, *, cache_dir):
    """Read an example's inputs: the background clip, its camera offsets and the SURREAL clip.

    Returns
    -------
    background : BackgroundClip
    camera_offsets : ndarray, shape (T, 2)
        Integrated camera motion of the window, frame pixels (x, y), 0 at frame T // 2.
    person : SurrealClip

    Raises
    ------
    synthgen.core.errors.SourceError
        If an input cannot be read (``exc.path`` names it).
    """
    from synthgen.build.motion import pair_motion
    from synthgen.sources import kinetics, surreal
    from synthgen.sources.motion_cache import cache_file, load

    video = sources.videos[plan.video]
    length = cfg.clip.length
    motion = load(cache_file(cache_dir, video.path, cfg.camera_motion, cfg.clip))
    if motion is None:
        raise SourceError(video.path, "camera motion missing from the cache: run synthgen motion")
    window = pair_motion(motion, start=plan.video_start, length=length, crop_yx=plan.crop_yx,
                                     crop_shape=(cfg.clip.height, cfg.clip.width),
                                     inlier_radius=cfg.camera_motion.inlier_radius)
    background = kinetics.read_clip(video.path, start=plan.video_start, length=length,
                                    crop_yx=plan.crop_yx, fps=cfg.clip.fps,
                                    height=cfg.clip.height, width=cfg.clip.width)
    person = surreal.read_clip(sources.people[plan.person].path, smpl_dir=sources.smpl_dir,
                               start=plan.person_start, length=length)
    return background, integrate_camera_motion(window), person


def build_example(plan: ExamplePlan, sources: Sources, cfg: Config, *, cache_dir) -> Example:
    """Read an example's inputs and make it (the I/O around the pure ``make_example``)."""
    background, offsets, person = example_inputs(plan, sources, cfg, cache_dir=cache_dir)
    return make_example(background, offsets, person, example_rng(plan), cfg,
                        provenance={"index": plan.index, "seed": plan.seed})


def stored_plan(group, index: int) -> ExamplePlan:
    """The plan example ``index`` of a store was made from (its stored seed and inputs)."""
    def value(name):
        return group[name][index]

    return ExamplePlan(index=index, attempt=-1, seed=int(value("seed")),
                       video=int(value("video_index")), video_start=int(value("video_start")),
                       crop_yx=tuple(int(v) for v in value("video_crop_yx")),
                       person=int(value("surreal_index")), person_start=int(value("surreal_start")))


def stored_sources(attrs) -> Sources:
    """The sources a store was built from (its ``sources`` attribute)."""
    info = attrs["sources"]
    return Sources(tuple(VideoSource(v["path"], v["num_frames"], tuple(v["frame_shape"]))
                         for v in info["videos"]),
                   tuple(PersonSource(p["path"], p["num_frames"]) for p in info["surreal"]),
                   tuple(Skip.from_dict(s) for s in attrs.get("skipped", ())), info["smpl"])


def rebuild_example(url: str, index: int, *, cache_dir=None) -> tuple[ExamplePlan, Example, dict]:
    """Make example ``index`` of a store again, alone, from its seed and the original inputs.

    Returns the plan, the example and its row of every store array (stored dtypes), which equals
    the stored row when the inputs and the code are unchanged (``synthgen inspect --verify``).
    """
    from synthgen.steps.crop_flow import backend_from_config

    group = store.open_group(url)
    cfg = from_dict(group.attrs["config"])
    plan = stored_plan(group, index)
    example = build_example(plan, stored_sources(group.attrs), cfg,
                            cache_dir=str(cache_dir or default_cache_dir()))
    flow = backend_from_config(cfg.crop_flow).flow(example.pair_crops)
    return plan, example, example_arrays(example, plan, flow, cfg,
                                         gt_crop_flow=bool(group.attrs.get("gt_crop_flow")))


def example_arrays(example: Example, plan: ExamplePlan, flow: np.ndarray, cfg: Config, *,
                   gt_crop_flow: bool = False) -> dict:
    """One example's row of every store array (stored dtypes).

    ``flow`` : ndarray, shape (T-1, S, S, 2), float32 crop pixels (x, y), quantised here.
    ``gt_crop_flow`` : also the example's ground-truth crop flow, quantised like ``flow`` (the
    store has the array: every SURREAL clip has ground-truth flow).
    """
    row = {
        "rgb": example.rgb_crops,
        "flow": store.quantize_flow(flow, cfg.store.flow_quantum),
        "joints2d": example.joints2d.astype(np.float32),
        "joints2d_crop": example.joints2d_crop.astype(np.float32),
        "joints3d": example.joints3d.astype(np.float32),
        "visibility": example.visibility.astype(np.uint8),
        "total_occlusion": example.total_occlusion.astype(bool),
        "boxes": example.boxes.astype(np.float32),
        "camera_motion": example.camera_offsets.astype(np.float32),
        "pose": example.pose.astype(np.float32),
        "betas": example.betas.astype(np.float32),
        "gender": np.uint8(store.GENDERS.index(example.gender)),
        "occluder_mask": example.occluder_crops.astype(bool),
        "seed": np.uint64(plan.seed),
        "video_index": np.int32(plan.video),
        "video_start": np.int32(plan.video_start),
        "video_crop_yx": np.asarray(plan.crop_yx, dtype=np.int32),
        "surreal_index": np.int32(plan.person),
        "surreal_start": np.int32(plan.person_start),
        "occluder_reason": np.uint8(OCCLUDER_REASONS.index(example.occluder_reason)),
        "occluder_segment": np.int32(example.occluder_superpixel),
        "occluder_num_segments": np.int32(example.slic_segments),
        "superpixels_per_frame": np.float32(example.superpixels_per_frame),
        "occluder_scale": np.float32(example.position_scale),
        "occluded_fraction": np.float32(example.occluded_fraction),
    }
    if gt_crop_flow:
        row["gt_crop_flow"] = store.quantize_flow(example.gt_crop_flow, cfg.store.flow_quantum)
    return row


def make_planned_example(index: int, build_seed: int, sources: Sources, cfg: Config, *,
                         cache_dir) -> tuple[ExamplePlan, Example, list[Skip]]:
    """Plan and make example ``index``, re-planning around inputs that fail to read.

    Returns the plan that succeeded, its example, and the inputs skipped on the way.
    """
    skipped: list[Skip] = []
    bad_videos: set[int] = set()
    bad_people: set[int] = set()
    video_paths = {v.path: i for i, v in enumerate(sources.videos)}
    person_paths = {p.path: i for i, p in enumerate(sources.people)}
    for attempt in range(MAX_ATTEMPTS):
        plan = plan_example(index, build_seed, sources, cfg, attempt=attempt,
                            exclude_videos=bad_videos, exclude_people=bad_people)
        try:
            return plan, build_example(plan, sources, cfg, cache_dir=cache_dir), skipped
        except SourceError as exc:
            skipped.append(Skip.of(exc))
            failed = str(Path(exc.path))
            if failed in video_paths or plan.video == video_paths.get(exc.path):
                bad_videos.add(plan.video)
            else:
                bad_people.add(person_paths.get(failed, plan.person))
    raise RuntimeError(f"example {index}: {MAX_ATTEMPTS} attempts failed on unreadable inputs")


@dataclass(frozen=True)
class ShardTask:
    """Everything a worker needs to make one shard (pickled to Ray)."""

    url: str
    shard: int
    indices: tuple[int, ...]
    build_seed: int
    sources: Sources
    config: dict
    cache_dir: str


def run_shard(task: ShardTask, tick=lambda n=1: None) -> ShardResult:
    """Executor task: make, flow and write one whole shard (not marked done).

    ``tick()`` is called after each example (progress).
    """
    from synthgen.steps.crop_flow import backend_from_config

    cfg = from_dict(task.config)
    backend = backend_from_config(cfg.crop_flow)
    group = store.open_group(task.url, mode="r+")
    with_truth = bool(group.attrs.get("gt_crop_flow"))
    rows: list[dict] = []
    skipped: list[Skip] = []
    for index in task.indices:
        plan, example, skips = make_planned_example(index, task.build_seed, task.sources, cfg,
                                                    cache_dir=task.cache_dir)
        skipped += skips
        flow = backend.flow(example.pair_crops)
        rows.append(example_arrays(example, plan, flow, cfg, gt_crop_flow=with_truth))
        tick()
    arrays = {name: np.stack([row[name] for row in rows]) for name in rows[0]}
    store.write_shard(group, task.shard, arrays)
    return ShardResult(task.shard, tuple(skipped))


def _store_attrs(cfg: Config, sources: Sources, build_seed: int, flow_backend) -> dict:
    return {
        "config": cfg.to_dict(),
        "seed": build_seed,
        "crop_flow": {"name": flow_backend.name, "params": flow_backend.params},
        # Decision: the ground-truth crop flow is kept only when every clip can give it.
        "gt_crop_flow": bool(sources.people) and all(gtflow_path(p.path).exists()
                                                     for p in sources.people),
        "sources": sources.to_attrs(),
        "skipped": [s.to_dict() for s in sources.skipped],
        "occluder_reasons": list(OCCLUDER_REASONS),
        "genders": list(store.GENDERS),
        "summary": None,
    }


class SyntheticJob(Job):
    """The synthetic build as a job of the shard engine: discovery in :meth:`prepare`, one
    :class:`ShardTask` per shard, :func:`run_shard` per task."""

    desc = "examples"
    run_shard = staticmethod(run_shard)

    def __init__(self, kinetics_dir, surreal_dir, *, num_examples: int, seed: int, cfg: Config,
                 flow_backend, cache_dir: str, splits, smpl_dir):
        self.kinetics_dir, self.surreal_dir = kinetics_dir, surreal_dir
        self.num_examples, self.seed, self.cfg = num_examples, seed, cfg
        self.flow_backend, self.cache_dir = flow_backend, cache_dir
        self.splits, self.smpl_dir = splits, smpl_dir
        self.sources: Sources | None = None

    def prepare(self, executor: Executor, stream) -> StorePlan:
        cfg = self.cfg
        sources = discover_sources(self.kinetics_dir, self.surreal_dir, cfg,
                                   cache_dir=self.cache_dir, splits=self.splits,
                                   smpl_dir=self.smpl_dir, executor=executor, stream=stream)
        if not sources.videos or not sources.people:
            for skip in sources.skipped:
                print(f"skipped {skip}", file=stream)
            raise RuntimeError(nothing_to_build(sources))
        self.sources = sources
        return StorePlan(num_examples=self.num_examples, num_frames=cfg.clip.length,
                         crop_size=cfg.crops.size, examples_per_shard=cfg.store.examples_per_shard,
                         attrs=_store_attrs(cfg, sources, self.seed, self.flow_backend),
                         resume_keys=("config", "seed", "crop_flow", "sources"),
                         clevel=cfg.store.clevel, flow_quantum=cfg.store.flow_quantum,
                         omit=tuple(cfg.store.omit))

    def tasks(self, url: str, group, shards: list[int]) -> list[ShardTask]:
        return [ShardTask(url, s, tuple(range(store.shard_slice(group, s).start,
                                              store.shard_slice(group, s).stop)),
                          self.seed, self.sources, self.cfg.to_dict(), self.cache_dir)
                for s in shards]

    def task_options(self, executor: Executor) -> dict:
        return flow_task_options(self.cfg.crop_flow, executor)

    def summary(self, group) -> dict:
        reasons = np.asarray(group["occluder_reason"][:])
        return {"examples": int(group.attrs["num_examples"]),
                "occluded_fraction": float(np.mean(reasons == OCCLUDER_REASONS.index(OCCLUDED)))}


@dataclass(frozen=True)
class BuildSummary:
    """What a build produced (``seconds`` and ``bytes_on_disk`` are measured, not stored)."""

    url: str
    examples: int
    shards_built: int
    shards_reused: int
    occluded_fraction: float
    skipped: tuple[Skip, ...]
    bytes_on_disk: int | None
    seconds: float

    @classmethod
    def of(cls, run: BuildRun) -> BuildSummary:
        return cls(run.url, run.summary["examples"], run.shards_built, run.shards_reused,
                   run.summary["occluded_fraction"], run.skipped, _bytes_on_disk(run.url),
                   run.seconds)

    def lines(self) -> list[str]:
        out = [f"store {self.url}: {self.examples} examples ({self.shards_built} shards built, "
               f"{self.shards_reused} reused) in {self.seconds:.1f} s "
               f"({self.examples / max(self.seconds, 1e-9):.2f} examples/s)",
               f"occluded fraction {self.occluded_fraction:.1%}"]
        if self.bytes_on_disk is not None:
            out.append(f"{self.bytes_on_disk / 1e6:.1f} MB on disk, "
                       f"{self.bytes_on_disk / max(self.examples, 1) / 1e6:.2f} MB per example")
        return out + skipped_lines(self.skipped)


def _bytes_on_disk(url: str) -> int | None:
    path = Path(url)
    if "://" in url or not path.exists():
        return None
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def build(kinetics_dir, surreal_dir, out: str, *, num_examples: int, seed: int = 0,
          cfg: Config | None = None, cache_dir=None, splits=("train",), smpl_dir=None,
          resume: bool = False, overwrite: bool = False, address: str | None = None,
          num_cpus: int | None = None, serial: bool = False, stream=None) -> BuildSummary:
    """Build (or resume) a store of ``num_examples`` examples; see the module docstring.

    ``smpl_dir`` holds the SMPL models (``SMPL_FEMALE.pkl``, ``SMPL_MALE.pkl``) the stored joints
    are posed with; default :func:`default_smpl_dir` (the demo data's ``smpl``).
    The arguments, the crop-flow backend and the store location are checked, and the store's
    write lock (:mod:`synthgen.build.lock`) taken, before any work; the lock is held to the end.
    ``address``, ``num_cpus`` and ``serial`` choose the executor
    (:func:`synthgen.build.executor.executor_for`).

    Raises
    ------
    FileExistsError
        ``out`` exists and neither ``resume`` nor ``overwrite`` was given.
    ValueError
        A negative seed, no examples, a bad crop-flow backend, unusable SMPL models, or
        ``resume`` on a store made from other data, seed or pipeline.
    synthgen.build.lock.StoreLockedError
        Another build is writing ``out``.
    synthgen.build.lock.StoreAccessError
        ``out`` cannot be written.
    SourceError
        A FlowNet checkpoint that cannot be used.
    """
    from synthgen.steps.crop_flow import backend_from_config

    cfg = cfg or Config()
    if seed < 0:
        raise ValueError(f"the build seed must be >= 0, got {seed}: pass --seed 0 or more")
    if not 1 <= num_examples <= MAX_EXAMPLES:
        raise ValueError(f"--num-examples {num_examples}: give 1 to {MAX_EXAMPLES} (build a larger "
                         f"set as several stores; the trainer reads several --store)")
    flow_backend = backend_from_config(cfg.crop_flow)  # refuse a bad backend before any work
    job = SyntheticJob(kinetics_dir, surreal_dir, num_examples=num_examples, seed=seed, cfg=cfg,
                       flow_backend=flow_backend, cache_dir=str(cache_dir or default_cache_dir()),
                       splits=splits, smpl_dir=smpl_dir)
    run = build_store(job, out, resume=resume, overwrite=overwrite, stream=stream,
                      executor=executor_for(serial=serial, address=address, num_cpus=num_cpus))
    return BuildSummary.of(run)
