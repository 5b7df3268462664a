"""A hang turned into a test failure: ``SIGALRM`` after a number of seconds."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


class Hung(Exception):
    """The code under a :func:`deadline` was still running when it passed."""


@contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Raise :class:`Hung` in the block if it runs longer than ``seconds`` (main thread)."""

    def hung(_signum: int, _frame: FrameType | None) -> None:
        raise Hung(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
