"""`python -m migratekit migrate` and the example Python service that migrates before it serves."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psycopg
import pytest

from conftest import REPO, with_secret
from migratekit import run_migrations


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "migratekit", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=60,
    )


def test_cli_migrates_a_directory_and_reports_json(scratch_db: str, tmp_path: Path) -> None:
    mdir = tmp_path / "migrations"
    mdir.mkdir()
    (mdir / "001_init.sql").write_text("CREATE TABLE IF NOT EXISTS a (id int);")
    first = cli("migrate", "--dir", str(mdir), "--url", scratch_db)
    assert first.returncode == 0 and "applied 001_init" in first.stdout
    again = cli("migrate", "--dir", str(mdir), "--json", env={"DATABASE_URL": scratch_db})
    assert json.loads(again.stdout)["outcome"] == "up_to_date"


@pytest.mark.server_auth
def test_cli_failure_exits_1_and_hides_the_password(scratch_db: str, tmp_path: Path) -> None:
    mdir = tmp_path / "migrations"
    mdir.mkdir()
    (mdir / "001_init.sql").write_text("SELECT 1/0;")
    url, secret = with_secret(scratch_db)
    result = cli("migrate", "--dir", str(mdir), "--url", url)
    assert result.returncode == 1
    assert "001_init.sql:1: division by zero (SQLSTATE 22012)" in result.stderr
    assert secret not in result.stdout + result.stderr


def test_cli_bad_arguments_exit_2(tmp_path: Path) -> None:
    assert cli("migrate", "--dir", str(tmp_path / "nope"), "--url", "postgresql://x@h/db").returncode == 2
    no_url = cli("migrate", "--dir", str(tmp_path), env={"DATABASE_URL": ""})
    assert no_url.returncode == 2 and "no database URL" in no_url.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_enrichment(url: str, port: int) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "PORT": str(port),
        "PYTHONPATH": str(REPO / "services" / "enrichment" / "src"),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "enrichment"], env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )


def test_enrichment_refuses_to_start_when_its_migrations_fail(scratch_db: str) -> None:
    # battles has not migrated: enrichment's 001_init references public.battles and must fail.
    service = start_enrichment(scratch_db, free_port())
    output, _ = service.communicate(timeout=60)
    assert service.returncode == 1
    assert "Failed to start: 001_init.sql:" in output and 'relation "public.battles" does not exist' in output
    assert "listening" not in output


def test_enrichment_migrates_then_serves(scratch_db: str) -> None:
    run_migrations(scratch_db, REPO / "services" / "battles" / "migrations")
    port = free_port()
    service = start_enrichment(scratch_db, port)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/battles/value", timeout=2) as response:
                    assert json.load(response) == []
                break
            except OSError:
                assert service.poll() is None, service.stdout.read()
                assert time.monotonic() < deadline, "enrichment never listened"
                time.sleep(0.1)
    finally:
        service.terminate()
        service.wait(timeout=10)
    with psycopg.connect(scratch_db) as conn:
        versions = conn.execute("SELECT version FROM enrichment.schema_migrations ORDER BY 1").fetchall()
    assert versions == [("001_init",), ("002_add_battle_value_view",)]


def test_a_url_that_is_not_one_is_a_usage_error_without_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "migrations").mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "migratekit", "migrate", "--dir", str(tmp_path / "migrations"), "--url", "not a url"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "is not a PostgreSQL URL" in result.stderr and "Traceback" not in result.stderr
    version = subprocess.run([sys.executable, "-m", "migratekit", "--version"], capture_output=True, text=True)
    assert version.stdout.startswith("python -m migratekit ")


def test_cli_applies_a_seed_file_whose_name_breaks_the_convention_in_its_number_order(
    scratch_db: str, tmp_path: Path
) -> None:
    """002_AddB.sql (MK101 names it) is still the second migration: 001 runs first, as the seed's runner does."""
    mdir = tmp_path / "migrations"
    mdir.mkdir()
    (mdir / "001_init.sql").write_text("CREATE TABLE IF NOT EXISTS a (id int);\n")
    (mdir / "002_AddB.sql").write_text("ALTER TABLE a ADD COLUMN IF NOT EXISTS b int;\n")
    result = cli("migrate", "--dir", str(mdir), "--url", scratch_db, "--json")
    assert result.returncode == 0, result.stderr
    assert [a["version"] for a in json.loads(result.stdout)["applied"]] == ["001_init", "002_AddB"]


def test_cli_refuses_a_directory_that_mixes_formats_with_a_message_and_exit_2(scratch_db: str, tmp_path: Path) -> None:
    mdir = tmp_path / "migrations"
    mdir.mkdir()
    (mdir / "001_a.up.sql").write_text("CREATE TABLE IF NOT EXISTS a (id int);\n")
    (mdir / "002_b.sql").write_text("-- migrate:up\nCREATE TABLE IF NOT EXISTS b (id int);\n")
    result = cli("migrate", "--dir", str(mdir), "--url", scratch_db)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("migratekit: ") and "mixes migration formats" in result.stderr
    with psycopg.connect(scratch_db) as conn:  # nothing changed
        assert conn.execute("SELECT to_regclass('public.schema_migrations'), to_regclass('a')").fetchone() == (
            None,
            None,
        )


def test_cli_format_reads_the_files_as_workspace_yamls_format_does(scratch_db: str, tmp_path: Path) -> None:
    """--format dbmate with a tracking table of its own: the up part only, recorded as migrate-all records it."""
    mdir = tmp_path / "migrations"
    mdir.mkdir()
    (mdir / "20240101000000_users.sql").write_text(
        "-- migrate:up\nCREATE TABLE IF NOT EXISTS users (id int);\n-- migrate:down\nDROP TABLE users;\n"
    )
    args = ("migrate", "--dir", str(mdir), "--url", scratch_db, "--tracking-table", "mk.schema_migrations")
    result = cli(*args, "--format", "dbmate")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "applied: 1 applied, 0 already applied"
    with psycopg.connect(scratch_db) as conn:
        assert conn.execute("SELECT version FROM mk.schema_migrations").fetchall() == [("20240101000000_users",)]
        assert conn.execute("SELECT to_regclass('public.users') IS NOT NULL").fetchone() == (True,)
    contradicting = cli(*args, "--format", "updown")
    assert contradicting.returncode == 2 and "--format updown was given" in contradicting.stderr
    bad = cli(*args, "--format", "liquibase")
    assert bad.returncode == 2 and "--format: invalid choice: 'liquibase'" in bad.stderr
    assert "Traceback" not in contradicting.stderr + bad.stderr


def test_every_flag_of_every_task_has_help_and_one_long_spelling() -> None:
    """One CLI convention: no task's flag lacks a help line, and no flag has an automatic short letter (Invoke's
    gave one option different letters in different tasks)."""
    import inspect

    from migratekit.tasks import ns

    for name, each in ns.tasks.items():
        params = [p for p in inspect.signature(each.body).parameters if p != "c"]
        assert [p for p in params if p not in (each.help or {})] == [], name
        assert each.auto_shortflags is False, name
        assert {len(n) for argument in each.get_arguments() for n in argument.names if len(n) == 1} == set(), name


@pytest.mark.parametrize(
    "argv",
    [["new-migration", "--help"], ["new-migration", "-h"], ["migrate", "--help"], ["migrate", "battles", "--help"]],
)
def test_a_task_followed_by_help_prints_that_tasks_help_and_runs_nothing(argv: list[str]) -> None:
    """`invoke migrate --help` is how people ask: Invoke's parser took --help for SERVICE's value (migrate ran on a
    service named --help) or first missed the positionals (new-migration's SERVICE DESCRIPTION, exit 2)."""
    result = subprocess.run(
        [sys.executable, "-m", "invoke", *argv], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"Usage: inv[oke] [--core-opts] {argv[0]} [--options]"), result.stdout
    assert "Docstring:" in result.stdout and result.stderr == ""
