"""``sdl simulate``, ``verify`` and ``schema`` from the command line: the signed sum, abort causes.

Spec: spec/12-transcripts.md, spec/02-field.md#signed-encoding
"""

from __future__ import annotations

import json
import shlex
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from reference.cli.main import main
from reference.cli.protocol import COMMANDS
from reference.common.seeds import seed_from_hex
from reference.sim.scenarios import build
from tests.test_simulate import contribution, top_up_dropouts

P31 = 2**31 - 1  # Field31's modulus, written out here rather than read from the code

#: The lossy-network examples of ``sdl simulate --help``: the same network, two seeds.
LOSSY = "simulate --nodes 7 --threshold 2 --max-dropouts 2 --drop 1/50 --late 1/50 --duplicate 1/10"


def _run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().out


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict[str, Any]:
    code, out = _run(capsys, [*argv, "--json"])
    assert code == 0
    obj: dict[str, Any] = json.loads(out)
    return obj


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("seed", ["1", "6"])
def test_released_signed_is_the_signed_map_and_the_plaintext_sum(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, seed: str
) -> None:
    transcript = tmp_path / "run.jsonl"
    args = f"--nodes 7 --threshold 2 --max-dropouts 2 --dropouts 1 --seed {seed}"
    if seed == "6":
        args += " --drop 1/50 --late 1/50 --duplicate 1/10"
    out = _json(capsys, ["simulate", *args.split(), "--transcript", str(transcript)])
    assert out["status"] == "released"
    released = [int(x) for x in out["released"]]
    # The signed map of spec 02: x if x <= (p - 1)/2, else x - p.
    assert out["released_signed"] == [x if x <= (P31 - 1) // 2 else x - P31 for x in released]
    assert any(v < 0 for v in out["released_signed"])  # the map is exercised, not the identity
    # The plaintext sum over the contributors of what each shared (update + noise + top-ups),
    # recomputed from the scenario's inputs as plain integers, with no field at all.
    scenario = build(
        master=seed_from_hex(seed),
        nodes=7,
        threshold=2,
        dropouts=1,
        max_dropouts=2,
    )
    stages = top_up_dropouts(_lines(transcript))
    plain = [0] * scenario.params.dimension
    for i in out["contributors"]:
        plain = [a + b for a, b in zip(plain, contribution(scenario, i, stages), strict=True)]
    assert out["released_signed"] == plain


def test_readable_report_shows_the_signed_sum(capsys: pytest.CaptureFixture[str]) -> None:
    signed = _json(capsys, ["simulate", "--nodes", "7", "--threshold", "2", "--seed", "1"])
    code, text = _run(capsys, ["simulate", "--nodes", "7", "--threshold", "2", "--seed", "1"])
    assert code == 0
    assert f"released sum:   {signed['released_signed']}" in text


def test_an_abort_from_lost_messages_names_them(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    transcript = tmp_path / "run.jsonl"
    argv = [*LOSSY.split(), "--seed", "8", "--transcript", str(transcript)]
    code, text = _run(capsys, argv)
    assert code == 0
    assert "aborted:        too-many-dropouts" in text
    assert "crashed nodes:  none" in text
    assert "share (contributor -> aggregator) dropped by the network" in text
    assert "share (contributor -> aggregator) late (after the timer)" in text
    cause = _json(capsys, argv)["abort_cause"]
    assert len(cause["dropouts"]) > cause["max_dropouts"] == 2
    assert f"counted as dropouts {cause['dropouts']}" in text
    # The tallies agree with the transcript: no more messages lost than copies dropped.
    drops = Counter(
        line["message"]["kind"] for line in _lines(transcript) if line["type"] == "drop"
    )
    for kind, count in cause["lost_messages"]["dropped"].items():
        assert 1 <= count <= drops[kind]
    # Each contributor lost at the last stage is missing from the report of the aggregators
    # named, as the transcript's report messages say.
    reports = {
        line["message"]["sender"]: set(line["message"]["holds"])
        for line in _lines(transcript)
        if line["type"] == "deliver"
        and line["message"]["kind"] == "report"
        and line["message"]["stage"] == cause["stage"]
    }
    assert cause["missing_contributors"]
    for i, lacking in cause["missing_contributors"].items():
        assert lacking == sorted(j for j, holds in reports.items() if int(i) not in holds)


def test_an_abort_from_crashes_names_the_crashed_nodes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = shlex.split("simulate --nodes 7 --threshold 2 --seed 1 --crash 1:0 --crash 2:0")
    code, text = _run(capsys, argv)
    assert code == 0
    assert "aborted:        too-many-dropouts" in text
    assert "nodes [1, 2] crashed" in text
    assert "dropped by the network" not in text
    assert "no report reached it from aggregators [1, 2]" in text


def test_the_help_examples_run_and_show_what_they_claim(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    results: dict[str, dict[str, Any]] = {}
    for command in COMMANDS:
        for example in command.examples:
            line = example.command.replace("/tmp/", f"{tmp_path}/")
            argv = shlex.split(line)
            assert argv[0] == "sdl"
            code, out = _run(capsys, argv[1:])
            assert code == 0, line
            if "--json" in argv:
                json.loads(out)
            results[example.command] = {"shows": example.shows, "out": out}
    release, abort = (
        f"sdl {LOSSY.replace('--max-dropouts 2', f'--max-dropouts 2 --seed {s}')}"
        for s in ("6", "8")
    )
    assert "released:" in results[release]["out"]
    assert "network losses: none" not in results[release]["out"]
    assert "aborted:" in results[abort]["out"]
    assert "dropped by the network" in results[abort]["out"]
