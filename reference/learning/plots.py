"""Plots of a run and of the evaluation (PNG, matplotlib's Agg backend; no display needed).

Spec: spec/13-learning.md#outputs
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from reference.common.atomic import replacing

if TYPE_CHECKING:
    from reference.learning.job import JobResult


def _figure() -> Any:
    import matplotlib  # noqa: PLC0415  (slow to import; only plotting pays)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    return plt


def save_atomically(fig: Any, path: Path) -> None:
    """Save a figure so that a reader never sees a half-written PNG."""
    with replacing(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight")


def plot_run(result: JobResult, path: Path) -> None:
    """Test accuracy and ε spent against rounds, one PNG."""
    plt = _figure()
    rounds = [r.round for r in result.history]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(rounds, [r.accuracy for r in result.history], color="tab:blue", label="test accuracy")
    ax.set_xlabel("round")
    ax.set_ylabel("test accuracy", color="tab:blue")
    ax.set_ylim(0, 1)
    ax2 = ax.twinx()
    ax2.plot(rounds, [r.epsilon for r in result.history], color="tab:red", label="ε spent")
    ax2.set_ylabel(f"ε spent (δ = {result.delta:g})", color="tab:red")
    c = result.config
    ax.set_title(
        f"{result.dataset}: {c.nodes} nodes, trust={c.trust}, {c.mechanism}, unit={c.unit}; "
        f"final accuracy {result.accuracy:.3f}, ε = {result.epsilon:.2f}",
        fontsize=9,
    )
    save_atomically(fig, path)
    plt.close(fig)
