"""The labelled steps of proofs_notes/*.md, checked one group at a time.

Each test's docstring names the note and the labels it checks, and each
note's "Checked by" section names the test. Identities are checked
symbolically with sympy wherever the note says so; bounds are checked
against the limb plans and helpers the code actually uses, and numeric
claims over a range are checked exhaustively over that range. Every check
compares two independently computed sides, so a wrong step fails.
Randomness comes from a fixed-seed XOF.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import pytest
import sympy

from protocol.errors import ParameterError
from protocol.field import (
    _M31,
    _M61,
    Field31,
    Field61,
    _combine_m31,
    _combine_m61,
    _limb_plan,
    _split,
    field_for_modulus,
)
from protocol.noise_plan import plan
from protocol.params import (
    DECISION_WINDOWS,
    REPORT_WINDOWS,
    TOP_UP_REPORT_WINDOWS,
    TOP_UP_WINDOWS,
    RoundParams,
    round_windows,
)
from protocol.shamir import (
    _decode_column,
    _interpolate,
    _poly_divmod,
    _poly_mul,
    _poly_sub,
    lagrange_matrix,
)
from protocol.xof import Tag, Xof, as_seed

SEED = as_seed(bytes(32))


def _xof(purpose: str, *params: int) -> Xof:
    return Xof(SEED, Tag(f"test.proof_notes.{purpose}", params))


def _is_zero(expr: sympy.Expr) -> bool:
    """Whether a rational function is identically zero (after cancelling)."""
    return sympy.cancel(sympy.together(expr)) == 0


# ====================================================================== mersenne61-multiply.md

A0, A1, B0, B1, MID0, MID1, LO0, LO1 = sympy.symbols("a0 a1 b0 b1 m0 m1 l0 l1", integer=True)


def test_mersenne61_split_product_is_exact() -> None:
    """proofs_notes/mersenne61-multiply.md (E1): a·b = hi·2^64 + mid·2^32 + lo,
    as a polynomial identity in a0, a1, b0, b1."""
    a = A1 * 2**32 + A0
    b = B1 * 2**32 + B0
    hi, mid, lo = A1 * B1, A1 * B0 + A0 * B1, A0 * B0
    assert sympy.expand(a * b - (hi * 2**64 + mid * 2**32 + lo)) == 0


def test_mersenne61_fold_differs_from_the_product_by_an_exact_multiple_of_m() -> None:
    """proofs_notes/mersenne61-multiply.md (E2): a·b − t = M·(8·hi + m1 + l1),
    in sympy over the symbols a0, a1, b0, b1, m0, m1, l0, l1.

    m0, m1, l0, l1 are free symbols tied to the others only by the splits
    ``mid = m1·2^29 + m0`` and ``lo = l1·2^61 + l0``; the difference of the two
    sides is checked to be exactly a combination of those two relations, so
    it vanishes whenever they hold.
    """
    m = sympy.Integer(_M61)
    a = A1 * 2**32 + A0
    b = B1 * 2**32 + B0
    hi, mid, lo = A1 * B1, A1 * B0 + A0 * B1, A0 * B0
    t = 8 * hi + 2**32 * MID0 + MID1 + LO0 + LO1
    gap = a * b - t - m * (8 * hi + MID1 + LO1)
    mid_split = mid - (MID1 * 2**29 + MID0)
    lo_split = lo - (LO1 * 2**61 + LO0)
    assert sympy.expand(gap - (2**32 * mid_split + lo_split)) == 0
    # The quotient matters: with M·(8·hi + m1) (l1 dropped) the identity fails.
    assert sympy.expand(gap + m * LO1 - (2**32 * mid_split + lo_split)) != 0


def test_mersenne61_congruences() -> None:
    """proofs_notes/mersenne61-multiply.md (E3)–(E5): 2^61 ≡ 1, 2^64 ≡ 8 and
    2^32·2^29 ≡ 1 modulo M = 2^61 − 1, and 2^64 − 8 = 8·M (used in step 2)."""
    m = sympy.Integer(_M61)
    assert sympy.isprime(m)
    assert sympy.Mod(sympy.Integer(2) ** 61, m) == 1  # (E3)
    assert sympy.Mod(sympy.Integer(2) ** 64, m) == 8  # (E4)
    assert sympy.Mod(sympy.Integer(2) ** 32 * sympy.Integer(2) ** 29, m) == 1  # (E5)
    assert sympy.Integer(2) ** 64 - 8 == 8 * m


def _mersenne61_steps(a: int, b: int) -> dict[str, int]:
    """The note's intermediates, with Python ints."""
    a0, a1, b0, b1 = a & (2**32 - 1), a >> 32, b & (2**32 - 1), b >> 32
    lo, mid, hi = a0 * b0, a1 * b0 + a0 * b1, a1 * b1
    m0, m1, l0, l1 = mid & (2**29 - 1), mid >> 29, lo & _M61, lo >> 61
    t = 8 * hi + 2**32 * m0 + m1 + l0 + l1
    r = (t & _M61) + (t >> 61)
    return {"lo": lo, "mid": mid, "hi": hi, "m0": m0, "m1": m1, "l0": l0, "l1": l1, "t": t, "r": r}


def test_mersenne61_intermediates_fit_in_64_bits_and_one_fold_suffices() -> None:
    """proofs_notes/mersenne61-multiply.md, claims 3 and 4 (the bounds of proof step 3):
    every intermediate is below 2^64, t < 2^63, r <= M + 3 < 2M, and
    min(r, r − M) mod 2^64 is a·b mod M.

    The bounds are derived from the operand range a, b <= M − 1 (each
    intermediate is monotone in its inputs), then checked on edge and seeded
    random operands, where the result of ``Field61`` multiplication is also
    compared with ``a·b mod M``.
    """
    # Upper bounds from a, b <= M - 1, as in proof step 3.
    a0_max, a1_max = 2**32 - 1, (_M61 - 1) >> 32
    assert a1_max == 2**29 - 1
    lo_max, mid_max, hi_max = a0_max**2, 2 * a1_max * a0_max, a1_max**2
    assert lo_max < 2**64 and a1_max * a0_max < 2**61 and mid_max < 2**62 and hi_max < 2**58
    assert 8 * hi_max < 2**61
    m0_max, m1_max, l0_max, l1_max = 2**29 - 1, mid_max >> 29, _M61, lo_max >> 61
    assert 2**32 * m0_max < 2**61 and m1_max < 2**33 and l1_max <= 7
    t_max = 8 * hi_max + 2**32 * m0_max + m1_max + l0_max + l1_max
    assert t_max < 3 * 2**61 + 2**33 + 8 < 2**63
    r_max = _M61 + (t_max >> 61)
    assert t_max >> 61 <= 3 and r_max <= _M61 + 3 < 2 * _M61

    # The same bounds hold on edge and random operands, and the result is a·b mod M.
    edges = [0, 1, 2, 2**29 - 1, 2**32 - 1, 2**32, 2**32 + 1, 2**60, _M61 - 2, _M61 - 1]
    rand = [int(v) for v in _xof("m61").uniform_ints(_M61, count=30)]
    operands = edges + rand
    pairs = list(itertools.product(operands, repeat=2))
    limits = {"lo": lo_max, "mid": mid_max, "hi": hi_max, "m1": m1_max, "t": t_max, "r": r_max}
    m = np.uint64(_M61)
    for a, b in pairs:
        steps = _mersenne61_steps(a, b)
        for name, limit in limits.items():
            assert steps[name] <= limit, (a, b, name)
        assert a * b - steps["t"] == _M61 * (8 * steps["hi"] + steps["m1"] + steps["l1"])
        r = np.array([steps["r"]], dtype=np.uint64)
        assert int(np.minimum(r, r - m)[0]) == a * b % _M61
    got = (Field61([a for a, _ in pairs]) * Field61([b for _, b in pairs])).to_ints()
    assert got == [a * b % _M61 for a, b in pairs]


# ====================================================================== limb-split-matmul-exact.md


def _limb_counts(bits: int, plan: tuple[int, int]) -> tuple[int, int]:
    a, b = plan
    return -(-bits // a), -(-bits // b)


def test_every_limb_plan_keeps_block_entries_below_2_53() -> None:
    """proofs_notes/limb-split-matmul-exact.md (E1): n·(2^a − 1)·(2^b − 1) < 2^53 and
    a + b + g <= 53 for the plan (a, b) = _limb_plan(BITS, n).

    The plan depends on n only through g = bitlen(n − 1); both ends of every
    class, n = 2^(g−1) + 1 and n = 2^g, get the same plan, and (E1) is
    checked at the largest n of the class, n = 2^g. This covers every
    BITS = 1..64 and every n <= 2^51; n = 2^51 + 1 must be refused.
    """
    for bits in range(1, 65):
        for g in range(52):
            n = 2**g
            plan = _limb_plan(bits, n)
            if g >= 2:
                assert _limb_plan(bits, 2 ** (g - 1) + 1) == plan, (bits, g)
            a, b = plan
            assert 1 <= a <= bits and 1 <= b <= bits, (bits, n, plan)
            assert a + b + g <= 53, (bits, n, plan)
            assert n * (2**a - 1) * (2**b - 1) < 2**53, (bits, n, plan)
        with pytest.raises(ParameterError):
            _limb_plan(bits, 2**51 + 1)


def test_limbs_are_the_base_2_to_the_a_digits() -> None:
    """proofs_notes/limb-split-matmul-exact.md (E2):
    x = Σ_{i<na} 2^(a·i)·((x >> (a·i)) & (2^a − 1)), for the limbs ``_split``
    returns: na = ceil(BITS / a) limbs, each below 2^a.

    Exhaustively for every x < 2^BITS and every width a <= BITS with
    BITS <= 12; for BITS = 31 and 61 on edge and seeded random x, every a.
    """
    cases: list[tuple[int, list[int]]] = [(bits, list(range(2**bits))) for bits in range(1, 13)]
    for bits in (31, 61):
        edges = [0, 1, 2**bits - 1, 2 ** (bits - 1), 2 ** (bits - 1) - 1, 0x5555555555555555]
        rand = _xof("split", bits).uniform_ints(2**bits, count=200).tolist()
        cases.append((bits, [v % 2**bits for v in edges] + [int(v) for v in rand]))
    for bits, xs in cases:
        arr = np.array(xs, dtype=np.uint64)
        for a in range(1, bits + 1):
            limbs = [limb.tolist() for limb in _split(arr, a, bits)]
            assert len(limbs) == -(-bits // a), (bits, a)
            assert all(0 <= v < 2**a for limb in limbs for v in limb), (bits, a)
            rebuilt = [
                sum(int(limb[k]) << (a * i) for i, limb in enumerate(limbs)) for k in range(len(xs))
            ]
            assert rebuilt == xs, (bits, a)


def test_limb_block_products_recombine_to_the_matrix_product() -> None:
    """proofs_notes/limb-split-matmul-exact.md (E3):
    A @ B = Σ_{i<na} Σ_{j<nb} 2^(a·i + b·j)·(A_i @ B_j), a sympy identity for 2×2 and
    2×3 matrices of symbols, three limbs each, and symbolic widths a, b."""
    a, b = sympy.symbols("a b", positive=True, integer=True)
    na = nb = 3
    a_limbs = [sympy.Matrix(2, 2, sympy.symbols(f"A{i}_0:4")) for i in range(na)]
    b_limbs = [sympy.Matrix(2, 3, sympy.symbols(f"B{j}_0:6")) for j in range(nb)]
    whole_a = sum((2 ** (a * i) * a_limbs[i] for i in range(na)), sympy.zeros(2, 2))
    whole_b = sum((2 ** (b * j) * b_limbs[j] for j in range(nb)), sympy.zeros(2, 3))
    blocks = sum(
        (2 ** (a * i + b * j) * (a_limbs[i] * b_limbs[j]) for i in range(na) for j in range(nb)),
        sympy.zeros(2, 3),
    )
    assert (whole_a * whole_b - blocks).expand() == sympy.zeros(2, 3)


def _recombined(
    prod: np.ndarray,
    a_limbs: tuple[int, int],
    b_limbs: tuple[int, int],
    *,
    rows: int,
    cols: int,
    modulus: int,
) -> list[int]:
    """Σ P_ij·2^(a·i + b·j) mod ``modulus``, entry by entry, with Python ints."""
    (a, na), (b, nb) = a_limbs, b_limbs
    return [
        sum(
            int(prod[i * rows + r, j * cols + c]) << (a * i + b * j)
            for i in range(na)
            for j in range(nb)
        )
        % modulus
        for r in range(rows)
        for c in range(cols)
    ]


def _mersenne31_plans() -> list[tuple[int, int, int, int]]:
    """Every plan (a, na, b, nb) the product uses for Field31 on the Mersenne-31 path."""
    plans = set()
    for g in range(52):
        a, b = _limb_plan(Field31.BITS, 2**g)
        na, nb = _limb_counts(Field31.BITS, (a, b))
        if na * nb <= 4:
            plans.add((a, na, b, nb))
    return sorted(plans)


def _fold(x: int) -> int:
    return (x & _M31) + (x >> 31)


def _fold_upper(limit: int) -> int:
    """An upper bound of fold(x) over 0 <= x < limit: bound each of the two terms."""
    return min(_M31, limit - 1) + ((limit - 1) >> 31)


def test_mersenne31_fold_and_shift_are_congruences() -> None:
    """proofs_notes/limb-split-matmul-exact.md (E4), (E5): fold(x) ≡ x (mod M) as the
    sympy identity x − fold(x) = M·(x >> 31), for x = 2^31·h + l; and
    2^(a·i + b·j) ≡ 2^(s_ij) (mod M) with s_ij = (a·i + b·j) mod 31 <= 30, for every
    block (i, j) of every Mersenne-31 plan of ``_limb_plan``."""
    h, low = sympy.symbols("h l", integer=True, nonnegative=True)
    x = 2**31 * h + low
    assert sympy.expand(x - (low + h) - sympy.Integer(_M31) * h) == 0  # (E4)
    plans = _mersenne31_plans()
    assert plans, "no Mersenne-31 plan"
    for a, na, b, nb in plans:
        for i, j in itertools.product(range(na), range(nb)):
            e = a * i + b * j
            s = e % 31
            assert s <= 30
            assert (sympy.Integer(2) ** e - sympy.Integer(2) ** s) % _M31 == 0, (a, b, i, j)  # (E5)


def test_mersenne31_recombination_bounds() -> None:
    """proofs_notes/limb-split-matmul-exact.md, the bounds of proof step 3:
    fold(P) <= 2^31 + 2^22 − 2 < 2^32 for P < 2^53; the accumulator stays below
    2^53 + 3·2^62 < 2^64 and below the bound ``_combine_m31`` tracks, for every
    Mersenne-31 plan; one fold maps x < 2^61, two folds map x < 2^64, below 2M;
    min(y, y − M) mod 2^64 is y mod M for y < 2M; and x = 2^62 − 1 needs two folds.
    Finally ``_combine_m31`` on extreme (all 2^53 − 1), seeded random and
    adversarial blocks, for every plan and for a synthetic layout (a = b = 30)
    whose accumulator reaches 2^62 and needs the second fold, equals
    Σ P_ij·2^(a·i + b·j) mod M computed with Python ints.
    """
    m = _M31
    fold_p = _fold_upper(2**53)
    assert fold_p == 2**31 + 2**22 - 2 == _fold(2**53 - 1) < 2**32
    assert fold_p << 30 < 2**62
    assert 2**53 + 3 * 2**62 < 2**64
    layouts = _mersenne31_plans()
    for a, na, b, nb in layouts:
        shifts = [(a * i + b * j) % 31 for i in range(na) for j in range(nb) if i or j]
        assert len(shifts) <= 3
        worst = 2**53 - 1 + sum(fold_p << s for s in shifts)
        tracked = 2**53 + sum(1 << (32 + s) for s in shifts)  # as in _combine_m31
        assert worst < tracked < 2**53 + 3 * 2**62
    assert _fold_upper(2**61) == m + 2**30 - 1 < 2 * m
    assert _fold_upper(2**64) == m + 2**33 - 1 < 2**34
    assert _fold_upper(2**34) == m + 7 < 2 * m
    assert _fold(2**62 - 1) == 2 * m  # one fold is not enough above 2^61
    ys = np.array([0, 1, m - 1, m, m + 1, 2 * m - 2, 2 * m - 1], dtype=np.uint64)
    assert np.minimum(ys, ys - np.uint64(m)).tolist() == [int(y) % m for y in ys]

    # A layout (a = b = 30) whose tracked bound exceeds 2^61, so _combine_m31 folds
    # twice; with the blocks below, one fold would leave a value >= 2M there.
    synthetic = (30, 2, 30, 2)
    rest = sum(fold_p << s for s in (30, 30, 60 % 31))
    p00 = (m - 1 - (rest & m)) % 2**31
    assert 2**53 + sum(1 << (32 + s) for s in (30, 30, 60 % 31)) > 2**61
    assert _fold(p00 + rest) >= 2 * m
    rows, cols = 2, 3
    for label, (a, na, b, nb) in enumerate([*layouts, synthetic]):
        size = na * nb * rows * cols
        rand = _xof("m31", label).uniform_ints(2**53, count=size).reshape(na * rows, nb * cols)
        extreme = np.full((na * rows, nb * cols), 2**53 - 1, dtype=np.uint64)
        adversarial = extreme.copy()
        adversarial[:rows, :cols] = p00
        for prod in (extreme, rand, adversarial):
            want = _recombined(prod, (a, na), (b, nb), rows=rows, cols=cols, modulus=m)
            out = np.empty((rows, cols), dtype=np.uint64)
            _combine_m31(prod.copy(), m=rows, w=cols, a_limbs=(a, na), b_limbs=(b, nb), out=out)
            assert out.ravel().tolist() == want, (a, na, b, nb)


def _mersenne61_plans() -> list[tuple[int, int, int, int]]:
    """Every plan (a, na, b, nb) the product uses for Field61 on the Mersenne-61 path."""
    plans = set()
    for g in range(52):
        a, b = _limb_plan(Field61.BITS, 2**g)
        na, nb = _limb_counts(Field61.BITS, (a, b))
        if na * nb <= 9:
            plans.add((a, na, b, nb))
    return sorted(plans)


def test_mersenne61_recombination() -> None:
    """proofs_notes/limb-split-matmul-exact.md (E6) and the bounds of proof step 4;
    then ``_combine_m61`` on extreme, seeded random and synthetic 3 × 3 layouts
    (shifts spanning 0..60) equals Σ P_ij·2^(a·i + b·j) mod (2^61 − 1) by Python ints."""
    n61 = _M61
    high, low61 = sympy.symbols("h l", integer=True, nonnegative=True)
    # x·2^s = 2^61·h + l  ⇒  x·2^s − (l + h) = h·(2^61 − 1): a multiple of N.
    assert sympy.expand((2**61 * high + low61) - (low61 + high) - high * n61) == 0
    for shift in (0, 1, 8, 30, 52, 60):
        for value in (0, 1, 2**53 - 1, 2**52 + 12345):
            low = ((value << shift) % 2**64) & n61
            assert (low + (value >> (61 - shift))) % n61 == (value << shift) % n61
            assert value >> (61 - shift) < 2**53
    assert 8 * (2**61 - 1) < 2**64
    assert ((8 * (2**61 - 1)) & n61) + ((8 * (2**61 - 1)) >> 61) < 2**61 + 8
    assert 2**61 + 8 + 9 * 2**53 < 2**62
    assert n61 + ((2**62 - 1) >> 61) < 2 * n61

    plans = _mersenne61_plans()
    assert plans, "no Field61 plan takes the Mersenne-61 path"
    layouts = [*plans, (20, 3, 21, 3), (29, 3, 3, 3)]
    rows, cols = 2, 3
    for label, (a, na, b, nb) in enumerate(layouts):
        assert na * nb <= 9
        size = na * nb * rows * cols
        rand = _xof("m61", label).uniform_ints(2**53, count=size).reshape(na * rows, nb * cols)
        extreme = np.full((na * rows, nb * cols), 2**53 - 1, dtype=np.uint64)
        for prod in (extreme, rand):
            want = _recombined(prod, (a, na), (b, nb), rows=rows, cols=cols, modulus=n61)
            out = np.empty((rows, cols), dtype=np.uint64)
            _combine_m61(prod.copy(), m=rows, w=cols, a_limbs=(a, na), b_limbs=(b, nb), out=out)
            assert out.ravel().tolist() == want, (a, na, b, nb)


# ====================================================================== shamir-correctness.md


def _lagrange_basis(xs: Sequence[sympy.Symbol], var: sympy.Symbol) -> list[sympy.Expr]:
    """ℓ_i(var) = Π_{l≠i} (var − x_l) / (x_i − x_l)."""
    n = len(xs)
    return [
        sympy.Mul(*[(var - xs[m]) / (xs[i] - xs[m]) for m in range(n) if m != i]) for i in range(n)
    ]


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_lagrange_interpolation_reproduces_every_polynomial_of_degree_below_n(n: int) -> None:
    """proofs_notes/shamir-correctness.md (E1), (E2), (E3), with n symbolic nodes:
    f(X) = Σ_i ℓ_i(X)·f(x_i) for f with symbolic coefficients of degree < n;
    Σ_i ℓ_i(X)·x_i^a = X^a for each a < n; Σ_i ℓ_i(X) = 1; and ℓ_i(x_j) = δ_ij.
    Control: for a = n the sum is X^n − Π_l (X − x_l), not X^n."""
    xs = sympy.symbols(f"x0:{n}")
    x = sympy.Symbol("X")
    ell = _lagrange_basis(xs, x)
    coeffs = sympy.symbols(f"c0:{n}")
    f = sum(c * x**a for a, c in enumerate(coeffs))
    assert _is_zero(sum(li * f.subs(x, xi) for li, xi in zip(ell, xs, strict=True)) - f)  # (E1)
    for a in range(n):  # (E2)
        assert _is_zero(sum(li * xi**a for li, xi in zip(ell, xs, strict=True)) - x**a), a
    assert _is_zero(sum(ell) - 1)  # (E3)
    for i, j in itertools.product(range(n), repeat=2):
        assert sympy.simplify(ell[i].subs(x, xs[j])) == (1 if i == j else 0)
    top = sum(li * xi**n for li, xi in zip(ell, xs, strict=True))
    assert not _is_zero(top - x**n)
    assert _is_zero(top - x**n + sympy.Mul(*[x - xl for xl in xs]))


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_barycentric_form_equals_the_lagrange_basis(n: int) -> None:
    """proofs_notes/shamir-correctness.md (E4): ℓ_i(z) = w_i·Π_l (z − x_l) / (z − x_i) with
    w_i = 1 / Π_{l≠i} (x_i − x_l), as an identity of rational functions in z and n
    symbolic nodes; and ``lagrange_matrix``, which uses this form off the nodes
    and unit rows at them, equals ℓ_i(z) mod 13 at fixed nodes and targets."""
    xs = sympy.symbols(f"x0:{n}")
    z = sympy.Symbol("z")
    ell = _lagrange_basis(xs, z)
    full = sympy.Mul(*[z - xl for xl in xs])
    for i in range(n):
        w = 1 / sympy.Mul(*[xs[i] - xs[m] for m in range(n) if m != i])
        assert _is_zero(ell[i] - w * full / (z - xs[i])), i

    p = 13
    nodes = [1, 3, 4, 9][:n]
    targets = [0, 12, 11, 2, 3, 9, 5]
    got = lagrange_matrix(field_for_modulus(p), nodes=nodes, targets=targets).values.tolist()
    for row, target in zip(got, targets, strict=True):
        exact = [
            sympy.Rational(li.subs(dict(zip(xs, nodes, strict=True))).subs(z, target)) for li in ell
        ]
        assert row == [int(v.p * pow(int(v.q), -1, p) % p) for v in exact], target


# ====================================================================== shamir-privacy.md


def _coefficient_map(t: int) -> sympy.Matrix:
    """M[j][i] = (−j)^i for 1 <= i, j <= t."""
    return sympy.Matrix(t, t, lambda j, i: sympy.Integer(-(j + 1)) ** (i + 1))


@pytest.mark.parametrize("t", range(1, 7))
def test_values_at_randomness_points_are_the_coefficients_times_m(t: int) -> None:
    """proofs_notes/shamir-privacy.md (E1), t = 1..6: for f = s + Σ a_i X^i with symbolic
    s, a_i, the vector (f(−j) − s)_j is M·a, and M = diag(−1, …, −t)·V with
    V[j][i] = (−j)^(i−1)."""
    s = sympy.Symbol("s")
    a = sympy.Matrix(sympy.symbols(f"a1:{t + 1}"))
    xx = sympy.Symbol("X")
    f = s + sum(a[i - 1] * xx**i for i in range(1, t + 1))
    values = sympy.Matrix([f.subs(xx, -j) - s for j in range(1, t + 1)])
    mat = _coefficient_map(t)
    assert (values - mat * a).expand() == sympy.zeros(t, 1)
    vandermonde = sympy.Matrix(t, t, lambda j, i: sympy.Integer(-(j + 1)) ** i)
    assert mat == sympy.diag(*[-j for j in range(1, t + 1)]) * vandermonde


@pytest.mark.parametrize("t", range(1, 7))
def test_coefficient_map_determinant_is_nonzero_mod_every_allowed_p(t: int) -> None:
    """proofs_notes/shamir-privacy.md (E2), t = 1..6: det M = Π_j (−j)·Π_{j<l} (j − l)
    (sympy's determinant against the product), and every prime factor of det M
    is at most t, so det M ≢ 0 modulo every prime p > t (as t + 1 = K <= p),
    in particular modulo 11, 13, 2^31 − 1 and 2^61 − 1."""
    det = _coefficient_map(t).det()
    formula = sympy.prod([-j for j in range(1, t + 1)]) * sympy.prod(
        [j - k for j in range(1, t + 1) for k in range(j + 1, t + 1)]
    )
    assert det == formula != 0
    assert all(q <= t for q in sympy.factorint(abs(det)))
    for p in (11, 13, _M31, _M61):
        assert det % p != 0


# ====================================================================== robust-decoding.md


def test_reed_solomon_minimum_distance_is_n_minus_k_plus_1() -> None:
    """proofs_notes/robust-decoding.md claim 1: the evaluations of the polynomials of
    degree < K at N distinct points form a code of minimum distance exactly
    N − K + 1, by enumerating every codeword for small (p, N, K)."""
    for p, n, k in ((5, 4, 1), (5, 4, 2), (7, 5, 2), (7, 6, 3), (11, 5, 3), (11, 7, 1)):
        xs = list(range(1, n + 1))
        words = [
            tuple(sum(c * x**i for i, c in enumerate(coeffs)) % p for x in xs)
            for coeffs in itertools.product(range(p), repeat=k)
        ]
        assert len(set(words)) == p**k  # dimension K
        zero = tuple([0] * n)
        # The code is linear, so its minimum distance is its minimum nonzero weight.
        weight = min(sum(v != 0 for v in w) for w in words if w != zero)
        assert weight == n - k + 1, (p, n, k, weight)


def test_floor_and_ceil_halves_add_up() -> None:
    """proofs_notes/robust-decoding.md (E1): floor((n − K)/2) + ceil((n + K)/2) = n for all
    1 <= K <= n < 60, with sympy's floor and ceiling of exact rationals; and the
    loop condition 2·deg r >= n + K is deg r >= d = ceil((n + K)/2) for every
    deg r in −1..n."""
    half = sympy.Rational(1, 2)
    for n in range(1, 60):
        for k in range(1, n + 1):
            d = sympy.ceiling((n + k) * half)
            assert sympy.floor((n - k) * half) + d == n, (n, k)
            for deg in range(-1, n + 1):
                assert (2 * deg >= n + k) == (deg >= d), (n, k, deg)


@dataclass(frozen=True)
class _Word:
    """A received word and how it was made: ``g`` changed at ``errors`` (or random)."""

    p: int
    xs: tuple[int, ...]
    received: tuple[int, ...]
    dim: int
    g: tuple[int, ...] | None  # None: a uniformly random word
    errors: frozenset[int]


def _received_words() -> Iterator[_Word]:
    """Seeded words: codewords with floor((n − K)/2) errors (half of them), with a
    uniform number of errors up to that (a quarter), and uniformly random words."""
    primes = (11, 13, 257, 65537, _M31)
    for idx in range(200):
        xof = _xof("gao", idx)
        p = primes[idx % len(primes)]
        n = 1 + xof.uniform_int(min(12, p - 1))
        # Words with the most errors get K <= n - 2 where possible, so that they have some.
        dim = 1 + xof.uniform_int(max(1, n - 2) if idx % 2 == 0 else n)
        xs: list[int] = []
        while len(xs) < n:
            x = 1 + xof.uniform_int(p - 1)
            if x not in xs:
                xs.append(x)
        if idx % 4 == 3:
            received = [xof.uniform_int(p) for _ in range(n)]
            yield _Word(p, tuple(xs), tuple(received), dim, None, frozenset())
            continue
        g = [xof.uniform_int(p) for _ in range(dim)]
        word = [sum(c * pow(x, i, p) for i, c in enumerate(g)) % p for x in xs]
        top = (n - dim) // 2
        tau = top if idx % 2 == 0 else xof.uniform_int(top + 1)
        errors: set[int] = set()
        while len(errors) < tau:
            errors.add(xof.uniform_int(n))
        for i in errors:
            word[i] = (word[i] + 1 + xof.uniform_int(p - 1)) % p
        yield _Word(p, tuple(xs), tuple(word), dim, tuple(g), frozenset(errors))


@dataclass(frozen=True)
class _Rows:
    """Rows j = −1, 0, 1, … of the extended Euclid on (g0, g1): r_j = u_j·g0 + v_j·g1.

    Row j is at list index j + 1; the last remainder is the zero polynomial.
    """

    g0: list[int]
    g1: list[int]
    r: list[list[int]]
    u: list[list[int]]
    v: list[list[int]]


def _euclid_rows(word: _Word) -> _Rows:
    """The loop of ``_decode_column`` (same helpers), run until the remainder is 0."""
    p = word.p
    g0 = [1]
    for x in word.xs:
        g0 = _poly_mul(g0, [(-x) % p, 1], p)
    g1 = _interpolate(word.xs, word.received, p)
    r, u, v = [g0, g1], [[1], []], [[], [1]]
    while r[-1]:
        q, rem = _poly_divmod(r[-2], r[-1], p)
        r.append(rem)
        u.append(_poly_sub(u[-2], _poly_mul(q, u[-1], p), p))
        v.append(_poly_sub(v[-2], _poly_mul(q, v[-1], p), p))
    return _Rows(g0, g1, r, u, v)


def _deg(poly: list[int]) -> int:
    return len(poly) - 1


def _add(a: list[int], b: list[int], p: int) -> list[int]:
    return _poly_sub(a, _poly_sub([], b, p), p)


def _stop_row(word: _Word, rows: _Rows) -> int:
    """Index j of the first row with 2·deg r_j < n + K (where the decoder's loop stops)."""
    n = len(word.xs)
    return next(j for j in range(len(rows.r) - 1) if 2 * _deg(rows.r[j + 1]) < n + word.dim)


def test_gao_euclid_rows_satisfy_the_degree_relation() -> None:
    """proofs_notes/robust-decoding.md (E2): deg v_j = n − deg r_{j−1} for every row j >= 0
    of the extended Euclid on (g0, g1), on 200 seeded received words (p from 11
    to 2^31 − 1, n <= 12, codewords with up to floor((n − K)/2) errors and
    uniformly random words); rows are computed with the loop of
    ``_decode_column`` and its helpers and continued until the remainder is 0.
    Also: every row satisfies r_j = u_j·g0 + v_j·g1, the row where the
    decoder's loop stops has deg v_i <= n − d, and dividing r_i by v_i there
    gives exactly the answer ``_decode_column`` returns."""
    for word in _received_words():
        p, n, dim = word.p, len(word.xs), word.dim
        rows = _euclid_rows(word)
        for j in range(-1, len(rows.r) - 1):
            r, u, v = rows.r[j + 1], rows.u[j + 1], rows.v[j + 1]
            combo = _add(_poly_mul(u, rows.g0, p), _poly_mul(v, rows.g1, p), p)
            assert combo == r, (word, j)
            if j >= 0:
                assert _deg(v) == n - _deg(rows.r[j]), (word, j)  # (E2)
        i = _stop_row(word, rows)
        d = -(-(n + dim) // 2)
        v_i = rows.v[i + 1]
        assert 0 <= _deg(v_i) <= n - d, word
        f, rem = _poly_divmod(rows.r[i + 1], v_i, p)
        wrong = None
        if not rem and len(f) <= dim:
            values = [sum(c * pow(x, k, p) for k, c in enumerate(f)) % p for x in word.xs]
            wrong = {h for h in range(n) if values[h] != word.received[h]}
            if len(wrong) > (n - dim) // 2:
                wrong = None
        assert _decode_column(p, word.xs, word.received, dim, (n - dim) // 2) == wrong, word


def test_gao_stopped_row_identity() -> None:
    """proofs_notes/robust-decoding.md (E3): r*·v_i − r_i·v* = g0·(u*·v_i − u_i·v*), as a sympy
    identity in the ring generated by g0, g1, u*, v*, u_i, v_i (with r* = u*·g0 + v*·g1
    and r_i = u_i·g0 + v_i·g1); then on the seeded codewords with τ <= floor((n − K)/2)
    errors: the key equation w·g = u*·g0 + w·g1 holds with an exact division,
    deg r* < d and deg v* <= n − d, both sides of (E3) at the stopped row are the
    same polynomial mod p, that polynomial is 0, and r_i = g·v_i."""
    g0, g1, us, vs, ui, vi = sympy.symbols("g0 g1 u_star v_star u_i v_i")
    r_star, r_i = us * g0 + vs * g1, ui * g0 + vi * g1
    assert sympy.expand(r_star * vi - r_i * vs - g0 * (us * vi - ui * vs)) == 0

    checked = 0
    for word in _received_words():
        if word.g is None:
            continue
        p, n = word.p, len(word.xs)
        rows = _euclid_rows(word)
        g = _poly_sub(list(word.g), [], p)
        w = [1]
        for h in sorted(word.errors):
            w = _poly_mul(w, [(-word.xs[h]) % p, 1], p)
        u_star, rem = _poly_divmod(
            _poly_sub(_poly_mul(w, g, p), _poly_mul(w, rows.g1, p), p), rows.g0, p
        )
        assert rem == [], word  # g0 divides w·(g − g1)
        r_star, v_star = _poly_mul(w, g, p), w
        d = -(-(n + word.dim) // 2)
        assert _deg(r_star) < d and _deg(v_star) <= n - d, word
        i = _stop_row(word, rows)
        r_i, u_i, v_i = rows.r[i + 1], rows.u[i + 1], rows.v[i + 1]
        lhs = _poly_sub(_poly_mul(r_star, v_i, p), _poly_mul(r_i, v_star, p), p)
        rhs = _poly_mul(
            rows.g0, _poly_sub(_poly_mul(u_star, v_i, p), _poly_mul(u_i, v_star, p), p), p
        )
        assert lhs == rhs == [], word
        assert r_i == _poly_mul(g, v_i, p), word
        checked += 1
    assert checked >= 100


# ====================================================================== xof-rejection-uniform.md


def test_rejection_sampling_sums_to_one_over_bound() -> None:
    """proofs_notes/xof-rejection-uniform.md (E1): Σ_{j>=0} (1 − q)^j·2^(−bits) = 1/bound, as a
    symbolic geometric series in sympy with symbolic q, bits and bound: the
    closed form is 2^(−bits)/q, which equals 1/bound at q = bound/2^bits, and the
    series converges on an interval that contains (1/2, 1] (the range (E2) gives)."""
    j = sympy.Symbol("j", integer=True, nonnegative=True)
    q = sympy.Symbol("q", positive=True)
    bits = sympy.Symbol("bits", integer=True, nonnegative=True)
    bound = sympy.Symbol("bound", integer=True, positive=True)
    series = sympy.piecewise_fold(sympy.summation((1 - q) ** j * 2 ** (-bits), (j, 0, sympy.oo)))
    assert isinstance(series, sympy.Piecewise)
    (closed, converges), _ = series.args
    assert sympy.simplify(closed.subs(q, bound / 2**bits) - 1 / bound) == 0
    region = sympy.solve_univariate_inequality(converges, q, relational=False)
    assert sympy.Interval.Lopen(sympy.Rational(1, 2), 1).is_subset(region)
    assert not sympy.Interval.Lopen(sympy.Rational(1, 2), 3).is_subset(region)


def test_acceptance_probability_is_above_one_half() -> None:
    """proofs_notes/xof-rejection-uniform.md (E2): 1/2 < q = bound/2^bits <= 1, with
    bits = bitlen(bound − 1), for every 2 <= bound <= 2^16 (and q = 1 for bound = 1);
    bits is also checked to be the least b with 2^b >= bound; and the note's
    examples (2^31 − 1, 2^61 − 1, 97)."""
    least = 0
    for bound in range(1, 2**16 + 1):
        while 2**least < bound:
            least += 1
        bits = (bound - 1).bit_length()
        assert bits == least, bound
        q = Fraction(bound, 2**bits)
        if bound == 1:
            assert bits == 0 and q == 1
        else:
            assert Fraction(1, 2) < q <= 1, bound
    examples = {_M31: (31, 1 - Fraction(1, 2**31)), _M61: (61, 1 - Fraction(1, 2**61))}
    examples[97] = (7, Fraction(97, 128))
    for bound, (bits, q) in examples.items():
        assert (bound - 1).bit_length() == bits
        assert Fraction(bound, 2**bits) == q


# ====================================================================== noise


def test_bernoulli_exp_series() -> None:
    """proofs_notes/bernoulli-exp.md: with A_k ~ Bernoulli(γ/k), the first failure
    index K has P(K > k) = Π_{i<=k} γ/i = γ^k/k!, so
    P(K odd) = Σ_{k>=0} (P(K > 2k) − P(K > 2k+1)) = Σ_j (−γ)^j/j! = exp(−γ)."""
    gamma = sympy.symbols("gamma", positive=True)
    k = sympy.symbols("k", integer=True, nonnegative=True)
    for kk in range(6):
        survive = sympy.prod([gamma / i for i in range(1, kk + 1)])
        assert sympy.simplify(survive - gamma**kk / sympy.factorial(kk)) == 0
    odd = sympy.Sum(
        gamma ** (2 * k) / sympy.factorial(2 * k)
        - gamma ** (2 * k + 1) / sympy.factorial(2 * k + 1),
        (k, 0, sympy.oo),
    )
    assert sympy.simplify(odd.doit() - sympy.exp(-gamma)) == 0
    # Control: the even index has the complementary probability, not exp(−γ).
    assert sympy.simplify((1 - odd.doit()) - sympy.exp(-gamma)) != 0


def test_skellam_closure_pgf() -> None:
    """proofs_notes/skellam-closure.md: Poisson(μ) has pgf exp(μ(z − 1)), so
    Sk(λ) = Poisson(λ/2) − Poisson(λ/2) has G_λ(z) = exp(λ/2·(z + 1/z − 2)), and
    G_λ1 · G_λ2 = G_(λ1+λ2); G'(1) = 0 and G''(1) + G'(1) − G'(1)² = λ (mean 0, variance λ)."""
    z, lam, l1, l2, mu = sympy.symbols("z lambda lambda1 lambda2 mu", positive=True)
    n = sympy.symbols("n", integer=True, nonnegative=True)
    poisson_pgf = sympy.Sum(sympy.exp(-mu) * mu**n / sympy.factorial(n) * z**n, (n, 0, sympy.oo))
    assert sympy.simplify(poisson_pgf.doit() - sympy.exp(mu * (z - 1))) == 0
    half = lam / 2

    def g(lmb: sympy.Expr) -> sympy.Expr:
        return sympy.exp(lmb / 2 * (z + 1 / z - 2))

    # X − Y with independent X, Y ~ Poisson(λ/2): G_X(z) · G_Y(1/z).
    assert sympy.simplify(sympy.exp(half * (z - 1)) * sympy.exp(half * (1 / z - 1)) - g(lam)) == 0
    assert sympy.simplify(g(l1) * g(l2) - g(l1 + l2)) == 0
    d1 = sympy.diff(g(lam), z).subs(z, 1)
    d2 = sympy.diff(g(lam), z, 2).subs(z, 1)
    assert sympy.simplify(d1) == 0
    assert sympy.simplify(d2 + d1 - d1**2 - lam) == 0


# ====================================================================== protocol-*.md
#
# The algebraic steps of the protocol's notes (spec/09-protocol.md#hazards).

SIGMA2, N_, T_, C_, D_ = sympy.symbols("sigma2 n T c d", positive=True)


def _s(d: sympy.Expr) -> sympy.Expr:
    """A survivor's noise after d dropouts, s(d) = σ*²/(n − d − T)."""
    return SIGMA2 / (N_ - d - T_)


def _lagrange_at(points: Sequence[sympy.Expr], j: int, x: sympy.Expr) -> sympy.Expr:
    """ℓ_j(x) over ``points``."""
    out = sympy.Integer(1)
    for m, xm in enumerate(points):
        if m != j:
            out *= (x - xm) / (points[j] - xm)
    return out


def _poly(name: str, degree: int, x: sympy.Expr) -> tuple[sympy.Expr, sympy.Symbol]:
    """A polynomial with symbolic coefficients, and its constant term (the secret)."""
    coeffs = sympy.symbols(f"{name}_0:{degree + 1}")
    return sum(c * x**i for i, c in enumerate(coeffs)), coeffs[0]


def test_protocol_top_up_telescopes() -> None:
    """proofs_notes/protocol-top-up-iteration.md (E1)–(E3): the increments
    s(d_r) − s(d_{r−1}) added to v0 = s(0) telescope to s(d_m); (n − d − T)·s(d) = σ*²;
    the honest members carry σ*² + (T − c)·s(d). Then the same on the real NoisePlan,
    along every increasing sequence of d, for small plans."""
    v0 = SIGMA2 / (N_ - T_)
    assert _is_zero(_s(sympy.Integer(0)) - v0)
    for m in range(5):
        ds = sympy.symbols(f"d0:{m + 1}", positive=True)
        total = v0
        prev: sympy.Expr = sympy.Integer(0)
        for d in ds:
            total += _s(d) - _s(prev)
            prev = d
        assert _is_zero(total - _s(ds[-1])), m  # (E1)
        # Control: forgetting one increment does not reach s(d_m).
        if m >= 1:
            assert not _is_zero(total - (_s(ds[0]) - v0) - _s(ds[-1]))
    assert _is_zero((N_ - D_ - T_) * _s(D_) - SIGMA2)  # (E3)
    assert _is_zero((N_ - D_ - C_) * _s(D_) - (SIGMA2 + (T_ - C_) * _s(D_)))  # (E2)
    for n, big_d, big_t in itertools.product(range(1, 7), range(4), range(3)):
        if n - big_d - big_t < 1:
            continue
        p = plan(mechanism="skellam", target_variance=Fraction(60), contributors=n,
                 max_dropouts=big_d, max_colluders=big_t)  # fmt: skip
        for size in range(1, big_d + 1):
            for seq in itertools.combinations(range(1, big_d + 1), size):
                carried = p.initial_share_variance()
                prev_d = 0
                for d in seq:
                    carried += p.top_up_increment(from_dropouts=prev_d, to_dropouts=d)
                    prev_d = d
                assert carried == p.survivor_variance(seq[-1]), (n, big_d, big_t, seq)
                assert (n - seq[-1] - big_t) * carried == Fraction(60)


def test_protocol_top_up_stages_are_at_most_d_plus_one() -> None:
    """proofs_notes/protocol-top-up-iteration.md claim 2: the dropouts of the
    non-final decisions strictly increase within [1, D], so there are at most D
    of them and at most D + 1 decisions; checked exhaustively for D <= 8."""
    for big_d in range(9):
        longest = 0
        for size in range(big_d + 2):
            for seq in itertools.combinations(range(1, big_d + 1), size):
                assert all(a < b for a, b in itertools.pairwise(seq))
                longest = max(longest, len(seq))
        assert longest == big_d
        assert longest + 1 == big_d + 1  # the final decision follows the last top-up


def test_protocol_release_is_the_sum_of_the_contributions() -> None:
    """proofs_notes/protocol-release-correctness.md (E3): interpolating, at the
    secret point 0, the holder-wise sums of the sharings of two contributors over
    two stages gives the sum of the four secrets (t = 1, 2, 3; k = 1)."""
    x = sympy.Symbol("X")
    for t in (1, 2, 3):
        points = sympy.symbols(f"x1:{t + 2}")
        polys = [_poly(f"f{i}{s}", t, x) for i in range(2) for s in range(2)]
        total = sum(sympy.expand(f) for f, _ in polys)
        combined = sum(
            _lagrange_at(points, j, sympy.Integer(0)) * total.subs(x, xj)
            for j, xj in enumerate(points)
        )
        secrets = sum(c for _, c in polys)
        assert _is_zero(combined - secrets), t
        # Control: one point fewer does not determine the sum.
        fewer = points[:-1]
        partial = sum(
            _lagrange_at(fewer, j, sympy.Integer(0)) * total.subs(x, xj)
            for j, xj in enumerate(fewer)
        )
        assert not _is_zero(partial - secrets)


def test_protocol_mixed_sets_do_not_reconstruct_a_sum() -> None:
    """proofs_notes/protocol-same-contributor-set.md (E1): values of F1 at B1 and
    of F2 at B2, interpolated at 0, give F1(0) + Σ_{j∈B2} λ_j (F2 − F1)(x_j), and the
    extra term is not identically zero when the sets differ (U1 = {a, b}, U2 = {a, c})."""
    x = sympy.Symbol("X")
    for t in (1, 2, 3):
        points = sympy.symbols(f"x1:{t + 2}")
        fa, _ = _poly("a", t, x)
        fb, _ = _poly("b", t, x)
        fc, _ = _poly("c", t, x)
        f1, f2 = sympy.expand(fa + fb), sympy.expand(fa + fc)
        split = len(points) // 2 + 1
        b1, b2 = list(enumerate(points))[:split], list(enumerate(points))[split:]
        lam = [_lagrange_at(points, j, sympy.Integer(0)) for j in range(len(points))]
        mixed = sum(lam[j] * f1.subs(x, xj) for j, xj in b1) + sum(
            lam[j] * f2.subs(x, xj) for j, xj in b2
        )
        extra = sum(lam[j] * (f2 - f1).subs(x, xj) for j, xj in b2)
        assert _is_zero(mixed - (f1.subs(x, 0) + extra)), t
        if b2:
            assert not _is_zero(extra), t
            assert not _is_zero(mixed - f1.subs(x, 0)) and not _is_zero(mixed - f2.subs(x, 0))


def test_protocol_smallest_set_keeps_an_honest_member_and_the_target() -> None:
    """proofs_notes/protocol-isolation.md (E1), (E2): in sympy, (n − d − c)·s(d) − σ*² =
    (T − c)·s(d); and on real RoundParams and NoisePlan for n <= 7, every D, T,
    min_contributors and |U| >= smallest_set: |U| − T >= 1 and the honest members
    carry at least the target."""
    assert _is_zero((N_ - D_ - C_) * _s(D_) - SIGMA2 - (T_ - C_) * _s(D_))
    target = Fraction(42)
    for n in range(1, 8):
        ids = tuple(range(1, n + 1))
        for big_d, big_t in itertools.product(range(n), range(n)):
            if n - big_d - big_t < 1:
                continue
            noise = plan(mechanism="skellam", target_variance=target, contributors=n,
                         max_dropouts=big_d, max_colluders=big_t)  # fmt: skip
            for min_contributors in range(1, n + 1):
                p = RoundParams(
                    session=SEED, round=0, field=Field31, nodes=(*ids, n + 1, n + 2),
                    contributors=ids, aggregators=(n + 1, n + 2), coordinator=n + 1,
                    threshold=1, packing=1, dimension=1, noise=noise,
                    min_contributors=min_contributors,
                )  # fmt: skip
                assert p.smallest_set == max(min_contributors, n - big_d)
                for size in range(p.smallest_set, n + 1):
                    d = n - size
                    assert size - big_t >= 1  # (E1)
                    for c in range(min(big_t, size) + 1):
                        honest = (size - c) * noise.survivor_variance(d)
                        assert honest >= target  # (E2)
                        assert honest - target == (big_t - c) * noise.survivor_variance(d)


def test_protocol_honest_noise_counts_the_plan_colluders_only() -> None:
    """proofs_notes/protocol-honest-noise-only.md (E1)–(E3): (n − d)·s(d) =
    honest(d, c) + c·s(d); honest(d, c) − honest(d, T) = (T − c)·s(d) >= 0; and
    s(d) − v0 = σ*²·d/((n − T)(n − d − T)) >= 0, so (|U| − T)·v0 <= σ*²."""
    honest_c = (N_ - D_ - C_) * _s(D_)
    honest_t = (N_ - D_ - T_) * _s(D_)
    assert _is_zero((N_ - D_) * _s(D_) - (honest_c + C_ * _s(D_)))  # (E1)
    assert _is_zero(honest_t - SIGMA2)
    assert _is_zero(honest_c - honest_t - (T_ - C_) * _s(D_))  # (E2)
    v0 = SIGMA2 / (N_ - T_)
    gap = _s(D_) - v0
    assert _is_zero(gap - SIGMA2 * D_ / ((N_ - T_) * (N_ - D_ - T_)))  # (E3)
    assert _is_zero((N_ - D_ - T_) * _s(D_) - (N_ - D_ - T_) * v0 - (N_ - D_ - T_) * gap)


def test_protocol_round_timer_outlasts_the_last_partial_sum() -> None:
    """proofs_notes/protocol-dropout-tolerance.md (E1)–(E4) on the constants of
    protocol/params.py; (E4) for symbolic D on the real round_windows."""
    assert REPORT_WINDOWS >= 1  # stage-0 shares arrive before the report timer
    assert 1 + REPORT_WINDOWS <= DECISION_WINDOWS  # (E1)
    assert TOP_UP_REPORT_WINDOWS >= 2  # (E2): 1 + 1 windows
    assert 1 + TOP_UP_REPORT_WINDOWS + 1 <= TOP_UP_WINDOWS  # (E3)
    big_d = sympy.Symbol("D", integer=True, nonnegative=True)
    slack = round_windows(big_d) - (DECISION_WINDOWS + TOP_UP_WINDOWS * big_d + 2)
    assert sympy.simplify(slack) == 1  # (E4), strictly positive for every D
    assert all(round_windows(d) == 4 * d + 5 for d in range(50))


def test_protocol_coalition_view_is_a_function_of_the_honest_sum() -> None:
    """proofs_notes/protocol-coalition-view.md (E1): the honest part G of the
    released polynomial equals its interpolation from the honest sum S at the k
    secret points and the holder-wise sums at t holder points, for t = 1, 2, 3
    (k = 1) and t = 2, k = 2, with two honest contributors."""
    x = sympy.Symbol("X")
    for t, k in ((1, 1), (2, 1), (3, 1), (2, 2)):
        big_k = t + k
        secret_points = [sympy.Integer(-a) for a in range(k)]
        holders = list(sympy.symbols(f"z1:{t + 1}"))
        g1, _ = _poly("g", big_k - 1, x)
        g2, _ = _poly("h", big_k - 1, x)
        g = sympy.expand(g1 + g2)
        basis = secret_points + holders
        rebuilt = sum(
            _lagrange_at(basis, j, x) * (g1.subs(x, b) + g2.subs(x, b)) for j, b in enumerate(basis)
        )
        assert _is_zero(rebuilt - g), (t, k)
        # Control: with one holder point fewer, G is not determined.
        fewer = basis[:-1]
        partial = sum(
            _lagrange_at(fewer, j, x) * (g1.subs(x, b) + g2.subs(x, b)) for j, b in enumerate(fewer)
        )
        assert not _is_zero(partial - g)


def test_committee_noise_meets_the_target() -> None:
    """proofs_notes/committee-noise.md (E1)–(E2): with m sources, c0 pre-covered and
    d source dropouts, (m − d − c)·s(d) >= (m − d − T)·s(d) >= σ*², in both regimes."""
    m, x = sympy.symbols("m x", positive=True)

    def s_of(covered: sympy.Expr) -> sympy.Expr:
        return SIGMA2 / (m - covered - T_)

    # d <= c0: s(d) = s(c0); write c0 = d + x with x >= 0, and m − c0 − T > 0.
    low = s_of(D_ + x)
    honest = (m - D_ - T_) * low
    assert _is_zero(honest - SIGMA2 - x * low)  # (E1): the excess x·s(c0) >= 0
    assert _is_zero((m - D_ - C_) * low - honest - (T_ - C_) * low)
    # d > c0: s(d) = σ*²/(m − d − T), exactly the target with T colluders.
    assert _is_zero((m - D_ - T_) * s_of(D_) - SIGMA2)
    # (E2): with c0 = D the released total (m − d)·s(D) is below m·s(D) by d·s(D).
    big_d = sympy.Symbol("D", positive=True)
    assert _is_zero(m * s_of(big_d) - (m - D_) * s_of(big_d) - D_ * s_of(big_d))
    # And the real plan agrees at small integers.
    for mm, dd, tt in itertools.product(range(2, 9), range(3), range(3)):
        if mm - dd - tt < 1:
            continue
        for cc in range(dd + 1):
            noise = plan(mechanism="skellam", target_variance=Fraction(7), contributors=mm,
                         max_dropouts=dd, max_colluders=tt, precovered=cc)  # fmt: skip
            for d in range(dd + 1):
                assert noise.honest_variance(d) == (mm - d - tt) * noise.survivor_variance(d)
                assert noise.honest_variance(d) >= 7
