"""The type a service's migrations last gave each column, for the rules that weigh a type change (MK307).

Read from the parse trees the audit already has, in the order the service applies its migrations: CREATE
TABLE and ADD COLUMN give a column its type, ALTER COLUMN … TYPE changes it, RENAME COLUMN moves it to the
new name, RENAME TO moves a table's columns to its new name, DROP COLUMN forgets it. What is not followed (a
column of another service's table, a table moved to another schema) is unknown, and a rule treats an unknown
old type as the worst case.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from migratekit.checks.sql.tree import alter_cmds, bare, relname, strings
from migratekit.model.migration import Migration, Statement

TypeKey = tuple[str, tuple[int, ...], int]  # type name (int8, varchar), its modifiers ((64,)), array dimensions
Position = tuple[int, int]  # (migration, statement): the order the service applies them in

# serial is int with a sequence: the column's type is the integer one (what ALTER COLUMN … TYPE compares)
SERIAL_TYPES = {
    "smallserial": "int2",
    "serial2": "int2",
    "serial": "int4",
    "serial4": "int4",
    "bigserial": "int8",
    "serial8": "int8",
}


def type_key(type_name: dict) -> TypeKey:
    """A TypeName node as PostgreSQL resolves it, as far as the parser says: `character varying(64)` and
    `pg_catalog.varchar(64)` are one type, `serial` is `int4`, `text[]` is not `text`."""
    names = strings(type_name.get("names"))
    name = names[-1] if names else ""
    modifiers = tuple(
        int(m["A_Const"].get("ival", {}).get("ival", 0)) if "ival" in m.get("A_Const", {}) else -1
        for m in type_name.get("typmods", [])
    )
    return SERIAL_TYPES.get(name, name), modifiers, len(type_name.get("arrayBounds", []))


@dataclass(frozen=True)
class ColumnTypes:
    """(table, column) -> each type the service's migrations gave it, by position (None: dropped, renamed away,
    or renamed from a column of unknown type)."""

    given: dict[tuple[str, str], list[tuple[Position, TypeKey | None]]]
    order: dict[Path, int] = field(default_factory=dict)  # each migration's place in the service's order

    def before(self, migration: Migration, statement: Statement, table: str, column: str) -> TypeKey | None:
        """The column's type just before `statement` of `migration` runs, or None when it is unknown."""
        history = self.given.get((bare(table), column))
        if not history or migration.path not in self.order:
            return None
        here = (self.order[migration.path], migration.statements.index(statement))
        earlier = bisect_left(history, here, key=lambda event: event[0])
        return history[earlier - 1][1] if earlier else None


def column_types(migrations: Sequence[Migration]) -> ColumnTypes:
    """Every column type the service's migrations declare or change, in the order they apply."""
    given: dict[tuple[str, str], list[tuple[Position, TypeKey | None]]] = defaultdict(list)
    for m, migration in enumerate(migrations):
        for s, statement in enumerate(migration.parse()):  # kept trees, or read anew (lint_service: BOUNDED_FROM)
            node, here = statement.node, (m, s)
            table = bare(relname(node.get("relation")))
            if statement.kind == "CreateStmt":
                for element in node.get("tableElts", []):
                    column = element.get("ColumnDef")
                    if column and column.get("typeName"):
                        given[(table, column.get("colname", ""))].append((here, type_key(column["typeName"])))
            elif statement.kind == "AlterTableStmt":
                for cmd in alter_cmds(node):
                    subtype, column = cmd.get("subtype"), cmd.get("def", {}).get("ColumnDef", {})
                    if subtype == "AT_AddColumn" and column.get("typeName"):
                        given[(table, column.get("colname", ""))].append((here, type_key(column["typeName"])))
                    elif subtype == "AT_AlterColumnType" and column.get("typeName"):
                        given[(table, cmd.get("name", ""))].append((here, type_key(column["typeName"])))
                    elif subtype == "AT_DropColumn":
                        given[(table, cmd.get("name", ""))].append((here, None))
            elif statement.kind == "RenameStmt" and node.get("renameType") == "OBJECT_COLUMN":
                old = given.get((table, node.get("subname", "")))
                given[(table, node.get("newname", ""))].append((here, old[-1][1] if old else None))
                given[(table, node.get("subname", ""))].append((here, None))
            elif statement.kind == "RenameStmt" and node.get("renameType") == "OBJECT_TABLE":
                renamed = node.get("newname", "")  # its columns go with it; the old name holds none of them now
                for (owner, column), history in [(key, h) for key, h in given.items() if key[0] == table]:
                    given[(renamed, column)].append((here, history[-1][1]))
                    given[(owner, column)].append((here, None))
    return ColumnTypes(dict(given), {migration.path: m for m, migration in enumerate(migrations)})
