"""rollback, baseline, forget and adopt read the tracking rows once they hold the migration lock, not before.

Each case holds the lock from another session, starts the command as a user would (a real process), waits until
it is polling for the lock, then changes the rows as another runner would before releasing it. What the command
does must follow from the rows as they are when it gets the lock.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
import pytest

from conftest import Monorepo
from migratekit.model.contract import LOCK_KEY, create_table_sql, lock_name
from migratekit.model.migration import seed_checksum

TABLE = "migratekit.schema_migrations"
FILES = {
    "000001_parent.up.sql": "CREATE TABLE IF NOT EXISTS parent (id int PRIMARY KEY);\n",
    "000001_parent.down.sql": "DROP TABLE IF EXISTS parent;\n",
    "000002_child.up.sql": "CREATE TABLE IF NOT EXISTS child (id int, parent_id int);\n",
    "000002_child.down.sql": "DROP TABLE IF EXISTS child;\n",
}
THIRD = {
    "000003_child_index.up.sql": "CREATE INDEX IF NOT EXISTS child_parent ON child (parent_id);\n",
    "000003_child_index.down.sql": "DROP INDEX IF EXISTS child_parent;\n",
}


def record(conn: psycopg.Connection, version: str) -> None:
    """What another runner's migrate, baseline or adopt writes: the row with the file's checksum."""
    checksum = seed_checksum({**FILES, **THIRD}[f"{version}.up.sql"].encode())
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS migratekit; {create_table_sql(TABLE)}")
    conn.execute(f"INSERT INTO {TABLE} (version, checksum, execution_time_ms) VALUES (%s, %s, 0)", (version, checksum))


def migrate_the_third(repo: Monorepo, conn: psycopg.Connection) -> None:
    conn.execute(THIRD["000003_child_index.up.sql"])
    record(conn, "000003_child_index")


def record_both(repo: Monorepo, conn: psycopg.Connection) -> None:
    record(conn, "000001_parent")
    record(conn, "000002_child")


def forget_the_first(repo: Monorepo, conn: psycopg.Connection) -> None:
    conn.execute(f"DELETE FROM {TABLE} WHERE version = '000001_parent'")


@dataclass(frozen=True)
class Case:
    name: str
    command: tuple[str, ...]
    before: Callable[[Monorepo], None]  # the state the command starts from
    meanwhile: Callable[[Monorepo, psycopg.Connection], None]  # what the lock's holder commits while it waits
    code: int
    says: str  # in stdout (exit 0) or stderr
    rows: list[str]  # the tracking rows left


def migrated(repo: Monorepo) -> None:
    assert repo.invoke("migrate-all").returncode == 0


def migrated_then_a_third(repo: Monorepo) -> None:
    migrated(repo)
    for name, text in THIRD.items():
        repo.migration("g", name, text)


def golang_migrate_at_2(repo: Monorepo) -> None:
    with psycopg.connect(repo.env["G_DATABASE_URL"], autocommit=True) as conn:
        conn.execute(f"{FILES['000001_parent.up.sql']} {FILES['000002_child.up.sql']}")
        conn.execute("CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL)")
        conn.execute("INSERT INTO schema_migrations VALUES (2, false)")


CASES = [
    Case(
        "rollback undoes what the migrate it waited for applied",
        ("rollback", "g", "--json"),
        migrated_then_a_third,
        migrate_the_third,
        0,
        '"version": "000003_child_index"',
        ["000001_parent", "000002_child"],
    ),
    Case(
        "baseline records nothing another baseline recorded meanwhile",
        ("baseline", "g", "--to", "000002_child"),
        lambda repo: None,
        record_both,
        0,
        "g: recorded nothing new as applied",
        ["000001_parent", "000002_child"],
    ),
    Case(
        "forget of a row removed meanwhile says it is not there",
        ("forget", "g", "000001_parent", "--yes"),
        migrated,
        forget_the_first,
        2,
        "migratekit: g has no row for '000001_parent' in migratekit.schema_migrations; recorded versions: 000002_child",
        ["000002_child"],
    ),
    Case(
        "adopt records nothing another adopt recorded meanwhile",
        ("adopt", "g"),
        golang_migrate_at_2,
        record_both,
        0,
        "g: recorded 0 version(s) from golang-migrate's public.schema_migrations into migratekit.schema_migrations "
        "(none); 2 were already there",
        ["000001_parent", "000002_child"],
    ),
]


def polling_for_the_lock(url: str, give_up: float = 30.0) -> None:
    """Until the command's session is asking for the lock (it polls pg_try_advisory_lock)."""
    deadline = time.monotonic() + give_up
    with psycopg.connect(url, autocommit=True) as conn:
        while not conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = 'migratekit' AND query LIKE '%pg_try_advisory_lock%'"
        ).fetchone()[0]:
            assert time.monotonic() < deadline, "the command never asked for the lock"
            time.sleep(0.05)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_the_rows_are_read_once_the_lock_is_held(monorepo, case: Case) -> None:
    repo = monorepo({"g": {"tracking_table": TABLE}})
    for name, text in FILES.items():
        repo.migration("g", name, text)
    case.before(repo)
    url = repo.env["G_DATABASE_URL"]
    with psycopg.connect(url, autocommit=True, application_name="other-runner") as holder:
        key = holder.execute(f"SELECT {LOCK_KEY}", (lock_name(TABLE),)).fetchone()[0]
        holder.execute("SELECT pg_advisory_lock(%s)", (key,))
        command = subprocess.Popen(
            [sys.executable, "-m", "invoke", *case.command],
            cwd=repo.root,
            env={**os.environ, **repo.env, "COLUMNS": "200"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            polling_for_the_lock(url)
            with holder.transaction():
                case.meanwhile(repo, holder)
        finally:
            holder.execute("SELECT pg_advisory_unlock(%s)", (key,))
        out, err = command.communicate(timeout=60)
    assert command.returncode == case.code, out + err
    assert "Traceback" not in err, err
    assert case.says in (out if case.code == 0 else err), out + err
    assert [v for (v,) in repo.query("g", f"SELECT version FROM {TABLE} ORDER BY 1")] == case.rows
    if case.name.startswith("rollback"):
        assert repo.query("g", "SELECT to_regclass('child') IS NOT NULL, to_regclass('child_parent')") == [(True, None)]
