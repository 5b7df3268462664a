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

from protocol.params import RoundParams
from protocol.xof import as_seed
from reference.oracle.format import Json, case_seed, make_case
from reference.sim.scenarios import build
from reference.sim.simulate import Network, Scenario, simulate
from reference.sim.transcript import verify

FAMILY = "protocol"

#: The case seed of run_hostile_network: one whose round still releases.
HOSTILE_SEED = 913
#: Every protocol vector: 2 coordinates, target σ*² = 100.
DIMENSION, TARGET = 2, Fraction(100)


def _scenario_json(s: Scenario) -> Json:
    return {
        "master": s.master.hex(),
        "params": s.params.to_json(),
        "network": s.network.to_json(),
        "crashes": {str(k): v for k, v in sorted(s.crashes.items())},
        "colluders": list(s.colluders),
        "tamper": list(s.tamper),
    }


def _scenario_from(obj: Mapping[str, Any]) -> Scenario:
    net = obj["network"]
    return Scenario(
        params=RoundParams.from_json(obj["params"]),
        master=as_seed(bytes.fromhex(obj["master"])),
        network=Network(**{k: Fraction(net[k]) for k in ("drop", "late", "duplicate")}),
        crashes={int(k): v for k, v in obj["crashes"].items()},
        colluders=tuple(obj["colluders"]),
        tamper=tuple(obj["tamper"]),
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
