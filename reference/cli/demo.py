"""``sdl demo``: one secure-aggregation round, explained.

Spec: spec/04-shamir.md
"""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Callable
from dataclasses import asdict

from reference.cli.declare import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    JSON,
    Command,
    Example,
    Option,
    report_error,
)
from reference.cli.declare import emit as _emit
from reference.cli.types import positive_int, power_of_ten
from reference.common.seeds import fresh_seed, seed_from_hex

#: Most nodes: robust reconstruction grows fast in n (measured: 1 s at 100 nodes, 5 s at
#: 300, 190 s at 1000).
MAX_NODES = 100
#: Most coordinates per vector (measured: 1.6 s at 10^5 with 7 nodes, 13 s at 10^6).
MAX_DIMENSION = 10**5
#: Most share elements the nodes hold together, nodes² × dimension: 10^7 answers in about
#: 2 s (100 nodes × 10^3 coordinates, or 10 × 10^5); 100 × 10^5 would need 8 GB.
MAX_SHARES = 10**7


def _positive_at_most(maximum: int) -> Callable[[str], int]:
    """An argparse type: a positive integer, at most ``maximum``, else a message naming both."""

    def parse(text: str) -> int:
        value = positive_int(text)
        if value > maximum:
            raise argparse.ArgumentTypeError(
                f"expected a positive integer <= {power_of_ten(maximum)}; got {value}"
            )
        return value

    return parse


def _cmd_demo(args: argparse.Namespace) -> int:
    from reference.sim.demo import run_demo  # noqa: PLC0415

    if args.nodes**2 * args.dimension > MAX_SHARES:
        report_error(
            args.command_prog,
            f"--nodes² × --dimension must be <= {power_of_ten(MAX_SHARES)} (the shares held, "
            f"and a few seconds' work); got {args.nodes}² × {args.dimension} = "
            f"{args.nodes**2 * args.dimension}",
        )
        return EXIT_USAGE

    seed = seed_from_hex(args.seed) if args.seed is not None else fresh_seed()
    result = run_demo(
        seed=seed, nodes=args.nodes, threshold=args.threshold, dimension=args.dimension
    )
    if args.json:
        _emit(asdict(result))
    else:
        print("SDL demo: one secure-aggregation round (Shamir sharing over GF(2^31 - 1))\n")
        for step in result.steps:
            print(textwrap.fill(step, width=88, subsequent_indent="   "))
        print(
            "\nresult:",
            "OK, the secure sum equals the plaintext sum" if result.matches else "MISMATCH",
        )
    return EXIT_OK if result.matches else EXIT_FAILED


COMMANDS = (
    Command(
        name="demo",
        summary="run and explain one secure-aggregation round on small data",
        description="""
            Each node Shamir-shares a small private vector with every node; aggregators sum
            the shares they hold; one aggregator drops out and one lies; robust
            reconstruction still rebuilds the exact sum and names the liar. Each step is
            printed with the numbers it produced. Exits 0 when the secure sum equals the
            plaintext sum, 1 when it does not.

            Without --seed the run draws fresh OS randomness; with --seed it is
            reproducible, and therefore not private: use seeds for tests and examples only.
        """,
        options=(
            Option(
                ("--nodes",),
                f"number of nodes, at most {MAX_NODES}",
                type=_positive_at_most(MAX_NODES),
                default=7,
                metavar="N",
            ),
            Option(
                ("--threshold",),
                "t: any t nodes together learn nothing",
                type=positive_int,
                default=2,
                metavar="T",
            ),
            Option(
                ("--dimension",),
                f"length of each private vector, at most {power_of_ten(MAX_DIMENSION)}; "
                f"nodes² × dimension at most {power_of_ten(MAX_SHARES)}",
                type=_positive_at_most(MAX_DIMENSION),
                default=4,
                metavar="D",
            ),
            Option(
                ("--seed",),
                "1 to 64 hex digits for a reproducible (not private) run",
                metavar="HEX",
                absent="fresh OS randomness",
            ),
            JSON,
        ),
        examples=(
            Example("sdl demo", "one round, explained step by step"),
            Example("sdl demo --seed 1 --json", "the same, reproducible, as one JSON object"),
            Example("sdl demo --nodes 9 --threshold 3 --dimension 2", "a larger committee"),
        ),
        run=_cmd_demo,
    ),
)
