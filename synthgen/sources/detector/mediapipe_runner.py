"""Standalone MediaPipe Pose runner: a video in, BlazePose-33 landmarks per frame out (``.npz``).

Runs ONLY with the isolated detector environment's Python (``make detector`` creates
``.venv-detector`` with ``mediapipe==0.10.21``, which pins numpy<2 and its own OpenCV and must never
enter the main environment). It imports nothing from synthgen;
:func:`synthgen.sources.detector.run_mediapipe` starts it as a subprocess and reads its output with
:func:`synthgen.sources.keypoints.read_blazepose_npz`.

Usage::

    .venv-detector/bin/python synthgen/sources/detector/mediapipe_runner.py VIDEO OUT.npz

Output arrays (frame ``i`` = the ``i``-th decoded frame):

- ``landmarks`` (N, 33, 2) float32: frame pixels (x, y) of the 33 BlazePose landmarks (0 where
  nothing was detected);
- ``visibility`` (N, 33) float32: MediaPipe's landmark visibility in [0, 1];
- ``detected`` (N,) bool: a person was found on the frame;
- ``width``, ``height`` (int), ``fps`` (float): of the video.

The pose landmark model used (``model_complexity=1``, "full") ships inside the mediapipe wheel,
so the runner needs no network. Tracking mode (``static_image_mode=False``) follows one person.
"""

import argparse
import sys

import cv2
import mediapipe as mp
import numpy as np

NUM_LANDMARKS = 33


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video")
    parser.add_argument("out")
    parser.add_argument("--min-detection-confidence", type=float, default=0.5)
    args = parser.parse_args(argv)
    capture = cv2.VideoCapture(args.video)
    if not capture.isOpened():
        print(f"{args.video}: cannot open the video", file=sys.stderr)
        return 2
    width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
    height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    fps = float(capture.get(cv2.CAP_PROP_FPS))
    landmarks, visibility, detected = [], [], []
    with mp.solutions.pose.Pose(static_image_mode=False, model_complexity=1,
                                enable_segmentation=False,
                                min_detection_confidence=args.min_detection_confidence) as pose:
        while True:
            ok, bgr = capture.read()
            if not ok:
                break
            result = pose.process(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            points = np.zeros((NUM_LANDMARKS, 2), np.float32)
            seen = np.zeros(NUM_LANDMARKS, np.float32)
            if result.pose_landmarks is not None:
                for k, mark in enumerate(result.pose_landmarks.landmark):
                    points[k] = (mark.x * width, mark.y * height)
                    seen[k] = mark.visibility
            landmarks.append(points)
            visibility.append(seen)
            detected.append(result.pose_landmarks is not None)
    capture.release()
    if not landmarks:
        print(f"{args.video}: no frame decodes", file=sys.stderr)
        return 2
    np.savez(args.out, landmarks=np.stack(landmarks), visibility=np.stack(visibility),
             detected=np.asarray(detected), width=width, height=height, fps=fps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
