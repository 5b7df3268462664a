"""The ``sdl`` command line, one module per command group."""
