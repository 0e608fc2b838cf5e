"""One case per cause of the adversarial review's defects: the input, the command, the exit code, what the user
reads, and that nothing changed (no file written, no row, no table)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from conftest import Monorepo, write_tree

INIT = "CREATE TABLE IF NOT EXISTS t (id int);\n"
PAIR = {"000001_init.up.sql": INIT, "000001_init.down.sql": "DROP TABLE IF EXISTS t;\n"}


@dataclass(frozen=True)
class Case:
    cause: str
    files: dict[str, str]  # under the repository root (services/svc/migrations/... and workspace.yaml)
    command: str
    says: str  # a part of stderr
    code: int = 2
    absent: tuple[str, ...] = field(default=())  # paths (from the root) that must not exist afterwards


def seed(**extra: str) -> dict[str, str]:
    return {"services/svc/migrations/001_init.sql": INIT, **extra}


def go(**extra: str) -> dict[str, str]:
    return {**{f"services/svc/migrations/{n}": t for n, t in PAIR.items()}, **extra}


WORKSPACE = "version: 1\nservices:\n  svc: {language: go}\n"
CASES = [
    Case("R9", go(), "rollback svc --steps abc", "--steps 'abc': give a number without a fraction"),
    Case("R9", seed(), "new-service pay --port abc", "--port 'abc': give a number", absent=("services/pay",)),
    Case("R9", seed(), "new-service pay --port 70000", "--port 70000 is not a TCP port", absent=("services/pay",)),
    Case(
        "R10",
        seed(**{"workspace.yaml": 'version: 1\nservices:\n  svc: {language: sql, tracking_table: "tracked\\n"}\n'}),
        "migrate svc",
        "services.svc.tracking_table: 'tracked\\n' is not valid",
    ),
    Case(
        "R10",
        seed(**{"workspace.yaml": 'version: 1\nservices:\n  svc: {language: sql, database: "adb\\n"}\n'}),
        "migrate svc",
        "services.svc.database: 'adb\\n' is not valid",
    ),
    Case(
        "R10",
        seed(**{"workspace.yaml": 'version: 1\nservices:\n  svc: {language: sql, migrations: "migrations\\n"}\n'}),
        "services",
        "holds a control character",
    ),
    Case("R10", seed(), "new-service evil\n --lang python", "is not a valid service name", absent=("services/evil\n",)),
    Case(
        "R11",
        seed(
            **{
                "workspace.yaml": "version: 1\nservices:\n  svc: {language: sql, tracking_table: a.schema_migrations}\n"
                "  svc: {language: python}\n"
            }
        ),
        "services --json",
        "workspace.yaml:4: services.svc is given twice (first on line 3)",
    ),
    Case(
        "R11",
        seed(**{"workspace.yaml": "version: 1\nservices:\n  svc: {language: sql}\n  svc: {language: sql}\n"}),
        "init --update",
        "services.svc is given twice",
    ),
    Case(
        "R11",
        seed(**{"workspace.yaml": "version: 1\nservices:\n  svc: {language: sql}\n  svc: {language: sql}\n"}),
        "new-service zz",
        "services.svc is given twice",
        absent=("services/zz",),
    ),
    Case(
        "R3",
        go(**{"workspace.yaml": "version: 1\ndefaults: {format: seed}\nservices:\n  svc: {language: go}\n"}),
        "migrate-all",
        "workspace.yaml declares format: seed, but these files are written in another",
    ),
    Case(
        "R3",
        seed(**{"services/svc/migrations/002_b.sql": "-- migrate:up\nSELECT 1;\n-- migrate:down\nDROP TABLE t;\n"}),
        "migrate svc",
        "mixes migration formats",
    ),
    Case("R16", go(), "k8s-render --image-template {image}", "{service} is the only name it may use", absent=("k8s",)),
    Case("R12", seed(), "migrate svc --lock-wait nan", "--lock-wait nan: give a finite number"),
    Case("R9", go(), "rollback svc --steps 1_0", "--steps '1_0': give a number without a fraction"),  # int() reads 10
    Case("R9", seed(), "migrate-all --jobs \u0663", "--jobs '\u0663': give a number without a fraction"),
    Case("R12", seed(), "migrate-all --wait inf", "--wait inf: give a finite number"),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c.cause}-{c.command.split()[0]}-{i}" for i, c in enumerate(CASES)])
def test_bad_input_is_exit_2_with_a_message_and_changes_nothing(monorepo, case: Case) -> None:
    repo: Monorepo = monorepo({"svc": {"language": "go"}})
    write_tree(repo.root, {"workspace.yaml": WORKSPACE, **case.files})
    before = sorted(p.relative_to(repo.root).as_posix() for p in repo.root.rglob("*"))
    result = repo.invoke(*_argv(case.command))
    assert result.returncode == case.code, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert case.says in result.stderr, result.stderr
    after = sorted(p.relative_to(repo.root).as_posix() for p in repo.root.rglob("*") if ".migratekit" not in p.parts)
    assert after == [p for p in before if ".migratekit" not in p]
    assert all(not (repo.root / path).exists() for path in case.absent)
    with psycopg.connect(repo.env["SVC_DATABASE_URL"]) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
        )
        assert tables.fetchone() == (0,)


def _argv(command: str) -> list[str]:
    """A command line split on spaces, except that a name may end in a newline (R10's `evil\\n`)."""
    return command.replace("\n ", "\n\0").replace(" ", "\0").split("\0")


def test_a_warm_audit_sees_a_new_down_part_without_its_up_part(monorepo) -> None:
    """R14: the cache's content key covers every name in the directory, not only the migrations it loaded."""
    repo: Monorepo = monorepo({"svc": {"language": "go"}})
    write_tree(repo.root, {"workspace.yaml": WORKSPACE, **go()})
    assert "MK115" not in repo.invoke("audit").stdout
    repo.migration("svc", "000002_x.down.sql", "DROP TABLE IF EXISTS important;\n")
    warm, cold = repo.invoke("audit"), repo.invoke("audit", "--no-cache")
    assert "MK115" in cold.stdout
    assert warm.stdout == cold.stdout


@contextlib.contextmanager
def read_only(root: Path) -> Iterator[None]:
    """A checkout nobody may write in: every mode, or for root (whom modes do not stop) chattr -R +i."""
    if os.geteuid() != 0:
        subprocess.run(["chmod", "-R", "a-w", str(root)], check=True)
        try:
            yield
        finally:
            subprocess.run(["chmod", "-R", "u+w", str(root)], check=True)
        return
    made = subprocess.run(["chattr", "-R", "+i", str(root)], capture_output=True, text=True)
    if made.returncode != 0:
        subprocess.run(["chattr", "-R", "-i", str(root)], capture_output=True)
        pytest.skip(f"root ignores file modes, and chattr +i fails here: {made.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-R", "-i", str(root)], check=True)


def test_a_read_only_checkout_is_audited_and_writers_say_where_they_cannot_write(monorepo) -> None:
    """R15 (I8, I9): a reviewer's or CI's read-only checkout: the audit runs without its cache; a command that
    writes into the checkout exits 2 naming the place, instead of a PermissionError traceback."""
    repo: Monorepo = monorepo({"svc": {"language": "python"}})
    write_tree(repo.root, seed())
    migrations = repo.root / "services" / "svc" / "migrations"
    with read_only(repo.root):
        audited = repo.invoke("audit", "--json")
        assert audited.returncode in (0, 1) and "Traceback" not in audited.stderr, audited.stderr
        assert json.loads(audited.stdout)["services"] == ["svc"]
        writers = (
            ["new-migration", "svc", "add users"],
            ["new-service", "pay"],
            ["ci-workflow", "--install", "pip install ."],
        )
        for command in writers:
            result = repo.invoke(*command)
            assert result.returncode == 2, (command, result.stdout + result.stderr)
            assert "Traceback" not in result.stderr, result.stderr
            assert "cannot write" in result.stderr or "cannot be written" in result.stderr, result.stderr
    assert sorted(p.name for p in migrations.iterdir()) == ["001_init.sql"]
    assert not (repo.root / ".migratekit").exists() and not (repo.root / ".github").exists()
    assert not (repo.root / "services" / "pay").exists()


def test_a_new_migration_takes_a_number_no_file_has_not_even_a_stray(monorepo) -> None:
    """R13: beside a stray 000002_….down.sql (MK115) the new pair is 000003, written whole; it was 000002, its up
    file written and then a FileExistsError traceback, the up file left paired with someone else's down part."""
    repo: Monorepo = monorepo({"svc": {"language": "go"}})
    stray = {"services/svc/migrations/000002_add_users_table.down.sql": "DROP TABLE IF EXISTS users;\n"}
    write_tree(repo.root, {"workspace.yaml": WORKSPACE, **go(**stray)})
    result = repo.invoke("new-migration", "svc", "add users table")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "services/svc/migrations/000003_add_users_table.up.sql"
    names = sorted(p.name for p in (repo.root / "services" / "svc" / "migrations").iterdir())
    assert names == [
        "000001_init.down.sql",
        "000001_init.up.sql",
        "000002_add_users_table.down.sql",
        "000003_add_users_table.down.sql",
        "000003_add_users_table.up.sql",
    ]


@pytest.mark.parametrize(
    ("command", "says"),
    [
        ("adopt", "'adopt' did not receive required positional arguments: 'service'"),
        ("migrate-all --bogus", "No idea what '--bogus' is!"),
        ("rollback svc --steps", "needed value and was not given one"),
        ("no-such-task", "No idea what 'no-such-task' is!"),
    ],
)
def test_invokes_own_argument_errors_are_usage_errors_too(monorepo, command: str, says: str) -> None:
    """Invoke's parser exits 1 on its own; migratekit's tasks exit 2 for every usage error, these included."""
    repo: Monorepo = monorepo({"svc": {"language": "go"}})
    write_tree(repo.root, {"workspace.yaml": WORKSPACE, **go()})
    result = repo.invoke(*command.split())
    assert result.returncode == 2, result.stdout + result.stderr
    assert says in result.stderr and "invoke --list shows the tasks" in result.stderr


@dataclass(frozen=True)
class Later:
    """A cause met on a database that already holds something: what is there, then the command."""

    cause: str
    files: dict[str, str]
    before: str  # SQL run first, or "migrate-all": the files applied first
    edit: dict[str, str]  # files changed after that
    command: str
    says: str
    rows: str  # a query over the database afterwards
    left: list[tuple]  # and what it must return: unchanged


FLYWAY_HISTORY = (
    "CREATE TABLE flyway_schema_history (installed_rank int PRIMARY KEY, version varchar(50), description "
    "varchar(200) NOT NULL, type varchar(20) NOT NULL, script varchar(1000) NOT NULL, checksum int, installed_by "
    "varchar(100) NOT NULL, installed_on timestamp NOT NULL DEFAULT now(), execution_time int NOT NULL, success "
    "boolean NOT NULL); INSERT INTO flyway_schema_history VALUES (1, '1', 'init', 'SQL', 'V1__init.sql', 1, 'me', "
    "now(), 1, true); CREATE TABLE t (id int)"
)
LATER = [
    Later(
        "R19",
        go(),
        "migrate-all",
        {"services/svc/migrations/000001_init.up.sql": "CREATE TABLE IF NOT EXISTS t (id int, more int);\n"},
        "rollback svc",
        "changed after it was applied",
        "SELECT version, to_regclass('t') IS NOT NULL FROM public.schema_migrations",
        [("000001_init", True)],
    ),
    Later(
        "R6",
        {"services/svc/migrations/001_init.sql": INIT},
        FLYWAY_HISTORY,
        {},
        "migrate svc",
        "invoke adopt",
        "SELECT to_regclass('public.schema_migrations')",
        [(None,)],
    ),
]


@pytest.mark.parametrize("case", LATER, ids=[c.cause for c in LATER])
def test_a_cause_met_on_a_database_that_holds_something_stops_and_changes_nothing(monorepo, case: Later) -> None:
    repo: Monorepo = monorepo({"svc": {"language": "go"}})
    write_tree(repo.root, {"workspace.yaml": WORKSPACE, **case.files})
    if case.before == "migrate-all":
        assert repo.invoke("migrate-all").returncode == 0
    else:
        with psycopg.connect(repo.env["SVC_DATABASE_URL"], autocommit=True) as conn:
            conn.execute(case.before)
    write_tree(repo.root, case.edit)
    result = repo.invoke(*case.command.split())
    assert result.returncode in (1, 2), result.stdout + result.stderr
    assert "Traceback" not in result.stderr and case.says in result.stdout + result.stderr
    assert repo.query("svc", case.rows) == case.left
