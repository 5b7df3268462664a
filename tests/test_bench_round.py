"""``sdl bench round``: the figures' bookkeeping, checked against independent recomputations.

Nothing here is timed against a limit: the speed targets are reported by the
command, never asserted in tests (a busy machine would fail them). What is
checked: the round releases the exact sum; the phases add up to the machine
time; the bytes per contributor equal the wire sizes of the shares it sent,
recomputed here from the messages themselves; the channels' frame bytes equal
the frame sizes of the messages between two nodes, counted here from the
messages sent; the ratios and targets agree
with the figures they are made of; the command's JSON, its refusal without
Flower, and the scaling sweep's files.
"""

from __future__ import annotations

import json
import math
import re
import sys
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from protocol.channels import DEFAULT_SUITE, SUITES, frame_size
from protocol.errors import ParameterError
from protocol.field import Field
from protocol.messages import Message, encode_wire
from reference.bench import round as bench_round
from reference.bench.round import (
    PHASES,
    RoundBench,
    RoundConfig,
    RoundMeasure,
    Scaling,
    TimedUpdates,
    fit,
    format_round,
    format_scaling,
    measure_round,
    peak_memory,
    plot_title,
    run_scaling,
    scenario,
    targets,
)
from reference.cli.main import main
from reference.sim.simulate import simulate

#: A small round: 6 nodes, a committee of 5 (quorum t + k = 4, so one aggregator may drop).
SMALL = RoundConfig(
    nodes=6,
    dimension=64,
    committee=5,
    threshold=2,
    packing=2,
    dropouts=1,
    colluders=1,
    noise_sources=4,
    receivers=1,
    seed="1",
)
SMALL_ARGS = [
    "bench", "round", "--nodes", "6", "--dimension", "64", "--committee", "5",
    "--threshold", "2", "--packing", "2", "--dropouts", "1", "--colluders", "1",
    "--noise-sources", "4", "--receivers", "1", "--seed", "1", "--quiet",
]  # fmt: skip
PLAIN = replace(SMALL, channels="plain")


def wire_bytes(message: Message, field: type[Field]) -> int:
    """The length of the message's binary wire form, built in full (not its size formula)."""
    return len(encode_wire(message, field))


def shares_sent_bytes(config: RoundConfig) -> dict[int, int]:
    """Per contributor, the wire bytes of the share messages it sent, from a run of our own."""
    built = scenario(config)
    sent: dict[int, int] = dict.fromkeys(built.params.contributors, 0)

    def on_send(message: Message) -> None:
        if message.kind == "share":
            sent[message.sender] += wire_bytes(message, built.params.field)

    simulate(built, on_send=on_send)
    return sent


def frames_sent(config: RoundConfig) -> tuple[int, int]:
    """How many messages between two different nodes a run of our own sent, and the sum of
    their frame sizes (:func:`protocol.channels.frame_size`), counted from ``on_send``."""
    built = scenario(config)
    suite = SUITES[config.suite]
    count = [0, 0]

    def on_send(message: Message) -> None:
        if message.sender != message.recipient:
            count[0] += 1
            count[1] += frame_size(message, built.params.field, suite)

    simulate(built, on_send=on_send)
    return count[0], count[1]


@pytest.fixture(scope="module")
def measured() -> RoundMeasure:
    return measure_round(SMALL)


@pytest.fixture(scope="module")
def plain() -> RoundMeasure:
    return measure_round(PLAIN)


def test_small_round_releases_the_exact_sum(measured: RoundMeasure) -> None:
    assert measured.status == "released"
    assert measured.released and measured.aggregate_correct
    assert measured.crashed == 1
    assert measured.released_contributors == SMALL.nodes - SMALL.dropouts


def test_phases_sum_to_the_machine_time(measured: RoundMeasure) -> None:
    assert set(measured.phases) == set(PHASES)
    assert math.isclose(sum(measured.phases.values()), measured.machine_seconds, abs_tol=1e-9)
    steps = sum(seconds for _, seconds in measured.steps.values())
    assert math.isclose(steps, measured.machine_seconds, abs_tol=1e-9)
    assert math.isclose(
        measured.simulator_overhead_seconds,
        measured.wall_seconds - measured.machine_seconds,
        abs_tol=1e-9,
    )
    assert measured.phases["contribute"] == measured.steps["contributor/start"][1]


def test_per_node_times_add_up_to_their_roles_steps(measured: RoundMeasure) -> None:
    for role, spread in (
        ("contributor", measured.contributor_seconds),
        ("aggregator", measured.aggregator_seconds),
    ):
        steps = sum(s for key, (_, s) in measured.steps.items() if key.startswith(f"{role}/"))
        assert math.isclose(spread.total, steps, abs_tol=1e-9)
        assert spread.nodes == measured.machines[role]
        assert spread.median <= spread.max
    assert measured.contributor_seconds.nodes == SMALL.nodes
    assert measured.aggregator_seconds.nodes == SMALL.committee
    # Split by whether the contributor added noise: SMALL asks for 4 noise sources.
    sources, others = measured.noise_source_seconds, measured.other_contributor_seconds
    assert (sources.nodes, others.nodes) == (SMALL.noise_sources, SMALL.nodes - 4)
    assert math.isclose(sources.total + others.total, measured.contributor_seconds.total)


def test_bytes_per_contributor_equal_the_wire_sizes_of_its_shares(
    measured: RoundMeasure,
) -> None:
    expected = shares_sent_bytes(SMALL)
    assert {int(i): b for i, b in measured.bytes_by_node["contributor"].items()} == expected
    values = sorted(expected.values())
    assert measured.bytes_sent["contributor"].max == values[-1]
    assert measured.bytes_sent["contributor"].median == (values[2] + values[3]) / 2
    assert measured.bytes_sent["contributor"].total == sum(values)


def test_inputs_are_drawn_once_per_contributor_and_match_the_scenario(
    measured: RoundMeasure,
) -> None:
    assert measured.inputs_drawn == SMALL.nodes
    assert measured.plaintext_addends == SMALL.nodes
    built = scenario(SMALL)
    updates = TimedUpdates(built)
    assert list(updates) == list(built.params.contributors)
    assert updates[3] == built.update(3)
    assert updates.drawn == 1 and updates.seconds >= 0
    with pytest.raises(KeyError):
        updates[SMALL.nodes + 1]


def test_printed_report_matches_the_figures(measured: RoundMeasure) -> None:
    bench = RoundBench(measure=measured, memory=peak_memory(), idle=None)
    text = format_round(bench, None)
    ratio = re.search(r"round / plaintext = ([\d,.]+)x", text)
    assert ratio is not None
    assert ratio.group(1) == f"{measured.round_over_plaintext:,.1f}"
    assert measured.round_over_plaintext == measured.wall_seconds / measured.plaintext_seconds
    for target in targets(bench, None):
        verdict = {True: "PASS", False: "MISS", None: "n/a "}[target.passed]
        assert f"{verdict}  ({target.key})" in text


def test_cli_json_has_every_figure_and_consistent_ratios(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main([*SMALL_ARGS, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in (
        "phases", "steps", "machine_seconds", "wall_seconds", "cpu_seconds",
        "simulator_overhead_seconds", "inputs_seconds", "contributor_seconds",
        "aggregator_seconds", "bytes_sent", "messages", "released", "aggregate_correct",
        "plaintext_seconds", "round_over_plaintext", "memory", "idle_memory", "targets",
        "config", "noise_source_seconds", "other_contributor_seconds", "verify_seconds",
    ):  # fmt: skip
        assert key in out, key
    assert out["released"] is True and out["aggregate_correct"] is True
    assert math.isclose(sum(out["phases"].values()), out["machine_seconds"], abs_tol=1e-9)
    assert math.isclose(
        out["round_over_plaintext"], out["wall_seconds"] / out["plaintext_seconds"], rel_tol=1e-12
    )
    # The child ran the same deterministic round: the same bytes as our own run.
    expected = shares_sent_bytes(SMALL)
    assert {int(i): b for i, b in out["bytes_by_node"]["contributor"].items()} == expected
    by_key = {t["key"]: t for t in out["targets"]}
    assert by_key["a"]["passed"] is None  # no Flower run
    assert by_key["b"]["passed"] is None and by_key["b"]["limit"] is None  # nor a figure of it
    assert by_key["b"]["measured"] == out["contributor_seconds"]["median"]
    assert by_key["c"]["measured"] == max(expected.values())
    assert by_key["c"]["limit"] == 3 * SMALL.dimension * out["field_encoded_size"]
    assert by_key["c"]["passed"] == (max(expected.values()) <= by_key["c"]["limit"])
    assert by_key["d"]["measured"] == out["memory"]["ru_maxrss"] > 0
    assert out["idle_memory"]["ru_maxrss"] > 0
    assert out["flower"] is None


def test_compare_flower_without_flower_exits_2_with_the_install_hint(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "flwr", None)  # import flwr now raises ImportError

    def must_not_run(*args: object, **kwargs: object) -> None:
        raise AssertionError("the round ran although Flower is missing")

    monkeypatch.setattr(bench_round, "bench_round", must_not_run)
    assert main([*SMALL_ARGS, "--compare-flower"]) == 2
    captured = capsys.readouterr()
    assert "pip install -e '.[bench]'" in captured.err
    assert captured.out == ""


def test_scaling_writes_a_png_and_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    argv = [
        *SMALL_ARGS, "--scaling", "--scaling-dimensions", "16,64", "--scaling-nodes", "6",
        "--scaling-nodes-dimension", "16", "--out", str(tmp_path), "--json",
    ]  # fmt: skip
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    written = json.loads((tmp_path / "scaling.json").read_text(encoding="utf-8"))
    assert {k: v for k, v in printed.items() if k != "outputs"} == written
    assert [(p["sweep"], p["config"]["dimension"]) for p in written["points"]] == [
        ("dimension", 16),
        ("dimension", 64),
        ("nodes", 16),
    ]
    assert all(p["released"] and p["aggregate_correct"] for p in written["points"])
    lin = written["linearity"]
    assert (lin["smallest"], lin["largest"]) == (16, 64)
    small, large = written["points"][0], written["points"][1]
    expected = large["seconds_per_coordinate"] / small["seconds_per_coordinate"]
    assert math.isclose(lin["per_coordinate_ratio"], expected, rel_tol=1e-12)
    assert math.isclose(lin["top_ratio"], expected, rel_tol=1e-12)  # two dimensions: the same
    assert lin["linear"] == (expected <= written["linear_tolerance"])
    png = (tmp_path / "scaling.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and b"IEND" in png[-16:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scaling.json", "scaling.png"]


@pytest.mark.parametrize("nodes", [10, 25, 50, 100, 200])
def test_fit_shrinks_only_what_a_small_n_cannot_hold(nodes: int) -> None:
    fitted, changed = fit(RoundConfig(), nodes=nodes, dimension=100)
    scenario(fitted)  # a valid round: build accepts it
    assert (fitted.nodes, fitted.dimension) == (nodes, 100)
    if nodes >= 35:  # room for the committee of 35 and the 30 noise sources
        assert changed == ()
        assert fitted == RoundConfig(nodes=nodes, dimension=100)
    else:
        assert changed
    committee = fitted.committee if fitted.committee is not None else nodes
    assert committee - fitted.dropouts >= fitted.threshold + fitted.packing


def test_bad_scaling_list_is_rejected_naming_the_value(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exc:
        main([*SMALL_ARGS, "--scaling", "--scaling-dimensions", "100,x"])
    assert exc.value.code == 2
    assert "100,x" in capsys.readouterr().err


def test_bad_round_is_refused_before_any_child_starts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A committee of 5 cannot hold t + k = 2 + 4 shares.
    assert main([*SMALL_ARGS, "--packing", "4"]) == 2
    assert "sdl bench round: error:" in capsys.readouterr().err


# ---------------------------------------------------------------------- targets without Flower


def test_flower_targets_are_not_judged_without_flower_in_the_same_run(
    measured: RoundMeasure,
) -> None:
    bench = RoundBench(measure=measured, memory=peak_memory(), idle=None)
    by_key = {t.key: t for t in targets(bench, None)}
    for key in ("a", "b"):  # both compare with Flower: no Flower run, no verdict, no limit
        assert by_key[key].passed is None
        assert by_key[key].limit is None
    text = format_round(bench, None)
    line = next(x for x in text.splitlines() if "(b)" in x)
    assert line.strip().startswith("n/a")
    assert "--compare-flower" in line


def test_flower_targets_are_judged_against_flower_measured_in_the_same_run(
    measured: RoundMeasure,
) -> None:
    bench = RoundBench(measure=measured, memory=peak_memory(), idle=None)
    median = measured.contributor_seconds.median
    for client, expected in ((median * 2, True), (median / 2, False)):
        result = SimpleNamespace(
            wall_seconds=measured.wall_seconds * 10, client_median_seconds=client
        )
        flower = SimpleNamespace(result=result)
        b = next(t for t in targets(bench, flower) if t.key == "b")  # type: ignore[arg-type]
        assert b.limit == client
        assert b.passed is expected


# ---------------------------------------------------------------------- the scaling report


@pytest.fixture(scope="module")
def sweep() -> Scaling:
    """Three dimensions, and an n sweep whose committee (every node) differs per round."""
    base = replace(SMALL, committee=None)
    return run_scaling(base, dimensions=(16, 32, 64), nodes=(5, 6), nodes_dimension=16)


def linearity_line(text: str) -> str:
    return next(line for line in text.splitlines() if line.startswith("linearity in d"))


def per_coordinate(scaling: Scaling) -> dict[int, float]:
    return {
        p.bench.measure.config.dimension: p.bench.measure.wall_seconds
        / p.bench.measure.config.dimension
        for p in scaling.sweep("dimension")
    }


def test_scaling_sentence_names_the_smallest_and_the_next_largest_d(sweep: Scaling) -> None:
    line = linearity_line(format_scaling(sweep))
    named = [int(d.replace(",", "")) for d in re.findall(r"d = ([\d,]+)", line)]
    assert named == [64, 16, 32]  # the largest, compared with the smallest and the next
    ratios = [float(r) for r in re.findall(r"([\d.]+)x that at d", line)]
    per = per_coordinate(sweep)
    assert ratios == pytest.approx([per[64] / per[16], per[64] / per[32]], abs=5e-4)


def test_scaling_sentence_with_two_dimensions_names_each_d_once(sweep: Scaling) -> None:
    two = Scaling(
        base=sweep.base,
        points=tuple(p for p in sweep.points if p.bench.measure.config.dimension != 32),
    )
    line = linearity_line(format_scaling(two))
    named = [int(d.replace(",", "")) for d in re.findall(r"d = ([\d,]+)", line)]
    assert named == [64, 16]
    (ratio,) = (float(r) for r in re.findall(r"([\d.]+)x that at d", line))
    per = per_coordinate(two)
    assert ratio == pytest.approx(per[64] / per[16], abs=5e-4)


def test_scaling_plot_title_names_only_what_every_round_shared(sweep: Scaling) -> None:
    title = plot_title(sweep)
    committees = {p.bench.measure.aggregators for p in sweep.points}
    assert len(committees) > 1  # the n sweep's committee is every node: 5, then 6
    for m in committees:
        assert f"M = {m}" not in title
    assert "M" in title.split(";", 1)[1]  # named among what varies
    thresholds = {p.bench.measure.config.threshold for p in sweep.points}
    assert len(thresholds) == 1
    assert f"t = {thresholds.pop()}" in title


# ---------------------------------------------------------------------- the channels


def test_the_bench_seals_by_default_in_the_default_suite() -> None:
    assert (SMALL.channels, SMALL.suite) == ("sealed", DEFAULT_SUITE.name)
    assert scenario(SMALL).channels is not None
    assert scenario(PLAIN).channels is None
    with pytest.raises(ParameterError, match="channels"):
        scenario(replace(SMALL, channels="open"))
    with pytest.raises(ParameterError, match="suite"):
        scenario(replace(SMALL, suite="rot13"))


def test_sealed_round_times_its_channels_and_counts_every_frame(measured: RoundMeasure) -> None:
    assert measured.released and measured.aggregate_correct
    assert measured.seal_seconds > 0 and measured.open_seconds > 0
    assert measured.channel_seconds == measured.seal_seconds + measured.open_seconds
    assert measured.channel_seconds < measured.wall_seconds  # inside the round's wall time
    share = measured.channel_share
    assert share is not None
    assert math.isclose(share, measured.channel_seconds / measured.wall_seconds)
    frames, size = frames_sent(SMALL)
    assert measured.frames_sealed == frames
    assert measured.channel_bytes == size
    # Frames to a crashed node are sealed, never opened.
    assert 0 < measured.frames_opened <= measured.frames_sealed
    framed = measured.frame_bytes_sent
    assert framed is not None
    assert framed["node"].total == size
    assert sum(framed[r].total for r in ("contributor", "aggregator", "coordinator")) == size
    # The plaintext wire bytes are as they were: a frame only adds to them.
    assert measured.bytes_sent["contributor"].total < framed["contributor"].total


def test_sealed_round_in_the_post_quantum_suite_counts_its_larger_key_frames() -> None:
    config = replace(SMALL, suite="mlkem768x25519-aes128gcm", dimension=8)
    m = measure_round(config)
    assert m.released and m.aggregate_correct and m.channel_seconds > 0
    frames, size = frames_sent(config)
    assert (m.frames_sealed, m.channel_bytes) == (frames, size)
    # The session's setup: every node sends every other one key frame, each with
    # ML-KEM-768 + X25519's 1120-byte enc (51 + 1120 + 16 + 16 + 64 bytes).
    n = config.nodes
    assert m.session_setup_bytes == n * (n - 1) * (51 + 1120 + 16 + 16 + 64)
    assert m.session_setup_seconds > 0


def test_plain_round_seals_nothing_and_its_channel_target_is_na(plain: RoundMeasure) -> None:
    assert plain.released and plain.aggregate_correct
    assert plain.channel_seconds == plain.seal_seconds == plain.open_seconds == 0
    assert (plain.channel_bytes, plain.frames_sealed, plain.frames_opened) == (0, 0, 0)
    assert plain.channel_share is None
    assert plain.frame_bytes_sent is None
    bench = RoundBench(measure=plain, memory=peak_memory(), idle=None)
    e = next(t for t in targets(bench, None) if t.key == "e")
    assert e.passed is None and e.limit is None
    text = format_round(bench, None)
    assert next(x for x in text.splitlines() if "(e)" in x).strip().startswith("n/a")
    assert "channels: plain" in text


def test_channel_target_is_the_share_of_the_round(measured: RoundMeasure) -> None:
    bench = RoundBench(measure=measured, memory=peak_memory(), idle=None)
    e = next(t for t in targets(bench, None) if t.key == "e")
    assert e.measured == measured.channel_share
    assert e.limit == bench_round.CHANNEL_SHARE == 0.10
    assert e.passed == (measured.channel_seconds / measured.wall_seconds <= 0.10)
    text = format_round(bench, None)
    line = next(x for x in text.splitlines() if "of which sealing" in x)
    assert line.rstrip().endswith(f"{measured.channel_share:.1%}")
    assert f"{measured.frames_sealed:,} frames sealed" in text


def test_flower_time_target_is_judged_with_sealing_on_only(
    measured: RoundMeasure, plain: RoundMeasure
) -> None:
    assert bench_round.FLOWER_TIME_FRACTION == 0.15
    for m, judged in ((measured, True), (plain, False)):
        bench = RoundBench(measure=m, memory=peak_memory(), idle=None)
        result = SimpleNamespace(wall_seconds=m.wall_seconds * 10, client_median_seconds=1.0)
        a = next(t for t in targets(bench, SimpleNamespace(result=result)) if t.key == "a")  # type: ignore[arg-type]
        assert "sealing on" in a.what and "0.15" in a.what
        if judged:
            assert a.limit == pytest.approx(0.15 * m.wall_seconds * 10)
            assert a.passed is True
        else:
            assert a.limit is None and a.passed is None
            assert "plain" in a.basis


def test_cli_json_reports_the_channels(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*SMALL_ARGS, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in (
        "channel_seconds", "seal_seconds", "open_seconds", "channel_bytes", "channel_share",
        "frames_sealed", "frames_opened", "frame_bytes_sent",
    ):  # fmt: skip
        assert key in out, key
    assert out["config"]["channels"] == "sealed"
    assert out["config"]["suite"] == DEFAULT_SUITE.name
    assert out["channel_seconds"] > 0
    assert out["channel_bytes"] == frames_sent(SMALL)[1]
    assert math.isclose(out["channel_share"], out["channel_seconds"] / out["wall_seconds"])
    e = next(t for t in out["targets"] if t["key"] == "e")
    assert e["measured"] == out["channel_share"] and e["limit"] == 0.10

    assert main([*SMALL_ARGS, "--channels", "plain", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["config"]["channels"] == "plain"
    assert (out["channel_seconds"], out["channel_bytes"], out["channel_share"]) == (0, 0, None)
    assert next(t for t in out["targets"] if t["key"] == "e")["passed"] is None


def test_bad_channels_value_is_refused_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([*SMALL_ARGS, "--channels", "open"])
    assert exc.value.code == 2
    assert "open" in capsys.readouterr().err


def test_a_round_with_backups_times_its_echo_exchange(measured: RoundMeasure) -> None:
    """--failover 1 adds the aggregators' echo exchange: it is timed (phase aggregate) and
    counted, and the round still releases the exact sum."""
    echoing = measure_round(replace(SMALL, failover=1))
    assert echoing.status == "released" and echoing.aggregate_correct
    count, _ = echoing.steps["aggregator/echo"]
    assert count >= 1 and "aggregator/echo" not in measured.steps
    assert echoing.messages > measured.messages
    assert math.isclose(sum(echoing.phases.values()), echoing.machine_seconds, abs_tol=1e-9)
