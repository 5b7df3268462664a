"""What a deployment's rounds compute: the learning job, or one sum of given vectors.

Spec: spec/15-deployment.md#tasks

A task fixes, from public data only, each round's parameters
(:class:`~protocol.params.RoundParams`), what each node contributes, and the seed
its contributor machine starts from. The relay sends a task's JSON form in the
``hello``; every node rebuilds the same task from it.

- :class:`LearningTask`: the learning job of spec 13 (``sdl deploy local``). A node
  contributes its encoded clipped gradients; its seeds come from its own root, drawn
  from the OS (or, in the deterministic test mode, from the public seed).
- :class:`SumTask`: one round that sums synthetic vectors (``sdl bench deploy``): the
  simulator's scenario (spec/12-transcripts.md#scenario) built from its public
  arguments, each node's vector and seed drawn from the scenario's master seed. It is
  a benchmark and is **not private**.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from protocol.errors import ParameterError
from protocol.field import FIELDS, Field
from protocol.params import RoundParams
from protocol.xof import SEED_SIZE, Seed, Tag, as_seed, derive_seed
from reference.common.seeds import seed_from_hex
from reference.learning.job import (
    JobConfig,
    JobPlan,
    node_contribution,
    node_root,
    plan_job,
    protocol_seed,
    round_params,
)
from reference.sim.scenarios import build
from reference.sim.simulate import Scenario

F64 = npt.NDArray[np.float64]


class Task(Protocol):
    """What every node and the relay agree on before a session starts."""

    @property
    def session(self) -> Seed: ...

    @property
    def deterministic(self) -> bool: ...

    @property
    def rounds(self) -> int: ...

    def round_params(self, r: int, *, window: int) -> RoundParams: ...

    def contribution(
        self, node: int, r: int, model: F64 | None, root: Seed | None
    ) -> tuple[Field, Seed, int]:
        """The node's encoded update, its contributor seed and the records it sampled."""
        ...

    def to_json(self) -> dict[str, Any]: ...


@dataclass
class LearningTask:
    """The learning job (spec 13): ``cfg`` is its public configuration."""

    cfg: JobConfig
    _plan: JobPlan | None = field(default=None, repr=False)

    @property
    def plan(self) -> JobPlan:
        if self._plan is None:
            self._plan = plan_job(self.cfg)
        return self._plan

    @property
    def session(self) -> Seed:
        return derive_seed(self.cfg.seed, Tag("learning.session"))

    @property
    def deterministic(self) -> bool:
        return self.cfg.deterministic

    @property
    def rounds(self) -> int:
        return self.cfg.rounds

    def round_params(self, r: int, *, window: int) -> RoundParams:
        return round_params(self.plan, r, window=window)

    def contribution(
        self, node: int, r: int, model: F64 | None, root: Seed | None
    ) -> tuple[Field, Seed, int]:
        if model is None:
            raise ParameterError("a learning round's start carries the model")
        own = node_root(self.cfg, node, root)
        update, sampled = node_contribution(self.plan, model, r, node, own)
        return update, protocol_seed(self.cfg, r, node, own), sampled

    def to_json(self) -> dict[str, Any]:
        return {"kind": "learning", "job": config_to_json(self.cfg)}


def config_to_json(cfg: JobConfig) -> dict[str, Any]:
    """The public configuration a relay sends its nodes (no secret: the seed is public)."""
    if cfg.data is not None:
        raise ParameterError("a deployment trains on the embedded data set; --data is not offered")
    out: dict[str, Any] = {}
    for name in JobConfig.__dataclass_fields__:
        value = getattr(cfg, name)
        if name == "seed":
            value = value.hex()
        out[name] = value
    out.pop("data")
    return out


def config_from_json(obj: Mapping[str, Any]) -> JobConfig:
    """Inverse of :func:`config_to_json`.

    Raises:
        ParameterError: a field is missing, unknown or invalid (``JobConfig``'s own checks).
    """
    fields = set(JobConfig.__dataclass_fields__) - {"data"}
    unknown = sorted(set(obj) - fields)
    if unknown:
        raise ParameterError(f"unknown job configuration fields: {unknown}")
    values = dict(obj)
    try:
        values["seed"] = as_seed(bytes.fromhex(str(values["seed"])))
    except (KeyError, ValueError) as exc:
        raise ParameterError(f"the job's seed must be {2 * SEED_SIZE} hex digits: {exc}") from None
    return JobConfig(**values)


#: The arguments of :func:`reference.sim.scenarios.build` a :class:`SumTask` carries.
SUM_FIELDS = (
    "nodes", "threshold", "max_dropouts", "colluders", "committee", "dimension", "packing",
    "mechanism", "target_variance", "field", "noise_sources", "receivers", "precover",
)  # fmt: skip


@dataclass
class SumTask:
    """One round summing the scenario's synthetic vectors (a benchmark: not private)."""

    master: Seed
    args: dict[str, Any]
    _scenario: Scenario | None = field(default=None, repr=False)

    @property
    def scenario(self) -> Scenario:
        if self._scenario is None:
            kw = dict(self.args)
            kw["field"] = FIELDS[str(kw["field"])]
            kw["target_variance"] = Fraction(str(kw["target_variance"]))
            self._scenario = build(master=self.master, dropouts=0, **kw)
        return self._scenario

    @property
    def session(self) -> Seed:
        return self.scenario.params.session

    @property
    def deterministic(self) -> bool:
        return True

    @property
    def rounds(self) -> int:
        return 1

    def round_params(self, r: int, *, window: int) -> RoundParams:
        if r != 0:
            raise ParameterError(f"a sum task has one round, 0; got {r}")
        from dataclasses import replace  # noqa: PLC0415

        return replace(self.scenario.params, window=window)

    def contribution(
        self, node: int, r: int, model: F64 | None, root: Seed | None
    ) -> tuple[Field, Seed, int]:
        s = self.scenario
        return s.update(node), s.node_seed(node), 0

    def to_json(self) -> dict[str, Any]:
        return {"kind": "sum", "master": self.master.hex(), "args": dict(self.args)}


#: Task kinds other modules add (``reference.deploy.workflow`` adds ``fit``): kind -> parser.
KINDS: dict[str, Callable[[Mapping[str, Any]], Task]] = {}


def task_from_json(obj: Any) -> Task:
    """Inverse of ``to_json``.

    Raises:
        ParameterError: not a task's JSON form (the field is named).
    """
    kinds = ("learning", "sum", *sorted(KINDS))
    if not isinstance(obj, dict) or obj.get("kind") not in kinds:
        raise ParameterError(
            f"a task is an object of kind {', '.join(kinds)}; got {obj!r:.80} (a fit task "
            "needs reference.deploy.workflow imported)"
        )
    if obj["kind"] in KINDS:
        return KINDS[obj["kind"]](obj)
    if obj["kind"] == "learning":
        return LearningTask(config_from_json(obj["job"]))
    args = obj.get("args")
    if not isinstance(args, dict) or set(args) != set(SUM_FIELDS):
        raise ParameterError(f"a sum task's args are exactly {', '.join(SUM_FIELDS)}")
    try:
        master = as_seed(bytes.fromhex(str(obj["master"])))
    except (KeyError, ValueError):
        raise ParameterError("a sum task's master is 64 hex digits") from None
    return SumTask(master, dict(args))


def sum_task(seed: str, **args: Any) -> SumTask:
    """A :class:`SumTask` from a hex seed and :data:`SUM_FIELDS` (``field`` by name)."""
    missing = sorted(set(SUM_FIELDS) - set(args))
    if missing or set(args) - set(SUM_FIELDS):
        raise ParameterError(f"a sum task takes exactly {', '.join(SUM_FIELDS)}; missing {missing}")
    args["target_variance"] = str(args["target_variance"])
    return SumTask(seed_from_hex(seed), args)


__all__ = [
    "KINDS",
    "SUM_FIELDS",
    "LearningTask",
    "SumTask",
    "Task",
    "config_from_json",
    "config_to_json",
    "sum_task",
    "task_from_json",
]
