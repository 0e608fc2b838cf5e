"""new-service, new-migration and verify, as a user runs them on a copy of the example monorepo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from conftest import Monorepo, filled, read_only, write_tree
from migratekit.database.apply import apply_service
from migratekit.database.scratch import docker_unavailable_reason
from migratekit.errors import ConfigError
from migratekit.model.migration import load_migrations
from migratekit.model.workspace_file import load_workspace
from migratekit.scaffold import new_migration


@pytest.fixture
def example(example_repo: Monorepo) -> Monorepo:
    return example_repo


def snapshot_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("lang", ["typescript", "python"])
def test_a_new_service_audits_clean_migrates_and_verifies(example: Monorepo, new_db, lang: str) -> None:
    created = example.invoke(
        "new-service", "payments", "--lang", lang, "--depends-on", "authentication", "--port", "3010"
    )
    assert created.returncode == 0, created.stderr
    assert "created services/payments" in created.stdout
    service = example.root / "services" / "payments"
    assert (service / "migrations" / "001_init.sql").read_text().startswith("-- Migration: 001_init\n")
    assert "3010" in (service / "k8s" / "deployment.yaml").read_text()

    audit = example.invoke("audit", "--json")
    assert audit.returncode == 0 and json.loads(audit.stdout)["findings"] == [], audit.stdout

    example.env["PAYMENTS_DATABASE_URL"] = new_db()
    migrated = json.loads(example.invoke("migrate", "payments", "--json").stdout)
    assert [(s["service"], [a["version"] for a in s["applied"]]) for s in migrated["services"]] == [
        ("payments", ["001_init"])
    ]
    verified = example.invoke("verify", "--service", "payments")
    assert verified.returncode == 0 and "payments: idempotent" in verified.stdout, verified.stdout


def test_new_service_keeps_workspace_comments_and_order(example: Monorepo) -> None:
    before = (example.root / "workspace.yaml").read_text()
    assert example.invoke("new-service", "market-feed", "--depends-on", "battles,authentication").returncode == 0
    after = (example.root / "workspace.yaml").read_text()
    assert after.startswith(before)  # every line, comment and key as it was, the new one appended
    assert after[len(before) :] == "  market-feed: {language: typescript, depends_on: [battles, authentication]}\n"
    assert load_workspace(example.root).services["market-feed"].depends_on == ("battles", "authentication")


def test_new_service_accepts_a_nested_group_and_name_as_discovery_names_it(example: Monorepo) -> None:
    result = example.invoke("new-service", "billing/refunds")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (example.root / "services/billing/refunds/migrations/001_init.sql").is_file()
    assert load_workspace(example.root).services["billing-refunds"].path == example.root / "services/billing/refunds"
    listed = json.loads(example.invoke("services", "--json").stdout)["services"]
    assert "billing-refunds" in {s["name"] for s in listed}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["../evil"], "'../evil' is not a valid service name"),
        (["Payments"], "is not a valid service name"),
        (["battles"], "services/battles already exists"),
        (["payments", "--depends-on", "ghost"], "--depends-on names unknown service(s) ghost"),
        (["payments", "--lang", "cobol"], "--lang 'cobol'"),
        (["payments", "--port", "70000"], "--port 70000 is not a TCP port"),
        (["battles/fleets"], "services/battles is the service battles: a service inside another is never discovered"),
        (["a/b/c"], "'a/b/c' is not a valid service name"),
    ],
)
def test_new_service_refusals_write_nothing(example: Monorepo, args: list[str], message: str) -> None:
    before = snapshot_tree(example.root)
    result = example.invoke("new-service", *args)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert snapshot_tree(example.root) == before


def test_new_migration_writes_the_next_number_with_the_seeds_header(example: Monorepo) -> None:
    result = example.invoke("new-migration", "authentication", "Add email to accounts")
    assert result.returncode == 0
    assert result.stdout.strip() == "services/authentication/migrations/004_add_email_to_accounts.sql"
    text = (example.root / result.stdout.strip()).read_text()
    assert text.startswith(
        "-- Migration: 004_add_email_to_accounts\n-- Description: Add email to accounts\n-- Created: "
    )
    assert "ALTER TABLE accounts ADD COLUMN IF NOT EXISTS email TEXT;" in text
    unknown = example.invoke("new-migration", "ghost", "x")
    assert unknown.returncode == 2 and "unknown service 'ghost'" in unknown.stderr


def test_concurrent_new_migrations_never_share_a_number(example: Monorepo) -> None:
    workspace = load_workspace(example.root)
    made: list[Path] = []
    threads = [
        threading.Thread(target=lambda i=i: made.append(new_migration(workspace, "battles", f"step {i}").path))
        for i in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    numbers = sorted(p.name[:3] for p in made)
    assert numbers == [f"{n:03d}" for n in range(3, 11)]


def test_new_migration_refuses_an_empty_description(example: Monorepo) -> None:
    with pytest.raises(ConfigError, match="no letters or digits"):
        new_migration(load_workspace(example.root), "battles", " -- ")


def test_verify_passes_the_example_services(example: Monorepo) -> None:
    result = example.invoke("verify", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert [(s["service"], s["second_run"], s["schema_changes"]) for s in json.loads(result.stdout)["services"]] == [
        ("authentication", [], []),
        ("battles", [], []),
        ("enrichment", [], []),
    ]


def test_verify_catches_a_migration_that_is_not_idempotent(example: Monorepo) -> None:
    example.write(
        "services/battles/migrations/003_add_fleets.sql",
        "-- Migration: 003_add_fleets\n-- Rollback: DROP TABLE IF EXISTS fleets;\n\nCREATE TABLE fleets (id int);\n",
    )
    result = example.invoke("verify", "--service", "battles")
    assert result.returncode == 1
    assert 'second run failed: 003_add_fleets.sql:4: relation "fleets" already exists (SQLSTATE 42P07)' in result.stdout


def test_verify_catches_a_second_run_that_changes_the_schema(example: Monorepo) -> None:
    # Succeeds both times, but the second run finds fleets and creates something new.
    example.write(
        "services/battles/migrations/003_add_fleets.sql",
        "-- Migration: 003_add_fleets\n-- Rollback: DROP TABLE IF EXISTS fleets, fleets_archive;\n"
        "DO $$ BEGIN\n"
        "  IF to_regclass('public.fleets') IS NOT NULL THEN\n"
        "    CREATE TABLE IF NOT EXISTS fleets_archive (id int);\n"
        "  END IF;\n"
        "  CREATE TABLE IF NOT EXISTS fleets (id int);\n"
        "END $$;\n",
    )
    result = example.invoke("verify", "--service", "battles", "--json")
    assert result.returncode == 1
    data = json.loads(result.stdout)["services"][0]
    assert [(f, d["kind"], d["name"], d["change"]) for f, d in data["schema_changes"]] == [
        ("003_add_fleets.sql", "column", "public.fleets_archive.id", "extra"),
        ("003_add_fleets.sql", "table", "public.fleets_archive", "extra"),
    ]


def test_verify_asks_for_rollback_notes_of_the_newest_migration(example: Monorepo) -> None:
    example.write(
        "services/battles/migrations/003_add_fleets.sql",
        "-- Migration: 003_add_fleets\nCREATE TABLE IF NOT EXISTS fleets (id int);\n",
    )
    result = example.invoke("verify", "--service", "battles")
    assert result.returncode == 1
    assert "no rollback notes for 003_add_fleets" in result.stdout


@pytest.mark.skipif(docker_unavailable_reason() is None, reason="a Docker engine answers: the build path runs instead")
def test_verify_image_without_docker_says_so_and_passes(example: Monorepo) -> None:
    result = example.invoke("verify", "--service", "battles", "--image")
    assert result.returncode == 0
    assert "battles image: skipped (no Docker engine answers" in result.stdout


@pytest.mark.engine
def test_verify_image_finds_the_migrations_inside_the_built_image(example: Monorepo) -> None:
    result = example.invoke("verify", "--service", "enrichment", "--image")
    assert "enrichment image: migrations identical to the repository's" in result.stdout


def test_the_python_scaffold_carries_its_own_runner_and_builds_from_its_directory(tmp_path: Path, new_db) -> None:
    other = write_tree(tmp_path / "elsewhere", {"tasks.py": "from migratekit.tasks import ns\n"})
    repo = Monorepo(other, {})
    assert repo.invoke("new-service", "ledger", "--lang", "python").returncode == 0
    service = other / "services" / "ledger"
    assert "migratekit" not in (service / "pyproject.toml").read_text()  # nothing of this repository needed
    assert json.loads(repo.invoke("audit", "--json").stdout)["findings"] == []
    url = new_db()
    env = {**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(service / "src")}
    run = subprocess.run([sys.executable, "-m", "ledger.migrate"], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    migrations = load_migrations(service / "migrations")
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT version, checksum FROM schema_migrations ORDER BY 1").fetchall()
    assert rows == [(m.version, m.checksum) for m in migrations]  # the seed's rows: migratekit agrees
    assert apply_service("ledger", url, migrations).outcome == "up_to_date"
    (service / "migrations" / "002_broken.sql").write_text("CREATE TABLE IF NOT EXISTS b (id int);\nSELECT 1/0;\n")
    failed = subprocess.run([sys.executable, "-m", "ledger.migrate"], env=env, capture_output=True, text=True)
    assert failed.returncode == 1 and "002_broken.sql: division by zero" in failed.stderr
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT to_regclass('b')").fetchone() == (None,)


# --- a write that fails: exit 2 naming the file, and the monorepo as it was ----------------------------------------

SMALL = {
    "tasks.py": "from migratekit.tasks import ns\n",
    "workspace.yaml": "version: 1\nservices:\n  auth: {language: typescript}\n",
    "services/auth/migrations/001_init.sql": "SELECT 1;\n",
}


def staging_left(root: Path) -> list[str]:
    return [p.relative_to(root).as_posix() for p in root.rglob(".*") if p.name.endswith(".tmp") or "-" in p.name]


def test_new_service_on_a_full_disk_is_exit_2_and_writes_nothing(tmp_path: Path, full_disk: Callable) -> None:
    """A template that could not be written was a traceback (exit 1); the half-rendered service was removed, but
    the group directory made for it stayed."""
    root = write_tree(full_disk(tmp_path / "repo", "1m"), SMALL)
    repo = Monorepo(root, {})
    before = snapshot_tree(root)
    filled(root)
    result = repo.invoke("new-service", "billing/refunds")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "No space left on device" in result.stderr and "nothing was written" in result.stderr, result.stderr
    assert "services/billing/refunds" in result.stderr, result.stderr
    (root / "filler").unlink()
    assert snapshot_tree(root) == before and not (root / "services" / "billing").exists()
    assert not staging_left(root)
    assert repo.invoke("new-service", "billing/refunds").returncode == 0
    assert "billing-refunds" in (root / "workspace.yaml").read_text()


def test_new_service_whose_workspace_yaml_cannot_be_written_leaves_no_service(
    tmp_path: Path, full_disk: Callable
) -> None:
    """The service is rendered (services/ writable), workspace.yaml cannot be rewritten (a read-only root): the
    service goes again, its group directory too, and workspace.yaml is as it was."""
    root = write_tree(full_disk(tmp_path / "repo", "1m"), SMALL)
    full_disk(root / "services", "1m")
    write_tree(root, {"services/auth/migrations/001_init.sql": "SELECT 1;\n"})
    repo = Monorepo(root, {})
    before = snapshot_tree(root)
    read_only(root)
    result = repo.invoke("new-service", "billing/refunds")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "workspace.yaml" in result.stderr and "as it was" in result.stderr, result.stderr
    assert snapshot_tree(root) == before and not (root / "services" / "billing").exists()
    assert not staging_left(root)
    read_only(root, writable=True)
    assert repo.invoke("new-service", "billing/refunds").returncode == 0


@pytest.mark.parametrize("what", ["a dangling link", "a file"])
def test_new_service_where_something_else_stands_is_exit_2(tmp_path: Path, what: str) -> None:
    """A dangling link at services/<name> was not 'already there' (exists() follows it): the rename onto it was a
    traceback."""
    root = write_tree(tmp_path / "repo", SMALL)
    if what == "a file":
        (root / "services" / "billing").write_text("notes\n")
    else:
        (root / "services" / "billing").symlink_to(tmp_path / "nowhere")
    repo = Monorepo(root, {})
    before = snapshot_tree(root)
    result = repo.invoke("new-service", "billing")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "services/billing" in result.stderr, result.stderr
    assert snapshot_tree(root) == before and not staging_left(root)
    assert (root / "services" / "billing").is_symlink() or (root / "services" / "billing").is_file()


def every_path(root: Path) -> dict[str, bytes | None]:
    """Each file's bytes and each directory (None), so that a directory left behind shows."""
    return {p.relative_to(root).as_posix(): p.read_bytes() if p.is_file() else None for p in sorted(root.rglob("*"))}


FORMATS = ["seed", "updown", "dbmate", "goose", "flyway", "sqlx", "prisma", "diesel"]


@pytest.mark.parametrize("how", ["a full disk", "read-only"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_new_migration_that_cannot_be_written_is_exit_2_and_leaves_the_directory_as_it_was(
    tmp_path: Path, full_disk: Callable, fmt: str, how: str
) -> None:
    """Prisma's and Diesel's migration is a directory of its own: the one made for it stayed, empty, when its
    file could not be written."""
    root = write_tree(
        tmp_path / "repo",
        {
            "tasks.py": "from migratekit.tasks import ns\n",
            "workspace.yaml": f"version: 1\nservices:\n  auth: {{language: typescript, format: {fmt}}}\n",
            ".migratekit/.gitignore": "*\n",
        },
    )
    migrations = full_disk(root / "services" / "auth" / "migrations", "1m")
    repo = Monorepo(root, {})
    before = every_path(root)
    filled(migrations) if how == "a full disk" else read_only(migrations)
    result = repo.invoke("new-migration", "auth", "add users")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "services/auth/migrations/" in result.stderr and "nothing was written" in result.stderr, result.stderr
    if how == "a full disk":
        (migrations / "filler").unlink()
    else:
        read_only(migrations, writable=True)
    assert every_path(root) == {**before, ".migratekit/scaffold.lock": b""}
    made = repo.invoke("new-migration", "auth", "add users")
    assert made.returncode == 0, made.stderr
    assert (root / made.stdout.strip()).is_file()


def test_new_migration_on_a_full_disk_before_the_state_directory_exists(tmp_path: Path, full_disk: Callable) -> None:
    """.migratekit/.gitignore was written in place: on a full disk, a traceback, and an empty .gitignore that was
    never written again (the state directory was in git's sight for good)."""
    root = write_tree(full_disk(tmp_path / "repo", "1m"), SMALL)
    repo = Monorepo(root, {})
    before = every_path(root)
    filled(root)
    result = repo.invoke("new-migration", "auth", "add users")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert ".migratekit" in result.stderr and "nothing was written" in result.stderr, result.stderr
    (root / "filler").unlink()
    assert every_path(root) == before
    assert repo.invoke("new-migration", "auth", "add users").returncode == 0
    assert (root / ".migratekit" / ".gitignore").read_text() == "*\n"
