"""Kills at random moments and runners started together: nothing half-applied, nothing applied twice."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg

from conftest import write_tree
from migratekit.database.apply import apply_service
from migratekit.database.schema import snapshot
from migratekit.model.migration import load_migrations
from migratekit.model.settings import RunOptions

STEPS = 40  # more than one message of migrations (execution.BATCH): kills land between messages and within one
TRIALS = 12  # each is a seeded kill at a random moment; bench/faults.py runs 40
SEED = 20261128


def write_migrations(directory: Path) -> Path:
    return write_tree(
        directory,
        {
            f"{i:03d}_step.sql": f"CREATE TABLE IF NOT EXISTS t{i:03d} (id int PRIMARY KEY, note text);\n"
            f"CREATE INDEX IF NOT EXISTS idx_t{i:03d}_note ON t{i:03d} (note);\n"
            f"INSERT INTO t{i:03d} VALUES (1, 'seed') ON CONFLICT (id) DO NOTHING;\n"
            "SELECT pg_sleep(0.01);\n"
            for i in range(1, STEPS + 1)
        },
    )


def state(url: str) -> tuple[dict, list]:
    with psycopg.connect(url) as conn:
        return snapshot(conn), conn.execute("SELECT version, checksum FROM schema_migrations ORDER BY 1").fetchall()


def wait_for_the_killed_runners_session(url: str) -> None:
    """The server finishes or rolls back what a killed runner had already sent: check after that.

    Migrations go to the server several to a message, each ending in its COMMIT, so a runner killed
    after sending one leaves a backend that may still commit them, each with its row.
    """
    deadline = time.monotonic() + 30
    with psycopg.connect(url, autocommit=True) as conn:
        while conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()[0]:
            assert time.monotonic() < deadline, "the killed runner's session did not end"
            time.sleep(0.02)


def assert_atomic(url: str) -> int:
    """Every migration is there with its row, or neither is: returns how many are."""
    with psycopg.connect(url) as conn:
        recorded = (
            {v for (v,) in conn.execute("SELECT version FROM schema_migrations")}
            if conn.execute("SELECT to_regclass('schema_migrations')").fetchone()[0]
            else set()
        )
        for i in range(1, STEPS + 1):
            exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"t{i:03d}",)).fetchone()[0]
            assert exists == (f"{i:03d}_step" in recorded), f"t{i:03d} half-applied"
    return len(recorded)


def test_sigkill_at_random_moments_then_a_rerun_matches_a_clean_run(tmp_path: Path, new_db) -> None:
    migrations = write_migrations(tmp_path / "svc" / "migrations")
    reference = new_db()
    assert apply_service("svc", reference, load_migrations(migrations)).ok
    expected = state(reference)
    command = [sys.executable, "-m", "migratekit", "migrate", "--dir", str(migrations), "--url"]

    def seconds(args: list[str], fresh: bool = False) -> float:
        """The median of three runs: one run on a busy machine says little of the next."""
        times = []
        for _ in range(3):
            started = time.monotonic()
            subprocess.run([*args, new_db()] if fresh else args, check=True, stdout=subprocess.DEVNULL)
            times.append(time.monotonic() - started)
        return sorted(times)[1]

    # The kills are drawn between the runner's start-up and the end of an uninterrupted run, as measured here:
    # the same seed then lands kills in the middle of runs on a fast machine and on a slow one. A busy machine
    # still moves a run's moments about, so the trials go on (up to three times as many) until two kills have
    # landed mid-run: every trial, however it landed, must leave each migration whole or absent.
    start_up = seconds([sys.executable, "-m", "migratekit", "--version"])
    span = seconds(command, fresh=True)
    rng = random.Random(SEED)
    killed_midway = trials = 0
    while trials < TRIALS or (killed_midway < 2 and trials < 3 * TRIALS):
        trials += 1
        url = new_db()
        runner = subprocess.Popen([*command, url], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(start_up * 0.8, span))
        os.kill(runner.pid, signal.SIGKILL)
        runner.wait()
        wait_for_the_killed_runners_session(url)
        done = assert_atomic(url)
        killed_midway += 0 < done < STEPS
        rerun = apply_service("svc", url, load_migrations(migrations), run=RunOptions(lock_wait=30))
        assert rerun.ok, rerun.failure
        assert state(url) == expected
    assert killed_midway >= 2, "the kills should land in the middle of runs, not only before or after"


def run_together(migrations: Path, url: str, count: int) -> list[str]:
    """Start `count` runners at once; each one's JSON output, once all exited 0."""
    runners = [
        subprocess.Popen(
            [sys.executable, "-m", "migratekit", "migrate", "--dir", str(migrations), "--url", url, "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]
    outputs = [r.communicate(timeout=120) for r in runners]
    assert [r.returncode for r in runners] == [0] * count, [e for _, e in outputs]
    return [out for out, _ in outputs]


def test_eight_runners_started_together_apply_each_migration_once(tmp_path: Path, new_db) -> None:
    migrations = write_migrations(tmp_path / "svc" / "migrations")
    url = new_db()
    outputs = run_together(migrations, url, 8)
    applied = sum(len(json.loads(out)["applied"]) for out in outputs)
    assert applied == STEPS
    assert assert_atomic(url) == STEPS


def test_runners_racing_past_the_first_look_apply_one_pending_migration_once(tmp_path: Path, new_db) -> None:
    """Each runner first reads without the lock: all see the pending file; only one may apply it."""
    migrations = write_migrations(tmp_path / "svc" / "migrations")
    url = new_db()
    last = migrations / f"{STEPS:03d}_step.sql"
    held_back = last.read_text()
    last.unlink()
    assert apply_service("svc", url, load_migrations(migrations)).ok
    last.write_text(held_back.replace("pg_sleep(0.01)", "nextval('applications')"))
    with psycopg.connect(url, autocommit=True) as conn:  # counts how often the pending file's SQL runs
        conn.execute("CREATE SEQUENCE applications")
    outputs = run_together(migrations, url, 8)
    applied = [a["version"] for out in outputs for a in json.loads(out)["applied"]]
    assert applied == [last.stem]
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT last_value, is_called FROM applications").fetchone() == (1, True)
    assert assert_atomic(url) == STEPS
