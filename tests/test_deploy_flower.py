"""``sdl deploy local`` on Flower's real engine: a SuperLink and SuperNodes as processes.

Spec: spec/15-deployment.md. Every test here starts the real thing (``flower-superlink``,
``flower-supernode``, ``flwr run``) on loopback, on free ports, through the command a user
types; the oracle is ``sdl run``, the simulated job. The two long deployments start together
when the module starts (most of a tick is Flower's polling, not work), and each test waits
for its own. Every process a deployment starts must be gone when it ends.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from protocol.errors import SdlError
from reference.cli.main import main
from reference.deploy import local
from reference.deploy.local import DeployError, local_deployment
from tests.deploy_support import alive, processes_with_home

pytest.importorskip("flwr")

SDL = [sys.executable, "-m", "reference.cli.main"]

EQUIVALENCE = ["--nodes", "5", "--rounds", "3", "--seed", "5eed"]
FAULTS = [
    "--nodes", "4", "--rounds", "3", "--threshold", "1", "--seed", "f0", "--max-dropouts", "1",
    "--restart", "2@1", "--crash", "3@2",
]  # fmt: skip


#: ``sdl`` as a user at a terminal starts it: with Ctrl-C (SIGINT) at its default action.
#: A test run started in the background by a non-interactive shell (``cmd &``, ``nohup``)
#: inherits SIGINT ignored, and a Python started so never raises KeyboardInterrupt. The
#: first interpreter restores the default and execs ``sdl`` in its place (same PID), so
#: the signal these tests send reaches ``sdl`` as it would from a terminal.
INTERRUPTIBLE_SDL = [
    sys.executable, "-c",
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.argv[1], sys.argv[1:])",
    *SDL,
]  # fmt: skip


class Deployment:
    """One ``sdl deploy local`` started in the background, and what it printed."""

    def __init__(self, args: list[str], out: Path) -> None:
        self.out = out
        self.proc = subprocess.Popen(
            [*INTERRUPTIBLE_SDL, "deploy", "local", *args, "--json", "--quiet", "--out", str(out)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip

    def result(self, timeout: float = 600) -> tuple[int, dict[str, Any], str]:
        try:
            stdout, stderr = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGINT)
            stdout, stderr = self.proc.communicate(timeout=60)
            pytest.fail(f"sdl deploy local did not finish in {timeout} s: {stderr.decode()[-800:]}")
        text = stdout.decode()
        return self.proc.returncode, (json.loads(text) if text.strip() else {}), stderr.decode()


@pytest.fixture(scope="module")
def deployments(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Deployment]]:
    root = tmp_path_factory.mktemp("deploy")
    started = {
        "equivalence": Deployment(EQUIVALENCE, root / "equivalence"),
        "faults": Deployment([*FAULTS, "--keep", str(root / "faults-keep")], root / "faults"),
    }
    yield started
    for d in started.values():
        if d.proc.poll() is None:
            d.proc.send_signal(signal.SIGINT)
            d.proc.wait(timeout=60)


def _assert_every_process_gone(obj: dict[str, Any]) -> None:
    started, stopped = obj["processes"]["started"], obj["processes"]["stopped"]
    assert set(started) <= set(stopped)
    assert len(stopped) > len(started)  # the engine's own children were found and stopped too
    assert [p for p in stopped if alive(p)] == []


def test_deployment_releases_what_sdl_run_releases(
    deployments: dict[str, Deployment], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """N = 5, 3 rounds, same seed: the same released sums and the same model, bit for bit."""
    code, deployed, stderr = deployments["equivalence"].result()
    assert code == 0, stderr
    assert main(["run", *EQUIVALENCE, "--max-dropouts", "1", "--precover", "--json", "--quiet",
                 "--out", str(tmp_path)]) == 0  # fmt: skip
    simulated = json.loads(capsys.readouterr().out)
    assert deployed["released_sha256"] == simulated["released_sha256"]
    assert deployed["model_sha256"] == simulated["model_sha256"]
    assert deployed["accuracy"] == simulated["accuracy"]
    assert deployed["epsilon"] == simulated["epsilon"]
    assert deployed["deterministic"] is True
    assert deployed["released_rounds"] == 3
    d = deployed["deployment"]
    assert d["engine"] == "flower" and d["crashed"] == [] and d["absent"] == {}
    assert [r["exchanges"] for r in d["rounds"]] == [5, 5, 5]
    # Six processes started: one SuperLink, five SuperNodes.
    assert len(deployed["processes"]["started"]) == 6
    _assert_every_process_gone(deployed)
    out = deployments["equivalence"].out
    assert json.loads((out / "run.json").read_text())["model_sha256"] == deployed["model_sha256"]
    assert (out / "run.png").stat().st_size > 0


def test_a_killed_and_a_restarted_supernode_cost_rounds_never_a_wrong_release(
    deployments: dict[str, Deployment],
) -> None:
    """Node 2 is killed after its round-1 shares and started again; node 3 is killed after
    its round-2 shares. Round 1 releases with node 2's dropout tolerated; the restarted node 2
    stays out of the session; rounds 2 and 3, short of a quorum, abort with a reason; the job
    completes, is charged only what it released, and leaves no process behind."""
    code, obj, stderr = deployments["faults"].result()
    assert code == 0, stderr
    assert "history" not in obj  # --json leaves the per-round history to run.json
    run = json.loads((deployments["faults"].out / "run.json").read_text())
    released = [r["released"] for r in run["history"]]
    assert released[0] is True
    assert released[1:] == [False, False]
    assert all(r["reason"] for r in run["history"][1:])
    d = obj["deployment"]
    assert 3 in d["crashed"] and 2 in d["crashed"]
    assert list(d["absent"]) == ["2"] and "restarted" in d["absent"]["2"]
    assert obj["released_rounds"] == 1
    # Charged one release: the ε of a single round, below the target for three.
    assert 0 < obj["epsilon"] < obj["target_epsilon"]
    journal = Path(
        deployments["faults"].out.parent / "faults-keep" / "nodes" / "2" / "journal.jsonl"
    )
    lines = [json.loads(x) for x in journal.read_text().splitlines()]
    assert [x.get("round") for x in lines] == [None, 0]  # joined once, started round 1 once
    _assert_every_process_gone(obj)


# ---------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--crash", "9@1"], "node must be <= --nodes"),
        (["--restart", "1@7"], "round <= --rounds"),
        (["--crash", "3"], "expected NODE@ROUND"),
        (["--nodes", "1"], "an integer in [2, 32]"),
        (["--tick-timeout", "0"], "a number of seconds"),
        (["--max-dropouts", "4"], "max_dropouts must be <="),
    ],
)
def test_bad_options_are_refused_before_any_process_starts(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        code = main(["deploy", "local", *args, "--out", str(tmp_path / "o"), "--quiet"])
    except SystemExit as exit_:  # argparse refuses the option itself
        code = exit_.code
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_a_taken_port_is_one_clear_error_and_nothing_is_left_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SuperLink cannot listen: the deployment says so in one line, and stops the rest."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        monkeypatch.setattr(local, "free_port", lambda: port)
        with (
            pytest.raises(DeployError, match=f"127.0.0.1:{port}") as caught,
            local_deployment(2, keep=tmp_path / "k"),
        ):
            pass
    assert isinstance(caught.value, SdlError)
    assert "address already in use" in str(caught.value)
    assert "\n" not in str(caught.value)
    assert processes_with_home(tmp_path / "k" / "flwr") == []


def test_a_second_ctrl_c_during_the_stop_leaves_no_process_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An interrupt that arrives while the deployment is stopping its processes (a second
    Ctrl-C, or a test's teardown) used to cut the stop short and orphan the rest of them.
    The stop, once begun, finishes: every process it started is gone."""
    stop = local.LocalRun.stop

    def interrupted_stop(self: local.LocalRun) -> list[int]:
        os.kill(os.getpid(), signal.SIGINT)  # lands in the middle of the stop
        return stop(self)

    monkeypatch.setattr(local.LocalRun, "stop", interrupted_stop)
    keep = tmp_path / "keep"
    with pytest.raises(KeyboardInterrupt), local_deployment(2, keep=keep) as run:
        started = [p.popen.pid for p in run.procs]
        raise KeyboardInterrupt  # the first Ctrl-C
    assert started and [p for p in started if alive(p)] == []
    assert processes_with_home(keep / "flwr") == []


def test_ctrl_c_stops_every_process_the_deployment_started(tmp_path: Path) -> None:
    keep = tmp_path / "keep"
    proc = subprocess.Popen(
        [*INTERRUPTIBLE_SDL, "deploy", "local", "--nodes", "2", "--rounds", "1", "--threshold", "1",
         "--max-dropouts", "0", "--keep", str(keep), "--out", str(tmp_path / "o")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (keep / "logs" / "supernode-2.log").exists():
        time.sleep(0.2)
    running = processes_with_home(keep / "flwr")
    assert running, "the deployment started no process"
    time.sleep(2)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr.decode()
    assert "interrupted" in stderr.decode().strip().splitlines()[-1]
    assert [p for p in running if alive(p)] == []
    assert processes_with_home(keep / "flwr") == []
    assert not (tmp_path / "o" / "run.json").exists()
    assert os.path.isdir(keep)  # --keep keeps the logs
