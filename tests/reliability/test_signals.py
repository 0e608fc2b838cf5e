"""Ctrl-C and SIGTERM, sent to real runs against a real PostgreSQL: what stops, what stays, what is printed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from conftest import Monorepo, plain
from migratekit import interrupts

SLOW = "-- Migration: {v}\nCREATE TABLE IF NOT EXISTS t{n} (id int);\nSELECT pg_sleep({s});\n"


def start(repo: Monorepo, *args: str, terminal: int | None = None) -> subprocess.Popen[str]:
    """`invoke ARGS` in a process of its own, its output piped (or, with `terminal`, as on a terminal that wide)."""
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE")}
    if terminal is not None:
        env.update(TTY_COMPATIBLE="1", TERM="xterm-256color")
    return subprocess.Popen(
        [sys.executable, "-m", "invoke", *args],
        cwd=repo.root,
        env={**env, **repo.env, "COLUMNS": str(terminal or 200)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(url: str, condition: str, give_up: float = 30.0, any_database: bool = False) -> None:
    """Poll pg_stat_activity until a session in `url`'s database (or, with any_database, in any) matches
    `condition` (a WHERE clause). Other suites share the server: their runners sleep in the same queries."""
    where = condition if any_database else f"datname = current_database() AND ({condition})"
    deadline = time.monotonic() + give_up
    with psycopg.connect(url, autocommit=True) as conn:
        while not conn.execute(f"SELECT count(*) FROM pg_stat_activity WHERE {where}").fetchone()[0]:
            assert time.monotonic() < deadline, f"no session matched {condition}"
            time.sleep(0.05)


def advisory_locks(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database())"
        ).fetchone()[0]


@pytest.fixture
def slow_repo(monorepo: Callable[..., Monorepo]) -> Monorepo:
    repo = monorepo({"slow": {}})
    repo.migration("slow", "001_init.sql", SLOW.format(v="001_init", n=1, s=0))
    repo.migration("slow", "002_wait.sql", SLOW.format(v="002_wait", n=2, s=4))
    repo.migration("slow", "003_wait.sql", SLOW.format(v="003_wait", n=3, s=3))
    return repo


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_cancels_the_migration_in_progress_and_starts_nothing_more(
    slow_repo: Monorepo, sig: signal.Signals, code: int
) -> None:
    url = slow_repo.env["SLOW_DATABASE_URL"]
    proc = start(slow_repo, "migrate-all", "--json")
    wait_for(url, "application_name = 'migratekit' AND query LIKE '%pg_sleep(4)%' AND state = 'active'")
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr
    (service,) = json.loads(stdout)["services"]
    assert service["outcome"] == "interrupted"
    assert [a["version"] for a in service["applied"]] == ["001_init"]
    assert f"interrupted by {sig.name}: 002_wait.sql was cancelled and rolled back" in service["failure"]["message"]
    assert slow_repo.query("slow", "SELECT version FROM schema_migrations") == [("001_init",)]
    assert slow_repo.query("slow", "SELECT to_regclass('t2'), to_regclass('t3')") == [(None, None)]
    wait_for(url, "true")  # the runner's own session is gone and holds no lock
    assert advisory_locks(url) == 0


@pytest.mark.parametrize("terminal", [None, 80], ids=["piped", "80-columns"])
def test_ctrl_c_without_json_prints_the_summary_and_exits_130(slow_repo: Monorepo, terminal: int | None) -> None:
    url = slow_repo.env["SLOW_DATABASE_URL"]
    proc = start(slow_repo, "migrate-all", terminal=terminal)
    wait_for(url, "application_name = 'migratekit' AND query LIKE '%pg_sleep(4)%' AND state = 'active'")
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stdout + stderr
    assert "Traceback" not in stderr, stderr
    assert ("\x1b[" in stdout) is (terminal is not None)  # colour only on a terminal
    lines = plain(stdout).splitlines()
    (row,) = [line for line in lines if line.startswith("│ slow ")]
    cells = [cell.strip() for cell in row.split("│")[1:-1]]  # service, applied now, already, pending, time, outcome
    assert cells[:3] + cells[-1:] == ["slow", "1", "0", "interrupted"], row
    said = " ".join(" ".join(lines).split())  # a terminal wraps long lines
    assert (
        "slow: services/slow/migrations/002_wait.sql:3: "
        "interrupted by SIGINT: 002_wait.sql was cancelled and rolled back" in said
    )
    assert "slow: applied 001_init before it stopped (kept)" in said
    assert slow_repo.query("slow", "SELECT version FROM schema_migrations") == [("001_init",)]


def test_ctrl_c_while_waiting_for_another_runners_lock(slow_repo: Monorepo) -> None:
    url = slow_repo.env["SLOW_DATABASE_URL"]
    with psycopg.connect(url, autocommit=True) as holder:
        key = "hashtextextended('migratekit:' || current_database() || ':' || 'schema_migrations', 0)"
        holder.execute(f"SELECT pg_advisory_lock({key})")
        proc = start(slow_repo, "migrate", "slow", "--lock-wait", "120")
        wait_for(url, "application_name = 'migratekit' AND query LIKE '%pg_try_advisory_lock%'")
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)  # far less than the 120 s it would wait
    assert proc.returncode == 130, stdout + stderr
    assert "interrupted by SIGINT while waiting for the migration lock" in stdout
    assert slow_repo.query("slow", "SELECT to_regclass('public.t1')") == [(None,)]  # nothing ran


def test_a_signal_while_waiting_for_the_server_says_so_not_that_it_retried_for_the_whole_wait(
    slow_repo: Monorepo,
) -> None:
    """migrate-all --wait 60 stopped by SIGTERM after a second or two said "cannot connect … (retried for 60s)",
    as if the server had been given the whole minute, and nothing of the interrupt."""
    slow_repo.env["SLOW_DATABASE_URL"] = "postgresql://postgres@127.0.0.1:1/slow"  # nothing listens there
    proc = start(slow_repo, "migrate-all", "--wait", "60")
    time.sleep(2)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 143, stdout + stderr
    assert "interrupted by SIGTERM while waiting for postgresql://postgres@127.0.0.1:1/slow" in stdout, stdout
    assert "retried for 60s" not in stdout + stderr and "Traceback" not in stderr


def test_ctrl_c_to_the_python_runner_prints_no_traceback(slow_repo: Monorepo) -> None:
    url = slow_repo.env["SLOW_DATABASE_URL"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "migratekit", "migrate", "--dir", "services/slow/migrations", "--url", url],
        cwd=slow_repo.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(url, "application_name = 'migratekit' AND query LIKE '%pg_sleep(4)%' AND state = 'active'")
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "Traceback" not in stderr, stderr
    assert "002_wait.sql was cancelled and rolled back" in stderr
    assert slow_repo.query("slow", "SELECT version FROM schema_migrations") == [("001_init",)]


def test_sigterm_to_verify_leaves_no_throwaway_database(slow_repo: Monorepo, pg_server) -> None:
    slow_repo.env["MIGRATEKIT_SCRATCH_URL"] = pg_server.admin_url
    proc = start(slow_repo, "verify")
    wait_for(pg_server.admin_url, "datname LIKE 'mk_verify_slow_%' AND query LIKE '%pg_sleep(4)%'", any_database=True)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 143 and "Traceback" not in stderr, stderr
    assert "interrupted by SIGTERM" in stderr
    with psycopg.connect(pg_server.admin_url) as conn:
        assert conn.execute("SELECT count(*) FROM pg_database WHERE datname LIKE 'mk_verify_slow_%'").fetchone() == (0,)


@pytest.mark.parametrize(("sig", "code", "json_flag"), [(signal.SIGINT, 130, False), (signal.SIGTERM, 143, True)])
def test_a_signal_during_a_rollback_rolls_its_down_part_back_and_says_interrupted(
    monorepo: Callable[..., Monorepo], sig: signal.Signals, code: int, json_flag: bool
) -> None:
    """R2: the down part in progress is cancelled and rolled back with its row; the exit is 128 + the signal."""
    repo = monorepo({"g": {"tracking_table": "migratekit.schema_migrations"}})
    repo.migration("g", "000001_one.up.sql", "CREATE TABLE IF NOT EXISTS t1 (id int);\n")
    repo.migration("g", "000001_one.down.sql", "DROP TABLE IF EXISTS t1;\nSELECT pg_sleep(20);\n")
    assert repo.invoke("migrate-all").returncode == 0
    url = repo.env["G_DATABASE_URL"]
    proc = start(repo, "rollback", "g", *(["--json"] if json_flag else []))
    wait_for(url, "application_name = 'migratekit' AND query LIKE '%pg_sleep(20)%' AND state = 'active'")
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == code, stdout + stderr
    assert "Traceback" not in stderr
    said = f"interrupted by {sig.name}: 000001_one.down.sql was cancelled and rolled back"
    if json_flag:
        result = json.loads(stdout)
        assert result["outcome"] == "interrupted" and said in result["failure"]["message"]
    else:
        assert "interrupted" in stdout and said in stdout + stderr
    assert repo.query("g", "SELECT version FROM migratekit.schema_migrations") == [("000001_one",)]
    assert repo.query("g", "SELECT to_regclass('t1') IS NOT NULL") == [(True,)]
    assert advisory_locks(url) == 0


def test_ctrl_c_while_a_rollback_waits_for_the_lock_says_nothing_was_rolled_back(
    monorepo: Callable[..., Monorepo],
) -> None:
    repo = monorepo({"g": {"tracking_table": "migratekit.schema_migrations"}})
    repo.migration("g", "000001_one.up.sql", "CREATE TABLE IF NOT EXISTS t1 (id int);\n")
    repo.migration("g", "000001_one.down.sql", "DROP TABLE IF EXISTS t1;\n")
    assert repo.invoke("migrate-all").returncode == 0
    url = repo.env["G_DATABASE_URL"]
    with psycopg.connect(url, autocommit=True) as holder:
        key = "hashtextextended('migratekit:' || current_database() || ':' || 'migratekit.schema_migrations', 0)"
        holder.execute(f"SELECT pg_advisory_lock({key})")
        proc = start(repo, "rollback", "g", "--lock-wait", "60")
        wait_for(url, "application_name = 'migratekit' AND query LIKE '%pg_try_advisory_lock%'")
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stdout + stderr
    assert "interrupted by SIGINT while waiting for the migration lock" in stdout + stderr
    assert "None" not in stdout + stderr and "nothing was rolled back" in stdout + stderr
    assert repo.query("g", "SELECT version FROM migratekit.schema_migrations") == [("000001_one",)]


def _workers(pid: int) -> list[int]:
    """The processes `pid` has started (the audit's pool), as the kernel lists them."""
    try:
        return [
            int(c)
            for t in os.listdir(f"/proc/{pid}/task")
            for c in open(f"/proc/{pid}/task/{t}/children").read().split()
        ]
    except OSError:
        return []


@pytest.mark.skipif(
    not os.path.isdir("/proc/self/task") or (os.cpu_count() or 1) < 2,
    reason="needs Linux's /proc and two cores: the pool",
)
@pytest.mark.parametrize(
    ("sig", "group", "code"), [(signal.SIGINT, True, 130), (signal.SIGTERM, False, 143)], ids=["ctrl-c", "sigterm"]
)
def test_an_audit_interrupted_while_its_workers_parse_stops_at_once_and_says_so(
    tmp_path, sig: signal.Signals, group: bool, code: int
) -> None:
    """Ctrl-C reaches the whole process group (the workers too), a SIGTERM the audit alone (a container's stop):
    either way the audit exits 128 + the signal, saying it was interrupted, and leaves no worker behind."""
    table = "CREATE TABLE IF NOT EXISTS t{n} (id bigint PRIMARY KEY, name text NOT NULL, at timestamptz);\n"
    services = {f"s{i:02d}": {} for i in range(32)}  # above PARALLEL_FROM: parsed by a pool of workers
    for name in services:
        directory = tmp_path / "services" / name / "migrations"
        directory.mkdir(parents=True)
        for version in ("001_init", "002_more"):
            sql = "".join(table.format(n=n) for n in range(300))
            (directory / f"{version}.sql").write_text(f"-- Migration: {version}\n{sql}")
    (tmp_path / "workspace.yaml").write_text(json.dumps({"version": 1, "services": services}))
    (tmp_path / "tasks.py").write_text("from migratekit.tasks import ns\n\n__all__ = ['ns']\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "invoke", "audit", "--json", "--no-cache"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, as a shell gives a command it runs
    )
    deadline = time.monotonic() + 60
    while not _workers(proc.pid):
        assert proc.poll() is None and time.monotonic() < deadline, "the audit started no worker"
        time.sleep(0.005)
    (os.killpg if group else os.kill)(proc.pid, sig)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == code, stderr
    assert f"migratekit: interrupted by {sig.name}" in stderr and "Traceback" not in stderr, stderr
    assert stdout == ""  # no report of part of the services
    left = subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True, text=True).stdout.split()
    assert left == [], f"workers left running: {left}"


def heavy_monorepo(root: Path, services: int = 24) -> None:
    """Services whose lint takes a while (300 tables a file), without workspace.yaml: what init reads."""
    table = "CREATE TABLE IF NOT EXISTS t{n} (id bigint PRIMARY KEY, name text NOT NULL, at timestamptz);\n"
    for i in range(services):
        directory = root / "services" / f"s{i:02d}" / "migrations"
        directory.mkdir(parents=True)
        for version in ("001_init", "002_more"):
            sql = "".join(table.format(n=n) for n in range(300))
            (directory / f"{version}.sql").write_text(f"-- Migration: {version}\n{sql}")
    (root / "tasks.py").write_text("from migratekit.tasks import ns\n\n__all__ = ['ns']\n")


def test_ctrl_c_while_init_reads_the_services_is_130_saying_so_and_writes_nothing(tmp_path: Path) -> None:
    """init had no handler of its own: Invoke made a Ctrl-C exit 1 without a word."""
    heavy_monorepo(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "invoke", "init"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    lint = tmp_path / ".migratekit" / "cache" / "lint"
    deadline = time.monotonic() + 60
    while not (lint.is_dir() and any(lint.glob("*.json"))):  # the first service read: init is under way
        assert proc.poll() is None and time.monotonic() < deadline, "init read no service"
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stdout + stderr
    assert stderr == "migratekit: interrupted by SIGINT\n", stderr
    assert not (tmp_path / "workspace.yaml").exists() and "declared" not in stdout


def test_ctrl_c_during_inits_audit_puts_workspace_yaml_and_the_baseline_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`init --write-baseline` writes workspace.yaml, then audits for the baseline: a Ctrl-C there left
    workspace.yaml written and the next `init --write-baseline` refused (it exists)."""
    from migratekit.checks import run

    heavy_monorepo(tmp_path, services=2)
    repo = Monorepo(tmp_path, {})

    def interrupted(*_: object, **__: object) -> None:
        assert (tmp_path / "workspace.yaml").is_file()  # written by now
        raise interrupts.Interrupted(signal.SIGINT)

    monkeypatch.setattr(run, "audit", interrupted)
    done = repo.invoke("init", "--write-baseline", "base.json")
    assert done.returncode == 130, done.stdout + done.stderr
    assert done.stderr == "migratekit: interrupted by SIGINT; workspace.yaml is as it was\n", done.stderr
    assert not (tmp_path / "workspace.yaml").exists() and not (tmp_path / "base.json").exists()
    monkeypatch.undo()
    assert repo.invoke("init", "--write-baseline", "base.json").returncode == 0
