"""Source files as syntax trees: tree-sitter's grammars for the languages migratekit reads (Go, TypeScript,
JavaScript, shell), each loaded once and only when a file in it is read, and the literals those trees hold.

The wiring audit reads whole programs with them; discovery reads a drizzle.config.ts's `out`, and a hand-written
runner's history table is named through the string constants its file binds. Both read a literal only where the
tree says it is one: a template with a substitution, an escape, or a name bound twice is no literal.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from functools import cache

from tree_sitter import Language, Node, Parser

GRAMMARS = {".go": "go", ".ts": "typescript", ".mts": "typescript", ".cts": "typescript", ".tsx": "tsx"}
GRAMMARS |= {".js": "javascript", ".mjs": "javascript", ".cjs": "javascript", ".jsx": "javascript"}
STRINGS = {"string", "template_string", "interpreted_string_literal", "raw_string_literal"}
PLAIN = {'"', "'", "`", "string_fragment", "interpreted_string_literal_content", "raw_string_literal_content"}
# A binding of names to values: JS/TS `const X = …` and class fields, Go `const`/`var` specs and `:=`
BINDINGS = {"variable_declarator", "public_field_definition", "field_definition", "const_spec", "var_spec"}
BINDINGS |= {"short_var_declaration", "assignment_expression"}
NAMES = {"identifier", "property_identifier"}
IDENTIFIER = re.compile(r"[\w.]+")  # what a constant naming a table holds (schema_migrations, ops.migrations)


@cache
def parser_for(language: str) -> Parser:
    if language == "go":
        import tree_sitter_go as grammar

        return Parser(Language(grammar.language()))
    if language in ("typescript", "tsx"):
        import tree_sitter_typescript as ts

        return Parser(Language(ts.language_tsx() if language == "tsx" else ts.language_typescript()))
    if language == "javascript":
        import tree_sitter_javascript as js

        return Parser(Language(js.language()))
    import tree_sitter_bash as bash

    return Parser(Language(bash.language()))


def tree(language: str, text: str) -> Node:
    return parser_for(language).parse(text.encode()).root_node


def string_value(node: Node) -> str | None:
    """A string literal's text, quotes dropped; None for anything else (a template with `${…}`, an escape)."""
    if node.type not in STRINGS or any(child.type not in PLAIN for child in node.children):
        return None
    return (node.text or b"").decode(errors="replace")[1:-1]


def nodes(root: Node, types: Collection[str]) -> list[Node]:
    """Every node of `types` in the tree, in the order of the text (a node before those inside it). Walked with
    a cursor: a walk through each node's `children` makes a list of objects at every node, and took most of the
    wiring audit of a large source file."""
    cursor, found = root.walk(), []
    while True:
        node = cursor.node
        if node is not None and node.type in types:
            found.append(node)
        if cursor.goto_first_child():
            continue
        while not cursor.goto_next_sibling():
            if not cursor.goto_parent():
                return found


def constants(root: Node, found: Iterable[Node] | None = None) -> dict[str, str]:
    """Names bound exactly once in the file, to a literal identifier (`const TABLE = "schema_migrations"`, a
    class's `private readonly table = "migrations"`, Go's `const table = "…"` or `table := "…"`); `found`: the
    tree's nodes of BINDINGS and others, when one walk of it gathered them for more than this."""
    bound: dict[str, list[str | None]] = {}
    for node in nodes(root, BINDINGS) if found is None else [n for n in found if n.type in BINDINGS]:
        for name, value in _bound(node):
            literal = string_value(value) if value is not None else None
            bound.setdefault(name, []).append(literal if literal and IDENTIFIER.fullmatch(literal) else None)
    return {name: values[0] for name, values in bound.items() if len(values) == 1 and values[0] is not None}


def _bound(node: Node) -> list[tuple[str, Node | None]]:
    """The names a binding binds with the value each gets (None: one the tree cannot pair with a value)."""
    at = next((i for i, child in enumerate(node.children) if child.type in ("=", ":=")), len(node.children))
    names = [_text(c) for c in _flat(node.children[:at]) if c.type in NAMES]
    values = [c for c in _flat(node.children[at + 1 :]) if c.type != ","]
    if len(values) != len(names):
        return [(name, None) for name in names]
    return list(zip(names, values, strict=True))


def _flat(children: list[Node]) -> list[Node]:
    """Go's expression lists (`a, b := "x", "y"`) as their items."""
    return [item for child in children for item in (child.children if child.type == "expression_list" else [child])]


def _text(node: Node) -> str:
    return (node.text or b"").decode(errors="replace")
