"""Rendering for people (rich tables, colour only on a terminal) and for machines (JSON).

The library returns dataclasses; this module is the only place that turns them into text.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from migratekit.apply import Result
from migratekit.inventory import ServiceInfo


def to_data(value: Any) -> Any:
    """Dataclasses, paths and tuples as plain JSON-able data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_data(getattr(value, f.name)) for f in dataclasses.fields(value) if f.repr}
    if isinstance(value, dict):
        return {str(k): to_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_data(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def as_json(value: Any) -> str:
    return json.dumps(to_data(value), indent=2, ensure_ascii=False)


def services_table(rows: Sequence[ServiceInfo], undeclared: Sequence[str] = ()) -> Table:
    table = Table(
        title="services (dependency order)",
        caption="a service whose URL variable is unset uses the embedded server (invoke db-up)",
    )
    for column in ("service", "language", "depends on", "migrations", "newest", "url variable", "database"):
        table.add_column(column, justify="right" if column == "migrations" else "left")
    for row in rows:
        name = row.name if row.declared or not undeclared else f"{row.name} [yellow](not in workspace.yaml)[/]"
        table.add_row(
            name,
            row.language,
            ", ".join(row.depends_on) or "-",
            str(row.migrations),
            row.newest or "-",
            row.url_variable,
            row.database,
        )
    return table


def console(stderr: bool = False) -> Console:
    return Console(stderr=stderr, highlight=False)


OUTCOME_STYLE = {"applied": "green", "up to date": "green", "planned": "cyan", "failed": "red", "skipped": "yellow"}


def results_table(results: Sequence[Result], title: str = "migrate-all") -> Table:
    table = Table(title=title)
    for column in ("service", "applied now", "already applied", "pending", "time", "outcome"):
        table.add_column(
            column,
            overflow="fold",
            justify="right" if column in ("applied now", "already applied", "pending", "time") else "left",
        )
    for r in results:
        style = OUTCOME_STYLE.get(r.outcome, "")
        table.add_row(
            r.service,
            str(len(r.applied)),
            str(r.already_applied),
            str(len(r.pending)),
            f"{r.elapsed_ms} ms",
            f"[{style}]{r.outcome}[/]",
        )
    return table


def result_details(results: Sequence[Result]) -> list[str]:
    """The lines under the table: what failed where and what to do, skips, notes, the dry run's files."""
    lines = []
    for r in results:
        if r.failure:
            lines.append(f"[red]{r.service}[/]: {r.failure.describe()}")
        for note in r.notes:
            lines.append(f"{r.service}: {note}")
        if r.pending:
            lines.append(f"{r.service}: would apply {', '.join(r.pending)}")
    return lines
