"""The validated parameters of one round of the protocol.

Spec: spec/09-protocol.md#parameters

A :class:`RoundParams` fixes everything the nodes of one round must agree on
before it starts: who contributes, who aggregates, who coordinates, the
sharing (field, threshold, packing), the noise plan and the minimum size of
the contributor set. Every node of a round MUST hold equal parameters; the
state machines of :mod:`protocol.machine` read nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from protocol.errors import ParameterError
from protocol.field import Field, field_for_modulus
from protocol.noise_plan import NoisePlan, plan
from protocol.shamir import Shamir
from protocol.xof import SEED_SIZE, Seed, Tag, Xof, as_seed

_DECIMAL = re.compile(r"[1-9][0-9]*")
_RATIONAL = re.compile(r"[1-9][0-9]*(/[1-9][0-9]*)?")
#: The most digits a modulus the fields accept can have (2^61 - 1 has 19).
_MODULUS_DIGITS = 19

#: The protocol version that messages carry (spec/09-protocol.md#messages).
VERSION = 1

#: Timer lengths, in windows (spec/09-protocol.md#timers). A message is on
#: time if it arrives less than one window after it was sent.
#: An aggregator reports stage 0 after 1 window ...
REPORT_WINDOWS = 1
#: ... and a top-up stage 2 windows after its decision arrives (the decision
#: must reach the contributors, and their top-ups must come back).
TOP_UP_REPORT_WINDOWS = 2
#: The coordinator decides stage 0 after 2 windows ...
DECISION_WINDOWS = 2
#: ... and a top-up stage 4 windows after it decided the previous one.
TOP_UP_WINDOWS = 4
#: The aggregators' echoes of the final decision take one window more
#: (rounds with ``max_byzantine >= 1`` or backup coordinators only).
ECHO_WINDOWS = 1
#: An aggregator that has reported and holds no decision this many windows later
#: moves to the next view: it reports again, to the next backup coordinator
#: (rounds with backup coordinators only: spec/09-protocol.md#failover).
VIEW_WINDOWS = 6
#: What one view change can add to a round: the view timer, the report's way
#: to the backup, and the backup's decision timer and decision.
VIEW_CHANGE_WINDOWS = VIEW_WINDOWS + 1 + DECISION_WINDOWS + 1


def round_windows(max_dropouts: int, *, echo: bool = False, backups: int = 0) -> int:
    """``4·D + 5`` (``4·D + 6`` with the echo exchange, and ``VIEW_CHANGE_WINDOWS``
    more per backup coordinator): the windows after which a round that has not
    released never will.

    Spec: spec/09-protocol.md#timers

    The coordinator decides stage 0 within 2 windows, and each of at most
    ``D`` top-up stages adds 4; the final decision and the partial sums
    then take one window each to arrive, and one window is slack. A round
    that tolerates Byzantine nodes (``max_byzantine >= 1``) or has backup
    coordinators adds one window for the aggregators' echoes
    (spec/09-protocol.md#the-echo-exchange), and each view change at most
    ``VIEW_CHANGE_WINDOWS`` (spec/09-protocol.md#failover).
    """
    base = DECISION_WINDOWS + TOP_UP_WINDOWS * max_dropouts + 3
    return base + (ECHO_WINDOWS if echo else 0) + VIEW_CHANGE_WINDOWS * backups


#: Node ids are in [1, 2^32); rounds below 2^53 (a JSON number every reader
#: holds exactly); the largest D keeps every stage below 2^16 (spec/09-protocol.md#parameters).
MAX_NODE_ID = (1 << 32) - 1
MAX_ROUND = (1 << 53) - 1
MAX_DROPOUTS = (1 << 16) - 2


def _ids(values: object, name: str) -> tuple[int, ...]:
    if not isinstance(values, list | tuple):
        raise ParameterError(f"{name} must be a list of node ids; got {values!r}")
    ids = tuple(values)
    for v in ids:
        if type(v) is not int or not 1 <= v <= MAX_NODE_ID:
            raise ParameterError(f"{name} must be node ids (ints in [1, 2^32)); got {v!r}")
    if list(ids) != sorted(set(ids)):
        raise ParameterError(f"{name} must be strictly increasing; got {list(ids)}")
    if not ids:
        raise ParameterError(f"{name} must not be empty")
    return ids


def _int(value: object, name: str, *, minimum: int, maximum: int | None = None) -> int:
    if type(value) is not int or value < minimum or (maximum is not None and value > maximum):
        bound = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ParameterError(f"{name} must be an int {bound}; got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class RoundParams:
    """Everything the nodes of one round agree on before it starts.

    Spec: spec/09-protocol.md#parameters

    Pre-conditions (each failure a ``ParameterError`` naming the value):
        - ``session`` is 32 bytes; ``round >= 0``
        - ``nodes``, ``contributors`` and ``aggregators`` are strictly
          increasing node ids; contributors and aggregators are nodes, and
          ``coordinator`` is an aggregator
        - every aggregator's id, as a Shamir evaluation point, is valid for
          ``field`` (below the modulus, off the basis points)
        - ``len(aggregators) >= threshold + packing``: a quorum can exist
        - ``noise_sources`` (default: every contributor) are contributors, and
          ``noise.contributors == len(noise_sources)``; when they are not all
          the contributors, ``noise.precovered == noise.max_dropouts`` (no
          top-up stage: spec/09-protocol.md#noise-sources)
        - ``receivers`` (default: every node) are nodes
        - ``1 <= min_contributors <= len(contributors)``
        - ``dimension >= 1``; ``window >= 1``
        - ``0 <= max_byzantine <= min(threshold, noise.max_colluders)``; when
          ``max_byzantine = f >= 1``,
          the ``m`` aggregators number at least ``3f + 1`` and at least
          ``t + k + 2f``, so that the echo quorum and the receivers' rule can
          be met without the Byzantine nodes (spec/09-protocol.md#byzantine-nodes)
        - ``backups`` are distinct aggregators other than the coordinator, and
          only with ``max_byzantine = 0`` (spec/09-protocol.md#failover)
    """

    session: Seed
    round: int
    field: type[Field]
    nodes: tuple[int, ...]
    contributors: tuple[int, ...]
    aggregators: tuple[int, ...]
    coordinator: int
    threshold: int
    packing: int
    dimension: int
    noise: NoisePlan
    min_contributors: int
    window: int = 4
    #: The contributors that add noise (``None``: all of them).
    #: Spec: spec/09-protocol.md#noise-sources
    noise_sources: tuple[int, ...] | None = None
    #: The nodes that reconstruct the release (``None``: all of them).
    receivers: tuple[int, ...] | None = None
    #: ``f``: the Byzantine nodes, in any role, the round withstands.
    #: Spec: spec/09-protocol.md#byzantine-nodes
    max_byzantine: int = 0
    #: Aggregators that take over, in this order, when the coordinator crashes
    #: (``None``: none). Spec: spec/09-protocol.md#failover
    backups: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.session, bytes) or len(self.session) != SEED_SIZE:
            raise ParameterError(f"session must be {SEED_SIZE} bytes; got {self.session!r}")
        _int(self.round, "round", minimum=0, maximum=MAX_ROUND)
        if not (isinstance(self.field, type) and issubclass(self.field, Field)):
            raise ParameterError(f"field must be a Field subclass; got {self.field!r}")
        nodes = _ids(self.nodes, "nodes")
        contributors = _ids(self.contributors, "contributors")
        aggregators = _ids(self.aggregators, "aggregators")
        for name, ids in (("contributors", contributors), ("aggregators", aggregators)):
            stray = sorted(set(ids) - set(nodes))
            if stray:
                raise ParameterError(f"{name} must be nodes of the round; {stray} are not")
        if type(self.coordinator) is not int or self.coordinator not in aggregators:
            raise ParameterError(
                f"coordinator must be an aggregator; got {self.coordinator!r}, "
                f"aggregators {list(aggregators)}"
            )
        _int(self.dimension, "dimension", minimum=1)
        _int(self.window, "window", minimum=1)
        # Shamir validates threshold, packing and the field size; share points
        # are the aggregators' ids.
        sharing = self.sharing()
        if len(aggregators) < sharing.min_shares:
            raise ParameterError(
                f"aggregators must number at least threshold + packing = {sharing.min_shares} "
                f"so that a quorum can exist; got {len(aggregators)}"
            )
        sharing.check_points(list(aggregators))
        if not isinstance(self.noise, NoisePlan):
            raise ParameterError(f"noise must be a NoisePlan; got {self.noise!r}")
        if self.noise.max_dropouts > MAX_DROPOUTS:
            raise ParameterError(
                f"the noise plan's max_dropouts must be <= {MAX_DROPOUTS} (stages are below "
                f"2^16); got {self.noise.max_dropouts}"
            )
        sources = contributors if self.noise_sources is None else self.noise_sources
        sources = _ids(sources, "noise_sources")
        stray = sorted(set(sources) - set(contributors))
        if stray:
            raise ParameterError(f"noise_sources must be contributors; {stray} are not")
        object.__setattr__(self, "noise_sources", sources)
        receivers = _ids(nodes if self.receivers is None else self.receivers, "receivers")
        stray = sorted(set(receivers) - set(nodes))
        if stray:
            raise ParameterError(f"receivers must be nodes of the round; {stray} are not")
        object.__setattr__(self, "receivers", receivers)
        if self.noise.contributors != len(sources):
            raise ParameterError(
                f"the noise plan's contributors ({self.noise.contributors}) must equal the "
                f"number of noise sources ({len(sources)})"
            )
        if sources != contributors and self.noise.precovered != self.noise.max_dropouts:
            raise ParameterError(
                "when only some contributors add noise, the plan must pre-cover every dropout "
                f"(precovered = max_dropouts = {self.noise.max_dropouts}; got "
                f"{self.noise.precovered}): such a round has no top-up stage"
            )
        _int(self.min_contributors, "min_contributors", minimum=1)
        if self.min_contributors > len(contributors):
            raise ParameterError(
                f"min_contributors must be <= the {len(contributors)} expected contributors; "
                f"got {self.min_contributors}"
            )
        f = _int(self.max_byzantine, "max_byzantine", minimum=0, maximum=self.threshold)
        if f > self.noise.max_colluders:
            raise ParameterError(
                f"max_byzantine f = {f} must be <= the noise plan's T = "
                f"{self.noise.max_colluders}: a Byzantine contributor knows its own noise, so "
                "the plan must count it among the colluders"
            )
        backups = () if self.backups is None else self.backups
        if not isinstance(backups, tuple) or any(
            type(b) is not int or b not in aggregators or b == self.coordinator for b in backups
        ) or len(set(backups)) != len(backups):  # fmt: skip
            raise ParameterError(
                f"backups must be distinct aggregators other than the coordinator, in takeover "
                f"order; got {backups!r}"
            )
        if backups and f:
            raise ParameterError(
                "backup coordinators need max_byzantine = 0: a view change tolerates crashed "
                "coordinators, not equivocating ones"
            )
        object.__setattr__(self, "backups", backups)
        m = len(aggregators)
        if f and m < max(3 * f + 1, self.quorum + 2 * f):
            raise ParameterError(
                f"with max_byzantine f = {f} the aggregators must number at least "
                f"max(3f + 1, t + k + 2f) = {max(3 * f + 1, self.quorum + 2 * f)} (the echo "
                f"quorum and the receivers' t + k + f agreeing partial sums must be reachable "
                f"without the Byzantine nodes); got {m}"
            )

    # ------------------------------------------------------------------ derived

    @property
    def sources(self) -> tuple[int, ...]:
        """The noise sources (every contributor unless the parameters name fewer)."""
        assert self.noise_sources is not None  # set by __post_init__
        return self.noise_sources

    @property
    def receiving(self) -> tuple[int, ...]:
        """The receivers (every node unless the parameters name fewer)."""
        assert self.receivers is not None  # set by __post_init__
        return self.receivers

    def source_dropouts(self, members: Sequence[int]) -> int:
        """``|S − U|``: the noise sources missing from a contributor set ``U``."""
        return len(set(self.sources) - set(members))

    def sharing(self) -> Shamir:
        """The Shamir scheme of the round. Spec: spec/09-protocol.md#parameters"""
        return Shamir(self.field, threshold=self.threshold, packing=self.packing)

    @property
    def quorum(self) -> int:
        """``t + k``: the fewest partial sums that reconstruct the release."""
        return self.threshold + self.packing

    @property
    def echo_quorum(self) -> int:
        """``Q = ⌊(m + f)/2⌋ + 1``: the matching echoes an aggregator waits for.

        Spec: spec/09-protocol.md#the-echo-exchange

        Two sets of ``Q`` of the ``m`` aggregators share ``2Q − m >= f + 1``,
        so at least one honest aggregator, which echoes one decision only.
        """
        return (len(self.aggregators) + self.max_byzantine) // 2 + 1

    @property
    def coordinators(self) -> tuple[int, ...]:
        """The coordinator of each view: the coordinator, then the backups in order."""
        assert self.backups is not None  # set by __post_init__
        return (self.coordinator, *self.backups)

    @property
    def echoes(self) -> bool:
        """Whether aggregators echo the final decision before answering it
        (``max_byzantine >= 1`` or backup coordinators)."""
        return self.max_byzantine >= 1 or bool(self.backups)

    @property
    def round_windows(self) -> int:
        """The round timer, in windows (:func:`round_windows` for this round)."""
        assert self.backups is not None
        return round_windows(self.noise.max_dropouts, echo=self.echoes, backups=len(self.backups))

    @property
    def share_length(self) -> int:
        """Field elements in one share or partial sum: ``ceil(dimension / packing)``."""
        return -(-self.dimension // self.packing)

    @property
    def smallest_set(self) -> int:
        """``max(min_contributors, n − D)``: the smallest contributor set that may release.

        Spec: spec/09-protocol.md#the-contributor-set
        """
        n = len(self.contributors)
        return max(self.min_contributors, n - self.noise.max_dropouts)

    # ------------------------------------------------------------------ JSON

    def to_json(self) -> dict[str, Any]:
        """The canonical JSON object of the parameters (spec/09-protocol.md#parameters)."""
        noise = self.noise
        out: dict[str, Any] = {
            "session": self.session.hex(),
            "round": self.round,
            "modulus": str(self.field.MODULUS),
            "nodes": list(self.nodes),
            "contributors": list(self.contributors),
            "aggregators": list(self.aggregators),
            "coordinator": self.coordinator,
            "threshold": self.threshold,
            "packing": self.packing,
            "dimension": self.dimension,
            "min_contributors": self.min_contributors,
            "window": self.window,
            "noise": {
                "mechanism": noise.mechanism,
                "target_variance": str(noise.target_variance),
                "max_dropouts": noise.max_dropouts,
                "max_colluders": noise.max_colluders,
            }
            | ({"precovered": noise.precovered} if noise.precovered else {}),
        }
        # Optional keys: written only when they differ from their defaults.
        if self.sources != self.contributors:
            out["noise_sources"] = list(self.sources)
        if self.receiving != self.nodes:
            out["receivers"] = list(self.receiving)
        if self.max_byzantine:
            out["max_byzantine"] = self.max_byzantine
        if self.backups:
            out["backups"] = list(self.backups)
        return out

    @classmethod
    def from_json(cls, obj: object) -> RoundParams:
        """Parse :meth:`to_json`'s form. Raises ``ParameterError`` naming the bad key."""
        if not isinstance(obj, dict):
            raise ParameterError(f"round parameters must be a JSON object; got {obj!r}")
        expected = {
            "session",
            "round",
            "modulus",
            "nodes",
            "contributors",
            "aggregators",
            "coordinator",
            "threshold",
            "packing",
            "dimension",
            "min_contributors",
            "window",
            "noise",
        }
        optional = {"noise_sources", "receivers", "max_byzantine", "backups"}
        if not expected <= set(obj) <= expected | optional:
            raise ParameterError(
                f"round parameters must have the keys {sorted(expected)} (and may have "
                f"{sorted(optional)}); missing {sorted(expected - set(obj))}, unexpected "
                f"{sorted(set(obj) - expected - optional)}"
            )
        noise = obj["noise"]
        required = {"mechanism", "target_variance", "max_dropouts", "max_colluders"}
        if not isinstance(noise, dict) or not required <= set(noise) <= required | {"precovered"}:
            raise ParameterError(
                f"noise must be an object with mechanism, target_variance, "
                f"max_dropouts, max_colluders (and optionally precovered); got {noise!r}"
            )
        modulus = obj["modulus"]
        if not isinstance(modulus, str) or not _DECIMAL.fullmatch(modulus):
            raise ParameterError(f"modulus must be a canonical decimal string; got {modulus!r}")
        if len(modulus) > _MODULUS_DIGITS:
            # Refused before int(): past 4300 digits it raises ValueError, and
            # a long one would only fail the field's primality bound anyway.
            raise ParameterError(
                f"modulus must be a prime below 2^32 or 2^61 - 1 (spec/02-field.md"
                f"#parameter-sets), at most {_MODULUS_DIGITS} digits; got {len(modulus)} digits"
            )
        field = field_for_modulus(int(modulus))
        session = obj["session"]
        try:
            session_bytes = bytes.fromhex(session) if isinstance(session, str) else None
        except ValueError:
            session_bytes = None
        if session_bytes is None or session != session_bytes.hex():
            raise ParameterError(f"session must be lower-case hex; got {session!r}")
        text = noise["target_variance"]
        try:
            if not isinstance(text, str) or not _RATIONAL.fullmatch(text):
                raise ValueError(text)
            target = Fraction(text)
        except (ValueError, ZeroDivisionError) as exc:
            raise ParameterError(
                f"noise.target_variance must be a rational string 'a' or 'a/b'; got {text!r}"
            ) from exc
        contributors = _ids(obj["contributors"], "contributors")
        sources = _ids(obj.get("noise_sources", contributors), "noise_sources")
        receivers = obj.get("receivers")
        return cls(
            session=as_seed(session_bytes),
            round=obj["round"],
            field=field,
            nodes=_ids(obj["nodes"], "nodes"),
            contributors=contributors,
            aggregators=_ids(obj["aggregators"], "aggregators"),
            coordinator=obj["coordinator"],
            threshold=obj["threshold"],
            packing=obj["packing"],
            dimension=obj["dimension"],
            min_contributors=obj["min_contributors"],
            window=obj["window"],
            noise=plan(
                mechanism=noise["mechanism"],
                target_variance=target,
                contributors=len(sources),
                max_dropouts=noise["max_dropouts"],
                max_colluders=noise["max_colluders"],
                precovered=noise.get("precovered", 0),
            ),
            noise_sources=sources,
            receivers=None if receivers is None else _ids(receivers, "receivers"),
            max_byzantine=obj.get("max_byzantine", 0),
            backups=_backups_from(obj.get("backups", [])),
        )


def _backups_from(v: object) -> tuple[int, ...]:
    """The backups as written: a list of node ids in takeover order (not sorted)."""
    if not isinstance(v, list) or any(type(b) is not int or b < 1 for b in v):
        raise ParameterError(f"backups must be a list of node ids; got {v!r}")
    return tuple(v)


def select_committee(
    *, session: Seed, round: int, nodes: Sequence[int], size: int
) -> tuple[int, ...]:
    """``size`` aggregators drawn from ``nodes`` by public randomness; the first coordinates.

    Spec: spec/09-protocol.md#committee

    A partial Fisher–Yates shuffle of ``nodes`` driven by
    ``Xof(session, Tag("protocol.committee", (round,)))``: for ``i`` in
    ``0..size-1``, swap position ``i`` with ``i + uniform_int(len − i)``.
    The first ``size`` positions are the committee, in draw order; the first
    drawn is the coordinator. Returns them in that order.

    Raises:
        ParameterError: ``size`` is not in ``[1, len(nodes)]`` or ``nodes`` are not ids.
    """
    pool = list(_ids(nodes, "nodes"))
    _int(size, "size", minimum=1)
    if size > len(pool):
        raise ParameterError(f"committee size must be <= {len(pool)} nodes; got {size}")
    xof = Xof(session, Tag("protocol.committee", (_int(round, "round", minimum=0),)))
    for i in range(size):
        j = i + xof.uniform_int(len(pool) - i)
        pool[i], pool[j] = pool[j], pool[i]
    return tuple(pool[:size])
