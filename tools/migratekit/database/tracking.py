"""The tracking table and the migration lock in a live database, as model.contract defines them.

Creating the table, reading and writing its rows, and holding the advisory lock that makes replicas starting
together take turns, so each migration runs exactly once.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from migratekit import interrupts
from migratekit.database.results import Failure, Stopped
from migratekit.model.contract import COLUMNS_SQL, LOCK_KEY, SEED_COLUMNS, index_name, lock_name, qualified

if TYPE_CHECKING:  # psycopg is imported by the functions that talk to a database: the audit reads only the constants
    import psycopg
    from psycopg import sql


def identifier(tracking_table: str) -> sql.Identifier:
    """The table, schema-qualified, as a quoted identifier."""
    from psycopg import sql

    return sql.Identifier(*qualified(tracking_table).split("."))


def create_statements(tracking_table: str) -> list[sql.Composed]:
    """The schema (when qualified), the table and its `applied_at DESC` index."""
    from psycopg import sql

    table = identifier(tracking_table)
    parts = tracking_table.split(".")
    statements = [sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(parts[0]))] if len(parts) == 2 else []
    statements.append(sql.SQL("CREATE TABLE IF NOT EXISTS {} (" + COLUMNS_SQL + ")").format(table))
    statements.append(
        sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {}(applied_at DESC)").format(
            sql.Identifier(index_name(tracking_table)), table
        )
    )
    return statements


def row_head(tracking_table: str) -> sql.Composed:
    """What every tracking row's INSERT starts with, up to its values."""
    from psycopg import sql

    return sql.SQL("INSERT INTO {} (version, checksum, execution_time_ms) VALUES ").format(identifier(tracking_table))


def row(tracking_table: str, version: str, checksum: str, elapsed: sql.Composable) -> sql.Composed:
    """The INSERT of one migration's tracking row, in the seed's columns."""
    from psycopg import sql

    values = sql.SQL("{}({}, {}, {})")
    return values.format(row_head(tracking_table), sql.Literal(version), sql.Literal(checksum), elapsed)


def forget_row(tracking_table: str, version: str) -> sql.Composed:
    """The DELETE of a repeatable migration's earlier row, sent before it runs again (in its transaction)."""
    from psycopg import sql

    return sql.SQL("DELETE FROM {} WHERE version = {}").format(identifier(tracking_table), sql.Literal(version))


def live_columns(conn: psycopg.Connection, table: str) -> set[str] | None:
    """The live columns of a table (schema-qualified or on public), None when it does not exist."""
    found = conn.execute(
        "SELECT pg_catalog.array_agg(attname::text) FROM pg_catalog.pg_attribute "
        "WHERE attrelid = pg_catalog.to_regclass(%s) AND attnum > 0 AND NOT attisdropped",
        (qualified(table),),
    ).fetchone()
    return None if found is None or found[0] is None else set(found[0])


def state(conn: psycopg.Connection, tracking_table: str) -> str:
    """ "absent" or "ok"; Stopped for a table of another tool's shape, which migratekit never writes into."""
    columns = live_columns(conn, tracking_table)
    if columns is None:
        return "absent"
    if SEED_COLUMNS <= columns:
        return "ok"
    if columns == {"version", "dirty"}:
        tool = "golang-migrate's (version, dirty)"
    elif columns == {"version"}:
        tool = "dbmate's (version only)"
    else:
        tool = f"an unknown tool's ({', '.join(sorted(columns))})"
    raise Stopped(
        Failure(
            f"{tracking_table} exists with {tool} shape, not the seed's "
            "(version, applied_at, checksum, execution_time_ms); migratekit will not write into it",
            hint="set tracking_table for this service in workspace.yaml to a new table, or migrate the other "
            "tool's history into the seed's shape first",
        )
    )


def ensure_table(conn: psycopg.Connection, tracking_table: str) -> None:
    if state(conn, tracking_table) == "ok":
        return
    with conn.transaction():  # all or nothing: a kill here must not leave a table without its index
        for statement in create_statements(tracking_table):
            conn.execute(statement)


def applied_rows(conn: psycopg.Connection, tracking_table: str) -> dict[str, str]:
    """version -> checksum of every tracking row."""
    from psycopg import sql

    query = sql.SQL("SELECT version, checksum FROM {}").format(identifier(tracking_table))
    return {version: checksum for version, checksum in conn.execute(query)}


def recorded(conn: psycopg.Connection, tracking_table: str) -> dict[str, str] | None:
    """The tracking rows, None when the table does not exist yet (Stopped for another tool's table)."""
    return applied_rows(conn, tracking_table) if state(conn, tracking_table) == "ok" else None


# (schema, table) of every table holding all of SEED_COLUMNS (the parameters: the columns, their count).
SEED_SHAPED = (
    "SELECT n.nspname::text, c.relname::text FROM pg_catalog.pg_class c "
    "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') "
    "AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND (SELECT pg_catalog.count(*) "
    "FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
    "AND a.attname::text = ANY(%s)) = %s"
)


def seed_history_elsewhere(
    conn: psycopg.Connection, tracking_table: str, checksums: dict[str, str], neighbours: tuple[str, ...]
) -> tuple[str, list[str]] | None:
    """Another table of the seed's shape recording these very files (same version, same checksum), and not
    another service's (`neighbours`): this service's history, left there when its tracking_table changed.

    Checked only while `tracking_table` does not exist yet: starting it empty would run every migration again.
    """
    from psycopg import sql

    ours = {qualified(t) for t in (tracking_table, *neighbours)}
    for schema, name in conn.execute(SEED_SHAPED, (sorted(SEED_COLUMNS), len(SEED_COLUMNS))).fetchall():
        if f"{schema}.{name}" in ours:
            continue
        query = sql.SQL("SELECT version, checksum FROM {}").format(sql.Identifier(schema, name))
        same = sorted(version for version, checksum in conn.execute(query) if checksums.get(version) == checksum)
        if same:
            return f"{schema}.{name}", same
    return None


# Naming every seed column checks the table's shape in the query that reads it: another tool's
# table (golang-migrate's version, dirty) fails with undefined_column. num_nulls(...) >= 0 always holds.
SHAPED_ROWS = "SELECT version, checksum FROM {} WHERE pg_catalog.num_nulls(applied_at, execution_time_ms) >= 0"


def first_look(conn: psycopg.Connection, tracking_table: str) -> dict[str, str] | None:
    """`recorded` in one query when the table is there (an up-to-date run's only query per database).

    A fresh backend's first catalog lookup is most of a query's cost, so one query instead of
    `state` and then the rows. A missing table (never migrated; the server logs that
    one error) or a missing column falls back to `recorded`, which says whose table it is.
    """
    from psycopg import errors, sql

    try:
        return dict(conn.execute(sql.SQL(SHAPED_ROWS).format(identifier(tracking_table))).fetchall())
    except (errors.UndefinedTable, errors.UndefinedColumn, errors.InvalidSchemaName):
        return recorded(conn, tracking_table)


def record_new_checksum(conn: psycopg.Connection, tracking_table: str, version: str, checksum: str) -> None:
    """After a deliberate edit (--allow-changed): the row keeps its version and time, takes the new checksum."""
    from psycopg import sql

    conn.execute(
        sql.SQL("UPDATE {} SET checksum = %s WHERE version = %s").format(identifier(tracking_table)),
        (checksum, version),
    )


def _acquire(conn: psycopg.Connection, tracking_table: str, wait: float) -> int:
    """Take the migration lock of this database and tracking table; its key, or Stopped naming the holder."""
    from psycopg import sql

    key = conn.execute(sql.SQL("SELECT " + LOCK_KEY), (lock_name(tracking_table),)).fetchone()[0]  # type: ignore[index]
    deadline = time.monotonic() + wait
    delay = 0.05
    while not conn.execute("SELECT pg_catalog.pg_try_advisory_lock(%s)", (key,)).fetchone()[0]:  # type: ignore[index]
        if interrupts.requested():
            raise Stopped(Failure(f"{interrupts.describe()} while waiting for the migration lock of {tracking_table}"))
        if time.monotonic() + delay > deadline:
            raise Stopped(
                Failure(
                    f"another runner holds the migration lock for {tracking_table}: {_holder(conn, key)}; "
                    f"waited {wait:g}s",
                    hint="wait for it to finish, or raise the lock wait; pg_terminate_backend(pid) ends a stuck one",
                )
            )
        time.sleep(delay)
        delay = min(delay * 2, 0.5)
    return int(key)


@contextmanager
def locked(conn: psycopg.Connection, tracking_table: str, wait: float) -> Iterator[None]:
    """Hold the migration lock for the block. A session whose connection died or whose transaction
    failed has lost or cannot release the lock; PostgreSQL frees it with the session."""
    import psycopg

    key = _acquire(conn, tracking_table, wait)
    try:
        yield
    finally:
        if not conn.closed and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            conn.execute("SELECT pg_catalog.pg_advisory_unlock(%s)", (key,))


def _holder(conn: psycopg.Connection, key: int) -> str:
    holder = conn.execute(
        "SELECT l.pid, a.application_name, a.client_addr::text, a.backend_start::text "
        "FROM pg_catalog.pg_locks l LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
        "AND l.classid = %s::bigint::oid AND l.objid = %s::bigint::oid",
        ((key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF),
    ).fetchone()
    if holder is None:
        return "another session"
    return (
        f"backend pid {holder[0]} ({holder[1] or 'no application_name'}, "
        f"from {holder[2] or 'local socket'}, connected {holder[3]})"
    )
