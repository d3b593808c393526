"""Time ``make_example`` per step, its peak memory, and the occluder outcomes.

Inputs are synthetic (no files needed): camera pans over skimage.data photos with a known motion
as backgrounds, and the stick-figure SURREAL clip of the tests as the person (walking at a random
drift). Each example has its own generator ``default_rng([seed, i])``.

``python -m benchmarks example -- --examples 5`` (default); ``--frames`` sets T.
"""

from __future__ import annotations

import argparse
import collections
import resource
import time
import tracemalloc

import numpy as np

from synthgen.config import Config
from synthgen.example import make_example
from synthgen.core.types import BackgroundClip
from synthgen.testing.made_inputs import panned_clip, synthetic_person

PHOTOS = ("coffee", "astronaut", "chelsea", "rocket")
STEPS = ("tracking", "superpixels", "occluder", "composite", "visibility", "crops")


def _inputs(rng: np.random.Generator, num_frames: int):
    photo = PHOTOS[int(rng.integers(len(PHOTOS)))]
    velocity = rng.uniform(-2.0, 2.0, size=2) * (1.0, 0.5)
    frames, offsets = panned_clip(num_frames, velocity, photo=photo)
    background = BackgroundClip(frames=frames, path=f"pan:{photo}", start=0, crop_yx=(0, 0),
                                scale=1.0)
    person = synthetic_person(num_frames, drift=rng.uniform(-1.5, 1.5, size=2))
    return background, offsets, person


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="bench_example", description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=5, help="examples to time (default 5)")
    parser.add_argument("--frames", type=int, default=Config().clip.length, help="T (default 31)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    config = Config().replace(clip={"length": args.frames})
    per_step = collections.defaultdict(list)
    totals, reasons, fractions = [], collections.Counter(), []
    peak = 0
    for i in range(args.examples):
        inputs = _inputs(np.random.default_rng([args.seed, i, 1]), args.frames)
        timings: dict[str, float] = {}
        if i == 0:
            tracemalloc.start()
        start = time.perf_counter()
        example = make_example(*inputs[:2], inputs[2], np.random.default_rng([args.seed, i]),
                               config, timings=timings)
        totals.append(time.perf_counter() - start)
        if i == 0:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        for step in STEPS:
            per_step[step].append(timings.get(step, 0.0))
        reasons[example.occluder_reason] += 1
        if example.occluder_reason == "occluded":
            fractions.append(example.occluded_fraction)

    print(f"make_example, T={args.frames}, 240x320 -> 224x224 crops, {args.examples} examples "
          f"(median seconds; first example under tracemalloc)")
    print(f"{'step':<14}{'median s':>10}{'share':>8}")
    total = float(np.median(totals))
    for step in STEPS:
        value = float(np.median(per_step[step]))
        print(f"{step:<14}{value:>10.3f}{value / total:>8.0%}")
    print(f"{'total':<14}{total:>10.3f}")
    print(f"peak traced memory (one example): {peak / 2**20:.0f} MiB; "
          f"process max RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    shares = ", ".join(f"{r} {n / args.examples:.0%}" for r, n in sorted(reasons.items()))
    print(f"occluder outcomes: {shares}")
    if fractions:
        print(f"person pixels removed when occluded: median {np.median(fractions):.1%}")


if __name__ == "__main__":
    main()
