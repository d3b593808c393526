"""Motion-compensated SLIC: speed, agreement with scikit-image, and tracking of a known pan.

Inputs are synthetic (no files): camera pans over skimage.data photos
(``synthgen.testing.made_inputs.panned_clip``); the measures are ``synthgen.testing.superpixels``.
Everything runs on one thread at the paper's settings (position scale 5e-4, compactness 0.01,
20 centres per frame).

- Speed: median ms per T x 240 x 320 clip of ours (``method="synthgen"``, each ``downsample``) and
  of scikit-image's ``slic`` (the paper's call), on the same inputs.
- Agreement on zero offsets: boundary recall (2 px) and under-segmentation error of each against
  scikit-image's result; the row "skimage +-1 noise" is scikit-image on the same clip with +-1 grey
  level of noise: how far scikit-image moves from itself.
- Tracking: area-weighted IoU of the superpixels of frame 0, moved by the known camera motion, with
  frame k (k = 1..10) on 11-frame pans of 3 and 12 px/frame in x (1 and 4 in y).
- Calibration: ``calibrated_slic`` (what a build runs) per target 10, 20, 30 on a T-frame pan of
  3 px/frame: median ms per clip, SLIC calls made and superpixels per frame (min-max).

``python -m benchmarks superpixels -- --runs 3`` (default); ``--frames`` sets T.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from synthgen.steps.superpixels import calibrated_slic, motion_compensated_slic
from synthgen.testing.made_inputs import panned_clip
from synthgen.testing.superpixels import boundary_recall, tracking_iou, undersegmentation_error

PAPER = dict(segments_per_frame=20, position_scale=5e-4, compactness=0.01)


def _median_ms(function, runs: int) -> tuple[float, np.ndarray]:
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = function()
        times.append(1e3 * (time.perf_counter() - start))
    return statistics.median(times), result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="bench_superpixels", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="timed runs per method (default 3)")
    parser.add_argument("--frames", type=int, default=31, help="T of the timed clip (default 31)")
    parser.add_argument("--downsample", type=int, nargs="+", default=[4, 2],
                        help="our coarse cell sizes to compare (default 4 2)")
    parser.add_argument("--photos", nargs="+", default=["coffee", "astronaut"])
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    print(f"Speed and agreement with scikit-image, {args.frames} x 240 x 320, zero offsets")
    print(f"{'photo':10s} {'method':22s} {'ms':>8s} {'x faster':>8s} {'labels':>6s} "
          f"{'recall':>6s} {'UE':>6s}")
    for photo in args.photos:
        frames, _ = panned_clip(args.frames, (3.0, 1.0), photo=photo)
        still = np.zeros((args.frames, 2))
        reference_ms, reference = _median_ms(lambda: motion_compensated_slic(
            frames, still, method="skimage", **PAPER), args.runs)
        noisy = np.clip(frames.astype(np.int16) + np.random.default_rng(0).integers(
            -1, 2, frames.shape), 0, 255).astype(np.uint8)
        rows = [("skimage", reference_ms, reference),
                ("skimage +-1 noise", float("nan"),
                 motion_compensated_slic(noisy, still, method="skimage", **PAPER))]
        for cell in args.downsample:
            ms, labels = _median_ms(lambda: motion_compensated_slic(
                frames, still, downsample=cell, **PAPER), args.runs)
            rows.append((f"synthgen downsample={cell}", ms, labels))
        for name, ms, labels in rows:
            print(f"{photo:10s} {name:22s} {ms:8.0f} {reference_ms / ms:8.2f} {labels.max():6d} "
                  f"{boundary_recall(labels, reference):6.3f} "
                  f"{undersegmentation_error(labels, reference):6.3f}")

    print("\nTracking IoU of frame 0 vs frame k, 11-frame pans, paper scale 5e-4")
    print(f"{'photo':10s} {'pan':8s} {'method':32s} " + " ".join(f"{k:>5d}" for k in range(1, 11)))
    for photo, pan in ((photo, pan) for photo in args.photos for pan in ((3.0, 1.0), (12.0, 4.0))):
        frames, offsets = panned_clip(11, pan, photo=photo)
        for name, method, compensated in (("synthgen compensated", "synthgen", True),
                                          ("synthgen no compensation", "synthgen", False),
                                          ("skimage compensated channels", "skimage", True),
                                          ("skimage no compensation", "skimage", False)):
            labels = motion_compensated_slic(
                frames, offsets if compensated else np.zeros_like(offsets), method=method,
                **PAPER)
            ious = [tracking_iou(labels, offsets, 0, k) for k in range(1, 11)]
            print(f"{photo:10s} {str(pan):8s} {name:32s} " + " ".join(f"{v:5.2f}" for v in ious))

    print(f"\nCalibrated SLIC, {args.frames} x 240 x 320, pan (3, 1) px/frame, limits 10..30")
    print(f"{'photo':10s} {'target':>6s} {'ms':>8s} {'calls':>5s} {'asked':>5s} {'per frame':>9s}")
    for photo in args.photos:
        frames, offsets = panned_clip(args.frames, (3.0, 1.0), photo=photo)
        for target in (10, 20, 30):
            ms, result = _median_ms(lambda: calibrated_slic(
                frames, offsets, target=target, limits=(10, 30), position_scale=5e-4,
                compactness=0.01), args.runs)
            counts = result.per_frame
            print(f"{photo:10s} {target:6d} {ms:8.0f} {result.tries:5d} {result.requested:5d} "
                  f"{counts.min():4d}-{counts.max():<4d}")


if __name__ == "__main__":
    main()
