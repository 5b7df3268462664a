"""The ``sdl`` command line.

Every subcommand prints a readable report by default and one JSON object
with ``--json``. Bad input exits with status 2 and a message naming the
value and what was expected; a failed check exits with status 1.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import asdict
from fractions import Fraction
from pathlib import Path

from threadpoolctl import threadpool_limits

from protocol.errors import SdlError
from protocol.field import FIELDS
from protocol.xof import Tag, Xof
from reference.cli import evaluate as cli_evaluate
from reference.cli import learning as cli_learning
from reference.cli import protocol as cli_protocol
from reference.common.seeds import fresh_seed, seed_from_hex
from reference.oracle import conformance, vectors

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _int_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer >= ``minimum``, with a message naming the value."""
    what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}; got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {what}; got {value}")
        return value

    return parse


_positive = _int_at_least(1)
_non_negative = _int_at_least(0)


def _emit(obj: object) -> None:
    print(json.dumps(obj, sort_keys=True, indent=2))


# ---------------------------------------------------------------------- demo


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


# ---------------------------------------------------------------------- vectors


def _cmd_vectors_generate(args: argparse.Namespace) -> int:
    directory = Path(args.dir)
    written = vectors.write(directory, vectors.generate())
    if args.json:
        _emit({"directory": str(directory), "files": [str(p) for p in written]})
    else:
        print(
            f"wrote {len(written)} vector files under {directory}/ ({', '.join(vectors.FAMILIES)})"
        )
    return EXIT_OK


def _cmd_vectors_check(args: argparse.Namespace) -> int:
    directory = Path(args.dir)
    if not directory.is_dir():
        print(f"sdl: error: {directory} is not a directory", file=sys.stderr)
        return EXIT_USAGE
    results = vectors.check(directory)
    if not results:
        print(f"sdl: error: no *.json vector files under {directory}", file=sys.stderr)
        return EXIT_FAILED
    failed = [r for r in results if not r.ok]
    if args.json:
        _emit(
            {
                "directory": str(directory),
                "passed": len(results) - len(failed),
                "failed": len(failed),
                "files": [asdict(r) | {"ok": r.ok} for r in results],
            }
        )
    else:
        width = max(len(r.path) for r in results)
        print(f"{'file'.ljust(width)}  family  operation           result")
        for r in results:
            status = "pass" if r.ok else "FAIL"
            print(f"{r.path.ljust(width)}  {r.family:<6}  {r.operation:<18}  {status}")
            for problem in r.problems:
                print(f"{'':{width}}    - {problem}")
        families = sorted({r.family for r in results})
        print()
        for fam in families:
            mine = [r for r in results if r.family == fam]
            bad = sum(not r.ok for r in mine)
            print(f"{fam:<8} {len(mine) - bad} passed, {bad} failed")
        print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return EXIT_FAILED if failed else EXIT_OK


# ---------------------------------------------------------------------- noise


def _variance(text: str) -> Fraction:
    """An argparse type: a positive rational, written as a decimal or a fraction."""
    try:
        value = Fraction(text.strip())
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(
            f"expected a positive number such as 12.5 or 25/2; got {text!r}"
        ) from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"variance must be > 0; got {text}")
    return value


def _cmd_noise_sample(args: argparse.Namespace) -> int:
    from protocol.noise import (  # noqa: PLC0415
        MECHANISMS,
        STATISTICAL_DISTANCE_BOUND,
        sample,
        sample_table,
    )

    seed = seed_from_hex(args.seed)
    xof = Xof(seed, Tag("noise.sample", (MECHANISMS.index(args.mechanism),)))
    if args.sampler == "exact":
        samples = sample(xof, args.mechanism, args.variance, args.count)
        distance = Fraction(0)
    else:
        samples = sample_table(xof, args.mechanism, args.variance, args.count).tolist()
        distance = STATISTICAL_DISTANCE_BOUND
    if args.json:
        _emit(
            {
                "mechanism": args.mechanism,
                "variance": str(args.variance),
                "seed": args.seed,
                "seed_bytes": seed.hex(),
                "count": args.count,
                "sampler": args.sampler,
                "statistical_distance_bound": str(distance),
                "samples": samples,
            }
        )
    else:
        print("\n".join(str(v) for v in samples))
    return EXIT_OK


# ---------------------------------------------------------------------- privacy

#: The noise parameter each mechanism is described (and calibrated) by.
_NOISE_PARAMETER = {"gaussian": "noise_multiplier", "skellam": "variance", "dgauss": "sigma"}


def _float_where(what: str, ok: Callable[[float], bool]) -> Callable[[str], float]:
    """An argparse type: a float for which ``ok`` holds, else an error naming ``what``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}; got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"expected {what}; got {text}")
        return value

    return parse


_positive_float = _float_where("a positive finite number", lambda v: 0 < v < float("inf"))
_open_unit = _float_where("a number in (0, 1)", lambda v: 0 < v < 1)
_rate = _float_where("a rate in (0, 1]", lambda v: 0 < v <= 1)


def _privacy_event(args: argparse.Namespace, noise: float) -> object:
    """The accountant's event for one release, subsampled and composed over the rounds."""
    from protocol import accounting  # noqa: PLC0415

    event: object
    if args.mechanism == "gaussian":
        event = accounting.GaussianEvent(noise_multiplier=noise)
    elif args.mechanism == "skellam":
        event = accounting.SkellamEvent(
            variance=noise,
            l2_sensitivity=args.l2_sensitivity,
            l1_sensitivity=args.l1_sensitivity,
        )
    else:
        event = accounting.DistributedDiscreteGaussianEvent(
            sigma2=noise * noise,
            clients=args.clients,
            dimension=args.dimension,
            l2_sensitivity=args.l2_sensitivity,
            l1_sensitivity=args.l1_sensitivity,
        )
    if args.sampling_rate < 1:
        event = accounting.PoissonSampledEvent(event=event, sampling_rate=args.sampling_rate)
    return accounting.ComposedEvent(event=event, count=args.rounds)


def _check_privacy_args(args: argparse.Namespace, *, need_noise: bool) -> str | None:
    """The first missing or contradictory argument, as a one-line message, or None."""
    parameter = _NOISE_PARAMETER[args.mechanism]
    if need_noise and getattr(args, parameter) is None:
        return f"--mechanism {args.mechanism} needs --{parameter.replace('_', '-')}"
    if args.mechanism in ("skellam", "dgauss"):
        for name in ("l2_sensitivity", "l1_sensitivity"):
            if getattr(args, name) is None:
                return f"--mechanism {args.mechanism} needs --{name.replace('_', '-')}"
    if args.mechanism == "dgauss":
        for name in ("clients", "dimension"):
            if getattr(args, name) is None:
                return f"--mechanism dgauss needs --{name}"
    return None


def _cmd_privacy_epsilon(args: argparse.Namespace) -> int:
    from protocol import accounting  # noqa: PLC0415

    problem = _check_privacy_args(args, need_noise=True)
    if problem is not None:
        print(f"sdl: error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    parameter = _NOISE_PARAMETER[args.mechanism]
    noise = getattr(args, parameter)
    result = accounting.epsilon(_privacy_event(args, noise), delta=args.delta)
    body = {
        "epsilon": result.epsilon,
        "order": result.order,
        "delta": args.delta,
        "mechanism": args.mechanism,
        parameter: noise,
        "rounds": args.rounds,
        "sampling_rate": args.sampling_rate,
    }
    if args.json:
        _emit(body)
    else:
        print(
            f"epsilon = {result.epsilon:.6g} at delta = {args.delta:g} "
            f"(Renyi order {result.order:g}) after {args.rounds} round(s) of "
            f"{args.mechanism}, {parameter} = {noise:g}, sampling rate {args.sampling_rate:g}"
        )
    return EXIT_OK


def _cmd_privacy_calibrate(args: argparse.Namespace) -> int:
    from protocol import accounting  # noqa: PLC0415

    problem = _check_privacy_args(args, need_noise=False)
    if problem is not None:
        print(f"sdl: error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    parameter = _NOISE_PARAMETER[args.mechanism]

    def cost(noise: float) -> float:
        return accounting.epsilon(_privacy_event(args, noise), delta=args.delta).epsilon

    # Find a noise level that meets the target, doubling from a small one.
    high = 1e-3
    while cost(high) > args.epsilon:
        high *= 2
        if high > 1e12:
            print(
                f"sdl: error: no noise up to 1e12 reaches epsilon = {args.epsilon:g} "
                f"at delta = {args.delta:g}",
                file=sys.stderr,
            )
            return EXIT_FAILED
    result = accounting.calibrate(
        lambda noise: _privacy_event(args, noise),
        target_epsilon=args.epsilon,
        delta=args.delta,
        low=high / 2 if high > 1e-3 else 0.0,
        high=high,
    )
    achieved = accounting.epsilon(_privacy_event(args, result.noise), delta=args.delta)
    body = {
        parameter: result.noise,
        "epsilon": achieved.epsilon,
        "order": achieved.order,
        "target_epsilon": args.epsilon,
        "delta": args.delta,
        "mechanism": args.mechanism,
        "rounds": args.rounds,
        "sampling_rate": args.sampling_rate,
    }
    if args.json:
        _emit(body)
    else:
        print(
            f"{parameter} = {result.noise:.6g} gives epsilon = {achieved.epsilon:.6g} "
            f"<= {args.epsilon:g} at delta = {args.delta:g} over {args.rounds} round(s)"
        )
    return EXIT_OK


# ---------------------------------------------------------------------- bench


def _cmd_bench_shamir(args: argparse.Namespace) -> int:
    from reference.bench.micro import bench_shamir  # noqa: PLC0415

    if args.threshold + 1 > args.nodes:
        print(
            f"sdl: error: --nodes must be >= --threshold + 1 = {args.threshold + 1}; "
            f"got {args.nodes}",
            file=sys.stderr,
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
    return EXIT_OK


def _cmd_bench_round(args: argparse.Namespace) -> int:
    from concurrent.futures.process import BrokenProcessPool  # noqa: PLC0415

    from reference.bench import round as br  # noqa: PLC0415

    config = br.RoundConfig(
        nodes=args.nodes,
        dimension=args.dimension,
        dropouts=args.dropouts,
        colluders=args.colluders,
        threshold=args.threshold,
        packing=args.packing,
        committee=args.committee,
        noise_sources=args.noise_sources,
        receivers=args.receivers,
        precover=not args.no_precover,
        mechanism=args.mechanism,
        target_variance=args.variance,
        field=args.field,
        seed=args.seed,
    )
    if args.scaling and args.compare_flower:
        print("sdl: error: --scaling and --compare-flower run apart; choose one", file=sys.stderr)
        return EXIT_USAGE
    if args.compare_flower:
        br.check_flower()  # without flwr: the install hint, exit 2, nothing run
    progress = not args.quiet
    if args.scaling:
        bar = None
        if progress and sys.stderr.isatty():
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
            print("sdl: error: a benchmark's child process died (killed, or out of memory?)",
                  file=sys.stderr)  # fmt: skip
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
    br.scenario(config)  # a bad round is refused here, before anything runs
    try:
        # Flower first: its own pre-conditions fail before SDL's round has run.
        flower = (
            br.run_flower(config, shares=args.flower_shares, threshold=args.flower_threshold)
            if args.compare_flower
            else None
        )
        bench = br.bench_round(config, progress=progress)
    except BrokenProcessPool:
        print("sdl: error: a benchmark's child process died (killed, or out of memory?)",
              file=sys.stderr)  # fmt: skip
        return EXIT_FAILED
    if args.json:
        _emit(br.report_json(bench, flower))
    else:
        print(br.format_round(bench, flower))
    m = bench.measure
    return EXIT_OK if m.released and m.aggregate_correct else EXIT_FAILED


# ---------------------------------------------------------------------- parser


# ---------------------------------------------------------------------- conformance


def _cmd_conformance(args: argparse.Namespace) -> int:
    try:
        report = conformance.run(args.impl, timeout=args.timeout)
    except conformance.ConformanceStartError as exc:
        print(f"sdl: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        _emit(report.to_json())
    else:
        print(f"conformance of: {report.command}")
        print(f"{'operation':<22}{'status':<13}{'pass':>6}{'fail':>6}{'unsup':>7}")
        for r in report.ops.values():
            print(f"{r.op:<22}{r.status:<13}{r.passed:>6}{r.failed:>6}{r.unsupported:>7}")
            if r.first_mismatch:
                print(f"    first mismatch: {r.first_mismatch}")
        print("all supported operations pass" if report.ok else "FAILED")
    return EXIT_OK if report.ok else EXIT_FAILED


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        msg = f"expected a positive number of seconds; got {text!r}"
        raise argparse.ArgumentTypeError(msg) from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds; got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sdl",
        description=(
            "SDL: secure decentralized learning. Nodes Shamir-share their model updates "
            "over a prime field and add shares of integer DP noise; only the noisy sum is "
            "ever revealed. This command runs the reference implementation."
        ),
        epilog=textwrap.dedent(
            """\
            examples:
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
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        help="run and explain one secure-aggregation round on small data",
        description=(
            "Each node Shamir-shares a small private vector with every node; aggregators "
            "sum the shares they hold; one aggregator drops out and one lies; robust "
            "reconstruction still rebuilds the exact sum and names the liar."
        ),
    )
    demo.add_argument("--nodes", type=_positive, default=7, help="number of nodes (default 7)")
    demo.add_argument(
        "--threshold",
        type=_positive,
        default=2,
        help="t: any t nodes together learn nothing (default 2)",
    )
    demo.add_argument(
        "--dimension", type=_positive, default=4, help="length of each private vector (default 4)"
    )
    demo.add_argument(
        "--seed",
        metavar="HEX",
        help="hex seed for a reproducible run (default: fresh OS randomness)",
    )
    demo.add_argument("--json", action="store_true", help="print one JSON object")
    demo.set_defaults(func=_cmd_demo)

    vec = sub.add_parser(
        "vectors",
        help="generate or check test vectors",
        description=(
            "Test vectors are JSON files, one operation each, with inputs and expected "
            "outputs; negative cases (*_bad_<fault>.json) name the typed error expected. "
            "The format is in spec/10-test-vectors.md."
        ),
    )
    vsub = vec.add_subparsers(dest="vectors_command", required=True, metavar="ACTION")
    gen = vsub.add_parser(
        "generate",
        help="write every vector file into DIR",
        description="Write every vector family (field, xof, shamir, encoding, noise, "
        "noise_plan) into DIR/<family>/, replacing those folders atomically.",
    )
    gen.add_argument("dir", metavar="DIR")
    gen.add_argument("--json", action="store_true", help="print the written files as JSON")
    gen.set_defaults(func=_cmd_vectors_generate)
    chk = vsub.add_parser(
        "check",
        help="recompute and compare every vector file under DIR",
        description="Recompute every expected output from each file's inputs. Prints a "
        "pass/fail table naming each mismatching field; exits 1 on any failure.",
    )
    chk.add_argument("dir", metavar="DIR")
    chk.add_argument("--json", action="store_true", help="print the results as JSON")
    chk.set_defaults(func=_cmd_vectors_check)

    noise = sub.add_parser(
        "noise",
        help="sample integer DP noise, reproducibly from a seed",
        description="Integer DP noise (spec/06-noise.md): the fast table sampler, or the "
        "exact rational samplers, from a seed; for use as an oracle.",
    )
    nsub = noise.add_subparsers(dest="noise_command", required=True, metavar="ACTION")
    ns = nsub.add_parser(
        "sample",
        help="print COUNT samples of a mechanism",
        description=(
            "Draw COUNT samples from the stream Xof(seed, Tag('noise.sample', (i,))) "
            "where i is the mechanism's index (dgauss = 0, skellam = 1). The table "
            "sampler (default) reads a 32-byte tie seed, then 4 bytes per sample (8 for "
            "skellam), and is within statistical distance 2^-64 of the exact "
            "distribution: 10^6 samples take a few tens of milliseconds. The exact "
            "sampler uses rational arithmetic only and draws one sample after the "
            "other: about 50 microseconds per sample, more "
            "for large Skellam variances."
        ),
        epilog="example: sdl noise sample --mechanism skellam --variance 12.5 --count 5 --seed 1",
    )
    ns.add_argument(
        "--mechanism",
        choices=("dgauss", "skellam"),
        required=True,
        help="dgauss: discrete Gaussian with parameter sigma^2 = V; "
        "skellam: Poisson(V/2) - Poisson(V/2), variance V",
    )
    ns.add_argument(
        "--variance",
        type=_variance,
        required=True,
        metavar="V",
        help="a positive rational: 12.5, 25/2 or 1e4",
    )
    ns.add_argument("--count", type=_non_negative, required=True, metavar="K")
    ns.add_argument(
        "--sampler",
        choices=("table", "exact"),
        default="table",
        help="table (fast, statistical distance <= 2^-64; default) or exact",
    )
    ns.add_argument("--seed", required=True, metavar="HEX", help="1 to 64 hex digits")
    ns.add_argument("--json", action="store_true", help="print one JSON object")
    ns.set_defaults(func=_cmd_noise_sample)

    privacy = sub.add_parser(
        "privacy",
        help="what a training run costs in (epsilon, delta), and the noise a target needs",
        description=(
            "An RDP accountant for SDL's releases (spec/08-accounting.md): Gaussian, "
            "the sum of discrete Gaussians, Skellam; Poisson subsampling; composition "
            "over rounds; conversion to (epsilon, delta). Sensitivities and variances are "
            "in the integer domain of the encoded updates."
        ),
    )
    psub = privacy.add_subparsers(dest="privacy_command", required=True, metavar="ACTION")

    def privacy_options(p: argparse.ArgumentParser, *, calibrating: bool) -> None:
        p.add_argument("--mechanism", choices=("gaussian", "skellam", "dgauss"), required=True)
        if not calibrating:
            p.add_argument(
                "--noise-multiplier",
                type=_positive_float,
                metavar="Z",
                help="gaussian: sigma / sensitivity",
            )
            p.add_argument(
                "--variance",
                type=_positive_float,
                metavar="V",
                help="skellam: the total variance lambda of the released sum",
            )
            p.add_argument(
                "--sigma", type=_positive_float, metavar="S", help="dgauss: each client's sigma"
            )
        p.add_argument("--l2-sensitivity", type=_positive_float, metavar="S2")
        p.add_argument("--l1-sensitivity", type=_positive_float, metavar="S1")
        p.add_argument("--clients", type=_positive, metavar="N", help="dgauss: clients summed")
        p.add_argument("--dimension", type=_positive, metavar="DIM", help="dgauss: coordinates")
        p.add_argument(
            "--sampling-rate",
            type=_rate,
            default=1.0,
            metavar="Q",
            help="Poisson sampling rate in (0, 1] (default 1: no subsampling)",
        )
        p.add_argument("--rounds", type=_positive, required=True, metavar="R")
        p.add_argument("--delta", type=_open_unit, required=True, metavar="D")
        p.add_argument("--json", action="store_true", help="print one JSON object")

    pe = psub.add_parser(
        "epsilon",
        help="epsilon spent by R rounds of a mechanism",
        epilog="example: sdl privacy epsilon --mechanism gaussian --noise-multiplier 1.1 "
        "--sampling-rate 0.01 --rounds 1000 --delta 1e-5",
    )
    privacy_options(pe, calibrating=False)
    pe.set_defaults(func=_cmd_privacy_epsilon)
    pc = psub.add_parser(
        "calibrate",
        help="the least noise that meets a target epsilon over R rounds",
        epilog="example: sdl privacy calibrate --mechanism skellam --epsilon 2 --delta 1e-5 "
        "--rounds 100 --l2-sensitivity 256 --l1-sensitivity 8192",
    )
    pc.add_argument("--epsilon", type=_positive_float, required=True, metavar="E")
    privacy_options(pc, calibrating=True)
    pc.set_defaults(func=_cmd_privacy_calibrate)

    conf = sub.add_parser(
        "conformance",
        help="check another implementation of sections 2-4 over a stdio harness",
        description=(
            "Start COMMAND (no shell), send it one JSON-lines request per operation "
            "(spec/11-conformance.md) and compare each answer with the reference's. "
            "Exits 1 if any supported operation fails, 2 if COMMAND cannot start."
        ),
    )
    conf.add_argument("--impl", required=True, metavar="COMMAND", help="the command to run")
    conf.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=conformance.DEFAULT_TIMEOUT,
        help=f"seconds to wait for each answer (default {conformance.DEFAULT_TIMEOUT:g})",
    )
    conf.add_argument("--json", action="store_true", help="print one JSON object")
    conf.set_defaults(func=_cmd_conformance)

    cli_protocol.add_parsers(sub, positive=_positive, non_negative=_non_negative)
    cli_learning.add_parsers(sub, positive=_positive, non_negative=_non_negative)
    cli_evaluate.add_parsers(sub, positive=_positive, non_negative=_non_negative)

    bench = sub.add_parser("bench", help="benchmarks, as ratios against same-run baselines")
    bsub = bench.add_subparsers(dest="bench_command", required=True, metavar="BENCH")
    bs = bsub.add_parser(
        "shamir",
        help="share and reconstruct one vector; compare with numpy and galois",
        description="Times Shamir sharing of one d-vector to n holders (randomness from the "
        "XOF included) and reconstruction, against a plaintext numpy sum of n vectors and "
        "galois's matrix product for the same sharing, all in the same run.",
    )
    bs.add_argument("--field", choices=sorted(FIELDS), default="Field31")
    bs.add_argument("--nodes", type=_positive, default=20, help="holders n (default 20)")
    bs.add_argument("--threshold", type=_positive, default=9, help="t (default 9)")
    bs.add_argument("--dimension", type=_positive, default=1_000_000, help="d (default 10^6)")
    bs.add_argument("--repeats", type=_positive, default=5, help="timed runs (default 5)")
    bs.add_argument(
        "--galois-dimension",
        type=_non_negative,
        default=None,
        metavar="D",
        help="columns for the (slow) galois product, scaled to d; 0 skips it "
        "(default: all d columns, about 17 s at d = 10^6)",
    )
    bs.add_argument("--json", action="store_true", help="print one JSON object")
    bs.set_defaults(func=_cmd_bench_shamir)
    ba = bsub.add_parser(
        "accounting",
        help="time the accountant on many subsampled rounds, beside dp-accounting",
    )
    ba.add_argument("--rounds", type=_positive, default=1000)
    ba.add_argument("--sampling-rate", type=_rate, default=0.01)
    ba.add_argument("--noise-multiplier", type=_positive_float, default=1.1)
    ba.add_argument("--repeats", type=_positive, default=5)
    ba.add_argument("--json", action="store_true", help="print one JSON object")
    ba.set_defaults(func=_cmd_bench_accounting)
    from reference.bench import round as br  # noqa: PLC0415  (its argument types)

    variance, shares, needs = int(br.TARGET_VARIANCE), br.FLOWER_SHARES, br.FLOWER_THRESHOLD

    brp = bsub.add_parser(
        "round",
        help="one whole round, every role in one process, timed per phase and per node",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.dedent(
            f"""\
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
            the binary wire form; whether the exact sum was released; a plaintext baseline
            (the field sum of the same update vectors, timed in the same run) and the ratio
            round / plaintext; the peak memory (ru_maxrss) of the child process that ran
            the round, beside an idle child that only imports the modules. Inputs (each
            update, drawn from the XOF in [-8, 8]) are drawn as the simulator asks, timed
            apart and left out of the round's time.

            The defaults model the design meant to meet the targets, at the size the issue
            measured: 100 nodes and a 10^6-coordinate update (a 1M-parameter model), 5
            dropouts, 10 colluders (the noise plan's T). A committee of 35 aggregators
            holds packed Shamir shares: any t = 10 of them learn nothing, each share packs
            k = 20 coordinates, and any t + k = 30 partial sums rebuild the sum, so 5
            aggregators may drop. A contributor sends 35 shares of d/20 elements: 1.75
            elements per coordinate. 30 contributors add noise, the others send their
            update alone (30 - D - T = 15 honest sources remain in the worst case); the
            plan covers the D dropouts up front (no top-up stage); one node receives the
            sum. The noise is Skellam with a total variance of {variance:,} (`sdl run`
            calibrates about 1.8·10^7 for ε = 2); the field is Field31 (4 bytes an element).

            targets (each printed with its measured value and PASS or MISS):
              (a) the round's wall time <= 0.25 × Flower's SecAgg+ on the same n, d and
                  dropouts (measured with --compare-flower, else n/a)
              (b) the median contributor time <= Flower's median client time (measured
                  with --compare-flower, else the issue's {br.ISSUE_FLOWER_CLIENT_MEDIAN} s)
              (c) bytes sent per contributor (the most any sent) <= 3·d·ENCODED_SIZE
                  (12 MB at d = 10^6 in Field31)
              (d) the peak memory of the round's process <= 2 GB

            --compare-flower first runs Flower's own SecAgg+ workflow in a child process
            (reference/bench/flower.py) with the same n, d and dropouts, num_shares {shares}
            and threshold {needs} as the issue measured, then SDL's round, and prints both
            beside the plaintext sum. Flower is an optional extra (pip install -e '.[bench]');
            without it the flag exits 2 with that hint, having run nothing.

            --scaling sweeps d over 10^4, 10^5, 10^6 at the given n, then n over 10, 25,
            50, 100, 200 at d = 10^5, each round in its own child, keeping the other
            parameters and shrinking only what a small n cannot hold (printed per row);
            it prints a table, writes OUT/scaling.json and OUT/scaling.png (log-log, with a
            slope-1 line) and checks that the cost is linear in d: the time per coordinate
            at the largest d must be at most {br.LINEAR_TOLERANCE}x that at the smallest.

            Exit status: 0 when the round released the exact sum (targets are reported,
            not enforced: they depend on the machine), 1 when it did not, 2 on bad input."""
        ),
        epilog=textwrap.dedent(
            """\
            examples:
              sdl bench round                               the defaults (about 20 s)
              sdl bench round --dimension 100000 --json     one JSON object
              sdl bench round --compare-flower              beside Flower's SecAgg+
              sdl bench round --no-precover --noise-sources all --receivers all
                                                            the protocol's plain defaults
              sdl bench round --scaling --out /tmp/scaling  both sweeps, table and plot
              sdl bench round --scaling --scaling-dimensions 10000,100000 \\
                  --scaling-nodes 10,25 --out /tmp/scaling"""
        ),
    )
    brp.add_argument(
        "--nodes", type=_int_at_least(2), default=100, metavar="N", help="n (default 100)"
    )
    brp.add_argument(
        "--dimension",
        type=_positive,
        default=1_000_000,
        metavar="D",
        help="d, coordinates (default 10^6)",
    )
    brp.add_argument(
        "--dropouts",
        type=_non_negative,
        default=5,
        metavar="K",
        help="D: nodes that crash while sharing (default 5)",
    )
    brp.add_argument(
        "--colluders",
        type=_non_negative,
        default=10,
        metavar="C",
        help="T of the noise plan (default 10)",
    )
    brp.add_argument(
        "--threshold",
        type=_positive,
        default=10,
        metavar="T",
        help="Shamir's t: aggregators that learn nothing together (default 10)",
    )
    brp.add_argument(
        "--packing",
        type=_positive,
        default=20,
        metavar="K",
        help="k, coordinates packed per share (default 20)",
    )
    brp.add_argument(
        "--committee",
        type=br.count_or_all,
        default=35,
        metavar="M",
        help="aggregators, or 'all' nodes (default 35)",
    )
    brp.add_argument(
        "--noise-sources",
        type=br.count_or_all,
        default=30,
        metavar="S",
        help="contributors that add noise, or 'all' (default 30)",
    )
    brp.add_argument(
        "--receivers",
        type=br.count_or_all,
        default=1,
        metavar="R",
        help="nodes that rebuild the sum, or 'all' (default 1)",
    )
    brp.add_argument(
        "--no-precover",
        action="store_true",
        help="the plan covers dropouts by a top-up stage instead of up front",
    )
    brp.add_argument("--mechanism", choices=("skellam", "dgauss"), default="skellam")
    brp.add_argument(
        "--variance",
        type=_variance,
        default=br.TARGET_VARIANCE,
        metavar="V",
        help=f"σ*², the honest noise's total variance (default {br.TARGET_VARIANCE})",
    )
    brp.add_argument("--field", choices=sorted(FIELDS), default="Field31")
    brp.add_argument(
        "--seed",
        default="1",
        metavar="HEX",
        help="the round's seed, 1 to 64 hex digits (default 1); Flower's vectors too",
    )
    brp.add_argument(
        "--compare-flower",
        action="store_true",
        help="also run Flower's SecAgg+ on the same n, d, dropouts (needs the bench extra)",
    )
    brp.add_argument(
        "--flower-shares",
        type=_positive,
        default=br.FLOWER_SHARES,
        metavar="S",
        help=f"Flower's num_shares (default {br.FLOWER_SHARES})",
    )
    brp.add_argument(
        "--flower-threshold",
        type=_positive,
        default=br.FLOWER_THRESHOLD,
        metavar="R",
        help=f"Flower's reconstruction threshold (default {br.FLOWER_THRESHOLD})",
    )
    brp.add_argument("--scaling", action="store_true", help="sweep d, then n (see above)")
    brp.add_argument(
        "--scaling-dimensions",
        type=br.counts,
        default=br.SCALING_DIMENSIONS,
        metavar="LIST",
        help="the d sweep (default 10000,100000,1000000)",
    )
    brp.add_argument(
        "--scaling-nodes",
        type=br.counts,
        default=br.SCALING_NODES,
        metavar="LIST",
        help="the n sweep (default 10,25,50,100,200)",
    )
    brp.add_argument(
        "--scaling-nodes-dimension",
        type=_positive,
        default=br.SCALING_NODES_DIMENSION,
        metavar="D",
        help="d during the n sweep (default 100000)",
    )
    brp.add_argument(
        "--out",
        type=Path,
        default=Path("sdl-bench-round"),
        metavar="DIR",
        help="where --scaling writes scaling.json and scaling.png (default sdl-bench-round)",
    )
    brp.add_argument("--quiet", action="store_true", help="no progress bar")
    brp.add_argument("--json", action="store_true", help="print one JSON object")
    brp.set_defaults(func=_cmd_bench_round)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        # SDL's exact matrix product splits its columns among its own threads
        # and calls BLAS on small blocks; BLAS's own threads would only
        # compete with them (spec/02-field.md#matrix-product).
        with threadpool_limits(limits=1, user_api="blas"):
            code: int = args.func(args)
    except SdlError as exc:
        print(f"sdl: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return code


if __name__ == "__main__":
    sys.exit(main())
