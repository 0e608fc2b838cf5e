"""Other tools' history tables: how each is read, and whether one records a service's files already.

migratekit never writes these tables. `adopt` imports what one records (database.history); `migrate`
refuses to start a service afresh when its history is in one of them, or in a table of the seed's shape
that its tracking_table no longer names (a first run would apply every file again).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import psycopg

from migratekit.database import tracking
from migratekit.database.results import Failure
from migratekit.errors import ConfigError, MigratekitError
from migratekit.model.contract import qualified
from migratekit.model.formats import Format
from migratekit.model.migration import Migration

History = list[tuple[str, str | None]]  # (the tool's version or name, applied_at text or None)


def _golang_migrate(conn: psycopg.Connection, table: str) -> History:
    row = conn.execute(f"SELECT version, dirty FROM {table}").fetchone()  # a name from TOOLS, never input
    if row is None:
        return []
    if row[1]:
        raise MigratekitError(
            f"golang-migrate's {table} is dirty at version {row[0]}: a migration failed half-way; fix the "
            "database and run `migrate force` with golang-migrate first"
        )
    return [(f"<={row[0]}", None)]


def _rows(query: str) -> Callable[[psycopg.Connection, str], History]:
    def read(conn: psycopg.Connection, table: str) -> History:
        return [(str(v), None if at is None else str(at)) for v, at in conn.execute(query.format(table=table))]

    return read


# tool -> (its history table, how to read it)
TOOLS: dict[str, tuple[str, Callable[[psycopg.Connection, str], History]]] = {
    "golang-migrate": ("schema_migrations", _golang_migrate),
    "dbmate": ("schema_migrations", _rows("SELECT version, NULL FROM {table}")),
    "goose": (
        "goose_db_version",
        _rows(
            "SELECT version_id::text, max(tstamp)::text FROM {table} GROUP BY version_id "
            "HAVING bool_or(is_applied) AND version_id > 0 AND (array_agg(is_applied ORDER BY id DESC))[1]"
        ),
    ),
    "flyway": (
        "flyway_schema_history",
        _rows("SELECT version, installed_on::text FROM {table} WHERE success AND version IS NOT NULL"),
    ),
    "node-pg-migrate": ("pgmigrations", _rows("SELECT name, run_on::text FROM {table}")),
    "kysely": ("kysely_migration", _rows("SELECT name, timestamp FROM {table}")),
}


# The tools whose files migratekit reads in their own format: their history is this service's only for those files.
FORMAT_OF_TOOL = {"golang-migrate": Format.UPDOWN, "dbmate": Format.DBMATE, "goose": Format.GOOSE}


def history_elsewhere(
    conn: psycopg.Connection, tracking_table: str, migrations: Sequence[Migration], neighbours: tuple[str, ...]
) -> Failure | None:
    """Why a service whose tracking table does not exist yet must not start afresh: its history is elsewhere.

    Either a table of the seed's shape (not another service's) records its files with their checksums (its
    tracking_table changed after it migrated), or its tool's own table records their versions (never adopted).
    Migrating would run every one of them again.
    """
    table = qualified(tracking_table)
    checksums = {m.version: m.checksum for m in migrations}
    moved = tracking.seed_history_elsewhere(conn, tracking_table, checksums, neighbours)
    if moved is not None:
        other, versions = moved
        return Failure(
            f"{table} does not exist yet, but {other} records {len(versions)} of these migrations with the same "
            f"checksums ({_some(versions)}): this service's history, from before its tracking_table changed; "
            "starting afresh would run them all again",
            hint=f"set tracking_table to {other} for this service in workspace.yaml, or move that table to "
            f"{table} (ALTER TABLE … SET SCHEMA / RENAME TO), then run again",
        )
    formats = {m.format for m in migrations}
    for name, fmt in FORMAT_OF_TOOL.items():
        history_table = f"public.{TOOLS[name][0]}"
        if {fmt} != formats or history_table == table:
            continue
        columns = tracking.live_columns(conn, history_table)
        if not columns or not _shape_is(name, columns):
            continue
        try:
            applied = [m.version for m, _ in paired(TOOLS[name][1](conn, history_table), migrations)[0]]
        except MigratekitError as exc:  # golang-migrate's dirty state: a history, and a broken one
            return Failure(f"{table} does not exist yet, and {exc}", hint="then invoke adopt SERVICE")
        if applied:
            return Failure(
                f"{table} does not exist yet, but {name}'s {history_table} records {len(applied)} of these "
                f"migrations ({_some(applied)}); migrating now would run them again",
                hint="import that history first: invoke adopt SERVICE --dry-run, then invoke adopt SERVICE",
            )
    return None


def _some(versions: list[str]) -> str:
    return ", ".join(versions[:3]) + (", …" if len(versions) > 3 else "")


def which_tool(conn: psycopg.Connection, tool: str, tracking_table: str) -> tuple[str, str]:
    candidates = [tool] if tool != "auto" else list(TOOLS)
    if tool not in ("auto", *TOOLS):
        raise ConfigError(f"--from {tool!r}: one of auto, {', '.join(TOOLS)}")
    present = []
    for name in candidates:
        table = f"public.{TOOLS[name][0]}"
        columns = tracking.live_columns(conn, table)
        if columns and _shape_is(name, columns):
            present.append((name, table))
    if not present:
        raise ConfigError(f"no history table of {tool if tool != 'auto' else 'any known tool'} in this database")
    if len(present) > 1:
        raise ConfigError(f"several tools' tables here ({', '.join(n for n, _ in present)}): choose one with --from")
    name, table = present[0]
    if qualified(tracking_table) == table:
        raise ConfigError(
            f"{name} keeps its history in {table}, the table migratekit would write: set "
            "tracking_table: migratekit.schema_migrations for this service in workspace.yaml (invoke init proposes it)"
        )
    return name, table


def _shape_is(tool: str, columns: set[str]) -> bool:
    """A schema_migrations table is golang-migrate's (version, dirty) or dbmate's (version only), not ours."""
    if tool == "golang-migrate":
        return columns == {"version", "dirty"}
    if tool == "dbmate":
        return columns == {"version"}
    return True


def paired(history: History, migrations: Sequence[Migration]) -> tuple[list[tuple[Migration, str | None]], list[str]]:
    """Each version of the tool's history with its file (and its applied_at), and the versions with no file."""
    by_key: dict[str, Migration] = {}
    for m in migrations:
        by_key.setdefault(m.version, m)
        by_key.setdefault(m.filename, m)
        by_key.setdefault(m.filename.split(".", 1)[0], m)
        if m.number is not None:
            by_key.setdefault(str(m.number), m)
    matched: list[tuple[Migration, str | None]] = []
    missing = []
    for version, applied_at in history:
        if version.startswith("<="):  # golang-migrate records only the newest: all up to it ran
            newest = int(version[2:])
            matched += [(m, None) for m in migrations if m.number is not None and m.number <= newest]
            continue
        found = by_key.get(version) or by_key.get(version.lstrip("0") or "0")
        if found is None:
            missing.append(version)
        else:
            matched.append((found, applied_at))
    return matched, missing
