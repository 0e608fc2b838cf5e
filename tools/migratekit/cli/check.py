"""The Invoke tasks that check without changing anything: audit, rules, verify, drift (part of `tasks.ns`)."""

from __future__ import annotations

import contextlib

from invoke import Context, Exit, task

from migratekit import interrupts
from migratekit.cli import render
from migratekit.cli.flags import ROOT_HELP, user_errors, workspace_at
from migratekit.model.selection import select


@task(
    help={
        "root": ROOT_HELP,
        "service": "audit only this service",
        "changed_since": "audit only services changed since this git ref, and check their history against it",
        "json": "print findings as JSON",
        "sarif": "print SARIF 2.1.0 (for code scanning)",
        "github": "print GitHub Actions annotations",
        "no_cache": "parse every file again instead of reusing .migratekit/cache (for unchanged files)",
    }
)
@user_errors
def audit(
    c: Context,
    root: str | None = None,
    service: str | None = None,
    changed_since: str | None = None,
    json: bool = False,
    sarif: bool = False,
    github: bool = False,
    no_cache: bool = False,
) -> None:
    """Check every service against the pattern: files, idempotent and safe SQL, runner, image, startup."""
    from migratekit.checks.rule import all_rules
    from migratekit.checks.run import audit as run_audit

    workspace = workspace_at(root)
    result = run_audit(workspace, [service] if service else None, changed_since, use_cache=not no_cache)
    if json:
        print(
            render.as_json(
                {
                    "root": result.root,
                    "services": result.services,
                    "errors": result.errors,
                    "warnings": result.warnings,
                    "findings": result.findings,
                }
            )
        )
    elif sarif:
        print(render.as_json(render.sarif(result, all_rules())))
    elif github:
        for line in render.github_annotations(result.findings):
            print(line)
    else:
        out = render.console()
        for text in render.audit_text(result):
            out.print(text)
    if result.errors:
        raise Exit(code=1)


@task(help={"code": "show one rule's documentation (why, a bad and a good example)", "json": "print JSON"})
@user_errors
def rules(c: Context, code: str | None = None, json: bool = False) -> None:
    """List every audit rule with its code, severity and summary."""
    from migratekit.checks.rule import all_rules

    selected = [r for r in all_rules() if code is None or r.code == code.upper()]
    if code and not selected:
        raise Exit(f"migratekit: no rule {code}; `invoke rules` lists them", code=2)
    if json:
        print(render.as_json(selected))
    elif code:
        render.console().print(render.rule_text(selected[0]))
    else:
        render.console().print(render.rules_table(selected))


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
    notify = render.console(stderr=True).print
    services = workspace.services.values()
    urls = connection_urls(workspace.root, services, create=False, notify=notify, embedded_allowed=workspace.embedded)
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
