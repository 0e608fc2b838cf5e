"""A password in every database URL appears in no output, JSON, SARIF, log line or error message."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import with_secret, write_tree
from migratekit.database.scratch import ScratchServer

SECRET = "hunter2-Zq9"


def with_password(url: str) -> str:
    return with_secret(url, SECRET)[0]


@pytest.fixture
def repo(tmp_path: Path, new_db, pg_server: ScratchServer) -> tuple[Path, dict[str, str]]:
    root = write_tree(
        tmp_path / "repo",
        {
            **{
                f"services/{name}/migrations/001_init.sql": f"-- Migration: 001_init\n"
                f"CREATE TABLE IF NOT EXISTS {name}_t (id int);\n"
                for name in ("auth", "api")
            },
            "services/api/migrations/002_broken.sql": "SELECT 1/0;\n",
            "tasks.py": "from migratekit.tasks import ns\n",
            "workspace.yaml": "version: 1\nservices:\n  auth: {}\n  api: {depends_on: [auth]}\n"
            "environments:\n  prod: '{SERVICE}_PROD_URL'\n",
        },
    )
    env = {
        "AUTH_DATABASE_URL": with_password(new_db()),
        "API_DATABASE_URL": f"postgresql://postgres:{SECRET}@127.0.0.1:1/nowhere",  # unreachable
        "AUTH_PROD_URL": with_password(new_db()),
        "MIGRATEKIT_SCRATCH_URL": with_password(pg_server.admin_url),
        "COLUMNS": "200",
    }
    return root, env


TASKS = [
    ["services"],
    ["services", "--json"],
    ["db-url", "auth"],
    ["db-up", "--json"],
    ["migrate-all"],
    ["migrate-all", "--json"],
    ["migrate-all", "--dry-run"],
    ["migrate", "api", "--with-deps"],
    ["audit"],
    ["audit", "--json"],
    ["audit", "--sarif"],
    ["audit", "--github"],
    ["drift"],
    ["drift", "--json"],
    ["drift", "--schema", "--service", "auth"],
    ["drift", "--envs", "prod"],
    ["verify", "--service", "auth"],
    ["verify", "--json"],
]


@pytest.mark.server_auth
def test_no_task_ever_prints_a_password(repo: tuple[Path, dict[str, str]]) -> None:
    root, env = repo
    server_secret = with_secret(env["AUTH_DATABASE_URL"], SECRET)[1]  # the server's own, when it checks one
    for args in TASKS:
        result = subprocess.run(
            [sys.executable, "-m", "invoke", *args],
            cwd=root,
            capture_output=True,
            text=True,
            env={**os.environ, **env},
            timeout=120,
        )
        assert SECRET not in result.stdout + result.stderr, args
        assert server_secret not in result.stdout + result.stderr, args
    runner = subprocess.run(
        [
            sys.executable,
            "-m",
            "migratekit",
            "migrate",
            "--dir",
            str(root / "services/api/migrations"),
            "--url",
            env["AUTH_DATABASE_URL"],
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert runner.returncode == 1 and server_secret not in runner.stdout + runner.stderr
    assert (
        "postgresql://postgres:***@127.0.0.1:1/nowhere"
        in subprocess.run(
            [sys.executable, "-m", "invoke", "migrate", "api"],
            cwd=root,
            capture_output=True,
            text=True,
            env={**os.environ, **env},
            timeout=60,
        ).stdout
    )


@pytest.mark.parametrize(
    "url",
    [
        f"host=127.0.0.1 port=5432?sslpassword={SECRET} dbname=x",  # a query put after a keyword string's port
        f"postgresql://db.internal/app?sslpassword={SECRET}&sslidentity=/id.p12",  # Prisma's PKCS#12 identity
    ],
)
def test_a_url_refused_for_its_port_or_an_argument_names_no_password(tmp_path: Path, url: str) -> None:
    """libpq's reading of a bad port quoted everything after it, a password given as an argument there too."""
    root = write_tree(
        tmp_path / "repo",
        {"tasks.py": "from migratekit.tasks import ns\n", "services/auth/migrations/001_init.sql": "SELECT 1;\n"},
    )
    done = subprocess.run(
        [sys.executable, "-m", "invoke", "migrate-all"],
        cwd=root,
        capture_output=True,
        text=True,
        env={**os.environ, "AUTH_DATABASE_URL": url},
        timeout=60,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert SECRET not in done.stdout + done.stderr, done.stderr
