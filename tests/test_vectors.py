"""The committed test vectors: reproducible, self-checking, and right by an independent oracle.

Spec: spec/10-test-vectors.md
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from protocol.errors import CHANNEL_FAULTS, ERRORS_BY_NAME
from reference.cli.main import main
from reference.oracle import channel, vectors

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "spec" / "vectors"


def _committed_files() -> dict[str, str]:
    return {
        p.relative_to(COMMITTED).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted(COMMITTED.rglob("*.json"))
    }


def test_committed_vectors_equal_a_fresh_generation() -> None:
    """CI regenerates the vectors; any difference from the committed copy fails."""
    fresh = {rel: vectors.dumps(obj) for rel, obj in vectors.generate().items()}
    committed = _committed_files()
    assert sorted(committed) == sorted(fresh), "vector file set differs: run sdl vectors generate"

    def same(rel: str) -> bool:
        if not rel.startswith("channel/"):
            return committed[rel] == fresh[rel]
        # Sealing draws a fresh ephemeral key: compare all but the fields the
        # file names randomized (spec/10-test-vectors.md#channel-vectors).
        mask = channel.masked
        return mask(json.loads(committed[rel])) == mask(json.loads(fresh[rel]))

    stale = [rel for rel in fresh if not same(rel)]
    assert stale == [], f"stale committed vectors: {stale}"


def test_committed_vectors_pass_check() -> None:
    results = vectors.check(COMMITTED)
    assert results, "no vectors found"
    assert [r.path for r in results if not r.ok] == []


def test_every_family_has_negative_cases_naming_a_typed_error() -> None:
    files = _committed_files()
    for family in vectors.FAMILIES:
        bad = [rel for rel in files if rel.startswith(f"{family}/") and "bad_" in rel]
        assert bad, f"family {family} has no *_bad_<fault>.json case"
        for rel in bad:
            obj = json.loads(files[rel])
            if family == "protocol":
                # A forged transcript: verification names the line, not an
                # error class (spec/10-test-vectors.md#protocol-vectors).
                assert obj["valid"] is False and obj["line"] >= 1, rel
                continue
            error = obj["error"]
            assert error in ERRORS_BY_NAME, (rel, error)
            if family == "channel":
                assert error == "ChannelError" and obj["fault"] in CHANNEL_FAULTS, rel


def _interpolate_at(points: list[tuple[int, int]], z: int, p: int) -> int:
    """Lagrange interpolation at z over GF(p) with Python ints (independent of protocol/)."""
    total = 0
    for i, (xi, yi) in enumerate(points):
        num, den = 1, 1
        for j, (xj, _) in enumerate(points):
            if i != j:
                num = num * (z - xj) % p
                den = den * (xi - xj) % p
        total = (total + yi * num * pow(den, -1, p)) % p
    return total


def test_shamir_share_vectors_are_right_by_independent_interpolation() -> None:
    """Every share vector's shares lie on degree-``degree`` polynomials through the secret."""
    cases = [
        json.loads(text)
        for rel, text in _committed_files().items()
        if rel.startswith("shamir/") and '"operation": "share"' in text and "bad_" not in rel
    ]
    assert len(cases) >= 4
    for case in cases:
        p, deg, k = int(case["modulus"]), int(case["degree"]), int(case["packing"])
        assert deg == int(case["threshold"]) + k - 1
        secret = [int(v) for v in case["secret"]]
        shares = [(int(s["x"]), [int(v) for v in s["y"]]) for s in case["shares"]]
        m = len(shares[0][1])
        assert m == -(-len(secret) // k)
        padded = secret + [0] * (m * k - len(secret))
        for j in range(m):
            column = [(x, y[j]) for x, y in shares]
            base = column[: deg + 1]
            # Every share lies on the polynomial through the first degree + 1 ...
            for x, y in column[deg + 1 :]:
                assert _interpolate_at(base, x, p) == y, (case["seed"], j, x)
            # ... and that polynomial carries the secrets at 0, -1, ..., -(k-1).
            for i in range(k):
                assert _interpolate_at(base, -i % p, p) == padded[j * k + i]


def _copy_vectors(tmp_path: Path) -> Path:
    target = tmp_path / "vectors"
    shutil.copytree(COMMITTED, target)
    return target


def test_changing_one_share_digit_fails_check_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = _copy_vectors(tmp_path)
    path = target / "shamir" / "plain_t9_n20.json"
    obj = json.loads(path.read_text(encoding="utf-8"))
    digits = obj["shares"][4]["y"][2]
    last = digits[-1]
    obj["shares"][4]["y"][2] = digits[:-1] + ("1" if last != "1" else "2")
    path.write_text(vectors.dumps(obj), encoding="utf-8")
    assert main(["vectors", "check", str(target)]) == 1
    out = capsys.readouterr().out
    assert "shamir/plain_t9_n20.json" in out
    assert "shares[4].y[2]" in out
    assert "1 failed" in out


def test_a_wrong_expected_error_fails_check(tmp_path: Path) -> None:
    target = _copy_vectors(tmp_path)
    path = target / "shamir" / "reconstruct_bad_too_few.json"
    obj = json.loads(path.read_text(encoding="utf-8"))
    obj["error"] = "InconsistentShares"
    path.write_text(vectors.dumps(obj), encoding="utf-8")
    failed = [r for r in vectors.check(target) if not r.ok]
    assert [r.path for r in failed] == ["shamir/reconstruct_bad_too_few.json"]
    assert "expected InconsistentShares, got ThresholdNotMet" in failed[0].problems[0]


def test_a_negative_case_that_succeeds_fails_check(tmp_path: Path) -> None:
    target = _copy_vectors(tmp_path)
    path = target / "field" / "Field31_bad_json_noncanonical.json"
    obj = json.loads(path.read_text(encoding="utf-8"))
    obj["input"] = ["7"]
    path.write_text(vectors.dumps(obj), encoding="utf-8")
    failed = [r for r in vectors.check(target) if not r.ok]
    assert [r.path for r in failed] == ["field/Field31_bad_json_noncanonical.json"]


def test_malformed_and_foreign_files_fail_check(tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text("{not json", encoding="utf-8")
    (tmp_path / "other.json").write_text('{"format": "sdl-vectors/999"}', encoding="utf-8")
    results = {r.path: r for r in vectors.check(tmp_path)}
    assert not results["broken.json"].ok
    assert "format" in results["other.json"].problems[0]


def test_generate_replaces_families_atomically_and_keeps_other_files(tmp_path: Path) -> None:
    (tmp_path / "shamir").mkdir()
    # A leftover of an earlier generation (a vector of the family): removed.
    stale = {"format": "sdl-vectors/1", "family": "shamir", "operation": "share"}
    (tmp_path / "shamir" / "stale.json").write_text(json.dumps(stale), encoding="utf-8")
    (tmp_path / "NOTES.txt").write_text("keep me", encoding="utf-8")
    written = vectors.write(tmp_path, vectors.generate())
    assert not (tmp_path / "shamir" / "stale.json").exists()
    assert (tmp_path / "NOTES.txt").read_text(encoding="utf-8") == "keep me"
    assert all(p.exists() for p in written)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_cli_generate_then_check_round_trip(tmp_path: Path) -> None:
    assert main(["vectors", "generate", str(tmp_path / "d")]) == 0
    assert main(["vectors", "check", str(tmp_path / "d")]) == 0


def test_noise_plan_vectors_follow_the_formulas_of_section_7() -> None:
    """Independent of protocol/: v0 = σ*²/(n−T), s(d) = σ*²/(n−d−T), top-up s(d) − v0,
    honest (n−d−T)·s(d) = σ*², released (n−d)·s(d)."""
    from fractions import Fraction  # noqa: PLC0415

    cases = [
        json.loads(text)
        for rel, text in _committed_files().items()
        if rel.startswith("noise_plan/") and "bad_" not in rel
    ]
    assert cases
    for case in cases:
        target = Fraction(case["target_variance"])
        n, t = case["contributors"], case["max_colluders"]
        assert [row["dropouts"] for row in case["per_dropouts"]] == list(
            range(case["max_dropouts"] + 1)
        )
        for row in case["per_dropouts"]:
            d = row["dropouts"]
            v0, s = target / (n - t), target / (n - d - t)
            assert Fraction(row["initial_share_variance"]) == v0
            assert Fraction(row["survivor_variance"]) == s
            assert Fraction(row["top_up_variance"]) == s - v0
            assert Fraction(row["honest_variance"]) == (n - d - t) * s == target
            assert Fraction(row["released_variance"]) == (n - d) * s
