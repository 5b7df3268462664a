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
from typing import Annotated, Any, ClassVar, Literal, TypeAlias

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from protocol.errors import InvalidMessage
from protocol.params import VERSION

NodeId = Annotated[StrictInt, Field(ge=1, lt=1 << 32)]
Stage = Annotated[StrictInt, Field(ge=0, lt=1 << 16)]
#: A field element: canonical decimal (no sign, no leading zero), at most 20 digits;
#: the machines check that it is below the round's modulus.
Element = Annotated[str, Field(pattern=r"^(0|[1-9][0-9]{0,19})$")]
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
    values: tuple[Element, ...] = Field(min_length=1)


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

    ROLES: ClassVar[tuple[str, ...]] = ("contributor", "aggregator")
    kind: Literal["decision"] = "decision"
    stage: Stage
    contributors: tuple[NodeId, ...] = Field(min_length=1)
    aggregators: tuple[NodeId, ...] = Field(min_length=1)
    final: StrictBool

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
    values: tuple[Element, ...] = Field(min_length=1)

    @field_validator("contributors", "aggregators")
    @classmethod
    def _sorted(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        return _increasing(v, "contributors and aggregators")


class Abort(_Message):
    """The coordinator ends the round without a release. Spec: spec/09-protocol.md#abort"""

    ROLES: ClassVar[tuple[str, ...]] = ("contributor", "aggregator", "receiver")
    kind: Literal["abort"] = "abort"
    reason: Reason


Message: TypeAlias = Share | Report | Decision | PartialSum | Abort
MESSAGE_TYPES: tuple[type[_Message], ...] = (Share, Report, Decision, PartialSum, Abort)

_ADAPTER: TypeAdapter[Message] = TypeAdapter(Annotated[Message, Field(discriminator="kind")])


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    dups = sorted({k for k in keys if keys.count(k) > 1})
    if dups:
        raise ValueError(f"duplicate keys {dups}")
    return dict(pairs)


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
