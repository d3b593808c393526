"""The paper's Figure 2 for any stored example, rendered with numpy and OpenCV.

Panels of one frame t (top row, then bottom row)::

    background frame        | occluder superpixel over the background | crop flow t -> t+1
    SURREAL person, tracked | composite with crop box t               | 224x224 crop + keypoints

then a legend (keypoint colours) and the example's provenance. Keypoints are coloured by their
visibility bitmask (:mod:`synthgen.steps.visibility`): green when visible, else the colour of the
first reason set in the order total occlusion, outside frame, occluder, behind the body. Crop flow
uses the usual colour wheel: hue is the direction, saturation the magnitude (white = no motion,
full colour at the example's 99th-percentile magnitude, stated in the panel title).

Where the panels come from:

- the crop, its keypoints and the flow are the stored arrays;
- the full-frame panels are recomputed: the example's inputs are read again
  (:func:`synthgen.build.synthetic.example_inputs`), the person is tracked
  (:func:`synthgen.steps.tracking.track_person`), SLIC is run with the example's own random draws
  (:func:`synthgen.example.draw_random`) and the stored ``occluder_segment`` is taken as the
  occluder (shown even when it was rejected, with the reason), then composited as in
  :func:`synthgen.example.make_example`. The recomputed composite and occluder, cropped with the
  recomputed boxes, are compared with the stored crops; any difference (inputs or code changed
  since the build) is stated on the figure;
- when the inputs cannot be read (moved dataset, missing camera-motion cache) the figure has the
  stored crop panels only (crop + keypoints, stored occluder mask over the crop, flow) and says
  why.
- a store that omits ``rgb``, ``flow`` or ``occluder_mask`` (``store.omit``) gets the recomputed
  crop in place of the stored one, and a panel saying what is not stored where nothing can
  replace it.

Outputs: ``.png`` (one frame) or ``.mp4`` (every frame, ``mp4v``). GIF is not supported (OpenCV
cannot write it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from synthgen.core.joints import SMPL_PARENTS
from synthgen.sources.video import write_video
from synthgen.steps.visibility import BEHIND_DEPTH, OCCLUDER, OUTSIDE_FRAME, TOTAL_OCCLUSION

#: Size of one full-frame panel (the 240x320 SURREAL frame) and of the panel titles, pixels.
CELL_HEIGHT, CELL_WIDTH, TITLE_HEIGHT = 240, 320, 22

#: Keypoint colours (RGB): visible, then each hidden reason in priority order.
VISIBLE_COLOUR = (40, 200, 40)
REASON_COLOURS = ((int(TOTAL_OCCLUSION), "total occlusion", (230, 30, 30)),
                  (int(OUTSIDE_FRAME), "outside frame", (40, 120, 255)),
                  (int(OCCLUDER), "occluder", (255, 0, 255)),
                  (int(BEHIND_DEPTH), "behind the body", (255, 165, 0)))

#: Supported output suffixes.
FORMATS = (".png", ".mp4")

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_BACKDROP = (235, 235, 235)
_PAD = 6


@dataclass(frozen=True)
class FrameLayers:
    """The full-frame pictures of an example, recomputed from its inputs (frame pixels).

    Attributes
    ----------
    background : ndarray, shape (T, H, W, 3), uint8
        Background frames (the reference frame repeated for a static-background pipeline).
    person_rgb : ndarray, shape (T, H, W, 3), uint8
        The tracked SURREAL person.
    person_mask : ndarray, shape (T, H, W), bool
        Tracked ``segm > 0`` (before the occluder).
    superpixel : ndarray, shape (T, H, W), bool or None
        The stored occluder candidate superpixel (None: occluder disabled).
    composite : ndarray, shape (T, H, W, 3), uint8
        Background plus the tracked, occluded person.
    crops : ndarray, shape (T, S, S, 3), uint8
        The composite in the recomputed crop boxes (what the store's ``rgb`` holds).
    consistent : bool
        Whether the crops and the cropped occluder equal the stored ``rgb`` and
        ``occluder_mask`` exactly (those of the two the store holds).
    """

    background: np.ndarray
    person_rgb: np.ndarray
    person_mask: np.ndarray
    superpixel: np.ndarray | None
    composite: np.ndarray
    crops: np.ndarray
    consistent: bool


@dataclass(frozen=True)
class ExampleView:
    """What the figure of one example needs.

    ``row`` holds the stored arrays of the example (``flow`` decoded to float32 crop pixels);
    arrays the store omits (``rgb``, ``flow``, ``occluder_mask``: ``synthgen.config.OMITTABLE``)
    are absent. ``layers`` is None when the inputs could not be read, ``note`` then says why (or
    warns that the recomputed panels differ from the stored example).
    """

    index: int
    row: dict
    layers: FrameLayers | None
    occluder_reason: str
    background_path: str
    surreal_path: str
    note: str
    flow_scale: float

    @property
    def num_frames(self) -> int:
        return int(self.row["visibility"].shape[0])

    def crop(self, t: int) -> np.ndarray | None:
        """The crop of frame t: the stored ``rgb``, else the recomputed one (None without
        either)."""
        if "rgb" in self.row:
            return self.row["rgb"][t]
        return None if self.layers is None else self.layers.crops[t]


def frame_layers(background, camera_offsets: np.ndarray, person, row: dict, plan,
                 cfg) -> FrameLayers:
    """Recompute the full-frame pictures of a stored example (see the module docstring).

    Parameters
    ----------
    background : BackgroundClip
    camera_offsets : ndarray, shape (T, 2)
        Integrated camera motion, frame pixels (x, y)
        (:func:`synthgen.build.synthetic.example_inputs`).
    person : SurrealClip
    row : dict
        The stored arrays of the example (``occluder_segment``, and ``rgb`` and
        ``occluder_mask`` unless the store omits them).
    plan : synthgen.build.synthetic.ExamplePlan
        Its plan (its seed gives the SLIC draws).
    cfg : Config
        The store's config.
    """
    from synthgen.build.synthetic import example_rng
    from synthgen.example import example_layers
    from synthgen.steps.crops import boxes_from_keypoints, crop_frames, crop_masks

    layers = example_layers(background, camera_offsets, person, example_rng(plan), cfg)
    tracked, composited, occluder = layers.tracked, layers.composited, layers.occluder.mask
    segment = int(row["occluder_segment"])
    superpixel = layers.labels == segment if layers.labels is not None and segment >= 0 else None
    boxes = boxes_from_keypoints(tracked.joints2d, size=cfg.crops.size,
                                 person_height=cfg.crops.person_height)
    crops = crop_frames(composited, boxes, size=cfg.crops.size)
    recomputed = {"rgb": lambda: crops,
                  "occluder_mask": lambda: crop_masks(occluder, boxes, size=cfg.crops.size)}
    consistent = all(np.array_equal(recompute(), row[name])
                     for name, recompute in recomputed.items() if name in row)
    return FrameLayers(background=layers.frames, person_rgb=tracked.rgb,
                       person_mask=tracked.segm > 0, superpixel=superpixel,
                       composite=composited, crops=crops, consistent=consistent)


def load_view(url: str, index: int, *, cache_dir=None) -> ExampleView:
    """Read example ``index`` of a store and recompute its full-frame panels.

    Parameters
    ----------
    url : str
        The store.
    index : int
        An example of a finished shard.
    cache_dir : path, optional
        The camera-motion cache of the build (default: the build's default).

    Raises
    ------
    IndexError
        ``index`` is outside the store or its shard is not finished.
    ValueError
        Not a synthetic training store (a 3DPW or video store).
    """
    from synthgen import store
    from synthgen.build.synthetic import default_cache_dir, example_inputs, stored_plan, stored_sources
    from synthgen.config import from_dict
    from synthgen.core.errors import SourceError
    from synthgen.tools.inspect import stored_row

    group = store.open_group(url)
    kind = group.attrs.get("kind", "synthetic")
    if kind != "synthetic":
        raise ValueError(f"{url} is a '{kind}' store: show draws the examples of a synthetic "
                         f"training store (synthgen build)")
    if not 0 <= index < group.attrs["num_examples"]:
        raise IndexError(f"example {index} is outside the store ({group.attrs['num_examples']} "
                         f"examples)")
    if index not in set(store.finished_examples(group).tolist()):
        raise IndexError(f"example {index} is in a shard that is not finished yet")
    row = stored_row(group, index)
    scale = 1.0
    if "flow" in row:
        row["flow"] = row["flow"].astype(np.float32) * np.float32(group["flow"].attrs["quantum_px"])
        magnitude = np.linalg.norm(row["flow"], axis=-1)
        scale = max(float(np.percentile(magnitude, 99)) if magnitude.size else 1.0, 1.0)
    cfg = from_dict(group.attrs["config"])
    plan = stored_plan(group, index)
    sources = stored_sources(group.attrs)
    reason = group.attrs["occluder_reasons"][int(row["occluder_reason"])]
    note, layers = "", None
    try:
        background, offsets, person = example_inputs(
            plan, sources, cfg, cache_dir=str(cache_dir or default_cache_dir()))
    except (SourceError, OSError) as exc:
        note = f"inputs unavailable ({exc}): stored crop panels only"
    else:
        layers = frame_layers(background, offsets, person, row, plan, cfg)
        if not layers.consistent:
            note = ("recomputed full-frame panels differ from the stored crops (inputs or code "
                    "changed since the build)")
    return ExampleView(index=index, row=row, layers=layers, occluder_reason=reason,
                       background_path=sources.videos[plan.video].path,
                       surreal_path=sources.people[plan.person].path, note=note,
                       flow_scale=scale)


def flow_to_colour(flow: np.ndarray, *, scale: float) -> np.ndarray:
    """Colour-wheel picture of a flow field: hue = direction, saturation = magnitude.

    Parameters
    ----------
    flow : ndarray, shape (H, W, 2), float
        Pixels, x then y (y down).
    scale : float
        Magnitude (pixels) shown at full saturation; larger ones saturate.

    Returns
    -------
    ndarray, shape (H, W, 3), uint8
        RGB; white where the flow is zero.
    """
    flow = np.asarray(flow, dtype=np.float32)
    magnitude, angle = cv2.cartToPolar(np.ascontiguousarray(flow[..., 0]),
                                       np.ascontiguousarray(flow[..., 1]), angleInDegrees=True)
    hsv = np.empty(flow.shape[:2] + (3,), dtype=np.uint8)
    hsv[..., 0] = np.round(angle / 2.0).astype(np.int64) % 180
    hsv[..., 1] = np.clip(magnitude / scale * 255.0, 0, 255).astype(np.uint8)
    hsv[..., 2] = 255
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def colour_wheel(size: int) -> np.ndarray:
    """The key of :func:`flow_to_colour`: a disc of all directions and magnitudes, RGB uint8."""
    coords = (np.arange(size, dtype=np.float32) - (size - 1) / 2.0) / (size / 2.0)
    flow = np.stack(np.meshgrid(coords, coords), axis=-1)
    wheel = flow_to_colour(flow, scale=1.0)
    wheel[np.linalg.norm(flow, axis=-1) > 1.0] = _BACKDROP
    return wheel


def keypoint_colour(bits: int) -> tuple[int, int, int]:
    """RGB colour of a keypoint with visibility bitmask ``bits`` (module docstring)."""
    for bit, _, colour in REASON_COLOURS:
        if bits & bit:
            return colour
    return VISIBLE_COLOUR


def draw_keypoints(image: np.ndarray, joints: np.ndarray, visibility: np.ndarray) -> np.ndarray:
    """Draw the 24 SMPL joints (skeleton in grey, dots coloured by visibility) on a copy.

    Parameters
    ----------
    image : ndarray, shape (H, W, 3), uint8
    joints : ndarray, shape (24, 2)
        Pixels (x, y) of ``image``.
    visibility : ndarray, shape (24,), uint8
        Hidden-reason bitmask.
    """
    out = np.ascontiguousarray(image).copy()
    shift = 4  # sub-pixel drawing: coordinates in 1/16 pixel
    points = np.round(np.asarray(joints, dtype=np.float64) * (1 << shift)).astype(np.int64)
    for child, parent in enumerate(SMPL_PARENTS):
        if parent >= 0:
            cv2.line(out, tuple(map(int, points[child])), tuple(map(int, points[parent])),
                     (200, 200, 200), 1, cv2.LINE_AA, shift)
    for point, bits in zip(points, visibility):
        cv2.circle(out, tuple(map(int, point)), 4 << shift, (0, 0, 0), -1, cv2.LINE_AA, shift)
        cv2.circle(out, tuple(map(int, point)), 3 << shift, keypoint_colour(int(bits)), -1,
                   cv2.LINE_AA, shift)
    return out


def _fit_text(text: str, width: int, scale: float) -> str:
    """``text`` shortened from the left with '...' to fit ``width`` pixels."""
    if cv2.getTextSize(text, _FONT, scale, 1)[0][0] <= width:
        return text
    while text and cv2.getTextSize("..." + text, _FONT, scale, 1)[0][0] > width:
        text = text[1:]
    return "..." + text


def _put(image: np.ndarray, text: str, origin: tuple[int, int], *, colour=(0, 0, 0),
         scale: float = 0.42) -> None:
    width = image.shape[1] - origin[0] - 2
    cv2.putText(image, _fit_text(text, width, scale), origin, _FONT, scale, colour, 1, cv2.LINE_AA)


def _panel(picture: np.ndarray, title: str) -> np.ndarray:
    """A titled cell: ``picture`` centred on the backdrop under a title bar."""
    cell = np.full((TITLE_HEIGHT + CELL_HEIGHT, CELL_WIDTH, 3), _BACKDROP, dtype=np.uint8)
    _put(cell, title, (4, TITLE_HEIGHT - 7))
    h, w = picture.shape[:2]
    y, x = TITLE_HEIGHT + (CELL_HEIGHT - h) // 2, (CELL_WIDTH - w) // 2
    cell[y:y + h, x:x + w] = picture
    return cell


def _message(text: str, size=(CELL_HEIGHT, CELL_WIDTH)) -> np.ndarray:
    picture = np.full(size + (3,), 200, dtype=np.uint8)
    _put(picture, text, (8, size[0] // 2))
    return picture


def _crop_panel(view: ExampleView, t: int) -> np.ndarray:
    crop = view.crop(t)
    if crop is None:
        return _panel(_message("the store holds no rgb"), "crop + keypoints")
    crop = draw_keypoints(crop, view.row["joints2d_crop"][t], view.row["visibility"][t])
    if view.row["total_occlusion"][t]:
        cv2.rectangle(crop, (1, 1), (crop.shape[1] - 2, crop.shape[0] - 2),
                      REASON_COLOURS[0][2], 3)
        return _panel(crop, "crop + keypoints: TOTALLY OCCLUDED frame")
    recomputed = "" if "rgb" in view.row else " (recomputed: no rgb stored)"
    return _panel(crop, f"{crop.shape[0]}x{crop.shape[1]} crop + keypoints{recomputed}")


def _flow_panel(view: ExampleView, t: int) -> np.ndarray:
    flow = view.row.get("flow")
    if flow is None:
        return _panel(_message("the store holds no crop flow"), "crop flow")
    if t >= len(flow):
        return _panel(_message("no pair: last frame"), "crop flow")
    picture = flow_to_colour(flow[t], scale=view.flow_scale)
    wheel = colour_wheel(40)
    picture[-44:-4, -44:-4] = wheel
    return _panel(picture, f"crop flow {t}->{t + 1} (full colour at {view.flow_scale:.1f} px)")


def _occluder_title(view: ExampleView) -> str:
    if view.occluder_reason == "occluded":
        removed = float(view.row["occluded_fraction"])
        return f"occluder superpixel ({removed:.0%} of person removed)"
    return f"occluder: {view.occluder_reason.replace('_', ' ')}"


def _superpixel_picture(image: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """``image`` dimmed outside ``mask``, the mask outlined in magenta."""
    if mask is None:
        return image
    out = np.where(mask[..., None], image, (image * 0.35).astype(np.uint8))
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(out, contours, -1, (255, 0, 255), 1)
    return out


def _full_frame_panels(view: ExampleView, t: int) -> list[np.ndarray]:
    layers = view.layers
    person = np.where(layers.person_mask[t][..., None], layers.person_rgb[t], np.uint8(255))
    superpixel = None if layers.superpixel is None else layers.superpixel[t]
    composite = layers.composite[t].copy()
    x0, y0, side = (float(v) for v in view.row["boxes"][t])
    shift = 4
    corners = [int(round(v * (1 << shift))) for v in (x0, y0, x0 + side, y0 + side)]
    cv2.rectangle(composite, tuple(corners[:2]), tuple(corners[2:]), (255, 255, 0), 1,
                  cv2.LINE_AA, shift)
    return [_panel(layers.background[t], "background (Kinetics)"),
            _panel(_superpixel_picture(layers.background[t], superpixel), _occluder_title(view)),
            _flow_panel(view, t),
            _panel(person, "SURREAL person, tracked"),
            _panel(composite, f"composite + crop box {t}"),
            _crop_panel(view, t)]


def _crop_only_panels(view: ExampleView, t: int) -> list[np.ndarray]:
    if "rgb" in view.row and "occluder_mask" in view.row:
        mask = view.row["occluder_mask"][t]
        occluder = _superpixel_picture(view.row["rgb"][t], mask if mask.any() else None)
    else:
        occluder = _message("the store holds no rgb or occluder mask")
    return [_crop_panel(view, t), _panel(occluder, _occluder_title(view) + " (crop)"),
            _flow_panel(view, t)]


def _footer(view: ExampleView, t: int, width: int) -> np.ndarray:
    lines = 4 + bool(view.note)
    footer = np.full((lines * 18 + 30, width, 3), _BACKDROP, dtype=np.uint8)
    x = _PAD
    for _, label, colour in ((0, "visible", VISIBLE_COLOUR), *REASON_COLOURS):
        cv2.circle(footer, (x + 6, 14), 5, colour, -1, cv2.LINE_AA)
        _put(footer, label, (x + 16, 19))
        x += 30 + cv2.getTextSize(label, _FONT, 0.42, 1)[0][0]
    total = np.flatnonzero(view.row["total_occlusion"])
    total_text = f"frames {total[0]}..{total[-1]}" if total.size else "none"
    rows = [f"example {view.index}, frame {t} (frames 0..{view.num_frames - 1}), seed "
            f"{int(view.row['seed'])}; occluder: {view.occluder_reason}; total occlusion: "
            f"{total_text}",
            f"background: {view.background_path} (first frame {int(view.row['video_start'])}, "
            f"window y,x {tuple(int(v) for v in view.row['video_crop_yx'])})",
            f"SURREAL: {view.surreal_path} (first frame {int(view.row['surreal_start'])})"]
    y = 40
    for text in rows:
        _put(footer, text, (_PAD, y))
        y += 18
    if view.note:
        _put(footer, "NOTE: " + view.note, (_PAD, y), colour=(200, 0, 0))
    return footer


def render(view: ExampleView, t: int) -> np.ndarray:
    """The figure of frame ``t``: a grid of titled panels over a legend (module docstring).

    Returns
    -------
    ndarray, shape (H, W, 3), uint8
        RGB. Six panels in two rows of three with the inputs; three in one row (stored crop
        panels) without. H and W are even (video encoders need it).

    Raises
    ------
    IndexError
        ``t`` is not a frame of the example.
    """
    if not 0 <= t < view.num_frames:
        raise IndexError(f"frame {t} is outside the example's 0..{view.num_frames - 1}")
    panels = _full_frame_panels(view, t) if view.layers is not None else _crop_only_panels(view, t)
    rows = [np.concatenate(panels[i:i + 3], axis=1) for i in range(0, len(panels), 3)]
    grid = np.concatenate(rows, axis=0)
    figure = np.concatenate([grid, _footer(view, t, grid.shape[1])], axis=0)
    return figure[:figure.shape[0] // 2 * 2, :figure.shape[1] // 2 * 2]


def write_figure(view: ExampleView, out, *, frame: int | None = None, fps: float = 10.0) -> Path:
    """Write the figure of one frame (``.png``) or of every frame in turn (``.mp4``).

    Parameters
    ----------
    view : ExampleView
    out : path
        ``.png`` or ``.mp4``; parent folders are created.
    frame : int, optional
        The frame of a PNG (default: the centre frame T // 2); ignored for MP4.
    fps : float
        MP4 frame rate.

    Raises
    ------
    ValueError
        An unsupported suffix (say which are supported).
    OSError
        The file could not be written.
    """
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"{out}: unsupported figure format {suffix or '(none)'!r}; use "
                         f"{' or '.join(FORMATS)} (GIF is not supported)")
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".png":
        t = view.num_frames // 2 if frame is None else frame
        if not cv2.imwrite(str(out), cv2.cvtColor(render(view, t), cv2.COLOR_RGB2BGR)):
            raise OSError(f"{out}: could not write the PNG")
        return out
    return write_video(out, (render(view, t) for t in range(view.num_frames)), fps=fps)
