"""Benchmark: `invoke audit --json` against squawk linting the same SQL files, in one run.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python bench/audit.py [--services 200] [--migrations 50] [--rounds 3]

No database is needed. Prints one table: wall time, CPU time (user + system, the process and its children: a
loaded machine disturbs it less than wall time) and peak memory of each command, the median of the rounds, the
three commands taking turns within each round.
"""

from __future__ import annotations

import argparse
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

COLD_TARGET, WARM_TARGET = 0.6, 0.15  # x squawk's wall time on the same files, in the same run


def timed(cmd: list[str], cwd: Path) -> tuple[float, float, float]:
    """(wall seconds, user + system CPU seconds, peak RSS in MB) of one command, from GNU time; exit 0 or 1."""
    with tempfile.NamedTemporaryFile(suffix=".time") as stats:
        result = subprocess.run(
            [TIME, "-f", "%e %U %S %M", "-o", stats.name, *cmd],
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        if result.returncode not in (0, 1):
            raise SystemExit(f"{' '.join(cmd[:3])} failed:\n{result.stderr.decode()[-2000:]}")
        wall, user, system, rss = Path(stats.name).read_text().split()[-4:]
    return float(wall), float(user) + float(system), int(rss) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=200)
    parser.add_argument("--migrations", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mk-bench-audit-"))
    try:
        root = work / "repo"
        build(root, args.services, args.migrations)
        files = sorted(str(p) for p in root.glob("services/*/migrations/*.sql"))
        audit = [str(BIN / "invoke"), "audit", "--json"]
        commands = {
            "migratekit audit --json --no-cache (cold, all rules)": [*audit, "--no-cache"],
            "migratekit audit --json (warm: unchanged files)": audit,
            "squawk (its default rules)": [str(BIN / "squawk"), *files],
        }
        timed(audit, root)  # fills the cache: the warm rows read it
        runs: dict[str, list[tuple[float, float, float]]] = {label: [] for label in commands}
        for turn in range(args.rounds):  # each command takes each turn: a slow minute falls on all three
            labels = list(commands)[turn % 3 :] + list(commands)[: turn % 3]
            for label in labels:
                runs[label].append(timed(commands[label], root))
        rows = [(label, *(statistics.median(r[i] for r in runs[label]) for i in range(3))) for label in commands]
        table = Table(title=f"audit: {args.services} services x {args.migrations} migrations ({len(files)} files)")
        for column in (f"run (median of {args.rounds})", "seconds", "CPU s", "peak MB"):
            table.add_column(column, justify="left" if column.startswith("run") else "right")
        for label, seconds, cpu, rss in rows:
            table.add_row(label, f"{seconds:.2f}", f"{cpu:.2f}", f"{rss:.0f}")
        console = Console()
        console.print(table)
        (_, cold, cold_cpu, cold_rss), (_, warm, warm_cpu, _), (_, squawk, squawk_cpu, _) = rows
        console.print(
            f"cold / squawk = {cold / squawk:.2f} (target <= {COLD_TARGET}); "
            f"warm / squawk = {warm / squawk:.2f} (target <= {WARM_TARGET}); "
            f"CPU: cold / squawk = {cold_cpu / squawk_cpu:.2f}, warm / squawk = {warm_cpu / squawk_cpu:.2f}; "
            f"peak {cold_rss:.0f} MB (target < 300 MB)"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
