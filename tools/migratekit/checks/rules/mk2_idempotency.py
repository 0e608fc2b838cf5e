"""MK2xx: every statement safe to run twice, the seed's idempotency patterns and their inverses.

A migration that fails half-way, or a runner restarted mid-file, runs statements again: each
must then succeed and change nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from functools import partial

from migratekit.checks.rule import Scope
from migratekit.checks.rule import rule as declare_rule
from migratekit.checks.sql.context import Context, Hit
from migratekit.checks.sql.tree import alter_cmds, bare, relname, strings, walk
from migratekit.model.migration import Statement

rule = partial(declare_rule, scope=Scope.STATEMENT)

Signature = tuple[tuple[str, int], ...]  # a function's argument types as DROP FUNCTION names them
Created = tuple[str, list[str], Signature | None]  # DROP's removeType for it, its (qualified) name, arguments
RELATIONS = {"OBJECT_TABLE", "OBJECT_VIEW", "OBJECT_MATVIEW", "OBJECT_FOREIGN_TABLE"}
RENAMED = (
    RELATIONS
    | {"OBJECT_SEQUENCE", "OBJECT_TYPE", "OBJECT_DOMAIN", "OBJECT_FUNCTION", "OBJECT_PROCEDURE"}
    | {"OBJECT_SCHEMA"}
)
ARGUMENT_MODES = {"FUNC_PARAM_IN", "FUNC_PARAM_DEFAULT", "FUNC_PARAM_INOUT", "FUNC_PARAM_VARIADIC"}  # not OUT


def _signature(types: Iterable[dict]) -> Signature:
    """Argument types as PostgreSQL tells overloads apart: the type, and whether an array (no length, no name)."""
    return tuple(((strings(t.get("names"))[-1:] or [""])[0], len(t.get("arrayBounds", []))) for t in types)


def _range_var(range_var: dict | None) -> list[str]:
    return [n for n in ((range_var or {}).get("schemaname"), (range_var or {}).get("relname")) if n]


def _created(statement: Statement) -> Created | None:
    """What a CREATE statement makes, named as the DROP that removes it names it (None: not such a CREATE)."""
    kind, node = statement.kind, statement.node
    if kind == "CreateStmt":
        return "OBJECT_TABLE", _range_var(node.get("relation")), None
    if kind == "CreateTableAsStmt":
        matview = node.get("objtype") == "OBJECT_MATVIEW"
        return ("OBJECT_MATVIEW" if matview else "OBJECT_TABLE"), _range_var(node.get("into", {}).get("rel")), None
    if kind == "ViewStmt":
        return "OBJECT_VIEW", _range_var(node.get("view")), None
    if kind == "CreateSeqStmt":
        return "OBJECT_SEQUENCE", _range_var(node.get("sequence")), None
    if kind == "CreateFunctionStmt":
        parameters = [p.get("FunctionParameter", {}) for p in node.get("parameters", [])]
        arguments = _signature(p.get("argType", {}) for p in parameters if p.get("mode") in ARGUMENT_MODES)
        what = "OBJECT_PROCEDURE" if node.get("is_procedure") else "OBJECT_FUNCTION"
        return what, strings(node.get("funcname")), arguments
    if kind == "CreateEnumStmt":
        return "OBJECT_TYPE", strings(node.get("typeName")), None
    if kind == "CompositeTypeStmt":
        return "OBJECT_TYPE", _range_var(node.get("typevar")), None
    if kind == "CreateDomainStmt":
        return "OBJECT_DOMAIN", strings(node.get("domainname")), None
    if kind == "CreateSchemaStmt":
        return "OBJECT_SCHEMA", [node.get("schemaname", "")], None
    return None


def _dropped(node: dict) -> Iterator[Created]:
    """Each object a DROP statement names (a function without arguments: any one of that name)."""
    kind = node.get("removeType", "")
    for obj in node.get("objects", []):
        if "List" in obj:
            yield kind, strings(obj["List"].get("items")), None
        elif "TypeName" in obj:
            yield kind, strings(obj["TypeName"].get("names")), None
        elif "String" in obj:
            yield kind, [obj["String"]["sval"]], None
        elif "ObjectWithArgs" in obj:
            function = obj["ObjectWithArgs"]
            types = [a.get("TypeName", {}) for a in function.get("objargs", [])]
            arguments = None if function.get("args_unspecified") else _signature(types)
            yield kind, strings(function.get("objname")), arguments


def _renamed(statement: Statement) -> tuple[Created, str] | None:
    """What an ALTER … RENAME TO renames (named as a DROP names it), and its new name; None for another
    statement, or a column's, a constraint's or an index's rename."""
    node = statement.node
    kind = node.get("renameType", "")
    if statement.kind != "RenameStmt" or kind not in RENAMED:
        return None
    if kind in RELATIONS or kind == "OBJECT_SEQUENCE":
        names = _range_var(node.get("relation"))
    elif kind == "OBJECT_SCHEMA":
        names = [node.get("subname", "")]
    else:
        obj = node.get("object", {})
        names = strings(obj.get("List", {}).get("items")) or strings(obj.get("ObjectWithArgs", {}).get("objname"))
    return (kind, names, None), node.get("newname", "")


def _same(made: Created, other: Created, renaming: bool = False) -> bool:
    """One object: the same kind (DROP ROUTINE names either; ALTER TABLE renames any relation), name and schema
    (when both say one), arguments."""
    (kind, names, arguments), (other_kind, other_names, other_arguments) = made, other
    routine = other_kind == "OBJECT_ROUTINE" and kind in ("OBJECT_FUNCTION", "OBJECT_PROCEDURE")
    relation = renaming and {kind, other_kind} <= RELATIONS | {"OBJECT_SEQUENCE"}
    return (
        (kind == other_kind or routine or relation)
        and bool(names)
        and names[-1:] == other_names[-1:]
        and (len(names) < 2 or len(other_names) < 2 or names[-2] == other_names[-2])
        and (arguments is None or other_arguments is None or arguments == other_arguments)
    )


def _dropped_before(ctx: Context) -> bool:
    """Whether this file drops what the statement creates before it creates it: a second run then drops what
    the first created and creates it again (MK211 asks the DROP for IF EXISTS). DROP SCHEMA … CASCADE drops
    everything in the schema, and DROP … CASCADE of a relation a view reads drops the view. One drop guards
    one create: a second create of the name fails on any run."""
    made = _created(ctx.statement)
    if made is None:
        return False
    query = ctx.statement.node.get("query") if made[0] in ("OBJECT_VIEW", "OBJECT_MATVIEW") else None
    reads = {bare(relname(n)) for t, n in walk(query) if t == "RangeVar"} if query else set()
    here = ctx.migration.statements.index(ctx.statement)
    for earlier in reversed(ctx.migration.statements[:here]):
        if earlier.kind == "DropStmt":
            cascade = earlier.node.get("behavior") == "DROP_CASCADE"
            for dropped in _dropped(earlier.node):
                kind, names, _ = dropped
                if _same(made, dropped):
                    return True
                if cascade and kind == "OBJECT_SCHEMA" and len(made[1]) > 1 and made[1][-2] == names[-1]:
                    return True
                if cascade and kind in RELATIONS and names[-1:] and names[-1] in reads:
                    return True
        elif earlier.kind == ctx.statement.kind and (other := _created(earlier)) is not None and _same(made, other):
            return False
    return False


def _gone_by_the_end(ctx: Context) -> bool:
    """Whether the file drops what the statement creates, or renames it away, before it ends (a scratch table,
    a helper function, the copy renamed over what it replaces, an enum's replacement): a second run finds the
    name free again. A rename counts only onto a name the file has freed before it (dropped, or renamed away):
    on a second run the first run's object holds any other. What the file creates or renames to that name
    afterwards takes it again."""
    made = _created(ctx.statement)
    if made is None:
        return False
    statements = ctx.migration.statements
    there = True
    for index in range(statements.index(ctx.statement) + 1, len(statements)):
        later = statements[index]
        if later.kind == "DropStmt" and any(_same(made, dropped) for dropped in _dropped(later.node)):
            there = False
        elif (renamed := _renamed(later)) is not None:
            (kind, names, _), new_name = renamed
            target: Created = (kind, [*names[:-1], new_name], None)
            if _same(made, (kind, names, None), renaming=True):
                there = not _freed(statements[:index], target)
            elif _same(made, target, renaming=True):
                there = True
        elif later.kind == ctx.statement.kind and (other := _created(later)) is not None and _same(made, other):
            there = True
    return not there


def _freed(statements: Sequence[Statement], name: Created) -> bool:
    """Whether one of `statements` drops `name` or renames it away: the name a later rename may then take."""
    for statement in statements:
        if statement.kind == "DropStmt" and any(_same(name, dropped) for dropped in _dropped(statement.node)):
            return True
        renamed = _renamed(statement)
        if renamed is not None and _same(name, renamed[0], renaming=True):
            return True
    return False


def _rerun_safe(ctx: Context) -> bool:
    """Whether a second run of the file finds the name free when the statement creates it again."""
    return _dropped_before(ctx) or _gone_by_the_end(ctx)


def _recreated(ctx: Context, table: str) -> bool:
    """Whether this file dropped `table` and created it again: nothing a first run added to it survives."""
    return bare(table) in ctx.state.dropped_tables and ctx.state.is_new(table)


@rule(
    "MK201",
    "error",
    "write CREATE TABLE IF NOT EXISTS (a temporary table may instead be ON COMMIT DROP)",
    kinds=("CreateStmt", "CreateTableAsStmt"),
    squawk=("prefer-robust-stmts",),
)
def create_table(ctx: Context, node: dict) -> Iterable[Hit]:
    """CREATE TABLE without IF NOT EXISTS.

    A second run fails with "relation already exists". A temporary table is no exception: it lasts
    as long as the session, and the runner applies every pending migration, and a retry, on one
    connection (an in-process runner keeps it in the application's pool); only ON COMMIT DROP ends
    it with the migration's transaction. A DROP of it earlier in the file guards it (a second run
    drops what the first created), and so does a DROP or a RENAME of it before the file ends (a
    scratch table, or a copy renamed over the table it replaces): the name is free again.
    Bad: CREATE TABLE accounts (id uuid PRIMARY KEY);
    Good: CREATE TABLE IF NOT EXISTS accounts (id uuid PRIMARY KEY);
    """
    into = node.get("into", {})
    target = node.get("relation") or into.get("rel", {})
    on_commit = node.get("oncommit") or into.get("onCommit")
    if node.get("if_not_exists") or on_commit == "ONCOMMIT_DROP" or _rerun_safe(ctx):
        return
    what = "MATERIALIZED VIEW" if node.get("objtype") == "OBJECT_MATVIEW" else "TABLE"
    if target.get("relpersistence") == "t":
        yield None, f"CREATE TEMPORARY TABLE {relname(target)} without IF NOT EXISTS (it lasts for the session)"
    else:
        yield None, f"CREATE {what} {relname(target)} without IF NOT EXISTS"


@rule(
    "MK202",
    "error",
    "name the index and write CREATE INDEX IF NOT EXISTS",
    kinds=("IndexStmt",),
    squawk=("prefer-robust-stmts",),
)
def create_index(ctx: Context, node: dict) -> Iterable[Hit]:
    """CREATE INDEX without IF NOT EXISTS.

    A second run fails with "relation already exists" (an unnamed index is created again, twice).
    On a table the file drops and creates again, the DROP took the first run's index with it.
    Bad: CREATE INDEX idx_characters_corp_id ON characters(corp_id);
    Good: CREATE INDEX IF NOT EXISTS idx_characters_corp_id ON characters(corp_id);
    """
    if not node.get("if_not_exists") and not _recreated(ctx, relname(node.get("relation"))):
        yield None, f"CREATE INDEX {node.get('idxname', '(unnamed)')} without IF NOT EXISTS"


@rule("MK203", "error", "write CREATE EXTENSION IF NOT EXISTS", kinds=("CreateExtensionStmt",))
def create_extension(ctx: Context, node: dict) -> Iterable[Hit]:
    """CREATE EXTENSION without IF NOT EXISTS.

    Every service's 001_init asks for its extensions; the second one to run fails.
    Bad: CREATE EXTENSION "uuid-ossp";
    Good: CREATE EXTENSION IF NOT EXISTS "uuid-ossp";
    """
    if not node.get("if_not_exists"):
        yield None, f'CREATE EXTENSION "{node.get("extname")}" without IF NOT EXISTS'


@rule("MK204", "error", "write CREATE SCHEMA IF NOT EXISTS", kinds=("CreateSchemaStmt",))
def create_schema(ctx: Context, node: dict) -> Iterable[Hit]:
    """CREATE SCHEMA without IF NOT EXISTS.

    A second run fails with "schema already exists", unless the file drops it first.
    Bad: CREATE SCHEMA enrichment;
    Good: CREATE SCHEMA IF NOT EXISTS enrichment;
    """
    if not node.get("if_not_exists") and not _rerun_safe(ctx):
        yield None, f"CREATE SCHEMA {node.get('schemaname', '')} without IF NOT EXISTS"


@rule("MK205", "error", "write CREATE SEQUENCE IF NOT EXISTS", kinds=("CreateSeqStmt",))
def create_sequence(ctx: Context, node: dict) -> Iterable[Hit]:
    """CREATE SEQUENCE without IF NOT EXISTS.

    A second run fails with "relation already exists", unless the file drops it first.
    Bad: CREATE SEQUENCE invoice_numbers;
    Good: CREATE SEQUENCE IF NOT EXISTS invoice_numbers;
    """
    if not node.get("if_not_exists") and not _rerun_safe(ctx):
        yield None, f"CREATE SEQUENCE {relname(node.get('sequence'))} without IF NOT EXISTS"


@rule(
    "MK206",
    "error",
    "write CREATE OR REPLACE FUNCTION (or PROCEDURE), or DROP FUNCTION IF EXISTS name(args) before it "
    "when its return type changes",
    kinds=("CreateFunctionStmt",),
)
def create_function(ctx: Context, node: dict) -> Iterable[Hit]:
    """CREATE FUNCTION without OR REPLACE.

    A second run fails with "function already exists with same argument types". A DROP FUNCTION of
    the same arguments earlier in the file guards it (a new return type needs one: OR REPLACE cannot
    change it), and so does dropping it before the file ends (a helper for a backfill).
    Bad: CREATE FUNCTION update_updated_at_column() RETURNS trigger AS $$ … $$ LANGUAGE plpgsql;
    Good: CREATE OR REPLACE FUNCTION update_updated_at_column() RETURNS trigger AS $$ … $$ LANGUAGE plpgsql;
    """
    if not node.get("replace") and not _rerun_safe(ctx):
        yield None, f"CREATE FUNCTION {'.'.join(strings(node.get('funcname')))} without OR REPLACE"


@rule(
    "MK207",
    "error",
    "write CREATE OR REPLACE VIEW, or DROP VIEW IF EXISTS before it when its columns change",
    kinds=("ViewStmt",),
)
def create_view(ctx: Context, node: dict) -> Iterable[Hit]:
    """CREATE VIEW without OR REPLACE.

    A second run fails with "relation already exists". A DROP VIEW earlier in the file guards it (a
    view losing or renaming columns needs one: OR REPLACE can only add columns at the end), as does
    DROP SCHEMA … CASCADE of its schema, or DROP … CASCADE of a table or view it reads.
    Bad: CREATE VIEW battle_value AS SELECT …;
    Good: CREATE OR REPLACE VIEW battle_value AS SELECT …;
    """
    if not node.get("replace") and not _rerun_safe(ctx):
        yield None, f"CREATE VIEW {relname(node.get('view'))} without OR REPLACE"


@rule(
    "MK208",
    "error",
    "put DROP TRIGGER IF EXISTS name ON table before it (or CREATE OR REPLACE TRIGGER)",
    kinds=("CreateTrigStmt",),
)
def create_trigger(ctx: Context, node: dict) -> Iterable[Hit]:
    """CREATE TRIGGER without a DROP TRIGGER IF EXISTS before it.

    Triggers have no IF NOT EXISTS: the seed drops and re-creates them. A table the file drops and
    creates again has lost the first run's triggers.
    Bad: CREATE TRIGGER update_characters_updated_at BEFORE UPDATE ON characters …;
    Good: DROP TRIGGER IF EXISTS update_characters_updated_at ON characters;
          CREATE TRIGGER update_characters_updated_at BEFORE UPDATE ON characters …;
    """
    key = (bare(relname(node.get("relation"))), node.get("trigname", ""))
    if not node.get("replace") and key not in ctx.state.dropped_triggers and not _recreated(ctx, key[0]):
        yield None, f"CREATE TRIGGER {key[1]} ON {key[0]} without DROP TRIGGER IF EXISTS before it"


@rule(
    "MK209",
    "error",
    "add ON CONFLICT DO NOTHING (or DO UPDATE), or INSERT … SELECT … WHERE NOT EXISTS",
    kinds=("InsertStmt",),
)
def insert(ctx: Context, node: dict) -> Iterable[Hit]:
    """INSERT without ON CONFLICT.

    Seed rows inserted twice fail on a unique key, or worse, are duplicated. A table the file drops
    and creates again starts empty on every run.
    Bad: INSERT INTO roles (key, name) VALUES ('admin', 'Admin');
    Good: INSERT INTO roles (key, name) VALUES ('admin', 'Admin') ON CONFLICT (key) DO NOTHING;
    """
    if node.get("onConflictClause") or _recreated(ctx, relname(node.get("relation"))):
        return
    where = node.get("selectStmt", {}).get("SelectStmt", {}).get("whereClause")
    guarded = any(t == "SubLink" and n.get("subLinkType") == "EXISTS_SUBLINK" for t, n in walk(where))
    if not guarded:
        yield None, f"INSERT INTO {relname(node.get('relation'))} without ON CONFLICT"


@rule("MK210", "error", "write ADD COLUMN IF NOT EXISTS", kinds=("AlterTableStmt",), squawk=("prefer-robust-stmts",))
def add_column(ctx: Context, node: dict) -> Iterable[Hit]:
    """ADD COLUMN without IF NOT EXISTS.

    A second run fails with "column already exists", unless the file dropped the table and created it
    again before.
    Bad: ALTER TABLE accounts ADD COLUMN phone_number TEXT;
    Good: ALTER TABLE accounts ADD COLUMN IF NOT EXISTS phone_number TEXT;
    """
    if _recreated(ctx, relname(node.get("relation"))):
        return
    for cmd in alter_cmds(node):
        if cmd.get("subtype") == "AT_AddColumn" and not cmd.get("missing_ok"):
            column = cmd.get("def", {}).get("ColumnDef", {})
            yield ctx.line_of(column.get("location")), f"ADD COLUMN {column.get('colname')} without IF NOT EXISTS"


@rule("MK211", "error", "write DROP … IF EXISTS", kinds=("DropStmt", "AlterTableStmt"), squawk=("prefer-robust-stmts",))
def drop_without_if_exists(ctx: Context, node: dict) -> Iterable[Hit]:
    """DROP without IF EXISTS.

    A second run fails because the object is already gone. A column or constraint of a table the
    file drops and creates again is there again on every run.
    Bad: DROP TRIGGER update_accounts_updated_at ON accounts;
    Good: DROP TRIGGER IF EXISTS update_accounts_updated_at ON accounts;
    """
    if "removeType" in node and not node.get("missing_ok"):
        kind = node["removeType"].removeprefix("OBJECT_").replace("_", " ")
        yield None, f"DROP {kind} without IF EXISTS"
    if _recreated(ctx, relname(node.get("relation"))):
        return
    for cmd in alter_cmds(node):
        if cmd.get("subtype") in ("AT_DropColumn", "AT_DropConstraint") and not cmd.get("missing_ok"):
            what = "COLUMN" if cmd["subtype"] == "AT_DropColumn" else "CONSTRAINT"
            yield None, f"DROP {what} {cmd.get('name')} without IF EXISTS"


@rule(
    "MK212",
    "error",
    "wrap it: DO $$ BEGIN CREATE TYPE …; EXCEPTION WHEN duplicate_object THEN NULL; END $$;",
    kinds=("CreateEnumStmt", "CompositeTypeStmt", "CreateDomainStmt"),
)
def create_type(ctx: Context, node: dict) -> Iterable[Hit]:
    """CREATE TYPE or DOMAIN without a guard.

    Types have no IF NOT EXISTS, so a second run fails with "type already exists", unless a DROP TYPE
    (DROP DOMAIN) earlier in the file removes what the first run created, or the file drops it or
    renames it away before it ends (an enum's replacement, renamed over the old one).
    Bad: CREATE TYPE battle_side AS ENUM ('attacker', 'defender');
    Good: DO $$ BEGIN CREATE TYPE battle_side AS ENUM ('attacker', 'defender');
          EXCEPTION WHEN duplicate_object THEN NULL; END $$;
    """
    if not _rerun_safe(ctx):
        yield None, None


@rule(
    "MK213",
    "error",
    "put ALTER TABLE … DROP CONSTRAINT IF EXISTS name before it, or guard it in a DO block",
    kinds=("AlterTableStmt",),
    squawk=("prefer-robust-stmts",),
)
def add_constraint(ctx: Context, node: dict) -> Iterable[Hit]:
    """ADD CONSTRAINT without a guard.

    Constraints have no IF NOT EXISTS: a second run fails with "constraint already exists". A DROP
    CONSTRAINT of the same name earlier in the file guards one ADD (a second ADD of that name fails
    even on the first run).
    Bad: ALTER TABLE characters ADD CONSTRAINT characters_corp_positive CHECK (corp_id > 0);
    Good: ALTER TABLE characters DROP CONSTRAINT IF EXISTS characters_corp_positive;
          ALTER TABLE characters ADD CONSTRAINT characters_corp_positive CHECK (corp_id > 0);
    """
    table = bare(relname(node.get("relation")))
    if _recreated(ctx, table):
        return  # dropped and created again by this file: no constraint of a first run survives
    dropped = set(ctx.state.dropped_constraints)
    for cmd in alter_cmds(node):
        if cmd.get("subtype") == "AT_DropConstraint":
            dropped.add((table, cmd.get("name", "")))
        if cmd.get("subtype") == "AT_AddConstraint":
            constraint = cmd.get("def", {}).get("Constraint", {})
            name = constraint.get("conname", "")
            if (table, name) not in dropped:
                yield ctx.line_of(constraint.get("location")), f"ADD CONSTRAINT {name or '(unnamed)'} without a guard"
            dropped.discard((table, name))  # one drop guards one add


@rule(
    "MK214",
    "error",
    "put DROP POLICY IF EXISTS name ON table before it, or create it in a DO block that checks pg_policies",
    kinds=("CreatePolicyStmt",),
)
def create_policy(ctx: Context, node: dict) -> Iterable[Hit]:
    """CREATE POLICY without a guard.

    Policies have no IF NOT EXISTS (nor OR REPLACE): a second run fails with "policy … for table …
    already exists", so does a retry after the file failed half-way.
    Bad: CREATE POLICY accounts_owner ON accounts USING (owner_id = current_user_id());
    Good: DROP POLICY IF EXISTS accounts_owner ON accounts;
          CREATE POLICY accounts_owner ON accounts USING (owner_id = current_user_id());
    """
    table = bare(relname(node.get("table")))
    name = node.get("policy_name", "")
    if _recreated(ctx, table):
        return  # dropped and created again by this file: no policy of a first run survives
    if (table, name) not in ctx.state.dropped_policies:
        yield None, f"CREATE POLICY {name} ON {table} without DROP POLICY IF EXISTS before it"
