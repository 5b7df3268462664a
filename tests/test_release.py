"""The accountant's record of a release: honest noise only, the plan's worst case.

Spec: spec/09-protocol.md#accounting-a-release
"""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.accounting import (
    DistributedDiscreteGaussianEvent,
    SkellamEvent,
    epsilon,
    realized_event,
)
from protocol.errors import LocalProtocolError
from protocol.machine import Phase, ReceiverState
from protocol.release import float_at_most, round_record
from protocol.xof import Tag, derive_seed
from reference.oracle.format import case_seed
from reference.sim.scenarios import build
from reference.sim.simulate import simulate


def _released(mechanism: str, dropouts: int, colluders: int, seed: int) -> ReceiverState:
    s = build(
        master=derive_seed(case_seed(0), Tag("tests.release", (seed,))),
        nodes=7, threshold=2, dropouts=dropouts, max_dropouts=2, colluders=colluders,
        mechanism=mechanism, target_variance=Fraction(5000, 3), dimension=2,
    )  # fmt: skip
    outcome = simulate(s)
    assert outcome.status == "released"
    state = next(
        x for x in outcome.states.values()
        if isinstance(x, ReceiverState) and x.phase is Phase.RELEASED
    )  # fmt: skip
    assert len(state.covers[1]) == 7 - dropouts if state.covers else False
    return state


@settings(max_examples=12)
@given(
    mechanism=st.sampled_from(["skellam", "dgauss"]),
    dropouts=st.integers(0, 2),
    colluders=st.integers(0, 2),
    seed=st.integers(0, 2**16),
)
def test_a_release_is_charged_by_the_plans_honest_noise_only(
    mechanism: str, dropouts: int, colluders: int, seed: int
) -> None:
    state = _released(mechanism, dropouts, colluders, seed)
    r = round_record(state, sampling_rate=1.0, l2_sensitivity=10.0, l1_sensitivity=40.0)
    target = Fraction(5000, 3)
    assert (r.contributors, r.dropouts, r.colluders) == (7 - dropouts, dropouts, colluders)
    if mechanism == "skellam":
        # (|U| − T)·s(d) = σ*² exactly, whatever d: recomputed from the definition.
        assert Fraction(r.honest_variance) <= target
        assert target - Fraction(r.honest_variance) < target * Fraction(1, 2**50)
        direct = SkellamEvent(variance=float(target), l2_sensitivity=10.0, l1_sensitivity=40.0)
    else:
        # Only the initial draws v0 = σ*²/(n − T) of the honest members count.
        v0 = target / (7 - colluders)
        honest = 7 - dropouts - colluders
        assert Fraction(r.honest_variance) <= honest * v0
        direct = DistributedDiscreteGaussianEvent(
            sigma2=float(v0), clients=honest, dimension=2, l2_sensitivity=10.0, l1_sensitivity=40.0
        )  # fmt: skip
    charged = epsilon(realized_event([r]), delta=1e-6).epsilon
    assert charged >= epsilon(direct, delta=1e-6).epsilon * (1 - 1e-12)


def test_only_a_released_round_is_charged() -> None:
    state = _released("skellam", 0, 0, 1)
    idle = ReceiverState(params=state.params, node=1)
    with pytest.raises(LocalProtocolError, match="only a released round"):
        round_record(idle, sampling_rate=1.0, l2_sensitivity=1.0, l1_sensitivity=1.0)


@given(st.fractions(min_value=Fraction(1, 10**9), max_value=Fraction(10**12)))
def test_float_at_most_never_rounds_up(x: Fraction) -> None:
    f = float_at_most(x)
    assert Fraction(f) <= x
    assert Fraction(math.nextafter(f, math.inf)) > x
