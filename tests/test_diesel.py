"""Diesel's migrations: a directory each (<version>_<name>/up.sql and down.sql), applied, rolled back and adopted from
__diesel_schema_migrations in Diesel's own DDL; `embed_migrations!` run at start-up is the service's runner."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from conftest import Monorepo, applied, write_tree

MIGRATIONS = "services/posts/migrations"
SETUP = (
    "CREATE OR REPLACE FUNCTION diesel_set_updated_at() RETURNS trigger AS $$ BEGIN RETURN NEW; END $$ "
    "LANGUAGE plpgsql;\n"
)
POSTS = "CREATE TABLE IF NOT EXISTS posts (id serial PRIMARY KEY, title text NOT NULL);\n"
BODY = "ALTER TABLE posts ADD COLUMN IF NOT EXISTS body text;\n"
MAIN = """use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

fn main() {
    let mut conn = establish_connection();
    conn.run_pending_migrations(MIGRATIONS).expect("migrations");
    serve();
}
"""
FILES = {
    "tasks.py": "from migratekit.tasks import ns\n\n__all__ = ['ns']\n",
    "services/posts/Cargo.toml": '[package]\nname = "posts"\n\n[dependencies]\ndiesel = { version = "2", features = '
    '["postgres"] }\ndiesel_migrations = "2"\n',
    "services/posts/src/main.rs": MAIN,
    "services/posts/Dockerfile": "FROM rust:1.80 AS build\nWORKDIR /src\nCOPY . .\nRUN cargo build --release\n\n"
    'FROM debian:bookworm-slim\nCOPY --from=build /src/target/release/posts /usr/local/bin/posts\nCMD ["posts"]\n',
    f"{MIGRATIONS}/00000000000000_diesel_initial_setup/up.sql": SETUP,
    f"{MIGRATIONS}/00000000000000_diesel_initial_setup/down.sql": "DROP FUNCTION IF EXISTS diesel_set_updated_at();\n",
    f"{MIGRATIONS}/2024-01-01-120000_create_posts/up.sql": POSTS,
    f"{MIGRATIONS}/2024-01-01-120000_create_posts/down.sql": "DROP TABLE IF EXISTS posts;\n",
    f"{MIGRATIONS}/2024-02-01-090000_add_body/up.sql": BODY,
    f"{MIGRATIONS}/2024-02-01-090000_add_body/down.sql": "ALTER TABLE posts DROP COLUMN IF EXISTS body;\n",
}
# Diesel's own DDL of its table (diesel_migrations' setup_migration_table.sql)
DIESEL_DDL = """CREATE TABLE IF NOT EXISTS __diesel_schema_migrations (
       version VARCHAR(50) PRIMARY KEY NOT NULL,
       run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
"""
VERSIONS = ["00000000000000_diesel_initial_setup", "2024-01-01-120000_create_posts", "2024-02-01-090000_add_body"]


@pytest.fixture
def diesel(tmp_path: Path, new_db) -> Monorepo:
    return Monorepo(write_tree(tmp_path / "repo", FILES), {"POSTS_DATABASE_URL": new_db()})


def test_a_diesel_service_audits_without_false_findings(tmp_path: Path) -> None:
    repo = Monorepo(write_tree(tmp_path / "repo", FILES), {"POSTS_DATABASE_URL": ""})
    listed = json.loads(repo.invoke("services", "--json").stdout)["services"]
    assert [(s["name"], s["format"]) for s in listed] == [("posts", "diesel")]
    audit = repo.invoke("audit", "--format", "json")
    assert json.loads(audit.stdout)["findings"] == [], audit.stdout
    assert audit.returncode == 0


def test_migrate_rollback_migrate_runs_up_sql_forward_and_down_sql_back(diesel: Monorepo) -> None:
    assert applied(diesel.invoke("migrate", "posts", "--json")) == VERSIONS
    back = diesel.invoke("rollback", "posts", "--steps", "2", "--json")
    assert back.returncode == 0, back.stdout + back.stderr
    assert diesel.query("posts", "SELECT to_regclass('posts')") == [(None,)]
    assert applied(diesel.invoke("migrate", "posts", "--json")) == VERSIONS[1:]


def test_adopt_matches_diesels_versions_to_their_directories_and_migrate_before_adopt_stops(diesel: Monorepo) -> None:
    with psycopg.connect(diesel.env["POSTS_DATABASE_URL"], autocommit=True) as conn:
        conn.execute(
            SETUP + POSTS + DIESEL_DDL + "INSERT INTO __diesel_schema_migrations (version) VALUES "
            "('00000000000000'), ('20240101120000');"
        )
    stopped = diesel.invoke("migrate", "posts", "--json")
    assert stopped.returncode == 1 and "diesel's public.__diesel_schema_migrations records 2" in stopped.stdout
    adopted = diesel.invoke("adopt", "posts")
    assert adopted.returncode == 0, adopted.stdout + adopted.stderr
    assert sorted(diesel.query("posts", "SELECT version FROM schema_migrations")) == [(v,) for v in VERSIONS[:2]]
    assert applied(diesel.invoke("migrate", "posts", "--json")) == VERSIONS[2:]


def test_verify_takes_the_down_part_as_the_newest_migrations_rollback_note(diesel: Monorepo) -> None:
    result = diesel.invoke("verify", "--service", "posts", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no rollback notes" not in result.stdout
    write_tree(diesel.root, {f"{MIGRATIONS}/2024-03-01-000000_add_tags/up.sql": "SELECT 1;\n"})
    gap = diesel.invoke("verify", "--service", "posts")
    assert "no rollback notes for 2024-03-01-000000_add_tags" in gap.stdout, gap.stdout


def test_new_migration_writes_diesels_directory_with_a_header_naming_its_down_part(tmp_path: Path) -> None:
    repo = Monorepo(write_tree(tmp_path / "repo", FILES), {})
    result = repo.invoke("new-migration", "posts", "add tags")
    assert result.returncode == 0, result.stdout + result.stderr
    (made,) = [p for p in (repo.root / MIGRATIONS).iterdir() if p.name.endswith("_add_tags")]
    assert made.name[:14].isdigit() and sorted(p.name for p in made.iterdir()) == ["down.sql", "up.sql"]
    assert f"-- Rollback: its down part, in {made.name}/down.sql\n" in (made / "up.sql").read_text()
