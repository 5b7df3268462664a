"""Deterministic randomness: SHAKE128 with a domain-separation tag per use.

Spec: spec/03-xof.md

Every random choice SDL makes is drawn from an :class:`Xof` stream, built
from a 32-byte seed and a :class:`Tag` naming the purpose (and party, round,
… as integers). Production callers take the seed from the operating
system's CSPRNG (``secrets.token_bytes``, in ``reference/``); tests, test
vectors and ``--seed`` runs pass a fixed seed. Nothing in ``protocol/`` has
any other source of randomness.

Every draw is specified bit for bit, so another implementation that follows
spec/03-xof.md reproduces the same stream, integers and field elements.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import NewType

import numpy as np
import numpy.typing as npt

from protocol.errors import ParameterError
from protocol.field import Field

#: A 32-byte seed. Spec: spec/03-xof.md#seeds
Seed = NewType("Seed", bytes)

SEED_SIZE = 32
#: Prefix of every XOF input: the protocol name and version.
XOF_CONTEXT = b"SDL-XOF-v1"

_MAX_TAG_INTS = 255
_MAX_PURPOSE = 255


def as_seed(data: bytes) -> Seed:
    """Check that ``data`` is a seed of ``SEED_SIZE`` bytes.

    Raises:
        ParameterError: on any other length or type.
    """
    if not isinstance(data, bytes) or len(data) != SEED_SIZE:
        got = f"{len(data)} bytes" if isinstance(data, bytes) else type(data).__name__
        raise ParameterError(f"seed must be exactly {SEED_SIZE} bytes; got {got}")
    return Seed(data)


@dataclass(frozen=True, slots=True)
class Tag:
    """A domain-separation tag: a purpose string and integer parameters.

    Spec: spec/03-xof.md#tags

    ``purpose`` is printable ASCII (for example ``"shamir.share"``) and
    ``params`` are integers in ``[0, 2^64)`` such as a party index or a
    round number. Two different tags always encode differently.
    """

    purpose: str
    params: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not (
            isinstance(self.purpose, str)
            and 0 < len(self.purpose) <= _MAX_PURPOSE
            and self.purpose.isascii()
            and self.purpose.isprintable()
        ):
            raise ParameterError(
                f"tag purpose must be 1..{_MAX_PURPOSE} printable ASCII characters; "
                f"got {self.purpose!r}"
            )
        if len(self.params) > _MAX_TAG_INTS:
            raise ParameterError(
                f"a tag carries at most {_MAX_TAG_INTS} integers; got {len(self.params)}"
            )
        for i, v in enumerate(self.params):
            if type(v) is not int or not 0 <= v < 1 << 64:
                raise ParameterError(f"tag parameter {i} must be an int in [0, 2^64); got {v!r}")

    def encode(self) -> bytes:
        """``u8(len(purpose)) || purpose || u8(len(params)) || u64le(v) for each v``."""
        out = bytearray([len(self.purpose)])
        out += self.purpose.encode("ascii")
        out.append(len(self.params))
        for v in self.params:
            out += v.to_bytes(8, "little")
        return bytes(out)


class Xof:
    """A SHAKE128 byte stream for one (seed, tag) pair.

    Spec: spec/03-xof.md#stream

    The stream is ``SHAKE128(XOF_CONTEXT || seed || tag.encode())``, read
    front to back; each draw consumes the bytes that follow the previous
    draw's.
    """

    __slots__ = ("_buf", "_h", "_pos")

    def __init__(self, seed: Seed, tag: Tag) -> None:
        as_seed(seed)
        self._h = hashlib.shake_128(XOF_CONTEXT + seed + tag.encode())
        self._buf = b""
        self._pos = 0

    def next_bytes(self, n: int) -> bytes:
        """The next ``n`` bytes of the stream."""
        return bytes(self._next_view(n))

    def _next_view(self, n: int) -> memoryview:
        """The next ``n`` bytes of the stream, as a view of the buffer (no copy)."""
        view = self._peek_view(n)
        self._pos += n
        return view

    def _peek_view(self, n: int) -> memoryview:
        """The next ``n`` bytes of the stream, without consuming them."""
        if type(n) is not int or n < 0:
            raise ParameterError(f"byte count must be an int >= 0; got {n!r}")
        start, end = self._pos, self._pos + n
        if end > len(self._buf):
            # SHAKE output of length L is a prefix of output of any length > L,
            # so re-squeezing a longer output keeps the stream consistent.
            self._buf = self._h.digest(max(end, 2 * len(self._buf), 1024))
        return memoryview(self._buf)[start:end]

    # spec-excerpt: xof-uniform-int
    def uniform_int(self, bound: int) -> int:
        """One integer uniform in ``[0, bound)``, by masked rejection sampling.

        Spec: spec/03-xof.md#uniform-integers
        Proof: proofs_notes/xof-rejection-uniform.md
        """
        if type(bound) is not int or bound < 1:
            raise ParameterError(f"bound must be an int >= 1; got {bound!r}")
        bits = (bound - 1).bit_length()
        width = (bits + 7) // 8
        mask = (1 << bits) - 1
        while True:
            candidate = int.from_bytes(self.next_bytes(width), "little") & mask
            if candidate < bound:
                return candidate

    # end-spec-excerpt

    def uniform_ints(
        self, bound: int, *, count: int, out: npt.NDArray[np.uint64] | None = None
    ) -> npt.NDArray[np.uint64]:
        """``count`` successive :meth:`uniform_int` draws, vectorized.

        Spec: spec/03-xof.md#uniform-integers

        Equal, value for value and byte for byte consumed, to calling
        ``uniform_int(bound)`` ``count`` times (a test checks this). With
        ``out`` (a contiguous 1-D uint64 array of length ``count``), the
        draws are written there and ``out`` is returned.

        Pre-conditions:
            - ``1 <= bound <= 2^64``
        """
        if type(bound) is not int or not 1 <= bound <= 1 << 64:
            raise ParameterError(f"vectorized bound must be an int in [1, 2^64]; got {bound!r}")
        if type(count) is not int or count < 0:
            raise ParameterError(f"count must be an int >= 0; got {count!r}")
        if out is None:
            out = np.empty(count, dtype=np.uint64)
        elif out.shape != (count,) or out.dtype != np.uint64 or not out.flags.c_contiguous:
            raise ParameterError(
                f"out must be a contiguous uint64 array of shape ({count},); "
                f"got {out.dtype} {out.shape}"
            )
        bits = (bound - 1).bit_length()
        width = (bits + 7) // 8
        if width == 0:
            out[:] = 0
            return out
        if bound == 1 << bits:  # no candidate can be rejected: one read
            _masked_words_into(self._next_view(count * width), width=width, bits=bits, out=out)
            return out
        rate = bound / (1 << bits)  # > 1/2: the chance that a candidate is accepted
        if rate > 0.99:  # rejections are rare: read in place, compact when one happens
            got = 0
            while got < count:
                need = count - got
                dst = out[got:]
                _masked_words_into(self._next_view(need * width), width=width, bits=bits, out=dst)
                keep = dst < np.uint64(bound)
                if keep.all():
                    return out
                kept = dst[keep]
                dst[: len(kept)] = kept
                got += len(kept)
            return out
        # Look ahead at enough candidates for the expected rejections, keep the
        # first accepted ones, and consume exactly the bytes up to the last
        # candidate used (so the stream is where count uniform_int calls leave it).
        got = 0
        while got < count:
            need = count - got
            ahead = max(1, int(need / rate * _LOOKAHEAD_FACTOR) + _LOOKAHEAD_SLACK)
            candidates = np.empty(ahead, dtype=np.uint64)
            _masked_words_into(
                self._peek_view(ahead * width), width=width, bits=bits, out=candidates
            )
            accepted = np.flatnonzero(candidates < np.uint64(bound))
            take = min(need, len(accepted))
            out[got : got + take] = candidates[accepted[:take]]
            used = int(accepted[take - 1]) + 1 if take == need else ahead
            self._pos += used * width
            got += take
        return out

    def field_elements(self, field: type[Field], count: int) -> Field:
        """``count`` uniform elements of ``field``: ``uniform_ints(MODULUS, count=count)``.

        Spec: spec/03-xof.md#field-elements
        """
        return field._wrap(self.uniform_ints(field.MODULUS, count=count))

    def bernoulli(self, numerator: int, denominator: int) -> bool:
        """True with probability exactly ``numerator / denominator``.

        Spec: spec/03-xof.md#bernoulli

        Pre-conditions:
            - ``0 <= numerator <= denominator``, ``denominator >= 1``
        """
        if (
            type(numerator) is not int
            or type(denominator) is not int
            or denominator < 1
            or not 0 <= numerator <= denominator
        ):
            raise ParameterError(
                f"Bernoulli needs 0 <= numerator <= denominator, denominator >= 1; "
                f"got {numerator}/{denominator}"
            )
        return self.uniform_int(denominator) < numerator


def derive_seed(seed: Seed, tag: Tag) -> Seed:
    """A fresh seed for a sub-task: the first 32 bytes of ``Xof(seed, tag)``.

    Spec: spec/03-xof.md#derived-seeds
    """
    return Seed(Xof(seed, tag).next_bytes(SEED_SIZE))


#: How far :meth:`Xof.uniform_ints` looks ahead when rejections are common: the
#: expected number of candidates, times this factor, plus this slack (speed only).
_LOOKAHEAD_FACTOR = 1.01
_LOOKAHEAD_SLACK = 32


def _masked_words_into(
    data: bytes | memoryview, *, width: int, bits: int, out: npt.NDArray[np.uint64]
) -> None:
    """Little-endian words of ``width`` bytes (1..8), masked to ``bits`` bits, into ``out``."""
    if width in (1, 2, 4, 8):
        words = np.frombuffer(data, dtype=f"<u{width}")
        np.bitwise_and(words, words.dtype.type((1 << bits) - 1), out=out)
        return
    raw = np.frombuffer(data, dtype=np.uint8).reshape(-1, width)
    padded = np.zeros((raw.shape[0], 8), dtype=np.uint8)
    padded[:, :width] = raw
    np.bitwise_and(padded.view("<u8").reshape(-1), np.uint64((1 << bits) - 1), out=out)
