"""A run's files: ``run.json`` (the result) and ``run.png`` (its plot), both written atomically.

The result (``reference/learning/job.py``) knows nothing of files or plots; this module puts the
two side by side.

Spec: spec/13-learning.md#outputs
"""

from __future__ import annotations

import json
from pathlib import Path

from reference.common.atomic import write_text_atomically
from reference.learning.job import JobResult


def write_outputs(result: JobResult, out: Path) -> list[Path]:
    """Write ``run.json`` and ``run.png`` into ``out`` atomically; return their paths."""
    from reference.learning.plots import plot_run  # noqa: PLC0415  (matplotlib is slow to load)

    out.mkdir(parents=True, exist_ok=True)
    data = out / "run.json"
    write_text_atomically(data, json.dumps(result.to_json(), indent=2, sort_keys=True) + "\n")
    png = out / "run.png"
    plot_run(result, png)
    return [data, png]
