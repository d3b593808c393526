"""Occluder acceptance and rejection reasons on hand-made superpixels."""

from __future__ import annotations

import numpy as np
import pytest

from synthgen.core.joints import COCO14
from synthgen.steps.occluder import (DISABLED, MISSED_PERSON, OCCLUDED, TOO_FEW_VISIBLE,
                                     apply_occluder, disabled_occluder,
                                     outcome_probabilities, pick_superpixel)

T, H, W = 2, 40, 60


@pytest.fixture
def scene():
    """Label 1: left half, 2: right half, 3: a 6x10 block inside the person (left half).

    The person fills x 5..24, y 5..34; joints sit in a column at x = 15, y = 6..29 (one per row
    step), so label 3 (y 24..29) covers the joints at y >= 24, label 1 all the others.
    """
    labels = np.ones((T, H, W), np.int32)
    labels[:, :, 30:] = 2
    labels[:, 24:30, 10:20] = 3
    person = np.zeros((T, H, W), bool)
    person[:, 5:35, 5:25] = True
    joints = np.zeros((T, 24, 2))
    joints[..., 0] = 15
    joints[..., 1] = np.arange(6, 30)
    return labels, person, joints


def test_pick_superpixel_is_uniform_over_present_labels():
    labels = np.array([[[2, 5], [9, 9]]])
    assert [pick_superpixel(labels, u) for u in (0.0, 0.34, 0.67, 0.999)] == [2, 5, 9, 9]


def test_occluder_missing_the_person_is_rejected(scene):
    labels, person, joints = scene
    result = apply_occluder(labels, 2, person, joints, np.zeros((T, 24), bool), min_visible=7)
    assert result.reason == MISSED_PERSON and not result.mask.any()
    assert result.occluded_fraction == 0.0 and result.superpixel == 2


def test_occluder_hiding_too_much_is_rejected(scene):
    labels, person, joints = scene
    result = apply_occluder(labels, 1, person, joints, np.zeros((T, 24), bool), min_visible=7)
    assert result.reason == TOO_FEW_VISIBLE and not result.mask.any()
    # Label 1 covers the joints at y < 24: of COCO14 only the 4 at y >= 24 remain.
    assert result.candidate_visible == np.count_nonzero(joints[0, COCO14, 1] >= 24) == 4


def test_accepted_occluder_records_mask_and_fraction(scene):
    labels, person, joints = scene
    result = apply_occluder(labels, 3, person, joints, np.zeros((T, 24), bool), min_visible=7)
    assert result.reason == OCCLUDED and result.occluded
    assert np.array_equal(result.mask, labels == 3)
    assert result.occluded_fraction == pytest.approx(60 / 600)
    assert result.candidate_visible == np.count_nonzero(joints[0, COCO14, 1] < 24) == 10


def test_joints_hidden_for_other_reasons_count_against_the_occluder(scene):
    labels, person, joints = scene
    hidden = np.zeros((T, 24), bool)
    visible_after = joints[0, :, 1] < 24
    # Hide (e.g. out of frame) enough of the joints label 3 leaves visible to go below 7.
    still = COCO14[visible_after[COCO14]]
    hidden[:, still[: len(still) - 6]] = True
    result = apply_occluder(labels, 3, person, joints, hidden, min_visible=7)
    assert result.reason == TOO_FEW_VISIBLE and result.candidate_visible == 6


def test_disabled_occluder_is_empty():
    result = disabled_occluder((T, H, W))
    assert result.reason == DISABLED and result.mask.shape == (T, H, W) and not result.mask.any()


def test_outcome_probabilities_are_those_of_the_superpixel_draw(scene):
    labels, person, joints = scene
    labels = labels.copy()
    labels[:, :3, :3] = 4  # a fourth superpixel, outside the person
    hidden = np.zeros((T, 24), bool)
    probabilities = outcome_probabilities(labels, person, joints, hidden, min_visible=7)
    assert probabilities == {OCCLUDED: 0.25, MISSED_PERSON: 0.5, TOO_FEW_VISIBLE: 0.25}
    draws = [apply_occluder(labels, pick_superpixel(labels, u), person, joints, hidden,
                            min_visible=7).reason for u in np.linspace(0, 1, 400, endpoint=False)]
    assert {reason: draws.count(reason) / len(draws) for reason in probabilities} == probabilities
