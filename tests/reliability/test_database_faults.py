"""The server restarting mid-run and a connection dropped mid-migration: a clear error, nothing recorded."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psycopg

from migratekit.apply import Options, apply_service
from migratekit.embedded import Embedded
from migratekit.migration import load_migrations

LONG = "CREATE TABLE IF NOT EXISTS slow (id int);\nSELECT pg_sleep(3);\n"


def files(directory: Path) -> Path:
    directory.mkdir(parents=True)
    (directory / "001_init.sql").write_text("CREATE TABLE IF NOT EXISTS a (id int);\n")
    (directory / "002_slow.sql").write_text(LONG)
    return directory


def wait_for_sleep(admin_url: str) -> int:
    with psycopg.connect(admin_url, autocommit=True) as watcher:
        deadline = time.monotonic() + 20
        while True:
            row = watcher.execute(
                "SELECT pid FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND query LIKE '%%pg_sleep(3)%%'"
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
            target=lambda: outcome.update(result=apply_service("svc", url, load_migrations(migrations), Options()))
        )
        runner.start()
        wait_for_sleep(admin)
        cluster.stop()
        runner.join(timeout=30)
        result = outcome["result"]
        assert result.outcome == "failed" and "lost the connection" in result.failure.message
        assert [a.version for a in result.applied] == ["001_init"]
        url = cluster.ensure_database("svc")  # the same database, after the restart
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT version FROM schema_migrations").fetchall() == [("001_init",)]
            assert conn.execute("SELECT to_regclass('slow')").fetchone() == (None,)
        assert [a.version for a in apply_service("svc", url, load_migrations(migrations), Options()).applied] == [
            "002_slow"
        ]
    finally:
        cluster.stop()


def test_connection_terminated_mid_migration(tmp_path: Path, scratch_db: str, pg_server) -> None:
    migrations = files(tmp_path / "svc" / "migrations")
    outcome = {}
    runner = threading.Thread(
        target=lambda: outcome.update(result=apply_service("svc", scratch_db, load_migrations(migrations), Options()))
    )
    runner.start()
    pid = wait_for_sleep(pg_server.admin_url)
    with psycopg.connect(pg_server.admin_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    runner.join(timeout=30)
    result = outcome["result"]
    assert result.outcome == "failed" and "lost the connection" in result.failure.message
    assert "nothing half-applied was recorded" in result.failure.hint
    with psycopg.connect(scratch_db) as conn:
        assert conn.execute("SELECT version FROM schema_migrations").fetchall() == [("001_init",)]
        assert conn.execute("SELECT to_regclass('slow')").fetchone() == (None,)
    assert apply_service("svc", scratch_db, load_migrations(migrations), Options()).ok
