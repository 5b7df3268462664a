"""The README's Flower app, SecAgg+ swapped for SDL, run as written on real SuperNodes.

Spec: spec/15-deployment.md#flower-workflow. The app is the README's snippet, copied out
of README.md into a Flower app folder; it runs on a SuperLink and three SuperNodes started
by ``sdl deploy local``'s machinery, submitted with ``flwr run``.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("flwr")

from reference.deploy.local import CONNECTION, _tool, local_deployment

ROOT = Path(__file__).resolve().parents[1]

PYPROJECT = """
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "sdl-readme-app"
version = "1.0.0"
dependencies = []

[tool.hatch.build.targets.wheel]
packages = ["."]

[tool.flwr.app]
publisher = "sdl-tests"

[tool.flwr.app.components]
serverapp = "readme_app:server"
clientapp = "readme_app:client"

[tool.flwr.app.config]
roster = ""
model-file = ""
"""


def _snippet() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("### In place of SecAgg+") :]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None, "the README has no Python snippet under 'In place of SecAgg+'"
    return match.group(1)


def test_the_readme_app_aggregates_with_sdl_on_real_supernodes(tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "pyproject.toml").write_text(PYPROJECT)
    (app / "readme_app.py").write_text(_snippet())
    model = tmp_path / "model.npy"
    with local_deployment(3, keep=tmp_path / "deploy") as run:
        config = tmp_path / "run.toml"
        config.write_text(
            f"roster = {json.dumps(str(run.root / 'roster.json'))}\n"
            f"model-file = {json.dumps(str(model))}\n"
        )
        submitted = subprocess.run(
            [_tool("flwr"), "run", str(app), CONNECTION, "--run-config", str(config)],
            capture_output=True, env=run.env, cwd=run.root, timeout=120, check=False,
        )  # fmt: skip
        assert submitted.returncode == 0, submitted.stderr.decode()[-800:]
        deadline = time.monotonic() + 400
        while not model.exists() and time.monotonic() < deadline:
            assert run.procs[0].popen.poll() is None, "the SuperLink exited"
            time.sleep(0.5)
    assert model.exists(), (tmp_path / "deploy" / "logs" / "superlink.log").read_text()[-3000:]
    final = np.load(model)
    # Two rounds; each client moves the model by 0.01, 0.02, 0.03: the mean moves by 0.02.
    # The noise is the least the plan allows (variance 1 in steps of clip/256, over the sum
    # of three) and the rounding is unbiased: a few thousandths at most.
    assert final.shape == (4,)
    np.testing.assert_allclose(final, np.full(4, 0.04), atol=0.02)
    assert not np.allclose(final, 0.0)
