"""MK3xx: the seed's DON'Ts, changes that lock, rewrite or break the running version of a service.

"Existing" means not created by this file (FileState.is_new): a table made by this migration is
empty and unused, so locking it is harmless; one an earlier migration of the service created, or one
the service never created, may hold rows and serve traffic.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import partial

from migratekit.checks.rule import Scope
from migratekit.checks.rule import rule as declare_rule
from migratekit.checks.sql.context import Context, Hit
from migratekit.checks.sql.tree import (
    alter_cmds,
    bare,
    constraints,
    func_names,
    relname,
    strings,
    walk,
    without_comments,
)

rule = partial(declare_rule, scope=Scope.STATEMENT)

ENVIRONMENT_FUNCTIONS = {"current_database", "inet_server_addr", "inet_server_port"}
ENVIRONMENT_WORDS = ("current_database", "inet_server", "current_setting")
ENVIRONMENT_TEXT = re.compile(
    r"current_database\s*\(|inet_server_(?:addr|port)\s*\(|current_setting\s*\(\s*'[^']*(?:env|stage|tier)",
    re.IGNORECASE,
)


@rule("MK301", "error", "keep migrations the same everywhere; use feature flags or app config instead", kinds=("*",))
def environment_logic(ctx: Context, node: dict) -> Iterable[Hit]:
    """Environment-specific logic in a migration.

    Migrations run in dev, staging and production; a branch on the database or host name makes
    their schemas differ where nobody tests.
    Bad: DO $$ BEGIN IF current_database() = 'production' THEN … END IF; END $$;
    Good: CREATE TABLE IF NOT EXISTS feature_flags (key TEXT PRIMARY KEY, enabled BOOLEAN NOT NULL DEFAULT FALSE);
    """
    text = ctx.statement.text.lower()
    if not any(word in text for word in ENVIRONMENT_WORDS):
        return  # a cheap text test first: the tree walk below is for the few statements that might match
    if ctx.statement.kind == "DoStmt":
        body = " ".join(
            n["arg"]["String"]["sval"] for t, n in walk(node) if t == "DefElem" and "String" in n.get("arg", {})
        )
        found = ENVIRONMENT_TEXT.search(without_comments(body)) is not None  # a comment that names it is no branch
    else:
        found = bool(ENVIRONMENT_FUNCTIONS & func_names(node))
    if found:
        yield None, "branches on the environment (database or server name, or an environment setting)"


@rule(
    "MK302",
    "error",
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS …, in a file of its own (it runs outside a transaction)",
    kinds=("IndexStmt",),
)
def index_without_concurrently(ctx: Context, node: dict) -> Iterable[Hit]:
    """Index on an existing table built without CONCURRENTLY.

    A plain CREATE INDEX blocks every write to the table until it finishes.
    Bad: CREATE INDEX IF NOT EXISTS idx_killmails_ship ON killmails(ship_type_id);
    Good: CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_killmails_ship ON killmails(ship_type_id);
    """
    table = bare(relname(node.get("relation")))
    only = not node.get("relation", {}).get("inh")  # ON ONLY the parent: instant, valid once attached
    if node.get("concurrent") or ctx.state.is_new(table) or only:
        return
    if table in ctx.service.partitioned:  # PostgreSQL refuses CONCURRENTLY on a partitioned table
        yield (
            None,
            (
                f"index on partitioned table {table} blocks writes to every partition; create it ON ONLY {table}, "
                f"then CONCURRENTLY on each partition, then ALTER INDEX … ATTACH PARTITION each one"
            ),
        )
    else:
        yield None, f"index on existing table {table} without CONCURRENTLY blocks writes while it builds"


@rule(
    "MK303",
    "error",
    "remove the BEGIN/COMMIT around it: CONCURRENTLY must run outside a transaction",
    kinds=("IndexStmt", "DropStmt", "ReindexStmt"),
)
def concurrently_in_transaction(ctx: Context, node: dict) -> Iterable[Hit]:
    """CONCURRENTLY inside a transaction block.

    PostgreSQL refuses it: "CREATE INDEX CONCURRENTLY cannot run inside a transaction block".
    Bad: BEGIN; CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t(a); COMMIT;
    Good: CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t(a);
    """
    concurrent = node.get("concurrent") or any(
        p.get("DefElem", {}).get("defname") == "concurrently" for p in node.get("params", [])
    )
    if concurrent and ctx.state.in_transaction:
        yield None, None


FILLED = {"CONSTR_DEFAULT", "CONSTR_IDENTITY", "CONSTR_GENERATED"}  # a new column's existing rows get a value


@rule(
    "MK304",
    "error",
    "add the column nullable (or with a DEFAULT), backfill, then SET NOT NULL in a later migration",
    kinds=("AlterTableStmt",),
)
def not_null_without_default(ctx: Context, node: dict) -> Iterable[Hit]:
    """NOT NULL column added to an existing table without a default.

    It fails on a table with rows, and the running version of the service does not write it. A
    DEFAULT, an identity or a generated column fills the existing rows (MK315 and MK316 say what that
    costs).
    Bad: ALTER TABLE accounts ADD COLUMN IF NOT EXISTS phone_number TEXT NOT NULL;
    Good: ALTER TABLE accounts ADD COLUMN IF NOT EXISTS phone_number TEXT;
    """
    if ctx.state.is_new(relname(node.get("relation"))):
        return
    for cmd in alter_cmds(node):
        column = cmd.get("def", {}).get("ColumnDef", {}) if cmd.get("subtype") == "AT_AddColumn" else {}
        types = {c.get("Constraint", {}).get("contype") for c in column.get("constraints", [])}
        if "CONSTR_NOTNULL" in types and not types & FILLED:
            yield ctx.line_of(column.get("location")), f"NOT NULL column {column.get('colname')} without a DEFAULT"


@rule(
    "MK305",
    "error",
    "add the new name, copy, switch the code, then drop the old one (multi-step rename)",
    kinds=("RenameStmt",),
)
def rename(ctx: Context, node: dict) -> Iterable[Hit]:
    """Renaming a table or column.

    The running version of the service still uses the old name until it is replaced.
    Bad: ALTER TABLE accounts RENAME COLUMN username TO display_name;
    Good: ALTER TABLE accounts ADD COLUMN IF NOT EXISTS display_name TEXT;
          UPDATE accounts SET display_name = username WHERE display_name IS NULL;
    """
    if node.get("renameType") in ("OBJECT_TABLE", "OBJECT_COLUMN"):
        what = "column" if node["renameType"] == "OBJECT_COLUMN" else "table"
        old = node.get("subname") or relname(node.get("relation"))
        yield None, f"renames {what} {old} to {node.get('newname')}: running code still uses the old name"


@rule(
    "MK306",
    "warning",
    "drop only after no deployed version reads it, in its own migration",
    kinds=("DropStmt", "AlterTableStmt"),
)
def drop(ctx: Context, node: dict) -> Iterable[Hit]:
    """Dropping a table or column.

    Data is gone for good, and a running older version of the service may still read it.
    Bad: ALTER TABLE accounts DROP COLUMN IF EXISTS username;  -- while v1 still reads username
    Good: -- migration 3 of a rename, after every deployed version uses display_name
    """
    if node.get("removeType") in ("OBJECT_TABLE", "OBJECT_MATVIEW"):
        yield None, "drops a table"
    for cmd in alter_cmds(node):
        if cmd.get("subtype") == "AT_DropColumn":
            yield None, f"drops column {cmd.get('name')}"


@rule(
    "MK307",
    "error",
    "add a new column of the new type, backfill, switch the code, drop the old column",
    kinds=("AlterTableStmt",),
)
def change_type(ctx: Context, node: dict) -> Iterable[Hit]:
    """Changing a column's type.

    It rewrites the table under an exclusive lock and can break code that reads the old type.
    Bad: ALTER TABLE killmails ALTER COLUMN isk_value TYPE BIGINT;
    Good: ALTER TABLE killmails ADD COLUMN IF NOT EXISTS isk_value_big BIGINT;
    """
    if ctx.state.is_new(relname(node.get("relation"))):
        return
    for cmd in alter_cmds(node):
        if cmd.get("subtype") == "AT_AlterColumnType":
            yield None, f"changes the type of column {cmd.get('name')}"


@rule(
    "MK308",
    "warning",
    "add CHECK (col IS NOT NULL) NOT VALID, VALIDATE CONSTRAINT, then SET NOT NULL",
    kinds=("AlterTableStmt",),
)
def set_not_null(ctx: Context, node: dict) -> Iterable[Hit]:
    """SET NOT NULL on an existing column.

    It scans the whole table under an ACCESS EXCLUSIVE lock (no reads, no writes), and fails if any
    row is still NULL. Since PostgreSQL 12 a validated CHECK (col IS NOT NULL) lets it skip the scan:
    add the check NOT VALID, backfill, VALIDATE it (a lock that lets writes through), then SET NOT NULL.
    Bad: ALTER TABLE accounts ALTER COLUMN phone_number SET NOT NULL;
    Good: ALTER TABLE accounts ADD CONSTRAINT phone_not_null CHECK (phone_number IS NOT NULL) NOT VALID;
          -- a later migration: ALTER TABLE accounts VALIDATE CONSTRAINT phone_not_null;
          ALTER TABLE accounts ALTER COLUMN phone_number SET NOT NULL;
    """
    table = relname(node.get("relation"))
    if ctx.state.is_new(table):
        return
    for cmd in alter_cmds(node):
        if cmd.get("subtype") == "AT_SetNotNull" and not ctx.state.has_valid_not_null_check(table, cmd["name"]):
            yield None, f"SET NOT NULL on existing column {cmd.get('name')}"


@rule(
    "MK309",
    "warning",
    "CREATE INDEX IF NOT EXISTS idx_<table>_<column> ON <table>(<column>)",
    kinds=("CreateStmt", "AlterTableStmt"),
)
def foreign_key_without_index(ctx: Context, node: dict) -> Iterable[Hit]:
    """Foreign key without an index on its column.

    Deletes on the referenced table and joins scan the whole referencing table.
    Bad: CREATE TABLE IF NOT EXISTS characters (account_id UUID REFERENCES accounts(id));
    Good: … then CREATE INDEX IF NOT EXISTS idx_characters_account_id ON characters(account_id);
    """
    if "references" not in ctx.statement.text.lower():
        return
    table = bare(relname(node.get("relation")))
    for column, constraint in constraints(node):
        if constraint.get("contype") != "CONSTR_FOREIGN":
            continue
        columns = tuple(strings(constraint.get("fk_attrs"))) or ((column,) if column else ())
        if columns and not ctx.service.covers(table, columns):
            yield ctx.line_of(constraint.get("location")), f"foreign key on {table}({', '.join(columns)}) has no index"


@rule(
    "MK310",
    "warning",
    "write SET LOCAL (it ends with the migration's transaction), or RESET it before the file ends",
    kinds=("VariableSetStmt", "SelectStmt"),
)
def session_setting_outlives_migration(ctx: Context, node: dict) -> Iterable[Hit]:
    """A session setting that outlives the migration.

    A SET without LOCAL stays on the connection after the migration commits: the runner's next
    migrations, and the application's pooled connection in an in-process runner, inherit it.
    Bad: SET search_path TO billing, public;
    Good: SET LOCAL search_path TO billing, public;
    """
    for name, location, form in _session_settings(ctx.statement.kind, node):
        if not _reset_later(ctx, name):
            yield ctx.line_of(location), f"{form} lasts beyond this migration"


def _session_settings(kind: str, node: dict) -> Iterable[tuple[str, int | None, str]]:
    """(setting, location, how it was written) of each session-level change in a statement."""
    if kind == "VariableSetStmt":
        if node.get("kind") in ("VAR_SET_VALUE", "VAR_SET_CURRENT") and not node.get("is_local"):
            yield node.get("name", ""), None, f"SET {node.get('name', '')}"
        return
    for node_type, call in walk(node):
        args = call.get("args", [])
        if node_type != "FuncCall" or strings(call.get("funcname"))[-1:] != ["set_config"] or len(args) != 3:
            continue
        setting = args[0].get("A_Const", {}).get("sval", {}).get("sval")
        is_local = args[2].get("A_Const", {}).get("boolval", {}).get("boolval", False)
        if setting and "A_Const" in args[2] and not is_local:
            yield setting.lower(), call.get("location"), f"set_config('{setting}', …, false)"


def _reset_later(ctx: Context, name: str) -> bool:
    """Whether a later statement of the file resets `name` (RESET name, RESET ALL, SET name TO DEFAULT)."""
    later = ctx.migration.statements[ctx.migration.statements.index(ctx.statement) + 1 :]
    return any(
        s.kind == "VariableSetStmt"
        and (
            s.node.get("kind") == "VAR_RESET_ALL"
            or (s.node.get("kind") in ("VAR_RESET", "VAR_SET_DEFAULT") and s.node.get("name") == name)
        )
        for s in later
    )


UUID_OSSP = frozenset(
    {"uuid_generate_v1", "uuid_generate_v1mc", "uuid_generate_v3", "uuid_generate_v4", "uuid_generate_v5", "uuid_nil"}
    | {f"uuid_ns_{ns}" for ns in ("dns", "url", "oid", "x500")}
)
PGCRYPTO = frozenset(
    {"digest", "hmac", "crypt", "gen_salt", "encrypt", "decrypt", "encrypt_iv", "decrypt_iv", "gen_random_bytes"}
    | {"gen_random_uuid", "armor", "dearmor"}
)
# extension -> (its functions, the one that only generates a random UUID)
UUID_EXTENSIONS = {"uuid-ossp": (UUID_OSSP, "uuid_generate_v4"), "pgcrypto": (PGCRYPTO, "gen_random_uuid")}


@rule(
    "MK311",
    "warning",
    "use gen_random_uuid(), built into PostgreSQL 13 and later, and drop the CREATE EXTENSION",
    kinds=("CreateExtensionStmt",),
)
def extension_only_for_uuids(ctx: Context, node: dict) -> Iterable[Hit]:
    """An extension created only to generate UUIDs.

    uuid-ossp and pgcrypto are contrib modules: a server without them (a slim image, an embedded
    PostgreSQL) cannot run the migration, while gen_random_uuid() is built in. Only the service's
    migrations are read: if its application queries call the extension's other functions, ignore it.
    Bad: CREATE EXTENSION IF NOT EXISTS "uuid-ossp"; … DEFAULT uuid_generate_v4()
    Good: … DEFAULT gen_random_uuid()
    """
    extension = node.get("extname", "")
    if extension not in UUID_EXTENSIONS:
        return
    functions, random_uuid = UUID_EXTENSIONS[extension]
    used = {f for f in ctx.service.functions if f in functions or f.startswith("pgp_")}
    if extension == "uuid-ossp":
        used -= {"gen_random_uuid"}  # the built-in, not uuid-ossp's
    if used == {random_uuid}:
        yield None, f'"{extension}" serves only {random_uuid}() in this service; gen_random_uuid() is built in'
