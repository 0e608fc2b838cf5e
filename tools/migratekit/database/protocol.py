"""Send one simple-query message and read every result it produces, interruptibly.

psycopg raises on the first error of a multi-statement message and drops the results before it;
reading them here (through psycopg's documented `pgconn`, the libpq wrapper) tells how many
statements succeeded, so a failed migration is placed at its statement without running it again.
The wait is a `select` with a short timeout: when a stop is requested (Ctrl-C, SIGTERM), the
statement is cancelled on the server and its error comes back like any other.
"""

from __future__ import annotations

import select
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from psycopg import pq

from migratekit import interrupts

OK = (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK)
COPY = (pq.ExecStatus.COPY_IN, pq.ExecStatus.COPY_OUT, pq.ExecStatus.COPY_BOTH)


@dataclass(frozen=True)
class Sent:
    """What one message did: the results of the statements that succeeded, and the error that stopped it."""

    results: tuple[pq.abc.PGresult, ...]  # the successful statements' results, in order
    error: psycopg.Error | None  # the statement that failed, as psycopg's exception with its diagnostics

    @property
    def succeeded(self) -> int:
        return len(self.results)


def send(conn: psycopg.Connection, query: bytes, meanwhile: Callable[[], None] | None = None) -> Sent:
    """Run `query` (one or more statements); every result until the first error, and that error.

    `meanwhile` runs once the query is on its way, before its results are awaited: client work that
    would otherwise wait its turn (it must not use the connection for a query)."""
    pg = conn.pgconn
    pg.send_query(query)
    while pg.flush():  # nonblocking: a large message goes out in pieces
        readable, _, _ = select.select([pg.socket], [pg.socket], [], 1.0)
        if readable:
            pg.consume_input()
    if meanwhile is not None:
        meanwhile()
    results: list[pq.abc.PGresult] = []
    error: psycopg.Error | None = None
    while (result := _next_result(pg, lambda: _cancel(conn))) is not None:
        if result.status in COPY:
            _refuse_copy(pg, result.status)
        elif result.status in OK:
            if error is None:
                results.append(result)
        elif error is None:
            error = psycopg.errors.error_from_result(result, encoding=conn.info.encoding)
    return Sent(tuple(results), error)


def _next_result(pg: pq.abc.PGconn, on_interrupt: Callable[[], bool]) -> pq.abc.PGresult | None:
    pg.consume_input()
    cancelled = False
    while pg.is_busy():
        select.select([pg.socket], [], [], 0.2)
        if interrupts.requested() and not cancelled:
            cancelled = on_interrupt()  # the server cancels the statement: the transaction rolls back
        pg.consume_input()
    return pg.get_result()


def _cancel(conn: psycopg.Connection) -> bool:
    conn.cancel_safe(timeout=10)
    return True


def _refuse_copy(pg: pq.abc.PGconn, status: int) -> None:
    """A COPY with STDIN/STDOUT has no data stream here: end it so the server reports an error, never hang."""
    if status == pq.ExecStatus.COPY_IN:
        pg.put_copy_end(b"migratekit: a migration cannot read COPY data from the runner")
        pg.flush()
    else:
        while True:
            size, _ = pg.get_copy_data(0)
            if size < 0:
                break
            if size == 0:
                select.select([pg.socket], [], [], 1.0)
                pg.consume_input()
