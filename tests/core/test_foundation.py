"""Config, joint sets, SURREAL camera and progress reporting (the executors: tests/build/)."""

from __future__ import annotations

import io

import numpy as np
import pytest

from synthgen.core import camera
from synthgen.core import joints
from synthgen.config import PIPELINES_DIR, Config, from_dict, load_config
from synthgen.core.progress import Progress


def test_joint_sets_are_defined_from_smpl_order():
    assert len(joints.COCO14) == 14 and len(set(joints.COCO14.tolist())) == 14
    assert len(joints.HEATMAP_KEYPOINTS) == 12
    assert joints.SMPL_JOINT_NAMES[joints.COCO14[-1]] == "head"
    assert joints.SMPL_JOINT_NAMES[joints.HEATMAP_KEYPOINTS[0]] == "right_ankle"
    swap = joints.LEFT_RIGHT_SWAP
    assert np.array_equal(swap[swap], np.arange(24))  # an involution
    assert joints.SMPL_JOINT_NAMES[swap[joints.SMPL_INDEX["left_wrist"]]] == "right_wrist"
    assert swap[joints.SMPL_INDEX["head"]] == joints.SMPL_INDEX["head"]
    # Parts and joints share one order: joint j lies on SURREAL part j+1 of the same side.
    assert joints.SURREAL_PART_NAMES[joints.JOINT_PART_LABEL[joints.SMPL_INDEX["left_wrist"]] - 1] == "leftHand"
    assert joints.SURREAL_PART_NAMES[joints.JOINT_PART_LABEL[joints.SMPL_INDEX["right_knee"]] - 1] == "rightLeg"


def test_surreal_camera_projects_a_point_in_front_of_it():
    cam_loc = np.array([6.0, -1.0, 0.5])
    R, t = camera.surreal_extrinsics(cam_loc)
    # A world point 5 m from the camera along -x (the camera looks along world -x).
    X = cam_loc + np.array([-5.0, 0.0, 0.0])
    x_cam = camera.world_to_camera(X, R, t)
    np.testing.assert_allclose(x_cam, [0.0, 0.0, 5.0])
    np.testing.assert_allclose(camera.project(x_cam), [160.0, 120.0])
    # World +y is down and so is camera +y: a point lower in the world is lower in the image.
    below = camera.project(camera.world_to_camera(X + [0, 1.0, 0], R, t))
    assert below[1] > 120.0
    # SURREAL's documented extrinsics mirror: a reflection, kept as the data defines it.
    assert np.isclose(np.linalg.det(R), -1.0)


def test_config_defaults_are_the_papers():
    cfg = Config()
    assert cfg.clip.length == 31 and cfg.crops.size == 224 and cfg.crops.person_height == 150
    assert cfg.superpixels.position_scale == (4e-4, 6e-4)
    assert cfg.visibility.behind_margin_m == 0.2


def test_config_round_trips_and_rejects_unknown_keys():
    cfg = Config().replace(clip={"length": 8}, occluder={"enabled": False})
    assert cfg.clip.length == 8 and not cfg.occluder.enabled and cfg.clip.height == 240
    assert from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown config key clip.lenght"):
        from_dict({"clip": {"lenght": 8}})
    with pytest.raises(ValueError, match="unknown config section"):
        from_dict({"clips": {}})


def test_pipeline_files_load_with_bases(tmp_path):
    base = tmp_path / "base.toml"
    base.write_text('[clip]\nlength = 16\n[occluder]\nenabled = false\n')
    child = tmp_path / "child.toml"
    child.write_text(f'base = "{base}"\n[clip]\nlength = 8\n')
    cfg = load_config(child)
    assert cfg.name == "child" and cfg.clip.length == 8 and not cfg.occluder.enabled
    assert load_config("full") == Config(name="full")
    with pytest.raises(FileNotFoundError, match="known pipelines"):
        load_config("no_such_pipeline")


def test_progress_reports_rate_and_eta():
    now = [0.0]
    out = io.StringIO()
    progress = Progress(10, desc="examples", stream=out, interval=0.0, clock=lambda: now[0])
    now[0] = 2.0
    progress.update(4)
    assert "examples 4/10 (40%) 2.00/s" in out.getvalue()
    assert "ETA 00:03" in out.getvalue()
    now[0] = 5.0
    progress.update(6)
    progress.close()
    lines = out.getvalue().splitlines()
    assert lines[-1].startswith("examples 10/10 (100%)") and len(lines) == 2


@pytest.mark.parametrize("path", sorted(p for p in PIPELINES_DIR.glob("*.toml")
                                        if not p.name.startswith("train_")),
                         ids=lambda p: p.stem)
def test_every_pipeline_file_loads(path):
    cfg = load_config(path)
    assert cfg.name == path.stem


def test_ablation_pipelines_switch_what_table_2_says():
    assert not load_config("no_occlusion").occluder.enabled
    no_track = load_config("no_tracking_no_occlusion")
    assert not no_track.tracking.enabled and not no_track.occluder.enabled
    static = load_config("static_background_no_occlusion")
    assert static.background.static and not static.occluder.enabled
    assert [load_config(f"clip_{t}").clip.length for t in (8, 16, 56)] == [8, 16, 56]
