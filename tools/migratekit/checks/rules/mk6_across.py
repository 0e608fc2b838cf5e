"""MK6xx: drift across services, from the files alone: do the services still follow one pattern?

Reported by `invoke drift` beside each database's state; no database is needed.
"""

from __future__ import annotations

import difflib
import json
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from migratekit.checks.rule import Scope
from migratekit.checks.rule import rule as declare_rule
from migratekit.checks.sql.tree import strings
from migratekit.model.contract import SEED_COLUMNS, SEED_TABLE
from migratekit.model.dockerfile import analyse
from migratekit.model.migration import tracking_table_statement
from migratekit.model.runner_table import runner_table
from migratekit.model.workspace import Workspace, relative

TEMPLATES = Path(__file__).parents[2] / "scaffold" / "templates"


@dataclass(frozen=True)
class TemplateRunner:
    """One of the runners migratekit's templates ship: where it is, which of a service's files may be copies,
    and how a copy names its functions."""

    path: Path
    sources: Callable[[Path], Iterable[Path]]  # a service's files that may be a copy of it
    definitions: re.Pattern[str]  # the names a source defines, to tell a copy from a runner written by hand


def _python_sources(service: Path) -> Iterator[Path]:
    for path in sorted(service.rglob("*.py")):
        if not {".venv", "venv", "node_modules", "__pycache__", "tests", "test", "build", "dist"} & set(path.parts):
            yield path


TEMPLATE_RUNNERS = (
    TemplateRunner(
        TEMPLATES / "typescript" / "src" / "database" / "migrate.ts",
        lambda service: (p for p in sorted(service.glob("src/**/*.ts")) if "node_modules" not in p.parts),
        re.compile(r"\bfunction\s+([A-Za-z_$][\w$]*)"),
    ),
    TemplateRunner(
        TEMPLATES / "python" / "src" / "{{package}}" / "migrate.py.tmpl",
        _python_sources,
        re.compile(r"^\s*(?:async\s+)?(?:def|class)\s+(\w+)", re.MULTILINE),
    ),
)
PLACEHOLDER = re.compile(r"\{\{\w+\}\}")  # {{package}}: what new-service fills in

rule = partial(declare_rule, scope=Scope.ACROSS)
AcrossHit = tuple[str, str | None, int | None, str]  # (service, path, line, message)


@rule("MK601", "warning", "bring the copy back to the template's runner, or make the change there for everyone")
def runner_diverged(ws: Workspace) -> Iterable[AcrossHit]:
    """A runner copied from the template has diverged.

    Copies that drift apart fix a bug in one service and keep it in the others. A copy is a source
    that defines most of a template runner's own functions (TypeScript's ensureMigrationsTable,
    getAppliedMigrations, applyMigration...; Python's run_migrations, _lock, _apply...) and holds most of its
    lines, whatever its name: a runner written by hand is no copy, whatever its functions are called. The
    template's placeholders ({{package}}) match whatever the copy's service put there.
    Bad: services/battles/src/database/migrate.ts without the advisory lock the others take
    Good: every copy identical to the template's runner
    """
    for runner in TEMPLATE_RUNNERS:
        if not runner.path.is_file():
            continue
        template = runner.path.read_text(encoding="utf-8")
        for name, service in ws.services.items():
            for path in runner.sources(service.path):
                text = path.read_text(encoding="utf-8", errors="replace")
                lines = filled_in(template.splitlines(), text.splitlines())
                if lines == template.splitlines() or not copied_from(template, text, runner.definitions, lines):
                    continue
                diff = list(difflib.unified_diff(template.splitlines(), lines, lineterm="", n=0))
                added = sum(1 for d in diff if d.startswith("+") and not d.startswith("+++"))
                removed = sum(1 for d in diff if d.startswith("-") and not d.startswith("---"))
                message = f"differs from the template's runner: +{added} -{removed} lines"
                yield name, relative(ws.root, path), None, message


def copied_from(template: str, text: str, definitions: re.Pattern[str], lines: list[str]) -> bool:
    """The file defines at least two thirds of the template's functions, by their names, and holds at least half
    of the template's lines (`lines`: the file's, placeholders filled in): loadMigrations or applyMigration are
    names a runner written by hand picks too, but its lines are its own."""
    functions = set(definitions.findall(template))
    shared = functions & set(definitions.findall(text))
    if len(functions) < 3 or 3 * len(shared) < 2 * len(functions):
        return False
    wanted = {line.strip() for line in template.splitlines() if len(line.strip()) > 3}  # not `}` or `});`
    return 2 * len(wanted & {line.strip() for line in lines}) >= len(wanted)


def _filled(line: str) -> str:
    parts = PLACEHOLDER.split(line)
    return r"[\w.-]+".join(re.escape(part) for part in parts)


def filled_in(template: list[str], lines: list[str]) -> list[str]:
    """The copy's lines, each that fills a template line's placeholders given back as that template line."""
    patterns = [(line, re.compile(_filled(line))) for line in template if PLACEHOLDER.search(line)]
    if not patterns:
        return lines
    return [next((line for line, pattern in patterns if pattern.fullmatch(copied)), copied) for copied in lines]


@rule("MK602", "warning", "give the function one body everywhere (or different names for different behaviour)")
def function_diverged(ws: Workspace) -> Iterable[AcrossHit]:
    """The same shared function has different bodies in different services.

    Bad: update_updated_at_column() sets updated_at in one service and also bumps a version in another
    Good: one body, copied verbatim
    """
    bodies: dict[str, dict[str, tuple[str, str]]] = defaultdict(dict)  # function -> service -> (body, file)
    for name, service in ws.services.items():
        for migration in service.load_migrations(mixed=True):
            if migration.syntax_error is not None:
                continue
            for statement in migration.statements:
                if statement.kind == "CreateFunctionStmt":
                    parts = strings(statement.node.get("funcname"))
                    function = ".".join(parts) if len(parts) > 1 else f"public.{parts[-1]}"  # one schema, one name
                    body = _shape(statement.node)  # the parse tree: spacing, case and comments do not count
                    bodies[function][name] = (body, relative(ws.root, migration.path))  # the last definition wins
    for function, by_service in sorted(bodies.items()):
        variants = Counter(body for body, _ in by_service.values())
        if len(variants) < 2:
            continue
        usual = variants.most_common(1)[0][0]
        others = sorted(n for n, (b, _) in by_service.items() if b == usual)
        for name, (body, where) in sorted(by_service.items()):
            if body != usual:
                yield name, where, None, f"{function}() differs from its body in {', '.join(others)}"


def _shape(node: object) -> str:
    """A statement's parse tree without positions, with the whitespace inside its strings (bodies) collapsed."""

    def clean(value: object) -> object:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if not k.endswith("location")}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return " ".join(value.split()) if isinstance(value, str) else value

    return json.dumps(clean(node), sort_keys=True)


@rule("MK603", "warning", "move every service to the same base image and runtime version")
def base_image_diverged(ws: Workspace) -> Iterable[AcrossHit]:
    """Services run the same runtime at different versions.

    Bad: FROM node:20-alpine in one Dockerfile, FROM node:22-alpine in another
    Good: FROM node:22-alpine everywhere
    """
    images: dict[str, dict[str, str]] = defaultdict(dict)  # runtime (the image before its tag) -> service -> tag
    for name, service in ws.services.items():
        dockerfile = service.path / "Dockerfile"
        if dockerfile.is_file():
            runtime, _, tag = analyse(dockerfile, service.path, ws.root).final.image.partition(":")
            images[runtime][name] = tag or "latest"
    for runtime, tags in sorted(images.items()):
        counts = Counter(tags.values())
        if len(counts) < 2:
            continue
        usual = counts.most_common(1)[0][0]
        for name, tag in sorted(tags.items()):
            if tag != usual:
                where = relative(ws.root, ws.services[name].path / "Dockerfile")
                yield (
                    name,
                    where,
                    None,
                    f"{runtime}:{tag}, while {counts[usual]} other service(s) use {runtime}:{usual}",
                )


@rule(
    "MK604",
    "warning",
    "use the seed's schema_migrations shape and name (schema-qualify it when databases are shared)",
)
def tracking_diverged(ws: Workspace) -> Iterable[AcrossHit]:
    """A tracking table with another name or shape.

    Tools and dashboards that read schema_migrations miss this service.
    Read in 001_init.sql, and in the CREATE TABLE a hand-written runner's source sends (a string it
    passes to the database, beside the INSERT INTO that records each file).
    Bad: CREATE TABLE IF NOT EXISTS migrations_log (id serial, name text)
    Good: CREATE TABLE IF NOT EXISTS schema_migrations (version TEXT PRIMARY KEY, applied_at …, checksum …,
    execution_time_ms …)
    """
    config = relative(ws.root, ws.config_path) if ws.config_path else None
    for name, service in ws.services.items():
        if service.settings.tracking_table.rsplit(".", 1)[-1] != SEED_TABLE:
            yield name, config, None, f"tracking table {service.settings.tracking_table}, not schema_migrations"
        runner = runner_table(service.path)
        if runner is not None and set(runner.columns) != SEED_COLUMNS:
            message = f"{runner.table} (its runner's own) has columns {', '.join(runner.columns)}, not the seed's"
            yield name, relative(ws.root, runner.path), runner.line, message
            continue  # the table the runner creates is the one it writes: 001_init's, if any, is not used
        tracked = service.settings.tracking_table.rsplit(".", 1)[-1]
        if runner is not None and runner.table.rsplit(".", 1)[-1] != tracked:
            message = f"{runner.table} (its runner's own) has the seed's columns, but its name is not {tracked}"
            yield name, relative(ws.root, runner.path), runner.line, message
            continue
        found = tracking_table_statement(service.load_migrations(mixed=True), service.settings.tracking_table)
        init, create = found if found is not None else (None, None)
        if init is None or create is None:
            continue  # no 001_init, or one without the table: MK111 reports that
        columns = {e["ColumnDef"]["colname"] for e in create.node.get("tableElts", []) if "ColumnDef" in e}
        if columns != SEED_COLUMNS:
            message = f"{service.settings.tracking_table} has columns {', '.join(sorted(columns))}, not the seed's"
            yield name, relative(ws.root, init.path), create.line, message
