"""Sharded Zarr v3 stores of training examples: schema, whole-shard writer, reader.

Layout (one Zarr v3 group, readable by any Zarr v3 implementation):

- every array has the example axis first; chunk = one example; shard = ``examples_per_shard``
  consecutive examples; Blosc zstd with byte shuffle;
- a shard is written once, whole, by one writer, and only then marked done in ``shard_done``
  (one chunk per shard, so writers never share a file). Readers only look at done shards; a build
  killed mid-shard leaves that shard unmarked and ``--resume`` rewrites it;
- ``flow`` is stored as int16 multiples of ``flow_quantum`` pixels (attribute ``quantum_px``);
  :func:`open_store` decodes it to float32 pixels. So is ``gt_crop_flow``, the ground-truth crop
  flow, present only in stores whose root attribute ``gt_crop_flow`` is true (built from SURREAL
  clips that all have ``_gtflow.mat``); it is for evaluating flow, never a training input.

Units and coordinate frames of every array are in its ``units`` attribute and the root's ``units``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import zarr
from zarr.codecs import BloscCodec

import synthgen

SCHEMA_VERSION = 2

#: Codes of ``gender``.
GENDERS = ("female", "male")


@dataclass(frozen=True)
class ArraySpec:
    """One stored array: dimension names and shape after the example axis, dtype, units."""

    dims: tuple[str, ...]
    shape: tuple[int, ...]
    dtype: str
    units: str


def schema(num_frames: int, crop_size: int) -> dict[str, ArraySpec]:
    """Every array of a store of ``num_frames``-frame examples with ``crop_size`` square crops."""
    T, S = num_frames, crop_size
    return {
        "rgb": ArraySpec(("frame", "y", "x", "channel"), (T, S, S, 3), "uint8",
                         "composited RGB crop of frame t in box t (not blanked on totally "
                         "occluded frames: consumers zero inputs there)"),
        "flow": ArraySpec(("pair", "y", "x", "xy"), (T - 1, S, S, 2), "int16",
                          "optical flow from frame t to t+1, both cropped with box t; crop pixels, "
                          "x then y; stored as multiples of quantum_px"),
        "joints2d": ArraySpec(("frame", "joint", "xy"), (T, 24, 2), "float32",
                              "24 SMPL joints after tracking, frame pixels (x, y)"),
        "joints2d_crop": ArraySpec(("frame", "joint", "xy"), (T, 24, 2), "float32",
                                   "24 SMPL joints of frame t in box t, crop pixels (x, y)"),
        "joints3d": ArraySpec(("frame", "joint", "xyz"), (T, 24, 3), "float32",
                              "24 SMPL joints, camera metres (x right, y down, z forward); from "
                              "SURREAL's reflection extrinsics: the depth-mirror of the SMPL body "
                              "of pose"),
        "visibility": ArraySpec(("frame", "joint"), (T, 24), "uint8",
                                "hidden-reason bitmask: 1 outside frame, 2 occluder, "
                                "4 total occlusion, 8 behind the body; 0 = visible"),
        "total_occlusion": ArraySpec(("frame",), (T,), "bool", "frame simulates a detector failure"),
        "boxes": ArraySpec(("frame", "box"), (T, 3), "float32",
                           "square crop box (x0, y0, side) in frame pixels; "
                           "crop = (frame - (x0, y0)) * crop_size / side"),
        "camera_motion": ArraySpec(("frame", "xy"), (T, 2), "float32",
                                   "integrated camera motion, frame pixels (x, y), 0 at the centre frame"),
        "pose": ArraySpec(("frame", "pose_param"), (T, 72), "float32", "SMPL axis-angle, radians"),
        "betas": ArraySpec(("beta",), (10,), "float32", "SMPL shape"),
        "gender": ArraySpec((), (), "uint8", "0 female, 1 male"),
        "occluder_mask": ArraySpec(("frame", "y", "x"), (T, S, S), "bool",
                                   "occluding superpixel of frame t in box t, crop pixels"),
        "seed": ArraySpec((), (), "uint64", "the example's seed: rebuilds it alone"),
        "video_index": ArraySpec((), (), "int32", "index into attrs['sources']['videos']"),
        "video_start": ArraySpec((), (), "int32", "first background frame, 30 fps frame index"),
        "video_crop_yx": ArraySpec(("yx",), (2,), "int32",
                                   "top-left (y, x) of the 240x320 window in the resized video"),
        "surreal_index": ArraySpec((), (), "int32", "index into attrs['sources']['surreal']"),
        "surreal_start": ArraySpec((), (), "int32", "first SURREAL frame of the window"),
        "occluder_reason": ArraySpec((), (), "uint8", "index into attrs['occluder_reasons']"),
        "occluder_segment": ArraySpec((), (), "int32", "superpixel label used (-1: none)"),
        "occluder_num_segments": ArraySpec((), (), "int32", "SLIC n_segments asked for the clip"),
        "occluder_scale": ArraySpec((), (), "float32", "SLIC position-channel scale"),
        "occluded_fraction": ArraySpec((), (), "float32", "fraction of person pixels removed"),
    }


def schema_3dpw(num_frames: int, crop_size: int) -> dict[str, ArraySpec]:
    """Every array of a 3DPW evaluation store (``kind`` "3dpw"): one example = one actor's clip.

    Training-store names are kept where they apply (same shapes; the units say what differs);
    ``visibility`` bits are those of ``synthgen.threedpw_clips``.
    """
    T = num_frames
    base = schema(num_frames, crop_size)
    return {
        **{name: base[name] for name in ("rgb", "flow", "boxes", "betas", "gender")},
        "joints2d": ArraySpec(("frame", "joint", "xy"), (T, 24, 2), "float32",
                              "detected keypoints (OpenPose-18 mapped to SMPL 24), frame pixels "
                              "(x, y); 0 where the detector has none"),
        "joints2d_crop": ArraySpec(("frame", "joint", "xy"), (T, 24, 2), "float32",
                                   "detected keypoints of frame t in box t, crop pixels (x, y); "
                                   "0 where the detector has none"),
        "joints3d": ArraySpec(("frame", "joint", "xyz"), (T, 24, 3), "float32",
                              "ground-truth 24 SMPL joints (jointPositions), camera metres "
                              "(x right, y down, z forward)"),
        "visibility": ArraySpec(("frame", "joint"), (T, 24), "uint8",
                                "hidden-reason bitmask: 4 total occlusion, 16 confidence <= "
                                "threshold, 32 no detector keypoint; 0 = visible"),
        "total_occlusion": ArraySpec(("frame",), (T,), "bool",
                                     "fewer than min_visible confident COCO-14 keypoints"),
        "keypoint_confidence": ArraySpec(("frame", "joint"), (T, 24), "float32",
                                         "detector confidence per SMPL joint (0: no keypoint)"),
        "pose": ArraySpec(("frame", "pose_param"), (T, 72), "float32",
                          "ground-truth SMPL axis-angle, radians; global orientation in 3DPW's "
                          "world frame"),
        "campose_valid": ArraySpec(("frame",), (T,), "bool", "3DPW campose_valid of the frame"),
        "evaluate": ArraySpec(("frame",), (T,), "bool",
                              "frame counts in evaluation: campose_valid, not a total occlusion, "
                              "first clip covering it"),
        "sequence_index": ArraySpec((), (), "int32", "index into attrs['sources']['sequences']"),
        "actor": ArraySpec((), (), "int32", "actor index in the sequence file"),
        "frame_index": ArraySpec(("frame",), (T,), "int32", "frame index in the sequence file"),
        "image_id": ArraySpec(("frame",), (T,), "int32", "image number (image_%05d.jpg)"),
    }


#: Values of the root attribute ``kind``, each with its schema function.
KINDS = {"synthetic": schema, "3dpw": schema_3dpw}


#: Arrays stored as int16 multiples of the attribute ``quantum_px`` (crop pixels).
QUANTISED = ("flow", "gt_crop_flow")


def gt_crop_flow_spec(num_frames: int, crop_size: int) -> ArraySpec:
    """The optional ``gt_crop_flow`` array (root attribute ``gt_crop_flow`` true)."""
    return ArraySpec(("pair", "y", "x", "xy"), (num_frames - 1, crop_size, crop_size, 2), "int16",
                     "ground-truth optical flow of pair t (frames t and t+1 in box t): the "
                     "tracked person's rendered flow where frame t shows it, the camera's "
                     "translation elsewhere; crop pixels, x then y; multiples of quantum_px; evaluation only")


def store_schema(attrs) -> dict[str, ArraySpec]:
    """The schema of a store from its root attributes (stores without ``kind`` are synthetic)."""
    specs = KINDS[attrs.get("kind", "synthetic")](attrs["num_frames"], attrs["crop_size"])
    if attrs.get("gt_crop_flow"):
        specs["gt_crop_flow"] = gt_crop_flow_spec(attrs["num_frames"], attrs["crop_size"])
    return specs


def _compressor(clevel: int) -> BloscCodec:
    return BloscCodec(cname="zstd", clevel=clevel, shuffle="shuffle")


def create_store(url: str, *, num_examples: int, num_frames: int, crop_size: int,
                 examples_per_shard: int, attrs: dict, clevel: int = 5,
                 flow_quantum: float = 1.0 / 32.0, storage_options: dict | None = None,
                 kind: str = "synthetic") -> zarr.Group:
    """Create an empty store (arrays, attributes, no data). Overwrites ``url``.

    Parameters
    ----------
    url : str
        Local path or fsspec URL (``s3://...``).
    attrs : dict
        Root attributes to record (config, sources, skipped manifest...); JSON-serialisable.
    kind : str
        A key of :data:`KINDS`: training examples (``"synthetic"``) or 3DPW evaluation clips.
        ``attrs["gt_crop_flow"]`` true adds the ``gt_crop_flow`` array.
    """
    specs = store_schema({**attrs, "kind": kind, "num_frames": num_frames, "crop_size": crop_size})
    group = zarr.open_group(url, mode="w", storage_options=storage_options)
    num_shards = -(-num_examples // examples_per_shard)
    for name, spec in specs.items():
        array = group.create_array(
            name, shape=(num_examples, *spec.shape), dtype=spec.dtype,
            chunks=(1, *spec.shape), shards=(examples_per_shard, *spec.shape),
            compressors=_compressor(clevel), fill_value=0,
            dimension_names=("example", *spec.dims),
        )
        array.attrs["units"] = spec.units
        if name in QUANTISED:
            array.attrs["quantum_px"] = flow_quantum
    done = group.create_array("shard_done", shape=(num_shards,), chunks=(1,), dtype="bool",
                              fill_value=False, dimension_names=("shard",))
    done.attrs["units"] = "shard s (examples s*examples_per_shard ...) is complete"
    group.attrs.update({
        "schema_version": SCHEMA_VERSION,
        "synthgen_version": synthgen.__version__,
        "num_examples": num_examples,
        "num_frames": num_frames,
        "crop_size": crop_size,
        "examples_per_shard": examples_per_shard,
        "num_shards": num_shards,
        "kind": kind,
        "units": {name: spec.units for name, spec in specs.items()},
        **attrs,
    })
    return group


def open_group(url: str, *, mode: str = "r", storage_options: dict | None = None) -> zarr.Group:
    """Open a store's group and check its schema version.

    Raises
    ------
    FileNotFoundError
        No store at ``url``.
    ValueError
        A store of another schema version (say which, and what to do).
    """
    try:
        group = zarr.open_group(url, mode=mode, storage_options=storage_options)
    except (FileNotFoundError, zarr.errors.GroupNotFoundError) as exc:
        raise FileNotFoundError(f"no synthgen store at {url}") from exc
    version = group.attrs.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ValueError(f"{url}: store schema version {version!r}, this synthgen reads "
                         f"{SCHEMA_VERSION}; rebuild the store with this version of synthgen")
    return group


def shard_slice(group: zarr.Group, shard: int) -> slice:
    """The examples of shard ``shard``."""
    per = group.attrs["examples_per_shard"]
    return slice(shard * per, min((shard + 1) * per, group.attrs["num_examples"]))


def quantize_flow(flow: np.ndarray, quantum: float) -> np.ndarray:
    """Round flow (pixels) to multiples of ``quantum`` as int16 (saturating at the int16 range)."""
    q = np.rint(np.asarray(flow, dtype=np.float64) / quantum)
    info = np.iinfo(np.int16)
    return np.clip(q, info.min, info.max).astype(np.int16)


def write_shard(group: zarr.Group, shard: int, arrays: dict[str, np.ndarray]) -> None:
    """Write one whole shard: every array of the schema (not yet marked done: :func:`mark_done`).

    ``arrays`` maps each schema name to an array whose first axis is the shard's examples, in
    stored dtype (``flow`` already quantised with :func:`quantize_flow`).

    Raises
    ------
    ValueError
        Missing or extra arrays, or a wrong shape/dtype (checked before anything is written).
    """
    rows = shard_slice(group, shard)
    n = rows.stop - rows.start
    specs = store_schema(group.attrs)
    if set(arrays) != set(specs):
        raise ValueError(f"shard arrays differ from the schema: missing {sorted(set(specs) - set(arrays))}, "
                         f"extra {sorted(set(arrays) - set(specs))}")
    for name, spec in specs.items():
        value = arrays[name]
        if value.shape != (n, *spec.shape) or value.dtype != np.dtype(spec.dtype):
            raise ValueError(f"shard array {name}: got {value.shape} {value.dtype}, "
                             f"expected {(n, *spec.shape)} {spec.dtype}")
    for name in specs:
        group[name][rows] = arrays[name]


def mark_done(group: zarr.Group, shard: int) -> None:
    """Mark a shard complete, after :func:`write_shard` returned: readers see it from now on."""
    group["shard_done"][shard] = True


def finished_shards(group: zarr.Group) -> np.ndarray:
    """Boolean array: which shards are complete."""
    return np.asarray(group["shard_done"][:], dtype=bool)


def finished_examples(group: zarr.Group) -> np.ndarray:
    """Indices of the examples in complete shards, ascending."""
    done = np.flatnonzero(finished_shards(group))
    if done.size == 0:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate([np.arange(shard_slice(group, s).start, shard_slice(group, s).stop)
                           for s in done])


def open_store(url: str, *, storage_options: dict | None = None):
    """A lazy ``xarray.Dataset`` (dask-backed) of a store's finished examples.

    Dimensions: example, frame, pair, joint, y, x, channel, xy, xyz, box, pose_param, beta, yx.
    Coordinate ``example`` holds each example's index in the store. ``flow`` is decoded to float32
    crop pixels, as is ``gt_crop_flow`` where stored. Works on a store still being written: only complete shards are included.
    """
    import dask.array as da
    import xarray as xr

    group = open_group(url, storage_options=storage_options)
    index = finished_examples(group)
    variables = {}
    for name, spec in store_schema(group.attrs).items():
        array = group[name]
        data = da.from_zarr(array)[index]
        if name in QUANTISED:
            data = data.astype(np.float32) * np.float32(array.attrs["quantum_px"])
        variables[name] = xr.Variable(("example", *spec.dims), data, attrs=dict(array.attrs))
    return xr.Dataset(variables, coords={"example": index}, attrs=dict(group.attrs))
