"""Options several ``synthgen`` build commands share, declared once (name, help and rules)."""

from __future__ import annotations

import functools

import click

from synthgen.core.cli import num_cpus_option


def store_options(command):
    """``--resume`` and ``--overwrite`` of a command that writes a store (given together: a usage
    error)."""
    @functools.wraps(command)
    def checked(*args, resume, overwrite, **kwargs):
        if resume and overwrite:
            raise click.UsageError("give --resume or --overwrite, not both")
        return command(*args, resume=resume, overwrite=overwrite, **kwargs)

    checked = click.option("--overwrite", is_flag=True, help="Replace an existing store.")(checked)
    return click.option("--resume", is_flag=True,
                        help="Continue a killed build: finished shards are kept.")(checked)


def ray_options(command):
    """``--address``, ``--num-cpus`` and ``--serial``: where a build's shard tasks run."""
    command = click.option("--serial", is_flag=True,
                           help="Run in this process without Ray (debugging).")(command)
    command = num_cpus_option(command)
    return click.option("--address", default=None,
                        help="Ray cluster to join ('auto' or 'ray://host:port'); default a local "
                             "Ray.")(command)
