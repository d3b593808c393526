"""End-to-end build on the demo data: ours vs a naive scikit-image pipeline, store size, read rates.

Four measurements, all on the same examples (plans from one build seed, ``synthgen.build.synthetic``):

1. **Ours, one core** (OpenCV and torch limited to one thread, in this process): the camera-motion
   cache is filled per video (``synthgen.build.motion.load_or_compute``, timed per frame pair), then each
   example runs the build's own steps one by one, timed: read inputs (``build.example_inputs``),
   every step of ``make_example`` (its ``timings``), crop flow (the config's backend), and the
   whole-shard write (``store.write_shard``, per example). An example's camera motion is charged
   as T-1 frame pairs at the cache's measured cost per pair (decode, resize and flow of whole
   resized frames, e.g. 240x427 for 16:9, against the naive pipeline's 240x320 window): what it
   costs when every pair the cache computes is used by exactly one example. A real build computes
   each video whole, once: with fewer than (video pairs / (T-1)) examples per video it pays for
   pairs no example uses (printed: a whole video per example), with more it reuses them (printed:
   the cache amortised over ``make demo``'s examples).
2. **Naive baseline** on the first few of the same plans: scikit-image ``optical_flow_tvl1`` at
   its defaults on every grey frame pair of the 240x320 window, median per pair
   (``camera_motion.camera_motion``, plain median) integrated with ``integrate_camera_motion``;
   scikit-image ``slic`` on the paper's 5-channel input (``calibrated_slic`` with
   ``method="skimage"``, patched into ``make_example``, whose other steps are unchanged);
   scikit-image ``optical_flow_tvl1`` at defaults on each grey 224x224 crop pair. Reading and
   the shard write are the same code as ours.
3. **Ray build** (``synthgen.build.synthetic.build``, ``--workers`` local cores, cache already filled,
   worker processes started and their imports done beforehand, as in a long build): wall
   time and examples/s, then each Ray worker's peak RSS (``ru_maxrss`` read inside the workers by
   a probe task after the build; Ray reuses the worker processes that ran the shards). The store
   it writes is checked against the examples of step 1: every array equal (lossless), flow within
   quantum/2 of the float flow; its bytes on disk per example, per array.
4. **Random reads** of that store: every array of one random example per read (flow decoded to
   pixels), directly with zarr, and through a ``torch.utils.data.DataLoader`` with ``--workers``
   worker processes (persistent; the second pass over the same indices is timed).

The compiled (numba) kernels of superpixels, TV-L1 and the camera-motion refinement are loaded
before 1. (:func:`load_kernels`), as the imports are: a process pays that once (printed, with
the compile time of a machine's first run, measured in a subprocess with an empty numba cache).

Stage times of 1. and 2. are CPU seconds of this process (``time.process_time``; the 1-core runs
are single-threaded), so other load on a shared machine inflates them less than wall time; the
Ray build and the reads are wall time. Quote medians, and ratios measured within one run.

    python -m benchmarks build -- --examples 8 --naive-examples 2
    python -m benchmarks build -- --demo demo_data --examples 4 --naive-examples 1 --clip-length 8
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path
from unittest import mock

import numpy as np
import torch
from skimage.color import rgb2gray
from skimage.registration import optical_flow_tvl1 as skimage_tvl1

from benchmarks import goals
from synthgen.build import synthetic as synthbuild
from synthgen import example as synthexample
from synthgen import store
from synthgen.config import load_config
from synthgen.example import make_example
from synthgen.build.executor import single_threaded
from synthgen.sources.kinetics import find_videos
from synthgen.build.motion import load_or_compute
from synthgen.steps import superpixels
from synthgen.steps.camera_motion import camera_motion, integrate_camera_motion, pair_tile_motion
from synthgen.steps.crop_flow import backend_from_config

#: ``make_example`` steps, in the order they run (its ``timings`` keys).
EXAMPLE_STEPS = ("tracking", "visibility", "superpixels", "occluder", "composite", "crops")
#: Rows of the per-stage table.
STAGES = ("camera motion", "read inputs", *EXAMPLE_STEPS, "crop flow", "shard write")
#: Arrays given their own line in the size table; everything else is "rest".
BIG_ARRAYS = ("rgb", "flow", "occluder_mask")
#: The goals of the performance issue: per core with camera motion charged, bytes per example.
GOAL_SPEEDUP = 15.0
GOAL_MB_PER_EXAMPLE = 4.0
#: Examples of ``make demo``: the build the camera-motion cache is amortised over in the second ratio.
MAKE_DEMO_EXAMPLES = 96


def _max_rss_mib() -> float:
    """This process's peak resident memory, MiB (Linux ``ru_maxrss`` is in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --------------------------------------------------------------------------- the naive pipeline

def _skimage_flow(frame0: np.ndarray, frame1: np.ndarray) -> np.ndarray:
    """scikit-image TV-L1 at its defaults on grey levels; (H, W, 2) float, pixels, x then y."""
    flow_vu = skimage_tvl1(rgb2gray(frame0), rgb2gray(frame1))   # (2, H, W): rows, columns
    return np.moveaxis(flow_vu[::-1], 0, -1)


def naive_camera_offsets(frames: np.ndarray) -> np.ndarray:
    """Camera offsets (T, 2) of a (T, H, W, 3) window: skimage flow per pair, plain median, integrated."""
    motion = [camera_motion(_skimage_flow(a, b)) for a, b in zip(frames[:-1], frames[1:])]
    return integrate_camera_motion(np.stack(motion))


def naive_crop_flow(pairs: np.ndarray) -> np.ndarray:
    """(B, S, S, 2) flow of (B, 2, S, S, 3) crop pairs, one skimage call per pair."""
    return np.stack([_skimage_flow(a, b) for a, b in pairs]).astype(np.float32)


def naive_slic(frames, offsets, **options):
    """``calibrated_slic`` forced to ``method="skimage"`` (the paper's scikit-image call, on the same
    grid and with the same calibration to 10-30 superpixels per frame)."""
    return superpixels.calibrated_slic(frames, offsets, **{**options, "method": "skimage"})


# --------------------------------------------------------------------------- timing one example

#: Stage times are CPU seconds of this process (all its threads), so that other load on a shared
#: machine inflates them less than wall time; the stages run single-threaded here.
cpu_time = time.process_time


def _timed(times: dict, name: str, fn, *args, **kwargs):
    start = cpu_time()
    out = fn(*args, **kwargs)
    times[name] = times.get(name, 0.0) + cpu_time() - start
    return out


def run_example(plan, sources, cfg, *, cache_dir, naive: bool):
    """One example through our steps (or the naive ones), timed per stage.

    Returns ``(example, flow, times)``; ``times`` lacks "camera motion" for ours (the cache's
    cost is charged separately) and "shard write" (done per shard).
    """
    times: dict[str, float] = {}
    background, offsets, person = _timed(times, "read inputs", synthbuild.example_inputs, plan,
                                         sources, cfg, cache_dir=cache_dir)
    patch = contextlib.nullcontext()
    if naive:
        offsets = _timed(times, "camera motion", naive_camera_offsets, background.frames)
        patch = mock.patch.object(synthexample, "calibrated_slic", naive_slic)
    step_clock = mock.patch.object(synthexample, "time", types.SimpleNamespace(perf_counter=cpu_time))
    with patch, step_clock:
        example = make_example(background, offsets, person, synthbuild.example_rng(plan), cfg,
                               provenance={"index": plan.index, "seed": plan.seed}, timings=times)
    flow_fn = naive_crop_flow if naive else backend_from_config(cfg.crop_flow).flow
    flow = _timed(times, "crop flow", flow_fn, example.pair_crops)
    return example, flow, times


def load_kernels(cfg) -> float:
    """Load (compile if not cached) the numba kernels a build runs; returns CPU seconds."""
    start = cpu_time()
    superpixels.compile_kernels()
    frames = np.random.default_rng(0).integers(0, 256, (2, 1, 64, 64, 3), dtype=np.uint8)
    pair_tile_motion(frames[0], frames[1], cfg.camera_motion)
    return cpu_time() - start


def cold_kernel_seconds() -> float:
    """CPU seconds of :func:`load_kernels` in a fresh process with an empty numba cache."""
    code = ("from benchmarks.bench_build import load_kernels; from synthgen.config import "
            "load_config; print(load_kernels(load_config('demo')))")
    with tempfile.TemporaryDirectory(prefix="numba_cache_") as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        out = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                             capture_output=True, text=True).stdout
    return float(out.split()[-1])


def fill_cache(kinetics_dir, cache_dir, cfg):
    """Compute every video's camera motion once (serially); returns (seconds, frame pairs)."""
    videos, _ = find_videos(kinetics_dir)
    seconds, pairs = 0.0, 0
    for video in videos:
        start = cpu_time()
        motion = load_or_compute(video, cache_dir, cfg=cfg.camera_motion, clip=cfg.clip)
        seconds += cpu_time() - start
        pairs += motion.num_frames - 1
    return seconds, pairs


# --------------------------------------------------------------------------- Ray build and RSS

def _worker_warmup(_item) -> None:
    """Ray task: import what a shard task imports and load the compiled kernels, so worker
    start-up is not in the build time."""
    import synthgen.sources.kinetics  # noqa: F401
    import synthgen.sources.surreal  # noqa: F401
    import synthgen.steps.crop_flow  # noqa: F401
    load_kernels(load_config("demo"))
    time.sleep(0.5)  # keep this worker busy so that every core gets its own worker


def _worker_rss(_item) -> tuple[int, float]:
    """Ray task: (pid, peak RSS MiB) of the worker process it runs in."""
    time.sleep(0.3)  # keep every worker busy long enough to get one probe each
    return os.getpid(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def ray_build(demo: Path, out: str, cfg, *, num_examples, seed, cache_dir, workers):
    """``synthgen.build.synthetic.build`` on ``workers`` local cores; (summary, {pid: peak RSS MiB})."""
    from synthgen.build.executor import RayExecutor, TaskFailure

    executor = RayExecutor(num_cpus=workers)
    with executor.session():
        for _ in executor.map(_worker_warmup, range(workers)):
            pass
        summary = synthbuild.build(demo / "kinetics", demo / "surreal", out,
                                   num_examples=num_examples, seed=seed, cfg=cfg,
                                   cache_dir=cache_dir, num_cpus=workers, overwrite=True,
                                   stream=io.StringIO())
        rss = {}
        for _, result in executor.map(_worker_rss, range(4 * workers)):
            if not isinstance(result, TaskFailure):
                rss[result[0]] = max(rss.get(result[0], 0.0), result[1])
    return summary, rss


# --------------------------------------------------------------------------- store checks

def check_lossless(url: str, rows: list[dict], flows: list[np.ndarray], quantum: float):
    """Compare a store with the examples made here; returns (mismatched arrays, max flow error px)."""
    group = store.open_group(url)
    mismatched, flow_error = set(), 0.0
    for index, (row, flow) in enumerate(zip(rows, flows)):
        for name, value in row.items():
            stored = np.asarray(group[name][index])
            if not np.array_equal(stored, value):
                mismatched.add(name)
            if name == "flow":
                decoded = stored.astype(np.float64) * quantum
                flow_error = max(flow_error, float(np.abs(decoded - flow).max()))
    return sorted(mismatched), flow_error


def bytes_per_array(url: str) -> dict[str, int]:
    """Bytes on disk under each array's folder of a local store; metadata of the root as "(group)"."""
    root = Path(url)
    sizes = {"(group)": sum(f.stat().st_size for f in root.iterdir() if f.is_file())}
    for folder in root.iterdir():
        if folder.is_dir():
            sizes[folder.name] = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    return sizes


def _read_example(arrays: dict, index: int, quantum: float) -> dict:
    out = {name: np.asarray(array[index]) for name, array in arrays.items()}
    out["flow"] = out["flow"].astype(np.float32) * np.float32(quantum)
    return out


class ZarrExamples(torch.utils.data.Dataset):
    """Every array of one example per item, read from a store (opened lazily in each worker)."""

    def __init__(self, url: str):
        self.url = url
        self._arrays = None
        self._quantum = None
        group = store.open_group(url)
        self._length = group.attrs["num_examples"]

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index: int) -> dict:
        if self._arrays is None:
            group = store.open_group(self.url)
            names = store.schema(group.attrs["num_frames"], group.attrs["crop_size"])
            self._arrays = {name: group[name] for name in names}
            self._quantum = group["flow"].attrs["quantum_px"]
        return _read_example(self._arrays, index, self._quantum)


def read_rates(url: str, *, reads: int, workers: int, seed: int) -> tuple[float, float]:
    """Random-read examples/s of a store: zarr direct, and a DataLoader with ``workers`` processes."""
    group = store.open_group(url)
    names = store.schema(group.attrs["num_frames"], group.attrs["crop_size"])
    arrays = {name: group[name] for name in names}
    quantum = group["flow"].attrs["quantum_px"]
    indices = np.random.default_rng(seed).integers(group.attrs["num_examples"], size=reads)
    _read_example(arrays, int(indices[0]), quantum)
    start = time.perf_counter()
    for index in indices:
        _read_example(arrays, int(index), quantum)
    direct = reads / (time.perf_counter() - start)

    loader = torch.utils.data.DataLoader(ZarrExamples(url), batch_size=4,
                                         sampler=[int(i) for i in indices], num_workers=workers,
                                         persistent_workers=True)
    for _ in loader:  # first pass: worker start-up
        pass
    start = time.perf_counter()
    count = sum(len(batch["seed"]) for batch in loader)
    return direct, count / (time.perf_counter() - start)


# --------------------------------------------------------------------------- main

def _median(values) -> float:
    return float(statistics.median(values)) if values else float("nan")


def _demo_data(path: str | None, tmp: Path) -> Path:
    if path is not None:
        return Path(path)
    from synthgen.demo.dataset import make_demo_data

    print("generating demo data (synthgen demo-data) ...", flush=True)
    return make_demo_data(tmp / "demo", seed=0).root


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="bench_build", description=__doc__.splitlines()[0])
    parser.add_argument("--demo", default=None,
                        help="demo data folder (synthgen demo-data); default: generated in a "
                             "temporary folder (~30 s)")
    parser.add_argument("--examples", type=int, default=8,
                        help="examples of ours and of the Ray build (default 8)")
    parser.add_argument("--naive-examples", type=int, default=2,
                        help="the first examples of the same plans run naively (default 2)")
    parser.add_argument("--clip-length", type=int, default=31, help="T (default 31)")
    parser.add_argument("--workers", type=int, default=2,
                        help="Ray cores of the build and DataLoader workers (default 2)")
    parser.add_argument("--reads", type=int, default=64, help="random example reads (default 64)")
    parser.add_argument("--seed", type=int, default=0, help="build seed (default 0)")
    args = parser.parse_args(argv)
    if args.naive_examples > args.examples:
        parser.error("--naive-examples must not exceed --examples")

    # The demo pipeline (as ``make demo``), with shards small enough to give every worker work.
    per_shard = max(1, math.ceil(args.examples / (2 * args.workers)))
    cfg = load_config("demo").replace(clip={"length": args.clip_length},
                                      store={"examples_per_shard": per_shard})
    num_pairs = args.clip_length - 1
    with tempfile.TemporaryDirectory(prefix="bench_build_") as tmp_name:
        tmp = Path(tmp_name)
        demo = _demo_data(args.demo, tmp)
        cache_dir = str(tmp / "camera_motion")

        # 1. Ours, one core.
        kernels = (load_kernels(cfg), cold_kernel_seconds())
        with single_threaded():
            cache_seconds, cache_pairs = fill_cache(demo / "kinetics", cache_dir, cfg)
            sources = synthbuild.discover_sources(demo / "kinetics", demo / "surreal", cfg,
                                                  cache_dir=cache_dir,
                                                  stream=io.StringIO())
            per_pair = cache_seconds / cache_pairs
            plans = [synthbuild.plan_example(i, args.seed, sources, cfg)
                     for i in range(args.examples)]
            serial_url = str(tmp / "serial.zarr")
            group = store.create_store(serial_url, num_examples=args.examples,
                                       num_frames=args.clip_length, crop_size=cfg.crops.size,
                                       examples_per_shard=per_shard, attrs={},
                                       clevel=cfg.store.clevel, flow_quantum=cfg.store.flow_quantum)
            ours, rows, flows = [], [], []
            for plan in plans:
                example, flow, times = run_example(plan, sources, cfg, cache_dir=cache_dir,
                                                   naive=False)
                times["camera motion"] = per_pair * num_pairs
                ours.append(times)
                rows.append(synthbuild.example_arrays(example, plan, flow, cfg))
                flows.append(flow)
            for shard in range(len(store.finished_shards(group))):
                part = store.shard_slice(group, shard)
                arrays = {name: np.stack([row[name] for row in rows[part]]) for name in rows[0]}
                start = cpu_time()
                store.write_shard(group, shard, arrays)
                seconds = (cpu_time() - start) / (part.stop - part.start)
                for times in ours[part]:
                    times["shard write"] = seconds
            serial_rss = _max_rss_mib()

            # 2. The naive pipeline on the first plans.
            naive = []
            for plan, times in zip(plans[:args.naive_examples], ours):
                naive.append(run_example(plan, sources, cfg, cache_dir=cache_dir, naive=True)[2])
                naive[-1]["shard write"] = times["shard write"]

        # 3. Ray build, lossless check, bytes.
        url = str(tmp / "ray.zarr")
        summary, worker_rss = ray_build(demo, url, cfg, num_examples=args.examples,
                                        seed=args.seed, cache_dir=cache_dir,
                                        workers=args.workers)
        mismatched, flow_error = check_lossless(url, rows, flows, cfg.store.flow_quantum)
        sizes = bytes_per_array(url)

        # 4. Random reads.
        direct_rate, loader_rate = read_rates(url, reads=args.reads, workers=args.workers,
                                              seed=args.seed)

    _report(args, cfg, ours, naive, per_pair, cache_seconds, cache_pairs, summary, worker_rss,
            serial_rss, mismatched, flow_error, sizes, direct_rate, loader_rate, len(sources.videos),
            kernels)


def _report(args, cfg, ours, naive, per_pair, cache_seconds, cache_pairs, summary, worker_rss,
            serial_rss, mismatched, flow_error, sizes, direct_rate, loader_rate, num_videos,
            kernels):
    n, m, T = args.examples, len(naive), args.clip_length
    total = [sum(t.get(s, 0.0) for s in STAGES) for t in ours]
    naive_total = [sum(t.get(s, 0.0) for s in STAGES) for t in naive]
    print(f"demo data, pipeline 'demo', T={T}, 240x320 -> {cfg.crops.size}x{cfg.crops.size}, "
          f"crop flow {cfg.crop_flow.backend}; ours: {n} examples on 1 core; naive: the first "
          f"{m} of the same plans; median seconds per example")
    print(f"{'stage':<16}{'ours':>9}{'share':>7}{'naive':>9}{'naive/ours':>12}")
    for stage in STAGES:
        a = _median([t.get(stage, 0.0) for t in ours])
        b = _median([t.get(stage, 0.0) for t in naive])
        ratio = f"{b / a:>12.1f}" if a > 0 and m else f"{'-':>12}"
        print(f"{stage:<16}{a:>9.3f}{a / _median(total):>7.0%}{b:>9.2f}{ratio}")
    print(f"{'total':<16}{_median(total):>9.3f}{'':>7}{_median(naive_total):>9.2f}")
    print(f"camera motion (ours): cache fill {cache_seconds:.1f} s for {cache_pairs} frame pairs of "
          f"{num_videos} videos = {1e3 * per_pair:.1f} ms/pair, charged {T - 1} pairs per example "
          f"(no reuse; whole resized frames, every frame of each video)")
    print(f"compiled kernels (not in the stages): {kernels[0]:.2f} s once per process (numba's "
          f"disk cache), {kernels[1]:.1f} s on a machine's first run (empty cache)")

    per_core = 1 / _median(total)
    print(f"\nours, 1 core: {per_core:.3f} examples/s")
    if m:
        same = _median(total[:m])
        speedup = _median(naive_total) / same
        verdict = "meets" if speedup >= GOAL_SPEEDUP else "MISSES"
        print(f"naive, 1 core: {1 / _median(naive_total):.4f} examples/s; speed-up on the same "
              f"{m} examples {speedup:.1f}x ({verdict} the {GOAL_SPEEDUP:.0f}x goal)")
        goals.record("build_speedup", f"{speedup:.1f}x ({same:.2f} vs {_median(naive_total):.1f} "
                                      f"s/ex, T={T})",
                     goals.verdict(speedup >= GOAL_SPEEDUP) if T == 31 else f"open: T={T}")
        charged = per_pair * (T - 1)
        amortised = cache_seconds / MAKE_DEMO_EXAMPLES
        print(f"  with the camera-motion cache amortised as in `make demo` (fill / "
              f"{MAKE_DEMO_EXAMPLES} examples = {amortised:.2f} s instead of {charged:.2f} s): "
              f"speed-up {_median(naive_total) / (same - charged + amortised):.1f}x")
        whole = cache_seconds / num_videos
        print(f"  with every example from a video of its own (a whole video's camera motion per "
              f"example, {cache_pairs / num_videos:.0f} pairs = {whole:.2f} s): speed-up "
              f"{_median(naive_total) / (same - charged + whole):.1f}x")
    rate = summary.examples / summary.seconds
    print(f"Ray build, {args.workers} cores: {summary.examples} examples in {summary.seconds:.1f} s "
          f"(discovery with a warm cache included; Ray and its workers started before) = "
          f"{rate:.3f} examples/s, "
          f"{rate / args.workers:.3f} per core ({rate / args.workers / per_core:.0%} of 1 core's)")
    rss = ", ".join(f"{v:.0f}" for v in sorted(worker_rss.values(), reverse=True))
    print(f"peak RSS: Ray workers {rss} MiB; this process after the 1-core run {serial_rss:.0f} MiB")

    total_bytes = sum(sizes.values())
    rest = total_bytes - sum(sizes.get(a, 0) for a in BIG_ARRAYS)
    per_example = total_bytes / n / 1e6
    verdict = "meets" if per_example <= GOAL_MB_PER_EXAMPLE else "MISSES"
    goals.record("build_bytes", f"{per_example:.2f}",
                 goals.verdict(per_example <= GOAL_MB_PER_EXAMPLE) if T == 31 else f"open: T={T}")
    print(f"\non disk ({summary.examples} examples, shards of {cfg.store.examples_per_shard}, "
          f"Blosc zstd {cfg.store.clevel}): {per_example:.2f} MB per example ({verdict} the "
          f"{GOAL_MB_PER_EXAMPLE:.0f} MB goal)")
    for name, value in [*((a, sizes.get(a, 0)) for a in BIG_ARRAYS), ("rest", rest)]:
        print(f"  {name:<14}{value / n / 1e6:>8.3f} MB/example")
    lossless = "every array equal" if not mismatched else f"MISMATCHED {mismatched}"
    print(f"store vs the examples made here: {lossless}; flow max error {flow_error:.4f} px "
          f"(quantum/2 = {cfg.store.flow_quantum / 2:.4f})")
    print(f"\nrandom reads (every array of one example): zarr direct {direct_rate:.1f} examples/s; "
          f"DataLoader ({args.workers} workers, batches of 4, second pass) "
          f"{loader_rate:.1f} examples/s")


if __name__ == "__main__":
    main()
