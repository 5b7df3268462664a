"""Test vectors of the channel family: key frames, frames, signatures, and rejected inputs.

Spec: spec/14-channels.md, spec/10-test-vectors.md#channel-vectors

``cases()`` yields ``channel/<name>.json`` objects:

- ``operation: "key"`` (``key_<suite>.json``): one key frame, node 2 sending
  node 3 its channel key. The top level is an RFC 9180 test vector with
  exactly one encryption (``mode``, ``kem_id``, ``kdf_id``, ``aead_id``,
  ``info``, ``skRm``, ``pkRm``, ``enc``, ``encryptions: [{aad, pt, ct}]``),
  so any HPKE harness opens it at sequence number 0 to the channel key
  ``pt``; around it, the SDL key frame: ``key_header`` and its
  ``key_header_fields``, ``key_frame``, ``key_frame_signature``,
  ``sender_identity``, ``roster`` and ``recipient``.
- ``operation: "frame"`` (``frame_<suite>_<kind>.json``): one protocol
  message sealed under its sender's channel key for its recipient. The top
  level is an AEAD test vector (``key``, ``nonce``, ``aad``, ``pt``, ``ct``);
  around it, the frame: ``header`` and its ``header_fields``, ``frame``,
  ``sender_identity``, ``roster``, the recipient's ``recipient_roles``,
  ``modulus``, and the ``message`` the frame opens to (canonical JSON).
- ``operation: "verify_signature"`` (``signature_<what>.json``): an Ed25519
  ``public_key``, the signed ``message`` (hex) and its ``signature``, with
  the inputs the message is built from.
- ``operation: "open"`` (``open_bad_<fault>_<what>.json``): a ``frame`` and
  the ``endpoint`` that opens it; opening MUST raise ``ChannelError`` with
  the file's ``fault``.
- ``operation: "open_key"`` (``open_key_bad_<fault>_<what>.json``): a
  ``key_frame`` and the ``endpoint`` that opens it; likewise.
- ``operation: "verify_session_key"`` (``session_key_bad_<fault>_<what>.json``):
  an ``advert`` that MUST be refused with ``ChannelError`` and ``fault``.

Every key, and every frame's nonce, is derived from the case seed, so
frames are byte-identical on every generation. Only a key frame draws
randomness (HPKE's ephemeral key): ``enc``, ``ct``, ``key_frame`` and the
key frame's signature differ between generations. Each file lists those
keys in ``randomized`` (a subset of :data:`RANDOMIZED`); everything else is
byte-identical, and ``check`` validates the randomized values by opening
and verifying them, not by equality (:func:`masked`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from protocol.channels import (
    HEADER_SIZE,
    KEY_HEADER_SIZE,
    KINDS,
    NONCE_SIZE,
    SIGNATURE_SIZE,
    SIGNED_KINDS,
    SUITES,
    TAG_SIZE,
    ChannelSuite,
    Endpoint,
    FrameHeader,
    KeyHeader,
    Roster,
    SessionKey,
    aad,
    assemble_key_frame,
    key_info,
    key_payload,
    open_frame,
    open_key_frame,
    plaintext,
    seal_frame,
    session_private_key,
    session_public_bytes,
    statement,
    verify_session_key,
)
from protocol.errors import ChannelError
from protocol.field import Field, Field31, field_for_modulus
from protocol.messages import Message, dump, encode_wire, from_obj, parse
from protocol.xof import Seed, Tag, Xof, as_seed, derive_seed
from reference.channels.seal import NodeChannel, NodeKeys, deterministic_session
from reference.oracle.format import Json, case_seed, expect_error, make_case

FAMILY = "channel"

#: The keys whose values a fresh generation draws anew (HPKE's ephemeral key,
#: in key frames only): a file's ``randomized`` lists the ones it carries.
#: Spec: spec/10-test-vectors.md#channel-vectors
RANDOMIZED: tuple[str, ...] = (
    "enc", "ct", "key_frame", "key_frame_signature", "message", "signature",
)  # fmt: skip
#: What ``randomized`` of a key vector lists.
KEY_RANDOMIZED: list[str] = ["ct", "enc", "key_frame", "key_frame_signature"]
#: Masks a randomized value in :func:`masked`.
MASK = "<randomized>"

#: The case seed every channel key and nonce is derived from (``NodeKeys.derive``).
SEED = 1400
ROUND = 7
FIELD: type[Field] = Field31
#: Node 1 coordinates; 2 and 3 contribute and aggregate; 4 receives.
ROLES: dict[int, tuple[str, ...]] = {
    1: ("coordinator",),
    2: ("contributor", "aggregator"),
    3: ("contributor", "aggregator"),
    4: ("receiver",),
}
#: The pair of the key vectors and of most negatives: node 2 sends node 3.
SENDER, RECIPIENT = 2, 3


def masked(obj: Any, keys: frozenset[str] | None = None) -> Any:
    """``obj`` with every value under a key its ``randomized`` lists replaced by :data:`MASK`.

    Two generations of one channel vector are equal once masked.
    """
    if keys is None:
        keys = frozenset(obj.get("randomized", ())) if isinstance(obj, Mapping) else frozenset()
    if isinstance(obj, Mapping):
        return {k: MASK if k in keys else masked(v, keys) for k, v in obj.items()}
    if isinstance(obj, list):
        return [masked(v, keys) for v in obj]
    return obj


# ---------------------------------------------------------------------- setup


def _session_id() -> bytes:
    return bytes(derive_seed(case_seed(SEED), Tag("vectors.channel.session")))


def _other_session() -> bytes:
    return bytes(derive_seed(case_seed(SEED), Tag("vectors.channel.other-session")))


def frame_nonce(seed: Seed, suite: ChannelSuite, header: FrameHeader) -> bytes:
    """A frame vector's nonce: the first 12 bytes of ``Xof(seed,
    Tag("vectors.channel.nonce", (kem_id, aead_id, kind, sender, recipient)))``,
    kind by its header code. (A deployment draws nonces from a CSPRNG.)"""
    tag = Tag(
        "vectors.channel.nonce",
        (suite.kem_id, suite.aead_id, KINDS[header.kind], header.sender, header.recipient),
    )
    return Xof(seed, tag).next_bytes(NONCE_SIZE)


def _messages(session: bytes) -> dict[str, Message]:
    values = Xof(case_seed(SEED + 1), Tag("vectors.channel.values")).field_elements(FIELD, 5)
    head = {"version": 1, "session": session.hex(), "round": ROUND}
    return {
        "share": from_obj({
            **head, "kind": "share", "sender": 2, "recipient": 3, "role": "aggregator",
            "stage": 0, "values": values.to_json(),
        }),
        "decision": from_obj({
            **head, "kind": "decision", "sender": 1, "recipient": 2, "role": "contributor",
            "stage": 0, "contributors": [2, 3], "aggregators": [2, 3], "final": True,
        }),
        "partial_sum": from_obj({
            **head, "kind": "partial_sum", "sender": 3, "recipient": 4, "role": "receiver",
            "stage": 0, "contributors": [2, 3], "aggregators": [2, 3],
            "values": (values + values).to_json(),
        }),
        "abort": from_obj({
            **head, "kind": "abort", "sender": 1, "recipient": 3, "role": "aggregator",
            "reason": "too-few-partial-sums",
        }),
    }  # fmt: skip


def _header_json(h: FrameHeader) -> Json:
    return {
        "suite": h.suite.name,
        "session": h.session.hex(),
        "round": h.round,
        "stage": h.stage,
        "kind": h.kind,
        "role": h.role,
        "sender": h.sender,
        "recipient": h.recipient,
    }


def _header_from(obj: Mapping[str, Any]) -> FrameHeader:
    return FrameHeader(
        SUITES[obj["suite"]], bytes.fromhex(obj["session"]), int(obj["round"]),
        int(obj["stage"]), obj["kind"], obj["role"], int(obj["sender"]), int(obj["recipient"]),
    )  # fmt: skip


def _key_header_json(h: KeyHeader) -> Json:
    return {
        "suite": h.suite.name,
        "session": h.session.hex(),
        "sender": h.sender,
        "recipient": h.recipient,
    }


def _key_header_from(obj: Mapping[str, Any]) -> KeyHeader:
    return KeyHeader(
        SUITES[obj["suite"]], bytes.fromhex(obj["session"]), int(obj["sender"]),
        int(obj["recipient"]),
    )  # fmt: skip


def _keys_json(keys: Mapping[int, NodeKeys], node: int) -> dict[str, str]:
    """The channel keys every other node sends ``node``, by sender."""
    return {str(s): k.channel_key(node).hex() for s, k in sorted(keys.items()) if s != node}


def _endpoint_json(
    suite: ChannelSuite, keys: Mapping[int, NodeKeys], roster: Roster, *, session: bytes,
    node: int,
) -> Json:  # fmt: skip
    return {
        "node": node,
        "roles": sorted(ROLES[node]),
        "session": session.hex(),
        "round": ROUND,
        "suite": suite.name,
        "keys": _keys_json(keys, node),
        "roster": roster.to_json(),
        "modulus": str(FIELD.MODULUS),
    }


def _endpoint_from(obj: Mapping[str, Any]) -> Endpoint:
    return Endpoint(
        int(obj["node"]), frozenset(obj["roles"]), bytes.fromhex(obj["session"]),
        int(obj["round"]), SUITES[obj["suite"]],
        {int(s): bytes.fromhex(k) for s, k in obj["keys"].items()},
        Roster.from_json(obj["roster"]), field_for_modulus(int(obj["modulus"])),
    )  # fmt: skip


def _key_endpoint_json(
    suite: ChannelSuite, recipient: NodeKeys, roster: Roster, *, session: bytes
) -> Json:
    return {
        "node": recipient.node,
        "session": session.hex(),
        "suite": suite.name,
        "skRm": recipient.session_secret.hex(),
        "roster": roster.to_json(),
    }


def _open_key(frame: bytes, obj: Mapping[str, Any]) -> tuple[int, bytes]:
    suite = SUITES[obj["suite"]]
    return open_key_frame(
        frame, node=int(obj["node"]), session=bytes.fromhex(obj["session"]), suite=suite,
        private_key=session_private_key(suite, bytes.fromhex(obj["skRm"])),
        roster=Roster.from_json(obj["roster"]),
    )  # fmt: skip


# ---------------------------------------------------------------------- generation


def _key_frame(
    suite: ChannelSuite, keys: Mapping[int, NodeKeys], session: bytes, sender: int,
    recipient: int,
) -> bytes:  # fmt: skip
    """The key frame ``sender`` sends ``recipient`` (a fresh HPKE ephemeral key)."""
    s, _ = deterministic_session(case_seed(SEED), session, ROLES, suite)
    return NodeChannel(keys[sender], s).key_frames([recipient])[recipient]


def _key_case(
    suite: ChannelSuite, keys: Mapping[int, NodeKeys], roster: Roster, session: bytes
) -> Json:
    sender, recipient = keys[SENDER], keys[RECIPIENT]
    frame = _key_frame(suite, keys, session, SENDER, RECIPIENT)
    raw = frame[:KEY_HEADER_SIZE]
    sealed = frame[KEY_HEADER_SIZE:-SIGNATURE_SIZE]
    enc, ct = sealed[: suite.enc_size], sealed[suite.enc_size :]
    return make_case(
        FAMILY, "key",
        description=(
            f"node {SENDER}'s key frame to node {RECIPIENT}: its channel key sealed with "
            f"{suite.name} HPKE and signed"
        ),
        suite=suite.name, mode=0, kem_id=suite.kem_id, kdf_id=suite.kdf_id,
        aead_id=suite.aead_id, info=key_info(raw).hex(),
        skRm=recipient.session_secret.hex(),
        pkRm=session_public_bytes(suite, recipient.session_secret).hex(), enc=enc.hex(),
        encryptions=[{"aad": "", "pt": sender.channel_key(RECIPIENT).hex(), "ct": ct.hex()}],
        seed=case_seed(SEED).hex(), key_header=raw.hex(),
        key_header_fields=_key_header_json(KeyHeader.decode(raw)), key_frame=frame.hex(),
        key_frame_signature=frame[-SIGNATURE_SIZE:].hex(),
        sender_identity=sender.identity_public.hex(), roster=roster.to_json(),
        recipient=RECIPIENT, randomized=KEY_RANDOMIZED,
    )  # fmt: skip


def _frame_case(
    suite: ChannelSuite, message: Message, keys: Mapping[int, NodeKeys], roster: Roster
) -> Json:
    sender = keys[message.sender]
    header = FrameHeader.of(message, suite)
    raw = header.encode()
    key = sender.channel_key(message.recipient)
    nonce = frame_nonce(case_seed(SEED), suite, header)
    pt = plaintext(message, FIELD, sender.identity)
    frame = seal_frame(message, FIELD, suite=suite, key=key, nonce=nonce, identity=sender.identity)
    body: Json = {
        "description": (
            f"a {message.kind} from node {message.sender} to node {message.recipient} "
            f"({message.role}), sealed under their {suite.name} channel key"
        ),
        "suite": suite.name,
        "key": key.hex(),
        "nonce": nonce.hex(),
        "aad": aad(raw).hex(),
        "pt": pt.hex(),
        "ct": frame[HEADER_SIZE + NONCE_SIZE :].hex(),
        "seed": case_seed(SEED).hex(),
        "header": raw.hex(),
        "header_fields": _header_json(header),
        "frame": frame.hex(),
        "sender_identity": sender.identity_public.hex(),
        "roster": roster.to_json(),
        "recipient_roles": sorted(ROLES[message.recipient]),
        "modulus": str(FIELD.MODULUS),
        "message": dump(message),
        "randomized": [],
    }
    if message.kind in SIGNED_KINDS:
        body["statement_signature"] = pt[-SIGNATURE_SIZE:].hex()
    return make_case(FAMILY, "frame", **body)


def _flip(data: bytes, at: int) -> bytes:
    out = bytearray(data)
    out[at] ^= 0x01
    return bytes(out)


def _bad_open(
    name: str, description: str, fault: str, frame: bytes, endpoint: Json
) -> tuple[str, Json]:
    return f"{FAMILY}/open_bad_{name}.json", make_case(
        FAMILY, "open", description=description, frame=frame.hex(), endpoint=endpoint,
        error="ChannelError", fault=fault, randomized=[],
    )  # fmt: skip


def _bad_open_key(
    name: str, description: str, fault: str, frame: bytes, endpoint: Json
) -> tuple[str, Json]:
    return f"{FAMILY}/open_key_bad_{name}.json", make_case(
        FAMILY, "open_key", description=description, key_frame=frame.hex(), endpoint=endpoint,
        error="ChannelError", fault=fault, randomized=["key_frame"],
    )  # fmt: skip


def _frame_negatives(
    keys: Mapping[int, NodeKeys], roster: Roster, session: bytes, messages: Mapping[str, Message]
) -> Iterator[tuple[str, Json]]:
    suite = next(iter(keys.values())).suite
    share = messages["share"]  # node 2 -> node 3 (aggregator)
    sender = keys[share.sender]
    key = sender.channel_key(share.recipient)
    header = FrameHeader.of(share, suite)
    nonce = frame_nonce(case_seed(SEED), suite, header)
    frame = seal_frame(share, FIELD, suite=suite, key=key, nonce=nonce, identity=sender.identity)
    at = _endpoint_json(suite, keys, roster, session=session, node=share.recipient)
    raw = frame[:HEADER_SIZE]

    def with_header(**change: Any) -> bytes:
        fields = {**_header_json(FrameHeader.decode(raw)), **change}
        return _header_from(fields).encode() + frame[HEADER_SIZE:]

    yield _bad_open(
        "tag_ciphertext", "the share's frame with its first ciphertext byte flipped", "tag",
        _flip(frame, HEADER_SIZE + NONCE_SIZE), at,
    )  # fmt: skip
    yield _bad_open(
        "tag_tag", "the share's frame with the last byte of ct (the AEAD tag) flipped", "tag",
        _flip(frame, len(frame) - 1), at,
    )  # fmt: skip
    yield _bad_open(
        "tag_nonce", "the share's frame with one nonce byte flipped", "tag",
        _flip(frame, HEADER_SIZE), at,
    )  # fmt: skip
    yield _bad_open(
        "header_round", f"the share's header altered to round {ROUND + 1}: the context check "
        "refuses it before the AEAD open", "header", with_header(round=ROUND + 1), at,
    )  # fmt: skip
    yield _bad_open(
        "header_recipient", "the share's header altered to name node 4 as recipient",
        "header", with_header(recipient=4), at,
    )  # fmt: skip
    yield _bad_open(
        "header_role", "the share's header altered to address node 3 as receiver, "
        "a role it does not hold", "header", with_header(role="receiver"), at,
    )  # fmt: skip
    yield _bad_open(
        "header_session", "the share's header altered to name another session",
        "header", with_header(session=_other_session().hex()), at,
    )  # fmt: skip
    yield _bad_open(
        "tag_header_stage", "the share's header altered to stage 1: the context allows it, "
        "the AEAD (whose aad is the header) refuses it", "tag", with_header(stage=1), at,
    )  # fmt: skip
    yield _bad_open(
        "tag_header_kind", "the share's header altered to kind report", "tag",
        with_header(kind="report"), at,
    )  # fmt: skip
    yield _bad_open(
        "tag_header_sender", "the share's header altered to name node 4, another roster "
        "node whose channel key node 3 holds, as sender", "tag", with_header(sender=4), at,
    )  # fmt: skip
    yield _bad_open(
        "roster_unknown_sender", "the share's frame opened under a roster without its "
        "sender, node 2", "roster", frame,
        {**at, "roster": Roster({n: k for n, k in roster.keys.items() if n != 2}).to_json()},
    )  # fmt: skip
    yield _bad_open(
        "key_missing", "the share's frame opened by an endpoint that holds no channel key "
        "from its sender, node 2", "key", frame,
        {**at, "keys": {s: k for s, k in at["keys"].items() if s != "2"}},
    )  # fmt: skip
    yield _bad_open(
        "tag_wrong_key", "the share's frame opened with node 4's channel key to node 3 in "
        "place of node 2's", "tag", frame, {**at, "keys": {**at["keys"], "2": at["keys"]["4"]}},
    )  # fmt: skip
    yield _bad_open(
        "suite_other", "the share's frame (x25519-aes128gcm) opened by an endpoint of "
        "session suite x25519-chacha20poly1305", "suite", frame,
        {**at, "suite": "x25519-chacha20poly1305"},
    )  # fmt: skip
    least = HEADER_SIZE + NONCE_SIZE + TAG_SIZE
    yield _bad_open(
        "truncated_frame", f"the share's frame cut to {least - 1} bytes, one less than "
        "the least a frame has (header, nonce, tag)", "truncated", frame[: least - 1], at,
    )  # fmt: skip
    yield _bad_open(
        "truncated_header", "the first 40 bytes of the share's frame: less than a header",
        "truncated", frame[:40], at,
    )  # fmt: skip
    # A header whose stage differs from the message's, sealed as such by the sender.
    liar = FrameHeader(
        header.suite, header.session, header.round, 1, header.kind, header.role,
        header.sender, header.recipient,
    ).encode()  # fmt: skip
    liar_ct = suite.aead(key).encrypt(nonce, plaintext(share, FIELD, sender.identity), aad(liar))
    yield _bad_open(
        "plaintext_stage", "a share of stage 0 in a frame whose header says stage 1, sealed "
        "by the sender under its channel key: it opens, and the plaintext check refuses it",
        "plaintext", liar + nonce + liar_ct, at,
    )  # fmt: skip
    decision = messages["decision"]  # node 1 -> node 2
    d_header = FrameHeader.of(decision, suite)
    d_raw = d_header.encode()
    d_key, d_nonce = keys[1].channel_key(2), frame_nonce(case_seed(SEED), suite, d_header)
    forged = encode_wire(decision, FIELD) + keys[2].identity.sign(statement(decision))
    yield _bad_open(
        "statement_wrong_signer", "a decision from the coordinator (node 1) whose statement "
        "signature is node 2's, sealed under the coordinator's channel key to node 2",
        "statement", d_raw + d_nonce + suite.aead(d_key).encrypt(d_nonce, forged, aad(d_raw)),
        _endpoint_json(suite, keys, roster, session=session, node=2),
    )  # fmt: skip


def _key_negatives(
    keys: Mapping[int, NodeKeys], roster: Roster, session: bytes
) -> Iterator[tuple[str, Json]]:
    suite = next(iter(keys.values())).suite
    sender, recipient = keys[SENDER], keys[RECIPIENT]
    frame = _key_frame(suite, keys, session, SENDER, RECIPIENT)
    at = _key_endpoint_json(suite, recipient, roster, session=session)
    raw, sealed = frame[:KEY_HEADER_SIZE], frame[KEY_HEADER_SIZE:-SIGNATURE_SIZE]

    def resigned(new_sealed: bytes) -> bytes:
        return assemble_key_frame(raw, new_sealed, sender.identity)

    def with_header(**change: Any) -> bytes:
        fields = {**_key_header_json(KeyHeader.decode(raw)), **change}
        return _key_header_from(fields).encode() + frame[KEY_HEADER_SIZE:]

    yield _bad_open_key(
        "tag_enc", "node 2's key frame with one byte of enc flipped, re-signed by node 2 so "
        "that it reaches HPKE open", "tag", resigned(_flip(sealed, 0)), at,
    )  # fmt: skip
    yield _bad_open_key(
        "tag_ciphertext", "node 2's key frame with the first byte of ct flipped, re-signed",
        "tag", resigned(_flip(sealed, suite.enc_size)), at,
    )  # fmt: skip
    yield _bad_open_key(
        "tag_wrong_recipient_key", "node 2's key frame to node 3 opened with node 4's "
        "session key (skRm of another node)", "tag", frame,
        {**at, "skRm": keys[4].session_secret.hex()},
    )  # fmt: skip
    yield _bad_open_key(
        "signature_flipped", "node 2's key frame with one bit of its signature flipped",
        "signature", _flip(frame, len(frame) - 1), at,
    )  # fmt: skip
    yield _bad_open_key(
        "signature_roster_key", "node 2's key frame opened under a roster that gives node 2 "
        "node 4's identity key", "signature", frame,
        {**at, "roster": Roster({**roster.keys, 2: roster.keys[4]}).to_json()},
    )  # fmt: skip
    yield _bad_open_key(
        "roster_unknown_sender", "node 2's key frame opened under a roster without node 2",
        "roster", frame,
        {**at, "roster": Roster({n: k for n, k in roster.keys.items() if n != 2}).to_json()},
    )  # fmt: skip
    yield _bad_open_key(
        "header_session", "node 2's key frame with its key header altered to name another "
        "session (not re-signed: the context check comes before the signature)", "header",
        with_header(session=_other_session().hex()), at,
    )  # fmt: skip
    yield _bad_open_key(
        "header_recipient", "node 2's key frame with its key header altered to name node 4 "
        "as recipient", "header", with_header(recipient=4), at,
    )  # fmt: skip
    yield _bad_open_key(
        "suite_other", "node 2's key frame (x25519-aes128gcm) opened by an endpoint of "
        "session suite x25519-chacha20poly1305", "suite", frame,
        {**at, "suite": "x25519-chacha20poly1305"},
    )  # fmt: skip
    yield _bad_open_key(
        "truncated", f"node 2's key frame cut by one byte to {len(frame) - 1} bytes",
        "truncated", frame[:-1], at,
    )  # fmt: skip
    yield _bad_open_key(
        "truncated_header", "the first 40 bytes of node 2's key frame: less than a key header",
        "truncated", frame[:40], at,
    )  # fmt: skip
    yield _bad_open_key(
        "key_length", f"node 2's key frame with one byte appended ({len(frame) + 1} bytes): "
        "longer than a key frame of its suite", "key", frame + b"\x00", at,
    )  # fmt: skip


def _session_key_negatives(
    keys: Mapping[int, NodeKeys], roster: Roster, session: bytes
) -> Iterator[tuple[str, Json]]:
    suite = next(iter(keys.values())).suite
    advert = keys[3].advertise(session)
    bad = SessionKey(
        advert.session, advert.node, advert.suite, advert.public_key,
        _flip(advert.signature, 0),
    )  # fmt: skip
    common = {"roster": roster.to_json(), "session": session.hex(), "suite": suite.name}
    yield f"{FAMILY}/session_key_bad_signature.json", make_case(
        FAMILY, "verify_session_key",
        description="node 3's session-key advert with one bit of its signature flipped",
        advert=bad.to_json(), **common, error="ChannelError", fault="signature", randomized=[],
    )  # fmt: skip
    yield f"{FAMILY}/session_key_bad_session_key_other_session.json", make_case(
        FAMILY, "verify_session_key",
        description="node 3's session-key advert, validly signed, for another session",
        advert=keys[3].advertise(_other_session()).to_json(), **common, error="ChannelError",
        fault="session-key", randomized=[],
    )  # fmt: skip


def _signature_cases(
    keys: Mapping[int, NodeKeys], roster: Roster, session: bytes, messages: Mapping[str, Message]
) -> Iterator[tuple[str, Json]]:
    advert = keys[2].advertise(session)
    payload = SessionKey.payload(advert.session, advert.node, advert.suite, advert.public_key)
    yield f"{FAMILY}/signature_session_key.json", make_case(
        FAMILY, "verify_signature", signed="session-key",
        description="node 2's session-key advert: the signature over its payload",
        public_key=keys[2].identity_public.hex(), advert=advert.to_json(),
        message=payload.hex(), signature=advert.signature.hex(), randomized=[],
    )  # fmt: skip
    decision = messages["decision"]
    body = statement(decision)
    yield f"{FAMILY}/signature_statement.json", make_case(
        FAMILY, "verify_signature", signed="statement",
        description="the coordinator's statement signature over a final decision",
        public_key=keys[1].identity_public.hex(), statement_of=dump(decision),
        message=body.hex(), signature=keys[1].identity.sign(body).hex(), randomized=[],
    )  # fmt: skip
    suite = keys[2].suite
    frame = _key_frame(suite, keys, session, SENDER, RECIPIENT)
    raw, sealed = frame[:KEY_HEADER_SIZE], frame[KEY_HEADER_SIZE:-SIGNATURE_SIZE]
    yield f"{FAMILY}/signature_key_frame.json", make_case(
        FAMILY, "verify_signature", signed="key-frame",
        description="node 2's signature over its key frame to node 3: key header and HPKE output",
        public_key=keys[2].identity_public.hex(), key_header=raw.hex(),
        key_frame=frame.hex(), message=key_payload(raw, sealed).hex(),
        signature=frame[-SIGNATURE_SIZE:].hex(), randomized=["key_frame", "message", "signature"],
    )  # fmt: skip


def cases() -> Iterator[tuple[str, Json]]:
    """Every channel vector, as ``(path relative to the vectors directory, object)``."""
    session = _session_id()
    messages = _messages(session)
    for suite in SUITES.values():
        _, keys = deterministic_session(case_seed(SEED), session, ROLES, suite)
        roster = Roster({n: k.identity_public for n, k in keys.items()})
        yield f"{FAMILY}/key_{suite.name}.json", _key_case(suite, keys, roster, session)
        for kind, message in messages.items():
            yield (
                f"{FAMILY}/frame_{suite.name}_{kind}.json",
                _frame_case(suite, message, keys, roster),
            )
        if suite.name == "x25519-aes128gcm":
            yield from _signature_cases(keys, roster, session, messages)
            yield from _frame_negatives(keys, roster, session, messages)
            yield from _key_negatives(keys, roster, session)
            yield from _session_key_negatives(keys, roster, session)


# ---------------------------------------------------------------------- checking


def _eq(problems: list[str], where: str, expected: object, actual: object) -> None:
    if expected != actual:
        problems.append(f"{where}: file has {expected!r}, recomputed {actual!r}")


def _verify(problems: list[str], where: str, key: bytes, signature: bytes, data: bytes) -> None:
    try:
        ed25519.Ed25519PublicKey.from_public_bytes(key).verify(signature, data)
    except InvalidSignature:
        problems.append(f"{where}: the signature does not verify under {key.hex()[:16]}…")


def _check_key(obj: Mapping[str, Any], problems: list[str]) -> None:
    suite = SUITES[obj["suite"]]
    _eq(problems, "mode", obj["mode"], 0)
    for name in ("kem_id", "kdf_id", "aead_id"):
        _eq(problems, name, obj[name], getattr(suite, name))
    secret = bytes.fromhex(obj["skRm"])
    _eq(problems, "pkRm", obj["pkRm"], session_public_bytes(suite, secret).hex())
    header = _key_header_from({**obj["key_header_fields"], "suite": obj["suite"]})
    raw = bytes.fromhex(obj["key_header"])
    _eq(problems, "key_header", obj["key_header"], header.encode().hex())
    _eq(problems, "info", obj["info"], key_info(raw).hex())
    _eq(problems, "recipient", obj["recipient"], header.recipient)
    encryptions = obj["encryptions"]
    if len(encryptions) != 1:
        problems.append(f"encryptions: single-shot HPKE has one; got {len(encryptions)}")
    if "seed" in obj:
        seed = as_seed(bytes.fromhex(obj["seed"]))
        _eq(problems, "skRm (derived from seed)", obj["skRm"],
            NodeKeys.derive(seed, header.recipient, suite).session_secret.hex())  # fmt: skip
        sender = NodeKeys.derive(seed, header.sender, suite)
        _eq(problems, "sender_identity (derived from seed)", obj["sender_identity"],
            sender.identity_public.hex())  # fmt: skip
        for i, e in enumerate(encryptions):
            _eq(problems, f"encryptions[{i}].pt (channel key derived from seed)", e["pt"],
                sender.channel_key(header.recipient).hex())  # fmt: skip
    _eq(problems, f"roster.{header.sender}", obj["roster"].get(str(header.sender)),
        obj["sender_identity"])  # fmt: skip
    enc = bytes.fromhex(obj["enc"])
    if len(enc) != suite.enc_size:
        problems.append(f"enc: {suite.name}'s enc is {suite.enc_size} bytes; got {len(enc)}")
    private = session_private_key(suite, secret)
    for i, e in enumerate(encryptions):
        _eq(problems, f"encryptions[{i}].aad", e["aad"], "")
        if len(bytes.fromhex(e["pt"])) != suite.key_size:
            problems.append(f"encryptions[{i}].pt: a channel key is {suite.key_size} bytes")
        try:
            opened = suite.hpke().decrypt(enc + bytes.fromhex(e["ct"]), private, info=key_info(raw))
        except Exception as exc:  # noqa: BLE001 - any failure to open is the finding
            problems.append(f"encryptions[{i}].ct: HPKE open failed: {type(exc).__name__}")
            continue
        _eq(problems, f"encryptions[{i}].pt (opened)", e["pt"], opened.hex())
    ct0 = bytes.fromhex(encryptions[0]["ct"]) if encryptions else b""
    _eq(problems, "key_frame", obj["key_frame"],
        (raw + enc + ct0).hex() + obj["key_frame_signature"])  # fmt: skip
    _verify(problems, "key_frame_signature", bytes.fromhex(obj["sender_identity"]),
            bytes.fromhex(obj["key_frame_signature"]), key_payload(raw, enc + ct0))  # fmt: skip
    try:
        sender_id, key = open_key_frame(
            bytes.fromhex(obj["key_frame"]), node=header.recipient, session=header.session,
            suite=suite, private_key=private, roster=Roster.from_json(obj["roster"]),
        )  # fmt: skip
    except ChannelError as exc:
        problems.append(f"key_frame: does not open: {exc}")
        return
    _eq(problems, "key_header_fields.sender (opened)", header.sender, sender_id)
    if encryptions:
        _eq(problems, "encryptions[0].pt (opened from key_frame)", encryptions[0]["pt"], key.hex())


def _check_frame(obj: Mapping[str, Any], problems: list[str]) -> None:
    suite = SUITES[obj["suite"]]
    header = _header_from({**obj["header_fields"], "suite": obj["suite"]})
    raw = bytes.fromhex(obj["header"])
    _eq(problems, "header", obj["header"], header.encode().hex())
    _eq(problems, "aad", obj["aad"], aad(raw).hex())
    message = parse(obj["message"])
    fld = field_for_modulus(int(obj["modulus"]))
    _eq(problems, "message (canonical)", obj["message"], dump(message))
    _eq(problems, "header_fields (of the message)", obj["header_fields"],
        _header_json(FrameHeader.of(message, suite)))  # fmt: skip
    key, nonce = bytes.fromhex(obj["key"]), bytes.fromhex(obj["nonce"])
    pt, ct = bytes.fromhex(obj["pt"]), bytes.fromhex(obj["ct"])
    if len(key) != suite.key_size:
        problems.append(f"key: a {suite.name} channel key is {suite.key_size} bytes")
        return
    if len(nonce) != NONCE_SIZE:
        problems.append(f"nonce: a frame nonce is {NONCE_SIZE} bytes")
        return
    if "seed" in obj:
        seed = as_seed(bytes.fromhex(obj["seed"]))
        sender = NodeKeys.derive(seed, header.sender, suite)
        _eq(problems, "key (derived from seed)", obj["key"],
            sender.channel_key(header.recipient).hex())  # fmt: skip
        _eq(problems, "nonce (derived from seed)", obj["nonce"],
            frame_nonce(seed, suite, header).hex())  # fmt: skip
        _eq(problems, "sender_identity (derived from seed)", obj["sender_identity"],
            sender.identity_public.hex())  # fmt: skip
        _eq(problems, "frame (seal_frame)", obj["frame"], seal_frame(
            message, fld, suite=suite, key=key, nonce=nonce, identity=sender.identity,
        ).hex())  # fmt: skip
    _eq(problems, f"roster.{header.sender}", obj["roster"].get(str(header.sender)),
        obj["sender_identity"])  # fmt: skip
    signed = message.kind in SIGNED_KINDS
    body = pt[:-SIGNATURE_SIZE] if signed else pt
    _eq(problems, "pt (binary form of message)", body.hex(), encode_wire(message, fld).hex())
    if signed:
        _eq(problems, "statement_signature", obj.get("statement_signature"),
            pt[-SIGNATURE_SIZE:].hex())  # fmt: skip
        _verify(problems, "statement_signature", bytes.fromhex(obj["sender_identity"]),
                pt[-SIGNATURE_SIZE:], statement(message))  # fmt: skip
    _eq(problems, "ct (AEAD of pt)", obj["ct"], suite.aead(key).encrypt(nonce, pt, aad(raw)).hex())
    try:
        opened = suite.aead(key).decrypt(nonce, ct, aad(raw))
    except Exception as exc:  # noqa: BLE001 - any failure to open is the finding
        problems.append(f"ct: AEAD open failed: {type(exc).__name__}")
    else:
        _eq(problems, "pt (opened)", obj["pt"], opened.hex())
    _eq(problems, "frame", obj["frame"], (raw + nonce + ct).hex())
    endpoint = Endpoint(
        header.recipient, frozenset(obj["recipient_roles"]), header.session, header.round,
        suite, {header.sender: key}, Roster.from_json(obj["roster"]), fld,
    )  # fmt: skip
    try:
        got = open_frame(bytes.fromhex(obj["frame"]), endpoint)
    except ChannelError as exc:
        problems.append(f"frame: does not open: {exc}")
        return
    _eq(problems, "message (opened from frame)", obj["message"], dump(got.message))
    _eq(problems, "header_fields (opened from frame)", obj["header_fields"],
        _header_json(got.header))  # fmt: skip


def _check_signature(obj: Mapping[str, Any], problems: list[str]) -> None:
    data = bytes.fromhex(obj["message"])
    what = obj["signed"]
    if what == "session-key":
        a = SessionKey.from_json(obj["advert"])
        _eq(problems, "message (payload of advert)", obj["message"],
            SessionKey.payload(a.session, a.node, a.suite, a.public_key).hex())  # fmt: skip
        _eq(problems, "advert.signature", obj["advert"]["signature"], obj["signature"])
    elif what == "statement":
        _eq(problems, "message (statement of statement_of)", obj["message"],
            statement(parse(obj["statement_of"])).hex())  # fmt: skip
    elif what == "key-frame":
        frame = bytes.fromhex(obj["key_frame"])
        raw = frame[:KEY_HEADER_SIZE]
        _eq(problems, "key_header (of key_frame)", obj["key_header"], raw.hex())
        _eq(problems, "message (payload of key_frame)", obj["message"],
            key_payload(raw, frame[KEY_HEADER_SIZE:-SIGNATURE_SIZE]).hex())  # fmt: skip
        _eq(problems, "signature (of key_frame)", obj["signature"], frame[-SIGNATURE_SIZE:].hex())
    else:
        problems.append(f"signed: unknown signed object {what!r}")
    _verify(problems, "signature", bytes.fromhex(obj["public_key"]),
            bytes.fromhex(obj["signature"]), data)  # fmt: skip


def _expect_fault(obj: Mapping[str, Any], run: Callable[[], object], problems: list[str]) -> None:
    """``expect_error`` (the class ``error`` names), and the ``fault`` it carries."""
    faults: list[str] = []

    def recorded() -> object:
        try:
            return run()
        except ChannelError as exc:
            faults.append(exc.fault)
            raise

    expect_error(obj, recorded, problems)
    if faults and faults[0] != obj["fault"]:
        problems.append(f"fault: expected {obj['fault']!r}, got {faults[0]!r}")


def check(obj: Mapping[str, Any], problems: list[str]) -> None:
    """Check one channel vector; append a string per problem to ``problems``.

    Spec: spec/10-test-vectors.md#channel-vectors
    """
    unknown = sorted(set(obj.get("randomized", ())) - set(RANDOMIZED))
    if unknown:
        problems.append(f"randomized: {unknown} may not be randomized")
    op = obj["operation"]
    if op == "key":
        _check_key(obj, problems)
    elif op == "frame":
        if obj.get("randomized"):
            problems.append("randomized: a frame vector is deterministic")
        _check_frame(obj, problems)
    elif op == "verify_signature":
        _check_signature(obj, problems)
    elif op == "open":
        frame = bytes.fromhex(obj["frame"])
        _expect_fault(obj, lambda: open_frame(frame, _endpoint_from(obj["endpoint"])), problems)
    elif op == "open_key":
        key_frame = bytes.fromhex(obj["key_frame"])
        _expect_fault(obj, lambda: _open_key(key_frame, obj["endpoint"]), problems)
    elif op == "verify_session_key":
        suite = SUITES[obj["suite"]]

        def run() -> object:
            return verify_session_key(
                SessionKey.from_json(obj["advert"]), Roster.from_json(obj["roster"]),
                session=bytes.fromhex(obj["session"]), suite=suite,
            )  # fmt: skip

        _expect_fault(obj, run, problems)
    else:
        problems.append(f"operation: unknown channel operation {op!r}")
