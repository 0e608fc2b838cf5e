"""The live display of a run: which migration each service is on, and for how long.

On a terminal it is a rich Live table on stderr; elsewhere (CI logs) one line per event,
so stdout stays clean for --json. Names and versions are text, never markup.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from migratekit.database.apply import ProgressFn


class _Board:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rows: dict[str, tuple[str, float]] = {}

    def update(self, service: str, version: str | None) -> None:
        with self.lock:
            if version is None:
                self.rows.pop(service, None)
            else:
                self.rows[service] = (version, time.monotonic())

    def render(self) -> Table:
        table = Table(title="migrating", show_edge=False)
        for column in ("service", "migration", "elapsed"):
            table.add_column(column)
        now = time.monotonic()
        with self.lock:
            for service, (version, since) in sorted(self.rows.items()):
                table.add_row(Text(service), Text(version), f"{now - since:.1f}s")
        return table


@contextmanager
def live_progress(console: Console) -> Iterator[ProgressFn]:
    if not console.is_terminal:

        def log(service: str, version: str | None) -> None:
            if version is not None:
                console.print(Text(f"{service}: applying {version}"))

        yield log
        return
    board = _Board()
    with Live(get_renderable=board.render, console=console, refresh_per_second=8, transient=True):
        yield board.update
