"""Hostile sizes and output folders: refused at once, exit 2, one line naming the flag.

Spec: README.md (bad input exits 2 with one line naming the value and what was expected)

Each reproducer once hung (``sdl demo --nodes 100000``), flooded the terminal
(``sdl demo --dimension 1000000``), died allocating tens of GiB, or ended in a
FileExistsError / PermissionError traceback after the command had started its work.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reference.cli.main import main
from tests.deadline import deadline

#: Every refusal answers within this many seconds.
FAST = 2.0
#: A test that has not answered after this long has hung: it fails instead of waiting.
DEADLINE = 10


@pytest.fixture(autouse=True)
def _deadline() -> Iterator[None]:
    """Turn a hang into a failure: :class:`tests.deadline.Hung` after :data:`DEADLINE` s."""
    with deadline(DEADLINE):
        yield


def _run(argv: list[str]) -> tuple[int, float]:
    """``main``'s status (argparse's refusals leave by SystemExit) and its seconds."""
    started = time.perf_counter()
    try:
        code = main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, time.perf_counter() - started


def _refused(capsys: pytest.CaptureFixture[str], argv: list[str], *names: str) -> str:
    """Run ``argv``; check exit 2, at once, one stderr line naming each of ``names``."""
    code, seconds = _run(argv)
    _out, err = capsys.readouterr()
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert code == 2, err
    for name in names:
        assert name in lines[0], lines[0]
    assert seconds < FAST, f"{seconds:.2f} s"
    return lines[0]


# ---------------------------------------------------------------------- 1. sdl demo


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["demo", "--nodes", "100000"], "--nodes"),
        (["demo", "--nodes", "101"], "--nodes"),
        (["demo", "--dimension", "1000000"], "--dimension"),
        (["demo", "--dimension", "1000000000"], "--dimension"),
        (["demo", "--dimension", "1" + "0" * 5000], "--dimension"),
        # each within its bound, together too much work
        (["demo", "--nodes", "100", "--dimension", "100000"], "--dimension"),
        (["demo", "--nodes", "100", "--dimension", "100000", "--json"], "--nodes"),
    ],
)
def test_demo_refuses_sizes_that_do_not_answer_in_seconds(
    capsys: pytest.CaptureFixture[str], argv: list[str], flag: str
) -> None:
    _refused(capsys, [*argv, "--seed", "1"], flag)


def test_demo_help_states_its_bounds(capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = _run(["demo", "--help"])
    out = capsys.readouterr().out
    assert code == 0
    assert "at most 100 " in out  # --nodes
    assert "at most 100000" in out  # --dimension
    assert "10^7" in out  # nodes² × dimension


def test_demo_report_of_a_long_vector_shows_a_few_values(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _ = _run(["demo", "--seed", "1", "--dimension", "1000"])
    out = capsys.readouterr().out
    assert code == 0
    assert len(out) < 3000, len(out)
    assert "(992 more; --json for all)" in out
    code, _ = _run(["demo", "--seed", "1", "--dimension", "1000", "--json"])
    body = json.loads(capsys.readouterr().out)
    assert code == 0
    assert len(body["reconstructed_sum"]) == 1000
    assert len(body["inputs"][0]) == 1000


# ---------------------------------------------------------------------- 2. output folders

#: Each command with DIR where its output folder goes (``{}``), and the flag that names it.
_DIR_COMMANDS = [
    (["schema", "{}"], "DIR"),
    (["evaluate", "--quick", "--quiet", "--out", "{}"], "--out"),
    (["bench", "round", "--scaling", "--quiet", "--out", "{}"], "--out"),
]


def _with(argv: list[str], directory: Path) -> list[str]:
    return [str(directory) if a == "{}" else a for a in argv]


@pytest.mark.parametrize(("argv", "flag"), _DIR_COMMANDS)
def test_an_existing_file_as_the_output_folder_is_refused_up_front(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], flag: str
) -> None:
    target = tmp_path / "a-file"
    target.write_text("keep me\n")
    line = _refused(capsys, _with(argv, target), flag, str(target))
    assert "directory" in line
    assert target.read_text() == "keep me\n"


@pytest.mark.parametrize(("argv", "flag"), _DIR_COMMANDS)
@pytest.mark.parametrize("below", [False, True], ids=["itself", "below"])
def test_a_read_only_output_folder_is_refused_up_front(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], flag: str, below: bool
) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes into a read-only folder: its permission bits do not apply")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    target = locked / "out" if below else locked
    try:
        line = _refused(capsys, _with(argv, target), flag, str(target))
    finally:
        locked.chmod(0o755)
    assert "not writable" in line
    assert list(locked.iterdir()) == []


@pytest.mark.parametrize(("argv", "flag"), _DIR_COMMANDS)
@pytest.mark.parametrize("target", ["/sys", "/sys/sdl-test-out"])
def test_a_folder_nothing_can_be_created_in_is_refused_up_front(
    capsys: pytest.CaptureFixture[str], argv: list[str], flag: str, target: str
) -> None:
    if not Path("/sys").is_dir():
        pytest.skip("no /sys on this system")
    _refused(capsys, _with(argv, Path(target)), flag, target)
    assert not Path("/sys/sdl-test-out").exists()


def test_with_json_an_output_folder_refusal_is_a_json_object(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = tmp_path / "a-file"
    target.write_text("")
    code, _ = _run(["schema", str(target), "--json"])
    out, err = capsys.readouterr()
    assert code == 2
    assert json.loads(out)["error"]["kind"] == "OutputPathError"
    assert len(err.strip().splitlines()) == 1


# ---------------------------------------------------------------------- 3. sdl bench


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["bench", "shamir", "--dimension", "1000000000"], "--dimension"),
        (["bench", "shamir", "--dimension", "10000001"], "--dimension"),
        (["bench", "shamir", "--nodes", "1001"], "--nodes"),
        (["bench", "shamir", "--nodes", "1000", "--dimension", "1000000"], "--nodes"),
        (["bench", "shamir", "--galois-dimension", "1000000000"], "--galois-dimension"),
        (["bench", "shamir", "--repeats", "1000000000"], "--repeats"),
        (["bench", "accounting", "--noise-multiplier", "1e-308"], "--noise-multiplier"),
        (["bench", "accounting", "--noise-multiplier", "1e-7"], "--noise-multiplier"),
        (["bench", "accounting", "--noise-multiplier", "1e200"], "--noise-multiplier"),
        (["bench", "accounting", "--rounds", "1" + "0" * 13], "--rounds"),
        (["bench", "accounting", "--repeats", "1000000000"], "--repeats"),
    ],
)
def test_bench_refuses_sizes_beyond_memory_time_or_the_accountants_domain(
    capsys: pytest.CaptureFixture[str], argv: list[str], flag: str
) -> None:
    _refused(capsys, argv, flag)


@pytest.mark.parametrize(
    ("command", "bounds"),
    [
        ("shamir", ["at most 1000", "at most 10^7", "10^8", "at most 100;"]),
        ("accounting", ["at most 10^12", "[1e-6, 1e150]", "at most 100;"]),
    ],
)
def test_bench_help_states_its_bounds(
    capsys: pytest.CaptureFixture[str], command: str, bounds: list[str]
) -> None:
    code, _ = _run(["bench", command, "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert code == 0
    for bound in bounds:
        assert bound in out, bound


# ------------------------------------------------------ sdl noise sample --sampler exact


@pytest.mark.parametrize(
    "argv",
    [
        # The documented largest variance, 2^48: the exact sampler once ran for hours.
        ["--variance", "281474976710656", "--count", "3"],
        ["--variance", "1000000", "--count", "11"],
    ],
)
def test_exact_skellam_refuses_work_beyond_its_bound(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    base = ["noise", "sample", "--mechanism", "skellam", "--seed", "1", "--sampler", "exact"]
    _refused(capsys, [*base, *argv], "--count", "--variance", "10^7")


def test_exact_skellam_within_its_bound_answers(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["noise", "sample", "--mechanism", "skellam", "--seed", "1", "--sampler", "exact",
            "--variance", "1000", "--count", "3"]  # fmt: skip
    assert main(argv) == 0
    assert len(capsys.readouterr().out.split()) == 3
