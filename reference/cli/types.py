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
