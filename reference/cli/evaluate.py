"""The ``sdl evaluate`` subcommand: run the evaluation grid and write its report.

Spec: spec/13-learning.md#evaluation
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from reference.cli.declare import JSON, Command, Example, Option
from reference.cli.types import positive_int
from reference.common.paths import check_output_dir

EXIT_OK = 0
#: A fresh folder in the current directory, like ``sdl run``'s ``sdl-run``.
DEFAULT_OUT = Path("sdl-evaluate")
#: The committed evaluation: written only when asked for with ``--out``.
COMMITTED_OUT = Path("reference/evaluation")


def _cmd_evaluate(args: argparse.Namespace) -> int:
    check_output_dir(args.out, label="--out")  # before the grid: it can run for minutes
    from reference.learning import evaluate  # noqa: PLC0415

    started = time.perf_counter()
    plan = evaluate.QUICK if args.quick else evaluate.FULL
    if args.seeds is not None:
        plan = evaluate.with_seeds(plan, args.seeds)
    runs = evaluate.grid(plan)
    bar = _progress(len(runs), quiet=args.quiet)

    def on_done(record: dict[str, Any]) -> None:
        if bar is not None:
            c = record["config"]
            bar.set_postfix_str(
                f"{c.get('trust', 'distributed')} ε={c.get('epsilon', 2.0):g} "
                f"acc={record['result']['accuracy']:.3f}"
            )
            bar.update(1)

    try:
        outcome = evaluate.run_grid(runs, out=args.out, workers=args.workers, on_done=on_done)
    finally:
        if bar is not None:
            bar.close()
    notes = []
    if args.quick:
        notes.append(
            "Quick grid (`--quick`): fewer ε points, seeds, rounds and cost points (listed "
            "under Configuration). The targets are meant for the full grid; here they only "
            "show the trend."
        )
    if args.seeds is not None:
        notes.append(f"Seeds per cell set by `--seeds {args.seeds}`.")
    wall: float | None = time.perf_counter() - started
    if outcome.ran == 0:
        wall = None  # every run came from results.jsonl: this invocation only rewrote the report
    elif outcome.skipped:
        notes.append(
            f"This invocation ran {outcome.ran} of the {len(runs)} runs in {wall:.0f} s; the "
            f"other {outcome.skipped} were already in {evaluate.RESULTS_FILE}, from earlier "
            "invocations."
        )
        wall = None
    report = evaluate.write_report(args.out, wall_seconds=wall, notes=notes, runs=runs, plan=plan)
    obj = {
        "out": str(args.out),
        "report": str(report),
        "runs": len(runs),
        "ran": outcome.ran,
        "skipped": outcome.skipped,
        "seconds": time.perf_counter() - started,
        # Every run's nodes' secrets derive from its seed: reproducible, not private.
        "deterministic": True,
    }
    if args.json:
        print(json.dumps(obj, indent=2, sort_keys=True))
    else:
        print(
            f"{outcome.ran} runs done, {outcome.skipped} already in "
            f"{args.out / evaluate.RESULTS_FILE}; wrote {report} in {obj['seconds']:.0f} s "
            "(deterministic seeds: reproducible, not private)"
        )
    return EXIT_OK


def _progress(total: int, *, quiet: bool) -> Any:
    if quiet:
        return None
    from tqdm import tqdm  # noqa: PLC0415

    return tqdm(total=total, desc="runs", unit="run", file=sys.stderr)


DESCRIPTION = """
    Run a grid of `sdl run` jobs and write one report (report.md, PNG plots):

      1. accuracy against ε ∈ {0.5, 1, 2, 4, 8} for the trust models none,
         central, distributed (SDL) and local, digits, 10 nodes, IID, 5 seeds;
      2. the same at the non-IID split dirichlet:0.5 (3 seeds);
      3. node-level privacy, 10 nodes (digits) and 100 nodes (synthetic data);
      4. cost per round: time per phase and bytes sent per node against the
         number of nodes and the model;
      5. dropouts 0, 10%, 30%: accuracy, the realized ε and the released rounds,
         without and with 2 backup coordinators (failover);
      plus SDL's accuracy targets as measured PASS/FAIL lines.

    Everything goes into --out, by default a folder sdl-evaluate in the current directory
    (created if missing). The committed evaluation in reference/evaluation is rewritten only
    when you name it: --out reference/evaluation.

    Every finished run is appended to OUT/results.jsonl, keyed by its config, with the
    versions it was computed with (of SDL, of the evaluation, of the protocol): run the same
    command again after an interruption (Ctrl-C stops the workers; the finished runs stay)
    and it resumes, skipping the runs already there. A run recorded with other versions is
    dropped and run again, never mixed with current ones. The report is rebuilt from that
    file alone, names the versions, and describes the grid that was asked for (the quick
    one with --quick). Seeds are derived from a fixed evaluation seed and every run
    is deterministic (its nodes' secrets derive from its seed, as with sdl run --seed), so
    the numbers repeat exactly (timings aside); these are deterministic seeds:
    reproducible, not private. The full grid (180 runs) takes about 35 minutes with 2
    workers on a 2-core machine; --quick (32 runs) took about a minute (66 s) there.
"""

COMMANDS = (
    Command(
        name="evaluate",
        summary="run the evaluation grid (accuracy vs ε per trust model, cost, dropouts)",
        description=DESCRIPTION,
        options=(
            Option(
                ("--quick",),
                "a reduced grid: ε ∈ {1, 2}, 2 seeds, 20 rounds, fewer cost points",
                flag=True,
            ),
            Option(
                ("--out",),
                "where results.jsonl, report.md and the plots go; "
                f"--out {COMMITTED_OUT} refreshes the committed report",
                type=Path,
                default=DEFAULT_OUT,
                metavar="DIR",
                shown_default=f"./{DEFAULT_OUT}",
            ),
            Option(
                ("--workers",),
                "runs in parallel, one process each",
                type=positive_int,
                default=2,
                metavar="N",
            ),
            Option(
                ("--seeds",),
                "seeds per cell for every accuracy grid",
                type=positive_int,
                metavar="K",
                absent="5; 3 for node level and non-IID; 2 with --quick",
            ),
            Option(("--quiet",), "no progress bar", flag=True),
            JSON,
        ),
        examples=(
            Example("sdl evaluate --quick", "the reduced grid into ./sdl-evaluate"),
            Example("sdl evaluate --quick --out /tmp/eval", "the same, elsewhere"),
            Example("sdl evaluate --seeds 2 --workers 1", "2 seeds per cell, one process"),
            Example(
                f"sdl evaluate --out {COMMITTED_OUT}", "the full grid: refresh the committed report"
            ),
        ),
        run=_cmd_evaluate,
    ),
)
