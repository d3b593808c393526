"""Store reads: examples/s of the trainer's data path against the format's limit, and bytes.

Every figure reads the arrays of flow + keypoints training (``trainer.data.arrays_for``: flow and
the targets) of whole examples, all measured in this run on the same store:

- the format's limit: the same chunk bytes (every array of every example once, as an epoch
  reads them), already in memory, only decompressed (Blosc) into one reused buffer per array, in
  ``--workers`` processes at once (the data path's parallelism); and with the crc32c check (the
  checksums' cost). The data path is charged the rest: file reads, checks, batching, handing
  batches to the main process, the main process's own work;
- the trainer's data path (``ClipDataset`` -> ``DataLoader`` with ``--workers`` workers ->
  batches of 3 clips of the store's full length), shard-sequential epochs (training's order) and
  random order; examples/s from the first batch to the last of an epoch;
- in one process: the data path (no workers) against the plain-Zarr reads it replaced
  (``group[name][example, window]`` per array, schema-1 ``ClipDataset``);
- stored bytes per example by array (``nbytes_stored``), total and without ``rgb``
  (``store.omit = ["rgb"]``).

Each figure is the median of ``--repeats`` rounds, every round measuring all of them in turn.
Beside the wall-clock examples/s (which a loaded machine lowers) each gets its CPU cost: CPU
seconds of every process involved (``/proc``: main process and DataLoader workers, or the decoding
processes) per example, and the rate two idle cores would give at that cost (``2 / cost``).
Ratios to the format's limit are of those costs. The figures go to the goal table
(:mod:`benchmarks.goals`): the rate from CPU cost (the wall-clock rate depends on the machine's
load), the ratio, the bytes.

Default store: ``stores/demo.zarr`` (``make demo``) when present, else a synthetic 224-px store
(``trainer.synthetic``: its flow compresses unrealistically well; say so beside the figures).

    python -m benchmarks read -- --store stores/demo.zarr --workers 2
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks import goals
from synthgen import store as synthstore
from trainer.data import (ClipBatchSampler, ClipDataset, arrays_for, make_loader, open_stores,
                          split_stores)

#: Goals of issue 15 (examples/s on 2 cores, ratio to the format's limit, MB per 31-frame example).
GOAL_RATE, GOAL_RATIO, GOAL_MB = 150.0, 1.5, 4.0
BATCH = 3
DEFAULT_STORE = Path("stores/demo.zarr")


def cpu_seconds(pids) -> float:
    """User + system CPU seconds used so far by the processes ``pids`` (all their threads)."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _decode_share(args) -> tuple[int, float, float]:
    """One process of the limit: decompress its examples' chunk bytes; (examples, wall seconds,
    CPU seconds)."""
    url, examples, names, check = args
    reader = synthstore.StoreReader(url)
    chunks = [[(reader.chunk_bytes(n, e), n) for n in names] for e in examples]
    outs = {n: np.empty(reader.specs[n].shape, dtype=reader.specs[n].dtype) for n in names}
    start, cpu = time.perf_counter(), time.process_time()
    for example in chunks:
        for data, name in example:
            if check and not synthstore.chunk_crc_ok(data):
                raise ValueError("checksum")
            synthstore.decode_chunk(data[:-4], outs[name])
    return len(chunks), time.perf_counter() - start, time.process_time() - cpu


def format_limit(url: str, examples: np.ndarray, names, workers: int, *,
                 check: bool) -> tuple[float, float]:
    """Decompressing the examples' bytes in ``workers`` processes at once: (examples/s, CPU
    seconds per example)."""
    shares = [(url, examples[k::workers], names, check) for k in range(workers)]
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        results = pool.map(_decode_share, shares)
    return (sum(count / wall for count, wall, _ in results),
            sum(cpu for _, _, cpu in results) / sum(count for count, _, _ in results))


class DataPath:
    """The trainer's data path over a split; :meth:`epoch` gives one epoch's examples/s (first
    batch to last, so the workers' start is not counted)."""

    def __init__(self, infos, split, names, *, workers: int, shard_order: bool):
        length = int(split.num_frames.min())
        self.sampler = ClipBatchSampler(split.num_frames, clip_length=length, batch_size=BATCH,
                                        seed=0, shards=split.shards if shard_order else None)
        self.loader = make_loader(ClipDataset(infos, split.items, clip_length=length,
                                              arrays=names),
                                  self.sampler, num_workers=workers, pin_memory=False)
        self.epochs = 0

    def epoch(self) -> tuple[float, float]:
        """(examples/s, CPU seconds per example of the main process and the workers)."""
        self.sampler.set_epoch(self.epochs)
        self.epochs += 1
        batches = iter(self.loader)
        next(batches)
        workers = getattr(self.loader._iterator, "_workers", [])  # the persistent workers
        pids = [os.getpid(), *(w.pid for w in workers)]
        start, cpu, count = time.perf_counter(), cpu_seconds(pids), 0
        for _ in batches:
            count += BATCH
        return count / (time.perf_counter() - start), (cpu_seconds(pids) - cpu) / count


def plain_zarr(url: str, examples: np.ndarray, names, length: int) -> tuple[float, float]:
    """The schema-1 reader, one Zarr read per array and example, in this process: (examples/s,
    CPU seconds per example)."""
    group = synthstore.open_group(url)
    start, cpu = time.perf_counter(), cpu_seconds([os.getpid()])
    for example in examples.tolist():
        for name in names:
            window = slice(0, length - 1) if name in ("rgb", "flow") else slice(0, length)
            np.asarray(group[name][example, window])
    return (len(examples) / (time.perf_counter() - start),
            (cpu_seconds([os.getpid()]) - cpu) / len(examples))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench_read", description=__doc__.split("\n")[0])
    parser.add_argument("--store", help=f"store to read (default {DEFAULT_STORE} when present, "
                                        f"else a synthetic one)")
    parser.add_argument("--workers", type=int, default=2, help="processes / DataLoader workers")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of every measurement")
    parser.add_argument("--plain", type=int, default=24, help="examples of the plain-Zarr figure")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # as in DataLoader workers: collating small tensors needs no pool
    names = arrays_for("flow_keypoints")
    with tempfile.TemporaryDirectory() as tmp:
        url, note = args.store, ""
        if url is None and DEFAULT_STORE.exists():
            url = str(DEFAULT_STORE)
        if url is None:
            from synthgen.demo.body_model import write_smpl_model
            from trainer.smpl import SMPLJoints
            from trainer.synthetic import make_synthetic_store

            url, note = str(Path(tmp) / "read.zarr"), " (synthetic: run make demo for a real one)"
            smpl = SMPLJoints.from_path(write_smpl_model(Path(tmp) / "smpl"))
            make_synthetic_store(url, smpl, num_examples=48, num_frames=31, crop_size=224,
                                 num_persons=48, examples_per_shard=16)
        infos = open_stores([url], allow_mixed_flow=True)
        split, _ = split_stores(infos, val_every=10**9)
        examples = infos[0].examples
        paths = {key: DataPath(infos, split, names, workers=workers, shard_order=order)
                 for key, workers, order in (("sequential", args.workers, True),
                                             ("shuffled", args.workers, False),
                                             ("in_process", 0, True))}
        rounds = []
        for _ in range(args.repeats):
            rounds.append({
                "limit": format_limit(url, examples, names, args.workers, check=False),
                "limit_crc": format_limit(url, examples, names, args.workers, check=True),
                **{key: path.epoch() for key, path in paths.items()},
                "old": plain_zarr(url, examples[:args.plain], names, int(split.num_frames.min()))})
        wall = {key: statistics.median(r[key][0] for r in rounds) for key in rounds[0]}
        cost = {key: statistics.median(r[key][1] for r in rounds) for key in rounds[0]}
        group = synthstore.open_group(url)
        stored = {name: group[name].nbytes_stored() / group.attrs["num_examples"] / 1e6
                  for name in synthstore.store_schema(group.attrs)}

    print(f"store {url}{note}: {examples.size} examples of {infos[0].num_frames} frames, "
          f"{infos[0].crop_size}-px crops; arrays {', '.join(names)}; {args.workers} worker(s)")
    print(f"{'measurement':<50}{'ex/s':>8}{'CPU ms/ex':>10}{'2 cores':>9}{'ratio':>7}  goal")
    rows = [("limit", "format limit: decompress the bytes", ""),
            ("limit_crc", "format limit + crc32c check",
             f"checksums cost {cost['limit_crc'] / cost['limit'] - 1:+.0%} CPU"),
            ("sequential", "data path, shard-sequential epochs (training)",
             f">= {GOAL_RATE:.0f}/s on 2 cores, ratio <= {GOAL_RATIO}"),
            ("shuffled", "data path, random order", ""),
            ("in_process", "data path in one process (no workers)", ""),
            ("old", "plain Zarr reads in one process (schema 1 way)",
             f"data path in one process: {cost['old'] / cost['in_process']:.1f}x cheaper")]
    for key, label, goal in rows:
        print(f"{label:<50}{wall[key]:>8.1f}{cost[key] * 1e3:>10.2f}{2 / cost[key]:>9.1f}"
              f"{cost[key] / cost['limit']:>7.2f}  {goal}")
    print(f"  (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; ratio = CPU cost / "
          f"the limit's)")
    total = sum(stored.values())
    _record(wall, cost, total, stored.get("rgb", 0.0), synthetic=bool(note),
            frames=infos[0].num_frames, workers=args.workers)
    print(f"stored MB per example: total {total:.3f} (goal <= {GOAL_MB:.0f} for 31 frames), "
          f"without rgb {total - stored.get('rgb', 0.0):.3f}; "
          + ", ".join(f"{n} {v:.3f}" for n, v in sorted(stored.items(), key=lambda kv: -kv[1])
                      if v >= 0.005))


def _record(wall, cost, total, rgb, *, synthetic, frames, workers) -> None:
    rate, ratio = 2 / cost["sequential"], cost["sequential"] / cost["limit"]
    goals.record("read_rate", f"{rate:.0f} from CPU cost ({wall['sequential']:.0f} wall, "
                              f"{workers} workers)", goals.verdict(rate >= GOAL_RATE))
    goals.record("read_ratio", f"{ratio:.2f}x", goals.verdict(ratio <= GOAL_RATIO))
    open_why = ("open: synthetic store (make demo)" if synthetic else
                f"open: {frames}-frame store" if frames != 31 else None)
    goals.record("bytes", f"{total:.2f}", open_why or goals.verdict(total <= GOAL_MB))
    goals.record("bytes_no_rgb", f"{total - rgb:.2f} (total less rgb)", open_why or "met")


if __name__ == "__main__":
    main()
