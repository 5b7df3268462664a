"""``python -m reference.cli``: the ``sdl`` command."""

import sys

from reference.cli.entry import run

sys.exit(run())
