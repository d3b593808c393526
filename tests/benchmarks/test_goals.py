"""The goal table of ``python -m benchmarks`` (benchmarks/goals.py) and its default set."""

from __future__ import annotations

import pytest

from benchmarks import __main__ as runner
from benchmarks import goals


def test_summary_puts_every_goal_beside_its_figure_or_says_why_it_is_open(monkeypatch):
    monkeypatch.setattr(goals, "_RECORDED", {})
    goals.record("read_rate", "486 from CPU cost", goals.verdict(486 >= 150))
    goals.record("read_ratio", "1.73x", goals.verdict(1.73 <= 1.5))
    goals.record("trainer_ratio", "0.4x (train_demo, cpu)", "open: no GPU")
    lines = goals.summary(["read", "trainer"]).splitlines()
    assert len(lines) == len(goals.GOALS) + 2  # header, rule, one row per goal
    rows = dict(zip(goals.GOALS, lines[2:]))
    assert "486 from CPU cost" in rows["read_rate"] and rows["read_rate"].endswith("met")
    assert rows["read_ratio"].endswith("missed") and "<= 1.5x" in rows["read_ratio"]
    assert rows["trainer_ratio"].endswith("open: no GPU")
    assert rows["trainer_clips"].endswith("open: not measured")
    assert rows["build_speedup"].endswith("open: not run (benchmark build)")
    with pytest.raises(KeyError, match="unknown goal"):
        goals.record("speed", "1", "met")


def test_make_bench_leaves_out_the_hour_long_sim2real():
    assert "sim2real" in runner.available() and "sim2real" not in runner.default()
    assert {goal.bench for goal in goals.GOALS.values()} <= set(runner.default())
