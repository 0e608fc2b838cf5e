"""A hand-written runner's history table, as its own source declares it.

Many services apply their migrations with a loop of their own (src/db/migrate.ts, migrate.py) that
creates its history table with a CREATE TABLE in a string of its source and records each file it ran
with an INSERT INTO that table. That CREATE TABLE is the only statement of the table's shape: the
audit compares it with the seed's (MK604), and `adopt` reads the table by the columns it declares
(the file's name, when it was applied). A string is read only when the same file also inserts into
the table it creates: a source that merely creates tables is no runner.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from migratekit.model.contract import SEED_COLUMNS
from migratekit.model.migration import SqlSyntaxError, parse_statements

SOURCE_SUFFIXES = {".ts", ".mts", ".cts", ".js", ".mjs", ".cjs", ".py", ".go", ".rs", ".rb", ".java", ".kt"}
SKIP_DIRS = {"node_modules", "dist", "build", ".venv", "venv", "__pycache__", "target", "vendor", "migrations"}
SKIP_DIRS |= {"tests", "test", "__tests__", "testdata", "e2e"}
TEST_FILE = re.compile(r"(_test\.go|\.(test|spec)\.[cm]?[jt]sx?|^test_.*\.py|_test\.py|conftest\.py)$")
CREATE_TABLE = re.compile(r"CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?([\w.\"]+)\s*\(", re.IGNORECASE)
MAX_BYTES = 1_000_000
TEXT_TYPES = {"text", "varchar", "bpchar", "citext", "name"}
TIME_TYPES = {"timestamptz", "timestamp", "date"}


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
            text = path.read_text(errors="replace")
        except OSError:
            continue
        found = declared_in(path, text)
        if found is not None:
            return replace(found, where=path.relative_to(service).as_posix())
    return None


def own_history(service: Path) -> RunnerTable | None:
    """The service's runner keeps a history of its own shape (not the seed's schema_migrations): the table
    its source declares, which 001_init then need not create and `adopt` can import."""
    table = runner_table(service)
    return table if table is not None and set(table.columns) != SEED_COLUMNS else None


def declared_in(path: Path, text: str) -> RunnerTable | None:
    """The CREATE TABLE of a table this file also inserts into, parsed (a statement built from
    interpolations does not parse and is passed over)."""
    for match in CREATE_TABLE.finditer(text):
        name = match[1].replace('"', "")
        if not re.search(rf"INSERT\s+INTO\s+\"?{re.escape(name)}\"?\s*\(", text.replace('"', ""), re.IGNORECASE):
            continue
        end = _closing(text, match.end() - 1)
        if end is None:
            continue
        try:
            statements = parse_statements(text[match.start() : end + 1])
        except SqlSyntaxError:
            continue
        if len(statements) != 1 or statements[0].kind != "CreateStmt":
            continue
        line = text.count("\n", 0, match.start()) + 1
        return _shape(path, line, statements[0].node)
    return None


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
    key = next((k for k in keyed if k in texts), texts[0] if len(texts) == 1 else None)
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
