"""Other tools' migration layouts: which one a file is written in, and where its up and down parts are.

seed    NNN_snake_case.sql, the whole file is the migration (the seed's contract)
updown  <version>_<name>.up.sql with an optional <version>_<name>.down.sql (golang-migrate, sql-migrate)
dbmate  one file with `-- migrate:up` and `-- migrate:down` sections (`transaction:false` on the up line)
goose   one file with `-- +goose Up` and `-- +goose Down` (`-- +goose NO TRANSACTION`; StatementBegin/End
        are comments to PostgreSQL, so an up part is sent as it is written)
node-pg-migrate  one .sql file with `-- Up Migration` and `-- Down Migration` (node-pg-migrate's SQL migrations)
sqlx    <version>_<description>.sql, or reversible <version>_<description>.up.sql with its .down.sql (sqlx-cli's
        `migrate add` and `-r`); the names are the seed's and golang-migrate's, so it is the service's build that
        tells it: a Cargo.toml depending on sqlx (or format: sqlx); `-- no-transaction` first keeps it out of one
diesel  a directory per migration, <version>_<name>/up.sql with its down.sql (diesel migration generate); the version
        is the name's digits up to the first `_` (2024-01-01-120000_users: 20240101120000)
flyway  V<version>__<description>.sql, versions dotted or underscored (1, 1.1, 2_0_1) and compared as Flyway compares
        them (1 = 1.0 = 01, 1.9 before 1.10); U<version>__<description>.sql is that version's undo (its down part,
        never run forward); R__<description>.sql is repeatable: applied after every versioned one, in the order of
        its description, and again whenever its checksum changes; B<version>__<description>.sql is a baseline
        migration, which Flyway runs only on an empty database instead of the versions up to it: migratekit applies
        the versions themselves, which the baseline promises are the same schema, and never runs it
prisma  Prisma Migrate's prisma/migrations: a directory per migration, <timestamp>_<name>/migration.sql (prisma migrate
        dev), applied in the order of the directories' names; no down part (Prisma's migrations only go forward), and
        migration_lock.toml's provider must be "postgresql"
drizzle drizzle-kit's output: <tag>.sql files (0000_<words>.sql) applied in the order of meta/_journal.json's entries,
        or, without a journal (drizzle-kit 1.0), a directory per migration, <YYYYMMDDHHMMSS>_<name>/migration.sql,
        in the order of its name; `--> statement-breakpoint` ends a statement, as drizzle splits a file there; no
        down parts
atlas   Atlas's versioned directory: <version>_<description>.sql beside atlas.sum (which marks it, and must record
        every file as `atlas migrate hash` wrote it); the version is the name up to its first `_`, and Atlas applies
        the files in the order of their names; no down parts. A file directive (a comment at the file's top, a blank
        line after it) `-- atlas:txmode none` keeps it out of a transaction; `-- atlas:delimiter X` on the first
        line makes X end each statement instead of `;` (outside quotes, parentheses and dollar quotes, as Atlas
        scans); a checkpoint file (`-- atlas:checkpoint`) is never run, as Flyway's B files are not

Only the up part is ever applied forward; the down part serves `invoke rollback`. A format declared in
workspace.yaml that a file contradicts (a .down.sql, or another tool's markers, under `seed`) is an error
naming the file: a declaration is never a reason to run a down part.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum


class Format(StrEnum):
    SEED = "seed"
    UPDOWN = "updown"
    DBMATE = "dbmate"
    GOOSE = "goose"
    NODE_PG_MIGRATE = "node-pg-migrate"
    FLYWAY = "flyway"
    SQLX = "sqlx"
    DIESEL = "diesel"
    PRISMA = "prisma"
    DRIZZLE = "drizzle"
    ATLAS = "atlas"


FORMATS = tuple(f.value for f in Format)
AUTO = "auto"  # a service's format: read from its files
UPDOWN_NAME = re.compile(r"^(?P<number>\d+)_(?P<slug>.+)\.(?P<direction>up|down)\.sql$")
SEED_NAME = re.compile(r"^(?P<number>\d+)_(?P<slug>[a-z0-9]+(?:_[a-z0-9]+)*)\.sql$")  # the seed's convention (MK101)
_VERSION = re.compile(r"^(?P<number>\d+(?:-\d+)*)(?:_(?P<slug>.*))?$")  # Diesel's dashes are no part of the number
# Flyway's SQL migrations with its default prefixes and separator: V versioned, U undo, B baseline, R repeatable
FLYWAY_NAME = re.compile(r"^(?P<prefix>[VUB])(?P<version>[0-9]+(?:[._][0-9]+)*)__(?P<slug>.+)\.sql$")
FLYWAY_REPEATABLE = re.compile(r"^R__(?P<slug>.+)\.sql$")
_FLYWAY_VERSION = re.compile(r"^(?P<prefix>[VB])(?P<version>[0-9]+(?:[._][0-9]+)*)__(?P<slug>.*)$")
REPEATABLE = (1 << 63,)  # where a repeatable migration sorts: after every version
TIMESTAMPS = 10_000_000  # a version this large is a date (20240101120000), not a sequence number
_DBMATE = re.compile(r"^--\s*migrate:(?P<part>up|down)\b(?P<options>[^\n]*)$", re.MULTILINE)
_GOOSE = re.compile(r"^--\s*\+goose\s+(?P<part>up|down)\b[^\n]*$", re.MULTILINE | re.IGNORECASE)
_GOOSE_NO_TRANSACTION = re.compile(r"^--\s*\+goose\s+no\s+transaction\b", re.MULTILINE | re.IGNORECASE)
# node-pg-migrate's own test of a marker line (its sqlMigration): `-- Up Migration`, `--- down migration`
# node-pg-migrate's own test of a marker (its sqlMigration: `^\s*--[\s-]*up\s+migration`, case-insensitive), so
# every line it takes for a marker is one here: `--- down migrations`, a tab or a no-break space between the words.
_SPACE = r"(?:\s|\ufeff)"  # JavaScript's \s, which also holds the byte-order mark
_NODE_PG_MIGRATE = re.compile(
    rf"^(?:[^\S\n]|\ufeff)*--(?:{_SPACE}|-)*(?P<part>up|down){_SPACE}+migration[^\n]*", re.MULTILINE | re.IGNORECASE
)
MARKED = {Format.DBMATE: _DBMATE, Format.GOOSE: _GOOSE, Format.NODE_PG_MIGRATE: _NODE_PG_MIGRATE}  # one file, two parts
MARKER_NAMES = {Format.DBMATE: "-- migrate:up", Format.GOOSE: "-- +goose Up", Format.NODE_PG_MIGRATE: "-- Up Migration"}


class SectionError(ValueError):
    """A section marker that is missing, repeated or out of place; `line` is 1-based."""

    def __init__(self, message: str, line: int):
        super().__init__(message)
        self.line = line


@dataclass(frozen=True)
class Sections:
    up: str
    up_line: int  # the file line the up part starts on
    down: str | None = None
    no_transaction: str | None = None  # why the format's own option says: not in a transaction
    down_line: int = 1  # the file line the down part starts on


# One migration's file(s) in each format, as the docs show them, and where its down part is
EXAMPLES: dict[Format, tuple[str, str]] = {
    Format.SEED: ("001_init.sql", "none: roll forward with a new migration"),
    Format.UPDOWN: ("001_init.up.sql", "001_init.down.sql"),
    Format.DBMATE: ("20240101120000_init.sql", "its `-- migrate:down` section"),
    Format.GOOSE: ("00001_init.sql", "its `-- +goose Down` section"),
    Format.NODE_PG_MIGRATE: ("1700000000000_init.sql", "its `-- Down Migration` section"),
    Format.FLYWAY: ("V1_1__init.sql", "U1_1__init.sql (R__ files are never undone)"),
    Format.SQLX: ("20240101120000_init.up.sql", "20240101120000_init.down.sql (a simple .sql has none)"),
    Format.DIESEL: ("2024-01-01-120000_init/up.sql", "2024-01-01-120000_init/down.sql"),
    Format.PRISMA: ("20240101120000_init/migration.sql", "none: Prisma's migrations only go forward"),
    Format.DRIZZLE: ("0000_init.sql", "none: drizzle rolls forward (drizzle-kit generate)"),
    Format.ATLAS: ("20240101120000_init.sql", "none: Atlas rolls forward (atlas migrate down plans its own)"),
}
# Formats whose tool generates each migration's SQL to run once, in one transaction (Prisma's, drizzle-kit's and
# `atlas migrate diff`'s `CREATE TABLE "User"`, never IF NOT EXISTS): not held to the seed's idempotency (MK2xx
# unless a file cannot run in one transaction; verify's second run).
RUN_ONCE = frozenset({Format.PRISMA, Format.DRIZZLE, Format.ATLAS})
DIRECTORY_FORMATS = {Format.DIESEL: "up.sql", Format.PRISMA: "migration.sql"}  # a directory per migration: its file
DRIZZLE_FILE = "migration.sql"  # drizzle-kit 1.0's migration, in a directory of its own
# drizzle's migrator splits a file at this comment and sends each piece alone (a piece needs no closing `;`)
DRIZZLE_BREAKPOINT = "--> statement-breakpoint"


def format_of(name: str, text: str) -> Format:
    """The format one file is written in, from its name and its markers.

    A word test before each marker's search: a seed file holds neither word, and loading a large
    directory of them would otherwise be mostly these searches.
    """
    if name.endswith("/up.sql"):  # a Diesel migration's, named with its directory
        return Format.DIESEL
    if name.endswith("/migration.sql"):  # a Prisma migration's, named with its directory
        return Format.PRISMA
    if UPDOWN_NAME.match(name):
        return Format.UPDOWN
    if name[:1] in "VUBR" and (FLYWAY_NAME.match(name) or FLYWAY_REPEATABLE.match(name)):
        return Format.FLYWAY
    if "migrate:" in text and _DBMATE.search(text):
        return Format.DBMATE
    lowered = text.lower()
    if "goose" in lowered and _GOOSE.search(text):
        return Format.GOOSE
    if _up_or_down_migration(lowered) and _NODE_PG_MIGRATE.search(text):
        return Format.NODE_PG_MIGRATE
    return Format.SEED


def _up_or_down_migration(lowered: str) -> bool:
    """Whether "up" or "down" comes before a "migration" anywhere: a seed file's `-- Migration:` header has the
    word on every file, and the marker's own search would be most of reading a large directory."""
    at = lowered.find("migration")
    while at != -1:
        if lowered[max(0, at - 40) : at].rstrip(" \t\n\r\f\v\xa0\ufeff-").endswith(("up", "down")):
            return True
        at = lowered.find("migration", at + 1)
    return False


def contradicts(declared: Format, found: Format) -> bool:
    """Whether a file found in one format may not be read as the declared one.

    A file without markers under a declared marker format is that format's, written wrongly: its sections
    error says so (MK116). Anything else is a contradiction: a .down.sql or another tool's markers read as
    `seed` would run a down part forward, and an updown name read as dbmate would hide the pair.
    """
    if declared is Format.SQLX:  # sqlx's names are the seed's and golang-migrate's
        return found not in (Format.SEED, Format.UPDOWN, Format.SQLX)  # SQLX: a file as a sqlx service's reads it
    if declared is Format.ATLAS:  # Atlas's names are the seed's; another tool's markers would run a down part forward
        return found not in (Format.SEED, Format.ATLAS)
    return declared is not found and not (found is Format.SEED and declared in MARKED)


def format_groups(files: Iterable[tuple[str, Format]]) -> str:
    """`dbmate: 002_more.sql; updown: 001_init.up.sql`: up to three file names of each format."""
    by_format: dict[Format, list[str]] = {}
    for name, fmt in sorted(files):
        by_format.setdefault(fmt, []).append(name)
    return "; ".join(f"{fmt}: {', '.join(names[:3])}" for fmt, names in sorted(by_format.items()))


def version_of(name: str, fmt: Format) -> str:
    """What the tracking row records: the file name less `.up.sql` (updown) or `.sql` (flyway: V1_1__init)."""
    if fmt in DIRECTORY_FORMATS:
        return name.removesuffix(f"/{DIRECTORY_FORMATS[fmt]}")
    if fmt is Format.DRIZZLE:  # the journal's tag, or drizzle-kit 1.0's directory
        return name.removesuffix(f"/{DRIZZLE_FILE}").removesuffix(".sql")
    if fmt in (Format.UPDOWN, Format.SQLX):
        return name.removesuffix(".up.sql").removesuffix(".sql")
    return name.removesuffix(".sql")


@dataclass(frozen=True)
class Version:
    """A migration's version, as its tracking row records it, and the number and name it is made of.

    The one parser of versions: files, tracking rows, other tools' histories and git's lists are all read
    here. Versions compare as numbers (999 before 1000), Flyway's part by part (1.9 before 1.10), then by text;
    an unnumbered one sorts first and a Flyway repeatable one (R__views) last.
    """

    text: str  # 001_init (the file name less .sql, or less .up.sql in updown)
    number: int | None  # 1; None when the version does not start with digits and an underscore, or is dotted
    slug: str  # init; "" when there is none
    # the version as Flyway reads it (V1_1__x: (1, 1)); (n,) for a number; derived from text, so not compared
    parts: tuple[int, ...] | None = field(default=None, compare=False)

    @classmethod
    def parse(cls, text: str) -> Version:
        match = _VERSION.match(text)
        if match is not None:
            number = int(match["number"].replace("-", ""))
            return cls(text, number, match["slug"] or "", (number,))
        flyway = _FLYWAY_VERSION.match(text) if text[:1] in "VBR" else None
        if flyway is not None:
            parts = numeric(flyway["version"]) or (0,)
            single = None if re.search(r"[._]", flyway["version"]) else int(flyway["version"])
            return cls(text, single, flyway["slug"], parts)
        if text.startswith("R__"):
            return cls(text, None, text.removeprefix("R__"), REPEATABLE)
        return cls(text, None, "")

    @property
    def repeatable(self) -> bool:
        """A Flyway repeatable migration (R__views): no version, applied again whenever it changes."""
        return self.parts == REPEATABLE

    @classmethod
    def of_file(cls, name: str) -> Version:
        """The version of a migration file of any format (`.up.sql`, `.down.sql` or `.sql` dropped)."""
        for suffix in ("/up.sql", "/down.sql", "/migration.sql", ".up.sql", ".down.sql", ".sql"):
            if name.endswith(suffix):
                return cls.parse(name.removesuffix(suffix))
        return cls.parse(name)

    @property
    def key(self) -> tuple[tuple[int, ...], str]:
        return ((-1,) if self.parts is None else self.parts, self.text)


_NUMBER = re.compile(r"[0-9]+(?:[._][0-9]+)*")


def numeric(text: str) -> tuple[int, ...] | None:
    """A version read as a number the way Flyway reads one (parts split at `.` or `_`, trailing zero parts
    dropped: 1, 1.0 and 01 are one version), which is also how golang-migrate, goose and dbmate's digits compare;
    None when it is not one."""
    if not _NUMBER.fullmatch(text):
        return None
    parts = [int(part) for part in re.split(r"[._]", text)]
    while parts and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def newest(versions: Iterable[str]) -> str | None:
    """The newest of applied versions; a Flyway repeatable one (R__views) has no place in the order and is left out."""
    return max((v for v in versions if not Version.parse(v).repeatable), key=version_key, default=None)


def version_key(version: str) -> tuple[tuple[int, ...], str]:
    """How tracking rows' versions sort (see Version)."""
    return Version.parse(version).key


def new_version(fmt: Format, number: str, slug: str) -> str:
    """A new migration's version in the format's own naming: 002_add_b, or Flyway's V2__add_b."""
    return f"V{number}__{slug}" if fmt is Format.FLYWAY else f"{number}_{slug}"


def file_name(version: str, fmt: Format) -> str:
    """The file a version is applied from: the inverse of version_of (sqlx's reversible ones: .up.sql; Diesel's:
    its directory's up.sql; Prisma's: its migration.sql)."""
    if fmt in DIRECTORY_FORMATS:
        return f"{version}/{DIRECTORY_FORMATS[fmt]}"
    if fmt is Format.DRIZZLE:  # drizzle-kit 1.0's directory (the journal's <tag>.sql is told by its journal)
        return f"{version}/{DRIZZLE_FILE}"
    return f"{version}.up.sql" if fmt in (Format.UPDOWN, Format.SQLX) else f"{version}.sql"


def sections(fmt: Format, text: str) -> Sections:
    """The up part (and the down part, for one-file formats) of a file's text; SectionError when malformed."""
    if fmt is Format.SQLX:  # sqlx's own directive, on the file's first line
        first = text.removeprefix("\ufeff").lstrip().split("\n", 1)[0].strip()
        return Sections(text, 1, no_transaction="sqlx's '-- no-transaction'" if first == "-- no-transaction" else None)
    if fmt is Format.DRIZZLE and DRIZZLE_BREAKPOINT in text:  # drizzle sends each piece alone: each ends there
        return Sections(text.replace(DRIZZLE_BREAKPOINT, f";{DRIZZLE_BREAKPOINT}"), 1)
    if fmt in (Format.SEED, Format.UPDOWN, Format.FLYWAY, Format.DIESEL, Format.PRISMA, Format.DRIZZLE):
        return Sections(text, 1)
    if fmt is Format.ATLAS:
        return atlas_sections(text)
    for other, pattern in MARKED.items():
        found = pattern.search(text) if other is not fmt else None
        if found is not None:  # which tool's up part is meant cannot be told: neither runs
            raise SectionError(
                f"it has {fmt}'s markers and {other}'s ({found[0].strip()!r}): which part is the up part cannot be "
                "told; keep one tool's markers",
                _line(text, found.start()),
            )
    markers = list(MARKED[fmt].finditer(text))
    kinds = [m["part"].lower() for m in markers]
    up_markers = [m for m in markers if m["part"].lower() == "up"]
    name = MARKER_NAMES[fmt]
    if len(up_markers) != 1:
        where = _line(text, up_markers[1].start()) if len(up_markers) > 1 else 1
        raise SectionError(f"{len(up_markers)} '{name}' markers; a file has exactly one", where)
    if kinds.count("down") > 1 or kinds[0] != "up":
        down = next(m for m in markers if m["part"].lower() == "down")
        raise SectionError("the down marker must come once, after the up section", _line(text, down.start()))
    up = up_markers[0]
    down_marker = markers[1] if len(markers) > 1 else None
    body_start = up.end() + 1 if up.end() < len(text) else up.end()
    up_text = text[body_start : down_marker.start() if down_marker else len(text)]
    down_text = text[down_marker.end() + 1 :] if down_marker else None
    no_transaction = None
    if fmt is Format.DBMATE and re.search(r"\btransaction:false\b", up["options"]):
        no_transaction = "dbmate's 'transaction:false' option"
    elif fmt is Format.GOOSE and _GOOSE_NO_TRANSACTION.search(text):
        no_transaction = "goose's '-- +goose NO TRANSACTION' annotation"
    down_line = _line(text, down_marker.end() + 1) if down_marker else 1
    return Sections(up_text, _line(text, body_start), down_text, no_transaction, down_line)


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def migration_files(fmt: Format, version: str, up: str, down: str) -> dict[str, str]:
    """The file(s) of one new migration in `fmt`: file name -> text (the scaffolds write these)."""
    up, down = up.rstrip("\n") + "\n", down.rstrip("\n") + "\n"
    if fmt in (Format.UPDOWN, Format.SQLX):  # sqlx's reversible pair (sqlx migrate add -r)
        return {f"{version}.up.sql": up, f"{version}.down.sql": down}
    if fmt is Format.DIESEL:
        return {f"{version}/up.sql": up, f"{version}/down.sql": down}
    if fmt is Format.DRIZZLE:  # no down part: drizzle rolls forward
        return {f"{version}/{DRIZZLE_FILE}": up}
    if fmt is Format.FLYWAY:  # version is V<n>__<description>: its undo is U<n>__<description>
        return {f"{version}.sql": up, f"U{version.removeprefix('V')}.sql": down}
    if fmt is Format.DBMATE:
        return {f"{version}.sql": f"-- migrate:up\n{up}\n-- migrate:down\n{down}"}
    if fmt is Format.GOOSE:
        up = f"-- +goose StatementBegin\n{up}-- +goose StatementEnd\n"
        return {f"{version}.sql": f"-- +goose Up\n{up}\n-- +goose Down\n{down}"}
    if fmt is Format.NODE_PG_MIGRATE:
        return {f"{version}.sql": f"-- Up Migration\n{up}\n-- Down Migration\n{down}"}
    if fmt is Format.PRISMA:  # no down part: Prisma's migrations only go forward
        return {f"{version}/migration.sql": up}
    return {f"{version}.sql": up}


_ATLAS_DIRECTIVE = re.compile(r"^([ -~]*)atlas:(\w+)(?: +(.+))*", re.ASCII)


def atlas_directives(text: str, name: str) -> list[str]:
    """The arguments of a file directive of Atlas's: the comment lines at the very top of the file (`--` or `#`),
    counted only when a blank line (or the end of the file) follows them, as Atlas's LocalFile.Directive reads."""
    comments, rest = [], text
    while rest.startswith(("#", "--")):
        end = rest.find("\n")
        if end == -1:
            return []  # a comment without a newline ends the file: Atlas takes no directives from it
        comments.append(rest[:end].strip())
        rest = rest[end + 1 :]
    if rest and not rest.lstrip(" \t").startswith("\n"):
        return []
    found = []
    for comment in comments:
        match = _ATLAS_DIRECTIVE.match(comment)
        if match and match[2] == name:
            found.append(match[3] or "")
    return found


def atlas_sections(text: str) -> Sections:
    """An Atlas file's up part: its text, its statements ended by `;` where `-- atlas:delimiter` sets another end;
    `-- atlas:txmode none` keeps it out of a transaction ('file', Atlas's default, keeps it in one)."""
    modes = atlas_directives(text, "txmode")
    if len(modes) > 1:
        raise SectionError(f"{len(modes)} atlas:txmode directives ({', '.join(modes)}); Atlas refuses more than one", 1)
    if modes and modes[0] not in ("none", "file"):
        raise SectionError(f"atlas:txmode {modes[0]!r}: a file's txmode is none or file, as Atlas allows", 1)
    no_transaction = "Atlas's '-- atlas:txmode none' directive" if modes == ["none"] else None
    first = _ATLAS_DIRECTIVE.match(text.split("\n", 1)[0])
    if first is None or first[2] != "delimiter" or first[1] != "-- ":
        return Sections(text, 1, no_transaction=no_transaction)
    delimiter = (first[3] or "").replace("\\n", "\n").replace("\\r", "\r").replace("\\t", "\t")
    if not delimiter or "\n" not in text:
        raise SectionError("atlas:delimiter with no delimiter, or no statements after it", 1)
    head, body = text.split("\n", 1)
    return Sections(f"{head}\n{_delimited(body, delimiter)}", 1, no_transaction=no_transaction)


def _delimited(text: str, delimiter: str) -> str:
    """`text` with each statement-ending `delimiter` made `;` (its newlines kept, so lines stay where they are),
    found as Atlas's scanner finds it: outside quotes and parentheses, before comments and dollar quotes."""
    out, at, depth = [], 0, 0
    while at < len(text):
        char = text[at]
        if char in "'\"`":
            end = text.find(char, at + 1)
            end = len(text) - 1 if end == -1 else end
            out.append(text[at : end + 1])
            at = end + 1
            continue
        if depth == 0 and text.startswith(delimiter, at):
            out.append(";" + "\n" * delimiter.count("\n"))
            at += len(delimiter)
            continue
        quote = re.match(r"\$([A-Za-z_][\w]*)?\$", text[at:]) if char == "$" else None
        skip = None
        if quote:
            skip = text.find(quote[0], at + len(quote[0]))
            skip = len(text) if skip == -1 else skip + len(quote[0])
        elif text.startswith("--", at):
            skip = text.find("\n", at)
            skip = len(text) if skip == -1 else skip
        elif text.startswith("/*", at):
            skip = text.find("*/", at)
            skip = len(text) if skip == -1 else skip + 2
        if skip is not None:
            out.append(text[at:skip])
            at = skip
            continue
        depth += 1 if char == "(" else -1 if char == ")" and depth > 0 else 0
        out.append(char)
        at += 1
    return "".join(out)
