"""Other tools' history tables: where each is, what each vouches for, and whether one records a service's files.

migratekit never writes these tables. `adopt` imports what one vouches for (database.history); `migrate`
refuses to start a service afresh when its history is in one of them, or in a table of the seed's shape
that its tracking_table no longer names (a first run would apply every file again).

A tool's table is looked for in every schema (each tool can be told to keep it outside `public`) and read as
its tool reads it: golang-migrate's one row is the version it is at, and every file up to it ran; dbmate's
and goose's versions are numbers (goose's newest row for a version says whether it stands); Flyway's rows
count in installed_rank order, versions compared as Flyway compares them (1 = 1.0 = 01): an undo or a
repair's DELETE takes a version back, a baseline stands for every version up to it, a failed migration
stops it as it stops Flyway; Prisma's rows count by name unless rolled back, a failed one stopping it as it stops
`prisma migrate deploy`; node-pg-migrate's and Kysely's are the files' names, matched whole. What the
tool itself would never have written (a NULL version, several golang-migrate rows, a time that is not one,
a table of its name without its columns) is refused, naming it, before anything is written.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import psycopg
from psycopg import sql

from migratekit.database import tracking
from migratekit.database.connection import lost
from migratekit.database.results import Failure, Stopped
from migratekit.errors import ConfigError, MigratekitError
from migratekit.model.contract import SEED_COLUMNS, qualified
from migratekit.model.formats import Format, numeric
from migratekit.model.migration import Migration, atlas_checkpoints
from migratekit.model.runner_table import RunnerTable


@dataclass(frozen=True)
class Entry:
    """One version a tool vouches for as applied."""

    version: str  # as the tool records it
    applied_at: str | None = None
    number: tuple[int, ...] | None = None  # the version as the tool reads a number (see numeric); None: a name
    script: str = ""  # Flyway: the file it ran (V1__init.sql)
    description: str = ""  # Flyway: the description it recorded
    checksum: int | None = None  # Flyway: its CRC-32 of the file's lines (see flyway_checksum)
    repeatable: bool = False  # Flyway: an R__ file's latest successful run; it counts only for the same text
    digest: bytes | None = None  # sqlx: its SHA-384 of the up part's text, which must still be the file's
    sha256: str | None = None  # Prisma: its checksum, the SHA-256 of migration.sql as hex (compared, not required)
    millis: int | None = None  # drizzle: its created_at, the journal's `when` of the migration it ran


@dataclass(frozen=True)
class History:
    """What one tool's table vouches for: its versions, and the files numbered up to a version it stands for."""

    tool: str
    table: str  # schema-qualified
    entries: tuple[Entry, ...] = ()
    through: tuple[int, ...] | None = None  # golang-migrate: the version it is at; every file up to it ran
    baseline: tuple[int, ...] | None = None  # Flyway: its baseline; files up to it count as applied, unnamed


Reader = Callable[[psycopg.Connection, str], History]

_DIGITS = re.compile(r"[0-9]+")


def _rows(conn: psycopg.Connection, table: str, columns: str, order: str = "") -> list[tuple]:
    query = sql.SQL(f"SELECT {columns} FROM {{}}{order}").format(sql.Identifier(*table.split(".")))
    return conn.execute(query).fetchall()


def _no_version(tool: str, table: str) -> MigratekitError:
    return MigratekitError(
        f"{tool}'s {table} holds a row with no version, which {tool} never writes: delete or correct that row, "
        "then adopt again"
    )


def _golang_migrate(conn: psycopg.Connection, table: str) -> History:
    rows = _rows(conn, table, "version::text, dirty")
    if len(rows) > 1:
        versions = ", ".join(str(v) for v, _ in rows[:5]) + (", …" if len(rows) > 5 else "")
        raise MigratekitError(
            f"golang-migrate's {table} holds {len(rows)} rows ({versions}): golang-migrate keeps one, the version "
            "it is at; set the right one with golang-migrate (migrate force VERSION) first"
        )
    if not rows:
        return History("golang-migrate", table)
    version, dirty = rows[0]
    if version is None:
        raise _no_version("golang-migrate", table)
    if dirty:
        raise MigratekitError(
            f"golang-migrate's {table} is dirty at version {version}: a migration failed half-way; fix the "
            "database and run `migrate force` with golang-migrate first"
        )
    if version.startswith("-"):  # NilVersion (-1): nothing applied
        return History("golang-migrate", table)
    number = numeric(version) if _DIGITS.fullmatch(version) else None
    if number is None:
        raise MigratekitError(f"golang-migrate's {table} is at version {version!r}, which is not a version number")
    return History("golang-migrate", table, (Entry(version, None, number),), through=number)


def _dbmate(conn: psycopg.Connection, table: str) -> History:
    versions = [v for (v,) in _rows(conn, table, "version::text")]
    if None in versions:
        raise _no_version("dbmate", table)
    return History("dbmate", table, tuple(Entry(v, None, numeric(v)) for v in versions))


def _goose(conn: psycopg.Connection, table: str) -> History:
    """goose reads its rows newest first: a version's newest row says whether it stands (0 is goose's own)."""
    seen: dict[str, tuple[bool, str | None]] = {}
    for version, applied, at in _rows(conn, table, "version_id::text, is_applied, tstamp::text", " ORDER BY id DESC"):
        if version is None:
            raise _no_version("goose", table)
        seen.setdefault(version, (bool(applied), at))
    entries = [Entry(v, at, numeric(v)) for v, (applied, at) in seen.items() if applied and v.lstrip("0")]
    return History("goose", table, tuple(reversed(entries)))


@dataclass
class _Run:
    """One row of Flyway's that ran a file (or undid one), and what later rows said of it."""

    entry: Entry
    undo: bool
    success: bool
    deleted: bool = False
    undone: bool = False

    @property
    def stands(self) -> bool:
        return self.success and not (self.undo or self.deleted or self.undone)


def _flyway(conn: psycopg.Connection, table: str) -> History:
    """Flyway's own reading: rows in installed_rank order; a DELETE marks the latest row of its version deleted, an
    undo the latest standing application undone; a baseline stands for every version up to it (its schema-creation
    row for none); a failed row not marked deleted stops it."""
    runs: dict[tuple[int, ...], list[_Run]] = {}
    baseline: tuple[int, ...] | None = None
    repeatable: dict[str, Entry] = {}  # description -> its latest successful run
    columns = "version, description, type, script, installed_on::text, success, checksum"
    rows = _rows(conn, table, columns, " ORDER BY installed_rank")
    for version, description, kind, script, at, success, checksum in rows:
        kind = str(kind or "").upper()
        if version is None:  # a repeatable migration: its latest run counts, and a failed one stops Flyway
            if kind == "DELETE":
                repeatable.pop(description or "", None)
            elif not success:
                raise _flyway_failed(table, f"the repeatable migration {description}")
            elif kind != "SCHEMA":
                entry = Entry(script or "", at, None, script or "", description or "", checksum, repeatable=True)
                repeatable[description or ""] = entry
            continue
        key = numeric(version)
        if key is None:
            raise MigratekitError(f"flyway's {table} records version {version!r}, which is not a Flyway version")
        if kind == "SCHEMA" or (kind == "DELETE" and not success):
            continue
        if kind == "DELETE":
            _flyway_delete(table, version, runs.get(key, []))
            continue
        if "BASELINE" in kind and success:  # BASELINE, or a baseline migration (SQL_BASELINE) that ran
            baseline = key if baseline is None else max(baseline, key)
        if kind == "BASELINE":
            continue
        entry = Entry(version, at, key, script or "", description or "", checksum)
        run = _Run(entry, kind.startswith("UNDO"), bool(success))
        if run.undo and run.success:
            standing = [r for r in runs.get(key, []) if r.stands]
            if standing:
                standing[-1].undone = True
        runs.setdefault(key, []).append(run)
    for key in sorted(runs):
        failed = next((r for r in runs[key] if not r.success and not r.deleted), None)
        if failed is not None:
            raise _flyway_failed(table, f"version {failed.entry.version} ({failed.entry.description})")
    applied = [[r for r in runs[key] if r.stands] for key in sorted(runs)]
    versioned = tuple(standing[-1].entry for standing in applied if standing)
    return History("flyway", table, versioned + tuple(repeatable.values()), baseline=baseline)


def flyway_checksum(data: bytes) -> int:
    """Flyway's checksum of a SQL file: CRC-32 over its lines' UTF-8 bytes, line terminators left out and a
    byte-order mark dropped (Java's readLine splits at \\n, \\r and \\r\\n), read as a signed 32-bit int."""
    text = data.decode("utf-8", errors="replace").removeprefix("\ufeff")
    crc = 0
    for line in re.split(r"\r\n|\r|\n", text):
        crc = zlib.crc32(line.encode("utf-8"), crc)
    return crc - (1 << 32) if crc >= 1 << 31 else crc


def _flyway_delete(table: str, version: str, runs: list[_Run]) -> None:
    if runs and runs[-1].deleted:
        raise MigratekitError(
            f"flyway's {table} marks version {version} deleted twice: a corrupted history, which Flyway refuses too; "
            "repair it with Flyway first"
        )
    if runs:
        runs[-1].deleted = True


def _flyway_failed(table: str, what: str) -> MigratekitError:
    return MigratekitError(
        f"flyway's {table} records a failed migration to {what}: Flyway stops there too; remove its half-done "
        "changes and run flyway repair, then adopt"
    )


def _sqlx(conn: psycopg.Connection, table: str) -> History:
    """sqlx's rows, one per version (its primary key); a row with success false is a migration sqlx itself calls
    partially applied and stops at (`migrate run` refuses until the row is removed)."""
    columns = "version::text, description, installed_on::text, success, checksum"
    entries = []
    for version, description, at, success, checksum in _rows(conn, table, columns, " ORDER BY version"):
        if version is None:
            raise _no_version("sqlx", table)
        if not success:
            raise MigratekitError(
                f"sqlx's {table} records version {version} ({description}) as partially applied (success = false): "
                "sqlx stops there too; undo its half-done changes and delete that row, then adopt"
            )
        entries.append(Entry(version, at, numeric(version), description=description or "", digest=bytes(checksum)))
    return History("sqlx", table, tuple(entries))


def sqlx_checksum(data: bytes) -> bytes:
    """sqlx's checksum of a migration: SHA-384 of its SQL text as read (a reversible one's .up.sql)."""
    return hashlib.sha384(data.decode("utf-8", errors="replace").encode("utf-8")).digest()


def _drizzle(conn: psycopg.Connection, table: str) -> History:
    """drizzle's rows in the order they were written (its SERIAL id): each the SHA-256 of a file's text (`hash`) and
    that migration's `when` (`created_at`); drizzle-kit 1.0's rows also name the migration's directory."""
    columns = conn.execute(
        "SELECT pg_catalog.array_agg(attname::text) FROM pg_catalog.pg_attribute "
        "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
        (sql.Identifier(*table.split(".")).as_string(conn),),
    ).fetchone()
    have = set(columns[0] if columns and columns[0] else ())
    name_column = "name" if "name" in have else "NULL::text"
    at_column = "applied_at::text" if "applied_at" in have else "NULL::text"
    rows = _rows(conn, table, f"id, hash, created_at, {name_column}, {at_column}", " ORDER BY id")
    entries = []
    for row_id, digest, created_at, name, at in rows:
        if digest is None or created_at is None:
            raise MigratekitError(
                f"drizzle's {table} holds a row (id {row_id}) with no {'hash' if digest is None else 'created_at'}, "
                "which drizzle never writes: delete or correct that row, then adopt again"
            )
        version = name or f"id {row_id}"
        entries.append(Entry(version, at, description=name or "", digest=str(digest).encode(), millis=created_at))
    return History("drizzle", table, tuple(entries))


def drizzle_hash(data: bytes) -> str:
    """drizzle's hash of a migration: SHA-256 of the file's text as Node reads it (hex)."""
    return hashlib.sha256(data.decode("utf-8", errors="replace").encode("utf-8")).hexdigest()


def _drizzle_paired(
    history: History, migrations: Sequence[Migration], strict: bool
) -> tuple[list[tuple[Migration, str | None]], list[str]]:
    """The files drizzle's rows vouch for, as drizzle's migrator reads them: a file counts as applied when a row holds
    its hash and its `when` (drizzle-kit 1.0: its directory's name). What drizzle would do with what else is there
    is said, and refused (unless `strict`: is this the service's history at all?): a row of a file's `when` with
    another hash (the file was edited after it ran), a row newer than every file (drizzle would apply none of them)."""
    by_hash: dict[str, Migration] = {}
    by_millis: dict[int, Migration] = {}
    by_name = {m.version: m for m in migrations}
    for m in migrations:
        by_hash.setdefault(drizzle_hash(m.data), m)
        if m.millis is not None:
            by_millis.setdefault(m.millis, m)
    matched: dict[str, tuple[Migration, str | None]] = {}
    missing: list[str] = []
    for entry in history.entries:
        digest = (entry.digest or b"").decode()
        found = by_name.get(entry.description) if entry.description else by_millis.get(entry.millis or -1)
        if found is not None and drizzle_hash(found.data) != digest and digest not in _drizzle_variants(found):
            if strict:
                continue
            raise MigratekitError(
                f"drizzle's {history.table} records {found.filename} (created_at {entry.millis}) with another hash "
                "than the file has now: the file was edited after drizzle applied it (drizzle does not check, and "
                "would never run the edit); restore the applied text, or put the change in a new migration, "
                "then adopt"
            )
        found = found or by_hash.get(digest)
        if found is None:
            missing.append(entry.description or f"a migration of created_at {entry.millis} (hash {digest[:12]}…)")
        else:
            matched.setdefault(found.version, (found, None))
    if not strict:
        _drizzle_would(history, migrations, missing)
    order = {m.version: i for i, m in enumerate(migrations)}
    return sorted(matched.values(), key=lambda pair: order[pair[0].version]), missing


def _drizzle_variants(migration: Migration) -> set[str]:
    """drizzle's hash of the file as it is, and as another checkout may hold it (LF or CRLF line endings)."""
    text = migration.data.decode("utf-8", errors="replace")
    lf = text.replace("\r\n", "\n")
    return {drizzle_hash(form.encode()) for form in (text, lf, lf.replace("\n", "\r\n"))}


def _drizzle_would(history: History, migrations: Sequence[Migration], missing: list[str]) -> None:
    """A journal's migrator applies only the files whose `when` is later than its newest row's created_at: a row
    newer than every file means drizzle would apply none of them again, whatever they hold."""
    if any(e.description for e in history.entries):
        return  # drizzle-kit 1.0 compares names, not times
    newest = max((e.millis for e in history.entries if e.millis is not None), default=None)
    files = [m.millis for m in migrations if m.millis is not None]
    if newest is not None and files and newest > max(files) and missing:
        raise MigratekitError(
            f"drizzle's {history.table} holds a row of created_at {newest}, newer than every file's when (the newest, "
            f"{max(files)}, is {migrations[-1].filename}), and no file has its hash: drizzle would apply none of "
            "these files, taking them all as applied; check that this is this service's history, or restore the "
            "migration that row records (another branch's?), then adopt"
        )


ATLAS_SCHEMA = "atlas_schema_revisions"  # where Atlas keeps its table unless the URL names a schema
ATLAS_IDENTIFIER = ".atlas_cloud_identifier"  # the row Atlas keeps its revisions table's id in: no revision
ATLAS_BASELINE, ATLAS_EXECUTE, ATLAS_RESOLVED = 1, 2, 4  # Atlas's RevisionType bits


def _atlas(conn: psycopg.Connection, table: str) -> History:
    """Atlas's revisions, in the order of their versions (compared as text, as Atlas compares them), its own
    identifier row left out. A revision counts whatever its type says (applied, `atlas migrate set`'s resolved, or
    both); a baseline (`--baseline`) also stands for every version before it, which Atlas never runs. A revision with
    fewer statements applied than it has (a failed one: its error says why) is one Atlas resumes at its next statement,
    whatever its type: migratekit cannot resume a file part way, so it is refused, naming what to do. Such a row is
    left by a file run outside a transaction (`-- atlas:txmode none`, `--tx-mode none`): a file that fails inside one
    takes its revision with it when Atlas rolls back."""
    columns = "version, description, type, applied, total, executed_at::text, error, error_stmt"
    entries, baseline = [], None
    for version, description, kind, applied, total, at, error, statement in _rows(
        conn, table, columns, ' ORDER BY version COLLATE "C"'
    ):
        if version is None:
            raise _no_version("atlas", table)
        if version == ATLAS_IDENTIFIER:
            continue
        if not kind or kind & ~(ATLAS_BASELINE | ATLAS_EXECUTE | ATLAS_RESOLVED):
            raise MigratekitError(
                f"atlas's {table} records version {version} with type {kind}, which Atlas never writes (1 baseline, "
                "2 applied, 4 resolved, 6 both): correct that row with atlas migrate set, then adopt"
            )
        if applied != total:  # Atlas's own test of a partial revision (an error with every statement applied is none)
            failed = f", failing at {' '.join(statement.split())[:80]!r}" if statement else ""
            said = f" ({' '.join(error.split())[:120]})" if error else ""
            raise MigratekitError(
                f"atlas's {table} records version {version} ({description}) as partially applied ({applied} of "
                f"{total} statements{failed}){said}: Atlas resumes it at its next statement, even once `atlas migrate "
                "set` has marked it; finish it with atlas migrate apply (or, its changes undone, delete its row), then "
                "adopt"
            )
        if kind & ATLAS_BASELINE:
            baseline = numeric(version) if version.isdigit() else baseline
        entries.append(Entry(version, at, None, description=description or ""))
    return History("atlas", table, tuple(entries), baseline=baseline)


def _named(tool: str, columns: str) -> Reader:
    """node-pg-migrate and Kysely: each row is a file's name, as the tool lists them; Diesel's is the version, its
    directory's name up to the first `_` less its dashes (20240101120000), matched to that directory's number."""

    def read(conn: psycopg.Connection, table: str) -> History:
        rows = _rows(conn, table, columns, " ORDER BY 1")
        if any(name is None for name, _ in rows):
            raise _no_version(tool, table)
        if tool == "diesel":
            return History(tool, table, tuple(Entry(v, at, numeric(v) if v.isdigit() else None) for v, at in rows))
        return History(tool, table, tuple(Entry(name, at) for name, at in rows))

    return read


def _prisma(conn: psycopg.Connection, table: str) -> History:
    """Prisma's reading (`migrate deploy`): a migration is applied when a row of its name is not rolled back; a row
    neither finished nor rolled back is a failed migration, which stops deploy (P3009) until `prisma migrate
    resolve` marks it; a rolled-back row counts for nothing, and a later row of that name stands on its own."""
    columns = "migration_name, checksum, finished_at::text, rolled_back_at::text, started_at::text"
    rows = _rows(conn, table, columns, " ORDER BY started_at, finished_at NULLS LAST")
    if any(name is None for name, *_ in rows):
        raise _no_version("prisma", table)
    failed = [(name, at) for name, _, finished, rolled_back, at in rows if finished is None and rolled_back is None]
    if failed:
        listed = ", ".join(f"{name} (started {started})" for name, started in failed)
        raise MigratekitError(
            f"prisma's {table} records a failed migration: {listed}; prisma migrate deploy stops there too (P3009). "
            "Undo what it did and mark it with prisma migrate resolve --rolled-back NAME (or finish it by hand and "
            "mark it with prisma migrate resolve --applied NAME), then adopt"
        )
    applied: dict[str, Entry] = {}
    for name, checksum, finished, rolled_back, _ in rows:
        if rolled_back is None:  # finished: the newest such row of a name is the one that stands
            applied[name] = Entry(name, finished, sha256=checksum or "")
    return History("prisma", table, tuple(applied.values()))


def prisma_checksum(data: bytes) -> str:
    """Prisma's checksum of a migration: SHA-256 of migration.sql's text, as 64 hex digits."""
    return hashlib.sha256(data.decode("utf-8", errors="replace").encode("utf-8")).hexdigest()


def edited_since(history: History, matched: Sequence[tuple[Migration, str | None]]) -> list[str]:
    """The versions whose file is no longer the text the tool recorded a checksum of (Prisma's, as Prisma compares
    it: the file as it is, with LF or with CRLF line endings, and its checksums of old versions that dropped the
    zero of a byte under 16). Prisma's migrate deploy never compares them; `migrate status` says "modified"."""
    by_version = {e.version: e.sha256 for e in history.entries if e.sha256 is not None}
    edited = []
    for migration, _ in matched:
        recorded = by_version.get(migration.version)
        if recorded is not None and recorded not in _prisma_variants(migration):
            edited.append(migration.version)
    return edited


def _prisma_variants(migration: Migration) -> set[str]:
    text = migration.data.decode("utf-8", errors="replace")
    forms = {text, text.replace("\r\n", "\n"), text.replace("\n", "\r\n")}
    digests = [hashlib.sha256(form.encode("utf-8")).digest() for form in forms]
    return {d.hex() for d in digests} | {"".join(f"{byte:x}" for byte in d) for d in digests}


@dataclass(frozen=True)
class Tool:
    table: str  # its history table's name, in whichever schema
    columns: frozenset[str]  # the columns it must have
    exact: bool  # and no others: golang-migrate's and dbmate's schema_migrations are told apart from ours so
    formats: frozenset[Format]  # the formats migratekit reads its files in
    read: Reader


TOOLS: dict[str, Tool] = {
    "golang-migrate": Tool(
        "schema_migrations", frozenset({"version", "dirty"}), True, frozenset({Format.UPDOWN}), _golang_migrate
    ),
    "dbmate": Tool("schema_migrations", frozenset({"version"}), True, frozenset({Format.DBMATE}), _dbmate),
    "goose": Tool(
        "goose_db_version",
        frozenset({"id", "version_id", "is_applied", "tstamp"}),
        False,
        frozenset({Format.GOOSE}),
        _goose,
    ),
    "flyway": Tool(
        "flyway_schema_history",
        frozenset({"installed_rank", "version", "description", "type", "script", "installed_on", "success"}),
        False,
        frozenset({Format.FLYWAY, Format.SEED}),  # its own files, or seed files it was pointed at (V1 = 001_x)
        _flyway,
    ),
    "sqlx": Tool(
        "_sqlx_migrations",
        frozenset({"version", "description", "installed_on", "success", "checksum", "execution_time"}),
        False,
        frozenset({Format.SQLX, Format.SEED, Format.UPDOWN}),
        _sqlx,
    ),
    "diesel": Tool(
        "__diesel_schema_migrations",
        frozenset({"version", "run_on"}),
        False,
        frozenset({Format.DIESEL}),
        _named("diesel", "version, run_on::text"),
    ),
    "node-pg-migrate": Tool(
        "pgmigrations",
        frozenset({"name", "run_on"}),
        False,
        frozenset({Format.NODE_PG_MIGRATE, Format.SEED}),  # its SQL migrations, or plain files it was pointed at
        _named("node-pg-migrate", "name, run_on::text"),
    ),
    "kysely": Tool(
        "kysely_migration",
        frozenset({"name", "timestamp"}),
        False,
        frozenset({Format.SEED}),
        _named("kysely", "name, timestamp"),
    ),
    "prisma": Tool(
        "_prisma_migrations",
        frozenset({"id", "checksum", "finished_at", "migration_name", "rolled_back_at", "started_at"}),
        False,
        frozenset({Format.PRISMA}),
        _prisma,
    ),
    "drizzle": Tool(
        "__drizzle_migrations",
        frozenset({"id", "hash", "created_at"}),
        False,
        frozenset({Format.DRIZZLE}),
        _drizzle,
    ),
    "atlas": Tool(
        "atlas_schema_revisions",
        frozenset({"version", "description", "type", "applied", "total", "executed_at", "error", "error_stmt", "hash"}),
        False,
        frozenset({Format.ATLAS}),
        _atlas,
    ),
}

# Every table named as a tool's, in any schema but the system's, with its columns.
_NAMED_TABLES = (
    "SELECT n.nspname::text, c.relname::text, pg_catalog.array_agg(a.attname::text) "
    "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
    "WHERE c.relkind IN ('r', 'p') AND c.relname::text = ANY(%s) "
    "AND n.nspname::text NOT IN ('information_schema') AND n.nspname::text !~ '^pg_' "
    "GROUP BY 1, 2 ORDER BY 1, 2"
)


@dataclass(frozen=True)
class Found:
    tool: str
    table: str  # schema-qualified

    @property
    def schema(self) -> str:
        return self.table.split(".")[0]


def histories(conn: psycopg.Connection) -> tuple[list[Found], list[tuple[str, str, set[str]]]]:
    """Every tool's history table in the database, and the tables named as only one tool's that lack its columns
    (tool, table, their columns)."""
    names = sorted({t.table for t in TOOLS.values()})
    found: list[Found] = []
    misshapen: list[tuple[str, str, set[str]]] = []
    for schema, name, columns in conn.execute(_NAMED_TABLES, (names,)).fetchall():
        have = set(columns)
        tools = [n for n, t in TOOLS.items() if t.table == name]
        fits = [n for n in tools if _fits(TOOLS[n], have)]
        found += [Found(n, f"{schema}.{name}") for n in fits]
        if not fits and len(tools) == 1:  # schema_migrations of another shape is most likely migratekit's own
            misshapen.append((tools[0], f"{schema}.{name}", have))
    found += [Found("drizzle", f"{schema}.{name}") for schema, name in conn.execute(_DRIZZLE_RENAMED).fetchall()]
    return found, misshapen


# drizzle's table under another name (migrate()'s migrationsTable, drizzle.config.ts's migrations.table): told by
# its columns, exactly as drizzle creates them (before 1.0, and 1.0's)
_DRIZZLE_RENAMED = (
    "SELECT n.nspname::text, c.relname::text FROM pg_catalog.pg_class c "
    "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
    "WHERE c.relkind IN ('r', 'p') AND c.relname::text <> '__drizzle_migrations' "
    "AND n.nspname::text NOT IN ('information_schema') AND n.nspname::text !~ '^pg_' AND c.oid IN "
    "(SELECT attrelid FROM pg_catalog.pg_attribute WHERE attname = 'hash' AND attnum > 0 AND NOT attisdropped) "
    "GROUP BY 1, 2 HAVING pg_catalog.array_agg(a.attname::text ORDER BY a.attname::text) IN "
    "(ARRAY['created_at', 'hash', 'id'], ARRAY['applied_at', 'created_at', 'hash', 'id', 'name']) ORDER BY 1, 2"
)


def _fits(tool: Tool, columns: set[str]) -> bool:
    return columns == tool.columns if tool.exact else tool.columns <= columns


def read(conn: psycopg.Connection, tool: str, table: str) -> History:
    """The history as its tool reads it, every applied_at one PostgreSQL reads as a time; a MigratekitError saying
    what to correct in it otherwise."""
    try:
        history = TOOLS[tool].read(conn, table)
        _times(conn, history)
    except psycopg.Error as exc:
        if conn.broken:
            raise Stopped(lost(exc, None)) from None
        raise MigratekitError(
            f"cannot read {tool}'s {table}: {(exc.diag.message_primary or str(exc)).strip()}"
        ) from None
    return history


def _times(conn: psycopg.Connection, history: History) -> None:
    texts = sorted({e.applied_at for e in history.entries if e.applied_at is not None})
    try:
        conn.execute("SELECT pg_catalog.count(t::timestamptz) FROM pg_catalog.unnest(%s::text[]) AS t", (texts,))
        return
    except psycopg.errors.DataError:
        pass
    for entry in (e for e in history.entries if e.applied_at is not None):
        try:
            conn.execute("SELECT %s::text::timestamptz", (entry.applied_at,))
        except psycopg.errors.DataError as exc:
            raise MigratekitError(
                f"{history.tool}'s {history.table} says {entry.version} was applied at {entry.applied_at!r}, which "
                f"is not a time ({exc.diag.message_primary}): correct that row, then adopt again"
            ) from None


def which_tool(conn: psycopg.Connection, tool: str, tracking_table: str) -> tuple[str, str]:
    """The tool and table to adopt from: the one there is, or, of several, those in the tracking table's schema,
    then in the session's current schema; ConfigError when none is there or it stays ambiguous."""
    if tool not in ("auto", *TOOLS):
        raise ConfigError(f"--from {tool!r}: one of auto, {', '.join(TOOLS)}")
    found, misshapen = histories(conn)
    present = [f for f in found if tool in ("auto", f.tool)]
    if not present:
        for name, table, columns in misshapen:
            if tool in ("auto", name):
                raise MigratekitError(
                    f"{table} is named as {name}'s history table, but it lacks {name}'s columns "
                    f"({', '.join(sorted(TOOLS[name].columns - columns))}; it has {', '.join(sorted(columns))}): "
                    f"it is not {name}'s history; rename it, or correct it to {name}'s shape"
                )
        raise ConfigError(f"no history table of {tool if tool != 'auto' else 'any known tool'} in this database")
    if len(present) > 1:
        current = conn.execute("SELECT pg_catalog.current_schema()::text").fetchone()
        present = _nearest(present, [qualified(tracking_table).split(".")[0], current[0] if current else "public"])
    if len(present) > 1:
        listed = ", ".join(f"{f.tool}'s {f.table}" for f in present)
        raise ConfigError(
            f"several histories here ({listed}): choose the tool with --from; of one tool's in several schemas, the "
            "one in the schema of this service's tracking_table is chosen (tracking_table: SCHEMA.schema_migrations)"
        )
    chosen = present[0]
    if qualified(tracking_table) == chosen.table:
        raise ConfigError(
            f"{chosen.tool} keeps its history in {chosen.table}, the table migratekit would write: set "
            "tracking_table: migratekit.schema_migrations for this service in workspace.yaml (invoke init proposes it)"
        )
    return chosen.tool, chosen.table


def _nearest(present: list[Found], schemas: Iterable[str]) -> list[Found]:
    for schema in schemas:
        near = [f for f in present if f.schema == schema]
        if near:
            return near
    return present


def history_elsewhere(
    conn: psycopg.Connection, tracking_table: str, migrations: Sequence[Migration], neighbours: tuple[str, ...]
) -> Failure | None:
    """Why a service whose tracking table does not exist yet must not start afresh: its history is elsewhere.

    Either a table of the seed's shape (not another service's) records its files with their checksums (its
    tracking_table changed after it migrated), or its tool's own table, in any schema but another service's,
    records them (never adopted). Migrating would run every one of them again. A tool's table counts for a
    service whose files are in the format migratekit reads that tool's in; Flyway's, node-pg-migrate's and
    Kysely's (seed-format files all) only for files they name: the name, or Flyway's number and description.
    """
    table = qualified(tracking_table)
    checksums = {m.version: m.checksum for m in migrations}
    moved = tracking.seed_history_elsewhere(conn, tracking_table, checksums, neighbours)
    if moved is not None:
        other, versions = moved
        return Failure(
            f"{table} does not exist yet, but {other} records {len(versions)} of these migrations with the same "
            f"checksums ({_some(versions)}): this service's history, from before its tracking_table changed; "
            "starting afresh would run them all again",
            hint=f"set tracking_table to {other} for this service in workspace.yaml, or move that table to "
            f"{table} (ALTER TABLE … SET SCHEMA / RENAME TO), then run again",
        )
    formats = {m.format for m in migrations}
    others = {qualified(n).split(".")[0] for n in neighbours} - {table.split(".")[0], "public"}
    for found in histories(conn)[0]:
        if not formats <= TOOLS[found.tool].formats or found.table == table or found.schema in others:
            continue
        try:
            applied = [m.version for m, _ in paired(read(conn, found.tool, found.table), migrations, strict=True)[0]]
        except MigratekitError as exc:  # golang-migrate's dirty state, a failed Flyway migration: broken histories
            return Failure(f"{table} does not exist yet, and {exc}", hint="then invoke adopt SERVICE")
        if applied:
            return Failure(
                f"{table} does not exist yet, but {found.tool}'s {found.table} records {len(applied)} of these "
                f"migrations ({_some(applied)}); migrating now would run them again",
                hint="import that history first: invoke adopt SERVICE --dry-run, then invoke adopt SERVICE",
            )
    return None


def _some(versions: list[str]) -> str:
    return ", ".join(versions[:3]) + (", …" if len(versions) > 3 else "")


def paired(
    history: History, migrations: Sequence[Migration], strict: bool = False
) -> tuple[list[tuple[Migration, str | None]], list[str]]:
    """Each file the history vouches for, once, in the files' order, with its applied_at; and the versions it
    records with no file.

    A version matches the file of that version or file name (Flyway: the script it ran), else, for a tool whose
    versions are numbers, the file of that number. `strict` (is this history the service's at all?) takes a
    Flyway number only with its description, and no baseline: neither names a file.
    """
    if history.tool == "drizzle":
        return _drizzle_paired(history, migrations, strict)
    by_name, by_number = _file_keys(migrations)
    matched: dict[str, tuple[Migration, str | None]] = {}
    missing: list[str] = []
    bounds = [b for b in (history.through, None if strict else history.baseline) if b is not None]
    checkpoints = _atlas_checkpoints(history, migrations)
    for entry in history.entries:
        if entry.version in checkpoints:  # Atlas ran the checkpoint in place of every file up to it: a baseline
            bounds.append(checkpoints[entry.version])
            continue
        if entry.repeatable:  # an R__ file counts as applied only as the text Flyway ran; else it runs again
            done = by_name.get(entry.script)
            if done is not None and done.repeatable and flyway_checksum(done.data) == entry.checksum:
                matched.setdefault(done.version, (done, entry.applied_at))
            continue
        found = by_name.get(entry.script) or by_name.get(entry.version) or _by_number(history, entry, by_number)
        if found is not None and strict and entry.description and found.filename != entry.script:
            found = found if _described(found, entry.description) else None
        if found is not None and entry.digest is not None and entry.digest not in _sqlx_variants(found):
            if strict:
                found = None
            else:
                raise MigratekitError(
                    f"{history.tool}'s {history.table} records version {entry.version} with another checksum than "
                    f"{found.filename} has now: the file was edited after sqlx applied it, which sqlx refuses too "
                    "(migration was previously applied but has been modified); restore the applied text, then adopt"
                )
        if found is None:
            missing.append(entry.version)
        else:
            matched.setdefault(found.version, (found, entry.applied_at))
    for m in migrations if bounds else ():
        number = _number(m)
        if number is not None and number <= max(bounds):
            matched.setdefault(m.version, (m, None))
    order = {m.version: i for i, m in enumerate(migrations)}
    return sorted(matched.values(), key=lambda pair: order[pair[0].version]), missing


def _file_keys(
    migrations: Sequence[Migration],
) -> tuple[dict[str, Migration], dict[tuple[int, ...], list[Migration]]]:
    """The files by each name a tool's row may give them (version, file name, Atlas's digits), and by number."""
    by_name: dict[str, Migration] = {}
    by_number: dict[tuple[int, ...], list[Migration]] = {}
    for m in migrations:
        for key in (m.version, m.filename, m.filename.split(".", 1)[0]):
            by_name.setdefault(key, m)
        if m.format is Format.ATLAS:  # Atlas's version: the name up to its first `_`, matched as text
            by_name.setdefault(m.filename.removesuffix(".sql").split("_", 1)[0], m)
        number = _number(m)
        if number is not None:
            by_number.setdefault(number, []).append(m)
    return by_name, by_number


def _atlas_checkpoints(history: History, migrations: Sequence[Migration]) -> dict[str, tuple[int, ...]]:
    """Atlas's checkpoint versions in the service's directory (files migratekit never runs), as numbers."""
    if history.tool != "atlas" or not migrations or migrations[0].format is not Format.ATLAS:
        return {}
    return {v: numeric(v) or (0,) for v in atlas_checkpoints(migrations[0].path.parent) if v.isdigit()}


def _number(migration: Migration) -> tuple[int, ...] | None:
    """The file's version as a number the tools compare (Flyway's V1_1__x: (1, 1)); None for a repeatable one."""
    parts = migration.parsed_version.parts
    return None if parts is None or migration.repeatable else numeric(".".join(map(str, parts)))


def _sqlx_variants(migration: Migration) -> set[bytes]:
    """sqlx's checksum of the file as it is, and as another checkout may hold it (LF or CRLF line endings)."""
    text = migration.data.decode("utf-8", errors="replace")
    lf = text.replace("\r\n", "\n")
    return {sqlx_checksum(form.encode()) for form in (text, lf, lf.replace("\n", "\r\n"))}


def _by_number(history: History, entry: Entry, by_number: dict[tuple[int, ...], list[Migration]]) -> Migration | None:
    files = by_number.get(entry.number, []) if entry.number is not None else []
    if len(files) > 1:
        raise MigratekitError(
            f"{history.tool}'s {history.table} records version {entry.version}, which is the number of several "
            f"files ({', '.join(m.filename for m in files)}): give each file a number of its own"
        )
    return files[0] if files else None


def _described(migration: Migration, description: str) -> bool:
    """Flyway's description of a file is its name's words (V1__Create_users.sql: Create users)."""
    return migration.parsed_version.slug.replace("_", " ").lower() == description.replace("_", " ").lower()


# --- a service's own, hand-written runner ----------------------------------------------------------------------

OWN_RUNNER = "own-runner"  # `adopt --from own-runner`: the history table the service's runner declares


def own_runner_history(conn: psycopg.Connection, own: RunnerTable) -> History | None:
    """The history a service's hand-written runner keeps, read by the columns its own CREATE TABLE declares (the
    file's name, when it ran); None when that table is not in this database."""
    columns = tracking.live_columns(conn, own.table)
    if columns is None:
        return None
    if own.key is None or own.key not in columns:
        wanted = f"its column {own.key}" if own.key else "one text column naming each file"
        raise MigratekitError(
            f"{own.table}, as {own.where} creates it, lacks {wanted} (it has {', '.join(sorted(columns))}): "
            "cannot tell which files ran; correct the table or the runner's CREATE TABLE, then adopt again"
        )
    at = sql.Identifier(own.applied_at) if own.applied_at in columns else sql.NULL
    query = sql.SQL("SELECT {key}::text, {at}::text FROM {table} ORDER BY 1").format(
        key=sql.Identifier(own.key), at=at, table=tracking.identifier(own.table)
    )
    rows = conn.execute(query).fetchall()
    if any(name is None for name, _ in rows):
        raise MigratekitError(
            f"{own.table} holds a row with no {own.key}, which {own.where} never writes: delete or correct that "
            "row, then adopt again"
        )
    history = History(OWN_RUNNER, own.table, tuple(Entry(name, at) for name, at in rows))
    _times(conn, history)
    return history


def own_runner_in_the_way(conn: psycopg.Connection, tracking_table: str, own: RunnerTable | None) -> Failure | None:
    """migratekit's tracking table is the one the service's runner keeps its own history in (schema_migrations of
    file names): migratekit never writes into it, and its rows must be imported into a table of migratekit's."""
    if own is None or qualified(own.table) != qualified(tracking_table):
        return None
    columns = tracking.live_columns(conn, tracking_table)
    if columns is None or set(SEED_COLUMNS) <= columns:
        return None
    return Failure(
        f"{own.table} is this service's own runner's history ({', '.join(own.columns)}, created by {own.where}), "
        "not migratekit's: migrating now would start afresh and run every file again",
        hint="set tracking_table: migratekit.schema_migrations for this service in workspace.yaml, then import that "
        "history: invoke adopt SERVICE --dry-run, then invoke adopt SERVICE",
    )


def own_runner_elsewhere(
    conn: psycopg.Connection, tracking_table: str, migrations: Sequence[Migration], own: RunnerTable | None
) -> Failure | None:
    """The tracking table does not exist yet, but the service's own runner's table records its files."""
    if own is None or qualified(own.table) == qualified(tracking_table):
        return None
    history = own_runner_history(conn, own)
    applied = [m.version for m, _ in paired(history, migrations)[0]] if history is not None else []
    if not applied:
        return None
    return Failure(
        f"{qualified(tracking_table)} does not exist yet, but this service's own runner's {own.table} (created by "
        f"{own.where}) records {len(applied)} of these migrations ({_some(applied)}); migrating now would run them "
        "again",
        hint="import that history first: invoke adopt SERVICE --dry-run, then invoke adopt SERVICE",
    )
