"""Cleanup that a second Ctrl-C cannot cut short."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def sigint_ignored() -> Iterator[None]:
    """SIGINT ignored for the block (in the main thread; elsewhere signals cannot be set).

    For work that must finish once begun, such as stopping the processes a command
    started: an interrupt during it is dropped, and the one that started the cleanup,
    if any, still ends the command.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        if previous is not None:  # None: a handler not set from Python; leave it
            signal.signal(signal.SIGINT, previous)
