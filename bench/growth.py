"""Benchmark: how each cost grows with the work, in one run: the cost per file and per service, and the memory,
should stay flat.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python bench/growth.py [--files 1000 10000 50000] [--services 10 40 300]

Audit: `invoke audit --json` cold (`--no-cache`) and warm on monorepos of 50 migrations per
service, with squawk on the same files beside it. migrate-all: `invoke migrate-all --json` from
empty and up to date on 10 / 40 / 300 services of 25 migrations; beside up to date, its floor: a
process that imports Invoke and psycopg, then only connects to each database and reads its tracking
rows, 4 at a time (bench/migrate.py's UP_TO_DATE_FLOOR). Each row gives the cost per file or per
service, which should stay flat as the work grows, and the peak memory (RSS, from GNU time) of the
invoke process itself in each measured run, the largest of its runs: the same from the smallest step
to the largest when nothing is kept per file or per service longer than it is needed. Uses
$MIGRATEKIT_SCRATCH_URL's server (default 127.0.0.1:5432) and drops every database it made.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import uuid
from pathlib import Path

import psycopg
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).parent))
from migrate import BIN, UP_TO_DATE_FLOOR, timed  # noqa: E402
from synth import build  # noqa: E402

from migratekit.database.embedded import create_database, drop_database  # noqa: E402
from migratekit.model.identity import with_database  # noqa: E402

PER_SERVICE_AUDIT = 50
PER_SERVICE_MIGRATE = 25
RUNS = 3


def measured(cmd: list[str], env: dict[str, str], cwd: Path, ok: tuple[int, ...] = (0,)) -> tuple[float, float]:
    """The median seconds of RUNS runs, and the largest peak memory (MB) of any of them."""
    runs = [timed(cmd, env, cwd, ok) for _ in range(RUNS)]
    return sorted(seconds for seconds, _ in runs)[RUNS // 2], max(rss for _, rss in runs)


def audit_rows(work: Path, sizes: list[int]) -> list[tuple[str, ...]]:
    rows = []
    for files in sizes:
        root = work / f"audit-{files}"
        build(root, files // PER_SERVICE_AUDIT, PER_SERVICE_AUDIT)
        audit = [str(BIN / "invoke"), "audit", "--json"]
        cold, cold_peak = measured([*audit, "--no-cache"], {}, root, ok=(0, 1))
        timed(audit, {}, root, ok=(0, 1))  # fills the cache
        warm, warm_peak = measured(audit, {}, root, ok=(0, 1))
        squawk, _ = measured([str(BIN / "squawk"), "services/*/migrations/*.sql"], {}, root, ok=(0, 1))  # its own glob
        rows.append(
            (
                f"{files:,} files",
                f"{cold:.2f} s",
                f"{cold / files * 1000:.3f}",
                f"{warm:.2f} s",
                f"{warm / files * 1000:.3f}",
                f"{squawk:.2f} s",
                f"{cold / squawk:.2f} / {warm / squawk:.2f}",
                f"{cold_peak:.0f} / {warm_peak:.0f} MB",
            )
        )
        shutil.rmtree(root)
    return rows


def migrate_rows(work: Path, counts: list[int], admin: str) -> list[tuple[str, ...]]:
    rows = []
    tag = uuid.uuid4().hex[:6]
    for count in counts:
        root = work / f"migrate-{count}"
        names = build(root, count, PER_SERVICE_MIGRATE)
        databases = [f"mkg_{tag}_{count}_{n}" for n in names]
        for database in databases:
            create_database(admin, database)
        try:
            env = {f"{n.upper()}_DATABASE_URL": with_database(admin, d) for n, d in zip(names, databases, strict=True)}
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute("CHECKPOINT")
            command = [str(BIN / "invoke"), "migrate-all", "--json"]
            empty, empty_peak = timed(command, env, root)
            current, current_peak = measured(command, env, root)
            floor, _ = measured([sys.executable, "-c", UP_TO_DATE_FLOOR, "4", *env.values()], {}, root)
            rows.append(
                (
                    f"{count} services",
                    f"{empty:.2f} s",
                    f"{empty / count * 1000:.0f}",
                    f"{current:.2f} s",
                    f"{current / count * 1000:.1f}",
                    f"{floor:.2f} s",
                    f"{current / floor:.2f}",
                    f"{empty_peak:.0f} / {current_peak:.0f} MB",
                )
            )
        finally:
            for database in databases:
                drop_database(admin, database)
            shutil.rmtree(root)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, nargs="+", default=[1000, 10000, 50000])
    parser.add_argument("--services", type=int, nargs="+", default=[10, 40, 300])
    args = parser.parse_args()
    admin = os.environ.get("MIGRATEKIT_SCRATCH_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    work = Path(tempfile.mkdtemp(prefix="mk-bench-growth-"))
    console = Console(width=120)  # a file or a pipe is 80 wide: columns were cut
    try:
        audit = Table(title=f"audit, {PER_SERVICE_AUDIT} migrations per service (median of {RUNS}; peak: largest)")
        columns = ("files", "cold", "ms/file", "warm", "ms/file", "squawk", "cold / warm vs squawk", "peak cold / warm")
        for column in columns:
            audit.add_column(column, justify="left" if column == "files" else "right")
        for row in audit_rows(work, args.files):
            audit.add_row(*row)
        console.print(audit)
        migrate = Table(
            title=f"migrate-all, {PER_SERVICE_MIGRATE} migrations per service (up to date: median of {RUNS}; peak: "
            "largest)"
        )
        for column in (
            "services",
            "from empty",
            "ms/service",
            "up to date",
            "ms/service",
            "floor",
            "up to date / floor",
            "peak empty / up to date",
        ):
            migrate.add_column(column, justify="left" if column == "services" else "right")
        for row in migrate_rows(work, args.services, admin):
            migrate.add_row(*row)
        console.print(migrate)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
