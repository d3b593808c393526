"""``synthgen inspect``: schema, counts, statistics, integrity and verification of a store."""

from __future__ import annotations

import sys

import click


@click.command()
@click.argument("store_url", metavar="STORE")
@click.option("--verify", "verify_count", type=click.IntRange(min=1), default=None,
              help="Rebuild N finished examples (a fixed random sample) from their seeds and "
                   "compare every array exactly.")
@click.option("--verify-all", is_flag=True, help="Rebuild and compare every finished example.")
@click.option("--verify-seed", default=0, show_default=True,
              help="Seed of the --verify sample.")
@click.option("--cache", "cache_dir", default=None, type=click.Path(file_okay=False),
              help="Camera-motion cache the store was built with (for --verify; default "
                   "$SYNTHGEN_CACHE or ~/.cache/synthgen/camera_motion).")
@click.option("--quiet", is_flag=True, help="No progress lines on stderr.")
def inspect(store_url, verify_count, verify_all, verify_seed, cache_dir, quiet):
    """Describe STORE (a path or fsspec URL) and check that it is sound.

    Prints the arrays (shapes, dtypes, chunks, shards, codecs, units), how many shards are
    finished, statistics of the finished examples (occlusion, visibility reasons, total
    occlusion, flow, boxes, camera motion), the skipped inputs, and reads every array of every
    finished shard. Works on a store still being written (finished shards only).

    Exit status: 0 when every finished shard reads and every verified example is identical,
    1 otherwise (and on a missing or incompatible store).
    """
    from synthgen.tools import inspect as insp
    from synthgen import store

    if verify_count is not None and verify_all:
        raise click.UsageError("give --verify N or --verify-all, not both")
    stream = None if quiet else sys.stderr
    try:
        group = store.open_group(store_url)
    except (FileNotFoundError, ValueError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    kind = group.attrs.get("kind", "synthetic")
    if (verify_count is not None or verify_all) and kind != "synthetic":
        click.echo(f"error: {store_url} is a '{kind}' store: --verify rebuilds the examples of "
                   f"a synthetic training store from their seeds; inspect it without --verify",
                   err=True)
        sys.exit(1)
    infos = insp.describe(group)
    statistics, problems, finished = insp.scan(group, progress_stream=stream)
    verifications = None
    if verify_count is not None or verify_all:
        indices = insp.sample_examples(store.finished_examples(group),
                                       None if verify_all else verify_count, seed=verify_seed)
        verifications = insp.verify_examples(store_url, indices, cache_dir=cache_dir,
                                             progress_stream=stream)
    for line in insp.report_lines(store_url, group, infos, statistics, problems, finished,
                                  verifications):
        click.echo(line)
    failed = bool(problems) or any(not v.ok for v in verifications or ())
    sys.exit(1 if failed else 0)
