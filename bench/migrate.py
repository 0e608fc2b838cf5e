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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
from rich.console import Console
from rich.table import Table

from migratekit.database.embedded import create_database, drop_database
from migratekit.model.identity import with_database

sys.path.insert(0, str(Path(__file__).parent))
from synth import build  # noqa: E402

BIN = Path(sys.executable).parent


def compiled() -> None:
    """Every measured process imports migratekit from bytecode, as from an installed wheel: in a checkout whose
    sources changed since their .pyc files were written, with PYTHONDONTWRITEBYTECODE set (some CI images and
    shells set it), each run would compile every changed module again, milliseconds no user pays."""
    import compileall

    import migratekit

    compileall.compile_dir(Path(migratekit.__file__).parent, quiet=2)


compiled()
PSQL_FLAGS = ["-X", "-q", "-v", "ON_ERROR_STOP=1"]  # no ~/.psqlrc, quiet, stop at the first error
TIME = shutil.which("time", path="/usr/bin:/bin") or sys.exit(
    "bench needs GNU time (/usr/bin/time: apt-get install time)"
)
# The floor of an up-to-date run: a process that imports what any `invoke` task with psycopg imports,
# then only connects to each database and reads its tracking rows, --jobs at a time (argv: jobs, URLs).
# No tasks.py, no workspace, no files, no plan: what is left of migrate-all when nothing is pending.
UP_TO_DATE_FLOOR = """
import sys
from concurrent.futures import ThreadPoolExecutor
import invoke.main
import psycopg
def read(url):
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT version, checksum FROM public.schema_migrations").fetchall()
with ThreadPoolExecutor(int(sys.argv[1])) as pool:
    list(pool.map(read, sys.argv[2:]))
"""
UP_PAIRS = 5
UP_TO_DATE_TARGET = 1.3  # x that floor: an up-to-date run should cost little beyond connecting and reading the rows


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
    parser.add_argument("--rounds", type=int, default=3, help="from-empty rounds; the table shows medians")
    parser.add_argument(
        "--no-per-file", action="store_true", help="skip the last row (a psql per file: minutes on a busy machine)"
    )
    args = parser.parse_args()
    admin = os.environ.get("MIGRATEKIT_SCRATCH_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    work = Path(tempfile.mkdtemp(prefix="mk-bench-"))
    names = build(work / "repo", args.services, args.migrations)
    files = {n: sorted((work / "repo" / "services" / n / "migrations").glob("*.sql")) for n in names}
    tag = uuid.uuid4().hex[:6]
    databases: list[str] = []

    def database(kind: str, name: str) -> str:
        db = f"mkb_{tag}_{kind}_{name}"
        create_database(admin, db)
        databases.append(db)
        return with_database(admin, db)

    def settle() -> None:
        """Each measured run starts with no dirty buffers left by the databases just created."""
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("CHECKPOINT")

    dbmate_dirs = work / "dbmate"
    for name in names:  # dbmate wants its own header in each file
        (dbmate_dirs / name).mkdir(parents=True)
        for f in files[name]:
            (dbmate_dirs / name / f.name).write_text("-- migrate:up\n" + f.read_text() + "\n-- migrate:down\n")
    for name in names:  # the floor: each file in its own transaction, no runner, no tracking
        (work / f"{name}.sql").write_text("".join(f"BEGIN;\n{f.read_text()}\n;\nCOMMIT;\n" for f in files[name]))
    invoke = [str(BIN / "invoke"), "migrate-all", "--jobs", str(args.jobs), "--json"]

    def dbmate(url: str, name: str) -> tuple[float, float]:
        return timed(
            [
                str(BIN / "dbmate"),
                "--url",
                _url(url),
                "--migrations-dir",
                str(dbmate_dirs / name),
                "--migrations-table",
                "dbmate_migrations",
                "--no-dump-schema",
                "up",
            ]
        )

    psql = shutil.which("psql")

    def floor(psql: str, urls: dict[str, str]) -> float:
        """Every service's SQL through psql, --jobs services at a time: what the server itself needs."""
        started = time.perf_counter()
        with ThreadPoolExecutor(args.jobs) as pool:
            list(pool.map(lambda n: timed([psql, *PSQL_FLAGS, "-d", urls[n], "-f", str(work / f"{n}.sql")]), names))
        return time.perf_counter() - started

    kit_empty: list[tuple[float, float]] = []
    dbmate_empty: list[tuple[float, float]] = []
    floors: list[float] = []
    up_to_date: list[tuple[float, float]] = []
    up_to_date_ratios: list[float] = []

    def one_round(index: int) -> None:
        """Each peer on fresh databases; the order rotates, so each goes first once.

        Order matters here: creating files just after many were removed is slower (ext4 skips
        recently freed inodes), and every round starts by creating and ends by dropping databases.
        """
        kit_env = {f"{n.upper()}_DATABASE_URL": database(f"kit{index}", n) for n in names}
        dbmate_urls = {n: database(f"dbmate{index}", n) for n in names}
        floor_urls = {n: database(f"floor{index}", n) for n in names} if psql else {}
        peers: list[Callable[[], None]] = [
            lambda: kit_empty.append(timed(invoke, kit_env, work / "repo")),
            lambda: dbmate_empty.append(many(lambda n: dbmate(dbmate_urls[n], n), names)),
        ]
        if psql:
            peers.append(lambda: floors.append(floor(psql, floor_urls)))
        for peer in peers[index % len(peers) :] + peers[: index % len(peers)]:
            settle()
            peer()
        if index == 0:
            # Up to date against its floor in alternating pairs: the machine's speed drifts within a minute.
            floor_command = [sys.executable, "-c", UP_TO_DATE_FLOOR, str(args.jobs), *kit_env.values()]
            pairs = [(timed(invoke, kit_env, work / "repo"), timed(floor_command, {}, work)) for _ in range(UP_PAIRS)]
            up_to_date_ratios.extend(sorted(kit[0] / floor[0] for kit, floor in pairs))
            up_to_date.append(_median([kit for kit, _ in pairs]))
            up_to_date.append(many(lambda n: dbmate(dbmate_urls[n], n), names))
            up_to_date.append(_median([floor for _, floor in pairs]))
        while databases:
            drop_database(admin, databases.pop())

    try:
        for index in range(args.rounds):
            one_round(index)
        rows = [
            (f"migratekit migrate-all, from empty (median of {args.rounds})", *_median(kit_empty)),
            (f"migratekit migrate-all, up to date (median of {UP_PAIRS}, alternating with its floor)", *up_to_date[0]),
            (f"dbmate up, service by service, from empty (median of {args.rounds})", *_median(dbmate_empty)),
            ("dbmate up, service by service, up to date", *up_to_date[1]),
            (
                f"floor, up to date: import Invoke and psycopg, connect and read each tracking table, {args.jobs} "
                f"at a time (median of {UP_PAIRS})",
                *up_to_date[2],
            ),
        ]
        if psql:
            rows.append(
                (
                    f"floor: psql, a transaction per file, {args.jobs} services at a time, no tracking "
                    f"(median of {args.rounds})",
                    sorted(floors)[len(floors) // 2],
                    float("nan"),
                )
            )

            def per_file(name: str) -> tuple[float, float]:
                return many(
                    lambda f: timed([psql, *PSQL_FLAGS, "-1", "-d", psql_urls[name], "-f", f]),
                    [str(f) for f in files[name]],
                )

            if not args.no_per_file:
                psql_urls = {n: database("psql", n) for n in names}
                settle()
                rows.append(("psql -1 -f per file (no tracking), from empty", *many(per_file, names)))

        table = Table(title=f"migrate: {args.services} services x {args.migrations} migrations, jobs={args.jobs}")
        for column in ("run", "seconds", "peak MB (one process)"):
            table.add_column(column, justify="left" if column == "run" else "right")
        for label, seconds, rss in rows:
            table.add_row(label, f"{seconds:.2f}", "" if rss != rss else f"{rss:.0f}")
        Console(width=120).print(table)
        ratio = rows[0][1] / rows[2][1]
        floor_note = (
            f"migrate-all from empty / the floor = {rows[0][1] / rows[5][1]:.2f} (target <= 1.05); "
            f"the floor / dbmate = {rows[5][1] / rows[2][1]:.2f}; "
            if psql
            else ""
        )
        Console(width=120).print(
            f"{floor_note}migrate-all from empty / dbmate from empty = {ratio:.2f} (ahead of dbmate: below 1); "
            f"up to date {rows[1][1]:.2f} s = {rows[1][1] / rows[4][1]:.2f} x its floor, median of the pairs' ratios "
            f"{up_to_date_ratios[UP_PAIRS // 2]:.2f} (target <= {UP_TO_DATE_TARGET}); peak "
            f"{max(rows[0][2], rows[1][2]):.0f} MB (target < 150 MB)"
        )
    finally:
        for db in databases:
            drop_database(admin, db)
        shutil.rmtree(work, ignore_errors=True)


def _median(runs: list[tuple[float, float]]) -> tuple[float, float]:
    """The median time, and the peak memory of all runs."""
    return sorted(runs)[len(runs) // 2][0], max(rss for _, rss in runs)


def _url(conninfo: str) -> str:
    """dbmate takes URLs only; the scratch server's conninfo as one."""
    from psycopg.conninfo import conninfo_to_dict

    p = conninfo_to_dict(conninfo)
    auth = p.get("user", "postgres") + (f":{p['password']}" if p.get("password") else "")
    return f"postgres://{auth}@{p.get('host', '127.0.0.1')}:{p.get('port', 5432)}/{p['dbname']}?sslmode=disable"


if __name__ == "__main__":
    main()
