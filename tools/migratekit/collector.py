"""Python's cycle collector, paused while migratekit builds many objects that never form cycles.

Parse trees (pglast's JSON as dicts and lists) and --json output (each finding and result as a dict) hold no
reference cycles, yet every full collection while they are built walks all of them and everything before them:
a large part of a cold audit of many files, and of writing 10,000 findings as JSON.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """The cycle collector off for the block (forked workers inherit the pause), as it was after it."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
