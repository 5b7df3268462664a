"""The distributed noise plan: each node's noise share, and the top-up rule.

Spec: spec/07-noise-plan.md

A deployment fixes a target σ*² for the noise that the *honest* contributors
must carry in every released sum, the number ``n`` of expected contributors,
and the numbers ``D`` of dropouts and ``T`` of colluders it must withstand.
The plan then says how much noise each node adds:

- **initial share**: every expected contributor adds noise of variance
  ``v0 = σ*² / (n − T)`` to its update, before anyone knows who will drop;
- **top-up**: once the contributor set ``U`` is fixed, with ``d = n − |U|``
  dropouts, every member of ``U`` adds a second, independent draw of
  variance ``v1(d) = σ*² / (n − d − T) − σ*² / (n − T)`` (zero when ``d = 0``).

Each survivor then carries ``σ*² / (n − d − T)``, so the at least
``n − d − T`` honest survivors carry at least σ*², whichever ``d <= D`` nodes
drop and whichever ``c <= T`` survivors collude (equality at ``c = T``).
For Skellam the released noise is exactly ``Sk((n − d)·σ*² / (n − d − T))``
(closure, proofs_notes/skellam-closure.md). For the discrete Gaussian the
plan exposes each survivor's draws (their σ² parameters) for the accountant,
which bounds the sum with Kairouz, Liu and Steinke's τ (:func:`kls_tau`).

Every privacy-relevant number here is an exact :class:`fractions.Fraction`;
:func:`kls_tau` returns an exact rational *upper* bound, computed with
integers only.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from protocol.errors import ParameterError
from protocol.noise import MECHANISMS

#: A rational lower bound on π: its first 50 decimals, truncated (π − PI_LOWER < 10^−50).
PI_LOWER = Fraction(314159265358979323846264338327950288419716939937510, 10**50)

#: Fixed-point bits of :func:`kls_tau`'s intermediate values (each rounded the safe way).
TAU_PRECISION = 128


def _count(value: int, name: str, *, minimum: int) -> int:
    if type(value) is not int or value < minimum:
        raise ParameterError(f"{name} must be an int >= {minimum}; got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class NoisePlan:
    """How much noise each node adds, so that honest nodes carry at least σ*².

    Spec: spec/07-noise-plan.md#inputs
    Proof: proofs_notes/honest-noise-under-dropouts.md

    Build it with :func:`plan`. ``target_variance`` is σ*²: λ* for Skellam,
    the total σ² parameter of the honest sum for the discrete Gaussian.

    Pre-conditions (checked in this order, each failure a ``ParameterError``):
        - ``mechanism`` is ``"dgauss"`` or ``"skellam"``
        - ``target_variance`` is an ``int`` or ``Fraction`` (not ``bool``,
          not ``float``), and ``> 0``
        - ``contributors >= 1``, ``max_dropouts >= 0``, ``max_colluders >= 0``
          (``int``, not ``bool``)
        - the honest-survivor bound ``contributors − max_dropouts − max_colluders >= 1``
        - ``0 <= precovered <= max_dropouts``

    ``contributors`` counts the round's *noise sources* (every contributor by
    default; spec/09-protocol.md#noise-sources). ``precovered`` is ``c0``, the
    dropouts the initial shares already cover (spec/07-noise-plan.md#pre-covering):
    with ``c0 = D`` no top-up is ever needed.

    Raises:
        ParameterError: if a pre-condition fails; the message names the bound.
    """

    mechanism: str
    target_variance: Fraction
    contributors: int
    max_dropouts: int
    max_colluders: int
    precovered: int = 0

    def __post_init__(self) -> None:
        if self.mechanism not in MECHANISMS:
            raise ParameterError(f"mechanism must be one of {MECHANISMS}; got {self.mechanism!r}")
        target = self.target_variance
        if isinstance(target, bool) or not isinstance(target, Fraction | int):
            raise ParameterError(f"target_variance must be a Fraction or int; got {target!r}")
        if target <= 0:
            raise ParameterError(f"target_variance must be > 0; got {target}")
        object.__setattr__(self, "target_variance", Fraction(target))
        n = _count(self.contributors, "contributors", minimum=1)
        d = _count(self.max_dropouts, "max_dropouts", minimum=0)
        t = _count(self.max_colluders, "max_colluders", minimum=0)
        if n - d - t < 1:
            raise ParameterError(
                "the honest-survivor bound contributors − max_dropouts − max_colluders >= 1 "
                f"fails: {n} − {d} − {t} = {n - d - t}; the plan cannot guarantee the target "
                "when D dropouts and T colluders can leave no honest survivor"
            )
        c0 = _count(self.precovered, "precovered", minimum=0)
        if c0 > d:
            raise ParameterError(f"precovered must be <= max_dropouts = {d}; got {c0}")

    # ------------------------------------------------------------------ checks

    def _dropouts(self, dropouts: int) -> int:
        if type(dropouts) is not int or not 0 <= dropouts <= self.max_dropouts:
            raise ParameterError(
                f"dropouts must be an int in [0, max_dropouts = {self.max_dropouts}]; "
                f"got {dropouts!r}: beyond D dropouts the plan cannot guarantee the target "
                "and the round must not release"
            )
        return dropouts

    def _colluders(self, dropouts: int, colluders: int | None) -> int:
        if colluders is None:
            return self.max_colluders
        bound = min(self.max_colluders, self.contributors - dropouts)
        if type(colluders) is not int or not 0 <= colluders <= bound:
            raise ParameterError(
                f"colluders among the survivors must be an int in [0, min(max_colluders, "
                f"contributors − dropouts) = {bound}]; got {colluders!r}"
            )
        return colluders

    # ------------------------------------------------------------------ shares

    def initial_share_variance(self) -> Fraction:
        """``v0 = s(c0) = σ*² / (n − c0 − T)``: the variance every noise source adds first.

        Spec: spec/07-noise-plan.md#initial-shares
        Proof: proofs_notes/honest-noise-under-dropouts.md (E1)
        """
        return self.target_variance / (self.contributors - self.precovered - self.max_colluders)

    def survivor_variance(self, dropouts: int) -> Fraction:
        """``s(d) = σ*² / (n − max(d, c0) − T)``: one survivor's total, initial share plus top-up.

        Spec: spec/07-noise-plan.md#top-up
        Proof: proofs_notes/honest-noise-under-dropouts.md (E2)

        Raises:
            ParameterError: ``dropouts`` is not an int in ``[0, D]``.
        """
        d = max(self._dropouts(dropouts), self.precovered)
        return self.target_variance / (self.contributors - d - self.max_colluders)

    def top_up_variance(self, dropouts: int) -> Fraction:
        """``v1(d) = s(d) − v0``: what each survivor adds once ``U`` is fixed.

        Spec: spec/07-noise-plan.md#top-up
        Proof: proofs_notes/honest-noise-under-dropouts.md (E2), (E5)

        Zero when ``d <= c0`` (then nothing is drawn). With ``c0 = 0`` it equals
        ``σ*²·d / ((n − T)(n − d − T))``.

        Raises:
            ParameterError: ``dropouts`` is not an int in ``[0, D]`` (the
                honest-survivor bound ``n − d − T >= 1`` then holds).
        """
        return self.survivor_variance(dropouts) - self.initial_share_variance()

    def top_up_increment(self, *, from_dropouts: int, to_dropouts: int) -> Fraction:
        """``v1(d') − v1(d)``: the further top-up when ``U`` is re-fixed with ``d' >= d`` dropouts.

        Spec: spec/07-noise-plan.md#top-up
        Proof: proofs_notes/honest-noise-under-dropouts.md (E6)

        Pre-conditions:
            - ``0 <= from_dropouts <= to_dropouts <= D``

        Raises:
            ParameterError: a pre-condition fails.
        """
        d, d2 = self._dropouts(from_dropouts), self._dropouts(to_dropouts)
        if d2 < d:
            raise ParameterError(
                f"to_dropouts must be >= from_dropouts (U only shrinks); got {d2} < {d}"
            )
        return self.survivor_variance(d2) - self.survivor_variance(d)

    def survivor_draws(self, dropouts: int) -> tuple[Fraction, ...]:
        """One survivor's independent draws: ``(v0,)``, or ``(v0, v1(d))`` when ``d > 0``.

        Spec: spec/07-noise-plan.md#discrete-gaussian-sums
        Proof: proofs_notes/ddg-sum-bound.md

        For ``"dgauss"`` these are the σ² parameters the accountant needs;
        their sum is :meth:`survivor_variance`. For ``"skellam"`` the two
        draws together are exactly ``Sk(s(d))``.

        Raises:
            ParameterError: ``dropouts`` is not an int in ``[0, D]``.
        """
        top_up = self.top_up_variance(dropouts)
        v0 = self.initial_share_variance()
        return (v0, top_up) if top_up else (v0,)

    # ------------------------------------------------------------------ totals

    def min_honest_survivors(self, dropouts: int) -> int:
        """``n − d − T``: the fewest honest contributors in a set ``U`` with ``d`` dropouts.

        Spec: spec/07-noise-plan.md#guarantee

        Raises:
            ParameterError: ``dropouts`` is not an int in ``[0, D]``.
        """
        return self.contributors - self._dropouts(dropouts) - self.max_colluders

    def honest_variance(self, dropouts: int, *, colluders: int | None = None) -> Fraction:
        """The total variance of the honest survivors' noise: ``(n − d − c)·s(d) >= σ*²``.

        Spec: spec/07-noise-plan.md#guarantee
        Proof: proofs_notes/honest-noise-under-dropouts.md (E3)

        ``colluders`` is the number ``c`` of colluders among the survivors;
        the default ``None`` means the worst case ``c = T``, for which the
        value is at least σ*² (exactly σ*² once ``d >= c0``: the guaranteed lower bound).

        Raises:
            ParameterError: ``dropouts`` is not an int in ``[0, D]``, or
                ``colluders`` is not an int in ``[0, min(T, n − d)]``.
        """
        s = self.survivor_variance(dropouts)
        c = self._colluders(dropouts, colluders)
        return (self.contributors - dropouts - c) * s

    def colluder_variance(self, dropouts: int, *, colluders: int | None = None) -> Fraction:
        """``c·s(d)``: the noise that ``c`` surviving colluders add (known to them; never counted).

        Spec: spec/07-noise-plan.md#guarantee
        Proof: proofs_notes/honest-noise-under-dropouts.md (E4)

        Raises:
            ParameterError: as :meth:`honest_variance`.
        """
        s = self.survivor_variance(dropouts)
        return self._colluders(dropouts, colluders) * s

    def released_variance(self, dropouts: int) -> Fraction:
        """``(n − d)·σ*² / (n − d − T)``: the total noise in the released sum, all survivors.

        Spec: spec/07-noise-plan.md#guarantee
        Proof: proofs_notes/honest-noise-under-dropouts.md (E4), (E7)

        For Skellam the released noise is exactly ``Sk`` of this value. It
        assumes every survivor follows the plan; only
        :meth:`honest_variance` is a privacy guarantee.

        Raises:
            ParameterError: ``dropouts`` is not an int in ``[0, D]``.
        """
        d = self._dropouts(dropouts)
        return (self.contributors - d) * self.survivor_variance(d)


def plan(
    *,
    mechanism: str,
    target_variance: Fraction,
    contributors: int,
    max_dropouts: int,
    max_colluders: int,
    precovered: int = 0,
) -> NoisePlan:
    """The noise plan for a target σ*², ``n`` contributors, ``D`` dropouts and ``T`` colluders.

    Spec: spec/07-noise-plan.md#inputs
    Proof: proofs_notes/honest-noise-under-dropouts.md

    Pre-conditions: those of :class:`NoisePlan`.

    Raises:
        ParameterError: if a pre-condition fails; the message names the bound.
    """
    return NoisePlan(
        mechanism=mechanism,
        target_variance=target_variance,
        contributors=contributors,
        max_dropouts=max_dropouts,
        max_colluders=max_colluders,
        precovered=precovered,
    )


# ---------------------------------------------------------------------- τ of KLS 2021


def exp_neg_upper(x: Fraction) -> Fraction:
    """A rational ``U >= exp(−x)`` for rational ``x >= 0``, with integers only.

    Proof: proofs_notes/ddg-sum-bound.md (E3), (E4)

    With ``P = TAU_PRECISION`` and ``r`` such that ``y = x / 2^r < 1``:
    ``y`` is rounded down to ``P`` bits, ``exp(y)`` is bounded below by its
    Taylor series truncated and rounded down, ``exp(−y) <= 1 / that``
    rounded up, and squaring ``r`` times, rounding up each time, gives an
    upper bound on ``exp(−2^r·y) = exp(−x)``.
    """
    p = TAU_PRECISION
    num, den = x.numerator, x.denominator
    r = max(0, num.bit_length() - den.bit_length() + 1)  # x < 2^r, so y < 1
    y = (num << p) // (den << r)  # floor(2^P · x / 2^r): y/2^P <= x/2^r
    one = 1 << p
    term, lower, j = one, one, 1  # lower/2^P <= Σ_{i<j} (y/2^P)^i / i! <= exp(y/2^P)
    while term:
        term = term * y // (j << p)
        lower += term
        j += 1
    upper = -(-(one << p) // lower)  # ceil(2^2P / lower) / 2^P >= exp(−y/2^P)
    for _ in range(r):
        upper = -(-(upper * upper) >> p)  # ceil(upper² / 2^P)
    return Fraction(upper, one)


def kls_tau(*, summands: int, sigma2: Fraction) -> Fraction:
    """An exact rational upper bound on ``τ = 10·Σ_{k=1}^{m−1} exp(−2π²σ²·k/(k+1))``.

    Spec: spec/07-noise-plan.md#discrete-gaussian-sums
    Proof: proofs_notes/ddg-sum-bound.md

    τ measures how far the sum of ``m = summands`` independent
    ``N_Z(0, σ²)`` draws is from ``N_Z(0, m·σ²)`` (Kairouz, Liu, Steinke,
    ICML 2021, arXiv 2102.06387, Theorem 1; used in their Proposition 14).
    It is 0 for ``m = 1``. The bound replaces π by :data:`PI_LOWER` (< π,
    which can only increase each term) and evaluates each exponential with
    :func:`exp_neg_upper`; no floating point is used. It exceeds the true τ
    by less than ``10·(m − 1)·2^−100`` for exponents below ``2^30``
    (checked against mpmath in the tests).

    Pre-conditions:
        - ``summands`` is an int ``>= 1``
        - ``sigma2`` is an ``int`` or ``Fraction`` ``> 0``

    Raises:
        ParameterError: if a pre-condition fails.
    """
    m = _count(summands, "summands", minimum=1)
    if isinstance(sigma2, bool) or not isinstance(sigma2, Fraction | int):
        raise ParameterError(f"sigma2 must be a Fraction or int; got {sigma2!r}")
    if sigma2 <= 0:
        raise ParameterError(f"sigma2 must be > 0; got {sigma2}")
    base = 2 * PI_LOWER**2 * Fraction(sigma2)
    return 10 * sum((exp_neg_upper(base * Fraction(k, k + 1)) for k in range(1, m)), Fraction(0))
