"""Run every file and statement rule over one service's migrations, honouring inline ignores.

`-- migratekit: ignore MK302 -- reason` silences the listed codes for the statement it precedes
(or sits in). An ignore that silences nothing is itself reported (MK112, in mk1_files), so stale
ignores do not pile up.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path

from migratekit.checks.rule import Finding, Rule, Scope, StaleIgnore, rules_for
from migratekit.checks.rules import mk1_files
from migratekit.checks.sql.context import Context, FileState, ServiceFacts
from migratekit.checks.sql.tree import alter_cmds, bare, comments, constraints, relname, strings
from migratekit.model.migration import Migration
from migratekit.model.settings import RULE_CODE_TEXT
from migratekit.model.workspace import relative

IGNORE = re.compile(rf"--\s*migratekit:\s*ignore\s+({RULE_CODE_TEXT}(?:\s*,?\s*{RULE_CODE_TEXT})*)", re.IGNORECASE)


def lint_migrations(
    service: str,
    directory: Path,
    migrations: tuple[Migration, ...],
    root: Path,
    tracking_table: str,
    gaps_allowed: bool = False,
) -> list[Finding]:
    """Every MK1xx, MK2xx and MK3xx finding for one service's migrations directory."""

    d = mk1_files.Directory(service, directory, migrations, tracking_table, gaps_allowed)
    findings = [
        file_rule.finding(service, relative(root, path), line, message)
        for file_rule in rules_for(Scope.FILES)
        for path, line, message in file_rule.check(d)
    ]
    parsed = [m for m in migrations if m.syntax_error is None]
    facts = service_facts(parsed)
    where = relative(root, directory)
    for migration in parsed:
        findings.extend(lint_file(service, f"{where}/{migration.filename}", migration, facts))
    return findings


@cache
def _by_kind() -> dict[str, tuple[Rule, ...]]:
    """Statement rules by the node types they read ("*": every statement)."""
    by_kind: dict[str, list[Rule]] = defaultdict(list)
    for statement_rule in rules_for(Scope.STATEMENT):
        for kind in statement_rule.kinds:
            by_kind[kind].append(statement_rule)
    return {kind: tuple(rules) for kind, rules in by_kind.items()}


def lint_file(service: str, path: str, migration: Migration, facts: ServiceFacts) -> list[Finding]:
    statements = migration.statements
    ignores = _ignores(migration.text, statements)
    used: set[tuple[int, str]] = set()
    state = FileState()
    findings = []
    by_kind = _by_kind()
    for index, statement in enumerate(statements):
        ctx = Context(migration, statement, state, facts)
        silenced = ignores.get(index, {})
        for statement_rule in (*by_kind.get(statement.kind, ()), *by_kind.get("*", ())):
            for line, message in statement_rule.check(ctx, statement.node):
                code = statement_rule.code
                if code in silenced:
                    used.add((silenced[code], code))
                    continue
                findings.append(statement_rule.finding(service, path, line or statement.line, message))
        _advance(state, statement.kind, statement.node)
    stale = [
        StaleIgnore(True, service, path, line, code)
        for codes in ignores.values()
        for code, line in codes.items()
        if (line, code) not in used
    ]
    if stale:
        findings += [
            ignore_rule.finding(*hit) for ignore_rule in rules_for(Scope.IGNORES) for hit in ignore_rule.check(stale)
        ]
    return findings


def _ignores(text: str, statements: Iterable) -> dict[int, dict[str, int]]:
    """statement index -> {code: line of the ignore comment}; only real comments count, not text in a string
    or a function body that happens to read like one."""
    ends = [s.line + s.text.count("\n") for s in statements]
    result: dict[int, dict[str, int]] = defaultdict(dict)
    if "migratekit" not in text:
        return result
    data = text.encode("utf-8")
    for offset, comment in comments(text):
        match = IGNORE.search(comment)
        if not match:
            continue
        number = data.count(b"\n", 0, offset) + 1
        target = next((i for i, end in enumerate(ends) if end >= number), None)
        if target is not None:
            for code in re.findall(RULE_CODE_TEXT, match[1].upper()):
                result[target][code] = number
    return result


def _advance(state: FileState, kind: str, node: dict) -> None:
    """Record what a statement did, for the rules that look at later statements."""
    if kind == "CreateStmt":
        state.created_tables.add(bare(relname(node.get("relation"))))
    elif kind == "CreateTableAsStmt":
        state.created_tables.add(bare(relname(node.get("into", {}).get("rel"))))
    elif kind == "DropStmt" and node.get("removeType") == "OBJECT_TRIGGER" and node.get("missing_ok"):
        for obj in node.get("objects", []):
            names = strings(obj.get("List", {}).get("items"))
            if len(names) >= 2:
                state.dropped_triggers.add((names[-2], names[-1]))
    elif kind == "AlterTableStmt":
        table = bare(relname(node.get("relation")))
        for cmd in alter_cmds(node):
            if cmd.get("subtype") == "AT_DropConstraint" and cmd.get("missing_ok"):
                state.dropped_constraints.add((table, cmd.get("name", "")))
    elif kind == "TransactionStmt":
        state.in_transaction = node.get("kind") in ("TRANS_STMT_BEGIN", "TRANS_STMT_START")


def service_facts(migrations: Sequence[Migration]) -> ServiceFacts:
    """Every index, primary key and unique constraint the service creates, and every function it calls."""
    by_table: dict[str, list[tuple[str, ...]]] = defaultdict(list)
    partitioned: set[str] = set()
    for migration in migrations:
        for statement in migration.statements:
            node = statement.node
            table = bare(relname(node.get("relation")))
            if statement.kind == "CreateStmt" and node.get("partspec"):
                partitioned.add(table)
            if statement.kind == "IndexStmt":
                by_table[table].append(tuple(p["IndexElem"].get("name", "") for p in node.get("indexParams", [])))
            elif statement.kind in ("CreateStmt", "AlterTableStmt"):
                for column, constraint in constraints(node):
                    if constraint.get("contype") in ("CONSTR_PRIMARY", "CONSTR_UNIQUE"):
                        keys = tuple(strings(constraint.get("keys"))) or ((column,) if column else ())
                        if keys:
                            by_table[table].append(keys)
    return ServiceFacts(dict(by_table), tuple(migrations), frozenset(partitioned))
