"""Packed and robust Shamir sharing against independent oracles.

Spec: spec/04-shamir.md

Oracles, none of which calls :mod:`protocol.shamir`:

- a pure-Python Lagrange interpolation that follows the documented
  construction (the ``k`` secrets at ``0, -1, ..., -(k-1)``, the ``t``
  random values at ``-k, ..., -(k+t-1)``, randomness drawn as
  ``Xof(seed, Tag("shamir.share")).uniform_ints(p, count=m*t)``, point-major:
  polynomial ``j`` takes ``r[i*m + j]`` at randomness point ``-(k+i)``);
- ``galois.lagrange_poly`` over GF(p);
- sympy, for the Lagrange identities behind reconstruction;
- exhaustive enumeration (all randomness, all secrets) in GF(11) and GF(13)
  for privacy, and of all polynomials for robust decoding.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import galois
import numpy as np
import pytest
import sympy
from hypothesis import assume, given
from hypothesis import strategies as st

from protocol.errors import (
    FieldMismatchError,
    InconsistentShares,
    ParameterError,
    ThresholdNotMet,
)
from protocol.field import Field, Field31, Field61
from protocol.shamir import Shamir, Share, lagrange_matrix
from protocol.xof import Seed, Tag, Xof, as_seed
from tests.oracles import lagrange_eval
from tests.strategies import (
    F11,
    F13,
    ShamirCase,
    elements,
    named_fields,
    seeds,
    shamir_cases,
    small_fields,
)

GfFactory = Callable[[type[Field]], Any]
FIXED_SEED = as_seed(bytes(range(32)))


# ---------------------------------------------------------------- independent oracle


def basis_points(p: int, threshold: int, packing: int) -> list[int]:
    """Secret points 0, -1, .., -(k-1), then randomness points -k, .., -(k+t-1), mod p."""
    return [(-i) % p for i in range(packing + threshold)]


def share_randomness(case: ShamirCase, seed: bytes) -> list[int]:
    m = case.num_polynomials
    rand = Xof(as_seed(seed), Tag("shamir.share")).uniform_ints(
        case.field.MODULUS, count=m * case.threshold
    )
    return [int(v) for v in rand]


def expected_shares(
    case: ShamirCase, secret: Sequence[int], rand: Sequence[int]
) -> list[list[int]]:
    """Share values per holder (one per polynomial), by direct interpolation."""
    p, t, k = case.field.MODULUS, case.threshold, case.packing
    m = case.num_polynomials
    padded = list(secret) + [0] * (m * k - len(secret))
    nodes = basis_points(p, t, k)
    out: list[list[int]] = [[] for _ in case.points]
    for j in range(m):
        values = padded[j * k : (j + 1) * k] + [rand[i * m + j] for i in range(t)]
        for h, x in enumerate(case.points):
            out[h].append(lagrange_eval(p, nodes, values, x))
    return out


def make_shares(case: ShamirCase, ys: Sequence[Sequence[int]]) -> list[Share]:
    return [Share(x=x, y=case.field(list(y))) for x, y in zip(case.points, ys, strict=True)]


def scheme(case: ShamirCase) -> Shamir:
    return Shamir(case.field, case.threshold, case.packing)


@st.composite
def case_secret_seed(draw: st.DrawFn, /, **case_kwargs: Any) -> tuple[ShamirCase, list[int], bytes]:
    case = draw(shamir_cases(**case_kwargs))
    secret = draw(st.lists(elements(case.field), min_size=case.length, max_size=case.length))
    return case, secret, draw(seeds)


# ---------------------------------------------------------------- the construction


def test_secret_and_randomness_points_are_as_documented() -> None:
    s = Shamir(F11, threshold=2, packing=3)
    assert s.secret_points() == [0, 10, 9]
    assert s.random_points() == [8, 7]
    assert s.degree == 4
    assert s.min_shares == 5
    assert [s.num_polynomials(d) for d in (1, 2, 3, 4, 6, 7)] == [1, 1, 1, 2, 2, 3]


@given(case_secret_seed())
def test_share_matches_independent_construction(
    css: tuple[ShamirCase, list[int], bytes],
) -> None:
    case, secret, seed = css
    shares = scheme(case).share(case.field(secret), points=case.points, seed=Seed(seed))
    assert [s.x for s in shares] == list(case.points)
    assert all(type(s.y) is case.field for s in shares)
    expected = expected_shares(case, secret, share_randomness(case, seed))
    assert [s.y.to_ints() for s in shares] == expected


@given(case_secret_seed(max_length=4))
def test_share_matches_galois_lagrange_poly(
    gf: GfFactory, css: tuple[ShamirCase, list[int], bytes]
) -> None:
    case, secret, seed = css
    p, t, k = case.field.MODULUS, case.threshold, case.packing
    g = gf(case.field)
    shares = scheme(case).share(case.field(secret), points=case.points, seed=Seed(seed))
    rand = share_randomness(case, seed)
    m = case.num_polynomials
    padded = secret + [0] * (m * k - len(secret))
    nodes = g(basis_points(p, t, k))
    xs = g(list(case.points))
    for j in range(m):
        poly = galois.lagrange_poly(
            nodes, g(padded[j * k : (j + 1) * k] + [rand[i * m + j] for i in range(t)])
        )
        assert poly.degree <= t + k - 1
        want = [int(v) for v in np.asarray(poly(xs)).view(np.ndarray).ravel().tolist()]
        assert [s.y.to_ints()[j] for s in shares] == want


@given(case_secret_seed(), st.data())
def test_any_t_plus_k_shares_reconstruct(
    css: tuple[ShamirCase, list[int], bytes], data: st.DataObject
) -> None:
    case, secret, seed = css
    s = scheme(case)
    shares = s.share(case.field(secret), points=case.points, seed=Seed(seed))
    subset = data.draw(st.permutations(shares))[
        : data.draw(st.integers(case.min_shares, len(shares)))
    ]
    assert s.reconstruct(subset, length=case.length).to_ints() == secret
    padded = secret + [0] * (case.num_polynomials * case.packing - case.length)
    assert s.reconstruct(subset).to_ints() == padded
    result = s.robust_reconstruct(subset, length=case.length, max_errors=0)
    assert result.secret.to_ints() == secret
    assert result.bad_points == ()


@given(shamir_cases(), st.data())
def test_share_wise_sum_reconstructs_the_sum(case: ShamirCase, data: st.DataObject) -> None:
    """Linearity: shares of a plus shares of b are shares of a + b."""
    p = case.field.MODULUS
    a = data.draw(st.lists(elements(case.field), min_size=case.length, max_size=case.length))
    b = data.draw(st.lists(elements(case.field), min_size=case.length, max_size=case.length))
    seed_a, seed_b = data.draw(seeds), data.draw(seeds)
    s = scheme(case)
    sa = s.share(case.field(a), points=case.points, seed=Seed(seed_a))
    sb = s.share(case.field(b), points=case.points, seed=Seed(seed_b))
    summed = [Share(x=u.x, y=u.y + v.y) for u, v in zip(sa, sb, strict=True)]
    want = [(u + v) % p for u, v in zip(a, b, strict=True)]
    assert s.reconstruct(summed, length=case.length).to_ints() == want
    subset = data.draw(st.permutations(summed))[: case.min_shares]
    assert s.reconstruct(subset, length=case.length).to_ints() == want


@given(case_secret_seed(field_strategy=named_fields), seeds)
def test_same_seed_same_shares_different_seed_different_shares(
    css: tuple[ShamirCase, list[int], bytes], other: bytes
) -> None:
    case, secret, seed = css
    assume(other != seed)
    s = scheme(case)
    x = case.field(secret)
    first = s.share(x, points=case.points, seed=Seed(seed))
    again = s.share(x, points=case.points, seed=Seed(seed))
    assert [u.y.to_ints() for u in first] == [u.y.to_ints() for u in again]
    different = s.share(x, points=case.points, seed=Seed(other))
    # Each share is a uniform element per polynomial; a collision in every one
    # of them has probability below (2^-31)^len(points).
    assert [u.y.to_ints() for u in first] != [u.y.to_ints() for u in different]


# ---------------------------------------------------------------- exhaustive privacy

PRIVACY_CONFIGS = [
    (field, t, k, m)
    for field in (F11, F13)
    for t in (1, 2)
    for k in (1, 2)
    for m in (1, 2)
    if m == 1 or t + k <= 3
]
PRIVACY_POINTS = {11: (1, 2, 4, 5, 7), 13: (1, 3, 5, 7, 9)}


def _lagrange_rows(p: int, nodes: Sequence[int], targets: Sequence[int]) -> np.ndarray:
    """``L[h][i] = ℓ_i(targets[h])``, computed with :func:`lagrange_eval`."""
    rows = [
        [
            lagrange_eval(p, nodes, [int(i == j) for j in range(len(nodes))], z)
            for i in range(len(nodes))
        ]
        for z in targets
    ]
    return np.array(rows, dtype=np.int64)


def _all_tuples(p: int, count: int) -> np.ndarray:
    """Every vector of GF(p)^count, one per row."""
    return np.array(list(itertools.product(range(p), repeat=count)), dtype=np.int64).reshape(
        -1, count
    )


@pytest.mark.parametrize(
    ("field", "t", "k", "m"),
    PRIVACY_CONFIGS,
    ids=[f"p{f.MODULUS}-t{t}-k{k}-m{m}" for f, t, k, m in PRIVACY_CONFIGS],
)
def test_any_t_shares_are_uniform_for_every_secret_exhaustively(
    field: type[Field], t: int, k: int, m: int
) -> None:
    """Privacy: for every secret, any t holders' share tuples are uniform.

    Proof: proofs_notes/shamir-privacy.md. All p^(t*m) randomness vectors
    are enumerated, for every one of the p^(k*m) secrets; the map from
    randomness to the t holders' m*t share values must be a bijection, so
    their distribution is uniform, hence the same for every secret. As a
    control, t + k holders see a different, injective picture: together the
    shares determine secret and randomness.
    """
    p = field.MODULUS
    points = PRIVACY_POINTS[p]
    n = len(points)
    lag = _lagrange_rows(p, basis_points(p, t, k), points)  # n × (k + t)
    ls, lr = lag[:, :k], lag[:, k:]
    secrets = _all_tuples(p, k * m).reshape(-1, m, k)
    rands = _all_tuples(p, t * m).reshape(-1, m, t)
    # share[s, r, j, h] = ls[h] · secret_s[j] + lr[h] · rand_r[j]   (mod p)
    from_secret = np.einsum("sji,hi->sjh", secrets, ls) % p
    from_rand = np.einsum("rji,hi->rjh", rands, lr) % p
    n_rand = len(rands)
    chunk = max(1, 4_000_000 // (n_rand * m * n))
    control_counts = np.zeros(p ** (m * (t + k)), dtype=np.int64)
    for start in range(0, len(secrets), chunk):
        shares = (from_secret[start : start + chunk, None] + from_rand[None]) % p  # s, r, j, h
        rows = shares.shape[0]
        offsets = (np.arange(rows) * n_rand)[:, None]
        for holders in itertools.combinations(range(n), t):
            view = shares[:, :, :, list(holders)].reshape(rows, n_rand, m * t)
            codes = view @ (p ** np.arange(m * t))  # in [0, p^(m*t)) = [0, n_rand)
            counts = np.bincount((codes + offsets).ravel(), minlength=rows * n_rand)
            assert (counts == 1).all(), (holders, start)
        view = shares[:, :, :, : t + k].reshape(rows * n_rand, m * (t + k))
        control_counts += np.bincount(
            view @ (p ** np.arange(m * (t + k))), minlength=len(control_counts)
        )
    assert (control_counts == 1).all()


@pytest.mark.parametrize(
    ("field", "t", "k", "m"),
    PRIVACY_CONFIGS,
    ids=[f"p{f.MODULUS}-t{t}-k{k}-m{m}" for f, t, k, m in PRIVACY_CONFIGS],
)
def test_share_is_the_construction_enumerated_for_privacy(
    field: type[Field], t: int, k: int, m: int
) -> None:
    """Ties the exhaustive privacy check to the real ``share``: for seeded
    samples, share() equals the same Lagrange rows applied to (secret, randomness)."""
    p = field.MODULUS
    points = PRIVACY_POINTS[p]
    lag = _lagrange_rows(p, basis_points(p, t, k), points)
    s = Shamir(field, t, k)
    for i in range(8):
        seed = Xof(FIXED_SEED, Tag("test.privacy.sample", (p, t, k, m, i))).next_bytes(32)
        secret = [
            int(v) for v in Xof(as_seed(seed), Tag("test.secret")).uniform_ints(p, count=m * k)
        ]
        rand = Xof(as_seed(seed), Tag("shamir.share")).uniform_ints(p, count=m * t).astype(np.int64)
        # Column j: polynomial j's secrets s[j*k ..] then its randomness r[i*m + j].
        values = np.concatenate(
            [np.array(secret, dtype=np.int64).reshape(m, k).T, rand.reshape(t, m)], axis=0
        )
        want = (lag @ values) % p  # n × m
        shares = s.share(field(secret), points=points, seed=as_seed(seed))
        assert [u.y.to_ints() for u in shares] == want.tolist()


# ---------------------------------------------------------------- symbolic identities


def _lagrange_symbols(n: int) -> tuple[tuple[sympy.Symbol, ...], list[sympy.Expr]]:
    xs = sympy.symbols(f"x1:{n + 1}")
    lam = [sympy.prod([xs[m] / (xs[m] - xs[j]) for m in range(n) if m != j]) for j in range(n)]
    return xs, lam


@pytest.mark.parametrize("n", [2, 3, 4, 5])
def test_lagrange_coefficients_at_zero_sum_to_one_and_annihilate_powers(n: int) -> None:
    """λ_j = Π_{m≠j} x_m / (x_m − x_j) satisfy Σ λ_j = 1 and Σ λ_j x_j^i = 0 for 1 <= i < n.

    Proof: proofs_notes/shamir-correctness.md. Hence Σ λ_j f(x_j) = f(0) for
    every f of degree < n: reconstruction returns the constant term.
    """
    xs, lam = _lagrange_symbols(n)
    assert sympy.cancel(sympy.together(sum(lam))) == 1
    for i in range(1, n):
        assert (
            sympy.cancel(sympy.together(sum(lj * xj**i for lj, xj in zip(lam, xs, strict=True))))
            == 0
        )
    # A control: the identity fails at degree n (so the check can fail).
    assert (
        sympy.cancel(sympy.together(sum(lj * xj**n for lj, xj in zip(lam, xs, strict=True)))) != 0
    )


@pytest.mark.parametrize("n", [2, 3, 4])
def test_lagrange_basis_reproduces_every_power_below_n(n: int) -> None:
    """Σ_j ℓ_j(z) x_j^i = z^i for i < n, symbolically in z: evaluation at any target
    (the secret points 0, -1, ..., -(k-1) of packed sharing included) is exact.

    Proof: proofs_notes/shamir-correctness.md.
    """
    xs = sympy.symbols(f"x1:{n + 1}")
    z = sympy.Symbol("z")
    ell = [
        sympy.prod([(z - xs[m]) / (xs[j] - xs[m]) for m in range(n) if m != j]) for j in range(n)
    ]
    for i in range(n):
        total = sum(lj * xj**i for lj, xj in zip(ell, xs, strict=True))
        assert sympy.cancel(sympy.together(total - z**i)) == 0


@given(small_fields, st.data())
def test_lagrange_matrix_matches_independent_interpolation(
    field: type[Field], data: st.DataObject
) -> None:
    p = field.MODULUS
    nodes = data.draw(st.lists(st.integers(0, p - 1), min_size=1, max_size=6, unique=True))
    targets = data.draw(st.lists(st.integers(-p, 2 * p), max_size=6))
    # Nodes may be given as any representatives mod p.
    shifted = [x + p * data.draw(st.integers(-1, 1)) for x in nodes]
    got = lagrange_matrix(field, nodes=shifted, targets=targets)
    assert type(got) is field
    assert got.shape == (len(targets), len(nodes))
    want = _lagrange_rows(p, nodes, targets).ravel().tolist()
    assert got.to_ints() == want


def test_lagrange_matrix_rejects_repeated_nodes() -> None:
    with pytest.raises(ParameterError, match="distinct"):
        lagrange_matrix(F11, nodes=[1, 2, 12], targets=[0])


# ---------------------------------------------------------------- consistency checks


def _corrupt(y: Field, column: int, delta: int) -> Field:
    vals = y.to_ints()
    vals[column] = (vals[column] + delta) % type(y).MODULUS
    return type(y)(vals)


@given(case_secret_seed(min_extra=1, extra_shares=4), st.data())
def test_reconstruct_with_extra_shares_detects_any_single_inconsistent_share(
    css: tuple[ShamirCase, list[int], bytes], data: st.DataObject
) -> None:
    case, secret, seed = css
    s = scheme(case)
    shares = s.share(case.field(secret), points=case.points, seed=Seed(seed))
    subset = data.draw(st.permutations(shares))[
        : data.draw(st.integers(case.min_shares + 1, len(shares)))
    ]
    victim = data.draw(st.integers(0, len(subset) - 1))
    column = data.draw(st.integers(0, case.num_polynomials - 1))
    delta = data.draw(st.integers(1, case.field.MODULUS - 1))
    bad = subset[victim]
    subset[victim] = Share(x=bad.x, y=_corrupt(bad.y, column, delta))
    with pytest.raises(InconsistentShares, match=f"coordinate {column}"):
        s.reconstruct(subset, length=case.length)


def test_single_inconsistent_share_detected_exhaustively_in_gf11() -> None:
    """Every holder, every nonzero error, with t + k + 1 shares: always detected."""
    for t, k in ((1, 1), (2, 1), (1, 2)):
        s = Shamir(F11, t, k)
        points = list(range(1, t + k + 2))
        shares = s.share(F11([3, 7][:k]), points=points, seed=FIXED_SEED)
        for victim in range(len(shares)):
            for delta in range(1, 11):
                bad = list(shares)
                bad[victim] = Share(x=shares[victim].x, y=_corrupt(shares[victim].y, 0, delta))
                with pytest.raises(InconsistentShares):
                    s.reconstruct(bad)


@given(case_secret_seed(), st.data())
def test_fewer_than_t_plus_k_shares_raise_threshold_not_met(
    css: tuple[ShamirCase, list[int], bytes], data: st.DataObject
) -> None:
    case, secret, seed = css
    s = scheme(case)
    shares = s.share(case.field(secret), points=case.points, seed=Seed(seed))
    few = data.draw(st.integers(0, case.min_shares - 1))
    with pytest.raises(ThresholdNotMet, match=f"t \\+ k = {case.min_shares}.*got {few}"):
        s.reconstruct(shares[:few], length=case.length)


@given(case_secret_seed(), st.data())
def test_robust_with_too_little_redundancy_raises_threshold_not_met(
    css: tuple[ShamirCase, list[int], bytes], data: st.DataObject
) -> None:
    case, secret, seed = css
    s = scheme(case)
    shares = s.share(case.field(secret), points=case.points, seed=Seed(seed))
    n = data.draw(st.integers(case.min_shares, len(shares)))
    e = data.draw(st.integers(1, 3)) + (n - case.min_shares) // 2  # so n < t + k + 2e
    with pytest.raises(ThresholdNotMet, match=f"2 \\* max_errors = {2 * e}"):
        s.robust_reconstruct(shares[:n], length=case.length, max_errors=e)


# ---------------------------------------------------------------- robust reconstruction


def _faulty(
    data: st.DataObject, case: ShamirCase, shares: list[Share], count: int
) -> tuple[list[Share], list[int]]:
    """Corrupt ``count`` random holders, each in a random nonempty set of coordinates."""
    p = case.field.MODULUS
    m = case.num_polynomials
    victims = data.draw(st.permutations(range(len(shares))))[:count]
    out = list(shares)
    for v in victims:
        cols = data.draw(st.sets(st.integers(0, m - 1), min_size=1))
        y = out[v].y
        for c in sorted(cols):
            y = _corrupt(y, c, data.draw(st.integers(1, p - 1)))
        out[v] = Share(x=out[v].x, y=y)
    return out, sorted(shares[v].x for v in victims)


@given(case_secret_seed(extra_shares=6), st.data())
def test_robust_corrects_up_to_max_errors_faulty_holders(
    css: tuple[ShamirCase, list[int], bytes], data: st.DataObject
) -> None:
    """N >= t + k + 2e and at most e faulty: the secret, and exactly the faulty points."""
    case, secret, seed = css
    s = scheme(case)
    shares = s.share(case.field(secret), points=case.points, seed=Seed(seed))
    shares = data.draw(st.permutations(shares))
    n = len(shares)
    top = (n - case.min_shares) // 2
    e = data.draw(st.one_of(st.just(top), st.integers(0, top)))
    f = data.draw(st.one_of(st.just(e), st.integers(0, e)))
    received, faulty = _faulty(data, case, shares, f)
    result = s.robust_reconstruct(received, length=case.length, max_errors=e)
    assert result.secret.to_ints() == secret
    assert result.bad_points == tuple(faulty)


@pytest.mark.parametrize("field", [Field31, Field61, F13], ids=lambda f: f.__name__)
@pytest.mark.parametrize(("t", "k", "e"), [(1, 1, 3), (2, 1, 2), (1, 3, 2), (3, 2, 1)])
def test_robust_corrects_exactly_max_errors_faulty_holders(
    field: type[Field], t: int, k: int, e: int
) -> None:
    """Seeded cases at the limit N = t + k + 2e with e faulty holders, every
    faulty set of a sliding window, each holder wrong in a different coordinate."""
    s = Shamir(field, t, k)
    n = t + k + 2 * e
    p = field.MODULUS
    points = list(range(1, n + 1))
    secret = [
        int(v) for v in Xof(FIXED_SEED, Tag("test.robust", (t, k))).uniform_ints(p, count=2 * k + 1)
    ]
    shares = s.share(field(secret), points=points, seed=FIXED_SEED)
    for first in range(n):
        victims = [(first + i) % n for i in range(e)]
        received = list(shares)
        for i, v in enumerate(victims):
            received[v] = Share(x=shares[v].x, y=_corrupt(shares[v].y, i % 3, 1 + i))
        result = s.robust_reconstruct(received, length=len(secret), max_errors=e)
        assert result.secret.to_ints() == secret
        assert result.bad_points == tuple(sorted(points[v] for v in victims))


@given(case_secret_seed(extra_shares=7, min_extra=1), st.data())
def test_robust_never_returns_a_wrong_secret_beyond_max_errors(
    css: tuple[ShamirCase, list[int], bytes], data: st.DataObject
) -> None:
    """e < f <= N - (t + k) - e faulty holders: InconsistentShares, never a wrong secret."""
    case, secret, seed = css
    s = scheme(case)
    shares = s.share(case.field(secret), points=case.points, seed=Seed(seed))
    n = len(shares)
    e = data.draw(st.integers(0, (n - case.min_shares - 1) // 2))
    f = data.draw(st.integers(e + 1, n - case.min_shares - e))
    received, _ = _faulty(data, case, shares, f)
    with pytest.raises(InconsistentShares):
        s.robust_reconstruct(received, length=case.length, max_errors=e)


class BruteForceDecoder:
    """Every polynomial of degree < K over a tiny field, evaluated at the holders."""

    def __init__(self, s: Shamir, xs: Sequence[int]) -> None:
        p, big_k = s.field.MODULUS, s.min_shares
        coeffs = _all_tuples(p, big_k)  # p^K × K, lowest degree first

        def evaluate(points: Sequence[int]) -> np.ndarray:
            powers = np.array(
                [[pow(x, d, p) for d in range(big_k)] for x in points], dtype=np.int64
            )
            return (coeffs @ powers.T) % p

        self.at_holders = evaluate(xs)  # p^K × N
        self.at_secrets = evaluate(s.secret_points())  # p^K × k
        self.xs = list(xs)

    def decode(
        self, columns: list[list[int]], max_errors: int
    ) -> tuple[list[int], list[int]] | None:
        """(secrets, faulty points) if every column is within max_errors of a codeword
        and the faulty holders number at most max_errors; else None."""
        secrets: list[int] = []
        wrong: set[int] = set()
        for col in columns:
            dist = (self.at_holders != np.array(col)).sum(axis=1)
            near = np.flatnonzero(dist <= max_errors)
            if len(near) == 0:
                return None
            # Unique decoding radius: N >= K + 2e leaves at most one codeword.
            assert len(near) == 1
            c = near[0]
            secrets += self.at_secrets[c].tolist()
            wrong |= {self.xs[i] for i in np.flatnonzero(self.at_holders[c] != np.array(col))}
        if len(wrong) > max_errors:
            return None
        return secrets, sorted(wrong)


@st.composite
def received_words(draw: st.DrawFn) -> tuple[Shamir, list[int], list[list[int]], int]:
    """Tiny parameters, and received columns: codewords with arbitrary damage."""
    field = draw(st.sampled_from([F11, F13]))
    p = field.MODULUS
    t, k = draw(st.sampled_from([(1, 1), (1, 2), (2, 1)]))
    s = Shamir(field, t, k)
    big_k = t + k
    n = draw(st.integers(big_k, min(7, p - big_k)))
    xs = draw(st.lists(st.integers(1, p - big_k), min_size=n, max_size=n, unique=True))
    e = draw(st.integers(0, (n - big_k) // 2))
    columns = []
    for _ in range(draw(st.integers(1, 2))):
        coeffs = draw(st.lists(st.integers(0, p - 1), min_size=big_k, max_size=big_k))
        col = [sum(c * pow(x, d, p) for d, c in enumerate(coeffs)) % p for x in xs]
        for i in draw(st.sets(st.integers(0, n - 1), max_size=n)):
            col[i] = draw(st.integers(0, p - 1))
        columns.append(col)
    return s, xs, columns, e


@given(received_words())
def test_robust_reconstruct_matches_brute_force_decoding(
    word: tuple[Shamir, list[int], list[list[int]], int],
) -> None:
    """On GF(11)/GF(13): the decoder's result (or refusal) is exactly the brute-force one."""
    s, xs, columns, e = word
    field = s.field
    shares = [Share(x=x, y=field([col[i] for col in columns])) for i, x in enumerate(xs)]
    oracle = BruteForceDecoder(s, xs).decode(columns, e)
    if oracle is None:
        with pytest.raises(InconsistentShares):
            s.robust_reconstruct(shares, max_errors=e)
    else:
        result = s.robust_reconstruct(shares, max_errors=e)
        assert result.secret.to_ints() == oracle[0]
        assert list(result.bad_points) == oracle[1]


# ---------------------------------------------------------------- parameter validation


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"threshold": 0}, "got 0"),
        ({"threshold": -1}, "got -1"),
        ({"threshold": 1.0}, "got 1.0"),
        ({"threshold": True}, "got True"),
        ({"threshold": 1, "packing": 0}, "packing must be an int >= 1; got 0"),
        ({"threshold": 1, "packing": 2.0}, "got 2.0"),
        ({"threshold": 6, "packing": 6}, "= 24 must not exceed the field size 11"),
        ({"threshold": 3, "packing": 3}, "= 12 must not exceed the field size 11"),
    ],
    ids=repr,
)
def test_invalid_parameters_raise_parameter_error(kwargs: dict[str, Any], needle: str) -> None:
    with pytest.raises(ParameterError, match=needle.replace("+", r"\+")):
        Shamir(F11, **kwargs)


@pytest.mark.parametrize("field", [int, Field31([1]), "Field31"], ids=repr)
def test_field_must_be_a_field_class(field: object) -> None:
    with pytest.raises(ParameterError, match="Field subclass"):
        Shamir(field, 1)  # type: ignore[arg-type]


def test_largest_parameters_that_fit_are_accepted() -> None:
    """2(t + k) <= p: in GF(11), t + k = 5 reserves 0, -1, ..., -4 and leaves 6 holder points."""
    s = Shamir(F11, 2, 3)
    assert s.min_shares == 5
    holders = [x for x in range(1, 11) if x not in s.secret_points() + s.random_points()]
    assert holders == [1, 2, 3, 4, 5, 6]
    secret = F11([3, 7, 9])
    shares = s.share(secret, points=holders, seed=as_seed(bytes(32)))
    assert s.reconstruct(shares, length=3) == secret


# With t = 2, k = 2 in GF(11): secret points 0, 10, randomness points 9, 8.
BAD_POINTS: list[tuple[list[Any], str]] = [
    ([1, 2, 3, 3, 4], "evaluation point 3 appears twice"),
    ([0, 1, 2, 3], r"\[1, 11\); got 0"),
    ([1, 2, 3, 10], r"evaluation point 10 is a secret or randomness point \(-1 mod p\)"),
    ([1, 2, 3, 9], r"evaluation point 9 is a secret or randomness point \(-2 mod p\)"),
    ([8, 1, 2, 3], r"evaluation point 8 is a secret or randomness point \(-3 mod p\)"),
    ([1, 2, 3, 11], r"\[1, 11\); got 11"),
    ([1, 2, 3, 12], r"got 12"),
    ([1, 2, 3, -1], r"got -1"),
    ([1, 2, 3, 4.0], r"got 4.0"),
    ([1, 2, 3, np.int64(4)], r"got np.int64\(4\)"),
    ([1, 2, 3, True], r"got True"),
    ([1, 2, 3], r"need at least t \+ k = 4 evaluation points; got 3"),
]


@pytest.mark.parametrize(("points", "needle"), BAD_POINTS, ids=repr)
def test_share_rejects_bad_points_naming_them(points: list[Any], needle: str) -> None:
    with pytest.raises(ParameterError, match=needle):
        Shamir(F11, 2, 2).share(F11([1, 2]), points=points, seed=FIXED_SEED)


def test_point_minus_one_is_reserved_for_every_packing() -> None:
    for t, k in ((1, 1), (2, 1), (1, 2), (2, 2)):
        with pytest.raises(ParameterError, match="evaluation point 10 is a secret or randomness"):
            Shamir(F11, t, k).share(F11([1]), points=[1, 2, 3, 4, 10], seed=FIXED_SEED)


@pytest.mark.parametrize(
    ("points", "needle"),
    [(p, n) for p, n in BAD_POINTS if "appears twice" in n or "randomness point" in n],
    ids=repr,
)
def test_reconstruct_rejects_reserved_and_repeated_points(points: list[int], needle: str) -> None:
    """The point rules also hold for the shares handed to reconstruct."""
    s = Shamir(F11, 2, 2)
    y = s.share(F11([1, 2]), points=[1, 2, 3, 4], seed=FIXED_SEED)[0].y
    with pytest.raises(ParameterError, match=needle):
        s.reconstruct([Share(x=x, y=y) for x in points])


def test_share_rejects_secret_from_another_field() -> None:
    with pytest.raises(FieldMismatchError, match="Field61"):
        Shamir(Field31, 1).share(Field61([1]), points=[1, 2], seed=FIXED_SEED)


@pytest.mark.parametrize("secret", [F11([]), F11([[1, 2], [3, 4]])], ids=["empty", "2-D"])
def test_share_rejects_secret_that_is_not_a_nonempty_vector(secret: Field) -> None:
    with pytest.raises(ParameterError, match="non-empty 1-D"):
        Shamir(F11, 1).share(secret, points=[1, 2], seed=FIXED_SEED)


@pytest.mark.parametrize("seed", [b"", bytes(31), bytes(33), "x" * 32], ids=repr)
def test_share_rejects_bad_seeds(seed: Any) -> None:
    with pytest.raises(ParameterError, match="32 bytes"):
        Shamir(F11, 1).share(F11([1]), points=[1, 2], seed=seed)


def _shares_31() -> tuple[Shamir, list[Share]]:
    s = Shamir(Field31, 1, 2)
    return s, s.share(Field31([5, 6, 7]), points=[1, 2, 3, 4], seed=FIXED_SEED)


def test_reconstruct_rejects_shares_from_another_field() -> None:
    s, shares = _shares_31()
    alien = Share(x=3, y=Field61(shares[2].y.to_ints()))
    with pytest.raises(FieldMismatchError, match="x=3 is in Field61; expected Field31"):
        s.reconstruct([shares[0], shares[1], alien])


def test_reconstruct_rejects_shares_of_different_lengths() -> None:
    s, shares = _shares_31()
    short = Share(x=3, y=shares[2].y[:1])
    with pytest.raises(ParameterError, match="x=3 has 1 values; the first share has 2"):
        s.reconstruct([shares[0], shares[1], short])


def test_reconstruct_rejects_duplicate_shares() -> None:
    s, shares = _shares_31()
    with pytest.raises(ParameterError, match="evaluation point 1 appears twice"):
        s.reconstruct([shares[0], shares[1], shares[0]])


@pytest.mark.parametrize("length", [0, -1, 2, 5, 7])
def test_reconstruct_rejects_lengths_the_shares_cannot_carry(length: int) -> None:
    s, shares = _shares_31()  # 2 polynomials with packing 2: lengths 3 and 4 fit
    with pytest.raises(ParameterError, match=f"length {length} needs"):
        s.reconstruct(shares, length=length)
    assert s.reconstruct(shares, length=3).to_ints() == [5, 6, 7]
    assert s.reconstruct(shares, length=4).to_ints() == [5, 6, 7, 0]


@pytest.mark.parametrize("max_errors", [-1, 1.0, None], ids=repr)
def test_robust_rejects_bad_max_errors(max_errors: Any) -> None:
    s, shares = _shares_31()
    with pytest.raises(ParameterError, match=f"got {max_errors!r}"):
        s.robust_reconstruct(shares, max_errors=max_errors)


@pytest.mark.parametrize(
    ("x", "y"),
    [(0, F11([1])), (11, F11([1])), (-1, F11([1])), (1.0, F11([1])), (1, F11([[1]])), (1, [1])],
    ids=repr,
)
def test_share_objects_validate_point_and_values(x: Any, y: Any) -> None:
    with pytest.raises(ParameterError):
        Share(x=x, y=y)
