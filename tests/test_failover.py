"""Coordinator failover: backups take over a crashed coordinator, and never release twice.

Spec: spec/09-protocol.md#failover. Proof: proofs_notes/protocol-failover.md

Oracles independent of the machines: releases, agreement and correctness
are read off the final states against what the contributors shared
(:func:`reference.sim.simulate.outcome`), and every run must verify
(spec/12-transcripts.md).
"""

from __future__ import annotations

import json
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.errors import ParameterError
from protocol.machine import CoordinatorState, Phase
from protocol.params import RoundParams
from protocol.xof import Seed, as_seed
from reference.cli.main import main
from reference.common.seeds import seed_from_hex
from reference.learning.job import JobConfig
from reference.sim.scenarios import build
from reference.sim.simulate import Network, Outcome, Scenario, simulate
from reference.sim.transcript import verify
from tests.strategies import round_params


def master(i: int) -> Seed:
    return as_seed(i.to_bytes(4, "big") * 8)


def run(scenario: Scenario) -> tuple[Outcome, str]:
    lines: list[dict[str, Any]] = []
    outcome = simulate(scenario, sink=lines.append)
    text = "".join(json.dumps(x, sort_keys=True, separators=(",", ":")) + "\n" for x in lines)
    return outcome, text


def decided_by(outcome: Outcome) -> list[int]:
    """The live coordinators that made (not followed) a final decision."""
    return sorted(
        node for (node, role), s in outcome.states.items()
        if role == "coordinator" and isinstance(s, CoordinatorState)
        and s.phase is Phase.DONE and s.decision is not None and node not in outcome.crashed
    )  # fmt: skip


@st.composite
def failover_rounds(draw: st.DrawFn) -> Scenario:
    n = draw(st.integers(4, 8))
    t = draw(st.integers(1, 2))
    d = draw(st.integers(0, 2))
    failover = draw(st.integers(1, 2))
    seed = draw(st.integers(0, 2**16))
    probe = build(master=master(seed), nodes=n, threshold=t, failover=failover)
    coordinators = probe.params.coordinators
    crashes = {}
    for c in draw(st.lists(st.sampled_from(coordinators), max_size=len(coordinators), unique=True)):
        crashes[c] = draw(st.integers(0, 3 * n))
    if draw(st.booleans()):
        crashes[draw(st.integers(1, n))] = draw(st.integers(0, 2 * n))
    lossy = draw(st.booleans())
    network = (
        Network(drop=Fraction(1, 40), late=Fraction(1, 20), duplicate=Fraction(1, 10))
        if lossy
        else Network()
    )
    return build(
        master=master(seed), nodes=n, threshold=t, max_dropouts=d, failover=failover,
        crashes=crashes, network=network,
    )  # fmt: skip


@settings(deadline=None)
@given(failover_rounds())
def test_failover_never_releases_twice(scenario: Scenario) -> None:
    """Whoever crashes, whenever, and whatever the network does (a late coordinator is a
    slow one, which a backup may overtake): at most one value is released, the receivers
    agree, it is the sum over its set with the target honest noise, and the run verifies."""
    outcome, text = run(scenario)
    assert outcome.releases <= 1
    assert outcome.honest_agree
    assert outcome.aggregate_correct
    if outcome.status == "released":
        assert outcome.honest_noise_variance >= scenario.params.noise.target_variance
    verdict = verify(text)
    assert verdict.valid, (verdict.line, verdict.why)


@pytest.mark.parametrize("sends", [0, 3, 8, 9, 11, 14, 22])
def test_a_crashed_coordinator_is_replaced(sends: int) -> None:
    """7 nodes, t = 2, D = 1, one backup: the coordinator crashes after ``sends`` messages
    (while sharing, after its report, in the middle of its decisions, after them) and the
    round still releases, on an on-time network, over 6 seeds."""
    for seed in range(6):
        probe = build(master=master(seed), nodes=7, threshold=2, max_dropouts=1, failover=1)
        c, backup = probe.params.coordinators
        scenario = build(
            master=master(seed), nodes=7, threshold=2, max_dropouts=1, failover=1,
            crashes={c: sends},
        )  # fmt: skip
        outcome, text = run(scenario)
        assert outcome.status == "released", (seed, sends, outcome.reason)
        assert outcome.aggregate_correct and outcome.releases == 1
        # The primary decided, or the backup did, or (the primary's decision reached the
        # backup, then the primary crashed) the backup sent the primary's decision again.
        assert decided_by(outcome) in ([], [c], [backup])
        assert verify(text).valid
    # Without a backup, the same crash before any decision aborts the round.
    first = build(master=master(0), nodes=7, threshold=2).params.coordinator
    no_backup = build(master=master(0), nodes=7, threshold=2, max_dropouts=1, crashes={first: 0})
    assert run(no_backup)[0].status == "aborted"


def test_the_majority_bound_is_tight_in_the_simulator() -> None:
    """m = 6, Q = 4: with the coordinator and one more aggregator crashed, 4 are alive and it
    releases; with a third crashed, 3 < Q and it aborts (too-few-echoes), though D = 3
    would allow the dropouts and K = 2 partial sums would rebuild the sum."""
    for seed in range(4):
        probe = build(master=master(seed), nodes=6, threshold=1, max_dropouts=3, failover=2)
        c, b1, _ = probe.params.coordinators
        others = [i for i in probe.params.nodes if i not in probe.params.coordinators]
        alive4 = {c: 0, others[0]: 0}
        alive3 = {c: 0, others[0]: 0, others[1]: 0}
        got = {}
        for name, crashes in (("4 alive", alive4), ("3 alive", alive3)):
            scenario = build(
                master=master(seed), nodes=6, threshold=1, max_dropouts=3, failover=2,
                crashes=crashes,
            )  # fmt: skip
            got[name] = run(scenario)[0]
        assert got["4 alive"].status == "released"
        assert decided_by(got["4 alive"]) == [b1]
        assert got["3 alive"].status == "aborted"
        assert got["3 alive"].reason == "too-few-echoes"


# ---------------------------------------------------------------- parameters


def test_backups_are_validated_and_kept_in_takeover_order() -> None:
    p = round_params(n=5, backups=(4, 2))
    assert p.coordinators == (1, 4, 2) and p.echoes
    assert p.to_json()["backups"] == [4, 2]
    assert RoundParams.from_json(p.to_json()) == p
    assert "backups" not in round_params(n=5).to_json()
    for bad, words in (((1,), "other than the coordinator"), ((6,), "distinct aggregators"),
                       ((2, 2), "distinct aggregators")):  # fmt: skip
        with pytest.raises(ParameterError, match=words):
            round_params(n=5, backups=bad)
    with pytest.raises(ParameterError, match="max_byzantine = 0"):
        round_params(n=5, backups=(2,), max_byzantine=1, max_colluders=1)


def test_round_timer_grows_by_one_view_change_per_backup() -> None:
    base = round_params(n=5, max_dropouts=1)
    one, two = (
        round_params(n=5, max_dropouts=1, backups=(2,)),
        round_params(n=5, max_dropouts=1, backups=(2, 3)),
    )
    assert one.round_windows == base.round_windows + 1 + 10
    assert two.round_windows == base.round_windows + 1 + 20


def test_job_config_failover_bounds() -> None:
    with pytest.raises(ParameterError, match="failover must be below"):
        JobConfig(seed=master(1), nodes=5, threshold=1, failover=5)
    with pytest.raises(ParameterError, match="failover"):
        JobConfig(seed=master(1), failover=-1)
    assert JobConfig(seed=master(1), failover=2).failover == 2


# ---------------------------------------------------------------- command line


def test_sdl_simulate_failover_json(capsys: pytest.CaptureFixture[str]) -> None:
    probe = build(master=seed_from_hex("2"), nodes=7, threshold=2, failover=2)
    c = probe.params.coordinator
    argv = ["simulate", "--nodes", "7", "--threshold", "2", "--max-dropouts", "1",
            "--seed", "2", "--failover", "2", "--crash", f"{c}:0", "--json"]  # fmt: skip
    assert main(argv) == 0
    obj = json.loads(capsys.readouterr().out)
    assert obj["status"] == "released"
    assert obj["backups"] == list(probe.params.coordinators[1:])
    assert obj["coordinated_by"] == probe.params.coordinators[1]
