"""Trainer checkpoints: no code runs when loading one, every entry point refuses a crafted file,
and recorded paths work from any folder."""

from __future__ import annotations

import builtins
import os
import zipfile

import pytest
import torch
from click.testing import CliRunner

from tests.trainer.support import tiny_config, write_checkpoint
from trainer.checkpoint import (CHECKPOINT, checkpoint_smpl, load_checkpoint, portable_config,
                                save_checkpoint)
from trainer.cli import main
from trainer.evaluate import evaluate
from trainer.model.resnet import ResNet50, load_imagenet_weights


class _Payload:
    """Unpickling this runs ``exec``: it creates the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return builtins.exec, (f"open({self.marker!r}, 'w').close()",)


class _SystemPayload(_Payload):
    """Unpickling this runs ``os.system`` (a module torch blocks, refused in other words)."""

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("payload", [_Payload, _SystemPayload])
def test_a_refused_file_is_named_and_never_advises_loading_it_fully(tmp_path, payload):
    """torch's message for a refused file says to re-run with weights_only=False (running the
    payload): what the user reads says what was refused and why, and nothing else."""
    marker = tmp_path / "ran"
    checkpoint, weights = tmp_path / "evil.pt", tmp_path / "evil.pth"
    torch.save({"model": {}, "config": {}, "payload": payload(marker)}, checkpoint)
    torch.save({"conv1.weight": payload(marker)}, weights)
    with pytest.raises(ValueError) as caught:
        load_checkpoint(checkpoint)
    with pytest.raises(ValueError) as caught_weights:
        load_imagenet_weights(ResNet50(), weights)
    for error, path in ((caught.value, checkpoint), (caught_weights.value, weights)):
        text = str(error)
        assert text.startswith(f"{path}: refused") and "could run code" in text
        assert "weights_only" not in text and "\n" not in text
    assert not marker.exists()


def test_an_empty_checkpoint_says_so(tmp_path):
    path = tmp_path / "empty.pt"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="empty.pt: empty file"):
        load_checkpoint(path)


def _malicious(path, marker, smpl_dir):
    """A checkpoint-shaped file whose unpickling would run code (a full unpickler runs it)."""
    config = tiny_config(smpl_dir)
    torch.save({"model": {}, "config": config.to_dict(), "stores": [], "payload": _Payload(marker)},
               path)
    return path


def test_the_payload_runs_under_a_full_unpickler(tmp_path, smpl_dir):
    """The crafted file is real: loading it as torch did before (weights_only=False) runs it."""
    marker = tmp_path / "ran"
    torch.load(_malicious(tmp_path / "evil.pt", marker, smpl_dir), weights_only=False)
    assert marker.exists()


def _one_clear_line(result, path):
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert str(path) in lines[0] and "refused" in lines[0] and "could run code" in lines[0]


def test_crafted_checkpoint_is_refused_by_eval_predict_and_resume(tmp_path, smpl_dir,
                                                                  training_store):
    marker = tmp_path / "ran"
    evil = _malicious(tmp_path / "evil.pt", marker, smpl_dir)
    runner = CliRunner()
    result = runner.invoke(main, ["eval", "--checkpoint", str(evil), "--store", training_store])
    _one_clear_line(result, evil)
    result = runner.invoke(main, ["predict", "--checkpoint", str(evil), "--store", training_store,
                                  "--out", str(tmp_path / "p")])
    _one_clear_line(result, evil)
    run = tmp_path / "run"
    run.mkdir()
    _malicious(run / CHECKPOINT, marker, smpl_dir)
    result = runner.invoke(main, ["train", "--store", training_store, "--out", str(run),
                                  "--resume"])
    _one_clear_line(result, run / CHECKPOINT)
    assert not marker.exists()


def test_only_tensors_and_plain_data_are_written(tmp_path):
    save_checkpoint(tmp_path / "ok.pt", {"model": {"w": torch.ones(2)}, "config": {"a": [1, 2.0]},
                                          "none": None, "pair": (1, "x")})
    assert torch.load(tmp_path / "ok.pt", weights_only=True)["config"] == {"a": [1, 2.0]}
    with pytest.raises(TypeError, match=r"checkpoint\['config'\]\['path'\] is a PosixPath"):
        save_checkpoint(tmp_path / "bad.pt", {"config": {"path": tmp_path}})
    assert not (tmp_path / "bad.pt").exists()


def test_recorded_paths_are_absolute_and_a_gone_smpl_names_the_override(
        tmp_path, smpl_dir, training_store, monkeypatch):
    monkeypatch.chdir(smpl_dir.parent)
    relative = tiny_config(smpl_dir.name).replace(dann={"real_stores": ["real.zarr"]})
    portable = portable_config(relative)
    assert portable.model.smpl == str(smpl_dir.resolve())
    assert portable.dann.real_stores == (str(smpl_dir.parent.resolve() / "real.zarr"),)
    assert portable_config(relative.replace(dann={"real_stores": ["s3://b/x.zarr"]})) \
        .dann.real_stores == ("s3://b/x.zarr",)
    gone = tmp_path / "gone_smpl"
    path = tmp_path / "last.pt"
    write_checkpoint(path, tiny_config(gone), [training_store])
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"gone_smpl: the SMPL model .* gone .* --smpl"):
        evaluate(path, training_store, device="cpu", log=lambda _: None)
    result = CliRunner().invoke(main, ["eval", "--checkpoint", str(path), "--store",
                                       training_store])
    assert result.exit_code != 0 and "pass --smpl" in result.output
    assert evaluate(path, training_store, smpl=str(smpl_dir), device="cpu",
                    log=lambda _: None).frames > 0
    with pytest.raises(FileNotFoundError, match="--smpl"):
        checkpoint_smpl(tiny_config(smpl_dir), str(tmp_path / "nope"))
    assert load_checkpoint(path)["stores"] == [training_store]


def test_a_checkpoint_of_another_network_or_config_is_one_line(tmp_path, smpl_dir,
                                                              training_store):
    """Weights that do not fit the recorded network, or a recorded config this trainer refuses:
    eval says so in one line (was a load_state_dict traceback / a message about --set)."""
    config = tiny_config(smpl_dir)
    path = tmp_path / "other.pt"
    write_checkpoint(path, config, [training_store])
    state = torch.load(path, weights_only=True)
    state["model"] = {k: v[..., :1] if v.ndim else v for k, v in state["model"].items()}
    torch.save(state, path)
    bad_config = tmp_path / "config.pt"
    write_checkpoint(bad_config, config, [training_store])
    state = torch.load(bad_config, weights_only=True)
    state["config"]["data"]["clip_length"] = "eight"
    torch.save(state, bad_config)
    for checkpoint, expected in ((path, "weights do not fit the network its config describes"),
                                 (bad_config, "its recorded training config does not load")):
        result = CliRunner().invoke(main, ["eval", "--checkpoint", str(checkpoint), "--store",
                                           training_store, "--device", "cpu"])
        assert result.exit_code == 1 and "Traceback" not in result.output, result.output
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and expected in lines[0], result.output


def test_an_unwritable_out_is_one_line_in_train_and_eval(tmp_path, smpl_dir, training_store):
    """An OSError (here --out below a file) was a traceback in train and eval."""
    config = tiny_config(smpl_dir)
    checkpoint = tmp_path / "c.pt"
    write_checkpoint(checkpoint, config, [training_store])
    blocker = tmp_path / "file"
    blocker.write_text("")
    runs = {"eval": ["eval", "--checkpoint", str(checkpoint), "--store", training_store,
                     "--device", "cpu", "--out", str(blocker / "eval")],
            "train": ["train", "--store", training_store, "--smpl", str(smpl_dir), "--steps", "1",
                      "--set", "data.clip_length=4", "--set", "data.batch_size=2",
                      "--set", "data.num_workers=0", "--set", "model.backbone=small",
                      "--out", str(blocker / "run")]}
    for name, args in runs.items():
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 1 and "Traceback" not in result.output, (name, result.output)
        assert result.output.strip().splitlines()[-1].startswith("error: [Errno 20] Not a "
                                                                  "directory"), result.output


def test_resuming_a_damaged_trainer_state_is_one_line(tmp_path, smpl_dir, training_store):
    """A checkpoint lacking part of its trainer state was a KeyError traceback on --resume."""
    from trainer.train import train

    run = tmp_path / "run"
    train(tiny_config(smpl_dir, optim={"steps": 1}), [training_store], out_dir=run,
          log=lambda line: None)
    state = torch.load(run / CHECKPOINT, weights_only=True)
    del state["trainer"]["optimizer"]
    torch.save(state, run / CHECKPOINT)
    result = CliRunner().invoke(main, ["train", "--store", training_store, "--out", str(run),
                                       "--resume"])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert result.output.strip().splitlines()[-1] == (
        "error: the checkpoint's trainer state does not load (KeyError: 'optimizer'): a damaged "
        "checkpoint, or one written by another trainer version; start again with --overwrite")


def test_a_training_store_that_cannot_be_read_is_one_line_not_the_checkpoints_record(
        tmp_path, smpl_dir, training_store):
    """A mistyped --training-store silently fell back to what the checkpoint records."""
    from trainer.evaluate import _store_training_data, training_data

    found = _store_training_data(training_store)
    recorded = {"stores": [str(tmp_path / "moved.zarr")], "crop_flow": found.crop_flow,
                "crop_size": found.crop_size}
    assert training_data(recorded).source == "checkpoint"  # the recorded store moved: the record
    missing = str(tmp_path / "typo.zarr")
    with pytest.raises(ValueError, match=rf"^--training-store {missing} cannot be read .*: give the "
                                         r"network's training store, or leave --training-store out"):
        training_data(recorded, training_store=missing)
    checkpoint = tmp_path / "c.pt"
    write_checkpoint(checkpoint, tiny_config(smpl_dir), [training_store], crop_flow=found.crop_flow,
                     crop_size=found.crop_size)
    result = CliRunner().invoke(main, ["eval", "--checkpoint", str(checkpoint), "--store",
                                       training_store, "--training-store", missing, "--device", "cpu"])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: --training-store {missing} cannot be read")


def test_resume_trains_on_the_recorded_stores_and_refuses_others(tmp_path, smpl_dir, training_store,
                                                                  monkeypatch):
    """--resume needed --store although the checkpoint records its stores (and then ignored it)."""
    from trainer.train import train

    run = tmp_path / "run"
    train(tiny_config(smpl_dir, optim={"steps": 1}), [training_store], out_dir=run,
          log=lambda line: None)
    runner = CliRunner()
    other = str(tmp_path / "other.zarr")
    result = runner.invoke(main, ["train", "--store", other, "--out", str(run), "--resume"])
    assert result.exit_code == 1 and result.output.strip().splitlines() == [
        f"error: --store {other} is not what the run in {run} trains on ({training_store}): leave "
        f"--store out to resume on its recorded stores, or start again with --overwrite"]
    monkeypatch.chdir(os.path.dirname(training_store))  # the same store by a relative path
    for args in ([], ["--store", os.path.basename(training_store)]):
        result = runner.invoke(main, ["train", *args, "--out", str(run), "--resume"])
        assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["train", "--out", str(tmp_path / "new")])
    assert result.exit_code == 2 and result.output.strip().splitlines() == [
        "error: missing option '--store' (it may be left out only with --resume) (see main train -h)"]
    assert "Required unless --resume" in " ".join(runner.invoke(main, ["train", "--help"]).output.split())


def test_a_checkpoint_whose_records_inflate_beyond_the_file_is_refused_unread(tmp_path):
    """torch allocates a record's declared size before reading it: a 400 kB file cost 400 MB."""
    plain = tmp_path / "plain.pt"
    torch.save({"model": {"w": torch.zeros(1000)}, "config": {}}, plain)
    bomb = tmp_path / "bomb.pt"
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(bomb, "w") as out:
        for info in src.infolist():
            if not info.filename.endswith("data/0"):
                out.writestr(info, src.read(info))
                continue
            record = zipfile.ZipInfo(info.filename)
            record.compress_type = zipfile.ZIP_DEFLATED
            with out.open(record, "w", force_zip64=True) as f:
                for _ in range(64):
                    f.write(bytes(1 << 20))
    assert bomb.stat().st_size < 100_000
    with pytest.raises(ValueError, match=r"bomb\.pt: its records declare 67.1 MB, more than the "
                                         r"file's .* kB .*refused unread"):
        load_checkpoint(bomb)
    assert load_checkpoint(plain)["model"]["w"].shape == (1000,)
