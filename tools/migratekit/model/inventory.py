"""What `invoke services` shows: each service with its migrations and its database source."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from migratekit.model.identity import resolve
from migratekit.model.workspace import Workspace, relative


@dataclass(frozen=True)
class ServiceInfo:
    name: str
    language: str
    depends_on: tuple[str, ...]
    migrations: int
    migrations_dir: str  # relative to the monorepo's root
    newest: str | None
    url_variable: str
    database: str
    tracking_table: str
    declared: bool


def inventory(workspace: Workspace, environ: Mapping[str, str] | None = None) -> list[ServiceInfo]:
    """One row per service in dependency order; starts no database and prints no password."""
    rows = []
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
            )
        )
    return rows
