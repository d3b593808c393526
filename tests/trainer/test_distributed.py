"""Multi-process training: ``torchrun --nproc_per_node 2`` on the CPU (gloo) equals one process
with the same global batch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from trainer.checkpoint import load_checkpoint
from trainer.config import load_train_config
from trainer.data import ClipBatchSampler
from trainer.smpl import SMPLJoints
from trainer.synthetic import make_synthetic_store
from trainer.train import train
from trainer.trainer import Distributed, RankBatches

ROOT = Path(__file__).resolve().parents[2]
PIPELINE = """base = "train_full"
[data]
modality = "keypoints"
clip_length = 4
input_size = 32
batch_size = 4
num_workers = 0
val_every = 4
[model]
backbone = "small"
lstm_hidden = 16
head_hidden = 16
regressor_hidden = 16
dropout = 0.0
[optim]
steps = 3
[run]
device = "cpu"
log_every = 1
val_every_steps = 3
checkpoint_every_steps = 3
num_threads = 1
"""


def test_two_gloo_processes_equal_one_with_the_same_global_batch(smpl_dir, tmp_path):
    store = str(tmp_path / "s.zarr")
    make_synthetic_store(store, SMPLJoints.from_path(smpl_dir), num_examples=12, num_frames=6,
                         crop_size=48, num_persons=4, seed=3)
    pipeline = tmp_path / "train_ddp.toml"
    pipeline.write_text(PIPELINE)
    script = tmp_path / "trainer_main.py"
    script.write_text("from trainer.cli import main\nmain()\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", "2", str(script), "train", "--store", store, "--pipeline",
               str(pipeline), "--smpl", str(smpl_dir), "--out", str(tmp_path / "two")]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 processes" in done.stderr and done.stderr.count("done: 3 steps") == 1

    config = load_train_config(pipeline).replace(model={"smpl": str(smpl_dir)})
    train(config, [store], out_dir=tmp_path / "one", log=lambda line: None)
    one = load_checkpoint(tmp_path / "one" / "last.pt")
    two = load_checkpoint(tmp_path / "two" / "last.pt")
    assert two["trainer"]["world_size"] == 2 and len(two["trainer"]["torch_rng"]) == 2
    assert one["model"].keys() == two["model"].keys()
    for key, value in one["model"].items():
        torch.testing.assert_close(two["model"][key], value, rtol=1e-4, atol=1e-5,
                                   msg=lambda m, key=key: f"{key}: {m}")
    state_one, state_two = one["trainer"]["optimizer"]["state"], two["trainer"]["optimizer"]["state"]
    for key, value in state_one.items():  # the same gradients went into Adam's moments
        torch.testing.assert_close(state_two[key]["exp_avg"], value["exp_avg"], rtol=1e-3,
                                   atol=1e-6)
    assert all(v["exp_avg"].abs().max() > 0 for v in state_one.values())


def test_each_rank_takes_its_slice_of_the_global_batch():
    sampler = ClipBatchSampler(np.full(8, 6), clip_length=4, batch_size=4, seed=0)
    with pytest.raises(ValueError, match="batch_size 4 is not divisible by the 3 processes"):
        RankBatches(sampler, Distributed(0, 3, 0))
    halves = [list(RankBatches(sampler, Distributed(r, 2, 0))) for r in range(2)]
    assert [a + b for a, b in zip(*halves)] == list(sampler)
