"""One SDL node of a deployment: its secrets, its channels and its role machines.

Spec: spec/15-deployment.md#the-node

The relay (:mod:`reference.deploy.relay`) sends a node one :class:`Request`
per step of the clock and gets one :class:`Reply` back. Between two
requests the node keeps everything in :class:`NodeState`, which the
ClientApp stores in Flower's ``context.state`` (Flower runs each message in
a fresh process, so nothing else survives). What the node holds there is
its own: the secret root of its noise, sampling and sharing (drawn from
:mod:`secrets`, or derived from the public seed in the deterministic test
mode), its session key, its channel keys, and its machines' states in
spec 09's state encoding. None of it is ever sent: the node sends only
sealed frames, the timers its machines ask for, and, as a receiver, the
state of its receiver machine (the release, which is public).

A request is handled as one batch: key frames first, then the round's
start (if any), then the frames, in the order the relay got them, then the
timers due. A message a node sends itself is handed to its own machine at
once; every other is sealed to its recipient (spec/14-channels.md#sealing).
A frame that does not open is counted by fault and dropped; a message a
machine refuses is counted and dropped (spec/09-protocol.md#state-machines:
the state is unchanged).
"""

from __future__ import annotations

import json
import os
import secrets
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from protocol.channels import (
    DEFAULT_SUITE,
    SessionKey,
    endpoints_roles,
    open_frame,
    suite_named,
)
from protocol.errors import ChannelError, LocalProtocolError, ParameterError, ProtocolError
from protocol.machine import (
    Event,
    Receive,
    ReceiverState,
    Start,
    State,
    Timeout,
    Timer,
    initial,
    state_from_json,
    state_to_json,
    step,
)
from protocol.messages import Message
from protocol.params import RoundParams
from protocol.xof import SEED_SIZE, as_seed
from reference.channels.seal import NodeChannel, NodeKeys, Session
from reference.deploy.keys import JOURNAL_FILE, load_identity, load_roster, roster_digest
from reference.deploy.task import Task, task_from_json
from reference.sim.simulate import holders

F64 = npt.NDArray[np.float64]

#: One window of the protocol's timers, in the relay's ticks (spec/15-deployment.md#the-clock):
#: a frame takes one tick, less than a window, so every frame between live nodes is on time.
WINDOW_TICKS = 2

#: A key frame starts with these bytes, a data frame with ``SDLF`` (spec/14-channels.md#header).
KEY_FRAME_MAGIC = b"SDLK"


@dataclass(frozen=True, slots=True)
class Request:
    """What the relay sends a node at one step. Spec: spec/15-deployment.md#requests

    - ``hello``: the job's public configuration and the roster's name; the
      node answers with its node id and its signed session key.
    - ``keys``: every node's signed session key; the node answers with one
      key frame to each peer.
    - ``tick``: frames to open, the timers now due, and on a round's first
      tick (``start``) the round number and the public model.
    """

    op: str
    #: The task's JSON form (:mod:`reference.deploy.task`), in a ``hello``.
    job: Mapping[str, Any] | None = None
    suite: str = DEFAULT_SUITE.name
    roster_sha256: str | None = None
    adverts: Sequence[Mapping[str, Any]] = ()
    round: int = 0
    start: bool = False
    model: F64 | None = None
    frames: Sequence[bytes] = ()
    #: Timers now due, as ``(role, stage, view)`` (``view``: an aggregator's view timer).
    timeouts: Sequence[tuple[str, int | None, int | None]] = ()


@dataclass(slots=True)
class Reply:
    """What a node answers. Spec: spec/15-deployment.md#replies"""

    node: int
    frames: list[tuple[int, bytes]] = field(default_factory=list)
    #: Timers the machines asked for, as ``(role, stage, windows, view)``.
    timers: list[tuple[str, int | None, int, int | None]] = field(default_factory=list)
    advert: Mapping[str, Any] | None = None
    #: The node's receiver state once it is terminal (spec 09's state encoding), without
    #: its partial sums and with its result carried apart, in ``release``.
    receiver: Mapping[str, Any] | None = None
    #: The released sum in the field's canonical bytes (spec/02-field.md), once released.
    release: bytes | None = None
    #: Every machine of the round is terminal.
    done: bool = False
    #: Why each machine that aborted did (role -> reason; spec/09-protocol.md#abort-reasons).
    reasons: dict[str, str] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)
    refused: dict[str, int] = field(default_factory=dict)
    sampled: int = 0
    #: Why the node stays out (a restarted node, ``spec/15-deployment.md#restarts``).
    absent: str | None = None
    #: Timers this node asked for that can no longer change anything, as ``(role, stage)``
    #: (spec/15-deployment.md#void-timers): the relay need not deliver them.
    void: list[tuple[str, int | None, int | None]] = field(default_factory=list)


@dataclass(slots=True)
class NodeState:
    """Everything a node keeps between two requests. **Secret**: it never leaves the node."""

    node: int
    job: dict[str, Any]
    roster_sha256: str
    session_secret: bytes
    #: The root of the node's noise, sampling and sharing (``None``: deterministic mode).
    root: bytes | None
    suite: str = DEFAULT_SUITE.name
    adverts: list[dict[str, Any]] = field(default_factory=list)
    channel: dict[str, object] | None = None
    round: int | None = None
    machines: dict[str, dict[str, object]] = field(default_factory=dict)
    #: The round's timers not yet delivered, as ``[role, stage, view]``.
    timers: list[list[Any]] = field(default_factory=list)

    def to_bytes(self) -> bytes:
        return json.dumps(
            {
                "node": self.node,
                "job": self.job,
                "roster_sha256": self.roster_sha256,
                "session_secret": self.session_secret.hex(),
                "root": None if self.root is None else self.root.hex(),
                "suite": self.suite,
                "adverts": self.adverts,
                "channel": self.channel,
                "round": self.round,
                "machines": self.machines,
                "timers": self.timers,
            },
            separators=(",", ":"),
        ).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> NodeState:
        try:
            obj = json.loads(data)
            return cls(
                node=int(obj["node"]),
                job=dict(obj["job"]),
                roster_sha256=str(obj["roster_sha256"]),
                session_secret=bytes.fromhex(obj["session_secret"]),
                root=None if obj["root"] is None else bytes.fromhex(obj["root"]),
                suite=str(obj["suite"]),
                adverts=list(obj["adverts"]),
                channel=obj["channel"],
                round=obj["round"],
                machines=dict(obj["machines"]),
                timers=[list(t) for t in obj["timers"]],
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise LocalProtocolError(f"the node's saved state does not load: {exc}") from None


@dataclass(frozen=True, slots=True)
class NodeSetup:
    """What a node is given by its operator (Flower's node config): where its keys live."""

    node_dir: Path
    roster: Path


# A task (its plan: data split, encoding, calibrated noise) is a pure function of its
# public JSON form; a process builds each once.
_TASKS: dict[str, Task] = {}


def _task(st: NodeState) -> Task:
    key = json.dumps(st.job, sort_keys=True)
    task = _TASKS.get(key)
    if task is None:
        task = _TASKS[key] = task_from_json(st.job)
    return task


class Node:
    """A node's side of one step: load its state, handle the request, keep the new state."""

    def __init__(self, setup: NodeSetup, saved: bytes | None) -> None:
        self.setup = setup
        self.node, self.identity = load_identity(setup.node_dir)
        self.state = NodeState.from_bytes(saved) if saved is not None else None
        self.rejected: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()

    def saved(self) -> bytes | None:
        return None if self.state is None else self.state.to_bytes()

    def handle(self, request: Request) -> Reply:
        """One step. Raises ``ParameterError`` for a request no honest relay sends."""
        if request.op == "hello":
            return self._hello(request)
        if self.state is None:
            # A node that has no state but is spoken to as a member: it restarted.
            return Reply(self.node, absent="restarted: this node lost its session state")
        if request.op == "keys":
            return self._keys(request)
        if request.op == "tick":
            return self._tick(request)
        raise ParameterError(f"unknown request {request.op!r}")

    # ------------------------------------------------------------------ setup

    def _hello(self, request: Request) -> Reply:
        if request.job is None or request.roster_sha256 is None:
            raise ParameterError("a hello carries the task and the roster's name")
        roster = load_roster(self.setup.roster)
        if roster_digest(roster) != request.roster_sha256:
            raise ParameterError(
                f"node {self.node} holds roster {roster_digest(roster)[:16]}…, the run names "
                f"{request.roster_sha256[:16]}…: refusing a roster it was not given out of band"
            )
        if roster.keys.get(self.node) != _public(self.identity):
            raise ParameterError(f"node {self.node}'s identity is not the roster's key for it")
        task = task_from_json(dict(request.job))
        session = task.session
        if self.state is not None and _task(self.state).session == session:
            # The same session asked twice (a lost reply): answer the same.
            keys = self._keys_of(self.state)
            return Reply(self.node, advert=keys.advertise(session).to_json())
        if _journal_has(self.setup.node_dir, session.hex()):
            return Reply(
                self.node,
                absent=(
                    f"restarted: node {self.node} joined session {session.hex()[:16]}… before "
                    "and lost its state; it does not start that session's rounds again"
                ),
            )
        suite = suite_named(request.suite)
        self.state = NodeState(
            node=self.node,
            job=dict(request.job),
            roster_sha256=request.roster_sha256,
            session_secret=secrets.token_bytes(suite.secret_size),
            root=None if task.deterministic else secrets.token_bytes(SEED_SIZE),
            suite=suite.name,
        )
        _journal_add(self.setup.node_dir, {"session": session.hex()})
        keys = self._keys_of(self.state)
        return Reply(self.node, advert=keys.advertise(session).to_json())

    def _keys_of(self, st: NodeState) -> NodeKeys:
        return NodeKeys(self.node, suite_named(st.suite), self.identity, st.session_secret)

    def _session(self, st: NodeState) -> Session:
        suite = suite_named(st.suite)
        adverts = [SessionKey.from_json(a) for a in st.adverts]
        return Session.establish(_task(st).session, suite, load_roster(self.setup.roster), adverts)

    def _keys(self, request: Request) -> Reply:
        st = self.state
        assert st is not None
        st.adverts = [dict(a) for a in request.adverts]
        channel = NodeChannel(self._keys_of(st), self._session(st))
        frames = channel.key_frames(sorted(load_roster(self.setup.roster).keys))
        st.channel = channel.export()
        return Reply(self.node, frames=sorted(frames.items()))

    # ------------------------------------------------------------------ rounds

    def _tick(self, request: Request) -> Reply:
        st = self.state
        assert st is not None and st.channel is not None
        task = _task(st)
        channel = NodeChannel.restore(self._keys_of(st), self._session(st), st.channel)
        reply = Reply(self.node)
        data = [f for f in request.frames if not f.startswith(KEY_FRAME_MAGIC)]
        for frame in request.frames:
            if frame.startswith(KEY_FRAME_MAGIC):
                try:
                    channel.accept(frame)
                except ChannelError as exc:
                    self.rejected[exc.fault] += 1
        start = request.start
        if start and st.round is not None and request.round <= st.round:
            # A round is started once: a second start (a relay that replays or misbehaves)
            # is refused, and the request is handled as a tick of the round running
            # (proofs_notes/deployment-no-second-sharing.md).
            self.refused["start-of-a-started-round"] += 1
            start = False
        r = request.round if start else st.round
        if r is None:
            raise ParameterError(f"node {self.node} has no round running and this is no start")
        params = task.round_params(r, window=WINDOW_TICKS)
        batch = _Batch(self.node, params, channel, reply, self.refused)
        if start:
            # Durable before the first share leaves: a restarted node must know it started.
            _journal_add(self.setup.node_dir, {"session": params.session.hex(), "round": r})
            st.round = r
            self._start(task, request.model, r, batch)
        else:
            batch.machines = {
                role: state_from_json(params, obj) for role, obj in st.machines.items()
            }
        endpoint = channel.endpoint(
            roles=endpoints_roles(holders(params)).get(self.node, ()), round=r,
            field=params.field,
        )  # fmt: skip
        for frame in data:
            try:
                message = open_frame(frame, endpoint).message
            except ChannelError as exc:
                self.rejected[exc.fault] += 1
                continue
            batch.step(message.role, Receive(message))
        for role, stage, view in request.timeouts:
            held = batch.machines.get(role)
            if held is None or held.terminal:
                continue  # a terminal machine's timers are cancelled (spec 09, timers)
            batch.step(role, Timeout(stage=stage, view=view))
        self._void_timers(st, request, batch)
        st.machines = {role: state_to_json(s) for role, s in batch.machines.items()}
        st.channel = channel.export()
        reply.done = all(s.terminal for s in batch.machines.values())
        reply.reasons = {
            role: s.reason for role, s in sorted(batch.machines.items()) if s.reason is not None
        }
        receiver = batch.machines.get("receiver")
        if isinstance(receiver, ReceiverState) and receiver.terminal:
            # The partial sums stay here (the release is what they reveal); the release
            # travels as bytes, not as a JSON list of d numbers.
            reply.receiver = {**state_to_json(receiver), "partials": [], "result": None}
            reply.release = None if receiver.result is None else receiver.result.encode()
        reply.rejected = dict(self.rejected)
        reply.refused = dict(self.refused)
        return reply

    def _void_timers(self, st: NodeState, request: Request, batch: _Batch) -> None:
        """Keep the round's pending timers; report those that can no longer matter.

        A timer is void when its machine is terminal, or when a ``Timeout`` now would
        leave the machine as it is and send nothing (its stage is decided or reported).
        Stages only advance, so a timer void now is void for good
        (spec/15-deployment.md#void-timers). The trial step is free: states are immutable.
        """
        pending = [] if request.start else [tuple(t) for t in st.timers]
        for t in request.timeouts:
            if t in pending:
                pending.remove(t)
        pending += [(role, stage, view) for role, stage, _, view in batch.reply.timers]
        keep = []
        for role, stage, view in pending:
            held = batch.machines.get(str(role))
            void = held is None or held.terminal
            if not void:
                assert held is not None
                try:
                    new, outputs = step(held, Timeout(stage=stage, view=view))
                    void = new is held and not outputs
                except ProtocolError:
                    void = True
            if void:
                batch.reply.void.append(
                    (str(role), None if stage is None else int(stage),
                     None if view is None else int(view))
                )  # fmt: skip
            else:
                keep.append([role, stage, view])
        st.timers = keep

    def _start(self, task: Task, model: F64 | None, r: int, batch: _Batch) -> None:
        """The round's local step (for learning: sampling, gradients, encoding), then every
        machine's start."""
        st = self.state
        assert st is not None
        params = batch.params
        root = None if st.root is None else as_seed(st.root)
        update, seed, batch.reply.sampled = task.contribution(self.node, r, model, root)
        roles = [role for node, role in holders(params) if node == self.node]
        # Every machine exists before any starts: the contributor's share to its own
        # aggregator is handed over at once.
        for role in roles:
            batch.machines[role] = initial(params, node=self.node, role=role)
        for role in roles:
            event: Event = Start(update=update, seed=seed) if role == "contributor" else Start()
            batch.step_only(role, event)
        batch.drain()


@dataclass
class _Batch:
    """The machines of one node during one request, and what they send."""

    node: int
    params: RoundParams
    channel: NodeChannel
    reply: Reply
    refused: Counter[str]
    machines: dict[str, State] = field(default_factory=dict)
    local: deque[Message] = field(default_factory=deque)

    def step(self, role: str, event: Event) -> None:
        """Step one machine, then every message the node sent itself; seal the rest."""
        self.step_only(role, event)
        self.drain()

    def step_only(self, role: str, event: Event) -> None:
        held = self.machines.get(role)
        if held is None:
            self.refused["no-such-role"] += 1
            return
        try:
            new, outputs = step(held, event)
        except ProtocolError as exc:
            # Refused: the machine's state is unchanged (spec/09-protocol.md#state-machines).
            self.refused[type(exc).__name__] += 1
            return
        self.machines[role] = new
        for out in outputs:
            if isinstance(out, Timer):
                self.reply.timers.append((role, out.stage, out.windows, out.view))
            else:
                self.local.append(out)

    def drain(self) -> None:
        while self.local:
            m = self.local.popleft()
            if m.recipient == self.node:
                self.step_only(m.role, Receive(m))
            else:
                self.reply.frames.append((m.recipient, self.channel.seal(m, self.params.field)))


def _public(key: Any) -> bytes:
    from protocol.channels import identity_public  # noqa: PLC0415

    return identity_public(key)


def _journal_has(node_dir: Path, session: str) -> bool:
    path = node_dir / JOURNAL_FILE
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return False
    for line in lines:
        try:
            if json.loads(line).get("session") == session:
                return True
        except ValueError:
            continue  # a torn last line: the write it belonged to never finished
    return False


def _journal_add(node_dir: Path, entry: Mapping[str, Any]) -> None:
    """Append ``entry`` to the node's journal and make it durable before anything is sent."""
    fd = os.open(node_dir / JOURNAL_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, (json.dumps(dict(entry), sort_keys=True) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = [
    "Node",
    "NodeSetup",
    "NodeState",
    "Reply",
    "Request",
]
