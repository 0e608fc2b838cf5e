"""Ctrl-C and SIGTERM: stop at once, and leave every database as it was before the migration in progress.

A migrate run only raises a flag: the scheduler stops starting services, each runner cancels its
statement on the server (so it rolls back), releases its lock and returns what it applied, and the
task prints the results and exits 128 + the signal's number (130, 143). Commands that work on
throwaway databases (verify, drift --schema) stop by exception instead, so their `finally`
blocks drop those databases.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from migratekit.errors import Reported

SIGNALS = (signal.SIGINT, signal.SIGTERM)
_requested = threading.Event()
_signal: list[int] = []


class Interrupted(Reported):
    """Raised by the commands that stop by exception (verify, drift --schema) once their cleanup has run."""

    def __init__(self, signum: int, then: str = ""):
        super().__init__(f"interrupted by {signal.Signals(signum).name}{then}")  # then: what was left as it was
        self.signum = signum
        self.exit_code = 128 + signum  # 130 for SIGINT, 143 for SIGTERM


def requested() -> bool:
    return _requested.is_set()


def signal_number() -> int | None:
    return _signal[0] if _signal else None


def describe() -> str:
    number = signal_number()
    return f"interrupted by {signal.Signals(number).name}" if number else "interrupted"


@contextmanager
def handling(raise_now: bool = False) -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM request a stop (and, with raise_now, raise Interrupted)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may install handlers; the flag still works
        return

    def handle(signum: int, frame: FrameType | None) -> None:
        if not _signal:
            _signal.append(signum)
        _requested.set()
        if raise_now:
            raise Interrupted(signum)

    previous = {sig: signal.getsignal(sig) for sig in SIGNALS}
    for sig in SIGNALS:
        signal.signal(sig, handle)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
