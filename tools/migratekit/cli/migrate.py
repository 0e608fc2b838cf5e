"""The Invoke tasks that migrate: services, migrate-all, migrate, rollback (part of `tasks.ns`)."""

from __future__ import annotations

import contextlib
import functools
import time
from typing import Any

from invoke import Context, Exit, task

from migratekit import interrupts
from migratekit.cli import render
from migratekit.cli.flags import MIGRATE_FLAGS, MIGRATE_HELP, ROOT_HELP, number, user_errors, with_flags, workspace_at
from migratekit.errors import ConfigError
from migratekit.model.selection import select
from migratekit.model.settings import RunOptions
from migratekit.model.workspace import relative


@task(help={"root": ROOT_HELP, "json": "print JSON instead of a table"})
@user_errors
def services(c: Context, root: str | None = None, json: bool = False) -> None:
    """List services: language, dependencies, migrations, newest version, database source."""
    from migratekit.model.inventory import inventory

    workspace = workspace_at(root)
    workspace.require_services()
    rows = inventory(workspace)
    if json:
        print(render.as_json({"services": rows, "undeclared": workspace.undeclared}))
        return
    out = render.console()
    out.print(render.services_table(rows, workspace.undeclared, out.width))


@task(
    help={
        "format": f"how to draw it: {', '.join(render.GRAPH_FORMATS)} (default tree)",
        "changed_since": "only services whose migrations changed since this git ref, and what depends on them",
        "json": "the same as --format json",
        "root": ROOT_HELP,
    },
    auto_shortflags=False,
)
@user_errors
def graph(
    c: Context, format: str = "tree", changed_since: str | None = None, json: bool = False, root: str | None = None
) -> None:
    """Show the services, their dependencies and the waves migrate-all runs them in (tree, Mermaid, DOT, JSON)."""
    from migratekit.model.inventory import service_graph

    shape = "json" if json else format
    if shape not in render.GRAPH_FORMATS:
        raise ConfigError(f"--format {format!r}: one of {', '.join(render.GRAPH_FORMATS)}")
    workspace = workspace_at(root)
    workspace.require_services()
    names = select(workspace, changed_since=changed_since, with_dependents=True) if changed_since else None
    drawn = service_graph(workspace, set(names) if names is not None else None)
    if shape == "json":
        print(render.as_json(drawn))
    elif shape == "tree":
        render.console().print(render.graph_tree(drawn))
    else:
        print((render.graph_mermaid if shape == "mermaid" else render.graph_dot)(drawn), end="")


def _to_stderr(line: str) -> None:
    render.console(stderr=True).print(line)


def _progress(enabled: bool) -> contextlib.AbstractContextManager[Any]:
    """The live display on stderr; with --json none, and rich is never imported (up to date is mostly start-up)."""
    if not enabled:
        return contextlib.nullcontext(None)
    from migratekit.cli.progress import live_progress

    return live_progress(render.console(stderr=True))


def _migrate(
    c: Context, title: str, names: list[str] | None, with_deps: bool, changed_since: str | None, **flags: Any
) -> None:
    from migratekit.database.orchestrate import migrate_all as run_all
    from migratekit.database.orchestrate import select_to_migrate
    from migratekit.database.urls import workspace_urls

    config = c.config.migratekit
    jobs = number(config.jobs if flags["jobs"] is None else flags["jobs"], "jobs", int, 1)
    wait = number(config.wait if flags["wait"] is None else flags["wait"], "wait", float, 0)
    lock_wait = number(config.lock_wait if flags["lock_wait"] is None else flags["lock_wait"], "lock-wait", float, 0)
    dry_run, json = flags["dry_run"], flags["json"]
    workspace = workspace_at(flags["root"])
    selected = select_to_migrate(workspace, names, with_deps, changed_since)
    if flags["on"] not in ("local", "kubernetes"):
        raise ConfigError(f"--on {flags['on']!r}: local or kubernetes")
    if flags["on"] == "kubernetes":  # the cluster reaches the databases; each service's own image migrates it
        from migratekit.integrations import k8s

        run = functools.partial(k8s.run, workspace, selected, flags["image_template"], flags["namespace"])
    else:
        services = [workspace.services[n] for n in selected]
        urls = workspace_urls(workspace, services, create=not dry_run, notify=_to_stderr, embedded=flags["embedded"])
        options = RunOptions(
            jobs=jobs,
            connect_wait=wait,
            lock_wait=lock_wait,
            allow_changed=flags["allow_changed"],
            out_of_order=flags["out_of_order"],
            dry_run=dry_run,
            create_databases=flags["create_databases"],
        )
        run = functools.partial(run_all, workspace, selected, urls, options, flags["fail_fast"])
    started = time.monotonic()
    with interrupts.handling(), _progress(enabled=not json) as progress:
        results = run(progress)
    elapsed = time.monotonic() - started
    if json:
        print(render.as_json({"dry_run": dry_run, "services": results}))
    else:
        out = render.console()
        out.print(render.results_table(results, title=f"{title} (dry run)" if dry_run else title))
        for line in render.result_details(results):
            out.print(line)
        if not results:
            out.print("no service selected" + (f" (nothing changed since {changed_since})" if changed_since else ""))
        else:
            out.print(render.totals_text(results, elapsed, dry_run))
    if interrupts.signal_number():
        raise Exit(code=128 + (interrupts.signal_number() or 0))
    if not all(r.ok for r in results):
        raise Exit(code=1)


@task(
    help={
        **MIGRATE_HELP,
        "changed_since": "only services whose migrations changed since this git ref, "
        "plus the services that depend on them",
    }
)
@user_errors
@with_flags(MIGRATE_FLAGS)
def migrate_all(c: Context, changed_since: str | None = None, **flags: Any) -> None:
    """Migrate every service database in dependency order, independent ones in parallel."""
    _migrate(c, "migrate-all", None, False, changed_since, **flags)


@task(
    help={
        **MIGRATE_HELP,
        "service": "the service to migrate",
        "with_deps": "also migrate the services SERVICE depends on, first",
    }
)
@user_errors
@with_flags(MIGRATE_FLAGS)
def migrate(c: Context, service: str, with_deps: bool = False, **flags: Any) -> None:
    """Migrate one service's database (with --with-deps, what it depends on first)."""
    _migrate(c, f"migrate {service}", [service], with_deps, None, **flags)


@task(
    help={
        "service": "the service whose migrations to undo",
        "steps": "how many of the newest applied migrations to undo (default 1)",
        "to": "undo every applied migration after this version (it stays applied)",
        "dry_run": "say which migrations would be undone, and change nothing",
        "json": "print the result as JSON",
        "root": ROOT_HELP,
        "allow_changed": "run the down part of a file edited since it was applied, as it is now",
        "lock_wait": MIGRATE_HELP["lock_wait"],
    }
)
@user_errors
def rollback(
    c: Context,
    service: str,
    steps: str = "1",  # a string: Invoke would turn a bad value into a traceback; number() says which flag
    to: str | None = None,
    dry_run: bool = False,
    json: bool = False,
    root: str | None = None,
    allow_changed: bool = False,
    lock_wait: str | None = None,
) -> None:
    """Undo SERVICE's newest migrations with their down parts (updown, dbmate, goose, Flyway's U), newest first."""
    from migratekit.database.rollback import rollback_service
    from migratekit.database.urls import existing_url

    workspace = workspace_at(root)
    chosen = workspace.get(service)
    url = existing_url(workspace, service, "nothing to roll back")
    migrations = chosen.load_migrations()
    steps_ = None if to else number(steps, "steps", int, 1)
    waited = number(c.config.migratekit.lock_wait if lock_wait is None else lock_wait, "lock-wait", float, 0)
    with interrupts.handling():
        run = RunOptions(dry_run=dry_run, allow_changed=allow_changed, lock_wait=waited)
        result = rollback_service(service, url, migrations, chosen.settings, run, steps_, to)
    result = result.located(relative(workspace.root, chosen.migrations_dir))
    if json:
        print(render.as_json(render.rollback_data(result)))
    else:
        out = render.console()
        for part in render.rollback_text(result, dry_run):
            out.print(part)
    if interrupts.signal_number():
        raise Exit(code=128 + (interrupts.signal_number() or 0))
    if not result.ok:
        raise Exit(code=1)
