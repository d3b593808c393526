"""An installed wheel works outside the repository: its named pipelines are package data."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_installed_in_a_fresh_venv_runs_a_tiny_build(small_demo, tmp_path):
    source = tmp_path / "source"  # a copy: building leaves build/ and *.egg-info beside the code
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    for package in ("synthgen", "trainer"):
        shutil.copytree(REPO / package, source / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(wheels), str(source)], check=True, capture_output=True, timeout=300)
    (wheel,) = wheels.glob("synthgen-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "synthgen/pipelines/demo.toml" in names and "synthgen/pipelines/train_demo.toml" in names
    assert not any(n.startswith("tests/") for n in names)

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = Path(sysconfig.get_paths(vars={"base": str(venv), "platbase": str(venv)})["purelib"])
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
                    "-q", "--no-deps", "--no-index", str(wheel)], check=True, capture_output=True,
                   timeout=300, env=env)
    # Then the dependencies come from this environment's site-packages (a plain path entry: its
    # own .pth files, among them this checkout's editable install, are not run); synthgen itself
    # only from the wheel.
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import synthgen; print(synthgen.__file__)"],
                           cwd=outside, env=env, capture_output=True, text=True, check=True)
    assert where.stdout.strip().startswith(str(site))
    done = subprocess.run(
        [str(venv / "bin" / "synthgen"), "build", "--kinetics", str(small_demo.kinetics_dir),
         "--surreal", str(small_demo.surreal_dir), "--out", str(outside / "tiny.zarr"),
         "--pipeline", "demo", "--num-examples", "2", "--cache", str(outside / "cache"),
         "--split", "all", "--set", "clip.length=8", "--serial"],
        cwd=outside, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (outside / "tiny.zarr" / "zarr.json").is_file()
