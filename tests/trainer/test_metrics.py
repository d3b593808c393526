"""Metrics (MPJPE, PA-MPJPE), Procrustes alignment, losses, DANN pieces, trainer joint sets."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
from scipy.spatial.transform import Rotation

from trainer.losses import (
    DomainAdversary,
    keypoint_loss,
    pa_keypoint_error,
    pair_frames,
    reprojection_error,
    reverse_gradient,
    stack_heads,
)
from trainer.metrics import METRES_TO_MM, average_per_person, mpjpe, pa_mpjpe
from trainer.procrustes import similarity_align
from trainer.smpl import weak_perspective


def _umeyama_pa_mpjpe(pred: np.ndarray, target: np.ndarray) -> float:
    """Independent reference: Umeyama (1991) aligning ``pred`` to ``target``, one frame."""
    n = len(pred)
    mu_p, mu_t = pred.mean(axis=0), target.mean(axis=0)
    p, t = pred - mu_p, target - mu_t
    covariance = t.T @ p / n  # Umeyama's Sigma_xy with x = target, y = pred
    u, d, vt = np.linalg.svd(covariance)
    s = np.eye(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        s[2, 2] = -1
    rotation = u @ s @ vt  # maps pred into target: target ~ c R pred + t
    scale = np.trace(np.diag(d) @ s) / (np.sum(p ** 2) / n)
    aligned = scale * (rotation @ pred.T).T + (mu_t - scale * rotation @ mu_p)
    return float(np.mean(np.linalg.norm(aligned - target, axis=1)))


def test_mpjpe_and_pa_mpjpe_match_independent_numpy():
    rng = np.random.default_rng(0)
    pred = rng.normal(size=(4, 6, 14, 3))
    target = rng.normal(size=(4, 6, 14, 3))
    got_pa = pa_mpjpe(torch.from_numpy(pred), torch.from_numpy(target)).numpy()
    got = mpjpe(torch.from_numpy(pred), torch.from_numpy(target)).numpy()
    assert got_pa.shape == got.shape == (4, 6)
    want_pa = np.array([[_umeyama_pa_mpjpe(p, t) for p, t in zip(pp, tt)]
                        for pp, tt in zip(pred, target)])
    want = np.linalg.norm(pred - target, axis=-1).mean(axis=-1)
    np.testing.assert_allclose(got_pa, want_pa, atol=1e-5)
    np.testing.assert_allclose(got, want, atol=1e-5)
    # random point sets often prefer a reflection: make sure the test exercised the sign fix
    reflections = [
        np.linalg.det(scipy.linalg.orthogonal_procrustes(p - p.mean(0), t - t.mean(0))[0])
        for p, t in zip(pred.reshape(-1, 14, 3), target.reshape(-1, 14, 3))]
    assert min(reflections) < 0 < max(reflections)


def test_pa_mpjpe_forgives_similarity_but_not_reflection():
    rng = np.random.default_rng(1)
    target = rng.normal(scale=0.4, size=(14, 3)) * METRES_TO_MM
    rotation = Rotation.random(random_state=2).as_matrix()
    moved = 1.7 * target @ rotation.T + np.array([300.0, -50.0, 4000.0])
    t = torch.from_numpy(target)
    assert pa_mpjpe(torch.from_numpy(moved), t).item() < 1e-8
    assert mpjpe(torch.from_numpy(moved), t).item() > 100.0
    mirrored = target * np.array([-1.0, 1.0, 1.0])
    assert pa_mpjpe(torch.from_numpy(mirrored), t).item() > 50.0
    # an unconstrained orthogonal Procrustes would call the mirror image perfect
    r, _ = scipy.linalg.orthogonal_procrustes(mirrored - mirrored.mean(0), target - target.mean(0))
    assert np.allclose((mirrored - mirrored.mean(0)) @ r, target - target.mean(0))


def test_mpjpe_root_centring():
    target = torch.zeros(14, 3)
    pred = target + torch.tensor([1.0, 2.0, 2.0])
    assert mpjpe(pred, target).item() == pytest.approx(3.0)
    assert mpjpe(pred, target, root=[2, 3]).item() == pytest.approx(0.0)


def test_average_per_person_weights_people_equally():
    errors = np.array([10.0, 10.0, 10.0, 40.0])
    person = np.array(["a", "a", "a", "b"])
    assert average_per_person(errors, person) == pytest.approx(25.0)
    with pytest.raises(ValueError, match="equal-length"):
        average_per_person(errors, person[:3])


def test_similarity_align_gradients_are_correct():
    rng = np.random.default_rng(3)
    source = torch.tensor(rng.normal(size=(2, 6, 3)), requires_grad=True)
    target = torch.tensor(rng.normal(size=(2, 6, 3)))
    assert torch.autograd.gradcheck(lambda s: similarity_align(s, target), (source,))


def test_keypoint_loss_is_zero_for_a_perfect_prediction_and_grows_otherwise():
    rng = np.random.default_rng(4)
    joints = torch.tensor(rng.normal(scale=0.3, size=(2, 3, 2, 14, 3)), requires_grad=True)
    camera = torch.tensor([0.9, 0.1, -0.05], dtype=torch.float64).expand(2, 3, 2, 3)
    rotation = torch.from_numpy(Rotation.random(random_state=5).as_matrix())
    target_3d = (1.3 * joints @ rotation.T).detach()  # the ground truth frame differs: aligned
    keypoints = weak_perspective(joints, camera).detach()
    visible = torch.ones(2, 3, 2, 14, dtype=torch.bool)
    perfect = keypoint_loss(joints, camera, target_3d, keypoints, visible)
    assert perfect["loss"].item() < 1e-6
    shifted = keypoints.clone()
    shifted[..., 0] += 0.1  # every keypoint 0.1 to the right
    worse = keypoint_loss(joints, camera, target_3d, shifted, visible, weight_2d=2.0)
    assert worse["reprojection_2d"].item() == pytest.approx(0.1)
    assert worse["loss"].item() == pytest.approx(worse["pa_3d"].item() + 0.2)
    worse["loss"].backward()
    assert torch.isfinite(joints.grad).all() and joints.grad.abs().sum() > 0


def test_pa_keypoint_error_equals_pa_mpjpe():
    rng = np.random.default_rng(6)
    pred, target = (torch.tensor(rng.normal(size=(5, 14, 3))) for _ in range(2))
    torch.testing.assert_close(pa_keypoint_error(pred, target), pa_mpjpe(pred, target))


def test_reprojection_error_ignores_hidden_keypoints():
    pred = torch.zeros(1, 3, 2)
    target = torch.tensor([[[0.2, 0.1], [5.0, 5.0], [0.0, -0.3]]])
    visible = torch.tensor([[True, False, True]])
    assert reprojection_error(pred, target, visible).item() == pytest.approx(0.3)
    assert reprojection_error(pred, target, torch.zeros(1, 3, dtype=torch.bool)).item() == 0.0


def test_pair_frames_and_stack_heads_line_up():
    per_frame = torch.arange(2 * 4).reshape(2, 4)  # frame numbers of two 4-frame clips
    paired = pair_frames(per_frame)
    assert paired.shape == (2, 3, 2)
    assert paired[1, 2].tolist() == [6, 7]  # pair 2: frames 2 (current) and 3 (future)
    outputs = {"current": torch.zeros(2, 3, 85), "future": torch.ones(2, 3, 85)}
    heads = stack_heads(outputs)
    assert heads.shape == (2, 3, 2, 85)
    assert heads[:, :, 0].eq(0).all() and heads[:, :, 1].eq(1).all()


def test_gradient_reversal_flips_and_scales_the_gradient():
    x = torch.randn(4, 3, requires_grad=True)
    y = reverse_gradient(x, 2.5)
    assert torch.equal(y, x)
    (y * torch.arange(3.0)).sum().backward()
    torch.testing.assert_close(x.grad, -2.5 * torch.arange(3.0).expand(4, 3))


def test_domain_adversary_learns_while_the_trunk_is_pushed_the_other_way():
    torch.manual_seed(0)
    adversary = DomainAdversary(8, hidden=16, weight=0.5)
    features = torch.randn(2, 5, 8, requires_grad=True)
    logits = adversary(features)
    assert logits.shape == (2, 5)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.ones(2, 5))
    loss.backward()
    reference = features.detach().clone().requires_grad_(True)
    torch.nn.functional.binary_cross_entropy_with_logits(
        adversary.mlp(reference).squeeze(-1), torch.ones(2, 5)).backward()
    torch.testing.assert_close(features.grad, -0.5 * reference.grad)
    assert adversary.mlp[0].weight.grad is not None
