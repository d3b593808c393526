"""``synthgen build``: datasets in, a sharded Zarr store of training examples out."""

from __future__ import annotations

import click

from synthgen.cli import fail, set_option, user_errors
from synthgen.cli.options import ray_options, store_options


@click.command()
@click.option("--kinetics", "kinetics_dir", required=True, type=click.Path(exists=True),
              help="Background videos (any nesting) or frame folders.")
@click.option("--surreal", "surreal_dir", required=True, type=click.Path(exists=True),
              help="SURREAL root (the cmu/{train,val,test}/runN/<seq>/ tree or any nesting).")
@click.option("--smpl", "smpl_dir", default=None, type=click.Path(exists=True, file_okay=False),
              help="SMPL models (SMPL_FEMALE.pkl, SMPL_MALE.pkl) that pose the stored joints "
                   "[default: the 'smpl' directory beside --surreal, as synthgen demo-data writes].")
@click.option("--out", required=True, help="Output store: a local path or an fsspec URL (s3://...).")
@click.option("--num-examples", default=1000, show_default=True, type=click.IntRange(min=1))
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0),
              help="Build seed: every random choice.")
@click.option("--pipeline", default=None,
              help="Pipeline name (synthgen/pipelines/) or a TOML file (default: the paper's full recipe).")
@click.option("--flow", "flow_backend", default=None,
              help="Crop-flow backend (dis, tvl1, flownet2, flownet2s, ...); overrides the pipeline.")
@click.option("--flow-checkpoint", default=None, type=click.Path(exists=True, dir_okay=False),
              help="FlowNet weights (a flownet2-pytorch .pth.tar).")
@click.option("--flow-device", default=None,
              help="Torch device of FlowNet crop flow ('cuda' puts shard tasks on GPU nodes).")
@click.option("--split", "splits", multiple=True, default=("train",), show_default=True,
              help="SURREAL split(s) to draw people from; 'all' for every clip.")
@click.option("--cache", "cache_dir", default=None, type=click.Path(file_okay=False),
              help="Camera-motion cache, shared by builds (default $SYNTHGEN_CACHE or "
                   "~/.cache/synthgen/camera_motion).")
@store_options
@ray_options
@set_option
def build(kinetics_dir, surreal_dir, smpl_dir, out, num_examples, seed, pipeline, flow_backend,
          flow_checkpoint, flow_device, splits, cache_dir, resume, overwrite, address, num_cpus,
          serial, sets):
    """Build a store of NUM_EXAMPLES training examples from Kinetics and SURREAL.

    Work is planned from the seed, so the result does not depend on the number of workers; a
    build killed at any moment continues with --resume to the same bytes.
    """
    from synthgen.build.synthetic import build as run_build
    from synthgen.config import load_config

    flags = {k: v for k, v in (("backend", flow_backend), ("checkpoint", flow_checkpoint),
                               ("device", flow_device)) if v is not None}
    try:
        cfg = load_config(pipeline, overrides={"crop_flow": flags}, sets=sets)
        summary = run_build(kinetics_dir, surreal_dir, out, num_examples=num_examples, seed=seed,
                            cfg=cfg, cache_dir=cache_dir,
                            splits=None if "all" in splits else tuple(splits),
                            smpl_dir=smpl_dir, resume=resume,
                            overwrite=overwrite, address=address, num_cpus=num_cpus,
                            serial=serial)
    except user_errors() as exc:
        fail(exc)
    for line in summary.lines():
        click.echo(line)
