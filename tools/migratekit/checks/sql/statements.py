"""What the statement rules are told beyond one statement: ignore comments, earlier statements, the service.

The ignore comments of a file, what its earlier statements did, and what the service's migrations create as
a whole (indexes, keys, partitioned tables).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence

from migratekit.checks.sql.context import FileState, Reference, ServiceFacts
from migratekit.checks.sql.names import objects
from migratekit.checks.sql.tree import alter_cmds, bare, comments, constraints, relname, strings
from migratekit.model.contract import SEED_TABLE
from migratekit.model.migration import Migration, Statement
from migratekit.model.settings import RULE_CODE_TEXT

IGNORE = re.compile(rf"--\s*migratekit:\s*ignore\s+({RULE_CODE_TEXT}(?:\s*,?\s*{RULE_CODE_TEXT})*)", re.IGNORECASE)


def ignore_comments(text: str, statements: Iterable) -> dict[int, dict[str, int]]:
    """statement index -> {code: line of the ignore comment}; only real comments count, not text in a string
    or a function body that happens to read like one."""
    result: dict[int, dict[str, int]] = defaultdict(dict)
    if "migratekit" not in text:
        return result
    ends = [s.line + s.text.count("\n") for s in statements]
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


def advance(state: FileState, statement: Statement) -> None:
    """Record what a statement did, for the rules that look at later statements and the workspace's rules."""
    kind, node = statement.kind, statement.node
    recorder = _RECORDERS.get(kind)
    if recorder is not None:
        recorder(state, node)
    found = objects(kind, node, state.search_path, statement.text)
    state.objects.update(found.creates)
    new = {n for n in found.references if n not in state.references}
    if new:
        opening = statement.text.split("\n", 1)[0]
        opening = opening if len(opening) <= 80 else opening[:77] + "..."
        for name in sorted(new):  # one order, run after run
            state.references[name] = Reference(*name, state.path, statement.line, opening)
    if not state.one_transaction and (kind == "TransactionStmt" or not state.in_transaction):
        state.transaction += 1  # outside BEGIN ... COMMIT each statement commits on its own


def _create_table(state: FileState, node: dict) -> None:
    state.created(relname(node.get("relation")), node.get("if_not_exists", False))


def _create_table_as(state: FileState, node: dict) -> None:
    """CREATE TABLE … AS and CREATE MATERIALIZED VIEW: a relation that no running code reads or indexes yet."""
    state.created(relname(node.get("into", {}).get("rel")), node.get("if_not_exists", False))


def _drop(state: FileState, node: dict) -> None:
    kind = node.get("removeType")
    for obj in node.get("objects", []):
        names = strings(obj.get("List", {}).get("items"))
        if kind in ("OBJECT_TABLE", "OBJECT_MATVIEW"):
            state.dropped(".".join(names))
        elif kind == "OBJECT_TRIGGER" and node.get("missing_ok") and len(names) >= 2:
            state.dropped_triggers.add((names[-2], names[-1]))
        elif kind == "OBJECT_POLICY" and len(names) >= 2:  # a second run drops what the first created
            state.dropped_policies.add((names[-2], names[-1]))


def _rename(state: FileState, node: dict) -> None:
    if node.get("renameType") == "OBJECT_TABLE":
        old = relname(node.get("relation"))
        was_new = state.is_new(old)
        state.dropped(old)
        if was_new:
            state.created(node.get("newname", ""), False)


def _alter_table(state: FileState, node: dict) -> None:
    table = bare(relname(node.get("relation")))
    for cmd in alter_cmds(node):
        subtype, name = cmd.get("subtype"), cmd.get("name", "")
        if subtype == "AT_DropConstraint":  # with or without IF EXISTS: a second run cannot collide
            state.dropped_constraints.add((table, name))
            state.not_null_checks.pop((table, name), None)
            state.not_valid.pop((table, name), None)
        elif subtype == "AT_AddConstraint":
            constraint = cmd.get("def", {}).get("Constraint", {})
            key = (table, constraint.get("conname", ""))
            state.dropped_constraints.discard(key)  # one drop guards one add
            column = not_null_column(constraint)
            if column is not None:
                state.not_null_checks[key] = (column, not constraint.get("skip_validation"))
            if constraint.get("skip_validation"):
                state.not_valid[key] = state.transaction
        elif subtype == "AT_ValidateConstraint" and (table, name) in state.not_null_checks:
            state.not_null_checks[(table, name)] = (state.not_null_checks[(table, name)][0], True)


def _create_policy(state: FileState, node: dict) -> None:
    state.dropped_policies.discard((bare(relname(node.get("table"))), node.get("policy_name", "")))  # one drop, one


def _create_index(state: FileState, node: dict) -> None:
    state.created_indexes.add(node.get("idxname", ""))


def _create_domain(state: FileState, node: dict) -> None:
    state.created_domains.add(strings(node.get("domainname"))[-1])


def _set(state: FileState, node: dict) -> None:
    """SET search_path moves where the file's later unqualified names resolve (all its schemas, in order)."""
    if node.get("name") != "search_path":
        return
    if node.get("kind") in ("VAR_RESET", "VAR_SET_DEFAULT"):
        state.search_path = "public"
        return
    schemas = [a.get("A_Const", {}).get("sval", {}).get("sval") for a in node.get("args", [])]
    schemas = [s for s in schemas if s and s != "$user"] or ["public"]
    # A path of its own is written `a,` (names.candidates): unqualified names under it may still be PostgreSQL's.
    state.search_path = "public" if schemas == ["public"] else ",".join(schemas) + ("," if len(schemas) == 1 else "")


def _alter_enum(state: FileState, node: dict) -> None:
    if node.get("newVal") and not node.get("oldVal"):  # ADD VALUE, not RENAME VALUE
        state.added_enum_values[node["newVal"]] = state.transaction


def _transaction(state: FileState, node: dict) -> None:
    kind = node.get("kind")
    if kind in ("TRANS_STMT_BEGIN", "TRANS_STMT_START"):
        state.in_transaction = True
    elif kind in ("TRANS_STMT_COMMIT", "TRANS_STMT_ROLLBACK", "TRANS_STMT_PREPARE"):
        state.in_transaction = False  # a SAVEPOINT or RELEASE stays inside


_RECORDERS = {
    "CreateStmt": _create_table,
    "CreateTableAsStmt": _create_table_as,
    "DropStmt": _drop,
    "RenameStmt": _rename,
    "AlterTableStmt": _alter_table,
    "IndexStmt": _create_index,
    "CreatePolicyStmt": _create_policy,
    "CreateDomainStmt": _create_domain,
    "AlterEnumStmt": _alter_enum,
    "TransactionStmt": _transaction,
    "VariableSetStmt": _set,
}


def not_null_column(constraint: dict) -> str | None:
    """The column of a `CHECK (column IS NOT NULL)`, or None for any other constraint."""
    test = constraint.get("raw_expr", {}).get("NullTest", {}) if constraint.get("contype") == "CONSTR_CHECK" else {}
    fields = strings(test.get("arg", {}).get("ColumnRef", {}).get("fields"))
    return fields[-1] if test.get("nulltesttype") == "IS_NOT_NULL" and len(fields) == 1 else None


_FACT_KINDS = frozenset({"CreateStmt", "IndexStmt", "AlterTableStmt"})  # the statements service_facts reads


def service_facts(
    migrations: Sequence[Migration], type_advice: bool = False, tracking_table: str = SEED_TABLE, forget: bool = False
) -> ServiceFacts:
    """Every index, primary key and unique constraint the service creates, and every function it calls, from
    the migrations that parse (ServiceFacts.migrations); with `forget`, each file's trees are dropped once read."""
    by_table: dict[str, list[tuple[str, ...]]] = defaultdict(list)
    partitioned: set[str] = set()
    parsed = []
    for migration in migrations:
        if migration.syntax_error is not None:
            continue
        parsed.append(migration)
        for statement in migration.statements:
            kind = statement.kind
            if kind not in _FACT_KINDS:
                continue
            node = statement.node
            table = bare(relname(node.get("relation")))
            if kind == "IndexStmt":
                by_table[table].append(tuple(p["IndexElem"].get("name", "") for p in node.get("indexParams", [])))
            else:
                if kind == "CreateStmt" and node.get("partspec"):
                    partitioned.add(table)
                for column, constraint in constraints(node):
                    if constraint.get("contype") in ("CONSTR_PRIMARY", "CONSTR_UNIQUE"):
                        keys = tuple(strings(constraint.get("keys"))) or ((column,) if column else ())
                        if keys:
                            by_table[table].append(keys)
        if forget:
            migration.forget_trees()
    return ServiceFacts(dict(by_table), tuple(parsed), frozenset(partitioned), type_advice, tracking_table)
