"""What a release is charged: the accountant's record of one released round.

Spec: spec/09-protocol.md#accounting-a-release

A receiver that reached ``RELEASED`` knows the contributor set ``U`` of the
release and the round's parameters; that is all the accountant needs. The
record counts **honest noise only**, and the worst case of it: the plan's
guarantee with ``T`` colluders among the members (spec/07-noise-plan.md#guarantee),
never the noise a simulation happened to see. So the charge does not
depend on who actually colluded, which nobody knows.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Literal

from protocol.accounting import RoundRecord
from protocol.errors import LocalProtocolError
from protocol.machine import Phase, ReceiverState

#: The accountant's name for each noise mechanism of the plan.
ACCOUNTING_MECHANISM = {"skellam": "skellam", "dgauss": "ddg"}


def round_record(
    state: ReceiverState,
    *,
    sampling_rate: float,
    l2_sensitivity: float,
    l1_sensitivity: float,
    unit: Literal["record", "node"] = "record",
) -> RoundRecord:
    """The :class:`~protocol.accounting.RoundRecord` of the release ``state`` holds.

    Spec: spec/09-protocol.md#accounting-a-release
    Proof: proofs_notes/protocol-honest-noise-only.md

    With ``n`` noise sources ``S`` (every contributor by default), ``|U ∩ S|``
    noise-source members, ``d = |S − U|`` and the plan's ``T``:
    ``contributors = |U ∩ S|``, ``dropouts = d``, ``colluders = T``, and the
    honest variance (rounded down to a float) is the plan's guaranteed
    ``(|U ∩ S| − T)·s(d) >= σ*²`` for Skellam (closed under sums, so every
    honest draw counts). For the
    discrete Gaussian a member's draws are ``v0`` and, after dropouts, a
    top-up of another parameter; a sum of discrete Gaussians of different
    parameters has no bound in section 8, so only the ``|U| − T`` initial
    draws of parameter ``v0`` are counted: ``(|U ∩ S| − T)·v0``
    (spec/08-accounting.md#realized-accounting).

    Pre-conditions:
        - ``state`` is ``RELEASED``
        - more noise-source members than ``T`` (always so: ``|U ∩ S| >= |S| − D > T``)

    Raises:
        LocalProtocolError: ``state`` has released nothing.
        ParameterError: a sensitivity or rate is invalid (from ``RoundRecord``).
    """
    if state.phase is not Phase.RELEASED or state.covers is None:
        raise LocalProtocolError(
            f"only a released round is charged; the receiver is {state.phase.value}"
        )
    p = state.params
    plan = p.noise
    # The plan counts noise sources (spec/09-protocol.md#noise-sources): the
    # members that add noise, and the sources missing from U.
    members = len(set(state.covers[1]) & set(p.sources))
    dropouts = p.source_dropouts(state.covers[1])
    colluders = plan.max_colluders
    honest = members - colluders
    if plan.mechanism == "skellam":
        variance = plan.honest_variance(dropouts)
    else:
        variance = honest * plan.initial_share_variance()
    return RoundRecord(
        contributors=members,
        dropouts=dropouts,
        colluders=colluders,
        honest_variance=float_at_most(variance),
        sampling_rate=sampling_rate,
        mechanism=ACCOUNTING_MECHANISM[plan.mechanism],
        l2_sensitivity=l2_sensitivity,
        l1_sensitivity=l1_sensitivity,
        dimension=p.dimension,
        unit=unit,
    )


def float_at_most(x: Fraction) -> float:
    """The largest binary64 value ``<= x``: rounding never overstates the noise."""
    f = float(x)
    return f if Fraction(f) <= x else math.nextafter(f, -math.inf)
