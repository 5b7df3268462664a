"""The protocol's messages: canonical JSON, strict parsing, committed schemas.

Spec: spec/09-protocol.md#messages, spec/09-protocol.md#encoding

Oracles: the standard library's ``json`` (key order and spacing of the
text, read back independently of pydantic), and hand-written mutations of
valid messages, each of which the spec forbids.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.errors import EncodingError, InvalidMessage
from protocol.field import Field31, Field61
from protocol.messages import (
    MESSAGE_TYPES,
    REASONS,
    Elements,
    Message,
    decode_wire,
    dump,
    encode_wire,
    from_obj,
    parse,
    schemas,
    wire_size,
)
from tests.strategies import messages

REPO = Path(__file__).resolve().parent.parent
SCHEMA_DIR = REPO / "spec" / "schemas"

Json = dict[str, Any]


def _ordered_keys(text: str) -> list[list[str]]:
    """Every JSON object's keys in the order the text lists them (stdlib parser)."""
    seen: list[list[str]] = []

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen.append([k for k, _ in pairs])
        return dict(pairs)

    json.loads(text, object_pairs_hook=hook)
    return seen


@given(messages())
def test_message_json_round_trip(m: Message) -> None:
    """``parse(dump(m)) == m`` for every kind, and ``dump`` is canonical.

    Canonical: one JSON object, keys sorted (read back with the stdlib
    parser, not with pydantic), no whitespace at all, every field element a
    decimal string, every id an integer, and re-dumping the parsed message
    gives the same bytes.
    """
    text = dump(m)
    assert parse(text) == m
    assert parse(text.encode()) == m
    assert dump(parse(text)) == text
    assert not any(c.isspace() for c in text), text
    for keys in _ordered_keys(text):
        assert keys == sorted(keys), keys
        assert len(keys) == len(set(keys))
    obj = json.loads(text)
    # Every model field is on the wire, including the defaulted version and kind.
    assert set(obj) == set(type(m).model_fields), sorted(obj)
    assert obj["version"] == 1 and obj["kind"] == type(m).model_fields["kind"].default
    for key in ("values",):
        if key in obj:
            assert all(isinstance(v, str) for v in obj[key])
            assert [int(v) for v in obj[key]] == [int(v) for v in getattr(m, key)]
    for key in ("sender", "recipient", "round", "stage"):
        if key in obj:
            assert type(obj[key]) is int
    # The stdlib's own canonical form of the same object is byte-identical.
    assert json.dumps(obj, sort_keys=True, separators=(",", ":")) == text


# ---------------------------------------------------------------- non-canonical input

Mutation = Callable[[Json], Json]


def _set(key: str, value: object) -> Mutation:
    return lambda obj: {**obj, key: value}


def _set_first(key: str, value: object) -> Mutation:
    return lambda obj: {**obj, key: [value, *obj[key][1:]]}


def _without(key: str) -> Mutation:
    return lambda obj: {k: v for k, v in obj.items() if k != key}


def _unsorted(key: str) -> Mutation:
    return lambda obj: {**obj, key: [2, 1]}


def _duplicated(key: str) -> Mutation:
    return lambda obj: {**obj, key: [3, 3]}


def _other_role(obj: Json) -> Json:
    kind = next(m for m in MESSAGE_TYPES if m.model_fields["kind"].default == obj["kind"])
    wrong = next(
        r for r in ("contributor", "aggregator", "coordinator", "receiver") if r not in kind.ROLES
    )
    return {**obj, "role": wrong}


#: (field the error must name, kinds it applies to, mutation). Each breaks a
#: MUST of spec/09-protocol.md#encoding.
HEADER_MUTATIONS: list[tuple[str, Mutation]] = [
    ("version", _set("version", 2)),
    ("version", _set("version", 0)),
    ("version", _set("version", "1")),
    ("version", _set("version", True)),
    ("version", _set("version", 1.0)),
    ("version", _without("version")),
    ("session", _set("session", "AB" * 32)),
    ("session", _set("session", "ab" * 31)),
    ("session", _set("session", "0x" + "ab" * 31)),
    ("session", _without("session")),
    ("round", _set("round", -1)),
    ("round", _set("round", True)),
    ("round", _set("round", "0")),
    ("round", _set("round", 0.0)),
    ("round", _set("round", 1 << 53)),
    ("sender", _set("sender", 0)),
    ("sender", _set("sender", -1)),
    ("sender", _set("sender", "1")),
    ("sender", _set("sender", True)),
    ("sender", _set("sender", 1.0)),
    ("sender", _set("sender", 1 << 32)),
    ("sender", _set("sender", None)),
    ("recipient", _set("recipient", False)),
    ("recipient", _set("recipient", 2.5)),
    ("recipient", _without("recipient")),
    ("role", _other_role),
    ("role", _set("role", "Aggregator")),
    ("role", _set("role", "")),
    ("smuggled", _set("smuggled", 1)),
    ("kind", _set("kind", "Share")),
    ("kind", _set("kind", "ping")),
    ("kind", _without("kind")),
]
BODY_MUTATIONS: dict[str, list[tuple[str, Mutation]]] = {
    "share": [
        ("values", _set_first("values", "01")),
        ("values", _set_first("values", "00")),
        ("values", _set_first("values", "+1")),
        ("values", _set_first("values", "-1")),
        ("values", _set_first("values", " 1")),
        ("values", _set_first("values", "1.0")),
        ("values", _set_first("values", "1e3")),
        ("values", _set_first("values", "0x1")),
        ("values", _set_first("values", "")),
        ("values", _set_first("values", 1)),
        ("values", _set_first("values", 1.5)),
        ("values", _set_first("values", True)),
        ("values", _set_first("values", "1" * 21)),
        ("values", _set_first("values", str(1 << 64))),
        ("values", _set("values", [])),
        ("values", _set("values", "1")),
        ("stage", _set("stage", -1)),
        ("stage", _set("stage", True)),
        ("stage", _set("stage", 1.0)),
        ("stage", _set("stage", 1 << 16)),
        ("stage", _without("stage")),
    ],
    "report": [
        ("holds", _unsorted("holds")),
        ("holds", _duplicated("holds")),
        ("holds", _set("holds", [0])),
        ("holds", _set("holds", ["1"])),
        ("holds", _set("holds", [True])),
        ("holds", _set("holds", [1.0])),
        ("stage", _set("stage", "0")),
    ],
    "decision": [
        ("contributors", _unsorted("contributors")),
        ("contributors", _duplicated("contributors")),
        ("contributors", _set("contributors", [])),
        ("aggregators", _unsorted("aggregators")),
        ("aggregators", _duplicated("aggregators")),
        ("aggregators", _set("aggregators", [1.0])),
        ("final", _set("final", 1)),
        ("final", _set("final", "true")),
        ("final", _set("final", None)),
        ("final", _without("final")),
    ],
    "partial_sum": [
        ("contributors", _unsorted("contributors")),
        ("contributors", _duplicated("contributors")),
        ("aggregators", _unsorted("aggregators")),
        ("aggregators", _set("aggregators", [])),
        ("values", _set_first("values", "007")),
        ("values", _set_first("values", "-0")),
        ("values", _set_first("values", 7)),
    ],
    "abort": [
        ("reason", _set("reason", "because")),
        ("reason", _set("reason", REASONS[0].upper())),
        ("reason", _set("reason", 0)),
        ("reason", _without("reason")),
    ],
}


@st.composite
def _mutated(draw: st.DrawFn) -> tuple[str, Json]:
    m = draw(messages())
    obj = json.loads(dump(m))
    # Lists of at least two ids, so that "unsorted" and "duplicate" apply to
    # the message's own ids.
    choices = HEADER_MUTATIONS + BODY_MUTATIONS[m.kind]
    field, mutate = draw(st.sampled_from(choices))
    return field, mutate(obj)


@given(_mutated())
def test_non_canonical_message_is_rejected(case: tuple[str, Json]) -> None:
    """Every non-canonical variant of a valid message raises ``InvalidMessage`` naming the field.

    Leading zeros, signs, spaces, exponents and hex in field elements; ints
    where strings belong and the reverse; bools and floats where ints
    belong; out-of-range ids, stages and rounds; unknown or missing keys;
    a role that the kind may not be addressed to; unsorted or repeated id
    lists; another version; an unknown reason.
    """
    field, obj = case
    with pytest.raises(InvalidMessage) as info:
        from_obj(obj)
    assert field in str(info.value), (field, str(info.value))


@given(messages(), st.sampled_from(["sender", "recipient", "kind", "session", "version"]))
def test_duplicate_json_keys_are_rejected(m: Message, key: str) -> None:
    """A key given twice is ambiguous (parsers keep the first or the last): refused."""
    text = dump(m)
    obj = json.loads(text)
    doubled = text[:-1] + "," + json.dumps(key) + ":" + json.dumps(obj[key]) + "}"
    with pytest.raises(InvalidMessage) as info:
        parse(doubled)
    assert key in str(info.value)


@pytest.mark.parametrize("text", ["", "null", "[]", "1", '"share"', "{", "{}", "\xff", "NaN"])
def test_non_messages_are_rejected(text: str) -> None:
    with pytest.raises(InvalidMessage):
        parse(text)


def test_committed_schemas_are_current() -> None:
    """Each schema :func:`protocol.messages.schemas` exports is committed, unchanged.

    Spec: spec/09-protocol.md#encoding. The files are generated by
    ``sdl schema spec/schemas``; a stale or missing file fails this test.
    """
    exported = schemas()
    assert exported, "protocol.messages.schemas() exported nothing"
    for name, schema in sorted(exported.items()):
        path = SCHEMA_DIR / name
        if not path.is_file():
            pytest.fail(
                f"{path.relative_to(REPO)} is missing; run `sdl schema spec/schemas` "
                "and commit the result"
            )
        committed = json.loads(path.read_text(encoding="utf-8"))
        assert committed == schema, (
            f"{path.relative_to(REPO)} is stale; run `sdl schema spec/schemas` and commit it"
        )


# ---------------------------------------------------------------- values in memory
# Spec: spec/09-protocol.md#values

U64 = st.integers(0, (1 << 64) - 1)


@given(st.lists(U64, min_size=1, max_size=40))
def test_elements_hold_exactly_the_integers_given(xs: list[int]) -> None:
    """Elements keep every value exactly, compactly when all fit in 32 bits, and
    their JSON is the canonical decimal list the text form has always had."""
    e = Elements(np.array(xs, dtype=np.uint64))
    assert list(e) == xs and len(e) == len(xs)
    assert e.array.dtype == (np.uint32 if max(xs) < 1 << 32 else np.uint64)
    assert e.to_json() == [str(x) for x in xs]
    assert Elements.from_json([str(x) for x in xs]) == e
    assert not e.array.flags.writeable


@given(st.lists(st.integers(0, Field31.MODULUS - 1), min_size=1, max_size=20), st.data())
def test_elements_to_field_checks_the_modulus(xs: list[int], data: st.DataObject) -> None:
    """``to_field`` gives the field vector back, and names the first value >= p."""
    assert Elements(xs).to_field(Field31) == Field31(xs)
    i = data.draw(st.integers(0, len(xs) - 1))
    bad = data.draw(st.integers(Field31.MODULUS, (1 << 64) - 1))
    ys = [*xs[:i], bad, *xs[i + 1 :]]
    with pytest.raises(EncodingError, match=rf"element {i} must be in"):
        Elements(np.array(ys, dtype=np.uint64)).to_field(Field31)


@pytest.mark.parametrize(
    "items",
    [[], "12", ["01"], ["1", 2], [str(1 << 64)], ["1", "-1"], ["9" * 21]],
)
def test_elements_from_json_refuses_non_canonical_lists(items: Any) -> None:
    with pytest.raises(EncodingError):
        Elements.from_json(items)


# ---------------------------------------------------------------- the binary form
# Spec: spec/09-protocol.md#binary-form

FIELD_VALUES = st.integers(0, Field31.MODULUS - 1).map(str)


@given(messages(values=FIELD_VALUES))
def test_binary_form_round_trips_and_its_size_is_known(m: Message) -> None:
    """``decode_wire(encode_wire(m)) == m``; ``wire_size`` is the frame's length, and
    the payload is exactly ``ENCODED_SIZE`` bytes per value."""
    frame = encode_wire(m, Field31)
    assert decode_wire(frame, Field31) == m
    assert wire_size(m, Field31) == len(frame)
    header = json.loads(frame[4 : 4 + int.from_bytes(frame[:4], "little")])
    assert "values" not in header
    values = getattr(m, "values", None)
    count = 0 if values is None else len(values)
    assert (
        len(frame) == 4 + len(json.dumps(header, sort_keys=True, separators=(",", ":"))) + 4 * count
    )
    assert decode_wire(encode_wire(m, Field61), Field61) == m


def _share_frame() -> bytes:
    m = parse(
        json.dumps({"version": 1, "kind": "share", "session": "ab" * 32, "round": 3, "sender": 1,
                    "recipient": 2, "role": "aggregator", "stage": 0, "values": ["5", "7"]})
    )  # fmt: skip
    return encode_wire(m, Field31)


def _with_header(frame: bytes, obj: dict[str, Any], payload: bytes | None = None) -> bytes:
    n = int.from_bytes(frame[:4], "little")
    body = frame[4 + n :] if payload is None else payload
    h = json.dumps(obj).encode()
    return len(h).to_bytes(4, "little") + h + body


def _header(frame: bytes) -> dict[str, Any]:
    n = int.from_bytes(frame[:4], "little")
    out: dict[str, Any] = json.loads(frame[4 : 4 + n])
    return out


BAD_FRAMES: list[tuple[str, Callable[[bytes], bytes]]] = [
    ("message", lambda f: f[:3]),
    ("message", lambda f: (10**6).to_bytes(4, "little") + f[4:]),
    ("values", lambda f: _with_header(f, {**_header(f), "values": ["1"]})),
    ("values", lambda f: f[:-1]),  # half an element
    ("values", lambda f: f[:-4] + (Field31.MODULUS).to_bytes(4, "little")),
    ("values", lambda f: _with_header(f, _header(f), b"")),
    ("values", lambda f: _with_header(f, {**_header(f), "kind": "report", "holds": []})),
    ("stage", lambda f: _with_header(f, {**_header(f), "stage": -1})),
    (
        "message",
        lambda f: _with_header(f, {**_header(f)}).replace(b'"round": 3', b'"round": 3, "round": 3'),
    ),
]


@pytest.mark.parametrize(("where", "mutate"), BAD_FRAMES)
def test_binary_form_refuses_malformed_frames(where: str, mutate: Callable[[bytes], bytes]) -> None:
    """Every malformed frame raises ``InvalidMessage`` naming where it is wrong."""
    frame = _share_frame()
    assert decode_wire(frame, Field31).kind == "share"
    with pytest.raises(InvalidMessage) as info:
        decode_wire(mutate(frame), Field31)
    assert where in str(info.value), str(info.value)
