"""GPU figures of the build (issue 15, goal 4): crop flow in examples/s per GPU (TV-L1 in torch,
batched; FlowNet 2.0 in float16) and camera-motion TV-L1 pairs/s on a GPU, each beside its CPU
baseline measured in the same run.

CPU part (always; small, one thread): on the same 224x224 crop pairs, the NumPy TV-L1 (``tvl1``)
against the torch one on the CPU (``tvl1_torch``), pairs/s and their ratio, and the largest and
mean difference between their flows; the same at the camera-motion settings on 240x320 frames
of a panning demo background video (TV-L1 alone, then ``pair_flows`` whole: phase-correlation
start, reliability, DIS fallback).

CUDA part, or "open (no CUDA device)" without one: ``tvl1_torch`` at several batch sizes (pairs
per call; a build shard calls it once per example, 30 pairs), FlowNet 2.0 (random weights; speed
does not depend on them) in float32, float16 autocast (``crop_flow.mixed_precision``, what a GPU
build runs) and ``.half()`` weights; camera-motion TV-L1 at several batch sizes and
``pair_flows`` with the torch solver. Examples/s = pairs/s / 30 (a 31-frame example has 30
pairs); peak GPU memory from ``torch.cuda.max_memory_allocated``. Median of ``--repeats`` calls
after one warm-up call, synchronised.

    python -m benchmarks gpu -- --pairs 8 --repeats 3 --batches 30 240 960
"""

from __future__ import annotations

import argparse
import functools
import statistics
import tempfile
import time
from collections.abc import Callable

import cv2
import numpy as np
import skimage.data
import torch

from benchmarks import goals
from synthgen.config import CameraMotionConfig, ClipConfig
from synthgen.demo.backgrounds import make_demo_backgrounds
from synthgen.sources.kinetics import read_clip
from synthgen.steps.camera_motion import pair_flows
from synthgen.steps.crop_flow import get_backend
from synthgen.steps.tvl1 import optical_flow_tvl1_batch
from synthgen.steps.tvl1_torch import optical_flow_tvl1_torch
from synthgen.testing.flow_pairs import known_flow_pairs

#: Crop pairs per example (a clip of ``ClipConfig.length`` frames).
PAIRS_PER_EXAMPLE = ClipConfig().length - 1
#: Frames of the Kinetics video of issue 15's camera-motion goal.
VIDEO_FRAMES = 300
#: The message where a figure needs a GPU this machine does not have.
OPEN = "open (no CUDA device)"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench_gpu", description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=4, help="pairs of the CPU comparison")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls (median)")
    parser.add_argument("--batches", type=int, nargs="+", default=[30, 240, 960],
                        help="pairs per call on CUDA")
    parser.add_argument("--flownet", default="flownet2", help="FlowNet model timed on CUDA")
    parser.add_argument("--device", default="cuda",
                        help="device of the GPU part (cpu: run it here, to check the script)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    crops, _ = known_flow_pairs(skimage.data.astronaut(), args.pairs,
                                rng=np.random.default_rng(0), max_shift=4.0)
    frames = _camera_pairs(args.pairs)
    cpu_comparison(crops, frames, args.repeats)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(f"\nCUDA: crop flow examples/s per GPU (tvl1_torch batched, {args.flownet} float16) "
              f"and camera-motion pairs/s on a GPU: {OPEN}")
        goals.record("build_gpu", "-", "open: no GPU")
        return
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "the CPU (check)"
    print(f"\n{device}: {name}; {PAIRS_PER_EXAMPLE} pairs per example")
    device_crop_flow(crops, args.batches, args.repeats, args.flownet, device)
    device_camera_motion(frames, args.batches, args.repeats, device)


def cpu_comparison(crops: np.ndarray, frames: tuple[np.ndarray, np.ndarray], repeats: int
                   ) -> None:
    """Print NumPy vs torch-on-CPU TV-L1 pairs/s and flow differences, crops and camera motion."""
    crop_numpy = get_backend("tvl1", batch_size=len(crops))
    crop_torch = get_backend("tvl1_torch", batch_size=len(crops))
    cam = CameraMotionConfig()
    cam_kwargs = dict(attachment=cam.attachment, tightness=cam.tightness, num_warp=cam.num_warp,
                      num_iter=cam.num_iter, num_levels=cam.num_levels, downscale=cam.downscale)
    cam_torch = functools.partial(optical_flow_tvl1_torch, device="cpu")
    rows = [
        ("crop flow 224x224", crops, crop_numpy.flow, crop_torch.flow),
        ("camera TV-L1 240x320", frames,
         lambda f: optical_flow_tvl1_batch(*f, **cam_kwargs),
         lambda f: cam_torch(*f, **cam_kwargs)),
        ("camera pair_flows 240x320", frames,
         lambda f: pair_flows(*f, cam).flow,
         lambda f: pair_flows(*f, cam, tvl1=cam_torch).flow),
    ]
    print(f"CPU, 1 thread: NumPy TV-L1 vs torch TV-L1 on the CPU, same pairs, median of {repeats}")
    print(f"{'':<27}{'pairs':>6}{'numpy pairs/s':>15}{'torch pairs/s':>15}{'torch/numpy':>13}"
          f"{'max diff px':>13}{'mean diff px':>14}")
    for label, data, numpy_flow, torch_flow in rows:
        count = len(data) if isinstance(data, np.ndarray) else len(data[0])
        (numpy_rate, ours), (torch_rate, theirs) = (_rate(f, data, count, repeats)
                                                    for f in (numpy_flow, torch_flow))
        diff = np.linalg.norm(np.nan_to_num(ours) - np.nan_to_num(theirs), axis=-1)
        print(f"{label:<27}{count:>6}{numpy_rate:>15.2f}{torch_rate:>15.2f}"
              f"{torch_rate / numpy_rate:>13.2f}{diff.max():>13.2e}{diff.mean():>14.2e}")


def device_crop_flow(crops: np.ndarray, batches: list[int], repeats: int, flownet: str,
                     device: torch.device) -> None:
    """Print tvl1_torch and FlowNet (float32, float16 autocast, .half()) examples/s per GPU."""
    print(f"\ncrop flow 224x224 on one {device.type} device: median of {repeats} calls")
    print(f"{'backend':<34}{'pairs/call':>11}{'pairs/s':>10}{'examples/s':>12}{'peak GiB':>10}")
    best = 0.0
    for batch in batches:
        pairs = _tile(crops, batch)
        backend = get_backend("tvl1_torch", device=str(device), batch_size=batch)
        best = max(best, _print_row("tvl1_torch", backend.flow, pairs, repeats, device))
    goals.record("build_gpu", f"{best:.1f} (tvl1_torch crop flow, {device.type})",
                 "met" if device.type == "cuda" else "open: no GPU")
    for batch in sorted({min(8, *batches), min(PAIRS_PER_EXAMPLE, *batches)}):
        pairs = _tile(crops, batch)
        for label, mixed, half in (("float32", False, False), ("float16 autocast", True, False),
                                   (".half() weights", False, True)):
            if mixed and device.type != "cuda":
                continue                              # autocast is CUDA-only in the backend
            backend = get_backend(flownet, rng=np.random.default_rng(0), device=str(device),
                                  batch_size=batch, mixed_precision=mixed)
            if half:
                backend.model.half()
            _print_row(f"{flownet} {label}", backend.flow, pairs, repeats, device)
            del backend
            if device.type == "cuda":
                torch.cuda.empty_cache()


def device_camera_motion(frames: tuple[np.ndarray, np.ndarray], batches: list[int],
                         repeats: int, device: torch.device) -> None:
    """Print camera-motion TV-L1 pairs/s on one GPU and s per 300-frame video."""
    cam = CameraMotionConfig()
    solver = functools.partial(optical_flow_tvl1_torch, device=device)
    kwargs = dict(attachment=cam.attachment, tightness=cam.tightness, num_warp=cam.num_warp,
                  num_iter=cam.num_iter, num_levels=cam.num_levels, downscale=cam.downscale)
    print(f"\ncamera motion 240x320 on one {device.type} device (CameraMotionConfig TV-L1), "
          f"median of {repeats}; "
          f"s per {VIDEO_FRAMES}-frame video = {VIDEO_FRAMES - 1} pairs / pairs/s")
    print(f"{'method':<34}{'pairs/call':>11}{'pairs/s':>10}{'s/video':>12}{'peak GiB':>10}")
    for batch in sorted({1, min(8, *batches), *[min(b, VIDEO_FRAMES) for b in batches]}):
        data = tuple(_tile(f, batch) for f in frames)
        _print_row("TV-L1 (torch)", lambda f: solver(*f, **kwargs), data, repeats, device,
                   per_video=True)
    data = tuple(_tile(f, min(8, *batches)) for f in frames)
    _print_row("pair_flows, TV-L1 on the device", lambda f: pair_flows(*f, cam, tvl1=solver).flow,
               data, repeats, device, per_video=True)


def _print_row(label: str, flow: Callable, data, repeats: int, device: torch.device, *,
               per_video: bool = False) -> float:
    """Time ``flow(data)`` on ``device``; print pairs/s, examples/s (or s per 300-frame video)
    and peak GPU memory; return the examples/s (or s per video)."""
    count = len(data) if isinstance(data, np.ndarray) else len(data[0])
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    rate, _ = _rate(flow, data, count, repeats,
                    sync=functools.partial(torch.cuda.synchronize, device) if cuda else _no_sync)
    peak = f"{torch.cuda.max_memory_allocated(device) / 2**30:>10.2f}" if cuda else f"{'-':>10}"
    scaled = (VIDEO_FRAMES - 1) / rate if per_video else rate / PAIRS_PER_EXAMPLE
    print(f"{label:<34}{count:>11}{rate:>10.1f}{scaled:>12.2f}{peak}")
    return scaled


def _no_sync() -> None:
    """Nothing to wait for on the CPU."""


def _rate(flow: Callable, data, count: int, repeats: int, *, sync: Callable = _no_sync
          ) -> tuple[float, np.ndarray]:
    """(pairs/s, last result) of ``flow(data)``: median of ``repeats`` calls after a warm-up."""
    result = flow(data)
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        result = flow(data)
        sync()
        times.append(time.perf_counter() - start)
    return count / statistics.median(times), result


def _tile(items: np.ndarray, count: int) -> np.ndarray:
    """The first ``count`` of ``items`` repeated cyclically (a batch of any size)."""
    return np.ascontiguousarray(items[np.arange(count) % len(items)])


def _camera_pairs(count: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` consecutive 240x320 RGB frame pairs of a panning demo background video, read as
    the pipeline reads Kinetics."""
    with tempfile.TemporaryDirectory() as tmp:
        video = make_demo_backgrounds(tmp, num_videos=1, num_frames=count + 1)[0]
        frames = read_clip(video, start=0, length=count + 1).frames
    return np.ascontiguousarray(frames[:-1]), np.ascontiguousarray(frames[1:])


if __name__ == "__main__":
    main()
