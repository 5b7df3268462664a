"""A stdio conformance harness for other implementations of sections 2-4 and 9 (one step).

Spec: spec/11-conformance.md

The harness starts an implementation as a subprocess (no shell), sends it
one JSON-lines request per operation, and compares each answer with the one
SDL's reference (``protocol/``) computes. The request set is fixed and
derived from fixed seeds, so every run sends the same requests.
"""

from __future__ import annotations

import collections
import contextlib
import json
import queue
import re
import shlex
import subprocess
import threading
from dataclasses import dataclass, field
from fractions import Fraction
from typing import IO, Any

from protocol.errors import (
    ERRORS_BY_NAME,
    EncodingError,
    ParameterError,
    ProtocolError,
    SdlError,
)
from protocol.field import Field, Field31, Field61, field_for_modulus
from protocol.machine import (
    Receive,
    Start,
    State,
    Timeout,
    event_from_json,
    event_kind,
    event_to_json,
    initial,
    output_to_json,
    state_from_json,
    state_to_json,
    step,
)
from protocol.messages import Role, from_obj
from protocol.noise import MECHANISMS, sample, sample_table
from protocol.params import RoundParams
from protocol.shamir import Shamir, Share
from protocol.xof import Tag, Xof, as_seed, derive_seed
from reference.sim.scenarios import build
from reference.sim.simulate import Channels, Network, Scenario, holders, simulate

OPS: tuple[str, ...] = (
    "field.add",
    "field.sub",
    "field.mul",
    "field.inv",
    "field.encode",
    "field.decode",
    "field.signed_decode",
    "xof.bytes",
    "xof.uniform_ints",
    "xof.field_elements",
    "shamir.reconstruct",
    "noise.sample",
    "protocol.step",
)

DEFAULT_TIMEOUT = 10.0

Request = dict[str, object]
Answer = dict[str, object]


class ConformanceStartError(Exception):
    """The implementation's command could not be started or stopped answering at once."""


# ------------------------------------------------------------------ requests


def _seed(i: int) -> bytes:
    return derive_seed(as_seed(bytes(32)), Tag("conformance", (i,)))


def _draw(i: int, modulus: int, count: int) -> list[str]:
    return [
        str(v)
        for v in Xof(as_seed(_seed(i)), Tag("conformance.inputs"))
        .uniform_ints(modulus, count=count)
        .tolist()
    ]


_MODULI = (Field31.MODULUS, Field61.MODULUS, 97)


def build_requests() -> list[Request]:
    """The fixed request set: every op on Field31, Field61 and GF(97), plus negatives."""
    tags = _xof_tags()
    reqs = [
        *_field_requests(),
        *_xof_requests(tags),
        *_xof_negative_requests(tags),
        *_shamir_requests(),
        *_noise_requests(),
        *_protocol_requests(),
    ]
    for i, req in enumerate(reqs):
        req["id"] = i
    return reqs


def _field_requests() -> list[Request]:
    """``field.*`` requests on each modulus, then the negative ones."""
    out: list[Request] = []
    case = 0
    for p in _MODULI:
        edges = ["0", "1", str(p - 1), str(p - 2), str((p - 1) // 2), str((p + 1) // 2)]
        case += 1
        a = edges + _draw(case, p, 10)
        case += 1
        b = list(reversed(edges)) + _draw(case, p, 10)
        for op in ("field.add", "field.sub", "field.mul"):
            out.append({"op": op, "modulus": str(p), "a": a, "b": b})
        out.append({"op": "field.inv", "modulus": str(p), "a": [x for x in a if x != "0"]})
        out.append({"op": "field.encode", "modulus": str(p), "a": a})
        out.append(
            {
                "op": "field.decode",
                "modulus": str(p),
                "data": field_for_modulus(p).from_json(b).encode().hex(),
            }
        )
        out.append({"op": "field.signed_decode", "modulus": str(p), "a": a})
        # Negative requests.
        width = field_for_modulus(p).ENCODED_SIZE
        out.append(
            {"op": "field.decode", "modulus": str(p), "data": p.to_bytes(width, "little").hex()}
        )
        out.append({"op": "field.decode", "modulus": str(p), "data": "00" * (width + 1)})
        out.append({"op": "field.inv", "modulus": str(p), "a": ["1", "0"]})
        out.append({"op": "field.add", "modulus": str(p), "a": ["07"], "b": ["1"]})
        out.append({"op": "field.mul", "modulus": str(p), "a": [str(p)], "b": ["1"]})
    out.append({"op": "field.add", "modulus": "100", "a": ["1"], "b": ["2"]})
    out.append({"op": "field.add", "modulus": str(1 << 61), "a": ["1"], "b": ["2"]})
    # Shapes differ: never broadcast (spec/02-field.md#arithmetic), ParameterError.
    out.append({"op": "field.add", "modulus": "97", "a": ["1", "2"], "b": ["1"]})
    out.append({"op": "field.mul", "modulus": "97", "a": [], "b": ["1"]})
    # Malformed hex of an encoding (spec/02-field.md#serialization): EncodingError.
    for data in ("0", "0A", "zz", "0x01", "01 02"):
        out.append({"op": "field.decode", "modulus": "97", "data": data})
    return out


def _xof_tags() -> list[dict[str, object]]:
    """The XOF tags the ``xof.*`` requests use; the negative ones reuse the first."""
    return [
        {"purpose": "shamir.share", "params": []},
        {"purpose": "conformance.xof", "params": ["7", str((1 << 64) - 1)]},
        {"purpose": "a b ~", "params": ["0"]},
    ]


def _xof_requests(tags: list[dict[str, object]]) -> list[Request]:
    """``xof.*`` requests for each tag: bytes, integers below many bounds, field elements."""
    out: list[Request] = []
    for i, tag in enumerate(tags):
        seed = _seed(100 + i).hex()
        out.append({"op": "xof.bytes", "seed": seed, "tag": tag, "n": 0})
        out.append({"op": "xof.bytes", "seed": seed, "tag": tag, "n": 200})
        for bound in (1, 2, 11, 97, 256, 257, 65537, Field31.MODULUS, Field61.MODULUS, 1 << 64):
            out.append(
                {
                    "op": "xof.uniform_ints",
                    "seed": seed,
                    "tag": tag,
                    "bound": str(bound),
                    "count": 20,
                }
            )
        for p in _MODULI:
            out.append(
                {
                    "op": "xof.field_elements",
                    "seed": seed,
                    "tag": tag,
                    "modulus": str(p),
                    "count": 20,
                }
            )
    return out


def _xof_negative_requests(tags: list[dict[str, object]]) -> list[Request]:
    """Negative ``xof.*`` requests: bad seeds, tags, bounds and counts."""
    tag0 = tags[0]
    zero = "00" * 32
    out: list[Request] = []
    out.append({"op": "xof.bytes", "seed": "00" * 31, "tag": tag0, "n": 4})
    out.append(
        {
            "op": "xof.bytes",
            "seed": zero,
            "tag": {"purpose": "x", "params": [str(1 << 64)]},
            "n": 4,
        }
    )
    out.append({"op": "xof.bytes", "seed": zero, "tag": {"purpose": "", "params": []}, "n": 4})
    out.append({"op": "xof.uniform_ints", "seed": zero, "tag": tag0, "bound": "0", "count": 1})
    # Reading rules of spec/01-conventions.md#json, one fault each: a non-canonical
    # tag parameter, malformed seed hex, invalid small counts (all ParameterError);
    # the bound is checked even when nothing is drawn.
    for param in ("01", "+1", "-1", " 1", "1.0"):
        out.append(
            {
                "op": "xof.bytes",
                "seed": zero,
                "tag": {"purpose": "x", "params": [param]},
                "n": 4,
            }
        )
    for bad_seed in ("0" * 63, "00" * 31 + "0A", "zz" * 32, "00" * 32 + " "):
        out.append({"op": "xof.bytes", "seed": bad_seed, "tag": tag0, "n": 4})
    out.append({"op": "xof.bytes", "seed": zero, "tag": tag0, "n": -1})
    out.append({"op": "xof.uniform_ints", "seed": zero, "tag": tag0, "bound": "7", "count": -1})
    out.append(
        {
            "op": "xof.field_elements",
            "seed": zero,
            "tag": tag0,
            "modulus": "97",
            "count": -1,
        }
    )
    out.append({"op": "xof.uniform_ints", "seed": zero, "tag": tag0, "bound": "0", "count": 0})
    return out


def _shamir_requests() -> list[Request]:
    """``shamir.reconstruct`` requests: good, too few, inconsistent and misread share sets."""
    out: list[Request] = []
    for i, (p, t, k, d, n) in enumerate(
        [
            (Field31.MODULUS, 1, 1, 4, 3),
            (Field31.MODULUS, 3, 4, 10, 11),
            (Field61.MODULUS, 2, 2, 5, 6),
            (97, 2, 1, 3, 5),
        ]
    ):
        F = field_for_modulus(p)
        scheme = Shamir(F, t, k)
        secret = F.from_json(_draw(200 + i, p, d))
        points = list(range(1, n + 1))
        shares = scheme.share(secret, points=points, seed=as_seed(_seed(300 + i)))
        js = [{"x": str(s.x), "y": s.y.to_json()} for s in shares]
        base: Request = {
            "op": "shamir.reconstruct",
            "modulus": str(p),
            "threshold": t,
            "packing": k,
            "length": d,
        }
        K = t + k
        out.append({**base, "shares": js})  # all shares
        out.append({**base, "shares": list(reversed(js[:K]))})  # exactly K, out of order
        out.append({**base, "shares": js[: K - 1]})  # too few
        bad = [dict(s) for s in js]
        y0 = list(bad[-1]["y"])
        y0[0] = str((int(y0[0]) + 1) % p)
        bad[-1] = {"x": bad[-1]["x"], "y": y0}
        if n > K:
            out.append({**base, "shares": bad})  # inconsistent
        out.append({**base, "shares": [*js[: K - 1], {"x": str(p - t - k + 1), "y": js[0]["y"]}]})
        out.append({**base, "shares": js[:K], "length": d + k})  # wrong length
        if i == 0:
            out += _shamir_reading_requests(base, js, bad, p=p, K=K, d=d, k=k)
    return out


def _shamir_reading_requests(
    base: Request,
    js: list[dict[str, Any]],
    bad: list[dict[str, Any]],
    *,
    p: int,
    K: int,
    d: int,
    k: int,
) -> list[Request]:
    """Reading rules and the order of checks (spec/11-conformance.md#reading-requests)."""
    out_of_range = {"x": str(p), "y": js[0]["y"]}
    bad_y = {"x": js[0]["x"], "y": [str(p)]}
    reserved = {"x": str(p - 1), "y": js[0]["y"]}
    out: list[Request] = []
    out.append({**base, "shares": [{**js[0], "x": "01"}, *js[1:]]})  # non-canonical x
    out.append({**base, "shares": [{**js[0], "y": ["0" + js[0]["y"][0]]}, *js[1:]]})
    out.append({**base, "shares": [out_of_range]})  # share read before the count
    out.append({**base, "shares": [bad_y]})  # share read before the count
    out.append({**base, "threshold": 0, "shares": [bad_y]})  # shares before parameters
    out.append({**base, "threshold": p, "shares": js[:1]})  # parameters before the count
    out.append({**base, "threshold": 0, "shares": js[:1]})
    out.append({**base, "packing": 0, "shares": js})
    out.append({**base, "shares": [reserved]})  # the count before the points
    out.append({**base, "shares": bad, "length": d + k})  # length before consistency
    out.append({**base, "length": -1, "shares": js})
    # m = 0: empty shares reconstruct to the empty secret when length = 0.
    empty = [{"x": s["x"], "y": []} for s in js]
    out.append({**base, "length": 0, "shares": empty})
    out.append({**base, "length": 1, "shares": empty})
    out.append({**base, "length": 0, "shares": empty[: K - 1]})
    return out


def _noise_requests() -> list[Request]:
    """``noise.sample`` requests per mechanism and sampler, plus two negative ones."""
    out: list[Request] = []
    for i, (mechanism, variance, sampler, count) in enumerate(
        [
            ("dgauss", "1/2", "exact", 20),
            ("dgauss", "40", "exact", 20),
            ("dgauss", "1000003/7", "table", 30),
            ("skellam", "3", "exact", 20),
            ("skellam", "250", "table", 30),
            ("skellam", "1", "table", 0),
        ]
    ):
        seed = _seed(800 + i).hex()
        out.append(
            {
                "op": "noise.sample",
                "seed": seed,
                "mechanism": mechanism,
                "variance": variance,
                "sampler": sampler,
                "count": count,
            }
        )
    seed = _seed(899).hex()
    out.append(
        {
            "op": "noise.sample",
            "seed": seed,
            "mechanism": "laplace",
            "variance": "1",
            "sampler": "exact",
            "count": 1,
        }
    )
    out.append(
        {
            "op": "noise.sample",
            "seed": seed,
            "mechanism": "skellam",
            "variance": "0",
            "sampler": "table",
            "count": 1,
        }
    )
    return out


#: Per (role, phase, event kind) of the recorded runs, how many steps are asked.
_STEPS_PER_KIND = 2


def _protocol_requests() -> list[Request]:
    """``protocol.step`` requests: states and events recorded from small simulated rounds.

    Spec: spec/11-conformance.md#requests

    Three rounds (no dropout; two dropouts and a top-up; a lossy network
    with late and duplicated messages) are replayed through the machines;
    for every (role, phase, event kind) met, the first steps become
    requests, plus every step that a machine rejects. Then three forged
    events: a message for another session, an unknown phase, and a
    contributor started twice.
    """
    scenarios = [
        build(master=as_seed(_seed(700)), nodes=4, threshold=1, max_dropouts=1, dimension=2),
        build(
            master=as_seed(_seed(701)),
            nodes=5,
            threshold=1,
            dropouts=2,
            max_dropouts=2,
            dimension=3,
            mechanism="dgauss",
        ),
        build(
            master=as_seed(_seed(913)),
            nodes=5,
            threshold=1,
            max_dropouts=2,
            dimension=2,
            network=Network(drop=Fraction(1, 40), late=Fraction(1, 10), duplicate=Fraction(1, 5)),
        ),
        # The echo exchange under an equivocating coordinator (f = 1, sealed), and a
        # coordinator that crashes before sending, replaced by a backup (failover).
        _equivocating(702),
        _failing_over(703),
    ]
    out: list[Request] = []
    for scenario in scenarios:
        out += _replayed_steps(scenario)
    _append_forged_steps(out)
    return out


def _equivocating(seed: int) -> Scenario:
    """7 nodes, t = 2, f = 1: the coordinator equivocates (spec/09-protocol.md#evidence)."""
    probe = build(master=as_seed(_seed(seed)), nodes=7, threshold=2)
    return build(
        master=as_seed(_seed(seed)), nodes=7, threshold=2, max_dropouts=1, precover=True,
        dimension=2, colluders=1, max_byzantine=1, channels=Channels(),
        byzantine={probe.params.coordinator: "equivocate"},
    )  # fmt: skip


def _failing_over(seed: int) -> Scenario:
    """5 nodes, t = 1, two backups; the coordinator never sends (spec/09-protocol.md#failover)."""
    probe = build(master=as_seed(_seed(seed)), nodes=5, threshold=1)
    return build(
        master=as_seed(_seed(seed)), nodes=5, threshold=1, max_dropouts=1, dimension=2,
        failover=2, crashes={probe.params.coordinator: 0},
    )  # fmt: skip


def _replayed_steps(scenario: Scenario) -> list[Request]:
    """Replay one simulated round through the machines, keeping the steps to ask."""
    p: RoundParams = scenario.params
    lines: list[dict[str, Any]] = []
    simulate(scenario, sink=lines.append)
    states: dict[tuple[int, Role], State] = {
        key: initial(p, node=key[0], role=key[1]) for key in holders(p)
    }
    seen: dict[tuple[str, str, str], int] = {}
    out: list[Request] = []
    for line in lines:
        kind = line["type"]
        if kind not in ("start", "deliver", "timeout"):
            continue
        key: tuple[int, Role] = (line["node"], line["role"])
        state = states[key]
        event: Start | Receive | Timeout
        if kind == "start" and line.get("update") is not None:
            update = p.field.from_json(line["update"])
            event = Start(update=update, seed=as_seed(bytes.fromhex(line["seed"])))
        elif kind == "start":
            event = Start()
        elif kind == "timeout":
            event = Timeout(stage=line["stage"], view=line.get("view"))
        else:
            event = Receive(from_obj(line["message"]))
        try:
            new, _ = step(state, event)
            rejected = False
        except ProtocolError:
            new, rejected = state, True
        label = (state.role, state.phase.value, event_kind(event))
        seen[label] = seen.get(label, 0) + 1
        if rejected or seen[label] <= _STEPS_PER_KIND:
            out.append(
                {
                    "op": "protocol.step",
                    "params": p.to_json(),
                    "state": state_to_json(state),
                    "event": event_to_json(event),
                }
            )
        states[key] = new
    return out


def _append_forged_steps(out: list[Request]) -> None:
    """Append to the recorded steps ``out`` three forged ones.

    A delivery under other parameters (out of round), an unknown phase, and a
    contributor started twice.
    """
    receive = next(r for r in out if _event_type(r) == "receive")
    params = receive["params"]
    assert isinstance(params, dict)
    out.append({**receive, "params": {**params, "round": int(params["round"]) + 1}})
    recorded = receive["state"]
    assert isinstance(recorded, dict)
    out.append({**receive, "state": {**recorded, "phase": "sleeping"}})
    shared = next(r for r in out if _state_key(r) == ("contributor", "shared"))
    start = next(r for r in out if _state_key(r) == ("contributor", "idle"))
    out.append({**shared, "event": start["event"]})


def _event_type(req: Request) -> object:
    event = req["event"]
    return event.get("type") if isinstance(event, dict) else None


def _state_key(req: Request) -> tuple[object, object]:
    state = req["state"]
    return (state.get("role"), state.get("phase")) if isinstance(state, dict) else (None, None)


# ------------------------------------------------------------------ reference answers


_CANONICAL = re.compile(r"0|[1-9][0-9]*")
_HEX = re.compile(r"(?:[0-9a-f]{2})*")


_RATIONAL = re.compile(r"(0|[1-9][0-9]*)(/[1-9][0-9]*)?")


def _decimal(obj: object, what: str) -> int:
    """An integer that is not a field element, from its canonical decimal string.

    Spec: spec/01-conventions.md#json

    Raises:
        ParameterError: if ``obj`` is not a canonical decimal string.
    """
    if not isinstance(obj, str) or not _CANONICAL.fullmatch(obj):
        raise ParameterError(f"{what} must be a canonical decimal string; got {obj!r:.60}")
    try:
        return int(obj)
    except ValueError as exc:  # more digits than Python converts
        raise ParameterError(f"{what} has too many digits ({len(obj)})") from exc


def _small(obj: object, what: str) -> int:
    """A small count: a JSON integer ``>= 0`` (booleans are not integers).

    Spec: spec/01-conventions.md#json

    Raises:
        ParameterError: if ``obj`` is not an integer ``>= 0``.
    """
    if type(obj) is not int or obj < 0:
        raise ParameterError(f"{what} must be an integer >= 0; got {obj!r:.60}")
    return obj


def _hex(obj: object, what: str, error: type[SdlError]) -> bytes:
    """A byte string from lowercase hex; ``error`` is what the input's section names.

    Spec: spec/01-conventions.md#json
    """
    if not isinstance(obj, str) or not _HEX.fullmatch(obj):
        raise error(f"{what} must be lowercase hex, two digits per byte; got {obj!r:.60}")
    return bytes.fromhex(obj)


def _tag(obj: object) -> Tag:
    """A tag from ``{"purpose": str, "params": [decimal, ...]}``.

    Spec: spec/03-xof.md#tags

    Raises:
        ParameterError: if the object is malformed or the tag is invalid.
    """
    if not isinstance(obj, dict) or set(obj) != {"purpose", "params"}:
        raise ParameterError(f"tag must be an object with purpose and params; got {obj!r:.60}")
    purpose, params = obj["purpose"], obj["params"]
    if not isinstance(purpose, str) or not isinstance(params, list):
        raise ParameterError(f"tag purpose must be a string and params a list; got {obj!r:.60}")
    return Tag(purpose, tuple(_decimal(v, f"tag parameter {i}") for i, v in enumerate(params)))


def _elements(F: type[Field], obj: object) -> Field:
    # from_json refuses non-lists, but would take a tuple or a string's characters.
    if not isinstance(obj, list):
        raise EncodingError(f"elements must be a JSON array of decimal strings; got {obj!r:.60}")
    return F.from_json(obj)


def _share(F: type[Field], obj: object, i: int) -> Share:
    """Share ``i`` of a request: ``x`` (ParameterError), then ``y`` (EncodingError).

    Spec: spec/04-shamir.md#shares
    """
    if not isinstance(obj, dict) or "x" not in obj or "y" not in obj:
        raise ParameterError(f"share {i} must be an object with x and y; got {obj!r:.60}")
    x = _decimal(obj["x"], f"share {i} point x")
    if not 0 < x < F.MODULUS:
        raise ParameterError(f"share {i} point must be in [1, {F.MODULUS}); got {x}")
    return Share(x, _elements(F, obj["y"]))


def _compute(req: Request) -> object:
    op = req["op"]
    if op.__class__ is not str:
        raise TypeError(op)
    if op.startswith("field."):
        F = field_for_modulus(_decimal(req.get("modulus"), "modulus"))
        if op == "field.decode":
            return F.decode(_hex(req.get("data"), "data", EncodingError)).to_json()
        a = _elements(F, req.get("a"))
        if op in ("field.add", "field.sub", "field.mul"):
            b = _elements(F, req.get("b"))
            if a.shape != b.shape:
                # Spec: spec/02-field.md#arithmetic (never broadcast).
                raise ParameterError(f"a and b must have equal shapes; got {a.shape} and {b.shape}")
            r = a + b if op == "field.add" else a - b if op == "field.sub" else a * b
            return r.to_json()
        if op == "field.inv":
            return a.inv().to_json()
        if op == "field.encode":
            return a.encode().hex()
        if op == "field.signed_decode":
            return [str(int(v)) for v in a.signed_decode().tolist()]
    if op.startswith("xof."):
        seed = as_seed(_hex(req.get("seed"), "seed", ParameterError))
        stream = Xof(seed, _tag(req.get("tag")))
        if op == "xof.bytes":
            return stream.next_bytes(_small(req.get("n"), "n")).hex()
        if op == "xof.field_elements":
            F = field_for_modulus(_decimal(req.get("modulus"), "modulus"))
            return stream.field_elements(F, _small(req.get("count"), "count")).to_json()
        # Scalar draws: bounds above 2^64 too (spec/03-xof.md#uniform-integers).
        # The bound is checked before the count, and also when nothing is drawn.
        bound = _decimal(req.get("bound"), "bound")
        if bound < 1:
            raise ParameterError(f"bound must be an int >= 1; got {bound}")
        count = _small(req.get("count"), "count")
        return [str(stream.uniform_int(bound)) for _ in range(count)]
    if op == "protocol.step":
        return _protocol_step(req)
    if op == "noise.sample":
        return _noise_sample(req)
    if op == "shamir.reconstruct":
        # Order of checks: spec/11-conformance.md#reading-requests.
        F = field_for_modulus(_decimal(req.get("modulus"), "modulus"))
        raw = req.get("shares")
        if not isinstance(raw, list):
            raise ParameterError(f"shares must be a JSON array; got {raw!r:.60}")
        shares = [_share(F, s, i) for i, s in enumerate(raw)]
        scheme = Shamir(F, req.get("threshold"), req.get("packing"))  # type: ignore[arg-type]
        length = _small(req.get("length"), "length")
        return scheme.reconstruct(shares, length=length).to_json()
    raise ValueError(f"unknown op {op!r}")


def _noise_sample(req: Request) -> object:
    """``sample`` or ``sample_table`` on ``Xof(seed, Tag("noise.sample", (i,)))``.

    Spec: spec/06-noise.md#sampling-a-vector. Reading order: seed, mechanism,
    variance, sampler, count; each malformed input is a ``ParameterError``.
    """
    seed = as_seed(_hex(req.get("seed"), "seed", ParameterError))
    mechanism = req.get("mechanism")
    if mechanism not in MECHANISMS:
        raise ParameterError(f"mechanism must be one of {MECHANISMS}; got {mechanism!r:.60}")
    text = req.get("variance")
    if not isinstance(text, str) or not _RATIONAL.fullmatch(text):
        raise ParameterError(f"variance must be a rational string 'a' or 'a/b'; got {text!r:.60}")
    sampler = req.get("sampler")
    if sampler not in ("exact", "table"):
        raise ParameterError(f"sampler must be 'exact' or 'table'; got {sampler!r:.60}")
    count = _small(req.get("count"), "count")
    xof = Xof(seed, Tag("noise.sample", (MECHANISMS.index(str(mechanism)),)))
    draw = sample if sampler == "exact" else sample_table
    return [str(int(v)) for v in draw(xof, str(mechanism), Fraction(text), count)]


def _protocol_step(req: Request) -> object:
    params = RoundParams.from_json(req["params"])
    state = state_from_json(params, req["state"])
    event = event_from_json(params, req["event"])
    new, outputs = step(state, event)
    return {"state": state_to_json(new), "outputs": [output_to_json(o) for o in outputs]}


def expected_answer(req: Request) -> Answer:
    """What a conforming implementation answers: ``{"result": …}`` or ``{"error": name}``."""
    try:
        return {"result": _compute(req)}
    except SdlError as exc:
        return {"error": _spec_name(exc)}


def _spec_name(exc: SdlError) -> str:
    for cls in type(exc).__mro__:
        if cls.__name__ in ERRORS_BY_NAME and ERRORS_BY_NAME[cls.__name__] is cls:
            return cls.__name__
    return "SdlError"


# ------------------------------------------------------------------ running


@dataclass
class OpReport:
    op: str
    passed: int = 0
    failed: int = 0
    unsupported: int = 0
    first_mismatch: str | None = None

    @property
    def status(self) -> str:
        if self.failed:
            return "fail"
        if self.passed:
            return "pass"
        return "unsupported"


_EXITED = "the implementation exited"

#: How many of the implementation's last stderr lines a report keeps when it exits.
STDERR_TAIL_LINES = 5


@dataclass
class Report:
    command: str
    ops: dict[str, OpReport] = field(default_factory=dict)
    #: True if the implementation exited before answering every request.
    exited: bool = False
    #: Its exit status then, if it was known.
    exit_status: int | None = None
    #: The last non-blank lines (at most :data:`STDERR_TAIL_LINES`) of its stderr then.
    stderr_tail: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(r.failed == 0 for r in self.ops.values())

    def to_json(self) -> dict[str, object]:
        return {
            "command": self.command,
            "ok": self.ok,
            "ops": [
                {
                    "op": r.op,
                    "status": r.status,
                    "passed": r.passed,
                    "failed": r.failed,
                    "unsupported": r.unsupported,
                    "first_mismatch": r.first_mismatch,
                }
                for r in self.ops.values()
            ],
            "exited": self.exited,
            "exit_status": self.exit_status,
            "stderr_tail": self.stderr_tail,
        }


def _judge(want: Answer, got: object, req_id: object) -> str | None:
    """None if ``got`` satisfies ``want``, else a description of the mismatch."""
    if not isinstance(got, dict):
        return f"request {req_id}: response is not a JSON object: {got!r}"
    if got.get("id") != req_id:
        return f"request {req_id}: response has id {got.get('id')!r}"
    if "error" in want:
        name = got.get("error")
        wanted = ERRORS_BY_NAME[str(want["error"])]
        got_cls = ERRORS_BY_NAME.get(name) if isinstance(name, str) else None
        if got_cls is not None and issubclass(got_cls, wanted):
            return None
        shown = f"error {name!r}" if "error" in got else f"result {got.get('result')!r}"
        return f"request {req_id}: expected error {want['error']!r}, got {shown}"
    if "result" not in got:
        return f"request {req_id}: expected result {want['result']!r}, got {got!r}"
    if got["result"] != want["result"]:
        return f"request {req_id}: expected {want['result']!r}, got {got['result']!r}"
    return None


def _reader(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def _drain(stream: IO[str], tail: collections.deque[str]) -> None:
    """Read ``stream`` to its end, keeping its last non-blank lines in ``tail``.

    Reading continuously keeps the implementation from blocking on a full stderr pipe.
    """
    for line in stream:
        if line.strip():
            tail.append(line.rstrip())


def _start(argv: list[str]) -> subprocess.Popen[str]:
    """Start the implementation, its stdin, stdout and stderr piped (no shell)."""
    try:
        return subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1,
            shell=False,
        )
    except OSError as exc:
        raise ConformanceStartError(f"cannot start {argv[0]!r}: {exc}") from exc


def run(
    command: str, *, timeout: float = DEFAULT_TIMEOUT, requests: list[Request] | None = None
) -> Report:
    """Run the request set against ``command`` and report per operation.

    Raises:
        ConformanceStartError: if the command is empty, does not parse as shell
            words, or cannot be started.
    """
    try:
        argv = shlex.split(command)
    except ValueError as exc:  # an unterminated quote or escape
        raise ConformanceStartError(
            f"the implementation command {command!r} does not parse as shell words: {exc}"
        ) from None
    if not argv:
        raise ConformanceStartError("the implementation command is empty")
    proc = _start(argv)
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_reader, args=(proc.stdout, lines), daemon=True).start()
    tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
    drainer = threading.Thread(target=_drain, args=(proc.stderr, tail), daemon=True)
    drainer.start()
    report = Report(command=command, ops={op: OpReport(op) for op in OPS})
    dead: str | None = None
    try:
        for req in requests if requests is not None else build_requests():
            op = str(req["op"])
            entry = report.ops.setdefault(op, OpReport(op))
            want = expected_answer(req)
            problem: str | None
            if dead is not None:
                problem = f"request {req['id']}: {dead}"
                got: object = None
            else:
                try:
                    proc.stdin.write(json.dumps(req, sort_keys=True) + "\n")
                    proc.stdin.flush()
                    line = lines.get(timeout=timeout)
                except (OSError, ValueError):
                    line = None
                except queue.Empty:
                    dead = f"no answer within {timeout:g} s"
                    problem = f"request {req['id']}: {dead}"
                    entry.failed += 1
                    entry.first_mismatch = entry.first_mismatch or problem
                    continue
                if line is None:
                    dead = _EXITED
                    problem = f"request {req['id']}: {dead}"
                else:
                    try:
                        got = json.loads(line)
                    except json.JSONDecodeError:
                        got = line.strip()
                    if isinstance(got, dict) and got.get("unsupported") is True:
                        entry.unsupported += 1
                        continue
                    problem = _judge(want, got, req["id"])
            if problem is None:
                entry.passed += 1
            else:
                entry.failed += 1
                entry.first_mismatch = entry.first_mismatch or problem
    finally:
        with contextlib.suppress(OSError):
            proc.stdin.close()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if dead == _EXITED:
        drainer.join(timeout=timeout)
        report.exited = True
        report.exit_status = proc.returncode
        report.stderr_tail = list(tail)
    return report
