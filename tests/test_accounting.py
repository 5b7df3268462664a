"""Privacy accounting against independent oracles and its own algebraic properties.

Spec: spec/08-accounting.md

Oracles: dp-accounting's ``RdpAccountant`` (same orders, same conversion)
and ``PLDAccountant`` (tighter, so a lower bound on any sound ε) for the
Poisson-subsampled Gaussian; mpmath sums of the exact Rényi divergence for
the discrete Gaussian and the Skellam distribution. Hypothesis checks the
monotonicity and composition properties.
"""

from __future__ import annotations

import math
from fractions import Fraction

import mpmath
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.accounting import (
    DDG_MIN_SIGMA,
    DEFAULT_ORDERS,
    MECHANISMS,
    ComposedEvent,
    ComposedSequence,
    DiscreteGaussianEvent,
    DistributedDiscreteGaussianEvent,
    GaussianEvent,
    PoissonSampledEvent,
    RoundRecord,
    SkellamEvent,
    calibrate,
    epsilon,
    rdp,
    realized_event,
)
from protocol.errors import ParameterError

INTEGER_ORDERS = [a for a in DEFAULT_ORDERS if a == int(a)]
FEW_ORDERS = [1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0, 32.0, 48.0, 64.0]
DELTA = 1e-5


def _sgm(z: float, q: float, rounds: int) -> ComposedEvent:
    return ComposedEvent(
        event=PoissonSampledEvent(event=GaussianEvent(noise_multiplier=z), sampling_rate=q),
        count=rounds,
    )


# ------------------------------------------------------------- dp-accounting


ORACLE_TABLE = [
    (z, q, rounds)
    for z in (0.8, 1.0, 2.0, 5.0)
    for q in (1.0, 0.01, 0.1)
    for rounds in (1, 100, 1000)
]


@pytest.mark.parametrize(("z", "q", "rounds"), ORACLE_TABLE)
def test_subsampled_gaussian_matches_dp_accounting_rdp_and_bounds_pld(
    z: float, q: float, rounds: int
) -> None:
    """Ours = dp-accounting's RDP ε within 1% (same orders and conversion), and >= its PLD ε."""
    dpa = pytest.importorskip("dp_accounting", reason="dp-accounting is the test oracle")
    pld_module = pytest.importorskip("dp_accounting.pld")
    rdp_module = pytest.importorskip("dp_accounting.rdp")

    ours = epsilon(_sgm(z, q, rounds), delta=DELTA, orders=INTEGER_ORDERS).epsilon
    event = dpa.SelfComposedDpEvent(dpa.PoissonSampledDpEvent(q, dpa.GaussianDpEvent(z)), rounds)
    rdp_acc = rdp_module.RdpAccountant(orders=INTEGER_ORDERS)
    rdp_acc.compose(event)
    theirs = rdp_acc.get_epsilon(DELTA)
    pld_acc = pld_module.PLDAccountant(value_discretization_interval=1e-3)
    pld_acc.compose(event)
    pld = pld_acc.get_epsilon(DELTA)
    assert abs(ours - theirs) <= 0.01 * theirs
    assert ours >= pld


def test_default_orders_are_sorted_and_cover_the_integers_to_256() -> None:
    assert list(DEFAULT_ORDERS) == sorted(set(DEFAULT_ORDERS))
    assert {float(a) for a in range(2, 257)} <= set(DEFAULT_ORDERS)
    assert 1.25 in DEFAULT_ORDERS
    assert min(DEFAULT_ORDERS) > 1


def test_conversion_modes_match_the_formulas_and_tight_is_never_worse() -> None:
    event = GaussianEvent(noise_multiplier=1.0)
    for a in (2.0, 8.0, 32.0):
        r = a / 2
        tight = epsilon(event, delta=DELTA, orders=[a]).epsilon
        classic = epsilon(event, delta=DELTA, orders=[a], conversion="classic").epsilon
        assert tight == pytest.approx(r + math.log1p(-1 / a) - math.log(DELTA * a) / (a - 1))
        assert classic == pytest.approx(r + math.log(1 / DELTA) / (a - 1))
        assert tight <= classic


# ------------------------------------------------------------------- mpmath


def _skellam_true_rdp(lam: int, shift: int, order: int) -> float:
    """D_α(Sk(λ)+Δ ‖ Sk(λ)) by direct summation, pmf e^{−λ} I_|k|(λ)."""
    with mpmath.workdps(30):
        lam_mp = mpmath.mpf(lam)
        reach = int(lam + 15 * math.sqrt(lam) + 30 + shift * order)

        def pmf(k: int) -> mpmath.mpf:
            return mpmath.exp(-lam_mp) * mpmath.besseli(abs(k), lam_mp)

        total = mpmath.fsum(
            pmf(k - shift) ** order * pmf(k) ** (1 - order) for k in range(-reach, reach + 1)
        )
        return float(mpmath.log(total) / (order - 1))


def _discrete_gaussian_true_rdp(sigma2: float, shift: int, order: int) -> float:
    """D_α(N_Z(Δ, σ²) ‖ N_Z(0, σ²)) by direct summation."""
    with mpmath.workdps(30):
        s2 = mpmath.mpf(sigma2)
        reach = int(40 * math.sqrt(sigma2) + order * shift + 40)

        def weight(x: int) -> mpmath.mpf:
            return mpmath.exp(-(mpmath.mpf(x) ** 2) / (2 * s2))

        xs = range(-reach, reach + 1)
        total = mpmath.fsum(weight(x - shift) ** order * weight(x) ** (1 - order) for x in xs)
        norm = mpmath.fsum(weight(x) for x in xs)
        return float(mpmath.log(total / norm) / (order - 1))


@pytest.mark.parametrize(("lam", "shift"), [(5, 1), (5, 2), (30, 1), (30, 2)])
def test_skellam_bound_is_above_mpmath_divergence_within_factor_two(lam: int, shift: int) -> None:
    """The AKL bound >= the exact 1-D divergence, and <= 2× it (measured: 1.01–1.96)."""
    orders = [2, 4, 8]
    event = SkellamEvent(variance=lam, l2_sensitivity=shift, l1_sensitivity=shift)
    bounds = rdp(event, [float(a) for a in orders])
    for a, bound in zip(orders, bounds, strict=True):
        true = _skellam_true_rdp(lam, shift, a)
        assert true <= bound <= 2 * true, (lam, shift, a, bound, true)


@pytest.mark.parametrize(("sigma2", "shift"), [(0.5, 1), (2.0, 1), (2.0, 3), (10.0, 3)])
def test_discrete_gaussian_bound_is_mpmath_divergence_at_integer_shifts(
    sigma2: float, shift: int
) -> None:
    """ρα with ρ = Δ²/(2σ²) equals the exact divergence for integer Δ and α (so it is tight)."""
    orders = [2, 4, 8]
    bounds = rdp(DiscreteGaussianEvent(sigma2=sigma2, l2_sensitivity=shift), [2.0, 4.0, 8.0])
    for a, bound in zip(orders, bounds, strict=True):
        true = _discrete_gaussian_true_rdp(sigma2, shift, a)
        assert true <= bound * (1 + 1e-12)
        assert bound == pytest.approx(true, rel=1e-9)


# ------------------------------------------------------- DDG and subsampling


def test_ddg_with_one_client_is_the_discrete_gaussian() -> None:
    one = DistributedDiscreteGaussianEvent(
        sigma2=3.0, clients=1, dimension=1000, l2_sensitivity=2.0, l1_sensitivity=20.0
    )
    assert rdp(one, FEW_ORDERS) == pytest.approx(
        rdp(DiscreteGaussianEvent(sigma2=3.0, l2_sensitivity=2.0), FEW_ORDERS)
    )


@pytest.mark.parametrize(("sigma2", "clients"), [(0.3, 10), (1.0, 100), (4.0, 1000)])
def test_ddg_costs_at_least_the_central_discrete_gaussian(sigma2: float, clients: int) -> None:
    """Prop. 14 >= αΔ²/(2nσ²) (τ >= 0), and approaches it when τ is negligible."""
    ddg = DistributedDiscreteGaussianEvent(
        sigma2=sigma2, clients=clients, dimension=10_000, l2_sensitivity=10.0, l1_sensitivity=100.0
    )
    central = DiscreteGaussianEvent(sigma2=sigma2 * clients, l2_sensitivity=10.0)
    for ours, base in zip(rdp(ddg, FEW_ORDERS), rdp(central, FEW_ORDERS), strict=True):
        assert ours >= base
    if sigma2 >= 4:
        assert rdp(ddg, FEW_ORDERS) == pytest.approx(rdp(central, FEW_ORDERS), rel=1e-9)


def test_ddg_min_sigma_is_theorem_1s_one_half() -> None:
    """proofs_notes/ddg-domain.md item 1: DDG_MIN_SIGMA = 1/2."""
    assert DDG_MIN_SIGMA == 0.5


@pytest.mark.parametrize("sigma2", [0.25, Fraction(1, 4), 0.2500000001, 1.0])
def test_ddg_accepts_sigma_from_one_half(sigma2: float) -> None:
    """proofs_notes/ddg-domain.md item 2: σ >= 1/2 is accepted, including σ² = 1/4 exactly."""
    event = DistributedDiscreteGaussianEvent(
        sigma2=sigma2, clients=3, dimension=1, l2_sensitivity=1.0, l1_sensitivity=1.0
    )
    assert all(math.isfinite(e) for e in rdp(event, FEW_ORDERS))


@pytest.mark.parametrize(
    ("sigma2", "clients"),
    [
        (math.nextafter(0.25, 0.0), 2),
        (Fraction(1, 4) - Fraction(1, 10**30), 2),
        (0.2125, 100),
        (0.461**2, 100),
        (0.01, 1),
    ],
)
def test_ddg_refuses_sigma_below_one_half_naming_the_domain(sigma2: float, clients: int) -> None:
    """proofs_notes/ddg-domain.md item 2: σ < 1/2 raises, with a message naming the domain."""
    with pytest.raises(ParameterError, match=r"outside the domain .* sigma >= 1/2") as info:
        DistributedDiscreteGaussianEvent(
            sigma2=sigma2, clients=clients, dimension=1, l2_sensitivity=1.0, l1_sensitivity=1.0
        )
    message = str(info.value)
    assert "\n" not in message
    assert f"sigma2 = {sigma2}" in message
    assert "Theorem 1" in message


def _dgauss_pmf(sigma2: mpmath.mpf, cut: int) -> list[mpmath.mpf]:
    """N_Z(0, σ²) on ``-cut … cut``; the mass beyond is below ``e^{−cut²/(2σ²)}``."""
    weights = [mpmath.exp(-mpmath.mpf(x * x) / (2 * sigma2)) for x in range(-cut, cut + 1)]
    total = mpmath.fsum(weights)
    return [w / total for w in weights]


def _convolve(p: list[mpmath.mpf], q: list[mpmath.mpf]) -> list[mpmath.mpf]:
    out = [mpmath.mpf(0)] * (len(p) + len(q) - 1)
    for i, a in enumerate(p):
        for j, b in enumerate(q):
            out[i + j] += a * b
    return out


def _renyi_shift_one(pmf: list[mpmath.mpf], alpha: int) -> mpmath.mpf:
    """``D_α(P ‖ P(· − 1))`` for a pmf on consecutive integers (Q's support is P's, shifted)."""
    # x ranges over the support of Q = P + 1: P(x) is pmf[k], Q(x) is pmf[k − 1].
    terms = [pmf[k] ** alpha * pmf[k - 1] ** (1 - alpha) for k in range(1, len(pmf))]
    return mpmath.log(mpmath.fsum(terms)) / (alpha - 1)


@pytest.mark.parametrize("clients", [2, 3])
@pytest.mark.parametrize("sigma", [Fraction(1, 2), Fraction(3, 4), Fraction(1)])
def test_ddg_bound_is_above_the_exact_divergence_inside_the_domain(
    clients: int, sigma: Fraction
) -> None:
    """proofs_notes/ddg-domain.md item 3: exact D_α(Z ‖ Z + 1) <= the event's ε(α).

    Z is the sum of ``clients`` independent N_Z(0, σ²), computed by mpmath at
    60 digits and truncated where the dropped mass is below 10^-100; d = 1,
    Δ₂ = Δ₁ = 1, α ∈ {2, 3, 5}. D_α is symmetric in the sign of the shift
    for a symmetric Z, so the shift +1 covers both neighbours.
    """
    alphas = [2, 3, 5]
    with mpmath.workdps(60):
        s2 = mpmath.mpf(sigma.numerator) ** 2 / mpmath.mpf(sigma.denominator) ** 2
        cut = 25  # e^{−25²/(2·1)} < 10^-135; every σ here is <= 1.
        one = _dgauss_pmf(s2, cut)
        total = one
        for _ in range(clients - 1):
            total = _convolve(total, one)
        exact = [_renyi_shift_one(total, a) for a in alphas]
    event = DistributedDiscreteGaussianEvent(
        sigma2=float(sigma * sigma),
        clients=clients,
        dimension=1,
        l2_sensitivity=1.0,
        l1_sensitivity=1.0,
    )
    bound = rdp(event, [float(a) for a in alphas])
    for a, e, b in zip(alphas, exact, bound, strict=True):
        assert 0 < e <= b, f"alpha={a}: exact {e} > bound {b}"


@pytest.mark.parametrize(("z", "q"), [(0.8, 0.01), (1.0, 0.1), (2.0, 0.05), (5.0, 0.3)])
def test_zhu_wang_bound_is_above_the_exact_sampled_gaussian(z: float, q: float) -> None:
    """The general bound (applied to N_Z(0, z²), Δ=1) >= MTZ's exact value for N(0, z²)."""
    orders = [float(a) for a in range(2, 40)]
    general = rdp(
        PoissonSampledEvent(
            event=DiscreteGaussianEvent(sigma2=z * z, l2_sensitivity=1.0), sampling_rate=q
        ),
        orders,
    )
    exact = rdp(
        PoissonSampledEvent(event=GaussianEvent(noise_multiplier=z), sampling_rate=q), orders
    )
    unsampled = rdp(GaussianEvent(noise_multiplier=z), orders)
    for g, e, u in zip(general, exact, unsampled, strict=True):
        assert e * (1 - 1e-12) <= g <= u * (1 + 1e-12)


def test_subsampled_fractional_orders_are_charged_at_the_next_integer() -> None:
    """Every subsampled mechanism but the Gaussian charges a fractional α at ⌈α⌉ (>= 2)."""
    for inner in (
        SkellamEvent(variance=100.0, l2_sensitivity=1.0, l1_sensitivity=2.0),
        DiscreteGaussianEvent(sigma2=4.0, l2_sensitivity=1.0),
    ):
        event = PoissonSampledEvent(event=inner, sampling_rate=0.1)
        assert rdp(event, [1.25, 2.5]) == rdp(event, [2.0, 3.0])


def test_subsampled_gaussian_fractional_orders_lie_between_the_integer_neighbours() -> None:
    """The exact fractional value (MTZ 2019) is non-decreasing in α, and below ⌈α⌉'s."""
    event = PoissonSampledEvent(event=GaussianEvent(noise_multiplier=1.0), sampling_rate=0.1)
    low, mid, high, frac, top = rdp(event, [1.25, 1.5, 2.0, 2.5, 3.0])
    assert 0 < low < mid < high < frac < top


# ------------------------------------------------------------- properties


@given(
    z=st.floats(0.5, 10.0),
    q=st.sampled_from([0.001, 0.01, 0.1, 0.5, 1.0]),
    rounds=st.integers(1, 2000),
    extra=st.integers(1, 2000),
)
def test_epsilon_is_non_decreasing_in_rounds(z: float, q: float, rounds: int, extra: int) -> None:
    a = epsilon(_sgm(z, q, rounds), delta=DELTA, orders=FEW_ORDERS).epsilon
    b = epsilon(_sgm(z, q, rounds + extra), delta=DELTA, orders=FEW_ORDERS).epsilon
    assert a <= b


@given(z=st.floats(0.5, 10.0), q=st.floats(0.0, 1.0), dq=st.floats(0.0, 1.0))
def test_epsilon_is_non_decreasing_in_sampling_rate(z: float, q: float, dq: float) -> None:
    q2 = min(1.0, q + dq)
    a = epsilon(_sgm(z, q, 100), delta=DELTA, orders=FEW_ORDERS).epsilon
    b = epsilon(_sgm(z, q2, 100), delta=DELTA, orders=FEW_ORDERS).epsilon
    assert a <= b * (1 + 1e-12)


@given(
    z=st.floats(0.5, 10.0),
    factor=st.floats(1.0, 4.0),
    mechanism=st.sampled_from(["gaussian", "skellam", "ddg"]),
)
def test_epsilon_is_non_increasing_in_noise(z: float, factor: float, mechanism: str) -> None:
    def make(noise: float) -> object:
        if mechanism == "gaussian":
            inner: object = GaussianEvent(noise_multiplier=noise)
        elif mechanism == "skellam":
            inner = SkellamEvent(variance=noise * noise, l2_sensitivity=1.0, l1_sensitivity=1.0)
        else:
            # σ = noise >= 1/2 = DDG_MIN_SIGMA: inside the bound's domain.
            inner = DistributedDiscreteGaussianEvent(
                sigma2=noise * noise,
                clients=10,
                dimension=100,
                l2_sensitivity=1.0,
                l1_sensitivity=10.0,
            )
        return ComposedEvent(event=PoissonSampledEvent(event=inner, sampling_rate=0.05), count=50)

    a = epsilon(make(z), delta=DELTA, orders=FEW_ORDERS).epsilon
    b = epsilon(make(z * factor), delta=DELTA, orders=FEW_ORDERS).epsilon
    assert b <= a * (1 + 1e-12)


@given(
    counts=st.lists(st.integers(0, 50), min_size=1, max_size=4),
    z=st.floats(0.5, 10.0),
    lam=st.floats(1.0, 1e4),
)
def test_composition_is_additive(counts: list[int], z: float, lam: float) -> None:
    g = GaussianEvent(noise_multiplier=z)
    s = SkellamEvent(variance=lam, l2_sensitivity=1.0, l1_sensitivity=2.0)
    seq = ComposedSequence(
        events=tuple(ComposedEvent(event=g if i % 2 else s, count=c) for i, c in enumerate(counts))
    )
    expected = [0.0] * len(FEW_ORDERS)
    for i, c in enumerate(counts):
        base = rdp(g if i % 2 else s, FEW_ORDERS)
        expected = [e + c * b for e, b in zip(expected, base, strict=True)]
    assert rdp(seq, FEW_ORDERS) == pytest.approx(expected, rel=1e-12, abs=0.0)


@given(target=st.floats(0.5, 8.0), q=st.sampled_from([0.01, 0.1, 1.0]))
def test_calibration_round_trip_returns_the_smallest_sufficient_noise(
    target: float, q: float
) -> None:
    tol = 1e-4

    def make(z: float) -> object:
        return _sgm(z, q, 100)

    result = calibrate(
        make,
        target_epsilon=target,
        delta=DELTA,
        low=0.3,
        high=200.0,
        orders=FEW_ORDERS,
        tolerance=tol,
    )
    assert result.epsilon <= target
    assert epsilon(make(result.noise), delta=DELTA, orders=FEW_ORDERS).epsilon == result.epsilon
    if result.noise - tol > 0.3:
        assert epsilon(make(result.noise - tol), delta=DELTA, orders=FEW_ORDERS).epsilon > target


def test_calibration_refuses_when_even_high_noise_misses() -> None:
    with pytest.raises(ParameterError, match=r"even noise 2\.0"):
        calibrate(lambda z: _sgm(z, 1.0, 1000), target_epsilon=0.1, delta=DELTA, low=0.5, high=2.0)


# ---------------------------------------------------------- sampler distance


def test_sampler_distance_is_charged_to_delta_with_the_e_epsilon_factor() -> None:
    """The ideal mechanism is converted at δ − (1 + e^ε)s, so the real one is (ε, δ)-DP."""
    event = _sgm(1.0, 0.01, 1000)
    s = 1e-7  # far above 2^-64 per coordinate, to move ε visibly
    plain = epsilon(event, delta=DELTA)
    charged = epsilon(event, delta=DELTA, sampler_distance=s)
    assert charged.delta == DELTA
    assert charged.epsilon >= plain.epsilon
    budget = DELTA - (1 + math.exp(charged.epsilon)) * s
    assert budget > 0
    assert epsilon(event, delta=budget).epsilon <= charged.epsilon
    tiny = epsilon(event, delta=DELTA, sampler_distance=1000 * 2.0**-64)
    assert tiny.epsilon == pytest.approx(plain.epsilon, rel=1e-9)


def test_sampler_distance_at_or_above_delta_is_refused() -> None:
    event = GaussianEvent(noise_multiplier=1.0)
    with pytest.raises(ParameterError, match="sampler_distance"):
        epsilon(event, delta=1e-6, sampler_distance=1e-6)
    with pytest.raises(ParameterError, match="no δ budget"):
        epsilon(event, delta=1e-6, sampler_distance=0.9e-6)


# ------------------------------------------------------ realized accounting


def _record(**changes: object) -> RoundRecord:
    fields: dict[str, object] = {
        "contributors": 90,
        "dropouts": 10,
        "colluders": 5,
        "honest_variance": 400.0,
        "sampling_rate": 1.0,
        "mechanism": "skellam",
        "l2_sensitivity": 1.0,
        "l1_sensitivity": 3.0,
    }
    fields.update(changes)
    return RoundRecord(**fields)  # type: ignore[arg-type]


def test_realized_event_charges_honest_noise_only() -> None:
    records = [_record(), _record(honest_variance=800.0, sampling_rate=0.1)]
    got = rdp(realized_event(records), FEW_ORDERS)
    first = rdp(SkellamEvent(variance=400.0, l2_sensitivity=1.0, l1_sensitivity=3.0), FEW_ORDERS)
    second = rdp(
        PoissonSampledEvent(
            event=SkellamEvent(variance=800.0, l2_sensitivity=1.0, l1_sensitivity=3.0),
            sampling_rate=0.1,
        ),
        FEW_ORDERS,
    )
    assert got == pytest.approx([a + b for a, b in zip(first, second, strict=True)], rel=1e-12)


def test_realized_ddg_round_uses_honest_clients_and_per_client_variance() -> None:
    record = _record(mechanism="ddg", dimension=100)
    event = MECHANISMS["ddg"](record)
    assert event == DistributedDiscreteGaussianEvent(
        sigma2=400.0 / 85, clients=85, dimension=100, l2_sensitivity=1.0, l1_sensitivity=3.0
    )


def test_realized_accounting_rejects_bad_records_naming_the_value() -> None:
    with pytest.raises(ParameterError, match="colluders=90"):
        _record(colluders=90)
    with pytest.raises(ParameterError, match="'laplace'"):
        _record(mechanism="laplace")
    with pytest.raises(ParameterError, match="node"):
        realized_event([_record(), _record(unit="node")])


@pytest.mark.parametrize(
    ("build", "fragment"),
    [
        (lambda: GaussianEvent(noise_multiplier=0.0), "got 0.0"),
        (lambda: GaussianEvent(noise_multiplier=math.inf), "got inf"),
        (lambda: SkellamEvent(variance=-1.0, l2_sensitivity=1.0, l1_sensitivity=1.0), "got -1.0"),
        (lambda: PoissonSampledEvent(event=None, sampling_rate=1.5), "got 1.5"),
        (lambda: ComposedEvent(event=None, count=-1), "got -1"),
        (lambda: epsilon(GaussianEvent(noise_multiplier=1.0), delta=0.0), "got 0.0"),
        (lambda: rdp(GaussianEvent(noise_multiplier=1.0), [1.0]), "got 1.0"),
        (lambda: rdp("not an event", [2.0]), "str"),
    ],
)
def test_invalid_parameters_raise_parameter_error_naming_the_value(
    build: object, fragment: str
) -> None:
    assert callable(build)
    with pytest.raises(ParameterError, match=fragment):
        build()
