"""Flower's own SecAgg+ for one round, in one process: the baseline of ``sdl bench round``.

Spec: spec/09-protocol.md#the-round (the round SDL runs; this module times Flower's instead)

``sdl bench round --compare-flower`` sets SDL's round beside the secure
aggregation most federated-learning users would otherwise reach for: Flower's
SecAgg+ (Bell et al., "Secure Single-Server Aggregation with (Poly)Logarithmic
Overhead", CCS 2020), driven through Flower's own public pieces and nothing
re-implemented here:

- server: a ``ServerApp`` whose main runs ``DefaultWorkflow(fit_workflow=
  SecAggPlusWorkflow(...))`` over a ``LegacyContext`` with ``FedAvg``, the
  set-up of Flower's secure-aggregation example;
- clients: one ``ClientApp(client_fn, mods=[secaggplus_mod])`` whose
  ``NumPyClient.fit`` returns the client's vector as its parameters;
- transport: ``InProcessGrid`` (in ``_in_process_grid``), a subclass of
  Flower's abstract ``Grid`` that hands a copy of each message (``copy.deepcopy``, as the wire
  would: the workflow sends one content object to every client, and the mod
  edits what it receives) straight to ``ClientApp.__call__(message,
  context)`` for its destination, one ``Context`` per node kept across the
  four SecAgg+ stages, and hands the reply back. Nothing is serialised on the
  way, and no time is spent waiting: a reply that will never come is known at
  once, where a deployment would wait out the workflow's ``timeout`` (with
  the default ``timeout=None``, a deployment waits for a dropped client
  forever). A client's exception propagates, where a SuperNode would turn it
  into an error reply.

The round is aggregation only: the strategy's initial model is empty, so no
model is broadcast to the clients.

Dropouts. The last ``dropouts`` clients take part in the setup and share-keys
stages (their public keys and encrypted key shares reach their neighbours),
then fall silent: from the collect-masked-vectors stage on, the Grid still
delivers their messages, and the client still masks its vector, but the reply
is lost, as when a client crashes just before sending. SecAgg+ then marks
them dead and, in the unmask stage, asks each live neighbour for its share of
the dead client's first secret key ``sk1`` (instead of the share of its mask
seed). The server rebuilds ``sk1`` from ``reconstruction_threshold`` shares,
agrees a key with each of the dead client's ``num_shares - 1`` neighbours
(dead neighbours included, whose masks cancel out), and expands and removes
each pairwise mask: ``num_shares - 1`` mask expansions of length ``d + 1``
per dropout, on top of one private-mask expansion per surviving client. The
dead clients' vectors are simply left out of the aggregate. Flower survives
dropouts from this stage on only: a client silent from the setup or the
share-keys stage on is still listed as dead in the unmask stage, and every
neighbour, holding no share of its key, fails with a ``KeyError``.

What Flower returns is the weighted mean of the survivors' vectors, each
client weighing ``num_examples / max_weight`` (here ``1 / 1``, so that no
precision is lost to the weight), quantised stochastically to
``QUANTIZATION_RANGE`` levels over ``[-CLIPPING_RANGE, CLIPPING_RANGE]``. So
the survivors' plaintext sum is recovered as that mean times their number;
see :attr:`FlowerRound.correct` for the tolerance.

Determinism. Our own inputs are fixed: the run and node ids, the contexts, the
run config, the synthetic vectors (from the XOF, ``Tag("bench.flower.vector", (i,))``),
and which clients drop out. Flower's own randomness is not ours to
seed without touching global state, and so it is not seeded: key pairs and
mask seeds (``cryptography``, ``os.urandom``), the neighbour graph and the
client sampling (Python's global ``random``), and the stochastic rounding
(numpy's global ``np.random``). Only the timings and the rounding noise vary
from run to run, within the tolerance.

Flower's private modules. Everything above is Flower's public API
(``flwr.app``, ``flwr.client``, ``flwr.clientapp``, ``flwr.server``,
``flwr.serverapp``) except four names, reachable only through modules that
are in no ``__all__``:

- ``flwr.supercore.run.Run``: the type of ``Grid.run``, which the abstract
  ``Grid`` requires and ``DefaultWorkflow``'s node-registration thread reads;
- ``flwr.supercore.task_identity.TaskIdentity``: the process-wide identity
  that ``Message(...)`` reads to stamp every instruction. Flower's own
  in-process drivers (``run_simulation``, ``start_grid``) set it exactly as
  here (task 1, our run id, the SuperLink's node id), and so do we; it stays
  set after the round;
- ``flwr.common.constant.SUPERLINK_NODE_ID``: the server's node id;
- ``flwr.common.secure_aggregation.secaggplus_constants``: the record key and
  stage names, with which the Grid recognises the stage a message belongs to.

Timing: wall (``time.perf_counter``) and CPU (``time.process_time``, every
thread of the process) over the whole round, from the ``ServerApp`` call to
its return; for each client, the sum over all stages of the time spent inside
its ``ClientApp`` call (the mod included; a dropped client's lost masking
work counts too); the server's time is the wall time less the sum of the
clients' times: the workflow, ``FedAvg`` and the Grid's copies of the (small)
instructions. In a deployment the clients run in parallel, so a round's
critical path is about the server's time plus the slowest client's.
"""

from __future__ import annotations

import copy
import logging
import statistics
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from protocol.errors import ParameterError, SdlError, ThresholdNotMet
from protocol.xof import SEED_SIZE, Tag, Xof, as_seed

#: The Flower release this driver is written against (pyproject's ``bench`` extra).
FLOWER_VERSION = "1.42.0"

INSTALL_HINT = "python -m pip install -e '.[bench]'"

#: ``SecAggPlusWorkflow``'s quantisation, passed explicitly (these are also its defaults).
CLIPPING_RANGE = 8.0
QUANTIZATION_RANGE = 2**22
MODULUS_RANGE = 2**32

#: Every client reports ``num_examples = MAX_WEIGHT``: weight ratio 1, the finest quantisation.
MAX_WEIGHT = 1

#: The ids of the run and of the first client; client ``i`` is node ``FIRST_NODE_ID + i``.
RUN_ID = 1
FIRST_NODE_ID = 1000

#: A quantisation step, in the vectors' units.
QUANTIZATION_STEP = 2 * CLIPPING_RANGE / QUANTIZATION_RANGE

#: The aggregate's tolerance, in quantisation steps per surviving client (see ``correct``).
STEPS_PER_CLIENT = 2

Vector = npt.NDArray[np.floating[Any]]


class FlowerUnavailable(SdlError):
    """Flower (``flwr``), or the part of it this driver uses, cannot be imported."""


@dataclass(frozen=True)
class FlowerRound:
    """One round of Flower's SecAgg+, run in one process, and what it cost.

    ``correct`` holds when the aggregate Flower returned, times the number of
    survivors, equals the plaintext sum of the survivors' vectors to within
    ``STEPS_PER_CLIENT`` quantisation steps (``2 * CLIPPING_RANGE /
    QUANTIZATION_RANGE``, about 3.8e-6) per survivor, in every coordinate.
    Each client rounds ``(x + CLIPPING_RANGE) * QUANTIZATION_RANGE / (2 *
    CLIPPING_RANGE)`` stochastically to an integer, which moves it by less than
    one step; for float32 input that pre-rounded value is itself off by at most
    a quarter step (half an ulp of ``x + 8``, then scaled by a power of two).
    Everything after, the masking, is exact modulo 2^32, and dequantisation is
    float64. So the error is below 1.25 steps per survivor; two is a bound
    with room, and still far below any real disagreement (a lost or doubled
    client moves the sum by a whole vector).
    """

    nodes: int
    dimension: int
    dropouts: int
    num_shares: int
    threshold: int
    flwr_version: str
    wall_seconds: float
    cpu_seconds: float
    client_median_seconds: float
    server_seconds: float
    correct: bool

    def as_json(self) -> dict[str, object]:
        return asdict(self)


def flower_version() -> str | None:
    """Flower's version, or None when ``flwr`` cannot be imported."""
    try:
        import flwr  # noqa: PLC0415  (an optional extra)
    except ImportError:
        return None
    return str(flwr.__version__)


def run_flower_round(
    *,
    nodes: int,
    dimension: int,
    dropouts: int,
    num_shares: int,
    threshold: int,
    seed: int,
    vectors: Callable[[int], Vector] | None = None,
) -> FlowerRound:
    """Run one round of Flower's SecAgg+ in this process and time it.

    Spec: spec/09-protocol.md#the-round

    ``vectors(i)`` is client ``i``'s vector; by default, float32 uniform on
    a grid of [-1, 1), drawn from the XOF (:func:`_default_vector`). The
    last ``dropouts`` clients drop out after the share-keys stage.

    Pre-conditions:

    - ``3 <= num_shares <= nodes``, and ``num_shares`` odd unless it equals
      ``nodes`` (for an even one, Flower's workflow widens the neighbourhoods
      to ``num_shares + 1`` but tells the clients ``num_shares``, and each
      client then fails to share its keys);
    - ``2 <= threshold < num_shares`` (Flower reads a threshold of 1 as the
      fraction 1.0 of the shares);
    - ``0 <= dropouts < nodes`` and fewer than
      ``MODULUS_RANGE / QUANTIZATION_RANGE = 1024`` survivors (their
      quantised sum must not wrap modulo 2^32);
    - ``dimension >= 1``, ``seed >= 0``;
    - each ``vectors(i)`` a one-dimensional float32 or float64 array of
      length ``dimension`` with every entry in ``[-CLIPPING_RANGE,
      CLIPPING_RANGE]`` (Flower clips to it).

    Raises:
        ParameterError: a pre-condition fails.
        FlowerUnavailable: ``flwr`` (or a module this driver uses) cannot be imported.
        ThresholdNotMet: Flower's workflow halted without an aggregate, because
            some client kept fewer than ``threshold`` live neighbours (possible
            only when ``dropouts > num_shares - threshold``).
    """
    _check(nodes=nodes, dimension=dimension, dropouts=dropouts, num_shares=num_shares)
    if not 2 <= threshold < num_shares:
        raise ParameterError(f"threshold must be in [2, num_shares={num_shares}); got {threshold}")
    if not 0 <= seed < 1 << 256:
        raise ParameterError(f"seed must be in [0, 2^256); got {seed}")
    flwr_version = _import_flower()

    inputs = _inputs(nodes=nodes, dimension=dimension, seed=seed, vectors=vectors)
    survivors = nodes - dropouts
    node_ids = [FIRST_NODE_ID + index for index in range(nodes)]
    client_seconds = dict.fromkeys(node_ids, 0.0)
    aggregate, wall, cpu = _run(
        by_node=dict(zip(node_ids, inputs, strict=True)),
        dropped=frozenset(node_ids[survivors:]),
        num_shares=num_shares,
        threshold=threshold,
        client_seconds=client_seconds,
    )
    if aggregate is None:
        raise ThresholdNotMet(
            f"Flower's SecAgg+ halted without an aggregate: some client kept fewer than "
            f"threshold={threshold} live neighbours out of num_shares={num_shares} after "
            f"{dropouts} dropouts (always enough when dropouts <= num_shares - threshold)"
        )
    return FlowerRound(
        nodes=nodes,
        dimension=dimension,
        dropouts=dropouts,
        num_shares=num_shares,
        threshold=threshold,
        flwr_version=flwr_version,
        wall_seconds=wall,
        cpu_seconds=cpu,
        client_median_seconds=statistics.median(client_seconds.values()),
        server_seconds=wall - sum(client_seconds.values()),
        correct=_correct(aggregate, inputs[:survivors], dimension),
    )


def _inputs(
    *, nodes: int, dimension: int, seed: int, vectors: Callable[[int], Vector] | None
) -> list[Vector]:
    """Every client's vector: ``vectors(i)`` checked, or by default :func:`_default_vector`."""
    if vectors is None:
        return [_default_vector(seed, index, dimension) for index in range(nodes)]
    return [_client_vector(vectors, index, dimension) for index in range(nodes)]


def _correct(
    aggregate: npt.NDArray[np.float64], survivors: Sequence[Vector], dimension: int
) -> bool:
    """Whether Flower's mean times the survivors' number is their plaintext sum, within
    ``STEPS_PER_CLIENT`` quantisation steps per survivor (see :attr:`FlowerRound.correct`)."""
    plain_sum = np.sum(survivors, axis=0, dtype=np.float64)
    tolerance = STEPS_PER_CLIENT * QUANTIZATION_STEP * len(survivors)
    return aggregate.shape == (dimension,) and bool(
        np.all(np.abs(aggregate * len(survivors) - plain_sum) <= tolerance)
    )


def _check(*, nodes: int, dimension: int, dropouts: int, num_shares: int) -> None:
    """Reject what Flower's workflow would refuse, halt on or get wrong (``run_flower_round``)."""
    if dimension < 1:
        raise ParameterError(f"dimension must be >= 1; got {dimension}")
    if not 3 <= num_shares <= nodes:
        raise ParameterError(f"num_shares must be in [3, nodes={nodes}]; got {num_shares}")
    if num_shares % 2 == 0 and num_shares != nodes:
        raise ParameterError(
            f"num_shares must be odd unless it equals nodes={nodes} (Flower's SecAgg+ widens "
            f"an even one by 1 without telling the clients, which then fail); got {num_shares}"
        )
    if not 0 <= dropouts < nodes:
        raise ParameterError(f"dropouts must be in [0, nodes={nodes}); got {dropouts}")
    most = MODULUS_RANGE // QUANTIZATION_RANGE - 1
    if nodes - dropouts > most:
        raise ParameterError(
            f"nodes - dropouts must be at most {most}: more survivors' quantised values "
            f"({QUANTIZATION_RANGE} levels each) wrap modulo {MODULUS_RANGE}; "
            f"got {nodes} - {dropouts} = {nodes - dropouts}"
        )


def _default_vector(seed: int, index: int, dimension: int) -> Vector:
    """Client ``index``'s synthetic vector: float32 on the grid ``u/2^23 − 1``, ``u`` uniform
    in ``[0, 2^24)`` from ``Xof(seed, Tag("bench.flower.vector", (index,)))`` (the bench's
    own stream, spec/03-xof.md#tags; ``seed`` as 32 big-endian bytes)."""
    xof = Xof(as_seed(seed.to_bytes(SEED_SIZE, "big")), Tag("bench.flower.vector", (index,)))
    u = xof.uniform_ints(1 << 24, count=dimension)
    return (u.astype(np.float64) / (1 << 23) - 1.0).astype(np.float32)


def _client_vector(vectors: Callable[[int], Vector], index: int, dimension: int) -> Vector:
    """``vectors(index)``, checked against ``run_flower_round``'s pre-conditions."""
    vector = np.asarray(vectors(index))
    if vector.shape != (dimension,) or vector.dtype not in (np.float32, np.float64):
        raise ParameterError(
            f"vectors({index}) must be a float32 or float64 array of shape ({dimension},); "
            f"got {vector.dtype} of shape {vector.shape}"
        )
    outside = vector[~(np.abs(vector) <= CLIPPING_RANGE)]
    if outside.size:
        raise ParameterError(
            f"vectors({index}) must lie in [-{CLIPPING_RANGE}, {CLIPPING_RANGE}], the range "
            f"Flower clips to; got {outside[0]}"
        )
    return vector


def _import_flower() -> str:
    """Flower's version, after checking that ``flwr`` imports.

    Raises:
        FlowerUnavailable: it does not.
    """
    try:
        import flwr  # noqa: PLC0415  (an optional extra)
    except ImportError as exc:
        raise FlowerUnavailable(
            f"Flower is an optional extra, install with: {INSTALL_HINT} ({exc})"
        ) from exc
    return str(flwr.__version__)


def _run(
    *,
    by_node: Mapping[int, Vector],
    dropped: frozenset[int],
    num_shares: int,
    threshold: int,
    client_seconds: dict[int, float],
) -> tuple[npt.NDArray[np.float64] | None, float, float]:
    """Flower's aggregate (None if its workflow halted), wall and CPU seconds of one round.

    Adds each client's time inside its ``ClientApp`` calls to ``client_seconds[node]``.

    Raises:
        FlowerUnavailable: a module of Flower this driver uses cannot be imported.
    """
    _import_flower_modules()
    from flwr.app import Context, RecordDict  # noqa: PLC0415

    contexts = {
        node: Context(
            run_id=RUN_ID, node_id=node, node_config={}, state=RecordDict(), run_config={}
        )
        for node in by_node
    }
    make_grid = _in_process_grid(
        client_app=_client_app(by_node),
        contexts=contexts,
        dropped=dropped,
        client_seconds=client_seconds,
    )
    aggregate: list[npt.NDArray[Any]] = []
    server_app = _server_app(
        nodes=len(by_node), num_shares=num_shares, threshold=threshold, aggregate=aggregate
    )
    wall, cpu = _drive(server_app, make_grid)
    if len(aggregate) != 1:
        return None, wall, cpu
    return np.asarray(aggregate[0], dtype=np.float64), wall, cpu


def _import_flower_modules() -> None:
    """Check that every module of Flower this driver uses imports (the steps of ``_run``
    then import their names from them again, at no cost).

    Raises:
        FlowerUnavailable: one does not.
    """
    try:
        from flwr.app import Context, Message, RecordDict  # noqa: F401, PLC0415
        from flwr.client import NumPyClient  # noqa: F401, PLC0415
        from flwr.client.mod import secaggplus_mod  # noqa: F401, PLC0415
        from flwr.clientapp import ClientApp  # noqa: F401, PLC0415
        from flwr.common import ndarrays_to_parameters  # noqa: F401, PLC0415

        # Private modules (see the module's docstring).
        from flwr.common.constant import SUPERLINK_NODE_ID  # noqa: F401, PLC0415
        from flwr.common.secure_aggregation.secaggplus_constants import (  # noqa: F401, PLC0415
            RECORD_KEY_CONFIGS,
            Key,
            Stage,
        )
        from flwr.server import LegacyContext, ServerConfig  # noqa: F401, PLC0415
        from flwr.server.strategy import FedAvg  # noqa: F401, PLC0415
        from flwr.server.workflow import DefaultWorkflow, SecAggPlusWorkflow  # noqa: F401, PLC0415
        from flwr.serverapp import Grid, ServerApp  # noqa: F401, PLC0415
        from flwr.supercore.run import Run  # noqa: F401, PLC0415
        from flwr.supercore.task_identity import TaskIdentity  # noqa: F401, PLC0415
    except ImportError as exc:
        raise FlowerUnavailable(
            f"this driver needs flwr=={FLOWER_VERSION}, which has {exc.name}; "
            f"install with: {INSTALL_HINT} ({exc})"
        ) from exc


def _client_app(by_node: Mapping[int, Vector]) -> Any:
    """The clients' side: one ``ClientApp``, with ``secaggplus_mod``, whose client for node
    ``n`` returns ``by_node[n]`` from ``fit``."""
    from flwr.app import Context  # noqa: PLC0415
    from flwr.client import NumPyClient  # noqa: PLC0415
    from flwr.client.mod import secaggplus_mod  # noqa: PLC0415
    from flwr.clientapp import ClientApp  # noqa: PLC0415

    class VectorClient(NumPyClient):  # type: ignore[misc,unused-ignore]
        """A client whose training returns its vector, with weight ``MAX_WEIGHT``."""

        def __init__(self, vector: Vector) -> None:
            self.vector = vector

        def fit(
            self, parameters: list[npt.NDArray[Any]], config: Mapping[str, object]
        ) -> tuple[list[npt.NDArray[Any]], int, dict[str, Any]]:
            return [self.vector], MAX_WEIGHT, {}

    def client_fn(context: Context) -> Any:
        return VectorClient(by_node[context.node_id]).to_client()

    return ClientApp(client_fn=client_fn, mods=[secaggplus_mod])


def _in_process_grid(
    *,
    client_app: Any,
    contexts: Mapping[int, Any],
    dropped: frozenset[int],
    client_seconds: dict[int, float],
) -> Callable[[], Any]:
    """The transport: a maker of ``InProcessGrid``, which hands each message to
    ``client_app`` with its node's context, adding the time spent in the call to
    ``client_seconds[node]``, and loses ``dropped`` nodes' replies from the
    collect-masked-vectors stage on."""
    from flwr.app import Message, RecordDict  # noqa: PLC0415
    from flwr.serverapp import Grid  # noqa: PLC0415

    # Private module (see the module's docstring).
    from flwr.supercore.run import Run  # noqa: PLC0415

    class InProcessGrid(Grid):  # type: ignore[misc,unused-ignore]
        """Flower's ``Grid``, delivering each message to its client's ``ClientApp`` at once.

        A message's id is the order in which it was pushed. A dropped client's
        replies from the collect-masked-vectors stage on are lost: they are
        never pulled.
        """

        def __init__(self) -> None:
            self._run = Run.create_empty(RUN_ID)
            self._replies: dict[str, Message] = {}
            self._pushed = 0

        def set_run(self, run: Run) -> None:
            self._run = run

        @property
        def run(self) -> Run:
            return self._run

        def create_message(
            self,
            content: RecordDict,
            message_type: str,
            dst_node_id: int,
            group_id: str,
            ttl: float | None = None,
        ) -> Message:
            return Message(content, dst_node_id, message_type, ttl=ttl, group_id=group_id)

        def get_node_ids(self) -> Iterable[int]:
            return list(contexts)

        def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
            ids = []
            for message in messages:
                node = message.metadata.dst_node_id
                lost = node in dropped and _silent_stage(message)
                # The wire's copy: the workflow sends one content object to every
                # client, and secaggplus_mod pops the stage from what it receives.
                delivered = copy.deepcopy(message)
                start = time.perf_counter()
                reply = client_app(delivered, contexts[node])
                client_seconds[node] += time.perf_counter() - start
                message_id = str(self._pushed)
                self._pushed += 1
                if not lost:
                    self._replies[message_id] = reply
                ids.append(message_id)
            return ids

        def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
            return [self._replies.pop(i) for i in message_ids if i in self._replies]

        def send_and_receive(
            self, messages: Iterable[Message], *, timeout: float | None = None
        ) -> Iterable[Message]:
            # Every reply that will ever come is already in: nothing to wait for.
            return self.pull_messages(self.push_messages(messages))

    return InProcessGrid


def _silent_stage(message: Any) -> bool:
    """Whether ``message`` belongs to a stage whose replies a dropped client loses: the
    collect-masked-vectors stage or the unmask stage."""
    # Private module (see the module's docstring).
    from flwr.common.secure_aggregation.secaggplus_constants import (  # noqa: PLC0415
        RECORD_KEY_CONFIGS,
        Key,
        Stage,
    )

    configs = message.content.config_records.get(RECORD_KEY_CONFIGS)
    stage = None if configs is None else configs.get(Key.STAGE)
    return stage in {Stage.COLLECT_MASKED_VECTORS, Stage.UNMASK}


def _server_app(
    *, nodes: int, num_shares: int, threshold: int, aggregate: list[npt.NDArray[Any]]
) -> Any:
    """The server's side: a ``ServerApp`` running ``SecAggPlusWorkflow`` over ``FedAvg``
    for one round of ``nodes`` clients, which appends the aggregate to ``aggregate``."""
    from flwr.app import Context  # noqa: PLC0415
    from flwr.common import ndarrays_to_parameters  # noqa: PLC0415
    from flwr.server import LegacyContext, ServerConfig  # noqa: PLC0415
    from flwr.server.strategy import FedAvg  # noqa: PLC0415
    from flwr.server.workflow import DefaultWorkflow, SecAggPlusWorkflow  # noqa: PLC0415
    from flwr.serverapp import Grid, ServerApp  # noqa: PLC0415

    def keep_aggregate(
        server_round: int, arrays: list[npt.NDArray[Any]], config: Mapping[str, object]
    ) -> None:
        # FedAvg's centralised evaluation sees the aggregate after round 1;
        # it still sees the empty initial model if SecAgg+ halted.
        if server_round == 1:
            aggregate.extend(arrays)

    def no_metrics(results: Sequence[tuple[int, Mapping[str, object]]]) -> dict[str, Any]:
        return {}

    strategy = FedAvg(
        fraction_fit=1.0,
        fraction_evaluate=0.0,
        min_fit_clients=nodes,
        min_available_clients=nodes,
        initial_parameters=ndarrays_to_parameters([]),  # no model broadcast: aggregation only
        evaluate_fn=keep_aggregate,
        fit_metrics_aggregation_fn=no_metrics,  # else FedAvg warns that there is none
    )

    def server_main(grid: Grid, context: Context) -> None:
        workflow = DefaultWorkflow(
            fit_workflow=SecAggPlusWorkflow(
                num_shares=num_shares,
                reconstruction_threshold=threshold,
                max_weight=float(MAX_WEIGHT),
                clipping_range=CLIPPING_RANGE,
                quantization_range=QUANTIZATION_RANGE,
                modulus_range=MODULUS_RANGE,
            )
        )
        workflow(grid, LegacyContext(context, ServerConfig(num_rounds=1), strategy))

    server_app = ServerApp()
    server_app.main()(server_main)
    return server_app


def _drive(server_app: Any, make_grid: Callable[[], Any]) -> tuple[float, float]:
    """Run ``server_app`` on a new grid, as the SuperLink; its wall and CPU seconds.

    The clock starts just before the grid is made and the ``ServerApp`` called,
    and stops at its return; Flower's INFO logs are muted meanwhile.
    """
    from flwr.app import Context, RecordDict  # noqa: PLC0415

    # Private modules (see the module's docstring).
    from flwr.common.constant import SUPERLINK_NODE_ID  # noqa: PLC0415
    from flwr.supercore.task_identity import TaskIdentity  # noqa: PLC0415

    server_context = Context(
        run_id=RUN_ID, node_id=SUPERLINK_NODE_ID, node_config={}, state=RecordDict(), run_config={}
    )
    # As Flower's own in-process drivers do: Message(...) stamps instructions with it.
    TaskIdentity.task_id = 1
    TaskIdentity.run_id = RUN_ID
    TaskIdentity.node_id = SUPERLINK_NODE_ID

    flower_logger = logging.getLogger("flwr")
    level = flower_logger.level
    flower_logger.setLevel(logging.WARNING)  # Flower logs every stage at INFO
    try:
        wall_start, cpu_start = time.perf_counter(), time.process_time()
        server_app(make_grid(), server_context)
        wall, cpu = time.perf_counter() - wall_start, time.process_time() - cpu_start
    finally:
        flower_logger.setLevel(level)
    return wall, cpu
