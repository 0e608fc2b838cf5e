"""How a statement rule is declared: a checker function, its code, severity and fix hint."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from migratekit.findings import Rule, make_rule
from migratekit.migration import Migration, Statement


@dataclass
class FileState:
    """What the file did before the statement being checked (rules read it, the engine updates it)."""

    created_tables: set[str] = field(default_factory=set)
    dropped_triggers: set[tuple[str, str]] = field(default_factory=set)  # (table, trigger)
    dropped_constraints: set[tuple[str, str]] = field(default_factory=set)  # (table, constraint)
    in_transaction: bool = False  # inside the file's own BEGIN ... COMMIT


@dataclass(frozen=True)
class ServiceIndexes:
    """Leading columns of every index, primary key and unique constraint the service's migrations create."""

    by_table: dict[str, list[tuple[str, ...]]]

    def covers(self, table: str, columns: tuple[str, ...]) -> bool:
        return any(cols[: len(columns)] == columns for cols in self.by_table.get(table, []))


@dataclass(frozen=True)
class Context:
    migration: Migration
    statement: Statement
    state: FileState
    indexes: ServiceIndexes

    def line_of(self, location: int | None) -> int:
        """The file line of a parse-tree location (a byte offset), or the statement's line."""
        if location is None or location < 0:
            return self.statement.line
        return self.migration.data.count(b"\n", 0, location) + 1


Hit = tuple[int | None, str | None]  # (line, message); None means the statement's line, the rule's summary
Check = Callable[[Context, dict], Iterable[Hit]]


@dataclass(frozen=True)
class StatementRule:
    rule: Rule
    kinds: frozenset[str]  # statement node types the rule looks at
    check: Check


def registrar(rules: list[StatementRule]) -> Callable[..., Callable[[Check], Check]]:
    """`rule = registrar(RULES)`, then `@rule("MK201", "error", "hint", kinds=("CreateStmt",))`."""

    def rule(code: str, severity: str, hint: str, kinds: Iterable[str]) -> Callable[[Check], Check]:
        def register(check: Check) -> Check:
            rules.append(StatementRule(make_rule(code, severity, hint, check.__doc__), frozenset(kinds), check))
            return check

        return register

    return rule
