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

from fractions import Fraction
from math import isqrt

from protocol.errors import ParameterError
from protocol.xof import Xof

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
    if mechanism not in MECHANISMS:
        raise ParameterError(f"mechanism must be one of {MECHANISMS}; got {mechanism!r}")
    if type(count) is not int or count < 0:
        raise ParameterError(f"count must be an int >= 0; got {count!r}")
    variance = _rational(variance, "variance")
    if variance <= 0:
        raise ParameterError(f"variance must be > 0; got {variance}")
    draw = discrete_gaussian if mechanism == "dgauss" else skellam
    return [draw(xof, variance) for _ in range(count)]
