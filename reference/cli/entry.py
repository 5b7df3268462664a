"""The ``sdl`` console script: answers Ctrl-C even while the command line is loading.

Loading ``reference.cli.main`` imports numpy, galois, cryptography and the
rest, which takes a second or more; an interrupt then would otherwise end
in a ``KeyboardInterrupt`` traceback. This module imports nothing heavy
before it is ready to answer one, as every command does: one line on
stderr (and with ``--json`` one JSON object on stdout), exit 130.
"""

from __future__ import annotations

import json
import sys

#: As reference.cli.declare.EXIT_INTERRUPTED (not imported: that module is heavy to load).
EXIT_INTERRUPTED = 130


def run() -> int:
    """Load the command line and run it; an interrupt while loading exits 130 in one line."""
    try:
        from reference.cli.main import main  # noqa: PLC0415  (the heavy import, guarded)
    except KeyboardInterrupt:
        print("sdl: error: interrupted", file=sys.stderr)
        if "--json" in sys.argv[1:]:
            error = {"kind": "interrupted", "message": "interrupted", "command": "sdl"}
            print(json.dumps({"error": error}, sort_keys=True), flush=True)
        return EXIT_INTERRUPTED
    return main()
