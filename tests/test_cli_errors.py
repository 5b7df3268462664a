"""Errors at the command line: one line on stderr, a JSON object with --json, 130 on Ctrl-C.

Spec: README.md (every command prints one JSON object with --json); spec/01-conventions.md#errors
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from protocol import noise
from reference.cli.main import main


def _exit_code(argv: list[str]) -> int:
    """``main``'s status; argparse's own refusals leave by SystemExit, as they do from ``sdl``."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize(
    ("argv", "kind", "prog"),
    [
        # argparse refuses a value
        (["noise", "sample", "--mechanism", "gauss", "--variance", "1", "--count", "1"],
         "usage", "sdl noise sample"),
        # an option the command does not have
        (["simulate", "--nodes", "3", "--threshold", "1", "--bogus"], "usage", "sdl simulate"),
        # the command itself refuses the combination
        (["privacy", "epsilon", "--mechanism", "skellam", "--variance", "100", "--rounds", "1",
          "--delta", "1e-5"], "usage", "sdl privacy epsilon"),
        # a typed error from the core (a threshold the nodes cannot hold)
        (["simulate", "--nodes", "3", "--threshold", "3", "--seed", "1"], "ParameterError",
         "sdl simulate"),
    ],
)  # fmt: skip
def test_with_json_an_error_is_also_a_json_object_on_stdout(
    capsys: pytest.CaptureFixture[str], argv: list[str], kind: str, prog: str
) -> None:
    code = _exit_code([*argv, "--json"])
    out, err = capsys.readouterr()
    assert code == 2
    line = _one_line(err)
    assert line.startswith(f"{prog}: error: ")
    body = json.loads(out)
    assert body == {
        "error": {"kind": kind, "message": line.removeprefix(f"{prog}: error: "), "command": prog}
    }


def test_without_json_an_error_prints_nothing_on_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--nodes", "3", "--threshold", "3", "--seed", "1"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert _one_line(err).startswith("sdl simulate: error: ")


def test_ctrl_c_is_one_line_and_exit_130(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args: object, **kwargs: object) -> object:
        raise KeyboardInterrupt  # as Ctrl-C does, in the middle of the sampling

    monkeypatch.setattr(noise, "sample_table", interrupted)
    argv = ["noise", "sample", "--mechanism", "skellam", "--variance", "1", "--count", "1"]
    assert main([*argv, "--seed", "1"]) == 130
    out, err = capsys.readouterr()
    assert out == "" and _one_line(err) == "sdl noise sample: error: interrupted"
    assert main([*argv, "--seed", "1", "--json"]) == 130
    out, err = capsys.readouterr()
    assert json.loads(out)["error"]["kind"] == "interrupted"
    _one_line(err)


def test_an_implementation_command_that_does_not_parse_is_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert _exit_code(["conformance", "--impl", "'unterminated"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "does not parse as shell words" in line and "'unterminated" in line


def test_a_reader_that_stops_early_gets_no_traceback() -> None:
    """``sdl simulate --transcript - | head``: the pipe closes under the writer."""
    argv = [sys.executable, "-m", "reference.cli", "simulate", "--nodes", "6", "--threshold",
            "2", "--seed", "1", "--dimension", "4000", "--transcript", "-"]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.read(10)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) in (0, 1)
    assert "Traceback" not in err and "BrokenPipe" not in err
