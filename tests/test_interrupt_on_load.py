"""Ctrl-C at any moment of ``sdl``'s life, loading included: one line, exit 130.

Spec: README.md (interrupted: one line, no traceback, exit 130)

``sdl`` loads numpy, galois and cryptography before a command runs; an
interrupt then used to end in a ``KeyboardInterrupt`` traceback. The console
script (``reference.cli.entry``) answers it as every command does.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time

import pytest

SDL = shutil.which("sdl")

#: Starts sdl with SIGINT at its default action (a suite run in the background inherits
#: it ignored), then replaces itself with sdl: the PID is sdl's.
INTERRUPTIBLE_SDL = [
    sys.executable, "-c",
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.argv[1], sys.argv[1:])",
]  # fmt: skip


@pytest.mark.skipif(SDL is None, reason="the sdl console script is not installed")
@pytest.mark.parametrize("delay", [0.05, 0.2, 0.5, 1.5])
def test_an_interrupt_while_loading_or_running_is_one_line_and_exit_130(delay: float) -> None:
    assert SDL is not None
    argv = [*INTERRUPTIBLE_SDL, SDL, "simulate", "--nodes", "40", "--threshold", "10",
            "--dimension", "20000", "--seed", "1", "--json"]  # fmt: skip
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(delay)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 130, (delay, p.returncode, err[-300:])
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.strip().endswith("error: interrupted")
    assert '"kind": "interrupted"' in out  # --json: the error as one JSON object too
