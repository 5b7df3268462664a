"""Independent oracles shared by the tests: plain Python-int arithmetic, no ``protocol/`` code."""

from __future__ import annotations

from collections.abc import Sequence


def lagrange_eval(p: int, xs: Sequence[int], ys: Sequence[int], z: int) -> int:
    """The polynomial of degree < len(xs) through (xs, ys) over GF(p), evaluated at z."""
    total = 0
    for i, (xi, yi) in enumerate(zip(xs, ys, strict=True)):
        num = den = 1
        for j, xj in enumerate(xs):
            if j != i:
                num = num * (z - xj) % p
                den = den * (xi - xj) % p
        total += yi * num * pow(den, -1, p)
    return total % p
