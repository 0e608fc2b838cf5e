"""MK6xx: drift across services, from the files alone: do the services still follow one pattern?

Reported by `invoke drift` beside each database's state; no database is needed.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter, defaultdict
from pathlib import Path

from migratekit.audit.dockerfile import analyse
from migratekit.audit.wiring import OWN_RUNNER
from migratekit.findings import Finding, make_rule
from migratekit.lint.tree import strings
from migratekit.migration import SEED_COLUMNS, load_migrations, tracking_table_statement
from migratekit.workspace import Workspace

TEMPLATE_RUNNER = (
    Path(__file__).parents[1] / "scaffold" / "templates" / "typescript" / "src" / "database" / "migrate.ts"
)

RUNNER_DIVERGED = make_rule(
    "MK601",
    "warning",
    "bring the copy back to the template's runner, or make the change there for everyone",
    """A runner copied from the template has diverged.

    Copies that drift apart fix a bug in one service and keep it in the others.
    Bad: services/battles/src/database/migrate.ts without the advisory lock the others take
    Good: every copy identical to the template's runner
    """,
)
FUNCTION_DIVERGED = make_rule(
    "MK602",
    "warning",
    "give the function one body everywhere (or different names for different behaviour)",
    """The same shared function has different bodies in different services.

    Bad: update_updated_at_column() sets updated_at in one service and also bumps a version in another
    Good: one body, copied verbatim
    """,
)
BASE_IMAGE_DIVERGED = make_rule(
    "MK603",
    "warning",
    "move every service to the same base image and runtime version",
    """Services run the same runtime at different versions.

    Bad: FROM node:20-alpine in one Dockerfile, FROM node:22-alpine in another
    Good: FROM node:22-alpine everywhere
    """,
)
TRACKING_DIVERGED = make_rule(
    "MK604",
    "warning",
    "use the seed's schema_migrations shape and name (schema-qualify it when databases are shared)",
    """A tracking table with another name or shape.

    Tools and dashboards that read schema_migrations miss this service.
    Bad: CREATE TABLE IF NOT EXISTS migrations_log (id serial, name text)
    Good: CREATE TABLE IF NOT EXISTS schema_migrations (version TEXT PRIMARY KEY, applied_at …, checksum …,
          execution_time_ms …)
    """,
)


def cross_service_drift(workspace: Workspace) -> list[Finding]:
    root = workspace.root
    findings: list[Finding] = []

    def rel(path: Path) -> str:
        return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)

    # Runners: every TypeScript runner against the template the services were made from.
    template = TEMPLATE_RUNNER.read_text() if TEMPLATE_RUNNER.is_file() else None
    for name, service in workspace.services.items():
        for path in sorted(service.path.glob("src/**/migrate.ts")):
            text = path.read_text(errors="replace")
            if template is None or not OWN_RUNNER.search(text) or text == template:
                continue
            diff = list(difflib.unified_diff(template.splitlines(), text.splitlines(), lineterm="", n=0))
            added = sum(1 for d in diff if d.startswith("+") and not d.startswith("+++"))
            removed = sum(1 for d in diff if d.startswith("-") and not d.startswith("---"))
            findings.append(
                RUNNER_DIVERGED.finding(
                    name, rel(path), None, f"differs from the template's runner: +{added} -{removed} lines"
                )
            )

    # Shared functions: the last body each service gives a function name.
    bodies: dict[str, dict[str, tuple[str, str]]] = defaultdict(dict)  # function -> service -> (body, file)
    for name, service in workspace.services.items():
        for migration in load_migrations(service.migrations_dir):
            if migration.syntax_error is not None:
                continue
            for statement in migration.statements:
                if statement.kind == "CreateFunctionStmt":
                    function = strings(statement.node.get("funcname"))[-1]
                    body = " ".join(re.sub(r"\s+", " ", statement.text).split())
                    bodies[function][name] = (body, rel(migration.path))  # the last definition wins
    for function, by_service in sorted(bodies.items()):
        variants = Counter(body for body, _ in by_service.values())
        if len(variants) > 1:
            usual = variants.most_common(1)[0][0]
            for name, (body, where) in sorted(by_service.items()):
                if body != usual:
                    others = sorted(n for n, (b, _) in by_service.items() if b == usual)
                    findings.append(
                        FUNCTION_DIVERGED.finding(
                            name, where, None, f"{function}() differs from its body in {', '.join(others)}"
                        )
                    )

    # Base images: the final stage's image, by runtime (the part before the tag).
    images: dict[str, dict[str, str]] = defaultdict(dict)
    for name, service in workspace.services.items():
        dockerfile = service.path / "Dockerfile"
        if dockerfile.is_file():
            image = analyse(dockerfile, service.path, root).final.image
            runtime, _, tag = image.partition(":")
            images[runtime][name] = tag or "latest"
    for runtime, tags in sorted(images.items()):
        counts = Counter(tags.values())
        if len(counts) > 1:
            usual = counts.most_common(1)[0][0]
            for name, tag in sorted(tags.items()):
                if tag != usual:
                    findings.append(
                        BASE_IMAGE_DIVERGED.finding(
                            name,
                            rel(workspace.services[name].path / "Dockerfile"),
                            None,
                            f"{runtime}:{tag}, while {counts[usual]} other service(s) use {runtime}:{usual}",
                        )
                    )

    # Tracking tables: the seed's name (schema-qualified is fine) and shape.
    for name, service in workspace.services.items():
        if service.tracking_table.rsplit(".", 1)[-1] != "schema_migrations":
            findings.append(
                TRACKING_DIVERGED.finding(
                    name,
                    rel(workspace.config_path) if workspace.config_path else None,
                    None,
                    f"tracking table {service.tracking_table}, not schema_migrations",
                )
            )
        found = tracking_table_statement(load_migrations(service.migrations_dir), service.tracking_table)
        init, create = found if found is not None else (None, None)
        if init is None or create is None:
            continue  # no 001_init, or one without the table: MK111 reports that
        columns = {e["ColumnDef"]["colname"] for e in create.node.get("tableElts", []) if "ColumnDef" in e}
        if columns != SEED_COLUMNS:
            findings.append(
                TRACKING_DIVERGED.finding(
                    name,
                    rel(init.path),
                    create.line,
                    f"{service.tracking_table} has columns {', '.join(sorted(columns))}, not the seed's",
                )
            )
    return findings
