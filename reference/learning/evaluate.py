"""The evaluation: a grid of learning runs, resumable, and the report written from its results.

Spec: spec/13-learning.md#evaluation

A grid is a list of :class:`RunSpec`: one :class:`~reference.learning.job.JobConfig`
each, written as a plain ``config`` mapping (the seed as hex, the data file by
its name inside the output folder). :func:`run_grid` runs the specs that are not
yet in ``DIR/results.jsonl`` in a process pool and appends each finished run to
that file as one sorted-key JSON line ``{"config", "seed_index", "result",
"wall_seconds", "bytes_form", "versions"}``; the ``config`` mapping is the run's key, so an
interrupted evaluation resumes where it stopped. ``versions`` (:func:`versions`) names what
the numbers depend on: a row whose versions are not the current ones (or that has none, as
rows written before the key existed) is stale, and counts as absent: :func:`run_grid` drops
it from the file and runs its config again, and :func:`write_report` leaves it out, so one
report never mixes numbers of two versions. :func:`write_report` reads only that file and
writes ``report.md`` plus PNG plots; it never runs anything.

Ctrl-C: the worker processes start with SIGINT ignored, so that only this process answers
it, by terminating the workers it started; every finished run is one whole line, written
with one ``write``, and the report is written atomically or not at all.

Seeds are never drawn: seed ``k`` is ``derive_seed(seed_from_hex("e"),
Tag("eval.seed", (k,)))`` (spec/03-xof.md#derived-seeds), and every run is
deterministic (``JobConfig.deterministic``, spec/13-learning.md#seeds-and-node-secrets:
the nodes' secrets derive from that seed), so every run of the evaluation can be
repeated exactly (timings aside), and none is private. A record's ``config`` leaves
``deterministic`` out (it is the default, True); a row without it, as in results
written before the key existed, is deterministic.
"""

from __future__ import annotations

import importlib.metadata
import json
import multiprocessing
import multiprocessing.pool
import signal
import statistics
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from protocol.errors import ParameterError
from protocol.params import VERSION as PROTOCOL_VERSION
from protocol.xof import Seed, Tag, derive_seed
from reference.common.atomic import replacing, write_text_atomically
from reference.common.seeds import seed_from_hex
from reference.common.signals import sigint_ignored
from reference.oracle.format import FORMAT as VECTORS_FORMAT

#: The evaluation's fixed seed; every run's seed is derived from it.
EVAL_SEED_HEX = "e"
#: The version of what an evaluation run computes. Bump it whenever a change alters what a
#: run computes for the same config: the noise streams or any other derived randomness, the
#: encoding, the accountant's defaults, the protocol, the training. Rows recorded under
#: another value are stale and run again (:func:`versions`). Rows without a ``versions``
#: object were recorded before it existed (version 1).
EVALUATION_VERSION = 2
RESULTS_FILE = "results.jsonl"
REPORT_FILE = "report.md"
#: How a record's ``bytes_sent`` were counted: the binary wire form of every message sent
#: (records without the key, from earlier versions, counted canonical JSON lines).
BYTES_FORM = "wire"
#: The 100-node runs' data: :func:`reference.learning.data.synthetic` written as NPZ.
SYNTHETIC_FILE = "synthetic.npz"
SYNTHETIC_RECORDS = 6000
SYNTHETIC_FEATURES = 16
SYNTHETIC_CLASSES = 10

EPSILONS = (0.5, 1.0, 2.0, 4.0, 8.0)
TRUSTS = ("none", "central", "distributed", "local")
NON_IID = "dirichlet:0.5"
DROPOUT_RATES = (0.0, 0.1, 0.3)
#: Backup coordinators of the dropout grid's failover runs (spec/09-protocol.md#failover).
FAILOVER = 2
COST_NODES = (5, 10, 20, 40)
COST_MODELS = ("softmax", "mlp")
COST_ROUNDS = 3
#: The ε of the target checks (the "Targets" section of the report).
TARGET_EPSILON = 2.0
TARGET_DISTRIBUTED = 0.90
TARGET_GAP = 0.015
TARGET_NONE = 0.96
#: "Local DP clearly below both": its mean at least this far below the lower of the two.
TARGET_LOCAL_MARGIN = 0.03


def versions() -> dict[str, Any]:
    """What a run's numbers depend on, recorded as every row's ``versions`` object.

    ``evaluation``: :data:`EVALUATION_VERSION`; ``sdl``: the installed package's version;
    ``protocol``: the protocol version messages carry (spec/09-protocol.md#messages);
    ``vectors``: the test vectors' format tag (spec/10-test-vectors.md#format).

    Raises:
        ParameterError: if the ``sdl`` package is not installed (its version is unknown).
    """
    try:
        sdl = importlib.metadata.version("sdl")
    except importlib.metadata.PackageNotFoundError as e:
        raise ParameterError(
            "the sdl package is not installed, so its version is unknown; "
            "install it (pip install -e .) to run or report an evaluation"
        ) from e
    return {
        "evaluation": EVALUATION_VERSION,
        "protocol": PROTOCOL_VERSION,
        "sdl": sdl,
        "vectors": VECTORS_FORMAT,
    }


def versions_text(v: Mapping[str, Any]) -> str:
    """``versions`` as the report states them: ``evaluation 2, protocol 1, sdl 0.1.0, …``."""
    return ", ".join(f"{k} {v[k]}" for k in sorted(v))


def is_current(record: Mapping[str, Any], current: Mapping[str, Any]) -> bool:
    """Whether ``record`` was computed with the ``current`` versions (no ``versions``: stale)."""
    return record.get("versions") == current


def eval_seed(k: int) -> Seed:
    """Seed number ``k``: ``derive_seed(seed_from_hex("e"), Tag("eval.seed", (k,)))``."""
    if type(k) is not int or k < 0:
        raise ParameterError(f"seed index must be an int >= 0; got {k!r}")
    return derive_seed(seed_from_hex(EVAL_SEED_HEX), Tag("eval.seed", (k,)))


# ---------------------------------------------------------------------- the grid


@dataclass(frozen=True, slots=True)
class RunSpec:
    """One run of the grid: a JobConfig as a JSON-able mapping, and its seed's index.

    ``config`` holds every field of JobConfig that differs from the default,
    plus ``seed`` (hex); ``data`` is a file name inside the output folder or absent.
    """

    seed_index: int
    overrides: tuple[tuple[str, Any], ...]

    @property
    def config(self) -> dict[str, Any]:
        return {**dict(self.overrides), "seed": eval_seed(self.seed_index).hex()}

    @property
    def key(self) -> str:
        return config_key(self.config)


def config_key(config: Mapping[str, Any]) -> str:
    """The resume key of a run: its config, less the values equal to JobConfig's defaults,
    as sorted-key, compact JSON (so ``dropout_rate=0.0`` and no ``dropout_rate`` are one run).
    """
    defaults = _defaults()
    kept = {k: v for k, v in config.items() if k not in defaults or defaults[k] != v}
    return json.dumps(kept, sort_keys=True, separators=(",", ":"))


def spec(seed_index: int, **overrides: Any) -> RunSpec:
    """A RunSpec from JobConfig keyword overrides (``data`` as a file name)."""
    from reference.learning.job import JobConfig  # noqa: PLC0415

    known = {f.name for f in fields(JobConfig)} - {"seed"}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ParameterError(f"not JobConfig fields: {', '.join(unknown)}")
    if overrides.get("deterministic", True) is not True:
        raise ParameterError(
            "the evaluation runs deterministic seeds only (reproducible, not private); "
            f"got deterministic={overrides['deterministic']!r}"
        )
    return RunSpec(seed_index=seed_index, overrides=tuple(sorted(overrides.items())))


def job_config(config: Mapping[str, Any], *, out: Path) -> Any:
    """The JobConfig of a ``config`` mapping; ``data`` is resolved inside ``out``."""
    from reference.learning.job import JobConfig  # noqa: PLC0415

    kwargs = dict(config)
    kwargs["seed"] = Seed(bytes.fromhex(kwargs["seed"]))
    if kwargs.get("data") is not None:
        kwargs["data"] = out / kwargs["data"]
    return JobConfig(**kwargs)


@dataclass(frozen=True, slots=True)
class GridPlan:
    """The sizes of an evaluation grid (the full one, or ``--quick``)."""

    epsilons: tuple[float, ...]
    seeds: int
    rounds: int | None  # None: the job's default
    non_iid_epsilons: tuple[float, ...]
    non_iid_seeds: int
    node_level_epsilons: tuple[float, ...]
    node_level_seeds: int
    node_level_big: bool
    dropout_rates: tuple[float, ...]
    dropout_seeds: int
    cost_nodes: tuple[int, ...]
    cost_rounds: int


FULL = GridPlan(
    epsilons=EPSILONS,
    seeds=5,
    rounds=None,
    non_iid_epsilons=EPSILONS,
    non_iid_seeds=3,
    node_level_epsilons=(2.0, 8.0),
    node_level_seeds=3,
    node_level_big=True,
    dropout_rates=DROPOUT_RATES,
    dropout_seeds=5,
    cost_nodes=COST_NODES,
    cost_rounds=COST_ROUNDS,
)
QUICK = GridPlan(
    epsilons=(1.0, 2.0),
    seeds=2,
    rounds=20,
    non_iid_epsilons=(2.0,),
    non_iid_seeds=2,
    node_level_epsilons=(2.0,),
    node_level_seeds=1,
    node_level_big=False,
    dropout_rates=(0.0, 0.3),
    dropout_seeds=2,
    cost_nodes=(5, 10),
    cost_rounds=2,
)


def with_seeds(plan: GridPlan, seeds: int) -> GridPlan:
    """``plan`` with ``seeds`` seeds for every accuracy grid (node level: at most ``seeds``)."""
    if type(seeds) is not int or seeds < 1:
        raise ParameterError(f"seeds must be an int >= 1; got {seeds!r}")
    return GridPlan(
        **{
            **{f.name: getattr(plan, f.name) for f in fields(GridPlan)},
            "seeds": seeds,
            "dropout_seeds": seeds,
            "non_iid_seeds": seeds,
            "node_level_seeds": min(seeds, plan.node_level_seeds),
        }
    )


def grid(plan: GridPlan) -> list[RunSpec]:
    """Every run of ``plan``, most important first, duplicates removed.

    Order: the ε = 2 IID row for all four trust models (the target checks),
    the dropout runs, the rest of accuracy against ε (IID), the cost runs,
    node level, and accuracy against ε at the non-IID split.
    """
    base: dict[str, Any] = {} if plan.rounds is None else {"rounds": plan.rounds}
    runs: list[RunSpec] = []

    def accuracy_grid(epsilons: Iterable[float], partition: str, seeds: int) -> None:
        # Seed-major: a grid cut short still has every cell, with fewer seeds.
        extra = {} if partition == "iid" else {"partition": partition}
        for k in range(seeds):
            runs.append(spec(k, trust="none", **extra, **base))
            for eps in epsilons:
                for trust in TRUSTS[1:]:
                    runs.append(spec(k, trust=trust, epsilon=eps, **extra, **base))

    accuracy_grid([TARGET_EPSILON], "iid", plan.seeds)
    for rate in plan.dropout_rates:
        for k in range(plan.dropout_seeds):
            runs.append(spec(k, trust="distributed", epsilon=TARGET_EPSILON,
                             dropout_rate=rate, **base))  # fmt: skip
    for rate in plan.dropout_rates:
        for k in range(plan.dropout_seeds if rate > 0 else 0):
            runs.append(spec(k, trust="distributed", epsilon=TARGET_EPSILON,
                             dropout_rate=rate, failover=FAILOVER, **base))  # fmt: skip
    accuracy_grid(plan.epsilons, "iid", plan.seeds)
    for model in COST_MODELS:
        for nodes in plan.cost_nodes:
            runs.append(spec(0, trust="distributed", model=model, nodes=nodes,
                             rounds=plan.cost_rounds, measure_bytes=True))  # fmt: skip
    for k in range(plan.node_level_seeds):
        for eps in plan.node_level_epsilons:
            for trust in ("central", "distributed"):
                runs.append(spec(k, trust=trust, unit="node", epsilon=eps, **base))
                if plan.node_level_big:
                    runs.append(spec(k, trust=trust, unit="node", epsilon=eps, nodes=100,
                                     data=SYNTHETIC_FILE, **base))  # fmt: skip
    accuracy_grid(plan.non_iid_epsilons, NON_IID, plan.non_iid_seeds)
    seen: set[str] = set()
    unique = []
    for r in runs:
        if r.key not in seen:
            seen.add(r.key)
            unique.append(r)
    return unique


def write_synthetic(out: Path) -> Path:
    """Write the 100-node runs' data to ``out/synthetic.npz`` (deterministic; atomic)."""
    from reference.learning.data import synthetic  # noqa: PLC0415

    data = synthetic(
        records=SYNTHETIC_RECORDS,
        features=SYNTHETIC_FEATURES,
        classes=SYNTHETIC_CLASSES,
        seed=derive_seed(seed_from_hex(EVAL_SEED_HEX), Tag("eval.synthetic")),
    )
    path = out / SYNTHETIC_FILE
    with replacing(path, suffix=".npz") as tmp:
        np.savez_compressed(tmp, x=np.asarray(data.x, dtype=np.float32), y=data.y)
    return path


# ---------------------------------------------------------------------- running


def read_results(path: Path) -> list[dict[str, Any]]:
    """The records of a results file; a torn last line (no newline) is dropped from the file.

    Raises:
        ParameterError: if a complete line is not a result record.
    """
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    if text and not text.endswith("\n"):
        # An interrupted append: cut the torn line so the next append starts clean.
        keep = text.rfind("\n") + 1
        with path.open("r+b") as f:
            f.truncate(len(text[:keep].encode("utf-8")))
        text = text[:keep]
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise ParameterError(f"{path}:{number}: not JSON ({e})") from e
        if not isinstance(record, dict) or not {"config", "result"} <= record.keys():
            raise ParameterError(f"{path}:{number}: expected an object with config and result")
        records.append(record)
    return records


def _execute(item: tuple[RunSpec, str]) -> dict[str, Any]:
    """Run one spec (in a worker process); return its result record."""
    from reference.learning.job import run_job  # noqa: PLC0415

    run, out = item
    started = time.perf_counter()
    result = run_job(job_config(run.config, out=Path(out)))
    return {
        "config": run.config,
        "seed_index": run.seed_index,
        "bytes_form": BYTES_FORM,
        "result": compact(result.to_json()),
        "versions": versions(),
        "wall_seconds": time.perf_counter() - started,
    }


#: The per-round quantities the report averages (everything else of a round is dropped).
HISTORY_MEANS = (
    "seconds_local",
    "seconds_aggregate",
    "seconds_update",
    "messages",
    "bytes_sent",
    "dropouts",
)


def compact(result: dict[str, Any]) -> dict[str, Any]:
    """A run's result with its per-round history replaced by one row of per-round means.

    The report only averages these over rounds (:func:`_history_mean`), so one
    row of means gives it the same numbers and keeps ``results.jsonl`` small.
    """
    history = result.get("history") or []
    if len(history) <= 1:
        return result
    row = {k: statistics.fmean(float(h[k]) for h in history) for k in HISTORY_MEANS}
    return {**result, "history": [row], "history_rounds": len(history)}


def _init_worker() -> None:
    from threadpoolctl import threadpool_limits  # noqa: PLC0415

    # Ctrl-C is the parent's to answer (it terminates the workers); a worker the pool
    # starts again later does not inherit the ignored SIGINT, so ignore it here too.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threadpool_limits(limits=1, user_api="blas")


@contextmanager
def _worker_pool(processes: int) -> Iterator[multiprocessing.pool.Pool]:
    """A pool of ``processes`` spawned workers, closed when the block ends, terminated when
    it is left by an exception (Ctrl-C among them); joined either way.

    The workers are started with SIGINT ignored, which they inherit: a Ctrl-C at a terminal
    reaches the whole foreground process group, and only this process answers it. A
    second Ctrl-C does not cut the terminating short.
    """
    with sigint_ignored():
        pool = multiprocessing.get_context("spawn").Pool(processes, initializer=_init_worker)
    completed = False
    try:
        yield pool
        completed = True
    finally:
        with sigint_ignored():
            if completed:
                pool.close()
            else:
                pool.terminate()
            pool.join()


def _append_line(f: Any, record: Mapping[str, Any]) -> None:
    """Append ``record`` to the unbuffered file ``f`` as one JSON line, in one ``write``."""
    data = memoryview((json.dumps(record, sort_keys=True) + "\n").encode("utf-8"))
    while data:  # a regular file takes it whole; a short write would only continue it
        data = data[f.write(data) :]


@dataclass(frozen=True, slots=True)
class GridOutcome:
    """What :func:`run_grid` did."""

    ran: int
    skipped: int
    seconds: float


def run_grid(
    runs: Sequence[RunSpec],
    *,
    out: Path,
    workers: int,
    on_done: Callable[[dict[str, Any]], None] | None = None,
) -> GridOutcome:
    """Run every spec not yet in ``out/results.jsonl``; append each as it finishes.

    A row of other versions than :func:`versions` (or of none) is stale: it is dropped
    from the file first (atomically), and its config runs again.

    Pre-conditions:
        - ``workers >= 1``; with 1 the runs happen in this process.
    Raises:
        ParameterError: if ``workers < 1`` or the results file is corrupt.
        KeyboardInterrupt: on Ctrl-C, once the workers are terminated; the runs finished
            before it are in the file, each a whole line.
    """
    if type(workers) is not int or workers < 1:
        raise ParameterError(f"workers must be an int >= 1; got {workers!r}")
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    results = out / RESULTS_FILE
    current = versions()
    records = read_results(results)
    fresh = [r for r in records if is_current(r, current)]
    if len(fresh) < len(records):
        write_text_atomically(results, "".join(json.dumps(r, sort_keys=True) + "\n" for r in fresh))
    done = {config_key(r["config"]) for r in fresh}
    todo = [r for r in runs if r.key not in done]
    if any(dict(r.overrides).get("data") == SYNTHETIC_FILE for r in todo):
        write_synthetic(out)
    items = [(r, str(out)) for r in todo]

    with results.open("ab", buffering=0) as f:

        def append(record: dict[str, Any]) -> None:
            _append_line(f, record)
            if on_done is not None:
                on_done(record)

        if workers == 1 or len(items) <= 1:
            for item in items:
                append(_execute(item))
        else:
            with _worker_pool(min(workers, len(items))) as pool:
                for record in pool.imap_unordered(_execute, items):
                    append(record)
    return GridOutcome(
        ran=len(todo), skipped=len(runs) - len(todo), seconds=time.perf_counter() - started
    )


# ---------------------------------------------------------------------- the report


@dataclass(frozen=True, slots=True)
class Stat:
    """Mean and sample standard deviation (ddof = 1; 0 for one value) of ``n`` values."""

    mean: float
    std: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Stat:
        if not values:
            raise ParameterError("a statistic needs at least one value; got none")
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        return cls(mean=statistics.fmean(values), std=std, n=len(values))

    def text(self, digits: int = 3) -> str:
        return f"{self.mean:.{digits}f} ± {self.std:.{digits}f} (n={self.n})"


def _defaults() -> dict[str, Any]:
    """JobConfig's defaults (every field but the seed has one)."""
    from reference.learning.job import JobConfig  # noqa: PLC0415

    return {f.name: f.default for f in fields(JobConfig) if f.name != "seed"}


def _cfg(record: Mapping[str, Any]) -> dict[str, Any]:
    """A record's full JobConfig values: the defaults, overridden by its config."""
    return {**_defaults(), **record["config"]}


def select(records: Iterable[Mapping[str, Any]], **want: Any) -> list[Mapping[str, Any]]:
    """The records whose full config has every ``want`` value."""
    return [r for r in records if all(_cfg(r).get(k) == v for k, v in want.items())]


def _main_rounds(records: Sequence[Mapping[str, Any]]) -> int:
    """The rounds of the accuracy grids: those of the first none/iid/record run (or the default)."""
    found = select(records, trust="none", partition="iid", unit="record", nodes=10)
    return int(_cfg(found[0])["rounds"] if found else _defaults()["rounds"])


def _accuracy_cells(
    records: Sequence[Mapping[str, Any]], *, partition: str, rounds: int
) -> dict[tuple[str, float | None], Stat]:
    """``(trust, ε) -> accuracy`` (ε None for trust none) of the 10-node record-level runs."""
    cells: dict[tuple[str, float | None], list[float]] = {}
    for r in select(records, partition=partition, unit="record", nodes=10, rounds=rounds,
                    dropout_rate=0.0, model="softmax", data=None, measure_bytes=False):  # fmt: skip
        c = _cfg(r)
        eps = None if c["trust"] == "none" else float(c["epsilon"])
        cells.setdefault((c["trust"], eps), []).append(float(r["result"]["accuracy"]))
    return {k: Stat.of(v) for k, v in cells.items()}


def _accuracy_table(
    cells: Mapping[tuple[str, float | None], Stat],
) -> tuple[list[str], list[float]]:
    epsilons = sorted({e for _, e in cells if e is not None})
    head = "| trust | " + " | ".join(f"ε = {e:g}" for e in epsilons) + " |"
    lines = [head, "|---|" + "---|" * len(epsilons)]
    for trust in TRUSTS:
        if trust == "none":
            if (trust, None) in cells:
                s = cells[(trust, None)]
                lines.append(
                    f"| none (no privacy; any ε) | {s.text()} |" + " |" * (len(epsilons) - 1)
                )
            continue
        row = [cells[(trust, e)].text() if (trust, e) in cells else "–" for e in epsilons]
        if any(x != "–" for x in row):
            lines.append(f"| {trust} | " + " | ".join(row) + " |")
    return lines, epsilons


@dataclass(frozen=True, slots=True)
class TargetCheck:
    """One measured target line of the report."""

    name: str
    passed: bool | None  # None: not measured
    detail: str

    def line(self) -> str:
        verdict = {True: "PASS", False: "FAIL", None: "NOT MEASURED"}[self.passed]
        return f"- **{verdict}** {self.name}: {self.detail}"


def target_checks(cells: Mapping[tuple[str, float | None], Stat]) -> list[TargetCheck]:
    """SDL's accuracy targets at ε = 2, 10 nodes, digits, record level, IID."""
    dist = cells.get(("distributed", TARGET_EPSILON))
    cent = cells.get(("central", TARGET_EPSILON))
    local = cells.get(("local", TARGET_EPSILON))
    none = cells.get(("none", None))
    checks = []
    checks.append(
        TargetCheck(
            f"distributed accuracy ≥ {TARGET_DISTRIBUTED:.2f} at ε = 2",
            None if dist is None else dist.mean >= TARGET_DISTRIBUTED,
            "no runs" if dist is None else f"mean {dist.mean:.4f} over {dist.n} seeds",
        )
    )
    if dist is None or cent is None:
        checks.append(TargetCheck("distributed within 1.5 points of central", None, "no runs"))
    else:
        gap = cent.mean - dist.mean
        checks.append(
            TargetCheck(
                "distributed within 1.5 points of central at ε = 2",
                abs(gap) <= TARGET_GAP + 1e-9,  # 1e-9: float rounding of the means only
                f"central {cent.mean:.4f} − distributed {dist.mean:.4f} = {gap * 100:+.2f} points",
            )
        )
    if local is None or dist is None or cent is None:
        checks.append(TargetCheck("local clearly below both", None, "no runs"))
    else:
        below = min(dist.mean, cent.mean) - local.mean
        checks.append(
            TargetCheck(
                f"local clearly below both at ε = 2 (≥ {TARGET_LOCAL_MARGIN * 100:g} points "
                "below the lower)",
                below >= TARGET_LOCAL_MARGIN,
                f"local {local.mean:.4f}, {below * 100:.2f} points below "
                f"min(central, distributed) = {min(dist.mean, cent.mean):.4f}",
            )
        )
    checks.append(
        TargetCheck(
            f"non-private accuracy ≥ {TARGET_NONE:.2f}",
            None if none is None else none.mean >= TARGET_NONE,
            "no runs" if none is None else f"mean {none.mean:.4f} over {none.n} seeds",
        )
    )
    return checks


def _first_of_each(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per run (the first): a run listed twice must not count twice."""
    seen: set[str] = set()
    kept = []
    for r in records:
        key = config_key(r["config"])
        if key not in seen:
            seen.add(key)
            kept.append(r)
    return kept


def _history_mean(record: Mapping[str, Any], key: str) -> float:
    return statistics.fmean(float(h[key]) for h in record["result"]["history"])


def write_report(
    out: Path,
    *,
    wall_seconds: float | None = None,
    notes: Sequence[str] = (),
    plots: bool = True,
    runs: Sequence[RunSpec] | None = None,
    plan: GridPlan | None = None,
) -> Path:
    """Write ``out/report.md`` (and the PNG plots) from ``out/results.jsonl`` alone.

    ``wall_seconds`` is the wall time of the invocation that wrote it, if any;
    with ``runs``, only the records of those runs are reported (a quick grid
    and the full one may share a results file). ``plan`` is the grid the
    Configuration section describes (default :data:`FULL`). Only the rows computed with
    the current :func:`versions` are reported; the report names those versions.
    """
    current = versions()
    records = read_results(out / RESULTS_FILE)
    stale = sum(1 for r in records if not is_current(r, current))
    records = [r for r in records if is_current(r, current)]
    if runs is not None:
        keys = {r.key for r in runs}
        records = [r for r in records if config_key(r["config"]) in keys]
    records = _first_of_each(records)
    rounds = _main_rounds(records)
    iid = _accuracy_cells(records, partition="iid", rounds=rounds)
    non_iid = _accuracy_cells(records, partition=NON_IID, rounds=rounds)
    lines = ["# SDL evaluation", ""]
    lines += [
        "Generated by `sdl evaluate` (reference/learning/evaluate.py) from "
        f"`{RESULTS_FILE}` ({len(records)} runs; one JSON line per run, keyed by its config).",
        "",
        f"- Sum of the runs' own times: {sum(float(r['wall_seconds']) for r in records):.0f} s"
        + (
            f"; wall time of the `sdl evaluate` invocation that ran them: {wall_seconds:.0f} s"
            if wall_seconds is not None
            else ""
        )
        + ".",
        f"- Versions: {versions_text(current)} (every run reported was computed with "
        "these; `versions` in each line of "
        f"`{RESULTS_FILE}`)"
        + (f"; {stale} lines of other versions left out" if stale else "")
        + ".",
        "- Cells are mean ± sample standard deviation (ddof = 1) over n seeds.",
        '- Seeds: seed k = `derive_seed(seed_from_hex("e"), Tag("eval.seed", (k,)))`, '
        "k = 0, 1, …; no unseeded randomness.",
        "- Deterministic seeds: reproducible, not private. Every run derives its nodes' "
        "secrets (sampling, rounding, shares, noise) from its public seed "
        "(`deterministic=True`); a private `sdl run` draws them from the OS instead.",
        "",
    ]
    for note in notes:
        lines.append(f"> {note}")
        lines.append("")
    lines += ["## Targets, as measured", ""]
    lines += [c.line() for c in target_checks(iid)]
    lines += ["", "Setting: digits, 10 nodes, IID, record level, Skellam, δ = 1e-5, "
              f"{rounds} rounds; same hyperparameters for every trust model.", ""]  # fmt: skip

    for title, cells, name in (
        ("Accuracy against ε (IID)", iid, "accuracy_vs_epsilon_iid.png"),
        (f"Accuracy against ε (non-IID, `{NON_IID}`)", non_iid, "accuracy_vs_epsilon_noniid.png"),
    ):
        lines += [f"## {title}", ""]
        if not cells:
            lines += ["No runs.", ""]
            continue
        table, _ = _accuracy_table(cells)
        lines += [*table, "", f"![{title}]({name})", ""]
        if cells is non_iid:
            lines += _partition_twins(records)
        if plots:
            _plot_accuracy(cells, out / name, title=title)

    lines += _node_level_section(records)
    lines += _dropout_section(records, rounds=rounds, out=out, plots=plots)
    lines += _cost_section(records, out=out, plots=plots)
    lines += _config_section(FULL if plan is None else plan)
    path = out / REPORT_FILE
    write_text_atomically(path, "\n".join(lines) + "\n")
    return path


def _partition_twins(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """How many non-IID runs have exactly the accuracy of their IID twin (same config, seed)."""
    iid = {
        config_key({k: v for k, v in r["config"].items() if k != "partition"}): r
        for r in select(records, partition="iid")
    }
    gaps = []
    for r in select(records, partition=NON_IID):
        twin = iid.get(config_key({k: v for k, v in r["config"].items() if k != "partition"}))
        if twin is not None:
            gaps.append(abs(float(r["result"]["accuracy"]) - float(twin["result"]["accuracy"])))
    if not gaps:
        return []
    same = sum(1 for g in gaps if g == 0)
    rest = (
        ""
        if same == len(gaps)
        else f" The other {len(gaps) - same} differ by at most {max(gaps) * 100:.2f} points "
        "(a residual difference we have not traced)."
    )
    return [
        f"Measured: {same} of {len(gaps)} non-IID runs end with exactly the test accuracy "
        f"of the IID run with the same config and seed.{rest} With full-batch training "
        "(`sampling_rate = 1`) at record level, every record's clipped gradient enters "
        "every round's sum whichever node holds it, so the split can hardly change the "
        "released aggregate; a non-IID split should matter with Poisson subsampling "
        "(`sampling_rate < 1`) or at node level, which this grid does not cover.",
        "",
    ]


def _node_level_section(records: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = ["## Node-level privacy", ""]
    rows: dict[tuple[int, str, float, str], list[Mapping[str, Any]]] = {}
    for r in select(records, unit="node"):
        c = _cfg(r)
        data = "digits" if c["data"] is None else str(r["result"]["dataset"]).split("/")[0]
        rows.setdefault((int(c["nodes"]), data, float(c["epsilon"]), c["trust"]), []).append(r)
    if not rows:
        return [*lines, "No runs.", ""]
    lines += [
        "One node's whole data is the unit: each node's summed clipped gradient is clipped "
        "to node_clip = clip · max(1, expected batch / nodes) and noised at that sensitivity. "
        "Both datasets have 10 classes, so chance accuracy is about 0.10.",
        "",
        "| nodes | data | ε target | trust | accuracy | realized ε |",
        "|---|---|---|---|---|---|",
    ]
    for (nodes, data, eps, trust), rs in sorted(rows.items()):
        acc = Stat.of([float(r["result"]["accuracy"]) for r in rs])
        real = Stat.of([float(r["result"]["epsilon"]) for r in rs])
        lines.append(f"| {nodes} | {data} | {eps:g} | {trust} | {acc.text()} | {real.text(3)} |")
    return [*lines, ""]


def _dropout_section(
    records: Sequence[Mapping[str, Any]], *, rounds: int, out: Path, plots: bool
) -> list[str]:
    lines = ["## Dropouts (distributed, ε = 2, IID, 10 nodes)", ""]
    rows: dict[tuple[float, int], list[Mapping[str, Any]]] = {}
    for r in select(records, trust="distributed", epsilon=TARGET_EPSILON, partition="iid",
                    unit="record", nodes=10, rounds=rounds, model="softmax", data=None,
                    measure_bytes=False):  # fmt: skip
        c = _cfg(r)
        rows.setdefault((float(c["dropout_rate"]), int(c["failover"])), []).append(r)
    if not rows:
        return [*lines, "No runs.", ""]
    lines += [
        "The noise is planned for D dropouts (about 3 standard deviations above the mean); "
        "the realized ε is the accountant's value for the rounds actually released. With "
        f"backups (`sdl run --failover {FAILOVER}`), the next committee members take over a "
        "crashed coordinator (spec/09-protocol.md#failover); a round then needs a majority "
        "of the committee alive, which caps the released rounds near 85 % at a dropout rate "
        "of 0.3.",
        "",
        "| dropout rate | backups | accuracy | realized ε | released rounds | dropouts per round |",
        "|---|---|---|---|---|---|",
    ]
    stats: dict[float, tuple[Stat, Stat]] = {}
    for (rate, backups), rs in sorted(rows.items()):
        acc = Stat.of([float(r["result"]["accuracy"]) for r in rs])
        real = Stat.of([float(r["result"]["epsilon"]) for r in rs])
        rel = Stat.of([float(r["result"]["released_rounds"]) for r in rs])
        drops = Stat.of([_history_mean(r, "dropouts") for r in rs])
        if backups == 0:
            stats[rate] = (acc, real)
        lines.append(
            f"| {rate:g} | {backups} | {acc.text()} | {real.text()} | {rel.text(1)} "
            f"| {drops.text(2)} |"
        )
    lines += ["", "![dropouts](dropouts.png)", ""]
    if plots:
        _plot_dropouts(stats, out / "dropouts.png")
    return lines


def _cost_section(records: Sequence[Mapping[str, Any]], *, out: Path, plots: bool) -> list[str]:
    lines = ["## Cost per round (distributed, bytes measured)", ""]
    rows: dict[tuple[str, int], list[Mapping[str, Any]]] = {}
    for r in select(records, measure_bytes=True, trust="distributed"):
        c = _cfg(r)
        rows.setdefault((c["model"], int(c["nodes"])), []).append(r)
    if not rows:
        return [*lines, "No runs.", ""]
    lines += [
        "Per round, averaged over the run's rounds (the first round included). local: "
        "sampling, per-example gradients, clipping, encoding; aggregate: the whole protocol "
        "round in the simulator (sharing, noise, partial sums, reconstruction) for all nodes "
        f"in one process; update: decoding and the model step. Bytes: {_bytes_form(rows)} "
        "of every message sent, divided by the number of nodes.",
        "",
        "| model | nodes | model size | local s | aggregate s | update s | messages | "
        "kB sent per node |",
        "|---|---|---|---|---|---|---|---|",
    ]
    series: dict[str, list[tuple[int, float, float, float, float]]] = {}
    for (model, nodes), rs in sorted(rows.items()):
        loc = statistics.fmean(_history_mean(r, "seconds_local") for r in rs)
        agg = statistics.fmean(_history_mean(r, "seconds_aggregate") for r in rs)
        upd = statistics.fmean(_history_mean(r, "seconds_update") for r in rs)
        msgs = statistics.fmean(_history_mean(r, "messages") for r in rs)
        kb = statistics.fmean(_history_mean(r, "bytes_sent") for r in rs) / nodes / 1000
        size = _model_size(rs[0])
        series.setdefault(model, []).append((nodes, loc, agg, upd, kb))
        lines.append(
            f"| {model} | {nodes} | {size} | {loc:.3f} | {agg:.3f} | {upd:.4f} | {msgs:.0f} "
            f"| {kb:.1f} |"
        )
    lines += ["", "![cost per round](cost.png)", ""]
    if plots:
        _plot_cost(series, out / "cost.png")
    return lines


def _bytes_form(rows: Mapping[Any, Sequence[Mapping[str, Any]]]) -> str:
    """How the cost runs' bytes were counted: runs recorded with ``bytes_form = "wire"`` count
    the binary wire form; earlier runs (no such key) counted canonical JSON transcript lines.
    """
    forms = {r.get("bytes_form", "json") for rs in rows.values() for r in rs}
    if forms == {BYTES_FORM}:
        return "the binary wire form (`protocol.messages.wire_size`)"
    if forms == {"json"}:
        return "the canonical JSON transcript line (as recorded by an earlier version)"
    return "mixed: some runs count the binary wire form, older ones canonical JSON lines"


def _model_size(record: Mapping[str, Any]) -> str:
    """The model's parameter count, recomputed from its config (digits: 64 features, 10 classes)."""
    from reference.learning.models import make_model  # noqa: PLC0415

    c = _cfg(record)
    if c["data"] is not None:
        return "?"
    return str(make_model(c["model"], 64, 10).size)


def _values(xs: Iterable[float]) -> str:
    return "{" + ", ".join(f"{x:g}" for x in xs) + "}"


def _config_section(plan: GridPlan) -> list[str]:
    """The Configuration section: JobConfig's defaults and the grids of ``plan``."""
    defaults = _defaults()
    rounds = f"{plan.rounds} rounds" if plan.rounds is not None else f"{defaults['rounds']} rounds"
    which = "full" if plan.rounds is None else "quick (`--quick`)"  # FULL or QUICK, any seeds
    big = (
        f"; 100 nodes on `{SYNTHETIC_FILE}` = `data.synthetic(records="
        f"{SYNTHETIC_RECORDS}, features={SYNTHETIC_FEATURES}, classes={SYNTHETIC_CLASSES}, "
        'seed=derive_seed(seed_from_hex("e"), Tag("eval.synthetic")))` stored as float32'
        if plan.node_level_big
        else ""
    )
    return [
        "## Configuration",
        "",
        "Every run is `run_job(JobConfig(...))` with these defaults, overridden per grid as "
        "listed (the exact config of each run is the `config` object of its line in "
        f"`{RESULTS_FILE}`):",
        "",
        "```",
        *(f"{k} = {v!r}" for k, v in defaults.items()),
        "```",
        "",
        f"Grids of the {which} evaluation, {rounds} for the accuracy grids (duplicates run "
        "once: the ε = 2 IID distributed runs are also the dropout-0 runs):",
        "",
        f"1. accuracy vs ε: ε ∈ {_values(plan.epsilons)}, trust central/distributed/local, "
        f"plus none once per seed; IID; 10 nodes; digits; {plan.seeds} seeds.",
        f"2. the same with `partition = {NON_IID}`, ε ∈ {_values(plan.non_iid_epsilons)}, "
        f"{plan.non_iid_seeds} seeds.",
        "3. node level (`unit = node`), central vs distributed, "
        f"ε ∈ {_values(plan.node_level_epsilons)}, {plan.node_level_seeds} seeds: 10 nodes on "
        f"digits{big}.",
        f"4. cost: distributed, {plan.cost_rounds} rounds, seed 0, "
        f"nodes ∈ {_values(plan.cost_nodes)} × model ∈ {{{', '.join(COST_MODELS)}}} "
        "(marked `measure_bytes = True`).",
        f"5. dropouts: distributed, ε = 2, `dropout_rate` ∈ {_values(plan.dropout_rates)}, "
        f"{plan.dropout_seeds} seeds; and the same with `failover = {FAILOVER}` where the "
        "rate is above 0.",
        "",
        "Run counts per grid cell are the n in each cell (a grid cut short shows fewer).",
        "",
    ]


# ---------------------------------------------------------------------- plots


def _plot_accuracy(
    cells: Mapping[tuple[str, float | None], Stat], path: Path, *, title: str
) -> None:
    from reference.learning.plots import _figure, save_atomically  # noqa: PLC0415

    plt = _figure()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    epsilons = sorted({e for _, e in cells if e is not None})
    for trust in TRUSTS:
        if trust == "none":
            if ("none", None) in cells and epsilons:
                s = cells[("none", None)]
                ax.axhline(s.mean, color="black", linestyle="--", label=f"none ({s.mean:.3f})")
            continue
        pts = [(e, cells[(trust, e)]) for e in epsilons if (trust, e) in cells]
        if pts:
            ax.errorbar(
                [e for e, _ in pts],
                [s.mean for _, s in pts],
                yerr=[s.std for _, s in pts],
                marker="o",
                capsize=3,
                label=trust,
            )
    ax.set_xscale("log", base=2)
    ax.set_xticks(epsilons, [f"{e:g}" for e in epsilons])
    ax.set_xlabel("target ε (δ = 1e-5)")
    ax.set_ylabel("test accuracy (mean ± std over seeds)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    save_atomically(fig, path)
    plt.close(fig)


def _plot_dropouts(stats: Mapping[float, tuple[Stat, Stat]], path: Path) -> None:
    from reference.learning.plots import _figure, save_atomically  # noqa: PLC0415

    plt = _figure()
    rates = sorted(stats)
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.errorbar(rates, [stats[r][0].mean for r in rates], yerr=[stats[r][0].std for r in rates],
                marker="o", capsize=3, color="tab:blue")  # fmt: skip
    ax.set_xlabel("dropout rate")
    ax.set_ylabel("test accuracy", color="tab:blue")
    ax2 = ax.twinx()
    ax2.errorbar(rates, [stats[r][1].mean for r in rates], yerr=[stats[r][1].std for r in rates],
                 marker="s", capsize=3, color="tab:red")  # fmt: skip
    ax2.set_ylabel("realized ε (target 2)", color="tab:red")
    ax.set_title("Dropouts: distributed, ε = 2, 10 nodes, digits")
    ax.grid(alpha=0.3)
    save_atomically(fig, path)
    plt.close(fig)


def _plot_cost(
    series: Mapping[str, list[tuple[int, float, float, float, float]]], path: Path
) -> None:
    from reference.learning.plots import _figure, save_atomically  # noqa: PLC0415

    plt = _figure()
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4))
    styles = {"softmax": "-", "mlp": "--"}
    phases = ((1, "local", "tab:blue"), (2, "aggregate", "tab:orange"), (3, "update", "tab:green"))
    for model, pts in sorted(series.items()):
        n = [p[0] for p in pts]
        style = styles.get(model, ":")
        for idx, phase, color in phases:
            ax.plot(n, [p[idx] for p in pts], style, color=color, marker="o",
                    label=f"{model} {phase}")  # fmt: skip
        bx.plot(n, [p[4] for p in pts], style, marker="o", label=model)
    ax.set_xlabel("nodes")
    ax.set_ylabel("seconds per round")
    ax.set_yscale("log")
    ax.set_title("Time per phase per round")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    bx.set_xlabel("nodes")
    bx.set_ylabel("kB sent per node per round")
    bx.set_title("Bytes sent per node")
    bx.legend()
    bx.grid(alpha=0.3)
    save_atomically(fig, path)
    plt.close(fig)


__all__ = [
    "EVALUATION_VERSION",
    "FULL",
    "QUICK",
    "GridOutcome",
    "GridPlan",
    "RunSpec",
    "Stat",
    "TargetCheck",
    "config_key",
    "eval_seed",
    "grid",
    "is_current",
    "read_results",
    "run_grid",
    "select",
    "spec",
    "target_checks",
    "versions",
    "versions_text",
    "with_seeds",
    "write_report",
]
