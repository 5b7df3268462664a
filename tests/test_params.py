"""Round parameters: validation, bounds and the JSON form.

Spec: spec/09-protocol.md#parameters
"""

from __future__ import annotations

import copy
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.errors import ParameterError
from protocol.params import MAX_ROUND, RoundParams, select_committee
from protocol.xof import as_seed
from tests.strategies import round_params, small_round_params


@given(small_round_params())
def test_params_json_round_trip(p: RoundParams) -> None:
    assert RoundParams.from_json(p.to_json()) == p
    assert RoundParams.from_json(copy.deepcopy(p.to_json())).to_json() == p.to_json()


def _base() -> dict[str, Any]:
    return round_params(n=4, threshold=1, max_dropouts=1).to_json()


@pytest.mark.parametrize(
    ("key", "value", "why"),
    [
        ("modulus", "02147483647", "canonical decimal"),
        ("modulus", "²", "canonical decimal"),
        ("modulus", 2147483647, "canonical decimal"),
        ("session", "AB" * 32, "lower-case hex"),
        ("nodes", "1234", "list of node ids"),
        ("nodes", [1, 2, 2, 3], "strictly increasing"),
        ("nodes", [1, 2, 3, 1 << 32], r"2\^32"),
        ("contributors", [1, 2, True], "node ids"),
        ("round", 1 << 53, "round"),
        ("round", -1, "round"),
        ("coordinator", True, "coordinator"),
        ("coordinator", 9, "coordinator"),
    ],
)
def test_params_json_refuses_bad_values_naming_them(key: str, value: object, why: str) -> None:
    obj = _base()
    obj[key] = value
    with pytest.raises(ParameterError, match=why):
        RoundParams.from_json(obj)


@pytest.mark.parametrize("text", ["10.0", "+3", "1e3", "0", "1/0", "-5", "3/06", 100])
def test_params_json_refuses_non_canonical_target_variance(text: object) -> None:
    obj = _base()
    obj["noise"]["target_variance"] = text
    with pytest.raises(ParameterError, match="target_variance"):
        RoundParams.from_json(obj)


def test_params_json_refuses_missing_or_extra_keys() -> None:
    obj = _base()
    del obj["window"]
    with pytest.raises(ParameterError, match="missing \\['window'\\]"):
        RoundParams.from_json(obj)
    obj = _base()
    obj["extra"] = 1
    with pytest.raises(ParameterError, match="unexpected \\['extra'\\]"):
        RoundParams.from_json(obj)


def test_the_largest_round_and_dropout_bound_are_accepted() -> None:
    assert round_params(n=3, round=MAX_ROUND).round == MAX_ROUND
    with pytest.raises(ParameterError, match="round"):
        round_params(n=3, round=MAX_ROUND + 1)


def test_committee_is_a_deterministic_sample_of_the_nodes() -> None:
    session = as_seed(bytes(32))
    nodes = tuple(range(1, 21))
    drawn = select_committee(session=session, round=3, nodes=nodes, size=7)
    assert len(set(drawn)) == 7 and set(drawn) <= set(nodes)
    assert drawn == select_committee(session=session, round=3, nodes=nodes, size=7)
    # Different rounds draw different committees (all 20 rounds agreeing would be 1 in C(20,7)^19).
    others = {select_committee(session=session, round=r, nodes=nodes, size=7) for r in range(20)}
    assert len(others) > 1
    # A prefix property: the first k of a larger draw are the smaller draw.
    assert select_committee(session=session, round=3, nodes=nodes, size=9)[:7] == drawn
    with pytest.raises(ParameterError, match="committee size"):
        select_committee(session=session, round=3, nodes=nodes, size=21)


# ---------------------------------------------------------------- noise sources, receivers
# Spec: spec/09-protocol.md#noise-sources


def _with(p: RoundParams, **changes: Any) -> RoundParams:
    fields = {k: getattr(p, k) for k in RoundParams.__dataclass_fields__}
    return RoundParams(**(fields | changes))


def test_default_sources_and_receivers_are_everyone_and_stay_out_of_the_json() -> None:
    p = round_params(n=5, max_dropouts=1)
    assert p.sources == p.contributors and p.receiving == p.nodes
    assert "noise_sources" not in p.to_json() and "receivers" not in p.to_json()
    assert "precovered" not in p.to_json()["noise"]


def test_fewer_sources_and_receivers_round_trip_through_json() -> None:
    from protocol.noise_plan import plan  # noqa: PLC0415

    p = round_params(n=6, max_dropouts=1, max_colluders=1)
    noise = plan(mechanism="skellam", target_variance=p.noise.target_variance, contributors=4,
                 max_dropouts=1, max_colluders=1, precovered=1)  # fmt: skip
    q = _with(p, noise=noise, noise_sources=(1, 2, 4, 6), receivers=(2,))
    obj = q.to_json()
    assert obj["noise_sources"] == [1, 2, 4, 6] and obj["receivers"] == [2]
    assert obj["noise"]["precovered"] == 1
    back = RoundParams.from_json(copy.deepcopy(obj))
    assert back.to_json() == obj and back.sources == (1, 2, 4, 6) and back.receiving == (2,)
    assert back.source_dropouts((1, 2, 3)) == 2


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"noise_sources": (1, 2, 9)}, "noise_sources must be contributors"),
        ({"noise_sources": (2, 1, 3)}, "strictly increasing"),
        ({"noise_sources": ()}, "must not be empty"),
        ({"receivers": (7,)}, "receivers must be nodes"),
        ({"noise_sources": (1, 2, 3)}, "noise plan's contributors"),
    ],
)
def test_bad_sources_and_receivers_are_refused_by_name(changes: dict[str, Any], match: str) -> None:
    p = round_params(n=6, max_dropouts=1)
    with pytest.raises(ParameterError, match=match):
        _with(p, **changes)


def test_fewer_sources_without_pre_covering_is_refused() -> None:
    """Such a round has no top-up stage, so its plan must cover D dropouts up front."""
    from protocol.noise_plan import plan  # noqa: PLC0415

    p = round_params(n=6, max_dropouts=2)
    noise = plan(mechanism="skellam", target_variance=Fraction(50), contributors=4,
                 max_dropouts=2, max_colluders=0, precovered=1)  # fmt: skip
    with pytest.raises(ParameterError, match="pre-cover every dropout"):
        _with(p, noise=noise, noise_sources=(1, 2, 3, 4))


@given(st.integers(1, 40), st.data())
def test_a_longer_committee_draw_extends_a_shorter_one(n: int, data: st.DataObject) -> None:
    """The first m nodes of a draw of size n are the draw of size m (a partial Fisher–Yates
    shuffle only swaps later positions afterwards): noise sources and receivers taken as
    prefixes of the full draw start with the committee (spec/12-transcripts.md#scenario)."""
    m = data.draw(st.integers(1, n))
    session = as_seed(bytes(range(32)))
    nodes = tuple(range(1, n + 1))
    full = select_committee(session=session, round=7, nodes=nodes, size=n)
    assert full[:m] == select_committee(session=session, round=7, nodes=nodes, size=m)
    assert sorted(full) == list(nodes)


def test_checking_the_aggregators_points_builds_no_share_matrix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Validating a round's aggregators is linear in their number: no Lagrange matrix
    (which made a header of 4000 aggregators take minutes to check), the same refusals."""
    import protocol.shamir as shamir_module  # noqa: PLC0415

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("RoundParams built a share matrix")

    monkeypatch.setattr(shamir_module, "lagrange_matrix", refuse)
    from tests.strategies import round_params  # noqa: PLC0415

    big = round_params(n=300, threshold=150)
    assert len(big.aggregators) == 300
    from protocol.field import Field31  # noqa: PLC0415
    from protocol.shamir import Shamir  # noqa: PLC0415

    sharing = Shamir(Field31, threshold=1, packing=1)
    for points, words in (([1, Field31.MODULUS - 1], "secret or randomness point"),
                          ([1, 1], "appears twice"), ([1], "at least t \\+ k")):  # fmt: skip
        with pytest.raises(ParameterError, match=words):
            sharing.check_points(points)
