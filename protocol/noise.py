"""Exact integer noise samplers, driven by the XOF, with rational arithmetic only.

Spec: spec/06-noise.md

Every sampler here reads its randomness from one :class:`~protocol.xof.Xof`
stream, in a fixed order, through ``uniform_int`` and ``bernoulli`` (both
exact: spec/03-xof.md). Parameters are :class:`fractions.Fraction`; no
floating-point number appears on this path, so the output distribution is
exactly the one named, and the same seed and tag give the same samples in any
implementation that follows spec/06-noise.md.

- ``bernoulli_exp``: Bernoulli(exp(-γ)) for rational γ >= 0
  (Canonne, Kamath, Steinke 2020, arXiv 2004.00010, Algorithm 1);
- ``discrete_laplace``: P[x] ∝ exp(-|x|/t) for integer t >= 1 (ibid., Algorithm 2);
- ``discrete_gaussian``: P[x] ∝ exp(-x²/(2σ²)) for rational σ² > 0 (ibid., Algorithm 3);
- ``poisson``: Poisson(μ) for rational μ >= 0, from the Poisson(1) sampler of
  Duchon and Duvignau (Electron. J. Combin. 23(4), 2016) and thinning;
- ``skellam``: Sk(λ) = Poisson(λ/2) - Poisson(λ/2), variance λ.

These are the reference samplers: exact, and sequential (one sample after the
other on one stream). They are too slow for 10^6 coordinates in Python; a
table-based sampler with a proven statistical distance will serve that.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property, lru_cache
from math import floor, isqrt

import numpy as np
import numpy.typing as npt

from protocol.errors import ParameterError
from protocol.xof import SEED_SIZE, Seed, Tag, Xof, as_seed

#: The mechanisms SDL samples, by name (as written in vectors and on the command line).
MECHANISMS = ("dgauss", "skellam")


def _rational(value: Fraction | int, name: str) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, Fraction | int):
        raise ParameterError(f"{name} must be a Fraction or int; got {value!r}")
    return Fraction(value)


# spec-excerpt: bernoulli-exp
def bernoulli_exp(xof: Xof, gamma: Fraction) -> bool:
    """True with probability exactly exp(-γ), for rational γ >= 0.

    Spec: spec/06-noise.md#bernoulliexp-γ
    Proof: proofs_notes/bernoulli-exp.md
    """
    gamma = _rational(gamma, "gamma")
    if gamma < 0:
        raise ParameterError(f"gamma must be >= 0; got {gamma}")
    while gamma > 1:
        # exp(-γ) = exp(-1) · exp(-(γ - 1)): one Bernoulli(exp(-1)) per unit.
        if not _bernoulli_exp_at_most_one(xof, Fraction(1)):
            return False
        gamma -= 1
    return _bernoulli_exp_at_most_one(xof, gamma)


def _bernoulli_exp_at_most_one(xof: Xof, gamma: Fraction) -> bool:
    # Draw A_k ~ Bernoulli(γ/k) for k = 1, 2, … until one fails; the index
    # k of the first failure is odd with probability exp(-γ).
    k = 1
    while xof.bernoulli(gamma.numerator, gamma.denominator * k):
        k += 1
    return k % 2 == 1


# end-spec-excerpt


# spec-excerpt: discrete-laplace
def discrete_laplace(xof: Xof, scale: int) -> int:
    """One sample with P[x] ∝ exp(-|x| / scale) on the integers.

    Spec: spec/06-noise.md#discrete-laplace
    Proof: proofs_notes/discrete-gaussian-exact.md
    """
    if type(scale) is not int or scale < 1:
        raise ParameterError(f"discrete Laplace scale must be an int >= 1; got {scale!r}")
    while True:
        u = xof.uniform_int(scale)
        if not bernoulli_exp(xof, Fraction(u, scale)):
            continue
        v = 0
        while bernoulli_exp(xof, Fraction(1)):
            v += 1
        x = u + scale * v
        negative = xof.bernoulli(1, 2)
        if negative and x == 0:
            continue
        return -x if negative else x


# end-spec-excerpt


# spec-excerpt: discrete-gaussian
def discrete_gaussian(xof: Xof, sigma2: Fraction) -> int:
    """One sample with P[x] ∝ exp(-x² / (2σ²)) on the integers.

    Spec: spec/06-noise.md#discrete-gaussian
    Proof: proofs_notes/discrete-gaussian-exact.md
    """
    sigma2 = _rational(sigma2, "sigma2")
    if sigma2 <= 0:
        raise ParameterError(f"discrete Gaussian variance parameter must be > 0; got {sigma2}")
    t = isqrt(sigma2.numerator // sigma2.denominator) + 1  # floor(σ) + 1
    while True:
        y = discrete_laplace(xof, t)
        if bernoulli_exp(xof, (abs(y) - sigma2 / t) ** 2 / (2 * sigma2)):
            return y


# end-spec-excerpt


# spec-excerpt: poisson
def poisson_one(xof: Xof) -> int:
    """One Poisson(1) sample (Duchon and Duvignau 2016), integers only.

    Spec: spec/06-noise.md#poisson
    Proof: proofs_notes/poisson-exact.md
    """
    ret, a, b = 1, 1, 0
    while True:
        j = xof.uniform_int(a + 1)  # uniform in [0, a]
        if j < a and j < b:
            return ret
        if j == a:
            ret += 1
        else:
            ret -= 1
            b = a + 1
        a += 1


def poisson(xof: Xof, mean: Fraction) -> int:
    """One Poisson(μ) sample for rational μ >= 0.

    Spec: spec/06-noise.md#poisson
    Proof: proofs_notes/poisson-exact.md

    Poisson(μ) is the sum of floor(μ) Poisson(1) samples and a Poisson(1)
    sample thinned by Bernoulli(μ - floor(μ)) per unit.
    """
    mean = _rational(mean, "mean")
    if mean < 0:
        raise ParameterError(f"Poisson mean must be >= 0; got {mean}")
    whole = mean.numerator // mean.denominator
    frac = mean - whole
    total = sum(poisson_one(xof) for _ in range(whole))
    if frac:
        total += sum(
            xof.bernoulli(frac.numerator, frac.denominator) for _ in range(poisson_one(xof))
        )
    return total


# end-spec-excerpt


def skellam(xof: Xof, variance: Fraction) -> int:
    """One Sk(λ) sample: Poisson(λ/2) - Poisson(λ/2), of variance λ.

    Spec: spec/06-noise.md#skellam
    Proof: proofs_notes/skellam-closure.md
    """
    variance = _rational(variance, "variance")
    if variance < 0:
        raise ParameterError(f"Skellam variance must be >= 0; got {variance}")
    half = variance / 2
    return poisson(xof, half) - poisson(xof, half)


def sample(xof: Xof, mechanism: str, variance: Fraction, count: int) -> list[int]:
    """``count`` successive samples of ``mechanism`` with total variance ``variance``.

    Spec: spec/06-noise.md#sampling-a-vector

    For ``"dgauss"`` the variance is the parameter σ² of the discrete
    Gaussian (its variance is slightly below σ²); for ``"skellam"`` it is λ.
    """
    variance = _check_vector_request(mechanism, variance, count)
    draw = discrete_gaussian if mechanism == "dgauss" else skellam
    return [draw(xof, variance) for _ in range(count)]


# ---------------------------------------------------------------------- table sampler
# Spec: spec/06-noise.md#table-sampler

#: Fixed-point precision of the table weights, in bits.
WEIGHT_BITS = 256
#: Bytes of the main stream per table draw: one little-endian uint32 word,
#: the top 32 bits of the draw's uniform 128-bit integer.
WORD_BYTES = 4
#: Bytes of a draw's tie stream that complete its 128-bit integer (the low 96 bits).
TIE_BYTES = 12
#: Proven bound on the statistical distance between a table sampler's output
#: and the exact distribution. Proof: proofs_notes/cdt-statistical-distance.md
STATISTICAL_DISTANCE_BOUND = Fraction(1, 2**64)
#: Tables wider than this are refused (memory, and the distance proof's bound on L).
MAX_TABLE_SIZE = 1 << 24
#: Largest variance a vector request accepts: samples then stay far below 2^53,
#: so they survive JSON readers that hold numbers as float64 (spec/01-conventions.md#json).
MAX_VARIANCE = Fraction(2**48)

# The guide of a table (the fast path of CdtTable.draw_words; spec
# 06-noise.md leaves it to the implementation). Words are split into 2^b
# buckets by their top b bits. A bucket's entry >= 0 is the number of
# thresholds whose top 32 bits lie below the bucket, when none lies inside it:
# every word of the bucket has that count. An entry -1 - k says that exactly
# one threshold's top 32 bits lie inside the bucket, threshold k's; _SEVERAL
# says that two or more do. b is 16, or 18 for wide tables, where more than
# 1/32 of the 16-bit buckets hold a threshold (then 18 bits is faster).
_SEVERAL = np.iinfo(np.int32).min
_GUIDE_BITS = 16  # a word's top 16 bits are its second little-endian half-word
_WIDE_GUIDE_BITS = 18


@dataclass(frozen=True)
class _Guide:
    """The lookup arrays of one table, for :meth:`CdtTable.draw_words`."""

    #: The top 32 bits of every threshold below 2^128, non-decreasing.
    top: npt.NDArray[np.uint32]
    #: ``top`` followed by 2^32, which equals no word.
    top_ext: npt.NDArray[np.int64]
    #: One entry per bucket: a word's bucket is ``word >> (32 - bits)``.
    buckets: npt.NDArray[np.int32]
    bits: int

    @classmethod
    def build(cls, thresholds: tuple[int, ...]) -> _Guide:
        top = np.array([c >> 96 for c in thresholds if c < 1 << 128], dtype=np.uint32)
        top64 = top.astype(np.int64)
        for bits in (_GUIDE_BITS, _WIDE_GUIDE_BITS):
            width = 1 << (32 - bits)
            starts = np.arange(0, 1 << 32, width, dtype=np.int64)
            first = np.searchsorted(top64, starts, side="left")
            size = np.searchsorted(top64, starts + width, side="left") - first
            if np.count_nonzero(size) <= len(starts) // 32:
                break
        buckets = np.where(size == 0, first, np.where(size == 1, -1 - first, _SEVERAL))
        return cls(
            top=top,
            top_ext=np.append(top64, np.int64(1 << 32)),
            buckets=buckets.astype(np.int32),
            bits=bits,
        )


@dataclass(frozen=True, eq=False)
class CdtTable:
    """A cumulative distribution table over the integers ``[low, low + L)``.

    Spec: spec/06-noise.md#table-sampler

    ``thresholds[j] = floor(2^128 · S_j / S)`` for ``j < L - 1``, where
    ``S_j`` is the sum of the first ``j + 1`` fixed-point weights and ``S``
    their total. A uniform 128-bit integer ``u`` maps to
    ``low + #{j : thresholds[j] <= u}``.
    """

    low: int
    thresholds: tuple[int, ...]

    def draw(self, u: int) -> int:
        """The table's value for one uniform 128-bit integer ``u``."""
        return self.low + bisect_right(self.thresholds, u)

    def draw_words(self, words: npt.NDArray[np.uint32], *, tie_seed: Seed) -> npt.NDArray[np.int64]:
        """:meth:`draw` of ``U_j = words[j]·2^96 + tie_bits(tie_seed, j)``, for every ``j``.

        Spec: spec/06-noise.md#table-sampler

        ``low`` plus :meth:`count_words`.

        Raises:
            ParameterError: as :meth:`count_words`.
        """
        return np.add(self.count_words(words, tie_seed=tie_seed), self.low, dtype=np.int64)

    def count_words(
        self, words: npt.NDArray[np.uint32], *, tie_seed: Seed
    ) -> npt.NDArray[np.int32]:
        """``#{k : thresholds[k] <= words[j]·2^96 + tie_bits(tie_seed, j)}``, for every ``j``.

        Spec: spec/06-noise.md#ties

        Vectorized. ``tie_bits`` is computed only where ``words[j]`` equals the
        top 32 bits of some threshold: elsewhere the count is the number of
        thresholds whose top 32 bits are below ``words[j]``, whatever the low
        96 bits.

        Pre-conditions:
            - ``words`` is a 1-D array of unsigned 32-bit integers.

        Raises:
            ParameterError: if ``words`` is not such an array.
        """
        if words.ndim != 1 or words.dtype.kind != "u" or words.dtype.itemsize != WORD_BYTES:
            raise ParameterError(
                f"words must be a 1-D array of uint32; got {words.dtype} {words.shape}"
            )
        guide = self._guide
        words = np.ascontiguousarray(words, dtype="<u4")
        if guide.bits == _GUIDE_BITS:  # a view of every word's second half-word, no copy
            buckets = words.view("<u2")[1::2]
        else:
            buckets = words >> np.uint32(32 - guide.bits)
        counts = np.take(guide.buckets, buckets)  # final unless the bucket holds a threshold
        inside = np.flatnonzero(counts < 0)
        if inside.size:
            w = words[inside]
            code = counts[inside]
            several = np.flatnonzero(code == _SEVERAL)
            code[several] = -1  # a placeholder, replaced below
            k = -1 - code  # the bucket's one threshold
            below = k + (w > guide.top_ext[k])  # thresholds whose top 32 bits are < w
            if several.size:
                below[several] = np.searchsorted(guide.top, w[several], side="left")
            counts[inside] = below
            # Ties (w equals the top 32 bits of a threshold): the low 96 bits decide.
            for t in np.flatnonzero(guide.top_ext[below] == w):
                j = int(inside[t])
                u = (int(w[t]) << 96) | tie_bits(tie_seed, j)
                counts[j] = bisect_right(self.thresholds, u)
        return counts

    @cached_property
    def _guide(self) -> _Guide:
        return _Guide.build(self.thresholds)


def _check_table_size(size: int, what: str) -> None:
    """Refuse a table of ``size`` entries above :data:`MAX_TABLE_SIZE`, before it is built."""
    if size > MAX_TABLE_SIZE:
        raise ParameterError(
            f"{what} needs a noise table of {size} entries, over the table sampler's "
            f"limit of {MAX_TABLE_SIZE} = 2^24"
        )


def _table(low: int, weights: list[int]) -> CdtTable:
    _check_table_size(len(weights), "this distribution")
    total = sum(weights)
    thresholds = []
    acc = 0
    for w in weights[:-1]:
        acc += w
        thresholds.append((acc << 128) // total)
    return CdtTable(low=low, thresholds=tuple(thresholds))


#: The least integer y with exp(-y) < 2^-WEIGHT_BITS (tests/test_hostile_numbers.py certifies it).
_EXP_UNDERFLOW = 178


def _exp_neg_fixed(y: Fraction) -> int:
    """``floor(2^WEIGHT_BITS · exp(-y))`` for rational ``y > 0``, certified exactly.

    The Taylor series of exp(-y) alternates once its terms decrease, so a
    partial sum and the next term bracket the value; terms are added until
    both ends of the bracket have the same floor.
    """
    if y >= _EXP_UNDERFLOW:
        # exp(-y) <= exp(-178) < 2^-256, as 178 > 256·ln 2 = 177.45…: the floor is 0,
        # which the series below would also certify, after more than 2y terms.
        return 0
    scale = 1 << WEIGHT_BITS
    partial = Fraction(0)
    term = Fraction(1)
    k = 0
    while True:
        partial += term
        k += 1
        term = -term * y / k
        if k > 2 * y:  # terms now shrink in absolute value: partial ± |term| brackets
            lo, hi = sorted((partial, partial + term))
            if floor(lo * scale) == floor(hi * scale):
                return floor(lo * scale)


def ceil_sqrt(x: Fraction) -> int:
    """``ceil(sqrt(x))`` for rational ``x``, exactly (0 for ``x <= 0``).

    The least ``t >= 0`` with ``t² >= x``; as ``t²`` is an integer, that is
    the least ``t`` with ``t² >= ceil(x)``.
    """
    c = -((-x.numerator) // x.denominator)  # ceil(x)
    return 0 if c <= 0 else isqrt(c - 1) + 1


@lru_cache(maxsize=32)
def discrete_gaussian_table(sigma2: Fraction) -> CdtTable:
    """The table of the discrete Gaussian with parameter σ² on ``[-K, K]``.

    Spec: spec/06-noise.md#table-sampler
    Proof: proofs_notes/cdt-statistical-distance.md

    ``K = 10·ceil(σ) + 2``. Weights: ``w(0) = 2^P``,
    ``w(x + 1) = floor(w(x) · g(x) / 2^P)`` with ``g(0) = q``,
    ``g(x + 1) = floor(g(x) · q2 / 2^P)``, ``q = floor(2^P·exp(-1/(2σ²)))``,
    ``q2 = floor(q² / 2^P)`` and ``P = WEIGHT_BITS``; ``w(-x) = w(x)``.
    """
    sigma2 = _rational(sigma2, "sigma2")
    if sigma2 <= 0:
        raise ParameterError(f"discrete Gaussian variance parameter must be > 0; got {sigma2}")
    p = WEIGHT_BITS
    k_max = 10 * ceil_sqrt(sigma2) + 2
    _check_table_size(2 * k_max + 1, f"variance (sigma2) {sigma2} of dgauss")
    q = _exp_neg_fixed(1 / (2 * sigma2))
    q2 = (q * q) >> p
    half = [1 << p]
    g = q
    for _ in range(k_max):
        half.append((half[-1] * g) >> p)
        g = (g * q2) >> p
    return _table(-k_max, half[:0:-1] + half)


@lru_cache(maxsize=32)
def poisson_table(mean: Fraction) -> CdtTable:
    """The table of Poisson(μ) on ``[max(0, m - K), m + K]``, ``m = floor(μ)``.

    Spec: spec/06-noise.md#table-sampler
    Proof: proofs_notes/cdt-statistical-distance.md

    ``K = 12·ceil(sqrt(μ)) + 30``. Weights: ``w(m) = 2^P``, then
    ``w(k + 1) = floor(w(k)·μ / (k + 1))`` upwards and
    ``w(k - 1) = floor(w(k)·k / μ)`` downwards (μ as a reduced fraction).
    """
    mean = _rational(mean, "mean")
    if mean < 0:
        raise ParameterError(f"Poisson mean must be >= 0; got {mean}")
    num, den = mean.numerator, mean.denominator
    m = num // den
    k_max = 12 * ceil_sqrt(mean) + 30
    low = max(0, m - k_max)
    _check_table_size(m - low + k_max + 1, f"Poisson mean {mean} (variance {2 * mean} of skellam)")
    up = [1 << WEIGHT_BITS]
    for k in range(m, m + k_max):
        up.append(up[-1] * num // (den * (k + 1)))
    down = [1 << WEIGHT_BITS]
    for k in range(m, low, -1):
        down.append(down[-1] * k * den // num)
    return _table(low, down[:0:-1] + up)


# spec-excerpt: table-sample
def tie_bits(tie_seed: Seed, j: int) -> int:
    """``r_j``, the low 96 bits of table draw ``j``'s uniform 128-bit integer.

    Spec: spec/06-noise.md#ties
    """
    return int.from_bytes(Xof(tie_seed, Tag("noise.tie", (j,))).next_bytes(TIE_BYTES), "little")


def sample_table(xof: Xof, mechanism: str, variance: Fraction, count: int) -> npt.NDArray[np.int64]:
    """``count`` samples by the table sampler, vectorized.

    Spec: spec/06-noise.md#table-sampler
    Proof: proofs_notes/cdt-statistical-distance.md

    Reads the 32-byte tie seed, then one little-endian uint32 word ``w_j``
    per draw. Draw ``j`` is ``table.draw(w_j·2^96 + tie_bits(tie_seed, j))``.
    Sample ``i`` is draw ``i`` (dgauss), or draw ``2i`` minus draw ``2i + 1``,
    both from the Poisson(λ/2) table (skellam).
    """
    variance = _check_vector_request(mechanism, variance, count)
    draws = 1 if mechanism == "dgauss" else 2
    tie_seed = as_seed(xof.next_bytes(SEED_SIZE))
    words = np.frombuffer(xof._next_view(WORD_BYTES * draws * count), dtype="<u4")
    if mechanism == "dgauss":
        return discrete_gaussian_table(variance).draw_words(words, tie_seed=tie_seed)
    counts = poisson_table(variance / 2).count_words(words, tie_seed=tie_seed)
    return np.subtract(counts[0::2], counts[1::2], dtype=np.int64)  # X - Y: low cancels


# end-spec-excerpt


def _check_vector_request(mechanism: str, variance: Fraction, count: int) -> Fraction:
    if mechanism not in MECHANISMS:
        raise ParameterError(f"mechanism must be one of {MECHANISMS}; got {mechanism!r}")
    if type(count) is not int or count < 0:
        raise ParameterError(f"count must be an int >= 0; got {count!r}")
    variance = _rational(variance, "variance")
    if not 0 < variance <= MAX_VARIANCE:
        raise ParameterError(f"variance must be > 0 and <= 2^48; got {variance}")
    return variance
