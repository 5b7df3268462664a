"""A run's files: ``run.json`` (the result) and ``run.png`` (its plot), replaced as a pair.

The result (``reference/learning/job.py``) knows nothing of files or plots; this module puts the
two side by side.

Spec: spec/13-learning.md#outputs
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from reference.common.atomic import write_text_atomically
from reference.common.paths import check_output_dir
from reference.learning.job import JobResult

#: The files of a run, in the order they are moved in.
FILES = ("run.png", "run.json")

#: The signals deferred while the pair is moved in (SIGTERM would kill between two renames).
_DEFERRED = frozenset({signal.SIGINT, signal.SIGTERM})


def check_outputs(out: Path) -> None:
    """Check, before any training, that ``write_outputs`` can write into ``out``.

    Raises:
        OutputPathError: ``out`` is not a directory (or cannot be made one), is not
            writable, or holds a ``run.json`` or ``run.png`` that is not a regular file.
    """
    check_output_dir(out, label="--out", files=FILES)


@contextmanager
def _signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block is over (where the platform allows it)."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _DEFERRED)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _move_in(stage: Path, out: Path) -> None:
    """Rename each file of ``stage`` onto ``out``; on any failure put the old files back.

    The old files are first hard-linked (or, where links fail, copied) into ``stage/old``,
    so that an error at the second rename can undo the first.
    """
    backup = stage / "old"
    backup.mkdir()
    for name in FILES:
        if (out / name).exists():
            try:
                os.link(out / name, backup / name)
            except OSError:
                shutil.copy2(out / name, backup / name)
    moved: list[str] = []
    try:
        for name in FILES:
            os.replace(stage / name, out / name)
            moved.append(name)
    except BaseException:
        for name in reversed(moved):
            if (backup / name).exists():
                os.replace(backup / name, out / name)
            else:
                (out / name).unlink(missing_ok=True)
        raise


def write_outputs(result: JobResult, out: Path) -> list[Path]:
    """Write ``run.json`` and ``run.png`` into ``out`` as a pair; return their paths.

    A reader, or an interrupted run, sees the old pair or the new pair, never one of each:
    both files are first rendered into a staging folder inside ``out`` (``.run.XXXX``; the
    slow part, where an interrupt leaves the old pair alone and the folder is removed); then
    each is renamed into ``out``, with SIGINT and SIGTERM held until both renames are done,
    and the old files kept aside so that a failed second rename puts the first one back.
    A rename within one directory is atomic, so the only window left is the machine itself
    stopping between the two renames: POSIX has no rename of two files at once.

    Raises:
        OutputPathError: ``out`` or a file in it became unwritable as such (see ``check_outputs``).
        OSError: the files could not be written (disk full, permissions changed); the old
            pair, if any, is left as it was.
    """
    from reference.learning.plots import plot_run  # noqa: PLC0415  (matplotlib is slow to load)

    check_outputs(out)
    out.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".run.", dir=out))
    try:
        text = json.dumps(result.to_json(), indent=2, sort_keys=True) + "\n"
        write_text_atomically(stage / "run.json", text)
        plot_run(result, stage / "run.png")
        with _signals_deferred():
            _move_in(stage, out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return [out / "run.json", out / "run.png"]
