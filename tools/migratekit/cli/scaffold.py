"""The Invoke tasks that write a new service or migration: new-service, new-migration (part of `tasks.ns`)."""

from __future__ import annotations

from invoke import Context, task

from migratekit.cli import render
from migratekit.cli.flags import ROOT_HELP, number, typed, user_errors, workspace_at


@task(
    help={
        "name": "the new service's name: lower-case letters, digits, '-' and '_'",
        "root": ROOT_HELP,
        "lang": "typescript (default) or python",
        "depends_on": "comma-separated services this one depends on",
        "port": "the port the server listens on (default 3000)",
        "format": "the migration format: seed (default), updown, dbmate or goose",
    }
)
@user_errors
def new_service(
    c: Context,
    name: str,
    root: str | None = None,
    lang: str = "typescript",
    depends_on: str = "",
    port: str = "3000",  # a string, checked by number(): a bad value is exit 2 naming the flag
    format: str = "seed",
) -> None:
    """Create services/NAME in the seed's shape (migrations, runner, Dockerfile, k8s) and declare it."""
    from migratekit.scaffold import new_service as scaffold

    workspace = workspace_at(root)
    deps = tuple(d.strip() for d in depends_on.split(",") if d.strip())
    port_ = number(port, "port", int, 0)  # the scaffold says which ports are TCP ports
    created = scaffold(workspace, name, lang, deps, port_, fmt=format)
    out = render.console()
    out.print(f"created {created.path.relative_to(workspace.root)} ({lang}), declared in workspace.yaml:")
    for relative in created.files:
        out.print(f"  {relative}")
    out.print(f"next: invoke audit --service {name}; invoke migrate {name}")


@task(
    help={
        "service": "the service to add a migration to",
        "description": "what the migration does, in words (its file is named after them)",
        "root": ROOT_HELP,
    }
)
@user_errors
def new_migration(c: Context, service: str, description: str, root: str | None = None) -> None:
    """Write SERVICE's next numbered migration (NNN_description.sql) with the seed's header."""
    from migratekit.scaffold import new_migration as scaffold

    workspace = workspace_at(root)
    created = scaffold(workspace, service, typed(description))
    print(created.path.relative_to(workspace.root))
