"""An in-process link for the relay: every node's real code, without the engine's processes.

The relay (``reference/deploy/relay.py``) reaches its nodes through a ``Link``. The
deployment's own link is Flower's Grid (``reference/deploy/server.py``), exercised by the
tests that start a real SuperLink and SuperNodes. This one calls each node's ClientApp
logic directly, in this process, through the same records codec (every request and reply is
packed into Flower records and unpacked again), and lets a test make a node fall silent
from a given exchange on: the relay, the nodes, the channels and the machines are the ones
a deployment runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from reference.deploy.keys import keygen, write_roster
from reference.deploy.node import Node, NodeSetup, Reply, Request
from reference.deploy.wire import (
    reply_from_records,
    reply_to_records,
    request_from_records,
    request_to_records,
)


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2 :].split()[0] != "Z"


def processes_with_home(home: Path) -> list[int]:
    """PIDs of live processes whose environment sets ``FLWR_HOME=home``."""
    needle = f"FLWR_HOME={home}\0".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if needle in (entry / "environ").read_bytes() and alive(int(entry.name)):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


#: Engine ids of the nodes: SDL node i is engine node ENGINE_BASE + i.
ENGINE_BASE = 7000


class InProcessLink:
    """Nodes 1..n, each with its own directory and saved state, reached by direct calls."""

    def __init__(self, root: Path, nodes: int) -> None:
        keys = {i: keygen(root / "nodes" / str(i), i) for i in range(1, nodes + 1)}
        self.roster_path = root / "roster.json"
        self.roster_sha256 = write_roster(self.roster_path, keys)
        self.setups = {
            ENGINE_BASE + i: NodeSetup(root / "nodes" / str(i), self.roster_path)
            for i in range(1, nodes + 1)
        }
        self.saved: dict[int, bytes | None] = dict.fromkeys(self.setups)
        #: engine id -> the exchange from which on it answers nothing (a crash).
        self.silent_from: dict[int, int] = {}
        #: engine id -> the exchange at which it loses its saved state (a restart).
        self.forget_at: dict[int, int] = {}
        self.exchanges = 0
        self.requests: list[tuple[int, Request]] = []
        #: Every reply as the relay received it: its control JSON and its frames.
        self.replies: list[tuple[bytes, list[bytes]]] = []

    def nodes(self) -> list[int]:
        return sorted(self.setups)

    def exchange(
        self, requests: Mapping[int, Request], timeout: float
    ) -> tuple[dict[int, Reply], dict[int, str]]:
        self.exchanges += 1
        replies: dict[int, Reply] = {}
        for engine, request in requests.items():
            if self.forget_at.get(engine) == self.exchanges:
                self.saved[engine] = None
            if engine in self.silent_from and self.exchanges >= self.silent_from[engine]:
                continue
            received = request_from_records(request_to_records(request))
            self.requests.append((engine, received))
            node = Node(self.setups[engine], self.saved[engine])
            reply = node.handle(received)
            self.saved[engine] = node.saved()
            records = reply_to_records(reply)
            control = records.config_records["sdl"]["control"]
            frames = (
                [a.numpy().tobytes() for a in records.array_records["frames"].values()]
                if "frames" in records.array_records
                else []
            )
            self.replies.append((control if isinstance(control, bytes) else b"", frames))
            replies[engine] = reply_from_records(records)
        return replies, {}
