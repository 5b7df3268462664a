"""``sdl bench deploy``: one round on Flower's real deployment engine, SDL beside SecAgg+.

Spec: spec/09-protocol.md#cost (the deployment table), spec/15-deployment.md

SDL's round: a SuperLink and ``nodes`` SuperNodes on loopback (``sdl deploy local``'s
processes), one :class:`~reference.deploy.task.SumTask` round of the simulator's
scenario (each node's vector drawn in ``[-8, 8]`` from the XOF; every node a contributor
and aggregator, one node (the first of the public draw, the coordinator) the receiver
that rebuilds and publishes the release, as in ``sdl bench round``; Skellam noise of
total variance ``TARGET_VARIANCE``; the plan pre-covers the ``dropouts``, so no top-up
stage), the ``dropouts`` highest-numbered nodes other than the coordinator killed
(SIGKILL, with everything under them) once their shares are sent. The release is checked
bit for bit against the simulator's release of the same scenario with the same crashes.
This benchmark's seeds are public: **not private**.

Flower's round (``--compare-flower``): Flower's own ``SecAggPlusWorkflow`` with
``secaggplus_mod`` on its own local SuperLink and SuperNodes
(:mod:`reference.bench.secagg_deploy`), the same ``nodes``, ``dimension`` and
``dropouts``, ``num_shares = nodes`` and ``reconstruction_threshold = threshold + 1``.

What is timed: SDL's ``sdl_seconds`` is the relay's wall time from the round's first
request to the release (the session's setup, hello and key frames, once per session,
is reported apart as ``setup_seconds``); Flower's ``flower_seconds`` is its workflow's
round. ``ratio = sdl_seconds / flower_seconds``. Bytes: what crosses the SuperLink in
the round's payloads (SDL: the sealed frames and the releases; Flower: its records).
CPU: per SuperNode, the user and system time of its process tree (the ClientApp
processes it ran included once reaped), from ``/proc``.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from protocol.errors import ParameterError
from reference.bench.round import TARGET_VARIANCE
from reference.deploy.local import DeployError, local_deployment, run_job
from reference.deploy.server import SUM_RESULT
from reference.deploy.task import SumTask, sum_task
from reference.sim.simulate import simulate

#: Target: SDL's round at most this fraction of SecAgg+'s, at nodes = 10, dimension = 10^5.
FLOWER_TIME_FRACTION = 0.5

#: The benchmark's public seed (its vectors and noise are not private).
SEED = "bd"


@dataclass(frozen=True)
class DeployConfig:
    """One benchmarked deployment round."""

    nodes: int = 10
    dimension: int = 100_000
    dropouts: int = 0
    threshold: int = 3
    tick_timeout: float = 60.0
    #: Nodes that rebuild the sum (``sdl bench round``'s design: one publishes the release).
    receivers: int = 1

    def __post_init__(self) -> None:
        if self.nodes < 3:
            raise ParameterError(f"nodes must be >= 3; got {self.nodes}")
        if not 1 <= self.threshold <= self.nodes - self.dropouts - 2:
            raise ParameterError(
                f"threshold must be in [1, nodes - dropouts - 2 = "
                f"{self.nodes - self.dropouts - 2}] (t + 1 of the survivors rebuild the sum, "
                f"and one more keeps a contributor honest); got {self.threshold}"
            )

    @property
    def packing(self) -> int:
        """``k``: the quorum ``t + k`` is every aggregator that survives the dropouts."""
        return self.nodes - self.dropouts - self.threshold

    def task(self) -> SumTask:
        return sum_task(
            SEED, nodes=self.nodes, threshold=self.threshold, max_dropouts=self.dropouts,
            colluders=0, committee=None, dimension=self.dimension, packing=self.packing,
            mechanism="skellam", target_variance=TARGET_VARIANCE, field="Field31",
            noise_sources=None, receivers=self.receivers, precover=True,
        )  # fmt: skip

    def victims(self) -> list[int]:
        """The nodes killed after their shares: the highest ids but the coordinator."""
        p = self.task().scenario.params
        return [n for n in sorted(p.nodes, reverse=True) if n != p.coordinator][: self.dropouts]


def run_sdl(config: DeployConfig, *, on_event: Any = None) -> dict[str, Any]:
    """SDL's round on a fresh local deployment; what it took and whether it was exact.

    Raises:
        DeployError: a process would not start, or the round did not run.
    """
    task = config.task()
    victims = config.victims()
    with tempfile.TemporaryDirectory(prefix="sdl-bench-deploy-") as tmp:
        out = Path(tmp) / "out"
        with local_deployment(config.nodes) as run:
            run_job(
                run, task, out=out, suite="x25519-aes128gcm", tick_timeout=config.tick_timeout,
                crash=[(n, 1) for n in victims], on_event=on_event,
            )  # fmt: skip
            cpu = run.cpu_seconds()
        result = json.loads((out / SUM_RESULT).read_text())
    started = time.perf_counter()
    crashes = {n: len(task.scenario.params.aggregators) for n in victims}
    from dataclasses import replace  # noqa: PLC0415

    expected = simulate(replace(task.scenario, crashes=crashes))
    check_seconds = time.perf_counter() - started
    d = result["deployment"]
    round_ = d["rounds"][0]
    exact = expected.released is not None and result["released"] == expected.released.to_json()
    return {
        "sdl_seconds": result["round_seconds"],
        "setup_seconds": result["setup_seconds"],
        "exchanges": round_["exchanges"],
        "bytes_relayed": round_["frame_bytes"],
        "setup_bytes": d["bytes_relayed"] - round_["frame_bytes"],
        "frames": round_["frames"],
        "cpu_seconds": {str(k): v for k, v in sorted(cpu.items())},
        "crashed": d["crashed"],
        "released": result["released"] is not None,
        "exact": exact,
        "simulator_check_seconds": check_seconds,
    }


def run_flower(config: DeployConfig) -> dict[str, Any]:
    """Flower's SecAgg+ round with the same sizes, on its own local deployment."""
    from reference.bench.secagg_deploy import run_secagg_round  # noqa: PLC0415
    from reference.common.seeds import seed_from_hex  # noqa: PLC0415

    return run_secagg_round(
        nodes=config.nodes, dimension=config.dimension, dropouts=config.dropouts,
        threshold=config.threshold, seed=seed_from_hex(SEED),
    )  # fmt: skip


def bench_deploy(
    config: DeployConfig, *, compare_flower: bool, on_event: Any = None
) -> dict[str, Any]:
    """Both rounds (Flower's first), the ratio and the target."""
    flower = run_flower(config) if compare_flower else None
    sdl = run_sdl(config, on_event=on_event)
    out: dict[str, Any] = {
        "config": {**config.__dict__, "packing": config.packing},
        "deterministic": True,
        "sdl": sdl,
        "flower": flower,
    }
    if flower is not None:
        ratio = sdl["sdl_seconds"] / flower["seconds"]
        out["ratio"] = ratio
        out["target"] = {
            "what": f"sdl_seconds <= {FLOWER_TIME_FRACTION} x flower_seconds",
            "met": ratio <= FLOWER_TIME_FRACTION,
            "applies": config.nodes == 10 and config.dimension == 100_000,
        }
    return out


__all__ = [
    "FLOWER_TIME_FRACTION",
    "DeployConfig",
    "DeployError",
    "bench_deploy",
    "run_flower",
    "run_sdl",
]
