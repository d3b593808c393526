"""``synthgen show``: the paper's Figure 2 for one example of a store, as a PNG or an MP4."""

from __future__ import annotations

import sys

import click


@click.command()
@click.argument("store_url", metavar="STORE")
@click.option("--example", "index", required=True, type=click.IntRange(min=0),
              help="Index of the example in the store.")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="Output file: .png (one frame) or .mp4 (every frame). GIF is not supported.")
@click.option("--frame", type=click.IntRange(min=0), default=None,
              help="Frame of a PNG (default: the centre frame); ignored for .mp4.")
@click.option("--fps", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
              help="Frame rate of an .mp4.")
@click.option("--cache", "cache_dir", default=None, type=click.Path(file_okay=False),
              help="Camera-motion cache the store was built with (default $SYNTHGEN_CACHE or "
                   "~/.cache/synthgen/camera_motion).")
def show(store_url, index, out, frame, fps, cache_dir):
    """Draw one example of STORE (--example) as in the paper's Figure 2.

    Panels: background frame, occluder superpixel over it, crop flow (colour wheel), tracked
    SURREAL person, composite with the crop box, and the 224x224 crop with its 24 keypoints
    coloured by visibility reason. The full-frame panels are recomputed from the example's
    inputs; when those cannot be read, only the stored crop panels are drawn, with a note.
    """
    from synthgen.tools.show import FORMATS, load_view, write_figure

    if not out.lower().endswith(FORMATS):
        raise click.BadParameter(f"{out}: use {' or '.join(FORMATS)} (GIF is not supported)",
                                 param_hint="--out")
    try:
        view = load_view(store_url, index, cache_dir=cache_dir)
        if frame is not None and frame >= view.num_frames:
            raise IndexError(f"frame {frame} is outside the example's 0..{view.num_frames - 1}")
        path = write_figure(view, out, frame=frame, fps=fps)
    except (FileNotFoundError, ValueError, IndexError, OSError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    click.echo(f"wrote {path}")
    if view.note:
        click.echo(f"note: {view.note}")
