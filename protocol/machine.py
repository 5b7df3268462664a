"""The state machines of one round: one transition table per role, one pure ``step``.

Spec: spec/09-protocol.md#state-machines

A node of the round runs up to four role machines: *contributor* (shares
its noisy update, and its top-ups), *aggregator* (holds shares, reports
what it holds, releases one partial sum), *coordinator* (one aggregator
that fixes the contributor set) and *receiver* (rebuilds the released sum
from the partial sums). Each is a frozen state; :func:`step` maps a state
and an event to the next state and the outputs (messages to send, timers
to set). Nothing here does I/O, reads a clock or draws randomness that is
not derived from the round's seeds.

:data:`TRANSITIONS` is the single source of truth for which event each
phase accepts and which phases it can lead to; the spec's diagram is
generated from it (:func:`mermaid`). An event a phase does not accept
raises (``LocalProtocolError`` for the node's own events,
``InvalidMessage`` for a peer's message) and the state is unchanged, since
states are immutable. ``DONE``, ``RELEASED`` and ``ABORTED`` accept nothing:
they cannot be left.
"""

from __future__ import annotations

import bisect
import enum
import itertools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import ClassVar, TypeAlias, TypeVar

from protocol.errors import (
    EncodingError,
    InconsistentShares,
    InvalidMessage,
    LocalProtocolError,
    ThresholdNotMet,
)
from protocol.field import Field
from protocol.messages import (
    REASONS,
    Abort,
    Decision,
    Echo,
    Elements,
    Message,
    PartialSum,
    Reason,
    Report,
    Role,
    Share,
    from_obj,
)
from protocol.noise import MECHANISMS, sample_table
from protocol.params import (
    DECISION_WINDOWS,
    MAX_NODE_ID,
    REPORT_WINDOWS,
    TOP_UP_REPORT_WINDOWS,
    TOP_UP_WINDOWS,
    VIEW_WINDOWS,
    RoundParams,
)
from protocol.shamir import Share as ShamirShare
from protocol.xof import SEED_SIZE, Seed, Tag, Xof, as_seed, derive_seed


class Phase(enum.Enum):
    """Where a role machine is. Spec: spec/09-protocol.md#state-machines"""

    IDLE = "idle"
    SHARED = "shared"
    COLLECTING = "collecting"
    REPORTED = "reported"
    #: An aggregator that answered a final decision and waits for the echo quorum
    #: (rounds with ``max_byzantine >= 1`` or backup coordinators:
    #: spec/09-protocol.md#the-echo-exchange).
    ECHOED = "echoed"
    #: A backup coordinator whose view has not begun: it follows the decisions
    #: of the views before it (spec/09-protocol.md#failover).
    STANDBY = "standby"
    DONE = "done"
    RELEASED = "released"
    ABORTED = "aborted"


TERMINAL: frozenset[Phase] = frozenset({Phase.DONE, Phase.RELEASED, Phase.ABORTED})

# ---------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class Start:
    """Begin the round. A contributor's start carries its encoded update and fresh seed.

    Spec: spec/09-protocol.md#events

    ``update`` is the encoded update (spec/05-encoding.md), a vector of
    ``params.dimension`` field elements; ``seed`` is the contributor's fresh
    secret seed for this round (spec/07-noise-plan.md#streams). Both are
    ``None`` for the other roles.
    """

    update: Field | None = None
    seed: Seed | None = None


@dataclass(frozen=True, slots=True)
class Receive:
    """A message arrived on the authenticated channel. Spec: spec/09-protocol.md#events"""

    message: Message


@dataclass(frozen=True, slots=True)
class Timeout:
    """A timer this machine set has fired. Spec: spec/09-protocol.md#timers

    ``stage`` is the stage the timer was set for, or ``None`` for the round timer;
    ``view`` the view an aggregator's view timer moves it to (``None`` for every
    other timer: spec/09-protocol.md#failover).
    """

    stage: int | None
    view: int | None = None


Event: TypeAlias = Start | Receive | Timeout


@dataclass(frozen=True, slots=True)
class Timer:
    """Ask the driver for ``Timeout(stage)`` after ``windows`` windows.

    Spec: spec/09-protocol.md#timers

    ``stage=None`` is the round timer: the round is over when it fires. ``view``
    marks an aggregator's view timer (spec/09-protocol.md#failover).
    """

    stage: int | None
    windows: int
    view: int | None = None


Output: TypeAlias = Message | Timer


def event_kind(event: Event) -> str:
    """The key of an event in :data:`TRANSITIONS`: ``start``, ``timeout`` or a message kind."""
    if isinstance(event, Start):
        return "start"
    if isinstance(event, Timeout):
        return "timeout"
    return event.message.kind


# ---------------------------------------------------------------------- states

#: A decision as (stage, contributors, aggregators).
Decided: TypeAlias = tuple[int, tuple[int, ...], tuple[int, ...]]


@dataclass(frozen=True, slots=True)
class _State:
    params: RoundParams
    node: int
    phase: Phase = Phase.IDLE
    #: Why the machine aborted (``ABORTED`` only).
    reason: Reason | None = None
    #: The stage the machine is at: 0 for the initial shares, s >= 1 for top-up s.
    stage: int = 0

    ROLE: ClassVar[Role] = "contributor"

    @property
    def role(self) -> Role:
        return self.ROLE

    @property
    def terminal(self) -> bool:
        return self.phase in TERMINAL


@dataclass(frozen=True, slots=True)
class ContributorState(_State):
    """A contributor. Spec: spec/09-protocol.md#contributor"""

    ROLE: ClassVar[Role] = "contributor"
    seed: Seed | None = None
    #: The sum of every secret this contributor has shared: update + noise + top-ups.
    contribution: Elements | None = None
    #: The dropouts its noise so far covers: it carries ``s(dropouts)`` (spec 07).
    dropouts: int = 0
    #: The total noise variance (mechanism parameter) it has added.
    noise_variance: Fraction = Fraction(0)


@dataclass(frozen=True, slots=True)
class AggregatorState(_State):
    """An aggregator. Spec: spec/09-protocol.md#aggregator"""

    ROLE: ClassVar[Role] = "aggregator"
    #: The contributors expected at this stage (``E_s``).
    expected: tuple[int, ...] = ()
    #: Members of ``expected`` whose every earlier stage this aggregator holds.
    prior: frozenset[int] = frozenset()
    #: Contributors whose share for this stage has arrived.
    delivered: frozenset[int] = frozenset()
    #: Shares for the next stage that arrived before the decision did.
    early: Mapping[int, Elements] = field(default_factory=dict)
    #: Per contributor, the sum of the shares held from it, over all stages
    #: (compact: what the share messages carried, already checked against the field).
    held: Mapping[int, Elements] = field(default_factory=dict)
    #: The final decision this aggregator answered and echoed: (stage, contributors,
    #: aggregators). Rounds with the echo exchange only (``params.echoes``), as is ``echoes``.
    answer: Decided | None = None
    #: Per aggregator, the final decision it echoed (this one's own answer included).
    echoes: Mapping[int, Decided] = field(default_factory=dict)
    #: The view: whose decisions it takes, ``params.coordinators[view]``
    #: (rounds with backup coordinators: spec/09-protocol.md#failover).
    view: int = 0


@dataclass(frozen=True, slots=True)
class CoordinatorState(_State):
    """The coordinator. Spec: spec/09-protocol.md#coordinator"""

    ROLE: ClassVar[Role] = "coordinator"
    expected: tuple[int, ...] = ()
    #: The dropouts the current members' noise covers (``d_s``).
    dropouts: int = 0
    reports: Mapping[int, frozenset[int]] = field(default_factory=dict)
    #: The final decision, once made: (stage, contributors, aggregators).
    decision: tuple[int, tuple[int, ...], tuple[int, ...]] | None = None
    #: A backup's last top-up decision followed from an earlier view, if any
    #: (rounds with backup coordinators: spec/09-protocol.md#failover).
    followed: Decided | None = None


@dataclass(frozen=True, slots=True)
class ReceiverState(_State):
    """A receiver. Spec: spec/09-protocol.md#receiver"""

    ROLE: ClassVar[Role] = "receiver"
    #: What the first partial sum fixed: (stage, contributors, aggregators).
    covers: tuple[int, tuple[int, ...], tuple[int, ...]] | None = None
    partials: Mapping[int, Field] = field(default_factory=dict)
    #: The released sum (``RELEASED`` only), and the aggregators corrected around.
    result: Field | None = None
    faulty: tuple[int, ...] = ()


State: TypeAlias = ContributorState | AggregatorState | CoordinatorState | ReceiverState

STATE_TYPES: Mapping[Role, type[State]] = {
    "contributor": ContributorState,
    "aggregator": AggregatorState,
    "coordinator": CoordinatorState,
    "receiver": ReceiverState,
}


def initial(params: RoundParams, *, node: int, role: Role) -> State:
    """The ``IDLE`` state of ``role`` at ``node``.

    Raises:
        LocalProtocolError: ``node`` does not hold ``role`` in this round.
    """
    holders: Mapping[Role, tuple[int, ...]] = {
        "contributor": params.contributors,
        "aggregator": params.aggregators,
        "coordinator": params.coordinators,
        "receiver": params.receiving,
    }
    if role not in holders:
        raise LocalProtocolError(f"role must be one of {sorted(holders)}; got {role!r}")
    ids = holders[role]
    # The id lists are strictly ascending (the coordinators are few): a binary search.
    at = bisect.bisect_left(ids, node) if role != "coordinator" else 0
    if (node not in ids) if role == "coordinator" else (at == len(ids) or ids[at] != node):
        raise LocalProtocolError(f"node {node} is not a {role} of this round")
    return STATE_TYPES[role](params=params, node=node)


# ---------------------------------------------------------------------- the table

P = Phase
#: Per role: (phase, event kind) -> the phases the event can lead to.
#: Spec: spec/09-protocol.md#state-machines
TRANSITIONS: Mapping[Role, Mapping[tuple[Phase, str], frozenset[Phase]]] = {
    "contributor": {
        (P.IDLE, "start"): frozenset({P.SHARED}),
        (P.IDLE, "decision"): frozenset({P.DONE}),
        (P.IDLE, "abort"): frozenset({P.ABORTED}),
        (P.SHARED, "decision"): frozenset({P.SHARED, P.DONE}),
        (P.SHARED, "abort"): frozenset({P.ABORTED}),
        (P.SHARED, "timeout"): frozenset({P.ABORTED}),
    },
    "aggregator": {
        (P.IDLE, "start"): frozenset({P.COLLECTING}),
        (P.COLLECTING, "share"): frozenset({P.COLLECTING, P.REPORTED}),
        (P.COLLECTING, "timeout"): frozenset({P.COLLECTING, P.REPORTED, P.ABORTED}),
        (P.COLLECTING, "decision"): frozenset(
            {P.COLLECTING, P.REPORTED, P.ECHOED, P.DONE, P.ABORTED}
        ),
        (P.COLLECTING, "echo"): frozenset({P.COLLECTING, P.ABORTED}),
        (P.COLLECTING, "abort"): frozenset({P.ABORTED}),
        (P.REPORTED, "share"): frozenset({P.REPORTED}),
        (P.REPORTED, "timeout"): frozenset({P.REPORTED, P.ABORTED}),
        (P.REPORTED, "decision"): frozenset(
            {P.COLLECTING, P.REPORTED, P.ECHOED, P.DONE, P.ABORTED}
        ),
        (P.REPORTED, "echo"): frozenset({P.REPORTED, P.ABORTED}),
        (P.REPORTED, "abort"): frozenset({P.ABORTED}),
        (P.ECHOED, "echo"): frozenset({P.ECHOED, P.DONE, P.ABORTED}),
        (P.ECHOED, "decision"): frozenset({P.ABORTED}),
        (P.ECHOED, "timeout"): frozenset({P.ECHOED, P.ABORTED}),
        (P.ECHOED, "abort"): frozenset({P.ABORTED}),
    },
    "coordinator": {
        (P.IDLE, "start"): frozenset({P.COLLECTING, P.STANDBY}),
        (P.COLLECTING, "report"): frozenset({P.COLLECTING, P.DONE, P.ABORTED}),
        (P.COLLECTING, "timeout"): frozenset({P.COLLECTING, P.DONE, P.ABORTED}),
        (P.STANDBY, "report"): frozenset({P.STANDBY, P.COLLECTING, P.DONE, P.ABORTED}),
        (P.STANDBY, "decision"): frozenset({P.STANDBY}),
        (P.STANDBY, "abort"): frozenset({P.ABORTED}),
    },
    "receiver": {
        (P.IDLE, "start"): frozenset({P.COLLECTING}),
        (P.COLLECTING, "partial_sum"): frozenset({P.COLLECTING, P.RELEASED, P.ABORTED}),
        (P.COLLECTING, "timeout"): frozenset({P.RELEASED, P.ABORTED}),
        (P.COLLECTING, "abort"): frozenset({P.ABORTED}),
    },
}

#: Who may send each message kind (the channel authenticates ``sender``).
_SENDERS: Mapping[str, Callable[[RoundParams], tuple[int, ...]]] = {
    "share": lambda p: p.contributors,
    "report": lambda p: p.aggregators,
    "decision": lambda p: p.coordinators,
    "echo": lambda p: p.aggregators,
    "partial_sum": lambda p: p.aggregators,
    "abort": lambda p: p.coordinators,
}


def step(state: State, event: Event) -> tuple[State, tuple[Output, ...]]:
    """The next state of a role machine, and what it sends.

    Spec: spec/09-protocol.md#state-machines

    Raises:
        LocalProtocolError: the node's own event (``Start``, ``Timeout``) is
            not allowed in this phase, or is malformed.
        InvalidMessage: a received message is out of round, misaddressed,
            from a node that may not send it, late, duplicated or malformed.
        In both cases ``state`` is unchanged: states are immutable and
        nothing is sent.
    """
    kind = event_kind(event)
    allowed = TRANSITIONS[state.role].get((state.phase, kind))
    if isinstance(event, Receive):
        _check_envelope(state, event.message)
    if allowed is None:
        text = (
            f"the {state.role} at node {state.node} is {state.phase.value}"
            f"{' (terminal)' if state.terminal else ''} and accepts no {kind}"
        )
        if isinstance(event, Receive):
            raise InvalidMessage(f"{text} (from node {event.message.sender})")
        raise LocalProtocolError(text)
    new, out = _HANDLERS[(state.role, kind)](state, event)
    assert new.phase in allowed, (state.role, state.phase, kind, new.phase)
    return new, tuple(out)


def _check_envelope(state: State, m: Message) -> None:
    p = state.params
    if m.session != p.session.hex() or m.round != p.round:
        raise InvalidMessage(
            f"message is for session {m.session[:16]}… round {m.round}; this machine is "
            f"in session {p.session.hex()[:16]}… round {p.round}"
        )
    if m.recipient != state.node or m.role != state.role:
        raise InvalidMessage(
            f"message is addressed to the {m.role} at node {m.recipient}; "
            f"this is the {state.role} at node {state.node}"
        )
    senders = _SENDERS[m.kind](p)
    if m.sender not in senders:
        raise InvalidMessage(f"node {m.sender} may not send a {m.kind} in this round")


def _values(state: State, values: Elements, sender: int) -> Elements:
    """``values``, checked: the round's share length, every value below the modulus."""
    p = state.params
    if len(values) != p.share_length:
        raise InvalidMessage(
            f"node {sender} sent {len(values)} values; this round's shares have {p.share_length}"
        )
    try:
        return values.check(p.field)
    except EncodingError as exc:
        raise InvalidMessage(f"node {sender} sent a value outside the field: {exc}") from None


def _header(state: State, *, recipient: int, role: Role) -> dict[str, object]:
    p = state.params
    return {
        "session": p.session.hex(),
        "round": p.round,
        "sender": state.node,
        "recipient": recipient,
        "role": role,
    }


def _later_coordinators(state: State) -> tuple[int, ...]:
    """The backup coordinators of the views after this coordinator's."""
    p = state.params
    return p.coordinators[p.coordinators.index(state.node) + 1 :]


def _abort_all(state: State, reason: Reason) -> list[Output]:
    p = state.params
    out: list[Output] = []
    for role, ids in (("coordinator", _later_coordinators(state)),
                      ("contributor", p.contributors), ("aggregator", p.aggregators),
                      ("receiver", p.receiving)):  # fmt: skip
        out += [Abort(**_header(state, recipient=i, role=role), reason=reason) for i in ids]  # type: ignore[arg-type]
    return out


# ---------------------------------------------------------------------- contributor


def _mechanism_index(p: RoundParams) -> int:
    return MECHANISMS.index(p.noise.mechanism)


def _share_out(state: ContributorState, secret: Field, stage: int) -> list[Output]:
    """Share ``secret`` for ``stage`` to every aggregator. Spec: spec/09-protocol.md#share"""
    p = state.params
    assert state.seed is not None
    seed = derive_seed(state.seed, Tag("protocol.share", (p.round, stage)))
    shares = p.sharing().share(secret, points=list(p.aggregators), seed=seed)
    return [
        Share(**_header(state, recipient=s.x, role="aggregator"), stage=stage,  # type: ignore[arg-type]
              values=Elements.of(s.y))
        for s in shares
    ]  # fmt: skip


def _noise(p: RoundParams, seed: Seed, tag: Tag, variance: Fraction) -> Field:
    values = sample_table(Xof(seed, tag), p.noise.mechanism, variance, p.dimension)
    try:
        return p.field.signed_encode(values)
    except EncodingError as exc:
        # Spec: spec/09-protocol.md#contributor (the field must hold the noise).
        raise LocalProtocolError(
            f"a noise draw does not fit {p.field.__name__} as a signed value ({exc}); "
            "the round's field is too small for its noise plan"
        ) from None


def _contributor_start(s: ContributorState, e: Event) -> tuple[State, list[Output]]:
    # Spec: spec/09-protocol.md#contributor
    assert isinstance(e, Start)
    p = s.params
    if not isinstance(e.update, p.field) or e.update.shape != (p.dimension,):
        raise LocalProtocolError(
            f"a contributor's start needs an update of {p.dimension} {p.field.__name__} "
            f"elements; got {e.update!r}"
        )
    if not isinstance(e.seed, bytes) or len(e.seed) != 32:
        raise LocalProtocolError(f"a contributor's start needs a 32-byte seed; got {e.seed!r}")
    if s.node in p.sources:
        v0 = p.noise.initial_share_variance()
        tag = Tag("noise.share", (p.round, _mechanism_index(p)))
        noisy = e.update + _noise(p, e.seed, tag, v0)
    else:  # not a noise source (spec/09-protocol.md#noise-sources): the update alone
        v0, noisy = Fraction(0), e.update
    new = replace(s, phase=Phase.SHARED, seed=e.seed, contribution=Elements.of(noisy),
                  noise_variance=v0, dropouts=p.noise.precovered)  # fmt: skip
    round_timer = Timer(stage=None, windows=p.round_windows)
    return new, [*_share_out(new, noisy, 0), round_timer]


def _contributor_decision(s: ContributorState, e: Event) -> tuple[State, list[Output]]:
    # Spec: spec/09-protocol.md#contributor
    assert isinstance(e, Receive) and isinstance(e.message, Decision)
    m, p = e.message, s.params
    stray = sorted(set(m.contributors) - set(p.contributors))
    if stray:
        raise InvalidMessage(f"decision lists {stray}, which are not contributors of the round")
    member = s.node in m.contributors
    if s.phase is Phase.IDLE or m.stage > s.stage:
        # It never shared, or missed a stage: the set cannot contain it.
        if member:
            raise InvalidMessage(
                f"decision for stage {m.stage} lists node {s.node}, which has not "
                f"contributed to stage {m.stage}"
            )
        return replace(s, phase=Phase.DONE), []
    if m.stage < s.stage:
        raise InvalidMessage(f"stale decision for stage {m.stage}; this node is at {s.stage}")
    if m.final or not member:
        return replace(s, phase=Phase.DONE), []
    d = p.source_dropouts(m.contributors)
    if not s.dropouts < d <= p.noise.max_dropouts:
        raise InvalidMessage(
            f"a top-up decision must raise the dropouts from {s.dropouts} to at most "
            f"D = {p.noise.max_dropouts}; got {d}"
        )
    assert s.seed is not None and s.contribution is not None
    increment = p.noise.top_up_increment(from_dropouts=s.dropouts, to_dropouts=d)
    top_up = _noise(p, s.seed, Tag("noise.top_up", (p.round, _mechanism_index(p), d)), increment)
    new = replace(
        s,
        stage=m.stage + 1,
        dropouts=d,
        contribution=Elements.of(s.contribution.to_field(p.field) + top_up),
        noise_variance=s.noise_variance + increment,
    )
    return new, _share_out(new, top_up, m.stage + 1)


def _to_aborted(s: State, e: Event) -> tuple[State, list[Output]]:
    if isinstance(e, Receive):
        assert isinstance(e.message, Abort)
        return replace(s, phase=Phase.ABORTED, reason=e.message.reason), []
    return replace(s, phase=Phase.ABORTED, reason="no-decision"), []


# ---------------------------------------------------------------------- aggregator


def _aggregator_start(s: AggregatorState, e: Event) -> tuple[State, list[Output]]:
    # Spec: spec/09-protocol.md#aggregator
    if not (isinstance(e, Start) and e.update is None and e.seed is None):
        raise LocalProtocolError("an aggregator's start carries no update and no seed")
    p = s.params
    new = replace(s, phase=Phase.COLLECTING, expected=p.contributors,
                  prior=frozenset(p.contributors))  # fmt: skip
    round_timer = Timer(stage=None, windows=p.round_windows)
    return new, [Timer(stage=0, windows=REPORT_WINDOWS), round_timer]


def _report(s: AggregatorState) -> tuple[State, list[Output]]:
    p = s.params
    holds = tuple(sorted(s.prior & s.delivered))
    to = p.coordinators[s.view]
    report = Report(**_header(s, recipient=to, role="coordinator"),  # type: ignore[arg-type]
                    stage=s.stage, holds=holds)  # fmt: skip
    out: list[Output] = [report]
    if s.view + 1 < len(p.coordinators):
        # Spec: spec/09-protocol.md#failover (no decision in time: the next view)
        out.append(Timer(stage=s.stage, windows=VIEW_WINDOWS, view=s.view + 1))
    return replace(s, phase=Phase.REPORTED), out


def _aggregator_share(s: AggregatorState, e: Event) -> tuple[State, list[Output]]:
    # Spec: spec/09-protocol.md#aggregator
    assert isinstance(e, Receive) and isinstance(e.message, Share)
    m, p = e.message, s.params
    i = m.sender
    if m.stage == s.stage + 1:
        # A top-up that overtook the decision asking for it: kept until then.
        if i in s.early:
            raise InvalidMessage(f"duplicate share from node {i} for stage {m.stage}")
        if i not in s.expected:
            raise InvalidMessage(f"node {i} is not expected at stage {s.stage}")
        return replace(s, early={**s.early, i: _values(s, m.values, i)}), []
    if m.stage != s.stage or s.phase is Phase.REPORTED:
        raise InvalidMessage(
            f"share from node {i} for stage {m.stage} arrived while this aggregator "
            f"{'has reported' if s.phase is Phase.REPORTED else 'collects'} stage {s.stage}"
        )
    if i not in s.expected:
        raise InvalidMessage(f"node {i} is not in the contributor set of stage {s.stage}")
    if i in s.delivered:
        raise InvalidMessage(f"duplicate share from node {i} for stage {m.stage}")
    y = _values(s, m.values, i)
    new = replace(s, delivered=s.delivered | {i},
                  held={**s.held, i: _add(p, s.held.get(i), y)})  # fmt: skip
    if new.delivered == frozenset(new.expected):
        return _report(new)
    return new, []


def _add(p: RoundParams, held: Elements | None, values: Elements) -> Elements:
    """What an aggregator holds from a contributor after one more stage's (checked) share."""
    if held is None:
        return values
    return Elements.of(p.field.total([held.array, values.array], p.share_length))


def _aggregator_timeout(s: AggregatorState, e: Event) -> tuple[State, list[Output]]:
    assert isinstance(e, Timeout)
    if e.stage is None:
        # The round timer: the decision (or the echo quorum) that would end this
        # machine never came.
        reason: Reason = "too-few-echoes" if s.phase is Phase.ECHOED else "no-decision"
        return replace(s, phase=Phase.ABORTED, reason=reason), []
    if e.view is not None:
        # A view timer. Spec: spec/09-protocol.md#failover
        if s.phase is Phase.REPORTED and e.stage == s.stage and e.view == s.view + 1:
            return _report(replace(s, view=e.view))
        return s, []  # a decision came, or a later view began, in time
    if s.phase is Phase.COLLECTING and e.stage == s.stage:
        return _report(s)
    return s, []  # the timer of a stage already reported


def _aggregator_decision(s: AggregatorState, e: Event) -> tuple[State, list[Output]]:
    # Spec: spec/09-protocol.md#aggregator
    assert isinstance(e, Receive) and isinstance(e.message, Decision)
    if s.phase is Phase.ECHOED:
        return _aggregator_second_decision(s, e)
    m, p = e.message, s.params
    if m.stage != s.stage:
        raise InvalidMessage(f"decision for stage {m.stage}; this aggregator is at {s.stage}")
    view = p.coordinators.index(m.sender)
    if view < s.view:
        raise InvalidMessage(
            f"decision from node {m.sender}, the coordinator of view {view}; this aggregator "
            f"has moved to view {s.view} (spec 09, failover)"
        )
    s = replace(s, view=view)  # a decision of a later view: that view has begun
    u = m.contributors
    stray = sorted(set(u) - set(s.expected))
    if stray:
        raise InvalidMessage(f"decision lists {stray}, not expected at stage {s.stage}")
    if len(u) < p.min_contributors:
        # Isolation: refuse a set below the minimum (spec 09, hazard 2).
        return replace(s, phase=Phase.ABORTED, reason="too-few-contributors"), []
    if len(p.contributors) - len(u) > p.noise.max_dropouts:
        return replace(s, phase=Phase.ABORTED, reason="too-many-dropouts"), []
    # The noise sources' dropouts the members' noise covers: c0 at stage 0,
    # then those of the set the last top-up was sized for (spec 09, hazard 4).
    covered = p.noise.precovered if s.stage == 0 else p.source_dropouts(s.expected)
    dropped = p.source_dropouts(u)
    if m.final != (dropped <= covered):
        # Final exactly when the noise covers every noise source that dropped.
        raise InvalidMessage(
            f"a {'final' if m.final else 'top-up'} decision must leave "
            f"{'at most' if m.final else 'more than'} {covered} noise sources out at stage "
            f"{s.stage} (the dropouts the noise covers); it leaves {dropped} out"
        )
    if m.final:
        member = s.node in m.aggregators
        missing = sorted(set(u) - (s.prior & s.delivered)) if member else []
        if missing:
            raise InvalidMessage(
                f"final decision lists {missing}, whose shares this aggregator did not report"
            )
        if p.echoes:
            return _echo(s, (s.stage, u, m.aggregators))
        if not member:
            return replace(s, phase=Phase.DONE), []
        return replace(s, phase=Phase.DONE), _partial_sums(s, (s.stage, u, m.aggregators))
    # A top-up stage: members of u owe stage s + 1.
    prior = (s.prior & s.delivered) & frozenset(u)
    early = {i: y for i, y in s.early.items() if i in u}
    held = dict(s.held)
    for i, y in early.items():
        held[i] = _add(p, held.get(i), y)
    new = replace(
        s,
        phase=Phase.COLLECTING,
        stage=s.stage + 1,
        expected=u,
        prior=prior,
        delivered=frozenset(early),
        early={},
        held=held,
    )
    out = [Timer(stage=new.stage, windows=TOP_UP_REPORT_WINDOWS)]
    if new.delivered == frozenset(u):
        reported, more = _report(new)
        return reported, out + more
    return new, list(out)


def _partial_sums(s: AggregatorState, decided: Decided) -> list[Output]:
    """The partial sum over the decided contributors, to every receiver.

    Spec: spec/09-protocol.md#partial-sum
    """
    p = s.params
    stage, u, aggregators = decided
    total = p.field.total([s.held[i].array for i in u], p.share_length)
    return [
        PartialSum(**_header(s, recipient=r, role="receiver"), stage=stage,  # type: ignore[arg-type]
                   contributors=u, aggregators=aggregators, values=Elements.of(total))
        for r in p.receiving
    ]  # fmt: skip


def _equivocated(s: AggregatorState) -> tuple[State, list[Output]]:
    """Two final decisions the coordinator signed, or a final and a top-up one for a
    stage: the coordinator equivocated, and this aggregator answers neither.

    Spec: spec/09-protocol.md#evidence
    Proof: proofs_notes/protocol-byzantine-single-release.md
    """
    return replace(s, phase=Phase.ABORTED, reason="coordinator-equivocation"), []


def _conflicts(s: AggregatorState, decided: Decided) -> bool:
    """Whether ``decided`` (a final decision the coordinator signed) contradicts a
    decision this aggregator holds: its answer, an echo, or a top-up decision
    for an earlier stage (which moved it past that stage)."""
    if s.answer is not None and decided != s.answer:
        return True
    return decided[0] < s.stage or any(d != decided for d in s.echoes.values())


def _echo(s: AggregatorState, decided: Decided) -> tuple[State, list[Output]]:
    """Answer a final decision: echo it to its aggregators, then wait for the quorum.

    Spec: spec/09-protocol.md#the-echo-exchange
    Proof: proofs_notes/protocol-byzantine-single-release.md
    """
    if _conflicts(s, decided) and s.params.max_byzantine:
        return _equivocated(s)
    stage, u, aggregators = decided
    out: list[Output] = [
        Echo(**_header(s, recipient=j, role="aggregator"), stage=stage,  # type: ignore[arg-type]
             contributors=u, aggregators=aggregators)
        for j in aggregators if j != s.node
    ]  # fmt: skip
    if s.node not in aggregators:
        return replace(s, phase=Phase.DONE), out
    new = replace(s, phase=Phase.ECHOED, answer=decided, echoes={**s.echoes, s.node: decided})
    return _release_on_quorum(new, out)


def _release_on_quorum(s: AggregatorState, out: list[Output]) -> tuple[State, list[Output]]:
    """Send the partial sum once ``Q`` aggregators, this one included, echoed its answer."""
    assert s.answer is not None
    matching = sum(1 for d in s.echoes.values() if d == s.answer)
    if matching < s.params.echo_quorum:
        return s, out
    return replace(s, phase=Phase.DONE), out + _partial_sums(s, s.answer)


def _aggregator_echo(s: AggregatorState, e: Event) -> tuple[State, list[Output]]:
    # Spec: spec/09-protocol.md#the-echo-exchange
    assert isinstance(e, Receive) and isinstance(e.message, Echo)
    m, p = e.message, s.params
    if not p.echoes:
        raise InvalidMessage(
            f"node {m.sender} sent an echo; this round has no echo exchange "
            "(max_byzantine = 0 and no backup coordinators)"
        )
    if m.sender in s.echoes:
        raise InvalidMessage(f"duplicate echo from node {m.sender}")
    stray = sorted(set(m.contributors) - set(p.contributors))
    if stray or not set(m.aggregators) <= set(p.aggregators):
        raise InvalidMessage("an echo names nodes that do not hold that role")
    decided = (m.stage, m.contributors, m.aggregators)
    if _conflicts(s, decided) and p.max_byzantine:
        return _equivocated(s)
    # With backup coordinators (f = 0), two views may decide differently: an echo
    # of another decision is kept, and simply never matches the answer.
    new = replace(s, echoes={**s.echoes, m.sender: decided})
    if new.phase is Phase.ECHOED:
        return _release_on_quorum(new, [])
    return new, []


def _aggregator_second_decision(s: AggregatorState, e: Event) -> tuple[State, list[Output]]:
    # Spec: spec/09-protocol.md#the-echo-exchange (a second decision for a stage already answered)
    assert isinstance(e, Receive) and isinstance(e.message, Decision)
    m = e.message
    assert s.answer is not None
    if m.final and (m.stage, m.contributors, m.aggregators) == s.answer:
        raise InvalidMessage(f"duplicate decision for stage {m.stage}")
    if not s.params.max_byzantine:
        # Failover (f = 0): another view's coordinator decided too; the answer stands.
        raise InvalidMessage(
            f"a decision from node {m.sender} for an aggregator that answered one already"
        )
    return _equivocated(s)


# ---------------------------------------------------------------------- coordinator


def _coordinator_start(s: CoordinatorState, e: Event) -> tuple[State, list[Output]]:
    if not (isinstance(e, Start) and e.update is None and e.seed is None):
        raise LocalProtocolError("a coordinator's start carries no update and no seed")
    p = s.params
    if s.node != p.coordinator:
        # A backup: it follows the decisions until its view begins (spec 09, failover).
        return replace(s, phase=Phase.STANDBY, expected=p.contributors,
                       dropouts=p.noise.precovered), []  # fmt: skip
    new = replace(s, phase=Phase.COLLECTING, expected=p.contributors,
                  dropouts=p.noise.precovered)  # fmt: skip
    return new, [Timer(stage=0, windows=DECISION_WINDOWS)]


def _coordinator_follow(s: CoordinatorState, e: Event) -> tuple[State, list[Output]]:
    """A backup in standby takes an earlier view's decision as that coordinator did.

    Spec: spec/09-protocol.md#failover
    """
    assert isinstance(e, Receive) and isinstance(e.message, Decision)
    m, p = e.message, s.params
    if p.coordinators.index(m.sender) >= p.coordinators.index(s.node):
        raise InvalidMessage(f"node {m.sender} coordinates a view after this backup's")
    if m.stage != s.stage or s.decision is not None:
        raise InvalidMessage(
            f"decision for stage {m.stage}; this backup follows stage {s.stage}"
            + (" and holds the round's final decision" if s.decision is not None else "")
        )
    if m.final:
        # Kept, not acted on: an aggregator that moves to this view is sent it again.
        return replace(s, decision=(m.stage, m.contributors, m.aggregators)), []
    dropped = p.source_dropouts(m.contributors)
    followed = (m.stage, m.contributors, m.aggregators)
    new = replace(s, stage=s.stage + 1, expected=m.contributors, dropouts=dropped,
                  followed=followed)  # fmt: skip
    return new, []


def _coordinator_takeover(s: CoordinatorState, e: Event) -> tuple[State, list[Output]]:
    """A report reaches a backup in standby: its view has begun; it collects and decides.

    If an earlier view already made the final decision, the backup does not
    decide again: it sends that decision to the reporting aggregator. If the
    reporter is a stage behind the last top-up decision the backup followed,
    that decision is sent again to every contributor and aggregator first.

    Spec: spec/09-protocol.md#failover
    """
    assert isinstance(e, Receive) and isinstance(e.message, Report)
    if s.followed is not None and e.message.stage == s.followed[0] and s.decision is None:
        # The reporter never got the last top-up decision: the earlier view's
        # coordinator crashed while sending it. The backup sends it again to
        # every contributor and aggregator, then coordinates the next stage.
        again = _decisions(s, s.followed, final=False)
        return replace(s, phase=Phase.COLLECTING), [
            *again,
            Timer(stage=s.stage, windows=TOP_UP_WINDOWS),
        ]
    if s.decision is not None:
        stage, u, aggregators = s.decision
        if e.message.stage != stage:
            raise InvalidMessage(
                f"report for stage {e.message.stage}; the round's final decision was for {stage}"
            )
        to = e.message.sender
        if to in s.reports:
            raise InvalidMessage(f"duplicate report from node {to} for stage {stage}")
        s = replace(s, reports={**s.reports, to: frozenset(e.message.holds)})
        final = Decision(**_header(s, recipient=to, role="aggregator"), stage=stage,  # type: ignore[arg-type]
                         contributors=u, aggregators=aggregators, final=True)  # fmt: skip
        return s, [final]
    active = replace(s, phase=Phase.COLLECTING)
    new, out = _coordinator_report(active, e)
    if new.phase is Phase.COLLECTING:
        return new, [Timer(stage=s.stage, windows=DECISION_WINDOWS), *out]
    return new, out


def _coordinator_report(s: CoordinatorState, e: Event) -> tuple[State, list[Output]]:
    # Spec: spec/09-protocol.md#coordinator
    assert isinstance(e, Receive) and isinstance(e.message, Report)
    m = e.message
    if m.stage != s.stage:
        raise InvalidMessage(f"report for stage {m.stage}; the coordinator is at {s.stage}")
    if m.sender in s.reports:
        raise InvalidMessage(f"duplicate report from node {m.sender} for stage {m.stage}")
    stray = sorted(set(m.holds) - set(s.expected))
    if stray:
        raise InvalidMessage(f"report lists {stray}, not expected at stage {s.stage}")
    new = replace(s, reports={**s.reports, m.sender: frozenset(m.holds)})
    if len(new.reports) == len(s.params.aggregators):
        return _decide(new)
    return new, []


def _coordinator_report_or_takeover(s: CoordinatorState, e: Event) -> tuple[State, list[Output]]:
    if s.phase is Phase.STANDBY:
        return _coordinator_takeover(s, e)
    return _coordinator_report(s, e)


def _coordinator_timeout(s: CoordinatorState, e: Event) -> tuple[State, list[Output]]:
    assert isinstance(e, Timeout)
    if e.stage != s.stage:
        return s, []
    return _decide(s)


def _decisions(s: CoordinatorState, decided: Decided, *, final: bool) -> list[Output]:
    """A decision to every later backup, then every contributor and aggregator.

    Spec: spec/09-protocol.md#coordinator (later backups first: spec/09-protocol.md#failover)
    """
    p = s.params
    stage, u, aggregators = decided
    out: list[Output] = []
    for role, ids in (("coordinator", _later_coordinators(s)), ("contributor", p.contributors),
                      ("aggregator", p.aggregators)):  # fmt: skip
        out += [
            Decision(**_header(s, recipient=i, role=role), stage=stage,  # type: ignore[arg-type]
                     contributors=u, aggregators=aggregators, final=final)
            for i in ids
        ]  # fmt: skip
    return out


def _decide(s: CoordinatorState) -> tuple[State, list[Output]]:
    """Fix the contributor set of this stage. Spec: spec/09-protocol.md#the-contributor-set"""
    p = s.params
    aggregators = tuple(sorted(s.reports))
    if len(aggregators) < p.quorum:
        return _coordinator_abort(s, "too-few-aggregators")
    holds = frozenset(s.expected)
    for h in s.reports.values():
        holds &= h
    u = tuple(sorted(holds))
    d = len(p.contributors) - len(u)
    if d > p.noise.max_dropouts:
        return _coordinator_abort(s, "too-many-dropouts")
    if len(u) < p.min_contributors:
        return _coordinator_abort(s, "too-few-contributors")
    dropped = p.source_dropouts(u)
    final = dropped <= s.dropouts
    out = _decisions(s, (s.stage, u, aggregators), final=final)
    if final:
        return replace(s, phase=Phase.DONE, decision=(s.stage, u, aggregators)), out
    new = replace(s, stage=s.stage + 1, expected=u, dropouts=dropped, reports={})
    return new, [*out, Timer(stage=new.stage, windows=TOP_UP_WINDOWS)]


def _coordinator_abort(s: CoordinatorState, reason: Reason) -> tuple[State, list[Output]]:
    return replace(s, phase=Phase.ABORTED, reason=reason), _abort_all(s, reason)


# ---------------------------------------------------------------------- receiver


def _receiver_start(s: ReceiverState, e: Event) -> tuple[State, list[Output]]:
    if not (isinstance(e, Start) and e.update is None and e.seed is None):
        raise LocalProtocolError("a receiver's start carries no update and no seed")
    windows = s.params.round_windows
    return replace(s, phase=Phase.COLLECTING), [Timer(stage=None, windows=windows)]


def _receiver_partial(s: ReceiverState, e: Event) -> tuple[State, list[Output]]:
    # Spec: spec/09-protocol.md#receiver
    assert isinstance(e, Receive) and isinstance(e.message, PartialSum)
    m, p = e.message, s.params
    covers = (m.stage, m.contributors, m.aggregators)
    if s.covers is not None and covers != s.covers and p.max_byzantine:
        # On the round's channels every partial sum forwards the coordinator's
        # signature of the decision it answers: two decisions prove equivocation.
        return replace(s, phase=Phase.ABORTED, reason="coordinator-equivocation"), []
    if s.covers is not None and covers != s.covers:
        raise InvalidMessage(
            f"partial sum from node {m.sender} covers stage {m.stage}, contributors "
            f"{list(m.contributors)}; the first covered stage {s.covers[0]}, "
            f"contributors {list(s.covers[1])}: sums over different sets never combine"
        )
    if m.sender not in m.aggregators:
        raise InvalidMessage(f"node {m.sender} is not among the aggregators its sum names")
    if m.sender in s.partials:
        raise InvalidMessage(f"duplicate partial sum from node {m.sender}")
    stray = sorted(set(m.contributors) - set(p.contributors))
    if stray or not set(m.aggregators) <= set(p.aggregators):
        raise InvalidMessage("a partial sum names nodes that do not hold that role")
    if len(m.contributors) < p.smallest_set:
        raise InvalidMessage(
            f"a partial sum over {len(m.contributors)} contributors is below the smallest "
            f"releasable set max(min_contributors, n − D) = {p.smallest_set}"
        )
    if len(m.aggregators) < p.quorum:
        raise InvalidMessage(f"a partial sum names {len(m.aggregators)} aggregators; "
                             f"the quorum is {p.quorum}")  # fmt: skip
    y = _values(s, m.values, m.sender).to_field(p.field)
    new = replace(s, covers=covers, partials={**s.partials, m.sender: y})
    if len(new.partials) == len(m.aggregators):
        return _reconstruct(new)
    return new, []


def _receiver_timeout(s: ReceiverState, e: Event) -> tuple[State, list[Output]]:
    assert isinstance(e, Timeout)
    p = s.params
    if len(s.partials) < p.quorum + p.max_byzantine:
        return replace(s, phase=Phase.ABORTED, reason="too-few-partial-sums"), []
    return _reconstruct(s)


def _reconstruct(s: ReceiverState) -> tuple[State, list[Output]]:
    """Rebuild the released sum, correcting what the redundancy allows.

    Spec: spec/09-protocol.md#receiver
    """
    p = s.params
    shares = [ShamirShare(x=j, y=y) for j, y in sorted(s.partials.items())]
    max_errors = (len(shares) - p.quorum) // 2
    try:
        r = p.sharing().robust_reconstruct(shares, length=p.dimension, max_errors=max_errors)
    except (InconsistentShares, ThresholdNotMet):
        return replace(s, phase=Phase.ABORTED, reason="inconsistent-partial-sums"), []
    if len(shares) - len(r.bad_points) < p.quorum + p.max_byzantine:
        # With f Byzantine aggregators, t + k + f agreeing points hold t + k
        # honest ones, which fix the polynomial (spec 09, receiver).
        return replace(s, phase=Phase.ABORTED, reason="inconsistent-partial-sums"), []
    return replace(s, phase=Phase.RELEASED, result=r.secret, faulty=r.bad_points), []


_Handler = Callable[[State, Event], tuple[State, list[Output]]]

_HANDLERS: Mapping[tuple[Role, str], _Handler] = {
    ("contributor", "start"): _contributor_start,  # type: ignore[dict-item]
    ("contributor", "decision"): _contributor_decision,  # type: ignore[dict-item]
    ("contributor", "abort"): _to_aborted,
    ("contributor", "timeout"): _to_aborted,
    ("aggregator", "start"): _aggregator_start,  # type: ignore[dict-item]
    ("aggregator", "share"): _aggregator_share,  # type: ignore[dict-item]
    ("aggregator", "timeout"): _aggregator_timeout,  # type: ignore[dict-item]
    ("aggregator", "decision"): _aggregator_decision,  # type: ignore[dict-item]
    ("aggregator", "echo"): _aggregator_echo,  # type: ignore[dict-item]
    ("aggregator", "abort"): _to_aborted,
    ("coordinator", "start"): _coordinator_start,  # type: ignore[dict-item]
    ("coordinator", "report"): _coordinator_report_or_takeover,  # type: ignore[dict-item]
    ("coordinator", "timeout"): _coordinator_timeout,  # type: ignore[dict-item]
    ("coordinator", "decision"): _coordinator_follow,  # type: ignore[dict-item]
    ("coordinator", "abort"): _to_aborted,
    ("receiver", "start"): _receiver_start,  # type: ignore[dict-item]
    ("receiver", "partial_sum"): _receiver_partial,  # type: ignore[dict-item]
    ("receiver", "timeout"): _receiver_timeout,  # type: ignore[dict-item]
    ("receiver", "abort"): _to_aborted,
}


def mermaid(role: Role) -> str:
    """The Mermaid state diagram of ``role``, generated from :data:`TRANSITIONS`.

    Spec: spec/09-protocol.md#state-machines
    """
    lines = ["stateDiagram-v2", f"    [*] --> {Phase.IDLE.value}"]
    edges: dict[tuple[Phase, Phase], list[str]] = {}
    for (src, kind), targets in TRANSITIONS[role].items():
        for dst in sorted(targets, key=lambda ph: ph.value):
            edges.setdefault((src, dst), []).append(kind)
    for (src, dst), kinds in sorted(edges.items(), key=lambda kv: (kv[0][0].value, kv[0][1].value)):
        lines.append(f"    {src.value} --> {dst.value}: {', '.join(sorted(kinds))}")
    for ph in sorted(TERMINAL, key=lambda ph: ph.value):
        if any(ph in t for t in TRANSITIONS[role].values()):
            lines.append(f"    {ph.value} --> [*]")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------- JSON forms
# Spec: spec/09-protocol.md#state-encoding


def _vectors_json(m: Mapping[int, Elements] | Mapping[int, Field]) -> list[dict[str, object]]:
    return [{"node": i, "values": m[i].to_json()} for i in sorted(m)]


#: Stages are below 2^16 (spec/09-protocol.md#parameters).
_MAX_STAGE = (1 << 16) - 1
_SEED_HEX = re.compile(f"[0-9a-f]{{{2 * SEED_SIZE}}}")
#: A variance as ``str(Fraction)`` writes it: 0, or a positive integer or fraction.
_VARIANCE = re.compile(r"0|[1-9][0-9]*(/[1-9][0-9]*)?")


def _int_from(v: object, name: str, *, lo: int, hi: int) -> int:
    """``v`` if it is a JSON integer (not a bool, not a float) in ``[lo, hi]``."""
    if type(v) is not int or not lo <= v <= hi:
        raise LocalProtocolError(f"{name} must be an integer in [{lo}, {hi}]; got {_shown(v)}")
    return v


def _node_from(v: object, name: str) -> int:
    return _int_from(v, name, lo=1, hi=MAX_NODE_ID)


def _stage_from(v: object, name: str) -> int:
    return _int_from(v, name, lo=0, hi=_MAX_STAGE)


def _shown(v: object) -> str:
    """``repr(v)``, cut short: a hostile value may be huge."""
    text = repr(v) if not isinstance(v, int) or v.bit_length() < 256 else "a huge integer"
    return text if len(text) <= 80 else text[:77] + "..."


def _ids_from(v: object, name: str) -> tuple[int, ...]:
    """A list of node ids, strictly ascending (every id list the encoder writes is)."""
    if not isinstance(v, list):
        raise LocalProtocolError(f"{name} must be a list of node ids; got {_shown(v)}")
    ids = tuple(_node_from(i, f"{name}[{k}]") for k, i in enumerate(v))
    if any(a >= b for a, b in itertools.pairwise(ids)):
        raise LocalProtocolError(f"{name} must be strictly ascending node ids; got {_shown(v)}")
    return ids


def _seed_from(v: object, name: str) -> Seed | None:
    """``null`` or a seed as exactly ``2·SEED_SIZE`` lower-case hex digits."""
    if v is None:
        return None
    if not isinstance(v, str) or not _SEED_HEX.fullmatch(v):
        raise LocalProtocolError(
            f"{name} must be null or {2 * SEED_SIZE} lower-case hex digits; got {_shown(v)}"
        )
    return as_seed(bytes.fromhex(v))


def _field_from(p: RoundParams, v: object, name: str, *, length: int) -> Field:
    """``length`` canonical decimal strings, each below the round's modulus."""
    if not isinstance(v, list):
        raise LocalProtocolError(f"{name} must be a list of decimal strings; got {_shown(v)}")
    if len(v) != length:
        raise LocalProtocolError(f"{name} must have {length} elements; got {len(v)}")
    try:
        return p.field.from_json(v)
    except EncodingError as exc:
        raise LocalProtocolError(f"{name}: {exc}") from None


def _rational_from(p: RoundParams, v: object, name: str) -> Fraction:
    """A variance ``>= 0`` as ``str(Fraction)`` writes it: ``"0"``, ``"a"`` or ``"a/b"`` in
    lowest terms, and no longer than the round's target variance allows."""
    # The variances of a round are the target scaled by ratios of small counts
    # (spec/07-noise-plan.md), so their digits exceed the target's by a little.
    limit = 2 * len(str(p.noise.target_variance)) + 128
    if not isinstance(v, str) or len(v) > limit or not _VARIANCE.fullmatch(v):
        raise LocalProtocolError(
            f"{name} must be a rational string '0', 'a' or 'a/b' of at most {limit} "
            f"characters; got {_shown(v)}"
        )
    try:
        r = Fraction(v)
    except ValueError:  # more digits than Python converts
        raise LocalProtocolError(f"{name} has too many digits; got {_shown(v)}") from None
    if str(r) != v:
        raise LocalProtocolError(f"{name} must be in lowest terms ({r}); got {_shown(v)}")
    return r


_T = TypeVar("_T")


def _by_node_from(
    items: object, name: str, key: str, parse: Callable[[object, str], _T]
) -> dict[int, _T]:
    """``[{"node", key}]``, strictly ascending by node; each ``key`` value read by ``parse``
    (given the value and its place, ``name[k].key``, for its errors)."""
    if not isinstance(items, list):
        raise LocalProtocolError(f"{name} must be a list of {{node, {key}}}; got {_shown(items)}")
    out: dict[int, _T] = {}
    last = 0
    for k, item in enumerate(items):
        if not isinstance(item, dict) or set(item) != {"node", key}:
            raise LocalProtocolError(f"{name} entries must be {{node, {key}}}; got {_shown(item)}")
        node = _node_from(item["node"], f"{name}[{k}].node")
        if node <= last:
            raise LocalProtocolError(f"{name} must be strictly ascending by node; got {node}")
        last = node
        out[node] = parse(item[key], f"{name}[{k}].{key}")
    return out


def _vectors_from(p: RoundParams, items: object, name: str) -> dict[int, Elements]:
    """``[{"node", "values"}]``, strictly ascending by node, each of the round's share length."""

    def values(v: object, where: str) -> Elements:
        return Elements.of(_field_from(p, v, where, length=p.share_length))

    return _by_node_from(items, name, "values", values)


def _triple_from(v: object, name: str) -> tuple[int, tuple[int, ...], tuple[int, ...]] | None:
    """``null`` or ``{"stage", "contributors", "aggregators"}``."""
    if v is None:
        return None
    if not isinstance(v, dict) or set(v) != {"stage", "contributors", "aggregators"}:
        raise LocalProtocolError(
            f"{name} must be null or {{stage, contributors, aggregators}}; got {_shown(v)}"
        )
    return (
        _stage_from(v["stage"], f"{name}.stage"),
        _ids_from(v["contributors"], f"{name}.contributors"),
        _ids_from(v["aggregators"], f"{name}.aggregators"),
    )


def _reports_from(v: object) -> dict[int, frozenset[int]]:
    """``[{"node", "holds"}]``, strictly ascending by node."""
    return _by_node_from(v, "state.reports", "holds", lambda h, w: frozenset(_ids_from(h, w)))


def _decided_from(v: object, name: str) -> Decided:
    decided = _triple_from(v, name)
    if decided is None:
        raise LocalProtocolError(f"{name} must not be null")
    return decided


def _echoes_from(v: object) -> dict[int, Decided]:
    """``[{"node", "decision"}]``, strictly ascending by node."""
    return _by_node_from(v, "state.echoes", "decision", _decided_from)


def _choice_from(v: object, name: str, choices: Iterable[str]) -> str:
    options = sorted(choices)
    if not isinstance(v, str) or v not in options:
        raise LocalProtocolError(f"{name} must be one of {options}; got {_shown(v)}")
    return v


def _compact(v: Field | None) -> Elements | None:
    return None if v is None else Elements.of(v)


def _ids_json(ids: Iterable[int]) -> list[int]:
    return sorted(ids)


def _triple_json(
    triple: tuple[int, tuple[int, ...], tuple[int, ...]] | None,
) -> dict[str, object] | None:
    """A decision's ``(stage, contributors, aggregators)`` as an object, or ``None``."""
    if triple is None:
        return None
    stage, contributors, aggregators = triple
    return {"stage": stage, "contributors": list(contributors), "aggregators": list(aggregators)}


def state_to_json(state: State) -> dict[str, object]:
    """The JSON form of a role machine's state (without its parameters).

    Spec: spec/09-protocol.md#state-encoding
    """
    out: dict[str, object] = {
        "role": state.role,
        "node": state.node,
        "phase": state.phase.value,
        "reason": state.reason,
        "stage": state.stage,
    }
    if isinstance(state, ContributorState):
        out |= {
            "seed": None if state.seed is None else state.seed.hex(),
            "contribution": None if state.contribution is None else state.contribution.to_json(),
            "dropouts": state.dropouts,
            "noise_variance": str(state.noise_variance),
        }
    elif isinstance(state, AggregatorState):
        out |= {
            "expected": list(state.expected),
            "prior": _ids_json(state.prior),
            "delivered": _ids_json(state.delivered),
            "early": _vectors_json(state.early),
            "held": _vectors_json(state.held),
        }
        if state.params.backups:  # spec 09, failover
            out["view"] = state.view
        if state.params.echoes:  # the echo exchange's keys (spec 09, the echo exchange)
            out |= {
                "answer": _triple_json(state.answer),
                "echoes": [
                    {"node": j, "decision": _triple_json(state.echoes[j])}
                    for j in sorted(state.echoes)
                ],
            }
    elif isinstance(state, CoordinatorState):
        out |= {
            "expected": list(state.expected),
            "dropouts": state.dropouts,
            "reports": [
                {"node": j, "holds": _ids_json(state.reports[j])} for j in sorted(state.reports)
            ],
            "decision": _triple_json(state.decision),
        }
        if state.params.backups:  # spec 09, failover
            out["followed"] = _triple_json(state.followed)
    else:
        out |= {
            "covers": _triple_json(state.covers),
            "partials": _vectors_json(state.partials),
            "result": None if state.result is None else state.result.to_json(),
            "faulty": list(state.faulty),
        }
    return out


def state_from_json(params: RoundParams, obj: object) -> State:
    """Parse :func:`state_to_json`'s form for a round with ``params``.

    Spec: spec/09-protocol.md#state-encoding

    Every value must have exactly the JSON type the encoder writes, and be in
    range: nothing is coerced (no ``1.0`` or ``true`` for a node id, no
    ``"7"`` for a count, no string for a list).

    Raises:
        LocalProtocolError: the object is not a state of this round (the
            message names the key).
    """
    if not isinstance(obj, dict):
        raise LocalProtocolError(f"a state must be a JSON object; got {_shown(obj)}")
    role = _choice_from(obj.get("role"), "state.role", STATE_TYPES)
    node = _node_from(obj.get("node"), "state.node")
    base = initial(params, node=node, role=role)  # type: ignore[arg-type]
    keys = set(state_to_json(base))
    if set(obj) != keys:
        raise LocalProtocolError(
            f"a {role} state has exactly the keys {sorted(keys)}; "
            f"missing {sorted(keys - set(obj))}, unexpected {sorted(set(obj) - keys)}"
        )
    phase = Phase(_choice_from(obj["phase"], "state.phase", (ph.value for ph in Phase)))
    reason = obj["reason"]
    if reason is not None:
        reason = _choice_from(reason, "state.reason", REASONS)
    stage = _stage_from(obj["stage"], "state.stage")
    common = {"phase": phase, "reason": reason, "stage": stage}
    D = params.noise.max_dropouts
    if isinstance(base, ContributorState):
        contribution = obj["contribution"]
        return replace(
            base,
            **common,
            seed=_seed_from(obj["seed"], "state.seed"),
            contribution=None
            if contribution is None
            else Elements.of(
                _field_from(params, contribution, "state.contribution", length=params.dimension)
            ),
            dropouts=_int_from(obj["dropouts"], "state.dropouts", lo=0, hi=D),
            noise_variance=_rational_from(params, obj["noise_variance"], "state.noise_variance"),
        )
    if isinstance(base, AggregatorState):
        echo: dict[str, object] = {}
        if params.backups:
            echo["view"] = _int_from(
                obj["view"], "state.view", lo=0, hi=len(params.coordinators) - 1
            )
        if params.echoes:
            echo |= {
                "answer": _triple_from(obj["answer"], "state.answer"),
                "echoes": _echoes_from(obj["echoes"]),
            }
        return replace(
            base,
            **common,
            expected=_ids_from(obj["expected"], "state.expected"),
            prior=frozenset(_ids_from(obj["prior"], "state.prior")),
            delivered=frozenset(_ids_from(obj["delivered"], "state.delivered")),
            early=_vectors_from(params, obj["early"], "state.early"),
            held=_vectors_from(params, obj["held"], "state.held"),
            **echo,  # type: ignore[arg-type]
        )
    if isinstance(base, CoordinatorState):
        return replace(
            base,
            **common,
            expected=_ids_from(obj["expected"], "state.expected"),
            dropouts=_int_from(obj["dropouts"], "state.dropouts", lo=0, hi=D),
            reports=_reports_from(obj["reports"]),
            decision=_triple_from(obj["decision"], "state.decision"),
            followed=_triple_from(obj["followed"], "state.followed") if params.backups else None,
        )
    result = obj["result"]
    return replace(
        base,
        **common,
        covers=_triple_from(obj["covers"], "state.covers"),
        partials={
            i: v.to_field(params.field)
            for i, v in _vectors_from(params, obj["partials"], "state.partials").items()
        },
        result=None
        if result is None
        else _field_from(params, result, "state.result", length=params.dimension),
        faulty=_ids_from(obj["faulty"], "state.faulty"),
    )


def event_to_json(event: Event) -> dict[str, object]:
    """The JSON form of an event. Spec: spec/09-protocol.md#state-encoding"""
    if isinstance(event, Start):
        return {
            "type": "start",
            "update": None if event.update is None else event.update.to_json(),
            "seed": None if event.seed is None else event.seed.hex(),
        }
    if isinstance(event, Timeout):
        if event.view is not None:
            return {"type": "timeout", "stage": event.stage, "view": event.view}
        return {"type": "timeout", "stage": event.stage}
    return {"type": "receive", "message": event.message.model_dump(mode="json")}


def event_from_json(params: RoundParams, obj: object) -> Event:
    """Parse :func:`event_to_json`'s form.

    Spec: spec/09-protocol.md#state-encoding

    Raises:
        LocalProtocolError: not an event; InvalidMessage: a malformed message.
    """
    if not isinstance(obj, dict):
        raise LocalProtocolError(f"an event must be a JSON object; got {_shown(obj)}")
    kind = obj.get("type")
    if kind == "start" and set(obj) == {"type", "update", "seed"}:
        update = obj["update"]
        if update is not None and not isinstance(update, list):
            raise LocalProtocolError(
                f"start.update must be null or a list of decimal strings; got {_shown(update)}"
            )
        return Start(
            update=None
            if update is None
            else _field_from(params, update, "start.update", length=len(update)),
            seed=_seed_from(obj["seed"], "start.seed"),
        )
    if kind == "timeout" and set(obj) in ({"type", "stage"}, {"type", "stage", "view"}):
        stage = obj["stage"]
        view = None
        if "view" in obj:
            view = _int_from(obj["view"], "timeout.view", lo=1, hi=len(params.coordinators) - 1)
        return Timeout(
            stage=None if stage is None else _stage_from(stage, "timeout.stage"), view=view
        )
    if kind == "receive" and set(obj) == {"type", "message"}:
        return Receive(from_obj(obj["message"]))
    raise LocalProtocolError(
        f"an event is start, timeout or receive with its keys; got {_shown(obj)}"
    )


def output_to_json(output: Output) -> dict[str, object]:
    """A message's JSON form, or ``{"timer": {stage, windows}}``."""
    if isinstance(output, Timer):
        timer: dict[str, object] = {"stage": output.stage, "windows": output.windows}
        if output.view is not None:
            timer["view"] = output.view
        return {"timer": timer}
    return {"message": output.model_dump(mode="json")}
