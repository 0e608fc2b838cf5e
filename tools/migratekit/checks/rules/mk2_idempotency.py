"""MK2xx: every statement safe to run twice, the seed's idempotency patterns and their inverses.

A migration that fails half-way, or a runner restarted mid-file, runs statements again: each
must then succeed and change nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial

from migratekit.checks.rule import Scope
from migratekit.checks.rule import rule as declare_rule
from migratekit.checks.sql.context import Context, Hit
from migratekit.checks.sql.tree import alter_cmds, bare, relname, strings, walk

rule = partial(declare_rule, scope=Scope.STATEMENT)


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
    it with the migration's transaction.
    Bad: CREATE TABLE accounts (id uuid PRIMARY KEY);
    Good: CREATE TABLE IF NOT EXISTS accounts (id uuid PRIMARY KEY);
    """
    into = node.get("into", {})
    target = node.get("relation") or into.get("rel", {})
    on_commit = node.get("oncommit") or into.get("onCommit")
    if node.get("if_not_exists") or on_commit == "ONCOMMIT_DROP":
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
    Bad: CREATE INDEX idx_characters_corp_id ON characters(corp_id);
    Good: CREATE INDEX IF NOT EXISTS idx_characters_corp_id ON characters(corp_id);
    """
    if not node.get("if_not_exists"):
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

    Bad: CREATE SCHEMA enrichment;
    Good: CREATE SCHEMA IF NOT EXISTS enrichment;
    """
    if not node.get("if_not_exists"):
        yield None, f"CREATE SCHEMA {node.get('schemaname', '')} without IF NOT EXISTS"


@rule("MK205", "error", "write CREATE SEQUENCE IF NOT EXISTS", kinds=("CreateSeqStmt",))
def create_sequence(ctx: Context, node: dict) -> Iterable[Hit]:
    """CREATE SEQUENCE without IF NOT EXISTS.

    Bad: CREATE SEQUENCE invoice_numbers;
    Good: CREATE SEQUENCE IF NOT EXISTS invoice_numbers;
    """
    if not node.get("if_not_exists"):
        yield None, f"CREATE SEQUENCE {relname(node.get('sequence'))} without IF NOT EXISTS"


@rule("MK206", "error", "write CREATE OR REPLACE FUNCTION (or PROCEDURE)", kinds=("CreateFunctionStmt",))
def create_function(ctx: Context, node: dict) -> Iterable[Hit]:
    """CREATE FUNCTION without OR REPLACE.

    A second run fails with "function already exists with same argument types".
    Bad: CREATE FUNCTION update_updated_at_column() RETURNS trigger AS $$ … $$ LANGUAGE plpgsql;
    Good: CREATE OR REPLACE FUNCTION update_updated_at_column() RETURNS trigger AS $$ … $$ LANGUAGE plpgsql;
    """
    if not node.get("replace"):
        yield None, f"CREATE FUNCTION {'.'.join(strings(node.get('funcname')))} without OR REPLACE"


@rule("MK207", "error", "write CREATE OR REPLACE VIEW", kinds=("ViewStmt",))
def create_view(ctx: Context, node: dict) -> Iterable[Hit]:
    """CREATE VIEW without OR REPLACE.

    Bad: CREATE VIEW battle_value AS SELECT …;
    Good: CREATE OR REPLACE VIEW battle_value AS SELECT …;
    """
    if not node.get("replace"):
        yield None, f"CREATE VIEW {relname(node.get('view'))} without OR REPLACE"


@rule(
    "MK208",
    "error",
    "put DROP TRIGGER IF EXISTS name ON table before it (or CREATE OR REPLACE TRIGGER)",
    kinds=("CreateTrigStmt",),
)
def create_trigger(ctx: Context, node: dict) -> Iterable[Hit]:
    """CREATE TRIGGER without a DROP TRIGGER IF EXISTS before it.

    Triggers have no IF NOT EXISTS: the seed drops and re-creates them.
    Bad: CREATE TRIGGER update_characters_updated_at BEFORE UPDATE ON characters …;
    Good: DROP TRIGGER IF EXISTS update_characters_updated_at ON characters;
          CREATE TRIGGER update_characters_updated_at BEFORE UPDATE ON characters …;
    """
    key = (bare(relname(node.get("relation"))), node.get("trigname", ""))
    if not node.get("replace") and key not in ctx.state.dropped_triggers:
        yield None, f"CREATE TRIGGER {key[1]} ON {key[0]} without DROP TRIGGER IF EXISTS before it"


@rule(
    "MK209",
    "error",
    "add ON CONFLICT DO NOTHING (or DO UPDATE), or INSERT … SELECT … WHERE NOT EXISTS",
    kinds=("InsertStmt",),
)
def insert(ctx: Context, node: dict) -> Iterable[Hit]:
    """INSERT without ON CONFLICT.

    Seed rows inserted twice fail on a unique key, or worse, are duplicated.
    Bad: INSERT INTO roles (key, name) VALUES ('admin', 'Admin');
    Good: INSERT INTO roles (key, name) VALUES ('admin', 'Admin') ON CONFLICT (key) DO NOTHING;
    """
    if node.get("onConflictClause"):
        return
    where = node.get("selectStmt", {}).get("SelectStmt", {}).get("whereClause")
    guarded = any(t == "SubLink" and n.get("subLinkType") == "EXISTS_SUBLINK" for t, n in walk(where))
    if not guarded:
        yield None, f"INSERT INTO {relname(node.get('relation'))} without ON CONFLICT"


@rule("MK210", "error", "write ADD COLUMN IF NOT EXISTS", kinds=("AlterTableStmt",), squawk=("prefer-robust-stmts",))
def add_column(ctx: Context, node: dict) -> Iterable[Hit]:
    """ADD COLUMN without IF NOT EXISTS.

    Bad: ALTER TABLE accounts ADD COLUMN phone_number TEXT;
    Good: ALTER TABLE accounts ADD COLUMN IF NOT EXISTS phone_number TEXT;
    """
    for cmd in alter_cmds(node):
        if cmd.get("subtype") == "AT_AddColumn" and not cmd.get("missing_ok"):
            column = cmd.get("def", {}).get("ColumnDef", {})
            yield ctx.line_of(column.get("location")), f"ADD COLUMN {column.get('colname')} without IF NOT EXISTS"


@rule("MK211", "error", "write DROP … IF EXISTS", kinds=("DropStmt", "AlterTableStmt"), squawk=("prefer-robust-stmts",))
def drop_without_if_exists(ctx: Context, node: dict) -> Iterable[Hit]:
    """DROP without IF EXISTS.

    A second run fails because the object is already gone.
    Bad: DROP TRIGGER update_accounts_updated_at ON accounts;
    Good: DROP TRIGGER IF EXISTS update_accounts_updated_at ON accounts;
    """
    if "removeType" in node and not node.get("missing_ok"):
        kind = node["removeType"].removeprefix("OBJECT_").replace("_", " ")
        yield None, f"DROP {kind} without IF EXISTS"
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

    Types have no IF NOT EXISTS, so a second run fails with "type already exists".
    Bad: CREATE TYPE battle_side AS ENUM ('attacker', 'defender');
    Good: DO $$ BEGIN CREATE TYPE battle_side AS ENUM ('attacker', 'defender');
          EXCEPTION WHEN duplicate_object THEN NULL; END $$;
    """
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
    if table in ctx.state.dropped_tables and ctx.state.is_new(table):
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
    if table in ctx.state.dropped_tables and ctx.state.is_new(table):
        return  # dropped and created again by this file: no policy of a first run survives
    if (table, name) not in ctx.state.dropped_policies:
        yield None, f"CREATE POLICY {name} ON {table} without DROP POLICY IF EXISTS before it"
