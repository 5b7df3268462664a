"""Sympy checks of the algebraic steps in proofs_notes/.

Each test names the note and the step it checks. The identities are
checked symbolically, and the bounds are checked against the limb plans
the code actually chooses, so a change to the code that breaks a proof
fails here.
"""

from __future__ import annotations

import sympy

from protocol.field import _M31, _M61, _limb_plan

M61 = sympy.Integer(_M61)
M31 = sympy.Integer(_M31)


def _divisible_by(expr: sympy.Expr, modulus: sympy.Integer, symbols: list[sympy.Symbol]) -> bool:
    poly = sympy.Poly(sympy.expand(expr), *symbols)
    return all(sympy.Integer(c) % modulus == 0 for c in poly.coeffs())


def test_mersenne61_split_identity() -> None:
    """proofs_notes/mersenne61-multiply.md, step 2: the folded sum is ≡ a*b mod 2^61 - 1."""
    a0, a1, b0, b1, m0, m1, l0, l1 = sympy.symbols("a0 a1 b0 b1 m0 m1 l0 l1", integer=True)
    hi = a1 * b1
    # mid = a1*b0 + a0*b1 = m1*2^29 + m0 and lo = a0*b0 = l1*2^61 + l0, so
    # a*b = hi*2^64 + mid*2^32 + lo equals the expression below exactly.
    product = hi * 2**64 + (m1 * 2**29 + m0) * 2**32 + (l1 * 2**61 + l0)
    folded = 8 * hi + m0 * 2**32 + m1 + l0 + l1
    assert _divisible_by(product - folded, M61, [a0, a1, b0, b1, m0, m1, l0, l1])
    # And the split itself: (a1*2^32 + a0)(b1*2^32 + b0) = hi*2^64 + mid*2^32 + lo.
    lhs = (a1 * 2**32 + a0) * (b1 * 2**32 + b0)
    rhs = hi * 2**64 + (a1 * b0 + a0 * b1) * 2**32 + a0 * b0
    assert sympy.expand(lhs - rhs) == 0


def test_mersenne61_bounds_keep_every_intermediate_below_2_64() -> None:
    """proofs_notes/mersenne61-multiply.md, step 3: no uint64 overflows."""
    a0_max, a1_max = 2**32 - 1, (_M61 - 1) >> 32  # elements are < 2^61 - 1
    lo = a0_max * a0_max
    mid = 2 * a1_max * a0_max
    hi = a1_max * a1_max
    assert lo < 2**64 and mid < 2**62 and hi < 2**58
    m0, m1 = 2**29 - 1, mid >> 29
    t = 8 * hi + (m0 << 32) + m1 + _M61 + (lo >> 61)
    assert t < 2**63
    # One fold then one conditional subtraction reduce t completely.
    assert (_M61) + (t >> 61) < 2 * _M61


def test_mersenne31_fold_bounds() -> None:
    """proofs_notes/limb-split-matmul-exact.md: one fold suffices below 2^61, two below 2^64."""
    fold_max = lambda x: _M31 + (x >> 31)  # noqa: E731  (max of (x & M) + (x >> 31))
    assert fold_max(2**61 - 1) < 2 * _M31
    assert fold_max(2**62) >= 2 * _M31  # why the bound is 2^61, not 2^62
    assert fold_max(fold_max(2**64 - 1)) < 2 * _M31
    assert sympy.Integer(2) ** 31 % M31 == 1


def test_limb_plans_keep_partial_sums_below_2_53() -> None:
    """proofs_notes/limb-split-matmul-exact.md, step 1: n * (2^a - 1)(2^b - 1) < 2^53."""
    for bits in (3, 4, 8, 13, 31, 61):
        for inner in (1, 2, 3, 10, 21, 100, 1000, 4096, 2**20):
            a, b = _limb_plan(bits, inner)
            assert inner * (2**a - 1) * (2**b - 1) < 2**53, (bits, inner, a, b)
            assert 1 <= a <= bits and 1 <= b <= bits


def test_limb_recombination_identity() -> None:
    """proofs_notes/limb-split-matmul-exact.md, step 2: sum_ij A_i B_j 2^(ai+bj) = A B."""
    a_bits, b_bits = sympy.symbols("a b", positive=True, integer=True)
    ai = sympy.symbols("A0:3", integer=True)
    bj = sympy.symbols("B0:3", integer=True)
    whole_a = sum(ai[i] * 2 ** (a_bits * i) for i in range(3))
    whole_b = sum(bj[j] * 2 ** (b_bits * j) for j in range(3))
    limbs = sum(ai[i] * bj[j] * 2 ** (a_bits * i + b_bits * j) for i in range(3) for j in range(3))
    assert sympy.expand(whole_a * whole_b - limbs) == 0


def test_values_at_points_map_is_bijective() -> None:
    """proofs_notes/shamir-privacy.md: the matrix [(-i)^j], i, j = 1..t, is invertible mod p."""
    for t in range(1, 7):
        mat = sympy.Matrix(t, t, lambda i, j: sympy.Integer(-(i + 1)) ** (j + 1))
        xs = [-(i + 1) for i in range(t)]
        vandermonde = sympy.prod(xs[j] - xs[i] for i in range(t) for j in range(i + 1, t))
        det = mat.det()
        assert det == sympy.prod(xs) * vandermonde
        for p in (11, 13, _M31):
            if t < p:
                assert det % p != 0


def test_reed_solomon_minimum_distance_is_n_minus_k_plus_1() -> None:
    """proofs_notes/robust-decoding.md, step 1: evaluations of polynomials of degree < K
    at N distinct points form a code of minimum distance exactly N - K + 1 (by brute force)."""
    import itertools  # noqa: PLC0415

    for p, n, k in ((5, 4, 1), (5, 4, 2), (7, 5, 2), (7, 6, 3), (11, 5, 3)):
        xs = list(range(1, n + 1))
        words = [
            tuple(sum(c * x**i for i, c in enumerate(coeffs)) % p for x in xs)
            for coeffs in itertools.product(range(p), repeat=k)
        ]
        zero = tuple([0] * n)
        # The code is linear, so its minimum distance is its minimum nonzero weight.
        weight = min(sum(v != 0 for v in w) for w in words if w != zero)
        assert weight == n - k + 1, (p, n, k, weight)
