"""Subcommands declared once, as data: name, summary, description, options, examples, function.

Every ``sdl`` subcommand is a :class:`Command`. :func:`add_command` turns one into an argparse
parser, so that each ``--help`` has the same shape: the description, every option with its help
text and its default, and an ``Examples:`` block whose lines run as written. Commands that
group others (``sdl vectors``, ``sdl bench``) carry ``subcommands`` instead of ``run``.

Spec: spec/README.md (the command line is informative; what it runs is specified)
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, NoReturn, TypeAlias

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
#: The exit status of an interrupted command (128 + SIGINT), as shells use.
EXIT_INTERRUPTED = 130

#: Whether the command line asked for ``--json``: errors then also go to stdout,
#: as one JSON object, so that a reader of stdout always gets an answer.
JSON_ERRORS: ContextVar[bool] = ContextVar("JSON_ERRORS", default=False)


def report_error(prog: str, message: str, *, kind: str = "usage") -> None:
    """One line on stderr, ``PROG: error: MESSAGE``; with ``--json`` also
    ``{"error": {"kind": KIND, "message": MESSAGE, "command": PROG}}`` on stdout.

    ``kind`` is ``usage`` for arguments the command refuses, ``interrupted``
    for Ctrl-C, or the class name of the typed error
    (spec/01-conventions.md#errors) that refused the input.
    """
    print(f"{prog}: error: {message}", file=sys.stderr)
    if JSON_ERRORS.get():
        error = {"kind": kind, "message": message, "command": prog}
        print(json.dumps({"error": error}, sort_keys=True), flush=True)


#: The value of ``Option.default`` that means "no default": the option is required, a flag,
#: or its absence means something the help text says.
NO_DEFAULT: Any = argparse.SUPPRESS

Runner = Callable[[argparse.Namespace], int]


@dataclass(frozen=True)
class Option:
    """One argument of a subcommand: ``flags`` as argparse takes them, and what it means.

    ``flags`` is a positional name (``("dir",)``) or option strings (``("--nodes",)``).
    ``default`` is shown in the help unless it is :data:`NO_DEFAULT` (then ``absent``
    says what leaving the option out means) or the option is a flag.
    """

    flags: tuple[str, ...]
    help: str
    type: Callable[[str], Any] | None = None
    default: Any = NO_DEFAULT
    metavar: str | None = None
    choices: Sequence[Any] | None = None
    flag: bool = False
    required: bool = False
    repeat: bool = False
    absent: str | None = None
    shown_default: str | None = None
    #: A positional that takes one or more values (argparse's ``nargs="+"``).
    many: bool = False

    @property
    def positional(self) -> bool:
        return not self.flags[0].startswith("-")

    def help_text(self) -> str:
        """The help line: the text, then ``(default: …)`` or what absence means."""
        text = self.help
        if self.flag or self.positional:
            return text
        if self.required:
            return f"{text} (required)"
        if self.absent is not None:
            return f"{text} (default: {self.absent})"
        if self.default is NO_DEFAULT:
            return text
        shown = self.shown_default
        if shown is None:
            value = self.default
            if isinstance(value, (list, tuple)):
                shown = ",".join(str(v) for v in value)
            else:
                shown = str(value)
        return f"{text} (default: {shown})"

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        kwargs: dict[str, Any] = {"help": self.help_text()}
        if self.flag:
            kwargs["action"] = "store_true"
            parser.add_argument(*self.flags, **kwargs)
            return
        if self.type is not None:
            kwargs["type"] = self.type
        if self.metavar is not None:
            kwargs["metavar"] = self.metavar
        if self.choices is not None:
            kwargs["choices"] = self.choices
        if self.many:
            kwargs["nargs"] = "+"
        if self.repeat:
            kwargs["action"] = "append"
            kwargs["default"] = [] if self.default is NO_DEFAULT else self.default
        elif not self.positional:
            kwargs["default"] = None if self.default is NO_DEFAULT else self.default
            kwargs["required"] = self.required
        parser.add_argument(*self.flags, **kwargs)


#: ``--json``, which every subcommand that reports takes.
JSON = Option(("--json",), "print one JSON object instead of the readable report", flag=True)


@dataclass(frozen=True)
class Example:
    """A command line that runs as written, and what it shows."""

    command: str
    shows: str


@dataclass(frozen=True)
class Command:
    """One ``sdl`` subcommand or group of subcommands, declared once."""

    name: str
    summary: str
    description: str
    examples: tuple[Example, ...]
    options: tuple[Option, ...] = ()
    run: Runner | None = None
    subcommands: tuple[Command, ...] = field(default=())
    #: Text after the examples (exit status, notes), or empty.
    notes: str = ""

    def __post_init__(self) -> None:
        if (self.run is None) == (not self.subcommands):
            raise ValueError(f"{self.name}: declare either run or subcommands, not both")
        if not self.examples:
            raise ValueError(f"{self.name}: declare at least one example")

    def epilog(self) -> str:
        width = max(len(e.command) for e in self.examples)
        lines = ["Examples:"]
        for e in self.examples:
            if len(e.command) + len(e.shows) + 6 <= 100 and width <= 60:
                lines.append(f"  {e.command.ljust(width)}  # {e.shows}")
            else:
                lines.append(f"  # {e.shows}")
                lines.append(f"  {e.command}")
        if self.notes:
            lines += ["", textwrap.dedent(self.notes).strip()]
        return "\n".join(lines)


class Parser(argparse.ArgumentParser):
    """An argparse parser whose usage errors are one line on stderr, exit status 2."""

    def error(self, message: str) -> NoReturn:
        report_error(self.prog, f"{message} (see {self.prog} --help)")
        self.exit(EXIT_USAGE)


#: What ``Parser.add_subparsers`` returns.
Subparsers: TypeAlias = "argparse._SubParsersAction[Parser]"


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and epilogs as written (paragraphs re-wrapped, examples kept)."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32, width=100)


def _description(text: str) -> str:
    """Re-wrap each paragraph of ``text`` to 92 columns; keep indented blocks as written."""
    out: list[str] = []
    for block in textwrap.dedent(text).strip().split("\n\n"):
        if block.startswith(" "):
            out.append(block)
        else:
            out.append(textwrap.fill(" ".join(block.split()), width=92))
    return "\n\n".join(out)


def add_command(sub: Subparsers, command: Command, *, dest: str) -> argparse.ArgumentParser:
    """Add ``command`` (and its subcommands) to ``sub``; return its parser."""
    parser = sub.add_parser(
        command.name,
        help=command.summary,
        description=_description(command.description),
        epilog=command.epilog(),
        formatter_class=Formatter,
    )
    for option in command.options:
        option.add_to(parser)
    if command.run is not None:
        parser.set_defaults(func=command.run, command_prog=parser.prog)
    else:
        inner = parser.add_subparsers(
            dest=f"{dest}_{command.name}", required=True, metavar="COMMAND"
        )
        for child in command.subcommands:
            add_command(inner, child, dest=f"{dest}_{command.name}")
    return parser


def walk(commands: Sequence[Command], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every runnable subcommand's path, such as ``("bench", "round")``."""
    found: list[tuple[str, ...]] = []
    for c in commands:
        path = (*prefix, c.name)
        found.extend([path] if c.run is not None else walk(c.subcommands, path))
    return found


def emit(obj: object) -> None:
    """Print ``obj`` as the subcommand's one JSON object."""
    print(json.dumps(obj, sort_keys=True, indent=2))
