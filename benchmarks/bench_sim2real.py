"""Evidence of transfer: the paper's Table 1 and Table 2 in miniature, across an appearance gap.

Training data: demo people of appearance domain A (``synthgen.demo.appearance``) doing the
``train`` motion kinds, built into stores with the full pipeline and the Table 2 ablations
(``pipelines/{full,no_occlusion,no_tracking_no_occlusion,static_background_no_occlusion}.toml``).
Test data (the proxy for 3DPW): people of domain B (other clothing, light, blur, body shapes) doing
the ``heldout`` motion kinds, on other background videos, built with the full pipeline. DANN's
unlabelled "real" clips: domain B people doing the ``train`` kinds (never the test clips).

Every Table 1 row (``pipelines/train_<row>.toml``: its modality and DANN weight) trains on the full
store, every Table 2 row with flow + keypoints on its store, all with the budget of
``pipelines/train_demo.toml`` (light CNN, 48-px inputs, 16-frame windows) and the same number of
steps, once per seed. Each run is scored on domain B by ``trainer.evaluate.evaluate`` (the paper's
protocol: PA-MPJPE on 14 joints, mean per person then over people) and on its own domain-A
validation clips (``trainer.train.train``'s figure). Baseline: the mean training pose (generalised
Procrustes mean of the full store's training joints) on the same B frames.

Output (``--out``, default ``runs/sim2real/<setting>``): ``results.md`` (both tables with the
paper's numbers), ``results.json`` (every run), ``sim2real.png`` (bar plot), ``work/`` (demo data,
stores, runs; reused by ``--reuse``: a run is redone only if its row, store, steps or seed is new).

Settings: ``--quick`` (a smoke test, a few minutes), ``--budget cpu`` (default; about 40 min
on 2 cores), ``--budget gpu`` (larger data and budget, CUDA)::

    python -m benchmarks sim2real -- --quick
    python -m benchmarks sim2real -- --budget gpu --device cuda
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from synthgen.core.joints import COCO14
from synthgen.demo.dataset import make_demo_data
from trainer.config import load_train_config
from trainer.data import open_stores, read_array
from trainer.evaluate import evaluate
from trainer.forward import evaluated_frames
from trainer.metrics import METRES_TO_MM, average_per_person, pa_mpjpe
from trainer.synthetic import PERSON_HEIGHT, REFERENCE_CROP
from trainer.train import procrustes_mean, train

#: Table 1 rows (trainer pipeline suffix) and the paper's PA-MPJPE on 3DPW (method.md section 3).
TABLE1 = {"rgb": 105.6, "rgb_dann": 103.0, "flow": 100.1, "keypoints": 77.6, "rgb_keypoints": 82.4,
          "flow_keypoints": 74.7}
#: Table 2 rows (build pipeline) and the paper's PA-MPJPE (flow + keypoints; its Table 2).
TABLE2 = {"full": 74.7, "no_occlusion": 77.2, "no_tracking_no_occlusion": 80.3,
          "static_background_no_occlusion": 88.9}
TABLE2_MODALITY = "flow_keypoints"


@dataclass(frozen=True)
class Setting:
    """Sizes of one benchmark setting: demo people (count, frames) per data set, examples per
    store (``examples_real``: DANN's unlabelled store, at least two training batches), optimiser
    steps per run, seeds, build processes, and the stored examples' crop side (pixels; the person
    is as tall in it as in the full recipe's, ``trainer.synthetic.PERSON_HEIGHT`` of
    ``REFERENCE_CROP``) and frames (the training windows are ``train_demo``'s 16 frames; the
    network sees 48-px inputs whatever the crop)."""

    people_a: int
    people_b: int
    people_frames: int
    examples_a: int
    examples_b: int
    examples_real: int
    steps: int
    seeds: int
    workers: int
    crop_size: int = 224
    clip_frames: int = 31


#: *Decision*: sizes. quick: a smoke test of every stage (its figures are noise around the mean
#: pose). cpu: 48 A people as ``make demo`` (24 left ``make train`` at the mean pose), 96 examples
#: per store as ``make demo``; stored examples of 112-px crops and 16 frames (a quarter of the
#: pixels and half the frames of the full recipe's to build and read; the network sees 48-px
#: inputs either way; the flow is then computed at half scale: docs/sim2real.md); 200 steps; 3
#: seeds (2 left keypoints' spread on B at 9.6 mm). Measured (2026-12-01, 2 cores shared with
#: 3-4 other jobs, this run's scheduling group at priority -7): demo data and the 6 stores 11 min,
#: 27 runs 25 min (19-106 s each, by load), 36 min in all. gpu: the full size, not run.
SETTINGS = {
    "quick": Setting(people_a=10, people_b=6, people_frames=40, examples_a=12, examples_b=6,
                     examples_real=16, steps=10, seeds=2, workers=2, crop_size=112, clip_frames=16),
    "cpu": Setting(people_a=48, people_b=12, people_frames=48, examples_a=96, examples_b=24,
                   examples_real=24, steps=200, seeds=3, workers=2, crop_size=112, clip_frames=16),
    "gpu": Setting(people_a=120, people_b=40, people_frames=100, examples_a=1000, examples_b=200,
                   examples_real=200, steps=6000, seeds=3, workers=16),
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench_sim2real", description=__doc__.split("\n")[0])
    parser.add_argument("--budget", choices=sorted(SETTINGS), default="cpu")
    parser.add_argument("--quick", action="store_true", help="same as --budget quick")
    parser.add_argument("--out", help="output folder (default runs/sim2real/<setting>)")
    parser.add_argument("--device", default="cpu", help="torch device of training and evaluation")
    parser.add_argument("--steps", type=int, help="optimiser steps per run (default: the setting's)")
    parser.add_argument("--seeds", type=int, help="seeds per row (default: the setting's)")
    parser.add_argument("--rows", nargs="*", help="only these rows (Table 1 rows, Table 2 stores)")
    parser.add_argument("--work", help="demo data, stores and runs (default <out>/work); several "
                                       "processes with different --rows may share one")
    parser.add_argument("--reuse", action="store_true",
                        help="keep demo data, stores and finished runs already in the work folder")
    parser.add_argument("--report-only", action="store_true",
                        help="tabulate the finished runs in the work folder; build and train nothing")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.rows or ()) - set(TABLE1) - set(TABLE2))
    if unknown:
        parser.error(f"unknown rows {unknown}; Table 1: {list(TABLE1)}, Table 2: {list(TABLE2)}")
    name = "quick" if args.quick else args.budget
    setting = SETTINGS[name]
    steps = args.steps or setting.steps
    seeds = list(range(args.seeds or setting.seeds))
    out = Path(args.out or f"runs/sim2real/{name}")
    work = Path(args.work) if args.work else out / "work"
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()

    reuse = args.reuse or args.report_only
    data = _demo_data(work, setting, reuse=reuse, report_only=args.report_only)
    smpl = str(data["a"] / "smpl")
    wanted = set(args.rows) if args.rows else set(TABLE1) | set(TABLE2)
    builds = {p for p in TABLE2 if p in wanted} | {"full"}
    if args.report_only:
        missing = [n for n in [f"a_{p}" for p in builds] + ["b_heldout", "b_real"]
                   if not (work / f"{n}.done").exists()]
        if missing:
            raise SystemExit(f"{work}: stores {missing} not built; run without --report-only")
    stores = {p: _build(data["a"], work / f"a_{p}.zarr", p, setting.examples_a, setting, reuse,
                        split="train") for p in sorted(builds)}
    test_store = _build(data["b_test"], work / "b_heldout.zarr", "full", setting.examples_b, setting,
                        reuse, split="all")
    real_store = _build(data["b_real"], work / "b_real.zarr", "full", setting.examples_real, setting,
                        reuse, split="all")
    build_s = time.perf_counter() - start

    mean_pose_b = mean_pose_error(stores["full"], test_store)
    print(f"mean training pose on B: {mean_pose_b:.1f} mm", flush=True)
    runs = []
    jobs = [("table1", row, "full") for row in TABLE1 if row in wanted]
    jobs += [("table2", TABLE2_MODALITY, p) for p in TABLE2 if p in wanted and p != "full"]
    for seed in seeds:  # every row once before the next seed: a cut-short run still has each row
        for table, row, build in jobs:
            run_dir = work / "runs" / f"{row}_{build}_n{steps}_s{seed}"
            if args.report_only and not (run_dir / "record.json").exists():
                continue
            runs.append(_run(run_dir, row=row, store=stores[build], test_store=test_store,
                             real_store=real_store, smpl=smpl, steps=steps, seed=seed,
                             device=args.device, reuse=reuse,
                             crop_size=setting.crop_size) | {"table": table, "build": build})
    results = {"setting": name, "sizes": setting.__dict__, "steps": steps, "seeds": seeds,
               "device": args.device, "mean_pose_b_mm": mean_pose_b, "runs": runs,
               "build_s": build_s, "total_s": time.perf_counter() - start}
    (out / "results.json").write_text(json.dumps(results, indent=2))
    report = results_markdown(results)
    (out / "results.md").write_text(report)
    cv2.imwrite(str(out / "sim2real.png"), bar_plot(results))
    print(report)
    print(f"wrote {out}/results.md, results.json, sim2real.png ({results['total_s']:.0f} s)")


def _demo_data(work: Path, setting: Setting, *, reuse: bool, report_only: bool) -> dict[str, Path]:
    """Domain A (train motions), domain B held-out motions (test), domain B train motions (DANN)."""
    specs = {"a": ("A", "train", 0, setting.people_a), "b_test": ("B", "heldout", 1, setting.people_b),
             "b_real": ("B", "train", 2, setting.people_b)}
    paths = {}
    for key, (domain, motions, seed, people) in specs.items():
        root = work / f"demo_{key}"
        done = root / ".done"
        if report_only and not done.exists():
            raise SystemExit(f"{root}: no demo data to report on; run without --report-only")
        if not (reuse and done.exists()):
            shutil.rmtree(root, ignore_errors=True)
            make_demo_data(root, seed=seed, num_people=people, people_frames=setting.people_frames,
                           num_backgrounds=3, domain=domain, motions=motions, workers=setting.workers)
            done.touch()
        paths[key] = root
    return paths


def _build(demo: Path, store: Path, pipeline: str, examples: int, setting: Setting, reuse: bool, *,
           split: str) -> str:
    """``synthgen build`` of ``examples`` examples of the demo data ``demo`` with ``pipeline``, in
    shards small enough that every build process gets work (a TOML next to the store names the
    pipeline as its base)."""
    done = store.with_suffix(".done")
    if reuse and done.exists():
        return str(store)
    recipe = store.with_suffix(".toml")
    shard = max(2, -(-examples // (2 * setting.workers)))
    recipe.write_text(f'base = "{pipeline}"\n[store]\nexamples_per_shard = {shard}\n'
                      f'[clip]\nlength = {setting.clip_frames}\n'
                      f'[crops]\nsize = {setting.crop_size}\n'
                      f'person_height = {setting.crop_size * PERSON_HEIGHT / REFERENCE_CROP}\n')
    command = [sys.executable, "-m", "synthgen", "build", "--kinetics", str(demo / "kinetics"),
               "--surreal", str(demo / "surreal"), "--out", str(store), "--pipeline", str(recipe),
               "--num-examples", str(examples), "--split", split, "--cache",
               str(demo / "camera_motion"), "--overwrite"]
    command += ["--serial"] if setting.workers == 1 else ["--num-cpus", str(setting.workers)]
    print(f"building {store.name} ({pipeline}, {examples} examples)", flush=True)
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    done.touch()
    return str(store)


def mean_pose_error(train_store: str, test_store: str) -> float:
    """PA-MPJPE (mm, per person then over people) of predicting the mean training pose (the
    generalised Procrustes mean of every training example's 14 evaluation joints,
    ``synthgen.core.joints.COCO14``) on every test frame that ``trainer eval`` scores
    (:func:`trainer.forward.evaluated_frames`)."""
    infos = open_stores([train_store, test_store])

    def rows(k):
        return np.stack([np.full(infos[k].examples.size, k), infos[k].examples], axis=1)

    joints = read_array(infos, rows(0), "joints3d")[..., COCO14, :]
    mean = procrustes_mean(torch.as_tensor(joints.reshape(-1, len(COCO14), 3)).double())
    truth = read_array(infos, rows(1), "joints3d")[..., COCO14, :]
    use = evaluated_frames({name: torch.as_tensor(read_array(infos, rows(1), name))
                            for name in ("visibility", "total_occlusion")}).numpy()
    target = torch.as_tensor(truth[use]).double() * METRES_TO_MM
    errors = pa_mpjpe(mean.expand_as(target) * METRES_TO_MM, target).numpy()
    persons = np.repeat(infos[1].persons, use.shape[1])[use.reshape(-1)]
    return average_per_person(errors, persons)


def _run(run_dir: Path, *, row: str, store: str, test_store: str, real_store: str, smpl: str,
         steps: int, seed: int, device: str, reuse: bool, crop_size: int) -> dict:
    """Train one Table row (modality and DANN weight of ``pipelines/train_<row>.toml``, budget of
    ``train_demo``; heatmap sigma and flow divisor scaled from 224-px crops to ``crop_size``, so
    they are the same fraction of the person) and evaluate it on the domain-B test store."""
    record = run_dir / "record.json"
    if reuse and record.exists():
        return json.loads(record.read_text())
    recipe, demo = load_train_config(f"train_{row}"), load_train_config("train_demo")
    scale = crop_size / REFERENCE_CROP  # heatmap sigma and flow divisor are in crop pixels
    config = demo.replace(
        name=f"sim2real_{row}",
        data={"modality": recipe.data.modality, "heatmap_sigma": demo.data.heatmap_sigma * scale,
              "flow_scale": demo.data.flow_scale * scale},
        model={"smpl": smpl}, optim={"steps": steps},
        dann={"weight": recipe.dann.weight,
              "real_stores": (real_store,) if recipe.dann.weight > 0 else ()},
        run={"seed": seed, "device": device, "log_every": max(steps // 4, 1),
             "val_every_steps": steps, "checkpoint_every_steps": steps})
    start = time.perf_counter()
    trained = train(config, [store], out_dir=run_dir, log=lambda line: None)
    scored = evaluate(run_dir / "last.pt", test_store, device=device, log=lambda line: None)
    out = {"row": row, "seed": seed, "store": store, "own_val_mm": trained.val_pa_mpjpe_mm,
           "own_mean_pose_mm": trained.baseline_mean_pose_mm, "b_mm": scored.pa_mpjpe_mm,
           "b_frames": scored.frames, "b_people": scored.people, "seconds": time.perf_counter() - start}
    print(f"{row} on {Path(store).name} seed {seed}: own val {out['own_val_mm']:.1f} mm, "
          f"B {out['b_mm']:.1f} mm ({out['seconds']:.0f} s)", flush=True)
    record.write_text(json.dumps(out, indent=2))
    return out


def _stats(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}"


def _rows(results: dict, table: str) -> list[tuple[str, float, list[dict]]]:
    """(label, paper figure, runs) per row of ``table``, in the paper's order."""
    runs = results["runs"]
    if table == "table1":
        return [(row, paper, [r for r in runs if r["table"] == "table1" and r["row"] == row])
                for row, paper in TABLE1.items()]
    return [(build, paper, [r for r in runs if r["row"] == TABLE2_MODALITY and r["build"] == build])
            for build, paper in TABLE2.items()]


def results_markdown(results: dict) -> str:
    """Both tables (mean ± sd over seeds, mm) with the paper's figures, as markdown."""
    s = results["sizes"]
    lines = [f"# sim2real ({results['setting']}): train on domain A, test on domain B held-out motions",
             "",
             f"{s['people_a']} A people -> {s['examples_a']} examples per store; {s['people_b']} B "
             f"people -> {s['examples_b']} test examples; {results['steps']} steps per run, seeds "
             f"{results['seeds']}, device {results['device']}; PA-MPJPE (mm, 14 joints, mean per "
             f"person then over people), mean ± sd over seeds.",
             f"Mean training pose on B: **{results['mean_pose_b_mm']:.1f} mm**.", ""]
    for table, title in (("table1", "Table 1: input modality (full store)"),
                         ("table2", f"Table 2: data ablations ({TABLE2_MODALITY})")):
        lines += [f"## {title}", "",
                  "| row | paper (3DPW) | own val (A) | mean pose (A val) | B held-out | B / mean pose | seeds |",
                  "|---|---|---|---|---|---|---|"]
        for label, paper, runs in _rows(results, table):
            if not runs:
                continue
            b = [r["b_mm"] for r in runs]
            lines.append(f"| {label} | {paper:.1f} | {_stats([r['own_val_mm'] for r in runs])} | "
                         f"{statistics.mean(r['own_mean_pose_mm'] for r in runs):.1f} | {_stats(b)} | "
                         f"{statistics.mean(b) / results['mean_pose_b_mm']:.2f} | {len(runs)} |")
        lines.append("")
    return "\n".join(lines)


def bar_plot(results: dict, *, size: tuple[int, int] = (420, 1100)) -> np.ndarray:
    """Bars per row: ours on B (mean over seeds, whiskers min-max) beside the paper's; a dashed
    line at the mean-pose baseline on B. BGR uint8 image, millimetres on y."""
    height, width = size
    left, right, top, bottom = 56, 16, 40, 90
    image = np.full((height, width, 3), 255, np.uint8)
    entries = [(label, paper, [r["b_mm"] for r in runs])
               for table in ("table1", "table2") for label, paper, runs in _rows(results, table) if runs]
    if not entries:
        return image
    top_mm = 20 * np.ceil(max(max(max(v) for _, _, v in entries), results["mean_pose_b_mm"]) / 20 + 0.5)

    def y(mm):
        return int(round(height - bottom - mm / top_mm * (height - top - bottom)))

    font = cv2.FONT_HERSHEY_SIMPLEX
    for k in range(int(top_mm // 20) + 1):
        cv2.line(image, (left, y(20 * k)), (width - right, y(20 * k)), (225, 225, 225), 1)
        cv2.putText(image, f"{20 * k}", (8, y(20 * k) + 4), font, 0.4, (60, 60, 60), 1, cv2.LINE_AA)
    slot = (width - left - right) / len(entries)
    ours, paper_colour = (180, 110, 30), (160, 160, 160)
    for k, (label, paper, values) in enumerate(entries):
        x = left + k * slot
        bar = slot * 0.34
        mean = float(np.mean(values))
        cv2.rectangle(image, (int(x + slot * 0.14), y(mean)), (int(x + slot * 0.14 + bar), y(0)), ours, -1)
        centre = int(x + slot * 0.14 + bar / 2)
        cv2.line(image, (centre, y(min(values))), (centre, y(max(values))), (0, 0, 0), 1)
        cv2.rectangle(image, (int(x + slot * 0.52), y(paper)), (int(x + slot * 0.52 + bar), y(0)),
                      paper_colour, -1)
        cv2.putText(image, f"{mean:.0f}", (int(x + slot * 0.14), y(mean) - 4), font, 0.35, (0, 0, 0), 1,
                    cv2.LINE_AA)
        for j, word in enumerate(label.replace("_no_occlusion", " no_occl").split("_")):
            cv2.putText(image, word, (int(x + 4), height - bottom + 16 + 14 * j), font, 0.38, (0, 0, 0), 1,
                        cv2.LINE_AA)
    for x0 in range(left, width - right, 12):
        cv2.line(image, (x0, y(results["mean_pose_b_mm"])), (min(x0 + 6, width - right),
                 y(results["mean_pose_b_mm"])), (40, 40, 200), 1)
    cv2.putText(image, f"PA-MPJPE (mm) on domain B held-out motions ({results['setting']}): ours "
                f"(blue, min-max over seeds), paper on 3DPW (grey), mean training pose on B (red "
                f"dashes, {results['mean_pose_b_mm']:.1f})", (left, 24), font, 0.42, (0, 0, 0), 1,
                cv2.LINE_AA)
    return image


if __name__ == "__main__":
    main()
