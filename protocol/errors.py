"""The typed error hierarchy of SDL.

Spec: spec/01-conventions.md#errors

Every error SDL raises on purpose is one of these. Each message says what
was found and what was expected, so that a caller can act on it without
reading the code. Test vectors name the expected error by class name
(``"error": "ThresholdNotMet"``), so these names are part of the spec.

::

    SdlError
    ├── ParameterError (ValueError)       the caller asked for something invalid
    │   └── FieldMismatchError (TypeError) elements of two different fields met
    ├── EncodingError (ValueError)         a value or encoding is out of range or non-canonical
    └── ProtocolError
        ├── LocalProtocolError             we were asked to do something the protocol forbids
        └── RemoteProtocolError            what a peer sent breaks the protocol
            ├── InvalidMessage
            ├── InconsistentShares
            ├── ThresholdNotMet
            └── ChannelError               a frame does not open or verify (spec 14)
"""

from __future__ import annotations


class SdlError(Exception):
    """Root of every error SDL raises on purpose."""


class ParameterError(SdlError, ValueError):
    """A parameter or argument is invalid (bad threshold, non-prime modulus, …)."""


class FieldMismatchError(ParameterError, TypeError):
    """Elements of two different fields were combined."""


class EncodingError(SdlError, ValueError):
    """A value cannot be encoded, or an encoding is out of range or non-canonical."""


class ProtocolError(SdlError):
    """The protocol's rules were broken."""


class LocalProtocolError(ProtocolError):
    """We were asked to do something the protocol forbids (our own fault)."""


class RemoteProtocolError(ProtocolError):
    """Data from a peer breaks the protocol (the peer's fault, or the network's)."""


class InvalidMessage(RemoteProtocolError):
    """A message is malformed, misaddressed, replayed or out of round."""


class InconsistentShares(RemoteProtocolError):
    """Shares do not lie on one polynomial of the agreed degree, and cannot be corrected."""


class ThresholdNotMet(RemoteProtocolError):
    """Too few shares (or too little redundancy) to reconstruct what was asked."""


class ChannelError(RemoteProtocolError):
    """A sealed frame fails to open or verify. Spec: spec/14-channels.md#opening

    ``fault`` names what failed, one of :data:`CHANNEL_FAULTS`: ``truncated``,
    ``header``, ``suite``, ``roster``, ``signature``, ``tag``, ``plaintext``,
    ``statement``, ``session-key``, ``key``. The message says which field and why.
    """

    def __init__(self, fault: str, detail: str) -> None:
        super().__init__(f"frame rejected ({fault}): {detail}")
        self.fault = fault
        self.detail = detail

    def __reduce__(self) -> tuple[type[ChannelError], tuple[str, str]]:
        return (type(self), (self.fault, self.detail))


#: What a :class:`ChannelError` may name as its fault (spec/14-channels.md#opening).
CHANNEL_FAULTS: tuple[str, ...] = (
    "truncated",
    "header",
    "suite",
    "roster",
    "signature",
    "tag",
    "plaintext",
    "statement",
    "session-key",
    "key",
)


#: Every error a test vector may name, by class name. Spec: spec/01-conventions.md#errors
ERRORS_BY_NAME: dict[str, type[SdlError]] = {
    cls.__name__: cls
    for cls in (
        SdlError,
        ParameterError,
        FieldMismatchError,
        EncodingError,
        ProtocolError,
        LocalProtocolError,
        RemoteProtocolError,
        InvalidMessage,
        InconsistentShares,
        ThresholdNotMet,
        ChannelError,
    )
}
