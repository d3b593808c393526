"""Run benchmarks: ``python -m benchmarks`` (all) or ``python -m benchmarks decode camera_motion``.

Arguments after ``--`` go to every benchmark's ``main(argv)``.
"""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path


def available() -> list[str]:
    here = Path(__file__).resolve().parent
    return sorted(p.stem.removeprefix("bench_") for p in here.glob("bench_*.py"))


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
    for name in names or known:
        print(f"\n=== benchmark {name} ===", flush=True)
        start = time.perf_counter()
        importlib.import_module(f"benchmarks.bench_{name}").main(extra)
        print(f"=== {name}: {time.perf_counter() - start:.1f} s ===", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
