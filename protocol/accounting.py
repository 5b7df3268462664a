"""Privacy accounting: Rényi DP of SDL's mechanisms, composition and conversion.

Spec: spec/08-accounting.md

Describing a mechanism is kept apart from computing its cost. An *event*
is an immutable description whose docstring is its mathematical
definition; :func:`rdp` maps an event to its Rényi-DP curve
``ε(α)`` at the requested orders (one registered function per event type,
via :func:`functools.singledispatch`), and :func:`epsilon` converts a curve
to ``(ε, δ)``. Everything is computed in floating point in log space
(``log1p``, log-sum-exp, ``lgamma``); every bound is rounded in the
direction that can only increase ``ε``, except where a note says the
error is below one ulp of the result.

Proofs: proofs_notes/rdp-mechanisms.md,
proofs_notes/rdp-subsampling-and-conversion.md,
proofs_notes/rdp-subsampled-gaussian-fractional.md,
proofs_notes/realized-accounting.md.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from protocol.errors import ParameterError
from protocol.noise_plan import kls_tau

__all__ = [
    "DDG_MIN_SIGMA",
    "DEFAULT_ORDERS",
    "MECHANISMS",
    "CalibrationResult",
    "ComposedEvent",
    "ComposedSequence",
    "DiscreteGaussianEvent",
    "DistributedDiscreteGaussianEvent",
    "EpsilonResult",
    "GaussianEvent",
    "PoissonSampledEvent",
    "RoundRecord",
    "SkellamEvent",
    "calibrate",
    "epsilon",
    "rdp",
    "realized_event",
]

#: Rényi orders searched by default. Spec: spec/08-accounting.md#conversion
#: Fractional orders help at large ε. They include every order of
#: dp-accounting's default list below 11 (``1 + x/10``), plus 1.01, 1.05, 1.25 and
#: 1.75. A Poisson-subsampled Gaussian is exact at every order; other
#: subsampled mechanisms charge a fractional order at ``⌈α⌉``.
DEFAULT_ORDERS: tuple[float, ...] = tuple(
    sorted(
        {
            1.01,
            1.05,
            1.25,
            1.75,
            *(1 + x / 10 for x in range(1, 100)),
            *(float(a) for a in range(2, 257)),
            320.0,
            384.0,
            512.0,
            768.0,
            1024.0,
        }
    )
)


# ---------------------------------------------------------------- validation


def _positive(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | Fraction):
        raise ParameterError(f"{name} must be a real number; got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ParameterError(f"{name} must be finite and > 0; got {value}")
    return float(value)


#: Bounds on a value the formulas square: its square is then a normal, finite float,
#: so no ``z²`` underflows to a division by zero and no ``x**2`` overflows.
_SQUARABLE = (1e-150, 1e150)


def _squarable(value: float, name: str) -> float:
    v = _positive(value, name)
    low, high = _SQUARABLE
    if not low <= v <= high:
        raise ParameterError(
            f"{name} must be in [{low:g}, {high:g}] (its square must be a normal float); "
            f"got {value}"
        )
    return v


def _count(value: int, name: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParameterError(f"{name} must be an int; got {value!r}")
    if value < minimum:
        raise ParameterError(f"{name} must be >= {minimum}; got {value}")
    return value


def _rate(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | Fraction):
        raise ParameterError(f"{name} must be a real number; got {value!r}")
    if not 0 <= value <= 1:
        raise ParameterError(f"{name} must be in [0, 1]; got {value}")
    return float(value)


def _orders(orders: Sequence[float]) -> list[float]:
    out = []
    for a in orders:
        if isinstance(a, bool) or not isinstance(a, int | float) or not (1 < a < math.inf):
            raise ParameterError(f"Rényi orders must be finite and > 1; got {a!r}")
        out.append(float(a))
    if not out:
        raise ParameterError("orders must not be empty; got ()")
    return out


def _round_up(x: Fraction) -> float:
    """The least float ``>= x`` (``float()`` rounds to nearest)."""
    f = float(x)
    return f if Fraction(f) >= x else math.nextafter(f, math.inf)


#: Least per-client ``σ`` at which the distributed discrete Gaussian bound
#: holds: Kairouz, Liu, Steinke (ICML 2021, arXiv 2102.06387), Theorem 1,
#: assumes ``σ >= 1/2``. Spec: spec/08-accounting.md#sum-of-discrete-gaussians
#: Proof: proofs_notes/ddg-domain.md
DDG_MIN_SIGMA: float = 0.5


# -------------------------------------------------------------------- events


@dataclass(frozen=True, kw_only=True)
class GaussianEvent:
    """The Gaussian mechanism ``f(D) + N(0, z²Δ₂²·I)``, with noise multiplier ``z = σ/Δ₂``.

    Spec: spec/08-accounting.md#gaussian

    RDP: ``ε(α) = α / (2z²)`` for every ``α > 1`` (Mironov 2017, "Rényi
    Differential Privacy", Proposition 7).

    Pre-conditions:
        - ``noise_multiplier`` is in ``[1e-150, 1e150]`` (its square is a normal float)
    Raises:
        ParameterError: if a pre-condition fails.
    """

    noise_multiplier: float

    def __post_init__(self) -> None:
        _squarable(self.noise_multiplier, "noise_multiplier")


@dataclass(frozen=True, kw_only=True)
class DiscreteGaussianEvent:
    """One discrete Gaussian ``f(D) + N_Z(0, σ²)^d`` on an integer-valued ``f`` of ℓ2 sensitivity Δ.

    Spec: spec/08-accounting.md#discrete-gaussian

    It is ``Δ²/(2σ²)``-zCDP (Canonne, Kamath, Steinke 2020, arXiv
    2004.00010, the discrete Gaussian's concentrated-DP theorem), so
    ``ε(α) = αΔ²/(2σ²)`` for every ``α > 1``.

    Pre-conditions:
        - ``sigma2`` is finite and ``> 0``
        - ``l2_sensitivity`` is in ``[1e-150, 1e150]`` (its square is a normal float)
    Raises:
        ParameterError: if a pre-condition fails.
    """

    sigma2: float
    l2_sensitivity: float

    def __post_init__(self) -> None:
        _positive(self.sigma2, "sigma2")
        _squarable(self.l2_sensitivity, "l2_sensitivity")


@dataclass(frozen=True, kw_only=True)
class DistributedDiscreteGaussianEvent:
    """The sum of ``n = clients`` independent ``N_Z(0, σ²)^d`` vectors added to an integer ``f(D)``.

    Spec: spec/08-accounting.md#sum-of-discrete-gaussians

    With ``τ = 10·Σ_{k=1}^{n−1} exp(−2π²σ²·k/(k+1))`` (Kairouz, Liu,
    Steinke, ICML 2021, arXiv 2102.06387, Theorem 1), ``d = dimension``,
    Δ₂ and Δ₁ the ℓ2 and ℓ1 sensitivities, their Proposition 14 gives
    ``ε(α) = min{ αΔ₂²/(2nσ²) + τd,
    (α/2)(Δ₂²/(nσ²) + 2Δ₁τ/(√n σ) + τ²d),
    (α/2)(Δ₂/(√n σ) + τ√d)² }``.
    ``σ²`` is the *per-client* parameter. Theorem 1 assumes ``σ >= 1/2``
    (:data:`DDG_MIN_SIGMA`); below it the bound is not established and the
    event refuses to exist (proofs_notes/ddg-domain.md).

    Pre-conditions:
        - ``sigma2``, ``l2_sensitivity``, ``l1_sensitivity`` finite and ``> 0``
        - ``sigma2 >= DDG_MIN_SIGMA² = 1/4``, compared exactly
        - ``clients >= 1`` and ``dimension >= 1`` are ints
    Raises:
        ParameterError: if a pre-condition fails.
    """

    sigma2: float
    clients: int
    dimension: int
    l2_sensitivity: float
    l1_sensitivity: float

    def __post_init__(self) -> None:
        _positive(self.sigma2, "sigma2")
        # Exact: Fraction(float) is the float's value and DDG_MIN_SIGMA² = 1/4 is exact.
        if Fraction(self.sigma2) < Fraction(DDG_MIN_SIGMA) ** 2:
            raise ParameterError(
                f"sigma2 = {self.sigma2} is outside the domain of the distributed discrete"
                " Gaussian bound: it needs sigma >= 1/2 (sigma2 >= 1/4; Kairouz, Liu,"
                " Steinke 2021, Theorem 1)"
            )
        _count(self.clients, "clients", minimum=1)
        _count(self.dimension, "dimension", minimum=1)
        _positive(self.l2_sensitivity, "l2_sensitivity")
        _positive(self.l1_sensitivity, "l1_sensitivity")


@dataclass(frozen=True, kw_only=True)
class SkellamEvent:
    """The Skellam mechanism ``f(D) + Sk(λ)^d``, ``Sk(λ) = Poi(λ/2) − Poi(λ/2)``, λ the variance.

    Spec: spec/08-accounting.md#skellam

    Agarwal, Kairouz, Liu (NeurIPS 2021, arXiv 2110.04995), as stated in
    REFERENCES.md: for integer ``α > 1``,
    ``ε(α) <= αΔ₂²/(2λ) + min{ ((2α−1)Δ₂² + 6Δ₁)/(4λ²), 3Δ₁/(2λ) }``.
    A fractional order is charged at ``⌈α⌉`` (Rényi divergence is
    non-decreasing in α).

    Pre-conditions:
        - ``variance`` is in ``[1e-150, 1e150]`` (its square is a normal float)
        - ``l2_sensitivity``, ``l1_sensitivity`` finite and ``> 0``
    Raises:
        ParameterError: if a pre-condition fails.
    """

    variance: float
    l2_sensitivity: float
    l1_sensitivity: float

    def __post_init__(self) -> None:
        _squarable(self.variance, "variance")
        _positive(self.l2_sensitivity, "l2_sensitivity")
        _positive(self.l1_sensitivity, "l1_sensitivity")


@dataclass(frozen=True, kw_only=True)
class PoissonSampledEvent:
    """Run ``event`` on a Poisson sample: each unit is included independently with probability q.

    Spec: spec/08-accounting.md#poisson-subsampling

    Neighbouring datasets differ by adding or removing one unit (record or
    node, as the caller's sensitivities say). For a :class:`GaussianEvent`
    the RDP is exact at every order (Mironov, Talwar, Zhang 2019; fractional
    orders: proofs_notes/rdp-subsampled-gaussian-fractional.md). Otherwise the
    Zhu–Wang 2019 general upper bound is used, and a fractional order is charged at ``⌈α⌉``.

    Pre-conditions:
        - ``sampling_rate`` is in ``[0, 1]``
    Raises:
        ParameterError: if a pre-condition fails.
    """

    event: object
    sampling_rate: float

    def __post_init__(self) -> None:
        _rate(self.sampling_rate, "sampling_rate")


@dataclass(frozen=True, kw_only=True)
class ComposedEvent:
    """``count`` adaptive runs of ``event``: ``ε(α) = count · ε_event(α)``.

    Spec: spec/08-accounting.md#composition

    Pre-conditions:
        - ``count >= 0`` is an int
    Raises:
        ParameterError: if a pre-condition fails.
    """

    event: object
    count: int

    def __post_init__(self) -> None:
        _count(self.count, "count", minimum=0)


@dataclass(frozen=True, kw_only=True)
class ComposedSequence:
    """Adaptive runs of different events in order: ``ε(α) = Σ_i ε_i(α)``.

    Spec: spec/08-accounting.md#composition
    """

    events: tuple[object, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.events, tuple):
            raise ParameterError(f"events must be a tuple; got {type(self.events).__name__}")


# ---------------------------------------------------------------------- RDP


@functools.singledispatch
def rdp(event: object, orders: Sequence[float]) -> list[float]:
    """The RDP curve ``ε(α)`` of ``event`` at each of ``orders`` (may be ``inf``).

    Spec: spec/08-accounting.md#events

    Pre-conditions:
        - ``event`` is one of this module's event types
        - every order is finite and ``> 1``
    Raises:
        ParameterError: if a pre-condition fails.
    """
    raise ParameterError(f"no RDP rule for events of type {type(event).__name__}; got {event!r}")


@rdp.register
def _(event: GaussianEvent, orders: Sequence[float]) -> list[float]:
    # Mironov 2017, Proposition 7.
    z = event.noise_multiplier
    return [a / (2 * z * z) for a in _orders(orders)]


@rdp.register
def _(event: DiscreteGaussianEvent, orders: Sequence[float]) -> list[float]:
    # Canonne–Kamath–Steinke 2020: Δ²/(2σ²)-zCDP, i.e. ε(α) = ρα.
    rho = event.l2_sensitivity**2 / (2 * event.sigma2)
    return [rho * a for a in _orders(orders)]


def _kls_tau_float(event: DistributedDiscreteGaussianEvent) -> float:
    # kls_tau is a rigorous rational upper bound on τ (proofs_notes/ddg-sum-bound.md);
    # rounding it up to a float keeps it one.
    return _round_up(kls_tau(summands=event.clients, sigma2=Fraction(event.sigma2)))


@rdp.register
def _(event: DistributedDiscreteGaussianEvent, orders: Sequence[float]) -> list[float]:
    # Kairouz–Liu–Steinke 2021, Proposition 14 (τ from their Theorem 1).
    tau = _kls_tau_float(event)
    n, s2, d = event.clients, event.sigma2, event.dimension
    d2, d1 = event.l2_sensitivity, event.l1_sensitivity
    ns2 = n * s2
    root = math.sqrt(ns2)
    out = []
    for a in _orders(orders):
        first = a * d2 * d2 / (2 * ns2) + tau * d
        second = (a / 2) * (d2 * d2 / ns2 + 2 * d1 * tau / root + tau * tau * d)
        third = (a / 2) * (d2 / root + tau * math.sqrt(d)) ** 2
        out.append(min(first, second, third))
    return out


@rdp.register
def _(event: SkellamEvent, orders: Sequence[float]) -> list[float]:
    # Agarwal–Kairouz–Liu 2021, as stated in REFERENCES.md; integer orders, ⌈α⌉ otherwise.
    lam, d2, d1 = event.variance, event.l2_sensitivity, event.l1_sensitivity
    out = []
    for a in _orders(orders):
        k = math.ceil(a)
        extra = min(((2 * k - 1) * d2 * d2 + 6 * d1) / (4 * lam * lam), 3 * d1 / (2 * lam))
        out.append(k * d2 * d2 / (2 * lam) + extra)
    return out


@rdp.register
def _(event: ComposedEvent, orders: Sequence[float]) -> list[float]:
    # RDP composition (Mironov 2017, Proposition 1): adds up at each order.
    if event.count == 0:
        return [0.0 for _ in _orders(orders)]
    return [event.count * e for e in rdp(event.event, orders)]


@rdp.register
def _(event: ComposedSequence, orders: Sequence[float]) -> list[float]:
    total = [0.0 for _ in _orders(orders)]
    for inner in event.events:
        total = [t + e for t, e in zip(total, rdp(inner, orders), strict=True)]
    return total


def _log_add(x: float, y: float) -> float:
    """``log(e^x + e^y)`` without overflow."""
    if x == -math.inf:
        return y
    if y == -math.inf:
        return x
    hi, lo = (x, y) if x >= y else (y, x)
    return hi + math.log1p(math.exp(lo - hi))


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


@functools.singledispatch
def _subsampled_rdp(event: object, q: float, order: int) -> float:
    """Zhu & Wang 2019 (ICML) general upper bound for Poisson subsampling, integer ``α >= 2``.

    ``(α−1)ε'(α) <= log{ (1−q)^{α−1}(1 + (α−1)q) + C(α,2) q² (1−q)^{α−2} e^{ε(2)}
    + 3 Σ_{ℓ=3}^{α} C(α,ℓ) q^ℓ (1−q)^{α−ℓ} e^{(ℓ−1)ε(ℓ)} }``, and also
    ``ε'(α) <= ε(α)`` (joint quasi-convexity of Rényi divergence).
    Proof: proofs_notes/rdp-subsampling-and-conversion.md
    """
    a = order
    base = rdp(event, [float(k) for k in range(2, a + 1)])  # base[l - 2] = ε(l)
    if any(math.isinf(e) for e in base):
        return base[-1]
    log_q, log_1mq = math.log(q), math.log1p(-q)
    acc = (a - 1) * log_1mq + math.log1p((a - 1) * q)
    acc = _log_add(acc, _log_comb(a, 2) + 2 * log_q + (a - 2) * log_1mq + base[0])
    for ell in range(3, a + 1):
        term = (
            math.log(3)
            + _log_comb(a, ell)
            + ell * log_q
            + (a - ell) * log_1mq
            + (ell - 1) * base[ell - 2]
        )
        acc = _log_add(acc, term)
    return max(0.0, min(acc / (a - 1), base[-1]))


@_subsampled_rdp.register
def _(event: GaussianEvent, q: float, order: int) -> float:
    # Mironov, Talwar, Zhang 2019 ("Rényi Differential Privacy of the Sampled
    # Gaussian Mechanism", arXiv 1908.10530), Section 3.3, exact at integer α:
    # ε(α) = (1/(α−1)) log Σ_{k=0}^{α} C(α,k) (1−q)^{α−k} q^k exp((k²−k)/(2z²)).
    z2 = event.noise_multiplier**2
    log_q, log_1mq = math.log(q), math.log1p(-q)
    acc = -math.inf
    for k in range(order + 1):
        term = _log_comb(order, k) + k * log_q + (order - k) * log_1mq + (k * k - k) / (2 * z2)
        acc = _log_add(acc, term)
    # The true value is >= 0; rounding can leave a tiny negative for tiny q.
    return max(0.0, acc / (order - 1))


#: Terms of the asymptotic series of ``erfc`` used above :data:`_ERFC_ASYMPTOTIC_FROM`:
#: ``(2k−1)!!/(2x²)^k`` for k = 0 … 6. Ending on a positive term makes it an upper bound.
_ERFC_ASYMPTOTIC_TERMS = 7
#: Below this, ``math.erfc`` is a normal float (``erfc(26) ≈ 5.7e−296``).
_ERFC_ASYMPTOTIC_FROM = 26.0


def _log_erfc_upper(x: float) -> float:
    """``log erfc(x)``, rounded up to within float rounding.

    Above :data:`_ERFC_ASYMPTOTIC_FROM`, ``erfc(x) = e^{−x²}/(x√π) ·
    Σ_k (−1)^k (2k−1)!!/(2x²)^k + R``, and for real x the remainder has the
    sign of the first omitted term and is smaller in magnitude (DLMF 7.12.1
    and §7.12(i)). The sum stops after the positive k = 6 term, so it is an
    upper bound; the first omitted term is below ``2·10⁻¹⁷`` relative.
    Proof: proofs_notes/rdp-subsampled-gaussian-fractional.md
    """
    if x < _ERFC_ASYMPTOTIC_FROM:
        return math.log(math.erfc(x))
    inv = 1 / (2 * x * x)
    term, series = 1.0, 1.0
    for k in range(1, _ERFC_ASYMPTOTIC_TERMS):
        term *= -(2 * k - 1) * inv
        series += term
    return -x * x - math.log(x) - 0.5 * math.log(math.pi) + math.log(series)


def _log_phi_upper(x: float) -> float:
    """``log Φ(x)``, Φ the standard normal distribution function: ``Φ(x) = erfc(−x/√2)/2``."""
    return _log_erfc_upper(-x / math.sqrt(2)) - math.log(2)


def _log_abs_comb(alpha: float, i: int) -> float:
    """``log |C(α, i)|`` for real ``α > 0`` that is not an integer, and integer ``i >= 0``."""
    # |C(α,i)| = |Γ(α+1) / (Γ(i+1) Γ(α−i+1))|; math.lgamma is log|Γ|.
    return math.lgamma(alpha + 1) - math.lgamma(i + 1) - math.lgamma(alpha - i + 1)


#: Terms of the alternating tail given to the Cohen–Villegas–Zagier sum; its
#: error is at most ``2·(3+√8)^−n`` of the tail's first term, ``< 10⁻¹⁷`` for n = 24.
_CVZ_TERMS = 24


def _alternating_sum_upper(magnitudes: Sequence[float]) -> float:
    """An upper bound on ``Σ_{k>=0} (−1)^k a_k`` from ``a_0 … a_{n−1}``, ``a`` a moment sequence.

    Cohen, Rodriguez Villegas, Zagier 2000 ("Convergence acceleration of
    alternating series", Experimental Mathematics 9(1)), Algorithm 1 and
    Proposition 1: if ``a_k = ∫_0^1 x^k dμ(x)`` for a positive measure μ,
    the algorithm's ``S_n`` satisfies ``|S − S_n| <= 2S/(3+√8)^n <= 2a_0/(3+√8)^n``.
    That bound is added, so the result is ``>= S`` up to float rounding.
    Proof: proofs_notes/rdp-subsampled-gaussian-fractional.md
    """
    n = len(magnitudes)
    d = (3 + math.sqrt(8)) ** n
    d = (d + 1 / d) / 2
    b, c, s = -1.0, -d, 0.0
    for k, a_k in enumerate(magnitudes):
        c = b - c
        s += c * a_k
        b = (k + n) * (k - n) * b / ((k + 0.5) * (k + 1))
    return s / d + 2 * magnitudes[0] / (3 + math.sqrt(8)) ** n


def _sampled_gaussian_fractional(z: float, q: float, alpha: float) -> float:
    """Exact RDP of the Poisson-subsampled Gaussian at a non-integer order ``α > 1``, ``0 < q < 1``.

    Spec: spec/08-accounting.md#poisson-subsampling

    Mironov, Talwar, Zhang 2019 (arXiv 1908.10530), Section 3.3. With
    ``μ0 = N(0, z²)``, ``L(x) = exp((2x−1)/(2z²))`` and ``A_α = E_{μ0}[(1 − q + qL)^α]``,
    ``ε(α) = log(A_α)/(α−1)``. Split at ``x0 = z² log(1/q − 1) + 1/2``, where
    ``qL(x0) = 1 − q``, and expand ``(1 − q + qL)^α`` by the binomial series in
    the smaller over the larger part on each side:

    ``A_α = Σ_{i>=0} C(α,i) [ q^i (1−q)^{α−i} e^{(i²−i)/(2z²)} Φ((x0−i)/z)
    + q^{α−i} (1−q)^i e^{(j²−j)/(2z²)} Φ((j−x0)/z) ]``, ``j = α − i``.

    The terms with ``i < ⌈α⌉`` are positive and summed directly; from
    ``m = ⌈α⌉`` on the term is ``(−1)^{i−m} a_{i−m}`` with ``a`` a moment
    sequence, whose sum is bounded above by :func:`_alternating_sum_upper`.
    Everything is scaled by the largest term's logarithm before leaving log space.
    Proof: proofs_notes/rdp-subsampled-gaussian-fractional.md
    """
    z2 = z * z
    log_q, log_1mq = math.log(q), math.log1p(-q)
    x0 = z2 * (math.log(1 / q) + math.log1p(-q)) + 0.5  # log(1/q − 1) without cancellation

    def log_term(i: int) -> float:
        j = alpha - i
        lower = i * log_q + j * log_1mq + (i * i - i) / (2 * z2) + _log_phi_upper((x0 - i) / z)
        upper = j * log_q + i * log_1mq + (j * j - j) / (2 * z2) + _log_phi_upper((j - x0) / z)
        return _log_abs_comb(alpha, i) + _log_add(lower, upper)

    m = math.ceil(alpha)
    head = [log_term(i) for i in range(m)]
    tail = [log_term(m + k) for k in range(_CVZ_TERMS)]
    shift = max(*head, tail[0])
    head_sum = math.fsum(math.exp(t - shift) for t in head)
    tail_sum = _alternating_sum_upper([math.exp(t - shift) for t in tail])
    log_a = shift + math.log(head_sum + tail_sum)
    # The true value is >= 0; rounding can leave a tiny negative for tiny q.
    return max(0.0, log_a / (alpha - 1))


@rdp.register
def _(event: PoissonSampledEvent, orders: Sequence[float]) -> list[float]:
    q = event.sampling_rate
    checked = _orders(orders)
    if q == 0:
        return [0.0 for _ in checked]
    if q == 1:
        return rdp(event.event, checked)
    # A subsampled Gaussian is exact at every order (MTZ 2019). The other
    # subsampled bounds hold at integer orders only, so a fractional α is
    # charged at ⌈α⌉ (D_α is non-decreasing in α). Subsampling never costs
    # more than the unsampled mechanism (joint quasi-convexity of D_α), so
    # each order is also capped by the base curve.
    inner = event.event
    base = rdp(inner, checked)
    cache: dict[int, float] = {}
    out = []
    for a, cap in zip(checked, base, strict=True):
        if isinstance(inner, GaussianEvent) and a != math.floor(a):
            value = _sampled_gaussian_fractional(inner.noise_multiplier, q, a)
        else:
            k = max(2, math.ceil(a))
            if k not in cache:
                cache[k] = _subsampled_rdp(inner, q, k)
            value = cache[k]
        out.append(min(value, cap))
    return out


# ---------------------------------------------------------------- conversion


@dataclass(frozen=True, kw_only=True)
class EpsilonResult:
    """``(epsilon, delta)``-DP, attained by converting the RDP curve at ``order``.

    Spec: spec/08-accounting.md#conversion

    ``delta`` is the total δ, including any sampler distance.
    """

    epsilon: float
    order: float
    delta: float


def _convert(
    orders: Sequence[float],
    curve: Sequence[float],
    delta: float,
    conversion: Literal["tight", "classic"],
) -> tuple[float, float]:
    best, best_order = math.inf, orders[0]
    log_delta = math.log(delta)
    for a, r in zip(orders, curve, strict=True):
        if math.isnan(r) or r < 0:
            raise ParameterError(f"RDP value at order {a} must be >= 0; got {r}")
        if delta * delta + math.expm1(-r) > 0:
            # δ >= sqrt(1 − e^{−KL}) >= TV (Bretagnolle–Huber), KL <= D_α: (0, δ)-DP.
            eps = 0.0
        elif math.isinf(r):
            eps = math.inf
        elif conversion == "tight":
            # Canonne–Kamath–Steinke 2020, Proposition 12 (arXiv 2004.00010 v4);
            # Asoodeh et al. 2020, Equation 20.
            eps = r + math.log1p(-1 / a) - (log_delta + math.log(a)) / (a - 1)
        else:
            # Mironov 2017, Proposition 3.
            eps = r - log_delta / (a - 1)
        if eps < best:
            best, best_order = eps, a
    return max(0.0, best), best_order


def epsilon(
    event: object,
    *,
    delta: float,
    orders: Sequence[float] = DEFAULT_ORDERS,
    conversion: Literal["tight", "classic"] = "tight",
    sampler_distance: float = 0.0,
) -> EpsilonResult:
    """The least ε over ``orders`` such that ``event`` is ``(ε, delta)``-DP.

    Spec: spec/08-accounting.md#conversion

    ``sampler_distance`` is the total statistical distance ``s`` between
    what the real samplers draw and the ideal distributions, summed over
    every release the event covers (spec/08-accounting.md#table-sampler-distance).
    The ideal mechanism is then converted at ``δ' = δ − (1 + e^ε)·s``,
    solved by a monotone fixed-point iteration, so that the real mechanism
    is ``(ε, δ)``-DP (proofs_notes/rdp-subsampling-and-conversion.md).

    Pre-conditions:
        - ``0 < delta < 1``; ``0 <= sampler_distance < delta``
        - ``conversion`` is ``"tight"`` or ``"classic"``
    Raises:
        ParameterError: if a pre-condition fails, or if the sampler distance
            uses up the whole δ budget at the resulting ε.
    """
    if isinstance(delta, bool) or not isinstance(delta, int | float) or not 0 < delta < 1:
        raise ParameterError(f"delta must be in (0, 1); got {delta!r}")
    if conversion not in ("tight", "classic"):
        raise ParameterError(f"conversion must be 'tight' or 'classic'; got {conversion!r}")
    if (
        isinstance(sampler_distance, bool)
        or not isinstance(sampler_distance, int | float)
        or not 0 <= sampler_distance < delta
    ):
        raise ParameterError(
            f"sampler_distance must be in [0, delta) = [0, {delta}); got {sampler_distance!r}"
        )
    checked = _orders(orders)
    curve = rdp(event, checked)
    if sampler_distance == 0:
        eps, order = _convert(checked, curve, delta, conversion)
        return EpsilonResult(epsilon=eps, order=order, delta=delta)
    s = float(sampler_distance)
    guess = 0.0
    for _ in range(200):
        budget = delta - (1 + math.exp(guess)) * s if guess < 700 else -1.0
        if budget <= 0:
            raise ParameterError(
                f"sampler_distance {s} leaves no δ budget at ε = {guess} (delta = {delta})"
            )
        eps, order = _convert(checked, curve, budget, conversion)
        if eps <= guess:
            return EpsilonResult(epsilon=guess, order=order, delta=delta)
        # Overshoot slightly so the iteration ends after finitely many steps.
        guess = eps * (1 + 1e-12) + 1e-15
    raise ParameterError(f"sampler_distance {s}: ε did not settle for delta = {delta}")


# ---------------------------------------------------------------- calibration


@dataclass(frozen=True, kw_only=True)
class CalibrationResult:
    """The least noise parameter found whose event is ``(epsilon, delta)``-DP with ε <= target.

    Spec: spec/08-accounting.md#calibration
    """

    noise: float
    epsilon: float
    delta: float


def calibrate(
    make_event: Callable[[float], object],
    *,
    target_epsilon: float,
    delta: float,
    low: float,
    high: float,
    orders: Sequence[float] = DEFAULT_ORDERS,
    tolerance: float = 1e-6,
) -> CalibrationResult:
    """Bisect for the smallest noise in ``[low, high]`` whose ε is at most ``target_epsilon``.

    Spec: spec/08-accounting.md#calibration

    Assumes ε is non-increasing in the noise parameter. The result's noise
    always meets the target; it is within ``tolerance`` of the smallest
    that does.

    Pre-conditions:
        - ``0 < low < high`` finite; ``target_epsilon > 0``; ``tolerance > 0``
    Raises:
        ParameterError: if a pre-condition fails or even ``high`` misses the target.
    """
    _positive(target_epsilon, "target_epsilon")
    _positive(low, "low")
    _positive(high, "high")
    _positive(tolerance, "tolerance")
    if not low < high:
        raise ParameterError(f"low must be < high; got low={low}, high={high}")

    def eps_at(noise: float) -> float:
        return epsilon(make_event(noise), delta=delta, orders=orders).epsilon

    eps_high = eps_at(high)
    if eps_high > target_epsilon:
        raise ParameterError(
            f"even noise {high} gives epsilon {eps_high} > target_epsilon {target_epsilon}"
        )
    eps_low = eps_at(low)
    if eps_low <= target_epsilon:
        return CalibrationResult(noise=low, epsilon=eps_low, delta=delta)
    lo, hi = low, high  # invariant: eps(lo) > target >= eps(hi)
    while hi - lo > tolerance:
        mid = (lo + hi) / 2
        if mid in (lo, hi):
            break
        eps_mid = eps_at(mid)
        if eps_mid <= target_epsilon:
            hi, eps_high = mid, eps_mid
        else:
            lo = mid
    return CalibrationResult(noise=hi, epsilon=eps_high, delta=delta)


# ------------------------------------------------------- realized accounting


@dataclass(frozen=True, kw_only=True)
class RoundRecord:
    """What one round actually released, as the accountant needs it.

    Spec: spec/08-accounting.md#realized-accounting

    - ``contributors``: parties whose input and noise are in the released sum.
    - ``dropouts``: expected parties that did not contribute (audit only;
      their effect is already in ``contributors`` and ``honest_variance``).
    - ``colluders``: contributors assumed to collude with the analyst; at
      least one contributor must be honest.
    - ``honest_variance``: total variance of the noise the honest
      contributors added, top-up included (proofs_notes/honest-noise-under-dropouts.md).
      For ``"ddg"`` every honest draw counted must share one parameter, so
      a round with a top-up passes ``h·v0``, the initial draws only
      (proofs_notes/realized-accounting.md).
    - ``mechanism``: a key of :data:`MECHANISMS`.
    - ``unit``: ``"record"`` or ``"node"``; what a neighbouring dataset adds
      or removes. The learning job chooses it together with
      ``sampling_rate`` and the sensitivities, which must be in that unit.

    Raises:
        ParameterError: if a field is invalid.
    """

    contributors: int
    dropouts: int
    colluders: int
    honest_variance: float
    sampling_rate: float
    mechanism: str
    l2_sensitivity: float
    l1_sensitivity: float
    dimension: int = 1
    unit: Literal["record", "node"] = "record"

    def __post_init__(self) -> None:
        _count(self.contributors, "contributors", minimum=1)
        _count(self.dropouts, "dropouts", minimum=0)
        _count(self.colluders, "colluders", minimum=0)
        if self.colluders >= self.contributors:
            raise ParameterError(
                f"at least one contributor must be honest; got colluders={self.colluders} "
                f"of contributors={self.contributors}"
            )
        _positive(self.honest_variance, "honest_variance")
        _rate(self.sampling_rate, "sampling_rate")
        if self.mechanism not in MECHANISMS:
            raise ParameterError(
                f"mechanism must be one of {sorted(MECHANISMS)}; got {self.mechanism!r}"
            )
        _positive(self.l2_sensitivity, "l2_sensitivity")
        _positive(self.l1_sensitivity, "l1_sensitivity")
        _count(self.dimension, "dimension", minimum=1)
        if self.unit not in ("record", "node"):
            raise ParameterError(f"unit must be 'record' or 'node'; got {self.unit!r}")

    @property
    def honest(self) -> int:
        """Honest contributors, ``contributors − colluders`` (>= 1)."""
        return self.contributors - self.colluders


def _charge_skellam(r: RoundRecord) -> object:
    # Sk is closed under sums: the honest noise is exactly Sk(honest_variance).
    return SkellamEvent(
        variance=r.honest_variance, l2_sensitivity=r.l2_sensitivity, l1_sensitivity=r.l1_sensitivity
    )


def _charge_ddg(r: RoundRecord) -> object:
    """Charge a DDG round as ``h`` honest draws of ``honest_variance / h``, the initial shares.

    Spec: spec/07-noise-plan.md#top-ups-of-the-distributed-discrete-gaussian
    """
    # Every honest member's initial share has the same parameter v0; its
    # top-ups, of other parameters, are not counted (protocol/release.py).
    return DistributedDiscreteGaussianEvent(
        sigma2=r.honest_variance / r.honest,
        clients=r.honest,
        dimension=r.dimension,
        l2_sensitivity=r.l2_sensitivity,
        l1_sensitivity=r.l1_sensitivity,
    )


def _charge_gaussian(r: RoundRecord) -> object:
    return GaussianEvent(noise_multiplier=math.sqrt(r.honest_variance) / r.l2_sensitivity)


#: How a round of each mechanism is charged, by honest noise only.
#: Spec: spec/08-accounting.md#realized-accounting
MECHANISMS: Mapping[str, Callable[[RoundRecord], object]] = {
    "skellam": _charge_skellam,
    "ddg": _charge_ddg,
    "gaussian": _charge_gaussian,
}


def realized_event(records: Sequence[RoundRecord]) -> ComposedSequence:
    """The composition of the rounds as they happened, each charged by its honest noise only.

    Spec: spec/08-accounting.md#realized-accounting
    Proof: proofs_notes/realized-accounting.md

    Pre-conditions:
        - every record is a :class:`RoundRecord`, all in the same ``unit``
    Raises:
        ParameterError: if a pre-condition fails.
    """
    units = {r.unit for r in records}
    if len(units) > 1:
        raise ParameterError(f"records mix privacy units; got {sorted(units)}")
    events: list[object] = []
    for r in records:
        inner = MECHANISMS[r.mechanism](r)
        events.append(
            inner
            if r.sampling_rate == 1
            else PoissonSampledEvent(event=inner, sampling_rate=r.sampling_rate)
        )
    return ComposedSequence(events=tuple(events))
