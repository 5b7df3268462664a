"""The protocol's subcommands of ``sdl``: simulate, verify, schema.

Spec: spec/12-transcripts.md (simulate, verify); spec/09-protocol.md#messages (schema)
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

from protocol.errors import ParameterError
from protocol.field import FIELDS
from protocol.messages import schemas
from reference.cli.types import number_where
from reference.common.atomic import replacing, write_text_atomically
from reference.common.seeds import fresh_seed, seed_from_hex
from reference.sim.scenarios import build
from reference.sim.simulate import Network, canonical_line, simulate
from reference.sim.transcript import verify_lines

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


_fraction_in_unit = number_where(
    Fraction, "a probability in [0, 1], such as 0.05 or 1/20", lambda v: 0 <= v <= 1
)
_positive_fraction = number_where(Fraction, "a positive number", lambda v: v > 0)


def _crash(text: str) -> tuple[int, int]:
    node, sep, sends = text.partition(":")
    try:
        if not sep:
            raise ValueError
        pair = (int(node), int(sends))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected NODE:SENDS, e.g. 3:0 (node 3 crashes before sending); got {text!r}"
        ) from None
    if pair[0] < 1 or pair[1] < 0:
        raise argparse.ArgumentTypeError(f"expected NODE >= 1 and SENDS >= 0; got {text!r}")
    return pair


# ---------------------------------------------------------------------- simulate


def _cmd_simulate(args: argparse.Namespace) -> int:
    seed_text = args.seed if args.seed is not None else fresh_seed().hex()
    master = seed_from_hex(seed_text)
    scenario = build(
        master=master,
        nodes=args.nodes,
        threshold=args.threshold,
        dropouts=args.dropouts,
        colluders=args.colluders,
        max_dropouts=args.max_dropouts,
        committee=args.committee,
        min_contributors=args.min_contributors,
        dimension=args.dimension,
        packing=args.packing,
        mechanism=args.mechanism,
        target_variance=args.target_variance,
        field=FIELDS[args.field],
        network=Network(drop=args.drop, late=args.late, duplicate=args.duplicate),
        crashes=dict(args.crash),
        tamper=tuple(args.tamper),
        noise_sources=args.noise_sources,
        receivers=args.receivers,
        precover=args.precover,
    )
    if set(scenario.crashes) - set(scenario.params.nodes):
        raise ParameterError(f"--crash names a node outside 1..{args.nodes}")
    if args.transcript is None:
        result = simulate(scenario)
    else:
        # Streamed to a temporary file, renamed into place only when complete:
        # memory stays flat whatever the round's size.
        with replacing(args.transcript) as tmp, tmp.open("w", encoding="utf-8") as f:

            def write(line: dict[str, Any]) -> None:
                f.write(canonical_line(line) + "\n")

            result = simulate(scenario, sink=write)
    p = scenario.params
    obj = {
        **result.to_json(),
        "seed": seed_text,
        "nodes": list(p.nodes),
        "aggregators": list(p.aggregators),
        "coordinator": p.coordinator,
        "dropouts": sorted(scenario.crashes),
        "colluders": list(scenario.colluders),
        "messages": result.messages,
        "transcript": None if args.transcript is None else str(args.transcript),
    }
    if args.json:
        print(json.dumps(obj, sort_keys=True, indent=2))
    else:
        _print_summary(obj, p.threshold)
    return EXIT_OK if result.aggregate_correct else EXIT_FAILED


def _print_summary(obj: dict[str, Any], threshold: int) -> None:
    print(
        f"SDL round: {len(obj['nodes'])} nodes, threshold t = {threshold}, "
        f"{len(obj['aggregators'])} aggregators (coordinator: node {obj['coordinator']})"
    )
    print(
        f"  crashed nodes:  {obj['crashed'] or 'none'}   (scheduled: {obj['dropouts'] or 'none'})"
    )
    print(f"  colluders:      {obj['colluders'] or 'none'}")
    print(f"  messages sent:  {obj['messages']}")
    if obj["status"] == "released":
        print(f"  released:       the sum over contributors {obj['contributors']}")
        print(f"  exact:          {'yes' if obj['aggregate_correct'] else 'NO: WRONG RELEASE'}")
        if obj["corrected"]:
            print(f"  corrected:      partial sums of aggregators {obj['corrected']} were wrong; "
                  "robust reconstruction rebuilt the sum without them")  # fmt: skip
        print(
            f"  honest noise:   {obj['honest_noise_variance_exact']} "
            f"(target {obj['target_noise_variance_exact']})"
        )
    else:
        print(f"  aborted:        {obj['reason']}")
    if obj["transcript"]:
        print(f"  transcript:     {obj['transcript']}  (check it: sdl verify {obj['transcript']})")
    print(f"  seed:           {obj['seed']}  (repeat the run: --seed {obj['seed']})")


# ---------------------------------------------------------------------- verify


def _cmd_verify(args: argparse.Namespace) -> int:
    try:
        with args.transcript.open(encoding="utf-8") as f:
            verdict = verify_lines(f)
    except (OSError, UnicodeDecodeError) as exc:
        print(f"sdl: error: cannot read {args.transcript}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        print(json.dumps(verdict.to_json(), sort_keys=True, indent=2))
    elif verdict.valid:
        r = verdict.result or {}
        what = (
            f"released the sum over {r.get('contributors')}"
            if r.get("status") == "released"
            else f"aborted ({r.get('reason')})"
        )
        print(f"{args.transcript}: valid: every node followed the protocol; the round {what}")
    else:
        print(f"{args.transcript}:{verdict.line}: invalid: {verdict.why}")
    return EXIT_OK if verdict.valid else EXIT_FAILED


# ---------------------------------------------------------------------- schema


def _cmd_schema(args: argparse.Namespace) -> int:
    written = []
    for name, schema in sorted(schemas().items()):
        path = args.directory / name
        write_text_atomically(path, json.dumps(schema, indent=2, sort_keys=True) + "\n")
        written.append(str(path))
    if args.json:
        print(json.dumps({"written": written}, indent=2))
    else:
        print(f"wrote {len(written)} JSON Schemas:")
        for w in written:
            print(f"  {w}")
    return EXIT_OK


def add_parsers(
    sub: Any, *, positive: Callable[[str], int], non_negative: Callable[[str], int]
) -> None:
    """Add ``simulate``, ``verify`` and ``schema`` to the ``sdl`` parser."""
    sim = sub.add_parser(
        "simulate",
        help="run one round of the protocol over a simulated, adversarial network",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.dedent(
            """\
            Run one round of secure aggregation with distributed DP: every node shares
            its (noisy, encoded) update with the aggregators, the coordinator fixes the
            contributor set, survivors top up their noise when nodes drop, and every
            node rebuilds the released sum from the aggregators' partial sums.

            The run is deterministic given --seed: who drops, who colludes, the
            updates, the noise and the network's behaviour all come from it.
            A released sum is checked, exactly in the field, against the sum of what
            the contributors shared; the honest noise against the target.
            Exit status: 0 if the round released correctly or aborted cleanly;
            1 on a wrong release (a bug); 2 on bad input."""
        ),
        epilog=textwrap.dedent(
            """\
            examples:
              sdl simulate --nodes 7 --threshold 2 --dropouts 1 --seed 1
              sdl simulate --nodes 20 --threshold 6 --dropouts 3 --colluders 2 --seed 1 --json
              sdl simulate --nodes 7 --threshold 2 --seed 1 --drop 1/50 --late 1/50 \\
                  --duplicate 1/10 --transcript run.jsonl && sdl verify run.jsonl"""
        ),
    )
    sim.add_argument("--nodes", type=positive, required=True, help="n: the nodes of the round")
    sim.add_argument(
        "--threshold",
        type=positive,
        required=True,
        help="t: any t aggregators together learn nothing",
    )
    sim.add_argument(
        "--dropouts",
        type=non_negative,
        default=0,
        help="nodes (never the coordinator) that crash while sharing (default 0)",
    )
    sim.add_argument(
        "--max-dropouts",
        type=non_negative,
        default=None,
        help="D: the dropouts the noise plan must withstand (default: --dropouts)",
    )
    sim.add_argument(
        "--colluders",
        type=non_negative,
        default=0,
        help="T: contributors whose noise the adversary knows (default 0)",
    )
    sim.add_argument(
        "--committee",
        type=positive,
        default=None,
        help="aggregate with this many nodes drawn from public randomness (default: every node)",
    )
    sim.add_argument(
        "--noise-sources",
        type=positive,
        default=None,
        help="only this many contributors add noise, the committee's members first (default: "
        "all); needs --precover (spec/09-protocol.md#noise-sources)",
    )
    sim.add_argument(
        "--receivers",
        type=positive,
        default=None,
        help="only this many nodes reconstruct, the coordinator first (default: every node)",
    )
    sim.add_argument(
        "--precover",
        action="store_true",
        help="size the initial noise for D dropouts, so no top-up stage is ever needed "
        "(spec/07-noise-plan.md#pre-covering)",
    )
    sim.add_argument(
        "--min-contributors",
        type=positive,
        default=None,
        help="the smallest contributor set an aggregator accepts (default max(2, n − D))",
    )
    sim.add_argument("--dimension", type=positive, default=8, help="update length (default 8)")
    sim.add_argument(
        "--packing", type=positive, default=1, help="k: secrets per Shamir polynomial (default 1)"
    )
    sim.add_argument("--mechanism", choices=("skellam", "dgauss"), default="skellam")
    sim.add_argument(
        "--target-variance",
        type=_positive_fraction,
        default=Fraction(1000),
        help="σ*²: the honest noise every release must carry (default 1000)",
    )
    sim.add_argument("--field", choices=sorted(FIELDS), default="Field31")
    sim.add_argument(
        "--drop",
        type=_fraction_in_unit,
        default=Fraction(0),
        help="probability that the network loses a message (default 0)",
    )
    sim.add_argument(
        "--late",
        type=_fraction_in_unit,
        default=Fraction(0),
        help="probability that a message arrives after its deadline (default 0)",
    )
    sim.add_argument(
        "--duplicate",
        type=_fraction_in_unit,
        default=Fraction(0),
        help="probability that a message is delivered twice (default 0)",
    )
    sim.add_argument(
        "--crash",
        type=_crash,
        action="append",
        default=[],
        metavar="NODE:SENDS",
        help="crash NODE once it has sent SENDS messages (repeatable)",
    )
    sim.add_argument(
        "--tamper",
        type=positive,
        action="append",
        default=[],
        metavar="NODE",
        help="aggregator NODE alters its partial sums (repeatable)",
    )
    sim.add_argument("--seed", metavar="HEX", help="hex seed (default: fresh OS randomness)")
    sim.add_argument(
        "--transcript", type=Path, metavar="FILE", help="write the transcript (JSON lines) to FILE"
    )
    sim.add_argument("--json", action="store_true", help="print one JSON object")
    sim.set_defaults(func=_cmd_simulate)

    ver = sub.add_parser(
        "verify",
        help="replay a transcript through the state machines and check every step",
        description=(
            "Replay a transcript (from sdl simulate or another implementation) through "
            "SDL's state machines: every message must be exactly what the sender's machine "
            "sends, every delivery a message that was sent, every timer one that was set, "
            "and the result what the final states give. Exit 0 only for a valid run; "
            "otherwise the first offending line is named, with why (exit 1)."
        ),
    )
    ver.add_argument("transcript", type=Path, metavar="TRANSCRIPT")
    ver.add_argument("--json", action="store_true", help="print one JSON object")
    ver.set_defaults(func=_cmd_verify)

    sch = sub.add_parser(
        "schema",
        help="write the JSON Schemas of the protocol's messages",
        description=(
            "Write one JSON Schema per message kind (message-<kind>.schema.json) and one "
            "for any message (message.schema.json) into DIR. The committed copies live in "
            "spec/schemas/; a test fails if they are stale."
        ),
    )
    sch.add_argument("directory", type=Path, metavar="DIR")
    sch.add_argument("--json", action="store_true", help="print one JSON object")
    sch.set_defaults(func=_cmd_schema)
