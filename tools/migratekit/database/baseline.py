"""`invoke baseline`: record existing work as applied without running it, and, with --check, prove it first.

A database that already holds a service's tables (created by hand, or by a tool with no history)
gets migratekit's rows for the versions up to one the user names. `--check` replays those versions
into a throwaway database (with whatever the services sharing the database have applied) and
compares the catalogs, as `drift --schema` does: a baseline that would record a lie is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from migratekit.database import tracking
from migratekit.database.apply import Options
from migratekit.database.connection import connect
from migratekit.database.drift import database_drift, schema_drift
from migratekit.database.orchestrate import service_options
from migratekit.database.scratch import ScratchServer
from migratekit.errors import ConfigError, MigratekitError
from migratekit.model.formats import version_key
from migratekit.model.identity import shared_databases
from migratekit.model.migration import load_migrations
from migratekit.model.workspace import Workspace


@dataclass(frozen=True)
class Baselined:
    service: str
    recorded: tuple[str, ...]
    already: tuple[str, ...]
    checked: bool


def baseline(workspace: Workspace, name: str, url: str, to: str, server: ScratchServer | None = None) -> Baselined:
    """Record every version up to `to` as applied; with a scratch server, only after the schemas agree."""
    service = workspace.services[name]
    migrations = load_migrations(service.migrations_dir, service.format)
    if to not in {m.version for m in migrations}:
        raise ConfigError(
            f"--to {to}: no such migration of {name}; its versions: {', '.join(m.version for m in migrations)}"
        )
    targets = [m for m in migrations if version_key(m.version) <= version_key(to)]
    options = service_options(workspace, name, Options())
    _, rows = database_drift(workspace, name, url)
    clash = [m.filename for m in targets if m.version in rows and rows[m.version] != m.checksum]
    if clash:
        raise ConfigError(f"already recorded with another checksum: {', '.join(clash)}; see invoke status")
    if server is not None:
        _check(workspace, name, url, {m.version: m.checksum for m in targets}, server)
    todo = [m for m in targets if m.version not in rows]
    with connect(url, options.connect_wait) as conn:
        with tracking.locked(conn, options.tracking_table, options.lock_wait):
            tracking.ensure_table(conn, options.tracking_table)
            with conn.transaction():
                for migration in todo:
                    conn.execute(
                        tracking.row(options.tracking_table, migration.version, migration.checksum, sql.Literal(0))
                    )
    return Baselined(
        name, tuple(m.version for m in todo), tuple(m.version for m in targets if m.version in rows), server is not None
    )


def _check(workspace: Workspace, name: str, url: str, claimed: dict[str, str], server: ScratchServer) -> None:
    """Refuse unless replaying the claimed versions (and the neighbours' applied ones) gives the live schema."""
    ordered = [workspace.services[n] for n in workspace.order()]
    group = next(g for _, g in shared_databases(ordered) if name in g)
    rows = {n: (claimed if n == name else database_drift(workspace, n, url)[1]) for n in group}
    table = tracking.qualified(workspace.services[name].tracking_table)
    differences = [
        d
        for d in schema_drift(workspace, group, url, rows, server)
        if table not in d.name and table.split(".")[-1] not in d.name
    ]
    if differences:
        listed = "; ".join(d.describe() for d in differences[:8])
        more = f" (and {len(differences) - 8} more)" if len(differences) > 8 else ""
        raise MigratekitError(
            f"the live schema is not what {name}'s migrations up to that version make: {listed}{more}; "
            "baseline a version the database really matches, or fix the database first"
        )
