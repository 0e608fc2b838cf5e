"""`invoke audit`: every rule over every selected service, then the workspace, then the ignores."""

from __future__ import annotations

import gc
import multiprocessing
import os
from collections.abc import Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from migratekit.checks import cache
from migratekit.checks.lint import lint_migrations
from migratekit.checks.rule import Finding, Scope, Severity, rules_for
from migratekit.checks.rules import mk4_wiring, mk5_workspace, mk12_history
from migratekit.checks.wiring import deploy
from migratekit.model.selection import select
from migratekit.model.workspace import Workspace, relative


@dataclass(frozen=True)
class AuditReport:
    root: Path
    services: tuple[str, ...]
    findings: tuple[Finding, ...]
    changed_since: str | None = None

    @property
    def errors(self) -> int:
        return sum(f.severity is Severity.ERROR for f in self.findings)

    @property
    def warnings(self) -> int:
        return sum(f.severity is Severity.WARNING for f in self.findings)


def audit(
    workspace: Workspace,
    only: list[str] | None = None,
    changed_since: str | None = None,
    environ: Mapping[str, str] | None = None,
    use_cache: bool = True,
) -> AuditReport:
    """Audit `only` these services (default all; with changed_since, those changed since the ref)."""
    env = os.environ if environ is None else environ
    order = select(workspace, only, changed_since=changed_since)
    selected = set(order)
    repo = deploy.scan(workspace.root)
    with _collector_paused():
        found: list[Finding] = [f for each in _map_services(workspace, order, use_cache, repo) for f in each]
    if changed_since:
        found += mk12_history.history_findings(workspace, [workspace.services[n] for n in order], changed_since)
    for workspace_rule in rules_for(Scope.WORKSPACE):
        for service_name, path, line, message in workspace_rule.check(workspace, env):
            if service_name is None or service_name in selected:
                found.append(workspace_rule.finding(service_name, path, line, message))

    kept, used = [], set()
    for finding in found:
        ignored = finding.service is not None and finding.code in workspace.services[finding.service].ignore
        if ignored:
            used.add((finding.service, finding.code))
        else:
            kept.append(finding)
    stale = [s for s in mk5_workspace.stale_service_ignores(workspace, used) if s.service in selected]
    if stale:
        kept += [r.finding(*hit) for r in rules_for(Scope.IGNORES) for hit in r.check(stale)]

    rank = {name: i for i, name in enumerate(workspace.order())}
    kept.sort(key=lambda f: (rank.get(f.service or "", -1), f.path or "", f.line or 0, f.code))
    return AuditReport(workspace.root, tuple(order), tuple(kept), changed_since)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Parse trees are plain dicts and lists, never cycles, yet each full collection walked every tree built
    so far, a large part of a cold audit of many files. Forked workers inherit the pause."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


PARALLEL_FROM = 16  # services; below this, starting worker processes costs more than it saves


def audit_service(
    workspace: Workspace, name: str, use_cache: bool = True, repo: deploy.Repository | None = None
) -> list[Finding]:
    """Lint and wiring findings of one service (independent of every other service)."""
    service = workspace.services[name]
    where = relative(workspace.root, service.migrations_dir)
    quick = cache.stat_key(service, where) if use_cache else None
    findings = cache.load(workspace.root, quick) if quick else None
    if findings is None:
        migrations = service.load_migrations(mixed=True)  # MK117 names a mix
        entry = cache.key(service, migrations, where) if use_cache else None
        findings = cache.load(workspace.root, entry) if entry else None
        if findings is None:
            findings = lint_migrations(
                name,
                service.migrations_dir,
                migrations,
                workspace.root,
                service.settings.tracking_table,
                service.settings.gaps == "allow",
            )
        for stored in (entry, quick):
            if stored:
                cache.store(workspace.root, stored, findings)
    return findings + mk4_wiring.audit_wiring(service, workspace.root, repo)


def _map_services(
    workspace: Workspace, names: list[str], use_cache: bool, repo: deploy.Repository
) -> list[list[Finding]]:
    """Audit services on every core: parsing SQL is CPU-bound and services are independent."""
    workers = min(os.cpu_count() or 1, len(names) // PARALLEL_FROM + 1)
    if workers < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return [audit_service(workspace, name, use_cache, repo) for name in names]
    chunk = max(1, len(names) // (workers * 4))
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        arguments = [workspace] * len(names), names, [use_cache] * len(names), [repo] * len(names)
        return list(pool.map(audit_service, *arguments, chunksize=chunk))
