"""Node keys, session setup and sealing: the randomized half of the secure channels.

Spec: spec/14-channels.md

What draws randomness lives here: identity and session keys
(:class:`NodeKeys`), channel keys and the KEM's ephemeral keys (inside
HPKE) for key frames (:meth:`NodeChannel.key_frames`), and every frame's
nonce (:meth:`NodeChannel.seal`). Opening, verifying and every byte layout
are in :mod:`protocol.channels`.

Keys come from a node's own secret. In production :meth:`NodeKeys.generate`
draws it from :mod:`secrets`; :meth:`NodeKeys.derive` expands a given seed
through the XOF for deterministic runs (tests, vectors, ``--seed``), which
are reproducible and therefore **not private**. Nonces and HPKE's
ephemeral keys always come from the operating system.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric import ed25519

from protocol.channels import (
    NONCE_SIZE,
    ChannelSuite,
    Endpoint,
    FrameHeader,
    KemPrivateKey,
    KemPublicKey,
    KeyHeader,
    Roster,
    SessionKey,
    assemble_key_frame,
    identity_key,
    identity_public,
    key_info,
    open_key_frame,
    plaintext,
    seal_plaintext,
    session_private_key,
    session_public_bytes,
    sign_session_key,
    verify_session_key,
)
from protocol.errors import ChannelError, LocalProtocolError, ParameterError
from protocol.field import Field
from protocol.messages import Message
from protocol.xof import Seed, Tag, Xof, derive_seed


@dataclass(frozen=True, slots=True)
class NodeKeys:
    """One node's keys for one session: its long-term identity and its session KEM key.

    Spec: spec/14-channels.md#identities, #session-keys

    ``channel_seed`` is set only for deterministic runs: the channel keys
    this node sends are then derived from it instead of drawn.
    """

    node: int
    suite: ChannelSuite
    identity: ed25519.Ed25519PrivateKey = field(repr=False)
    session_secret: bytes = field(repr=False)
    channel_seed: Seed | None = field(default=None, repr=False)

    @classmethod
    def generate(cls, node: int, suite: ChannelSuite) -> NodeKeys:
        """Fresh keys from the operating system's CSPRNG (production)."""
        return cls(
            node, suite, identity_key(secrets.token_bytes(32)),
            secrets.token_bytes(suite.secret_size),
        )  # fmt: skip

    @classmethod
    def derive(cls, seed: Seed, node: int, suite: ChannelSuite) -> NodeKeys:
        """Keys expanded from ``seed`` (deterministic runs only: not private).

        Spec: spec/14-channels.md#deterministic-keys

        Identity: ``derive_seed(seed, Tag("channel.identity", (node,)))``;
        session secret: the first ``suite.secret_size`` bytes of
        ``Xof(seed, Tag("channel.session", (node, kem_id)))``; channel key to
        node ``r``: the first ``suite.key_size`` bytes of
        ``Xof(seed, Tag("channel.key", (node, r, aead_id)))``.
        """
        identity = identity_key(derive_seed(seed, Tag("channel.identity", (node,))))
        secret = Xof(seed, Tag("channel.session", (node, suite.kem_id))).next_bytes(
            suite.secret_size
        )
        return cls(node, suite, identity, secret, seed)

    @property
    def identity_public(self) -> bytes:
        return identity_public(self.identity)

    @property
    def private_key(self) -> KemPrivateKey:
        return session_private_key(self.suite, self.session_secret)

    def advertise(self, session: bytes) -> SessionKey:
        """This node's signed session-key advertisement for ``session``."""
        return sign_session_key(
            self.identity,
            session=session,
            node=self.node,
            suite=self.suite,
            public_key=session_public_bytes(self.suite, self.session_secret),
        )

    def channel_key(self, recipient: int) -> bytes:
        """A fresh channel key for ``recipient`` (derived in deterministic runs)."""
        if self.channel_seed is None:
            return secrets.token_bytes(self.suite.key_size)
        tag = Tag("channel.key", (self.node, recipient, self.suite.aead_id))
        return Xof(self.channel_seed, tag).next_bytes(self.suite.key_size)


@dataclass(frozen=True, slots=True)
class Session:
    """The public side of a session: suite, roster and every node's verified session key.

    Spec: spec/14-channels.md#session-keys

    Built once per session from the roster (fixed out of band) and the
    advertisements the nodes publish; an advertisement that does not verify
    under the roster refuses the whole session.
    """

    session: bytes
    suite: ChannelSuite
    roster: Roster
    adverts: tuple[SessionKey, ...]
    public_keys: Mapping[int, KemPublicKey] = field(repr=False)

    @classmethod
    def establish(
        cls, session: bytes, suite: ChannelSuite, roster: Roster, adverts: Iterable[SessionKey]
    ) -> Session:
        """Verify each advertisement against the roster.

        Raises:
            ChannelError: an advertisement does not verify, or a node advertises
                twice (fault and node named).
            ParameterError: a roster node has not advertised a key (yet).
        """
        ordered = tuple(sorted(adverts, key=lambda a: a.node))
        keys: dict[int, KemPublicKey] = {}
        for advert in ordered:
            if advert.node in keys:
                raise ChannelError("session-key", f"node {advert.node} advertises two session keys")
            keys[advert.node] = verify_session_key(advert, roster, session=session, suite=suite)
        missing = sorted(set(roster.keys) - set(keys))
        if missing:
            raise ParameterError(f"nodes {missing} advertise no session key")
        return cls(session, suite, roster, ordered, keys)

    def to_json(self) -> dict[str, object]:
        """The session as a verifier needs it: no private key."""
        return {
            "suite": self.suite.name,
            "roster": self.roster.to_json(),
            "session_keys": [a.to_json() for a in self.adverts],
        }


#: The most frames one channel key seals: random 96-bit nonces stay unique except
#: with probability below 2^-32 (NIST SP 800-38D, section 8.3).
MAX_FRAMES_PER_KEY = 1 << 32


class NodeChannel:
    """One node's side of a session's channels. Spec: spec/14-channels.md#channel-keys

    It sends each peer a key frame carrying a fresh channel key
    (:meth:`key_frames`), accepts the key frames its peers send it
    (:meth:`accept`), then seals every message under the recipient's
    channel key with a fresh nonce (:meth:`seal`) and opens what it
    receives through :meth:`endpoint`.
    """

    def __init__(self, keys: NodeKeys, session: Session) -> None:
        if keys.suite != session.suite:
            raise ParameterError(
                f"node keys of suite {keys.suite.name}, session of {session.suite.name}"
            )
        self.keys = keys
        self.session = session
        self._private = keys.private_key
        self._send: dict[int, bytes] = {}
        self._receive: dict[int, bytes] = {}
        self._sealed: dict[int, int] = {}

    @property
    def node(self) -> int:
        return self.keys.node

    def key_frames(self, peers: Iterable[int]) -> dict[int, bytes]:
        """A key frame to each of ``peers`` (not yet sent a key), carrying a fresh channel key."""
        suite, out = self.session.suite, {}
        for peer in peers:
            if peer == self.node or peer in self._send:
                continue
            header = KeyHeader(suite, self.session.session, self.node, peer).encode()
            key = self.keys.channel_key(peer)
            sealed = suite.hpke().encrypt(
                key, self.session.public_keys[peer], info=key_info(header)
            )
            self._send[peer] = key
            out[peer] = assemble_key_frame(header, sealed, self.keys.identity)
        return out

    def accept(self, frame: bytes) -> int:
        """Open a key frame sent to this node and keep its channel key; returns the sender.

        A second key frame from a sender is accepted only if it carries the
        same key (a copy); a different one is refused.

        Raises:
            ChannelError: the frame does not open (:func:`open_key_frame`), or
                (``key``) it carries a second, different key from its sender.
        """
        sender, key = open_key_frame(
            frame, node=self.node, session=self.session.session, suite=self.session.suite,
            private_key=self._private, roster=self.session.roster,
        )  # fmt: skip
        known = self._receive.get(sender)
        if known is not None and known != key:
            raise ChannelError("key", f"node {sender} already sent node {self.node} a channel key")
        self._receive[sender] = key
        return sender

    def seal(
        self, message: Message, field: type[Field], *, forwarded: bytes | None = None
    ) -> bytes:
        """The frame that carries ``message`` to its recipient, under a fresh nonce
        (``forwarded``: the decision signature an echo or a partial sum carries).

        Raises:
            ParameterError: this node has sent the recipient no channel key.
            LocalProtocolError: the channel key to the recipient is used up.
        """
        data = plaintext(message, field, self.keys.identity, forwarded=forwarded)
        return self.seal_plaintext(message, data)

    def seal_plaintext(self, message: Message, data: bytes) -> bytes:
        """:meth:`seal` once the message's :func:`~protocol.channels.plaintext` is built.

        At most :data:`MAX_FRAMES_PER_KEY` frames are sealed under one channel
        key (random 96-bit nonces, NIST SP 800-38D); the session must end
        before that.

        Raises:
            ParameterError: this node has sent the recipient no channel key.
            LocalProtocolError: the channel key to the recipient is used up.
        """
        to = message.recipient
        key = self._send.get(to)
        if key is None:
            raise ParameterError(
                f"node {self.node} has no channel key for node {to}: send it a key frame first"
            )
        count = self._sealed.get(to, 0)
        if count >= MAX_FRAMES_PER_KEY:
            raise LocalProtocolError(
                f"node {self.node} has sealed {count} frames under its channel key to node {to}: "
                "start a new session (spec/14-channels.md#sealing)"
            )
        self._sealed[to] = count + 1
        suite = self.session.suite
        header = FrameHeader.of(message, suite).encode()
        return seal_plaintext(
            header, data, suite=suite, key=key, nonce=secrets.token_bytes(NONCE_SIZE)
        )

    def export(self) -> dict[str, object]:
        """The channel keys and frame counts, to keep between a node's processes.

        **Secret**: the form holds every channel key this node shares; it
        never leaves the node (a deployment keeps it in the node's own state).
        """
        return {
            "send": {str(k): v.hex() for k, v in sorted(self._send.items())},
            "receive": {str(k): v.hex() for k, v in sorted(self._receive.items())},
            "sealed": {str(k): v for k, v in sorted(self._sealed.items())},
        }

    @classmethod
    def restore(cls, keys: NodeKeys, session: Session, obj: Mapping[str, object]) -> NodeChannel:
        """The channel :meth:`export` saved, over the same keys and session.

        Raises:
            LocalProtocolError: ``obj`` is not what :meth:`export` writes.
        """
        channel = cls(keys, session)
        size = session.suite.key_size
        try:
            for name, into in (("send", channel._send), ("receive", channel._receive)):
                table = obj[name]
                if not isinstance(table, Mapping):
                    raise LocalProtocolError(f"channel state {name!r} must be a mapping")
                for peer, key in table.items():
                    raw = bytes.fromhex(str(key))
                    if len(raw) != size:
                        raise LocalProtocolError(f"channel state {name}[{peer}] is not a key")
                    into[int(peer)] = raw
            sealed = obj["sealed"]
            if not isinstance(sealed, Mapping):
                raise LocalProtocolError("channel state 'sealed' must be a mapping")
            for peer, count in sealed.items():
                if type(count) is not int or count < 0:
                    raise LocalProtocolError(f"channel state sealed[{peer}] must be an int >= 0")
                channel._sealed[int(peer)] = count
        except (KeyError, ValueError, TypeError) as exc:
            raise LocalProtocolError(f"not a saved channel state: {exc}") from None
        return channel

    def endpoint(
        self,
        *,
        roles: Iterable[str],
        round: int,
        field: type[Field],
        coordinator: int | None = None,
    ) -> Endpoint:
        """What this node needs to open the frames of ``round`` (``coordinator``: the
        round's, when it has Byzantine nodes and echoes and partial sums forward
        its signature)."""
        s = self.session
        return Endpoint(
            self.node, frozenset(roles), s.session, round, s.suite, dict(self._receive),
            s.roster, field, coordinator,
        )  # fmt: skip


def deterministic_session(
    seed: Seed, session: bytes, nodes: Iterable[int], suite: ChannelSuite
) -> tuple[Session, dict[int, NodeKeys]]:
    """A whole session's keys from one seed, as the simulator uses them (not private)."""
    keys = {node: NodeKeys.derive(seed, node, suite) for node in nodes}
    roster = Roster({node: k.identity_public for node, k in keys.items()})
    adverts = [k.advertise(session) for k in keys.values()]
    return Session.establish(session, suite, roster, adverts), keys


def connect(session: Session, keys: Mapping[int, NodeKeys]) -> dict[int, NodeChannel]:
    """Every node's channel, after every node has sent every other its key frame.

    What a deployment does over the network, in one process: each node seals
    a key frame to each peer, and each peer opens it.
    """
    channels = {node: NodeChannel(k, session) for node, k in keys.items()}
    for channel in channels.values():
        for peer, frame in channel.key_frames(channels).items():
            channels[peer].accept(frame)
    return channels


__all__ = [
    "MAX_FRAMES_PER_KEY",
    "NodeChannel",
    "NodeKeys",
    "Session",
    "connect",
    "deterministic_session",
]
