"""The decentralized-learning job: DP-SGD whose every aggregate goes through SDL.

Spec: spec/13-learning.md

Each round, every node Poisson-samples its own records, computes their
per-example gradients and clips each to ``clip``. What it contributes
depends on the privacy unit:

- ``record``: each clipped gradient is encoded on its own
  (spec/05-encoding.md) and the node sums the encodings in the field; one
  record changes one encoding, so the round's sensitivity is that of one
  encoding (proofs_notes/record-level-sensitivity.md);
- ``node``: the node sums its clipped gradients, clips the sum to
  ``node_clip`` and encodes it once; the sensitivity is that of one node's
  encoding.

The trust model decides who adds the noise and what is revealed:

- ``distributed`` (SDL): every node adds its share of the noise plan
  (spec/07-noise-plan.md) and Shamir-shares its update; the round runs
  through the protocol's state machines in the simulator (spec/09, spec/12),
  dropouts included; only the noisy sum is revealed;
- ``central``: a trusted aggregator sums the encodings and adds the target
  noise once;
- ``local``: every node adds the full target noise to its own update, with
  no MPC;
- ``none``: no noise.

The noise is calibrated before the first round (the smallest that meets
the target ε over the planned rounds) and the reported ε is the realized
one: the accountant's value for the rounds that were released, with the
table samplers' statistical distance charged to δ (spec/08-accounting.md).

Seeds (spec/13-learning.md#seeds-and-node-secrets): ``cfg.seed`` is public
(split, partition, model init, committee, rotation, session, simulated
dropouts and network). What hides a node's data — its sampling, rounding,
protocol and noise randomness — comes from the node's *root*
(:func:`node_root`): 32 bytes drawn from the operating system per node and
per run, held in memory only, unless ``cfg.deterministic`` derives every
root from the public seed (a reproducible test mode that is not private).
"""

from __future__ import annotations

import hashlib
import math
import secrets
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from protocol.accounting import (
    DDG_MIN_SIGMA,
    ComposedEvent,
    ComposedSequence,
    DiscreteGaussianEvent,
    DistributedDiscreteGaussianEvent,
    PoissonSampledEvent,
    SkellamEvent,
    calibrate,
    epsilon,
    realized_event,
)
from protocol.encoding import (
    EncodingParams,
    choose_field,
    decode_sum,
    encode,
    l1_sensitivity,
    l2_sensitivity,
)
from protocol.errors import ParameterError
from protocol.field import Field, Field61
from protocol.machine import Phase, ReceiverState
from protocol.messages import Message, wire_size
from protocol.noise import STATISTICAL_DISTANCE_BOUND, sample_table
from protocol.noise_plan import plan
from protocol.params import RoundParams, select_committee
from protocol.release import round_record
from protocol.xof import SEED_SIZE, Seed, Tag, Xof, as_seed, derive_seed
from reference.learning.data import (
    Dataset,
    load_digits,
    load_file,
    partition,
    poisson_sample,
    realized_rate,
    split,
)
from reference.learning.models import Model, accuracy, clip_rows, make_model
from reference.sim.simulate import Scenario, simulate

F64 = npt.NDArray[np.float64]

TRUST_MODELS = ("distributed", "central", "local", "none")
MECHANISM_NAMES = ("skellam", "dgauss")
UNITS = ("record", "node")

#: Integer steps per unit of ``clip``: the encoding's granularity is ``clip / STEPS``.
STEPS = 256
#: One rounding attempt may exceed the inflated bound with probability β (spec 05).
BETA = math.exp(-0.5)
#: The field must hold the true sum except with this probability per round.
WRAP_PROBABILITY = 1e-9


@dataclass(frozen=True, slots=True)
class JobConfig:
    """Everything a run depends on. Spec: spec/13-learning.md#configuration"""

    seed: Seed
    nodes: int = 10
    rounds: int = 60
    epsilon: float = 2.0
    delta: float = 1e-5
    mechanism: str = "skellam"
    trust: str = "distributed"
    unit: str = "record"
    threshold: int = 2
    colluders: int = 0
    dropout_rate: float = 0.0
    model: str = "softmax"
    partition: str = "iid"
    data: Path | None = None
    sampling_rate: float = 1.0
    clip: float = 2.0
    learning_rate: float = 4.0
    node_clip: float | None = None
    test_fraction: float = 0.2
    #: Kept so that older configs (and the evaluation's cost grid, which is keyed on it)
    #: still load: bytes are now always counted, in the binary wire form, so it changes
    #: nothing in the run.
    measure_bytes: bool = False
    #: The randomized Hadamard rotation of spec/05-encoding.md#rotation. Off by
    #: default: the field is chosen so that no sum wraps (spec 13), which is
    #: what the rotation protects against, and it doubles the encoding cost.
    rotate: bool = False
    #: Aggregators per round, drawn from public randomness (spec/09-protocol.md#committee);
    #: ``None``: ``min(nodes, 10)``.
    committee: int | None = None
    #: ``D``, the dropouts each round's noise plan withstands (spec/13-learning.md#dropouts);
    #: ``None``: derived from ``dropout_rate``. A deployment, whose dropouts are real
    #: crashes rather than drawn, sets it directly.
    max_dropouts: int | None = None
    #: Every node adds, from the start, the noise that covers all ``D`` dropouts
    #: (spec/07-noise-plan.md#pre-covering): no round ever needs a top-up stage, at the
    #: price of more noise when nobody drops. A deployment, whose crashes are real and
    #: whose every stage costs network round trips, turns it on.
    precover: bool = False
    #: Backup coordinators per round: the next committee members in draw order take
    #: over, in turn, when the coordinator crashes (spec/09-protocol.md#failover).
    failover: int = 0
    #: Derive every node's root from ``seed`` (reproducible, **not private**: anyone with
    #: the seed can regenerate and subtract the noise); ``False`` draws the roots from the
    #: operating system (spec/13-learning.md#seeds-and-node-secrets).
    deterministic: bool = True

    def __post_init__(self) -> None:
        def count(name: str, minimum: int) -> None:
            v = getattr(self, name)
            if type(v) is not int or v < minimum:
                raise ParameterError(f"{name} must be an int >= {minimum}; got {v!r}")

        def real(name: str, ok: Callable[[float], bool], what: str) -> None:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise ParameterError(f"{name} must be a finite number; got {v!r}")
            if not ok(float(v)):
                raise ParameterError(f"{name} must be {what}; got {v!r}")

        count("nodes", 2)
        count("rounds", 1)
        count("threshold", 1)
        count("colluders", 0)
        real("epsilon", lambda v: v > 0, "> 0")
        real("delta", lambda v: 0 < v < 1, "in (0, 1)")
        real("dropout_rate", lambda v: 0 <= v < 1, "in [0, 1)")
        real("sampling_rate", lambda v: 0 < v <= 1, "in (0, 1]")
        real("clip", lambda v: v > 0, "> 0")
        real("learning_rate", lambda v: v > 0, "> 0")
        real("test_fraction", lambda v: 0 < v < 1, "in (0, 1)")
        if self.committee is not None:
            count("committee", self.threshold + 1)
            if self.committee > self.nodes:
                raise ParameterError(
                    f"committee must be <= nodes = {self.nodes}; got {self.committee}"
                )
        if not isinstance(self.precover, bool):
            raise ParameterError(f"precover must be a bool; got {self.precover!r}")
        count("failover", 0)
        if not isinstance(self.rotate, bool):
            raise ParameterError(f"rotate must be a bool; got {self.rotate!r}")
        if not isinstance(self.deterministic, bool):
            raise ParameterError(f"deterministic must be a bool; got {self.deterministic!r}")
        if self.node_clip is not None:
            real("node_clip", lambda v: v > 0, "> 0")
        for name, allowed in (
            ("mechanism", MECHANISM_NAMES),
            ("trust", TRUST_MODELS),
            ("unit", UNITS),
            ("model", ("softmax", "mlp")),
        ):
            if getattr(self, name) not in allowed:
                raise ParameterError(
                    f"{name} must be one of {', '.join(allowed)}; got {getattr(self, name)!r}"
                )
        committee = self.committee if self.committee is not None else min(self.nodes, 10)
        if self.threshold >= committee:
            raise ParameterError(
                f"threshold must be below the {committee} aggregators (t + 1 partial sums "
                f"rebuild the sum); got {self.threshold}"
            )
        if self.failover >= committee:
            raise ParameterError(
                f"failover must be below the {committee} aggregators (each backup is one of "
                f"them, other than the coordinator); got {self.failover}"
            )
        if self.colluders >= self.nodes:
            raise ParameterError(f"colluders must be < nodes = {self.nodes}; got {self.colluders}")
        if self.max_dropouts is not None:
            count("max_dropouts", 0)
            most = min(self.nodes - self.colluders - 1, committee - self.threshold - 1)
            if self.max_dropouts > most:
                raise ParameterError(
                    f"max_dropouts must be <= {most}: an honest survivor (nodes - colluders - D "
                    f">= 1) and a quorum of threshold + 1 of the {committee} aggregators must "
                    f"survive D dropouts; got {self.max_dropouts}"
                )


@dataclass(frozen=True, slots=True)
class RoundLog:
    """What one round did. Spec: spec/13-learning.md#outputs"""

    round: int
    released: bool
    reason: str | None
    contributors: int
    dropouts: int
    sampled: int
    accuracy: float
    epsilon: float
    seconds_local: float
    seconds_aggregate: float
    seconds_update: float
    messages: int
    #: Bytes of every protocol message sent, in the binary wire form
    #: (:func:`protocol.messages.wire_size`); 0 when the round runs no protocol.
    bytes_sent: int


@dataclass(frozen=True, slots=True)
class JobResult:
    """The outcome of a run. Spec: spec/13-learning.md#outputs"""

    config: JobConfig
    accuracy: float
    epsilon: float
    delta: float
    noise_variance: float
    l2_sensitivity: float
    planned_dropouts: int
    packing: int
    field: str
    dataset: str
    train_records: int
    test_records: int
    seconds: float
    history: tuple[RoundLog, ...] = dataclass_field(default_factory=tuple)
    #: :class:`ReleaseDigest` of the released sums (spec/13-learning.md#digests).
    released_sha256: str = ""
    #: :func:`model_digest` of the final parameters (spec/13-learning.md#digests).
    model_sha256: str = ""
    #: What the relay of a deployment saw (spec/15-deployment.md#outputs); ``None`` in-process.
    deployment: Mapping[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        c = self.config
        released = sum(1 for r in self.history if r.released)
        return {
            "accuracy": self.accuracy,
            "epsilon": self.epsilon,
            "target_epsilon": c.epsilon,
            "delta": self.delta,
            "rounds": c.rounds,
            "released_rounds": released,
            "nodes": c.nodes,
            "trust": c.trust,
            "mechanism": c.mechanism,
            "unit": c.unit,
            "model": c.model,
            "partition": c.partition,
            "threshold": c.threshold,
            "colluders": c.colluders,
            "dropout_rate": c.dropout_rate,
            **({"failover": c.failover} if c.failover else {}),
            "sampling_rate": c.sampling_rate,
            "clip": c.clip,
            "learning_rate": c.learning_rate,
            "noise_variance": self.noise_variance,
            "l2_sensitivity": self.l2_sensitivity,
            "planned_dropouts": self.planned_dropouts,
            "packing": self.packing,
            "field": self.field,
            "dataset": self.dataset,
            "train_records": self.train_records,
            "test_records": self.test_records,
            "seed": c.seed.hex(),
            "deterministic": c.deterministic,
            "node_secrets": (
                "derived from the public seed: a deterministic test mode, reproducible and "
                "not private"
                if c.deterministic
                else "drawn from the operating system, held in memory only, not written"
            ),
            "released_sha256": self.released_sha256,
            "model_sha256": self.model_sha256,
            "seconds": self.seconds,
            "history": [
                {k: getattr(r, k) for k in RoundLog.__dataclass_fields__} for r in self.history
            ],
            **({} if self.deployment is None else {"deployment": dict(self.deployment)}),
        }


# ---------------------------------------------------------------------- seeds


def _check_node(cfg: JobConfig, node: int) -> None:
    if type(node) is not int or not 0 <= node <= cfg.nodes:
        raise ParameterError(
            f"node must be an int in [0, {cfg.nodes}] (0: the central aggregator); got {node!r}"
        )


def _check_round(r: int) -> None:
    if type(r) is not int or r < 0:
        raise ParameterError(f"round must be an int >= 0 (rounds count from 0); got {r!r}")


def node_root(cfg: JobConfig, node: int, drawn: Seed | None) -> Seed:
    """Node ``node``'s root secret for the run: every secret seed it uses comes from it.

    Spec: spec/13-learning.md#seeds-and-node-secrets

    - deterministic mode: ``derive_seed(cfg.seed, Tag("learning.node", (node,)))``,
      which anyone holding the public seed can recompute (not private);
    - otherwise ``drawn``: 32 bytes the node drew from the operating system
      (``secrets.token_bytes(32)``) once for the run and never reveals.

    ``node`` is 1..n, or 0 for the central aggregator (``trust="central"``).

    Pre-conditions:
        - ``drawn`` is ``None`` in deterministic mode and a 32-byte seed otherwise.

    Raises:
        ParameterError: on a node out of range, or ``drawn`` missing, given in
            deterministic mode, or not 32 bytes.
    """
    _check_node(cfg, node)
    if cfg.deterministic:
        if drawn is not None:
            raise ParameterError(
                "a deterministic run derives every root from the public seed; got a drawn root"
            )
        return derive_seed(cfg.seed, Tag("learning.node", (node,)))
    if drawn is None:
        raise ParameterError(
            f"a non-deterministic run needs node {node}'s drawn {SEED_SIZE}-byte root; got None"
        )
    return as_seed(drawn)


def sampling_seed(root: Seed) -> Seed:
    """The seed of a node's Poisson sampling and encoding rounding: the root itself.

    Spec: spec/13-learning.md#seeds-and-node-secrets

    Round ``r`` samples with ``poisson_sample(..., seed=sampling_seed(root),
    tag=Tag("learning.sample", (r,)))`` and rounds the encoding keyed ``key`` with
    ``derive_seed(sampling_seed(root), Tag("learning.rounding", (r, key)))``.

    Raises:
        ParameterError: if ``root`` is not 32 bytes.
    """
    return as_seed(root)


def protocol_seed(cfg: JobConfig, r: int, node: int, root: Seed) -> Seed:
    """Node ``node``'s secret seed for the protocol round ``r`` (its shares and noise).

    Spec: spec/13-learning.md#seeds-and-node-secrets

    - deterministic mode: ``derive_seed(derive_seed(cfg.seed, Tag("learning.protocol",
      (r,))), Tag("sim.node", (node,)))``, the simulator's own per-node seed under the
      round's public master (``root`` is ignored);
    - otherwise ``derive_seed(root, Tag("learning.protocol", (r,)))``.

    Raises:
        ParameterError: on a round or node out of range, or a root not of 32 bytes.
    """
    _check_round(r)
    _check_node(cfg, node)
    root = as_seed(root)
    if cfg.deterministic:
        master = derive_seed(cfg.seed, Tag("learning.protocol", (r,)))
        return derive_seed(master, Tag("sim.node", (node,)))
    return derive_seed(root, Tag("learning.protocol", (r,)))


def noise_seed(cfg: JobConfig, r: int, who: int, root: Seed) -> Seed:
    """The seed of the noise ``who`` adds in round ``r`` under central or local trust.

    Spec: spec/13-learning.md#seeds-and-node-secrets

    ``who`` is 0 (the central aggregator) or a node 1..n (local trust); the noise is
    ``sample_table(Xof(noise_seed(...), Tag("learning.noise")), ...)``.

    - deterministic mode: ``derive_seed(cfg.seed, Tag("learning.noise_seed", (r, who)))``
      (``root`` is ignored);
    - otherwise ``derive_seed(root, Tag("learning.noise_seed", (r,)))`` with ``root``
      the root of ``who``.

    Raises:
        ParameterError: on a round or ``who`` out of range, or a root not of 32 bytes.
    """
    _check_round(r)
    _check_node(cfg, who)
    root = as_seed(root)
    if cfg.deterministic:
        return derive_seed(cfg.seed, Tag("learning.noise_seed", (r, who)))
    return derive_seed(root, Tag("learning.noise_seed", (r,)))


@dataclass(frozen=True, slots=True)
class _Roots:
    """Every node's root for one run (node 0: the central aggregator), in memory only.

    Its repr shows no seed, so that no traceback or log line carries one.
    """

    seeds: Mapping[int, Seed] = dataclass_field(repr=False)

    def __getitem__(self, node: int) -> Seed:
        return self.seeds[node]


def _draw_roots(cfg: JobConfig) -> _Roots:
    """The run's roots: drawn once from the OS (``secrets``) unless ``cfg.deterministic``."""
    who = range(0 if cfg.trust == "central" else 1, cfg.nodes + 1)
    return _Roots(
        {
            i: node_root(
                cfg, i, None if cfg.deterministic else Seed(secrets.token_bytes(SEED_SIZE))
            )
            for i in who
        }
    )


# ---------------------------------------------------------------------- digests


class ReleaseDigest:
    """SHA-256 over the released sums of a run, fed round by round.

    Spec: spec/13-learning.md#digests

    ``SHA-256(‖ over released rounds, in order: round.to_bytes(4, "little") ‖
    total.encode())`` with ``round`` 1-based (as in :class:`RoundLog`) and
    ``total`` the released sum in the field's canonical bytes
    (spec/02-field.md#serialization); an aborted round adds nothing. Only the
    hash state is kept, never the sums.
    """

    __slots__ = ("_hash", "_last")

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self._last = 0

    def add(self, round: int, total: Field) -> None:
        """Add round ``round``'s released sum ``total``.

        Raises:
            ParameterError: if ``round`` is not an int in ``[1, 2^32)`` above the last
                round added.
        """
        if type(round) is not int or not self._last < round < 2**32:
            raise ParameterError(
                f"round must be an int in ({self._last}, 2^32), after the last one added; "
                f"got {round!r}"
            )
        self._last = round
        self._hash.update(round.to_bytes(4, "little"))
        self._hash.update(total.encode())

    def hexdigest(self) -> str:
        """The lowercase hex SHA-256 of everything added so far."""
        return self._hash.hexdigest()


def model_digest(params: npt.ArrayLike) -> str:
    """The lowercase hex SHA-256 of the model parameters as little-endian float64 bytes.

    Spec: spec/13-learning.md#digests

    ``SHA-256(np.ascontiguousarray(params, dtype="<f8").tobytes())``, in C order.
    """
    return hashlib.sha256(np.ascontiguousarray(params, dtype="<f8").tobytes()).hexdigest()


# ---------------------------------------------------------------------- setup


def planned_dropouts(cfg: JobConfig) -> int:
    """``D``: dropouts the plan withstands; about 3 standard deviations above the mean.

    Spec: spec/13-learning.md#dropouts

    ``ceil(r·n + 3·sqrt(r(1 − r)·n))`` for a dropout rate ``r > 0`` (0 when
    ``r = 0``), capped so that the honest-survivor bound ``n − D − T >= 1``
    and a quorum ``t + 1`` of aggregators can survive.
    """
    if cfg.max_dropouts is not None:
        return cfg.max_dropouts
    n, r = cfg.nodes, cfg.dropout_rate
    if r == 0:
        return 0
    wanted = math.ceil(r * n + 3 * math.sqrt(r * (1 - r) * n))
    return max(0, min(wanted, n - cfg.colluders - 1, n - cfg.threshold - 1))


def _one_round_event(cfg: JobConfig, variance: float, l2: float, l1: float, dim: int) -> object:
    """What one round costs at noise ``variance`` in the worst case the plan allows."""
    n, t, d_max = cfg.nodes, cfg.colluders, planned_dropouts(cfg)
    inner: object
    if cfg.trust in ("central", "local"):
        # One node's release (local) or the aggregator's (central): one draw.
        if cfg.mechanism == "skellam":
            inner = SkellamEvent(variance=variance, l2_sensitivity=l2, l1_sensitivity=l1)
        else:
            inner = DiscreteGaussianEvent(sigma2=variance, l2_sensitivity=l2)
    elif cfg.mechanism == "skellam":
        # The plan guarantees honest noise Sk(σ*²) whatever drops (spec 07).
        inner = SkellamEvent(variance=variance, l2_sensitivity=l2, l1_sensitivity=l1)
    else:
        # Only the initial draws v0 = σ*²/(n − T) of the n − D − T honest survivors count.
        inner = DistributedDiscreteGaussianEvent(
            sigma2=variance / (n - t),
            clients=n - d_max - t,
            dimension=dim,
            l2_sensitivity=l2,
            l1_sensitivity=l1,
        )
    rate = _accounting_rate(cfg)
    return inner if rate == 1 else PoissonSampledEvent(event=inner, sampling_rate=rate)


def _accounting_rate(cfg: JobConfig) -> float:
    # Record level: each record is kept with the realized rate of poisson_sample.
    # Node level: every node takes part in every round.
    return realized_rate(cfg.sampling_rate) if cfg.unit == "record" else 1.0


def _sampler_distance(cfg: JobConfig, d_pad: int) -> float:
    """The table samplers' total statistical distance over the planned rounds.

    Spec: spec/06-noise.md#table-sampler. Each coordinate's draw is within
    2^-64 of exact; a node draws at most ``D + 1`` times per coordinate
    (initial share and top-ups), Skellam counting as one draw per table use.
    """
    if cfg.trust == "none":
        return 0.0
    per_round = cfg.nodes * (planned_dropouts(cfg) + 1) * d_pad * 2
    return float(cfg.rounds * per_round * STATISTICAL_DISTANCE_BOUND)


def calibrate_noise(cfg: JobConfig, *, l2: float, l1: float, dim: int) -> float:
    """The smallest integer noise parameter σ*² meeting the target ε over the planned rounds.

    Spec: spec/13-learning.md#calibration
    """
    distance = _sampler_distance(cfg, dim)
    allowance = (1 + math.exp(cfg.epsilon)) * distance
    delta = cfg.delta - allowance
    if delta <= 0:
        # The table samplers' statistical distance is charged to δ
        # (spec/06-noise.md#table-sampler): this run's draws alone use it up.
        raise ParameterError(
            f"--delta {cfg.delta:g} is at most what this run's noise samplers already use "
            f"({allowance:.3g}: (1 + e^epsilon) times their statistical distance over every "
            "draw); raise --delta, or lower --epsilon, --rounds or --nodes"
        )

    def make(variance: float) -> object:
        return ComposedEvent(event=_one_round_event(cfg, variance, l2, l1, dim), count=cfg.rounds)

    low = l2 * l2 * 1e-3
    if cfg.trust == "distributed" and cfg.mechanism == "dgauss":
        # The sum-of-discrete-Gaussians bound covers only σ >= 1/2 per draw
        # (spec/08-accounting.md#sum-of-discrete-gaussians): each draw is σ*²/(n − T).
        low = max(low, (cfg.nodes - cfg.colluders) * DDG_MIN_SIGMA**2)
    result = calibrate(
        make,
        target_epsilon=cfg.epsilon,
        delta=delta,
        low=low,
        high=l2 * l2 * 1e7,
        tolerance=1e-4 * l2 * l2,
    )
    return float(math.ceil(result.noise))


# ---------------------------------------------------------------------- the run


@dataclass(frozen=True)
class JobPlan:
    """Everything a run decides once, before its first round, and hands down to every round.

    Spec: spec/13-learning.md#one-round. The data and its split, the model, the encoding
    (field, clip, scale), the sensitivities, the calibrated noise, the planned dropouts,
    the committee and packing, the accounting rate and what a round is charged: a round
    then only reads them.
    """

    cfg: JobConfig
    model: Model
    train: Dataset
    test: Dataset
    shards: list[Dataset]
    encoding: EncodingParams
    dim: int
    d_pad: int
    l2: float
    l1: float
    variance: float
    dropouts_planned: int
    packing: int
    node_clip: float
    #: The expected number of records sampled per round: the update's divisor.
    expected_batch: float
    #: Aggregators drawn per round (distributed trust).
    committee: int
    #: The Poisson rate the accountant charges (1 at node level).
    accounting_rate: float
    #: The table samplers' statistical distance per round (spec/06-noise.md#table-sampler).
    distance_per_round: float
    #: What a released round costs under central or local trust (None otherwise: none
    #: charges nothing, distributed is charged what its receiver saw).
    round_event: object | None


def _load(cfg: JobConfig) -> Dataset:
    return load_digits() if cfg.data is None else load_file(cfg.data)


def plan_job(cfg: JobConfig) -> JobPlan:
    """Load, split and partition the data; fix the encoding; calibrate the noise; plan rounds."""
    data = _load(cfg)
    train, test = split(
        data, test_fraction=cfg.test_fraction, seed=derive_seed(cfg.seed, Tag("learning.split"))
    )
    if cfg.nodes > len(train):
        raise ParameterError(f"nodes must be <= the {len(train)} training records; got {cfg.nodes}")
    shards = partition(
        train,
        nodes=cfg.nodes,
        scheme=cfg.partition,
        seed=derive_seed(cfg.seed, Tag("learning.partition")),
    )
    model = make_model(cfg.model, train.x.shape[1], train.classes)
    dim = model.size
    expected_batch = cfg.sampling_rate * len(train)
    node_clip = (
        cfg.node_clip
        if cfg.node_clip is not None
        else cfg.clip * max(1.0, expected_batch / cfg.nodes)
    )
    unit_clip = cfg.clip if cfg.unit == "record" else node_clip
    big_d = planned_dropouts(cfg)
    # The sensitivities do not depend on the field: calibrate first, then
    # choose the smallest field that holds the worst-case sum plus noise.
    sizing = EncodingParams(
        Field61, clip=unit_clip, scale=unit_clip / STEPS, beta=BETA, rotate=cfg.rotate
    )
    l2 = l2_sensitivity(sizing, length=dim)
    l1 = l1_sensitivity(sizing, length=dim)
    d_pad = sizing.padded_length(dim)
    variance = 0.0 if cfg.trust == "none" else calibrate_noise(cfg, l2=l2, l1=l1, dim=d_pad)
    # Worst case: every record sampled; the most noise any trust model adds
    # (local: n·σ*²; distributed: at most n·σ*²/(n − D − T)).
    most_noise = Fraction(int(variance)) * cfg.nodes * cfg.nodes
    probe = EncodingParams(
        choose_field(
            clip=unit_clip,
            scale=unit_clip / STEPS,
            beta=BETA,
            rotate=cfg.rotate,
            contributors=len(train) if cfg.unit == "record" else cfg.nodes,
            length=dim,
            noise_variance=max(most_noise, Fraction(1)),
            wrap_probability=WRAP_PROBABILITY,
            mechanism=cfg.mechanism,
        ),
        clip=unit_clip,
        scale=unit_clip / STEPS,
        beta=BETA,
        rotate=cfg.rotate,
    )
    committee = cfg.committee if cfg.committee is not None else min(cfg.nodes, 10)
    # Packing k secrets per polynomial cuts the shares k-fold; the quorum t + k
    # must survive D dropouts among the aggregators.
    packing = max(1, min(4, committee - big_d - cfg.threshold))
    return JobPlan(
        cfg=cfg,
        model=model,
        train=train,
        test=test,
        shards=shards,
        encoding=probe,
        dim=dim,
        d_pad=d_pad,
        l2=l2,
        l1=l1,
        variance=variance,
        dropouts_planned=big_d,
        packing=packing,
        node_clip=node_clip,
        expected_batch=expected_batch,
        committee=committee,
        accounting_rate=_accounting_rate(cfg),
        distance_per_round=_sampler_distance(cfg, d_pad) / cfg.rounds,
        round_event=(
            _one_round_event(cfg, float(int(variance)), l2, l1, d_pad)
            if cfg.trust in ("central", "local")
            else None
        ),
    )


def run_job(cfg: JobConfig, *, on_round: Callable[[RoundLog], None] | None = None) -> JobResult:
    """Train for ``cfg.rounds`` rounds; return the accuracy and the realized ε.

    Plan once, then for each round: local step, protocol round, account.

    Spec: spec/13-learning.md
    """
    started = time.perf_counter()
    plan = plan_job(cfg)
    # Drawn once per run, held here only: never returned, printed, logged or written.
    roots = _draw_roots(cfg)
    params = plan.model.init(derive_seed(cfg.seed, Tag("learning.init")))
    charges: list[object] = []
    history: list[RoundLog] = []
    digest = ReleaseDigest()
    for r in range(cfg.rounds):
        params, log = _round(plan, params, r, charges, roots=roots, digest=digest)
        history.append(log)
        if on_round is not None:
            on_round(log)
    return job_result(plan, history, params, digest, seconds=time.perf_counter() - started)


def job_result(
    plan: JobPlan,
    history: list[RoundLog],
    params: F64,
    digest: ReleaseDigest,
    *,
    seconds: float,
    deployment: Mapping[str, Any] | None = None,
) -> JobResult:
    """The run's result from its plan, its rounds, its final model and its release digest.

    Spec: spec/13-learning.md#outputs. The simulated job and a deployment's relay both
    end with it.
    """
    final = history[-1]
    return JobResult(
        config=plan.cfg,
        accuracy=final.accuracy,
        epsilon=final.epsilon,
        delta=plan.cfg.delta,
        noise_variance=plan.variance,
        l2_sensitivity=plan.l2,
        planned_dropouts=plan.dropouts_planned,
        packing=plan.packing,
        field=plan.encoding.field.__name__,
        dataset=plan.train.name,
        train_records=len(plan.train),
        test_records=len(plan.test),
        seconds=seconds,
        history=tuple(history),
        released_sha256=digest.hexdigest(),
        model_sha256=model_digest(params),
        deployment=deployment,
    )


def _round(
    plan: JobPlan,
    params: F64,
    r: int,
    charges: list[object],
    *,
    roots: _Roots,
    digest: ReleaseDigest,
) -> tuple[F64, RoundLog]:
    """One round: local step, protocol round, model update, account.

    ``charges`` grows by the round's charge and ``digest`` by its released sum.
    """
    cfg = plan.cfg
    t0 = time.perf_counter()
    alive = _alive(cfg, r)
    contributions, sampled = _local_contributions(plan, params, r, alive, roots=roots)
    t1 = time.perf_counter()
    total, charge, info = _aggregate(plan, r, contributions, alive, roots=roots)
    t2 = time.perf_counter()
    if total is not None:
        digest.add(r + 1, total)
        params = apply_release(plan, params, r, total)
    if charge is not None:
        charges.append(charge)
    spent = spent_epsilon(charges, cfg.delta, plan.distance_per_round * len(charges))
    t3 = time.perf_counter()
    return params, RoundLog(
        round=r + 1,
        released=total is not None,
        reason=info.get("reason"),
        contributors=int(info.get("contributors", 0)),
        dropouts=cfg.nodes - len(alive),
        sampled=sampled,
        accuracy=accuracy(plan.model, params, plan.test),
        epsilon=spent,
        seconds_local=t1 - t0,
        seconds_aggregate=t2 - t1,
        seconds_update=t3 - t2,
        messages=int(info.get("messages", 0)),
        bytes_sent=int(info.get("bytes", 0)),
    )


def apply_release(plan: JobPlan, params: F64, r: int, total: Field) -> F64:
    """The model after round ``r``'s release ``total``: decode it, take one SGD step.

    Spec: spec/13-learning.md#one-round. Every node and the relay of a deployment
    compute it with the same float64 operations, so they agree bit for bit.
    """
    rotation = _rotation_seed(plan.cfg, r)
    update = decode_sum(total, params=plan.encoding, rotation_seed=rotation, length=plan.dim)
    out: F64 = params - plan.cfg.learning_rate * update / plan.expected_batch
    return out


def spent_epsilon(charges: list[object], delta: float, distance: float) -> float:
    """ε of the released rounds, charged as they happened. Spec: spec/13-learning.md#accounting"""
    if not charges:
        return 0.0
    grouped = Counter(charges)
    event = ComposedSequence(
        events=tuple(ComposedEvent(event=e, count=c) for e, c in grouped.items())
    )
    return epsilon(event, delta=delta, sampler_distance=distance).epsilon


def _rotation_seed(cfg: JobConfig, r: int) -> Seed:
    # Public per-round randomness shared by every node (spec 05, rotation).
    return derive_seed(cfg.seed, Tag("learning.rotation", (r,)))


def _alive(cfg: JobConfig, r: int) -> list[int]:
    """The nodes that do not drop out of round ``r`` (each drops with ``dropout_rate``)."""
    nodes = list(range(1, cfg.nodes + 1))
    if cfg.dropout_rate == 0:
        return nodes
    dropped = set(
        int(i) + 1
        for i in poisson_sample(
            cfg.nodes, rate=cfg.dropout_rate, seed=cfg.seed, tag=Tag("learning.dropouts", (r,))
        )
    )
    return [i for i in nodes if i not in dropped]


def _local_contributions(
    s: JobPlan, params: F64, r: int, alive: list[int], *, roots: _Roots
) -> tuple[dict[int, Field], int]:
    """Each live node's encoded contribution (zero if it sampled nothing)."""
    out: dict[int, Field] = {}
    sampled = 0
    for i in alive:
        out[i], count = node_contribution(s, params, r, i, roots[i])
        sampled += count
    return out, sampled


def node_contribution(s: JobPlan, params: F64, r: int, node: int, root: Seed) -> tuple[Field, int]:
    """Node ``node``'s encoded contribution to round ``r`` and how many records it sampled.

    Spec: spec/13-learning.md#one-round. It needs only the public plan and model,
    the node's own shard and its own ``root``: what a deployed node computes on its
    machine, and what the simulated job computes for each node in turn.
    """
    cfg = s.cfg
    rotation = _rotation_seed(cfg, r)
    shard = s.shards[node - 1]
    node_seed = sampling_seed(root)
    keep = poisson_sample(
        len(shard), rate=cfg.sampling_rate, seed=node_seed, tag=Tag("learning.sample", (r,))
    )
    total = s.encoding.field.zeros(s.d_pad)
    if len(keep):
        grads = clip_rows(
            s.model.per_example_gradients(params, shard.x[keep], shard.y[keep]), cfg.clip
        )
        if cfg.unit == "record":
            # One encoding per record, its rounding seed keyed by the
            # record's place in the shard: a record added or removed
            # changes its own encoding and no other
            # (proofs_notes/record-level-sensitivity.md).
            rows, keys = grads, [int(k) for k in keep]
        else:
            rows, keys = clip_rows(grads.sum(0)[None, :], s.node_clip), [len(shard)]
        for key, row in zip(keys, rows, strict=True):
            rounding = derive_seed(node_seed, Tag("learning.rounding", (r, key)))
            total = (
                total
                + encode(
                    row, params=s.encoding, rotation_seed=rotation, rounding_seed=rounding
                ).values
            )
    return total, len(keep)


def _aggregate(
    s: JobPlan, r: int, contributions: dict[int, Field], alive: list[int], *, roots: _Roots
) -> tuple[Field | None, object | None, dict[str, Any]]:
    """The round's released sum (or ``None``), what it costs, and what happened."""
    cfg = s.cfg
    fld = s.encoding.field
    if cfg.trust == "distributed":
        return _distributed(s, r, contributions, alive, roots=roots)
    total = fld.zeros(s.d_pad)
    for i in alive:
        total = total + contributions[i]
    info: dict[str, Any] = {"contributors": len(alive)}
    if cfg.trust == "none":
        return total, None, info
    variance = Fraction(int(s.variance))
    draws = [0] if cfg.trust == "central" else alive
    for who in draws:
        xof = Xof(noise_seed(cfg, r, who, roots[who]), Tag("learning.noise"))
        total = total + fld.signed_encode(sample_table(xof, cfg.mechanism, variance, s.d_pad))
    return total, s.round_event, info


def round_params(s: JobPlan, r: int, *, window: int = 4) -> RoundParams:
    """The protocol parameters of round ``r``: all public, the same at every node.

    Spec: spec/13-learning.md#one-round. Every node is a contributor and a
    receiver; the committee (aggregators, the first drawn one coordinating) is
    drawn from the public session (spec/09-protocol.md#committee). ``window`` is
    the timers' unit in the driver's ticks; it changes when a timer fires, never
    what a round releases.
    """
    cfg = s.cfg
    nodes = tuple(range(1, cfg.nodes + 1))
    session = derive_seed(cfg.seed, Tag("learning.session"))
    drawn = select_committee(session=session, round=r, nodes=nodes, size=s.committee)
    coordinator, aggregators = drawn[0], tuple(sorted(drawn))
    noise = plan(
        mechanism=cfg.mechanism,
        target_variance=Fraction(int(s.variance)),
        contributors=cfg.nodes,
        max_dropouts=s.dropouts_planned,
        max_colluders=cfg.colluders,
        precovered=s.dropouts_planned if cfg.precover else 0,
    )
    return RoundParams(
        session=session,
        round=r,
        field=s.encoding.field,
        nodes=nodes,
        contributors=nodes,
        aggregators=aggregators,
        coordinator=coordinator,
        threshold=cfg.threshold,
        packing=s.packing,
        dimension=s.d_pad,
        noise=noise,
        min_contributors=max(2, cfg.nodes - s.dropouts_planned),
        window=window,
        backups=drawn[1 : 1 + cfg.failover],
    )


def _distributed(
    s: JobPlan, r: int, contributions: dict[int, Field], alive: list[int], *, roots: _Roots
) -> tuple[Field | None, object | None, dict[str, Any]]:
    """Run the round through the protocol's machines in the simulator (spec 09, 12)."""
    cfg = s.cfg
    params = round_params(s, r)
    nodes = params.nodes
    updates = {i: contributions.get(i, s.encoding.field.zeros(s.d_pad)) for i in nodes}
    crashes = {i: 0 for i in nodes if i not in alive}
    scenario = Scenario(
        params=params,
        master=derive_seed(cfg.seed, Tag("learning.protocol", (r,))),
        crashes=crashes,
        updates=updates,
        seeds={i: protocol_seed(cfg, r, i, roots[i]) for i in nodes},
    )
    sent_bytes = 0

    def measure(message: Message) -> None:
        # The binary wire form's length (spec 09, encoding), without building it.
        nonlocal sent_bytes
        sent_bytes += wire_size(message, s.encoding.field)

    outcome = simulate(scenario, on_send=measure)
    counted = {"messages": outcome.messages, "bytes": sent_bytes}
    info: dict[str, Any] = {"reason": outcome.reason, **counted}
    if outcome.status != "released":
        return None, None, info
    receiver = next(
        st
        for st in outcome.states.values()
        if isinstance(st, ReceiverState) and st.phase is Phase.RELEASED
    )
    info["contributors"] = len(outcome.contributors)
    record = round_record(
        receiver,
        sampling_rate=s.accounting_rate,
        l2_sensitivity=s.l2,
        l1_sensitivity=s.l1,
        unit="record" if cfg.unit == "record" else "node",
    )
    (charge,) = realized_event([record]).events
    return outcome.released, charge, info
