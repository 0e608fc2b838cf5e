"""A migration file: its version, checksum, header and statements, read exactly as the seed's runner reads it.

Compatibility with the seed's TypeScript runner is the point of this module: version is the
file name without `.sql`, the checksum is the first 16 hex digits of SHA-256 over the text
as UTF-8 (Node's `readFile(..., 'utf-8')` keeps a byte-order mark and turns invalid bytes into
U+FFFD, and so do we), and files are applied in the order of their version numbers (formats.Version), then names.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from operator import attrgetter
from pathlib import Path
from types import MappingProxyType
from typing import Any

from migratekit.errors import ConfigError
from migratekit.model import atlas_sum
from migratekit.model.contract import qualified
from migratekit.model.formats import (
    AUTO,
    DIRECTORY_FORMATS,
    DRIZZLE_FILE,
    FLYWAY_NAME,
    Format,
    SectionError,
    Sections,
    Version,
    atlas_directives,
    contradicts,
    format_groups,
    format_of,
    numeric,
    sections,
    version_of,
)

DECLARED_IN_WORKSPACE = "workspace.yaml declares format: {fmt}"  # who declared a format, as a message says it
HEADER_LINE = re.compile(r"^--\s*(?P<key>[A-Za-z][A-Za-z -]*?)\s*:\s*(?P<value>.*?)\s*$")
NO_TRANSACTION_DIRECTIVE = "no-transaction"
BOM = "\ufeff"

# Statements PostgreSQL refuses to run inside a transaction block.
_NEVER_IN_TRANSACTION = {
    "VacuumStmt": "VACUUM",
    "CreatedbStmt": "CREATE DATABASE",
    "DropdbStmt": "DROP DATABASE",
    "AlterSystemStmt": "ALTER SYSTEM",
    "CreateTableSpaceStmt": "CREATE TABLESPACE",
    "DropTableSpaceStmt": "DROP TABLESPACE",
}

# A word without which `transaction_mode` cannot say "not in a transaction" and `body` has no
# wrapper to remove: transaction control, CONCURRENTLY, ADD VALUE, the statements above, the
# header directive. A file with none of them runs as written, so the apply path need not parse it.
_MODE_WORDS = re.compile(
    r"\b(?:begin|start|commit|end|rollback|abort|savepoint|release|prepare|concurrently|vacuum|value"
    r"|database|system|tablespace|migratekit)\b",
    re.IGNORECASE,
)


# What a run and a rollback say of a part that is not UTF-8 (the audit's MK107 names the same byte)
NOT_UTF8 = "byte 0x{byte:02x} is not UTF-8: the database would get U+FFFD in its place, not the text"
TO_UTF8 = "save the file as UTF-8 (iconv -f latin1 -t utf-8 for a Latin-1 file)"


def first_not_utf8(data: bytes) -> tuple[int, int] | None:
    """(line, byte) of the first byte of `data` that is not UTF-8, or None."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return data[: exc.start].count(b"\n") + 1, data[exc.start]
    return None


def seed_checksum(data: bytes) -> str:
    """The seed runner's checksum of a file's bytes."""
    text = data.decode("utf-8", errors="replace")
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def checksum_variants(data: bytes) -> frozenset[str]:
    """Checksums of the same file as another checkout may hold it: as is, LF, CRLF, without a BOM.

    A Windows checkout (autocrlf) or an editor adding a BOM changes bytes but not the migration,
    so none of these forms counts as an edit.
    """
    text = data.decode("utf-8", errors="replace")
    bare = text.removeprefix(BOM)
    lf = bare.replace("\r\n", "\n")
    crlf = lf.replace("\n", "\r\n")
    forms = {text, bare, lf, crlf, BOM + lf, BOM + crlf}
    return frozenset(hashlib.sha256(f.encode("utf-8")).hexdigest()[:16] for f in forms)


class SqlSyntaxError(ValueError):
    """The file is not SQL that PostgreSQL's parser accepts; `line` is 1-based."""

    def __init__(self, message: str, line: int):
        super().__init__(message)
        self.line = line


@dataclass(frozen=True, slots=True)
class Statement:
    """One top-level statement: its text, the line it starts on, and its parse-tree node type."""

    text: str
    line: int
    kind: str
    node: dict[str, Any] = field(repr=False, compare=False)  # pglast's JSON tree of the statement


@dataclass(frozen=True)
class Migration:
    """One migration of a service: a seed-shaped file, or another tool's (see `formats`)."""

    path: Path  # the file applied forward (for updown, the .up.sql file)
    data: bytes = field(repr=False)
    format: Format = Format.SEED
    down_data: bytes | None = field(default=None, repr=False)  # updown: the .down.sql file's bytes (flyway: U…)
    down_name: str | None = None  # the down part's own file, when it has one (2_b.down.sql, U2__b.sql)
    millis: int | None = None  # drizzle: its journal entry's `when` (or 1.0's directory's time), in ms since 1970

    @property
    def _in_directory(self) -> bool:
        """A migration that is a directory of its own (Diesel's, Prisma's, drizzle-kit 1.0's): named with its
        directory."""
        return self.format in DIRECTORY_FORMATS or (self.format is Format.DRIZZLE and self.path.name == DRIZZLE_FILE)

    @property
    def filename(self) -> str:
        """The file's name in its migrations directory (Diesel's, Prisma's and drizzle-kit 1.0's: its directory's too,
        2024-01-01-000000_x/up.sql, 20240101000000_x/migration.sql)."""
        return f"{self.path.parent.name}/{self.path.name}" if self._in_directory else self.path.name

    @cached_property
    def version(self) -> str:
        return self.path.parent.name if self._in_directory else version_of(self.path.name, self.format)

    @cached_property
    def parsed_version(self) -> Version:
        return Version.parse(self.version)

    @property
    def number(self) -> int | None:
        return self.parsed_version.number

    @property
    def repeatable(self) -> bool:
        """Flyway's R__ file: applied after the versioned ones, and again whenever its checksum changes."""
        return self.parsed_version.repeatable

    @property
    def description(self) -> str:
        return self.parsed_version.slug.replace("_", " ") or self.version

    @cached_property
    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")

    @property
    def not_utf8(self) -> tuple[int, int] | None:
        """(line, byte) of the file's first byte that is not UTF-8, None for a UTF-8 file: decoded, it reaches the
        database as U+FFFD (a Latin-1 'café' applied as 'caf\ufffd')."""
        return first_not_utf8(self.data)

    @property
    def up_not_utf8(self) -> tuple[int, int] | None:
        """The same where the up part (what is applied) holds such a byte: a down section's Latin-1 comment does not
        stop the file going forward, nor an up part's its rollback (`down_not_utf8`)."""
        return self._part_not_utf8(self.sql, self.sql_line)

    @property
    def down_not_utf8(self) -> tuple[int, int] | None:
        if self.down_data is not None:
            return first_not_utf8(self.down_data)
        return self._part_not_utf8(self.down_sql or "", self.down_line)

    def _part_not_utf8(self, text: str, start: int) -> tuple[int, int] | None:
        """The first byte that is not UTF-8 on the lines of one part (from `start`, as many as `text` has): not
        the file's first, which may be the other part's, and not a U+FFFD the file holds as UTF-8 (as is)."""
        if "\ufffd" not in text or self.not_utf8 is None:
            return None
        lines = self.data.split(b"\n")
        for number in range(max(start, 1), min(start + text.count("\n"), len(lines)) + 1):
            found = first_not_utf8(lines[number - 1])
            if found is not None:
                return number, found[1]
        return None

    @cached_property
    def _sections(self) -> Sections | SectionError:
        try:
            return sections(self.format, self.text)
        except SectionError as exc:
            return exc

    @property
    def section_error(self) -> SectionError | None:
        return self._sections if isinstance(self._sections, SectionError) else None

    @property
    def sql(self) -> str:
        """The up part: what is applied forward (the whole text for a seed file); empty when malformed."""
        return self._sections.up if isinstance(self._sections, Sections) else ""

    @property
    def sql_line(self) -> int:
        """The file line the up part starts on."""
        return self._sections.up_line if isinstance(self._sections, Sections) else 1

    def down_part(self) -> Migration | None:
        """The down part as a migration of its own (seed-shaped text), and the file line it starts on."""
        text = self.down_sql
        if text is None:
            return None
        path = self.path.with_name(self.down_name) if self.down_data is not None and self.down_name else self.path
        return Migration(path, text.encode("utf-8"))

    @property
    def down_line(self) -> int:
        return self._sections.down_line if isinstance(self._sections, Sections) and self.down_data is None else 1

    @property
    def down_sql(self) -> str | None:
        """The down part, for `invoke rollback`; None when the migration has none (always, for seed)."""
        if self.down_data is not None:
            return self.down_data.decode("utf-8", errors="replace")
        return self._sections.down if isinstance(self._sections, Sections) else None

    @cached_property
    def checksum(self) -> str:
        return seed_checksum(self.data)

    @cached_property
    def checksums(self) -> frozenset[str]:
        return checksum_variants(self.data)

    @cached_property
    def header(self) -> Mapping[str, str]:
        return parse_header(self.text)

    @cached_property
    def statements(self) -> tuple[Statement, ...]:
        """Top-level statements of the up part, from PostgreSQL's own parser; raises SqlSyntaxError.

        Kept with the migration: the audit's rules read them again and again. The runner calls `parse`.
        """
        return self.parse()

    def parse(self) -> tuple[Statement, ...]:
        """The statements, parsed anew unless the audit has kept them: the runner holds a file's trees only while
        it sends that file (kept for every file of a run, the trees were most of its memory: some 40 KB a file
        of the seed's template, whose function bodies say BEGIN and so must be parsed to be sent)."""
        cached = self.__dict__.get("statements")
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        error = self.section_error
        if error is not None:
            raise SqlSyntaxError(str(error), error.line)
        return parse_statements(self.sql, self.sql_line)

    def created_extensions(self) -> tuple[tuple[str, int], ...]:
        """(extension, line) for each CREATE EXTENSION of the up part; raises SqlSyntaxError.

        Only the statements that mention an extension are parsed (the scanner splits the file), so that the
        check before a run does not parse every file of the seed's template, which creates one in each.
        """
        from pglast import parser as pg_parser

        error = self.section_error
        if error is not None:
            raise SqlSyntaxError(str(error), error.line)
        text, found = self.sql, []
        try:
            pieces = pg_parser.split(text, with_parser=False, only_slices=True)
        except pg_parser.ParseError as exc:
            raise SqlSyntaxError(str(exc.args[0]), self.sql_line) from None
        for piece in pieces:
            if "extension" not in text[piece].lower():
                continue
            line = text.count("\n", 0, piece.start) + self.sql_line
            for statement in parse_statements(text[piece], line):
                if statement.kind == "CreateExtensionStmt":
                    found.append((statement.node.get("extname", ""), statement.line))
        return tuple(found)

    @property
    def syntax_error(self) -> SqlSyntaxError | None:
        """Why the file does not parse, or None (remembered with whether it holds a statement, so that neither
        is asked of the parser again once its trees are forgotten)."""
        if "_syntax_error" not in self.__dict__:
            try:
                empty, error = not self.statements, None
            except SqlSyntaxError as exc:
                empty, error = False, exc
            self.__dict__["_syntax_error"], self.__dict__["_empty"] = error, empty
        return self.__dict__["_syntax_error"]  # type: ignore[no-any-return]

    @property
    def empty(self) -> bool:
        """The file parses and holds no statement (comments alone)."""
        return self.syntax_error is None and bool(self.__dict__["_empty"])

    def forget_trees(self) -> None:
        """Drop the statements the audit kept (`parse` reads them anew): a service of thousands of migrations is
        linted holding its files' trees one at a time, not all at once."""
        self.__dict__.pop("statements", None)

    @property
    def format_no_transaction(self) -> str | None:
        """Why the format's own option (dbmate transaction:false, goose NO TRANSACTION) keeps it out of one."""
        return self._sections.no_transaction if isinstance(self._sections, Sections) else None

    def transaction_mode(self, statements: tuple[Statement, ...] | None = None) -> tuple[bool, str]:
        """(runs in one transaction, why not) for this file, from `statements` when given (else the kept ones)."""
        if isinstance(self._sections, Sections) and self._sections.no_transaction:
            return False, self._sections.no_transaction
        return transaction_mode(self.statements if statements is None else statements, self.header)

    @cached_property
    def runs_as_written(self) -> bool:
        """True when the text alone shows the file is transactional with no wrapper to remove.

        A word test, not a parse: parsing is most of a large run's client time, and a file that
        contains none of `_MODE_WORDS` can only get (True, "") from `transaction_mode` and itself
        from `body`. False means "parse to know", not "not transactional".
        """
        if isinstance(self._sections, Sections) and self._sections.no_transaction:
            return False
        return _MODE_WORDS.search(self.sql) is None

    def forget_text(self) -> None:
        """Drop what was read from the bytes (the text, its sections and header): asked again, they are read anew.

        The runner calls it once a migration is applied, so that a run of thousands holds each file's text only
        while it sends it (the text and header were most of what a from-empty run kept per file).
        """
        for name in _FROM_TEXT:
            self.__dict__.pop(name, None)


_FROM_TEXT = ("text", "_sections", "header", "runs_as_written", "checksums")  # the caches forget_text drops


def tracking_table_statement(
    migrations: tuple[Migration, ...], tracking_table: str
) -> tuple[Migration, Statement | None] | None:
    """001_init and its CREATE TABLE of the tracking table (None inside when it has none).

    None when there is no parseable 001 file. An unqualified table name means `public`.
    """
    first = next((m for m in migrations if m.number == 1), None)
    if first is None or first.syntax_error is not None:
        return None
    wanted = qualified(tracking_table)
    for statement in first.statements:
        target = statement.node.get("relation", {}) if statement.kind == "CreateStmt" else {}
        if f"{target.get('schemaname', 'public')}.{target.get('relname')}" == wanted:
            return first, statement
    return first, None


def parse_header(text: str) -> Mapping[str, str]:
    """Leading `-- Key: value` comment lines, keys lower-cased (`migration`, `description`, `created`, `migratekit`)."""
    header: dict[str, str] = {}
    for line in _leading_lines(text.removeprefix(BOM)):
        stripped = line.strip()
        if not stripped:
            continue
        if not stripped.startswith("--"):
            break
        match = HEADER_LINE.match(stripped)
        if match:
            key = match["key"].strip().lower()
            header[key] = f"{header[key]} {match['value']}" if key in header else match["value"]
    return MappingProxyType(header)


def _leading_lines(text: str, size: int = 512) -> Iterator[str]:
    """The lines of `text` (as str.splitlines cuts them), split from its start as far as they are read: a header
    is a few lines at the top of a file that may hold thousands."""
    done = 0
    while size < len(text):
        lines = text[:size].splitlines()[:-1]  # the last may go on past `size`
        yield from lines[done:]
        done = len(lines)
        size *= 4
    yield from text.splitlines()[done:]


def parse_statements(text: str, first_line: int = 1) -> tuple[Statement, ...]:
    from pglast import parser as pg_parser  # imported on first parse: an up-to-date run never needs it

    data = text.encode("utf-8")
    try:
        tree = json.loads(pg_parser.parse_sql_json(text))
    except pg_parser.ParseError as exc:
        message, location = exc.args[0], exc.args[1] if len(exc.args) > 1 else 0
        line = text[: max(location, 0)].count("\n") + first_line
        raise SqlSyntaxError(str(message), line) from None
    statements = []
    line, counted = first_line, 0  # newlines are counted incrementally: files can hold thousands of statements
    for raw in tree.get("stmts", []):
        start = raw.get("stmt_location", 0)
        length = raw.get("stmt_len", 0)
        line += data.count(b"\n", counted, start)
        counted = start
        chunk = data[start : start + length] if length else data[start:]
        ((kind, node),) = raw["stmt"].items()
        statements.append(Statement(text=chunk.decode("utf-8").strip(), line=line, kind=kind, node=node))
    return tuple(statements)


def transaction_mode(statements: tuple[Statement, ...], header: Mapping[str, str]) -> tuple[bool, str]:
    """Whether a file can run inside one transaction with its tracking row, and if not, why.

    A file that wraps itself in BEGIN ... COMMIT is still transactional: the runner unwraps it
    (see `body`). Any other transaction control means the file manages its own transactions.
    """
    if header.get("migratekit", "").strip().lower() == NO_TRANSACTION_DIRECTIVE:
        return False, f"header directive '-- migratekit: {NO_TRANSACTION_DIRECTIVE}'"
    control = [s for s in statements if s.kind == "TransactionStmt"]
    if control and not _self_wrapped(statements):
        return False, f"line {control[0].line}: the file manages its own transactions"
    for s in statements:
        kind = s.kind
        if kind in _NEVER_IN_TRANSACTION and (kind != "VacuumStmt" or s.node.get("is_vacuumcmd")):
            return False, f"line {s.line}: {_NEVER_IN_TRANSACTION[kind]} cannot run in a transaction"
        if (
            s.node.get("concurrent")
            or (kind == "ReindexStmt" and _reindex_concurrently(s))
            or (kind == "AlterTableStmt" and _detach_concurrently(s))
        ):
            return False, f"line {s.line}: CONCURRENTLY cannot run in a transaction"
        if kind == "AlterEnumStmt" and s.node.get("newVal") and not s.node.get("oldVal") and len(statements) > 1:
            return False, f"line {s.line}: a value added by ALTER TYPE ... ADD VALUE is unusable until committed"
    return True, ""


def body(statements: tuple[Statement, ...]) -> tuple[Statement, ...]:
    """The statements to run inside the runner's transaction: a file's own BEGIN/COMMIT wrapper removed."""
    return statements[1:-1] if _self_wrapped(statements) else statements


def _self_wrapped(statements: tuple[Statement, ...]) -> bool:
    kinds = [s.node.get("kind") if s.kind == "TransactionStmt" else None for s in statements]
    return (
        len(statements) >= 2
        and kinds[0] in ("TRANS_STMT_BEGIN", "TRANS_STMT_START")
        and kinds[-1] == "TRANS_STMT_COMMIT"
        and all(k is None for k in kinds[1:-1])
    )


def _reindex_concurrently(statement: Statement) -> bool:
    if statement.kind != "ReindexStmt":
        return False
    params = statement.node.get("params") or []
    return any(p.get("DefElem", {}).get("defname") == "concurrently" for p in params)  # type: ignore[union-attr]


def _detach_concurrently(statement: Statement) -> bool:
    """ALTER TABLE … DETACH PARTITION … CONCURRENTLY: PostgreSQL refuses it inside a transaction block too."""
    if statement.kind != "AlterTableStmt":
        return False
    commands = statement.node.get("cmds") or []
    return any(c.get("AlterTableCmd", {}).get("def", {}).get("PartitionCmd", {}).get("concurrent") for c in commands)  # type: ignore[union-attr]


MAX_MIGRATION_BYTES = 20_000_000  # a larger "migration" is a data load: use COPY from a file instead


def load_migrations(
    directory: Path, fmt: str = AUTO, mixed: bool = False, declared_by: str = DECLARED_IN_WORKSPACE
) -> tuple[Migration, ...]:
    """Every migration of a directory, in numeric order of version (999 before 1000), then by name.

    `fmt` is "auto" (each file's format detected; a directory mixing formats is a ConfigError naming
    the files, unless `mixed`: the audit reports it as MK117 and reads on) or one of `formats.FORMATS`.
    For updown, each .up.sql carries its .down.sql.
    A file linked to somewhere outside the directory, or too large to be a migration, or a
    directory that cannot be read, is bad input: a ConfigError naming it, before anything runs.
    """
    files = read_files(directory)
    formats = {name: format_of(name, data.decode("utf-8", "replace")) for name, data in files.items()}
    if fmt == AUTO and (directory / atlas_sum.SUM_FILE).is_file() and set(formats.values()) <= {Format.SEED}:
        # Atlas's integrity file marks its own layout; Atlas also hashes the golang-migrate, goose, dbmate or Flyway
        # directories it is told to read (dir = "file://…?format=goose"), which stay those tools'
        fmt, declared_by = Format.ATLAS, f"{directory.name}/{atlas_sum.SUM_FILE} is Atlas's (format: {{fmt}})"
    diesel = _diesel_directories(directory) if fmt in (AUTO, Format.DIESEL) else {}
    for name in diesel:
        files[f"{name}/up.sql"], formats[f"{name}/up.sql"] = diesel[name][0], Format.DIESEL
    prisma = fmt in (AUTO, Format.PRISMA) and is_prisma_directory(directory, fmt)
    if prisma:
        _take_prisma(directory, files, formats, mixed)
    drizzle = drizzle_layout(directory, files) if fmt in (AUTO, Format.DRIZZLE) and not prisma else None
    if drizzle is not None:
        _take_drizzle(drizzle, files, formats, mixed)
    formats = _one_format(directory, fmt, formats, mixed, declared_by)
    migrations = []
    undo = _flyway_undo(directory, {n: d for n, d in files.items() if formats[n] is Format.FLYWAY})
    for name, data in files.items():
        if formats[name] is Format.UPDOWN or (formats[name] is Format.SQLX and name.endswith((".up.sql", ".down.sql"))):
            if not name.endswith(".up.sql"):
                continue  # a down part: it travels with its up file
            pair = name.removesuffix(".up.sql") + ".down.sql"
            migrations.append(Migration(directory / name, data, formats[name], files.get(pair), pair))
        elif formats[name] is Format.DIESEL:
            down_data = diesel[name.removesuffix("/up.sql")][1]
            migrations.append(Migration(directory / name, data, Format.DIESEL, down_data, "down.sql"))
        elif formats[name] is Format.FLYWAY:
            if name[0] in "UB":
                continue  # an undo travels with its version; a baseline is never run (see formats)
            found = undo.get(name)
            down_name: str | None = found[0] if found else None
            down: bytes | None = found[1] if found else None
            migrations.append(Migration(directory / name, data, Format.FLYWAY, down, down_name))
        elif formats[name] is Format.DRIZZLE and drizzle is not None:
            migrations.append(Migration(directory / name, data, Format.DRIZZLE, millis=drizzle.files[name][1]))
        elif formats[name] is Format.ATLAS and is_atlas_checkpoint(data):
            continue  # Atlas runs a checkpoint only on an empty database, in place of the files before it
        else:
            migrations.append(Migration(directory / name, data, formats[name]))
    ordered = _ordered(migrations, drizzle)
    if fmt == Format.ATLAS and not mixed:  # the audit says MK104 and MK130
        _atlas_checked(directory, ordered)
    return ordered


def _one_format(
    directory: Path, fmt: str, formats: dict[str, Format], mixed: bool, declared_by: str
) -> dict[str, Format]:
    """Each file's format as declared, where it does not contradict it; a ConfigError for a contradiction or a mix
    of formats, unless `mixed` (the audit reads each file as what it is, and says so: MK117, MK118)."""
    if fmt != AUTO:
        declared = Format(fmt)
        against = sorted(name for name, found in formats.items() if contradicts(declared, found))
        if against and not mixed:
            raise ConfigError(declared_mismatch(directory, declared, {n: formats[n] for n in against}, declared_by))
        formats = {name: found if name in against else declared for name, found in formats.items()}
    if len(set(formats.values())) > 1 and not mixed:
        raise ConfigError(
            f"{directory} mixes migration formats ({format_groups(formats.items())}); keep one format per "
            "service: move the other tool's files to a service of their own, or convert them"
        )
    return formats


def _ordered(migrations: list[Migration], drizzle: DrizzleLayout | None) -> tuple[Migration, ...]:
    """In numeric order of version, then by name; a drizzle journal's in its order (checked to be the same)."""
    ordered = sorted(migrations, key=lambda m: (m.parsed_version.key, m.filename))
    if drizzle is not None and drizzle.journal:
        journal_order = {name: i for i, name in enumerate(drizzle.files)}
        ordered.sort(key=lambda m: journal_order.get(m.filename, -1))
    return tuple(ordered)


def _take_prisma(directory: Path, files: dict[str, bytes], formats: dict[str, Format], mixed: bool) -> None:
    """Prisma's migrations, each directory's migration.sql; what `prisma migrate deploy` refuses is bad input, unless
    `mixed` (the audit reports each as MK119)."""
    problems = prisma_problems(directory)
    if problems and not mixed:
        path, _, message = problems[0]
        raise ConfigError(f"{path}: {message}")
    for name, data in _prisma_migrations(directory).items():
        files[f"{name}/migration.sql"], formats[f"{name}/migration.sql"] = data, Format.PRISMA


def _take_drizzle(drizzle: DrizzleLayout, files: dict[str, bytes], formats: dict[str, Format], mixed: bool) -> None:
    """drizzle's migrations in place of the directory's files: what its journal lists, or 1.0's directories. What
    drizzle's migrator would stop at or skip is bad input, unless `mixed` (the audit reports it as MK113)."""
    if drizzle.problems and not mixed:
        raise ConfigError(f"{drizzle.problems[0][0]}: {drizzle.problems[0][1]}")
    for name in drizzle.unlisted:
        del files[name], formats[name]
    for name, (data, _) in drizzle.files.items():
        files[name], formats[name] = data, Format.DRIZZLE


def is_atlas_checkpoint(data: bytes) -> bool:
    """An Atlas checkpoint file (`-- atlas:checkpoint` among its file directives): the whole schema up to its version,
    which Atlas runs only on an empty database instead of the files before it. migratekit applies those files
    themselves, which the checkpoint promises are the same schema, and never runs it (as Flyway's B files)."""
    return b"atlas:checkpoint" in data and bool(atlas_directives(data.decode("utf-8", "replace"), "checkpoint"))


def atlas_checkpoints(directory: Path) -> tuple[str, ...]:
    """The Atlas versions of a directory's checkpoint files (20240301000000 of 20240301000000_checkpoint.sql)."""
    return tuple(
        name.removesuffix(".sql").split("_", 1)[0]
        for name, data in atlas_sum.sql_files(directory).items()
        if is_atlas_checkpoint(data)
    )


def _atlas_checked(directory: Path, migrations: tuple[Migration, ...]) -> None:
    """An Atlas directory is applied only as Atlas would apply it: its files as atlas.sum records them (Atlas refuses
    to run a directory that does not match), in the order of their names, which must be the order of their numbers
    (Atlas compares versions as text: 10_b.sql before 9_a.sql), and with the directives Atlas accepts."""
    mismatch = atlas_sum.check(directory)
    if mismatch is not None:
        raise ConfigError(
            f"{directory / atlas_sum.SUM_FILE}:{mismatch.line}: {mismatch.message}; Atlas refuses such a directory "
            f"too: {atlas_sum.FIX}"
        )
    for migration in migrations:
        broken = migration.section_error  # a directive Atlas refuses (two txmodes, txmode all, an empty delimiter)
        if broken is not None:
            raise ConfigError(f"{migration.path}:{broken.line}: {broken}")
    by_name = sorted(migrations, key=lambda m: m.filename.encode("utf-8", "surrogateescape"))
    for ours, theirs in zip(migrations, by_name, strict=True):
        if ours is not theirs:
            raise ConfigError(
                f"{directory}: Atlas applies {theirs.filename} before {ours.filename} (it orders files by name), but "
                "their numbers say the other way; give every version one width (Atlas's own are 14-digit "
                "timestamps), then run `atlas migrate hash`"
            )


def _flyway_undo(directory: Path, files: Mapping[str, bytes]) -> dict[str, tuple[str, bytes]]:
    """Each versioned Flyway file's undo file (U1_1__x.sql undoes V1.1__y.sql: the same version, as Flyway compares
    them); an undo of no version, or two of one, is a ConfigError naming them: which to run back could not be told."""
    versions: dict[tuple[int, ...], str] = {}
    for name in files:
        match = FLYWAY_NAME.match(name)
        if match and match["prefix"] == "V":
            versions[numeric(match["version"]) or (0,)] = name
    undo: dict[str, tuple[str, bytes]] = {}
    for name, data in files.items():
        match = FLYWAY_NAME.match(name)
        if match is None or match["prefix"] != "U":
            continue
        forward = versions.get(numeric(match["version"]) or (0,))
        if forward is None:
            raise ConfigError(
                f"{directory / name}: an undo migration of version {match['version']}, which no V{match['version']}__"
                "….sql file has; add that migration, or remove the undo file"
            )
        if forward in undo:
            raise ConfigError(
                f"{directory}: {undo[forward][0]} and {name} both undo {forward}; keep one undo file per version"
            )
        undo[forward] = (name, data)
    return undo


def declared_mismatch(
    directory: Path, declared: Format, found: Mapping[str, Format], declared_by: str = DECLARED_IN_WORKSPACE
) -> str:
    """Why files cannot be read as the declared format (`declared_by`: who declared it, {fmt}), and what to do."""
    listed = format_groups(found.items())
    remedy = "set format: auto (or the files' own)" if "workspace.yaml" in declared_by else "give the files' own format"
    return (
        f"{directory}: {declared_by.format(fmt=declared)}, but these files are written in another ({listed}); read "
        f"as {declared}, a down part could run forward. {remedy[0].upper()}{remedy[1:]}, or move the files to a "
        "service of their own"
    )


def _read(path: str) -> bytes:
    """A file's bytes through its descriptor, cheaper than open().read() for a small file (an up-to-date run
    reads every migration of every service to compare checksums): opened by its path as a string, and read
    once when that read returns fstat's size (a short read, or a file grown since, is read on to its end)."""
    descriptor = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        size = os.fstat(descriptor).st_size
        if size > MAX_MIGRATION_BYTES:
            raise ConfigError(
                f"{path}: {size} bytes, over {MAX_MIGRATION_BYTES}; load bulk data "
                "with COPY from a file, not a migration"
            )
        data = os.read(descriptor, size + 1)
        if len(data) == size:  # the whole file, as fstat saw it
            return data
        parts = [data]  # a short read (network file systems) or a file still growing
        while parts[-1]:
            parts.append(os.read(descriptor, 1 << 20))
        return b"".join(parts)
    finally:
        os.close(descriptor)


def _read_inside(directory: Path, path: Path) -> bytes:
    """A migration inside a directory of migrations (Diesel's, Prisma's, drizzle-kit 1.0's): refused when it, or the
    directory holding it, is a link to somewhere outside the migrations directory, as a linked plain file is."""
    target = path.resolve()
    if path.parent.is_symlink() or path.is_symlink():
        root = directory.resolve()
        if not target.is_relative_to(root):
            linked = path.parent if path.parent.is_symlink() else path
            raise ConfigError(
                f"{linked}: a symbolic link to {linked.resolve()}, outside {directory}; "
                "copy the migration into the directory instead"
            )
    return _read(str(path))


def _diesel_directories(directory: Path) -> dict[str, tuple[bytes, bytes | None]]:
    """Diesel's migrations: each subdirectory holding an up.sql (dot-directories skipped, as Diesel skips them), by
    name, with its up.sql's and down.sql's bytes."""
    found: dict[str, tuple[bytes, bytes | None]] = {}
    try:
        with os.scandir(directory) as entries:
            names = sorted(e.name for e in entries if e.is_dir() and not e.name.startswith("."))
    except OSError:
        return found
    for name in names:
        up, down = directory / name / "up.sql", directory / name / "down.sql"
        if up.is_file():
            found[name] = (_read_inside(directory, up), _read_inside(directory, down) if down.is_file() else None)
    return found


PRISMA_LOCK = "migration_lock.toml"
PRISMA_PROVIDER = "postgresql"


def _subdirectories(directory: Path) -> list[str]:
    try:
        with os.scandir(directory) as entries:
            return sorted(e.name for e in entries if e.is_dir() and not e.name.startswith("."))
    except OSError:
        return []


def is_prisma_directory(directory: Path, fmt: str = AUTO) -> bool:
    """Prisma Migrate's migrations directory: declared so, or holding its lock file, or, undeclared, a
    <name>/migration.sql. drizzle-kit 1.0 writes directories of the same shape: its snapshot.json beside each
    migration.sql, or its meta/ journal directory, says they are drizzle's."""
    if fmt == Format.PRISMA or (directory / PRISMA_LOCK).is_file():
        return True
    if fmt != AUTO or (directory / "meta").is_dir():
        return False
    scripts = [name for name in _subdirectories(directory) if (directory / name / "migration.sql").is_file()]
    return bool(scripts) and not any((directory / name / "snapshot.json").is_file() for name in scripts)


def prisma_problems(directory: Path) -> list[tuple[Path, int | None, str]]:
    """What `prisma migrate deploy` itself refuses in its directory: a migration_lock.toml of another provider
    (read as Prisma reads it: the first line starting with `provider`), and a migration directory without its
    migration.sql (Prisma takes every directory for a migration, and fails reading its script)."""
    problems: list[tuple[Path, int | None, str]] = []
    lock = directory / PRISMA_LOCK
    try:
        text = lock.read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = None
    if text is not None:
        lines = text.splitlines()
        at = next((i for i, line in enumerate(lines) if line.startswith("provider")), None)
        provider = "" if at is None else lines[at].removeprefix("provider = ").strip().strip('"')
        if provider != PRISMA_PROVIDER:
            said = f"provider {provider!r}" if at is not None else "no provider"
            problems.append(
                (
                    lock,
                    None if at is None else at + 1,
                    f"Prisma's lock file names {said}, not {PRISMA_PROVIDER!r}: these migrations were written for "
                    f'another database, and prisma migrate deploy refuses them too (P3019); write provider = "'
                    f"{PRISMA_PROVIDER}\" once the migrations are PostgreSQL's, or move them to a service of their own",
                )
            )
    for name in _subdirectories(directory):
        if not (directory / name / "migration.sql").is_file():
            problems.append(
                (
                    directory / name,
                    None,
                    "a Prisma migration directory without migration.sql: prisma migrate deploy fails reading it, "
                    "and migratekit refuses it; write its migration.sql, or remove the directory",
                )
            )
    return problems + _prisma_order(directory)


def _prisma_order(directory: Path) -> list[tuple[Path, int | None, str]]:
    """Prisma applies its directories in the order of their names; migratekit in the order of their versions'
    numbers. Where the two differ (3_x beside 20240101120000_y), which runs first cannot be both: refused."""
    names = [name for name in _subdirectories(directory) if (directory / name / "migration.sql").is_file()]
    by_number = sorted(names, key=lambda name: (Version.parse(name).key, name))
    for ours, theirs in zip(by_number, sorted(names, key=lambda name: name.encode()), strict=True):
        if ours != theirs:
            return [
                (
                    directory / theirs,
                    None,
                    f"Prisma applies {theirs} before {ours} (it orders its directories by name), but their numbers say "
                    "the other way; give every migration's directory prisma migrate dev's 14-digit timestamp",
                )
            ]
    return []


def _prisma_migrations(directory: Path) -> dict[str, bytes]:
    """Each Prisma migration's migration.sql by its directory's name (Prisma applies them in that name's order)."""
    found: dict[str, bytes] = {}
    for name in _subdirectories(directory):
        script = directory / name / "migration.sql"
        if script.is_file():
            found[name] = _read_inside(directory, script)
    return found


DRIZZLE_JOURNAL = "meta/_journal.json"


@dataclass(frozen=True)
class DrizzleLayout:
    """drizzle-kit's migrations as drizzle's migrator reads them, and what in them it would trip over.

    With a journal (drizzle-kit before 1.0), the migrations are the journal's entries, in its order, each
    `<tag>.sql` with the entry's `when`; drizzle's migrator stops at an entry without its file and never applies
    a file the journal does not list. Without one (drizzle-kit 1.0), each directory holding a migration.sql is
    one, in the order of its name, whose first 14 digits are its time (UTC).
    """

    journal: bool
    files: dict[str, tuple[bytes, int]]  # file name (0000_x.sql, 20240101120000_x/migration.sql) -> bytes, millis
    unlisted: tuple[str, ...] = ()  # .sql files beside a journal that does not list them
    problems: tuple[tuple[Path, str], ...] = ()  # (file, what is wrong and what to do)


def drizzle_layout(directory: Path, files: Mapping[str, bytes]) -> DrizzleLayout | None:
    """drizzle-kit's layout in `directory` (its top-level .sql files already read), or None when it has none."""
    journal = directory / DRIZZLE_JOURNAL
    folders = _drizzle_directories(directory)
    if not journal.is_file():
        return _drizzle_folders(directory, folders) if folders else None
    problems: list[tuple[Path, str]] = []
    if folders:
        problems.append(
            (
                journal,
                "drizzle-kit's journal beside drizzle-kit 1.0's migration directories "
                f"({', '.join(sorted(folders)[:3])}); drizzle 1.0 refuses the journal: run drizzle-kit up to move "
                "the journal's migrations into directories, or remove the directories",
            )
        )
    entries, error = _journal_entries(journal)
    if error:
        return DrizzleLayout(True, {}, tuple(files), ((journal, error),))
    found: dict[str, tuple[bytes, int]] = {}
    previous: tuple[str, int] | None = None
    for tag, when in entries:
        name = f"{tag}.sql"
        if name in found:
            problems.append((journal, f"lists {tag} twice; keep one entry per migration"))
            continue
        if name not in files:
            problems.append(
                (
                    journal,
                    f"lists {tag}, but {name} does not exist beside it (drizzle's migrator stops there "
                    "too); restore the file, or remove its entry with drizzle-kit drop",
                )
            )
            continue
        if previous is not None and when <= previous[1]:
            problems.append(
                (
                    journal,
                    f"{tag}'s when ({when}) is not later than {previous[0]}'s ({previous[1]}): on a "
                    f"database that has {previous[0]}, drizzle's migrator would never apply {tag}; regenerate it "
                    "with drizzle-kit generate, or set its when after the one before",
                )
            )
        elif previous is not None and Version.parse(tag).key < Version.parse(previous[0]).key:
            problems.append(
                (
                    journal,
                    f"lists {tag} after {previous[0]}, but migratekit orders versions by their numbers "
                    "and names; use drizzle-kit's index, timestamp or unix prefix, so that name order is the "
                    "journal's order",
                )
            )
        found[name] = (files[name], when)
        previous = (tag, when)
    unlisted = tuple(name for name in files if name not in found)
    for name in unlisted:
        problems.append(
            (
                directory / name,
                f"not in {DRIZZLE_JOURNAL}: drizzle's migrator never applies it; generate "
                "migrations with drizzle-kit generate (--custom for hand-written SQL), or delete the file",
            )
        )
    return DrizzleLayout(True, found, unlisted, tuple(problems))


def _journal_entries(journal: Path) -> tuple[list[tuple[str, int]], str]:
    """The journal's (tag, when) pairs in its order, or why it cannot be read as drizzle-kit writes it."""
    try:
        data = json.loads(journal.read_text(encoding="utf-8", errors="replace"))
    except (OSError, ValueError) as exc:
        return [], f"not drizzle-kit's journal ({exc}); restore it from version control"
    entries = data.get("entries") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        return [], "no entries list, as drizzle-kit writes one; restore it from version control"
    dialect = data.get("dialect")
    if dialect not in (None, "postgresql", "postgres", "pg"):
        return [], f"the journal of dialect {dialect!r}, not PostgreSQL's: this is no PostgreSQL service's"
    pairs = []
    for index, entry in enumerate(entries):
        tag = entry.get("tag") if isinstance(entry, dict) else None
        when = entry.get("when") if isinstance(entry, dict) else None
        if not isinstance(tag, str) or not tag or "/" in tag or not isinstance(when, int) or isinstance(when, bool):
            return [], f"entry {index} has no tag and when as drizzle-kit writes them; correct it"
        pairs.append((tag, when))
    return pairs, ""


def _drizzle_directories(directory: Path) -> dict[str, Path]:
    """drizzle-kit 1.0's migrations: each subdirectory holding a migration.sql (drizzle's migrator reads every one)."""
    try:
        with os.scandir(directory) as entries:
            names = sorted(e.name for e in entries if e.is_dir())
    except OSError:
        return {}
    return {name: directory / name / DRIZZLE_FILE for name in names if (directory / name / DRIZZLE_FILE).is_file()}


def _drizzle_folders(directory: Path, folders: Mapping[str, Path]) -> DrizzleLayout:
    """drizzle-kit 1.0's directories, in the order of their names, each at the UTC time its first 14 digits say."""
    found: dict[str, tuple[bytes, int]] = {}
    problems: list[tuple[Path, str]] = []
    for name, path in folders.items():
        try:
            moment = datetime.datetime.strptime(name[:14], "%Y%m%d%H%M%S").replace(tzinfo=datetime.UTC)
        except ValueError:
            problems.append(
                (
                    path,
                    "its directory's name does not start with drizzle-kit's YYYYMMDDHHMMSS; rename it as "
                    "drizzle-kit generate names one (20240101120000_name)",
                )
            )
            continue
        found[f"{name}/{DRIZZLE_FILE}"] = (_read_inside(directory, path), int(moment.timestamp()) * 1000)
    return DrizzleLayout(False, found, (), tuple(problems))


def read_files(directory: Path) -> dict[str, bytes]:
    """The bytes of every `*.sql` file of a directory by name (dotfiles skipped: editors' lock and scratch files)."""
    files: dict[str, bytes] = {}
    if not directory.is_dir():
        return {}
    try:
        with os.scandir(directory) as found:  # names and types in one read of the directory, no stat per file
            entries = sorted((e for e in found if e.name.endswith(".sql") and e.name[0] != "."), key=attrgetter("name"))
        for entry in entries:
            if entry.is_symlink():
                path = directory / entry.name
                target = path.resolve()
                if target.parent != directory.resolve():
                    raise ConfigError(
                        f"{path}: a symbolic link to {target}, outside {directory}; "
                        "copy the migration into the directory instead"
                    )
                if not target.exists():
                    raise ConfigError(f"{path}: a symbolic link to {target}, which does not exist; remove the link")
            if not entry.is_file():  # a directory or a pipe named *.sql is no migration (and opening a pipe blocks)
                continue
            files[entry.name] = _read(entry.path)
    except PermissionError as exc:
        raise ConfigError(f"{exc.filename}: cannot be read ({exc.strerror}); fix its permissions") from None
    return files
