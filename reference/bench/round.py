"""``sdl bench round``: one whole round, every role in one process, on the real code path.

Spec: spec/09-protocol.md (the machines that run); spec/12-transcripts.md#scenario (the round)

The round is :func:`reference.sim.scenarios.build`'s scenario, run by
:func:`reference.sim.simulate.simulate`: the protocol's own state machines for every
contributor, aggregator, the coordinator and the receivers, over a reliable
network, with ``dropouts`` contributors crashing part-way through their shares.
The simulator times each machine step (``on_step``) and shows each message sent
(``on_send``); from those this module builds the figures:

- time per *phase*, by the step's role and event (:func:`phase_of`), summing to
  the machine time; the round's wall time, from :func:`simulate`'s start to the
  end of the last machine step, less the time spent generating inputs and in
  this module's own observers (what simulate() does after the last step is its
  check of the result, reported apart); the simulator's overhead (wall −
  machine); CPU time over the same span (every thread of the process);
- per node: the time spent in its contributor steps, in its aggregator steps;
  the bytes it sent in the binary wire form, per role (the role that sends each
  message kind, :data:`SENDER_ROLE`);
- the secure channels (spec/14-channels.md), on by default: every message
  between two nodes is sealed by its sender (HPKE to the recipient's session
  key, Ed25519 signature) and opened by its recipient inside the round, so the
  wall time includes them; the seconds spent sealing and opening (the
  simulator's ``on_channel``) and the bytes of the frames, apart;
- a plaintext baseline timed in the same run: the field sum of the same update
  vectors, and the ratio round / plaintext;
- the peak memory of the process that ran the round: :func:`bench_round` runs it
  in a fresh child process ("spawn") and reads ``ru_maxrss``, beside an idle
  child that only imports the modules (the interpreter's floor).

Inputs: each contributor's update is drawn from the scenario's XOF stream when
the simulator asks for it (:class:`TimedUpdates`), timed apart, left out of the
round's time, and never kept: the bench does not hold every update at once.

Speed targets are reported, never asserted here or in tests (see
:mod:`reference.bench.micro`): a timed check fails on a busy machine for reasons that
have nothing to do with the code.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from protocol.channels import DEFAULT_SUITE, frame_size, suite_named
from protocol.errors import ParameterError
from protocol.field import FIELDS, Field
from protocol.machine import ContributorState
from protocol.messages import Message, wire_size
from protocol.xof import Tag, Xof
from reference.common.atomic import replacing, write_text_atomically
from reference.common.seeds import seed_from_hex
from reference.sim.scenarios import build
from reference.sim.simulate import Channels, Scenario, simulate

if TYPE_CHECKING:
    from reference.bench.flower import FlowerRound

#: σ*², the total noise variance the honest contributors carry in the released sum.
#: 10^7 is the order ``sdl run`` calibrates for ε = 2 on the digits (σ*² ≈ 1.8·10^7):
#: a per-coordinate standard deviation of about 3,200 in the encoded integers.
TARGET_VARIANCE = Fraction(10**7)

#: Target (a): the round's wall time, sealing on, at most this fraction of Flower's.
FLOWER_TIME_FRACTION = 0.15
#: Target (e): the time spent sealing and opening frames, at most this share of the round.
CHANNEL_SHARE = 0.10
#: ``RoundConfig.channels``: every message between two nodes sealed, or handed over plain.
CHANNEL_MODES = ("sealed", "plain")
#: Target (c): field elements sent per contributor, per coordinate of the update, at most.
ELEMENTS_PER_COORDINATE = 3
#: Target (d): peak memory of the round's process, in bytes (2 GB).
MEMORY_LIMIT = 2 * 10**9
#: The linearity check in d passes when the time per coordinate at the largest d is at
#: most this multiple of that at the smallest (fixed costs make it fall, not rise).
LINEAR_TOLERANCE = 1.25

#: Flower's SecAgg+ settings ``--compare-flower`` runs by default: 21 shares per secret, 11
#: to rebuild.
FLOWER_SHARES = 21
FLOWER_THRESHOLD = 11

#: The scaling sweeps' defaults: d at the given n, then n at d = 10^5.
SCALING_DIMENSIONS = (10**4, 10**5, 10**6)
SCALING_NODES = (10, 25, 50, 100, 200)
SCALING_NODES_DIMENSION = 10**5

#: The phases, in the order a round goes through them.
PHASES = ("contribute", "collect", "decide", "aggregate", "reconstruct", "other")

#: The role that sends each message kind (spec/09-protocol.md#messages).
SENDER_ROLE: Mapping[str, str] = {
    "share": "contributor",
    "report": "aggregator",
    "partial_sum": "aggregator",
    "decision": "coordinator",
    "abort": "coordinator",
    "echo": "aggregator",
}

P = ParamSpec("P")
Result = TypeVar("Result")


def phase_of(role: str, what: str) -> str:
    """The phase a machine step belongs to.

    ``contribute``: a contributor's start (noise, sharing); ``collect``: an
    aggregator taking a share; ``decide``: any coordinator step;
    ``aggregate``: an aggregator's decision and echoes (its partial sum); ``reconstruct``:
    any receiver step; ``other``: the rest (starts and timers of the other
    roles, a contributor's decision and any top-up it shares).
    """
    if role == "contributor" and what == "start":
        return "contribute"
    if role == "aggregator" and what == "share":
        return "collect"
    if role == "coordinator":
        return "decide"
    if role == "aggregator" and what in ("decision", "echo"):
        return "aggregate"
    if role == "receiver":
        return "reconstruct"
    return "other"


# ---------------------------------------------------------------------- the round


@dataclass(frozen=True)
class RoundConfig:
    """One benchmarked round. The defaults are the design ``sdl bench round`` models.

    ``threshold`` is Shamir's t (any t aggregators learn nothing), ``packing``
    the secrets per share, ``committee`` the aggregators (``None``: every
    node), ``colluders`` the noise plan's T, ``noise_sources`` how many
    contributors add noise (``None``: all), ``receivers`` how many nodes
    rebuild the sum (``None``: all), ``precover``: the plan covers the D
    dropouts up front, so no top-up stage. ``channels``: ``"sealed"`` seals
    every message between two nodes in ``suite`` (spec/14-channels.md) and
    opens it before its recipient's machine sees it; ``"plain"`` hands the
    messages over as they are. ``max_byzantine`` is the round's ``f`` and
    ``failover`` its backup coordinators (spec/09-protocol.md#byzantine-nodes,
    spec/09-protocol.md#failover): either adds the aggregators' echo exchange.
    """

    nodes: int = 100
    dimension: int = 1_000_000
    dropouts: int = 5
    colluders: int = 10
    threshold: int = 10
    packing: int = 20
    committee: int | None = 35
    noise_sources: int | None = 30
    receivers: int | None = 1
    precover: bool = True
    mechanism: str = "skellam"
    target_variance: Fraction = TARGET_VARIANCE
    field: str = "Field31"
    seed: str = "1"
    channels: str = "sealed"
    suite: str = DEFAULT_SUITE.name
    max_byzantine: int = 0
    failover: int = 0

    @property
    def sealed(self) -> bool:
        return self.channels == "sealed"

    def to_json(self) -> dict[str, object]:
        body = asdict(self)
        body["target_variance"] = str(self.target_variance)
        return body


def scenario(config: RoundConfig) -> Scenario:
    """The round's scenario, built by :func:`reference.sim.scenarios.build`.

    Raises:
        ParameterError: a parameter is out of range (the message names it).
    """
    if config.field not in FIELDS:
        raise ParameterError(f"field must be one of {sorted(FIELDS)}; got {config.field!r}")
    if config.channels not in CHANNEL_MODES:
        raise ParameterError(
            f"channels must be one of {', '.join(CHANNEL_MODES)}; got {config.channels!r}"
        )
    suite = suite_named(config.suite)
    return build(
        master=seed_from_hex(config.seed),
        nodes=config.nodes,
        threshold=config.threshold,
        dropouts=config.dropouts,
        colluders=config.colluders,
        committee=config.committee,
        packing=config.packing,
        dimension=config.dimension,
        mechanism=config.mechanism,
        target_variance=config.target_variance,
        field=FIELDS[config.field],
        noise_sources=config.noise_sources,
        receivers=config.receivers,
        precover=config.precover,
        channels=Channels(suite) if config.sealed else None,
        max_byzantine=config.max_byzantine,
        failover=config.failover,
    )


class TimedUpdates(Mapping[int, Field]):
    """The scenario's updates, drawn when asked, never kept, and timed (wall and CPU)."""

    def __init__(self, source: Scenario) -> None:
        if source.updates is not None:
            raise ParameterError("TimedUpdates draws the scenario's own updates; got fixed ones")
        self._source = source
        self._ids = frozenset(source.params.contributors)
        self.seconds = 0.0
        self.cpu_seconds = 0.0
        self.drawn = 0

    def __getitem__(self, node: int) -> Field:
        if node not in self._ids:
            raise KeyError(node)
        wall, cpu = time.perf_counter(), time.process_time()
        update = self._source.update(node)
        self.seconds += time.perf_counter() - wall
        self.cpu_seconds += time.process_time() - cpu
        self.drawn += 1
        return update

    def __iter__(self) -> Iterator[int]:
        return iter(self._source.params.contributors)

    def __len__(self) -> int:
        return len(self._ids)


@dataclass(frozen=True)
class Spread:
    """A per-node figure over the nodes of one role: median, max, total, how many nodes."""

    median: float
    max: float
    total: float
    nodes: int

    @staticmethod
    def of(values: Sequence[float]) -> Spread:
        if not values:
            return Spread(0.0, 0.0, 0.0, 0)
        return Spread(statistics.median(values), max(values), sum(values), len(values))


@dataclass(frozen=True)
class RoundMeasure:
    """What one round cost, measured in the process that ran it.

    Seconds are wall-clock (``time.perf_counter``) unless named ``cpu``;
    bytes are per node, in the binary wire form (:func:`protocol.messages.wire_size`),
    unless named ``frame`` or ``channel`` (the sealed frames, spec/14-channels.md).
    """

    config: RoundConfig
    status: str
    reason: str | None
    released: bool
    aggregate_correct: bool
    released_contributors: int
    crashed: int
    messages: int
    coordinator: int
    aggregators: int
    share_length: int
    #: Nodes that ran each role (took at least one step in it).
    machines: Mapping[str, int]
    phases: Mapping[str, float]
    #: Per ``"role/what"``: steps taken and their seconds.
    steps: Mapping[str, tuple[int, float]]
    machine_seconds: float
    wall_seconds: float
    cpu_seconds: float
    simulator_overhead_seconds: float
    #: Time in this module's ``on_send`` (message sizes) and ``on_channel``, left out of
    #: wall and CPU.
    observer_seconds: float
    #: Sealing and opening frames up to the last machine step (0 when the channels are
    #: plain): the AEAD, the frame's header and every check of spec 14, not the
    #: message's binary form (``wire_seconds``). Part of the wall time, outside the
    #: machine steps (so part of the simulator's overhead). The frame counts and bytes
    #: are of every frame.
    channel_seconds: float
    seal_seconds: float
    open_seconds: float
    frames_sealed: int
    frames_opened: int
    #: Total bytes of the frames sealed.
    channel_bytes: int
    #: Writing and reading the messages' binary form (spec/09-protocol.md#binary-form)
    #: that sealing starts from and opening ends with, up to the last machine step: part
    #: of the wall time, apart from ``channel_seconds`` (a deployment pays it sealed or not).
    wire_seconds: float
    #: The session's setup before the round (every node sends every other a key frame,
    #: once per session; spec/14-channels.md#channel-keys): left out of wall and CPU.
    session_setup_seconds: float
    session_setup_bytes: int
    #: From the last machine step to simulate()'s return: its check of the result
    #: (:func:`reference.sim.simulate.outcome` sums every contribution again), left out.
    verify_seconds: float
    inputs_seconds: float
    inputs_cpu_seconds: float
    inputs_drawn: int
    contributor_seconds: Spread
    #: The same, split: contributors that added noise (noise sources), and the others.
    noise_source_seconds: Spread
    other_contributor_seconds: Spread
    aggregator_seconds: Spread
    #: Per sending role (contributor, aggregator, coordinator) and ``"node"`` (all roles).
    bytes_sent: Mapping[str, Spread]
    #: Bytes each node sent in each role, by node id (as text, for JSON).
    bytes_by_node: Mapping[str, Mapping[str, int]]
    #: As ``bytes_sent``, in sealed frames (:func:`protocol.channels.frame_size`) of the
    #: messages to other nodes; None when the channels are plain.
    frame_bytes_sent: Mapping[str, Spread] | None
    plaintext_seconds: float
    plaintext_addends: int

    @property
    def round_over_plaintext(self) -> float:
        return self.wall_seconds / self.plaintext_seconds if self.plaintext_seconds else math.inf

    @property
    def channel_share(self) -> float | None:
        """Sealing and opening over the round's wall time; None when the channels are plain."""
        if not self.config.sealed:
            return None
        return self.channel_seconds / self.wall_seconds if self.wall_seconds else math.inf

    def as_json(self) -> dict[str, object]:
        body = asdict(self)
        body["config"] = self.config.to_json()
        body["steps"] = {k: {"count": c, "seconds": s} for k, (c, s) in self.steps.items()}
        body["round_over_plaintext"] = self.round_over_plaintext
        body["channel_share"] = self.channel_share
        return body


def _progress_bar(total: int, *, desc: str, unit: str, enabled: bool) -> Any:
    """A tqdm bar on stderr, or None (disabled, or stderr is not a terminal)."""
    if not enabled or not sys.stderr.isatty():
        return None
    from tqdm import tqdm  # noqa: PLC0415  (only a terminal pays for it)

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, leave=False)


def measure_round(config: RoundConfig, *, progress: bool = False) -> RoundMeasure:
    """Run one round in this process and measure it (no memory figure: see :func:`bench_round`).

    Raises:
        ParameterError: the configuration does not make a valid round.
    """
    base = scenario(config)
    p = base.params
    fld = p.field
    inputs = TimedUpdates(base)
    run = replace(base, updates=inputs)

    step_count: dict[str, int] = {}
    step_seconds: dict[str, float] = {}
    phases = dict.fromkeys(PHASES, 0.0)
    per_node: dict[str, dict[int, float]] = {}
    sent: dict[str, dict[int, int]] = {role: {} for role in sorted(set(SENDER_ROLE.values()))}
    framed: dict[str, dict[int, int]] = {role: {} for role in sent}
    suite = run.channels.suite if run.channels is not None else None
    channel = dict.fromkeys(("seal", "open", "encode", "decode", "setup"), 0.0)
    frames = dict.fromkeys(channel, 0)
    setup_bytes = [0]
    sealed_bytes = [0]
    observer = [0.0, 0.0]  # wall, CPU
    # When the last machine step ended (wall, CPU), the observers' time and the seconds
    # sealing and opening by then: the round is over there; what simulate() does after
    # it is its check of the result.
    last = [0.0] * 8
    heavy = len(p.contributors) * (1 + len(p.aggregators))
    bar = _progress_bar(heavy, desc="shares sent and collected", unit="step", enabled=progress)

    def on_step(node: int, role: str, what: str, seconds: float) -> None:
        key = f"{role}/{what}"
        step_count[key] = step_count.get(key, 0) + 1
        step_seconds[key] = step_seconds.get(key, 0.0) + seconds
        phase = phase_of(role, what)
        phases[phase] += seconds
        mine = per_node.setdefault(role, {})
        mine[node] = mine.get(node, 0.0) + seconds
        if bar is not None and phase in ("contribute", "collect"):
            bar.update(1)
        last[:] = (time.perf_counter(), time.process_time(), observer[0], observer[1],
                   channel["seal"], channel["open"],
                   channel["encode"], channel["decode"])  # fmt: skip

    def on_send(message: Message) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        role = SENDER_ROLE[message.kind]
        by = sent[role]
        by[message.sender] = by.get(message.sender, 0) + wire_size(message, fld)
        if suite is not None and message.sender != message.recipient:
            f = framed[role]
            f[message.sender] = f.get(message.sender, 0) + frame_size(message, fld, suite)
        observer[0] += time.perf_counter() - wall
        observer[1] += time.process_time() - cpu

    def on_channel(what: str, size: int, seconds: float) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        channel[what] += seconds
        frames[what] += 1
        if what == "seal":
            sealed_bytes[0] += size
        elif what == "setup":
            setup_bytes[0] += size
        observer[0] += time.perf_counter() - wall
        observer[1] += time.process_time() - cpu

    try:
        wall0, cpu0 = time.perf_counter(), time.process_time()
        outcome = simulate(run, on_step=on_step, on_send=on_send, on_channel=on_channel)
        verify = time.perf_counter() - last[0]
        # The session's setup is once per session, not part of the round.
        wall = last[0] - wall0 - inputs.seconds - last[2] - channel["setup"]
        cpu = last[1] - cpu0 - inputs.cpu_seconds - last[3] - channel["setup"]
    finally:
        if bar is not None:
            bar.close()

    # The plaintext baseline: the same vectors, summed in the field, only the sums timed.
    total = fld.zeros(p.dimension)
    plaintext = 0.0
    for node in p.contributors:
        update = base.update(node)
        start = time.perf_counter()
        total = total + update
        plaintext += time.perf_counter() - start

    holders = {
        "contributor": p.contributors,
        "aggregator": p.aggregators,
        "coordinator": (p.coordinator,),
    }
    bytes_sent = {
        role: Spread.of([float(sent[role].get(i, 0)) for i in ids]) for role, ids in holders.items()
    }
    every = {i: sum(sent[role].get(i, 0) for role in sent) for i in p.nodes}
    bytes_sent["node"] = Spread.of([float(v) for v in every.values()])
    frame_bytes: dict[str, Spread] | None = None
    if suite is not None:
        frame_bytes = {
            role: Spread.of([float(framed[role].get(i, 0)) for i in ids])
            for role, ids in holders.items()
        }
        all_framed = [float(sum(framed[role].get(i, 0) for role in framed)) for i in p.nodes]
        frame_bytes["node"] = Spread.of(all_framed)
    machine = sum(step_seconds.values())
    contributing = per_node.get("contributor", {})
    noisy = {
        node
        for node in contributing
        if isinstance(st := outcome.states.get((node, "contributor")), ContributorState)
        and st.noise_variance > 0
    }
    return RoundMeasure(
        config=config,
        status=outcome.status,
        reason=outcome.reason,
        released=outcome.status == "released",
        aggregate_correct=outcome.aggregate_correct,
        released_contributors=len(outcome.contributors),
        crashed=len(outcome.crashed),
        messages=outcome.messages,
        coordinator=p.coordinator,
        aggregators=len(p.aggregators),
        share_length=p.share_length,
        machines={role: len(nodes) for role, nodes in sorted(per_node.items())},
        phases=phases,
        steps={k: (step_count[k], step_seconds[k]) for k in sorted(step_count)},
        machine_seconds=machine,
        wall_seconds=wall,
        cpu_seconds=cpu,
        simulator_overhead_seconds=wall - machine,
        observer_seconds=observer[0],
        channel_seconds=last[4] + last[5],
        seal_seconds=last[4],
        open_seconds=last[5],
        wire_seconds=last[6] + last[7],
        frames_sealed=frames["seal"],
        frames_opened=frames["open"],
        channel_bytes=sealed_bytes[0],
        session_setup_seconds=channel["setup"],
        session_setup_bytes=setup_bytes[0],
        verify_seconds=verify,
        inputs_seconds=inputs.seconds,
        inputs_cpu_seconds=inputs.cpu_seconds,
        inputs_drawn=inputs.drawn,
        contributor_seconds=Spread.of(list(contributing.values())),
        noise_source_seconds=Spread.of([t for i, t in contributing.items() if i in noisy]),
        other_contributor_seconds=Spread.of([t for i, t in contributing.items() if i not in noisy]),
        aggregator_seconds=Spread.of(list(per_node.get("aggregator", {}).values())),
        bytes_sent=bytes_sent,
        bytes_by_node={
            role: {str(i): sent[role].get(i, 0) for i in ids} for role, ids in holders.items()
        },
        frame_bytes_sent=frame_bytes,
        plaintext_seconds=plaintext,
        plaintext_addends=len(p.contributors),
    )


# ---------------------------------------------------------------------- child processes


@dataclass(frozen=True)
class Memory:
    """Peak memory of a process, in bytes.

    ``ru_maxrss`` is ``getrusage(RUSAGE_SELF)``'s high-water mark. On Linux it
    survives ``exec``: a spawned child starts from its parent's peak at the
    time it was started, so this figure is never below the parent's (which
    is why the bench spawns its children while the parent is still small).
    ``hwm`` is ``VmHWM`` from ``/proc/self/status`` (Linux only): the child's
    own peak, from its ``exec`` on.
    """

    ru_maxrss: int
    hwm: int | None


def peak_memory() -> Memory:
    """This process's peak memory so far."""
    import resource  # noqa: PLC0415  (POSIX only)

    try:
        status = Path("/proc/self/status").read_text(encoding="ascii")
    except OSError:
        status = ""
    hwm: int | None = None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            hwm = int(line.split()[1]) * 1024
    # Read last, so that it also covers what reading /proc took.
    raw = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    ru_maxrss = raw if sys.platform == "darwin" else raw * 1024  # bytes on macOS, KiB on Linux
    return Memory(ru_maxrss=ru_maxrss, hwm=hwm)


def _import_round_modules() -> None:
    """Import what a round's child imports, so that the idle child's floor matches it."""
    import threadpoolctl  # noqa: F401, PLC0415
    import tqdm  # noqa: F401, PLC0415


def _round_child(config: RoundConfig, progress: bool) -> tuple[RoundMeasure, Memory]:
    _import_round_modules()
    from threadpoolctl import threadpool_limits  # noqa: PLC0415

    # As the ``sdl`` command does: the field's matrix product runs its own threads.
    with threadpool_limits(limits=1, user_api="blas"):
        measure = measure_round(config, progress=progress)
    return measure, peak_memory()


def _idle_child() -> Memory:
    _import_round_modules()
    return peak_memory()


def _flower_child(
    config: RoundConfig, shares: int, threshold: int, seed: int
) -> tuple[FlowerRound, Memory]:
    from reference.bench.flower import run_flower_round  # noqa: PLC0415

    result = run_flower_round(
        nodes=config.nodes,
        dimension=config.dimension,
        dropouts=config.dropouts,
        num_shares=shares,
        threshold=threshold,
        seed=seed,
    )
    return result, peak_memory()


def in_child(fn: Callable[P, Result], *args: P.args, **kwargs: P.kwargs) -> Result:
    """``fn(*args, **kwargs)`` in a fresh child process ("spawn"): its own memory, its own peak.

    Raises:
        concurrent.futures.process.BrokenProcessPool: the child died (killed, out of memory).
        Whatever ``fn`` raises, re-raised here.
    """
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(fn, *args, **kwargs).result()


@dataclass(frozen=True)
class RoundBench:
    """A round measured in its own process, with that process's peak memory and the floor."""

    measure: RoundMeasure
    memory: Memory
    idle: Memory | None

    def as_json(self) -> dict[str, object]:
        return {
            **self.measure.as_json(),
            "memory": asdict(self.memory),
            "idle_memory": None if self.idle is None else asdict(self.idle),
        }


def bench_round(config: RoundConfig, *, progress: bool = False, idle: bool = True) -> RoundBench:
    """Measure one round in a spawned child; then (``idle``) an idle child's floor.

    Raises:
        ParameterError: the configuration does not make a valid round (found
            here, before any child starts).
    """
    scenario(config)  # refuse a bad configuration in this process, with its message
    measure, memory = in_child(_round_child, config, progress)
    floor = in_child(_idle_child) if idle else None
    return RoundBench(measure=measure, memory=memory, idle=floor)


# ---------------------------------------------------------------------- Flower


@dataclass(frozen=True)
class FlowerRun:
    """Flower's SecAgg+ on the same n, d and dropouts, in its own child process."""

    result: FlowerRound
    memory: Memory
    seed: int

    def as_json(self) -> dict[str, object]:
        return {**self.result.as_json(), "memory": asdict(self.memory), "seed": self.seed}


def check_flower() -> str:
    """Flower's version, or raise with the install hint: before anything else runs.

    Raises:
        FlowerUnavailable: ``flwr`` cannot be imported.
    """
    from reference.bench.flower import (  # noqa: PLC0415
        INSTALL_HINT,
        FlowerUnavailable,
        flower_version,
    )

    version = flower_version()
    if version is None:
        raise FlowerUnavailable(
            "--compare-flower runs Flower's own SecAgg+, and Flower (flwr) is not installed; "
            f"it is an optional extra: {INSTALL_HINT}"
        )
    return version


def flower_seed(config: RoundConfig) -> int:
    """The seed of Flower's synthetic vectors, drawn from the round's seed through the XOF."""
    return Xof(seed_from_hex(config.seed), Tag("bench.flower")).uniform_int(1 << 32)


def run_flower(config: RoundConfig, *, shares: int, threshold: int) -> FlowerRun:
    """Flower's SecAgg+ round in a spawned child (see :mod:`reference.bench.flower`).

    Raises:
        FlowerUnavailable: ``flwr`` cannot be imported; ParameterError: Flower's
            pre-conditions fail (the message names the value).
    """
    seed = flower_seed(config)
    result, memory = in_child(_flower_child, config, shares, threshold, seed)
    return FlowerRun(result=result, memory=memory, seed=seed)


# ---------------------------------------------------------------------- targets


@dataclass(frozen=True, kw_only=True)
class Target:
    """One of ``sdl bench round``'s targets: the measured value, the limit, whether it holds.

    ``passed`` (and ``limit``) is None when the limit was not measured in this run: every
    baseline a target is judged against is measured in the same run, or not at all.
    """

    key: str
    what: str
    measured: float
    limit: float | None
    unit: str
    basis: str
    passed: bool | None


def targets(bench: RoundBench, flower: FlowerRun | None) -> list[Target]:
    """The five targets of ``sdl bench round``, evaluated on this run.

    (a) is judged only with sealing on (a plain round does not model the design);
    (e) only with sealing on (a plain round seals nothing).
    """
    m = bench.measure
    fld = FIELDS[m.config.field]
    client: float | None
    time_limit: float | None
    if flower is None:
        time_limit, time_basis = None, "not measured: run with --compare-flower"
        client, client_basis = None, "not measured: run with --compare-flower"
    else:
        f = flower.result
        time_limit = FLOWER_TIME_FRACTION * f.wall_seconds
        time_basis = f"{FLOWER_TIME_FRACTION} × Flower's {f.wall_seconds:.3f} s, this run"
        client, client_basis = f.client_median_seconds, "Flower's, this run"
        if not m.config.sealed:
            time_limit = None
            time_basis = "not measured: the channels were plain (run with --channels sealed)"
    share = m.channel_share
    if share is None:
        channel_limit, channel_basis = None, "not measured: the channels were plain"
    else:
        channel_limit = CHANNEL_SHARE
        channel_basis = (
            f"seal {m.seal_seconds:.3f} s + open {m.open_seconds:.3f} s of the round's "
            f"{m.wall_seconds:.3f} s, {m.config.suite}; the binary form apart, "
            f"{m.wire_seconds:.3f} s"
        )
    median = m.contributor_seconds.median
    bound = ELEMENTS_PER_COORDINATE * m.config.dimension * fld.ENCODED_SIZE
    most = m.bytes_sent["contributor"].max
    peak = bench.memory.ru_maxrss
    return [
        Target(
            key="a",
            what=f"round wall time, sealing on, <= {FLOWER_TIME_FRACTION} × Flower SecAgg+'s",
            measured=m.wall_seconds,
            limit=time_limit,
            unit="s",
            basis=time_basis,
            passed=None if time_limit is None else m.wall_seconds <= time_limit,
        ),
        Target(
            key="b",
            what="median contributor time <= Flower's median client time",
            measured=median,
            limit=client,
            unit="s",
            basis=client_basis,
            passed=None if client is None else median <= client,
        ),
        Target(
            key="c",
            what="bytes sent per contributor (the most any sent) <= 3·d·ENCODED_SIZE",
            measured=most,
            limit=float(bound),
            unit="B",
            basis=f"3 × {m.config.dimension:,} × {fld.ENCODED_SIZE} ({fld.__name__})",
            passed=most <= bound,
        ),
        Target(
            key="d",
            what="peak memory of the round's process <= 2 GB",
            measured=float(peak),
            limit=float(MEMORY_LIMIT),
            unit="B",
            basis="ru_maxrss of the child that ran the round",
            passed=peak <= MEMORY_LIMIT,
        ),
        Target(
            key="e",
            what=f"sealing and opening <= {CHANNEL_SHARE:.0%} of the round's wall time",
            measured=0.0 if share is None else share,
            limit=channel_limit,
            unit="share",
            basis=channel_basis,
            passed=None if share is None else share <= CHANNEL_SHARE,
        ),
    ]


def report_json(bench: RoundBench, flower: FlowerRun | None) -> dict[str, object]:
    """The one JSON object ``sdl bench round --json`` prints."""
    m = bench.measure
    body: dict[str, object] = {
        **bench.as_json(),
        "field_encoded_size": FIELDS[m.config.field].ENCODED_SIZE,
        "targets": [asdict(t) for t in targets(bench, flower)],
        "flower": None if flower is None else flower.as_json(),
    }
    if flower is not None:
        f = flower.result
        body["ratios"] = {
            "sdl_over_flower_wall": m.wall_seconds / f.wall_seconds,
            "sdl_over_flower_cpu": m.cpu_seconds / f.cpu_seconds,
            "sdl_over_flower_client_median": m.contributor_seconds.median / f.client_median_seconds,
            "sdl_over_plaintext_wall": m.round_over_plaintext,
            "flower_over_plaintext_wall": f.wall_seconds / m.plaintext_seconds,
        }
    return body


# ---------------------------------------------------------------------- the readable report


def _mb(n: float) -> str:
    """Bytes in the largest decimal unit (kB = 10^3 B, MB = 10^6 B, GB = 10^9 B) that fits."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= size:
            return f"{n / size:,.2f} {unit}"
    return f"{n:,.0f} B"


def _seconds(s: float) -> str:
    return f"{s:.3f} s" if s >= 0.01 else f"{s * 1e3:.3f} ms"


def _count(value: int | None) -> str:
    return "all" if value is None else str(value)


def format_round(bench: RoundBench, flower: FlowerRun | None) -> str:
    """The readable report of one round, its targets and (if run) Flower beside it."""
    m, c = bench.measure, bench.measure.config
    fld = FIELDS[c.field]
    precover = "yes, no top-up stage" if c.precover else "no: a top-up stage after dropouts"
    lines = [
        f"SDL round: n = {c.nodes} nodes, d = {c.dimension:,}, {c.field}, {c.mechanism} noise of "
        f"total variance σ*² = {c.target_variance} (seed {c.seed})",
        f"  committee: {m.aggregators} aggregators, coordinator node {m.coordinator}; Shamir "
        f"t = {c.threshold}, packing k = {c.packing}, quorum t + k = {c.threshold + c.packing}; "
        f"shares of {m.share_length:,} elements",
        f"  noise plan: T = {c.colluders} colluders, D = {c.dropouts} dropouts; noise sources: "
        f"{_count(c.noise_sources)}; precover: {precover}",
        f"  receivers: {_count(c.receivers)}; machines run: "
        + ", ".join(f"{n} {role}" for role, n in m.machines.items()),
        (
            f"  channels: sealed ({c.suite}): {m.frames_sealed:,} frames sealed, "
            f"{m.frames_opened:,} opened, {_mb(m.channel_bytes)} of frames; session setup "
            f"before the round (once per session, not in its time): "
            f"{_seconds(m.session_setup_seconds)}, {_mb(m.session_setup_bytes)} of key frames"
            if c.sealed
            else "  channels: plain (messages handed over unsealed)"
        ),
        f"  outcome: {m.status}"
        + (f" ({m.reason})" if m.reason else "")
        + f" over {m.released_contributors} contributors, {m.crashed} crashed; aggregate "
        f"{'correct' if m.aggregate_correct else 'WRONG'}; {m.messages:,} messages",
        "",
        f"  {'time (one process, every role)':<50}{'seconds':>12}{'share':>9}",
    ]
    labels = {
        "contribute": "contribute (contributors' start steps)",
        "collect": "collect (aggregators' share steps)",
        "decide": "decide (coordinator's steps)",
        "aggregate": "aggregate (aggregators' decision steps)",
        "reconstruct": "reconstruct (receivers' steps)",
        "other": "other steps",
    }
    for phase in PHASES:
        secs = m.phases[phase]
        share = secs / m.machine_seconds if m.machine_seconds else 0.0
        lines.append(f"    {labels[phase]:<48}{secs:12.3f}{share:9.1%}")
    lines += [
        f"    {'machine steps, total':<48}{m.machine_seconds:12.3f}",
        f"    {'simulator overhead (wall − machine)':<48}{m.simulator_overhead_seconds:12.3f}",
        f"    {'round wall time (start to last step, − inputs)':<48}{m.wall_seconds:12.3f}",
        _channel_line(m),
        f"    {'round CPU time (every thread)':<48}{m.cpu_seconds:12.3f}",
        f"    {f'inputs: {m.inputs_drawn} updates drawn (left out)':<48}{m.inputs_seconds:12.3f}",
        f"    {'message sizes counted, frames timed (left out)':<48}{m.observer_seconds:12.3f}",
        f"    {'simulator checks the result (left out)':<48}{m.verify_seconds:12.3f}",
        "",
        f"  {'per node':<50}{'median':>14}{'max':>14}",
    ]
    for label, spread in (
        ("contributor time", m.contributor_seconds),
        ("  of which noise sources", m.noise_source_seconds),
        ("  of which the others (update only)", m.other_contributor_seconds),
        ("aggregator time", m.aggregator_seconds),
    ):
        if spread.nodes:
            named = f"{label} ({spread.nodes})"
            lines.append(f"    {named:<48}{_seconds(spread.median):>14}{_seconds(spread.max):>14}")
    per_element = c.dimension * fld.ENCODED_SIZE
    for role in ("contributor", "aggregator", "coordinator", "node"):
        s = m.bytes_sent[role]
        label = f"bytes sent, {role}" if role != "node" else "bytes sent, node (all its roles)"
        lines.append(f"    {label:<48}{_mb(s.median):>14}{_mb(s.max):>14}")
    if m.frame_bytes_sent is not None:
        for role in ("contributor", "node"):
            s = m.frame_bytes_sent[role]
            label = f"frame bytes sent, {role}" + (" (all its roles)" if role == "node" else "")
            lines.append(f"    {label:<48}{_mb(s.median):>14}{_mb(s.max):>14}")
    lines += [
        "      (bytes of the binary wire form"
        + ("; frames: sealed, to other nodes" if m.frame_bytes_sent is not None else "")
        + f"; d·ENCODED_SIZE = {_mb(per_element)})",
        "",
        f"  plaintext baseline: the field sum of the same {m.plaintext_addends} updates, "
        f"{_seconds(m.plaintext_seconds)}; round / plaintext = {m.round_over_plaintext:,.1f}x",
        f"  peak memory: {_mb(bench.memory.ru_maxrss)} (ru_maxrss of the round's child"
        + ("" if bench.memory.hwm is None else f"; its own VmHWM {_mb(bench.memory.hwm)}")
        + ")"
        + (
            ""
            if bench.idle is None
            else f"; an idle child that only imports: {_mb(bench.idle.ru_maxrss)}"
        ),
    ]
    if flower is not None:
        lines += ["", *_format_flower(bench, flower)]
    lines += ["", "  targets"]
    for t in targets(bench, flower):
        verdict = {True: "PASS", False: "MISS", None: "n/a "}[t.passed]
        if t.unit == "s":
            value = _seconds(t.measured)
            limit = "?" if t.limit is None else _seconds(t.limit)
        elif t.unit == "share":
            value = f"{t.measured:.1%}" if t.passed is not None else "—"
            limit = "?" if t.limit is None else f"{t.limit:.0%}"
        else:
            value, limit = _mb(t.measured), "?" if t.limit is None else _mb(t.limit)
        lines.append(f"    {verdict}  ({t.key}) {t.what}: {value} vs {limit} ({t.basis})")
    return "\n".join(lines)


def _channel_line(m: RoundMeasure) -> str:
    """The time table's line for the channels: seconds and share of the round, or plain."""
    share = m.channel_share
    if share is None:
        return f"    {'channels: plain (nothing sealed)':<48}{0.0:12.3f}{'—':>9}"
    label = f"  of which sealing {_seconds(m.seal_seconds)} + opening {_seconds(m.open_seconds)}"
    wire = m.wire_seconds / m.wall_seconds if m.wall_seconds else math.inf
    return (
        f"    {label:<48}{m.channel_seconds:12.3f}{share:9.1%}\n"
        f"    {'  and the binary form they seal and open':<48}{m.wire_seconds:12.3f}{wire:9.1%}"
    )


def _format_flower(bench: RoundBench, flower: FlowerRun) -> list[str]:
    m, f = bench.measure, flower.result
    head = ("", "wall", "CPU", "contributor median", "bytes/contributor", "peak memory")
    rows = [
        ("SDL", _seconds(m.wall_seconds), _seconds(m.cpu_seconds),
         _seconds(m.contributor_seconds.median), _mb(m.bytes_sent["contributor"].median),
         _mb(bench.memory.ru_maxrss)),
        ("Flower", _seconds(f.wall_seconds), _seconds(f.cpu_seconds),
         _seconds(f.client_median_seconds), "—", _mb(flower.memory.ru_maxrss)),
        ("plaintext", _seconds(m.plaintext_seconds), "—", "—", "—", "—"),
    ]  # fmt: skip
    table = [f"    {r[0]:<10}" + "".join(f"{v:>20}" for v in r[1:]) for r in (head, *rows)]
    return [
        f"  beside Flower {f.flwr_version} SecAgg+ (num_shares {f.num_shares}, threshold "
        f"{f.threshold}), same n, d, dropouts, in its own child; aggregate "
        f"{'correct' if f.correct else 'WRONG'}",
        *table,
        f"    Flower's server (its wall time less its clients' calls): "
        f"{_seconds(f.server_seconds)}",
        f"    ratios: SDL / Flower wall {m.wall_seconds / f.wall_seconds:.3f}, CPU "
        f"{m.cpu_seconds / f.cpu_seconds:.3f}, contributor median "
        f"{m.contributor_seconds.median / f.client_median_seconds:.3f}; "
        f"Flower / plaintext {f.wall_seconds / m.plaintext_seconds:,.1f}x; "
        f"SDL / plaintext {m.round_over_plaintext:,.1f}x",
    ]


# ---------------------------------------------------------------------- scaling


def fit(config: RoundConfig, *, nodes: int, dimension: int) -> tuple[RoundConfig, tuple[str, ...]]:
    """``config`` at ``nodes`` and ``dimension``, shrinking only what ``nodes`` cannot hold.

    In order: the noise sources and receivers to at most n; D and T
    together, in proportion, so that the sources keep an honest survivor
    (``sources − D − T >= 1``); the committee to at most n; t and k
    together, in proportion, so that the committee less D dropouts still
    holds a quorum (``committee − D >= t + k``). Returns what changed, as text.
    """
    c = replace(config, nodes=nodes, dimension=dimension)
    changed: list[str] = []

    def cap(name: str, value: int | None) -> int | None:
        if value is not None and value > nodes:
            changed.append(f"{name} {value}→{nodes}")
            return nodes
        return value

    sources = cap("noise_sources", c.noise_sources)
    receivers = cap("receivers", c.receivers)
    pool = nodes if sources is None else sources
    dropouts, colluders = c.dropouts, c.colluders
    if dropouts + colluders > pool - 1:
        room = max(0, pool - 1)
        new_d = dropouts * room // (dropouts + colluders)
        new_t = min(colluders * room // (dropouts + colluders), room - new_d)
        changed.append(f"D {dropouts}→{new_d}, T {colluders}→{new_t}")
        dropouts, colluders = new_d, new_t
    committee = c.committee
    if committee is not None and committee > nodes:
        changed.append(f"committee {committee}→{nodes}")
        committee = nodes
    seats = (nodes if committee is None else committee) - dropouts
    threshold, packing = c.threshold, c.packing
    if threshold + packing > seats:
        room = max(2, seats)
        new_k = max(1, packing * room // (threshold + packing))
        new_t = max(1, min(threshold * room // (threshold + packing), room - new_k))
        changed.append(f"t {threshold}→{new_t}, k {packing}→{new_k}")
        threshold, packing = new_t, new_k
    fitted = replace(
        c,
        noise_sources=sources,
        receivers=receivers,
        dropouts=dropouts,
        colluders=colluders,
        committee=committee,
        threshold=threshold,
        packing=packing,
    )
    return fitted, tuple(changed)


@dataclass(frozen=True)
class ScalingPoint:
    """One round of a sweep: which sweep, what was shrunk, what it cost."""

    sweep: str
    changed: tuple[str, ...]
    bench: RoundBench

    def as_json(self) -> dict[str, object]:
        m = self.bench.measure
        c = m.config
        return {
            "sweep": self.sweep,
            "config": c.to_json(),
            "changed": list(self.changed),
            "released": m.released,
            "aggregate_correct": m.aggregate_correct,
            "wall_seconds": m.wall_seconds,
            "machine_seconds": m.machine_seconds,
            "cpu_seconds": m.cpu_seconds,
            "channel_seconds": m.channel_seconds,
            "wire_seconds": m.wire_seconds,
            "channel_share": m.channel_share,
            "channel_bytes": m.channel_bytes,
            "session_setup_seconds": m.session_setup_seconds,
            "seconds_per_coordinate": m.wall_seconds / c.dimension,
            "contributor_median_seconds": m.contributor_seconds.median,
            "aggregator_median_seconds": m.aggregator_seconds.median,
            "contributor_bytes_median": m.bytes_sent["contributor"].median,
            "contributor_bytes_max": m.bytes_sent["contributor"].max,
            "plaintext_seconds": m.plaintext_seconds,
            "round_over_plaintext": m.round_over_plaintext,
            "peak_memory_bytes": self.bench.memory.ru_maxrss,
        }


@dataclass(frozen=True)
class Linearity:
    """Is the round's cost linear in d? Time per coordinate, compared across the sweep.

    ``per_coordinate_ratio``: the round's wall time per coordinate at the
    largest d over that at the smallest; ``top_ratio``: the same for the
    largest d over the next largest, where fixed costs weigh least and a
    superlinear term would show first. Both at most ``LINEAR_TOLERANCE``:
    linear. ``slope`` is the least-squares slope of log(wall time) against
    log(d): 1 is linear; below 1, fixed costs still weigh at the small d.
    """

    smallest: int
    next_largest: int
    largest: int
    per_coordinate_ratio: float
    top_ratio: float
    slope: float
    linear: bool


@dataclass(frozen=True)
class Scaling:
    """Both sweeps of ``sdl bench round --scaling``."""

    base: RoundConfig
    points: tuple[ScalingPoint, ...]

    def sweep(self, name: str) -> list[ScalingPoint]:
        return [p for p in self.points if p.sweep == name]

    def linearity(self) -> Linearity | None:
        """The check in d, or None with fewer than two dimensions."""
        by_d = {p.bench.measure.config.dimension: p.bench.measure for p in self.sweep("dimension")}
        if len(by_d) < 2:
            return None
        ds = sorted(by_d)
        per = {d: by_d[d].wall_seconds / d for d in ds}
        xs = [math.log(d) for d in ds]
        ys = [math.log(max(by_d[d].wall_seconds, 1e-12)) for d in ds]
        mx, my = statistics.fmean(xs), statistics.fmean(ys)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
            (x - mx) ** 2 for x in xs
        )
        ratio, top = per[ds[-1]] / per[ds[0]], per[ds[-1]] / per[ds[-2]]
        return Linearity(
            smallest=ds[0],
            next_largest=ds[-2],
            largest=ds[-1],
            per_coordinate_ratio=ratio,
            top_ratio=top,
            slope=slope,
            linear=max(ratio, top) <= LINEAR_TOLERANCE,
        )

    def as_json(self) -> dict[str, object]:
        lin = self.linearity()
        return {
            "base": self.base.to_json(),
            "points": [p.as_json() for p in self.points],
            "linearity": None if lin is None else asdict(lin),
            "linear_tolerance": LINEAR_TOLERANCE,
        }


def run_scaling(
    config: RoundConfig,
    *,
    dimensions: Sequence[int] = SCALING_DIMENSIONS,
    nodes: Sequence[int] = SCALING_NODES,
    nodes_dimension: int = SCALING_NODES_DIMENSION,
    on_point: Callable[[ScalingPoint], None] = lambda _p: None,
) -> Scaling:
    """Sweep d at ``config.nodes``, then n at ``nodes_dimension``; each round in its own child.

    Raises:
        ParameterError: a point's configuration does not make a valid round
            (all are checked before the first runs).
    """
    plan = [("dimension", *fit(config, nodes=config.nodes, dimension=d)) for d in dimensions]
    plan += [("nodes", *fit(config, nodes=n, dimension=nodes_dimension)) for n in nodes]
    for _, point, _ in plan:
        scenario(point)
    points = []
    for sweep, point, changed in plan:
        done = ScalingPoint(sweep=sweep, changed=changed, bench=bench_round(point, idle=False))
        on_point(done)
        points.append(done)
    return Scaling(base=config, points=tuple(points))


def format_scaling(scaling: Scaling) -> str:
    """The readable table of both sweeps, with the linearity check in d."""
    head = (
        f"  {'n':>5}{'d':>11}{'M':>5}{'t':>4}{'k':>4}{'src':>5}{'D':>4}{'T':>4}"
        f"{'wall s':>10}{'µs/coord':>10}{'contrib. s':>12}{'contrib. MB':>13}{'B/(d·size)':>11}"
        f"{'peak MB':>9}{'chan.':>7}  ok"
    )
    lines = []
    for sweep, title in (("dimension", "time against d"), ("nodes", "time against n")):
        pts = scaling.sweep(sweep)
        if not pts:
            continue
        lines += [f"{title}:", head]
        for p in pts:
            m = p.bench.measure
            c = m.config
            size = FIELDS[c.field].ENCODED_SIZE
            lines.append(
                f"  {c.nodes:>5}{c.dimension:>11,}{m.aggregators:>5}{c.threshold:>4}"
                f"{c.packing:>4}{'all' if c.noise_sources is None else c.noise_sources:>5}"
                f"{c.dropouts:>4}{c.colluders:>4}{m.wall_seconds:10.3f}"
                f"{m.wall_seconds / c.dimension * 1e6:10.3f}"
                f"{m.contributor_seconds.median:12.4f}"
                f"{m.bytes_sent['contributor'].median / 1e6:13.3f}"
                f"{m.bytes_sent['contributor'].max / (c.dimension * size):11.3f}"
                f"{p.bench.memory.ru_maxrss / 1e6:9.0f}"
                f"{'plain' if m.channel_share is None else f'{m.channel_share:.0%}':>7}  "
                f"{'yes' if m.released and m.aggregate_correct else 'NO'}"
                + (f"   (shrunk: {'; '.join(p.changed)})" if p.changed else "")
            )
        lines.append("")
    lines += ["chan.: sealing and opening frames, as a share of the round's wall time", ""]
    lin = scaling.linearity()
    if lin is None:
        lines.append("linearity in d: needs two dimensions or more")
    else:
        compared = f"{lin.per_coordinate_ratio:.3f}x that at d = {lin.smallest:,}"
        if lin.next_largest != lin.smallest:  # three dimensions or more: two comparisons
            compared += f" and {lin.top_ratio:.3f}x that at d = {lin.next_largest:,}"
        both = "both " if lin.next_largest != lin.smallest else ""
        lines.append(
            f"linearity in d: the time per coordinate at d = {lin.largest:,} is {compared} "
            f"(log-log slope {lin.slope:.3f}); {'PASS' if lin.linear else 'MISS'}: linear "
            f"means {both}at most {LINEAR_TOLERANCE}x"
        )
    return "\n".join(lines)


def write_scaling(scaling: Scaling, out: Path) -> list[Path]:
    """Write ``out/scaling.json`` and ``out/scaling.png`` atomically; return their paths."""
    import json  # noqa: PLC0415

    out.mkdir(parents=True, exist_ok=True)
    data = out / "scaling.json"
    write_text_atomically(data, json.dumps(scaling.as_json(), indent=2, sort_keys=True) + "\n")
    png = out / "scaling.png"
    plot_scaling(scaling, png)
    return [data, png]


def _parameters(point: ScalingPoint) -> dict[str, str]:
    """The round parameters a scaling plot names, as the point's round ran them.

    The keys are the table's column heads: M the committee (aggregators that ran), t,
    k, src the noise sources, D the dropouts, T the colluders.
    """
    m = point.bench.measure
    c = m.config
    return {
        "M": str(m.aggregators),
        "t": str(c.threshold),
        "k": str(c.packing),
        "src": _count(c.noise_sources),
        "D": str(c.dropouts),
        "T": str(c.colluders),
    }


def shared_parameters(points: Sequence[ScalingPoint]) -> dict[str, str]:
    """The parameters every one of ``points`` ran with the same value, and that value."""
    if not points:
        return {}
    each = [_parameters(p) for p in points]
    return {k: v for k, v in each[0].items() if all(e[k] == v for e in each)}


def _named(parameters: Mapping[str, str]) -> str:
    return ", ".join(f"{k} = {v}" for k, v in parameters.items())


def plot_title(scaling: Scaling) -> str:
    """The scaling plot's title: only what holds for every round of both sweeps."""
    shared = shared_parameters(scaling.points)
    varies = (
        [k for k in _parameters(scaling.points[0]) if k not in shared] if scaling.points else []
    )
    title = f"sdl bench round: {scaling.base.field}" + (f", {_named(shared)}" if shared else "")
    if varies:
        title += f"; {', '.join(varies)} vary by round (see each panel)"
    return title


def _axis_title(scaling: Scaling, sweep: str) -> str:
    """One panel's title: the sweep's fixed n or d, and what its rounds all share."""
    pts = scaling.sweep(sweep)
    if sweep == "dimension":
        head = f"against d at n = {scaling.base.nodes}"
    else:
        at_d = pts[0].bench.measure.config.dimension if pts else SCALING_NODES_DIMENSION
        head = f"against n at d = {at_d:,}"
    everywhere = shared_parameters(scaling.points)
    here = {k: v for k, v in shared_parameters(pts).items() if k not in everywhere}
    return head + (f"; {_named(here)}" if here else "")


def _annotate_varying(
    ax: Any, pts: Sequence[ScalingPoint], xs: list[float], ys: list[float]
) -> None:
    """Beside each point, the parameters that differ between this sweep's rounds."""
    shared = shared_parameters(pts)
    for i, (point, x, y) in enumerate(zip(pts, xs, ys, strict=True)):
        varying = {k: v for k, v in _parameters(point).items() if k not in shared}
        if varying:
            left = i < len(pts) / 2
            ax.annotate(
                "\n".join(f"{k} = {v}" for k, v in varying.items()),
                (x, y),
                textcoords="offset points",
                xytext=(6 if left else -6, -8),
                ha="left" if left else "right",
                va="top",
                fontsize=6,
            )


def plot_scaling(scaling: Scaling, path: Path) -> None:
    """Wall time against d and against n, log-log, with a slope-1 reference line.

    The title names only what every round shared; what a sweep shrank (:func:`fit`) is
    written beside each of its points.
    """
    import matplotlib  # noqa: PLC0415  (slow to import; only plotting pays)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, sweep, key, label in (
        (axes[0], "dimension", "dimension", "d (coordinates)"),
        (axes[1], "nodes", "nodes", "n (nodes)"),
    ):
        pts = sorted(scaling.sweep(sweep), key=lambda p: getattr(p.bench.measure.config, key))
        xs = [float(getattr(p.bench.measure.config, key)) for p in pts]
        if xs:
            wall = [p.bench.measure.wall_seconds for p in pts]
            contrib = [p.bench.measure.contributor_seconds.median for p in pts]
            plain = [p.bench.measure.plaintext_seconds for p in pts]
            ax.plot(xs, wall, "o-", label="round wall time")
            ax.plot(xs, contrib, "s-", label="median contributor")
            ax.plot(xs, plain, "^-", label="plaintext sum")
            # Slope 1 through the largest point: what linear growth from there looks like.
            ref = [wall[-1] * x / xs[-1] for x in xs]
            ax.plot(xs, ref, "k--", linewidth=1, label="slope 1 (linear), through the last")
            _annotate_varying(ax, pts, xs, wall)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.legend(fontsize=8)
        ax.set_xlabel(label)
        ax.set_ylabel("seconds")
        ax.grid(True, which="both", alpha=0.3)
        ax.set_title(_axis_title(scaling, sweep), fontsize=9)
    fig.suptitle(plot_title(scaling), fontsize=10)
    with replacing(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight")
    plt.close(fig)


# ---------------------------------------------------------------------- argument types


def counts(text: str) -> tuple[int, ...]:
    """An argparse type: comma-separated positive integers (``10000,100000`` or ``1e4,1e5``)."""
    out = []
    for raw in text.split(","):
        item = raw.strip().replace("_", "")
        try:
            value = int(item) if "e" not in item.lower() else _integral(float(item))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated positive integers such as 10000,100000; got {text!r}"
            ) from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"expected positive integers; got {value} in {text!r}")
        out.append(value)
    return tuple(out)


def _integral(value: float) -> int:
    if not value.is_integer():
        raise ValueError(value)
    return int(value)


def count_or_all(text: str) -> int | None:
    """An argparse type: a positive integer, or ``all`` (None)."""
    if text.strip().lower() == "all":
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer or 'all'; got {text!r}"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'all'; got {value}")
    return value


__all__ = [
    "CHANNEL_MODES",
    "CHANNEL_SHARE",
    "PHASES",
    "SENDER_ROLE",
    "TARGET_VARIANCE",
    "FlowerRun",
    "Linearity",
    "Memory",
    "RoundBench",
    "RoundConfig",
    "RoundMeasure",
    "Scaling",
    "ScalingPoint",
    "Spread",
    "Target",
    "TimedUpdates",
    "bench_round",
    "check_flower",
    "count_or_all",
    "counts",
    "fit",
    "format_round",
    "format_scaling",
    "in_child",
    "measure_round",
    "peak_memory",
    "phase_of",
    "plot_scaling",
    "plot_title",
    "report_json",
    "run_flower",
    "run_scaling",
    "scenario",
    "shared_parameters",
    "targets",
    "write_scaling",
]
