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

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import psycopg

from migratekit import interrupts
from migratekit.database import tracking
from migratekit.database.connection import MISSING, connect, create_missing, lost, refused
from migratekit.database.plan import plan
from migratekit.database.results import Applied, Failure, MigrationFailed, Outcome, Result, Stopped
from migratekit.model.migration import Migration, SqlSyntaxError, load_migrations
from migratekit.model.settings import RUN_DEFAULTS, SERVICE_DEFAULTS, RunOptions, ServiceSettings

# `execution` (sending migrations) and `other_tools` (another runner's history) are imported where there is work
# or no tracking table: an up-to-date run, mostly start-up, needs neither.

__all__ = ["MigrationFailed", "ProgressFn", "Result", "apply_service", "run_again", "run_migrations"]


@dataclass(frozen=True)
class Applying:
    """A message of migrations is sent: one version, or the first and the last (execution.label)."""

    service: str
    label: str


@dataclass(frozen=True)
class Ran:
    """One migration committed, with the server's measure of its time."""

    service: str
    applied: Applied


@dataclass(frozen=True)
class Said:
    """A line a service's own runner printed (a Kubernetes Job's log)."""

    service: str
    line: str


@dataclass(frozen=True)
class WaveStarted:
    """The first service of a wave (services whose dependencies are all in earlier waves) starts."""

    number: int
    waves: int
    services: tuple[str, ...]


@dataclass(frozen=True)
class Finished:
    """One service is done, whatever its outcome; `done` of `total` selected services are."""

    result: Result
    done: int
    total: int


Event = Applying | Ran | Said | WaveStarted | Finished
ProgressFn = Callable[[Event], None]  # told as a run goes: the live display on a terminal, lines in a CI log


def run_migrations(
    conninfo: str, migrations_dir: str | Path, *, service: str | None = None, **options: object
) -> Result:
    """The runner for Python services: apply `migrations_dir` before serving; raise MigrationFailed on failure.

    `options` are ServiceSettings' and RunOptions' fields by name (tracking_table="app.schema_migrations",
    lock_wait=120): a service's code passes what its deployment sets.
    """
    directory = Path(migrations_dir)
    known_service, known_run = set(SERVICE_DEFAULTS.__dataclass_fields__), set(RUN_DEFAULTS.__dataclass_fields__)
    unknown = set(options) - known_service - known_run
    if unknown:
        raise TypeError(f"run_migrations() got unknown option(s): {', '.join(sorted(unknown))}")
    settings = replace(SERVICE_DEFAULTS, **{k: v for k, v in options.items() if k in known_service})  # type: ignore[arg-type]
    run = replace(RUN_DEFAULTS, **{k: v for k, v in options.items() if k in known_run})  # type: ignore[arg-type]
    result = apply_service(
        service or directory.parent.name, conninfo, load_migrations(directory, settings.format), settings, run
    )
    if not result.ok:
        raise MigrationFailed(result)
    return result


def apply_service(
    service: str,
    conninfo: str | None,
    migrations: Sequence[Migration],
    settings: ServiceSettings = SERVICE_DEFAULTS,
    run: RunOptions = RUN_DEFAULTS,
    progress: ProgressFn | None = None,
    neighbours: tuple[str, ...] | None = None,
    source: Path | None = None,
) -> Result:
    """Bring one database up to date with `migrations` (or, with dry_run, say what would run).

    `neighbours` are the tracking tables of the other services in this database (migrate and migrate-all know
    the workspace); with them, a missing tracking table whose history another table holds is refused. `source`
    is the service's directory: a history its own hand-written runner keeps there (model.runner_table) is
    refused too, until adopted.
    """
    started = time.monotonic()

    def done(outcome: Outcome, **kwargs: object) -> Result:
        elapsed = int((time.monotonic() - started) * 1000)
        return Result(service, outcome, elapsed_ms=elapsed, **kwargs)  # type: ignore[arg-type]

    if conninfo is None:  # dry run against a database that does not exist yet
        return done(Outcome.PLANNED, pending=tuple(m.version for m in plan(migrations, {}).pending))
    try:
        conn, notes = _open(conninfo, settings, run)
    except Stopped as exc:
        if exc.failure.sqlstate == MISSING and run.dry_run:
            would = "would create it" if _creates(settings, run) else "--create-databases would create it"
            pending = tuple(m.version for m in plan(migrations, {}).pending)
            return done(Outcome.PLANNED, pending=pending, notes=(f"database missing: {would}",))
        return done(Outcome.FAILED, failure=exc.failure)
    try:
        with conn:
            result = _apply(conn, service, migrations, (settings, run, neighbours, source), progress, done)
            return replace(result, notes=(*notes, *result.notes)) if notes else result
    except Stopped as exc:
        return done(Outcome.FAILED, failure=exc.failure)
    except psycopg.Error as exc:  # the connection broke mid-run, or the runner's own SQL was refused
        return done(Outcome.FAILED, failure=lost(exc, None) if conn.broken else refused(exc))


def _creates(settings: ServiceSettings, run: RunOptions) -> bool:
    return run.create_databases or settings.create_database


def _open(conninfo: str, settings: ServiceSettings, run: RunOptions) -> tuple[psycopg.Connection, tuple[str, ...]]:
    """A connection, after creating the URL's missing database when asked to (and saying so)."""
    try:
        return connect(conninfo, run.connect_wait), ()
    except Stopped as exc:
        if exc.failure.sqlstate != MISSING or not _creates(settings, run) or run.dry_run:
            raise
        note = create_missing(conninfo)
        return connect(conninfo, run.connect_wait), (note,)


# a service's settings, the run's, its neighbours, its directory
_Job = tuple[ServiceSettings, RunOptions, "tuple[str, ...] | None", "Path | None"]


def _apply(
    conn: psycopg.Connection,
    service: str,
    migrations: Sequence[Migration],
    job: _Job,
    progress: ProgressFn | None,
    done: Callable[..., Result],
) -> Result:
    settings, run, _, _ = job
    table = settings.tracking_table
    settled = _without_lock(conn, migrations, job, done)
    if settled is not None:
        return settled
    from migratekit.database import execution

    with tracking.locked(conn, table, run.lock_wait):  # the plan decided again, under the lock
        tracking.ensure_table(conn, table)
        the_plan = plan(migrations, tracking.applied_rows(conn, table), run.allow_changed, run.out_of_order)
        problem = the_plan.problems[0] if the_plan.problems else missing_extensions(conn, the_plan.pending)
        if problem is not None:
            return done(Outcome.FAILED, failure=problem, already_applied=the_plan.already_applied)
        for migration in the_plan.rechecksum:
            tracking.record_new_checksum(conn, table, migration.version, migration.checksum)
        if the_plan.pending:
            execution.session_defaults(conn)
        applied: list[Applied] = []
        queue = execution.Queue(conn, the_plan.pending, (settings.lock_timeout, settings.statement_timeout), table)
        starting = (lambda label: progress(Applying(service, label))) if progress else None
        while queue.done < len(queue.pending):
            if interrupts.requested():
                return done(
                    Outcome.INTERRUPTED,
                    applied=tuple(applied),
                    already_applied=the_plan.already_applied,
                    pending=tuple(m.version for m in queue.pending[queue.done :]),
                    notes=(*the_plan.notes, f"{interrupts.describe()}: no further migration started"),
                )
            ran, stopped = execution.send_next(queue, run.retries, starting)
            applied.extend(ran)
            for one in ran if progress else ():
                progress(Ran(service, one))  # type: ignore[misc]
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
                    pending=tuple(m.version for m in queue.pending[queue.done :]),  # the failed one first
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
    conn: psycopg.Connection, migrations: Sequence[Migration], job: _Job, done: Callable[..., Result]
) -> Result | None:
    """A dry run's plan, or "up to date", from a first look without the lock; None when there is work.

    An up-to-date database (the common case) needs no lock at all. Work found here is decided
    again under the lock, so each migration still runs exactly once with runners racing.
    """
    settings, run, neighbours, source = job
    table = settings.tracking_table
    try:
        rows = tracking.first_look(conn, table)
    except Stopped:  # a table of another shape: the service's own runner's, said so, or as tracking says
        from migratekit.database.other_tools import own_runner_in_the_way
        from migratekit.model.runner_table import own_history

        clash = own_runner_in_the_way(conn, table, own_history(source) if source else None)
        if clash is not None:
            return done(Outcome.FAILED, failure=clash)
        raise
    elsewhere = _history_elsewhere(conn, table, migrations, neighbours, source) if rows is None else None
    if elsewhere is not None:
        return done(Outcome.FAILED, failure=elsewhere)
    first_look = plan(migrations, rows or {}, run.allow_changed, run.out_of_order)
    if run.dry_run:
        problem = first_look.problems[0] if first_look.problems else missing_extensions(conn, first_look.pending)
        if problem is not None:
            return done(Outcome.FAILED, failure=problem, already_applied=first_look.already_applied)
        pending = tuple(m.version for m in first_look.pending)
        return done(Outcome.PLANNED, pending=pending, already_applied=first_look.already_applied)
    if rows is not None and not (first_look.pending or first_look.problems or first_look.rechecksum):
        return done(Outcome.UP_TO_DATE, already_applied=first_look.already_applied)
    return None


def _history_elsewhere(
    conn: psycopg.Connection,
    table: str,
    migrations: Sequence[Migration],
    neighbours: tuple[str, ...] | None,
    source: Path | None,
) -> Failure | None:
    """A first run here (no tracking table), refused when this service's history is kept elsewhere: by its own
    hand-written runner (in `source`), or in another table of the seed's shape that is not a neighbour's."""
    from migratekit.database.other_tools import history_elsewhere, own_runner_elsewhere
    from migratekit.model.runner_table import own_history

    found = own_runner_elsewhere(conn, table, migrations, own_history(source)) if source is not None else None
    if found is None and neighbours is not None:
        found = history_elsewhere(conn, table, migrations, neighbours)
    return found


def missing_extensions(conn: psycopg.Connection, pending: Sequence[Migration]) -> Failure | None:
    """The extensions pending migrations create that this server cannot install, before any of them runs.

    Only files that mention an extension are read, so a run with none costs nothing; a file that does not parse
    is left for its turn, when PostgreSQL reports it.
    """
    wanted: dict[str, tuple[Migration, int]] = {}  # extension -> where it is first created
    for migration in pending:
        if "extension" not in migration.sql.lower():
            continue
        try:
            created = migration.created_extensions()
        except SqlSyntaxError:
            continue
        for name, line in created:
            wanted.setdefault(name, (migration, line))
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


def run_again(
    conn: psycopg.Connection, migration: Migration, settings: ServiceSettings, run: RunOptions = RUN_DEFAULTS
) -> Failure | None:
    """Execute an applied migration's SQL once more, recording nothing: the idempotency proof."""
    from migratekit.database import execution

    queue = execution.Queue(conn, (migration,), (settings.lock_timeout, settings.statement_timeout), None)
    return execution.send_next(queue, run.retries)[1]
