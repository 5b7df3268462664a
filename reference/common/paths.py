"""Output paths checked before any work: what SDL will replace, and what it refuses to.

Every file SDL writes is replaced atomically (``reference/common/atomic.py``): written to a
temporary file beside it, then renamed onto it. A rename onto a symlink replaces the link
(the file it names is untouched), onto a FIFO or a device replaces the node itself (run as
root, ``/dev/null`` would become a regular file), onto a directory fails. So an output file
must be a regular file or not exist yet, in a writable directory; everything else is refused
here, in one line that names the path and says why, before a long computation starts.
``-`` is standard output, for outputs that are a stream (a transcript): the one way to write
to ``/dev/stdout`` and the like.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from protocol.errors import ParameterError

#: The command-line spelling of standard output (``./-`` names a file called ``-``).
STDOUT = "-"


class OutputPathError(ParameterError):
    """An output path SDL will not write: it names the path and why (exit status 2)."""


def _kind(mode: int) -> str | None:
    """What a non-regular file is, in a few words; ``None`` for a regular file."""
    if stat.S_ISREG(mode):
        return None
    for test, what in (
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return what
    return "not a regular file"


def _writable_dir(directory: Path, *, label: str) -> None:
    """Raise unless ``directory`` (an existing path) is a directory one can create files in.

    After the permission bits, a probe: a temporary file made and removed there. It
    catches what the bits do not show: as root, ``os.access`` calls ``/sys`` writable,
    yet nothing can be created there.
    """
    if not directory.is_dir():
        raise OutputPathError(f"{label}: {directory} is not a directory")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise OutputPathError(f"{label}: directory {directory} is not writable")
    try:
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as exc:
        raise OutputPathError(
            f"{label}: cannot create files in {directory} ({exc.strerror})"
        ) from None


def _refuse_nul(path: Path, *, label: str) -> None:
    """No operating-system path holds a NUL byte (Python refuses it with ValueError)."""
    if "\x00" in str(path):
        raise OutputPathError(f"{label} {str(path)!r}: a path cannot contain a NUL byte")


def refuse_unless_replaceable(path: Path, *, label: str) -> None:
    """Raise unless ``path`` is absent or a regular file (not a link): a rename may replace it.

    Raises:
        OutputPathError: ``path`` is a symlink, a directory, a FIFO, a socket or a device,
            or holds a NUL byte.
    """
    _refuse_nul(path, label=label)
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):  # nothing there to replace
        return
    except OSError as exc:
        raise OutputPathError(f"{label} {path}: cannot inspect it ({exc.strerror})") from None
    what = _kind(mode)
    if what is not None:
        raise OutputPathError(
            f"{label} {path}: is {what}; SDL writes only regular files "
            "(give a new path, or - for standard output where a stream makes sense)"
        )


def check_output_file(path: Path, *, label: str) -> None:
    """Check, before any work, that ``path`` can be replaced atomically by a new file.

    Pre-conditions:
        - ``label`` names the option on the command line (``--transcript``).

    Raises:
        OutputPathError: ``path`` is not a regular file, or its parent is missing, not a
            directory, or not writable.
    """
    refuse_unless_replaceable(path, label=label)
    parent = path.parent
    if not parent.exists():
        raise OutputPathError(f"{label} {path}: directory {parent} does not exist")
    _writable_dir(parent, label=f"{label} {path}")


def check_output_dir(directory: Path, *, label: str, files: tuple[str, ...] = ()) -> None:
    """Check, before any work, that ``directory`` exists or can be made, and ``files`` replaced.

    A missing directory is fine when its nearest existing ancestor is a writable directory
    (it will be created); a symlink to a directory is fine (SDL writes into it and never
    replaces it); each of ``files`` inside it must be absent or a regular file.

    Raises:
        OutputPathError: ``directory`` is a file or other non-directory, lies below a file,
            or is not writable; or one of ``files`` is not a regular file; or the path
            holds a NUL byte.
    """
    _refuse_nul(directory, label=label)
    if directory.exists():
        if not directory.is_dir():
            what = _kind(os.stat(directory).st_mode) or "a file"
            raise OutputPathError(f"{label} {directory}: is {what}, expected a directory")
        _writable_dir(directory, label=f"{label} {directory}")
        for name in files:
            refuse_unless_replaceable(directory / name, label=label)
        return
    if directory.is_symlink():
        raise OutputPathError(f"{label} {directory}: is a dangling symbolic link")
    ancestor = directory.parent
    while not ancestor.exists() and not ancestor.is_symlink() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise OutputPathError(
            f"{label} {directory}: {ancestor} is not a directory, so nothing can be made below it"
        )
    _writable_dir(ancestor, label=f"{label} {directory}")
