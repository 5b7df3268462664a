"""The deployment's relay and nodes, in one process: equal to the simulated job, bit for bit.

Spec: spec/15-deployment.md. The relay and the nodes here are the deployment's own code; only
the transport is this process (tests/deploy_support.py) instead of Flower's engine, which
tests/test_deploy_flower.py starts for real. The oracle is ``sdl run``'s job, which runs the
same rounds through the simulator (spec 12).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.channels import DEFAULT_SUITE, endpoints_roles, identity_public, open_frame
from protocol.errors import LocalProtocolError, ParameterError, RemoteProtocolError
from protocol.machine import Start, initial, step
from protocol.messages import Message
from protocol.xof import Tag, derive_seed
from reference.channels.seal import NodeChannel, deterministic_session
from reference.common.seeds import seed_from_hex
from reference.deploy.keys import (
    JOURNAL_FILE,
    keygen,
    load_identity,
    load_public,
    load_roster,
    roster_digest,
    write_roster,
)
from reference.deploy.node import (
    Node,
    NodeSetup,
    NodeState,
    Reply,
    Request,
)
from reference.deploy.relay import Relay, max_frame_size
from reference.deploy.task import (
    LearningTask,
    SumTask,
    config_from_json,
    config_to_json,
    sum_task,
    task_from_json,
)
from reference.deploy.wire import (
    reply_from_records,
    reply_to_records,
    request_from_records,
    request_to_records,
)
from reference.learning.job import (
    JobConfig,
    ReleaseDigest,
    apply_release,
    node_contribution,
    node_root,
    plan_job,
    protocol_seed,
    round_params,
    run_job,
)
from reference.sim.simulate import Scenario, simulate
from tests.deploy_support import ENGINE_BASE, InProcessLink


def _relay(
    link: InProcessLink,
    cfg: JobConfig | SumTask,
    events: list[dict[str, Any]] | None = None,
    **kw: Any,
) -> Relay:
    sink = events if events is not None else []
    task = cfg if isinstance(cfg, SumTask) else LearningTask(cfg)
    return Relay(
        link, task, load_roster(link.roster_path), link.roster_sha256, suite="x25519-aes128gcm",
        tick_timeout=1.0, connect_timeout=1.0, progress=lambda e: sink.append(dict(e)), **kw,
    )  # fmt: skip


CONFIGS = [
    dict(nodes=3, rounds=2),
    dict(nodes=5, rounds=3, max_dropouts=1),
    dict(nodes=5, rounds=2, max_dropouts=1, precover=True),
    dict(nodes=4, rounds=2, mechanism="dgauss", unit="node"),
    dict(nodes=6, rounds=2, threshold=1, committee=4, colluders=1, sampling_rate=0.5),
]


@pytest.mark.parametrize(
    "overrides", CONFIGS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items())
)
def test_relay_releases_what_sdl_run_releases(tmp_path: Path, overrides: dict[str, Any]) -> None:
    """Same seed, same configuration: the same released sums, model, accuracy and ε."""
    cfg = JobConfig(seed=seed_from_hex("5eed"), **overrides)
    deployed = _relay(InProcessLink(tmp_path, cfg.nodes), cfg).run()
    simulated = run_job(cfg)
    assert deployed.released_sha256 == simulated.released_sha256
    assert deployed.model_sha256 == simulated.model_sha256
    assert deployed.accuracy == simulated.accuracy
    assert deployed.epsilon == simulated.epsilon
    assert [r.released for r in deployed.history] == [r.released for r in simulated.history]
    assert [r.sampled for r in deployed.history] == [r.sampled for r in simulated.history]
    d = deployed.to_json()["deployment"]
    assert d["crashed"] == [] and d["absent"] == {}
    # Five exchanges per round without faults: start, shares, reports, decision, partial sums.
    assert [r["exchanges"] for r in d["rounds"]] == [5] * cfg.rounds


def _sum(nodes: int, dimension: int, **kw: Any) -> SumTask:
    args: dict[str, Any] = dict(
        nodes=nodes, threshold=1, max_dropouts=1, colluders=0, committee=None,
        dimension=dimension, packing=2, mechanism="skellam", target_variance=1000,
        field="Field31", noise_sources=None, receivers=None, precover=True,
    )  # fmt: skip
    return sum_task("b0", **(args | kw))


def test_a_sum_round_releases_what_the_simulator_releases(tmp_path: Path) -> None:
    """The benchmark's one round: the same scenario through the simulator and through the
    relay and nodes gives the same release, bit for bit."""
    task = _sum(4, 300)
    assert task_from_json(json.loads(json.dumps(task.to_json()))).to_json() == task.to_json()
    result = _relay(InProcessLink(tmp_path, 4), task).run_sum()
    expected = simulate(task.scenario)
    assert expected.released is not None
    assert result["released"] == expected.released.to_json()
    assert result["contributors"] == [1, 2, 3, 4]
    assert result["deployment"]["rounds"][0]["exchanges"] == 5


def test_a_sum_round_survives_a_node_killed_after_its_shares(tmp_path: Path) -> None:
    task = _sum(5, 200, threshold=2)
    p = task.scenario.params
    k = next(n for n in sorted(p.aggregators, reverse=True) if n != p.coordinator)
    link = InProcessLink(tmp_path, 5)

    def hold(r: int, tick: int) -> None:
        if (r, tick) == (1, 1):
            link.silent_from[ENGINE_BASE + k] = link.exchanges + 1

    result = _relay(link, task, hold=hold).run_sum()
    expected = simulate(replace(task.scenario, crashes={k: len(p.aggregators)}))
    assert expected.released is not None
    assert result["released"] == expected.released.to_json()
    assert result["deployment"]["crashed"] == [k]


def test_private_deployment_draws_each_node_root_and_writes_none(tmp_path: Path) -> None:
    """Without --seed: each node's root is its own, and no root or seed of it is in the result."""
    cfg = JobConfig(seed=seed_from_hex("ab"), nodes=3, rounds=1, deterministic=False)
    events: list[dict[str, Any]] = []
    link = InProcessLink(tmp_path / "a", 3)
    first = _relay(link, cfg, events).run()
    roots = [NodeState.from_bytes(s).root for s in link.saved.values() if s is not None]
    assert len(roots) == 3 and all(r is not None and len(r) == 32 for r in roots)
    assert len(set(roots)) == 3
    secrets = set()
    for root in roots:
        assert root is not None
        secrets |= {root.hex(), protocol_seed(cfg, 0, 1, root).hex()}
        secrets |= {protocol_seed(cfg, 0, n, root).hex() for n in (1, 2, 3)}
    text = json.dumps(first.to_json()) + json.dumps(events)
    assert not any(s in text for s in secrets)
    second = _relay(InProcessLink(tmp_path / "b", 3), cfg).run()
    assert first.released_sha256 != second.released_sha256  # fresh noise, fresh shares


def test_no_reply_carries_a_node_secret(tmp_path: Path) -> None:
    """What the relay receives holds no root, session secret or channel key of any node,
    in hex or in bytes, in the control part or the frames
    (proofs_notes/deployment-relay-view.md)."""
    cfg = JobConfig(seed=seed_from_hex("ad"), nodes=3, rounds=2, deterministic=False)
    link = InProcessLink(tmp_path, 3)
    _relay(link, cfg).run()
    secrets: set[bytes] = set()
    for saved in link.saved.values():
        assert saved is not None
        state = NodeState.from_bytes(saved)
        assert state.root is not None and state.channel is not None
        secrets |= {state.root, state.session_secret}
        for table in ("send", "receive"):
            keys = state.channel[table]
            assert isinstance(keys, dict) and keys
            secrets |= {bytes.fromhex(k) for k in keys.values()}
    # Three roots, three session secrets, one channel key per ordered pair (a sender's
    # send key is its recipient's receive key): 3 + 3 + 6.
    assert len(secrets) == 3 + 3 + 3 * 2
    assert link.replies
    for control, frames in link.replies:
        for secret in secrets:
            assert secret not in control and secret.hex().encode() not in control
            assert all(secret not in f for f in frames)


def _simulated_releases(cfg: JobConfig, crash: dict[int, dict[int, int]]) -> tuple[str, list[Any]]:
    """The oracle: each round through the simulator, ``crash[r][node] = sends`` in round r."""
    plan = plan_job(cfg)
    model = plan.model.init(derive_seed(cfg.seed, Tag("learning.init")))
    digest, outcomes = ReleaseDigest(), []
    for r in range(cfg.rounds):
        p = round_params(plan, r)
        gone = {n for rr, c in crash.items() if rr < r for n in c}
        updates, seeds = {}, {}
        for i in p.nodes:
            root = node_root(cfg, i, None)
            updates[i] = node_contribution(plan, model, r, i, root)[0]
            seeds[i] = protocol_seed(cfg, r, i, root)
        crashes = {n: 0 for n in gone} | crash.get(r, {})
        out = simulate(
            Scenario(params=p, master=derive_seed(cfg.seed, Tag("learning.protocol", (r,))),
                     crashes=crashes, updates=updates, seeds=seeds)
        )  # fmt: skip
        outcomes.append(out)
        if out.released is not None:
            digest.add(r + 1, out.released)
            model = apply_release(plan, model, r, out.released)
    return digest.hexdigest(), outcomes


def _not_coordinator(cfg: JobConfig, r: int) -> int:
    p = round_params(plan_job(cfg), r)
    return next(n for n in sorted(p.aggregators, reverse=True) if n != p.coordinator)


def test_a_node_that_crashes_after_its_shares_is_a_dropout_the_round_survives(
    tmp_path: Path,
) -> None:
    """Node k falls silent after sending its round-2 shares; the simulator, told that k dies
    after those sends, releases the same sums in every round, and the job goes on."""
    cfg = JobConfig(seed=seed_from_hex("c1"), nodes=5, rounds=3, max_dropouts=1)
    k = _not_coordinator(cfg, 1)
    link = InProcessLink(tmp_path, cfg.nodes)

    def hold(r: int, tick: int) -> None:
        if (r, tick) == (2, 1):
            link.silent_from[ENGINE_BASE + k] = link.exchanges + 1

    result = _relay(link, cfg, hold=hold).run()
    m = len(round_params(plan_job(cfg), 1).aggregators)
    expected, outcomes = _simulated_releases(cfg, {1: {k: m}})
    assert result.released_sha256 == expected
    assert [r.released for r in result.history] == [o.status == "released" for o in outcomes]
    assert result.to_json()["deployment"]["crashed"] == [k]
    assert result.history[2].dropouts == 1


@pytest.mark.parametrize("failover", [0, 1])
def test_a_coordinator_that_falls_silent_is_replaced_by_its_backup(
    tmp_path: Path, failover: int
) -> None:
    """The round-2 coordinator falls silent after its shares. With a backup
    (spec/09-protocol.md#failover) the aggregators' view timers fire, the backup decides
    and the round releases; without one it aborts. Either way the deployment releases
    exactly what the simulator does with that coordinator dead after those sends."""
    cfg = JobConfig(seed=seed_from_hex("c1"), nodes=5, rounds=2, max_dropouts=1,
                    failover=failover)  # fmt: skip
    p = round_params(plan_job(cfg), 1)
    k, m = p.coordinator, len(p.aggregators)
    link = InProcessLink(tmp_path, cfg.nodes)

    def hold(r: int, tick: int) -> None:
        if (r, tick) == (2, 1):
            link.silent_from[ENGINE_BASE + k] = link.exchanges + 1

    result = _relay(link, cfg, hold=hold).run()
    expected, outcomes = _simulated_releases(cfg, {1: {k: m}})
    assert result.released_sha256 == expected
    assert [r.released for r in result.history] == [o.status == "released" for o in outcomes]
    assert result.history[1].released is bool(failover)
    assert result.to_json()["deployment"]["crashed"] == [k]


def test_with_precovered_noise_a_node_gone_from_the_start_costs_no_top_up(
    tmp_path: Path,
) -> None:
    """Pre-covered: a node silent from round 2's start leaves a final first decision, so the
    round takes no more exchanges than its timers need; the simulator releases the same."""
    cfg = JobConfig(seed=seed_from_hex("c5"), nodes=5, rounds=2, max_dropouts=1, precover=True)
    k = _not_coordinator(cfg, 1)
    link = InProcessLink(tmp_path, cfg.nodes)

    def hold(r: int, tick: int) -> None:
        if (r, tick) == (2, 0):
            link.silent_from[ENGINE_BASE + k] = link.exchanges + 1

    result = _relay(link, cfg, hold=hold).run()
    expected, outcomes = _simulated_releases(cfg, {1: {k: 0}})
    assert result.released_sha256 == expected
    assert all(r.released for r in result.history)
    assert outcomes[1].contributors == tuple(n for n in range(1, 6) if n != k)
    rounds = result.to_json()["deployment"]["rounds"]
    # start; shares; the report timer (1 window); the reports; the decision timer (2 windows);
    # the decision; the partial sums: seven exchanges, and no top-up stage.
    assert rounds[1]["exchanges"] == 7


def test_too_many_crashes_abort_the_round_with_a_reason_and_charge_nothing(
    tmp_path: Path,
) -> None:
    cfg = JobConfig(seed=seed_from_hex("c2"), nodes=4, rounds=2, max_dropouts=0)
    link = InProcessLink(tmp_path, cfg.nodes)
    victim = _not_coordinator(cfg, 0)
    link.silent_from[ENGINE_BASE + victim] = 3  # hello, keys, then silent from round 1's start
    result = _relay(link, cfg).run()
    assert [r.released for r in result.history] == [False, False]
    assert all(r.reason is not None for r in result.history)
    assert result.epsilon == 0.0
    _, outcomes = _simulated_releases(cfg, {0: {victim: 0}})
    assert [o.reason for o in outcomes] == [r.reason for r in result.history]


def test_a_restarted_node_never_restarts_a_rounds_machines(tmp_path: Path) -> None:
    """A node that lost its state is kept out of the session: asked to go on, it says it
    restarted; greeted anew, its journal shows it joined before, and it refuses."""
    cfg = JobConfig(seed=seed_from_hex("c3"), nodes=5, rounds=3, max_dropouts=1)
    k = _not_coordinator(cfg, 1)
    link = InProcessLink(tmp_path, cfg.nodes)
    engine = ENGINE_BASE + k
    events: list[dict[str, Any]] = []

    def hold(r: int, tick: int) -> None:
        if (r, tick) == (2, 1):
            # The SuperNode dies and comes back as a new engine node over the same directory.
            link.silent_from[engine] = link.exchanges + 1
            link.setups[engine + 100] = link.setups[engine]
            link.saved[engine + 100] = None

    result = _relay(link, cfg, events, hold=hold).run()
    absent = result.to_json()["deployment"]["absent"]
    assert list(absent) == [str(k)] and absent[str(k)].startswith("restarted")
    reborn = [q for e, q in link.requests if e == engine + 100]
    assert [q.op for q in reborn] == ["hello"]  # greeted, and never sent a round's start
    journal = [
        json.loads(x) for x in (tmp_path / "nodes" / str(k) / JOURNAL_FILE).read_text().splitlines()
    ]
    assert [j.get("round") for j in journal] == [None, 0, 1]  # the session, rounds 1 and 2
    assert all(r.released for r in result.history)


def test_a_node_without_state_asked_to_go_on_answers_that_it_restarted(tmp_path: Path) -> None:
    link = InProcessLink(tmp_path, 2)
    node = Node(link.setups[ENGINE_BASE + 1], None)
    reply = node.handle(Request(op="tick", round=0, start=False))
    assert reply.absent is not None and reply.absent.startswith("restarted")
    assert reply.frames == [] and node.saved() is None


def test_a_relay_that_tampers_with_frames_gets_them_rejected_never_a_wrong_release(
    tmp_path: Path,
) -> None:
    """The relay is untrusted: frames it alters do not open (counted by fault); what the round
    then releases is what the simulator releases when those messages are lost."""
    cfg = JobConfig(seed=seed_from_hex("c4"), nodes=4, rounds=1, max_dropouts=1)
    link = InProcessLink(tmp_path, cfg.nodes)
    original = link.exchange
    flipped: list[int] = []

    def tampering(requests: Any, timeout: float) -> Any:
        out = {}
        for engine, q in requests.items():
            frames = list(q.frames)
            if q.op == "tick" and not q.start and frames and not flipped:
                bad = bytearray(frames[0])
                bad[-1] ^= 1
                frames[0] = bytes(bad)
                flipped.append(engine)
            out[engine] = replace(q, frames=frames)
        return original(out, timeout)

    link.exchange = tampering  # type: ignore[method-assign]
    result = _relay(link, cfg).run()
    rounds = result.to_json()["deployment"]["rounds"]
    assert rounds[0]["frames_rejected"] == {"tag": 1}
    assert result.history[0].released or result.history[0].reason is not None


def test_a_frame_larger_than_any_honest_frame_is_dropped_and_counted(tmp_path: Path) -> None:
    """A node that sends an oversized frame gets it dropped by the relay, unread: the round
    goes on as if that message were lost, and the count says why."""
    cfg = JobConfig(seed=seed_from_hex("c6"), nodes=4, rounds=1, max_dropouts=1)
    link = InProcessLink(tmp_path, cfg.nodes)
    original = link.exchange
    limit = max_frame_size(round_params(plan_job(cfg), 0))

    def bloating(requests: Any, timeout: float) -> Any:
        replies, errors = original(requests, timeout)
        ticks = all(q.op == "tick" and not q.start for q in requests.values())
        for reply in replies.values():
            if ticks and reply.frames and not getattr(link, "bloated", False):
                to, _ = reply.frames[0]
                reply.frames[0] = (to, b"\0" * (limit + 1))
                link.bloated = True  # type: ignore[attr-defined]
        return replies, errors

    link.exchange = bloating  # type: ignore[method-assign]
    result = _relay(link, cfg).run()
    assert result.to_json()["deployment"]["rounds"][0]["frames_rejected"] == {"oversized": 1}
    assert result.history[0].released or result.history[0].reason is not None


# ---------------------------------------------------------------------- pieces


def test_a_node_refuses_a_roster_it_was_not_given(tmp_path: Path) -> None:
    link = InProcessLink(tmp_path, 2)
    cfg = JobConfig(seed=seed_from_hex("1"), nodes=2, rounds=1, threshold=1)
    hello = Request(op="hello", job=LearningTask(cfg).to_json(), roster_sha256="00" * 32)
    with pytest.raises(ParameterError, match="refusing a roster"):
        Node(link.setups[ENGINE_BASE + 1], None).handle(hello)


def test_a_node_whose_key_is_not_the_rosters_refuses(tmp_path: Path) -> None:
    InProcessLink(tmp_path, 2)  # nodes 1 and 2, with their own keys
    other = keygen(tmp_path / "other", 1)
    roster = tmp_path / "forged.json"
    digest = write_roster(roster, {1: other, 2: load_public(tmp_path / "nodes" / "2")[1]})
    cfg = JobConfig(seed=seed_from_hex("1"), nodes=2, rounds=1, threshold=1)
    setup = NodeSetup(tmp_path / "nodes" / "1", roster)
    with pytest.raises(ParameterError, match="not the roster's key"):
        Node(setup, None).handle(
            Request(op="hello", job=LearningTask(cfg).to_json(), roster_sha256=digest)
        )


def test_keygen_keeps_one_identity_and_the_roster_names_it(tmp_path: Path) -> None:
    public = keygen(tmp_path / "n", 7)
    assert load_public(tmp_path / "n") == (7, public)
    node, key = load_identity(tmp_path / "n")
    assert node == 7
    assert identity_public(key) == public
    assert (tmp_path / "n" / "identity.key").stat().st_mode & 0o077 == 0
    with pytest.raises(ParameterError, match="already holds an identity"):
        keygen(tmp_path / "n", 7)
    digest = write_roster(tmp_path / "r.json", {7: public})
    assert roster_digest(load_roster(tmp_path / "r.json")) == digest
    with pytest.raises(ParameterError, match="no identity"):
        load_identity(tmp_path / "missing")


def test_job_configuration_round_trips_and_refuses_unknown_fields() -> None:
    cfg = JobConfig(seed=seed_from_hex("9"), nodes=4, rounds=2, max_dropouts=1, unit="node")
    assert config_from_json(json.loads(json.dumps(config_to_json(cfg)))) == cfg
    with pytest.raises(ParameterError, match="unknown"):
        config_from_json({**config_to_json(cfg), "secret": 1})
    with pytest.raises(ParameterError, match="seed"):
        config_from_json({**config_to_json(cfg), "seed": "zz"})


frames_st = st.lists(st.binary(min_size=0, max_size=300), max_size=5)


@given(
    frames=frames_st,
    timeouts=st.lists(
        st.tuples(
            st.sampled_from(["aggregator", "coordinator"]),
            st.none() | st.integers(0, 5),
            st.none() | st.integers(1, 3),  # a view timer's view
        ),
        max_size=3,
    ),
    start=st.booleans(),
)
def test_request_records_round_trip(frames: list[bytes], timeouts: list[Any], start: bool) -> None:
    model = np.linspace(-1, 1, 7) if start else None
    q = Request(op="tick", round=3, start=start, model=model, frames=frames, timeouts=timeouts)
    back = request_from_records(request_to_records(q))
    assert list(back.frames) == frames and list(back.timeouts) == timeouts
    assert (back.round, back.start, back.op) == (3, start, "tick")
    assert (back.model is None) == (model is None)
    if model is not None:
        assert back.model is not None and back.model.tobytes() == model.tobytes()


@given(frames=frames_st, done=st.booleans())
def test_reply_records_round_trip(frames: list[bytes], done: bool) -> None:
    reply = Reply(
        node=3, frames=[(i + 1, f) for i, f in enumerate(frames)],
        timers=[("aggregator", 0, 1, None), ("aggregator", 0, 6, 1), ("receiver", None, 9, None)],
        void=[("aggregator", 0, 1)], done=done,
        rejected={"tag": 2}, refused={"InvalidMessage": 1}, sampled=11,
    )  # fmt: skip
    back = reply_from_records(reply_to_records(reply))
    assert back == reply


def test_a_reply_with_more_frames_than_recipients_is_refused() -> None:
    content = reply_to_records(Reply(node=1, frames=[(2, b"ab")]))
    content.config_records["sdl"]["control"] = json.dumps(
        {**json.loads(content.config_records["sdl"]["control"]), "recipients": []}  # type: ignore[arg-type]
    ).encode()
    with pytest.raises(RemoteProtocolError, match="recipients"):
        reply_from_records(content)


def test_a_restored_channel_seals_what_its_peer_opens() -> None:
    """A node's channel survives the trip through its saved state: keys and frame counts."""
    cfg = JobConfig(seed=seed_from_hex("1"), nodes=3, rounds=1)
    p = round_params(plan_job(cfg), 0)
    session, keys = deterministic_session(seed_from_hex("2"), p.session, p.nodes, DEFAULT_SUITE)
    a, b = NodeChannel(keys[1], session), NodeChannel(keys[2], session)
    b.accept(a.key_frames([2])[2])
    saved = json.loads(json.dumps(a.export()))
    a2 = NodeChannel.restore(keys[1], session, saved)
    assert a2.export() == a.export()
    state = initial(p, node=1, role="contributor")
    root = node_root(cfg, 1, None)
    _, outputs = step(
        state, Start(update=p.field.zeros(p.dimension), seed=protocol_seed(cfg, 0, 1, root))
    )
    share = next(o for o in outputs if isinstance(o, Message) and o.recipient == 2)
    frame = a2.seal(share, p.field)
    roles = endpoints_roles([(2, "aggregator")])[2]
    opened = open_frame(frame, b.endpoint(roles=roles, round=0, field=p.field))
    assert opened.message == share
    assert a2.export()["sealed"] == {"2": 1}
    with pytest.raises(LocalProtocolError, match="not a key"):
        NodeChannel.restore(keys[1], session, {"send": {"2": "00"}, "receive": {}, "sealed": {}})
