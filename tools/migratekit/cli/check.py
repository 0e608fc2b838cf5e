"""The Invoke tasks that check without changing anything: audit, rules, verify, drift (part of `tasks.ns`)."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from invoke import Context, Exit, task

from migratekit.cli import render
from migratekit.cli.flags import ROOT_HELP, user_errors, workspace_at
from migratekit.errors import ConfigError
from migratekit.files import made, resolved, staged
from migratekit.model.selection import select
from migratekit.model.workspace import STATE_DIR

if TYPE_CHECKING:
    from migratekit.checks.run import AuditReport
    from migratekit.model.workspace import Workspace


@task(
    help={
        "root": ROOT_HELP,
        "service": "audit only this service",
        "changed_since": "audit only services changed since this git ref, and check their history against it",
        "json": "print findings as JSON (the same as --format json)",
        "sarif": "print SARIF 2.1.0, for code scanning (the same as --format sarif)",
        "github": "print GitHub Actions annotations (the same as --format github)",
        "format": "text (default), json, sarif or github",
        "output": "write it to this file instead of printing it (say where on stderr)",
        "no_cache": "parse every file again instead of reusing .migratekit/cache (for unchanged files)",
        "baseline": "list only findings this baseline file does not accept (default: workspace.yaml's baseline)",
        "write_baseline": "accept today's findings: write them to this file (commit it; set baseline: in "
        "workspace.yaml) and exit 0",
        "all_findings": "list every finding, those the baseline accepts too",
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
    format: str | None = None,
    output: str | None = None,
    baseline: str | None = None,
    write_baseline: str | None = None,
    all_findings: bool = False,
) -> None:
    """Check every service against the pattern: files, idempotent and safe SQL, runner, image, startup."""
    from migratekit.checks.run import audit as run_audit

    _no_empty_values(
        {
            "--root": root,
            "--service": service,
            "--changed-since": changed_since,
            "--format": format,
            "--output": output,
            "--baseline": baseline,
            "--write-baseline": write_baseline,
        }
    )
    chosen = {name for name, on in (("json", json), ("sarif", sarif), ("github", github)) if on} | (
        {format} if format is not None else set()
    )
    if len(chosen) > 1:
        shown = ", ".join(sorted(chosen))
        raise ConfigError(f"--json, --sarif, --github and --format each choose the output: give one, not {shown}")
    shape = chosen.pop() if chosen else "text"
    if shape not in AUDIT_FORMATS:
        raise ConfigError(f"--format {shape!r}: one of {', '.join(AUDIT_FORMATS)}")
    workspace = workspace_at(root)
    if write_baseline is not None:
        given = {"--output": output is not None, "--baseline": baseline is not None, "--all-findings": all_findings}
        given |= {"--json": json, "--sarif": sarif, "--github": github, "--format": format is not None}
        for flag in (flag for flag, on in given.items() if on):
            raise ConfigError(
                f"--write-baseline and {flag}: --write-baseline writes the baseline and no report; drop {flag} "
                "(and audit with it once the baseline is written)"
            )
        _write_baseline(workspace, write_baseline, [service] if service else None, changed_since, not no_cache)
        return
    if baseline is not None and all_findings:
        raise ConfigError("--baseline and --all-findings contradict each other: give one")
    if baseline is not None:
        from migratekit.checks.baseline import inside

        inside(Path(baseline), workspace.root, "--baseline", baseline)
    accepted = None if all_findings else (Path(baseline) if baseline is not None else workspace.baseline)
    reads = [workspace.config_path, workspace.baseline, Path(baseline) if baseline is not None else None]
    target = None if output is None else _output_target(output, workspace.root, [p for p in reads if p])
    result = run_audit(
        workspace, [service] if service else None, changed_since, use_cache=not no_cache, baseline=accepted
    )
    if output is None and shape == "text":
        out = render.console()
        for text in render.audit_text(result):
            out.print(text)
    elif output is None:
        # no stdout at all (`>&-`): what is written goes nowhere, as print() drops it, and the exit code still says
        nowhere = sys.stdout is None
        with open(os.devnull, "w", encoding="utf-8") if nowhere else contextlib.nullcontext(sys.stdout) as printed:
            _audit_as(shape, result, printed)
    else:
        assert target is not None
        _write_output(target, output, shape, result)
        by = f"; {result.accepted} accepted by the baseline {result.baseline}" if result.baseline else ""
        print(f"wrote {output}: {result.errors} error(s), {result.warnings} warning(s){by}", file=sys.stderr)
    if result.errors:
        raise Exit(code=1)


AUDIT_FORMATS = ("text", "json", "sarif", "github")


# What each of the audit's flags that take a value wants, said when it is given empty.
_WANTED = {
    "--root": "name the monorepo's root directory (or leave the flag out: it is found upwards from here)",
    "--service": "name a service (or leave the flag out to audit every one)",
    "--changed-since": "name a git ref: a branch, tag or commit",
    "--format": f"one of {', '.join(AUDIT_FORMATS)}",
    "--output": "name a file",
    "--baseline": "name the baseline file",
    "--write-baseline": "name a file",
}


def _no_empty_values(values: dict[str, str | None]) -> None:
    """A flag given an empty value is exit 2, naming it: `--service "$SERVICE"` with the variable unset audited
    every service, `--changed-since ''` the whole workspace, `--format ''` printed text, all without a word."""
    for flag, value in values.items():
        if value is not None and not value.strip():
            raise ConfigError(f"{flag} {value!r}: {_WANTED[flag]}")


def _write_baseline(
    workspace: Workspace, given: str, only: list[str] | None, changed_since: str | None, use_cache: bool
) -> None:
    """Record today's findings (of the audited services; the others' entries stay) and say how many."""
    from migratekit.checks import baseline as baselines
    from migratekit.checks.run import audit as run_audit

    target = Path(given)
    keep = baselines.writable(target, workspace.root, given)
    result = run_audit(workspace, only, changed_since, use_cache=use_cache)
    baselines.write(target, baselines.document(result.findings, keep, result.services), given)
    print(
        f"wrote {target}: {len(result.findings)} finding(s) of {len(result.services)} service(s) accepted; "
        "later audits list only new ones",
        file=sys.stderr,
    )
    if workspace.baseline is None or workspace.baseline != target.resolve():
        print(
            f"  to use it in every audit (CI, pre-commit too): add `baseline: {target}` to workspace.yaml",
            file=sys.stderr,
        )


def _output_target(given: str, root: Path, reads: list[Path]) -> Path:
    """Where --output will write, checked before the audit runs, so that a mistake is exit 2 with nothing written:
    a file (or a device, a FIFO) in a directory that is one or can be made; never a directory, a file this audit
    reads (workspace.yaml, a baseline: the report was written over it, and every later audit was exit 2), nor a
    place in .migratekit/cache, whose files audits remove."""
    path = Path(given)
    if path.is_dir():
        raise ConfigError(f"--output {given}: a directory; name a file")
    real = resolved(path)
    if real is None:
        raise ConfigError(f"--output {given}: a link that leads back to itself; name a file")
    for read in reads:
        if real == read.resolve():
            raise ConfigError(f"--output {given}: the audit reads this file ({read.name}); name another file")
    if real.is_relative_to((root / STATE_DIR / "cache").resolve()):
        raise ConfigError(
            f"--output {given}: inside {STATE_DIR}/cache, whose files audits remove; name a file elsewhere"
        )
    ancestor = next((parent for parent in path.parents if parent.exists()), Path("."))
    if not ancestor.is_dir():
        raise ConfigError(f"--output {given}: cannot be written: {ancestor} is not a directory")
    if not os.access(ancestor, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ConfigError(f"--output {given}: cannot be written: {path if path.exists() else ancestor} is read-only")
    return path


def _write_output(target: Path, given: str, shape: str, result: AuditReport) -> None:
    """The report written as it is made into a file beside the target, which then takes its place: an audit
    stopped part-way (a Ctrl-C, a full disk) leaves the report before as it was, never half of one. A device or a
    FIFO (/dev/stdout) is written as it is; a link, through; a file written again keeps its mode."""
    try:
        if target.exists() and not target.is_file():  # asked through its links: /dev/stdout is the pipe it leads to
            with target.open("w", encoding="utf-8", errors=render.UNENCODABLE) as out:
                _audit_as(shape, result, out)
            return
        # a pipe's link resolves to no file; a directory made for the report goes again when it cannot be written
        with made(target.parent), staged(target.resolve(), errors=render.UNENCODABLE) as out:
            _audit_as(shape, result, out)
    except OSError as error:
        reason = error.strerror or str(error)
        raise ConfigError(f"--output {given}: cannot be written ({reason}); the file there is as it was") from None


def _audit_as(shape: str, result: AuditReport, out: TextIO) -> None:
    """The audit in one of its machine formats, or as plain text (for a file: no colours, whole lines), written
    into `out` as it is made."""
    from migratekit.checks.rule import all_rules

    if shape == "json":
        fields = ("services", "errors", "warnings", "findings", "baseline", "accepted", "fixed")
        render.write_json({name: getattr(result, name) for name in fields}, out)  # paths repository-relative
        out.write("\n")
    elif shape == "sarif":
        out.write(render.json_text(render.sarif(result, all_rules())) + "\n")
    elif shape == "github":
        for line in render.github_annotations(result.findings):
            out.write(line + "\n")
    else:
        from rich.console import Console

        plain = Console(file=out, width=render.OFF_TERMINAL_WIDTH, color_system=None, markup=False, highlight=False)
        for text in render.audit_text(result):
            plain.print(text)


@task(help={"code": "show one rule's documentation (why, a bad and a good example)", "json": "print JSON"})
@user_errors
def rules(c: Context, code: str | None = None, json: bool = False) -> None:
    """List every audit rule with its code, severity and summary."""
    from migratekit.checks.rule import all_rules

    selected = [r for r in all_rules() if code is None or r.code == code.upper()]
    if code and not selected:
        raise Exit(f"migratekit: no rule {code}; `invoke rules` lists them", code=2)
    if json:
        print(render.as_json({"rules": selected}))
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
    with scratch_session(workspace.root) as server:  # a Ctrl-C drops it: every task stops by exception (flags)
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
    from migratekit.database.urls import workspace_urls

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
    urls = workspace_urls(workspace, services, create=False, notify=notify)
    with scratch_session(workspace.root) if schema else contextlib.nullcontext() as server:
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
