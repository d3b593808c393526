"""``trainer eval``: the paper's protocol on 3DPW-format files the tests write, and refusals.

The checkpoint is built in :func:`trainer.train.train`'s format with the last layer of both
regressors zeroed: the network then predicts the regressors' starting pose (the mean parameters)
on every frame whatever its input, so each frame's PA-MPJPE is known from the ground truth alone
and the protocol's arithmetic can be checked by hand.
"""

from __future__ import annotations

import csv
import io
import json

import cv2
import numpy as np
import pytest
import smplx
import torch
from click.testing import CliRunner

from synthgen import store as synthstore
from synthgen.build.threedpw import build_3dpw
from synthgen.core.joints import COCO14, SMPL_INDEX
from synthgen.core.errors import OversizeError
from synthgen.testing.threedpw import write_sequence
from synthgen.core.joints import OPENPOSE_INDEX, SMPL_FROM_OPENPOSE
from tests.trainer.support import (CFG, CLIP, FOCAL, HEIGHT, WIDTH, mean_pose_joints, tiny_config,
                                    tvl1_record, write_checkpoint)
from trainer.cli import main
from trainer.checkpoint import load_checkpoint
from trainer.evaluate import (H36M_JOINTS, H36M_TO_J14, evaluate, load_h36m_regressor,
                              open_eval_store, protocol_means, training_data)
from trainer.metrics import pa_mpjpe
from trainer.model import mean_params
from trainer.smpl import SMPLJoints
from trainer.synthetic import make_synthetic_store
from trainer.train import train

# ---------------------------------------------------------------------------------------------
# A 3DPW-format dataset with known per-frame errors

#: (name, frames, noise of evaluated frames in metres, totally occluded frames)
PEOPLE = (("seq_a", 12, 0.02, (3, 4)), ("seq_b", 9, 0.08, (2, 3, 4, 5)))
#: Noise (metres) on the frames the protocol must skip: large, so counting one would show.
SKIPPED_NOISE = 0.5


def write_person_sequence(root, name, frames, noise, occluded, mean_joints, rng):
    """One actor seen by a fixed camera; returns its camera-frame joints (N, 24, 3) and the
    frames the protocol evaluates."""
    valid = np.ones(frames, dtype=bool)
    valid[-1] = False  # campose_valid False: not evaluated
    evaluated = valid.copy()
    evaluated[list(occluded)] = False
    scale = np.where(evaluated, noise, SKIPPED_NOISE)[:, None, None]
    joints = mean_joints[None] + rng.normal(0, 1, (frames, 24, 3)) * scale
    joints += np.array([0.0, 0.0, 4.0])  # in front of the camera; world = camera frame
    K = np.array([[FOCAL, 0, WIDTH / 2], [0, FOCAL, HEIGHT / 2], [0, 0, 1]])
    # Detections: projections of the mean pose (no noise), so boxes sit on the person.
    clean = (mean_joints + [0.0, 0.0, 4.0]) @ K.T
    pixels = clean[:, :2] / clean[:, 2:]
    poses2d = np.zeros((frames, 3, 18))
    for smpl_name, op_name in SMPL_FROM_OPENPOSE.items():
        poses2d[:, :2, OPENPOSE_INDEX[op_name]] = pixels[SMPL_INDEX[smpl_name]]
    poses2d[:, 2, [OPENPOSE_INDEX[o] for o in SMPL_FROM_OPENPOSE.values()]] = 0.9
    for frame in occluded:  # only 5 of the 14 COCO keypoints confident: a total occlusion
        poses2d[frame, 2, 5:14] = 0.05
    images = rng.integers(0, 256, (frames, HEIGHT, WIDTH, 3)).astype(np.uint8)
    write_sequence(
        root, "test", name, frames=images, genders=["m"], betas=[np.zeros(10)],
        poses=[np.zeros((frames, 72))], trans=[np.zeros((frames, 3))],
        joint_positions=[joints.reshape(frames, 72)], poses2d=[poses2d],
        cam_poses=np.tile(np.eye(4), (frames, 1, 1)), cam_intrinsics=K, campose_valid=[valid])
    return joints, evaluated


@pytest.fixture(scope="session")
def threedpw_store(tmp_path_factory, smpl_dir):
    """A 3DPW store of two people (12 and 9 frames, 8-frame clips) and each frame's expected
    PA-MPJPE (mm, from the ground truth and the constant prediction) with its evaluate flag."""
    root = tmp_path_factory.mktemp("3dpw")
    rng = np.random.default_rng(7)
    mean_joints = mean_pose_joints(smpl_dir)
    expected = {}
    for name, frames, noise, occluded in PEOPLE:
        joints, evaluated = write_person_sequence(root, name, frames, noise, occluded,
                                                  mean_joints, rng)
        errors = pa_mpjpe(torch.as_tensor(mean_joints[COCO14] * 1000).expand(frames, 14, 3),
                          torch.as_tensor(joints[:, COCO14] * 1000)).numpy()
        expected[name] = (errors, evaluated)
    url = str(tmp_path_factory.mktemp("stores") / "3dpw.zarr")
    build_3dpw(root, url, cfg=CFG.replace(clip={"length": CLIP}), serial=True,
               stream=io.StringIO())
    return url, expected


# ---------------------------------------------------------------------------------------------
# Tests


def test_protocol_means_by_hand():
    # Person a: 3 frames of 10 mm; person b: 1 frame of 50 mm.
    errors = np.array([10.0, 10.0, 10.0, 50.0])
    person = np.array(["a", "a", "a", "b"])
    per_person, weighted = protocol_means(errors, person)
    assert per_person == pytest.approx((10 + 50) / 2)  # 30
    assert weighted == pytest.approx(80 / 4)  # 20


def test_eval_on_3dpw_follows_the_protocol(constant_checkpoint, threedpw_store, tmp_path):
    url, expected = threedpw_store
    out = tmp_path / "eval"
    result = evaluate(constant_checkpoint, url, out_dir=out, device="cpu", log=lambda _: None)
    # Frames counted: a 12 - 1 invalid - 2 occluded = 9, b 9 - 1 - 4 = 4; none twice although
    # the 8-frame clips overlap (a: frames 0-7 and 4-11).
    counts = {name: int(flags.sum()) for name, (_, flags) in expected.items()}
    assert counts == {"seq_a": 9, "seq_b": 4}
    assert result.frames == 13 and result.people == 2
    means = {name: errors[flags].mean() for name, (errors, flags) in expected.items()}
    by_hand = (means["seq_a"] + means["seq_b"]) / 2
    weighted = (9 * means["seq_a"] + 4 * means["seq_b"]) / 13
    assert result.pa_mpjpe_mm == pytest.approx(by_hand, rel=1e-4)
    assert result.frame_weighted_mm == pytest.approx(weighted, rel=1e-4)
    assert abs(by_hand - weighted) > 5.0  # the two averages really differ here
    # Every evaluated frame has its own expected error; skipped frames (0.5 m noise) are absent.
    frames = result.frame_errors
    for name, (errors, flags) in expected.items():
        mine = frames.sequence == name
        assert sorted(frames.time[mine].tolist()) == np.flatnonzero(flags).tolist()
        np.testing.assert_allclose(frames.errors[mine][np.argsort(frames.time[mine])],
                                   errors[flags], rtol=1e-4)
    # Files: summary, tables (CSV agrees with the result), one plot per sequence.
    summary = json.loads((out / "summary.json").read_text())
    assert summary["pa_mpjpe_mm"] == pytest.approx(by_hand, rel=1e-4)
    with open(out / "per_sequence.csv") as f:
        rows = {r["sequence"]: r for r in csv.DictReader(f)}
    assert {k: int(r["frames"]) for k, r in rows.items()} == counts
    assert float(rows["seq_b"]["pa_mpjpe_mm"]) == pytest.approx(means["seq_b"], rel=1e-3)
    with open(out / "frames.csv") as f:
        assert sum(1 for _ in csv.DictReader(f)) == 13
    for name in counts:
        image = cv2.imread(str(out / "plots" / f"{name}.png"))
        assert image is not None and image.shape == (360, 960, 3)
        assert (image != 255).any(axis=2).mean() > 0.01  # something is drawn


def test_eval_cli_prints_the_table(constant_checkpoint, threedpw_store, tmp_path):
    url, _ = threedpw_store
    result = CliRunner().invoke(main, ["eval", "--checkpoint", str(constant_checkpoint),
                                       "--store", url, "--out", str(tmp_path / "o"),
                                       "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "seq_a" in result.output and "seq_b" in result.output
    assert "mean per person, then over 2 people" in result.output
    assert (tmp_path / "o" / "per_sequence.csv").is_file()


def test_store_with_another_crop_flow_is_refused(tmp_path, smpl_dir, threedpw_store):
    url, _ = threedpw_store
    other = str(tmp_path / "synthetic_flow.zarr")
    make_synthetic_store(other, SMPLJoints.from_path(smpl_dir), num_examples=4, num_frames=CLIP,
                         crop_size=CFG.crops.size, num_persons=2)  # crop_flow "synthetic"
    checkpoint = tmp_path / "last.pt"
    write_checkpoint(checkpoint, tiny_config(smpl_dir), [other])
    with pytest.raises(ValueError, match="crop-flow backend differs"):
        evaluate(checkpoint, url, device="cpu", log=lambda _: None)
    result = CliRunner().invoke(main, ["eval", "--checkpoint", str(checkpoint), "--store", url])
    assert result.exit_code != 0 and "differs" in result.output
    # A moved training store: the checkpoint alone cannot tell; --training-store can.
    moved = tmp_path / "moved.pt"
    write_checkpoint(moved, tiny_config(smpl_dir), [str(tmp_path / "gone.zarr")])
    with pytest.raises(ValueError, match="--training-store"):
        training_data(load_checkpoint(moved))
    assert training_data(load_checkpoint(moved), training_store=other).crop_flow["name"] == \
        "synthetic"
    # A checkpoint recording its training data's crop flow needs no store, and wins over one.
    recorded = tmp_path / "recorded.pt"
    write_checkpoint(recorded, tiny_config(smpl_dir), [str(tmp_path / "gone.zarr")],
                     crop_flow=tvl1_record(), crop_size=CFG.crops.size)
    assert training_data(load_checkpoint(recorded)).crop_flow == tvl1_record()
    with pytest.raises(ValueError, match="not what the checkpoint recorded"):
        training_data(load_checkpoint(recorded), training_store=other)


@pytest.mark.slow
def test_a_trained_checkpoint_evaluates_on_a_synthetic_store(tmp_path, smpl_dir, training_store):
    config = tiny_config(smpl_dir, data={"val_every": 2}, optim={"steps": 1},
                         run={"log_every": 1, "val_every_steps": 1, "checkpoint_every_steps": 1})
    train(config, [training_store], out_dir=tmp_path / "run", log=lambda _: None)
    result = evaluate(tmp_path / "run" / "last.pt", training_store, out_dir=tmp_path / "o",
                      device="cpu", log=lambda _: None)
    # Frames evaluated: at least 7 of the 14 joints visible and not a total occlusion.
    group = synthstore.open_group(training_store)
    visible = (np.asarray(group["visibility"][:])[..., COCO14] == 0).sum(axis=-1)
    usable = (visible >= 7) & ~np.asarray(group["total_occlusion"][:])
    assert result.frames == int(usable.sum())
    assert set(result.frame_errors.person.tolist()) == {"synthetic/person_0", "synthetic/person_1"}
    assert result.people == 2 and np.isfinite(result.frame_errors.errors).all()
    assert (tmp_path / "o" / "plots" / "synthetic_person_0.png").is_file()


def test_bad_h36m_regressor_files_are_refused_saying_why(tmp_path):
    """No message advises allow_pickle (it would run the file's code); an empty file is not
    reported as an abort."""

    class Payload:
        def __reduce__(self):
            return print, ("ran",)

    cases = {"objects.npy": "refused: it holds pickled Python objects",
             "empty.npy": "not a .npy file (empty)", "text.npy": "not a .npy file (starts",
             "truncated.npy": "truncated or damaged .npy file"}
    np.save(tmp_path / "objects.npy", np.array([Payload()], dtype=object), allow_pickle=True)
    (tmp_path / "empty.npy").write_bytes(b"")
    (tmp_path / "text.npy").write_text("hello")
    np.save(tmp_path / "truncated.npy", np.zeros((H36M_JOINTS, 10)))
    (tmp_path / "truncated.npy").write_bytes((tmp_path / "truncated.npy").read_bytes()[:200])
    for name, message in cases.items():
        with pytest.raises(ValueError) as caught:
            load_h36m_regressor(tmp_path / name, num_vertices=10)
        text = str(caught.value)
        assert text.startswith(f"{tmp_path / name}: ") and message in text, text
        assert "allow_pickle" not in text
    huge = tmp_path / "huge.npy"  # a header declaring 10**12 values, 16 bytes of data
    with open(huge, "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False,
                                                 "shape": (H36M_JOINTS, 10**12)})
        f.write(bytes(16))
    with pytest.raises(OversizeError, match=r"huge\.npy: too_large: declares 136 TB for the "
                                            r"regressor \(17x1000000000000 float64\); expected \(17, 10\)"):
        load_h36m_regressor(huge, num_vertices=10)


def test_a_video_store_is_refused_for_evaluation(tmp_path):
    """It has no ground truth (was a KeyError traceback: 'sources')."""
    url = str(tmp_path / "v.zarr")
    synthstore.create_store(url, num_examples=1, num_frames=2, crop_size=8, examples_per_shard=1,
                            attrs={}, kind="video")
    with pytest.raises(ValueError, match="is a video store, without ground truth .* trainer "
                                         "predict"):
        open_eval_store(url)


def test_bad_checkpoint_is_refused(tmp_path, threedpw_store):
    path = tmp_path / "bad.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable PyTorch file"):
        load_checkpoint(path)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")


def test_h36m_regressor_protocol_with_a_made_regressor(threedpw_store, training_store, smpl_dir,
                                                       tmp_path):
    """The ``h36m`` protocol: 14 H36M joints regressed from the SMPL mesh, frame-averaged, checked
    against smplx's own SMPL mesh; the paper's figure is unchanged beside it."""
    url, _ = threedpw_store
    rng = np.random.default_rng(0)
    regressor = np.zeros((H36M_JOINTS, 6890))
    for joint in range(H36M_JOINTS):  # each joint a convex combination of 8 vertices
        regressor[joint, rng.choice(6890, 8, replace=False)] = rng.dirichlet(np.ones(8))
    path = tmp_path / "J_regressor_h36m.npy"
    np.save(path, regressor)
    theta = mean_params()
    theta[3:72] += rng.normal(0, 0.3, 69)  # a bent body of another shape
    theta[72:82] = rng.normal(0, 1, 10)
    checkpoint = tmp_path / "bent.pt"
    write_checkpoint(checkpoint, tiny_config(smpl_dir), [training_store], init_params=theta)
    out = tmp_path / "o"
    plain = evaluate(checkpoint, url, device="cpu", log=lambda _: None)
    result = evaluate(checkpoint, url, out_dir=out, device="cpu", h36m_regressor=path,
                      log=lambda _: None)
    # By hand: the network predicts ``theta`` on every frame (neutral body); 3DPW's truth here is
    # the zero pose and shape of the male body.
    body = smplx.SMPL(model_path=str(smpl_dir), gender="neutral")
    male = smplx.SMPL(model_path=str(smpl_dir), gender="male")
    theta = torch.as_tensor(theta, dtype=torch.float32)[None]
    with torch.no_grad():
        predicted = body(global_orient=theta[:, :3], body_pose=theta[:, 3:72],
                         betas=theta[:, 72:82]).vertices[0].double()
        true = male(global_orient=torch.zeros(1, 3), body_pose=torch.zeros(1, 69),
                    betas=torch.zeros(1, 10)).vertices[0].double()
    matrix = torch.as_tensor(regressor)
    by_hand = float(pa_mpjpe((matrix @ predicted)[list(H36M_TO_J14)] * 1000,
                             (matrix @ true)[list(H36M_TO_J14)] * 1000))
    assert result.frames == 13
    np.testing.assert_allclose(result.frame_errors.h36m_errors, by_hand, rtol=1e-3)
    assert result.h36m_mm == pytest.approx(float(result.frame_errors.h36m_errors.mean()))
    assert result.pa_mpjpe_mm == pytest.approx(plain.pa_mpjpe_mm)
    assert abs(result.h36m_mm - result.pa_mpjpe_mm) > 1.0  # another joint set, another figure
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["protocols"]) == {"paper", "h36m"}
    assert summary["protocol"].startswith("paper: ") and summary["protocols"]["h36m"][
        "pa_mpjpe_mm"] == pytest.approx(result.h36m_mm)
    with open(out / "frames.csv") as f:
        assert all(float(r["h36m_mm"]) == pytest.approx(by_hand, rel=1e-3)
                   for r in csv.DictReader(f))
    printed = CliRunner().invoke(main, ["eval", "--checkpoint", str(checkpoint),
                                        "--store", url, "--device", "cpu", "--h36m-regressor",
                                        str(path)])
    assert printed.exit_code == 0, printed.output
    assert "protocol paper:" in printed.output and "protocol h36m:" in printed.output
    assert "(protocol h36m: H36M-regressor joints, mean over 13 frames)" in printed.output
    np.save(tmp_path / "bad.npy", regressor[:, :100])
    with pytest.raises(ValueError, match=r"bad.npy: an H36M joint regressor must be a \(17, "
                                         r"6890\)"):
        evaluate(checkpoint, url, device="cpu", h36m_regressor=tmp_path / "bad.npy",
                 log=lambda _: None)
