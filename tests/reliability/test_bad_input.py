"""Hostile and malformed input: exit code 2 or a finding, a message naming the place, no change anywhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

INIT = "-- Migration: 001_init\nCREATE TABLE IF NOT EXISTS a (id int);\n"


def make(tmp_path: Path, workspace: str | None = None, files: dict[str, bytes] | None = None) -> Path:
    root = tmp_path / "repo"
    migrations = root / "services" / "svc" / "migrations"
    migrations.mkdir(parents=True)
    (root / "tasks.py").write_text("from migratekit.tasks import ns\n")
    for name, data in (files or {"001_init.sql": INIT.encode()}).items():
        (migrations / name).write_bytes(data)
    if workspace is not None:
        (root / "workspace.yaml").write_bytes(workspace.encode() if isinstance(workspace, str) else workspace)
    return root


def invoke(root: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "SVC_DATABASE_URL": url, "COLUMNS": "200"},
    )


def untouched(url: str) -> bool:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone() == (0,)


BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
    for p, c in zip("abcdefghijkl", "bcdefghijklm", strict=True)  # 9 ** 13 strings if expanded: 108 aliases
)


@pytest.mark.parametrize(
    ("workspace", "message"),
    [
        (BOMB, "YAML aliases"),
        ("version: 1\nservices: {svc: {}}\n" + "# padding\n" * 200_000, "larger than 1000000 bytes"),
        ("version: 1\nservices:\n  svc: !!python/object/apply:os.system ['true']\n", "invalid YAML"),
        ("version: 1\nservices:\n  svc: {depends_on: [svc]}\n", "svc depends on itself"),
        ("version: 1\nservices:\n  ../svc: {}\n", "a service name is lower-case letters"),
        ("version: 1\nservices:\n  svc: {tracking_table: 'x; DROP TABLE a; --'}\n", "tracking_table"),
        ("version: 1\nservices:\n  svc: {database_url_env: 'X; rm -rf /'}\n", "is not an environment variable name"),
        ("\udcff".encode("utf-8", "surrogateescape").decode("latin-1"), "not UTF-8"),
    ],
)
def test_hostile_workspace_files_exit_2_and_change_nothing(
    tmp_path: Path, scratch_db: str, workspace: str, message: str
) -> None:
    root = make(tmp_path)
    path = root / "workspace.yaml"
    if message == "not UTF-8":
        path.write_bytes(b"version: 1\nservices:\n  svc: {language: caf\xe9}\n")
    else:
        path.write_text(workspace)
    for task in ("migrate-all", "audit", "services"):
        result = invoke(root, scratch_db, task)
        assert result.returncode == 2, (task, result.stdout, result.stderr)
        assert message in result.stderr and "workspace.yaml" in result.stderr
        assert "Traceback" not in result.stderr
    assert untouched(scratch_db)


def test_a_symlink_out_of_the_repository_is_refused(tmp_path: Path, scratch_db: str) -> None:
    outside = tmp_path / "outside.sql"
    outside.write_text("CREATE TABLE IF NOT EXISTS stolen (id int);\n")
    root = make(tmp_path)
    (root / "services/svc/migrations/002_link.sql").symlink_to(outside)
    result = invoke(root, scratch_db, "migrate-all")
    assert result.returncode == 2 and "002_link.sql: a symbolic link to" in result.stderr
    assert untouched(scratch_db)


def test_an_enormous_migration_is_refused_before_anything_runs(tmp_path: Path, scratch_db: str) -> None:
    root = make(tmp_path, files={"001_init.sql": INIT.encode(), "002_huge.sql": b"-- x\n" * 4_200_000})
    result = invoke(root, scratch_db, "migrate-all")
    assert result.returncode == 2 and "002_huge.sql" in result.stderr and "COPY" in result.stderr
    assert untouched(scratch_db)


def test_binary_empty_and_injection_named_files_are_findings_and_stay_inert(tmp_path: Path, scratch_db: str) -> None:
    files = {
        "001_init.sql": INIT.encode(),
        "002_binary.sql": bytes(range(256)) * 4,
        "003_empty.sql": b"",
        "004_x'); DROP TABLE a; --.sql": b"SELECT 1;\n",
    }
    root = make(tmp_path, files=files)
    audit = json.loads(invoke(root, scratch_db, "audit", "--json").stdout)
    codes = {(f["code"], f["path"].rsplit("/", 1)[-1]) for f in audit["findings"]}
    assert {
        ("MK107", "002_binary.sql"),
        ("MK109", "003_empty.sql"),
        ("MK101", "004_x'); DROP TABLE a; --.sql"),
    } <= codes
    # The seed's runner would apply the oddly named file too; its name is data, never SQL.
    (root / "services/svc/migrations/002_binary.sql").unlink()
    (root / "services/svc/migrations/003_empty.sql").unlink()  # an empty file is never applied (test_apply)
    assert invoke(root, scratch_db, "migrate-all").returncode == 0
    with psycopg.connect(scratch_db) as conn:
        assert conn.execute("SELECT to_regclass('a') IS NOT NULL").fetchone() == (True,)
        versions = [v for (v,) in conn.execute("SELECT version FROM schema_migrations ORDER BY 1")]
    assert versions == ["001_init", "004_x'); DROP TABLE a; --"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any directory: permissions cannot make one unreadable")
def test_an_unreadable_migrations_directory(tmp_path: Path, scratch_db: str) -> None:
    root = make(tmp_path)
    (root / "services/svc/migrations").chmod(0)
    try:
        result = invoke(root, scratch_db, "migrate-all")
    finally:
        (root / "services/svc/migrations").chmod(0o755)
    assert result.returncode == 2 and "cannot be read" in result.stderr
