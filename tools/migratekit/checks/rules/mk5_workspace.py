"""MK5xx: the monorepo as a whole: undeclared services, shared tracking tables, stale ignores, undeclared uses.

What no single-file linter can see: a service's migrations using what another service's create (MK504),
or what nothing creates (MK505). Each service's side comes from its own lint (checks.sql.names, read from
the parse trees it already has); the comparison is here, and `invoke init` proposes depends_on from it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from migratekit.checks.rule import Scope, StaleIgnore
from migratekit.checks.rule import rule as declare_rule
from migratekit.checks.sql.context import Reference, ServiceObjects
from migratekit.checks.sql.names import RELATION, ROLE, Name, builtins, candidates, provided, shown
from migratekit.model.contract import SEED_TABLE
from migratekit.model.graph import closure
from migratekit.model.identity import configured_sharing, identity, shared_tracking_tables
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


@dataclass(frozen=True)
class Use:
    """One service's use of a name it does not create, and the services whose migrations do create it."""

    service: str
    reference: Reference
    owners: tuple[tuple[str, str], ...]  # (service, what it is there: "table", ...), in migration order
    name: str  # as the owners create it (or as PostgreSQL would first look for it)

    @property
    def local(self) -> bool:
        """Whether the object lives in one database (everything but a role, which is the server's)."""
        return self.reference.namespace != ROLE


def uses(ws: Workspace, objects: Mapping[str, ServiceObjects]) -> Iterator[Use]:
    """Every name a service's migrations use that it does not create, with who creates it."""
    order = ws.order()
    index: dict[Name, list[tuple[str, str]]] = {}
    for name in order:
        for created, what in provided(objects.get(name, ServiceObjects()).creates).items():
            index.setdefault(created, []).append((name, what))
    for name in order:
        for reference in objects.get(name, ServiceObjects()).references:
            found = next((c for c in candidates(reference.namespace, reference.name) if c in index), None)
            owners = tuple(o for o in index.get(found, []) if o[0] != name) if found else ()
            yield Use(name, reference, owners, found[1] if found else shown(reference.namespace, reference.name))


def _database(ws: Workspace, name: str, environ: Mapping[str, str]) -> str:
    return identity(ws.services[name], environ).database


def _statement(reference: Reference) -> str:
    return f"`{reference.statement}`"


objects_rule = partial(declare_rule, scope=Scope.OBJECTS)


@objects_rule(
    "MK504",
    "error",
    "add the owner to the service's depends_on in workspace.yaml (invoke init --update proposes it); across "
    "databases, put the service in the owner's database (database:) or create what it needs in its own migrations",
)
def undeclared_use(
    ws: Workspace, objects: Mapping[str, ServiceObjects], environ: Mapping[str, str]
) -> Iterable[WorkspaceHit]:
    """A migration uses what another service's migrations create, without depends_on on that service.

    A table, view, type, function, schema, role or extension. Without depends_on the two services migrate
    in any order: on a fresh database the user's migration runs before the owner's has created what it
    uses, and fails. The dependency must be the service's own
    (direct): an order that holds only through a third service breaks when that one drops its depends_on.
    Two services in different databases cannot use each other's objects at all (PostgreSQL reaches no other
    database without a foreign data wrapper), whatever depends_on says; a role is the server's and needs
    only the order.
    Bad: enrichment: {database: battles}  with  REFERENCES public.battles(id)  in enrichment's migrations
    Good: enrichment: {database: battles, depends_on: [battles]}
    """
    for use in uses(ws, objects):
        if not use.owners:
            continue
        service, reference = ws.services[use.service], use.reference
        here = [
            o
            for o in use.owners
            if not use.local or _database(ws, o[0], environ) == _database(ws, use.service, environ)
        ]
        where = (use.service, reference.path, reference.line)
        if not here:
            owner, what = use.owners[0]
            yield (
                *where,
                f"{use.service} uses {use.name}, a {what} {owner} creates in database "
                f"{_database(ws, owner, environ)}, but {use.service}'s migrations run in "
                f"{_database(ws, use.service, environ)}, where it does not exist (PostgreSQL cannot reach "
                f"another database's objects): {_statement(reference)}",
            )
        elif not any(o in service.depends_on for o, _ in here):
            owner, what = here[0]
            yield (
                *where,
                f"{use.service} uses {use.name}, a {what} {owner} creates, without depends_on: [{owner}]: "
                f"{_statement(reference)}",
            )


@objects_rule(
    "MK505",
    "warning",
    "create it in the service's migrations (CREATE EXTENSION IF NOT EXISTS for an extension's), or, when it is "
    "made outside migrations, list MK505 in the service's ignore (or ignore_files) in workspace.yaml",
)
def unknown_use(
    ws: Workspace, objects: Mapping[str, ServiceObjects], environ: Mapping[str, str]
) -> Iterable[WorkspaceHit]:
    """A migration uses a table, type, function, schema or role that no service's migrations create.

    A fresh database (a new environment, CI, a replay) has only what migrations make: the migration fails
    there. A warning, not an error: some objects are rightly made outside migrations (a role the platform
    provisions, an extension a DBA installs), and what PostgreSQL itself has is known from one release
    (checks/sql/builtins.json), so a function new in a later one is reported too.
    Bad: CREATE TABLE notes (id BIGINT REFERENCES documents(id))  and no service creates documents
    Good: the migration that creates documents comes first, in this service or one it depends on
    """
    for use in uses(ws, objects):
        if use.owners:
            continue
        reference = use.reference
        extension = builtins().extension_of(reference.namespace, reference.name)
        if extension is not None:
            what = f"{use.name}, the {extension} extension's, and no service creates the extension"
        else:
            what = f"{use.name} ({_NAMESPACES[reference.namespace]}), which no service's migrations create"
        yield use.service, reference.path, reference.line, f"{use.service} uses {what}: {_statement(reference)}"


_NAMESPACES = {
    "relation": "a table, view or sequence",
    "type": "a type",
    "function": "a function",
    "schema": "a schema",
    "role": "a role",
    "extension": "an extension",
}


def proposed_settings(
    ws: Workspace, objects: Mapping[str, ServiceObjects], environ: Mapping[str, str]
) -> dict[str, dict[str, Any]]:
    """What `invoke init` proposes for each service from what its migrations use: depends_on on every owner,
    and, when what it uses is all in one other service's database, that database (with the tracking table
    of its own its migrations create, so that the two do not share one: MK502)."""
    proposals: dict[str, dict[str, Any]] = {}
    edges: dict[str, set[str]] = {n: set(s.depends_on) for n, s in ws.services.items()}
    for use in uses(ws, objects):
        if not use.owners:
            continue
        mine = _database(ws, use.service, environ)
        owner = next((o for o, _ in use.owners if _database(ws, o, environ) == mine), use.owners[0][0])
        if use.service in closure({owner}, edges):
            continue  # the owner already comes after it: proposing the edge would make a cycle
        edges[use.service].add(owner)
        proposal = proposals.setdefault(use.service, {"depends_on": list(ws.services[use.service].depends_on)})
        if owner not in proposal["depends_on"]:
            proposal["depends_on"].append(owner)
        if use.local and _database(ws, owner, environ) != mine:
            proposal.setdefault("databases", set()).add(ws.services[owner].database)
    for name, proposal in proposals.items():
        databases = proposal.pop("databases", set())
        if len(databases) == 1:
            proposal["database"] = next(iter(databases))
            own = [n for (ns, n) in objects[name].creates if ns == RELATION and n.endswith(f".{SEED_TABLE}")]
            table = next((n for n in own if not n.startswith("public.")), None)
            if table is not None and ws.services[name].settings.tracking_table == SEED_TABLE:
                proposal["tracking_table"] = table
        proposal["depends_on"] = tuple(proposal["depends_on"])
    return proposals
