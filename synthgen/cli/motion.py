"""``synthgen motion``: fill the camera-motion cache for every background video."""

from __future__ import annotations

import collections

import click

from synthgen.cli import fail, num_cpus_option, set_option, user_errors
from synthgen.config import load_config


@click.command()
@click.option("--kinetics", "kinetics_dir", required=True,
              type=click.Path(exists=True, file_okay=True, dir_okay=True),
              help="Directory of background videos (any nesting) or frame folders.")
@click.option("--cache", "cache_dir", required=True, type=click.Path(file_okay=False),
              help="Cache directory (created if needed); one .npz per video plus manifest.json.")
@click.option("--pipeline", default=None, help="Pipeline name or TOML file ([camera_motion] and "
              "[clip] sections are used); default: the paper's recipe.")
@click.option("--address", default=None, help="Ray cluster to join ('auto', 'ray://host:port'); "
              "default: a local Ray.")
@num_cpus_option
@click.option("--serial", is_flag=True, help="Run in this process without Ray (debugging).")
@set_option
def motion(kinetics_dir, cache_dir, pipeline, address, num_cpus, serial, sets):
    """Compute TVL1 camera-motion statistics of every video once and cache them.

    Videos already in the cache with the same content and parameters are not recomputed; a video
    that cannot be read is recorded as skipped with its reason in CACHE/manifest.json.
    """
    from synthgen.build.executor import executor_for
    from synthgen.build.motion import build_cache
    from synthgen.sources.kinetics import find_videos

    try:
        cfg = load_config(pipeline, sets=sets)
        videos, skipped = find_videos(kinetics_dir)
        click.echo(f"{len(videos)} videos found under {kinetics_dir} ({len(skipped)} skipped at "
                   f"discovery)")
        run = build_cache(videos, cache_dir, cfg=cfg.camera_motion, clip=cfg.clip,
                          skipped=skipped,
                          executor=executor_for(serial=serial, address=address, num_cpus=num_cpus))
    except user_errors() as exc:
        fail(exc)
    reasons = collections.Counter(skip.reason for skip in run.skipped)
    click.echo(f"computed {len(run.computed)}, already cached {len(run.cached)}, "
               f"skipped {len(run.skipped)} in {run.seconds:.1f} s")
    for reason, count in sorted(reasons.items()):
        click.echo(f"  skipped {count}: {reason}")
    for skip in run.skipped:
        click.echo(f"  {skip}")
