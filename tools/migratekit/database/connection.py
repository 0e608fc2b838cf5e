"""Connecting to a service's database, and saying truthfully why a connection or the runner's own SQL failed."""

from __future__ import annotations

import socket
import time

import psycopg
from psycopg import pq

from migratekit import interrupts
from migratekit.database.results import Failure, Stopped
from migratekit.model.secrets import redact

REFUSALS = {  # SQLSTATE of the runner's own SQL failing -> what to do
    "42501": "the role cannot create the tracking table or its schema: grant it CREATE on the schema "
    "(and the database, for a schema-qualified table), or migrate as the owner",
    "25006": "the database is read-only (a standby, or default_transaction_read_only): migrate the primary",
    "53100": "the server's disk is full",
}


def refused(exc: psycopg.Error) -> Failure:
    """The runner's own SQL (tracking table, lock) failed on a live connection: say what PostgreSQL said."""
    message = redact(exc.diag.message_primary or str(exc)).strip()
    hint = REFUSALS.get(exc.diag.sqlstate or "", exc.diag.message_hint or "")
    return Failure(f"the runner's bookkeeping failed: {message}", sqlstate=exc.diag.sqlstate, hint=hint)


def lost(exc: psycopg.Error, filename: str | None) -> Failure:
    return Failure(
        f"lost the connection: {redact(str(exc)).strip()}",
        file=filename,
        hint="re-run when the server is back; nothing half-applied was recorded",
    )


MISSING = "3D000"  # invalid_catalog_name: the URL names a database the server does not have


def connect(conninfo: str, wait: float) -> psycopg.Connection:
    """An autocommit connection, retried for `wait` seconds while the server starts; Stopped otherwise.

    Why a connection failed is asked of the server, never read from the message (libpq's and the server's
    messages are translated): libpq's ping tells a server that rejects connections (starting up, shutting
    down) from one that answers (a login refused, a database missing) and from none at all.
    """
    deadline = time.monotonic() + wait
    delay = 0.1
    while True:
        try:
            return psycopg.connect(conninfo, autocommit=True, connect_timeout=10, application_name="migratekit")
        except psycopg.OperationalError as exc:
            message = redact(str(exc)).strip()
            state = _ping(conninfo)
            transient = state in (pq.Ping.REJECT, pq.Ping.NO_RESPONSE) and not _unresolved(conninfo)
            remaining = deadline - time.monotonic()
            if transient and remaining > 0 and interrupts.requested():  # not the whole wait: say what stopped it
                raise Stopped(
                    Failure(
                        f"{interrupts.describe()} while waiting for {redact(conninfo)} to accept connections "
                        f"(after {wait - remaining:.1f}s of --wait {wait:g}): {message}",
                        hint="nothing was applied",
                    )
                ) from None
            if transient and remaining > 0:
                time.sleep(min(delay, remaining))
                delay = min(delay * 2, 2.0)
                continue
            raise Stopped(_failure(conninfo, message, state, transient, wait)) from None


def _failure(conninfo: str, message: str, state: pq.Ping, transient: bool, wait: float) -> Failure:
    waited = f" (retried for {wait:g}s)" if transient and wait else ""
    if state is pq.Ping.OK and _database_missing(conninfo):
        return Failure(
            f"the database does not exist: {message}",
            sqlstate=MISSING,
            hint="create it with --create-databases (or create_database: true in workspace.yaml)",
        )
    if state is pq.Ping.OK:
        hint = "the server answers but refused this login: check the user, password and database name in the URL"
    elif not transient:
        hint = "check the host name in the URL: it does not resolve"
    elif state is pq.Ping.REJECT:
        hint = "the server is starting or shutting down: raise --wait to wait for it"
    else:
        hint = "check the host and port, or raise --wait while the server starts"
    return Failure(f"cannot connect to {redact(conninfo)}{waited}: {message}", hint=hint)


def _ping(conninfo: str) -> pq.Ping:
    return pq.Ping(pq.PGconn.ping(conninfo.encode()))


def _unresolved(conninfo: str) -> bool:
    """Whether no host of the URL resolves (a typo, or DNS down): waiting does not make a name exist."""
    from psycopg.conninfo import conninfo_to_dict

    hosts = [h for h in str(conninfo_to_dict(conninfo).get("host") or "").split(",") if h and not h.startswith("/")]
    if not hosts:
        return False
    for host in hosts:
        try:
            socket.getaddrinfo(host, None)
            return False
        except (socket.gaierror, UnicodeError):
            continue
    return True


def _database_missing(conninfo: str) -> bool:
    """The server answers: does it lack the URL's database? Asked through its maintenance database."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    name = str(conninfo_to_dict(conninfo).get("dbname") or "")
    for maintenance in ("postgres", "template1"):
        if maintenance == name:
            continue
        try:
            with psycopg.connect(make_conninfo(conninfo, dbname=maintenance), connect_timeout=10) as conn:
                return (
                    conn.execute("SELECT 1 FROM pg_catalog.pg_database WHERE datname = %s", (name,)).fetchone() is None
                )
        except psycopg.Error:
            continue
    return False


def create_missing(conninfo: str) -> str:
    """Create the database `conninfo` names, through the server's maintenance database, same credentials.

    Returns what to tell the user; a Stopped when the role may not create databases.
    """
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    name = str(conninfo_to_dict(conninfo).get("dbname") or "")
    last: psycopg.Error | None = None
    for maintenance in ("postgres", "template1"):
        try:
            with psycopg.connect(make_conninfo(conninfo, dbname=maintenance), autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                return f"created the database {name}"
        except psycopg.errors.DuplicateDatabase:
            return f"the database {name} already exists"
        except psycopg.Error as exc:
            last = exc
    message = redact(str(last)).strip() if last else "no maintenance database answered"
    raise Stopped(Failure(f"cannot create the database {name}: {message}", hint="create it as a role that may"))
