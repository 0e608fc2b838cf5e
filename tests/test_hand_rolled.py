"""Services whose hand-written runner keeps its own history: the drift rules read the runner's DDL, and `adopt`
imports that history, against a real database, odd rows included.

The services are tests/wiring/nest_hand_rolled.yml's (its audit findings are pinned there): `orders` keeps
schema_migrations(filename, applied_at), `billing-service` applied_migrations(name UNIQUE, run_at), both
created by the runner's own CREATE TABLE in src/db/migrate.ts.
"""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
import yaml
from test_wiring_styles import build

import migratekit
from conftest import Monorepo, write_tree
from migratekit.checks.run import across_services
from migratekit.checks.wiring.deploy import Repository, names_service, service_names
from migratekit.model.runner_table import runner_table
from migratekit.model.workspace_file import load_workspace

FIXTURE = yaml.safe_load((Path(__file__).parent / "wiring" / "nest_hand_rolled.yml").read_text())
INTERPOLATED = yaml.safe_load((Path(__file__).parent / "wiring" / "hand_rolled_interpolated.yml").read_text())


def cross_service_findings(root: Path) -> list[list[object]]:
    """What the drift rules report across the monorepo's services, as a person reads each finding."""
    return [[f.code, f.service, f.path, f.line, f.message] for f in across_services(load_workspace(root))]


def test_drift_rules_read_the_runners_own_table_and_know_a_copy_of_the_template(tmp_path: Path) -> None:
    build(tmp_path, FIXTURE)
    found = cross_service_findings(tmp_path)
    assert found == [
        [
            "MK601",
            "ledger",
            "services/ledger/src/database/migrate.ts",
            None,
            "differs from the template's runner: +0 -1 lines",
        ],
        [
            "MK604",
            "billing-service",
            "services/billing-service/src/db/migrate.ts",
            6,
            "public.applied_migrations (its runner's own) has columns name, run_at, not the seed's",
        ],
        [
            "MK604",
            "orders",
            "services/orders/src/db/migrate.ts",
            9,
            "public.schema_migrations (its runner's own) has columns filename, applied_at, not the seed's",
        ],
        [
            "MK604",
            "search",
            "services/search/migrate.py",
            7,
            "public.migration_log (its runner's own) has columns file, ran_at, not the seed's",
        ],
    ]


def test_a_runners_table_named_by_a_constant_and_other_names_than_schema_migrations(tmp_path: Path) -> None:
    """`${TABLE}` in a template literal and `{TABLE}` in an f-string are the literal const of the same file; a
    table that application code creates and fills (kv_cache) is no runner's history."""
    build(tmp_path, INTERPOLATED)
    found = cross_service_findings(tmp_path)
    assert found == [
        [
            "MK604",
            "ingest",
            "services/ingest/ingest/migrate.py",
            13,
            "public.migration_history (its runner's own) has columns script, installed_on, not the seed's",
        ],
        [
            "MK604",
            "ledger",
            "services/ledger/cmd/migrate/main.go",
            13,
            "public.schema_migrations (its runner's own) has columns version, not the seed's",
        ],
        [
            "MK604",
            "notes",
            "services/notes/src/db/migrate.ts",
            8,
            "public.migrations (its runner's own) has columns id, name, run_on, not the seed's",
        ],
        [
            "MK604",
            "orders",
            "services/orders/src/db/migrate.ts",
            11,
            "public.schema_migrations (its runner's own) has columns filename, applied_at, not the seed's",
        ],
        [
            "MK604",
            "payments",
            "services/payments/payments/migrate.py",
            13,
            "public.applied_migrations (its runner's own) has columns name, applied_at, not the seed's",
        ],
        [
            "MK604",
            "wallet",
            "services/wallet/cmd/migrate/main.go",
            18,
            "public.migration_versions (its runner's own) has columns version, applied_at, not the seed's",
        ],
    ]
    keys = {name: runner_table(tmp_path / "services" / name) for name in INTERPOLATED["services"]}
    assert {name: (t.key, t.applied_at) if t else None for name, t in keys.items()} == {
        "orders": ("filename", "applied_at"),
        "ingest": ("script", "installed_on"),
        "notes": ("name", "run_on"),
        "ledger": ("version", None),
        "sessions": None,
        "payments": ("name", "applied_at"),
        "wallet": ("version", "applied_at"),
    }


@pytest.mark.parametrize(
    ("ddl", "key"),
    [
        ("id serial, name text UNIQUE, run_on timestamptz", "name"),  # the unique text column, not the serial id
        ("id serial PRIMARY KEY, name text NOT NULL, checksum text, run_on timestamptz", "name"),
        ("id bigint PRIMARY KEY, checksum text, migration varchar(255), run_on timestamptz", "migration"),
        ("id serial PRIMARY KEY, note text, comment text", None),  # nothing says which names the file
    ],
)
def test_the_column_naming_each_file(tmp_path: Path, ddl: str, key: str | None) -> None:
    write_tree(
        tmp_path,
        {
            "src/migrate.ts": f'await db.query("CREATE TABLE IF NOT EXISTS _migrations ({ddl})");\n'
            'await db.query("INSERT INTO _migrations (name) VALUES ($1)", [file]);\n'
        },
    )
    found = runner_table(tmp_path)
    assert found is not None and found.table == "public._migrations" and found.key == key


def service_of(monorepo, source: str, settings: dict | None = None) -> Monorepo:
    """The fixture's service `source` as the one service `svc`, its runner's table made by the runner's own DDL,
    its files applied and recorded as that runner records them."""
    repo = monorepo({"svc": settings or {}})
    prefix = f"services/{source}/"
    write_tree(
        repo.root, {f"services/svc/{k[len(prefix) :]}": v for k, v in FIXTURE["files"].items() if k.startswith(prefix)}
    )
    declared = runner_table(repo.root / "services/svc")
    assert declared is not None
    text = declared.path.read_text()
    start = text.index("CREATE TABLE")
    ddl = text[start : _closing(text, text.index("(", start)) + 1]
    with psycopg.connect(repo.env["SVC_DATABASE_URL"], autocommit=True) as conn:
        conn.execute(ddl)
        for path in sorted((repo.root / "services/svc/migrations").glob("*.sql")):
            conn.execute(path.read_text())
    return repo


def _closing(text: str, opening: int) -> int:
    depth = 0
    for index in range(opening, len(text)):
        depth += {"(": 1, ")": -1}.get(text[index], 0)
        if depth == 0:
            return index
    raise AssertionError("unbalanced")


ODD = ("000_bootstrap.sql", "001_CREATE_ORDERS.sql")  # a file since deleted; a name differing only in case


def test_adopting_a_runners_schema_migrations_of_file_names(monorepo) -> None:
    repo = service_of(monorepo, "orders", {"tracking_table": "migratekit.schema_migrations"})
    names = ["001_create_orders.sql", "002_add_order_total.sql", *ODD]
    values = ", ".join(f"('{name}', '2024-03-01T10:00:00Z')" for name in names)
    repo.query("svc", f"INSERT INTO schema_migrations (filename, applied_at) VALUES {values} RETURNING 1")
    for flags in (["--dry-run"], []):  # before adopt: refused, naming the runner's table, nothing run
        result = repo.invoke("migrate-all", "--json", *flags)
        assert result.returncode == 1, result.stdout
        failure = json.loads(result.stdout)["services"][0]["failure"]
        assert failure["message"] == (
            "migratekit.schema_migrations does not exist yet, but this service's own runner's public.schema_migrations "
            "(created by src/db/migrate.ts) records 2 of these migrations (001_create_orders, 002_add_order_total); "
            "migrating now would run them again"
        )
        assert failure["hint"] == "import that history first: invoke adopt SERVICE --dry-run, then invoke adopt SERVICE"
    assert repo.query("svc", "SELECT to_regclass('migratekit.schema_migrations')") == [(None,)]

    dry = repo.invoke("adopt", "svc", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines() == [
        "svc: would record 2 version(s) from own-runner's public.schema_migrations into migratekit.schema_migrations "
        "(001_create_orders, 002_add_order_total); 0 were already there",
        "svc: public.schema_migrations also names 2 file(s) not in services/svc/migrations, not recorded: "
        "000_bootstrap.sql, 001_CREATE_ORDERS.sql",
    ]
    done = repo.invoke("adopt", "svc", "--from", "own-runner")
    assert done.returncode == 0 and "svc: recorded 2 version(s)" in done.stdout, done.stdout + done.stderr
    assert repo.query(
        "svc",
        "SELECT version, applied_at = '2024-03-01T10:00:00Z', execution_time_ms FROM migratekit.schema_migrations "
        "ORDER BY 1",
    ) == [("001_create_orders", True, 0), ("002_add_order_total", True, 0)]
    assert len(repo.query("svc", "SELECT * FROM public.schema_migrations")) == 4  # the runner's table is kept

    planned = json.loads(repo.invoke("migrate-all", "--json", "--dry-run").stdout)["services"][0]
    assert (planned["outcome"], planned["pending"], planned["already_applied"]) == ("planned", [], 2)
    repo.migration("svc", "003_add_order_note.sql", "ALTER TABLE orders ADD COLUMN IF NOT EXISTS note text;\n")
    migrated = json.loads(repo.invoke("migrate-all", "--json").stdout)["services"][0]
    assert [a["version"] for a in migrated["applied"]] == ["003_add_order_note"]
    again = repo.invoke("adopt", "svc")
    assert again.returncode == 0 and "recorded 0 version(s)" in again.stdout and "2 were already there" in again.stdout


def test_init_keeps_migratekits_table_beside_the_runners_schema_migrations(monorepo) -> None:
    repo = service_of(monorepo, "orders")
    (repo.root / "workspace.yaml").unlink()
    assert repo.invoke("init").returncode == 0
    assert "svc: {language: javascript, tracking_table: migratekit.schema_migrations}" in (
        (repo.root / "workspace.yaml").read_text()
    )


def test_migratekits_table_named_as_the_runners_is_refused_naming_the_setting_and_adopt(monorepo) -> None:
    repo = service_of(monorepo, "orders")  # tracking_table left at schema_migrations: the runner's own
    repo.query("svc", "INSERT INTO schema_migrations (filename) VALUES ('001_create_orders.sql') RETURNING 1")
    for flags in (["--dry-run"], []):
        result = repo.invoke("migrate-all", "--json", *flags)
        assert result.returncode == 1, result.stdout
        failure = json.loads(result.stdout)["services"][0]["failure"]
        assert failure["message"] == (
            "public.schema_migrations is this service's own runner's history (filename, applied_at, created by "
            "src/db/migrate.ts), not migratekit's: migrating now would start afresh and run every file again"
        )
        assert (
            "tracking_table: migratekit.schema_migrations" in failure["hint"]
            and "invoke adopt SERVICE" in failure["hint"]
        )
    refused = repo.invoke("adopt", "svc")
    assert refused.returncode == 2 and "tracking_table: migratekit.schema_migrations" in refused.stderr
    assert repo.query("svc", "SELECT count(*) FROM schema_migrations") == [(1,)]


def test_adopting_a_runners_unique_name_column_without_times(monorepo) -> None:
    """applied_migrations(name varchar UNIQUE, run_at): the key is the unique column; a NULL run_at is now()."""
    repo = service_of(monorepo, "billing-service")
    repo.query("svc", "INSERT INTO applied_migrations (name, run_at) VALUES ('001_invoices.sql', NULL) RETURNING 1")
    done = repo.invoke("adopt", "svc")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "recorded 1 version(s) from own-runner's public.applied_migrations into schema_migrations" in done.stdout
    assert repo.query("svc", "SELECT version FROM schema_migrations") == [("001_invoices",)]
    migrated = json.loads(repo.invoke("migrate-all", "--json").stdout)["services"][0]
    assert (migrated["outcome"], migrated["already_applied"]) == ("up_to_date", 1)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("(NULL, now())", "public.applied_migrations holds a row with no name"),
        ("('001_invoices', now())", None),  # the name without .sql: still that file
    ],
)
def test_a_runners_odd_rows_are_refused_or_read(monorepo, row: str, message: str | None) -> None:
    repo = service_of(monorepo, "billing-service")
    with psycopg.connect(repo.env["SVC_DATABASE_URL"], autocommit=True) as conn:
        conn.execute("ALTER TABLE applied_migrations ALTER COLUMN name DROP NOT NULL")
        conn.execute(f"INSERT INTO applied_migrations (name, run_at) VALUES {row}")
    result = repo.invoke("adopt", "svc")
    if message is None:
        assert result.returncode == 0, result.stderr
    else:
        assert result.returncode == 1 and message in result.stderr, result.stdout + result.stderr
        assert repo.query("svc", "SELECT to_regclass('schema_migrations')") == [(None,)]


@pytest.mark.parametrize(
    ("service", "directory", "written", "matches"),
    [
        ("catalog-service", "catalog-service", "catalog-service", True),
        ("catalog-service", "catalog-service", "catalog", True),  # the -service suffix dropped
        ("catalog", "catalog", "catalog-service", True),
        ("catalog-service", "catalog", "catalog-migrate", True),  # by its directory's name
        ("catalog", "catalog", "catalog-service-migrate", True),
        ("billing-service", "billing-service", "billing", True),
        ("order", "order", "orders-service", False),  # whole words only
        ("catalog-service", "catalog-service", "search-service", False),
        ("billing-api", "billing-api", "billing", False),  # only -service and -svc are suffixes
    ],
)
def test_deploy_files_name_services_as_written(service: str, directory: str, written: str, matches: bool) -> None:
    assert names_service(written, service_names(service, Path("services") / directory)) is matches


@pytest.mark.parametrize(
    ("source", "ddl", "insert"),
    [
        (
            "notes",
            "CREATE TABLE migrations (id serial PRIMARY KEY, name text NOT NULL, run_on timestamptz NOT NULL)",
            "INSERT INTO migrations (name, run_on) VALUES ('001_notes.sql', '2024-03-01T10:00:00Z'), "
            "('002_note_tags.sql', '2024-03-01T10:00:00Z')",
        ),
        (
            "ingest",  # f"CREATE TABLE IF NOT EXISTS {TABLE} (...)", TABLE = "migration_history"
            "CREATE TABLE migration_history (script text PRIMARY KEY, installed_on timestamptz NOT NULL)",
            "INSERT INTO migration_history VALUES ('001_notes.sql', '2024-03-01T10:00:00Z'), "
            "('002_note_tags.sql', '2024-03-01T10:00:00Z')",
        ),
    ],
)
def test_adopting_a_runners_table_of_another_name(monorepo, source: str, ddl: str, insert: str) -> None:
    repo = monorepo({"svc": {}})
    prefix = f"services/{source}/"
    files = {f"services/svc/{k[len(prefix) :]}": v for k, v in INTERPOLATED["files"].items() if k.startswith(prefix)}
    files["services/svc/migrations/001_notes.sql"] = "CREATE TABLE IF NOT EXISTS notes (id bigint);\n"
    files["services/svc/migrations/002_note_tags.sql"] = "ALTER TABLE notes ADD COLUMN IF NOT EXISTS tags text[];\n"
    write_tree(repo.root, files)
    with psycopg.connect(repo.env["SVC_DATABASE_URL"], autocommit=True) as conn:
        conn.execute(f"{ddl}; {insert}; CREATE TABLE notes (id bigint, tags text[])")
    done = repo.invoke("adopt", "svc", *(["--from", "own-runner"] if source == "ingest" else []))  # notes: auto
    assert done.returncode == 0, done.stdout + done.stderr
    table = ddl.split()[2]
    assert done.stdout.splitlines()[0] == (
        f"svc: recorded 2 version(s) from own-runner's public.{table} into schema_migrations "
        "(001_notes, 002_note_tags); 0 were already there"
    )
    assert repo.query(
        "svc", "SELECT version, applied_at = '2024-03-01T10:00:00Z' FROM schema_migrations ORDER BY 1"
    ) == [
        ("001_notes", True),
        ("002_note_tags", True),
    ]
    migrated = json.loads(repo.invoke("migrate-all", "--json").stdout)["services"][0]
    assert (migrated["outcome"], migrated["already_applied"]) == ("up_to_date", 2)


PYTHON_TEMPLATE = Path(migratekit.__file__).parent / "scaffold/templates/python/src/{{package}}/migrate.py.tmpl"


def test_mk601_knows_a_copy_of_the_python_templates_runner(tmp_path: Path) -> None:
    """A copy of the Python template's runner, its placeholders filled with whatever service it was made for, is
    the template's when unchanged; one without its lock is diverged; a hand-written migrate.py is no copy."""
    template = PYTHON_TEMPLATE.read_text()
    copy = template.replace("{{name}}", "billing-api").replace("{{package}}", "billing_api")
    unlocked = copy.replace("        _lock(conn, key)\n", "")
    assert unlocked != copy
    build(
        tmp_path,
        {
            "services": {"billing-api": "python", "reports": "python", "search": "python"},
            "files": {
                "services/billing-api/src/billing_api/migrate.py": copy,
                "services/reports/src/reports/migrate.py": unlocked.replace("billing", "reports"),
                "services/search/migrate.py": FIXTURE["files"]["services/search/migrate.py"],
            },
        },
    )
    found = [[f.code, f.service, f.path, f.message] for f in across_services(load_workspace(tmp_path))]
    assert [f for f in found if f[0] == "MK601"] == [
        [
            "MK601",
            "reports",
            "services/reports/src/reports/migrate.py",
            "differs from the template's runner: +0 -1 lines",
        ]
    ]


@pytest.mark.parametrize(
    ("written", "billing", "billing_worker"),
    [
        ("billing-worker-migrate", False, True),  # the longer name of another service wins
        ("ghcr.io/acme/billing-worker:1.0", False, True),
        ("billing-migrate", True, False),
        ("billing-service", True, False),
    ],
)
def test_a_deploy_name_is_the_service_it_names_most_closely(written: str, billing: bool, billing_worker: bool) -> None:
    mine, worker = service_names("billing", Path("services/billing")), service_names("billing-worker", Path("bw"))
    name = written.rsplit("/", 1)[-1].split(":")[0]
    assert names_service(name, mine, worker) is billing
    assert names_service(name, worker, mine) is billing_worker
    repo = Repository(Path("/r"), (), (), (), None, (("billing", mine), ("billing_worker", worker)))
    assert names_service(name, mine, repo.others("billing")) is billing  # asked by name, as the audit asks
    assert names_service(name, worker, repo.others("billing_worker")) is billing_worker


def test_a_name_two_services_are_given_is_another_services_for_each() -> None:
    """services/billing and a service billing declared in services/billing-service: both are called billing."""
    one, two = service_names("billing", Path("services/billing")), service_names("billing", Path("billing-service"))
    repo = Repository(Path("/r"), (), (), (), None, (("billing", one), ("payments", two)))
    assert names_service("billing-migrate", one, two) is names_service("billing-migrate", one, repo.others("billing"))
    assert not names_service("billing-service-migrate", one, repo.others("billing"))  # payments' longer name
    assert names_service("billing-service-migrate", two, repo.others("payments"))


HAND_WRITTEN_WITH_THE_TEMPLATES_NAMES = """\
import { Pool } from "pg";
import { readdirSync, readFileSync } from "fs";

export async function runMigrations(pool: Pool): Promise<void> {
  await pool.query("CREATE TABLE IF NOT EXISTS migrations (name text PRIMARY KEY, run_on timestamptz)");
  const done = await getAppliedMigrations(pool);
  for (const file of loadMigrations()) {
    if (!done.has(file)) await applyMigration(pool, file);
  }
}

function loadMigrations(): string[] {
  return readdirSync("migrations").filter((f) => f.endsWith(".sql")).sort();
}

async function getAppliedMigrations(pool: Pool): Promise<Set<string>> {
  const { rows } = await pool.query("SELECT name FROM migrations");
  return new Set(rows.map((r) => r.name));
}

async function applyMigration(pool: Pool, file: string): Promise<void> {
  await pool.query(readFileSync(`migrations/${file}`, "utf8"));
  await pool.query("INSERT INTO migrations (name, run_on) VALUES ($1, now())", [file]);
}
"""


def test_mk601_passes_over_a_hand_written_runner_that_shares_the_templates_function_names(tmp_path: Path) -> None:
    """loadMigrations, getAppliedMigrations, applyMigration are names anyone picks: a copy shares the lines too."""
    build(
        tmp_path,
        {
            "services": {"notes": "typescript"},
            "files": {"services/notes/src/db/migrate.ts": HAND_WRITTEN_WITH_THE_TEMPLATES_NAMES},
        },
    )
    assert [f.code for f in across_services(load_workspace(tmp_path)) if f.code == "MK601"] == []


def test_mk604_names_a_runners_table_of_the_seeds_shape_under_another_name(tmp_path: Path) -> None:
    """migration_history(version, applied_at, checksum, execution_time_ms): the seed's columns, but migratekit and
    the others' runners read schema_migrations, so neither sees what this runner applied."""
    runner = FIXTURE["files"]["services/ledger/src/database/migrate.ts"].replace(
        "schema_migrations", "migration_history"
    )
    build(tmp_path, {"services": {"ledger": "typescript"}, "files": {"services/ledger/src/db/migrate.ts": runner}})
    found = [
        [f.code, f.path, f.line, f.message] for f in across_services(load_workspace(tmp_path)) if f.code == "MK604"
    ]
    assert found == [
        [
            "MK604",
            "services/ledger/src/db/migrate.ts",
            81,
            "public.migration_history (its runner's own) has the seed's columns, but its name is not schema_migrations",
        ]
    ]


def test_a_runners_seed_shaped_table_under_another_name_is_adopted_not_run_again(monorepo) -> None:
    repo = monorepo({"svc": {}})
    runner = FIXTURE["files"]["services/ledger/src/database/migrate.ts"].replace(
        "schema_migrations", "migration_history"
    )
    write_tree(
        repo.root,
        {
            "services/svc/src/db/migrate.ts": runner,
            "services/svc/migrations/001_notes.sql": "CREATE TABLE IF NOT EXISTS notes (id bigint);\n",
        },
    )
    with psycopg.connect(repo.env["SVC_DATABASE_URL"], autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE migration_history (version TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT NOW(), "
            "checksum TEXT NOT NULL, execution_time_ms INTEGER NOT NULL); CREATE TABLE notes (id bigint); "
            "INSERT INTO migration_history (version, checksum, execution_time_ms) VALUES ('001_notes', 'x', 3)"
        )
    refused = json.loads(repo.invoke("migrate-all", "--json").stdout)["services"][0]
    assert "own runner's public.migration_history" in refused["failure"]["message"]
    done = repo.invoke("adopt", "svc")
    assert done.returncode == 0 and "recorded 1 version(s) from own-runner's public.migration_history" in done.stdout
    migrated = json.loads(repo.invoke("migrate-all", "--json").stdout)["services"][0]
    assert (migrated["outcome"], migrated["already_applied"]) == ("up_to_date", 1)


NEST_SERVICE_RUNNER = """\
import { Injectable, OnApplicationBootstrap } from "@nestjs/common";
import { DataSource } from "typeorm";

@Injectable()
export class MigrationRunner {
  private readonly table: string = "migration_history";

  constructor(private readonly db: DataSource) {}

  async run(files: string[]): Promise<void> {
    await this.db.query(`CREATE TABLE IF NOT EXISTS ${this.table} (filename text PRIMARY KEY, ran_at timestamptz)`);
    for (const file of files) {
      await this.db.query(readFileSync(file, "utf8"));
      await this.db.query(`INSERT INTO ${this.table} (filename) VALUES ($1)`, [file]);
    }
  }
}
"""


def test_a_nest_runner_class_names_its_table_in_a_readonly_field(tmp_path: Path) -> None:
    write_tree(tmp_path, {"src/db/migration-runner.service.ts": NEST_SERVICE_RUNNER})
    found = runner_table(tmp_path)
    assert found is not None
    assert (found.table, found.line, found.key, found.applied_at) == (
        "public.migration_history",
        11,
        "filename",
        "ran_at",
    )


@pytest.mark.parametrize(
    "create",
    [
        'f"CREATE TABLE IF NOT EXISTS {TABLE} (file text PRIMARY KEY, ran_at timestamptz)"',
        '"CREATE TABLE IF NOT EXISTS %s (file text PRIMARY KEY, ran_at timestamptz)" % TABLE',
        '"CREATE TABLE IF NOT EXISTS {} (file text PRIMARY KEY, ran_at timestamptz)".format(TABLE)',
        '"CREATE TABLE IF NOT EXISTS " + TABLE + " (file text PRIMARY KEY, ran_at timestamptz)"',
        'sql.SQL("CREATE TABLE IF NOT EXISTS {} (file text PRIMARY KEY, ran_at timestamptz)")'
        ".format(sql.Identifier(TABLE))",
    ],
)
def test_a_python_runners_table_named_by_a_constant_however_the_sql_is_built(tmp_path: Path, create: str) -> None:
    source = f'TABLE = "migration_log"\n\n\ndef main(cur):\n    cur.execute({create})\n'
    source += '    cur.execute(f"INSERT INTO {TABLE} (file) VALUES (%s)", ("001_x.sql",))\n'
    write_tree(tmp_path, {"migrate.py": source})
    found = runner_table(tmp_path)
    assert found is not None and (found.table, found.line, found.key) == ("public.migration_log", 5, "file")


@pytest.mark.parametrize(
    ("path", "source"),
    [
        (
            "src/migrate.ts",
            'const TABLE = "migration_log";\n\nawait db.query(\n'
            '  "CREATE TABLE IF NOT EXISTS " + TABLE + " (file text PRIMARY KEY, ran_at timestamptz)");\n'
            'await db.query("INSERT INTO " + TABLE + " (file) VALUES ($1)", [f]);\n',
        ),
        (
            "cmd/migrate/main.go",
            'package main\n\nconst table = "migration_log"\n\nfunc main() {\n'
            '\tdb.Exec("CREATE TABLE IF NOT EXISTS " + table + " (file text PRIMARY KEY, ran_at timestamptz)")\n'
            '\tdb.Exec("INSERT INTO " + table + " (file) VALUES ($1)", f)\n}\n',
        ),
    ],
)
def test_a_runners_table_name_joined_into_the_sql_with_plus(tmp_path: Path, path: str, source: str) -> None:
    write_tree(tmp_path, {path: source})
    found = runner_table(tmp_path)
    assert found is not None and (found.table, found.key) == ("public.migration_log", "file")
    assert found.line == source.count("\n", 0, source.index("CREATE")) + 1
