"""``synthgen show``: Figure 2 panels recomputed consistently with the stored example, the stored
crop panels alone when the inputs are gone, PNG and MP4 output, colours, exit codes."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest
import zarr
from click.testing import CliRunner

from synthgen.tools import show
from synthgen.cli import main
from tests.tools.tiny_store import make_tiny_store

CELL = (show.TITLE_HEIGHT + show.CELL_HEIGHT, show.CELL_WIDTH)


@pytest.fixture(scope="module")
def tiny_store(small_demo, tmp_path_factory):
    return make_tiny_store(small_demo, tmp_path_factory)


@pytest.fixture(scope="module")
def view(tiny_store):
    return show.load_view(tiny_store.url, 1, cache_dir=tiny_store.cache)


def _panels(figure: np.ndarray, rows: int) -> list[np.ndarray]:
    h, w = CELL
    return [figure[r * h + show.TITLE_HEIGHT:(r + 1) * h, c * w:(c + 1) * w]
            for r in range(rows) for c in range(3)]


def test_recomputed_full_frame_panels_match_the_stored_crops(view):
    # The recomputed composite and occluder, cropped, equal the stored rgb and occluder_mask.
    assert view.layers is not None and view.layers.consistent and view.note == ""
    assert view.layers.background.shape == (8, 240, 320, 3)
    assert view.layers.person_mask.any()
    if view.layers.superpixel is not None:
        assert view.layers.superpixel.any()


def test_png_has_six_non_empty_panels_over_a_legend(view, tmp_path):
    path = show.write_figure(view, tmp_path / "fig.png", frame=2)
    image = cv2.imread(str(path))
    assert image.shape[1] == 3 * show.CELL_WIDTH and image.shape[0] > 2 * CELL[0]
    assert np.array_equal(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), show.render(view, 2))
    for panel in _panels(image, 2):
        assert panel.std() > 5  # a picture, not a blank cell
    # The crop panel shows the stored crop (keypoints drawn on top of it).
    crop_panel = _panels(cv2.cvtColor(image, cv2.COLOR_BGR2RGB), 2)[5]
    y, x = (show.CELL_HEIGHT - 224) // 2, (show.CELL_WIDTH - 224) // 2
    same = np.all(crop_panel[y:y + 224, x:x + 224] == view.row["rgb"][2], axis=-1)
    assert 0.8 < same.mean() < 1.0


def test_mp4_has_one_figure_per_frame(view, tmp_path):
    path = show.write_figure(view, tmp_path / "fig.mp4", fps=5)
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    assert len(frames) == view.num_frames == 8
    assert frames[0].shape == show.render(view, 0).shape


def test_missing_inputs_fall_back_to_the_stored_crop_panels(tiny_store, tmp_path):
    fallback = show.load_view(tiny_store.url, 1, cache_dir=tmp_path / "elsewhere")
    assert fallback.layers is None and "inputs unavailable" in fallback.note
    figure = show.render(fallback, 0)
    assert figure.shape[1] == 3 * show.CELL_WIDTH and CELL[0] < figure.shape[0] < 2 * CELL[0]
    for panel in _panels(figure, 1):
        assert panel.std() > 5


def _without(tiny_store, tmp_path, omitted) -> str:
    """A copy of the tiny store as if built with ``store.omit = omitted``."""
    copy = tmp_path / "omitted.zarr"
    shutil.copytree(tiny_store.url, copy)
    for name in omitted:
        shutil.rmtree(copy / name)
    group = zarr.open_group(str(copy), mode="r+")
    group.attrs["omitted"] = list(omitted)
    return str(copy)


def test_a_store_without_rgb_and_flow_shows_the_recomputed_crop(tiny_store, view, tmp_path):
    url = _without(tiny_store, tmp_path, ("rgb", "flow"))
    bare = show.load_view(url, 1, cache_dir=tiny_store.cache)
    assert "rgb" not in bare.row and "flow" not in bare.row
    assert bare.num_frames == 8 and bare.layers.consistent and bare.note == ""
    # The crop panel shows the recomputed crop: the stored rgb of the full store.
    assert np.array_equal(bare.crop(2), view.row["rgb"][2])
    panels, full = _panels(show.render(bare, 2), 2), _panels(show.render(view, 2), 2)
    assert np.array_equal(panels[5], full[5])  # same crop, same keypoints (titles aside)
    assert not np.array_equal(panels[2], full[2]) and panels[2].std() > 5  # "no crop flow"
    # Without the inputs either, the crop-only figure still renders, saying what is missing.
    fallback = show.load_view(url, 1, cache_dir=tmp_path / "elsewhere")
    assert fallback.crop(0) is None
    assert show.render(fallback, 0).shape[1] == 3 * show.CELL_WIDTH


def test_keypoint_and_flow_colours():
    assert show.keypoint_colour(0) == show.VISIBLE_COLOUR
    occluder, behind, total = (dict((b, c) for b, _, c in show.REASON_COLOURS)[k]
                               for k in (2, 8, 4))
    assert show.keypoint_colour(2 | 8) == occluder and show.keypoint_colour(8) == behind
    assert show.keypoint_colour(4 | 1 | 2) == total
    flow = np.zeros((2, 3, 2), np.float32)
    flow[0, 0] = (5.0, 0.0)  # right: red, saturated
    flow[0, 1] = (-1.0, 0.0)  # left, below the scale: pale cyan
    colours = show.flow_to_colour(flow, scale=2.0)
    assert colours[1, 2].tolist() == [255, 255, 255]  # no motion is white
    assert colours[0, 0].tolist() == [255, 0, 0]
    r, g, b = colours[0, 1].astype(int)
    assert g == b == 255 and 100 < r < 160


def test_render_rejects_a_frame_outside_the_example(view):
    with pytest.raises(IndexError, match="outside"):
        show.render(view, 8)
    with pytest.raises(ValueError, match="GIF is not supported"):
        show.write_figure(view, "figure.gif")


def test_cli_writes_a_png_and_rejects_bad_arguments(tiny_store, tmp_path):
    runner = CliRunner()
    assert "--example" in runner.invoke(main, ["show", "--help"]).output
    out = tmp_path / "cli.png"
    result = runner.invoke(main, ["show", tiny_store.url, "--example", "0", "--out", str(out),
                                  "--frame", "7", "--cache", str(tmp_path / "none")])
    assert result.exit_code == 0 and out.exists()
    assert "inputs unavailable" in result.output
    gif = runner.invoke(main, ["show", tiny_store.url, "--example", "0", "--out", "x.gif"])
    assert gif.exit_code == 2
    beyond = runner.invoke(main, ["show", tiny_store.url, "--example", "4", "--out",
                                  str(tmp_path / "x.png")])
    assert beyond.exit_code == 1 and "outside the store" in beyond.output
    frame = runner.invoke(main, ["show", tiny_store.url, "--example", "0", "--out",
                                 str(tmp_path / "y.png"), "--frame", "8", "--cache",
                                 str(tmp_path / "none")])
    assert frame.exit_code == 1 and "frame 8" in frame.output
