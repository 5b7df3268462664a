"""Round parameters: validation, bounds and the JSON form.

Spec: spec/09-protocol.md#parameters
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given

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
