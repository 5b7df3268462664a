"""Atomic file writes: a reader sees the old file or the new one, never half of one.

Only a regular file is ever replaced: a symlink, FIFO, socket, device or directory at the
path is refused (``reference/common/paths.py``), before the write and again before the rename.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from reference.common.paths import refuse_unless_replaceable

#: The mode of every file written here (a temporary file starts private).
FILE_MODE = 0o644


@contextmanager
def replacing(path: Path, *, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, else it is removed.

    ``suffix`` keeps writers that choose the format by extension happy (``.png``, ``.npz``).

    Raises:
        OutputPathError: ``path`` exists and is not a regular file (checked before and after
            the write, so a link or device put there meanwhile is not replaced either).
    """
    refuse_unless_replaceable(path, label="output")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, FILE_MODE)
        refuse_unless_replaceable(path, label="output")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomically(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with replacing(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
