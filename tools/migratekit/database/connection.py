"""Connecting to a service's database, and saying truthfully why a connection or the runner's own SQL failed."""

from __future__ import annotations

import re
import time

import psycopg

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
MISSING_DATABASE = re.compile(r'database "[^"]*" does not exist')
TRANSIENT = ("Connection refused", "starting up", "shutting down", "No such file or directory", "timeout expired")


def connect(conninfo: str, wait: float) -> psycopg.Connection:
    """An autocommit connection, retried for `wait` seconds while the server starts; Stopped otherwise."""
    deadline = time.monotonic() + wait
    delay = 0.1
    while True:
        try:
            return psycopg.connect(conninfo, autocommit=True, connect_timeout=10, application_name="migratekit")
        except psycopg.OperationalError as exc:
            message = redact(str(exc)).strip()
            transient = any(s in message for s in TRANSIENT)
            remaining = deadline - time.monotonic()
            if transient and remaining > 0 and not interrupts.requested():
                time.sleep(min(delay, remaining))
                delay = min(delay * 2, 2.0)
                continue
            waited = f" (retried for {wait:g}s)" if transient and wait else ""
            if MISSING_DATABASE.search(message):
                raise Stopped(
                    Failure(
                        f"the database does not exist: {message}",
                        sqlstate=MISSING,
                        hint="create it with --create-databases (or create_database: true in workspace.yaml)",
                    )
                ) from None
            if transient:
                hint = "check the host and port, or raise --wait while the server starts"
            elif "translate host name" in message or "Name or service not known" in message:
                hint = "check the host name in the URL: it does not resolve"
            else:
                hint = "check the user, password and database name in the URL"
            raise Stopped(Failure(f"cannot connect to {redact(conninfo)}{waited}: {message}", hint=hint)) from None


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
