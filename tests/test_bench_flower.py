"""Flower's SecAgg+ run in one process, as the baseline of ``sdl bench round --compare-flower``.

Spec: spec/09-protocol.md#the-round

Flower is an optional extra: without it, the driver must say how to install
it; with it, a small round must return the survivors' sum. The oracle is the
plaintext sum of the surviving clients' vectors, recomputed here.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping

import numpy as np
import numpy.typing as npt
import pytest

from protocol.errors import ParameterError, SdlError, ThresholdNotMet
from reference.bench.flower import (
    INSTALL_HINT,
    FlowerRound,
    FlowerUnavailable,
    Vector,
    flower_version,
    run_flower_round,
)

SMALL = {"nodes": 6, "dimension": 50, "dropouts": 1, "num_shares": 5, "threshold": 3}


def small_round(
    *,
    seed: int = 0,
    vectors: Callable[[int], Vector] | None = None,
    change: Mapping[str, int] | None = None,
) -> FlowerRound:
    """The small round (n = 6, d = 50, 1 dropout, 5 shares, threshold 3), with ``change``."""
    p = {**SMALL, **(change or {})}
    return run_flower_round(
        nodes=p["nodes"],
        dimension=p["dimension"],
        dropouts=p["dropouts"],
        num_shares=p["num_shares"],
        threshold=p["threshold"],
        seed=seed,
        vectors=vectors,
    )


def test_without_flower_the_round_names_the_install_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "flwr", None)  # makes `import flwr` raise ImportError
    assert flower_version() is None
    with pytest.raises(FlowerUnavailable) as caught:
        small_round()
    hint = "Flower is an optional extra, install with: python -m pip install -e '.[bench]'"
    assert hint in str(caught.value)
    assert hint.endswith(INSTALL_HINT)
    assert isinstance(caught.value, SdlError)  # the CLI reports it and exits 2


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"num_shares": 4}, "num_shares"),  # even: Flower's clients would fail
        ({"num_shares": 7}, "num_shares"),  # more shares than nodes
        ({"threshold": 1}, "threshold"),  # Flower reads 1 as the fraction 1.0
        ({"threshold": 5}, "threshold"),  # must be below num_shares
        ({"dropouts": 6}, "dropouts"),
        ({"dimension": 0}, "dimension"),
    ],
)
def test_parameters_flower_cannot_run_are_rejected_before_importing_it(
    monkeypatch: pytest.MonkeyPatch, change: dict[str, int], named: str
) -> None:
    monkeypatch.setitem(sys.modules, "flwr", None)
    with pytest.raises(ParameterError, match=named):
        small_round(change=change)


def test_small_round_returns_the_survivors_sum_and_sane_timings() -> None:
    pytest.importorskip("flwr")
    result = small_round(seed=3)
    assert result.correct
    assert result.flwr_version == flower_version()
    assert (result.nodes, result.dimension, result.dropouts) == (6, 50, 1)
    assert 0 < result.client_median_seconds < result.wall_seconds
    assert 0 < result.server_seconds < result.wall_seconds
    assert result.cpu_seconds > 0
    assert set(result.as_json()) >= {"wall_seconds", "server_seconds", "correct"}


def test_dropped_clients_are_left_out_of_the_aggregate() -> None:
    """Big dropped vectors, small survivors: any trace of a dropped one breaks ``correct``."""
    pytest.importorskip("flwr")

    def vectors(index: int) -> npt.NDArray[np.float64]:
        value = 7.5 if index == SMALL["nodes"] - 1 else 0.001 * index
        return np.full(SMALL["dimension"], value)

    assert small_round(vectors=vectors).correct


def test_too_many_dropouts_for_the_threshold_raise_threshold_not_met() -> None:
    """With 3 of 6 nodes gone and 5 shares, some node keeps at most 2 live neighbours < 3."""
    pytest.importorskip("flwr")
    with pytest.raises(ThresholdNotMet, match="threshold=3"):
        small_round(change={"dropouts": 3})


def test_vectors_outside_flowers_clipping_range_are_rejected() -> None:
    pytest.importorskip("flwr")
    with pytest.raises(ParameterError, match=r"vectors\(0\) must lie in"):
        small_round(vectors=lambda _: np.full(50, 9.0))
