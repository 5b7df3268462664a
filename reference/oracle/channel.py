"""Test vectors of the channel family: HPKE seals, frames, signatures, and rejected frames.

Spec: spec/14-channels.md, spec/10-test-vectors.md#channel-vectors

``cases()`` yields ``channel/<name>.json`` objects:

- ``operation: "seal"`` (``seal_<suite>_<kind>.json``): one protocol message
  sealed to its recipient. The top level is an RFC 9180 test vector with
  exactly one encryption (``mode``, ``kem_id``, ``kdf_id``, ``aead_id``,
  ``info``, ``skRm``, ``pkRm``, ``enc``, ``encryptions: [{aad, pt, ct}]``),
  so any HPKE harness can open it at sequence number 0; around it, the SDL
  frame: ``header`` and its ``header_fields``, ``frame``, ``frame_signature``,
  ``sender_identity``, ``roster``, the recipient's ``recipient_roles``, and
  the ``message`` the frame opens to (canonical JSON).
- ``operation: "verify_signature"`` (``signature_<what>.json``): an Ed25519
  ``public_key``, the signed ``message`` (hex) and its ``signature``, with
  the inputs the message is built from.
- ``operation: "open"`` (``open_bad_<fault>_<what>.json``): a ``frame`` and
  the ``endpoint`` that opens it; opening MUST raise ``ChannelError`` with
  the file's ``fault``.
- ``operation: "verify_session_key"`` (``session_key_bad_<fault>_<what>.json``):
  an ``advert`` that MUST be refused with ``ChannelError`` and ``fault``.

Sealing draws a fresh ephemeral key, so ``enc``, ``ct``, ``frame`` and the
frame signature differ between generations. Each file lists those keys in
``randomized`` (a subset of :data:`RANDOMIZED`); everything else is
byte-identical on every generation, and ``check`` validates the randomized
values by opening and verifying them, not by equality (:func:`masked`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from protocol.channels import (
    HEADER_SIZE,
    SIGNATURE_SIZE,
    SIGNED_KINDS,
    SUITES,
    TAG_SIZE,
    ChannelSuite,
    Endpoint,
    FrameHeader,
    Roster,
    SessionKey,
    assemble,
    frame_payload,
    info,
    open_frame,
    plaintext,
    session_private_key,
    session_public_bytes,
    statement,
    verify_session_key,
)
from protocol.errors import ChannelError
from protocol.field import Field, Field31, field_for_modulus
from protocol.messages import Message, dump, encode_wire, from_obj, parse
from protocol.xof import Tag, Xof, as_seed, derive_seed
from reference.channels.seal import NodeKeys, deterministic_session, seal
from reference.oracle.format import Json, case_seed, expect_error, make_case

FAMILY = "channel"

#: The keys whose values a fresh generation draws anew (HPKE's ephemeral key):
#: a file's ``randomized`` lists the ones it carries. Spec: spec/10-test-vectors.md#channel-vectors
RANDOMIZED: tuple[str, ...] = ("enc", "ct", "frame", "frame_signature", "message", "signature")
#: Masks a randomized value in :func:`masked`.
MASK = "<randomized>"

#: The case seed every channel key is derived from (``NodeKeys.derive``).
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


def _endpoint_json(
    suite: ChannelSuite, keys: NodeKeys, roster: Roster, *, session: bytes, node: int | None = None
) -> Json:
    node = keys.node if node is None else node
    return {
        "node": node,
        "roles": sorted(ROLES[node]),
        "session": session.hex(),
        "round": ROUND,
        "suite": suite.name,
        "skRm": keys.session_secret.hex(),
        "roster": roster.to_json(),
        "modulus": str(FIELD.MODULUS),
    }


def _endpoint_from(obj: Mapping[str, Any]) -> Endpoint:
    suite = SUITES[obj["suite"]]
    return Endpoint(
        int(obj["node"]), frozenset(obj["roles"]), bytes.fromhex(obj["session"]),
        int(obj["round"]), suite, session_private_key(suite, bytes.fromhex(obj["skRm"])),
        Roster.from_json(obj["roster"]), field_for_modulus(int(obj["modulus"])),
    )  # fmt: skip


# ---------------------------------------------------------------------- generation


def _seal_case(
    suite: ChannelSuite, message: Message, keys: Mapping[int, NodeKeys], roster: Roster
) -> Json:
    sender, recipient = keys[message.sender], keys[message.recipient]
    header = FrameHeader.of(message, suite)
    raw = header.encode()
    pt = plaintext(message, FIELD, sender.identity)
    frame = seal(
        message, FIELD, suite=suite, identity=sender.identity,
        recipient_key=session_private_key(suite, recipient.session_secret).public_key(),
    )  # fmt: skip
    sealed = frame[HEADER_SIZE:-SIGNATURE_SIZE]
    enc, ct = sealed[: suite.enc_size], sealed[suite.enc_size :]
    body: Json = {
        "description": (
            f"a {message.kind} from node {message.sender} to node {message.recipient} "
            f"({message.role}), sealed with {suite.name}"
        ),
        "suite": suite.name,
        "mode": 0,
        "kem_id": suite.kem_id,
        "kdf_id": suite.kdf_id,
        "aead_id": suite.aead_id,
        "info": info(raw).hex(),
        "skRm": recipient.session_secret.hex(),
        "pkRm": session_public_bytes(suite, recipient.session_secret).hex(),
        "enc": enc.hex(),
        "encryptions": [{"aad": "", "pt": pt.hex(), "ct": ct.hex()}],
        "seed": case_seed(SEED).hex(),
        "header": raw.hex(),
        "header_fields": _header_json(header),
        "sender_identity": sender.identity_public.hex(),
        "roster": roster.to_json(),
        "recipient_roles": sorted(ROLES[message.recipient]),
        "modulus": str(FIELD.MODULUS),
        "frame": frame.hex(),
        "frame_signature": frame[-SIGNATURE_SIZE:].hex(),
        "message": dump(message),
        "randomized": ["ct", "enc", "frame", "frame_signature"],
    }
    if message.kind in SIGNED_KINDS:
        body["statement_signature"] = pt[-SIGNATURE_SIZE:].hex()
    return make_case(FAMILY, "seal", **body)


def _flip(data: bytes, at: int) -> bytes:
    out = bytearray(data)
    out[at] ^= 0x01
    return bytes(out)


def _bad_open(
    name: str, description: str, fault: str, frame: bytes, endpoint: Json
) -> tuple[str, Json]:
    return f"{FAMILY}/open_bad_{name}.json", make_case(
        FAMILY, "open", description=description, frame=frame.hex(), endpoint=endpoint,
        error="ChannelError", fault=fault, randomized=["frame"],
    )  # fmt: skip


def _negatives(
    keys: Mapping[int, NodeKeys], roster: Roster, session: bytes, messages: Mapping[str, Message]
) -> Iterator[tuple[str, Json]]:
    suite = next(iter(keys.values())).suite
    share = messages["share"]  # node 2 -> node 3 (aggregator)
    sender, recipient = keys[share.sender], keys[share.recipient]
    key = session_private_key(suite, recipient.session_secret).public_key()
    frame = seal(share, FIELD, suite=suite, identity=sender.identity, recipient_key=key)
    at = _endpoint_json(suite, recipient, roster, session=session)
    raw, sealed = frame[:HEADER_SIZE], frame[HEADER_SIZE:-SIGNATURE_SIZE]

    def resigned(new_sealed: bytes) -> bytes:
        return assemble(raw, new_sealed, sender.identity)

    def with_header(**change: Any) -> bytes:
        fields = {**_header_json(FrameHeader.decode(raw)), **change}
        return _header_from(fields).encode() + frame[HEADER_SIZE:]

    yield _bad_open(
        "tag_ciphertext", "the share's frame with one ciphertext byte flipped after enc, "
        "re-signed by the sender so that it reaches HPKE open", "tag",
        resigned(_flip(sealed, suite.enc_size)), at,
    )  # fmt: skip
    yield _bad_open(
        "tag_tag", "the share's frame with the last byte of ct (the AEAD tag) flipped, "
        "re-signed by the sender", "tag", resigned(_flip(sealed, len(sealed) - 1)), at,
    )  # fmt: skip
    yield _bad_open(
        "tag_enc", "the share's frame with one byte of enc flipped, re-signed by the sender",
        "tag", resigned(_flip(sealed, 0)), at,
    )  # fmt: skip
    yield _bad_open(
        "tag_wrong_recipient_key", "the share's frame opened by node 3 with node 4's "
        "session key (skRm of another node)", "tag", frame,
        {**at, "skRm": keys[4].session_secret.hex()},
    )  # fmt: skip
    yield _bad_open(
        "header_round", f"the share's header altered to round {ROUND + 1} (not re-signed): "
        "the context check refuses it before the signature", "header",
        with_header(round=ROUND + 1), at,
    )  # fmt: skip
    yield _bad_open(
        "header_recipient", "the share's header altered to name node 4 as recipient",
        "header", with_header(recipient=4), at,
    )  # fmt: skip
    yield _bad_open(
        "header_role", "the share's header altered to address node 3 as receiver, "
        "a role it does not hold", "header", with_header(role="receiver"), at,
    )  # fmt: skip
    other = bytes(derive_seed(case_seed(SEED), Tag("vectors.channel.other-session")))
    yield _bad_open(
        "header_session", "the share's header altered to name another session",
        "header", with_header(session=other.hex()), at,
    )  # fmt: skip
    yield _bad_open(
        "suite_other", "the share's frame (x25519-aes128gcm) opened by an endpoint of "
        "session suite x25519-chacha20poly1305", "suite", frame,
        {**at, "suite": "x25519-chacha20poly1305"},
    )  # fmt: skip
    least = HEADER_SIZE + suite.enc_size + TAG_SIZE + SIGNATURE_SIZE
    yield _bad_open(
        "truncated_frame", f"the share's frame cut to {least - 1} bytes, one less than "
        "the least a frame of its suite has", "truncated", frame[: least - 1], at,
    )  # fmt: skip
    yield _bad_open(
        "truncated_header", "the first 40 bytes of the share's frame: less than a header",
        "truncated", frame[:40], at,
    )  # fmt: skip
    yield _bad_open(
        "signature_flipped", "the share's frame with one bit of its signature flipped",
        "signature", _flip(frame, len(frame) - 1), at,
    )  # fmt: skip
    yield _bad_open(
        "signature_roster_key", "the share's frame opened under a roster that gives its "
        "sender, node 2, node 4's identity key", "signature", frame,
        {**at, "roster": Roster({**roster.keys, 2: roster.keys[4]}).to_json()},
    )  # fmt: skip
    yield _bad_open(
        "roster_unknown_sender", "the share's frame opened under a roster without its "
        "sender, node 2", "roster", frame,
        {**at, "roster": Roster({n: k for n, k in roster.keys.items() if n != 2}).to_json()},
    )  # fmt: skip
    # A header whose stage differs from the message's, sealed and signed as such.
    liar = FrameHeader.of(share, suite)
    liar_raw = FrameHeader(
        liar.suite, liar.session, liar.round, 1, liar.kind, liar.role, liar.sender, liar.recipient
    ).encode()
    liar_sealed = suite.hpke().encrypt(
        plaintext(share, FIELD, sender.identity), key, info=info(liar_raw)
    )
    yield _bad_open(
        "plaintext_stage", "a share of stage 0 in a frame whose header says stage 1, "
        "sealed and signed by the sender: it opens, and the plaintext check refuses it",
        "plaintext", assemble(liar_raw, liar_sealed, sender.identity), at,
    )  # fmt: skip
    decision = messages["decision"]  # node 1 -> node 2
    coord, target = keys[decision.sender], keys[decision.recipient]
    head = FrameHeader.of(decision, suite).encode()
    forged = encode_wire(decision, FIELD) + keys[2].identity.sign(statement(decision))
    d_sealed = suite.hpke().encrypt(
        forged, session_private_key(suite, target.session_secret).public_key(), info=info(head)
    )
    yield _bad_open(
        "statement_wrong_signer", "a decision from the coordinator (node 1) whose statement "
        "signature is node 2's, in a frame the coordinator sealed and signed", "statement",
        assemble(head, d_sealed, coord.identity),
        _endpoint_json(suite, target, roster, session=session),
    )  # fmt: skip
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
        advert=keys[3].advertise(other).to_json(), **common, error="ChannelError",
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
    share = messages["share"]
    suite = keys[2].suite
    frame = seal(
        share, FIELD, suite=suite, identity=keys[2].identity,
        recipient_key=session_private_key(suite, keys[3].session_secret).public_key(),
    )  # fmt: skip
    raw, sealed = frame[:HEADER_SIZE], frame[HEADER_SIZE:-SIGNATURE_SIZE]
    yield f"{FAMILY}/signature_frame.json", make_case(
        FAMILY, "verify_signature", signed="frame",
        description="node 2's signature over a share frame's header and HPKE output",
        public_key=keys[2].identity_public.hex(), header=raw.hex(),
        frame=frame.hex(), message=frame_payload(raw, sealed).hex(),
        signature=frame[-SIGNATURE_SIZE:].hex(), randomized=["frame", "message", "signature"],
    )  # fmt: skip


def cases() -> Iterator[tuple[str, Json]]:
    """Every channel vector, as ``(path relative to the vectors directory, object)``."""
    session = _session_id()
    messages = _messages(session)
    for suite in SUITES.values():
        _, keys = deterministic_session(case_seed(SEED), session, ROLES, suite)
        roster = Roster({n: k.identity_public for n, k in keys.items()})
        for kind, message in messages.items():
            yield (
                f"{FAMILY}/seal_{suite.name}_{kind}.json",
                _seal_case(suite, message, keys, roster),
            )
        if suite.name == "x25519-aes128gcm":
            yield from _signature_cases(keys, roster, session, messages)
            yield from _negatives(keys, roster, session, messages)


# ---------------------------------------------------------------------- checking


def _eq(problems: list[str], where: str, expected: object, actual: object) -> None:
    if expected != actual:
        problems.append(f"{where}: file has {expected!r}, recomputed {actual!r}")


def _verify(problems: list[str], where: str, key: bytes, signature: bytes, data: bytes) -> None:
    try:
        ed25519.Ed25519PublicKey.from_public_bytes(key).verify(signature, data)
    except InvalidSignature:
        problems.append(f"{where}: the signature does not verify under {key.hex()[:16]}…")


def _check_seal(obj: Mapping[str, Any], problems: list[str]) -> None:
    suite = SUITES[obj["suite"]]
    _eq(problems, "mode", obj["mode"], 0)
    for name in ("kem_id", "kdf_id", "aead_id"):
        _eq(problems, name, obj[name], getattr(suite, name))
    secret = bytes.fromhex(obj["skRm"])
    _eq(problems, "pkRm", obj["pkRm"], session_public_bytes(suite, secret).hex())
    header = _header_from({**obj["header_fields"], "suite": obj["suite"]})
    raw = bytes.fromhex(obj["header"])
    _eq(problems, "header", obj["header"], header.encode().hex())
    _eq(problems, "info", obj["info"], info(raw).hex())
    message = parse(obj["message"])
    fld = field_for_modulus(int(obj["modulus"]))
    _eq(problems, "message (canonical)", obj["message"], dump(message))
    _eq(problems, "header_fields (of the message)", obj["header_fields"],
        _header_json(FrameHeader.of(message, suite)))  # fmt: skip
    if "seed" in obj:
        seed = as_seed(bytes.fromhex(obj["seed"]))
        _eq(problems, "skRm (derived from seed)", obj["skRm"],
            NodeKeys.derive(seed, header.recipient, suite).session_secret.hex())  # fmt: skip
        _eq(problems, "sender_identity (derived from seed)", obj["sender_identity"],
            NodeKeys.derive(seed, header.sender, suite).identity_public.hex())  # fmt: skip
    _eq(problems, f"roster.{header.sender}", obj["roster"].get(str(header.sender)),
        obj["sender_identity"])  # fmt: skip
    enc = bytes.fromhex(obj["enc"])
    if len(enc) != suite.enc_size:
        problems.append(f"enc: {suite.name}'s enc is {suite.enc_size} bytes; got {len(enc)}")
    private = session_private_key(suite, secret)
    encryptions = obj["encryptions"]
    if len(encryptions) != 1:
        problems.append(f"encryptions: single-shot HPKE has one; got {len(encryptions)}")
    wire = encode_wire(message, fld)
    for i, e in enumerate(encryptions):
        _eq(problems, f"encryptions[{i}].aad", e["aad"], "")
        pt = bytes.fromhex(e["pt"])
        try:
            opened = suite.hpke().decrypt(enc + bytes.fromhex(e["ct"]), private, info=info(raw))
        except Exception as exc:  # noqa: BLE001 - any failure to open is the finding
            problems.append(f"encryptions[{i}].ct: HPKE open failed: {type(exc).__name__}")
            continue
        _eq(problems, f"encryptions[{i}].pt (opened)", e["pt"], opened.hex())
        signed = message.kind in SIGNED_KINDS
        body = pt[:-SIGNATURE_SIZE] if signed else pt
        _eq(problems, f"encryptions[{i}].pt (binary form of message)", body.hex(), wire.hex())
        if signed:
            _eq(problems, "statement_signature", obj.get("statement_signature"),
                pt[-SIGNATURE_SIZE:].hex())  # fmt: skip
            _verify(problems, "statement_signature", bytes.fromhex(obj["sender_identity"]),
                    pt[-SIGNATURE_SIZE:], statement(message))  # fmt: skip
    frame = bytes.fromhex(obj["frame"])
    ct0 = bytes.fromhex(encryptions[0]["ct"]) if encryptions else b""
    _eq(problems, "frame", obj["frame"], (raw + enc + ct0).hex() + obj["frame_signature"])
    _verify(problems, "frame_signature", bytes.fromhex(obj["sender_identity"]),
            bytes.fromhex(obj["frame_signature"]), frame_payload(raw, enc + ct0))  # fmt: skip
    endpoint = Endpoint(
        header.recipient, frozenset(obj["recipient_roles"]), header.session, header.round,
        suite, private, Roster.from_json(obj["roster"]), fld,
    )  # fmt: skip
    try:
        got = open_frame(frame, endpoint)
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
    elif what == "frame":
        frame = bytes.fromhex(obj["frame"])
        _eq(problems, "header (of frame)", obj["header"], frame[:HEADER_SIZE].hex())
        sealed = frame[HEADER_SIZE:-SIGNATURE_SIZE]
        _eq(problems, "message (payload of frame)", obj["message"],
            frame_payload(frame[:HEADER_SIZE], sealed).hex())  # fmt: skip
        _eq(problems, "signature (of frame)", obj["signature"], frame[-SIGNATURE_SIZE:].hex())
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
    if op == "seal":
        _check_seal(obj, problems)
    elif op == "verify_signature":
        _check_signature(obj, problems)
    elif op == "open":
        frame = bytes.fromhex(obj["frame"])
        _expect_fault(obj, lambda: open_frame(frame, _endpoint_from(obj["endpoint"])), problems)
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
