"""The live display of a run: which migration each service is on, and for how long.

It also says what finished and how long it took. On a terminal it is a rich Live table on stderr (the
services in flight, and how many are done); elsewhere (a CI log, a pipe) one line per event, which a reader
scrolls back through: the wave headers, each migration's start and end with its duration, each service's end
with `N of M services`. stdout stays clean for --json. Names and versions are text, never markup.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from rich.text import Text

from migratekit.cli.render import OUTCOME_LABEL, duration
from migratekit.database.apply import Applying, Event, Finished, ProgressFn, Ran, Said, WaveStarted
from migratekit.database.results import Outcome, Result

if TYPE_CHECKING:  # the live table is drawn on a terminal only: a CI log's lines need no more of rich than Text
    from rich.console import Console
    from rich.table import Table


def finished_text(result: Result) -> str:
    """A service's end in a few words: `3 applied in 2.5 s`, `up to date`, `failed after 1 applied`."""
    count = len(result.applied)
    took = f" in {duration(result.elapsed_ms / 1000)}"
    if result.outcome is Outcome.APPLIED:
        return f"{count} applied{took}"
    if result.outcome is Outcome.PLANNED:
        return f"would apply {len(result.pending)}"
    if result.outcome in (Outcome.FAILED, Outcome.INTERRUPTED):
        return OUTCOME_LABEL[result.outcome] + (f" after {count} applied" if count else "") + took
    return OUTCOME_LABEL[result.outcome]


def event_line(event: Event) -> Text | None:
    """The CI log's line for one event (None: nothing to say)."""
    if isinstance(event, WaveStarted):
        return Text(f"wave {event.number} of {event.waves}: {', '.join(event.services)}")
    if isinstance(event, Applying):
        return Text(f"{event.service}: applying {event.label}")
    if isinstance(event, Ran):
        took = duration(event.applied.execution_time_ms / 1000)
        return Text(f"{event.service}: applied {event.applied.version} in {took}")
    if isinstance(event, Said):
        return Text(f"{event.service}: {event.line}")
    if isinstance(event, Finished):
        said = finished_text(event.result)
        return Text(f"{event.result.service}: {said} ({event.done} of {event.total} services)")
    return None


class _Board:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rows: dict[str, tuple[str, float]] = {}
        self.done = (0, 0)

    def update(self, event: Event) -> None:
        with self.lock:
            if isinstance(event, Applying | Said):
                label = event.label if isinstance(event, Applying) else event.line
                self.rows[event.service] = (label, time.monotonic())
            elif isinstance(event, Finished):
                self.rows.pop(event.result.service, None)
                self.done = (event.done, event.total)

    def render(self) -> Table:
        from rich.table import Table

        done, total = self.done
        title = f"migrating: {done} of {total} done" if total else "migrating"  # short: the table is narrow
        table = Table(title=Text(title), show_edge=False)
        for column in ("service", "migration", "elapsed"):
            table.add_column(column)
        now = time.monotonic()
        with self.lock:
            for service, (version, since) in sorted(self.rows.items()):
                table.add_row(Text(service), Text(version), duration(now - since))
        return table


@contextmanager
def live_progress(console: Console) -> Iterator[ProgressFn]:
    if not console.is_terminal:

        def log(event: Event) -> None:
            line = event_line(event)
            if line is not None:
                console.print(line)

        yield log
        return
    from rich.live import Live

    board = _Board()
    with Live(get_renderable=board.render, console=console, refresh_per_second=8, transient=True):
        yield board.update
