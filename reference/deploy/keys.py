"""A node's identity key on disk, and the roster every node holds.

Spec: spec/15-deployment.md#identities-and-the-roster

Each site runs ``sdl deploy keygen --node-dir DIR --node ID`` once. It draws
the node's Ed25519 identity from :mod:`secrets` and keeps it in
``DIR/identity.key`` (mode 0600, never printed), and writes the public half
to ``DIR/identity.pub.json``. The consortium collects the public halves,
out of band, into one ``roster.json`` (:func:`write_roster`) that every node
and the relay hold. Its SHA-256 is the roster's name: a run states it, and
every node refuses a run whose roster is not the one it holds
(spec/14-channels.md#identities: trust on first use is forbidden).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519

from protocol.channels import Roster, identity_key, identity_public
from protocol.errors import ParameterError
from protocol.params import MAX_NODE_ID
from reference.common.atomic import write_text_atomically

#: The file names inside a node's directory.
IDENTITY_FILE = "identity.key"
PUBLIC_FILE = "identity.pub.json"
#: The node's journal: the sessions and rounds it has started (spec/15-deployment.md#restarts).
JOURNAL_FILE = "journal.jsonl"

SECRET_SIZE = 32


def keygen(node_dir: Path, node: int) -> bytes:
    """Draw node ``node``'s identity into ``node_dir``; return its public key.

    Raises:
        ParameterError: ``node`` is not a node id, or ``node_dir`` already holds an identity
            (a second identity for one site would split its history; remove it by hand).
    """
    _check_node(node)
    node_dir.mkdir(parents=True, exist_ok=True)
    path = node_dir / IDENTITY_FILE
    if path.exists():
        raise ParameterError(
            f"{path} already holds an identity; a node keeps one identity for life "
            "(remove the directory by hand to start over)"
        )
    secret = secrets.token_bytes(SECRET_SIZE)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, json.dumps({"node": node, "secret": secret.hex()}).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    public = identity_public(identity_key(secret))
    write_text_atomically(
        node_dir / PUBLIC_FILE, json.dumps({"node": node, "identity": public.hex()}) + "\n"
    )
    return public


def load_identity(node_dir: Path) -> tuple[int, ed25519.Ed25519PrivateKey]:
    """The node id and identity key kept in ``node_dir``.

    Raises:
        ParameterError: there is no identity there, or the file is not one ``keygen`` wrote.
    """
    path = node_dir / IDENTITY_FILE
    try:
        obj = json.loads(path.read_text())
        node, secret = obj["node"], bytes.fromhex(obj["secret"])
    except FileNotFoundError:
        raise ParameterError(
            f"no identity in {node_dir}: run `sdl deploy keygen --node-dir {node_dir} --node ID`"
        ) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ParameterError(f"{path} is not an identity file: {exc}") from None
    _check_node(node)
    if len(secret) != SECRET_SIZE:
        raise ParameterError(f"{path} is not an identity file: the secret is not 32 bytes")
    return node, identity_key(secret)


def load_public(node_dir: Path) -> tuple[int, bytes]:
    """The node id and public identity key ``keygen`` wrote into ``node_dir``."""
    path = node_dir / PUBLIC_FILE
    try:
        obj = json.loads(path.read_text())
        node, public = obj["node"], bytes.fromhex(obj["identity"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ParameterError(f"{path} is not a public identity file: {exc}") from None
    _check_node(node)
    return node, public


def write_roster(path: Path, keys: dict[int, bytes]) -> str:
    """Write the roster of ``keys`` (node -> public identity) to ``path``; return its SHA-256."""
    roster = Roster(keys)
    text = json.dumps(roster.to_json(), sort_keys=True, indent=2) + "\n"
    write_text_atomically(path, text)
    return roster_digest(roster)


def load_roster(path: Path) -> Roster:
    """The roster in ``path``.

    Raises:
        ParameterError: the file cannot be read, or is not a roster.
    """
    try:
        obj = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ParameterError(f"cannot read the roster {path}: {exc}") from None
    return Roster.from_json(obj)


def roster_digest(roster: Roster) -> str:
    """The roster's name: SHA-256 of its canonical JSON (sorted keys, no spaces), in hex."""
    text = json.dumps(roster.to_json(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _check_node(node: object) -> None:
    if type(node) is not int or not 1 <= node <= MAX_NODE_ID:
        raise ParameterError(f"a node id is an int in [1, {MAX_NODE_ID}]; got {node!r}")


__all__ = [
    "IDENTITY_FILE",
    "JOURNAL_FILE",
    "PUBLIC_FILE",
    "keygen",
    "load_identity",
    "load_public",
    "load_roster",
    "roster_digest",
    "write_roster",
]
