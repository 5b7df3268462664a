"""Whole rounds in the simulator: crashes, lossy networks, collusion, tampering, privacy.

Spec: spec/09-protocol.md, spec/12-transcripts.md, spec/07-noise-plan.md

Oracles, none of which reads the machines' states to decide what is right:

- the released sum is recomputed from the scenario's inputs: each
  contributor's update, plus its noise drawn again here from the streams
  spec/07-noise-plan.md#streams names (``Tag("noise.share", (round, 1))``
  and ``Tag("noise.top_up", (round, 1, d))`` for Skellam) with the
  variances of spec/07 (``σ*²/(n − T)``, then up to ``σ*²/(n − d − T)``),
  for the top-up stages the coordinator actually announced (read from the
  transcript);
- the honest noise is recomputed from the same formulas;
- the release predicate of a reliable round is derived from the
  coordinator's rules, by set arithmetic on who is alive;
- privacy: exhaustive enumeration of all Shamir randomness in GF(11).
"""

from __future__ import annotations

import itertools
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any, cast

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from protocol.machine import Phase, ReceiverState
from protocol.messages import MESSAGE_TYPES, REASONS, from_obj
from protocol.noise import sample_table
from protocol.params import RoundParams
from protocol.release import round_record
from protocol.shamir import Shamir, lagrange_matrix
from protocol.xof import Seed, Tag, Xof, as_seed
from reference.sim.scenarios import build
from reference.sim.simulate import Network, Outcome, Scenario, simulate
from tests.oracles import lagrange_eval
from tests.strategies import F11, round_params

THOROUGH = os.environ.get("HYPOTHESIS_PROFILE") == "thorough"

#: The Skellam mechanism's index in the noise streams' tags (spec/07-noise-plan.md#streams).
SKELLAM = 1

Line = dict[str, Any]


def master(*parts: int) -> Seed:
    """A master seed for a run, derived from small ints through the XOF (no unseeded randomness)."""
    return as_seed(Xof(as_seed(bytes(32)), Tag("test.simulate", parts)).next_bytes(32))


def run(scenario: Scenario) -> tuple[Outcome, list[Line]]:
    lines: list[Line] = []
    return simulate(scenario, sink=lines.append), lines


# ---------------------------------------------------------------- the oracle


def top_up_dropouts(lines: Sequence[Line]) -> list[int]:
    """The dropouts ``d`` of each non-final decision the coordinator sent, by stage."""
    by_stage: dict[int, int] = {}
    n = len(cast(list[int], lines[0]["params"]["contributors"]))
    for line in lines:
        if line["type"] == "send" and line["message"]["kind"] == "decision":
            m = line["message"]
            if not m["final"]:
                by_stage[m["stage"]] = n - len(m["contributors"])
    return [by_stage[s] for s in sorted(by_stage)]


def contribution(scenario: Scenario, node: int, dropouts: Sequence[int]) -> list[int]:
    """What ``node`` shared in total, as signed ints: update + initial noise + its top-ups."""
    p = scenario.params
    n, t, target = len(p.contributors), p.noise.max_colluders, p.noise.target_variance
    seed = scenario.node_seed(node)
    total = np.array(scenario.update(node).signed_decode(), dtype=object)
    v0 = target / (n - t)
    total = total + sample_table(
        Xof(seed, Tag("noise.share", (p.round, SKELLAM))), "skellam", v0, p.dimension
    ).astype(object)
    before = 0
    for d in dropouts:
        increment = target / (n - d - t) - target / (n - before - t)
        draw = sample_table(
            Xof(seed, Tag("noise.top_up", (p.round, SKELLAM, d))), "skellam", increment, p.dimension
        )
        total = total + draw.astype(object)
        before = d
    return [int(v) for v in total]


@dataclass(frozen=True)
class Checked:
    status: str
    reason: str | None
    contributors: tuple[int, ...]


def check_round(scenario: Scenario, outcome: Outcome, lines: Sequence[Line]) -> Checked:
    """Assert the round ended released-and-correct or aborted with a typed reason.

    Every receiver that released (crashed or not) released the sum over its
    contributor set ``U`` of what those contributors shared, recomputed here;
    all released receivers agree on ``U``; the honest members of ``U``
    (not colluders) carry at least the target noise, recomputed from the
    plan's formulas; the outcome's own flags agree. An aborted round names a
    reason of ``protocol.messages.REASONS``.
    """
    p = scenario.params
    n, t, target = len(p.contributors), p.noise.max_colluders, p.noise.target_variance
    released = [
        s
        for s in outcome.states.values()
        if isinstance(s, ReceiverState) and s.phase is Phase.RELEASED
    ]
    dropouts = top_up_dropouts(lines)
    covers = {s.covers for s in released}
    assert len(covers) <= 1, f"receivers released over different sets: {covers}"
    for s in released:
        assert s.covers is not None and s.result is not None
        u = s.covers[1]
        d = n - len(u)
        assert d <= p.noise.max_dropouts and len(u) >= p.min_contributors
        assert len(s.covers[2]) >= p.quorum
        # Members of U topped up at every non-final decision; the final one
        # changed nothing: U's dropouts are the last top-up's.
        assert d == (dropouts[-1] if dropouts else 0), (d, dropouts)
        truth = [
            sum(col) % p.field.MODULUS
            for col in zip(*(contribution(scenario, i, dropouts) for i in u), strict=True)
        ]
        assert s.result.to_ints() == truth, "a receiver released a wrong sum"
        honest = [i for i in u if i not in scenario.colluders]
        honest_noise = len(honest) * target / (n - d - t)
        assert honest_noise >= target, (honest_noise, target)
        assert set(s.faulty) <= set(scenario.tamper)
    if outcome.status == "released":
        assert outcome.reason is None and outcome.aggregate_correct
        assert released and outcome.released is not None
        u = outcome.contributors
        d = n - len(u)
        honest_noise = sum(
            (target / (n - d - t) for i in u if i not in scenario.colluders), Fraction(0)
        )
        assert outcome.honest_noise_variance == honest_noise
        assert outcome.honest_noise_variance >= outcome.target_noise_variance == target
    else:
        assert outcome.status == "aborted", outcome.status
        assert outcome.reason in REASONS, outcome.reason
        alive = [s for (node, _), s in outcome.states.items() if node not in outcome.crashed]
        assert not any(s.phase is Phase.RELEASED for s in alive if isinstance(s, ReceiverState))
    return Checked(outcome.status, outcome.reason, outcome.contributors)


# ---------------------------------------------------------------- crash schedules


def crash_points(lines: Sequence[Line], *, mid_batch: bool = True) -> dict[int, list[int | None]]:
    """Per node, every crash point of the fault-free run ``lines`` came from.

    A node's *sending steps* are the events (start, delivery, timeout) after
    which it sent at least one message; each sends a *batch*. Its crash
    points are: ``None`` (never crashes), and for each batch, "before it"
    (budget = the sends before the batch) and, if ``mid_batch``, "after its
    first message" (budget + 1). The simulator's ``crashes[i] = k`` kills node ``i`` when
    it is about to send its ``k + 1``-th message, so a budget is exactly a
    crash point.
    """
    sends: Counter[int] = Counter()
    points: dict[int, set[int]] = {}
    current: int | None = None
    batch_start = False
    for line in lines:
        if line["type"] == "header":
            points = {node: set() for node in line["params"]["nodes"]}
        elif line["type"] in ("start", "deliver", "timeout"):
            current, batch_start = line["node"], True
        elif line["type"] == "send":
            assert current is not None
            if batch_start:
                points[current] |= (
                    {sends[current], sends[current] + 1} if mid_batch else {sends[current]}
                )
                batch_start = False
            sends[current] += 1
    # "After the first message" of a one-message batch that ended the node's
    # sending is past its last send: that is "never", not a new point.
    return {
        node: [None, *sorted(k for k in ks if k < sends[node] or k == 0)]
        for node, ks in points.items()
    }


def every_crash_schedule(
    p: RoundParams, seed: Seed, *, mid_batch: bool = True
) -> list[dict[int, int]]:
    _, lines = run(Scenario(p, seed))
    points = crash_points(lines, mid_batch=mid_batch)
    nodes = sorted(points)
    schedules = []
    for choice in itertools.product(*(points[node] for node in nodes)):
        schedules.append({node: k for node, k in zip(nodes, choice, strict=True) if k is not None})
    return schedules


def _params_for(*case: int) -> RoundParams:
    """Parameters from ``(n, t, D, T, min_contributors, dimension)``."""
    n, t, d, c, mn, dim = case
    return round_params(
        n=n, threshold=t, max_dropouts=d, max_colluders=c, min_contributors=mn, dimension=dim
    )


#: (n, t, D, T, min_contributors, dimension): every n <= 4 in ci; n = 5 only when thorough.
CRASH_CASES_CI: list[tuple[int, int, int, int, int, int]] = [
    (2, 1, 0, 0, 1, 1),
    (2, 1, 1, 0, 1, 2),
    (3, 1, 1, 1, 2, 1),
    (3, 2, 0, 0, 3, 2),
    (3, 1, 2, 0, 1, 1),
    (4, 1, 2, 1, 2, 1),
    (4, 2, 1, 0, 3, 2),
    (4, 1, 3, 0, 1, 1),
]
CRASH_CASES_THOROUGH: list[tuple[int, int, int, int, int, int]] = [
    (5, 2, 2, 1, 3, 1),
    (5, 1, 1, 2, 4, 2),
]
#: n = 5 in ci, at step granularity: a node crashes before one of its batches.
CRASH_CASES_CI_STEPS: list[tuple[int, int, int, int, int, int]] = CRASH_CASES_THOROUGH


@pytest.mark.parametrize(
    ("case", "mid_batch"),
    [(c, True) for c in CRASH_CASES_CI + (CRASH_CASES_THOROUGH if THOROUGH else [])]
    + ([] if THOROUGH else [(c, False) for c in CRASH_CASES_CI_STEPS]),
    ids=str,
)
def test_every_crash_schedule_ends_released_and_correct_or_aborted(
    case: tuple[int, int, int, int, int, int], mid_batch: bool
) -> None:
    """Exhaustively, every crash schedule ends released-and-correct or aborted with a reason.

    A *step* of a node is a sending step of the fault-free run: an event
    after which the node sends a batch of messages (its shares, a report,
    a decision batch, its partial sums, a top-up). A node's crash points
    are "never" plus, for each of its steps, "just before the batch" and
    "just after the batch's first message" (see :func:`crash_points`). The
    test runs the product of every node's crash points: every combination
    of which nodes crash and where. Each run must end released, with the
    sum over ``U`` recomputed from the inputs and honest noise >= target,
    or aborted with a reason of ``REASONS`` (:func:`check_round`).

    In the ``ci`` profile this covers the ``n <= 4`` cases of
    ``CRASH_CASES_CI`` (1728 schedules for each n = 4 case, ~15 s in all);
    ``n = 5`` (10368 schedules per case, about a minute each) runs
    exhaustively with mid-batch crashes only with
    ``HYPOTHESIS_PROFILE=thorough`` (``CRASH_CASES_THOROUGH``); in ``ci``
    the same ``n = 5`` cases run exhaustively at step granularity (every
    node crashes before any one of its batches, or never).
    """
    n, t, d, c, mn, dim = case
    p = _params_for(n, t, d, c, mn, dim)
    seed = master(*case)
    colluders = tuple(p.contributors[-c:]) if c else ()
    statuses: Counter[str] = Counter()
    for crashes in every_crash_schedule(p, seed, mid_batch=mid_batch):
        scenario = Scenario(p, seed, crashes=crashes, colluders=colluders)
        outcome, lines = run(scenario)
        checked = check_round(scenario, outcome, lines)
        statuses[checked.status] += 1
        if not crashes:
            assert checked.status == "released" and checked.contributors == p.contributors
    # Both endings happen: the enumeration reaches aborts and releases.
    assert statuses["released"] > 0 and statuses["aborted"] > 0, statuses


def test_crash_points_follow_the_fault_free_batches() -> None:
    """The crash points of a small round are what its message flow implies (counted by hand).

    n = 3, all nodes contribute and aggregate, node 1 coordinates, D = 0:
    every node shares to 3 aggregators (batch of 3), reports (1), and
    sends 3 partial sums; node 1 also sends 6 decisions (3 contributors + 3
    aggregators) between its report and its partial sums.
    """
    p = _params_for(3, 1, 0, 0, 1, 1)
    _, lines = run(Scenario(p, master(0)))
    points = crash_points(lines)
    assert points[1] == [None, 0, 1, 3, 4, 5, 10, 11]
    assert points[2] == points[3] == [None, 0, 1, 3, 4, 5]


# ---------------------------------------------------------------- liveness


@dataclass(frozen=True)
class Absence:
    params: RoundParams
    absent: frozenset[int]


RELEASE_CASES: list[RoundParams] = [
    _params_for(3, 1, 1, 0, 1, 1),
    _params_for(4, 2, 1, 0, 3, 1),
    _params_for(4, 1, 2, 1, 1, 2),
    _params_for(5, 2, 2, 0, 2, 1),
    _params_for(5, 1, 3, 1, 4, 1),
    round_params(
        n=5,
        threshold=1,
        max_dropouts=2,
        contributors=(2, 3, 4, 5),
        aggregators=(1, 2, 3),
        min_contributors=2,
    ),
]


def expected_ending(p: RoundParams, absent: frozenset[int]) -> tuple[str, str | None]:
    """The ending the coordinator's rules give when the ``absent`` nodes never send anything.

    On a reliable network every share, report and decision arrives before
    the timer waiting for it, so the aggregators that report are exactly
    the present ones (``A``), and each holds every present contributor
    (``U``). Then, in the coordinator's order:

    - its node absent: nobody decides -> ``no-decision``;
    - ``|A| < t + k`` -> ``too-few-aggregators``;
    - ``n − |U| > D`` -> ``too-many-dropouts``;
    - ``|U| < min_contributors`` -> ``too-few-contributors``;
    - otherwise released (after a top-up stage if ``|U| < n``), since
      all of ``A`` send partial sums that every present receiver gets.
    """
    a = [j for j in p.aggregators if j not in absent]
    u = [i for i in p.contributors if i not in absent]
    if p.coordinator in absent:
        return "aborted", "no-decision"
    if len(a) < p.threshold + p.packing:
        return "aborted", "too-few-aggregators"
    if len(p.contributors) - len(u) > p.noise.max_dropouts:
        return "aborted", "too-many-dropouts"
    if len(u) < p.min_contributors:
        return "aborted", "too-few-contributors"
    return "released", None


def test_release_happens_whenever_thresholds_are_met() -> None:
    """On a reliable network a round releases iff the coordinator lives and the thresholds hold.

    Exhaustively over every set of absent nodes (crashed before sending
    anything) for each case of ``RELEASE_CASES``: the round releases iff
    the coordinator is present, ``|A| >= t + k`` present aggregators,
    ``n − |U| <= D`` and ``|U| >= min_contributors`` present contributors
    (:func:`expected_ending`, which also gives the abort reason), and a
    release is over exactly the present contributors.

    The coordinator only has to survive until it has decided: crashing it
    right after its final decision batch still releases when the other
    aggregators reach the quorum (checked for the all-present round).
    """
    for i, p in enumerate(RELEASE_CASES):
        seed = master(100, i)
        for size in range(len(p.nodes) + 1):
            for absent in itertools.combinations(p.nodes, size):
                scenario = Scenario(p, seed, crashes=dict.fromkeys(absent, 0))
                outcome, lines = run(scenario)
                check_round(scenario, outcome, lines)
                status, reason = expected_ending(p, frozenset(absent))
                assert (outcome.status, outcome.reason) == (status, reason), (p.to_json(), absent)
                if status == "released":
                    present = tuple(j for j in p.contributors if j not in absent)
                    assert outcome.contributors == present
        # The coordinator dies right after its last decision message.
        _, lines = run(Scenario(p, seed))
        decided = _sends_until_last_decision(lines, p.coordinator)
        outcome, lines = run(Scenario(p, seed, crashes={p.coordinator: decided}))
        check_round(Scenario(p, seed, crashes={p.coordinator: decided}), outcome, lines)
        others = len(p.aggregators) - 1
        assert (outcome.status == "released") == (others >= p.quorum), (p.to_json(), outcome)


def _sends_until_last_decision(lines: Sequence[Line], node: int) -> int:
    sent = last = 0
    for line in lines:
        if line["type"] == "send" and line["message"]["sender"] == node:
            sent += 1
            if line["message"]["kind"] == "decision":
                last = sent
    return last


# ---------------------------------------------------------------- stateful


class RoundMachine(RuleBasedStateMachine):
    """A round of up to 30 nodes, its faults chosen step by step, run after each change.

    Rules set the parameters, crash nodes (after any number of sends),
    change the network (drops, late messages, duplicates; the master seed
    reorders deliveries), choose colluders, and run the round. Invariant:
    every run ends released-and-correct or aborted with a typed reason
    (:func:`check_round`): never a wrong release.
    """

    def __init__(self) -> None:
        super().__init__()
        self.params = _params_for(3, 1, 1, 0, 1, 1)
        self.crashes: dict[int, int] = {}
        self.network = Network()
        self.colluders: tuple[int, ...] = ()
        self.seed = 0
        self.runs = 0

    @initialize(
        n=st.integers(2, 30),
        t=st.integers(1, 29),
        d=st.integers(0, 29),
        c=st.integers(0, 29),
        mn=st.integers(1, 30),
    )
    def choose_params(self, n: int, t: int, d: int, c: int, mn: int) -> None:
        t = min(t, n - 1)
        d = min(d, n - 1)
        c = min(c, n - 1 - d)
        self.params = _params_for(n, t, d, c, min(mn, n), 1)

    @rule(node=st.integers(1, 30), sends=st.integers(0, 80))
    def crash(self, node: int, sends: int) -> None:
        if node in self.params.nodes:
            self.crashes[node] = sends

    @rule(
        drop=st.sampled_from([0, 1, 2, 5]),
        late=st.sampled_from([0, 1, 3, 10]),
        duplicate=st.sampled_from([0, 1, 10, 50]),
        seed=st.integers(0, 1 << 16),
    )
    def network_changes(self, drop: int, late: int, duplicate: int, seed: int) -> None:
        self.network = Network(
            drop=Fraction(drop, 100), late=Fraction(late, 100), duplicate=Fraction(duplicate, 100)
        )
        self.seed = seed

    @rule(data=st.data())
    def collude(self, data: st.DataObject) -> None:
        t = self.params.noise.max_colluders
        chosen = data.draw(st.sets(st.sampled_from(self.params.contributors), max_size=t))
        self.colluders = tuple(sorted(chosen))

    @rule()
    def run_round(self) -> None:
        scenario = Scenario(
            self.params,
            master(7, self.seed),
            network=self.network,
            crashes=dict(self.crashes),
            colluders=self.colluders,
        )
        outcome, lines = run(scenario)
        check_round(scenario, outcome, lines)
        self.runs += 1

    @invariant()
    def crashes_name_nodes_of_the_round(self) -> None:
        assert set(self.crashes) <= set(self.params.nodes)


RoundMachine.TestCase.settings = settings(
    max_examples=200 if THOROUGH else 8,
    stateful_step_count=12 if THOROUGH else 4,
    deadline=None,
)
TestStatefulRound = RoundMachine.TestCase


# ---------------------------------------------------------------- noise


@given(
    case=st.sampled_from([(4, 1, 1, 1), (5, 2, 2, 1), (6, 1, 2, 2), (7, 2, 3, 3), (5, 1, 0, 4)]),
    data=st.data(),
)
def test_honest_noise_in_every_release_meets_the_target(
    case: tuple[int, int, int, int], data: st.DataObject
) -> None:
    """Whoever drops and whoever colludes, the honest members of ``U`` carry >= σ*².

    Colluders (up to ``T``) and crashes are drawn; ``honest`` means the
    members of the released ``U`` that do not collude. Their noise,
    recomputed from spec/07's per-survivor variance ``σ*²/(n − d − T)``,
    is at least the target, equal to it when ``T`` colluders survive and
    exactly ``n − d − T`` honest members remain, and the simulator's own
    figure agrees.
    """
    n, t, d, c = case
    p = _params_for(n, t, d, c, 1, 1)
    colluders = tuple(sorted(data.draw(st.sets(st.sampled_from(p.contributors), max_size=c))))
    crashed = data.draw(st.sets(st.sampled_from(p.nodes), max_size=d))
    sends = data.draw(st.lists(st.integers(0, 3 * n), min_size=len(crashed), max_size=len(crashed)))
    scenario = Scenario(
        p,
        master(200, *case),
        crashes=dict(zip(sorted(crashed), sends, strict=True)),
        colluders=colluders,
    )
    outcome, lines = run(scenario)
    check_round(scenario, outcome, lines)
    if outcome.status == "released":
        u = outcome.contributors
        dropped = n - len(u)
        honest = [i for i in u if i not in colluders]
        per_survivor = p.noise.target_variance / (n - dropped - c)
        assert outcome.honest_noise_variance == len(honest) * per_survivor
        assert outcome.honest_noise_variance >= p.noise.target_variance
        if len(honest) == n - dropped - c:
            assert outcome.honest_noise_variance == p.noise.target_variance


# ---------------------------------------------------------------- privacy


def _views(
    p: int, t: int, points_c: Sequence[int], points_all: Sequence[int], inputs: Sequence[int]
) -> np.ndarray:
    """Every view of coalition ``C`` over all Shamir randomness, one row per randomness, encoded.

    Each honest contributor ``i`` shares ``inputs[i]`` with a degree-``t``
    polynomial fixed, as ``Shamir.share`` fixes it, by its value at the
    secret point 0 and ``t`` uniform values at the randomness points
    ``-1..-t`` (``lagrange_matrix`` from those basis points to the holders).
    The view is the shares of every contributor at ``C``'s points, then
    the partial sums (the sums of all shares) at every aggregator's point.
    Each row is encoded as one integer in base ``p`` so rows compare fast.
    """
    sharing = Shamir(F11, threshold=t)
    basis = sharing.secret_points() + sharing.random_points()
    to_c = np.array(
        lagrange_matrix(F11, nodes=basis, targets=list(points_c)).to_ints(), dtype=np.int64
    ).reshape(len(points_c), len(basis))
    to_all = np.array(
        lagrange_matrix(F11, nodes=basis, targets=list(points_all)).to_ints(), dtype=np.int64
    ).reshape(len(points_all), len(basis))
    h = len(inputs)
    rand = np.array(list(itertools.product(range(p), repeat=t * h)), dtype=np.int64)
    columns = []
    total: np.ndarray = np.zeros((len(rand), len(points_all)), dtype=np.int64)
    for i, x in enumerate(inputs):
        values = np.concatenate([np.full((len(rand), 1), x), rand[:, i * t : (i + 1) * t]], axis=1)
        columns.append(values @ to_c.T % p)
        total = (total + values @ to_all.T) % p
    view = np.concatenate([*columns, total], axis=1)
    weights = p ** np.arange(view.shape[1], dtype=np.int64)
    return np.sort(view @ weights)


@pytest.mark.parametrize(("t", "honest", "coalition"), [(1, 2, (1,)), (2, 2, (1, 3)), (1, 3, (2,))])
def test_coalition_view_depends_only_on_the_honest_sum(
    t: int, honest: int, coalition: tuple[int, ...]
) -> None:
    """What ``t`` aggregators see is distributed the same for all inputs with the same sum.

    Exhaustive in GF(11), aggregators at points 1..4 (off the basis points
    0, −1, .., −t), ``k = 1``: for every tuple of honest inputs the
    multiset of coalition views over *all* Shamir randomness is computed
    (:func:`_views`); tuples with equal sums give identical multisets, and
    (so the check can fail) tuples with different sums give different ones.
    """
    p = F11.MODULUS
    points_all = [1, 2, 3, 4]
    by_sum: dict[int, np.ndarray] = {}
    for inputs in itertools.product(range(p), repeat=honest):
        if honest == 3 and inputs[2] != 0 and inputs[0] != inputs[2]:
            continue  # three inputs: a slice with every sum, each sum reached several ways
        views = _views(p, t, coalition, points_all, inputs)
        s = sum(inputs) % p
        if s in by_sum:
            assert np.array_equal(by_sum[s], views), (inputs, s)
        else:
            by_sum[s] = views
    assert len(by_sum) == p
    for a, b in itertools.combinations(by_sum, 2):
        assert not np.array_equal(by_sum[a], by_sum[b]), (a, b)


#: The message kinds a coalition member may receive, by the role it is addressed to.
COVERED: dict[str, set[str]] = {
    "share": {"aggregator"},
    "decision": {"contributor", "aggregator"},
    "report": {"coordinator"},
    "partial_sum": {"receiver"},
    "abort": {"contributor", "aggregator", "receiver"},
}


@pytest.mark.parametrize("crashes", [{}, {4: 0}, {1: 0}], ids=str)
def test_coalition_view_model_matches_what_the_machines_deliver(crashes: dict[int, int]) -> None:
    """Everything the simulated machines deliver to a coalition is what the privacy model covers.

    Coalition ``C = {2, 3}`` (``t = 2``) of a round of 5. Each delivered
    message is a share (from a contributor, to ``C``'s own point), a
    decision, a report only to the coordinator, a partial sum or an abort,
    with no field beyond the model's. Each contributor's shares, over all
    aggregators, lie on one polynomial of degree ``t + k − 1`` (checked by
    interpolation here), and each partial sum a member of ``C`` sends is
    the sum of the shares it received from ``U``.
    """
    p = round_params(n=5, threshold=2, max_dropouts=1, dimension=2)
    coalition = {2, 3}
    scenario = Scenario(p, master(300, len(crashes)), crashes=crashes)
    outcome, lines = run(scenario)
    check_round(scenario, outcome, lines)
    fields = {m.model_fields["kind"].default: set(m.model_fields) for m in MESSAGE_TYPES}
    header = {"version", "session", "round", "sender", "recipient", "role", "kind"}
    assert fields["share"] == header | {"stage", "values"}
    assert fields["partial_sum"] == header | {"stage", "contributors", "aggregators", "values"}
    delivered = [
        from_obj(line["message"])
        for line in lines
        if line["type"] == "deliver" and line["node"] in coalition
    ]
    assert delivered
    received: dict[tuple[int, int], list[int]] = {}
    for m in delivered:
        assert m.role in COVERED[m.kind], (m.kind, m.role)
        assert set(type(m).model_fields) == fields[m.kind]
        if m.kind == "report":
            assert m.recipient == p.coordinator
        if m.kind == "share":
            assert m.sender in p.contributors and m.role == "aggregator"
            received[(m.recipient, m.sender)] = [int(v) for v in cast(Any, m).values]
        if m.kind in ("decision", "abort"):
            assert m.sender == p.coordinator
    # Every sent share: per contributor and stage, one polynomial of degree t + k − 1.
    sent: dict[tuple[int, int], dict[int, list[int]]] = {}
    for line in lines:
        if line["type"] == "send" and line["message"]["kind"] == "share":
            m = line["message"]
            sent.setdefault((m["sender"], m["stage"]), {})[m["recipient"]] = [
                int(v) for v in m["values"]
            ]
    degree = p.threshold + p.packing - 1
    for points in sent.values():
        xs = sorted(points)
        if len(xs) > degree + 1:
            base = xs[: degree + 1]
            for x in xs[degree + 1 :]:
                predicted = [
                    lagrange_eval(p.field.MODULUS, base, [points[b][c] for b in base], x)
                    for c in range(p.share_length)
                ]
                assert predicted == points[x]
    # A coalition member's partial sum is the sum of its held shares over U (stage 0 here:
    # with no dropout there is no top-up).
    for line in lines:
        if line["type"] == "send" and line["message"]["kind"] == "partial_sum":
            m = line["message"]
            if m["sender"] in coalition and m["stage"] == 0:
                want = [
                    sum(received[(m["sender"], i)][c] for i in m["contributors"]) % p.field.MODULUS
                    for c in range(p.share_length)
                ]
                assert [int(v) for v in m["values"]] == want


# ---------------------------------------------------------------- tampering


@pytest.mark.parametrize(
    ("n", "t", "tamper"),
    [
        (5, 1, (3,)),
        (5, 1, (1,)),
        (6, 2, (2,)),
        (7, 1, (2, 5)),
        (7, 2, (1, 4)),
        (4, 1, (4,)),
        (4, 2, (2,)),
        (5, 1, (2, 4)),
        (6, 2, (3, 6)),
    ],
)
@pytest.mark.parametrize("seed", range(3))
def test_tampered_partial_sum_is_corrected_or_detected(
    n: int, t: int, tamper: tuple[int, ...], seed: int
) -> None:
    """Tampered partial sums are corrected when redundancy allows, else refused; never released.

    With ``N = |A|`` partial sums, ``K = t + k`` and receivers correcting
    ``e = (N − K) // 2`` errors, ``f`` tamperers are (robust decoding,
    spec/04-shamir.md#robust-reconstruct):

    - corrected when ``f <= e``: the release is the true sum and every
      receiver lists exactly the tamperers in ``ReceiverState.faulty``;
    - detected when ``e < f <= N − K − e``: receivers release the true sum
      or abort with ``inconsistent-partial-sums``; never a wrong value.
    """
    p = _params_for(n, t, 1, 0, 1, 2)
    scenario = Scenario(p, master(400, n, t, seed), tamper=tamper)
    big_n, big_k, f = len(p.aggregators), p.quorum, len(tamper)
    e = (big_n - big_k) // 2
    assert f <= big_n - big_k - e, "the case is outside the detection bound"
    outcome, lines = run(scenario)
    check_round(scenario, outcome, lines)  # never a wrong release, at any receiver
    receivers = [s for s in outcome.states.values() if isinstance(s, ReceiverState)]
    if f <= e:
        assert outcome.status == "released"
        for r in receivers:
            assert r.phase is Phase.RELEASED and r.faulty == tamper
    else:
        assert outcome.status == "released" or outcome.reason == "inconsistent-partial-sums"
        for r in receivers:
            assert r.phase is Phase.RELEASED or r.reason == "inconsistent-partial-sums"


def test_tampering_without_redundancy_goes_undetected() -> None:
    """The bound above is tight: with ``|A| = t + k`` one tamperer shifts the release.

    No redundancy, nothing to check against: receivers release, and the
    oracle of :func:`check_round` catches the wrong value (so it can fail).
    """
    p = _params_for(3, 2, 0, 0, 1, 1)
    scenario = Scenario(p, master(500), tamper=(2,))
    outcome, lines = run(scenario)
    assert outcome.status == "released" and not outcome.aggregate_correct
    with pytest.raises(AssertionError, match="wrong sum"):
        check_round(scenario, outcome, lines)


# ---------------------------------------------------------------- noise sources, pre-covering
# Spec: spec/09-protocol.md#noise-sources, spec/07-noise-plan.md#pre-covering


def source_noise(scenario: Scenario, node: int, top_ups: Sequence[int]) -> np.ndarray:
    """``node``'s noise, drawn again from its streams with spec 07's variances.

    A node outside the noise sources adds nothing. A source adds
    ``s(0) = σ*²/(|S| − c0 − T)`` first, then at each top-up to ``d``
    source dropouts ``s(d) − s(before)`` with ``s(d) = σ*²/(|S| − max(d, c0) − T)``.
    """
    p = scenario.params
    if node not in p.sources:
        return np.zeros(p.dimension, dtype=object)
    n_s, t, c0 = len(p.sources), p.noise.max_colluders, p.noise.precovered
    target, mech = p.noise.target_variance, p.noise.mechanism
    index = ("dgauss", "skellam").index(mech)

    def s(d: int) -> Fraction:
        return target / (n_s - max(d, c0) - t)

    seed = scenario.node_seed(node)
    stream = Xof(seed, Tag("noise.share", (p.round, index)))
    total = sample_table(stream, mech, s(0), p.dimension).astype(object)
    before = c0
    for d in top_ups:
        stream = Xof(seed, Tag("noise.top_up", (p.round, index, d)))
        total = total + sample_table(stream, mech, s(d) - s(before), p.dimension).astype(object)
        before = d
    return np.asarray(total, dtype=object)


@settings(max_examples=25 if not THOROUGH else 200)
@given(
    n=st.integers(5, 9),
    subset=st.booleans(),
    precover=st.booleans(),
    receivers=st.integers(1, 3),
    mechanism=st.sampled_from(["skellam", "dgauss"]),
    data=st.data(),
)
def test_rounds_with_noise_sources_and_pre_covering_release_correctly(
    *, n: int, subset: bool, precover: bool, receivers: int, mechanism: str, data: st.DataObject
) -> None:
    """Fewer noise sources, a pre-covering plan, fewer receivers: any crashes, any colluders.

    Every release is the sum over ``U`` of the updates plus the sources'
    noise, recomputed here from the streams; the honest sources in ``U``
    carry at least σ*², and so does the accountant's record of the
    release; only the named receivers reconstruct. A plan that pre-covers
    ``D`` never needs a top-up stage.
    """
    precover = precover or subset  # fewer sources require pre-covering (spec 09)
    big_d = data.draw(st.integers(0, 2))
    colluders = data.draw(st.integers(0, 1))
    sources = data.draw(st.integers(big_d + colluders + 1, n)) if subset else None
    scenario = build(
        master=master(300, n, int(subset), int(precover), receivers),
        nodes=n,
        threshold=1,
        committee=data.draw(st.integers(3, n)),
        max_dropouts=big_d,
        colluders=colluders,
        dimension=3,
        mechanism=mechanism,
        noise_sources=sources,
        receivers=receivers,
        precover=precover,
    )
    p = scenario.params
    crashed = data.draw(st.sets(st.sampled_from(p.nodes), max_size=big_d + 1))
    sends = [data.draw(st.integers(0, 2 * n)) for _ in crashed]
    scenario = replace(scenario, crashes=dict(zip(sorted(crashed), sends, strict=True)))
    outcome, lines = run(scenario)
    receiving = {node for (node, role) in outcome.states if role == "receiver"}
    assert receiving == set(p.receiving) and len(receiving) == receivers
    if outcome.status != "released":
        assert outcome.reason in REASONS
        return
    decisions = [ln["message"] for ln in lines
                 if ln["type"] == "send" and ln["message"]["kind"] == "decision"]  # fmt: skip
    top_ups = sorted({(m["stage"], p.source_dropouts(m["contributors"]))
                      for m in decisions if not m["final"]})  # fmt: skip
    if precover:
        assert top_ups == [], "a plan that pre-covers D needs no top-up"
    u = outcome.contributors
    truth = sum(
        (np.array(scenario.update(i).signed_decode(), dtype=object)
         + source_noise(scenario, i, [d for _, d in top_ups]) for i in u),
        start=np.zeros(p.dimension, dtype=object),
    )  # fmt: skip
    assert outcome.released is not None
    assert outcome.released.to_ints() == [int(v) % p.field.MODULUS for v in truth]
    honest = [i for i in u if i in p.sources and i not in scenario.colluders]
    assert outcome.honest_noise_variance >= p.noise.target_variance
    if precover:
        v0 = p.noise.target_variance / (len(p.sources) - big_d - colluders)
        assert outcome.honest_noise_variance == len(honest) * v0
    released = next(s for s in outcome.states.values()
                    if isinstance(s, ReceiverState) and s.phase is Phase.RELEASED)  # fmt: skip
    record = round_record(released, sampling_rate=1.0, l2_sensitivity=1.0, l1_sensitivity=1.0)
    members = len(set(u) & set(p.sources))
    assert record.contributors == members and record.colluders == colluders
    if mechanism == "skellam":
        worst = (members - colluders) * p.noise.survivor_variance(p.source_dropouts(u))
        assert Fraction(record.honest_variance) <= worst
        assert worst >= p.noise.target_variance
