"""The server restarting mid-run and a connection dropped mid-migration: a clear error, nothing recorded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from conftest import write_tree
from migratekit.database.apply import apply_service
from migratekit.database.embedded import Embedded
from migratekit.database.results import Result
from migratekit.model.migration import load_migrations

LONG = "CREATE TABLE IF NOT EXISTS slow (id int);\nSELECT pg_sleep(3);\n"


def files(directory: Path) -> Path:
    directory.mkdir(parents=True)
    (directory / "001_init.sql").write_text("CREATE TABLE IF NOT EXISTS a (id int);\n")
    (directory / "002_slow.sql").write_text(LONG)
    return directory


def wait_for_sleep(admin_url: str, url: str) -> int:
    """The backend sleeping in 002_slow on `url`'s database (other suites on the server sleep in it too)."""
    database = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
    with psycopg.connect(admin_url, autocommit=True) as watcher:
        deadline = time.monotonic() + 20
        while True:
            row = watcher.execute(
                "SELECT pid FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND datname = %s "
                "AND query LIKE '%%pg_sleep(3)%%'",
                (database,),
            ).fetchone()
            if row:
                return row[0]
            assert time.monotonic() < deadline, "the migration never started"
            time.sleep(0.05)


def test_server_restart_mid_migration(tmp_path: Path) -> None:
    migrations = files(tmp_path / "svc" / "migrations")
    cluster = Embedded(tmp_path / "own-cluster")  # its own server: restarting it disturbs nobody else
    try:
        url = cluster.ensure_database("svc")
        admin = cluster.start().url()
        outcome = {}
        runner = threading.Thread(
            target=lambda: outcome.update(result=apply_service("svc", url, load_migrations(migrations)))
        )
        runner.start()
        wait_for_sleep(admin, url)
        cluster.stop()
        runner.join(timeout=30)
        result = outcome["result"]
        assert result.outcome == "failed" and "lost the connection" in result.failure.message
        assert [a.version for a in result.applied] == ["001_init"]
        url = cluster.ensure_database("svc")  # the same database, after the restart
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT version FROM schema_migrations").fetchall() == [("001_init",)]
            assert conn.execute("SELECT to_regclass('slow')").fetchone() == (None,)
        assert [a.version for a in apply_service("svc", url, load_migrations(migrations)).applied] == ["002_slow"]
    finally:
        cluster.stop()


def terminated_mid_migration(migrations: Path, url: str, admin_url: str) -> Result:
    """What apply_service returns when its backend is terminated during 002_slow's sleep."""
    outcome = {}
    runner = threading.Thread(
        target=lambda: outcome.update(result=apply_service("svc", url, load_migrations(migrations)))
    )
    runner.start()
    pid = wait_for_sleep(admin_url, url)
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    runner.join(timeout=30)
    return outcome["result"]


def test_connection_terminated_mid_migration(tmp_path: Path, scratch_db: str, pg_server) -> None:
    migrations = files(tmp_path / "svc" / "migrations")
    result = terminated_mid_migration(migrations, scratch_db, pg_server.admin_url)
    assert result.outcome == "failed" and "lost the connection" in result.failure.message
    assert "nothing half-applied was recorded" in result.failure.hint
    with psycopg.connect(scratch_db) as conn:
        assert conn.execute("SELECT version FROM schema_migrations").fetchall() == [("001_init",)]
        assert conn.execute("SELECT to_regclass('slow')").fetchone() == (None,)
    assert apply_service("svc", scratch_db, load_migrations(migrations)).ok


def test_a_connection_lost_with_migrations_in_flight_says_which_may_have_run(
    tmp_path: Path, scratch_db: str, pg_server
) -> None:
    """Several migrations travel in one message and their results come back with its end: a broken connection leaves
    the runner unsure about every one of them, and it says so (each is whole or absent; a rerun completes)."""
    migrations = files(tmp_path / "svc" / "migrations")
    (migrations / "003_after.sql").write_text("CREATE TABLE IF NOT EXISTS after (id int);\n")
    result = terminated_mid_migration(migrations, scratch_db, pg_server.admin_url)
    assert [a.version for a in result.applied] == ["001_init"] and "lost the connection" in result.failure.message
    assert result.failure.hint.startswith("002_slow … 003_after (2) were sent together: each is applied with its row")
    with psycopg.connect(scratch_db) as conn:
        assert conn.execute("SELECT version FROM schema_migrations").fetchall() == [("001_init",)]
        assert conn.execute("SELECT to_regclass('slow'), to_regclass('after')").fetchone() == (None, None)
    assert [a.version for a in apply_service("svc", scratch_db, load_migrations(migrations)).applied] == [
        "002_slow",
        "003_after",
    ]


def test_a_read_only_database_is_reported_as_such(tmp_path: Path, scratch_db: str) -> None:
    with psycopg.connect(scratch_db, autocommit=True) as conn:
        conn.execute("ALTER DATABASE " + conn.info.dbname + " SET default_transaction_read_only = on")
    result = apply_service("svc", scratch_db, load_migrations(files(tmp_path / "svc" / "migrations")))
    assert result.failure.sqlstate == "25006"
    assert "the runner's bookkeeping failed" in result.failure.message and "read-only" in result.failure.hint
    assert "lost the connection" not in result.failure.describe()


def test_a_role_without_create_is_told_what_to_grant(tmp_path: Path, scratch_db: str) -> None:
    role, secret = f"mk_nocreate_{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex[:12]}"
    with psycopg.connect(scratch_db, autocommit=True) as conn:  # a password: a server may check one (scram)
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{secret}'")
        conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    try:
        url = make_conninfo(scratch_db, user=role, password=secret)
        result = apply_service("svc", url, load_migrations(files(tmp_path / "svc" / "migrations")))
        assert result.failure.sqlstate == "42501", result.failure
        assert "grant it CREATE on the schema" in result.failure.hint
    finally:
        with psycopg.connect(scratch_db, autocommit=True) as conn:
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE {role}")


def test_a_host_that_does_not_resolve_is_named_as_the_problem(tmp_path: Path) -> None:
    url = "postgresql://app:secret@no-such-host.invalid:5432/db"
    result = apply_service("svc", url, load_migrations(files(tmp_path / "svc" / "migrations")))
    assert "does not resolve" in result.failure.hint and "secret" not in result.failure.describe()


def test_drift_schema_and_verify_with_unreachable_servers_say_so(tmp_path: Path, pg_server) -> None:
    root = write_tree(
        tmp_path / "repo",
        {"tasks.py": "from migratekit.tasks import ns\n", "services/svc/migrations/001_init.sql": "SELECT 1;\n"},
    )
    env = {**os.environ, "SVC_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/svc", "COLUMNS": "200"}
    env["MIGRATEKIT_SCRATCH_URL"] = pg_server.admin_url
    drift = subprocess.run(
        [sys.executable, "-m", "invoke", "drift", "--schema", "--json"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    assert drift.returncode == 1 and "Traceback" not in drift.stderr, drift.stderr
    assert json.loads(drift.stdout)["services"][0]["state"] == "unreachable"
    env["MIGRATEKIT_SCRATCH_URL"] = "postgresql://postgres:secret@127.0.0.1:1/postgres"
    verify = subprocess.run(
        [sys.executable, "-m", "invoke", "verify"], cwd=root, env=env, capture_output=True, text=True
    )
    assert verify.returncode == 1 and "Traceback" not in verify.stderr, verify.stderr
    assert "cannot create a throwaway database on postgresql://postgres:***@127.0.0.1:1/postgres" in verify.stderr


@pytest.mark.parametrize(
    ("url", "wait", "hint", "sqlstate", "retried"),
    [
        ("postgresql://postgres@127.0.0.1:1/x", 0.6, "check the host and port", None, True),
        ("postgresql://postgres@no-such-host.invalid/x", 5, "it does not resolve", None, False),
        ({"dbname": "mk_no_such_database"}, 5, "--create-databases", "3D000", False),  # on the scratch server
        ({"user": "mk_no_such_role"}, 5, "refused this login", None, False),
    ],
)
def test_why_a_connection_failed_is_asked_of_the_server_not_read_from_its_message(
    pg_server, url: str | dict[str, str], wait: float, hint: str, sqlstate: str | None, retried: bool
) -> None:
    """Retries and hints never depend on the message's words (libpq's and the server's are translated)."""
    from psycopg.conninfo import make_conninfo

    from migratekit.database.connection import connect
    from migratekit.database.results import Stopped

    url = url if isinstance(url, str) else make_conninfo(pg_server.admin_url, **url)
    started = time.monotonic()
    with pytest.raises(Stopped) as stopped:
        connect(url, wait)
    elapsed = time.monotonic() - started
    assert hint in stopped.value.failure.hint and stopped.value.failure.sqlstate == sqlstate
    assert (elapsed >= wait) is retried, elapsed
