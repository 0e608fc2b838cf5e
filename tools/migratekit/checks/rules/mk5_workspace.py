"""MK5xx: the monorepo as a whole: undeclared services, shared tracking tables, stale ignores."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import partial

from migratekit.checks.rule import Scope, StaleIgnore
from migratekit.checks.rule import rule as declare_rule
from migratekit.model.identity import configured_sharing, shared_tracking_tables
from migratekit.model.workspace import Workspace, relative

WorkspaceHit = tuple[str | None, str | None, int | None, str | None]  # (service, path, line, message)


rule = partial(declare_rule, scope=Scope.WORKSPACE)


@rule("MK501", "warning", "declare it under services: in workspace.yaml, with its depends_on")
def undeclared(ws: Workspace, environ: Mapping[str, str]) -> Iterable[WorkspaceHit]:
    """A service on disk that workspace.yaml does not declare.

    It still migrates, but with no dependencies, so its order relative to the others is a guess.
    Bad: services/payments/migrations/ and no payments: entry
    Good: services: {payments: {depends_on: [authentication]}}
    """
    config = ws.config_path.name if ws.config_path else None
    for name in ws.undeclared:
        yield name, config, None, f"{name} has migrations but is not declared in workspace.yaml"


@rule("MK502", "error", "give each service its own tracking_table (schema.schema_migrations) or its own database")
def shared_tracking_table(ws: Workspace, environ: Mapping[str, str]) -> Iterable[WorkspaceHit]:
    """Two services share one database and one tracking table.

    Their versions collide: 001_init of one is taken as applied for the other.
    Bad: battles and enrichment both in database battles with schema_migrations
    Good: enrichment: {database: battles, tracking_table: enrichment.schema_migrations}
    """
    config = ws.config_path.name if ws.config_path else None
    for found, names in shared_tracking_tables(ws.services.values(), environ):
        message = f"{', '.join(names)} share one database and the tracking table {found.tracking_table}"
        yield names[0], config, None, message
    for database, table, sharing in configured_sharing(ws.root, ws.services.values(), environ):
        where = sorted({relative(ws.root, c.path) for c in sharing})
        names = [c.service for c in sharing]
        message = (
            f"{', '.join(names)} share one database ({database}, their {sharing[0].variable} in {', '.join(where)}) "
            f"and the tracking table {table}"
        )
        yield names[0], config, None, message


def stale_service_ignores(ws: Workspace, used: set[tuple[str | None, str]]) -> list[StaleIgnore]:
    """The workspace.yaml ignores that silenced nothing in their service."""
    config = ws.config_path.name if ws.config_path else None
    whole = [
        StaleIgnore(False, name, config, None, code)
        for name, service in ws.services.items()
        for code in service.ignore
        if (name, code) not in used
    ]
    per_file = [
        StaleIgnore(False, name, config, None, code, each.files)
        for name, service in ws.services.items()
        for each in service.ignore_files
        for code in each.rules
        if (name, f"{each.files}:{code}") not in used
    ]
    return whole + per_file


@declare_rule(
    "MK503", "warning", "remove the code from the service's ignore list in workspace.yaml", scope=Scope.IGNORES
)
def unused_service_ignore(ignores: Iterable[StaleIgnore]) -> Iterable[WorkspaceHit]:
    """A workspace.yaml ignore that silences nothing.

    A stale ignore hides the next real problem of that kind in the service.
    Bad: auth: {ignore: [MK103]}   (auth's numbering has no gap)
    Good: auth: {}
    """
    for stale in ignores:
        if not stale.inline:
            files = f" in {stale.files}" if stale.files else ""
            yield (
                stale.service,
                stale.path,
                stale.line,
                f"ignore {stale.code}{files} for {stale.service} silences nothing",
            )
