"""Every ``sdl`` subcommand teaches: a description, help and a default for every option,
examples that parse as written; and a bad argument is one line on stderr, exit 2.

Spec: spec/README.md
"""

from __future__ import annotations

import argparse
import importlib.metadata
import re
import shlex
import subprocess
import sys

import pytest

from reference.cli.declare import Command, Option, walk
from reference.cli.main import GROUPS, build_parser, main


def _commands() -> list[Command]:
    return [c for group in GROUPS for c in group.COMMANDS]


def _find(path: tuple[str, ...]) -> Command:
    commands = _commands()
    command: Command | None = None
    for name in path:
        command = next(c for c in commands if c.name == name)
        commands = list(command.subcommands)
    assert command is not None
    return command


PATHS = walk(_commands())


def _parser_for(path: tuple[str, ...]) -> argparse.ArgumentParser:
    parser = build_parser()
    for name in path:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[name]
    return parser


def test_every_group_is_declared() -> None:
    assert all(hasattr(group, "COMMANDS") for group in GROUPS)
    names = {p[0] for p in PATHS}
    assert {"run", "evaluate", "demo", "simulate", "verify", "schema"} <= names
    assert {"vectors", "conformance", "noise", "privacy", "bench"} <= names


@pytest.mark.parametrize("path", PATHS, ids=" ".join)
def test_help_has_description_examples_and_option_help(
    path: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*path, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    command = _find(path)
    assert command.description.strip() and " ".join(command.description.split())[:40] in (
        " ".join(text.split())
    )
    assert "Examples:" in text
    parser = _parser_for(path)
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help, f"sdl {' '.join(path)}: {action.option_strings or action.dest}"
    for option in command.options:
        shown = option.help_text()
        if not (option.flag or option.positional or option.default is None):
            assert "default" in shown or option.required, (path, option.flags)


@pytest.mark.parametrize("path", PATHS, ids=" ".join)
def test_examples_parse_as_written(path: tuple[str, ...]) -> None:
    command = _find(path)
    for example in command.examples:
        words = shlex.split(example.command)
        assert words[0] == "sdl" and tuple(words[1 : 1 + len(path)]) == path, example
        args = build_parser().parse_args(words[1:])  # exits 2 if the example is wrong
        assert args.func is command.run


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reference.cli", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("path", PATHS, ids=" ".join)
def test_a_bad_argument_is_one_line_and_exit_2(path: tuple[str, ...]) -> None:
    proc = _run([*path, "--no-such-option"])
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert lines[0].startswith(f"sdl {' '.join(path)}: error:")


def test_help_speaks_of_the_product() -> None:
    for path in PATHS:
        command = _find(path)
        texts = [command.summary, command.description, command.notes]
        texts += [o.help for o in command.options]
        texts += [e.shows for e in command.examples]
        for text in texts:
            assert not re.search(r"\bissues?\b", text, re.IGNORECASE), (path, text)


def test_version_prints_the_package_version() -> None:
    proc = _run(["--version"])
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"sdl {importlib.metadata.version('sdl')}"


def test_option_help_shows_defaults_and_absence() -> None:
    assert Option(("--n",), "nodes", default=7).help_text() == "nodes (default: 7)"
    assert Option(("--s",), "seed", absent="fresh").help_text() == "seed (default: fresh)"
    assert Option(("--r",), "rounds", required=True).help_text() == "rounds (required)"
    assert Option(("--l",), "list", default=(1, 2)).help_text() == "list (default: 1,2)"
    assert Option(("--json",), "as JSON", flag=True).help_text() == "as JSON"
