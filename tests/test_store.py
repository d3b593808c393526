"""The Zarr v3 store: schema, whole-shard writes with done markers, lazy xarray reader."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import zarr

from synthgen import store
from synthgen.config import Config

T, S = 3, 16


def _shard_arrays(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    out = {}
    for name, spec in store.schema(T, S).items():
        shape = (n, *spec.shape)
        if spec.dtype == "bool":
            out[name] = rng.random(shape) < 0.5
        elif np.dtype(spec.dtype).kind in "iu":
            out[name] = rng.integers(0, 100, shape).astype(spec.dtype)
        else:
            out[name] = rng.standard_normal(shape).astype(spec.dtype)
    return out


def _make(tmp_path, num_examples=5, per_shard=2, **options):
    return store.create_store(str(tmp_path / "s.zarr"), num_examples=num_examples, num_frames=T,
                              crop_size=S, examples_per_shard=per_shard, attrs={"seed": 7},
                              **options)


def _written(tmp_path, **options):
    """A 4-example store of 2 done shards, and the arrays written."""
    group = _make(tmp_path, num_examples=4, **options)
    arrays = _shard_arrays(4, np.random.default_rng(3))
    arrays["total_occlusion"][:] = False  # all-zero chunks: written all the same
    for shard in range(2):
        store.write_shard(group, shard, {k: v[2 * shard:2 * shard + 2] for k, v in arrays.items()})
        store.mark_done(group, shard)
    return group, arrays


def _file(tmp_path, array: str, shard: int):
    [path] = [p for p in (tmp_path / "s.zarr" / array / "c" / str(shard)).rglob("*") if p.is_file()]
    return path


def test_store_is_plain_zarr_v3_with_one_chunk_per_example_and_sharded(tmp_path):
    group = _make(tmp_path)
    meta = json.loads((tmp_path / "s.zarr" / "rgb" / "zarr.json").read_text())
    assert meta["zarr_format"] == 3
    assert meta["dimension_names"] == ["example", "frame", "y", "x", "channel"]
    sharding = meta["codecs"][0]
    assert sharding["name"] == "sharding_indexed"
    assert sharding["configuration"]["chunk_shape"] == [1, T, S, S, 3]
    assert meta["chunk_grid"]["configuration"]["chunk_shape"] == [2, T, S, S, 3]
    assert [c["name"] for c in sharding["configuration"]["codecs"]] == ["bytes", "blosc", "crc32c"]
    assert sharding["configuration"]["codecs"][1]["configuration"]["cname"] == "zstd"
    assert group.attrs["num_shards"] == 3 and group.attrs["seed"] == 7


def test_only_finished_shards_are_visible(tmp_path):
    group = _make(tmp_path)
    rng = np.random.default_rng(0)
    last = _shard_arrays(1, rng)
    store.write_shard(group, 2, last)  # the short final shard, written first
    assert store.open_store(str(tmp_path / "s.zarr")).sizes["example"] == 0  # not marked done
    store.mark_done(group, 2)
    ds = store.open_store(str(tmp_path / "s.zarr"))
    assert ds.sizes["example"] == 1 and ds["example"].values.tolist() == [4]
    np.testing.assert_array_equal(ds["rgb"].values, last["rgb"])
    np.testing.assert_allclose(ds["flow"].values, last["flow"] / 16.0)  # the default quantum
    first = _shard_arrays(2, rng)
    store.write_shard(group, 0, first)
    store.mark_done(group, 0)
    ds = store.open_store(str(tmp_path / "s.zarr"))
    assert ds["example"].values.tolist() == [0, 1, 4]
    np.testing.assert_array_equal(ds["joints3d"].values[:2], first["joints3d"])
    assert ds["rgb"].dims == ("example", "frame", "y", "x", "channel")
    assert "camera metres" in ds["joints3d"].attrs["units"]


def test_write_shard_checks_before_writing(tmp_path):
    group = _make(tmp_path)
    arrays = _shard_arrays(2, np.random.default_rng(1))
    bad = dict(arrays, rgb=arrays["rgb"][:, :, :8])
    with pytest.raises(ValueError, match="shard array rgb"):
        store.write_shard(group, 0, bad)
    missing = {k: v for k, v in arrays.items() if k != "pose"}
    with pytest.raises(ValueError, match="missing \\['pose'\\]"):
        store.write_shard(group, 0, missing)
    assert not store.finished_shards(group).any()
    assert not (tmp_path / "s.zarr" / "rgb" / "c").exists()


def test_flow_quantisation_rounds_to_quantum_and_saturates():
    flow = np.array([0.01, 0.02, -1.0 / 64 - 1e-6, 5000.0], dtype=np.float32)
    q = store.quantize_flow(flow, 1.0 / 32)
    assert q.dtype == np.int16 and q.tolist() == [0, 1, -1, 32767]


def test_other_schema_versions_are_refused_with_advice(tmp_path):
    group = _make(tmp_path)
    group.attrs["schema_version"] = 99
    with pytest.raises(ValueError, match="rebuild the store"):
        store.open_store(str(tmp_path / "s.zarr"))
    with pytest.raises(FileNotFoundError, match="no synthgen store"):
        store.open_store(str(tmp_path / "missing.zarr"))


def test_a_version_1_store_is_refused_in_one_line_saying_rebuild(tmp_path):
    """Version 1 stored SURREAL's mirrored joints3d: no reader may take them for the body."""
    group = _make(tmp_path)
    group.attrs["schema_version"] = 1
    with pytest.raises(ValueError) as caught:
        store.open_group(str(tmp_path / "s.zarr"))
    message = str(caught.value)
    assert "\n" not in message and "version 1" in message and "rebuild the store" in message


def test_every_store_kind_declares_a_documented_joints_convention(tmp_path):
    """A kind with joints3d names a documented convention; one without (video) declares None."""
    assert set(store.KIND_JOINTS_CONVENTION) == set(store.KINDS)
    for kind in store.KINDS:
        group = store.create_store(str(tmp_path / f"{kind}.zarr"), num_examples=1, num_frames=4,
                                   crop_size=16, examples_per_shard=1, attrs={}, kind=kind)
        convention = group.attrs["joints_convention"]
        assert convention == store.KIND_JOINTS_CONVENTION[kind]
        if "joints3d" not in store.KINDS[kind](4, 16):
            assert convention is None and store.spec(group).joints_convention is None
            continue
        assert "det +1" in store.JOINTS_CONVENTIONS[convention]
    assert store.KIND_JOINTS_CONVENTION["video"] is None


def test_store_reads_with_plain_zarr(tmp_path):
    group = _make(tmp_path, num_examples=2, per_shard=2)
    arrays = _shard_arrays(2, np.random.default_rng(2))
    store.write_shard(group, 0, arrays)
    store.mark_done(group, 0)
    plain = zarr.open_group(str(tmp_path / "s.zarr"), mode="r")
    np.testing.assert_array_equal(plain["visibility"][1], arrays["visibility"][1])


def test_reader_returns_what_was_written_and_every_chunk_is_stored(tmp_path):
    group, arrays = _written(tmp_path)
    reader = store.StoreReader(str(tmp_path / "s.zarr"))
    for name in store.schema(T, S):
        np.testing.assert_array_equal(reader.read_shard(name, 1), arrays[name][2:])
        np.testing.assert_array_equal(reader.read(name, 1), arrays[name][1], err_msg=name)
    assert (reader.shard_index("total_occlusion", 0) != np.iinfo(np.uint64).max).all()


@pytest.mark.parametrize("damage", ["flip", "delete"])
def test_damage_is_an_error_naming_store_array_and_shard(tmp_path, damage):
    _written(tmp_path)
    path = _file(tmp_path, "pose", 1)
    if damage == "flip":
        data = bytearray(path.read_bytes())
        data[8:24] = bytes(b ^ 0xFF for b in data[8:24])  # inside the first chunk
        path.write_bytes(bytes(data))
    else:
        path.unlink()
    url = str(tmp_path / "s.zarr")
    pattern = f"{url}: array pose shard 1 \\(examples 2..3\\) is damaged"
    with pytest.raises(store.StoreDamageError, match=pattern):
        store.StoreReader(url).read("pose", 2)
    if damage == "delete":  # found when the view is opened, not as zeros later
        with pytest.raises(store.StoreDamageError, match=pattern):
            store.open_store(url)
    else:
        ds = store.open_store(url)
        assert ds["pose"][:2].values.shape == (2, T, 72)  # the sound shard reads
        with pytest.raises(store.StoreDamageError, match=pattern):
            ds["pose"].values
    # Plain Zarr reads fail on the checksum too (but a missing file there reads as zeros).
    if damage == "flip":
        with pytest.raises(ValueError, match="checksum"):
            zarr.open_group(url, mode="r")["pose"][2]


@pytest.mark.parametrize("damage,message", [
    ("empty root zarr.json", "its zarr.json is not a Zarr group's metadata"),
    ("truncated root zarr.json", "its zarr.json is not a Zarr group's metadata"),
    ("array folder deleted", "array joints2d_crop is missing"),
    ("empty array zarr.json", "flow/zarr.json is not a Zarr array's metadata"),
    ("unknown kind", "unknown store kind 'weird'"),
    ("no num_frames", "root attribute(s) ['num_frames'] missing"),
])
def test_damaged_metadata_is_one_line_naming_the_store(tmp_path, damage, message):
    _written(tmp_path)
    root = tmp_path / "s.zarr"
    meta = root / "zarr.json"
    if damage == "empty root zarr.json":
        meta.write_bytes(b"")
    elif damage == "truncated root zarr.json":
        meta.write_bytes(meta.read_bytes()[:40])
    elif damage == "array folder deleted":
        shutil.rmtree(root / "joints2d_crop")
    elif damage == "empty array zarr.json":
        (root / "flow" / "zarr.json").write_bytes(b"")
    else:
        doc = json.loads(meta.read_text())
        if damage == "unknown kind":
            doc["attributes"]["kind"] = "weird"
        else:
            del doc["attributes"]["num_frames"]
        meta.write_text(json.dumps(doc))
    for open_ in (store.open_group, store.StoreReader, store.open_store):
        with pytest.raises(store.StoreDamageError) as caught:
            open_(str(root))
        text = str(caught.value)
        assert "\n" not in text and text.startswith(f"{root}: damaged store: ")
        assert message in text and text.endswith("rebuild the store")


def test_omitted_arrays_are_not_stored_and_the_rest_reads(tmp_path):
    group, arrays = _written(tmp_path, omit=["rgb"])
    assert "rgb" not in group and list(group.attrs["omitted"]) == ["rgb"]
    ds = store.open_store(str(tmp_path / "s.zarr"))
    assert "rgb" not in ds and "flow" in ds
    np.testing.assert_array_equal(ds["joints3d"].values, arrays["joints3d"])
    with pytest.raises(ValueError, match="store.omit = \\['pose'\\].*'rgb', 'flow'"):
        Config().replace(store={"omit": ["pose"]})  # refused when the pipeline is read


def test_ground_truth_crop_flow_is_an_optional_quantised_array(tmp_path):
    plain = _make(tmp_path)
    assert "gt_crop_flow" not in plain and "gt_crop_flow" not in store.store_schema(plain.attrs)
    url = str(tmp_path / "gt.zarr")
    group = store.create_store(url, num_examples=2, num_frames=T, crop_size=S, examples_per_shard=2,
                               attrs={"gt_crop_flow": True})
    quantum = group["flow"].attrs["quantum_px"]
    assert group["gt_crop_flow"].attrs["quantum_px"] == quantum  # the flow's own quantum
    assert "ground-truth" in group["gt_crop_flow"].attrs["units"]
    arrays = _shard_arrays(2, np.random.default_rng(1))
    with pytest.raises(ValueError, match="missing \\['gt_crop_flow'\\]"):
        store.write_shard(group, 0, arrays)
    truth = np.random.default_rng(2).uniform(-20, 20, (2, T - 1, S, S, 2))
    store.write_shard(group, 0, {**arrays, "gt_crop_flow": store.quantize_flow(truth, quantum)})
    store.mark_done(group, 0)
    np.testing.assert_allclose(store.open_store(url)["gt_crop_flow"].values, truth,
                               atol=quantum / 2)
def test_spec_declares_what_a_consumer_must_agree_on(tmp_path):
    flow = {"name": "flownet2", "params": {"checkpoint": "/w/a.pth", "checkpoint_sha256": "ab",
                                           "device": "cuda", "mixed_precision": True}}
    url = str(tmp_path / "s.zarr")
    store.create_store(url, num_examples=1, num_frames=3, crop_size=16, examples_per_shard=1,
                       flow_quantum=0.25, kind="3dpw",
                       attrs={"crop_flow": flow, "config": {"crops": {"person_height": 10.0}}})
    spec = store.spec(store.open_group(url), source="train")
    assert (spec.kind, spec.crop_size, spec.person_height, spec.flow_quantum) == \
        ("3dpw", 16, 10.0, 0.25)
    assert spec.joints_convention == store.KIND_JOINTS_CONVENTION["3dpw"]
    # How the flow ran (device, precision, weights' path) is not what it is.
    assert spec.crop_flow == {"name": "flownet2", "params": {"checkpoint_sha256": "ab"}}
    # Attributes alone say everything but the flow array's quantum.
    from_attrs = store.spec(dict(store.open_group(url).attrs))
    assert from_attrs.flow_quantum is None and from_attrs.crop_flow == spec.crop_flow


def test_check_compatible_names_both_sides_and_the_field():
    a = store.StoreSpec("train.zarr", crop_size=16, person_height=10.0,
                        crop_flow={"name": "tvl1", "params": {"tau": 0.25, "device": "cpu"}})
    same = store.StoreSpec("eval.zarr", crop_size=16, person_height=10.0 + 1e-9,
                           crop_flow={"name": "tvl1", "params": {"tau": 0.25}})
    store.check_compatible(a, same, what="x")
    # A field one side does not record is not compared; a missing crop flow is.
    store.check_compatible(a, store.StoreSpec("c", crop_flow=a.crop_flow), what="x")
    with pytest.raises(ValueError, match=r"^cannot mix: crop-flow backend differs: train.zarr "
                                         r"has .*tvl1.*, c has null; do y$"):
        store.check_compatible(a, store.StoreSpec("c"), what="cannot mix", hint="do y")
    bigger = store.StoreSpec("eval.zarr", crop_size=32, crop_flow=a.crop_flow)
    with pytest.raises(ValueError, match=r"crop size \(px\) differs: train.zarr has 16, "
                                         r"eval.zarr has 32"):
        store.check_compatible(a, bigger, what="x")
    store.check_compatible(a, bigger, fields=("crop_flow",), what="x")
    taller = store.StoreSpec("eval.zarr", person_height=12.0, crop_flow=a.crop_flow)
    with pytest.raises(ValueError, match="person height in the crops"):
        store.check_compatible(a, taller, what="x")


def test_an_unknown_url_protocol_is_unreachable_not_damaged():
    with pytest.raises(FileNotFoundError, match="cannot reach nope://b/x.zarr: Protocol not known"):
        store.open_group("nope://b/x.zarr")
