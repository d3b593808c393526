"""Command-line pieces shared by the ``synthgen`` and ``trainer`` CLIs."""

from __future__ import annotations

import sys

import click

#: The ``--set section.key=value`` option of every command that reads a pipeline.
set_option = click.option(
    "--set", "sets", multiple=True, metavar="SECTION.KEY=VALUE",
    help="Override one pipeline field (repeatable), e.g. --set clip.length=8.")

#: The ``--num-cpus`` option of every command that can start a local Ray (at least one core: Ray
#: refuses a negative count only once work has started, and 0 would mean every core).
num_cpus_option = click.option(
    "--num-cpus", type=click.IntRange(min=1), default=None,
    help="Cores for a local Ray (default: all).")


class OneLineGroup(click.Group):
    """A click group whose usage errors are one line (``error: ...``, exit 2), no usage block."""

    def main(self, *args, **kwargs):
        kwargs["standalone_mode"] = False
        try:
            return super().main(*args, **kwargs)
        except click.exceptions.NoArgsIsHelpError as exc:  # bare command: its help, as click does
            click.echo(exc.format_message(), err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            hint = f" (see {exc.ctx.command_path} -h)" if getattr(exc, "ctx", None) else ""
            click.echo(f"error: {' '.join(exc.format_message().split())}{hint}", err=True)
            sys.exit(exc.exit_code)
        except click.Abort as exc:
            cause = exc.__cause__
            if isinstance(cause, EOFError):  # click turns every EOFError into an Abort
                click.echo(f"error: a file ended early (EOFError: {cause or 'no data'}): an "
                           f"empty or truncated input", err=True)
            else:
                click.echo("aborted", err=True)
            sys.exit(1)


def user_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that mean bad input or arguments (not a bug): reported in one line."""
    from synthgen.core.errors import SourceError

    return ValueError, OSError, RuntimeError, SourceError


def fail(exc: BaseException):
    """Print ``error: <what is wrong and what to do>`` as one line on stderr and exit 1."""
    click.echo("error: " + " ".join(str(exc).split()), err=True)
    sys.exit(1)
