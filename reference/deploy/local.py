"""``sdl deploy local``: a real SuperLink and N real SuperNodes on loopback, and the job on them.

Spec: spec/15-deployment.md#local

Everything runs from one temporary folder: each node's directory (identity key,
journal), the roster, Flower's home (``FLWR_HOME``, never the user's own), the
run configuration, the progress file and every process's log. The SuperLink
listens on a free loopback port; each SuperNode gets its own free port for its
runtime API. Every process is started in a session of its own, and stopped by
PID with every descendant it has (found through ``/proc`` before any is sent a
signal, so none is orphaned), on success, on failure and on Ctrl-C.

Faults. ``crash=[(node, round)]`` SIGKILLs that node's SuperNode and every
process under it once its round's first tick has been answered (the node has
sent its shares), before the second: the relay holds there until the kill is
done, so the fault lands at the same step every time. ``restart`` does the same
and starts the SuperNode again at once, over the same node directory.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protocol.errors import SdlError
from reference.common.signals import sigint_ignored
from reference.deploy.keys import keygen, write_roster
from reference.deploy.task import LearningTask, SumTask

#: Where the Flower app (``pyproject.toml``) lives.
APP_DIR = Path(__file__).parent / "app"
#: How often each SuperExec looks for a new task to launch, in seconds (Flower's default: 1).
SUPEREXEC_POLL_SECONDS = 0.2
#: The connection name written into the temporary ``FLWR_HOME``.
CONNECTION = "sdl-local"


class DeployError(SdlError):
    """The local deployment could not run: a process would not start, or the job failed."""


@dataclass
class Proc:
    """A process this deployment started, with its log."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children() -> dict[int, list[int]]:
    """Parent PID -> child PIDs, from ``/proc`` (empty where there is no ``/proc``)."""
    out: dict[int, list[int]] = {}
    proc = Path("/proc")
    if not proc.is_dir():
        return out
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command may hold spaces and parentheses: the fields follow the last ')'.
        fields = stat[stat.rfind(")") + 2 :].split()
        out.setdefault(int(fields[1]), []).append(int(entry.name))
    return out


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process below it, parents first."""
    children = _children()
    order, todo = [], [pid]
    while todo:
        p = todo.pop(0)
        order.append(p)
        todo.extend(children.get(p, []))
    return order


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return status[status.rfind(")") + 2 :].split()[0] != "Z"


def kill_tree(pid: int, *, grace: float) -> list[int]:
    """SIGTERM ``pid`` and its descendants, SIGKILL what is left after ``grace`` s; the PIDs."""
    tree = process_tree(pid)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if sig == signal.SIGKILL:
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline and any(_alive(p) for p in tree):
                time.sleep(0.05)
        for p in tree:
            with suppress(ProcessLookupError, PermissionError):
                os.kill(p, sig)
        if grace == 0:
            break
    return tree


@dataclass
class LocalRun:
    """A running local deployment: its folder, its processes, and how to reach them."""

    root: Path
    port: int
    env: dict[str, str]
    #: How many nodes the deployment has (each SuperNode's ``num-partitions``).
    nodes: int = 0
    procs: list[Proc] = field(default_factory=list)
    supernodes: dict[int, Proc] = field(default_factory=dict)
    #: Every PID seen under a process started here (the processes themselves included).
    seen: set[int] = field(default_factory=set)
    #: The PIDs still alive after :meth:`stop` (empty: every process is gone).
    left: list[int] = field(default_factory=list)

    def start(self, name: str, argv: Sequence[str]) -> Proc:
        log = self.root / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as f:
            popen = subprocess.Popen(
                list(argv), stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=self.env, cwd=self.root, start_new_session=True,
            )  # fmt: skip
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def start_supernode(self, node: int) -> Proc:
        node_dir, roster = self.root / "nodes" / str(node), self.root / "roster.json"
        proc = self.start(
            f"supernode-{node}",
            [
                _tool("flower-supernode"), "--insecure", "--superlink", f"127.0.0.1:{self.port}",
                "--port", str(free_port()),
                "--node-config",
                f'node-dir="{node_dir}" roster="{roster}" partition-id={node - 1} '
                f"num-partitions={self.nodes}",
            ],
        )  # fmt: skip
        self.supernodes[node] = proc
        return proc

    def cpu_seconds(self) -> dict[int, float]:
        """Per node still running: the user and system CPU of its SuperNode's process tree.

        From ``/proc/PID/stat`` (utime, stime, cutime, cstime): the processes alive now, and
        those that exited once their parent reaped them (Flower's ClientApp processes).
        """
        tick = os.sysconf("SC_CLK_TCK")
        out: dict[int, float] = {}
        for node, proc in sorted(self.supernodes.items()):
            total = 0
            for pid in process_tree(proc.pid):
                try:
                    stat = Path(f"/proc/{pid}/stat").read_text()
                except OSError:
                    continue
                fields = stat[stat.rfind(")") + 2 :].split()
                total += sum(int(v) for v in fields[11:15])
            out[node] = total / tick
        return out

    def kill_node(self, node: int) -> list[int]:
        """SIGKILL node ``node``'s SuperNode and everything under it, at once."""
        proc = self.supernodes.pop(node)
        tree = kill_tree(proc.pid, grace=0)
        self.seen.update(tree)
        proc.popen.wait(timeout=10)
        return tree

    def stop(self) -> list[int]:
        """Stop every process started here (and its descendants); the PIDs still alive after.

        Each tree is listed before any of it is signalled, so that a child whose parent
        dies first is not missed (it would be re-parented, and orphaned).
        """
        trees = [process_tree(proc.pid) for proc in self.procs]
        for proc, tree in zip(reversed(self.procs), reversed(trees), strict=True):
            self.seen.update(tree)
            if any(_alive(p) for p in tree):
                self.seen.update(kill_tree(proc.pid, grace=5.0))
                for p in tree:
                    with suppress(ProcessLookupError, PermissionError):
                        os.kill(p, signal.SIGKILL)
            with suppress(subprocess.TimeoutExpired):
                proc.popen.wait(timeout=10)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(_alive(p) for p in self.seen):
            time.sleep(0.05)
        self.left = sorted(p for p in self.seen if _alive(p))
        return self.left

    def log_tail(self, proc: Proc, lines: int = 5) -> str:
        try:
            text = proc.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])


def _tool(name: str) -> str:
    """A console script installed beside this interpreter (else on ``PATH``)."""
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    found = shutil.which(name)
    if found is None:
        raise DeployError(f"{name} is not installed: python -m pip install -e '.[flower]'")
    return found


def _wait_listening(port: int, proc: Proc, run: LocalRun, timeout: float) -> None:
    """Wait until the SuperLink itself listens on ``port`` (its server says so in its log).

    A connection alone proves nothing: another process may hold the port, and then the
    SuperLink exits with an error, which is reported in one line.
    """
    ready = f"Uvicorn running on http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise DeployError(
                f"the SuperLink exited with {proc.popen.returncode} before listening on "
                f"127.0.0.1:{port}: {_last_error(run.log_tail(proc, 20))}"
            )
        try:
            if ready in proc.log.read_text(errors="replace"):
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise DeployError(f"the SuperLink did not listen on 127.0.0.1:{port} within {timeout:g} s")


def _last_error(text: str) -> str:
    """The line of a log tail that says what went wrong (else its last line)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in reversed(lines):
        if " ERROR " in line or "Errno" in line or "Error:" in line:
            # Drop the logger's timestamp and name: "[Errno 98] … address already in use".
            return line.split("] ", 1)[-1] if "[uvicorn" in line else line
    return lines[-1] if lines else "no output"


def flower_home(root: Path, port: int) -> dict[str, str]:
    """A Flower home in ``root/flwr`` whose one connection is the SuperLink on ``port``,
    and the environment every process of the deployment runs with (never the user's own
    ``FLWR_HOME`` or other ``FLWR_`` settings)."""
    home = root / "flwr"
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(
        f'[superlink]\ndefault = "{CONNECTION}"\n\n[superlink.{CONNECTION}]\n'
        f'address = "127.0.0.1:{port}"\ninsecure = true\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLWR_")}
    return env | {
        "FLWR_HOME": str(home),
        "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
        # Flower's SuperExec looks for new tasks every second by default; every request
        # to a node waits for that poll, so a shorter one shortens every tick.
        "FLWR_SUPEREXEC_TASK_POLL_INTERVAL": str(SUPEREXEC_POLL_SECONDS),
        "PYTHONUNBUFFERED": "1",
    }


@contextmanager
def local_deployment(nodes: int, *, keep: Path | None = None) -> Iterator[LocalRun]:
    """A SuperLink and ``nodes`` SuperNodes on loopback; every process stopped on exit."""
    root = Path(tempfile.mkdtemp(prefix="sdl-deploy-")) if keep is None else keep
    port = free_port()
    run = LocalRun(root, port, flower_home(root, port), nodes)
    try:
        keys = {i: keygen(root / "nodes" / str(i), i) for i in range(1, nodes + 1)}
        write_roster(root / "roster.json", keys)
        link = run.start(
            "superlink",
            [_tool("flower-superlink"), "--insecure", "--port", str(port),
             "--disable-runtime-dependency-installation"],
        )  # fmt: skip
        _wait_listening(port, link, run, timeout=60)
        for i in range(1, nodes + 1):
            run.start_supernode(i)
        yield run
    finally:
        # A Ctrl-C during the stop would leave the rest of the processes running,
        # orphaned: the stop, once begun, finishes.
        with sigint_ignored():
            run.stop()
            if keep is None:
                shutil.rmtree(root, ignore_errors=True)


Event = Mapping[str, Any]


def run_config(
    task: LearningTask | SumTask,
    *,
    roster: Path,
    suite: str,
    tick_timeout: float,
    connect_timeout: float,
    progress: Path,
    out: Path,
    hold: str = "",
) -> dict[str, str | float]:
    """The app's run configuration (``[tool.flwr.app.config]``) for a job. Nothing secret."""
    return {
        "job": json.dumps(task.to_json(), sort_keys=True),
        "roster": str(roster.resolve()),
        "suite": suite,
        "tick-timeout": float(tick_timeout),
        "connect-timeout": float(connect_timeout),
        "progress-file": str(progress.resolve()),
        "out": str(out.resolve()),
        "hold": hold,
    }


def run_config_toml(config: Mapping[str, str | float]) -> str:
    """``config`` as the TOML file ``flwr run --run-config FILE`` reads (JSON strings and
    numbers are TOML's too)."""
    return "".join(f"{k} = {json.dumps(v)}\n" for k, v in config.items())


def run_job(
    run: LocalRun,
    task: LearningTask | SumTask,
    *,
    out: Path,
    suite: str,
    tick_timeout: float,
    connect_timeout: float = 120.0,
    crash: Sequence[tuple[int, int]] = (),
    restart: Sequence[tuple[int, int]] = (),
    on_event: Callable[[Event], None] | None = None,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Submit the job with ``flwr run`` and follow it to its end; the ``done`` event.

    Raises:
        DeployError: ``flwr run`` refused the app, the job failed (its one-line reason),
            or no progress came for ``timeout`` seconds.
    """
    progress = run.root / "progress.jsonl"
    progress.write_text("")
    faults: dict[tuple[int, int], list[tuple[str, int]]] = {}
    for what, pairs in (("crash", crash), ("restart", restart)):
        for n, r in pairs:
            faults.setdefault((r, 1), []).append((what, n))
    config = run_config(
        task, roster=run.root / "roster.json", suite=suite, tick_timeout=tick_timeout,
        connect_timeout=connect_timeout, progress=progress, out=out,
        hold=",".join(f"{r}:{k}" for r, k in sorted(faults)),
    )  # fmt: skip
    toml = run.root / "run-config.toml"
    toml.write_text(run_config_toml(config))
    submitted = subprocess.run(
        [_tool("flwr"), "run", str(APP_DIR), CONNECTION, "--run-config", str(toml),
         "--format", "json"],
        capture_output=True, env=run.env, cwd=run.root, timeout=120, check=False,
    )  # fmt: skip
    if submitted.returncode != 0:
        why = (submitted.stdout + submitted.stderr).decode(errors="replace").strip()
        raise DeployError(f"flwr run refused the app: {why.splitlines()[-1] if why else '?'}")
    stall = timeout if timeout is not None else max(300.0, 4 * tick_timeout + connect_timeout)
    seen = 0
    last = time.monotonic()
    superlink = run.procs[0]
    while True:
        lines = progress.read_text().splitlines()
        complete = lines if progress.read_text().endswith("\n") else lines[:-1]
        for line in complete[seen:]:
            event = json.loads(line)
            seen += 1
            last = time.monotonic()
            if on_event is not None:
                on_event(event)
            kind = event.get("type")
            if kind == "hold":
                for what, node in faults[(int(event["round"]), int(event["tick"]))]:
                    if node not in run.supernodes:
                        continue  # killed before, and not started again
                    run.kill_node(node)
                    if on_event is not None:
                        on_event({"type": "killed", "node": node, "round": event["round"]})
                    if what == "restart":
                        run.start_supernode(node)
                        if on_event is not None:
                            on_event({"type": "restarted", "node": node, "round": event["round"]})
                go = progress.with_name(progress.name + f".go.{event['n']}")
                go.write_text("")
            elif kind == "done":
                return dict(event)
            elif kind == "failed":
                raise DeployError(str(event.get("message", "the job failed")))
        if superlink.popen.poll() is not None:
            raise DeployError(
                f"the SuperLink exited with {superlink.popen.returncode}: "
                f"{run.log_tail(superlink, 3)}"
            )
        if time.monotonic() - last > stall:
            raise DeployError(
                f"no progress from the job for {stall:g} s (logs: {run.root / 'logs'})"
            )
        time.sleep(0.1)


__all__ = [
    "APP_DIR",
    "DeployError",
    "LocalRun",
    "flower_home",
    "free_port",
    "kill_tree",
    "local_deployment",
    "process_tree",
    "run_config",
    "run_config_toml",
    "run_job",
]
