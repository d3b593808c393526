"""The one config base (``synthgen.core.config``): every field checked at load, ``base =``
inheritance, ``--set`` items, the same rules for synthgen's and the trainer's configs."""

from __future__ import annotations

import math

import pytest

from synthgen.config import Config, CropFlowConfig, SuperpixelConfig, load_config
from synthgen.core.config import ConfigError, UnknownPipelineError, parse_sets
from trainer.config import TrainConfig, load_train_config


def test_values_are_checked_and_normalised_when_a_section_is_made():
    assert SuperpixelConfig(position_scale=[1e-4, 2e-4]).position_scale == (1e-4, 2e-4)
    assert Config().replace(crops={"person_height": 150}).crops.person_height == 150.0
    assert isinstance(Config().replace(crops={"person_height": 150}).crops.person_height, float)
    assert math.isinf(Config().replace(camera_motion={"inlier_radius": math.inf})
                      .camera_motion.inlier_radius)
    assert CropFlowConfig(checkpoint=None).checkpoint is None
    with pytest.raises(ConfigError, match=r"crop_flow.checkpoint = 3: must be a string or none"):
        Config().replace(crop_flow={"checkpoint": 3})
    with pytest.raises(ConfigError, match=r"tracking.enabled = 1: must be true or false"):
        Config().replace(tracking={"enabled": 1})
    with pytest.raises(ConfigError, match=r"clip.length = 8.5: must be an integer"):
        Config().replace(clip={"length": 8.5})
    with pytest.raises(ConfigError, match=r"superpixels.segments_per_frame = \[30, 10\]: must be "
                                          r"a \[low, high\] range"):
        Config().replace(superpixels={"segments_per_frame": [30, 10]})
    with pytest.raises(ConfigError, match=r"superpixels.position_scale = \[0.1\]: must be a list "
                                          r"of 2 values"):
        Config().replace(superpixels={"position_scale": [0.1]})
    with pytest.raises(ConfigError, match=r"total_occlusion.probability = 1.5: must be a number "
                                          r">= 0.0 and <= 1.0"):
        Config().replace(total_occlusion={"probability": 1.5})
    with pytest.raises(ConfigError, match=r"config section 'clip' must be a table"):
        Config.from_dict({"clip": 8})


def test_the_trainer_config_follows_the_same_rules():
    assert TrainConfig().replace(dann={"real_stores": ["a.zarr"]}).dann.real_stores == ("a.zarr",)
    with pytest.raises(ConfigError, match=r"data.batch_size = 0: must be an integer >= 1"):
        TrainConfig().replace(data={"batch_size": 0})
    with pytest.raises(ConfigError, match=r"dann.real_stores = \[1\]: must be a list of items each a string"):
        TrainConfig().replace(dann={"real_stores": [1]})
    # inf passed every ">= 0" rule (optim.lr = inf trained into a linalg traceback), and NaN
    # passed fields without bounds; inf stays allowed where it means "never".
    with pytest.raises(ConfigError, match=r"optim.lr = inf: must be a finite number"):
        TrainConfig().replace(optim={"lr": math.inf})
    with pytest.raises(ConfigError, match=r"optim.lr = nan: must be a finite number"):
        load_train_config("train_demo", sets=["optim.lr=nan"])
    with pytest.raises(ConfigError, match=r"camera_motion.inlier_radius = nan: must be a number "
                                          r"\(not NaN\)"):
        load_config(None, sets=["camera_motion.inlier_radius=nan"])
    with pytest.raises(ConfigError, match=r"superpixels.position_scale = \(inf, 0.1\): must be a "
                                          r"finite number"):
        Config().replace(superpixels={"position_scale": [math.inf, 0.1]})
    with pytest.raises(ConfigError, match=r"unknown trainer config section 'optimiser'"):
        TrainConfig.from_dict({"optimiser": {}})


def test_set_items_are_toml_values_or_strings():
    assert parse_sets(["clip.length=8", "crop_flow.backend=tvl1", "tracking.enabled=false",
                       "superpixels.position_scale=[1e-4, 2e-4]", 'crop_flow.device="cuda:1"']) == {
        "clip": {"length": 8}, "crop_flow": {"backend": "tvl1", "device": "cuda:1"},
        "tracking": {"enabled": False}, "superpixels": {"position_scale": [1e-4, 2e-4]}}
    for bad in ("clip.length", "length=8", "clip.=8", ".length=8", "a.b.c=1"):
        with pytest.raises(ConfigError, match="write --set section.key=value"):
            parse_sets([bad])
    cfg = load_config("clip_8", sets=["store.examples_per_shard=4"],
                      overrides={"crop_flow": {"backend": "tvl1"}})
    assert (cfg.name, cfg.clip.length, cfg.store.examples_per_shard) == ("clip_8", 8, 4)
    train = load_train_config("train_demo", sets=["optim.steps=3"])
    assert train.optim.steps == 3 and train.model.backbone == "small"


def test_bases_chain_and_bad_bases_are_one_line_errors(tmp_path):
    (tmp_path / "a.toml").write_text("[clip]\nlength = 16\n[occluder]\nenabled = false\n")
    (tmp_path / "b.toml").write_text(f'base = "{tmp_path / "a"}"\n[clip]\nlength = 8\n')
    (tmp_path / "c.toml").write_text(f'base = "{tmp_path / "b.toml"}"\n[tracking]\nenabled = false\n')
    cfg = load_config(tmp_path / "c.toml")
    assert cfg.name == "c" and cfg.clip.length == 8 and not cfg.occluder.enabled
    assert not cfg.tracking.enabled
    (tmp_path / "x.toml").write_text(f'base = "{tmp_path / "y.toml"}"\n')
    (tmp_path / "y.toml").write_text(f'base = "{tmp_path / "x.toml"}"\n')
    with pytest.raises(ConfigError, match="base cycle"):
        load_config(tmp_path / "x.toml")
    (tmp_path / "z.toml").write_text('base = "train_full"\n')
    with pytest.raises(UnknownPipelineError, match="bad base: no pipeline 'train_full'"):
        load_config(tmp_path / "z.toml")  # a trainer file is no data pipeline...
    with pytest.raises(FileNotFoundError, match="known trainer pipelines: .*train_demo"):
        load_train_config("full")  # ...and the reverse
    (tmp_path / "t.toml").write_text("[clip]\nlength = = 3\n")
    with pytest.raises(ConfigError, match=r"t.toml: TOML syntax error: .*line 2"):
        load_config(tmp_path / "t.toml")


def test_a_pipeline_file_saved_with_a_byte_order_mark_loads(tmp_path):
    """Windows editors write a UTF-8 BOM; it was a 'TOML syntax error at line 1, column 1'."""
    path = tmp_path / "bom.toml"
    path.write_bytes(b"\xef\xbb\xbf[clip]\nlength = 8\n")
    assert load_config(path).clip.length == 8
