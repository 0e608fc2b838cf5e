"""Benchmark: `invoke audit --json` against squawk linting the same SQL files, in one run.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python bench/audit.py [--services 200] [--migrations 50] [--rounds 3]

No database is needed. Prints one table: wall time, CPU time (user + system, the process and its children: a
loaded machine disturbs it less than wall time) and peak memory of each command, the median of the rounds, the
commands taking turns within each round. Two floors sit beside them: what any audit built on Invoke and pglast
pays before its first rule (cold: parsing every file on every core), and before its first cached finding
(warm: starting, a stat of every file, reading the cache, writing the findings as JSON).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).parent))
from migrate import BIN, TIME  # noqa: E402
from synth import build  # noqa: E402

from migratekit.checks.rule import all_rules  # noqa: E402

COLD_TARGET, WARM_TARGET = 0.6, 0.15  # x squawk's wall time on the same files, in the same run

# The cold floor: Python and Invoke starting, then each file parsed by pglast into the tree the rules read
# (parse_sql_json, json.loads), one forked process per core. No rule, no workspace, no output.
COLD_FLOOR = """
import json, os, sys
from concurrent.futures import ProcessPoolExecutor
import invoke.main
from pglast import parser
def parse(paths):
    for path in paths:
        with open(path) as f:
            json.loads(parser.parse_sql_json(f.read()))
files = [line for line in open(sys.argv[1]).read().splitlines()]
cores = os.cpu_count() or 1
with ProcessPoolExecutor(cores) as pool:
    list(pool.map(parse, [files[i::cores] for i in range(cores)]))
"""
# The warm floor: Python and Invoke starting, a stat of every file (to know it is unchanged), every cache entry
# read, and each finding it holds written as one line of JSON. No workspace, no wiring, no rule.
WARM_FLOOR = """
import json, os, sys
import invoke.main
for path in open(sys.argv[1]).read().splitlines():
    os.stat(path)
with open(sys.argv[3]) as f:
    rules = json.load(f)  # code -> [severity, hint]
encode = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": ")).encode
lines = []
for name in sorted(os.listdir(sys.argv[2])):
    with open(os.path.join(sys.argv[2], name)) as f:
        data = json.load(f)
    for code, path, line, message in data["findings"]:
        severity, hint = rules[code]
        lines.append(encode({"code": code, "severity": severity, "service": data["service"], "path": path,
                             "line": line, "message": message, "hint": hint}))
sys.stdout.write('{\\n  "findings": [\\n    ' + ",\\n    ".join(lines) + "\\n  ]\\n}\\n")
"""


def timed(cmd: list[str], cwd: Path, ok: tuple[int, ...] = (0, 1)) -> tuple[float, float, float]:
    """(wall seconds, user + system CPU seconds, peak RSS in MB) of one command, from GNU time; an audit exits 0
    or 1 (findings), a floor 0."""
    with tempfile.NamedTemporaryFile(suffix=".time") as stats:
        result = subprocess.run(
            [TIME, "-f", "%e %U %S %M", "-o", stats.name, *cmd],
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        if result.returncode not in ok:
            raise SystemExit(f"{' '.join(cmd[:3])} failed:\n{result.stderr.decode()[-2000:]}")
        wall, user, system, rss = Path(stats.name).read_text().split()[-4:]
    return float(wall), float(user) + float(system), int(rss) / 1024


def stat_keys(root: Path) -> set[str]:
    """The cache entries a warm audit of `root` reads: each service's key from its files' names, sizes and times."""
    from migratekit.checks import cache
    from migratekit.model.workspace import relative
    from migratekit.model.workspace_file import load_workspace

    workspace = load_workspace(root)
    return {
        cache.stat_key(service, relative(workspace.root, service.migrations_dir))
        for service in workspace.services.values()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=200)
    parser.add_argument("--migrations", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--sources",
        type=int,
        default=None,
        help="make each service the example's TypeScript service with this many route modules (some 240 lines "
        "each), so that the wiring audit reads real code: squawk reads only the SQL",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mk-bench-audit-"))
    try:
        root = work / "repo"
        build(root, args.services, args.migrations, sources=args.sources)
        files = sorted(str(p) for p in root.glob("services/*/migrations/*.sql"))
        listed = work / "files.txt"
        listed.write_text("\n".join(files))
        audit = [str(BIN / "invoke"), "audit", "--json"]
        timed(audit, root)  # fills the cache: the warm rows read it
        warm_entries = work / "warm-entries"  # the entries a warm audit reads (the stat keys'), for its floor
        warm_entries.mkdir()
        for entry in (root / ".migratekit" / "cache" / "lint").glob("*.json"):
            if json.loads(entry.read_text())["key"] in stat_keys(root):
                shutil.copy(entry, warm_entries)
        rules = work / "rules.json"
        rules.write_text(json.dumps({r.code: [str(r.severity), r.hint] for r in all_rules()}))
        commands = {
            "migratekit audit --json --no-cache (cold, all rules)": [*audit, "--no-cache"],
            "migratekit audit --json (warm: unchanged files)": audit,
            "squawk (its default rules)": [str(BIN / "squawk"), *files],
            "floor, cold: Invoke + pglast parsing each file, a process a core": [
                sys.executable,
                "-c",
                COLD_FLOOR,
                str(listed),
            ],
            "floor, warm: Invoke, a stat a file, the cache read, its findings as JSON": [
                sys.executable,
                "-c",
                WARM_FLOOR,
                str(listed),
                str(warm_entries),
                str(rules),
            ],
        }
        runs: dict[str, list[tuple[float, float, float]]] = {label: [] for label in commands}
        for turn in range(args.rounds):  # each command takes each turn: a slow minute falls on all three
            labels = list(commands)[turn % len(commands) :] + list(commands)[: turn % len(commands)]
            for label in labels:
                runs[label].append(timed(commands[label], root, (0,) if label.startswith("floor") else (0, 1)))
        rows = [(label, *(statistics.median(r[i] for r in runs[label]) for i in range(3))) for label in commands]
        code = "" if args.sources is None else f", each with {args.sources + 6} TypeScript files"
        table = Table(
            title=f"audit: {args.services} services x {args.migrations} migrations ({len(files)} files){code}"
        )
        for column in (f"run (median of {args.rounds})", "seconds", "CPU s", "peak MB"):
            table.add_column(column, justify="left" if column.startswith("run") else "right")
        for label, seconds, cpu, rss in rows:
            table.add_row(label, f"{seconds:.2f}", f"{cpu:.2f}", f"{rss:.0f}")
        console = Console()
        console.print(table)
        (_, cold, cold_cpu, cold_rss), (_, warm, warm_cpu, _), (_, squawk, squawk_cpu, _) = rows[:3]
        (_, cold_floor, _, _), (_, warm_floor, _, _) = rows[3:]
        console.print(
            f"cold / squawk = {cold / squawk:.2f} (target <= {COLD_TARGET}); "
            f"warm / squawk = {warm / squawk:.2f} (target <= {WARM_TARGET}); "
            f"CPU: cold / squawk = {cold_cpu / squawk_cpu:.2f}, warm / squawk = {warm_cpu / squawk_cpu:.2f}; "
            f"the floors / squawk: cold {cold_floor / squawk:.2f}, warm {warm_floor / squawk:.2f}; "
            f"cold / its floor = {cold / cold_floor:.2f}, warm / its floor = {warm / warm_floor:.2f}; "
            f"peak {cold_rss:.0f} MB (target < 300 MB)"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
