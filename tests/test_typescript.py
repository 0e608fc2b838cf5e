"""The TypeScript the project ships builds with tsc and migrates a real database like migratekit does.

Each Dockerfile runs `npm run build`, so code that does not compile means no image. One npm
install serves every service (they share their dependencies); it is kept under .migratekit/node/,
keyed by those dependencies, so a second run installs nothing.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from conftest import REPO, Monorepo
from migratekit.database.apply import apply_service
from migratekit.model.migration import load_migrations

NPM = shutil.which("npm")
pytestmark = pytest.mark.skipif(NPM is None, reason="npm is not installed: the TypeScript build cannot be checked")


@pytest.fixture(scope="module")
def node_modules() -> Path:
    return install_node_modules()


def _npm_or_skip(cwd: Path, args: list[str], timeout: int) -> subprocess.CompletedProcess[str]:
    """npm ARGS, or a skip saying it did not finish (npm waits on an unreachable registry)."""
    try:
        return subprocess.run([str(NPM), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.skip(f"npm {args[0]} did not finish in {timeout} s: is the npm registry reachable? (offline?)")


def install_node_modules() -> Path:
    """The example services' dependencies, installed once into .migratekit/node/ (or a skip saying why not)."""
    package = json.loads((REPO / "services" / "authentication" / "package.json").read_text())
    deps = {key: package[key] for key in ("dependencies", "devDependencies")}
    cache = REPO / ".migratekit" / "node" / hashlib.sha256(json.dumps(deps, sort_keys=True).encode()).hexdigest()[:12]
    cache.mkdir(parents=True, exist_ok=True)
    # one install at a time: the suite's workers (pytest-xdist) may all ask for it at once
    with (cache.parent / f"{cache.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _installed(cache, deps)


def _installed(cache: Path, deps: dict[str, object]) -> Path:
    if not (cache / "node_modules" / ".bin" / "tsc").exists():
        (cache / "package.json").write_text(
            json.dumps({"name": "migratekit-typescript-check", "private": True, **deps})
        )
        # offline, npm retries for minutes: ask the registry once, briefly, and skip saying so
        ping = _npm_or_skip(cache, ["ping", "--fetch-retries=0", "--fetch-timeout=10000"], 30)
        if ping.returncode != 0:
            pytest.skip(f"the npm registry does not answer (npm ping): {ping.stderr.strip()[-300:]}")
        result = _npm_or_skip(
            cache, ["install", "--no-audit", "--no-fund", "--loglevel=error", "--fetch-retries=1"], 600
        )
        if result.returncode != 0:
            pytest.skip(f"npm install failed (is the npm registry reachable?): {result.stderr.strip()[-300:]}")
    return cache / "node_modules"


def build(service: Path, node_modules: Path) -> None:
    (service / "node_modules").symlink_to(node_modules, target_is_directory=True)
    result = subprocess.run([str(NPM), "run", "build"], cwd=service, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def as_url(conninfo: str) -> str:
    """node-postgres reads URLs, not libpq's key=value strings."""
    p = conninfo_to_dict(conninfo)
    password = f":{quote(str(p['password']), safe='')}" if p.get("password") else ""
    user = quote(str(p.get("user", "postgres")), safe="")
    return f"postgresql://{user}{password}@{p.get('host') or 'localhost'}:{p.get('port', 5432)}/{p['dbname']}"


def node(service: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": as_url(url)}
    return subprocess.run(["node", *args], cwd=service, env=env, capture_output=True, text=True, timeout=120)


def assert_seed_rows(url: str, migrations: Path) -> None:
    """The TypeScript runner's rows are the seed's, and migratekit sees its work as done."""
    expected = [(m.version, m.checksum) for m in load_migrations(migrations)]
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT version, checksum FROM schema_migrations ORDER BY version").fetchall() == expected
    result = apply_service("svc", url, load_migrations(migrations))
    assert (result.outcome, result.already_applied) == ("up_to_date", len(expected))


def test_an_example_service_builds_and_its_runner_migrates(tmp_path: Path, node_modules: Path, new_db) -> None:
    service = tmp_path / "authentication"
    shutil.copytree(
        REPO / "services" / "authentication", service, ignore=shutil.ignore_patterns("node_modules", "dist")
    )
    build(service, node_modules)
    url = new_db()
    script = (
        "const { createDatabase } = require('./dist/database/client');"
        "const { runMigrations } = require('./dist/database/migrate');"
        "const db = createDatabase(); runMigrations(db).then(() => db.destroy());"
    )
    result = node(service, url, "-e", script)
    assert result.returncode == 0, result.stdout + result.stderr
    assert_seed_rows(url, service / "migrations")


def test_a_scaffolded_service_builds_and_its_migrate_entry_point_runs(
    example_repo: Monorepo, node_modules: Path, new_db
) -> None:
    assert example_repo.invoke("new-service", "payments", "--lang", "typescript").returncode == 0
    service = example_repo.root / "services" / "payments"
    build(service, node_modules)
    url = new_db()
    result = node(service, url, "dist/migrate.js")
    assert result.returncode == 0, result.stdout + result.stderr
    assert_seed_rows(url, service / "migrations")
    (service / "migrations" / "002_broken.sql").write_text("-- Migration: 002_broken\nSELECT 1/0;\n")
    failed = node(service, url, "dist/migrate.js")
    assert failed.returncode == 1 and "division by zero" in failed.stdout + failed.stderr
    with psycopg.connect(url) as conn:  # the failed migration's row was not written
        assert conn.execute("SELECT count(*) FROM schema_migrations WHERE version = '002_broken'").fetchone() == (0,)
