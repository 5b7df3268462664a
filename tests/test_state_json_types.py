"""The state and event JSON forms decode exactly the spec's types, and refuse the rest.

Spec: spec/09-protocol.md#state-encoding

``state_from_json`` and ``event_from_json`` read what another implementation
(or a transcript) sends, so every value must be the JSON type the encoder
writes and in range: no ``1.0`` or ``true`` for a node id, no ``"7"`` for a
count, no string for a list, no ``Infinity``, and no rational string that
takes minutes to parse. Anything else is refused at once with
``LocalProtocolError`` naming the field, never with an untyped error.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from functools import cache
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.errors import LocalProtocolError
from protocol.machine import (
    State,
    event_from_json,
    event_to_json,
    state_from_json,
    state_to_json,
)
from protocol.params import RoundParams
from reference.oracle.conformance import build_requests
from reference.oracle.format import case_seed
from reference.sim.scenarios import build
from reference.sim.simulate import simulate

INF = float("inf")
#: A refusal must come at once: the slow case this guards took minutes.
REFUSAL_SECONDS = 1.0


@cache
def _final_states() -> tuple[RoundParams, tuple[State, ...]]:
    scenario = build(master=case_seed(0), nodes=4, threshold=1)
    outcome = simulate(scenario)
    states = tuple(outcome.states[k] for k in sorted(outcome.states))
    return states[0].params, states


@cache
def _recorded() -> tuple[tuple[RoundParams, dict[str, Any], dict[str, Any]], ...]:
    """The conformance harness's ``protocol.step`` (params, state, event), decodable ones."""
    out = []
    for req in build_requests():
        if req["op"] != "protocol.step":
            continue
        params = RoundParams.from_json(req["params"])
        try:
            state_from_json(params, req["state"])
            event_from_json(params, req["event"])
        except LocalProtocolError:
            continue  # a forged request the harness expects refused
        out.append((params, req["state"], req["event"]))
    return tuple(out)


def _bases() -> list[tuple[RoundParams, dict[str, Any]]]:
    """Real encoded states: a simulated round's final states, then the recorded ones."""
    params, states = _final_states()
    finals = [(params, state_to_json(s)) for s in states]
    return finals + [(p, s) for p, s, _ in _recorded()]


def _base_with(
    key: str, pred: Callable[[Any], bool] = lambda v: True
) -> tuple[RoundParams, dict[str, Any]]:
    for p, s in _bases():
        if key in s and pred(s[key]):
            return p, copy.deepcopy(s)
    raise AssertionError(f"no recorded state has {key}")


def _refused(decode: Callable[[], object], name: str) -> None:
    """``decode`` raises ``LocalProtocolError`` naming ``name``, within the time bound."""
    started = time.perf_counter()
    with pytest.raises(LocalProtocolError) as info:
        decode()
    assert time.perf_counter() - started < REFUSAL_SECONDS
    assert name in str(info.value), (name, str(info.value))


# ---------------------------------------------------------------------- round trips


def test_final_states_of_a_simulated_round_round_trip() -> None:
    params, states = _final_states()
    assert {s.role for s in states} >= {"contributor", "aggregator", "coordinator", "receiver"}
    for s in states:
        text = json.dumps(state_to_json(s))
        assert state_from_json(params, json.loads(text)) == s


def test_recorded_conformance_states_and_events_round_trip() -> None:
    assert _recorded()
    for params, obj, event in _recorded():
        assert state_to_json(state_from_json(params, obj)) == obj
        assert event_to_json(event_from_json(params, event)) == event


# ---------------------------------------------------------------------- hostile values

HOSTILE: list[tuple[str, object]] = [
    ("role", {}),
    ("role", []),
    ("role", 1),
    ("role", None),
    ("node", 1.0),
    ("node", True),
    ("node", "1"),
    ("node", 0),
    ("node", 1 << 32),
    ("node", INF),
    ("node", {}),
    ("stage", 10**30),
    ("stage", 1 << 16),
    ("stage", -1),
    ("stage", True),
    ("stage", 0.0),
    ("stage", INF),
    ("stage", float("nan")),
    ("phase", {}),
    ("phase", ["idle"]),
    ("phase", "IDLE"),
    ("reason", {}),
    ("reason", ["timeout"]),
    ("reason", "no-such-reason"),
    ("dropouts", "7"),
    ("dropouts", 1.9),
    ("dropouts", 1.0),
    ("dropouts", -4),
    ("dropouts", True),
    ("dropouts", INF),
    ("dropouts", 10**30),
    ("noise_variance", "1e100000000"),
    ("noise_variance", "1/0"),
    ("noise_variance", "0/1"),
    ("noise_variance", "2/4"),
    ("noise_variance", "3/1"),
    ("noise_variance", "-1"),
    ("noise_variance", " 1"),
    ("noise_variance", "1.5"),
    ("noise_variance", "01"),
    ("noise_variance", "9" * 100_000),
    ("noise_variance", 1),
    ("noise_variance", INF),
    ("noise_variance", None),
    ("seed", "AB" * 32),
    ("seed", "ab" * 31 + " ab"),
    ("seed", "ab" * 16),
    ("seed", "zz" * 32),
    ("seed", 7),
    ("seed", ["ab"] * 32),
    ("contribution", "123"),
    ("contribution", [1]),
    ("contribution", ["1"]),
    ("contribution", {}),
    ("expected", "xyz"),
    ("expected", [1.0]),
    ("expected", [True]),
    ("expected", [2, 1]),
    ("expected", [1, 1]),
    ("expected", [INF]),
    ("expected", None),
    ("prior", "xyz"),
    ("delivered", [0]),
    ("delivered", {}),
    ("early", "xyz"),
    ("early", [{"node": True, "values": []}]),
    ("held", [{"node": 1.0, "values": []}]),
    ("held", [{"node": 1, "values": "123"}]),
    ("held", [{"node": 1}]),
    ("reports", "xyz"),
    ("reports", [{"node": 1, "holds": "xyz"}]),
    ("reports", [{"node": 1.0, "holds": []}]),
    ("reports", [{"node": 2, "holds": []}, {"node": 1, "holds": []}]),
    ("reports", [{"node": 1, "holds": [INF]}]),
    ("reports", {"1": []}),
    ("decision", {"stage": 10**30, "contributors": [1], "aggregators": [1]}),
    ("decision", {"stage": 0, "contributors": "xyz", "aggregators": [1]}),
    ("decision", {"stage": 0, "contributors": [1], "aggregators": [1.0]}),
    ("decision", {"stage": INF, "contributors": [1], "aggregators": [1]}),
    ("decision", {"stage": 0, "contributors": [1]}),
    ("decision", [0, [1], [1]]),
    ("covers", {"stage": "0", "contributors": [1], "aggregators": [1]}),
    ("covers", "xyz"),
    ("partials", [{"node": 1, "values": "xyz"}]),
    ("partials", [{"node": 1, "values": ["1"]}]),
    ("partials", "xyz"),
    ("result", "123"),
    ("result", [1]),
    ("result", ["1"]),
    ("faulty", "xyz"),
    ("faulty", [1.5]),
]


@pytest.mark.parametrize(("key", "value"), HOSTILE, ids=[f"{k}={v!r:.30}" for k, v in HOSTILE])
def test_a_hostile_state_field_is_refused_at_once_naming_it(key: str, value: object) -> None:
    params, obj = _base_with(key)
    obj[key] = value
    _refused(lambda: state_from_json(params, obj), key)


@pytest.mark.parametrize(
    "obj",
    [
        {"type": "timeout", "stage": 1.0},
        {"type": "timeout", "stage": True},
        {"type": "timeout", "stage": INF},
        {"type": "timeout", "stage": 10**30},
        {"type": "timeout", "stage": -1},
        {"type": "timeout", "stage": "0"},
        {"type": "start", "update": None, "seed": "AB" * 32},
        {"type": "start", "update": None, "seed": 1},
        {"type": "start", "update": "123", "seed": None},
        {"type": "start", "update": [1, 2], "seed": None},
        {"type": {}, "stage": None},
    ],
)
def test_a_hostile_event_is_refused_at_once(obj: dict[str, object]) -> None:
    params, _ = _final_states()
    name = "type" if obj["type"] == {} else str(obj["type"])
    _refused(lambda: event_from_json(params, obj), name)


# ---------------------------------------------------------------------- property

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(1 << 70), max_value=1 << 70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["0", "1", "1/3", "1e100000000", "ab" * 32, "idle", "done", "timeout"]),
)
json_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.sampled_from(["node", "values", "holds", "stage", "x"]), inner, max_size=3
        ),
    ),
    max_leaves=8,
)


@given(index=st.integers(min_value=0), key_index=st.integers(min_value=0), value=json_values)
def test_a_random_field_value_is_refused_or_taken_exactly(
    index: int, key_index: int, value: object
) -> None:
    """The decoder refuses with ``LocalProtocolError``, or takes the value as it is.

    Taken means of the spec's type and in range: re-encoding the decoded state
    gives back exactly what was sent, so nothing was coerced.
    """
    bases = _bases()
    params, base = bases[index % len(bases)]
    obj = copy.deepcopy(base)
    key = sorted(obj)[key_index % len(obj)]
    obj[key] = value
    started = time.perf_counter()
    try:
        state = state_from_json(params, obj)
    except LocalProtocolError:
        assert time.perf_counter() - started < REFUSAL_SECONDS
        return
    # Compared as text: ``1 == 1.0 == True`` in Python, not in JSON.
    assert json.dumps(state_to_json(state), sort_keys=True) == json.dumps(obj, sort_keys=True)
