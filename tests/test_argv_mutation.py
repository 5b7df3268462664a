"""Mutated command lines never end in a traceback.

Spec: README.md (bad input exits 2 with one line naming the value; no traceback)

Hypothesis starts from a valid, quick command line of each fast command and
mutates it: drops a token, replaces a value with a hostile one, repeats a
flag, or inserts a stray token. Whatever comes out, ``sdl`` must answer
with exit 0, 1 or 2, print no traceback, and answer quickly (a mutation can
only shrink the work or be refused: the hostile values are never larger
sizes than a refusal bound lets through).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reference.cli.main import main
from tests.deadline import deadline

#: A mutated command that has not answered after this long has hung (each example).
DEADLINE = 20

#: Valid, quick command lines; ``{tmp}`` is a fresh folder.
BASES: tuple[tuple[str, ...], ...] = (
    ("simulate", "--nodes", "5", "--threshold", "1", "--dropouts", "1", "--seed", "1",
     "--dimension", "4"),
    ("simulate", "--nodes", "5", "--threshold", "1", "--max-byzantine", "1", "--byzantine",
     "replay:2", "--seed", "2", "--dimension", "4"),
    ("simulate", "--nodes", "5", "--threshold", "1", "--failover", "1", "--crash", "1:0",
     "--seed", "3", "--dimension", "4"),
    ("privacy", "epsilon", "--mechanism", "gaussian", "--noise-multiplier", "1.1",
     "--sampling-rate", "0.01", "--rounds", "10", "--delta", "1e-5", "--accountant", "rdp"),
    ("privacy", "calibrate", "--mechanism", "skellam", "--epsilon", "2", "--delta", "1e-5",
     "--rounds", "10", "--l2-sensitivity", "2", "--l1-sensitivity", "4", "--accountant", "rdp"),
    ("noise", "sample", "--mechanism", "dgauss", "--variance", "10", "--count", "4", "--seed",
     "1"),
    ("demo", "--seed", "1", "--nodes", "5", "--threshold", "1"),
    ("schema", "{tmp}/schemas"),
)  # fmt: skip

#: Values a hostile user (or a typo) puts where a value belongs.
HOSTILE = (
    "", "-", "--", "0", "-1", "nan", "inf", "-inf", "1e309", "1e-309", "0x10", "1/0", "3/2",
    "2**64", "18446744073709551617", "'", '"', "\x00", "é", " ", "--json", "--help", "a:b",
    "equivocate:1", "withhold:0", "1:1:1", "/dev/null", "/nonexistent/x",
)  # fmt: skip


@st.composite
def mutated(draw: st.DrawFn) -> list[str]:
    argv = list(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.integers(0, len(argv)))
        how = draw(st.sampled_from(("drop", "replace", "repeat", "insert")))
        if how == "drop" and argv and where < len(argv):
            del argv[where]
        elif how == "replace" and argv and where < len(argv):
            argv[where] = draw(st.sampled_from(HOSTILE))
        elif how == "repeat" and argv and where < len(argv):
            argv.insert(where, argv[where])
        else:
            argv.insert(where, draw(st.sampled_from(HOSTILE)))
    return argv


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(argv=mutated())
def test_a_mutated_command_line_exits_cleanly(
    argv: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A mutated output path (``sdl schema nan``) is relative: it lands in tmp_path.
    monkeypatch.chdir(tmp_path)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    try:
        with deadline(DEADLINE):
            code = main(argv)
    except SystemExit as exc:  # argparse's refusals and --help
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    out = capsys.readouterr()
    assert code in (0, 1, 2), (argv, code)
    assert "Traceback" not in out.err and "Traceback" not in out.out, argv


def test_an_output_path_with_a_nul_byte_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by the mutation above: ``sdl schema`` given a path holding a NUL byte raised
    ValueError. No path can hold one; it is refused, exit 2, one line."""
    monkeypatch.chdir(tmp_path)
    assert main(["schema", "a\x00b"]) == 2
    err = capsys.readouterr().err
    assert "NUL byte" in err and len(err.strip().splitlines()) == 1
