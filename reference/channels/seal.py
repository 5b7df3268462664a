"""Node keys, session setup and sealing: what the drivers add to protocol/channels.py.

Spec: spec/14-channels.md

Sealing draws the KEM's fresh ephemeral key from the operating system (inside
HPKE), so it is not a pure function and does not live in ``protocol/``.
Opening, verifying and every byte layout are in :mod:`protocol.channels`.

Keys come from a node's own secret. In production :meth:`NodeKeys.generate`
draws it from :mod:`secrets`; :meth:`NodeKeys.derive` expands a given seed
through the XOF for deterministic runs (tests, vectors, ``--seed``), which
are reproducible and therefore **not private**.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric import ed25519

from protocol.channels import (
    ChannelSuite,
    Endpoint,
    FrameHeader,
    KemPrivateKey,
    KemPublicKey,
    Roster,
    SessionKey,
    assemble,
    identity_key,
    identity_public,
    info,
    plaintext,
    session_private_key,
    session_public_bytes,
    sign_session_key,
    verify_session_key,
)
from protocol.errors import ChannelError, ParameterError
from protocol.field import Field
from protocol.messages import Message
from protocol.xof import Seed, Tag, Xof, derive_seed


@dataclass(frozen=True, slots=True)
class NodeKeys:
    """One node's keys for one session: its long-term identity and its session KEM key.

    Spec: spec/14-channels.md#identities, #session-keys
    """

    node: int
    suite: ChannelSuite
    identity: ed25519.Ed25519PrivateKey = field(repr=False)
    session_secret: bytes = field(repr=False)

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

        Identity: ``derive_seed(seed, Tag("channel.identity", (node,)))``;
        session secret: the first ``suite.secret_size`` bytes of
        ``Xof(seed, Tag("channel.session", (node, kem_id)))``.
        """
        identity = identity_key(derive_seed(seed, Tag("channel.identity", (node,))))
        secret = Xof(seed, Tag("channel.session", (node, suite.kem_id))).next_bytes(
            suite.secret_size
        )
        return cls(node, suite, identity, secret)

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


def seal(
    message: Message,
    field: type[Field],
    *,
    suite: ChannelSuite,
    identity: ed25519.Ed25519PrivateKey,
    recipient_key: KemPublicKey,
) -> bytes:
    """The frame that carries ``message`` to its recipient. Spec: spec/14-channels.md#sealing

    The header is the message's own; HPKE seals the plaintext under
    ``info(header)`` to ``recipient_key``; ``identity`` signs header and
    ciphertext.
    """
    header = FrameHeader.of(message, suite).encode()
    sealed = suite.hpke().encrypt(
        plaintext(message, field, identity), recipient_key, info=info(header)
    )
    return assemble(header, sealed, identity)


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

    def endpoint(
        self, keys: NodeKeys, *, roles: Iterable[str], round: int, field: type[Field]
    ) -> Endpoint:
        """What ``keys.node`` needs to open the frames of ``round``."""
        return Endpoint(
            keys.node, frozenset(roles), self.session, round, self.suite, keys.private_key,
            self.roster, field,
        )  # fmt: skip

    def to_json(self) -> dict[str, object]:
        """The session as a verifier needs it: no private key."""
        return {
            "suite": self.suite.name,
            "roster": self.roster.to_json(),
            "session_keys": [a.to_json() for a in self.adverts],
        }


def deterministic_session(
    seed: Seed, session: bytes, nodes: Iterable[int], suite: ChannelSuite
) -> tuple[Session, dict[int, NodeKeys]]:
    """A whole session's keys from one seed, as the simulator uses them (not private)."""
    keys = {node: NodeKeys.derive(seed, node, suite) for node in nodes}
    roster = Roster({node: k.identity_public for node, k in keys.items()})
    return Session.establish(
        session, suite, roster, [k.advertise(session) for k in keys.values()]
    ), keys


__all__ = ["NodeKeys", "Session", "deterministic_session", "seal"]
