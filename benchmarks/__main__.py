"""Run benchmarks: ``python -m benchmarks`` (all but :data:`NOT_DEFAULT`) or
``python -m benchmarks decode camera_motion``; then every goal figure beside its goal
(:mod:`benchmarks.goals`).

Arguments after ``--`` go to every benchmark's ``main(argv)``.
"""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path

from benchmarks import goals

#: Benchmarks run only by name: ``sim2real`` trains 10 models (about an hour on 2 cores at its
#: default budget; ``make sim2real``) and measures transfer, not a goal of the table.
NOT_DEFAULT = ("sim2real",)


def available() -> list[str]:
    here = Path(__file__).resolve().parent
    return sorted(p.stem.removeprefix("bench_") for p in here.glob("bench_*.py"))


def default() -> list[str]:
    """The benchmarks ``python -m benchmarks`` runs without names."""
    return [name for name in available() if name not in NOT_DEFAULT]


def run(argv: list[str]) -> int:
    names, extra = argv, []
    if "--" in argv:
        cut = argv.index("--")
        names, extra = argv[:cut], argv[cut + 1:]
    known = available()
    unknown = [n for n in names if n not in known]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; available: {known}", file=sys.stderr)
        return 2
    names = names or default()
    for name in names:
        print(f"\n=== benchmark {name} ===", flush=True)
        start = time.perf_counter()
        importlib.import_module(f"benchmarks.bench_{name}").main(extra)
        print(f"=== {name}: {time.perf_counter() - start:.1f} s ===", flush=True)
    print(f"\n=== goals ===\n{goals.summary(names)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
