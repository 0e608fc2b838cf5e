"""`invoke rollback`: run down parts, newest first, each in one transaction with the deletion of its row.

Every migration in range must have a down part, or nothing changes: the seed's migrations only go
forward (write a new migration that reverses one), and so does any file of another format that
lacks one; a file edited since it was applied (its checksum is not the row's) is refused too, unless the
user says the edit is deliberate. Rollback takes the same advisory lock as migrate.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import replace

import psycopg
from psycopg import sql

from migratekit import interrupts
from migratekit.database import protocol, tracking
from migratekit.database.connection import connect, lost, refused
from migratekit.database.message import STATEMENTS_BEFORE, Script, failure, transaction_prefix
from migratekit.database.results import Applied, Failure, Outcome, Result, Stopped
from migratekit.errors import ConfigError
from migratekit.model.formats import Format, Version, version_key
from migratekit.model.migration import NOT_UTF8, TO_UTF8, Migration
from migratekit.model.settings import RUN_DEFAULTS, SERVICE_DEFAULTS, RunOptions, ServiceSettings


def rollback_targets(
    migrations: Sequence[Migration],
    applied: Mapping[str, str],
    steps: int | None,
    to: str | None,
    allow_changed: bool = False,
) -> list[Migration]:
    """The applied migrations (version -> checksum) to undo, newest first; a ConfigError, naming the file, when one
    cannot be: it is gone, it has no down part, or (unless `allow_changed`) it was edited since it was applied."""
    # a Flyway repeatable migration has no version to go back from: it is run again when it changes, never undone
    newest_first = sorted((v for v in applied if not Version.parse(v).repeatable), key=version_key, reverse=True)
    if to is not None:
        if to not in applied:
            raise ConfigError(f"--to {to}: not an applied version; applied: {', '.join(newest_first) or 'none'}")
        chosen = [v for v in newest_first if version_key(v) > version_key(to)]
    else:
        chosen = newest_first[: steps if steps is not None else 1]
    files = {m.version: m for m in migrations}
    targets = []
    for version in chosen:
        migration = files.get(version)
        if migration is None:
            raise ConfigError(f"{version} is applied but its file is gone: restore it before rolling back")
        if migration.down_sql is None:
            if migration.format in (Format.SEED, Format.PRISMA):
                whose = "the seed's" if migration.format is Format.SEED else "Prisma's"
                raise ConfigError(
                    f"{migration.filename} has no down part: {whose} migrations only go forward; "
                    "write a new migration that reverses it (invoke new-migration)"
                )
            if migration.format is Format.DRIZZLE:
                raise ConfigError(
                    f"{migration.filename} has no down part: drizzle's migrations only go forward (drizzle-kit "
                    "writes none); reverse it with a new migration (drizzle-kit generate)"
                )
            if migration.format is Format.ATLAS:
                raise ConfigError(
                    f"{migration.filename} has no down part: Atlas's files only go forward (atlas migrate down plans "
                    "its own from a dev database); write a new migration that reverses it (invoke new-migration)"
                )
            raise ConfigError(f"{migration.filename} has no down part (MK114): write one, or roll forward instead")
        encoding = migration.down_not_utf8
        if encoding is not None:
            raise ConfigError(
                f"{migration.filename}'s down part ({migration.down_name or 'its file'}, line {encoding[0]}): "
                f"{NOT_UTF8.format(byte=encoding[1])}; {TO_UTF8}, then roll back: nothing was rolled back"
            )
        checksum = applied[version]
        if not allow_changed and checksum != migration.checksum and checksum not in migration.checksums:
            raise ConfigError(
                f"{migration.filename} changed after it was applied (applied checksum {checksum}, file now "
                f"{migration.checksum}): its down part may not undo what ran; restore the applied text, or, when "
                "the edit is deliberate, re-run with --allow-changed to roll back with the file as it is now"
            )
        targets.append(migration)
    return targets


def rollback_service(
    service: str,
    conninfo: str,
    migrations: Sequence[Migration],
    settings: ServiceSettings = SERVICE_DEFAULTS,
    run: RunOptions = RUN_DEFAULTS,
    steps: int | None = None,
    to: str | None = None,
) -> Result:
    """Undo `steps` migrations (default 1) or those after `to`; with run.dry_run, only say which."""
    started = time.monotonic()

    def done(outcome: Outcome, **kwargs: object) -> Result:
        return Result(service, outcome, elapsed_ms=int((time.monotonic() - started) * 1000), **kwargs)  # type: ignore[arg-type]

    table = settings.tracking_table
    try:
        conn = connect(conninfo, run.connect_wait)
    except Stopped as exc:
        return done(Outcome.FAILED, failure=exc.failure)
    with conn:
        if run.dry_run:
            planned = tracking.recorded(conn, table) or {}
            targets = rollback_targets(migrations, planned, steps, to, run.allow_changed)
            return done(Outcome.PLANNED, pending=tuple(m.version for m in targets), already_applied=len(planned))
        rows: dict[str, str] = {}
        undone: list[Applied] = []
        try:
            with tracking.locked(conn, table, run.lock_wait):
                # Read once the lock is held: a migrate it waited for may have applied a newer one meanwhile.
                rows = tracking.recorded(conn, table) or {}
                targets = rollback_targets(migrations, rows, steps, to, run.allow_changed)  # refuses, changing nothing
                for migration in targets:
                    if interrupts.requested():  # between two down parts: the next one never starts
                        left = tuple(m.version for m in targets[len(undone) :])
                        note = f"{interrupts.describe()}: no further down part started"
                        return done(Outcome.INTERRUPTED, applied=tuple(undone), pending=left, notes=(note,))
                    undone.append(_undo(conn, migration, settings))
        except Stopped as exc:
            if interrupts.requested() and exc.failure.file is None:  # while waiting for the lock: nothing ran
                stopped = replace(exc.failure, hint="nothing was rolled back; run rollback again")
                return done(Outcome.INTERRUPTED, failure=stopped, already_applied=len(rows))
            if interrupts.requested():  # the signal cancelled the running down part: it rolled back whole
                stopped = replace(
                    exc.failure,
                    message=f"{interrupts.describe()}: {exc.failure.file} was cancelled and rolled back",
                    hint="that migration is still applied, with its row; run rollback again to undo it",
                )
                return done(Outcome.INTERRUPTED, applied=tuple(undone), failure=stopped, already_applied=len(rows))
            return done(Outcome.FAILED, applied=tuple(undone), failure=exc.failure, already_applied=len(rows))
        except psycopg.Error as exc:
            return done(Outcome.FAILED, applied=tuple(undone), failure=lost(exc, None) if conn.broken else refused(exc))
    return done(Outcome.ROLLED_BACK, applied=tuple(undone), already_applied=len(rows) - len(undone))


def _undo(conn: psycopg.Connection, migration: Migration, settings: ServiceSettings) -> Applied:
    """The down part and the deletion of the row, in one transaction (statement by statement when it must)."""
    down = migration.down_part()
    assert down is not None  # rollback_targets checked
    started = time.monotonic()
    forget = (
        sql.SQL("DELETE FROM {} WHERE version = {}")
        .format(tracking.identifier(settings.tracking_table), sql.Literal(migration.version))
        .as_string(conn)
    )
    statements = down.statements if not down.runs_as_written else None
    # The file's own option (dbmate transaction:false, goose NO TRANSACTION) covers both of its parts.
    transactional = migration.format_no_transaction is None and (down.runs_as_written or down.transaction_mode()[0])
    if transactional:
        script = Script.build(down, statements)
        prefix = transaction_prefix(settings.lock_timeout, settings.statement_timeout)
        sent = protocol.send(conn, f"{prefix}{script.text}\n;\n{forget};\nCOMMIT".encode())
        if sent.error is not None:
            if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                conn.execute("ROLLBACK")
            where = script.locate(sent.error, len(prefix)) or script.at_statement(
                sent.error, sent.succeeded - STATEMENTS_BEFORE
            )
            raise Stopped(_in_file(where, migration))
    else:
        for statement in down.statements:
            sent = protocol.send(conn, statement.text.encode())
            if sent.error is not None:
                raise Stopped(_in_file(failure(sent.error, down, statement), migration))
        conn.execute(forget)
    return Applied(migration.version, migration.checksum, int((time.monotonic() - started) * 1000), transactional)


def _in_file(where: Failure, migration: Migration) -> Failure:
    """A failure in a down part, placed at its line in the file that holds it."""
    down = migration.down_part()
    name = down.filename if down is not None else migration.filename
    line = where.line + migration.down_line - 1 if where.line else None
    return replace(where, file=name, line=line, message=f"rolling back: {where.message}")
