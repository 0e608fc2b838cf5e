"""Shared fixtures: a real PostgreSQL (never mocked) and small monorepos built in tmp_path.

The server is whatever the toolkit's scratch provider gives: $MIGRATEKIT_SCRATCH_URL, else a
testcontainers PostgreSQL when Docker answers, else the embedded cluster of this checkout.
Every test database is uniquely named and dropped afterwards.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import subprocess
import tempfile
import textwrap
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from invoke import Program

from migratekit.database.scratch import ScratchServer, docker_unavailable_reason, scratch_database, scratch_session
from migratekit.database.servers import TEMP_CLUSTER, checkout_of, running_servers

REPO = Path(__file__).resolve().parents[1]


# Tests are the same on a laptop and in CI: `CI` (set by every CI system) changes what a missing URL means
# (database.urls), so a test that is about CI sets it itself.
os.environ.pop("CI", None)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests on the example monorepo are marked `example`: .ci/run runs them again on the embedded wheel.

    Tests marked `engine` need a Docker engine: without one they skip, saying why (.ci/run starts one).
    """
    engine_tests = [item for item in items if item.get_closest_marker("engine")]
    reason = docker_unavailable_reason() if engine_tests else None
    for item in items:
        if "example_repo" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.example)
    for item in engine_tests if reason else ():
        item.add_marker(pytest.mark.skip(reason=f"needs a Docker engine: {reason} (.ci/engine-up starts one)"))


@pytest.fixture(scope="session", autouse=True)
def no_cluster_data_left_in_tmp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """As root, a cluster of a checkout in tmp_path keeps its data under /tmp (its server's user cannot enter
    tmp_path): what this session's checkouts left there is removed when it ends, unless a postmaster runs in it."""
    yield
    base = tmp_path_factory.getbasetemp().resolve()
    in_use = {server.datadir.parent for server in running_servers()}
    for parent in Path(tempfile.gettempdir()).glob("migratekit-*"):
        if not TEMP_CLUSTER.match(parent.name) or parent.is_symlink() or parent in in_use:
            continue
        checkout = checkout_of(parent / "data")
        if checkout is not None and checkout.is_relative_to(base):
            shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[ScratchServer]:
    """The tests' server; an embedded cluster started only for this session stops when it ends."""
    with scratch_session(REPO) as server:
        yield server


@pytest.fixture
def scratch_db(pg_server: ScratchServer) -> Iterator[str]:
    with scratch_database(pg_server, prefix="mk_test") as url:
        yield url


@pytest.fixture
def new_db(pg_server: ScratchServer) -> Iterator[Callable[[], str]]:
    """A factory of fresh databases, all dropped at the end of the test."""
    with __import__("contextlib").ExitStack() as stack:
        yield lambda: stack.enter_context(scratch_database(pg_server, prefix="mk_test"))


def write_tree(root: Path, files: Mapping[str, Any]) -> Path:
    """Write a tree described as data under `root`: the one builder the tests share.

    Each value is text (written as it is), bytes, None (delete the file), or {copy: a file of this
    repository, replace: [[old, new], ...]}; a key ending in "/" is an empty directory.
    """
    for relative, content in files.items():
        path = root / relative
        if relative.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
            continue
        if content is None:
            path.unlink(missing_ok=True)
            continue
        if isinstance(content, Mapping):
            text = (REPO / content["copy"]).read_text()
            for old, new in content.get("replace", []):
                assert old in text, f"{content['copy']} no longer contains {old!r}"
                text = text.replace(old, new)
            content = text
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return root


def with_secret(url: str, made_up: str = "hunter2-Zq9") -> tuple[str, str]:
    """`url` with a password the server accepts, and that password, for the tests that check it is never shown.

    A server that trusts any login (the machine's) gets a made-up one; testcontainers' PostgreSQL checks its
    own (scram), which the toolkit makes random and distinctive (database.scratch), so it is kept.
    """
    own = psycopg.conninfo.conninfo_to_dict(url).get("password")
    if own:
        return url, str(own)
    return psycopg.conninfo.make_conninfo(url, password=made_up), made_up


def plain(text: str) -> str:
    """Terminal output as a person reads it: colours and cursor movements taken out."""
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)


@pytest.fixture
def tree(tmp_path: Path) -> Callable[..., Path]:
    """`tree({"services/a/migrations/001_init.sql": "...", "workspace.yaml": "..."})` -> the root it wrote."""
    return lambda files, root=None: write_tree(root or tmp_path, files)


@dataclass
class Monorepo:
    """A monorepo in tmp_path, with a database per service and a way to run its tasks."""

    root: Path
    env: dict[str, str]

    def write(self, relative: str, text: str) -> Path:
        write_tree(self.root, {relative: textwrap.dedent(text).lstrip()})
        return self.root / relative

    def migration(self, service: str, filename: str, sql: str) -> Path:
        return self.write(f"services/{service}/migrations/{filename}", sql)

    def invoke(
        self, *args: str, env: dict[str, str] | None = None, terminal: int | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a task as a user would, from the monorepo root, through its three-line tasks.py.

        Invoke's own program runs it in this process, with the monorepo as the working directory and
        exactly the environment a shell would give: the same output and exit code as `invoke ...`, at
        a fraction of a new process's start-up (a minute of the suite). What only a process can show
        (signals, `python -m migratekit`, start-up itself) is tested with real processes elsewhere.
        Output is piped, as in CI; `terminal=80` prints as on a terminal 80 columns wide instead
        (colours and all: `plain` strips them).
        """
        environment = {**os.environ, **self.env, **(env or {}), "COLUMNS": "200"}
        for variable in ("FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
            environment.pop(variable, None)  # whatever the shell running pytest says, the task sees a pipe
        if terminal is not None:
            environment.update(TTY_COMPATIBLE="1", COLUMNS=str(terminal), TERM="xterm-256color")
        out, err = io.StringIO(), io.StringIO()
        saved_environ, saved_cwd, code = dict(os.environ), os.getcwd(), 0
        os.environ.clear()
        os.environ.update(environment)
        os.chdir(self.root)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                Program(binary="invoke").run(["invoke", *args], exit=True)
        except SystemExit as stopped:
            code = stopped.code if isinstance(stopped.code, int) else (0 if stopped.code is None else 1)
        finally:
            os.chdir(saved_cwd)
            os.environ.clear()
            os.environ.update(saved_environ)
        return subprocess.CompletedProcess(["invoke", *args], code, out.getvalue(), err.getvalue())

    def query(self, service: str, sql: str) -> list[tuple]:
        with psycopg.connect(self.env[f"{service.upper()}_DATABASE_URL"]) as conn:
            return conn.execute(sql).fetchall()


@pytest.fixture
def monorepo(tmp_path: Path, new_db: Callable[[], str]) -> Callable[..., Monorepo]:
    """`monorepo({"auth": {}, "api": {"depends_on": ["auth"]}})`: services, workspace.yaml, databases."""

    def build(services: dict[str, dict], workspace: bool = True) -> Monorepo:
        root = tmp_path / "repo"
        root.mkdir()
        (root / "tasks.py").write_text("from migratekit.tasks import ns\n\n__all__ = ['ns']\n")
        env = {}
        for name in services:
            (root / "services" / name / "migrations").mkdir(parents=True)
            env[f"{name.upper()}_DATABASE_URL"] = new_db()
        if workspace:
            (root / "workspace.yaml").write_text(yaml.safe_dump({"version": 1, "services": services}))
        return Monorepo(root, env)

    return build


@pytest.fixture
def example_repo(tmp_path: Path, pg_server: ScratchServer) -> Monorepo:
    """A copy of this repository's example monorepo (services, workspace.yaml, tasks.py), no database URLs."""
    root = tmp_path / "example"
    shutil.copytree(REPO / "services", root / "services", ignore=shutil.ignore_patterns("node_modules", "dist"))
    shutil.copy(REPO / "workspace.yaml", root / "workspace.yaml")
    shutil.copy(REPO / "tasks.py", root / "tasks.py")
    # enrichment's image installs the toolkit from the root: copies, as docker sends a symlink as a symlink
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    shutil.copy(REPO / "README.md", root / "README.md")
    shutil.copy(REPO / ".dockerignore", root / ".dockerignore")
    shutil.copytree(REPO / "tools", root / "tools", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    return Monorepo(root, {"MIGRATEKIT_SCRATCH_URL": pg_server.admin_url})
