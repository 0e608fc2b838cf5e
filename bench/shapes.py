"""Benchmark: two shapes the 40 x 25 run does not have, peers and the floor beside migratekit in one run.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python bench/shapes.py [--long 10000] [--rounds 3] [--chain 10] [--independent 60] [--per-service 25]

1. One database with many migrations (a long-lived service): migrate-all from empty against the
   floor (one psql session, each file in its own transaction, no tracking), the floor with
   migratekit's settings and tracking row in each transaction, and dbmate; then up to date.
   Medians of rotated rounds, each runner on a fresh database after a CHECKPOINT. Then the cost per
   migration without the machine's drift: rotated rounds of short runs (migratekit in process, the same
   with one migration to a message, psql); and at scale: chunks added to a database already holding
   them all, migratekit and psql alternating on it.
2. An uneven graph, one chain of services beside many independent ones: the makespan of migrate-all
   (critical path first) against the ideal (the chain alone), against level-by-level scheduling
   (each wave waits for the one before), and against the same services with no dependencies (the
   machine's throughput, which bounds any schedule), all in process through the same engine.

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
from collections.abc import Callable, Sequence
from pathlib import Path
from statistics import median_high
from unittest import mock

import psycopg
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).parent))
from migrate import BIN, PSQL_FLAGS, _median, _url, timed  # noqa: E402
from synth import SHAPES, build, write_migrations  # noqa: E402

from migratekit.database import execution  # noqa: E402
from migratekit.database.apply import apply_service  # noqa: E402
from migratekit.database.embedded import create_database, drop_database  # noqa: E402
from migratekit.database.message import tracking_row, transaction_prefix  # noqa: E402
from migratekit.database.orchestrate import migrate_all  # noqa: E402
from migratekit.model import contract  # noqa: E402
from migratekit.model.identity import with_database  # noqa: E402
from migratekit.model.migration import Migration, load_migrations  # noqa: E402
from migratekit.model.settings import SERVICE_DEFAULTS, RunOptions  # noqa: E402
from migratekit.model.workspace import Workspace  # noqa: E402
from migratekit.model.workspace_file import load_workspace  # noqa: E402

LONG_ROWS = {
    "migratekit": "migrate-all from empty",
    "floor": "the floor: one psql session, a transaction per file",
    "floor_rows": "  migratekit's transactions sent by psql: settings, file, tracking row, one message a file",
    "dbmate": "dbmate up, same files",
    "up_to_date": "migrate-all, up to date",
}


def fresh_database(admin: str, databases: list[str], settle: bool = True) -> str:
    """A new database's URL (the caller drops everything in `databases`), after a CHECKPOINT unless `settle`
    is off: each timed run starts without the previous run's dirty pages to flush."""
    name = f"mkb_{uuid.uuid4().hex[:8]}"
    create_database(admin, name)
    databases.append(name)
    if settle:
        checkpoint(admin)
    return with_database(admin, name)


def checkpoint(admin: str) -> None:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("CHECKPOINT")


def floor_script(migrations: Sequence[Migration]) -> str:
    """The floor's SQL: each file in its own transaction, no tracking, as psql runs it."""
    return "".join(f"BEGIN;\n{m.sql}\nCOMMIT;\n" for m in migrations)


def long_service(
    work: Path, count: int, shape: str, admin: str, databases: list[str], rounds: int, pairs: int
) -> dict[str, tuple[float, float]]:
    """Medians over `rounds` of fresh databases, the order rotated so each runner goes first once; then `pairs`
    of whole runs, migratekit and the floor back to back (ABBA).

    Whole runs here take about 17 s or about 34 s, whichever runner it is (the disk's flush latency has
    phases): a pair whose two runs took within 30% of each other ran in one phase, and only such pairs compare
    the runners ("phase_ratio"; by hand, 8 of 10 pairs: median 0.965, against 0.42-0.44 for the other two).
    """
    root = work / "long"
    migrations = root / "services" / "ledger" / "migrations"
    write_migrations(migrations, count, shape)
    (root / "tasks.py").write_text("from migratekit.tasks import ns\n")
    loaded = load_migrations(migrations)
    (work / "floor.sql").write_text(floor_script(loaded))
    # migratekit's exact work for the server at no client cost: each file's message as migratekit sends it
    # (BEGIN, its settings, the file, its tracking row, COMMIT), composed by migratekit's own functions and
    # sent by psql as one message (statements joined by \\;), against the floor's three messages per file.
    with psycopg.connect(admin) as conn:
        head = transaction_prefix(SERVICE_DEFAULTS.lock_timeout, SERVICE_DEFAULTS.statement_timeout).split(";\n")[:-1]
        tracked = [contract.create_table_sql("schema_migrations") + ";\n"]
        for m in loaded:
            row = tracking_row(conn, "schema_migrations", m).strip().removesuffix(";")
            tracked.append(" \\;\n".join([*head, *(s.text for s in m.statements), row, "COMMIT"]) + ";\n")
    (work / "tracked.sql").write_text("".join(tracked))
    dbmate_dir = work / "dbmate-long"
    dbmate_dir.mkdir()
    for m in loaded:
        (dbmate_dir / m.filename).write_text("-- migrate:up\n" + m.sql + "\n-- migrate:down\n")

    psql = [shutil.which("psql") or "psql", *PSQL_FLAGS]
    invoke = [str(BIN / "invoke"), "migrate-all", "--json"]
    runners: dict[str, Callable[[str], tuple[float, float]]] = {
        "migratekit": lambda url: timed(invoke, {"LEDGER_DATABASE_URL": url}, root),
        "floor": lambda url: timed([*psql, "-d", url, "-f", str(work / "floor.sql")]),
        "floor_rows": lambda url: timed([*psql, "-d", url, "-f", str(work / "tracked.sql")]),
        "dbmate": lambda url: timed(
            [str(BIN / "dbmate"), "--url", _url(url), "--migrations-dir", str(dbmate_dir), "--no-dump-schema", "up"]
        ),
    }
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in [*runners, "up_to_date"]}
    order = list(runners)
    for index in range(rounds):
        for name in order[index % len(order) :] + order[: index % len(order)]:
            url = fresh_database(admin, databases)
            runs[name].append(runners[name](url))
            if name == "migratekit":
                runs["up_to_date"].append(timed(invoke, {"LEDGER_DATABASE_URL": url}, root))
        while databases:
            drop_database(admin, databases.pop())
    medians = {name: _median(times) for name, times in runs.items()}
    ratios = [kit[0] / floor[0] for kit, floor in zip(runs["migratekit"], runs["floor"], strict=True)]
    together = []
    for index in range(pairs):
        pair = {}
        for name in ("migratekit", "floor") if index % 2 == 0 else ("floor", "migratekit"):
            pair[name] = runners[name](fresh_database(admin, databases))[0]
            drop_database(admin, databases.pop())
        together.append(pair["migratekit"] / pair["floor"])
    one_phase = [r for r in together if max(r, 1 / r) < 1.3]
    return {
        **medians,
        "ratio": (median_high(ratios), 0.0),
        "phase_ratio": (median_high(one_phase) if one_phase else float("nan"), len(one_phase)),
    }


def memory_growth(
    work: Path, counts: Sequence[int], shapes: Sequence[str], admin: str, databases: list[str]
) -> list[tuple[str, int, float, float]]:
    """(shape, migrations, seconds, peak MB) of the real `invoke migrate-all` from empty, for each count: the peak
    must grow with the files' own text and one row of results each, not with what a run keeps of each one."""
    rows = []
    invoke = [str(BIN / "invoke"), "migrate-all"]
    for shape in shapes:
        for count in counts:
            root = work / f"memory-{shape}-{count}"
            write_migrations(root / "services" / "ledger" / "migrations", count, shape)
            (root / "tasks.py").write_text("from migratekit.tasks import ns\n")
            seconds, peak = timed(invoke, {"LEDGER_DATABASE_URL": fresh_database(admin, databases)}, root)
            rows.append((shape, count, seconds, peak))
            drop_database(admin, databases.pop())
            shutil.rmtree(root)
    return rows


def paired(work: Path, admin: str, databases: list[str], pairs: int, chunk: int) -> dict[str, float]:
    """Per migration, with the machine's drift taken out: `pairs` rounds of short runs of the first `chunk` files,
    each on a fresh database, the order rotating: migratekit in this process (no start-up), the same with one
    migration to a message (execution.BATCH = 1), and psql.

    Whole runs of 10,000 files drift by up to 2x between rounds (the disk's flush latency moves), more
    than the 2% asked; short runs a second apart see the same machine.
    """
    loaded = load_migrations(work / "long" / "services" / "ledger" / "migrations")[:chunk]
    (work / "chunk.sql").write_text(floor_script(loaded))
    psql = [shutil.which("psql") or "psql", *PSQL_FLAGS]
    times: dict[str, list[float]] = {"kit": [], "one": [], "floor": []}
    client: list[float] = []  # migratekit's own CPU (user + system) per run: the time the server waits for it

    def kit(batch: int) -> float:
        url, cpu, started = fresh_database(admin, databases), time.process_time(), time.perf_counter()
        with mock.patch.object(execution, "BATCH", batch):
            assert apply_service("ledger", url, loaded).ok
        seconds = time.perf_counter() - started
        if batch == execution.BATCH:
            client.append(time.process_time() - cpu)
        return seconds

    def floor() -> float:
        url = fresh_database(admin, databases)
        return timed([*psql, "-d", url, "-f", str(work / "chunk.sql")])[0]

    runners: dict[str, Callable[[], float]] = {
        "kit": lambda: kit(execution.BATCH),
        "one": lambda: kit(1),
        "floor": floor,
    }
    order = list(runners)
    for index in range(pairs):
        for name in order[index % 3 :] + order[: index % 3]:
            times[name].append(runners[name]())
        while databases:
            drop_database(admin, databases.pop())

    def ratio(name: str) -> float:
        return median_high(k / f for k, f in zip(times[name], times["floor"], strict=True))

    return {
        "kit_ms": median_high(times["kit"]) / chunk * 1000,
        "one_ms": median_high(times["one"]) / chunk * 1000,
        "floor_ms": median_high(times["floor"]) / chunk * 1000,
        "ratio": ratio("kit"),
        "one_ratio": ratio("one"),
        "client_us": median_high(client) / chunk * 1e6,
    }


def at_scale(
    work: Path, count: int, shape: str, admin: str, databases: list[str], rounds: int, chunk: int
) -> dict[str, float]:
    """Per migration where a long-lived service is, drift taken out: one database holding `count` migrations, then
    `rounds` pairs of `chunk` more, migratekit (in process) and psql alternating on that same database, so both see
    the same catalog size and the same minute of the machine. Each migratekit chunk has the cost of an up-to-date
    apply just before it (reading and comparing `count` rows, paid once per run) taken out and reported apart.
    """
    mdir = work / "long" / "services" / "ledger" / "migrations"
    loaded = list(load_migrations(mdir))
    url = fresh_database(admin, databases)
    assert apply_service("ledger", url, loaded).ok
    psql = [shutil.which("psql") or "psql", *PSQL_FLAGS]
    kit: list[float] = []
    floor: list[float] = []
    plan: list[float] = []
    number = count
    for index in range(rounds * 2):
        write_migrations(work / f"more{index}", chunk, shape, start=number + 1)
        more = list(load_migrations(work / f"more{index}"))
        number += chunk
        if (index % 2 == 0) == (index % 4 < 2):  # kit, floor, floor, kit, kit, floor, ...: each goes first as often
            started = time.perf_counter()
            assert apply_service("ledger", url, loaded).outcome == "up to date"
            plan.append(time.perf_counter() - started)
            loaded += more
            started = time.perf_counter()
            assert apply_service("ledger", url, loaded).ok
            kit.append(time.perf_counter() - started - plan[-1])
        else:
            (work / "more.sql").write_text(floor_script(more))
            floor.append(timed([*psql, "-d", url, "-f", str(work / "more.sql")])[0])
    ratios = [k / f for k, f in zip(kit, floor, strict=True)]
    return {
        "kit_ms": median_high(kit) / chunk * 1000,
        "floor_ms": median_high(floor) / chunk * 1000,
        "ratio": median_high(ratios),
        "plan_s": median_high(plan),
    }


def uneven(
    work: Path, chain: int, independent: int, per_service: int, admin: str, databases: list[str], jobs: int, rounds: int
) -> dict[str, float]:
    """Medians over `rounds`, the four runs rotated in each: the chain alone (the ideal), the whole graph with the
    critical path first, level by level, and the same services with no dependencies (the machine's throughput,
    which no schedule can beat either). Each run drops its databases when done, and "ratio" is the median of each
    round's makespan / max(ideal, no dependencies): a round's runs see the same minute of the machine, whose speed
    drifts by 2x between minutes (medians of separate rounds gave 1.15-1.23 where alternating pairs gave 0.98-1.05)."""
    names = [f"c{i:02d}" for i in range(chain)] + [f"i{i:02d}" for i in range(independent)]
    build(work / "uneven", len(names), per_service, names, chain=lambda i: i < chain)
    build(work / "flat", len(names), per_service, names, chain=lambda i: False)
    graph, flat = load_workspace(work / "uneven"), load_workspace(work / "flat")

    def run(workspace: Workspace, waves: list[list[str]]) -> float:
        urls = {name: fresh_database(admin, databases, settle=False) for wave in waves for name in wave}
        checkpoint(admin)
        started = time.perf_counter()
        for wave in waves:
            results = migrate_all(workspace, wave, urls, RunOptions(jobs=jobs))
            assert all(r.ok for r in results), [r.failure for r in results if not r.ok]
        seconds = time.perf_counter() - started
        while databases:
            drop_database(admin, databases.pop())
        return seconds

    runs: dict[str, Callable[[], float]] = {
        "ideal": lambda: run(graph, [names[:chain]]),
        "critical": lambda: run(graph, [names]),
        "levels": lambda: run(graph, [list(wave) for wave in graph.groups()]),
        "unconstrained": lambda: run(flat, [names]),
    }
    times: dict[str, list[float]] = {name: [] for name in runs}
    order = list(runs)
    for index in range(rounds):
        for name in order[index % len(order) :] + order[: index % len(order)]:
            times[name].append(runs[name]())
    rounds_of = zip(times["critical"], times["ideal"], times["unconstrained"], strict=True)
    ratios = [critical / max(ideal, unconstrained) for critical, ideal, unconstrained in rounds_of]
    return {**{name: median_high(values) for name, values in times.items()}, "ratio": median_high(ratios)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--long", type=int, default=10000)
    parser.add_argument("--shape", choices=SHAPES, default="seed", help="the long service's migrations")
    parser.add_argument(
        "--memory", default="1000,3000,10000", help="migration counts of the peak-memory runs (comma-separated)"
    )
    parser.add_argument("--memory-shapes", default=",".join(SHAPES), help="shapes of the peak-memory runs")
    parser.add_argument("--only-memory", action="store_true", help="the peak-memory runs alone")
    parser.add_argument("--chain", type=int, default=10)
    parser.add_argument("--independent", type=int, default=60)
    parser.add_argument("--per-service", type=int, default=25)
    parser.add_argument("--rounds", type=int, default=3, help="rotated rounds of each measurement (medians)")
    parser.add_argument("--jobs", type=int, default=4, help="services at a time in the uneven graph")
    parser.add_argument("--whole-pairs", type=int, default=4, help="ABBA pairs of whole runs against the floor")
    parser.add_argument("--pairs", type=int, default=10, help="rotated rounds for the per-migration cost")
    parser.add_argument("--chunk", type=int, default=500, help="files in each of those runs")
    parser.add_argument("--scale-rounds", type=int, default=4, help="pairs of chunks added to the long database")
    parser.add_argument("--scale-chunk", type=int, default=500, help="files in each of those chunks")
    args = parser.parse_args()
    admin = os.environ.get("MIGRATEKIT_SCRATCH_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    work = Path(tempfile.mkdtemp(prefix="mk-bench-shapes-"))
    databases: list[str] = []
    console = Console(width=120)
    try:
        counts = [int(count) for count in args.memory.split(",") if count]
        memory = memory_growth(work, counts, args.memory_shapes.split(","), admin, databases)
        table = Table(title="peak memory of invoke migrate-all from empty, one database (GNU time, max RSS)")
        for column in ("shape", "migrations", "seconds", "peak MB", "MB per 1,000 more"):
            table.add_column(column, justify="left" if column == "shape" else "right")
        for shape, count, seconds, peak in memory:
            first = next((c, p) for s, c, _, p in memory if s == shape)
            growth = "" if count == first[0] else f"{(peak - first[1]) / (count - first[0]) * 1000:.1f}"
            table.add_row(shape, str(count), f"{seconds:.1f}", f"{peak:.0f}", growth)
        console.print(table)
        console.print("targets: seed shape 10,000 under 150 MB, 30,000 under 200 MB (bench/shapes.py --memory 30000)")
        if args.only_memory:
            return
        times = long_service(work, args.long, args.shape, admin, databases, args.rounds, args.whole_pairs)
        table = Table(
            title=f"one database, {args.long} migrations of the {args.shape} shape "
            f"(median of {args.rounds} rotated rounds)"
        )
        for column in ("run", "seconds", "/ floor", "peak MB"):
            table.add_column(column, justify="left" if column == "run" else "right")
        floor = times["floor"][0]
        for key, label in LONG_ROWS.items():
            seconds, rss = times[key]
            table.add_row(label, f"{seconds:.2f}", f"{seconds / floor:.2f}", f"{rss:.0f}")
        console.print(table)
        console.print(
            f"from empty / floor = {times['migratekit'][0] / floor:.2f} (target <= 1.02), median of each round's "
            f"ratio {times['ratio'][0]:.2f} (the machine's speed drifts between rounds); from empty / migratekit's "
            f"messages by psql = {times['migratekit'][0] / times['floor_rows'][0]:.2f}; "
            f"up to date {times['up_to_date'][0]:.2f} s (target < 1 s); peak {times['migratekit'][1]:.0f} MB "
            "(target < 150 MB)"
        )
        phase, in_phase = times["phase_ratio"]
        console.print(
            f"whole runs back to back, {args.whole_pairs} ABBA pairs: {in_phase:.0f} ran in one phase of the machine "
            "(within 30% of each other), migratekit / the floor of those: "
            + (f"median {phase:.3f} (target <= 1.02)" if in_phase else "none to compare; run more pairs")
        )
        per = paired(work, admin, databases, args.pairs, args.chunk)
        start = times["up_to_date"][0]
        predicted = (start + args.long * per["kit_ms"] / 1000) / (args.long * per["floor_ms"] / 1000)
        console.print(
            f"per migration, {args.pairs} rotated rounds of {args.chunk}-file runs (migratekit in process): "
            f"migratekit {per['kit_ms']:.3f} ms (its own CPU {per['client_us']:.0f} us), "
            f"psql {per['floor_ms']:.3f} ms, median ratio {per['ratio']:.3f}; one migration to a message "
            f"{per['one_ms']:.3f} ms, median ratio {per['one_ratio']:.3f}; "
            f"whole run = start (as up to date, {start:.2f} s) + {args.long} x per migration: "
            f"{predicted:.3f} x the floor"
        )
        scale = at_scale(work, args.long, args.shape, admin, databases, args.scale_rounds, args.scale_chunk)
        predicted = (start + args.long * scale["kit_ms"] / 1000) / (args.long * scale["floor_ms"] / 1000)
        console.print(
            f"per migration at scale, on one database already holding {args.long}: {args.scale_rounds} pairs of "
            f"{args.scale_chunk}-file chunks, migratekit (in process) and psql alternating (ABBA): migratekit "
            f"{scale['kit_ms']:.3f} ms, psql {scale['floor_ms']:.3f} ms, median ratio {scale['ratio']:.3f} "
            f"(less an up-to-date apply before each chunk, {scale['plan_s']:.2f} s: reading and comparing the rows, "
            f"once a run); whole run = start + {args.long} x this: {predicted:.3f} x the floor"
        )
        while databases:
            drop_database(admin, databases.pop())
        graph = uneven(work, args.chain, args.independent, args.per_service, admin, databases, args.jobs, args.rounds)
        bound = max(graph["ideal"], graph["unconstrained"])
        ideal, critical, levels = graph["ideal"], graph["critical"], graph["levels"]
        console.print(
            f"uneven graph, median of {args.rounds} rotated rounds ({args.chain}-service chain + "
            f"{args.independent} independent, {args.per_service} migrations each, {args.jobs} at a time): "
            f"critical path first {critical:.2f} s, level by level {levels:.2f} s; the chain alone (ideal) "
            f"{ideal:.2f} s; the same services with no dependencies {graph['unconstrained']:.2f} s. "
            f"makespan / ideal = {critical / ideal:.2f}, level-by-level / ideal = {levels / ideal:.2f}; "
            f"makespan / max(ideal, no dependencies) = {critical / bound:.2f} of the medians, "
            f"{graph['ratio']:.2f} the median of each round's (target <= 1.1: no schedule beats the larger of the two)"
        )
    finally:
        for db in databases:
            drop_database(admin, db)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
