"""``sdl run``: the decentralized-learning job.

Spec: spec/13-learning.md
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from reference.cli.declare import EXIT_FAILED, EXIT_OK, JSON, Command, Example, Option
from reference.cli.types import non_negative_int, number_where, positive_int
from reference.common.paths import OutputPathError
from reference.common.seeds import fresh_seed, seed_from_hex

positive_float = number_where(float, "a positive finite number", lambda v: v > 0)
# Every noisy run draws at least twice from a table sampler, each draw within 2^-64 of
# exact, and charges (1 + e^ε)·s > 2·2^-63 = 2^-62 of δ to that distance s
# (spec/08-accounting.md#table-sampler-distance): a smaller δ, or an ε with
# (1 + e^ε)·2^-63 >= 1 (ε > 63·ln 2 = 43.67), leaves no δ for the mechanism.
_run_delta = number_where(
    float,
    "a number in [2^-62, 1): every run charges more than 2^-62 of δ to the table samplers",
    lambda v: 2.0**-62 <= v < 1,
)
_run_epsilon = number_where(
    float,
    "a number in (0, 43]: above 43, the table samplers' charge (1 + e^ε)·2^-63 exceeds any δ",
    lambda v: 0 < v <= 43,
)
rate_in_unit = number_where(float, "a number in (0, 1]", lambda v: 0 < v <= 1)
_dropout_rate = number_where(float, "a number in [0, 1)", lambda v: 0 <= v < 1)


def _partition(text: str) -> str:
    if text == "iid":
        return text
    head, _, alpha = text.partition(":")
    try:
        ok = head == "dirichlet" and float(alpha) > 0
    except ValueError:
        ok = False
    if not ok:
        raise argparse.ArgumentTypeError(
            f"expected iid or dirichlet:ALPHA with ALPHA > 0 (e.g. dirichlet:0.5); got {text!r}"
        )
    return text


def _cmd_run(args: argparse.Namespace) -> int:
    from reference.learning.job import JobConfig, RoundLog, run_job  # noqa: PLC0415
    from reference.learning.outputs import check_outputs, write_outputs  # noqa: PLC0415

    check_outputs(args.out)  # a bad --out exits 2 now, not after the whole run
    # The public seed is written either way; without --seed every node's secret root is
    # drawn from the OS, with --seed the roots come from the seed (a test mode, not private).
    seed_text = args.seed if args.seed is not None else fresh_seed().hex()
    cfg = JobConfig(
        seed=seed_from_hex(seed_text),
        deterministic=args.seed is not None,
        nodes=args.nodes,
        rounds=args.rounds,
        epsilon=args.epsilon,
        delta=args.delta,
        mechanism=args.mechanism,
        trust=args.trust,
        unit=args.unit,
        threshold=args.threshold,
        colluders=args.colluders,
        dropout_rate=args.dropout_rate,
        model=args.model,
        partition=args.partition,
        data=args.data,
        sampling_rate=args.sampling_rate,
        clip=args.clip,
        learning_rate=args.learning_rate,
        measure_bytes=args.measure_bytes,
        committee=args.committee,
        max_dropouts=args.max_dropouts,
        precover=args.precover,
        failover=args.failover,
    )
    bar = _progress(cfg.rounds, quiet=args.quiet)

    def on_round(log: RoundLog) -> None:
        if bar is not None:
            bar.set_postfix(accuracy=f"{log.accuracy:.3f}", epsilon=f"{log.epsilon:.2f}")
            bar.update(1)

    try:
        result = run_job(cfg, on_round=on_round)
    finally:
        if bar is not None:
            bar.close()
    # What was computed is printed even when the files cannot be written (disk full,
    # permissions changed during the run); the error follows, in one line, and exit 1.
    error = None
    try:
        written = write_outputs(result, args.out)
    except (OSError, OutputPathError) as exc:
        written = []
        error = f"cannot write run.json and run.png into --out {args.out}: {_why(exc)}"
    obj = {**result.to_json(), "outputs": [str(p) for p in written], "seed_text": seed_text}
    if error is not None:
        obj["outputs_error"] = error
    if args.json:
        obj.pop("history")
        print(json.dumps(obj, indent=2, sort_keys=True))
    else:
        _print_table(obj, written)
    if error is not None:
        sys.stdout.flush()
        print(f"sdl run: error: {error}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _why(exc: OSError | OutputPathError) -> str:
    """One line: the OS's reason and the file it names, or our own message."""
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror} ({exc.filename})" if exc.filename else exc.strerror
    return str(exc)


def _progress(total: int, *, quiet: bool) -> Any:
    if quiet:
        return None
    from tqdm import tqdm  # noqa: PLC0415

    return tqdm(total=total, desc="rounds", unit="round", file=sys.stderr, leave=False)


def _seed_rows(obj: dict[str, Any]) -> list[tuple[str, str]]:
    """What the table says of the seeds: public seed, and where the node secrets came from."""
    if obj["deterministic"]:
        return [
            ("seed", f"{obj['seed_text']} (repeat: --seed {obj['seed_text']})"),
            (
                "privacy",
                "NONE: deterministic test mode; every node's secrets (sampling, rounding, "
                "shares, noise) derive from this seed, so anyone holding it can remove the noise",
            ),
        ]
    return [
        (
            "public seed",
            f"{obj['seed_text']} (data split, partition, model init, committee; written)",
        ),
        (
            "node secrets",
            "drawn from the OS for this run, held in memory only, not written: "
            "the run cannot be repeated",
        ),
    ]


def _print_table(obj: dict[str, Any], written: list[Path]) -> None:
    rows = [
        ("data", f"{obj['dataset']} ({obj['train_records']} train / {obj['test_records']} test)"),
        ("nodes", f"{obj['nodes']} ({obj['partition']} split), threshold t = {obj['threshold']}"),
        ("trust", obj["trust"]),
        ("mechanism", f"{obj['mechanism']}, noise parameter σ*² = {obj['noise_variance']:g}"),
        ("privacy unit", obj["unit"]),
        ("model", obj["model"]),
        ("rounds", f"{obj['released_rounds']} released of {obj['rounds']}"),
        ("test accuracy", f"{obj['accuracy']:.4f}"),
        (
            "ε spent",
            f"{obj['epsilon']:.4f} at δ = {obj['delta']:g} (target {obj['target_epsilon']:g})",
        ),
        ("time", f"{obj['seconds']:.1f} s"),
        *_seed_rows(obj),
    ]
    width = max(len(k) for k, _ in rows)
    print("SDL decentralized learning\n")
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")
    print()
    for p in written:
        print(f"  wrote {p}")


DESCRIPTION = """
    Several nodes hold private data and train one model together with DP-SGD. Every round,
    each node clips its per-example gradients, encodes them into the field, and (with
    --trust distributed, the default) adds its share of the noise and Shamir-shares the
    result; the round runs through SDL's protocol state machines, and only the noisy sum is
    revealed. The noise is calibrated so that the planned rounds meet --epsilon; the
    reported ε is the one actually spent (dropouts counted).

    With no options it trains softmax regression on the embedded digits (1797 8x8 images)
    over 10 nodes at ε = 2, δ = 1e-5, record level, Skellam noise, in well under a minute.
    It shows a progress bar, prints a table, and writes run.json (every round's accuracy,
    ε, timings, messages and bytes sent in the binary wire form) and run.png into --out.
    --data FILE trains on your own CSV or NPZ instead.

    A run has a public seed and, per node, secrets. The public seed fixes the data split
    and partition, the model's initial parameters, the committees, the rotation and the
    simulated dropouts and network; it is printed and written to run.json. Each node's
    secrets (its record sampling, encoding rounding, Shamir shares and noise) come from a
    32-byte root of its own. Without --seed the public seed is drawn fresh and every
    node's root is drawn from the OS, held in memory only, and never printed or written:
    the run is private and cannot be repeated. With --seed the roots are derived from the
    seed: the run repeats exactly (run.json: "deterministic": true) and is NOT private,
    since anyone holding the seed can regenerate the noise and subtract it. Use --seed for
    tests and examples only. run.json carries released_sha256 (over the released sums)
    and model_sha256 (over the final parameters) to compare runs by.
"""

_MODEL_OPTIONS = (
    Option(("--nodes",), "nodes holding data", type=positive_int, default=10, metavar="N"),
    Option(("--rounds",), "training rounds", type=positive_int, default=60, metavar="R"),
    Option(
        ("--epsilon",),
        "target ε over all rounds, at most 43",
        type=_run_epsilon,
        default=2.0,
        metavar="EPS",
    ),
    Option(
        ("--delta",),
        "δ of the (ε, δ) guarantee, at least 2^-62 (the table samplers' distance is charged "
        "to it: a run with many rounds, nodes or coordinates needs more)",
        type=_run_delta,
        default=1e-5,
        metavar="DELTA",
    ),
    Option(
        ("--mechanism",), "the noise distribution", choices=("skellam", "dgauss"), default="skellam"
    ),
    Option(
        ("--trust",),
        "who adds the noise: every node a share, revealed only as a secure sum "
        "(distributed, SDL); a trusted aggregator (central); every node all of it "
        "(local); nobody (none)",
        choices=("distributed", "central", "local", "none"),
        default="distributed",
    ),
    Option(
        ("--unit",),
        "what privacy protects: one record, or all of a node's data",
        choices=("record", "node"),
        default="record",
    ),
    Option(
        ("--threshold",),
        "t: any t nodes together learn nothing",
        type=positive_int,
        default=2,
        metavar="T",
    ),
    Option(
        ("--colluders",),
        "T: nodes whose noise the plan must not count",
        type=non_negative_int,
        default=0,
        metavar="T",
    ),
    Option(
        ("--dropout-rate",),
        "probability that a node drops out of a round",
        type=_dropout_rate,
        default=0.0,
        metavar="P",
    ),
    Option(("--model",), "the model trained", choices=("softmax", "mlp"), default="softmax"),
    Option(
        ("--partition",),
        "how records are split: iid, or dirichlet:ALPHA (non-IID; small ALPHA is skewed)",
        type=_partition,
        default="iid",
        metavar="SPLIT",
    ),
    Option(
        ("--data",),
        "your own CSV (header, a 'label' column) or NPZ (arrays x, y)",
        type=Path,
        metavar="FILE",
        absent="the embedded digits",
    ),
    Option(
        ("--sampling-rate",),
        "probability that a record is used in a round",
        type=rate_in_unit,
        default=1.0,
        metavar="Q",
        shown_default="1: every record",
    ),
    Option(
        ("--clip",),
        "L2 clip of each per-example gradient",
        type=positive_float,
        default=2.0,
        metavar="C",
    ),
    Option(
        ("--learning-rate",),
        "step size on the mean gradient",
        type=positive_float,
        default=4.0,
        metavar="LR",
    ),
    Option(
        ("--committee",),
        "aggregators per round, drawn from public randomness",
        type=positive_int,
        metavar="K",
        absent="min(nodes, 10)",
    ),
    Option(
        ("--max-dropouts",),
        "dropouts each round's noise plan withstands (D); a round that loses more aborts",
        type=non_negative_int,
        metavar="D",
        absent="from --dropout-rate: 0 at rate 0",
    ),
    Option(
        ("--precover",),
        "every node adds from the start the noise that covers D dropouts: no top-up stages",
        flag=True,
    ),
    Option(
        ("--failover",),
        "N backup coordinators per round, the next committee members drawn: when the "
        "coordinator crashes, the first live backup takes over and the round still releases "
        "(spec/09-protocol.md#failover)",
        type=non_negative_int,
        default=0,
        metavar="N",
    ),
)

_RUN_OPTIONS = (
    Option(
        ("--measure-bytes",),
        "kept for older scripts; it changes nothing: every round's bytes are counted "
        "(binary wire form) whether it is given or not",
        flag=True,
    ),
    Option(
        ("--seed",),
        "1 to 64 hex digits: a deterministic test mode; the nodes' secrets derive from "
        "this public seed, so the run repeats exactly and is not private",
        metavar="HEX",
        absent="a fresh public seed; node secrets drawn from the OS and not written",
    ),
    Option(
        ("--out",),
        "directory for run.json and run.png, replaced as a pair; checked before training "
        "(a file, a read-only directory or a path below a file exits 2); if saving fails at "
        "the end the result is still printed (JSON: outputs_error) and the exit status is 1",
        type=Path,
        default=Path("sdl-run"),
        metavar="DIR",
        shown_default="./sdl-run",
    ),
    Option(("--quiet",), "no progress bar", flag=True),
    JSON,
)

COMMANDS = (
    Command(
        name="run",
        summary="train a model across nodes with MPC and distributed DP (the main job)",
        description=DESCRIPTION,
        options=(*_MODEL_OPTIONS, *_RUN_OPTIONS),
        examples=(
            Example("sdl run", "the default job: a progress bar, then a table"),
            Example(
                "sdl run --seed 1 --rounds 5 --json --quiet", "short, reproducible (not private)"
            ),
            Example("sdl run --seed 1 --trust central --json", "a trusted aggregator"),
            Example("sdl run --trust local --epsilon 1", "every node noises alone"),
            Example("sdl run --dropout-rate 0.1 --mechanism dgauss", "dropouts, dgauss noise"),
            Example("sdl run --model mlp --partition dirichlet:0.5", "an MLP, non-IID split"),
        ),
        run=_cmd_run,
    ),
)
