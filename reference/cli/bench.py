"""The benchmark subcommands of ``sdl``: bench shamir|accounting|round.

Spec: spec/09-protocol.md
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from pathlib import Path
from typing import Any

from protocol.channels import DEFAULT_SUITE, SUITES
from protocol.field import FIELDS
from reference.bench import round as br
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
from reference.cli.noise import MAX_ROUNDS, MIN_NOISE
from reference.cli.types import (
    float_where,
    int_at_least,
    non_negative_int,
    positive_int,
    positive_rational,
    power_of_ten,
    rate_in_unit,
)
from reference.common.paths import check_output_dir

#: Most coordinates ``bench shamir`` shares: 10^7 answers in about 13 s at n = 10.
MAX_SHAMIR_DIMENSION = 10**7
#: Most holders ``bench shamir`` shares to.
MAX_SHAMIR_NODES = 1000
#: Most elements of one n × d share matrix: the run holds a few of them (measured: 0.64 GB
#: peak at n·d = 2·10^7, 2.9 GB at 10^8).
MAX_SHAMIR_ELEMENTS = 10**8
#: Most timed runs per step, in both micro-benchmarks.
MAX_REPEATS = 100
#: Largest noise multiplier the accountant takes: its square must be a normal float
#: (protocol/accounting.py refuses z outside [1e-150, 1e150]).
MAX_NOISE = 1e150


def _short(x: float) -> str:
    """A power of ten as a help text writes it: ``1e-6``, ``1e150``."""
    mantissa, exponent = f"{x:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


_noise_multiplier = float_where(
    f"a number in [{_short(MIN_NOISE)}, {_short(MAX_NOISE)}] (less noise gives no privacy)",
    lambda v: MIN_NOISE <= v <= MAX_NOISE,
)

# ---------------------------------------------------------------------- bench shamir


def _cmd_bench_shamir(args: argparse.Namespace) -> int:
    from reference.bench.micro import bench_shamir  # noqa: PLC0415

    if args.threshold + 1 > args.nodes:
        report_error(
            args.command_prog,
            f"--nodes must be >= --threshold + 1 = {args.threshold + 1}; got {args.nodes}",
        )
        return EXIT_USAGE
    if args.nodes * args.dimension > MAX_SHAMIR_ELEMENTS:
        report_error(
            args.command_prog,
            f"--nodes × --dimension must be <= {power_of_ten(MAX_SHAMIR_ELEMENTS)} (the share "
            f"matrix, a few GB at most); got {args.nodes} × {args.dimension} = "
            f"{args.nodes * args.dimension}",
        )
        return EXIT_USAGE

    def progress(msg: str) -> None:
        if not args.json:
            print(f"  … {msg}", file=sys.stderr, flush=True)

    result = bench_shamir(
        field_name=args.field,
        nodes=args.nodes,
        threshold=args.threshold,
        dimension=args.dimension,
        repeats=args.repeats,
        galois_dimension=args.galois_dimension,
        progress=progress,
    )
    if args.json:
        _emit(result.as_json())
        return EXIT_OK
    r = result.ratios()
    print(
        f"\nShamir over {result.field}: n = {result.nodes} holders, t = {result.threshold}, "
        f"d = {result.dimension:,} (median of {result.share.repeats} runs)"
    )
    rows = [
        ("share one vector (XOF randomness + product)", result.share.median),
        ("  of which the exact product alone", result.share_product_only.median),
        ("reconstruct from t + 1 shares", result.reconstruct_t_plus_1.median),
        (
            f"reconstruct from all {result.nodes} (with consistency check)",
            result.reconstruct_all_checked.median,
        ),
        (f"baseline: numpy sum of {result.nodes} plaintext vectors", result.plaintext_sum.median),
    ]
    for label, secs in rows:
        ratio = secs / result.plaintext_sum.median
        print(f"  {label:<58} {secs * 1e3:9.1f} ms   {ratio:7.1f}x baseline")
    if result.galois_product is not None:
        g = result.galois_product.median * result.dimension / result.galois_dimension
        scaled = "" if result.galois_dimension == result.dimension else " (scaled)"
        print(f"  {'galois matrix product, same sharing' + scaled:<58} {g * 1e3:9.1f} ms")
        print(f"  galois product / SDL share:          {r['galois_product_over_share']:8.1f}x")
        print(
            f"  galois product / SDL product alone:  {r['galois_product_over_share_product']:8.1f}x"
        )
        print(f"  galois and SDL products agree bit for bit: {result.galois_agrees}")
    print("\ntargets: share <= 250 ms; galois product / share >= 70x")
    return EXIT_OK


# ---------------------------------------------------------------------- bench accounting


def _cmd_bench_accounting(args: argparse.Namespace) -> int:
    from reference.bench.micro import bench_accounting  # noqa: PLC0415

    result = bench_accounting(
        rounds=args.rounds,
        sampling_rate=args.sampling_rate,
        noise_multiplier=args.noise_multiplier,
        repeats=args.repeats,
    )
    if args.json:
        _emit(result.as_json())
        return EXIT_OK
    print(
        f"epsilon of {result.rounds} Poisson-subsampled Gaussian rounds "
        f"(q = {result.sampling_rate:g}, z = {result.noise_multiplier:g}), median of "
        f"{result.sdl.repeats} runs:"
    )
    print(
        f"  SDL accountant          {result.sdl.median * 1e3:8.2f} ms   "
        f"epsilon = {result.sdl_epsilon:.6g}"
    )
    if result.dp_accounting_rdp is not None and result.dp_accounting_epsilon is not None:
        ratio = result.sdl.median / result.dp_accounting_rdp.median
        print(
            f"  dp-accounting RDP       {result.dp_accounting_rdp.median * 1e3:8.2f} ms   "
            f"epsilon = {result.dp_accounting_epsilon:.6g}   (SDL / dp-accounting: "
            f"{ratio:.2f}x)"
        )
    else:
        print("  (dp-accounting not installed: pip install -e '.[dev]' adds it as a baseline)")
    print("\ntarget: <= 50 ms for 1000 subsampled rounds")
    pld = result.pld
    if pld is None:
        print(f"\nPLD accountant: not timed ({result.pld_refusal})")
        return EXIT_OK
    print(
        f"\nPLD accountant on the same rounds (delta = {pld.delta:g}, buckets of width "
        f"{pld.discretization:g}), median of {pld.sdl.repeats} runs:"
    )
    print(
        f"  SDL PLD                 {pld.sdl.median * 1e3:8.2f} ms   "
        f"epsilon = {pld.epsilon_sdl:.9g}"
    )
    print(
        f"  dp-accounting PLD       {pld.dp_accounting.median * 1e3:8.2f} ms   "
        f"epsilon = {pld.epsilon_dp_accounting:.9g}   (SDL / dp-accounting: "
        f"{pld.sdl.median / pld.dp_accounting.median:.2f}x)"
    )
    agree = "agree" if pld.agrees() else "DISAGREE"
    print(f"  the two epsilons {agree}: relative difference {pld.relative_difference():.2g}")
    return EXIT_OK


# ---------------------------------------------------------------------- bench round

#: What --scaling writes into --out (``br.write_scaling``).
_SCALING_FILES = ("scaling.json", "scaling.png")

_CHILD_DIED = "a benchmark's child process died (killed, or out of memory?)"


#: The default of a round parameter the user did not give: the design's value (for
#: n = 100), shrunk to fit a smaller --nodes (``br.fit``).
_FIT: Any = object()


def _fitted_default(name: str) -> str:
    """The help's default of a fitted round parameter: the design's value, from RoundConfig."""
    return f"{getattr(br.RoundConfig(), name)}, fewer when --nodes cannot hold it"


#: The round's parameters whose defaults shrink to fit a smaller --nodes, unless given.
_FITTED = ("dropouts", "colluders", "threshold", "packing", "committee", "noise_sources",
           "receivers")  # fmt: skip


def _round_config(args: argparse.Namespace) -> br.RoundConfig:
    """The round the flags ask for: what they give, and the design's defaults fitted to
    ``--nodes`` for the rest (a note on stderr says what shrank)."""
    given = {name: getattr(args, name) for name in _FITTED if getattr(args, name) is not _FIT}
    config = br.RoundConfig(
        nodes=args.nodes,
        dimension=args.dimension,
        precover=not args.no_precover,
        mechanism=args.mechanism,
        target_variance=args.variance,
        field=args.field,
        seed=args.seed,
        channels=args.channels,
        suite=args.suite,
        max_byzantine=args.max_byzantine,
        failover=args.failover,
    )
    fitted, fits = br.fit(replace(config, **given), nodes=args.nodes, dimension=args.dimension)
    # What shrank among the parameters not given (br.fit names them so).
    names = {"dropouts": "D", "colluders": "T", "threshold": "t", "packing": "k"}
    mine = {names.get(n, n) for n in given}
    changes = [c for c in fits if c.split(" ", 1)[0] not in mine]
    if len(given) < len(_FITTED) and changes:
        print(
            f"{args.command_prog}: the defaults shrink to fit --nodes {args.nodes}: "
            + "; ".join(changes),
            file=sys.stderr,
        )
        return replace(fitted, **given)
    return replace(config, **given)


def _run_scaling(args: argparse.Namespace, config: br.RoundConfig) -> int:
    """``sdl bench round --scaling``: both sweeps, the table, scaling.json and scaling.png."""
    bar = None
    if not args.quiet and sys.stderr.isatty():
        from tqdm import tqdm  # noqa: PLC0415

        total = len(args.scaling_dimensions) + len(args.scaling_nodes)
        bar = tqdm(total=total, desc="rounds", unit="round", file=sys.stderr, leave=False)

    def on_point(point: br.ScalingPoint) -> None:
        if bar is not None:
            c = point.bench.measure.config
            bar.set_postfix_str(f"n={c.nodes} d={c.dimension:,}")
            bar.update(1)

    try:
        scaling = br.run_scaling(
            config,
            dimensions=args.scaling_dimensions,
            nodes=args.scaling_nodes,
            nodes_dimension=args.scaling_nodes_dimension,
            on_point=on_point,
        )
    except BrokenProcessPool:
        report_error(args.command_prog, _CHILD_DIED, kind="failed")
        return EXIT_FAILED
    finally:
        if bar is not None:
            bar.close()
    written = br.write_scaling(scaling, args.out)
    if args.json:
        _emit({**scaling.as_json(), "outputs": [str(p) for p in written]})
    else:
        print(br.format_scaling(scaling))
        print(f"wrote {', '.join(str(p) for p in written)}")
    ok = all(p.bench.measure.released and p.bench.measure.aggregate_correct
             for p in scaling.points)  # fmt: skip
    return EXIT_OK if ok else EXIT_FAILED


def _run_one(args: argparse.Namespace, config: br.RoundConfig) -> int:
    """``sdl bench round`` without --scaling: one round, and Flower's beside it if asked."""
    br.scenario(config)  # a bad round is refused here, before anything runs
    try:
        # Flower first: its own pre-conditions fail before SDL's round has run.
        flower = (
            br.run_flower(config, shares=args.flower_shares, threshold=args.flower_threshold)
            if args.compare_flower
            else None
        )
        bench = br.bench_round(config, progress=not args.quiet)
    except BrokenProcessPool:
        report_error(args.command_prog, _CHILD_DIED, kind="failed")
        return EXIT_FAILED
    if args.json:
        _emit(br.report_json(bench, flower))
    else:
        print(br.format_round(bench, flower))
    m = bench.measure
    return EXIT_OK if m.released and m.aggregate_correct else EXIT_FAILED


def _cmd_bench_round(args: argparse.Namespace) -> int:
    if args.scaling:  # before the sweep, which runs for minutes
        check_output_dir(args.out, label="--out", files=_SCALING_FILES)
    config = _round_config(args)
    if args.scaling and args.compare_flower:
        report_error(args.command_prog, "--scaling and --compare-flower run apart; choose one")
        return EXIT_USAGE
    if args.compare_flower:
        br.check_flower()  # without flwr: the install hint, exit 2, nothing run
    if args.scaling:
        return _run_scaling(args, config)
    return _run_one(args, config)


# ---------------------------------------------------------------------- declarations

_FIELD = Option(
    ("--field",), "the prime field the shares live in", choices=sorted(FIELDS), default="Field31"
)

_SHAMIR = Command(
    name="shamir",
    summary="share and reconstruct one vector; compare with numpy and galois",
    description="""
        Times Shamir sharing of one d-vector to n holders (the randomness drawn from the XOF
        included) and its reconstruction, from t + 1 shares and from all n with the
        consistency check. The baselines run in the same run: a plaintext numpy sum of n
        vectors, and galois's matrix product for the same sharing, whose result must agree
        with SDL's bit for bit.

        Targets, printed after the figures: sharing one 10^6-vector takes at most 250 ms,
        and galois's product takes at least 70 times as long as SDL's sharing. Exit
        status: 0 when the benchmark ran (targets are reported, not enforced: they depend
        on the machine), 2 on bad input.
    """,
    options=(
        _FIELD,
        Option(
            ("--nodes",),
            f"n, the holders of the shares, at most {MAX_SHAMIR_NODES}",
            type=int_at_least(1, MAX_SHAMIR_NODES),
            default=20,
            metavar="N",
        ),
        Option(
            ("--threshold",),
            "t: any t holders learn nothing; t + 1 rebuild (needs t + 1 <= n)",
            type=positive_int,
            default=9,
            metavar="T",
        ),
        Option(
            ("--dimension",),
            f"d, the coordinates of the shared vector, at most "
            f"{power_of_ten(MAX_SHAMIR_DIMENSION)}; n × d at most "
            f"{power_of_ten(MAX_SHAMIR_ELEMENTS)}",
            type=int_at_least(1, MAX_SHAMIR_DIMENSION),
            default=1_000_000,
            metavar="D",
            shown_default="10^6",
        ),
        Option(
            ("--repeats",),
            f"timed runs of each step, at most {MAX_REPEATS}; the median is reported",
            type=int_at_least(1, MAX_REPEATS),
            default=5,
            metavar="R",
        ),
        Option(
            ("--galois-dimension",),
            "columns for the (slow) galois product (d at most are used), its time scaled to d; "
            "0 skips it",
            type=int_at_least(0, MAX_SHAMIR_DIMENSION),
            metavar="D",
            absent="all d columns, about 17 s at d = 10^6",
        ),
        JSON,
    ),
    examples=(
        Example("sdl bench shamir --dimension 10000 --galois-dimension 0", "quick, no galois"),
        Example(
            "sdl bench shamir --dimension 100000 --galois-dimension 1000 --repeats 3",
            "beside galois, its product timed on 1,000 columns and scaled",
        ),
        Example("sdl bench shamir --dimension 10000 --repeats 1 --json", "one JSON object"),
        Example("sdl bench shamir", "the full size: d = 10^6, galois on every column (~20 s)"),
    ),
    run=_cmd_bench_shamir,
)

_ACCOUNTING = Command(
    name="accounting",
    summary="time the accountant on many subsampled rounds, beside dp-accounting",
    description="""
        Times SDL's privacy accountant on the epsilon of many rounds of the Poisson-subsampled
        Gaussian mechanism, and, when Google's dp-accounting is installed (pip install -e
        '.[dev]'), its RDP accountant on the same rounds in the same run, with both
        epsilons and the ratio of their times. Then times SDL's PLD accountant on the same
        rounds (delta = 1e-5, buckets of width 1e-4) beside dp-accounting's own PLD of the
        subsampled Gaussian, built, composed and read in the same run, with both times,
        their ratio, both epsilons and their relative difference (they agree within 1e-9).

        Target, printed after the figures: at most 50 ms for 1000 subsampled rounds. Exit
        status: 0 when the benchmark ran, 2 on bad input.
    """,
    options=(
        Option(
            ("--rounds",),
            f"subsampled rounds composed into one epsilon, at most {power_of_ten(MAX_ROUNDS)}",
            type=int_at_least(1, MAX_ROUNDS),
            default=1000,
            metavar="N",
        ),
        Option(
            ("--sampling-rate",),
            "q, the probability that a node takes part in a round",
            type=rate_in_unit,
            default=0.01,
            metavar="Q",
        ),
        Option(
            ("--noise-multiplier",),
            "z, the Gaussian noise's standard deviation over the sensitivity, in "
            f"[{_short(MIN_NOISE)}, {_short(MAX_NOISE)}]",
            type=_noise_multiplier,
            default=1.1,
            metavar="Z",
        ),
        Option(
            ("--repeats",),
            f"timed runs of each accountant, at most {MAX_REPEATS}; the median is reported",
            type=int_at_least(1, MAX_REPEATS),
            default=5,
            metavar="R",
        ),
        JSON,
    ),
    examples=(
        Example("sdl bench accounting", "1000 rounds at q = 0.01, z = 1.1"),
        Example(
            "sdl bench accounting --rounds 100 --sampling-rate 0.1 --noise-multiplier 2",
            "fewer rounds, a larger sample, more noise",
        ),
        Example("sdl bench accounting --repeats 1 --json", "one JSON object"),
    ),
    run=_cmd_bench_accounting,
)

_ROUND_DESCRIPTION = f"""
    Simulate one full round in one process, every role on the real code path: the
    protocol's state machines (spec/09-protocol.md) driven by the simulator over a
    reliable network. Contributors add their noise and Shamir-share their updates,
    aggregators collect and report, the coordinator decides, aggregators send their
    partial sums, receivers rebuild the sum; D contributors crash part-way through
    their shares. Every machine step is timed.

    It reports: time per phase (contribute = contributors' start steps; collect =
    aggregators' share steps; decide = the coordinator's steps; aggregate =
    aggregators' decision steps; reconstruct = receivers' steps; other); the machine
    time (the sum of the steps); the round's wall time, from the simulation's start
    to its last step less the inputs (the simulator's check of the result, after
    the last step, is shown apart); the simulator's overhead (wall - machine); CPU
    time (every thread); the median time per node to contribute (also split into
    noise sources and the others) and to aggregate; bytes sent per node and role in
    the binary wire form (and in sealed frames); the seconds spent sealing and
    opening frames (part of the wall time) and their share of it, and the frames'
    bytes; whether the exact sum was released; a plaintext baseline
    (the field sum of the same update vectors, timed in the same run) and the ratio
    round / plaintext; the peak memory (ru_maxrss) of the child process that ran
    the round, beside an idle child that only imports the modules. Inputs (each
    update, drawn from the XOF in [-8, 8]) are drawn as the simulator asks, timed
    apart and left out of the round's time.

    The defaults model the design SDL means to meet its targets with, at the size of
    a 1M-parameter model: 100 nodes and a 10^6-coordinate update, 5 dropouts, 10
    colluders (the noise plan's T), every message between two nodes sealed. A
    committee of 35 aggregators holds packed Shamir shares: any t = 10 of them learn
    nothing, each share packs k = 20 coordinates, and
    any t + k = 30 partial sums rebuild the sum, so 5 aggregators may drop. A
    contributor sends 35 shares of d/20 elements: 1.75 elements per coordinate. 30
    contributors add noise, the others send their update alone (30 - D - T = 15 honest
    sources remain in the worst case); the plan covers the D dropouts up front (no
    top-up stage); one node receives the sum. The noise is Skellam with a total
    variance of {int(br.TARGET_VARIANCE):,} (`sdl run` calibrates about 1.8·10^7 for
    ε = 2); the field is Field31 (4 bytes an element).

    Every message between two nodes is sealed by default (spec/14-channels.md): at the
    session's setup, before the round and timed apart, each node sends every other a
    channel key, HPKE-sealed to its session key and signed with its Ed25519 identity;
    in the round, each message is sealed with the AEAD under that key, and the
    recipient opens and checks it before its machine sees anything (inside the wall
    time; the messages' binary form is shown apart). --channels plain hands the
    messages over unsealed; --suite picks the suite.

      targets (each printed with its measured value and PASS, MISS or n/a):
        (a) the round's wall time, sealing on, <= {br.FLOWER_TIME_FRACTION} × Flower's SecAgg+
            wall time on the same n, d and dropouts (measured with --compare-flower;
            n/a without it or with --channels plain)
        (b) the median contributor time <= Flower's median client time (measured
            with --compare-flower, else n/a)
        (c) bytes sent per contributor (the most any sent) <= 3·d·ENCODED_SIZE
            (12 MB at d = 10^6 in Field31)
        (d) the peak memory of the round's process <= 2 GB
        (e) sealing and opening <= {br.CHANNEL_SHARE:.0%} of the round's wall time
            (n/a with --channels plain)

    --compare-flower first runs Flower's own SecAgg+ workflow in a child process
    (reference/bench/flower.py) with the same n, d and dropouts, num_shares
    {br.FLOWER_SHARES} and threshold {br.FLOWER_THRESHOLD} (Flower's settings for a
    round of this size; --flower-shares and --flower-threshold change them), then
    SDL's round, and prints both beside the plaintext sum. Every baseline a target is
    judged against is measured in the same run. Flower is an optional extra (pip
    install -e '.[bench]'); without it the flag exits 2 with that hint, having run
    nothing.

    --scaling sweeps d over 10^4, 10^5, 10^6 at the given n, then n over 10, 25, 50,
    100, 200 at d = 10^5, each round in its own child, keeping the other parameters
    and shrinking only what a small n cannot hold (printed per row); it prints a
    table, writes OUT/scaling.json and OUT/scaling.png (log-log, with a slope-1 line)
    and checks that the cost is linear in d: the time per coordinate at the largest d
    must be at most {br.LINEAR_TOLERANCE}x that at the smallest (and at the next
    largest).
"""

_ROUND = Command(
    name="round",
    summary="one whole round, every role in one process, timed per phase and per node",
    description=_ROUND_DESCRIPTION,
    options=(
        Option(
            ("--nodes",),
            "n, the nodes (each one contributes)",
            type=int_at_least(2),
            default=100,
            metavar="N",
        ),
        Option(
            ("--dimension",),
            "d, the coordinates of each update",
            type=positive_int,
            default=1_000_000,
            metavar="D",
            shown_default="10^6",
        ),
        Option(
            ("--dropouts",),
            "D: contributors that crash while sharing",
            type=non_negative_int,
            default=_FIT,
            absent=_fitted_default("dropouts"),
            metavar="K",
        ),
        Option(
            ("--colluders",),
            "T of the noise plan: the colluders it tolerates",
            type=non_negative_int,
            default=_FIT,
            absent=_fitted_default("colluders"),
            metavar="C",
        ),
        Option(
            ("--threshold",),
            "Shamir's t: aggregators that learn nothing together",
            type=positive_int,
            default=_FIT,
            absent=_fitted_default("threshold"),
            metavar="T",
        ),
        Option(
            ("--packing",),
            "k, coordinates packed per share",
            type=positive_int,
            default=_FIT,
            absent=_fitted_default("packing"),
            metavar="K",
        ),
        Option(
            ("--committee",),
            "aggregators, or 'all' nodes",
            type=br.count_or_all,
            default=_FIT,
            absent=_fitted_default("committee"),
            metavar="M",
        ),
        Option(
            ("--noise-sources",),
            "contributors that add noise, or 'all'",
            type=br.count_or_all,
            default=_FIT,
            absent=_fitted_default("noise_sources"),
            metavar="S",
        ),
        Option(
            ("--receivers",),
            "nodes that rebuild the sum, or 'all'",
            type=br.count_or_all,
            default=_FIT,
            absent=_fitted_default("receivers"),
            metavar="R",
        ),
        Option(
            ("--no-precover",),
            "the plan covers dropouts by a top-up stage instead of up front",
            flag=True,
        ),
        Option(
            ("--max-byzantine",),
            "f: the Byzantine nodes the round withstands; f >= 1 adds the aggregators' echo "
            "exchange and the t + k + f rule (spec/09-protocol.md#byzantine-nodes)",
            type=non_negative_int,
            default=0,
            metavar="F",
        ),
        Option(
            ("--failover",),
            "N backup coordinators (spec/09-protocol.md#failover); adds the echo exchange",
            type=non_negative_int,
            default=0,
            metavar="N",
        ),
        Option(
            ("--mechanism",),
            "the integer noise: Skellam or discrete Gaussian",
            choices=("skellam", "dgauss"),
            default="skellam",
        ),
        Option(
            ("--variance",),
            "σ*², the honest noise's total variance",
            type=positive_rational,
            default=br.TARGET_VARIANCE,
            metavar="V",
        ),
        _FIELD,
        Option(
            ("--seed",),
            "the round's seed, 1 to 64 hex digits; Flower's vectors too",
            default="1",
            metavar="HEX",
        ),
        Option(
            ("--channels",),
            "seal every message between two nodes, or hand it over plain",
            choices=br.CHANNEL_MODES,
            default="sealed",
        ),
        Option(
            ("--suite",),
            "the channels' HPKE suite",
            choices=tuple(SUITES),
            default=DEFAULT_SUITE.name,
        ),
        Option(
            ("--compare-flower",),
            "also run Flower's SecAgg+ on the same n, d, dropouts (needs the bench extra)",
            flag=True,
        ),
        Option(
            ("--flower-shares",),
            "Flower's num_shares",
            type=positive_int,
            default=br.FLOWER_SHARES,
            metavar="S",
        ),
        Option(
            ("--flower-threshold",),
            "Flower's reconstruction threshold",
            type=positive_int,
            default=br.FLOWER_THRESHOLD,
            metavar="R",
        ),
        Option(("--scaling",), "sweep d, then n (see above)", flag=True),
        Option(
            ("--scaling-dimensions",),
            "the d sweep, comma-separated",
            type=br.counts,
            default=br.SCALING_DIMENSIONS,
            metavar="LIST",
        ),
        Option(
            ("--scaling-nodes",),
            "the n sweep, comma-separated",
            type=br.counts,
            default=br.SCALING_NODES,
            metavar="LIST",
        ),
        Option(
            ("--scaling-nodes-dimension",),
            "d during the n sweep",
            type=positive_int,
            default=br.SCALING_NODES_DIMENSION,
            metavar="D",
        ),
        Option(
            ("--out",),
            "where --scaling writes scaling.json and scaling.png",
            type=Path,
            default=Path("sdl-bench-round"),
            metavar="DIR",
        ),
        Option(("--quiet",), "no progress bar", flag=True),
        JSON,
    ),
    examples=(
        Example("sdl bench round --dimension 10000", "the design's round at d = 10^4"),
        Example("sdl bench round --dimension 10000 --json", "the same, as one JSON object"),
        Example(
            "sdl bench round --dimension 10000 --channels plain",
            "the same round with its messages unsealed: what the channels cost",
        ),
        Example(
            "sdl bench round --dimension 10000 --compare-flower",
            "beside Flower's SecAgg+, measured in the same run (the bench extra; ~20 s)",
        ),
        Example(
            "sdl bench round --dimension 10000 --no-precover --noise-sources all --receivers all",
            "the protocol's plain defaults: every node adds noise and receives the sum",
        ),
        Example(
            "sdl bench round --scaling --scaling-dimensions 1000,10000 --scaling-nodes 10,25 "
            "--scaling-nodes-dimension 1000 --out /tmp/scaling --quiet",
            "a small sweep of both kinds: table, scaling.json and scaling.png",
        ),
        Example("sdl bench round", "the full size: n = 100, d = 10^6 (about 20 s)"),
        Example("sdl bench round --scaling --out /tmp/scaling", "both full sweeps (minutes)"),
    ),
    notes="""
        Exit status: 0 when the round released the exact sum (targets are reported, not
        enforced: they depend on the machine), 1 when it did not, 2 on bad input.
    """,
    run=_cmd_bench_round,
)


def _cmd_bench_deploy(args: argparse.Namespace) -> int:
    from reference.bench.deploy import FLOWER_TIME_FRACTION, DeployConfig, bench_deploy  # noqa: PLC0415
    from reference.deploy.local import DeployError  # noqa: PLC0415

    config = DeployConfig(
        nodes=args.nodes, dimension=args.dimension, dropouts=args.dropouts,
        threshold=args.threshold if args.threshold is not None else max(1, args.nodes // 3),
        tick_timeout=args.tick_timeout,
    )  # fmt: skip
    try:
        from reference.bench.secagg_deploy import run_secagg_round  # noqa: F401, PLC0415
    except ImportError:
        if args.compare_flower:
            report_error(
                args.command_prog, "Flower is not installed: python -m pip install -e '.[flower]'"
            )
            return EXIT_USAGE

    def on_event(event: Any) -> None:
        if not args.json and event.get("type") in ("tick", "killed", "crashed"):
            print(f"  sdl: {event}", file=sys.stderr)

    try:
        obj = bench_deploy(config, compare_flower=args.compare_flower, on_event=on_event)
    except DeployError as exc:
        report_error(args.command_prog, str(exc), kind="DeployError")
        return EXIT_FAILED
    if args.json:
        _emit(obj)
    else:
        s, f = obj["sdl"], obj["flower"]
        c = obj["config"]
        print(
            f"one round on Flower's deployment engine: n = {c['nodes']}, "
            f"d = {c['dimension']:,}, {c['dropouts']} dropouts, t = {c['threshold']}, "
            f"k = {c['packing']} (public seeds: not private)"
        )
        cpu = s["cpu_seconds"]
        print(f"  SDL      {s['sdl_seconds']:8.1f} s  {s['exchanges']} exchanges, "
              f"{s['bytes_relayed']:,} bytes relayed, setup {s['setup_seconds']:.1f} s apart; "
              f"CPU per node {min(cpu.values()):.1f}-{max(cpu.values()):.1f} s; "
              f"exact: {'yes' if s['exact'] else 'NO'}")  # fmt: skip
        if f is not None:
            fcpu = list(f.get("cpu_seconds") or [0.0])
            print(f"  SecAgg+  {f['seconds']:8.1f} s  {f['bytes_relayed']:,} bytes relayed; "
                  f"CPU per node {min(fcpu):.1f}-{max(fcpu):.1f} s; "
                  f"correct: {'yes' if f['correct'] else 'NO'}")  # fmt: skip
            t = obj["target"]
            verdict = ("PASS" if t["met"] else "MISS") if t["applies"] else "n/a"
            print(f"  ratio    {obj['ratio']:.3f}  (target <= {FLOWER_TIME_FRACTION} at n = 10, "
                  f"d = 10^5: {verdict})")  # fmt: skip
    return EXIT_OK if obj["sdl"]["exact"] else EXIT_FAILED


_DEPLOY = Command(
    name="deploy",
    summary="one round on a real local SuperLink and SuperNodes, beside Flower's SecAgg+",
    description="""
        Runs one SDL round on Flower's deployment engine, as `sdl deploy local` does: a
        SuperLink and --nodes SuperNodes as processes on loopback, every node a contributor
        and aggregator of a synthetic vector of --dimension coordinates in [-8, 8],
        Skellam noise, packed Shamir shares (t = --threshold, k = nodes - dropouts - t), every
        message sealed; one node (the coordinator) rebuilds the sum and publishes it, as in
        `sdl bench round`. --dropouts nodes (not the coordinator) are killed once their shares
        are sent; the noise plan covers them up front. The release is checked bit for bit
        against the simulator's. With --compare-flower it first runs Flower's own
        SecAggPlusWorkflow and secaggplus_mod on their own local SuperLink and SuperNodes,
        with the same sizes (num_shares = nodes, reconstruction_threshold = t + 1).

        It reports sdl_seconds (the round, the session's setup apart), flower_seconds, the
        ratio, the bytes through the SuperLink and the CPU of each SuperNode's processes.
        Target: ratio <= 0.5 at n = 10, d = 10^5 (reported, not enforced). Seeds are
        public: a benchmark, not private. A round takes tens of seconds: Flower's SuperNodes
        poll for work every 3 s and run each message in a fresh process.

        Exit status: 0 when SDL released the exact sum, 1 when it did not or a process
        failed, 2 on bad input.
    """,
    options=(
        Option(
            ("--nodes",),
            "n, SuperNodes (each one node)",
            type=int_at_least(3, 32),
            default=10,
            metavar="N",
        ),
        Option(
            ("--dimension",),
            "d, coordinates per vector",
            type=int_at_least(1, 10**7),
            default=100_000,
            metavar="D",
        ),
        Option(
            ("--dropouts",),
            "nodes killed after their shares",
            type=int_at_least(0, 29),
            default=0,
            metavar="K",
        ),
        Option(
            ("--threshold",),
            "t: any t aggregators learn nothing",
            type=int_at_least(1, 30),
            metavar="T",
            absent="max(1, n // 3)",
        ),
        Option(
            ("--tick-timeout",),
            "seconds a node has to answer before it counts as crashed",
            type=int_at_least(5, 3600),
            default=60,
            metavar="S",
        ),
        Option(
            ("--compare-flower",), "also run Flower's SecAgg+ round with the same sizes", flag=True
        ),
        JSON,
    ),
    examples=(
        Example("sdl bench deploy --nodes 5 --dimension 1000", "a quick round"),
        Example("sdl bench deploy --compare-flower", "n = 10, d = 10^5, beside SecAgg+"),
        Example("sdl bench deploy --dimension 1000000 --compare-flower --json", "d = 10^6"),
    ),
    run=_cmd_bench_deploy,
)

COMMANDS = (
    Command(
        name="bench",
        summary="benchmarks, as ratios against same-run baselines",
        description="""
            Benchmarks of SDL's hot paths, each reported beside baselines measured in the
            same run on the same machine: Shamir sharing against numpy and galois, the
            privacy accountant against dp-accounting, and one whole round against a
            plaintext sum (and, with --compare-flower, Flower's SecAgg+). Targets are
            printed with PASS or MISS, never enforced.
        """,
        examples=(
            Example("sdl bench shamir --dimension 10000 --galois-dimension 0", "Shamir, quick"),
            Example("sdl bench accounting", "the accountant on 1000 rounds"),
            Example("sdl bench round --dimension 10000", "one whole round at d = 10^4"),
        ),
        subcommands=(_SHAMIR, _ACCOUNTING, _ROUND, _DEPLOY),
    ),
)
