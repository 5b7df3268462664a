"""The distributed noise plan: honest noise under dropouts and collusion, top-ups, τ.

Spec: spec/07-noise-plan.md

Oracles, each independent of the code under test:

- closed-form formulas recomputed here from the spec, exhaustively over
  small deployments (n <= 7) and on Hypothesis-generated ones;
- sympy, for the labelled equations of proofs_notes/honest-noise-under-dropouts.md
  and proofs_notes/ddg-sum-bound.md, with every quantity symbolic;
- mpmath at 60 digits, for the upper bounds on exp(−x) and on τ;
- the real Skellam sampler, whose survivors' draws are compared with the
  exact pmf of Sk(λ_released) by a chi-square test on fixed seeds.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import mpmath
import pytest
import sympy
from hypothesis import given
from hypothesis import strategies as st

from protocol.errors import ParameterError
from protocol.noise import skellam
from protocol.noise_plan import PI_LOWER, NoisePlan, exp_neg_upper, kls_tau, plan
from protocol.xof import Tag, Xof, as_seed

mpmath.mp.dps = 60
SEED = as_seed(bytes(range(32)))
MECHANISMS = ("dgauss", "skellam")


def _mp(x: Fraction) -> Any:
    return mpmath.mpf(x.numerator) / x.denominator


# ---------------------------------------------------------------------- strategies
# (These belong in tests/strategies.py, house style rule 9; kept here while
# that file is owned by another change.)

variances = st.fractions(min_value=Fraction(1, 1000), max_value=Fraction(10**6)).filter(
    lambda v: v > 0
)


@st.composite
def plans(draw: st.DrawFn) -> NoisePlan:
    """A valid plan with n <= 60: D and T such that n − D − T >= 1."""
    n = draw(st.integers(min_value=1, max_value=60))
    t = draw(st.integers(min_value=0, max_value=n - 1))
    d = draw(st.integers(min_value=0, max_value=n - 1 - t))
    return plan(
        mechanism=draw(st.sampled_from(MECHANISMS)),
        target_variance=draw(variances),
        contributors=n,
        max_dropouts=d,
        max_colluders=t,
    )


@st.composite
def plans_with_dropouts_and_colluders(draw: st.DrawFn) -> tuple[NoisePlan, int, int]:
    p = draw(plans())
    d = draw(st.integers(min_value=0, max_value=p.max_dropouts))
    c = draw(st.integers(min_value=0, max_value=min(p.max_colluders, p.contributors - d)))
    return p, d, c


def _small_deployments(max_n: int = 7) -> list[tuple[int, int, int]]:
    return [
        (n, dmax, t)
        for n in range(1, max_n + 1)
        for t in range(n)
        for dmax in range(n - t)  # n − D − T >= 1
    ]


# ---------------------------------------------------------------------- the guarantee


def test_honest_variance_at_least_target_for_every_dropout_and_collusion() -> None:
    """proofs_notes/honest-noise-under-dropouts.md (E3), exhaustively for n <= 7:
    every d <= D and every c <= min(T, n − d) leave the honest survivors >= σ*²."""
    target = Fraction(7, 3)
    checked = 0
    for n, dmax, t in _small_deployments():
        for mechanism in MECHANISMS:
            p = plan(
                mechanism=mechanism,
                target_variance=target,
                contributors=n,
                max_dropouts=dmax,
                max_colluders=t,
            )
            for d in range(dmax + 1):
                s = target / (n - d - t)  # independently recomputed s(d)
                for c in range(min(t, n - d) + 1):
                    honest = p.honest_variance(d, colluders=c)
                    assert honest == (n - d - c) * s
                    assert honest >= target
                    assert (honest == target) == (c == t)
                    checked += 1
    assert checked > 500


@given(plans_with_dropouts_and_colluders())
def test_honest_variance_equals_target_when_t_colluders_survive(
    case: tuple[NoisePlan, int, int],
) -> None:
    """proofs_notes/honest-noise-under-dropouts.md (E3), equality case: c = T gives σ*²."""
    p, d, _ = case
    assert p.honest_variance(d) == p.target_variance
    assert p.honest_variance(d, colluders=p.max_colluders) == p.target_variance
    assert p.min_honest_survivors(d) * p.survivor_variance(d) == p.target_variance


@given(plans_with_dropouts_and_colluders())
def test_released_is_honest_plus_colluders_part(case: tuple[NoisePlan, int, int]) -> None:
    """proofs_notes/honest-noise-under-dropouts.md (E4): R(d) = H(d, c) + c·s(d)."""
    p, d, c = case
    n, t, target = p.contributors, p.max_colluders, p.target_variance
    released = p.released_variance(d)
    assert released == (n - d) * target / (n - d - t)
    assert released == p.honest_variance(d, colluders=c) + p.colluder_variance(d, colluders=c)
    assert p.colluder_variance(d, colluders=c) == c * p.survivor_variance(d)
    assert released >= p.honest_variance(d, colluders=c) >= target


@given(plans())
def test_top_up_is_zero_without_dropouts_and_grows_with_dropouts(p: NoisePlan) -> None:
    """proofs_notes/honest-noise-under-dropouts.md (E1), (E2), (E5)."""
    n, t, target = p.contributors, p.max_colluders, p.target_variance
    v0 = p.initial_share_variance()
    assert v0 == target / (n - t)
    assert (n - t) * v0 == target
    assert p.top_up_variance(0) == 0
    previous = Fraction(-1)
    for d in range(p.max_dropouts + 1):
        v1 = p.top_up_variance(d)
        assert v1 == target * d / ((n - t) * (n - d - t))
        assert v0 + v1 == p.survivor_variance(d) == target / (n - d - t)
        assert v1 > previous
        assert (v1 == 0) == (d == 0)
        previous = v1


@given(plans())
def test_top_up_increment_restores_the_survivor_total(p: NoisePlan) -> None:
    """proofs_notes/honest-noise-under-dropouts.md (E6): v0 + v1(d) + increment = s(d')."""
    v0 = p.initial_share_variance()
    for d in range(p.max_dropouts + 1):
        for d2 in range(d, p.max_dropouts + 1):
            inc = p.top_up_increment(from_dropouts=d, to_dropouts=d2)
            assert inc >= 0
            assert inc == p.top_up_variance(d2) - p.top_up_variance(d)
            assert v0 + p.top_up_variance(d) + inc == p.survivor_variance(d2)


@given(plans())
def test_dgauss_survivor_draws_sum_to_survivor_variance(p: NoisePlan) -> None:
    """proofs_notes/ddg-sum-bound.md item 4, (E5), (E6): the per-survivor σ² values."""
    n, t, target = p.contributors, p.max_colluders, p.target_variance
    v0 = p.initial_share_variance()
    assert p.survivor_draws(0) == (v0,)
    assert p.min_honest_survivors(0) * v0 == target
    for d in range(1, p.max_dropouts + 1):
        draws = p.survivor_draws(d)
        assert draws == (v0, p.top_up_variance(d))
        assert all(v > 0 for v in draws)
        assert sum(draws) == p.survivor_variance(d)
        assert p.min_honest_survivors(d) == n - d - t
        assert p.min_honest_survivors(d) * v0 == (n - d - t) * target / (n - t)


def test_spec_example_table() -> None:
    """spec/07-noise-plan.md#guarantee, the example: σ*² = 72, n = 10, D = 3, T = 1."""
    p = plan(
        mechanism="skellam",
        target_variance=Fraction(72),
        contributors=10,
        max_dropouts=3,
        max_colluders=1,
    )
    assert p.initial_share_variance() == 8
    rows = {
        0: (Fraction(0), Fraction(8), Fraction(80)),
        1: (Fraction(1), Fraction(9), Fraction(81)),
        2: (Fraction(16, 7), Fraction(72, 7), Fraction(576, 7)),
        3: (Fraction(4), Fraction(12), Fraction(84)),
    }
    for d, (v1, s, released) in rows.items():
        assert p.top_up_variance(d) == v1
        assert p.survivor_variance(d) == s
        assert p.honest_variance(d) == 72
        assert p.honest_variance(d, colluders=0) == released
        assert p.released_variance(d) == released
    assert 6 * Fraction(72, 10) == Fraction(216, 5) == Fraction(3, 5) * 72


def test_plan_normalizes_an_int_target_to_fraction() -> None:
    p = plan(mechanism="dgauss", target_variance=5, contributors=3, max_dropouts=1, max_colluders=1)  # type: ignore[arg-type]
    assert p.target_variance == Fraction(5)
    assert type(p.target_variance) is Fraction
    assert p.initial_share_variance() == Fraction(5, 2)
    assert p == plan(
        mechanism="dgauss",
        target_variance=Fraction(5),
        contributors=3,
        max_dropouts=1,
        max_colluders=1,
    )


# ---------------------------------------------------------------------- refusals


def _plan_kwargs(**overrides: object) -> dict[str, object]:
    kwargs: dict[str, object] = {
        "mechanism": "skellam",
        "target_variance": Fraction(10),
        "contributors": 10,
        "max_dropouts": 2,
        "max_colluders": 2,
    }
    kwargs.update(overrides)
    return kwargs


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"mechanism": "gauss"}, "mechanism must be one of"),
        ({"mechanism": None}, "mechanism must be one of"),
        ({"target_variance": 1.5}, "target_variance must be a Fraction or int"),
        ({"target_variance": True}, "target_variance must be a Fraction or int"),
        ({"target_variance": "10"}, "target_variance must be a Fraction or int"),
        ({"target_variance": Fraction(0)}, "target_variance must be > 0"),
        ({"target_variance": Fraction(-1, 2)}, "target_variance must be > 0"),
        ({"contributors": 0}, "contributors must be an int >= 1"),
        ({"contributors": 3.0}, "contributors must be an int >= 1"),
        ({"contributors": True}, "contributors must be an int >= 1"),
        ({"max_dropouts": -1}, "max_dropouts must be an int >= 0"),
        ({"max_colluders": -1}, "max_colluders must be an int >= 0"),
        ({"max_colluders": False}, "max_colluders must be an int >= 0"),
        ({"max_dropouts": 5, "max_colluders": 5}, "honest-survivor bound"),
        ({"contributors": 1, "max_dropouts": 0, "max_colluders": 1}, "honest-survivor bound"),
        ({"contributors": 4, "max_dropouts": 4, "max_colluders": 0}, "honest-survivor bound"),
        # checks run in the spec's order: the mechanism before the bound
        ({"mechanism": "x", "max_dropouts": 50}, "mechanism must be one of"),
        ({"target_variance": 0, "contributors": 0}, "target_variance must be > 0"),
    ],
)
def test_refusals_name_the_failed_bound(overrides: dict[str, object], needle: str) -> None:
    """spec/07-noise-plan.md#inputs: every invalid input is a ParameterError naming its rule."""
    with pytest.raises(ParameterError, match=re.escape(needle)):
        plan(**_plan_kwargs(**overrides))  # type: ignore[arg-type]


def test_honest_survivor_bound_message_shows_the_numbers() -> None:
    with pytest.raises(ParameterError) as info:
        plan(**_plan_kwargs(max_dropouts=5, max_colluders=5))  # type: ignore[arg-type]
    message = str(info.value)
    assert "10 − 5 − 5 = 0" in message
    assert "cannot guarantee the target" in message


def test_direct_construction_is_validated_too() -> None:
    with pytest.raises(ParameterError, match="honest-survivor bound"):
        NoisePlan(
            mechanism="dgauss",
            target_variance=Fraction(1),
            contributors=2,
            max_dropouts=1,
            max_colluders=1,
        )


@pytest.mark.parametrize("dropouts", [-1, 3, 10, True, 1.0, None])
def test_dropouts_beyond_d_are_refused(dropouts: object) -> None:
    """spec/07-noise-plan.md#top-up rule 1: d > D (or not an int in [0, D]) is refused."""
    p = plan(**_plan_kwargs())  # type: ignore[arg-type]
    methods: list[Callable[[Any], object]] = [
        p.top_up_variance,
        p.survivor_variance,
        p.survivor_draws,
        p.min_honest_survivors,
        p.honest_variance,
        p.colluder_variance,
        p.released_variance,
    ]
    for method in methods:
        with pytest.raises(ParameterError, match=r"dropouts must be an int in \[0, max_dropouts"):
            method(dropouts)
    with pytest.raises(ParameterError, match="dropouts must be an int"):
        p.top_up_increment(from_dropouts=0, to_dropouts=dropouts)  # type: ignore[arg-type]


def test_colluders_outside_their_range_are_refused() -> None:
    p = plan(**_plan_kwargs(contributors=4, max_dropouts=1, max_colluders=2))  # type: ignore[arg-type]
    for c in (-1, 3, True, 1.5):
        with pytest.raises(ParameterError, match="colluders among the survivors"):
            p.honest_variance(1, colluders=c)  # type: ignore[arg-type]
    # with d = 1 of n = 4 dropped, at most min(T, n − d) = 2 colluders survive
    assert p.honest_variance(1, colluders=2) == p.target_variance
    q = plan(**_plan_kwargs(contributors=3, max_dropouts=0, max_colluders=2))  # type: ignore[arg-type]
    assert q.colluder_variance(0, colluders=2) == 2 * q.survivor_variance(0)


def test_top_up_increment_refuses_a_growing_set() -> None:
    p = plan(**_plan_kwargs())  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="to_dropouts must be >= from_dropouts"):
        p.top_up_increment(from_dropouts=2, to_dropouts=1)


# ---------------------------------------------------------------------- symbolic checks

SIGMA2, N, D_, D2, T_, C = sympy.symbols("sigma2 n d d2 T c", positive=True)


def _zero(expr: sympy.Expr) -> bool:
    return sympy.simplify(sympy.cancel(sympy.together(expr))) == 0


def test_plan_equations_hold_symbolically() -> None:
    """proofs_notes/honest-noise-under-dropouts.md (E1)–(E6) in sympy, all symbols free."""
    v0 = SIGMA2 / (N - T_)

    def s(d: sympy.Expr) -> sympy.Expr:
        return SIGMA2 / (N - d - T_)

    def v1(d: sympy.Expr) -> sympy.Expr:
        return s(d) - v0

    honest = (N - D_ - C) * s(D_)
    released = (N - D_) * s(D_)
    assert _zero((N - T_) * v0 - SIGMA2)  # (E1)
    assert _zero(v0 + v1(D_) - SIGMA2 / (N - D_ - T_))  # (E2)
    assert _zero(honest - (SIGMA2 + (T_ - C) * s(D_)))  # (E3)
    # (E3)'s inequality: H − σ*² factors as (T − c)·σ*²/(n − d − T), every factor >= 0
    assert _zero(sympy.factor(honest - SIGMA2) - (T_ - C) * SIGMA2 / (N - D_ - T_))
    assert _zero(released - (honest + C * s(D_)))  # (E4)
    assert _zero(v1(D_) - SIGMA2 * D_ / ((N - T_) * (N - D_ - T_)))  # (E5)
    assert _zero(v1(D_ + 1) - v1(D_) - SIGMA2 / ((N - D_ - T_) * (N - D_ - 1 - T_)))  # (E5)
    assert _zero(v1(D2) - v1(D_) - (s(D2) - s(D_)))  # (E6)
    assert _zero(v0 + v1(D_) + (v1(D2) - v1(D_)) - s(D2))  # (E6)


def test_skellam_pgf_of_survivor_draws_is_exact() -> None:
    """proofs_notes/honest-noise-under-dropouts.md (E7) in sympy: the generating
    functions g_λ(z) = exp((λ/2)(z + 1/z − 2)) of the survivors' draws multiply
    to those of Sk(s(d)), Sk(R(d)) and Sk(σ*²)·Sk((T − c)·s(d))."""
    z = sympy.symbols("z", positive=True)

    def g(lam: sympy.Expr) -> sympy.Expr:
        return sympy.exp(lam / 2 * (z + 1 / z - 2))

    v0 = SIGMA2 / (N - T_)
    s = SIGMA2 / (N - D_ - T_)
    v1 = s - v0

    def same(a: sympy.Expr, b: sympy.Expr) -> bool:
        return _zero(sympy.expand_log(sympy.log(a) - sympy.log(b), force=True))

    assert same(g(v0) * g(v1), g(s))  # a survivor's two draws
    assert same(g(s) ** (N - D_), g((N - D_) * s))  # the n − d survivors: Sk(R(d))
    honest = g(s) ** (N - D_ - C)  # the n − d − c honest survivors
    assert same(honest, g((N - D_ - C) * s))
    assert same(honest, g(SIGMA2) * g((T_ - C) * s))


def test_ddg_equations_hold_symbolically() -> None:
    """proofs_notes/ddg-sum-bound.md (E2), (E4), (E5), (E6), (E7) in sympy."""
    k, y = sympy.symbols("k y", positive=True)
    assert _zero(k / (k + 1) - sympy.Rational(1, 2) - (k - 1) / (2 * (k + 1)))  # (E2)
    assert _zero(1 - k / (k + 1) - 1 / (k + 1))  # (E2)
    assert sympy.simplify(sympy.exp(-2 * y) - sympy.exp(-y) ** 2) == 0  # (E4)
    v0 = SIGMA2 / (N - T_)
    assert _zero((N - T_) * v0 - SIGMA2)  # (E5)
    assert _zero((N - D_ - T_) * v0 - (N - D_ - T_) * SIGMA2 / (N - T_))  # (E6)
    assert _zero((k * SIGMA2 * SIGMA2) / (k * SIGMA2 + SIGMA2) - SIGMA2 * k / (k + 1))  # (E7)


# ---------------------------------------------------------------------- τ and exp bounds


def test_pi_lower_is_below_pi() -> None:
    """proofs_notes/ddg-sum-bound.md item 3: PI_LOWER <= π < PI_LOWER + 10^−50."""
    assert _mp(PI_LOWER) <= mpmath.pi < _mp(PI_LOWER) + mpmath.mpf(10) ** -50
    assert PI_LOWER.denominator <= 10**50


@given(
    st.one_of(
        st.fractions(min_value=0, max_value=4, max_denominator=10**6),
        st.fractions(min_value=0, max_value=200, max_denominator=1000),
        st.integers(min_value=0, max_value=2**30).map(Fraction),
    )
)
def test_exp_neg_upper_bounds_exp_from_above(x: Fraction) -> None:
    """proofs_notes/ddg-sum-bound.md (E3), (E4): exp(−x) <= U <= exp(−x) + 2^−100."""
    upper = exp_neg_upper(x)
    assert isinstance(upper, Fraction)
    exact = mpmath.exp(-_mp(x))
    assert _mp(upper) >= exact
    assert _mp(upper) - exact <= mpmath.mpf(2) ** -100


def test_exp_neg_upper_at_zero_and_at_the_edges() -> None:
    assert exp_neg_upper(Fraction(0)) == 1
    for x in (Fraction(1), Fraction(2), Fraction(1, 2**40), Fraction(2**30 - 1, 3)):
        assert _mp(exp_neg_upper(x)) >= mpmath.exp(-_mp(x))


def _tau_mp(m: int, sigma2: Fraction) -> Any:
    s2 = _mp(sigma2)
    return 10 * mpmath.fsum(
        mpmath.exp(-2 * mpmath.pi**2 * s2 * mpmath.mpf(k) / (k + 1)) for k in range(1, m)
    )


@pytest.mark.parametrize("m", [1, 2, 3, 10, 100, 1000])
@pytest.mark.parametrize(
    "sigma2",
    [Fraction(1, 4), Fraction(1, 2), Fraction(1), Fraction(2), Fraction(9, 2), Fraction(50)],
    ids=str,
)
def test_kls_tau_is_an_upper_bound_close_to_mpmath(m: int, sigma2: Fraction) -> None:
    """proofs_notes/ddg-sum-bound.md (E1) and item 3: τ <= kls_tau < τ + 10(m − 1)·2^−100."""
    tau = kls_tau(summands=m, sigma2=sigma2)
    assert isinstance(tau, Fraction)
    exact = _tau_mp(m, sigma2)
    assert _mp(tau) >= exact
    assert _mp(tau) - exact <= 10 * max(m - 1, 0) * mpmath.mpf(2) ** -100
    if m == 1:
        assert tau == 0


@given(
    st.integers(min_value=2, max_value=300),
    st.fractions(min_value=Fraction(1, 8), max_value=Fraction(20), max_denominator=1000),
)
def test_kls_tau_between_closed_form_bounds(m: int, sigma2: Fraction) -> None:
    """proofs_notes/ddg-sum-bound.md (E2): 10(m−1)e^{−2π²σ²} <= τ <= 10(m−1)e^{−π²σ²}."""
    tau = _mp(kls_tau(summands=m, sigma2=sigma2))
    s2 = _mp(sigma2)
    low = 10 * (m - 1) * mpmath.exp(-2 * mpmath.pi**2 * s2)
    high = 10 * (m - 1) * mpmath.exp(-(mpmath.pi**2) * s2)
    slack = 10 * (m - 1) * mpmath.mpf(2) ** -100  # kls_tau's excess over τ
    assert low <= tau <= high + slack


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"summands": 0, "sigma2": Fraction(1)}, "summands must be an int >= 1"),
        ({"summands": 2.0, "sigma2": Fraction(1)}, "summands must be an int >= 1"),
        ({"summands": 2, "sigma2": 1.0}, "sigma2 must be a Fraction or int"),
        ({"summands": 2, "sigma2": True}, "sigma2 must be a Fraction or int"),
        ({"summands": 2, "sigma2": Fraction(0)}, "sigma2 must be > 0"),
    ],
)
def test_kls_tau_refuses_bad_parameters(kwargs: dict[str, object], needle: str) -> None:
    with pytest.raises(ParameterError, match=re.escape(needle)):
        kls_tau(**kwargs)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- the real sampler


def _chi_square_p_value(counts: Counter[int], pmf: Callable[[int], Any], n: int) -> Any:
    """p-value of Pearson's chi-square test; bins of expectation >= 5, tails lumped."""
    lo, hi = min(counts), max(counts)
    while n * pmf(lo - 1) >= 5:
        lo -= 1
    while n * pmf(hi + 1) >= 5:
        hi += 1
    bins = [(n * pmf(v), counts.get(v, 0)) for v in range(lo, hi + 1)]
    inner = mpmath.fsum(e for e, _ in bins) / n
    bins.append((n * (1 - inner), n - sum(o for _, o in bins)))
    merged: list[tuple[Any, int]] = []
    acc_e, acc_o = mpmath.mpf(0), 0
    for e, o in bins:
        acc_e, acc_o = acc_e + e, acc_o + o
        if acc_e >= 5:
            merged.append((acc_e, acc_o))
            acc_e, acc_o = mpmath.mpf(0), 0
    if acc_e > 0:
        e, o = merged.pop()
        merged.append((e + acc_e, o + acc_o))
    stat = mpmath.fsum((o - e) ** 2 / e for e, o in merged)
    dof = len(merged) - 1
    return mpmath.gammainc(mpmath.mpf(dof) / 2, stat / 2, mpmath.inf, regularized=True)


def _skellam_pmf(lam: Fraction) -> Callable[[int], Any]:
    x = _mp(lam)  # P[k] = e^−λ I_|k|(λ)
    return lambda k: mpmath.exp(-x) * mpmath.besseli(abs(k), x)


def test_survivors_skellam_draws_sum_to_released_skellam() -> None:
    """proofs_notes/honest-noise-under-dropouts.md (E7) on the real sampler.

    n = 5, T = 1, D = 2, σ*² = 6, and d = 1 dropout: each of the 4 survivors
    draws skellam(v0 = 3/2) and then skellam(v1 = 1/2) from its own stream;
    the sums follow Sk(R(1) = 8), and not Sk(6), the total without top-ups.
    """
    p = plan(
        mechanism="skellam",
        target_variance=Fraction(6),
        contributors=5,
        max_dropouts=2,
        max_colluders=1,
    )
    d = 1
    v0, v1 = p.survivor_draws(d)
    assert (v0, v1) == (Fraction(3, 2), Fraction(1, 2))
    assert p.released_variance(d) == 8
    survivors = p.contributors - d
    shares = [Xof(SEED, Tag("test.noise_plan.share", (i,))) for i in range(survivors)]
    top_ups = [Xof(SEED, Tag("test.noise_plan.top_up", (i, d))) for i in range(survivors)]
    n = 4000
    counts = Counter(
        sum(skellam(shares[i], v0) + skellam(top_ups[i], v1) for i in range(survivors))
        for _ in range(n)
    )
    assert _chi_square_p_value(counts, _skellam_pmf(p.released_variance(d)), n) > 1e-6
    # control: the test has the power to see the missing top-ups
    assert _chi_square_p_value(counts, _skellam_pmf(survivors * v0), n) < 1e-6


# ---------------------------------------------------------------- pre-covering
# Spec: spec/07-noise-plan.md#pre-covering


@given(
    n=st.integers(2, 40),
    data=st.data(),
    target=st.fractions(min_value=Fraction(1, 7), max_value=Fraction(10**6)),
)
def test_pre_covering_keeps_the_guarantee_and_skips_top_ups_up_to_c0(
    n: int, data: st.DataObject, target: Fraction
) -> None:
    """With ``c0`` dropouts pre-covered: ``v0 = σ*²/(n − c0 − T)``, no top-up for ``d <= c0``,
    the top-ups above ``c0`` are the plain plan's survivor totals, and the honest noise
    of every survivor set is at least σ*² (sympy checks the closed forms)."""
    big_d = data.draw(st.integers(0, n - 1))
    t = data.draw(st.integers(0, n - 1 - big_d))
    c0 = data.draw(st.integers(0, big_d))
    p = plan(mechanism="skellam", target_variance=target, contributors=n,
             max_dropouts=big_d, max_colluders=t, precovered=c0)  # fmt: skip
    plain = plan(mechanism="skellam", target_variance=target, contributors=n,
                 max_dropouts=big_d, max_colluders=t)  # fmt: skip
    sig, nn, cc, tt = sympy.symbols("sigma n c0 T", positive=True)
    v0 = (sig / (nn - cc - tt)).subs({sig: target, nn: n, cc: c0, tt: t})
    assert p.initial_share_variance() == Fraction(str(v0))
    for d in range(big_d + 1):
        if d <= c0:
            assert p.top_up_variance(d) == 0 and p.survivor_draws(d) == (
                p.initial_share_variance(),
            )
            assert p.survivor_variance(d) == p.initial_share_variance()
        else:
            assert p.survivor_variance(d) == plain.survivor_variance(d)
            assert p.top_up_increment(from_dropouts=c0, to_dropouts=d) == (
                plain.survivor_variance(d) - p.initial_share_variance()
            )
        for c in range(min(t, n - d) + 1):
            assert p.honest_variance(d, colluders=c) >= target
        assert p.honest_variance(d) == (n - d - t) * p.survivor_variance(d)


@pytest.mark.parametrize("c0", [-1, 3, True, 1.0])
def test_pre_covering_more_than_d_is_refused(c0: Any) -> None:
    with pytest.raises(ParameterError, match="precovered"):
        plan(mechanism="dgauss", target_variance=Fraction(9), contributors=6,
             max_dropouts=2, max_colluders=1, precovered=c0)  # fmt: skip
