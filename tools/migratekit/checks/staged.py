"""The audit of a commit: the findings a set of staged files is answerable for (the pre-commit hooks).

A hook that prints every finding of a service beside the one staged file teaches people to skip it. squawk's
hook reports only the files it is given, and so does this one, with one exception. The wiring rules (MK4xx:
runner, image, startup) judge a service as a whole, from its Dockerfile, entrypoint, compose file,
package.json or sources. Their findings are the commit's business only when it stages one of those files:
the service's files outside its migrations directory, or a repository-level build or deploy file. The
workspace's findings baseline applies as in `invoke audit`: what it accepts is not listed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from migratekit.checks import baseline as baselines
from migratekit.checks.rule import Finding, Scope, rules_for
from migratekit.checks.run import AuditReport, audit
from migratekit.checks.wiring.deploy import COMPOSE, DEPLOY_DIRS
from migratekit.model.settings import WORKSPACE_FILE
from migratekit.model.workspace import Workspace, relative

# Repository-level files that decide how services are built and started (checks.wiring.deploy reads them)
BUILD_FILES = ("Dockerfile", "Makefile", "Procfile", "fly.toml")
BUILD_SUFFIXES = (".sh", ".bash", ".mk", ".dockerfile")


@dataclass(frozen=True)
class Staged:
    """The staged files, as the audit names paths, and which services they concern."""

    paths: frozenset[str]  # repository-relative, forward slashes
    services: tuple[str, ...]  # every service a staged file belongs to or that a staged build file may wire
    wired: frozenset[str]  # services whose wiring files are staged


def staged(workspace: Workspace, files: Sequence[str]) -> Staged:
    """Sort the files pre-commit passes (relative to the working directory) by service and kind."""
    paths = frozenset(relative(workspace.root, Path(f).resolve()) for f in files)
    owners: set[str] = set()
    wired: set[str] = set()
    shared = False
    for path in paths:
        owner = _owner(workspace, path)
        if owner is None:
            shared = shared or _build_file(path) or path == WORKSPACE_FILE
            continue
        owners.add(owner)
        migrations = relative(workspace.root, workspace.services[owner].migrations_dir.resolve())
        if not (path == migrations or path.startswith(migrations + "/")):
            wired.add(owner)
    if any(_build_file(p) for p in paths if _owner(workspace, p) is None):
        wired |= set(workspace.services)
    chosen = set(workspace.services) if shared else owners
    return Staged(paths, tuple(n for n in workspace.order() if n in chosen), frozenset(wired))


def _owner(workspace: Workspace, path: str) -> str | None:
    """The service whose directory holds `path` (the deepest, for nested services), or None."""
    best: tuple[int, str] | None = None
    for name, service in workspace.services.items():
        home = relative(workspace.root, service.path.resolve())
        if path == home or path.startswith(home + "/"):
            if best is None or len(home) > best[0]:
                best = (len(home), name)
    return best[1] if best else None


def _build_file(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    first = path.split("/", 1)[0]
    return (
        name in BUILD_FILES
        or name.startswith("Dockerfile.")
        or name.endswith(BUILD_SUFFIXES)
        or COMPOSE.match(name) is not None
        or ("/" in path and first in DEPLOY_DIRS)
    )


def concerns(finding: Finding, files: Staged) -> bool:
    """Whether the staged files answer for `finding`: it is in one of them, or it is wiring they touch."""
    if finding.path in files.paths:
        return True
    return finding.code in _wiring_codes() and finding.service in files.wired


def _wiring_codes() -> frozenset[str]:
    return frozenset(r.code for r in rules_for(Scope.WIRING))


def audit_staged(
    workspace: Workspace, files: Sequence[str], only_file_rules: bool = False, use_cache: bool = True
) -> AuditReport:
    """The audit of the services the staged `files` concern, keeping the findings they answer for.

    The baseline is applied to the kept findings only: a key is kept or dropped whole (the decision depends on
    its service, path and code), so its count matches; "fixed" is not reported, as the rest of the service
    was not looked at.
    """
    sorted_out = staged(workspace, files)
    if not sorted_out.services:
        return AuditReport(workspace.root, (), ())
    report = audit(workspace, list(sorted_out.services), use_cache=use_cache)
    codes = {r.code for r in rules_for(Scope.FILES)} if only_file_rules else None
    kept = tuple(f for f in report.findings if concerns(f, sorted_out) and (codes is None or f.code in codes))
    if workspace.baseline is None:
        return replace(report, findings=kept)
    shown = relative(workspace.root, workspace.baseline.resolve())
    filtered = baselines.apply(
        baselines.read(workspace.baseline, shown, workspace.baseline_declared), kept, report.services
    )
    return replace(report, findings=filtered.new, baseline=shown, accepted=len(kept) - len(filtered.new), fixed=0)
