"""Crop flow: pairs per second per CPU core for each backend at 224x224, and the accuracy
(mean end-point error) of the classical default on crops with known flow.

Speed runs with one thread (torch and OpenCV), so the figure is per core; FlowNet models use
random weights (speed does not depend on the values). TV-L1 is the baseline of the ratio column,
measured in the same run. Accuracy uses crops of scikit-image photos moved by a known sub-pixel
translation or smooth affine motion (``synthgen.steps.crop_flow.synthetic``), and centre crops of
a demo background video (a pure camera pan, MJPG-compressed, read by the Kinetics reader) whose
per-frame camera motion is known (``synthgen.demo.backgrounds``).

    python -m benchmarks crop_flow -- --pairs 4 --repeats 3 --backends tvl1 flownet2s flownet2
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import cv2
import numpy as np
import skimage.data
import torch

from synthgen.demo.backgrounds import ground_truth_camera_motion, make_demo_backgrounds
from synthgen.sources.kinetics import read_clip
from synthgen.steps.crop_flow import BACKENDS, FlowBackend, get_backend
from synthgen.steps.crop_flow.synthetic import end_point_error, known_flow_pairs

#: Motions of the accuracy table: name -> known_flow_pairs keyword arguments.
MOTIONS = {
    "shift <= 4 px": dict(max_shift=4.0),
    "shift <= 10 px": dict(max_shift=10.0),
    "affine (4 px, 2 deg, 3%)": dict(max_shift=4.0, max_rotation_deg=2.0, max_scale=0.03),
}
PHOTOS = ("astronaut", "coffee")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench_crop_flow", description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=2, help="pairs per timed call")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per backend (median)")
    parser.add_argument("--backends", nargs="+", default=["tvl1", "flownet2s", "flownet2c",
                                                          "flownet2"], choices=BACKENDS)
    parser.add_argument("--accuracy-pairs", type=int, default=4, help="pairs per accuracy cell")
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
        backend = get_backend(name, rng=None if name == "tvl1" else np.random.default_rng(0),
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

    backend = get_backend("tvl1")
    print(f"\naccuracy of the default (tvl1 {backend.params}), mean end-point error in crop px, "
          f"{args.accuracy_pairs} pairs per cell")
    print(f"{'photo':<10} {'motion':<26} {'|flow|':>7} {'zero-flow':>10} {'EPE inner':>10} "
          f"{'EPE all':>8}")
    for photo in PHOTOS:
        image = getattr(skimage.data, photo)()
        for motion, kwargs in MOTIONS.items():
            pairs, truth = known_flow_pairs(image, args.accuracy_pairs, rng=rng, **kwargs)
            flow = backend.flow(pairs)
            magnitude = float(np.linalg.norm(truth, axis=-1).mean())
            print(f"{photo:<10} {motion:<26} {magnitude:>7.2f} "
                  f"{end_point_error(np.zeros_like(truth), truth, margin=16):>10.3f} "
                  f"{end_point_error(flow, truth, margin=16):>10.3f} "
                  f"{end_point_error(flow, truth):>8.3f}")
    print("EPE inner: ignoring a 16 px border (content entering or leaving the crop); "
          "zero-flow: the EPE of predicting no motion")
    demo_video_accuracy(backend)


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
