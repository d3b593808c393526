"""Helpers and session fixtures shared by the trainer's eval and predict tests (a pytest plugin,
registered in ``tests/conftest.py``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synthgen.config import Config
from synthgen.demo.body_model import GENDERS, write_smpl_model
from synthgen.steps.crop_flow import backend_from_config
from trainer.checkpoint import save_checkpoint
from trainer.config import TrainConfig
from trainer.model import mean_params
from trainer.model.build import build_model
from trainer.smpl import SMPLJoints
from trainer.synthetic import make_synthetic_store

#: Small crops and a quick TV-L1 keep the stores fast; the protocol does not depend on them.
CFG = Config().replace(crops={"size": 48, "person_height": 32.0},
                       crop_flow={"backend": "tvl1", "tvl1_num_warp": 1, "tvl1_num_iter": 5,
                                  "tvl1_num_levels": 2})
CLIP = 8
FOCAL, HEIGHT, WIDTH = 110.0, 96, 128


def tvl1_record() -> dict:
    backend = backend_from_config(CFG.crop_flow)
    return {"name": backend.name, "params": backend.params}


def tiny_config(smpl_dir, **sections) -> TrainConfig:
    config = TrainConfig().replace(
        data={"clip_length": CLIP, "input_size": 32, "batch_size": 2, "num_workers": 0},
        model={"lstm_hidden": 16, "head_hidden": 16, "regressor_hidden": 16, "dropout": 0.0,
               "smpl": str(smpl_dir)},
        run={"device": "cpu", "num_threads": 1})
    return config.replace(**sections)


def write_checkpoint(path, config: TrainConfig, stores: list[str], *,
                     init_params: np.ndarray | None = None, **extra) -> None:
    """A checkpoint in ``trainer.train``'s format whose network predicts its regressors' start
    (``init_params``, default the mean pose) whatever its input."""
    torch.manual_seed(0)
    state = build_model(config, init_params=init_params).state_dict()
    for name in state:
        if name.endswith("mlp.6.weight"):  # the regressors' last layer (its bias is zero)
            state[name] = torch.zeros_like(state[name])
    save_checkpoint(path, {"model": state, "config": config.to_dict(), "stores": list(stores),
                           "step": 0, **extra})


@pytest.fixture(scope="session")
def smpl_dir(tmp_path_factory):
    """SMPL-format demo models of every gender (``SMPL_{NEUTRAL,FEMALE,MALE}.pkl``)."""
    directory = tmp_path_factory.mktemp("smpl")
    for gender in GENDERS:
        write_smpl_model(directory, gender=gender)
    return directory


@pytest.fixture(scope="session")
def training_store(tmp_path_factory, smpl_dir) -> str:
    """A tiny synthetic store recording the TV-L1 flow the 3DPW store is built with."""
    url = str(tmp_path_factory.mktemp("train") / "train.zarr")
    make_synthetic_store(url, SMPLJoints.from_path(smpl_dir), num_examples=4, num_frames=CLIP,
                         crop_size=CFG.crops.size, num_persons=2, crop_flow=tvl1_record())
    return url


@pytest.fixture(scope="session")
def constant_checkpoint(tmp_path_factory, smpl_dir, training_store):
    path = tmp_path_factory.mktemp("run") / "last.pt"
    write_checkpoint(path, tiny_config(smpl_dir), [training_store])
    return path


def mean_pose_joints(smpl_dir) -> np.ndarray:
    """(24, 3) metres: the pose the constant network predicts (its regressors' start)."""
    with torch.no_grad():
        return SMPLJoints.from_path(smpl_dir)(torch.as_tensor(mean_params()[:72])[None],
                                               torch.zeros(1, 10))[0].double().numpy()
