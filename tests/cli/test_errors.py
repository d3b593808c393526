"""Every bad command line or config value: one line saying what is wrong, a non-zero exit, no
traceback, and nothing created (no store, no lock, no camera-motion cache), since it is caught
before any work starts."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from synthgen.build.synthetic import build
from synthgen.cli import main as synthgen_cli
from trainer.cli import main as trainer_cli

#: Pipeline files by case name (written into the test's directory).
PIPELINES = {
    "bad_base": 'base = "no_such_base"\n',
    "base_not_a_name": "base = 3\n",
    "toml_syntax": "[clip\nlength = 8\n",
    "unknown_section": "[clips]\nlength = 8\n",
    "unknown_key": "[clip]\nlenght = 8\n",
    "wrong_type": '[clip]\nlength = "eight"\n',
    "clip_length_1": "[clip]\nlength = 1\n",
    "negative_shard": "[store]\nexamples_per_shard = -4\n",
    "bad_choice": '[superpixels]\nmethod = "opencv"\n',
    "train_syntax": "[data\n",
    "binary": "\udc9f\udcff[clip]\n",
}

#: (case, arguments after the command, text the one line must contain). ``{dir}`` is the test's
#: directory, ``{pipe:NAME}`` the file of ``PIPELINES[NAME]``.
BUILD_CASES = [
    ("unknown pipeline", ["--pipeline", "no_such_pipeline"], "no pipeline 'no_such_pipeline'"),
    ("bad base", ["--pipeline", "{pipe:bad_base}"], "bad base: no pipeline 'no_such_base'"),
    ("base not a name", ["--pipeline", "{pipe:base_not_a_name}"], "base must be a pipeline name"),
    ("TOML syntax", ["--pipeline", "{pipe:toml_syntax}"], "TOML syntax error"),
    ("binary pipeline file", ["--pipeline", "{pipe:binary}"], "binary.toml: not a UTF-8 text file"),
    ("unknown section", ["--pipeline", "{pipe:unknown_section}"], "unknown config section 'clips'"),
    ("unknown key", ["--pipeline", "{pipe:unknown_key}"], "unknown config key clip.lenght"),
    ("wrong type", ["--pipeline", "{pipe:wrong_type}"], 'clip.length = "eight": must be an integer'),
    ("clip.length = 1", ["--pipeline", "{pipe:clip_length_1}"], "clip.length = 1: must be an integer >= 2"),
    ("examples_per_shard = -4", ["--pipeline", "{pipe:negative_shard}"],
     "store.examples_per_shard = -4"),
    ("examples_per_shard = 10**9", ["--set", "store.examples_per_shard=1000000000"],
     "store.examples_per_shard = 1000000000: must be an integer >= 1 and <= 65536"),
    ("unknown SLIC method", ["--pipeline", "{pipe:bad_choice}"], "must be one of ['synthgen', 'skimage']"),
    ("--set wrong type", ["--set", "clip.length=eight"], 'clip.length = "eight"'),
    ("--set unknown key", ["--set", "clip.lenght=8"], "unknown config key clip.lenght"),
    ("--set without a dot", ["--set", "length=8"], "write --set section.key=value"),
    ("--seed -1", ["--seed", "-1"], "'--seed': -1 is not in the range x>=0"),
    ("--num-examples 0", ["--num-examples", "0"], "'--num-examples': 0 is not in the range"),
    ("--num-examples 10**12", ["--num-examples", "1000000000000"],
     "--num-examples 1000000000000: give 1 to 100000000"),
    ("--num-cpus 0", ["--num-cpus", "0"], "'--num-cpus': 0 is not in the range x>=1"),
    ("--num-cpus -3", ["--num-cpus", "-3"], "'--num-cpus': -3 is not in the range x>=1"),
    ("unknown flow backend", ["--flow", "raft"], "unknown crop-flow backend 'raft'"),
    ("FlowNet without weights", ["--flow", "flownet2s"], "needs FlowNet weights"),
    ("refused FlowNet checkpoint", ["--flow", "flownet2s", "--flow-checkpoint", "{pipe:bad_base}"],
     "corrupt"),
    ("--resume with --overwrite", ["--resume", "--overwrite"], "--resume or --overwrite, not both"),
    ("--cache is a file", ["--cache", "{pipe:bad_base}"], "is a file"),
    ("--out through a file", ["--out", "{pipe:bad_base}/out.zarr"], "cannot write"),
    ("unknown option", ["--no-such-option"], "No such option"),
    ("unknown URL protocol", ["--out", "nope://bucket/out.zarr"], "cannot open nope://"),
]

MOTION_CASES = [
    ("unknown pipeline", ["--pipeline", "no_such_pipeline"], "no pipeline 'no_such_pipeline'"),
    ("bad base", ["--pipeline", "{pipe:bad_base}"], "bad base"),
    ("unknown key", ["--pipeline", "{pipe:unknown_key}"], "unknown config key clip.lenght"),
    ("TOML syntax", ["--pipeline", "{pipe:toml_syntax}"], "TOML syntax error"),
    ("wrong type", ["--set", "camera_motion.num_iter=0"], "camera_motion.num_iter = 0"),
    ("--num-cpus 0", ["--num-cpus", "0"], "'--num-cpus': 0 is not in the range x>=1"),
]

THREEDPW_CASES = [
    ("unknown pipeline", ["--pipeline", "no_such_pipeline"], "no pipeline 'no_such_pipeline'"),
    ("bad base", ["--pipeline", "{pipe:bad_base}"], "bad base"),
    ("unknown section", ["--pipeline", "{pipe:unknown_section}"], "unknown config section"),
    ("wrong type", ["--pipeline", "{pipe:wrong_type}"], 'clip.length = "eight"'),
    ("negative shard size", ["--examples-per-shard", "-4"], "'--examples-per-shard': -4"),
    ("huge shard size", ["--examples-per-shard", "1000000000"],
     "'--examples-per-shard': 1000000000 is not in the range 1<=x<=65536"),
    ("unknown flow backend", ["--flow", "raft"], "unknown crop-flow backend 'raft'"),
    ("--num-cpus -1", ["--num-cpus", "-1"], "'--num-cpus': -1 is not in the range x>=1"),
]

DEMO_CASES = [
    ("--people 0", ["--people", "0"], "'--people': 0 is not in the range x>=1"),
    ("--people-frames 0", ["--people-frames", "0"], "'--people-frames': 0 is not in the range x>=2"),
    ("--backgrounds 0", ["--backgrounds", "0"], "'--backgrounds': 0 is not in the range x>=1"),
    ("--workers -1", ["--workers", "-1"], "'--workers': -1 is not in the range x>=1"),
    ("--seed -1", ["--seed", "-1"], "'--seed': -1 is not in the range x>=0"),
]

TRAIN_CASES = [
    ("unknown pipeline", ["--pipeline", "train_nope"], "no trainer pipeline 'train_nope'"),
    ("TOML syntax", ["--pipeline", "{pipe:train_syntax}"], "TOML syntax error"),
    ("--set bad choice", ["--set", "data.modality=depth"], 'data.modality = "depth": must be one of'),
    ("--set unknown section", ["--set", "optimiser.lr=1"], "unknown trainer config section"),
    ("--set negative", ["--set", "optim.lr=-1"], "optim.lr = -1"),
    ("--seed -1", ["--seed", "-1"], "'--seed': -1 is not in the range"),
]


def _expand(args, root: Path) -> list[str]:
    out = []
    for arg in args:
        if arg.startswith("{pipe:"):
            name = arg[len("{pipe:"):arg.index("}")]
            path = root / f"{name}.toml"
            path.write_text(PIPELINES[name], errors="surrogateescape")
            arg = str(path) + arg[arg.index("}") + 1:]
        out.append(arg)
    return out


def _check_one_line_failure(result, expected: str, root: Path) -> None:
    assert result.exit_code not in (0, None), result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), \
        repr(result.exception)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and expected in lines[0], lines[0]
    assert "Traceback" not in result.output
    made = sorted(p.name for p in root.iterdir() if not p.name.endswith(".toml"))
    assert made == ["kinetics", "surreal"] or made == [], made  # no store, lock or cache


@pytest.fixture
def inputs(tmp_path):
    """Empty dataset folders: every case must fail before reading them."""
    (tmp_path / "kinetics").mkdir()
    (tmp_path / "surreal").mkdir()
    return tmp_path


@pytest.mark.parametrize("case,args,expected", BUILD_CASES, ids=[c[0] for c in BUILD_CASES])
def test_bad_build_command_lines_fail_in_one_line(inputs, case, args, expected):
    base = ["build", "--kinetics", str(inputs / "kinetics"), "--surreal", str(inputs / "surreal"),
            "--out", str(inputs / "out.zarr"), "--cache", str(inputs / "cache"), "--serial"]
    result = CliRunner().invoke(synthgen_cli, base + _expand(args, inputs))
    _check_one_line_failure(result, expected, inputs)


@pytest.mark.parametrize("case,args,expected", MOTION_CASES, ids=[c[0] for c in MOTION_CASES])
def test_bad_motion_command_lines_fail_in_one_line(inputs, case, args, expected):
    base = ["motion", "--kinetics", str(inputs / "kinetics"), "--cache", str(inputs / "cache"),
            "--serial"]
    result = CliRunner().invoke(synthgen_cli, base + _expand(args, inputs))
    _check_one_line_failure(result, expected, inputs)


@pytest.mark.parametrize("case,args,expected", THREEDPW_CASES, ids=[c[0] for c in THREEDPW_CASES])
def test_bad_build_3dpw_command_lines_fail_in_one_line(inputs, case, args, expected):
    base = ["build-3dpw", "--3dpw", str(inputs / "kinetics"), "--out", str(inputs / "out.zarr"),
            "--serial"]
    result = CliRunner().invoke(synthgen_cli, base + _expand(args, inputs))
    _check_one_line_failure(result, expected, inputs)


@pytest.mark.parametrize("case,args,expected", DEMO_CASES, ids=[c[0] for c in DEMO_CASES])
def test_bad_demo_data_command_lines_fail_in_one_line(inputs, case, args, expected):
    result = CliRunner().invoke(synthgen_cli, ["demo-data", str(inputs / "demo")] + args)
    _check_one_line_failure(result, expected, inputs)


def test_demo_data_into_an_unwritable_folder_fails_in_one_line(inputs):
    blocker = inputs / "file"
    blocker.write_text("")
    result = CliRunner().invoke(synthgen_cli, ["demo-data", str(blocker / "demo"), "--people",
                                               "1", "--people-frames", "2", "--backgrounds", "1"])
    assert result.exit_code == 1 and result.stderr.startswith("error: ") and \
        len(result.stderr.strip().splitlines()) == 1, result.output


@pytest.mark.parametrize("case,args,expected", TRAIN_CASES, ids=[c[0] for c in TRAIN_CASES])
def test_bad_train_command_lines_fail_in_one_line(inputs, case, args, expected):
    base = ["train", "--store", str(inputs / "no_store.zarr"), "--out", str(inputs / "run")]
    result = CliRunner().invoke(trainer_cli, base + _expand(args, inputs))
    _check_one_line_failure(result, expected, inputs)


def test_a_read_only_out_fails_in_one_line(inputs):
    import os

    if os.geteuid() == 0:
        pytest.skip("root writes into read-only directories")
    locked = inputs / "locked"
    locked.mkdir(mode=0o555)
    base = ["build", "--kinetics", str(inputs / "kinetics"), "--surreal", str(inputs / "surreal"),
            "--out", str(locked / "out.zarr"), "--serial"]
    result = CliRunner().invoke(synthgen_cli, base)
    assert result.exit_code == 1 and "cannot write" in result.stderr
    assert list(locked.iterdir()) == []


def test_nothing_to_build_from_says_which_splits_hold_clips(small_demo, tmp_path):
    surreal = tmp_path / "surreal"
    shutil.copytree(small_demo.surreal_dir / "cmu" / "val", surreal / "val")
    shutil.copytree(small_demo.surreal_dir / "cmu" / "test", surreal / "test")
    args = ["build", "--kinetics", str(small_demo.kinetics_dir), "--surreal", str(surreal),
            "--smpl", str(small_demo.smpl_dir),
            "--out", str(tmp_path / "out.zarr"), "--cache", str(tmp_path / "cache"), "--serial",
            "--split", "train"]
    result = CliRunner().invoke(synthgen_cli, args)
    assert result.exit_code == 1
    last = result.stderr.splitlines()[-1]
    assert last.startswith("error: nothing to build from") and "1 empty" in last
    assert "no SURREAL clip in split(s) train; clips found: 1 in test, 1 in val" in last
    assert sorted(p.name for p in tmp_path.iterdir()) == ["surreal"]  # no store, no camera motion


def test_build_refuses_a_negative_seed_before_creating_anything(small_demo, tmp_path):
    with pytest.raises(ValueError, match="seed must be >= 0"):
        build(small_demo.kinetics_dir, small_demo.surreal_dir, str(tmp_path / "out.zarr"),
              num_examples=2, seed=-1, cache_dir=tmp_path / "cache", serial=True)
    assert list(tmp_path.iterdir()) == []


def test_an_out_folder_of_other_files_is_not_wiped(inputs):
    precious = inputs / "data"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    base = ["build", "--kinetics", str(inputs / "kinetics"), "--surreal", str(inputs / "surreal"),
            "--out", str(precious), "--serial", "--overwrite"]
    result = CliRunner().invoke(synthgen_cli, base)
    assert result.exit_code == 1 and "holds files but no store" in result.stderr
    assert (precious / "thesis.tex").read_text() == "years of work"


@pytest.mark.parametrize("address", ["127.0.0.1:1", "ray://127.0.0.1:1"])
def test_an_unreachable_ray_address_fails_in_one_line(inputs, address):
    # Without the check, ray.init waits minutes on a GCS address where nothing listens.
    base = ["build", "--kinetics", str(inputs / "kinetics"), "--surreal", str(inputs / "surreal"),
            "--out", str(inputs / "out.zarr"), "--cache", str(inputs / "cache"),
            "--address", address]
    result = CliRunner().invoke(synthgen_cli, base)
    _check_one_line_failure(result, f"cannot reach a Ray cluster at --address {address}", inputs)


@pytest.mark.parametrize("command", ["build-video", "build-3dpw"])
def test_out_cannot_be_the_match_store_it_reads(tmp_path, command):
    """With --overwrite the training store was wiped and replaced by the new store."""
    from synthgen import store

    train = tmp_path / "train.zarr"
    store.create_store(str(train), num_examples=1, num_frames=2, crop_size=8,
                       examples_per_shard=1, attrs={})
    before = sorted(p.relative_to(train) for p in train.rglob("*"))
    (tmp_path / "video").mkdir()
    args = {"build-video": ["build-video", str(tmp_path / "video"), "--keypoints",
                            str(tmp_path / "video")],
            "build-3dpw": ["build-3dpw", "--3dpw", str(tmp_path / "video"), "--serial"]}[command]
    result = CliRunner().invoke(synthgen_cli, args + ["--match-store", str(train), "--out",
                                                      str(tmp_path / "." / "train.zarr"),
                                                      "--overwrite"])
    assert result.exit_code == 1, result.output
    assert result.stderr.strip() == (f"error: --out {tmp_path / '.' / 'train.zarr'} is the training "
                                     f"store (--match-store) this build reads: choose another --out")
    assert sorted(p.relative_to(train) for p in train.rglob("*")) == before


def test_train_refuses_an_out_holding_a_run_unless_resumed_or_overwritten(inputs):
    """Training again into a run folder replaced its last.pt, a finished run, without a word."""
    run = inputs / "run"
    run.mkdir()
    (run / "last.pt").write_bytes(b"a finished run")
    base = ["train", "--store", str(inputs / "no_store.zarr"), "--out", str(run)]
    result = CliRunner().invoke(trainer_cli, base)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr.strip() == (f"error: {run} holds a training run (last.pt): pass --resume "
                                     f"to continue it, --overwrite to start again (replacing it), "
                                     f"or choose another --out")
    assert (run / "last.pt").read_bytes() == b"a finished run"
    result = CliRunner().invoke(trainer_cli, base + ["--overwrite"])  # goes on (to fail later)
    assert result.exit_code == 1 and "holds a training run" not in result.stderr
    result = CliRunner().invoke(trainer_cli, base + ["--overwrite", "--resume"])
    assert result.exit_code == 2 and "--resume or --overwrite, not both" in result.stderr


@pytest.mark.parametrize("kind", ["3dpw", "video"])
def test_show_and_verify_of_a_store_that_is_not_synthetic_fail_in_one_line(tmp_path, kind):
    """They were KeyError tracebacks ('seed', 'joints3d')."""
    from synthgen import store

    url = str(tmp_path / f"{kind}.zarr")
    store.create_store(url, num_examples=1, num_frames=2, crop_size=8, examples_per_shard=1,
                       attrs={}, kind=kind)
    runner = CliRunner()
    shown = runner.invoke(synthgen_cli, ["show", url, "--example", "0", "--out",
                                         str(tmp_path / "x.png")])
    verified = runner.invoke(synthgen_cli, ["inspect", url, "--verify", "1", "--quiet"])
    for result, words in ((shown, "show draws the examples of a synthetic training store"),
                          (verified, "--verify rebuilds the examples of a synthetic")):
        assert result.exit_code == 1 and "Traceback" not in result.output, result.output
        assert result.stderr.strip() == f"error: {url} is a '{kind}' store: " + \
            result.stderr.strip().split("' store: ", 1)[1] and words in result.stderr


def test_inspect_reads_a_video_store_without_3d_joints(tmp_path):
    """inspect of a build-video store was a KeyError traceback ('joints3d')."""
    import numpy as np

    from synthgen import store

    url = str(tmp_path / "v.zarr")
    group = store.create_store(url, num_examples=1, num_frames=2, crop_size=8,
                               examples_per_shard=1, attrs={}, kind="video")
    arrays = {name: np.ones((1, *spec.shape), spec.dtype)
              for name, spec in store.full_schema(group.attrs).items()}
    store.write_shard(group, 0, arrays)
    store.mark_done(group, 0)
    result = CliRunner().invoke(synthgen_cli, ["inspect", url, "--quiet"])
    assert result.exit_code == 0, result.output
    assert "integrity: 1 of 1 finished shards readable: OK" in result.output


def test_an_end_of_file_deep_in_a_reader_is_not_reported_as_aborted():
    """click turns any EOFError (an empty file read by a third-party reader) into 'aborted', as
    if the user had pressed Ctrl-C."""
    import click

    from synthgen.core.cli import OneLineGroup

    @click.group(cls=OneLineGroup)
    def group():
        pass

    @group.command()
    def read():
        raise EOFError("No data left in file")

    result = CliRunner().invoke(group, ["read"])
    assert result.exit_code == 1
    assert [line for line in result.stderr.splitlines() if line.strip()] == [
        "error: a file ended early (EOFError: No data left in file): an empty or truncated input"]
