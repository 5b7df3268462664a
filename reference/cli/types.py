"""Argument types for the ``sdl`` subcommands: numbers checked as they are parsed."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from fractions import Fraction
from typing import TypeVar

N = TypeVar("N", float, Fraction)


def number_where(
    convert: Callable[[str], N], what: str, ok: Callable[[N], bool]
) -> Callable[[str], N]:
    """An argparse type: ``convert(text)``, finite, and ``ok``; else "expected WHAT; got …"."""

    def parse(text: str) -> N:
        try:
            value = convert(text)
        except (ValueError, ZeroDivisionError):
            raise argparse.ArgumentTypeError(f"expected {what}; got {text!r}") from None
        if not (math.isfinite(value) and ok(value)):
            raise argparse.ArgumentTypeError(f"expected {what}; got {text}")
        return value

    return parse


def power_of_ten(value: int) -> str:
    """``value`` as ``10^k`` when it is a power of ten of at least 10^6, else in decimal."""
    k = len(str(value)) - 1
    return f"10^{k}" if value >= 10**6 and value == 10**k else str(value)


def int_at_least(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer >= ``minimum`` (and <= ``maximum``), naming the value.

    Text longer than Python's integer-conversion limit, or above ``maximum``, is refused
    at once: nothing downstream sees an integer it cannot hold as a float or a list size.
    """
    if maximum is None:
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
    else:
        what = f"an integer in [{minimum}, {power_of_ten(maximum)}]"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            shown = text if len(text) <= 40 else f"{text[:20]}...({len(text)} characters)"
            raise argparse.ArgumentTypeError(f"expected {what}; got {shown!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            shown = str(value) if value.bit_length() <= 128 else f"an integer of {len(text)} digits"
            raise argparse.ArgumentTypeError(f"expected {what}; got {shown}")
        return value

    return parse


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)


def positive_rational(text: str) -> Fraction:
    """An argparse type: a positive rational, written as a decimal or a fraction."""
    try:
        value = Fraction(text.strip())
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(
            f"expected a positive number such as 12.5 or 25/2; got {text!r}"
        ) from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"variance must be > 0; got {text}")
    return value


def float_where(what: str, ok: Callable[[float], bool]) -> Callable[[str], float]:
    """An argparse type: a finite float for which ``ok`` holds, else an error naming ``what``."""
    return number_where(float, what, ok)


positive_float = float_where("a positive finite number", lambda v: 0 < v < float("inf"))
open_unit = float_where("a number in (0, 1)", lambda v: 0 < v < 1)
rate_in_unit = float_where("a rate in (0, 1]", lambda v: 0 < v <= 1)


positive_seconds = float_where("a positive number of seconds", lambda v: v > 0)
