"""Spec and code must not drift: citations resolve, quoted excerpts match the code.

Spec: spec/README.md
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CODE_FILES = sorted([*ROOT.glob("protocol/*.py"), *ROOT.glob("reference/**/*.py")])
SPEC_FILES = sorted(ROOT.glob("spec/*.md"))

CITATION = re.compile(r"\b(spec/[\w./-]+\.md)(?:#([\w-]+))?|\b(proofs_notes/[\w./-]+\.md)")
EXCERPT_START = re.compile(r"^\s*# spec-excerpt: ([\w-]+)\s*$")
EXCERPT_END = re.compile(r"^\s*# end-spec-excerpt\s*$")
SPEC_EXCERPT = re.compile(r"<!-- spec-excerpt: ([\w-]+) -->\n```python\n(.*?)```", re.DOTALL)


def slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found = set()
    in_fence = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_fence = not in_fence
        elif not in_fence and line.startswith("#"):
            found.add(slug(line.lstrip("#")))
    return found


def test_slug_matches_github_rules() -> None:
    assert slug(" 4. Secret sharing") == "4-secret-sharing"
    assert slug("Robust reconstruct") == "robust-reconstruct"
    assert slug("Uniform integers (rejection)") == "uniform-integers-rejection"


def _citations() -> list[tuple[str, str, str | None]]:
    out = []
    for path in CODE_FILES:
        text = path.read_text(encoding="utf-8")
        for m in CITATION.finditer(text):
            if m.group(3):
                out.append((path.relative_to(ROOT).as_posix(), m.group(3), None))
            else:
                out.append((path.relative_to(ROOT).as_posix(), m.group(1), m.group(2)))
    return out


def test_code_cites_the_spec() -> None:
    cited = {target for _, target, _ in _citations()}
    assert {"spec/02-field.md", "spec/03-xof.md", "spec/04-shamir.md"} <= cited


@pytest.mark.parametrize(("source", "target", "anchor"), _citations())
def test_citation_resolves(source: str, target: str, anchor: str | None) -> None:
    path = ROOT / target
    assert path.is_file(), f"{source} cites missing {target}"
    if anchor is not None:
        assert anchor in anchors(path), f"{source} cites missing anchor {target}#{anchor}"


def _code_excerpts() -> dict[str, str]:
    found: dict[str, str] = {}
    for path in CODE_FILES:
        lines = path.read_text(encoding="utf-8").splitlines()
        name: str | None = None
        body: list[str] = []
        for line in lines:
            start = EXCERPT_START.match(line)
            if start:
                assert name is None, f"nested excerpt in {path}"
                name, body = start.group(1), []
            elif EXCERPT_END.match(line):
                assert name is not None, f"unmatched end-spec-excerpt in {path}"
                assert name not in found, f"excerpt {name} defined twice"
                found[name] = textwrap.dedent("\n".join(body)).strip("\n")
                name = None
            elif name is not None:
                body.append(line.rstrip())
        assert name is None, f"unterminated excerpt {name} in {path}"
    return found


def _spec_excerpts() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in SPEC_FILES:
        for m in SPEC_EXCERPT.finditer(path.read_text(encoding="utf-8")):
            found.setdefault(m.group(1), []).append(m.group(2).strip("\n"))
    return found


def test_every_code_excerpt_is_quoted_once_and_verbatim() -> None:
    code, spec = _code_excerpts(), _spec_excerpts()
    assert code, "no spec-excerpt markers in the code"
    assert sorted(spec) == sorted(code), "excerpt names differ between code and spec"
    for name, body in code.items():
        assert len(spec[name]) == 1, f"excerpt {name} quoted {len(spec[name])} times"
        assert spec[name][0] == body, f"spec's copy of excerpt {name} is stale"


NOTE_TEST_REF = re.compile(r"`(tests/test_\w+\.py)(?:::(\w+))?`")


def _note_test_refs() -> list[tuple[str, str, str | None]]:
    out = []
    for note in sorted(ROOT.glob("proofs_notes/*.md")):
        for m in NOTE_TEST_REF.finditer(note.read_text(encoding="utf-8")):
            out.append((note.name, m.group(1), m.group(2)))
    return out


def test_every_proof_note_names_a_checking_test() -> None:
    notes = {p.name for p in ROOT.glob("proofs_notes/*.md")}
    assert notes, "no proof notes"
    assert {name for name, _, _ in _note_test_refs()} == notes


@pytest.mark.parametrize(("note", "test_file", "test_name"), _note_test_refs())
def test_proof_note_test_reference_exists(note: str, test_file: str, test_name: str | None) -> None:
    path = ROOT / test_file
    assert path.is_file(), f"{note} names missing {test_file}"
    if test_name is not None:
        source = path.read_text(encoding="utf-8")
        # A test function, a test class, or a name bound to one
        # (``TestStatefulRound = RoundMachine.TestCase``).
        defined = rf"^(def {test_name}\(|class {test_name}\b|{test_name} = )"
        assert re.search(defined, source, re.MULTILINE), (
            f"{note} names {test_file}::{test_name}, which does not exist"
        )
