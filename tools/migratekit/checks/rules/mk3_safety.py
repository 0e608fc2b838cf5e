"""MK3xx: the seed's DON'Ts, changes that lock, rewrite or break the running version of a service.

"Existing" means not created by this file (FileState.is_new): a table made by this migration is
empty and unused, so locking it is harmless; one an earlier migration of the service created, or one
the service never created, may hold rows and serve traffic.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from copy import copy
from functools import lru_cache, partial, wraps

from migratekit.checks.rule import Scope
from migratekit.checks.rule import rule as declare_rule
from migratekit.checks.sql.columns import type_key
from migratekit.checks.sql.context import Context, Hit
from migratekit.checks.sql.names import RELATION
from migratekit.checks.sql.tree import (
    alter_cmds,
    bare,
    constraints,
    expression,
    func_names,
    identifiers,
    plpgsql,
    relname,
    statement_tree,
    strings,
    walk,
    without_comments,
)

rule = partial(declare_rule, scope=Scope.STATEMENT)
Check = Callable[[Context, dict], Iterable[Hit]]


@lru_cache(maxsize=512)
def _block_statements(body: str) -> tuple[tuple[int, str, dict], ...]:
    """(line in the body, node type, tree) of each static SQL statement of a PL/pgSQL body, in the body's order;
    EXECUTE's text is built at run time and not read. Cached: every rule that looks inside DO blocks asks
    for the same body."""
    found: list[tuple[int, str, dict]] = []
    for node_type, element in walk(plpgsql(body) or []):
        if node_type == "PLpgSQL_stmt_execsql":
            parsed = statement_tree(element.get("sqlstmt", {}).get("PLpgSQL_expr", {}).get("query", ""))
            for statement in (parsed or {}).get("stmts", []):
                for kind, tree in statement.get("stmt", {}).items():
                    found.append((element.get("lineno", 0), kind, tree))
    return tuple(sorted(found, key=lambda item: item[0]))


def inside_do_blocks(*kinds: str) -> Callable[[Check], Check]:
    """The check also judges the statements of those node types inside a DO block's PL/pgSQL body.

    A DO block is how the seed guards what has no IF NOT EXISTS (MK212, MK213): the guard makes the
    statement safe to run twice, not safe to run against a table with rows, so the lock a statement takes
    is the same inside. A table the block creates is new to the statements after it. Findings are on the
    line of the statement in the body (PL/pgSQL counts the body's lines from the one its opening quote is
    on), or on the DO's where the body is not in the statement's text as written (a quoted string with
    doubled quotes); a DO block in another language is not read.
    """

    def wrap(check: Check) -> Check:
        @wraps(check)
        def judged(ctx: Context, node: dict) -> Iterable[Hit]:
            if ctx.statement.kind != "DoStmt":
                yield from check(ctx, node)
                return
            options = {
                o["DefElem"].get("defname"): o["DefElem"].get("arg", {}).get("String", {}).get("sval", "")
                for o in node.get("args", [])
                if "DefElem" in o
            }
            if options.get("language", "plpgsql").lower() != "plpgsql" or not options.get("as"):
                return
            state = copy(ctx.state)  # the tables the block creates before a statement are new to it
            state.created_tables = set(ctx.state.created_tables)
            inside = Context(ctx.migration, ctx.statement, state, ctx.service)
            body = options["as"]
            at = ctx.statement.text.find(body)
            opening = ctx.statement.line + ctx.statement.text.count("\n", 0, at)  # the body's first line
            for number, kind, inner in _block_statements(body):
                if kind in kinds:
                    line = opening + max(number, 1) - 1 if at >= 0 else None
                    yield from ((line, message) for _, message in check(inside, inner))
                if kind == "CreateStmt":
                    state.created(relname(inner.get("relation")), inner.get("if_not_exists", False))

        return judged

    return wrap


ENVIRONMENT_FUNCTIONS = {"current_database", "inet_server_addr", "inet_server_port"}
ENVIRONMENT_WORDS = ("current_database", "inet_server", "current_setting")
ENVIRONMENT_SETTINGS = ("env", "stage", "tier")  # current_setting('app.environment'), ('app.stage'), ...
ENVIRONMENT_TEXT = re.compile(  # only for a DO body that is not PL/pgSQL (plpython, plperl): no tree to read
    r"current_database\s*\(|inet_server_(?:addr|port)\s*\(|current_setting\s*\(\s*'[^']*(?:env|stage|tier)",
    re.IGNORECASE,
)
NOT_A_TEST = {"||", "+", "-", "*", "/", "%", "^"}  # operators that build a value (a name), not a comparison
CONDITIONS = {"BoolExpr", "CaseExpr", "NullTest", "BooleanTest"}


def _names_environment(text: str) -> bool:
    """Whether SQL text holds a word of an environment function: a cheap test before any tree is walked."""
    low = text.lower()
    return any(word in low for word in ENVIRONMENT_WORDS)


@rule(
    "MK301",
    "error",
    "keep migrations the same everywhere; use feature flags or app config instead",
    kinds=("*",),
    may_hit=_names_environment,
)
def environment_logic(ctx: Context, node: dict) -> Iterable[Hit]:
    """Environment-specific logic in a migration.

    Migrations run in dev, staging and production; a branch on the database or host name makes
    their schemas differ where nobody tests. Using the name is not a branch: GRANT … ON DATABASE or
    ALTER DATABASE built from current_database() in a DO block does the same everywhere.
    Bad: DO $$ BEGIN IF current_database() = 'production' THEN … END IF; END $$;
    Good: DO $$ BEGIN EXECUTE format('GRANT CONNECT ON DATABASE %I TO app_reader', current_database()); END $$;
    """
    if not _names_environment(ctx.statement.text):
        return  # a cheap text test first: the tree walk below is for the few statements that might match
    if ctx.statement.kind == "DoStmt":
        body = " ".join(
            n["arg"]["String"]["sval"] for t, n in walk(node) if t == "DefElem" and "String" in n.get("arg", {})
        )
        tree = plpgsql(body)
        if tree is None:
            found = ENVIRONMENT_TEXT.search(without_comments(body)) is not None  # a comment naming it is no branch
        else:
            found = _plpgsql_branches(tree)
    else:
        found = _branches(node)
    if found:
        yield None, "branches on the environment (database or server name, or an environment setting)"


def _environment_calls(tree: object) -> bool:
    """Whether `tree` calls a function that names the environment."""
    for node_type, call in walk(tree):
        if node_type != "FuncCall":
            continue
        name = (strings(call.get("funcname")) or [""])[-1]
        if name in ENVIRONMENT_FUNCTIONS:
            return True
        if name == "current_setting":
            setting = [a.get("A_Const", {}).get("sval", {}).get("sval", "") for a in call.get("args", [])[:1]]
            if setting and any(word in setting[0].lower() for word in ENVIRONMENT_SETTINGS):
                return True
    return False


def _branches(tree: object) -> bool:
    """Whether an environment call is tested: compared, matched, or in a CASE or a boolean expression."""
    for node_type, element in walk(tree):
        tested = node_type in CONDITIONS or (
            node_type == "A_Expr"
            and (element.get("kind") != "AEXPR_OP" or not set(strings(element.get("name"))) <= NOT_A_TEST)
        )
        if tested and _environment_calls(element):
            return True
    return False


def _plpgsql_branches(tree: object, key: str = "") -> bool:
    """Whether a PL/pgSQL body branches on the environment: an IF, ELSIF, WHILE, EXIT WHEN or CASE WHEN
    condition that calls an environment function, or a query inside that tests one."""
    if isinstance(tree, list):
        return any(_plpgsql_branches(item, key) for item in tree)
    if not isinstance(tree, dict):
        return False
    if "PLpgSQL_expr" in tree:
        query = tree["PLpgSQL_expr"].get("query", "")
        if not any(word in query.lower() for word in ENVIRONMENT_WORDS):
            return False
        parsed = expression(query) if tree["PLpgSQL_expr"].get("parseMode") else statement_tree(query)
        if key in ("cond", "expr", "t_expr"):  # the condition of a branch
            return _environment_calls(parsed)
        return _branches(parsed)
    return any(_plpgsql_branches(value, name) for name, value in tree.items())


@rule(
    "MK302",
    "error",
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS …, in a file of its own (it runs outside a transaction)",
    kinds=("IndexStmt", "DoStmt"),
    squawk=("require-concurrent-index-creation",),
)
@inside_do_blocks("IndexStmt")
def index_without_concurrently(ctx: Context, node: dict) -> Iterable[Hit]:
    """Index on an existing table built without CONCURRENTLY.

    A plain CREATE INDEX blocks every write to the table until it finishes, inside a DO block too
    (where CONCURRENTLY cannot run). A table or materialized view this file created is used by
    nothing yet.
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
    kinds=("IndexStmt", "DropStmt", "ReindexStmt", "AlterTableStmt", "DoStmt"),
    squawk=("ban-concurrent-index-creation-in-transaction",),
)
@inside_do_blocks("IndexStmt", "DropStmt", "ReindexStmt", "AlterTableStmt")
def concurrently_in_transaction(ctx: Context, node: dict) -> Iterable[Hit]:
    """CONCURRENTLY inside a transaction block.

    PostgreSQL refuses it: "CREATE INDEX CONCURRENTLY cannot run inside a transaction block". A DO
    block's body runs in one too, whatever guards it.
    Bad: BEGIN; CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t(a); COMMIT;
    Good: CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t(a);
    """
    in_block = ctx.statement.kind == "DoStmt"
    if not (ctx.state.in_transaction or in_block):
        return  # (asked first: most statements run outside a BEGIN of the file's own)
    concurrent = (
        node.get("concurrent")
        or any(p.get("DefElem", {}).get("defname") == "concurrently" for p in node.get("params", []))
        or any(c.get("def", {}).get("PartitionCmd", {}).get("concurrent") for c in alter_cmds(node))
    )
    if concurrent:
        yield None, "CONCURRENTLY inside a DO block, which runs as one transaction" if in_block else None


FILLED = {"CONSTR_DEFAULT", "CONSTR_IDENTITY", "CONSTR_GENERATED"}  # a new column's existing rows get a value


@rule(
    "MK304",
    "error",
    "add the column nullable (or with a DEFAULT), backfill, then SET NOT NULL in a later migration",
    kinds=("AlterTableStmt",),
    squawk=("adding-required-field",),
)
def not_null_without_default(ctx: Context, node: dict) -> Iterable[Hit]:
    """NOT NULL column added to an existing table without a default.

    It fails on a table with rows, and the running version of the service does not write it. A
    DEFAULT, an identity, a serial (its implicit DEFAULT nextval()) or a generated column fills the
    existing rows (MK315 and MK316 say what that costs).
    Bad: ALTER TABLE accounts ADD COLUMN IF NOT EXISTS phone_number TEXT NOT NULL;
    Good: ALTER TABLE accounts ADD COLUMN IF NOT EXISTS phone_number TEXT;
    """
    if ctx.state.is_new(relname(node.get("relation"))):
        return
    for cmd in alter_cmds(node):
        column = cmd.get("def", {}).get("ColumnDef", {}) if cmd.get("subtype") == "AT_AddColumn" else {}
        types = {c.get("Constraint", {}).get("contype") for c in column.get("constraints", [])}
        type_name = strings(column.get("typeName", {}).get("names"))[-1:]
        serial = bool(type_name) and type_name[0] in SERIAL  # smallserial … bigserial: DEFAULT nextval()
        if "CONSTR_NOTNULL" in types and not types & FILLED and not serial:
            yield ctx.line_of(column.get("location")), f"NOT NULL column {column.get('colname')} without a DEFAULT"


@rule(
    "MK305",
    "error",
    "add the new name, copy, switch the code, then drop the old one (multi-step rename)",
    kinds=("RenameStmt", "DoStmt"),
    squawk=("renaming-column", "renaming-table"),
)
@inside_do_blocks("RenameStmt")
def rename(ctx: Context, node: dict) -> Iterable[Hit]:
    """Renaming a table or column.

    The running version of the service still uses the old name until it is replaced. A table this
    file created (a copy built to be swapped in for the old one) is known to no running code. A DO
    block that checks first renames it all the same.
    Bad: ALTER TABLE accounts RENAME COLUMN username TO display_name;
    Good: ALTER TABLE accounts ADD COLUMN IF NOT EXISTS display_name TEXT;
          UPDATE accounts SET display_name = username WHERE display_name IS NULL;
    """
    if ctx.state.is_new(relname(node.get("relation"))):
        return  # this file created it: no running code knows the old name (a copy swapped in for a table)
    if node.get("renameType") == "OBJECT_TABLE" and _name_given_back(ctx, relname(node.get("relation"))):
        return
    if node.get("renameType") in ("OBJECT_TABLE", "OBJECT_COLUMN"):
        what = "column" if node["renameType"] == "OBJECT_COLUMN" else "table"
        old = node.get("subname") or relname(node.get("relation"))
        yield None, f"renames {what} {old} to {node.get('newname')}: running code still uses the old name"


def _cascaded(ctx: Context, node: dict) -> Iterable[Hit]:
    """What DROP TYPE, DOMAIN or SCHEMA … CASCADE takes with it that the service's earlier migrations filled: the
    columns of that type (their data with them), the schema's tables."""
    kind, objects = node.get("removeType"), node.get("objects", [])
    if kind in ("OBJECT_TYPE", "OBJECT_DOMAIN"):
        dropped = {(strings(o.get("TypeName", {}).get("names")) or [""])[-1] for o in objects}
        history = ctx.service.column_types
        columns = sorted(
            f"{table}.{column}"
            for table, column in history.given
            if not ctx.state.is_new(table)
            and (before := history.before(ctx.migration, ctx.statement, table, column)) is not None
            and before[0] in dropped
        )
        if columns:
            what = "type" if kind == "OBJECT_TYPE" else "domain"
            yield (
                None,
                f"drops {what} {', '.join(sorted(dropped))} with CASCADE, and column {', '.join(columns)} with it",
            )
    elif kind == "OBJECT_SCHEMA":
        schemas = {o.get("String", {}).get("sval", "") for o in objects}
        tables = sorted(
            name
            for (space, name), what in ctx.state.objects.items()
            if space == RELATION and what == "table" and name.split(".", 1)[0] in schemas and not ctx.state.is_new(name)
        )
        if tables:
            yield None, f"drops schema {', '.join(sorted(schemas))} with CASCADE, and table {', '.join(tables)} with it"


def _name_given_back(ctx: Context, table: str) -> bool:
    """A table renamed away whose name a later statement of the same transaction creates again (the old table
    kept aside, a new one in its place, the rows copied over): running code finds a table of that name
    throughout. Not where the file's statements commit one by one, as between the two there is none."""
    if not ctx.state.one_transaction or ctx.statement.kind == "DoStmt":
        return False
    name, statements = bare(table), ctx.migration.statements
    later = statements[statements.index(ctx.statement) + 1 :]
    return any(s.kind == "CreateStmt" and bare(relname(s.node.get("relation"))) == name for s in later)


@rule(
    "MK306",
    "warning",
    "drop only after no deployed version reads it, in its own migration",
    kinds=("DropStmt", "AlterTableStmt", "DoStmt"),
    squawk=("ban-drop-column", "ban-drop-table"),
)
@inside_do_blocks("DropStmt", "AlterTableStmt")
def drop(ctx: Context, node: dict) -> Iterable[Hit]:
    """Dropping a table or column.

    Data is gone for good, and a running older version of the service may still read it. A table
    this file created (a scratch or temporary table) held nothing before it and nothing reads it. A
    DO block that checks first drops it all the same. DROP TYPE, DOMAIN or SCHEMA … CASCADE drops the
    columns of that type, or the schema's tables, without naming them.
    Bad: ALTER TABLE accounts DROP COLUMN IF EXISTS username;  -- while v1 still reads username
    Good: -- migration 3 of a rename, after every deployed version uses display_name
    """
    if node.get("removeType") in ("OBJECT_TABLE", "OBJECT_MATVIEW"):
        names = [".".join(strings(obj.get("List", {}).get("items"))) for obj in node.get("objects", [])]
        if not all(ctx.state.is_new(name) for name in names):
            yield None, "drops a table"
    if node.get("behavior") == "DROP_CASCADE":
        yield from _cascaded(ctx, node)
    if "relation" in node and ctx.state.is_new(relname(node.get("relation"))):  # ALTER TABLE of a new table
        return
    for cmd in alter_cmds(node):
        if cmd.get("subtype") == "AT_DropColumn":
            yield None, f"drops column {cmd.get('name')}"


@rule(
    "MK307",
    "error",
    "add a new column of the new type, backfill, switch the code, drop the old column",
    kinds=("AlterTableStmt", "DoStmt"),
    squawk=("changing-column-type",),
)
@inside_do_blocks("AlterTableStmt")
def change_type(ctx: Context, node: dict) -> Iterable[Hit]:
    """Changing a column's type.

    It rewrites the table under an exclusive lock and can break code that reads the old type. Only
    the catalogue changes, with no rewrite and nothing for readers to notice, when the column keeps
    its type (a tool restating it), a varchar limit is raised or dropped (varchar to text and back),
    or a numeric's precision is raised at the same scale, without a USING that computes new values.
    A DO block that checks first rewrites the table all the same.
    Bad: ALTER TABLE killmails ALTER COLUMN isk_value TYPE BIGINT;
    Good: ALTER TABLE killmails ADD COLUMN IF NOT EXISTS isk_value_big BIGINT;
    """
    table = relname(node.get("relation"))
    if ctx.state.is_new(table):
        return
    for cmd in alter_cmds(node):
        if cmd.get("subtype") == "AT_AlterColumnType" and not _catalogue_only(ctx, table, cmd):
            yield None, f"changes the type of column {cmd.get('name')}"


def _catalogue_only(ctx: Context, table: str, cmd: dict) -> bool:
    """Whether ALTER COLUMN … TYPE keeps every stored value as it is, so PostgreSQL skips the rewrite (its
    binary-coercible casts, and the length and precision checks that only loosen): judged against the type
    the service's migrations last gave the column; an unknown old type is a rewrite."""
    column = cmd.get("def", {}).get("ColumnDef", {})
    using = column.get("raw_default")
    if using is not None and strings(using.get("ColumnRef", {}).get("fields")) != [cmd.get("name")]:
        return False  # USING computes the values anew (USING the column itself does not)
    old = ctx.service.column_types.before(ctx.migration, ctx.statement, table, cmd.get("name", ""))
    if old is None or "typeName" not in column:
        return False
    (was, was_mods, was_array), (new, mods, array) = old, type_key(column["typeName"])
    if was_array != array:
        return False
    if (was, was_mods) == (new, mods):
        return True
    if {was, new} <= {"varchar", "text"}:  # text is varchar without a limit; a limit may rise or go
        return not mods or (was == "varchar" and bool(was_mods) and mods[0] >= was_mods[0])
    if was == new == "numeric" and was_mods:  # numeric(p) is numeric(p, 0); unconstrained takes any value
        if not mods:
            return True
        (precision, scale), (new_precision, new_scale) = (*was_mods, 0)[:2], (*mods, 0)[:2]
        return new_scale == scale and new_precision >= precision
    return False


@rule(
    "MK308",
    "warning",
    "add CHECK (col IS NOT NULL) NOT VALID, VALIDATE CONSTRAINT, then SET NOT NULL",
    kinds=("AlterTableStmt", "DoStmt"),
    squawk=("adding-not-nullable-field",),
)
@inside_do_blocks("AlterTableStmt")
def set_not_null(ctx: Context, node: dict) -> Iterable[Hit]:
    """SET NOT NULL on an existing column.

    It scans the whole table under an ACCESS EXCLUSIVE lock (no reads, no writes), and fails if any
    row is still NULL. Since PostgreSQL 12 a validated CHECK (col IS NOT NULL) lets it skip the scan:
    add the check NOT VALID, backfill, VALIDATE it (a lock that lets writes through), then SET NOT NULL.
    A DO block that checks first scans all the same.
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


def _names_references(text: str) -> bool:
    return "references" in text.lower()


@rule(
    "MK309",
    "warning",
    "CREATE INDEX IF NOT EXISTS idx_<table>_<column> ON <table>(<column>)",
    kinds=("CreateStmt", "AlterTableStmt"),
    may_hit=_names_references,
)
def foreign_key_without_index(ctx: Context, node: dict) -> Iterable[Hit]:
    """Foreign key without an index on its column.

    Deletes on the referenced table and joins scan the whole referencing table.
    Bad: CREATE TABLE IF NOT EXISTS characters (account_id UUID REFERENCES accounts(id));
    Good: … then CREATE INDEX IF NOT EXISTS idx_characters_account_id ON characters(account_id);
    """
    if not _names_references(ctx.statement.text):
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
    used = set(ctx.service.calls(frozenset(functions), "pgp_"))
    if extension == "uuid-ossp":
        used -= {"gen_random_uuid"}  # the built-in, not uuid-ossp's
    if used == {random_uuid}:
        yield None, f'"{extension}" serves only {random_uuid}() in this service; gen_random_uuid() is built in'


SCANNED = {"CONSTR_FOREIGN": "FOREIGN KEY", "CONSTR_CHECK": "CHECK"}  # validated by a scan of the table


@rule(
    "MK312",
    "error",
    "ADD CONSTRAINT … NOT VALID now, ALTER TABLE … VALIDATE CONSTRAINT … in a later migration",
    kinds=("AlterTableStmt", "DoStmt"),
    squawk=("adding-foreign-key-constraint", "constraint-missing-not-valid"),
)
@inside_do_blocks("AlterTableStmt")
def validated_constraint(ctx: Context, node: dict) -> Iterable[Hit]:
    """A FOREIGN KEY or CHECK added to an existing table and validated at once.

    Validating scans every row while the ALTER holds its lock: ACCESS EXCLUSIVE for a CHECK (no reads,
    no writes), SHARE ROW EXCLUSIVE on both tables for a FOREIGN KEY (no writes to either). NOT VALID
    adds it instantly and enforces it on new rows; VALIDATE CONSTRAINT later scans under SHARE UPDATE
    EXCLUSIVE, which lets reads and writes through. VALIDATE in the transaction that added it NOT
    VALID gains nothing: the ADD's lock is held until the end, and a DO block that guards the ADD
    (MK213) takes the same lock. (Every supported PostgreSQL version.)
    Bad: ALTER TABLE characters ADD CONSTRAINT characters_account_fk FOREIGN KEY (account_id) REFERENCES accounts (id);
    Good: ALTER TABLE characters ADD CONSTRAINT characters_account_fk FOREIGN KEY (account_id)
          REFERENCES accounts (id) NOT VALID;
          -- a later migration: ALTER TABLE characters VALIDATE CONSTRAINT characters_account_fk;
    """
    table = bare(relname(node.get("relation")))
    if ctx.state.is_new(table):
        return
    for cmd in alter_cmds(node):
        subtype = cmd.get("subtype")
        if subtype == "AT_ValidateConstraint":
            added = ctx.state.not_valid.get((table, cmd.get("name", "")))
            if added is not None and added == ctx.state.transaction:
                yield None, f"VALIDATE CONSTRAINT {cmd.get('name')} in the transaction that added it NOT VALID"
            continue
        if subtype == "AT_AddColumn":
            column = cmd.get("def", {}).get("ColumnDef", {})
            inline = [c.get("Constraint", {}) for c in column.get("constraints", [])]
            for constraint in inline:
                if constraint.get("contype") in SCANNED:
                    what = SCANNED[constraint["contype"]]
                    yield (
                        ctx.line_of(constraint.get("location")),
                        f"{what} on new column {column.get('colname')} of existing table {table} is validated "
                        "by a scan under lock; add the column, then the constraint NOT VALID",
                    )
        elif subtype == "AT_AddConstraint":
            constraint = cmd.get("def", {}).get("Constraint", {})
            if constraint.get("contype") in SCANNED and not constraint.get("skip_validation"):
                what = SCANNED[constraint["contype"]]
                yield (
                    ctx.line_of(constraint.get("location")),
                    f"{what} {constraint.get('conname') or '(unnamed)'} on existing table {table} without NOT VALID",
                )


INDEXED = {"CONSTR_PRIMARY": "PRIMARY KEY", "CONSTR_UNIQUE": "UNIQUE", "CONSTR_EXCLUSION": "EXCLUDE"}


@rule(
    "MK313",
    "error",
    "CREATE UNIQUE INDEX CONCURRENTLY in a file of its own, then ADD CONSTRAINT … UNIQUE (or PRIMARY KEY) USING INDEX",
    kinds=("AlterTableStmt", "DoStmt"),
    squawk=("adding-serial-primary-key-field", "disallowed-unique-constraint"),
)
@inside_do_blocks("AlterTableStmt")
def constraint_builds_index(ctx: Context, node: dict) -> Iterable[Hit]:
    """PRIMARY KEY or UNIQUE added to an existing table without USING INDEX.

    The constraint builds its index while the ALTER holds ACCESS EXCLUSIVE: no reads, no writes, for
    as long as the build takes (a PRIMARY KEY also scans for NULLs). An index built CONCURRENTLY first
    turns the constraint into a catalogue change. An EXCLUDE constraint has no USING INDEX form. A DO
    block that guards the ADD (MK213) builds the index all the same.
    Bad: ALTER TABLE accounts ADD CONSTRAINT accounts_email_key UNIQUE (email);
    Good: CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS accounts_email_idx ON accounts (email);
          -- a later migration:
          ALTER TABLE accounts ADD CONSTRAINT accounts_email_key UNIQUE USING INDEX accounts_email_idx;
    """
    table = bare(relname(node.get("relation")))
    if ctx.state.is_new(table):
        return
    for column, constraint in constraints(node):
        what = INDEXED.get(constraint.get("contype", ""))
        if what is None or constraint.get("indexname"):
            continue
        on = f" on new column {column}" if column else ""
        message = f"{what}{on} builds an index on existing table {table} under lock"
        yield ctx.line_of(constraint.get("location")), message


@rule(
    "MK314",
    "error",
    "DROP INDEX CONCURRENTLY IF EXISTS …, in a file of its own (it runs outside a transaction)",
    kinds=("DropStmt", "DoStmt"),
    squawk=("require-concurrent-index-deletion",),
)
@inside_do_blocks("DropStmt")
def drop_index_without_concurrently(ctx: Context, node: dict) -> Iterable[Hit]:
    """DROP INDEX without CONCURRENTLY.

    A plain DROP INDEX takes ACCESS EXCLUSIVE on the index's table: it waits behind every running
    query on the table, and every query queues behind it. CONCURRENTLY waits for them instead
    (one index per statement, no CASCADE), which a DO block cannot run. An index this file created
    is not in use yet.
    Bad: DROP INDEX IF EXISTS idx_killmails_ship;
    Good: DROP INDEX CONCURRENTLY IF EXISTS idx_killmails_ship;
    """
    if node.get("removeType") != "OBJECT_INDEX" or node.get("concurrent"):
        return
    for obj in node.get("objects", []):
        name = ".".join(strings(obj.get("List", {}).get("items")))
        if bare(name) not in ctx.state.created_indexes:
            yield None, f"DROP INDEX {name} without CONCURRENTLY blocks reads and writes of its table"


VOLATILE = frozenset(
    {"random", "random_normal", "setseed", "clock_timestamp", "timeofday", "nextval", "currval", "lastval"}
    | {"gen_random_uuid", "uuidv4", "uuidv7", "gen_random_bytes"}
    | {"uuid_generate_v1", "uuid_generate_v1mc", "uuid_generate_v4"}
)  # built in or contrib, VOLATILE in pg_proc; now(), current_timestamp and statement_timestamp() are STABLE
SERIAL = frozenset({"smallserial", "serial", "bigserial", "serial2", "serial4", "serial8"})


@rule(
    "MK315",
    "error",
    "add the column without a default (or with a constant one), SET DEFAULT, backfill in batches, then SET NOT NULL",
    kinds=("AlterTableStmt",),
    squawk=("adding-field-with-default",),
)
def volatile_default(ctx: Context, node: dict) -> Iterable[Hit]:
    """A column added to an existing table whose every row gets its own value: a table rewrite.

    A VOLATILE default (gen_random_uuid(), clock_timestamp(), random(), nextval() of a serial), an
    identity column, or a function the service creates without IMMUTABLE or STABLE is computed for
    each existing row: PostgreSQL rewrites the table under ACCESS EXCLUSIVE (no reads, no writes).
    Since PostgreSQL 11 a constant or STABLE default (now(), 'pending', 0) is stored once and costs
    nothing; before 11 every DEFAULT rewrote the table.
    Bad: ALTER TABLE accounts ADD COLUMN IF NOT EXISTS public_id uuid DEFAULT gen_random_uuid();
    Good: ALTER TABLE accounts ADD COLUMN IF NOT EXISTS public_id uuid;
          ALTER TABLE accounts ALTER COLUMN public_id SET DEFAULT gen_random_uuid();
          UPDATE accounts SET public_id = gen_random_uuid() WHERE public_id IS NULL;  -- in batches
    """
    table = bare(relname(node.get("relation")))
    if ctx.state.is_new(table):
        return
    for cmd in alter_cmds(node):
        column = cmd.get("def", {}).get("ColumnDef", {}) if cmd.get("subtype") == "AT_AddColumn" else {}
        if not column:
            continue
        name, line = column.get("colname"), ctx.line_of(column.get("location"))
        type_name = strings(column.get("typeName", {}).get("names"))[-1:]
        if type_name and type_name[0] in SERIAL:
            yield line, f"{type_name[0]} column {name} fills every row of existing table {table} from a sequence"
            continue
        for c in column.get("constraints", []):
            constraint = c.get("Constraint", {})
            if constraint.get("contype") == "CONSTR_IDENTITY":
                yield line, f"identity column {name} numbers every row of existing table {table}"
            elif constraint.get("contype") == "CONSTR_DEFAULT":
                volatile = sorted(func_names(constraint) & (VOLATILE | ctx.service.volatile_functions))
                if volatile:
                    yield line, f"DEFAULT {volatile[0]}() on new column {name} rewrites existing table {table}"


@rule(
    "MK316",
    "error",
    "add a plain column, backfill it in batches, keep it current with a trigger (PostgreSQL 18+: make it VIRTUAL)",
    kinds=("AlterTableStmt",),
    squawk=("adding-field-with-default",),
)
def stored_generated_column(ctx: Context, node: dict) -> Iterable[Hit]:
    """A GENERATED … STORED column added to an existing table: a table rewrite.

    PostgreSQL computes the expression for every existing row and rewrites the table under ACCESS
    EXCLUSIVE (no reads, no writes) for as long as that takes. A VIRTUAL generated column (PostgreSQL
    18 and later) is computed on read and adds nothing to the table.
    Bad: ALTER TABLE invoices ADD COLUMN IF NOT EXISTS total bigint GENERATED ALWAYS AS (net + tax) STORED;
    Good: ALTER TABLE invoices ADD COLUMN IF NOT EXISTS total bigint;
          -- then a BEFORE INSERT OR UPDATE trigger sets NEW.total, and a batched UPDATE backfills it
    """
    table = bare(relname(node.get("relation")))
    if ctx.state.is_new(table):
        return
    for cmd in alter_cmds(node):
        column = cmd.get("def", {}).get("ColumnDef", {}) if cmd.get("subtype") == "AT_AddColumn" else {}
        for c in column.get("constraints", []):
            constraint = c.get("Constraint", {})
            if constraint.get("contype") == "CONSTR_GENERATED" and constraint.get("generated_kind", "s") == "s":
                yield (
                    ctx.line_of(column.get("location")),
                    f"stored generated column {column.get('colname')} rewrites existing table {table}",
                )


def _option(options: list[dict] | None, name: str) -> bool:
    """Whether a statement's option list (VACUUM, REINDEX, CLUSTER) turns `name` on: `FULL`, `FULL true`."""
    for option in options or []:
        element = option.get("DefElem", {})
        if element.get("defname") == name:
            value = element.get("arg", {}).get("String", {}).get("sval", "true").lower()
            return value not in ("false", "off", "0")
    return False


@rule(
    "MK317",
    "error",
    "REINDEX … CONCURRENTLY (PostgreSQL 12+), in a file of its own (it runs outside a transaction)",
    kinds=("ReindexStmt",),
    squawk=("require-concurrent-reindex",),
)
def reindex_without_concurrently(ctx: Context, node: dict) -> Iterable[Hit]:
    """REINDEX without CONCURRENTLY.

    A plain REINDEX blocks writes to the table while it rebuilds, and holds ACCESS EXCLUSIVE on each
    index it rebuilds, so the queries that would use the index wait too. CONCURRENTLY (PostgreSQL 12
    and later) builds a replacement beside it and swaps it in; before 12 the way is CREATE INDEX
    CONCURRENTLY of a copy, then DROP INDEX CONCURRENTLY of the old one.
    Bad: REINDEX INDEX idx_killmails_ship;
    Good: REINDEX INDEX CONCURRENTLY idx_killmails_ship;
    """
    if _option(node.get("params"), "concurrently"):
        return
    kind = node.get("kind", "").removeprefix("REINDEX_OBJECT_")
    name = relname(node.get("relation")) or node.get("name", "")
    if kind == "TABLE" and ctx.state.is_new(name):
        return
    if kind == "INDEX" and bare(name) in ctx.state.created_indexes:
        return
    yield None, f"REINDEX {kind} {name} without CONCURRENTLY blocks writes while it rebuilds".replace("  ", " ")


@rule(
    "MK318",
    "error",
    "ALTER TABLE … DETACH PARTITION … CONCURRENTLY (PostgreSQL 14+), in a file of its own",
    kinds=("AlterTableStmt",),
    squawk=("require-concurrent-partition-detach",),
)
def detach_without_concurrently(ctx: Context, node: dict) -> Iterable[Hit]:
    """DETACH PARTITION without CONCURRENTLY.

    A plain DETACH takes ACCESS EXCLUSIVE on the partitioned table: every read and write of every
    partition waits. Since PostgreSQL 14, CONCURRENTLY needs only SHARE UPDATE EXCLUSIVE on the
    parent (it cannot run in a transaction; if it is interrupted, finish it with DETACH … FINALIZE).
    Bad: ALTER TABLE events DETACH PARTITION events_2023;
    Good: ALTER TABLE events DETACH PARTITION events_2023 CONCURRENTLY;
    """
    table = relname(node.get("relation"))
    if ctx.state.is_new(table):
        return
    for cmd in alter_cmds(node):
        partition = cmd.get("def", {}).get("PartitionCmd", {})
        if cmd.get("subtype") == "AT_DetachPartition" and not partition.get("concurrent"):
            yield None, f"DETACH PARTITION {relname(partition.get('name'))} locks every partition of {bare(table)}"


@rule(
    "MK319",
    "error",
    "TRUNCATE exactly the tables meant, by name, without CASCADE",
    kinds=("TruncateStmt",),
    squawk=("ban-truncate-cascade",),
)
def truncate_cascade(ctx: Context, node: dict) -> Iterable[Hit]:
    """TRUNCATE … CASCADE.

    CASCADE also empties every table with a foreign key to the ones named, and those that reference
    them in turn: tables nobody listed lose their rows, including tables another migration or another
    service added later.
    Bad: TRUNCATE accounts CASCADE;
    Good: TRUNCATE sessions, accounts;
    """
    if node.get("behavior") == "DROP_CASCADE":
        names = ", ".join(relname(r.get("RangeVar")) for r in node.get("relations", []))
        yield None, f"TRUNCATE {names} CASCADE empties every table that references them"


@rule(
    "MK320",
    "warning",
    "keep the column NOT NULL (a marker value for none), or add a new nullable column and move readers to it",
    kinds=("AlterTableStmt",),
    squawk=("ban-drop-not-null",),
)
def drop_not_null(ctx: Context, node: dict) -> Iterable[Hit]:
    """DROP NOT NULL on an existing column.

    The deployed code (and PL/pgSQL functions, views, reports) was written against a column that is
    never NULL; the first NULL row breaks whatever reads it without a check.
    Bad: ALTER TABLE accounts ALTER COLUMN email DROP NOT NULL;
    Good: ALTER TABLE accounts ADD COLUMN IF NOT EXISTS backup_email TEXT;
    """
    if ctx.state.is_new(relname(node.get("relation"))):
        return
    for cmd in alter_cmds(node):
        if cmd.get("subtype") == "AT_DropNotNull":
            yield None, f"DROP NOT NULL on existing column {cmd.get('name')}: readers expect a value"


@rule(
    "MK321",
    "error",
    "drop databases by hand, after a backup, never from a migration",
    kinds=("DropdbStmt",),
    squawk=("ban-drop-database",),
)
def drop_database(ctx: Context, node: dict) -> Iterable[Hit]:
    """DROP DATABASE in a migration.

    Every table and row of the database is gone, in every environment the migration reaches, and it
    cannot run in a transaction, so nothing rolls it back.
    Bad: DROP DATABASE IF EXISTS legacy_reports;
    Good: -- a runbook step, run by hand after pg_dump legacy_reports
    """
    yield None, f"DROP DATABASE {node.get('dbname', '')} destroys every table and row in it"


@rule(
    "MK322",
    "error",
    "use pg_repack (or, PostgreSQL 19+, REPACK (CONCURRENTLY)), outside the migrations",
    kinds=("VacuumStmt", "ClusterStmt"),
    squawk=("prefer-repack",),
)
def vacuum_full_or_cluster(ctx: Context, node: dict) -> Iterable[Hit]:
    """VACUUM FULL or CLUSTER in a migration.

    Both rewrite the table under ACCESS EXCLUSIVE: no reads, no writes, for as long as copying the
    whole table takes. pg_repack does the same online; PostgreSQL 19 adds REPACK (CONCURRENTLY).
    Bad: VACUUM FULL killmails;
    Good: VACUUM (ANALYZE) killmails;
    """
    if ctx.statement.kind == "VacuumStmt":
        if not node.get("is_vacuumcmd") or not _option(node.get("options"), "full"):
            return
        tables = [relname(r.get("VacuumRelation", {}).get("relation")) for r in node.get("rels", [])]
        what = "VACUUM FULL"
    else:
        tables = [relname(node.get("relation"))] if node.get("relation") else []
        what = "CLUSTER"
    if not tables:
        yield None, f"{what} of every table blocks reads and writes of each while it is rewritten"
    for table in tables:
        if not ctx.state.is_new(table):
            yield None, f"{what} {table} blocks its reads and writes while it is rewritten"


@rule(
    "MK323",
    "error",
    "put the CHECK on the columns that use the domain (ADD CONSTRAINT … NOT VALID, VALIDATE later)",
    kinds=("AlterDomainStmt",),
    squawk=("ban-alter-domain-with-add-constraint",),
)
def alter_domain_add_constraint(ctx: Context, node: dict) -> Iterable[Hit]:
    """ALTER DOMAIN … ADD CONSTRAINT on an existing domain.

    PostgreSQL checks the new constraint against every column of every table that uses the domain,
    scanning each under a lock that blocks its writes, and a later change of the domain's type or
    constraint can rewrite them all. A constraint on the columns themselves can be added NOT VALID and
    validated without blocking writes. A domain this file created is used by nothing yet.
    Bad: ALTER DOMAIN email_address ADD CONSTRAINT email_has_at CHECK (VALUE LIKE '%@%');
    Good: ALTER TABLE accounts ADD CONSTRAINT accounts_email_has_at CHECK (email LIKE '%@%') NOT VALID;
    """
    if node.get("subtype") != "C":
        return
    domain = ".".join(strings(node.get("typeName")))
    if bare(domain) not in ctx.state.created_domains:
        name = node.get("def", {}).get("Constraint", {}).get("conname") or "(unnamed)"
        yield None, f"ALTER DOMAIN {domain} ADD CONSTRAINT {name} checks every column that uses the domain"


@rule(
    "MK324",
    "warning",
    "create the domain without a constraint and put the CHECK on the table's columns",
    kinds=("CreateDomainStmt",),
    squawk=("ban-create-domain-with-constraint",),
)
def create_domain_with_constraint(ctx: Context, node: dict) -> Iterable[Hit]:
    """CREATE DOMAIN with a CHECK (or NOT NULL) constraint.

    Every later change of that constraint revalidates every column of every table that uses the
    domain, under locks that block writes (MK323), and PostgreSQL may rewrite the tables when a column
    is converted to it. A constraint on the columns can be changed one table at a time, NOT VALID first.
    Bad: CREATE DOMAIN email_address AS text CHECK (VALUE LIKE '%@%');
    Good: CREATE DOMAIN email_address AS text;
    """
    kinds = {c.get("Constraint", {}).get("contype") for c in node.get("constraints", [])}
    if kinds & {"CONSTR_CHECK", "CONSTR_NOTNULL"}:
        domain = ".".join(strings(node.get("domainname")))
        yield None, f"domain {domain} carries a constraint: changing it later locks every table that uses it"


def _adds_value(text: str) -> bool:
    """Whether SQL text may hold an ALTER TYPE … ADD VALUE (the enum values MK325 follows are the file's own)."""
    low = text.lower()
    return "value" in low and "add" in low and "alter" in low and "type" in low


@rule(
    "MK325",
    "error",
    "COMMIT after ALTER TYPE … ADD VALUE, and use the value in a later transaction (or a later migration)",
    kinds=("*",),
    may_hit=_adds_value,
)
def new_enum_value_used_before_commit(ctx: Context, node: dict) -> Iterable[Hit]:
    """An enum value used in the transaction that added it.

    PostgreSQL refuses it: "unsafe use of new value … New enum values must be committed before they
    can be used" (PostgreSQL 12 and later; before 12, ALTER TYPE … ADD VALUE cannot run in a
    transaction block at all). The runner gives a file with ADD VALUE a transaction per statement;
    a BEGIN … COMMIT of the file's own puts them back in one.
    Bad: BEGIN; ALTER TYPE order_status ADD VALUE 'refunded'; UPDATE orders SET status = 'refunded' WHERE …; COMMIT;
    Good: ALTER TYPE order_status ADD VALUE IF NOT EXISTS 'refunded';
          UPDATE orders SET status = 'refunded' WHERE refunded_at IS NOT NULL;
    """
    added = ctx.state.added_enum_values
    if not added or ctx.statement.kind == "AlterEnumStmt":
        return
    current = {value for value, transaction in added.items() if transaction == ctx.state.transaction}
    if not current:
        return
    used = {
        literal["sval"]["sval"]
        for t, literal in walk(node)
        if t == "A_Const" and literal.get("sval", {}).get("sval") in current
    }
    for value in sorted(used):
        yield None, f"uses enum value '{value}' before the transaction that added it commits"


@rule(
    "MK326",
    "warning",
    "say where it goes: ALTER TYPE … ADD VALUE IF NOT EXISTS 'new' BEFORE 'existing' (or AFTER)",
    kinds=("AlterEnumStmt",),
    squawk=("require-enum-value-ordering",),
)
def enum_value_without_position(ctx: Context, node: dict) -> Iterable[Hit]:
    """ALTER TYPE … ADD VALUE without BEFORE or AFTER.

    The value goes last, and an enum sorts by its declared order: ORDER BY status, status < 'approved'
    and every range query on it now place the new value after all the others, which is rarely where a
    workflow state or a severity belongs. If last is where it belongs, say AFTER the last one.
    Bad: ALTER TYPE paper_status ADD VALUE IF NOT EXISTS 'pending_review';
    Good: ALTER TYPE paper_status ADD VALUE IF NOT EXISTS 'pending_review' BEFORE 'approved';
    """
    if node.get("newVal") and not node.get("oldVal") and not node.get("newValNeighbor"):
        enum = ".".join(strings(node.get("typeName")))
        yield None, f"ADD VALUE '{node['newVal']}' to {enum} goes last in its sort order"


@rule(
    "MK327",
    "error",
    "name each column once",
    kinds=("CreateStmt", "UpdateStmt", "InsertStmt", "ViewStmt"),
    squawk=("ban-duplicate-column-assignments",),
)
def duplicate_column(ctx: Context, node: dict) -> Iterable[Hit]:
    """A column declared or assigned twice in one statement.

    It parses, and PostgreSQL rejects it when it runs: "column … specified more than once" (CREATE
    TABLE, CREATE VIEW's column list), "multiple assignments to same column" (UPDATE … SET, ON
    CONFLICT DO UPDATE SET, an INSERT's column list). Elements of one array or composite column
    (SET a[1] = …, a[2] = …) are not the same assignment.
    Bad: UPDATE accounts SET status = 'active', status = 'disabled' WHERE id = 1;
    Good: UPDATE accounts SET status = 'disabled' WHERE id = 1;
    """
    kind = ctx.statement.kind
    if kind == "CreateStmt":
        names = [e["ColumnDef"].get("colname", "") for e in node.get("tableElts", ()) if "ColumnDef" in e]
    elif kind == "ViewStmt":
        names = strings(node.get("aliases"))
    else:
        lists = node.get("targetList"), node.get("cols"), node.get("onConflictClause", {}).get("targetList")
        for targets in lists:
            if targets:
                yield from _twice(
                    [
                        t["ResTarget"].get("name", "")
                        for t in targets
                        if "ResTarget" in t and not t["ResTarget"].get("indirection")
                    ],
                    "assigned",
                )
        return
    yield from _twice(names, "declared")


def _twice(names: list[str], how: str) -> Iterable[Hit]:
    if len(set(names)) == len(names):
        return  # (each once: asked at C speed, as nearly every statement's names are)
    seen: set[str] = set()
    for name in names:
        if name in seen:
            yield None, f"column {name} is {how} twice"
        seen.add(name)


IDENTIFIER_BYTES = 63  # NAMEDATALEN - 1: PostgreSQL truncates a longer identifier, with only a NOTICE


def _has_long_word(text: str) -> bool:
    """Whether the text holds a run longer than an identifier may be between spaces, or between two quotes
    (any two in a row: true of a text when true of any part of it, so the audit asks it once of a file)."""
    parts = text.split()
    if '"' in text:
        parts += text.split('"')[1:-1]  # a quoted identifier may hold spaces
    if text.isascii():  # a character is a byte: lengths alone, at C speed
        return max(map(len, parts), default=0) > IDENTIFIER_BYTES
    return any(len(part.encode("utf-8")) > IDENTIFIER_BYTES for part in parts)


@rule(
    "MK328",
    "warning",
    "shorten the name to 63 bytes or fewer",
    kinds=("*",),
    squawk=("identifier-too-long",),
    may_hit=_has_long_word,
)
def identifier_too_long(ctx: Context, node: dict) -> Iterable[Hit]:
    """An identifier longer than 63 bytes.

    PostgreSQL truncates it to 63 bytes with only a NOTICE: the object is not called what the
    migration says, and two long names with the same first 63 bytes are one name, so the second
    CREATE … IF NOT EXISTS silently creates nothing (or the CREATE fails with "already exists").
    The parse tree holds the truncated name, so the statement's tokens (PostgreSQL's scanner) are read.
    Bad: CREATE INDEX IF NOT EXISTS idx_character_killmails_by_solar_system_and_ship_type_and_time_of_kill ON …;
    Good: CREATE INDEX IF NOT EXISTS idx_killmails_system_ship_time ON …;
    """
    if not _has_long_word(ctx.statement.text):
        return  # no token of the text is long enough: scanning is for the few statements that might hold one
    for name in dict.fromkeys(identifiers(ctx.statement.text)):
        size = len(name.encode("utf-8"))
        if size > IDENTIFIER_BYTES:
            cut = name.encode("utf-8")[:IDENTIFIER_BYTES].decode("utf-8", "ignore")
            yield None, f'"{name}" is {size} bytes; PostgreSQL truncates it to "{cut}"'


# The type advice: run only where workspace.yaml's type_advice is on (the audit leaves them out elsewhere).
TYPE_ADVICE = frozenset({"MK329", "MK330", "MK331", "MK332"})


def _typed_columns(ctx: Context, node: dict) -> Iterable[tuple[str, str, bool, int]]:
    """(column, type name, has a length, line) of each column a CREATE TABLE or an ALTER TABLE declares or
    retypes, when workspace.yaml's type_advice is on for the service."""
    if not ctx.service.type_advice or bare(relname(node.get("relation"))) == bare(ctx.service.tracking_table):
        return  # off, or the tracking table: its column types are the seed's contract
    columns = [e["ColumnDef"] for e in node.get("tableElts", []) if "ColumnDef" in e]
    for cmd in alter_cmds(node):
        if cmd.get("subtype") in ("AT_AddColumn", "AT_AlterColumnType"):
            column = cmd.get("def", {}).get("ColumnDef", {})
            columns.append({**column, "colname": column.get("colname") or cmd.get("name", "")})
    for column in columns:
        type_name = column.get("typeName", {})
        names = strings(type_name.get("names"))
        if names:
            yield (
                column.get("colname", ""),
                names[-1],
                bool(type_name.get("typmods")),
                ctx.line_of(column.get("location")),
            )


@rule(
    "MK329",
    "warning",
    "use text, with a CHECK (length(col) <= n) if the limit matters",
    kinds=("CreateStmt", "AlterTableStmt"),
    squawk=("prefer-text-field", "ban-char-field"),
)
def length_limited_text(ctx: Context, node: dict) -> Iterable[Hit]:
    """A char(n) or varchar(n) column.

    char(n) pads with spaces and compares oddly. A varchar(n) limit is a migration each time it moves:
    raising it is free since PostgreSQL 9.2, lowering it rewrites the table under ACCESS EXCLUSIVE.
    text costs the same to store, and a CHECK on its length can be replaced NOT VALID, without blocking.
    This is type advice, on where workspace.yaml says type_advice: true (defaults: or a service's entry).
    Bad: CREATE TABLE IF NOT EXISTS accounts (id bigint, email varchar(255));
    Good: CREATE TABLE IF NOT EXISTS accounts (id bigint, email text CHECK (length(email) <= 255));
    """
    for column, type_name, sized, line in _typed_columns(ctx, node):
        if type_name == "bpchar":
            yield line, f"column {column} is char(n): blank-padded; use text"
        elif type_name == "varchar" and sized:
            yield line, f"column {column} is varchar(n): use text (and a CHECK on its length)"


@rule(
    "MK330",
    "warning",
    "use timestamptz (timestamp with time zone)",
    kinds=("CreateStmt", "AlterTableStmt"),
    squawk=("prefer-timestamp-tz",),
)
def timestamp_without_time_zone(ctx: Context, node: dict) -> Iterable[Hit]:
    """A timestamp column without a time zone.

    timestamp stores the wall-clock reading with no zone: the same instant written from servers or
    sessions with different TimeZone settings reads back differently, and comparisons with now()
    (a timestamptz) depend on the session's zone. timestamptz stores the instant.
    This is type advice, on where workspace.yaml says type_advice: true (defaults: or a service's entry).
    Bad: CREATE TABLE IF NOT EXISTS events (id bigint, at timestamp NOT NULL DEFAULT now());
    Good: CREATE TABLE IF NOT EXISTS events (id bigint, at timestamptz NOT NULL DEFAULT now());
    """
    for column, type_name, _, line in _typed_columns(ctx, node):
        if type_name == "timestamp":
            yield line, f"column {column} is timestamp without time zone: use timestamptz"


SMALL_INTEGERS = {"int4": "integer", "int2": "smallint"}


@rule(
    "MK331",
    "warning",
    "use bigint: changing the type later rewrites the table (MK307)",
    kinds=("CreateStmt", "AlterTableStmt"),
    squawk=("prefer-bigint-over-int", "prefer-bigint-over-smallint"),
)
def small_integer(ctx: Context, node: dict) -> Iterable[Hit]:
    """An integer or smallint column.

    An id or a counter that outgrows 2^31 (or 2^15) fails every insert; widening it is a type change
    that rewrites the table under ACCESS EXCLUSIVE. bigint costs four more bytes a row, often none
    after alignment.
    This is type advice, on where workspace.yaml says type_advice: true (defaults: or a service's entry).
    Bad: CREATE TABLE IF NOT EXISTS killmails (id integer PRIMARY KEY, ship_type_id integer);
    Good: CREATE TABLE IF NOT EXISTS killmails (id bigint PRIMARY KEY, ship_type_id bigint);
    """
    for column, type_name, _, line in _typed_columns(ctx, node):
        if type_name in SMALL_INTEGERS:
            yield line, f"column {column} is {SMALL_INTEGERS[type_name]}: use bigint"


@rule(
    "MK332",
    "warning",
    "use bigint GENERATED ALWAYS AS IDENTITY (or BY DEFAULT)",
    kinds=("CreateStmt", "AlterTableStmt"),
    squawk=("prefer-identity",),
)
def serial_column(ctx: Context, node: dict) -> Iterable[Hit]:
    """A serial column.

    serial makes a sequence the column does not own in the SQL standard's sense: its grants, its
    ownership and copying the table (CREATE TABLE … LIKE) need care of their own, and nothing stops
    an insert from writing ids the sequence will hand out later. An identity column (PostgreSQL 10
    and later) is standard and keeps the sequence part of the column.
    This is type advice, on where workspace.yaml says type_advice: true (defaults: or a service's entry).
    Bad: CREATE TABLE IF NOT EXISTS accounts (id serial PRIMARY KEY);
    Good: CREATE TABLE IF NOT EXISTS accounts (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY);
    """
    for column, type_name, _, line in _typed_columns(ctx, node):
        if type_name in SERIAL:
            yield line, f"column {column} is {type_name}: use an identity column"


ENDS = {"TRANS_STMT_COMMIT", "TRANS_STMT_ROLLBACK", "TRANS_STMT_PREPARE"}


@rule(
    "MK333",
    "error",
    "end the file's transaction: COMMIT; before the file ends (or drop its BEGIN and let the runner wrap it)",
    kinds=("TransactionStmt",),
    squawk=("ban-uncommitted-transaction",),
)
def uncommitted_transaction(ctx: Context, node: dict) -> Iterable[Hit]:
    """A BEGIN that the file never ends.

    A file with its own transaction control runs as written: the open transaction outlives the file,
    its tracking row is written inside it, and the next migrations run inside it too, so a failure in
    any of them rolls this one back after the runner has reported it applied, and its locks are held
    until then.
    Bad: BEGIN; CREATE TABLE IF NOT EXISTS ledger (id bigint);
    Good: BEGIN; CREATE TABLE IF NOT EXISTS ledger (id bigint); COMMIT;
    """
    if node.get("kind") not in ("TRANS_STMT_BEGIN", "TRANS_STMT_START"):
        return
    later = ctx.migration.statements[ctx.migration.statements.index(ctx.statement) + 1 :]
    if not any(s.kind == "TransactionStmt" and s.node.get("kind") in ENDS for s in later):
        yield None, "BEGIN without a COMMIT (or ROLLBACK) before the file ends"


REWRITING_SETTINGS = {  # ALTER TABLE subcommands that copy the whole table into new files
    "AT_SetLogged": "SET LOGGED",
    "AT_SetUnLogged": "SET UNLOGGED",
    "AT_SetTableSpace": "SET TABLESPACE",
    "AT_SetAccessMethod": "SET ACCESS METHOD",
}


@rule(
    "MK334",
    "error",
    "create the table as it should be (UNLOGGED, TABLESPACE …, USING …) and copy into it in batches, "
    "or move it online with pg_repack, outside the migrations",
    kinds=("AlterTableStmt",),
)
def rewrite_by_alter_table(ctx: Context, node: dict) -> Iterable[Hit]:
    """ALTER TABLE … SET LOGGED, SET UNLOGGED, SET TABLESPACE or SET ACCESS METHOD on an existing table.

    Each copies every row (SET TABLESPACE every index too) into new files while the ALTER holds
    ACCESS EXCLUSIVE: no reads, no writes, for as long as the copy takes, and SET LOGGED writes the
    whole table to the WAL as well. On a partitioned table SET TABLESPACE and SET ACCESS METHOD only
    set what later partitions get, and a table this file created is empty.
    Bad: ALTER TABLE worker_locks SET UNLOGGED;
    Good: CREATE UNLOGGED TABLE IF NOT EXISTS worker_locks_new (…); -- copy in batches, then swap the names
    """
    table = relname(node.get("relation"))
    if ctx.state.is_new(table) or bare(table) in ctx.service.partitioned | ctx.state.created_indexes:
        return
    what = {"OBJECT_INDEX": "index", "OBJECT_MATVIEW": "materialized view"}.get(node.get("objtype", ""), "table")
    for cmd in alter_cmds(node):
        setting = REWRITING_SETTINGS.get(cmd.get("subtype", ""))
        if setting is not None:
            yield None, f"{setting} rewrites existing {what} {table} under ACCESS EXCLUSIVE"
