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

With :class:`Channels`, every message between two nodes travels as a sealed
frame (spec/14-channels.md): the sender seals it to the recipient's session
key and signs it, the network carries the frame, and the recipient opens it
before its machine sees anything. The network may also inject attacked
copies of frames (flipped bits, another recipient, replays from another
round, stage or session, forged senders); each is rejected by the channel,
counted, and written to the transcript, and no machine ever sees it. Keys
are derived from the master seed, so such a run is reproducible and **not
private**; the frames differ from run to run (HPKE's ephemeral keys come
from the operating system), the messages and the result do not.
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

from protocol.channels import (
    DEFAULT_SUITE,
    HEADER_SIZE,
    NONCE_SIZE,
    SIGNED_KINDS,
    ChannelSuite,
    Endpoint,
    FrameHeader,
    answered_decision,
    endpoints_roles,
    frame_size,
    identity_key,
    open_ciphertext,
    plaintext,
    read_plaintext,
    seal_frame,
    statement,
    verify_opened,
)
from protocol.errors import ChannelError, ParameterError, ProtocolError
from protocol.field import Field
from protocol.machine import (
    ContributorState,
    CoordinatorState,
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
from protocol.messages import Decision, Echo, Elements, Message, PartialSum, Role
from protocol.params import RoundParams
from protocol.xof import SEED_SIZE, Seed, Tag, Xof, as_seed, derive_seed
from reference.channels.seal import NodeChannel, NodeKeys, Session, deterministic_session

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


#: The frame attacks the network can mount (spec/12-transcripts.md#frame-attacks).
FRAME_ATTACKS: tuple[str, ...] = (
    "flip-bit",
    "swap-recipient",
    "replay-round",
    "replay-stage",
    "replay-session",
    "forge-sender",
)


@dataclass(frozen=True, slots=True)
class Channels:
    """Sealed channels for a simulated round, and how often the network attacks frames.

    Spec: spec/12-transcripts.md#channels, spec/14-channels.md

    With probability ``tamper`` per frame between two nodes, the network
    injects one attacked copy beside the genuine frame, the attack drawn
    uniformly from :data:`FRAME_ATTACKS`. Draws come from their own XOF
    stream (``Tag("sim.frames")``), so the genuine traffic, and hence the
    result, is the same at every rate.
    """

    suite: ChannelSuite = DEFAULT_SUITE
    tamper: Fraction = Fraction(0)

    def __post_init__(self) -> None:
        v = self.tamper
        if isinstance(v, bool) or not isinstance(v, Fraction | int) or not 0 <= v <= 1:
            raise ParameterError(f"tamper-frames rate must be a fraction in [0, 1]; got {v!r}")
        object.__setattr__(self, "tamper", Fraction(v))


#: How a Byzantine node deviates (spec/12-transcripts.md#byzantine-nodes).
BYZANTINE_KINDS: tuple[str, ...] = ("equivocate", "wrong-partial-sum", "replay", "withhold")


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
    - ``channels``: seal every message between two nodes (spec 14); ``None``
      hands messages over in the clear, as an authenticated channel would.
    - ``seeds``: each contributor's secret seed for the round, one 32-byte seed
      per contributor (spec/13-learning.md#seeds-and-node-secrets); by default
      ``derive_seed(master, Tag("sim.node", (i,)))``, which anyone holding the
      master seed can recompute.
    - ``byzantine``: node -> how it deviates, one of :data:`BYZANTINE_KINDS`
      (spec/12-transcripts.md#byzantine-nodes). Its machines run as an honest
      node's would; what it sends is changed on the way out. The round's
      guarantees hold while ``len(byzantine) <= params.max_byzantine``; a run
      with more shows what breaks.
    """

    params: RoundParams
    master: Seed
    network: Network = field(default_factory=Network)
    crashes: Mapping[int, int] = field(default_factory=dict)
    colluders: tuple[int, ...] = ()
    tamper: tuple[int, ...] = ()
    updates: Mapping[int, Field] | None = None
    channels: Channels | None = None
    seeds: Mapping[int, Seed] | None = None
    byzantine: Mapping[int, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        p = self.params
        for node, kind in self.byzantine.items():
            if node not in p.nodes or kind not in BYZANTINE_KINDS:
                raise ParameterError(
                    f"a Byzantine node is a node of the round and one of "
                    f"{', '.join(BYZANTINE_KINDS)}; got {node!r} -> {kind!r}"
                )
            if kind == "equivocate" and node != p.coordinator:
                raise ParameterError(
                    f"only the coordinator (node {p.coordinator}) can equivocate: it alone "
                    f"signs decisions; got node {node}"
                )
            if kind == "wrong-partial-sum" and node not in p.aggregators:
                raise ParameterError(
                    f"wrong-partial-sum needs an aggregator; node {node} is not one"
                )
            if node in self.crashes:
                raise ParameterError(f"node {node} is Byzantine and cannot also crash")
        within = len(self.byzantine) <= p.max_byzantine
        outside = sorted(set(self.byzantine) & set(p.contributors) - set(self.colluders))
        if within and outside:
            raise ParameterError(
                f"Byzantine contributors {outside} must be among the colluders (the noise plan's "
                f"T = {p.noise.max_colluders} counts every contributor that knows its noise)"
            )
        if p.max_byzantine and self.channels is None:
            raise ParameterError(
                f"a round with max_byzantine = {p.max_byzantine} needs sealed channels: its "
                "echoes and partial sums carry the coordinator's signature of the decision "
                "they answer (spec/14-channels.md#forwarded-signatures)"
            )
        if self.seeds is not None:
            if not isinstance(self.seeds, Mapping) or set(self.seeds) != set(p.contributors):
                got = sorted(self.seeds) if isinstance(self.seeds, Mapping) else self.seeds
                raise ParameterError(
                    f"seeds must map exactly the contributors {list(p.contributors)} to "
                    f"seeds; got keys {got!r}"
                )
            for node, seed in self.seeds.items():
                if not isinstance(seed, bytes) or len(seed) != SEED_SIZE:
                    shown = f"{len(seed)} bytes" if isinstance(seed, bytes) else repr(seed)
                    raise ParameterError(
                        f"seeds[{node}] must be a {SEED_SIZE}-byte seed; got {shown}"
                    )
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
        """Contributor ``node``'s secret seed for the round: ``seeds[node]`` if given."""
        if self.seeds is not None:
            return self.seeds[node]
        return derive_seed(self.master, Tag("sim.node", (node,)))

    def session(self) -> tuple[Session, dict[int, NodeKeys]]:
        """Every node's channel keys, from ``derive_seed(master, Tag("sim.channels"))``."""
        suite = self.channels.suite if self.channels is not None else DEFAULT_SUITE
        seed = derive_seed(self.master, Tag("sim.channels"))
        return deterministic_session(seed, self.params.session, self.params.nodes, suite)


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
    #: Frames the channel rejected, by fault (spec/14-channels.md#opening); sealed rounds only.
    frames_rejected: Mapping[str, int] = field(default_factory=dict)
    #: Every honest receiver that released holds the same value.
    honest_agree: bool = True
    #: The distinct values honest receivers released (0, 1, or more when the
    #: Byzantine nodes exceed the round's ``max_byzantine``).
    releases: int = 0
    #: Whether the result line carries ``honest_agree`` and ``releases`` (rounds with
    #: ``max_byzantine >= 1`` or Byzantine nodes; other result lines stay as they were).
    adversarial: bool = False

    def to_json(self) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        if self.adversarial:
            extra = {"honest_agree": self.honest_agree, "releases": self.releases}
        return extra | {
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
    held: dict[Role, frozenset[int]] = {
        "receiver": frozenset(params.receiving),
        "coordinator": frozenset(params.coordinators),
        "aggregator": frozenset(params.aggregators),
        "contributor": frozenset(params.contributors),
    }
    for node in params.nodes:
        out += [(node, role) for role in ROLES if node in held[role]]
    return out


def outcome(
    params: RoundParams,
    states: Mapping[tuple[int, Role], State],
    *,
    colluders: Sequence[int],
    crashed: frozenset[int],
    byzantine: Sequence[int] = (),
) -> Outcome:
    """The result of a round from its machines' final states.

    Spec: spec/12-transcripts.md#result

    The round *released* if an honest receiver (one that did not crash and is
    not Byzantine) is ``RELEASED``. ``aggregate_correct`` says whether every
    such released value equals, in the field, the sum over its contributor
    set of what those contributors shared (update, noise and top-ups);
    ``honest_agree`` whether they are all the same value over the same set;
    ``releases`` counts the distinct values. The honest noise is the noise
    variance added by members of the set that are neither colluders nor
    Byzantine.
    """
    adversarial = params.max_byzantine >= 1 or bool(byzantine)
    released = [
        s for (node, _), s in sorted(states.items(), key=lambda kv: (kv[0][0], kv[0][1]))
        if isinstance(s, ReceiverState) and s.phase is Phase.RELEASED and node not in crashed
        and node not in byzantine
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
        return Outcome(
            "aborted", reason, (), True, Fraction(0), target, None, states, crashed,
            adversarial=adversarial,
        )  # fmt: skip

    def truth(u: tuple[int, ...]) -> tuple[Field, Fraction]:
        total = params.field.zeros(params.dimension)
        honest = Fraction(0)
        for i in u:
            c = states[(i, "contributor")]
            assert isinstance(c, ContributorState) and c.contribution is not None
            total = total + c.contribution.to_field(params.field)
            if i not in colluders and i not in byzantine:
                honest += c.noise_variance
        return total, honest

    covers = released[0].covers
    assert covers is not None
    u = covers[1]
    # Each distinct set is summed once, and each distinct value compared once: a round
    # with many receivers of a long vector costs no more than one with a single receiver.
    distinct = {(r.covers, _value_key(r.result)): r for r in released}
    truths = {c[1]: truth(c[1])[0] for c, _ in distinct if c is not None}
    correct = all(
        r.covers is not None and r.result == truths[r.covers[1]] for r in distinct.values()
    )
    values_only = {v for _, v in distinct}
    corrected = tuple(sorted({j for r in released for j in r.faulty}))
    return Outcome(
        "released", None, u, correct, truth(u)[1], target, released[0].result, states, crashed,
        corrected, honest_agree=len(distinct) == 1, releases=len(values_only),
        adversarial=adversarial,
    )  # fmt: skip


def _value_key(value: Field | None) -> bytes | None:
    """A released value as bytes, to tell distinct releases apart."""
    return None if value is None else value.values.tobytes()


def _message_json(m: Message) -> Any:
    return m.model_dump(mode="json")


#: Called after every step a machine takes: (node, role, what, seconds), where
#: ``what`` is ``"start"``, ``"timeout"`` or the kind of the message delivered.
StepObserver = Callable[[int, Role, str, float], None]
#: Called for every message a node sends (after tampering), before the network sees it.
SendObserver = Callable[[Message], None]
#: Called for the session's setup (every key frame sealed and opened, once) and for every
#: frame sealed or opened: (``"setup"``, ``"seal"`` or ``"open"``, bytes, seconds); the
#: message's binary form, which sealing starts from and opening ends with, is reported
#: apart (``"encode"``, ``"decode"``): a deployment needs it whether it seals or not.
ChannelObserver = Callable[[str, int, float], None]


def simulate(
    scenario: Scenario,
    *,
    sink: Callable[[dict[str, Any]], None] | None = None,
    on_step: StepObserver | None = None,
    on_send: SendObserver | None = None,
    on_channel: ChannelObserver | None = None,
) -> Outcome:
    """Run one round; write every step to ``sink`` as a transcript line.

    Spec: spec/12-transcripts.md

    ``on_step``, ``on_send`` and ``on_channel`` let a benchmark time each
    machine step, count what each node sends and time the channel; they see
    the run, they do not change it.
    """
    p = scenario.params
    window = p.window
    rng = Xof(scenario.master, Tag("sim.network"))
    net = scenario.network
    wire = _Wire(scenario, on_channel) if scenario.channels is not None else None

    def emit(line: dict[str, Any]) -> None:
        if sink is not None:
            sink(line)

    def chance(prob: Fraction) -> bool:
        if prob == 0:
            return False
        return rng.bernoulli(prob.numerator, prob.denominator)

    header: dict[str, Any] = {
        "type": "header",
        "format": TRANSCRIPT_FORMAT,
        "params": p.to_json(),
        "network": net.to_json(),
        "crashes": {str(k): v for k, v in sorted(scenario.crashes.items())},
        "colluders": sorted(scenario.colluders),
        "tamper": sorted(scenario.tamper),
    }  # fmt: skip
    if scenario.byzantine:
        header["byzantine"] = {str(k): v for k, v in sorted(scenario.byzantine.items())}
    if wire is not None:
        header["channels"] = wire.to_json()
    emit(header)

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
        if wire is not None:
            wire.note(m)
        if m.sender == m.recipient:
            push(time + 1, 0, ("deliver", m))
            return
        carried: tuple[Any, ...] = ("deliver", m)
        if wire is not None:
            frame = wire.seal(m)
            carried = ("frame", frame, m.recipient, None)
            for at, bad, attack in wire.attacks(frame, m):
                push(time + 1 + wire.delay(window), 0, ("frame", bad, at, attack))
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
            push(time + delay, 0, carried)
        if "on time" not in fates:
            fate = lost["late" if "late" in fates else "dropped"]
            fate[m.kind] = fate.get(m.kind, 0) + 1

    for node, role in holders(p):
        push(0, 1, ("start", node, role))

    while queue:
        time, _, _, item = heapq.heappop(queue)
        if item[0] == "frame":
            assert wire is not None
            if item[2] in crashed:
                continue
            try:
                item = ("deliver", wire.open(item[1], item[2]))
            except ChannelError as exc:
                wire.rejected[exc.fault] = wire.rejected.get(exc.fault, 0) + 1
                emit({"type": "frame_reject", "time": time, "node": item[2], "attack": item[3],
                      "fault": exc.fault, "detail": exc.detail})  # fmt: skip
                continue
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
            event = Timeout(stage=item[3], view=item[4])
            line |= {"type": "timeout", "stage": item[3]}
            if item[4] is not None:
                line["view"] = item[4]
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
                push(time + out.windows * window, 1, ("timeout", node, role, out.stage, out.view))
                continue
            budget = scenario.crashes.get(node)
            if budget is not None and sent[node] >= budget:
                crashed.add(node)
                emit({"type": "crash", "time": time, "node": node, "sent": sent[node]})
                break
            message = out
            if node in scenario.tamper and isinstance(out, PartialSum):
                message = _tampered(out, p.field)
            deviation = scenario.byzantine.get(node)
            for copy, later in (
                _deviate(deviation, message, p, new) if deviation else [(message, 0)]
            ):
                sent[node] += 1
                if sink is not None:
                    send = {"type": "send", "time": time, "message": _message_json(copy)}
                    if wire is not None and copy.sender != copy.recipient:
                        send |= wire.evidence(copy)
                    emit(send)
                if on_send is not None:
                    on_send(copy)
                route(time + later * window, copy)

    result = replace(
        outcome(
            p,
            states,
            colluders=scenario.colluders,
            crashed=frozenset(crashed),
            byzantine=tuple(scenario.byzantine),
        ),
        messages=sum(sent.values()),
        lost=lost,
        frames_rejected=dict(sorted(wire.rejected.items())) if wire is not None else {},
    )
    emit({"type": "result", **result.to_json()})
    return result


def _tampered(m: PartialSum, field_type: type[Field]) -> PartialSum:
    """``m`` with 1 added to its first value."""
    values = m.values.array.astype(np.uint64)  # a copy
    values[0] = (int(values[0]) + 1) % field_type.MODULUS
    return m.model_copy(update={"values": Elements(values)})


def _deviate(kind: str, m: Message, p: RoundParams, state: State) -> list[tuple[Message, int]]:
    """What a Byzantine node sends instead of ``m``: (message, windows later) pairs.

    Spec: spec/12-transcripts.md#byzantine-nodes

    - ``equivocate`` (the coordinator): a final decision to an aggregator in the
      upper half of the round's aggregators names another set: the contributors
      without the last one, if that is still a final decision the noise covers,
      else the aggregators without the last one, if a quorum remains.
    - ``wrong-partial-sum``: 1 is added to the first value of each partial sum.
    - ``replay``: each message is sent a second time, one window later.
    - ``withhold``: nothing is sent to another node with an odd id.
    """
    if kind == "withhold":
        return [] if m.recipient != m.sender and m.recipient % 2 else [(m, 0)]
    if kind == "replay":
        return [(m, 0), (m, 1)]
    if kind == "wrong-partial-sum":
        return [(_tampered(m, p.field) if isinstance(m, PartialSum) else m, 0)]
    assert kind == "equivocate"
    upper = p.aggregators[len(p.aggregators) // 2 :]
    if not (isinstance(m, Decision) and m.final and m.role == "aggregator"
            and m.recipient in upper and isinstance(state, CoordinatorState)):  # fmt: skip
        return [(m, 0)]
    fewer = m.contributors[:-1]
    if len(fewer) >= p.smallest_set and p.source_dropouts(fewer) <= state.dropouts:
        return [(m.model_copy(update={"contributors": fewer}), 0)]
    if len(m.aggregators) - 1 >= p.quorum:
        return [(m.model_copy(update={"aggregators": m.aggregators[:-1]}), 0)]
    return [(m, 0)]


class _Wire:
    """The sealed channels of one simulated round: every node's channel and the frame attacker.

    Spec: spec/14-channels.md; spec/12-transcripts.md#frame-attacks

    The session is set up first, as a deployment does once per session:
    every node sends every other a key frame, and each opens the ones it
    receives (reported to ``on_channel`` as one ``"setup"``).
    """

    def __init__(self, scenario: Scenario, on_channel: ChannelObserver | None) -> None:
        assert scenario.channels is not None
        p = scenario.params
        self.params = p
        self.channels = scenario.channels
        self.suite = scenario.channels.suite
        self.on_channel = on_channel
        started = time_ns()
        self.session, self.keys = scenario.session()
        self.nodes = {node: NodeChannel(self.keys[node], self.session) for node in p.nodes}
        setup_bytes = 0
        for channel in self.nodes.values():
            for peer, frame in channel.key_frames(p.nodes).items():
                self.nodes[peer].accept(frame)
                setup_bytes += len(frame)
        roles = endpoints_roles(holders(p))
        #: The coordinator, when echoes and partial sums forward its signature.
        self.coordinator = p.coordinator if p.max_byzantine else None
        self.endpoints: dict[int, Endpoint] = {
            node: channel.endpoint(
                roles=roles.get(node, ()),
                round=p.round,
                field=p.field,
                coordinator=self.coordinator,
            )
            for node, channel in self.nodes.items()
        }
        #: The statement signature of every final decision sent, by its statement:
        #: what an echo or a partial sum answering it forwards.
        self.signatures: dict[bytes, bytes] = {}
        if on_channel is not None:
            on_channel("setup", setup_bytes, (time_ns() - started) / 1e9)
        self.rng = Xof(scenario.master, Tag("sim.frames"))
        # The attacker's own channel key and identity: neither is any node's.
        self.forger_key = Xof(scenario.master, Tag("sim.forger-key")).next_bytes(
            self.suite.key_size
        )
        self.forger = identity_key(derive_seed(scenario.master, Tag("sim.forger")))
        self.rejected: dict[str, int] = {}

    def to_json(self) -> dict[str, Any]:
        return {**self.session.to_json(), "tamper_frames": str(self.channels.tamper)}

    def note(self, m: Message) -> None:
        """Keep the signature of a final decision, for the echoes and sums that answer it."""
        if self.coordinator is not None and isinstance(m, Decision) and m.final:
            key = statement(m)
            if key not in self.signatures:
                self.signatures[key] = self.keys[m.sender].identity.sign(key)

    def forwarded(self, m: Message) -> bytes | None:
        """The decision signature an echo or a partial sum carries in this round, if any.

        A sender that answers a decision the coordinator never signed has no
        signature to forward: it sends 64 zero bytes, which its recipients reject.
        """
        if self.coordinator is None or not isinstance(m, Echo | PartialSum):
            return None
        decision = answered_decision(m, self.coordinator)
        return self.signatures.get(statement(decision), bytes(64))

    def seal(self, m: Message) -> bytes:
        """The sender seals ``m``: its binary form (``"encode"``), then the AEAD (``"seal"``)."""
        started = time_ns()
        data = plaintext(
            m, self.params.field, self.keys[m.sender].identity, forwarded=self.forwarded(m)
        )
        encoded = time_ns()
        frame = self.nodes[m.sender].seal_plaintext(m, data)
        if self.on_channel is not None:
            self.on_channel("encode", len(data), (encoded - started) / 1e9)
            self.on_channel("seal", len(frame), (time_ns() - encoded) / 1e9)
        return frame

    def open(self, frame: bytes, node: int) -> Message:
        """``node`` opens ``frame`` (``"open"``: every check of spec 14 but the
        message's binary form, which is ``"decode"``)."""
        at = self.endpoints[node]
        started = time_ns()
        decoded = 0
        try:
            header, data = open_ciphertext(frame, at)
            opening = time_ns()
            opened = read_plaintext(data, header, at)
            decoded = time_ns() - opening
            verify_opened(opened, at)
            return opened.message
        finally:
            if self.on_channel is not None:
                self.on_channel("decode", len(frame), decoded / 1e9)
                self.on_channel("open", len(frame), (time_ns() - started - decoded) / 1e9)

    def evidence(self, m: Message) -> dict[str, Any]:
        """What a send line records of the frame: its size, and a broadcast's statement."""
        forwarded = self.forwarded(m)
        size = frame_size(m, self.params.field, self.suite, forwarded=forwarded is not None)
        out: dict[str, Any] = {"frame_bytes": size}
        if m.kind in SIGNED_KINDS:
            out["statement_signature"] = self.keys[m.sender].identity.sign(statement(m)).hex()
        if forwarded is not None:
            out["decision_signature"] = forwarded.hex()
        return out

    def delay(self, window: int) -> int:
        return self.rng.uniform_int(window - 1) if window > 1 else 0

    def attacks(self, frame: bytes, m: Message) -> list[tuple[int, bytes, str]]:
        """The attacked copies the network injects for ``frame``: (node, bytes, attack)."""
        rate = self.channels.tamper
        if rate == 0 or not self.rng.bernoulli(rate.numerator, rate.denominator):
            return []
        attack = FRAME_ATTACKS[self.rng.uniform_int(len(FRAME_ATTACKS))]
        others = [n for n in self.params.nodes if n not in (m.sender, m.recipient)]
        if attack == "flip-bit":
            bad = bytearray(frame)
            bit = self.rng.uniform_int(8 * len(bad))
            bad[bit // 8] ^= 1 << (bit % 8)
            return [(m.recipient, bytes(bad), attack)]
        if attack == "swap-recipient" and others:
            # Readdressed to another node, which opens it under the sender's
            # channel key to itself: the wrong key, and the wrong header.
            other = others[self.rng.uniform_int(len(others))]
            bad = bytearray(frame)
            bad[HEADER_SIZE - 4 : HEADER_SIZE] = other.to_bytes(4, "little")
            return [(other, bytes(bad), attack)]
        if attack == "replay-stage" and not hasattr(m, "stage"):
            attack = "replay-round"  # an abort has no stage
        if attack in ("replay-round", "replay-stage", "replay-session"):
            return [(m.recipient, self._replay(m, attack), attack)]
        # forge-sender (or swap-recipient with no third node): a well-formed frame
        # to the recipient that claims another sender, sealed under a key that is
        # not that sender's channel key.
        claimed = others[self.rng.uniform_int(len(others))] if others else m.sender
        forged = m.model_copy(update={"sender": claimed})
        nonce = self.rng.next_bytes(NONCE_SIZE)
        forgery = seal_frame(
            forged, self.params.field, suite=self.suite, key=self.forger_key, nonce=nonce,
            identity=self.forger,
        )  # fmt: skip
        return [(m.recipient, forgery, "forge-sender")]

    def _replay(self, m: Message, attack: str) -> bytes:
        """A genuine frame of another round, stage or session, replayed into this one.

        Half the time it arrives as it was sealed (its header names the other
        context); half the time its header is rewritten to claim this one
        (and no longer matches what the AEAD authenticated). A frame of
        another stage is always rewritten: as sealed it would open (the stage
        is the machine's business, not the channel's) and carry a message its
        sender never sent, which no attacker without the channel key can make.
        """
        if attack == "replay-round":
            other = m.model_copy(update={"round": m.round + 1})
        elif attack == "replay-stage":
            other = m.model_copy(update={"stage": getattr(m, "stage", 0) + 1})
        else:
            session = derive_seed(as_seed(bytes.fromhex(m.session)), Tag("sim.other-session"))
            other = m.model_copy(update={"session": session.hex()})
        frame = self.nodes[other.sender].seal(other, self.params.field)
        if self.rng.bernoulli(1, 2) and attack != "replay-stage":
            return frame
        return FrameHeader.of(m, self.suite).encode() + frame[HEADER_SIZE:]


def canonical_line(line: Mapping[str, Any]) -> str:
    """One transcript line as canonical JSON: sorted keys, no spaces."""
    return json.dumps(line, sort_keys=True, separators=(",", ":"))


__all__ = [
    "BYZANTINE_KINDS",
    "FRAME_ATTACKS",
    "TRANSCRIPT_FORMAT",
    "ChannelObserver",
    "Channels",
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
