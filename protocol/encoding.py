"""Encoding of real-valued updates into the field, and decoding of their sum.

Spec: spec/05-encoding.md

A node's update (a real array of any shape) becomes a vector of field
elements by the client pipeline of the distributed discrete Gaussian and
Skellam mechanisms (Kairouz, Liu, Steinke 2021, arXiv 2102.06387; Agarwal,
Kairouz, Liu 2021, arXiv 2110.04995):

1. flatten (C order) to ``d`` coordinates;
2. optionally rotate: zero-pad to ``d_pad = 2^ceil(log2 d)``, flip signs by
   a public random ±1 diagonal ``D``, apply the orthonormal Walsh–Hadamard
   transform ``H / sqrt(d_pad)``;
3. clip to L2 norm ``<= c`` and divide by the scale ``γ``;
4. round every coordinate down or up at random, unbiased, and redraw until
   the integer vector's squared norm is at most the inflated bound ``T``
   (conditional randomized rounding);
5. map the signed integers into the field.

``decode_sum`` inverts steps 5, 3 (the scale) and 2 on the sum of many
encodings. Steps 2–3 and decoding are binary64 floating point, in an order
the spec fixes, so that they are reproducible bit for bit; everything after
is integer. The norm bound ``T`` is computed exactly (rational arithmetic
with certified bounds on the logarithm and square roots), so the guarantee
``‖x̃‖² <= T`` that privacy accounting relies on holds by construction.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import numpy.typing as npt

from protocol.errors import EncodingError, FieldMismatchError, ParameterError
from protocol.field import FIELDS, Field
from protocol.noise import MECHANISMS, ceil_sqrt
from protocol.xof import Seed, Tag, Xof, as_seed

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

#: Tag of the public stream that draws the rotation's signs. Spec: spec/05-encoding.md#rotation
ROTATION_TAG = Tag("encoding.rotation")
#: Purpose of the rounding streams; the tag's one parameter is the attempt number.
#: Spec: spec/05-encoding.md#conditional-randomized-rounding
ROUNDING_PURPOSE = "encoding.rounding"
#: Rounding attempts before conditional rounding gives up (each fails with probability <= β).
MAX_ATTEMPTS = 64
#: Random bits compared with a coordinate's fractional part.
ROUNDING_BITS = 53
#: Scaled coordinates must be below this in absolute value (every field's range is smaller).
SCALED_LIMIT = 2.0**62

_FLOOR_PRECISIONS = tuple(64 << i for i in range(9))  # 64 .. 16384 bits


def rounding_tag(attempt: int) -> Tag:
    """``Tag("encoding.rounding", (attempt,))``: the stream of rounding attempt ``attempt``.

    Spec: spec/05-encoding.md#conditional-randomized-rounding
    """
    return Tag(ROUNDING_PURPOSE, (attempt,))


# ---------------------------------------------------------------------- parameters


@dataclass(frozen=True, slots=True)
class EncodingParams:
    """Parameters of the encoder.

    Spec: spec/05-encoding.md#parameters

    ``clip`` is the L2 clipping norm ``c`` and ``scale`` the granularity
    ``γ`` (one integer step of the encoding is ``γ`` in the update's units);
    both are stored as binary64. ``beta`` is the probability ``β`` with which
    one rounding attempt may exceed the inflated norm bound; it enters the
    bound ``T``. ``rotate`` turns the randomized Hadamard rotation on.

    Pre-conditions:
        - ``field`` is a concrete :class:`~protocol.field.Field` subclass
        - ``clip`` and ``scale`` are finite numbers ``> 0``
        - ``beta`` is a float in the open interval ``(0, 1)``
        - ``rotate`` is a bool

    Raises:
        ParameterError: naming the first pre-condition that fails.
    """

    field: type[Field]
    clip: float
    scale: float
    beta: float
    rotate: bool = True

    def __post_init__(self) -> None:
        if not (
            isinstance(self.field, type)
            and issubclass(self.field, Field)
            and hasattr(self.field, "MODULUS")
        ):
            raise ParameterError(f"field must be a concrete Field subclass; got {self.field!r}")
        for name in ("clip", "scale"):
            value = getattr(self, name)
            object.__setattr__(self, name, _positive_float(value, name))
        beta = self.beta
        if isinstance(beta, bool) or not isinstance(beta, float) or not 0.0 < beta < 1.0:
            raise ParameterError(f"beta must be a float in the open interval (0, 1); got {beta!r}")
        if not isinstance(self.rotate, bool):
            raise ParameterError(f"rotate must be a bool; got {self.rotate!r}")

    def padded_length(self, length: int) -> int:
        """``d_pad``: the next power of two ``>= length`` when rotating, else ``length``.

        Spec: spec/05-encoding.md#parameters

        Raises:
            ParameterError: if ``length`` is not an int ``>= 1``.
        """
        if type(length) is not int or length < 1:
            raise ParameterError(f"length must be an int >= 1; got {length!r}")
        return 1 << (length - 1).bit_length() if self.rotate else length


def _positive_float(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ParameterError(f"{name} must be a finite number > 0; got {value!r}")
    try:
        out = float(value)
    except OverflowError:
        raise ParameterError(f"{name} must be a finite number > 0; got {value!r}") from None
    if not math.isfinite(out) or out <= 0.0:
        raise ParameterError(f"{name} must be a finite number > 0; got {value!r}")
    return out


# ---------------------------------------------------------------------- rotation


def rotation_signs(seed: Seed, padded_length: int) -> F64:
    """The diagonal of ``D``: ``+1`` or ``-1`` per coordinate, from the public rotation seed.

    Spec: spec/05-encoding.md#rotation

    ``uniform_ints(2, count=padded_length)`` from ``Xof(seed, ROTATION_TAG)``
    (one byte per sign, its low bit): 0 gives ``+1``, 1 gives ``-1``.
    """
    bits = Xof(seed, ROTATION_TAG).uniform_ints(2, count=padded_length)
    signs: F64 = np.where(bits == 0, 1.0, -1.0)
    return signs


# spec-excerpt: encoding-fwht
def fwht(values: F64) -> F64:
    """The unnormalized Walsh–Hadamard transform ``H · values`` (a new array).

    Spec: spec/05-encoding.md#rotation

    Stages ``h = 1, 2, 4, …, n/2``; in each, every pair ``(a, b)`` at
    positions ``(j + i, j + i + h)`` of a block of ``2h`` becomes
    ``(a + b, a - b)``, one binary64 addition and one subtraction.
    """
    out = np.array(values, dtype=np.float64, copy=True)
    n = len(out)
    if n < 1 or n & (n - 1):
        raise ParameterError(f"the Hadamard transform needs a power-of-two length; got {n}")
    h = 1
    with np.errstate(over="ignore", invalid="ignore"):  # callers check for non-finite values
        while h < n:
            blocks = out.reshape(-1, 2, h)
            first = blocks[:, 0, :].copy()
            np.add(first, blocks[:, 1, :], out=blocks[:, 0, :])
            np.subtract(first, blocks[:, 1, :], out=blocks[:, 1, :])
            h *= 2
    return out


# end-spec-excerpt


def rotate(values: F64, *, seed: Seed) -> F64:
    """``(H / sqrt(d_pad)) · D · pad(values)``: the randomized Hadamard rotation.

    Spec: spec/05-encoding.md#rotation

    ``values`` (length ``d``) is zero-padded to ``d_pad = 2^ceil(log2 d)``,
    multiplied by the signs of :func:`rotation_signs`, transformed by
    :func:`fwht`, and every coordinate divided by the binary64 ``sqrt(d_pad)``.
    """
    d = len(values)
    d_pad = 1 << (d - 1).bit_length() if d else 0
    padded = np.zeros(d_pad, dtype=np.float64)
    padded[:d] = values
    padded *= rotation_signs(seed, d_pad)
    out: F64 = fwht(padded) / math.sqrt(d_pad)
    return out


def unrotate(values: F64, *, seed: Seed) -> F64:
    """``D · (H / sqrt(d_pad)) · values``: the inverse of :func:`rotate` (before unpadding).

    Spec: spec/05-encoding.md#decoding-the-sum
    """
    d_pad = len(values)
    out: F64 = fwht(values) / math.sqrt(d_pad)
    out *= rotation_signs(seed, d_pad)
    return out


# ---------------------------------------------------------------------- clip and scale


def clip_and_scale(values: F64, *, clip: float, scale: float) -> F64:
    """``values · min(1, c / ‖values‖₂) / γ``, in binary64, in the spec's order.

    Spec: spec/05-encoding.md#clipping-and-scaling

    The squared norm is summed left to right (``x₀² + x₁²``, then ``+ x₂²``,
    …), its square root taken, and, if the norm exceeds ``c``, every
    coordinate multiplied by ``c / norm``; then every coordinate is divided
    by ``γ``.

    Raises:
        EncodingError: if the norm or a scaled coordinate is not finite.
    """
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is detected below
        squares = values * values
        total = float(np.add.accumulate(squares)[-1]) if len(values) else 0.0
        norm = math.sqrt(total)
        if not math.isfinite(norm):
            raise EncodingError(f"the update's L2 norm overflows binary64 (squared norm {total})")
        clipped = values * (clip / norm) if norm > clip else values
        out: F64 = clipped / scale
    if not np.isfinite(out).all():
        raise EncodingError(
            f"dividing by the scale {scale!r} overflows binary64 (clip {clip!r}, norm {norm!r})"
        )
    return out


# ---------------------------------------------------------------------- rounding


# spec-excerpt: encoding-round
def randomized_round(scaled: F64, *, seed: Seed, attempt: int) -> I64:
    """One attempt of unbiased randomized rounding: each coordinate down or up.

    Spec: spec/05-encoding.md#conditional-randomized-rounding
    Proof: proofs_notes/rounding-unbiased.md

    With ``low = floor(y)`` and ``threshold = round(fl(y - low) · 2^53)``
    (an integer in ``[0, 2^53]``), the coordinate rounds up iff a uniform
    53-bit integer ``u`` is below ``threshold``: exactly ``threshold / 2^53``.
    """
    _check_scaled(scaled)
    low = np.floor(scaled)
    threshold = np.rint((scaled - low) * 2.0**ROUNDING_BITS).astype(np.uint64)
    u = Xof(seed, rounding_tag(attempt)).uniform_ints(1 << ROUNDING_BITS, count=len(scaled))
    rounded: I64 = low.astype(np.int64) + (u < threshold).astype(np.int64)
    return rounded


# end-spec-excerpt


def _check_scaled(scaled: F64) -> None:
    if not isinstance(scaled, np.ndarray) or scaled.dtype != np.float64 or scaled.ndim != 1:
        raise ParameterError(f"scaled values must be a 1-D float64 array; got {scaled!r:.60}")
    big = ~(np.abs(scaled) < SCALED_LIMIT)  # also catches NaN
    if big.any():
        i = int(np.flatnonzero(big)[0])
        raise EncodingError(
            f"scaled coordinate {i} must have absolute value below 2^62; got {scaled[i]!r}"
        )


@dataclass(frozen=True, slots=True)
class Rounding:
    """The result of :func:`conditional_round`.

    ``values`` are the integers, ``attempts`` the number of attempts made
    (the last one succeeded), ``norm_sq`` their exact squared L2 norm.
    """

    values: I64
    attempts: int
    norm_sq: int


def conditional_round(
    scaled: F64, *, seed: Seed, bound_sq: int, max_attempts: int = MAX_ATTEMPTS
) -> Rounding:
    """Randomized rounding, redrawn until the squared norm is at most ``bound_sq``.

    Spec: spec/05-encoding.md#conditional-randomized-rounding
    Proof: proofs_notes/conditional-rounding-bound.md

    Attempt ``a = 0, 1, …`` is :func:`randomized_round` with the stream of
    ``rounding_tag(a)``; the first whose exact integer squared norm is
    ``<= bound_sq`` is returned.

    Raises:
        EncodingError: if ``max_attempts`` attempts all exceed the bound
            (probability at most ``β^max_attempts`` for ``bound_sq = T``).
    """
    if type(bound_sq) is not int or bound_sq < 0:
        raise ParameterError(f"bound_sq must be an int >= 0; got {bound_sq!r}")
    if type(max_attempts) is not int or max_attempts < 1:
        raise ParameterError(f"max_attempts must be an int >= 1; got {max_attempts!r}")
    as_seed(seed)
    for attempt in range(max_attempts):
        rounded = randomized_round(scaled, seed=seed, attempt=attempt)
        norm_sq = _squared_norm_at_most(rounded, bound_sq)
        if norm_sq is not None:
            return Rounding(values=rounded, attempts=attempt + 1, norm_sq=norm_sq)
    raise EncodingError(
        f"conditional rounding failed {max_attempts} attempts: every rounded vector had "
        f"squared L2 norm above the bound {bound_sq}"
    )


def _squared_norm_at_most(values: I64, bound_sq: int) -> int | None:
    """The exact ``Σ v_i²`` if it is ``<= bound_sq``, else None."""
    if not len(values):
        return 0
    top = int(np.abs(values).max())
    if top * top > bound_sq:
        return None  # one coordinate alone exceeds the bound
    if top < 1 << 32 and len(values) < 1 << 32:
        mag = np.abs(values).astype(np.uint64)
        sq = mag * mag  # < 2^64
        # Sum the 32-bit halves separately: each sum has < 2^32 terms below 2^32.
        lo = int(np.sum(sq & np.uint64(0xFFFFFFFF), dtype=np.uint64))
        hi = int(np.sum(sq >> np.uint64(32), dtype=np.uint64))
        total = (hi << 32) + lo
    else:
        total = sum(int(v) * int(v) for v in values)
    return total if total <= bound_sq else None


# ---------------------------------------------------------------------- the norm bound


def norm_bound_sq(params: EncodingParams, *, length: int) -> int:
    """``T = floor(min(B1, B2))``, the squared norm every encoding respects.

    Spec: spec/05-encoding.md#conditional-randomized-rounding
    Proof: proofs_notes/conditional-rounding-bound.md

    With ``L = c / γ`` and ``d = d_pad`` (exact reals),
    ``B1 = (L + sqrt(d))²`` and
    ``B2 = L² + d/4 + sqrt(2 ln(1/β)) · (L + sqrt(d)/2)``:
    the square of the inflated bound of Kairouz, Liu, Steinke 2021
    (arXiv 2102.06387, Theorem 1), in integer units.
    """
    return _norm_bound_sq(params.clip, params.scale, params.beta, params.padded_length(length))


@functools.lru_cache(maxsize=256)
def _norm_bound_sq(clip: float, scale: float, beta: float, d: int) -> int:
    big_l = Fraction(clip) / Fraction(scale)
    root = math.isqrt(d)
    base = big_l * big_l + Fraction(d, 4)
    for bits in _FLOOR_PRECISIONS:
        if root * root == d:
            sd_lo = sd_hi = Fraction(root)
        else:
            sd_lo, sd_hi = _sqrt_bounds(Fraction(d), bits)
        ln_lo, ln_hi = _ln_bounds(1 / Fraction(beta), bits)
        k_lo = _sqrt_bounds(2 * ln_lo, bits)[0]
        k_hi = _sqrt_bounds(2 * ln_hi, bits)[1]
        lo = min(math.floor((big_l + sd_lo) ** 2), math.floor(base + k_lo * (big_l + sd_lo / 2)))
        hi = min(math.floor((big_l + sd_hi) ** 2), math.floor(base + k_hi * (big_l + sd_hi / 2)))
        if lo == hi:
            return lo
    # B2 is transcendental, and B1 is an integer only when computed exactly, so
    # the bounds always meet; reaching here is a bug.
    raise AssertionError(f"norm bound did not converge for {clip}, {scale}, {beta}, {d}")


def _sqrt_bounds(q: Fraction, bits: int) -> tuple[Fraction, Fraction]:
    """Rationals ``lo <= sqrt(q) <= hi`` with ``hi - lo = 2^-bits`` (``q >= 0``)."""
    s = math.isqrt(math.floor(q * (1 << (2 * bits))))
    return Fraction(s, 1 << bits), Fraction(s + 1, 1 << bits)


def _ln_bounds(x: Fraction, bits: int) -> tuple[Fraction, Fraction]:
    """Rationals ``lo <= ln(x) <= hi`` for rational ``x > 0``; ``hi - lo -> 0`` as bits grow.

    ``x = m · 2^k`` with ``m`` in ``[1, 2)``; ``ln m = 2 atanh((m - 1)/(m + 1))``
    and ``ln 2 = 2 atanh(1/3)``, each summed with a certified tail bound.
    """
    k = x.numerator.bit_length() - x.denominator.bit_length()
    m = x / Fraction(2) ** k
    if m < 1:
        m, k = 2 * m, k - 1
    m_bits, two_bits = bits + 2, bits + 2 + abs(k).bit_length()
    m_lo, m_hi = _two_atanh_bounds((m - 1) / (m + 1), m_bits)
    l2_lo, l2_hi = _two_atanh_bounds(Fraction(1, 3), two_bits)
    if k < 0:
        l2_lo, l2_hi = l2_hi, l2_lo
    lo = Fraction(m_lo, 1 << m_bits) + k * Fraction(l2_lo, 1 << two_bits)
    hi = Fraction(m_hi, 1 << m_bits) + k * Fraction(l2_hi, 1 << two_bits)
    return lo, hi


def _two_atanh_bounds(z: Fraction, bits: int) -> tuple[int, int]:
    """Integers ``lo <= 2^bits · 2 atanh(z) <= hi``, for rational ``0 <= z <= 1/3``.

    ``2 atanh(z) = Σ_j 2 z^(2j+1) / (2j+1)``; after term ``j`` the rest is at most
    ``2 z^(2j+3) / ((2j+3)(1 - z²))``.
    """
    scale = 1 << bits
    z2 = z * z
    power = z
    lo = hi = 0
    j = 0
    while True:
        num = 2 * scale * power.numerator
        den = (2 * j + 1) * power.denominator
        lo += num // den
        hi += -(-num // den)
        power *= z2
        tail = 2 * scale * power / ((2 * j + 3) * (1 - z2))
        if tail <= 1:
            return lo, hi + 1
        j += 1


def _float_up(value: int | Fraction) -> float:
    """The least binary64 value ``>= value``.

    Raises:
        ParameterError: if ``value`` exceeds the largest finite binary64 value.
    """
    try:
        out = float(value)
    except OverflowError:
        raise ParameterError(f"bound {_short(value)} exceeds the binary64 range") from None
    if Fraction(out) < value:
        out = math.nextafter(out, math.inf)
    if math.isinf(out):
        raise ParameterError(f"bound {_short(value)} exceeds the binary64 range")
    return out


def _short(value: int | Fraction) -> str:
    text = str(value)
    return text if len(text) <= 40 else f"a {len(text)}-character number"


def _sqrt_up(n: int) -> float:
    """The least binary64 value ``x >= 0`` with ``x² >= n`` (exactly).

    Raises:
        ParameterError: if ``sqrt(n)`` exceeds the largest finite binary64 value.
    """
    try:
        x = math.sqrt(n)
    except OverflowError:
        raise ParameterError(f"sqrt({_short(n)}) exceeds the binary64 range") from None
    while Fraction(x) ** 2 < n:
        x = math.nextafter(x, math.inf)
    while x > 0 and Fraction(math.nextafter(x, 0.0)) ** 2 >= n:
        x = math.nextafter(x, 0.0)
    return x


# ---------------------------------------------------------------------- sensitivity


def l2_sensitivity(params: EncodingParams, *, length: int) -> float:
    """``Δ₂ = sqrt(T)``, rounded up to binary64: no encoding has a larger L2 norm.

    Spec: spec/05-encoding.md#sensitivity
    Proof: proofs_notes/conditional-rounding-bound.md
    """
    return _sqrt_up(norm_bound_sq(params, length=length))


def l1_sensitivity(params: EncodingParams, *, length: int) -> float:
    """``Δ₁ = min(sqrt(d_pad · T), T)``, rounded up: no encoding has a larger L1 norm.

    Spec: spec/05-encoding.md#sensitivity
    Proof: proofs_notes/conditional-rounding-bound.md

    This is ``Δ₂ · min(sqrt(d_pad), Δ₂)`` (Kairouz, Liu, Steinke 2021) with
    ``Δ₂ = sqrt(T)``: Cauchy–Schwarz, and ``|v| <= v²`` for integers.
    """
    t = norm_bound_sq(params, length=length)
    return min(_sqrt_up(params.padded_length(length) * t), _float_up(t))


def linf_sensitivity(params: EncodingParams, *, length: int) -> int:
    """``isqrt(T)``: no coordinate of an encoding exceeds it in absolute value.

    Spec: spec/05-encoding.md#sensitivity
    """
    return math.isqrt(norm_bound_sq(params, length=length))


# ---------------------------------------------------------------------- encode


@dataclass(frozen=True, slots=True)
class Encoding:
    """The result of :func:`encode`.

    Spec: spec/05-encoding.md#signed-map

    ``values`` is the 1-D field vector (length ``d_pad``); ``attempts`` the
    number of rounding attempts used; ``norm_sq`` the exact squared L2 norm
    of the signed integers it carries; ``norm_bound_sq`` the bound ``T``
    they respect.
    """

    values: Field
    attempts: int
    norm_sq: int
    norm_bound_sq: int


def encode(
    update: npt.NDArray[np.floating] | npt.NDArray[np.integer],
    *,
    params: EncodingParams,
    rotation_seed: Seed,
    rounding_seed: Seed,
) -> Encoding:
    """Encode a real update of any shape into ``params.field``.

    Spec: spec/05-encoding.md#encode
    Proof: proofs_notes/encoding-error-bound.md

    ``rotation_seed`` is public per-round randomness shared by all nodes;
    ``rounding_seed`` is the node's own.

    Raises:
        ParameterError: the update is not a non-empty real numpy array, or a
            seed is not 32 bytes.
        EncodingError: the update has a NaN or infinity; a step overflows;
            conditional rounding fails ``MAX_ATTEMPTS`` times; or a rounded
            value lies outside the field's signed range.
    """
    flat = _flat_update(update)
    as_seed(rotation_seed)
    as_seed(rounding_seed)
    if not np.isfinite(flat).all():
        i = int(np.flatnonzero(~np.isfinite(flat))[0])
        raise EncodingError(f"update coordinate {i} must be finite; got {flat[i]!r}")
    length = len(flat)
    rotated = rotate(flat, seed=rotation_seed) if params.rotate else flat
    scaled = clip_and_scale(rotated, clip=params.clip, scale=params.scale)
    bound = norm_bound_sq(params, length=length)
    rounding = conditional_round(scaled, seed=rounding_seed, bound_sq=bound)
    return Encoding(
        values=params.field.signed_encode(rounding.values),
        attempts=rounding.attempts,
        norm_sq=rounding.norm_sq,
        norm_bound_sq=bound,
    )


def _flat_update(update: object) -> F64:
    if not isinstance(update, np.ndarray):
        raise ParameterError(f"update must be a numpy array; got {type(update).__name__}")
    if update.dtype.kind not in "fiu":
        raise ParameterError(f"update must be real (float or integer); got dtype {update.dtype}")
    if update.size == 0:
        raise ParameterError(f"update must have at least one coordinate; got shape {update.shape}")
    return np.ascontiguousarray(update, dtype=np.float64).reshape(-1)


# ---------------------------------------------------------------------- decode


def decode_sum(total: Field, *, params: EncodingParams, rotation_seed: Seed, length: int) -> F64:
    """The real vector that a sum of encodings (plus noise) represents.

    Spec: spec/05-encoding.md#decoding-the-sum
    Proof: proofs_notes/encoding-error-bound.md

    Signed decode, convert to binary64, multiply by ``γ``, undo the
    rotation, keep the first ``length`` coordinates. Correct when the true
    integer sum lies in the field's signed range (see :func:`check_field`).

    Raises:
        FieldMismatchError: ``total`` is not in ``params.field``.
        ParameterError: ``total`` is not 1-D of length ``padded_length(length)``,
            or the seed is not 32 bytes.
    """
    if type(total) is not params.field:
        raise FieldMismatchError(
            f"total is in {type(total).__name__}; expected {params.field.__name__}"
        )
    d_pad = params.padded_length(length)
    if total.shape != (d_pad,):
        raise ParameterError(
            f"total must be a 1-D vector of padded_length({length}) = {d_pad} elements; "
            f"got shape {total.shape}"
        )
    as_seed(rotation_seed)
    scaled = total.signed_decode().astype(np.float64) * params.scale
    out = unrotate(scaled, seed=rotation_seed) if params.rotate else scaled
    result: F64 = np.array(out[:length])
    return result


# ---------------------------------------------------------------------- field selection


def noise_tail(
    mechanism: str,
    *,
    variance: Fraction | int | float,
    coordinates: int,
    wrap_probability: float,
) -> int:
    """An integer ``τ`` with ``P(|N| > τ) <= wrap_probability / coordinates`` per coordinate.

    Spec: spec/05-encoding.md#field-selection
    Proof: proofs_notes/encoding-error-bound.md

    ``N`` is the total noise of one coordinate: a sum of independent
    discrete Gaussians whose parameters ``σ_j²`` sum to ``variance``
    (``"dgauss"``), or ``Sk(variance)`` (``"skellam"``). With
    ``ℓ = ln(2 · coordinates / wrap_probability)`` rounded up:

    - dgauss: ``τ = ceil(sqrt(2 · variance · ℓ))`` (sub-Gaussian tail;
      Canonne, Kamath, Steinke 2020, arXiv 2004.00010);
    - skellam: ``τ = ceil(ℓ/3 + sqrt(ℓ²/9 + 2 · variance · ℓ))`` (Bernstein).

    Raises:
        ParameterError: unknown mechanism, ``variance < 0``, ``coordinates < 1``,
            or ``wrap_probability`` outside ``(0, 1)``.
    """
    if mechanism not in MECHANISMS:
        raise ParameterError(f"mechanism must be one of {MECHANISMS}; got {mechanism!r}")
    lam = _nonnegative_rational(variance, "noise variance")
    if type(coordinates) is not int or coordinates < 1:
        raise ParameterError(f"coordinates must be an int >= 1; got {coordinates!r}")
    rho = _probability(wrap_probability, "wrap_probability")
    if lam == 0:
        return 0
    ell = _ln_bounds(2 * coordinates / rho, 64)[1]
    if mechanism == "dgauss":
        return ceil_sqrt(2 * lam * ell)
    return _ceil_plus_sqrt(ell / 3, ell * ell / 9 + 2 * lam * ell)


def _ceil_plus_sqrt(a: Fraction, b: Fraction) -> int:
    """The least integer ``t`` with ``t >= a + sqrt(b)`` (``a, b >= 0``)."""
    t = math.ceil(a) + math.isqrt(math.floor(b))
    while t - a < 0 or (t - a) ** 2 < b:
        t += 1
    while t - 1 - a >= 0 and (t - 1 - a) ** 2 >= b:
        t -= 1
    return t


def _nonnegative_rational(value: object, name: str) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, Fraction | int | float):
        raise ParameterError(f"{name} must be a Fraction, int or float; got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ParameterError(f"{name} must be finite; got {value!r}")
    out = Fraction(value)
    if out < 0:
        raise ParameterError(f"{name} must be >= 0; got {value!r}")
    return out


def _probability(value: object, name: str) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, Fraction | float):
        raise ParameterError(f"{name} must be a float in (0, 1); got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ParameterError(f"{name} must be a float in (0, 1); got {value!r}")
    out = Fraction(value)
    if not 0 < out < 1:
        raise ParameterError(f"{name} must be in the open interval (0, 1); got {value!r}")
    return out


def check_field(
    params: EncodingParams,
    *,
    contributors: int,
    length: int,
    noise_variance: Fraction | int | float,
    wrap_probability: float,
    mechanism: str,
) -> None:
    """Check that a sum of ``contributors`` encodings plus noise wraps with probability ``<= ρ``.

    Spec: spec/05-encoding.md#field-selection
    Proof: proofs_notes/encoding-error-bound.md

    With ``h = (p - 1) / 2``, ``d_pad = padded_length(length)``, the
    per-coordinate sum bound ``S = contributors · isqrt(T)`` and the noise
    tail ``τ = noise_tail(mechanism, variance=noise_variance,
    coordinates=d_pad, wrap_probability=ρ)``, requires ``S <= h`` and
    ``S + τ <= h``. Then every coordinate of the true integer sum lies in
    ``[-h, h]`` except with probability at most ``ρ`` overall.

    Raises:
        ParameterError: an argument is invalid, or either bound fails; the
            message names the bound.
    """
    shortfall = _field_shortfall(
        params,
        contributors=contributors,
        length=length,
        noise_variance=noise_variance,
        wrap_probability=wrap_probability,
        mechanism=mechanism,
    )
    if shortfall is not None:
        raise ParameterError(shortfall)


def _field_shortfall(
    params: EncodingParams,
    *,
    contributors: int,
    length: int,
    noise_variance: Fraction | int | float,
    wrap_probability: float,
    mechanism: str,
) -> str | None:
    """Why ``params.field`` is too small (None if it is large enough); raises on bad arguments."""
    if type(contributors) is not int or contributors < 1:
        raise ParameterError(f"contributors must be an int >= 1; got {contributors!r}")
    d_pad = params.padded_length(length)
    tau = noise_tail(
        mechanism,
        variance=noise_variance,
        coordinates=d_pad,
        wrap_probability=wrap_probability,
    )
    field = params.field
    half = (field.MODULUS - 1) // 2
    linf = linf_sensitivity(params, length=length)
    total = contributors * linf
    if total > half:
        return (
            f"{field.__name__} is too small: the sum bound n·isqrt(T) = {contributors}·{linf} "
            f"= {total} exceeds (p - 1)/2 = {half}"
        )
    if total + tau > half:
        return (
            f"{field.__name__} is too small: the sum bound plus the noise tail "
            f"n·isqrt(T) + τ = {total} + {tau} = {total + tau} exceeds (p - 1)/2 = {half} "
            f"({mechanism}, noise variance {noise_variance}, wrap probability {wrap_probability})"
        )
    return None


def choose_field(
    *,
    clip: float,
    scale: float,
    beta: float,
    rotate: bool,
    contributors: int,
    length: int,
    noise_variance: Fraction | int | float,
    wrap_probability: float,
    mechanism: str,
) -> type[Field]:
    """The smallest named field (``FIELDS``, by modulus) that passes :func:`check_field`.

    Spec: spec/05-encoding.md#field-selection

    Raises:
        ParameterError: an argument is invalid, or no named field passes (the
            message gives the largest field's shortfall).
    """
    shortfall = ""
    for field in sorted(FIELDS.values(), key=lambda f: f.MODULUS):
        params = EncodingParams(field, clip=clip, scale=scale, beta=beta, rotate=rotate)
        found = _field_shortfall(
            params,
            contributors=contributors,
            length=length,
            noise_variance=noise_variance,
            wrap_probability=wrap_probability,
            mechanism=mechanism,
        )
        if found is None:
            return field
        shortfall = found
    raise ParameterError(f"no named field is large enough: {shortfall}")
