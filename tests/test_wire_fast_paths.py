"""The fast paths of the byte encodings agree with the general code, bit for bit.

Spec: spec/02-field.md#serialization, spec/09-protocol.md#binary-form

Oracles: the general encode/decode of :class:`~protocol.field.Field` and the
former :func:`~protocol.messages.decode_wire` (re-dump the parsed header and
:func:`~protocol.messages.parse` it), both copied here verbatim from before
the fast paths. On every input, valid or not, the fast path gives the same
result, or an error of the same class with the same message.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from typing import Any

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from protocol.errors import EncodingError, InvalidMessage
from protocol.field import Field, Field31, Field61
from protocol.messages import Elements, Message, decode_wire, encode_wire, parse
from tests.strategies import edge_values, messages


class FieldP251(Field):
    """ENCODED_SIZE 1: the general path."""

    __slots__ = ()
    MODULUS = 251


class FieldP65521(Field):
    """ENCODED_SIZE 2: the general path."""

    __slots__ = ()
    MODULUS = 65521


class FieldP16777213(Field):
    """ENCODED_SIZE 3: the general path."""

    __slots__ = ()
    MODULUS = 16777213


class Wide4P65521(Field):
    """ENCODED_SIZE 4 over a 16-bit prime: the fast path, with unused high bits."""

    __slots__ = ()
    MODULUS = 65521
    ENCODED_SIZE = 4


class Wide5(Field):
    """ENCODED_SIZE 5: the general path."""

    __slots__ = ()
    MODULUS = 4294967291
    ENCODED_SIZE = 5


class Wide7(Field):
    """ENCODED_SIZE 7: the general path."""

    __slots__ = ()
    MODULUS = 4294967291
    ENCODED_SIZE = 7


class Wide8(Field):
    """ENCODED_SIZE 8 over a 32-bit prime: the fast path, with unused high bits."""

    __slots__ = ()
    MODULUS = 4294967291
    ENCODED_SIZE = 8


CODEC_FIELDS: tuple[type[Field], ...] = (
    Field31,
    Field61,
    FieldP251,
    FieldP65521,
    FieldP16777213,
    Wide4P65521,
    Wide5,
    Wide7,
    Wide8,
)


def reference_encode(x: Field) -> bytes:
    """The general encoding, as it was: the low ENCODED_SIZE bytes of each uint64."""
    raw = x.values.astype("<u8").reshape(-1).view(np.uint8).reshape(-1, 8)
    return raw[:, : x.ENCODED_SIZE].tobytes()


def reference_decode(cls: type[Field], data: bytes) -> Field:
    """The general decoding, as it was: pad each group to 8 bytes, then check every value."""
    w = cls.ENCODED_SIZE
    if len(data) % w:
        raise EncodingError(
            f"{cls.__name__} encoding must be a multiple of {w} bytes; got {len(data)}"
        )
    raw = np.frombuffer(data, dtype=np.uint8).reshape(-1, w)
    padded = np.zeros((raw.shape[0], 8), dtype=np.uint8)
    padded[:, :w] = raw
    return cls(padded.view("<u8").reshape(-1).astype(np.uint64))


def _outcome(f: Callable[[], Any]) -> tuple[str, Any]:
    """``("ok", result)`` or ``(error class name, message)``, for comparing two paths."""
    try:
        return "ok", f()
    except (EncodingError, InvalidMessage) as exc:
        return type(exc).__name__, str(exc)


def _element_ints(field: type[Field]) -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from(edge_values(field)), st.integers(0, field.MODULUS - 1))


@st.composite
def field_and_vector(draw: st.DrawFn) -> tuple[type[Field], list[int]]:
    field = draw(st.sampled_from(CODEC_FIELDS))
    return field, draw(st.lists(_element_ints(field), max_size=40))


@given(field_and_vector())
def test_encode_agrees_with_the_general_path(fv: tuple[type[Field], list[int]]) -> None:
    """Every vector (0 and p − 1 included) encodes to the general path's bytes."""
    field, ints = fv
    x = field(ints)
    assert x.encode() == reference_encode(x)
    assert x.encode() == b"".join(v.to_bytes(field.ENCODED_SIZE, "little") for v in ints)
    if len(ints) % 2 == 0 and ints:
        m = x.reshape(2, len(ints) // 2)
        assert m.encode() == reference_encode(m)


@st.composite
def field_and_bytes(draw: st.DrawFn) -> tuple[type[Field], bytes]:
    """A field and bytes to decode: random, or groups near 0, p and 2^(8w), maybe one short."""
    field = draw(st.sampled_from(CODEC_FIELDS))
    w, p = field.ENCODED_SIZE, field.MODULUS
    top = (1 << (8 * w)) - 1
    near = st.sampled_from(sorted({0, 1, p - 2, p - 1, p, p + 1, min(2 * p, top), top}))
    group = st.one_of(near, st.integers(0, top), _element_ints(field))
    built = st.lists(group, max_size=20).map(
        lambda vs: b"".join(v.to_bytes(w, "little") for v in vs)
    )
    data = draw(st.one_of(st.binary(max_size=60), built))
    trim = draw(st.sampled_from([0, 0, 0, 1, w - 1]))
    return field, data[: len(data) - trim] if trim else data


@given(field_and_bytes())
def test_decode_agrees_with_the_general_path(fb: tuple[type[Field], bytes]) -> None:
    """Same elements, or the same EncodingError naming the same first bad element."""
    field, data = fb
    got = _outcome(lambda: field.decode(data))
    want = _outcome(lambda: reference_decode(field, data))
    assert got[0] == want[0], (got, want)
    if got[0] == "ok":
        assert got[1].values.dtype == want[1].values.dtype == np.uint64
        assert got[1].shape == want[1].shape
        assert got[1] == want[1]
        assert not got[1].values.flags.writeable
    else:
        assert got[1] == want[1]


def test_decode_names_the_first_out_of_range_element() -> None:
    """Spelled out: p itself, at index 1, is refused as before."""
    data = (5).to_bytes(4, "little") + Field31.MODULUS.to_bytes(4, "little") + b"\xff" * 4
    msg = f"Field31 element 1 must be in [0, {Field31.MODULUS}); got {Field31.MODULUS}"
    assert _outcome(lambda: Field31.decode(data)) == ("EncodingError", msg)
    assert _outcome(lambda: reference_decode(Field31, data)) == ("EncodingError", msg)
    assert Field31.decode(b"").shape == (0,)


# ---------------------------------------------------------------- decode_wire

_LENGTH = struct.Struct("<I")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    dups = sorted({k for k in keys if keys.count(k) > 1})
    if dups:
        raise ValueError(f"duplicate keys {dups}")
    return dict(pairs)


def reference_decode_wire(data: bytes, field: type[Field]) -> Message:
    """decode_wire as it was: re-dump the parsed header and parse it from scratch."""
    if len(data) < _LENGTH.size:
        raise InvalidMessage("invalid message at message: a frame starts with a 4-byte length")
    (n,) = _LENGTH.unpack_from(data)
    if _LENGTH.size + n > len(data):
        raise InvalidMessage(f"invalid message at message: header length {n} overruns the frame")
    header, payload = data[_LENGTH.size : _LENGTH.size + n], data[_LENGTH.size + n :]
    try:
        obj = json.loads(header, object_pairs_hook=_unique_keys)
    except (ValueError, RecursionError) as exc:
        raise InvalidMessage(f"invalid message at message: {exc}") from None
    if not isinstance(obj, dict):
        raise InvalidMessage("invalid message at message: the header must be a JSON object")
    carries = obj.get("kind") in ("share", "partial_sum")
    if "values" in obj or (payload and not carries):
        raise InvalidMessage("invalid message at values: values travel in the payload only")
    try:
        values = Elements.of(field.decode(payload)) if carries else None
    except EncodingError as exc:
        raise InvalidMessage(f"invalid message at values: {exc}") from None
    if values is not None and not len(values):
        raise InvalidMessage("invalid message at values: values must have at least 1 item")
    message = parse(json.dumps({**obj, "values": ["0"]} if carries else obj))
    return message if values is None else message.model_copy(update={"values": values})


FIELD_VALUES = st.integers(0, Field31.MODULUS - 1).map(str)
_KEYS = st.sampled_from(
    ["version", "kind", "session", "round", "sender", "recipient", "role", "stage", "holds",
     "contributors", "aggregators", "final", "reason", "values", "extra"]
)  # fmt: skip
_JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(1 << 64), 1 << 64),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.sampled_from(
        ["share", "partial_sum", "report", "decision", "abort", "aggregator", "ab" * 32]
    ),
)
_JSON_VALUES = st.recursive(_JSON_SCALARS, lambda c: st.lists(c, max_size=4), max_leaves=6)


def _frame(header: bytes, payload: bytes) -> bytes:
    return _LENGTH.pack(len(header)) + header + payload


@st.composite
def frames(draw: st.DrawFn) -> bytes:
    """Frames of valid messages, and of headers edited, re-spaced, re-encoded or spliced."""
    m = draw(messages(values=FIELD_VALUES))
    frame = encode_wire(m, Field31)
    n = _LENGTH.unpack_from(frame)[0]
    obj: dict[str, Any] = json.loads(frame[4 : 4 + n])
    payload = frame[4 + n :]
    edit = draw(st.sampled_from(["none", "set", "drop", "payload", "bytes", "raw"]))
    if edit == "set":
        obj[draw(_KEYS)] = draw(_JSON_VALUES)
    elif edit == "drop" and obj:
        obj.pop(draw(st.sampled_from(sorted(obj))))
    elif edit == "payload":
        payload = draw(st.one_of(st.binary(max_size=13), st.just(b"")))
    if edit == "raw":
        header = draw(st.sampled_from([b"", b"[]", b"{}", b" {} ", b"1", b'{"kind":"share"} \n']))
    else:
        text = json.dumps(
            obj,
            ensure_ascii=draw(st.booleans()),
            separators=draw(st.sampled_from([(",", ":"), (", ", ": ")])),
        )
        if draw(st.booleans()):
            text = "\n " + text + " \t\r\n"
        header = text.encode(draw(st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "utf-16"])))
    out = _frame(header, payload)
    if edit == "bytes" and out:
        i = draw(st.integers(0, len(out) - 1))
        out = out[:i] + bytes([draw(st.integers(0, 255))]) + out[i + 1 :]
    return out


@given(frames())
def test_decode_wire_agrees_with_the_former_decoder(frame: bytes) -> None:
    """Same message, or InvalidMessage with the same text, on valid and malformed frames."""
    got = _outcome(lambda: decode_wire(frame, Field31))
    want = _outcome(lambda: reference_decode_wire(frame, Field31))
    assert got == want


def test_decode_wire_agrees_on_a_utf16_header_and_a_spaced_one() -> None:
    """The stdlib reads UTF-16 headers, so the former decoder did; so does the fast one."""
    share = parse(
        json.dumps({"version": 1, "kind": "share", "session": "ab" * 32, "round": 3, "sender": 1,
                    "recipient": 2, "role": "aggregator", "stage": 0, "values": ["5", "7"]})
    )  # fmt: skip
    frame = encode_wire(share, Field31)
    n = _LENGTH.unpack_from(frame)[0]
    obj = json.loads(frame[4 : 4 + n])
    for header in (json.dumps(obj).encode("utf-16"), b" " + json.dumps(obj, indent=1).encode()):
        f = _frame(header, frame[4 + n :])
        assert decode_wire(f, Field31) == reference_decode_wire(f, Field31) == share


def test_decode_wire_differs_only_in_where_pydantic_finds_bad_json() -> None:
    """Text the stdlib reads but pydantic's parser refuses (a lone surrogate escape) is
    refused by both; the fast decoder's column counts in the header as sent, the former
    one's in the header as re-dumped."""
    frame = _frame(b'{"kind":  "abort", "role": "\\ud800"}', b"")
    got = _outcome(lambda: decode_wire(frame, Field31))
    want = _outcome(lambda: reference_decode_wire(frame, Field31))
    prefix = "invalid message at message: Invalid JSON: unexpected end of hex escape at line 1"
    assert got == ("InvalidMessage", f"{prefix} column 35")
    assert want == ("InvalidMessage", f"{prefix} column 34")


@given(field_and_vector())
def test_elements_encode_is_the_fields_encoding(fv: tuple[type[Field], list[int]]) -> None:
    """Elements written at their own width give the field's bytes (or its error)."""
    field, ints = fv
    elements = Elements(np.array(ints, dtype=np.uint64))
    assert elements.encode(field) == field(ints).encode()
    for other in CODEC_FIELDS:
        got = _outcome(lambda other=other: elements.encode(other))  # type: ignore[misc]
        want = _outcome(lambda other=other: elements.to_field(other).encode())  # type: ignore[misc]
        assert got == want


@given(field_and_bytes())
def test_elements_decode_agrees_with_the_field(fb: tuple[type[Field], bytes]) -> None:
    """Same values held at the same width, or the same EncodingError, as Elements.of(decode)."""
    field, data = fb
    got = _outcome(lambda: Elements.decode(data, field))
    want = _outcome(lambda: Elements.of(field.decode(data)))
    assert got[0] == want[0], (got, want)
    if got[0] == "ok":
        assert got[1] == want[1]
        assert got[1].array.dtype == want[1].array.dtype
        assert not got[1].array.flags.writeable
        # From bytes that can change later, the values are a copy of their own.
        mutable = bytearray(data)
        kept = Elements.decode(mutable, field)
        mutable[:] = bytes(len(mutable))
        assert kept == want[1]
    else:
        assert got[1] == want[1]
