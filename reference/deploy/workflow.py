"""SDL for an existing Flower app: ``SdlWorkflow`` and ``sdl_mod`` where SecAgg+ was.

Spec: spec/15-deployment.md#flower-workflow

A Flower app that aggregates with SecAgg+ swaps two lines::

    workflow = DefaultWorkflow(fit_workflow=SdlWorkflow(roster="roster.json", threshold=1))
    app = ClientApp(client_fn=client_fn, mods=[sdl_mod])

``SdlWorkflow`` is a fit workflow for Flower's ``DefaultWorkflow`` (the legacy strategy
API, as ``SecAggPlusWorkflow``): each server round it asks the strategy which clients
fit (``configure_fit``), runs one SDL round among them through
:class:`~reference.deploy.relay.Relay` (the relay holds no secret), and hands the
strategy one aggregate (``aggregate_fit``): the mean of the released sum over the
contributor set. ``sdl_mod`` is the client side: it answers SDL's requests with the
node of :mod:`reference.deploy.node`, and on a round's start calls the client's own
``fit`` (the rest of the mod chain) for the update it contributes.

Each client's update (its fit parameters, flattened) is clipped to L2 norm ``clip``,
encoded into the field (spec/05-encoding.md) with its own rounding, noised with its
share of Skellam noise (spec/07-noise-plan.md) of total standard deviation
``noise_multiplier · clip``, and Shamir-shared among the committee; only the noisy sum
is revealed. The SuperNodes need the node directory and roster in their node config
(``node-dir``, ``roster``), as for ``sdl deploy`` (spec/15-deployment.md#the-flower-app).
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from flwr.app import ConfigRecord, Context, Message, RecordDict
from flwr.app.message_type import MessageType

from protocol.encoding import EncodingParams, choose_field, decode_sum, encode
from protocol.errors import ParameterError
from protocol.field import FIELDS, Field
from protocol.noise_plan import plan
from protocol.params import RoundParams, select_committee
from protocol.xof import SEED_SIZE, Seed, Tag, as_seed, derive_seed
from reference.deploy.keys import load_roster, roster_digest
from reference.deploy.node import Node, Request
from reference.deploy.relay import Relay
from reference.deploy.server import FlowerLink
from reference.deploy.task import KINDS
from reference.deploy.wire import reply_to_records, request_from_records, request_to_records

F64 = npt.NDArray[np.float64]

#: Integer steps per unit of ``clip`` (as the learning job, spec/13-learning.md).
STEPS = 256
#: One rounding attempt exceeds the inflated bound with probability β (spec 05).
BETA = math.exp(-0.5)

#: The client's fit, as ``sdl_mod`` hands it to the task during a round's start.
FIT: ContextVar[Callable[[], F64] | None] = ContextVar("FIT", default=None)


@dataclass
class FitTask:
    """A strategy's fit rounds, as SDL rounds. Spec: spec/15-deployment.md#flower-workflow"""

    session_id: Seed
    nodes: tuple[int, ...]
    dimension: int
    threshold: int
    clip: float
    variance: int
    field_name: str
    max_dropouts: int
    _encoding: EncodingParams | None = field(default=None, repr=False)

    @property
    def session(self) -> Seed:
        return self.session_id

    @property
    def deterministic(self) -> bool:
        return False

    @property
    def rounds(self) -> int:
        return 1 << 31

    @property
    def encoding(self) -> EncodingParams:
        if self._encoding is None:
            self._encoding = EncodingParams(
                FIELDS[self.field_name], clip=self.clip, scale=self.clip / STEPS, beta=BETA,
                rotate=False,
            )  # fmt: skip
        return self._encoding

    def round_params(self, r: int, *, window: int) -> RoundParams:
        n = len(self.nodes)
        committee = select_committee(session=self.session_id, round=r, nodes=self.nodes, size=n)
        packing = max(1, min(4, n - self.max_dropouts - self.threshold))
        noise = plan(
            mechanism="skellam", target_variance=Fraction(self.variance), contributors=n,
            max_dropouts=self.max_dropouts, max_colluders=0, precovered=self.max_dropouts,
        )  # fmt: skip
        return RoundParams(
            session=self.session_id, round=r, field=self.encoding.field, nodes=self.nodes,
            contributors=self.nodes, aggregators=tuple(sorted(committee)),
            coordinator=committee[0], threshold=self.threshold, packing=packing,
            dimension=self.encoding.padded_length(self.dimension), noise=noise,
            min_contributors=max(2, n - self.max_dropouts), window=window,
        )  # fmt: skip

    def contribution(
        self, node: int, r: int, model: F64 | None, root: Seed | None
    ) -> tuple[Field, Seed, int]:
        fit = FIT.get()
        if fit is None or root is None:
            raise ParameterError("a fit round's start needs the client's fit and the node's root")
        update = np.asarray(fit(), dtype=np.float64).ravel()
        if update.size != self.dimension:
            raise ParameterError(
                f"the client's fit returned {update.size} parameters; the round has "
                f"{self.dimension}"
            )
        norm = float(np.linalg.norm(update))
        if norm > self.clip:
            update = update * (self.clip / norm)
        rotation = derive_seed(self.session_id, Tag("deploy.fit.rotation", (r,)))
        rounding = derive_seed(root, Tag("deploy.fit.rounding", (r,)))
        encoded = encode(
            update, params=self.encoding, rotation_seed=rotation, rounding_seed=rounding
        )
        return encoded.values, derive_seed(root, Tag("deploy.fit.protocol", (r,))), 0

    def decode(self, r: int, total: Field) -> F64:
        rotation = derive_seed(self.session_id, Tag("deploy.fit.rotation", (r,)))
        return decode_sum(
            total, params=self.encoding, rotation_seed=rotation, length=self.dimension
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "fit", "session": self.session_id.hex(), "nodes": list(self.nodes),
            "dimension": self.dimension, "threshold": self.threshold, "clip": self.clip,
            "variance": self.variance, "field": self.field_name,
            "max_dropouts": self.max_dropouts,
        }  # fmt: skip

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> FitTask:
        try:
            return cls(
                as_seed(bytes.fromhex(str(obj["session"]))), tuple(int(n) for n in obj["nodes"]),
                int(obj["dimension"]), int(obj["threshold"]), float(obj["clip"]),
                int(obj["variance"]), str(obj["field"]), int(obj["max_dropouts"]),
            )  # fmt: skip
        except (KeyError, TypeError, ValueError) as exc:
            raise ParameterError(f"not a fit task: {exc}") from None


KINDS["fit"] = FitTask.from_json


# ---------------------------------------------------------------------- client side


def sdl_mod(
    msg: Message, ctxt: Context, call_next: Callable[[Message, Context], Message]
) -> Message:
    """The client mod: SDL's requests go to this node; everything else to the app."""
    from reference.deploy.client import STATE, setup_of  # noqa: PLC0415

    if "sdl" not in msg.content.config_records:
        return call_next(msg, ctxt)
    request = request_from_records(msg.content)

    def fit() -> F64:
        from flwr.common import parameters_to_ndarrays  # noqa: PLC0415
        from flwr.compat.common import recorddict_compat as compat  # noqa: PLC0415

        out = call_next(msg, ctxt)
        res = compat.recorddict_to_fitres(out.content, keep_input=True)
        arrays = parameters_to_ndarrays(res.parameters)
        return np.concatenate([np.asarray(a, dtype=np.float64).ravel() for a in arrays])

    saved = None
    if STATE in ctxt.state.config_records:
        value = ctxt.state.config_records[STATE]["state"]
        saved = value if isinstance(value, bytes) else None
    node = Node(setup_of(ctxt), saved)
    token = FIT.set(fit if request.start else None)
    try:
        reply = node.handle(request)
    finally:
        FIT.reset(token)
    state = node.saved()
    if state is not None:
        ctxt.state[STATE] = ConfigRecord({"state": state})
    return Message(reply_to_records(reply), reply_to=msg)


# ---------------------------------------------------------------------- server side


class _FitLink(FlowerLink):
    """Flower's link, in ``train`` messages, adding each client's FitIns to its round's start."""

    def __init__(self, grid: Any, group: str) -> None:
        super().__init__(grid)
        self.group = group
        self.fitins: dict[int, RecordDict] = {}

    def nodes(self) -> list[int]:
        return sorted(self.fitins)

    def message(self, engine: int, request: Request) -> Message:
        content = request_to_records(request)
        if request.start:
            for name, record in self.fitins[engine].items():
                content[name] = record
        return Message(
            content, dst_node_id=engine, message_type=MessageType.TRAIN, group_id=self.group
        )


@dataclass
class SdlWorkflow:
    """The fit workflow of ``DefaultWorkflow``: SDL in place of SecAgg+.

    ``roster``: the roster every SuperNode holds (node ids 1..n); ``threshold``: any
    ``threshold`` aggregators learn nothing; ``clip``: the L2 bound of each client's
    update; ``noise_multiplier``: the total noise's standard deviation over ``clip``
    (0 adds the least noise the plan allows); ``max_dropouts``: clients that may crash
    mid-round; ``tick_timeout``: seconds a client has to answer one step.
    """

    roster: str | Path
    threshold: int = 1
    clip: float = 1.0
    noise_multiplier: float = 0.0
    max_dropouts: int = 0
    tick_timeout: float = 60.0
    suite: str = "x25519-aes128gcm"
    _relay: Relay | None = field(default=None, repr=False)
    _link: _FitLink | None = field(default=None, repr=False)
    #: What each round did, as the relay saw it (public).
    rounds: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, grid: Any, context: Any) -> None:
        from flwr.common import (  # noqa: PLC0415
            Code,
            FitRes,
            Status,
            ndarrays_to_parameters,
            parameters_to_ndarrays,
        )
        from flwr.compat.common import recorddict_compat as compat  # noqa: PLC0415
        from flwr.server.workflow.constant import (  # noqa: PLC0415
            MAIN_CONFIGS_RECORD,
            MAIN_PARAMS_RECORD,
        )
        from flwr.server.workflow.constant import Key as WorkflowKey  # noqa: PLC0415

        cfg = context.state.config_records[MAIN_CONFIGS_RECORD]
        current = int(cfg[WorkflowKey.CURRENT_ROUND])
        parameters = compat.arrayrecord_to_parameters(
            context.state.array_records[MAIN_PARAMS_RECORD], keep_input=True
        )
        arrays = parameters_to_ndarrays(parameters)
        shapes = [a.shape for a in arrays]
        dimension = int(sum(a.size for a in arrays))
        chosen = context.strategy.configure_fit(current, parameters, context.client_manager)
        if not chosen:
            return
        if self._relay is None:
            self._start(grid, dimension, len(load_roster(Path(self.roster)).keys), str(current))
        assert self._relay is not None and self._link is not None
        link, relay = self._link, self._relay
        link.group = str(current)
        link.fitins = {
            proxy.node_id: compat.fitins_to_recorddict(ins, True) for proxy, ins in chosen
        }
        if not relay.members:
            relay.setup()
        task = relay.task
        assert isinstance(task, FitTask)
        run = relay.round(current - 1, None)
        self.rounds.append({"round": current, "released": run.released is not None,
                            "reason": run.reason, "exchanges": run.exchanges})  # fmt: skip
        if run.released is None or run.receiver is None or run.receiver.covers is None:
            return
        members = run.receiver.covers[1]
        mean = task.decode(current - 1, run.released) / len(members)
        pieces, at = [], 0
        for shape in shapes:
            size = int(np.prod(shape))
            pieces.append(mean[at : at + size].reshape(shape))
            at += size
        aggregate = ndarrays_to_parameters(pieces)
        engines = {sdl: engine for sdl, engine in relay.members.items()}
        proxies = {proxy.node_id: proxy for proxy, _ in chosen}
        results = [
            (proxies[engines[n]], FitRes(Status(Code.OK, ""), aggregate, 1, {}))
            for n in members if engines.get(n) in proxies
        ]  # fmt: skip
        params, metrics = context.strategy.aggregate_fit(current, results, [])
        if params is not None:
            context.state.array_records[MAIN_PARAMS_RECORD] = compat.parameters_to_arrayrecord(
                params, True
            )
            context.history.add_metrics_distributed_fit(server_round=current, metrics=metrics)

    def _start(self, grid: Any, dimension: int, nodes: int, group: str) -> None:
        roster = load_roster(Path(self.roster))
        if sorted(roster.keys) != list(range(1, nodes + 1)):
            raise ParameterError("the roster's nodes must be 1..n with no gap")
        scale = self.clip / STEPS
        sigma = self.noise_multiplier * self.clip / scale
        variance = max(1, math.ceil(sigma * sigma))
        field_type = choose_field(
            clip=self.clip, scale=scale, beta=BETA, rotate=False, contributors=nodes,
            length=dimension, noise_variance=Fraction(variance * nodes * nodes),
            wrap_probability=1e-9, mechanism="skellam",
        )  # fmt: skip
        task = FitTask(
            as_seed(secrets.token_bytes(SEED_SIZE)), tuple(sorted(roster.keys)), dimension,
            self.threshold, self.clip, variance, field_type.__name__, self.max_dropouts,
        )  # fmt: skip
        self._link = _FitLink(grid, group)
        self._relay = Relay(
            self._link, task, roster, roster_digest(roster), suite=self.suite,
            tick_timeout=self.tick_timeout, connect_timeout=self.tick_timeout,
            progress=lambda _: None,
        )  # fmt: skip


__all__ = ["FitTask", "SdlWorkflow", "sdl_mod"]
