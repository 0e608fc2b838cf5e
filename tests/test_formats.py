"""Other tools' layouts on a real PostgreSQL: applied from empty, re-run as a no-op, rolled back and applied
again to the same schema; down parts never run forward; versions in numeric order."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from conftest import Monorepo, write_tree
from migratekit.database.schema import snapshot
from migratekit.model.formats import Format
from migratekit.model.migration import load_migrations

STEPS = [
    ("001_create_a", "CREATE TABLE IF NOT EXISTS a (id int PRIMARY KEY);", "DROP TABLE IF EXISTS a;"),
    ("002_add_name", "ALTER TABLE a ADD COLUMN IF NOT EXISTS name text;", "ALTER TABLE a DROP COLUMN IF EXISTS name;"),
    ("003_create_c", "CREATE TABLE IF NOT EXISTS c (id int);", "DROP TABLE IF EXISTS c;"),
]


def files(fmt: str, steps: list[tuple[str, str, str]]) -> dict[str, str]:
    """Migration files of `fmt` for (name, up, down) steps."""
    out = {}
    for name, up, down in steps:
        if fmt == "updown":
            out[f"{name}.up.sql"] = up + "\n"
            out[f"{name}.down.sql"] = down + "\n"
        elif fmt == "dbmate":
            out[f"{name}.sql"] = f"-- migrate:up\n{up}\n\n-- migrate:down\n{down}\n"
        elif fmt == "goose":
            out[f"{name}.sql"] = (
                f"-- +goose Up\n-- +goose StatementBegin\n{up}\n-- +goose StatementEnd\n\n-- +goose Down\n{down}\n"
            )
        elif fmt == "node-pg-migrate":
            out[f"{name}.sql"] = f"-- Up Migration\n{up}\n\n-- Down Migration\n{down}\n"
        else:
            out[f"{name}.sql"] = f"-- Migration: {name}\n{up}\n"
    return out


def service(repo: Monorepo, name: str, fmt: str, steps: list[tuple[str, str, str]]) -> None:
    for filename, text in files(fmt, steps).items():
        repo.migration(name, filename, text)


def run(repo: Monorepo, *args: str) -> tuple[int, dict]:
    result = repo.invoke(*args, "--json")
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, json.loads(result.stdout) if result.stdout.strip() else {}


def schema(repo: Monorepo, name: str) -> dict:
    with psycopg.connect(repo.env[f"{name.upper()}_DATABASE_URL"]) as conn:
        shape = snapshot(conn)
    return {k: v for k, v in shape.items() if "schema_migrations" not in str(k)}


@pytest.mark.parametrize("fmt", ["updown", "dbmate", "goose", "node-pg-migrate"])
def test_a_format_applies_re_runs_rolls_back_and_applies_again(monorepo, fmt: str) -> None:
    repo = monorepo({"svc": {}})
    service(repo, "svc", fmt, STEPS)
    code, first = run(repo, "migrate-all")
    assert code == 0, first
    assert [a["version"] for a in first["services"][0]["applied"]] == [s[0] for s in STEPS]
    full = schema(repo, "svc")
    assert run(repo, "migrate-all")[1]["services"][0]["outcome"] == "up_to_date"
    code, undone = run(repo, "rollback", "svc", "--steps", "2")
    assert (code, [a["version"] for a in undone["rolled_back"]]) == (0, ["003_create_c", "002_add_name"]), undone
    assert repo.query("svc", "SELECT version FROM schema_migrations") == [("001_create_a",)]
    assert repo.query("svc", "SELECT to_regclass('c')") == [(None,)]
    code, again = run(repo, "migrate-all")
    assert [a["version"] for a in again["services"][0]["applied"]] == ["002_add_name", "003_create_c"]
    assert schema(repo, "svc") == full
    sql_findings = [f for f in run(repo, "audit")[1]["findings"] if f["code"][2] in "123" and f["code"] != "MK105"]
    assert sql_findings == []  # every file rule reads this format (the wiring is not part of this fixture)


@pytest.mark.parametrize("fmt", ["updown", "dbmate", "goose", "node-pg-migrate"])
def test_a_down_part_never_runs_forward(monorepo, fmt: str) -> None:
    repo = monorepo({"svc": {}})
    service(repo, "svc", fmt, [("001_init", "CREATE TABLE IF NOT EXISTS a (id int);", "SELECT 1/0; DROP TABLE a;")])
    code, result = run(repo, "migrate-all")
    assert code == 0, result
    assert repo.query("svc", "SELECT to_regclass('a') IS NOT NULL") == [(True,)]


@pytest.mark.parametrize("fmt", ["seed", "updown", "dbmate", "goose"])
def test_version_1000_follows_999(monorepo, fmt: str) -> None:
    repo = monorepo({"svc": {}})
    service(
        repo,
        "svc",
        fmt,
        [
            ("1000_second", "CREATE TABLE IF NOT EXISTS b (id int REFERENCES a (id));", "DROP TABLE b;"),
            ("999_first", "CREATE TABLE IF NOT EXISTS a (id int PRIMARY KEY);", "DROP TABLE a;"),
        ],
    )
    code, result = run(repo, "migrate-all")
    assert code == 0, result
    assert [a["version"] for a in result["services"][0]["applied"]] == ["999_first", "1000_second"]


def test_the_seed_only_goes_forward(monorepo) -> None:
    repo = monorepo({"svc": {}})
    service(repo, "svc", "seed", STEPS)
    assert run(repo, "migrate-all")[0] == 0
    result = repo.invoke("rollback", "svc")
    assert result.returncode == 2
    assert "003_create_c.sql has no down part: the seed's migrations only go forward" in result.stderr
    assert len(repo.query("svc", "SELECT version FROM schema_migrations")) == 3


def test_a_directory_mixing_formats_is_refused_naming_the_files(monorepo) -> None:
    repo = monorepo({"svc": {}})
    repo.migration("svc", "001_init.up.sql", "CREATE TABLE IF NOT EXISTS a (id int);\n")
    repo.migration("svc", "002_more.sql", "-- migrate:up\nCREATE TABLE IF NOT EXISTS b (id int);\n")
    result = repo.invoke("migrate-all")
    assert result.returncode == 2
    assert "mixes migration formats (dbmate: 002_more.sql; updown: 001_init.up.sql)" in result.stderr
    assert repo.query("svc", "SELECT to_regclass('a')") == [(None,)]


def test_the_audit_reports_a_mixed_directory_and_audits_every_other_service(monorepo) -> None:
    """One stray file must not stop the audit of a whole monorepo: MK117 names it, the others are read."""
    repo = monorepo({"svc": {}, "other": {}})
    repo.migration("svc", "001_init.up.sql", "CREATE TABLE IF NOT EXISTS a (id int);\n")
    repo.migration("svc", "002_more.sql", "-- migrate:up\nCREATE TABLE IF NOT EXISTS b (id int);\n")
    repo.migration("other", "001_init.sql", "CREATE TABLE a (id int);\n")  # MK201: not idempotent
    result = repo.invoke("audit", "--json")
    assert result.returncode == 1, result.stderr
    found = {(f["code"], f["service"]) for f in json.loads(result.stdout)["findings"]}
    assert {("MK117", "svc"), ("MK201", "other")} <= found
    assert repo.invoke("migrate-all").returncode == 2  # migrate still refuses the directory, before anything runs


def test_formats_side_by_side_migrate_in_dependency_order(monorepo) -> None:
    repo = monorepo(
        {
            "accounts": {},
            "orders": {
                "depends_on": ["accounts"],
                "database": "accounts",
                "tracking_table": "orders.schema_migrations",
            },
            "events": {"format": "goose"},
            "legacy": {},
        }
    )
    repo.env["ORDERS_DATABASE_URL"] = repo.env["ACCOUNTS_DATABASE_URL"]
    service(
        repo,
        "accounts",
        "updown",
        [("1_accounts", "CREATE TABLE IF NOT EXISTS accounts (id int PRIMARY KEY);", "DROP TABLE accounts;")],
    )
    service(
        repo,
        "orders",
        "dbmate",
        [
            (
                "20240101000000_orders",
                "CREATE SCHEMA IF NOT EXISTS orders;\n"
                "CREATE TABLE IF NOT EXISTS orders.orders (account int REFERENCES public.accounts (id));",
                "DROP SCHEMA orders CASCADE;",
            )
        ],
    )
    nested = repo.root / "services" / "platform" / "events"  # nested: the service platform-events
    nested.parent.mkdir(parents=True)
    (repo.root / "services" / "events").rename(nested)
    workspace = (repo.root / "workspace.yaml").read_text().replace("  events:", "  platform-events:")
    (repo.root / "workspace.yaml").write_text(workspace)
    repo.env["PLATFORM_EVENTS_DATABASE_URL"] = repo.env.pop("EVENTS_DATABASE_URL")
    events = [("00001_events", "CREATE TABLE IF NOT EXISTS events (id int);", "DROP TABLE events;")]
    service(repo, "platform/events", "goose", events)
    service(repo, "legacy", "seed", [("001_init", "CREATE TABLE IF NOT EXISTS legacy (id int);", "")])
    code, result = run(repo, "migrate-all")
    assert code == 0, result
    assert {s["service"]: [a["version"] for a in s["applied"]] for s in result["services"]} == {
        "accounts": ["1_accounts"],
        "orders": ["20240101000000_orders"],
        "platform-events": ["00001_events"],
        "legacy": ["001_init"],
    }
    assert repo.query("accounts", "SELECT version FROM orders.schema_migrations") == [("20240101000000_orders",)]


def test_other_tools_directories_are_found_migrated_declared_and_extended(tmp_path, new_db) -> None:
    """dbmate's default db/migrations and Go's internal/db/migrations, as real monorepos keep them: found without
    a workspace.yaml under the service's own name, applied, declared by init, and new migrations go there."""
    root = tmp_path / "repo"
    write_tree(root, {"tasks.py": "from migratekit.tasks import ns\n"})
    repo = Monorepo(root, {"AUTH_DATABASE_URL": new_db(), "BILLING_DATABASE_URL": new_db()})
    for filename, text in files("dbmate", STEPS[:2]).items():
        repo.write(f"services/auth/db/migrations/{filename}", text)
    for filename, text in files("goose", STEPS[2:]).items():
        repo.write(f"services/billing/internal/db/migrations/{filename}", text)
    code, found = run(repo, "services")
    assert {s["name"]: s["migrations_dir"] for s in found["services"]} == {
        "auth": "services/auth/db/migrations",
        "billing": "services/billing/internal/db/migrations",
    }
    assert repo.invoke("init").returncode == 0
    declared = (root / "workspace.yaml").read_text()
    assert "auth: {language: unknown, migrations: db/migrations, format: dbmate" in declared
    assert "billing: {language: unknown, migrations: internal/db/migrations, format: goose}" in declared
    code, result = run(repo, "migrate-all")
    assert code == 0, result
    assert {s["service"]: [a["version"] for a in s["applied"]] for s in result["services"]} == {
        "auth": ["001_create_a", "002_add_name"],
        "billing": ["003_create_c"],
    }
    assert repo.query("billing", "SELECT to_regclass('c') IS NOT NULL") == [(True,)]
    assert repo.invoke("new-migration", "auth", "add email").returncode == 0
    assert [p.name for p in (root / "services/auth/db/migrations").glob("003_add_email*")] == ["003_add_email.sql"]
    assert not (root / "services/auth/migrations").exists()
    code, again = run(repo, "migrate-all")
    assert code == 0 and [s["outcome"] for s in again["services"]] == ["applied", "up_to_date"], again
    assert [a["version"] for a in again["services"][0]["applied"]] == ["003_add_email"]


@pytest.mark.parametrize(
    ("fmt", "second"),
    [
        ("seed", ["002_add_invoices_table.sql"]),
        ("updown", ["002_add_invoices_table.up.sql", "002_add_invoices_table.down.sql"]),
        ("dbmate", ["002_add_invoices_table.sql"]),
        ("goose", ["002_add_invoices_table.sql"]),
    ],
)
def test_scaffolds_write_the_services_format(tmp_path, new_db, fmt: str, second: list[str]) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    (root / "tasks.py").write_text("from migratekit.tasks import ns\n")
    repo = Monorepo(root, {"BILLING_DATABASE_URL": new_db()})
    assert repo.invoke("new-service", "billing", "--format", fmt).returncode == 0
    made = repo.invoke("new-migration", "billing", "add invoices table")
    assert made.returncode == 0, made.stderr
    migrations = root / "services" / "billing" / "migrations"
    assert set(second) <= {p.name for p in migrations.iterdir()}
    code, result = run(repo, "migrate-all")
    assert code == 0, result
    assert repo.query("billing", "SELECT to_regclass('invoices') IS NOT NULL") == [(True,)]
    if fmt != "seed":
        assert run(repo, "rollback", "billing")[0] == 0
        assert repo.query("billing", "SELECT to_regclass('invoices')") == [(None,)]
    findings = [f["code"] for f in run(repo, "audit")[1]["findings"]]
    assert findings == [], findings


@pytest.mark.parametrize("fmt", ["updown", "dbmate", "goose"])
def test_new_migration_after_999_is_1000_and_after_a_timestamp_a_later_one(monorepo, fmt: str) -> None:
    repo = monorepo({"svc": {}})
    service(repo, "svc", fmt, [("999_last", "SELECT 1;", "SELECT 1;")])
    repo.invoke("new-migration", "svc", "next one")
    assert any(p.name.startswith("1000_next_one") for p in (repo.root / "services/svc/migrations").iterdir())
    stamp = "20240101000000"
    service(repo, "svc", fmt, [(f"{stamp}_stamped", "SELECT 1;", "SELECT 1;")])
    repo.invoke("new-migration", "svc", "after the stamp")
    newest = max(
        p.name.split("_", 1)[0] for p in (repo.root / "services/svc/migrations").iterdir() if "after" in p.name
    )
    assert len(newest) == 14 and newest > stamp


def test_a_rollback_waits_for_a_held_migration_lock_and_names_its_holder(monorepo) -> None:
    from migratekit.database.rollback import rollback_service
    from migratekit.model.migration import load_migrations
    from migratekit.model.settings import SERVICE_DEFAULTS, RunOptions

    repo = monorepo({"svc": {}})
    service(repo, "svc", "dbmate", STEPS)
    assert run(repo, "migrate-all")[0] == 0
    url = repo.env["SVC_DATABASE_URL"]
    migrations = load_migrations(repo.root / "services" / "svc" / "migrations")
    with psycopg.connect(url, autocommit=True, application_name="other-runner") as other:
        other.execute(
            "SELECT pg_advisory_lock(hashtextextended('migratekit:' || current_database() || ':schema_migrations', 0))"
        )
        result = rollback_service("svc", url, migrations, SERVICE_DEFAULTS, RunOptions(lock_wait=0.3))
        assert result.outcome == "failed"
        assert f"backend pid {other.info.backend_pid} (other-runner" in result.failure.message
    assert len(repo.query("svc", "SELECT version FROM schema_migrations")) == 3
    assert rollback_service("svc", url, migrations).outcome == "rolled_back"
    assert len(repo.query("svc", "SELECT version FROM schema_migrations")) == 2


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("001_a.up.sql", "CREATE TABLE a (id int);", "updown"),
        ("001_a.sql", "--migrate:up transaction:false\nSELECT 1;\n-- migrate:down\n", "dbmate"),
        ("001_a.sql", "-- +GOOSE UP\nSELECT 1;\n", "goose"),
        ("001_a.sql", "-- we migrate: later\n-- the goose is loose\nSELECT 'migrate:up';\n", "seed"),
    ],
)
def test_a_files_format_is_told_by_its_name_and_its_markers(name: str, text: str, expected: str) -> None:
    from migratekit.model.formats import format_of

    assert format_of(name, text) == expected


@pytest.mark.parametrize("fmt", list(Format))
def test_every_format_writes_reads_and_names_its_own_files(fmt: Format) -> None:
    """A format is a closed set handled in one place: one without its writer, detector, sections or names
    fails here, for every member of Format."""
    from migratekit.model.formats import (
        Version,
        contradicts,
        file_name,
        format_of,
        migration_files,
        new_version,
        sections,
        version_of,
    )

    version = new_version(fmt, "002" if fmt is not Format.FLYWAY else "2", "add_b")
    files = migration_files(fmt, version, "CREATE TABLE IF NOT EXISTS b (id int);", "DROP TABLE IF EXISTS b;")
    forward = file_name(version, fmt)
    assert forward in files
    if fmt is Format.SQLX:  # sqlx's names are golang-migrate's: its service's Cargo.toml tells it (not a contradiction)
        assert format_of(forward, files[forward]) is Format.UPDOWN and not contradicts(fmt, Format.UPDOWN)
    elif fmt is Format.DRIZZLE:  # drizzle-kit 1.0's <version>/migration.sql is Prisma's shape: its directory tells
        assert format_of(forward, files[forward]) is Format.PRISMA  # (drizzle's snapshot.json, or Prisma's lock file)
    elif fmt is Format.ATLAS:  # Atlas's names are the seed's: the atlas.sum beside them tells it
        assert format_of(forward, files[forward]) is Format.SEED and not contradicts(fmt, Format.SEED)
    else:
        assert format_of(forward, files[forward]) is fmt
    assert version_of(forward, fmt) == version
    assert Version.of_file(forward) == Version(version, 2, "add_b")
    up = sections(fmt, files[forward]).up
    assert "CREATE TABLE IF NOT EXISTS b" in up and "DROP TABLE" not in up  # a down part never runs forward


@pytest.mark.parametrize(
    ("declared", "fmt", "named"),
    [
        ("seed", "updown", "001_init.down.sql"),  # a golang-migrate down file would run forward, first
        ("seed", "dbmate", "001_init.sql"),
        ("seed", "goose", "001_init.sql"),
        ("seed", "node-pg-migrate", "001_init.sql"),  # after adopt --from node-pg-migrate, its down section ran
        ("updown", "seed", "001_init.sql"),  # read as updown, it would be skipped, never applied
        ("goose", "dbmate", "001_init.sql"),
    ],
)
@pytest.mark.parametrize("where", ["service", "defaults"])
def test_a_declared_format_the_files_contradict_stops_migrate_and_changes_nothing(
    monorepo, declared: str, fmt: str, named: str, where: str
) -> None:
    repo = monorepo({"svc": {"format": declared} if where == "service" else {}})
    if where == "defaults":
        repo.write("workspace.yaml", f"version: 1\ndefaults: {{format: {declared}}}\nservices:\n  svc: {{}}\n")
    service(
        repo, "svc", fmt, [("001_init", "CREATE TABLE IF NOT EXISTS a (id int);", "DROP TABLE IF EXISTS precious;")]
    )
    with psycopg.connect(repo.env["SVC_DATABASE_URL"], autocommit=True) as conn:
        conn.execute("CREATE TABLE precious (x int)")
    for command in ("migrate-all", "migrate svc --dry-run"):
        result = repo.invoke(*command.split())
        assert result.returncode == 2, result.stdout + result.stderr
        assert "Traceback" not in result.stderr
        assert f"declares format: {declared}" in result.stderr and named in result.stderr
        assert "down part could run forward" in result.stderr
    assert repo.query("svc", "SELECT to_regclass('precious') IS NOT NULL, to_regclass('a')") == [(True, None)]
    assert repo.query("svc", "SELECT to_regclass('public.schema_migrations')") == [(None,)]


# (format, the file edited after it was applied, the edit); a CRLF checkout is not an edit
EDITED_AFTER_APPLYING = [
    ("dbmate", "003_create_c.sql", lambda text: text.replace("DROP TABLE IF EXISTS c;", "DROP TABLE IF EXISTS a;")),
    ("goose", "003_create_c.sql", lambda text: text.replace("DROP TABLE IF EXISTS c;", "DROP TABLE IF EXISTS a;")),
    ("updown", "003_create_c.up.sql", lambda text: text + "-- reviewed\n"),
]


@pytest.mark.parametrize(("fmt", "filename", "edit"), EDITED_AFTER_APPLYING, ids=[c[0] for c in EDITED_AFTER_APPLYING])
def test_rollback_refuses_a_file_edited_since_it_was_applied_unless_told(
    monorepo, fmt: str, filename: str, edit
) -> None:
    repo = monorepo({"svc": {}})
    service(repo, "svc", fmt, STEPS)
    assert run(repo, "migrate-all")[0] == 0
    path = repo.root / "services/svc/migrations" / filename
    applied = repo.query("svc", "SELECT checksum FROM schema_migrations WHERE version = '003_create_c'")[0][0]
    path.write_text(edit(path.read_text()))
    for flags in ([], ["--dry-run"]):
        refused = repo.invoke("rollback", "svc", *flags)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert refused.stderr.startswith(
            f"migratekit: {filename} changed after it was applied (applied checksum {applied}, file now "
        ), refused.stderr
        assert "re-run with --allow-changed" in refused.stderr and "Traceback" not in refused.stderr
    assert len(repo.query("svc", "SELECT version FROM schema_migrations")) == 3
    assert repo.query("svc", "SELECT to_regclass('a') IS NOT NULL, to_regclass('c') IS NOT NULL") == [(True, True)]
    code, told = run(repo, "rollback", "svc", "--allow-changed")
    assert (code, told["outcome"], [a["version"] for a in told["rolled_back"]]) == (0, "rolled_back", ["003_create_c"])
    assert len(repo.query("svc", "SELECT version FROM schema_migrations")) == 2


def test_rollback_takes_a_crlf_checkout_for_the_file_it_applied(monorepo) -> None:
    repo = monorepo({"svc": {}})
    service(repo, "svc", "dbmate", STEPS)
    assert run(repo, "migrate-all")[0] == 0
    path = repo.root / "services/svc/migrations/003_create_c.sql"
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    code, result = run(repo, "rollback", "svc")
    assert (code, result["outcome"]) == (0, "rolled_back")
    assert repo.query("svc", "SELECT to_regclass('c')") == [(None,)]


DROP_PRECIOUS = "DROP TABLE IF EXISTS precious;\n"


@pytest.mark.parametrize(
    "text",
    [
        "-- Up Migration\nCREATE TABLE IF NOT EXISTS a (id int);\n\n-- Down Migrations\n" + DROP_PRECIOUS,
        "-- Up\tMigration\nCREATE TABLE IF NOT EXISTS a (id int);\n-- Down\tMigration\n" + DROP_PRECIOUS,
        "-- Up\u00a0Migration\nCREATE TABLE IF NOT EXISTS a (id int);\n--- down migration\n" + DROP_PRECIOUS,
        "-- Up Migration\n-- migrate:up is what dbmate would need\nCREATE TABLE IF NOT EXISTS a (id int);\n"
        "-- Down Migration\nDROP TABLE IF EXISTS precious;\n",  # two tools' markers: refused, nothing runs
    ],
    ids=["plural", "tab", "no-break space", "two tools"],
)
def test_every_marker_node_pg_migrate_reads_is_a_marker_here(monorepo, text: str) -> None:
    """node-pg-migrate's own marker test (`^\\s*--[\\s-]*down\\s+migration`, any case) decides what a marker is: a
    line it takes for the down marker never runs forward here, as seed or as an up part."""
    repo = monorepo({"np": {"language": "typescript"}})
    repo.migration("np", "1700000000000_a.sql", text)
    with psycopg.connect(repo.env["NP_DATABASE_URL"], autocommit=True) as conn:
        conn.execute("CREATE TABLE precious (x int)")
    result = repo.invoke("migrate-all")
    assert "Traceback" not in result.stderr
    assert repo.query("np", "SELECT to_regclass('precious') IS NOT NULL") == [(True,)]
    if "migrate:up" in text:
        assert result.returncode == 1 and "which part is the up part cannot be told" in result.stdout + result.stderr
        assert repo.query("np", "SELECT to_regclass('a')") == [(None,)]
    else:
        assert result.returncode == 0, result.stdout + result.stderr
        assert repo.query("np", "SELECT to_regclass('a') IS NOT NULL") == [(True,)]


@pytest.mark.parametrize("fmt", ["updown", "dbmate"])
def test_a_down_part_that_is_not_utf_8_is_never_run_and_an_up_part_that_is_goes_forward(monorepo, fmt: str) -> None:
    """Only the part that runs must be UTF-8: a Latin-1 comment in a dbmate file's down section does not stop it
    going forward, but its rollback, which would send that text, is refused naming the file and the line."""
    repo = monorepo({"svc": {}})
    service(repo, "svc", fmt, STEPS)
    directory = repo.root / "services/svc/migrations"
    down = directory / ("003_create_c.down.sql" if fmt == "updown" else "003_create_c.sql")
    text = down.read_text()
    marker = "DROP TABLE IF EXISTS c;"
    assert marker in text
    down.write_bytes(text.replace(marker, f"-- caf\xe9\n{marker}").encode("latin-1"))
    assert run(repo, "migrate-all")[0] == 0  # the up part is UTF-8: it runs
    refused = repo.invoke("rollback", "svc")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stdout + refused.stderr
    assert "down part" in refused.stderr and "byte 0xe9 is not UTF-8" in refused.stderr, refused.stderr
    assert repo.query("svc", "SELECT to_regclass('c') IS NOT NULL") == [(True,)]
    assert len(repo.query("svc", "SELECT version FROM schema_migrations")) == 3


@pytest.mark.parametrize(
    ("fmt", "name", "text", "up", "down"),
    [
        # the down part named the up part's line: the file's first bad byte, whichever part it is in
        (
            "dbmate",
            "20240101000000_a.sql",
            "-- migrate:up\n-- caf\xe9\nSELECT 1;\n-- migrate:down\n-- caf\xe9\nSELECT 2;\n",
            2,
            5,
        ),
        ("goose", "00001_a.sql", "-- +goose Up\n-- caf\xe9\nSELECT 1;\n-- +goose Down\n-- caf\xe9\nSELECT 2;\n", 2, 5),
        # an up part holding U+FFFD as UTF-8 was refused for the down part's Latin-1 byte
        ("dbmate", "20240101000000_a.sql", "-- migrate:up\nSELECT '\ufffd';\n-- migrate:down\n-- caf\xe9\n", None, 4),
        ("goose", "00001_a.sql", "-- +goose Up\nSELECT '\ufffd';\n-- +goose Down\n-- caf\xe9\nSELECT 2;\n", None, 4),
    ],
)
def test_the_byte_that_is_not_utf_8_is_found_in_the_part_that_would_run(
    tmp_path: Path, fmt: str, name: str, text: str, up: int | None, down: int | None
) -> None:
    (tmp_path / name).write_bytes(text.encode("utf-8").replace("caf\xe9".encode(), b"caf\xe9"))
    (migration,) = load_migrations(tmp_path, fmt)
    assert migration.up_not_utf8 == (None if up is None else (up, 0xE9))
    assert migration.down_not_utf8 == (None if down is None else (down, 0xE9))
