"""``sdl vectors generate DIR`` replaces only what it wrote before, and refuses the rest.

Spec: spec/10-test-vectors.md#writing-vectors
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from reference.cli.main import main
from reference.oracle import vectors
from reference.oracle.format import FORMAT

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "spec" / "vectors"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One generation, copied by the tests that need a directory sdl wrote."""
    directory = tmp_path_factory.mktemp("generated") / "vectors"
    assert main(["vectors", "generate", str(directory)]) == 0
    return directory


def _copy(src: Path, tmp_path: Path) -> Path:
    target = tmp_path / "vectors"
    shutil.copytree(src, target, symlinks=True)
    return target


def _tree(directory: Path) -> dict[str, bytes]:
    return {
        p.relative_to(directory).as_posix(): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("sdl vectors generate: error: "), lines[0]
    return lines[0]


def _json_files(directory: Path) -> list[str]:
    return sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*.json"))


def _clone_like(tmp_path: Path) -> Path:
    """A source checkout: a ``protocol/`` package, the name of a vector family."""
    clone = tmp_path / "clone"
    (clone / "protocol").mkdir(parents=True)
    (clone / "protocol" / "__init__.py").write_text('"""SDL."""\n', encoding="utf-8")
    (clone / "protocol" / "field.py").write_text("P = 2**31 - 1\n", encoding="utf-8")
    (clone / "README.md").write_text("# SDL\n", encoding="utf-8")
    return clone


def test_generate_into_a_fresh_dir_writes_a_manifest_listing_every_file(
    generated: Path,
) -> None:
    manifest = json.loads((generated / vectors.MANIFEST).read_text(encoding="utf-8"))
    assert manifest["format"] == FORMAT
    assert manifest["families"] == sorted(vectors.FAMILIES)
    assert manifest["files"] == _json_files(generated)
    assert not [p for p in generated.iterdir() if p.name.startswith(".")]


def test_generating_again_replaces_its_own_files_even_edited_ones(
    generated: Path, tmp_path: Path
) -> None:
    target = _copy(generated, tmp_path)
    before = (target / vectors.MANIFEST).read_bytes()
    edited = target / "shamir" / "plain_t9_n20.json"
    edited.write_text("{}\n", encoding="utf-8")  # listed by the manifest, so still sdl's
    assert main(["vectors", "generate", str(target)]) == 0
    assert (target / vectors.MANIFEST).read_bytes() == before, "the manifest is reproducible"
    assert json.loads(edited.read_text(encoding="utf-8"))["family"] == "shamir"


def test_a_clone_with_a_protocol_package_is_refused_and_left_untouched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clone = _clone_like(tmp_path)
    before = _tree(clone)
    assert main(["vectors", "generate", str(clone)]) == 2
    line = _one_error_line(capsys)
    assert f"{clone / 'protocol'}/ holds files sdl did not write" in line
    assert "protocol/__init__.py" in line and "--force" in line
    assert _tree(clone) == before
    assert sorted(p.name for p in clone.iterdir()) == ["README.md", "protocol"]


def test_the_refusal_comes_before_generating_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_generation() -> dict[str, object]:
        raise AssertionError("generated vectors for a directory it must refuse")

    monkeypatch.setattr(vectors, "generate", no_generation)
    assert main(["vectors", "generate", str(_clone_like(tmp_path))]) == 2
    _one_error_line(capsys)


def test_force_replaces_a_folder_sdl_did_not_write(tmp_path: Path) -> None:
    clone = _clone_like(tmp_path)
    assert main(["vectors", "generate", "--force", str(clone)]) == 0
    assert not (clone / "protocol" / "__init__.py").exists()
    assert [p.suffix for p in (clone / "protocol").iterdir()] == [".json"] * len(
        list((clone / "protocol").iterdir())
    )
    assert (clone / "README.md").read_text(encoding="utf-8") == "# SDL\n"
    assert (clone / vectors.MANIFEST).is_file()


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("notes.txt", "mine\n"),
        ("mine.json", '{"format": "sdl-vectors/1", "family": "field"}\n'),  # another family's
        ("broken.json", "{not json\n"),
    ],
)
def test_a_family_folder_with_a_user_file_is_refused(
    generated: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, text: str
) -> None:
    target = _copy(generated, tmp_path)
    (target / "shamir" / name).write_text(text, encoding="utf-8")
    before = _tree(target)
    assert main(["vectors", "generate", str(target)]) == 2
    assert f"(shamir/{name})" in _one_error_line(capsys)
    assert _tree(target) == before


def test_an_empty_foreign_family_folder_is_used(tmp_path: Path) -> None:
    (tmp_path / "protocol" / "empty").mkdir(parents=True)
    (tmp_path / "NOTES.txt").write_text("keep me", encoding="utf-8")
    assert main(["vectors", "generate", str(tmp_path)]) == 0
    assert (tmp_path / "NOTES.txt").read_text(encoding="utf-8") == "keep me"
    assert not (tmp_path / "protocol" / "empty").exists()
    assert (tmp_path / vectors.MANIFEST).is_file()


def test_a_directory_of_only_vector_files_without_a_manifest_is_regenerated(
    tmp_path: Path,
) -> None:
    """spec/vectors/ as committed: no manifest, every file a vector of its folder's family."""
    target = _copy(COMMITTED, tmp_path)
    (target / vectors.MANIFEST).unlink(missing_ok=True)
    assert main(["vectors", "generate", str(target)]) == 0
    assert (target / vectors.MANIFEST).is_file()


def test_check_does_not_take_the_manifest_for_a_vector(
    generated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (generated / vectors.MANIFEST).is_file()
    assert main(["vectors", "check", str(generated)]) == 0
    assert len(vectors.check(generated)) == len(_json_files(generated))
    capsys.readouterr()


def test_a_manifest_name_taken_by_a_user_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / vectors.MANIFEST).write_text("my notes\n", encoding="utf-8")
    assert main(["vectors", "generate", str(tmp_path)]) == 2
    assert "is not a manifest sdl wrote" in _one_error_line(capsys)
    assert (tmp_path / vectors.MANIFEST).read_text(encoding="utf-8") == "my notes\n"
    assert [p.name for p in tmp_path.iterdir()] == [vectors.MANIFEST]


def test_a_family_folder_that_is_a_symlink_is_refused_and_its_target_kept(
    generated: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    elsewhere = _copy(generated / "field", tmp_path)  # vector files, but not in DIR
    target = tmp_path / "out"
    target.mkdir()
    (target / "field").symlink_to(elsewhere, target_is_directory=True)
    assert main(["vectors", "generate", str(target)]) == 2
    assert "symbolic link" in _one_error_line(capsys)
    assert (target / "field").is_symlink()
    assert _json_files(elsewhere) == _json_files(generated / "field")


def test_dir_that_is_a_file_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "passwd"
    path.write_text("root:x:0:0\n", encoding="utf-8")
    assert main(["vectors", "generate", str(path)]) == 2
    assert f"{path} is not a directory" in _one_error_line(capsys)
    assert path.read_text(encoding="utf-8") == "root:x:0:0\n"


def test_dir_below_a_file_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "passwd"
    path.write_text("root:x:0:0\n", encoding="utf-8")
    assert main(["vectors", "generate", str(path / "vectors")]) == 2
    assert "cannot write into" in _one_error_line(capsys)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_dir_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tmp_path.chmod(0o555)
    try:
        assert main(["vectors", "generate", str(tmp_path)]) == 2
        assert "cannot write into" in _one_error_line(capsys)
    finally:
        tmp_path.chmod(0o755)
