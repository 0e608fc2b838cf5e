"""Hostile and careless input as a table: each case's input, the command, its exit code and the message
it must print; and after it, the files and the database are exactly as before (or, for a failed
migration, as before that migration). A password in any case appears in no output."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from conftest import write_tree
from migratekit.database.tracking import create_statements, row
from migratekit.model.migration import seed_checksum

SECRET = "Zq9-hunter2"
INIT = "-- Migration: 001_init\nCREATE TABLE IF NOT EXISTS a (id int);\n"
BASE = {
    "tasks.py": "from migratekit.tasks import ns\n",
    "services/svc/migrations/001_init.sql": INIT,
    "services/svc/migrations/README.md": "how to add; how to roll back\n",
}


@dataclass(frozen=True)
class Case:
    name: str
    command: tuple[str, ...]
    code: int
    message: str  # printed on stdout or stderr
    files: dict[str, str | None] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)  # {db} is the case's database URL, {outside} a path
    links: dict[str, str] = field(default_factory=dict)  # link -> target ({outside} or relative)


CASES = [
    Case(
        "dangling link",
        ("migrate-all",),
        2,
        "which does not exist; remove the link",
        links={"services/svc/migrations/002_gone.sql": "002_gone_target.sql"},
    ),
    Case(
        "editor lock file is no migration",
        ("migrate-all", "--dry-run"),
        0,
        "1 ",
        files={
            "services/svc/migrations/.#001_init.sql": None,
            "services/svc/migrations/.000_scratch.sql": "DROP TABLE a;",
        },
    ),
    Case(
        "migrations linked out of the repo",
        ("migrate-all",),
        2,
        "outside the repository",
        links={"services/ext/migrations": "{outside}"},
    ),
    Case(
        "description with a newline",
        ("new-migration", "svc", "add x\nDROP TABLE a CASCADE;\n--"),
        2,
        "must be one line",
    ),
    Case("description of 300 characters", ("new-migration", "svc", "x" * 300), 2, "keep it under 200"),
    Case(
        "tracking table name too long",
        ("migrate-all",),
        2,
        "longer than PostgreSQL's 63",
        files={"workspace.yaml": "version: 1\nservices:\n  svc: {tracking_table: " + "t" * 60 + "}\n"},
    ),
    Case(
        "two services read one URL variable",
        ("migrate-all",),
        2,
        "a-b and a_b both read $A_B_DATABASE_URL",
        files={"services/a-b/migrations/001_init.sql": INIT, "services/a_b/migrations/001_init.sql": INIT},
    ),
    Case(
        "mysql URL",
        ("migrate-all",),
        2,
        "the scheme mysql:// is not postgresql://",
        env={"SVC_DATABASE_URL": f"mysql://root:{SECRET}@db/x"},
    ),
    Case(
        "jdbc URL",
        ("services",),
        2,
        "jdbc:postgresql:// is not postgresql://",
        env={"SVC_DATABASE_URL": f"jdbc:postgresql://u:{SECRET}@db:5432/x"},
    ),
    Case(
        "port that is not a number",
        ("migrate-all",),
        2,
        "port 'notaport'",
        env={"SVC_DATABASE_URL": f"postgresql://app:{SECRET}@127.0.0.1:notaport/db"},
    ),
    Case(
        "port out of range",
        ("migrate-all",),
        2,
        "port '99999'",
        env={"SVC_DATABASE_URL": f"postgresql://app:{SECRET}@127.0.0.1:99999/db"},
    ),
    Case(
        "a raw # in the password",
        ("services", "--json"),
        0,
        "postgresql://u:***@",
        env={"SVC_DATABASE_URL": f"postgresql://u:Pa#{SECRET}@127.0.0.1:5432/x"},
    ),
    Case(
        "a multi-host URL",
        ("services",),
        0,
        "u:***@h1:5432,h2:5432",
        env={"SVC_DATABASE_URL": f"postgresql://u:{SECRET}@h1:5432,h2:5432/x"},
    ),
    Case(
        "a bad percent escape",
        ("services",),
        2,
        "invalid percent-encoded token",
        env={"SVC_DATABASE_URL": f"postgresql://u:%zz{SECRET}@h/x"},
    ),
    Case("--root that does not exist", ("audit", "--root", "/nonexistent/repo"), 2, "no such directory"),
    Case("a root without services", ("migrate-all", "--root", "{outside}"), 2, "no services in"),
    Case("--jobs 0", ("migrate-all", "--jobs", "0"), 2, "--jobs 0: must be at least 1"),
    Case("--wait abc", ("migrate", "svc", "--wait", "abc"), 2, "--wait 'abc': give a number"),
    Case(
        "a file name that spoofs an annotation",
        ("audit", "--github"),
        1,
        "001_x%2Ctitle=spoofed%3A%3Ay.sql",
        files={"services/svc/migrations/001_x,title=spoofed::y.sql": "SELECT 1;\n"},
    ),
    Case(
        "COPY from the runner",
        ("migrate-all",),
        1,
        "cannot read COPY data from the runner",
        files={"services/svc/migrations/002_load.sql": "CREATE TABLE IF NOT EXISTS b (id int);\nCOPY b FROM STDIN;\n"},
    ),
]


def snapshot(root: Path) -> dict[str, bytes | str]:
    return {
        p.relative_to(root).as_posix(): os.readlink(p) if p.is_symlink() else p.read_bytes()
        for p in sorted(root.rglob("*"))
        if (p.is_file() or p.is_symlink()) and "__pycache__" not in p.parts and ".migratekit" not in p.parts
    }


def tables(url: str) -> list[tuple[str, str]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2"
        ).fetchall()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_input(tmp_path: Path, scratch_db: str, case: Case) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = write_tree(tmp_path / "repo", {**BASE, **{k: v for k, v in case.files.items() if v is not None}})
    for link, target in case.links.items():
        (root / link).parent.mkdir(parents=True, exist_ok=True)
        (root / link).symlink_to(target.format(outside=outside))
    for relative, content in case.files.items():
        if content is None:  # a dangling editor lock file
            (root / relative).symlink_to("user@host.12345:1700000000")
    with psycopg.connect(scratch_db, autocommit=True) as conn:  # the database before: 001 applied and recorded
        conn.execute("CREATE TABLE a (id int)")
        for statement in create_statements("schema_migrations"):
            conn.execute(statement)
        conn.execute(row("schema_migrations", "001_init", seed_checksum(INIT.encode()), sql.Literal(1)))
    files_before, tables_before = snapshot(root), tables(scratch_db)
    env = {**os.environ, "COLUMNS": "200", "SVC_DATABASE_URL": scratch_db}
    env.update({k: v.format(db=scratch_db) for k, v in case.env.items()})
    args = [a.format(outside=outside) for a in case.command]
    result = subprocess.run(
        [sys.executable, "-m", "invoke", *args], cwd=root, env=env, capture_output=True, text=True, timeout=120
    )
    output = result.stdout + result.stderr
    assert (result.returncode, case.message in output) == (case.code, True), output
    assert "Traceback" not in output and SECRET not in output
    assert snapshot(root) == files_before
    assert tables(scratch_db) == tables_before
