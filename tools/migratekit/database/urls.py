"""A URL for each service's database: its variable's, or the embedded cluster's, started and created as needed."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from migratekit.database.embedded import Embedded
from migratekit.errors import ConfigError
from migratekit.model.identity import resolve
from migratekit.model.workspace import Service


def connection_urls(
    root: Path,
    services: Iterable[Service],
    environ: Mapping[str, str] | None = None,
    create: bool = True,
    notify: Callable[[str], None] | None = None,
) -> dict[str, str | None]:
    """A URL for every service, starting the embedded cluster and creating databases only if needed.

    With create=False nothing is started or created: an embedded database that does not exist
    yet maps to None (a dry run treats it as empty). `notify` hears that the embedded cluster was
    started (it keeps running), or that it is stopped, so nobody is surprised by either.
    """
    urls: dict[str, str | None] = {}
    embedded = Embedded(root, environ=environ)
    embedded_services = []
    for service in services:
        source = resolve(service, environ)
        if source.url:
            urls[service.name] = source.url
        else:
            embedded_services.append(source)
    if not embedded_services:
        return urls
    was_running = embedded.running() is not None
    for source in embedded_services:
        if create:
            urls[source.service] = embedded.ensure_database(source.database)
        else:
            urls[source.service] = embedded.existing_database(source.database) if was_running else None
    if notify and not was_running:
        server = embedded.running()
        if create and server is not None:
            notify(
                f"started the embedded PostgreSQL at {server.url()} ({server.binaries.source} binaries, data in "
                f"{server.datadir}); it keeps running between commands: invoke db-down stops it"
            )
        elif not create:
            notify("the embedded PostgreSQL is not running (invoke db-up starts it): its databases are read as empty")
    return urls


def existing_url(root: Path, service: Service, needed_for: str) -> str:
    """The URL of a database a command reads history from: never created, refused when absent."""
    url = connection_urls(root, [service], create=False)[service.name]
    if url is None:
        raise ConfigError(f"{service.name}'s database does not exist yet: {needed_for}")
    return url
