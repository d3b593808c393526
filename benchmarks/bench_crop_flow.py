"""Crop flow: pairs per second per CPU core for each backend at 224x224, the accuracy (mean
end-point error) of every classical method on demo examples with ground-truth flow, and the
speed and accuracy of TV-L1 settings on crops with known flow.

Demo accuracy (the table the default was chosen on): pipeline examples (``make_example``) of
rendered demo people, whose renderer gives the ground-truth flow, over a panning demo video
(``synthgen.testing.flow_pairs.demo_person_flow_pairs``); EPE inside the visible person,
on the limbs (hands, feet, forearms, shins: ``LIMB_PARTS``) and on the background (crop pixels
outside the frame excluded), binned by
true displacement, for our backends (``dis``, the default: DIS with a full-resolution variational
refinement; ``dis`` without it, the previous default; ``dis`` with the colour, edge-aware
full-resolution refinement instead, ``colour_warps=3``, an option; ``tvl1``, the default before
DIS), scikit-image's
TV-L1, OpenCV's DIS at its medium preset, and DeepFlow and DualTVL1 of ``cv2.optflow``, each
timed on the same pairs (pairs/s per core from the process's CPU time, one thread), and the
limb EPE of each as a ratio to ``tvl1``'s. ``--demo-seed`` draws other demo people (the default
was chosen on seeds 1 and 2, ``--demo-examples 6 --demo-pair-step 2``, and is reported on seed 0);
``--sweep`` adds nearby DIS settings to that table.

Speed runs with one thread (torch and OpenCV), so the figure is per core; FlowNet models use
random weights (speed does not depend on the values). TV-L1 is the baseline of the ratio column,
measured in the same run. Accuracy uses crops of scikit-image photos moved by a known sub-pixel
translation or smooth affine motion, and crops where a textured "limb" swings over a panning
background (``synthgen.testing.flow_pairs``); the three TV-L1 variants run on the same
pairs, interleaved (with the DIS default beside them), and their s/pair is the median over the
motion sets. Last, the DIS default on centre crops of a demo background video (a pure camera pan,
MJPG-compressed, read by the Kinetics reader) whose per-frame camera motion is known
(``synthgen.demo.backgrounds``). ``--sweep`` adds nearby
TV-L1 settings to the comparison (how its default was chosen).

    python -m benchmarks crop_flow -- --pairs 4 --repeats 3 --backends dis tvl1 flownet2s flownet2
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable

import cv2
import numpy as np
import skimage.data
import torch
from skimage.registration import optical_flow_tvl1 as skimage_tvl1

from benchmarks import goals
from synthgen.demo.backgrounds import ground_truth_camera_motion, make_demo_backgrounds
from synthgen.sources.kinetics import read_clip
from synthgen.steps.crop_flow import BACKENDS, CLASSICAL, FlowBackend, get_backend
from synthgen.core.joints import SURREAL_PART_LABEL
from synthgen.testing.flow_pairs import (LIMB_PARTS, OUTSIDE_FRAME, demo_person_flow_pairs,
                                                end_point_error, known_flow_pairs,
                                                known_limb_flow_pairs)

#: Crop TV-L1 parameters before this benchmark chose the current ``CropFlowConfig`` defaults.
PREVIOUS_TVL1 = dict(attachment=15.0, tightness=0.3, num_warp=5, num_iter=10, num_levels=4,
                     downscale=1)
#: ``--sweep``: TV-L1 settings compared beside the default (overrides of its parameters).
SWEEP = (dict(attachment=15.0), dict(attachment=45.0), dict(num_warp=5, num_iter=10),
         dict(num_warp=3, num_iter=15), dict(num_warp=2, num_iter=30),
         dict(downscale=1, num_levels=4, num_warp=3, num_iter=10))
#: ``--sweep``: DIS settings compared beside the default on the demo examples (overrides of its
#: parameters; ``full_resolution_iterations=0`` is the previous default).
DIS_SWEEP = (dict(full_resolution_iterations=10), dict(refinement_alpha=15.0),
             dict(refinement_gamma=5.0),
             dict(refinement_iterations=20, full_resolution_iterations=0),
             dict(finest_scale=0, full_resolution_iterations=0),
             dict(patch_size=12, patch_stride=4))
#: Short names of TV-L1 parameters in ``--sweep`` labels.
_SHORT = dict(attachment="A", tightness="T", num_warp="W", num_iter="I", num_levels="L",
              downscale="D")
#: Short names of DIS parameters in ``--sweep`` labels.
_DIS_SHORT = dict(finest_scale="fs", patch_size="ps", patch_stride="st", refinement_iterations="vi",
                  refinement_alpha="a", refinement_gamma="g", refinement_delta="d",
                  full_resolution_iterations="full")
#: Goals of the default (issue 17): limb EPE on the demo examples at most this times TV-L1's
#: (the default before DIS), and at least this many 224x224 pairs/s per core.
GOAL_LIMB_RATIO, GOAL_PAIRS_PER_S = 0.5, 40.0
#: Motion sets of the accuracy table: name -> keyword arguments of the pair generator
#: (``known_limb_flow_pairs`` for the set named "limb ...", ``known_flow_pairs`` otherwise).
MOTIONS = {
    "shift <= 4 px": dict(max_shift=4.0),
    "shift <= 12 px": dict(max_shift=12.0),
    "affine (4 px, 2 deg, 3%)": dict(max_shift=4.0, max_rotation_deg=2.0, max_scale=0.03),
    "limb over pan": dict(max_shift=8.0, max_limb_shift=8.0, max_limb_rotation_deg=5.0),
}
#: (background photo, limb texture photo) of scikit-image; pairs are split evenly between them.
PHOTOS = (("astronaut", "coffee"), ("coffee", "astronaut"))
#: Border (crop px) the inner EPE ignores: content entering or leaving the crop.
MARGIN = 16
#: Bins of the true displacement (crop px) of the demo table: [low, high).
DISPLACEMENT_BINS = ((0.0, 2.0), (2.0, 8.0), (8.0, 16.0), (16.0, np.inf))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench_crop_flow", description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=2, help="pairs per timed call")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per backend (median)")
    parser.add_argument("--backends", nargs="+", default=["dis", "tvl1", "flownet2s", "flownet2c",
                                                          "flownet2"], choices=BACKENDS)
    parser.add_argument("--demo-examples", type=int, default=3,
                        help="demo examples (31 frames) of the ground-truth table")
    parser.add_argument("--demo-pair-step", type=int, default=3,
                        help="keep every n-th pair of each demo example")
    parser.add_argument("--demo-seed", type=int, default=0, help="seed of the demo people")
    parser.add_argument("--accuracy-pairs", type=int, default=8,
                        help="pairs per motion set of the TV-L1 comparison (even)")
    parser.add_argument("--sweep", action="store_true", help="add nearby DIS and TV-L1 settings")
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    rng = np.random.default_rng(0)
    pairs, _ = known_flow_pairs(skimage.data.astronaut(), args.pairs, rng=rng, max_shift=4.0)

    print(f"speed: 1 thread, {args.pairs} pairs of 224x224 per call, median of {args.repeats} "
          "calls after one warm-up call")
    print(f"{'backend':<12} {'s/call':>8} {'pairs/s/core':>13} {'x tvl1':>8}")
    rates = {}
    for name in args.backends:
        backend = get_backend(name, rng=None if name in CLASSICAL else np.random.default_rng(0),
                              batch_size=args.pairs)
        backend.flow(pairs[:1])
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            backend.flow(pairs)
            times.append(time.perf_counter() - start)
        seconds = statistics.median(times)
        rates[name] = args.pairs / seconds
        ratio = f"{rates[name] / rates['tvl1']:.3f}" if "tvl1" in rates else "-"
        print(f"{name:<12} {seconds:>8.2f} {rates[name]:>13.2f} {ratio:>8}")

    demo_accuracy(args.demo_examples, args.demo_pair_step, seed=args.demo_seed,
                  sweep=DIS_SWEEP if args.sweep else ())
    default = get_backend("tvl1")
    methods = {"dis (crop-flow default)": get_backend("dis").flow,
               "dis colour (option)": get_backend("dis", full_resolution_iterations=0,
                                                  colour_warps=3).flow,
               "tvl1 default": default.flow,
               "tvl1 previous": get_backend("tvl1", **PREVIOUS_TVL1).flow,
               "skimage": skimage_flow}
    if args.sweep:
        for overrides in SWEEP:
            params = {**default.params, **overrides}
            label = "tvl1 " + " ".join(f"{_SHORT[k]}{v:g}" for k, v in overrides.items())
            methods[label] = get_backend("tvl1", **params).flow
    tvl1_comparison(methods, args.accuracy_pairs, rng=rng)
    demo_video_accuracy(get_backend("dis"))


def opencv_flow(make: Callable[[], object]) -> Callable[[np.ndarray], np.ndarray]:
    """A flow method from an OpenCV ``DenseOpticalFlow`` factory, on each pair's grey levels.

    (B, 2, H, W, 3) uint8 -> (B, H, W, 2) float32 flow in crop px, x then y.
    """
    solver = make()

    def flow(pairs: np.ndarray) -> np.ndarray:
        return np.stack([solver.calc(cv2.cvtColor(a, cv2.COLOR_RGB2GRAY),
                                     cv2.cvtColor(b, cv2.COLOR_RGB2GRAY), None) for a, b in pairs])
    return flow


def demo_accuracy(num_examples: int, pair_step: int, *, seed: int = 0,
                  sweep: tuple[dict, ...] = ()) -> None:
    """Print EPE per region and displacement bin, and pairs/s, of each method on demo examples;
    ``sweep``: overrides of the DIS default's parameters, each a row more. Records the default's
    limb EPE ratio to TV-L1 and its pairs/s per core as goals."""
    pairs, truth, parts = demo_person_flow_pairs(num_examples, seed=seed, pair_step=pair_step)
    limb = np.isin(parts, [SURREAL_PART_LABEL[n] for n in LIMB_PARTS])
    regions = {"person": (parts > 0) & (parts != OUTSIDE_FRAME), "limbs": limb,
               "background": parts == 0}
    magnitude = np.linalg.norm(truth, axis=-1)
    default = get_backend("dis")
    methods = {
        "dis (ours, default)": default.flow,
        "dis, no full-res refine (previous)": get_backend("dis", full_resolution_iterations=0).flow,
        "dis, colour refine (option)": get_backend("dis", full_resolution_iterations=0,
                                                   colour_warps=3).flow,
        "tvl1 (ours, before)": get_backend("tvl1").flow,
        "skimage tvl1": skimage_flow,
        "opencv DIS medium": opencv_flow(
            lambda: cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)),
        "opencv DeepFlow": opencv_flow(cv2.optflow.createOptFlow_DeepFlow),
        "opencv DualTVL1": opencv_flow(cv2.optflow.createOptFlow_DualTVL1),
        "zero flow": lambda p: np.zeros(p.shape[:1] + p.shape[2:4] + (2,), dtype=np.float32),
    }
    for overrides in sweep:
        label = "dis " + " ".join(f"{_DIS_SHORT[k]}{v:g}" for k, v in overrides.items())
        methods[label] = get_backend("dis", **{**default.params, **overrides}).flow
    bins = [f"{lo:g}-{hi:g}" if np.isfinite(hi) else f">{lo:g}" for lo, hi in DISPLACEMENT_BINS]
    print(f"\ndemo examples with ground truth: {len(pairs)} pairs of 224x224 crops ({num_examples} "
          f"examples of seed {seed}, every {pair_step}th pair), 1 thread; pairs/s per core from "
          f"CPU time; mean EPE in crop px by true displacement (crop px); x tvl1: limb EPE over "
          f"tvl1's; pixels per cell in the last rows; default {default.params}")
    print(f"{'method':<34} {'pairs/s':>8} {'x tvl1':>7} {'region':<11} "
          + " ".join(f"{b:>7}" for b in bins) + f" {'all':>7}")
    errors, rates = {}, {}
    for name, method in methods.items():
        method(pairs[:1])                                            # warm-up, untimed
        start = time.process_time()
        flow = method(pairs)
        rates[name] = len(pairs) / max(time.process_time() - start, 1e-9)
        errors[name] = np.linalg.norm(flow - truth, axis=-1)
    limb_error = {name: float(error[limb].mean()) for name, error in errors.items()}
    for name, error in errors.items():
        ratio = limb_error[name] / limb_error["tvl1 (ours, before)"]
        for i, (region, mask) in enumerate(regions.items()):
            cells = [error[mask & (magnitude >= lo) & (magnitude < hi)] for lo, hi in DISPLACEMENT_BINS]
            text = " ".join(f"{c.mean():>7.3f}" if c.size else f"{'-':>7}" for c in cells)
            label = f"{name:<34} {rates[name]:>8.1f} {ratio:>7.2f}" if i == 0 else " " * 51
            print(f"{label} {region:<11} {text} {error[mask].mean():>7.3f}")
    for region, mask in regions.items():
        counts = [int((mask & (magnitude >= lo) & (magnitude < hi)).sum()) for lo, hi in DISPLACEMENT_BINS]
        print(f"{'pixels':<51} {region:<11} " + " ".join(f"{c:>7}" for c in counts)
              + f" {int(mask.sum()):>7}")
    ratio = limb_error["dis (ours, default)"] / limb_error["tvl1 (ours, before)"]
    goals.record("crop_flow_limbs", f"{ratio:.2f}x ({limb_error['dis (ours, default)']:.3f} px)",
                 goals.verdict(ratio <= GOAL_LIMB_RATIO))
    rate = rates["dis (ours, default)"]
    goals.record("crop_flow_rate", f"{rate:.0f}", goals.verdict(rate >= GOAL_PAIRS_PER_S))


def skimage_flow(pairs: np.ndarray) -> np.ndarray:
    """scikit-image's ``optical_flow_tvl1`` at its defaults on each pair's grey levels.

    (B, 2, H, W, 3) uint8 -> (B, H, W, 2) float32 flow in crop px, x then y.
    """
    flows = []
    for first, second in pairs:
        rows_cols = skimage_tvl1(cv2.cvtColor(first, cv2.COLOR_RGB2GRAY),
                                 cv2.cvtColor(second, cv2.COLOR_RGB2GRAY))
        flows.append(np.moveaxis(rows_cols[::-1], 0, -1))
    return np.stack(flows).astype(np.float32)


def tvl1_comparison(methods: dict[str, Callable[[np.ndarray], np.ndarray]], count: int, *,
                    rng: np.random.Generator) -> None:
    """Print s/pair and EPE of each flow method on the same known-motion pairs of every set."""
    seconds = {name: [] for name in methods}
    rows = []
    for motion, kwargs in MOTIONS.items():
        parts = []
        for photo, texture in PHOTOS:
            image = getattr(skimage.data, photo)()
            if motion.startswith("limb"):
                parts.append(known_limb_flow_pairs(image, getattr(skimage.data, texture)(),
                                                   count // 2, rng=rng, **kwargs))
            else:
                parts.append(known_flow_pairs(image, count // 2, rng=rng, **kwargs) + (None,))
        pairs, truth = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        limb = None if parts[0][2] is None else np.concatenate([p[2] for p in parts])
        if not rows:
            for method in methods.values():                  # warm-up, untimed
                method(pairs[:1])
        # Alternate the order between sets so that no method is always timed first.
        order = list(methods.items())[::-1 if len(seconds[next(iter(methods))]) % 2 else 1]
        for name, method in order:
            start = time.perf_counter()
            flow = method(pairs)
            seconds[name].append((time.perf_counter() - start) / len(pairs))
            rows.append((motion, name, _errors(flow, truth, limb)))
        zero = _errors(np.zeros_like(truth), truth, limb)
        rows.append((motion, "zero flow", zero))
        rows.append((motion, f"|true flow| {np.linalg.norm(truth, axis=-1).mean():.2f} px", None))

    median = {name: statistics.median(times) for name, times in seconds.items()}
    print(f"\nTV-L1 on 224x224 crops, 1 thread: default {get_backend('tvl1').params}, previous "
          f"{PREVIOUS_TVL1}, scikit-image optical_flow_tvl1 defaults (grey levels); beside them "
          f"the crop-flow default dis {get_backend('dis').params}")
    print(f"{'method':<30} {'s/pair':>8} {'pairs/s/core':>13} {'x previous':>11}")
    for name, value in median.items():
        print(f"{name:<30} {value:>8.4f} {1 / value:>13.2f} "
              f"{median['tvl1 previous'] / value:>11.2f}")
    print(f"\nmean end-point error in crop px, {count} pairs per motion set "
          f"(half on each of {', '.join(p for p, _ in PHOTOS)})")
    print(f"{'motion':<26} {'method':<30} {'inner':>7} {'all':>7} {'limb':>7} {'limb >3px':>10}")
    for motion, name, errors in rows:
        if errors is None:
            print(f"{motion:<26} {name}")
            continue
        cells = [f"{e:>7.3f}" if e is not None else f"{'-':>7}" for e in errors[:3]]
        share = f"{100 * errors[3]:>9.1f}%" if errors[3] is not None else f"{'-':>10}"
        print(f"{motion:<26} {name:<30} {' '.join(cells)} {share}")
    print(f"inner: ignoring a {MARGIN} px border; all: the whole crop; limb: limb pixels (inner); "
          "limb >3px: share of them off by more than 3 px")


def _errors(flow: np.ndarray, truth: np.ndarray, limb: np.ndarray | None) -> tuple:
    """(EPE inner, EPE all, EPE on the limb or None, share of limb pixels > 3 px off or None)."""
    inner, whole = end_point_error(flow, truth, margin=MARGIN), end_point_error(flow, truth)
    if limb is None:
        return inner, whole, None, None
    border = (slice(None), slice(MARGIN, -MARGIN), slice(MARGIN, -MARGIN))
    error = np.linalg.norm(flow - truth, axis=-1)[border][limb[border]]
    return inner, whole, float(error.mean()), float((error > 3).mean())


def demo_video_accuracy(backend: FlowBackend, *, num_frames: int = 16, size: int = 224) -> None:
    """EPE of ``backend`` on centre crops of the panning demo video against its known motion."""
    with tempfile.TemporaryDirectory() as tmp:
        video = make_demo_backgrounds(tmp, num_videos=1, num_frames=num_frames)[0]
        frames = read_clip(video, start=0, length=num_frames).frames
        truth = ground_truth_camera_motion(video)[:num_frames - 1]
    top, left = (frames.shape[1] - size) // 2, (frames.shape[2] - size) // 2
    crops = frames[:, top:top + size, left:left + size]
    flow = backend.flow(np.stack((crops[:-1], crops[1:]), axis=1))
    uniform = np.broadcast_to(truth[:, None, None, :], flow.shape).astype(np.float32)
    median_error = np.linalg.norm(np.median(flow.reshape(len(flow), -1, 2), axis=1) - truth, axis=1)
    print(f"\ndemo video {video.name} (pure pan, {len(flow)} pairs of {size}x{size} centre crops, "
          f"|motion| {np.linalg.norm(truth, axis=1).mean():.2f} px): EPE inner "
          f"{end_point_error(flow, uniform, margin=16):.3f}, EPE all "
          f"{end_point_error(flow, uniform):.3f}, error of the median flow "
          f"{median_error.mean():.3f} px")


if __name__ == "__main__":
    main()
