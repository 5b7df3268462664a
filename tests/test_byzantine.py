"""Byzantine nodes: one release under an equivocating coordinator, agreement, no false accusation.

Spec: spec/09-protocol.md#byzantine-nodes, spec/09-protocol.md#echo,
spec/14-channels.md#forwarded-signatures, spec/12-transcripts.md#byzantine-nodes

The oracles are independent of the machines: releases, agreement and
correctness are read off the final states against what the contributors
shared; evidence of equivocation is checked with
:func:`protocol.channels.conflicting` over the signed decisions the
transcript records; and every run must verify (spec/12-transcripts.md).
"""

from __future__ import annotations

import json
from fractions import Fraction
from typing import Any

import pytest
import sympy
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.channels import (
    ChannelError,
    Roster,
    answered_decision,
    conflicting,
    open_frame,
    plaintext,
    statement,
)
from protocol.errors import ParameterError
from protocol.messages import Decision, Echo, PartialSum, from_obj
from protocol.xof import Seed, as_seed
from reference.channels.seal import connect
from reference.common.seeds import seed_from_hex
from reference.sim.scenarios import build
from reference.sim.simulate import BYZANTINE_KINDS, Channels, Network, Outcome, Scenario, simulate
from reference.sim.transcript import verify
from tests.cli_support import run_sdl
from tests.strategies import round_params


def master(i: int) -> Seed:
    return as_seed(i.to_bytes(4, "big") * 8)


def run(scenario: Scenario) -> tuple[Outcome, list[dict[str, Any]]]:
    lines: list[dict[str, Any]] = []
    return simulate(scenario, sink=lines.append), lines


def transcript_text(lines: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(x, sort_keys=True, separators=(",", ":")) + "\n" for x in lines)


def signed_decisions(lines: list[dict[str, Any]]) -> list[tuple[Decision, bytes]]:
    """Every decision the transcript shows sent in a frame, with its statement signature."""
    out = []
    for x in lines:
        if (
            x["type"] == "send"
            and x["message"]["kind"] == "decision"
            and "statement_signature" in x
        ):
            m = from_obj(x["message"])
            assert isinstance(m, Decision)
            out.append((m, bytes.fromhex(x["statement_signature"])))
    return out


def roster_of(lines: list[dict[str, Any]]) -> Roster:
    return Roster.from_json(lines[0]["channels"]["roster"])


def equivocation_scenario(seed: int, *, f: int) -> Scenario:
    """7 nodes, t = 2, pre-covered D = 1; the coordinator equivocates."""
    probe = build(master=master(seed), nodes=7, threshold=2, max_dropouts=1, precover=True)
    c = probe.params.coordinator
    return build(
        master=master(seed), nodes=7, threshold=2, max_dropouts=1, precover=True,
        colluders=f, max_byzantine=f, byzantine={c: "equivocate"}, channels=Channels(),
    )  # fmt: skip


# ---------------------------------------------------------------- the attack is real


def test_without_echoes_an_equivocating_coordinator_gets_two_releases() -> None:
    """f = 0 (no echo exchange): some seed gives two different released values.

    Shows that the f >= 1 property below is not vacuous: the same behaviour,
    without the echo exchange, does break single release.
    """
    doubled = []
    for seed in range(8):
        outcome, lines = run(equivocation_scenario(seed, f=0))
        assert verify(transcript_text(lines)).valid
        if outcome.releases == 2:
            doubled.append(seed)
            assert not outcome.honest_agree
    assert doubled, "no seed shows the equivocation attack succeeding without echoes"


@pytest.mark.parametrize("seed", range(6))
def test_with_echoes_equivocation_aborts_with_evidence(seed: int) -> None:
    """f = 1: no release, every abort reason that names equivocation is backed by evidence."""
    scenario = equivocation_scenario(seed, f=1)
    outcome, lines = run(scenario)
    assert outcome.releases == 0 and outcome.status == "aborted"
    assert outcome.reason == "coordinator-equivocation"
    decisions = signed_decisions(lines)
    roster = roster_of(lines)
    pairs = [(a, b) for i, a in enumerate(decisions) for b in decisions[i + 1 :]]
    assert any(conflicting(a, b, roster) for a, b in pairs)
    assert verify(transcript_text(lines)).valid


# ---------------------------------------------------------------- the property


@st.composite
def byzantine_rounds(draw: st.DrawFn) -> Scenario:
    """A round with f >= 1 and at most f Byzantine nodes, any behaviour, any role it fits."""
    f = draw(st.integers(1, 2))
    t = draw(st.integers(f, f + 1))
    n = draw(st.integers(max(3 * f + 1, t + 1 + 2 * f), 9))
    seed = draw(st.integers(0, 2**16))
    max_dropouts = draw(st.integers(0, 1))
    precover = draw(st.booleans())
    probe = build(master=master(seed), nodes=n, threshold=t)
    coordinator = probe.params.coordinator
    count = draw(st.integers(0, f))
    nodes = draw(st.lists(st.integers(1, n), min_size=count, max_size=count, unique=True))
    byzantine = {}
    for node in nodes:
        kinds = [k for k in BYZANTINE_KINDS if k != "equivocate" or node == coordinator]
        byzantine[node] = draw(st.sampled_from(kinds))
    lossy = draw(st.booleans())
    network = Network(drop=Fraction(1, 30), late=Fraction(1, 30)) if lossy else Network()
    return build(
        master=master(seed), nodes=n, threshold=t, max_dropouts=max_dropouts, precover=precover,
        colluders=f, max_byzantine=f, byzantine=byzantine, channels=Channels(), network=network,
    )  # fmt: skip


@settings(deadline=None)
@given(byzantine_rounds())
def test_within_the_bounds_one_correct_agreed_release_or_a_clean_abort(scenario: Scenario) -> None:
    """Over every behaviour within the bounds: never two releases, never disagreement,
    never a wrong release, never less honest noise than the target, no false accusation,
    and the transcript verifies."""
    outcome, lines = run(scenario)
    assert outcome.releases <= 1
    assert outcome.honest_agree
    assert outcome.aggregate_correct
    if outcome.status == "released":
        assert outcome.honest_noise_variance >= scenario.params.noise.target_variance
    p = scenario.params
    accused = any(s.reason == "coordinator-equivocation" for s in outcome.states.values())
    if accused:
        assert scenario.byzantine.get(p.coordinator) == "equivocate"
    verdict = verify(transcript_text(lines))
    assert verdict.valid, (verdict.line, verdict.why)


def test_crash_and_withholding_within_the_liveness_bound_still_release() -> None:
    """m − f − crashed >= Q and >= t + k + f: a withholding node and a crash cost no round.

    A withholding contributor is a dropout like the crashed one: D = 2 covers both.
    """
    released = 0
    for seed in range(4):
        s = build(
            master=master(seed), nodes=9, threshold=2, max_dropouts=1, colluders=1,
            max_byzantine=1, channels=Channels(),
        )  # fmt: skip
        p = s.params
        others = [i for i in p.nodes if i != p.coordinator]
        scenario = build(
            master=master(seed), nodes=9, threshold=2, max_dropouts=2, colluders=1,
            max_byzantine=1, channels=Channels(), byzantine={others[0]: "withhold"},
            crashes={others[1]: 0},
        )  # fmt: skip
        outcome, _ = run(scenario)
        released += outcome.status == "released"
        assert outcome.releases <= 1 and outcome.aggregate_correct
    assert released == 4


def test_a_wrong_partial_sum_is_corrected_and_named() -> None:
    scenario = build(
        master=master(5), nodes=7, threshold=2, colluders=1, max_byzantine=1,
        channels=Channels(), byzantine={3: "wrong-partial-sum"},
    )  # fmt: skip
    outcome, _ = run(scenario)
    assert outcome.status == "released" and outcome.aggregate_correct
    assert outcome.corrected == (3,)


# ---------------------------------------------------------------- echo quorum arithmetic


@pytest.mark.parametrize("f", range(0, 6))
def test_two_echo_quorums_share_an_honest_aggregator(f: int) -> None:
    """Q = ⌊(m + f)/2⌋ + 1: 2Q − m >= f + 1 for every m, and Q <= m − f once m >= 3f + 1."""
    for m in range(max(1, f), 60):
        q = (m + f) // 2 + 1
        assert 2 * q - m >= f + 1
        if m >= 3 * f + 1:
            assert q <= m - f


def test_echo_quorum_algebra_with_sympy() -> None:
    """proofs_notes/protocol-byzantine-single-release.md (Q), symbolically per parity of m + f."""
    h, f = sympy.symbols("h f", integer=True, nonnegative=True)
    for r in (0, 1):
        m = 2 * h + r - f  # m + f = 2h + r, so floor((m + f)/2) = h
        q = h + 1
        assert sympy.simplify((2 * q - m) - (f + 2 - r)) == 0
        assert sympy.simplify(2 * q - m - (f + 1)) in (0, 1)


# ---------------------------------------------------------------- forwarded signatures


def test_an_echo_of_a_decision_the_coordinator_never_signed_is_rejected() -> None:
    """A Byzantine aggregator cannot fabricate a decision: the channel refuses its echo."""
    scenario = build(
        master=master(7), nodes=5, threshold=1, colluders=1, max_byzantine=1, channels=Channels()
    )
    p = scenario.params
    session, keys = scenario.session()
    channels = connect(session, keys)
    sender, to = [i for i in p.aggregators if i != p.coordinator][:2]
    at = channels[to].endpoint(
        roles=("aggregator",), round=p.round, field=p.field, coordinator=p.coordinator
    )
    echo = Echo(
        session=p.session.hex(), round=p.round, sender=sender, recipient=to, role="aggregator",
        stage=0, contributors=p.contributors[:-1], aggregators=p.aggregators,
    )  # fmt: skip
    decision = answered_decision(echo, p.coordinator)
    genuine = keys[p.coordinator].identity.sign(statement(decision))
    # The genuine signature opens; the sender's own, or none at all, do not.
    assert open_frame(channels[sender].seal(echo, p.field, forwarded=genuine), at).message == echo
    own = keys[sender].identity.sign(statement(decision))
    for forwarded in (own, bytes(64)):
        with pytest.raises(ChannelError) as caught:
            open_frame(channels[sender].seal(echo, p.field, forwarded=forwarded), at)
        assert caught.value.fault == "statement"
    bare = channels[sender].seal_plaintext(echo, plaintext(echo, p.field, keys[sender].identity))
    with pytest.raises(ChannelError):
        open_frame(bare, at)
    partial = PartialSum(**{**echo.model_dump(exclude={"kind"}), "role": "receiver"},
                         values=[str(0)] * p.share_length)  # fmt: skip
    assert answered_decision(partial, p.coordinator) == decision


def test_forwarding_only_for_its_kinds() -> None:
    p = round_params(n=4)
    keys = build(master=master(1), nodes=4, threshold=1).session()[1]
    d = Decision(
        session=p.session.hex(), round=0, sender=1, recipient=2, role="aggregator", stage=0,
        contributors=(1, 2), aggregators=(1, 2), final=True,
    )  # fmt: skip
    with pytest.raises(ParameterError):
        plaintext(d.model_copy(update={"kind": "report"}), p.field, keys[1].identity,
                  forwarded=bytes(64))  # fmt: skip


# ---------------------------------------------------------------- bounds


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"n": 5, "threshold": 1, "max_byzantine": 2, "max_colluders": 2}, "max_byzantine"),
        ({"n": 5, "threshold": 2, "max_byzantine": 1}, "noise plan's T"),
        ({"n": 3, "threshold": 1, "max_byzantine": 1, "max_colluders": 1}, "3f + 1"),
        ({"n": 5, "threshold": 3, "max_byzantine": 1, "max_colluders": 1}, "t + k + 2f"),
    ],
)
def test_parameters_outside_the_bounds_are_refused(kwargs: dict[str, int], words: str) -> None:
    with pytest.raises(ParameterError, match=words.replace("+", r"\+")):
        round_params(**kwargs)


def test_a_round_with_byzantine_nodes_needs_sealed_channels() -> None:
    with pytest.raises(ParameterError, match="sealed channels"):
        build(master=master(1), nodes=5, threshold=1, colluders=1, max_byzantine=1)


def test_only_the_coordinator_equivocates_and_deviants_are_colluders() -> None:
    probe = build(master=master(1), nodes=5, threshold=1)
    other = next(i for i in probe.params.nodes if i != probe.params.coordinator)
    with pytest.raises(ParameterError, match="only the coordinator"):
        build(master=master(1), nodes=5, threshold=1, colluders=1, max_byzantine=1,
              channels=Channels(), byzantine={other: "equivocate"})  # fmt: skip
    s = build(master=master(1), nodes=5, threshold=1, colluders=1, max_byzantine=1,
              channels=Channels(), byzantine={other: "replay"})  # fmt: skip
    assert s.colluders == (other,)


def test_f_zero_round_json_is_unchanged() -> None:
    """max_byzantine = 0 writes no key: every earlier round, vector and transcript stays valid."""
    p = round_params(n=4)
    assert "max_byzantine" not in p.to_json()
    q = round_params(n=5, threshold=1, max_byzantine=1, max_colluders=1)
    assert q.to_json()["max_byzantine"] == 1
    assert type(q).from_json(q.to_json()) == q


# ---------------------------------------------------------------- sdl simulate --byzantine

EQUIVOCATE = ["simulate", "--nodes", "7", "--threshold", "2", "--max-dropouts", "1"]
EQUIVOCATE += ["--precover", "--seed", "2"]


def test_cli_equivocation_beyond_and_within_the_bound(capsys: pytest.CaptureFixture[str]) -> None:
    coordinator = build(master=seed_from_hex("2"), nodes=7, threshold=2).params.coordinator
    deviant = ["--byzantine", f"equivocate:{coordinator}", "--json"]
    code, out, _ = run_sdl(capsys, [*EQUIVOCATE, *deviant])
    beyond = json.loads(out)
    assert code == 0 and beyond["within_bounds"] is False and beyond["max_byzantine"] == 0
    assert beyond["releases"] == 2 and beyond["honest_agree"] is False
    code, out, _ = run_sdl(capsys, [*EQUIVOCATE, *deviant, "--max-byzantine", "1"])
    within = json.loads(out)
    assert code == 0 and within["within_bounds"] is True and within["releases"] == 0
    assert within["reason"] == "coordinator-equivocation"
    assert within["abort_cause"]["equivocation"]["coordinator"] == coordinator
    assert within["byzantine"] == {str(coordinator): "equivocate"}
    assert within["colluders"] == [coordinator]  # T defaults to f; the deviant counts in it


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--byzantine", "bogus:1"], "KIND one of"),
        (["--byzantine", "replay:0"], "NODE >= 1"),
        (["--byzantine", "replay:3,withhold:3"], "named twice"),
        (["--byzantine", "replay:3", "--byzantine", "withhold:3"], "more than once"),
        (["--max-byzantine", "1", "--channels", "plain"], "sealed channels"),
        (["--max-byzantine", "3"], "max_byzantine"),
    ],
)
def test_cli_bad_byzantine_input_exits_2_naming_it(
    capsys: pytest.CaptureFixture[str], extra: list[str], words: str
) -> None:
    code, _, err = run_sdl(capsys, [*EQUIVOCATE, *extra])
    assert code == 2 and words in err, err
