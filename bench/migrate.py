"""Benchmark: `invoke migrate-all` against dbmate and plain psql, on the same SQL, in one run.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python bench/migrate.py [--services 40] [--migrations 25]

Uses $MIGRATEKIT_SCRATCH_URL's server (default: the local one at 127.0.0.1:5432) and drops
every database it made. Prints one table: wall time, and peak memory of the process measured.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

from migratekit.databases import with_database
from migratekit.embedded import create_database, drop_database

sys.path.insert(0, str(Path(__file__).parent))
from synth import build  # noqa: E402

BIN = Path(sys.executable).parent
TIME = shutil.which("time", path="/usr/bin:/bin") or sys.exit(
    "bench needs GNU time (/usr/bin/time: apt-get install time)"
)


def timed(
    cmd: list[str], env: dict[str, str] | None = None, cwd: Path | None = None, ok: tuple[int, ...] = (0,)
) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of one command, whose exit code must be in `ok`.

    Peak memory comes from GNU time: a child's ru_maxrss as seen from this Python process would
    include this process's own size at fork.
    """
    stats = tempfile.NamedTemporaryFile(suffix=".rss")
    started = time.perf_counter()
    result = subprocess.run(
        [TIME, "-f", "%M", "-o", stats.name, *cmd],
        env={**os.environ, **(env or {})},
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    elapsed = time.perf_counter() - started
    if result.returncode not in ok:
        raise SystemExit(f"{' '.join(cmd[:3])} failed:\n{result.stderr.decode()[-2000:]}")
    return elapsed, int(Path(stats.name).read_text().split()[-1]) / 1024


def median(cmd: list[str], env: dict[str, str], cwd: Path, ok: tuple[int, ...] = (0,)) -> tuple[float, float]:
    runs = sorted(timed(cmd, env, cwd, ok) for _ in range(3))
    return runs[1]


def many(run: Callable[[str], tuple[float, float]], names: list[str]) -> tuple[float, float]:
    total, peak = 0.0, 0.0
    for name in names:
        seconds, rss = run(name)
        total, peak = total + seconds, max(peak, rss)
    return total, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=40)
    parser.add_argument("--migrations", type=int, default=25)
    parser.add_argument("--jobs", type=int, default=4)
    args = parser.parse_args()
    admin = os.environ.get("MIGRATEKIT_SCRATCH_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    work = Path(tempfile.mkdtemp(prefix="mk-bench-"))
    names = build(work / "repo", args.services, args.migrations)
    tag = uuid.uuid4().hex[:6]
    databases: list[str] = []

    def database(kind: str, name: str) -> str:
        db = f"mkb_{tag}_{kind}_{name}"
        create_database(admin, db)
        databases.append(db)
        return with_database(admin, db)

    try:
        kit_env = {f"{n.upper()}_DATABASE_URL": database("kit", n) for n in names}
        dbmate_urls = {n: database("dbmate", n) for n in names}
        psql_urls = {n: database("psql", n) for n in names}
        invoke = [str(BIN / "invoke"), "migrate-all", "--jobs", str(args.jobs), "--json"]
        rows = []
        rows.append(("migratekit migrate-all, from empty", *timed(invoke, kit_env, work / "repo")))
        rows.append(("migratekit migrate-all, up to date (median of 3)", *median(invoke, kit_env, work / "repo")))

        dbmate_dirs = work / "dbmate"
        for name in names:  # dbmate wants its own header in each file
            target = dbmate_dirs / name
            target.mkdir(parents=True)
            for f in sorted((work / "repo" / "services" / name / "migrations").glob("*.sql")):
                (target / f.name).write_text("-- migrate:up\n" + f.read_text() + "\n-- migrate:down\n")

        def dbmate(name: str) -> tuple[float, float]:
            url = _url(dbmate_urls[name])
            return timed(
                [
                    str(BIN / "dbmate"),
                    "--url",
                    url,
                    "--migrations-dir",
                    str(dbmate_dirs / name),
                    "--migrations-table",
                    "dbmate_migrations",
                    "--no-dump-schema",
                    "up",
                ]
            )

        rows.append(("dbmate up, service by service, from empty", *many(dbmate, names)))
        rows.append(("dbmate up, service by service, up to date", *many(dbmate, names)))

        psql = shutil.which("psql")
        if psql:

            def per_file(name: str) -> tuple[float, float]:
                files = sorted((work / "repo" / "services" / name / "migrations").glob("*.sql"))
                return many(
                    lambda f: timed([psql, "-X", "-q", "-1", "-v", "ON_ERROR_STOP=1", "-d", psql_urls[name], "-f", f]),
                    [str(f) for f in files],
                )

            rows.append(("psql -1 -f per file (no tracking), from empty", *many(per_file, names)))

        table = Table(title=f"migrate: {args.services} services x {args.migrations} migrations, jobs={args.jobs}")
        for column in ("run", "seconds", "peak MB (one process)"):
            table.add_column(column, justify="left" if column == "run" else "right")
        for label, seconds, rss in rows:
            table.add_row(label, f"{seconds:.2f}", f"{rss:.0f}")
        Console().print(table)
        ratio = rows[0][1] / rows[2][1]
        Console().print(
            f"migrate-all from empty / dbmate from empty = {ratio:.2f} (target <= 0.5); "
            f"up to date {rows[1][1]:.2f}s (target < 1s); peak {max(rows[0][2], rows[1][2]):.0f} MB "
            "(target < 150 MB)"
        )
    finally:
        for db in databases:
            drop_database(admin, db)
        shutil.rmtree(work, ignore_errors=True)


def _url(conninfo: str) -> str:
    """dbmate takes URLs only; the scratch server's conninfo as one."""
    from psycopg.conninfo import conninfo_to_dict

    p = conninfo_to_dict(conninfo)
    auth = p.get("user", "postgres") + (f":{p['password']}" if p.get("password") else "")
    return f"postgres://{auth}@{p.get('host', '127.0.0.1')}:{p.get('port', 5432)}/{p['dbname']}?sslmode=disable"


if __name__ == "__main__":
    main()
