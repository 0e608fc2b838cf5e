"""Shared fixtures: a real PostgreSQL (never mocked) and small monorepos built in tmp_path.

The server is whatever the toolkit's scratch provider gives: $MIGRATEKIT_SCRATCH_URL, else a
testcontainers PostgreSQL when Docker answers, else the embedded cluster of this checkout.
Every test database is uniquely named and dropped afterwards.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import tempfile
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from invoke import Program
from psycopg import sql

from migratekit.database.embedded import create_database, drop_database
from migratekit.database.scratch import (
    SCRATCH_ENV,
    ScratchServer,
    docker_unavailable_reason,
    scratch_session,
)
from migratekit.database.servers import TEMP_CLUSTER, checkout_of, running_servers
from migratekit.model.identity import with_database

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


_RUN_SERVER = pytest.StashKey[contextlib.ExitStack]()


def pytest_configure(config: pytest.Config) -> None:
    """With workers (pytest-xdist: the suite runs on every core), the embedded cluster, when it is the tests'
    server, starts here, in the process that starts the workers: each worker's session then finds it running
    and leaves it running, and it stops when the last worker is done (pytest_unconfigure), not the first.
    A server from $MIGRATEKIT_SCRATCH_URL needs nothing; testcontainers' is each worker's own."""
    if hasattr(config, "workerinput") or not getattr(config.option, "numprocesses", None):
        return
    if os.environ.get(SCRATCH_ENV, "").strip() or docker_unavailable_reason() is None:
        return
    stack = contextlib.ExitStack()
    stack.enter_context(scratch_session(REPO))
    config.stash[_RUN_SERVER] = stack


def pytest_unconfigure(config: pytest.Config) -> None:
    stack = config.stash.get(_RUN_SERVER, None)
    if stack is not None:
        stack.close()


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


# What a database made from template1 holds, as far as a test can tell: objects of its own (an oid from
# 16384 on) in each of its catalogs, the settings and rights of what it was made with, its row in pg_database.
_USER_OIDS = 16384
_FINGERPRINT = """
SELECT jsonb_build_object(
    'objects', (SELECT jsonb_object_agg(relname, n) FROM ({counts}) counted),
    'namespaces', (SELECT jsonb_agg(jsonb_build_array(nspname, nspowner::regrole::text, nspacl::text) ORDER BY nspname)
                   FROM pg_namespace WHERE oid < 16384),
    'acls', (SELECT jsonb_agg(acl ORDER BY acl) FROM (
        SELECT 'c' || oid || relacl::text AS acl FROM pg_class WHERE relacl IS NOT NULL
        UNION ALL SELECT 'p' || oid || proacl::text FROM pg_proc WHERE proacl IS NOT NULL
        UNION ALL SELECT 't' || oid || typacl::text FROM pg_type WHERE typacl IS NOT NULL
        UNION ALL SELECT 'l' || oid || lanacl::text FROM pg_language WHERE lanacl IS NOT NULL) acls),
    'descriptions', (SELECT md5(coalesce(string_agg(concat_ws(':', classoid, objoid, objsubid, description), ','
                                ORDER BY classoid, objoid, objsubid), '')) FROM pg_description),
    'rows', jsonb_build_array((SELECT count(*) FROM pg_depend WHERE objid >= 16384 OR refobjid >= 16384),
                              (SELECT count(*) FROM pg_inherits), (SELECT count(*) FROM pg_init_privs),
                              (SELECT count(*) FROM pg_seclabel), (SELECT count(*) FROM pg_largeobject)),
    'database', (SELECT to_jsonb(d) - ARRAY['oid', 'datname', 'datfrozenxid', 'datminmxid'] FROM pg_database d
                 WHERE datname = current_database()),
    'shared', jsonb_build_array(
        (SELECT count(*) FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase
         WHERE d.datname = current_database()),
        (SELECT count(*) FROM pg_shdepend s JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = current_database()),
        (SELECT count(*) FROM pg_replication_slots WHERE database = current_database()),
        (SELECT count(*) FROM pg_prepared_xacts WHERE database = current_database()))
)
"""
_CATALOGS_WITH_OIDS = """
SELECT c.relname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'oid'
WHERE c.relnamespace = 'pg_catalog'::regnamespace AND c.relkind = 'r' AND NOT c.relisshared ORDER BY 1
"""
# What tests make, taken away in an order that leaves nothing depending on what is gone (CASCADE for the rest)
_EMPTY = """
DO $empty$
DECLARE
    item text;
BEGIN
    FOREACH item IN ARRAY coalesce((SELECT array_agg(format('DROP EVENT TRIGGER %I', evtname)) FROM pg_event_trigger),
                                   '{}') LOOP EXECUTE item; END LOOP;
    FOREACH item IN ARRAY coalesce((SELECT array_agg(format('DROP PUBLICATION %I', pubname)) FROM pg_publication),
                                   '{}') LOOP EXECUTE item; END LOOP;
    FOREACH item IN ARRAY coalesce((SELECT array_agg(format('DROP EXTENSION IF EXISTS %I CASCADE', extname))
                                    FROM pg_extension WHERE oid >= 16384), '{}') LOOP EXECUTE item; END LOOP;
    FOREACH item IN ARRAY coalesce((SELECT array_agg(format('DROP SCHEMA IF EXISTS %I CASCADE', nspname))
                                    FROM pg_namespace WHERE oid >= 16384 AND nspname !~ '^pg_(toast_)?temp_'),
                                   '{}') LOOP EXECUTE item; END LOOP;
    FOREACH item IN ARRAY coalesce((SELECT array_agg(format('DROP %s IF EXISTS public.%I CASCADE',
        CASE relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE'
                     WHEN 'f' THEN 'FOREIGN TABLE' WHEN 'c' THEN 'TYPE' ELSE 'TABLE' END, relname))
        FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'p', 'v', 'm', 'S', 'f', 'c')),
        '{}') LOOP EXECUTE item; END LOOP;
    FOREACH item IN ARRAY coalesce((SELECT array_agg(format('DROP %s IF EXISTS public.%I(%s) CASCADE',
        CASE prokind WHEN 'p' THEN 'PROCEDURE' WHEN 'a' THEN 'AGGREGATE' ELSE 'FUNCTION' END, proname,
        pg_get_function_identity_arguments(oid))) FROM pg_proc WHERE pronamespace = 'public'::regnamespace),
        '{}') LOOP EXECUTE item; END LOOP;
    FOREACH item IN ARRAY coalesce((SELECT array_agg(format('DROP TYPE IF EXISTS public.%I CASCADE', typname))
        FROM pg_type WHERE typnamespace = 'public'::regnamespace AND typtype IN ('b', 'd', 'e', 'r')), '{}')
        LOOP EXECUTE item; END LOOP;
    PERFORM lo_unlink(oid) FROM pg_largeobject_metadata;
END
$empty$
"""


class DatabasePool:
    """Fresh databases for the tests, made once and emptied again after each test instead of dropped.

    A DROP DATABASE makes the server checkpoint: a second or more each on a busy shared server, the most
    expensive step of the suite. A database given back is emptied and then compared with one just made
    from template1 (its fingerprint); only one that is then indistinguishable is handed out again, any
    other is dropped. What is left is dropped when the session ends.
    """

    def __init__(self, server: ScratchServer) -> None:
        self.server = server
        self.free: list[str] = []
        self.made: set[str] = set()
        self.fresh: object = None  # the fingerprint of a database just made
        self.fingerprint_sql = ""

    @contextlib.contextmanager
    def database(self) -> Iterator[str]:
        url = self.free.pop() if self.free else self._new()
        try:
            yield url
        finally:
            self._give_back(url)

    def _new(self) -> str:
        name = f"mk_test_{uuid.uuid4().hex[:12]}"
        create_database(self.server.admin_url, name)
        url = with_database(self.server.admin_url, name)
        self.made.add(url)
        if self.fresh is None:
            with psycopg.connect(url, autocommit=True) as conn:
                catalogs = [row[0] for row in conn.execute(_CATALOGS_WITH_OIDS)]
                counts = " UNION ALL ".join(
                    f"SELECT '{name}' AS relname, count(*) AS n FROM pg_catalog.{name} WHERE oid >= {_USER_OIDS}"
                    + (" AND nspname !~ '^pg_(toast_)?temp_'" if name == "pg_namespace" else "")
                    for name in catalogs
                )
                self.fingerprint_sql = _FINGERPRINT.format(counts=counts)
                self.fresh = conn.execute(self.fingerprint_sql).fetchone()[0]
        return url

    def _give_back(self, url: str) -> None:
        name = str(psycopg.conninfo.conninfo_to_dict(url)["dbname"])
        try:
            if self._emptied(name, url):
                self.free.append(url)
                return
        except psycopg.Error:
            pass  # whatever the test left that cannot be emptied (or a database it dropped): dropped below
        self.made.discard(url)
        drop_database(self.server.admin_url, name)

    def _emptied(self, name: str, url: str) -> bool:
        with psycopg.connect(self.server.admin_url, autocommit=True) as admin:
            if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
                return False
            admin.execute(sql.SQL("ALTER DATABASE {} RESET ALL").format(sql.Identifier(name)))
            for _ in range(100):  # what the test left connected (a killed runner's backend, a pool) goes first
                others = admin.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    (name,),
                ).fetchone()
                if others == (0,):
                    break
                time.sleep(0.05)
            else:
                return False
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(_EMPTY)
            return bool(conn.execute(self.fingerprint_sql).fetchone()[0] == self.fresh)

    def close(self) -> None:
        for url in sorted(self.made):
            drop_database(self.server.admin_url, str(psycopg.conninfo.conninfo_to_dict(url)["dbname"]))
        self.made.clear()
        self.free.clear()


@pytest.fixture(scope="session")
def database_pool(pg_server: ScratchServer) -> Iterator[DatabasePool]:
    pool = DatabasePool(pg_server)
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture
def scratch_db(database_pool: DatabasePool) -> Iterator[str]:
    """A fresh database (empty, as made from template1) for this test alone."""
    with database_pool.database() as url:
        yield url


@pytest.fixture
def new_db(database_pool: DatabasePool) -> Iterator[Callable[[], str]]:
    """A factory of fresh databases (empty, as made from template1), this test's alone; none outlives the session."""
    with contextlib.ExitStack() as stack:
        yield lambda: stack.enter_context(database_pool.database())


def applied(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The versions one service's `migrate --json` applied, or its `rollback --json` undid."""
    report = json.loads(result.stdout)
    (service,) = report["services"] if "services" in report else [report]
    done = service["applied"] if "applied" in service else service["rolled_back"]  # migrate's, or rollback's
    return [a["version"] if isinstance(a, dict) else a for a in done]


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


@pytest.fixture
def full_disk() -> Iterator[Callable[..., Path]]:
    """`full_disk(directory, size="64k")`: a file system of its own at `directory` (a small tmpfs), which
    `filled` fills to its last byte, so that the next write there fails with ENOSPC as on a full disk. Skips
    where mounting is not permitted (not root, or a container without the capability): a real full disk, not a
    patched write."""
    mounted: list[Path] = []

    def mount(directory: Path, size: str = "64k") -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory)], capture_output=True, text=True
        )
        if done.returncode != 0:
            pytest.skip(f"a full disk needs a tmpfs mounted, not permitted here: {done.stderr.strip()}")
        mounted.append(directory)
        return directory

    yield mount
    for directory in reversed(mounted):  # one mounted inside another is unmounted first
        subprocess.run(["umount", str(directory)], check=True)


def read_only(directory: Path, writable: bool = False) -> None:
    """Make the file system at `directory` (a `full_disk`) read-only, as root's permissions never are (EROFS for
    every write); `writable=True` gives it back."""
    option = "remount,rw" if writable else "remount,ro"
    subprocess.run(["mount", "-o", option, str(directory)], check=True, capture_output=True)


def filled(directory: Path, keep: int = 0) -> None:
    """Fill the file system at `directory` (a `full_disk`) to its last byte, then give back `keep` bytes (a tmpfs
    gives them in pages: 4096 lets one small file be written, and nothing after it)."""
    filler = directory / "filler"
    with contextlib.suppress(OSError), filler.open("wb", buffering=0) as out:
        free = os.statvfs(directory)
        out.write(b"x" * (free.f_bavail * free.f_frsize))
        while True:  # the bytes the count left
            out.write(b"x" * 512)
    if keep:
        os.truncate(filler, filler.stat().st_size - keep)


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
