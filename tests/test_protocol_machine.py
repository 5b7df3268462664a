"""The role machines: the transition table, illegal events, and each MUST of section 9.

Spec: spec/09-protocol.md#state-machines

The machines are driven two ways. The simulator (:mod:`reference.sim.simulate`)
runs whole rounds, and every step it takes is recorded (``step`` wrapped,
not changed), which gives a corpus of real states in every phase and the
real messages each accepted. Tests then feed those states, and messages
derived from the recorded ones or drawn by Hypothesis, into
:func:`protocol.machine.step` directly.

Independent oracles: the standard-library parse of the spec's Mermaid
blocks; a pure-Python Lagrange interpolation for what receivers release;
set arithmetic on the recorded reports for the coordinator's decision.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, cast
from unittest import mock

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import reference.sim.simulate as simulate_module
from protocol.errors import InvalidMessage, LocalProtocolError, SdlError
from protocol.field import Field
from protocol.machine import (
    STATE_TYPES,
    TERMINAL,
    TRANSITIONS,
    AggregatorState,
    Event,
    Output,
    Phase,
    Receive,
    ReceiverState,
    Start,
    State,
    Timeout,
    Timer,
    event_kind,
    initial,
    mermaid,
    step,
)
from protocol.messages import (
    MESSAGE_TYPES,
    Abort,
    Decision,
    Echo,
    Message,
    PartialSum,
    Report,
    Role,
)
from protocol.params import RoundParams
from protocol.xof import Seed, as_seed
from reference.sim.simulate import Channels, Network, Scenario, simulate
from tests.oracles import lagrange_eval
from tests.strategies import element_strings, id_lists, messages, round_params

REPO = Path(__file__).resolve().parent.parent
SPEC_09 = REPO / "spec" / "09-protocol.md"

ROLES: tuple[Role, ...] = ("contributor", "aggregator", "coordinator", "receiver")
MESSAGE_KINDS: tuple[str, ...] = tuple(m.model_fields["kind"].default for m in MESSAGE_TYPES)
EVENT_KINDS: tuple[str, ...] = ("start", "timeout", *MESSAGE_KINDS)
KIND_TYPES: dict[str, type[Message]] = {
    m.model_fields["kind"].default: m  # type: ignore[misc]
    for m in MESSAGE_TYPES
}


def master(i: int) -> Seed:
    return as_seed(bytes([i]) * 32)


# ---------------------------------------------------------------- the recorded corpus


@dataclass(frozen=True)
class Step:
    """One successful ``step`` the simulator took."""

    before: State
    event: Event
    after: State
    outputs: tuple[Output, ...]


def record(scenario: Scenario) -> list[Step]:
    """Every successful step of a simulated round, in order (the simulator's ``step`` wrapped)."""
    log: list[Step] = []

    def recording(state: State, event: Event) -> tuple[State, tuple[Output, ...]]:
        new, out = step(state, event)
        log.append(Step(state, event, new, out))
        return new, out

    with mock.patch.object(simulate_module, "step", recording):
        simulate(scenario)
    return log


#: Every node contributes and aggregates; node 1 coordinates. D = 2 makes top-ups.
P_TOPUP = round_params(n=4, threshold=1, max_dropouts=2, dimension=2)
#: D = 0: any dropout aborts.
P_STRICT = round_params(n=4, threshold=1, max_dropouts=0)
#: t = 2, 4 aggregators: one redundant partial sum, enough to detect, not correct.
P_T2 = round_params(n=4, threshold=2, max_dropouts=1)
#: Node 1 is no contributor, node 5 no aggregator: some senders are unauthorized.
P_MIXED = round_params(
    n=5, threshold=1, max_dropouts=1, contributors=(2, 3, 4, 5), aggregators=(1, 2, 3, 4)
)

#: f = 1 Byzantine node, 5 aggregators (>= 3f + 1 and >= t + k + 2f), echo quorum Q = 4.
P_BYZ = round_params(
    n=5, threshold=1, max_dropouts=1, max_colluders=1, max_byzantine=1, dimension=2
)

#: Backup coordinators 2 then 3 (draw order, not sorted), f = 0.
P_FO = round_params(n=5, threshold=1, max_dropouts=1, dimension=2, backups=(2, 3))

LOSSY = Network(drop=Fraction(1, 10), late=Fraction(1, 10), duplicate=Fraction(1, 5))

CORPUS_SCENARIOS: tuple[Scenario, ...] = (
    Scenario(P_TOPUP, master(1)),
    Scenario(P_TOPUP, master(2), crashes={4: 0}),
    Scenario(P_TOPUP, master(3), crashes={4: 2}),
    Scenario(P_TOPUP, master(4), crashes={1: 0}),
    Scenario(P_TOPUP, master(5), crashes={3: 0, 4: 0}),
    Scenario(P_TOPUP, master(6), crashes={2: 0, 3: 0, 4: 0}),
    Scenario(P_TOPUP, master(7), crashes={1: 14}),
    Scenario(P_STRICT, master(8), crashes={3: 0}),
    Scenario(P_T2, master(9), tamper=(2,)),
    Scenario(P_T2, master(10), crashes={3: 0}),
    Scenario(P_MIXED, master(11)),
    Scenario(P_MIXED, master(12), crashes={5: 1}),
    *(Scenario(P_TOPUP, master(20 + i), network=LOSSY) for i in range(6)),
    # f = 1: the echo exchange, over sealed channels (echoes forward the decision's signature).
    Scenario(P_BYZ, master(30), channels=Channels(), colluders=(2,)),
    Scenario(P_BYZ, master(31), channels=Channels(), colluders=(1,), byzantine={1: "equivocate"}),
    Scenario(P_BYZ, master(32), channels=Channels(), colluders=(5,), crashes={5: 0}),
    # Nodes 4 and 5 crash after their shares and reports: 3 echoes < Q = 4.
    Scenario(P_BYZ, master(33), channels=Channels(), colluders=(2,), crashes={4: 6, 5: 6}),
    *(
        Scenario(P_BYZ, master(34 + i), channels=Channels(), colluders=(3,), network=LOSSY)
        for i in range(3)
    ),
    # Failover: nodes 2 and 3 back the coordinator, node 1, up (spec 09, failover).
    Scenario(P_FO, master(40)),
    Scenario(P_FO, master(41), crashes={1: 0}),
    Scenario(P_FO, master(42), crashes={1: 0, 2: 0}),
    # Node 5 never shares: a top-up decision, which reaches only backup 2 before node 1 dies.
    Scenario(P_FO, master(43), crashes={5: 0, 1: 7}),
    # Two dropouts > D = 1: the coordinator aborts, and the backups with it.
    Scenario(P_FO, master(44), crashes={4: 0, 5: 0}),
    # The final decision reaches the backups, the contributors and one aggregator.
    Scenario(P_FO, master(45), crashes={1: 14}),
    *(Scenario(P_FO, master(46 + i), network=LOSSY, crashes={1: 3 * i}) for i in range(4)),
)


@functools.cache
def corpus() -> tuple[Step, ...]:
    """The recorded steps of every corpus scenario, plus late starters.

    A *late starter* is a machine that receives messages before its own
    ``Start`` (its node was slow to boot): every message any machine
    accepted is also fed to a fresh ``IDLE`` machine at the same address.
    A *slow aggregator* gets its stage's decision (or an abort) before it
    reported: every decision, echo and abort an aggregator accepted is also fed to the same
    aggregator's earlier ``COLLECTING`` states of that run. An *equivocating coordinator*
    sends an aggregator that answered a final decision another one, or an abort: in a round
    with f >= 1, every final decision any aggregator accepted, readdressed, and an abort are
    fed to every ``ECHOED`` state.
    """
    steps: list[Step] = []
    for scenario in CORPUS_SCENARIOS:
        run = record(scenario)
        steps += run
        p = scenario.params
        if p.max_byzantine:
            finals = [
                s.event.message for s in run
                if isinstance(s.event, Receive) and isinstance(s.event.message, Decision)
                and s.event.message.final
            ]  # fmt: skip
            for s in run:
                if s.after.role != "aggregator" or s.after.phase is not Phase.ECHOED:
                    continue
                to = s.after.node
                abort = Abort(**header(p, sender=p.coordinator, recipient=to, role="aggregator"),
                              reason="no-decision")  # fmt: skip
                for m in [*(d.model_copy(update={"recipient": to}) for d in finals), abort]:
                    try:
                        new, out = step(s.after, Receive(m))
                    except SdlError:
                        continue
                    steps.append(Step(s.after, Receive(m), new, out))
        for s in run:
            if not (
                isinstance(s.event, Receive)
                and isinstance(s.event.message, Decision | Abort | Echo)
                and s.before.role == "aggregator"
            ):
                continue
            for earlier in run:
                if (earlier.after.role, earlier.after.node) == (
                    s.before.role,
                    s.before.node,
                ) and earlier.after.phase is Phase.COLLECTING:
                    try:
                        new, out = step(earlier.after, s.event)
                    except SdlError:
                        continue
                    steps.append(Step(earlier.after, s.event, new, out))
    late: list[Step] = []
    for s in steps:
        if isinstance(s.event, Receive):
            fresh = initial(s.before.params, node=s.before.node, role=s.before.role)
            try:
                new, out = step(fresh, s.event)
            except SdlError:
                continue
            late.append(Step(fresh, s.event, new, out))
    return tuple(steps + late)


@functools.cache
def states_by_phase() -> dict[tuple[Role, Phase], tuple[State, ...]]:
    """Up to eight distinct recorded states per (role, phase)."""
    out: dict[tuple[Role, Phase], list[State]] = defaultdict(list)
    for s in corpus():
        for state in (s.before, s.after):
            bucket = out[(state.role, state.phase)]
            if len(bucket) < 8 and all(state is not b and state != b for b in bucket):
                bucket.append(state)
    return {key: tuple(v) for key, v in out.items()}


@functools.cache
def all_states() -> tuple[State, ...]:
    return tuple(s for group in states_by_phase().values() for s in group)


def accepted_messages(p: RoundParams) -> list[Message]:
    """Every message some machine of a round with parameters ``p`` accepted."""
    return [
        s.event.message for s in corpus() if isinstance(s.event, Receive) and s.before.params is p
    ]


# ---------------------------------------------------------------- helpers


def header(p: RoundParams, *, sender: int, recipient: int, role: Role) -> dict[str, Any]:
    return {
        "session": p.session.hex(),
        "round": p.round,
        "sender": sender,
        "recipient": recipient,
        "role": role,
    }


def rebuilt(m: Message, **changes: object) -> Message:
    """``m`` with ``changes``, validated again by its model (a peer could send it)."""
    return type(m)(**{**m.model_dump(), **changes})


def message_for(state: State, kind: str) -> Message:
    """A well-formed message of ``kind`` for ``state``'s node, from a node allowed to send it.

    It is addressed to the state's role if the kind may go there, else to the
    first role the kind may go to.
    """
    p = state.params
    model = KIND_TYPES[kind]
    role = cast(Role, state.role if state.role in model.ROLES else model.ROLES[0])
    senders = {
        "share": p.contributors,
        "report": p.aggregators,
        "decision": (p.coordinator,),
        "echo": p.aggregators,
        "partial_sum": p.aggregators,
        "abort": (p.coordinator,),
    }[kind]
    h = header(p, sender=senders[-1], recipient=state.node, role=role)
    zeros = tuple(["0"] * p.share_length)
    bodies: dict[str, dict[str, Any]] = {
        "share": {"stage": state.stage, "values": zeros},
        "report": {"stage": state.stage, "holds": p.contributors},
        "decision": {
            "stage": state.stage,
            "contributors": p.contributors,
            "aggregators": p.aggregators,
            "final": True,
        },
        "partial_sum": {
            "stage": 0,
            "contributors": p.contributors,
            "aggregators": p.aggregators,
            "values": zeros,
        },
        "echo": {"stage": 0, "contributors": p.contributors, "aggregators": p.aggregators},
        "abort": {"reason": "no-decision"},
    }
    body = bodies[kind]
    return model(**h, **body)


def own_events(state: State) -> list[Event]:
    """The node's own events a driver could produce: starts and every timer."""
    p = state.params
    update = p.field.zeros(p.dimension)
    return [
        Start(),
        Start(update=update, seed=master(99)),
        Timeout(None),
        Timeout(0),
        Timeout(1),
        Timeout(state.stage),
        Timeout(state.stage + 1),
    ]


def assert_refused(state: State, event: Event, error: type[SdlError]) -> None:
    """``step`` raises ``error`` and ``state`` is exactly as before (deep equality)."""
    snapshot = copy.deepcopy(state)
    with pytest.raises(error):
        step(state, event)
    assert state == snapshot


def lagrange_at_zero(p: int, points: Sequence[int], ys: Sequence[Sequence[int]]) -> list[int]:
    """The interpolating polynomial through ``(points, ys)`` at 0, per coordinate (ints)."""
    return [lagrange_eval(p, points, column, 0) for column in zip(*ys, strict=True)]


# ---------------------------------------------------------------- the table


def _reachable(role: Role) -> set[Phase]:
    seen = {Phase.IDLE}
    frontier = [Phase.IDLE]
    while frontier:
        src = frontier.pop()
        for (phase, _), targets in TRANSITIONS[role].items():
            if phase is src:
                for dst in targets - seen:
                    seen.add(dst)
                    frontier.append(dst)
    return seen


def test_transition_table_covers_every_handler() -> None:
    """Every table entry has a handler that really takes that event in that phase.

    For each (role, phase, kind) in ``TRANSITIONS`` some recorded step took
    exactly that event in that phase without raising (so a handler exists
    and runs), and every recorded step landed in a phase the entry allows.
    Terminal phases have no outgoing entry; every phase the table names for
    a role is reachable from ``IDLE``, and some terminal phase is.
    """
    assert set(TRANSITIONS) == set(ROLES) == set(STATE_TYPES)
    exercised: dict[tuple[Role, Phase, str], set[Phase]] = defaultdict(set)
    for s in corpus():
        key = (s.before.role, s.before.phase, event_kind(s.event))
        exercised[key].add(s.after.phase)
    for role, table in TRANSITIONS.items():
        named = {ph for (ph, _), targets in table.items() for ph in {ph, *targets}}
        named |= {dst for targets in table.values() for dst in targets}
        assert _reachable(role) == named, (role, named - _reachable(role))
        assert named & TERMINAL, f"the {role} can never finish"
        for (phase, kind), targets in table.items():
            assert phase not in TERMINAL, (role, phase, kind)
            assert kind in EVENT_KINDS, (role, kind)
            assert targets, (role, phase, kind)
            observed = exercised.get((role, phase, kind))
            assert observed, f"no handler ran for ({role}, {phase.value}, {kind})"
            assert observed <= targets, (role, phase, kind, observed - targets)
    for (role, phase, kind), observed in exercised.items():
        assert (phase, kind) in TRANSITIONS[role], (role, phase, kind, observed)


def test_illegal_event_raises_and_state_is_unchanged() -> None:
    """An event its phase does not accept raises, and leaves the state exactly as it was.

    For every role, every phase reached in the corpus and every event kind
    absent from that phase's table row: a ``Start`` or ``Timeout`` raises
    ``LocalProtocolError``, and a message (well formed, correctly addressed,
    from a node allowed to send that kind) raises ``InvalidMessage``.
    """
    checked = 0
    for (role, phase), states in states_by_phase().items():
        assert phase in _reachable(role)
        for kind in EVENT_KINDS:
            if (phase, kind) in TRANSITIONS[role]:
                continue
            for state in states:
                if kind == "start":
                    for e in own_events(state)[:2]:
                        assert_refused(state, e, LocalProtocolError)
                elif kind == "timeout":
                    for e in own_events(state)[2:]:
                        assert_refused(state, e, LocalProtocolError)
                else:
                    assert_refused(state, Receive(message_for(state, kind)), InvalidMessage)
                checked += 1
    # Every role and every phase of its table was visited.
    visited = {key for key in states_by_phase()}
    for role in ROLES:
        assert {(role, ph) for ph in _reachable(role)} <= visited, role
    assert checked > 50


@given(st.data())
def test_terminal_states_cannot_be_left(data: st.DataObject) -> None:
    """A machine in ``DONE``, ``RELEASED`` or ``ABORTED`` refuses every event, unchanged.

    Events: its own starts and timers, every message any machine of its
    round accepted (re-addressed to it when its model allows), and
    Hypothesis-drawn messages addressed to it.
    """
    terminal = [s for s in all_states() if s.terminal]
    assert {s.phase for s in terminal} == set(TERMINAL)
    state = data.draw(st.sampled_from(terminal))
    assert not any(ph is state.phase for ph, _ in TRANSITIONS[state.role])
    for e in own_events(state):
        assert_refused(state, e, LocalProtocolError)
    accepted = accepted_messages(state.params)
    for m in accepted[:: max(1, len(accepted) // 40)]:
        readdressed = m
        if state.role in type(m).ROLES:
            readdressed = rebuilt(m, recipient=state.node, role=state.role)
        assert_refused(state, Receive(readdressed), InvalidMessage)
    drawn = data.draw(fuzz_messages(state, addressed=True))
    assert_refused(state, Receive(drawn), InvalidMessage)


_MERMAID_BLOCK = r"<!-- generated: mermaid {role} -->[ \t]*\n```mermaid\n(.*?)```"


def test_mermaid_diagrams_in_spec_are_current() -> None:
    """spec/09-protocol.md holds, per role, the diagram :func:`mermaid` generates, verbatim.

    Each role's block is ``<!-- generated: mermaid ROLE -->`` followed on
    the next line by a ```` ```mermaid ```` fence whose content equals
    ``mermaid(ROLE)`` exactly; the marker appears exactly once per role.
    """
    if not SPEC_09.is_file():
        pytest.fail(f"{SPEC_09.relative_to(REPO)} is missing: the state diagrams must be committed")
    text = SPEC_09.read_text(encoding="utf-8")
    for role in ROLES:
        marker = f"<!-- generated: mermaid {role} -->"
        count = text.count(marker)
        assert count == 1, f"{marker} must appear exactly once; found {count}"
        found = re.search(_MERMAID_BLOCK.format(role=re.escape(role)), text, flags=re.DOTALL)
        assert found is not None, f"{marker} is not followed by a ```mermaid block"
        assert found.group(1) == mermaid(role), (
            f"the {role} diagram in spec/09-protocol.md is stale; paste mermaid({role!r})"
        )


def test_mermaid_is_generated_from_the_table() -> None:
    """Each diagram edge is a table entry and each table entry an edge (parsed back)."""
    for role in ROLES:
        edges: set[tuple[str, str, str]] = set()
        for line in mermaid(role).splitlines()[1:]:
            found = re.fullmatch(r"    (\S+) --> (\S+)(?:: (.*))?", line)
            assert found is not None, line
            src, dst, kinds = found.groups()
            for kind in (kinds or "").split(", ") if kinds else []:
                edges.add((src, dst, kind))
        table = {
            (ph.value, dst.value, kind)
            for (ph, kind), targets in TRANSITIONS[role].items()
            for dst in targets
        }
        assert edges == table, role


# ---------------------------------------------------------------- fuzzing


def fuzz_messages(state: State, *, addressed: bool = False) -> st.SearchStrategy[Message]:
    """Messages of every kind with arbitrary fields, biased towards ``state``'s round.

    Session and round are right or wrong, ids range over the round's nodes
    and a stranger, stages over the first few, values over right-length
    vectors of valid elements and arbitrary ones. With ``addressed``, the
    message is for ``state``'s node and role whenever its kind allows.
    """
    p = state.params
    ids = st.integers(1, len(p.nodes) + 1)
    valid = st.integers(0, p.field.MODULUS - 1).map(str)
    strategy = messages(
        sessions=st.sampled_from([p.session.hex(), "00" * 32]),
        rounds=st.sampled_from([p.round, p.round + 1]),
        ids=ids,
        stages=st.integers(0, 3),
        values=st.one_of(valid, element_strings),
        max_values=p.share_length + 1,
    )
    if not addressed:
        return strategy

    def address(m: Message) -> Message:
        if state.role in type(m).ROLES:
            return rebuilt(m, recipient=state.node, role=state.role)
        return rebuilt(m, recipient=state.node)

    return strategy.map(address)


@st.composite
def own_event(draw: st.DrawFn, state: State) -> Event:
    p = state.params
    if draw(st.booleans()):
        return Timeout(draw(st.one_of(st.none(), st.integers(-1, 5))))
    sizes = [p.dimension, p.dimension + 1]
    update = draw(st.sampled_from([None, *(p.field.zeros(size) for size in sizes)]))
    seed = draw(st.sampled_from([None, master(7), b"short"]))
    return Start(update=update, seed=cast(Seed | None, seed))


@given(st.data())
def test_fuzzed_messages_raise_only_typed_errors_and_leave_state_unchanged(
    data: st.DataObject,
) -> None:
    """Arbitrary messages and own events, in every phase, only ever raise ``SdlError``s.

    Whatever comes in, ``step`` either returns a state in a phase the table
    allows (with messages and timers only) or raises an ``SdlError``; in
    both cases the input state is unchanged (deep equality): ``step`` is
    pure. Anything else escaping (``KeyError``, ``AssertionError``, ...)
    fails the test.
    """
    state = data.draw(st.sampled_from(all_states()))
    events = data.draw(
        st.lists(
            st.one_of(
                fuzz_messages(state).map(Receive),
                fuzz_messages(state, addressed=True).map(Receive),
                own_event(state),
            ),
            min_size=1,
            max_size=4,
        )
    )
    for event in events:
        snapshot = copy.deepcopy(state)
        try:
            new, outputs = step(state, event)
        except SdlError:
            assert state == snapshot
            continue
        assert state == snapshot
        allowed = TRANSITIONS[state.role][(state.phase, event_kind(event))]
        assert new.phase in allowed
        assert all(isinstance(o, (Timer, *MESSAGE_TYPES)) for o in outputs)
        state = new


# ---------------------------------------------------------------- envelopes


def _first_accepted(p: RoundParams, kind: str, role: Role) -> Step:
    for s in corpus():
        if (
            isinstance(s.event, Receive)
            and s.before.params is p
            and s.event.message.kind == kind
            and s.before.role == role
            and s.before.phase is not Phase.IDLE
        ):
            return s
    raise AssertionError(f"the corpus has no accepted {kind} for a {role}")


def test_out_of_round_misaddressed_and_unauthorized_messages_are_rejected() -> None:
    """A message accepted as sent is refused once its envelope is wrong.

    For one accepted message of every kind: another session, another
    round, another recipient node, another recipient role (when the kind
    allows one), and a sender that may not send that kind (a non-contributor
    sending a share, a non-aggregator a report or partial sum, a
    non-coordinator a decision or abort) each raise ``InvalidMessage`` and
    leave the state unchanged. The unmodified message is accepted.
    """
    p = P_MIXED
    unauthorized = {"share": 1, "report": 5, "partial_sum": 5, "decision": 2, "abort": 3}
    cases: list[tuple[str, Role]] = [
        ("share", "aggregator"),
        ("report", "coordinator"),
        ("decision", "contributor"),
        ("decision", "aggregator"),
        ("partial_sum", "receiver"),
    ]
    for kind, role in cases:
        s = _first_accepted(p, kind, role)
        assert isinstance(s.event, Receive)
        m = s.event.message
        new, _ = step(s.before, s.event)  # positive control: accepted as sent
        assert new == s.after
        other_node = next(i for i in p.nodes if i != m.recipient)
        variants: list[Message] = [
            rebuilt(m, session="ff" * 32),
            rebuilt(m, round=p.round + 1),
            rebuilt(m, recipient=other_node),
            rebuilt(m, sender=unauthorized[kind]),
        ]
        variants += [rebuilt(m, role=r) for r in type(m).ROLES if r != role]
        for bad in variants:
            assert_refused(s.before, Receive(bad), InvalidMessage)
    # Aborts: only the coordinator may end the round.
    receiver = initial(p, node=3, role="receiver")
    receiver, _ = step(receiver, Start())
    abort = Abort(
        **header(p, sender=p.coordinator, recipient=3, role="receiver"),
        reason="too-few-aggregators",
    )
    assert step(receiver, Receive(abort))[0].phase is Phase.ABORTED
    assert_refused(receiver, Receive(rebuilt(abort, sender=unauthorized["abort"])), InvalidMessage)
    assert_refused(receiver, Receive(rebuilt(abort, round=1)), InvalidMessage)


def test_duplicate_and_late_messages_are_rejected() -> None:
    """A message already taken, or one that arrives after its stage closed, is refused.

    Duplicates: for every message any machine of the corpus accepted, the
    same message delivered again to the resulting state raises
    ``InvalidMessage`` (whatever the kind, whether the state moved on or
    not). Late: a stage-0 share reaching an aggregator that already
    reported stage 0, a report for a stage the coordinator already decided,
    a decision older than the contributor's stage, and a partial sum after
    the receiver released, are each refused, state unchanged.
    """
    duplicates = 0
    for s in corpus():
        if isinstance(s.event, Receive):
            assert_refused(s.after, s.event, InvalidMessage)
            duplicates += 1
    assert duplicates > 100

    # Late: the fault-free round of P_TOPUP gives the genuine messages;
    # the round where node 4 dies after two shares gives machines that moved on without them.
    clean = record(Scenario(P_TOPUP, master(3)))
    crashed = record(Scenario(P_TOPUP, master(3), crashes={4: 2}))
    late_share = next(
        s.event.message
        for s in clean
        if isinstance(s.event, Receive)
        and s.event.message.kind == "share"
        and s.event.message.sender == 4
        and s.event.message.recipient == 3
    )
    reported = next(
        s.after
        for s in crashed
        if s.after.role == "aggregator" and s.after.node == 3 and s.after.phase is Phase.REPORTED
    )
    assert 4 not in cast(AggregatorState, reported).delivered
    assert_refused(reported, Receive(late_share), InvalidMessage)

    # The coordinator moved to stage 1 (a top-up); a stage-0 report is late.
    moved = next(s for s in crashed if s.before.role == "coordinator" and s.after.stage == 1)
    stage0_report = next(
        s.event.message
        for s in crashed
        if isinstance(s.event, Receive) and s.event.message.kind == "report"
    )
    assert_refused(moved.after, Receive(stage0_report), InvalidMessage)
    # A contributor at stage 1 refuses the stage-0 decision again.
    topped = next(s for s in crashed if s.before.role == "contributor" and s.after.stage == 1)
    assert isinstance(topped.event, Receive)
    assert_refused(topped.after, Receive(topped.event.message), InvalidMessage)
    # A released receiver refuses any further partial sum.
    released = next(s for s in clean if s.after.phase is Phase.RELEASED)
    assert isinstance(released.event, Receive)
    m = released.event.message
    other = next(j for j in P_TOPUP.aggregators if j != m.sender)
    assert_refused(released.after, Receive(rebuilt(m, sender=other)), InvalidMessage)


# ---------------------------------------------------------------- isolation


def _aggregator_holding_everything(p: RoundParams, seed: Seed) -> tuple[AggregatorState, int]:
    """The aggregator at node 2 after it reported stage 0, holding every share."""
    for s in record(Scenario(p, seed)):
        if s.after.role == "aggregator" and s.after.node == 2 and s.after.phase is Phase.REPORTED:
            return cast(AggregatorState, s.after), 2
    raise AssertionError("aggregator 2 never reported")


@given(
    n=st.integers(3, 5),
    min_contributors=st.integers(2, 5),
    data=st.data(),
)
def test_aggregator_refuses_a_contributor_set_below_the_minimum(
    n: int, min_contributors: int, data: st.DataObject
) -> None:
    """An aggregator told to release over fewer than ``min_contributors`` aborts and sends nothing.

    Spec: spec/09-protocol.md (isolation hazard). With ``D = n − 1`` the
    dropout bound never bites, so the size of ``U`` alone decides: below
    the minimum the aggregator ends ``ABORTED`` with
    ``too-few-contributors`` and sends no partial sum; at or above it, it
    sends one partial sum per node, equal to the sum of the shares it
    received from ``U`` (summed here from the recorded shares). A receiver
    likewise refuses a partial sum over a set below the minimum.
    """
    assume(min_contributors <= n)
    p = round_params(
        n=n, threshold=1, max_dropouts=n - 1, min_contributors=min_contributors, dimension=2
    )
    state, node = _aggregator_holding_everything(p, master(n * 10 + min_contributors))
    u = tuple(sorted(data.draw(st.sets(st.sampled_from(p.contributors), min_size=1))))
    final = data.draw(st.booleans(), label="final")
    decision = Decision(
        **header(p, sender=p.coordinator, recipient=node, role="aggregator"),
        stage=0,
        contributors=u,
        aggregators=p.aggregators,
        final=final,
    )
    snapshot = copy.deepcopy(state)
    if len(u) >= min_contributors and final != (u == p.contributors):
        # Above the minimum, a decision must still be final exactly when
        # nobody dropped at this stage.
        assert_refused(state, Receive(decision), InvalidMessage)
        return
    new, outputs = step(state, Receive(decision))
    assert state == snapshot
    if len(u) < min_contributors:
        # Isolation is refused whatever else the decision says.
        assert new.phase is Phase.ABORTED and new.reason == "too-few-contributors"
        assert outputs == ()
    elif not final:
        # A top-up stage: the aggregator now expects exactly U, and sends nothing yet.
        assert new.phase is Phase.COLLECTING and new.stage == 1
        assert [o for o in outputs if not isinstance(o, Timer)] == []
    else:
        assert new.phase is Phase.DONE
        sums = [o for o in outputs if isinstance(o, PartialSum)]
        assert sorted(o.recipient for o in sums) == list(p.nodes)
        shares = {
            s.event.message.sender: s.event.message.values
            for s in record(Scenario(p, master(n * 10 + min_contributors)))
            if isinstance(s.event, Receive)
            and s.event.message.kind == "share"
            and s.event.message.recipient == node
        }
        expected = [
            sum(int(shares[i][c]) for i in u) % p.field.MODULUS for c in range(p.share_length)
        ]
        for o in sums:
            assert [int(v) for v in o.values] == expected
            assert o.contributors == u
    receiver, _ = step(initial(p, node=1, role="receiver"), Start())
    partial = PartialSum(
        **header(p, sender=2, recipient=1, role="receiver"),
        stage=0,
        contributors=u,
        aggregators=p.aggregators,
        values=tuple(["0"] * p.share_length),
    )
    if len(u) < p.smallest_set:
        assert_refused(receiver, Receive(partial), InvalidMessage)


# ---------------------------------------------------------------- receivers


@functools.cache
def _genuine_partials() -> tuple[ReceiverState, tuple[PartialSum, ...], Field]:
    """A receiver just started, the partial sums it got in a clean round, and what it released."""
    steps = record(Scenario(P_TOPUP, master(40)))
    partials = tuple(
        s.event.message
        for s in steps
        if isinstance(s.event, Receive)
        and isinstance(s.event.message, PartialSum)
        and s.event.message.recipient == 2
    )
    started = next(
        s.after
        for s in steps
        if s.after.role == "receiver" and s.after.node == 2 and s.before.phase is Phase.IDLE
    )
    result = next(
        s.after
        for s in steps
        if s.after.role == "receiver" and s.after.node == 2 and s.after.phase is Phase.RELEASED
    )
    assert isinstance(result, ReceiverState) and result.result is not None
    return cast(ReceiverState, started), partials, result.result


@st.composite
def _forged(draw: st.DrawFn, genuine: PartialSum) -> PartialSum:
    """``genuine`` with another stage, contributor set or aggregator set (still well formed)."""
    p = P_TOPUP
    what = draw(st.sampled_from(["stage", "contributors", "aggregators"]))
    if what == "stage":
        return cast(PartialSum, rebuilt(genuine, stage=draw(st.integers(1, 2))))
    if what == "contributors":
        u = draw(id_lists(st.sampled_from(p.contributors), min_size=p.smallest_set))
        assume(u != genuine.contributors)
        return cast(PartialSum, rebuilt(genuine, contributors=u))
    a = draw(id_lists(st.sampled_from(p.aggregators), min_size=p.quorum))
    assume(a != genuine.aggregators and genuine.sender in a)
    return cast(PartialSum, rebuilt(genuine, aggregators=a))


@given(st.data())
def test_receiver_never_combines_partial_sums_over_different_sets(data: st.DataObject) -> None:
    """Partial sums covering different (stage, U, A) never meet in one reconstruction.

    Each aggregator sends its genuine partial sum or a forged one (another
    stage, contributor set or aggregator set), delivered in any order. Every
    sum the receiver accepts covers what the first accepted one covered;
    every other is refused with ``InvalidMessage``, state unchanged. If it
    releases, the value is the interpolation at 0 of exactly the accepted
    sums (pure-Python Lagrange), and it is the clean round's release when
    they are all genuine.
    """
    state, genuine, clean_result = _genuine_partials()
    sent = [data.draw(st.one_of(st.just(g), _forged(g))) for g in genuine]
    order = data.draw(st.permutations(sent))
    accepted: list[PartialSum] = []
    for m in order:
        if state.terminal:
            break
        snapshot = copy.deepcopy(state)
        try:
            state = cast(ReceiverState, step(state, Receive(m))[0])
        except InvalidMessage:
            assert state == snapshot
            continue
        accepted.append(m)
        covers = {(a.stage, a.contributors, a.aggregators) for a in accepted}
        assert len(covers) == 1 and state.covers in covers
    if not state.terminal:
        state = cast(ReceiverState, step(state, Timeout(None))[0])
    if state.phase is Phase.RELEASED:
        assert state.result is not None
        modulus = P_TOPUP.field.MODULUS
        points = [m.sender for m in accepted]
        ys = [[int(v) for v in m.values] for m in accepted]
        assert state.result.to_ints() == lagrange_at_zero(
            modulus, points[: P_TOPUP.quorum], ys[: P_TOPUP.quorum]
        )
        if all(m in genuine for m in accepted):
            assert state.result == clean_result
    else:
        assert state.phase is Phase.ABORTED
        assert len(accepted) < P_TOPUP.quorum or state.reason == "inconsistent-partial-sums"


# ---------------------------------------------------------------- the coordinator


@st.composite
def _coordinator_events(draw: st.DrawFn, p: RoundParams) -> list[Event]:
    """Reports (from any aggregator, for stages 0..2, holding any set) and timeouts."""
    events: list[Event] = []
    for _ in range(draw(st.integers(1, 14))):
        if draw(st.integers(0, 3)) == 0:
            events.append(Timeout(draw(st.one_of(st.none(), st.integers(0, 2)))))
            continue
        holds = draw(id_lists(st.sampled_from(p.contributors)))
        events.append(
            Receive(
                Report(
                    **header(
                        p,
                        sender=draw(st.sampled_from(p.aggregators)),
                        recipient=p.coordinator,
                        role="coordinator",
                    ),
                    stage=draw(st.integers(0, 2)),
                    holds=holds,
                )
            )
        )
    return events


@given(st.data())
def test_coordinator_decides_at_most_once_per_round(data: st.DataObject) -> None:
    """Whatever reports and timers arrive, the coordinator decides each stage once, finally once.

    Over any sequence of reports (duplicates, wrong stages, any holdings)
    and timeouts: each (stage, recipient) gets at most one decision, at most
    one decision batch is final, stages only increase, nothing is decided
    after a final decision or an abort, and an abort is sent at most once.
    Each decision's ``U`` is the intersection of the stage's accepted
    reports with the stage's expected set, and ``A`` is their senders
    (recomputed here from the accepted reports).
    """
    p = round_params(n=5, threshold=1, max_dropouts=2, min_contributors=2)
    state: State = step(initial(p, node=p.coordinator, role="coordinator"), Start())[0]
    decisions: Counter[tuple[int, int, str]] = Counter()
    finals: set[int] = set()
    aborts = 0
    stages: list[int] = []
    expected = set(p.contributors)
    reports: dict[int, frozenset[int]] = {}
    for event in data.draw(_coordinator_events(p)):
        try:
            state, outputs = step(state, event)
        except SdlError:
            continue
        if isinstance(event, Receive):
            assert isinstance(event.message, Report)
            reports[event.message.sender] = frozenset(event.message.holds)
        sent = [o for o in outputs if isinstance(o, Decision)]
        aborts += sum(isinstance(o, Abort) for o in outputs) > 0
        if sent:
            assert not finals and aborts == 0
            u = set(expected)
            for h in reports.values():
                u &= h
            for d in sent:
                decisions[(d.stage, d.recipient, d.role)] += 1
                assert d.contributors == tuple(sorted(u))
                assert d.aggregators == tuple(sorted(reports))
            stage = sent[0].stage
            assert not stages or stage > stages[-1]
            stages.append(stage)
            if sent[0].final:
                finals.add(stage)
            expected, reports = u, {}
    assert all(count == 1 for count in decisions.values())
    assert len(finals) <= 1 and aborts <= 1
    if state.terminal:
        for e in [Timeout(None), Timeout(state.stage)]:
            assert_refused(state, e, LocalProtocolError)


def _iter_decisions(steps: Sequence[Step]) -> Iterator[Decision]:
    for s in steps:
        for o in s.outputs:
            if isinstance(o, Decision):
                yield o


def test_coordinator_decides_at_most_once_in_every_corpus_round() -> None:
    """In every recorded round, each (stage, recipient) got at most one decision, one final."""
    for scenario in CORPUS_SCENARIOS[:12]:
        decided = list(_iter_decisions(record(scenario)))
        keys = Counter((d.stage, d.recipient, d.role) for d in decided)
        assert all(v == 1 for v in keys.values())
        assert len({d.stage for d in decided if d.final}) <= 1


def test_contributor_refuses_a_decision_naming_strangers() -> None:
    """A decision listing a node outside the round's contributors is refused unchanged.

    Spec: spec/09-protocol.md#contributor. Otherwise the contributor would
    count too few dropouts and draw too small a top-up.
    """
    p = round_params(n=4, contributors=(1, 2, 3), max_dropouts=1, dimension=2)
    state, _ = step(initial(p, node=1, role="contributor"),
                    Start(update=p.field.zeros(2), seed=master(1)))  # fmt: skip
    assert state.phase is Phase.SHARED
    for listed in ((1, 2, 4), (1, 4)):
        decision = Decision(
            **header(p, sender=p.coordinator, recipient=1, role="contributor"),
            stage=0, contributors=listed, aggregators=p.aggregators, final=False,
        )  # fmt: skip
        assert_refused(state, Receive(decision), InvalidMessage)


def test_noise_that_does_not_fit_the_field_is_a_local_error() -> None:
    """A noise plan too large for the field is a typed local error, not a crash.

    Spec: spec/09-protocol.md#contributor. In GF(13), Skellam noise of
    variance 10^6 cannot be held as a signed value.
    """
    from protocol.field import field_for_modulus  # noqa: PLC0415

    p = round_params(n=3, field=field_for_modulus(13), target=Fraction(10**6), dimension=4)
    idle = initial(p, node=1, role="contributor")
    assert_refused(idle, Start(update=p.field.zeros(4), seed=master(2)), LocalProtocolError)


def test_state_and_event_json_forms_round_trip() -> None:
    """Every state, event and output of the recorded rounds survives its JSON form.

    Spec: spec/09-protocol.md#state-encoding. The forms go through real JSON
    text, so nothing relies on Python objects surviving a dict.
    """
    from protocol.machine import (  # noqa: PLC0415
        event_from_json,
        event_to_json,
        output_to_json,
        state_from_json,
        state_to_json,
    )

    steps = corpus()
    assert steps
    for s in steps:
        p = s.before.params
        for state in (s.before, s.after):
            text = json.dumps(state_to_json(state))
            assert state_from_json(p, json.loads(text)) == state
        assert event_from_json(p, json.loads(json.dumps(event_to_json(s.event)))) == s.event
        for out in s.outputs:
            obj = json.loads(json.dumps(output_to_json(out)))
            assert ("timer" in obj) == isinstance(out, Timer)
    # Malformed forms are refused with a typed error naming the problem.
    state = steps[0].before
    good = state_to_json(state)
    for bad, why in (
        ({**good, "phase": "sleeping"}, "phase"),
        ({**good, "extra": 1}, "unexpected"),
        ({**good, "role": "auditor"}, "role"),
        ({k: v for k, v in good.items() if k != "stage"}, "missing"),
    ):
        with pytest.raises(LocalProtocolError, match=why):
            state_from_json(state.params, bad)
    with pytest.raises(LocalProtocolError, match="start, timeout or receive"):
        event_from_json(state.params, {"type": "wake"})


# ---------------------------------------------------------------- pre-covered dropouts
# Spec: spec/09-protocol.md#noise-sources, spec/07-noise-plan.md#pre-covering


@pytest.mark.parametrize(("missing", "final", "accepted"), [
    (1, True, True), (1, False, False),  # within c0: final, never a top-up
    (2, True, False), (2, False, True),  # beyond c0: a top-up, never final
])  # fmt: skip
def test_finality_follows_the_dropouts_the_noise_covers(
    missing: int, final: bool, accepted: bool
) -> None:
    """With ``c0 = 1`` pre-covered: a decision is final iff at most ``c0`` noise sources
    are missing; an aggregator refuses one that says otherwise, state unchanged, and the
    coordinator decides the same way."""
    from protocol.noise_plan import plan  # noqa: PLC0415

    base = round_params(n=6, max_dropouts=2, dimension=2)
    noise = plan(mechanism="skellam", target_variance=Fraction(100), contributors=6,
                 max_dropouts=2, max_colluders=0, precovered=1)  # fmt: skip
    fields = {k: getattr(base, k) for k in RoundParams.__dataclass_fields__}
    p = RoundParams(**(fields | {"noise": noise, "min_contributors": 1}))
    agg, _ = step(initial(p, node=2, role="aggregator"), Start())
    u = p.contributors[missing:]
    head = header(p, sender=p.coordinator, recipient=2, role="aggregator")
    decision = Decision(**head, stage=0, contributors=u, aggregators=p.aggregators, final=final)
    if accepted and final:
        # Finality passes; what stops it next is that this aggregator holds no shares.
        with pytest.raises(InvalidMessage, match="did not report"):
            step(agg, Receive(decision))
    elif accepted:
        new, _ = step(agg, Receive(decision))
        assert isinstance(new, AggregatorState) and new.stage == 1 and new.expected == u
    else:
        with pytest.raises(InvalidMessage, match="noise sources out"):
            step(agg, Receive(decision))
    coord, _ = step(initial(p, node=p.coordinator, role="coordinator"), Start())
    for j in p.aggregators:
        report = Report(**header(p, sender=j, recipient=p.coordinator, role="coordinator"),
                        stage=0, holds=u)  # fmt: skip
        coord, outputs = step(coord, Receive(report))
    sent = [o for o in outputs if isinstance(o, Decision)]
    assert sent and all(o.final == (missing <= 1) for o in sent)
