"""Hypothesis strategies shared by the test suite (house style, rule 9).

Field elements are drawn as Python ints, with the values where modular
arithmetic goes wrong (0, 1, p - 1, (p - 1)/2, ...) mixed in, so that the
tests can build the inputs of the code under test and of its oracles from
the same ints.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st

from protocol.field import Field, Field31, Field61, field_for_modulus
from protocol.xof import Tag

# Small primes, for exhaustive and brute-force checks and to exercise the
# generic (non-Mersenne) reduction.
F11 = field_for_modulus(11)
F13 = field_for_modulus(13)
F257 = field_for_modulus(257)
F65537 = field_for_modulus(65537)

NAMED_FIELDS: tuple[type[Field], ...] = (Field31, Field61)
SMALL_FIELDS: tuple[type[Field], ...] = (F11, F13, F257, F65537)
ALL_FIELDS: tuple[type[Field], ...] = NAMED_FIELDS + SMALL_FIELDS

SEED_SIZE = 32


def edge_values(field: type[Field]) -> list[int]:
    """Elements at which reductions and carries tend to break.

    0, 1, 2, p - 2, p - 1, (p - 1)/2, (p + 1)/2, and the largest all-ones
    bit patterns below p (limbs of maximal value in a split product).
    """
    p = field.MODULUS
    cands = [0, 1, 2, p - 2, p - 1, (p - 1) // 2, (p + 1) // 2]
    bits = (p - 1).bit_length()
    cands += [(1 << b) - 1 for b in (bits - 1, bits)]
    cands += [1 << b for b in (bits - 2, bits - 1)]
    return sorted({v for v in cands if 0 <= v < p})


fields = st.sampled_from(ALL_FIELDS)
small_fields = st.sampled_from(SMALL_FIELDS)
named_fields = st.sampled_from(NAMED_FIELDS)


def elements(field: type[Field]) -> st.SearchStrategy[int]:
    """One element of ``field``: an edge value or a uniform one."""
    return st.one_of(st.sampled_from(edge_values(field)), st.integers(0, field.MODULUS - 1))


def element_lists(
    field: type[Field], *, min_size: int = 0, max_size: int = 40
) -> st.SearchStrategy[list[int]]:
    return st.lists(elements(field), min_size=min_size, max_size=max_size)


@st.composite
def field_and_vectors(
    draw: st.DrawFn, *, count: int = 2, min_size: int = 0, max_size: int = 40
) -> tuple[type[Field], list[list[int]]]:
    """A field and ``count`` equal-length vectors of its elements (as ints)."""
    field = draw(fields)
    size = draw(st.integers(min_size, max_size))
    vecs = [draw(element_lists(field, min_size=size, max_size=size)) for _ in range(count)]
    return field, vecs


@st.composite
def field_and_matrices(
    draw: st.DrawFn, *, max_dim: int = 12
) -> tuple[type[Field], list[list[int]], list[list[int]]]:
    """A field and matrices ``(m×n)``, ``(n×d)`` as nested int lists (``n >= 1``)."""
    field = draw(fields)
    m = draw(st.integers(1, max_dim))
    n = draw(st.integers(1, max_dim))
    d = draw(st.integers(1, max_dim))
    a = [draw(element_lists(field, min_size=n, max_size=n)) for _ in range(m)]
    b = [draw(element_lists(field, min_size=d, max_size=d)) for _ in range(n)]
    return field, a, b


def signed_values(field: type[Field]) -> st.SearchStrategy[int]:
    """Integers in the signed range ``[-(p-1)/2, (p-1)/2]``, ends included."""
    half = (field.MODULUS - 1) // 2
    return st.one_of(st.sampled_from([0, 1, -1, half, -half]), st.integers(-half, half))


seeds = st.binary(min_size=SEED_SIZE, max_size=SEED_SIZE)

#: Printable ASCII, as the spec allows in a tag's purpose.
PRINTABLE_ASCII = "".join(chr(c) for c in range(0x20, 0x7F))

tag_purposes = st.text(alphabet=PRINTABLE_ASCII, min_size=1, max_size=255)
tag_params = st.lists(
    st.one_of(st.sampled_from([0, 1, 255, 256, (1 << 64) - 1]), st.integers(0, (1 << 64) - 1)),
    max_size=6,
).map(tuple)
tags = st.builds(Tag, purpose=tag_purposes, params=tag_params)

#: Bounds at which masked rejection sampling changes width or acceptance rate.
SPECIAL_BOUNDS = (
    1,
    2,
    3,
    11,
    255,
    256,
    257,
    (1 << 16) + 1,
    (1 << 24) - 1,
    (1 << 31) - 1,
    1 << 32,
    (1 << 32) + 1,
    (1 << 40) + 1,
    (1 << 61) - 1,
    (1 << 63) + 1,
    (1 << 64) - 1,
    1 << 64,
)
vector_bounds = st.one_of(st.sampled_from(SPECIAL_BOUNDS), st.integers(1, 1 << 64))
big_bounds = st.one_of(
    st.sampled_from([(1 << 64) + 1, (1 << 65) - 1, 1 << 100, (1 << 128) + 1, 3**80]),
    st.integers((1 << 64) + 1, 1 << 200),
)


@dataclass(frozen=True)
class ShamirCase:
    """A Shamir parameter set, holder points and a secret length."""

    field: type[Field]
    threshold: int
    packing: int
    points: tuple[int, ...]
    length: int

    @property
    def min_shares(self) -> int:
        return self.threshold + self.packing

    @property
    def num_polynomials(self) -> int:
        return -(-self.length // self.packing)


def valid_points(
    field: type[Field], *, threshold: int, packing: int, count: int
) -> st.SearchStrategy[list[int]]:
    """``count`` distinct holder points, off 0 and the reserved points ``-1 .. -(t+k-1)``."""
    p = field.MODULUS
    top = p - (threshold + packing)  # p - 1 .. p - (t+k-1) are reserved
    small = st.integers(1, min(top, 50))
    near_reserved = st.integers(max(1, top - 50), top)
    return st.lists(
        st.one_of(small, near_reserved, st.integers(1, top)),
        min_size=count,
        max_size=count,
        unique=True,
    )


@st.composite
def shamir_cases(
    draw: st.DrawFn,
    *,
    field_strategy: st.SearchStrategy[type[Field]] = fields,
    max_threshold: int = 4,
    max_packing: int = 3,
    extra_shares: int = 4,
    max_length: int = 9,
    min_extra: int = 0,
) -> ShamirCase:
    """A parameter set with ``t + k + min_extra <= n <= t + k + extra_shares`` holders."""
    field = draw(field_strategy)
    p = field.MODULUS
    t = draw(st.integers(1, max_threshold))
    k = draw(st.integers(1, max_packing))
    # Need n >= t + k + min_extra holders among the p - (t + k) usable points.
    if p - (t + k) < t + k + min_extra:
        t, k = 1, 1
    n_max = min(t + k + extra_shares, p - (t + k))
    n = draw(st.integers(t + k + min_extra, max(n_max, t + k + min_extra)))
    points = draw(valid_points(field, threshold=t, packing=k, count=n))
    length = draw(st.integers(1, max_length))
    return ShamirCase(field, t, k, tuple(points), length)


# --- protocol (issue 5) ---------------------------------------------------------
# Strategies and builders for the round's messages and parameters
# (spec/09-protocol.md). They build messages through the models' own
# constructors, so every drawn message is valid as a *message*; whether a
# machine accepts it is what the tests check.

from fractions import Fraction  # noqa: E402

from protocol.messages import (  # noqa: E402
    REASONS,
    Abort,
    Decision,
    Message,
    PartialSum,
    Report,
    Share,
)
from protocol.noise_plan import plan  # noqa: E402
from protocol.params import RoundParams  # noqa: E402
from protocol.xof import as_seed  # noqa: E402

#: The session of every round the protocol tests build.
PROTOCOL_SESSION = as_seed(bytes(range(100, 132)))


def round_params(
    *,
    n: int,
    threshold: int = 1,
    packing: int = 1,
    max_dropouts: int = 0,
    max_colluders: int = 0,
    min_contributors: int = 1,
    dimension: int = 1,
    field: type[Field] = Field31,
    aggregators: tuple[int, ...] | None = None,
    contributors: tuple[int, ...] | None = None,
    coordinator: int | None = None,
    mechanism: str = "skellam",
    target: Fraction = Fraction(100),
    round: int = 0,
    max_byzantine: int = 0,
    precovered: int = 0,
    backups: tuple[int, ...] = (),
) -> RoundParams:
    """A round of nodes ``1..n``; by default every node contributes and aggregates."""
    nodes = tuple(range(1, n + 1))
    contributors = nodes if contributors is None else contributors
    aggregators = nodes if aggregators is None else aggregators
    return RoundParams(
        session=PROTOCOL_SESSION,
        round=round,
        field=field,
        nodes=nodes,
        contributors=contributors,
        aggregators=aggregators,
        coordinator=aggregators[0] if coordinator is None else coordinator,
        threshold=threshold,
        packing=packing,
        dimension=dimension,
        noise=plan(
            mechanism=mechanism,
            target_variance=target,
            contributors=len(contributors),
            max_dropouts=max_dropouts,
            max_colluders=max_colluders,
            precovered=precovered,
        ),
        min_contributors=min_contributors,
        max_byzantine=max_byzantine,
        backups=backups,
    )


@st.composite
def small_round_params(draw: st.DrawFn, *, max_n: int = 5, min_n: int = 2) -> RoundParams:
    """A round of ``min_n..max_n`` nodes in Field31 with every threshold that fits."""
    n = draw(st.integers(min_n, max_n))
    threshold = draw(st.integers(1, n - 1))
    max_dropouts = draw(st.integers(0, n - 1))
    max_colluders = draw(st.integers(0, n - 1 - max_dropouts))
    min_contributors = draw(st.integers(1, n))
    dimension = draw(st.integers(1, 2))
    return round_params(
        n=n,
        threshold=threshold,
        max_dropouts=max_dropouts,
        max_colluders=max_colluders,
        min_contributors=min_contributors,
        dimension=dimension,
    )


ANY_ROUND = st.integers(0, (1 << 53) - 1)
ANY_NODE_ID = st.integers(1, (1 << 32) - 1)
ANY_STAGE = st.integers(0, (1 << 16) - 1)
hex32 = st.binary(min_size=32, max_size=32).map(bytes.hex)
#: Every value a message's element may take: canonical decimals of up to 20 digits.
element_strings = st.one_of(
    st.sampled_from(["0", "1", str(Field31.MODULUS - 1), str(Field31.MODULUS), str((1 << 64) - 1)]),
    st.integers(0, (1 << 64) - 1).map(str),  # a message holds values below 2^64
)


def id_lists(
    ids: st.SearchStrategy[int], *, min_size: int = 0
) -> st.SearchStrategy[tuple[int, ...]]:
    """Strictly increasing tuples of node ids, as the messages require."""
    return st.lists(ids, min_size=min_size, max_size=8, unique=True).map(lambda v: tuple(sorted(v)))


@st.composite
def messages(
    draw: st.DrawFn,
    *,
    kinds: tuple[type[Message], ...] = (Share, Report, Decision, PartialSum, Abort),
    sessions: st.SearchStrategy[str] = hex32,
    rounds: st.SearchStrategy[int] = ANY_ROUND,
    ids: st.SearchStrategy[int] = ANY_NODE_ID,
    stages: st.SearchStrategy[int] = ANY_STAGE,
    values: st.SearchStrategy[str] = element_strings,
    max_values: int = 6,
) -> Message:
    """One message of any kind, every field drawn from its whole domain (or the given one)."""
    kind = draw(st.sampled_from(kinds))
    header: dict[str, object] = {
        "session": draw(sessions),
        "round": draw(rounds),
        "sender": draw(ids),
        "recipient": draw(ids),
        "role": draw(st.sampled_from(kind.ROLES)),
    }
    vals = st.lists(values, min_size=1, max_size=max_values).map(tuple)
    body: dict[str, object]
    if kind is Share:
        body = {"stage": draw(stages), "values": draw(vals)}
    elif kind is Report:
        body = {"stage": draw(stages), "holds": draw(id_lists(ids))}
    elif kind is Decision:
        body = {
            "stage": draw(stages),
            "contributors": draw(id_lists(ids, min_size=1)),
            "aggregators": draw(id_lists(ids, min_size=1)),
            "final": draw(st.booleans()),
        }
    elif kind is PartialSum:
        body = {
            "stage": draw(stages),
            "contributors": draw(id_lists(ids, min_size=1)),
            "aggregators": draw(id_lists(ids, min_size=1)),
            "values": draw(vals),
        }
    else:
        body = {"reason": draw(st.sampled_from(REASONS))}
    return kind(**header, **body)  # type: ignore[arg-type]


# ------------------------------------------------------------------ simulated rounds

from protocol.xof import derive_seed  # noqa: E402
from reference.oracle.format import case_seed  # noqa: E402
from reference.sim.scenarios import build  # noqa: E402
from reference.sim.simulate import Network, Scenario  # noqa: E402


@st.composite
def sim_scenarios(
    draw: st.DrawFn, *, purpose: str, max_nodes: int = 8, crashes: bool = True
) -> Scenario:
    """Small simulated rounds on a hostile network, with crashes and colluders.

    ``purpose`` names the test's own stream of master seeds
    (``derive_seed(case_seed(0), Tag(purpose, (i,)))``).
    """
    n = draw(st.integers(3, max_nodes))
    t = draw(st.integers(1, (n - 1) // 2))
    big_d = draw(st.integers(0, n - t - 1))
    colluders = draw(st.integers(0, n - big_d - 1))
    fractions = st.sampled_from([Fraction(0), Fraction(1, 30), Fraction(1, 10)])
    network = Network(drop=draw(fractions), late=draw(fractions), duplicate=draw(fractions))
    crashed = (
        draw(st.dictionaries(st.integers(1, n), st.integers(0, 3 * n), max_size=2))
        if crashes
        else {}
    )
    master = derive_seed(case_seed(0), Tag(purpose, (draw(st.integers(0, 2**32)),)))
    return build(
        master=master,
        nodes=n,
        threshold=t,
        max_dropouts=big_d,
        colluders=colluders,
        dimension=draw(st.integers(1, 3)),
        network=network,
        crashes=crashed,
        mechanism=draw(st.sampled_from(["skellam", "dgauss"])),
    )
