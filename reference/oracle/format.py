"""What every vector family shares: the format tag, case seeds, negative cases.

Spec: spec/10-test-vectors.md#format
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from protocol.errors import ERRORS_BY_NAME, SdlError
from protocol.xof import Seed, Tag, as_seed, derive_seed

FORMAT = "sdl-vectors/1"

Json = dict[str, Any]


def case_seed(i: int) -> Seed:
    """The fixed seed of vector case ``i``: ``derive_seed(0^32, Tag("vectors", (i,)))``."""
    return derive_seed(as_seed(bytes(32)), Tag("vectors", (i,)))


def make_case(family: str, operation: str, **body: Any) -> Json:
    """A vector object: the format tag, its family and operation, then ``body``."""
    return {"format": FORMAT, "family": family, "operation": operation, **body}


def expect_error(obj: Mapping[str, Any], run: Callable[[], object], problems: list[str]) -> None:
    """Check a negative case: ``run`` must raise the error class ``obj["error"]`` names."""
    name = obj["error"]
    cls = ERRORS_BY_NAME.get(name)
    if cls is None:
        problems.append(f"error: unknown error class {name!r}")
        return
    try:
        run()
    except SdlError as exc:
        if not isinstance(exc, cls):
            problems.append(f"error: expected {name}, got {type(exc).__name__}: {exc}")
        return
    problems.append(f"error: expected {name}, but the operation succeeded")
