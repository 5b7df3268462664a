"""Shared test configuration: Hypothesis profiles and the galois oracle.

Profiles (choose with the environment variable ``HYPOTHESIS_PROFILE``):

- ``ci`` (default): 40 examples, derandomized, so every run tests the same cases;
- ``dev``: 100 examples;
- ``thorough``: 1000 examples.

galois is the readable twin of :mod:`protocol.field` (house style, rule 6).
Its default mode JIT-compiles every ufunc with numba, one to five seconds
per field and per function on first use. The oracle instead runs galois in
``python-calculate`` mode: the same algorithms on Python ints, with no
compilation, which is fast enough for the sizes the tests use. Each field
is built once per session and cached.
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
def _galois_field_for_modulus(modulus: int) -> Any:
    import galois  # noqa: PLC0415  (slow: numba; only the tests that need it pay)

    return galois.GF(modulus, compile="python-calculate")


def galois_field(field: type[Field]) -> Any:
    """``galois.GF(field.MODULUS)`` in pure-Python mode, built once per session.

    For 2^61 - 1 galois stores elements in an ``object`` array of Python
    ints; convert its results with ``int()``.
    """
    return _galois_field_for_modulus(field.MODULUS)


@pytest.fixture(scope="session")
def gf() -> Callable[[type[Field]], Any]:
    """The cached galois oracle: ``gf(Field31)`` is ``galois.GF(2**31 - 1)``."""
    return galois_field
