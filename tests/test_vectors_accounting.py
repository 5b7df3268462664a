"""The accounting vectors: right by independent oracles, and checked with the documented tolerance.

Spec: spec/10-test-vectors.md#accounting-vectors, spec/08-accounting.md

Two oracles, neither of which calls protocol/accounting.py:

- dp-accounting (Google's library, version 0.6.0) where it overlaps: the
  Gaussian and Poisson-subsampled Gaussian RDP curves, composition, and the
  tight conversion;
- mpmath at 50 digits for every vector, from the formulas of section 8
  written out again here.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import mpmath
import pytest

from reference.oracle import accounting as vectors_accounting
from reference.oracle import vectors
from reference.oracle.accounting import ORDERS, close

ROOT = Path(__file__).resolve().parent.parent
FOLDER = ROOT / "spec" / "vectors" / "accounting"
TOLERANCE = 1e-9


def _load(kind: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted(FOLDER.glob("*.json")):
        obj = json.loads(path.read_text(encoding="utf-8"))
        if obj["operation"] == kind and "error" not in obj:
            out.append((path.name, obj))
    return out


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b)) if a != b else 0.0


def test_the_family_is_small_and_has_both_operations_and_negative_cases() -> None:
    names = sorted(p.name for p in FOLDER.glob("*.json"))
    assert 10 <= len(names) <= 20
    assert len(_load("rdp")) >= 6 and len(_load("epsilon")) >= 4
    assert sum("_bad_" in n for n in names) >= 5
    types: set[str] = set()

    def walk(event: Mapping[str, Any]) -> None:
        types.add(event["type"])
        for inner in [event.get("event"), *event.get("events", [])]:
            if inner is not None:
                walk(inner)

    for _, obj in _load("rdp") + _load("epsilon"):
        walk(obj["event"])
    assert types == set(vectors_accounting.EVENT_READERS)
    conversions = {(o["conversion"], o["sampler_distance"] > 0) for _, o in _load("epsilon")}
    assert conversions == {("tight", False), ("tight", True), ("classic", False), ("classic", True)}


# ------------------------------------------------------------- dp-accounting


def _dpa_curve(event: Mapping[str, Any], orders: Sequence[float]) -> list[float | None] | None:
    """dp-accounting's RDP of a Gaussian-family event where it is exact (None elsewhere);
    else None."""
    dpa = pytest.importorskip("dp_accounting", reason="dp-accounting is the test oracle")
    rdp_module = pytest.importorskip("dp_accounting.rdp")

    def to_dpa(e: Mapping[str, Any]) -> object | None:
        made: object | None = None
        if e["type"] == "GaussianEvent":
            made = dpa.GaussianDpEvent(e["noise_multiplier"])
        elif e["type"] == "PoissonSampledEvent":
            inner = to_dpa(e["event"])
            made = None if inner is None else dpa.PoissonSampledDpEvent(e["sampling_rate"], inner)
        elif e["type"] == "ComposedEvent":
            inner = to_dpa(e["event"])
            made = None if inner is None else dpa.SelfComposedDpEvent(inner, e["count"])
        return made

    dp_event = to_dpa(event)
    if dp_event is None:
        return None
    # Section 8 is exact at a fractional order of a subsampled Gaussian; there
    # dp-accounting sums |C(α,i)| and is only an upper bound, so those orders
    # are checked against mpmath (below), not here: None marks them.
    sampled = "PoissonSampledEvent" in json.dumps(event)
    out: list[float | None] = []
    for a in orders:
        if sampled and a != math.ceil(a):
            out.append(None)
            continue
        acc = rdp_module.RdpAccountant(orders=[a])
        acc.compose(dp_event)
        out.append(float(acc.rdp[0]))
    return out


def _unsampled(event: Mapping[str, Any], dpa: Any) -> object:
    """The event with every Poisson sampling removed (the cap of a fractional order)."""
    if event["type"] == "GaussianEvent":
        return dpa.GaussianDpEvent(event["noise_multiplier"])
    if event["type"] == "PoissonSampledEvent":
        return _unsampled(event["event"], dpa)
    return dpa.SelfComposedDpEvent(_unsampled(event["event"], dpa), event["count"])


def test_gaussian_rdp_vectors_agree_with_dp_accounting() -> None:
    compared = 0
    worst = 0.0
    for name, obj in _load("rdp"):
        theirs = _dpa_curve(obj["event"], obj["orders"])
        if theirs is None:
            continue
        for a, ours, their in zip(obj["orders"], obj["rdp"], theirs, strict=True):
            if their is None:
                continue
            worst = max(worst, _rel(ours, their))
            assert _rel(ours, their) <= TOLERANCE, (name, a, ours, their)
            compared += 1
    assert compared >= 3 * (len(ORDERS) - 1)  # Gaussian, subsampled, composed subsampled


def test_gaussian_epsilon_vectors_agree_with_dp_accounting() -> None:
    rdp_module = pytest.importorskip("dp_accounting.rdp")
    compared = 0
    for name, obj in _load("epsilon"):
        maybe = _dpa_curve(obj["event"], obj["orders"])
        if maybe is None or obj["sampler_distance"] != 0:
            continue
        # A fractional order of a subsampled Gaussian: the mpmath quadrature.
        curve = [
            float(_mp_rdp(obj["event"], a)) if v is None else v
            for a, v in zip(obj["orders"], maybe, strict=True)
        ]
        if obj["conversion"] == "tight":
            eps, order = rdp_module.compute_epsilon(obj["orders"], curve, obj["delta"])
        else:
            # dp-accounting has no classic conversion: Mironov 2017, Proposition 3.
            candidates = [
                (r - math.log(obj["delta"]) / (a - 1), a)
                for a, r in zip(obj["orders"], curve, strict=True)
            ]
            eps, order = min(candidates)
        assert _rel(obj["epsilon"], float(eps)) <= TOLERANCE, (name, obj["epsilon"], eps)
        assert obj["order"] == order, name
        compared += 1
    assert compared >= 3


# ------------------------------------------------------------------- mpmath

mpmath.mp.dps = 50


def _kls_tau(clients: int, sigma2: float) -> mpmath.mpf:
    s2 = mpmath.mpf(sigma2)
    return 10 * mpmath.fsum(
        mpmath.exp(-2 * mpmath.pi**2 * s2 * k / (k + 1)) for k in range(1, clients)
    )


def _mp_rdp(event: Mapping[str, Any], a: float) -> mpmath.mpf:
    """Section 8's RDP bound at order ``a``, in 50-digit arithmetic."""
    kind = event["type"]
    alpha = mpmath.mpf(a)
    if kind == "GaussianEvent":
        return alpha / (2 * mpmath.mpf(event["noise_multiplier"]) ** 2)
    if kind == "DiscreteGaussianEvent":
        return alpha * mpmath.mpf(event["l2_sensitivity"]) ** 2 / (2 * mpmath.mpf(event["sigma2"]))
    if kind == "DistributedDiscreteGaussianEvent":
        n, d = event["clients"], event["dimension"]
        s2, d2, d1 = (mpmath.mpf(event[k]) for k in ("sigma2", "l2_sensitivity", "l1_sensitivity"))
        tau, ns2 = _kls_tau(n, event["sigma2"]), n * s2
        return min(
            alpha * d2**2 / (2 * ns2) + tau * d,
            alpha / 2 * (d2**2 / ns2 + 2 * d1 * tau / mpmath.sqrt(ns2) + tau**2 * d),
            alpha / 2 * (d2 / mpmath.sqrt(ns2) + tau * mpmath.sqrt(d)) ** 2,
        )
    if kind == "SkellamEvent":
        k = math.ceil(a)
        lam, d2, d1 = (
            mpmath.mpf(event[x]) for x in ("variance", "l2_sensitivity", "l1_sensitivity")
        )
        extra = min(((2 * k - 1) * d2**2 + 6 * d1) / (4 * lam**2), 3 * d1 / (2 * lam))
        return k * d2**2 / (2 * lam) + extra
    if kind == "ComposedEvent":
        return event["count"] * _mp_rdp(event["event"], a)
    if kind == "ComposedSequence":
        return mpmath.fsum(_mp_rdp(e, a) for e in event["events"])
    assert kind == "PoissonSampledEvent", kind
    inner, q = event["event"], mpmath.mpf(event["sampling_rate"])
    k = max(2, math.ceil(a))
    if inner["type"] == "GaussianEvent" and a != k:
        # Mironov–Talwar–Zhang 2019 at a fractional order: the mixture's divergence, by quadrature.
        z = mpmath.mpf(inner["noise_multiplier"])

        def integrand(x: mpmath.mpf) -> mpmath.mpf:
            ratio = mpmath.exp((2 * x - 1) / (2 * z * z))
            return mpmath.npdf(x, 0, z) * (1 - q + q * ratio) ** alpha

        split = z * z * mpmath.log(1 / q - 1) + mpmath.mpf(1) / 2
        points = sorted({-mpmath.inf, -20 * z, mpmath.mpf(0), split, 20 * z + alpha, mpmath.inf})
        exact = mpmath.log(mpmath.quad(integrand, points)) / (alpha - 1)
        return min(exact, _mp_rdp(inner, a))
    if inner["type"] == "GaussianEvent":
        # Mironov–Talwar–Zhang 2019, exact at integer orders.
        z2 = mpmath.mpf(inner["noise_multiplier"]) ** 2
        total = mpmath.fsum(
            mpmath.binomial(k, j) * (1 - q) ** (k - j) * q**j * mpmath.exp((j * j - j) / (2 * z2))
            for j in range(k + 1)
        )
    else:
        # Zhu–Wang 2019 general upper bound.
        total = (1 - q) ** (k - 1) * (1 + (k - 1) * q)
        total += mpmath.binomial(k, 2) * q**2 * (1 - q) ** (k - 2) * mpmath.exp(_mp_rdp(inner, 2))
        total += 3 * mpmath.fsum(
            mpmath.binomial(k, ell)
            * q**ell
            * (1 - q) ** (k - ell)
            * mpmath.exp((ell - 1) * _mp_rdp(inner, ell))
            for ell in range(3, k + 1)
        )
    return min(mpmath.log(total) / (k - 1), _mp_rdp(inner, a))


def _mp_convert(
    orders: Sequence[float], curve: Sequence[mpmath.mpf], delta: mpmath.mpf, conversion: str
) -> tuple[mpmath.mpf, float]:
    best: tuple[mpmath.mpf, float] | None = None
    for a, r in zip(orders, curve, strict=True):
        alpha = mpmath.mpf(a)
        if delta**2 + mpmath.expm1(-r) > 0:
            eps = mpmath.mpf(0)
        elif conversion == "tight":
            eps = r + mpmath.log1p(-1 / alpha) - (mpmath.log(delta) + mpmath.log(alpha)) / (a - 1)
        else:
            eps = r - mpmath.log(delta) / (a - 1)
        if best is None or eps < best[0]:
            best = (eps, a)
    assert best is not None
    return max(mpmath.mpf(0), best[0]), best[1]


def _mp_epsilon(obj: Mapping[str, Any]) -> tuple[mpmath.mpf, float]:
    """ε at δ with the sampler distance charged: the fixed point ε = conv(δ − (1 + e^ε)s)."""
    orders = obj["orders"]
    curve = [_mp_rdp(obj["event"], a) for a in orders]
    delta, s = mpmath.mpf(obj["delta"]), mpmath.mpf(obj["sampler_distance"])

    def at(eps: mpmath.mpf) -> tuple[mpmath.mpf, float]:
        budget = delta - (1 + mpmath.exp(eps)) * s
        if budget <= 0:
            return mpmath.inf, orders[0]
        return _mp_convert(orders, curve, budget, obj["conversion"])

    if s == 0:
        return at(mpmath.mpf(0))
    # g(ε) = conv(δ − (1 + e^ε)s) − ε is decreasing on [0, log(δ/s − 1)), where
    # the budget runs out; bisect for its root.
    lo, hi = mpmath.mpf(0), mpmath.log(delta / s - 1)
    assert at(lo)[0] > lo
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if at(mid)[0] > mid else (lo, mid)
    return hi, at(hi)[1]


def test_every_rdp_vector_agrees_with_the_mpmath_formulas() -> None:
    for name, obj in _load("rdp"):
        for a, value in zip(obj["orders"], obj["rdp"], strict=True):
            exact = float(_mp_rdp(obj["event"], a))
            assert _rel(value, exact) <= TOLERANCE, (name, a, value, exact)


def test_every_epsilon_vector_agrees_with_the_mpmath_formulas() -> None:
    for name, obj in _load("epsilon"):
        exact, order = _mp_epsilon(obj)
        assert _rel(obj["epsilon"], float(exact)) <= TOLERANCE, (name, obj["epsilon"], exact)
        assert obj["order"] == order, name


def test_the_attained_order_wins_by_a_margin_no_rounding_can_close() -> None:
    """spec/10-test-vectors.md#accounting-vectors: the runner-up order's ε is >= 1e-6 larger."""
    for name, obj in _load("epsilon"):
        # Where the sampler distance uses up δ at an order, _mp_epsilon returns
        # log(δ/s − 1), a lower bound on that order's ε: still a valid comparison.
        others = [
            float(_mp_epsilon(dict(obj, orders=[a]))[0]) for a in obj["orders"] if a != obj["order"]
        ]
        assert min(others) > obj["epsilon"] * (1 + vectors_accounting.ORDER_MARGIN), name


def test_the_sampler_distance_changes_epsilon_by_far_more_than_the_tolerance() -> None:
    for name, obj in _load("epsilon"):
        if obj["sampler_distance"] > 0:
            without = float(_mp_epsilon(dict(obj, sampler_distance=0.0))[0])
            assert obj["epsilon"] > without * (1 + 1e-4), name


# ------------------------------------------------------------ the checker


def _check(obj: Mapping[str, Any]) -> list[str]:
    problems: list[str] = []
    vectors_accounting.check(obj, problems)
    return problems


def _one(name: str) -> dict[str, Any]:
    obj: dict[str, Any] = json.loads((FOLDER / name).read_text(encoding="utf-8"))
    return obj


def test_a_value_within_the_tolerance_passes_and_one_beyond_it_fails() -> None:
    obj = _one("rdp_poisson_skellam.json")
    nudged = [v * (1 + 1e-11) for v in obj["rdp"]]
    assert _check(dict(obj, rdp=nudged)) == []
    off = list(obj["rdp"])
    off[3] *= 1 + 1e-7
    problems = _check(dict(obj, rdp=off))
    assert len(problems) == 1 and problems[0].startswith("rdp[3]: file has")


def test_close_is_relative_with_an_absolute_floor() -> None:
    assert close(1000.0, 1000.0 * (1 + 9e-10))
    assert not close(1000.0, 1000.0 * (1 + 2e-9))
    assert close(0.0, 5e-13)
    assert not close(1e-6, 1e-6 + 2e-12)


def test_a_wrong_epsilon_or_order_fails() -> None:
    obj = _one("epsilon_skellam_sampler_distance_tight.json")
    assert _check(obj) == []
    assert _check(dict(obj, epsilon=obj["epsilon"] * 1.001))[0].startswith("epsilon:")
    assert _check(dict(obj, order=16.0))[0].startswith("order:")
    # Dropping the sampler distance is caught: it moves ε by far more than the tolerance.
    assert _check(dict(obj, sampler_distance=0.0))[0].startswith("epsilon:")


def test_a_negative_case_that_succeeds_fails_check() -> None:
    obj = _one("rdp_bad_negative_variance.json")
    assert _check(obj) == []
    fixed = dict(obj, event=dict(obj["event"], variance=4.0))
    assert _check(fixed) == ["error: expected ParameterError, but the operation succeeded"]


def test_malformed_events_are_reported_not_crashed_on(tmp_path: Path) -> None:
    obj = _one("rdp_gaussian.json")
    for i, event in enumerate(
        (
            dict(obj["event"], sigma=1.0),  # an unknown key
            dict(obj["event"], noise_multiplier="1.1"),  # a string, not a number
            {"noise_multiplier": 1.1},  # no type
        )
    ):
        path = tmp_path / f"case{i}.json"
        path.write_text(vectors.dumps(dict(obj, event=event)), encoding="utf-8")
        result = vectors.check_file(path, tmp_path)
        assert not result.ok, event
    # A missing type is an unknown event type: ParameterError, reported as malformed input.
    assert "malformed" in result.problems[0]
