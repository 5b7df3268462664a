"""``python -m reference.cli``: the ``sdl`` command."""

import sys

from reference.cli.main import main

sys.exit(main())
