"""``sdl privacy calibrate`` at a generous target, ``sdl conformance`` against an
implementation that dies, and ``sdl vectors generate --help`` naming what it writes.

Spec: spec/08-accounting.md#calibration; spec/11-conformance.md; spec/10-test-vectors.md
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import pytest

from protocol import accounting
from reference.cli.main import main


def _json_of(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, object]]:
    code = main(argv)
    return code, json.loads(capsys.readouterr().out)


def test_calibrate_answers_when_the_least_noise_searched_already_meets_the_target(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["privacy", "calibrate", "--mechanism", "gaussian", "--epsilon", "1e7"]
    code, body = _json_of([*argv, "--rounds", "1", "--delta", "1e-5", "--json"], capsys)
    assert code == 0
    assert isinstance(body["epsilon"], float) and body["epsilon"] <= 1e7
    noise = body["noise_multiplier"]
    assert isinstance(noise, float) and noise > 0
    # The answer is what the accountant says it is.
    release = accounting.GaussianEvent(noise_multiplier=noise)
    event = accounting.ComposedEvent(event=release, count=1)
    assert accounting.epsilon(event, delta=1e-5).epsilon == body["epsilon"]


def test_calibrate_dgauss_at_a_generous_target_answers_the_least_sigma_of_the_domain(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["privacy", "calibrate", "--mechanism", "dgauss", "--epsilon", "1e9"]
    argv += ["--l2-sensitivity", "1", "--l1-sensitivity", "1", "--clients", "4"]
    argv += ["--dimension", "8", "--rounds", "1", "--delta", "1e-5", "--json"]
    code, body = _json_of(argv, capsys)
    assert code == 0
    assert body["sigma"] == accounting.DDG_MIN_SIGMA
    assert isinstance(body["epsilon"], float) and body["epsilon"] <= 1e9


def test_calibrate_still_bisects_a_tight_target(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["privacy", "calibrate", "--mechanism", "gaussian", "--epsilon", "2"]
    code, body = _json_of([*argv, "--rounds", "10", "--delta", "1e-5", "--json"], capsys)
    assert code == 0
    noise = body["noise_multiplier"]
    assert isinstance(noise, float) and isinstance(body["epsilon"], float)
    assert body["epsilon"] <= 2
    # A little less noise misses the target: the answer is (nearly) the least.
    less = accounting.ComposedEvent(
        event=accounting.GaussianEvent(noise_multiplier=noise * 0.99), count=10
    )
    assert accounting.epsilon(less, delta=1e-5).epsilon > 2


_DYING = shlex.join(
    [sys.executable, "-c", "import sys; sys.stderr.write('boom-xyz\\n'); sys.exit(3)"]
)


def test_conformance_shows_the_stderr_tail_of_an_implementation_that_exits(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, body = _json_of(["conformance", "--impl", _DYING, "--timeout", "20", "--json"], capsys)
    assert code == 1
    assert body["exited"] is True
    assert body["exit_status"] == 3
    assert body["stderr_tail"] == ["boom-xyz"]
    ops = body["ops"]
    assert isinstance(ops, list) and ops and all(op["status"] == "fail" for op in ops)

    assert main(["conformance", "--impl", _DYING, "--timeout", "20"]) == 1
    text = capsys.readouterr().out
    assert "the implementation exited with status 3" in text
    assert "boom-xyz" in text


def test_conformance_keeps_only_the_last_lines_of_a_long_stderr(
    capsys: pytest.CaptureFixture[str],
) -> None:
    script = "import sys\nfor i in range(100000): print('line', i, file=sys.stderr)\nsys.exit(1)"
    impl = shlex.join([sys.executable, "-c", script])
    code, body = _json_of(["conformance", "--impl", impl, "--timeout", "20", "--json"], capsys)
    assert code == 1
    tail = body["stderr_tail"]
    assert isinstance(tail, list) and 0 < len(tail) <= 5
    assert tail[-1] == "line 99999"


def test_vectors_generate_help_names_every_family_it_writes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["vectors", "generate", str(tmp_path)]) == 0
    capsys.readouterr()
    written = {p.name for p in tmp_path.iterdir() if p.is_dir() and not p.name.startswith(".")}
    assert written
    with pytest.raises(SystemExit) as exit_info:
        main(["vectors", "generate", "--help"])
    assert exit_info.value.code == 0
    help_text = " ".join(capsys.readouterr().out.split())
    start = help_text.index("Write every vector family (") + len("Write every vector family (")
    named = {name.strip() for name in help_text[start : help_text.index(")", start)].split(",")}
    assert named == written
