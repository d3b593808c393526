"""make_example: determinism, consistency between its fields, ablation switches."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from synthgen.config import Config
from synthgen.example import draw_random, example_layers, ground_truth_crop_flow, make_example
from synthgen.core.joints import SMPL_INDEX
from synthgen.steps.composite import person_mask
from synthgen.steps.crops import crop_image, frame_to_crop
from synthgen.steps.tracking import shift_nearest
from synthgen.steps.total_occlusion import draw_total_occlusion, total_occlusion_indicator
from synthgen.steps.visibility import BEHIND_DEPTH, OCCLUDER, TOTAL_OCCLUSION
from synthgen.core.types import BackgroundClip
from synthgen.testing.made_inputs import panned_clip, synthetic_person

T = 9


@pytest.fixture(scope="module")
def inputs():
    frames, offsets = panned_clip(T, (2.0, 1.0))
    background = BackgroundClip(frames=frames, path="pan.mp4", start=0, crop_yx=(0, 0), scale=1.0)
    return background, offsets, synthetic_person(T)


@pytest.fixture(scope="module")
def config():
    return Config().replace(clip={"length": T})


@pytest.fixture(scope="module")
def example(inputs, config):
    return make_example(*inputs[:2], inputs[2], np.random.default_rng(7), config,
                        provenance={"seed": 7})


def _assert_equal_examples(a, b):
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and np.array_equal(x, y), f.name
        else:
            assert x == y, f.name


def test_same_seed_gives_a_bit_identical_example(inputs, config, example):
    again = make_example(*inputs[:2], inputs[2], np.random.default_rng(7), config,
                         provenance={"seed": 7})
    _assert_equal_examples(example, again)


def test_another_seed_changes_the_random_draws(config):
    draws = {draw_random(np.random.default_rng(seed), config) for seed in range(20)}
    assert len(draws) == 20


def test_example_fields_are_consistent(inputs, example):
    background, offsets, person = inputs
    assert example.rgb_crops.shape == (T, 224, 224, 3) and example.rgb_crops.dtype == np.uint8
    assert example.pair_crops.shape == (T - 1, 2, 224, 224, 3)
    assert example.occluder_crops.shape == (T, 224, 224) and example.occluder_crops.dtype == bool
    assert example.visibility.shape == (T, 24) and example.visibility.dtype == np.uint8
    assert example.boxes.shape == (T, 3)
    np.testing.assert_array_equal(example.pair_crops[:, 0], example.rgb_crops[:-1])
    np.testing.assert_allclose(example.joints2d, person.joints2d + offsets[:, None], atol=1e-4)
    np.testing.assert_array_equal(example.joints3d, person.joints3d)
    np.testing.assert_allclose(example.joints2d_crop,
                               frame_to_crop(example.joints2d, example.boxes, size=224), atol=1e-3)
    np.testing.assert_allclose(example.joints2d_pair_crop[:, 1],
                               frame_to_crop(example.joints2d[1:], example.boxes[:-1], size=224),
                               atol=1e-3)
    # The person is centred and 150 px tall in its crop.
    crop = example.joints2d_crop
    np.testing.assert_allclose(crop[..., 1].max(1) - crop[..., 1].min(1), 150, atol=1e-3)
    np.testing.assert_allclose((crop.max(1) + crop.min(1)) / 2, 112, atol=1e-3)
    # The hand behind the torso is hidden for that reason.
    assert np.all(example.visibility[:, SMPL_INDEX["right_hand"]] & BEHIND_DEPTH)
    assert not np.any(example.visibility[:, SMPL_INDEX["head"]] & BEHIND_DEPTH)
    assert np.array_equal(example.visibility[:, 0] & TOTAL_OCCLUSION > 0, example.total_occlusion)
    assert example.provenance["seed"] == 7 and example.provenance["background_path"] == "pan.mp4"
    assert example.occluder_reason in ("occluded", "missed_person", "too_few_visible")
    assert 10 <= example.superpixels_per_frame <= 30, example.superpixels_per_frame


def test_an_accepted_occluder_removes_pixels_and_hides_joints(inputs, config):
    # Seed 9 draws a superpixel over part of the figure (found by search; deterministic).
    example = make_example(*inputs[:2], inputs[2], np.random.default_rng(9), config)
    assert example.occluder_reason == "occluded", example.occluder_reason
    assert 0 < example.occluded_fraction < 1
    assert example.occluder_crops.any()
    covered = example.visibility & OCCLUDER > 0
    assert covered.any()
    # A joint flagged as covered lies inside the cropped occluder mask.
    t, j = np.argwhere(covered)[0]
    x, y = np.floor(example.joints2d_crop[t, j] + 0.5).astype(int)
    assert example.occluder_crops[t, max(y - 1, 0):y + 2, max(x - 1, 0):x + 2].any()


def test_no_occlusion_ablation_keeps_the_other_draws(inputs, config, example):
    ablated = make_example(*inputs[:2], inputs[2], np.random.default_rng(7),
                           config.replace(occluder={"enabled": False}))
    assert ablated.occluder_reason == "disabled" and ablated.num_superpixels == 0
    assert ablated.superpixels_per_frame == 0 and ablated.slic_segments == -1
    assert not ablated.occluder_crops.any() and not np.any(ablated.visibility & OCCLUDER)
    np.testing.assert_array_equal(ablated.total_occlusion, example.total_occlusion)
    assert ablated.segments_per_frame == example.segments_per_frame


def test_no_tracking_ablation_leaves_the_person_in_place(inputs, config):
    ablated = make_example(*inputs[:2], inputs[2], np.random.default_rng(7),
                           config.replace(tracking={"enabled": False}, occluder={"enabled": False}))
    np.testing.assert_array_equal(ablated.joints2d, inputs[2].joints2d)
    assert not ablated.tracking_offsets.any()
    np.testing.assert_array_equal(ablated.camera_offsets, inputs[1])


def test_static_background_ablation_repeats_the_centre_frame(inputs, config):
    background, offsets, person = inputs
    ablated = make_example(background, offsets, person, np.random.default_rng(7),
                           config.replace(background={"static": True}, occluder={"enabled": False}))
    assert not ablated.camera_offsets.any() and not ablated.tracking_offsets.any()
    np.testing.assert_array_equal(ablated.joints2d, person.joints2d)
    # A crop corner far from the person shows the same background in frames with the same box.
    static_person = dataclasses.replace(person, joints2d=np.broadcast_to(
        person.joints2d[T // 2], person.joints2d.shape).copy())
    still = make_example(background, offsets, static_person, np.random.default_rng(7),
                         config.replace(background={"static": True}, occluder={"enabled": False}))
    assert np.array_equal(still.rgb_crops[0, :20, :20], still.rgb_crops[-1, :20, :20])


def test_clip_length_follows_the_config():
    frames, offsets = panned_clip(4, (1.0, 0.0))
    background = BackgroundClip(frames=frames, path="pan.mp4", start=0, crop_yx=(0, 0), scale=1.0)
    config = Config().replace(clip={"length": 4}, occluder={"enabled": False})
    example = make_example(background, offsets, synthetic_person(4), np.random.default_rng(0),
                           config)
    assert example.rgb_crops.shape[0] == 4 and example.pair_crops.shape[0] == 3
    with pytest.raises(ValueError, match=r"expected \(5, 240, 320, 3\)"):
        make_example(background, offsets, synthetic_person(4), np.random.default_rng(0),
                     config.replace(clip={"length": 5}))


def test_offsets_must_be_zero_at_the_centre_frame(inputs, config):
    background, offsets, person = inputs
    with pytest.raises(ValueError, match="0 at the reference frame 4"):
        make_example(background, offsets + 1.0, person, np.random.default_rng(0), config)


def test_total_occlusion_runs_are_contiguous_and_bounded():
    rng = np.random.default_rng(0)
    draws = [draw_total_occlusion(rng, 31, probability=0.5, min_frames=1, max_frames=15)
             for _ in range(2000)]
    lengths = np.array([length for _, length in draws])
    assert 0.45 < np.mean(lengths > 0) < 0.55
    assert set(lengths[lengths > 0]) == set(range(1, 16))
    for start, length in draws[:200]:
        indicator = total_occlusion_indicator(31, start, length)
        assert indicator.sum() == length
        if length:
            assert np.all(indicator[start:start + length]) and start + length <= 31
    short = [draw_total_occlusion(rng, 8, probability=1.0, min_frames=1, max_frames=15)
             for _ in range(500)]
    assert max(length for _, length in short) == 8 and min(length for _, length in short) >= 1


def test_ground_truth_crop_flow_equals_the_cropped_frame_flow(inputs, config):
    """Composed in crop space, the ground-truth crop flow equals the flow of the whole composited
    frame (person flow moved by tracking, camera motion elsewhere) cropped afterwards, also for
    boxes that leave the frame."""
    frames, offsets = panned_clip(T, (2.3, -1.6))
    background = BackgroundClip(frames=frames, path="pan.mp4", start=0, crop_yx=(0, 0), scale=1.0)
    person = inputs[2]
    rng = np.random.default_rng(3)
    gtflow = rng.normal(0, 3, person.rgb.shape[:3] + (2,)).astype(np.float32)
    layers = example_layers(background, offsets, person, np.random.default_rng(7), config)
    assert np.any(np.abs(layers.tracking_offsets % 1) > 0.01)  # sub-pixel tracking shifts
    boxes = np.array([[-60.0 + 40 * t, 30.0 - 25 * t, 150.0 + 20 * t] for t in range(T)])
    size = 64
    got = ground_truth_crop_flow(layers, gtflow, boxes, size=size)

    camera = np.diff(layers.camera_offsets, axis=0)
    tracking = np.diff(layers.tracking_offsets, axis=0)
    visible = person_mask(layers.tracked.segm, layers.occluder.mask)
    for t in range(T - 1):
        moved = shift_nearest(gtflow[t], layers.tracking_offsets[t])
        frame = np.where(visible[t][..., None], moved + tracking[t], camera[t]).astype(np.float32)
        want = crop_image(frame, boxes[t], size=size, nearest=True) * np.float32(size / boxes[t, 2])
        bad = np.argwhere((got[t] != want).any(-1))
        assert not len(bad), (t, len(bad), bad[:5], got[t][tuple(bad[0])], want[tuple(bad[0])])
    assert (got == 0).all(axis=-1).any() and not (got == 0).all()  # outside the frame: 0
