"""Exact noise samplers against exact distributions.

Spec: spec/06-noise.md

Two independent oracles:

- *path enumeration*: the real sampler code runs against a stand-in XOF
  that, instead of random bytes, explores every answer of every
  ``uniform_int`` and ``bernoulli`` call with its exact rational
  probability. Summing over the explored paths gives the sampler's output
  distribution exactly, up to the (also exact) probability of the paths cut
  off. This checks the code, not a re-derivation of it.
- *exact pmfs* computed with mpmath at 50 digits, against seeded samples by
  a chi-square test whose threshold (p < 1e-6) a correct sampler passes on
  the fixed seed: the seeds are fixed, so the outcome never changes between
  runs, and a wrong distribution fails with overwhelming probability.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import mpmath
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.errors import ParameterError
from protocol.noise import (
    STATISTICAL_DISTANCE_BOUND,
    WEIGHT_BITS,
    CdtTable,
    _exp_neg_fixed,
    bernoulli_exp,
    discrete_gaussian,
    discrete_gaussian_table,
    discrete_laplace,
    poisson,
    poisson_one,
    poisson_table,
    sample,
    sample_table,
    skellam,
)
from protocol.xof import Seed, Tag, Xof, as_seed
from tests.strategies import seeds

mpmath.mp.dps = 50
SEED = as_seed(bytes(range(32)))


def _xof(*params: int) -> Xof:
    return Xof(SEED, Tag("test.noise", params))


# ---------------------------------------------------------------------- path enumeration


class _Branch(Exception):
    def __init__(self, options: list[tuple[Any, Fraction]]) -> None:
        self.options = options


class _PathXof:
    """Answers draws from a fixed path; asks to branch when the path runs out."""

    def __init__(self, path: list[Any]) -> None:
        self._path = path
        self._i = 0

    def _choose(self, options: list[tuple[Any, Fraction]]) -> Any:
        if self._i < len(self._path):
            self._i += 1
            return self._path[self._i - 1]
        raise _Branch(options)

    def uniform_int(self, bound: int) -> int:
        value: int = self._choose([(v, Fraction(1, bound)) for v in range(bound)])
        return value

    def bernoulli(self, numerator: int, denominator: int) -> bool:
        p = Fraction(numerator, denominator)
        value: bool = self._choose([(True, p), (False, 1 - p)])
        return value


def exact_distribution(
    sampler: Callable[[Any], Any], *, cutoff: Fraction
) -> tuple[dict[Any, Fraction], Fraction]:
    """The sampler's output distribution over all paths more likely than ``cutoff``,
    and the total probability of the paths cut off."""
    dist: dict[Any, Fraction] = {}
    cut = Fraction(0)
    stack: list[tuple[list[Any], Fraction]] = [([], Fraction(1))]
    while stack:
        path, p = stack.pop()
        try:
            value = sampler(_PathXof(path))
        except _Branch as branch:
            for choice, q in branch.options:
                if q == 0:
                    continue
                if p * q < cutoff:
                    cut += p * q
                else:
                    stack.append(([*path, choice], p * q))
            continue
        dist[value] = dist.get(value, Fraction(0)) + p
    return dist, cut


def _mp(x: Fraction) -> Any:
    return mpmath.mpf(x.numerator) / x.denominator


@pytest.mark.parametrize(
    "gamma",
    [Fraction(0), Fraction(1, 3), Fraction(1, 2), Fraction(1), Fraction(3, 2), Fraction(7, 3)],
    ids=str,
)
def test_bernoulli_exp_is_exact_by_path_enumeration(gamma: Fraction) -> None:
    """proofs_notes/bernoulli-exp.md: P[True] = exp(−γ), to within the cut-off mass."""
    dist, cut = exact_distribution(lambda x: bernoulli_exp(x, gamma), cutoff=Fraction(1, 10**15))
    assert cut < Fraction(1, 10**9)
    assert set(dist) <= {True, False}
    assert sum(dist.values()) + cut == 1
    error = abs(_mp(dist.get(True, Fraction(0))) - mpmath.exp(-_mp(gamma)))
    assert error <= _mp(cut) + mpmath.mpf(10) ** -40


def test_bernoulli_exp_path_enumeration_detects_a_wrong_probability() -> None:
    """Control: the same check rejects Bernoulli(exp(−γ)) run with the wrong γ."""
    dist, cut = exact_distribution(
        lambda x: bernoulli_exp(x, Fraction(1, 2)), cutoff=Fraction(1, 10**15)
    )
    error = abs(_mp(dist[True]) - mpmath.exp(-_mp(Fraction(1, 3))))
    assert error > _mp(cut) + mpmath.mpf(10) ** -40


def test_poisson_one_is_exact_by_path_enumeration() -> None:
    """proofs_notes/poisson-exact.md: P[k] = e^−1 / k! for every k, within the cut-off mass."""
    dist, cut = exact_distribution(poisson_one, cutoff=Fraction(1, 10**10))
    assert cut < Fraction(1, 10**5)
    assert sum(dist.values()) + cut == 1
    for k in range(0, 12):
        want = mpmath.exp(-1) / mpmath.factorial(k)
        assert abs(_mp(dist.get(k, Fraction(0))) - want) <= _mp(cut), k


# ---------------------------------------------------------------------- exact pmfs


def _chi_square_p_value(counts: Counter[int], pmf: Callable[[int], Any], n: int) -> Any:
    """p-value of Pearson's chi-square test, bins with expectation >= 5, tails lumped."""
    support = sorted(counts)
    lo, hi = support[0], support[-1]
    # Extend to cover every value with expected count >= 5.
    while n * pmf(lo - 1) >= 5:
        lo -= 1
    while n * pmf(hi + 1) >= 5:
        hi += 1
    bins: list[tuple[Any, int]] = []
    inner_mass = mpmath.mpf(0)
    for v in range(lo, hi + 1):
        p = pmf(v)
        inner_mass += p
        bins.append((n * p, counts.get(v, 0)))
    tail_observed = n - sum(obs for _, obs in bins)
    bins.append((n * (1 - inner_mass), tail_observed))
    merged: list[tuple[Any, int]] = []
    acc_e, acc_o = mpmath.mpf(0), 0
    for e, o in bins:
        acc_e += e
        acc_o += o
        if acc_e >= 5:
            merged.append((acc_e, acc_o))
            acc_e, acc_o = mpmath.mpf(0), 0
    if acc_e > 0 and merged:
        e, o = merged.pop()
        merged.append((e + acc_e, o + acc_o))
    stat = sum((o - e) ** 2 / e for e, o in merged)
    dof = len(merged) - 1
    return mpmath.gammainc(mpmath.mpf(dof) / 2, stat / 2, mpmath.inf, regularized=True)


def _dlap_pmf(t: int) -> Callable[[int], Any]:
    r = mpmath.exp(-mpmath.mpf(1) / t)
    return lambda x: (1 - r) / (1 + r) * r ** abs(x)


def _dgauss_pmf(sigma2: Fraction) -> Callable[[int], Any]:
    s2 = _mp(sigma2)
    bound = int(mpmath.ceil(40 * mpmath.sqrt(s2))) + 10
    norm = mpmath.fsum(
        mpmath.exp(-(mpmath.mpf(y) ** 2) / (2 * s2)) for y in range(-bound, bound + 1)
    )
    return lambda x: mpmath.exp(-(mpmath.mpf(x) ** 2) / (2 * s2)) / norm


def _poisson_pmf(mean: Fraction) -> Callable[[int], Any]:
    mu = _mp(mean)
    return lambda k: mpmath.exp(-mu) * mu**k / mpmath.factorial(k) if k >= 0 else mpmath.mpf(0)


def _skellam_pmf(variance: Fraction) -> Callable[[int], Any]:
    lam = _mp(variance)  # Poisson(λ/2) − Poisson(λ/2): P[k] = e^−λ I_|k|(λ)
    return lambda k: mpmath.exp(-lam) * mpmath.besseli(abs(k), lam)


def _draw(fn: Callable[[Xof], int], n: int, *tag: int) -> Counter[int]:
    xof = _xof(*tag)
    return Counter(fn(xof) for _ in range(n))


@pytest.mark.parametrize("t", [1, 3, 10])
def test_discrete_laplace_matches_exact_pmf(t: int) -> None:
    """proofs_notes/discrete-gaussian-exact.md (the discrete Laplace step)."""
    n = 6000
    counts = _draw(lambda x: discrete_laplace(x, t), n, 1, t)
    assert _chi_square_p_value(counts, _dlap_pmf(t), n) > 1e-6


@pytest.mark.parametrize("sigma2", [Fraction(1, 4), Fraction(2), Fraction(25, 2), Fraction(400)])
def test_discrete_gaussian_matches_exact_pmf(sigma2: Fraction) -> None:
    """proofs_notes/discrete-gaussian-exact.md: P[x] ∝ exp(−x²/(2σ²))."""
    n = 6000
    counts = _draw(lambda x: discrete_gaussian(x, sigma2), n, 2, sigma2.numerator)
    assert _chi_square_p_value(counts, _dgauss_pmf(sigma2), n) > 1e-6


def test_chi_square_check_rejects_a_wrong_distribution() -> None:
    """Control: discrete Gaussian samples with σ² = 2 fail against the σ² = 3 pmf."""
    n = 6000
    counts = _draw(lambda x: discrete_gaussian(x, Fraction(2)), n, 2, 2)
    assert _chi_square_p_value(counts, _dgauss_pmf(Fraction(3)), n) < 1e-6


@pytest.mark.parametrize("mean", [Fraction(0), Fraction(1, 3), Fraction(1), Fraction(15, 2)])
def test_poisson_matches_exact_pmf(mean: Fraction) -> None:
    """proofs_notes/poisson-exact.md: additivity and thinning give Poisson(μ)."""
    n = 5000
    counts = _draw(lambda x: poisson(x, mean), n, 3, mean.numerator, mean.denominator)
    if mean == 0:
        assert counts == Counter({0: n})
        return
    assert _chi_square_p_value(counts, _poisson_pmf(mean), n) > 1e-6


@pytest.mark.parametrize("variance", [Fraction(1, 2), Fraction(3), Fraction(10)])
def test_skellam_matches_exact_pmf(variance: Fraction) -> None:
    """proofs_notes/skellam-closure.md: Poisson(λ/2) − Poisson(λ/2) has P[k] = e^−λ I_|k|(λ)."""
    n = 5000
    counts = _draw(lambda x: skellam(x, variance), n, 4, variance.numerator)
    assert _chi_square_p_value(counts, _skellam_pmf(variance), n) > 1e-6


def test_skellam_closure_sum_of_shares_matches_total() -> None:
    """proofs_notes/skellam-closure.md: 4 shares Sk(λ/4) sum to Sk(λ) (λ = 6)."""
    n, nodes, total = 4000, 4, Fraction(6)
    xof = _xof(5)
    counts = Counter(sum(skellam(xof, total / nodes) for _ in range(nodes)) for _ in range(n))
    assert _chi_square_p_value(counts, _skellam_pmf(total), n) > 1e-6


@pytest.mark.parametrize(
    ("mechanism", "variance"), [("dgauss", Fraction(9)), ("skellam", Fraction(9))]
)
def test_sample_mean_and_variance(mechanism: str, variance: Fraction) -> None:
    """Mean 0, and variance λ (Skellam) or the discrete Gaussian's exact variance (< σ²),
    each within 6 standard errors on a fixed seed."""
    n = 8000
    xs = sample(_xof(6, len(mechanism)), mechanism, variance, n)
    mean = mpmath.mpf(sum(xs)) / n
    var = mpmath.mpf(sum((x - mean) ** 2 for x in xs)) / (n - 1)
    if mechanism == "skellam":
        true_var = _mp(variance)
        fourth = 3 * true_var**2 + true_var  # fourth central moment of Sk(λ)
    else:
        pmf = _dgauss_pmf(variance)
        true_var = mpmath.fsum(pmf(k) * k**2 for k in range(-60, 61))
        fourth = mpmath.fsum(pmf(k) * k**4 for k in range(-60, 61))
        assert true_var <= _mp(variance)
    assert abs(mean) <= 6 * mpmath.sqrt(true_var / n)
    assert abs(var - true_var) <= 6 * mpmath.sqrt((fourth - true_var**2) / n)


def test_samplers_are_reproducible_from_seed_and_tag() -> None:
    a = sample(_xof(7), "skellam", Fraction(5), 50)
    b = sample(_xof(7), "skellam", Fraction(5), 50)
    c = sample(_xof(8), "skellam", Fraction(5), 50)
    assert a == b and a != c


@pytest.mark.parametrize(
    ("call", "needle"),
    [
        (lambda x: bernoulli_exp(x, Fraction(-1, 2)), "gamma must be >= 0; got -1/2"),
        (lambda x: bernoulli_exp(x, 0.5), "gamma must be a Fraction or int; got 0.5"),
        (lambda x: discrete_laplace(x, 0), "scale must be an int >= 1; got 0"),
        (lambda x: discrete_gaussian(x, Fraction(0)), "must be > 0; got 0"),
        (lambda x: poisson(x, Fraction(-1)), "Poisson mean must be >= 0; got -1"),
        (lambda x: skellam(x, Fraction(-3)), "Skellam variance must be >= 0; got -3"),
        (lambda x: sample(x, "gauss", Fraction(1), 1), "mechanism must be one of"),
        (
            lambda x: sample(x, "dgauss", Fraction(-1), 1),
            "variance must be > 0 and <= 2^48; got -1",
        ),
        (
            lambda x: sample_table(x, "skellam", Fraction(2**49), 1),
            "<= 2^48; got 562949953421312",
        ),
        (lambda x: sample(x, "dgauss", Fraction(1), -1), "count must be an int >= 0; got -1"),
    ],
)
def test_bad_parameters_raise_parameter_error(call: Callable[[Xof], object], needle: str) -> None:
    with pytest.raises(ParameterError, match=re.escape(needle)):
        call(_xof(9))


# ---------------------------------------------------------------------- table sampler


def _table_probabilities(table: CdtTable) -> list[Any]:
    bounds = [0, *table.thresholds, 1 << 128]
    return [mpmath.mpf(bounds[j + 1] - bounds[j]) / 2**128 for j in range(len(bounds) - 1)]


def _statistical_distance(table: CdtTable, pmf: Callable[[int], Any], total_mass: Any) -> Any:
    """½ Σ |p_table − p| over all integers: the table's support plus the mass outside it."""
    probs = _table_probabilities(table)
    inside = [pmf(table.low + j) for j in range(len(probs))]
    outside = total_mass - mpmath.fsum(inside)
    return (mpmath.fsum(abs(a - b) for a, b in zip(probs, inside, strict=True)) + outside) / 2


@pytest.mark.parametrize(
    "sigma2",
    [
        Fraction(1, 4),
        Fraction(1, 2),
        Fraction(1),
        Fraction(9),
        Fraction(25, 2),
        Fraction(400),
        Fraction(10**4),
    ],
    ids=str,
)
def test_discrete_gaussian_table_is_within_the_proven_distance(sigma2: Fraction) -> None:
    """proofs_notes/cdt-statistical-distance.md: SD(table, exact) <= 2^-64."""
    with mpmath.workdps(60):
        pmf = _dgauss_pmf(sigma2)
        sd = _statistical_distance(discrete_gaussian_table(sigma2), pmf, mpmath.mpf(1))
        assert sd <= _mp(STATISTICAL_DISTANCE_BOUND)


@pytest.mark.parametrize(
    "mean",
    [Fraction(0), Fraction(1, 3), Fraction(1), Fraction(15, 2), Fraction(100), Fraction(5000)],
    ids=str,
)
def test_poisson_table_is_within_the_proven_distance(mean: Fraction) -> None:
    """proofs_notes/cdt-statistical-distance.md: SD(table, exact) <= 2^-64."""
    with mpmath.workdps(60):
        sd = _statistical_distance(poisson_table(mean), _poisson_pmf(mean), mpmath.mpf(1))
        assert sd <= _mp(STATISTICAL_DISTANCE_BOUND)


def test_distance_check_rejects_a_table_for_another_parameter() -> None:
    """Control: the σ² = 9 table is far from the σ² = 10 distribution."""
    with mpmath.workdps(60):
        sd = _statistical_distance(
            discrete_gaussian_table(Fraction(9)), _dgauss_pmf(Fraction(10)), mpmath.mpf(1)
        )
        assert sd > _mp(STATISTICAL_DISTANCE_BOUND)


def test_fixed_point_exponential_is_the_exact_floor() -> None:
    for y in (Fraction(1, 2), Fraction(1, 18), Fraction(2), Fraction(7, 3), Fraction(1, 10**6)):
        with mpmath.workdps(120):
            want = int(mpmath.floor(mpmath.exp(-_mp(y)) * mpmath.mpf(2) ** WEIGHT_BITS))
        assert _exp_neg_fixed(y) == want


# The stream layout of spec/06-noise.md#table-sampler, followed literally
# with Python ints: these helpers share no code with sample_table.


def _spec_tie_bits(tie_seed: Seed, j: int) -> int:
    """r_j: the little-endian integer of the first 12 bytes of Xof(ts, Tag("noise.tie", (j,)))."""
    return int.from_bytes(Xof(tie_seed, Tag("noise.tie", (j,))).next_bytes(12), "little")


def _spec_sample_table(xof: Xof, mechanism: str, variance: Fraction, count: int) -> list[int]:
    """Steps 1–3 of the spec: the tie seed, the words, every r_j, and ``table.draw(U_j)``."""
    tie_seed = as_seed(xof.next_bytes(32))
    if mechanism == "dgauss":
        table, draws = discrete_gaussian_table(variance), 1
    else:
        table, draws = poisson_table(variance / 2), 2
    words = [int.from_bytes(xof.next_bytes(4), "little") for _ in range(draws * count)]
    values = [table.draw(w * 2**96 + _spec_tie_bits(tie_seed, j)) for j, w in enumerate(words)]
    if mechanism == "dgauss":
        return values
    return [values[2 * i] - values[2 * i + 1] for i in range(count)]


def _spec_draws(table: CdtTable, words: list[int], tie_seed: Seed) -> list[int]:
    return [table.draw(w * 2**96 + _spec_tie_bits(tie_seed, j)) for j, w in enumerate(words)]


def _draw_words(table: CdtTable, words: list[int], tie_seed: Seed) -> list[int]:
    got: list[int] = table.draw_words(np.array(words, dtype=np.uint32), tie_seed=tie_seed).tolist()
    return got


# Small and wide tables: the widest hold thousands of thresholds, and thousands
# share their top 32 bits (0 and 2^32 − 1, in the tails), as do some of the
# smaller ones'. Some σ² = 1/4 thresholds equal 2^128, which no draw reaches.
_TABLES: dict[str, Callable[[], CdtTable]] = {
    "dgauss 1/4": lambda: discrete_gaussian_table(Fraction(1, 4)),
    "dgauss 25/2": lambda: discrete_gaussian_table(Fraction(25, 2)),
    "dgauss 10^6": lambda: discrete_gaussian_table(Fraction(10**6)),
    "poisson 1/3": lambda: poisson_table(Fraction(1, 3)),
    "poisson 5*10^5": lambda: poisson_table(Fraction(5 * 10**5)),
}

_variances = st.one_of(
    st.fractions(min_value=Fraction(1, 4), max_value=10**4, max_denominator=12),
    st.sampled_from([Fraction(10**6), Fraction(2 * 10**6 + 1, 2)]),
)


@given(
    seed=seeds,
    mechanism=st.sampled_from(["dgauss", "skellam"]),
    variance=_variances,
    count=st.integers(0, 40),
)
def test_table_sampler_equals_the_literal_spec_reference(
    seed: bytes, mechanism: str, variance: Fraction, count: int
) -> None:
    """spec/06-noise.md#table-sampler: same samples, and the same bytes of the stream read."""
    a, b = Xof(as_seed(seed), Tag("test.noise")), Xof(as_seed(seed), Tag("test.noise"))
    got = sample_table(a, mechanism, variance, count).tolist()
    assert got == _spec_sample_table(b, mechanism, variance, count)
    assert a.next_bytes(16) == b.next_bytes(16)


def _words_near(tops: list[int]) -> st.SearchStrategy[int]:
    near = st.tuples(st.sampled_from(tops), st.sampled_from([-1, 0, 0, 1]))
    return near.map(lambda td: td[0] + td[1]).filter(lambda w: 0 <= w < 1 << 32)


@pytest.mark.parametrize("name", sorted(_TABLES))
@given(tie_seed=seeds, data=st.data())
def test_draw_words_equals_the_scalar_draw_including_ties(
    name: str, tie_seed: bytes, data: st.DataObject
) -> None:
    """Words at, just below and just above the top 32 bits of thresholds, bucket
    edges and random words: each maps to ``table.draw(w·2^96 + r_j)``."""
    table = _TABLES[name]()
    tops = sorted({c >> 96 for c in table.thresholds if c < 1 << 128})
    edges = st.integers(0, (1 << 16) - 1).map(lambda b: b << 16)
    word = st.one_of(st.integers(0, (1 << 32) - 1), _words_near(tops), edges)
    words = data.draw(st.lists(word, max_size=80))
    seed = as_seed(tie_seed)
    assert _draw_words(table, words, seed) == _spec_draws(table, words, seed)


@pytest.mark.parametrize("spread", [0, 4000], ids=["narrow", "wide"])
def test_draw_words_resolves_ties_at_the_exact_low_bits(spread: int) -> None:
    """Crafted ties: many thresholds share top 32 bits T, some placed at r_j − 1,
    r_j and r_j + 1 for the very r_j of the word that meets them, and one bucket
    holds a single threshold. ``spread`` adds thresholds in 4000 other buckets
    (a wide table). The vectorized draw equals the scalar draw, and the low
    bits matter: ignoring them would change some of the values."""
    tie_seed = as_seed(bytes(range(100, 132)))
    t, s = 0x8000_0123, 0x9000_0456  # T's bucket holds many thresholds, S's only one
    words = [t] * 10 + [s] * 6 + [t - 1, t + 1, s - 1, s + 1, t & ~0xFFFF, s | 0xFFFF]
    r = [_spec_tie_bits(tie_seed, j) for j in range(len(words))]
    thresholds = {t << 96, (t << 96) | ((1 << 96) - 1), (s << 96) + r[10]}
    for j in range(0, 10, 2):
        thresholds |= {(t << 96) + r[j] + d for d in (-1, 0, 1)}
    thresholds |= {(k << 112) | 0xABC for k in range(1, spread + 1)}
    sorted_thresholds = sorted(thresholds)
    table = CdtTable(low=-7, thresholds=(*sorted_thresholds, sorted_thresholds[-1], 1 << 128))
    assert sum(c >> 96 == t for c in table.thresholds) >= 17
    got = _draw_words(table, words, tie_seed)
    assert got == _spec_draws(table, words, tie_seed)
    assert got != [table.draw(w << 96) for w in words]
    assert got != [table.draw((w << 96) | ((1 << 96) - 1)) for w in words]


def test_real_tables_have_many_thresholds_sharing_top_bits_and_draw_them_exactly() -> None:
    """In the tails of real tables thousands of thresholds share their top 32 bits
    (0 or 2^32 − 1): a word equal to one of those is a tie resolved by r_j. Every
    distinct top, and the shared ones repeatedly, against the scalar draw."""
    tie_seed = as_seed(bytes(range(7, 39)))
    for make in (_TABLES["dgauss 10^6"], _TABLES["poisson 5*10^5"], _TABLES["dgauss 25/2"]):
        table = make()
        tops = Counter(c >> 96 for c in table.thresholds)
        assert tops[0] >= 20 and tops[(1 << 32) - 1] >= 20
        words = [0, (1 << 32) - 1] * 50 + sorted(w for w in tops if w < 1 << 32)
        assert _draw_words(table, words, tie_seed) == _spec_draws(table, words, tie_seed)


@pytest.mark.parametrize(
    "words",
    [
        np.zeros(3, dtype=np.uint64),
        np.zeros(3, dtype=np.int32),
        np.zeros((2, 2), dtype=np.uint32),
    ],
    ids=["uint64", "int32", "2-D"],
)
def test_draw_words_rejects_words_that_are_not_a_uint32_vector(words: Any) -> None:
    with pytest.raises(ParameterError, match="words must be a 1-D array of uint32; got"):
        discrete_gaussian_table(Fraction(2)).draw_words(words, tie_seed=as_seed(bytes(32)))


@pytest.mark.parametrize(("mechanism", "per_sample"), [("dgauss", 4), ("skellam", 8)])
def test_table_sampler_reads_a_fixed_number_of_bytes_per_sample(
    mechanism: str, per_sample: int
) -> None:
    """32 bytes of tie seed, then 4 bytes per draw; the tie streams are separate."""
    a, b = _xof(11), _xof(11)
    got = sample_table(a, mechanism, Fraction(7), 40)
    b.next_bytes(32 + per_sample * 40)
    assert a.next_bytes(32) == b.next_bytes(32)
    assert sample_table(_xof(11), mechanism, Fraction(7), 40).tolist() == got.tolist()
    # Sample i depends only on the tie seed and its own words: the first 10 of 40
    # are the 10 of 10.
    assert sample_table(_xof(11), mechanism, Fraction(7), 10).tolist() == got[:10].tolist()


def test_table_sampler_with_count_zero_reads_only_the_tie_seed() -> None:
    a, b = _xof(13), _xof(13)
    assert sample_table(a, "skellam", Fraction(7), 0).tolist() == []
    b.next_bytes(32)
    assert a.next_bytes(16) == b.next_bytes(16)


def test_table_samples_follow_the_skellam_pmf() -> None:
    """End to end through the bytes: 20,000 table samples of Sk(10) pass the chi-square test."""
    n = 20000
    xs = sample_table(_xof(12), "skellam", Fraction(10), n)
    counts = Counter(int(v) for v in xs)
    assert _chi_square_p_value(counts, _skellam_pmf(Fraction(10)), n) > 1e-6


def test_table_tail_bounds_hold_across_parameters() -> None:
    """proofs_notes/cdt-statistical-distance.md (E3)–(E5): the mass outside each
    table's support is at most 2^-70 across the accepted parameter range."""
    limit = mpmath.mpf(2) ** -70
    with mpmath.workdps(40):
        for e in range(-8, 193):  # σ² = 2^(e/4), from 2^-2 to 2^48
            s2 = mpmath.mpf(2) ** (mpmath.mpf(e) / 4)
            sigma = mpmath.sqrt(s2)
            k = 10 * int(mpmath.ceil(sigma)) + 2
            r = mpmath.exp(-(2 * k + 3) / (2 * s2))
            z = max(mpmath.mpf(1), mpmath.sqrt(2 * mpmath.pi) * sigma)
            tail = 2 * mpmath.exp(-((k + 1) ** 2) / (2 * s2)) / (1 - r) / z
            assert tail <= limit, (e, tail)
        for e in range(-40, 189):  # μ = 2^(e/4), from 2^-10 to 2^47
            mu = mpmath.mpf(2) ** (mpmath.mpf(e) / 4)
            m = int(mpmath.floor(mu))
            k = 12 * int(mpmath.ceil(mpmath.sqrt(mu))) + 30
            top = m + k + 1
            upper = mpmath.exp(-mu) * (mpmath.e * mu / top) ** top
            assert upper <= limit, (e, upper)
            if m - k > 0:
                t = mu - (m - k - 1)
                assert mpmath.exp(-(t**2) / (2 * mu)) <= limit, (e, t)
