"""The relay and clock of a deployment: what the ServerApp runs. It holds no secret.

Spec: spec/15-deployment.md#the-relay

The relay forwards sealed frames between nodes and keeps the protocol's clock.
It runs no role machine: the coordinator, aggregators, contributors and
receivers are all nodes. What it sees is what an untrusted server sees
anyway: who sends how many bytes to whom and when, the frames' headers
(spec/14-channels.md#relay), the timers the machines ask for,
and the release (public by definition), which every receiver returns so that
the relay can check they agree, update the public model, evaluate it and
charge the accountant.

**The clock.** Time is counted in *ticks*: one tick is one exchange, in which
the relay sends every node that has something to do one request (the round's
start, the frames sent to it during the previous tick, the timers now due)
and waits for the replies. A frame sent at tick ``k`` is delivered at tick
``k + 1``; a window (spec/09-protocol.md#timers) is :data:`WINDOW_TICKS`
ticks, so every frame between live nodes is on time. A tick with nothing to
deliver is skipped: the clock jumps to the next timer due, so waiting costs
no exchange. A node that does not answer a request within ``tick_timeout``
seconds, or answers with an error, has crashed for the rest of the job: the
relay delivers it nothing more, and the protocol's timers deal with what it
did not send (spec/09-protocol.md#liveness). The engine's own dead-node
detection (missed heartbeats, about a minute) is not waited for.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from protocol.accounting import realized_event
from protocol.channels import Roster, SessionKey, suite_named, verify_session_key
from protocol.errors import (
    ChannelError,
    EncodingError,
    ParameterError,
    ProtocolError,
    RemoteProtocolError,
)
from protocol.field import Field
from protocol.machine import Phase, ReceiverState, state_from_json
from protocol.params import RoundParams
from protocol.release import round_record
from protocol.xof import Tag, derive_seed
from reference.deploy.node import WINDOW_TICKS, Reply, Request
from reference.deploy.task import LearningTask, SumTask, Task
from reference.learning.job import (
    JobResult,
    ReleaseDigest,
    RoundLog,
    apply_release,
    job_result,
    spent_epsilon,
)
from reference.learning.models import accuracy

F64 = npt.NDArray[np.float64]

#: What a progress event is: one JSON-able mapping, ``{"type": ..., ...}``.
Progress = Callable[[Mapping[str, Any]], None]


class Link(Protocol):
    """How the relay reaches the nodes: one exchange of requests for replies."""

    def nodes(self) -> list[int]:
        """The engine's ids of the nodes connected now."""
        ...

    def exchange(
        self, requests: Mapping[int, Request], timeout: float
    ) -> tuple[dict[int, Reply], dict[int, str]]:
        """Send each request (engine id -> request); return the replies in time and the
        errors (engine id -> one line) of the nodes that answered with one."""
        ...


@dataclass
class RoundRun:
    """What one round did, as the relay saw it."""

    released: Field | None
    reason: str | None
    receiver: ReceiverState | None
    ticks: int
    exchanges: int
    frames: int
    frame_bytes: int
    sampled: int
    crashed: list[int] = field(default_factory=list)
    rejected: dict[str, int] = field(default_factory=dict)
    refused: dict[str, int] = field(default_factory=dict)


class DeploymentError(RemoteProtocolError):
    """The deployment cannot go on: a node refused the job, or too few nodes are there."""


class Relay:
    """Run a whole job over ``link``. Spec: spec/15-deployment.md#the-relay"""

    def __init__(
        self,
        link: Link,
        task: Task,
        roster: Roster,
        roster_sha256: str,
        *,
        suite: str,
        tick_timeout: float,
        connect_timeout: float,
        progress: Progress,
        hold: Callable[[int, int], None] | None = None,
    ) -> None:
        self.link = link
        self.task = task
        self.roster = roster
        self.roster_sha256 = roster_sha256
        self.suite = suite_named(suite)
        self.tick_timeout = tick_timeout
        self.connect_timeout = connect_timeout
        self.progress = progress
        self.hold = hold
        self.session = task.session
        #: SDL node id -> the engine's node id, for the nodes still in the session.
        self.members: dict[int, int] = {}
        self.crashed: set[int] = set()
        self.absent: dict[int, str] = {}
        #: Engine nodes greeted after the session began (never members).
        self.greeted: set[int] = set()
        self.bytes_relayed = 0
        self.exchanges = 0
        self.rounds: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ setup

    def _wait_for_nodes(self) -> list[int]:
        want = len(self.roster.keys)
        deadline = time.monotonic() + self.connect_timeout
        while True:
            ids = self.link.nodes()
            if len(ids) >= want:
                return ids
            if time.monotonic() > deadline:
                raise DeploymentError(
                    f"{len(ids)} of the roster's {want} nodes connected within "
                    f"{self.connect_timeout:g} s"
                )
            time.sleep(0.2)

    def setup(self) -> None:
        """Hello (node ids and signed session keys), then the key frames' exchange."""
        ids = self._wait_for_nodes()
        hello = Request(
            op="hello", job=self.task.to_json(), roster_sha256=self.roster_sha256,
            suite=self.suite.name,
        )  # fmt: skip
        replies, errors = self._exchange({i: hello for i in ids}, self.connect_timeout)
        if errors:
            engine, why = sorted(errors.items())[0]
            raise DeploymentError(f"a node refused the job: {why}")
        adverts: dict[int, SessionKey] = {}
        for engine, reply in sorted(replies.items()):
            if reply.absent is not None:
                self.absent[reply.node] = reply.absent
                continue
            if reply.node in self.members:
                raise DeploymentError(f"two engine nodes both claim SDL node {reply.node}")
            if reply.advert is None:
                raise DeploymentError(f"node {reply.node} sent no session key")
            try:
                advert = SessionKey.from_json(reply.advert)
                if advert.node != reply.node:
                    raise ChannelError("session-key", f"node {reply.node} signs for {advert.node}")
                verify_session_key(advert, self.roster, session=self.session, suite=self.suite)
            except (ChannelError, ParameterError) as exc:
                raise DeploymentError(f"node {reply.node}'s session key: {exc}") from None
            adverts[reply.node] = advert
            self.members[reply.node] = engine
        missing = sorted(set(self.roster.keys) - set(self.members))
        if missing:
            raise DeploymentError(f"roster nodes {missing} did not join the session")
        self.progress({"type": "session", "nodes": sorted(self.members)})
        keys = Request(op="keys", adverts=[adverts[n].to_json() for n in sorted(adverts)])
        replies, errors = self._exchange(
            {self.members[n]: keys for n in self.members}, self.connect_timeout
        )
        self._crash_unanswered(replies, errors, set(self.members))
        self.pending: dict[int, list[bytes]] = defaultdict(list)
        for reply in replies.values():
            self._route(reply)

    # ------------------------------------------------------------------ the job

    def run_sum(self) -> dict[str, Any]:
        """The one round of a :class:`~reference.deploy.task.SumTask`: what it released."""
        if not isinstance(self.task, SumTask):
            raise ParameterError("run_sum runs a sum task; a learning task runs with run()")
        started = time.perf_counter()
        self.setup()
        setup_seconds = time.perf_counter() - started
        self.progress({"type": "round", "round": 1, "of": 1})
        run = self._round(0, None)
        seconds = time.perf_counter() - started - setup_seconds
        self._log_round(0, run)
        return {
            "released": None if run.released is None else run.released.to_json(),
            "reason": run.reason,
            "contributors": [] if run.receiver is None or run.receiver.covers is None
            else list(run.receiver.covers[1]),
            "setup_seconds": setup_seconds,
            "round_seconds": seconds,
            "deployment": self.summary(),
        }  # fmt: skip

    def _log_round(self, r: int, run: RoundRun) -> None:
        self.rounds.append(
            {"round": r + 1, "ticks": run.ticks, "exchanges": run.exchanges,
             "crashed": run.crashed, "frames_rejected": run.rejected,
             "messages_refused": run.refused, "frames": run.frames,
             "frame_bytes": run.frame_bytes}
        )  # fmt: skip

    def run(self) -> JobResult:
        if not isinstance(self.task, LearningTask):
            raise ParameterError("run() runs a learning task; a sum task runs with run_sum()")
        started = time.perf_counter()
        cfg, plan = self.task.cfg, self.task.plan
        self.setup()
        params = plan.model.init(derive_seed(cfg.seed, Tag("learning.init")))
        charges: list[object] = []
        history: list[RoundLog] = []
        digest = ReleaseDigest()
        for r in range(cfg.rounds):
            t0 = time.perf_counter()
            self.progress({"type": "round", "round": r + 1, "of": cfg.rounds})
            run = self._round(r, params)
            t1 = time.perf_counter()
            if run.released is not None:
                params = apply_release(plan, params, r, run.released)
                digest.add(r + 1, run.released)
            if run.receiver is not None:
                record = round_record(
                    run.receiver,
                    sampling_rate=plan.accounting_rate,
                    l2_sensitivity=plan.l2,
                    l1_sensitivity=plan.l1,
                    unit="record" if cfg.unit == "record" else "node",
                )
                (charge,) = realized_event([record]).events
                charges.append(charge)
            spent = spent_epsilon(charges, cfg.delta, plan.distance_per_round * len(charges))
            log = RoundLog(
                round=r + 1,
                released=run.released is not None,
                reason=run.reason,
                contributors=0 if run.receiver is None or run.receiver.covers is None
                else len(run.receiver.covers[1]),
                dropouts=len(self.crashed | set(self.absent)),
                sampled=run.sampled,
                accuracy=accuracy(plan.model, params, plan.test),
                epsilon=spent,
                seconds_local=0.0,
                seconds_aggregate=t1 - t0,
                seconds_update=time.perf_counter() - t1,
                messages=run.frames,
                bytes_sent=run.frame_bytes,
            )  # fmt: skip
            history.append(log)
            self._log_round(r, run)
            self.progress(
                {"type": "released" if log.released else "aborted", "round": r + 1,
                 "reason": log.reason, "accuracy": log.accuracy, "epsilon": log.epsilon,
                 "contributors": log.contributors, "seconds": t1 - t0}
            )  # fmt: skip
        return job_result(
            plan, history, params, digest, seconds=time.perf_counter() - started,
            deployment=self.summary(),
        )  # fmt: skip

    def summary(self) -> dict[str, Any]:
        """What the relay saw, for the run's result: nothing secret."""
        return {
            "engine": "flower",
            "window_ticks": WINDOW_TICKS,
            "exchanges": self.exchanges,
            "bytes_relayed": self.bytes_relayed,
            "crashed": sorted(self.crashed),
            "absent": {str(k): v for k, v in sorted(self.absent.items())},
            "rounds": self.rounds,
        }

    # ------------------------------------------------------------------ one round

    def _newcomers(self) -> None:
        """Greet engine nodes not in the session (a restarted SuperNode comes back as one).

        A node that joined the session before and lost its state answers that it stays
        out (spec/15-deployment.md#restarts): it never restarts a round's machines from
        their initial state. A node that answers anything else is refused too: the
        session's keys were exchanged without it.
        """
        known = set(self.members.values()) | self.greeted
        new = [i for i in self.link.nodes() if i not in known]
        if not new:
            return
        self.greeted.update(new)
        hello = Request(
            op="hello", job=self.task.to_json(), roster_sha256=self.roster_sha256,
            suite=self.suite.name,
        )  # fmt: skip
        replies, errors = self._exchange({i: hello for i in new}, self.tick_timeout)
        for _, reply in sorted(replies.items()):
            why = reply.absent or "joined after the session's keys were exchanged"
            self.absent[reply.node] = why
            self.progress({"type": "absent", "node": reply.node, "why": why})
        for engine, why in sorted(errors.items()):
            self.progress({"type": "refused", "engine": engine, "why": why})

    def round(self, r: int, model: F64 | None) -> RoundRun:
        """Run round ``r`` of the session (set up already) and settle it."""
        return self._round(r, model)

    def _round(self, r: int, model: F64 | None) -> RoundRun:
        p = self.task.round_params(r, window=WINDOW_TICKS)
        if self.crashed:
            self._newcomers()
        live = {n for n in self.members if n not in self.crashed and n not in self.absent}
        #: (tick due, node, role, stage, view): every timer the machines asked for.
        timers: list[tuple[int, int, str, int | None, int | None]] = []
        done: dict[int, bool] = {n: False for n in live}
        receivers: dict[int, Mapping[str, Any]] = {}
        releases: dict[int, bytes | None] = {}
        reasons: dict[tuple[int, str], str] = {}
        limit, oversized = max_frame_size(p), 0
        run = RoundRun(None, None, None, 0, 0, 0, 0, 0)
        rejected: Counter[str] = Counter()
        refused: Counter[str] = Counter()
        tick = 0
        starting = True
        while True:
            due: dict[int, list[tuple[str, int | None, int | None]]] = defaultdict(list)
            later = []
            for at, node, role, stage, view in timers:
                if at <= tick:
                    due[node].append((role, stage, view))
                else:
                    later.append((at, node, role, stage, view))
            timers = later
            requests: dict[int, Request] = {}
            for node in sorted(live):
                frames = self.pending.pop(node, [])
                if done.get(node) and not starting:
                    continue
                if starting or frames or due.get(node):
                    requests[node] = Request(
                        op="tick", round=r, start=starting, model=model if starting else None,
                        frames=frames, timeouts=due.get(node, []),
                    )  # fmt: skip
            if not requests:
                waiting = [at for at, node, *_ in timers if node in live and not done[node]]
                if not waiting or all(done[n] for n in live):
                    break
                tick = min(waiting)
                continue
            if self.hold is not None:
                self.hold(r + 1, tick)
            self.progress({"type": "tick", "round": r + 1, "tick": tick, "nodes": len(requests)})
            replies, errors = self._exchange(
                {self.members[n]: q for n, q in requests.items()}, self.tick_timeout
            )
            run.exchanges += 1
            engines = {engine: n for n, engine in self.members.items()}
            by_node: dict[int, Reply] = {}
            for engine, reply in replies.items():
                n = engines[engine]
                if reply.node != n:
                    errors[engine] = f"node {n} answered as node {reply.node}"
                    continue
                by_node[n] = reply
            for n in requests:
                if n not in by_node:
                    engine = self.members[n]
                    why = errors.get(engine, f"no answer within {self.tick_timeout:g} s")
                    self._crash(n, why, r)
                    run.crashed.append(n)
                    live.discard(n)
            for n, reply in sorted(by_node.items()):
                if n not in live:
                    continue
                if reply.absent is not None:
                    self.absent[n] = reply.absent
                    live.discard(n)
                    continue
                run.sampled += reply.sampled
                for _, frame in reply.frames:
                    run.frames += 1
                    run.frame_bytes += len(frame)
                for role, stage, windows, view in reply.timers:
                    timers.append((tick + windows * WINDOW_TICKS, n, role, stage, view))
                if reply.void:
                    # Timers the node says can change nothing any more: not delivered.
                    void = set(reply.void)
                    timers = [t for t in timers if t[1] != n or (t[2], t[3], t[4]) not in void]
                done[n] = reply.done
                if reply.receiver is not None:
                    receivers[n] = reply.receiver
                    releases[n] = reply.release
                for role, why in reply.reasons.items():
                    reasons[(n, role)] = why
                rejected.update(reply.rejected)
                refused.update(reply.refused)
                oversized += self._route(reply, live, limit=limit)
            starting = False
            tick += 1
            if all(done.get(n, True) for n in live) and not any(self.pending.get(n) for n in live):
                break
        self.pending.clear()
        run.ticks = tick
        run.rejected = dict(rejected)
        if oversized:
            run.rejected["oversized"] = oversized
        run.refused = dict(refused)
        self._settle(run, p, receivers=receivers, releases=releases, reasons=reasons, live=live)
        return run

    def _settle(
        self,
        run: RoundRun,
        p: Any,
        *,
        receivers: Mapping[int, Mapping[str, Any]],
        releases: Mapping[int, bytes | None],
        reasons: Mapping[tuple[int, str], str],
        live: set[int],
    ) -> None:
        """The round's release: every releasing receiver's result must be the same.

        An aborted round's reason is the coordinator's if it gave one, else the first
        a live node's machine gave, by node and role (as spec/12-transcripts.md#result).
        """
        released: list[ReceiverState] = []
        for node, obj in sorted(receivers.items()):
            try:
                state = state_from_json(p, obj)
            except ProtocolError as exc:
                raise DeploymentError(
                    f"node {node}'s receiver state does not load: {exc}"
                ) from None
            if not isinstance(state, ReceiverState):
                raise DeploymentError(f"node {node} returned a {state.role} as its receiver")
            if state.phase is Phase.RELEASED:
                data = releases.get(node)
                if data is None:
                    raise DeploymentError(f"node {node} released without sending the release")
                try:
                    total = p.field.decode(data)
                except EncodingError as exc:
                    raise DeploymentError(f"node {node}'s release does not decode: {exc}") from None
                if len(total) != p.dimension:
                    raise DeploymentError(f"node {node}'s release has {len(total)} values")
                released.append(replace(state, result=total))
        if released:
            first = released[0]
            for other in released[1:]:
                if other.result != first.result or other.covers != first.covers:
                    raise DeploymentError(
                        f"receivers {first.node} and {other.node} released different sums"
                    )
            run.released, run.receiver = first.result, first
        else:
            why = reasons.get((p.coordinator, "coordinator"))
            if why is None:
                ordered = sorted((k, v) for k, v in reasons.items() if k[0] in live)
                why = ordered[0][1] if ordered else None
            run.reason = why if why is not None else "no-decision"

    # ------------------------------------------------------------------ plumbing

    def _route(
        self, reply: Reply, live: Iterable[int] | None = None, *, limit: int | None = None
    ) -> int:
        """Queue each frame for its recipient; drop frames above ``limit`` bytes (counted)."""
        alive = set(self.members) - self.crashed if live is None else set(live)
        oversized = 0
        for to, frame in reply.frames:
            if limit is not None and len(frame) > limit:
                oversized += 1
                continue
            self.bytes_relayed += len(frame)
            if to in alive:
                self.pending[to].append(frame)
        return oversized

    def _exchange(
        self, requests: Mapping[int, Request], timeout: float
    ) -> tuple[dict[int, Reply], dict[int, str]]:
        self.exchanges += 1
        return self.link.exchange(requests, timeout)

    def _crash(self, node: int, why: str, r: int | None) -> None:
        self.crashed.add(node)
        self.progress({"type": "crashed", "node": node, "round": None if r is None else r + 1,
                       "why": why})  # fmt: skip

    def _crash_unanswered(
        self, replies: Mapping[int, Reply], errors: Mapping[int, str], asked: set[int]
    ) -> None:
        answered = {reply.node for reply in replies.values()}
        for node in sorted(asked - answered):
            why = errors.get(self.members[node], f"no answer within {self.connect_timeout:g} s")
            self._crash(node, why, None)


#: Room, in bytes, for everything in a frame but its field elements: header, nonce, tag,
#: the message's fixed fields and id lists, a statement signature.
FRAME_SLACK = 1 << 16


def max_frame_size(p: RoundParams) -> int:
    """The largest frame an honest node sends in a round of ``p``: a share or partial sum of
    ``ceil(d / k)`` elements, or a decision or report listing every node, plus
    :data:`FRAME_SLACK`. The relay drops larger frames unread (spec/15-deployment.md#the-relay).
    """
    elements = -(-p.dimension // p.packing) + 2 * len(p.nodes)
    return FRAME_SLACK + elements * p.field.ENCODED_SIZE


__all__ = ["WINDOW_TICKS", "DeploymentError", "Link", "Relay", "RoundRun"]
