"""Benchmark of faults: SIGKILLs at random moments, runners started together, dropped connections.

    .venv/bin/python bench/faults.py [--trials 40] [--seed 20261128]

Builds a synthetic monorepo (6 services x 12 migrations of the seed's shape) on the server of
$MIGRATEKIT_SCRATCH_URL (default 127.0.0.1:5432), checks every database against a clean run
after each fault, drops everything it made, and prints one table (the README's reliability figures).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psycopg
from rich.console import Console
from rich.table import Table

from migratekit.databases import with_database
from migratekit.embedded import create_database, drop_database
from migratekit.schema import snapshot

sys.path.insert(0, str(Path(__file__).parent))
from synth import build  # noqa: E402

BIN = Path(sys.executable).parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--seed", type=int, default=20261128)
    args = parser.parse_args()
    admin = os.environ.get("MIGRATEKIT_SCRATCH_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    work = Path(tempfile.mkdtemp(prefix="mk-faults-"))
    root = work / "repo"
    names = build(root, 6, 12)
    made: list[str] = []
    tag = uuid.uuid4().hex[:6]

    def fresh() -> dict[str, str]:
        env = {}
        for name in names:
            db = f"mkf_{tag}_{len(made)}"
            create_database(admin, db)
            made.append(db)
            env[f"{name.upper()}_DATABASE_URL"] = with_database(admin, db)
        return env

    def state(env: dict[str, str]) -> list:
        out = []
        for name in names:
            with psycopg.connect(env[f"{name.upper()}_DATABASE_URL"]) as conn:
                rows = conn.execute("SELECT version, checksum FROM schema_migrations ORDER BY 1").fetchall()
                out.append((snapshot(conn), rows))
        return out

    def migrate_all(env: dict[str, str], *extra: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [str(BIN / "invoke"), "migrate-all", "--jobs", "3", "--json", *extra],
            cwd=root,
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    rng = random.Random(args.seed)
    rows: list[tuple[str, int, int, int, int]] = []  # (fault, trials, databases checked, reruns clean, lost)
    try:
        reference_env = fresh()
        started = time.perf_counter()
        assert migrate_all(reference_env).wait() == 0
        clean_seconds = time.perf_counter() - started
        expected = state(reference_env)

        clean = lost = 0
        for _ in range(args.trials):
            env = fresh()
            runner = migrate_all(env)
            time.sleep(rng.uniform(0, clean_seconds * 1.1))
            os.kill(runner.pid, signal.SIGKILL)
            runner.wait()
            rerun = migrate_all(env, "--lock-wait", "30").wait()
            got = state(env)
            clean += rerun == 0 and got == expected
            lost += got != expected
        rows.append(
            (
                "SIGKILL of migrate-all at a random moment, then a re-run",
                args.trials,
                args.trials * len(names),
                clean,
                lost,
            )
        )

        concurrent_trials, clean, lost = 3, 0, 0
        for _ in range(concurrent_trials):
            env = fresh()
            runners = [migrate_all(env) for _ in range(8)]
            codes = [r.wait() for r in runners]
            got = state(env)
            clean += all(c == 0 for c in codes) and got == expected
            lost += got != expected
        rows.append(("8 migrate-alls started together", concurrent_trials, concurrent_trials * len(names), clean, lost))

        terminate_trials, clean, lost = 10, 0, 0
        for _ in range(terminate_trials):
            env = fresh()
            runner = migrate_all(env)
            stop = time.perf_counter() + rng.uniform(0, clean_seconds)
            killer = threading.Thread(target=_terminate_migratekit_backends, args=(admin, stop))
            killer.start()
            runner.wait()
            killer.join()
            rerun = migrate_all(env, "--lock-wait", "30").wait()
            got = state(env)
            clean += rerun == 0 and got == expected
            lost += got != expected
        rows.append(
            (
                "pg_terminate_backend of the runners mid-run, then a re-run",
                terminate_trials,
                terminate_trials * len(names),
                clean,
                lost,
            )
        )
    finally:
        for db in made:
            drop_database(admin, db)
        shutil.rmtree(work, ignore_errors=True)

    table = Table(
        title=f"faults: {len(names)} services x 12 migrations, seed {args.seed}, clean run {clean_seconds:.2f}s"
    )
    for column in ("fault injected", "trials", "databases checked", "re-runs equal to a clean run", "lost"):
        table.add_column(column, justify="left" if column == "fault injected" else "right")
    for fault, trials, checked, equal, missing in rows:
        table.add_row(fault, str(trials), str(checked), str(equal), str(missing))
    Console().print(table)


def _terminate_migratekit_backends(admin: str, at: float) -> None:
    time.sleep(max(0.0, at - time.perf_counter()))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'migratekit'")


if __name__ == "__main__":
    main()
