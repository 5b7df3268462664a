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
    SIGNATURE_SIZE,
    SUITES,
    ChannelSuite,
    Endpoint,
    FrameHeader,
    Roster,
    assemble,
    conflicting,
    frame_size,
    identity_key,
    identity_public,
    info,
    open_frame,
    plaintext,
    statement,
    suite_named,
)
from protocol.errors import CHANNEL_FAULTS, ChannelError, ParameterError, RemoteProtocolError
from protocol.field import Field31
from protocol.messages import Abort, Decision, Message, Share, encode_wire
from protocol.xof import as_seed
from reference.channels.seal import NodeKeys, Session, deterministic_session, seal
from tests.strategies import messages

NODES = (1, 2, 3, 4)
SESSION = bytes(range(32))
ROUND = 7
SUITE_LIST = list(SUITES.values())

_SESSIONS: dict[str, tuple[Session, dict[int, NodeKeys]]] = {}


def session_for(suite: ChannelSuite) -> tuple[Session, dict[int, NodeKeys]]:
    if suite.name not in _SESSIONS:
        _SESSIONS[suite.name] = deterministic_session(as_seed(bytes(32)), SESSION, NODES, suite)
    return _SESSIONS[suite.name]


def endpoint(suite: ChannelSuite, node: int, roles: tuple[str, ...]) -> Endpoint:
    session, keys = session_for(suite)
    return session.endpoint(keys[node], roles=roles, round=ROUND, field=Field31)


def round_messages(**kw: object) -> st.SearchStrategy[Message]:
    """Messages of this session and round, between nodes of the roster, with Field31 values."""
    return messages(
        sessions=st.just(SESSION.hex()),
        rounds=st.just(ROUND),
        ids=st.sampled_from(NODES),
        values=st.integers(0, Field31.MODULUS - 1).map(str),
        **kw,  # type: ignore[arg-type]
    )


def sealed(m: Message, suite: ChannelSuite) -> tuple[bytes, Endpoint]:
    session, keys = session_for(suite)
    frame = seal(
        m, Field31, suite=suite, identity=keys[m.sender].identity,
        recipient_key=session.public_keys[m.recipient],
    )  # fmt: skip
    return frame, endpoint(suite, m.recipient, (m.role,))


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
        session, _ = session_for(suite)
        session.roster.identity(m.sender).verify(opened.statement_signature, statement(m))


@given(m=round_messages(), suite=suites)
def test_sealing_twice_gives_different_frames_that_open_alike(
    m: Message, suite: ChannelSuite
) -> None:
    """The KEM's ephemeral key is fresh each time: equal messages give unlinkable frames."""
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
        assert fault in ("header", "suite", "roster", "signature")
    else:
        assert fault == "signature"


@given(m=round_messages(), suite=suites, data=st.data())
def test_any_truncation_or_extension_is_rejected(
    m: Message, suite: ChannelSuite, data: st.DataObject
) -> None:
    frame, at = sealed(m, suite)
    cut = data.draw(st.integers(0, len(frame) - 1), label="length")
    assert fault_of(frame[:cut], at) in ("truncated", "header", "signature")
    assert fault_of(frame + data.draw(st.binary(min_size=1, max_size=8)), at) == "signature"


def _rewrite(frame: bytes, suite: ChannelSuite, **changes: object) -> bytes:
    header = replace(FrameHeader.decode(frame), **changes)  # type: ignore[arg-type]
    return header.encode() + frame[HEADER_SIZE:]


@given(m=round_messages(), suite=suites)
def test_a_frame_is_bound_to_its_context(m: Message, suite: ChannelSuite) -> None:
    """Another session, round, recipient or role: refused before any cryptography."""
    frame, at = sealed(m, suite)
    other_role = "receiver" if m.role != "receiver" else "aggregator"
    other_node = m.recipient % len(NODES) + 1
    assert fault_of(_rewrite(frame, suite, session=bytes(32)), at) == "header"
    assert fault_of(_rewrite(frame, suite, round=ROUND + 1), at) == "header"
    assert fault_of(_rewrite(frame, suite, recipient=other_node), at) == "header"
    assert fault_of(_rewrite(frame, suite, role=other_role), at) == "header"
    # The genuine frame, delivered to a node or a role it is not for.
    assert fault_of(frame, endpoint(suite, other_node, (m.role,))) == "header"
    assert fault_of(frame, endpoint(suite, m.recipient, (other_role,))) == "header"
    # Readdressed to whoever receives it: the header no longer matches its signature.
    moved = _rewrite(frame, suite, recipient=other_node)
    assert fault_of(moved, endpoint(suite, other_node, (m.role,))) == "signature"


@given(m=round_messages(), suite=suites)
def test_stage_kind_and_sender_are_bound_by_the_signature(m: Message, suite: ChannelSuite) -> None:
    frame, at = sealed(m, suite)
    header = FrameHeader.decode(frame)
    assert fault_of(_rewrite(frame, suite, stage=(header.stage + 1) % (1 << 16)), at) == "signature"
    other_kind = "report" if m.kind != "report" else "share"
    assert fault_of(_rewrite(frame, suite, kind=other_kind), at) == "signature"
    other_sender = m.sender % len(NODES) + 1
    assert fault_of(_rewrite(frame, suite, sender=other_sender), at) == "signature"
    assert fault_of(_rewrite(frame, suite, sender=99), at) == "roster"


@given(m=round_messages(), suite=suites)
def test_a_forged_sender_is_rejected(m: Message, suite: ChannelSuite) -> None:
    """Sealed correctly to the recipient, but signed by a key the roster does not name."""
    session, _ = session_for(suite)
    forger = identity_key(bytes([7]) * 32)
    header = FrameHeader.of(m, suite).encode()
    sealed_ = suite.hpke().encrypt(plaintext(m, Field31, forger), session.public_keys[m.recipient],
                                   info=info(header))  # fmt: skip
    frame = assemble(header, sealed_, forger)
    assert fault_of(frame, endpoint(suite, m.recipient, (m.role,))) == "signature"


@given(m=round_messages(), suite=suites, data=st.data())
def test_a_sender_that_signs_a_broken_ciphertext_is_caught_by_hpke(
    m: Message, suite: ChannelSuite, data: st.DataObject
) -> None:
    """What gets past the signature (a roster node misbehaving) still meets HPKE's tag."""
    _, keys = session_for(suite)
    identity = keys[m.sender].identity
    frame, at = sealed(m, suite)
    body = bytearray(frame[HEADER_SIZE:-SIGNATURE_SIZE])
    body[data.draw(st.integers(0, len(body) - 1))] ^= data.draw(st.integers(1, 255))
    assert fault_of(assemble(frame[:HEADER_SIZE], bytes(body), identity), at) == "tag"
    # The right node and role, but another node's session key.
    wrong = replace(at, private_key=keys[m.recipient % len(NODES) + 1].private_key)
    assert fault_of(frame, wrong) == "tag"


def _sealed_raw(header: bytes, pt: bytes, suite: ChannelSuite, sender: int, to: int) -> bytes:
    session, keys = session_for(suite)
    ct = suite.hpke().encrypt(pt, session.public_keys[to], info=info(header))
    return assemble(header, ct, keys[sender].identity)


@given(m=round_messages(), suite=suites)
def test_a_plaintext_that_contradicts_its_header_is_rejected(
    m: Message, suite: ChannelSuite
) -> None:
    """A roster node that signs one header and seals another message is refused."""
    _, keys = session_for(suite)
    header = FrameHeader.of(m, suite)
    lie = replace(header, stage=(header.stage + 1) % (1 << 16))
    if m.kind == "abort":
        lie = replace(header, round=ROUND, sender=m.sender % len(NODES) + 1)
    pt = plaintext(m, Field31, keys[m.sender].identity)
    frame = _sealed_raw(lie.encode(), pt, suite, lie.sender, m.recipient)
    assert fault_of(frame, endpoint(suite, m.recipient, (m.role,))) == "plaintext"
    garbage = _sealed_raw(header.encode(), b"\x00\x01", suite, m.sender, m.recipient)
    assert fault_of(garbage, endpoint(suite, m.recipient, (m.role,))) == "plaintext"


@given(m=round_messages(kinds=(Decision, Abort)), suite=suites)
def test_a_broadcast_with_a_bad_statement_signature_is_rejected(
    m: Message, suite: ChannelSuite
) -> None:
    _, keys = session_for(suite)
    header = FrameHeader.of(m, suite).encode()
    other = keys[m.sender % len(NODES) + 1].identity.sign(statement(m))
    frame = _sealed_raw(header, encode_wire(m, Field31) + other, suite, m.sender, m.recipient)
    assert fault_of(frame, endpoint(suite, m.recipient, (m.role,))) == "statement"


# ---------------------------------------------------------------------- sessions and rosters


@pytest.mark.parametrize("suite", SUITE_LIST, ids=lambda s: s.name)
def test_session_keys_are_verified_against_the_roster(suite: ChannelSuite) -> None:
    session, keys = session_for(suite)
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
    session, _ = session_for(DEFAULT_SUITE)
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
    _, keys = session_for(DEFAULT_SUITE)
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
