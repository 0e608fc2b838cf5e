"""Tracking rows written without running a migration: adopt, baseline and forget.

`adopt` imports another tool's history (database.other_tools reads it): each version found there is
matched to a file (same version, same number, or the tool's own script name), and migratekit's row is
written with the file's checksum as it is, `execution_time_ms` 0 and `applied_at` from the tool where it
has one; the other tool's table is never touched. `baseline` records the versions up to one the user
names, for a database that already holds a service's tables (`execution_time_ms` -1: nothing ran, which is how
`status` tells a baselined row from one that ran); with --check it first replays them into a
throwaway database and compares the catalogs, as `drift --schema` does, so a baseline that would record
a lie is refused. `forget` removes one wrongly recorded row (Flyway's `repair`), after saying what it
removes. Each reads migratekit's rows and decides once it holds the migration lock, and writes in one
transaction (the tracking table, when it creates it, included).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from psycopg import sql

from migratekit.database import tracking
from migratekit.database.connection import connect, lost, refused
from migratekit.database.drift import BASELINE_MS, database_drift, schema_drift
from migratekit.database.other_tools import (
    OWN_RUNNER,
    History,
    edited_since,
    own_runner_history,
    paired,
    read,
    which_tool,
)
from migratekit.database.results import Stopped
from migratekit.database.schema import Difference
from migratekit.database.scratch import ScratchServer
from migratekit.errors import ConfigError, MigratekitError
from migratekit.model.contract import index_name, qualified
from migratekit.model.formats import Version, version_key
from migratekit.model.identity import shared_databases
from migratekit.model.migration import Migration
from migratekit.model.runner_table import RunnerTable
from migratekit.model.settings import RUN_DEFAULTS, RunOptions, ServiceSettings
from migratekit.model.workspace import Workspace


@dataclass(frozen=True)
class Adopted:
    service: str
    tool: str
    table: str
    imported: tuple[str, ...]  # versions written (or, in a dry run, to be written)
    already: tuple[str, ...] = ()  # versions migratekit had recorded with the same checksum
    dry_run: bool = False
    unmatched: tuple[str, ...] = ()  # names the service's own runner recorded that no file has (not recorded)
    edited: tuple[str, ...] = ()  # versions the tool recorded another checksum for than the file has now (Prisma)


def adopt(
    service: str,
    url: str,
    migrations: Sequence[Migration],
    settings: ServiceSettings,
    run: RunOptions = RUN_DEFAULTS,
    tool: str = "auto",
    neighbours: Sequence[Migration] = (),
    own: RunnerTable | None = None,
) -> Adopted:
    """Import the other tool's history (with run.dry_run, only say what would be recorded); the rows are read and
    compared once the migration lock is held, so what another runner recorded meanwhile is seen. `neighbours` are
    the files of the services sharing the database: a version one of them has is theirs (one _sqlx_migrations for
    every service, each with its own block of versions), not a file this service lost. `own` is the table the
    service's hand-written runner declares (model.runner_table): its history, when it is there."""
    with connect(url, run.connect_wait) as conn, _refusals(conn):
        if run.dry_run:
            return _adopt(conn, service, migrations, settings, run, tool, neighbours, own)
        with tracking.locked(conn, settings.tracking_table, run.lock_wait):
            return _adopt(conn, service, migrations, settings, run, tool, neighbours, own)


@contextmanager
def _refusals(conn: psycopg.Connection) -> Iterator[None]:
    """The server refusing the bookkeeping (a read-only database, a missing grant) or the connection lost, as a
    Stopped that says why and what to do, as migrate says it."""
    try:
        yield
    except psycopg.Error as exc:
        raise Stopped(lost(exc, None) if conn.broken else refused(exc)) from None


def _adopt(
    conn: psycopg.Connection,
    service: str,
    migrations: Sequence[Migration],
    settings: ServiceSettings,
    run: RunOptions,
    tool: str,
    neighbours: Sequence[Migration] = (),
    own: RunnerTable | None = None,
) -> Adopted:
    history = _own_runner(conn, tool, settings.tracking_table, own)
    ours = history is not None  # the service's own: a name no file has any more is said, not a reason to refuse
    if history is None:
        history = read(conn, *which_tool(conn, tool, settings.tracking_table))
    matched, missing = _match(history, migrations, neighbours, tolerate_missing=ours)
    name, table, unmatched = history.tool, history.table, tuple(missing)
    rows = tracking.recorded(conn, settings.tracking_table) or {}
    already = tuple(m.version for m, _ in matched if rows.get(m.version) == m.checksum)
    clash = [m.filename for m, _ in matched if m.version in rows and rows[m.version] != m.checksum]
    if clash:
        raise MigratekitError(f"already recorded with another checksum: {', '.join(clash)}; see invoke status")
    todo = [(m, at) for m, at in matched if m.version not in rows]
    if not run.dry_run:
        with conn.transaction():  # the table, its schema and the rows, or nothing
            tracking.ensure_table(conn, settings.tracking_table)
            for migration, applied_at in todo:
                conn.execute(
                    sql.SQL(
                        "INSERT INTO {} (version, checksum, execution_time_ms, applied_at) "
                        "VALUES (%s, %s, 0, coalesce(%s::timestamptz, pg_catalog.now()))"
                    ).format(tracking.identifier(settings.tracking_table)),
                    (migration.version, migration.checksum, applied_at),
                )
    edited = tuple(edited_since(history, matched))
    imported = tuple(m.version for m, _ in todo)
    return Adopted(service, name, table, imported, already, run.dry_run, unmatched, edited)


def _own_runner(conn: psycopg.Connection, tool: str, tracking_table: str, own: RunnerTable | None) -> History | None:
    """The service's own runner's history, when asked for (or auto) and there; `--from own-runner` without it is
    an error that says what is missing."""
    if tool not in ("auto", OWN_RUNNER):
        return None
    history = own_runner_history(conn, own) if own is not None else None
    if history is None and tool == OWN_RUNNER:
        missing = f"its table {own.table} is not in this database" if own else "no runner of this service declares one"
        raise ConfigError(f"--from {OWN_RUNNER}: {missing} (a CREATE TABLE in its source, beside its INSERT INTO)")
    if history is not None and qualified(tracking_table) == history.table:
        raise ConfigError(
            f"this service's own runner keeps its history in {history.table}, the table migratekit would write: set "
            "tracking_table: migratekit.schema_migrations for this service in workspace.yaml"
        )
    return history


def _match(
    history: History,
    migrations: Sequence[Migration],
    neighbours: Sequence[Migration] = (),
    tolerate_missing: bool = False,
) -> tuple[list[tuple[Migration, str | None]], list[str]]:
    """Each version of the tool's history with its file, and the versions no file has; a version without a file
    (of this service or, in a shared database, of a neighbour's: those are theirs), unless tolerated, or a gap,
    stops it."""
    matched, missing = paired(history, migrations)
    if missing and neighbours:
        theirs = History(history.tool, history.table, tuple(e for e in history.entries if e.version in missing))
        missing = paired(theirs, neighbours)[1]
    if missing and not tolerate_missing:
        raise MigratekitError(
            f"{history.tool}'s {history.table} records as applied, but no file matches: {', '.join(missing)}; "
            "restore the missing files, or check that this is this service's history"
        )
    done = {m.version for m, _ in matched}
    newest_key = max((version_key(v) for v in done if not Version.parse(v).repeatable), default=version_key(""))
    skipped = [
        m.filename
        for m in migrations
        if m.version not in done and not m.parsed_version.repeatable and version_key(m.version) < newest_key
    ]
    if skipped:
        raise MigratekitError(
            f"older than the newest applied, but never applied by the other tool: {', '.join(skipped)}; apply "
            "them (migrate --out-of-order) or find out why, before adopting"
        )
    return sorted(matched, key=lambda pair: version_key(pair[0].version)), missing


@dataclass(frozen=True)
class Baselined:
    service: str
    recorded: tuple[str, ...]
    already: tuple[str, ...]
    checked: bool


def baseline(
    workspace: Workspace,
    name: str,
    url: str,
    to: str,
    server: ScratchServer | None = None,
    run: RunOptions = RUN_DEFAULTS,
) -> Baselined:
    """Record every version up to `to` as applied; with a scratch server, only after the schemas agree."""
    service = workspace.services[name]
    migrations = service.load_migrations()
    if to not in {m.version for m in migrations}:
        raise ConfigError(
            f"--to {to}: no such migration of {name}; its versions: {', '.join(m.version for m in migrations)}"
        )
    targets = [m for m in migrations if version_key(m.version) <= version_key(to)]
    table = service.settings.tracking_table
    with connect(url, run.connect_wait) as conn, _refusals(conn), tracking.locked(conn, table, run.lock_wait):
        # Read and decided under the lock (the replay included): what another runner records meanwhile is seen.
        rows = tracking.recorded(conn, table) or {}
        clash = [m.filename for m in targets if m.version in rows and rows[m.version] != m.checksum]
        if clash:
            raise ConfigError(f"already recorded with another checksum: {', '.join(clash)}; see invoke status")
        if server is not None:
            _check(workspace, name, url, {m.version: m.checksum for m in targets}, server)
        todo = [m for m in targets if m.version not in rows]
        with conn.transaction():
            tracking.ensure_table(conn, table)
            for migration in todo:
                conn.execute(tracking.row(table, migration.version, migration.checksum, sql.Literal(BASELINE_MS)))
    return Baselined(
        name, tuple(m.version for m in todo), tuple(m.version for m in targets if m.version in rows), server is not None
    )


def _check(workspace: Workspace, name: str, url: str, claimed: dict[str, str], server: ScratchServer) -> None:
    """Refuse unless replaying the claimed versions (and the neighbours' applied ones) gives the live schema."""
    ordered = [workspace.services[n] for n in workspace.order()]
    group = next(g for _, g in shared_databases(ordered) if name in g)
    rows = {n: (claimed if n == name else database_drift(workspace, n, url)[1]) for n in group}
    own = _tracking_objects(workspace.services[name].settings.tracking_table)
    differences = [d for d in schema_drift(workspace, group, url, rows, server) if not own(d)]
    if differences:
        listed = "; ".join(d.describe() for d in differences[:8])
        more = f" (and {len(differences) - 8} more)" if len(differences) > 8 else ""
        raise MigratekitError(
            f"the live schema is not what {name}'s migrations up to that version make: {listed}{more}; "
            "baseline a version the database really matches, or fix the database first"
        )


def _tracking_objects(tracking_table: str) -> Callable[[Difference], bool]:
    """Whether a difference is the tracking table's own: the replay has the table (its columns, key and index, and
    its schema when it is qualified) that the live database gets only when the baseline is recorded. Names are
    compared whole: a table, column or index that merely has the table's name in its own is compared like any."""
    table = qualified(tracking_table)
    schema, bare = table.split(".")
    names = {
        ("table", table),
        ("index", f"{schema}.{index_name(tracking_table)}"),
        ("index", f"{schema}.{bare}_pkey"),
    }
    if "." in tracking_table and schema != "public":
        names.add(("schema", schema))

    def own(difference: Difference) -> bool:
        if (difference.kind, difference.name) in names:
            return True
        return difference.kind in ("column", "constraint") and difference.name.rpartition(".")[0] == table

    return own


@dataclass(frozen=True)
class Forgotten:
    service: str
    version: str
    checksum: str
    applied_at: str
    removed: bool  # False: only said what it would remove (no --yes)


def forget(
    workspace: Workspace, name: str, url: str, version: str, yes: bool, run: RunOptions = RUN_DEFAULTS
) -> Forgotten:
    """Remove the tracking row of `version` (with yes), under the migration lock; unknown versions refused."""
    table = workspace.services[name].settings.tracking_table
    query = (
        "DELETE FROM {} WHERE version = %s RETURNING checksum, applied_at::text"
        if yes
        else "SELECT checksum, applied_at::text FROM {} WHERE version = %s"
    )
    with connect(url, run.connect_wait) as conn, _refusals(conn), tracking.locked(conn, table, run.lock_wait):
        rows = tracking.recorded(conn, table) or {}  # read under the lock: a row removed meanwhile is not there
        found = (
            conn.execute(sql.SQL(query).format(tracking.identifier(table)), (version,)).fetchone()
            if version in rows
            else None
        )
        if found is None:
            known = ", ".join(sorted(set(rows) - {version}, key=version_key)) or "none"
            raise ConfigError(f"{name} has no row for {version!r} in {table}; recorded versions: {known}")
    return Forgotten(name, version, found[0], found[1], yes)
