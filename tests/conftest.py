"""Shared test configuration: Hypothesis profiles and the galois oracle.

Profiles (choose with the environment variable ``HYPOTHESIS_PROFILE``):

- ``ci`` (default): 40 examples, derandomized, so every run tests the same cases;
- ``dev``: 100 examples;
- ``thorough``: 1000 examples.

galois is the readable twin of :mod:`protocol.field` (house style, rule 6).
Building a ``galois.GF(p)`` JIT-compiles its ufuncs (about a second per
field), so each one is built once per session and cached.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from protocol.field import Field

settings.register_profile(
    "ci",
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("thorough", max_examples=1000, deadline=None)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@functools.cache
def galois_field(field: type[Field]) -> Any:
    """``galois.GF(field.MODULUS)``, built once per session.

    For 2^61 - 1 galois stores elements in an ``object`` array of Python
    ints; convert its results with ``int()``.
    """
    import galois  # slow import (~1 s with numba); only tests that need it pay

    return galois.GF(field.MODULUS)


@pytest.fixture(scope="session")
def gf() -> Callable[[type[Field]], Any]:
    """The cached galois oracle: ``gf(Field31)`` is ``galois.GF(2**31 - 1)``."""
    return galois_field
