"""What `invoke services` and `invoke graph` show: each service with its migrations, database source and wave."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from migratekit.model.identity import resolve
from migratekit.model.workspace import Workspace, relative


@dataclass(frozen=True)
class ServiceInfo:
    name: str  # the service, as workspace.yaml and the tasks name it
    language: str  # typescript, python, go, ... (workspace.yaml), or unknown
    depends_on: tuple[str, ...]  # the services it is migrated after
    migrations: int  # how many migration files it has
    migrations_dir: str  # relative to the monorepo's root
    newest: str | None  # its newest migration version, null with none
    url_variable: str  # the environment variable its database URL is read from
    database: str  # where its database is (password hidden), or embedded/<name>
    tracking_table: str  # schema-qualified
    declared: bool  # false: found on disk, not in workspace.yaml
    format: str  # the format its files are read in (declared, else detected)
    wave: int  # 1 for services that depend on none; each wave depends only on earlier ones


@dataclass(frozen=True)
class GraphNode:
    name: str  # the service
    wave: int  # 1 for services that depend on none
    depends_on: tuple[str, ...]  # within the graph
    language: str  # as in workspace.yaml


@dataclass(frozen=True)
class ServiceGraph:
    """The services, their dependencies and the waves `migrate-all` runs them in: what `invoke graph` draws."""

    services: tuple[GraphNode, ...]  # in dependency order
    waves: tuple[tuple[str, ...], ...]  # the services of each wave, wave 1 first


def waves_of(workspace: Workspace, only: set[str] | None = None) -> dict[str, int]:
    """Each service's wave, counted from 1."""
    return {name: i for i, group in enumerate(workspace.groups(only), 1) for name in group}


def service_graph(workspace: Workspace, only: set[str] | None = None) -> ServiceGraph:
    """The graph of `only` these services (default all), with the dependencies between them."""
    groups = workspace.groups(only)
    wave = {name: i for i, group in enumerate(groups, 1) for name in group}
    nodes = tuple(
        GraphNode(name, wave[name], tuple(d for d in workspace.services[name].depends_on if d in wave), svc.language)
        for name in workspace.order()
        if name in wave and (svc := workspace.services[name]) is not None
    )
    return ServiceGraph(nodes, tuple(tuple(group) for group in groups))


def inventory(workspace: Workspace, environ: Mapping[str, str] | None = None) -> list[ServiceInfo]:
    """One row per service in dependency order; starts no database and prints no password."""
    rows = []
    wave = waves_of(workspace)
    for name in workspace.order():
        service = workspace.services[name]
        migrations = service.load_migrations(mixed=True)  # the audit says MK117
        rows.append(
            ServiceInfo(
                name=name,
                language=service.language,
                depends_on=service.depends_on,
                migrations=len(migrations),
                migrations_dir=relative(workspace.root, service.migrations_dir),
                newest=migrations[-1].version if migrations else None,
                url_variable=service.settings.database_url_env,
                database=resolve(service, environ).describe(),
                tracking_table=service.settings.tracking_table,
                declared=service.declared,
                format=migrations[0].format if migrations else service.settings.format,
                wave=wave[name],
            )
        )
    return rows
