"""Prime fields GF(p), vectorized and exact.

Spec: spec/02-field.md

A field is a subclass of :class:`Field` that sets two constants, in the
manner of VDAF's ``Field64``/``Field128``::

    class Field31(Field):
        MODULUS = 2**31 - 1
        ENCODED_SIZE = 4

An *instance* of a field class is an immutable numpy array of elements of
that field (any shape, dtype ``uint64``, every value in ``[0, p)``).
Arithmetic between two instances of *different* fields raises
:class:`~protocol.errors.FieldMismatchError`; nothing is ever converted
silently.

Every operation is exact. The fast paths (Mersenne reductions, and the
limb-split float64 matrix product of :meth:`Field.__matmul__`) are checked
bit for bit against galois in ``tests/test_field.py``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar, Self

import numpy as np
import numpy.typing as npt

from protocol.errors import EncodingError, FieldMismatchError, ParameterError

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]

_M31 = (1 << 31) - 1
_M61 = (1 << 61) - 1

# Columns per block in the matrix product: small enough that the float64
# intermediates stay in cache, large enough that BLAS runs at full speed.
_MATMUL_BLOCK = 1 << 11
#: Threads for large products. The result never depends on it.
MATMUL_WORKERS = 2
# Largest integer a float64 represents exactly, together with all below it.
_FLOAT64_EXACT_BITS = 53

#: Encoded sizes that are a machine word, with their little-endian dtype (the
#: fast path of encode/decode; every other size takes the general path).
_WORD_DTYPES: dict[int, str] = {4: "<u4", 8: "<u8"}

_CANONICAL_DECIMAL = re.compile(r"0|[1-9][0-9]*")
#: Comma-joined lists of canonical decimals of at most N digits, by N (from_json's fast path).
_CANONICAL_LISTS: dict[int, re.Pattern[str]] = {}


def is_prime(n: int) -> bool:
    """Deterministic primality test for ``n < 3.3 * 10**24`` (Miller–Rabin).

    Spec: spec/02-field.md#parameter-sets

    The bases 2..41 are a proven deterministic witness set below
    3,317,044,064,679,887,385,961,981 (J. Sorenson and J. Webster, "Strong
    pseudoprimes to twelve prime bases", Math. Comp. 86 (2017), Theorem 1.1),
    which covers every modulus SDL accepts (all are below 2^62).

    Raises:
        ParameterError: if ``n`` is at least that bound.
    """
    if n >= 3_317_044_064_679_887_385_961_981:
        raise ParameterError(f"is_prime is deterministic only below 3.3e24; got {n}")
    if n < 2:
        return False
    bases = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41)
    for b in bases:
        if n % b == 0:
            return n == b
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for b in bases:
        x = pow(b, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


class Field:
    """GF(p) for the prime ``MODULUS``; instances are immutable arrays of elements.

    Spec: spec/02-field.md#parameter-sets

    Subclasses set ``MODULUS`` (a prime below 2^32, or 2^61 − 1) and may set
    ``ENCODED_SIZE`` (default: the fewest bytes that hold ``MODULUS − 1``).
    """

    MODULUS: ClassVar[int]
    ENCODED_SIZE: ClassVar[int]
    #: Bit length of MODULUS − 1: the width every element fits in.
    BITS: ClassVar[int]

    __slots__ = ("_a",)
    __hash__ = None  # type: ignore[assignment]

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        p = cls.__dict__.get("MODULUS")
        if p is None:
            return
        if not isinstance(p, int) or not is_prime(p):
            raise ParameterError(f"{cls.__name__}.MODULUS must be prime; got {p!r}")
        if not (p < (1 << 32) or p == _M61):
            raise ParameterError(
                f"{cls.__name__}.MODULUS must be below 2^32 or equal 2^61 - 1 "
                f"(the moduli with an exact fast path); got {p}"
            )
        cls.BITS = (p - 1).bit_length()
        if "ENCODED_SIZE" not in cls.__dict__:
            cls.ENCODED_SIZE = (cls.BITS + 7) // 8
        if cls.ENCODED_SIZE * 8 < cls.BITS or cls.ENCODED_SIZE > 8:
            raise ParameterError(
                f"{cls.__name__}.ENCODED_SIZE must be in [{(cls.BITS + 7) // 8}, 8]; "
                f"got {cls.ENCODED_SIZE}"
            )

    # ------------------------------------------------------------------ building

    def __init__(self, values: npt.ArrayLike) -> None:
        """Elements from non-negative integers below ``MODULUS``.

        Raises:
            EncodingError: if a value is not an integer in ``[0, MODULUS)``.
        """
        self._a = self._checked(values)

    @classmethod
    def _wrap(cls, a: U64) -> Self:
        """Wrap an array already known to be reduced (internal; no check)."""
        out = object.__new__(cls)
        a.setflags(write=False)
        out._a = a
        return out

    @classmethod
    def _checked(cls, values: npt.ArrayLike) -> U64:
        p = cls.MODULUS
        if isinstance(values, np.ndarray):
            if values.dtype.kind not in "iu":
                raise EncodingError(
                    f"{cls.__name__} elements must be integers; got an array of {values.dtype}"
                )
            arr = values
        else:
            flat = list(_flatten(values))
            for i, v in enumerate(flat):
                if type(v) is not int and not isinstance(v, np.integer):
                    raise EncodingError(
                        f"{cls.__name__} elements must be integers; element {i} is {v!r}"
                    )
                if not 0 <= v < p:
                    raise EncodingError(f"{cls.__name__} element {i} must be in [0, {p}); got {v}")
            arr = np.array(values, dtype=np.uint64)
        if arr.size:
            bad = (arr < 0) | (arr >= p) if arr.dtype.kind == "i" else arr >= p
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise EncodingError(
                    f"{cls.__name__} element {i} must be in [0, {p}); got {arr.flat[i]}"
                )
        out = np.array(arr, dtype=np.uint64, copy=True)
        out.setflags(write=False)
        return out

    @classmethod
    def _check_below_modulus(cls, arr: npt.NDArray[np.integer[Any]]) -> None:
        """Raise unless every value of ``arr`` (non-negative integers) is below ``MODULUS``.

        The same check, and the same message, as :meth:`_checked` makes for an
        unsigned array; one reduction on the common path, where all are below.

        Raises:
            EncodingError: naming the first value (in C order) that is not.
        """
        p = cls.MODULUS
        if arr.size and int(arr.max()) >= p:
            i = int(np.flatnonzero(arr >= p)[0])
            raise EncodingError(
                f"{cls.__name__} element {i} must be in [0, {p}); got {arr.flat[i]}"
            )

    @classmethod
    def zeros(cls, shape: int | tuple[int, ...]) -> Self:
        return cls._wrap(np.zeros(shape, dtype=np.uint64))

    @classmethod
    def stack(cls, rows: Sequence[Field]) -> Self:
        """Stack equal-shaped vectors of this field into one array (new first axis).

        Raises:
            FieldMismatchError: if any row belongs to another field.
        """
        for r in rows:
            cls._same_field(r)
        return cls._wrap(np.stack([r._a for r in rows]))

    @classmethod
    def _same_field(cls, other: object) -> Field:
        if not isinstance(other, Field):
            raise FieldMismatchError(
                f"expected {cls.__name__} elements; got {type(other).__name__}"
            )
        if type(other) is not cls:
            raise FieldMismatchError(
                f"cannot combine {cls.__name__} with {type(other).__name__} elements"
            )
        return other

    # ------------------------------------------------------------------ viewing

    @property
    def values(self) -> U64:
        """The elements as a read-only ``uint64`` array."""
        return self._a

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self._a.shape)

    def __len__(self) -> int:
        return len(self._a)

    def __getitem__(self, key: int | slice | tuple[int | slice, ...]) -> Self:
        return self._wrap(np.atleast_1d(self._a[key]))

    def take_rows(self, rows: Sequence[int]) -> Self:
        """The rows (first-axis entries) at these indices, in this order.

        A run of consecutive indices is returned as a view, without copying.
        """
        rows = list(rows)
        if rows and rows == list(range(rows[0], rows[0] + len(rows))):
            return self._wrap(self._a[rows[0] : rows[0] + len(rows)])
        return self._wrap(self._a[rows])

    def reshape(self, *shape: int) -> Self:
        return self._wrap(self._a.reshape(shape))

    def to_ints(self) -> list[int]:
        """The elements, flattened in C order, as Python ints."""
        return [int(v) for v in self._a.ravel()]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._a.tolist()!r})"

    def __eq__(self, other: object) -> bool:
        """Equal shapes and elements. Comparing with another field raises."""
        if not isinstance(other, Field):
            return NotImplemented
        self._same_field(other)
        return self._a.shape == other._a.shape and bool(np.array_equal(self._a, other._a))

    # ------------------------------------------------------------------ arithmetic
    # Spec: spec/02-field.md#arithmetic

    def _operand(self, other: object) -> U64:
        """``other``'s elements, which must be of this field and of this shape (no broadcasting)."""
        b = self._same_field(other)._a
        if b.shape != self._a.shape:
            raise ParameterError(
                f"elementwise operands must have equal shapes; got {self.shape} and "
                f"{tuple(b.shape)} (spec/02-field.md#arithmetic)"
            )
        return b

    def __add__(self, other: Field) -> Self:
        b = self._operand(other)
        s = self._a + b
        # s < 2p < 2^63. If s >= p then s - p < s; otherwise s - p wraps above s.
        return self._wrap(np.minimum(s, s - np.uint64(self.MODULUS)))

    def __sub__(self, other: Field) -> Self:
        b = self._operand(other)
        d = self._a - b  # wraps modulo 2^64 when a < b
        return self._wrap(np.minimum(d, d + np.uint64(self.MODULUS)))

    def __neg__(self) -> Self:
        return self._wrap(np.where(self._a == 0, self._a, np.uint64(self.MODULUS) - self._a))

    def __mul__(self, other: Field) -> Self:
        b = self._operand(other)
        return self._wrap(self._mul(self._a, b))

    def __truediv__(self, other: Field) -> Self:
        return self * self._same_field(other).inv()

    def __pow__(self, exponent: int) -> Self:
        """Elementwise power by square-and-multiply (``exponent >= 0``)."""
        if exponent < 0:
            raise ParameterError(f"exponent must be >= 0; got {exponent} (use inv())")
        result = np.ones_like(self._a)
        base = self._a
        while exponent:
            if exponent & 1:
                result = self._mul(result, base)
            base = self._mul(base, base)
            exponent >>= 1
        return self._wrap(result)

    def inv(self) -> Self:
        """Elementwise inverse, ``a^(p-2)``.

        Raises:
            ParameterError: if an element is 0.
        """
        if (self._a == 0).any():
            i = int(np.flatnonzero(self._a == 0)[0])
            raise ParameterError(f"element {i} is 0, which has no inverse in {type(self).__name__}")
        return self ** (self.MODULUS - 2)

    def sum(self, axis: int = 0) -> Self:
        """Sum along ``axis``, reduced modulo p (a 1-D vector sums to a 0-d array)."""
        a = self._a
        if self.MODULUS < (1 << 32):
            # Each term < 2^32: a uint64 accumulator is exact for < 2^32 terms.
            total = self._reduce(a.sum(axis=axis, dtype=np.uint64, keepdims=True))
        else:
            # 2^61 - 1: sum the 32-bit halves separately, then recombine.
            lo = self._reduce(
                np.sum(a & np.uint64(0xFFFFFFFF), axis=axis, dtype=np.uint64, keepdims=True)
            )
            hi = self._reduce(np.sum(a >> np.uint64(32), axis=axis, dtype=np.uint64, keepdims=True))
            hi = self._mul(hi, np.full_like(hi, (1 << 32) % self.MODULUS))
            s = hi + lo
            total = np.minimum(s, s - np.uint64(self.MODULUS))
        # Summing with keepdims keeps arrays (not numpy scalars) throughout,
        # so the deliberate wrap-around in the reductions stays silent.
        return self._wrap(np.squeeze(total, axis=axis))

    @classmethod
    def total(cls, parts: Sequence[npt.NDArray[np.unsignedinteger[Any]]], length: int) -> Self:
        """``Σ parts`` modulo p: each part a 1-D array of ``length`` elements already below p.

        For sums of received vectors held compactly (uint32 for a field below
        2^32): no stacking, one accumulator. Below 2^32 the uint64
        accumulator is exact for fewer than 2^32 terms and is reduced once.
        """
        acc = np.zeros(length, dtype=np.uint64)
        p = np.uint64(cls.MODULUS)
        for part in parts:
            if part.shape != (length,):
                raise ParameterError(f"total needs parts of shape ({length},); got {part.shape}")
            if cls.MODULUS < (1 << 32):
                np.add(acc, part, out=acc)
            else:
                s = acc + part.astype(np.uint64)  # both < 2^61: no wrap
                acc = np.minimum(s, s - p)
        if cls.MODULUS < (1 << 32):
            if len(parts) >= 1 << 32:
                raise ParameterError("total sums fewer than 2^32 parts")
            acc = cls._reduce(acc)
        return cls._wrap(acc)

    def __matmul__(self, other: Field) -> Self:
        """Exact matrix product ``(m×n) @ (n×d)``; see :meth:`matmul`."""
        return self.matmul(other)

    def matmul(self, other: Field, *, workers: int = MATMUL_WORKERS) -> Self:
        """Exact matrix product ``(m×n) @ (n×d)``, by limb-split float64 BLAS.

        Spec: spec/02-field.md#matrix-product
        Proof: proofs_notes/limb-split-matmul-exact.md

        Each operand is split into non-negative limbs of ``a`` and ``b`` bits
        with ``a + b + ceil(log2 n) <= 53``. Every partial sum inside BLAS is
        then an integer below 2^53, which float64 holds exactly, in any
        summation order. The limb products are recombined modulo p.

        Columns are processed in cache-sized blocks; with ``workers > 1``
        the blocks are split among that many threads (numpy releases the
        GIL). Every block is computed independently, so the result does not
        depend on ``workers``.
        """
        b_arr = self._same_field(other)._a
        a_arr = self._a
        if a_arr.ndim != 2 or b_arr.ndim != 2 or a_arr.shape[1] != b_arr.shape[0]:
            raise ParameterError(f"matmul needs (m×n) @ (n×d); got {a_arr.shape} @ {b_arr.shape}")
        if type(workers) is not int or workers < 1:
            raise ParameterError(f"workers must be an int >= 1; got {workers!r}")
        m, n = a_arr.shape
        d = b_arr.shape[1]
        out = np.empty((m, d), dtype=np.uint64)
        if n == 0:
            out[:] = 0
            return self._wrap(out)
        a_bits, b_bits = _limb_plan(self.BITS, n)
        a_stack = np.concatenate(_split(a_arr, a_bits, self.BITS), axis=0).astype(np.float64)
        blocks = range(0, d, _MATMUL_BLOCK)
        if workers == 1 or len(blocks) < 2 * workers:
            self._matmul_blocks(a_stack, b_arr, out, blocks, (a_bits, b_bits))
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                jobs = [
                    pool.submit(
                        self._matmul_blocks,
                        a_stack,
                        b_arr,
                        out,
                        blocks[i::workers],
                        (a_bits, b_bits),
                    )
                    for i in range(workers)
                ]
                for job in jobs:
                    job.result()
        return self._wrap(out)

    @classmethod
    def _matmul_blocks(
        cls,
        a_stack: npt.NDArray[np.float64],
        b_arr: U64,
        out: U64,
        starts: range,
        limbs: tuple[int, int],
    ) -> None:
        """Write the column blocks starting at ``starts`` of the product into ``out``."""
        a_bits, b_bits = limbs
        p = cls.MODULUS
        m = out.shape[0]
        na = a_stack.shape[0] // m
        nb = -(-cls.BITS // b_bits)
        combine = None
        if p == _M31 and na * nb <= 4:
            combine = _combine_m31
        elif p == _M61 and na * nb <= 9:
            combine = _combine_m61
        for start in starts:
            blk = b_arr[:, start : start + _MATMUL_BLOCK]
            w = blk.shape[1]
            if nb == 1:
                b_stack = blk.astype(np.float64)
            else:
                b_stack = np.concatenate(_split(blk, b_bits, cls.BITS), axis=1).astype(np.float64)
            prod = (a_stack @ b_stack).astype(np.uint64)  # exact: every entry < 2^53
            if combine is not None:
                combine(
                    prod,
                    m=m,
                    w=w,
                    a_limbs=(a_bits, na),
                    b_limbs=(b_bits, nb),
                    out=out[:, start : start + w],
                )
                continue
            acc = np.zeros((m, w), dtype=np.uint64)
            for i in range(na):
                for j in range(nb):
                    part = cls._reduce(prod[i * m : (i + 1) * m, j * w : (j + 1) * w])
                    if i or j:
                        scale = pow(2, a_bits * i + b_bits * j, p)
                        part = cls._mul(part, np.full_like(part, scale))
                    acc = acc + part
                    acc = np.minimum(acc, acc - np.uint64(p))
            out[:, start : start + w] = acc

    # ------------------------------------------------------------------ fast kernels

    @classmethod
    def _reduce(cls, x: U64) -> U64:
        """``x mod p`` for any uint64 array ``x``."""
        p = cls.MODULUS
        if p == _M31:
            m = np.uint64(_M31)
            s = np.uint64(31)
            r = (x & m) + (x >> s)  # < 2^31 + 2^33
            r = (r & m) + (r >> s)  # < 2^31 + 2^3
            return np.minimum(r, r - m)
        if p == _M61:
            m = np.uint64(_M61)
            r = (x & m) + (x >> np.uint64(61))  # < 2^61 + 8
            return np.minimum(r, r - m)
        return x % np.uint64(p)

    @classmethod
    def _mul(cls, a: U64, b: U64) -> U64:
        """Elementwise ``a * b mod p`` for reduced inputs."""
        if cls.MODULUS != _M61:
            return cls._reduce(a * b)  # a*b < 2^64 since p < 2^32
        # p = 2^61 - 1. Split at 32 bits: a = a1*2^32 + a0 (a1 < 2^29, a0 < 2^32).
        # Proof: proofs_notes/mersenne61-multiply.md
        lo32 = np.uint64(0xFFFFFFFF)
        s32 = np.uint64(32)
        a0, a1 = a & lo32, a >> s32
        b0, b1 = b & lo32, b >> s32
        lo = a0 * b0  # < 2^64
        mid = a1 * b0 + a0 * b1  # < 2^62
        hi = a1 * b1  # < 2^58
        m = np.uint64(_M61)
        # hi*2^64 ≡ 8*hi; mid*2^32 = (m1*2^29 + m0)*2^32 ≡ m0*2^32 + m1; lo ≡ (lo & M) + (lo >> 61).
        m0 = mid & np.uint64((1 << 29) - 1)
        m1 = mid >> np.uint64(29)
        t = (hi << np.uint64(3)) + (m0 << s32) + m1 + (lo & m) + (lo >> np.uint64(61))  # < 2^63
        r = (t & m) + (t >> np.uint64(61))
        out: U64 = np.minimum(r, r - m)
        return out

    # ------------------------------------------------------------------ encodings
    # Spec: spec/02-field.md#serialization

    def encode(self) -> bytes:
        """Fixed-width little-endian bytes, ``ENCODED_SIZE`` per element, C order."""
        w = self.ENCODED_SIZE
        if w in _WORD_DTYPES:
            # Fast path: a 4- or 8-byte element is a machine word. Every value
            # is below 2^(8w) (ENCODED_SIZE * 8 >= BITS), so the cast is exact
            # and gives the same bytes as the general path.
            return self._a.astype(_WORD_DTYPES[w], copy=False).tobytes()
        return _encode_le(self._a, w)

    @classmethod
    def decode(cls, data: bytes) -> Self:
        """Inverse of :meth:`encode` (a flat vector).

        Raises:
            EncodingError: if the length is not a multiple of ``ENCODED_SIZE``,
                or an element is ``>= MODULUS`` (the error names the first).
        """
        w = cls.ENCODED_SIZE
        if len(data) % w:
            raise EncodingError(
                f"{cls.__name__} encoding must be a multiple of {w} bytes; got {len(data)}"
            )
        if w in _WORD_DTYPES:
            # Fast path: read whole words; every bit is read, as in the general path.
            vals = np.frombuffer(data, dtype=_WORD_DTYPES[w]).astype(np.uint64)
        else:
            vals = _decode_le(data, w)
        cls._check_below_modulus(vals)
        return cls._wrap(vals)

    def to_json(self) -> list[str]:
        """Decimal strings, one per element (flattened, C order)."""
        return [str(v) for v in self.to_ints()]

    @classmethod
    def _from_json_fast(cls, items: Sequence[str], digits: int) -> Self | None:
        """The elements if every item is canonical and below p, else ``None`` (no error).

        One regular expression over the comma-joined text checks every item's
        form (a digit string of at most ``digits`` digits fits a uint64), and
        numpy parses them all; the slow path then only runs on bad input.
        """
        if not items:
            return None
        pattern = _CANONICAL_LISTS.get(digits)
        if pattern is None:
            element = rf"(?:0|[1-9][0-9]{{0,{digits - 1}}})"
            pattern = _CANONICAL_LISTS[digits] = re.compile(rf"{element}(?:,{element})*")
        try:
            joined = ",".join(items)  # refuses any item that is not a str (a subclass passes)
        except TypeError:
            return None
        if not pattern.fullmatch(joined):
            return None
        values = np.array(items).astype(np.uint64)
        if bool((values >= np.uint64(cls.MODULUS)).any()):
            return None
        return cls._wrap(values)

    @classmethod
    def from_json(cls, items: Sequence[str]) -> Self:
        """Inverse of :meth:`to_json`; only canonical decimals below p are accepted.

        Raises:
            EncodingError: on a non-string, a non-canonical decimal (leading
                zeros, signs, spaces) or a value ``>= MODULUS``.
        """
        if isinstance(items, str | bytes) or not isinstance(items, Sequence):
            raise EncodingError(
                f"{cls.__name__} elements must be a list of decimal strings; got {items!r:.60}"
            )
        digits = len(str(cls.MODULUS))
        fast = cls._from_json_fast(items, digits)
        if fast is not None:
            return fast
        # The slow path finds and names the first bad element.
        out: list[int] = []
        for i, s in enumerate(items):
            if not isinstance(s, str) or not _CANONICAL_DECIMAL.fullmatch(s):
                raise EncodingError(
                    f"{cls.__name__} element {i} must be a canonical decimal string; got {s!r:.60}"
                )
            # Length first: int() of a huge string is slow, and Python refuses it.
            if len(s) > digits or int(s) >= cls.MODULUS:
                shown = s if len(s) <= 100 else f"a {len(s)}-digit decimal"
                raise EncodingError(
                    f"{cls.__name__} element {i} must be in [0, {cls.MODULUS}); got {shown}"
                )
            out.append(int(s))
        return cls._wrap(np.array(out, dtype=np.uint64))

    @classmethod
    def signed_encode(cls, values: npt.ArrayLike) -> Self:
        """Map integers in ``[-(p-1)/2, (p-1)/2]`` into the field (``x mod p``).

        Spec: spec/02-field.md#signed-encoding

        Raises:
            EncodingError: naming the first value outside the range.
        """
        half = (cls.MODULUS - 1) // 2
        if isinstance(values, np.ndarray) and values.dtype.kind == "i" and values.size:
            # The fast path (noise vectors, updates): two reductions check the range.
            a = values.astype(np.int64, copy=False).reshape(-1)
            if int(a.min()) >= -half and int(a.max()) <= half:
                # x >> 63 is all ones exactly for x < 0; as uint64, x < 0 reads
                # 2^64 + x, and adding p wraps it to p + x.
                sign = (a >> np.int64(63)).view(np.uint64) & np.uint64(cls.MODULUS)
                out = a.view(np.uint64) + sign
                return cls._wrap(out.reshape(values.shape))
        if isinstance(values, np.ndarray) and values.dtype.kind in "iu":
            arr = values
            if arr.dtype.kind == "u" and arr.size and int(arr.max()) > half:
                arr = arr.astype(object)
            elif arr.dtype.kind == "i":
                arr = arr.astype(np.int64)
        else:
            flat = list(_flatten(values))
            for i, v in enumerate(flat):
                if type(v) is not int and not isinstance(v, np.integer):
                    raise EncodingError(f"signed value {i} must be an integer; got {v!r}")
            arr = np.array(values, dtype=object)
        flat_vals = arr.reshape(-1)
        if flat_vals.size:
            if arr.dtype == object:
                bad = [i for i, v in enumerate(flat_vals) if not -half <= int(v) <= half]
                first = bad[0] if bad else None
            else:
                mask = (flat_vals < -half) | (flat_vals > half)
                first = int(np.flatnonzero(mask)[0]) if mask.any() else None
            if first is not None:
                raise EncodingError(
                    f"signed value {first} must be in [{-half}, {half}] for "
                    f"{cls.__name__}; got {flat_vals[first]}"
                )
        ints = np.array(arr, dtype=np.int64)
        p = np.int64(cls.MODULUS)
        return cls._wrap(np.where(ints < 0, ints + p, ints).astype(np.uint64))

    def signed_decode(self) -> I64:
        """Inverse of :meth:`signed_encode`: ``v`` if ``v <= (p-1)/2`` else ``v - p``."""
        half = np.uint64((self.MODULUS - 1) // 2)
        a = self._a.astype(np.int64)
        return np.where(self._a > half, a - np.int64(self.MODULUS), a)


def _encode_le(values: U64, width: int) -> bytes:
    """The general path of :meth:`Field.encode`: each uint64's low ``width`` bytes, C order."""
    raw = values.astype("<u8").reshape(-1).view(np.uint8).reshape(-1, 8)
    return raw[:, :width].tobytes()


def _decode_le(data: bytes, width: int) -> U64:
    """The general path of :meth:`Field.decode`: each ``width``-byte group, zero-padded to 8."""
    raw = np.frombuffer(data, dtype=np.uint8).reshape(-1, width)
    padded = np.zeros((raw.shape[0], 8), dtype=np.uint8)
    padded[:, :width] = raw
    out: U64 = padded.view("<u8").reshape(-1).astype(np.uint64)
    return out


def _flatten(values: object) -> Iterable[object]:
    if isinstance(values, list | tuple):
        for v in values:
            yield from _flatten(v)
    else:
        yield values


def _limb_plan(bits: int, inner: int) -> tuple[int, int]:
    """Limb widths ``(a, b)`` for the left and right operands of a product.

    Spec: spec/02-field.md#matrix-product

    Chooses ``a + b + ceil(log2 inner) <= 53`` minimising the number of
    limb products ``ceil(bits/a) * ceil(bits/b)``, then the number of
    right-hand limbs (the right operand is the wide one).
    """
    guard = (inner - 1).bit_length()  # = ceil(log2 inner), exactly, for inner >= 1
    budget = _FLOAT64_EXACT_BITS - guard
    if budget < 2:
        raise ParameterError(f"inner dimension {inner} too large for an exact float64 product")
    best: tuple[int, int, int, int] | None = None
    for a in range(1, min(bits, budget - 1) + 1):
        b = min(bits, budget - a)
        na, nb = -(-bits // a), -(-bits // b)
        key = (na * nb, nb, na, a)
        if best is None or key < best:
            best = key
    assert best is not None
    a = best[3]
    return a, min(bits, budget - a)


def _combine_m31(
    prod: U64, *, m: int, w: int, a_limbs: tuple[int, int], b_limbs: tuple[int, int], out: U64
) -> None:
    """Recombine limb products: ``sum_ij P_ij * 2^(a*i + b*j) mod 2^31 - 1``.

    Proof: proofs_notes/limb-split-matmul-exact.md

    ``prod`` holds block ``P_ij`` at rows ``i*m:(i+1)*m`` and columns
    ``j*w:(j+1)*w``, every entry below 2^53, with at most 4 blocks. It is
    overwritten; the ``m × w`` result goes to ``out``. Since 2^31 ≡ 1,
    multiplying by 2^s is a left shift by ``s mod 31``; the high bits are
    folded back in at the end.
    """
    (a_bits, na), (b_bits, nb) = a_limbs, b_limbs
    m31 = np.uint64(_M31)
    s31 = np.uint64(31)
    acc = prod[:m, :w]  # P_00 < 2^53
    r = np.empty((m, w), dtype=np.uint64)
    bound = 1 << 53
    for i in range(na):
        for j in range(nb):
            if not (i or j):
                continue
            part = prod[i * m : (i + 1) * m, j * w : (j + 1) * w]
            shift = (a_bits * i + b_bits * j) % 31
            np.right_shift(part, s31, out=r)
            np.bitwise_and(part, m31, out=part)
            np.add(part, r, out=part)  # < 2^31 + 2^22 < 2^32
            np.left_shift(part, np.uint64(shift), out=part)  # < 2^(32 + shift)
            np.add(acc, part, out=acc)
            bound += 1 << (32 + shift)
    # bound < 2^64 with at most 4 blocks. A fold (x & M) + (x >> 31) maps
    # x < 2^61 below 2M, where one conditional subtraction finishes.
    for _ in range(1 if bound <= 1 << 61 else 2):
        np.right_shift(acc, s31, out=r)
        np.bitwise_and(acc, m31, out=acc)
        np.add(acc, r, out=acc)
    np.subtract(acc, m31, out=r)
    np.minimum(acc, r, out=out)


def _combine_m61(
    prod: U64, *, m: int, w: int, a_limbs: tuple[int, int], b_limbs: tuple[int, int], out: U64
) -> None:
    """Recombine limb products modulo 2^61 - 1, at most 9 blocks.

    Proof: proofs_notes/limb-split-matmul-exact.md

    Since 2^61 ≡ 1, ``x * 2^s ≡ ((x << s) & M) + (x >> (61 - s))`` for
    ``0 <= s < 61`` (the low 61 bits of ``x * 2^s`` plus the bits above).
    Every ``P_ij < 2^53``; the low parts (< 2^61, at most 8 of them) and the
    high parts (< 2^53, at most 9) are summed separately, so neither sum
    reaches 2^64, then folded.
    """
    (a_bits, na), (b_bits, nb) = a_limbs, b_limbs
    m61 = np.uint64(_M61)
    s61 = np.uint64(61)
    lo = np.zeros((m, w), dtype=np.uint64)
    hi = np.array(prod[:m, :w])  # P_00 < 2^53 needs no rotation
    r = np.empty((m, w), dtype=np.uint64)
    for i in range(na):
        for j in range(nb):
            if not (i or j):
                continue
            part = prod[i * m : (i + 1) * m, j * w : (j + 1) * w]
            shift = (a_bits * i + b_bits * j) % 61
            np.left_shift(part, np.uint64(shift), out=r)
            np.bitwise_and(r, m61, out=r)
            np.add(lo, r, out=lo)  # <= 8 * (2^61 - 1) < 2^64
            np.right_shift(part, np.uint64(61 - shift), out=r)
            np.add(hi, r, out=hi)  # <= 9 * 2^53
    np.right_shift(lo, s61, out=r)
    np.bitwise_and(lo, m61, out=lo)
    np.add(lo, r, out=lo)  # < 2^61 + 8
    np.add(lo, hi, out=lo)  # < 2^61 + 8 + 9 * 2^53 < 2^62
    np.right_shift(lo, s61, out=r)
    np.bitwise_and(lo, m61, out=lo)
    np.add(lo, r, out=lo)  # < 2^61 + 2 < 2M
    np.subtract(lo, m61, out=r)
    np.minimum(lo, r, out=out)


def _split(x: U64, limb_bits: int, bits: int) -> list[U64]:
    """Non-negative limbs of ``limb_bits`` bits, least significant first."""
    mask = np.uint64((1 << limb_bits) - 1)
    return [(x >> np.uint64(limb_bits * k)) & mask for k in range(-(-bits // limb_bits))]


# --------------------------------------------------------------------- parameter sets
# Spec: spec/02-field.md#parameter-sets


class Field31(Field):
    """GF(2^31 − 1): the fast field for per-coordinate model updates."""

    __slots__ = ()
    MODULUS = _M31
    ENCODED_SIZE = 4


class Field61(Field):
    """GF(2^61 − 1): the large field for aggregates with many contributors."""

    __slots__ = ()
    MODULUS = _M61
    ENCODED_SIZE = 8


#: The named parameter sets, by name (as written in vectors and messages).
FIELDS: dict[str, type[Field]] = {"Field31": Field31, "Field61": Field61}

_BY_MODULUS: dict[int, type[Field]] = {f.MODULUS: f for f in FIELDS.values()}


def field_for_modulus(modulus: int) -> type[Field]:
    """The field with this modulus: a named one, or a new (test) field.

    Spec: spec/02-field.md#parameter-sets

    Raises:
        ParameterError: if ``modulus`` is not a supported prime.
    """
    if modulus not in _BY_MODULUS:
        cls = type(f"FieldP{modulus}", (Field,), {"MODULUS": modulus, "__slots__": ()})
        _BY_MODULUS[modulus] = cls
    return _BY_MODULUS[modulus]
