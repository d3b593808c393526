"""What a store holds and whether it is sound: schema, counts, statistics, integrity, verification.

Everything here reads a store (:mod:`synthgen.store`) and returns plain data; ``synthgen inspect``
prints it (:func:`report_lines`).

- :func:`describe` lists every array with its shape, dtype, chunks, shards, codecs and units.
- :func:`scan` reads every array of every *finished* shard (a store being written is fine), one
  shard file at a time, through :class:`synthgen.store.StoreReader`: a shard whose arrays are
  damaged (file missing, truncated, a checksum failing, a chunk that does not decode) is
  reported with the error, and the others feed the :class:`Statistics`.
- :func:`verify_examples` rebuilds examples from their seeds and inputs
  (:func:`synthgen.build.synthetic.rebuild_example`) and compares every array exactly.

What the integrity check can and cannot see: every stored chunk and every shard index carries a
crc32c, and every chunk of a done shard is written (all-zero ones too), so flipped bytes, a
truncated or deleted shard file and a chunk missing from its shard are all found by reading.
Value checks add what a checksum cannot see (values no real example has: written that way);
an example that is self-consistent but not what its seed makes is found only by
:func:`verify_examples`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from synthgen import store
from synthgen.build.engine import skipped_lines
from synthgen.core.errors import Skip
from synthgen.steps.visibility import BEHIND_DEPTH, OCCLUDER, OUTSIDE_FRAME, TOTAL_OCCLUSION

#: Visibility bits with their report names, in bit order.
VISIBILITY_REASONS = (("outside_frame", int(OUTSIDE_FRAME)), ("occluder", int(OCCLUDER)),
                      ("total_occlusion", int(TOTAL_OCCLUSION)),
                      ("behind_body", int(BEHIND_DEPTH)))

#: Percentiles reported for distributions.
PERCENTILES = (0, 5, 50, 95, 99, 100)


@dataclass(frozen=True)
class ArrayInfo:
    """One stored array as laid out on disk.

    ``shape``, ``chunks`` and ``shards`` include the example axis; ``stored_bytes`` is the size of
    its files (None where the store cannot tell), ``codecs`` a readable list of its compressors.
    """

    name: str
    dims: tuple[str, ...]
    shape: tuple[int, ...]
    dtype: str
    chunks: tuple[int, ...]
    shards: tuple[int, ...] | None
    codecs: str
    stored_bytes: int | None
    units: str


def _codec_text(codec) -> str:
    info = codec.to_dict()
    config = ", ".join(f"{k}={v}" for k, v in sorted(info.get("configuration", {}).items())
                       if k != "typesize")  # typesize follows from the dtype
    return f"{info['name']}({config})"


def describe(group) -> list[ArrayInfo]:
    """Every array of a store (schema order, then ``shard_done``), with its on-disk layout."""
    names = [*store.store_schema(group.attrs), "shard_done"]
    infos = []
    for name in names:
        array = group[name]
        try:
            stored = int(array.nbytes_stored())
        except (NotImplementedError, OSError):
            stored = None
        codecs = ", ".join(_codec_text(c) for c in array.compressors) or "none"
        infos.append(ArrayInfo(name=name, dims=tuple(array.metadata.dimension_names or ()),
                               shape=tuple(array.shape), dtype=str(array.dtype),
                               chunks=tuple(array.chunks),
                               shards=None if array.shards is None else tuple(array.shards),
                               codecs=codecs, stored_bytes=stored,
                               units=str(array.attrs.get("units", ""))))
    return infos


def percentiles(values: np.ndarray) -> dict[int, float]:
    """The :data:`PERCENTILES` of ``values`` (NaN for an empty array), keyed by percent."""
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size == 0:
        return {p: float("nan") for p in PERCENTILES}
    return dict(zip(PERCENTILES, (float(v) for v in np.percentile(values, PERCENTILES))))


def histogram_percentiles(counts: np.ndarray, bin_width: float) -> dict[int, float]:
    """Percentiles from a histogram of bins ``[i, i + 1) * bin_width``, as bin centres.

    Accurate to half a bin; the 0th and 100th percentiles are the centres of the first and last
    non-empty bins.
    """
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    if total == 0:
        return {p: float("nan") for p in PERCENTILES}
    cdf = np.cumsum(counts)
    out = {}
    for p in PERCENTILES:
        rank = max(1, int(np.ceil(p / 100.0 * total)))
        out[p] = (int(np.searchsorted(cdf, rank)) + 0.5) * bin_width
    return out


@dataclass(frozen=True)
class Statistics:
    """Statistics of the examples of a store's readable finished shards.

    Attributes
    ----------
    examples : int
    occluder_reasons : dict of str to int
        Examples per occluder outcome (``attrs['occluder_reasons']``).
    occlusion_rate : float
        Fraction of examples with an occluder (paper: about 0.3).
    mean_occluded_fraction : float
        Mean fraction of the person's pixels removed, over occluded examples (NaN if none).
    superpixels_per_frame : dict of int to float
        Percentiles over examples of the mean superpixels per frame (paper: 10..30), examples
        with the occluder disabled left out.
    visibility : dict of str to float
        Fraction of joint-frames (all 24 joints, all frames) with each hidden-reason bit set,
        plus ``"hidden"`` (any bit) and ``"visible"``. Reasons can overlap.
    total_occlusion_examples, total_occlusion_frames : float
        Fraction of examples with at least one totally occluded frame; fraction of all frames.
    flow_magnitude_px : dict of int to float
        Percentiles of the crop-flow magnitude over every pixel of every pair, crop pixels, to
        within one ``quantum_px`` (from a histogram).
    box_side_px : dict of int to float
        Percentiles of the crop-box side over all frames, frame pixels.
    camera_speed_px : dict of int to float
        Percentiles of the camera motion between consecutive frames, ``|offset[t+1] - offset[t]|``,
        frame pixels per frame.
    camera_extent_px : dict of int to float
        Percentiles over examples of the largest ``|offset[t]|`` (displacement from the centre
        frame), frame pixels.
    genders : dict of str to int
    """

    examples: int
    occluder_reasons: dict
    occlusion_rate: float
    mean_occluded_fraction: float
    superpixels_per_frame: dict
    visibility: dict
    total_occlusion_examples: float
    total_occlusion_frames: float
    flow_magnitude_px: dict
    box_side_px: dict
    camera_speed_px: dict
    camera_extent_px: dict
    genders: dict


class _Accumulator:
    """Streams shards into :class:`Statistics` (flow as a histogram, the rest kept whole)."""

    def __init__(self, occluder_reasons, genders, quantum_px: float):
        self.occluder_reasons = list(occluder_reasons)
        self.genders = list(genders)
        self.quantum = float(quantum_px)
        self.flow_counts = np.zeros(1, dtype=np.int64)
        self.parts: dict[str, list[np.ndarray]] = {}

    def add(self, arrays: dict) -> None:
        for name in ("occluder_reason", "occluded_fraction", "superpixels_per_frame",
                     "visibility", "total_occlusion",
                     "boxes", "camera_motion", "gender"):
            self.parts.setdefault(name, []).append(np.asarray(arrays[name]))
        if "flow" not in arrays:  # a store built without flow (store.omit)
            return
        flow = np.asarray(arrays["flow"], dtype=np.float32)  # int16 quanta
        bins = np.sqrt(np.sum(flow * flow, axis=-1)).astype(np.int64).ravel()
        counts = np.bincount(bins)
        if counts.size > self.flow_counts.size:
            self.flow_counts = np.pad(self.flow_counts, (0, counts.size - self.flow_counts.size))
        self.flow_counts[:counts.size] += counts

    def _all(self, name: str, shape_tail: tuple) -> np.ndarray:
        parts = self.parts.get(name)
        return np.concatenate(parts) if parts else np.zeros((0, *shape_tail))

    def result(self) -> Statistics:
        reasons = self._all("occluder_reason", ()).astype(np.int64)
        fraction = self._all("occluded_fraction", ())
        superpixels = self._all("superpixels_per_frame", ())
        visibility = self._all("visibility", (1, 24)).astype(np.uint8)
        total = self._all("total_occlusion", (1,)).astype(bool)
        boxes = self._all("boxes", (1, 3))
        motion = self._all("camera_motion", (1, 2)).astype(np.float64)
        gender = self._all("gender", ()).astype(np.int64)
        n = int(reasons.size)
        occluded = reasons == self.occluder_reasons.index("occluded")

        def mean(values):
            return float(np.mean(values)) if np.size(values) else float("nan")

        vis = {name: mean((visibility & bit) != 0) for name, bit in VISIBILITY_REASONS}
        vis["hidden"] = mean(visibility != 0)
        vis["visible"] = mean(visibility == 0)
        speed = np.linalg.norm(np.diff(motion, axis=1), axis=-1)
        extent = np.linalg.norm(motion, axis=-1).max(axis=1) if motion.size else np.zeros(0)
        return Statistics(
            examples=n,
            occluder_reasons={r: int(np.sum(reasons == i))
                              for i, r in enumerate(self.occluder_reasons)},
            occlusion_rate=mean(occluded),
            mean_occluded_fraction=mean(fraction[occluded]),
            superpixels_per_frame=percentiles(superpixels[superpixels > 0]),
            visibility=vis,
            total_occlusion_examples=mean(total.any(axis=1)) if n else float("nan"),
            total_occlusion_frames=mean(total),
            flow_magnitude_px=histogram_percentiles(self.flow_counts, self.quantum),
            box_side_px=percentiles(boxes[..., 2]),
            camera_speed_px=percentiles(speed),
            camera_extent_px=percentiles(extent),
            genders={g: int(np.sum(gender == i)) for i, g in enumerate(self.genders)})


@dataclass(frozen=True)
class ShardProblem:
    """A finished shard that failed the integrity check.

    ``examples`` is its ``(start, stop)`` range; ``array`` the array concerned; ``error`` says
    what went wrong (the decoder's message, or the failed value check).
    """

    shard: int
    examples: tuple[int, int]
    array: str
    error: str


def _value_problems(arrays: dict) -> list[tuple[str, str]]:
    """Values no real example has (written wrong: the checksums only show that they read back)."""
    problems = []
    rgb = arrays.get("rgb", np.ones((0,)))
    blank = [i for i in range(len(rgb)) if not rgb[i].any()]
    if blank:
        problems.append(("rgb", f"all-zero crops in {len(blank)} example(s) of the shard"))
    if "boxes" in arrays and not np.all(arrays["boxes"][..., 2] > 0):
        problems.append(("boxes", "non-positive box side"))
    if "joints3d" in arrays and not np.all(arrays["joints3d"][..., 2] > 0):  # video: no 3D truth
        problems.append(("joints3d", "joint depth z <= 0"))
    for name, value in arrays.items():
        if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
            problems.append((name, "non-finite values"))
    return problems


def read_shard(reader: store.StoreReader,
               shard: int) -> tuple[dict[str, np.ndarray], list[tuple[str, str]]]:
    """Read every stored array of one shard: the arrays read, and ``(array, error)`` pairs."""
    arrays, errors = {}, []
    for name in reader.specs:
        try:
            arrays[name] = reader.read_shard(name, shard)
        except store.StoreDamageError as exc:
            errors.append((name, exc.detail))
    return arrays, errors


def scan(group, *, progress_stream=None) -> tuple[Statistics, list[ShardProblem], np.ndarray]:
    """Read every finished shard: statistics of the sound ones, problems of the others.

    Parameters
    ----------
    group : zarr.Group
        From :func:`synthgen.store.open_group`.
    progress_stream : file, optional
        Where to print progress (None: silent).

    Returns
    -------
    statistics : Statistics or None
        Over the examples of the finished shards that passed; None for a store that is not a
        synthetic training store (3DPW, video), whose integrity alone is checked.
    problems : list of ShardProblem
        One entry per failing array of each failing shard, by shard.
    finished : ndarray of bool, shape (num_shards,)
        Which shards were finished when the scan started.
    """
    from synthgen.core.progress import Progress

    finished = store.finished_shards(group)
    reader = store.StoreReader(str(group.store_path), group)
    synthetic = group.attrs.get("kind", "synthetic") == "synthetic" and "flow" in group
    accumulator = (_Accumulator(group.attrs["occluder_reasons"], group.attrs["genders"],
                                group["flow"].attrs["quantum_px"]) if synthetic else None)
    problems: list[ShardProblem] = []
    progress = (Progress(int(finished.sum()), desc="shards", stream=progress_stream)
                if progress_stream is not None else None)
    for shard in np.flatnonzero(finished):
        rows = store.shard_slice(group, int(shard))
        arrays, errors = read_shard(reader, int(shard))
        if not errors:
            errors = _value_problems(arrays)
        if errors:
            problems += [ShardProblem(int(shard), (rows.start, rows.stop), name, error)
                         for name, error in errors]
        elif accumulator is not None:
            accumulator.add(arrays)
        if progress is not None:
            progress.update()
    if progress is not None:
        progress.close()
    return (accumulator.result() if accumulator is not None else None), problems, finished


def sample_examples(finished_examples: np.ndarray, count: int | None, *,
                    seed: int = 0) -> np.ndarray:
    """``count`` examples drawn without replacement (all when None or larger), ascending.

    The draw depends only on ``seed`` and the finished examples, so a report is reproducible.
    """
    finished = np.asarray(finished_examples, dtype=np.int64)
    if count is None or count >= finished.size:
        return finished
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(finished, size=count, replace=False))


def compare_rows(stored: dict, rebuilt: dict) -> dict[str, str]:
    """Arrays whose stored and rebuilt values differ, each with a description of the difference.

    Comparison is exact (dtype, shape and every value; NaN equals NaN).
    """
    mismatches = {}
    for name in sorted(set(stored) | set(rebuilt)):
        if name not in stored or name not in rebuilt:
            mismatches[name] = "missing from the " + ("store" if name not in stored else "rebuild")
            continue
        a, b = np.asarray(stored[name]), np.asarray(rebuilt[name])
        if a.shape != b.shape or a.dtype != b.dtype:
            mismatches[name] = f"stored {a.shape} {a.dtype}, rebuilt {b.shape} {b.dtype}"
            continue
        if np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"):
            continue
        differ = a != b
        if a.dtype.kind in "fc":
            differ &= ~(np.isnan(a) & np.isnan(b))
        text = f"{int(differ.sum())} of {a.size} values differ"
        if a.dtype.kind in "iuf":
            diff = np.abs(a.astype(np.float64) - b.astype(np.float64))[differ]
            text += f", max |difference| {float(diff.max()):.6g}"
        if a.ndim == 0:
            text += f" (stored {a.item()!r}, rebuilt {b.item()!r})"
        mismatches[name] = text
    return mismatches


@dataclass(frozen=True)
class Verification:
    """The outcome of rebuilding one example: ``mismatches`` by array, or the ``error`` met."""

    index: int
    mismatches: dict
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and not self.mismatches


def stored_row(group, index: int) -> dict[str, np.ndarray]:
    """Example ``index``'s value of every stored array, in stored dtype (flow as int16 quanta),
    read and checked by :class:`synthgen.store.StoreReader`."""
    reader = store.StoreReader(str(group.store_path), group)
    return reader.read_example(index, reader.specs)


def verify_examples(url: str, indices, *, cache_dir=None,
                    progress_stream=None) -> list[Verification]:
    """Rebuild examples from their seeds and inputs and compare every array with the store.

    Parameters
    ----------
    url : str
        The store.
    indices : iterable of int
        Examples to rebuild (finished ones: see :func:`sample_examples`).
    cache_dir : path, optional
        Camera-motion cache the store was built with (default: the build's default).

    Returns
    -------
    list of Verification
        An unreadable input or any other failure to rebuild is that example's ``error``.
    """
    from synthgen.build.synthetic import rebuild_example
    from synthgen.core.progress import Progress

    group = store.open_group(url)
    indices = [int(i) for i in indices]
    progress = (Progress(len(indices), desc="verified", stream=progress_stream)
                if progress_stream is not None else None)
    results = []
    for index in indices:
        try:
            _, _, row = rebuild_example(url, index, cache_dir=cache_dir)
        except Exception as exc:  # noqa: BLE001 - reported per example, the others go on
            results.append(Verification(index, {}, f"cannot rebuild: {type(exc).__name__}: {exc}"))
        else:
            try:
                stored = stored_row(group, index)
            except store.StoreDamageError as exc:
                results.append(Verification(index, {}, str(exc)))
            else:
                results.append(Verification(index, compare_rows(
                    stored, {k: v for k, v in row.items() if k in stored})))
        if progress is not None:
            progress.update()
    if progress is not None:
        progress.close()
    return results


def _format_percentiles(values: dict, unit: str) -> str:
    return "  ".join(f"p{p} {v:.3g}" for p, v in values.items()) + f" ({unit})"


def _size(num_bytes: int | None) -> str:
    return "?" if num_bytes is None else f"{num_bytes / 1e6:.2f} MB"


def report_lines(url: str, group, infos: list[ArrayInfo], statistics: Statistics | None,
                 problems: list[ShardProblem], finished: np.ndarray,
                 verifications: list[Verification] | None = None) -> list[str]:
    """The text report of ``synthgen inspect``: schema, counts, statistics, skips, integrity."""
    attrs = group.attrs
    config = attrs.get("config", {})
    lines = [f"store {url}",
             f"  schema version {attrs['schema_version']}, synthgen "
             f"{attrs.get('synthgen_version')}, pipeline {config.get('name')!r}, seed "
             f"{attrs.get('seed')}, crop flow {attrs.get('crop_flow', {}).get('name')}",
             f"  examples: {attrs['num_examples']} planned, {len(store.finished_examples(group))} "
             f"in finished shards; shards: {int(finished.sum())} finished of {finished.size} "
             f"({attrs['examples_per_shard']} examples each)",
             "", "arrays (shape and chunk/shard with the example axis first)"
             + (f"; left out (store.omit): {', '.join(attrs['omitted'])}"
                if attrs.get("omitted") else "") + ":"]
    for a in infos:
        lines.append(f"  {a.name:22s} {a.dtype:8s} {str(a.shape):22s} [{', '.join(a.dims)}] "
                     f"chunk {a.chunks} shard {a.shards} {_size(a.stored_bytes)}")
        lines.append(f"  {'':22s} {a.units}")
    codecs = Counter(a.codecs for a in infos)
    for codec, count in codecs.most_common():
        names = [a.name for a in infos if a.codecs == codec]
        lines.append(f"  compression {codec}: " + (", ".join(names) if count < len(infos) / 2
                                                     else f"{count} arrays"))
    s = statistics
    if s is None:  # 3DPW and video stores: integrity only
        lines += ["", f"statistics: computed for synthetic training stores only (this store is "
                      f"{attrs.get('kind')!r}" + (", without flow" if "flow" not in group else "")
                  + ")"]
    else:
        lines += _statistics_lines(s)
    return lines + _tail_lines(attrs, problems, finished, verifications)


def _statistics_lines(s: Statistics) -> list[str]:
    return ["", f"statistics over {s.examples} examples of sound finished shards:",
              f"  occlusion rate {s.occlusion_rate:.1%}; occluder outcomes "
              + ", ".join(f"{r} {n}" for r, n in s.occluder_reasons.items())
              + f"; mean person fraction removed when occluded {s.mean_occluded_fraction:.1%}",
              "  superpixels per frame: " + _format_percentiles(s.superpixels_per_frame,
                                                                "mean over frames, per example"),
              "  joint-frames hidden: "
              + ", ".join(f"{r} {v:.1%}" for r, v in s.visibility.items()),
              f"  total occlusion: {s.total_occlusion_examples:.1%} of examples, "
              f"{s.total_occlusion_frames:.1%} of frames",
              "  flow magnitude: " + _format_percentiles(s.flow_magnitude_px, "crop px"),
              "  box side: " + _format_percentiles(s.box_side_px, "frame px"),
              "  camera speed: " + _format_percentiles(s.camera_speed_px, "frame px per frame"),
              "  camera extent: " + _format_percentiles(s.camera_extent_px,
                                                        "frame px from the centre frame"),
              "  genders: " + ", ".join(f"{g} {n}" for g, n in s.genders.items())]


def _tail_lines(attrs, problems, finished, verifications) -> list[str]:
    lines = []
    lines += [""] + skipped_lines([Skip.from_dict(s) for s in attrs.get("skipped", [])])
    bad_shards = sorted({p.shard for p in problems})
    lines += ["", f"integrity: {int(finished.sum()) - len(bad_shards)} of {int(finished.sum())} "
                  f"finished shards readable" + ("" if bad_shards else ": OK")]
    lines += [f"  FAILED shard {p.shard} (examples {p.examples[0]}..{p.examples[1] - 1}) "
              f"array {p.array}: {p.error}" for p in problems]
    if verifications is not None:
        failed = [v for v in verifications if not v.ok]
        lines += ["", f"verification: {len(verifications) - len(failed)} of {len(verifications)} "
                      f"rebuilt examples identical" + ("" if failed else ": OK")]
        for v in failed:
            if v.error:
                lines.append(f"  FAILED example {v.index}: {v.error}")
            for name, text in v.mismatches.items():
                lines.append(f"  FAILED example {v.index} array {name}: {text}")
    return lines
