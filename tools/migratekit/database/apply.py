"""Apply one service's migrations to one database, the seed's way done properly.

One connection holds a session advisory lock keyed by database and tracking table (the
example TypeScript runners take the same key), so replicas starting together take turns and
each migration runs exactly once. Each migration commits together with its tracking row;
files that cannot run in a transaction run statement by statement and are recorded last.
The tracking contract is in `tracking`, the comparison of files and rows in `plan`, how pending
migrations are sent (several to a message) in `execution`, and the placing of an error at a
file's line in `script`; this module decides what runs, under the lock.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import psycopg

from migratekit import interrupts
from migratekit.database import execution, tracking
from migratekit.database.connection import MISSING, connect, create_missing, lost, refused
from migratekit.database.plan import plan
from migratekit.database.results import Applied, Failure, MigrationFailed, Outcome, Result, Stopped
from migratekit.model.migration import Migration, load_migrations
from migratekit.model.settings import DEFAULTS

__all__ = ["MigrationFailed", "Options", "ProgressFn", "Result", "apply_service", "run_again", "run_migrations"]


@dataclass(frozen=True)
class Options:
    """How to apply; defaults are the workspace defaults."""

    tracking_table: str = DEFAULTS.tracking_table
    lock_timeout: str = DEFAULTS.lock_timeout
    statement_timeout: str = DEFAULTS.statement_timeout
    lock_wait: float = DEFAULTS.lock_wait  # seconds to wait for another runner's advisory lock
    connect_wait: float = DEFAULTS.connect_wait  # seconds to keep retrying while the server is starting
    retries: int = DEFAULTS.retries  # extra attempts after a lock timeout or deadlock
    allow_changed: bool = False
    out_of_order: bool = False
    dry_run: bool = False
    create_database: bool = False  # --create-databases: a URL's missing database is created first
    # Other services' tracking tables in this database (migrate and migrate-all know the workspace); with
    # them, a missing tracking table whose history another table holds is refused. None: not checked.
    neighbours: tuple[str, ...] | None = None


ProgressFn = Callable[[str, str | None], None]  # (service, version being applied or None when done)


def run_migrations(
    conninfo: str, migrations_dir: str | Path, *, service: str | None = None, **options: object
) -> Result:
    """The runner for Python services: apply `migrations_dir` before serving; raise MigrationFailed on failure."""
    directory = Path(migrations_dir)
    result = apply_service(
        service or directory.parent.name,
        conninfo,
        load_migrations(directory),
        Options(**options),  # type: ignore[arg-type]
    )
    if not result.ok:
        raise MigrationFailed(result)
    return result


def apply_service(
    service: str,
    conninfo: str | None,
    migrations: Sequence[Migration],
    options: Options,
    progress: ProgressFn | None = None,
) -> Result:
    """Bring one database up to date with `migrations` (or, with dry_run, say what would run)."""
    started = time.monotonic()

    def done(outcome: Outcome, **kwargs: object) -> Result:
        elapsed = int((time.monotonic() - started) * 1000)
        return Result(service, outcome, elapsed_ms=elapsed, **kwargs)  # type: ignore[arg-type]

    if conninfo is None:  # dry run against a database that does not exist yet
        return done(Outcome.PLANNED, pending=tuple(m.version for m in plan(migrations, {}).pending))
    try:
        conn, notes = _open(conninfo, options)
    except Stopped as exc:
        if exc.failure.sqlstate == MISSING and options.dry_run:
            would = "would create it" if options.create_database else "--create-databases would create it"
            pending = tuple(m.version for m in plan(migrations, {}).pending)
            return done(Outcome.PLANNED, pending=pending, notes=(f"database missing: {would}",))
        return done(Outcome.FAILED, failure=exc.failure)
    try:
        with conn:
            result = _apply(conn, service, migrations, options, progress, done)
            return replace(result, notes=(*notes, *result.notes)) if notes else result
    except Stopped as exc:
        return done(Outcome.FAILED, failure=exc.failure)
    except psycopg.Error as exc:  # the connection broke mid-run, or the runner's own SQL was refused
        return done(Outcome.FAILED, failure=lost(exc, None) if conn.broken else refused(exc))
    finally:
        if progress:
            progress(service, None)


def _open(conninfo: str, options: Options) -> tuple[psycopg.Connection, tuple[str, ...]]:
    """A connection, after creating the URL's missing database when asked to (and saying so)."""
    try:
        return connect(conninfo, options.connect_wait), ()
    except Stopped as exc:
        if exc.failure.sqlstate != MISSING or not options.create_database or options.dry_run:
            raise
        note = create_missing(conninfo)
        return connect(conninfo, options.connect_wait), (note,)


def _apply(
    conn: psycopg.Connection,
    service: str,
    migrations: Sequence[Migration],
    options: Options,
    progress: ProgressFn | None,
    done: Callable[..., Result],
) -> Result:
    table = options.tracking_table
    settled = _without_lock(conn, migrations, options, done)
    if settled is not None:
        return settled
    with tracking.locked(conn, table, options.lock_wait):  # the plan decided again, under the lock
        tracking.ensure_table(conn, table)
        the_plan = plan(migrations, tracking.applied_rows(conn, table), options.allow_changed, options.out_of_order)
        problem = the_plan.problems[0] if the_plan.problems else missing_extensions(conn, the_plan.pending)
        if problem is not None:
            return done(Outcome.FAILED, failure=problem, already_applied=the_plan.already_applied)
        for migration in the_plan.rechecksum:
            tracking.record_new_checksum(conn, table, migration.version, migration.checksum)
        if the_plan.pending:
            execution.session_defaults(conn)
        applied: list[Applied] = []
        queue = execution.Queue(conn, the_plan.pending, (options.lock_timeout, options.statement_timeout), table)
        starting = functools.partial(progress, service) if progress else None
        while queue.done < len(queue.pending):
            if interrupts.requested():
                return done(
                    Outcome.INTERRUPTED,
                    applied=tuple(applied),
                    already_applied=the_plan.already_applied,
                    pending=tuple(m.version for m in queue.pending[queue.done :]),
                    notes=(*the_plan.notes, f"{interrupts.describe()}: no further migration started"),
                )
            ran, stopped = execution.send_next(queue, options.retries, starting)
            applied.extend(ran)
            if stopped is not None:
                interrupted = interrupts.requested()
                if interrupted:
                    stopped = replace(
                        stopped,
                        message=f"{interrupts.describe()}: {stopped.file} was cancelled and rolled back",
                        hint="nothing of it is applied or recorded; run migrate again to apply it",
                    )
                return done(
                    Outcome.INTERRUPTED if interrupted else Outcome.FAILED,
                    applied=tuple(applied),
                    already_applied=the_plan.already_applied,
                    failure=stopped,
                    notes=the_plan.notes,
                )
        return done(
            Outcome.APPLIED if applied else Outcome.UP_TO_DATE,
            applied=tuple(applied),
            already_applied=the_plan.already_applied,
            notes=the_plan.notes,
        )


def _without_lock(
    conn: psycopg.Connection, migrations: Sequence[Migration], options: Options, done: Callable[..., Result]
) -> Result | None:
    """A dry run's plan, or "up to date", from a first look without the lock; None when there is work.

    An up-to-date database (the common case) needs no lock at all. Work found here is decided
    again under the lock, so each migration still runs exactly once with runners racing.
    """
    table = options.tracking_table
    rows = tracking.first_look(conn, table)
    if rows is None and options.neighbours is not None:  # a first run here, unless the history is elsewhere
        from migratekit.database.history import history_elsewhere

        elsewhere = history_elsewhere(conn, table, migrations, options.neighbours)
        if elsewhere is not None:
            return done(Outcome.FAILED, failure=elsewhere)
    first_look = plan(migrations, rows or {}, options.allow_changed, options.out_of_order)
    if options.dry_run:
        problem = first_look.problems[0] if first_look.problems else missing_extensions(conn, first_look.pending)
        if problem is not None:
            return done(Outcome.FAILED, failure=problem, already_applied=first_look.already_applied)
        pending = tuple(m.version for m in first_look.pending)
        return done(Outcome.PLANNED, pending=pending, already_applied=first_look.already_applied)
    if rows is not None and not (first_look.pending or first_look.problems or first_look.rechecksum):
        return done(Outcome.UP_TO_DATE, already_applied=first_look.already_applied)
    return None


def missing_extensions(conn: psycopg.Connection, pending: Sequence[Migration]) -> Failure | None:
    """The extensions pending migrations create that this server cannot install, before any of them runs.

    Only files that mention an extension are parsed, so a run with none costs nothing.
    """
    wanted: dict[str, tuple[Migration, int]] = {}  # extension -> where it is first created
    for migration in pending:
        if "extension" not in migration.sql.lower() or migration.syntax_error is not None:
            continue
        for statement in migration.statements:
            if statement.kind == "CreateExtensionStmt":
                wanted.setdefault(statement.node.get("extname", ""), (migration, statement.line))
    if not wanted:
        return None
    query = "SELECT name FROM pg_available_extensions WHERE name = ANY(%s)"
    available = {row[0] for row in conn.execute(query, (list(wanted),))}
    missing = [name for name in wanted if name not in available]
    if not missing:
        return None
    migration, line = wanted[missing[0]]
    where = ", ".join(f"{name} ({wanted[name][0].filename}:{wanted[name][1]})" for name in missing)
    return Failure(
        f"this server cannot install the extension(s) that pending migrations create: {where}; nothing was applied",
        file=migration.filename,
        line=line,
        hint="install them on the server (uuid-ossp, pgcrypto, pg_trgm, citext, hstore … come with the "
        "postgresql-contrib package; others, such as postgis or vector, have packages of their own) or point "
        "the URL at a server that has them; SELECT name FROM pg_available_extensions lists this server's",
    )


def run_again(conn: psycopg.Connection, migration: Migration, options: Options) -> Failure | None:
    """Execute an applied migration's SQL once more, recording nothing: the idempotency proof."""
    queue = execution.Queue(conn, (migration,), (options.lock_timeout, options.statement_timeout), None)
    return execution.send_next(queue, options.retries)[1]
