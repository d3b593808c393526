"""How often the occluder is accepted (method steps 4-5), and why: measured on build examples.

The examples are those ``synthgen build --pipeline demo`` plans (seed 0) from demo data (made in a
temporary folder, or ``--demo-data DIR``, e.g. ``demo_data`` of ``make demo``), with the demo
videos or ``--kinetics DIR`` (real footage) as backgrounds, and the demo people or ``--surreal DIR
--smpl DIR`` (real SURREAL clips, their ``train`` split). Per example, every superpixel present
is judged (:func:`synthgen.steps.occluder.outcome_probabilities`): the probability that the
uniform draw occludes the example, far less noisy than the one realised draw. Beside it:

- the same with the person standing still in the scene (the middle frame's mask and joints moved
  only with the camera): what the person's own motion adds;
- cells of a compact grid instead of SLIC's superpixels (the Voronoi cells of scikit-image's 2-D
  grid with the example's measured count per frame, moving with the camera): what the shape of
  colour-driven superpixels (compactness 0.01) adds;
- only removals of at least 0.1 % / 1 % of the person's pixels counted as occlusions: how much
  comes from superpixels that graze the person.

``python -m benchmarks occluder -- --examples 24`` (default); ``--demo-data demo_data
--examples 200`` gives the figures of the 200-example demo store.
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from skimage.util import regular_grid

from synthgen.build.synthetic import (discover_sources, example_inputs, example_rng,
                                      plan_example)
from synthgen.config import load_config
from synthgen.example import example_layers
from synthgen.steps.occluder import OCCLUDED, apply_occluder, outcome_probabilities
from synthgen.steps.tracking import shift_nearest
from synthgen.steps.visibility import behind_depth, outside_frame

#: Smallest removed fraction of the person's pixels of the "graze" rows.
GRAZE_FRACTIONS = (0.001, 0.01)


def grid_cells(num_frames: int, height: int, width: int, count: int,
               offsets: np.ndarray) -> np.ndarray:
    """Labels (T, H, W) 1..N: the nearest point of scikit-image's 2-D ``regular_grid`` of
    ``count`` points, in camera-compensated pixels ``(x - dx[t], y - dy[t])``."""
    rows, cols = regular_grid((height, width), count)
    points = np.stack(np.meshgrid(np.arange(height)[rows], np.arange(width)[cols],
                                  indexing="ij"), axis=-1).reshape(-1, 2).astype(np.float64)
    y, x = np.mgrid[:height, :width]
    labels = np.empty((num_frames, height, width), np.int32)
    for t, (dx, dy) in enumerate(offsets):
        position = np.stack([y - dy, x - dx], axis=-1)[..., None, :]
        labels[t] = ((position - points) ** 2).sum(axis=-1).argmin(axis=-1) + 1
    return labels


def _grazing_rates(labels, person, joints, hidden) -> list[float]:
    """P(occluded) counting only removals of at least each of :data:`GRAZE_FRACTIONS`."""
    present = np.flatnonzero(np.bincount(labels.ravel()))
    results = [apply_occluder(labels, int(label), person, joints, hidden, min_visible=7)
               for label in present]
    return [float(np.mean([r.reason == OCCLUDED and r.occluded_fraction >= fraction
                           for r in results])) for fraction in GRAZE_FRACTIONS]


def measure(example: int, sources, cfg, cache: str) -> dict:
    """Every figure of one planned example (see the module docstring)."""
    plan = plan_example(example, 0, sources, cfg)
    background, offsets, person = example_inputs(plan, sources, cfg, cache_dir=cache)
    layers = example_layers(background, offsets, person, example_rng(plan), cfg)
    labels, tracked, offsets = layers.labels, layers.tracked, layers.camera_offsets
    num_frames, height, width = labels.shape
    mask, joints = tracked.segm > 0, tracked.joints2d
    min_visible = cfg.occluder.min_visible
    behind = behind_depth(joints, person.joints3d, tracked.depth,
                          margin_m=cfg.visibility.behind_margin_m)
    hidden = outside_frame(joints, height, width) | behind

    def p_occluded(labels, mask, joints, hidden):
        return outcome_probabilities(labels, mask, joints, hidden,
                                     min_visible=min_visible)[OCCLUDED]

    middle = num_frames // 2
    still = np.stack([shift_nearest(mask[middle], offset) for offset in offsets])
    still_joints = joints[middle][None] + offsets[:, None, :]
    grid = grid_cells(num_frames, height, width,
                      int(round(layers.superpixels.per_frame.mean())), offsets)
    heights = [np.ptp(np.flatnonzero(m.any(axis=1))) + 1 for m in mask if m.any()]
    return {"realised": layers.occluder.reason == OCCLUDED,
            "draw": p_occluded(labels, mask, joints, hidden),
            "still": p_occluded(labels, still, still_joints,
                                outside_frame(still_joints, height, width) | behind[middle]),
            "grid": p_occluded(grid, mask, joints, hidden),
            "graze": _grazing_rates(labels, mask, joints, hidden),
            "per_frame": float(layers.superpixels.per_frame.mean()),
            "height_px": float(np.median(heights))}


def _mean_se(values) -> str:
    values = np.asarray(values, dtype=np.float64)
    se = values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else float("nan")
    return f"{values.mean():6.1%} +- {se:.1%}"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="bench_occluder", description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=24, help="examples 0..N-1 (default 24)")
    parser.add_argument("--demo-data", type=Path, default=None,
                        help="existing demo data (synthgen demo-data); default: made here")
    parser.add_argument("--people", type=int, default=12,
                        help="people of the demo data made here (default 12)")
    parser.add_argument("--kinetics", type=Path, default=None,
                        help="background videos instead of the demo's (e.g. real footage)")
    parser.add_argument("--surreal", type=Path, default=None,
                        help="SURREAL tree instead of the demo people (with --smpl)")
    parser.add_argument("--smpl", type=Path, default=None, help="SMPL models of --surreal")
    parser.add_argument("--cache", type=Path, default=None,
                        help="camera-motion cache (default: a temporary folder)")
    args = parser.parse_args(argv)
    cfg = load_config("demo")
    with tempfile.TemporaryDirectory() as tmp:
        data = args.demo_data
        if data is None and not (args.kinetics and args.surreal and args.smpl):
            from synthgen.demo.dataset import make_demo_data

            data = Path(tmp) / "demo"
            make_demo_data(data, seed=0, num_people=args.people, workers=1)
        cache = str(args.cache or Path(tmp) / "cache")
        kinetics = args.kinetics or data / "kinetics"
        surreal = args.surreal or data / "surreal"
        sources = discover_sources(kinetics, surreal, cfg, cache_dir=cache,
                                   smpl_dir=args.smpl or data / "smpl", stream=io.StringIO())
        start = time.process_time()
        rows = [measure(i, sources, cfg, cache) for i in range(args.examples)]
        seconds = time.process_time() - start
    print(f"backgrounds {kinetics} ({len(sources.videos)} videos), people {surreal} "
          f"({len(sources.people)} clips), "
          f"examples 0..{args.examples - 1} of the demo pipeline (seed 0); "
          f"{seconds / len(rows):.1f} CPU s per example")
    print(f"superpixels per frame: median {statistics.median(r['per_frame'] for r in rows):.1f}; "
          f"person height: median {statistics.median(r['height_px'] for r in rows):.0f} px")
    print(f"{'occluded fraction':52s} {'mean +- se':>15s}")
    realised = sum(r["realised"] for r in rows)
    print(f"{'realised (one draw per example)':52s} {realised / len(rows):6.1%} ({realised}/{len(rows)})")
    for key, label in (("draw", "over the superpixel draw (P(occluded))"),
                       ("still", "  person standing still in the scene"),
                       ("grid", "  compact grid cells, same count per frame")):
        print(f"{label:52s} {_mean_se([r[key] for r in rows]):>15s}")
    for i, fraction in enumerate(GRAZE_FRACTIONS):
        print(f"{f'  only removals >= {fraction:.1%} of the person':52s} "
              f"{_mean_se([r['graze'][i] for r in rows]):>15s}")


if __name__ == "__main__":
    main()
