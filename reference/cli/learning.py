"""The learning subcommands of ``sdl``: run (and evaluate).

Spec: spec/13-learning.md
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reference.cli.types import number_where
from reference.common.seeds import fresh_seed, seed_from_hex

EXIT_OK = 0


_positive_float = number_where(float, "a positive finite number", lambda v: v > 0)
_unit_interval = number_where(float, "a number in (0, 1)", lambda v: 0 < v < 1)
_rate = number_where(float, "a number in (0, 1]", lambda v: 0 < v <= 1)
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
    from reference.learning.outputs import write_outputs  # noqa: PLC0415

    seed_text = args.seed if args.seed is not None else fresh_seed().hex()
    cfg = JobConfig(
        seed=seed_from_hex(seed_text),
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
    written = write_outputs(result, args.out)
    obj = {**result.to_json(), "outputs": [str(p) for p in written], "seed_text": seed_text}
    if args.json:
        obj.pop("history")
        print(json.dumps(obj, indent=2, sort_keys=True))
    else:
        _print_table(obj, written)
    return EXIT_OK


def _progress(total: int, *, quiet: bool) -> Any:
    if quiet:
        return None
    from tqdm import tqdm  # noqa: PLC0415

    return tqdm(total=total, desc="rounds", unit="round", file=sys.stderr, leave=False)


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
        ("seed", f"{obj['seed_text']} (repeat: --seed {obj['seed_text']})"),
    ]
    width = max(len(k) for k, _ in rows)
    print("SDL decentralized learning\n")
    for k, v in rows:
        print(f"  {k:<{width}}  {v}")
    print()
    for p in written:
        print(f"  wrote {p}")


def add_parsers(
    sub: Any, *, positive: Callable[[str], int], non_negative: Callable[[str], int]
) -> None:
    """Add ``run`` to the ``sdl`` parser."""
    run = sub.add_parser(
        "run",
        help="train a model across nodes with MPC and distributed DP (the main job)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.dedent(
            """\
            Several nodes hold private data and train one model together with DP-SGD.
            Every round, each node clips its per-example gradients, encodes them into
            the field, and (with --trust distributed, the default) adds its share of the
            noise and Shamir-shares the result; the round runs through SDL's protocol
            state machines, and only the noisy sum is revealed. The noise is calibrated
            so that the planned rounds meet --epsilon; the reported ε is the one
            actually spent (dropouts counted).

            With no options it trains softmax regression on the embedded digits
            (1797 8x8 images) over 10 nodes at ε = 2, δ = 1e-5, record level, Skellam
            noise, in well under a minute. It shows a progress bar, prints a table,
            and writes run.json and run.png into --out."""
        ),
        epilog=textwrap.dedent(
            """\
            examples:
              sdl run
              sdl run --seed 1 --json
              sdl run --seed 1 --trust central --json      same seed, a trusted aggregator
              sdl run --trust local --epsilon 1            every node noises alone
              sdl run --dropout-rate 0.1 --mechanism dgauss
              sdl run --data my.csv --model mlp --partition dirichlet:0.5"""
        ),
    )
    run.add_argument("--nodes", type=positive, default=10, help="nodes (default 10)")
    run.add_argument("--rounds", type=positive, default=60, help="training rounds (default 60)")
    run.add_argument("--epsilon", type=_positive_float, default=2.0, help="target ε (default 2)")
    run.add_argument("--delta", type=_unit_interval, default=1e-5, help="δ (default 1e-5)")
    run.add_argument("--mechanism", choices=("skellam", "dgauss"), default="skellam")
    run.add_argument(
        "--trust",
        choices=("distributed", "central", "local", "none"),
        default="distributed",
        help="who adds the noise: every node a share, revealed only as a secure sum "
        "(distributed, SDL); a trusted aggregator (central); every node all of it "
        "(local); nobody (none)",
    )
    run.add_argument(
        "--unit",
        choices=("record", "node"),
        default="record",
        help="what privacy protects: one record, or all of a node's data",
    )
    run.add_argument(
        "--threshold",
        type=positive,
        default=2,
        help="t: any t nodes together learn nothing (default 2)",
    )
    run.add_argument(
        "--colluders",
        type=non_negative,
        default=0,
        help="T: nodes whose noise the plan must not count (default 0)",
    )
    run.add_argument(
        "--dropout-rate",
        type=_dropout_rate,
        default=0.0,
        help="probability that a node drops out of a round (default 0)",
    )
    run.add_argument("--model", choices=("softmax", "mlp"), default="softmax")
    run.add_argument(
        "--partition",
        type=_partition,
        default="iid",
        help="iid (default) or dirichlet:ALPHA (non-IID; small ALPHA is skewed)",
    )
    run.add_argument(
        "--data",
        type=Path,
        metavar="FILE",
        help="your own CSV (header, a 'label' column) or NPZ (arrays x, y)",
    )
    run.add_argument(
        "--sampling-rate",
        type=_rate,
        default=1.0,
        help="probability that a record is used in a round (default 1: every record)",
    )
    run.add_argument(
        "--clip",
        type=_positive_float,
        default=2.0,
        help="L2 clip of each per-example gradient (default 2)",
    )
    run.add_argument(
        "--learning-rate",
        type=_positive_float,
        default=4.0,
        help="step size on the mean gradient (default 4)",
    )
    run.add_argument(
        "--committee",
        type=positive,
        default=None,
        help="aggregators per round, drawn from public randomness (default min(nodes, 10))",
    )
    run.add_argument(
        "--measure-bytes",
        action="store_true",
        help="count the bytes of every protocol message (slower)",
    )
    run.add_argument("--seed", metavar="HEX", help="hex seed (default: fresh OS randomness)")
    run.add_argument(
        "--out",
        type=Path,
        default=Path("sdl-run"),
        help="directory for run.json and run.png (default ./sdl-run)",
    )
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument("--json", action="store_true", help="print one JSON object")
    run.set_defaults(func=_cmd_run)
