"""The ServerApp: Flower's side of the relay. Spec: spec/15-deployment.md#the-flower-app

``flwr run`` starts it on the SuperLink's host with the app's run configuration
(``app/pyproject.toml``, ``[tool.flwr.app.config]``). It builds a
:class:`~reference.deploy.relay.Relay` over Flower's ``Grid`` and runs the job;
it writes progress as JSON lines to ``progress-file`` and the run's
``run.json`` and ``run.png`` into ``out`` (both written together, or neither).
It holds no secret: the roster it reads is public.

The relay pushes every request of a tick at once and pulls the replies every
:data:`POLL_SECONDS` (``Grid.send_and_receive`` sleeps 3 s between pulls).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flwr.app import Context, Message
from flwr.serverapp import Grid, ServerApp

from protocol.errors import SdlError
from reference.common.atomic import write_text_atomically
from reference.deploy.keys import load_roster, roster_digest
from reference.deploy.node import Reply, Request
from reference.deploy.relay import Relay
from reference.deploy.task import SumTask, task_from_json
from reference.deploy.wire import reply_from_records, request_to_records

#: How often the relay asks the SuperLink for replies, in seconds.
POLL_SECONDS = 0.05

#: The file a sum task's result is written to, in ``out``.
SUM_RESULT = "sum.json"

#: The one message type SDL uses (Flower routes it to the ClientApp's ``query`` handler).
MESSAGE_TYPE = "query"


class FlowerLink:
    """The relay's :class:`~reference.deploy.relay.Link` over a Flower ``Grid``."""

    def __init__(self, grid: Grid) -> None:
        self.grid = grid

    def nodes(self) -> list[int]:
        return sorted(self.grid.get_node_ids())

    def message(self, engine: int, request: Request) -> Message:
        """The Flower message that carries ``request`` to ``engine``."""
        return Message(request_to_records(request), dst_node_id=engine, message_type=MESSAGE_TYPE)

    def exchange(
        self, requests: Mapping[int, Request], timeout: float
    ) -> tuple[dict[int, Reply], dict[int, str]]:
        messages = [self.message(engine, q) for engine, q in requests.items()]
        waiting = set(self.grid.push_messages(messages))
        replies: dict[int, Reply] = {}
        errors: dict[int, str] = {}
        deadline = time.monotonic() + timeout
        while waiting and time.monotonic() < deadline:
            for m in self.grid.pull_messages(waiting):
                waiting.discard(m.metadata.reply_to_message_id)
                engine = m.metadata.src_node_id
                if m.has_error():
                    errors[engine] = _error_line(m.error.reason or "")
                    continue
                try:
                    replies[engine] = reply_from_records(m.content)
                except SdlError as exc:
                    errors[engine] = str(exc)
            if waiting:
                time.sleep(POLL_SECONDS)
        return replies, errors


def _error_line(reason: str) -> str:
    """The last line of a ClientApp's error: its exception and message, not the traceback."""
    lines = [line.strip() for line in str(reason).strip().splitlines() if line.strip()]
    return lines[-1] if lines else "the node failed"


app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    rc = context.run_config
    progress_path = Path(str(rc["progress-file"]))
    progress_path.parent.mkdir(parents=True, exist_ok=True)

    def progress(event: Mapping[str, Any]) -> None:
        with progress_path.open("a") as f:
            f.write(json.dumps(dict(event), sort_keys=True) + "\n")

    finished = False
    try:
        task = task_from_json(json.loads(str(rc["job"])))
        roster = load_roster(Path(str(rc["roster"])))
        hold = _hold(str(rc.get("hold", "")), progress_path, progress)
        relay = Relay(
            FlowerLink(grid), task, roster, roster_digest(roster),
            suite=str(rc["suite"]), tick_timeout=float(rc["tick-timeout"]),
            connect_timeout=float(rc["connect-timeout"]), progress=progress, hold=hold,
        )  # fmt: skip
        out = Path(str(rc["out"]))
        if isinstance(task, SumTask):
            path = out / SUM_RESULT
            write_text_atomically(path, json.dumps(relay.run_sum(), sort_keys=True) + "\n")
            written = [path]
        else:
            from reference.learning.outputs import write_outputs  # noqa: PLC0415

            written = write_outputs(relay.run(), out)
        progress({"type": "done", "outputs": [str(p) for p in written]})
        finished = True
    except SdlError as exc:
        progress({"type": "failed", "error": type(exc).__name__, "message": str(exc)})
        finished = True
    except OSError as exc:
        progress({"type": "failed", "error": "OSError", "message": str(exc)})
        finished = True
    finally:
        if not finished:
            # Anything else propagates to Flower (which logs its traceback); the driver
            # learns at once that the job is over.
            why = "the ServerApp stopped on an unexpected error (see its log)"
            progress({"type": "failed", "error": "ServerAppError", "message": why})


def _hold(spec: str, progress_path: Path, progress: Any) -> Any:
    """``hold = "ROUND:TICK,..."``: before those ticks, wait for ``<progress-file>.go.N``.

    A fault-injection point for ``sdl deploy local --crash``: the driver stops a node
    there, then lets the relay go on, so the fault lands at a known step.
    """
    points = []
    for item in filter(None, (s.strip() for s in spec.split(","))):
        r, _, k = item.partition(":")
        points.append((int(r), int(k)))
    if not points:
        return None
    passed: list[tuple[int, int]] = []

    def hold(r: int, tick: int) -> None:
        if (r, tick) not in points or (r, tick) in passed:
            return
        passed.append((r, tick))
        n = len(passed)
        progress({"type": "hold", "round": r, "tick": tick, "n": n})
        go = progress_path.with_name(progress_path.name + f".go.{n}")
        deadline = time.monotonic() + 120
        while not go.exists() and time.monotonic() < deadline:
            time.sleep(0.05)

    return hold


__all__ = ["FlowerLink", "app"]
