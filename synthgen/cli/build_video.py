"""``synthgen build-video``: a user's video in, a store of clips for ``trainer predict`` out."""

from __future__ import annotations

import click

from synthgen.config import MAX_EXAMPLES_PER_SHARD
from synthgen.build.video import DETECTORS, EXAMPLES_PER_SHARD
from synthgen.cli import fail, user_errors
from synthgen.cli.options import store_options


@click.command("build-video")
@click.argument("video", type=click.Path(exists=True))
@click.option("--keypoints", type=click.Path(exists=True),
              help="2D keypoints: an OpenPose JSON folder (BODY_25 or COCO-18), a COCO keypoint "
                   ".json, or a detector .npz.")
@click.option("--detector", type=click.Choice(list(DETECTORS)),
              help="Detect keypoints with the isolated MediaPipe environment (`make detector`; "
                   "or set SYNTHGEN_DETECTOR_PYTHON).")
@click.option("--match-store", required=True,
              help="The network's training store: crops, crop flow and clip length are made as "
                   "its.")
@click.option("--out", required=True, help="Output store: a local path or an fsspec URL.")
@click.option("--clip-length", type=click.IntRange(min=2),
              help="Frames per clip (default: the training store's). A video shorter than "
                   "that is one clip of all its frames.")
@click.option("--person-height", type=click.FloatRange(min=1.0),
              help="Person height in the crops, pixels (when the training store records none).")
@click.option("--no-flow", is_flag=True,
              help="Leave the crop flow out (for a network that does not see flow).")
@click.option("--flow-checkpoint", type=click.Path(exists=True, dir_okay=False),
              help="FlowNet weights, if the training data's FlowNet file moved.")
@click.option("--flow-device", default="cpu", show_default=True,
              help="Torch device for FlowNet (cpu, cuda).")
@click.option("--examples-per-shard", default=EXAMPLES_PER_SHARD, show_default=True,
              type=click.IntRange(1, MAX_EXAMPLES_PER_SHARD), help="Clips per shard file.")
@store_options
def build_video(video, keypoints, detector, match_store, out, clip_length, person_height,
                no_flow, flow_checkpoint, flow_device, examples_per_shard, resume, overwrite):
    """Turn VIDEO and its 2D keypoints into a store of clips (crops, crop flow, keypoints,
    boxes, total occlusions) made as the training store's, for `trainer predict --store`."""
    from synthgen.build.video import build_video as run

    if (keypoints is None) == (detector is None):
        raise click.UsageError("give exactly one of --keypoints and --detector")
    try:
        summary = run(video, out, match_store=match_store, keypoints=keypoints,
                      detector=detector, clip_length=clip_length, person_height=person_height,
                      flow=not no_flow, flow_checkpoint=flow_checkpoint, flow_device=flow_device,
                      examples_per_shard=examples_per_shard, resume=resume,
                      overwrite=overwrite)
    except user_errors() as exc:
        fail(exc)
    for line in summary.lines():
        click.echo(line)
