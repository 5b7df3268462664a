"""Sealed rounds in the simulator: the same round as in the clear, every attacked frame
rejected, transcripts that verify without private keys and hold none.

Spec: spec/12-transcripts.md#channels, spec/12-transcripts.md#frame-attacks, spec/14-channels.md

Oracles, none of which reads the simulator's or the channel's internals:

- the plain run of the same scenario (``channels=None``): its outcome, and
  its transcript, which a sealed run's equals once the channel's additions
  (header ``channels``, ``frame_bytes``, ``statement_signature``,
  ``frame_reject`` lines) are taken out;
- the transcript's own send lines: at rate 1, with no crash, every frame
  between two nodes draws exactly one attack, so the rejections number the
  sends between two nodes;
- the keys of :meth:`Scenario.session`, and the frames and channel keys the
  nodes' channels seal and accept, searched for in the transcript's text.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.channels import (
    HEADER_SIZE,
    SIGNATURE_SIZE,
    SIGNED_KINDS,
    SUITES,
    ChannelSuite,
    identity_key,
    identity_public,
)
from protocol.errors import CHANNEL_FAULTS
from protocol.field import Field, Field31
from protocol.messages import Message
from protocol.xof import Tag, derive_seed
from reference.channels.seal import NodeChannel
from reference.cli.main import main
from reference.oracle.format import case_seed
from reference.sim.scenarios import build
from reference.sim.simulate import (
    FRAME_ATTACKS,
    Channels,
    Outcome,
    Scenario,
    canonical_line,
    simulate,
)
from reference.sim.transcript import verify
from tests.strategies import sim_scenarios

Line = dict[str, Any]

X25519, CHACHA, MLKEM = (SUITES[name] for name in SUITES)
#: Every suite, the hybrid one (slower to seal and open) drawn less often.
SUITES_DRAWN = st.sampled_from([X25519, X25519, CHACHA, CHACHA, MLKEM])
RATES = st.sampled_from([Fraction(0), Fraction(1, 3), Fraction(1)])


def _text(lines: list[Line]) -> str:
    return "".join(canonical_line(x) + "\n" for x in lines)


def _run(s: Scenario) -> tuple[Outcome, list[Line]]:
    lines: list[Line] = []
    return simulate(s, sink=lines.append), lines


def _sealed(s: Scenario, suite: ChannelSuite = X25519, rate: Fraction = Fraction(0)) -> Scenario:
    return replace(s, channels=Channels(suite, rate))


def _between_nodes(line: Line) -> bool:
    return line["type"] == "send" and line["message"]["sender"] != line["message"]["recipient"]


def _unsealed(lines: list[Line]) -> list[Line]:
    """A sealed run's transcript without what the channel adds to it."""
    out = []
    for line in lines:
        if line["type"] == "frame_reject":
            continue
        kept = {k: v for k, v in line.items() if k not in ("frame_bytes", "statement_signature")}
        if kept["type"] == "header":
            kept.pop("channels")
        out.append(kept)
    return out


@st.composite
def scenarios(draw: st.DrawFn, *, crashes: bool = True, tamper: bool = False) -> Scenario:
    """Small rounds (3..6 nodes) on a hostile network, with crashes, colluders and,
    with ``tamper``, an aggregator that alters its partial sums."""
    scenario = draw(sim_scenarios(purpose="tests.sim_channels", max_nodes=6, crashes=crashes))
    if tamper:
        chosen = draw(st.sets(st.sampled_from(scenario.params.aggregators), max_size=1))
        scenario = replace(scenario, tamper=tuple(sorted(chosen)))
    return scenario


# ---------------------------------------------------------------- same round, sealed or not


@given(scenarios(tamper=True), SUITES_DRAWN, RATES)
def test_a_sealed_round_ends_as_the_plain_round_at_every_tamper_rate(
    s: Scenario, suite: ChannelSuite, rate: Fraction
) -> None:
    """Sealing changes no message and no result, whatever the network and the attacker do."""
    plain, plain_lines = _run(s)
    sealed, sealed_lines = _run(_sealed(s, suite, rate))
    assert sealed.to_json() == plain.to_json()
    assert (sealed.messages, sealed.lost) == (plain.messages, plain.lost)
    assert _unsealed(sealed_lines) == plain_lines
    assert plain.frames_rejected == {}
    if rate == 0:
        assert sealed.frames_rejected == {}


@given(scenarios(crashes=False), SUITES_DRAWN)
def test_at_rate_1_every_frame_draws_one_attack_and_each_is_rejected(
    s: Scenario, suite: ChannelSuite
) -> None:
    """With no crash, every frame between two nodes (dropped or not) gets one attacked copy,
    and every copy reaches a live node that rejects it: rejections = sends between nodes."""
    plain, _ = _run(s)
    sealed, lines = _run(_sealed(s, suite, Fraction(1)))
    rejects = [x for x in lines if x["type"] == "frame_reject"]
    assert sum(sealed.frames_rejected.values()) == len(rejects)
    assert len(rejects) == sum(1 for x in lines if _between_nodes(x))
    assert Counter(x["fault"] for x in rejects) == Counter(sealed.frames_rejected)
    assert {x["fault"] for x in rejects} <= set(CHANNEL_FAULTS)
    assert {x["attack"] for x in rejects} <= set(FRAME_ATTACKS)
    assert sealed.to_json() == plain.to_json()


def test_every_attack_is_mounted_and_rejected() -> None:
    s = build(master=case_seed(910), nodes=5, threshold=1, max_dropouts=1, dimension=2)
    _, lines = _run(_sealed(s, rate=Fraction(1)))
    rejects = [x for x in lines if x["type"] == "frame_reject"]
    assert {x["attack"] for x in rejects} == set(FRAME_ATTACKS)
    assert verify(_text(lines)).valid


# ---------------------------------------------------------------- verification


@given(scenarios(), SUITES_DRAWN, RATES)
def test_verify_accepts_every_sealed_transcript(
    s: Scenario, suite: ChannelSuite, rate: Fraction
) -> None:
    outcome, lines = _run(_sealed(s, suite, rate))
    verdict = verify(_text(lines))
    assert verdict.valid, (verdict.line, verdict.why)
    assert verdict.result == outcome.to_json()
    channels = lines[0]["channels"]
    assert channels["suite"] == suite.name and channels["tamper_frames"] == str(rate)
    assert set(channels["roster"]) == {str(i) for i in s.params.nodes}


def _sealed_lines(rate: Fraction = Fraction(0)) -> list[Line]:
    s = build(master=case_seed(911), nodes=4, threshold=1, max_dropouts=1, dimension=2)
    return _run(_sealed(s, rate=rate))[1]


def _first(lines: list[Line], kind: str) -> int:
    return next(
        i for i, x in enumerate(lines) if _between_nodes(x) and x["message"]["kind"] == kind
    )


def _flip_hex(text: str) -> str:
    return ("1" if text[0] == "0" else "0") + text[1:]


def _forge_statement(lines: list[Line]) -> int:
    i = _first(lines, "decision")
    lines[i]["statement_signature"] = _flip_hex(lines[i]["statement_signature"])
    return i


def _drop_statement(lines: list[Line]) -> int:
    i = _first(lines, "decision")
    del lines[i]["statement_signature"]
    return i


def _replace_roster_key(lines: list[Line]) -> int:
    other = identity_public(identity_key(bytes(range(32))))
    lines[0]["channels"]["roster"]["2"] = other.hex()
    return 0


def _forge_session_key(lines: list[Line]) -> int:
    advert = lines[0]["channels"]["session_keys"][1]
    advert["signature"] = _flip_hex(advert["signature"])
    return 0


def _frame_bytes_off_by_one(lines: list[Line]) -> int:
    i = _first(lines, "share")
    lines[i]["frame_bytes"] += 1
    return i


def _reject_between_a_step_and_its_sends(lines: list[Line]) -> int:
    reject = {"type": "frame_reject", "time": 0, "node": 1, "attack": "flip-bit",
              "fault": "signature", "detail": "inserted"}  # fmt: skip
    i = _first(lines, "share")
    lines.insert(i, reject)  # after the contributor's start, before its first share
    return i


@pytest.mark.parametrize(
    ("forge", "why"),
    [
        pytest.param(f, why, id=f.__name__.strip("_"))
        for f, why in (
            (_forge_statement, "not signed by its roster identity"),
            (_drop_statement, "not signed by its roster identity"),
            (_replace_roster_key, "signature"),
            (_forge_session_key, "signature"),
            (_frame_bytes_off_by_one, "bytes"),
            (_reject_between_a_step_and_its_sends, "between a step and its sends"),
        )
    ],
)
def test_verify_names_the_line_a_sealed_transcript_breaks(
    forge: Callable[[list[Line]], int], why: str
) -> None:
    lines = _sealed_lines()
    assert verify(_text(lines)).valid
    forged = copy.deepcopy(lines)
    i = forge(forged)
    verdict = verify(_text(forged))
    assert not verdict.valid
    assert verdict.line == i + 1, (verdict.line, verdict.why)
    assert verdict.why is not None and why in verdict.why, verdict.why


def test_verify_requires_the_channel_keys_where_they_belong_and_only_there() -> None:
    sealed = _sealed_lines(rate=Fraction(1))
    # A plain transcript carries no frame sizes, no statements and no rejected frames.
    plain = copy.deepcopy(sealed)
    del plain[0]["channels"]
    first = next(
        i for i, x in enumerate(plain) if "frame_bytes" in x or x["type"] == "frame_reject"
    )
    assert verify(_text(plain)).line == first + 1
    # Only a decision or an abort carries a statement signature.
    lines = copy.deepcopy(sealed)
    i = _first(lines, "share")
    lines[i]["statement_signature"] = "00" * SIGNATURE_SIZE
    assert verify(_text(lines)).line == i + 1
    # A rejected frame names a fault and an attack of the lists, at a node of the round.
    j = next(i for i, x in enumerate(sealed) if x["type"] == "frame_reject")
    for key, value in (("fault", "bogus"), ("attack", "bogus"), ("node", 99), ("time", -1)):
        lines = copy.deepcopy(sealed)
        lines[j][key] = value
        assert verify(_text(lines)).line == j + 1, key
    # The roster must name every node of the round.
    lines = copy.deepcopy(sealed)
    del lines[0]["channels"]["roster"]["3"]
    lines[0]["channels"]["session_keys"] = [
        a for a in lines[0]["channels"]["session_keys"] if a["node"] != 3
    ]
    verdict = verify(_text(lines))
    assert verdict.line == 1 and "[3]" in str(verdict.why)


# ---------------------------------------------------------------- nothing secret is written


def test_a_sealed_transcript_holds_no_frame_and_no_private_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    frames: list[bytes] = []
    channel_keys: list[bytes] = []
    real_seal, real_accept = NodeChannel.seal, NodeChannel.accept

    def recording_seal(self: NodeChannel, message: Message, field: type[Field]) -> bytes:
        frame = real_seal(self, message, field)
        frames.append(frame)
        return frame

    def recording_accept(self: NodeChannel, frame: bytes) -> int:
        frames.append(frame)
        sender = real_accept(self, frame)
        channel_keys.append(self.endpoint(roles=(), round=0, field=Field31).keys[sender])
        return sender

    monkeypatch.setattr(NodeChannel, "seal", recording_seal)
    monkeypatch.setattr(NodeChannel, "accept", recording_accept)
    for suite in SUITES.values():
        frames.clear()
        channel_keys.clear()
        s = _sealed(
            build(master=case_seed(912), nodes=4, threshold=1, max_dropouts=1), suite, Fraction(1)
        )
        text = _text(_run(s)[1])
        assert frames and len(channel_keys) == 4 * 3
        for frame in frames:
            assert frame[HEADER_SIZE:].hex() not in text
        _, keys = s.session()
        secrets = [derive_seed(s.master, Tag("sim.channels")), *channel_keys]
        for k in keys.values():
            secrets += [k.identity.private_bytes_raw(), k.session_secret]
        for secret in secrets:
            assert secret.hex() not in text


def test_signed_kinds_are_the_coordinators_broadcasts() -> None:
    lines = _sealed_lines()
    signed = {x["message"]["kind"] for x in lines if "statement_signature" in x}
    assert signed and signed <= SIGNED_KINDS
    assert all("frame_bytes" in x for x in lines if _between_nodes(x))


# ---------------------------------------------------------------- the command line


def _simulate(capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, Any]:
    code = main(["simulate", "--nodes", "5", "--threshold", "1", "--seed", "3", *extra, "--json"])
    assert code == 0
    obj: dict[str, Any] = json.loads(capsys.readouterr().out)
    return obj


def test_cli_simulate_seals_by_default_and_counts_rejected_frames(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    default = _simulate(capsys)
    assert default["channels"] == {"mode": "sealed", "suite": X25519.name}
    assert default["frames_rejected"] == 0 and default["frames_rejected_by_fault"] == {}
    path = tmp_path / "run.jsonl"
    attacked = _simulate(
        capsys, "--tamper-frames", "0.5", "--suite", CHACHA.name, "--transcript", str(path)
    )
    assert attacked["channels"] == {"mode": "sealed", "suite": CHACHA.name}
    assert attacked["frames_rejected"] > 0
    assert attacked["frames_rejected"] == sum(attacked["frames_rejected_by_fault"].values())
    plain = _simulate(capsys, "--channels", "plain")
    assert plain["channels"] == {"mode": "plain", "suite": None}
    assert plain["frames_rejected"] == 0
    for key in ("released", "contributors", "messages", "status"):
        assert default[key] == attacked[key] == plain[key], key
    assert main(["verify", str(path)]) == 0
    capsys.readouterr()
    code = main(["simulate", "--nodes", "5", "--threshold", "1", "--tamper-frames", "1/4"])
    assert code == 0
    assert "channels:       sealed, x25519-aes128gcm; frames rejected: " in capsys.readouterr().out


def test_cli_simulate_refuses_tampering_with_frames_it_does_not_seal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["simulate", "--nodes", "5", "--threshold", "1", "--channels", "plain"]
    assert main([*argv, "--tamper-frames", "0.1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--tamper-frames" in err[0] and "--channels plain" in err[0]
