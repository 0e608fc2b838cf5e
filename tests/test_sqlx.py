"""sqlx in a Rust monorepo: told by the services' Cargo.toml, applied and rolled back as sqlx does, adopted from
_sqlx_migrations in sqlx's own DDL (its SHA-384 checksums compared), and one database shared through compose.

The fixture is two Rust services in one database, as the monorepo's docker-compose.yml gives it to both: `users`
runs `sqlx::migrate!` before it serves (reversible migrations), `billing` only in a #[cfg(test)] module, and its
migrations are applied by `sqlx migrate run` in a script that nothing orders before the server.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import psycopg
import pytest
import yaml

from conftest import Monorepo, applied, write_tree

CARGO = """[package]
name = "{name}"
version = "0.1.0"
edition = "2021"

[dependencies]
axum = "0.7"
tokio = {{ version = "1", features = ["full"] }}
sqlx = {{ version = "0.8", features = ["runtime-tokio", "postgres", "migrate"] }}
"""
USERS_MAIN = """use sqlx::postgres::PgPoolOptions;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("DATABASE_URL")?; // postgres://app@db:5432/app
    let pool = PgPoolOptions::new().connect(&url).await?;
    sqlx::migrate!("./migrations").run(&pool).await?;
    let listener = tokio::net::TcpListener::bind("0.0.0.0:8080").await?;
    axum::serve(listener, axum::Router::new()).await?;
    Ok(())
}
"""
BILLING_MAIN = """#[tokio::main]
async fn main() {
    let listener = tokio::net::TcpListener::bind("0.0.0.0:8081").await.unwrap();
    axum::serve(listener, axum::Router::new()).await.unwrap();
}

#[cfg(test)]
mod tests {
    #[sqlx::test]
    async fn migrates(pool: sqlx::PgPool) {
        sqlx::migrate!("./migrations").run(&pool).await.unwrap();
    }
}
"""
DOCKERFILE = """FROM rust:1.80 AS build
WORKDIR /src
COPY . .
RUN cargo build --release

FROM debian:bookworm-slim
COPY --from=build /src/target/release/{name} /usr/local/bin/{name}
CMD ["{name}"]
"""
COMPOSE = """services:
  db:
    image: postgres:16
  users:
    build: ./services/users
    environment:
      DATABASE_URL: postgres://app:secret@db:5432/app
  billing:
    build:
      context: ./services/billing
    environment:
      - DATABASE_URL=postgres://app:secret@db:5432/app
"""
USERS = "services/users/migrations"
BILLING = "services/billing/migrations"
CREATE_USERS = "CREATE TABLE IF NOT EXISTS users (id bigint PRIMARY KEY, name text NOT NULL);\n"
ADD_EMAIL = "ALTER TABLE users ADD COLUMN IF NOT EXISTS email text;\n"
INVOICES = "CREATE TABLE IF NOT EXISTS invoices (id bigint PRIMARY KEY);\n"
FILES = {
    "tasks.py": "from migratekit.tasks import ns\n\n__all__ = ['ns']\n",
    "docker-compose.yml": COMPOSE,
    "services/users/Cargo.toml": CARGO.format(name="users"),
    "services/users/src/main.rs": USERS_MAIN,
    "services/users/Dockerfile": DOCKERFILE.format(name="users"),
    f"{USERS}/20240101000000_create_users.up.sql": CREATE_USERS,
    f"{USERS}/20240101000000_create_users.down.sql": "DROP TABLE IF EXISTS users;\n",
    f"{USERS}/20240102000000_add_email.up.sql": ADD_EMAIL,
    f"{USERS}/20240102000000_add_email.down.sql": "ALTER TABLE users DROP COLUMN IF EXISTS email;\n",
    "services/billing/Cargo.toml": CARGO.format(name="billing"),
    "services/billing/src/main.rs": BILLING_MAIN,
    "services/billing/Dockerfile": DOCKERFILE.format(name="billing"),
    "services/billing/scripts/migrate.sh": "#!/bin/sh\nset -e\nsqlx migrate run --source migrations\n",
    f"{BILLING}/1000_create_invoices.sql": INVOICES,
    f"{BILLING}/1001_invoice_total.sql": "ALTER TABLE invoices ADD COLUMN IF NOT EXISTS total numeric;\n",
}
# sqlx's own DDL of its table (sqlx-postgres's migrate.rs, ensure_migrations_table)
SQLX_DDL = """
CREATE TABLE IF NOT EXISTS _sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMPTZ NOT NULL DEFAULT now(),
    success BOOLEAN NOT NULL,
    checksum BYTEA NOT NULL,
    execution_time BIGINT NOT NULL
);
"""


@pytest.fixture
def rust(tmp_path: Path, new_db) -> Monorepo:
    return Monorepo(
        write_tree(tmp_path / "repo", FILES), {"USERS_DATABASE_URL": new_db(), "BILLING_DATABASE_URL": new_db()}
    )


@pytest.fixture
def files(tmp_path: Path) -> Monorepo:
    """The fixture without databases, for what reads only files (no URL set: none is looked at)."""
    return Monorepo(write_tree(tmp_path / "repo", FILES), {"USERS_DATABASE_URL": "", "BILLING_DATABASE_URL": ""})


def test_sqlx_services_are_told_by_their_cargo_toml_and_audit_without_the_seeds_conventions(files: Monorepo) -> None:
    listed = json.loads(files.invoke("services", "--json").stdout)["services"]
    assert {s["name"]: s["format"] for s in listed} == {"billing": "sqlx", "users": "sqlx"}
    audit = files.invoke("audit", "--format", "json")
    found = sorted((f["code"], f["service"], f["path"], f["message"]) for f in json.loads(audit.stdout)["findings"])
    assert found == [
        (
            "MK411",
            "billing",
            "services/billing/scripts/migrate.sh",
            "this script applies the migrations, but nothing runs it before the server",
        ),
        (
            "MK502",
            "billing",
            None,
            "billing, users share one database (db:5432/app, their DATABASE_URL in docker-compose.yml) and the "
            "tracking table public.schema_migrations",
        ),
    ]
    codes = [(code, service) for code, service, _, _ in found]
    assert ("MK401", "billing") not in codes and ("MK401", "users") not in codes
    assert not {c for c, _ in codes} & {"MK105", "MK106", "MK111", "MK101", "MK403"}


def test_a_sqlx_migrate_only_under_cfg_test_is_no_runner(files: Monorepo) -> None:
    write_tree(files.root, {"services/billing/scripts/migrate.sh": None})
    audit = files.invoke("audit", "--format", "json")
    codes = {(f["code"], f["service"]) for f in json.loads(audit.stdout)["findings"]}
    assert ("MK401", "billing") in codes and ("MK401", "users") not in codes


def test_init_declares_the_shared_database_and_a_tracking_table_of_its_own(files: Monorepo) -> None:
    init = files.invoke("init")
    assert init.returncode == 0, init.stdout + init.stderr
    services = yaml.safe_load((files.root / "workspace.yaml").read_text())["services"]
    assert services["users"]["format"] == services["billing"]["format"] == "sqlx"
    sharing = [n for n, s in services.items() if "database" in s]
    assert len(sharing) == 1
    other = "users" if sharing == ["billing"] else "billing"
    assert services[sharing[0]]["database"] == other
    assert services[sharing[0]]["tracking_table"] == f"{sharing[0]}.schema_migrations"
    audit = files.invoke("audit", "--format", "json")
    assert not {"MK502", "MK118"} & {f["code"] for f in json.loads(audit.stdout)["findings"]}  # format: sqlx fits


def test_migrate_rollback_migrate_with_sqlx_reversible_migrations(rust: Monorepo) -> None:
    first = rust.invoke("migrate", "users", "--json")
    assert applied(first) == ["20240101000000_create_users", "20240102000000_add_email"], first.stdout
    back = rust.invoke("rollback", "users", "--steps", "2", "--json")
    assert back.returncode == 0, back.stdout + back.stderr
    assert rust.query("users", "SELECT to_regclass('users')") == [(None,)]
    assert applied(rust.invoke("migrate", "users", "--json")) == [
        "20240101000000_create_users",
        "20240102000000_add_email",
    ]


def sqlx_rows(*rows: tuple[int, str, bool, str]) -> str:
    values = ", ".join(
        f"({version}, '{description}', {success}, '\\x{hashlib.sha384(sql.encode()).hexdigest()}'::bytea, 7)"
        for version, description, success, sql in rows
    )
    return f"INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES {values};"


def test_adopt_records_what_sqlx_vouches_for_and_migrate_before_adopt_stops(rust: Monorepo) -> None:
    history = SQLX_DDL + sqlx_rows((1000, "create invoices", True, INVOICES))
    with psycopg.connect(rust.env["BILLING_DATABASE_URL"], autocommit=True) as conn:
        conn.execute(INVOICES + history)
    stopped = rust.invoke("migrate", "billing", "--json")
    assert stopped.returncode == 1 and "sqlx's public._sqlx_migrations records 1 of these migrations" in stopped.stdout
    adopted = rust.invoke("adopt", "billing")
    assert adopted.returncode == 0, adopted.stdout + adopted.stderr
    assert rust.query("billing", "SELECT version FROM schema_migrations") == [("1000_create_invoices",)]
    assert applied(rust.invoke("migrate", "billing", "--json")) == ["1001_invoice_total"]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            ((1000, "create invoices", True, INVOICES), (1001, "invoice total", False, "")),
            "records version 1001 (invoice total) as partially applied (success = false): sqlx stops there too",
        ),
        (
            ((1000, "create invoices", True, INVOICES + "-- edited since\n"),),
            "records version 1000 with another checksum than 1000_create_invoices.sql has now",
        ),
    ],
)
def test_adopt_refuses_what_sqlx_itself_refuses(rust: Monorepo, rows: tuple, message: str) -> None:
    with psycopg.connect(rust.env["BILLING_DATABASE_URL"], autocommit=True) as conn:
        conn.execute(INVOICES + SQLX_DDL + sqlx_rows(*rows))
    adopted = rust.invoke("adopt", "billing", "--from", "sqlx")
    assert adopted.returncode != 0 and message in adopted.stderr, adopted.stdout + adopted.stderr
    assert rust.query("billing", "SELECT to_regclass('schema_migrations')") == [(None,)]


def test_one_sqlx_table_for_every_service_in_one_database_is_adopted_by_each_for_its_own_block(
    tmp_path: Path, new_db
) -> None:
    """The shape of a sqlx monorepo: one database, one _sqlx_migrations, each service its own block of versions."""
    url = new_db()
    root = write_tree(tmp_path / "repo", FILES)
    (root / "workspace.yaml").write_text(
        "version: 1\nservices:\n  users: {language: rust}\n"
        "  billing: {language: rust, database: users, tracking_table: billing.schema_migrations}\n"
    )
    repo = Monorepo(root, {"USERS_DATABASE_URL": url, "BILLING_DATABASE_URL": url})
    rows = sqlx_rows(
        (20240101000000, "create users", True, CREATE_USERS),
        (20240102000000, "add email", True, ADD_EMAIL),
        (1000, "create invoices", True, INVOICES),
    )
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(CREATE_USERS + ADD_EMAIL + INVOICES + SQLX_DDL + rows)
    for service in ("users", "billing"):
        adopted = repo.invoke("adopt", service)
        assert adopted.returncode == 0, adopted.stdout + adopted.stderr
    assert sorted(repo.query("users", "SELECT version FROM public.schema_migrations")) == [
        ("20240101000000_create_users",),
        ("20240102000000_add_email",),
    ]
    assert repo.query("users", "SELECT version FROM billing.schema_migrations") == [("1000_create_invoices",)]
    migrated = json.loads(repo.invoke("migrate-all", "--json").stdout)["services"]
    assert {s["service"]: [a["version"] for a in s["applied"]] for s in migrated} == {
        "users": [],
        "billing": ["1001_invoice_total"],
    }
