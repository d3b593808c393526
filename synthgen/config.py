"""One configuration object for the whole pipeline.

Every number of ``method.md`` is a field here with the paper's value as default. Named pipelines in
``pipelines/*.toml`` override fields by section (``[occluder] enabled = false``); unknown sections or
keys are errors, so a typo never silently falls back to a default. The resolved config is saved with
every output (``Config.to_dict``).
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

PIPELINES_DIR = Path(__file__).resolve().parent.parent / "pipelines"


@dataclass(frozen=True)
class ClipConfig:
    """Clip geometry: T frames of ``height`` x ``width`` pixels at ``fps`` (SURREAL's)."""

    length: int = 31
    height: int = 240
    width: int = 320
    fps: float = 30.0


@dataclass(frozen=True)
class BackgroundConfig:
    """Background clip (method step 1). ``static``: one Kinetics frame repeated (Table 2 ablation)."""

    static: bool = False


@dataclass(frozen=True)
class CameraMotionConfig:
    """Camera motion from TVL1 flow of consecutive background frames (method step 2).

    ``downscale``: flow is computed on frames shrunk by this factor (1: full resolution).
    ``attachment``, ``tightness``, ``num_warp``, ``num_iter``, ``num_levels``: TV-L1 parameters of
    ``synthgen.steps.tvl1`` (scikit-image units: intensities in [0, 1]). Chosen with
    ``benchmarks/bench_camera_motion.py`` on the demo backgrounds: full resolution, 4 levels, 2 warps
    of 12 iterations and attachment 40 give a camera-motion error no worse than scikit-image's
    TV-L1 at its defaults (plain median 0.030 vs 0.031 px, with the inlier pass 0.016 vs 0.021 px)
    at over 10x its speed; downscale 2 (4x cheaper) was 0.05 px, fewer iterations or levels worse.
    ``tile``: side in resized-frame pixels of the blocks whose median flow the cache keeps
    (16 px: ~0.005 px from the full-resolution window median at ~1.2 kB per frame pair).
    ``inlier_radius``: px; *decision*: the median is re-taken over flow within this radius of the
    first median, so independently moving objects do not pull it (``inf``: the paper's plain median).
    ``batch_pairs``: frame pairs computed at once (memory bound, not a result parameter).
    """

    downscale: int = 1
    attachment: float = 40.0
    tightness: float = 0.3
    num_warp: int = 2
    num_iter: int = 12
    num_levels: int = 4
    tile: int = 16
    inlier_radius: float = 0.5
    batch_pairs: int = 8


@dataclass(frozen=True)
class TrackingConfig:
    """Translate the person by the integrated camera motion (method step 3); off = Table 2 ablation."""

    enabled: bool = True


@dataclass(frozen=True)
class SuperpixelConfig:
    """Motion-compensated 4-D SLIC over the background clip (method step 4).

    ``method``: ``"synthgen"`` (our SLIC, centres, windows and connectivity in camera-compensated
    coordinates) or ``"skimage"`` (the paper's off-the-shelf call; only the position channels are
    compensated). ``downsample``: cell side in pixels of ``"synthgen"``'s first iterations
    (1: all at full resolution). See ``synthgen.steps.superpixels``.
    """

    position_scale: tuple[float, float] = (4e-4, 6e-4)
    compactness: float = 0.01
    segments_per_frame: tuple[int, int] = (10, 30)
    motion_compensated: bool = True
    method: str = "synthgen"
    downsample: int = 4


@dataclass(frozen=True)
class OccluderConfig:
    """One random superpixel as occluder (method step 5); rejected below ``min_visible`` of COCO-14."""

    enabled: bool = True
    min_visible: float = 7.0


@dataclass(frozen=True)
class TotalOcclusionConfig:
    """Contiguous totally occluded frames (method step 7)."""

    probability: float = 0.5
    min_frames: int = 1
    max_frames: int = 15


@dataclass(frozen=True)
class VisibilityConfig:
    """Keypoint visibility (method step 8): hidden when >= ``behind_margin_m`` behind the depth map."""

    behind_margin_m: float = 0.2


@dataclass(frozen=True)
class CropConfig:
    """HMR-style crops (method step 9): ``size`` x ``size`` with the person ``person_height`` px tall."""

    size: int = 224
    person_height: float = 150.0


@dataclass(frozen=True)
class CropFlowConfig:
    """Optical flow of paired-box crops (method step 10); see ``synthgen.steps.crop_flow``.

    ``backend``: ``"dis"`` (classical default, no weights needed: OpenCV's DIS with variational
    refinement, ``dis_*`` parameters of ``synthgen.steps.crop_flow.dis.DISBackend``; *decision*,
    chosen with ``benchmarks/bench_crop_flow.py``'s demo examples with ground-truth flow, on other
    seeds than the benchmark's: OpenCV's medium preset with the refinement's brightness weight
    delta 10 instead of 5. Against TV-L1, the previous default, one thread: 3.5-4x the pairs/s
    (~110-150 vs ~35-42 per core at 224x224 on a lightly loaded core); mean limb EPE 1.18 vs
    1.44 px on the demo examples (forearms, hands, shins, feet; scikit-image's TV-L1 1.41, OpenCV's
    DIS medium preset 1.20, DeepFlow 1.57, DualTVL1 1.77) and 1.90 vs 2.97 px on the synthetic
    "limb over pan" pairs; TV-L1 stays ahead on the background (0.27 vs 0.30 px)), ``"tvl1"``
    (the previous default) or a FlowNet model
    (``"flownet2"``, ``"flownet2s"``, ``"flownet2c"``, ``"flownet2cs"``, ``"flownet2css"``,
    ``"flownet2sd"``) with ``checkpoint`` the path of its published flownet2-pytorch weights.
    ``device``, ``batch_size`` (pairs per call) and ``mixed_precision`` (float16 autocast, CUDA
    only) apply to FlowNet; with a CUDA ``device`` each build shard task asks Ray for
    ``gpu_fraction`` of a GPU, so shard tasks run on the cluster's GPU nodes (*decision*: 0.25,
    four shard tasks share one GPU). ``tvl1_*`` are the TV-L1 parameters of ``synthgen.steps.tvl1``
    used on the 224x224 crops (*decision*, chosen in ``benchmarks/bench_crop_flow.py``, one
    thread): flow at half resolution (112x112, 3 levels), 3 warps of 20 iterations, attachment
    30 runs ~4x faster than the previous full-resolution default (4 levels, 5 warps of 10,
    attachment 15; 63 vs 16 pairs/s/core, scikit-image's TV-L1 at defaults 2.5) and is more
    accurate on a textured "limb" moving up to ~15 px over a panning background (mean EPE on the
    limb 3.0 vs 3.2 px for both on the benchmark's 16 pairs, 1.8 vs 2.3 and 2.2 px on another
    32); it gives up ~0.05 px on uniform motion (inner EPE 0.12 vs 0.06 and 0.08 px on shifts up
    to 12 px), immaterial at the network's flow / 20 input scale.
    """

    backend: str = "dis"
    checkpoint: str | None = None
    device: str = "cpu"
    gpu_fraction: float = 0.25
    batch_size: int = 8
    mixed_precision: bool = True
    tvl1_attachment: float = 30.0
    tvl1_tightness: float = 0.3
    tvl1_num_warp: int = 3
    tvl1_num_iter: int = 20
    tvl1_num_levels: int = 3
    tvl1_downscale: int = 2
    dis_finest_scale: int = 1
    dis_patch_size: int = 8
    dis_patch_stride: int = 3
    dis_gradient_descent_iterations: int = 25
    dis_refinement_iterations: int = 5
    dis_refinement_alpha: float = 20.0
    dis_refinement_gamma: float = 10.0
    dis_refinement_delta: float = 10.0


@dataclass(frozen=True)
class StoreConfig:
    """Zarr store layout: ``examples_per_shard`` examples per shard file, Blosc zstd ``clevel``,
    crop flow quantised to ``flow_quantum`` pixels (stored as int16)."""

    examples_per_shard: int = 128
    clevel: int = 5
    flow_quantum: float = 1.0 / 32.0


@dataclass(frozen=True)
class Config:
    """The resolved pipeline configuration. ``name``: the pipeline it came from."""

    name: str = "default"
    clip: ClipConfig = field(default_factory=ClipConfig)
    background: BackgroundConfig = field(default_factory=BackgroundConfig)
    camera_motion: CameraMotionConfig = field(default_factory=CameraMotionConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    superpixels: SuperpixelConfig = field(default_factory=SuperpixelConfig)
    occluder: OccluderConfig = field(default_factory=OccluderConfig)
    total_occlusion: TotalOcclusionConfig = field(default_factory=TotalOcclusionConfig)
    visibility: VisibilityConfig = field(default_factory=VisibilityConfig)
    crops: CropConfig = field(default_factory=CropConfig)
    crop_flow: CropFlowConfig = field(default_factory=CropFlowConfig)
    store: StoreConfig = field(default_factory=StoreConfig)

    def to_dict(self) -> dict:
        """Plain nested dict (JSON/TOML-serialisable), the form saved beside every output."""
        return _to_plain(dataclasses.asdict(self))

    def replace(self, **sections) -> "Config":
        """A copy with whole sections or section fields replaced: ``cfg.replace(clip={"length": 8})``."""
        return from_dict(_merge(self.to_dict(), sections))


def _to_plain(value):
    if isinstance(value, dict):
        return {k: _to_plain(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_to_plain(v) for v in value]
    return value


def _merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def from_dict(data: dict) -> Config:
    """Build a Config from a nested dict, rejecting unknown sections and keys.

    Raises
    ------
    ValueError
        On an unknown section or key, naming it and the known ones.
    """
    kwargs = {}
    sections = {f.name: f for f in dataclasses.fields(Config)}
    for key, value in data.items():
        if key not in sections:
            raise ValueError(f"unknown config section {key!r}; known: {sorted(sections)}")
        if key == "name":
            kwargs[key] = str(value)
            continue
        cls = sections[key].default_factory
        known = {f.name: f for f in dataclasses.fields(cls)}
        if not isinstance(value, dict):
            raise ValueError(f"config section {key!r} must be a table, got {value!r}")
        for sub in value:
            if sub not in known:
                raise ValueError(f"unknown key {key}.{sub}; known: {sorted(known)}")
        fixed = {k: tuple(v) if isinstance(v, list) else v for k, v in value.items()}
        kwargs[key] = cls(**fixed)
    return Config(**kwargs)


def load_config(pipeline: str | Path | None = None) -> Config:
    """Load a named pipeline (``"full"``, ``"pipelines/full"``, or a path to a ``.toml`` file).

    ``pipelines/train_*.toml`` are the trainer's configurations, not data pipelines.

    A pipeline file may name a base with ``base = "full"``; its tables override the base's.
    ``None`` gives the defaults (the paper's full recipe).
    """
    if pipeline is None:
        return Config()
    return from_dict(_read_pipeline(pipeline))


def _resolve_pipeline_path(pipeline: str | Path) -> Path:
    path = Path(pipeline)
    candidates = [path, path.with_suffix(".toml"), PIPELINES_DIR / path.name,
                  PIPELINES_DIR / f"{path.name}.toml"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    known = sorted(p.stem for p in PIPELINES_DIR.glob("*.toml") if not p.name.startswith("train_"))
    raise FileNotFoundError(f"no pipeline {str(pipeline)!r}; known pipelines: {known}")


def _read_pipeline(pipeline: str | Path) -> dict:
    path = _resolve_pipeline_path(pipeline)
    with open(path, "rb") as f:
        data = tomllib.load(f)
    base = data.pop("base", None)
    data.setdefault("name", path.stem)
    if base is not None:
        data = _merge(_read_pipeline(base), data)
        data["name"] = path.stem
    return data
