"""The noise and privacy subcommands of ``sdl``: noise sample, privacy epsilon|calibrate.

Spec: spec/06-noise.md; spec/08-accounting.md
"""

from __future__ import annotations

import argparse
from fractions import Fraction

from protocol import accounting
from protocol.errors import ParameterError
from protocol.xof import Tag, Xof
from reference.accounting import pld as pld_accounting
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
from reference.cli.types import (
    int_at_least,
    open_unit,
    positive_float,
    positive_int,
    positive_rational,
    power_of_ten,
    rate_in_unit,
)
from reference.common.seeds import seed_from_hex

#: Most samples ``noise sample`` draws in one call (the table sampler holds them all).
MAX_COUNT = 10**8
#: The exact Skellam sampler draws about one Poisson(1) sample per unit of variance (a few
#: microseconds each): ``--count`` × ``--variance`` is bounded so that it answers in seconds.
MAX_EXACT_SKELLAM_WORK = 10**7
#: Most rounds ``privacy`` composes: far beyond any training run, and an exact float.
MAX_ROUNDS = 10**12
#: Least gaussian noise multiplier and skellam variance ``privacy`` accepts: below it
#: epsilon exceeds 10^11 at every order, i.e. no privacy, and the float formulas
#: underflow towards a division by zero.
MIN_NOISE = 1e-6


def _noise_at_least_min(text: str) -> float:
    """An argparse type: a positive finite number, and at least :data:`MIN_NOISE`."""
    value = positive_float(text)
    if value < MIN_NOISE:
        raise argparse.ArgumentTypeError(
            f"expected a number >= {MIN_NOISE:g} (less noise gives no privacy); got {text}"
        )
    return value


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
    if args.sampler == "exact" and args.mechanism == "skellam":
        work = args.count * args.variance
        if work > MAX_EXACT_SKELLAM_WORK:
            raise ParameterError(
                f"--sampler exact --mechanism skellam draws about one Poisson(1) sample per "
                f"unit of variance: --count × --variance must be at most "
                f"{power_of_ten(MAX_EXACT_SKELLAM_WORK)}; got {args.count} × {args.variance} "
                "(the table sampler, the default, has no such cost)"
            )
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


#: The mechanism-specific flags, and the mechanisms each applies to.
_APPLIES_TO = {
    "noise_multiplier": ("gaussian",),
    "variance": ("skellam",),
    "sigma": ("dgauss",),
    "l2_sensitivity": ("skellam", "dgauss"),
    "l1_sensitivity": ("skellam", "dgauss"),
    "clients": ("dgauss",),
    "dimension": ("dgauss",),
}


def _check_privacy_args(args: argparse.Namespace, *, need_noise: bool) -> str | None:
    """The first missing, foreign or contradictory argument, as a one-line message, or None."""
    parameter = _NOISE_PARAMETER[args.mechanism]
    for name, mechanisms in _APPLIES_TO.items():
        if args.mechanism not in mechanisms and getattr(args, name, None) is not None:
            return (
                f"--{name.replace('_', '-')} does not apply to --mechanism {args.mechanism} "
                f"(only to {', '.join(mechanisms)})"
            )
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
    if args.mechanism in ("skellam", "dgauss") and args.l1_sensitivity < args.l2_sensitivity:
        return (
            f"--l1-sensitivity {args.l1_sensitivity:g} is below --l2-sensitivity "
            f"{args.l2_sensitivity:g}: an integer vector's L1 norm is at least its L2 norm"
        )
    return None


def _cmd_privacy_epsilon(args: argparse.Namespace) -> int:
    problem = _check_privacy_args(args, need_noise=True)
    if problem is not None:
        report_error(args.command_prog, problem)
        return EXIT_USAGE
    parameter = _NOISE_PARAMETER[args.mechanism]
    noise = getattr(args, parameter)
    event = _privacy_event(args, noise)
    result = accounting.epsilon(event, delta=args.delta)
    eps, answered = result.epsilon, "rdp"
    if args.accountant != "rdp":
        try:
            eps, answered = pld_accounting.epsilon_with(
                event, args.delta, accountant=args.accountant, discretization=args.discretization
            )
        except ParameterError as exc:
            report_error(args.command_prog, str(exc))
            return EXIT_USAGE
    body = {
        "epsilon": eps,
        "order": result.order,
        "delta": args.delta,
        "mechanism": args.mechanism,
        parameter: noise,
        "rounds": args.rounds,
        "sampling_rate": args.sampling_rate,
        "accountant": answered,
    }
    if args.json:
        _emit(body)
    else:
        print(
            f"epsilon = {eps:.6g} at delta = {args.delta:g} "
            f"({_answered_by(args, answered, result.order)}) after {args.rounds} round(s) of "
            f"{args.mechanism}, {parameter} = {noise:g}, sampling rate {args.sampling_rate:g}"
        )
    return EXIT_OK


def _answered_by(args: argparse.Namespace, answered: str, order: float) -> str:
    """How the text output names the bound: the Renyi order, or the PLD's discretization."""
    said = (
        f"Renyi order {order:g}"
        if answered == "rdp"
        else f"PLD accountant, discretization {args.discretization:g}"
    )
    return said if args.accountant == "rdp" else f"{said}; accountant {args.accountant}"


def _search_floor(mechanism: str) -> float:
    """The least noise ``calibrate`` considers for ``mechanism``."""
    # The distributed discrete Gaussian bound holds only from sigma = DDG_MIN_SIGMA up.
    return accounting.DDG_MIN_SIGMA if mechanism == "dgauss" else _GAUSSIAN_SKELLAM_FLOOR


def _least_noise(args: argparse.Namespace) -> float | None:
    """The least noise (from the search floor up) meeting the target, or None if none does."""

    def cost(noise: float) -> float:
        return accounting.epsilon(_privacy_event(args, noise), delta=args.delta).epsilon

    floor = _search_floor(args.mechanism)
    if cost(floor) <= args.epsilon:
        return floor
    # Find a noise level that meets the target, doubling from the floor, then bisect.
    high = 2 * floor
    while cost(high) > args.epsilon:
        high *= 2
        if high > _SEARCH_CEILING:
            return None
    return accounting.calibrate(
        lambda noise: _privacy_event(args, noise),
        target_epsilon=args.epsilon,
        delta=args.delta,
        low=high / 2,
        high=high,
    ).noise


def _least_noise_with(args: argparse.Namespace, rdp_noise: float) -> tuple[float, float, str]:
    """The least noise meeting the target under ``--accountant pld|best``, its ε, who answered.

    The RDP answer bounds the search: under ``best`` it already meets the
    target, and under ``pld`` the search doubles from it until the PLD does.
    """
    floor = _search_floor(args.mechanism)

    def event(noise: float) -> object:
        return _privacy_event(args, noise)

    def meets(noise: float) -> bool:
        try:
            eps, _ = pld_accounting.epsilon_with(
                event(noise),
                args.delta,
                accountant=args.accountant,
                discretization=args.discretization,
            )
        except ParameterError:
            if args.accountant != "pld":
                raise
            return False
        return bool(eps <= args.epsilon)

    high = rdp_noise
    while not meets(high):
        high *= 2
        if high > _SEARCH_CEILING:
            raise ParameterError(
                f"no noise up to {_SEARCH_CEILING:g} reaches epsilon = {args.epsilon:g} "
                f"with the PLD accountant"
            )
    low = high / 2
    while low > floor and meets(low):
        high, low = low, low / 2
    low = max(low, floor)
    if low >= high:
        found = high
        eps, who = pld_accounting.epsilon_with(
            event(found), args.delta, accountant=args.accountant, discretization=args.discretization
        )
        return found, eps, who
    result = pld_accounting.calibrate_with(
        event,
        target_epsilon=args.epsilon,
        delta=args.delta,
        low=low,
        high=high,
        accountant=args.accountant,
        discretization=args.discretization,
    )
    return result.noise, result.epsilon, result.accountant


def _cmd_privacy_calibrate(args: argparse.Namespace) -> int:
    problem = _check_privacy_args(args, need_noise=False)
    if problem is not None:
        report_error(args.command_prog, problem)
        return EXIT_USAGE
    parameter = _NOISE_PARAMETER[args.mechanism]
    if args.accountant == "pld":
        refusal = pld_accounting.domain_refusal(_privacy_event(args, _search_floor(args.mechanism)))
        if refusal is not None:
            report_error(args.command_prog, refusal)
            return EXIT_USAGE
    noise = _least_noise(args)
    if noise is None:
        report_error(
            args.command_prog,
            f"no noise up to {_SEARCH_CEILING:g} reaches epsilon = {args.epsilon:g} "
            f"at delta = {args.delta:g}",
            kind="unreachable",
        )
        return EXIT_FAILED
    eps, answered = 0.0, "rdp"
    if args.accountant != "rdp":
        try:
            noise, eps, answered = _least_noise_with(args, noise)
        except ParameterError as exc:
            report_error(args.command_prog, str(exc), kind="unreachable")
            return EXIT_FAILED
    achieved = accounting.epsilon(_privacy_event(args, noise), delta=args.delta)
    if args.accountant == "rdp":
        eps = achieved.epsilon
    body = {
        parameter: noise,
        "epsilon": eps,
        "order": achieved.order,
        "target_epsilon": args.epsilon,
        "delta": args.delta,
        "mechanism": args.mechanism,
        "rounds": args.rounds,
        "sampling_rate": args.sampling_rate,
        "accountant": answered,
    }
    if args.json:
        _emit(body)
    else:
        said = "" if args.accountant == "rdp" else f" (accountant {args.accountant}: {answered})"
        print(
            f"{parameter} = {noise:.6g} gives epsilon = {eps:.6g} "
            f"<= {args.epsilon:g} at delta = {args.delta:g} over {args.rounds} round(s){said}"
        )
    return EXIT_OK


# ---------------------------------------------------------------------- declarations

#: Where calibrate's search starts for gaussian and skellam, and where it gives up.
_GAUSSIAN_SKELLAM_FLOOR = 1e-3
_SEARCH_CEILING = 1e12

_NOISE = Command(
    name="noise",
    summary="sample integer DP noise, reproducibly from a seed",
    description="""
        Integer DP noise (spec/06-noise.md): the fast table sampler, or the exact rational
        samplers, from a seed; for use as an oracle.
    """,
    examples=(
        Example(
            "sdl noise sample --mechanism skellam --variance 12.5 --count 5 --seed 1",
            "five Skellam samples",
        ),
    ),
    subcommands=(
        Command(
            name="sample",
            summary="print COUNT samples of a mechanism",
            description="""
                Draw K samples from the stream Xof(seed, Tag('noise.sample', (i,))) where i
                is the mechanism's index (dgauss = 0, skellam = 1). The table sampler
                (default) reads a 32-byte tie seed, then 4 bytes per sample (8 for skellam),
                and is within statistical distance 2^-64 of the exact distribution: 10^6
                samples take a few tens of milliseconds. The exact sampler uses rational
                arithmetic only and draws one sample after the other: about 50 microseconds
                per discrete Gaussian sample at any variance; a Skellam sample costs about
                2.5 microseconds per unit of variance, so --count × --variance is at most
                10^7 there. Prints one integer per line.
            """,
            options=(
                Option(
                    ("--mechanism",),
                    "dgauss: discrete Gaussian with parameter sigma^2 = V; "
                    "skellam: Poisson(V/2) - Poisson(V/2), variance V",
                    choices=("dgauss", "skellam"),
                    required=True,
                ),
                Option(
                    ("--variance",),
                    "a positive rational: 12.5, 25/2 or 1e4",
                    type=positive_rational,
                    metavar="V",
                    required=True,
                ),
                Option(
                    ("--count",),
                    f"how many samples to draw, at most {power_of_ten(MAX_COUNT)}",
                    type=int_at_least(0, MAX_COUNT),
                    metavar="K",
                    required=True,
                ),
                Option(
                    ("--sampler",),
                    "table (fast, statistical distance <= 2^-64) or exact (rational arithmetic)",
                    choices=("table", "exact"),
                    default="table",
                ),
                Option(("--seed",), "1 to 64 hex digits", metavar="HEX", required=True),
                JSON,
            ),
            examples=(
                Example(
                    "sdl noise sample --mechanism skellam --variance 12.5 --count 5 --seed 1",
                    "five Skellam samples, one per line",
                ),
                Example(
                    "sdl noise sample --mechanism dgauss --variance 25/2 --count 3 --seed 1f "
                    "--sampler exact --json",
                    "three exact discrete Gaussian samples, as JSON",
                ),
            ),
            run=_cmd_noise_sample,
        ),
    ),
)


_UNSET = "none"

#: What ``privacy epsilon`` takes as the noise, one option per mechanism.
_NOISE_OPTIONS = (
    Option(
        ("--noise-multiplier",),
        f"gaussian: sigma / sensitivity, at least {MIN_NOISE:g}",
        type=_noise_at_least_min,
        metavar="Z",
        absent=_UNSET,
    ),
    Option(
        ("--variance",),
        f"skellam: the total variance lambda of the released sum, at least {MIN_NOISE:g}",
        type=_noise_at_least_min,
        metavar="V",
        absent=_UNSET,
    ),
    Option(
        ("--sigma",),
        f"dgauss: each client's sigma (at least {accounting.DDG_MIN_SIGMA:g})",
        type=positive_float,
        metavar="S",
        absent=_UNSET,
    ),
)

#: What ``privacy calibrate`` takes instead: the epsilon to meet.
_TARGET_OPTIONS = (
    Option(("--epsilon",), "the target epsilon", type=positive_float, metavar="E", required=True),
)

_MECHANISM_OPTION = Option(
    ("--mechanism",),
    "the noise mechanism released each round",
    choices=("gaussian", "skellam", "dgauss"),
    required=True,
)

#: The options both ``privacy`` subcommands take after the noise.
_RELEASE_OPTIONS = (
    Option(
        ("--l2-sensitivity",),
        "skellam, dgauss: L2 norm bound of one contribution",
        type=positive_float,
        metavar="S2",
        absent=_UNSET,
    ),
    Option(
        ("--l1-sensitivity",),
        "skellam, dgauss: L1 norm bound of one contribution, at least the L2 bound",
        type=positive_float,
        metavar="S1",
        absent=_UNSET,
    ),
    Option(
        ("--clients",),
        "dgauss: how many clients' noise is summed",
        type=positive_int,
        metavar="N",
        absent=_UNSET,
    ),
    Option(
        ("--dimension",),
        "dgauss: the number of coordinates",
        type=positive_int,
        metavar="DIM",
        absent=_UNSET,
    ),
    Option(
        ("--sampling-rate",),
        "Poisson sampling rate in (0, 1]",
        type=rate_in_unit,
        default=1.0,
        metavar="Q",
        shown_default="1, no subsampling",
    ),
    Option(
        ("--rounds",),
        f"number of rounds composed, at most {power_of_ten(MAX_ROUNDS)}",
        type=int_at_least(1, MAX_ROUNDS),
        metavar="R",
        required=True,
    ),
    Option(
        ("--delta",),
        "the delta of (epsilon, delta), in (0, 1)",
        type=open_unit,
        metavar="D",
        required=True,
    ),
    Option(
        ("--accountant",),
        "rdp (Renyi DP), pld (privacy loss distribution) or best (the smaller epsilon of "
        "the two; pld answers only where it applies); JSON's accountant key says which answered",
        choices=pld_accounting.ACCOUNTANTS,
        default="best",
    ),
    Option(
        ("--discretization",),
        "pld, best: the width of a privacy-loss bucket (smaller is tighter and slower)",
        type=positive_float,
        default=pld_accounting.DEFAULT_DISCRETIZATION,
        metavar="W",
        shown_default=f"{pld_accounting.DEFAULT_DISCRETIZATION:g}",
    ),
    JSON,
)

_PRIVACY = Command(
    name="privacy",
    summary="what a training run costs in (epsilon, delta), and the noise a target needs",
    description="""
        An RDP accountant for SDL's releases (spec/08-accounting.md): Gaussian, the sum of
        discrete Gaussians, Skellam; Poisson subsampling; composition over rounds;
        conversion to (epsilon, delta). Sensitivities and variances are in the integer
        domain of the encoded updates.
    """,
    examples=(
        Example(
            "sdl privacy epsilon --mechanism gaussian --noise-multiplier 1.1 "
            "--sampling-rate 0.01 --rounds 1000 --delta 1e-5",
            "the epsilon of DP-SGD-like training",
        ),
        Example(
            "sdl privacy calibrate --mechanism gaussian --epsilon 2 --rounds 100 --delta 1e-5",
            "the noise multiplier a target epsilon needs",
        ),
    ),
    subcommands=(
        Command(
            name="epsilon",
            summary="epsilon spent by R rounds of a mechanism",
            description="""
                The epsilon, at the given delta, that R rounds of the mechanism spend, each
                round Poisson-subsampled at rate Q, and the Renyi order that attains it.
                Each mechanism takes its own flags:

                  gaussian  --noise-multiplier
                  skellam   --variance --l2-sensitivity --l1-sensitivity
                  dgauss    --sigma --l2-sensitivity --l1-sensitivity --clients --dimension

                A missing flag the mechanism needs, or a flag of another mechanism, exits 2
                naming it, as does --l1-sensitivity below --l2-sensitivity.

                --accountant chooses the bound: rdp, pld (a pessimistic privacy loss
                distribution; for skellam and dgauss only when one unit changes a single
                coordinate by an integer, else exit 2 naming the domain), or best (default),
                the smaller of the two. The JSON's "accountant" says which answered; its
                "order" is always the RDP bound's Renyi order.
            """,
            options=(_MECHANISM_OPTION, *_NOISE_OPTIONS, *_RELEASE_OPTIONS),
            examples=(
                Example(
                    "sdl privacy epsilon --mechanism gaussian --noise-multiplier 1.1 "
                    "--sampling-rate 0.01 --rounds 1000 --delta 1e-5",
                    "subsampled Gaussian over 1000 rounds",
                ),
                Example(
                    "sdl privacy epsilon --mechanism skellam --variance 1e7 "
                    "--l2-sensitivity 256 --l1-sensitivity 8192 --rounds 100 --delta 1e-5",
                    "Skellam noise of total variance 10^7 over 100 rounds",
                ),
                Example(
                    "sdl privacy epsilon --mechanism gaussian --noise-multiplier 1.1 "
                    "--sampling-rate 0.01 --rounds 1000 --delta 1e-5 --accountant pld --json",
                    "the same with the PLD accountant; the JSON's accountant key says pld",
                ),
                Example(
                    "sdl privacy epsilon --mechanism dgauss --sigma 100 --clients 10 "
                    "--dimension 1000 --l2-sensitivity 256 --l1-sensitivity 8192 "
                    "--rounds 100 --delta 1e-5 --json",
                    "ten clients' discrete Gaussians summed, as JSON",
                ),
            ),
            run=_cmd_privacy_epsilon,
        ),
        Command(
            name="calibrate",
            summary="the least noise that meets a target epsilon over R rounds",
            description=f"""
                The least noise parameter whose epsilon, over R rounds at the given delta,
                is at most E: gaussian's noise multiplier, skellam's total variance, or
                dgauss's per-client sigma. Besides the common flags, each mechanism takes:

                  gaussian  (nothing more)
                  skellam   --l2-sensitivity --l1-sensitivity
                  dgauss    --l2-sensitivity --l1-sensitivity --clients --dimension

                A missing flag the mechanism needs, or a flag of another mechanism, exits 2
                naming it, as does --l1-sensitivity below --l2-sensitivity.

                The search starts at {_GAUSSIAN_SKELLAM_FLOOR:g} (gaussian, skellam) or at
                sigma = {accounting.DDG_MIN_SIGMA:g}, the least sigma the dgauss bound holds
                for; if that already meets the target it is the answer. Otherwise the noise
                is doubled until it does, then bisected. Exits 1 if no noise up to
                {_SEARCH_CEILING:.0e} meets the target. With --accountant pld or best the
                search starts from the RDP answer and bisects on the chosen accountant's
                epsilon, to a relative tolerance of 1e-4.
            """,
            options=(_MECHANISM_OPTION, *_TARGET_OPTIONS, *_RELEASE_OPTIONS),
            examples=(
                Example(
                    "sdl privacy calibrate --mechanism gaussian --epsilon 2 --rounds 100 "
                    "--delta 1e-5",
                    "the noise multiplier for epsilon 2",
                ),
                Example(
                    "sdl privacy calibrate --mechanism gaussian --epsilon 2 --rounds 100 "
                    "--delta 1e-5 --accountant best",
                    "the least noise multiplier under the smaller of the RDP and PLD bounds",
                ),
                Example(
                    "sdl privacy calibrate --mechanism skellam --epsilon 2 --delta 1e-5 "
                    "--rounds 100 --l2-sensitivity 256 --l1-sensitivity 8192",
                    "the Skellam variance for epsilon 2",
                ),
                Example(
                    "sdl privacy calibrate --mechanism dgauss --epsilon 2 --delta 1e-5 "
                    "--rounds 100 --l2-sensitivity 256 --l1-sensitivity 8192 --clients 10 "
                    "--dimension 1000 --json",
                    "each client's sigma for epsilon 2, as JSON",
                ),
            ),
            run=_cmd_privacy_calibrate,
        ),
    ),
)

COMMANDS = (_NOISE, _PRIVACY)
