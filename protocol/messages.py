"""The messages of the protocol, as frozen Pydantic models.

Spec: spec/09-protocol.md#messages

Every message carries the same header (version, session, round, sender,
recipient node and recipient role) and a ``kind`` that selects its body.
Field elements are canonical decimal strings, so that readers whose numbers
are IEEE doubles lose nothing; node ids, stages and counts are JSON
integers. A message that fails these rules is refused by :func:`parse` with
:class:`~protocol.errors.InvalidMessage`; rules that need the round's
parameters (the modulus, the lengths, who may send what) are checked by
the state machines (:mod:`protocol.machine`).
"""

from __future__ import annotations

import itertools
import json
import re
import struct
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Annotated, Any, ClassVar, Literal, Self, TypeAlias

import numpy as np
import numpy.typing as npt
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    StrictBool,
    StrictInt,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from protocol.errors import EncodingError, InvalidMessage
from protocol.field import Field as FieldElements
from protocol.params import VERSION

NodeId = Annotated[StrictInt, Field(ge=1, lt=1 << 32)]
Stage = Annotated[StrictInt, Field(ge=0, lt=1 << 16)]
#: A field element in JSON: canonical decimal (no sign, no leading zero), at most 20
#: digits and below 2^64; the machines check that it is below the round's modulus.
ELEMENT_PATTERN = r"^(0|[1-9][0-9]{0,19})$"
_ELEMENT = re.compile(r"0|[1-9][0-9]{0,19}")
_SHORT_ELEMENT_LIST = re.compile(r"(?:0|[1-9][0-9]{0,18})(?:,(?:0|[1-9][0-9]{0,18}))*")
_U32_MAX = np.uint64(0xFFFFFFFF)


class Elements:
    """The field elements a message carries: immutable, compact, field-agnostic.

    Spec: spec/09-protocol.md#values

    In memory a vector of integers in ``[0, 2^64)``, held as uint32 when every
    value fits (so a Field31 share costs 4 bytes per element) and as uint64
    otherwise. In JSON a list of canonical decimal strings, as before: the
    text form of every message is unchanged. Which field the values belong
    to is the round's business: :meth:`to_field` checks them against it.
    """

    __slots__ = ("_a",)

    def __init__(self, values: npt.ArrayLike) -> None:
        """Values from a 1-D array (or sequence) of integers in ``[0, 2^64)``.

        Raises:
            EncodingError: a value is not an integer in range, or the shape is not 1-D.
        """
        arr = np.asarray(values)
        if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
            raise EncodingError(
                f"elements must be a 1-D vector of integers; got {arr.dtype} {arr.shape}"
            )
        if arr.dtype.kind == "i" and arr.size and int(arr.min()) < 0:
            raise EncodingError(f"elements must be >= 0; got {int(arr.min())}")
        self._a = _compact(arr.astype(np.uint64, copy=False))

    @classmethod
    def of(cls, field: FieldElements) -> Self:
        """The elements of a 1-D field vector."""
        if len(field.shape) != 1:
            raise EncodingError(f"elements must be a 1-D vector; got shape {field.shape}")
        out = object.__new__(cls)
        out._a = _compact(field.values)
        return out

    @property
    def array(self) -> npt.NDArray[np.unsignedinteger[Any]]:
        """The values (read-only; uint32 or uint64)."""
        return self._a

    def check(self, field: type[FieldElements]) -> Self:
        """``self``, once every value is known to be below ``field``'s modulus.

        Raises:
            EncodingError: a value is not below the field's modulus (the error names it).
        """
        a = self._a
        if a.size and int(a.max()) >= field.MODULUS:
            i = int(np.flatnonzero(a >= field.MODULUS)[0])
            raise EncodingError(
                f"{field.__name__} element {i} must be in [0, {field.MODULUS}); got {int(a[i])}"
            )
        return self

    def to_field(self, field: type[FieldElements]) -> FieldElements:
        """The values as elements of ``field``.

        Raises:
            EncodingError: a value is not below the field's modulus (the error names it).
        """
        return field._wrap(self.check(field)._a.astype(np.uint64))

    def encode(self, field: type[FieldElements]) -> bytes:
        """``self.to_field(field).encode()``: the values in the field's byte encoding.

        Spec: spec/02-field.md#serialization. When the values are held at the
        field's own width (uint32 for a 4-byte field, uint64 for an 8-byte
        one), they are written as they are, without a copy at another width.

        Raises:
            EncodingError: a value is not below the field's modulus (the error names it).
        """
        return bytes(self._buffer(field))

    def _buffer(self, field: type[FieldElements]) -> bytes | memoryview:
        """:meth:`encode`'s bytes, as a view of the values when they need no conversion."""
        a = self.check(field)._a
        if a.dtype.itemsize == field.ENCODED_SIZE:
            words = a.astype(f"<u{a.dtype.itemsize}", copy=False)
            return words.data.cast("B")
        return self.to_field(field).encode()

    @classmethod
    def decode(cls, data: bytes | memoryview, field: type[FieldElements]) -> Self:
        """``Elements.of(field.decode(data))``, read at 4 bytes a value for a 4-byte field.

        Raises:
            EncodingError: as :meth:`Field.decode <protocol.field.Field.decode>`.
        """
        if field.ENCODED_SIZE != 4 or len(data) % 4:
            return cls.of(field.decode(bytes(data)))
        words: npt.NDArray[np.unsignedinteger[Any]] = np.frombuffer(data, dtype="<u4")
        field._check_below_modulus(words)
        if not (np.little_endian and memoryview(data).readonly):
            # Bytes that may change later (or a big-endian machine): the message
            # keeps a copy of its own. Immutable bytes are read where they are.
            words = words.astype(np.uint32)
        words.setflags(write=False)
        out = object.__new__(cls)
        out._a = words
        return out

    def to_json(self) -> list[str]:
        """Canonical decimal strings, one per value."""
        return [str(v) for v in self._a.tolist()]

    @classmethod
    def from_json(cls, items: object) -> Self:
        """Inverse of :meth:`to_json`: a list of canonical decimal strings below 2^64.

        Raises:
            EncodingError: the first bad item, by index, and why.
        """
        if isinstance(items, str | bytes) or not isinstance(items, Sequence):
            raise EncodingError(f"values must be a list of decimal strings; got {items!r:.60}")
        if not items:
            raise EncodingError("values must have at least 1 item")
        # Fast path: one regular expression over the joined text; at most 19
        # digits, so every value is below 10^19 < 2^64.
        if all(type(v) is str for v in items) and _SHORT_ELEMENT_LIST.fullmatch(",".join(items)):
            return cls(np.array(items).astype(np.uint64))
        for i, v in enumerate(items):  # the slow path names the first bad item
            if type(v) is not str or not _ELEMENT.fullmatch(v):
                raise EncodingError(
                    f"values[{i}] must be a canonical decimal string; got {v!r:.60}"
                )
            if int(v) >= 1 << 64:
                raise EncodingError(f"values[{i}] must be below 2^64; got {v}")
        return cls(np.array([int(v) for v in items], dtype=np.uint64))

    def __len__(self) -> int:
        return int(self._a.shape[0])

    def __iter__(self) -> Iterator[int]:
        return iter(self._a.tolist())

    def __getitem__(self, i: int) -> int:
        return int(self._a[i])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Elements):
            return NotImplemented
        return self._a.shape == other._a.shape and bool(np.array_equal(self._a, other._a))

    def __hash__(self) -> int:
        return hash((len(self), self._a.astype(np.uint64).tobytes()))

    def __repr__(self) -> str:
        head = ", ".join(str(v) for v in self._a[:4].tolist())
        more = ", …" if len(self) > 4 else ""
        return f"Elements([{head}{more}], n={len(self)})"


def _compact(a: npt.NDArray[np.uint64]) -> npt.NDArray[np.unsignedinteger[Any]]:
    small = not a.size or bool(a.max() <= _U32_MAX)
    out: npt.NDArray[np.unsignedinteger[Any]] = a.astype(np.uint32 if small else np.uint64)
    out.setflags(write=False)  # astype copies: nobody else can write it
    return out


def _validate_elements(v: object) -> Elements:
    if isinstance(v, Elements):
        if not len(v):
            raise ValueError("values must have at least 1 item")
        return v
    try:
        return Elements.from_json(v)
    except EncodingError as exc:
        raise ValueError(str(exc)) from None


#: The ``values`` of a share or partial sum (spec/09-protocol.md#values).
Values = Annotated[
    Elements,
    PlainValidator(_validate_elements),
    PlainSerializer(lambda v: v.to_json(), return_type=list[str], when_used="json"),
    WithJsonSchema({
        "items": {"pattern": ELEMENT_PATTERN, "type": "string"},
        "minItems": 1,
        "title": "Values",
        "type": "array",
    }),
]  # fmt: skip
Hex32 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Role = Literal["contributor", "aggregator", "coordinator", "receiver"]

#: Why a role aborted (spec/09-protocol.md#abort-reasons).
Reason = Literal[
    "too-few-aggregators",
    "too-many-dropouts",
    "too-few-contributors",
    "too-few-partial-sums",
    "inconsistent-partial-sums",
    "no-decision",
    "coordinator-equivocation",
    "too-few-echoes",
]
REASONS: tuple[str, ...] = Reason.__args__  # type: ignore[attr-defined]


def _increasing(ids: tuple[int, ...], name: str) -> tuple[int, ...]:
    if any(a >= b for a, b in itertools.pairwise(ids)):
        raise ValueError(f"{name} must be strictly increasing node ids; got {list(ids)}")
    return ids


class _Message(BaseModel):
    """The header every message carries. Spec: spec/09-protocol.md#header"""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        strict=True,
        json_schema_serialization_defaults_required=True,
    )

    version: Literal[1] = 1  # VERSION
    session: Hex32
    round: Annotated[StrictInt, Field(ge=0, lt=1 << 53)]
    sender: NodeId
    recipient: NodeId
    role: Role

    #: The roles this kind may be addressed to.
    ROLES: ClassVar[tuple[str, ...]] = ()

    @field_validator("version", mode="before")
    @classmethod
    def _version_is_an_int(cls, v: object) -> object:
        # Literal[1] alone accepts JSON true (True == 1): bool where int.
        if type(v) is not int:
            raise ValueError(f"version must be the integer {VERSION}; got {v!r}")
        return v

    @model_validator(mode="after")
    def _addressed_to_a_role_that_takes_it(self) -> _Message:
        if self.role not in type(self).ROLES:
            raise ValueError(
                f"a {type(self).__name__} must be addressed to role "
                f"{' or '.join(type(self).ROLES)}; got role {self.role!r}"
            )
        return self


class Share(_Message):
    """A contributor's share for one stage: 0 is its noisy update, >= 1 a top-up.

    Spec: spec/09-protocol.md#share
    """

    ROLES: ClassVar[tuple[str, ...]] = ("aggregator",)
    kind: Literal["share"] = "share"
    stage: Stage
    values: Values


class Report(_Message):
    """An aggregator's report of the contributors whose every stage it holds.

    Spec: spec/09-protocol.md#report
    """

    ROLES: ClassVar[tuple[str, ...]] = ("coordinator",)
    kind: Literal["report"] = "report"
    stage: Stage
    holds: tuple[NodeId, ...]

    @field_validator("holds")
    @classmethod
    def _sorted(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        return _increasing(v, "holds")


class Decision(_Message):
    """The coordinator's decision for a stage: the contributor set and the aggregators.

    Spec: spec/09-protocol.md#decision

    ``final`` means: release the sum over ``contributors``. Otherwise every
    member of ``contributors`` owes a top-up at stage ``stage + 1``.
    """

    ROLES: ClassVar[tuple[str, ...]] = ("coordinator", "contributor", "aggregator")
    kind: Literal["decision"] = "decision"
    stage: Stage
    contributors: tuple[NodeId, ...] = Field(min_length=1)
    aggregators: tuple[NodeId, ...] = Field(min_length=1)
    final: StrictBool

    @field_validator("contributors", "aggregators")
    @classmethod
    def _sorted(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        return _increasing(v, "contributors and aggregators")


class Echo(_Message):
    """An aggregator's echo of the final decision it answers, to the decision's aggregators.

    Spec: spec/09-protocol.md#echo

    Sent only in rounds with ``max_byzantine >= 1``. On a sealed channel it
    carries the coordinator's statement signature of that decision
    (spec/14-channels.md#forwarded-signatures), so two echoes of different
    decisions prove that the coordinator equivocated.
    """

    ROLES: ClassVar[tuple[str, ...]] = ("aggregator",)
    kind: Literal["echo"] = "echo"
    stage: Stage
    contributors: tuple[NodeId, ...] = Field(min_length=1)
    aggregators: tuple[NodeId, ...] = Field(min_length=1)

    @field_validator("contributors", "aggregators")
    @classmethod
    def _sorted(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        return _increasing(v, "contributors and aggregators")


class PartialSum(_Message):
    """An aggregator's share of the released sum over ``contributors``.

    Spec: spec/09-protocol.md#partial-sum
    """

    ROLES: ClassVar[tuple[str, ...]] = ("receiver",)
    kind: Literal["partial_sum"] = "partial_sum"
    stage: Stage
    contributors: tuple[NodeId, ...] = Field(min_length=1)
    aggregators: tuple[NodeId, ...] = Field(min_length=1)
    values: Values

    @field_validator("contributors", "aggregators")
    @classmethod
    def _sorted(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        return _increasing(v, "contributors and aggregators")


class Abort(_Message):
    """The coordinator ends the round without a release. Spec: spec/09-protocol.md#abort"""

    ROLES: ClassVar[tuple[str, ...]] = ("coordinator", "contributor", "aggregator", "receiver")
    kind: Literal["abort"] = "abort"
    reason: Reason


Message: TypeAlias = Share | Report | Decision | Echo | PartialSum | Abort
MESSAGE_TYPES: tuple[type[_Message], ...] = (Share, Report, Decision, Echo, PartialSum, Abort)

_ADAPTER: TypeAdapter[Message] = TypeAdapter(Annotated[Message, Field(discriminator="kind")])


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) == len(pairs):  # the common case: one pass, no counting
        return out
    counts = Counter(k for k, _ in pairs)
    raise ValueError(f"duplicate keys {sorted(k for k, c in counts.items() if c > 1)}")


def parse(data: str | bytes) -> Message:
    """Parse one message from its JSON text.

    Spec: spec/09-protocol.md#encoding

    Raises:
        InvalidMessage: the text is not JSON, or breaks a rule of the
            message's model; the message says which field and why.
    """
    try:
        # Duplicate keys are ambiguous (this parser keeps the last, others the
        # first): refuse them before validating.
        json.loads(data, object_pairs_hook=_unique_keys)
    except (ValueError, RecursionError) as exc:
        raise InvalidMessage(f"invalid message at message: {exc}") from None
    return _validate(data)


def _validate(data: str | bytes) -> Message:
    """The model's rules, and the version-present rule, for JSON text free of duplicate keys.

    Raises:
        InvalidMessage: as :func:`parse`.
    """
    try:
        message = _ADAPTER.validate_json(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "message"
        raise InvalidMessage(f"invalid message at {where}: {first['msg']}") from None
    if "version" not in message.model_fields_set:
        # Python callers may omit it (it defaults to VERSION); the wire may not.
        raise InvalidMessage(f"invalid message at {message.kind}.version: Field required")
    return message


def from_obj(obj: Any) -> Message:
    """Parse one message from a decoded JSON value (as :func:`parse`)."""
    return parse(json.dumps(obj))


def dump(message: Message) -> str:
    """The canonical JSON text of a message: sorted keys, no spaces.

    Spec: spec/09-protocol.md#encoding
    """
    return json.dumps(message.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))


# ---------------------------------------------------------------------- binary form
# Spec: spec/09-protocol.md#binary-form

_LENGTH = struct.Struct("<I")


def _header_text(message: Message) -> bytes:
    obj = message.model_dump(mode="json", exclude={"values"})
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def encode_wire(message: Message, field: type[FieldElements]) -> bytes:
    """The binary form: ``len(H)`` (4 bytes, little-endian) ``|| H || payload``.

    Spec: spec/09-protocol.md#binary-form

    ``H`` is the canonical JSON of the message without ``values``; the
    payload is the values in the round's field encoding, ``ENCODED_SIZE``
    little-endian bytes each (spec/02-field.md#serialization).

    Raises:
        EncodingError: a value is not an element of ``field``.
    """
    header = _header_text(message)
    values = getattr(message, "values", None)
    if not isinstance(values, Elements):
        return _LENGTH.pack(len(header)) + header
    # One copy of the values: straight from the array into the binary form.
    return b"".join((_LENGTH.pack(len(header)), header, values._buffer(field)))


def decode_wire(data: bytes, field: type[FieldElements]) -> Message:
    """Inverse of :func:`encode_wire`, with every check :func:`parse` makes.

    Raises:
        InvalidMessage: the frame is malformed, the header breaks a rule of
            its model, or a value is not an element of ``field``.
    """
    if len(data) < _LENGTH.size:
        raise InvalidMessage("invalid message at message: a frame starts with a 4-byte length")
    (n,) = _LENGTH.unpack_from(data)
    if _LENGTH.size + n > len(data):
        raise InvalidMessage(f"invalid message at message: header length {n} overruns the frame")
    view = memoryview(data)  # the payload is read in place, not copied
    header, payload = bytes(view[_LENGTH.size : _LENGTH.size + n]), view[_LENGTH.size + n :]
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
        values = Elements.decode(payload, field) if carries else None
    except EncodingError as exc:
        raise InvalidMessage(f"invalid message at values: {exc}") from None
    if values is not None and not len(values):
        raise InvalidMessage("invalid message at values: values must have at least 1 item")
    # The header is validated as JSON text (strict JSON types: arrays for
    # tuples), with a placeholder for the values, which replace it after.
    message = _validate(_header_with_placeholder(header, obj, carries=carries))
    return message if values is None else message.model_copy(update={"values": values})


_PLACEHOLDER = b',"values":["0"]}'
_JSON_SPACE = b" \t\n\r"


def _header_with_placeholder(header: bytes, obj: dict[str, Any], *, carries: bool) -> bytes | str:
    """The header's JSON text, with ``"values": ["0"]`` added if the kind carries values.

    ``obj`` is ``header`` parsed (a JSON object with no duplicate keys and no
    ``values``). The stdlib parser also reads UTF-16/32 and a BOM, which
    pydantic does not: unless the header is ASCII without NUL (as every
    canonical header is), it is re-dumped from ``obj`` and the placeholder
    added there; the text then means the same. Otherwise the header's bytes
    are used as they are, the placeholder spliced in before the closing brace.
    """
    if not header.isascii() or b"\x00" in header:
        return json.dumps({**obj, "values": ["0"]} if carries else obj)
    if not carries:
        return header
    body = header.rstrip(_JSON_SPACE)
    assert body.endswith(b"}") and obj, "a parsed non-empty JSON object ends with }"
    return body[:-1] + _PLACEHOLDER


def wire_size(message: Message, field: type[FieldElements]) -> int:
    """``len(encode_wire(message, field))``, without building the payload."""
    values = getattr(message, "values", None)
    count = len(values) if isinstance(values, Elements) else 0
    return _LENGTH.size + len(_header_text(message)) + count * field.ENCODED_SIZE


def schemas() -> dict[str, dict[str, Any]]:
    """The JSON Schema of each message kind, and of the union, by file name.

    Spec: spec/09-protocol.md#encoding
    """
    # Serialization mode: every key a dumped message carries is required,
    # ``kind`` and ``version`` included.
    out = {
        f"message-{m.model_fields['kind'].default}.schema.json": m.model_json_schema(
            mode="serialization"
        )
        for m in MESSAGE_TYPES
    }
    out["message.schema.json"] = _ADAPTER.json_schema(mode="serialization")
    return out
