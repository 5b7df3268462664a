"""The oracles other implementations run on their own output never crash.

Spec: spec/12-transcripts.md#verification, spec/10-test-vectors.md#format

`sdl verify` and `sdl vectors check` read files written by others: every
input gets a verdict (or a problem naming the file), in time roughly linear
in its size, never a traceback.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from protocol.errors import InvalidMessage
from protocol.messages import parse
from reference.cli.main import main
from reference.oracle import vectors
from reference.oracle.format import case_seed
from reference.sim.scenarios import build
from reference.sim.simulate import canonical_line, simulate
from reference.sim.transcript import Verdict, verify, verify_lines

#: Generous: the fixed paths run in milliseconds, the quadratic ones took seconds.
SECONDS = 2.0

DEEP = 100_000


def _transcript() -> list[dict[str, Any]]:
    s = build(master=case_seed(0), nodes=4, threshold=1)
    lines: list[dict[str, Any]] = []
    simulate(s, sink=lines.append)
    return lines


def _text(lines: list[dict[str, Any]]) -> list[str]:
    return [canonical_line(x) for x in lines]


def _first_event(lines: list[dict[str, Any]]) -> int:
    return next(i for i, x in enumerate(lines) if x.get("type") == "start")


def _timed_verify(text: list[str]) -> Verdict:
    began = time.perf_counter()
    verdict = verify_lines(text)
    assert time.perf_counter() - began < SECONDS
    return verdict


def test_the_untouched_transcript_is_valid() -> None:
    assert verify("\n".join(_text(_transcript()))).valid


@pytest.mark.parametrize("key", ["node", "role"])
@pytest.mark.parametrize("value", [[1], {"a": 1}, [[1, 2]]])
def test_verify_names_an_event_line_with_an_unhashable_node_or_role(key: str, value: Any) -> None:
    lines = _transcript()
    i = _first_event(lines)
    lines[i][key] = value
    verdict = _timed_verify(_text(lines))
    assert not verdict.valid
    assert verdict.line == i + 1
    assert "holds no" in (verdict.why or "")


def test_verify_names_a_crash_line_with_an_unhashable_node() -> None:
    lines = _transcript()
    i = _first_event(lines)
    lines.insert(i + 1, {"type": "crash", "node": [1], "sent": 0})
    verdict = _timed_verify(_text(lines))
    assert not verdict.valid
    assert verdict.line == i + 2


def test_verify_names_a_header_whose_modulus_has_5000_digits() -> None:
    lines = _transcript()
    lines[0]["params"]["modulus"] = "7" * 5000
    verdict = _timed_verify(_text(lines))
    assert not verdict.valid
    assert verdict.line == 1
    assert "invalid params: modulus" in (verdict.why or "")
    assert "5000 digits" in (verdict.why or "")


@pytest.mark.parametrize("digits", [20, 26, 4000])
def test_verify_refuses_any_modulus_longer_than_2_61_minus_1(digits: int) -> None:
    lines = _transcript()
    lines[0]["params"]["modulus"] = "1" + "0" * (digits - 2) + "7"
    verdict = _timed_verify(_text(lines))
    assert (verdict.valid, verdict.line) == (False, 1)
    assert "modulus" in (verdict.why or "")


@pytest.mark.parametrize("where", ["header", "event"])
def test_verify_names_a_line_nested_100k_deep(where: str) -> None:
    lines = _text(_transcript())
    i = 0 if where == "header" else 3
    lines[i] = "[" * DEEP + "]" * DEEP
    verdict = _timed_verify(lines)
    assert (verdict.valid, verdict.line) == (False, i + 1)
    assert "nested too deeply" in (verdict.why or "")


def test_verify_names_a_line_with_an_integer_past_the_digit_limit() -> None:
    lines = _text(_transcript())
    lines[2] = '{"type":"start","time":' + "9" * 5000 + "}"
    verdict = _timed_verify(lines)
    assert (verdict.valid, verdict.line) == (False, 3)


def test_verify_names_a_message_nested_just_below_the_parser_limit() -> None:
    # Deep enough that later steps (re-encoding, formatting) may recurse too far.
    lines = _transcript()
    i = _first_event(lines)
    text = _text(lines)
    depth = 990
    text[i] = (
        '{"type":"deliver","time":0,"node":1,"role":"aggregator","message":'
        + "[" * depth
        + "]" * depth
        + "}"
    )
    verdict = _timed_verify(text)
    assert (verdict.valid, verdict.line) == (False, i + 1)


def _cli_verify(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: list[str]
) -> tuple[int, dict[str, Any]]:
    path = tmp_path / "run.jsonl"
    path.write_text("\n".join(text) + "\n", encoding="utf-8")
    code = main(["verify", str(path), "--json"])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, json.loads(out)


def test_cli_verify_gives_a_json_verdict_for_each_hostile_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = _transcript()
    i = _first_event(lines)
    unhashable = [dict(x) for x in lines]
    unhashable[i]["node"] = [1]
    modulus = json.loads(json.dumps(lines))
    modulus[0]["params"]["modulus"] = "7" * 5000
    deep = _text(lines)
    deep[1] = "[" * DEEP + "]" * DEEP
    for text, line in ((_text(unhashable), i + 1), (_text(modulus), 1), (deep, 2)):
        code, verdict = _cli_verify(tmp_path, capsys, text)
        assert code == 1
        assert verdict["valid"] is False
        assert verdict["line"] == line
        assert verdict["why"]


def test_cli_verify_without_json_names_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = _text(_transcript())
    text[1] = "[" * DEEP + "]" * DEEP
    path = tmp_path / "run.jsonl"
    path.write_text("\n".join(text) + "\n", encoding="utf-8")
    assert main(["verify", str(path)]) == 1
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert f"{path}:2: invalid:" in out


# ---------------------------------------------------------------------- messages


def test_parse_is_linear_in_the_number_of_keys() -> None:
    text = "{" + ",".join(f'"k{i}":1' for i in range(64_000)) + "}"
    began = time.perf_counter()
    with pytest.raises(InvalidMessage):
        parse(text)
    assert time.perf_counter() - began < SECONDS


def test_parse_names_every_duplicate_key_once_in_order() -> None:
    text = '{"b":1,"a":1,"b":2,"c":1,"a":3,"b":4}'
    with pytest.raises(InvalidMessage, match=r"duplicate keys \['a', 'b'\]"):
        parse(text)


def test_parse_of_many_keys_with_a_duplicate_is_linear() -> None:
    text = "{" + ",".join(f'"k{i}":1' for i in range(64_000)) + ',"k7":2}'
    began = time.perf_counter()
    with pytest.raises(InvalidMessage, match=r"duplicate keys \['k7'\]"):
        parse(text)
    assert time.perf_counter() - began < SECONDS


# ---------------------------------------------------------------------- vectors


def _xof_case(**step: Any) -> dict[str, Any]:
    good = json.loads((vectors_dir() / "xof" / "stream_0.json").read_text(encoding="utf-8"))
    return good | {"operations": [step]}


def _noise_case(count: int) -> dict[str, Any]:
    good = json.loads((vectors_dir() / "noise" / "skellam_10.json").read_text(encoding="utf-8"))
    return good | {"count": count}


def vectors_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "spec" / "vectors"


def _timed_check(directory: Path) -> list[vectors.FileResult]:
    began = time.perf_counter()
    results = vectors.check(directory)
    assert time.perf_counter() - began < SECONDS
    return results


def _hostile_dir(tmp_path: Path) -> Path:
    (tmp_path / "deep.json").write_text("[" * 200_000 + "]" * 200_000, encoding="utf-8")
    (tmp_path / "digits.json").write_text('{"a": ' + "9" * 5000 + "}", encoding="utf-8")
    (tmp_path / "deep_format.json").write_text(
        '{"format": ' + "[" * 990 + "]" * 990 + "}", encoding="utf-8"
    )
    cases = {
        "uniform_ints": _xof_case(op="uniform_ints", bound="7", count=2**40, output=[]),
        "next_bytes": _xof_case(op="next_bytes", n=2**40, output=""),
        "field_elements": _xof_case(op="field_elements", modulus="97", count=2**40, output=[]),
        "noise": _noise_case(2**40),
    }
    for name, case in cases.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(case), encoding="utf-8")
    good = vectors_dir() / "field" / "Field31_arithmetic.json"
    (tmp_path / "good.json").write_text(good.read_text(encoding="utf-8"), encoding="utf-8")
    return tmp_path


def test_vectors_check_fails_each_hostile_file_alone(tmp_path: Path) -> None:
    results = {r.path: r for r in _timed_check(_hostile_dir(tmp_path))}
    assert results["good.json"].ok
    assert results["deep.json"].problems == ["unreadable: JSON nested too deeply to read"]
    assert results["digits.json"].problems[0].startswith("unreadable: ")
    # Read or not (that depends on the stack depth here), it fails alone.
    assert results["deep_format.json"].problems[0].startswith(("unreadable: ", "malformed: "))
    for name, key in (
        ("uniform_ints", "count"),
        ("next_bytes", "n"),
        ("field_elements", "count"),
        ("noise", "count"),
    ):
        problems = results[f"{name}.json"].problems
        assert f"malformed: {key} {2**40} exceeds the vector bound 10^7" in problems, problems


def test_vectors_check_records_an_overflow_error_as_the_files_problem(tmp_path: Path) -> None:
    # A signed value past int64: numpy raises OverflowError, not ValueError.
    case = json.loads((vectors_dir() / "field" / "Field31_arithmetic.json").read_text("utf-8"))
    case["signed_values"] = ["9" * 30]
    (tmp_path / "f.json").write_text(json.dumps(case), encoding="utf-8")
    (result,) = vectors.check(tmp_path)
    assert len(result.problems) == 1
    assert result.problems[0].startswith("malformed: OverflowError: ")


def test_cli_vectors_check_prints_the_table_despite_hostile_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = _hostile_dir(tmp_path)
    assert main(["vectors", "check", str(directory)]) == 1
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert "good.json" in out and "deep.json" in out
    assert "1 passed, 7 failed" in out
