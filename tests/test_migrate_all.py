"""`invoke migrate-all` and `invoke migrate` on small monorepos, as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from conftest import Monorepo, write_tree

OK = "CREATE TABLE IF NOT EXISTS {0} (id int);"


def three_services(monorepo) -> Monorepo:
    repo = monorepo({"auth": {}, "battles": {"depends_on": ["auth"]}, "search": {}})
    repo.migration("auth", "001_init.sql", OK.format("accounts"))
    repo.migration("auth", "002_add_roles.sql", OK.format("roles"))
    repo.migration("battles", "001_init.sql", OK.format("battles"))
    repo.migration("search", "001_init.sql", OK.format("documents"))
    return repo


def test_migrate_all_applies_every_service_then_reports_up_to_date(monorepo) -> None:
    repo = three_services(monorepo)
    first = repo.invoke("migrate-all")
    assert first.returncode == 0, first.stderr
    table_rows = [line.split("│")[1].strip() for line in first.stdout.splitlines() if "│" in line]
    assert table_rows == ["auth", "search", "battles"]  # waves in dependency order, names within a wave
    assert "auth: applying 001_init" in first.stderr  # progress, off stdout when not a terminal
    assert repo.query("auth", "SELECT version FROM schema_migrations ORDER BY 1") == [("001_init",), ("002_add_roles",)]
    second = json.loads(repo.invoke("migrate-all", "--json").stdout)
    assert {s["service"]: (s["outcome"], s["already_applied"]) for s in second["services"]} == {
        "auth": ("up_to_date", 2),
        "battles": ("up_to_date", 1),
        "search": ("up_to_date", 1),
    }


# Runs Invoke's program in a process of its own and prints, at exit, every module that process imported.
IMPORTED_AT_EXIT = """
import atexit, sys
atexit.register(lambda: print("imported:", *sorted(sys.modules), file=sys.stderr))
from invoke.main import program
program.run()
"""
# What an up-to-date run never uses: SQL parsing, the audit, scaffolding, sending migrations, the embedded
# cluster, other tools' histories, and rich's live display (stderr is a pipe here); with --json, rich itself.
NOT_UP_TO_DATE = (
    "pglast",
    "tree_sitter",
    "ruamel.yaml",
    "migratekit.checks",
    "migratekit.scaffold",
    "migratekit.database.execution",
    "migratekit.database.embedded",
    "migratekit.database.other_tools",
    "rich.live",
)


@pytest.mark.parametrize("flags", [("--json",), ()], ids=["json", "text"])
def test_an_up_to_date_run_imports_only_what_it_uses(monorepo, flags: tuple[str, ...]) -> None:
    """An up-to-date run is mostly start-up: it loads no parser, audit or display it does not use."""
    repo = three_services(monorepo)
    assert repo.invoke("migrate-all").returncode == 0
    run = subprocess.run(
        [sys.executable, "-c", IMPORTED_AT_EXIT, "migrate-all", *flags],
        cwd=repo.root,
        env={**os.environ, **repo.env},
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert "up to date" in run.stdout or "up_to_date" in run.stdout
    imported = set(run.stderr.rpartition("imported:")[2].split())
    assert "migratekit.database.apply" in imported  # the probe saw the run
    unused = [*NOT_UP_TO_DATE, "rich"] if flags else NOT_UP_TO_DATE
    assert sorted(m for m in imported if any(m == u or m.startswith(f"{u}.") for u in unused)) == []


def test_a_failure_skips_dependents_and_independent_services_finish(monorepo) -> None:
    repo = three_services(monorepo)
    repo.migration("auth", "003_broken.sql", "CREATE TABLE IF NOT EXISTS x (id int);\nSELECT * FROM missing_table;\n")
    result = repo.invoke("migrate-all", "--json")
    assert result.returncode == 1
    services = {s["service"]: s for s in json.loads(result.stdout)["services"]}
    assert (services["auth"]["outcome"], services["auth"]["pending"]) == ("failed", ["003_broken"])  # still to do
    assert services["auth"]["failure"]["file"] == "services/auth/migrations/003_broken.sql"
    assert services["auth"]["failure"]["line"] == 2
    assert 'relation "missing_table" does not exist' in services["auth"]["failure"]["message"]
    assert services["battles"]["outcome"] == "skipped"
    assert services["battles"]["notes"] == ["skipped: depends on auth, which did not finish"]
    assert services["search"]["outcome"] == "applied"
    assert repo.query("auth", "SELECT count(*) FROM schema_migrations") == [(2,)]
    assert repo.query("battles", "SELECT to_regclass('schema_migrations')") == [(None,)]

    human = repo.invoke("migrate-all")
    assert (
        'auth: services/auth/migrations/003_broken.sql:2: relation "missing_table" does not exist (SQLSTATE 42P01)'
        in human.stdout
    )


def test_fail_fast_starts_nothing_after_a_failure(monorepo) -> None:
    repo = monorepo({"a": {}, "b": {"depends_on": ["a"]}, "c": {"depends_on": ["a"]}})
    repo.migration("a", "001_init.sql", "SELECT 1/0;")
    repo.migration("b", "001_init.sql", OK.format("b"))
    repo.migration("c", "001_init.sql", OK.format("c"))
    data = json.loads(repo.invoke("migrate-all", "--json", "--fail-fast", "--jobs", "1").stdout)
    assert [s["outcome"] for s in data["services"]] == ["failed", "skipped", "skipped"]


def test_a_service_on_the_critical_path_starts_as_soon_as_it_is_ready(monorepo) -> None:
    """A dependent on the longest chain goes before every waiting service with a shorter chain, including
    those that became ready before it: the queue is ordered by chain, not by when a service became ready."""
    repo = monorepo({"a": {}, "z": {"depends_on": ["a"]}, **{f"m{i}": {} for i in range(1, 5)}})
    repo.migration("a", "001_init.sql", OK.format("a"))
    for n in (1, 2):
        repo.migration("z", f"00{n}_step.sql", OK.format(f"z{n}"))
    for i in range(1, 5):
        repo.migration(f"m{i}", "001_init.sql", OK.format(f"m{i}"))
    result = repo.invoke("migrate-all", "--jobs", "1")
    assert result.returncode == 0, result.stderr
    started = [line.split(":")[0] for line in result.stderr.splitlines() if ": applying " in line]
    assert started == ["a", "z", "z", "m1", "m2", "m3", "m4"]


def test_dry_run_prints_the_plan_and_changes_nothing(monorepo) -> None:
    repo = three_services(monorepo)
    repo.invoke("migrate", "auth")
    repo.migration("auth", "003_add_sessions.sql", OK.format("sessions"))
    result = repo.invoke("migrate-all", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "auth: would apply 003_add_sessions" in result.stdout
    assert "battles: would apply 001_init" in result.stdout
    assert repo.query("auth", "SELECT count(*) FROM schema_migrations") == [(2,)]
    assert repo.query("battles", "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == [(0,)]


def test_migrate_one_service_with_and_without_its_dependencies(monorepo) -> None:
    repo = three_services(monorepo)
    alone = json.loads(repo.invoke("migrate", "battles", "--json").stdout)
    assert [s["service"] for s in alone["services"]] == ["battles"]
    assert repo.query("auth", "SELECT to_regclass('schema_migrations')") == [(None,)]
    both = json.loads(repo.invoke("migrate", "battles", "--with-deps", "--json").stdout)
    assert [s["service"] for s in both["services"]] == ["auth", "battles"]
    unknown = repo.invoke("migrate", "ghost")
    assert unknown.returncode == 2 and "unknown service 'ghost'" in unknown.stderr


def test_changed_since_runs_changed_services_and_their_dependents(monorepo) -> None:
    repo = three_services(monorepo)
    git = ["git", "-C", str(repo.root), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "base"], check=True)
    repo.migration("auth", "003_add_sessions.sql", OK.format("sessions"))
    data = json.loads(repo.invoke("migrate-all", "--changed-since", "HEAD", "--json").stdout)
    assert [s["service"] for s in data["services"]] == ["auth", "battles"]
    bad = repo.invoke("migrate-all", "--changed-since", "no-such-ref")
    assert bad.returncode == 2 and "pass a ref that exists" in bad.stderr


def test_bad_workspace_is_exit_2_and_touches_no_database(monorepo) -> None:
    repo = three_services(monorepo)
    (repo.root / "workspace.yaml").write_text(
        "version: 1\nservices:\n  auth: {depends_on: [battles]}\n  battles: {depends_on: [auth]}\n"
    )
    result = repo.invoke("migrate-all")
    assert result.returncode == 2
    assert "depends_on forms a cycle" in result.stderr and "Traceback" not in result.stderr
    assert repo.query("auth", "SELECT to_regclass('schema_migrations')") == [(None,)]


def test_shared_database_with_schema_tracking_tables(monorepo, new_db) -> None:
    repo = monorepo(
        {
            "battles": {},
            "enrichment": {
                "depends_on": ["battles"],
                "database": "battles",
                "tracking_table": "enrichment.schema_migrations",
            },
        }
    )
    repo.env["ENRICHMENT_DATABASE_URL"] = repo.env["BATTLES_DATABASE_URL"]
    repo.migration("battles", "001_init.sql", "CREATE TABLE IF NOT EXISTS battles (id int PRIMARY KEY);")
    repo.migration(
        "enrichment",
        "001_init.sql",
        "CREATE SCHEMA IF NOT EXISTS enrichment;\n"
        "CREATE TABLE IF NOT EXISTS enrichment.s (battle_id int REFERENCES public.battles(id));",
    )
    assert repo.invoke("migrate-all").returncode == 0
    assert repo.query("battles", "SELECT version FROM schema_migrations") == [("001_init",)]
    assert repo.query("battles", "SELECT version FROM enrichment.schema_migrations") == [("001_init",)]


def test_services_sharing_a_database_with_one_identical_first_file_both_apply(monorepo) -> None:
    """Two scaffolded services in one database start with the same 001_init.sql: each records it in its own table,
    and the second's empty table is not mistaken for a history kept elsewhere."""
    repo = monorepo({"orders": {}, "invoices": {"database": "orders", "tracking_table": "invoices.schema_migrations"}})
    repo.env["INVOICES_DATABASE_URL"] = repo.env["ORDERS_DATABASE_URL"]
    for name in ("orders", "invoices"):
        repo.migration(name, "001_init.sql", "CREATE SCHEMA IF NOT EXISTS invoices;\n")
    result = repo.invoke("migrate-all", "--jobs", "1")
    assert result.returncode == 0, result.stdout
    assert repo.query("orders", "SELECT version FROM invoices.schema_migrations") == [("001_init",)]


def test_a_tracking_table_changed_after_migrating_is_refused_not_run_again(monorepo) -> None:
    """Migrated without a workspace.yaml, then `invoke init` gives the dbmate service a table of its own: the
    history stays in public.schema_migrations, and starting the new table empty would run every migration again."""
    repo = monorepo({"auth": {}}, workspace=False)
    repo.migration("auth", "20240101000000_users.sql", "-- migrate:up\nCREATE TABLE users (id int PRIMARY KEY);\n")
    repo.migration("auth", "20240102000000_admin.sql", "-- migrate:up\nINSERT INTO users VALUES (1);\n")
    assert repo.invoke("migrate-all").returncode == 0
    assert repo.invoke("init").returncode == 0
    assert "tracking_table: migratekit.schema_migrations" in (repo.root / "workspace.yaml").read_text()
    for flags in (["--dry-run"], []):
        result = repo.invoke("migrate-all", "--json", *flags)
        assert result.returncode == 1, result.stdout
        failure = json.loads(result.stdout)["services"][0]["failure"]
        assert failure["message"].startswith(
            "migratekit.schema_migrations does not exist yet, but public.schema_migrations records 2 of these "
            "migrations with the same checksums (20240101000000_users, 20240102000000_admin)"
        )
        assert "set tracking_table to public.schema_migrations for this service" in failure["hint"]
    assert repo.query("auth", "SELECT to_regclass('migratekit.schema_migrations'), count(*) FROM users") == [(None, 1)]
    with psycopg.connect(repo.env["AUTH_DATABASE_URL"]) as conn:  # the hint, followed
        conn.execute("CREATE SCHEMA migratekit; ALTER TABLE public.schema_migrations SET SCHEMA migratekit")
    after = json.loads(repo.invoke("migrate-all", "--json").stdout)["services"][0]
    assert (after["outcome"], after["already_applied"]) == ("up_to_date", 2)


def test_the_example_monorepo_migrates_and_its_python_service_uses_the_runner(example_repo: Monorepo, new_db) -> None:
    auth, battles = new_db(), new_db()
    repo = example_repo
    repo.env.update(AUTHENTICATION_DATABASE_URL=auth, BATTLES_DATABASE_URL=battles, ENRICHMENT_DATABASE_URL=battles)
    result = repo.invoke("migrate-all", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    applied = {s["service"]: len(s["applied"]) for s in json.loads(result.stdout)["services"]}
    assert applied == {"authentication": 3, "battles": 2, "enrichment": 2}
    with psycopg.connect(battles) as conn:
        assert conn.execute("SELECT count(*) FROM enrichment.battle_value").fetchone() == (0,)


@pytest.mark.parametrize("tracking_table", ["schema_migrations", "public.schema_migrations"])
def test_two_services_recording_into_one_table_are_refused_before_anything_runs(monorepo, tracking_table) -> None:
    repo = monorepo({"billing": {}, "orders": {"tracking_table": tracking_table}})
    repo.env["ORDERS_DATABASE_URL"] = repo.env["BILLING_DATABASE_URL"]
    repo.migration("billing", "001_init.sql", "CREATE TABLE IF NOT EXISTS t (id int);")
    repo.migration("orders", "001_init.sql", "CREATE TABLE IF NOT EXISTS o (id int);")
    for args in (["migrate-all"], ["migrate", "orders"], ["migrate-all", "--dry-run"]):
        result = repo.invoke(*args)
        assert result.returncode == 2, result.stdout + result.stderr
        assert "services billing and orders would record their migrations in one table" in result.stderr, args
        assert "public.schema_migrations" in result.stderr and "Traceback" not in result.stderr
    assert repo.query("orders", "SELECT to_regclass('public.schema_migrations')") == [(None,)]


def test_run_flags_take_fractions_and_bad_values_are_exit_2_before_anything_runs(monorepo) -> None:
    repo = three_services(monorepo)
    ok = repo.invoke("migrate-all", "--wait", "0.5", "--lock-wait", "2.5", "--jobs", "2")
    assert ok.returncode == 0, ok.stderr
    for args, message in [
        (["--jobs", "abc"], "--jobs 'abc': give a number without a fraction"),
        (["--jobs", "0"], "--jobs 0: must be at least 1"),
        (["--wait", "abc"], "--wait 'abc': give a number"),
        (["--lock-wait", "-1"], "--lock-wait -1: must be at least 0"),
    ]:
        result = repo.invoke("migrate", "auth", *args)
        assert (result.returncode, result.stderr.strip()) == (2, f"migratekit: {message}")
    (repo.root / "invoke.yaml").write_text("migratekit: {jobs: 0}\n")  # the defaults come from Invoke's config
    assert "--jobs 0: must be at least 1" in repo.invoke("migrate-all").stderr


def test_services_in_directories_named_as_java_and_dotnet_monorepos_name_them_are_adopted_and_migrated(
    tmp_path: Path, new_db: Callable[[], str]
) -> None:
    """`services/Ordering.API` and `services/Identity` were refused (even by init); each is a service named from
    its directory, reading the variable of that name, declared by init, audited and migrated."""
    root = write_tree(
        tmp_path / "repo",
        {
            "tasks.py": "from migratekit.tasks import ns\n",
            "services/Identity/migrations/001_init.sql": OK.format("users"),
            "services/Ordering.API/migrations/001_init.sql": OK.format("orders"),
        },
    )
    repo = Monorepo(root, {"IDENTITY_DATABASE_URL": new_db(), "ORDERING_API_DATABASE_URL": new_db()})
    made = repo.invoke("init")
    assert made.returncode == 0 and "declared identity, ordering-api" in made.stdout, made.stdout + made.stderr
    assert repo.invoke("audit", "--json").returncode in (0, 1)
    done = json.loads(repo.invoke("migrate-all", "--json").stdout)
    assert {s["service"]: s["outcome"] for s in done["services"]} == {"identity": "applied", "ordering-api": "applied"}
    assert repo.query("ordering_api", "SELECT version FROM schema_migrations") == [("001_init",)]
    assert repo.invoke("new-migration", "ordering-api", "add status").returncode == 0
    assert (root / "services/Ordering.API/migrations/002_add_status.sql").is_file()
