"""A service's source files as parse trees reduced to what the wiring rules ask of them.

Go, TypeScript and JavaScript are parsed with tree-sitter's grammars, Python with `ast`:
a call is a call node (not a word in a comment or a string), its scope is the function that
holds it, and what happens when it fails is read from the try/catch or `if err != nil` around
it (shell scripts are `audit.shell`'s). Rust, Ruby, Java and Kotlin are not parsed: only their
compiled-in migration markers (`sqlx::migrate!`, `embed_migrations!`) are recognised, by text.
"""

from __future__ import annotations

import ast
import io
import os
import re
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from tree_sitter import Node

from migratekit.model.runner_table import go_formatted, python_constants, python_string, with_constants
from migratekit.model.syntax import BINDINGS, nodes, parser_for
from migratekit.model.syntax import constants as literal_constants

LANGUAGES = {".go": "go", ".tsx": "tsx", ".py": "python", ".sh": "shell", ".bash": "shell"}
LANGUAGES |= {suffix: "typescript" for suffix in (".ts", ".mts", ".cts")}
LANGUAGES |= {suffix: "javascript" for suffix in (".js", ".mjs", ".cjs", ".jsx")}
TEXT_ONLY = {".rs", ".rb", ".java", ".kt"}
COMPILED_IN_TEXT = re.compile(r"sqlx::migrate!|embed_migrations!|include_str!\([^)]*migrations")
TEST_FILE = re.compile(
    r"(_test\.go|\.(test|spec)\.[cm]?[jt]sx?|^test_.*\.py|_test\.py|conftest\.py|^test_?helpers?\.\w+|^testutils?\.\w+)$"
)

SOURCE_SUFFIXES = {".ts", ".mts", ".cts", ".tsx", ".js", ".mjs", ".cjs", ".jsx", ".py", ".go", ".rs", ".sh", ".bash"}
SOURCE_SUFFIXES |= {".rb", ".java", ".kt"}
SKIP_DIRS = {"node_modules", "dist", "build", ".venv", "venv", "__pycache__", "target", ".git", "vendor"}
SKIP_DIRS |= {"tests", "test", "__tests__", "testdata", "testutil", "e2e"}  # a test's migration call runs no server
MAX_SOURCE_BYTES = 1_000_000
WANTED_NAMES = {"package.json", "Procfile", "GNUmakefile", "makefile", "Makefile", "fly.toml", "app.json"}

MIGRATE_VERBS = {"run", "apply", "up", "exec", "execute", "perform", "do", "latest"}
MIGRATE_RECEIVERS = re.compile(r"migrat|goose|umzug|flyway|alembic", re.IGNORECASE)
UP_METHODS = {"up", "upcontext", "latest", "run", "runcontext", "upgrade", "migratetolatest"}
LISTEN_METHODS = {"listen", "listenandserve", "listenandservetls", "serve_forever", "run_app", "serve", "servetls"}
LISTEN_CALLS = {"uvicorn.run", "app.run", "e.Start", "r.Run", "router.Run", "engine.Run", "server.Start", "srv.Start"}
# A statement that writes a row in a migration history: a hand-written runner's step (its loop applies a file,
# then records it), whatever the call that sends it is named (client.query, pool.query, db.Exec, cur.execute).
RECORDS_HISTORY = re.compile(r"INSERT\s+INTO\s+[\w.\"]*migration\w*[\"]?\s*\(", re.IGNORECASE)
INSERT_INTO = re.compile(r"INSERT\s+INTO", re.IGNORECASE)  # asked first: most calls insert nothing to resolve
EXIT_CALLS = re.compile(
    r"^(process\.exit|os\.Exit|sys\.exit|exit|os\._exit|panic|(\w+\.)*Fatal\w*|(\w+\.)*fatal|Deno\.exit)$"
)


def _words(name: str) -> list[str]:
    return [w.lower() for w in re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+", name)]


@lru_cache(maxsize=8192)
def is_migration_call(callee: str) -> bool:
    """A call that applies migrations: runMigrations, Migrate, migrate.New, goose.Up, knex.migrate.latest...
    (kept per callee: a service's calls repeat the same few, and every route asks of each)"""
    receiver, _, last = callee.rpartition(".")
    words = _words(last)
    if "migrate" in words and "auto" not in words:
        return True  # Migrate, migrateUp, MigrateToLatest, migrate.New... (not gorm's AutoMigrate)
    if {"migration", "migrations"} & set(words) and MIGRATE_VERBS & set(words):
        return True  # runMigrations, run_migrations, applyMigrations, MigrationsUp
    if receiver.rpartition(".")[2] == "migrate" and last.startswith("New"):
        return True  # golang-migrate: migrate.New(...) is followed by m.Up()
    return last.lower() in UP_METHODS and bool(MIGRATE_RECEIVERS.search(receiver))


@lru_cache(maxsize=8192)
def is_listen_call(callee: str) -> bool:
    return callee.rpartition(".")[2].lower() in LISTEN_METHODS or callee in LISTEN_CALLS


@dataclass(frozen=True)
class Call:
    callee: str  # as written, without arguments: "store.RunMigrations", "app.listen"
    line: int
    scope: str  # the named function holding it; "" for a module's top level (Go: none)
    stops: bool | None  # a failure ends startup (True), is swallowed (False), or cannot be told (None)
    records: bool = False  # its arguments insert a row in a migration history: a hand-written runner's step

    @property
    def name(self) -> str:
        return self.callee.rpartition(".")[2]


@dataclass(frozen=True)
class Program:
    """One parsed source file: its calls in source order and the functions it defines."""

    path: Path
    language: str
    calls: tuple[Call, ...]
    defines: frozenset[str]
    entry: str | None  # the scope a run of this file starts in ("" top level, "main" for Go); None for a library
    embeds_migrations: bool  # the file compiles migrations into the binary (//go:embed *.sql, sqlx::migrate!)

    def as_json(self) -> dict[str, Any]:
        """As the wiring cache keeps it (its path is the file's: not stored)."""
        calls = [[c.callee, c.line, c.scope, c.stops, c.records] for c in self.calls]
        return {
            "language": self.language,
            "calls": calls,
            "defines": sorted(self.defines),
            "entry": self.entry,
            "embeds": self.embeds_migrations,
        }

    @classmethod
    def from_json(cls, path: Path, data: dict[str, Any]) -> Program:
        calls = tuple(
            Call(str(c), int(line), str(scope), stops, bool(records))
            for c, line, scope, stops, records in data["calls"]
        )
        return cls(
            path,
            str(data["language"]),
            calls,
            frozenset(map(str, data["defines"])),
            data["entry"],
            bool(data["embeds"]),
        )


RUST_TEST_ATTRIBUTE = re.compile(r"#\[\s*(?:cfg\s*\(\s*test\s*\)|(?:\w+::)*test\b[^\]]*)\]")


def rust_running_code(text: str) -> str:
    """Rust source less its comments and its test items (`#[cfg(test)] mod tests { … }`, `#[test]`,
    `#[tokio::test]`, `#[sqlx::test]` functions): a `sqlx::migrate!` there runs for the tests, never at start.
    Read by braces, not parsed: Rust is not one of the parsed languages."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.DOTALL)
    text = re.sub(r"(?m)(^|[^:\"])//[^\n]*", r"\1", text)  # not the // of a URL's scheme
    kept, position = [], 0
    for found in RUST_TEST_ATTRIBUTE.finditer(text):
        if found.start() < position:
            continue  # inside an item already left out
        kept.append(text[position : found.start()])
        brace, semicolon = text.find("{", found.end()), text.find(";", found.end())
        if brace == -1 or -1 < semicolon < brace:  # an item without a body (`#[cfg(test)] mod tests;`)
            position = len(text) if semicolon == -1 else semicolon + 1
            continue
        depth, at = 0, brace
        for at in range(brace, len(text)):
            depth += {"{": 1, "}": -1}.get(text[at], 0)
            if depth == 0:
                break
        position = at + 1
    kept.append(text[position:])
    return "".join(kept)


Span = tuple[int, int]  # a comment's bytes in its file's UTF-8 text, from start to end


def read_source(path: Path, text: str) -> tuple[Program | None, tuple[Span, ...]]:
    """A source file's calls (None for a file whose calls are not read) and where its comments are (`blanked`
    gives its code alone), from one parse and one walk of its syntax tree: a large file's walks were most of the
    wiring audit."""
    language = LANGUAGES.get(path.suffix)
    if language is None:
        return parse_program(path, text), ()
    if language == "python":
        return parse_program(path, text), _python_comments(text)
    root = parser_for(language).parse(text.encode()).root_node
    found = nodes(root, SOURCE_NODES)
    spans = tuple((n.start_byte, n.end_byte) for n in found if n.type == "comment")
    return parse_program(path, text, root, found), spans


def parse_program(path: Path, text: str, root: Node | None = None, found: list[Node] | None = None) -> Program | None:
    """The calls of one source file, or None for a file in a language that is not parsed (or a test); `root`
    and `found`: its tree and its nodes of SOURCE_NODES, when read_source has them."""
    language = LANGUAGES.get(path.suffix)
    if TEST_FILE.search(path.name) or language in (None, "shell"):
        if path.suffix == ".rs":
            text = rust_running_code(text)
        if path.suffix in TEXT_ONLY and COMPILED_IN_TEXT.search(text):
            return Program(path, "text", (), frozenset(), None, True)
        return None
    if language == "python":
        return _python(path, text)
    root = root if root is not None else parser_for(language).parse(text.encode()).root_node
    found = found if found is not None else nodes(root, SOURCE_NODES)
    if language == "go":
        return _go(path, root, found)
    constants = literal_constants(root, found)  # INSERT INTO ${TABLE}: the history table a literal const names
    calls = tuple(_calls(found, _js_scope, _js_stops, lambda arguments: with_constants(arguments, constants)))
    defines = frozenset(_js_definitions(found))
    return Program(path, language, calls, defines, "", False)


def text_of(node: Node | None) -> str:
    return node.text.decode(errors="replace") if node is not None and node.text is not None else ""


_PARENTS: dict[Node, Node | None] = {}  # the parents found while one file's calls are read


def _parent(node: Node) -> Node | None:
    """`node.parent`, found once a node while one file's calls are read: tree-sitter finds a node's parent by
    descending from the root, so climbing from each call to its scope and its handler was cubic in how deep
    calls nest (800 nested calls, a minified bundle's style: 23 s a file, an audit that seemed to hang)."""
    try:
        return _PARENTS[node]
    except KeyError:
        parent = _PARENTS[node] = node.parent
        return parent


def _calls(found: list[Node], scope_of, stops_of, resolve=str) -> Iterator[Call]:  # type: ignore[no-untyped-def]
    _PARENTS.clear()
    try:
        for node in found:
            if node.type != "call_expression":
                continue
            callee = "".join(text_of(node.child_by_field_name("function")).split())
            arguments = text_of(node.child_by_field_name("arguments"))
            records = (
                INSERT_INTO.search(arguments) is not None and RECORDS_HISTORY.search(resolve(arguments)) is not None
            )
            yield Call(callee, node.start_point[0] + 1, scope_of(node), stops_of(node), records)
    finally:
        _PARENTS.clear()  # the tree is not kept alive by its nodes


# --- TypeScript / JavaScript ---------------------------------------------------------------

FUNCTION_NODES = {"function_declaration", "method_definition", "generator_function_declaration"}
ANONYMOUS_FUNCTIONS = {"arrow_function", "function_expression", "function"}
# What reading a source file asks of its tree, in one walk (each grammar has those of its language)
SOURCE_NODES = BINDINGS | FUNCTION_NODES | {"call_expression", "comment", "variable_declarator"}


def _js_scope(node: Node) -> str:
    parent = _parent(node)
    while parent is not None:
        if parent.type in FUNCTION_NODES:
            return text_of(parent.child_by_field_name("name"))
        holder = _parent(parent)
        if parent.type in ANONYMOUS_FUNCTIONS and holder is not None:
            if holder.type in ("variable_declarator", "pair", "assignment_expression"):
                return text_of(holder.child_by_field_name("name") or holder.child_by_field_name("key"))
        parent = holder  # an anonymous callback belongs to the function around it
    return ""


def _js_definitions(found: list[Node]) -> Iterator[str]:
    for node in found:
        if node.type in FUNCTION_NODES:
            yield text_of(node.child_by_field_name("name"))
        elif node.type == "variable_declarator" and (node.child_by_field_name("value") or node).type in (
            ANONYMOUS_FUNCTIONS
        ):
            yield text_of(node.child_by_field_name("name"))


def _js_handler_stops(handler: Node | None) -> bool:
    """Does this catch block (or .catch callback) end the process or rethrow?"""
    if handler is None:
        return True
    stack = [handler]
    while stack:
        node = stack.pop()
        if node.type == "throw_statement":
            return True
        if node.type == "call_expression":
            callee = re.sub(r"\s+", "", text_of(node.child_by_field_name("function")))
            args = text_of(node.child_by_field_name("arguments")).strip("() ")
            if EXIT_CALLS.match(callee) and args not in ("0", ""):
                return True
        if node.type == "assignment_expression" and text_of(node.child_by_field_name("left")) == "process.exitCode":
            return text_of(node.child_by_field_name("right")) != "0"
        stack.extend(node.named_children)
    return False


def _js_stops(call: Node) -> bool:
    child, parent = call, _parent(call)
    while parent is not None and parent.type not in FUNCTION_NODES | ANONYMOUS_FUNCTIONS:
        if parent.type == "try_statement" and child == parent.child_by_field_name("body"):
            handler = parent.child_by_field_name("handler")
            return _js_handler_stops(handler.child_by_field_name("body") if handler else None)
        if parent.type == "member_expression" and text_of(parent.child_by_field_name("property")) == "catch":
            outer = _parent(parent)
            args = outer.child_by_field_name("arguments") if outer is not None else None
            return _js_handler_stops(args)
        child, parent = parent, _parent(parent)
    return True  # an unhandled rejection or exception ends a Node process (Node 15 and later)


# --- Go --------------------------------------------------------------------------------------

GO_EMBED = re.compile(r"//go:embed\s+(.+)")


def _go(path: Path, root: Node, walked: list[Node]) -> Program:
    package = next((c for c in root.named_children if c.type == "package_clause"), None)
    is_main = text_of(package).split()[-1:] == ["main"]
    defines = frozenset(
        text_of(c.child_by_field_name("name"))
        for c in root.named_children
        if c.type in ("function_declaration", "method_declaration")
    )
    embeds = any(
        (found := GO_EMBED.match(text_of(c))) is not None and _embeds_sql(path, found[1])
        for c in root.named_children
        if c.type == "comment"
    )
    # fmt.Sprintf("INSERT INTO %s ...", table): the history table a literal const names
    constants = literal_constants(root, walked)
    calls = tuple(_calls(walked, _go_scope, _go_stops, lambda arguments: go_formatted(arguments, constants)))
    return Program(path, "go", calls, defines, "main" if is_main and "main" in defines else None, embeds)


def _embeds_sql(path: Path, patterns: str) -> bool:
    """A //go:embed of SQL files, or of anything by a file in a migrations directory. The file's own directory
    alone is asked: the directories above it are the checkout's too (~/migrations/repo/...)."""
    return path.parent.name == "migrations" or any(".sql" in p or "migrations" in p for p in patterns.split())


def _go_scope(node: Node) -> str:
    parent = _parent(node)
    while parent is not None:
        if parent.type in ("function_declaration", "method_declaration"):
            return text_of(parent.child_by_field_name("name"))
        parent = _parent(parent)
    return ""


def _go_block_stops(block: Node | None) -> bool:
    stack = [block] if block is not None else []
    while stack:
        node = stack.pop()
        if node.type == "return_statement":
            return True
        if node.type == "call_expression":
            callee = text_of(node.child_by_field_name("function"))
            if EXIT_CALLS.match(callee) and text_of(node.child_by_field_name("arguments")) != "(0)":
                return True
        stack.extend(node.named_children)
    return False


def _go_stops(call: Node) -> bool | None:
    """Go has no exceptions: the error a migration returns is checked by the `if err != nil` after it."""
    parent = _parent(call)
    if parent is None:
        return None
    if parent.type in ("argument_list", "return_statement"):
        return True  # handed on: must(...), return Migrate(...)
    if parent.type == "expression_statement":
        return None  # the result is dropped, or it has none (a must-style function that panics)
    statement = _parent(parent) if parent.type == "expression_list" else None
    if statement is None or statement.type not in ("short_var_declaration", "assignment_statement"):
        return None
    if text_of(statement.child_by_field_name("left")).strip() == "_":
        return False
    holder = _parent(statement)
    if holder is not None and holder.type == "if_statement":
        return _go_block_stops(holder.child_by_field_name("consequence"))
    following = statement.next_named_sibling
    if (
        following is not None
        and following.type == "if_statement"
        and "err" in text_of(following.child_by_field_name("condition"))
    ):
        return _go_block_stops(following.child_by_field_name("consequence"))
    return None


# --- Python ----------------------------------------------------------------------------------


def _python(path: Path, text: str) -> Program | None:
    try:
        tree = ast.parse(text, filename=str(path))
    except (SyntaxError, ValueError):
        return None
    calls: list[Call] = []
    defines: set[str] = set()
    imported = _py_imports(tree)
    constants = python_constants(tree)  # f"INSERT INTO {TABLE} ...": the history table a literal constant names

    def visit(node: ast.AST, scope: str, trying: tuple[ast.Try, ...]) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            defines.add(node.name)
            scope, trying = node.name, ()
        elif isinstance(node, ast.Call):
            stops = all(_py_handler_stops(h) for t in trying for h in t.handlers)
            head, dot, rest = ast.unparse(node.func).partition(".")
            callee = imported.get(head, head) + dot + rest  # upgrade() imported from flask_migrate is theirs
            if not callee.rpartition(".")[2][:1].isupper():  # Migrate(app, db) builds an object: it runs nothing
                records = any(RECORDS_HISTORY.search(python_string(a, constants) or "") for a in node.args)
                calls.append(Call(callee, node.lineno, scope, stops, records))
        if isinstance(node, ast.Try):
            for statement in node.body:
                visit(statement, scope, (*trying, node))
            for part in (*node.handlers, *node.orelse, *node.finalbody):
                visit(part, scope, trying)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, scope, trying)

    visit(tree, "", ())
    calls.sort(key=lambda c: c.line)
    return Program(path, "python", tuple(calls), frozenset(defines), "", False)


def _py_imports(tree: ast.Module) -> dict[str, str]:
    """Each imported name with where it comes from: `from alembic import command` -> command: alembic.command."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.update({a.asname or a.name: f"{node.module}.{a.name}" for a in node.names})
        elif isinstance(node, ast.Import):
            names.update({a.asname: a.name for a in node.names if a.asname})
    return names


def _quiet_return(node: ast.Return) -> bool:
    """`return`, `return None`, `return 0`: the process exits 0 and the server may still start."""
    return node.value is None or (isinstance(node.value, ast.Constant) and node.value.value in (0, None))


def _py_handler_stops(handler: ast.ExceptHandler) -> bool:
    for node in ast.walk(handler):
        if isinstance(node, ast.Raise):
            return True
        if isinstance(node, ast.Return) and not _quiet_return(node):
            return True
        if isinstance(node, ast.Call) and EXIT_CALLS.match(ast.unparse(node.func)):
            return True
    return False


def code_only(path: Path, text: str) -> str:
    """The text with its comments blanked (lines kept), so that a word in a comment is never taken for code."""
    return blanked(text, read_source(path, text)[1])


def blanked(text: str, comments: tuple[Span, ...]) -> str:
    """The text with these comments' bytes blanked, its newlines kept."""
    if not comments:
        return text
    data = bytearray(text.encode())
    for start, end in comments:
        data[start:end] = re.sub(rb"[^\n]", b" ", data[start:end])
    return data.decode(errors="replace")


def _python_comments(text: str) -> tuple[Span, ...]:
    """Python's comments as its tokenizer finds them (none when the file does not tokenize), in bytes."""
    try:
        tokens = [t for t in tokenize.generate_tokens(io.StringIO(text).readline) if t.type == tokenize.COMMENT]
    except (tokenize.TokenError, SyntaxError):
        return ()
    if not tokens:
        return ()
    lines = io.StringIO(text).readlines()  # as the tokenizer reads them: at \n alone (splitlines also ends a line
    # at a form feed, U+2028 and others, and every later comment's row would name other bytes)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line.encode()))

    def at(row: int, column: int) -> int:
        return starts[row - 1] + len(lines[row - 1][:column].encode())

    return tuple((at(*token.start), at(*token.end)) for token in tokens)


def service_files(directory: Path) -> Iterator[Path]:
    """The files the wiring audit may read: sources, manifests, build and start files (never a .sql file, never
    a vendored or built directory: however many migrations a service has, none is stat-ed here)."""
    with os.scandir(directory) as entries:
        for entry in entries:
            if entry.name.endswith(".sql"):  # the commonest name in a service, asked first
                continue
            if entry.is_dir(follow_symlinks=False):
                if entry.name not in SKIP_DIRS and not entry.name.startswith("."):
                    yield from service_files(Path(entry.path))
            elif _wanted(entry.name) and entry.is_file() and not TEST_FILE.search(entry.name):
                if entry.stat().st_size <= MAX_SOURCE_BYTES:
                    yield Path(entry.path)


def _wanted(name: str) -> bool:
    suffix = os.path.splitext(name)[1]
    return (
        suffix in SOURCE_SUFFIXES
        or suffix in (".yaml", ".yml")
        or name in WANTED_NAMES
        or name.startswith("Dockerfile")
        or (not suffix and not name.startswith("."))  # a script with a shebang, a built binary
    )
