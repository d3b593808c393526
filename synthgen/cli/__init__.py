"""The ``synthgen`` command line. Each subcommand lives in its own module of this package."""

from __future__ import annotations

import click

from synthgen.core.cli import OneLineGroup, fail, num_cpus_option, set_option, user_errors

__all__ = ["fail", "main", "num_cpus_option", "set_option", "user_errors"]


@click.group(cls=OneLineGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="synthgen")
def main():
    """Synthetic motion data for sim2real 3D human pose estimation.

    Turns SURREAL people and Kinetics backgrounds into training clips of crop optical flow,
    keypoints and 3D pose (Doersch & Zisserman, NeurIPS 2019).
    """


# Subcommands register themselves here, one import line each.
from synthgen.cli.motion import motion; main.add_command(motion)  # noqa: E402
from synthgen.cli.demo_data import demo_data; main.add_command(demo_data)  # noqa: E402
from synthgen.cli.build import build; main.add_command(build)  # noqa: E402
from synthgen.cli.build_3dpw import build_3dpw; main.add_command(build_3dpw)  # noqa: E402
from synthgen.cli.inspect import inspect; main.add_command(inspect)  # noqa: E402
from synthgen.cli.show import show; main.add_command(show)  # noqa: E402
from synthgen.cli.build_video import build_video; main.add_command(build_video)  # noqa: E402
