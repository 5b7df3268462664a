"""Flower's SecAgg+ on a real local deployment, the baseline of ``sdl bench deploy``.

Spec: spec/15-deployment.md#local. The run starts the real thing (``flower-superlink``,
``flower-supernode``, ``flwr run``) on loopback; the oracle is the plaintext sum of the
clients' vectors, which the ServerApp checks. Every process the driver starts must be gone
when it returns.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("flwr")

from protocol.errors import ParameterError
from reference.bench.secagg_deploy import run_secagg_round
from tests.deploy_support import processes_with_home

NODES, DIMENSION = 3, 1000


def test_deployed_secaggplus_round_sums_the_vectors_and_leaves_no_process(
    tmp_path: Path,
) -> None:
    root = tmp_path / "run"
    result = run_secagg_round(
        nodes=NODES, dimension=DIMENSION, dropouts=0, threshold=1, seed=b"\x5e\xed", keep=root
    )
    assert result["correct"] is True
    assert result["survivors"] == NODES
    assert (result["nodes"], result["dimension"], result["dropouts"]) == (NODES, DIMENSION, 0)
    assert result["seconds"] > 0
    # Each client's reply in the collect-masked-vectors stage carries its masked vector:
    # DIMENSION entries (and one for the weight), integers modulo 2^32, so at least 4 bytes
    # each in any encoding (Flower sends them as int64 through np.save: 8). The setup,
    # share-keys and unmask stages only add to that.
    assert result["bytes_relayed"] >= NODES * DIMENSION * 4
    assert len(result["cpu_seconds"]) == NODES
    assert all(cpu > 0 for cpu in result["cpu_seconds"])
    assert processes_with_home(root / "flwr") == []


def test_more_dropouts_than_the_threshold_allows_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="dropouts must be at most"):
        run_secagg_round(
            nodes=4, dimension=10, dropouts=2, threshold=2, seed=b"\x01", keep=tmp_path
        )
