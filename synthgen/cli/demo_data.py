"""``synthgen demo-data OUT``: generate the embedded demo dataset."""

from __future__ import annotations

import time

import click

from synthgen.cli import fail


@click.command("demo-data")
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--seed", default=0, show_default=True, type=click.IntRange(min=0),
              help="Seed of every random choice.")
@click.option("--people", "num_people", default=24, show_default=True, type=click.IntRange(min=1),
              help="SURREAL-format clips to render.")
@click.option("--people-frames", default=100, show_default=True, type=click.IntRange(min=2),
              help="Frames per SURREAL clip.")
@click.option("--backgrounds", "num_backgrounds", default=6, show_default=True,
              type=click.IntRange(min=1), help="Kinetics-like background videos.")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(min=1),
              help="Processes to use.")
@click.option("--domain", default="A", show_default=True,
              help="People's appearance domain: A the demo's look, B another (clothing, light, "
                   "blur, body shapes) for transfer tests.")
@click.option("--motions", default="all", show_default=True,
              help="Motion kinds: train (the training set), heldout (kinds held out for "
                   "evaluation) or all.")
def demo_data(out, seed, num_people, people_frames, num_backgrounds, workers, domain, motions):
    """Generate demo data in the real SURREAL, SMPL and video formats into OUT.

    OUT/smpl holds SMPL-format body models, OUT/surreal a SURREAL tree, OUT/kinetics background
    videos with their ground-truth camera motion. The same seed gives the same files.
    --domain and --motions pick the people's look and motion kinds (synthgen.demo.appearance,
    synthgen.demo.motions.MOTION_SETS).
    """
    from synthgen.demo.dataset import make_demo_data

    start = time.perf_counter()
    try:
        data = make_demo_data(out, seed=seed, num_people=num_people, people_frames=people_frames,
                              num_backgrounds=num_backgrounds, workers=workers, domain=domain,
                              motions=motions)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    except OSError as exc:  # an OUT that cannot be written
        fail(exc)
    click.echo(f"demo data in {data.root}: {len(data.people)} SURREAL clips in {data.surreal_dir}, "
               f"{len(data.backgrounds)} background videos in {data.kinetics_dir}, SMPL models in "
               f"{data.smpl_dir} ({time.perf_counter() - start:.1f} s)")
