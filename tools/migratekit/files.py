"""Reading a file the user named or the cache holds, where a FIFO or a link loop may stand in its place.

`read_text` on a FIFO waits for a writer for good, and `Path.resolve` on a link that leads back to itself raises
RuntimeError (before Python 3.13; OSError since): each was a hung or a traceback-ending audit. Here both are
answers the caller can turn into its own miss or its own message.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path


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
