"""A service's tracking rows as a user sees them: each migration's state (`invoke status`), and `forget`.

`status` is drift's comparison of files and rows, listed migration by migration with when each was
applied and how long it took (dbmate's `status`, Flyway's `info`). `forget` removes one wrongly
recorded row under the migration lock (Flyway's `repair`), after saying what it removes.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

from migratekit.database import tracking
from migratekit.database.apply import Options
from migratekit.database.connection import connect
from migratekit.database.drift import DriftState, database_drift
from migratekit.database.orchestrate import service_options
from migratekit.errors import ConfigError
from migratekit.model.formats import version_key
from migratekit.model.migration import load_migrations
from migratekit.model.workspace import Workspace


@dataclass(frozen=True)
class Entry:
    version: str
    state: str  # "applied", "pending", "out of order", "changed", "missing file"
    applied_at: str | None = None
    execution_time_ms: int | None = None
    detail: str = ""


@dataclass(frozen=True)
class ServiceStatus:
    service: str
    database: str
    state: DriftState
    entries: tuple[Entry, ...]
    message: str | None = None


def service_status(workspace: Workspace, name: str, url: str | None) -> ServiceStatus:
    drift, rows = database_drift(workspace, name, url)
    items = {item.version: item for item in drift.items}
    details = _applied_details(url, workspace.services[name].tracking_table) if rows else {}
    service = workspace.services[name]
    versions = {m.version for m in load_migrations(service.migrations_dir, service.format)} | set(rows)
    entries = []
    for version in sorted(versions, key=version_key):
        item = items.get(version)
        applied_at, elapsed = details.get(version, (None, None))
        state = str(item.kind) if item else "applied"
        entries.append(Entry(version, state, applied_at, elapsed, item.detail if item else ""))
    return ServiceStatus(name, drift.database, drift.state, tuple(entries), drift.message)


def _applied_details(url: str | None, table: str) -> dict[str, tuple[str, int]]:
    if url is None:
        return {}
    query = sql.SQL("SELECT version, applied_at::text, execution_time_ms FROM {}").format(tracking.identifier(table))
    with psycopg.connect(url, autocommit=True, connect_timeout=10, application_name="migratekit status") as conn:
        conn.execute("SET default_transaction_read_only = on")
        return {v: (at, ms) for v, at, ms in conn.execute(query)}


@dataclass(frozen=True)
class Forgotten:
    service: str
    version: str
    checksum: str
    applied_at: str
    removed: bool  # False: only said what it would remove (no --yes)


def forget(workspace: Workspace, name: str, url: str, version: str, yes: bool) -> Forgotten:
    """Remove the tracking row of `version` (with yes), under the migration lock; unknown versions refused."""
    options = service_options(workspace, name, Options())
    table = options.tracking_table
    with connect(url, options.connect_wait) as conn:
        rows = tracking.recorded(conn, table) or {}
        if version not in rows:
            known = ", ".join(sorted(rows, key=version_key)) or "none"
            raise ConfigError(f"{name} has no row for {version!r} in {table}; recorded versions: {known}")
        with tracking.locked(conn, table, options.lock_wait):
            found = conn.execute(
                sql.SQL("SELECT checksum, applied_at::text FROM {} WHERE version = %s").format(
                    tracking.identifier(table)
                ),
                (version,),
            ).fetchone()
            assert found is not None
            if yes:
                conn.execute(
                    sql.SQL("DELETE FROM {} WHERE version = %s").format(tracking.identifier(table)), (version,)
                )
    return Forgotten(name, version, found[0], found[1], yes)
