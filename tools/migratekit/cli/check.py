"""The Invoke tasks of the audit: audit, rules (part of `tasks.ns`)."""

from __future__ import annotations

from invoke import Context, Exit, task

from migratekit.cli import render
from migratekit.cli.flags import ROOT_HELP, user_errors, workspace_at


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
