"""Test vectors of the accounting family: generate and check.

Spec: spec/08-accounting.md, spec/10-test-vectors.md#accounting-vectors

``cases()`` yields ``(relative path, object)`` pairs (``accounting/<name>.json``)
in the format of :mod:`reference.oracle.vectors`; ``check(obj, problems)``
recomputes a file's expected outputs from its inputs with this
implementation and appends one string per mismatch
(``"rdp[3]: file has 0.25, recomputed 0.2500001 (tolerance ...)"``).

Two operations: ``rdp`` (an event and its RDP curve at the file's orders)
and ``epsilon`` (an event, δ, the conversion and the sampler distance, and
the resulting ε with the order that attains it). An event is a JSON object
whose ``type`` is the spec's class name (``"GaussianEvent"``) and whose
other keys are that class's parameters, spelled as in spec/08-accounting.md;
the ``event`` of ``PoissonSampledEvent`` and ``ComposedEvent`` and the
``events`` of ``ComposedSequence`` are nested event objects.

Reals (parameters, orders, δ, RDP values, ε) are JSON numbers written with
``repr`` (the shortest text that reads back as the same binary64); counts
(``clients``, ``dimension``, ``count``) are JSON integers. Accounting uses
``log``, ``exp``, ``log1p`` and ``lgamma``, whose last bits differ between
math libraries, so real outputs are compared with :func:`close`: relative
error at most :data:`RELATIVE_TOLERANCE`, or absolute error at most
:data:`ABSOLUTE_TOLERANCE` (spec/10-test-vectors.md#accounting-vectors).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Literal

from protocol.accounting import (
    ComposedEvent,
    ComposedSequence,
    DiscreteGaussianEvent,
    DistributedDiscreteGaussianEvent,
    GaussianEvent,
    PoissonSampledEvent,
    SkellamEvent,
    epsilon,
    rdp,
)
from protocol.errors import ParameterError
from reference.oracle.format import FORMAT, Json, expect_error, make_case

FAMILY = "accounting"

#: The Rényi orders of every accounting vector. Spec: spec/10-test-vectors.md#accounting-vectors
ORDERS: tuple[float, ...] = (1.5, 2.0, 3.0, 4.0, 8.0, 16.0, 32.0, 64.0)

#: A recomputed real passes if it is within this relative error of the file's value ...
RELATIVE_TOLERANCE = 1e-9
#: ... or within this absolute error (values near 0 come out of log-sum-exp cancellations).
ABSOLUTE_TOLERANCE = 1e-12

#: The attained order of an ``epsilon`` vector is compared exactly, so the
#: generator only writes cases whose runner-up order's ε is at least this
#: much larger, relatively: far beyond any rounding difference.
ORDER_MARGIN = 1e-6


# ---------------------------------------------------------------------- events


def _real(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a JSON number; got {value!r}")
    return float(value)


def _integer(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be a JSON integer; got {value!r}")
    return value


def _keys(obj: Mapping[str, Any], expected: set[str]) -> None:
    if set(obj) != expected | {"type"}:
        raise ValueError(
            f"{obj.get('type')} takes keys {sorted(expected | {'type'})}; got {sorted(obj)}"
        )


def _gaussian(obj: Mapping[str, Any]) -> object:
    _keys(obj, {"noise_multiplier"})
    return GaussianEvent(noise_multiplier=_real(obj["noise_multiplier"], "noise_multiplier"))


def _discrete_gaussian(obj: Mapping[str, Any]) -> object:
    _keys(obj, {"sigma2", "l2_sensitivity"})
    return DiscreteGaussianEvent(
        sigma2=_real(obj["sigma2"], "sigma2"),
        l2_sensitivity=_real(obj["l2_sensitivity"], "l2_sensitivity"),
    )


def _distributed_discrete_gaussian(obj: Mapping[str, Any]) -> object:
    _keys(obj, {"sigma2", "clients", "dimension", "l2_sensitivity", "l1_sensitivity"})
    return DistributedDiscreteGaussianEvent(
        sigma2=_real(obj["sigma2"], "sigma2"),
        clients=_integer(obj["clients"], "clients"),
        dimension=_integer(obj["dimension"], "dimension"),
        l2_sensitivity=_real(obj["l2_sensitivity"], "l2_sensitivity"),
        l1_sensitivity=_real(obj["l1_sensitivity"], "l1_sensitivity"),
    )


def _skellam(obj: Mapping[str, Any]) -> object:
    _keys(obj, {"variance", "l2_sensitivity", "l1_sensitivity"})
    return SkellamEvent(
        variance=_real(obj["variance"], "variance"),
        l2_sensitivity=_real(obj["l2_sensitivity"], "l2_sensitivity"),
        l1_sensitivity=_real(obj["l1_sensitivity"], "l1_sensitivity"),
    )


def _poisson_sampled(obj: Mapping[str, Any]) -> object:
    _keys(obj, {"event", "sampling_rate"})
    return PoissonSampledEvent(
        event=event_from(obj["event"]),
        sampling_rate=_real(obj["sampling_rate"], "sampling_rate"),
    )


def _composed(obj: Mapping[str, Any]) -> object:
    _keys(obj, {"event", "count"})
    return ComposedEvent(event=event_from(obj["event"]), count=_integer(obj["count"], "count"))


def _sequence(obj: Mapping[str, Any]) -> object:
    _keys(obj, {"events"})
    items = obj["events"]
    if not isinstance(items, list):
        raise TypeError(f"events must be a JSON array; got {items!r}")
    return ComposedSequence(events=tuple(event_from(e) for e in items))


#: How each event type is read from JSON, by its spec name.
#: Spec: spec/10-test-vectors.md#accounting-vectors
EVENT_READERS: Mapping[str, Callable[[Mapping[str, Any]], object]] = {
    "GaussianEvent": _gaussian,
    "DiscreteGaussianEvent": _discrete_gaussian,
    "DistributedDiscreteGaussianEvent": _distributed_discrete_gaussian,
    "SkellamEvent": _skellam,
    "PoissonSampledEvent": _poisson_sampled,
    "ComposedEvent": _composed,
    "ComposedSequence": _sequence,
}


def event_from(obj: object) -> object:
    """The event a JSON event object describes.

    Spec: spec/10-test-vectors.md#accounting-vectors

    Pre-conditions:
        - ``obj`` is a JSON object whose ``type`` is a key of :data:`EVENT_READERS`
          and whose other keys are exactly that event's parameters
    Raises:
        ParameterError: if ``type`` names no event, or a parameter is invalid
            (spec/08-accounting.md#events).
        TypeError: if ``obj`` or a parameter has the wrong JSON type.
        ValueError: if the keys are not the event's parameters.
    """
    if not isinstance(obj, dict):
        raise TypeError(f"an event must be a JSON object; got {obj!r}")
    kind = obj.get("type")
    reader = EVENT_READERS.get(kind) if isinstance(kind, str) else None
    if reader is None:
        raise ParameterError(f"event type must be one of {sorted(EVENT_READERS)}; got {kind!r}")
    return reader(obj)


def _orders_from(obj: Mapping[str, Any]) -> list[float]:
    items = obj["orders"]
    if not isinstance(items, list):
        raise TypeError(f"orders must be a JSON array; got {items!r}")
    return [_real(a, "order") for a in items]


def _conversion_from(obj: Mapping[str, Any]) -> Literal["tight", "classic"]:
    value = obj["conversion"]
    if value == "tight":
        return "tight"
    if value == "classic":
        return "classic"
    raise ParameterError(f"conversion must be 'tight' or 'classic'; got {value!r}")


def run_rdp(obj: Mapping[str, Any]) -> list[float]:
    """The RDP curve an ``rdp`` vector's inputs give.

    Spec: spec/08-accounting.md#events
    """
    return rdp(event_from(obj["event"]), _orders_from(obj))


def run_epsilon(obj: Mapping[str, Any]) -> tuple[float, float]:
    """The ``(epsilon, order)`` an ``epsilon`` vector's inputs give.

    Spec: spec/08-accounting.md#conversion
    """
    result = epsilon(
        event_from(obj["event"]),
        delta=_real(obj["delta"], "delta"),
        orders=_orders_from(obj),
        conversion=_conversion_from(obj),
        sampler_distance=_real(obj["sampler_distance"], "sampler_distance"),
    )
    return result.epsilon, result.order


# ---------------------------------------------------------------------- generation


def _case(operation: str, **body: Any) -> Json:
    return make_case(FAMILY, operation, **body)


def _finite(values: Sequence[float], where: str) -> list[float]:
    # JSON has no inf or nan: a vector must never need them.
    assert all(math.isfinite(v) for v in values), (where, values)
    return [float(v) for v in values]


def _gauss(z: float) -> Json:
    return {"type": "GaussianEvent", "noise_multiplier": z}


def _skellam_json(variance: float, l2: float, l1: float) -> Json:
    return {
        "type": "SkellamEvent",
        "variance": variance,
        "l2_sensitivity": l2,
        "l1_sensitivity": l1,
    }


def _sampled(event: Json, q: float) -> Json:
    return {"type": "PoissonSampledEvent", "event": event, "sampling_rate": q}


def _composed_json(event: Json, count: int) -> Json:
    return {"type": "ComposedEvent", "event": event, "count": count}


_DDG: Json = {
    "type": "DistributedDiscreteGaussianEvent",
    "sigma2": 1.0,
    "clients": 10,
    "dimension": 1000,
    "l2_sensitivity": 2.0,
    "l1_sensitivity": 4.0,
}
_DG: Json = {"type": "DiscreteGaussianEvent", "sigma2": 16.0, "l2_sensitivity": 2.0}
_SGM: Json = _sampled(_gauss(1.0), 0.01)

#: name -> event of the ``rdp`` vectors.
_RDP_CASES: tuple[tuple[str, Json], ...] = (
    ("rdp_gaussian", _gauss(1.1)),
    ("rdp_discrete_gaussian", _DG),
    ("rdp_distributed_discrete_gaussian", _DDG),
    # λ = 20 is small enough that the Skellam bound's min switches branch at α = 64.
    ("rdp_skellam", _skellam_json(20.0, 3.0, 9.0)),
    ("rdp_poisson_gaussian", _SGM),
    ("rdp_poisson_skellam", _sampled(_skellam_json(400.0, 1.0, 4.0), 0.05)),
    ("rdp_composed_poisson_gaussian", _composed_json(_SGM, 1000)),
    (
        "rdp_sequence",
        {
            "type": "ComposedSequence",
            "events": [_gauss(2.0), _sampled(_DG, 0.1), _composed_json(_DDG, 3)],
        },
    ),
)

#: name -> (event, delta, conversion, sampler_distance) of the ``epsilon`` vectors.
_EPSILON_CASES: tuple[tuple[str, Json, float, str, float], ...] = (
    ("epsilon_gaussian_tight", _gauss(1.1), 1e-5, "tight", 0.0),
    ("epsilon_composed_poisson_gaussian_tight", _composed_json(_SGM, 1000), 1e-6, "tight", 0.0),
    ("epsilon_composed_poisson_gaussian_classic", _composed_json(_SGM, 1000), 1e-6, "classic", 0.0),
    (
        "epsilon_skellam_sampler_distance_tight",
        _composed_json(_skellam_json(400.0, 1.0, 4.0), 10),
        1e-5,
        "tight",
        1e-7,
    ),
    ("epsilon_ddg_sampler_distance_classic", _DDG, 1e-5, "classic", 1e-7),
)

#: name -> (operation, body) of the negative cases; each MUST raise ParameterError.
_BAD_CASES: tuple[tuple[str, str, Json], ...] = (
    ("rdp_bad_negative_variance", "rdp", {"event": _skellam_json(-4.0, 1.0, 1.0)}),
    ("rdp_bad_sampling_rate_above_one", "rdp", {"event": _sampled(_gauss(1.0), 1.5)}),
    ("rdp_bad_zero_clients", "rdp", {"event": dict(_DDG, clients=0)}),
    ("rdp_bad_order_one", "rdp", {"event": _gauss(1.0), "orders": [1.0, 2.0]}),
    ("rdp_bad_unknown_event", "rdp", {"event": {"type": "LaplaceEvent", "scale": 1.0}}),
    (
        "epsilon_bad_delta_one",
        "epsilon",
        {"event": _gauss(1.0), "delta": 1.0, "conversion": "tight", "sampler_distance": 0.0},
    ),
    (
        "epsilon_bad_sampler_distance_uses_up_delta",
        "epsilon",
        # s < δ, but (1 + e^0)·s > δ already at ε = 0.
        {"event": _gauss(1.0), "delta": 1e-5, "conversion": "tight", "sampler_distance": 6e-6},
    ),
)


def _attained_order_is_unambiguous(body: Json, eps: float, order: float) -> None:
    """Generator invariant: no other order comes within ORDER_MARGIN of the best ε."""
    single: dict[float, float] = {}
    for a in ORDERS:
        if a == order:
            continue
        try:
            single[a] = run_epsilon(dict(body, orders=[a]))[0]
        except ParameterError:
            # The sampler distance uses up δ at this order's (large) ε.
            single[a] = math.inf
    runner_up = min(single.values())
    assert eps > 0 and runner_up > eps * (1 + ORDER_MARGIN), (body, eps, order, single)


def cases() -> Iterator[tuple[str, Json]]:
    """Every accounting vector, as ``(path relative to the vectors directory, object)``."""
    orders = list(ORDERS)
    for name, event in _RDP_CASES:
        body: Json = {"event": event, "orders": orders}
        body["rdp"] = _finite(run_rdp(body), name)
        yield f"accounting/{name}.json", _case("rdp", **body)
    for name, event, delta, conversion, distance in _EPSILON_CASES:
        body = {
            "event": event,
            "orders": orders,
            "delta": delta,
            "conversion": conversion,
            "sampler_distance": distance,
        }
        eps, order = run_epsilon(body)
        _attained_order_is_unambiguous(body, eps, order)
        body["epsilon"], body["order"] = _finite([eps, order], name)
        yield f"accounting/{name}.json", _case("epsilon", **body)
    for name, operation, bad in _BAD_CASES:
        body = {"orders": orders, **bad, "error": "ParameterError"}
        yield f"accounting/{name}.json", _case(operation, **body)


# ---------------------------------------------------------------------- checking


def close(expected: float, actual: float) -> bool:
    """Whether a recomputed real ``actual`` matches the file's ``expected``.

    Spec: spec/10-test-vectors.md#accounting-vectors
    """
    diff = abs(expected - actual)
    return diff <= ABSOLUTE_TOLERANCE or diff <= RELATIVE_TOLERANCE * max(
        abs(expected), abs(actual)
    )


def _reals(problems: list[str], where: str, expected: object, actual: Sequence[float]) -> None:
    if not isinstance(expected, list) or len(expected) != len(actual):
        problems.append(f"{where}: file has {expected!r}, recomputed {len(actual)} values")
        return
    for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
        _real_eq(problems, f"{where}[{i}]", e, a)


def _real_eq(problems: list[str], where: str, expected: object, actual: float) -> None:
    value = _real(expected, where)
    if not close(value, actual):
        problems.append(
            f"{where}: file has {value!r}, recomputed {actual!r} "
            f"(tolerance: relative {RELATIVE_TOLERANCE}, absolute {ABSOLUTE_TOLERANCE})"
        )


def check(obj: Mapping[str, Any], problems: list[str]) -> None:
    """Recompute one accounting vector; append a string per mismatch to ``problems``.

    Spec: spec/10-test-vectors.md#accounting-vectors

    Malformed inputs raise ``KeyError``, ``TypeError`` or ``ValueError``
    (the caller reports them); an unexpected typed error propagates too.
    """
    if obj.get("format") != FORMAT:
        problems.append(f"format: expected {FORMAT!r}, got {obj.get('format')!r}")
        return
    if obj.get("family") != FAMILY:
        problems.append(f"family: expected {FAMILY!r}, got {obj.get('family')!r}")
        return
    op = obj["operation"]
    if op == "rdp":
        if "error" in obj:
            expect_error(obj, lambda: run_rdp(obj), problems)
            return
        _reals(problems, "rdp", obj["rdp"], run_rdp(obj))
    elif op == "epsilon":
        if "error" in obj:
            expect_error(obj, lambda: run_epsilon(obj), problems)
            return
        eps, order = run_epsilon(obj)
        _real_eq(problems, "epsilon", obj["epsilon"], eps)
        if _real(obj["order"], "order") != order:
            problems.append(f"order: file has {obj['order']!r}, recomputed {order!r}")
    else:
        problems.append(f"operation: unknown accounting operation {op!r}")
