"""``docs/reproduce.md`` stays runnable: every ``synthgen``/``trainer`` command it shows names a real
subcommand, real options and real pipelines."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from synthgen.cli import main as synthgen_cli
from synthgen.core.config import resolve_pipeline
from trainer.cli import main as trainer_cli

PAGE = Path(__file__).resolve().parent.parent / "docs" / "reproduce.md"
CLIS = {"synthgen": synthgen_cli, "trainer": trainer_cli}


def _commands(text: str) -> list[list[str]]:
    """The shell commands of the page's bash blocks, continuation lines joined and variables
    defined in the block (``B="..."``) expanded, as word lists."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        variables: dict[str, str] = {}
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #")[0].strip()
            if not line or line.startswith("#"):
                continue
            defined = re.fullmatch(r'([A-Z]\w*)="(.*)"', line)
            if defined:
                variables[defined.group(1)] = defined.group(2)
                continue
            for name, value in variables.items():
                line = re.sub(rf"\${name}\b", value, line)
            commands.append(shlex.split(line.replace("$(which trainer)", "trainer"),
                                        comments=True))
    return commands


def _invocations():
    """(cli name, subcommand, option names, pipeline names) of each synthgen/trainer call."""
    found = []
    for words in _commands(PAGE.read_text()):
        for k, word in enumerate(words):
            cli = Path(word).name
            if cli in CLIS and k + 1 < len(words) and re.fullmatch(r"[a-z][a-z0-9-]*", words[k + 1]):
                rest = words[k + 2:]
                options = [w.split("=")[0] for w in rest if w.startswith("--")]
                pipelines = [rest[i + 1] for i, w in enumerate(rest[:-1]) if w == "--pipeline"]
                found.append((cli, words[k + 1], options, pipelines))
    return found


def test_the_page_shows_commands():
    calls = _invocations()
    assert {(cli, sub) for cli, sub, _, _ in calls} >= {
        ("synthgen", "motion"), ("synthgen", "build"), ("synthgen", "build-3dpw"),
        ("synthgen", "inspect"), ("trainer", "train"), ("trainer", "eval")}


@pytest.mark.parametrize("cli,subcommand,options,pipelines", _invocations(),
                         ids=lambda v: v if isinstance(v, str) else None)
def test_each_command_names_real_options_and_pipelines(cli, subcommand, options, pipelines):
    group = CLIS[cli]
    assert subcommand in group.commands, f"{cli} has no command {subcommand!r}"
    command: click.Command = group.commands[subcommand]
    known = {opt for param in command.params for opt in param.opts}
    for option in options:
        assert option in known, f"{cli} {subcommand} has no option {option}"
    for name in pipelines:
        if "$" not in name:  # names built in a shell loop are checked below
            assert resolve_pipeline(name, trainer=cli == "trainer").is_file()


def test_pipelines_named_in_loops_exist():
    text = PAGE.read_text()
    for n in re.search(r"for n in ([\d ]+);", text).group(1).split():
        assert resolve_pipeline(f"clip_{n}", trainer=False).is_file()
        assert resolve_pipeline(f"train_clip_{n}", trainer=True).is_file()
