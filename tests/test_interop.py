"""An independent JavaScript consumer of sections 2-4, driven by the conformance harness.

Spec: spec/11-conformance.md
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from reference.cli import main as cli
from reference.oracle import conformance

ROOT = Path(__file__).resolve().parent.parent
CONSUMER = ROOT / "tests" / "interop" / "sdl_consumer.mjs"
SCHEMAS = ROOT / "spec" / "schemas"
NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="node (Node.js) is not on PATH")


@needs_node
def test_js_consumer_passes_the_harness(capsys: pytest.CaptureFixture[str]) -> None:
    command = f"{shlex.quote(str(NODE))} {shlex.quote(str(CONSUMER))} serve"
    code = cli.main(["conformance", "--impl", command, "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0, report
    assert report["ok"] is True
    statuses = {r["op"]: r["status"] for r in report["ops"]}
    # The consumer implements sections 2-4 from the spec; not the samplers or the protocol.
    assert statuses == {
        **dict.fromkeys(conformance.OPS, "pass"),
        "noise.sample": "unsupported",
        "protocol.step": "unsupported",
    }


@needs_node
def test_js_consumer_replays_the_vectors() -> None:
    assert NODE is not None
    proc = subprocess.run(
        [NODE, str(CONSUMER), "replay", str(ROOT / "spec" / "vectors")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    passed = [line for line in proc.stdout.splitlines() if line.startswith("pass ")]
    assert len(passed) >= 20
    assert not any(line.startswith("FAIL") for line in proc.stdout.splitlines())


WRONG_IMPL = """\
import json, sys
for line in sys.stdin:
    req = json.loads(line)
    if req["op"] == "field.mul":
        print(json.dumps({"id": req["id"], "result": ["1"] * len(req["a"])}), flush=True)
    else:
        print(json.dumps({"id": req["id"], "unsupported": True}), flush=True)
"""


def test_wrong_implementation_fails_and_names_the_op(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = tmp_path / "wrong.py"
    script.write_text(WRONG_IMPL)
    command = f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}"
    code = cli.main(["conformance", "--impl", command])
    out = capsys.readouterr().out
    assert code == 1
    row = next(line for line in out.splitlines() if line.startswith("field.mul"))
    assert "fail" in row
    assert "first mismatch: request" in out
    assert re.search(r"^field\.add\s+unsupported", out, re.MULTILINE)


def test_command_that_cannot_start_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["conformance", "--impl", "/nonexistent/sdl-impl serve"])
    assert code == 2
    assert "cannot start" in capsys.readouterr().err


def test_schemas_are_draft_2020_12() -> None:
    for name in ("conformance-request", "conformance-response"):
        schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["type"] == "object"


def _structural_check(req: dict[str, object], schema: dict[str, object]) -> None:
    """A minimal check of a request against the request schema's per-op required keys."""
    ops = schema["properties"]
    assert isinstance(ops, dict)
    assert req["op"] in ops["op"]["enum"]
    assert isinstance(req["id"], int)
    branches = schema["allOf"]
    assert isinstance(branches, list)
    branch = next(b for b in branches if b["if"]["properties"]["op"]["const"] == req["op"])
    assert set(branch["then"]["required"]) <= set(req), (req["op"], sorted(req))
    canonical = re.compile(r"0|[1-9][0-9]*")
    for key in ("modulus", "bound"):
        if key in req:
            assert isinstance(req[key], str) and canonical.fullmatch(req[key])


def test_harness_requests_match_the_request_schema() -> None:
    schema = json.loads((SCHEMAS / "conformance-request.schema.json").read_text())
    requests = conformance.build_requests()
    assert {r["op"] for r in requests} == set(conformance.OPS)
    assert [r["id"] for r in requests] == list(range(len(requests)))
    for req in requests:
        _structural_check(req, schema)


def test_request_set_has_negative_cases() -> None:
    errors = {
        (str(r["op"]), conformance.expected_answer(r).get("error"))
        for r in conformance.build_requests()
    }
    assert ("field.decode", "EncodingError") in errors
    assert ("shamir.reconstruct", "ThresholdNotMet") in errors
    assert ("shamir.reconstruct", "InconsistentShares") in errors


STEP_IMPL = """
import json, sys
from reference.oracle.conformance import expected_answer
BROKEN = {broken}
for line in sys.stdin:
    req = json.loads(line)
    if req["op"] not in ("protocol.step", "noise.sample"):
        print(json.dumps({{"id": req["id"], "unsupported": True}}), flush=True)
        continue
    answer = expected_answer(req)
    result = answer.get("result")
    if BROKEN and isinstance(result, dict) and result["outputs"]:
        result["outputs"] = result["outputs"][:-1]
    if BROKEN and isinstance(result, list) and result:
        result[-1] = str(int(result[-1]) + 1)
    print(json.dumps({{"id": req["id"], **answer}}), flush=True)
"""


@pytest.mark.parametrize("broken", [False, True])
def test_protocol_step_is_judged_output_by_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], broken: bool
) -> None:
    """A stdio implementation of protocol.step and noise.sample passes; a broken one fails.

    The implementation here answers from SDL's own machines through the JSON
    forms of spec/09-protocol.md#state-encoding (parse, step, serialize), so
    the test checks the harness's plumbing and those forms; a broken copy
    that forgets the last output of every step, and changes the last noise
    sample, must fail on both ops.
    """
    script = tmp_path / "step_impl.py"
    script.write_text(STEP_IMPL.format(broken=broken))
    command = f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}"
    code = cli.main(["conformance", "--impl", command, "--json"])
    report = json.loads(capsys.readouterr().out)
    statuses = {r["op"]: r["status"] for r in report["ops"]}
    assert statuses["protocol.step"] == ("fail" if broken else "pass"), report
    assert statuses["noise.sample"] == ("fail" if broken else "pass"), report
    assert code == (1 if broken else 0)


@needs_node
def test_a_broken_copy_of_the_consumer_fails_and_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The consumer with the wrong evaluation point (1 − i instead of −i) fails shamir.reconstruct.

    Everything else it does is untouched, so only that op may fail.
    """
    source = CONSUMER.read_text(encoding="utf-8")
    right = "rows.push(basis(F.mod(-BigInt(i))))"
    assert source.count(right) == 1, "the consumer changed: update this test's patch"
    broken = tmp_path / "broken_consumer.mjs"
    broken.write_text(source.replace(right, "rows.push(basis(F.mod(1n - BigInt(i))))"))
    command = f"{shlex.quote(str(NODE))} {shlex.quote(str(broken))} serve"
    code = cli.main(["conformance", "--impl", command, "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1
    failing = {r["op"] for r in report["ops"] if r["status"] == "fail"}
    assert failing == {"shamir.reconstruct"}, report


_SEED = "00" * 32
_TAG = {"purpose": "x", "params": []}
_SHARES = [{"x": "1", "y": ["1"]}, {"x": "2", "y": ["1"]}]
_RECON = {"op": "shamir.reconstruct", "modulus": "97", "threshold": 1, "packing": 1}


@pytest.mark.parametrize(
    ("request_", "error"),
    [
        # Non-field-element integers: canonical decimals, else ParameterError.
        ({"op": "field.add", "modulus": "097", "a": ["1"], "b": ["1"]}, "ParameterError"),
        ({"op": "field.add", "modulus": "abc", "a": ["1"], "b": ["1"]}, "ParameterError"),
        ({"op": "field.add", "modulus": 97, "a": ["1"], "b": ["1"]}, "ParameterError"),
        (
            {"op": "xof.uniform_ints", "seed": _SEED, "tag": _TAG, "bound": "07", "count": 1},
            "ParameterError",
        ),
        (
            {"op": "xof.bytes", "seed": _SEED, "tag": {"purpose": "x", "params": ["01"]}, "n": 1},
            "ParameterError",
        ),
        ({"op": "xof.bytes", "seed": _SEED, "tag": {"purpose": "x"}, "n": 1}, "ParameterError"),
        (
            {**_RECON, "length": 1, "shares": [{"x": "01", "y": ["1"]}, _SHARES[1]]},
            "ParameterError",
        ),
        # Shapes differ: never broadcast.
        ({"op": "field.add", "modulus": "97", "a": ["1", "2"], "b": ["1"]}, "ParameterError"),
        (
            {"op": "field.sub", "modulus": "97", "a": ["1", "2"], "b": ["1", "2", "3"]},
            "ParameterError",
        ),
        # Malformed hex: the error of the input's section.
        ({"op": "field.decode", "modulus": "97", "data": "0A"}, "EncodingError"),
        ({"op": "field.decode", "modulus": "97", "data": "zz"}, "EncodingError"),
        ({"op": "xof.bytes", "seed": "AA" * 32, "tag": _TAG, "n": 1}, "ParameterError"),
        # Small counts: JSON integers >= 0, else ParameterError.
        ({"op": "xof.bytes", "seed": _SEED, "tag": _TAG, "n": 1.5}, "ParameterError"),
        (
            {"op": "xof.uniform_ints", "seed": _SEED, "tag": _TAG, "bound": "7", "count": -1},
            "ParameterError",
        ),
        (
            {"op": "xof.uniform_ints", "seed": _SEED, "tag": _TAG, "bound": "7", "count": True},
            "ParameterError",
        ),
        ({**_RECON, "length": None, "shares": _SHARES}, "ParameterError"),
        # The bound is checked even when nothing is drawn.
        (
            {"op": "xof.uniform_ints", "seed": _SEED, "tag": _TAG, "bound": "0", "count": 0},
            "ParameterError",
        ),
        # A bad y is an EncodingError, read before the count and the parameters.
        ({**_RECON, "length": 1, "shares": [{"x": "1", "y": ["97"]}]}, "EncodingError"),
        (
            {**_RECON, "threshold": 0, "length": 1, "shares": [{"x": "1", "y": "1"}]},
            "EncodingError",
        ),
        # Parameters before the count; the count before the points.
        ({**_RECON, "threshold": 97, "length": 1, "shares": _SHARES[:1]}, "ParameterError"),
        ({**_RECON, "length": 1, "shares": [{"x": "96", "y": ["1"]}]}, "ThresholdNotMet"),
        # Empty shares need length 0.
        (
            {**_RECON, "length": 1, "shares": [{"x": "1", "y": []}, {"x": "2", "y": []}]},
            "ParameterError",
        ),
    ],
)
def test_reference_reads_requests_by_the_spec_rules(
    request_: dict[str, object], error: str
) -> None:
    """Spec: spec/11-conformance.md#reading-requests (each of these crashed or was accepted)."""
    assert conformance.expected_answer(request_) == {"error": error}


def test_empty_shares_reconstruct_to_the_empty_secret() -> None:
    req = {**_RECON, "length": 0, "shares": [{"x": x, "y": []} for x in ("1", "2", "3")]}
    assert conformance.expected_answer(req) == {"result": []}


def test_request_set_enforces_the_reading_rules() -> None:
    """The harness sends a request for each rule of spec/11-conformance.md#reading-requests."""
    answers = [(r, conformance.expected_answer(r)) for r in conformance.build_requests()]

    def has(op: str, error: str, pred: object) -> bool:
        return any(
            r["op"] == op and a.get("error") == error and pred(r)  # type: ignore[operator]
            for r, a in answers
        )

    assert has("field.add", "ParameterError", lambda r: len(r["a"]) != len(r["b"]))
    assert has("field.decode", "EncodingError", lambda r: r["data"] == "0A")
    assert has("xof.bytes", "ParameterError", lambda r: r["tag"]["params"] == ["01"])
    assert has("xof.bytes", "ParameterError", lambda r: r["seed"] == "zz" * 32)
    assert has("xof.uniform_ints", "ParameterError", lambda r: r["count"] == -1)
    assert has("xof.uniform_ints", "ParameterError", lambda r: r["count"] == 0)
    assert has("shamir.reconstruct", "ParameterError", lambda r: r["shares"][0]["x"] == "01")
    assert has("shamir.reconstruct", "EncodingError", lambda r: r["threshold"] == 0)
    assert has("shamir.reconstruct", "ThresholdNotMet", lambda r: len(r["shares"]) == 1)
    empty = [
        a
        for r, a in answers
        if r["op"] == "shamir.reconstruct" and all(s["y"] == [] for s in r["shares"])
    ]
    assert {"result": []} in empty
