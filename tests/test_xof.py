"""The XOF stream, tags and the integer samplers against hashlib.

Spec: spec/03-xof.md

The oracle is ``hashlib.shake_128`` fed with an input that each test builds
by hand from the spec's rule (``XOF_CONTEXT || seed || tag``, the tag being
``u8(len(purpose)) || purpose || u8(len(params)) || u64le(v) ...``), and a
reimplementation of masked rejection sampling that reads that raw stream.
Uniformity of the samplers then follows from the argument in
proofs_notes/xof-rejection-uniform.md: a masked candidate is uniform on
``[0, 2^bits)``, and accepting it iff it is ``< bound`` leaves it uniform on
``[0, bound)``.
"""

from __future__ import annotations

import hashlib
import struct

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import protocol.xof as xof_module
from protocol.errors import ParameterError
from protocol.field import Field
from protocol.xof import SEED_SIZE, XOF_CONTEXT, Tag, Xof, as_seed, derive_seed
from tests.strategies import (
    PRINTABLE_ASCII,
    SPECIAL_BOUNDS,
    big_bounds,
    fields,
    seeds,
    tags,
    vector_bounds,
)

FIXED_SEED = bytes(range(32))


def tag_bytes(purpose: str, params: tuple[int, ...]) -> bytes:
    """The tag encoding, built by hand from the spec's rule."""
    out = bytes([len(purpose)]) + purpose.encode("ascii") + bytes([len(params)])
    return out + b"".join(struct.pack("<Q", v) for v in params)


class RawStream:
    """The XOF stream read straight from hashlib (SHAKE128 output is prefix-stable)."""

    def __init__(self, seed: bytes, purpose: str, params: tuple[int, ...] = ()) -> None:
        self._h = hashlib.shake_128(b"SDL-XOF-v1" + seed + tag_bytes(purpose, params))
        self._buf = b""
        self.pos = 0

    def read(self, n: int) -> bytes:
        if self.pos + n > len(self._buf):
            self._buf = self._h.digest(2 * (self.pos + n))
        out = self._buf[self.pos : self.pos + n]
        self.pos += n
        return out

    def peek(self, n: int) -> bytes:
        saved = self.pos
        out = self.read(n)
        self.pos = saved
        return out


def reference_uniform(stream: RawStream, bound: int) -> tuple[int, int]:
    """Masked rejection sampling from the raw stream: (value, rejections)."""
    bits = (bound - 1).bit_length()
    width = -(-bits // 8)
    rejections = 0
    while True:
        candidate = int.from_bytes(stream.read(width), "little") % (1 << bits)
        if candidate < bound:
            return candidate, rejections
        rejections += 1


def test_context_string_is_the_documented_one() -> None:
    assert XOF_CONTEXT == b"SDL-XOF-v1"
    assert SEED_SIZE == 32


# ---------------------------------------------------------------- tags and the stream


def test_tag_encoding_known_answer() -> None:
    tag = Tag("shamir.share", (1, 2**64 - 1))
    assert tag.encode() == (b"\x0cshamir.share\x02" + b"\x01" + b"\x00" * 7 + b"\xff" * 8)
    assert Tag("a").encode() == b"\x01a\x00"


@given(tags)
def test_tag_encoding_follows_the_length_prefixed_rule(tag: Tag) -> None:
    assert tag.encode() == tag_bytes(tag.purpose, tag.params)


@given(tags, tags)
def test_distinct_tags_encode_differently(t1: Tag, t2: Tag) -> None:
    assume((t1.purpose, t1.params) != (t2.purpose, t2.params))
    assert t1.encode() != t2.encode()


def test_adjacent_tags_encode_differently() -> None:
    """Length prefixes separate what plain concatenation would merge."""
    variants = [Tag("ab"), Tag("a", (98,)), Tag("ab", (0,)), Tag("ab", (0, 0)), Tag("b")]
    encodings = [t.encode() for t in variants]
    assert len(set(encodings)) == len(encodings)


@given(seeds, tags, st.integers(0, 3000))
def test_stream_equals_shake128_of_context_seed_and_tag(seed: bytes, tag: Tag, n: int) -> None:
    expected = hashlib.shake_128(b"SDL-XOF-v1" + seed + tag_bytes(tag.purpose, tag.params))
    assert Xof(as_seed(seed), tag).next_bytes(n) == expected.digest(n)


@given(seeds, tags, st.lists(st.integers(0, 1500), max_size=12))
def test_reading_in_pieces_equals_one_read(seed: bytes, tag: Tag, pieces: list[int]) -> None:
    xof = Xof(as_seed(seed), tag)
    got = b"".join(xof.next_bytes(n) for n in pieces)
    whole = Xof(as_seed(seed), tag).next_bytes(sum(pieces))
    assert got == whole
    raw = RawStream(seed, tag.purpose, tag.params)
    assert got == raw.read(sum(pieces))
    assert xof.next_bytes(40) == raw.read(40)


@given(seeds, tags, seeds, tags)
def test_different_seeds_or_tags_give_different_streams(
    s1: bytes, t1: Tag, s2: bytes, t2: Tag
) -> None:
    assume((s1, t1.purpose, t1.params) != (s2, t2.purpose, t2.params))
    assert Xof(as_seed(s1), t1).next_bytes(32) != Xof(as_seed(s2), t2).next_bytes(32)


def test_streams_differ_for_neighbouring_seeds_and_params() -> None:
    firsts = {
        Xof(as_seed(seed), tag).next_bytes(32)
        for seed in (bytes(32), b"\x01" + bytes(31), bytes(31) + b"\x01")
        for tag in (Tag("x"), Tag("y"), Tag("x", (0,)), Tag("x", (1,)), Tag("x", (0, 0)))
    }
    assert len(firsts) == 15


def test_derive_seed_is_the_first_32_bytes_of_the_stream() -> None:
    tag = Tag("derive", (7,))
    expected = hashlib.shake_128(b"SDL-XOF-v1" + FIXED_SEED + tag_bytes("derive", (7,))).digest(32)
    assert derive_seed(as_seed(FIXED_SEED), tag) == expected


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("purpose", "params"),
    [
        ("", ()),
        ("é", ()),
        ("naïve", ()),
        ("tab\there", ()),
        ("line\n", ()),
        ("\x00", ()),
        ("x" * 256, ()),
        (b"bytes", ()),
        (None, ()),
        ("ok", (-1,)),
        ("ok", (2**64,)),
        ("ok", (True,)),
        ("ok", (1.0,)),
        ("ok", ("1",)),
        ("ok", (0,) * 256),
    ],
    ids=repr,
)
def test_invalid_tags_raise_parameter_error(purpose: object, params: tuple[object, ...]) -> None:
    with pytest.raises(ParameterError) as info:
        Tag(purpose, params)  # type: ignore[arg-type]
    msg = str(info.value)
    if len(params) > 255:
        assert "256" in msg
    elif params:
        assert repr(params[0]) in msg
    else:
        assert repr(purpose) in msg


def test_longest_tag_is_accepted() -> None:
    tag = Tag(PRINTABLE_ASCII[:1] * 255, tuple(range(255)))
    assert tag.encode() == tag_bytes(tag.purpose, tag.params)


@pytest.mark.parametrize(
    "seed", [b"", bytes(31), bytes(33), bytearray(32), "0" * 32, None, list(range(32))], ids=repr
)
def test_seed_must_be_32_bytes(seed: object) -> None:
    with pytest.raises(ParameterError, match="32 bytes"):
        as_seed(seed)  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="32 bytes"):
        Xof(seed, Tag("x"))  # type: ignore[arg-type]


def test_negative_reads_and_counts_raise_parameter_error() -> None:
    xof = Xof(as_seed(FIXED_SEED), Tag("x"))
    with pytest.raises(ParameterError, match="-1"):
        xof.next_bytes(-1)
    with pytest.raises(ParameterError, match="-3"):
        xof.uniform_ints(10, count=-3)
    for bad in (0, -1, -(2**70)):
        with pytest.raises(ParameterError, match=str(bad)):
            xof.uniform_int(bad)
        with pytest.raises(ParameterError, match=str(bad)):
            xof.uniform_ints(bad, count=1)
    with pytest.raises(ParameterError, match=str(2**64 + 1)):
        xof.uniform_ints(2**64 + 1, count=1)


@pytest.mark.parametrize("bound", [2.0, 2.5, 1e30], ids=repr)
def test_non_integer_bounds_raise_parameter_error(bound: object) -> None:
    """A float bound is a ParameterError (today: ``AttributeError: float ... bit_length``)."""
    xof = Xof(as_seed(FIXED_SEED), Tag("x"))
    with pytest.raises(ParameterError):
        xof.uniform_int(bound)  # type: ignore[arg-type]
    with pytest.raises(ParameterError):
        xof.uniform_ints(bound, count=3)  # type: ignore[arg-type]
    with pytest.raises(ParameterError):
        xof.bernoulli(1, bound)  # type: ignore[arg-type]


# ---------------------------------------------------------------- uniform integers


@given(seeds, vector_bounds, st.integers(0, 60))
def test_uniform_ints_equals_repeated_uniform_int(seed: bytes, bound: int, count: int) -> None:
    """Same values and same stream position afterwards (spec/03-xof.md#uniform-integers)."""
    tag = Tag("test.uniform", (bound % 2**64,))
    vec = Xof(as_seed(seed), tag)
    one = Xof(as_seed(seed), tag)
    got = [int(v) for v in vec.uniform_ints(bound, count=count)]
    assert got == [one.uniform_int(bound) for _ in range(count)]
    assert vec.next_bytes(64) == one.next_bytes(64)


@given(seeds, vector_bounds, st.integers(0, 60))
def test_uniform_ints_match_reference_rejection_sampling(
    seed: bytes, bound: int, count: int
) -> None:
    xof = Xof(as_seed(seed), Tag("test.uniform"))
    got = xof.uniform_ints(bound, count=count)
    raw = RawStream(seed, "test.uniform")
    expected = [reference_uniform(raw, bound)[0] for _ in range(count)]
    assert [int(v) for v in got] == expected
    assert all(0 <= v < bound for v in expected)
    assert xof.next_bytes(32) == raw.read(32)


@pytest.mark.parametrize("bound", SPECIAL_BOUNDS)
def test_uniform_ints_match_reference_on_fixed_seed(bound: int) -> None:
    """200 draws per special bound; where the acceptance rate is low, rejections happen."""
    xof = Xof(as_seed(FIXED_SEED), Tag("test.uniform.fixed"))
    raw = RawStream(FIXED_SEED, "test.uniform.fixed")
    draws = [reference_uniform(raw, bound) for _ in range(200)]
    assert [int(v) for v in xof.uniform_ints(bound, count=200)] == [v for v, _ in draws]
    assert xof.next_bytes(16) == raw.read(16)
    bits = (bound - 1).bit_length()
    if bound <= (1 << bits) * 3 // 4:  # acceptance <= 3/4: 200 draws reject at least once
        assert sum(r for _, r in draws) > 0


@given(seeds, big_bounds, st.integers(1, 5))
def test_uniform_int_beyond_64_bits_matches_reference(seed: bytes, bound: int, count: int) -> None:
    xof = Xof(as_seed(seed), Tag("test.big"))
    raw = RawStream(seed, "test.big")
    for _ in range(count):
        assert xof.uniform_int(bound) == reference_uniform(raw, bound)[0]
    assert xof.next_bytes(32) == raw.read(32)


def test_uniform_int_with_bound_one_consumes_nothing() -> None:
    xof = Xof(as_seed(FIXED_SEED), Tag("x"))
    assert xof.uniform_int(1) == 0
    assert xof.uniform_ints(1, count=5).tolist() == [0] * 5
    assert xof.next_bytes(8) == RawStream(FIXED_SEED, "x").read(8)


@given(fields, seeds, st.integers(0, 50))
def test_field_elements_are_uniform_ints_below_p(
    field: type[Field], seed: bytes, count: int
) -> None:
    xof = Xof(as_seed(seed), Tag("test.field", (3,)))
    got = xof.field_elements(field, count)
    assert type(got) is field
    raw = RawStream(seed, "test.field", (3,))
    assert got.to_ints() == [reference_uniform(raw, field.MODULUS)[0] for _ in range(count)]
    assert xof.next_bytes(8) == raw.read(8)


# ---------------------------------------------------------------- Bernoulli


@given(seeds, st.data())
def test_bernoulli_is_uniform_int_below_numerator(seed: bytes, data: st.DataObject) -> None:
    den = data.draw(st.one_of(st.sampled_from([1, 2, 3, 2**64, 2**64 + 1]), st.integers(1, 2**70)))
    num = data.draw(st.one_of(st.sampled_from([0, den]), st.integers(0, den)))
    tag = Tag("test.bernoulli")
    xof = Xof(as_seed(seed), tag)
    raw = RawStream(seed, "test.bernoulli")
    for _ in range(5):
        assert xof.bernoulli(num, den) is (reference_uniform(raw, den)[0] < num)
    assert xof.next_bytes(16) == raw.read(16)


def test_bernoulli_extremes_are_certain() -> None:
    xof = Xof(as_seed(FIXED_SEED), Tag("x"))
    assert not any(xof.bernoulli(0, 7) for _ in range(50))
    assert all(xof.bernoulli(7, 7) for _ in range(50))


@pytest.mark.parametrize(("num", "den"), [(0, 0), (1, 0), (0, -1), (-1, 3), (4, 3), (2**65, 2**64)])
def test_bernoulli_rejects_bad_fractions(num: int, den: int) -> None:
    with pytest.raises(ParameterError, match=f"{num}/{den}"):
        Xof(as_seed(FIXED_SEED), Tag("x")).bernoulli(num, den)


@pytest.mark.parametrize("lookahead", [(1.01, 32), (0.5, 0), (1.0, 1)])
@given(seed=seeds, bound=st.sampled_from([3, 17, 2**20 + 1, 2**31 + 1, 2**31 - 1]),
       count=st.integers(0, 3000))  # fmt: skip
@settings(max_examples=20)
def test_uniform_ints_look_ahead_consumes_exactly_what_scalar_draws_do(
    lookahead: tuple[float, int], seed: bytes, bound: int, count: int
) -> None:
    """However far the vectorized draw looks ahead (short look-aheads force its loop to
    run many times), it returns the scalar draws and leaves the stream where they do."""
    tag = Tag("test.lookahead", (bound,))
    vec, one = Xof(as_seed(seed), tag), Xof(as_seed(seed), tag)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(xof_module, "_LOOKAHEAD_FACTOR", lookahead[0])
        mp.setattr(xof_module, "_LOOKAHEAD_SLACK", lookahead[1])
        got = vec.uniform_ints(bound, count=count).tolist()
    assert got == [one.uniform_int(bound) for _ in range(count)]
    assert vec.next_bytes(32) == one.next_bytes(32)
