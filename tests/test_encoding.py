"""The encoding layer against independent oracles, exact enumerations and its proof notes.

Spec: spec/05-encoding.md

Oracles, none of which calls the code under test for the quantity checked:

- a scalar, pure-Python implementation of the spec's encode and decode
  (explicit butterfly loops, scalar XOF draws, Python floats), which must
  agree bit for bit;
- Sylvester's Hadamard matrix, for the fast transform;
- mpmath at high precision, for the norm bound ``T``, the logarithm
  brackets and the noise tails;
- sympy, for the labelled identities of the proof notes;
- exact enumeration (rational arithmetic) of every rounding outcome, for the
  failure probability of an attempt and the mean-square rounding error.

Randomness comes from fixed seeds; statistical checks use thresholds whose
failure probability is below 10^-9.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import mpmath  # type: ignore[import-untyped]
import numpy as np
import pytest
import sympy
from hypothesis import given
from hypothesis import strategies as st

from protocol.encoding import (
    MAX_ATTEMPTS,
    ROTATION_TAG,
    EncodingParams,
    _ln_bounds,
    check_field,
    choose_field,
    clip_and_scale,
    conditional_round,
    decode_sum,
    encode,
    fwht,
    l1_sensitivity,
    l2_sensitivity,
    linf_sensitivity,
    noise_tail,
    norm_bound_sq,
    randomized_round,
    rotate,
    rotation_signs,
    rounding_tag,
    unrotate,
)
from protocol.errors import (
    ERRORS_BY_NAME,
    EncodingError,
    FieldMismatchError,
    ParameterError,
)
from protocol.field import FIELDS, Field, Field31, Field61
from protocol.xof import Seed, Tag, Xof, as_seed, derive_seed
from reference.oracle import encoding as vectors_encoding
from tests.strategies import seeds

ROOT_SEED = as_seed(bytes(32))
BETA_DEFAULT = math.exp(-0.5)
TWO53 = 1 << 53


def _seed(i: int) -> Seed:
    return derive_seed(ROOT_SEED, Tag("test.encoding", (i,)))


def _params(
    field: type[Field] = Field61,
    *,
    clip: float = 1.0,
    scale: float = 0.01,
    beta: float = BETA_DEFAULT,
    rotate: bool = True,
) -> EncodingParams:
    return EncodingParams(field, clip=clip, scale=scale, beta=beta, rotate=rotate)


# ---------------------------------------------------------------- strategies (encoding only)

coordinates = st.one_of(
    st.sampled_from([0.0, -0.0, 0.5, -0.5, 1.0, -1.0, 2.5, 1e-300, -1e-20, 7.75]),
    st.floats(min_value=-50.0, max_value=50.0, allow_nan=False, allow_infinity=False),
)


@st.composite
def updates(draw: st.DrawFn, *, max_length: int = 12) -> np.ndarray:
    length = draw(st.integers(1, max_length))
    values = draw(st.lists(coordinates, min_size=length, max_size=length))
    shape = draw(st.sampled_from([(length,), (1, length)]))
    return np.array(values, dtype=np.float64).reshape(shape)


encoding_params = st.builds(
    EncodingParams,
    field=st.sampled_from([Field31, Field61]),
    clip=st.one_of(st.sampled_from([0.5, 1.0, 5.0, 50.0]), st.floats(0.01, 100.0)),
    scale=st.sampled_from([1.0 / 64, 0.01, 0.1, 0.3, 1.0]),
    beta=st.sampled_from([BETA_DEFAULT, 0.05, 0.5, 0.9, 1e-6]),
    rotate=st.booleans(),
)


# ---------------------------------------------------------------- independent scalar oracle


def _scalar_fwht(z: list[float]) -> list[float]:
    z = list(z)
    n, h = len(z), 1
    while h < n:
        for j in range(0, n, 2 * h):
            for i in range(h):
                a, b = z[j + i], z[j + i + h]
                z[j + i], z[j + i + h] = a + b, a - b
        h *= 2
    return z


def _scalar_signs(seed: bytes, count: int) -> list[float]:
    xof = Xof(as_seed(seed), Tag("encoding.rotation"))
    return [1.0 if xof.uniform_int(2) == 0 else -1.0 for _ in range(count)]


def _scalar_scaled(update: np.ndarray, params: EncodingParams, rotation_seed: bytes) -> list[float]:
    """Steps 1-3 of the spec, one Python float operation at a time."""
    x = [float(v) for v in update.reshape(-1)]
    d = len(x)
    if params.rotate:
        d_pad = 1 << (d - 1).bit_length()
        signs = _scalar_signs(rotation_seed, d_pad)
        z = [(-v if s < 0 else v) for v, s in zip(x + [0.0] * (d_pad - d), signs, strict=True)]
        s = math.sqrt(d_pad)
        x = [v / s for v in _scalar_fwht(z)]
    total = 0.0
    for v in x:
        total += v * v
    norm = math.sqrt(total)
    if norm > params.clip:
        f = params.clip / norm
        x = [v * f for v in x]
    return [v / params.scale for v in x]


def _scalar_attempt(y: Sequence[float], seed: bytes, attempt: int) -> list[int]:
    xof = Xof(as_seed(seed), Tag("encoding.rounding", (attempt,)))
    out = []
    for v in y:
        low = math.floor(v)
        t = round((v - low) * 2.0**53)  # round() is ties-to-even
        out.append(low + (1 if xof.uniform_int(TWO53) < t else 0))
    return out


def _scalar_decode(
    ints: Sequence[int], params: EncodingParams, seed: bytes, length: int
) -> list[float]:
    z = [float(k) * params.scale for k in ints]
    if params.rotate:
        s = math.sqrt(len(z))
        z = [v / s for v in _scalar_fwht(z)]
        z = [(-v if sg < 0 else v) for v, sg in zip(z, _scalar_signs(seed, len(z)), strict=True)]
    return z[:length]


def _thresholds(y: Sequence[float]) -> list[tuple[int, int]]:
    """(floor, t) per coordinate, in Python floats."""
    out = []
    for v in y:
        low = math.floor(v)
        out.append((low, round((v - low) * 2.0**53)))
    return out


@given(updates(), encoding_params, seeds, seeds)
def test_encode_and_decode_match_an_independent_scalar_implementation(
    update: np.ndarray, params: EncodingParams, rotation_seed: bytes, rounding_seed: bytes
) -> None:
    """The vectorized encode/decode equal the spec's steps done one float at a time."""
    enc = encode(
        update, params=params, rotation_seed=Seed(rotation_seed), rounding_seed=Seed(rounding_seed)
    )
    y = _scalar_scaled(update, params, rotation_seed)
    bound = norm_bound_sq(params, length=update.size)
    for attempt in range(MAX_ATTEMPTS):
        ints = _scalar_attempt(y, rounding_seed, attempt)
        if sum(k * k for k in ints) <= bound:
            break
    p = params.field.MODULUS
    assert enc.values.to_ints() == [k % p for k in ints]
    assert enc.attempts == attempt + 1
    assert enc.norm_sq == sum(k * k for k in ints) <= enc.norm_bound_sq == bound
    decoded = decode_sum(
        enc.values, params=params, rotation_seed=Seed(rotation_seed), length=update.size
    )
    want = _scalar_decode(ints, params, rotation_seed, update.size)
    assert decoded.tolist() == want  # bit for bit


# ---------------------------------------------------------------- parameters


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"field": Field}, "concrete Field"),
        ({"field": int}, "concrete Field"),
        ({"clip": 0.0}, "clip"),
        ({"clip": -1.0}, "clip"),
        ({"clip": math.nan}, "clip"),
        ({"clip": math.inf}, "clip"),
        ({"clip": True}, "clip"),
        ({"clip": 10**400}, "clip"),
        ({"scale": 0}, "scale"),
        ({"scale": "1"}, "scale"),
        ({"beta": 0.0}, "beta"),
        ({"beta": 1.0}, "beta"),
        ({"beta": 1.5}, "beta"),
        ({"beta": math.nan}, "beta"),
        ({"beta": 1}, "beta"),
        ({"rotate": 1}, "rotate"),
    ],
)
def test_params_reject_bad_values_naming_them(kwargs: dict[str, Any], needle: str) -> None:
    base: dict[str, Any] = {
        "field": Field31,
        "clip": 1.0,
        "scale": 0.1,
        "beta": 0.5,
        "rotate": True,
    }
    base.update(kwargs)
    with pytest.raises(ParameterError, match=needle) as info:
        EncodingParams(**base)
    bad = next(iter(kwargs.values()))
    if not isinstance(bad, type):
        assert repr(bad)[:20] in str(info.value)


def test_params_store_binary64_and_pad_to_powers_of_two() -> None:
    p = EncodingParams(Field31, clip=2, scale=1, beta=0.5)
    assert type(p.clip) is float and type(p.scale) is float and p.clip == 2.0
    assert [p.padded_length(d) for d in (1, 2, 3, 4, 5, 8, 9, 1000)] == [1, 2, 4, 4, 8, 8, 16, 1024]
    q = EncodingParams(Field31, clip=2, scale=1, beta=0.5, rotate=False)
    assert [q.padded_length(d) for d in (1, 3, 1000)] == [1, 3, 1000]
    for bad in (0, -1, 2.0, True):
        with pytest.raises(ParameterError, match="length"):
            p.padded_length(bad)  # type: ignore[arg-type]


# ---------------------------------------------------------------- rotation


def _sylvester(n: int) -> np.ndarray:
    h = np.ones((1, 1))
    while h.shape[0] < n:
        h = np.block([[h, h], [h, -h]])
    return h


@pytest.mark.parametrize("k", range(8))
def test_fwht_is_the_sylvester_hadamard_product(k: int) -> None:
    """Integer inputs keep every intermediate exact, so equality is exact."""
    n = 1 << k
    x = Xof(_seed(1), Tag("t", (k,))).uniform_ints(2001, count=n).astype(np.float64) - 1000
    assert fwht(x).tolist() == (_sylvester(n) @ x).tolist()
    assert fwht(fwht(x)).tolist() == (n * x).tolist()  # H H = n I


@pytest.mark.parametrize("n", [0, 3, 6, 12])
def test_fwht_rejects_lengths_that_are_not_powers_of_two(n: int) -> None:
    with pytest.raises(ParameterError, match="power-of-two"):
        fwht(np.zeros(n))


def test_rotation_signs_are_the_documented_xof_draws() -> None:
    """Spec example: all-zero seed, d_pad = 8; and the low bit of each stream byte."""
    assert rotation_signs(ROOT_SEED, 8).tolist() == [-1, 1, 1, -1, -1, 1, -1, -1]
    raw = Xof(ROOT_SEED, Tag("encoding.rotation")).next_bytes(8)
    assert raw.hex() == "eb60ccc7b7be7931"
    assert [1 - 2 * (b & 1) for b in raw] == rotation_signs(ROOT_SEED, 8).tolist()
    assert rotation_signs(_seed(2), 64).tolist() == _scalar_signs(_seed(2), 64)


@pytest.mark.parametrize("d_pad", [1, 2, 4, 8, 16, 32, 64])
def test_rotation_is_orthogonal_and_invertible(d_pad: int) -> None:
    """R^T R = I to 1e-12 (R built column by column), and unrotate inverts rotate."""
    seed = _seed(3)
    columns = [rotate(np.eye(d_pad)[i], seed=seed) for i in range(d_pad)]
    r = np.stack(columns, axis=1)
    assert np.abs(r.T @ r - np.eye(d_pad)).max() < 1e-12
    # R = (H / sqrt(d_pad)) D, exactly as a matrix.
    want = _sylvester(d_pad) / math.sqrt(d_pad) * rotation_signs(seed, d_pad)
    assert np.abs(r - want).max() < 1e-15
    back = np.stack([unrotate(c, seed=seed) for c in columns], axis=1)
    assert np.abs(back - np.eye(d_pad)).max() < 1e-12


@given(updates(max_length=40), seeds)
def test_rotation_preserves_the_norm_and_inverts(update: np.ndarray, seed: bytes) -> None:
    x = update.reshape(-1)
    y = rotate(x, seed=Seed(seed))
    norm = float(np.linalg.norm(x))
    assert len(y) == 1 << (len(x) - 1).bit_length()
    assert abs(float(np.linalg.norm(y)) - norm) <= 1e-12 * (1 + norm)
    back = unrotate(y, seed=Seed(seed))
    assert np.abs(back[: len(x)] - x).max() <= 1e-12 * (1 + norm)
    assert np.abs(back[len(x) :]).max(initial=0.0) <= 1e-12 * (1 + norm)


# ---------------------------------------------------------------- clip and scale


@given(updates(max_length=30), encoding_params)
def test_clip_and_scale_follow_the_spec_and_bound_the_norm(
    update: np.ndarray, params: EncodingParams
) -> None:
    x = update.reshape(-1)
    no_rotation = EncodingParams(
        params.field, clip=params.clip, scale=params.scale, beta=params.beta, rotate=False
    )
    y = clip_and_scale(x, clip=params.clip, scale=params.scale)
    assert y.tolist() == _scalar_scaled(update, no_rotation, bytes(32))
    # Exact norm of the binary64 result against L (1 + eta); proofs_notes (E4).
    d = len(x)
    u = Fraction(1, TWO53)
    gamma_d = d * u / (1 - d * u)
    bound = Fraction(params.clip) / Fraction(params.scale)
    norm_sq = sum(Fraction(float(v)) ** 2 for v in y)
    eta_sq = ((1 + u) ** 3 / (1 - u)) ** 2 / (1 - gamma_d)
    assert norm_sq <= bound * bound * eta_sq


def test_clip_and_scale_report_overflow() -> None:
    with pytest.raises(EncodingError, match="overflows"):
        clip_and_scale(np.array([1e200, 1e200]), clip=1.0, scale=1.0)
    with pytest.raises(EncodingError, match="scale"):
        clip_and_scale(np.array([1e150]), clip=1e300, scale=1e-300)


# ---------------------------------------------------------------- rounding (rounding-unbiased.md)

tricky_reals = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, min_value=-(2.0**40), max_value=2.0**40),
    st.floats(min_value=-1.0, max_value=1.0, allow_subnormal=True),
    st.integers(-(2**20), 2**20).flatmap(
        lambda k: st.sampled_from([k + 2.0**-60, k - 2.0**-60, k + 0.5, k - 2.0**-53, float(k)])
    ),
)


@given(tricky_reals)
def test_threshold_is_the_fractional_part_to_2_pow_minus_54(y: float) -> None:
    """proofs_notes/rounding-unbiased.md (E1), (E4), with exact rationals."""
    ((low, t),) = _thresholds([y])
    assert 0 <= t <= TWO53
    v = low + Fraction(t, TWO53)
    exact = Fraction(y)
    assert abs(v - exact) <= Fraction(1, 2 * TWO53)
    if (exact * TWO53).denominator == 1:
        assert v == exact
    if abs(y) >= 0.5:
        assert v == exact
    assert low <= v <= low + 1


@given(st.lists(tricky_reals, min_size=1, max_size=30), seeds, st.integers(0, 70))
def test_rounding_is_floor_plus_comparison_with_the_stream(
    ys: list[float], seed: bytes, attempt: int
) -> None:
    """randomized_round = floor(y) + [u < t], u replayed from the attempt's stream."""
    y = np.array(ys)
    got = randomized_round(y, seed=Seed(seed), attempt=attempt)
    assert got.tolist() == _scalar_attempt(ys, seed, attempt)
    for v, k in zip(ys, got.tolist(), strict=True):
        assert k in (math.floor(v), math.ceil(v))


def test_rounding_matches_the_spec_example() -> None:
    y = np.array([2.75, -2.75, 0.1, -0.1, -1e-20, 3.0])
    assert _thresholds(y.tolist()) == [
        (2, 3 << 51),
        (-3, 1 << 51),
        (0, 900719925474099),
        (-1, 8106479329266893),
        (-1, TWO53),
        (3, 0),
    ]
    u = Xof(ROOT_SEED, rounding_tag(0)).uniform_ints(TWO53, count=6).tolist()
    assert u == [
        5302789494037514,
        5368528600405470,
        2838063734091059,
        4557515486199932,
        2020707867525863,
        1865450893045303,
    ]
    assert randomized_round(y, seed=ROOT_SEED, attempt=0).tolist() == [3, -3, 0, 0, 0, 3]


@pytest.mark.parametrize("y", [3 + 2.0**-20, 0.1, 0.25, -6.5, 0.7, -0.3, 11 - 2.0**-20, -1e-3])
def test_rounding_up_frequency_matches_the_fractional_part(y: float) -> None:
    """proofs_notes/rounding-unbiased.md (E1)-(E3), statistically.

    N = 200 000 independent roundings of the same value (one attempt on a
    vector of N copies). By Hoeffding, P(|ups - N q| >= s) <= 2 exp(-2 s² / N),
    which is below 1e-9 for s = sqrt(N ln(2e9) / 2) ≈ 1464: the test cannot
    flake (and its seed is fixed).
    """
    n = 200_000
    ((low, t),) = _thresholds([y])
    q = t / TWO53
    got = randomized_round(np.full(n, y), seed=_seed(4), attempt=int(t % 1000))
    assert set(np.unique(got).tolist()) <= {low, low + 1}
    ups = int((got - low).sum())
    slack = math.sqrt(n * math.log(2e9) / 2)
    assert abs(ups - n * q) < slack
    frac = ups / n  # sample variance of a Bernoulli sample is frac (1 - frac)
    assert abs(frac * (1 - frac) - q * (1 - q)) < slack / n
    assert abs(q - (y - math.floor(y))) <= 2.0**-54


def test_rounding_moments_identities() -> None:
    """proofs_notes/rounding-unbiased.md (E2), (E3): for B ~ Bernoulli(q), ℓ + B has
    mean ℓ + q and variance q(1 - q); q(1 - q) <= 1/4 with equality only at 1/2."""
    q, low = sympy.symbols("q l", real=True)
    mean = (1 - q) * low + q * (low + 1)
    var = (1 - q) * (low - mean) ** 2 + q * (low + 1 - mean) ** 2
    assert sympy.simplify(mean - (low + q)) == 0
    assert sympy.simplify(var - q * (1 - q)) == 0
    assert sympy.factor(sympy.Rational(1, 4) - q * (1 - q)) == (2 * q - 1) ** 2 / 4
    assert sympy.solve(sympy.Rational(1, 4) - q * (1 - q), q) == [sympy.Rational(1, 2)]


def test_randomized_round_rejects_out_of_range_and_malformed_input() -> None:
    for bad in (np.array([2.0**62]), np.array([-(2.0**63)]), np.array([math.nan])):
        with pytest.raises(EncodingError, match="2\\^62"):
            randomized_round(bad, seed=ROOT_SEED, attempt=0)
    for malformed in (np.zeros((2, 2)), np.zeros(3, dtype=np.float32), [0.5]):
        with pytest.raises(ParameterError, match="1-D float64"):
            randomized_round(malformed, seed=ROOT_SEED, attempt=0)  # type: ignore[arg-type]


# ---------------------------------------------------------------- conditional rounding


@given(updates(), encoding_params, seeds, seeds)
def test_conditional_rounding_always_respects_the_bound(
    update: np.ndarray, params: EncodingParams, rotation_seed: bytes, rounding_seed: bytes
) -> None:
    """proofs_notes/conditional-rounding-bound.md claim 1, through encode."""
    enc = encode(
        update, params=params, rotation_seed=Seed(rotation_seed), rounding_seed=Seed(rounding_seed)
    )
    ints = enc.values.signed_decode().tolist()
    assert len(ints) == params.padded_length(update.size)
    assert sum(k * k for k in ints) == enc.norm_sq <= enc.norm_bound_sq
    assert enc.norm_bound_sq == norm_bound_sq(params, length=update.size)
    assert max(abs(k) for k in ints) <= linf_sensitivity(params, length=update.size)
    assert sum(abs(k) for k in ints) <= l1_sensitivity(params, length=update.size)
    assert 1 <= enc.attempts <= MAX_ATTEMPTS


def test_conditional_rounding_returns_the_first_attempt_within_the_bound() -> None:
    """Tight bounds force retries; the result is the first replayed attempt that fits."""
    y = np.array([0.5, -1.5, 2.5, -0.5, 1.5, -2.5, 0.5, 3.5])
    seen_retry = False
    for i in range(30):
        seed = _seed(100 + i)
        norms = [
            sum(k * k for k in _scalar_attempt(y.tolist(), seed, a)) for a in range(MAX_ATTEMPTS)
        ]
        bound = sorted(norms)[len(norms) // 4]  # about a quarter of the attempts fit
        first = next(a for a, s in enumerate(norms) if s <= bound)
        got = conditional_round(y, seed=seed, bound_sq=bound)
        assert got.attempts == first + 1
        assert got.norm_sq == norms[first]
        assert got.values.tolist() == _scalar_attempt(y.tolist(), seed, first)
        seen_retry |= first > 0
    assert seen_retry


def test_conditional_rounding_gives_up_after_max_attempts() -> None:
    y = np.array([0.5, 0.5])  # squared norm >= 0 always, > 0 unless both round down
    with pytest.raises(EncodingError, match=f"failed {MAX_ATTEMPTS} attempts.*bound 0"):
        conditional_round(np.array([1.5, 2.5]), seed=ROOT_SEED, bound_sq=0)
    with pytest.raises(EncodingError, match="failed 3 attempts"):
        conditional_round(np.array([7.25]), seed=ROOT_SEED, bound_sq=1, max_attempts=3)
    assert conditional_round(y, seed=ROOT_SEED, bound_sq=2).norm_sq <= 2
    for bad in (-1, 1.0):
        with pytest.raises(ParameterError, match="bound_sq"):
            conditional_round(y, seed=ROOT_SEED, bound_sq=bad)  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="max_attempts"):
        conditional_round(y, seed=ROOT_SEED, bound_sq=2, max_attempts=0)


# ---------------------------------------------------------------- T (conditional-rounding-bound.md)


def _mp(value: float | Fraction) -> mpmath.mpf:
    q = Fraction(value)
    return mpmath.mpf(q.numerator) / q.denominator


def _exact_bounds(clip: float, scale: float, beta: float, d: int) -> tuple[Any, Any]:
    """(B1, B2) at 120 significant digits, from the exact rationals of the inputs."""
    with mpmath.workdps(120):
        big_l = _mp(Fraction(clip) / Fraction(scale))
        k = mpmath.sqrt(2 * mpmath.log(1 / _mp(beta)))
        sd = mpmath.sqrt(d)
        return (big_l + sd) ** 2, big_l**2 + mpmath.mpf(d) / 4 + k * (big_l + sd / 2)


NORM_BOUND_GRID = [
    (1.0, 0.01, BETA_DEFAULT, 1024),  # binary64 B2 rounds up to 10372.0; exact floor is 10371
    (1.0, 0.01, BETA_DEFAULT, 1),
    (4.0, 1.0, 0.5, 4),  # square d_pad: B1 = 36 exactly
    (3.0, 1.0, 1e-300, 9),  # tiny beta: B1 is the minimum
    (3.0, 1.0, 1e-300, 16),
    (5.0, 0.5, 1e-9, 10),
    (1.0, 1e-6, 0.999, 1 << 20),
    (0.1, 0.3, 0.3, 7),
    (1e3, 1e-3, 0.9, 3),
    (2.5, 2.5, 0.5, 2),
]


@pytest.mark.parametrize(("clip", "scale", "beta", "d"), NORM_BOUND_GRID)
def test_norm_bound_is_the_floor_of_the_exact_bound(
    clip: float, scale: float, beta: float, d: int
) -> None:
    b1, b2 = _exact_bounds(clip, scale, beta, d)
    want = int(mpmath.floor(min(b1, b2)))
    params = EncodingParams(Field61, clip=clip, scale=scale, beta=beta, rotate=False)
    assert norm_bound_sq(params, length=d) == want
    if (clip, d) == (1.0, 1024):
        big_l = clip / scale
        naive = big_l**2 + d / 4 + math.sqrt(2 * math.log(1 / beta)) * (big_l + math.sqrt(d) / 2)
        assert naive == 10372.0 and want == 10371


@pytest.mark.parametrize("x", [Fraction(1), Fraction(2), Fraction(3, 7), Fraction(10**30, 3)])
def test_ln_bounds_bracket_the_logarithm(x: Fraction) -> None:
    with mpmath.workdps(80):
        exact = mpmath.log(_mp(x))
        for bits in (8, 64, 200):
            lo, hi = _ln_bounds(x, bits)
            assert _mp(lo) <= exact <= _mp(hi)
            assert hi - lo <= Fraction(bits, 1 << bits) + Fraction(1, 1 << (bits - 8))


def test_inflated_bound_in_integer_units_is_the_source_bound_over_gamma() -> None:
    """proofs_notes/conditional-rounding-bound.md (E1): REFERENCES' unscaled Δ₂ branches,
    squared and divided by γ², are B1 and B2 with L = c/γ."""
    c, g, d, beta = sympy.symbols("c gamma d beta", positive=True)
    k = sympy.sqrt(2 * sympy.log(1 / beta))
    big_l = c / g
    source_1 = c + g * sympy.sqrt(d)
    source_2_sq = c**2 + g**2 * d / 4 + k * g * (c + g * sympy.sqrt(d) / 2)
    b1 = (big_l + sympy.sqrt(d)) ** 2
    b2 = big_l**2 + d / 4 + k * (big_l + sympy.sqrt(d) / 2)
    assert sympy.simplify(source_1**2 / g**2 - b1) == 0
    assert sympy.simplify(source_2_sq / g**2 - b2) == 0


def test_hoeffding_exponent_at_the_bound_is_log_one_over_beta() -> None:
    """proofs_notes/conditional-rounding-bound.md (E2) and the width bound of claim 4."""
    big_l, d, beta = sympy.symbols("L d beta", positive=True)
    k = sympy.sqrt(2 * sympy.log(1 / beta))
    s = k * (big_l + sympy.sqrt(d) / 2)
    exponent = 2 * s**2 / (2 * big_l + sympy.sqrt(d)) ** 2
    assert sympy.simplify(exponent - sympy.log(1 / beta)) == 0
    assert sympy.simplify(sympy.exp(-exponent) - beta) == 0
    # Σ (2|v_i| + 1)² = 4M² + 4‖v‖₁ + d <= (2M + sqrt(d))² because ‖v‖₁ <= sqrt(d) M:
    # for d = 3 the gap is 4 (sqrt(3) M - ‖v‖₁), and (sqrt(3) M)² - ‖v‖₁² is a sum of squares.
    a = sympy.symbols("a0:3", nonnegative=True)
    m = sympy.sqrt(sum(x**2 for x in a))
    widths = sum((2 * x + 1) ** 2 for x in a)
    assert sympy.expand(widths - (4 * m**2 + 4 * sum(a) + 3)) == 0
    gap = sympy.expand(3 * m**2 - sum(a) ** 2)
    assert gap == sympy.expand(sum((a[i] - a[j]) ** 2 for i, j in ((0, 1), (0, 2), (1, 2))))


def _outcomes(y: Sequence[float]) -> list[tuple[tuple[int, ...], Fraction]]:
    """Every result of one attempt on ``y``, with its exact probability."""
    per_coordinate = []
    for low, t in _thresholds(y):
        q = Fraction(t, TWO53)
        per_coordinate.append([(low, 1 - q), (low + 1, q)])
    out = []
    for combo in itertools.product(*per_coordinate):
        prob = math.prod((p for _, p in combo), start=Fraction(1))
        if prob:
            out.append((tuple(k for k, _ in combo), prob))
    return out


def _dyadic_vector(i: int, d: int) -> list[float]:
    raw = Xof(_seed(200 + i), Tag("t")).uniform_ints(1 << 14, count=d)
    return [(int(v) - (1 << 13)) / 1024.0 for v in raw]  # multiples of 2^-10: v = y exactly


def _float_at_least_sqrt(q: Fraction) -> float:
    x = math.sqrt(q)
    while Fraction(x) ** 2 < q:
        x = math.nextafter(x, math.inf)
    return x


BETAS = (0.05, 0.3, 0.6, 0.95)


def test_one_attempt_fails_with_probability_at_most_beta_exactly() -> None:
    """proofs_notes/conditional-rounding-bound.md claims 3 and 4, by exact enumeration."""
    worst = Fraction(0)
    for i, d in itertools.product(range(12), (1, 2, 3, 4, 6)):
        y = _dyadic_vector(i, d)
        norm_sq = sum((Fraction(v) ** 2 for v in y), start=Fraction(0))
        clip = _float_at_least_sqrt(norm_sq)  # ‖v‖ <= L with γ = 1
        if clip == 0.0:
            continue
        for beta in BETAS:
            params = EncodingParams(Field61, clip=clip, scale=1.0, beta=beta, rotate=False)
            bound = norm_bound_sq(params, length=d)
            fail = sum(
                (p for ks, p in _outcomes(y) if sum(k * k for k in ks) > bound), start=Fraction(0)
            )
            assert fail <= Fraction(beta), (y, beta, fail)
            b1, b2 = _exact_bounds(clip, 1.0, beta, d)
            if b1 <= b2:
                assert fail == 0
            worst = max(worst, fail / Fraction(beta))
    assert worst > Fraction(1, 100)  # the check has teeth: some cases fail often


@pytest.mark.parametrize(("clip", "scale", "beta", "d"), NORM_BOUND_GRID)
def test_sensitivities_are_the_rounded_up_exact_bounds(
    clip: float, scale: float, beta: float, d: int
) -> None:
    """proofs_notes/conditional-rounding-bound.md claim 6 and (E3)."""
    params = EncodingParams(Field61, clip=clip, scale=scale, beta=beta, rotate=True)
    t = norm_bound_sq(params, length=d)
    d_pad = params.padded_length(d)
    l2 = l2_sensitivity(params, length=d)
    assert Fraction(l2) ** 2 >= t > Fraction(math.nextafter(l2, 0.0)) ** 2
    l1 = l1_sensitivity(params, length=d)
    exact_l1_sq = min(Fraction(d_pad * t), Fraction(t) ** 2)
    assert Fraction(l1) ** 2 >= exact_l1_sq > Fraction(math.nextafter(l1, 0.0)) ** 2
    # The source's form Δ₁ = Δ₂ min(sqrt(d), Δ₂), with Δ₂ = sqrt(T), in exact terms.
    with mpmath.workdps(60):
        delta2 = mpmath.sqrt(t)
        assert abs(_mp(l1) - delta2 * min(mpmath.sqrt(d_pad), delta2)) <= 1e-12 * _mp(l1)
    linf = linf_sensitivity(params, length=d)
    assert linf * linf <= t < (linf + 1) ** 2


def test_sensitivities_beyond_binary64_raise() -> None:
    params = EncodingParams(Field61, clip=1e300, scale=1e-300, beta=0.5)
    assert linf_sensitivity(params, length=3) ** 2 > 10**1199  # exact integers still work
    for fn in (l2_sensitivity, l1_sensitivity):
        with pytest.raises(ParameterError, match="binary64 range"):
            fn(params, length=3)


def test_float_clipping_slack_keeps_theta_near_one() -> None:
    """proofs_notes/conditional-rounding-bound.md (E4) and claim 7."""
    u = mpmath.mpf(2) ** -53

    def theta(big_l: int, d: int, beta: float) -> Any:
        with mpmath.workdps(50):
            lm, dm = mpmath.mpf(big_l), mpmath.mpf(d)
            k = mpmath.sqrt(2 * mpmath.log(1 / mpmath.mpf(beta)))
            gamma_d = dm * u / (1 - dm * u)
            eta = (1 + u) ** 3 / ((1 - u) * mpmath.sqrt(1 - gamma_d)) - 1
            m = lm * (1 + eta) + mpmath.sqrt(dm) * u / 2
            s = lm**2 + dm / 4 + k * (lm + mpmath.sqrt(dm) / 2) - m**2 - dm / 4
            return (s / (k * (m + mpmath.sqrt(dm) / 2))) ** 2

    for e_l, e_d, beta in itertools.product(range(0, 21, 4), range(0, 21, 4), (0.1, 0.5, 0.9)):
        assert theta(1 << e_l, 1 << e_d, beta) >= 0.99
    for e_l, e_d, beta in itertools.product(range(0, 17, 4), range(0, 25, 6), (0.5, 0.999)):
        assert theta(1 << e_l, 1 << e_d, beta) >= 0.99
    assert theta(1 << 24, 1 << 24, 0.999) < 0.1  # the note's counterexample
    # The realized ‖v‖ of clipped random vectors is within L (1 + eta) + sqrt(d) 2^-54.
    for i in range(20):
        d = 1 + 97 * i
        x = Xof(_seed(300 + i), Tag("t")).uniform_ints(1 << 30, count=d).astype(np.float64)
        params = _params(clip=0.7, scale=1.0 / 3, rotate=True)
        y = clip_and_scale(rotate(x / 7.0, seed=_seed(301)), clip=params.clip, scale=params.scale)
        v_sq = sum((low + Fraction(t, TWO53)) ** 2 for low, t in _thresholds(y.tolist()))
        big_l = Fraction(params.clip) / Fraction(params.scale)
        dm = len(y)
        uf = Fraction(1, TWO53)
        gamma_d = dm * uf / (1 - dm * uf)
        eta_bound = float((1 + uf) ** 3 / (1 - uf)) / math.sqrt(float(1 - gamma_d))
        allowed = float(big_l) * eta_bound + math.sqrt(dm) * 2.0**-54
        assert math.sqrt(v_sq) <= allowed * (1 + 1e-15)


# ---------------------------------------------------------------- decoding (encoding-error-bound.md


@st.composite
def node_sets(draw: st.DrawFn) -> tuple[EncodingParams, list[np.ndarray], np.ndarray]:
    params = draw(encoding_params)
    params = EncodingParams(
        Field61, clip=params.clip, scale=params.scale, beta=params.beta, rotate=params.rotate
    )
    n = draw(st.integers(1, 4))
    length = draw(st.integers(1, 12))
    ups = [
        np.array(draw(st.lists(coordinates, min_size=length, max_size=length))) for _ in range(n)
    ]
    d_pad = params.padded_length(length)
    noise = draw(
        st.one_of(
            st.just([0] * d_pad),
            st.lists(st.integers(-50, 50), min_size=d_pad, max_size=d_pad),
        )
    )
    return params, ups, np.array(noise, dtype=np.int64)


@given(node_sets(), seeds)
def test_decoded_sum_is_within_the_error_bound(
    case: tuple[EncodingParams, list[np.ndarray], np.ndarray], rotation_seed: bytes
) -> None:
    """proofs_notes/encoding-error-bound.md (E1), (E2)."""
    params, ups, noise = case
    rseed = Seed(rotation_seed)
    length = len(ups[0])
    d_pad = params.padded_length(length)
    total = Field61.signed_encode(noise)
    eps = np.zeros(d_pad)
    for j, u in enumerate(ups):
        enc = encode(u, params=params, rotation_seed=rseed, rounding_seed=_seed(400 + j))
        total = total + enc.values
        x = rotate(u, seed=rseed) if params.rotate else u
        y = clip_and_scale(x, clip=params.clip, scale=params.scale)
        eps_j = enc.values.signed_decode() - y
        assert np.abs(eps_j).max() < 1  # rounding-unbiased.md claim 5
        eps += eps_j
    decoded = decode_sum(total, params=params, rotation_seed=rseed, length=length)
    clipped = sum(
        u * min(1.0, params.clip / float(np.linalg.norm(u))) if np.linalg.norm(u) else u
        for u in ups
    )
    error = decoded - clipped
    back = unrotate(eps + noise, seed=rseed) if params.rotate else eps + noise
    predicted = params.scale * back[:length]
    magnitude = 1 + sum(float(np.linalg.norm(u)) for u in ups)
    magnitude += params.scale * float(np.linalg.norm(total.signed_decode()))
    tol = 1e-9 * magnitude
    assert float(np.linalg.norm(error - predicted)) <= tol  # (E1)
    norm_noise = float(np.linalg.norm(noise))
    assert (
        float(np.linalg.norm(error))
        <= params.scale * (float(np.linalg.norm(eps)) + norm_noise) + tol
    )  # (E2), first form
    assert (
        float(np.linalg.norm(error))
        <= params.scale * (len(ups) * math.sqrt(d_pad) + norm_noise) + tol
    )  # (E2), deterministic form


def test_mean_square_rounding_error_exactly_enumerated() -> None:
    """proofs_notes/encoding-error-bound.md (E3), in exact rational arithmetic, n = 2."""
    checked_conditional = 0
    for i, d in itertools.product(range(8), (1, 2, 3, 4)):
        ys = [_dyadic_vector(50 + 2 * i, d), _dyadic_vector(51 + 2 * i, d)]
        big_l_sq = max(sum((Fraction(v) ** 2 for v in y), start=Fraction(0)) for y in ys)
        clip = _float_at_least_sqrt(big_l_sq)
        if clip == 0.0:
            continue
        # Unconditioned: E‖e_1 + e_2‖² = Σ variances <= n d / 4.
        dists = [_outcomes(y) for y in ys]
        expected = Fraction(0)
        for (k1, p1), (k2, p2) in itertools.product(*dists):
            err = [
                a + b - Fraction(u) - Fraction(w)
                for a, b, u, w in zip(k1, k2, ys[0], ys[1], strict=True)
            ]
            expected += p1 * p2 * sum(e * e for e in err)
        variances = sum(
            Fraction(t, TWO53) * (1 - Fraction(t, TWO53)) for y in ys for _, t in _thresholds(y)
        )
        assert expected == variances <= Fraction(2 * d, 4)
        for beta in BETAS:
            params = EncodingParams(Field61, clip=clip, scale=1.0, beta=beta, rotate=False)
            bound = norm_bound_sq(params, length=d)
            cond = []
            for y, dist in zip(ys, dists, strict=True):
                ok = [(ks, p) for ks, p in dist if sum(k * k for k in ks) <= bound]
                mass = sum((p for _, p in ok), start=Fraction(0))
                assert mass >= 1 - Fraction(beta)
                cond.append([(ks, p / mass) for ks, p in ok])
                bias = [
                    sum((p * (ks[c] - Fraction(y[c])) for ks, p in cond[-1]), start=Fraction(0))
                    for c in range(d)
                ]
                b = Fraction(beta)
                assert sum(x * x for x in bias) <= b * b * d / (1 - b) ** 2
            ms = Fraction(0)
            for (k1, p1), (k2, p2) in itertools.product(*cond):
                err = [
                    a + b_ - Fraction(u) - Fraction(w)
                    for a, b_, u, w in zip(k1, k2, ys[0], ys[1], strict=True)
                ]
                ms += p1 * p2 * sum(e * e for e in err)
            b = Fraction(beta)
            assert ms <= Fraction(2 * d, 4) / (1 - b) + 2 * b * b * d / (1 - b) ** 2
            checked_conditional += 1
    assert checked_conditional > 50


# ---------------------------------------------------------------- noise tails


def test_discrete_gaussian_is_subgaussian_numerically() -> None:
    """proofs_notes/encoding-error-bound.md (E4a) in sympy; (E4b), θ(a) <= θ(0) and the tail."""
    lam, x, sigma = sympy.symbols("lambda x sigma", positive=True)
    lhs = lam * x - x**2 / (2 * sigma**2)
    rhs = -((x - lam * sigma**2) ** 2) / (2 * sigma**2) + lam**2 * sigma**2 / 2
    assert sympy.expand(lhs - rhs) == 0
    with mpmath.workdps(40):
        for s in (0.3, 0.5, 1.0, 2.0, 5.0):
            sm = mpmath.mpf(s)
            reach = int(40 * s) + 40

            def theta(a: Any, sm: Any = sm, reach: int = reach) -> Any:
                return mpmath.fsum(
                    mpmath.exp(-((k - a) ** 2) / (2 * sm**2)) for k in range(-reach, reach + 1)
                )

            def poisson(a: Any, sm: Any = sm) -> Any:
                terms = (
                    mpmath.exp(-2 * mpmath.pi**2 * sm**2 * k**2) * mpmath.cos(2 * mpmath.pi * k * a)
                    for k in range(-40, 41)
                )
                return mpmath.sqrt(2 * mpmath.pi) * sm * mpmath.fsum(terms)

            top = theta(0)
            for a in (mpmath.mpf(i) / 16 for i in range(17)):
                assert abs(theta(a) - poisson(a)) < mpmath.mpf(10) ** -30 * top
                assert theta(a) <= top * (1 + mpmath.mpf(10) ** -35)
            for tau in range(1, int(10 * s) + 3):
                tail = mpmath.fsum(mpmath.exp(-(k**2) / (2 * sm**2)) for k in range(tau, reach + 1))
                assert 2 * tail / top <= 2 * mpmath.exp(-(tau**2) / (2 * sm**2))


def test_skellam_bernstein_bound_numerically() -> None:
    """proofs_notes/encoding-error-bound.md (E5a), (E5b), (E5c), and the exact tail."""
    s, mu, lam, tau = sympy.symbols("s mu lambda tau", positive=True)
    poisson_log_mgf = mu * (sympy.exp(s) - 1)  # ln E e^{sZ}, Z ~ Poi(mu)
    difference = poisson_log_mgf + poisson_log_mgf.subs(s, -s)  # Z1 - Z2
    target = lam * (sympy.cosh(s) - 1)
    assert sympy.simplify((difference.subs(mu, lam / 2) - target).rewrite(sympy.exp)) == 0
    for k in range(1, 61):
        assert math.factorial(2 * k) >= 2 * 3 ** (2 * k - 2)
    for i in range(1, 300):
        sv = 3 * i / 300
        assert math.cosh(sv) - 1 <= (sv * sv / 2) / (1 - sv / 3) * (1 + 1e-12)
    best = tau / (lam + tau / 3)
    chernoff = -best * tau + lam * best**2 / (2 * (1 - best / 3))
    assert sympy.simplify(chernoff + tau**2 / (2 * (lam + tau / 3))) == 0
    with mpmath.workdps(40):
        for lv in (0.5, 2.0, 10.0, 100.0):
            lm = mpmath.mpf(lv)

            # P[Sk(λ) = k] = e^{-λ} I_k(λ), symmetric in k.
            pmf = [mpmath.exp(-lm) * mpmath.besseli(k, lm) for k in range(int(lv + 60) + 1)]
            assert abs(pmf[0] + 2 * mpmath.fsum(pmf[1:]) - 1) < 1e-25
            for tv in range(1, int(8 * math.sqrt(lv) + 10)):
                inside = pmf[0] + 2 * mpmath.fsum(pmf[1:tv])
                bound = 2 * mpmath.exp(-(tv**2) / (2 * (lm + mpmath.mpf(tv) / 3)))
                assert 1 - inside <= bound


@pytest.mark.parametrize("mechanism", ["dgauss", "skellam"])
@pytest.mark.parametrize("variance", [Fraction(1, 2), 3, 100.0, Fraction(10**12, 7)])
@pytest.mark.parametrize(("coordinates", "rho"), [(1, 0.5), (1024, 1e-4), (10**6, 1e-9)])
def test_noise_tail_is_the_least_safe_integer(
    mechanism: str, variance: Fraction | float, coordinates: int, rho: float
) -> None:
    """proofs_notes/encoding-error-bound.md (E6), (E6a)."""
    tau = noise_tail(mechanism, variance=variance, coordinates=coordinates, wrap_probability=rho)
    with mpmath.workdps(60):
        target = _mp(Fraction(rho)) / coordinates
        v = _mp(Fraction(variance))

        def tail(t: int) -> Any:
            if mechanism == "dgauss":
                return 2 * mpmath.exp(-(mpmath.mpf(t) ** 2) / (2 * v))
            return 2 * mpmath.exp(-(mpmath.mpf(t) ** 2) / (2 * (v + mpmath.mpf(t) / 3)))

        assert tail(tau) <= target
        assert tail(tau - 1) > target


def test_noise_tail_edge_cases_and_errors() -> None:
    assert noise_tail("dgauss", variance=0, coordinates=5, wrap_probability=0.1) == 0
    for kwargs, needle in (
        ({"variance": -1}, "variance"),
        ({"variance": math.inf}, "variance"),
        ({"variance": True}, "variance"),
        ({"coordinates": 0}, "coordinates"),
        ({"wrap_probability": 0.0}, "wrap_probability"),
        ({"wrap_probability": 1.0}, "wrap_probability"),
        ({"wrap_probability": 1}, "wrap_probability"),
    ):
        args: dict[str, Any] = {"variance": 1, "coordinates": 5, "wrap_probability": 0.1}
        args.update(kwargs)
        with pytest.raises(ParameterError, match=needle):
            noise_tail("dgauss", **args)
    with pytest.raises(ParameterError, match="mechanism"):
        noise_tail("gauss", variance=1, coordinates=5, wrap_probability=0.1)


# ---------------------------------------------------------------- field selection


def test_check_field_refuses_unsafe_parameters_naming_the_bound() -> None:
    params = _params(Field31, clip=1.0, scale=1e-6, rotate=False)
    common: dict[str, Any] = {
        "length": 1,
        "wrap_probability": 1e-4,
        "mechanism": "dgauss",
    }
    linf = linf_sensitivity(params, length=1)
    half = (Field31.MODULUS - 1) // 2
    # The values alone overflow: n·isqrt(T) > (p - 1)/2.
    n_big = half // linf + 1
    with pytest.raises(ParameterError, match=r"sum bound n·isqrt\(T\) = ") as info:
        check_field(params, contributors=n_big, noise_variance=0, **common)
    assert str(n_big * linf) in str(info.value) and str(half) in str(info.value)
    assert "τ" not in str(info.value)
    # The values fit but the noise tail does not.
    with pytest.raises(ParameterError, match=r"n·isqrt\(T\) \+ τ") as info:
        check_field(params, contributors=1000, noise_variance=10**15, **common)
    assert "dgauss" in str(info.value) and str(half) in str(info.value)
    # Both fit.
    check_field(params, contributors=1000, noise_variance=10**6, **common)
    tau = noise_tail("dgauss", variance=10**6, coordinates=1, wrap_probability=1e-4)
    assert 1000 * linf + tau <= half
    with pytest.raises(ParameterError, match="contributors"):
        check_field(params, contributors=0, noise_variance=1, **common)


@given(
    st.integers(1, 10**5),
    st.sampled_from([1.0, 1e-2, 1e-4, 1e-6, 1e-9]),
    st.sampled_from([0, 10, 10**6, 10**12, 10**20]),
    st.sampled_from(["dgauss", "skellam"]),
    st.integers(1, 5000),
)
def test_choose_field_picks_the_smallest_safe_field(
    contributors: int, scale: float, variance: int, mechanism: str, length: int
) -> None:
    kwargs: dict[str, Any] = {
        "contributors": contributors,
        "length": length,
        "noise_variance": variance,
        "wrap_probability": 1e-4,
        "mechanism": mechanism,
    }
    enc: dict[str, Any] = {"clip": 1.0, "scale": scale, "beta": BETA_DEFAULT, "rotate": True}
    passing = []
    for field in sorted(FIELDS.values(), key=lambda f: f.MODULUS):
        try:
            check_field(EncodingParams(field, **enc), **kwargs)
        except ParameterError:
            continue
        passing.append(field)
    if not passing:
        with pytest.raises(ParameterError, match="no named field"):
            choose_field(**enc, **kwargs)
        return
    assert choose_field(**enc, **kwargs) is passing[0]
    # Larger fields pass whenever a smaller one does (the check is monotone in p).
    assert passing == sorted(FIELDS.values(), key=lambda f: f.MODULUS)[-len(passing) :]


def test_choose_field_raises_when_no_field_fits_and_on_bad_arguments() -> None:
    common: dict[str, Any] = {
        "clip": 1.0,
        "beta": 0.5,
        "rotate": True,
        "length": 10,
        "noise_variance": 1,
        "wrap_probability": 1e-4,
    }
    with pytest.raises(ParameterError, match=r"no named field.*Field61"):
        choose_field(scale=1e-15, contributors=10**4, mechanism="dgauss", **common)
    with pytest.raises(ParameterError, match="mechanism"):
        choose_field(scale=1.0, contributors=1, mechanism="laplace", **common)
    assert choose_field(scale=1.0, contributors=1, mechanism="skellam", **common) is Field31


# ---------------------------------------------------------------- encode / decode behaviour


@given(updates(), encoding_params, seeds, seeds)
def test_encode_is_deterministic_and_depends_on_both_seeds(
    update: np.ndarray, params: EncodingParams, rotation_seed: bytes, rounding_seed: bytes
) -> None:
    def run(rot: bytes, rnd: bytes) -> list[int]:
        return encode(
            update, params=params, rotation_seed=Seed(rot), rounding_seed=Seed(rnd)
        ).values.to_ints()

    first = run(rotation_seed, rounding_seed)
    assert run(rotation_seed, rounding_seed) == first
    # A different rounding seed changes the encoding when the rounding is
    # genuinely random. Each other seed reproduces ``first`` with probability
    # at most the most likely outcome's, Π max(p_i, 1 − p_i); when that is at
    # most 1/4, all 16 other seeds reproduce it with probability <= 2^-32.
    y = _scalar_scaled(update, params, rotation_seed)
    probs = [t / TWO53 for _, t in _thresholds(y) if 0 < t < TWO53]
    if math.prod(max(p, 1 - p) for p in probs) <= 0.25:
        others = [run(rotation_seed, bytes(_seed(500 + i))) for i in range(16)]
        assert any(o != first for o in others)


def test_rotation_seed_changes_the_encoding() -> None:
    update = np.linspace(-1.0, 1.0, 50)
    params = _params(clip=10.0, scale=1e-3)
    a = encode(update, params=params, rotation_seed=_seed(6), rounding_seed=_seed(7))
    b = encode(update, params=params, rotation_seed=_seed(8), rounding_seed=_seed(7))
    assert a.values.to_ints() != b.values.to_ints()
    no_rot = _params(clip=10.0, scale=1e-3, rotate=False)
    c = encode(update, params=no_rot, rotation_seed=_seed(6), rounding_seed=_seed(7))
    d = encode(update, params=no_rot, rotation_seed=_seed(8), rounding_seed=_seed(7))
    assert c == d


@pytest.mark.parametrize(
    ("update", "error", "needle"),
    [
        (np.array([1.0, math.nan]), EncodingError, "coordinate 1 must be finite"),
        (np.array([[math.inf]]), EncodingError, "finite"),
        (np.array([-math.inf, 0.0]), EncodingError, "finite"),
        (np.array([]), ParameterError, "at least one"),
        (np.zeros((3, 0)), ParameterError, "at least one"),
        (np.array([1 + 2j]), ParameterError, "real"),
        (np.array([True]), ParameterError, "real"),
        (np.array(["1.0"]), ParameterError, "real"),
        ([1.0, 2.0], ParameterError, "numpy array"),
        (np.array([1e300, 1e300]), EncodingError, "overflows"),
    ],
)
def test_encode_rejects_bad_updates_with_typed_errors(
    update: Any, error: type[Exception], needle: str
) -> None:
    with pytest.raises(error, match=needle):
        encode(update, params=_params(), rotation_seed=_seed(9), rounding_seed=_seed(10))


def test_encode_checks_seeds_and_accepts_integer_updates() -> None:
    params = _params()
    for bad in (b"short", bytes(33), "0" * 32):
        with pytest.raises(ParameterError, match="seed"):
            encode(np.ones(3), params=params, rotation_seed=bad, rounding_seed=_seed(1))  # type: ignore[arg-type]
        with pytest.raises(ParameterError, match="seed"):
            encode(np.ones(3), params=params, rotation_seed=_seed(1), rounding_seed=bad)  # type: ignore[arg-type]
    no_rot = _params(rotate=False)
    with pytest.raises(ParameterError, match="seed"):
        encode(np.ones(3), params=no_rot, rotation_seed=b"", rounding_seed=_seed(1))  # type: ignore[arg-type]
    ints = encode(
        np.array([1, -2, 3]), params=params, rotation_seed=_seed(1), rounding_seed=_seed(2)
    )
    floats = encode(
        np.array([1.0, -2.0, 3.0]), params=params, rotation_seed=_seed(1), rounding_seed=_seed(2)
    )
    assert ints == floats


def test_encode_raises_encoding_error_when_a_value_does_not_fit_the_field() -> None:
    params = _params(Field31, clip=1.0, scale=1e-10, rotate=False)
    with pytest.raises(EncodingError, match=r"must be in \[-1073741823, 1073741823\]"):
        encode(np.array([1.0, 0.0]), params=params, rotation_seed=_seed(1), rounding_seed=_seed(2))
    huge = _params(Field61, clip=1.0, scale=1e-300, rotate=False)
    with pytest.raises(EncodingError, match="2\\^62"):
        encode(np.array([1.0]), params=huge, rotation_seed=_seed(1), rounding_seed=_seed(2))


def test_decode_sum_rejects_bad_inputs() -> None:
    params = _params(Field61)
    good = Field61.zeros(8)
    assert decode_sum(good, params=params, rotation_seed=_seed(1), length=5).tolist() == [0.0] * 5
    with pytest.raises(FieldMismatchError, match="Field31"):
        decode_sum(Field31.zeros(8), params=params, rotation_seed=_seed(1), length=5)
    for length in (9, 4):
        with pytest.raises(ParameterError, match="padded_length"):
            decode_sum(good, params=params, rotation_seed=_seed(1), length=length)
    for bad_length in (0, 5.0):
        with pytest.raises(ParameterError, match="length"):
            decode_sum(good, params=params, rotation_seed=_seed(1), length=bad_length)  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="1-D"):
        decode_sum(Field61.zeros((2, 4)), params=params, rotation_seed=_seed(1), length=5)
    with pytest.raises(ParameterError, match="seed"):
        decode_sum(good, params=params, rotation_seed=bytes(3), length=5)  # type: ignore[arg-type]


def test_registered_tags_encode_as_documented() -> None:
    assert Tag("encoding.rotation") == ROTATION_TAG
    assert ROTATION_TAG.encode().hex() == "11656e636f64696e672e726f746174696f6e00"
    assert Tag("encoding.rounding", (3,)) == rounding_tag(3)
    assert (
        rounding_tag(3).encode().hex() == "11656e636f64696e672e726f756e64696e67010300000000000000"
    )


# ---------------------------------------------------------------- vectors


def _round_trip(obj: dict[str, Any]) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(json.dumps(obj, sort_keys=True))
    return loaded


def test_encoding_vectors_round_trip_through_check() -> None:
    generated = list(vectors_encoding.cases())
    paths = [path for path, _ in generated]
    assert len(paths) == len(set(paths)) >= 12
    operations = set()
    for path, obj in generated:
        assert path.startswith("encoding/") and path.endswith(".json")
        assert obj["format"] == "sdl-vectors/1" and obj["family"] == "encoding"
        operations.add(obj["operation"])
        if "_bad_" in path:
            assert obj["error"] in ERRORS_BY_NAME
        else:
            assert "error" not in obj
        problems: list[str] = []
        vectors_encoding.check(_round_trip(obj), problems)
        assert problems == [], path
    assert operations == {"encode", "decode_sum", "bounds", "choose_field", "check_field"}
    retries = dict(generated)["encoding/encode_retries.json"]
    assert retries["attempts"] > 1


def test_tampered_encoding_vector_is_reported() -> None:
    generated = dict(vectors_encoding.cases())
    obj = _round_trip(generated["encoding/encode_rotate_field31.json"])
    bad = copy.deepcopy(obj)
    bad["values"][3] = str((int(bad["values"][3]) + 1) % Field31.MODULUS)
    problems: list[str] = []
    vectors_encoding.check(bad, problems)
    assert len(problems) == 1
    assert problems[0].startswith("values[3]: file has ")
    assert "recomputed" in problems[0]
    for key, value in (("attempts", 2), ("norm_bound_sq", "1"), ("padded_length", 16)):
        tampered = dict(copy.deepcopy(obj), **{key: value})
        problems = []
        vectors_encoding.check(tampered, problems)
        assert [p.split(":")[0] for p in problems] == [key]
    tampered = copy.deepcopy(obj)
    tampered["decoded"][0] = math.nextafter(tampered["decoded"][0], math.inf)
    problems = []
    vectors_encoding.check(tampered, problems)
    assert [p.split(":")[0] for p in problems] == ["decoded[0]"]
    zero_int = copy.deepcopy(obj)
    zero_int["padded_length"] = 8.0  # numbers compare by value, as JSON readers see them
    problems = []
    vectors_encoding.check(zero_int, problems)
    assert problems == []
    negative = _round_trip(generated["encoding/encode_bad_nan.json"])
    problems = []
    vectors_encoding.check(dict(negative, error="ParameterError"), problems)
    assert problems and problems[0].startswith("error: expected ParameterError, got EncodingError")
    problems = []
    vectors_encoding.check(dict(negative, update=[0.5, 1.0, 2.0]), problems)
    assert problems == ["error: expected EncodingError, but the operation succeeded"]
    problems = []
    vectors_encoding.check(dict(obj, operation="shuffle"), problems)
    assert problems == ["operation: unknown encoding operation 'shuffle'"]
    chosen = _round_trip(generated["encoding/choose_field_field61.json"])
    problems = []
    vectors_encoding.check(dict(chosen, chosen="Field31"), problems)
    assert problems == ["chosen: file has 'Field31', recomputed 'Field61'"]


def test_vector_seeds_follow_the_vector_convention() -> None:
    obj = dict(vectors_encoding.cases())["encoding/encode_rotate_field31.json"]
    seed = derive_seed(as_seed(bytes(32)), Tag("vectors", (501,)))
    assert obj["rotation_seed"] == seed.hex()
