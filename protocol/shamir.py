"""Shamir secret sharing over GF(p): plain, packed and robust.

Spec: spec/04-shamir.md

A sharing is described by a :class:`Shamir` parameter set: the field, the
privacy threshold ``t`` (any ``t`` shares reveal nothing) and the packing
``k`` (secrets per polynomial; ``k = 1`` is classical Shamir). Each
polynomial has degree ``t + k - 1`` and is fixed by its values at ``k``
*secret points* ``0, -1, …, -(k-1)`` and ``t`` *randomness points*
``-k, …, -(k+t-1)``; share holder ``j`` gets its value at a nonzero point
``x_j`` outside those. Any ``t + k`` shares rebuild all ``k`` secrets.

Everything is vectorized over the secret's length: sharing and
reconstruction are one exact matrix product each
(:meth:`protocol.field.Field.__matmul__`), never a Python loop over
coordinates. Only robust decoding touches single coordinates, and only the
few (at most ``max_errors + 1``) needed to find the faulty holders.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from protocol.errors import (
    FieldMismatchError,
    InconsistentShares,
    ParameterError,
    ThresholdNotMet,
)
from protocol.field import Field
from protocol.xof import Seed, Tag, Xof

#: Tag of the XOF stream that supplies a sharing's randomness. Spec: spec/03-xof.md#tags
SHARE_TAG = Tag("shamir.share")


@dataclass(frozen=True, slots=True)
class Share:
    """One holder's share: the evaluation point ``x`` and one value per polynomial.

    Spec: spec/04-shamir.md#shares
    """

    x: int
    y: Field

    def __post_init__(self) -> None:
        if not isinstance(self.y, Field) or len(self.y.shape) != 1:
            raise ParameterError(f"share values must be a 1-D field vector; got {self.y!r}")
        if type(self.x) is not int or not 0 < self.x < type(self.y).MODULUS:
            raise ParameterError(
                f"share point must be an int in [1, {type(self.y).MODULUS}); got {self.x!r}"
            )


@dataclass(frozen=True, slots=True)
class Reconstruction:
    """The result of :meth:`Shamir.robust_reconstruct`.

    ``bad_points`` lists the evaluation points whose shares were wrong in at
    least one coordinate and were corrected around (sorted ascending).
    """

    secret: Field
    bad_points: tuple[int, ...]


#: Columns transposed at a time when laying the secret out (a speed choice only).
_TRANSPOSE_BLOCK = 4096


@dataclass(frozen=True, slots=True)
class Shamir:
    """Parameters of a (packed) Shamir sharing.

    Spec: spec/04-shamir.md#parameters

    Pre-conditions:
        - ``threshold >= 1`` and ``packing >= 1``
        - ``2 * (threshold + packing) <= field.MODULUS``
    """

    field: type[Field]
    threshold: int
    packing: int = 1

    def __post_init__(self) -> None:
        if not (isinstance(self.field, type) and issubclass(self.field, Field)):
            raise ParameterError(f"field must be a Field subclass; got {self.field!r}")
        if type(self.threshold) is not int or self.threshold < 1:
            raise ParameterError(f"threshold must be an int >= 1; got {self.threshold!r}")
        if type(self.packing) is not int or self.packing < 1:
            raise ParameterError(f"packing must be an int >= 1; got {self.packing!r}")
        if 2 * (self.threshold + self.packing) > self.field.MODULUS:
            # The t + k basis points 0, -1, ..., -(t+k-1) are reserved, which
            # leaves p - (t + k) holder points; reconstruction needs t + k.
            raise ParameterError(
                f"2 * (threshold + packing) = {2 * (self.threshold + self.packing)} must not "
                f"exceed the field size {self.field.MODULUS}: the field must have t + k "
                "holder points besides the t + k reserved ones"
            )

    @property
    def degree(self) -> int:
        """Degree of every sharing polynomial: ``t + k - 1``."""
        return self.threshold + self.packing - 1

    @property
    def min_shares(self) -> int:
        """Shares needed to reconstruct: ``t + k``."""
        return self.threshold + self.packing

    def secret_points(self) -> list[int]:
        """``0, -1, …, -(k-1)`` (mod p): where the secrets sit."""
        p = self.field.MODULUS
        return [(-i) % p for i in range(self.packing)]

    def random_points(self) -> list[int]:
        """``-k, …, -(k+t-1)`` (mod p): where the uniform randomness sits."""
        p = self.field.MODULUS
        k = self.packing
        return [(-(k + i)) % p for i in range(self.threshold)]

    def num_polynomials(self, length: int) -> int:
        """Polynomials needed for a secret of ``length`` elements: ``ceil(length / k)``."""
        return -(-length // self.packing)

    # ------------------------------------------------------------------ share

    # spec-excerpt: shamir-share
    def share(self, secret: Field, *, points: Sequence[int], seed: Seed) -> list[Share]:
        """Share a secret vector among holders at ``points``.

        Spec: spec/04-shamir.md#share
        Proof: proofs_notes/shamir-correctness.md, proofs_notes/shamir-privacy.md

        Pre-conditions:
            - ``secret`` is a 1-D vector of ``self.field``
            - ``points`` are distinct, in ``[1, p)``, off the secret and randomness points
            - ``len(points) >= t + k``

        Raises:
            ParameterError, FieldMismatchError: if a pre-condition fails.
        """
        self._check_secret(secret)
        self._check_points(points, minimum=self.min_shares)
        k, t = self.packing, self.threshold
        m = self.num_polynomials(len(secret))
        # Column j fixes polynomial j by its values at the basis points:
        # row i < k holds secret s[j*k + i] (zero past the end) at point -i;
        # row k + i holds randomness r[i*m + j] at point -(k + i).
        padded = np.zeros(m * k, dtype=np.uint64)
        padded[: len(secret)] = secret.values
        values = np.empty((k + t, m), dtype=np.uint64)
        by_column = padded.reshape(m, k)
        for start in range(0, m, _TRANSPOSE_BLOCK):  # in cache-sized blocks: 3x faster
            stop = start + _TRANSPOSE_BLOCK
            values[:k, start:stop] = by_column[start:stop].T
        Xof(seed, SHARE_TAG).uniform_ints(
            self.field.MODULUS, count=t * m, out=values[k:].reshape(-1)
        )
        basis = self.secret_points() + self.random_points()
        evaluate = lagrange_matrix(self.field, nodes=basis, targets=list(points))
        ys = evaluate @ self.field._wrap(values)
        return [Share(x=x, y=ys[j]) for j, x in enumerate(points)]

    # end-spec-excerpt

    # ------------------------------------------------------------------ reconstruct

    def reconstruct(self, shares: Sequence[Share], *, length: int | None = None) -> Field:
        """The secret from at least ``t + k`` consistent shares.

        Spec: spec/04-shamir.md#reconstruct

        Uses every share given: with more than ``t + k``, it also checks that
        they all lie on one polynomial (this is ``robust_reconstruct`` with
        ``max_errors = 0``), so it never returns a secret that some given
        share contradicts.

        Raises:
            ThresholdNotMet: fewer than ``t + k`` shares.
            InconsistentShares: the shares do not lie on one polynomial.
        """
        return self.robust_reconstruct(shares, length=length, max_errors=0).secret

    def robust_reconstruct(
        self, shares: Sequence[Share], *, length: int | None = None, max_errors: int
    ) -> Reconstruction:
        """The secret, correcting up to ``max_errors`` faulty holders.

        Spec: spec/04-shamir.md#robust-reconstruct
        Proof: proofs_notes/robust-decoding.md

        A holder is *faulty* if its share is wrong in any coordinate. With
        ``N`` shares, ``K = t + k`` and ``e = max_errors``:

        - if ``N >= K + 2e`` and at most ``e`` holders are faulty, the secret
          is returned and ``bad_points`` names exactly the faulty holders
          whose shares differ from the true ones;
        - if at most ``N - K - e`` holders are faulty, the result is never a
          wrong secret: it is correct, or ``InconsistentShares`` is raised.

        Raises:
            ThresholdNotMet: ``N < K + 2e`` (too few shares for the correction asked).
            InconsistentShares: no polynomial of degree ``< K`` agrees with all
                but at most ``e`` holders.
            ParameterError, FieldMismatchError: malformed input.
        """
        if type(max_errors) is not int or max_errors < 0:
            raise ParameterError(f"max_errors must be an int >= 0; got {max_errors!r}")
        big_k = self.min_shares
        n = len(shares)
        if n < big_k + 2 * max_errors:
            need = f"t + k = {big_k}" + (
                f" plus 2 * max_errors = {2 * max_errors}" if max_errors else ""
            )
            raise ThresholdNotMet(f"reconstruction needs at least {need} shares; got {n}")
        xs = [s.x for s in shares]
        self._check_points(xs, minimum=big_k)
        m = len(shares[0].y)
        for s in shares:
            if type(s.y) is not self.field:
                raise FieldMismatchError(
                    f"share at x={s.x} is in {type(s.y).__name__}; expected {self.field.__name__}"
                )
            if len(s.y) != m:
                raise ParameterError(
                    f"share at x={s.x} has {len(s.y)} values; the first share has {m}"
                )
        if length is None:
            length = m * self.packing
        if self.num_polynomials(length) != m:
            raise ParameterError(
                f"length {length} needs {self.num_polynomials(length)} polynomials "
                f"with packing {self.packing}; the shares carry {m}"
            )
        ys = self.field.stack([s.y for s in shares])

        bad: set[int] = set()
        while True:
            good = [i for i in range(n) if i not in bad]
            base, rest = good[:big_k], good[big_k:]
            column = self._first_inconsistent_column(xs, ys, base, rest)
            if column is None:
                break
            if max_errors == 0:
                raise InconsistentShares(
                    f"the {n} shares do not lie on one polynomial of degree "
                    f"{self.degree} (first disagreement at coordinate {column})"
                )
            received = [int(v) for v in ys.values[:, column]]
            wrong = _decode_column(self.field.MODULUS, xs, received, big_k, max_errors)
            if wrong is None or wrong <= bad:
                raise InconsistentShares(
                    f"coordinate {column} is more than {max_errors} errors away from "
                    f"every polynomial of degree {self.degree}"
                )
            bad |= wrong
            if len(bad) > max_errors:
                raise InconsistentShares(
                    f"shares at points {sorted(xs[i] for i in bad)} are faulty: "
                    f"{len(bad)} faulty holders exceed max_errors = {max_errors}"
                )

        base = [i for i in range(n) if i not in bad][:big_k]
        recover = lagrange_matrix(
            self.field, nodes=[xs[i] for i in base], targets=self.secret_points()
        )
        # Row i holds secret i of every polynomial; polynomial j carries s[jk + i].
        secret = self.field._wrap(
            np.ascontiguousarray((recover @ ys.take_rows(base)).values.T).reshape(-1)
        )
        return Reconstruction(
            secret=secret[:length] if length < len(secret) else secret,
            bad_points=tuple(sorted(xs[i] for i in bad)),
        )

    def _first_inconsistent_column(
        self, xs: Sequence[int], ys: Field, base: list[int], rest: list[int]
    ) -> int | None:
        """First coordinate where the ``rest`` shares leave the ``base`` interpolant."""
        if not rest:
            return None
        predict = lagrange_matrix(
            self.field, nodes=[xs[i] for i in base], targets=[xs[i] for i in rest]
        )
        predicted = predict @ ys.take_rows(base)
        differ = (predicted.values != ys.take_rows(rest).values).any(axis=0)
        if not differ.any():
            return None
        return int(np.flatnonzero(differ)[0])

    # ------------------------------------------------------------------ checks

    def _check_secret(self, secret: Field) -> None:
        if type(secret) is not self.field:
            raise FieldMismatchError(
                f"secret is in {type(secret).__name__}; expected {self.field.__name__}"
            )
        if len(secret.shape) != 1 or len(secret) == 0:
            raise ParameterError(f"secret must be a non-empty 1-D vector; got shape {secret.shape}")

    def check_points(self, points: Sequence[int]) -> None:
        """Raise unless ``points`` can hold shares: :meth:`share`'s checks of them alone.

        Spec: spec/04-shamir.md#share. Linear in ``len(points)``: no matrix is built
        (the share matrix of valid points always exists, the basis and the points
        being distinct).

        Raises:
            ParameterError: a point is out of range, reserved or repeated, or there are
                fewer than ``t + k``.
        """
        self._check_points(points, minimum=self.min_shares)

    def _check_points(self, points: Sequence[int], *, minimum: int) -> None:
        p = self.field.MODULUS
        reserved = set(self.secret_points()) | set(self.random_points())
        seen: set[int] = set()
        for x in points:
            if type(x) is not int or not 0 < x < p:
                raise ParameterError(f"evaluation point must be an int in [1, {p}); got {x!r}")
            if x in reserved:
                raise ParameterError(
                    f"evaluation point {x} is a secret or randomness point "
                    f"(-{(p - x) % p} mod p); holders must use other points"
                )
            if x in seen:
                raise ParameterError(f"evaluation point {x} appears twice")
            seen.add(x)
        if len(points) < minimum:
            raise ParameterError(
                f"need at least t + k = {minimum} evaluation points; got {len(points)}"
            )


def lagrange_matrix(field: type[Field], *, nodes: Sequence[int], targets: Sequence[int]) -> Field:
    """The matrix ``L`` with ``L[j][i] = ℓ_i(targets[j])`` over GF(p).

    Spec: spec/04-shamir.md#lagrange
    Proof: proofs_notes/shamir-correctness.md

    ``ℓ_i`` is the Lagrange basis polynomial of ``nodes`` that is 1 at
    ``nodes[i]`` and 0 at the others, so ``L @ values_at_nodes`` evaluates the
    interpolating polynomial at every target.

    Pre-conditions:
        - ``nodes`` are distinct modulo p

    The result is immutable, so it is memoized per (field, nodes, targets).
    """
    return _lagrange_matrix(field, tuple(nodes), tuple(targets))  # type: ignore[arg-type]


@lru_cache(maxsize=256)
def _lagrange_matrix(
    field: type[Field], nodes_: tuple[int, ...], targets: tuple[int, ...]
) -> Field:
    p = field.MODULUS
    nodes = [x % p for x in nodes_]
    if len(set(nodes)) != len(nodes):
        raise ParameterError(f"interpolation nodes must be distinct mod {p}; got {nodes}")
    # Barycentric weights w_i = 1 / prod_{l != i} (x_i - x_l).
    weights = []
    for i, xi in enumerate(nodes):
        den = 1
        for j, xj in enumerate(nodes):
            if i != j:
                den = den * (xi - xj) % p
        weights.append(pow(den, p - 2, p))
    rows: list[list[int]] = []
    for target in targets:
        z = target % p
        if z in nodes:
            rows.append([1 if x == z else 0 for x in nodes])
            continue
        full = 1
        for x in nodes:
            full = full * (z - x) % p
        rows.append(
            [full * w % p * pow(z - x, p - 2, p) % p for x, w in zip(nodes, weights, strict=True)]
        )
    return field(np.array(rows, dtype=np.uint64).reshape(len(targets), len(nodes)))


# ---------------------------------------------------------------------- Gao decoding
# Polynomials are lists of coefficients mod p, lowest degree first, with no
# trailing zeros (the zero polynomial is []).


def _trim(a: list[int]) -> list[int]:
    while a and a[-1] == 0:
        a.pop()
    return a


def _poly_sub(a: list[int], b: list[int], p: int) -> list[int]:
    out = [0] * max(len(a), len(b))
    for i, v in enumerate(a):
        out[i] = v
    for i, v in enumerate(b):
        out[i] = (out[i] - v) % p
    return _trim(out)


def _poly_mul(a: list[int], b: list[int], p: int) -> list[int]:
    if not a or not b:
        return []
    out = [0] * (len(a) + len(b) - 1)
    for i, u in enumerate(a):
        for j, v in enumerate(b):
            out[i + j] = (out[i + j] + u * v) % p
    return _trim(out)


def _poly_divmod(a: list[int], b: list[int], p: int) -> tuple[list[int], list[int]]:
    rem = list(a)
    inv_lead = pow(b[-1], p - 2, p)
    quot = [0] * max(0, len(a) - len(b) + 1)
    while len(rem) >= len(b):
        c = rem[-1] * inv_lead % p
        shift = len(rem) - len(b)
        quot[shift] = c
        for i, v in enumerate(b):
            rem[shift + i] = (rem[shift + i] - c * v) % p
        _trim(rem)
    return _trim(quot), rem


def _poly_eval(a: list[int], x: int, p: int) -> int:
    acc = 0
    for c in reversed(a):
        acc = (acc * x + c) % p
    return acc


def _interpolate(xs: Sequence[int], ys: Sequence[int], p: int) -> list[int]:
    """The polynomial of degree < len(xs) through the points (Lagrange form)."""
    out: list[int] = []
    for i, (xi, yi) in enumerate(zip(xs, ys, strict=True)):
        if yi == 0:
            continue
        num = [1]
        den = 1
        for j, xj in enumerate(xs):
            if i != j:
                num = _poly_mul(num, [(-xj) % p, 1], p)
                den = den * (xi - xj) % p
        scale = yi * pow(den, p - 2, p) % p
        out = _poly_sub(out, [(-c * scale) % p for c in num], p)
    return out


# spec-excerpt: gao-decode
def _decode_column(
    p: int, xs: Sequence[int], received: Sequence[int], dim: int, max_errors: int
) -> set[int] | None:
    """Indices of the wrong values in one received word, by Gao's decoder.

    Spec: spec/04-shamir.md#robust-reconstruct
    Proof: proofs_notes/robust-decoding.md

    Returns the index set of the positions where ``received`` differs from
    the unique polynomial of degree ``< dim`` within ``max_errors`` of it,
    or None if there is none. (S. Gao, "A New Algorithm for Decoding
    Reed-Solomon Codes", 2003.)
    """
    n = len(xs)
    g0 = [1]
    for x in xs:
        g0 = _poly_mul(g0, [(-x) % p, 1], p)
    g1 = _interpolate(xs, received, p)
    # Extended Euclid on (g0, g1), tracking v with r = u*g0 + v*g1, until
    # deg r < (n + dim) / 2.
    r_prev, r_cur = g0, g1
    v_prev: list[int] = []
    v_cur = [1]
    while 2 * (len(r_cur) - 1) >= n + dim:
        q, r_next = _poly_divmod(r_prev, r_cur, p)
        r_prev, r_cur = r_cur, r_next
        v_prev, v_cur = v_cur, _poly_sub(v_prev, _poly_mul(q, v_cur, p), p)
    if not v_cur:
        return None
    f, rem = _poly_divmod(r_cur, v_cur, p)
    if rem or len(f) > dim:
        return None
    wrong = {i for i in range(n) if _poly_eval(f, xs[i], p) != received[i]}
    return wrong if len(wrong) <= max_errors else None


# end-spec-excerpt
