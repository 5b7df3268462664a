"""Output paths: nothing but a regular file is ever replaced, and nothing computed is lost.

``sdl simulate --transcript`` and ``sdl run --out`` check their path before any work (exit 2,
one line naming it and why); ``-`` streams the transcript to stdout; a save that fails after
training still prints the result; ``run.json`` and ``run.png`` are replaced as a pair.

Spec: spec/12-transcripts.md, spec/13-learning.md#outputs
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import time
from pathlib import Path
from typing import Any, NoReturn

import pytest

from reference.cli.main import main
from reference.learning import job, plots
from reference.sim.transcript import verify_lines

SIMULATE = ["simulate", "--nodes", "5", "--threshold", "1", "--seed", "1"]
#: A run of one round on four nodes: about a second.
RUN = ["run", "--nodes", "4", "--rounds", "1", "--threshold", "1", "--seed", "7", "--quiet"]


def _one_error_line(err: str, *names: str) -> None:
    """stderr is exactly one line, names every one of ``names``, and is no traceback."""
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for name in names:
        assert name in lines[0], (name, lines[0])


@pytest.fixture
def no_training(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if ``sdl run`` starts training: a bad --out must be refused first."""

    def refuse(*args: Any, **kwargs: Any) -> NoReturn:
        raise AssertionError("sdl run started training before checking --out")

    monkeypatch.setattr(job, "run_job", refuse)


def _guard_device_replace(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make a rename onto anything under /dev fail the test instead of replacing the node."""
    real = os.replace

    def guarded(src: Any, dst: Any, **kwargs: Any) -> None:
        if str(dst).startswith("/dev/"):
            raise AssertionError(f"would have replaced the device node {dst}")
        real(src, dst, **kwargs)

    monkeypatch.setattr(os, "replace", guarded)


# ---------------------------------------------------------------- sdl simulate --transcript


def test_transcript_onto_a_symlink_is_refused_and_link_and_target_stay(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = tmp_path / "target.jsonl"
    target.write_text("precious\n", encoding="utf-8")
    link = tmp_path / "link.jsonl"
    link.symlink_to(target)
    assert main([*SIMULATE, "--transcript", str(link)]) == 2
    _one_error_line(capsys.readouterr().err, str(link), "symbolic link")
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text(encoding="utf-8") == "precious\n"


def test_transcript_onto_a_fifo_is_refused_before_any_open(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)  # nothing ever opens it: opening a FIFO with no reader would block
    assert main([*SIMULATE, "--transcript", str(fifo)]) == 2
    _one_error_line(capsys.readouterr().err, str(fifo), "FIFO")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_transcript_onto_a_directory_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    directory = tmp_path / "d"
    directory.mkdir()
    (directory / "keep").write_text("x", encoding="utf-8")
    assert main([*SIMULATE, "--transcript", str(directory)]) == 2
    _one_error_line(capsys.readouterr().err, str(directory), "directory")
    assert (directory / "keep").read_text(encoding="utf-8") == "x"


def test_transcript_below_a_file_or_in_a_missing_directory_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    file = tmp_path / "file"
    file.write_text("x", encoding="utf-8")
    for bad in (file / "t.jsonl", tmp_path / "missing" / "t.jsonl"):
        assert main([*SIMULATE, "--transcript", str(bad)]) == 2
        _one_error_line(capsys.readouterr().err, str(bad))
    assert not (tmp_path / "missing").exists()
    assert file.read_text(encoding="utf-8") == "x"


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="no /dev/null on this system")
def test_transcript_onto_dev_null_is_refused_and_the_device_stays(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every existing non-regular path is refused; ``-`` is the way to a stream."""
    _guard_device_replace(monkeypatch)  # as root, a regression would replace the node
    assert main([*SIMULATE, "--transcript", "/dev/null"]) == 2
    _one_error_line(capsys.readouterr().err, "/dev/null", "device")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_transcript_dash_writes_jsonl_to_stdout_and_the_report_to_stderr(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for extra in ([], ["--json"]):
        assert main([*SIMULATE, "--transcript", "-", *extra]) == 0
        captured = capsys.readouterr()
        lines = captured.out.splitlines()
        assert len(lines) > 10
        for line in lines:
            json.loads(line)  # stdout is JSON lines and nothing else
        verdict = verify_lines(iter(lines))
        assert verdict.valid, verdict.why
        if extra:
            report = json.loads(captured.err)
            assert report["transcript"] == "-" and report["status"] == "released"
        else:
            assert "released sum" in captured.err
    assert not (tmp_path / "-").exists()


# ---------------------------------------------------------------------- sdl run --out


@pytest.mark.usefixtures("no_training")
def test_run_out_an_existing_file_exits_2_before_training(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    file = tmp_path / "results"
    file.write_text("keep", encoding="utf-8")
    start = time.monotonic()
    assert main([*RUN, "--out", str(file)]) == 2
    assert time.monotonic() - start < 5
    _one_error_line(capsys.readouterr().err, str(file), "expected a directory")
    assert file.read_text(encoding="utf-8") == "keep"


@pytest.mark.usefixtures("no_training")
def test_run_out_below_a_file_exits_2_before_training(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    file = tmp_path / "results"
    file.write_text("keep", encoding="utf-8")
    assert main([*RUN, "--out", str(file / "sub")]) == 2
    _one_error_line(capsys.readouterr().err, str(file / "sub"), "not a directory")


@pytest.mark.usefixtures("no_training")
def test_run_out_with_a_symlinked_run_json_exits_2_and_the_link_stays(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = tmp_path / "elsewhere.json"
    target.write_text("{}", encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()
    (out / "run.json").symlink_to(target)
    assert main([*RUN, "--out", str(out)]) == 2
    _one_error_line(capsys.readouterr().err, "run.json", "symbolic link")
    assert (out / "run.json").is_symlink() and target.read_text(encoding="utf-8") == "{}"


@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0,
    reason="running as root: directory permissions do not bind, so no directory is read-only",
)
@pytest.mark.usefixtures("no_training")
def test_run_out_a_read_only_directory_exits_2_before_training(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    try:
        assert main([*RUN, "--out", str(out)]) == 2
        _one_error_line(capsys.readouterr().err, str(out), "not writable")
    finally:
        out.chmod(0o755)


@pytest.mark.usefixtures("no_training")
def test_run_out_a_directory_access_denies_exits_2_before_training(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same refusal as for a read-only directory, also under root: access(2) says no."""
    out = tmp_path / "denied"
    out.mkdir()
    real = os.access

    def access(path: Any, mode: int, **kwargs: Any) -> bool:
        return False if Path(path) == out else real(path, mode, **kwargs)

    monkeypatch.setattr(os, "access", access)
    assert main([*RUN, "--out", str(out)]) == 2
    _one_error_line(capsys.readouterr().err, str(out), "not writable")


def _no_space(*args: Any, **kwargs: Any) -> NoReturn:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "run.png")


def test_run_whose_save_fails_prints_the_json_result_then_one_error_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(plots, "plot_run", _no_space)
    out = tmp_path / "out"
    assert main([*RUN, "--json", "--out", str(out)]) == 1
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert 0 <= result["accuracy"] <= 1 and result["epsilon"] > 0
    assert result["outputs"] == []
    assert os.strerror(errno.ENOSPC) in result["outputs_error"]
    _one_error_line(captured.err, str(out), os.strerror(errno.ENOSPC))
    assert sorted(p.name for p in out.iterdir()) == []  # no staging folder, no half pair


def test_run_whose_save_fails_prints_the_summary_then_one_error_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(plots, "plot_run", _no_space)
    assert main([*RUN, "--out", str(tmp_path / "out")]) == 1
    captured = capsys.readouterr()
    assert "test accuracy" in captured.out and "ε spent" in captured.out
    _one_error_line(captured.err, "cannot write")


def _old_pair(out: Path) -> dict[str, bytes]:
    out.mkdir()
    (out / "run.json").write_text('{"old": true}\n', encoding="utf-8")
    (out / "run.png").write_bytes(b"old png")
    return {p.name: p.read_bytes() for p in out.iterdir()}


def test_run_interrupted_while_writing_the_second_file_leaves_the_old_pair(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    old = _old_pair(out)

    def interrupted(*args: Any, **kwargs: Any) -> NoReturn:
        raise KeyboardInterrupt

    monkeypatch.setattr(plots, "plot_run", interrupted)
    # Whether main reports the interrupt or lets it through, the files are what count.
    with contextlib.suppress(KeyboardInterrupt):
        main([*RUN, "--out", str(out)])
    assert {p.name: p.read_bytes() for p in out.iterdir()} == old


def test_run_interrupted_between_the_two_renames_leaves_the_old_pair(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An interrupt after one of the pair is in place: the first one is put back."""
    out = tmp_path / "out"
    old = _old_pair(out)
    real = os.replace
    renamed: list[str] = []

    def second_interrupted(src: Any, dst: Any, **kwargs: Any) -> None:
        d = Path(dst)
        if d.parent == out and d.name in old:
            renamed.append(d.name)
            if len(renamed) == 2:
                raise KeyboardInterrupt
        real(src, dst, **kwargs)

    monkeypatch.setattr(os, "replace", second_interrupted)
    with contextlib.suppress(KeyboardInterrupt):
        main([*RUN, "--out", str(out)])
    assert len(renamed) >= 2
    assert {p.name: p.read_bytes() for p in out.iterdir()} == old


def test_run_writes_a_new_pair_over_an_old_one_and_leaves_no_staging(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _old_pair(out)
    assert main([*RUN, "--json", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["run.json", "run.png"]
    assert json.loads((out / "run.json").read_text(encoding="utf-8"))["rounds"] == 1
    assert (out / "run.png").read_bytes().startswith(b"\x89PNG")
