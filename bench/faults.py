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
from collections.abc import Callable
from pathlib import Path

import psycopg
from rich.console import Console
from rich.table import Table

from migratekit.database.embedded import create_database, drop_database
from migratekit.database.schema import snapshot
from migratekit.model.identity import with_database

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

        def trials(fault: str, count: int, inject: Callable[[dict[str, str]], bool]) -> None:
            """`count` fresh monorepo databases, a fault injected in each, then checked against the clean run."""
            equal = lost = 0
            for _ in range(count):
                env = fresh()
                ok = inject(env)
                got = state(env)
                equal += ok and got == expected
                lost += got != expected
            rows.append((fault, count, count * len(names), equal, lost))

        def kill_then_rerun(env: dict[str, str]) -> bool:
            runner = migrate_all(env)
            time.sleep(rng.uniform(0, clean_seconds * 1.1))
            os.kill(runner.pid, signal.SIGKILL)
            runner.wait()
            return migrate_all(env, "--lock-wait", "30").wait() == 0

        def eight_at_once(env: dict[str, str]) -> bool:
            runners = [migrate_all(env) for _ in range(8)]
            return all(r.wait() == 0 for r in runners)

        def terminate_then_rerun(env: dict[str, str]) -> bool:
            runner = migrate_all(env)
            stop = time.perf_counter() + rng.uniform(0, clean_seconds)
            killer = threading.Thread(target=_terminate_migratekit_backends, args=(admin, stop))
            killer.start()
            runner.wait()
            killer.join()
            return migrate_all(env, "--lock-wait", "30").wait() == 0

        trials("SIGKILL of migrate-all at a random moment, then a re-run", args.trials, kill_then_rerun)
        trials("8 migrate-alls started together", 3, eight_at_once)
        trials("pg_terminate_backend of the runners mid-run, then a re-run", 10, terminate_then_rerun)
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
