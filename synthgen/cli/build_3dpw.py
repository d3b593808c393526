"""``synthgen build-3dpw``: 3DPW sequences in, a store of evaluation clips out."""

from __future__ import annotations

import click

from synthgen.config import MAX_EXAMPLES_PER_SHARD
from synthgen.cli import fail, set_option, user_errors
from synthgen.cli.options import ray_options, store_options


@click.command("build-3dpw")
@click.option("--3dpw", "root", required=True, type=click.Path(exists=True, file_okay=False),
              help="3DPW root holding sequenceFiles/ and imageFiles/.")
@click.option("--out", required=True, help="Output store: a local path or an fsspec URL.")
@click.option("--split", "splits", multiple=True, default=("test",), show_default=True,
              type=click.Choice(["train", "validation", "test"]), help="Split(s) to convert.")
@click.option("--pipeline", default=None,
              help="Pipeline name or TOML file whose [clip] length, [crops], [crop_flow] and "
                   "[store] apply (default: the paper's).")
@click.option("--flow", "flow_backend", default=None,
              help="Crop-flow backend (dis, tvl1, flownet2, ...): the training data's; overrides "
                   "the pipeline.")
@click.option("--flow-checkpoint", default=None, type=click.Path(exists=True, dir_okay=False),
              help="FlowNet weights (a flownet2-pytorch .pth.tar).")
@click.option("--flow-device", default=None, help="Torch device for FlowNet (cpu, cuda).")
@click.option("--clip-length", default=None, type=click.IntRange(min=2),
              help="Frames per clip [default: the pipeline's clip.length, 31 in the paper's].")
@click.option("--match-store", default=None,
              help="A training store: refuse if its crop-flow backend or crops differ.")
@click.option("--examples-per-shard", default=None,
              type=click.IntRange(1, MAX_EXAMPLES_PER_SHARD),
              help="Clips per shard file, which bounds worker memory (~11 MB per 31-frame clip) "
                   "[default: the pipeline's store.examples_per_shard].")
@store_options
@ray_options
@set_option
def build_3dpw(root, out, splits, pipeline, flow_backend, flow_checkpoint, flow_device,
               clip_length, match_store, examples_per_shard, resume, overwrite, address,
               num_cpus, serial, sets):
    """Convert 3DPW sequences to a store of evaluation clips (one per actor and window).

    Crops come from the provided OpenPose detections (HMR boxes), flow from the same crop-flow
    backend as the training data; frames with fewer than 7 confident keypoints are total
    occlusions; ground-truth joints are in camera coordinates.
    """
    from synthgen.build.threedpw import build_3dpw as run
    from synthgen.config import load_config

    flags = {k: v for k, v in (("backend", flow_backend), ("checkpoint", flow_checkpoint),
                               ("device", flow_device)) if v is not None}
    overrides = {"crop_flow": flags,
                 "clip": {} if clip_length is None else {"length": clip_length},
                 "store": {} if examples_per_shard is None else
                 {"examples_per_shard": examples_per_shard}}
    try:
        cfg = load_config(pipeline, overrides=overrides, sets=sets)
        summary = run(root, out, cfg=cfg, splits=tuple(splits), match_store=match_store,
                      resume=resume, overwrite=overwrite, address=address, num_cpus=num_cpus,
                      serial=serial)
    except user_errors() as exc:
        fail(exc)
    for line in summary.lines():
        click.echo(line)
