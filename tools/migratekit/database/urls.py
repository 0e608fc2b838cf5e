"""A URL for each service's database: its variable's, or the embedded cluster's, started and created as needed."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from migratekit.errors import ConfigError
from migratekit.model.identity import embedded_refusal, resolve
from migratekit.model.workspace import Service, Workspace


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
    from migratekit.database.embedded import Embedded  # a cluster to start: not for services that have URLs

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


def workspace_urls(
    workspace: Workspace,
    services: Iterable[Service],
    create: bool = True,
    notify: Callable[[str], None] | None = None,
    embedded: bool = False,
) -> dict[str, str | None]:
    """connection_urls for a task: beside the workspace's other services, the embedded server allowed by
    `embedded` (a flag) or workspace.yaml's `embedded: true`."""
    return connection_urls(
        workspace.root,
        services,
        create=create,
        notify=notify,
        embedded_allowed=embedded or workspace.embedded,
        beside=workspace.services.values(),
    )


def existing_url(workspace: Workspace, name: str, needed_for: str) -> str:
    """The URL of a database a command reads history from: never created, refused when absent."""
    url = workspace_urls(workspace, [workspace.get(name)], create=False)[name]
    if url is None:
        raise ConfigError(f"{name}'s database does not exist yet: {needed_for}")
    return url
