"""`invoke status` and `invoke forget` on a real PostgreSQL, as a user runs them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from conftest import Monorepo, filled, read_only, write_tree
from migratekit.database.embedded import drop_database


def repo_with_history(monorepo) -> Monorepo:
    repo = monorepo({"auth": {}})
    repo.migration("auth", "001_init.sql", "CREATE TABLE IF NOT EXISTS runs (n int);\n")
    repo.migration("auth", "002_count.sql", "INSERT INTO runs VALUES (2);\n")
    assert repo.invoke("migrate-all").returncode == 0
    return repo


def test_status_lists_each_migration_with_its_state(monorepo) -> None:
    repo = repo_with_history(monorepo)
    repo.migration("auth", "003_add_b.sql", "CREATE TABLE IF NOT EXISTS b (id int);\n")
    repo.migration("auth", "002_count.sql", "INSERT INTO runs VALUES (2); -- edited\n")
    result = repo.invoke("status", "--json", "--exit-code")
    assert result.returncode == 1, result.stderr  # drift: something to do or to look at
    (service,) = json.loads(result.stdout)["services"]
    entries = {e["version"]: e for e in service["entries"]}
    assert [(v, e["state"]) for v, e in entries.items()] == [
        ("001_init", "applied"),
        ("002_count", "changed"),
        ("003_add_b", "pending"),
    ]
    assert entries["001_init"]["applied_at"] and entries["001_init"]["execution_time_ms"] is not None
    human = repo.invoke("status", "--service", "auth").stdout
    assert "003_add_b" in human and "pending" in human


def test_forget_says_first_then_removes_one_row_and_migrate_runs_that_file_again(monorepo) -> None:
    repo = repo_with_history(monorepo)
    dry = repo.invoke("forget", "auth", "002_count")
    assert dry.returncode == 0 and "would remove (run again with --yes) the row 002_count" in dry.stdout
    assert repo.query("auth", "SELECT count(*) FROM schema_migrations") == [(2,)]
    done = repo.invoke("forget", "auth", "002_count", "--yes")
    assert done.returncode == 0 and "removed the row 002_count" in done.stdout
    assert repo.invoke("migrate", "auth").returncode == 0
    assert repo.query("auth", "SELECT n FROM runs ORDER BY n") == [(2,), (2,)]  # exactly that file, once more
    unknown = repo.invoke("forget", "auth", "009_nothing", "--yes")
    assert unknown.returncode == 2 and "no row for '009_nothing'" in unknown.stderr


def test_forget_leaves_another_tools_table_alone_and_says_why(monorepo) -> None:
    repo = monorepo({"auth": {}})
    repo.migration("auth", "001_init.sql", "CREATE TABLE IF NOT EXISTS runs (n int);\n")
    with psycopg.connect(repo.env["AUTH_DATABASE_URL"]) as conn:  # golang-migrate's table
        conn.execute("CREATE TABLE schema_migrations (version bigint PRIMARY KEY, dirty boolean NOT NULL)")
        conn.execute("INSERT INTO schema_migrations VALUES (1, false)")
    result = repo.invoke("forget", "auth", "1", "--yes")
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert "schema_migrations exists with golang-migrate's (version, dirty) shape" in result.stderr
    assert repo.query("auth", "SELECT version, dirty FROM schema_migrations") == [(1, False)]


def test_a_missing_database_is_named_planned_and_created_on_request(tmp_path, pg_server) -> None:
    name = f"mk_missing_{uuid.uuid4().hex[:8]}"
    url = make_conninfo(pg_server.admin_url, dbname=name)
    root = write_tree(
        tmp_path / "repo",
        {"tasks.py": "from migratekit.tasks import ns\n", "services/shop/migrations/001_init.sql": "SELECT 1;\n"},
    )
    repo = Monorepo(root, {"SHOP_DATABASE_URL": url})
    try:
        refused = repo.invoke("migrate-all")
        assert refused.returncode == 1 and "--create-databases" in refused.stdout, refused.stdout
        planned = json.loads(repo.invoke("migrate-all", "--dry-run", "--json").stdout)["services"][0]
        assert (planned["outcome"], planned["pending"]) == ("planned", ["001_init"])
        assert planned["notes"] == ["database missing: --create-databases would create it"]
        created = json.loads(repo.invoke("migrate-all", "--create-databases", "--json").stdout)["services"][0]
        assert created["outcome"] == "applied" and created["notes"] == [f"created the database {name}"]
        assert repo.query("shop", "SELECT version FROM schema_migrations") == [("001_init",)]
    finally:
        drop_database(pg_server.admin_url, name)


def test_init_declares_what_is_there_and_update_adds_only_what_is_new(tmp_path) -> None:
    root = write_tree(
        tmp_path / "repo",
        {
            "tasks.py": "from migratekit.tasks import ns\n",
            "services/auth/migrations/001_init.sql": "SELECT 1;\n",
            "services/auth/package.json": "{}\n",
            "services/billing/migrations/1_init.up.sql": "SELECT 1;\n",
            "services/billing/go.mod": "module billing\n",
            "services/events/migrations/20240101000000_init.sql": "-- migrate:up\nSELECT 1;\n",
        },
    )
    repo = Monorepo(root, {})
    made = repo.invoke("init")
    assert made.returncode == 0 and "declared auth, billing, events" in made.stdout, made.stderr
    written = (root / "workspace.yaml").read_text()
    assert written.startswith("# The services of this monorepo")
    assert "billing: {language: go, format: updown, tracking_table: migratekit.schema_migrations}" in written
    assert "events: {language: unknown, format: dbmate, tracking_table: migratekit.schema_migrations}" in written
    again = repo.invoke("init")
    assert again.returncode == 2 and "--update adds the services it lacks" in again.stderr
    edited = written.replace("auth: {language: javascript}", "auth: {language: javascript}  # the login service")
    (root / "workspace.yaml").write_text(edited)
    write_tree(root, {"services/orders/migrations/001_init.sql": "SELECT 1;\n"})
    updated = repo.invoke("init", "--update")
    assert updated.returncode == 0 and "declared orders" in updated.stdout
    after = (root / "workspace.yaml").read_text()
    assert after.startswith(edited) and "orders: {language: unknown}" in after


def test_init_writes_down_where_a_monorepo_keeps_its_services_when_migratekit_would_not_look_there(
    tmp_path, new_db
) -> None:
    """One Go module, services under internal/services, goose files in each one's storage/migrations (a real
    monorepo's shape): the other commands say where the SQL is and that init declares it; init infers the shape."""
    goose = "-- +goose Up\nCREATE TABLE IF NOT EXISTS {0} (id int);\n-- +goose Down\nDROP TABLE {0};\n"
    root = write_tree(
        tmp_path / "repo",
        {
            "tasks.py": "from migratekit.tasks import ns\n",
            "go.mod": "module chat\n",
            "internal/services/users/storage/migrations/20240123000000_users.sql": goose.format("users"),
            "internal/services/users/cmd/main.go": "package main\n",
            "internal/services/chat/storage/migrations/20250127000000_messages.sql": goose.format("messages"),
            "internal/services/chat/cmd/main.go": "package main\n",
            "tools/seed/migrations/001_fixtures.sql": "SELECT 1;\n",  # another shape: left to the user
        },
    )
    repo = Monorepo(root, {"USERS_DATABASE_URL": new_db(), "CHAT_DATABASE_URL": new_db()})
    before = repo.invoke("migrate-all")
    assert before.returncode == 2
    assert "but SQL migrations are in internal/services/chat/storage/migrations, " in before.stderr
    assert "invoke init declares them" in before.stderr
    made = repo.invoke("init")
    assert made.returncode == 0, made.stderr
    assert "say services_dir: internal/services, migrations: storage/migrations" in made.stdout
    assert "not declared, another shape: tools/seed/migrations" in made.stdout
    written = (root / "workspace.yaml").read_text()
    assert "services_dir: internal/services\ndefaults:\n  migrations: storage/migrations\n" in written
    assert "chat: {language: go, format: goose}" in written  # Go told by the source files: no go.mod per service
    result = repo.invoke("migrate-all", "--json")
    assert result.returncode == 0, result.stdout
    assert [s["applied"][0]["version"] for s in json.loads(result.stdout)["services"]] == [
        "20250127000000_messages",
        "20240123000000_users",
    ]
    # A new service in the seed's shape says where its migrations are: not where the default says.
    assert repo.invoke("new-service", "notify").returncode == 0
    assert "notify: {language: typescript, migrations: migrations}" in (root / "workspace.yaml").read_text()
    listed = json.loads(repo.invoke("services", "--json").stdout)["services"]
    assert {s["name"]: s["migrations_dir"] for s in listed}["notify"] == "internal/services/notify/migrations"


def test_init_writes_nothing_when_the_inferred_services_would_not_load(tmp_path) -> None:
    root = write_tree(
        tmp_path / "repo",
        {
            "tasks.py": "from migratekit.tasks import ns\n",
            "apps/2fa/db/migrations/001_init.sql": "SELECT 1;\n",
            "apps/Users/db/migrations/001_init.sql": "SELECT 1;\n",
        },
    )
    made = Monorepo(root, {}).invoke("init")
    assert made.returncode == 2
    assert made.stderr.startswith(
        "migratekit: the migrations are in apps/*/db/migrations, but apps/2fa: no service name comes of this "
        "directory's name"
    ), made.stderr
    assert "nothing was written" in made.stderr and not (root / "workspace.yaml").exists()


def test_init_and_services_work_on_a_service_whose_files_mix_formats(tmp_path) -> None:
    """A schema dump init.sql beside goose files (a real monorepo's service): listing and declaring must not stop at
    it; init declares the most common format and says so, the audit names the stray file (MK117)."""
    goose = "-- +goose Up\nCREATE TABLE IF NOT EXISTS {0} (id int);\n-- +goose Down\nDROP TABLE {0};\n"
    root = write_tree(
        tmp_path / "repo",
        {
            "tasks.py": "from migratekit.tasks import ns\n",
            "services/player/migrations/20251008000000_players.sql": goose.format("players"),
            "services/player/migrations/20251010000000_otps.sql": goose.format("otps"),
            "services/player/migrations/init.sql": "CREATE TABLE players (id int);\n",
            "services/wallet/migrations/20251008000000_wallets.sql": goose.format("wallets"),
        },
    )
    repo = Monorepo(root, {})
    listed = repo.invoke("services", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [s["migrations"] for s in json.loads(listed.stdout)["services"]] == [3, 1]
    made = repo.invoke("init")
    assert made.returncode == 0, made.stderr
    assert "player's files mix formats: declared the most common" in made.stdout
    assert "player: {language: unknown, format: goose}" in (root / "workspace.yaml").read_text()
    found = {(f["code"], f["path"]) for f in json.loads(repo.invoke("audit", "--json").stdout)["findings"]}
    assert {("MK101", "services/player/migrations/init.sql"), ("MK116", "services/player/migrations/init.sql")} <= found


def test_new_service_in_a_repo_without_workspace_yaml_declares_every_service(tmp_path) -> None:
    root = write_tree(
        tmp_path / "repo",
        {"tasks.py": "from migratekit.tasks import ns\n", "services/legacy/migrations/001_init.sql": "SELECT 1;\n"},
    )
    repo = Monorepo(root, {})
    assert repo.invoke("new-service", "payments").returncode == 0
    text = (root / "workspace.yaml").read_text()
    assert "legacy:" in text and "payments: {language: typescript}" in text
    assert "MK501" not in repo.invoke("audit").stdout


def test_adopt_baseline_and_forget_on_a_read_only_database_say_so(monorepo) -> None:
    """The server refusing their writes is reported as migrate reports it: the reason, what to do, exit 1."""
    repo = monorepo({"auth": {"tracking_table": "migratekit.schema_migrations"}})
    repo.migration("auth", "001_init.up.sql", "CREATE TABLE IF NOT EXISTS runs (n int);\n")
    url = repo.env["AUTH_DATABASE_URL"]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE schema_migrations (version bigint PRIMARY KEY, dirty boolean NOT NULL)")
        conn.execute("INSERT INTO schema_migrations VALUES (1, false)")
        conn.execute(f"ALTER DATABASE {conn.info.dbname} SET default_transaction_read_only = on")
    for command in (["adopt", "auth"], ["baseline", "auth", "--to", "001_init"]):
        result = repo.invoke(*command)
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        assert result.stderr.startswith("migratekit: the runner's bookkeeping failed: cannot execute CREATE SCHEMA")
        assert "the database is read-only" in result.stderr
    assert repo.query("auth", "SELECT to_regclass('migratekit.schema_migrations')") == [(None,)]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET default_transaction_read_only = off")
        conn.execute(f"ALTER DATABASE {conn.info.dbname} RESET default_transaction_read_only")
    assert repo.invoke("baseline", "auth", "--to", "001_init").returncode == 0
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"ALTER DATABASE {conn.info.dbname} SET default_transaction_read_only = on")
    result = repo.invoke("forget", "auth", "001_init", "--yes")
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith("migratekit: the runner's bookkeeping failed: cannot execute DELETE")
    assert repo.query("auth", "SELECT version FROM migratekit.schema_migrations") == [("001_init",)]


def test_init_update_on_a_full_disk_is_exit_2_and_leaves_workspace_yaml_as_it_was(
    tmp_path: Path, full_disk: Callable[..., Path]
) -> None:
    """workspace.yaml was rewritten in place: a disk that filled part-way left half of it, and every task after
    refused the monorepo. It is written beside and renamed."""
    root = write_tree(
        full_disk(tmp_path / "repo", "1m"),
        {"tasks.py": "from migratekit.tasks import ns\n", "services/auth/migrations/001_init.sql": "SELECT 1;\n"},
    )
    repo = Monorepo(root, {})
    assert repo.invoke("init").returncode == 0
    before = (root / "workspace.yaml").read_bytes()
    write_tree(root, {f"services/svc{n:02d}/migrations/001_init.sql": "SELECT 1;\n" for n in range(40)})
    filled(root)
    done = repo.invoke("init", "--update")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "workspace.yaml" in done.stderr and "No space left on device" in done.stderr, done.stderr
    assert (root / "workspace.yaml").read_bytes() == before
    assert not [p.name for p in root.iterdir() if p.name.endswith(".tmp")]
    (root / "filler").unlink()
    assert repo.invoke("init", "--update").returncode == 0
    assert "svc39" in (root / "workspace.yaml").read_text()


@pytest.mark.parametrize("how", ["a full disk", "read-only"])
def test_a_fresh_init_that_cannot_write_workspace_yaml_says_nothing_was_written(
    tmp_path: Path, full_disk: Callable[..., Path], how: str
) -> None:
    """There was no file to be 'as it was': the message said so all the same."""
    root = write_tree(
        full_disk(tmp_path / "repo", "1m"),
        {"tasks.py": "from migratekit.tasks import ns\n", "services/auth/migrations/001_init.sql": "SELECT 1;\n"},
    )
    repo = Monorepo(root, {})
    filled(root) if how == "a full disk" else read_only(root)
    done = repo.invoke("init")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "workspace.yaml: cannot be written (" in done.stderr and "nothing was written" in done.stderr, done.stderr
    assert "declared" not in done.stdout
    if how == "a full disk":
        (root / "filler").unlink()
    else:
        read_only(root, writable=True)
    assert sorted(p.name for p in root.iterdir()) == ["services", "tasks.py"]
    assert repo.invoke("init").returncode == 0
