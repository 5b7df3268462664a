"""The vector format's JSON Schema: every committed vector file matches it, and broken files do not.

Spec: spec/10-test-vectors.md#format, spec/schemas/vector.schema.json

The repository has no JSON Schema dependency, so this file carries a small
draft 2020-12 validator for exactly the keywords the schema uses; a keyword
it does not know makes it fail loudly rather than be ignored.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from reference.oracle import vectors
from reference.oracle.format import FORMAT

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_PATH = ROOT / "spec" / "schemas" / "vector.schema.json"
COMMITTED = ROOT / "spec" / "vectors"
SCHEMA: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))

# ------------------------------------------------------------- the validator

#: Keywords that only annotate: they never make an instance fail.
_ANNOTATIONS = {"$schema", "$id", "$defs", "title", "description"}
_ASSERTIONS = {
    "$ref",
    "type",
    "const",
    "enum",
    "required",
    "properties",
    "additionalProperties",
    "items",
    "minItems",
    "minimum",
    "pattern",
    "allOf",
    "anyOf",
    "if",
    "then",
    "else",
}


def _has_type(value: object, name: str) -> bool:
    if name == "object":
        return isinstance(value, dict)
    if name == "array":
        return isinstance(value, list)
    if name == "string":
        return isinstance(value, str)
    if name == "boolean":
        return isinstance(value, bool)
    if name == "null":
        return value is None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if name == "number":
        return True
    if name == "integer":
        return isinstance(value, int) or value.is_integer()
    raise ValueError(f"unknown JSON type {name!r}")


def _json_equal(a: object, b: object) -> bool:
    # JSON equality: true is not 1, but 1 is 1.0.
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return a == b


def _resolve(ref: str, root: Mapping[str, Any]) -> Mapping[str, Any]:
    if not ref.startswith("#/"):
        raise ValueError(f"only local references are supported; got {ref!r}")
    node: Any = root
    for part in ref[2:].split("/"):
        node = node[part]
    return node  # type: ignore[no-any-return]


def validate(
    instance: object, schema: Mapping[str, Any], root: Mapping[str, Any], path: str = "$"
) -> list[str]:
    """The ways ``instance`` fails ``schema`` (draft 2020-12, the keywords above); [] if none."""
    unknown = set(schema) - _ANNOTATIONS - _ASSERTIONS
    if unknown:
        raise ValueError(f"validator does not support keywords {sorted(unknown)} (at {path})")
    errors: list[str] = []
    if "$ref" in schema:
        errors += validate(instance, _resolve(schema["$ref"], root), root, path)
    if "type" in schema and not _has_type(instance, schema["type"]):
        return [*errors, f"{path}: expected {schema['type']}, got {instance!r}"]
    if "const" in schema and not _json_equal(instance, schema["const"]):
        errors.append(f"{path}: expected {schema['const']!r}, got {instance!r}")
    if "enum" in schema and not any(_json_equal(instance, v) for v in schema["enum"]):
        errors.append(f"{path}: {instance!r} is not one of {schema['enum']}")
    if isinstance(instance, dict):
        for key in schema.get("required", []):
            if key not in instance:
                errors.append(f"{path}: missing required key {key!r}")
        props = schema.get("properties", {})
        for key, sub in props.items():
            if key in instance:
                errors += validate(instance[key], sub, root, f"{path}.{key}")
        if schema.get("additionalProperties") is False:
            extra = sorted(set(instance) - set(props))
            if extra:
                errors.append(f"{path}: unexpected keys {extra}")
    if isinstance(instance, list):
        if "items" in schema:
            for i, item in enumerate(instance):
                errors += validate(item, schema["items"], root, f"{path}[{i}]")
        if len(instance) < schema.get("minItems", 0):
            errors.append(f"{path}: fewer than {schema['minItems']} items")
    if (
        isinstance(instance, str)
        and "pattern" in schema
        and re.search(schema["pattern"], instance) is None
    ):
        errors.append(f"{path}: {instance!r} does not match {schema['pattern']}")
    if (
        "minimum" in schema
        and isinstance(instance, int | float)
        and not isinstance(instance, bool)
        and instance < schema["minimum"]
    ):
        errors.append(f"{path}: {instance!r} < {schema['minimum']}")
    for sub in schema.get("allOf", []):
        errors += validate(instance, sub, root, path)
    if "anyOf" in schema:
        branches = [validate(instance, sub, root, path) for sub in schema["anyOf"]]
        if all(branches):
            errors.append(f"{path}: matches no anyOf branch: {[b[0] for b in branches]}")
    if "if" in schema:
        branch = "then" if not validate(instance, schema["if"], root, path) else "else"
        if branch in schema:
            errors += validate(instance, schema[branch], root, path)
    return errors


def schema_errors(obj: object) -> list[str]:
    """Validate one vector object against spec/schemas/vector.schema.json."""
    return validate(obj, SCHEMA, SCHEMA)


# --------------------------------------------------------------- the schema


def _committed() -> list[Path]:
    return sorted(
        p
        for p in COMMITTED.rglob("*.json")
        if not any(part.startswith(".") for part in p.relative_to(COMMITTED).parts)
    )


def _load(rel: str) -> dict[str, Any]:
    obj: dict[str, Any] = json.loads((COMMITTED / rel).read_text(encoding="utf-8"))
    return obj


def test_schema_is_draft_2020_12_and_names_the_format_and_families() -> None:
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert SCHEMA["$id"].endswith("/spec/schemas/vector.schema.json")
    assert SCHEMA["type"] == "object"
    assert SCHEMA["properties"]["format"] == {"const": FORMAT}
    assert SCHEMA["properties"]["family"]["enum"] == list(vectors.FAMILIES)
    assert set(SCHEMA["required"]) == {"format", "family", "operation"}
    branches = {b["if"]["properties"]["family"]["const"] for b in SCHEMA["allOf"]}
    assert branches == set(vectors.FAMILIES)


def test_schema_operations_are_exactly_those_of_the_committed_vectors() -> None:
    """No family's operation enum omits an operation in use, or lists one no vector exercises."""
    used: dict[str, set[str]] = {}
    for path in _committed():
        obj = json.loads(path.read_text(encoding="utf-8"))
        used.setdefault(obj["family"], set()).add(obj["operation"])
    declared = {
        family: set(SCHEMA["$defs"][f"family_{family}"]["properties"]["operation"]["enum"])
        for family in vectors.FAMILIES
    }
    assert declared == used


@pytest.mark.parametrize(
    "rel", [p.relative_to(COMMITTED).as_posix() for p in _committed()], ids=str
)
def test_every_committed_vector_file_matches_the_schema(rel: str) -> None:
    assert schema_errors(_load(rel)) == []


def test_there_are_committed_vectors_of_every_family() -> None:
    families = {p.relative_to(COMMITTED).parts[0] for p in _committed()}
    assert families == set(vectors.FAMILIES)


def test_a_wrong_format_string_fails() -> None:
    obj = _load("field/Field31_arithmetic.json")
    errors = schema_errors(dict(obj, format="sdl-vectors/2"))
    assert errors and all("$.format" in e for e in errors)


def test_an_unknown_family_fails() -> None:
    errors = schema_errors(dict(_load("xof/derive_seed.json"), family="xofs"))
    assert len(errors) == 1 and "$.family" in errors[0]


def test_an_unknown_operation_fails() -> None:
    errors = schema_errors(dict(_load("accounting/rdp_gaussian.json"), operation="delta"))
    assert len(errors) == 1 and "$.operation" in errors[0]


@pytest.mark.parametrize(
    ("rel", "key"),
    [
        ("field/Field61_arithmetic.json", "format"),
        ("field/Field61_arithmetic.json", "operation"),
        ("shamir/plain_t1_n3.json", "seed"),
        ("shamir/plain_t1_n3.json", "degree"),
        ("noise/poisson_15_2.json", "mean"),
        ("encoding/bounds_rotate_d1000.json", "params"),
        ("noise_plan/skellam_n10_d2_t3.json", "max_colluders"),
        ("accounting/epsilon_gaussian_tight.json", "sampler_distance"),
        ("accounting/rdp_bad_negative_variance.json", "event"),
        ("protocol/verify_bad_altered_share.json", "line"),
    ],
)
def test_a_missing_required_input_fails(rel: str, key: str) -> None:
    obj = _load(rel)
    del obj[key]
    errors = schema_errors(obj)
    assert any(f"missing required key {key!r}" in e for e in errors), errors


@pytest.mark.parametrize(
    ("rel", "key"),
    [
        ("accounting/rdp_poisson_gaussian.json", "rdp"),
        ("accounting/epsilon_gaussian_tight.json", "order"),
        ("shamir/robust_corrected_e2.json", "bad_points"),
        ("xof/stream_0.json", "operations"),
    ],
)
def test_a_positive_case_without_its_expected_output_fails(rel: str, key: str) -> None:
    obj = _load(rel)
    del obj[key]
    errors = schema_errors(obj)
    assert errors and "anyOf" in errors[0], errors
    # The same file as a negative case needs no outputs.
    assert schema_errors(dict(obj, error="ParameterError")) == []


def test_a_negative_only_operation_needs_its_error() -> None:
    obj = _load("field/Field31_bad_decode_out_of_range.json")
    del obj["error"]
    assert any("missing required key 'error'" in e for e in schema_errors(obj))


def test_accounting_events_are_checked_by_type_and_nesting() -> None:
    obj = _load("accounting/rdp_sequence.json")
    broken = copy.deepcopy(obj)
    broken["event"]["events"][1]["event"]["sigma"] = 1.0  # a DiscreteGaussianEvent, nested
    errors = schema_errors(broken)
    assert any("unexpected keys ['sigma']" in e for e in errors), errors
    wrong = copy.deepcopy(obj)
    wrong["event"]["events"][2]["count"] = "3"
    assert any("$.event.events[2].count" in e for e in schema_errors(wrong))


def test_wrongly_typed_values_fail() -> None:
    obj = _load("shamir/plain_t1_n3.json")
    assert schema_errors(dict(obj, modulus=int(obj["modulus"])))
    assert schema_errors(dict(obj, seed=obj["seed"].upper()))
    assert schema_errors(dict(_load("accounting/rdp_gaussian.json"), orders=[]))
    assert schema_errors(dict(_load("noise/skellam_10.json"), count=True))


def test_the_validator_refuses_keywords_it_does_not_implement() -> None:
    with pytest.raises(ValueError, match="oneOf"):
        validate({}, {"oneOf": [{}]}, {})
    assert validate(1.0, {"type": "integer"}, {}) == []
    assert validate(True, {"type": "integer"}, {}) != []
    assert validate(1, {"const": True}, {}) != []
