"""The Invoke collection: each task parses flags, calls the library, renders the result.

Another monorepo adopts migratekit with a tasks.py of its own:

    from migratekit.tasks import ns
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any

from invoke import Collection, Context, Exit, task

from migratekit import interrupts
from migratekit.cli import render
from migratekit.cli.adoption import adopt, baseline, forget, status
from migratekit.cli.check import audit, rules
from migratekit.cli.flags import MIGRATE_FLAGS, MIGRATE_HELP, ROOT_HELP, number, user_errors, with_flags, workspace_at
from migratekit.cli.platform import ci_workflow, db_down, db_up, db_url, k8s_render
from migratekit.errors import ConfigError
from migratekit.model.inventory import inventory
from migratekit.model.selection import select
from migratekit.model.settings import RUN_DEFAULTS, RunOptions

# Each task imports what only it needs (psycopg, the audit rules) in its body: every
# `invoke` call loads this module, and `invoke migrate-all` on an up-to-date monorepo
# should take well under a second.


@task(help={"root": ROOT_HELP, "json": "print JSON instead of a table"})
@user_errors
def services(c: Context, root: str | None = None, json: bool = False) -> None:
    """List services: language, dependencies, migrations, newest version, database source."""
    workspace = workspace_at(root)
    workspace.require_services()
    rows = inventory(workspace)
    if json:
        print(render.as_json({"root": workspace.root, "services": rows, "undeclared": workspace.undeclared}))
        return
    render.console().print(render.services_table(rows, workspace.undeclared))


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
    from migratekit.database.urls import connection_urls

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
        urls = connection_urls(workspace.root, services, create=not dry_run, notify=_to_stderr)
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
    with interrupts.handling(), _progress(enabled=not json) as progress:
        results = run(progress)
    if json:
        print(render.as_json({"dry_run": dry_run, "services": results}))
    else:
        out = render.console()
        out.print(render.results_table(results, title=f"{title} (dry run)" if dry_run else title))
        for line in render.result_details(results):
            out.print(line)
        if not results:
            out.print("no service selected" + (f" (nothing changed since {changed_since})" if changed_since else ""))
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
    }
)
@user_errors
def rollback(
    c: Context,
    service: str,
    steps: int = 1,
    to: str | None = None,
    dry_run: bool = False,
    json: bool = False,
    root: str | None = None,
) -> None:
    """Undo SERVICE's newest migrations with their down parts (updown, dbmate, goose), newest first."""
    from migratekit.database.rollback import rollback_service
    from migratekit.database.urls import existing_url

    workspace = workspace_at(root)
    chosen = workspace.get(service)
    url = existing_url(workspace.root, chosen, "nothing to roll back")
    migrations = chosen.load_migrations()
    steps_ = None if to else number(steps, "steps", int, 1)
    with interrupts.handling():
        result = rollback_service(service, url, migrations, chosen.settings, RunOptions(dry_run=dry_run), steps_, to)
    if json:
        print(render.as_json(result))
    else:
        out = render.console()
        for part in render.rollback_text(result, dry_run):
            out.print(part)
    if not result.ok:
        raise Exit(code=1)


@task(
    help={
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
    port: int = 3000,
    format: str = "seed",
) -> None:
    """Create services/NAME in the seed's shape (migrations, runner, Dockerfile, k8s) and declare it."""
    from migratekit.scaffold import new_service as scaffold

    workspace = workspace_at(root)
    deps = tuple(d.strip() for d in depends_on.split(",") if d.strip())
    created = scaffold(workspace, name, lang, deps, int(port), fmt=format)
    out = render.console()
    out.print(f"created {created.path.relative_to(workspace.root)} ({lang}), declared in workspace.yaml:")
    for relative in created.files:
        out.print(f"  {relative}")
    out.print(f"next: invoke audit --service {name}; invoke migrate {name}")


@task(help={"update": "add the services workspace.yaml lacks, keeping its comments and order", "root": ROOT_HELP})
@user_errors
def init(c: Context, update: bool = False, root: str | None = None) -> None:
    """Write workspace.yaml declaring every service found, with what can be detected (format, tracking table)."""
    from migratekit.scaffold.workspace_yaml import init_workspace

    done = init_workspace(workspace_at(root), update)
    if done.layout is not None:
        found = f"services_dir: {done.layout.services_dir}, migrations: {done.layout.migrations}"
        others = f"; not declared, another shape: {', '.join(done.layout.others)}" if done.layout.others else ""
        print(f"{done.path.name}: no service in a known place; the migrations directories say {found}{others}")
    for name in done.mixed:
        print(f"{done.path.name}: {name}'s files mix formats: declared the most common; invoke audit names the rest")
    print(f"{done.path.name}: declared {', '.join(done.added) or 'nothing new'}; now fill in each depends_on")


@task(help={"root": ROOT_HELP})
@user_errors
def new_migration(c: Context, service: str, description: str, root: str | None = None) -> None:
    """Write SERVICE's next numbered migration (NNN_description.sql) with the seed's header."""
    from migratekit.scaffold import new_migration as scaffold

    workspace = workspace_at(root)
    created = scaffold(workspace, service, description)
    print(created.path.relative_to(workspace.root))


@task(
    help={
        "service": "verify only this service (default: all)",
        "root": ROOT_HELP,
        "json": "print the results as JSON",
        "image": "also build the service image (Docker) and compare the migrations inside with the repository's",
    }
)
@user_errors
def verify(
    c: Context, service: str | None = None, root: str | None = None, json: bool = False, image: bool = False
) -> None:
    """Prove idempotency: apply every migration on a throwaway database, run each again, compare schemas."""
    from migratekit.database.scratch import scratch_session
    from migratekit.database.verify import verify_image, verify_service

    workspace = workspace_at(root)
    names = select(workspace, [service] if service else None)
    with interrupts.handling(raise_now=True), scratch_session(workspace.root) as server:
        results = [verify_service(workspace, name, server) for name in names]
    images = [verify_image(workspace, name) for name in names] if image else []
    if json:
        print(render.as_json({"scratch": server.origin, "services": results, "images": images}))
    else:
        out = render.console()
        for line in render.verify_text(results, images, server.origin):
            out.print(line)
    if not all(r.ok for r in results) or any(i.problems for i in images):
        raise Exit(code=1)


@task(
    help={
        "root": ROOT_HELP,
        "service": "only this service",
        "json": "print the report as JSON",
        "schema": "also replay each database's applied migrations into a throwaway database and compare schemas",
        "envs": "comma-separated environments (declared under environments: in workspace.yaml): a version matrix",
    }
)
@user_errors
def drift(
    c: Context,
    root: str | None = None,
    service: str | None = None,
    json: bool = False,
    schema: bool = False,
    envs: str = "",
) -> None:
    """Report what differs between migration files, databases and services; changes nothing."""
    import os

    from migratekit.checks.run import across_services
    from migratekit.database.drift import drift as database_drift
    from migratekit.database.drift import environment_matrix
    from migratekit.database.scratch import scratch_session
    from migratekit.database.urls import connection_urls

    workspace = workspace_at(root)
    only = select(workspace, [service]) if service else None
    if envs:
        matrix = environment_matrix(workspace, [e.strip() for e in envs.split(",") if e.strip()], os.environ)
        if json:
            print(render.as_json(matrix))
        else:
            render.console().print(render.matrix_table(matrix))
        return
    urls = connection_urls(
        workspace.root, workspace.services.values(), create=False, notify=render.console(stderr=True).print
    )
    with (
        interrupts.handling(raise_now=True),
        scratch_session(workspace.root) if schema else contextlib.nullcontext() as server,
    ):
        results = database_drift(workspace, only, urls, server)
    across = [f for f in across_services(workspace) if not only or f.service in only]
    if json:
        print(render.as_json({"services": results, "across_services": across}))
    else:
        out = render.console()
        out.print(render.drift_table(results))
        for line in render.drift_details(results, across):
            out.print(line)
    if any(r.drifted for r in results):
        raise Exit(code=1)


ns = Collection(
    services,
    migrate_all,
    migrate,
    rollback,
    audit,
    rules,
    verify,
    drift,
    init,
    new_service,
    new_migration,
    db_up,
    db_down,
    db_url,
    ci_workflow,
    k8s_render,
    status,
    forget,
    adopt,
    baseline,
)
ns.configure(
    {"migratekit": {"jobs": RUN_DEFAULTS.jobs, "wait": RUN_DEFAULTS.connect_wait, "lock_wait": RUN_DEFAULTS.lock_wait}}
)
