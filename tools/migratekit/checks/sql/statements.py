"""What the statement rules are told beyond one statement: ignore comments, earlier statements, the service.

The ignore comments of a file, what its earlier statements did, and what the service's migrations create as
a whole (indexes, keys, partitioned tables).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence

from migratekit.checks.sql.context import FileState, ServiceFacts
from migratekit.checks.sql.tree import alter_cmds, bare, comments, constraints, relname, strings
from migratekit.model.migration import Migration
from migratekit.model.settings import RULE_CODE_TEXT

IGNORE = re.compile(rf"--\s*migratekit:\s*ignore\s+({RULE_CODE_TEXT}(?:\s*,?\s*{RULE_CODE_TEXT})*)", re.IGNORECASE)


def ignore_comments(text: str, statements: Iterable) -> dict[int, dict[str, int]]:
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


def advance(state: FileState, kind: str, node: dict) -> None:
    """Record what a statement did, for the rules that look at later statements."""
    if kind == "CreateStmt":
        state.created(relname(node.get("relation")), node.get("if_not_exists", False))
    elif kind == "CreateTableAsStmt" and node.get("objtype") != "OBJECT_MATVIEW":
        state.created(relname(node.get("into", {}).get("rel")), node.get("if_not_exists", False))
    elif kind == "DropStmt" and node.get("removeType") == "OBJECT_TABLE":
        for obj in node.get("objects", []):
            state.dropped(".".join(strings(obj.get("List", {}).get("items"))))
    elif kind == "RenameStmt" and node.get("renameType") == "OBJECT_TABLE":
        old = relname(node.get("relation"))
        was_new = state.is_new(old)
        state.dropped(old)
        if was_new:
            state.created(node.get("newname", ""), False)
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
