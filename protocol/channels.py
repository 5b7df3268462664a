"""Secure channels: every message sealed to its recipient and authenticated by its sender.

Spec: spec/14-channels.md

Two layers, so that public-key operations are paid once per session and
each message costs one AEAD pass:

1. **Channel keys** (once per session, per ordered pair of nodes). Node
   ``S`` draws a fresh AEAD key ``k(S->R)`` for each other node ``R`` and
   sends it in a *key frame*::

       key frame = key_header || enc || ct || signature
       key_header 51 bytes: suite, session, sender, recipient
       enc || ct  HPKE (RFC 9180, base mode) of k(S->R) to R's session key,
                  info = ASCII("sdl.channel.key-info") || 0x00 || key_header
       signature  Ed25519 by S's roster identity over
                  ASCII("sdl.channel.key") || 0x00 || key_header || enc || ct

2. **Frames** (every message between two nodes)::

       frame  = header || nonce || ct
       header 63 bytes: who sends what to whom, in which session, round and stage
       nonce  12 bytes, fresh from a CSPRNG
       ct     AEAD(k(S->R), nonce, aad = ASCII("sdl.channel.frame") || 0x00 || header,
                   plaintext = the message's binary form (spec 09) [|| statement signature])

Only ``S`` and ``R`` know ``k(S->R)``, so a frame that opens under it was
sealed by ``S``, for exactly the context its header names. The
coordinator's decisions and aborts also carry a *statement signature*
inside the plaintext, over the message without its recipient, which any
holder of the roster can check: two conflicting decisions are evidence
(:func:`conflicting`).

Everything here is a pure function of keys and bytes: opening, verifying,
signing (Ed25519 is deterministic), sealing a frame with a given nonce,
and deriving keys from given secret bytes. Drawing nonces, channel keys
and the KEM's ephemeral keys is the drivers' business (``reference/channels``).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any, TypeAlias

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import ed25519, mlkem, x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from protocol.errors import ChannelError, InvalidMessage, ParameterError
from protocol.field import Field
from protocol.messages import (
    Abort,
    Decision,
    Echo,
    Message,
    PartialSum,
    Role,
    decode_wire,
    encode_wire,
    wire_size,
)
from protocol.params import VERSION

#: A KEM private key of one of the suites.
KemPrivateKey: TypeAlias = x25519.X25519PrivateKey | hpke.MLKEM768X25519PrivateKey
#: A KEM public key of one of the suites.
KemPublicKey: TypeAlias = x25519.X25519PublicKey | hpke.MLKEM768X25519PublicKey

SIGNATURE_SIZE = 64
IDENTITY_KEY_SIZE = 32
#: The AEAD tag every suite appends to the ciphertext.
TAG_SIZE = 16
#: The AEAD nonce of a frame.
NONCE_SIZE = 12
#: The message kinds whose plaintext ends with the sender's statement signature.
SIGNED_KINDS: frozenset[str] = frozenset({"decision", "abort"})
#: The message kinds that, in a round with Byzantine nodes (an endpoint with a
#: ``coordinator``), end with the coordinator's statement signature of the final
#: decision they answer: forwarded evidence (spec/14-channels.md#forwarded-signatures).
FORWARDING_KINDS: frozenset[str] = frozenset({"echo", "partial_sum"})

_MAGIC = b"SDLF"
_KEY_MAGIC = b"SDLK"
_LABEL_KEY_INFO = b"sdl.channel.key-info\x00"
_LABEL_KEY = b"sdl.channel.key\x00"
_LABEL_FRAME = b"sdl.channel.frame\x00"
_LABEL_SESSION_KEY = b"sdl.channel.session-key\x00"
_LABEL_STATEMENT = b"sdl.channel.statement\x00"

KINDS: dict[str, int] = {
    "share": 1, "report": 2, "decision": 3, "partial_sum": 4, "abort": 5, "echo": 6,
}  # fmt: skip
ROLES: dict[str, int] = {"contributor": 1, "aggregator": 2, "coordinator": 3, "receiver": 4}
_KIND_OF = {v: k for k, v in KINDS.items()}
_ROLE_OF = {v: k for k, v in ROLES.items()}

# ---------------------------------------------------------------------- suites


@dataclass(frozen=True, slots=True)
class ChannelSuite:
    """An HPKE suite by its RFC 9180 identifiers. Spec: spec/14-channels.md#suites"""

    name: str
    kem_id: int
    kdf_id: int
    aead_id: int
    #: Size of the KEM's encapsulated key ``enc``.
    enc_size: int
    #: Size of a session public key in its wire encoding.
    public_key_size: int
    #: Size of the secret bytes a session private key is derived from.
    secret_size: int
    #: Size of a channel key: the AEAD's key size (Nk of RFC 9180).
    key_size: int

    def hpke(self) -> hpke.Suite:
        """The suite as a ``cryptography`` HPKE suite (built once per suite)."""
        ids = (self.kem_id, self.kdf_id, self.aead_id)
        suite = _HPKE_SUITES.get(ids)
        if suite is None:
            kem = {0x0020: hpke.KEM.X25519, 0x647A: hpke.KEM.MLKEM768_X25519}[self.kem_id]
            aead = {0x0001: hpke.AEAD.AES_128_GCM, 0x0003: hpke.AEAD.CHACHA20_POLY1305}[
                self.aead_id
            ]
            suite = _HPKE_SUITES[ids] = hpke.Suite(kem, hpke.KDF.HKDF_SHA256, aead)
        return suite

    def aead(self, key: bytes) -> AESGCM | ChaCha20Poly1305:
        """The suite's AEAD under ``key`` (a channel key of ``key_size`` bytes)."""
        if self.aead_id == 0x0001:
            return AESGCM(key)
        return ChaCha20Poly1305(key)

    @property
    def overhead(self) -> int:
        """Bytes a frame adds to its plaintext: header, nonce and tag."""
        return HEADER_SIZE + NONCE_SIZE + TAG_SIZE

    @property
    def key_frame_size(self) -> int:
        """The size of a key frame: key header, ``enc``, the sealed key, signature."""
        return KEY_HEADER_SIZE + self.enc_size + self.key_size + TAG_SIZE + SIGNATURE_SIZE


_HPKE_SUITES: dict[tuple[int, int, int], hpke.Suite] = {}

#: Every suite SDL offers, by name. Spec: spec/14-channels.md#suites
SUITES: dict[str, ChannelSuite] = {
    s.name: s
    for s in (
        ChannelSuite("x25519-aes128gcm", 0x0020, 0x0001, 0x0001, 32, 32, 32, 16),
        ChannelSuite("x25519-chacha20poly1305", 0x0020, 0x0001, 0x0003, 32, 32, 32, 32),
        ChannelSuite("mlkem768x25519-aes128gcm", 0x647A, 0x0001, 0x0001, 1120, 1216, 96, 16),
    )
}
#: The default suite: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM.
DEFAULT_SUITE = SUITES["x25519-aes128gcm"]


def suite_named(name: str) -> ChannelSuite:
    """The suite called ``name``.

    Raises:
        ParameterError: no suite has that name (the error lists them).
    """
    try:
        return SUITES[name]
    except KeyError:
        raise ParameterError(
            f"channel suite must be one of {', '.join(SUITES)}; got {name!r}"
        ) from None


def _suite_by_ids(kem_id: int, kdf_id: int, aead_id: int) -> ChannelSuite | None:
    for s in SUITES.values():
        if (s.kem_id, s.kdf_id, s.aead_id) == (kem_id, kdf_id, aead_id):
            return s
    return None


# ---------------------------------------------------------------------- keys


def identity_key(secret: bytes) -> ed25519.Ed25519PrivateKey:
    """A node's Ed25519 identity key from its 32 secret bytes. Spec: spec/14-channels.md#identities

    Raises:
        ParameterError: ``secret`` is not 32 bytes.
    """
    if not isinstance(secret, bytes) or len(secret) != IDENTITY_KEY_SIZE:
        raise ParameterError(f"an identity secret is {IDENTITY_KEY_SIZE} bytes; got {secret!r:.40}")
    return ed25519.Ed25519PrivateKey.from_private_bytes(secret)


def identity_public(key: ed25519.Ed25519PrivateKey) -> bytes:
    """The 32-byte public identity of ``key``."""
    return key.public_key().public_bytes_raw()


def session_private_key(suite: ChannelSuite, secret: bytes) -> KemPrivateKey:
    """A session private key from ``suite.secret_size`` secret bytes.

    Spec: spec/14-channels.md#session-keys

    X25519: the 32 bytes are the private key. ML-KEM-768 + X25519: the first
    64 bytes are the ML-KEM-768 seed ``d || z`` (FIPS 203), the last 32 the
    X25519 private key.

    Raises:
        ParameterError: ``secret`` has the wrong size for the suite.
    """
    if not isinstance(secret, bytes) or len(secret) != suite.secret_size:
        raise ParameterError(
            f"a {suite.name} session secret is {suite.secret_size} bytes; got {secret!r:.40}"
        )
    if suite.kem_id == 0x0020:
        return x25519.X25519PrivateKey.from_private_bytes(secret)
    return hpke.MLKEM768X25519PrivateKey(
        mlkem.MLKEM768PrivateKey.from_seed_bytes(secret[:64]),
        x25519.X25519PrivateKey.from_private_bytes(secret[64:]),
    )


def session_public_bytes(suite: ChannelSuite, secret: bytes) -> bytes:
    """The wire encoding of the public key of :func:`session_private_key`.

    X25519: the 32-byte public key. ML-KEM-768 + X25519: the ML-KEM-768
    encapsulation key (1184 bytes) followed by the X25519 public key.
    """
    if suite.kem_id == 0x0020:
        return x25519.X25519PrivateKey.from_private_bytes(secret).public_key().public_bytes_raw()
    session_private_key(suite, secret)  # checks the size
    m = mlkem.MLKEM768PrivateKey.from_seed_bytes(secret[:64])
    x = x25519.X25519PrivateKey.from_private_bytes(secret[64:])
    return m.public_key().public_bytes_raw() + x.public_key().public_bytes_raw()


def session_public_key(suite: ChannelSuite, data: bytes) -> KemPublicKey:
    """Parse a session public key from its wire encoding.

    Raises:
        ChannelError: (``session-key``) the bytes are not a public key of the suite.
    """
    if len(data) != suite.public_key_size:
        raise ChannelError(
            "session-key",
            f"a {suite.name} session key is {suite.public_key_size} bytes; got {len(data)}",
        )
    try:
        if suite.kem_id == 0x0020:
            return x25519.X25519PublicKey.from_public_bytes(data)
        return hpke.MLKEM768X25519PublicKey(
            mlkem.MLKEM768PublicKey.from_public_bytes(data[:1184]),
            x25519.X25519PublicKey.from_public_bytes(data[1184:]),
        )
    except ValueError as exc:
        raise ChannelError("session-key", f"not a {suite.name} public key: {exc}") from None


# ---------------------------------------------------------------------- roster


@dataclass(frozen=True, slots=True)
class Roster:
    """Node id -> Ed25519 identity public key, fixed by the session configuration.

    Spec: spec/14-channels.md#identities

    A node trusts exactly the identities its roster names: never a key
    first seen on the wire.
    """

    keys: Mapping[int, bytes]
    _parsed: dict[int, ed25519.Ed25519PublicKey] = dataclass_field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        for node, key in self.keys.items():
            if type(node) is not int or not 1 <= node < 1 << 32:
                raise ParameterError(f"a roster node id is an int in [1, 2^32); got {node!r}")
            if not isinstance(key, bytes) or len(key) != IDENTITY_KEY_SIZE:
                raise ParameterError(
                    f"node {node}'s identity key must be {IDENTITY_KEY_SIZE} bytes; got {key!r:.40}"
                )
        object.__setattr__(self, "keys", dict(sorted(self.keys.items())))

    def identity(self, node: int) -> ed25519.Ed25519PublicKey:
        """Node ``node``'s identity public key.

        Raises:
            ChannelError: (``roster``) the roster does not name the node.
        """
        parsed = self._parsed.get(node)
        if parsed is not None:
            return parsed
        key = self.keys.get(node)
        if key is None:
            raise ChannelError("roster", f"node {node} is not in the session's roster")
        parsed = self._parsed[node] = ed25519.Ed25519PublicKey.from_public_bytes(key)
        return parsed

    def to_json(self) -> dict[str, str]:
        return {str(node): key.hex() for node, key in self.keys.items()}

    @classmethod
    def from_json(cls, obj: object) -> Roster:
        """Inverse of :meth:`to_json`.

        Raises:
            ParameterError: not an object of decimal node ids to 64-digit hex keys.
        """
        if not isinstance(obj, Mapping):
            raise ParameterError(f"a roster is an object of node id -> hex key; got {obj!r:.60}")
        keys: dict[int, bytes] = {}
        for node, key in obj.items():
            if not (isinstance(node, str) and node.isdigit() and str(int(node)) == node):
                raise ParameterError(f"a roster node id is a decimal string; got {node!r}")
            if not isinstance(key, str) or len(key) != 2 * IDENTITY_KEY_SIZE:
                raise ParameterError(f"node {node}'s identity key must be 64 hex digits")
            try:
                keys[int(node)] = bytes.fromhex(key)
            except ValueError:
                raise ParameterError(f"node {node}'s identity key is not hex: {key!r}") from None
        return cls(keys)


# ---------------------------------------------------------------------- session keys


@dataclass(frozen=True, slots=True)
class SessionKey:
    """A node's per-session encryption key, signed by its identity.

    Spec: spec/14-channels.md#session-keys
    """

    session: bytes
    node: int
    suite: ChannelSuite
    public_key: bytes
    signature: bytes

    @staticmethod
    def payload(session: bytes, node: int, suite: ChannelSuite, public_key: bytes) -> bytes:
        """``ASCII("sdl.channel.session-key") || 0x00 || session || u32le(node) ||
        u16le(kem_id) || u16le(kdf_id) || u16le(aead_id) || public_key``."""
        ids = struct.pack("<IHHH", node, suite.kem_id, suite.kdf_id, suite.aead_id)
        return _LABEL_SESSION_KEY + session + ids + public_key

    def to_json(self) -> dict[str, Any]:
        return {
            "session": self.session.hex(),
            "node": self.node,
            "suite": self.suite.name,
            "public_key": self.public_key.hex(),
            "signature": self.signature.hex(),
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> SessionKey:
        """Inverse of :meth:`to_json`.

        Raises:
            ParameterError: a field is missing or malformed.
        """
        try:
            return cls(
                bytes.fromhex(obj["session"]),
                int(obj["node"]),
                suite_named(str(obj["suite"])),
                bytes.fromhex(obj["public_key"]),
                bytes.fromhex(obj["signature"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, ParameterError):
                raise
            raise ParameterError(f"malformed session key: {exc!r}") from None


def sign_session_key(
    identity: ed25519.Ed25519PrivateKey,
    *,
    session: bytes,
    node: int,
    suite: ChannelSuite,
    public_key: bytes,
) -> SessionKey:
    """``node``'s advertisement of ``public_key`` for ``session``, signed by ``identity``."""
    signature = identity.sign(SessionKey.payload(session, node, suite, public_key))
    return SessionKey(session, node, suite, public_key, signature)


def verify_session_key(
    advert: SessionKey, roster: Roster, *, session: bytes, suite: ChannelSuite
) -> KemPublicKey:
    """The session public key ``advert`` carries, once it checks out.

    Raises:
        ChannelError: ``session-key`` (another session or suite, or not a
            key), ``roster`` (the node is not in the roster) or
            ``signature`` (the node's roster identity did not sign it).
    """
    if advert.session != session:
        raise ChannelError(
            "session-key", f"node {advert.node}'s session key is for session "
            f"{advert.session.hex()[:16]}…, not {session.hex()[:16]}…"
        )  # fmt: skip
    if advert.suite != suite:
        raise ChannelError(
            "session-key",
            f"node {advert.node}'s session key is for suite {advert.suite.name}, not {suite.name}",
        )
    key = roster.identity(advert.node)
    payload = SessionKey.payload(advert.session, advert.node, advert.suite, advert.public_key)
    try:
        key.verify(advert.signature, payload)
    except InvalidSignature:
        raise ChannelError(
            "signature", f"node {advert.node}'s session key is not signed by its roster identity"
        ) from None
    return session_public_key(suite, advert.public_key)


# ---------------------------------------------------------------------- frames

_HEADER = struct.Struct("<4sBHHH32sQHBBII")
#: Size of a frame header. Spec: spec/14-channels.md#header
HEADER_SIZE = _HEADER.size


@dataclass(frozen=True, slots=True)
class FrameHeader:
    """What the relay sees of a frame. Spec: spec/14-channels.md#header

    ``stage`` is the message's stage, or 0 for an abort (which has none).
    """

    suite: ChannelSuite
    session: bytes
    round: int
    stage: int
    kind: str
    role: Role
    sender: int
    recipient: int

    @classmethod
    def of(cls, message: Message, suite: ChannelSuite) -> FrameHeader:
        """The header of the frame that carries ``message``."""
        return cls(
            suite,
            bytes.fromhex(message.session),
            message.round,
            getattr(message, "stage", 0),
            message.kind,
            message.role,
            message.sender,
            message.recipient,
        )

    def encode(self) -> bytes:
        """``ASCII("SDLF") || u8(version) || u16le(kem_id) || u16le(kdf_id) ||
        u16le(aead_id) || session || u64le(round) || u16le(stage) || u8(kind) ||
        u8(role) || u32le(sender) || u32le(recipient)``."""
        s = self.suite
        return _HEADER.pack(
            _MAGIC, VERSION, s.kem_id, s.kdf_id, s.aead_id, self.session, self.round,
            self.stage, KINDS[self.kind], ROLES[self.role], self.sender, self.recipient,
        )  # fmt: skip

    @classmethod
    def decode(cls, data: bytes) -> FrameHeader:
        """Inverse of :meth:`encode`.

        Raises:
            ChannelError: ``truncated`` (fewer than 63 bytes), ``header`` (bad
                magic, version, kind or role) or ``suite`` (unknown suite ids).
        """
        if len(data) < HEADER_SIZE:
            raise ChannelError(
                "truncated", f"a frame header is {HEADER_SIZE} bytes; got {len(data)}"
            )
        magic, version, kem, kdf, aead, session, rnd, stage, kind, role, sender, recipient = (
            _HEADER.unpack_from(data)
        )
        if magic != _MAGIC:
            raise ChannelError("header", f"header.magic must be {_MAGIC!r}; got {magic!r}")
        if version != VERSION:
            raise ChannelError("header", f"header.version must be {VERSION}; got {version}")
        suite = _suite_by_ids(kem, kdf, aead)
        if suite is None:
            raise ChannelError(
                "suite",
                f"header suite (kem {kem:#06x}, kdf {kdf:#06x}, aead {aead:#06x}) is unknown",
            )
        if kind not in _KIND_OF or role not in _ROLE_OF:
            raise ChannelError("header", f"header.kind {kind} or header.role {role} is unknown")
        if sender == 0 or recipient == 0:
            raise ChannelError("header", "header.sender and header.recipient must be >= 1")
        return cls(suite, session, rnd, stage, _KIND_OF[kind], _ROLE_OF[role], sender, recipient)  # type: ignore[arg-type]


def aad(header: bytes) -> bytes:
    """The AEAD associated data of a frame: ``ASCII("sdl.channel.frame") || 0x00 || header``."""
    return _LABEL_FRAME + header


def statement(message: Message) -> bytes:
    """What a signed broadcast's statement signature covers. Spec: spec/14-channels.md#statements

    ``ASCII("sdl.channel.statement") || 0x00 || canonical JSON`` of the
    message without ``recipient`` and ``role``: the same bytes for every
    recipient of one decision.
    """
    body = message.model_dump(mode="json", exclude={"recipient", "role"})
    return _LABEL_STATEMENT + json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def answered_decision(message: Echo | PartialSum, coordinator: int) -> Decision:
    """The final decision an echo or a partial sum answers, as the coordinator signed it.

    Spec: spec/14-channels.md#forwarded-signatures

    Its :func:`statement` is what the forwarded signature covers; the
    recipient and role, which the statement leaves out, are placeholders.
    """
    return Decision(
        session=message.session,
        round=message.round,
        sender=coordinator,
        recipient=message.sender,
        role="aggregator",
        stage=message.stage,
        contributors=message.contributors,
        aggregators=message.aggregators,
        final=True,
    )


def plaintext(
    message: Message,
    field: type[Field],
    identity: ed25519.Ed25519PrivateKey,
    *,
    forwarded: bytes | None = None,
) -> bytes:
    """What a frame seals: the message's binary form (spec 09), then, for a
    decision or an abort, the sender's statement signature, or, for an echo
    or a partial sum of a round with Byzantine nodes, the ``forwarded``
    statement signature of the decision it answers.

    Raises:
        ParameterError: ``forwarded`` is given for a kind that does not carry
            it, or is not 64 bytes.
    """
    wire = encode_wire(message, field)
    if message.kind in SIGNED_KINDS:
        return wire + identity.sign(statement(message))
    if forwarded is not None:
        if message.kind not in FORWARDING_KINDS or len(forwarded) != SIGNATURE_SIZE:
            raise ParameterError(
                f"only an echo or a partial sum forwards a {SIGNATURE_SIZE}-byte statement "
                f"signature; got a {message.kind} with {len(forwarded)} bytes"
            )
        return wire + forwarded
    return wire


def seal_frame(
    message: Message,
    field: type[Field],
    *,
    suite: ChannelSuite,
    key: bytes,
    nonce: bytes,
    identity: ed25519.Ed25519PrivateKey,
) -> bytes:
    """The frame ``header || nonce || ct`` that carries ``message``.

    Spec: spec/14-channels.md#sealing

    ``key`` is the sender's channel key for the recipient; ``nonce`` MUST
    be fresh for every frame under that key (the drivers draw it from a
    CSPRNG). ``identity`` signs the statement of a decision or an abort.
    """
    header = FrameHeader.of(message, suite).encode()
    return seal_plaintext(
        header, plaintext(message, field, identity), suite=suite, key=key, nonce=nonce
    )


def seal_plaintext(
    header: bytes, data: bytes, *, suite: ChannelSuite, key: bytes, nonce: bytes
) -> bytes:
    """``header || nonce || AEAD(key, nonce, data, aad(header))``: :func:`seal_frame`
    once the message's :func:`plaintext` is built."""
    if len(nonce) != NONCE_SIZE:
        raise ParameterError(f"a frame nonce is {NONCE_SIZE} bytes; got {len(nonce)}")
    return header + nonce + suite.aead(key).encrypt(nonce, data, aad(header))


@dataclass(frozen=True, slots=True)
class Endpoint:
    """What a node needs to open the frames of one round. Spec: spec/14-channels.md#opening

    ``keys`` maps each sender to the channel key it sent this node
    (:func:`open_key_frame`).
    """

    node: int
    roles: frozenset[str]
    session: bytes
    round: int
    suite: ChannelSuite
    keys: Mapping[int, bytes] = dataclass_field(repr=False)
    roster: Roster = dataclass_field(repr=False)
    field: type[Field] = dataclass_field(repr=False)
    #: The round's coordinator when the round has Byzantine nodes
    #: (``max_byzantine >= 1``): echoes and partial sums then carry its
    #: forwarded signature (spec/14-channels.md#forwarded-signatures).
    coordinator: int | None = None
    _aeads: dict[int, AESGCM | ChaCha20Poly1305] = dataclass_field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def aead(self, sender: int) -> AESGCM | ChaCha20Poly1305:
        """The AEAD under ``sender``'s channel key to this node.

        Raises:
            ChannelError: (``key``) ``sender`` sent this node no channel key.
        """
        aead = self._aeads.get(sender)
        if aead is None:
            key = self.keys.get(sender)
            if key is None:
                raise ChannelError("key", f"node {sender} has sent node {self.node} no channel key")
            aead = self._aeads[sender] = self.suite.aead(key)
        return aead


@dataclass(frozen=True, slots=True)
class Opened:
    """A frame that opened: header, message, and the statement signature of a broadcast
    (or, for an echo or a partial sum, the forwarded signature of its decision)."""

    header: FrameHeader
    message: Message
    statement_signature: bytes | None


def open_frame(frame: bytes, at: Endpoint) -> Opened:
    """Open and verify one frame sent to ``at``. Spec: spec/14-channels.md#opening

    The checks run in the spec's order: size, header, context (suite,
    session, round, recipient, role), roster, channel key, AEAD open,
    plaintext (its binary form, and every header field equal to the
    message's), statement signature. A frame that passes them all carries
    a message its roster sender sealed for exactly this context.

    Raises:
        ChannelError: the first check that fails, by fault and field.
    """
    header, data = open_ciphertext(frame, at)
    opened = read_plaintext(data, header, at)
    verify_opened(opened, at)
    return opened


def open_ciphertext(frame: bytes, at: Endpoint) -> tuple[FrameHeader, bytes]:
    """:func:`open_frame`'s checks up to the AEAD: the header and the plaintext's bytes.

    Raises:
        ChannelError: size, header, suite, context, roster, key or tag.
    """
    frame = bytes(frame)
    header = FrameHeader.decode(frame)
    suite = at.suite
    least = HEADER_SIZE + NONCE_SIZE + TAG_SIZE
    if len(frame) < least:
        raise ChannelError("truncated", f"a frame is at least {least} bytes; got {len(frame)}")
    _expect(header.suite == suite, "suite", f"header suite {header.suite.name}, not {suite.name}")
    _expect(header.session == at.session, "header", "header.session is another session's")
    _expect(header.round == at.round, "header", f"header.round is {header.round}, not {at.round}")
    _expect(
        header.recipient == at.node,
        "header",
        f"header.recipient is node {header.recipient}, not node {at.node}",
    )
    _expect(
        header.role in at.roles,
        "header",
        f"header.role {header.role} is not a role node {at.node} holds",
    )
    at.roster.identity(header.sender)
    aead = at.aead(header.sender)
    raw_header, nonce = frame[:HEADER_SIZE], frame[HEADER_SIZE : HEADER_SIZE + NONCE_SIZE]
    ct = memoryview(frame)[HEADER_SIZE + NONCE_SIZE :]  # read in place, not copied
    try:
        opened = aead.decrypt(nonce, ct, aad(raw_header))
    except InvalidTag:
        raise ChannelError(
            "tag",
            f"the frame does not open under node {header.sender}'s channel key: "
            "its header, nonce or ciphertext was altered, or another key sealed it",
        ) from None
    return header, opened


def read_plaintext(data: bytes, header: FrameHeader, at: Endpoint) -> Opened:
    """:func:`open_frame`'s plaintext check: the message's binary form, equal to its header.

    Raises:
        ChannelError: (``plaintext``) the bytes are not the binary form of a
            message whose fields are the header's.
    """
    signature: bytes | None = None
    forwards = at.coordinator is not None and header.kind in FORWARDING_KINDS
    if header.kind in SIGNED_KINDS or forwards:
        if len(data) < SIGNATURE_SIZE:
            what = "a signed broadcast" if not forwards else f"a {header.kind} of this round"
            raise ChannelError("plaintext", f"{what} ends with a 64-byte statement signature")
        data, signature = data[:-SIGNATURE_SIZE], data[-SIGNATURE_SIZE:]
    try:
        message = decode_wire(data, at.field)
    except InvalidMessage as exc:
        raise ChannelError("plaintext", str(exc)) from None
    carried = FrameHeader.of(message, header.suite)
    for name in ("session", "round", "stage", "kind", "role", "sender", "recipient"):
        _expect(
            getattr(carried, name) == getattr(header, name),
            "plaintext",
            f"the message's {name} differs from header.{name}",
        )
    return Opened(header, message, signature)


def verify_opened(opened: Opened, at: Endpoint) -> None:
    """:func:`open_frame`'s last check: a broadcast's statement signature.

    Raises:
        ChannelError: (``roster``, ``statement``) as :func:`verify_statement`.
    """
    m, signature = opened.message, opened.statement_signature
    if signature is None:
        return
    if isinstance(m, Echo | PartialSum):
        assert at.coordinator is not None  # read_plaintext splits one off only then
        decision = answered_decision(m, at.coordinator)
        try:
            at.roster.identity(at.coordinator).verify(signature, statement(decision))
        except InvalidSignature:
            raise ChannelError(
                "statement",
                f"node {m.sender}'s {m.kind} answers a final decision for stage {m.stage} "
                f"that the coordinator, node {at.coordinator}, did not sign",
            ) from None
        return
    verify_statement(m, signature, at.roster)


def _expect(ok: bool, fault: str, detail: str) -> None:
    if not ok:
        raise ChannelError(fault, detail)


# ---------------------------------------------------------------------- channel keys

_KEY_HEADER = struct.Struct("<4sBHHH32sII")
#: Size of a key frame's header. Spec: spec/14-channels.md#channel-keys
KEY_HEADER_SIZE = _KEY_HEADER.size


@dataclass(frozen=True, slots=True)
class KeyHeader:
    """The public part of a key frame. Spec: spec/14-channels.md#channel-keys"""

    suite: ChannelSuite
    session: bytes
    sender: int
    recipient: int

    def encode(self) -> bytes:
        """``ASCII("SDLK") || u8(version) || u16le(kem_id) || u16le(kdf_id) ||
        u16le(aead_id) || session || u32le(sender) || u32le(recipient)``."""
        s = self.suite
        return _KEY_HEADER.pack(
            _KEY_MAGIC, VERSION, s.kem_id, s.kdf_id, s.aead_id, self.session, self.sender,
            self.recipient,
        )  # fmt: skip

    @classmethod
    def decode(cls, data: bytes) -> KeyHeader:
        """Inverse of :meth:`encode`.

        Raises:
            ChannelError: ``truncated``, ``header`` (magic, version, node 0) or ``suite``.
        """
        if len(data) < KEY_HEADER_SIZE:
            raise ChannelError(
                "truncated", f"a key frame header is {KEY_HEADER_SIZE} bytes; got {len(data)}"
            )
        magic, version, kem, kdf, aead_id, session, sender, recipient = _KEY_HEADER.unpack_from(
            data
        )
        if magic != _KEY_MAGIC:
            raise ChannelError("header", f"key header.magic must be {_KEY_MAGIC!r}; got {magic!r}")
        if version != VERSION:
            raise ChannelError("header", f"key header.version must be {VERSION}; got {version}")
        suite = _suite_by_ids(kem, kdf, aead_id)
        if suite is None:
            raise ChannelError(
                "suite",
                f"key header suite (kem {kem:#06x}, kdf {kdf:#06x}, aead {aead_id:#06x}) "
                "is unknown",
            )
        if sender == 0 or recipient == 0:
            raise ChannelError("header", "key header.sender and .recipient must be >= 1")
        return cls(suite, session, sender, recipient)


def key_info(key_header: bytes) -> bytes:
    """The HPKE ``info`` of a key frame: ``ASCII("sdl.channel.key-info") || 0x00 || key_header``."""
    return _LABEL_KEY_INFO + key_header


def key_payload(key_header: bytes, sealed: bytes) -> bytes:
    """What a key frame's sender signs.

    ``ASCII("sdl.channel.key") || 0x00 || key_header || enc || ct``.
    """
    return _LABEL_KEY + key_header + sealed


def assemble_key_frame(
    key_header: bytes, sealed: bytes, identity: ed25519.Ed25519PrivateKey
) -> bytes:
    """The key frame ``key_header || enc || ct || signature`` (``sealed``: HPKE's ``enc || ct``)."""
    return key_header + sealed + identity.sign(key_payload(key_header, sealed))


def open_key_frame(
    frame: bytes,
    *,
    node: int,
    session: bytes,
    suite: ChannelSuite,
    private_key: KemPrivateKey,
    roster: Roster,
) -> tuple[int, bytes]:
    """Open a key frame sent to ``node``: ``(sender, channel key)``.

    Spec: spec/14-channels.md#channel-keys

    Raises:
        ChannelError: the first check that fails: size (``truncated``),
            header (``header``, ``suite``), context (``suite``, ``header``),
            ``roster``, ``signature``, HPKE open (``tag``), key size (``key``).
    """
    frame = bytes(frame)
    header = KeyHeader.decode(frame)
    _expect(
        header.suite == suite, "suite", f"key header suite {header.suite.name}, not {suite.name}"
    )
    if len(frame) != suite.key_frame_size:
        fault = "truncated" if len(frame) < suite.key_frame_size else "key"
        raise ChannelError(
            fault, f"a {suite.name} key frame is {suite.key_frame_size} bytes; got {len(frame)}"
        )
    _expect(header.session == session, "header", "key header.session is another session's")
    _expect(
        header.recipient == node,
        "header",
        f"key header.recipient is node {header.recipient}, not node {node}",
    )
    _expect(header.sender != node, "header", f"node {node} does not send itself a channel key")
    signer = roster.identity(header.sender)
    raw_header, sealed = frame[:KEY_HEADER_SIZE], frame[KEY_HEADER_SIZE:-SIGNATURE_SIZE]
    try:
        signer.verify(frame[-SIGNATURE_SIZE:], key_payload(raw_header, sealed))
    except InvalidSignature:
        raise ChannelError(
            "signature", f"the key frame is not signed by node {header.sender}'s roster identity"
        ) from None
    try:
        key = suite.hpke().decrypt(sealed, private_key, info=key_info(raw_header))
    except InvalidTag:
        raise ChannelError(
            "tag", "HPKE open of the key frame failed: its enc, ciphertext or header was altered"
        ) from None
    _expect(len(key) == suite.key_size, "key", f"a channel key is {suite.key_size} bytes")
    return header.sender, key


# ---------------------------------------------------------------------- statements


def verify_statement(message: Message, signature: bytes, roster: Roster) -> None:
    """Check a signed broadcast: ``signature`` is the sender's over :func:`statement`.

    Raises:
        ChannelError: ``roster`` (sender unknown) or ``statement`` (bad signature).
    """
    try:
        roster.identity(message.sender).verify(signature, statement(message))
    except InvalidSignature:
        raise ChannelError(
            "statement",
            f"the {message.kind}'s statement is not signed by node {message.sender}'s "
            "roster identity",
        ) from None


def conflicting(a: tuple[Message, bytes], b: tuple[Message, bytes], roster: Roster) -> bool:
    """Whether two signed broadcasts prove that their sender equivocated.

    Spec: spec/14-channels.md#statements

    They do when both statement signatures verify under the same roster
    identity, both belong to one session and round, and one of these holds:

    - both are decisions for one stage, with different statements;
    - one is a final decision for stage ``s`` and the other a decision for a
      later stage (which follows only a decision for ``s`` that was not final);
    - one is an abort and the other a final decision.

    Raises:
        ChannelError: a signature does not verify (then neither proves anything).
        ParameterError: a message is not a decision or an abort.
    """
    (ma, sa), (mb, sb) = a, b
    for m in (ma, mb):
        if not isinstance(m, Decision | Abort):
            raise ParameterError(f"only decisions and aborts are signed broadcasts; got a {m.kind}")
    verify_statement(ma, sa, roster)
    verify_statement(mb, sb, roster)
    if (ma.sender, ma.session, ma.round) != (mb.sender, mb.session, mb.round):
        return False
    if isinstance(ma, Decision) and isinstance(mb, Decision):
        if ma.stage == mb.stage:
            return statement(ma) != statement(mb)
        earlier = ma if ma.stage < mb.stage else mb
        return earlier.final
    decisions = [m for m in (ma, mb) if isinstance(m, Decision)]
    return len(decisions) == 1 and decisions[0].final


def frame_size(
    message: Message, field: type[Field], suite: ChannelSuite, *, forwarded: bool = False
) -> int:
    """``len`` of the frame that carries ``message``, without sealing it (``forwarded``:
    an echo or a partial sum that carries its decision's signature)."""
    signed = message.kind in SIGNED_KINDS or (forwarded and message.kind in FORWARDING_KINDS)
    extra = SIGNATURE_SIZE if signed else 0
    return suite.overhead + wire_size(message, field) + extra


def endpoints_roles(pairs: Iterable[tuple[int, str]]) -> dict[int, frozenset[str]]:
    """The roles each node holds, from (node, role) pairs."""
    out: dict[int, set[str]] = {}
    for node, role in pairs:
        out.setdefault(node, set()).add(role)
    return {node: frozenset(roles) for node, roles in out.items()}


__all__ = [
    "DEFAULT_SUITE",
    "FORWARDING_KINDS",
    "HEADER_SIZE",
    "KEY_HEADER_SIZE",
    "KINDS",
    "NONCE_SIZE",
    "ROLES",
    "SIGNATURE_SIZE",
    "SIGNED_KINDS",
    "SUITES",
    "TAG_SIZE",
    "ChannelSuite",
    "Endpoint",
    "FrameHeader",
    "KemPrivateKey",
    "KemPublicKey",
    "KeyHeader",
    "Opened",
    "Roster",
    "SessionKey",
    "aad",
    "answered_decision",
    "assemble_key_frame",
    "conflicting",
    "endpoints_roles",
    "frame_size",
    "identity_key",
    "identity_public",
    "key_info",
    "key_payload",
    "open_ciphertext",
    "open_frame",
    "open_key_frame",
    "plaintext",
    "read_plaintext",
    "seal_frame",
    "seal_plaintext",
    "session_private_key",
    "session_public_bytes",
    "session_public_key",
    "sign_session_key",
    "statement",
    "suite_named",
    "verify_opened",
    "verify_session_key",
    "verify_statement",
]
