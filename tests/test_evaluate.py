"""Tests of the evaluation grid runner and report writer (reference/learning/evaluate.py).

Spec: spec/13-learning.md#evaluation
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from protocol.errors import ParameterError
from protocol.xof import Tag, derive_seed
from reference.cli.main import main
from reference.common.seeds import seed_from_hex
from reference.learning import evaluate

TINY = {"nodes": 3, "rounds": 2}


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


def test_resume_skips_configs_already_in_results(tmp_path: Path) -> None:
    first = [evaluate.spec(0, trust="none", **TINY), evaluate.spec(0, trust="central", **TINY)]
    outcome = evaluate.run_grid(first, out=tmp_path, workers=1)
    assert (outcome.ran, outcome.skipped) == (2, 0)
    more = [*first, evaluate.spec(1, trust="central", **TINY)]
    outcome = evaluate.run_grid(more, out=tmp_path, workers=1)
    assert (outcome.ran, outcome.skipped) == (1, 2)
    records = _lines(tmp_path / evaluate.RESULTS_FILE)
    assert [evaluate.config_key(r["config"]) for r in records] == [r.key for r in more]
    assert evaluate.run_grid(more, out=tmp_path, workers=1).ran == 0


def test_torn_last_line_is_cut_and_its_run_redone(tmp_path: Path) -> None:
    runs = [evaluate.spec(0, trust="none", **TINY), evaluate.spec(1, trust="none", **TINY)]
    evaluate.run_grid(runs, out=tmp_path, workers=1)
    path = tmp_path / evaluate.RESULTS_FILE
    text = path.read_text(encoding="utf-8")
    path.write_text(text[: len(text) - 40], encoding="utf-8")  # an interrupted append
    outcome = evaluate.run_grid(runs, out=tmp_path, workers=1)
    assert (outcome.ran, outcome.skipped) == (1, 1)
    assert len(_lines(path)) == 2


def test_corrupt_middle_line_is_refused(tmp_path: Path) -> None:
    (tmp_path / evaluate.RESULTS_FILE).write_text('{"config": {}}\n[]\n', encoding="utf-8")
    with pytest.raises(ParameterError, match=r"results.jsonl:1: expected an object"):
        evaluate.read_results(tmp_path / evaluate.RESULTS_FILE)


def test_seeds_derive_from_the_evaluation_seed() -> None:
    for k in (0, 1, 4):
        want = derive_seed(seed_from_hex("e"), Tag("eval.seed", (k,)))
        assert evaluate.eval_seed(k) == want
        assert evaluate.spec(k, trust="none").config["seed"] == want.hex()
    assert len({evaluate.eval_seed(k) for k in range(5)}) == 5


def test_full_grid_runs_the_eps2_iid_row_first_and_has_no_duplicates() -> None:
    runs = evaluate.grid(evaluate.FULL)
    assert len({r.key for r in runs}) == len(runs)
    head = [dict(r.overrides) for r in runs[:20]]
    assert all(h.get("epsilon", 2.0) == 2.0 and "partition" not in h for h in head)
    assert sorted({h["trust"] for h in head}) == ["central", "distributed", "local", "none"]
    assert sum(1 for h in head if h["trust"] == "distributed") == 5
    # none does not depend on ε: once per seed per partition.
    assert sum(1 for r in runs if dict(r.overrides)["trust"] == "none") == 5 + 3


def _record(k: int, accuracy: float, **config: Any) -> dict[str, Any]:
    history = [
        {"dropouts": 0, "seconds_local": 0.5, "seconds_aggregate": 1.5, "seconds_update": 0.01,
         "messages": 100, "bytes_sent": 20_000}
    ]  # fmt: skip
    return {
        "config": {**config, "seed": evaluate.eval_seed(k).hex()},
        "seed_index": k,
        "result": {"accuracy": accuracy, "epsilon": config.get("epsilon", 2.0) * 0.99,
                   "released_rounds": 60, "dataset": "digits", "history": history},
        "versions": evaluate.versions(),
        "wall_seconds": 1.0,
    }  # fmt: skip


def _mean_std(values: list[float]) -> tuple[float, float]:
    m = sum(values) / len(values)
    return m, math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))


def _write(tmp_path: Path, records: list[dict[str, Any]]) -> str:
    text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)
    (tmp_path / evaluate.RESULTS_FILE).write_text(text, encoding="utf-8")
    return evaluate.write_report(tmp_path, plots=False).read_text(encoding="utf-8")


ACC = {
    "none": [0.97, 0.965, 0.962],
    "central": [0.93, 0.925, 0.935],
    "distributed": [0.915, 0.92, 0.91],
    "local": [0.70, 0.72, 0.71],
}


def test_report_tables_and_target_lines_match_independent_statistics(tmp_path: Path) -> None:
    records = [
        _record(k, acc, trust=trust, **({} if trust == "none" else {"epsilon": 2.0}))
        for trust, accs in ACC.items()
        for k, acc in enumerate(accs)
    ]
    records.append(_record(0, 0.5, trust="local", epsilon=1.0))
    report = _write(tmp_path, records)
    for trust, accs in ACC.items():
        m, s = _mean_std(accs)
        assert f"{m:.3f} ± {s:.3f} (n=3)" in report, trust
    assert "0.500 ± 0.000 (n=1)" in report  # local at ε = 1: one run
    assert "| trust | ε = 1 | ε = 2 |" in report
    d, c = _mean_std(ACC["distributed"])[0], _mean_std(ACC["central"])[0]
    assert f"- **PASS** distributed accuracy ≥ 0.90 at ε = 2: mean {d:.4f} over 3 seeds" in report
    # central − distributed = 1.5 points: within 1.5 points, just.
    assert (
        f"- **PASS** distributed within 1.5 points of central at ε = 2: central {c:.4f}" in report
    )
    assert f"{(c - d) * 100:+.2f} points" in report
    assert "- **PASS** local clearly below both" in report
    assert "- **PASS** non-private accuracy ≥ 0.96: mean 0.9657 over 3 seeds" in report


def test_report_says_fail_when_a_target_is_missed(tmp_path: Path) -> None:
    records = [
        _record(0, 0.85, trust="distributed"),
        _record(0, 0.93, trust="central"),
        _record(0, 0.92, trust="local"),
        _record(0, 0.95, trust="none"),
    ]
    report = _write(tmp_path, records)
    assert "- **FAIL** distributed accuracy ≥ 0.90 at ε = 2: mean 0.8500 over 1 seeds" in report
    assert "- **FAIL** distributed within 1.5 points of central" in report
    assert "+8.00 points" in report
    assert "- **FAIL** local clearly below both" in report
    assert "- **FAIL** non-private accuracy ≥ 0.96" in report


def test_report_has_dropout_cost_and_node_level_tables_and_plots(tmp_path: Path) -> None:
    records = [
        _record(0, 0.91, trust="distributed"),
        _record(1, 0.93, trust="distributed"),
        _record(0, 0.87, trust="distributed", dropout_rate=0.3),
        _record(0, 0.5, trust="central", unit="node"),
        _record(0, 0.9, trust="distributed", nodes=20, rounds=3, measure_bytes=True),
    ]
    text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)
    (tmp_path / evaluate.RESULTS_FILE).write_text(text, encoding="utf-8")
    report = evaluate.write_report(tmp_path).read_text(encoding="utf-8")
    m, s = _mean_std([0.91, 0.93])
    assert f"| 0 | {m:.3f} ± {s:.3f} (n=2) |" in report  # dropout rate 0
    assert "| 0.3 | 0 | 0.870 ± 0.000 (n=1) |" in report  # rate, backups, accuracy
    assert "| 10 | digits | 2 | central | 0.500 ± 0.000 (n=1) |" in report
    # 20 000 bytes per round over 20 nodes: 1.0 kB per node.
    assert "| softmax | 20 | 650 | 0.500 | 1.500 | 0.0100 | 100 | 1.0 |" in report
    for png in ("accuracy_vs_epsilon_iid.png", "dropouts.png", "cost.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_help_teaches(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for needle in ("--quick", "--out", "--workers", "--seeds", "results.jsonl", "resumes",
                   "Examples:", "sdl evaluate --quick --out", "sdl-evaluate",
                   "--out reference/evaluation"):  # fmt: skip
        assert needle in text
    flat = " ".join(text.split())
    # One statement of how long --quick takes (measured: 66 s on 2 cores, 2 workers).
    assert "about a minute" in flat and "a few minutes" not in flat


def test_report_of_a_grid_leaves_out_other_grids_runs(tmp_path: Path) -> None:
    ours = _record(0, 0.91, trust="distributed")
    other = _record(0, 0.20, trust="distributed", rounds=20)  # e.g. a --quick run
    text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in (ours, other))
    (tmp_path / evaluate.RESULTS_FILE).write_text(text, encoding="utf-8")
    runs = [evaluate.spec(0, trust="distributed")]
    report = evaluate.write_report(tmp_path, plots=False, runs=runs).read_text(encoding="utf-8")
    assert "(1 runs;" in report
    assert "0.910 ± 0.000 (n=1)" in report
    assert "0.200" not in report


def test_a_default_valued_override_is_the_same_run_and_counts_once(tmp_path: Path) -> None:
    plain, explicit = evaluate.spec(0, trust="none"), evaluate.spec(0, trust="none", rounds=60)
    assert plain.key == explicit.key
    records = [_record(0, 0.96, trust="none"), _record(0, 0.96, trust="none", rounds=60)]
    report = _write(tmp_path, records)
    assert "0.960 ± 0.000 (n=1)" in report


REPO = Path(__file__).resolve().parents[1]
COMMITTED = REPO / "reference" / "evaluation"


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


#: A grid small enough for a test: ε = 2 only, one seed, 2 rounds, no cost/dropout/node runs.
TINY_PLAN = evaluate.GridPlan(
    epsilons=(2.0,), seeds=1, rounds=2, non_iid_epsilons=(), non_iid_seeds=0,
    node_level_epsilons=(), node_level_seeds=0, node_level_big=False, dropout_rates=(),
    dropout_seeds=0, cost_nodes=(), cost_rounds=1,
)  # fmt: skip


def test_evaluate_without_out_writes_a_fresh_folder_not_the_committed_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _snapshot(COMMITTED)
    monkeypatch.setattr(evaluate, "QUICK", TINY_PLAN)
    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", "--quick", "--workers", "1", "--quiet", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["out"] == "sdl-evaluate" and out["ran"] == out["runs"] == 4
    report = (tmp_path / "sdl-evaluate" / evaluate.REPORT_FILE).read_text(encoding="utf-8")
    assert len(_lines(tmp_path / "sdl-evaluate" / evaluate.RESULTS_FILE)) == 4
    assert _snapshot(COMMITTED) == before
    # The report describes the (quick) grid that ran: 2 rounds, ε ∈ {2}, 1 seed.
    assert "> Quick grid (`--quick`)" in report
    assert "Grids of the quick (`--quick`) evaluation, 2 rounds" in report
    assert "1. accuracy vs ε: ε ∈ {2}," in report and "1 seeds." in report
    assert "{0.5, 1, 2, 4, 8}" not in report


def test_the_quick_report_describes_the_quick_grid_and_the_full_one_the_full(
    tmp_path: Path,
) -> None:
    quick = evaluate.write_report(tmp_path, plots=False, plan=evaluate.QUICK)
    text = quick.read_text(encoding="utf-8")
    assert "Grids of the quick (`--quick`) evaluation, 20 rounds" in text
    assert "ε ∈ {1, 2}, trust central/distributed/local" in text
    assert "nodes ∈ {5, 10} × model ∈ {softmax, mlp}" in text
    assert "`dropout_rate` ∈ {0, 0.3}, 2 seeds" in text
    assert "{0.5, 1, 2, 4, 8}" not in text and "100 nodes" not in text
    full = evaluate.write_report(tmp_path, plots=False).read_text(encoding="utf-8")
    assert "Grids of the full evaluation, 60 rounds" in full
    assert "ε ∈ {0.5, 1, 2, 4, 8}, trust central/distributed/local" in full
    assert "nodes ∈ {5, 10, 20, 40} × model ∈ {softmax, mlp}" in full
    assert "100 nodes on `synthetic.npz`" in full


def test_report_headings_speak_of_the_product(tmp_path: Path) -> None:
    report = _write(tmp_path, [_record(0, 0.91, trust="distributed")])
    headings = [line for line in report.splitlines() if line.startswith("#")]
    assert "## Targets, as measured" in headings
    for line in headings:
        assert not re.search(r"\bissues?\b", line, re.IGNORECASE), line


def test_cost_section_names_how_the_bytes_were_counted(tmp_path: Path) -> None:
    old = _record(0, 0.9, trust="distributed", nodes=20, rounds=3, measure_bytes=True)
    assert "canonical JSON transcript line" in _write(tmp_path, [old])
    new = {**old, "bytes_form": evaluate.BYTES_FORM}
    assert "Bytes: the binary wire form (`protocol.messages.wire_size`)" in _write(tmp_path, [new])


def test_a_run_record_says_its_bytes_are_the_wire_form(tmp_path: Path) -> None:
    run = evaluate.spec(0, trust="distributed", **TINY)
    evaluate.run_grid([run], out=tmp_path, workers=1)
    (record,) = _lines(tmp_path / evaluate.RESULTS_FILE)
    assert record["bytes_form"] == "wire"
    assert record["result"]["history"][0]["bytes_sent"] > 0


def test_a_record_names_the_versions_it_was_computed_with(tmp_path: Path) -> None:
    evaluate.run_grid([evaluate.spec(0, trust="none", **TINY)], out=tmp_path, workers=1)
    (record,) = _lines(tmp_path / evaluate.RESULTS_FILE)
    assert record["versions"] == evaluate.versions()
    assert record["versions"]["evaluation"] == evaluate.EVALUATION_VERSION
    assert record["versions"]["sdl"] == importlib.metadata.version("sdl")
    assert record["versions"]["vectors"] == "sdl-vectors/1"


def test_a_stale_row_is_run_again_and_never_reported(tmp_path: Path) -> None:
    runs = [evaluate.spec(0, trust="none", **TINY), evaluate.spec(1, trust="none", **TINY)]
    evaluate.run_grid(runs, out=tmp_path, workers=1)
    path = tmp_path / evaluate.RESULTS_FILE
    first, second = _lines(path)
    old = {k: v for k, v in first.items() if k != "versions"}  # as rows before versions
    old["result"] = {**old["result"], "accuracy": 0.123}
    bumped = {**second, "versions": {**second["versions"], "evaluation": 1}}
    bumped["result"] = {**bumped["result"], "accuracy": 0.456}
    path.write_text("".join(json.dumps(r) + "\n" for r in (old, bumped)), encoding="utf-8")
    report = evaluate.write_report(tmp_path, plots=False).read_text(encoding="utf-8")
    assert "(0 runs;" in report and "2 lines of other versions left out" in report
    outcome = evaluate.run_grid(runs, out=tmp_path, workers=1)
    assert (outcome.ran, outcome.skipped) == (2, 0)
    records = _lines(path)  # the stale rows are gone, not kept beside the new ones
    assert [r["result"]["accuracy"] for r in records] == [
        first["result"]["accuracy"],
        second["result"]["accuracy"],
    ]
    assert all(r["versions"] == evaluate.versions() for r in records)
    report = evaluate.write_report(tmp_path, plots=False).read_text(encoding="utf-8")
    assert f"- Versions: {evaluate.versions_text(evaluate.versions())} (" in report
    assert "other versions" not in report and "0.123" not in report


#: A committed row cheap enough to run again in a test (3 rounds, 5 nodes: about a second).
REPRODUCED = evaluate.spec(0, trust="distributed", model="softmax", nodes=5,
                           rounds=evaluate.COST_ROUNDS, measure_bytes=True)  # fmt: skip
#: A result's fields that depend on time, not on the config: everything else must repeat.
TIMED = ("seconds", "seconds_local", "seconds_aggregate", "seconds_update")


def _deterministic(result: dict[str, Any]) -> dict[str, Any]:
    kept = {k: v for k, v in result.items() if k not in TIMED and k != "history"}
    kept["history"] = [{k: v for k, v in h.items() if k not in TIMED} for h in result["history"]]
    return kept


def test_a_committed_row_reproduces_exactly_with_the_current_code(tmp_path: Path) -> None:
    rows = [
        r for r in _lines(COMMITTED / evaluate.RESULTS_FILE)
        if evaluate.config_key(r["config"]) == REPRODUCED.key
    ]  # fmt: skip
    assert len(rows) == 1, f"expected one committed row of {REPRODUCED.key}; got {len(rows)}"
    (row,) = rows
    evaluate.run_grid([REPRODUCED], out=tmp_path, workers=1)
    (again,) = _lines(tmp_path / evaluate.RESULTS_FILE)
    for key in ("accuracy", "epsilon", "released_rounds", "released_sha256", "model_sha256"):
        assert row["result"].get(key) == again["result"][key], (
            f"{key}: committed {row['result'].get(key)!r}, now {again['result'][key]!r}; "
            "regenerate: sdl evaluate --out reference/evaluation"
        )
    assert _deterministic(row["result"]) == _deterministic(again["result"])
    assert row.get("versions") == evaluate.versions(), "the committed row is stale"


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2 :].split()[0] != "Z"


def _children(pid: int) -> list[int]:
    """PIDs of the live processes whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rfind(")") + 2 :].split()[1]) == pid and _alive(int(entry.name)):
                found.append(int(entry.name))
    return found


#: ``sdl`` as a user at a terminal starts it: with Ctrl-C (SIGINT) at its default action
#: (a test run started in the background inherits SIGINT ignored); the first interpreter
#: restores the default and execs ``sdl`` in its place (same PID). As in
#: tests/test_deploy_flower.py.
INTERRUPTIBLE_SDL = [
    sys.executable, "-c",
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.argv[1], sys.argv[1:])",
    sys.executable, "-m", "reference.cli.main",
]  # fmt: skip


def test_ctrl_c_stops_the_workers_and_leaves_only_whole_lines(tmp_path: Path) -> None:
    out = tmp_path / "eval"
    results = out / evaluate.RESULTS_FILE
    # A session of its own: the signal goes to the whole process group, as a terminal's.
    proc = subprocess.Popen(
        [*INTERRUPTIBLE_SDL, "evaluate", "--quick", "--out", str(out), "--workers", "2",
         "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, cwd=REPO,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if results.exists() and results.read_bytes().endswith(b"\n"):
            break
        time.sleep(0.1)
    started = _children(proc.pid)
    assert proc.poll() is None and len(started) >= 2, "sdl evaluate started no workers"
    os.killpg(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    text = stderr.decode()
    assert proc.returncode == 130, text
    assert text.splitlines() == ["sdl evaluate: error: interrupted"], text
    assert "Traceback" not in text
    deadline = time.monotonic() + 10  # the pool's resource tracker leaves once we are gone
    while time.monotonic() < deadline and any(_alive(p) for p in started):
        time.sleep(0.1)
    assert [p for p in started if _alive(p)] == []
    lines = results.read_text(encoding="utf-8").splitlines()
    assert lines and all(json.loads(line)["versions"] == evaluate.versions() for line in lines)
    assert not (out / evaluate.REPORT_FILE).exists()
