"""Running ``sdl`` in-process, as the command-line tests do."""

from __future__ import annotations

import pytest

from reference.cli.main import main


def run_sdl(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str, str]:
    """``main(argv)``'s status (argparse's refusals leave by SystemExit), stdout, stderr."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err
