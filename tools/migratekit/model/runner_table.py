"""A hand-written runner's history table, as its own source declares it.

Many services apply their migrations with a loop of their own (src/db/migrate.ts, migrate.py) that
creates its history table with a CREATE TABLE in a string of its source and records each file it ran
with an INSERT INTO that table. That CREATE TABLE is the only statement of the table's shape: the
audit compares it with the seed's (MK604), and `adopt` reads the table by the columns it declares
(the file's name, when it was applied). A string is read only when the same file also inserts into
the table it creates, and that table is named as a migration history (`*migrat*`, as the wiring audit
recognises a runner's INSERT) or the file is (migrate.ts, migrator.go): application code that creates and
fills a table of its own is no runner. A name built into the SQL by interpolation (`${TABLE}` in a template
literal, `{TABLE}` in a Python f-string) is read when it is a literal constant of the same file.
"""

from __future__ import annotations

import ast
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from migratekit.model.contract import SEED_COLUMNS, SEED_TABLE
from migratekit.model.migration import SqlSyntaxError, parse_statements

SOURCE_SUFFIXES = {".ts", ".mts", ".cts", ".js", ".mjs", ".cjs", ".py", ".go", ".rs", ".rb", ".java", ".kt"}
SKIP_DIRS = {"node_modules", "dist", "build", ".venv", "venv", "__pycache__", "target", "vendor", "migrations"}
SKIP_DIRS |= {"tests", "test", "__tests__", "testdata", "e2e"}
TEST_FILE = re.compile(r"(_test\.go|\.(test|spec)\.[cm]?[jt]sx?|^test_.*\.py|_test\.py|conftest\.py)$")
CREATE_TABLE = re.compile(r"CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?([\w.\"]+)\s*\(", re.IGNORECASE)
CREATES_A_TABLE = re.compile(r"CREATE\s+TABLE", re.IGNORECASE)
MAX_BYTES = 1_000_000
TEXT_TYPES = {"text", "varchar", "bpchar", "citext", "name"}
TIME_TYPES = {"timestamptz", "timestamp", "date"}
# Of several text columns none of which is a key, the one whose name says it names the file (in this order).
KEY_NAMES = ("filename", "file_name", "file", "name", "migration", "migration_name", "script", "script_name", "version")
JS_PLACEHOLDER = re.compile(r"\$\{\s*(?:this\.)?([A-Za-z_$][\w$]*)\s*\}")  # ${TABLE}, ${this.table}
GO_SPRINTF = re.compile(r"fmt\.Sprintf\(\s*(\"(?:[^\"\\\n]|\\.)*\"|`[^`]*`)\s*((?:,\s*[A-Za-z_]\w*\s*)+)\)")
JOINED = re.compile(r"([\"'])\s*\+\s*([A-Za-z_$][\w$]*)\s*\+\s*\1")  # " + TABLE + "
UNRESOLVED = "\x00"  # an interpolation of something other than a literal constant: the SQL cannot be known


@dataclass(frozen=True)
class RunnerTable:
    """The history table a service's own runner creates, and the columns that say what ran and when."""

    path: Path  # the source file holding the CREATE TABLE
    line: int
    where: str  # that file from the service's directory, for messages (src/db/migrate.ts)
    table: str  # schema-qualified (an unqualified name means public, as for every tracking table)
    columns: tuple[str, ...]  # in the order the statement declares them
    key: str | None  # the column naming each file: its primary key or unique text column, or its only text one
    applied_at: str | None  # the first column holding a time


def runner_table(service: Path) -> RunnerTable | None:
    """The first runner history table the service's sources declare (files in name order), or None."""
    for path in sorted(_sources(service)):
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        found = declared_in(path, text)
        if found is not None:
            return replace(found, where=path.relative_to(service).as_posix())
    return None


def own_history(service: Path) -> RunnerTable | None:
    """The service's runner keeps a history of its own shape or name (not the seed's schema_migrations): the
    table its source declares, which 001_init then need not create and `adopt` can import."""
    table = runner_table(service)
    if table is None or (set(table.columns) == SEED_COLUMNS and table.table.rsplit(".", 1)[-1] == SEED_TABLE):
        return None
    return table


def declared_in(path: Path, text: str) -> RunnerTable | None:
    """The CREATE TABLE of a migration history this file also inserts into, parsed (a statement built from
    interpolations other than a literal constant's does not parse and is passed over)."""
    if not CREATES_A_TABLE.search(text):
        return None  # most sources: no parse of them at all
    pieces = python_strings(text) if path.suffix == ".py" else None
    if pieces is None:
        pieces = [(1, _with_constants(path, text))]
    everything = "\n".join(piece for _, piece in pieces).replace('"', "")
    runner_file = "migrat" in path.stem.lower()
    for first_line, piece in pieces:
        for match in CREATE_TABLE.finditer(piece):
            name = match[1].replace('"', "")
            if not (runner_file or "migrat" in name.lower()):
                continue
            if not re.search(rf"INSERT\s+INTO\s+{re.escape(name)}\s*\(", everything, re.IGNORECASE):
                continue
            end = _closing(piece, match.end() - 1)
            if end is None:
                continue
            try:
                statements = parse_statements(piece[match.start() : end + 1])
            except SqlSyntaxError:
                continue
            if len(statements) != 1 or statements[0].kind != "CreateStmt":
                continue
            line = first_line + piece.count("\n", 0, match.start())
            return _shape(path, line, statements[0].node)
    return None


def _with_constants(path: Path, text: str) -> str:
    """The source with each interpolation of a literal constant in place (`${TABLE}`, Go's Sprintf of `table`),
    the constants read from its syntax tree; a language without a grammar here keeps its text."""
    from migratekit.model.syntax import GRAMMARS, constants, tree

    language = GRAMMARS.get(path.suffix)
    if language is None:
        return with_constants(text, {})
    bound = constants(tree(language, text))
    return go_formatted(text, bound) if language == "go" else with_constants(text, bound)


def with_constants(text: str, constants: dict[str, str]) -> str:
    """`${TABLE}` as the constant's value; any other interpolation stays (and keeps its SQL unparsable)."""
    return joined(JS_PLACEHOLDER.sub(lambda m: constants.get(m[1], m[0]), text), constants)


def joined(text: str, constants: dict[str, str]) -> str:
    """`"CREATE TABLE IF NOT EXISTS " + TABLE + " (...)"` as one literal, when TABLE is a literal constant."""
    return JOINED.sub(lambda m: constants[m[2]] if m[2] in constants else m[0], text)


def go_formatted(text: str, constants: dict[str, str]) -> str:
    """`fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s (...)", table)` as the string it makes, when each `%s` is a
    literal constant; lines are kept, so that a statement's line is still its line in the file."""

    def made(match: re.Match[str]) -> str:
        literal, names = match[1], [n.strip() for n in match[2].split(",") if n.strip()]
        if literal.count("%s") != len(names) or "%" in literal.replace("%s", "") or not set(names) <= constants.keys():
            return match[0]
        for name in names:
            literal = literal.replace("%s", constants[name], 1)
        return literal

    return joined(GO_SPRINTF.sub(made, text), constants)


def python_strings(text: str) -> list[tuple[int, str]] | None:
    """Each string of a Python source with its first line, an f-string's `{NAME}` filled in when NAME is bound
    once to a literal string (implicitly joined literals are one string, as Python reads them); None when the
    file does not parse."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return None
    constants = python_constants(tree)
    found: list[tuple[int, str]] = []
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        value = python_string(node, constants)
        if value is not None:
            found.append((getattr(node, "lineno", 1), value))
            continue  # an f-string's parts are not strings of their own
        stack.extend(ast.iter_child_nodes(node))
    return sorted(found)


def python_constants(tree: ast.AST) -> dict[str, str]:
    """Names bound exactly once in the file, to a literal string (TABLE = "migration_history")."""
    bound: dict[str, list[ast.expr]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            bound.setdefault(node.id, [])
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    bound.setdefault(target.id, []).append(node.value)
    return {
        name: values[0].value
        for name, values in bound.items()
        if len(values) == 1 and isinstance(values[0], ast.Constant) and isinstance(values[0].value, str)
    }


def python_string(node: ast.AST, constants: dict[str, str]) -> str | None:
    """A string literal's text, an f-string's with its literal constants in place (others as UNRESOLVED), or
    psycopg's `sql.SQL("... {} ...").format(sql.Identifier(TABLE))` as the SQL it composes."""
    if isinstance(node, ast.Constant):
        return node.value if isinstance(node.value, str) else None
    if isinstance(node, ast.Call):
        return _composed(node, constants) or _formatted(node, constants)
    if isinstance(node, ast.BinOp):
        return _operated(node, constants)
    if not isinstance(node, ast.JoinedStr):
        return None
    parts = []
    for part in node.values:
        if isinstance(part, ast.Constant) and isinstance(part.value, str):
            parts.append(part.value)
        elif (
            isinstance(part, ast.FormattedValue)
            and isinstance(part.value, ast.Name)
            and part.value.id in constants
            and part.conversion == -1
            and part.format_spec is None
        ):
            parts.append(constants[part.value.id])
        else:
            parts.append(UNRESOLVED)
    return "".join(parts)


def _closing(text: str, opening: int) -> int | None:
    depth = 0
    for index in range(opening, min(len(text), opening + 4000)):
        if text[index] == "(":
            depth += 1
        elif text[index] == ")":
            depth -= 1
            if depth == 0:
                return index
    return None


def _shape(path: Path, line: int, node: dict) -> RunnerTable:
    relation = node.get("relation", {})
    table = f"{relation.get('schemaname', 'public')}.{relation.get('relname')}"
    columns: list[tuple[str, str]] = []
    keyed: list[str] = []
    for element in node.get("tableElts", []):
        if "ColumnDef" in element:
            column = element["ColumnDef"]
            names = column.get("typeName", {}).get("names", [])
            kind = names[-1]["String"]["sval"] if names else ""
            columns.append((column["colname"], kind))
            kinds = {c["Constraint"]["contype"] for c in column.get("constraints", []) if "Constraint" in c}
            if kinds & {"CONSTR_PRIMARY", "CONSTR_UNIQUE"}:
                keyed.append(column["colname"])
        elif "Constraint" in element and element["Constraint"].get("contype") in ("CONSTR_PRIMARY", "CONSTR_UNIQUE"):
            keys = [k["String"]["sval"] for k in element["Constraint"].get("keys", [])]
            keyed += keys if len(keys) == 1 else []
    texts = [name for name, kind in columns if kind in TEXT_TYPES]
    named = next((name for wanted in KEY_NAMES for name in texts if name.lower() == wanted), None)
    key = next((k for k in keyed if k in texts), texts[0] if len(texts) == 1 else named)
    applied_at = next((name for name, kind in columns if kind in TIME_TYPES), None)
    return RunnerTable(path, line, path.name, table, tuple(name for name, _ in columns), key, applied_at)


def _sources(directory: Path) -> Iterator[Path]:
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            if entry.name not in SKIP_DIRS and not entry.name.startswith("."):
                yield from _sources(Path(entry.path))
        elif os.path.splitext(entry.name)[1] in SOURCE_SUFFIXES and not TEST_FILE.search(entry.name):
            if entry.is_file() and entry.stat().st_size <= MAX_BYTES:
                yield Path(entry.path)


def _operand(node: ast.expr, constants: dict[str, str]) -> str | None:
    if isinstance(node, ast.Name):
        return constants.get(node.id, UNRESOLVED)
    return python_string(node, constants)


def _operated(node: ast.BinOp, constants: dict[str, str]) -> str | None:
    """`"... " + TABLE + " (...)"`, and `"... %s (...)" % TABLE` (or a tuple of constants)."""
    if isinstance(node.op, ast.Add):
        left, right = _operand(node.left, constants), _operand(node.right, constants)
        return left + right if left is not None and right is not None else None
    if not isinstance(node.op, ast.Mod):
        return None
    template = python_string(node.left, constants)
    values = node.right.elts if isinstance(node.right, ast.Tuple) else [node.right]
    if template is None or template.count("%s") != len(values) or "%" in template.replace("%s", ""):
        return None if template is None else template.replace("%", UNRESOLVED)
    for value in values:
        template = template.replace("%s", _operand(value, constants) or UNRESOLVED, 1)
    return template


def _formatted(call: ast.Call, constants: dict[str, str]) -> str | None:
    """`"... {} (...)".format(TABLE)`: positional fields, each a literal constant."""
    function = call.func
    if not (isinstance(function, ast.Attribute) and function.attr == "format"):
        return None
    if not (isinstance(function.value, ast.Constant) and isinstance(function.value.value, str)):
        return None
    pieces = re.split(r"\{\}", function.value.value)
    if len(pieces) != len(call.args) + 1 or call.keywords:
        return function.value.value.replace("{", UNRESOLVED)
    filled = [_operand(argument, constants) or UNRESOLVED for argument in call.args]
    return "".join(piece + (filled[i] if i < len(filled) else "") for i, piece in enumerate(pieces))


def _composed(call: ast.Call, constants: dict[str, str]) -> str | None:
    """psycopg's sql.SQL(template).format(sql.Identifier(NAME), ...): the template with each `{}` filled by the
    identifier (a literal, or a literal constant), UNRESOLVED for anything else."""
    function = call.func
    if not (isinstance(function, ast.Attribute) and function.attr == "format" and isinstance(function.value, ast.Call)):
        return None
    made = function.value
    if not (_named(made.func, "SQL") and len(made.args) == 1 and isinstance(made.args[0], ast.Constant)):
        return None
    template = made.args[0].value
    if not isinstance(template, str):
        return None
    filled = [_identifier(argument, constants) for argument in call.args]
    pieces = re.split(r"\{\}", template)
    if len(pieces) != len(filled) + 1:
        return template.replace("{", UNRESOLVED)
    return "".join(piece + (filled[i] if i < len(filled) else "") for i, piece in enumerate(pieces))


def _identifier(node: ast.expr, constants: dict[str, str]) -> str:
    if isinstance(node, ast.Call) and _named(node.func, "Identifier") and len(node.args) == 1:
        argument = node.args[0]
        if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
            return argument.value
        if isinstance(argument, ast.Name) and argument.id in constants:
            return constants[argument.id]
    return UNRESOLVED


def _named(function: ast.expr, name: str) -> bool:
    """`sql.SQL` or `SQL`, `psycopg.sql.Identifier` or `Identifier`."""
    return (isinstance(function, ast.Attribute) and function.attr == name) or (
        isinstance(function, ast.Name) and function.id == name
    )
