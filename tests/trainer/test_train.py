"""Training loop: loss goes down, exact resume, CLI, logs, DANN, configs."""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from trainer.cli import main
from trainer.config import PIPELINES_DIR, TrainConfig, load_train_config
from trainer.data import (ClipBatchSampler, ClipDataset, arrays_for, hidden_keypoints,
                          make_inputs, make_loader, make_targets, open_stores, split_stores)
from trainer.checkpoint import load_checkpoint
from trainer.forward import select_device, training_loss
from trainer.model import ResNet50, SmallCNN
from trainer.model.build import build_model
from trainer.smpl import SMPLJoints
from trainer.synthetic import make_synthetic_store
from trainer.train import train

CROP = 48


@pytest.fixture(scope="module")
def store(tmp_path_factory, smpl_dir) -> str:
    url = str(tmp_path_factory.mktemp("store") / "s.zarr")
    make_synthetic_store(url, SMPLJoints.from_path(smpl_dir), num_examples=12, num_frames=6,
                         crop_size=CROP, num_persons=4, seed=3)
    return url


def _tiny(smpl_dir, **sections) -> TrainConfig:
    """A model small enough to train in a test (ResNet-50 itself is fixed)."""
    config = TrainConfig().replace(
        data={"clip_length": 4, "input_size": 32, "batch_size": 2, "num_workers": 0,
              "val_every": 4},
        model={"lstm_hidden": 16, "head_hidden": 16, "regressor_hidden": 16, "dropout": 0.1,
               "smpl": str(smpl_dir)},
        optim={"steps": 4, "lr": 1e-3},
        run={"log_every": 1, "val_every_steps": 2, "checkpoint_every_steps": 2,
             "num_threads": 1})
    return config.replace(**sections)


def test_a_few_steps_reduce_the_loss(store, smpl_dir):
    config = _tiny(smpl_dir, model={"dropout": 0.0})
    torch.manual_seed(0)
    torch.set_num_threads(1)
    infos = open_stores([store])
    train_split, _ = split_stores(infos, val_every=4)
    dataset = ClipDataset(infos, train_split.items, clip_length=4, arrays=arrays_for("flow_keypoints"))
    loader = make_loader(dataset, ClipBatchSampler(train_split.num_frames, clip_length=4,
                                                   batch_size=4, seed=0),
                         num_workers=0, pin_memory=False)
    batch = next(iter(loader))
    smpl = SMPLJoints.from_path(smpl_dir)
    inputs = make_inputs(batch, config=config.data, crop_size=CROP,
                         hidden=hidden_keypoints(batch, config=config.data, generator=None))
    targets = make_targets(batch, crop_size=CROP)
    model = build_model(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    history = []
    for _ in range(6):
        loss = training_loss(model(inputs), targets, smpl, weight_2d=1.0)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append(loss.item())
    assert all(b < a for a, b in zip(history, history[1:])), history
    assert history[-1] < 0.9 * history[0], history


def _interrupt_at(step: int):
    def log(line: str) -> None:
        if line.startswith(f"step {step} "):
            raise KeyboardInterrupt  # killed after the checkpoint of the step before
    return log


@pytest.mark.slow
def test_resume_continues_exactly_like_an_uninterrupted_run(store, smpl_dir, tmp_path):
    config = _tiny(smpl_dir, data={"num_workers": 1}, optim={"steps": 5},
                   run={"checkpoint_every_steps": 3})
    whole = train(config, [store], out_dir=tmp_path / "whole", log=lambda line: None)
    with pytest.raises(KeyboardInterrupt):
        train(config, [store], out_dir=tmp_path / "cut", log=_interrupt_at(4))
    assert load_checkpoint(tmp_path / "cut" / "last.pt")["step"] == 3
    lines = []
    resumed = train(config, [store], out_dir=tmp_path / "cut", resume=True, log=lines.append)
    assert any(line.startswith("resumed from") and "at step 3 (epoch 0, batch 3)" in line
               for line in lines)
    a = load_checkpoint(tmp_path / "whole" / "last.pt")
    b = load_checkpoint(tmp_path / "cut" / "last.pt")
    assert a["step"] == b["step"] == 5
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    assert torch.equal(a["trainer"]["randomizer"], b["trainer"]["randomizer"])
    assert resumed == whole
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        train(config, [store], out_dir=tmp_path / "none", resume=True)


def test_cli_trains_logs_csv_and_reports_baselines(store, smpl_dir, tmp_path):
    pipeline = tmp_path / "train_tiny.toml"
    pipeline.write_text(
        'base = "train_full"\n[data]\nclip_length = 4\ninput_size = 32\nbatch_size = 2\n'
        'num_workers = 0\nval_every = 4\n[model]\nlstm_hidden = 16\nhead_hidden = 16\n'
        'regressor_hidden = 16\n[run]\nlog_every = 1\nval_every_steps = 2\nnum_threads = 1\n')
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["train", "--store", store, "--pipeline", str(pipeline),
                                       "--out", str(out), "--smpl", str(smpl_dir),
                                       "--steps", "2"])
    assert result.exit_code == 0, result.output
    assert "baselines: mean params" in result.output and "mean training pose" in result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 2 and summary["val_pa_mpjpe_mm"] > 0
    assert summary["baseline_mean_pose_mm"] > 0 and summary["baseline_mean_params_mm"] > 0
    with open(out / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    metrics = {row["metric"] for row in rows}
    assert {"train/loss", "train/clips_per_s", "val/pa_mpjpe_mm"} <= metrics
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    assert {"train/loss", "val/pa_mpjpe_mm", "val/baseline_mean_pose_mm"} <= set(
        events.Tags()["scalars"])
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2]
    curves = cv2.imread(str(out / "curves.png"))
    assert curves is not None and curves.shape[0] > 100 and curves.std() > 0
    saved = json.loads((out / "config.json").read_text())
    assert saved["config"]["name"] == "train_tiny" and saved["stores"] == [store]
    bad = CliRunner().invoke(main, ["train", "--store", store, "--pipeline", "train_nope"])
    assert bad.exit_code != 0 and "no trainer pipeline 'train_nope'" in bad.output


@pytest.mark.parametrize("backbone", ["resnet50", "small"])
def test_dann_trains_with_real_stores_and_needs_them(store, smpl_dir, tmp_path, backbone):
    real = str(tmp_path / "real.zarr")
    make_synthetic_store(real, SMPLJoints.from_path(smpl_dir), num_examples=4, num_frames=6,
                         crop_size=CROP, seed=9, crop_flow={"name": "other", "params": {}})
    config = _tiny(smpl_dir, data={"modality": "rgb"}, model={"backbone": backbone},
                   optim={"steps": 2}, dann={"weight": 1.0, "hidden": 8})
    with pytest.raises(ValueError, match="dann.real_stores"):
        train(config, [store], out_dir=tmp_path / "no_real", log=lambda line: None)
    result = train(config.replace(dann={"real_stores": [real]}), [store],
                   out_dir=tmp_path / "dann", log=lambda line: None)
    assert result.steps == 2 and np.isfinite(result.last_loss)


def test_resumed_dann_run_is_bit_identical(store, smpl_dir, tmp_path):
    """6 steps straight == 2 steps, a kill, resume to 6: the real-data loader crosses epochs
    (4 real examples, batch 2) and dropout draws from the restored torch RNG."""
    real = str(tmp_path / "real.zarr")
    make_synthetic_store(real, SMPLJoints.from_path(smpl_dir), num_examples=4, num_frames=6,
                         crop_size=CROP, seed=9, crop_flow={"name": "other", "params": {}})
    config = _tiny(smpl_dir, data={"modality": "rgb"}, model={"backbone": "small"},
                   optim={"steps": 6}, dann={"weight": 1.0, "hidden": 8, "real_stores": [real]},
                   run={"val_every_steps": 6})
    whole = train(config, [store], out_dir=tmp_path / "whole", log=lambda line: None)
    with pytest.raises(KeyboardInterrupt):
        train(config, [store], out_dir=tmp_path / "cut", log=_interrupt_at(3))
    cut = load_checkpoint(tmp_path / "cut" / "last.pt")
    assert cut["step"] == 2 and cut["trainer"]["real_loader"] == {"epoch": 0, "batch": 2}
    resumed = train(config, [store], out_dir=tmp_path / "cut", resume=True, log=lambda line: None)
    a = load_checkpoint(tmp_path / "whole" / "last.pt")["trainer"]
    b = load_checkpoint(tmp_path / "cut" / "last.pt")["trainer"]
    assert a["real_loader"] == b["real_loader"] == {"epoch": 2, "batch": 2}
    for part in ("model", "adversary"):
        for key, value in a[part].items():
            assert torch.equal(value, b[part][key]), (part, key)
    for key, value in a["optimizer"]["state"].items():
        assert torch.equal(value["exp_avg_sq"], b["optimizer"]["state"][key]["exp_avg_sq"])
    assert resumed == whole


def test_pipeline_configs_cover_table_1_and_clip_lengths():
    rows = {"rgb", "rgb_dann", "flow", "keypoints", "rgb_keypoints", "flow_keypoints"}
    for row in rows:
        config = load_train_config(f"train_{row}")
        assert config.data.modality == row.removesuffix("_dann")
        assert (config.dann.weight > 0) == row.endswith("dann")
    for length, batch in ((8, 6), (16, 6), (31, 3), (56, 2)):
        config = load_train_config(PIPELINES_DIR / f"train_clip_{length}.toml")
        assert (config.data.clip_length, config.data.batch_size) == (length, batch)
    demo = load_train_config("train_demo")
    assert demo.data.input_size < 224 and demo.run.device == "cpu"
    assert demo.model.backbone == "small"
    assert load_train_config("train_full").model.backbone == "resnet50"
    with pytest.raises(ValueError, match="unknown trainer config key"):
        TrainConfig().replace(data={"modalty": "rgb"})
    with pytest.raises(ValueError, match=r'data.modality = "depth": must be one of'):
        TrainConfig().replace(data={"modality": "depth"})


def test_build_model_uses_the_configured_backbone(smpl_dir):
    torch.manual_seed(0)
    assert TrainConfig().model.backbone == "resnet50"
    assert isinstance(build_model(_tiny(smpl_dir)).backbone, ResNet50)
    small = build_model(_tiny(smpl_dir, model={"backbone": "small"}))
    assert isinstance(small.backbone, SmallCNN) and small.in_channels == 16  # flow_keypoints
    with pytest.raises(ValueError, match=r'model.backbone = "vgg": must be one of .*small'):
        TrainConfig().replace(model={"backbone": "vgg"})


def test_imagenet_weights_are_refused_for_the_small_backbone(tmp_path):
    weights = tmp_path / "resnet50.pth"
    weights.write_bytes(b"")
    with pytest.raises(ValueError, match=r'need model.backbone = "resnet50", not \'small\''):
        TrainConfig().replace(model={"backbone": "small", "imagenet_weights": str(weights)})
    TrainConfig().replace(model={"imagenet_weights": str(weights)})  # resnet50: accepted


@pytest.mark.parametrize("name", ["nonsense", "cuda:{count}"])
def test_an_unusable_device_is_a_value_error_saying_what_to_use(name):
    """Every CLI reports a ValueError in one line (torch raised RuntimeError / AssertionError)."""
    name = name.format(count=torch.cuda.device_count())  # one past the last GPU, or none at all
    with pytest.raises(ValueError, match=f"device '{name}'.*(use auto, cpu|--device auto or cpu)"):
        select_device(name)
    assert select_device("cpu") == torch.device("cpu")
