"""A task whose stdout cannot take its report (`> report.txt` on a full disk, a quota): one line saying so, exit
1, never a traceback, and what the task did stays done (a migration applied is recorded)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import write_tree

FULL = Path("/dev/full")  # every write: ENOSPC


def with_full_stdout(root: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    with FULL.open("w", encoding="utf-8") as stdout:
        return subprocess.run(
            [sys.executable, "-m", "invoke", *args],
            cwd=root,
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            env={"PATH": "/usr/bin:/bin", "SHOP_DATABASE_URL": url},
            timeout=120,
        )


@pytest.mark.skipif(not FULL.exists(), reason="no /dev/full here (Linux's device whose every write is ENOSPC)")
@pytest.mark.parametrize(
    "args",
    [
        ["migrate-all"],
        ["migrate-all", "--json"],
        ["status"],
        ["status", "--json"],
        ["audit"],
        ["audit", "--json"],
        ["rules", "--json"],
        ["graph"],
        ["services"],
        ["drift", "--json"],
    ],
    ids=" ".join,
)
def test_a_report_to_a_full_disk_is_one_line_and_exit_1(
    tmp_path: Path, new_db: Callable[[], str], args: list[str]
) -> None:
    """Every task ended in a traceback of rich's or json's write, and a buffered report in Python's own
    "Exception ignored" at exit."""
    root = write_tree(
        tmp_path / "repo",
        {
            "tasks.py": "from migratekit.tasks import ns\n",
            "services/shop/migrations/001_init.sql": "-- Migration: 001_init\nCREATE TABLE IF NOT EXISTS t (id int);\n",
        },
    )
    url = new_db()
    done = with_full_stdout(root, url, *args)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr, done.stderr
    assert done.stderr.endswith(
        "migratekit: stdout could not be written (No space left on device); the command ran to its end and its "
        "report is lost: free space where the output goes, or send it elsewhere\n"
    ), done.stderr
    if args[0] == "migrate-all":
        status = subprocess.run(
            [sys.executable, "-m", "invoke", "status", "--json"],
            cwd=root,
            capture_output=True,
            text=True,
            env={"PATH": "/usr/bin:/bin", "SHOP_DATABASE_URL": url},
            timeout=120,
        )
        assert '"state": "applied"' in status.stdout, status.stdout
