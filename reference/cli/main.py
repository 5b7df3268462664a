"""The ``sdl`` command line.

Every subcommand prints a readable report by default and one JSON object
with ``--json``. Bad input exits with status 2 and a message naming the
value and what was expected; a failed check exits with status 1.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import sys
import textwrap
from collections.abc import Sequence

from threadpoolctl import threadpool_limits

from protocol.errors import SdlError
from reference.cli import bench as cli_bench
from reference.cli import demo as cli_demo
from reference.cli import deploy as cli_deploy
from reference.cli import evaluate as cli_evaluate
from reference.cli import learning as cli_learning
from reference.cli import noise as cli_noise
from reference.cli import oracle as cli_oracle
from reference.cli import protocol as cli_protocol
from reference.cli.declare import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    JSON_ERRORS,
    Formatter,
    Parser,
    add_command,
    report_error,
)

#: The command groups, in the order ``sdl --help`` lists them.
GROUPS = (
    cli_learning,
    cli_deploy,
    cli_evaluate,
    cli_demo,
    cli_protocol,
    cli_oracle,
    cli_noise,
    cli_bench,
)


def _version() -> str:
    try:
        return importlib.metadata.version("sdl")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree, not installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="sdl",
        description=textwrap.fill(
            "SDL: secure decentralized learning. Nodes Shamir-share their model updates "
            "over a prime field and add shares of integer DP noise; only the noisy sum is "
            "ever revealed. This command runs the reference implementation.",
            width=92,
        ),
        epilog=textwrap.dedent(
            """\
            Examples:
              sdl run                          train on the embedded digits (MPC + distributed DP)
              sdl run --seed 1 --trust central --json
              sdl evaluate --quick --out DIR   accuracy vs ε per trust model, cost, dropouts
              sdl demo                         one secure-aggregation round, explained
              sdl demo --seed 1 --json         the same, reproducible, as JSON
              sdl simulate --nodes 7 --threshold 2 --dropouts 1 --seed 1 --transcript run.jsonl
              sdl verify run.jsonl             replay a transcript through the state machines
              sdl schema spec/schemas          write the messages' JSON Schemas
              sdl vectors generate out/        write the test vectors
              sdl vectors check spec/vectors   check vectors (ours or another implementation's)
              sdl noise sample --mechanism skellam --variance 10 --count 5 --seed 1
              sdl privacy epsilon --mechanism gaussian --noise-multiplier 1.1 \\
                  --sampling-rate 0.01 --rounds 1000 --delta 1e-5
              sdl conformance --impl "node tests/interop/sdl_consumer.mjs serve"
              sdl bench shamir                 share/reconstruct speed against numpy and galois
              sdl bench accounting             the accountant on 1000 rounds, beside dp-accounting
              sdl bench round                  one whole round (n = 100, d = 10^6), every role timed
            """
        ),
        formatter_class=Formatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    parser.add_argument(
        "--version", action="version", version=f"sdl {_version()}", help="print the version"
    )
    for group in GROUPS:
        for command in group.COMMANDS:
            add_command(sub, command, dest="command")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``sdl`` with ``argv`` (default: the process's arguments); the exit status.

    Errors are one line on stderr and, with ``--json``, also one JSON object
    on stdout (:func:`~reference.cli.declare.report_error`): 2 for input the
    command refuses, 130 when interrupted (Ctrl-C), with no traceback.
    """
    words = list(sys.argv[1:] if argv is None else argv)
    token = JSON_ERRORS.set("--json" in words)
    try:
        return _main(words)
    finally:
        JSON_ERRORS.reset(token)


def _main(words: list[str]) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(words)
    prog = getattr(args, "command_prog", parser.prog)
    if extra:  # name the subcommand that refused them, as its own errors do
        report_error(prog, f"unrecognized arguments: {' '.join(extra)} (see {prog} --help)")
        return EXIT_USAGE
    try:
        # SDL's exact matrix product splits its columns among its own threads
        # and calls BLAS on small blocks; BLAS's own threads would only
        # compete with them (spec/02-field.md#matrix-product).
        with threadpool_limits(limits=1, user_api="blas"):
            code: int = args.func(args)
    except SdlError as exc:
        report_error(prog, str(exc), kind=type(exc).__name__)
        return EXIT_USAGE
    except KeyboardInterrupt:
        report_error(prog, "interrupted", kind="interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader of stdout went away (``sdl … | head``): not an error of
        # ours. Point stdout at /dev/null so the interpreter's final flush is quiet.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILED
    return code


if __name__ == "__main__":
    sys.exit(main())
