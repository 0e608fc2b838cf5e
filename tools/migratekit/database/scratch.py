"""Throwaway databases for tests, replays and idempotency checks.

The server comes from `MIGRATEKIT_SCRATCH_URL` (any server where we may create and drop
databases), else a testcontainers PostgreSQL when a Docker engine answers, else the embedded
cluster. Every database made here is uniquely named and dropped on exit, even after a failure.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import psycopg

from migratekit.database.embedded import Embedded, create_database, drop_database
from migratekit.errors import MigratekitError
from migratekit.model.identity import with_database
from migratekit.model.secrets import redact
from migratekit.model.settings import POSTGRES_IMAGE, POSTGRES_IMAGE_ENV

SCRATCH_ENV = "MIGRATEKIT_SCRATCH_URL"


@dataclass(frozen=True)
class ScratchServer:
    admin_url: str
    origin: str  # which of the three sources, for messages ("$MIGRATEKIT_SCRATCH_URL", "container", "embedded")


_container_url: str | None = None


def docker_unavailable_reason() -> str | None:
    """None when a Docker engine answers, else why not (for skips and messages)."""
    try:
        import docker  # type: ignore[import-untyped]
    except ImportError:
        return "the docker package is not installed (pip install 'migratekit[test]')"
    try:
        client = docker.from_env(timeout=3)
        client.ping()
    except Exception as exc:  # docker raises several unrelated types when no engine answers
        return f"no Docker engine answers ({type(exc).__name__})"
    return None


def postgres_image(environ: Mapping[str, str] | None = None) -> str:
    """The image of the throwaway databases' container: `$MIGRATEKIT_POSTGRES_IMAGE`, else postgres:16.

    Settable because an engine may reach no registry (its images are made locally, under their own names)
    or a team may pin the server version its services run in production.
    """
    env = os.environ if environ is None else environ
    return env.get(POSTGRES_IMAGE_ENV, "").strip() or POSTGRES_IMAGE


def _container_server() -> str:
    """Start one PostgreSQL container for this process and stop it at exit."""
    global _container_url
    if _container_url is None:
        from testcontainers.community.postgres import PostgresContainer  # type: ignore[import-untyped]

        image = postgres_image()
        # a password of its own, random: it checks one (scram), and a test can tell it apart in any output
        container = PostgresContainer(image, password=f"mk-{uuid.uuid4().hex[:16]}", driver=None)
        # its databases are thrown away: nothing to make durable, as in the embedded cluster
        container.with_command("postgres -c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        try:
            container.start()
        except Exception as exc:  # docker's errors (image not found, pull refused) share no base with startup's
            with contextlib.suppress(Exception):  # a container that never started has nothing to stop
                container.stop()
            raise MigratekitError(
                f"cannot start a PostgreSQL container from {image}: {redact(str(exc)).strip()}; "
                f"set ${POSTGRES_IMAGE_ENV} to an image this Docker engine has, or ${SCRATCH_ENV} to a server"
            ) from None
        atexit.register(container.stop)
        _container_url = container.get_connection_url()
    return _container_url


def scratch_server(root: Path, environ: dict[str, str] | None = None) -> ScratchServer:
    env = os.environ if environ is None else environ
    url = env.get(SCRATCH_ENV, "").strip()
    if url:
        return ScratchServer(url, f"${SCRATCH_ENV}")
    if docker_unavailable_reason() is None:
        return ScratchServer(_container_server(), "container")
    return ScratchServer(Embedded(root).start().url(), "embedded")


@contextlib.contextmanager
def scratch_session(root: Path, environ: dict[str, str] | None = None) -> Iterator[ScratchServer]:
    """A scratch server for one command: an embedded cluster started only for it stops when it ends.

    A cluster that was already running (`invoke db-up`, or a migrate-all's databases) keeps running.
    """
    embedded = Embedded(root, environ=environ)
    was_running = embedded.running() is not None
    server = scratch_server(root, environ)
    try:
        yield server
    finally:
        if server.origin == "embedded" and not was_running:
            embedded.stop()


@contextlib.contextmanager
def scratch_database(server: ScratchServer, prefix: str = "mk_scratch") -> Iterator[str]:
    """A new empty database on `server`, dropped when the block ends however it ends."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        create_database(server.admin_url, name)
    except psycopg.Error as exc:
        raise MigratekitError(
            f"cannot create a throwaway database on {redact(server.admin_url)} ({server.origin}): "
            f"{redact(str(exc)).strip()}; point ${SCRATCH_ENV} at a server where this role may create "
            "databases, or unset it to use the embedded one"
        ) from None
    try:
        yield with_database(server.admin_url, name)
    finally:
        drop_database(server.admin_url, name)
