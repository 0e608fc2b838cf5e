"""Apply one service's migrations to one database, the seed's way done properly.

One connection holds a session advisory lock keyed by database and tracking table (the
example TypeScript runners take the same key), so replicas starting together take turns and
each migration runs exactly once. Each migration commits together with its tracking row;
files that cannot run in a transaction run statement by statement and are recorded last.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from migratekit.databases import redact
from migratekit.migration import BOM, SEED_COLUMNS, Migration, SqlSyntaxError, Statement, body, load_migrations
from migratekit.settings import DEFAULTS

RETRYABLE = {"55P03": "lock timeout", "40P01": "deadlock"}
LOCK_KEY = "hashtextextended('migratekit:' || current_database() || ':' || %s, 0)"


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


@dataclass(frozen=True)
class Applied:
    version: str
    checksum: str
    execution_time_ms: int
    transactional: bool


@dataclass(frozen=True)
class Failure:
    """Why a service stopped: the file and line where there is one, PostgreSQL's message, what to do."""

    message: str
    file: str | None = None
    line: int | None = None
    sqlstate: str | None = None
    hint: str = ""
    statements_done: int | None = None  # non-transactional files: how many statements had run
    invalid_indexes: tuple[str, ...] = ()

    def describe(self) -> str:
        where = f"{self.file}:{self.line}: " if self.file and self.line else f"{self.file}: " if self.file else ""
        state = f" (SQLSTATE {self.sqlstate})" if self.sqlstate else ""
        parts = [f"{where}{self.message}{state}"]
        if self.statements_done is not None:
            parts.append(
                f"{self.statements_done} statement(s) of this file ran and stay applied; the file is not "
                "recorded, so the next run repeats it (its idempotent form makes that safe)"
            )
        if self.invalid_indexes:
            parts.append(
                f"INVALID index(es) left by a failed CONCURRENTLY build: {', '.join(self.invalid_indexes)}; "
                "drop them (DROP INDEX CONCURRENTLY IF EXISTS) before re-running"
            )
        if self.hint:
            parts.append(self.hint)
        return "; ".join(parts)


class MigrationFailed(Exception):
    """Raised by `run_migrations` so a service's startup can exit non-zero."""

    def __init__(self, result: Result):
        super().__init__(result.failure.describe() if result.failure else result.outcome)
        self.result = result


@dataclass(frozen=True)
class Result:
    """What happened to one service's database."""

    service: str
    outcome: str  # "applied", "up to date", "planned", "failed", "skipped"
    applied: tuple[Applied, ...] = ()
    already_applied: int = 0
    pending: tuple[str, ...] = ()
    elapsed_ms: int = 0
    failure: Failure | None = None
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.outcome in ("applied", "up to date", "planned")


@dataclass(frozen=True)
class Plan:
    """The pending files of one database, and what stops them (pure comparison of files and rows)."""

    pending: tuple[Migration, ...]
    already_applied: int
    problems: tuple[Failure, ...] = ()
    rechecksum: tuple[Migration, ...] = ()  # edited files whose new checksum --allow-changed records
    notes: tuple[str, ...] = field(default=())


def plan(migrations: Sequence[Migration], applied: Mapping[str, str], options: Options) -> Plan:
    """Compare files with tracking rows (version -> checksum)."""
    files = {m.version: m for m in migrations}
    problems: list[Failure] = []
    rechecksum: list[Migration] = []
    notes: list[str] = []
    for version, checksum in sorted(applied.items()):
        migration = files.get(version)
        if migration is None:
            problems.append(
                Failure(
                    "applied, but the file is gone",
                    file=f"{version}.sql",
                    hint="restore the file from version control; never delete an applied migration",
                )
            )
        elif checksum != migration.checksum and checksum not in migration.checksums:  # variants only if needed
            if options.allow_changed:
                rechecksum.append(migration)
                notes.append(
                    f"{migration.filename}: recorded new checksum {migration.checksum} "
                    f"(was {checksum}) after a deliberate edit (--allow-changed)"
                )
            else:
                problems.append(
                    Failure(
                        f"changed after it was applied (applied checksum {checksum}, file now {migration.checksum})",
                        file=migration.filename,
                        hint="restore the applied text and put the change in a new migration; or, after a "
                        "deliberate edit, re-run with --allow-changed to record the new checksum",
                    )
                )
    pending = tuple(m for m in migrations if m.version not in applied)
    newest = max(applied, default="")
    for migration in pending:
        if migration.version < newest and not options.out_of_order:
            problems.append(
                Failure(
                    f"pending, but sorts before {newest}, which is already applied",
                    file=migration.filename,
                    hint="renumber it after the newest applied migration, or re-run with --out-of-order",
                )
            )
    return Plan(pending, len(applied), tuple(problems), tuple(rechecksum), tuple(notes))


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

    def done(outcome: str, **kwargs: object) -> Result:
        elapsed = int((time.monotonic() - started) * 1000)
        return Result(service, outcome, elapsed_ms=elapsed, **kwargs)  # type: ignore[arg-type]

    if conninfo is None:  # dry run against a database that does not exist yet
        pending = plan(migrations, {}, options)
        return done("planned", pending=tuple(m.version for m in pending.pending))
    try:
        conn = _connect(conninfo, options.connect_wait)
    except Failed as exc:
        return done("failed", failure=exc.failure)
    try:
        with conn:
            return _apply(conn, service, migrations, options, progress, done)
    except Failed as exc:
        return done("failed", failure=exc.failure)
    except psycopg.Error as exc:  # the connection broke mid-run (server restart, terminated backend)
        return done("failed", failure=_lost(exc, None))


def _lost(exc: psycopg.Error, filename: str | None) -> Failure:
    return Failure(
        f"lost the connection: {redact(str(exc)).strip()}",
        file=filename,
        hint="re-run when the server is back; nothing half-applied was recorded",
    )


class Failed(Exception):
    def __init__(self, failure: Failure):
        super().__init__(failure.message)
        self.failure = failure


def _connect(conninfo: str, wait: float) -> psycopg.Connection:
    deadline = time.monotonic() + wait
    delay = 0.1
    while True:
        try:
            return psycopg.connect(conninfo, autocommit=True, connect_timeout=10, application_name="migratekit")
        except psycopg.OperationalError as exc:
            message = redact(str(exc)).strip()
            transient = any(
                s in message
                for s in (
                    "Connection refused",
                    "starting up",
                    "shutting down",
                    "No such file or directory",
                    "timeout expired",
                )
            )
            remaining = deadline - time.monotonic()
            if transient and remaining > 0:
                time.sleep(min(delay, remaining))
                delay = min(delay * 2, 2.0)
                continue
            waited = f" (retried for {wait:g}s)" if transient and wait else ""
            hint = (
                "check the host and port, or raise --wait while the server starts"
                if transient
                else "check the user, password and database name in the URL"
            )
            raise Failed(Failure(f"cannot connect to {redact(conninfo)}{waited}: {message}", hint=hint)) from None


def _apply(
    conn: psycopg.Connection,
    service: str,
    migrations: Sequence[Migration],
    options: Options,
    progress: ProgressFn | None,
    done: Callable[..., Result],
) -> Result:
    table = table_identifier(options.tracking_table)
    if options.dry_run:
        rows = applied_rows(conn, table) if tracking_table_state(conn, options) == "ok" else {}
        the_plan = plan(migrations, rows, options)
        if the_plan.problems:
            return done("failed", failure=the_plan.problems[0], already_applied=the_plan.already_applied)
        return done(
            "planned", pending=tuple(m.version for m in the_plan.pending), already_applied=the_plan.already_applied
        )

    key = conn.execute(sql.SQL("SELECT " + LOCK_KEY), (options.tracking_table,)).fetchone()[0]  # type: ignore[index]
    _lock(conn, key, options.lock_wait, options.tracking_table)
    try:
        _ensure_table(conn, options, table)
        rows = applied_rows(conn, table)
        the_plan = plan(migrations, rows, options)
        if the_plan.problems:
            return done("failed", failure=the_plan.problems[0], already_applied=the_plan.already_applied)
        for migration in the_plan.rechecksum:
            conn.execute(
                sql.SQL("UPDATE {} SET checksum = %s WHERE version = %s").format(table),
                (migration.checksum, migration.version),
            )
        if the_plan.pending and conn.info.server_version >= 140000:
            # A runner killed mid-migration must not leave its backend holding the lock and an
            # open transaction until a long statement ends: the server checks for a dead client.
            conn.execute("SET client_connection_check_interval = '1s'")
        applied: list[Applied] = []
        for migration in the_plan.pending:
            if progress:
                progress(service, migration.version)
            try:
                applied.append(_apply_one(conn, migration, options, table))
            except (Failed, psycopg.Error) as exc:
                if isinstance(exc, psycopg.Error) and not conn.broken:
                    raise
                failure = exc.failure if isinstance(exc, Failed) else _lost(exc, migration.filename)
                return done(
                    "failed",
                    applied=tuple(applied),
                    already_applied=the_plan.already_applied,
                    failure=failure,
                    notes=the_plan.notes,
                )
        return done(
            "applied" if applied else "up to date",
            applied=tuple(applied),
            already_applied=the_plan.already_applied,
            notes=the_plan.notes,
        )
    finally:
        if not conn.closed and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
        if progress:
            progress(service, None)


def table_identifier(tracking_table: str) -> sql.Composable:
    return sql.Identifier(*tracking_table.split("."))


def tracking_table_state(conn: psycopg.Connection, options: Options) -> str:
    """ "absent", "ok", or raise Failed for a table of another tool's shape."""
    row = conn.execute(
        "SELECT array_agg(attname::text) FROM pg_attribute "
        "WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped",
        (options.tracking_table,),
    ).fetchone()
    if row is None or row[0] is None:
        return "absent"
    columns = set(row[0])
    if SEED_COLUMNS <= columns:
        return "ok"
    if columns == {"version", "dirty"}:
        tool = "golang-migrate's (version, dirty)"
    elif columns == {"version"}:
        tool = "dbmate's (version only)"
    else:
        tool = f"an unknown tool's ({', '.join(sorted(columns))})"
    raise Failed(
        Failure(
            f"{options.tracking_table} exists with {tool} shape, not the seed's "
            "(version, applied_at, checksum, execution_time_ms); migratekit will not write into it",
            hint="set tracking_table for this service in workspace.yaml to a new table, or migrate the other "
            "tool's history into the seed's shape first",
        )
    )


def _ensure_table(conn: psycopg.Connection, options: Options, table: sql.Composable) -> None:
    if tracking_table_state(conn, options) == "ok":
        return
    parts = options.tracking_table.split(".")
    with conn.transaction():  # all or nothing: a kill here must not leave a table without its index
        if len(parts) == 2:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(parts[0])))
        conn.execute(
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (version TEXT PRIMARY KEY, "
                "applied_at TIMESTAMPTZ NOT NULL DEFAULT NOW(), checksum TEXT NOT NULL, "
                "execution_time_ms INTEGER NOT NULL)"
            ).format(table)
        )
        conn.execute(
            sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {}(applied_at DESC)").format(
                sql.Identifier(f"idx_{parts[-1]}_applied_at"), table
            )
        )


def applied_rows(conn: psycopg.Connection, table: sql.Composable) -> dict[str, str]:
    """version -> checksum of every tracking row."""
    return {v: c for v, c in conn.execute(sql.SQL("SELECT version, checksum FROM {}").format(table))}


def _lock(conn: psycopg.Connection, key: int, wait: float, tracking_table: str) -> None:
    deadline = time.monotonic() + wait
    delay = 0.05
    while not conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]:  # type: ignore[index]
        if time.monotonic() + delay > deadline:
            holder = conn.execute(
                "SELECT l.pid, a.application_name, a.client_addr::text, a.backend_start::text "
                "FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
                "AND l.classid = %s::bigint::oid AND l.objid = %s::bigint::oid",
                ((key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF),
            ).fetchone()
            who = (
                (
                    f"backend pid {holder[0]} ({holder[1] or 'no application_name'}, "
                    f"from {holder[2] or 'local socket'}, connected {holder[3]})"
                )
                if holder
                else "another session"
            )
            raise Failed(
                Failure(
                    f"another runner holds the migration lock for {tracking_table}: {who}; waited {wait:g}s",
                    hint="wait for it to finish, or raise the lock wait; pg_terminate_backend(pid) ends a stuck one",
                )
            )
        time.sleep(delay)
        delay = min(delay * 2, 0.5)


def run_again(conn: psycopg.Connection, migration: Migration, options: Options) -> Failure | None:
    """Execute an applied migration's SQL once more, recording nothing: the idempotency proof."""
    try:
        _apply_one(conn, migration, options, None)
    except Failed as exc:
        return exc.failure
    return None


def _row(table: sql.Composable, migration: Migration, elapsed: sql.Composable) -> sql.Composed:
    """The INSERT of a migration's tracking row, in the seed's columns."""
    return sql.SQL("INSERT INTO {} (version, checksum, execution_time_ms) VALUES ({}, {}, {})").format(
        table, sql.Literal(migration.version), sql.Literal(migration.checksum), elapsed
    )


def _record(conn: psycopg.Connection, table: sql.Composable | None, migration: Migration, elapsed: int) -> None:
    """The tracking row of a file run statement by statement, after its last one; nothing when re-running."""
    if table is not None:
        conn.execute(_row(table, migration, sql.Literal(elapsed)))


def _apply_one(
    conn: psycopg.Connection, migration: Migration, options: Options, table: sql.Composable | None
) -> Applied:
    statements: tuple[Statement, ...] | None = None  # None: the file's text is sent as it is
    transactional = True
    if not migration.runs_as_written:
        try:
            statements = migration.statements
            transactional, _why = migration.transaction_mode()
        except SqlSyntaxError:
            pass  # let PostgreSQL report it, with its own position
    attempt = 0
    while True:
        try:
            if transactional:
                return _in_transaction(conn, migration, statements, options, table)
            return _statement_by_statement(conn, migration, statements or (), options, table)
        except Failed as exc:
            if exc.failure.sqlstate in RETRYABLE and attempt < options.retries:
                attempt += 1
                time.sleep(random.uniform(0.05, 0.2) * 2**attempt)  # jittered backoff
                continue
            if exc.failure.sqlstate in RETRYABLE:
                raise Failed(
                    replace(
                        exc.failure,
                        hint=f"{RETRYABLE[exc.failure.sqlstate]} persisted after {attempt + 1} attempts; "
                        "find the session holding the lock (pg_locks) or raise lock_timeout in workspace.yaml",
                    )
                ) from None
            raise


def _settings(local: bool, options: Options) -> list[sql.Composed]:
    scope = sql.SQL("SET LOCAL" if local else "SET")
    return [
        sql.SQL("{} lock_timeout = {}").format(scope, sql.Literal(options.lock_timeout)),
        sql.SQL("{} statement_timeout = {}").format(scope, sql.Literal(options.statement_timeout)),
    ]


# Inside a migration's transaction, the server's own measure of it: from BEGIN to the row.
SERVER_ELAPSED = sql.SQL("(extract(epoch FROM clock_timestamp() - now()) * 1000)::int")
ELAPSED_COLUMN = "migratekit_execution_time_ms"


def _in_transaction(
    conn: psycopg.Connection,
    migration: Migration,
    statements: tuple[Statement, ...] | None,
    options: Options,
    table: sql.Composable | None,
) -> Applied:
    """BEGIN, the settings, the migration, its tracking row and COMMIT, sent as one message.

    One round trip per migration rather than one per statement: on a large run the server and
    the client do measurably less (see bench/migrate.py). The row's execution_time_ms is taken
    by the server, from the transaction's start to the row. When the message fails, the
    failing statement is found from the error's position or, for runtime errors that have none,
    by replaying the statements one by one in a transaction that is rolled back.
    """
    started = time.monotonic()
    if statements is None:
        script = migration.text.removeprefix(BOM)
    else:
        script = ";\n".join(p.text for p in body(statements))
    prefix = "BEGIN;\n" + "".join(f"{s.as_string(conn)};\n" for s in _settings(True, options))
    record = ""
    if table is not None:
        returning = sql.SQL("{} RETURNING execution_time_ms AS {};\n")
        row = _row(table, migration, SERVER_ELAPSED)
        record = returning.format(row, sql.Identifier(ELAPSED_COLUMN)).as_string(conn)
    try:
        cursor = conn.execute(f"{prefix}{script}\n;\n{record}COMMIT".encode())
        elapsed = _recorded_elapsed(cursor) if table is not None else int((time.monotonic() - started) * 1000)
    except psycopg.Error as exc:
        if conn.broken:
            raise  # the connection is gone, not the migration wrong: reported as such by apply_service
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.execute("ROLLBACK")  # the message stopped at the error, inside its transaction
        raise Failed(_locate(conn, exc, migration, statements, len(prefix), len(script), options)) from None
    return Applied(migration.version, migration.checksum, elapsed, True)


def _recorded_elapsed(cursor: psycopg.Cursor[Any]) -> int:
    """The execution_time_ms the tracking row got: the INSERT's result, the message's last with rows."""
    row = [c.fetchone() for c in cursor.results() if c.description and c.description[0].name == ELAPSED_COLUMN][-1]
    assert row is not None  # the INSERT returns its one row
    return int(row[0])


def _locate(
    conn: psycopg.Connection,
    exc: psycopg.Error,
    migration: Migration,
    statements: tuple[Statement, ...] | None,
    skip: int,
    length: int,
    options: Options,
) -> Failure:
    """Which statement of a failed message failed: by the error's position, else by a rolled-back replay.

    The migration's script starts `skip` characters into the message and is `length` long; an
    error outside it is in the runner's own settings or row and has no line in the file.
    """
    position = int(exc.diag.statement_position) - skip if exc.diag.statement_position else None
    if position is not None:
        if not 0 < position <= length:  # in the runner's settings or row, not in the file
            return replace(_failure(exc, migration, None), line=None)
        if statements is None:  # the file's text as it is, less a byte-order mark
            return _failure(exc, migration, None, offset=skip - (len(migration.text) - length))
        start = 0  # where each statement starts in the script
        for part in body(statements):
            if position - 1 < start + len(part.text) + 2:
                return _failure(exc, migration, part, offset=skip + start)
            start += len(part.text) + 2  # the ";\n" between statements
    if exc.diag.sqlstate in RETRYABLE or conn.broken:
        return _failure(exc, migration, None)  # retried as a whole; a replay would only wait again
    try:
        parts = body(statements if statements is not None else migration.statements)
    except SqlSyntaxError:
        return _failure(exc, migration, None)

    found: tuple[psycopg.Error, Statement] | None = None
    try:
        with conn.transaction(force_rollback=True):  # the replay only looks: it always rolls back
            for setting in _settings(True, options):
                conn.execute(setting)
            for part in parts:
                try:
                    conn.execute(part.text.encode())
                except psycopg.Error as error:
                    found = (error, part)
                    break
    except psycopg.Error:
        pass
    if found is not None:
        return _failure(found[0], migration, found[1])
    return _failure(exc, migration, None)  # the failure did not repeat: report it without a line


def _statement_by_statement(
    conn: psycopg.Connection,
    migration: Migration,
    statements: tuple[Statement, ...],
    options: Options,
    table: sql.Composable | None,
) -> Applied:
    started = time.monotonic()
    for setting in _settings(False, options):
        conn.execute(setting)
    try:
        for done, statement in enumerate(statements):
            try:
                conn.execute(statement.text.encode())
            except psycopg.Error as exc:
                if conn.broken:
                    raise
                if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                    conn.execute("ROLLBACK")  # the file's own transaction, left open by the failure
                invalid = tuple(
                    r[0]
                    for r in conn.execute(
                        "SELECT indexrelid::regclass::text FROM pg_index WHERE NOT indisvalid ORDER BY 1"
                    )
                )
                raise Failed(
                    replace(_failure(exc, migration, statement), statements_done=done, invalid_indexes=invalid)
                ) from None
        elapsed = int((time.monotonic() - started) * 1000)
        _record(conn, table, migration, elapsed)
    finally:
        if not conn.closed and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            conn.execute("RESET lock_timeout")
            conn.execute("RESET statement_timeout")
    return Applied(migration.version, migration.checksum, elapsed, False)


def _failure(exc: psycopg.Error, migration: Migration, statement: Statement | None, offset: int = 0) -> Failure:
    """PostgreSQL's message, placed at the file's line: the statement's, moved by the error's position.

    `offset` is where the statement starts in the query that was sent (a script of several).
    """
    diag = exc.diag
    line = statement.line if statement else None
    position = int(diag.statement_position) - offset if diag.statement_position else None
    text = statement.text if statement else migration.text
    if position and position > 0:
        line = (line or 1) + text[: position - 1].count("\n")
    message = diag.message_primary or str(exc).strip()
    if diag.message_detail:
        message += f" ({diag.message_detail})"
    hint = diag.message_hint or ""
    if "extension" in message and ("control file" in message or diag.sqlstate == "58P01"):
        hint = (
            "this server's binaries lack the extension: the pgserver wheel ships no contrib modules; "
            "install the machine's PostgreSQL server (postgresql-contrib) or point the URL at a server that has it"
        )
    return Failure(redact(message), file=migration.filename, line=line, sqlstate=diag.sqlstate, hint=hint)
