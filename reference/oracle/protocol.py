"""Test vectors of the protocol family: whole simulated rounds, and a forged one.

Spec: spec/09-protocol.md, spec/12-transcripts.md, spec/10-test-vectors.md

``cases()`` yields ``protocol/<name>.json`` objects:

- ``operation: "run"``: a ``scenario`` (the simulator's inputs: master seed,
  round parameters, network, crashes, colluders, tampering), the
  ``transcript`` it produces (a list of transcript lines) and its
  ``result``. ``check`` requires that the transcript verifies
  (spec/12-transcripts.md#verification), that its result is the file's,
  and that simulating the scenario again gives the same transcript, line by
  line. Another implementation replays ``transcript`` through its own
  machines: every ``send`` must be what its machine sends.
- ``operation: "verify"`` (negative, ``*_bad_<fault>.json``): a transcript
  that breaks the protocol, and the ``line`` verification must name
  (``valid: false``).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from fractions import Fraction
from typing import Any

from protocol.channels import suite_named
from protocol.params import RoundParams
from protocol.xof import as_seed
from reference.oracle.format import Json, case_seed, make_case
from reference.sim.scenarios import build
from reference.sim.simulate import Channels, Network, Scenario, simulate
from reference.sim.transcript import verify

FAMILY = "protocol"

#: The case seed of run_hostile_network: one whose round still releases.
HOSTILE_SEED = 913
#: Every protocol vector: 2 coordinates, target σ*² = 100.
DIMENSION, TARGET = 2, Fraction(100)


def _scenario_json(s: Scenario) -> Json:
    out: Json = {
        "master": s.master.hex(),
        "params": s.params.to_json(),
        "network": s.network.to_json(),
        "crashes": {str(k): v for k, v in sorted(s.crashes.items())},
        "colluders": list(s.colluders),
        "tamper": list(s.tamper),
    }
    # Optional keys, written only when present: earlier vectors stay as they were.
    if s.channels is not None:
        out["channels"] = {"suite": s.channels.suite.name, "tamper_frames": str(s.channels.tamper)}
    if s.byzantine:
        out["byzantine"] = {str(k): v for k, v in sorted(s.byzantine.items())}
    return out


def _scenario_from(obj: Mapping[str, Any]) -> Scenario:
    net = obj["network"]
    return Scenario(
        params=RoundParams.from_json(obj["params"]),
        master=as_seed(bytes.fromhex(obj["master"])),
        network=Network(**{k: Fraction(net[k]) for k in ("drop", "late", "duplicate")}),
        crashes={int(k): v for k, v in obj["crashes"].items()},
        colluders=tuple(obj["colluders"]),
        tamper=tuple(obj["tamper"]),
        channels=None
        if "channels" not in obj
        else Channels(
            suite_named(obj["channels"]["suite"]), Fraction(obj["channels"]["tamper_frames"])
        ),
        byzantine={int(k): v for k, v in obj.get("byzantine", {}).items()},
    )


def _run(s: Scenario) -> tuple[list[Json], Json]:
    lines: list[Json] = []
    result = simulate(s, sink=lines.append)
    return lines, result.to_json()


def _run_case(name: str, description: str, s: Scenario) -> tuple[str, Json]:
    lines, result = _run(s)
    return f"{FAMILY}/{name}.json", make_case(
        FAMILY,
        "run",
        description=description,
        scenario=_scenario_json(s),
        transcript=lines,
        result=result,
    )


def cases() -> Iterator[tuple[str, Json]]:
    """Every protocol vector, as ``(path relative to the vectors directory, object)``."""
    plain = build(
        master=case_seed(900),
        nodes=4,
        threshold=1,
        max_dropouts=1,
        dimension=DIMENSION,
        target_variance=TARGET,
    )
    yield _run_case(
        "run_no_dropout",
        "4 nodes, t = 1, D = 1: everyone contributes; the first decision is final",
        plain,
    )

    def crashing(
        seed: int,
        nodes: int,
        budgets: list[int],
        *,
        max_dropouts: int,
        min_contributors: int | None = None,
    ) -> Scenario:
        # The first non-coordinator nodes crash after the given numbers of sends.
        def make(crashes: dict[int, int]) -> Scenario:
            return build(
                master=case_seed(seed),
                nodes=nodes,
                threshold=1,
                crashes=crashes,
                max_dropouts=max_dropouts,
                min_contributors=min_contributors,
                dimension=DIMENSION,
                target_variance=TARGET,
            )

        base = make({})
        others = [i for i in base.params.nodes if i != base.params.coordinator]
        return make(dict(zip(others, budgets, strict=False)))

    yield _run_case(
        "run_contributor_dropouts",
        "5 nodes, t = 1, D = 2: two nodes crash while sharing (after 0 and 2 sends); "
        "the survivors top up their noise before the final decision",
        crashing(901, 5, [0, 2], max_dropouts=2),
    )
    yield _run_case(
        "run_aggregator_dropouts",
        "5 nodes, t = 1, D = 1: one node crashes after its 5 shares (before reporting) and "
        "one after reporting (before its partial sums); both are in the contributor set",
        crashing(902, 5, [5, 6], max_dropouts=1),
    )
    yield _run_case(
        "run_abort_too_many_dropouts",
        "4 nodes, t = 1, D = 1: two nodes crash before sharing; the plan cannot cover two "
        "dropouts, so the coordinator aborts and nothing is released",
        crashing(903, 4, [0, 0], max_dropouts=1),
    )
    lossy = build(
        master=case_seed(HOSTILE_SEED),
        nodes=6,
        threshold=2,
        max_dropouts=2,
        colluders=1,
        network=Network(drop=Fraction(1, 40), late=Fraction(1, 30), duplicate=Fraction(1, 8)),
        dimension=DIMENSION,
        target_variance=TARGET,
    )
    yield _run_case(
        "run_hostile_network",
        "6 nodes, t = 2, D = 2, T = 1: the network loses, delays past deadlines and "
        "duplicates messages; late and duplicated ones are rejected, and the round "
        "still releases",
        lossy,
    )
    yield _run_case(
        "run_abort_too_few_contributors",
        "5 nodes, t = 1, D = 2, min_contributors = 5: one node crashes before sharing; "
        "the plan could cover the dropout, but the isolation rule refuses a set of 4",
        crashing(905, 5, [0], max_dropouts=2, min_contributors=5),
    )
    sources = build(
        master=case_seed(907),
        nodes=7,
        threshold=1,
        packing=2,
        committee=5,
        max_dropouts=2,
        colluders=1,
        noise_sources=4,
        receivers=2,
        precover=True,
        crashes={7: 0},
        dimension=DIMENSION,
        target_variance=TARGET,
    )
    yield _run_case(
        "run_noise_sources_precovered",
        "7 nodes, a committee of 5, t = 1, k = 2, D = 2, T = 1: only 4 nodes add noise, "
        "sized to cover 2 dropouts up front, and 2 nodes receive; node 7 crashes before "
        "sharing, and the first decision is final (no top-up stage)",
        sources,
    )
    tampered = crashing(906, 5, [], max_dropouts=1)
    tamperer = next(i for i in tampered.params.aggregators if i != tampered.params.coordinator)
    lines, result = _run(
        Scenario(params=tampered.params, master=tampered.master, tamper=(tamperer,))
    )
    line = next(
        i for i, x in enumerate(lines)
        if x["type"] == "send" and x["message"]["kind"] == "partial_sum"
        and x["message"]["sender"] == tamperer
    )  # fmt: skip
    assert result["corrected"] == [tamperer], result
    yield f"{FAMILY}/verify_bad_tampered_partial_sum.json", make_case(
        FAMILY, "verify",
        description=(
            f"5 nodes, t = 1: aggregator {tamperer} adds 1 to its partial sums. The receivers "
            "correct around it (the result line lists it under corrected), and verification "
            "names its first altered partial sum: it did not follow the protocol"
        ),
        transcript=lines, valid=False, line=line + 1,
    )  # fmt: skip
    lines, _ = _run(plain)
    forged = copy.deepcopy(lines)
    line = next(
        i for i, x in enumerate(forged) if x["type"] == "send" and x["message"]["kind"] == "share"
    )
    values = forged[line]["message"]["values"]
    values[0] = str((int(values[0]) + 1) % plain.params.field.MODULUS)
    yield (
        f"{FAMILY}/verify_bad_altered_share.json",
        make_case(
            FAMILY,
            "verify",
            description="run_no_dropout's transcript with one share value changed by 1",
            transcript=forged,
            valid=False,
            line=line + 1,
        ),
    )
    yield from _byzantine_cases()
    yield from _failover_cases()


def _byzantine_cases() -> Iterator[tuple[str, Json]]:
    """Rounds with Byzantine nodes (spec/09-protocol.md#byzantine-nodes), sealed, and
    transcripts in which an honest node breaks the echo rules."""

    def byzantine(seed: int, f: int, deviants: Mapping[str, str], **kw: Any) -> Scenario:
        probe = build(master=case_seed(seed), nodes=7, threshold=2)
        who = {"coordinator": probe.params.coordinator}
        others = [i for i in probe.params.nodes if i != probe.params.coordinator]
        who |= {"aggregator": others[0], "other": others[1]}
        return build(
            master=case_seed(seed), nodes=7, threshold=2, dimension=DIMENSION,
            target_variance=TARGET, colluders=max(f, 1), max_byzantine=f,
            byzantine={who[role]: kind for role, kind in deviants.items()},
            channels=Channels(), **kw,
        )  # fmt: skip

    fault_free = byzantine(920, 1, {})
    yield _run_case(
        "run_byzantine_echo_fault_free",
        "7 nodes, t = 2, f = 1, sealed: no node deviates; every aggregator echoes the final "
        "decision to the others, and answers it once Q = 5 echoes match",
        fault_free,
    )
    equivocating = byzantine(921, 1, {"coordinator": "equivocate"}, max_dropouts=1, precover=True)
    yield _run_case(
        "run_byzantine_equivocation_aborts",
        "7 nodes, t = 2, f = 1, D = 1 pre-covered: the coordinator sends a second final "
        "decision to the upper half of the aggregators; the echoes carry its signature of "
        "both, every aggregator aborts with coordinator-equivocation, nothing is released",
        equivocating,
    )
    yield _run_case(
        "run_byzantine_equivocation_without_echo",
        "The same attack with f = 0 (no echo exchange), beyond the round's bound: two "
        "different sums are released (result: releases = 2); the transcript verifies as a "
        "record of the attack",
        byzantine(922, 0, {"coordinator": "equivocate"}, max_dropouts=1, precover=True),
    )
    for seed, kind, text in (
        (923, "wrong-partial-sum", "adds 1 to its partial sums: the receivers correct around it"),
        (924, "replay", "sends every message twice: each copy is refused as a duplicate"),
        (925, "withhold", "sends nothing to odd nodes: it is a dropout, the others top up"),
    ):
        role = "aggregator" if kind == "wrong-partial-sum" else "other"
        yield _run_case(
            f"run_byzantine_{kind.replace('-', '_')}",
            f"7 nodes, t = 2, f = 1, D = 1: a Byzantine node {text}; one correct release",
            byzantine(seed, 1, {role: kind}, max_dropouts=1),
        )
    # An honest aggregator that answers before the echo quorum: named at its partial sum.
    lines, _ = _run(fault_free)
    first = next(i for i, x in enumerate(lines) if x["type"] == "send"
                 and x["message"]["kind"] == "echo")  # fmt: skip
    sender = lines[first]["message"]["sender"]  # its first echo is at line `first`
    forged = copy.deepcopy(lines)
    echo = first  # the first echo of that sender
    forged[echo]["message"]["contributors"] = forged[echo]["message"]["contributors"][:-1]
    yield f"{FAMILY}/verify_bad_echo_of_another_decision.json", make_case(
        FAMILY, "verify",
        description=(
            f"run_byzantine_echo_fault_free's transcript in which aggregator {sender}, not "
            "declared Byzantine, echoes a decision without the last contributor: its machine "
            "echoes the decision it received"
        ),
        transcript=forged, valid=False, line=echo + 1,
    )  # fmt: skip
    lines, _ = _run(equivocating)
    undeclared = copy.deepcopy(lines)
    del undeclared[0]["byzantine"]
    decisions = [(i, x["message"]) for i, x in enumerate(undeclared)
                 if x["type"] == "send" and x["message"]["kind"] == "decision"]  # fmt: skip
    genuine = next(m for _, m in decisions if m["role"] == "contributor")
    line = next(i for i, m in decisions if m["contributors"] != genuine["contributors"]
                or m["aggregators"] != genuine["aggregators"])  # fmt: skip
    yield f"{FAMILY}/verify_bad_undeclared_equivocation.json", make_case(
        FAMILY, "verify",
        description=(
            "run_byzantine_equivocation_aborts's transcript with the header's byzantine key "
            "removed: the coordinator's second decision is not what its machine sends"
        ),
        transcript=undeclared, valid=False, line=line + 1,
    )  # fmt: skip
    bad_signature = copy.deepcopy(lines)
    line = next(i for i, x in enumerate(bad_signature) if "decision_signature" in x)
    sig = bad_signature[line]["decision_signature"]
    bad_signature[line]["decision_signature"] = ("0" if sig[0] != "0" else "1") + sig[1:]
    yield f"{FAMILY}/verify_bad_forwarded_signature.json", make_case(
        FAMILY, "verify",
        description=(
            "run_byzantine_equivocation_aborts's transcript with one forwarded decision "
            "signature altered: the echo answers a decision the coordinator did not sign"
        ),
        transcript=bad_signature, valid=False, line=line + 1,
    )  # fmt: skip


def _failover_cases() -> Iterator[tuple[str, Json]]:
    """Rounds with backup coordinators (spec/09-protocol.md#failover)."""

    def failover(seed: int, crash: str, sends: int, **kw: Any) -> Scenario:
        probe = build(master=case_seed(seed), nodes=6, threshold=1, failover=2)
        who = dict(zip(("coordinator", "backup"), probe.params.coordinators, strict=False))
        return build(
            master=case_seed(seed), nodes=6, threshold=1, max_dropouts=1,
            dimension=DIMENSION, target_variance=TARGET, failover=2,
            crashes={who[crash]: sends}, **kw,
        )  # fmt: skip

    yield _run_case(
        "run_failover_coordinator_crashes",
        "6 nodes, t = 1, D = 1, backups 2: the coordinator crashes before sending anything; "
        "it is a dropout, the aggregators' view timers fire, the first backup takes over, "
        "makes the top-up decision and the final one, and the sum is released",
        failover(930, "coordinator", 0),
    )
    yield _run_case(
        "run_failover_decision_cut_short",
        "6 nodes, t = 1, D = 1, backups 2: the coordinator crashes after its final decision "
        "reached the two backups only; the aggregators move to view 1 and the first backup "
        "sends them that decision again (it never decides anew); released",
        failover(931, "coordinator", 9),
    )


def _text(lines: list[Any]) -> str:
    return "".join(json.dumps(x, sort_keys=True, separators=(",", ":")) + "\n" for x in lines)


def check(obj: Mapping[str, Any], problems: list[str]) -> None:
    """Check one protocol vector; append a string per problem to ``problems``.

    Spec: spec/12-transcripts.md#verification
    """
    op = obj["operation"]
    transcript = obj["transcript"]
    verdict = verify(_text(transcript))
    if op == "verify":
        if verdict.valid != obj["valid"] or (not verdict.valid and verdict.line != obj["line"]):
            problems.append(
                f"verify: file expects valid={obj['valid']} line={obj.get('line')}; "
                f"got valid={verdict.valid} line={verdict.line} ({verdict.why})"
            )
        return
    if op != "run":
        problems.append(f"operation: unknown operation {op!r}")
        return
    if not verdict.valid:
        problems.append(f"transcript[{(verdict.line or 1) - 1}]: {verdict.why}")
        return
    if verdict.result != obj["result"]:
        problems.append(f"result: file has {obj['result']}, the replay gives {verdict.result}")
    lines, _ = _run(_scenario_from(obj["scenario"]))
    if len(lines) != len(transcript):
        problems.append(
            f"transcript: file has {len(transcript)} lines, the scenario gives {len(lines)}"
        )
    for i, (a, b) in enumerate(zip(transcript, lines, strict=False)):
        if a != b:
            problems.append(f"transcript[{i}]: file has {a}, the scenario gives {b}")
            break
