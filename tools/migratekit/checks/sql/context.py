"""What a statement rule sees: the statement, what the file did before it, what the whole service does."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from sys import intern

from migratekit.checks.sql.columns import ColumnTypes, column_types
from migratekit.checks.sql.names import Name, builtins, lookup, provided
from migratekit.checks.sql.tree import bare, called_names, strings
from migratekit.model.contract import SEED_TABLE
from migratekit.model.migration import Migration, Statement

NotNullChecks = dict[tuple[str, str], tuple[str, bool]]  # (table, constraint) -> (column, validated)


@dataclass(frozen=True)
class Schema:
    """What a service's migrations have built once some of them have run, as far as the rules need it.

    The audit walks a service's migrations in order and carries this from one file to the next, read
    from the parse trees it already has (no file is parsed twice). The next file's FileState takes over its
    containers and the Schema it leaves holds them again: a schema is not read once the next file starts
    (copied from file to file instead, a service of thousands of migrations cost the square of their number).
    """

    tables: set[str] = field(default_factory=set, compare=False)  # created by the service, not dropped since
    not_null_checks: tuple[tuple[tuple[str, str], tuple[str, bool]], ...] = ()  # CHECK (col IS NOT NULL)
    # every object the service has created, qualified (names.objects), and what it is: "table", "role", ...
    objects: dict[Name, str] = field(default_factory=dict, compare=False)
    references: dict[Name, Reference] = field(default_factory=dict, compare=False)  # the first of each name

    def service_objects(self) -> ServiceObjects:
        """What the whole service creates, and what it refers to that neither it (in any of its migrations) nor
        PostgreSQL provides: the names another service may own."""
        own, known = provided(self.objects), builtins()
        foreign = tuple(
            r
            for (namespace, name), r in self.references.items()
            if lookup(namespace, name, own) is None and not known.provides(namespace, name)
        )
        return ServiceObjects(dict(self.objects), foreign)


@dataclass(frozen=True, slots=True)
class Reference:
    """A name a service's migration uses: where (the statement's first line) and the statement's opening."""

    namespace: str  # names.RELATION, TYPE, FUNCTION, SCHEMA, ROLE, EXTENSION
    name: str  # qualified as names.objects qualifies it
    path: str  # relative to the monorepo root
    line: int
    statement: str


@dataclass(frozen=True)
class ServiceObjects:
    """What one service's migrations create and the names they use without creating them: what the workspace
    rules compare across services (MK504, MK505), carried in the lint cache beside the findings."""

    creates: dict[Name, str] = field(default_factory=dict)
    references: tuple[Reference, ...] = ()

    def as_json(self) -> dict[str, list[list[object]]]:
        return {
            "creates": [[namespace, name, what] for (namespace, name), what in sorted(self.creates.items())],
            "references": [[r.namespace, r.name, r.path, r.line, r.statement] for r in self.references],
        }

    @classmethod
    def from_json(cls, data: dict[str, list[list[object]]]) -> ServiceObjects:
        # A namespace and what an object is are a handful of words, read once per object: each held once (a warm
        # audit of 1,000 services holds every service's objects at once, until the workspace rules have run).
        creates = {(intern(str(n)), str(name)): intern(str(what)) for n, name, what in data["creates"]}
        refs = tuple(
            Reference(intern(str(n)), str(name), str(p), int(str(line)), str(t))
            for n, name, p, line, t in data["references"]
        )
        return cls(creates, refs)


@dataclass
class FileState:
    """What the file did before the statement being checked (rules read it, the engine updates it).

    Which tables are new: a table is new when this file created it (and it was not already there), so it
    is empty and no running code uses it yet. A table an earlier migration of the service created, or one
    the service never created (another service's, or one made outside migrations), is existing: in
    production it may hold rows and serve traffic. `earlier` is what the service's earlier migrations
    left.
    """

    earlier: Schema = field(default_factory=Schema)
    created_tables: set[str] = field(default_factory=set)  # new: created by this file, not dropped since
    dropped_tables: set[str] = field(default_factory=set)
    dropped_triggers: set[tuple[str, str]] = field(default_factory=set)  # (table, trigger)
    dropped_constraints: set[tuple[str, str]] = field(default_factory=set)  # (table, constraint)
    dropped_policies: set[tuple[str, str]] = field(default_factory=set)  # (table, policy)
    not_null_checks: NotNullChecks = field(default_factory=dict)  # from `earlier`, then as this file changes them
    not_valid: dict[tuple[str, str], int] = field(default_factory=dict)  # added NOT VALID here -> its transaction
    created_indexes: set[str] = field(default_factory=set)
    created_domains: set[str] = field(default_factory=set)
    added_enum_values: dict[str, int] = field(default_factory=dict)  # ALTER TYPE … ADD VALUE -> its transaction
    in_transaction: bool = False  # inside the file's own BEGIN ... COMMIT
    one_transaction: bool = True  # the runner runs the whole file in one transaction
    transaction: int = 0  # which transaction the statement runs in (statements of one transaction share it)
    path: str = ""  # the file, relative to the monorepo root (where a reference is)
    search_path: str = "public"  # where an unqualified name resolves: the server's default, or the file's SET
    objects: dict[Name, str] = field(default_factory=dict)  # `earlier`'s, then what this file creates
    references: dict[Name, Reference] = field(default_factory=dict)  # `earlier`'s, then this file's first uses

    def __post_init__(self) -> None:
        self.not_null_checks = {**dict(self.earlier.not_null_checks), **self.not_null_checks}
        objects, references = self.earlier.objects, self.earlier.references  # taken over (see Schema)
        objects.update(self.objects)
        references.update(self.references)
        self.objects, self.references = objects, references

    def is_new(self, table: str) -> bool:
        """Whether `table` (qualified or not) was created by this file: empty, and unused by running code."""
        return bare(table) in self.created_tables

    def created(self, table: str, if_not_exists: bool) -> None:
        """A CREATE TABLE: IF NOT EXISTS over a table an earlier migration left creates nothing."""
        name = bare(table)
        if not (if_not_exists and name in self.earlier.tables and name not in self.dropped_tables):
            self.created_tables.add(name)

    def dropped(self, table: str) -> None:
        name = bare(table)
        self.created_tables.discard(name)
        self.dropped_tables.add(name)
        self.not_null_checks = {k: v for k, v in self.not_null_checks.items() if k[0] != name}

    def has_valid_not_null_check(self, table: str, column: str) -> bool:
        """A validated CHECK (column IS NOT NULL): SET NOT NULL then skips its scan (PostgreSQL 12+)."""
        name = bare(table)
        return any(t == name and v == (column, True) for (t, _), v in self.not_null_checks.items())

    def after(self) -> Schema:
        """The schema once this file has run: what the service's next migration finds (this file's `earlier`,
        whose containers it holds, is not to be read again)."""
        tables = self.earlier.tables  # taken over (see Schema)
        tables -= self.dropped_tables
        tables |= self.created_tables
        return Schema(tables, tuple(sorted(self.not_null_checks.items())), self.objects, self.references)


@dataclass(frozen=True)
class ServiceFacts:
    """What all of a service's migrations do, for rules whose answer depends on the other files.

    `by_table`: the leading columns of every index, primary key and unique constraint created;
    `calls`: which of some functions are called anywhere (defaults, views, bodies of SQL functions).
    """

    by_table: dict[str, list[tuple[str, ...]]]
    migrations: tuple[Migration, ...] = field(default=(), repr=False, compare=False)
    partitioned: frozenset[str] = frozenset()  # tables created PARTITION BY
    type_advice: bool = False  # workspace.yaml's type_advice: the rules that advise on column types run
    tracking_table: str = SEED_TABLE  # its column types are the seed's contract, never advised on

    def calls(self, candidates: frozenset[str], prefix: str = "") -> frozenset[str]:
        """Which of `candidates` (or names starting with `prefix`) the service's migrations call anywhere.

        Walking every tree for calls is not free (the seed's template creates an extension in every file, so
        MK311 asks in every service): only statements whose text holds one of the names not found yet (or the
        prefix) are walked, since a call's name is in its statement's text; a template calling the same
        function in every file is walked once. A file whose text holds none of them is passed over whole,
        with one look at its text rather than one at each statement's.
        """
        asked: dict[tuple[frozenset[str], str], frozenset[str]] = self.__dict__.setdefault("_calls", {})
        if (candidates, prefix) in asked:  # each CREATE EXTENSION asks again: one walk a service
            return asked[(candidates, prefix)]
        words = left = tuple(candidates)  # left: the words not found yet
        found: set[str] = set()
        for migration in self.migrations:
            whole = migration.sql.lower()
            if not (prefix and prefix in whole) and not any(map(whole.__contains__, left)):
                continue
            for statement in migration.parse():  # kept trees, or read anew (lint_service: BOUNDED_FROM)
                text = statement.text.lower()
                if "(" in text and (
                    (prefix and prefix in text) or any(word in text for word in words if word not in found)
                ):
                    called = called_names(statement.node)
                    found |= {f for f in called if f in candidates or (prefix and f.startswith(prefix))}
            left = tuple(word for word in words if word not in found)
        asked[(candidates, prefix)] = frozenset(found)
        return asked[(candidates, prefix)]

    @cached_property
    def volatile_functions(self) -> frozenset[str]:
        """Functions the service creates without IMMUTABLE or STABLE (PostgreSQL's default is VOLATILE)."""
        found: set[str] = set()
        for migration in self.migrations:
            for statement in migration.parse():  # kept trees, or read anew (lint_service: BOUNDED_FROM)
                if statement.kind != "CreateFunctionStmt":
                    continue
                options = statement.node.get("options", [])
                volatility = [
                    o["DefElem"].get("arg", {}).get("String", {}).get("sval")
                    for o in options
                    if o.get("DefElem", {}).get("defname") == "volatility"
                ]
                if volatility in ([], ["volatile"]):
                    found.add(strings(statement.node.get("funcname"))[-1])
        return frozenset(found)

    @cached_property
    def column_types(self) -> ColumnTypes:
        """The type each column was last given, before any statement (MK307): built once, on first use."""
        return column_types(self.migrations)

    def covers(self, table: str, columns: tuple[str, ...]) -> bool:
        return any(cols[: len(columns)] == columns for cols in self.by_table.get(table, []))


@dataclass(frozen=True, slots=True)
class Context:
    migration: Migration
    statement: Statement
    state: FileState
    service: ServiceFacts

    def line_of(self, location: int | None) -> int:
        """The file line of a parse-tree location (a byte offset), or the statement's line."""
        if location is None or location < 0:
            return self.statement.line
        return self.migration.data.count(b"\n", 0, location) + 1


Hit = tuple[int | None, str | None]  # (line, message); None means the statement's line, the rule's summary
