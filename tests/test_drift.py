"""`invoke drift`: every kind of drift produced deliberately on a real PostgreSQL, and reported exactly."""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Iterator

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

import migratekit.database.drift as drift_module
from conftest import Monorepo
from migratekit.database import scratch
from migratekit.database.schema import snapshot
from migratekit.database.scratch import ScratchServer

INIT = "-- Migration: 001_init\nCREATE TABLE IF NOT EXISTS accounts (id int PRIMARY KEY, email text);\n"
INDEX = "-- Migration: 002_add_email_index\nCREATE INDEX IF NOT EXISTS idx_accounts_email ON accounts (email);\n"
FUNCTION = (
    "-- Migration: 003_add_touch\nCREATE OR REPLACE FUNCTION touch() RETURNS int AS $$ BEGIN RETURN 1; END; $$ "
    "LANGUAGE plpgsql;\n"
)


@pytest.fixture
def repo(monorepo, pg_server: ScratchServer) -> Monorepo:
    repo = monorepo({"auth": {}, "search": {}})
    repo.env["MIGRATEKIT_SCRATCH_URL"] = pg_server.admin_url
    repo.migration("auth", "001_init.sql", INIT)
    repo.migration("auth", "002_add_email_index.sql", INDEX)
    repo.migration("auth", "003_add_touch.sql", FUNCTION)
    repo.migration("search", "001_init.sql", "CREATE TABLE IF NOT EXISTS documents (id int);\n")
    git = ["git", "-C", str(repo.root), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "Add auth and search"], check=True)
    assert repo.invoke("migrate-all").returncode == 0
    return repo


def drift(repo: Monorepo, *args: str) -> tuple[int, dict]:
    result = repo.invoke("drift", "--json", *args)
    return result.returncode, json.loads(result.stdout)


def service(data: dict, name: str) -> dict:
    return next(s for s in data["services"] if s["service"] == name)


def test_a_database_that_matches_reports_nothing(repo: Monorepo) -> None:
    code, data = drift(repo, "--schema")
    assert code == 0
    assert [(s["service"], s["state"], s["items"], s["schema"]) for s in data["services"]] == [
        ("auth", "up_to_date", [], []),
        ("search", "up_to_date", [], []),
    ]


def test_pending_and_out_of_order_files(repo: Monorepo) -> None:
    repo.migration("auth", "004_add_names.sql", "-- Migration: 004_add_names\nSELECT 1;\n")
    repo.migration("auth", "002a_backfill.sql", "SELECT 1;\n")
    code, data = drift(repo)
    assert code == 1
    assert [(i["version"], i["kind"]) for i in service(data, "auth")["items"]] == [
        ("002a_backfill", "out_of_order"),
        ("004_add_names", "pending"),
    ]


def test_an_edited_applied_file_shows_both_checksums_and_its_last_commit(repo: Monorepo) -> None:
    before = repo.query("auth", "SELECT checksum FROM schema_migrations WHERE version = '001_init'")[0][0]
    repo.migration("auth", "001_init.sql", INIT.replace("email text", "email text, name text"))
    subprocess.run(
        [
            "git",
            "-C",
            str(repo.root),
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-qam",
            "Edit init in place",
        ],
        check=True,
    )
    code, data = drift(repo)
    item = service(data, "auth")["items"][0]
    assert (code, item["version"], item["kind"]) == (1, "001_init", "changed")
    assert item["detail"].startswith(f"applied checksum {before}, file now ")
    assert item["detail"].endswith("Edit init in place")


def test_a_deleted_applied_file(repo: Monorepo) -> None:
    (repo.root / "services/auth/migrations/003_add_touch.sql").unlink()
    code, data = drift(repo)
    assert [(i["version"], i["kind"]) for i in service(data, "auth")["items"]] == [("003_add_touch", "missing_file")]


def test_hand_made_schema_changes_are_named_exactly(repo: Monorepo) -> None:
    url = repo.env["AUTH_DATABASE_URL"]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ALTER TABLE accounts ADD COLUMN nickname text")
        conn.execute("DROP INDEX idx_accounts_email")
        conn.execute("CREATE OR REPLACE FUNCTION touch() RETURNS int AS $$ BEGIN RETURN 2; END; $$ LANGUAGE plpgsql")
    code, data = drift(repo, "--schema")
    assert code == 1
    changes = [(d["kind"], d["name"], d["change"]) for d in service(data, "auth")["schema"]]
    assert changes == [
        ("column", "public.accounts.nickname", "extra"),
        ("function", "public.touch()", "different"),
        ("index", "public.idx_accounts_email", "missing"),
    ]
    assert service(data, "search")["schema"] == []
    assert (service(data, "auth")["state"], service(data, "search")["state"]) == ("drift", "up_to_date")
    human = repo.invoke("drift", "--schema").stdout
    assert "auth: schema: column public.accounts.nickname is extra" in human


def test_drift_never_changes_a_database_and_leaves_no_throwaway_behind(
    repo: Monorepo, pg_server: ScratchServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[str] = []  # the throwaway databases of this drift (other tests' drifts may run meanwhile)

    @contextlib.contextmanager
    def recorded(server: ScratchServer, prefix: str = "mk_scratch") -> Iterator[str]:
        with scratch.scratch_database(server, prefix) as replay_url:
            made.append(str(conninfo_to_dict(replay_url)["dbname"]))
            yield replay_url

    monkeypatch.setattr(drift_module, "scratch_database", recorded)
    url = repo.env["AUTH_DATABASE_URL"]
    with psycopg.connect(url) as conn:
        before = (snapshot(conn), conn.execute("SELECT * FROM schema_migrations ORDER BY 1").fetchall())
    repo.migration("auth", "004_add_names.sql", "-- Migration: 004_add_names\nCREATE TABLE IF NOT EXISTS n (id int);\n")
    repo.migration("auth", "002_add_email_index.sql", "SELECT broken syntax here;\n")  # the replay fails
    drift(repo, "--schema")
    with psycopg.connect(url) as conn:
        after = (snapshot(conn), conn.execute("SELECT * FROM schema_migrations ORDER BY 1").fetchall())
    assert after == before
    assert made and all(name.startswith("mk_drift") for name in made)
    with psycopg.connect(pg_server.admin_url) as conn:
        assert conn.execute("SELECT datname FROM pg_database WHERE datname = ANY(%s)", (made,)).fetchall() == []


def test_a_missing_or_foreign_tracking_table(repo: Monorepo) -> None:
    with psycopg.connect(repo.env["SEARCH_DATABASE_URL"], autocommit=True) as conn:
        conn.execute("DROP TABLE schema_migrations")
    code, data = drift(repo)
    search = service(data, "search")
    assert (search["state"], search["message"]) == ("drift", "no tracking table schema_migrations")
    with psycopg.connect(repo.env["SEARCH_DATABASE_URL"], autocommit=True) as conn:
        conn.execute("CREATE TABLE schema_migrations (version bigint PRIMARY KEY, dirty boolean NOT NULL)")
    search = service(drift(repo)[1], "search")
    assert search["state"] == "foreign_table" and "golang-migrate" in search["message"]


def test_environment_matrix(repo: Monorepo, new_db) -> None:
    workspace = repo.root / "workspace.yaml"
    workspace.write_text(
        workspace.read_text() + "environments:\n  staging: '{SERVICE}_STAGING_URL'\n"
        "  production: '{SERVICE}_PRODUCTION_URL'\n"
    )
    staging = new_db()
    env = {"AUTH_STAGING_URL": repo.env["AUTH_DATABASE_URL"], "AUTH_PRODUCTION_URL": staging}
    repo.invoke("migrate", "auth", env={"AUTH_DATABASE_URL": staging})
    (repo.root / "services/auth/migrations/004_x.sql").write_text("SELECT 1;\n")
    result = repo.invoke("drift", "--envs", "staging,production", "--json", env=env)
    rows = dict((s, cells) for s, cells in json.loads(result.stdout)["rows"])
    assert rows["auth"] == ["003_add_touch (+1 pending)", "003_add_touch (+1 pending)"]
    assert rows["search"] == ["$SEARCH_STAGING_URL unset", "$SEARCH_PRODUCTION_URL unset"]
    unknown = repo.invoke("drift", "--envs", "qa")
    assert unknown.returncode == 2 and "not declared" in unknown.stderr


@pytest.mark.parametrize("selected", ["battles", "enrichment"])
def test_services_sharing_a_database_are_replayed_together_whichever_is_named(
    example_repo: Monorepo, new_db, selected: str
) -> None:
    battles = new_db()
    example_repo.env.update(
        AUTHENTICATION_DATABASE_URL=new_db(), BATTLES_DATABASE_URL=battles, ENRICHMENT_DATABASE_URL=battles
    )
    assert example_repo.invoke("migrate-all").returncode == 0
    code, data = drift(example_repo, "--service", selected, "--schema")
    assert code == 0, data
    assert [(s["service"], s["state"], s["schema"]) for s in data["services"]] == [(selected, "up_to_date", [])]


def test_a_database_not_migrated_yet_shows_pending_files_and_no_schema_differences(
    example_repo: Monorepo, new_db
) -> None:
    battles = new_db()
    example_repo.env.update(
        AUTHENTICATION_DATABASE_URL=new_db(), BATTLES_DATABASE_URL=battles, ENRICHMENT_DATABASE_URL=battles
    )
    code, data = drift(example_repo, "--schema")
    assert code == 1  # pending files are drift
    assert [(s["service"], s["schema"], {i["kind"] for i in s["items"]}) for s in data["services"]] == [
        ("authentication", [], {"pending"}),
        ("battles", [], {"pending"}),
        ("enrichment", [], {"pending"}),
    ]
