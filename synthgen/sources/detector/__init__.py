"""An isolated 2D person-keypoint detector (MediaPipe Pose), run as a subprocess.

MediaPipe 0.10.21 pins numpy<2 and a non-headless OpenCV 4.11, both incompatible with the main
environment, so it lives in its own virtual environment and is only ever run as a separate
process: :mod:`synthgen.sources.detector.mediapipe_runner` (a standalone script that imports nothing from
synthgen) writes BlazePose-33 landmarks to an ``.npz``, read back with
:func:`synthgen.sources.keypoints.read_blazepose_npz`.

Where the detector's Python is found (:func:`detector_python`), first match wins:

1. the environment variable ``SYNTHGEN_DETECTOR_PYTHON`` (a Python with ``mediapipe`` installed);
2. in a source checkout only, ``.venv-detector/bin/python`` at the repository root, created by
   ``make detector`` (``python3.11 -m venv .venv-detector && .venv-detector/bin/pip install
   mediapipe==0.10.21``), used only once the install finished (``.venv-detector/.installed``).

An installed wheel has no repository root: there, make that environment anywhere and name its
Python in ``SYNTHGEN_DETECTOR_PYTHON``.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from synthgen.sources.keypoints import VideoKeypoints, read_blazepose_npz

#: Environment variable naming the detector environment's Python.
ENV_VAR = "SYNTHGEN_DETECTOR_PYTHON"
#: The repository root when synthgen runs from a source checkout (None for an installed wheel).
_ROOT = Path(__file__).resolve().parents[3]
CHECKOUT = _ROOT if (_ROOT / "pyproject.toml").is_file() else None
#: ``make detector``'s environment, at the repository root of a source checkout.
DEFAULT_VENV = CHECKOUT / ".venv-detector" if CHECKOUT is not None else None
#: The runner script, run with the detector's Python.
RUNNER = Path(__file__).resolve().with_name("mediapipe_runner.py")


class DetectorUnavailableError(RuntimeError):
    """No detector environment: the message says how to make one."""


def detector_python() -> Path:
    """The Python of the detector environment (module docstring).

    Raises
    ------
    DetectorUnavailableError
        ``SYNTHGEN_DETECTOR_PYTHON`` names no file, or it is unset and ``make detector`` has not
        (successfully) run.
    """
    named = os.environ.get(ENV_VAR)
    if named:
        if not Path(named).is_file():
            raise DetectorUnavailableError(f"{ENV_VAR}={named}: no such Python")
        return Path(named)
    if DEFAULT_VENV is None:
        raise DetectorUnavailableError(
            f"no MediaPipe detector environment: make one (python3.11 -m venv DIR && "
            f"DIR/bin/pip install mediapipe==0.10.21) and set {ENV_VAR}=DIR/bin/python, or pass "
            f"keypoints from a file with --keypoints")
    python = DEFAULT_VENV / "bin" / "python"
    if python.is_file() and (DEFAULT_VENV / ".installed").is_file():
        return python
    raise DetectorUnavailableError(
        f"the MediaPipe detector environment is missing ({DEFAULT_VENV} not installed and "
        f"{ENV_VAR} unset): run `make detector` at the repository root (it needs python3.11 and the "
        f"mediapipe==0.10.21 wheel), or pass keypoints from a file with --keypoints")


def run_mediapipe(video: str | Path, *, out: str | Path | None = None,
                  python: str | Path | None = None, timeout: float | None = None,
                  stream=None) -> VideoKeypoints:
    """Detect one person's keypoints on every frame of a video with MediaPipe Pose.

    Parameters
    ----------
    video : str or Path
    out : str or Path, optional
        Keep the runner's ``.npz`` here (default: a temporary file, deleted).
    python : str or Path, optional
        The detector's Python (default :func:`detector_python`).
    timeout : float, optional
        Seconds before the runner is stopped.
    stream : file, optional
        Receives the runner's messages (default ``sys.stderr``).

    Returns
    -------
    VideoKeypoints
        OpenPose-18 layout (``layout`` "blazepose33"), one row per decoded frame.

    Raises
    ------
    DetectorUnavailableError
        No detector environment.
    RuntimeError
        The runner failed (its last messages are quoted).
    """
    python = Path(python) if python is not None else detector_python()
    stream = stream or sys.stderr
    with tempfile.TemporaryDirectory(prefix="synthgen-detector-") as scratch:
        target = Path(out) if out is not None else Path(scratch) / "landmarks.npz"
        target.parent.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        env.setdefault("GLOG_minloglevel", "2")
        done = subprocess.run([str(python), str(RUNNER), str(video), str(target)], env=env,
                              capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            tail = "\n".join(done.stderr.strip().splitlines()[-8:])
            raise RuntimeError(f"MediaPipe runner failed on {video} (exit {done.returncode}):\n"
                               f"{tail}")
        if done.stdout.strip():
            print(done.stdout.strip(), file=stream)
        keypoints = read_blazepose_npz(target)
    return dataclasses.replace(keypoints, source=str(target) if out is not None
                               else f"mediapipe:{video}")
