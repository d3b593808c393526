"""Camera motion: our TV-L1 vs scikit-image's TV-L1 at defaults, and the cache's tile trade-off.

Known-motion videos are the demo backgrounds (``synthgen.demo.backgrounds``), read as the
pipeline reads them (30 fps, resized to cover 240x320); flow of the centre 240x320 window. For each
implementation: median ms per frame pair (one pair per call, one core: OpenCV limited to one
thread), pairs per second per core, and the camera-motion error = median over pairs of
max(|dx error|, |dy error|) in pixels against the videos' ground truth. Then, for the cache: the
window median taken from per-tile medians vs the median of the full flow over the window, and the
compressed float16 size per frame pair, for several tile sizes.

``python -m benchmarks camera_motion`` or ``python benchmarks/bench_camera_motion.py --pairs 6``.
"""

from __future__ import annotations

import argparse
import io
import itertools
import tempfile
import time

import cv2
import numpy as np
from skimage.registration import optical_flow_tvl1 as skimage_tvl1

from synthgen.config import CameraMotionConfig
from synthgen.demo.backgrounds import ground_truth_camera_motion, make_demo_backgrounds
from synthgen.sources.kinetics import iter_resized_frames
from synthgen.steps.camera_motion import camera_motion, tile_medians, tile_weights, window_camera_motion
from synthgen.steps.tvl1 import optical_flow_tvl1


def _ours(cfg: CameraMotionConfig):
    def flow(frame0, frame1):
        return optical_flow_tvl1(frame0, frame1, attachment=cfg.attachment, tightness=cfg.tightness,
                                 num_warp=cfg.num_warp, num_iter=cfg.num_iter,
                                 num_levels=cfg.num_levels, downscale=cfg.downscale)
    return flow


def _skimage(frame0, frame1):
    gray0 = cv2.cvtColor(frame0, cv2.COLOR_RGB2GRAY)
    gray1 = cv2.cvtColor(frame1, cv2.COLOR_RGB2GRAY)
    return np.moveaxis(skimage_tvl1(gray0, gray1)[::-1], 0, -1)  # (v, u) -> (H, W, x/y)


def _load(video, num_frames):
    frames = np.stack(list(itertools.islice(iter_resized_frames(video), num_frames)))
    h, w = frames.shape[1:3]
    crop = ((h - 240) // 2, (w - 320) // 2)
    truth = ground_truth_camera_motion(video, crop_yx=crop)
    return frames, crop, truth


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5, help="frame pairs per video (default 5)")
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)
    cfg = CameraMotionConfig()
    with tempfile.TemporaryDirectory() as tmp:
        videos = make_demo_backgrounds(tmp, seed=0, num_videos=6, num_frames=2 * args.pairs + 2)
        data = [(v.stem, *_load(v, 2 * args.pairs + 1)) for v in videos]
    methods = [("synthgen tvl1 (ds%d w%d i%d l%d a%g)" % (cfg.downscale, cfg.num_warp, cfg.num_iter,
                                                          cfg.num_levels, cfg.attachment), _ours(cfg), True),
               ("skimage tvl1 defaults", _skimage, False)]
    rows, per_video = [], {}
    flows_ours = {}
    for label, fn, keep in methods:
        times, errors, errors_robust = [], [], []
        for name, frames, crop, truth in data:
            (y, x) = crop
            window_frames = frames[:, y:y + 240, x:x + 320]
            video_err = []
            for t in range(0, 2 * args.pairs, 2):
                if keep:  # the whole resized frame, for the cache table
                    flows_ours.setdefault(name, []).append(fn(frames[t], frames[t + 1]))
                start = time.perf_counter()
                window = fn(window_frames[t], window_frames[t + 1])
                times.append(time.perf_counter() - start)
                errors.append(np.abs(camera_motion(window) - truth[t]).max())
                errors_robust.append(np.abs(camera_motion(window, inlier_radius=cfg.inlier_radius)
                                            - truth[t]).max())
                video_err.append(errors[-1])
            per_video.setdefault(name, []).append(np.median(video_err))
        ms = 1000 * np.median(times)
        rows.append((label, ms, 1000 / ms, np.median(errors), np.median(errors_robust)))
    print(f"{len(times)} frame pairs from {len(data)} demo videos, 240x320 windows, one core")
    print(f"{'implementation':34s} {'ms/pair':>8s} {'pairs/s/core':>13s} {'cam err px':>11s} "
          f"{'+inlier pass':>13s}")
    for label, ms, rate, err, err_robust in rows:
        print(f"{label:34s} {ms:8.1f} {rate:13.1f} {err:11.4f} {err_robust:13.4f}")
    print(f"speed-up ours / skimage: {rows[1][1] / rows[0][1]:.1f}x per frame pair")
    print("\nper-video camera-motion error (median over pairs, px): " + ", ".join(
        f"{name} {a:.3f} vs {b:.3f}" for name, (a, b) in per_video.items()))
    print("\ncache: window median from per-tile medians vs full flow median (px), size per pair")
    print(f"{'tile':>5s} {'err median':>11s} {'err max':>8s} {'bytes/pair':>11s} {'ms/pair':>8s}")
    for tile in (8, 16, 32):
        errs, sizes, ms = [], [], []
        for name, flows in flows_ours.items():
            h, w = flows[0].shape[:2]
            start = time.perf_counter()
            medians = np.stack([tile_medians(f, tile=tile) for f in flows])
            ms.append(1000 * (time.perf_counter() - start) / len(flows))
            buf = io.BytesIO()
            np.savez_compressed(buf, medians=medians.astype(np.float16))
            sizes.append(buf.tell() / len(flows))
            for y, x in {(0, 0), (h - 240, w - 320), ((h - 240) // 2, (w - 320) // 2)}:
                weights = tile_weights((h, w), (y, x), (240, 320), tile=tile)
                got = window_camera_motion(medians, weights)
                full = np.stack([camera_motion(f[y:y + 240, x:x + 320]) for f in flows])
                errs.extend(np.abs(got - full).max(axis=1))
        print(f"{tile:5d} {np.median(errs):11.4f} {np.max(errs):8.4f} {np.median(sizes):11.0f} "
              f"{np.median(ms):8.2f}")


if __name__ == "__main__":
    main()
