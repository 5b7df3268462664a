"""Generate and check SDL's test vectors.

Spec: spec/10-test-vectors.md

A vector file is one JSON object (sorted keys, two-space indent, final
newline) that names its ``family`` and ``operation`` and lists the inputs
and the expected outputs of one explicit operation. Negative cases
(``*_bad_<fault>.json``) carry ``"error"``: the class name of the typed
error (spec/01-conventions.md#errors) the operation must raise.

``check`` recomputes every expected output from the file's inputs with this
implementation, so it checks vectors written by any implementation.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from protocol.errors import SdlError
from protocol.field import FIELDS, Field, Field31, Field61, field_for_modulus
from protocol.noise import (
    MECHANISMS,
    bernoulli_exp,
    discrete_gaussian,
    discrete_laplace,
    poisson,
    sample,
    sample_table,
    skellam,
)
from protocol.noise_plan import plan
from protocol.shamir import Shamir, Share
from protocol.xof import Seed, Tag, Xof, as_seed, derive_seed
from reference.oracle import accounting as vectors_accounting
from reference.oracle import channel as vectors_channel
from reference.oracle import encoding as vectors_encoding
from reference.oracle import protocol as vectors_protocol
from reference.oracle.format import FORMAT, Json, case_seed, expect_error, make_case

FAMILIES = (
    "field",
    "xof",
    "shamir",
    "encoding",
    "noise",
    "noise_plan",
    "accounting",
    "protocol",
    "channel",
)


# ---------------------------------------------------------------------- helpers


def _dec(values: Iterable[int]) -> list[str]:
    return [str(v) for v in values]


def _field_of(obj: Mapping[str, Any]) -> type[Field]:
    return field_for_modulus(int(obj["modulus"]))


def _tag_json(tag: Tag) -> Json:
    return {"purpose": tag.purpose, "params": _dec(tag.params)}


def _tag_from(obj: Mapping[str, Any]) -> Tag:
    return Tag(obj["purpose"], tuple(int(v) for v in obj["params"]))


def _shares_json(shares: Sequence[Share]) -> list[Json]:
    return [{"x": str(s.x), "y": s.y.to_json()} for s in shares]


def _shares_from(fld: type[Field], items: Sequence[Mapping[str, Any]]) -> list[Share]:
    return [Share(x=int(s["x"]), y=fld.from_json(s["y"])) for s in items]


def _shamir_from(obj: Mapping[str, Any]) -> Shamir:
    sh = Shamir(_field_of(obj), int(obj["threshold"]), int(obj.get("packing", 1)))
    if "degree" in obj and int(obj["degree"]) != sh.degree:
        raise ValueError(f"degree {obj['degree']} != threshold + packing - 1 = {sh.degree}")
    return sh


_case = make_case


# ---------------------------------------------------------------------- generation


def _field_cases() -> Iterator[tuple[str, Json]]:
    for i, (name, fld) in enumerate(FIELDS.items()):
        p = fld.MODULUS
        half = (p - 1) // 2
        rand = Xof(case_seed(100 + i), Tag("vectors.field")).uniform_ints(p, count=24)
        # a has no zero (it is inverted); b carries 0 and the extremes.
        a_vals = [1, p - 1, p - 1, 2, half, half + 1] + [int(v) or 1 for v in rand[:10]]
        b_vals = [0, 1, p - 1, p - 2, half, p - 1] + [int(v) for v in rand[10:20]]
        a, b = fld(a_vals), fld(b_vals)
        signed = [0, 1, -1, half, -half, 12345, -12345]
        left = fld([[p - 1] * 4, [1, 2, 3, 4], [half, p - 2, 0, p - 1]])
        right = fld([[p - 1] * 5] * 4)
        yield (
            f"field/{name}_arithmetic.json",
            _case(
                "field",
                "arithmetic",
                field=name,
                modulus=str(p),
                encoded_size=fld.ENCODED_SIZE,
                a=a.to_json(),
                b=b.to_json(),
                add=(a + b).to_json(),
                sub=(a - b).to_json(),
                mul=(a * b).to_json(),
                neg_a=(-a).to_json(),
                inv_a=a.inv().to_json(),
                encoded_a=a.encode().hex(),
                signed_values=_dec(signed),
                signed_encoded=fld.signed_encode(np.array(signed, dtype=np.int64)).to_json(),
                matmul={
                    "left": [left[r].to_json() for r in range(3)],
                    "right": [right[r].to_json() for r in range(4)],
                    "product": [(left @ right)[r].to_json() for r in range(3)],
                },
            ),
        )
        too_big = (p).to_bytes(8, "little")[: fld.ENCODED_SIZE].hex()
        yield (
            f"field/{name}_bad_decode_out_of_range.json",
            _case(
                "field", "decode", field=name, modulus=str(p), input=too_big, error="EncodingError"
            ),
        )
        yield (
            f"field/{name}_bad_json_noncanonical.json",
            _case(
                "field",
                "from_json",
                field=name,
                modulus=str(p),
                input=["1", "007"],
                error="EncodingError",
            ),
        )
        yield (
            f"field/{name}_bad_json_out_of_range.json",
            _case(
                "field",
                "from_json",
                field=name,
                modulus=str(p),
                input=[str(p)],
                error="EncodingError",
            ),
        )
        yield (
            f"field/{name}_bad_signed_out_of_range.json",
            _case(
                "field",
                "signed_encode",
                field=name,
                modulus=str(p),
                input=[str(half + 1)],
                error="EncodingError",
            ),
        )


def _xof_cases() -> Iterator[tuple[str, Json]]:
    tags = [Tag("vectors.xof"), Tag("vectors.xof", (7, 2**64 - 1))]
    for i, tag in enumerate(tags):
        seed = case_seed(200 + i)
        xof = Xof(seed, tag)
        ops: list[Json] = [{"op": "next_bytes", "n": 40, "output": xof.next_bytes(40).hex()}]
        for bound, count in ((1, 3), (2, 16), (11, 16), (256, 8), (257, 8), (2**61 - 1, 4)):
            ops.append(
                {
                    "op": "uniform_ints",
                    "bound": str(bound),
                    "count": count,
                    "output": _dec(int(v) for v in xof.uniform_ints(bound, count=count)),
                }
            )
        for fld in (Field31, Field61):
            ops.append(
                {
                    "op": "field_elements",
                    "modulus": str(fld.MODULUS),
                    "count": 6,
                    "output": xof.field_elements(fld, 6).to_json(),
                }
            )
        big = 2**128 + 51
        ops.append({"op": "uniform_int", "bound": str(big), "output": str(xof.uniform_int(big))})
        for num, den in ((1, 3), (2, 3), (0, 5), (5, 5), (7, 1000)):
            ops.append(
                {
                    "op": "bernoulli",
                    "numerator": str(num),
                    "denominator": str(den),
                    "output": xof.bernoulli(num, den),
                }
            )
        yield (
            f"xof/stream_{i}.json",
            _case(
                "xof",
                "stream",
                seed=seed.hex(),
                tag=_tag_json(tag),
                tag_encoding=tag.encode().hex(),
                operations=ops,
            ),
        )
    seed = case_seed(210)
    tag = Tag("vectors.derive", (3,))
    yield (
        "xof/derive_seed.json",
        _case(
            "xof",
            "derive_seed",
            seed=seed.hex(),
            tag=_tag_json(tag),
            output=derive_seed(seed, tag).hex(),
        ),
    )
    yield (
        "xof/bad_seed_length.json",
        _case(
            "xof",
            "stream",
            seed=bytes(31).hex(),
            tag=_tag_json(Tag("vectors.xof")),
            error="ParameterError",
        ),
    )
    yield (
        "xof/bad_tag_param_out_of_range.json",
        _case(
            "xof",
            "stream",
            seed=case_seed(0).hex(),
            tag={"purpose": "vectors.xof", "params": [str(2**64)]},
            error="ParameterError",
        ),
    )


def _share_case(
    *, idx: int, fld: type[Field], t: int, k: int, n: int, d: int, subset: Sequence[int]
) -> Json:
    sh = Shamir(fld, t, k)
    secret = Xof(case_seed(idx), Tag("vectors.secret")).field_elements(fld, d)
    seed = case_seed(idx + 1)
    points = list(range(1, n + 1))
    shares = sh.share(secret, points=points, seed=seed)
    chosen = [shares[i] for i in subset]
    assert sh.reconstruct(chosen, length=d) == secret
    return _case(
        "shamir",
        "share",
        field=fld.__name__,
        modulus=str(fld.MODULUS),
        threshold=t,
        packing=k,
        degree=sh.degree,
        length=d,
        seed=seed.hex(),
        secret=secret.to_json(),
        points=_dec(points),
        shares=_shares_json(shares),
        reconstruct_from=_dec(s.x for s in chosen),
    )


def _tamper(shares: Sequence[Share], which: Mapping[int, Sequence[int]], seed: Seed) -> list[Share]:
    """Add a nonzero XOF-chosen offset to the given coordinates of the given holders."""
    out = list(shares)
    xof = Xof(seed, Tag("vectors.tamper"))
    for holder, coords in which.items():
        y = shares[holder].y
        fld = type(y)
        delta = np.zeros(len(y), dtype=np.uint64)
        for c in coords:
            delta[c] = 1 + xof.uniform_int(fld.MODULUS - 1)
        out[holder] = Share(x=shares[holder].x, y=y + fld(delta))
    return out


def _shamir_cases() -> Iterator[tuple[str, Json]]:
    yield (
        "shamir/plain_t1_n3.json",
        _share_case(idx=300, fld=Field31, t=1, k=1, n=3, d=4, subset=[2, 0]),
    )
    yield (
        "shamir/plain_t9_n20.json",
        _share_case(idx=302, fld=Field31, t=9, k=1, n=20, d=6, subset=range(5, 15)),
    )
    yield (
        "shamir/plain_field61_t3_n7.json",
        _share_case(idx=304, fld=Field61, t=3, k=1, n=7, d=5, subset=[6, 1, 3, 4]),
    )
    yield (
        "shamir/packed_k4_t3_n11.json",
        _share_case(idx=306, fld=Field31, t=3, k=4, n=11, d=10, subset=range(2, 9)),
    )
    yield (
        "shamir/packed_field61_k2_t2_n6.json",
        _share_case(idx=308, fld=Field61, t=2, k=2, n=6, d=7, subset=[5, 4, 3, 2]),
    )

    # Robust cases: t = 3, k = 1, N = 11 shares, so up to e = 3 errors are correctable.
    fld, t, n, d = Field31, 3, 11, 5
    sh = Shamir(fld, t)
    secret = Xof(case_seed(320), Tag("vectors.secret")).field_elements(fld, d)
    shares = sh.share(secret, points=list(range(1, n + 1)), seed=case_seed(321))
    common = {
        "field": fld.__name__,
        "modulus": str(fld.MODULUS),
        "threshold": t,
        "packing": 1,
        "degree": t,
        "length": d,
    }
    corrected = _tamper(shares, {1: [0], 6: [2, 4]}, case_seed(322))
    rec = sh.robust_reconstruct(corrected, length=d, max_errors=2)
    assert rec.secret == secret and rec.bad_points == (2, 7)
    yield (
        "shamir/robust_corrected_e2.json",
        _case(
            "shamir",
            "robust_reconstruct",
            **common,
            max_errors=2,
            shares=_shares_json(corrected),
            secret=secret.to_json(),
            bad_points=_dec(rec.bad_points),
        ),
    )
    clean = sh.robust_reconstruct(shares, length=d, max_errors=3)
    yield (
        "shamir/robust_no_errors_e3.json",
        _case(
            "shamir",
            "robust_reconstruct",
            **common,
            max_errors=3,
            shares=_shares_json(shares),
            secret=secret.to_json(),
            bad_points=_dec(clean.bad_points),
        ),
    )
    # Three faulty holders with max_errors = 2: 3 <= N - K - e = 11 - 4 - 2 = 5, so detected.
    detected = _tamper(shares, {0: [1], 4: [1], 9: [3]}, case_seed(323))
    yield (
        "shamir/robust_bad_too_many_faulty.json",
        _case(
            "shamir",
            "robust_reconstruct",
            **common,
            max_errors=2,
            shares=_shares_json(detected),
            error="InconsistentShares",
        ),
    )
    one_off = _tamper(shares[:6], {3: [0]}, case_seed(324))
    yield (
        "shamir/reconstruct_bad_inconsistent.json",
        _case(
            "shamir",
            "robust_reconstruct",
            **common,
            max_errors=0,
            shares=_shares_json(one_off),
            error="InconsistentShares",
        ),
    )
    yield (
        "shamir/reconstruct_bad_too_few.json",
        _case(
            "shamir",
            "robust_reconstruct",
            **common,
            max_errors=0,
            shares=_shares_json(shares[:3]),
            error="ThresholdNotMet",
        ),
    )
    yield (
        "shamir/robust_bad_too_little_redundancy.json",
        _case(
            "shamir",
            "robust_reconstruct",
            **common,
            max_errors=2,
            shares=_shares_json(shares[:7]),
            error="ThresholdNotMet",
        ),
    )
    yield (
        "shamir/share_bad_reserved_point.json",
        _case(
            "shamir",
            "share",
            **common,
            seed=case_seed(325).hex(),
            secret=secret.to_json(),
            points=_dec([1, 2, 3, fld.MODULUS - 1]),
            error="ParameterError",
        ),
    )


#: The sampler each noise operation names, and the name of its parameter.
_NOISE_OPS: dict[str, tuple[Callable[[Xof, Any], object], str]] = {
    "bernoulli_exp": (bernoulli_exp, "gamma"),
    "discrete_laplace": (discrete_laplace, "scale"),
    "discrete_gaussian": (discrete_gaussian, "sigma2"),
    "poisson": (poisson, "mean"),
    "skellam": (skellam, "variance"),
}


def _noise_param(op: str, text: str) -> Fraction | int:
    return int(text) if op == "discrete_laplace" else Fraction(text)


#: The most draws, bytes or elements one vector case may ask for: a file
#: asking for more is malformed (checking it would take hours or all memory).
MAX_COUNT = 10**7


class _OverBound(ValueError):
    """A vector case asks for more output than :data:`MAX_COUNT` (the file is malformed)."""


def _count(value: Any, name: str) -> int:
    """``int(value)``, refused past :data:`MAX_COUNT` before anything is drawn."""
    n = int(value)
    if n > MAX_COUNT:
        raise _OverBound(f"{name} {n} exceeds the vector bound 10^7")
    return n


def _noise_draws(obj: Mapping[str, Any]) -> list[object]:
    """Replay a noise vector's draws: ``count`` samples, one after the other, on one stream."""
    op = obj["operation"]
    xof = Xof(as_seed(bytes.fromhex(obj["seed"])), _tag_from(obj["tag"]))
    count = _count(obj["count"], "count")
    if op == "sample":
        return list(sample(xof, obj["mechanism"], Fraction(obj["variance"]), count))
    if op == "sample_table":
        drawn = sample_table(xof, obj["mechanism"], Fraction(obj["variance"]), count)
        return [int(v) for v in drawn]
    fn, key = _NOISE_OPS[op]
    param = _noise_param(op, obj[key])
    return [fn(xof, param) for _ in range(count)]


def _noise_cases() -> Iterator[tuple[str, Json]]:
    params = [
        ("bernoulli_exp", "bernoulli_exp_7_3", "7/3"),
        ("bernoulli_exp", "bernoulli_exp_1_2", "1/2"),
        ("discrete_laplace", "discrete_laplace_t3", "3"),
        ("discrete_gaussian", "discrete_gaussian_25_2", "25/2"),
        ("discrete_gaussian", "discrete_gaussian_1_4", "1/4"),
        ("poisson", "poisson_15_2", "15/2"),
        ("poisson", "poisson_1_3", "1/3"),
        ("skellam", "skellam_10", "10"),
    ]
    for i, (op, name, value) in enumerate(params):
        _, key = _NOISE_OPS[op]
        body: Json = {
            "seed": case_seed(400 + i).hex(),
            "tag": _tag_json(Tag("vectors.noise", (i,))),
            "count": 24,
            key: value,
        }
        body["output"] = _noise_draws({"operation": op, **body})
        yield f"noise/{name}.json", _case("noise", op, **body)
    for m, mechanism in enumerate(MECHANISMS):
        body = {
            "seed": case_seed(420 + m).hex(),
            "tag": _tag_json(Tag("noise.sample", (m,))),
            "mechanism": mechanism,
            "variance": "9",
            "count": 24,
        }
        body["output"] = _noise_draws({"operation": "sample", **body})
        yield f"noise/sample_{mechanism}.json", _case("noise", "sample", **body)
        for j, variance in enumerate(("9", "25/2", "1000000")):
            body = {
                "seed": case_seed(440 + 3 * m + j).hex(),
                "tag": _tag_json(Tag("noise.sample", (m,))),
                "mechanism": mechanism,
                "variance": variance,
                "count": 24,
            }
            body["output"] = _noise_draws({"operation": "sample_table", **body})
            name = variance.replace("/", "_")
            yield f"noise/table_{mechanism}_{name}.json", _case("noise", "sample_table", **body)
    bad = [
        ("bernoulli_exp_bad_negative_gamma", "bernoulli_exp", {"gamma": "-1/2"}),
        ("discrete_gaussian_bad_zero_variance", "discrete_gaussian", {"sigma2": "0"}),
        ("discrete_laplace_bad_zero_scale", "discrete_laplace", {"scale": "0"}),
        ("poisson_bad_negative_mean", "poisson", {"mean": "-1"}),
        ("sample_bad_unknown_mechanism", "sample", {"mechanism": "gauss", "variance": "9"}),
        ("table_bad_negative_variance", "sample_table", {"mechanism": "skellam", "variance": "-4"}),
    ]
    for name, op, extra in bad:
        yield (
            f"noise/{name}.json",
            _case(
                "noise",
                op,
                seed=case_seed(430).hex(),
                tag=_tag_json(Tag("vectors.noise")),
                count=1,
                error="ParameterError",
                **extra,
            ),
        )


def _plan_table(obj: Mapping[str, Any]) -> list[Json]:
    """Per dropout count d = 0..D: the plan's variances, as reduced-fraction strings."""
    noise_plan = plan(
        mechanism=obj["mechanism"],
        target_variance=Fraction(obj["target_variance"]),
        contributors=int(obj["contributors"]),
        max_dropouts=int(obj["max_dropouts"]),
        max_colluders=int(obj["max_colluders"]),
    )
    return [
        {
            "dropouts": d,
            "initial_share_variance": str(noise_plan.initial_share_variance()),
            "top_up_variance": str(noise_plan.top_up_variance(d)),
            "survivor_variance": str(noise_plan.survivor_variance(d)),
            "honest_variance": str(noise_plan.honest_variance(d)),
            "released_variance": str(noise_plan.released_variance(d)),
        }
        for d in range(int(obj["max_dropouts"]) + 1)
    ]


def _noise_plan_cases() -> Iterator[tuple[str, Json]]:
    for mechanism, target, n, dmax, tmax in (
        ("skellam", "1000", 10, 2, 3),
        ("skellam", "25/2", 100, 5, 10),
        ("dgauss", "4096", 20, 4, 5),
    ):
        body: Json = {
            "mechanism": mechanism,
            "target_variance": target,
            "contributors": n,
            "max_dropouts": dmax,
            "max_colluders": tmax,
        }
        body["per_dropouts"] = _plan_table(body)
        name = f"{mechanism}_n{n}_d{dmax}_t{tmax}"
        yield f"noise_plan/{name}.json", _case("noise_plan", "plan", **body)
    yield (
        "noise_plan/plan_bad_too_many_dropouts_and_colluders.json",
        _case(
            "noise_plan",
            "plan",
            mechanism="skellam",
            target_variance="100",
            contributors=10,
            max_dropouts=5,
            max_colluders=5,
            error="ParameterError",
        ),
    )
    yield (
        "noise_plan/plan_bad_nonpositive_target.json",
        _case(
            "noise_plan",
            "plan",
            mechanism="dgauss",
            target_variance="0",
            contributors=10,
            max_dropouts=1,
            max_colluders=1,
            error="ParameterError",
        ),
    )


def generate() -> dict[str, Json]:
    """Every vector file, by path relative to the vectors directory."""
    out: dict[str, Json] = {}
    for cases in (
        _field_cases(),
        _xof_cases(),
        _shamir_cases(),
        vectors_encoding.cases(),
        _noise_cases(),
        _noise_plan_cases(),
        vectors_accounting.cases(),
        vectors_protocol.cases(),
        vectors_channel.cases(),
    ):
        for path, obj in cases:
            out[path] = obj
    return out


def dumps(obj: Json) -> str:
    """The canonical text of a vector file."""
    return json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=True) + "\n"


#: The file ``write`` leaves in the directory: which families and files it wrote
#: (spec/10-test-vectors.md#writing-vectors). Not ``*.json``, so that checkers
#: that read every ``*.json`` file below a directory never take it for a vector.
MANIFEST = "sdl-vectors.manifest"

#: How many of a folder's foreign files a refusal names before "and N more".
_NAMED_FOREIGN = 3


class WriteRefused(Exception):
    """``write`` will not write into the directory; nothing was written.

    Spec: spec/10-test-vectors.md#writing-vectors

    The message is one line naming the path and why.
    """


def manifest_text(vectors: Mapping[str, Json]) -> str:
    """The manifest's canonical text: sorted, no timestamps, so it is reproducible."""
    return dumps(
        {
            "families": sorted(FAMILIES),
            "files": sorted(vectors),
            "format": FORMAT,
            "written_by": "sdl vectors generate",
        }
    )


def _read_manifest(directory: Path) -> frozenset[str] | None:
    """The files a manifest in ``directory`` lists (under the families it lists).

    ``frozenset()`` when there is no manifest; ``None`` when the name is taken
    by something that is not a manifest ``write`` wrote.
    """
    path = directory / MANIFEST
    if not path.exists() and not path.is_symlink():
        return frozenset()
    if path.is_symlink() or not path.is_file():
        return None
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        return None
    families, files = obj.get("families"), obj.get("files")
    if not isinstance(families, list) or not isinstance(files, list):
        return None
    return frozenset(
        rel
        for rel in files
        if isinstance(rel, str)
        and rel.split("/", 1)[0] in families
        and rel.split("/", 1)[0] in FAMILIES
    )


def _is_family_vector(path: Path, family: str) -> bool:
    """Whether ``path`` is a regular ``*.json`` vector file of ``family``."""
    if path.suffix != ".json" or path.is_symlink() or not path.is_file():
        return False
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(obj, dict) and obj.get("format") == FORMAT and obj.get("family") == family


def _foreign_files(directory: Path, family: str, listed: frozenset[str]) -> list[str]:
    """The entries below ``directory/family`` that SDL did not write, relative to ``directory``.

    An entry is SDL's if the manifest lists it, or if it is a vector file of
    ``family``. Folders are descended into (empty ones are nobody's); a
    symbolic link is never SDL's, and is not followed.
    """
    foreign: list[str] = []
    pending = [directory / family]
    while pending:
        folder = pending.pop()
        with os.scandir(folder) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                path = Path(entry.path)
                rel = path.relative_to(directory).as_posix()
                if entry.is_dir(follow_symlinks=False):
                    pending.append(path)
                    continue
                regular = entry.is_file(follow_symlinks=False)
                if not (regular and (rel in listed or _is_family_vector(path, family))):
                    foreign.append(rel)
    return sorted(foreign)


def _refusal(directory: Path, family: str, listed: frozenset[str]) -> str | None:
    """Why ``write`` must not replace ``directory/family``, or ``None`` if it may."""
    target = directory / family
    if target.is_symlink():
        return f"{target} is a symbolic link, not a folder sdl wrote"
    if not target.exists():
        return None
    if not target.is_dir():
        return f"{target} is not a folder"
    foreign = _foreign_files(directory, family, listed)
    if not foreign:
        return None
    named = ", ".join(foreign[:_NAMED_FOREIGN])
    if len(foreign) > _NAMED_FOREIGN:
        named += f", and {len(foreign) - _NAMED_FOREIGN} more"
    return f"{target}/ holds files sdl did not write ({named})"


def check_writable(directory: Path, *, force: bool = False) -> None:
    """Refuse, before anything is written, a ``directory`` that ``write`` must not touch.

    Spec: spec/10-test-vectors.md#writing-vectors

    Raises:
        WriteRefused: ``directory`` is not a folder; or (unless ``force``) a
            family folder in it holds files SDL did not write, is a file or a
            symbolic link, or the manifest's name is taken by another file.
    """
    if directory.exists() and not directory.is_dir():
        raise WriteRefused(f"{directory} is not a directory")
    if force or not directory.exists():
        return
    listed = _read_manifest(directory)
    if listed is None:
        raise WriteRefused(
            f"{directory / MANIFEST} is not a manifest sdl wrote; "
            "use --force to replace it, or choose another DIR"
        )
    for family in FAMILIES:
        why = _refusal(directory, family, listed)
        if why is not None:
            raise WriteRefused(f"{why}; use --force to replace it, or choose another DIR")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def write(directory: Path, vectors: Mapping[str, Json], *, force: bool = False) -> list[Path]:
    """Write the vectors into ``directory``, replacing its family folders atomically.

    Spec: spec/10-test-vectors.md#writing-vectors

    A family folder that already exists is replaced only if every file in it
    is SDL's: listed in the manifest (:data:`MANIFEST`) an earlier run left,
    or a vector file of that family. That is checked before anything is
    written. Then everything is written to a temporary folder inside
    ``directory``; only when all files are written are the family folders
    swapped in, so an interrupted run never leaves a half-written set.
    Finally the manifest is replaced. Files outside the family folders are
    left alone.

    Pre-conditions:
        - every key of ``vectors`` is ``<family>/<name>.json`` for a family
          of :data:`FAMILIES`.

    Raises:
        WriteRefused: see :func:`check_writable` (nothing was written).
        OSError: ``directory`` cannot be created or written.
    """
    check_writable(directory, force=force)
    directory.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".vectors-", dir=directory))
    try:
        for rel, obj in vectors.items():
            path = staging / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(dumps(obj), encoding="utf-8")
        (staging / MANIFEST).write_text(manifest_text(vectors), encoding="utf-8")
        replaced = staging / ".replaced"
        replaced.mkdir()
        for family in FAMILIES:
            target = directory / family
            if target.exists() or target.is_symlink():
                os.replace(target, replaced / family)
            if (staging / family).exists():
                os.replace(staging / family, target)
            if (replaced / family).exists() or (replaced / family).is_symlink():
                _remove(replaced / family)
        manifest = directory / MANIFEST
        if manifest.is_dir() and not manifest.is_symlink():  # only with force
            shutil.rmtree(manifest)
        os.replace(staging / MANIFEST, manifest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return sorted(directory / rel for rel in vectors)


# ---------------------------------------------------------------------- checking


@dataclass
class FileResult:
    """The outcome of checking one vector file."""

    path: str
    family: str
    operation: str
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class _Mismatch:
    """Collects differences between expected and recomputed values."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def eq(self, where: str, expected: object, actual: object) -> None:
        if isinstance(expected, list) and isinstance(actual, list):
            if len(expected) != len(actual):
                self.problems.append(
                    f"{where}: expected {len(actual)} items, file has {len(expected)}"
                )
                return
            for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
                self.eq(f"{where}[{i}]", e, a)
            return
        if isinstance(expected, dict) and isinstance(actual, dict):
            for key in sorted(set(expected) | set(actual)):
                if key not in expected or key not in actual:
                    self.problems.append(f"{where}.{key}: present on one side only")
                else:
                    self.eq(f"{where}.{key}", expected[key], actual[key])
            return
        if expected != actual:
            self.problems.append(f"{where}: file has {expected!r}, recomputed {actual!r}")


def _check_field(obj: Mapping[str, Any], out: _Mismatch) -> None:
    fld = _field_of(obj)
    op = obj["operation"]
    if "field" in obj and obj["field"] in FIELDS and FIELDS[obj["field"]] is not fld:
        out.problems.append(f"field: {obj['field']} does not have modulus {obj['modulus']}")
    if op == "arithmetic":
        a, b = fld.from_json(obj["a"]), fld.from_json(obj["b"])
        out.eq("encoded_size", obj["encoded_size"], fld.ENCODED_SIZE)
        out.eq("add", obj["add"], (a + b).to_json())
        out.eq("sub", obj["sub"], (a - b).to_json())
        out.eq("mul", obj["mul"], (a * b).to_json())
        out.eq("neg_a", obj["neg_a"], (-a).to_json())
        out.eq("inv_a", obj["inv_a"], a.inv().to_json())
        out.eq("encoded_a", obj["encoded_a"], a.encode().hex())
        out.eq("decoded", a.to_json(), fld.decode(bytes.fromhex(obj["encoded_a"])).to_json())
        signed = np.array([int(v) for v in obj["signed_values"]], dtype=np.int64)
        out.eq("signed_encoded", obj["signed_encoded"], fld.signed_encode(signed).to_json())
        out.eq(
            "signed_values",
            obj["signed_values"],
            _dec(int(v) for v in fld.from_json(obj["signed_encoded"]).signed_decode()),
        )
        mm = obj["matmul"]
        left = fld.stack([fld.from_json(r) for r in mm["left"]])
        right = fld.stack([fld.from_json(r) for r in mm["right"]])
        prod = left @ right
        out.eq("matmul.product", mm["product"], [prod[r].to_json() for r in range(prod.shape[0])])
    elif op == "decode":
        expect_error(obj, lambda: fld.decode(bytes.fromhex(obj["input"])), out.problems)
    elif op == "from_json":
        expect_error(obj, lambda: fld.from_json(obj["input"]), out.problems)
    elif op == "signed_encode":
        expect_error(obj, lambda: fld.signed_encode([int(v) for v in obj["input"]]), out.problems)
    else:
        out.problems.append(f"operation: unknown field operation {op!r}")


def _check_xof(obj: Mapping[str, Any], out: _Mismatch) -> None:
    op = obj["operation"]
    if "error" in obj:
        expect_error(
            obj,
            lambda: Xof(as_seed(bytes.fromhex(obj["seed"])), _tag_from(obj["tag"])),
            out.problems,
        )
        return
    seed, tag = as_seed(bytes.fromhex(obj["seed"])), _tag_from(obj["tag"])
    if op == "derive_seed":
        out.eq("output", obj["output"], derive_seed(seed, tag).hex())
        return
    if op != "stream":
        out.problems.append(f"operation: unknown xof operation {op!r}")
        return
    out.eq("tag_encoding", obj["tag_encoding"], tag.encode().hex())
    xof = Xof(seed, tag)
    for i, step in enumerate(obj["operations"]):
        where = f"operations[{i}]({step['op']}).output"
        kind = step["op"]
        if kind == "next_bytes":
            out.eq(where, step["output"], xof.next_bytes(_count(step["n"], "n")).hex())
        elif kind == "uniform_ints":
            got = xof.uniform_ints(int(step["bound"]), count=_count(step["count"], "count"))
            out.eq(where, step["output"], _dec(int(v) for v in got))
        elif kind == "field_elements":
            fld = field_for_modulus(int(step["modulus"]))
            elements = xof.field_elements(fld, _count(step["count"], "count"))
            out.eq(where, step["output"], elements.to_json())
        elif kind == "uniform_int":
            out.eq(where, step["output"], str(xof.uniform_int(int(step["bound"]))))
        elif kind == "bernoulli":
            got_b = xof.bernoulli(int(step["numerator"]), int(step["denominator"]))
            out.eq(where, step["output"], got_b)
        else:
            out.problems.append(f"operations[{i}]: unknown step {kind!r}")
            return


def _check_shamir(obj: Mapping[str, Any], out: _Mismatch) -> None:
    op = obj["operation"]
    fld = _field_of(obj)
    length = int(obj["length"])
    if op == "share":

        def run_share() -> list[Share]:
            sh = _shamir_from(obj)
            return sh.share(
                fld.from_json(obj["secret"]),
                points=[int(x) for x in obj["points"]],
                seed=as_seed(bytes.fromhex(obj["seed"])),
            )

        if "error" in obj:
            expect_error(obj, run_share, out.problems)
            return
        shares = run_share()
        out.eq("shares", obj["shares"], _shares_json(shares))
        by_x = {s.x: s for s in shares}
        chosen = [by_x[int(x)] for x in obj["reconstruct_from"] if int(x) in by_x]
        secret = _shamir_from(obj).reconstruct(chosen, length=length)
        out.eq("secret (reconstructed from reconstruct_from)", obj["secret"], secret.to_json())
    elif op == "robust_reconstruct":
        e = int(obj["max_errors"])

        def run_robust() -> object:
            sh = _shamir_from(obj)
            return sh.robust_reconstruct(
                _shares_from(fld, obj["shares"]), length=length, max_errors=e
            )

        if "error" in obj:
            expect_error(obj, run_robust, out.problems)
            return
        rec = _shamir_from(obj).robust_reconstruct(
            _shares_from(fld, obj["shares"]), length=length, max_errors=e
        )
        out.eq("secret", obj["secret"], rec.secret.to_json())
        out.eq("bad_points", obj["bad_points"], _dec(rec.bad_points))
    else:
        out.problems.append(f"operation: unknown shamir operation {op!r}")


def _check_noise(obj: Mapping[str, Any], out: _Mismatch) -> None:
    op = obj["operation"]
    if op not in ("sample", "sample_table") and op not in _NOISE_OPS:
        out.problems.append(f"operation: unknown noise operation {op!r}")
        return
    if "error" in obj:
        expect_error(obj, lambda: _noise_draws(obj), out.problems)
        return
    out.eq("output", obj["output"], _noise_draws(obj))


def _check_noise_plan(obj: Mapping[str, Any], out: _Mismatch) -> None:
    if obj["operation"] != "plan":
        out.problems.append(f"operation: unknown noise_plan operation {obj['operation']!r}")
        return
    if "error" in obj:
        expect_error(obj, lambda: _plan_table(obj), out.problems)
        return
    out.eq("per_dropouts", obj["per_dropouts"], _plan_table(obj))


_CHECKERS: dict[str, Callable[[Mapping[str, Any], _Mismatch], None]] = {
    "field": _check_field,
    "xof": _check_xof,
    "shamir": _check_shamir,
    "encoding": lambda obj, out: vectors_encoding.check(obj, out.problems),
    "noise": _check_noise,
    "noise_plan": _check_noise_plan,
    "accounting": lambda obj, out: vectors_accounting.check(obj, out.problems),
    "protocol": lambda obj, out: vectors_protocol.check(obj, out.problems),
    "channel": lambda obj, out: vectors_channel.check(obj, out.problems),
}


def check_file(path: Path, root: Path) -> FileResult:
    """Check one vector file; problems name the file's fields that mismatch."""
    rel = path.relative_to(root).as_posix()
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        # ValueError: not JSON, or an integer past int()'s digit limit.
        return FileResult(rel, "?", "?", [f"unreadable: {exc}"])
    except RecursionError:
        return FileResult(rel, "?", "?", ["unreadable: JSON nested too deeply to read"])
    try:
        return _check_object(rel, obj)
    except RecursionError:  # e.g. formatting a deeply nested "format" for the problem
        return FileResult(rel, "?", "?", ["malformed: a value is nested too deeply to check"])


def _check_object(rel: str, obj: object) -> FileResult:
    """:func:`check_file` for the file's parsed JSON value."""
    if not isinstance(obj, dict):
        return FileResult(rel, "?", "?", ["not a JSON object"])
    family, op = str(obj.get("family", "?")), str(obj.get("operation", "?"))
    result = FileResult(rel, family, op)
    if obj.get("format") != FORMAT:
        result.problems.append(f"format: expected {FORMAT!r}, got {obj.get('format')!r}")
        return result
    checker = _CHECKERS.get(family)
    if checker is None:
        result.problems.append(f"family: unknown family {family!r}")
        return result
    mismatch = _Mismatch()
    try:
        checker(obj, mismatch)
    except _OverBound as exc:
        mismatch.problems.append(f"malformed: {exc}")
    except (KeyError, TypeError, ValueError) as exc:
        # ValueError includes SdlError's ParameterError/EncodingError: the
        # file's inputs themselves are malformed.
        mismatch.problems.append(f"malformed: {type(exc).__name__}: {exc}")
    except SdlError as exc:
        mismatch.problems.append(f"unexpected error: {type(exc).__name__}: {exc}")
    except RecursionError:
        mismatch.problems.append("malformed: a value is nested too deeply to check")
    except (MemoryError, OverflowError) as exc:
        # A size or count in the file too large to compute with.
        mismatch.problems.append(f"malformed: {type(exc).__name__}: {exc}")
    result.problems.extend(mismatch.problems)
    return result


def check(directory: Path) -> list[FileResult]:
    """Check every ``*.json`` file below ``directory`` (hidden folders skipped)."""
    files = sorted(
        p
        for p in directory.rglob("*.json")
        if not any(part.startswith(".") for part in p.relative_to(directory).parts)
    )
    return [check_file(p, directory) for p in files]
