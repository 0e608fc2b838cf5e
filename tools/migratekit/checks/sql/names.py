"""Which database objects a statement creates and which it refers to, named as PostgreSQL resolves them.

What no single-file linter can see: one service's migrations using another's table, type, function,
schema, role or extension. The audit reads both sides from the parse trees it already has (each
statement once, as it walks a service's files) and the workspace rules (MK504, MK505) compare them.

Names are kept in PostgreSQL's namespaces: relations (tables, views, sequences share one), types,
functions, schemas, roles (cluster-wide) and extensions. An unqualified name resolves as the runner's
session resolves it: the runner sets no search_path, so it is the server's default (`"$user", public`),
with pg_catalog searched first; a migration's own `SET search_path` moves it for the rest of the file.
A DO block runs as the migration does: its statements (and the expressions of its IFs) are read with
PostgreSQL's PL/pgSQL parser, so `DO $$ BEGIN CREATE TYPE mood ...; EXCEPTION WHEN duplicate_object ...`
creates mood. A function's body is not read: its names are resolved when it is called, not when the
migration runs, and a body built with EXECUTE is a string until then.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

from migratekit.checks.sql.tree import Node, relname, strings

RELATION, TYPE, FUNCTION, SCHEMA, ROLE, EXTENSION = "relation", "type", "function", "schema", "role", "extension"
BUILT_IN_SCHEMAS = frozenset({"pg_catalog", "information_schema", "pg_toast", "public"})
# Written as types but turned into a column default and a sequence by the parser: never in pg_type.
SERIAL_TYPES = frozenset({"serial", "serial2", "serial4", "serial8", "smallserial", "bigserial"})
# Roles every server has: the bootstrap superuser's usual name (pg_* roles come from builtins.json).
KNOWN_ROLES = frozenset({"postgres"})

Name = tuple[str, str]  # (namespace, name): ("relation", "public.battles"), ("role", "reader")


class Objects(NamedTuple):
    """What one statement creates (name -> what it is, as a person says it) and the names it refers to."""

    creates: dict[Name, str]
    references: list[Name]


_NOTHING = Objects({}, [])  # read only: advance copies from it
# Statements that neither create nor use a named object (or, for DROP, use nothing that must be there).
_NO_NAMES = frozenset(
    {"DropStmt", "DropRoleStmt", "DropOwnedStmt", "ReassignOwnedStmt", "TransactionStmt", "VariableSetStmt"}
)
_EXPLICIT_KINDS = frozenset(
    {
        "CreateTrigStmt",
        "CreateEventTrigStmt",
        "GrantStmt",
        "GrantRoleStmt",
        "AlterFunctionStmt",
        "AlterEnumStmt",
        "AlterDefaultPrivilegesStmt",
        "CreateExtensionStmt",
    }
)


def qualify(parts: list[str], search_path: str = "public") -> str:
    """`schema.name` as written, or the unqualified name in the search path (`a,b.name`: in a, else in b)."""
    return ".".join(parts[-2:]) if len(parts) > 1 else f"{search_path}.{parts[-1]}" if parts else ""


def objects(kind: str, node: Node, search_path: str = "public", text: str = "") -> Objects:
    """The objects a top-level statement creates and the ones it refers to (DROP refers to nothing: a
    migration that drops what is not there either guards it with IF EXISTS or fails on its own). `text`,
    the statement's source, is read for a DO block only."""
    if kind in _NO_NAMES:
        return _NOTHING
    if kind == "DoStmt":
        return _do_block(text, search_path)
    creates: dict[Name, str] = {}
    targets: set[int] = set()  # the RangeVar a CREATE names: created, not referred to
    creator = _CREATORS.get(kind)
    if kind == "CreateStmt" and not _may_have_sequences(text):
        creator = _create_plain_table  # no serial or identity column: no sequence of its own to look for
    if creator is not None:
        for name, what, target in creator(node, search_path.split(",", 1)[0]):  # made in the path's first schema
            creates[name] = what
            if target is not None:
                targets.add(id(target))
    shortcut = _SHORTCUTS.get(kind)
    found = shortcut(node, search_path) if shortcut is not None else _walked(node, targets, search_path, kind)
    if creates:
        found += _schemas_of(creates)
    if kind in _EXPLICIT_KINDS:
        found += _explicit(kind, node, search_path)
    return Objects(creates, found)


def _do_block(text: str, search_path: str) -> Objects:
    """What the statements of a PL/pgSQL DO block create and use (a block in another language: nothing)."""
    from pglast import parser

    creates: dict[Name, str] = {}
    references: list[Name] = []
    try:
        tree = json.loads(parser.parse_plpgsql_json(text))
    except (parser.ParseError, ValueError):
        return Objects(creates, references)
    stack: list[Any] = [tree]
    while stack:
        current = stack.pop()
        if isinstance(current, list):
            stack.extend(current)
        elif isinstance(current, dict):
            expr = current.get("PLpgSQL_expr")
            if isinstance(expr, dict) and "query" in expr:
                query = expr["query"] if expr.get("parseMode") == 0 else f"SELECT {expr['query']}"
                try:
                    statements = json.loads(parser.parse_sql_json(query)).get("stmts", [])
                except (parser.ParseError, ValueError):
                    continue  # an assignment, or SQL the block builds: not a statement of its own
                for raw in statements:
                    ((kind, node),) = raw["stmt"].items()
                    found = objects(kind, node, search_path, query)  # its serial columns: their sequences
                    creates.update(found.creates)
                    references += found.references
            stack.extend(v for v in current.values() if isinstance(v, dict | list))
    return Objects(creates, references)


def _schemas_of(creates: dict[Name, str]) -> Iterator[Name]:
    """An object created in a schema needs the schema: another service's, when that service made it."""
    for namespace, name in creates:
        schema = name.rpartition(".")[0]
        if namespace not in (SCHEMA, ROLE, EXTENSION) and schema and schema not in BUILT_IN_SCHEMAS:
            yield SCHEMA, schema


# The fields of a FuncCall, a Constraint and a ColumnDef that may name something: the walk enters only these.
_CALL_PARTS = ("args", "agg_order", "agg_filter", "over")
_CONSTRAINT_PARTS = ("raw_expr", "where_clause", "exclusions")
_COLUMN_PARTS = ("constraints", "raw_default", "cooked_default", "collClause", "identitySequence")
# Nodes that never hold a relation, type, call or role below them: not entered (the walk is most of the cost).
_LEAVES = frozenset(
    {"A_Const", "String", "Integer", "Float", "Boolean", "BitString", "ColumnRef", "ParamRef", "A_Star"}
)


def _walked(node: Node, targets: set[int], search_path: str, kind: str) -> list[Name]:
    """Every relation, type, function call and role below `node`, known by their shape: a field holds its node
    bare (a CreateStmt's `relation`, a ColumnDef's `typeName`), a list holds it wrapped ({"RangeVar": ...})."""
    reader = _Reader(targets, search_path, _index_target(kind, node))
    stack: list[Any] = [node]
    pop, push, read = stack.pop, stack.append, reader.read
    while stack:
        current = pop()
        if type(current) is list:  # its items are wrapped nodes, {"Type": body}: the bodies are what is read
            for item in current:
                if type(item) is dict:
                    for key, value in item.items():
                        if key not in _LEAVES:
                            push(value)
        elif type(current) is dict:
            read(current, push)
    return reader.names()


class _Reader:
    """What one walk has found so far; `read` takes one node's body and pushes the parts worth entering (plain
    loops rather than generators: the walk is the audit's hottest code)."""

    __slots__ = ("ctes", "found", "relations", "search_path", "skip", "targets", "types", "functions")

    def __init__(self, targets: set[int], search_path: str, skip: Node | None) -> None:
        self.targets, self.search_path, self.skip = targets, search_path, skip
        self.types, self.functions = _types(), _functions()
        self.found: list[Name] = []
        self.ctes: set[str] = set()
        self.relations: list[Node] = []

    def read(self, current: Node, push: Callable[[Any], None]) -> None:
        if "relname" in current:  # a RangeVar: nothing below it names anything (its alias)
            if id(current) not in self.targets and current is not self.skip:
                self.relations.append(current)
        elif "typemod" in current:  # a TypeName: below it only its modifiers (constants)
            names = current.get("names") or []
            if not current.get("pct_type") and _not_built_in(names, self.types):
                self.found.append((TYPE, qualify(strings(names), self.search_path)))
        elif "funcformat" in current:  # a FuncCall: its arguments may call and cast too
            names = current.get("funcname") or []
            if _not_built_in(names, self.functions):
                self.found.append((FUNCTION, qualify(strings(names), self.search_path)))
            _push_parts(current, _CALL_PARTS, push)
        elif "contype" in current:  # a Constraint: only its expressions and referenced table name anything
            if "pktable" in current:
                self.relations.append(current["pktable"])
            _push_parts(current, _CONSTRAINT_PARTS, push)
        elif "colname" in current and "typeName" in current:  # a ColumnDef (the commonest node of a migration)
            push(current["typeName"])
            _push_parts(current, _COLUMN_PARTS, push)
        elif "roletype" in current:  # a RoleSpec
            if current["roletype"] == "ROLESPEC_CSTRING":
                self.found.append((ROLE, current.get("rolename", "")))
        else:
            if "ctename" in current:
                self.ctes.add(current["ctename"])
            for key, value in current.items():
                if type(value) is list or (type(value) is dict and key not in _LEAVES):
                    push(value)

    def names(self) -> list[Name]:
        for element in self.relations:
            schema = element.get("schemaname")
            if schema or element.get("relname") not in self.ctes:  # WITH x AS (...) SELECT FROM x: no relation
                self.found.append((RELATION, f"{schema or self.search_path}.{element.get('relname', '')}"))
        return self.found


def _push_parts(node: Node, parts: tuple[str, ...], push: Callable[[Any], None]) -> None:
    for key in parts:
        if key in node:
            push(node[key])


# The commonest statements of a migration, read by their known shape rather than walked: a generic walk of
# every node of every CREATE TABLE and CREATE INDEX would cost the audit as much as all its other rules.
# Their own name (a CREATE's target) is read too: it is the service's own, so it never counts as a use.


def _relation_name(range_var: Node, search_path: str) -> Name:
    schema = range_var.get("schemaname")
    return RELATION, f"{schema or search_path}.{range_var.get('relname', '')}"


def _expression(expr: Node | None, search_path: str) -> list[Name]:
    """An expression's uses: nothing for a constant, a walk for anything else than a call without arguments or
    a cast of one of these (`'{}'::jsonb`, the commonest default after a constant and now())."""
    if not expr or "A_Const" in expr:
        return []
    call = expr.get("FuncCall")
    if call is not None and len(call) == 3:  # funcname, funcformat, location: a call such as now()
        names = call.get("funcname") or []
        return [(FUNCTION, qualify(strings(names), search_path))] if _not_built_in(names, _functions()) else []
    cast = expr.get("TypeCast")
    if cast is not None and len(cast) == 3 and "arg" in cast and "typemod" in cast.get("typeName", _NONE):
        found = _expression(cast["arg"], search_path)  # arg, typeName, location: what the walk would read
        found += _type_use(cast["typeName"], search_path)
        return found
    return _walked(expr, set(), search_path, "")


def _type_use(type_name: Node, search_path: str) -> list[Name]:
    """A TypeName's use (as the walk reads one): none for PostgreSQL's own types or a `%TYPE`."""
    names = type_name.get("names") or []
    if not type_name.get("pct_type") and _not_built_in(names, _types()):
        return [(TYPE, qualify(strings(names), search_path))]
    return []


def _column(column: Node, search_path: str, found: list[Name]) -> None:
    type_name = column.get("typeName")
    if type_name is not None and not type_name.get("pct_type"):
        names = type_name["names"]
        first = names[0]["String"]["sval"]
        if first not in _types() if len(names) == 1 else first not in _BUILT_IN_QUALIFIERS:
            found.append((TYPE, qualify(strings(names), search_path)))
    for constraint in column.get("constraints", _NONE):
        body = constraint["Constraint"]
        if "raw_expr" in body:  # DEFAULT, CHECK, GENERATED
            expr = body["raw_expr"]
            if "A_Const" not in expr:
                found += _expression(expr, search_path)
        if "pktable" in body:  # REFERENCES
            found.append(_relation_name(body["pktable"], search_path))
    if "raw_default" in column:
        found += _expression(column["raw_default"], search_path)


_NONE: tuple[()] = ()
_BUILT_IN_QUALIFIERS = ("pg_catalog", "information_schema")


def _constraint(constraint: Node, search_path: str, found: list[Name]) -> None:
    if "pktable" in constraint:
        found.append(_relation_name(constraint["pktable"], search_path))
    if "raw_expr" in constraint:
        found += _expression(constraint["raw_expr"], search_path)
    for key in ("where_clause", "exclusions"):
        if key in constraint:
            found += _walked(constraint[key], set(), search_path, "")


def _elements(elements: list[Node], search_path: str, found: list[Name]) -> None:
    """A CREATE TABLE's columns and constraints, or an ALTER TABLE's commands' definitions."""
    for element in elements:
        if "ColumnDef" in element:
            _column(element["ColumnDef"], search_path, found)
        elif "Constraint" in element:
            _constraint(element["Constraint"], search_path, found)
        elif element:
            found += _walked(element, set(), search_path, "")


_CREATE_OTHER = ("inhRelations", "partbound", "partspec", "ofTypename", "constraints")


def _create_table_uses(node: Node, search_path: str) -> list[Name]:
    found = [_relation_name(node.get("relation", {}), search_path)]
    _elements(node.get("tableElts", []), search_path, found)
    for key in _CREATE_OTHER:
        if key in node:
            found += _walked(node[key], set(), search_path, "")
    return found


def _alter_table_uses(node: Node, search_path: str) -> list[Name]:
    if node.get("objtype") not in (None, "OBJECT_TABLE"):
        return _walked(node, set(), search_path, "AlterTableStmt")
    found = [_relation_name(node.get("relation", {}), search_path)]
    for cmd in node.get("cmds", ()):
        body = cmd.get("AlterTableCmd", {})
        definition = body.get("def")
        if definition is not None:
            _elements([definition], search_path, found)
        owner = body.get("newowner", {})
        if owner.get("roletype") == "ROLESPEC_CSTRING":
            found.append((ROLE, owner.get("rolename", "")))
    return found


def _index_uses(node: Node, search_path: str) -> list[Name]:
    found = [_relation_name(node.get("relation", {}), search_path)]
    for param in node.get("indexParams", ()):
        element = param.get("IndexElem", {})
        if "expr" in element:
            found += _expression(element["expr"], search_path)
    if "whereClause" in node:
        found += _walked(node["whereClause"], set(), search_path, "")
    return found


def _trigger_uses(node: Node, search_path: str) -> list[Name]:
    found = [_relation_name(node.get("relation", {}), search_path)]  # its function: _explicit
    for key in ("whenClause", "constrrel"):
        if key in node:
            found += _walked(node[key], set(), search_path, "")
    return found


def _insert_uses(node: Node, search_path: str) -> list[Name]:
    if "withClause" in node:  # WITH x AS (...) INSERT ... FROM x: the walk knows x is no relation
        return _walked(node, set(), search_path, "InsertStmt")
    found = [_relation_name(node.get("relation", {}), search_path)]
    select = node.get("selectStmt", {}).get("SelectStmt", {})
    if select.keys() <= _VALUES_ONLY:  # VALUES (...), (...): read value by value
        for row in select.get("valuesLists", ()):
            for value in row.get("List", {}).get("items", ()):
                if "A_Const" not in value:
                    found += _expression(value, search_path)
    elif select or "selectStmt" in node:
        found += _walked(node["selectStmt"], set(), search_path, "")
    if "onConflictClause" in node and not _names_nothing(node["onConflictClause"]):
        found += _walked(node["onConflictClause"], set(), search_path, "")
    if "returningList" in node:
        found += _walked(node["returningList"], set(), search_path, "")
    return found


_VALUES_ONLY = frozenset({"valuesLists", "limitOption", "op"})
_CONFLICT_ON_COLUMNS = frozenset({"action", "infer", "location"})  # ON CONFLICT (a, b) DO NOTHING
_COLUMN_ELEMENT = frozenset({"name", "ordering", "nulls_ordering"})


def _names_nothing(conflict: Node) -> bool:
    """Whether an ON CONFLICT clause names nothing a walk would find: DO NOTHING on plain columns, the commonest."""
    infer = conflict.get("infer", {})
    elements = infer.get("indexElems", ())
    return (
        conflict.keys() <= _CONFLICT_ON_COLUMNS
        and infer.keys() <= {"indexElems", "location"}
        and all(e.keys() == {"IndexElem"} and e["IndexElem"].keys() <= _COLUMN_ELEMENT for e in elements)
    )


_FUNCTION_PARTS = ("parameters", "sql_body")


def _function_uses(node: Node, search_path: str) -> list[Name]:
    """CREATE FUNCTION: its parameters and an SQL-standard body are walked, its return type read; of its options
    only those that are more than constants (SET ...): the body as a string, LANGUAGE, volatility name nothing."""
    walked: Node = {key: node[key] for key in _FUNCTION_PARTS if key in node}
    options = [o for o in node.get("options", ()) if "DefElem" not in o or not _constant(o["DefElem"].get("arg"))]
    if options:
        walked["options"] = options
    return_type = node.get("returnType")
    if return_type is not None and "typemod" in return_type:
        found = _type_use(return_type, search_path)
    elif return_type is not None:
        walked["returnType"] = return_type
        found = []
    else:
        found = []
    if walked:
        found += _walked(walked, set(), search_path, "")
    return found


def _constant(arg: Node | None) -> bool:
    """Whether an option's argument is constants alone (a string, a number, a list of strings): nothing to walk."""
    if not arg:
        return True
    if len(arg) == 1 and next(iter(arg)) in _LEAVES:
        return True
    items = arg.get("List", {}).get("items") if len(arg) == 1 else None
    return items is not None and all(len(item) == 1 and "String" in item for item in items)


def _extension_uses(node: Node, search_path: str) -> list[Name]:
    """CREATE EXTENSION's options (SCHEMA, VERSION, CASCADE) are constants: its one use, a schema, is _explicit's."""
    return []


_SHORTCUTS = {
    "CreateExtensionStmt": _extension_uses,
    "CreateFunctionStmt": _function_uses,
    "InsertStmt": _insert_uses,
    "CreateStmt": _create_table_uses,
    "AlterTableStmt": _alter_table_uses,
    "IndexStmt": _index_uses,
    "CreateTrigStmt": _trigger_uses,
}


@cache
def _types() -> frozenset[str]:
    return builtins().types | SERIAL_TYPES


@cache
def _functions() -> frozenset[str]:
    return builtins().functions


def _not_built_in(names: Any, built_in: frozenset[str]) -> bool:
    """Whether a name (a list of String nodes) may be something other than PostgreSQL's own: asked before the
    name is even put together, as most names a migration uses are PostgreSQL's (text, now(), pg_catalog.int4)."""
    if len(names) == 1:
        return names[0].get("String", {}).get("sval") not in built_in  # pg_catalog is searched first
    return not names or names[0].get("String", {}).get("sval") not in ("pg_catalog", "information_schema")


def _index_target(kind: str, node: Node) -> Node | None:
    """ALTER INDEX and a renamed index name an index in their RangeVar: indexes are not tracked."""
    if kind == "AlterTableStmt" and node.get("objtype") == "OBJECT_INDEX":
        return node.get("relation")
    if kind == "RenameStmt" and node.get("renameType") == "OBJECT_INDEX":
        return node.get("relation")
    return None


def _explicit(kind: str, node: Node, search_path: str) -> Iterator[Name]:
    """References a walk for RangeVar, TypeName, FuncCall and RoleSpec does not find (names as plain strings)."""
    if kind in ("CreateTrigStmt", "CreateEventTrigStmt"):
        yield FUNCTION, qualify(strings(node.get("funcname")), search_path)
    elif kind == "GrantStmt":
        yield from _granted_on(node, search_path)
    elif kind == "GrantRoleStmt":
        for granted in node.get("granted_roles", []):
            yield ROLE, granted.get("AccessPriv", {}).get("priv_name", "")
    elif kind == "AlterFunctionStmt":
        yield FUNCTION, qualify(strings(node.get("func", {}).get("ObjectWithArgs", {}).get("objname")), search_path)
    elif kind == "AlterEnumStmt":
        yield TYPE, qualify(strings(node.get("typeName")), search_path)
    elif kind == "AlterDefaultPrivilegesStmt":
        for option in node.get("options", []):
            if option.get("DefElem", {}).get("defname") == "schemas":
                yield from ((SCHEMA, s) for s in strings(option["DefElem"].get("arg", {}).get("List", {}).get("items")))
    elif kind == "CreateExtensionStmt":
        schema = _extension_schema(node)
        if schema:
            yield SCHEMA, schema


def _granted_on(node: Node, search_path: str) -> Iterator[Name]:
    """GRANT ... ON SCHEMA s, ON FUNCTION f(...), ON ALL TABLES IN SCHEMA s (tables are RangeVars: walked)."""
    if node.get("targtype") != "ACL_TARGET_OBJECT":
        yield from ((SCHEMA, s) for s in strings(node.get("objects")))
        return
    objtype = node.get("objtype")
    for obj in node.get("objects", []):
        if objtype == "OBJECT_SCHEMA" and "String" in obj:
            yield SCHEMA, obj["String"]["sval"]
        elif objtype in ("OBJECT_FUNCTION", "OBJECT_PROCEDURE", "OBJECT_ROUTINE") and "ObjectWithArgs" in obj:
            yield FUNCTION, qualify(strings(obj["ObjectWithArgs"].get("objname")), search_path)


def _extension_schema(node: Node) -> str | None:
    for option in node.get("options", []):
        element = option.get("DefElem", {})
        if element.get("defname") == "schema":
            return str(element.get("arg", {}).get("String", {}).get("sval", "")) or None
    return None


Created = Iterator[tuple[Name, str, Node | None]]  # (name, what it is, the RangeVar that names it)


def _create_table(node: Node, search_path: str) -> Created:
    target = node.get("relation", {})
    table = _relation(target, search_path)
    yield (RELATION, table), "table", target
    for element in node.get("tableElts", ()):  # serial and identity columns bring a sequence of their own
        column = element.get("ColumnDef")
        if column is None:
            continue
        names: list[Node] = column.get("typeName", {}).get("names") or [{}]
        if names[-1].get("String", {}).get("sval") in SERIAL_TYPES or _identity(column):
            yield (RELATION, f"{table}_{column.get('colname')}_seq"), "sequence", None


def _identity(column: Node) -> bool:
    return any(c.get("Constraint", {}).get("contype") == "CONSTR_IDENTITY" for c in column.get("constraints", ()))


def _may_have_sequences(text: str) -> bool:
    """Whether a CREATE TABLE may have a serial or identity column (a word test, cheaper than its columns)."""
    low = text.lower()
    return "serial" in low or "identity" in low


def _create_plain_table(node: Node, search_path: str) -> list[tuple[Name, str, Node | None]]:
    target = node.get("relation", {})
    return [((RELATION, _relation(target, search_path)), "table", target)]


def _relation(range_var: Node, search_path: str) -> str:
    name = relname(range_var)
    if range_var.get("relpersistence") == "t" and "." not in name:
        return f"{search_path}.{name}"  # a temporary table: pg_temp, reached by its bare name all the same
    return name if "." in name else f"{search_path}.{name}"


def _create_foreign_table(node: Node, search_path: str) -> Created:
    yield from _create_table(node.get("base", {}), search_path)


def _create_table_as(node: Node, search_path: str) -> Created:
    target = node.get("into", {}).get("rel", {})
    what = "materialized view" if node.get("objtype") == "OBJECT_MATVIEW" else "table"
    yield (RELATION, _relation(target, search_path)), what, target


def _create_view(node: Node, search_path: str) -> Created:
    target = node.get("view", {})
    yield (RELATION, _relation(target, search_path)), "view", target


def _create_sequence(node: Node, search_path: str) -> Created:
    target = node.get("sequence", {})
    yield (RELATION, _relation(target, search_path)), "sequence", target


def _create_composite(node: Node, search_path: str) -> Created:
    target = node.get("typevar", {})
    yield (TYPE, _relation(target, search_path)), "type", target


def _create_named_type(key: str) -> Any:
    def created(node: Node, search_path: str) -> Created:
        yield (TYPE, qualify(strings(node.get(key)), search_path)), "type", None

    return created


def _define(node: Node, search_path: str) -> Created:
    kinds = {"OBJECT_TYPE": (TYPE, "type"), "OBJECT_AGGREGATE": (FUNCTION, "aggregate")}
    found = kinds.get(node.get("kind", ""))
    if found is not None:
        yield (found[0], qualify(strings(node.get("defnames")), search_path)), found[1], None


def _create_function(node: Node, search_path: str) -> Created:
    what = "procedure" if node.get("is_procedure") else "function"
    yield (FUNCTION, qualify(strings(node.get("funcname")), search_path)), what, None


def _create_schema(node: Node, search_path: str) -> Created:
    name = node.get("schemaname") or node.get("authrole", {}).get("rolename")
    if name:
        yield (SCHEMA, name), "schema", None


def _create_role(node: Node, search_path: str) -> Created:
    yield (ROLE, node.get("role", "")), "role", None


def _create_extension(node: Node, search_path: str) -> Created:
    # Extensions are not in a schema, but their objects are: the name carries where they go.
    yield (EXTENSION, f"{_extension_schema(node) or search_path}.{node.get('extname', '')}"), "extension", None


def _rename(node: Node, search_path: str) -> Created:
    renamed = {"OBJECT_TABLE": "table", "OBJECT_VIEW": "view", "OBJECT_MATVIEW": "materialized view"}
    what = renamed.get(node.get("renameType", ""))
    if what is not None:
        schema = (node.get("relation") or {}).get("schemaname") or search_path
        yield (RELATION, f"{schema}.{node.get('newname', '')}"), what, None


_CREATORS = {
    "CreateStmt": _create_table,
    "CreateForeignTableStmt": _create_foreign_table,
    "CreateTableAsStmt": _create_table_as,
    "ViewStmt": _create_view,
    "CreateSeqStmt": _create_sequence,
    "CompositeTypeStmt": _create_composite,
    "CreateEnumStmt": _create_named_type("typeName"),
    "CreateRangeStmt": _create_named_type("typeName"),
    "CreateDomainStmt": _create_named_type("domainname"),
    "DefineStmt": _define,
    "CreateFunctionStmt": _create_function,
    "CreateSchemaStmt": _create_schema,
    "CreateRoleStmt": _create_role,
    "CreateExtensionStmt": _create_extension,
    "RenameStmt": _rename,
}


def candidates(namespace: str, name: str) -> list[Name]:
    """Where a referred name may be, in the order PostgreSQL looks: each schema of the search path it was
    written under (`a,b.t`), and for a type also the relation of that name (a table is a row type too)."""
    if namespace in (ROLE, SCHEMA, EXTENSION):
        return [(namespace, name)]
    schemas, _, bare = name.rpartition(".")
    spaces = (TYPE, RELATION) if namespace == TYPE else (namespace,)
    return [(space, f"{schema}.{bare}") for schema in schemas.split(",") if schema for space in spaces]


def shown(namespace: str, name: str) -> str:
    """A referred name as a person writes it: the first place it would be looked for."""
    return candidates(namespace, name)[0][1]


def provided(creates: dict[Name, str]) -> dict[Name, str]:
    """What `creates` makes available: the objects themselves, and every object of the extensions it creates,
    in the extension's schema (the name of an extension carries its schema: `public.citext`)."""
    found = dict(creates)
    for (namespace, name), _ in creates.items():
        if namespace == EXTENSION:
            schema, _, extension = name.rpartition(".")
            for space, bare in builtins().objects_of(extension):
                found.setdefault((space, f"{schema}.{bare}"), f"{extension} extension's {space}")
    return found


def lookup(namespace: str, name: str, available: dict[Name, str]) -> Name | None:
    """The name `available` holds for a reference, or None."""
    return next((c for c in candidates(namespace, name) if c in available), None)


@dataclass(frozen=True)
class BuiltIns:
    """What PostgreSQL has before any migration runs, and what each contrib extension creates (by bare name).

    Read from a real server by tools/pg_builtins.py into builtins.json; `version` says which.
    """

    version: str
    functions: frozenset[str]
    types: frozenset[str]
    tables: dict[str, frozenset[str]]  # pg_catalog and information_schema relations
    roles: frozenset[str]
    extensions: dict[str, dict[str, frozenset[str]]]  # extension -> namespace -> names

    def provides(self, namespace: str, name: str) -> bool:
        """Whether PostgreSQL itself provides `name` (qualified as `objects` qualifies it: an unqualified name is
        in `public`, or in its search path `a,b` / `a,`, and pg_catalog is searched before any of them)."""
        schema, _, bare = name.rpartition(".")
        if namespace == ROLE:
            return name in self.roles or name in KNOWN_ROLES
        if namespace in (SCHEMA, EXTENSION):
            return namespace == SCHEMA and (name in BUILT_IN_SCHEMAS or name.startswith("pg_"))
        if schema in ("pg_catalog", "information_schema", "pg_toast") or schema.startswith("pg_temp"):
            return True
        if schema != "public" and "," not in schema:
            return False  # written in another schema: not PostgreSQL's
        if namespace == RELATION:  # pg_catalog is searched before public
            return bare in self.tables.get("pg_catalog", frozenset())
        if namespace == TYPE:
            return bare in self.types or bare in SERIAL_TYPES
        return namespace == FUNCTION and bare in self.functions

    def extension_of(self, namespace: str, name: str) -> str | None:
        """The contrib extension that creates `name` (its bare name), if one does."""
        bare = name.rpartition(".")[2]
        kinds = (RELATION, TYPE) if namespace in (RELATION, TYPE) else (namespace,)
        return next(
            (ext for ext, found in self.extensions.items() if any(bare in found.get(k, ()) for k in kinds)), None
        )

    def objects_of(self, extension: str) -> Iterator[Name]:
        """The (namespace, bare name) of every object an extension creates."""
        for namespace, names in self.extensions.get(extension, {}).items():
            yield from ((namespace, n) for n in names)


@cache
def builtins() -> BuiltIns:
    data = json.loads((Path(__file__).with_name("builtins.json")).read_text(encoding="utf-8"))
    kinds = {"function": FUNCTION, "type": TYPE, "table": RELATION}
    return BuiltIns(
        data["postgresql"],
        frozenset(data["functions"]),
        frozenset(data["types"]),
        {schema: frozenset(names) for schema, names in data["tables"].items()},
        frozenset(data["roles"]),
        {
            ext: {kinds[kind]: frozenset(names) for kind, names in found.items()}
            for ext, found in data["extensions"].items()
        },
    )
