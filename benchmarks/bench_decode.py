"""Background-video decoding speed with OpenCV, per container and resolution.

Columns: ``decode`` = source frames/s of a plain sequential ``cv2.VideoCapture.read`` loop (BGR
frames, the FFmpeg decoder plus OpenCV's colour conversion; ``cv2.imread`` for a jpg folder);
``read_clip`` = output 240x320 RGB frames/s of ``synthgen.sources.kinetics.read_clip`` over the
whole video resampled to 30 fps (decode + colour + cover-resize + crop). Median of ``--repeats``
runs; ``threads`` is FFmpeg's decoder thread count (``auto``: OpenCV's default).

Videos: the demo background set (``synthgen.demo.backgrounds``; mp4/avi/mkv/webm/jpg at several
sizes) written to a temporary directory, plus any ``--video`` given (e.g. real Kinetics clips).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import cv2

from synthgen.demo.backgrounds import make_demo_backgrounds
from synthgen.sources.kinetics import num_frames_30fps, read_clip
from synthgen.sources.video import frame_files, open_capture, probe


def _decode_only(path: Path, threads: int | None) -> int:
    if path.is_dir():
        for f in frame_files(path):
            cv2.imread(str(f))
        return len(frame_files(path))
    cap = open_capture(path, threads=threads)
    count = 0
    while cap.read()[0]:
        count += 1
    cap.release()
    return count


def _timed(fn, repeats: int) -> tuple[float, int]:
    times, count = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        count = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), count


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="bench_decode", description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=90, help="length of each demo video, frames at 30 fps")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--video", type=Path, action="append", default=[], help="extra video file(s) to time")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        videos = make_demo_backgrounds(tmp, num_frames=args.frames) + list(args.video)
        print(f"demo backgrounds: {len(videos) - len(args.video)} videos of {args.frames} frames at 30 fps "
              f"written in {time.perf_counter() - start:.1f} s")
        header = f"{'video':<24} {'container':<9} {'source':>9} {'fps':>4} {'threads':>7} " \
                 f"{'decode f/s':>10} {'read_clip f/s':>13}"
        print(header)
        print("-" * len(header))
        for path in videos:
            info = probe(path)
            container = "jpg dir" if info.is_folder else path.suffix.lstrip(".")
            for threads in ([None] if info.is_folder else [1, None]):
                decode_s, decoded = _timed(lambda: _decode_only(path, threads), args.repeats)
                clip_rate = "-"
                if threads is None:  # read_clip decodes with OpenCV's default threads
                    length = num_frames_30fps(info)
                    clip_s, _ = _timed(lambda: read_clip(path, start=0, length=length, info=info), args.repeats)
                    clip_rate = f"{length / clip_s:.0f}"
                print(f"{path.name[:24]:<24} {container:<9} {info.height:>4}x{info.width:<4} {info.fps:>4g} "
                      f"{'auto' if threads is None else threads:>7} {decoded / decode_s:>10.0f} {clip_rate:>13}")


if __name__ == "__main__":
    main()
