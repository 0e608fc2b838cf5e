"""`invoke drift`: is each database exactly what its migration files say, and do services still agree?

Read-only: drift never writes to a database (its sessions are read-only) and never creates one.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

import psycopg
from psycopg import sql

from migratekit.database import other_tools, tracking
from migratekit.database.apply import apply_service
from migratekit.database.other_tools import ATLAS_SCHEMA, histories
from migratekit.database.plan import plan
from migratekit.database.results import Stopped
from migratekit.database.schema import Difference, compare, snapshot
from migratekit.database.scratch import ScratchServer, scratch_database
from migratekit.errors import ConfigError, MigratekitError
from migratekit.model.contract import qualified
from migratekit.model.formats import newest, version_key
from migratekit.model.identity import as_libpq, shared_databases
from migratekit.model.migration import Migration
from migratekit.model.secrets import redact
from migratekit.model.settings import RunOptions
from migratekit.model.workspace import Workspace


class ItemKind(StrEnum):
    """What is off in one migration (identifiers, as the JSON carries them; cli/render says them in words)."""

    PENDING = "pending"
    OUT_OF_ORDER = "out_of_order"
    CHANGED = "changed"
    MISSING_FILE = "missing_file"


class DriftState(StrEnum):
    UP_TO_DATE = "up_to_date"
    DRIFT = "drift"
    NOT_CREATED = "not_created"
    UNREACHABLE = "unreachable"
    FOREIGN_TABLE = "foreign_table"


@dataclass(frozen=True)
class Item:
    version: str  # the migration
    kind: ItemKind  # what is off
    detail: str = ""  # the evidence (checksums, the version it sorts before)


@dataclass(frozen=True)
class ServiceDrift:
    service: str  # the service
    database: str  # where, password hidden
    state: DriftState  # the database as a whole
    applied: int = 0  # how many tracking rows it has
    newest_applied: str | None = None  # the newest recorded version
    items: tuple[Item, ...] = ()  # each migration that is off
    schema: tuple[Difference, ...] = ()  # with --schema: how the live schema differs from a replay of the applied files
    message: str | None = None  # why the database could not be read, or what is missing

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
        ["git", "-C", str(root), "log", "-1", "--format=%h %s", "--", str(path)],
        capture_output=True,
        encoding="utf-8",  # a commit subject in any language, whatever the locale
        errors="replace",
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
                        result.failure.describe() if result.failure else result.outcome.replace("_", " "),
                    )
                ]
        with psycopg.connect(replay_url) as replay, psycopg.connect(live_url) as live:
            live.execute("SET default_transaction_read_only = on")
            theirs = other_tools_objects(live)
            return [d for d in compare(snapshot(replay), snapshot(live)) if (d.kind, d.name) not in theirs]


def other_tools_objects(conn: psycopg.Connection) -> set[tuple[str, str]]:
    """The live database's history tables of other tools (Flyway's, sqlx's, …: kept on purpose after adopt, and
    never made by the files) as snapshot names: each table, its columns, constraints, indexes and sequences."""
    found = histories(conn)[0]
    tables = [f.table for f in found]
    if not tables:
        return set()
    objects = {("table", t) for t in tables}
    # the schema Atlas creates for its table by default (atlas_schema_revisions.atlas_schema_revisions)
    objects |= {("schema", f.schema) for f in found if f.tool == "atlas" and f.schema == ATLAS_SCHEMA}
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
    return objects | {(kind, name) for kind, name in rows} | _tools_own_schemas(conn, tables)


def _tools_own_schemas(conn: psycopg.Connection, tables: list[str]) -> set[tuple[str, str]]:
    """The schemas a tool made for its history alone (drizzle's "drizzle"): no relation in them but its tables (and
    their sequences and indexes), no function and no type of their own."""
    rows = conn.execute(
        "SELECT n.nspname::text FROM pg_catalog.pg_namespace n "
        "WHERE n.nspname = ANY(%(s)s) AND n.nspname <> 'public' AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c "
        "WHERE c.relnamespace = n.oid AND c.relkind IN ('r', 'p', 'v', 'm', 'f') "
        "AND n.nspname || '.' || c.relname <> ALL(%(t)s)) "
        "AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_proc p WHERE p.pronamespace = n.oid) "
        "AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_type t WHERE t.typnamespace = n.oid AND t.typrelid = 0 "
        "AND t.typelem = 0)",
        {"s": sorted({t.split(".")[0] for t in tables}), "t": tables},
    ).fetchall()
    return {("schema", schema) for (schema,) in rows}


@dataclass(frozen=True)
class Matrix:
    environments: tuple[str, ...]  # as named under environments: in workspace.yaml
    rows: tuple[tuple[str, tuple[str, ...]], ...]  # (service, cell per environment)


def environment_matrix(workspace: Workspace, environments: list[str], environ: Mapping[str, str]) -> Matrix:
    """Which version each service is at in each environment (URLs from the variables workspace.yaml names)."""
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
            state, _ = database_drift(workspace, name, as_libpq(url, f"${variable} (service {name}, {env})"))
            said = state.state.replace("_", " ")  # a cell is text a person reads: not_created -> not created
            cell = state.newest_applied or said
            pending = sum(i.kind is ItemKind.PENDING for i in state.items)
            if state.state in (DriftState.UNREACHABLE, DriftState.FOREIGN_TABLE):
                cell = said
            elif state.items:
                cell += f" (+{pending} pending)" if pending == len(state.items) else f" (drift: {len(state.items)})"
            cells.append(cell)
        rows.append((name, tuple(cells)))
    return Matrix(tuple(environments), tuple(rows))


class EntryKind(StrEnum):
    """What the tracking table and the files say of one migration (the JSON value; render says it in words)."""

    APPLIED = "applied"  # migratekit (or the seed's runner) ran it
    ADOPTED = "adopted"  # recorded by `adopt` from another tool's history, which still vouches for it
    BASELINED = "baselined"  # recorded by `baseline`: the database already held it, nothing ran
    CHANGED = "changed"  # applied, but the file was edited since
    MISSING_FILE = "missing_file"  # applied, but its file is gone
    PENDING = "pending"
    OUT_OF_ORDER = "out_of_order"  # pending, and it sorts before the newest applied one

    @property
    def done(self) -> bool:
        return self in (EntryKind.APPLIED, EntryKind.ADOPTED, EntryKind.BASELINED)


_FROM_ITEM = {
    ItemKind.PENDING: EntryKind.PENDING,
    ItemKind.OUT_OF_ORDER: EntryKind.OUT_OF_ORDER,
    ItemKind.CHANGED: EntryKind.CHANGED,
    ItemKind.MISSING_FILE: EntryKind.MISSING_FILE,
}

BASELINE_MS = -1  # the execution_time_ms `baseline` records: nothing ran (a run measures 0 ms or more)


@dataclass(frozen=True)
class Entry:
    version: str  # the file name without .sql
    state: EntryKind  # how the files and the tracking rows say it stands
    applied_at: str | None = None  # ISO 8601, with its time zone
    execution_time_ms: int | None = None  # None: not applied, or recorded without running (adopted, baselined)
    detail: str = ""  # what is off (a changed checksum and the file's last commit)
    adopted_from: str | None = None  # adopted: the tool whose history vouches for it (dbmate, golang-migrate, ...)


@dataclass(frozen=True)
class ServiceStatus:
    service: str  # the service
    database: str  # where, password hidden
    state: DriftState  # the database as a whole
    entries: tuple[Entry, ...]  # each migration, by version
    message: str | None = None  # why the database could not be read, or what is missing

    @property
    def up_to_date(self) -> bool:
        return self.state is DriftState.UP_TO_DATE and all(e.state.done for e in self.entries)

    @property
    def readable(self) -> bool:
        """False when the database could not be read at all: its entries say nothing of its state."""
        return self.state not in (DriftState.UNREACHABLE, DriftState.FOREIGN_TABLE)


def service_status(workspace: Workspace, name: str, url: str | None) -> ServiceStatus:
    """Each migration of one service: its state from the files and rows, and for a recorded one how it got there
    (run, adopted from another tool's history, or baselined), when, and how long it took."""
    drift, rows = database_drift(workspace, name, url)
    items = {item.version: item for item in drift.items}
    service = workspace.services[name]
    migrations = service.load_migrations()
    details, adopted = _applied_details(url, service.settings.tracking_table, migrations) if rows else ({}, {})
    versions = {m.version for m in migrations} | set(rows)
    entries = []
    for version in sorted(versions, key=version_key):
        item = items.get(version)
        applied_at, elapsed = details.get(version, (None, None))
        kind = _FROM_ITEM[item.kind] if item else EntryKind.APPLIED
        tool = adopted.get(version) if elapsed == 0 else None
        if kind is EntryKind.APPLIED and elapsed == BASELINE_MS:
            kind, elapsed = EntryKind.BASELINED, None
        elif kind is EntryKind.APPLIED and tool is not None:
            kind, elapsed = EntryKind.ADOPTED, None
        entries.append(Entry(version, kind, applied_at, elapsed, item.detail if item else "", tool))
    return ServiceStatus(name, drift.database, drift.state, tuple(entries), drift.message)


def _applied_details(
    url: str | None, table: str, migrations: tuple[Migration, ...]
) -> tuple[dict[str, tuple[str, int]], dict[str, str]]:
    """The rows' times (version -> (applied_at, ms)), and which versions another tool's kept history vouches for
    (version -> tool): `adopt` leaves that table in place, so what it imported is still told from what ran."""
    if url is None:
        return {}, {}
    query = sql.SQL("SELECT version, applied_at, execution_time_ms FROM {}").format(tracking.identifier(table))
    with psycopg.connect(url, autocommit=True, connect_timeout=10, application_name="migratekit status") as conn:
        conn.execute("SET default_transaction_read_only = on")
        details = {v: (at.isoformat(), ms) for v, at, ms in conn.execute(query)}
        adopted: dict[str, str] = {}
        if not any(ms == 0 for _, ms in details.values()):
            return details, adopted  # adopt records 0 ms: without such a row there is nothing to look up
        for found in other_tools.histories(conn)[0]:
            if found.table == qualified(table):
                continue
            try:
                vouched = other_tools.paired(other_tools.read(conn, found.tool, found.table), migrations)[0]
            except MigratekitError:  # a broken history vouches for nothing; adopt says why
                continue
            for migration, _ in vouched:
                adopted.setdefault(migration.version, found.tool)
    return details, adopted


@dataclass(frozen=True)
class Applying:
    """One recorded migration on the cross-service timeline (`status --timeline`)."""

    applied_at: str  # ISO 8601
    service: str  # the service
    version: str  # the migration
    state: EntryKind  # applied, adopted, baselined or changed
    execution_time_ms: int | None = None  # null: recorded without running
    adopted_from: str | None = None  # the tool whose history vouches for an adopted one


def timeline(statuses: Sequence[ServiceStatus], since: datetime | None = None) -> tuple[Applying, ...]:
    """What was recorded across services, newest first (at `since` or later)."""
    rows = [
        Applying(e.applied_at, s.service, e.version, e.state, e.execution_time_ms, e.adopted_from)
        for s in statuses
        for e in s.entries
        if e.applied_at is not None and (since is None or datetime.fromisoformat(e.applied_at) >= since)
    ]
    return tuple(sorted(rows, key=lambda a: (datetime.fromisoformat(a.applied_at), a.service, a.version), reverse=True))


_AGO = re.compile(r"([0-9]+)\s*(min|m|h|d|w)")
_UNITS = {"min": "minutes", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def since_time(text: str, now: datetime) -> datetime:
    """`--since`: a date or time (2026-12-01, 2026-12-01T09:30, in UTC unless it names a zone) or an age (7d, 12h,
    30min, 2w); ConfigError otherwise."""
    ago = _AGO.fullmatch(text.strip())
    if ago:
        return now - timedelta(**{_UNITS[ago.group(2)]: int(ago.group(1))})
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(
            f"--since {text!r}: give a date or time (2026-12-01, 2026-12-01T09:30) or an age (7d, 12h, 30min)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
