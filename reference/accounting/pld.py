"""The PLD accountant: privacy loss distributions of SDL's events, composed by dp-accounting.

Spec: spec/08-accounting.md#pld-accountant
Proof: proofs_notes/pld-upper-bound.md

:func:`pld_epsilon` maps an event of :mod:`protocol.accounting` to a
pessimistic privacy loss distribution (PLD) and reads ``ε`` for ``δ`` from
it. The Gaussian uses dp-accounting's own construction; the integer
mechanisms (discrete Gaussian, sum of discrete Gaussians, Skellam) are built
here from bounds on their exact pmfs, in both neighbouring directions, and
handed to dp-accounting, which rounds, composes and converts. Every mass the
construction cannot place (tails outside the window, outcomes the lower
distribution cannot produce) is charged as *infinite* privacy loss, which
dp-accounting carries through composition and charges in every ``δ(ε)``.
:func:`best_epsilon` answers with the smaller of the RDP and PLD bounds.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

import numpy as np
import numpy.typing as npt
from dp_accounting.pld import privacy_loss_distribution as _pld
from scipy import special  # type: ignore[import-untyped]

from protocol import accounting
from protocol.errors import ParameterError

__all__ = [
    "ACCOUNTANTS",
    "DEFAULT_DISCRETIZATION",
    "BestResult",
    "PldResult",
    "best_epsilon",
    "calibrate_with",
    "domain_refusal",
    "epsilon_with",
    "pld_epsilon",
]

#: The accountants a caller may choose. Spec: spec/08-accounting.md#pld-accountant
ACCOUNTANTS: tuple[str, ...] = ("rdp", "pld", "best")
#: Default width of a privacy-loss bucket.
DEFAULT_DISCRETIZATION = 1e-4
#: Bound on each integer pmf's mass left outside its window (charged as infinite loss).
TAIL_MASS = 1e-25
#: Bound on the upper mass of each direction's far outcomes charged as infinite loss.
PRUNE_MASS = 1e-18
#: Relative error charged on every float pmf value (libm ``exp``/``log`` and scipy's
#: ``ive`` are accurate to a few ulps; this is 10^5 times more).
RELATIVE_ERROR = 1e-10
#: Added (relative to ``max(1, |L|)``) to every privacy loss before it is rounded up.
LOSS_MARGIN = 1e-9
#: Most outcomes an integer pmf may have before the PLD accountant refuses.
MAX_SUPPORT = 2_000_000
#: Most multiply-adds the convolution of a sum of discrete Gaussians may take.
MAX_CONVOLUTION_WORK = 3e9
#: Most buckets a composed PLD may be expected to span before the accountant refuses.
MAX_LOSS_BUCKETS = 10**8
#: Most runs one ``ComposedEvent`` may compose under the PLD accountant.
MAX_COMPOSITIONS = 10**7

_UNIT_ROUNDOFF = 2.0**-53

#: dp-accounting's ``PrivacyLossDistribution`` (untyped upstream).
Pld: TypeAlias = Any


# ---------------------------------------------------------------- results


@dataclass(frozen=True, kw_only=True)
class PldResult:
    """``(epsilon, delta)``-DP read from a pessimistic PLD with buckets of width ``discretization``.

    Spec: spec/08-accounting.md#pld-accountant
    """

    epsilon: float
    delta: float
    discretization: float
    accountant: Literal["pld"] = "pld"


@dataclass(frozen=True, kw_only=True)
class BestResult:
    """The smaller of the RDP and PLD bounds, and which accountant gave it.

    Spec: spec/08-accounting.md#choosing-an-accountant

    ``pld`` is None when the PLD accountant refused the event; ``pld_refusal``
    then says why.
    """

    epsilon: float
    delta: float
    accountant: Literal["rdp", "pld"]
    rdp: accounting.EpsilonResult
    pld: PldResult | None
    pld_refusal: str | None


# ---------------------------------------------------------------- integer pmfs


@dataclass(frozen=True)
class _Bounds:
    """Pointwise bounds ``lower <= p(x) <= upper`` on an integer pmf over ``offset + i``.

    ``outside`` bounds the pmf's mass off the window.
    """

    offset: int
    lower: npt.NDArray[np.float64]
    upper: npt.NDArray[np.float64]
    outside: float


def _check_support(size: int, what: str) -> None:
    if size > MAX_SUPPORT:
        raise ParameterError(
            f"the PLD accountant needs {size} outcomes for {what}, more than its limit of "
            f"{MAX_SUPPORT}; use the RDP accountant"
        )


def _dgauss_bounds(sigma2: float) -> _Bounds:
    """Bounds on ``N_Z(0, σ²)(x) = e^{−x²/(2σ²)} / Σ_y e^{−y²/(2σ²)}``, normalised directly."""
    w = math.ceil(math.sqrt(2 * sigma2 * math.log(1 / TAIL_MASS))) + 1
    _check_support(2 * w + 1, f"a discrete Gaussian with sigma2 = {sigma2}")
    x = np.arange(-w, w + 1, dtype=np.float64)
    kernel = np.exp(-(x * x) / (2 * sigma2))
    z_window = math.fsum(kernel.tolist())
    # Beyond w the ratio of consecutive terms e^{−(2x+1)/(2σ²)} is at most r, so
    # Σ_{x>w} <= e^{−(w+1)²/(2σ²)} / (1 − r): a geometric bound.
    r = math.exp(-(2 * w + 3) / (2 * sigma2))
    one_side = math.exp(-((w + 1) ** 2) / (2 * sigma2)) / (1 - r)
    z_low, z_high = (
        z_window * (1 - RELATIVE_ERROR),
        (z_window + 2 * one_side) * (1 + RELATIVE_ERROR),
    )
    return _Bounds(
        offset=-w,
        lower=kernel / z_high * (1 - RELATIVE_ERROR),
        upper=kernel / z_low * (1 + RELATIVE_ERROR),
        outside=2 * one_side / z_low * (1 + RELATIVE_ERROR),
    )


def _convolve_bounds(a: _Bounds, b: _Bounds) -> _Bounds:
    """Bounds on the pmf of the sum of two independent variables with bounds ``a`` and ``b``.

    A sum of ``m`` positive float products is within relative ``γ = 2mu`` of its value.
    The mass of pairs with a term off its window is at most ``a.outside + b.outside``;
    it is added to every upper bound and is all the sum can have off its window.
    """
    m = min(len(a.lower), len(b.lower))
    gamma = 2 * m * _UNIT_ROUNDOFF
    off = a.outside + b.outside
    return _Bounds(
        offset=a.offset + b.offset,
        lower=np.convolve(a.lower, b.lower) * (1 - gamma),
        upper=np.convolve(a.upper, b.upper) * (1 + gamma) + off,
        outside=off,
    )


def _ddg_bounds(sigma2: float, clients: int) -> _Bounds:
    """Bounds on the pmf of ``Σ_{i=1}^{n} N_Z(0, σ²)``, by ``n − 1`` exact convolutions."""
    one = _dgauss_bounds(sigma2)
    width = len(one.lower)
    _check_support(clients * (width - 1) + 1, f"a sum of {clients} discrete Gaussians")
    work = width * width * clients * (clients - 1) / 2
    if work > MAX_CONVOLUTION_WORK:
        raise ParameterError(
            f"the PLD accountant needs about {work:.2g} multiply-adds to sum {clients} "
            f"discrete Gaussians with sigma2 = {sigma2}, more than its limit of "
            f"{MAX_CONVOLUTION_WORK:.0e}; use the RDP accountant"
        )
    total = one
    for _ in range(clients - 1):
        total = _convolve_bounds(total, one)
    return total


def _skellam_tail(variance: float, t: int) -> float:
    """Chernoff bound on ``P(Sk(λ) >= t)``, ``t > 0``.

    ``E e^{sX} = exp(λ(cosh s − 1))``; the bound ``e^{λ(cosh s − 1) − st}`` at ``s = asinh(t/λ)``.
    """
    u = t / variance
    return math.exp(variance * (math.sqrt(1 + u * u) - 1) - t * math.asinh(u))


def _skellam_bounds(variance: float) -> _Bounds:
    """Bounds on ``Sk(λ)(x) = e^{−λ} I_{|x|}(λ)`` (``scipy.special.ive``), window by Chernoff."""
    lo, hi = 1, max(2, math.ceil(2 * math.sqrt(variance * math.log(1 / TAIL_MASS)) + 60))
    _check_support(2 * hi + 1, f"a Skellam variable with variance {variance}")
    while _skellam_tail(variance, hi) > TAIL_MASS / 2:
        hi *= 2
        _check_support(2 * hi + 1, f"a Skellam variable with variance {variance}")
    while hi - lo > 1:  # least t with tail(t) <= TAIL_MASS / 2 (the bound decreases in t)
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if _skellam_tail(variance, mid) <= TAIL_MASS / 2 else (mid, hi)
    w = hi - 1  # the window is [−w, w]; off it lies P(|X| >= w + 1) <= TAIL_MASS
    x = np.arange(-w, w + 1, dtype=np.float64)
    values = special.ive(np.abs(x), variance)
    if not np.all(np.isfinite(values)):
        raise ParameterError(f"Skellam pmf is not finite in floating point at variance {variance}")
    return _Bounds(
        offset=-w,
        lower=values * (1 - RELATIVE_ERROR),
        # The absolute 1e-300 covers values that underflow to 0.
        upper=values * (1 + RELATIVE_ERROR) + 1e-300,
        outside=2 * _skellam_tail(variance, w + 1) * (1 + RELATIVE_ERROR),
    )


# ------------------------------------------------------- shifted pairs to PLDs


def _rounded(
    upper: npt.NDArray[np.float64],
    lower: npt.NDArray[np.float64],
    outside: float,
    discretization: float,
) -> tuple[dict[int, float], float]:
    """The pessimistically rounded PLD of ``upper`` over ``lower``, and its infinity mass.

    Upper masses use upper bounds and lower masses lower bounds, so every
    loss and every mass is at least the true one; losses are rounded up.
    Proof: proofs_notes/pld-upper-bound.md
    """
    # Outcomes whose upper mass is below PRUNE_MASS / len (at most PRUNE_MASS in all), or
    # that the lower distribution cannot produce, are charged as infinite loss; this
    # keeps the far tails, where the bounds are loose, from spreading the PLD.
    tiny = PRUNE_MASS / max(1, len(upper))
    present = upper > 0
    infinite = present & ((lower <= 0) | (upper < tiny))
    infinity_mass = outside + math.fsum(upper[infinite].tolist())
    ok = present & ~infinite
    mass = upper[ok]
    loss = np.log(mass) - np.log(lower[ok])
    loss = loss + LOSS_MARGIN * np.maximum(1.0, np.abs(loss))
    buckets = np.ceil(loss / discretization).astype(np.int64)
    keys, inverse = np.unique(buckets, return_inverse=True)
    sums = np.bincount(inverse, weights=mass) * (1 + 2 * len(mass) * _UNIT_ROUNDOFF)
    return dict(zip(keys.tolist(), sums.tolist(), strict=True)), infinity_mass


def _shifted_pair_pld(noise: _Bounds, *, shift: int, q: float, discretization: float) -> Pld:
    """PLD of ``P = noise`` against ``Q = noise + shift`` under Poisson sampling at rate ``q``.

    With ``M(D') = P`` and ``M(D) = (1 − q)P + qQ`` (D has the unit, D' not):
    REMOVE is ``M(D)`` over ``M(D')``, ADD is ``M(D')`` over ``M(D)``
    (Zhu, Dong, Wang 2022, AISTATS, Theorem 11: a dominating pair of the
    subsampled mechanism). Both are built and kept.
    Spec: spec/08-accounting.md#pld-constructions
    Proof: proofs_notes/pld-upper-bound.md (items 3 and 4)
    """
    n = len(noise.lower)
    size = n + shift
    p_lo, p_hi = np.zeros(size), np.zeros(size)
    s_lo, s_hi = np.zeros(size), np.zeros(size)
    p_lo[:n], p_hi[:n] = noise.lower, noise.upper
    s_lo[shift:], s_hi[shift:] = noise.lower, noise.upper
    if q == 1:
        with_lo, with_hi = s_lo, s_hi
    else:
        with_lo = ((1 - q) * p_lo + q * s_lo) * (1 - 4 * _UNIT_ROUNDOFF)
        with_hi = ((1 - q) * p_hi + q * s_hi) * (1 + 4 * _UNIT_ROUNDOFF)
    # Off the grid, P and Q each have at most noise.outside, hence so does any mixture.
    remove, remove_inf = _rounded(with_hi, p_lo, noise.outside, discretization)
    add, add_inf = _rounded(p_hi, with_lo, noise.outside, discretization)
    return _pld.PrivacyLossDistribution.create_from_rounded_probability(
        remove,
        remove_inf,
        discretization,
        pessimistic_estimate=True,
        rounded_probability_mass_function_add=add,
        infinity_mass_add=add_inf,
        symmetric=False,
    )


def _single_coordinate_shift(
    *, l2: float, l1: float | None, dimension: int | None, what: str
) -> int:
    """The worst integer shift of the release, when it changes one coordinate only.

    Integer vectors with two non-zero coordinates have ℓ2 norm >= √2 and ℓ1
    norm >= 2. Otherwise (or when ``dimension == 1``) the change is ``k·e_i``
    with ``|k| <= floor(min(Δ₂, Δ₁))``, and the shift by that ``k`` dominates
    every smaller one: the noise is symmetric and log-concave, hence has a
    monotone likelihood ratio (proofs_notes/pld-upper-bound.md, item 2).
    """
    bound = l2 if l1 is None else min(l2, l1)
    single = l2 < math.sqrt(2) or (l1 is not None and l1 < 2) or dimension == 1
    if not single:
        raise ParameterError(
            f"the PLD accountant handles {what} only when one unit changes a single"
            " coordinate: it needs l2_sensitivity < sqrt(2)"
            + (", l1_sensitivity < 2" if l1 is not None else "")
            + (" or dimension = 1" if dimension is not None else "")
            + f"; got l2_sensitivity = {l2}"
            + (f", l1_sensitivity = {l1}" if l1 is not None else "")
            + (f", dimension = {dimension}" if dimension is not None else "")
        )
    shift = math.floor(bound)
    if shift < 1:
        raise ParameterError(
            f"the PLD accountant needs an integer sensitivity of at least 1 for {what}; "
            f"got min(l2, l1) = {bound}"
        )
    return shift


def _discrete_pair(event: object) -> tuple[_Bounds, int]:
    """The noise bounds and worst shift of an integer mechanism event."""
    if isinstance(event, accounting.DiscreteGaussianEvent):
        shift = _single_coordinate_shift(
            l2=event.l2_sensitivity, l1=None, dimension=None, what="the discrete Gaussian"
        )
        return _dgauss_bounds(event.sigma2), shift
    if isinstance(event, accounting.DistributedDiscreteGaussianEvent):
        shift = _single_coordinate_shift(
            l2=event.l2_sensitivity,
            l1=event.l1_sensitivity,
            dimension=event.dimension,
            what="the sum of discrete Gaussians",
        )
        return _ddg_bounds(event.sigma2, event.clients), shift
    if isinstance(event, accounting.SkellamEvent):
        shift = _single_coordinate_shift(
            l2=event.l2_sensitivity, l1=event.l1_sensitivity, dimension=None, what="Skellam"
        )
        return _skellam_bounds(event.variance), shift
    raise ParameterError(
        "the PLD accountant subsamples GaussianEvent, DiscreteGaussianEvent, "
        "DistributedDiscreteGaussianEvent and SkellamEvent only; "
        f"got {type(event).__name__}"
    )


def domain_refusal(event: object) -> str | None:
    """Why the PLD accountant has no construction for ``event``'s shape, or None if it has.

    Spec: spec/08-accounting.md#pld-constructions

    Only the structure is checked (event types, sensitivities); the limits on
    size are checked when the PLD is built.
    """
    try:
        if isinstance(event, accounting.ComposedEvent):
            return domain_refusal(event.event)
        if isinstance(event, accounting.ComposedSequence):
            return next((r for r in map(domain_refusal, event.events) if r is not None), None)
        inner = event.event if isinstance(event, accounting.PoissonSampledEvent) else event
        if isinstance(inner, accounting.GaussianEvent):
            return None
        if isinstance(inner, accounting.DiscreteGaussianEvent):
            _single_coordinate_shift(
                l2=inner.l2_sensitivity, l1=None, dimension=None, what="the discrete Gaussian"
            )
        elif isinstance(inner, accounting.DistributedDiscreteGaussianEvent):
            _single_coordinate_shift(
                l2=inner.l2_sensitivity,
                l1=inner.l1_sensitivity,
                dimension=inner.dimension,
                what="the sum of discrete Gaussians",
            )
        elif isinstance(inner, accounting.SkellamEvent):
            _single_coordinate_shift(
                l2=inner.l2_sensitivity, l1=inner.l1_sensitivity, dimension=None, what="Skellam"
            )
        else:
            return f"no PLD rule for events of type {type(inner).__name__}"
    except ParameterError as exc:
        return str(exc)
    return None


# ---------------------------------------------------------------- events to PLDs


@functools.singledispatch
def _pld_of(event: object, discretization: float) -> Pld:
    raise ParameterError(f"no PLD rule for events of type {type(event).__name__}; got {event!r}")


@_pld_of.register
def _(event: accounting.GaussianEvent, discretization: float) -> Pld:
    # dp-accounting's connect-the-dots construction (Doroshenko et al. 2022), pessimistic.
    return _pld.from_gaussian_mechanism(
        standard_deviation=event.noise_multiplier,
        sensitivity=1.0,
        pessimistic_estimate=True,
        value_discretization_interval=discretization,
    )


def _discrete_pld(event: object, discretization: float) -> Pld:
    noise, shift = _discrete_pair(event)
    return _shifted_pair_pld(noise, shift=shift, q=1.0, discretization=discretization)


_pld_of.register(accounting.DiscreteGaussianEvent, _discrete_pld)
_pld_of.register(accounting.DistributedDiscreteGaussianEvent, _discrete_pld)
_pld_of.register(accounting.SkellamEvent, _discrete_pld)


@_pld_of.register
def _(event: accounting.PoissonSampledEvent, discretization: float) -> Pld:
    q = event.sampling_rate
    if q == 0:
        return _pld.identity(value_discretization_interval=discretization)
    inner = event.event
    if isinstance(inner, accounting.GaussianEvent):
        # dp-accounting builds both directions of the subsampled Gaussian.
        return _pld.from_gaussian_mechanism(
            standard_deviation=inner.noise_multiplier,
            sensitivity=1.0,
            pessimistic_estimate=True,
            value_discretization_interval=discretization,
            sampling_prob=q,
        )
    noise, shift = _discrete_pair(inner)
    return _shifted_pair_pld(noise, shift=shift, q=q, discretization=discretization)


@_pld_of.register
def _(event: accounting.ComposedEvent, discretization: float) -> Pld:
    if event.count == 0:
        return _pld.identity(value_discretization_interval=discretization)
    if event.count > MAX_COMPOSITIONS:
        raise ParameterError(
            f"the PLD accountant composes at most {MAX_COMPOSITIONS} runs; got count = "
            f"{event.count}; use the RDP accountant"
        )
    return _pld_of(event.event, discretization).self_compose(event.count)


@_pld_of.register
def _(event: accounting.ComposedSequence, discretization: float) -> Pld:
    total = _pld.identity(value_discretization_interval=discretization)
    for inner in event.events:
        total = total.compose(_pld_of(inner, discretization))
    return total


# ---------------------------------------------------------------- ε from a PLD


def _check_delta(delta: float) -> float:
    if isinstance(delta, bool) or not isinstance(delta, int | float) or not 0 < delta < 1:
        raise ParameterError(f"delta must be in (0, 1); got {delta!r}")
    return float(delta)


def _check_discretization(discretization: float) -> float:
    if (
        isinstance(discretization, bool)
        or not isinstance(discretization, int | float)
        or not 0 < discretization <= 1
    ):
        raise ParameterError(f"discretization must be in (0, 1]; got {discretization!r}")
    return float(discretization)


def _check_width(event: object, discretization: float) -> None:
    """Refuse an event whose composed PLD would span more than :data:`MAX_LOSS_BUCKETS` buckets.

    The RDP value at order 1.01 bounds the KL divergence, the mean privacy
    loss; the loss's spread is of the order of its square root's.
    """
    kl = accounting.rdp(event, [1.01])[0]
    width = (kl + 10 * math.sqrt(2 * kl) + 50) / discretization
    if not width <= MAX_LOSS_BUCKETS:
        raise ParameterError(
            f"the PLD of this event would span about {width:.2g} buckets of width "
            f"{discretization:g}, more than the PLD accountant's limit of "
            f"{MAX_LOSS_BUCKETS:.0e} (mean privacy loss up to {kl:.4g}); use the RDP accountant"
        )


def pld_epsilon(
    event: object, delta: float, *, discretization: float = DEFAULT_DISCRETIZATION
) -> PldResult:
    """The least ε, read from a pessimistic PLD, such that ``event`` is ``(ε, delta)``-DP.

    Spec: spec/08-accounting.md#pld-accountant
    Proof: proofs_notes/pld-upper-bound.md

    Pre-conditions:
        - ``0 < delta < 1``; ``0 < discretization <= 1``
        - ``event`` is built from :mod:`protocol.accounting`'s events, and each
          integer mechanism changes one coordinate by an integer (see
          spec/08-accounting.md#pld-constructions)
    Raises:
        ParameterError: if a pre-condition fails, if the PLD would be too large
            to build, or if the PLD cannot reach ``delta`` (ε not finite: the
            mass charged as infinite loss is at least ``delta``).
    """
    d = _check_delta(delta)
    disc = _check_discretization(discretization)
    _check_width(event, disc)
    eps = float(_pld_of(event, disc).get_epsilon_for_delta(d))
    if not math.isfinite(eps):
        raise ParameterError(
            f"the PLD accountant cannot reach delta = {d:g}: epsilon is not finite "
            "(the mass charged as infinite privacy loss, truncated tails included, "
            "is at least delta)"
        )
    return PldResult(epsilon=max(0.0, eps), delta=d, discretization=disc)


def best_epsilon(
    event: object, delta: float, *, discretization: float = DEFAULT_DISCRETIZATION
) -> BestResult:
    """The smaller of the RDP and PLD ε of ``event`` at ``delta``, and which answered.

    Spec: spec/08-accounting.md#choosing-an-accountant

    Both are upper bounds, so their minimum is one. If the PLD accountant
    refuses the event (outside its constructions or limits), RDP answers.

    Raises:
        ParameterError: if the RDP accountant refuses the event or ``delta``.
    """
    rdp_result = accounting.epsilon(event, delta=delta)
    try:
        pld_result: PldResult | None = pld_epsilon(event, delta, discretization=discretization)
        refusal = None
    except ParameterError as exc:
        pld_result, refusal = None, str(exc)
    if pld_result is not None and pld_result.epsilon < rdp_result.epsilon:
        return BestResult(
            epsilon=pld_result.epsilon,
            delta=float(delta),
            accountant="pld",
            rdp=rdp_result,
            pld=pld_result,
            pld_refusal=None,
        )
    return BestResult(
        epsilon=rdp_result.epsilon,
        delta=float(delta),
        accountant="rdp",
        rdp=rdp_result,
        pld=pld_result,
        pld_refusal=refusal,
    )


def epsilon_with(
    event: object,
    delta: float,
    *,
    accountant: str,
    discretization: float = DEFAULT_DISCRETIZATION,
) -> tuple[float, Literal["rdp", "pld"]]:
    """ε of ``event`` at ``delta`` by ``accountant`` (one of :data:`ACCOUNTANTS`), and who answered.

    Spec: spec/08-accounting.md#choosing-an-accountant

    Raises:
        ParameterError: if ``accountant`` is unknown or the chosen accountant refuses.
    """
    if accountant == "rdp":
        return accounting.epsilon(event, delta=delta).epsilon, "rdp"
    if accountant == "pld":
        return pld_epsilon(event, delta, discretization=discretization).epsilon, "pld"
    if accountant == "best":
        best = best_epsilon(event, delta, discretization=discretization)
        return best.epsilon, best.accountant
    raise ParameterError(f"accountant must be one of {list(ACCOUNTANTS)}; got {accountant!r}")


@dataclass(frozen=True, kw_only=True)
class CalibrationResult:
    """The least noise found meeting the target under ``accountant``, with its ε.

    Spec: spec/08-accounting.md#choosing-an-accountant
    """

    noise: float
    epsilon: float
    delta: float
    accountant: Literal["rdp", "pld"]


def calibrate_with(
    make_event: Callable[[float], object],
    *,
    target_epsilon: float,
    delta: float,
    low: float,
    high: float,
    accountant: str,
    discretization: float = DEFAULT_DISCRETIZATION,
    relative_tolerance: float = 1e-4,
) -> CalibrationResult:
    """Bisect for the least noise in ``[low, high]`` whose ε under ``accountant`` meets the target.

    Spec: spec/08-accounting.md#choosing-an-accountant

    Assumes ε is non-increasing in the noise. A noise at which the PLD
    accountant refuses counts as missing the target (it is never returned).
    The noise returned always meets the target, and is within
    ``relative_tolerance · high`` of the least that does.

    Pre-conditions:
        - ``0 < low < high``; ``target_epsilon > 0``; ``relative_tolerance > 0``
    Raises:
        ParameterError: if a pre-condition fails or even ``high`` misses the target.
    """
    if not (0 < low < high and math.isfinite(high)):
        raise ParameterError(f"need 0 < low < high finite; got low={low}, high={high}")
    if not (target_epsilon > 0 and relative_tolerance > 0):
        raise ParameterError(
            f"target_epsilon and relative_tolerance must be > 0; got {target_epsilon}, "
            f"{relative_tolerance}"
        )

    def cost(noise: float) -> tuple[float, Literal["rdp", "pld"]]:
        try:
            return epsilon_with(
                make_event(noise), delta, accountant=accountant, discretization=discretization
            )
        except ParameterError:
            if accountant != "pld":
                raise
            return math.inf, "pld"

    eps_high, who_high = cost(high)
    if eps_high > target_epsilon:
        raise ParameterError(
            f"even noise {high} gives epsilon {eps_high} > target_epsilon {target_epsilon}"
        )
    eps_low, who_low = cost(low)
    if eps_low <= target_epsilon:
        return CalibrationResult(noise=low, epsilon=eps_low, delta=delta, accountant=who_low)
    lo, hi = low, high  # invariant: eps(lo) > target >= eps(hi)
    while hi - lo > relative_tolerance * hi:
        mid = (lo + hi) / 2
        if mid in (lo, hi):
            break
        eps_mid, who_mid = cost(mid)
        if eps_mid <= target_epsilon:
            hi, eps_high, who_high = mid, eps_mid, who_mid
        else:
            lo = mid
    return CalibrationResult(noise=hi, epsilon=eps_high, delta=delta, accountant=who_high)
