"""How pending migrations reach the server: transactional ones several to a message, the others statement by statement.

Each transactional migration keeps its own transaction (BEGIN, its settings, its file, its tracking
row, COMMIT), but a run of quick ones travels in one simple-query message, so the server goes from
one to the next without waiting for the runner to read a result and send again (by hand, 8 rotated
rounds of 2,000 light files on fresh databases: 0.94 x psql's time, against 1.01 one to a message;
bench/shapes.py measures both beside psql).
Exactly-once and order are unchanged: PostgreSQL runs a message's statements in order and skips all
of them after the first error, in whichever transaction it is, so no migration runs after one that
failed, even at its COMMIT (a deferred constraint).

What a message costs: the server sends its results only when the whole message is done, so the
runner knows which of its migrations committed only then. Messages therefore start at one
migration and double while migrations are quick, back to one after a slow one, and the progress
display names the migrations in flight. And the server parses the whole message before running
any of it: a syntax error in a later file stops the earlier ones too, so they are sent again
without it, and the file is reported when its turn comes.
"""

from __future__ import annotations

import bisect
import itertools
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import psycopg
from psycopg import pq, sql

from migratekit import interrupts
from migratekit.database import protocol, tracking
from migratekit.database.connection import lost
from migratekit.database.message import (
    ELAPSED_COLUMN,
    STATEMENTS_BEFORE,
    Prepared,
    error_position,
    failure,
    prepare,
    timeouts,
)
from migratekit.database.results import Applied, Failure, Stopped
from migratekit.model.migration import Migration, Statement

BATCH = 16  # transactional migrations to a message at most
BATCH_CHARS = 1 << 20  # and no more SQL than this in it, unless one file alone is larger
QUICK = 0.025  # seconds a migration of the last message took on average, below which the next message doubles
JOIN = ";\n"
RETRYABLE = {"55P03": "lock timeout", "40P01": "deadlock"}
# A word without which a migration cannot change its session's settings (SET, set_config, RESET):
# such a migration ends its message, and RESET ALL follows it.
SESSION_CHANGE = re.compile(r"\b(?:set|set_config|reset)\b", re.IGNORECASE)
_ELAPSED = ELAPSED_COLUMN.encode()


@dataclass
class Queue:
    """The pending migrations of one run, in order; each one's message composed once, a batch ahead of its turn."""

    conn: psycopg.Connection
    pending: Sequence[Migration]
    settings: tuple[str, str]  # (lock_timeout, statement_timeout)
    table: str | None
    done: int = 0  # how many have been applied
    size: int = 1  # migrations the next message may hold
    composed: dict[int, Prepared] = field(default_factory=dict)

    def prepared(self, index: int) -> Prepared:
        if index not in self.composed:
            self.composed[index] = prepare(self.conn, self.pending[index], self.settings, self.table)
        return self.composed[index]

    def take(self) -> list[tuple[Migration, Prepared]]:
        """The next message's migrations: one that runs statement by statement goes alone; transactional ones go
        together, up to one that may change the session's settings (the next must start from the defaults)."""
        batch: list[tuple[Migration, Prepared]] = []
        # Before PostgreSQL 13, statement_timeout timed a whole message, not each of its statements.
        size, limit = 0, self.size if self.conn.info.server_version >= 130000 else 1
        for index in range(self.done, min(self.done + limit, len(self.pending))):
            migration, p = self.pending[index], self.prepared(index)
            alone = not p.transactional or migration.section_error is not None
            if batch and (alone or size + len(p.message) > BATCH_CHARS):
                break
            batch.append((migration, p))
            size += len(p.message)
            if alone or SESSION_CHANGE.search(migration.sql):
                break
        return batch

    def compose_after(self, batch: Sequence[object]) -> Callable[[], None]:
        """Client work for while the server runs `batch`: the next batch's messages."""
        start = self.done + len(batch)

        def compose() -> None:  # as many as the next message may hold
            for index in range(start, min(start + min(self.size * 2, BATCH), len(self.pending))):
                self.prepared(index)

        return compose

    def advance(self, count: int, sent: int, seconds: float) -> None:
        """`count` applied of the `sent` in a message that took `seconds`; the next message's size follows."""
        for index in range(self.done, self.done + count):
            self.composed.pop(index, None)
            self.pending[index].forget_text()  # applied: its text is not needed again in this run
        self.done += count
        self.size = min(self.size * 2, BATCH) if seconds < QUICK * sent else 1


def label(batch: Sequence[tuple[Migration, Prepared]]) -> str:
    """The migrations in flight, for the progress display: one version, or the first and the last."""
    first, last = batch[0][0].version, batch[-1][0].version
    return first if len(batch) == 1 else f"{first} … {last} ({len(batch)})"


def send_next(
    queue: Queue, retries: int, starting: Callable[[str], None] | None = None
) -> tuple[tuple[Applied, ...], Failure | None]:
    """Apply the queue's next message: what was applied, in order, and why the next one failed, if one did.

    A lock timeout or deadlock is retried from the migration that met it, after a jittered backoff,
    `retries` times. `starting` is told which migrations each message holds (the progress display).
    A broken connection is a Failure too, after the migrations whose COMMIT came back. After a
    migration that may have changed its session, the session's defaults are restored.
    """
    applied: list[Applied] = []
    attempt = 0
    while True:
        batch = queue.take()
        changes_session = SESSION_CHANGE.search(batch[-1][0].sql) is not None  # such a file ends its message
        if starting is not None:
            starting(label(batch))
        started = time.monotonic()
        ran, stopped = _send(queue, batch)
        queue.advance(len(ran), len(batch), time.monotonic() - started)  # the applied files' text is forgotten
        applied.extend(ran)
        attempt = 0 if ran else attempt
        if stopped is None and changes_session:
            session_defaults(queue.conn, reset=True)
        if stopped is None or stopped.sqlstate not in RETRYABLE:
            return tuple(applied), stopped
        if attempt >= retries or interrupts.requested():
            return tuple(applied), replace(
                stopped,
                hint=f"{RETRYABLE[stopped.sqlstate]} persisted after {attempt + 1} attempts; find the session "
                "holding the lock (pg_locks) or raise lock_timeout in workspace.yaml",
            )
        attempt += 1
        time.sleep(random.uniform(0.05, 0.2) * 2**attempt)


def _send(queue: Queue, batch: Sequence[tuple[Migration, Prepared]]) -> tuple[tuple[Applied, ...], Failure | None]:
    conn, (first, p) = queue.conn, batch[0]
    if first.section_error is not None:
        error = first.section_error
        return (), Failure(str(error), file=first.filename, line=error.line, hint="fix the section markers (MK116)")
    try:
        if not p.transactional:
            return (_statement_by_statement(conn, first, p.statements or (), queue.settings, queue.table),), None
        return _together(conn, batch, queue.table, queue.compose_after(batch))
    except Stopped as exc:
        return (), exc.failure
    except psycopg.Error as exc:  # the results of a message are lost with the connection
        if not conn.broken:
            raise
        return (), _lost(exc, batch)


def _together(
    conn: psycopg.Connection,
    batch: Sequence[tuple[Migration, Prepared]],
    table: str | None,
    meanwhile: Callable[[], None] | None,
) -> tuple[tuple[Applied, ...], Failure | None]:
    """One message of transactional migrations; each COMMIT that comes back is a migration applied."""
    offsets = [0, *itertools.accumulate(len(p.message) + len(JOIN) for _, p in batch)]
    started = time.monotonic()
    sent = protocol.send(conn, JOIN.join(p.message for _, p in batch).encode(), meanwhile)
    committed: list[Applied] = []
    ran, elapsed = 0, int((time.monotonic() - started) * 1000)  # the current migration's results, and its time
    for result in sent.results:
        ran += 1
        if result.nfields and result.fname(0) == _ELAPSED:  # its tracking row, with the server's measure
            elapsed = int(result.get_value(0, 0) or 0)
        elif result.command_status == b"COMMIT":
            migration = batch[len(committed)][0]
            committed.append(Applied(migration.version, migration.checksum, elapsed, True))
            ran = 0
    if sent.error is None:
        return tuple(committed), None
    if conn.broken:
        return tuple(committed), _lost(sent.error, batch[len(committed) :])
    if conn.info.transaction_status != pq.TransactionStatus.IDLE:
        conn.execute("ROLLBACK")  # the message stopped at the error, inside that migration's transaction
    position = error_position(sent.error)
    if not sent.results and position is not None and (later := bisect.bisect_right(offsets, position - 1) - 1) > 0:
        return _together(conn, batch[:later], table, None)  # a later file's syntax error stopped them all
    migration, p = batch[len(committed)]
    where = p.script.locate(sent.error, offsets[len(committed)] + len(p.prefix))
    return tuple(committed), where or p.script.at_statement(sent.error, ran - STATEMENTS_BEFORE)


def _lost(exc: psycopg.Error, unknown: Sequence[tuple[Migration, Prepared]]) -> Failure:
    """The connection broke before the results of `unknown` came back: each committed with its row, or not at all."""
    failure = lost(exc, unknown[0][0].filename)
    if len(unknown) == 1:
        return failure
    return replace(
        failure,
        hint=f"{label(unknown)} were sent together: each is applied with its row or not at all; when the server is "
        "back, migrate again applies whichever are missing, never one twice",
    )


def _statement_by_statement(
    conn: psycopg.Connection,
    migration: Migration,
    statements: tuple[Statement, ...],
    settings: tuple[str, str],
    table: str | None,
) -> Applied:
    started = time.monotonic()
    for setting in timeouts(False, *settings):
        conn.execute(setting)
    try:
        for done, statement in enumerate(statements):
            if interrupts.requested():
                raise Stopped(Failure(interrupts.describe(), file=migration.filename, statements_done=done))
            try:
                sent = protocol.send(conn, statement.text.encode())  # interruptible, unlike a plain execute
                if sent.error is not None:
                    raise sent.error
            except psycopg.Error as exc:
                if conn.broken:
                    raise
                if conn.info.transaction_status != pq.TransactionStatus.IDLE:
                    conn.execute("ROLLBACK")  # the file's own transaction, left open by the failure
                invalid = tuple(
                    r[0]
                    for r in conn.execute(
                        "SELECT indexrelid::regclass::text FROM pg_catalog.pg_index WHERE NOT indisvalid ORDER BY 1"
                    )
                )
                where = failure(exc, migration, statement, error_position(exc))
                raise Stopped(replace(where, statements_done=done, invalid_indexes=invalid)) from None
        elapsed = int((time.monotonic() - started) * 1000)
        if table is not None:  # recorded after its last statement; nothing when re-running
            if migration.repeatable:
                conn.execute(tracking.forget_row(table, migration.version))
            conn.execute(tracking.row(table, migration.version, migration.checksum, sql.Literal(elapsed)))
    finally:
        if not conn.closed and conn.info.transaction_status == pq.TransactionStatus.IDLE:
            conn.execute("RESET lock_timeout")
            conn.execute("RESET statement_timeout")
    return Applied(migration.version, migration.checksum, elapsed, False)


def session_defaults(conn: psycopg.Connection, reset: bool = False) -> None:
    """Each migration starts from the session's defaults, as it would in a runner of its own.

    A migration's `SET search_path` (without LOCAL) outlives its transaction; RESET ALL stops it
    reaching the next migration. A runner killed mid-migration must not leave its backend holding
    the lock and an open transaction until a long statement ends: the server checks for a dead client.
    """
    if reset:
        conn.execute("RESET ALL")
    if conn.info.server_version >= 140000:
        conn.execute("SET client_connection_check_interval = '1s'")
