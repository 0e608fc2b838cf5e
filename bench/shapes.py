"""Benchmark: two shapes the 40 x 25 run does not have, peers and the floor beside migratekit in one run.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python bench/shapes.py [--long 10000] [--chain 10] [--independent 60] [--per-service 25]

1. One database with many migrations (a long-lived service): migrate-all from empty against the
   floor (one psql session, each file in its own transaction, no tracking) and dbmate; then up to date.
2. An uneven graph, one chain of services beside many independent ones: the makespan of migrate-all
   (critical path first) against the ideal (the chain alone) and against level-by-level scheduling
   (each wave waits for the one before), all in process through the same engine.

Uses $MIGRATEKIT_SCRATCH_URL's server (default 127.0.0.1:5432) and drops every database it made.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).parent))
from migrate import BIN, PSQL_FLAGS, _url, timed  # noqa: E402
from synth import build  # noqa: E402

from migratekit.apply import Options  # noqa: E402
from migratekit.databases import with_database  # noqa: E402
from migratekit.embedded import create_database, drop_database  # noqa: E402
from migratekit.orchestrate import migrate_all  # noqa: E402
from migratekit.workspace import load_workspace  # noqa: E402

LIGHT = "-- Migration: {version}\nCREATE TABLE IF NOT EXISTS t{n} (id bigint PRIMARY KEY, note text);\n"


def long_service(work: Path, count: int, admin: str, databases: list[str]) -> list[tuple[str, float, float]]:
    root = work / "long"
    migrations = root / "services" / "ledger" / "migrations"
    migrations.mkdir(parents=True)
    width = len(str(count))
    for n in range(1, count + 1):
        (migrations / f"{n:0{width}d}_step.sql").write_text(LIGHT.format(version=f"{n:0{width}d}_step", n=n))
    (root / "tasks.py").write_text("from migratekit.tasks import ns\n")
    files = sorted(migrations.glob("*.sql"))
    (work / "floor.sql").write_text("".join(f"BEGIN;\n{f.read_text()}\nCOMMIT;\n" for f in files))
    dbmate_dir = work / "dbmate-long"
    dbmate_dir.mkdir()
    for f in files:
        (dbmate_dir / f.name).write_text("-- migrate:up\n" + f.read_text() + "\n-- migrate:down\n")

    def database(kind: str) -> str:
        name = f"mkb_{uuid.uuid4().hex[:6]}_{kind}"
        create_database(admin, name)
        databases.append(name)
        return with_database(admin, name)

    kit_url, floor_url, dbmate_url = database("kit"), database("floor"), database("dbmate")
    env = {"LEDGER_DATABASE_URL": kit_url}
    invoke = [str(BIN / "invoke"), "migrate-all", "--json"]
    rows = [
        (f"migrate-all, one database, {count} migrations, from empty", *timed(invoke, env, root)),
        (
            "  the floor: one psql session, a transaction per file",
            *timed([shutil.which("psql") or "psql", *PSQL_FLAGS, "-d", floor_url, "-f", str(work / "floor.sql")]),
        ),
        (
            "  dbmate up, same files",
            *timed(
                [
                    str(BIN / "dbmate"),
                    "--url",
                    _url(dbmate_url),
                    "--migrations-dir",
                    str(dbmate_dir),
                    "--no-dump-schema",
                    "up",
                ]
            ),
        ),
        (f"migrate-all, one database, {count} migrations, up to date", *timed(invoke, env, root)),
    ]
    return rows


def uneven(work: Path, chain: int, independent: int, per_service: int, admin: str, databases: list[str]) -> dict:
    root = work / "uneven"
    names = [f"c{i:02d}" for i in range(chain)] + [f"i{i:02d}" for i in range(independent)]
    build(root, len(names), per_service, names, chain=lambda i: i < chain)
    workspace = load_workspace(root)

    def run(selected: list[str]) -> float:
        urls = {}
        for name in selected:
            db = f"mkb_{uuid.uuid4().hex[:6]}_{name}"
            create_database(admin, db)
            databases.append(db)
            urls[name] = with_database(admin, db)
        started = time.perf_counter()
        results = migrate_all(workspace, selected, urls, Options(), jobs=4)
        assert all(r.ok for r in results), [r.failure for r in results if not r.ok]
        return time.perf_counter() - started

    chain_names = names[:chain]
    ideal = run(chain_names)
    critical = run(names)
    levels = sum(run(wave) for wave in workspace.groups())
    return {"ideal": ideal, "critical": critical, "levels": levels}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--long", type=int, default=10000)
    parser.add_argument("--chain", type=int, default=10)
    parser.add_argument("--independent", type=int, default=60)
    parser.add_argument("--per-service", type=int, default=25)
    args = parser.parse_args()
    admin = os.environ.get("MIGRATEKIT_SCRATCH_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    work = Path(tempfile.mkdtemp(prefix="mk-bench-shapes-"))
    databases: list[str] = []
    console = Console(width=120)
    try:
        rows = long_service(work, args.long, admin, databases)
        table = Table(title=f"one database, {args.long} migrations")
        for column in ("run", "seconds", "peak MB"):
            table.add_column(column, justify="left" if column == "run" else "right")
        for label, seconds, rss in rows:
            table.add_row(label, f"{seconds:.2f}", f"{rss:.0f}")
        console.print(table)
        console.print(
            f"from empty / floor = {rows[0][1] / rows[1][1]:.2f} (target <= 1.02); dbmate / floor = "
            f"{rows[2][1] / rows[1][1]:.2f}; up to date {rows[3][1]:.2f} s (target < 1 s); peak "
            f"{rows[0][2]:.0f} MB (target < 150 MB)"
        )
        while databases:
            drop_database(admin, databases.pop())
        times = uneven(work, args.chain, args.independent, args.per_service, admin, databases)
        console.print(
            f"uneven graph ({args.chain}-service chain + {args.independent} independent, {args.per_service} "
            f"migrations each, 4 at a time): critical path first {times['critical']:.2f} s, ideal (the chain "
            f"alone) {times['ideal']:.2f} s, level by level {times['levels']:.2f} s; makespan / ideal = "
            f"{times['critical'] / times['ideal']:.2f} (target <= 1.1), level-by-level / ideal = "
            f"{times['levels'] / times['ideal']:.2f}"
        )
    finally:
        for db in databases:
            drop_database(admin, db)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
