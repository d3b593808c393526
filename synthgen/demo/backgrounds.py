"""Demo background videos with known camera motion ("Kinetics-like", made from bundled photographs).

A virtual camera films a photograph bundled with scikit-image (no download) with smooth random
pans and small zooms; some videos add independently moving textured objects (elliptical patches
of another photograph, together under a third of the 240x320 window the camera motion is measured
on). Videos are written in several containers, resolutions and frame rates in a Kinetics-like
layout (one folder per class), with the camera track beside each video in
``<stem>.camera_motion.json``.

Camera model (per SOURCE frame ``j``, video pixels with pixel centres at integers)
-----------------------------------------------------------------------------------
Video pixel ``p = (x, y)`` shows the photograph point ``q = c_j + (p - p0) / k_j`` where
``p0 = ((W - 1) / 2, (H - 1) / 2)`` is the video centre, ``c_j = centre_xy[j]`` (photograph
pixels, x then y) and ``k_j = magnification[j]`` (video pixels per photograph pixel, >= 1.5 so the
photograph is only ever enlarged). Frames are rendered with ``cv2.warpAffine`` (INTER_CUBIC); the
translation is rounded to 1/32 photograph pixel (OpenCV's interpolation grid) *before* rendering and
the stored ``centre_xy`` is the rounded value, so the track is exactly the one rendered.

Ground truth (:func:`ground_truth_camera_motion`)
-------------------------------------------------
For the video as ``synthgen.sources.kinetics.read_clip`` returns it (resampled to 30 fps,
resized to cover 240x320, cropped at ``crop_yx``), pair ``t`` gives the median x and median y of
the true optical flow, in output pixels, over the window pixels that show the static scene in
output frame ``t`` (pixels inside a moving object's ellipse excluded): the camera motion a
perfect flow and a median over the background would give. Pans make the flow uniform; a zoom adds
a field linear in the position, symmetric about the window centre, so without objects the value
is the flow at the window centre. With a zoom and an object covering one side of the window it is
not: an object covering a third of the window shifts the background median by up to 0.13 px per
pair on these videos (measured), which is why the median is taken over the visible pixels.

The portrait video films the left view of ``skimage.data.stereo_motorcycle`` (a garage scene):
the astronaut studio portrait it used before put a flat grey backdrop under 39% of the top window
(pixels whose 31x31 mean gradient is below 1.5 grey levels/px, vs 20% and 8% on the two real
Kinetics-style clips of the test data), far flatter than real footage.

Moving objects (``_moving_object``) are sized against the 240x320 window the camera motion is
measured on (its extent in video pixels), not the whole video frame: together they cover at most
a third of any window, however wide or tall the video.
"""

from __future__ import annotations

import hashlib
import json
import math
import zlib
import dataclasses
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import skimage.data

from synthgen.core.errors import CorruptFileError, MissingFileError
from synthgen.sources.kinetics import choose_crop, cover_size, num_frames_30fps, source_index
from synthgen.sources.video import VideoInfo, write_video

TRACK_SUFFIX = ".camera_motion.json"
TRACK_FORMAT = "synthgen-demo-camera-track"
TRACK_VERSION = 1
MIN_MAGNIFICATION = 1.5
VIEW_FRACTION = 0.65  # the view covers at most this fraction of the photograph (room to pan)
JPEG_QUALITY = 95
DEFAULT_NUM_FRAMES = 72  # frames at 30 fps per video (2.4 s)
TEST_NUM_FRAMES = 16
#: Steps per photograph pixel of OpenCV's interpolation grid: track translations are rounded to it
#: before rendering, so the rendered motion is exactly the recorded one.
OPENCV_GRID = 32.0

_FOURCC = {"mp4": "mp4v", "avi": "MJPG", "mkv": "mp4v", "webm": "VP80"}
_PHOTOS = ("astronaut", "motorcycle", "coffee", "chelsea", "rocket", "immunohistochemistry", "camera", "coins",
           "hubble_deep_field")


@dataclass(frozen=True)
class _Spec:
    """One demo video: ``speed`` (max pan between consecutive frames of the 30 fps clip, output
    pixels), ``zoom`` (relative amplitude)."""

    name: str
    label: str
    photo: str
    container: str
    height: int
    width: int
    fps: float
    speed: float
    zoom: float
    objects: int
    whip: bool = False
    blur: float = 0.0
    low_texture: bool = False


_SPECS = (
    _Spec("pan_tissue", "panning", "immunohistochemistry", "avi", 240, 320, 30.0, 5.0, 0.0, 0),
    _Spec("zoom_chelsea", "zooming", "chelsea", "mp4", 360, 480, 25.0, 4.0, 0.03, 1),
    _Spec("wide_coffee", "wide_shot", "coffee", "mkv", 480, 854, 24.0, 6.0, 0.02, 2),
    _Spec("portrait_motorcycle", "portrait", "motorcycle", "webm", 480, 272, 30.0, 3.0, 0.02, 1),
    _Spec("fast_camera", "fast_pan", "camera", "mp4", 360, 640, 60.0, 6.0, 0.0, 0),
    _Spec("frames_coins", "frame_folder", "coins", "frames", 300, 400, 30.0, 4.0, 0.0, 2),
)


#: Fast pans (:func:`make_fast_pan_videos`): 240x320 at 30 fps, so video and output pixels agree.
_FAST_SPECS = (
    _Spec("whip_textured", "fast_pan_textured", "chelsea", "avi", 240, 320, 30.0, 28.0, 0.0, 0, whip=True),
    _Spec("whip_low_texture", "fast_pan_low_texture", "coffee", "avi", 240, 320, 30.0, 28.0, 0.0, 0,
          whip=True, low_texture=True),
    _Spec("whip_blurred", "fast_pan_blurred", "astronaut", "avi", 240, 320, 30.0, 28.0, 0.0, 0,
          whip=True, blur=0.5),
)
#: Low-texture variant: the photograph low-passed (Gaussian sigma, photo px) and its contrast scaled.
_LOW_TEXTURE_SIGMA, _LOW_TEXTURE_CONTRAST = 3.0, 0.35
#: Motion-blurred variant: sub-frames averaged over the exposure.
_BLUR_SUBFRAMES = 9
#: Frames of one to-and-fro cycle of the fast pans.
WHIP_PERIOD = 48


def make_fast_pan_videos(out_dir: str | Path, *, seed: int = 0, num_frames: int = 48,
                         speed: float = 28.0) -> list[Path]:
    """Write whip-pan videos with known camera motion: textured, low-texture and motion-blurred.

    Each is a 240x320 avi (MJPG) at 30 fps filming a bundled photograph with a pure translation
    (no zoom, no moving objects) whose speed ramps from rest to ``speed`` output pixels per frame,
    holds it, slows down and pans back (a cycle of :data:`WHIP_PERIOD` frames), in a random
    direction (mostly horizontal, as in real whip pans). The photograph extends beyond its edges
    by reflection (the travel stays within about one photograph), so every frame shows one static
    scene translated. Low-texture: the photograph is low-passed and its contrast
    reduced; motion-blurred: each frame averages sub-frames over an exposure of half the frame
    interval (blur up to ``speed / 2`` px). Tracks and :func:`ground_truth_camera_motion` as for
    :func:`make_demo_backgrounds`; bit-identical for a given ``seed``.

    Parameters
    ----------
    out_dir : str or Path
        Created if needed; videos go to ``out_dir/<label>/<name>.avi``.
    seed : int
        Seeds the pan directions (``numpy.random.default_rng([seed, 1000 + index])``).
    num_frames : int
        Frames per video.
    speed : float
        Peak camera motion, output pixels per frame.

    Returns
    -------
    list of Path
        ``whip_textured.avi``, ``whip_low_texture.avi``, ``whip_blurred.avi``.
    """
    out_dir = Path(out_dir)
    paths = []
    for index, spec in enumerate(_FAST_SPECS):
        spec = dataclasses.replace(spec, speed=speed)
        rng = np.random.default_rng([seed, 1000 + index])
        paths.append(_make_video(out_dir / spec.label, spec.name, spec, num_frames, rng, seed))
    return paths


def make_demo_backgrounds(out_dir: str | Path, *, seed: int = 0, num_videos: int = 6,
                          num_frames: int | None = None, test_size: bool = False) -> list[Path]:
    """Write demo background videos and their camera tracks under ``out_dir/<class>/``.

    The default set: avi (MJPG) 240x320 at 30 fps without moving objects; mp4 (mp4v) 360x480 at
    25 fps with zoom; mkv (mp4v) 480x854 at 24 fps; webm (VP8) portrait 480x272 at 30 fps; mp4
    360x640 at 60 fps without moving objects; a folder of jpgs 300x400 (30 fps). The two videos
    without moving objects (``pan_tissue.avi``, ``fast_camera.mp4``) suit exact camera-motion tests.
    ``num_videos`` beyond six cycles through them with new random motion. Output is bit-identical
    for a given ``seed``.

    Parameters
    ----------
    out_dir : str or Path
        Created if needed.
    seed : int
        Seeds all motion (``numpy.random.default_rng([seed, video_index])``).
    num_videos : int
        How many videos.
    num_frames : int, optional
        Length of every video in frames at 30 fps (source frames: as many as that needs at the
        video's own rate). Default 72, or 16 with ``test_size``.
    test_size : bool
        Half-resolution videos (so the reader enlarges them) and few frames, for fast tests.

    Returns
    -------
    list of Path
        The video files / frame folders, in generation order.
    """
    out_dir = Path(out_dir)
    if num_frames is None:
        num_frames = TEST_NUM_FRAMES if test_size else DEFAULT_NUM_FRAMES
    paths = []
    for index in range(num_videos):
        spec = _SPECS[index % len(_SPECS)]
        if test_size:
            spec = _half_size(spec)
        name = spec.name if index < len(_SPECS) else f"{spec.name}_{index}"
        rng = np.random.default_rng([seed, index])
        paths.append(_make_video(out_dir / spec.label, name, spec, num_frames, rng, seed))
    return paths


def _half_size(spec: _Spec) -> _Spec:
    even = lambda v: max(2, int(v) // 4 * 2)  # noqa: E731 (half, rounded down to even)
    return _Spec(spec.name, spec.label, spec.photo, spec.container, even(spec.height), even(spec.width),
                 spec.fps, spec.speed, spec.zoom, spec.objects)


def camera_track_path(video_path: str | Path) -> Path:
    """The ``<stem>.camera_motion.json`` beside a demo video file or frame folder."""
    video_path = Path(video_path)
    return video_path.with_name(video_path.stem + TRACK_SUFFIX)


def load_camera_track(video_path: str | Path) -> dict:
    """The camera track of a demo video (JSON keys documented in the module docstring and in
    ``description`` inside the file); ``magnification`` (N,) and ``centre_xy`` (N, 2) as arrays.

    Raises
    ------
    MissingFileError
        No track beside the video.
    CorruptFileError
        The track file is not a synthgen demo camera track of this version.
    """
    path = camera_track_path(video_path)
    if not path.is_file():
        raise MissingFileError(path, "no camera track beside the video (not a synthgen demo video?)")
    try:
        track = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise CorruptFileError(path, f"not JSON ({err})") from err
    if track.get("format") != TRACK_FORMAT or track.get("version") != TRACK_VERSION:
        raise CorruptFileError(path, f"not a {TRACK_FORMAT} version {TRACK_VERSION} file")
    track["magnification"] = np.asarray(track["magnification"], dtype=np.float64)
    track["centre_xy"] = np.asarray(track["centre_xy"], dtype=np.float64)
    return track


def ground_truth_camera_motion(video_path: str | Path, *, crop_yx: tuple[int, int] | None = None,
                               fps: float = 30.0, height: int = 240, width: int = 320) -> np.ndarray:
    """Per-pair camera motion of a demo video as the Kinetics reader returns it.

    Parameters
    ----------
    video_path : str or Path
        A video file or frame folder written by :func:`make_demo_backgrounds`.
    crop_yx : (int, int), optional
        Top-left (y, x) of the window in resized pixels, as given to ``read_clip``; default the
        centred window (the reader's default without an rng).
    fps, height, width : float, int, int
        The reader's output rate and size.

    Returns
    -------
    ndarray, shape (T30 - 1, 2), float64
        Row ``t``: (x, y) in output pixels, the median over the window pixels showing the static
        scene in output frame ``t`` of how far that content moves to frame ``t + 1`` (optical-flow
        sign; see the module notes); ``T30`` is the length of the video resampled to ``fps``.
    """
    track = load_camera_track(video_path)
    W, H = int(track["width"]), int(track["height"])
    info = VideoInfo(str(video_path), float(track["fps"]), int(track["num_frames"]), W, H, int(track["num_frames"]))
    rh, rw, _ = cover_size(H, W, out_height=height, out_width=width)
    y0, x0 = choose_crop((rh, rw), crop_yx=crop_yx, height=height, width=width)
    scale = np.array([rw / W, rh / H])
    # Window pixel centres in video pixels (cv2.resize maps x -> (x + 0.5) * s - 0.5).
    xs = (x0 + np.arange(width) + 0.5) / scale[0] - 0.5
    ys = (y0 + np.arange(height) + 0.5) / scale[1] - 0.5
    p0 = np.array([(W - 1) / 2, (H - 1) / 2])
    idx = source_index(np.arange(num_frames_30fps(info, fps=fps)), info.fps, fps=fps)
    k, c = track["magnification"], track["centre_xy"]
    motion = np.zeros((len(idx) - 1, 2))
    for t, (a, b) in enumerate(zip(idx[:-1], idx[1:])):
        if a == b:
            continue  # repeated source frame: nothing moves
        # Video point p shows photo point c_a + (p - p0) / k_a, seen in frame b at
        # p0 + k_b (photo point - c_b): flow is linear in p, x depending on x only, y on y only.
        flow_x = ((k[b] / k[a] - 1) * (xs - p0[0]) + k[b] * (c[a, 0] - c[b, 0])) * scale[0]
        flow_y = ((k[b] / k[a] - 1) * (ys - p0[1]) + k[b] * (c[a, 1] - c[b, 1])) * scale[1]
        static = ~_object_mask(track["objects"], a, xs, ys)
        motion[t] = [np.median(np.broadcast_to(flow_x, static.shape)[static]),
                     np.median(np.broadcast_to(flow_y[:, None], static.shape)[static])]
    return motion


def _object_mask(objects: list[dict], frame: int, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """(len(ys), len(xs)) bool: which of the pixels at video coordinates (xs, ys) a moving object
    covers in source frame ``frame`` (its ellipse, where the rendered alpha is above 0)."""
    mask = np.zeros((len(ys), len(xs)), dtype=bool)
    for obj in objects:
        w, h = obj["size_wh"]
        cx, cy = obj["centre_xy"][frame]
        mask |= np.hypot(((xs - cx) / (w / 2))[None, :], ((ys - cy) / (h / 2))[:, None]) < 1.0
    return mask

def _make_video(folder: Path, name: str, spec: _Spec, num_frames: int, rng: np.random.Generator,
                seed: int) -> Path:
    n_src = _source_frames_for(num_frames, spec.fps)
    photo = _photo(spec.photo)
    if spec.low_texture:
        smooth = cv2.GaussianBlur(photo.astype(np.float32), (0, 0), _LOW_TEXTURE_SIGMA)
        photo = np.clip(np.rint(128 + _LOW_TEXTURE_CONTRAST * (smooth - 128)), 0, 255).astype(np.uint8)
    track = _whip_track if spec.whip else _camera_track
    k, centre = track(spec, photo.shape[:2], n_src, rng)
    objects = [_moving_object(spec, n_src, rng, o) for o in range(spec.objects)]
    velocity = np.gradient(centre, axis=0) if n_src > 1 else np.zeros_like(centre)
    frames = (_render_exposure(photo, k[j], centre[j], velocity[j], spec,
                               [(obj, obj["centre_xy"][j]) for obj in objects])
              for j in range(n_src))
    folder.mkdir(parents=True, exist_ok=True)
    if spec.container == "frames":
        path = folder / name
        _write_frame_folder(path, frames)
    else:
        path = folder / f"{name}.{spec.container}"
        _write_video(path, frames, spec)
        if spec.container in ("mkv", "webm"):
            _pin_matroska_uids(path, f"{seed}/{name}".encode())
    _write_track(path, spec, k, centre, objects)
    return path


def _source_frames_for(num_frames: int, fps: float) -> int:
    n = max(1, math.ceil(num_frames * fps / 30.0))
    while num_frames_30fps(VideoInfo("", fps, n, 1, 1, n)) < num_frames:
        n += 1
    return n


def _photo(name: str) -> np.ndarray:
    image = skimage.data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(skimage.data, name)()
    return np.ascontiguousarray(np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image[..., :3])


def _camera_track(spec: _Spec, photo_hw: tuple[int, int], n: int,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Magnification (n,) and photograph point at the video centre (n, 2), rounded as rendered."""
    hi, wi = photo_hw
    k_min = max(MIN_MAGNIFICATION, spec.width / (VIEW_FRACTION * wi), spec.height / (VIEW_FRACTION * hi))
    k_base = k_min / (1.0 - spec.zoom)
    t = np.arange(n) / spec.fps
    zoom = 1.0 + spec.zoom * np.sin(2 * np.pi * t / rng.uniform(1.5, 3.0) + rng.uniform(0, 2 * np.pi))
    k = k_base * zoom
    out_scale = cover_size(spec.height, spec.width)[2]
    slack = np.array([(wi - spec.width / k_min) / 2, (hi - spec.height / k_min) / 2]) - 3.0  # photo px
    speed = spec.speed * rng.uniform(0.6, 1.0) * min(spec.fps, 30.0) / 30.0  # output px per 1/30 s
    offsets = np.zeros((n, 2))
    for axis in range(2):
        periods, phases = rng.uniform(1.0, 4.0, 3), rng.uniform(0, 2 * np.pi, 3)
        weights = rng.uniform(0.3, 1.0, 3)
        path = sum(w * np.sin(2 * np.pi * t / p + f) for w, p, f in zip(weights, periods, phases))
        dense_t = np.linspace(0, t[-1] + 1.0 / spec.fps, 20 * n + 1)
        dense = sum(w * np.sin(2 * np.pi * dense_t / p + f) for w, p, f in zip(weights, periods, phases))
        velocity = np.abs(np.diff(dense)).max() / (dense_t[1] - dense_t[0]) / 30.0  # units per 1/30 s
        gain = speed / (velocity * k_base * out_scale)  # photo px per unit at the target speed
        gain = min(gain, slack[axis] / np.abs(path).max())
        offsets[:, axis] = path * gain
    return k, _on_grid_translation(spec, photo_hw, k, offsets)


def _on_grid_translation(spec: _Spec, photo_hw: tuple[int, int], k: np.ndarray,
                         offsets: np.ndarray) -> np.ndarray:
    """Per-frame translation (photograph px) of a track showing the photograph's centre plus
    ``offsets`` (N, 2) at the output centre under magnification ``k`` (N,); the warp's offset at
    output pixel (0, 0) is rounded to 1 / :data:`OPENCV_GRID` px first."""
    hi, wi = photo_hw
    p0 = np.array([(spec.width - 1) / 2, (spec.height - 1) / 2])
    translation = np.array([wi / 2, hi / 2]) + offsets - p0 / k[:, None]
    translation = np.round(translation * OPENCV_GRID) / OPENCV_GRID
    return translation + p0 / k[:, None]


def _whip_track(spec: _Spec, photo_hw: tuple[int, int], n: int,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Fixed magnification and whip pans to and fro: speed ramps 0 -> ``spec.speed`` -> 0, then back.

    Velocity per frame (output px) along one direction is ``spec.speed * clip(2 sin(2 pi t /
    WHIP_PERIOD), -1, 1)``: two thirds of the frames hold the peak speed, the others accelerate,
    slow down or reverse, and the travel stays within about one photograph (OpenCV reflects the
    border only that far). Direction within 25 degrees of horizontal, sign random. Rounded to
    1/32 photograph px (:func:`_on_grid_translation`)."""
    hi, wi = photo_hw
    k = np.full(n, max(MIN_MAGNIFICATION, spec.width / (VIEW_FRACTION * wi),
                       spec.height / (VIEW_FRACTION * hi)))
    angle = rng.uniform(-25, 25) * np.pi / 180 + (np.pi if rng.random() < 0.5 else 0.0)
    steps = spec.speed * np.clip(2 * np.sin(2 * np.pi * np.arange(1, n) / WHIP_PERIOD), -1.0, 1.0)
    travel = np.concatenate([[0.0], np.cumsum(steps)]) / k  # photo px
    offsets = np.outer(travel - (travel.max() + travel.min()) / 2, [np.cos(angle), np.sin(angle)])
    return k, _on_grid_translation(spec, photo_hw, k, offsets)


def _moving_object(spec: _Spec, n: int, rng: np.random.Generator, number: int) -> dict:
    """An elliptical textured patch moving on its own, bouncing inside the frame (video pixels).

    Sized against the output window in video pixels (``_window_wh``): its ellipse covers 6-16% of
    any window, so the two objects of a video never cover more than a third of one."""
    window_w, window_h = _window_wh(spec)
    area = rng.uniform(0.08, 0.2) * window_w * window_h  # bounding box; the ellipse is pi/4 of it
    aspect = rng.uniform(0.6, 1.6)
    w = int(min(np.sqrt(area * aspect), 0.8 * window_w))
    h = int(min(area / w, 0.8 * window_h))
    photo_name = _PHOTOS[(_PHOTOS.index(spec.photo) + 1 + number) % len(_PHOTOS)]
    photo = _photo(photo_name)
    y0 = int(rng.integers(0, photo.shape[0] // 2))
    x0 = int(rng.integers(0, photo.shape[1] // 2))
    texture = cv2.resize(photo[y0:, x0:], (w, h), interpolation=cv2.INTER_AREA)
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.hypot((xx - (w - 1) / 2) / (w / 2), (yy - (h - 1) / 2) / (h / 2))
    alpha = np.clip((1.0 - r) * min(w, h) / 2, 0.0, 1.0).astype(np.float32)  # 1 px soft edge
    out_scale = cover_size(spec.height, spec.width)[2]
    speed = rng.uniform(2.0, 8.0) * 30.0 / out_scale  # video px per second
    direction = rng.uniform(0, 2 * np.pi)
    start = np.array([rng.uniform(w / 2, spec.width - w / 2), rng.uniform(h / 2, spec.height - h / 2)])
    travel = start + np.outer(np.arange(n) / spec.fps, speed * np.array([np.cos(direction), np.sin(direction)]))
    lo = np.array([w / 2, h / 2])
    hi = np.array([spec.width - w / 2, spec.height - h / 2])
    span = np.maximum(hi - lo, 1e-6)
    phase = np.mod(travel - lo, 2 * span)
    centre = lo + np.where(phase > span, 2 * span - phase, phase)  # reflect at the frame edges
    return {"photo": photo_name, "size_wh": [w, h], "centre_xy": centre,
            "texture": texture.astype(np.float32), "alpha": alpha}


def _window_wh(spec: _Spec) -> tuple[float, float]:
    """Width and height, in video pixels, of the reader's 240x320 output window."""
    out_scale = cover_size(spec.height, spec.width)[2]
    return 320 / out_scale, 240 / out_scale


def _render_exposure(photo: np.ndarray, k: float, centre: np.ndarray, velocity: np.ndarray,
                     spec: _Spec, objects) -> np.ndarray:
    """One frame; with ``spec.blur`` the mean of sub-frames at ``centre + s * velocity`` (photo px),
    ``s`` spread evenly over ``[-blur / 2, blur / 2]`` frame intervals, so the blur is centred on
    the track."""
    if not spec.blur:
        return _render(photo, k, centre, spec, objects)
    shifts = np.linspace(-spec.blur / 2, spec.blur / 2, _BLUR_SUBFRAMES)
    total = sum(_render(photo, k, centre + s * velocity, spec, objects).astype(np.float32)
                for s in shifts)
    return np.clip(np.rint(total / _BLUR_SUBFRAMES), 0, 255).astype(np.uint8)


def _render(photo: np.ndarray, k: float, centre: np.ndarray, spec: _Spec, objects) -> np.ndarray:
    p0 = np.array([(spec.width - 1) / 2, (spec.height - 1) / 2])
    translation = centre - p0 / k
    M = np.array([[1.0 / k, 0.0, translation[0]], [0.0, 1.0 / k, translation[1]]])
    frame = cv2.warpAffine(photo, M, (spec.width, spec.height), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                           borderMode=cv2.BORDER_REFLECT_101)
    if not objects:
        return frame
    out = frame.astype(np.float32)
    for obj, (cx, cy) in objects:
        w, h = obj["size_wh"]
        shift = np.array([[1.0, 0.0, cx - (w - 1) / 2], [0.0, 1.0, cy - (h - 1) / 2]])
        size = (spec.width, spec.height)
        rgb = cv2.warpAffine(obj["texture"], shift, size, flags=cv2.INTER_LINEAR)
        alpha = cv2.warpAffine(obj["alpha"], shift, size, flags=cv2.INTER_LINEAR)[..., None]
        out = out * (1.0 - alpha) + rgb * alpha
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _write_video(path: Path, frames, spec: _Spec) -> None:
    write_video(path, frames, fps=spec.fps, fourcc=_FOURCC[spec.container])


def _write_frame_folder(path: Path, frames) -> None:
    path.mkdir(parents=True, exist_ok=True)
    for j, frame in enumerate(frames):
        cv2.imwrite(str(path / f"img_{j + 1:05d}.jpg"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])


def _write_track(path: Path, spec: _Spec, k: np.ndarray, centre: np.ndarray, objects: list[dict]) -> None:
    track = {
        "format": TRACK_FORMAT,
        "version": TRACK_VERSION,
        "description": (
            "Per SOURCE frame j: video pixel p=(x,y) shows photograph point "
            "centre_xy[j] + (p - p0) / magnification[j], p0 = ((width-1)/2, (height-1)/2); "
            "pixel centres at integers. objects[i].centre_xy[j]: centre (x, y) of moving object i in "
            "video pixels, size_wh its bounding box (elliptical mask)."),
        "video": path.name,
        "photo": spec.photo,
        "fps": spec.fps,
        "num_frames": int(len(k)),
        "width": spec.width,
        "height": spec.height,
        "magnification": k.tolist(),
        "centre_xy": centre.tolist(),
        "objects": [{"photo": o["photo"], "size_wh": o["size_wh"], "centre_xy": o["centre_xy"].tolist()}
                    for o in objects],
    }
    camera_track_path(path).write_text(json.dumps(track))


# --- Matroska/WebM: FFmpeg's muxer writes random UIDs; pin them so files are reproducible. ---

_EBML_MASTERS = {0x18538067, 0x1549A966, 0x1654AE6B, 0xAE, 0x1254C367, 0x7373, 0x63C0}
_SEGMENT_UID, _TRACK_UID, _TAG_TRACK_UID, _CRC32 = 0x73A4, 0x73C5, 0x63C5, 0xBF


def _pin_matroska_uids(path: Path, token: bytes) -> None:
    """Replace the random SegmentUID/TrackUIDs by values derived from ``token``, fixing CRC-32s."""
    data = bytearray(path.read_bytes())
    track_uids: dict[int, int] = {}
    _ebml_walk(data, 0, len(data), token, track_uids)
    path.write_bytes(bytes(data))


def _vint(data: bytearray, pos: int, keep_marker: bool) -> tuple[int, int]:
    first = data[pos]
    length = 8 - first.bit_length() + 1
    value = first if keep_marker else first & ((1 << (8 - length)) - 1)
    for byte in data[pos + 1:pos + length]:
        value = (value << 8) | byte
    return value, pos + length


def _ebml_walk(data: bytearray, start: int, end: int, token: bytes, track_uids: dict[int, int]) -> None:
    pos, crc_at = start, None
    while pos < end:
        element_id, pos_size = _vint(data, pos, keep_marker=True)
        size, body = _vint(data, pos_size, keep_marker=False)
        unknown = size == (1 << (7 * (body - pos_size))) - 1
        stop = end if unknown else min(body + size, end)
        if element_id == _CRC32 and pos == start and size == 4:
            crc_at = body
        elif element_id in _EBML_MASTERS:
            _ebml_walk(data, body, stop, token, track_uids)
        elif element_id == _SEGMENT_UID:
            data[body:stop] = hashlib.sha256(token).digest()[:stop - body]
        elif element_id in (_TRACK_UID, _TAG_TRACK_UID):
            old = int.from_bytes(data[body:stop], "big")
            new = track_uids.setdefault(old, len(track_uids) + 1)
            data[body:stop] = new.to_bytes(stop - body, "big")
        elif unknown:
            break  # an unknown-size element we do not descend into: nothing more to pin
        pos = stop
    if crc_at is not None:
        data[crc_at:crc_at + 4] = zlib.crc32(data[crc_at + 4:end]).to_bytes(4, "little")
