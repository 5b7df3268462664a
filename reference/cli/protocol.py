"""The protocol's subcommands of ``sdl``: simulate, verify, schema.

Spec: spec/12-transcripts.md (simulate, verify); spec/09-protocol.md#messages (schema)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any, TextIO

from protocol.channels import DEFAULT_SUITE, SUITES
from protocol.errors import ParameterError
from protocol.field import FIELDS
from protocol.machine import CoordinatorState
from protocol.messages import schemas
from protocol.xof import Seed
from reference.cli.declare import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    JSON,
    Command,
    Example,
    Option,
    emit,
    report_error,
)
from reference.cli.types import non_negative_int, number_where, positive_int
from reference.common.atomic import replacing, write_text_atomically
from reference.common.paths import STDOUT, check_output_dir, check_output_file
from reference.common.seeds import fresh_seed, seed_from_hex
from reference.sim.scenarios import build
from reference.sim.simulate import (
    BYZANTINE_KINDS,
    Channels,
    Network,
    Outcome,
    Scenario,
    canonical_line,
    simulate,
)
from reference.sim.transcript import verify_lines

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


def _byzantine(text: str) -> dict[int, str]:
    """``KIND:NODE[,KIND:NODE…]`` as node -> kind."""
    out: dict[int, str] = {}
    for item in text.split(","):
        kind, sep, node = item.partition(":")
        if not sep or kind not in BYZANTINE_KINDS or not node.isdigit() or int(node) < 1:
            raise argparse.ArgumentTypeError(
                f"expected KIND:NODE[,KIND:NODE...] with KIND one of "
                f"{', '.join(BYZANTINE_KINDS)} and NODE >= 1, e.g. equivocate:2; got {item!r}"
            )
        if int(node) in out:
            raise argparse.ArgumentTypeError(f"node {node} is named twice in {text!r}")
        out[int(node)] = kind
    return out


# ---------------------------------------------------------------------- simulate

#: Who sends each kind of message to whom (spec/09-protocol.md#messages).
_ROUTES = {
    "share": "contributor -> aggregator",
    "report": "aggregator -> coordinator",
    "decision": "coordinator -> contributors and aggregators",
    "echo": "aggregator -> aggregators",
    "partial_sum": "aggregator -> receiver",
    "abort": "coordinator -> every role",
}


def _scenario(args: argparse.Namespace, master: Seed) -> Scenario:
    scenario = build(
        master=master,
        nodes=args.nodes,
        threshold=args.threshold,
        dropouts=args.dropouts,
        colluders=args.max_byzantine if args.colluders is None else args.colluders,
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
        channels=(
            Channels(SUITES[args.suite], args.tamper_frames) if args.channels == "sealed" else None
        ),
        max_byzantine=args.max_byzantine,
        byzantine=_merged(args.byzantine),
        failover=args.failover,
    )
    if set(scenario.crashes) - set(scenario.params.nodes):
        raise ParameterError(f"--crash names a node outside 1..{args.nodes}")
    return scenario


def _merged(groups: list[dict[int, str]]) -> dict[int, str]:
    """The --byzantine options as one node -> kind map (a node named once)."""
    out: dict[int, str] = {}
    for group in groups:
        twice = sorted(set(out) & set(group))
        if twice:
            raise ParameterError(f"--byzantine names nodes {twice} more than once")
        out |= group
    return out


def _check_transcript(text: str | None) -> None:
    """Check the --transcript file before the round runs (``-``, stdout, needs no check).

    Raises:
        OutputPathError: the path is a symlink, FIFO, socket, device or directory, or its
            directory is missing or not writable (``-`` is the way to write to stdout).
    """
    if text is not None and text != STDOUT:
        check_output_file(Path(text), label="--transcript")


def _run(scenario: Scenario, transcript: str | None) -> Outcome:
    if transcript is None:
        return simulate(scenario)

    def sink(f: TextIO) -> Callable[[dict[str, Any]], None]:
        def write(line: dict[str, Any]) -> None:
            f.write(canonical_line(line) + "\n")

        return write

    if transcript == STDOUT:
        outcome = simulate(scenario, sink=sink(sys.stdout))
        sys.stdout.flush()
        return outcome
    # Streamed to a temporary file, renamed into place only when complete:
    # memory stays flat whatever the round's size.
    with replacing(Path(transcript)) as tmp, tmp.open("w", encoding="utf-8") as f:
        return simulate(scenario, sink=sink(f))


def _abort_cause(scenario: Scenario, result: Outcome) -> dict[str, Any] | None:
    """Why a round aborted, as the coordinator saw it; ``None`` for a release.

    ``dropouts`` are the contributors the coordinator counted as gone, at most
    ``max_dropouts`` (D) being allowed: ``earlier_dropouts`` left the set at an earlier
    stage; ``missing_contributors`` maps each one lost at the last ``stage`` to the
    reporting aggregators that did not hold its shares. ``silent_aggregators`` sent no
    report the coordinator received in time. ``crashed`` and ``lost_messages`` are what
    caused all this: nodes that died, and messages the network dropped or delivered late.
    """
    if result.status == "released":
        return None
    p = scenario.params
    coordinator = result.states.get((p.coordinator, "coordinator"))
    cause: dict[str, Any] = {
        "crashed": sorted(result.crashed),
        "lost_messages": {fate: dict(kinds) for fate, kinds in result.lost.items()},
        "max_dropouts": p.noise.max_dropouts,
        "stage": None,
        "dropouts": [],
        "earlier_dropouts": [],
        "missing_contributors": {},
        "silent_aggregators": [],
    }
    if result.reason == "coordinator-equivocation":
        cause["equivocation"] = {
            "coordinator": p.coordinator,
            "detected_by": sorted(
                {node for (node, _), s in result.states.items()
                 if s.reason == "coordinator-equivocation"}
            ),
        }  # fmt: skip
    if isinstance(coordinator, CoordinatorState) and coordinator.reports:
        reports = coordinator.reports
        missing = {
            str(i): sorted(j for j, holds in reports.items() if i not in holds)
            for i in coordinator.expected
            if any(i not in holds for holds in reports.values())
        }
        earlier = sorted(set(p.contributors) - set(coordinator.expected))
        cause |= {
            "stage": coordinator.stage,
            "dropouts": sorted(earlier + [int(i) for i in missing]),
            "earlier_dropouts": earlier,
            "missing_contributors": missing,
            "silent_aggregators": sorted(set(p.aggregators) - set(reports)),
        }
    return cause


def _cmd_simulate(args: argparse.Namespace) -> int:
    if args.channels == "plain" and args.tamper_frames > 0:
        report_error(
            args.command_prog,
            f"--tamper-frames {args.tamper_frames} attacks sealed frames, "
            f"and --channels plain has none (see {args.command_prog} --help)",
        )
        return EXIT_USAGE
    _check_transcript(args.transcript)  # a bad path exits 2 before the round runs
    seed_text = args.seed if args.seed is not None else fresh_seed().hex()
    scenario = _scenario(args, seed_from_hex(seed_text))
    result = _run(scenario, args.transcript)
    p = scenario.params
    within = len(scenario.byzantine) <= p.max_byzantine
    obj = {
        **result.to_json(),
        "honest_agree": result.honest_agree,
        "releases": result.releases,
        "max_byzantine": p.max_byzantine,
        "byzantine": {str(k): v for k, v in sorted(scenario.byzantine.items())},
        "within_bounds": within,
        "released_signed": (
            None if result.released is None else [int(v) for v in result.released.signed_decode()]
        ),
        "lost_messages": {fate: dict(kinds) for fate, kinds in result.lost.items()},
        "abort_cause": _abort_cause(scenario, result),
        "seed": seed_text,
        "nodes": list(p.nodes),
        "aggregators": list(p.aggregators),
        "coordinator": p.coordinator,
        "backups": list(p.coordinators[1:]),
        "coordinated_by": _coordinated_by(result),
        "dropouts": sorted(scenario.crashes),
        "colluders": list(scenario.colluders),
        "messages": result.messages,
        "channels": {
            "mode": args.channels,
            "suite": args.suite if args.channels == "sealed" else None,
        },
        "frames_rejected": sum(result.frames_rejected.values()),
        "frames_rejected_by_fault": dict(result.frames_rejected),
        "transcript": args.transcript,
    }
    # With --transcript - stdout carries the JSON lines alone; the report goes to stderr.
    report = sys.stderr if args.transcript == STDOUT else sys.stdout
    with contextlib.redirect_stdout(report):
        if args.json:
            emit(obj)
        else:
            _print_summary(obj, p.threshold)
    broken = within and (not result.honest_agree or result.releases > 1)
    return EXIT_OK if result.aggregate_correct and not broken else EXIT_FAILED


def _coordinated_by(result: Outcome) -> int | None:
    """The coordinator whose final decision was released: the view that decided."""
    if result.status != "released":
        return None
    for (node, role), state in sorted(result.states.items()):
        decided = isinstance(state, CoordinatorState) and state.decision is not None
        if role == "coordinator" and decided and state.phase.value == "done":
            return node
    return None


def _losses(lost: dict[str, dict[str, int]]) -> list[str]:
    """One phrase per kind of lost message: "2 share (contributor -> aggregator) dropped"."""
    out = []
    for fate, what in (("dropped", "dropped by the network"), ("late", "late (after the timer)")):
        for kind, count in sorted(lost.get(fate, {}).items()):
            out.append(f"{count} {kind} ({_ROUTES.get(kind, kind)}) {what}")
    return out


def _print_abort(obj: dict[str, Any]) -> None:
    cause = obj["abort_cause"]
    print(f"  aborted:        {obj['reason']}")
    if "equivocation" in cause:
        e = cause["equivocation"]
        print(f"  evidence:       nodes {e['detected_by']} hold two final decisions signed by")
        print(f"                  the coordinator, node {e['coordinator']}: it equivocated. "
              "No honest aggregator")  # fmt: skip
        print("                  answered both, so at most one set could ever be released")
        return
    if cause["stage"] is not None:
        print(f"  the coordinator, at stage {cause['stage']}, counted as dropouts "
              f"{cause['dropouts']} (the noise plan withstands "
              f"D = {cause['max_dropouts']}):")  # fmt: skip
        if cause["earlier_dropouts"]:
            print(f"    contributors {cause['earlier_dropouts']} had left at an earlier stage")
        for i, lacking in sorted(cause["missing_contributors"].items(), key=lambda kv: int(kv[0])):
            print(f"    contributor {i}: aggregators {lacking} did not hold its shares")
        if cause["silent_aggregators"]:
            print(f"    no report reached it from aggregators {cause['silent_aggregators']}")
    losses = _losses(cause["lost_messages"])
    print("  because:" if cause["crashed"] or losses else "  because:       no node crashed "
          "and the network lost nothing (see the transcript, --transcript FILE)")  # fmt: skip
    if cause["crashed"]:
        print(f"    nodes {cause['crashed']} crashed")
    for phrase in losses:
        print(f"    {phrase}")


def _print_summary(obj: dict[str, Any], threshold: int) -> None:
    print(
        f"SDL round: {len(obj['nodes'])} nodes, threshold t = {threshold}, "
        f"{len(obj['aggregators'])} aggregators (coordinator: node {obj['coordinator']})"
    )
    print(
        f"  crashed nodes:  {obj['crashed'] or 'none'}   (scheduled: {obj['dropouts'] or 'none'})"
    )
    print(f"  colluders:      {obj['colluders'] or 'none'}")
    if obj["backups"]:
        by = obj["coordinated_by"]
        took = "" if by in (None, obj["coordinator"]) else f"; node {by} took over and decided"
        print(f"  backups:        {obj['backups']} (in takeover order){took}")
    if obj["byzantine"] or obj["max_byzantine"]:
        named = ", ".join(f"node {n} {k}" for n, k in obj["byzantine"].items()) or "none"
        bound = "within" if obj["within_bounds"] else "BEYOND"
        print(f"  Byzantine:      {named} ({bound} the round's f = {obj['max_byzantine']})")
    print(f"  messages sent:  {obj['messages']}")
    if obj["channels"]["mode"] == "sealed":
        faults = obj["frames_rejected_by_fault"]
        by_fault = ", ".join(f"{n} {fault}" for fault, n in sorted(faults.items()))
        rejected = f"{obj['frames_rejected']} ({by_fault})" if faults else "none"
        print(f"  channels:       sealed, {obj['channels']['suite']}; frames rejected: {rejected}")
    if obj["status"] == "released":
        losses = _losses(obj["lost_messages"])
        print(f"  network losses: {losses[0] if losses else 'none'}")
        for phrase in losses[1:]:
            print(f"                  {phrase}")
        print(f"  released:       the sum over contributors {obj['contributors']}")
        if obj["releases"] > 1:
            print(f"  RELEASES:       {obj['releases']} different values were released in "
                  "this round; their difference")  # fmt: skip
            print("                  exposes contributions under less than the target noise")
        print(f"  released sum:   {obj['released_signed']}  (signed; JSON: released_signed)")
        print(f"  exact:          {'yes' if obj['aggregate_correct'] else 'NO: WRONG RELEASE'}")
        if obj["corrected"]:
            print(f"  corrected:      partial sums of aggregators {obj['corrected']} were wrong; "
                  "robust reconstruction rebuilt the sum without them")  # fmt: skip
        print(
            f"  honest noise:   {obj['honest_noise_variance_exact']} "
            f"(target {obj['target_noise_variance_exact']})"
        )
    else:
        _print_abort(obj)
    if obj["transcript"] == STDOUT:
        print("  transcript:     JSON lines on standard output")
    elif obj["transcript"]:
        print(f"  transcript:     {obj['transcript']}  (check it: sdl verify {obj['transcript']})")
    print(f"  seed:           {obj['seed']}  (repeat the run: --seed {obj['seed']})")


# ---------------------------------------------------------------------- verify


def _cmd_verify(args: argparse.Namespace) -> int:
    try:
        with args.transcript.open(encoding="utf-8") as f:
            verdict = verify_lines(f)
    except (OSError, UnicodeDecodeError) as exc:
        report_error(args.command_prog, f"cannot read {args.transcript}: {exc}")
        return EXIT_USAGE
    if args.json:
        emit(verdict.to_json())
    elif verdict.valid:
        r = verdict.result or {}
        what = (
            f"released the sum over {r.get('contributors')}"
            if r.get("status") == "released"
            else f"aborted ({r.get('reason')})"
        )
        if verdict.byzantine:
            named = ", ".join(f"node {n} {k}" for n, k in sorted(verdict.byzantine.items()))
            who = f"every honest node followed the protocol (declared Byzantine: {named})"
            if r.get("releases", 0) > 1:
                what = f"released {r['releases']} different values: the attack succeeded"
        else:
            who = "every node followed the protocol"
        print(f"{args.transcript}: valid: {who}; the round {what}")
    else:
        print(f"{args.transcript}:{verdict.line}: invalid: {verdict.why}")
    return EXIT_OK if verdict.valid else EXIT_FAILED


# ---------------------------------------------------------------------- schema


def _cmd_schema(args: argparse.Namespace) -> int:
    written = []
    every = schemas()
    check_output_dir(args.directory, label="DIR", files=tuple(sorted(every)))
    for name, schema in sorted(every.items()):
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


# ---------------------------------------------------------------------- declared


_SIMULATE_OPTIONS = (
    Option(
        ("--nodes",), "n: the nodes of the round", type=positive_int, required=True, metavar="N"
    ),
    Option(
        ("--threshold",),
        "t: any t aggregators together learn nothing",
        type=positive_int,
        required=True,
        metavar="T",
    ),
    Option(
        ("--dropouts",),
        "nodes (never the coordinator) that crash while sharing, drawn from --seed",
        type=non_negative_int,
        default=0,
        metavar="N",
    ),
    Option(
        ("--max-dropouts",),
        "D: the dropouts the noise plan must withstand",
        type=non_negative_int,
        metavar="D",
        absent="--dropouts",
    ),
    Option(
        ("--colluders",),
        "T: contributors whose noise the adversary knows (Byzantine contributors first)",
        type=non_negative_int,
        metavar="T",
        absent="--max-byzantine, so 0",
    ),
    Option(
        ("--committee",),
        "aggregate with this many nodes drawn from public randomness",
        type=positive_int,
        metavar="N",
        absent="every node aggregates",
    ),
    Option(
        ("--noise-sources",),
        "only this many contributors add noise, the committee's members first; needs "
        "--precover (spec/09-protocol.md#noise-sources)",
        type=positive_int,
        metavar="N",
        absent="every contributor",
    ),
    Option(
        ("--receivers",),
        "only this many nodes reconstruct, the coordinator first",
        type=positive_int,
        metavar="N",
        absent="every node",
    ),
    Option(
        ("--precover",),
        "size the initial noise for D dropouts, so no top-up stage is ever needed "
        "(spec/07-noise-plan.md#pre-covering)",
        flag=True,
    ),
    Option(
        ("--min-contributors",),
        "the smallest contributor set an aggregator accepts",
        type=positive_int,
        metavar="N",
        absent="max(2, n − D)",
    ),
    Option(("--dimension",), "update length", type=positive_int, default=8, metavar="N"),
    Option(("--packing",), "k: secrets per Shamir polynomial", type=positive_int, default=1),
    Option(
        ("--mechanism",),
        "the integer noise each contributor adds",
        choices=("skellam", "dgauss"),
        default="skellam",
    ),
    Option(
        ("--target-variance",),
        "σ*²: the honest noise every release must carry",
        type=_positive_fraction,
        default=Fraction(1000),
        metavar="VAR",
    ),
    Option(("--field",), "the prime field", choices=sorted(FIELDS), default="Field31"),
    Option(
        ("--drop",),
        "probability that the network loses a message",
        type=_fraction_in_unit,
        default=Fraction(0),
        metavar="P",
    ),
    Option(
        ("--late",),
        "probability that a message arrives after its deadline",
        type=_fraction_in_unit,
        default=Fraction(0),
        metavar="P",
    ),
    Option(
        ("--duplicate",),
        "probability that a message is delivered twice",
        type=_fraction_in_unit,
        default=Fraction(0),
        metavar="P",
    ),
    Option(
        ("--crash",),
        "crash NODE once it has sent SENDS messages (repeatable)",
        type=_crash,
        repeat=True,
        metavar="NODE:SENDS",
        absent="only the --dropouts crash",
    ),
    Option(
        ("--tamper",),
        "aggregator NODE alters its partial sums (repeatable)",
        type=positive_int,
        repeat=True,
        metavar="NODE",
        absent="no aggregator tampers",
    ),
    Option(
        ("--failover",),
        "N backup coordinators, the next aggregators in draw order, take over in turn when "
        "the coordinator crashes (a view change, spec/09-protocol.md#failover); adds the "
        "aggregators' echo of the final decision",
        type=non_negative_int,
        default=0,
        metavar="N",
    ),
    Option(
        ("--max-byzantine",),
        "f: the Byzantine nodes, in any role, the round withstands; f >= 1 adds the "
        "aggregators' echo of the final decision (spec/09-protocol.md#byzantine-nodes) and "
        "needs --channels sealed",
        type=non_negative_int,
        default=0,
        metavar="F",
    ),
    Option(
        ("--byzantine",),
        "nodes that deviate, KIND:NODE[,KIND:NODE...] (repeatable), KIND one of "
        + ", ".join(BYZANTINE_KINDS)
        + " (spec/12-transcripts.md#byzantine-nodes)",
        type=_byzantine,
        repeat=True,
        metavar="KIND:NODE",
        absent="every node follows the protocol",
    ),
    Option(
        ("--channels",),
        "seal every message between two nodes for its recipient, under a channel key "
        "its sender delivered signed (spec/14-channels.md), or hand messages over in the clear",
        choices=("sealed", "plain"),
        default="sealed",
    ),
    Option(
        ("--suite",),
        "the sealed channels' HPKE suite",
        choices=tuple(SUITES),
        default=DEFAULT_SUITE.name,
        metavar="NAME",
        shown_default=f"{DEFAULT_SUITE.name}; one of {', '.join(SUITES)}",
    ),
    Option(
        ("--tamper-frames",),
        "probability that the network injects an attacked copy of a frame (flipped bit, "
        "readdressed, replayed from another round, stage or session, forged sender); the "
        "channel rejects each one",
        type=_fraction_in_unit,
        default=Fraction(0),
        metavar="RATE",
    ),
    Option(
        ("--seed",),
        "1 to 64 hex digits for a reproducible (not private) run",
        metavar="HEX",
        absent="fresh OS randomness",
    ),
    Option(
        ("--transcript",),
        "write the transcript (JSON lines) to FILE, for sdl verify; - writes it to stdout "
        "and sends the report (or the --json object) to stderr, so stdout is only JSON "
        "lines. FILE must be new or a regular file in a writable directory: a symlink, "
        "FIFO, device or directory is refused (exit 2) before the round runs",
        metavar="FILE",
        absent="no transcript",
    ),
    JSON,
)

COMMANDS = (
    Command(
        name="simulate",
        summary="run one round of the protocol over a simulated, adversarial network",
        description="""
            Run one round of secure aggregation with distributed DP: every node shares its
            (noisy, encoded) update with the aggregators, the coordinator fixes the
            contributor set, survivors top up their noise when nodes drop, and every node
            rebuilds the released sum from the aggregators' partial sums.

            The run is deterministic given --seed: who drops, who colludes, the updates, the
            noise and the network's behaviour all come from it. A released sum is checked,
            exactly in the field, against the sum of what the contributors shared; the honest
            noise against the target. The report gives the sum both as field elements
            (JSON "released") and as signed integers (JSON "released_signed"). When the round
            aborts, the report says why: which nodes crashed, which messages the network lost
            or delayed past their timers, and which contributors the coordinator therefore
            counted as dropouts (JSON "abort_cause").

            By default every message between two nodes travels as a sealed frame, encrypted
            and authenticated under a channel key its sender delivered at the session's
            setup, HPKE-sealed to the recipient and signed (spec/14-channels.md).
            With --tamper-frames the network also injects attacked copies of frames; the
            recipients' channels reject each one, the report counts them by fault (JSON
            "frames_rejected_by_fault"), and the round's messages and result are the same at
            every rate. The keys come from --seed, so such a run is reproducible and not
            private.
        """,
        options=_SIMULATE_OPTIONS,
        examples=(
            Example(
                "sdl simulate --nodes 7 --threshold 2 --dropouts 1 --seed 1 "
                "--transcript /tmp/run.jsonl",
                "one node crashes; the survivors top up their noise; the sum is released",
            ),
            Example(
                "sdl simulate --nodes 20 --threshold 6 --dropouts 3 --colluders 2 --seed 1 --json",
                "a larger round, as one JSON object",
            ),
            Example(
                "sdl simulate --nodes 7 --threshold 2 --max-dropouts 2 --seed 6 "
                "--drop 1/50 --late 1/50 --duplicate 1/10",
                "lossy network: 2 contributors' shares come late, the rest top up; released",
            ),
            Example(
                "sdl simulate --nodes 7 --threshold 2 --max-dropouts 2 --seed 8 "
                "--drop 1/50 --late 1/50 --duplicate 1/10",
                "same network, seed 8: 3 dropouts > D = 2, so it aborts and names the losses",
            ),
            Example(
                "sdl simulate --nodes 7 --threshold 2 --seed 1 --tamper-frames 1/2",
                "half the frames get an attacked copy; each is rejected; the same sum is released",
            ),
            Example(
                "sdl simulate --nodes 7 --threshold 2 --max-dropouts 1 --seed 2 --failover 2 "
                "--crash 1:0",
                "the coordinator (node 1) crashes; a backup takes over after a view timer",
            ),
            Example(
                "sdl simulate --nodes 7 --threshold 2 --max-dropouts 1 --precover --seed 2 "
                "--byzantine equivocate:1",
                "f = 0: the coordinator (node 1) sends two final decisions; two sums are released",
            ),
            Example(
                "sdl simulate --nodes 7 --threshold 2 --max-dropouts 1 --precover --seed 2 "
                "--max-byzantine 1 --byzantine equivocate:1",
                "f = 1: the aggregators' echoes expose it; aborted (coordinator-equivocation)",
            ),
        ),
        notes="""
            Exit status: 0 if the round released correctly or aborted cleanly; 1 on a wrong
            release, or on two releases or disagreeing receivers while the Byzantine nodes
            are within --max-byzantine (a bug); 2 on bad input. Beyond the bound, two
            releases are the attack succeeding, shown with exit 0.
        """,
        run=_cmd_simulate,
    ),
    Command(
        name="verify",
        summary="replay a transcript through the state machines and check every step",
        description="""
            Replay a transcript (from sdl simulate or another implementation) through SDL's
            state machines: every message must be exactly what the sender's machine sends,
            every delivery a message that was sent, every timer one that was set, and the
            result what the final states give. In a sealed transcript the session keys must
            verify under the roster, each frame's recorded size must be right, and each of the
            coordinator's decisions and aborts must carry its signature. Exit 0 only for a
            valid run; otherwise the
            first offending line is named, with why (exit 1); exit 2 if the file cannot be
            read.
        """,
        options=(
            Option(
                ("transcript",),
                "the transcript, JSON lines (spec/12-transcripts.md)",
                type=Path,
                metavar="TRANSCRIPT",
            ),
            JSON,
        ),
        examples=(
            Example("sdl verify /tmp/run.jsonl", "check the transcript sdl simulate wrote"),
            Example("sdl verify /tmp/run.jsonl --json", "the verdict as one JSON object"),
        ),
        run=_cmd_verify,
    ),
    Command(
        name="schema",
        summary="write the JSON Schemas of the protocol's messages",
        description="""
            Write one JSON Schema per message kind (message-<kind>.schema.json) and one for
            any message (message.schema.json) into DIR. The committed copies live in
            spec/schemas/; a test fails if they are stale.
        """,
        options=(
            Option(("directory",), "where to write the schemas", type=Path, metavar="DIR"),
            JSON,
        ),
        examples=(
            Example("sdl schema /tmp/sdl-schemas", "write the schemas into /tmp/sdl-schemas"),
            Example("sdl schema /tmp/sdl-schemas --json", "the same; the paths as JSON"),
        ),
        run=_cmd_schema,
    ),
)
