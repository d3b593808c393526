"""Benchmarks: every module imports (a renamed API cannot break one silently); the sim2real
report and plot on made results; its mean-pose baseline on a tiny store."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from benchmarks.__main__ import available


@pytest.mark.parametrize("name", available())
def test_benchmark_imports(name):
    module = importlib.import_module(f"benchmarks.bench_{name}")
    assert callable(module.main)


def _results():
    from benchmarks.bench_sim2real import SETTINGS

    def run(table, row, build, seed, b_mm):
        return {"table": table, "row": row, "build": build, "seed": seed, "own_val_mm": 80.0 + seed,
                "own_mean_pose_mm": 95.0, "b_mm": b_mm}

    runs = [run("table1", "rgb", "full", 0, 110.0), run("table1", "rgb", "full", 1, 120.0),
            run("table1", "flow_keypoints", "full", 0, 90.0),
            run("table2", "flow_keypoints", "no_occlusion", 0, 95.0)]
    return {"setting": "quick", "sizes": SETTINGS["quick"].__dict__, "steps": 10, "seeds": [0, 1],
            "device": "cpu", "mean_pose_b_mm": 100.0, "runs": runs}


def test_sim2real_results_markdown():
    from benchmarks.bench_sim2real import results_markdown

    lines = results_markdown(_results()).splitlines()
    assert "Mean training pose on B: **100.0 mm**." in lines
    # mean ± sd over seeds, ratio to the mean pose on B, the paper's 3DPW figure
    assert "| rgb | 105.6 | 80.5 ± 0.7 | 95.0 | 115.0 ± 7.1 | 1.15 | 2 |" in lines
    assert "| flow_keypoints | 74.7 | 80.0 | 95.0 | 90.0 | 0.90 | 1 |" in lines
    # Table 2: the full store's row is Table 1's flow + keypoints; rows without runs are left out
    table2 = lines[lines.index("## Table 2: data ablations (flow_keypoints)"):]
    assert "| full | 74.7 | 80.0 | 95.0 | 90.0 | 0.90 | 1 |" in table2
    assert "| no_occlusion | 77.2 | 80.0 | 95.0 | 95.0 | 0.95 | 1 |" in table2
    assert not any(line.startswith(("| keypoints", "| no_tracking")) for line in lines)


def test_sim2real_bar_plot():
    from benchmarks.bench_sim2real import bar_plot

    image = bar_plot(_results(), size=(300, 600))
    assert image.shape == (300, 600, 3) and image.dtype == np.uint8
    ours = np.all(image == (180, 110, 30), axis=-1)
    # four bars (rgb, flow + keypoints, full, no occlusion): the rgb bar (115 mm) is the tallest
    columns = np.flatnonzero(ours.any(axis=0))
    runs = np.split(columns, np.flatnonzero(np.diff(columns) > 1) + 1)
    assert len(runs) == 4
    heights = [ours[:, r].sum(axis=0).max() for r in runs]
    assert heights[0] == max(heights) and heights[1] == heights[2] < heights[3]
    empty = dict(_results(), runs=[])
    assert (bar_plot(empty, size=(50, 80)) == 255).all()


def test_sim2real_mean_pose_error(training_store, constant_checkpoint):
    """The mean training pose scores on the frames ``trainer eval`` scores, and beats a fixed
    pose that is not the training mean (the constant network's start pose)."""
    from benchmarks.bench_sim2real import mean_pose_error
    from trainer.evaluate import evaluate

    mean_pose = mean_pose_error(training_store, training_store)
    constant = evaluate(constant_checkpoint, training_store, device="cpu", log=lambda line: None)
    assert 0 < mean_pose < constant.pa_mpjpe_mm


def test_occluder_grid_cells_move_with_the_camera():
    from benchmarks.bench_occluder import grid_cells
    from synthgen.steps.superpixels import superpixels_per_frame

    offsets = np.array([[0.0, 0.0], [7.0, -3.0]])
    labels = grid_cells(2, 60, 80, 12, offsets)
    assert superpixels_per_frame(labels[:1]).tolist() == [12]
    # Content at (x, y) in frame 0 is at (x + 7, y - 3) in frame 1: same cell.
    assert np.array_equal(labels[1, :-3, 7:], labels[0, 3:, :-7])
