"""A deterministic simulator: the round's state machines over an adversarial network.

Spec: spec/09-protocol.md (the machines); spec/12-transcripts.md (what it writes)

Every node of the round runs its role machines (:mod:`protocol.machine`).
The simulator is their driver: it starts them, delivers their messages
through a network model that may lose, delay (past the timers: *late*),
reorder and duplicate them, fires the timers they ask for, crashes nodes
after a chosen number of sends, and lets chosen aggregators tamper with
their partial sums. Everything it does is drawn from one master seed
through the XOF, so a run is reproducible; every step is written to the
transcript (:mod:`reference.sim.transcript`).
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from time import perf_counter_ns as time_ns
from typing import Any

import numpy as np

from protocol.errors import ParameterError, ProtocolError
from protocol.field import Field
from protocol.machine import (
    ContributorState,
    Event,
    Phase,
    Receive,
    ReceiverState,
    Start,
    State,
    Timeout,
    Timer,
    initial,
    step,
)
from protocol.messages import Elements, Message, PartialSum, Role
from protocol.params import RoundParams
from protocol.xof import Seed, Tag, Xof, derive_seed

#: The transcript format this module writes (spec/12-transcripts.md).
TRANSCRIPT_FORMAT = "sdl-transcript/1"

#: The roles in the order a node starts them.
ROLES: tuple[Role, ...] = ("receiver", "coordinator", "aggregator", "contributor")

#: The largest update coordinate the simulator draws, in absolute value.
UPDATE_BOUND = 8


@dataclass(frozen=True, slots=True)
class Network:
    """What the network does to each message between two different nodes.

    Spec: spec/12-transcripts.md#network-model

    Each probability is an exact fraction in ``[0, 1]``. A message is lost
    with probability ``drop``; otherwise it arrives after ``1 .. window − 1``
    ticks (so messages overtake each other), or with probability ``late``
    one to two windows later than that, after the timer waiting for it;
    with probability ``duplicate`` a second copy travels independently.
    A node's messages to itself arrive after one tick and are never touched.
    """

    drop: Fraction = Fraction(0)
    late: Fraction = Fraction(0)
    duplicate: Fraction = Fraction(0)

    def __post_init__(self) -> None:
        for name in ("drop", "late", "duplicate"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, Fraction | int) or not 0 <= v <= 1:
                raise ParameterError(f"network {name} must be a fraction in [0, 1]; got {v!r}")
            object.__setattr__(self, name, Fraction(v))

    def to_json(self) -> dict[str, str]:
        return {"drop": str(self.drop), "late": str(self.late), "duplicate": str(self.duplicate)}


@dataclass(frozen=True, slots=True)
class Scenario:
    """One simulated round: parameters, seed, network, crashes, colluders, tampering.

    Spec: spec/12-transcripts.md#scenario

    - ``crashes[i] = k``: node ``i`` dies when it is about to send its
      ``k + 1``-th message (``k = 0``: it never sends anything). A crashed
      node processes nothing more.
    - ``colluders``: contributors whose noise the adversary knows; they act
      honestly but their noise is not counted as honest.
    - ``tamper``: aggregators that add 1 to the first value of every partial
      sum they send (a deviation `sdl verify` flags, and that receivers
      detect or correct by robust reconstruction).
    - ``updates``: each contributor's encoded update; by default drawn in
      ``[−8, 8]`` per coordinate from ``Xof(master, Tag("sim.update", (i,)))``.
    """

    params: RoundParams
    master: Seed
    network: Network = field(default_factory=Network)
    crashes: Mapping[int, int] = field(default_factory=dict)
    colluders: tuple[int, ...] = ()
    tamper: tuple[int, ...] = ()
    updates: Mapping[int, Field] | None = None

    def __post_init__(self) -> None:
        p = self.params
        for node, sends in self.crashes.items():
            if node not in p.nodes or type(sends) is not int or sends < 0:
                raise ParameterError(
                    f"a crash is node -> sends before it dies (a node of the round, an int "
                    f">= 0); got {node!r} -> {sends!r}"
                )
        stray = sorted(set(self.colluders) - set(p.contributors))
        if stray or len(set(self.colluders)) != len(self.colluders):
            raise ParameterError(f"colluders must be distinct contributors; got {self.colluders}")
        if len(self.colluders) > p.noise.max_colluders:
            raise ParameterError(
                f"{len(self.colluders)} colluders exceed the plan's T = {p.noise.max_colluders}"
            )
        if not set(self.tamper) <= set(p.aggregators):
            raise ParameterError(f"tamper must name aggregators; got {self.tamper}")

    def update(self, node: int) -> Field:
        """Contributor ``node``'s encoded update."""
        p = self.params
        if self.updates is not None:
            return self.updates[node]
        xof = Xof(self.master, Tag("sim.update", (node,)))
        # uniform_ints equals that many uniform_int calls, value for value (spec 03).
        drawn = xof.uniform_ints(2 * UPDATE_BOUND + 1, count=p.dimension).astype(np.int64)
        return p.field.signed_encode(drawn - UPDATE_BOUND)

    def node_seed(self, node: int) -> Seed:
        """Contributor ``node``'s fresh secret seed for the round."""
        return derive_seed(self.master, Tag("sim.node", (node,)))


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a round ended. Spec: spec/12-transcripts.md#result"""

    status: str
    reason: str | None
    contributors: tuple[int, ...]
    aggregate_correct: bool
    honest_noise_variance: Fraction
    target_noise_variance: Fraction
    released: Field | None
    states: Mapping[tuple[int, Role], State]
    crashed: frozenset[int]
    #: Aggregators whose partial sums some receiver corrected around.
    corrected: tuple[int, ...] = ()
    #: Messages the nodes sent (not part of the result line: its JSON stays as spec 12 says).
    messages: int = 0
    #: Messages between two nodes of which no copy arrived in time, by fate and kind:
    #: ``{"dropped": {"share": 2}, "late": {"report": 1}}`` (``late``: a copy arrived,
    #: but after the timer waiting for it). Not part of the result line either.
    lost: Mapping[str, Mapping[str, int]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "reason": self.reason,
            "contributors": list(self.contributors),
            "aggregate_correct": self.aggregate_correct,
            "honest_noise_variance": float(self.honest_noise_variance),
            "target_noise_variance": float(self.target_noise_variance),
            "honest_noise_variance_exact": str(self.honest_noise_variance),
            "target_noise_variance_exact": str(self.target_noise_variance),
            "released": None if self.released is None else self.released.to_json(),
            "crashed": sorted(self.crashed),
            "corrected": list(self.corrected),
        }


def holders(params: RoundParams) -> list[tuple[int, Role]]:
    """Every (node, role) machine of the round, in start order."""
    out: list[tuple[int, Role]] = []
    for node in params.nodes:
        for role in ROLES:
            if ((role == "receiver" and node in params.receiving)
                    or (role == "coordinator" and node == params.coordinator)
                    or (role == "aggregator" and node in params.aggregators)
                    or (role == "contributor" and node in params.contributors)):  # fmt: skip
                out.append((node, role))
    return out


def outcome(
    params: RoundParams,
    states: Mapping[tuple[int, Role], State],
    *,
    colluders: Sequence[int],
    crashed: frozenset[int],
) -> Outcome:
    """The result of a round from its machines' final states.

    Spec: spec/12-transcripts.md#result

    The round *released* if a receiver that did not crash is ``RELEASED``.
    ``aggregate_correct`` says whether every released value equals, in the
    field, the sum over the released contributor set of what those
    contributors shared (update, noise and top-ups). The honest noise is
    the noise variance added by members of that set that are not colluders.
    """
    released = [
        s for (node, _), s in sorted(states.items(), key=lambda kv: (kv[0][0], kv[0][1]))
        if isinstance(s, ReceiverState) and s.phase is Phase.RELEASED and node not in crashed
    ]  # fmt: skip
    target = params.noise.target_variance
    if not released:
        reason = None
        coordinator = states.get((params.coordinator, "coordinator"))
        if coordinator is not None and coordinator.reason is not None:
            reason = coordinator.reason
        else:
            for (node, _), s in sorted(states.items(), key=lambda kv: (kv[0][0], kv[0][1])):
                if s.reason is not None and node not in crashed:
                    reason = s.reason
                    break
        if reason is None:
            reason = "no-decision"
        return Outcome("aborted", reason, (), True, Fraction(0), target, None, states, crashed)
    covers = released[0].covers
    assert covers is not None
    u = covers[1]
    truth = params.field.zeros(params.dimension)
    honest = Fraction(0)
    for i in u:
        c = states[(i, "contributor")]
        assert isinstance(c, ContributorState) and c.contribution is not None
        truth = truth + c.contribution.to_field(params.field)
        if i not in colluders:
            honest += c.noise_variance
    correct = all(r.result == truth and r.covers == covers for r in released)
    corrected = tuple(sorted({j for r in released for j in r.faulty}))
    return Outcome(
        "released", None, u, correct, honest, target, released[0].result, states, crashed,
        corrected,
    )  # fmt: skip


def _message_json(m: Message) -> Any:
    return m.model_dump(mode="json")


#: Called after every step a machine takes: (node, role, what, seconds), where
#: ``what`` is ``"start"``, ``"timeout"`` or the kind of the message delivered.
StepObserver = Callable[[int, Role, str, float], None]
#: Called for every message a node sends (after tampering), before the network sees it.
SendObserver = Callable[[Message], None]


def simulate(
    scenario: Scenario,
    *,
    sink: Callable[[dict[str, Any]], None] | None = None,
    on_step: StepObserver | None = None,
    on_send: SendObserver | None = None,
) -> Outcome:
    """Run one round; write every step to ``sink`` as a transcript line.

    Spec: spec/12-transcripts.md

    ``on_step`` and ``on_send`` let a benchmark time each machine step and
    count what each node sends; they see the run, they do not change it.
    """
    p = scenario.params
    window = p.window
    rng = Xof(scenario.master, Tag("sim.network"))
    net = scenario.network

    def emit(line: dict[str, Any]) -> None:
        if sink is not None:
            sink(line)

    def chance(prob: Fraction) -> bool:
        if prob == 0:
            return False
        return rng.bernoulli(prob.numerator, prob.denominator)

    emit({
        "type": "header",
        "format": TRANSCRIPT_FORMAT,
        "params": p.to_json(),
        "network": net.to_json(),
        "crashes": {str(k): v for k, v in sorted(scenario.crashes.items())},
        "colluders": sorted(scenario.colluders),
        "tamper": sorted(scenario.tamper),
    })  # fmt: skip

    states: dict[tuple[int, Role], State] = {}
    for node, role in holders(p):
        states[(node, role)] = initial(p, node=node, role=role)
    sent: dict[int, int] = dict.fromkeys(p.nodes, 0)
    crashed: set[int] = set()
    queue: list[tuple[int, int, int, tuple[Any, ...]]] = []
    seq = 0
    lost: dict[str, dict[str, int]] = {"dropped": {}, "late": {}}

    def push(time: int, prio: int, item: tuple[Any, ...]) -> None:
        nonlocal seq
        heapq.heappush(queue, (time, prio, seq, item))
        seq += 1

    def route(time: int, m: Message) -> None:
        if m.sender == m.recipient:
            push(time + 1, 0, ("deliver", m))
            return
        copies = 2 if chance(net.duplicate) else 1
        fates: set[str] = set()
        for _ in range(copies):
            if chance(net.drop):
                if sink is not None:
                    emit({"type": "drop", "time": time, "message": _message_json(m)})
                fates.add("dropped")
                continue
            delay = 1 + rng.uniform_int(window - 1) if window > 1 else 1
            if chance(net.late):
                delay += window * (1 + rng.uniform_int(2))
                fates.add("late")
            else:
                fates.add("on time")
            push(time + delay, 0, ("deliver", m))
        if "on time" not in fates:
            fate = lost["late" if "late" in fates else "dropped"]
            fate[m.kind] = fate.get(m.kind, 0) + 1

    for node, role in holders(p):
        push(0, 1, ("start", node, role))

    while queue:
        time, _, _, item = heapq.heappop(queue)
        node, role = (item[1].recipient, item[1].role) if item[0] == "deliver" else item[1:3]
        if node in crashed:
            continue
        state = states[(node, role)]
        event: Event
        line: dict[str, Any] = {"time": time, "node": node, "role": role}
        if item[0] == "start":
            if role == "contributor":
                update, seed = scenario.update(node), scenario.node_seed(node)
                event = Start(update=update, seed=seed)
                line |= {"type": "start"}
                if sink is not None:
                    line |= {"update": update.to_json(), "seed": seed.hex()}
            else:
                event = Start()
                line |= {"type": "start"}
        elif item[0] == "timeout":
            if state.terminal:
                continue  # a terminal machine's timers are cancelled
            event = Timeout(stage=item[3])
            line |= {"type": "timeout", "stage": item[3]}
        else:
            event = Receive(item[1])
            if sink is not None:
                line |= {"type": "deliver", "message": _message_json(item[1])}
        emit(line)
        started = time_ns() if on_step is not None else 0
        try:
            new, outputs = step(state, event)
        except ProtocolError as exc:
            emit({"type": "reject", "time": time, "node": node, "role": role,
                  "error": type(exc).__name__, "detail": str(exc)})  # fmt: skip
            continue
        states[(node, role)] = new
        if on_step is not None:
            what = item[0] if item[0] != "deliver" else item[1].kind
            on_step(node, role, what, (time_ns() - started) / 1e9)
        for out in outputs:
            if isinstance(out, Timer):
                push(time + out.windows * window, 1, ("timeout", node, role, out.stage))
                continue
            budget = scenario.crashes.get(node)
            if budget is not None and sent[node] >= budget:
                crashed.add(node)
                emit({"type": "crash", "time": time, "node": node, "sent": sent[node]})
                break
            sent[node] += 1
            message = out
            if node in scenario.tamper and isinstance(out, PartialSum):
                tampered = out.values.array.astype(np.uint64)  # a copy
                tampered[0] = (int(tampered[0]) + 1) % p.field.MODULUS
                message = out.model_copy(update={"values": Elements(tampered)})
            if sink is not None:
                emit({"type": "send", "time": time, "message": _message_json(message)})
            if on_send is not None:
                on_send(message)
            route(time, message)

    result = replace(
        outcome(p, states, colluders=scenario.colluders, crashed=frozenset(crashed)),
        messages=sum(sent.values()),
        lost=lost,
    )
    emit({"type": "result", **result.to_json()})
    return result


def canonical_line(line: Mapping[str, Any]) -> str:
    """One transcript line as canonical JSON: sorted keys, no spaces."""
    return json.dumps(line, sort_keys=True, separators=(",", ":"))


__all__ = [
    "TRANSCRIPT_FORMAT",
    "Network",
    "Outcome",
    "Scenario",
    "SendObserver",
    "StepObserver",
    "canonical_line",
    "holders",
    "outcome",
    "simulate",
]
