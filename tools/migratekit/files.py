"""Reading and writing a file the user named or the cache holds, where a FIFO or a link loop may stand in its
place, and where a write may stop part-way.

`read_text` on a FIFO waits for a writer for good, and `Path.resolve` on a link that leads back to itself raises
RuntimeError (before Python 3.13; OSError since): each was a hung or a traceback-ending audit. Here both are
answers the caller can turn into its own miss or its own message. A file written in place and stopped part-way
(a Ctrl-C, a full disk, a killed worker) is half a report, half a baseline, half a cache entry: `staged` writes
beside it and renames.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

# What `staged` names the file it writes before the rename: .<name>.<8 hex digits>.tmp (and what tempfile.mkstemp
# named the cache's before: .<8 of [a-z0-9_]>.tmp). A janitor removes only these, and only old ones.
STAGING = re.compile(r"\.(?:.+\.)?[a-z0-9_]{8}\.tmp")


class NotAFile(OSError):
    """Something other than a regular file or a directory at the path: a FIFO, a socket, a device."""


def read_regular(path: Path) -> bytes:
    """The bytes of a regular file. It is opened without waiting and asked what it is through the same descriptor,
    so nothing can take its place between the question and the read: IsADirectoryError for a directory, NotAFile
    for anything else that is no file, OSError when it cannot be opened."""
    with open(os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)), "rb") as handle:  # (POSIX's flag)
        mode = os.fstat(handle.fileno()).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "Is a directory", str(path))
        if not stat.S_ISREG(mode):
            raise NotAFile(errno.EINVAL, "not a regular file (a FIFO, a socket or a device)", str(path))
        return handle.read()


def resolved(path: Path) -> Path | None:
    """The path with every link followed, or None where a link leads back to itself."""
    try:
        return path.resolve()
    except (RuntimeError, OSError):  # a link loop: RuntimeError before Python 3.13, OSError (ELOOP) since
        return None


@contextlib.contextmanager
def staged(path: Path, new_mode: int = 0o666, errors: str = "strict") -> Iterator[TextIO]:
    """A text file opened beside `path` that takes its place when the block ends, and is removed when it raises:
    whoever reads `path` sees the file before or the file after, never part of one.

    Whatever is at `path` is replaced, a link too (resolve it first to write through one). A regular file there
    keeps its mode; a new one gets `new_mode` less the umask. The staging file is created anew (O_EXCL, never
    through a link planted at its name) in the same directory, so the rename never crosses file systems.
    OSError from any step; the caller names the file to the user.
    """
    kept = _mode_kept(path)
    staging, handle = _staging(path, new_mode)
    try:
        with open(handle, "w", encoding="utf-8", errors=errors) as out:
            yield out
        _into_place(staging, path, kept)
    except BaseException:  # a full disk, a Ctrl-C: the staging file would stay beside the file for good
        with contextlib.suppress(OSError):
            os.unlink(staging)
        raise


@contextlib.contextmanager
def staged_together() -> Iterator[Callable[[Path, str], None]]:
    """`write(path, text)` for several files that take their places together when the block ends, and none when
    it raises (each as `staged` writes one): one revision's files never stand beside another's. Each is written
    whole and closed at once, so a thousand services' Jobs are not a thousand open files."""
    pending: list[tuple[Path, Path, int | None]] = []

    def write(path: Path, text: str) -> None:
        kept = _mode_kept(path)
        staging, handle = _staging(path, 0o666)
        pending.append((staging, path, kept))
        with open(handle, "w", encoding="utf-8") as out:
            out.write(text)

    try:
        yield write
        while pending:
            staging, path, kept = pending[0]
            _into_place(staging, path, kept)
            pending.pop(0)
    except BaseException:
        for staging, _, _ in pending:
            with contextlib.suppress(OSError):
                os.unlink(staging)
        raise


def _mode_kept(path: Path) -> int | None:
    """The mode of the regular file at `path`, which the file written in its place keeps."""
    with contextlib.suppress(FileNotFoundError):
        before = os.lstat(path)
        if stat.S_ISREG(before.st_mode):
            return stat.S_IMODE(before.st_mode)
    return None


def _staging(path: Path, new_mode: int) -> tuple[Path, int]:
    staging = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    return staging, os.open(staging, flags, new_mode)


def _into_place(staging: Path, path: Path, kept: int | None) -> None:
    if kept is not None:
        os.chmod(staging, kept)
    os.replace(staging, path)


@contextlib.contextmanager
def made(directory: Path) -> Iterator[Path]:
    """`directory`, made with its missing parents for the block; those it made are removed again (each only if
    empty, deepest first) when the block raises, so a write that failed leaves no directory made for it."""
    missing = [d for d in (directory, *directory.parents) if not os.path.lexists(d)]
    try:
        directory.mkdir(parents=True, exist_ok=True)
        yield directory
    except BaseException:
        for each in missing:
            with contextlib.suppress(OSError):
                os.rmdir(each)
        raise
