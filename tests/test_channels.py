"""Secure channels: what opens is exactly what was sealed; anything else is a typed rejection.

Spec: spec/14-channels.md
Proof notes: proofs_notes/channel-authenticity.md, proofs_notes/channel-confidentiality.md

The oracles here are independent of protocol/channels.py: the header bytes
are rebuilt from the spec's layout by explicit concatenation, Ed25519 is
checked against RFC 8032's first test vector, and every rejection is
provoked from the outside by changing bytes the spec says are bound.
"""

from __future__ import annotations

import pickle
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.channels import (
    DEFAULT_SUITE,
    HEADER_SIZE,
    KEY_HEADER_SIZE,
    NONCE_SIZE,
    SIGNATURE_SIZE,
    SUITES,
    ChannelSuite,
    Endpoint,
    FrameHeader,
    KeyHeader,
    Roster,
    aad,
    assemble_key_frame,
    conflicting,
    frame_size,
    identity_key,
    identity_public,
    key_info,
    open_frame,
    open_key_frame,
    plaintext,
    seal_frame,
    statement,
    suite_named,
)
from protocol.errors import (
    CHANNEL_FAULTS,
    ChannelError,
    LocalProtocolError,
    ParameterError,
    RemoteProtocolError,
)
from protocol.field import Field31
from protocol.messages import Abort, Decision, Message, Share, encode_wire
from protocol.xof import as_seed
from reference.channels import seal as seal_module
from reference.channels.seal import NodeChannel, NodeKeys, Session, connect, deterministic_session
from tests.strategies import messages

NODES = (1, 2, 3, 4)
SESSION = bytes(range(32))
ROUND = 7
SUITE_LIST = list(SUITES.values())

_SESSIONS: dict[str, tuple[Session, dict[int, NodeKeys], dict[int, NodeChannel]]] = {}


def session_for(suite: ChannelSuite) -> tuple[Session, dict[int, NodeKeys], dict[int, NodeChannel]]:
    """One session of four nodes, every channel key sent and accepted."""
    if suite.name not in _SESSIONS:
        session, keys = deterministic_session(as_seed(bytes(32)), SESSION, NODES, suite)
        _SESSIONS[suite.name] = (session, keys, connect(session, keys))
    return _SESSIONS[suite.name]


def endpoint(suite: ChannelSuite, node: int, roles: tuple[str, ...]) -> Endpoint:
    _, _, channels = session_for(suite)
    return channels[node].endpoint(roles=roles, round=ROUND, field=Field31)


def channel_key(suite: ChannelSuite, sender: int, recipient: int) -> bytes:
    """The channel key ``sender`` sent ``recipient``, as the recipient holds it."""
    return endpoint(suite, recipient, ("aggregator",)).keys[sender]


def round_messages(**kw: object) -> st.SearchStrategy[Message]:
    """Messages of this session and round between two nodes of the roster, Field31 values.

    (A node's messages to itself never leave it, and are not framed.)
    """
    return messages(
        sessions=st.just(SESSION.hex()),
        rounds=st.just(ROUND),
        ids=st.sampled_from(NODES),
        values=st.integers(0, Field31.MODULUS - 1).map(str),
        **kw,  # type: ignore[arg-type]
    ).filter(lambda m: m.sender != m.recipient)


def third(m: Message) -> int:
    """A node of the roster that is neither the message's sender nor its recipient."""
    return next(n for n in NODES if n not in (m.sender, m.recipient))


def sealed(m: Message, suite: ChannelSuite) -> tuple[bytes, Endpoint]:
    _, _, channels = session_for(suite)
    return channels[m.sender].seal(m, Field31), endpoint(suite, m.recipient, (m.role,))


def fault_of(frame: bytes, at: Endpoint) -> str:
    with pytest.raises(ChannelError) as caught:
        open_frame(frame, at)
    assert caught.value.fault in CHANNEL_FAULTS
    return caught.value.fault


suites = st.sampled_from(SUITE_LIST)


# ---------------------------------------------------------------------- what opens


@given(m=round_messages(), suite=suites)
def test_a_sealed_frame_opens_to_exactly_its_message(m: Message, suite: ChannelSuite) -> None:
    frame, at = sealed(m, suite)
    opened = open_frame(frame, at)
    assert opened.message == m
    assert len(frame) == frame_size(m, Field31, suite)
    signed = m.kind in ("decision", "abort")
    assert (opened.statement_signature is not None) == signed
    if signed:
        assert opened.statement_signature is not None
        session, _, _ = session_for(suite)
        session.roster.identity(m.sender).verify(opened.statement_signature, statement(m))


@given(m=round_messages(), suite=suites)
def test_sealing_twice_gives_different_frames_that_open_alike(
    m: Message, suite: ChannelSuite
) -> None:
    """The nonce is fresh each time: equal messages give unlinkable frames."""
    (a, at), (b, _) = sealed(m, suite), sealed(m, suite)
    assert a[:HEADER_SIZE] == b[:HEADER_SIZE]
    assert a[HEADER_SIZE:] != b[HEADER_SIZE:]
    assert open_frame(a, at).message == open_frame(b, at).message == m


def test_header_bytes_follow_the_spec_layout() -> None:
    """Rebuilt by hand from spec/14-channels.md#header, not from the module's struct."""
    m = Share(session=SESSION.hex(), round=ROUND, sender=3, recipient=2, role="aggregator",
              stage=5, values=("1", "2"))  # type: ignore[arg-type]  # fmt: skip
    expected = (
        b"SDLF" + bytes([1])
        + (0x0020).to_bytes(2, "little") + (0x0001).to_bytes(2, "little")
        + (0x0001).to_bytes(2, "little") + SESSION + ROUND.to_bytes(8, "little")
        + (5).to_bytes(2, "little") + bytes([1]) + bytes([2])
        + (3).to_bytes(4, "little") + (2).to_bytes(4, "little")
    )  # fmt: skip
    got = FrameHeader.of(m, DEFAULT_SUITE).encode()
    assert got == expected and len(got) == HEADER_SIZE == 63
    assert FrameHeader.decode(got) == FrameHeader.of(m, DEFAULT_SUITE)


def test_ed25519_is_rfc8032() -> None:
    """RFC 8032 section 7.1, TEST 1: the identity keys are plain Ed25519."""
    sk = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    key = identity_key(sk)
    assert identity_public(key).hex() == (
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    )
    assert key.sign(b"").hex() == (
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc6"
        "1e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    )


# ---------------------------------------------------------------------- what never opens


@settings(max_examples=60)
@given(m=round_messages(), suite=suites, data=st.data())
def test_any_changed_byte_is_rejected(m: Message, suite: ChannelSuite, data: st.DataObject) -> None:
    frame, at = sealed(m, suite)
    i = data.draw(st.integers(0, len(frame) - 1), label="position")
    x = data.draw(st.integers(1, 255), label="xor")
    bad = bytearray(frame)
    bad[i] ^= x
    fault = fault_of(bytes(bad), at)
    # Where the change is says which check catches it first.
    if i < HEADER_SIZE:
        assert fault in ("header", "suite", "roster", "key", "tag")
    else:
        assert fault == "tag"


@given(m=round_messages(), suite=suites, data=st.data())
def test_any_truncation_or_extension_is_rejected(
    m: Message, suite: ChannelSuite, data: st.DataObject
) -> None:
    frame, at = sealed(m, suite)
    cut = data.draw(st.integers(0, len(frame) - 1), label="length")
    expected = "truncated" if cut < HEADER_SIZE + NONCE_SIZE + 16 else "tag"
    assert fault_of(frame[:cut], at) == expected
    assert fault_of(frame + data.draw(st.binary(min_size=1, max_size=8)), at) == "tag"


def _rewrite(frame: bytes, suite: ChannelSuite, **changes: object) -> bytes:
    header = replace(FrameHeader.decode(frame), **changes)  # type: ignore[arg-type]
    return header.encode() + frame[HEADER_SIZE:]


@given(m=round_messages(), suite=suites)
def test_a_frame_is_bound_to_its_context(m: Message, suite: ChannelSuite) -> None:
    """Another session, round, recipient or role: refused before any cryptography."""
    frame, at = sealed(m, suite)
    other_role = "receiver" if m.role != "receiver" else "aggregator"
    other_node = third(m)
    assert fault_of(_rewrite(frame, suite, session=bytes(32)), at) == "header"
    assert fault_of(_rewrite(frame, suite, round=ROUND + 1), at) == "header"
    assert fault_of(_rewrite(frame, suite, recipient=other_node), at) == "header"
    assert fault_of(_rewrite(frame, suite, role=other_role), at) == "header"
    # The genuine frame, delivered to a node or a role it is not for.
    assert fault_of(frame, endpoint(suite, other_node, (m.role,))) == "header"
    assert fault_of(frame, endpoint(suite, m.recipient, (other_role,))) == "header"
    # Readdressed to whoever receives it: another node's channel key, another aad.
    moved = _rewrite(frame, suite, recipient=other_node)
    assert fault_of(moved, endpoint(suite, other_node, (m.role,))) == "tag"


@given(m=round_messages(), suite=suites)
def test_stage_kind_and_sender_are_bound_by_the_aead(m: Message, suite: ChannelSuite) -> None:
    frame, at = sealed(m, suite)
    header = FrameHeader.decode(frame)
    assert fault_of(_rewrite(frame, suite, stage=(header.stage + 1) % (1 << 16)), at) == "tag"
    other_kind = "report" if m.kind != "report" else "share"
    assert fault_of(_rewrite(frame, suite, kind=other_kind), at) == "tag"
    assert fault_of(_rewrite(frame, suite, sender=third(m)), at) == "tag"
    assert fault_of(_rewrite(frame, suite, sender=99), at) == "roster"


@given(m=round_messages(), suite=suites, key=st.binary(min_size=32, max_size=32))
def test_a_forged_sender_is_rejected(m: Message, suite: ChannelSuite, key: bytes) -> None:
    """A well-formed frame that claims a sender, sealed under a key that is not its."""
    forger = identity_key(bytes([7]) * 32)
    forged = seal_frame(m, Field31, suite=suite, key=key[: suite.key_size], nonce=bytes(12),
                        identity=forger)  # fmt: skip
    assert fault_of(forged, endpoint(suite, m.recipient, (m.role,))) == "tag"


@given(m=round_messages(), suite=suites)
def test_a_frame_needs_its_senders_channel_key(m: Message, suite: ChannelSuite) -> None:
    frame, at = sealed(m, suite)
    missing = replace(at, keys={n: k for n, k in at.keys.items() if n != m.sender})
    assert fault_of(frame, missing) == "key"
    other = next(n for n in at.keys if n != m.sender)
    wrong = replace(at, keys={**at.keys, m.sender: at.keys[other]})
    assert fault_of(frame, wrong) == "tag"


def _sealed_raw(header: bytes, pt: bytes, suite: ChannelSuite, sender: int, to: int) -> bytes:
    """What a roster node holding the channel key can seal, header and plaintext of its choice."""
    nonce = bytes(range(NONCE_SIZE))
    return (
        header + nonce + suite.aead(channel_key(suite, sender, to)).encrypt(nonce, pt, aad(header))
    )


@given(m=round_messages(), suite=suites)
def test_a_plaintext_that_contradicts_its_header_is_rejected(
    m: Message, suite: ChannelSuite
) -> None:
    """A roster node that authenticates one header and seals another message is refused."""
    _, keys, _ = session_for(suite)
    header = FrameHeader.of(m, suite)
    lie = replace(header, stage=(header.stage + 1) % (1 << 16))
    if m.kind == "abort":
        lie = replace(header, round=ROUND, kind="report")
    pt = plaintext(m, Field31, keys[m.sender].identity)
    frame = _sealed_raw(lie.encode(), pt, suite, m.sender, m.recipient)
    at = endpoint(suite, m.recipient, (lie.role,))
    assert fault_of(frame, at) == "plaintext"
    garbage = _sealed_raw(header.encode(), b"\x00\x01", suite, m.sender, m.recipient)
    assert fault_of(garbage, endpoint(suite, m.recipient, (m.role,))) == "plaintext"


@given(m=round_messages(kinds=(Decision, Abort)), suite=suites)
def test_a_broadcast_with_a_bad_statement_signature_is_rejected(
    m: Message, suite: ChannelSuite
) -> None:
    _, keys, _ = session_for(suite)
    header = FrameHeader.of(m, suite).encode()
    other = keys[third(m)].identity.sign(statement(m))
    frame = _sealed_raw(header, encode_wire(m, Field31) + other, suite, m.sender, m.recipient)
    assert fault_of(frame, endpoint(suite, m.recipient, (m.role,))) == "statement"


# ---------------------------------------------------------------------- key frames


def _key_frame(suite: ChannelSuite, sender: int, to: int, key: bytes, *, signer: int | None = None,
               session: bytes = SESSION) -> bytes:  # fmt: skip
    """A key frame as :meth:`NodeChannel.key_frames` builds it, with its parts chosen."""
    sess, keys, _ = session_for(suite)
    header = KeyHeader(suite, session, sender, to).encode()
    sealed_ = suite.hpke().encrypt(key, sess.public_keys[to], info=key_info(header))
    return assemble_key_frame(header, sealed_, keys[signer or sender].identity)


def _open_key(suite: ChannelSuite, frame: bytes, node: int) -> tuple[int, bytes]:
    sess, keys, _ = session_for(suite)
    return open_key_frame(frame, node=node, session=SESSION, suite=suite,
                          private_key=keys[node].private_key, roster=sess.roster)  # fmt: skip


def _key_fault(suite: ChannelSuite, frame: bytes, node: int) -> str:
    with pytest.raises(ChannelError) as caught:
        _open_key(suite, frame, node)
    return caught.value.fault


@settings(max_examples=30)
@given(suite=suites, key=st.binary(min_size=32, max_size=32), data=st.data())
def test_a_key_frame_opens_to_its_key_and_any_change_is_rejected(
    suite: ChannelSuite, key: bytes, data: st.DataObject
) -> None:
    key = key[: suite.key_size]
    frame = _key_frame(suite, 1, 2, key)
    assert len(frame) == suite.key_frame_size
    assert _open_key(suite, frame, 2) == (1, key)
    i = data.draw(st.integers(0, len(frame) - 1), label="position")
    bad = bytearray(frame)
    bad[i] ^= data.draw(st.integers(1, 255), label="xor")
    fault = _key_fault(suite, bytes(bad), 2)
    assert fault in (("header", "suite", "roster", "signature") if i < KEY_HEADER_SIZE
                     else ("signature",))  # fmt: skip
    assert _key_fault(suite, frame[:-1], 2) == "truncated"
    assert _key_fault(suite, frame + b"\x00", 2) == "key"


@pytest.mark.parametrize("suite", SUITE_LIST, ids=lambda s: s.name)
def test_key_frames_are_bound_to_sender_recipient_and_session(suite: ChannelSuite) -> None:
    key = bytes(range(suite.key_size))
    frame = _key_frame(suite, 1, 2, key)
    assert _key_fault(suite, frame, 3) == "header"  # another recipient
    assert _key_fault(suite, _key_frame(suite, 1, 2, key, session=bytes(32)), 2) == "header"
    # Re-signing: node 3 takes node 1's sealed key, names itself the sender and signs.
    header = KeyHeader(suite, SESSION, 3, 2).encode()
    _, keys, _ = session_for(suite)
    stolen = assemble_key_frame(header, frame[KEY_HEADER_SIZE:-SIGNATURE_SIZE], keys[3].identity)
    assert _key_fault(suite, stolen, 2) == "tag"
    # Signed by another roster node than the one it names.
    assert _key_fault(suite, _key_frame(suite, 1, 2, key, signer=3), 2) == "signature"
    # Not the recipient's private key.
    sess, keys, _ = session_for(suite)
    with pytest.raises(ChannelError) as caught:
        open_key_frame(frame, node=2, session=SESSION, suite=suite,
                       private_key=keys[3].private_key, roster=sess.roster)  # fmt: skip
    assert caught.value.fault == "tag"


@pytest.mark.parametrize("suite", SUITE_LIST, ids=lambda s: s.name)
def test_one_channel_key_per_sender(suite: ChannelSuite) -> None:
    session, keys = deterministic_session(as_seed(bytes(32)), SESSION, NODES, suite)
    a, b = NodeChannel(keys[1], session), NodeChannel(keys[2], session)
    frame = a.key_frames([2])[2]
    assert a.key_frames([2]) == {}  # a key is sent once
    assert b.accept(frame) == 1 and b.accept(frame) == 1  # a copy is harmless
    again = _key_frame(suite, 1, 2, bytes(suite.key_size))
    with pytest.raises(ChannelError) as caught:
        b.accept(again)
    assert caught.value.fault == "key"
    with pytest.raises(ParameterError, match="no channel key for node 3"):
        a.seal(_decision(recipient=3), Field31)


# ---------------------------------------------------------------------- sessions and rosters


@pytest.mark.parametrize("suite", SUITE_LIST, ids=lambda s: s.name)
def test_session_keys_are_verified_against_the_roster(suite: ChannelSuite) -> None:
    session, keys, _ = session_for(suite)
    adverts = list(session.adverts)
    assert Session.establish(SESSION, suite, session.roster, adverts).public_keys.keys() == set(
        NODES
    )
    # A key substituted on the way: the signature no longer covers it.
    swapped = replace(adverts[0], public_key=adverts[1].public_key)
    with pytest.raises(ChannelError) as caught:
        Session.establish(SESSION, suite, session.roster, [swapped, *adverts[1:]])
    assert caught.value.fault == "signature"
    # An advert for another session, or by a node the roster does not name.
    with pytest.raises(ChannelError) as caught:
        Session.establish(bytes(32), suite, session.roster, adverts)
    assert caught.value.fault == "session-key"
    stranger = NodeKeys.derive(as_seed(bytes([9]) * 32), 9, suite).advertise(SESSION)
    with pytest.raises(ChannelError) as caught:
        Session.establish(SESSION, suite, session.roster, [*adverts, stranger])
    assert caught.value.fault == "roster"
    # Trust on first use is refused: a roster that lacks a node's identity.
    partial = Roster({n: k for n, k in session.roster.keys.items() if n != 4})
    with pytest.raises(ChannelError):
        Session.establish(SESSION, suite, partial, adverts)
    with pytest.raises(ParameterError, match="advertise no session key"):
        Session.establish(SESSION, suite, session.roster, adverts[:-1])
    with pytest.raises(ChannelError, match="advertises two session keys"):
        Session.establish(SESSION, suite, session.roster, [*adverts, adverts[0]])
    assert keys[1].identity_public == session.roster.keys[1]


def test_roster_json_round_trips_and_refuses_malformed_input() -> None:
    session, _, _ = session_for(DEFAULT_SUITE)
    assert Roster.from_json(session.roster.to_json()) == session.roster
    for bad in ([], {"01": "00" * 32}, {"1": "00" * 31}, {"1": "zz" * 32}, {"x": "00" * 32}):
        with pytest.raises(ParameterError):
            Roster.from_json(bad)
    with pytest.raises(ParameterError):
        Roster({0: bytes(32)})
    with pytest.raises(ParameterError, match="channel suite must be one of"):
        suite_named("rot13")


def test_production_keys_are_fresh() -> None:
    a, b = NodeKeys.generate(1, DEFAULT_SUITE), NodeKeys.generate(1, DEFAULT_SUITE)
    assert a.identity_public != b.identity_public and a.session_secret != b.session_secret
    assert "session_secret" not in repr(a) and a.session_secret.hex() not in repr(a)


# ---------------------------------------------------------------------- statements


def _decision(stage: int = 0, final: bool = True, contributors: tuple[int, ...] = (1, 2, 3),
              recipient: int = 2, round: int = ROUND) -> Decision:  # fmt: skip
    return Decision(session=SESSION.hex(), round=round, sender=1, recipient=recipient,
                    role="aggregator", stage=stage, contributors=contributors,
                    aggregators=(2, 3, 4), final=final)  # type: ignore[arg-type]  # fmt: skip


def _signed(m: Message, node: int = 1) -> tuple[Message, bytes]:
    _, keys, _ = session_for(DEFAULT_SUITE)
    return m, keys[node].identity.sign(statement(m))


def test_conflicting_decisions_are_evidence_anyone_can_check() -> None:
    roster = session_for(DEFAULT_SUITE)[0].roster
    a = _signed(_decision(contributors=(1, 2, 3)))
    b = _signed(_decision(contributors=(1, 2, 4), recipient=3))
    assert conflicting(a, b, roster)
    # The same decision to two recipients is one statement: no evidence.
    assert statement(a[0]) == statement(_decision(recipient=4))
    assert not conflicting(a, _signed(_decision(recipient=4)), roster)
    # A later stage follows only a decision that was not final: with a final
    # one for stage 0, any decision for stage 1 proves equivocation.
    assert conflicting(a, _signed(_decision(stage=1, contributors=(1, 2))), roster)
    not_final = _signed(_decision(final=False))
    assert not conflicting(not_final, _signed(_decision(stage=1, contributors=(1, 2))), roster)
    # Another round is another statement.
    assert not conflicting(a, _signed(_decision(contributors=(1, 2), round=ROUND + 1)), roster)
    abort = Abort(session=SESSION.hex(), round=ROUND, sender=1, recipient=2, role="aggregator",
                  reason="too-many-dropouts")  # fmt: skip
    assert conflicting(a, _signed(abort), roster)
    assert not conflicting(_signed(_decision(final=False)), _signed(abort), roster)
    # A statement not signed by the sender's roster identity proves nothing.
    with pytest.raises(ChannelError) as caught:
        conflicting(a, _signed(b[0], node=2), roster)
    assert caught.value.fault == "statement"


def test_channel_error_is_a_remote_protocol_error_and_pickles() -> None:
    exc = ChannelError("tag", "HPKE open failed")
    assert isinstance(exc, RemoteProtocolError)
    back = pickle.loads(pickle.dumps(exc))
    assert (back.fault, back.detail, str(back)) == (exc.fault, exc.detail, str(exc))


def test_a_channel_key_seals_a_bounded_number_of_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    """Random 96-bit nonces: the session must end before a key's nonces could repeat."""
    monkeypatch.setattr(seal_module, "MAX_FRAMES_PER_KEY", 2)
    session, keys = deterministic_session(as_seed(bytes(32)), SESSION, NODES, DEFAULT_SUITE)
    channels = connect(session, keys)
    m = _decision(recipient=2)
    channels[1].seal(m, Field31)
    channels[1].seal(m, Field31)
    with pytest.raises(LocalProtocolError, match="start a new session"):
        channels[1].seal(m, Field31)
    channels[1].seal(_decision(recipient=3), Field31)  # another key, its own count


def test_no_channel_key_is_printed() -> None:
    at = endpoint(DEFAULT_SUITE, 2, ("aggregator",))
    assert at.keys and all(
        k.hex() not in repr(at) and str(k) not in repr(at) for k in at.keys.values()
    )
