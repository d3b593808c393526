"""Sharded Zarr v3 stores of training examples: schema, whole-shard writer, checked reader.

Layout (one Zarr v3 group, readable by any Zarr v3 implementation):

- every array has the example axis first; chunk = one example; shard = ``examples_per_shard``
  consecutive examples; Blosc zstd (byte shuffle), then a crc32c checksum of every stored chunk
  (and of every shard index); every chunk is written, even an all-zero one, so a chunk or shard
  file that is absent is damage, never "the fill value";
- a shard is written once, whole, by one writer, and only then marked done in ``shard_done``
  (one chunk per shard, so writers never share a file). Readers only look at done shards; a build
  killed mid-shard leaves that shard unmarked and ``--resume`` rewrites it;
- ``flow`` is stored as int16 multiples of ``flow_quantum`` pixels (attribute ``quantum_px``);
  :func:`open_store` decodes it to float32 pixels. So is ``gt_crop_flow``, the ground-truth crop
  flow, present only in stores whose root attribute ``gt_crop_flow`` is true (built from SURREAL
  clips that all have ``_gtflow.mat``); it is for evaluating flow, never a training input;
- arrays of :data:`OMITTABLE` may be left out of a store (``store.omit``, root attribute
  ``omitted``): a flow + keypoints store needs no ``rgb``.

:class:`StoreReader` reads examples straight from the shard files (one byte-range read per array
and example, the shard's index kept): close to the cost of decompressing the bytes alone, and it
checks every checksum and the presence of every file of a done shard, raising
:class:`StoreDamageError` naming store, array and shard. :func:`open_store` (the lazy xarray view)
and the trainer read through it. Plain Zarr reads of a damaged chunk fail on the checksum too, but
a missing file there reads as zeros.

A new array (a per-example scalar or a small per-frame field) is one line in :func:`schema`:
the writer, the reader, :func:`open_store` and ``synthgen inspect`` take every array of the schema.

Units and coordinate frames of every array are in its ``units`` attribute and the root's ``units``.
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import google_crc32c
import numpy as np
import zarr
from numcodecs import blosc
from zarr.abc.store import RangeByteRequest, SuffixByteRequest, SupportsGetSync
from zarr.codecs import BloscCodec, Crc32cCodec
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync as _sync

import synthgen
from synthgen.config import OMITTABLE
from synthgen.core.flow import DEFAULT_FLOW_QUANTUM

SCHEMA_VERSION = 2

#: Values of the root attribute ``joints_convention``: how ``joints3d`` relate to the SMPL body.
JOINTS_CONVENTIONS = {
    "smpl24_camera_posed": (
        "joints3d are the 24 SMPL joints (J_regressor, smplx kinematics) of pose, betas and gender "
        "(the gendered SMPL model), translated, in camera metres (x right, y down, z forward); "
        "pose's global orientation is in the camera frame (a proper rotation, det +1), so "
        "SMPL(pose, betas) - its pelvis = joints3d - joints3d[pelvis] (within 1 mm)"),
    "smpl24_camera_world_pose": (
        "joints3d are 3DPW's 24 SMPL joints (jointPositions) in camera metres (x right, y down, "
        "z forward) through cam_poses, a proper rotation (det +1); pose's global orientation is "
        "in 3DPW's world frame"),
}
#: The ``joints_convention`` of each store kind. A ``"video"`` store (a user's video for
#: ``trainer predict``) has no 3D joints: its convention is None (recorded as null, so never
#: compared by :func:`check_compatible`).
KIND_JOINTS_CONVENTION = {"synthetic": "smpl24_camera_posed", "3dpw": "smpl24_camera_world_pose",
                          "video": None}

#: Codes of ``gender``.
GENDERS = ("female", "male")
#: Crop-flow ``params`` keys that say how the flow was run, not what it is: ignored when two
#: records are compared (FlowNet weights count by ``checkpoint_sha256``, not by path).
FLOW_EXECUTION_PARAMS = ("device", "mixed_precision", "checkpoint")


def flow_identity(crop_flow: dict | None) -> dict | None:
    """What makes two crop-flow records (``{"name", "params"}``) the same flow: the name and the
    params other than :data:`FLOW_EXECUTION_PARAMS`, as plain JSON values."""
    if crop_flow is None:
        return None
    params = {k: v for k, v in crop_flow.get("params", {}).items()
              if k not in FLOW_EXECUTION_PARAMS}
    return json.loads(json.dumps({"name": crop_flow.get("name"), "params": params}))


def crop_flow_record(attrs) -> dict | None:
    """A store's crop-flow record ``{"name", "params"}`` as written (execution params included):
    ``attrs["crop_flow"]``, else its config's ``crop_flow`` section; None when it records none."""
    attrs = dict(attrs)
    return attrs.get("crop_flow", attrs.get("config", {}).get("crop_flow"))


@dataclass(frozen=True)
class StoreSpec:
    """What a consumer of a store must agree on (:func:`spec`, compared by
    :func:`check_compatible`).

    Attributes
    ----------
    source : str
        Who declares this (a store's URL, "this build", "the checkpoint"), named in refusals.
    kind : str or None
        A key of :data:`KINDS`: ``"synthetic"``, ``"3dpw"`` or ``"video"``.
    crop_size : int or None
        Crop side, pixels.
    person_height : float or None
        Person height in the crops, pixels (None: not recorded).
    flow_quantum : float or None
        Pixels per stored flow unit (None: no flow array, or not known).
    crop_flow : dict or None
        The crop-flow backend's identity (:func:`flow_identity`; normalised on construction).
    joints_convention : str or None
        A key of :data:`JOINTS_CONVENTIONS` (None: not recorded, or no 3D joints).
    """

    source: str
    kind: str | None = None
    crop_size: int | None = None
    person_height: float | None = None
    flow_quantum: float | None = None
    crop_flow: dict | None = field(default=None, compare=False)
    joints_convention: str | None = None

    def __post_init__(self):
        object.__setattr__(self, "crop_flow", flow_identity(self.crop_flow))


#: Words for each :class:`StoreSpec` field in a refusal.
SPEC_FIELDS = {"kind": "store kind", "crop_size": "crop size (px)",
               "person_height": "person height in the crops (px)",
               "flow_quantum": "flow quantum (px)", "crop_flow": "crop-flow backend",
               "joints_convention": "joints convention"}


def spec(group_or_attrs, *, source: str | None = None) -> StoreSpec:
    """What a consumer must agree on with a store, from its group or its root attributes.

    Parameters
    ----------
    group_or_attrs : zarr.Group or mapping
        An open store (its ``flow`` array's ``quantum_px`` is read too), or root attributes alone
        (then ``flow_quantum`` is None).
    source : str, optional
        Name used in refusals; default the group's store path, else "the store".

    Returns
    -------
    StoreSpec
        ``crop_flow`` from :func:`crop_flow_record`; ``person_height`` from the config's
        ``crops`` section when recorded.
    """
    group = group_or_attrs if isinstance(group_or_attrs, zarr.Group) else None
    attrs = dict(group.attrs) if group is not None else dict(group_or_attrs)
    if source is None:
        source = str(group.store) if group is not None else "the store"
    config = attrs.get("config", {})
    height = config.get("crops", {}).get("person_height")
    quantum = None
    if group is not None and "flow" in group:
        quantum = float(group["flow"].attrs["quantum_px"])
    return StoreSpec(source=source, kind=attrs.get("kind", "synthetic"),
                     crop_size=None if "crop_size" not in attrs else int(attrs["crop_size"]),
                     person_height=None if height is None else float(height),
                     flow_quantum=quantum,
                     crop_flow=crop_flow_record(attrs),
                     joints_convention=attrs.get("joints_convention"))


def check_compatible(a: StoreSpec, b: StoreSpec, *, fields=tuple(SPEC_FIELDS), what: str,
                     hint: str = "") -> None:
    """Refuse two specs that differ in any of ``fields``, in one line naming both sides.

    A field that one side leaves None (not recorded) is not compared, except ``crop_flow`` (None:
    no crop flow); floats are compared to 1e-6.

    Parameters
    ----------
    a, b : StoreSpec
    fields : sequence of str
        Keys of :data:`SPEC_FIELDS` that must agree.
    what : str
        What is being checked ("cannot evaluate on this store"), the message's start.
    hint : str, optional
        What to do, appended after "; ".

    Raises
    ------
    ValueError
        ``"<what>: <field> differs: <a.source> has <value>, <b.source> has <value>[; hint]"``.
    """
    for name in fields:
        mine, theirs = getattr(a, name), getattr(b, name)
        if name != "crop_flow" and (mine is None or theirs is None):
            continue
        if isinstance(mine, float) or isinstance(theirs, float):
            same = math.isclose(float(mine), float(theirs), rel_tol=0.0, abs_tol=1e-6)
        else:
            same = mine == theirs
        if not same:
            show = (lambda v: json.dumps(v, sort_keys=True)) if name == "crop_flow" else repr
            raise ValueError(f"{what}: {SPEC_FIELDS[name]} differs: {a.source} has {show(mine)}, "
                             f"{b.source} has {show(theirs)}" + (f"; {hint}" if hint else ""))


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
                              "24 SMPL joints of pose, betas and gender, camera metres (x right, "
                              "y down, z forward), the body the image shows "
                              "(attrs['joints_convention'])"),
        "visibility": ArraySpec(("frame", "joint"), (T, 24), "uint8",
                                "hidden-reason bitmask: 1 outside frame, 2 occluder, "
                                "4 total occlusion, 8 behind the body; 0 = visible"),
        "total_occlusion": ArraySpec(("frame",), (T,), "bool", "frame simulates a detector failure"),
        "boxes": ArraySpec(("frame", "box"), (T, 3), "float32",
                           "square crop box (x0, y0, side) in frame pixels; "
                           "crop = (frame - (x0, y0)) * crop_size / side"),
        "camera_motion": ArraySpec(("frame", "xy"), (T, 2), "float32",
                                   "integrated camera motion, frame pixels (x, y), 0 at the centre frame"),
        "pose": ArraySpec(("frame", "pose_param"), (T, 72), "float32",
                          "SMPL axis-angle, radians, of the body the image shows (SURREAL's pose "
                          "mirrored, as its camera mirrors); global orientation in the camera "
                          "frame"),
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
        "occluder_num_segments": ArraySpec((), (), "int32",
                                           "SLIC centres asked per frame after calibration "
                                           "(-1: occluder disabled)"),
        "superpixels_per_frame": ArraySpec((), (), "float32",
                                           "superpixels per frame: mean over frames of the SLIC "
                                           "labels present (0: occluder disabled)"),
        "occluder_scale": ArraySpec((), (), "float32", "SLIC position-channel scale"),
        "occluded_fraction": ArraySpec((), (), "float32", "fraction of person pixels removed"),
    }


def schema_3dpw(num_frames: int, crop_size: int) -> dict[str, ArraySpec]:
    """Every array of a 3DPW evaluation store (``kind`` "3dpw"): one example = one actor's clip.

    Training-store names are kept where they apply (same shapes; the units say what differs);
    ``visibility`` bits are those of ``synthgen.steps.detections``.
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


def schema_video(num_frames: int, crop_size: int) -> dict[str, ArraySpec]:
    """Every array of a video store (``kind`` "video", ``synthgen build-video``): one example =
    one clip of a user's video, made as a 3DPW clip is (same names, units and visibility bits)
    but with no ground truth. Each video frame is first covered by exactly one clip."""
    T = num_frames
    base = schema_3dpw(num_frames, crop_size)
    return {
        **{name: base[name] for name in ("rgb", "flow", "boxes", "joints2d", "joints2d_crop",
                                         "visibility", "total_occlusion",
                                         "keypoint_confidence")},
        "first_cover": ArraySpec(("frame",), (T,), "bool",
                                 "this clip is the first to cover the frame (each video frame is "
                                 "first covered once)"),
        "frame_index": ArraySpec(("frame",), (T,), "int32",
                                 "video frame index (decode order; attrs['video'])"),
    }


#: Values of the root attribute ``kind``, each with its schema function.
KINDS = {"synthetic": schema, "3dpw": schema_3dpw, "video": schema_video}


#: Arrays stored as int16 multiples of the attribute ``quantum_px`` (crop pixels).
QUANTISED = ("flow", "gt_crop_flow")


def gt_crop_flow_spec(num_frames: int, crop_size: int) -> ArraySpec:
    """The optional ``gt_crop_flow`` array (root attribute ``gt_crop_flow`` true)."""
    return ArraySpec(("pair", "y", "x", "xy"), (num_frames - 1, crop_size, crop_size, 2), "int16",
                     "ground-truth optical flow of pair t (frames t and t+1 in box t): the "
                     "tracked person's rendered flow where frame t shows it, the camera's "
                     "translation elsewhere; crop pixels, x then y; multiples of quantum_px; evaluation only")


def full_schema(attrs) -> dict[str, ArraySpec]:
    """Every array of a store's kind, omitted ones included (no ``kind``: synthetic), plus
    ``gt_crop_flow`` when the root attribute ``gt_crop_flow`` is true."""
    specs = KINDS[attrs.get("kind", "synthetic")](attrs["num_frames"], attrs["crop_size"])
    if attrs.get("gt_crop_flow"):
        specs["gt_crop_flow"] = gt_crop_flow_spec(attrs["num_frames"], attrs["crop_size"])
    return specs


def store_schema(attrs) -> dict[str, ArraySpec]:
    """The arrays a store holds, from its root attributes: its kind's schema less ``omitted``."""
    omitted = set(attrs.get("omitted", ()))
    return {name: spec for name, spec in full_schema(attrs).items() if name not in omitted}


def _codecs(clevel: int) -> list:
    return [BloscCodec(cname="zstd", clevel=clevel, shuffle="shuffle"), Crc32cCodec()]


def check_omit(omit, kind: str = "synthetic") -> tuple[str, ...]:
    """``omit`` as a tuple, checked: names of :data:`OMITTABLE` arrays of ``kind``'s schema.

    Raises
    ------
    ValueError
        One line naming the arrays that cannot be left out and the ones that can.
    """
    omit = tuple(omit)
    names = KINDS[kind](2, 1)
    bad = [name for name in omit if name not in OMITTABLE or name not in names]
    if bad:
        raise ValueError(f"store.omit: cannot leave out {bad}; arrays that may be left out: "
                         f"{[n for n in OMITTABLE if n in names]}")
    return omit


def create_store(url: str, *, num_examples: int, num_frames: int, crop_size: int,
                 examples_per_shard: int, attrs: dict, clevel: int = 5,
                 flow_quantum: float = DEFAULT_FLOW_QUANTUM, storage_options: dict | None = None,
                 kind: str = "synthetic", omit=()) -> zarr.Group:
    """Create an empty store (arrays, attributes, no data). Overwrites ``url``.

    Parameters
    ----------
    url : str
        Local path or fsspec URL (``s3://...``).
    attrs : dict
        Root attributes to record (config, sources, skipped manifest...); JSON-serialisable.
    kind : str
        A key of :data:`KINDS`: training examples (``"synthetic"``), 3DPW evaluation clips or a
        user's video (``"video"``).
    omit : iterable of str
        Arrays of :data:`OMITTABLE` not to store (root attribute ``omitted``).
        ``attrs["gt_crop_flow"]`` true adds the ``gt_crop_flow`` array.
    """
    omit = check_omit(omit, kind)
    specs = store_schema({**attrs, "kind": kind, "num_frames": num_frames, "crop_size": crop_size,
                          "omitted": list(omit)})
    group = zarr.open_group(url, mode="w", storage_options=storage_options)
    num_shards = -(-num_examples // examples_per_shard)
    for name, spec in specs.items():
        array = group.create_array(
            name, shape=(num_examples, *spec.shape), dtype=spec.dtype,
            chunks=(1, *spec.shape), shards=(examples_per_shard, *spec.shape),
            compressors=_codecs(clevel), fill_value=0,
            dimension_names=("example", *spec.dims),
        )
        array.attrs["units"] = spec.units
        if name in QUANTISED:
            array.attrs["quantum_px"] = flow_quantum
    done = group.create_array("shard_done", shape=(num_shards,), chunks=(1,), dtype="bool",
                              fill_value=False, dimension_names=("shard",),
                              compressors=[Crc32cCodec()])
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
        "joints_convention": KIND_JOINTS_CONVENTION[kind],
        "omitted": list(omit),
        "units": {name: spec.units for name, spec in specs.items()},
        **attrs,
    })
    return group


def unreachable(url: str, exc: BaseException) -> str:
    """The message for a store URL whose object store refuses or cannot be reached."""
    return (f"cannot reach {url}: {exc}; check the credentials and endpoint (README: object "
            f"storage)")


def check_not_input(out: str, source: str, what: str) -> None:
    """Refuse to build into ``out`` when it is the store ``source`` read as input (``what``, the
    option naming it): ``--overwrite`` would wipe it. Local paths are compared resolved.

    Raises
    ------
    ValueError
        ``out`` and ``source`` name the same store.
    """
    def location(url: str) -> str:
        return url.rstrip("/") if "://" in url else os.path.realpath(os.path.expanduser(url))

    if location(str(out)) == location(str(source)):
        raise ValueError(f"--out {out} is the {what} this build reads: choose another --out")


def open_group(url: str, *, mode: str = "r", storage_options: dict | None = None) -> zarr.Group:
    """Open a store's group and check its schema version.

    Raises
    ------
    FileNotFoundError
        No store at ``url``, or an object store that cannot be reached (credentials, endpoint).
    ValueError
        A store of another schema version (say which, and what to do).
    StoreDamageError
        Metadata that does not parse, an unknown kind, missing sizes or a missing array.
    """
    try:
        group = zarr.open_group(url, mode=mode, storage_options=storage_options)
    except (FileNotFoundError, zarr.errors.GroupNotFoundError) as exc:
        raise FileNotFoundError(f"no synthgen store at {url}") from exc
    except ValueError as exc:  # json.JSONDecodeError and zarr's metadata errors; for a URL, also
        # fsspec's "Protocol not known"
        if "://" in url and not isinstance(exc, json.JSONDecodeError):
            raise FileNotFoundError(unreachable(url, exc)) from exc
        raise _damaged(url, f"its zarr.json is not a Zarr group's metadata ({exc})") from exc
    except Exception as exc:  # each fsspec backend raises its own (botocore's NoCredentialsError)
        if "://" not in url:
            raise
        raise FileNotFoundError(unreachable(url, exc)) from exc
    version = group.attrs.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ValueError(f"{url}: store schema version {version!r}, this synthgen reads "
                         f"{SCHEMA_VERSION}; rebuild the store with this version of synthgen")
    _check_structure(url, group, arrays=mode == "r")
    return group


def _damaged(url: str, detail: str) -> StoreDamageError:
    return StoreDamageError(f"{url}: damaged store: {detail}; rebuild the store")


def _check_structure(url: str, group: zarr.Group, *, arrays: bool = True) -> None:
    """Raise :class:`StoreDamageError` unless the root attributes name a known kind and sizes
    and, with ``arrays``, every array of the store's schema (and ``shard_done``) has readable
    metadata: one small read per array, ~7 ms CPU locally, left to readers (a build's shard
    tasks open the store for writing once each)."""
    attrs = group.attrs
    if attrs.get("kind", "synthetic") not in KINDS:
        raise _damaged(url, f"unknown store kind {attrs['kind']!r} (known: {sorted(KINDS)})")
    sizes = ("num_examples", "num_frames", "crop_size", "examples_per_shard")
    bad = [key for key in sizes if not isinstance(attrs.get(key), int) or attrs[key] < 1]
    if bad:
        raise _damaged(url, f"root attribute(s) {bad} missing or not positive integers")
    for name in (*store_schema(attrs), "shard_done") if arrays else ():
        try:
            group[name]
        except KeyError as exc:
            raise _damaged(url, f"array {name} is missing") from exc
        except ValueError as exc:
            raise _damaged(url, f"{name}/zarr.json is not a Zarr array's metadata ({exc})") from exc


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

    ``arrays`` maps each name of the store kind's schema (omitted arrays included: they are
    dropped here) to an array whose first axis is the shard's examples, in stored dtype
    (``flow`` already quantised with :func:`quantize_flow`). Every chunk is written, all-zero
    ones too.

    Raises
    ------
    ValueError
        Missing or extra arrays, or a wrong shape/dtype (checked before anything is written).
    """
    rows = shard_slice(group, shard)
    n = rows.stop - rows.start
    specs = full_schema(group.attrs)
    if set(arrays) != set(specs):
        raise ValueError(f"shard arrays differ from the schema: missing {sorted(set(specs) - set(arrays))}, "
                         f"extra {sorted(set(arrays) - set(specs))}")
    for name, spec in specs.items():
        value = arrays[name]
        if value.shape != (n, *spec.shape) or value.dtype != np.dtype(spec.dtype):
            raise ValueError(f"shard array {name}: got {value.shape} {value.dtype}, "
                             f"expected {(n, *spec.shape)} {spec.dtype}")
    for name in store_schema(group.attrs):
        group[name].with_config({"write_empty_chunks": True})[rows] = arrays[name]


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


# ----------------------------------------------------------------------------------------------
# Checked reader

#: Shard-index entry of a chunk absent from its shard (Zarr's sharding codec).
_ABSENT = np.iinfo(np.uint64).max
#: Bytes of Blosc's chunk header; bytes 4..8 hold the decompressed size (little-endian).
_BLOSC_HEADER = 16


class StoreDamageError(ValueError):
    """A finished shard that does not read back (missing file, checksum, undecodable chunk).

    Attributes ``url``, ``array``, ``shard`` and ``examples`` (``(start, stop)``) locate it;
    ``detail`` says what is wrong. Made from a message alone (``StoreDamageError(text)``, how a
    DataLoader re-raises a worker's error), only the message is set.
    """

    def __init__(self, url: str, array: str | None = None, shard: int | None = None,
                 examples: tuple[int, int] = (0, 0), detail: str = ""):
        self.url, self.array, self.shard, self.examples, self.detail = (
            url, array, shard, examples, detail)
        if array is None:
            super().__init__(url)
            return
        super().__init__(f"{url}: array {array} shard {shard} (examples {examples[0]}.."
                         f"{examples[1] - 1}) is damaged: {detail}; rebuild the store")


def chunk_crc_ok(data) -> bool:
    """Whether ``data`` (stored chunk bytes) ends with the crc32c of the bytes before it."""
    data = np.asarray(data, dtype=np.uint8)
    return len(data) >= 4 and google_crc32c.value(data[:-4]) == int.from_bytes(data[-4:], "little")


def decode_chunk(data, out: np.ndarray) -> None:
    """Decompress one stored chunk's Blosc bytes (checksum removed) into ``out`` (C-contiguous).

    Raises
    ------
    ValueError
        The decompressed size is not ``out``'s, or Blosc rejects the bytes.
    """
    data = np.asarray(data, dtype=np.uint8)
    size = int.from_bytes(data[4:8], "little") if len(data) >= _BLOSC_HEADER else -1
    if size != out.nbytes:
        raise ValueError(f"chunk holds {size} bytes, expected {out.nbytes}")
    blosc.decompress(data, out)


class StoreReader:
    """Examples of a store read straight from its shard files, every read checked.

    One byte-range read per array and example, plus one read of the shard's index (16 bytes per
    example and a crc32c), kept for the ``index_cache`` most recent (array, shard) pairs; or one
    read of a whole shard file (:meth:`read_shard`). Works through the store's Zarr ``Store``, so
    on local paths and fsspec URLs alike. Thread-safe; pickles without its caches (DataLoader
    workers and dask reopen nothing but the store); a forked copy reopens the store on first use.

    Parameters
    ----------
    url : str
        The store (for messages and reopening).
    group : zarr.Group, optional
        Already open (:func:`open_group`); opened here otherwise.
    index_cache : int
        Shard indexes kept.

    Raises
    ------
    StoreDamageError
        From every read: a file of a done shard is missing or truncated, a checksum fails, a chunk
        is absent from its shard or does not decode.
    """

    def __init__(self, url: str, group: zarr.Group | None = None, *, index_cache: int = 512,
                 storage_options: dict | None = None):
        self.url = str(url)
        self.storage_options = storage_options
        self.index_cache = index_cache
        self._open(group if group is not None else open_group(self.url,
                                                            storage_options=storage_options))

    def _open(self, group: zarr.Group) -> None:
        self._pid = os.getpid()
        self.group = group
        self.attrs = dict(group.attrs)
        self.specs = store_schema(self.attrs)
        self.per_shard = int(self.attrs["examples_per_shard"])
        self.num_examples = int(self.attrs["num_examples"])
        self._store = group.store
        prefix = f"{group.path}/" if group.path else ""
        self._keys = {name: prefix + name + "/c/" + "/".join(["{}"] + ["0"] * len(spec.shape))
                      for name, spec in self.specs.items()}
        self._indexes: OrderedDict = OrderedDict()
        self._array_attrs: dict[str, dict] = {}
        self._lock = threading.Lock()

    def __getstate__(self):
        return {"url": self.url, "storage_options": self.storage_options,
                "index_cache": self.index_cache}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._open(open_group(self.url, storage_options=self.storage_options))

    def _reopen_if_forked(self) -> None:
        """Reopen the store in a forked process (a DataLoader worker): an fsspec store's client
        belongs to the parent's event loop and cannot be used from the child."""
        if self._pid != os.getpid():
            self._open(open_group(self.url, storage_options=self.storage_options))

    def array_attrs(self, name: str) -> dict:
        """The attributes of array ``name`` (``units``, flow's ``quantum_px``), read once."""
        self._reopen_if_forked()
        if name not in self._array_attrs:
            self._array_attrs[name] = dict(self.group[name].attrs)
        return self._array_attrs[name]

    def shard_of(self, index: int) -> int:
        """The shard holding example ``index``."""
        return int(index) // self.per_shard

    def _damage(self, name: str, shard: int, detail: str) -> StoreDamageError:
        start = shard * self.per_shard
        return StoreDamageError(self.url, name, shard,
                                (start, min(start + self.per_shard, self.num_examples)), detail)

    def _get(self, key: str, byte_range=None):
        self._reopen_if_forked()
        if isinstance(self._store, SupportsGetSync):  # local paths: a plain file read
            buffer = self._store.get_sync(key, byte_range=byte_range)
        else:  # fsspec URLs: zarr's FsspecStore is asynchronous only
            buffer = _sync(self._store.get(key, default_buffer_prototype(), byte_range))
        return None if buffer is None else buffer.as_numpy_array()

    def _parse_index(self, name: str, shard: int, raw) -> np.ndarray:
        size = self.per_shard * 16 + 4
        if len(raw) < size or not chunk_crc_ok(raw[-size:]):
            raise self._damage(name, shard, "shard index checksum mismatch (truncated or "
                                            "overwritten file)")
        return np.frombuffer(raw[-size:-4], dtype="<u8").reshape(-1, 2)

    def _missing(self, name: str, shard: int) -> StoreDamageError:
        return self._damage(name, shard, f"shard file {self._keys[name].format(shard)} missing "
                                         f"although the shard is marked done")

    def shard_index(self, name: str, shard: int) -> np.ndarray:
        """(examples_per_shard, 2) uint64: (offset, nbytes) of each chunk in the shard's file."""
        key = (name, shard)
        with self._lock:
            if key in self._indexes:
                self._indexes.move_to_end(key)
                return self._indexes[key]
        raw = self._get(self._keys[name].format(shard), SuffixByteRequest(self.per_shard * 16 + 4))
        if raw is None:
            raise self._missing(name, shard)
        index = self._parse_index(name, shard, raw)
        with self._lock:
            self._indexes[key] = index
            while len(self._indexes) > self.index_cache:
                self._indexes.popitem(last=False)
        return index

    def _decode(self, name: str, shard: int, position: int, data, out=None) -> np.ndarray:
        spec = self.specs[name]
        if not chunk_crc_ok(data):
            raise self._damage(name, shard, f"checksum mismatch in the chunk of example "
                                            f"{shard * self.per_shard + position}")
        if out is None:
            out = np.empty(spec.shape, dtype=np.dtype(spec.dtype).newbyteorder("<"))
        try:
            decode_chunk(data[:-4], out)
        except Exception as exc:  # noqa: BLE001 - any decoder failure is damage of this chunk
            raise self._damage(name, shard, f"chunk of example {shard * self.per_shard + position}"
                                            f" does not decode: {exc}") from exc
        return out

    def chunk_bytes(self, name: str, index: int):
        """The stored bytes (Blosc data and crc32c) of example ``index``'s chunk of ``name``."""
        shard = self.shard_of(index)
        position = int(index) - shard * self.per_shard
        offset, nbytes = (int(v) for v in self.shard_index(name, shard)[position])
        if offset == _ABSENT:
            raise self._damage(name, shard, f"chunk of example {index} absent from the shard file")
        data = self._get(self._keys[name].format(shard), RangeByteRequest(offset, offset + nbytes))
        if data is None:
            raise self._missing(name, shard)
        if len(data) != nbytes:
            raise self._damage(name, shard, f"shard file truncated in the chunk of example {index}")
        return data

    def read(self, name: str, index: int, out: np.ndarray | None = None) -> np.ndarray:
        """Example ``index``'s value of array ``name``, shape of its :class:`ArraySpec`, stored
        dtype and units; decompressed into ``out`` (C-contiguous, that shape and dtype) when
        given."""
        return self._decode(name, self.shard_of(index), int(index) % self.per_shard,
                            self.chunk_bytes(name, index), out)

    def read_example(self, index: int, names) -> dict[str, np.ndarray]:
        """:meth:`read` of each of ``names`` for example ``index``."""
        return {name: self.read(name, index) for name in names}

    def read_shard(self, name: str, shard: int) -> np.ndarray:
        """Every example of shard ``shard`` of ``name`` from one read of its file, shape
        ``(n, *spec.shape)``."""
        raw = self._get(self._keys[name].format(shard))
        if raw is None:
            raise self._missing(name, shard)
        index = self._parse_index(name, shard, raw)
        start = shard * self.per_shard
        count = min(self.per_shard, self.num_examples - start)
        spec = self.specs[name]
        out = np.empty((count, *spec.shape), dtype=spec.dtype)
        for position, (offset, nbytes) in enumerate(index[:count].tolist()):
            if offset == _ABSENT or offset + nbytes > len(raw) - len(index) * 16 - 4:
                raise self._damage(name, shard, f"chunk of example {start + position} absent "
                                                f"from the shard file or past its end")
            out[position] = self._decode(name, shard, position, raw[offset:offset + nbytes])
        return out

    def check_present(self, shards=None) -> None:
        """Raise :class:`StoreDamageError` for the first array file missing from a done shard
        (``shards``: those to check, default every done one), from one listing per array."""
        self._reopen_if_forked()
        done = np.flatnonzero(finished_shards(self.group)) if shards is None else shards
        for name in self.specs:
            present = self.present_shards(name)
            for shard in done:
                if str(int(shard)) not in present:
                    raise self._missing(name, int(shard))

    def present_shards(self, name: str) -> set[str]:
        """The shards of array ``name`` that have a file (their numbers as text), from one
        listing."""
        self._reopen_if_forked()
        prefix = self._keys[name].split("/c/")[0] + "/c/"
        return {key[len(prefix):].split("/")[0] for key in _list_prefix(self._store, prefix)}


def damaged_shards(url: str, group: zarr.Group) -> dict[int, str]:
    """Finished shards one of whose array files is missing (one listing per array) or, for a
    local store, truncated (its shard index fails its checksum: one small read per array and
    shard, ~1 ms CPU per shard; on object storage each would be a request, so URLs get the
    listing only), with the first problem found.

    Returns
    -------
    dict of int to str
        Shard number to what is wrong (empty when every finished shard is sound).
    """
    reader = StoreReader(url, group)
    done = np.flatnonzero(finished_shards(group)).tolist()
    damaged = {}
    for name in reader.specs:
        present = reader.present_shards(name)
        for shard in done:
            if str(shard) not in present and shard not in damaged:
                damaged[shard] = f"array {name}: shard file missing"
    for shard in ([] if "://" in url else done):
        for name in (n for n in reader.specs if shard not in damaged):
            try:
                reader.shard_index(name, shard)
            except StoreDamageError as exc:
                damaged[shard] = f"array {name}: {exc.detail}"
    return dict(sorted(damaged.items()))


def discard_shard(url: str, group: zarr.Group, shard: int) -> None:
    """Mark shard ``shard`` unfinished and delete its array files, so that :func:`write_shard`
    writes it afresh (zarr reads a damaged shard file back before writing into it)."""
    group["shard_done"][shard] = False
    reader = StoreReader(url, group)
    for key in reader._keys.values():
        _sync(group.store.delete(key.format(shard)))


def _list_prefix(zstore, prefix: str) -> list[str]:
    async def collect():
        return [key async for key in zstore.list_prefix(prefix)]

    return _sync(collect())


class _LazyArray:
    """One array of a store's finished examples, numpy-like for ``dask.array.from_array``."""

    def __init__(self, reader: StoreReader, name: str, examples: np.ndarray):
        spec = reader.specs[name]
        self.reader, self.name, self.examples = reader, name, examples
        self.shape = (len(examples), *spec.shape)
        self.dtype = np.dtype(spec.dtype)
        self.ndim = len(self.shape)

    def __getitem__(self, key) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        chosen = self.examples[key[0]]  # a slice of blocks, or one example
        rows = np.atleast_1d(chosen)
        block = np.empty((len(rows), *self.shape[1:]), dtype=self.dtype)
        for k, index in enumerate(rows.tolist()):
            block[k] = self.reader.read(self.name, index)
        return block[(slice(None) if np.ndim(chosen) else 0, *key[1:])]


def open_store(url: str, *, storage_options: dict | None = None):
    """A lazy ``xarray.Dataset`` (dask-backed) of a store's finished examples.

    Dimensions: example, frame, pair, joint, y, x, channel, xy, xyz, box, pose_param, beta, yx.
    Coordinate ``example`` holds each example's index in the store. ``flow`` is decoded to float32
    crop pixels, as is ``gt_crop_flow`` where stored. Works on a store still being written: only
    complete shards are included. Values are read with :class:`StoreReader` (one dask chunk per
    example).

    Raises
    ------
    StoreDamageError
        At opening, a file of a done shard is missing; when values are computed, any damage.
    """
    import dask.array as da
    import xarray as xr

    group = open_group(url, storage_options=storage_options)
    reader = StoreReader(url, group, storage_options=storage_options)
    reader.check_present()
    index = finished_examples(group)
    variables = {}
    for name, spec in reader.specs.items():
        array = group[name]
        data = da.from_array(_LazyArray(reader, name, index), chunks=(1, *spec.shape),
                             asarray=False, lock=False, name=False,
                             meta=np.empty((0,) * (1 + len(spec.shape)), dtype=spec.dtype))
        if name in QUANTISED:
            data = data.astype(np.float32) * np.float32(array.attrs["quantum_px"])
        variables[name] = xr.Variable(("example", *spec.dims), data, attrs=dict(array.attrs))
    return xr.Dataset(variables, coords={"example": index}, attrs=dict(group.attrs))
