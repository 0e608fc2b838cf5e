"""Other tools' migration layouts: which one a file is written in, and where its up and down parts are.

seed    NNN_snake_case.sql, the whole file is the migration (the seed's contract)
updown  <version>_<name>.up.sql with an optional <version>_<name>.down.sql (golang-migrate, sql-migrate)
dbmate  one file with `-- migrate:up` and `-- migrate:down` sections (`transaction:false` on the up line)
goose   one file with `-- +goose Up` and `-- +goose Down` (`-- +goose NO TRANSACTION`; StatementBegin/End
        are comments to PostgreSQL, so an up part is sent as it is written)
node-pg-migrate  one .sql file with `-- Up Migration` and `-- Down Migration` (node-pg-migrate's SQL migrations)

Only the up part is ever applied forward; the down part serves `invoke rollback`. A format declared in
workspace.yaml that a file contradicts (a .down.sql, or another tool's markers, under `seed`) is an error
naming the file: a declaration is never a reason to run a down part.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Format(StrEnum):
    SEED = "seed"
    UPDOWN = "updown"
    DBMATE = "dbmate"
    GOOSE = "goose"
    NODE_PG_MIGRATE = "node-pg-migrate"


FORMATS = tuple(f.value for f in Format)
AUTO = "auto"  # a service's format: read from its files
UPDOWN_NAME = re.compile(r"^(?P<number>\d+)_(?P<slug>.+)\.(?P<direction>up|down)\.sql$")
SEED_NAME = re.compile(r"^(?P<number>\d+)_(?P<slug>[a-z0-9]+(?:_[a-z0-9]+)*)\.sql$")  # the seed's convention (MK101)
_VERSION = re.compile(r"^(?P<number>\d+)(?:_(?P<slug>.*))?$")
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


def format_of(name: str, text: str) -> Format:
    """The format one file is written in, from its name and its markers.

    A word test before each marker's search: a seed file holds neither word, and loading a large
    directory of them would otherwise be mostly these searches.
    """
    if UPDOWN_NAME.match(name):
        return Format.UPDOWN
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
    return declared is not found and not (found is Format.SEED and declared in MARKED)


def format_groups(files: Iterable[tuple[str, Format]]) -> str:
    """`dbmate: 002_more.sql; updown: 001_init.up.sql`: up to three file names of each format."""
    by_format: dict[Format, list[str]] = {}
    for name, fmt in sorted(files):
        by_format.setdefault(fmt, []).append(name)
    return "; ".join(f"{fmt}: {', '.join(names[:3])}" for fmt, names in sorted(by_format.items()))


def version_of(name: str, fmt: Format) -> str:
    """What the tracking row records: the file name less `.up.sql` (updown) or `.sql`."""
    return name.removesuffix(".up.sql") if fmt is Format.UPDOWN else name.removesuffix(".sql")


@dataclass(frozen=True)
class Version:
    """A migration's version, as its tracking row records it, and the number and name it is made of.

    The one parser of versions: files, tracking rows, other tools' histories and git's lists are all read
    here. Versions compare as numbers (999 before 1000), then by text; an unnumbered one sorts first.
    """

    text: str  # 001_init (the file name less .sql, or less .up.sql in updown)
    number: int | None  # 1; None when the version does not start with digits and an underscore
    slug: str  # init; "" when there is none

    @classmethod
    def parse(cls, text: str) -> Version:
        match = _VERSION.match(text)
        if match is None:
            return cls(text, None, "")
        return cls(text, int(match["number"]), match["slug"] or "")

    @classmethod
    def of_file(cls, name: str) -> Version:
        """The version of a migration file of any format (`.up.sql`, `.down.sql` or `.sql` dropped)."""
        for suffix in (".up.sql", ".down.sql", ".sql"):
            if name.endswith(suffix):
                return cls.parse(name.removesuffix(suffix))
        return cls.parse(name)

    @property
    def key(self) -> tuple[int, str]:
        return (-1 if self.number is None else self.number, self.text)


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


def version_key(version: str) -> tuple[int, str]:
    """How tracking rows' versions sort (see Version)."""
    return Version.parse(version).key


def file_name(version: str, fmt: Format) -> str:
    """The file a version is applied from: the inverse of version_of."""
    return f"{version}.up.sql" if fmt is Format.UPDOWN else f"{version}.sql"


def sections(fmt: Format, text: str) -> Sections:
    """The up part (and the down part, for one-file formats) of a file's text; SectionError when malformed."""
    if fmt in (Format.SEED, Format.UPDOWN):
        return Sections(text, 1)
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
    if fmt is Format.UPDOWN:
        return {f"{version}.up.sql": up, f"{version}.down.sql": down}
    if fmt is Format.DBMATE:
        return {f"{version}.sql": f"-- migrate:up\n{up}\n-- migrate:down\n{down}"}
    if fmt is Format.GOOSE:
        up = f"-- +goose StatementBegin\n{up}-- +goose StatementEnd\n"
        return {f"{version}.sql": f"-- +goose Up\n{up}\n-- +goose Down\n{down}"}
    if fmt is Format.NODE_PG_MIGRATE:
        return {f"{version}.sql": f"-- Up Migration\n{up}\n-- Down Migration\n{down}"}
    return {f"{version}.sql": up}
