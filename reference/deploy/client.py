"""The ClientApp: Flower's side of one node. Spec: spec/15-deployment.md#the-flower-app

Each message runs in a fresh ClientApp process, so the node's state is loaded
from ``context.state`` and saved back after every step (it stays on the
SuperNode; Flower does not send it to the SuperLink). The SuperNode's operator
names the node's directory (identity key, journal) and the roster in its node
config: ``--node-config 'node-dir="/path" roster="/path/roster.json"'``.
"""

from __future__ import annotations

from pathlib import Path

from flwr.app import ConfigRecord, Context, Message
from flwr.clientapp import ClientApp

from protocol.errors import ParameterError
from reference.deploy.node import Node, NodeSetup
from reference.deploy.wire import reply_to_records, request_from_records

#: The key under which the node keeps its state in ``context.state``.
STATE = "sdl"

app = ClientApp()


def setup_of(context: Context) -> NodeSetup:
    """The node's directory and roster, from the SuperNode's node config."""
    try:
        return NodeSetup(Path(str(context.node_config["node-dir"])),
                         Path(str(context.node_config["roster"])))  # fmt: skip
    except KeyError as exc:
        raise ParameterError(
            f"the SuperNode's --node-config must name {exc.args[0]!r} "
            '(node-dir="/path" roster="/path/roster.json")'
        ) from None


@app.query()
def handle(message: Message, context: Context) -> Message:
    saved = None
    if STATE in context.state.config_records:
        value = context.state.config_records[STATE]["state"]
        saved = value if isinstance(value, bytes) else None
    node = Node(setup_of(context), saved)
    reply = node.handle(request_from_records(message.content))
    state = node.saved()
    if state is not None:
        context.state[STATE] = ConfigRecord({"state": state})
    return Message(reply_to_records(reply), reply_to=message)


__all__ = ["app", "setup_of"]
