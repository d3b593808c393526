"""``synthgen inspect``: statistics equal to direct computation, a corrupt or missing shard found
and named, rebuilt examples compared exactly, exit codes."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import zarr
from click.testing import CliRunner

from synthgen.tools import inspect as insp
from synthgen import store
from synthgen.cli import main
from tests.tools.tiny_store import NUM_EXAMPLES, TinyStore, make_tiny_store


@pytest.fixture(scope="module")
def tiny_store(small_demo, tmp_path_factory) -> TinyStore:
    return make_tiny_store(small_demo, tmp_path_factory)


def _copy(tiny: TinyStore, tmp_path: Path) -> Path:
    copy = tmp_path / "copy.zarr"
    shutil.copytree(tiny.url, copy)
    return copy


def _shard_file(url: Path, array: str, shard: int) -> Path:
    files = [p for p in (url / array / "c" / str(shard)).rglob("*") if p.is_file()]
    assert len(files) == 1
    return files[0]


def test_statistics_equal_values_computed_from_the_arrays(tiny_store):
    group = store.open_group(tiny_store.url)
    stats, problems, finished = insp.scan(group)
    assert problems == [] and finished.all()
    ds = store.open_store(tiny_store.url)
    reasons = ds["occluder_reason"].values
    occluded = reasons == list(group.attrs["occluder_reasons"]).index("occluded")
    assert stats.examples == NUM_EXAMPLES
    assert stats.occlusion_rate == pytest.approx(occluded.mean())
    assert sum(stats.occluder_reasons.values()) == NUM_EXAMPLES
    visibility = ds["visibility"].values
    for name, bit in (("outside_frame", 1), ("occluder", 2), ("total_occlusion", 4),
                      ("behind_body", 8)):
        assert stats.visibility[name] == pytest.approx(np.mean((visibility & bit) != 0))
    assert stats.visibility["visible"] == pytest.approx(np.mean(visibility == 0))
    total = ds["total_occlusion"].values
    assert stats.total_occlusion_frames == pytest.approx(total.mean())
    assert stats.total_occlusion_examples == pytest.approx(total.any(axis=1).mean())
    # Totally occluded frames hide every joint with bit 4, and nothing else sets it.
    assert stats.visibility["total_occlusion"] == pytest.approx(total.mean())
    per_frame = ds["superpixels_per_frame"].values
    assert np.all((per_frame >= 10) & (per_frame <= 30)), per_frame
    np.testing.assert_allclose(list(stats.superpixels_per_frame.values()),
                               np.percentile(per_frame, insp.PERCENTILES))
    sides = ds["boxes"].values[..., 2]
    np.testing.assert_allclose(list(stats.box_side_px.values()),
                               np.percentile(sides, insp.PERCENTILES))
    motion = ds["camera_motion"].values.astype(np.float64)
    speed = np.linalg.norm(np.diff(motion, axis=1), axis=-1)
    np.testing.assert_allclose(list(stats.camera_speed_px.values()),
                               np.percentile(speed, insp.PERCENTILES))
    extent = np.linalg.norm(motion, axis=-1).max(axis=1)
    np.testing.assert_allclose(list(stats.camera_extent_px.values()),
                               np.percentile(extent, insp.PERCENTILES))
    magnitude = np.linalg.norm(ds["flow"].values, axis=-1)
    quantum = group["flow"].attrs["quantum_px"]
    np.testing.assert_allclose(list(stats.flow_magnitude_px.values()),
                               np.percentile(magnitude, insp.PERCENTILES, method="inverted_cdf"),
                               atol=quantum)
    assert stats.flow_magnitude_px[100] > stats.flow_magnitude_px[50] > 0


def test_histogram_percentiles_use_nearest_rank_bin_centres():
    counts = np.array([2, 0, 1, 1])  # values in bins 0, 0, 2, 3
    result = insp.histogram_percentiles(counts, 0.5)
    assert result[0] == 0.25 and result[50] == 0.25 and result[100] == 1.75
    assert np.isnan(insp.histogram_percentiles(np.zeros(3), 1.0)[50])


def test_describe_lists_every_array_with_its_layout(tiny_store):
    infos = {a.name: a for a in insp.describe(store.open_group(tiny_store.url))}
    # Demo people have ground-truth flow: the optional gt_crop_flow array is there too.
    assert set(infos) == set(store.schema(8, 224)) | {"gt_crop_flow", "shard_done"}
    rgb = infos["rgb"]
    assert rgb.shape == (NUM_EXAMPLES, 8, 224, 224, 3) and rgb.dtype == "uint8"
    assert rgb.chunks == (1, 8, 224, 224, 3) and rgb.shards == (2, 8, 224, 224, 3)
    assert "zstd" in rgb.codecs and rgb.dims[0] == "example"
    assert 0 < rgb.stored_bytes < NUM_EXAMPLES * 8 * 224 * 224 * 3
    assert "crop pixels" in infos["flow"].units


def test_corrupt_shard_file_is_reported_with_its_shard(tiny_store, tmp_path):
    copy = _copy(tiny_store, tmp_path)
    path = _shard_file(copy, "rgb", 1)
    data = bytearray(path.read_bytes())
    data[:64] = b"\xff" * 64  # the first chunk's Blosc header
    path.write_bytes(bytes(data))
    stats, problems, _ = insp.scan(store.open_group(str(copy)))
    assert [(p.shard, p.array, p.examples) for p in problems] == [(1, "rgb", (2, 4))]
    assert stats.examples == 2  # the sound shard still counts
    result = CliRunner().invoke(main, ["inspect", str(copy), "--quiet"])
    assert result.exit_code == 1
    assert "FAILED shard 1 (examples 2..3) array rgb" in result.output


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 16] = bytes(b ^ 0xFF for b in data[middle:middle + 16])
    path.write_bytes(bytes(data))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:path.stat().st_size // 2])


#: The six damages of issue 13: (array, shard, what is done to its file, what the report says).
DAMAGES = [("rgb", 1, _flip, "checksum mismatch"), ("pose", 0, _flip, "checksum mismatch"),
           ("flow", 0, Path.unlink, "missing although the shard is marked done"),
           ("pose", 1, Path.unlink, "missing although the shard is marked done"),
           ("rgb", 0, _truncate, "shard index checksum mismatch"),
           ("flow", 1, _flip, "checksum mismatch")]


@pytest.mark.parametrize("array, shard, damage, message", DAMAGES,
                         ids=[f"{d[2].__name__}-{d[0]}" for d in DAMAGES])
def test_each_damage_is_reported_without_verify(tiny_store, tmp_path, array, shard, damage,
                                                message):
    copy = _copy(tiny_store, tmp_path)
    damage(_shard_file(copy, array, shard))
    stats, problems, _ = insp.scan(store.open_group(str(copy)))
    assert [(p.shard, p.array) for p in problems] == [(shard, array)]
    assert message in problems[0].error
    assert stats.examples == 2  # the sound shard still counts
    result = CliRunner().invoke(main, ["inspect", str(copy), "--quiet"])
    assert result.exit_code == 1
    assert f"FAILED shard {shard} (examples {2 * shard}..{2 * shard + 1}) array {array}" in result.output


def test_store_being_written_counts_finished_shards_only(tiny_store, tmp_path):
    copy = _copy(tiny_store, tmp_path)
    zarr.open_group(str(copy), mode="r+")["shard_done"][0] = False
    group = store.open_group(str(copy))
    stats, problems, finished = insp.scan(group)
    assert finished.tolist() == [False, True] and stats.examples == 2 and not problems
    lines = insp.report_lines(str(copy), group, insp.describe(group), stats, problems, finished)
    assert any("2 in finished shards; shards: 1 finished of 2" in line for line in lines)


def test_sample_is_reproducible_and_within_the_finished_examples():
    finished = np.array([0, 1, 2, 3, 6, 7])
    a = insp.sample_examples(finished, 3, seed=0)
    assert np.array_equal(a, insp.sample_examples(finished, 3, seed=0))
    assert len(set(a.tolist())) == 3 and set(a.tolist()) <= set(finished.tolist())
    assert np.array_equal(insp.sample_examples(finished, None), finished)
    assert np.array_equal(insp.sample_examples(finished, 10), finished)


def test_compare_rows_names_each_differing_array():
    stored = {"a": np.zeros((2, 3), np.float32), "b": np.int32(4), "c": np.array([np.nan])}
    rebuilt = {"a": np.zeros((2, 3), np.float32), "b": np.int32(5), "c": np.array([np.nan])}
    assert insp.compare_rows(stored, stored) == {}
    assert set(insp.compare_rows(stored, rebuilt)) == {"b"}
    rebuilt["a"] = rebuilt["a"].astype(np.float64)
    assert "float64" in insp.compare_rows(stored, rebuilt)["a"]


@pytest.mark.slow
def test_verify_passes_on_the_intact_store_and_names_an_altered_array(tiny_store, tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["inspect", tiny_store.url, "--verify", "1", "--cache",
                                  tiny_store.cache, "--quiet"])
    assert result.exit_code == 0, result.output
    assert "verification: 1 of 1 rebuilt examples identical: OK" in result.output
    assert "integrity: 2 of 2 finished shards readable: OK" in result.output

    copy = _copy(tiny_store, tmp_path)
    group = zarr.open_group(str(copy), mode="r+")
    joints = group["joints3d"][1]
    joints[0, 0, 0] += 0.01
    group["joints3d"][1] = joints
    [outcome] = insp.verify_examples(str(copy), [1], cache_dir=tiny_store.cache)
    assert not outcome.ok and outcome.error is None
    assert list(outcome.mismatches) == ["joints3d"]
    assert outcome.mismatches["joints3d"].startswith("1 of 576 values differ")


def test_verify_reports_inputs_that_cannot_be_read(tiny_store, tmp_path):
    [outcome] = insp.verify_examples(tiny_store.url, [0], cache_dir=tmp_path / "no_cache")
    assert not outcome.ok and "cannot rebuild" in outcome.error
    assert "camera motion" in outcome.error


def test_cli_help_and_bad_arguments():
    runner = CliRunner()
    result = runner.invoke(main, ["inspect", "--help"])
    assert result.exit_code == 0 and "--verify-all" in result.output
    assert runner.invoke(main, ["inspect", "/nonexistent/store.zarr"]).exit_code == 1
    both = runner.invoke(main, ["inspect", "x.zarr", "--verify", "2", "--verify-all"])
    assert both.exit_code == 2 and "not both" in both.output
