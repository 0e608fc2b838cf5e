"""`invoke drift`: is each database exactly what its migration files say, and do services still agree?

Read-only: drift never writes to a database (its sessions are read-only) and never creates one.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path

import psycopg
from psycopg import sql

from migratekit.database import tracking
from migratekit.database.apply import apply_service
from migratekit.database.other_tools import histories
from migratekit.database.plan import plan
from migratekit.database.results import Stopped
from migratekit.database.schema import Difference, compare, snapshot
from migratekit.database.scratch import ScratchServer, scratch_database
from migratekit.model.formats import newest, version_key
from migratekit.model.identity import shared_databases
from migratekit.model.migration import Migration
from migratekit.model.secrets import redact
from migratekit.model.settings import RunOptions
from migratekit.model.workspace import Workspace


class ItemKind(StrEnum):
    PENDING = "pending"
    OUT_OF_ORDER = "out of order"
    CHANGED = "changed"
    MISSING_FILE = "missing file"


class DriftState(StrEnum):
    UP_TO_DATE = "up to date"
    DRIFT = "drift"
    NOT_CREATED = "not created"
    UNREACHABLE = "unreachable"
    FOREIGN_TABLE = "foreign table"


@dataclass(frozen=True)
class Item:
    version: str
    kind: ItemKind
    detail: str = ""


@dataclass(frozen=True)
class ServiceDrift:
    service: str
    database: str  # where, password hidden
    state: DriftState
    applied: int = 0
    newest_applied: str | None = None
    items: tuple[Item, ...] = ()
    schema: tuple[Difference, ...] = ()
    message: str | None = None

    @property
    def drifted(self) -> bool:
        return self.state is not DriftState.UP_TO_DATE or bool(self.items) or bool(self.schema)


def database_drift(workspace: Workspace, name: str, url: str | None) -> tuple[ServiceDrift, dict[str, str]]:
    """Files against tracking rows for one service; also returns the rows (version -> checksum)."""
    service = workspace.services[name]
    migrations = service.load_migrations()
    where = redact(url) if url else f"embedded/{service.database}"
    if url is None:
        items = tuple(Item(m.version, ItemKind.PENDING) for m in migrations)
        return ServiceDrift(
            name,
            where,
            DriftState.NOT_CREATED,
            items=items,
            message="the database does not exist yet, or the embedded server is stopped",
        ), {}
    table = workspace.services[name].settings.tracking_table
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=10, application_name="migratekit drift") as conn:
            conn.execute("SET default_transaction_read_only = on")
            try:
                recorded = tracking.recorded(conn, table)
            except Stopped as exc:
                return ServiceDrift(name, where, DriftState.FOREIGN_TABLE, message=exc.failure.message), {}
    except psycopg.OperationalError as exc:
        return ServiceDrift(name, where, DriftState.UNREACHABLE, message=redact(str(exc)).strip()), {}
    rows = recorded or {}
    items = _items(workspace.root, migrations, rows)
    message = None if recorded is not None else f"no tracking table {table}"
    drift = ServiceDrift(
        name,
        where,
        DriftState.UP_TO_DATE if not items and recorded is not None else DriftState.DRIFT,
        len(rows),
        newest(rows),
        items,
        message=message,
    )
    return drift, rows


def _items(root: Path, migrations: tuple[Migration, ...], rows: Mapping[str, str]) -> tuple[Item, ...]:
    loose = plan(migrations, rows, allow_changed=True, out_of_order=True)
    files = {m.version: m for m in migrations}
    items = [Item(v, ItemKind.MISSING_FILE, "applied, but the file is gone") for v in sorted(rows) if v not in files]
    for m in loose.rechecksum:
        items.append(
            Item(
                m.version,
                ItemKind.CHANGED,
                f"applied checksum {rows[m.version]}, file now {m.checksum}{_last_commit(root, m.path)}",
            )
        )
    last = newest(rows) or ""
    for m in loose.pending:
        early = version_key(m.version) < version_key(last) and not m.repeatable
        items.append(
            Item(
                m.version,
                ItemKind.OUT_OF_ORDER if early else ItemKind.PENDING,
                f"sorts before {last}, which is applied" if early else "",
            )
        )
    return tuple(sorted(items, key=lambda i: i.version))


def _last_commit(root: Path, path: Path) -> str:
    result = subprocess.run(
        ["git", "-C", str(root), "log", "-1", "--format=%h %s", "--", str(path)], capture_output=True, text=True
    )
    return f"; last commit {result.stdout.strip()}" if result.returncode == 0 and result.stdout.strip() else ""


def drift(
    workspace: Workspace,
    only: list[str] | None,
    urls: Mapping[str, str | None],
    server: ScratchServer | None = None,
) -> list[ServiceDrift]:
    """Every selected service's drift; with a scratch server, the live schema against a replay too.

    Services sharing a database are replayed together, whichever of them was selected: one
    service's migrations may reference another's objects.
    """
    names = [n for n in workspace.order() if not only or n in only]
    groups = _database_groups(workspace, names, urls) if server is not None else []
    needed = set(names).union(*groups)
    results: dict[str, ServiceDrift] = {}
    rows: dict[str, dict[str, str]] = {}
    for name in workspace.order():
        if name in needed:
            results[name], rows[name] = database_drift(workspace, name, urls.get(name))
    for group in groups:
        if any(results[n].state is DriftState.UNREACHABLE for n in group):
            continue  # its state already says why; there is no live schema to compare
        differences = schema_drift(workspace, group, urls[group[0]], rows, server)  # type: ignore[arg-type]
        owner = [n for n in group if n in names][-1]
        state = results[owner].state
        if differences and state is DriftState.UP_TO_DATE:
            state = DriftState.DRIFT  # the state column and the schema verdict say the same thing
        results[owner] = replace(results[owner], schema=tuple(differences), state=state)
    return [results[n] for n in names]


def _database_groups(workspace: Workspace, names: list[str], urls: Mapping[str, str | None]) -> list[list[str]]:
    """Services that live in one existing database, in dependency order, where any of them is selected."""
    ordered = [workspace.services[n] for n in workspace.order()]
    return [g for _, g in shared_databases(ordered) if urls.get(g[0]) and any(n in names for n in g)]


def schema_drift(
    workspace: Workspace, group: list[str], live_url: str, rows: Mapping[str, Mapping[str, str]], server: ScratchServer
) -> list[Difference]:
    """Replay the versions applied live into a throwaway database and compare the two schemas."""
    with scratch_database(server, prefix="mk_drift") as replay_url:
        for name in group:
            applied = set(rows.get(name, {}))
            migrations = tuple(m for m in workspace.services[name].load_migrations() if m.version in applied)
            if not migrations:
                continue  # nothing applied live: no tracking table there either, so none in the replay
            result = apply_service(
                name, replay_url, migrations, workspace.services[name].settings, RunOptions(out_of_order=True)
            )
            if not result.ok:
                return [
                    Difference(
                        "replay",
                        name,
                        "different",
                        "the files apply cleanly",
                        result.failure.describe() if result.failure else result.outcome,
                    )
                ]
        with psycopg.connect(replay_url) as replay, psycopg.connect(live_url) as live:
            live.execute("SET default_transaction_read_only = on")
            theirs = other_tools_objects(live)
            return [d for d in compare(snapshot(replay), snapshot(live)) if (d.kind, d.name) not in theirs]


def other_tools_objects(conn: psycopg.Connection) -> set[tuple[str, str]]:
    """The live database's history tables of other tools (Flyway's, sqlx's, …: kept on purpose after adopt, and
    never made by the files) as snapshot names: each table, its columns, constraints, indexes and sequences."""
    tables = [found.table for found in histories(conn)[0]]
    if not tables:
        return set()
    objects = {("table", t) for t in tables}
    rows = conn.execute(
        "SELECT 'column', n.nspname || '.' || c.relname || '.' || a.attname FROM pg_catalog.pg_attribute a "
        "JOIN pg_catalog.pg_class c ON c.oid = a.attrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        "WHERE a.attnum > 0 AND NOT a.attisdropped AND n.nspname || '.' || c.relname = ANY(%(t)s) "
        "UNION ALL SELECT 'constraint', n.nspname || '.' || c.relname || '.' || k.conname "
        "FROM pg_catalog.pg_constraint k JOIN pg_catalog.pg_class c ON c.oid = k.conrelid "
        "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname || '.' || c.relname = ANY(%(t)s) "
        "UNION ALL SELECT 'index', n.nspname || '.' || i.relname FROM pg_catalog.pg_index x "
        "JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid JOIN pg_catalog.pg_namespace n ON n.oid = i.relnamespace "
        "WHERE x.indrelid::regclass::text = ANY(%(t)s) OR x.indrelid = ANY(%(t)s::regclass[]) "
        "UNION ALL SELECT 'sequence', s.seq::text FROM (SELECT pg_catalog.pg_get_serial_sequence(t, a.attname) AS seq "
        "FROM pg_catalog.unnest(%(t)s::text[]) AS t JOIN pg_catalog.pg_attribute a ON a.attrelid = t::regclass "
        "AND a.attnum > 0) s WHERE s.seq IS NOT NULL",
        {"t": tables},
    ).fetchall()
    return objects | {(kind, name) for kind, name in rows}


@dataclass(frozen=True)
class Matrix:
    environments: tuple[str, ...]
    rows: tuple[tuple[str, tuple[str, ...]], ...]  # (service, cell per environment)


def environment_matrix(workspace: Workspace, environments: list[str], environ: Mapping[str, str]) -> Matrix:
    """Which version each service is at in each environment (URLs from the variables workspace.yaml names)."""
    from migratekit.errors import ConfigError

    unknown = [e for e in environments if e not in workspace.environments]
    if unknown:
        raise ConfigError(
            f"environment(s) {', '.join(unknown)} not declared: add them under environments: in workspace.yaml, "
            'e.g. environments: {staging: "{SERVICE}_STAGING_DATABASE_URL"}'
        )
    rows = []
    for name in workspace.order():
        cells = []
        for env in environments:
            variable = workspace.environment_variable(env, name)
            url = environ.get(variable, "").strip()
            if not url:
                cells.append(f"${variable} unset")
                continue
            state, _ = database_drift(workspace, name, url)
            cell = state.newest_applied or state.state
            pending = sum(i.kind is ItemKind.PENDING for i in state.items)
            if state.state in (DriftState.UNREACHABLE, DriftState.FOREIGN_TABLE):
                cell = state.state
            elif state.items:
                cell += f" (+{pending} pending)" if pending == len(state.items) else f" (drift: {len(state.items)})"
            cells.append(cell)
        rows.append((name, tuple(cells)))
    return Matrix(tuple(environments), tuple(rows))


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
    details = _applied_details(url, workspace.services[name].settings.tracking_table) if rows else {}
    service = workspace.services[name]
    versions = {m.version for m in service.load_migrations()} | set(rows)
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
