"""Helpers over pglast's JSON parse tree (plain dicts and lists, fast to build and walk)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

Node = dict[str, Any]


def walk(node: Any) -> Iterator[tuple[str, Node]]:
    """Every (type, node) below `node`, depth first; the tree's wrapper dicts are {Type: body}."""
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, dict):
            for key, value in current.items():
                if key[:1].isupper() and isinstance(value, dict):
                    yield key, value
                if isinstance(value, dict | list):
                    stack.append(value)
        elif isinstance(current, list):
            stack.extend(current)


def relname(range_var: Node | None) -> str:
    """`schema.table` or `table` of a RangeVar, lower-cased as PostgreSQL folds it."""
    if not range_var:
        return ""
    name = range_var.get("relname", "")
    schema = range_var.get("schemaname")
    return f"{schema}.{name}" if schema else name


def strings(items: list[Node] | None) -> list[str]:
    """The sval of a list of String nodes (qualified names, column lists)."""
    return [i["String"]["sval"] for i in items or [] if "String" in i]


def bare(name: str) -> str:
    """`public.t` -> `t`: objects are compared by their unqualified name."""
    return name.rpartition(".")[2]


def func_names(node: Any) -> set[str]:
    """Names of every function called anywhere below `node`."""
    return {strings(n.get("funcname"))[-1] for t, n in walk(node) if t == "FuncCall" and n.get("funcname")}


def body_texts(node: Any) -> list[str]:
    """The source text of function and DO bodies below `node` (`AS $$ … $$`): a string to the main parser."""
    texts = []
    for node_type, element in walk(node):
        if node_type == "DefElem" and element.get("defname") == "as":
            texts += [n["sval"] for t, n in walk(element.get("arg", {})) if t == "String"]
            if "String" in element.get("arg", {}):
                texts.append(element["arg"]["String"]["sval"])
    return texts


CALL = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)\s*\(")


def called_names(node: Any) -> set[str]:
    """Functions called below `node`, including, by name, those called inside function and DO bodies: one walk
    of the tree for both (a service's every statement is walked for this)."""
    found: set[str] = set()
    for node_type, element in walk(node):
        if node_type == "FuncCall" and element.get("funcname"):
            found.add(strings(element["funcname"])[-1])
        elif node_type == "DefElem" and element.get("defname") == "as":
            arg = element.get("arg", {})
            bodies = [n["sval"] for t, n in walk(arg) if t == "String"] + (
                [arg["String"]["sval"]] if "String" in arg else []
            )
            found |= {name.lower() for body in bodies for name in CALL.findall(body)}
    return found


def alter_cmds(node: Node) -> list[Node]:
    """The AlterTableCmd bodies of an ALTER TABLE."""
    return [c["AlterTableCmd"] for c in node.get("cmds", []) if "AlterTableCmd" in c]


def constraints(node: Node) -> Iterator[tuple[str | None, Node]]:
    """(column or None, Constraint body) of a CREATE TABLE's elements or an ALTER TABLE's commands.

    A column constraint comes with its column's name; a table constraint names its own columns.
    """
    elements = node.get("tableElts", []) + [c.get("def", {}) for c in alter_cmds(node)]
    for element in elements:
        if "ColumnDef" in element:
            column = element["ColumnDef"]
            name = column.get("colname")
            for c in column.get("constraints", ()):
                if "Constraint" in c:
                    yield name, c["Constraint"]
        elif "Constraint" in element:
            yield None, element["Constraint"]


def comments(text: str) -> list[tuple[int, str]]:
    """(byte offset, text) of each SQL comment: PostgreSQL's own scanner, so a `--` inside a string or a
    dollar-quoted body is not one."""
    from pglast import parser

    try:
        tokens = parser.scan(text)
    except parser.ParseError:
        return []
    # the scanner's offsets count characters: the byte offset is the length of the text before, encoded
    return [
        (len(text[: t.start].encode("utf-8")), text[t.start : t.end + 1])
        for t in tokens
        if t.name in ("SQL_COMMENT", "C_COMMENT")
    ]


def identifiers(text: str) -> list[str]:
    """Every identifier of SQL text as written, before PostgreSQL truncates it (its scanner's IDENT tokens):
    a quoted one unquoted, an unquoted one folded to lower case."""
    from pglast import parser

    try:
        tokens = parser.scan(text)
    except parser.ParseError:
        return []
    names = []
    for token in tokens:
        if token.name != "IDENT":
            continue
        word = text[token.start : token.end + 1]  # the scanner's offsets count characters
        names.append(word[1:-1].replace('""', '"') if word.startswith('"') else word.lower())
    return names


def without_comments(text: str) -> str:
    """`text` with its SQL comments blanked out (offsets kept)."""
    data = bytearray(text.encode("utf-8"))
    for start, comment in comments(text):
        length = len(comment.encode("utf-8"))
        data[start : start + length] = b" " * length
    return data.decode("utf-8", "replace")


def plpgsql(body: str) -> list[Node] | None:
    """PL/pgSQL's own parse tree of a DO or function body (pglast's plpgsql parser), or None when the body
    is not PL/pgSQL that parses. Its expressions are text (`{"PLpgSQL_expr": {"query": "…"}}`): parse
    each with `expression` to reach their trees."""
    import json

    from pglast import parser

    wrapped = f"CREATE FUNCTION migratekit_body() RETURNS void LANGUAGE plpgsql AS $migratekit${body}$migratekit$"
    try:
        return json.loads(parser.parse_plpgsql_json(wrapped))
    except (parser.ParseError, ValueError):
        return None


def expression(text: str) -> Node | None:
    """The parse tree of one SQL expression (`SELECT <text>`), or None if it is not one."""
    import json

    from pglast import parser

    try:
        return json.loads(parser.parse_sql_json(f"SELECT {text}"))
    except (parser.ParseError, ValueError):
        return None


def statement_tree(text: str) -> Node | None:
    """The parse tree of SQL text found inside a body (a PL/pgSQL statement), or None if it does not parse."""
    import json

    from pglast import parser

    try:
        return json.loads(parser.parse_sql_json(text))
    except (parser.ParseError, ValueError):
        return None
