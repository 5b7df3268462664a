"""Transcripts: read one, and verify it by replaying it through the state machines.

Spec: spec/12-transcripts.md

A transcript is JSON lines: a header with the round's parameters, then
every event a machine processed (start, delivery, timeout) in order, each
followed by what the machine did (the messages it sent, or the error it
rejected the event with), drops and crashes, and a final result line.

:func:`verify` checks that every node followed the protocol: it rebuilds
every role machine from the header, feeds it each recorded event, and
requires the recorded sends to be exactly the machine's outputs, in order.
Deliveries must carry messages that were sent (the channel is
authenticated), timeouts must fire when and for what a machine asked, and
the result must be what the final states give. The first line that breaks
a rule is named, with why.

A sealed transcript (its header has ``channels``) is checked as far as a
verifier without private keys can: the session's keys verify under its
roster, every send line between two nodes records the size of the frame
that carried it and, for the coordinator's decisions and aborts, a
statement signature by the sender's roster identity; rejected frames are
recorded between events and change nothing (:class:`_Channels`).
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from cryptography.exceptions import InvalidSignature

from protocol.channels import (
    FORWARDING_KINDS,
    SIGNATURE_SIZE,
    SIGNED_KINDS,
    Roster,
    SessionKey,
    answered_decision,
    frame_size,
    statement,
    suite_named,
    verify_statement,
)
from protocol.errors import CHANNEL_FAULTS, ChannelError, ParameterError, ProtocolError, SdlError
from protocol.machine import Event, Receive, Start, State, Timeout, Timer, initial, step
from protocol.messages import Echo, Message, PartialSum, Role, dump, from_obj
from protocol.params import RoundParams
from protocol.xof import SEED_SIZE, as_seed
from reference.channels.seal import Session
from reference.sim.simulate import (
    BYZANTINE_KINDS,
    FRAME_ATTACKS,
    TRANSCRIPT_FORMAT,
    holders,
    outcome,
)


@dataclass(frozen=True, slots=True)
class Verdict:
    """The result of :func:`verify`: valid, or the first offending line and why.

    Spec: spec/12-transcripts.md#verification
    """

    valid: bool
    line: int | None = None
    why: str | None = None
    result: Mapping[str, Any] | None = None
    #: The nodes the header declares Byzantine (exempt from rule 6), and how they deviate.
    byzantine: Mapping[int, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "line": self.line,
            "why": self.why,
            "result": self.result,
            "byzantine": {str(k): v for k, v in sorted(self.byzantine.items())},
        }


class _Invalid(Exception):
    def __init__(self, line: int, why: str) -> None:
        super().__init__(why)
        self.line = line
        self.why = why


def _diff(a: Any, b: Any, where: str = "") -> str:
    """The first path where two JSON values differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                return _diff(a.get(key), b.get(key), f"{where}.{key}" if where else key)
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return _diff(x, y, f"{where}[{i}]")
    return f"{where or 'value'}: transcript has {json.dumps(a)}, the machine gives {json.dumps(b)}"


class _Lines:
    """The transcript's lines, read and parsed one at a time (a file of any size fits).

    Each line is parsed when it is first looked at, so the first line that
    breaks a rule is the one named, whether its fault is its JSON or its content.
    """

    def __init__(self, raw: Iterable[str]) -> None:
        self._raw = iter(raw)
        self._number = 0
        #: The number of the line last consumed: the one a verdict names if
        #: checking it fails in a way no rule foresaw (see :func:`verify_lines`).
        self.current = 0
        self._text: str | None = None
        self._parsed: tuple[int, Any] | None = None
        self._advance()

    def _advance(self) -> None:
        self._parsed = None
        self._text = next(self._raw, None)
        if self._text is not None:
            self._number += 1

    def __bool__(self) -> bool:
        return self._text is not None

    @property
    def number(self) -> int:
        """The number of the line under the cursor (the last line's + 1 at the end)."""
        return self._number if self._text is not None else self._number + 1

    def peek(self) -> tuple[int, Any]:
        """The next (line number, object), without consuming it."""
        if self._text is None:
            raise _Invalid(self.number, "the transcript ends here")
        if self._parsed is None:
            try:
                self._parsed = (self._number, json.loads(self._text))
            except json.JSONDecodeError as exc:
                raise _Invalid(self._number, f"not JSON: {exc.msg}") from None
            except ValueError as exc:  # e.g. an integer past the digit limit of int()
                raise _Invalid(self._number, f"not JSON this verifier reads: {exc}") from None
            except RecursionError:
                raise _Invalid(
                    self._number, "not JSON this verifier reads: nested too deeply"
                ) from None
        return self._parsed

    def popleft(self) -> tuple[int, Any]:
        item = self.peek()
        self.current = item[0]
        self._advance()
        return item

    def next_type(self) -> object:
        """The ``type`` of the next line, or ``None`` at the end."""
        if not self:
            return None
        line = self.peek()[1]
        return line.get("type") if isinstance(line, dict) else None


def verify(text: str) -> Verdict:
    """Replay a transcript through the state machines. Spec: spec/12-transcripts.md#verification"""
    return verify_lines(text.splitlines())


def verify_lines(lines: Iterable[str]) -> Verdict:
    """:func:`verify` over lines read one at a time (an open file works).

    Any input gets a verdict: a line too deeply nested to check (it passed
    the JSON parser but not a later step, such as formatting its value for
    the verdict) is named as invalid, as is one that does not parse.
    """
    items = _Lines(lines)
    try:
        return _verify(items)
    except _Invalid as exc:
        return Verdict(False, exc.line, exc.why)
    except RecursionError:
        return Verdict(False, max(items.current, 1), "a value is nested too deeply to check")


def _digest(m: Message) -> bytes:
    # The sent set keeps digests, not messages: a transcript may hold gigabytes.
    return hashlib.sha256(dump(m).encode("utf-8")).digest()


def _get(obj: Mapping[str, Any], key: str, number: int) -> Any:
    if not isinstance(obj, Mapping) or key not in obj:
        raise _Invalid(number, f"missing key {key!r}")
    return obj[key]


def _message(obj: Any, number: int) -> Message:
    try:
        return from_obj(obj)
    except ProtocolError as exc:
        raise _Invalid(number, f"malformed message: {exc}") from None
    except RecursionError:
        raise _Invalid(number, "malformed message: nested too deeply") from None


class _Channels:
    """What a verifier without private keys checks of a round's channels.

    Spec: spec/12-transcripts.md#channels

    Built from the header: ``session`` is ``None`` for a plain transcript
    (no ``channels`` object), else the session whose keys all verified
    under the roster.
    """

    def __init__(self, params: RoundParams, session: Session | None) -> None:
        self.params = params
        self.session = session

    @classmethod
    def from_header(cls, header: Mapping[str, Any], params: RoundParams, number: int) -> _Channels:
        if "channels" not in header:
            return cls(params, None)
        obj = header["channels"]
        try:
            if not isinstance(obj, Mapping) or not isinstance(obj.get("session_keys"), list):
                raise ParameterError("channels must be an object with a session_keys list")
            rate = Fraction(str(_get(obj, "tamper_frames", number)))
            if not 0 <= rate <= 1:
                raise ParameterError(f"tamper_frames must be in [0, 1]; got {rate}")
            suite = suite_named(str(_get(obj, "suite", number)))
            roster = Roster.from_json(_get(obj, "roster", number))
            adverts = [SessionKey.from_json(a) for a in obj["session_keys"]]
            session = Session.establish(params.session, suite, roster, adverts)
        except (ChannelError, ParameterError, ValueError, ZeroDivisionError) as exc:
            raise _Invalid(number, f"invalid channels: {exc}") from None
        missing = sorted(set(params.nodes) - set(roster.keys))
        if missing:
            raise _Invalid(number, f"invalid channels: the roster names no key for nodes {missing}")
        return cls(params, session)

    def check_send(self, line: Mapping[str, Any], m: Message, number: int) -> None:
        """A send line records its frame's size and a broadcast's statement signature
        (or, in a round with Byzantine nodes, the decision signature an echo or a
        partial sum forwards)."""
        framed = self.session is not None and m.sender != m.recipient
        signed = framed and m.kind in SIGNED_KINDS
        forwards = framed and bool(self.params.max_byzantine) and m.kind in FORWARDING_KINDS
        for key, wanted in (
            ("frame_bytes", framed),
            ("statement_signature", signed),
            ("decision_signature", forwards),
        ):
            if key in line and not wanted:
                raise _Invalid(number, f"a {m.kind} {self._unframed(m)} carries no {key}")
        if not framed:
            return
        assert self.session is not None
        size = frame_size(m, self.params.field, self.session.suite, forwarded=forwards)
        if line.get("frame_bytes") != size or type(line.get("frame_bytes")) is not int:
            raise _Invalid(
                number,
                f"the frame carrying this {m.kind} is {size} bytes; the line says "
                f"{line.get('frame_bytes')!r}",
            )
        if signed:
            self._check_statement(line.get("statement_signature"), m, number)
        if forwards:
            self._check_forwarded(line.get("decision_signature"), m, number)

    def _check_forwarded(self, signature: object, m: Message, number: int) -> None:
        """An echo or a partial sum answers a final decision the coordinator signed."""
        assert self.session is not None and isinstance(m, Echo | PartialSum)
        coordinator = self.params.coordinator
        why = (
            f"node {m.sender}'s {m.kind} to node {m.recipient} answers a final decision for "
            f"stage {m.stage} that the coordinator, node {coordinator}, did not sign"
        )
        if not isinstance(signature, str) or len(signature) != 2 * SIGNATURE_SIZE:
            raise _Invalid(number, f"{why}: decision_signature must be {SIGNATURE_SIZE} bytes hex")
        decision = statement(answered_decision(m, coordinator))
        try:
            self.session.roster.identity(coordinator).verify(bytes.fromhex(signature), decision)
        except (InvalidSignature, ValueError):
            raise _Invalid(number, why) from None

    def _unframed(self, m: Message) -> str:
        if self.session is None:
            return "in a transcript without channels"
        if m.sender == m.recipient:
            return "from a node to itself (no frame)"
        if m.kind in FORWARDING_KINDS and not self.params.max_byzantine:
            return "in a round with max_byzantine = 0"
        return "(only a decision or an abort has a statement)"

    def _check_statement(self, signature: object, m: Message, number: int) -> None:
        assert self.session is not None
        who = "the coordinator" if m.sender == self.params.coordinator else f"node {m.sender}"
        why = f"{who}'s {m.kind} to node {m.recipient} is not signed by its roster identity"
        if not isinstance(signature, str) or len(signature) != 2 * SIGNATURE_SIZE:
            raise _Invalid(number, f"{why}: statement_signature must be {SIGNATURE_SIZE} bytes hex")
        try:
            verify_statement(m, bytes.fromhex(signature), self.session.roster)
        except (ChannelError, ValueError):
            raise _Invalid(number, why) from None

    def check_reject(
        self,
        line: Mapping[str, Any],
        number: int,
        *,
        since: int,
        crashed: set[int],
        pending: deque[Message],
    ) -> int:
        """A frame_reject line: where it may stand and what it names; returns its time."""
        if self.session is None:
            raise _Invalid(number, "a frame_reject line in a transcript without channels")
        if pending:
            raise _Invalid(
                number,
                f"a frame_reject line between a step and its sends: node {pending[0].sender}'s "
                f"{pending[0].kind} to node {pending[0].recipient} must come first",
            )
        time = _get(line, "time", number)
        if type(time) is not int or time < since:
            raise _Invalid(number, f"time must be an int that never decreases; got {time!r}")
        node = _get(line, "node", number)
        if type(node) is not int or node not in self.params.nodes:
            raise _Invalid(number, f"a frame is rejected at node {node!r}, not a node of the round")
        if node in crashed:
            raise _Invalid(number, f"node {node} crashed; it opens no more frames")
        for key, allowed in (("fault", CHANNEL_FAULTS), ("attack", FRAME_ATTACKS)):
            if _get(line, key, number) not in allowed:
                raise _Invalid(
                    number, f"{key} must be one of {', '.join(allowed)}; got {line[key]!r}"
                )
        return time


def _header(number: int, header: Any) -> tuple[RoundParams, list[int], _Channels, dict[int, str]]:
    """The round's parameters, colluders, channels and Byzantine nodes from the header line."""
    if not isinstance(header, dict) or header.get("type") != "header":
        raise _Invalid(number, "the first line must be the header")
    if header.get("format") != TRANSCRIPT_FORMAT:
        raise _Invalid(
            number, f"format must be {TRANSCRIPT_FORMAT!r}; got {header.get('format')!r}"
        )
    try:
        params = RoundParams.from_json(_get(header, "params", number))
    except (SdlError, KeyError, TypeError, ValueError, OverflowError) as exc:
        raise _Invalid(number, f"invalid params: {exc}") from None
    colluders = _get(header, "colluders", number)
    if not isinstance(colluders, list) or not all(type(c) is int for c in colluders):
        raise _Invalid(number, f"colluders must be a list of node ids; got {colluders!r}")
    byzantine: dict[int, str] = {}
    declared = header.get("byzantine", {})
    if not isinstance(declared, dict) or ("byzantine" in header and not declared):
        raise _Invalid(number, f"byzantine must be a non-empty object; got {declared!r}")
    for node, kind in declared.items():
        if not node.isdigit() or int(node) not in params.nodes or kind not in BYZANTINE_KINDS:
            raise _Invalid(
                number,
                f"byzantine maps a node of the round to one of {', '.join(BYZANTINE_KINDS)}; "
                f"got {node!r}: {kind!r}",
            )
        byzantine[int(node)] = kind
    return params, colluders, _Channels.from_header(header, params, number), byzantine


def _verify(items: _Lines) -> Verdict:
    if not items:
        raise _Invalid(1, "empty transcript: expected a header line")
    params, colluders, channels, byzantine = _header(*items.popleft())
    states: dict[tuple[int, Role], State] = {
        (node, role): initial(params, node=node, role=role) for node, role in holders(params)
    }
    timers: dict[tuple[int, Role], list[tuple[int, int | None, int | None]]] = {
        k: [] for k in states
    }
    started: set[tuple[int, Role]] = set()
    sent: set[bytes] = set()
    sends_by: dict[int, int] = dict.fromkeys(params.nodes, 0)
    crashed: set[int] = set()
    expect: deque[Message] = deque()
    last_time = 0
    #: The Byzantine node whose step came last (its sends follow), or 0.
    byzantine_turn = 0

    while items:
        number, line = items.popleft()
        kind = _get(line, "type", number)
        if kind == "send":
            m = _message(_get(line, "message", number), number)
            if m.sender in byzantine and byzantine_turn == m.sender and not expect:
                # A declared Byzantine node sends what it likes after its steps; the
                # channel's rules (frame size, signatures) still hold for it.
                channels.check_send(line, m, number)
                sent.add(_digest(m))
                sends_by[m.sender] += 1
                continue
            if not expect:
                raise _Invalid(
                    number,
                    f"node {m.sender} sends a {m.kind} that no step of its machine produces here",
                )
            want = expect.popleft()
            if dump(m) != dump(want):
                raise _Invalid(
                    number,
                    f"node {want.sender}'s {want.kind} differs from what its machine sends: "
                    + _diff(m.model_dump(mode="json"), want.model_dump(mode="json")),
                )
            channels.check_send(line, m, number)
            sent.add(_digest(m))
            sends_by[m.sender] += 1
            continue
        if kind == "drop":
            m = _message(_get(line, "message", number), number)
            if _digest(m) not in sent:
                raise _Invalid(number, "the network drops a message nobody sent")
            continue
        if kind == "crash":
            node = _get(line, "node", number)
            if type(node) is not int or not expect or expect[0].sender != node:
                raise _Invalid(number, f"node {node} crashes while it is not sending")
            if _get(line, "sent", number) != sends_by.get(node):
                raise _Invalid(
                    number,
                    f"node {node} crashes after {sends_by.get(node)} sends, not {line['sent']}",
                )
            crashed.add(node)
            expect.clear()
            continue
        if kind == "frame_reject":
            last_time = channels.check_reject(
                line, number, since=last_time, crashed=crashed, pending=expect
            )
            continue
        if expect:
            raise _Invalid(
                number,
                f"node {expect[0].sender}'s machine also sends a {expect[0].kind} to node "
                f"{expect[0].recipient} that the transcript does not show",
            )
        if kind == "result":
            return _check_result(
                line,
                number,
                params=params,
                states=states,
                colluders=colluders,
                byzantine=byzantine,
                crashed=crashed,
                timers=timers,
                rest=items,
            )
        if kind == "reject":
            raise _Invalid(number, "a reject line must follow the event it rejects")
        time = _get(line, "time", number)
        if type(time) is not int or time < last_time:
            raise _Invalid(number, f"time must be an int that never decreases; got {time!r}")
        last_time = time
        node, role = _get(line, "node", number), _get(line, "role", number)
        named = type(node) is int and type(role) is str  # (a list is not even hashable)
        if not named or (node, role) not in states:
            raise _Invalid(number, f"node {node!r} holds no {role!r} machine in this round")
        if node in crashed:
            raise _Invalid(number, f"node {node} crashed; it processes nothing more")
        state = states[(node, role)]
        event = _event(
            line,
            number,
            kind=kind,
            params=params,
            state=state,
            timers=timers,
            started=started,
            sent=sent,
        )
        try:
            new, outputs = step(state, event)
        except ProtocolError as exc:
            if items.next_type() != "reject":
                raise _Invalid(
                    number,
                    f"the {role} at node {node} rejects this with {type(exc).__name__} "
                    f"({exc}); the transcript does not say so",
                ) from None
            rnumber, reject = items.popleft()
            if reject.get("error") != type(exc).__name__ or reject.get("node") != node:
                raise _Invalid(  # noqa: B904  (the verdict, not a failure of the replay)
                    rnumber,
                    f"the rejection must be {type(exc).__name__} at node "
                    f"{node}; got {reject.get('error')!r}",
                )
            continue
        if items.next_type() == "reject":
            raise _Invalid(items.number, f"the {role} at node {node} accepts the event before it")
        states[(node, role)] = new
        byzantine_turn = node if node in byzantine else 0
        for out in outputs:
            if isinstance(out, Timer):
                timers[(node, role)].append(
                    (time + out.windows * params.window, out.stage, out.view)
                )
            elif not byzantine_turn:
                expect.append(out)
    raise _Invalid(items.number, "the transcript ends without a result line")


def _event(
    line: Mapping[str, Any],
    number: int,
    *,
    kind: str,
    params: RoundParams,
    state: State,
    timers: dict[tuple[int, Role], list[tuple[int, int | None, int | None]]],
    started: set[tuple[int, Role]],
    sent: set[bytes],
) -> Event:
    key = (state.node, state.role)
    if kind == "start":
        if key in started:
            raise _Invalid(number, f"the {state.role} at node {state.node} starts twice")
        started.add(key)
        if state.role != "contributor":
            return Start()
        try:
            update = params.field.from_json(_get(line, "update", number))
            seed = bytes.fromhex(_get(line, "seed", number))
        except (SdlError, ValueError, TypeError) as exc:
            raise _Invalid(number, f"invalid start: {exc}") from None
        if len(seed) != SEED_SIZE:
            raise _Invalid(number, f"seed must be {SEED_SIZE} bytes")
        return Start(update=update, seed=as_seed(seed))
    if kind == "timeout":
        due = (line.get("time"), line.get("stage"), line.get("view"))
        if due not in timers[key]:
            view = "" if due[2] is None else f" (view {due[2]})"
            raise _Invalid(
                number,
                f"the {state.role} at node {state.node} set no timer for "
                f"stage {due[1]}{view} due at time {due[0]}",
            )
        timers[key].remove(due)
        return Timeout(stage=due[1], view=due[2])
    if kind == "deliver":
        m = _message(_get(line, "message", number), number)
        if _digest(m) not in sent:
            raise _Invalid(
                number,
                f"a {m.kind} from node {m.sender} is delivered but was never "
                "sent: the channel is authenticated",
            )
        if (m.recipient, m.role) != key:
            raise _Invalid(
                number,
                f"a message to the {m.role} at node {m.recipient} is "
                f"delivered to the {state.role} at node {state.node}",
            )
        return Receive(m)
    raise _Invalid(number, f"unknown line type {kind!r}")


def _check_result(
    line: Mapping[str, Any],
    number: int,
    *,
    params: RoundParams,
    states: Mapping[tuple[int, Role], State],
    colluders: list[int],
    byzantine: Mapping[int, str],
    crashed: set[int],
    timers: Mapping[tuple[int, Role], list[tuple[int, int | None, int | None]]],
    rest: _Lines,
) -> Verdict:
    if rest:
        raise _Invalid(rest.number, "nothing may follow the result line")
    for (node, role), pending in sorted(timers.items()):
        state = states[(node, role)]
        if pending and node not in crashed and not state.terminal:
            raise _Invalid(
                number,
                f"the round is not over: the {role} at node {node} is "
                f"{state.phase.value} with a timer due at time {min(t for t, _, _ in pending)}",
            )
    try:
        got = outcome(
            params, states, colluders=colluders, crashed=frozenset(crashed),
            byzantine=tuple(byzantine),
        ).to_json()  # fmt: skip
    except ParameterError as exc:
        raise _Invalid(number, f"cannot compute the result: {exc}") from None
    claimed = {k: v for k, v in line.items() if k != "type"}
    if claimed != got:
        raise _Invalid(number, f"result {_diff(claimed, got)}")
    if not got["aggregate_correct"]:
        raise _Invalid(number, "the released value is not the sum over its contributor set")
    if len(byzantine) <= params.max_byzantine and not got.get("honest_agree", True):
        raise _Invalid(number, "honest receivers released different values")
    if len(byzantine) <= params.max_byzantine and got.get("releases", 0) > 1:
        raise _Invalid(
            number,
            f"{got['releases']} different values were released with {len(byzantine)} "
            f"Byzantine nodes, within the round's max_byzantine = {params.max_byzantine}",
        )
    honest = Fraction(got["honest_noise_variance_exact"])
    if len(byzantine) > params.max_byzantine:
        # Beyond the round's bound the guarantees do not hold: the transcript is a
        # faithful record of an attack, and what it released is reported as it is.
        return Verdict(True, None, None, got, byzantine)
    if got["status"] == "released" and honest < params.noise.target_variance:
        raise _Invalid(number, "the released sum carries less honest noise than the target")
    return Verdict(True, None, None, got, byzantine)
