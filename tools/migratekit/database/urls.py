"""A URL for each service's database: its variable's, or the embedded cluster's, started and created as needed."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from migratekit.database.embedded import Embedded
from migratekit.errors import ConfigError
from migratekit.model.identity import embedded_refusal, resolve
from migratekit.model.workspace import Service


def connection_urls(
    root: Path,
    services: Iterable[Service],
    environ: Mapping[str, str] | None = None,
    create: bool = True,
    notify: Callable[[str], None] | None = None,
    embedded_allowed: bool = False,
    beside: Iterable[Service] = (),
) -> dict[str, str | None]:
    """A URL for every service, starting the embedded cluster and creating databases only if needed.

    With create=False nothing is started or created: an embedded database that does not exist
    yet maps to None (a dry run treats it as empty). `notify` hears that the embedded cluster was
    started (it keeps running), or that it is stopped, so nobody is surprised by either. In CI, or
    beside services that have URLs, a service without one is an error unless `embedded_allowed`
    (identity.embedded_refusal says why; `beside`: the workspace's other services), before anything starts.
    """
    env = os.environ if environ is None else environ
    sources = [resolve(service, env) for service in services]
    others = [resolve(s, env) for s in beside if s.name not in {x.service for x in sources}]
    refusal = embedded_refusal(sources, env, embedded_allowed, others)
    if refusal is not None:
        raise ConfigError(refusal)
    urls: dict[str, str | None] = {s.service: s.url for s in sources if s.url}
    embedded_services = [s for s in sources if not s.url]
    if not embedded_services:
        return urls
    embedded = Embedded(root, environ=environ)
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


def existing_url(
    root: Path, service: Service, needed_for: str, embedded_allowed: bool = False, beside: Iterable[Service] = ()
) -> str:
    """The URL of a database a command reads history from: never created, refused when absent."""
    found = connection_urls(root, [service], create=False, embedded_allowed=embedded_allowed, beside=beside)
    url = found[service.name]
    if url is None:
        raise ConfigError(f"{service.name}'s database does not exist yet: {needed_for}")
    return url
