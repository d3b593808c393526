"""Every figure of the performance issue beside its goal, in one table at the end of
``python -m benchmarks`` (``make bench``).

A benchmark calls :func:`record` for each goal figure it measures; :func:`summary` lists them in
:data:`GOALS` order with ``met`` / ``missed`` / ``open: why``. A goal whose benchmark did not run
in this invocation is ``open: not run``; a GPU goal measured without a GPU is ``open: no GPU``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Goal:
    """One goal: the benchmark that measures it, what it is, and its bound (text)."""

    bench: str
    figure: str
    goal: str


#: The goals, by key, in the order of the summary (issue 15, with issue 11's camera-motion cost and issue 17's crop flow).
GOALS = {
    "read_rate": Goal("read", "reads: flow + keypoints examples/s, 2 cores, trainer's data path",
                      ">= 150"),
    "read_ratio": Goal("read", "reads: CPU cost / format limit (same bytes, same processes)",
                       "<= 1.5x"),
    "bytes": Goal("read", "bytes: MB per 31-frame example (store of bench read)", "<= 4"),
    "bytes_no_rgb": Goal("read", "bytes: MB per example with store.omit = [\"rgb\"]",
                         "option exists"),
    "build_speedup": Goal("build", "build: speed-up vs naive per core, camera motion charged",
                          ">= 15x"),
    "build_gpu": Goal("gpu", "build: crop-flow examples/s per GPU (batched tvl1_torch)",
                      "measured"),
    "build_bytes": Goal("build", "bytes: MB per example (bench build's Ray store)", "<= 4"),
    "camera_pair": Goal("camera_motion", "camera motion: ms per 240x320 pair, 1 core", "<= 40"),
    "camera_300": Goal("camera_motion", "camera motion: s per 300-frame video, 1 core", "<= 10"),
    "crop_flow_limbs": Goal("crop_flow", "crop flow: default's limb EPE / tvl1's (demo examples)",
                            "<= 0.5x"),
    "crop_flow_rate": Goal("crop_flow", "crop flow: default's 224x224 pairs/s per core (CPU time)",
                           ">= 40"),
    "trainer_ratio": Goal("trainer", "trainer: data path / model step (train_full, GPU)",
                          ">= 2x"),
    "trainer_clips": Goal("trainer", "trainer: clips/s and GPU memory (train_full, GPU)",
                          "measured"),
}

_RECORDED: dict[str, tuple[str, str]] = {}


def record(key: str, measured: str, status: str) -> None:
    """Record the figure of goal ``key``: ``measured`` (text with units) and ``status``
    (``"met"``, ``"missed"`` or ``"open: why"``)."""
    if key not in GOALS:
        raise KeyError(f"unknown goal {key!r}; known: {sorted(GOALS)}")
    _RECORDED[key] = (measured, status)


def verdict(met: bool) -> str:
    """``"met"`` or ``"missed"``."""
    return "met" if met else "missed"


def summary(ran: list[str]) -> str:
    """The table of every goal: recorded figures, else ``open: not run`` (``ran``: the
    benchmarks run) or ``open: not measured``."""
    rows = [("figure", "measured", "goal", "status")]
    for key, goal in GOALS.items():
        measured, status = _RECORDED.get(key, ("-", "open: not measured" if goal.bench in ran
                                               else f"open: not run (benchmark {goal.bench})"))
        rows.append((goal.figure, measured, goal.goal, status))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths)) + "  " + row[3]
             for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)
