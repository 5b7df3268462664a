"""The Poisson-subsampled Gaussian at fractional orders, against independent oracles.

Spec: spec/08-accounting.md#poisson-subsampling
Proof: proofs_notes/rdp-subsampled-gaussian-fractional.md

Oracles: mpmath quadrature of the mixture's Rényi divergence (the exact
value), and dp-accounting 0.6.0. dp-accounting sums the same two series, but
with every binomial coefficient taken positive. At a fractional order it is
therefore an upper bound, not the exact value, and SDL's value must lie below
it. At integer orders the two use the same formula and must agree to 1e-9.
"""

from __future__ import annotations

import functools
import itertools
import math

import mpmath
import pytest
import sympy
from hypothesis import given
from hypothesis import strategies as st

from protocol.accounting import (
    _ERFC_ASYMPTOTIC_FROM,
    DEFAULT_ORDERS,
    ComposedEvent,
    GaussianEvent,
    PoissonSampledEvent,
    _alternating_sum_upper,
    _log_erfc_upper,
    epsilon,
    rdp,
)

dpa = pytest.importorskip("dp_accounting", reason="dp-accounting is the test oracle")
rdp_module = pytest.importorskip("dp_accounting.rdp.rdp_privacy_accountant")

NOISE = (0.5, 0.8, 1.0, 2.0, 5.0)
RATES = (0.001, 0.01, 0.1, 0.5, 1.0)
ROUNDS = (1, 100, 1000)
DELTAS = (1e-5, 1e-8)
FRACTIONAL = [a for a in DEFAULT_ORDERS if a != math.floor(a)]
INTEGER = [a for a in DEFAULT_ORDERS if a == math.floor(a)]
#: Values near 0 come out of sums of terms near 1: compare them absolutely.
ABSOLUTE = 1e-12


def _sampled(z: float, q: float) -> PoissonSampledEvent:
    return PoissonSampledEvent(event=GaussianEvent(noise_multiplier=z), sampling_rate=q)


def _close(ours: float, theirs: float, rel: float) -> bool:
    return abs(ours - theirs) <= max(rel * abs(theirs), ABSOLUTE)


@functools.cache
def _dpa_curve(z: float, q: float) -> tuple[float, ...]:
    """dp-accounting's per-order RDP of one event at its own default orders."""
    values = rdp_module._compute_rdp_poisson_subsampled_gaussian(
        q, z, rdp_module.DEFAULT_RDP_ORDERS
    )
    return tuple(float(v) for v in values)


def _dpa_epsilon(z: float, q: float, rounds: int, delta: float) -> float:
    curve = [rounds * v for v in _dpa_curve(z, q)]
    eps, _ = rdp_module.compute_epsilon(rdp_module.DEFAULT_RDP_ORDERS, curve, delta)
    return float(eps)


def _mixture_rdp(z: float, q: float, alpha: float) -> mpmath.mpf:
    """``log E_{N(0,z²)}[(1 − q + q·e^{(2x−1)/(2z²)})^α] / (α−1)``, by quadrature at 40 digits."""
    with mpmath.workdps(40):
        zz, qq, aa = mpmath.mpf(z), mpmath.mpf(q), mpmath.mpf(alpha)

        def integrand(x: mpmath.mpf) -> mpmath.mpf:
            ratio = mpmath.exp((2 * x - 1) / (2 * zz * zz))
            return mpmath.npdf(x, 0, zz) * (1 - qq + qq * ratio) ** aa

        split = zz * zz * mpmath.log(1 / qq - 1) + mpmath.mpf(1) / 2
        points = sorted({-mpmath.inf, -20 * zz, mpmath.mpf(0), split, 20 * zz + aa, mpmath.inf})
        return mpmath.log(mpmath.quad(integrand, points)) / (aa - 1)


# ------------------------------------------------------------------- mpmath


MPMATH_POINTS = [
    (0.5, 0.1, 1.5),
    (1.0, 0.1, 1.5),
    (0.8, 0.01, 1.75),
    (2.0, 0.5, 1.25),
    (0.5, 0.5, 1.1),
    (5.0, 0.5, 1.01),
    (1.0, 0.3, 7.7),
    (0.5, 0.9, 3.3),
]


@pytest.mark.parametrize(("z", "q", "alpha"), MPMATH_POINTS)
def test_fractional_rdp_is_the_mpmath_integral_of_the_mixture(
    z: float, q: float, alpha: float
) -> None:
    """SDL >= the exact divergence (up to float rounding of A_α), and within 1e-8 of it."""
    exact = float(_mixture_rdp(z, q, alpha))
    (ours,) = rdp(_sampled(z, q), [alpha])
    # 1e-12: the ulps of A_α ≈ 1, divided by log A_α (proofs_notes, item UP).
    assert ours >= exact * (1 - 1e-12), (ours, exact)
    assert abs(ours - exact) <= 1e-8 * exact, (ours, exact)


# ------------------------------------------------------------- dp-accounting


@pytest.mark.parametrize("q", RATES)
@pytest.mark.parametrize("z", NOISE)
def test_fractional_rdp_is_below_dp_accounting_and_integer_orders_equal_it(
    z: float, q: float
) -> None:
    """Integer orders: equal to dp-accounting to 1e-9. Fractional: <= it, and = α/(2z²) at q = 1."""
    ours = rdp(_sampled(z, q), DEFAULT_ORDERS)
    by_order = dict(zip(DEFAULT_ORDERS, ours, strict=True))
    theirs = rdp_module._compute_rdp_poisson_subsampled_gaussian(q, z, DEFAULT_ORDERS)
    for a, mine, their in zip(DEFAULT_ORDERS, ours, theirs, strict=True):
        if q == 1:
            assert mine == a / (2 * z * z), a
        elif a == math.floor(a):
            assert _close(mine, float(their), 1e-9), (a, mine, their)
        elif math.isfinite(their):
            assert mine <= float(their) * (1 + 1e-9) + ABSOLUTE, (a, mine, their)
    # Non-decreasing in α (D_α is), across the fractional and integer formulas.
    values = [by_order[a] for a in sorted(by_order)]
    assert all(x <= y * (1 + 1e-12) + ABSOLUTE for x, y in itertools.pairwise(values))


@pytest.mark.parametrize("q", RATES)
@pytest.mark.parametrize("z", NOISE)
def test_epsilon_is_at_most_dp_accountings_on_the_grid(z: float, q: float) -> None:
    """SDL's ε (DEFAULT_ORDERS) <= RdpAccountant's ε (its default orders), all T and δ."""
    for rounds in ROUNDS:
        event = ComposedEvent(event=_sampled(z, q), count=rounds)
        for delta in DELTAS:
            ours = epsilon(event, delta=delta).epsilon
            theirs = _dpa_epsilon(z, q, rounds, delta)
            assert ours <= theirs * (1 + 1e-9), (rounds, delta, ours, theirs)


def test_epsilon_is_at_most_dp_accounting_through_its_public_accountant() -> None:
    """The same comparison through ``RdpAccountant`` and DpEvents, at one point."""
    z, q, rounds, delta = 0.5, 0.1, 1000, 1e-5
    accountant = rdp_module.RdpAccountant()
    accountant.compose(
        dpa.SelfComposedDpEvent(dpa.PoissonSampledDpEvent(q, dpa.GaussianDpEvent(z)), rounds)
    )
    ours = epsilon(ComposedEvent(event=_sampled(z, q), count=rounds), delta=delta).epsilon
    assert ours <= accountant.get_epsilon(delta)


@given(
    z=st.floats(0.5, 5.0),
    q=st.floats(0.001, 1.0),
    rounds=st.integers(1, 1000),
    delta=st.sampled_from(DELTAS),
)
def test_epsilon_is_at_most_dp_accountings_at_random_points(
    z: float, q: float, rounds: int, delta: float
) -> None:
    ours = epsilon(ComposedEvent(event=_sampled(z, q), count=rounds), delta=delta).epsilon
    assert ours <= _dpa_epsilon(z, q, rounds, delta) * (1 + 1e-9)


# ------------------------------------------------------------ the proof note


def test_series_algebra_checks_in_sympy() -> None:
    """proofs_notes/rdp-subsampled-gaussian-fractional.md, items SER, SIGN and MOM."""
    x, z, i, q = sympy.symbols("x z i q", positive=True)
    # SER: the completed square, and x0 is where qL = 1 − q.
    lhs = -(x**2) / (2 * z**2) + i * (2 * x - 1) / (2 * z**2)
    rhs = -((x - i) ** 2) / (2 * z**2) + (i**2 - i) / (2 * z**2)
    assert sympy.simplify(lhs - rhs) == 0
    x0 = z**2 * sympy.log(1 / q - 1) + sympy.Rational(1, 2)
    assert sympy.simplify(q * sympy.exp((2 * x0 - 1) / (2 * z**2)) - (1 - q)) == 0
    for alpha in (sympy.Rational(101, 100), sympy.Rational(3, 2), sympy.Rational(37, 10)):
        m = sympy.ceiling(alpha)
        for k in range(8):
            c = sympy.binomial(alpha, k)
            # SIGN: positive before ⌈α⌉, alternating from it.
            assert (c > 0) if k < m else (sympy.sign(c) == (-1) ** (k - m))
            if k > alpha:
                # MOM: |C(α,k)| = B(k−α, α+1) / (Γ(α+1)|Γ(−α)|).
                beta = sympy.gamma(k - alpha) * sympy.gamma(alpha + 1) / sympy.gamma(k + 1)
                form = beta / (sympy.gamma(alpha + 1) * sympy.Abs(sympy.gamma(-alpha)))
                assert sympy.simplify(sympy.Abs(c) - form) == 0


def test_cvz_sum_is_an_upper_bound_on_an_alternating_moment_series() -> None:
    """proofs_notes/rdp-subsampled-gaussian-fractional.md, item CVZ."""
    # a_k = 1/(k+1) = ∫_0^1 t^k dt: Σ(−1)^k a_k = log 2.
    bound = _alternating_sum_upper([1 / (k + 1) for k in range(24)])
    assert math.log(2) <= bound <= math.log(2) * (1 + 1e-15)
    # a_k = B(k + 1/2, 5/2) (a Beta moment): compare with mpmath's nsum.
    with mpmath.workdps(30):
        terms = [float(mpmath.beta(k + 0.5, 2.5)) for k in range(24)]
        exact = mpmath.nsum(lambda k: (-1) ** k * mpmath.beta(k + 0.5, 2.5), [0, mpmath.inf])
    bound = _alternating_sum_upper(terms)
    assert float(exact) * (1 - 1e-15) <= bound <= float(exact) * (1 + 1e-14)


@pytest.mark.parametrize("x", [-3.0, 0.0, 1.0, 10.0, 25.9, _ERFC_ASYMPTOTIC_FROM, 30.0, 1e3, 1e8])
def test_log_erfc_upper_is_above_mpmath_and_within_rounding(x: float) -> None:
    """proofs_notes/rdp-subsampled-gaussian-fractional.md, item ERFC."""
    with mpmath.workdps(40):
        exact = float(mpmath.log(mpmath.erfc(mpmath.mpf(x))))
    ours = _log_erfc_upper(x)
    assert abs(ours - exact) <= 1e-14 * max(1.0, abs(exact))
    if x >= _ERFC_ASYMPTOTIC_FROM:
        assert ours >= exact - 1e-15 * abs(exact)
