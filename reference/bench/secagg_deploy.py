"""Flower's SecAgg+ for one round on a real local deployment: the baseline of ``sdl bench deploy``.

Spec: spec/15-deployment.md#local (the deployment SDL runs; this module times Flower's instead)

``reference/bench/flower.py`` runs Flower's SecAgg+ in one process over an
in-process ``Grid``. This module runs the same round (the same workflow,
strategy, quantisation and client vectors) the way a deployment does: a real
``flower-superlink`` and ``nodes`` real ``flower-supernode`` processes on
loopback, the Flower app in ``secagg_app/`` submitted with ``flwr run``, the
``ServerApp`` in a process of the SuperLink's and every ``ClientApp`` message
handled in a fresh process of its SuperNode's.

- :data:`server`: waits until ``nodes`` SuperNodes are connected, then runs
  ``DefaultWorkflow(fit_workflow=SecAggPlusWorkflow(...))`` over a
  ``LegacyContext`` with ``FedAvg`` for one round, times it, counts the bytes
  relayed, checks the aggregate and writes one JSON object to ``result-file``.
- :data:`client`: ``ClientApp(client_fn, mods=[secaggplus_mod])`` whose
  ``NumPyClient.fit`` returns the vector of client ``partition-id`` (from the
  SuperNode's node config), drawn from the XOF exactly as
  ``reference/bench/flower.py`` draws it: ``Tag("bench.flower.vector", (i,))``
  under the seed ``int.from_bytes(seed, "big")``.
- :func:`run_secagg_round`: starts the SuperLink and the SuperNodes, submits
  the app, waits for the result, and stops every process it started.

Threshold. SDL's threshold ``t`` means that ``t`` colluding parties learn
nothing and any ``t + 1`` shares rebuild a secret. SecAgg+'s
``reconstruction_threshold`` is the number of shares that rebuild one, so it
is ``t + 1``; ``num_shares = nodes`` makes every client every other's
neighbour (the complete graph, as in SDL, where every node shares with every
other), so no neighbourhood is sampled.

Dropouts, the real-world equivalent of a client crashing mid-round. The last
``dropouts`` clients (by ``partition-id``) take part in the setup and
share-keys stages; then, before the collect-masked-vectors instructions are
pushed, the ServerApp writes ``<result-file>.hold`` and waits; the driver
SIGKILLs those SuperNodes and every process under them, and answers with
``<result-file>.go``. Their instructions are then never pulled: the stage
waits until the SuperLink, missing the dead SuperNodes' heartbeats, answers
for them with a node-unavailable error reply, or until ``stage-timeout``
seconds (SecAgg+'s ``timeout``) have passed, whichever comes first; SecAgg+
then marks them dead and, in the unmask stage, rebuilds their keys from the
survivors' shares. The hold itself (the driver's kill) is not counted in
``seconds``; the wait for the dead is. A ``stage-timeout`` shorter than a
stage's normal time (each ClientApp message starts a fresh Python process:
seconds per stage) makes SecAgg+ drop live clients too, and halt: the result
then says ``correct: false``.

Transport. Every message crosses the SuperLink through a :class:`CountingGrid`,
which delegates to Flower's ``Grid`` and adds up the payload of every
instruction pushed and every reply pulled: ``ArrayRecord.count_bytes`` (array
data and keys) plus the size of every ``ConfigRecord`` and ``MetricRecord``
value (bytes and strings their length, numbers 8 bytes, booleans 1, lists
the sum) and the record names. Flower's own framing (protobuf, HTTP, object
ids) is not counted. Its ``send_and_receive`` pushes the stage's
instructions at once and pulls the replies every :data:`POLL_SECONDS`, as
SDL's relay does (``reference/deploy/server.py``), where Flower's sleeps 3 s
between pulls: both baselines then wait on the network, not on a sleep.

Private name of Flower's: ``flwr.common.secure_aggregation.secaggplus_constants``
(the record key and stage names; ``reference/bench/flower.py`` says why), with
which the grid recognises the collect-masked-vectors stage.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from flwr.app import Context, Message, RecordDict
from flwr.client import NumPyClient
from flwr.client.mod import secaggplus_mod
from flwr.clientapp import ClientApp
from flwr.common import ndarrays_to_parameters
from flwr.common.secure_aggregation.secaggplus_constants import (
    RECORD_KEY_CONFIGS,
    Key,
    Stage,
)
from flwr.server import LegacyContext, ServerConfig
from flwr.server.strategy import FedAvg
from flwr.server.workflow import DefaultWorkflow, SecAggPlusWorkflow
from flwr.serverapp import Grid, ServerApp

from protocol.errors import ParameterError
from protocol.xof import SEED_SIZE
from reference.bench.flower import (
    CLIPPING_RANGE,
    MAX_WEIGHT,
    MODULUS_RANGE,
    QUANTIZATION_RANGE,
    _check,
    _correct,
    _default_vector,
)
from reference.common.atomic import write_text_atomically
from reference.deploy.local import (
    CONNECTION,
    DeployError,
    LocalRun,
    Proc,
    flower_home,
    free_port,
    process_tree,
)

#: Where the Flower app (``pyproject.toml``) lives.
APP_DIR = Path(__file__).parent / "secagg_app"
#: How often the ServerApp asks the SuperLink for replies, and for connected nodes, in seconds.
POLL_SECONDS = 0.05
#: How long the ServerApp waits for the driver's kill of the dropouts, in seconds.
HOLD_SECONDS = 60.0

Vector = npt.NDArray[np.floating[Any]]


# --- the ServerApp -------------------------------------------------------------------------


def _value_bytes(value: object) -> int:
    """The payload size of one record value (see the module's docstring, Transport)."""
    if isinstance(value, bytes | str):
        return len(value)
    if isinstance(value, bool):
        return 1
    if isinstance(value, int | float):
        return 8
    if isinstance(value, list):
        return sum(_value_bytes(v) for v in value)
    raise TypeError(f"a record value must be bytes, str, bool, int, float or a list; got {value!r}")


def payload_bytes(content: RecordDict) -> int:
    """The bytes a message's content carries: arrays, config and metric values, and keys."""
    total = 0
    for name, arrays in content.array_records.items():
        total += len(name) + int(arrays.count_bytes())
    for records in (content.config_records, content.metric_records):
        for name, record in records.items():
            total += len(name) + sum(len(k) + _value_bytes(v) for k, v in record.items())
    return total


class CountingGrid(Grid):  # type: ignore[misc,unused-ignore]
    """Flower's ``Grid``, by delegation, counting the payload of every message it relays.

    ``send_and_receive`` pushes at once and pulls every :data:`POLL_SECONDS` until every
    reply is in or ``timeout`` has passed. Before the collect-masked-vectors stage it calls
    ``before_masking()`` once (the dropout hold).
    """

    def __init__(self, grid: Any, *, before_masking: Any) -> None:
        self._grid = grid
        self._before_masking = before_masking
        self.bytes_relayed = 0
        #: Replies (without error) pulled in the collect-masked-vectors stage.
        self.masked_replies = 0
        #: Wall seconds of each ``send_and_receive``, by SecAgg+ stage, in order.
        self.stages: list[tuple[str, float]] = []

    def set_run(self, run: Any) -> None:
        self._grid.set_run(run)

    @property
    def run(self) -> Any:
        return self._grid.run

    def create_message(
        self,
        content: RecordDict,
        message_type: str,
        dst_node_id: int,
        group_id: str,
        ttl: float | None = None,
    ) -> Message:
        message: Message = self._grid.create_message(
            content, message_type, dst_node_id, group_id, ttl
        )
        return message

    def get_node_ids(self) -> Iterable[int]:
        return list(self._grid.get_node_ids())

    def get_nodes(self) -> Iterable[Any]:
        return list(self._grid.get_nodes())

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        messages = list(messages)
        self.bytes_relayed += sum(payload_bytes(m.content) for m in messages if m.has_content())
        return list(self._grid.push_messages(messages))

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        replies = list(self._grid.pull_messages(message_ids))
        self.bytes_relayed += sum(payload_bytes(m.content) for m in replies if m.has_content())
        return replies

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        messages = list(messages)
        masking = any(_stage(m) == Stage.COLLECT_MASKED_VECTORS for m in messages)
        if masking:
            self._before_masking()
        start = time.perf_counter()
        waiting = set(self.push_messages(messages))
        deadline = None if timeout is None else time.monotonic() + timeout
        replies: list[Message] = []
        while waiting and (deadline is None or time.monotonic() < deadline):
            time.sleep(POLL_SECONDS)
            pulled = list(self.pull_messages(waiting))
            replies.extend(pulled)
            waiting.difference_update(m.metadata.reply_to_message_id for m in pulled)
        if masking:
            self.masked_replies = sum(1 for m in replies if not m.has_error())
        stage = _stage(messages[0]) if messages else None
        self.stages.append((str(stage), time.perf_counter() - start))
        return replies


def _stage(message: Message) -> object:
    """The SecAgg+ stage a message belongs to (None for any other message)."""
    if not message.has_content():
        return None
    configs = message.content.config_records.get(RECORD_KEY_CONFIGS)
    return None if configs is None else configs.get(Key.STAGE)


server = ServerApp()


@server.main()  # type: ignore[untyped-decorator,unused-ignore]
def _server_main(grid: Grid, context: Context) -> None:
    """Run the round of the run configuration and write its result (or why it failed)."""
    config = context.run_config
    result = Path(str(config["result-file"]))
    written = False
    try:
        outcome = _serve(grid, context, result)
        write_text_atomically(result, json.dumps(outcome, sort_keys=True) + "\n")
        written = True
    finally:
        if not written:
            failed = {"failed": "the ServerApp stopped before the round's end (see its log)"}
            write_text_atomically(result, json.dumps(failed) + "\n")


def _serve(grid: Grid, context: Context, result: Path) -> dict[str, Any]:
    """The round: wait for the nodes, run SecAgg+ once, check it; the result's JSON object."""
    config = context.run_config
    nodes, dimension = int(config["nodes"]), int(config["dimension"])
    dropouts = int(config["dropouts"])
    seed = int.from_bytes(bytes.fromhex(str(config["seed"])), "big")
    deadline = time.monotonic() + float(config["connect-timeout"])
    while len(list(grid.get_node_ids())) < nodes:
        if time.monotonic() > deadline:
            return {"failed": f"fewer than {nodes} SuperNodes connected in time"}
        time.sleep(POLL_SECONDS)

    held = [0.0]

    def before_masking() -> None:
        if dropouts == 0:
            return
        start = time.perf_counter()
        go = result.with_name(result.name + ".go")
        write_text_atomically(result.with_name(result.name + ".hold"), "")
        stop = time.monotonic() + HOLD_SECONDS
        while not go.exists():
            if time.monotonic() > stop:
                raise DeployError(f"no go from the driver in {HOLD_SECONDS:g} s ({go})")
            time.sleep(POLL_SECONDS)
        held[0] += time.perf_counter() - start

    counting = CountingGrid(grid, before_masking=before_masking)
    aggregate: list[npt.NDArray[Any]] = []

    def keep_aggregate(
        server_round: int, arrays: list[npt.NDArray[Any]], _: Mapping[str, object]
    ) -> None:
        if server_round == 1:
            aggregate.extend(arrays)

    def no_metrics(_: Sequence[tuple[int, Mapping[str, object]]]) -> dict[str, Any]:
        return {}

    strategy = FedAvg(
        fraction_fit=1.0,
        fraction_evaluate=0.0,
        min_fit_clients=nodes,
        min_available_clients=nodes,
        initial_parameters=ndarrays_to_parameters([]),  # no model broadcast: aggregation only
        evaluate_fn=keep_aggregate,
        fit_metrics_aggregation_fn=no_metrics,
    )
    workflow = DefaultWorkflow(
        fit_workflow=SecAggPlusWorkflow(
            num_shares=int(config["num-shares"]),
            reconstruction_threshold=int(config["reconstruction-threshold"]),
            max_weight=float(MAX_WEIGHT),
            clipping_range=CLIPPING_RANGE,
            quantization_range=QUANTIZATION_RANGE,
            modulus_range=MODULUS_RANGE,
            timeout=float(config["stage-timeout"]),
        )
    )
    start = time.perf_counter()
    workflow(counting, LegacyContext(context, ServerConfig(num_rounds=1), strategy))
    seconds = time.perf_counter() - start - held[0]

    survivors = nodes - dropouts
    vectors = [_default_vector(seed, index, dimension) for index in range(survivors)]
    correct = (
        len(aggregate) == 1
        and counting.masked_replies == survivors
        and _correct(np.asarray(aggregate[0], dtype=np.float64), vectors, dimension)
    )
    return {
        "seconds": seconds,
        "bytes_relayed": counting.bytes_relayed,
        "correct": correct,
        "survivors": counting.masked_replies,
        "nodes": nodes,
        "dimension": dimension,
        "dropouts": dropouts,
        "stage_seconds": [[name, t] for name, t in counting.stages],
    }


# --- the ClientApp -------------------------------------------------------------------------


class VectorClient(NumPyClient):  # type: ignore[misc,unused-ignore]
    """A client whose training returns its vector, with weight ``MAX_WEIGHT``."""

    def __init__(self, vector: Vector) -> None:
        self.vector = vector

    def fit(
        self, parameters: list[npt.NDArray[Any]], config: Mapping[str, object]
    ) -> tuple[list[npt.NDArray[Any]], int, dict[str, Any]]:
        return [self.vector], MAX_WEIGHT, {}


def _client_fn(context: Context) -> Any:
    index = int(context.node_config["partition-id"])
    seed = int.from_bytes(bytes.fromhex(str(context.run_config["seed"])), "big")
    vector = _default_vector(seed, index, int(context.run_config["dimension"]))
    return VectorClient(vector).to_client()


client = ClientApp(client_fn=_client_fn, mods=[secaggplus_mod])


# --- the driver ----------------------------------------------------------------------------


def _tool(name: str) -> str:
    """A console script installed beside this interpreter (else on ``PATH``)."""
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    found = shutil.which(name)
    if found is None:
        raise DeployError(f"{name} is not installed: python -m pip install -e '.[flower]'")
    return found


def cpu_seconds(pid: int) -> float:
    """CPU seconds of ``pid`` and every live process below it, from ``/proc/<pid>/stat``.

    Each process counts ``utime + stime + cutime + cstime`` (fields 14-17): its own user
    and system time, and that of its children that have exited and been reaped by it. A
    SuperNode's ClientApp processes, one per message, are counted once they have exited and
    their parent has waited for them; one still running counts its own time so far; one
    exited but not yet reaped is not counted.
    """
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in process_tree(pid):
        try:
            stat = Path(f"/proc/{p}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()  # fields[0] is field 3, the state
        total += sum(int(f) for f in fields[11:15])
    return total / ticks


def _wait_listening(port: int, proc: Proc, *, timeout: float) -> None:
    """Wait until the SuperLink says it listens on ``port``."""
    ready = f"Uvicorn running on http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise DeployError(f"the SuperLink exited with {proc.popen.returncode} ({proc.log})")
        with suppress(OSError):
            if ready in proc.log.read_text(errors="replace"):
                return
        time.sleep(0.1)
    raise DeployError(f"the SuperLink did not listen on 127.0.0.1:{port} within {timeout:g} s")


def run_secagg_round(
    *,
    nodes: int,
    dimension: int,
    dropouts: int,
    threshold: int,
    seed: bytes,
    keep: Path | None = None,
    timeout: float = 600,
    stage_timeout: float = 30.0,
) -> dict[str, Any]:
    """One round of Flower's SecAgg+ on a SuperLink and ``nodes`` SuperNodes on loopback.

    Spec: spec/15-deployment.md#local

    Starts ``flower-superlink`` and ``nodes`` ``flower-supernode`` processes (node config
    ``partition-id=I num-partitions=N``, free ports, ``--insecure``, a temporary
    ``FLWR_HOME``), submits ``secagg_app/`` with ``flwr run``, waits for its result, and
    stops every process it started (each tree listed before any of it is signalled), on
    success, failure and Ctrl-C. SecAgg+ runs with ``num_shares = nodes`` and
    ``reconstruction_threshold = threshold + 1`` (see the module's docstring).

    Returns the ServerApp's result: ``seconds`` (the round's wall time, from the first
    instruction to the aggregate, the dropout hold excluded), ``bytes_relayed``,
    ``correct`` (false too when SecAgg+ halted without an aggregate), ``survivors`` (the
    masked vectors received), ``nodes``, ``dimension``, ``dropouts``, ``stage_seconds``
    (``[stage, seconds]`` for each SecAgg+ stage, in order); plus
    ``cpu_seconds``, one per SuperNode by partition-id (:func:`cpu_seconds` of its tree,
    just before it is stopped or killed), and ``stage_timeout``.

    Pre-conditions:

    - those of ``reference.bench.flower.run_flower_round`` with ``num_shares = nodes``
      (so ``nodes >= 3``) and ``threshold + 1`` as its threshold: ``1 <= threshold <
      nodes - 1``;
    - ``dropouts <= nodes - threshold - 1`` (else some client keeps fewer than
      ``threshold + 1`` live neighbours and SecAgg+ halts);
    - ``len(seed) <= 32``; ``timeout > 0``, ``stage_timeout > 0``.

    Raises:
        ParameterError: a pre-condition fails.
        DeployError: a process would not start, ``flwr run`` refused the app, the
            ServerApp failed, or no result came within ``timeout`` seconds.
    """
    _check(nodes=nodes, dimension=dimension, dropouts=dropouts, num_shares=nodes)
    if not 1 <= threshold < nodes - 1:
        raise ParameterError(f"threshold must be in [1, nodes - 1 = {nodes - 1}); got {threshold}")
    if dropouts > nodes - threshold - 1:
        raise ParameterError(
            f"dropouts must be at most nodes - threshold - 1 = {nodes - threshold - 1} "
            f"(threshold + 1 live clients rebuild the dead ones' keys); got {dropouts}"
        )
    if len(seed) > SEED_SIZE:
        raise ParameterError(f"seed must be at most {SEED_SIZE} bytes; got {len(seed)}")
    if timeout <= 0 or stage_timeout <= 0:
        raise ParameterError(f"timeouts must be > 0; got {timeout} and {stage_timeout}")

    root = Path(tempfile.mkdtemp(prefix="sdl-bench-secagg-")) if keep is None else keep
    port = free_port()
    run = LocalRun(root, port, flower_home(root, port), nodes)
    cpu: dict[int, float] = {}
    try:
        link = run.start(
            "superlink",
            [_tool("flower-superlink"), "--insecure", "--port", str(port),
             "--disable-runtime-dependency-installation"],
        )  # fmt: skip
        _wait_listening(port, link, timeout=60)
        for i in range(nodes):
            run.supernodes[i] = run.start(
                f"supernode-{i}",
                [_tool("flower-supernode"), "--insecure", "--superlink", f"127.0.0.1:{port}",
                 "--port", str(free_port()),
                 "--node-config", f"partition-id={i} num-partitions={nodes}"],
            )  # fmt: skip
        result = root / "result.json"
        config: dict[str, object] = {
            "nodes": nodes,
            "dimension": dimension,
            "dropouts": dropouts,
            "num-shares": nodes,
            "reconstruction-threshold": threshold + 1,
            "seed": seed.hex() or "00",
            "stage-timeout": float(stage_timeout),
            "connect-timeout": 120.0,
            "result-file": str(result.resolve()),
        }
        toml = root / "run-config.toml"
        toml.write_text("".join(f"{k} = {json.dumps(v)}\n" for k, v in config.items()))
        submitted = subprocess.run(
            [_tool("flwr"), "run", str(APP_DIR), CONNECTION, "--run-config", str(toml),
             "--format", "json"],
            capture_output=True, env=run.env, cwd=root, timeout=120, check=False,
        )  # fmt: skip
        if submitted.returncode != 0:
            why = (submitted.stdout + submitted.stderr).decode(errors="replace").strip()
            raise DeployError(f"flwr run refused the app: {why.splitlines()[-1] if why else '?'}")
        outcome = _follow(run, result, dropouts=dropouts, timeout=timeout, cpu=cpu)
    finally:
        for i, proc in run.supernodes.items():
            if proc.popen.poll() is None:
                cpu[i] = cpu_seconds(proc.pid)
        left = run.stop()
        if keep is None:
            shutil.rmtree(root, ignore_errors=True)
    if left:
        raise DeployError(f"processes still alive after the round: {left}")
    return outcome | {"cpu_seconds": [cpu[i] for i in range(nodes)], "stage_timeout": stage_timeout}


def _follow(
    run: LocalRun, result: Path, *, dropouts: int, timeout: float, cpu: dict[int, float]
) -> dict[str, Any]:
    """Wait for the ServerApp's result, killing the dropouts when it holds; the result.

    Raises:
        DeployError: the SuperLink exited, the ServerApp failed, or ``timeout`` passed.
    """
    hold = result.with_name(result.name + ".hold")
    nodes = len(run.supernodes)
    deadline = time.monotonic() + timeout
    superlink = run.procs[0]
    killed = False
    while not result.exists():
        if not killed and hold.exists():
            for i in range(nodes - dropouts, nodes):
                cpu[i] = cpu_seconds(run.supernodes[i].pid)
                run.kill_node(i)
            killed = True
            write_text_atomically(result.with_name(result.name + ".go"), "")
        if superlink.popen.poll() is not None:
            raise DeployError(f"the SuperLink exited with {superlink.popen.returncode}")
        if time.monotonic() > deadline:
            raise DeployError(f"no result within {timeout:g} s (logs: {run.root / 'logs'})")
        time.sleep(0.05)
    outcome: dict[str, Any] = json.loads(result.read_text())
    if "failed" in outcome:
        raise DeployError(f"the round failed: {outcome['failed']}")
    return outcome


__all__ = [
    "APP_DIR",
    "CountingGrid",
    "client",
    "cpu_seconds",
    "payload_bytes",
    "run_secagg_round",
    "server",
]
