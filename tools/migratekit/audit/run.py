"""`invoke audit`: every rule over every selected service, then the workspace, then the ignores."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from migratekit.audit import history, wiring, workspace_rules
from migratekit.changes import changed_services
from migratekit.findings import Finding, Rule
from migratekit.lint.engine import all_rules as lint_rules
from migratekit.lint.engine import lint_migrations
from migratekit.migration import load_migrations
from migratekit.workspace import Workspace


@dataclass(frozen=True)
class AuditReport:
    root: Path
    services: tuple[str, ...]
    findings: tuple[Finding, ...]
    changed_since: str | None = None

    @property
    def errors(self) -> int:
        return sum(f.severity == "error" for f in self.findings)

    @property
    def warnings(self) -> int:
        return sum(f.severity == "warning" for f in self.findings)


def every_rule() -> list[Rule]:
    """All rules, by code: what `invoke rules` lists and SARIF describes."""
    rules = [
        *lint_rules(),
        history.EDITED,
        history.DELETED,
        history.CLASH,
        *(r.rule for r in wiring.RULES),
        *(r.rule for r in workspace_rules.RULES),
        workspace_rules.STALE_IGNORE,
    ]
    return sorted(rules, key=lambda r: r.code)


def audit(
    workspace: Workspace,
    only: list[str] | None = None,
    changed_since: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> AuditReport:
    """Audit `only` these services (default all; with changed_since, those changed since the ref)."""
    env = os.environ if environ is None else environ
    selected = set(only or workspace.services)
    for name in selected:
        workspace.get(name)
    if changed_since:
        selected &= changed_services(workspace, changed_since)
    order = [name for name in workspace.order() if name in selected]
    found: list[Finding] = []
    for name in order:
        service = workspace.services[name]
        migrations = load_migrations(service.migrations_dir)
        found += lint_migrations(name, service.migrations_dir, migrations, workspace.root, service.tracking_table)
        found += wiring.audit_wiring(service, workspace.root)
    if changed_since:
        found += history.history_findings(workspace, [workspace.services[n] for n in order], changed_since)
    for r in workspace_rules.RULES:
        for service_name, path, line, message in r.check(workspace, env):
            if service_name is None or service_name in selected:
                found.append(r.rule.finding(service_name, path, line, message))

    kept, used = [], set()
    for finding in found:
        ignored = finding.service is not None and finding.code in workspace.services[finding.service].ignore
        if ignored:
            used.add((finding.service, finding.code))
        else:
            kept.append(finding)
    for service_name, path, line, message in workspace_rules.stale_service_ignores(workspace, used):
        if service_name in selected:
            kept.append(workspace_rules.STALE_IGNORE.finding(service_name, path, line, message))

    rank = {name: i for i, name in enumerate(workspace.order())}
    kept.sort(key=lambda f: (rank.get(f.service or "", -1), f.path or "", f.line or 0, f.code))
    return AuditReport(workspace.root, tuple(order), tuple(kept), changed_since)
