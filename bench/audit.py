"""Benchmark: `invoke audit --json` against squawk linting the same SQL files, in one run.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python bench/audit.py [--services 200] [--migrations 50]

No database is needed. Prints one table: wall time and peak memory of each command.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).parent))
from migrate import BIN, median  # noqa: E402
from synth import build  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=200)
    parser.add_argument("--migrations", type=int, default=50)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mk-bench-audit-"))
    try:
        root = work / "repo"
        build(root, args.services, args.migrations)
        files = sorted(str(p) for p in root.glob("services/*/migrations/*.sql"))
        audit = [str(BIN / "invoke"), "audit", "--json"]
        cold = median([*audit, "--no-cache"], {}, root, ok=(0, 1))
        median(audit, {}, root, ok=(0, 1))  # fills the cache: the rows below read it
        rows = [
            ("migratekit audit --json --no-cache (cold, all rules)", *cold),
            ("migratekit audit --json (warm: unchanged files)", *median(audit, {}, root, ok=(0, 1))),
            ("squawk (its default rules)", *median([str(BIN / "squawk"), *files], {}, root, ok=(0, 1))),
        ]
        table = Table(title=f"audit: {args.services} services x {args.migrations} migrations ({len(files)} files)")
        for column in ("run (median of 3)", "seconds", "peak MB"):
            table.add_column(column, justify="left" if column.startswith("run") else "right")
        for label, seconds, rss in rows:
            table.add_row(label, f"{seconds:.2f}", f"{rss:.0f}")
        console = Console()
        console.print(table)
        console.print(
            f"cold / squawk = {rows[0][1] / rows[2][1]:.2f} (target <= 0.7); "
            f"warm / squawk = {rows[1][1] / rows[2][1]:.2f} (target <= 0.2); "
            f"peak {rows[0][2]:.0f} MB (target < 300 MB)"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
