"""drizzle-kit's migrations in a TypeScript monorepo: its `drizzle/` directory found (drizzle.config.ts's `out` too),
applied in the order of meta/_journal.json's entries, adopted from drizzle's "drizzle"."__drizzle_migrations" in its
own DDL (rows matched to files by drizzle's SHA-256 hash and the journal's `when`), and drizzle's migrator called
before the server listens taken as the service's runner.

The fixture is one service, `orders`, as drizzle-kit generate leaves it: plain CREATE TABLE statements separated by
`--> statement-breakpoint`, a journal and its snapshots, and an image that copies drizzle/ beside the built server.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import psycopg
import pytest
import yaml

from conftest import Monorepo, applied, plain, write_tree

SERVICE = "services/orders"
OUT = f"{SERVICE}/drizzle"
BREAK = "--> statement-breakpoint\n"
CUSTOMERS = (
    'CREATE TABLE "customers" (\n\t"id" serial PRIMARY KEY NOT NULL,\n\t"email" text NOT NULL,\n'
    '\tCONSTRAINT "customers_email_unique" UNIQUE("email")\n);\n'
)
ORDERS = (
    'CREATE TABLE "orders" (\n\t"id" serial PRIMARY KEY NOT NULL,\n\t"customer_id" integer NOT NULL,\n'
    '\t"total_cents" integer NOT NULL,\n\t"created_at" timestamp DEFAULT now() NOT NULL\n);\n'
)
ORDERS_FK = (
    'ALTER TABLE "orders" ADD CONSTRAINT "orders_customer_id_customers_id_fk" FOREIGN KEY ("customer_id") '
    'REFERENCES "public"."customers"("id") ON DELETE no action ON UPDATE no action;'
)
ORDERS_INDEX = 'CREATE INDEX "orders_customer_id_idx" ON "orders" USING btree ("customer_id");'
NOTE = 'ALTER TABLE "orders" ADD COLUMN "note" text;'
REFUNDS = 'CREATE TABLE "refunds" (\n\t"id" serial PRIMARY KEY NOT NULL,\n\t"reason" text\n);\n'
TAGS = ["0000_brave_wolverine", "0001_quiet_nova", "0002_sharp_refunds"]
SQL = {
    TAGS[0]: CUSTOMERS + BREAK + ORDERS + BREAK + ORDERS_FK + BREAK + ORDERS_INDEX,
    TAGS[1]: NOTE,
    TAGS[2]: REFUNDS,
}
WHEN = [1717000000000, 1718000000000, 1719000000000]


def journal(tags: list[str], when: list[int]) -> str:
    entries = [
        {"idx": i, "version": "7", "when": w, "tag": t, "breakpoints": True}
        for i, (t, w) in enumerate(zip(tags, when, strict=True))
    ]
    return json.dumps({"version": "7", "dialect": "postgresql", "entries": entries}, indent=2)


INDEX_TS = """import { createServer } from "node:http";
import { drizzle } from "drizzle-orm/node-postgres";
import { migrate } from "drizzle-orm/node-postgres/migrator";
import { Pool } from "pg";

async function main(): Promise<void> {
  const pool = new Pool({ connectionString: process.env.ORDERS_DATABASE_URL });
  const db = drizzle(pool);
  await migrate(db, { migrationsFolder: "./drizzle" });
  createServer((_req, res) => res.end("ok")).listen(8080);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
"""
PACKAGE = {
    "name": "orders",
    "private": True,
    "scripts": {
        "build": "tsc",
        "start": "node dist/index.js",
        "db:generate": "drizzle-kit generate",
        "db:migrate": "drizzle-kit migrate",
    },
    "dependencies": {"drizzle-orm": "^0.44.0", "pg": "^8.12.0"},
    "devDependencies": {"drizzle-kit": "^0.31.0", "typescript": "^5.5.0"},
}
DOCKERFILE = """FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY . .
RUN npm run build

FROM node:20-slim
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY drizzle ./drizzle
CMD ["node", "dist/index.js"]
"""
FILES = {
    "tasks.py": "from migratekit.tasks import ns\n\n__all__ = ['ns']\n",
    f"{SERVICE}/package.json": json.dumps(PACKAGE, indent=2),
    f"{SERVICE}/package-lock.json": '{"name": "orders", "lockfileVersion": 3, "packages": {}}\n',
    f"{SERVICE}/tsconfig.json": '{"compilerOptions": {"outDir": "dist", "strict": true}}\n',
    f"{SERVICE}/drizzle.config.ts": 'import { defineConfig } from "drizzle-kit";\n\nexport default defineConfig({\n'
    '  dialect: "postgresql",\n  schema: "./src/schema.ts",\n  out: "./drizzle",\n'
    "  dbCredentials: { url: process.env.ORDERS_DATABASE_URL! },\n});\n",
    f"{SERVICE}/src/index.ts": INDEX_TS,
    f"{SERVICE}/Dockerfile": DOCKERFILE,
    f"{OUT}/meta/_journal.json": journal(TAGS, WHEN),
    **{f"{OUT}/meta/{t[:4]}_snapshot.json": '{"version": "7", "dialect": "postgresql"}\n' for t in TAGS},
    **{f"{OUT}/{tag}.sql": text for tag, text in SQL.items()},
}
# drizzle's own DDL of its table (drizzle-orm's pg-core dialect, migrate())
DRIZZLE_DDL = """CREATE SCHEMA IF NOT EXISTS "drizzle";
CREATE TABLE IF NOT EXISTS "drizzle"."__drizzle_migrations" (
    id SERIAL PRIMARY KEY,
    hash text NOT NULL,
    created_at bigint
);
"""


def drizzle_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def repo(tmp_path: Path, new_db) -> Monorepo:
    return Monorepo(write_tree(tmp_path / "repo", FILES), {"ORDERS_DATABASE_URL": new_db()})


def seed_drizzle_history(repo: Monorepo, rows: list[tuple[str, int]], schema: str = "drizzle") -> None:
    """A database drizzle's migrator left: the first two migrations' tables, and its rows (hash, created_at)."""
    ddl = DRIZZLE_DDL.replace('"drizzle"', f'"{schema}"')
    with psycopg.connect(repo.env["ORDERS_DATABASE_URL"], autocommit=True) as conn:
        conn.execute(SQL[TAGS[0]].replace(BREAK, "") + "\n" + SQL[TAGS[1]] + "\n" + ddl)
        for digest, created_at in rows:
            conn.execute(
                f'INSERT INTO "{schema}"."__drizzle_migrations" (hash, created_at) VALUES (%s, %s)',
                (digest, created_at),
            )


def recorded(repo: Monorepo) -> list[str]:
    return [v for (v,) in repo.query("orders", "SELECT version FROM schema_migrations ORDER BY version")]


def test_a_drizzle_service_audits_without_false_findings(tmp_path: Path) -> None:
    repo = Monorepo(write_tree(tmp_path / "repo", FILES), {"ORDERS_DATABASE_URL": ""})
    listed = json.loads(repo.invoke("services", "--json").stdout)["services"]
    assert [(s["name"], s["format"], s["migrations_dir"]) for s in listed] == [
        ("orders", "drizzle", "services/orders/drizzle")
    ]
    audit = repo.invoke("audit", "--format", "json")
    assert json.loads(audit.stdout)["findings"] == [], audit.stdout
    assert audit.returncode == 0
    text = repo.invoke("audit")
    assert text.returncode == 0 and "1 service(s) audited: 0 error(s), 0 warning(s)" in plain(text.stdout), text.stdout


def test_init_declares_the_drizzle_service_with_its_directory_and_format(tmp_path: Path) -> None:
    repo = Monorepo(write_tree(tmp_path / "repo", FILES), {"ORDERS_DATABASE_URL": ""})
    made = repo.invoke("init")
    assert made.returncode == 0, made.stdout + made.stderr
    declared = yaml.safe_load((repo.root / "workspace.yaml").read_text())["services"]["orders"]
    assert declared == {"language": "typescript", "migrations": "drizzle", "format": "drizzle"}, declared
    audit = repo.invoke("audit", "--format", "json")
    assert json.loads(audit.stdout)["findings"] == [], audit.stdout


def test_a_journal_or_a_migration_edited_in_place_is_audited_anew(tmp_path: Path) -> None:
    repo = Monorepo(write_tree(tmp_path / "repo", FILES), {"ORDERS_DATABASE_URL": ""})
    assert repo.invoke("audit").returncode == 0
    with open(repo.root / OUT / "meta/_journal.json", "r+") as handle:  # as drizzle-kit rewrites it: in place
        handle.write(journal(TAGS[:2], WHEN[:2]))
        handle.truncate()
    codes = [(f["code"], f["path"]) for f in json.loads(repo.invoke("audit", "--format", "json").stdout)["findings"]]
    assert codes == [("MK113", f"{OUT}/{TAGS[2]}.sql")], codes
    folders_repo(repo)
    assert repo.invoke("audit").returncode == 0
    with open(repo.root / OUT / "20240715093000_orders/migration.sql", "a") as handle:
        handle.write('ALTER TABLE "customers" ALTER COLUMN "email" SET DATA TYPE varchar(100);\n')
    codes = [f["code"] for f in json.loads(repo.invoke("audit", "--format", "json").stdout)["findings"]]
    assert codes and all(code.startswith("MK3") for code in codes), codes


def test_drizzle_configs_out_directory_is_the_services_migrations(tmp_path: Path) -> None:
    moved = {k.replace(f"{OUT}/", f"{SERVICE}/db/pg-migrations/"): v for k, v in FILES.items()}
    moved[f"{SERVICE}/drizzle.config.ts"] = FILES[f"{SERVICE}/drizzle.config.ts"].replace(
        "./drizzle", "./db/pg-migrations"
    )
    moved[f"{SERVICE}/Dockerfile"] = DOCKERFILE.replace("COPY drizzle ./drizzle", "COPY db ./db")
    moved[f"{SERVICE}/src/index.ts"] = INDEX_TS.replace("./drizzle", "./db/pg-migrations")
    repo = Monorepo(write_tree(tmp_path / "repo", moved), {"ORDERS_DATABASE_URL": ""})
    (service,) = json.loads(repo.invoke("services", "--json").stdout)["services"]
    assert (service["migrations_dir"], service["format"], service["migrations"]) == (
        "services/orders/db/pg-migrations",
        "drizzle",
        3,
    )


def test_migrate_applies_the_journals_entries_and_a_second_run_applies_nothing(repo: Monorepo) -> None:
    first = repo.invoke("migrate", "orders", "--json")
    assert first.returncode == 0, first.stdout + first.stderr
    assert applied(first) == TAGS
    assert recorded(repo) == TAGS
    assert repo.query("orders", "SELECT to_regclass('refunds') IS NOT NULL") == [(True,)]
    again = repo.invoke("migrate", "orders")
    assert again.returncode == 0
    assert "migrated 1 service(s): 0 applied, 0 failed" in again.stdout and "up to date" in again.stdout, again.stdout
    assert applied(repo.invoke("migrate", "orders", "--json")) == []


def test_a_breakpoint_ends_a_statement_as_drizzles_migrator_splits_there(repo: Monorepo) -> None:
    custom = "-- Custom SQL migration file, put your code below! --\nINSERT INTO customers (email) VALUES ('a@x')\n"
    write_tree(
        repo.root,
        {
            f"{OUT}/0003_custom.sql": custom + BREAK + "INSERT INTO customers (email) VALUES ('b@x')",
            f"{OUT}/meta/_journal.json": journal([*TAGS, "0003_custom"], [*WHEN, 1720000000000]),
        },
    )
    result = repo.invoke("migrate", "orders", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert applied(result)[-1] == "0003_custom"
    assert repo.query("orders", "SELECT email FROM customers ORDER BY id") == [("a@x",), ("b@x",)]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {f"{OUT}/0003_stray.sql": "SELECT 1;\n"},
            "services/orders/drizzle/0003_stray.sql: not in meta/_journal.json: drizzle's migrator never applies it; "
            "generate migrations with drizzle-kit generate",
        ),
        (
            {f"{OUT}/{TAGS[1]}.sql": None},
            f"_journal.json: lists {TAGS[1]}, but {TAGS[1]}.sql does not exist beside it (drizzle's migrator stops "
            "there too); restore the file, or remove its entry with drizzle-kit drop",
        ),
        (
            {f"{OUT}/meta/_journal.json": journal(TAGS, [WHEN[0], WHEN[2], WHEN[1]])},
            f"{TAGS[2]}'s when ({WHEN[1]}) is not later than {TAGS[1]}'s ({WHEN[2]}): on a database that has "
            f"{TAGS[1]}, drizzle's migrator would never apply {TAGS[2]}",
        ),
        (
            {f"{OUT}/meta/_journal.json": journal([TAGS[1], TAGS[0], TAGS[2]], WHEN)},
            f"lists {TAGS[0]} after {TAGS[1]}, but migratekit orders versions by their numbers and names",
        ),
        (
            {f"{OUT}/meta/_journal.json": "{not json"},
            "_journal.json: not drizzle-kit's journal",
        ),
    ],
)
def test_a_journal_that_drizzle_would_trip_over_is_bad_input_and_nothing_runs(
    repo: Monorepo, change: dict, message: str
) -> None:
    write_tree(repo.root, change)
    result = repo.invoke("migrate", "orders")
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in " ".join((result.stdout + result.stderr).split()), result.stdout + result.stderr
    assert repo.query("orders", "SELECT to_regclass('schema_migrations'), to_regclass('customers')") == [(None, None)]


def test_rollback_says_drizzle_has_no_down_parts_and_new_migration_leaves_drizzle_kit_to_write_them(
    repo: Monorepo,
) -> None:
    assert repo.invoke("migrate", "orders").returncode == 0
    back = repo.invoke("rollback", "orders")
    assert back.returncode == 2
    assert f"{TAGS[2]}.sql has no down part: drizzle's migrations only go forward" in back.stderr, back.stderr
    assert recorded(repo) == TAGS
    new = repo.invoke("new-migration", "orders", "add tags")
    assert new.returncode == 2 and "drizzle-kit generate (--custom for hand-written SQL)" in new.stderr, new.stderr
    assert sorted(p.name for p in (repo.root / OUT).glob("*.sql")) == [f"{t}.sql" for t in TAGS]
    service = repo.invoke("new-service", "billing", "--format", "drizzle")
    assert service.returncode == 2 and "drizzle's migrations are drizzle-kit's to write" in service.stderr, service
    assert not (repo.root / "services/billing").exists()


def test_migrate_stops_before_adopt_then_adopt_matches_drizzles_rows_by_hash_and_when(repo: Monorepo) -> None:
    seed_drizzle_history(repo, [(drizzle_hash(SQL[TAGS[0]]), WHEN[0]), (drizzle_hash(SQL[TAGS[1]]), WHEN[1])])
    stopped = repo.invoke("migrate", "orders")
    assert stopped.returncode == 1
    said = " ".join(plain(stopped.stdout + stopped.stderr).split())
    assert (
        "orders: public.schema_migrations does not exist yet, but drizzle's drizzle.__drizzle_migrations records 2 of "
        f"these migrations ({TAGS[0]}, {TAGS[1]}); migrating now would run them again" in said
    ), said
    assert "invoke adopt SERVICE --dry-run, then invoke adopt SERVICE" in said, said
    stopped_json = repo.invoke("migrate", "orders", "--json")
    (service,) = json.loads(stopped_json.stdout)["services"]
    assert service["outcome"] != "applied" and "drizzle.__drizzle_migrations" in stopped_json.stdout
    dry = repo.invoke("adopt", "orders", "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert dry.stdout == (
        "orders: would record 2 version(s) from drizzle's drizzle.__drizzle_migrations into schema_migrations "
        f"({TAGS[0]}, {TAGS[1]}); 0 were already there\n"
    ), dry.stdout
    assert repo.query("orders", "SELECT to_regclass('schema_migrations')") == [(None,)]
    adopted = repo.invoke("adopt", "orders")
    assert adopted.returncode == 0, adopted.stdout + adopted.stderr
    assert adopted.stdout == (
        "orders: recorded 2 version(s) from drizzle's drizzle.__drizzle_migrations into schema_migrations "
        f"({TAGS[0]}, {TAGS[1]}); 0 were already there\n"
    ), adopted.stdout
    assert recorded(repo) == TAGS[:2]
    assert applied(repo.invoke("migrate", "orders", "--json")) == TAGS[2:]
    assert repo.query("orders", "SELECT count(*) FROM drizzle.__drizzle_migrations") == [(2,)]  # never touched
    drift = repo.invoke("drift", "--json", "--schema")
    (service,) = json.loads(drift.stdout)["services"]
    assert (drift.returncode, service["items"], service["schema"]) == (0, [], []), drift.stdout


def test_adopt_takes_duplicate_and_reordered_rows_once_and_finds_drizzles_table_in_any_schema(repo: Monorepo) -> None:
    rows = [(drizzle_hash(SQL[TAGS[1]]), WHEN[1]), (drizzle_hash(SQL[TAGS[0]]), WHEN[0])]
    seed_drizzle_history(repo, rows + rows[:1], schema="ops")  # migrationsSchema: "ops"
    adopted = repo.invoke("adopt", "orders")
    assert adopted.returncode == 0, adopted.stdout + adopted.stderr
    assert "ops.__drizzle_migrations" in adopted.stdout
    assert recorded(repo) == TAGS[:2]


def test_drizzles_table_under_another_name_is_found_by_its_columns(repo: Monorepo) -> None:
    seed_drizzle_history(repo, [(drizzle_hash(SQL[TAGS[0]]), WHEN[0])])
    with psycopg.connect(repo.env["ORDERS_DATABASE_URL"], autocommit=True) as conn:
        conn.execute('ALTER TABLE "drizzle"."__drizzle_migrations" RENAME TO "orders_migrations"')  # migrationsTable
    stopped = repo.invoke("migrate", "orders")
    assert stopped.returncode == 1 and "drizzle's drizzle.orders_migrations records 1" in stopped.stdout
    adopted = repo.invoke("adopt", "orders", "--from", "drizzle")
    assert adopted.returncode == 0, adopted.stdout + adopted.stderr
    assert recorded(repo) == TAGS[:1]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            [(drizzle_hash(SQL[TAGS[0]]), WHEN[0]), (drizzle_hash("ALTER TABLE orders ADD note text;"), WHEN[1])],
            f"records {TAGS[1]}.sql (created_at {WHEN[1]}) with another hash than the file has now: the file was "
            "edited after drizzle applied it",
        ),
        (
            [(drizzle_hash(SQL[TAGS[0]]), WHEN[0]), (drizzle_hash("CREATE TABLE elsewhere (id int);"), 1800000000000)],
            "holds a row of created_at 1800000000000, newer than every file's when (the newest, 1719000000000, is "
            f"{TAGS[2]}.sql), and no file has its hash: drizzle would apply none of these files",
        ),
        (
            [(drizzle_hash(SQL[TAGS[0]]), WHEN[0]), (drizzle_hash(SQL[TAGS[2]]), WHEN[2])],
            f"older than the newest applied, but never applied by the other tool: {TAGS[1]}.sql",
        ),
        (
            [(drizzle_hash(SQL[TAGS[0]]), WHEN[0]), (drizzle_hash("SELECT 'gone';"), 1717500000000)],
            "records as applied, but no file matches: a migration of created_at 1717500000000",
        ),
    ],
)
def test_adopt_says_what_drizzle_would_do_with_odd_rows_and_writes_nothing(
    repo: Monorepo, rows: list[tuple[str, int]], message: str
) -> None:
    seed_drizzle_history(repo, rows)
    adopted = repo.invoke("adopt", "orders")
    assert adopted.returncode == 1, adopted.stdout + adopted.stderr
    assert message in " ".join(adopted.stderr.split()), adopted.stderr
    assert repo.query("orders", "SELECT to_regclass('schema_migrations')") == [(None,)]


# drizzle-kit 1.0: a directory per migration, no journal; its table gains name and applied_at
FOLDERS = {
    f"{OUT}/20240601120000_init/migration.sql": CUSTOMERS,
    f"{OUT}/20240601120000_init/snapshot.json": "{}\n",
    f"{OUT}/20240715093000_orders/migration.sql": ORDERS,
    f"{OUT}/20240715093000_orders/snapshot.json": "{}\n",
}
DRIZZLE_1_DDL = DRIZZLE_DDL.replace(
    "created_at bigint", "created_at bigint,\n    name text,\n    applied_at timestamp with time zone DEFAULT now()"
)


def folders_repo(repo: Monorepo) -> Monorepo:
    write_tree(repo.root, {k: None for k in FILES if k.startswith(f"{OUT}/")} | FOLDERS)
    return repo


def test_drizzle_kit_1_directories_apply_in_their_names_order_and_adopt_by_name(repo: Monorepo) -> None:
    folders_repo(repo)
    (service,) = json.loads(repo.invoke("services", "--json").stdout)["services"]
    assert (service["format"], service["migrations"]) == ("drizzle", 2)
    with psycopg.connect(repo.env["ORDERS_DATABASE_URL"], autocommit=True) as conn:
        conn.execute(CUSTOMERS + DRIZZLE_1_DDL)
        conn.execute(
            'INSERT INTO "drizzle"."__drizzle_migrations" (hash, created_at, name) VALUES (%s, %s, %s)',
            (drizzle_hash(CUSTOMERS), 1717243200000, "20240601120000_init"),
        )
    stopped = repo.invoke("migrate", "orders")
    assert stopped.returncode == 1 and "records 1 of these migrations (20240601120000_init)" in stopped.stdout
    adopted = repo.invoke("adopt", "orders")
    assert adopted.returncode == 0, adopted.stdout + adopted.stderr
    assert applied(repo.invoke("migrate", "orders", "--json")) == ["20240715093000_orders"]
    assert recorded(repo) == ["20240601120000_init", "20240715093000_orders"]


def test_a_journals_rows_are_adopted_after_drizzle_kit_up_moved_the_files_into_directories(repo: Monorepo) -> None:
    """drizzle-kit up names each directory by its entry's `when` to the second: a row is matched by its hash."""
    folders_repo(repo)
    with psycopg.connect(repo.env["ORDERS_DATABASE_URL"], autocommit=True) as conn:
        conn.execute(CUSTOMERS + DRIZZLE_DDL)
        conn.execute(
            'INSERT INTO "drizzle"."__drizzle_migrations" (hash, created_at) VALUES (%s, %s)',
            (drizzle_hash(CUSTOMERS), 1717243200123),
        )
    adopted = repo.invoke("adopt", "orders")
    assert adopted.returncode == 0, adopted.stdout + adopted.stderr
    assert recorded(repo) == ["20240601120000_init"]


def test_a_start_path_that_only_pushes_the_schema_has_no_runner(tmp_path: Path) -> None:
    pushed = dict(FILES)
    pushed[f"{SERVICE}/src/index.ts"] = NO_CALL
    scripts = {"build": "tsc", "start": "drizzle-kit push && node dist/index.js", "db:generate": "drizzle-kit generate"}
    pushed[f"{SERVICE}/package.json"] = json.dumps(PACKAGE | {"scripts": scripts}, indent=2)
    pushed[f"{SERVICE}/Dockerfile"] = DOCKERFILE.replace('CMD ["node", "dist/index.js"]', 'CMD ["npm", "start"]')
    repo = Monorepo(write_tree(tmp_path / "repo", pushed), {"ORDERS_DATABASE_URL": ""})
    codes = [f["code"] for f in json.loads(repo.invoke("audit", "--format", "json").stdout)["findings"]]
    assert codes == ["MK401"], repo.invoke("audit").stdout


NO_CALL = INDEX_TS.replace('  await migrate(db, { migrationsFolder: "./drizzle" });\n', "").replace(
    'import { migrate } from "drizzle-orm/node-postgres/migrator";\n', ""
)
CLI_IMAGE = DOCKERFILE.replace('CMD ["node", "dist/index.js"]', "COPY drizzle.config.ts ./\n{cmd}")
DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata: {name: orders}
spec:
  template:
    spec:
      initContainers:
        - {name: migrate, image: "acme/orders:v3", command: [npx, drizzle-kit, migrate]}
      containers:
        - {name: orders, image: "acme/orders:v3"}
"""


@pytest.mark.parametrize(
    "wiring",
    [
        {  # package.json's start script, which the image runs
            f"{SERVICE}/package.json": json.dumps(
                PACKAGE | {"scripts": PACKAGE["scripts"] | {"start": "drizzle-kit migrate && node dist/index.js"}}
            ),
            f"{SERVICE}/Dockerfile": CLI_IMAGE.format(cmd='CMD ["npm", "start"]'),
        },
        {  # the image's command
            f"{SERVICE}/Dockerfile": CLI_IMAGE.format(
                cmd='CMD ["sh", "-c", "npx drizzle-kit migrate && node dist/index.js"]'
            ),
        },
        {  # an entrypoint script
            f"{SERVICE}/Dockerfile": CLI_IMAGE.format(cmd='COPY entrypoint.sh ./\nCMD ["sh", "entrypoint.sh"]'),
            f"{SERVICE}/entrypoint.sh": "#!/bin/sh\nset -e\nnpx drizzle-kit migrate\nexec node dist/index.js\n",
        },
        {  # a Kubernetes init container of the same image
            f"{SERVICE}/Dockerfile": CLI_IMAGE.format(cmd='CMD ["node", "dist/index.js"]'),
            f"{SERVICE}/k8s/deployment.yaml": DEPLOYMENT,
        },
    ],
    ids=["package-script", "image-command", "entrypoint", "init-container"],
)
def test_drizzle_kit_migrate_before_the_server_is_the_runner(tmp_path: Path, wiring: dict) -> None:
    files = FILES | {f"{SERVICE}/src/index.ts": NO_CALL} | wiring
    repo = Monorepo(write_tree(tmp_path / "repo", files), {"ORDERS_DATABASE_URL": ""})
    audit = repo.invoke("audit", "--format", "json")
    assert json.loads(audit.stdout)["findings"] == [], repo.invoke("audit").stdout


def test_migrate_called_after_the_server_listens_is_mk406(tmp_path: Path) -> None:
    late = dict(FILES)
    migrating = '  await migrate(db, { migrationsFolder: "./drizzle" });\n'
    listening = '  createServer((_req, res) => res.end("ok")).listen(8080);\n'
    late[f"{SERVICE}/src/index.ts"] = INDEX_TS.replace(migrating + listening, listening + migrating)
    scripts = {k: v for k, v in PACKAGE["scripts"].items() if k != "db:migrate"}
    late[f"{SERVICE}/package.json"] = json.dumps(PACKAGE | {"scripts": scripts}, indent=2)
    repo = Monorepo(write_tree(tmp_path / "repo", late), {"ORDERS_DATABASE_URL": ""})
    codes = [f["code"] for f in json.loads(repo.invoke("audit", "--format", "json").stdout)["findings"]]
    assert codes == ["MK406"], repo.invoke("audit").stdout


def test_a_migrations_folder_the_image_does_not_have_is_mk405(tmp_path: Path) -> None:
    wrong = FILES | {f"{SERVICE}/src/index.ts": INDEX_TS.replace('"./drizzle"', '"./migrations"')}
    repo = Monorepo(write_tree(tmp_path / "repo", wrong), {"ORDERS_DATABASE_URL": ""})
    text = plain(repo.invoke("audit").stdout)
    assert (
        "MK405 error services/orders/src/index.ts:9: drizzle's migrator reads /app/migrations in the image; the "
        "Dockerfile puts migrations at /app/drizzle"
    ) in text, text


def test_the_audit_finds_seeded_defects_in_drizzles_files(tmp_path: Path) -> None:
    seeded = dict(FILES)
    seeded[f"{OUT}/{TAGS[2]}.sql"] = (
        REFUNDS + BREAK + 'ALTER TABLE "orders" ALTER COLUMN "total_cents" SET DATA TYPE bigint;'
    )
    seeded[f"{OUT}/0003_forgotten.sql"] = 'ALTER TABLE "orders" ADD COLUMN "coupon" text;'
    seeded[f"{OUT}/0004_concurrent.sql"] = 'CREATE INDEX CONCURRENTLY "orders_created_idx" ON "orders" ("created_at");'
    seeded[f"{OUT}/meta/_journal.json"] = journal([*TAGS, "0004_concurrent"], [*WHEN, 1720000000000])
    repo = Monorepo(write_tree(tmp_path / "repo", seeded), {"ORDERS_DATABASE_URL": ""})
    audit = repo.invoke("audit", "--format", "json")
    found = {(f["code"], f["path"].rsplit("/", 1)[-1]) for f in json.loads(audit.stdout)["findings"]}
    assert ("MK113", "0003_forgotten.sql") in found, found
    assert ("MK202", "0004_concurrent.sql") in found, found  # outside a transaction: held to idempotency
    assert any(code.startswith("MK3") and path == f"{TAGS[2]}.sql" for code, path in found), found
    assert not any(code.startswith("MK2") and path != "0004_concurrent.sql" for code, path in found), found
    assert audit.returncode == 1
    text = plain(repo.invoke("audit").stdout)
    assert "MK113 warning services/orders/drizzle/0003_forgotten.sql: not in meta/_journal.json" in text, text


def test_drizzle_1_0_directories_are_not_taken_for_prisma(tmp_path: Path) -> None:
    """Both write <timestamp>_<name>/migration.sql: drizzle-kit 1.0's snapshot.json beside each says whose they are,
    and Prisma's lock file says Prisma's."""
    from migratekit.model.formats import Format
    from migratekit.model.migration import load_migrations

    drizzle_dir = write_tree(
        tmp_path / "d",
        {"20240601120000_init/migration.sql": "CREATE TABLE a (id int);\n", "20240601120000_init/snapshot.json": "{}"},
    )
    prisma_dir = write_tree(
        tmp_path / "p",
        {
            "20240601120000_init/migration.sql": "CREATE TABLE a (id int);\n",
            "migration_lock.toml": 'provider = "postgresql"\n',
        },
    )
    assert [m.format for m in load_migrations(drizzle_dir)] == [Format.DRIZZLE]
    assert [m.format for m in load_migrations(prisma_dir)] == [Format.PRISMA]
    assert [m.version for m in load_migrations(drizzle_dir)] == ["20240601120000_init"]


@pytest.mark.parametrize(
    ("config", "out"),
    [
        ('export default defineConfig({ dialect: "postgresql", out: "./db/drizzle" });\n', ("db/drizzle",)),
        ("export default { out: 'migrations/', schema: './src/schema.ts' };\n", ("migrations",)),
        ("export default defineConfig({ out: `./sql` });\n", ("sql",)),  # a template without substitutions
        ('export default defineConfig({ "out": "./quoted" });\n', ("quoted",)),
        (  # a commented-out out, then the real one
            '// out: "./old",\nexport default defineConfig({\n  /* out: "./older" */\n  out: "./drizzle",\n});\n',
            ("drizzle",),
        ),
        ("const dir = process.env.OUT;\nexport default defineConfig({ out: dir });\n", ()),  # computed at run time
        ("export default defineConfig({ out: `${base}/drizzle` });\n", ()),  # a substitution
        ('export default defineConfig({ out: "../shared/drizzle" });\n', ()),  # leaves the service
        ('export default defineConfig({ out: "/abs/drizzle" });\n', ()),
        ('export default defineConfig({ schema: "./src/schema.ts" });\n', ()),  # drizzle-kit's default
    ],
)
def test_drizzle_configs_out_is_read_from_its_syntax_tree(tmp_path: Path, config: str, out: tuple[str, ...]) -> None:
    """The `out` key of the config object as TypeScript writes it: comments, quotes and computed values are the
    parser's to tell apart."""
    from migratekit.model.discovery import drizzle_out

    (tmp_path / "drizzle.config.ts").write_text(config)
    assert drizzle_out(tmp_path) == out
