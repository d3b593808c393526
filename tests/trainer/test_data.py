"""Trainer data path: stores -> batches -> device inputs and targets, heatmaps, randomisation."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import zarr

from synthgen import store as synthstore
from synthgen.core.joints import HEATMAP_KEYPOINTS, LEG_JOINTS
from synthgen.demo.body_model import write_smpl_model
from trainer.config import MODALITIES, DataConfig
from trainer.data import (ClipBatchSampler, ClipDataset, SlotBatch, SlotKeys, arrays_for,
                          channel_layout, crop_to_normalised, hidden_keypoints, input_channels,
                          make_inputs, make_loader, make_targets, open_stores, split_stores)
from trainer.heatmaps import render_heatmaps
from trainer.randomize import randomize_visibility
from trainer.smpl import SMPLJoints
from trainer.synthetic import make_synthetic_store

CROP = 64
FRAMES = 8


@pytest.fixture(scope="module")
def smpl(tmp_path_factory) -> SMPLJoints:
    return SMPLJoints.from_path(write_smpl_model(tmp_path_factory.mktemp("smpl")))


@pytest.fixture(scope="module")
def stores(tmp_path_factory, smpl) -> list[str]:
    """Two stores: A (12 examples, shard 1 of 3 unfinished), B (4 examples, other people)."""
    root = tmp_path_factory.mktemp("stores")
    a, b = str(root / "a.zarr"), str(root / "b.zarr")
    make_synthetic_store(a, smpl, num_examples=12, num_frames=FRAMES, crop_size=CROP,
                         finished_shards=[0, 2], seed=1)
    make_synthetic_store(b, smpl, num_examples=4, num_frames=FRAMES, crop_size=CROP,
                         num_persons=2, seed=2)
    return [a, b]


def _batch(stores, *, modality="flow_keypoints", clip_length=FRAMES, count=4):
    infos = open_stores(stores)
    items = np.concatenate([np.stack([np.full(s.examples.size, k), s.examples], 1)
                            for k, s in enumerate(infos)])[:count]
    dataset = ClipDataset(infos, items, clip_length=clip_length, arrays=arrays_for(modality))
    return {k: torch.as_tensor(np.stack([dataset[(i, 0)][k] for i in range(count)]))
            for k in dataset[(0, 0)]}


def test_dataset_reads_only_finished_shards_of_concatenated_stores(stores):
    infos = open_stores(stores)
    assert infos[0].examples.tolist() == [0, 1, 2, 3, 8, 9, 10, 11]
    assert infos[1].examples.tolist() == [0, 1, 2, 3]
    items = np.array([[0, 9], [1, 2]])
    dataset = ClipDataset(infos, items, clip_length=5, arrays=arrays_for("rgb_keypoints"))
    first = dataset[(0, 2)]
    group = synthstore.open_group(stores[0])
    np.testing.assert_array_equal(first["joints3d"], group["joints3d"][9, 2:7])
    np.testing.assert_array_equal(first["rgb"], group["rgb"][9, 2:6])  # the 4 pairs' frames t
    assert "flow" not in first
    second = ClipDataset(infos, items, clip_length=5, arrays=arrays_for("flow"))[(1, 3)]
    np.testing.assert_array_equal(second["flow"], synthstore.open_group(stores[1])["flow"][2, 3:7])
    assert second["flow_quantum"] == np.float32(1 / 32)
    # Worker processes: the dataset pickles without open stores and reopens them.
    loader = make_loader(dataset, ClipBatchSampler(np.full(2, FRAMES), clip_length=5,
                                                   batch_size=2, seed=0),
                         num_workers=1, pin_memory=False)
    batch = next(iter(loader))
    assert batch["rgb"].shape == (2, 4, CROP, CROP, 3) and batch["rgb"].dtype == torch.uint8


def test_unfinished_store_and_mixed_flow_backends_are_refused(tmp_path, smpl, stores):
    other = str(tmp_path / "tvl1.zarr")
    make_synthetic_store(other, smpl, num_examples=4, num_frames=FRAMES, crop_size=CROP,
                         crop_flow={"name": "tvl1", "params": {"num_warp": 5}})
    with pytest.raises(ValueError, match="crop-flow backend differs.*allow-mixed-flow"):
        open_stores([stores[0], other])
    assert len(open_stores([stores[0], other], allow_mixed_flow=True)) == 2
    empty = str(tmp_path / "empty.zarr")
    make_synthetic_store(empty, smpl, num_examples=4, num_frames=FRAMES, crop_size=CROP,
                         finished_shards=[])
    with pytest.raises(ValueError, match="empty.zarr: store has no finished shard"):
        open_stores([empty])


def test_a_store_of_unknown_joints_convention_is_refused_in_one_line(tmp_path, stores):
    copy = tmp_path / "mirrored.zarr"
    shutil.copytree(stores[1], copy)
    group = zarr.open_group(str(copy), mode="r+")
    group.attrs["joints_convention"] = "smpl24_camera_depth_mirror"
    with pytest.raises(ValueError) as caught:
        open_stores([str(copy)])
    message = str(caught.value)
    assert "\n" not in message and "'smpl24_camera_depth_mirror' is unknown" in message
    assert "rebuild the store" in message


def test_synthetic_stores_hold_their_declared_convention(stores, smpl):
    """joints3d = SMPL joints of the stored pose (camera-frame orientation) + a translation."""
    group = zarr.open_group(stores[1], mode="r")
    assert group.attrs["joints_convention"] == "smpl24_camera_posed"
    pose, betas, joints3d = (np.asarray(group[k][0]) for k in ("pose", "betas", "joints3d"))
    with torch.no_grad():
        body = smpl(torch.as_tensor(pose, dtype=torch.float64),
                    torch.as_tensor(betas, dtype=torch.float64).expand(len(pose), -1)).numpy()
    offset = joints3d - body
    assert np.linalg.norm(offset - offset[:, :1], axis=-1).max() < 1e-3


def test_split_holds_out_whole_surreal_clips_deterministically(stores):
    infos = open_stores(stores)
    train, val = split_stores(infos, val_every=3)
    assert len(train.items) + len(val.items) == 12
    assert len(val.items) > 0 and len(train.items) > 0
    assert not set(train.persons.tolist()) & set(val.persons.tolist())
    again_train, _ = split_stores(infos, val_every=3)
    np.testing.assert_array_equal(train.items, again_train.items)


def test_sampler_order_depends_on_seed_and_epoch_and_resumes():
    sampler = ClipBatchSampler(np.array([8, 8, 10, 8, 9]), clip_length=6, batch_size=2, seed=3)
    assert len(sampler) == 2
    first = list(sampler)
    assert first == list(sampler)
    sampler.set_epoch(1)
    second = list(sampler)
    assert second != first
    sampler.set_epoch(1, skip_batches=1)
    assert list(sampler) == second[1:]
    for batch in first + second:
        for position, start in batch:
            assert 0 <= start <= [8, 8, 10, 8, 9][position] - 6
    val = ClipBatchSampler(np.array([8, 10, 8]), clip_length=6, batch_size=2, seed=0, shuffle=False)
    assert list(val) == [[(0, 1), (1, 2)], [(2, 1)]]


def test_heatmaps_peak_at_keypoint_with_sigma_10_and_vanish_when_hidden():
    keypoints = torch.tensor([[[50.0, 30.0], [100.0, 120.0]]])
    maps = render_heatmaps(keypoints, torch.tensor([[True, False]]), size=224, crop_size=224)
    assert maps.shape == (1, 2, 224, 224)
    peak = torch.nonzero(maps[0, 0] == maps[0, 0].max())[0].tolist()
    assert peak == [30, 50] and maps[0, 0, 30, 50] == pytest.approx(1.0)
    assert maps[0, 0, 30, 60] == pytest.approx(np.exp(-0.5), rel=1e-5)  # 10 px = one sigma
    assert maps[0, 0, 50, 50] == pytest.approx(np.exp(-2.0), rel=1e-5)
    assert maps[0, 1].abs().max() == 0
    # At a quarter of the resolution the maps sample the same crop-pixel Gaussian.
    small = render_heatmaps(keypoints, torch.tensor([[True, True]]), size=56, crop_size=224)
    centre = 4 * 7 + 1.5  # crop-pixel position of small-map pixel 7
    assert small[0, 0, 7, 12] == pytest.approx(
        np.exp(-((4 * 12 + 1.5 - 50) ** 2 + (centre - 30) ** 2) / 200), rel=1e-5)


def test_visibility_randomisation_rates():
    count = 12
    leg = torch.zeros(count, dtype=torch.bool)
    leg[:6] = True
    generator = torch.Generator().manual_seed(0)
    hidden = torch.ones((4000, 5, count), dtype=torch.bool)
    unhidden = ~randomize_visibility(hidden, leg, generator=generator, flip_probability=0.0)
    per_clip = unhidden[:, :, :6]
    assert (per_clip == per_clip[:, :1, :1]).all()  # decided once per clip for all legs
    assert per_clip[:, 0, 0].float().mean() == pytest.approx(0.5, abs=0.03)
    assert not unhidden[:, :, 6:].any()
    flipped = randomize_visibility(torch.zeros((4000, 5, count), dtype=torch.bool), leg,
                                   generator=generator, leg_unhide_probability=0.0)
    assert flipped.float().mean() == pytest.approx(0.05, abs=0.005)
    both = randomize_visibility(hidden, leg, generator=generator)
    assert both[..., 6:].float().mean() == pytest.approx(0.95, abs=0.005)
    assert both[..., :6].float().mean() == pytest.approx(0.5 * 0.95 + 0.5 * 0.05, abs=0.03)
    a = randomize_visibility(hidden, leg, generator=torch.Generator().manual_seed(5))
    b = randomize_visibility(hidden, leg, generator=torch.Generator().manual_seed(5))
    c = randomize_visibility(hidden, leg, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_hidden_keypoints_use_the_leg_joints():
    assert set(HEATMAP_KEYPOINTS[:6].tolist()) == set(LEG_JOINTS.tolist())
    batch = {"visibility": torch.full((2000, 1, 24), 2, dtype=torch.uint8)}
    config = DataConfig(flip_probability=0.0)
    stored = hidden_keypoints(batch, config=config, generator=None)
    assert stored.all()
    hidden = hidden_keypoints(batch, config=config, generator=torch.Generator().manual_seed(1))
    legs = np.isin(HEATMAP_KEYPOINTS, LEG_JOINTS)
    assert hidden[..., ~legs].all() and hidden[..., legs].float().mean() == pytest.approx(0.5, abs=0.04)


@pytest.mark.parametrize("modality", sorted(MODALITIES))
def test_input_channels_layout_and_total_occlusion(stores, modality):
    batch = _batch(stores, modality=modality)
    batch["total_occlusion"][:] = False
    batch["total_occlusion"][1, 2] = True
    config = DataConfig(modality=modality, input_size=CROP)
    hidden = hidden_keypoints(batch, config=config, generator=None)
    inputs = make_inputs(batch, config=config, crop_size=CROP, hidden=hidden)
    layout = channel_layout(modality)
    assert inputs.shape == (4, FRAMES - 1, input_channels(modality), CROP, CROP)
    assert list(layout) == [*MODALITIES[modality], "total_occlusion"]
    if "rgb" in modality:
        assert layout["rgb"] == slice(0, 3)
        red = (batch["rgb"][0, 3, :, :, 0].float() / 255 - 0.485) / 0.229
        torch.testing.assert_close(inputs[0, 3, 0], red)
    if "flow" in modality:
        assert layout["flow"] == slice(0, 3)
        flow = batch["flow"][0, 3].float() / 32 / 20
        torch.testing.assert_close(inputs[0, 3, 0], flow[..., 0])
        torch.testing.assert_close(inputs[0, 3, 2], torch.linalg.vector_norm(flow, dim=-1))
    if "keypoints" in modality:
        maps = inputs[0, 3, layout["keypoints"]]
        for k, joint in enumerate(HEATMAP_KEYPOINTS):
            x, y = batch["joints2d_crop"][0, 3, joint].tolist()
            if hidden[0, 3, k]:
                assert maps[k].max() == 0
            elif 0 <= round(x) < CROP and 0 <= round(y) < CROP:
                assert maps[k, round(y), round(x)] > 0.99  # within a pixel of the peak
    indicator = inputs[:, :, layout["total_occlusion"]]
    assert indicator[1, 2].min() == 1 and indicator.sum() == CROP * CROP
    assert inputs[1, 2, :-1].abs().max() == 0  # every other channel zeroed on that frame
    assert inputs[1, 3, :-1].abs().max() > 0
    resized = make_inputs(batch, config=dataclasses.replace(config, input_size=32),
                          crop_size=CROP, hidden=hidden)
    assert resized.shape[-2:] == (32, 32)


def test_targets_current_and_future_frames_in_box_t(stores):
    batch = _batch(stores)
    targets = make_targets(batch, crop_size=CROP)
    assert targets["keypoints"].shape == (4, FRAMES - 1, 2, 24, 2)
    # Current: frame t in box t, as stored.
    torch.testing.assert_close(targets["keypoints"][:, :, 0],
                               crop_to_normalised(batch["joints2d_crop"][:, :-1], CROP))
    # Future: frame t+1 projected independently (camera metres -> pixels) into box t.
    joints3d = batch["joints3d"].double()
    pixels = 600.0 * joints3d[..., :2] / joints3d[..., 2:] + torch.tensor([160.0, 120.0],
                                                                           dtype=torch.float64)
    boxes = batch["boxes"].double()
    future = (pixels[:, 1:] - boxes[:, :-1, None, :2]) * CROP / boxes[:, :-1, None, 2:]
    torch.testing.assert_close(targets["keypoints"][:, :, 1].double(),
                               (future + 0.5) * 2 / CROP - 1, atol=1e-4, rtol=0)
    assert not torch.allclose(targets["keypoints"][:, :, 1], targets["keypoints"][:, :, 0])
    torch.testing.assert_close(targets["joints3d"][:, :, 1], batch["joints3d"][:, 1:])
    assert torch.equal(targets["visible"][:, :, 1], batch["visibility"][:, 1:] == 0)
    # Crop-to-normalised: the crop edges map to -1 and +1.
    assert crop_to_normalised(torch.tensor([-0.5, CROP - 0.5]), CROP).tolist() == [-1.0, 1.0]


def _copy_store(url: str, tmp_path) -> str:
    copy = tmp_path / "copy.zarr"
    shutil.copytree(url, copy)
    return str(copy)


def test_dataset_refuses_a_store_without_an_array_its_modality_reads(stores, tmp_path):
    copy = _copy_store(stores[1], tmp_path)
    shutil.rmtree(Path(copy) / "rgb")  # what a store built with store.omit = ["rgb"] lacks
    zarr.open_group(copy, mode="r+").attrs["omitted"] = ["rgb"]
    infos = open_stores([copy])
    items = np.array([[0, 0]])
    assert ClipDataset(infos, items, clip_length=5, arrays=arrays_for("flow_keypoints"))[(0, 0)]
    with pytest.raises(ValueError, match="copy.zarr: store has no rgb \\(built with store.omit\\)"):
        ClipDataset(infos, items, clip_length=5, arrays=arrays_for("rgb_keypoints"))


def test_damaged_store_is_an_error_naming_store_array_and_shard(stores, tmp_path):
    copy = _copy_store(stores[1], tmp_path)
    [path] = [p for p in (Path(copy) / "flow" / "c" / "0").rglob("*") if p.is_file()]
    data = bytearray(path.read_bytes())
    data[100:116] = bytes(b ^ 0xFF for b in data[100:116])
    path.write_bytes(bytes(data))
    dataset = ClipDataset(open_stores([copy]), np.array([[0, 0]]), clip_length=5,
                          arrays=arrays_for("flow"))
    with pytest.raises(synthstore.StoreDamageError, match="copy.zarr: array flow shard 0"):
        dataset[(0, 0)]
    loader = make_loader(dataset, ClipBatchSampler(np.full(1, FRAMES), clip_length=5,
                                                   batch_size=1, seed=0),
                         num_workers=1, pin_memory=False)
    with pytest.raises(synthstore.StoreDamageError, match="copy.zarr: array flow shard 0"):
        next(iter(loader))  # the same error type out of a worker process
    path.unlink()  # a done shard's file missing: refused when the store is opened
    with pytest.raises(synthstore.StoreDamageError, match="flow shard 0 .* missing"):
        open_stores([copy])


def test_shard_sequential_epochs_visit_each_shard_in_one_run():
    shards = np.repeat([7, 3, 5, 9], 4)
    sampler = ClipBatchSampler(np.full(16, 8), clip_length=6, batch_size=2, seed=1, shards=shards)
    orders = []
    for epoch in range(3):
        sampler.set_epoch(epoch)
        positions = [p for batch in sampler for p, _ in batch]
        assert sorted(positions) == list(range(16))
        visited = shards[positions]
        assert (np.diff(visited) != 0).sum() == 3  # each shard's examples together
        orders.append(positions)
    assert orders[0] != orders[1] != orders[2]
    sampler.set_epoch(1)
    assert [p for batch in sampler for p, _ in batch] == orders[1]


def test_split_labels_shards_of_each_store(stores):
    infos = open_stores(stores)
    train, val = split_stores(infos, val_every=3)
    items = np.concatenate([train.items, val.items])
    labels = np.concatenate([train.shards, val.shards])
    for (store_a, example_a), label_a in zip(items.tolist(), labels.tolist()):
        for (store_b, example_b), label_b in zip(items.tolist(), labels.tolist()):
            same = store_a == store_b and example_a // 4 == example_b // 4
            assert (label_a == label_b) == same


@pytest.mark.parametrize("clip_length", [FRAMES, 5])  # whole chunks decoded in place; windows
def test_batches_equal_the_collated_items(stores, clip_length):
    infos = open_stores(stores)
    items = np.array([[0, 9], [1, 2], [0, 1]])
    keys = [(0, 0), (1, FRAMES - clip_length), (2, 0)]
    for modality in ("flow_keypoints", "rgb"):
        dataset = ClipDataset(infos, items, clip_length=clip_length, arrays=arrays_for(modality))
        batch = dataset.__getitems__(keys)
        expected = torch.utils.data.default_collate([dataset[key] for key in keys])
        assert batch.keys() == expected.keys()
        for name, value in expected.items():
            assert batch[name].dtype == value.dtype and torch.equal(batch[name], value), name


def test_person_identity_does_not_depend_on_where_the_dataset_lives():
    from trainer.data import _person_names

    def attrs(root):
        return {"sources": {"surreal": [
            {"path": f"{root}/cmu/train/run0/01_01/01_01_c0001.mp4", "num_frames": 100},
            {"path": f"{root}/cmu/train/run1/01_01/01_01_c0001.mp4", "num_frames": 100}]}}

    here = _person_names(attrs("/data/SURREAL"), "a.zarr", np.array([0, 1]))
    there = _person_names(attrs("/mnt/other/copy"), "b.zarr", np.array([0, 1]))
    assert here.tolist() == there.tolist() == ["run0/01_01/01_01_c0001.mp4",
                                               "run1/01_01/01_01_c0001.mp4"]


def _expected_batches(dataset, sampler):
    return [torch.utils.data.default_collate([dataset[key] for key in keys]) for keys in sampler]


def _assert_batches_equal(got, expected):
    assert len(got) == len(expected)
    for batch, want in zip(got, expected):
        assert batch.keys() == want.keys()
        for name, value in want.items():
            assert torch.equal(batch[name], value), name


@pytest.mark.parametrize("workers", [0, 2])
def test_reused_batch_buffers_never_change_a_batch_still_held(stores, workers):
    infos = open_stores(stores)
    items = np.concatenate([np.stack([np.full(s.examples.size, k), s.examples], 1)
                            for k, s in enumerate(infos)])
    dataset = ClipDataset(infos, items, clip_length=5, arrays=arrays_for("flow_keypoints"))
    sampler = ClipBatchSampler(np.full(len(items), FRAMES), clip_length=5, batch_size=2, seed=4)
    loader = make_loader(dataset, sampler, num_workers=workers, pin_memory=False)
    slots = loader.dataset.slots

    def buffer_of(batch):  # the buffer holding a batch's flow, or None (new memory)
        pointer = batch["flow"].data_ptr()
        return next((k for k, s in enumerate(slots.storages)
                     if s.data_ptr() <= pointer < s.data_ptr() + s.nbytes()), None)

    for epoch in range(3):
        sampler.set_epoch(epoch)
        expected = _expected_batches(dataset, sampler)
        # Dropped at once: every batch comes through the reused buffers.
        got, used = [], set()
        for batch in loader:
            used.add(buffer_of(batch) is not None)
            got.append({name: value.clone() for name, value in batch.items()})
        _assert_batches_equal(got, expected)
        assert used == {True}
        # Held (whole batches, or only a view of one array): never overwritten; once the buffers
        # run out, batches get new memory.
        held = list(loader)
        views = [batch["flow"][1:] for batch in loader]
        _assert_batches_equal(held, expected)
        for view, want in zip(views, expected):
            assert torch.equal(view, want["flow"][1:])
        inside = [buffer_of(b) for b in held if buffer_of(b) is not None]
        assert inside and len(set(inside)) == len(inside)
        del held, views
    # An epoch abandoned midway gives its buffers back.
    for _ in range(2):
        first = next(iter(loader))
        del first
    assert len(list(loader)) == len(sampler)
    assert all(buffer_of(batch) is not None for batch in loader)


def test_a_pinned_slot_batch_is_a_copy_and_frees_its_buffer(stores, monkeypatch):
    # The DataLoader's pinning thread calls SlotBatch.pin_memory(); without an accelerator,
    # pinning is replaced by a copy.
    monkeypatch.setattr(torch.Tensor, "pin_memory", lambda self, *a, **k: self.clone())
    infos = open_stores(stores)
    items = np.array([[0, 9], [1, 2], [0, 1]])
    dataset = ClipDataset(infos, items, clip_length=5, arrays=arrays_for("flow_keypoints"))
    sampler = ClipBatchSampler(np.full(3, FRAMES), clip_length=5, batch_size=3, seed=0)
    loaded = make_loader(dataset, sampler, num_workers=0, pin_memory=False).dataset
    keys = [(0, 1), (2, 0), (1, 3)]
    slot = loaded.slots.take()
    batch = loaded.__getitems__(SlotKeys(keys, slot))
    assert isinstance(batch, SlotBatch)
    pinned = batch.pin_memory()
    expected = torch.utils.data.default_collate([dataset[key] for key in keys])
    _assert_batches_equal([pinned], [expected])
    assert loaded.slots.take() == slot  # free again: reused, the copy stays as it was
    loaded.__getitems__(SlotKeys(keys[::-1], slot))
    _assert_batches_equal([pinned], [expected])


@pytest.mark.parametrize("kind,use", [("3dpw", "trainer eval"), ("video", "trainer predict")])
def test_a_store_of_another_kind_is_refused_for_training(tmp_path, kind, use):
    """A 3DPW store was a KeyError traceback ('surreal_index'); a video store was told to be
    rebuilt for its joints convention."""
    url = str(tmp_path / f"{kind}.zarr")
    synthstore.create_store(url, num_examples=1, num_frames=2, crop_size=8, examples_per_shard=1,
                            attrs={}, kind=kind)
    with pytest.raises(ValueError, match=f"is a '{kind}' store: training reads synthetic stores "
                                         f"\\(synthgen build\\); use it with {use}"):
        open_stores([url])
