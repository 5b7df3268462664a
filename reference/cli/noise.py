"""The noise and privacy subcommands of ``sdl``: noise sample, privacy epsilon|calibrate.

Spec: spec/06-noise.md; spec/08-accounting.md
"""

from __future__ import annotations

import argparse
import sys
from fractions import Fraction

from protocol.xof import Tag, Xof
from reference.cli.declare import EXIT_FAILED, EXIT_OK, EXIT_USAGE, Subparsers
from reference.cli.declare import emit as _emit
from reference.cli.types import (
    _non_negative,
    _open_unit,
    _positive,
    _positive_float,
    _rate,
    _variance,
)
from reference.common.seeds import seed_from_hex

# ---------------------------------------------------------------------- noise


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


def add_parsers(sub: Subparsers, **_: object) -> None:
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
