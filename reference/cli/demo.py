"""``sdl demo``: one secure-aggregation round, explained.

Spec: spec/04-shamir.md
"""

from __future__ import annotations

import argparse
import textwrap
from dataclasses import asdict

from reference.cli.declare import EXIT_FAILED, EXIT_OK, JSON, Command, Example, Option
from reference.cli.declare import emit as _emit
from reference.cli.types import (
    positive_int,
)
from reference.common.seeds import fresh_seed, seed_from_hex


def _cmd_demo(args: argparse.Namespace) -> int:
    from reference.sim.demo import run_demo  # noqa: PLC0415

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
            Option(("--nodes",), "number of nodes", type=positive_int, default=7, metavar="N"),
            Option(
                ("--threshold",),
                "t: any t nodes together learn nothing",
                type=positive_int,
                default=2,
                metavar="T",
            ),
            Option(
                ("--dimension",),
                "length of each private vector",
                type=positive_int,
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
