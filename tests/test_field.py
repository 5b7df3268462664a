"""GF(p) arithmetic, encodings and validation against independent oracles.

Spec: spec/02-field.md

Oracles: galois ``GF(p)`` (the readable twin, house style rule 6), plain
Python ints (``(a * b) % p``) and, for primality, ``sympy.isprime``. No
expected value is taken from the code under test.
"""

from __future__ import annotations

import itertools
import operator
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import sympy
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from protocol.errors import EncodingError, FieldMismatchError, ParameterError
from protocol.field import (
    FIELDS,
    Field,
    Field31,
    Field61,
    field_for_modulus,
    is_prime,
)
from protocol.xof import Tag, Xof, as_seed
from tests.strategies import (
    ALL_FIELDS,
    F11,
    F13,
    NAMED_FIELDS,
    SMALL_FIELDS,
    edge_values,
    elements,
    field_and_matrices,
    field_and_vectors,
    fields,
    named_fields,
    signed_values,
)

GfFactory = Callable[[type[Field]], Any]


def gf_ints(arr: Any) -> list[int]:
    """Flattened Python ints of a galois array (``object`` dtype for 2^61 - 1)."""
    return [int(v) for v in np.asarray(arr).view(np.ndarray).ravel().tolist()]


def gf_array(gf_cls: Any, values: np.ndarray | list[Any]) -> Any:
    """A galois array from ints (``object`` dtype for 2^61 - 1, else ``int64``)."""
    arr = np.array(values, dtype=object)
    if gf_cls.order < 2**63:
        return gf_cls(arr.astype(np.int64))
    return gf_cls(arr)


def test_named_parameter_sets_have_the_documented_moduli() -> None:
    assert Field31.MODULUS == 2**31 - 1
    assert Field61.MODULUS == 2**61 - 1
    assert Field31.ENCODED_SIZE == 4
    assert Field61.ENCODED_SIZE == 8
    assert {"Field31": Field31, "Field61": Field61} == FIELDS
    assert sympy.isprime(Field31.MODULUS)
    assert sympy.isprime(Field61.MODULUS)


# ---------------------------------------------------------------- elementwise arithmetic


@given(field_and_vectors(count=2))
def test_add_sub_mul_div_match_galois(
    gf: GfFactory, fv: tuple[type[Field], list[list[int]]]
) -> None:
    field, (a, b) = fv
    g = gf(field)
    x, y = field(a), field(b)
    ga, gb = gf_array(g, a), gf_array(g, b)
    assert (x + y).to_ints() == gf_ints(ga + gb)
    assert (x - y).to_ints() == gf_ints(ga - gb)
    assert (y - x).to_ints() == gf_ints(gb - ga)
    assert (x * y).to_ints() == gf_ints(ga * gb)
    nz = [v for v in b if v]
    if nz:
        xs = field(a[: len(nz)])
        assert (xs / field(nz)).to_ints() == gf_ints(gf_array(g, a[: len(nz)]) / gf_array(g, nz))


@given(field_and_vectors(count=2))
def test_arithmetic_matches_python_ints(fv: tuple[type[Field], list[list[int]]]) -> None:
    field, (a, b) = fv
    p = field.MODULUS
    x, y = field(a), field(b)
    assert (x + y).to_ints() == [(u + v) % p for u, v in zip(a, b, strict=True)]
    assert (x - y).to_ints() == [(u - v) % p for u, v in zip(a, b, strict=True)]
    assert (x * y).to_ints() == [(u * v) % p for u, v in zip(a, b, strict=True)]
    assert (-x).to_ints() == [(-u) % p for u in a]
    pairs = [(u, v) for u, v in zip(a, b, strict=True) if v]
    if pairs:
        num, den = field([u for u, _ in pairs]), field([v for _, v in pairs])
        assert (num / den).to_ints() == [u * pow(v, -1, p) % p for u, v in pairs]


exponents = st.one_of(
    st.sampled_from([0, 1, 2, 3, 2**31 - 3, 2**31 - 2, 2**31 - 1, 2**61 - 3, 2**61 - 2, 2**64 + 3]),
    st.integers(0, 2**70),
)


@given(field_and_vectors(count=1, min_size=1), exponents)
def test_neg_inv_pow_match_galois(
    gf: GfFactory, fv: tuple[type[Field], list[list[int]]], e: int
) -> None:
    field, (a,) = fv
    p = field.MODULUS
    g = gf(field)
    x, ga = field(a), gf_array(g, a)
    assert (-x).to_ints() == gf_ints(-ga)
    # galois takes exponents below 2^63; x^e = x^((e-1) mod (p-1) + 1) for e >= 1 (Fermat).
    e_small = e if e < 2**62 else (e - 1) % (p - 1) + 1
    assert (x**e).to_ints() == gf_ints(ga**e_small)
    assert (x**e).to_ints() == [pow(v, e, p) for v in a]
    nz = [v for v in a if v]
    if nz:
        inv = field(nz).inv().to_ints()
        assert inv == gf_ints(np.reciprocal(gf_array(g, nz)))
        assert inv == [pow(v, -1, p) for v in nz]
        assert all(u * v % p == 1 for u, v in zip(inv, nz, strict=True))


@pytest.mark.parametrize("field", ALL_FIELDS, ids=lambda f: f.__name__)
def test_all_pairs_of_edge_values_match_python_ints(field: type[Field]) -> None:
    """Every pair of edge values, incl. the maximal product (p-1)*(p-1) ≡ 1."""
    p = field.MODULUS
    pairs = list(itertools.product(edge_values(field), repeat=2))
    x = field([u for u, _ in pairs])
    y = field([v for _, v in pairs])
    assert (x + y).to_ints() == [(u + v) % p for u, v in pairs]
    assert (x - y).to_ints() == [(u - v) % p for u, v in pairs]
    assert (x * y).to_ints() == [(u * v) % p for u, v in pairs]
    assert (field([p - 1]) * field([p - 1])).to_ints() == [1]
    assert (field([p - 1]) + field([p - 1])).to_ints() == [p - 2]
    assert (field([0]) - field([p - 1])).to_ints() == [1]


@pytest.mark.parametrize("field", ALL_FIELDS, ids=lambda f: f.__name__)
def test_inv_of_zero_raises_parameter_error(field: type[Field]) -> None:
    with pytest.raises(ParameterError, match="element 1 is 0"):
        field([1, 0, 2]).inv()
    with pytest.raises(ParameterError):
        field([0]) / field([0])


def test_negative_exponent_raises_parameter_error() -> None:
    with pytest.raises(ParameterError, match="-1"):
        Field31([2]) ** -1


# ---------------------------------------------------------------- sums


@given(field_and_vectors(count=1, min_size=1, max_size=60), st.integers(1, 6))
def test_sum_matches_galois_and_python_ints(
    gf: GfFactory, fv: tuple[type[Field], list[list[int]]], rows: int
) -> None:
    field, (a,) = fv
    p = field.MODULUS
    cols = len(a) // rows
    assume(cols >= 1)
    a = a[: rows * cols]
    x = field(a).reshape(rows, cols)
    g = gf(field)
    ga = gf_array(g, np.array(a, dtype=object).reshape(rows, cols))
    assert x.sum(axis=0).to_ints() == gf_ints(np.sum(ga, axis=0))
    assert x.sum(axis=1).to_ints() == gf_ints(np.sum(ga, axis=1))
    assert field(a).sum().to_ints() == [sum(a) % p]
    assert x.sum(axis=1).to_ints() == [sum(a[r * cols : (r + 1) * cols]) % p for r in range(rows)]


@pytest.mark.parametrize("field", ALL_FIELDS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("count", [1, 2, 3, 1000, 2**17 + 1])
def test_sum_of_many_maximal_values(field: type[Field], count: int) -> None:
    """Sums of many p - 1 (and of the largest all-ones pattern) are reduced exactly."""
    p = field.MODULUS
    for v in (p - 1, max(edge_values(field))):
        x = field(np.full(count, v, dtype=np.uint64))
        assert x.sum().to_ints() == [count * v % p]
        assert x.reshape(1, count).sum(axis=1).to_ints() == [count * v % p]


# ---------------------------------------------------------------- matrix product


@given(field_and_matrices())
def test_matmul_matches_galois(
    gf: GfFactory, fm: tuple[type[Field], list[list[int]], list[list[int]]]
) -> None:
    field, a, b = fm
    p = field.MODULUS
    g = gf(field)
    got = (field(a) @ field(b)).to_ints()
    assert got == gf_ints(gf_array(g, a) @ gf_array(g, b))
    expected = [
        sum(a[i][j] * b[j][c] for j in range(len(b))) % p
        for i in range(len(a))
        for c in range(len(b[0]))
    ]
    assert got == expected


def _matrix(field: type[Field], rows: int, cols: int, label: int) -> np.ndarray:
    """A seeded matrix with edge rows: row 0 all p-1, row 1 cycling edge values."""
    p = field.MODULUS
    xof = Xof(as_seed(bytes(32)), Tag("test.field.matmul", (p, rows, cols, label)))
    m = xof.uniform_ints(p, count=rows * cols).reshape(rows, cols)
    m[0, :] = p - 1
    if rows > 1:
        edges = np.array(edge_values(field), dtype=np.uint64)
        m[1, :] = np.resize(edges, cols)
    return m


@pytest.mark.parametrize("field", ALL_FIELDS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("inner", [1, 2, 10, 21, 100])
@pytest.mark.parametrize("cols", [3, 2047, 2048, 2049, 4097, 4 * 2048 + 1])
def test_matmul_matches_galois_across_block_boundaries(
    gf: GfFactory, field: type[Field], inner: int, cols: int
) -> None:
    """Column counts below, at and above the internal block width (2048).

    Five blocks (the last one a single column) also reach the path that
    splits blocks among threads.
    """
    a = _matrix(field, 3, inner, 0)
    b = _matrix(field, inner, cols, 1).T.copy().T  # also a non-C-contiguous right operand
    b[:, 0] = field.MODULUS - 1
    g = gf(field)
    got = (field(a) @ field(b)).values
    expected = gf_array(g, a) @ gf_array(g, b)
    assert got.shape == (3, cols)
    assert got.ravel().tolist() == gf_ints(expected)


def _boundary_sizes(top: int) -> list[int]:
    return sorted({1, 2, 3, *(2**j + d for j in range(2, top + 1) for d in (0, 1))})


# The limb widths change at powers of two: up to 2^20 for the named fields,
# not before 2^21 for the small ones (see _limb_plan in protocol/field.py).
MAXIMAL_CASES = [(f, n) for f in NAMED_FIELDS for n in _boundary_sizes(20)] + [
    (f, n) for f in SMALL_FIELDS for n in _boundary_sizes(13)
]


@pytest.mark.parametrize(
    ("field", "inner"), MAXIMAL_CASES, ids=[f"{f.__name__}-{n}" for f, n in MAXIMAL_CASES]
)
def test_matmul_of_maximal_matrices_is_exact(field: type[Field], inner: int) -> None:
    """All-(p-1) and all-ones-pattern products: the largest partial sums.

    ``(p-1)^2 ≡ 1``, so every entry of the all-(p-1) product is ``inner mod p``.
    """
    p = field.MODULUS
    for v in (p - 1, max(edge_values(field))):
        a = field(np.full((2, inner), v, dtype=np.uint64))
        b = field(np.full((inner, 2), v, dtype=np.uint64))
        got = (a @ b).to_ints()
        assert got == [inner * v * v % p] * 4
        if v == p - 1:
            assert got == [inner % p] * 4


@pytest.mark.parametrize("field", ALL_FIELDS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("inner", [2**j + d for j in (3, 7, 11, 13, 14, 16, 17) for d in (0, 1)])
def test_matmul_random_matches_python_ints_at_limb_plan_changes(
    field: type[Field], inner: int
) -> None:
    """Random matrices on both sides of inner sizes where the limb widths change."""
    p = field.MODULUS
    a = _matrix(field, 2, inner, 2)
    b = _matrix(field, inner, 3, 3)
    expected = (a.astype(object) @ b.astype(object)) % p
    assert (field(a) @ field(b)).to_ints() == [int(v) for v in expected.ravel()]


def test_matmul_of_wide_all_maximal_matrices_crosses_blocks() -> None:
    p = Field61.MODULUS
    a = Field61(np.full((2, 100), p - 1, dtype=np.uint64))
    b = Field61(np.full((100, 4 * 2048 + 5), p - 1, dtype=np.uint64))
    assert (a @ b).to_ints() == [100] * (2 * (4 * 2048 + 5))


@st.composite
def _wide_products(draw: st.DrawFn) -> tuple[type[Field], np.ndarray, np.ndarray]:
    """Field31 or Field61 operands ``(m×n) @ (n×d)`` with ``n <= 64``, seeded uniform
    entries overwritten at a drawn density by 0, 1 and p − 1; ``d`` is narrow or
    spans several column blocks (so that ``workers = 2`` runs threads)."""
    field = draw(named_fields)
    m = draw(st.integers(1, 4))
    n = draw(st.integers(1, 64))
    d = draw(st.one_of(st.integers(1, 40), st.sampled_from([4 * 2048 + 1, 5 * 2048 + 7])))
    seed = draw(st.integers(0, 2**32 - 1))
    density = draw(st.sampled_from([0.0, 0.3, 1.0]))
    p = field.MODULUS
    rng = np.random.default_rng(seed)  # seeded from the drawn example
    ops = []
    for shape in ((m, n), (n, d)):
        x = rng.integers(0, p, size=shape, dtype=np.uint64)
        edge = rng.random(shape) < density
        x[edge] = rng.choice(np.array([0, 1, p - 1], dtype=np.uint64), size=int(edge.sum()))
        ops.append(x)
    return field, ops[0], ops[1]


@settings(max_examples=60, deadline=None)
@given(_wide_products())
def test_matmul_equals_python_ints_and_galois_for_any_workers(
    gf: GfFactory, case: tuple[type[Field], np.ndarray, np.ndarray]
) -> None:
    """The product (limb-split float64 BLAS, blocks split among threads) is the
    exact product, for workers 1 and 2, with inner dimensions up to 64 and
    entries at 0, 1 and p − 1."""
    field, a, b = case
    p = field.MODULUS
    expected = [int(v) for v in ((a.astype(object) @ b.astype(object)) % p).ravel()]
    for workers in (1, 2):
        got = field(a).matmul(field(b), workers=workers)
        assert got.shape == (a.shape[0], b.shape[1])
        assert got.to_ints() == expected, workers
    if b.shape[1] <= 40:
        g = gf(field)
        assert gf_ints(gf_array(g, a) @ gf_array(g, b)) == expected


def test_matmul_rejects_bad_shapes() -> None:
    with pytest.raises(ParameterError, match=r"\(2, 3\) @ \(2, 3\)"):
        Field31(np.zeros((2, 3), dtype=np.uint64)) @ Field31(np.zeros((2, 3), dtype=np.uint64))
    with pytest.raises(ParameterError):
        Field31([1, 2]) @ Field31([1, 2])


# ---------------------------------------------------------------- fields never mix

BINARY_OPS: dict[str, Callable[[Field, Field], object]] = {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "truediv": operator.truediv,
    "eq": operator.eq,
    "ne": operator.ne,
    "stack": lambda x, y: type(x).stack([x, y]),
}


@pytest.mark.parametrize("op", list(BINARY_OPS), ids=str)
def test_mixing_fields_raises_field_mismatch(op: str) -> None:
    for f1, f2 in itertools.permutations(ALL_FIELDS, 2):
        with pytest.raises(FieldMismatchError, match=f"{f1.__name__}.*{f2.__name__}"):
            BINARY_OPS[op](f1([1, 2]), f2([1, 2]))


def test_mixing_fields_in_matmul_raises_field_mismatch() -> None:
    for f1, f2 in itertools.permutations(ALL_FIELDS, 2):
        with pytest.raises(FieldMismatchError):
            f1(np.ones((2, 2), dtype=np.uint64)) @ f2(np.ones((2, 2), dtype=np.uint64))


def test_arithmetic_with_non_field_operand_raises_field_mismatch() -> None:
    with pytest.raises(FieldMismatchError, match="int"):
        Field31([1]) + 1  # type: ignore[operator]
    with pytest.raises(FieldMismatchError, match="ndarray"):
        Field31([1]) * np.array([1], dtype=np.uint64)  # type: ignore[operator]


def test_elements_of_different_fields_never_compare_equal() -> None:
    for f1, f2 in itertools.permutations(ALL_FIELDS, 2):
        x, y = f1([0, 1]), f2([0, 1])
        with pytest.raises(FieldMismatchError):
            _ = x == y
    assert (Field31([1]) == [1]) is False
    assert (Field31([1]) == 1) is False


@given(fields, st.data())
def test_equality_is_elementwise_and_shape_aware(field: type[Field], data: st.DataObject) -> None:
    a = data.draw(st.lists(elements(field), min_size=1, max_size=8))
    b = data.draw(st.lists(elements(field), min_size=len(a), max_size=len(a)))
    assert (field(a) == field(b)) is (a == b)
    assert field(a) == field(list(a))
    if len(a) % 2 == 0:
        assert (field(a) == field(a).reshape(2, len(a) // 2)) is False


def test_distinct_field_classes_with_one_modulus_do_not_mix() -> None:
    """A field is its class, not just its modulus (the encodings may differ)."""

    class Wide31(Field):
        __slots__ = ()
        MODULUS = 2**31 - 1
        ENCODED_SIZE = 8

    with pytest.raises(FieldMismatchError, match="Field31 with Wide31"):
        Field31([1]) + Wide31([1])
    with pytest.raises(FieldMismatchError):
        _ = Wide31([1]) == Field31([1])
    assert Wide31([5]).encode() == (5).to_bytes(8, "little")


def test_field_for_modulus_returns_one_class_per_modulus() -> None:
    assert field_for_modulus(2**31 - 1) is Field31
    assert field_for_modulus(2**61 - 1) is Field61
    assert field_for_modulus(11) is field_for_modulus(11)
    assert field_for_modulus(11).MODULUS == 11
    assert field_for_modulus(11) is not field_for_modulus(13)


@pytest.mark.parametrize("modulus", [0, 1, 4, 9, 15, 561, 2**31, 2**32 + 1, 2**61 + 1])
def test_field_for_modulus_rejects_non_primes(modulus: int) -> None:
    with pytest.raises(ParameterError, match=str(modulus)):
        field_for_modulus(modulus)


@pytest.mark.parametrize(
    "modulus",
    [
        sympy.nextprime(2**32),
        sympy.prevprime(2**61 - 1),
        sympy.nextprime(2**61),
        sympy.prevprime(2**62),
    ],
)
def test_field_for_modulus_rejects_primes_without_fast_path(modulus: int) -> None:
    """Only primes below 2^32, and 2^61 - 1, are supported."""
    assert sympy.isprime(modulus)
    with pytest.raises(ParameterError, match=str(modulus)):
        field_for_modulus(modulus)


# ---------------------------------------------------------------- construction


@pytest.mark.parametrize("field", ALL_FIELDS, ids=lambda f: f.__name__)
def test_construction_accepts_exactly_the_ints_in_range(field: type[Field]) -> None:
    p = field.MODULUS
    edges = edge_values(field)
    assert field(edges).to_ints() == edges
    assert field(np.array(edges, dtype=np.uint64)).to_ints() == edges
    assert field([np.uint64(p - 1), np.int64(0)]).to_ints() == [p - 1, 0]
    assert field([[0, 1], [2, p - 1]]).shape == (2, 2)
    for bad in (-1, p, p + 1, 2**64, 2**70, -(2**64)):
        with pytest.raises(EncodingError, match=str(bad)):
            field([0, bad])
    for bad_arr in (np.array([p], dtype=np.uint64), np.array([-1], dtype=np.int64)):
        with pytest.raises(EncodingError, match=str(int(bad_arr[0]))):
            field(bad_arr)


@pytest.mark.parametrize(
    "bad",
    [1.0, 0.5, True, False, "1", None, b"\x01", np.float64(1.0), np.bool_(True), 1 + 0j],
    ids=repr,
)
def test_construction_rejects_non_integers(bad: object) -> None:
    with pytest.raises(EncodingError, match="integers"):
        Field31([1, bad])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "arr",
    [
        np.array([1.0]),
        np.array([True]),
        np.array([1], dtype=object),
        np.array(["1"]),
    ],
    ids=lambda a: str(a.dtype),
)
def test_construction_rejects_non_integer_arrays(arr: np.ndarray) -> None:
    with pytest.raises(EncodingError, match="integers"):
        Field61(arr)


# ---------------------------------------------------------------- immutability


def _constructed(field: type[Field]) -> list[Field]:
    x = field([[1, 2], [3, 4]])
    return [
        x,
        field(np.array([1, 2], dtype=np.uint64)),
        field.zeros(3),
        field.stack([x[0], x[1]]),
        x + x,
        x - x,
        -x,
        x * x,
        x**3,
        x.inv(),
        x @ x,
        x.sum(),
        x[0],
        x[1:],
        x.reshape(4),
        x.take_rows([1, 0]),
        field.decode(x.encode()),
        field.from_json(x.to_json()),
        field.signed_encode([-1, 1]),
    ]


@pytest.mark.parametrize("field", ALL_FIELDS, ids=lambda f: f.__name__)
def test_instances_are_immutable(field: type[Field]) -> None:
    for x in _constructed(field):
        assert x.values.dtype == np.uint64
        assert not x.values.flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            x.values[...] = 0
        with pytest.raises(TypeError):
            x[0] = x[0]  # type: ignore[index]


def test_construction_copies_its_input() -> None:
    src = np.array([1, 2, 3], dtype=np.uint64)
    x = Field31(src)
    src[0] = 7
    assert x.to_ints() == [1, 2, 3]


def test_instances_are_unhashable() -> None:
    with pytest.raises(TypeError):
        hash(Field31([1]))


# ---------------------------------------------------------------- signed encoding


@given(fields, st.data())
def test_signed_encode_round_trips_on_the_full_range(
    field: type[Field], data: st.DataObject
) -> None:
    p = field.MODULUS
    vals = data.draw(st.lists(signed_values(field), min_size=1, max_size=30))
    x = field.signed_encode(vals)
    assert x.to_ints() == [v % p for v in vals]
    assert x.signed_decode().tolist() == vals
    # The same through an int64 array.
    y = field.signed_encode(np.array(vals, dtype=np.int64))
    assert y.to_ints() == [v % p for v in vals]


@pytest.mark.parametrize("field", ALL_FIELDS, ids=lambda f: f.__name__)
def test_signed_decode_is_the_centred_representative(field: type[Field]) -> None:
    p = field.MODULUS
    half = (p - 1) // 2
    edges = sorted({v for v in (0, 1, half - 1, half, half + 1, p - 2, p - 1) if 0 <= v < p})
    got = field(edges).signed_decode().tolist()
    assert got == [v if v <= half else v - p for v in edges]
    assert field.signed_encode([half, -half]).to_ints() == [half, p - half]
    nonneg = np.array([0, half], dtype=np.uint64)
    assert field.signed_encode(nonneg).to_ints() == [0, half]


@pytest.mark.parametrize("field", ALL_FIELDS, ids=lambda f: f.__name__)
def test_signed_encode_rejects_out_of_range_naming_value_and_bounds(field: type[Field]) -> None:
    p = field.MODULUS
    half = (p - 1) // 2
    for bad in (half + 1, -half - 1, p, -p, 2**64, -(2**64)):
        with pytest.raises(EncodingError) as info:
            field.signed_encode([0, bad])
        msg = str(info.value)
        assert str(bad) in msg
        assert str(-half) in msg
        assert str(half) in msg
        assert "signed value 1" in msg
    for arr in (np.array([0, half + 1], dtype=np.uint64), np.array([0, -half - 1], dtype=np.int64)):
        with pytest.raises(EncodingError) as info:
            field.signed_encode(arr)
        assert str(int(arr[1])) in str(info.value)
        assert str(half) in str(info.value)


@pytest.mark.parametrize("bad", [1.0, True, "1", None], ids=repr)
def test_signed_encode_rejects_non_integers(bad: object) -> None:
    with pytest.raises(EncodingError, match="integer"):
        Field31.signed_encode([0, bad])  # type: ignore[arg-type]


# ---------------------------------------------------------------- byte encoding


@given(field_and_vectors(count=1, max_size=30))
def test_encode_is_fixed_width_little_endian(fv: tuple[type[Field], list[list[int]]]) -> None:
    field, (a,) = fv
    w = field.ENCODED_SIZE
    expected = b"".join(v.to_bytes(w, "little") for v in a)
    x = field(a)
    assert x.encode() == expected
    assert field.decode(expected) == x


@given(fields, st.data())
def test_encode_of_a_matrix_is_c_order(field: type[Field], data: st.DataObject) -> None:
    a = data.draw(st.lists(elements(field), min_size=6, max_size=6))
    x = field(a).reshape(2, 3)
    assert x.encode() == b"".join(v.to_bytes(field.ENCODED_SIZE, "little") for v in a)
    assert field.decode(x.encode()) == field(a)


@pytest.mark.parametrize("field", ALL_FIELDS, ids=lambda f: f.__name__)
def test_decode_rejects_elements_not_below_p(field: type[Field]) -> None:
    p = field.MODULUS
    w = field.ENCODED_SIZE
    for bad in sorted({p, p + 1, (1 << (8 * w)) - 1}):
        data = (1).to_bytes(w, "little") + bad.to_bytes(w, "little")
        with pytest.raises(EncodingError, match=str(bad)) as info:
            field.decode(data)
        assert str(p) in str(info.value)


@pytest.mark.parametrize("field", ALL_FIELDS, ids=lambda f: f.__name__)
def test_decode_rejects_lengths_not_a_multiple_of_the_width(field: type[Field]) -> None:
    w = field.ENCODED_SIZE
    assert field.decode(b"").shape == (0,)
    for n in range(1, 3 * w):
        if n % w:
            with pytest.raises(EncodingError, match=rf"multiple of {w} bytes; got {n}"):
                field.decode(bytes(n))


# ---------------------------------------------------------------- JSON


@given(field_and_vectors(count=1, max_size=30))
def test_json_round_trips_as_decimal_strings(fv: tuple[type[Field], list[list[int]]]) -> None:
    field, (a,) = fv
    x = field(a)
    assert x.to_json() == [str(v) for v in a]
    assert field.from_json(x.to_json()) == x


NON_CANONICAL = ["01", "00", "+1", "-1", " 1", "1 ", "1\n", "-0", "1.0", "", "0x1", "1e3",
                 "1_0", "١", "１", "0b1", "٠"]  # fmt: skip


@pytest.mark.parametrize("text", NON_CANONICAL, ids=repr)
def test_from_json_rejects_non_canonical_decimals(text: str) -> None:
    with pytest.raises(EncodingError, match="canonical") as info:
        Field31.from_json(["5", text])
    assert repr(text) in str(info.value)
    assert "element 1" in str(info.value)


@pytest.mark.parametrize("item", [1, 1.0, None, b"1", True, ["1"]], ids=repr)
def test_from_json_rejects_non_strings(item: object) -> None:
    with pytest.raises(EncodingError, match="canonical"):
        Field61.from_json(["1", item])  # type: ignore[list-item]


@pytest.mark.parametrize("field", ALL_FIELDS, ids=lambda f: f.__name__)
def test_from_json_rejects_values_not_below_p(field: type[Field]) -> None:
    p = field.MODULUS
    assert field.from_json([str(p - 1)]).to_ints() == [p - 1]
    for bad in (p, p + 1, 2**64, 2**64 + p):
        with pytest.raises(EncodingError, match=str(bad)):
            field.from_json([str(bad)])


def test_from_json_rejects_huge_decimal_with_encoding_error() -> None:
    """A canonical decimal far above p is an EncodingError, like any value >= p.

    Python refuses ``int()`` on strings of more than 4300 digits with a bare
    ``ValueError``; the parser must not leak that (spec/01-conventions.md#errors).
    """
    huge = "1" + "0" * 5000
    with pytest.raises(EncodingError):
        Field31.from_json([huge])


# ---------------------------------------------------------------- primality

CARMICHAEL = [561, 1105, 1729, 2465, 2821, 6601, 8911, 10585, 15841, 29341, 41041, 825265,
              321197185, 5394826801, 232250619601, 9746347772161]  # fmt: skip
# Strong pseudoprimes to many prime bases (the smallest to the first 7, 9 and 12 primes).
STRONG_PSEUDOPRIMES = [2047, 1373653, 25326001, 3215031751, 2152302898747, 3474749660383,
                       341550071728321, 3825123056546413051, 318665857834031151167461]  # fmt: skip


def _special_integers() -> list[int]:
    primes = [2, 3, 5, 7, 41, 43, 2**31 - 1, 2**61 - 1, 65537, 4294967291]
    near = [sympy.prevprime(2**62), sympy.nextprime(2**40), sympy.prevprime(2**32)]
    squares = [q * q for q in (3, 41, 43, 65537, 2**31 - 1, 1000003, 4294967291)]
    semis = [
        sympy.prevprime(2**31) * sympy.nextprime(2**31),
        sympy.prevprime(2**30) * sympy.prevprime(2**32),
        1000003 * sympy.prevprime(2**42),
        sympy.prevprime(2**20) * sympy.prevprime(2**41),
    ]
    small = list(range(-5, 2000))
    return small + primes + near + squares + semis + CARMICHAEL + STRONG_PSEUDOPRIMES


def test_is_prime_agrees_with_sympy_on_special_integers() -> None:
    ints = _special_integers()
    assert [is_prime(n) for n in ints] == [sympy.isprime(n) for n in ints]
    assert not any(is_prime(n) for n in CARMICHAEL + STRONG_PSEUDOPRIMES)


@given(st.one_of(st.integers(-10, 2**62), st.integers(2**40, 2**62).map(lambda n: n | 1)))
def test_is_prime_agrees_with_sympy(n: int) -> None:
    assert is_prime(n) == sympy.isprime(n)


@given(
    st.integers(2**15, 2**31).map(sympy.nextprime), st.integers(2**15, 2**31).map(sympy.nextprime)
)
def test_is_prime_rejects_semiprimes(q: int, r: int) -> None:
    assert not is_prime(q * r)
    assert is_prime(q)


def test_is_prime_refuses_beyond_its_deterministic_bound() -> None:
    bound = 3_317_044_064_679_887_385_961_981  # Sorenson & Webster 2015: psi_13
    assert not sympy.isprime(bound)
    assert is_prime(bound - 1) is False
    with pytest.raises(ParameterError, match=str(bound)):
        is_prime(bound)


@pytest.mark.parametrize("field", [F11, F13], ids=lambda f: f.__name__)
def test_small_field_arithmetic_is_exhaustively_correct(field: type[Field]) -> None:
    """All p^2 pairs in a tiny field, against Python ints."""
    p = field.MODULUS
    pairs = list(itertools.product(range(p), repeat=2))
    x, y = field([u for u, _ in pairs]), field([v for _, v in pairs])
    assert (x * y).to_ints() == [u * v % p for u, v in pairs]
    assert (x + y).to_ints() == [(u + v) % p for u, v in pairs]
    assert (x - y).to_ints() == [(u - v) % p for u, v in pairs]
    assert field(list(range(1, p))).inv().to_ints() == [pow(u, -1, p) for u in range(1, p)]


@pytest.mark.parametrize("field", ALL_FIELDS, ids=lambda f: f.__name__)
def test_sum_of_a_vector_is_a_0d_array_computed_without_overflow_warnings(
    field: type[Field],
) -> None:
    """``sum()`` of a 1-D vector is a 0-d element array, and wraps no numpy scalar.

    The modular reductions rely on uint64 wrap-around, which numpy performs
    silently on arrays but reports as ``RuntimeWarning: overflow`` on scalars;
    under ``-W error`` (a common CI setting) that warning is an exception.
    """
    x = field([1, 2])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = x.sum()
    assert isinstance(s.values, np.ndarray)
    assert s.shape == ()
    assert s.to_ints() == [3]


@pytest.mark.parametrize("op", ["__add__", "__sub__", "__mul__"])
def test_elementwise_operands_of_different_shapes_are_refused(op: str) -> None:
    """No broadcasting: spec/02-field.md#arithmetic."""
    a, b = Field31([1, 2]), Field31([1])
    with pytest.raises(ParameterError, match="equal shapes"):
        getattr(a, op)(b)
    with pytest.raises(ParameterError, match="equal shapes"):
        getattr(Field31([[1, 2]]), op)(Field31([1, 2]))


@given(
    st.sampled_from([Field31, Field61, field_for_modulus(97)]),
    st.lists(
        st.one_of(
            st.integers(0, 2**64).map(str),
            st.sampled_from(["0", "00", "01", "-1", "+1", " 1", "1 ", "", "1e3", "٣"]),
        ),
        max_size=12,
    ),
)
def test_from_json_agrees_with_the_element_by_element_definition(
    field: type[Field], items: list[str]
) -> None:
    """The vectorized fast path and the named-error slow path define one function.

    Oracle: each item must be a canonical ASCII decimal below p
    (spec/02-field.md#serialization), checked here with Python ints.
    """
    p = field.MODULUS

    def ok(s: str) -> bool:
        return s.isascii() and s.isdigit() and (s == "0" or s[0] != "0") and int(s) < p

    if all(ok(s) for s in items):
        assert field.from_json(items).to_ints() == [int(s) for s in items]
    else:
        first = next(i for i, s in enumerate(items) if not ok(s))
        with pytest.raises(EncodingError, match=rf"element {first} |element {first}\b"):
            field.from_json(items)


@pytest.mark.parametrize("fld", [Field31, Field61], ids=["Field31", "Field61"])
@given(data=st.data())
def test_total_of_compact_parts_is_the_integer_sum_mod_p(fld: type[Field], data: Any) -> None:
    """``Field.total`` over parts held as uint32 or uint64 equals Python's exact sum mod p."""
    length = data.draw(st.integers(1, 6))
    count = data.draw(st.integers(0, 12))
    rows = data.draw(
        st.lists(
            st.lists(st.integers(0, fld.MODULUS - 1), min_size=length, max_size=length),
            min_size=count,
            max_size=count,
        )
    )
    small = fld.MODULUS < 1 << 32 and data.draw(st.booleans())
    parts = [np.array(r, dtype=np.uint32 if small else np.uint64) for r in rows]
    expected = [sum(r[c] for r in rows) % fld.MODULUS for c in range(length)]
    assert fld.total(parts, length).to_ints() == expected
