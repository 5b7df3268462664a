"""Transcripts, `sdl verify`, `sdl simulate` and `sdl schema`.

Spec: spec/12-transcripts.md
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.messages import schemas
from reference.cli.main import main
from reference.oracle.format import case_seed
from reference.sim.scenarios import build
from reference.sim.simulate import Network, Scenario, canonical_line, simulate
from reference.sim.transcript import verify
from tests.strategies import sim_scenarios

ROOT = Path(__file__).resolve().parent.parent


def _text(lines: list[dict[str, Any]]) -> str:
    return "".join(canonical_line(x) + "\n" for x in lines)


def scenarios() -> st.SearchStrategy[Scenario]:
    """Small rounds with crashes, colluders and a hostile network."""
    return sim_scenarios(purpose="tests.transcript")


def _run(s: Scenario) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    result = simulate(s, sink=lines.append)
    return lines, result.to_json()


@settings(max_examples=25)
@given(scenarios())
def test_verify_accepts_every_simulated_transcript(s: Scenario) -> None:
    lines, result = _run(s)
    verdict = verify(_text(lines))
    assert verdict.valid, (verdict.line, verdict.why)
    assert verdict.result == result
    # The result line is what the run returned, and the run is deterministic.
    assert lines[-1] == {"type": "result", **result}
    assert _run(s)[0] == lines


@settings(max_examples=25)
@given(scenarios(), st.data())
def test_verify_rejects_an_altered_share_value(s: Scenario, data: st.DataObject) -> None:
    lines, _ = _run(s)
    carriers = [
        i
        for i, x in enumerate(lines)
        if x["type"] in ("send", "deliver") and x["message"]["kind"] in ("share", "partial_sum")
    ]
    if not carriers:
        return  # every node crashed before sending a value
    i = data.draw(st.sampled_from(carriers), label="line")
    forged = copy.deepcopy(lines)
    values = forged[i]["message"]["values"]
    j = data.draw(st.integers(0, len(values) - 1), label="coordinate")
    delta = data.draw(st.integers(1, s.params.field.MODULUS - 1), label="delta")
    values[j] = str((int(values[j]) + delta) % s.params.field.MODULUS)
    verdict = verify(_text(forged))
    assert not verdict.valid
    # A changed send is caught where it is sent; a changed delivery where it
    # arrives, unless an identical forged copy was sent earlier (impossible:
    # the original was), so the named line is exactly the altered one.
    assert verdict.line == i + 1, (verdict.line, verdict.why)


def _plain() -> list[dict[str, Any]]:
    return _run(
        build(
            master=case_seed(900),
            nodes=4,
            threshold=1,
            max_dropouts=1,
            dimension=2,
            target_variance=Fraction(100),
        )
    )[0]


def _first(lines: list[dict[str, Any]], line_type: str, kind: str) -> int:
    """The index of the first line of ``line_type`` carrying a message of ``kind``."""
    return next(
        i for i, x in enumerate(lines) if x["type"] == line_type and x["message"]["kind"] == kind
    )


def test_verify_names_the_first_offending_line() -> None:
    lines = _plain()
    assert verify(_text(lines)).valid

    # A send the machine does not produce is missing: the next line is named.
    i = _first(lines, "send", kind="report")
    missing = lines[:i] + lines[i + 1 :]
    v = verify(_text(missing))
    assert not v.valid and v.line == i + 1 and "does not show" in (v.why or "")

    # A delivery of a message nobody sent.
    j = _first(lines, "deliver", kind="report")
    forged = copy.deepcopy(lines)
    forged[j]["message"]["holds"] = []
    v = verify(_text(forged))
    assert not v.valid and v.line == j + 1 and "never sent" in (v.why or "")

    # A timeout nobody asked for.
    extra = copy.deepcopy(lines)
    extra.insert(
        len(lines) - 1,
        {"type": "timeout", "time": 10**6, "node": 1, "role": "receiver", "stage": 3},
    )
    v = verify(_text(extra))
    assert not v.valid and v.line == len(lines)

    # A wrong claim in the result line.
    claim = copy.deepcopy(lines)
    claim[-1]["contributors"] = claim[-1]["contributors"][:-1]
    v = verify(_text(claim))
    assert not v.valid and v.line == len(lines) and "contributors" in (v.why or "")

    # A truncated transcript has no result.
    v = verify(_text(lines[:-1]))
    assert not v.valid and v.line == len(lines)

    # Not JSON.
    v = verify(_text(lines[:3]) + "{oops\n")
    assert not v.valid and v.line == 4


def test_verify_requires_the_recorded_rejections() -> None:
    s = build(
        master=case_seed(913),
        nodes=6,
        threshold=2,
        max_dropouts=2,
        colluders=1,
        network=Network(drop=Fraction(1, 40), late=Fraction(1, 30), duplicate=Fraction(1, 8)),
        dimension=2,
        target_variance=Fraction(100),
    )
    lines, _ = _run(s)
    rejects = [i for i, x in enumerate(lines) if x["type"] == "reject"]
    assert rejects, "the hostile network must cause at least one rejection"
    i = rejects[0]
    v = verify(_text(lines[:i] + lines[i + 1 :]))
    assert not v.valid and v.line == i and "does not say so" in (v.why or "")
    wrong = copy.deepcopy(lines)
    wrong[i]["error"] = "InconsistentShares"
    v = verify(_text(wrong))
    assert not v.valid and v.line == i + 1


# ---------------------------------------------------------------------- CLI


#: 7 nodes, t = 2, two dropouts, one colluder, a fixed seed.
SIMULATE_7 = ["simulate", "--nodes", "7", "--threshold", "2", "--dropouts", "2",
              "--colluders", "1", "--seed", "5"]  # fmt: skip


def test_cli_simulate_prints_the_promised_json_and_a_verifiable_transcript(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "run.jsonl"
    code = main([*SIMULATE_7, "--transcript", str(path), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    for key in (
        "status",
        "reason",
        "contributors",
        "aggregate_correct",
        "honest_noise_variance",
        "target_noise_variance",
    ):
        assert key in out
    assert out["status"] == "released" and out["aggregate_correct"] is True
    assert len(out["contributors"]) == 5 and set(out["dropouts"]).isdisjoint(out["contributors"])
    assert Fraction(out["honest_noise_variance_exact"]) >= Fraction(
        out["target_noise_variance_exact"]
    )
    assert main(["verify", str(path)]) == 0
    assert "valid" in capsys.readouterr().out
    # The same seed gives the same transcript.
    again = tmp_path / "again.jsonl"
    main([*SIMULATE_7, "--transcript", str(again), "--json"])
    assert again.read_bytes() == path.read_bytes()


def test_cli_verify_fails_on_an_altered_share_naming_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "run.jsonl"
    assert (
        main(
            [
                "simulate",
                "--nodes",
                "5",
                "--threshold",
                "1",
                "--seed",
                "2",
                "--transcript",
                str(path),
            ]
        )
        == 0
    )
    capsys.readouterr()
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    i = _first(lines, "send", kind="share")
    lines[i]["message"]["values"][1] = str(
        (int(lines[i]["message"]["values"][1]) + 7) % (2**31 - 1)
    )
    path.write_text(_text(lines))
    assert main(["verify", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"run.jsonl:{i + 1}: invalid" in out and "values[1]" in out
    assert main(["verify", str(path), "--json"]) == 1
    verdict = json.loads(capsys.readouterr().out)
    assert verdict["valid"] is False and verdict["line"] == i + 1


def test_cli_simulate_rejects_bad_input_with_a_clear_message(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["simulate", "--nodes", "5", "--threshold", "1", "--drop", "2"])
    assert exc.value.code == 2
    assert "probability in [0, 1]" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["simulate", "--nodes", "5", "--threshold", "1", "--crash", "3"])
    assert "NODE:SENDS" in capsys.readouterr().err
    # A threshold too large for the aggregators: a typed error, exit 2, naming the bound.
    assert main(["simulate", "--nodes", "3", "--threshold", "3", "--seed", "1"]) == 2
    assert "threshold" in capsys.readouterr().err
    assert main(["verify", "/nonexistent/transcript.jsonl"]) == 2


def test_cli_schema_writes_the_committed_schemas(tmp_path: Path) -> None:
    assert main(["schema", str(tmp_path), "--json"]) == 0
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == sorted(schemas())
    for name in written:
        assert (tmp_path / name).read_text() == (ROOT / "spec" / "schemas" / name).read_text()


def test_verify_reads_lines_one_at_a_time_and_stops_at_the_first_offence() -> None:
    """A transcript of any size fits: lines are read lazily, and reading stops at the verdict."""
    from reference.sim.transcript import verify_lines  # noqa: PLC0415

    lines = _plain()
    i = _first(lines, "send", "share")
    forged = copy.deepcopy(lines)
    forged[i]["message"]["values"][0] = "0" if forged[i]["message"]["values"][0] != "0" else "1"
    read: list[int] = []

    def source() -> Iterator[str]:
        for k, line in enumerate(forged):
            read.append(k)
            yield canonical_line(line)

    verdict = verify_lines(source())
    assert not verdict.valid and verdict.line == i + 1
    # At most one line of look-ahead past the offending one.
    assert max(read) <= i + 1 < len(forged) - 1


def test_cli_simulate_with_fewer_noise_sources_and_receivers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--noise-sources``/``--receivers``/``--precover`` reach the round's parameters;
    the transcript verifies; fewer sources without ``--precover`` is refused by name."""
    out = tmp_path / "run.jsonl"
    args = ["simulate", "--nodes", "9", "--threshold", "2", "--dropouts", "2",
            "--colluders", "1", "--committee", "6", "--seed", "3"]  # fmt: skip
    assert main([*args, "--noise-sources", "5", "--receivers", "2", "--precover",
                 "--transcript", str(out), "--json"]) == 0  # fmt: skip
    result = json.loads(capsys.readouterr().out)
    header = json.loads(out.read_text().splitlines()[0])
    assert len(header["params"]["noise_sources"]) == 5 and len(header["params"]["receivers"]) == 2
    assert header["params"]["noise"]["precovered"] == 2
    assert result["status"] == "released" and result["aggregate_correct"] is True
    assert verify(out.read_text()).valid
    assert main([*args, "--noise-sources", "5"]) == 2
    assert "pre-cover every dropout" in capsys.readouterr().err
