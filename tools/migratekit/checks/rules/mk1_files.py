"""MK1xx: the migrations directory and its files: names, numbering, encoding, headers, parsing."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from migratekit.checks.rule import Scope, StaleIgnore
from migratekit.checks.rule import rule as declare_rule
from migratekit.model import atlas_sum
from migratekit.model.formats import AUTO, RUN_ONCE, SEED_NAME, TIMESTAMPS, Format, contradicts, format_groups
from migratekit.model.migration import (
    DRIZZLE_JOURNAL,
    Migration,
    drizzle_layout,
    is_prisma_directory,
    prisma_problems,
    read_files,
    tracking_table_statement,
)


@dataclass(frozen=True)
class Directory:
    service: str
    path: Path  # the migrations directory
    migrations: tuple[Migration, ...]
    tracking_table: str
    gaps_allowed: bool = False  # workspace.yaml `gaps: allow`: numbered sparsely on purpose
    declared: str = AUTO  # workspace.yaml's format: for the service; the migrations are read as each file is


FileHit = tuple[Path, int | None, str | None]  # (file, line, message)


rule = partial(declare_rule, scope=Scope.FILES)


# The rules bound to formats, and the formats each judges; every other rule judges every format's files alike.
SEED_ONLY = (Format.SEED,)
# Prisma's, drizzle's and Atlas's migrations only go forward
WITH_DOWN_PARTS = tuple(f for f in Format if f not in (Format.SEED, Format.PRISMA, Format.DRIZZLE, Format.ATLAS))
# Idempotency (MK2xx) is held to every format whose files people write; Prisma's and drizzle's are generated from
# the service's schema (CREATE TABLE "User" …, never IF NOT EXISTS) and each runs once in one transaction, so a
# rerun never meets half of one: the family judges them only when one cannot run in a transaction
# (judges_idempotency). Safety (MK3xx) judges every format.
WRITTEN_BY_HAND = tuple(f for f in Format if f not in RUN_ONCE)
FAMILY_FORMATS: dict[str, tuple[Format, ...]] = {"MK2": WRITTEN_BY_HAND}
FORMAT_RULES: dict[str, tuple[Format, ...]] = {
    "MK101": tuple(Format),  # each by its own naming: NNN_snake_case.sql, <version>_<name>…, Flyway's V/U/R/B
    "MK104": (Format.SEED, Format.ATLAS),  # Atlas orders its files by name too
    "MK105": SEED_ONLY,
    "MK106": SEED_ONLY,
    "MK111": SEED_ONLY,
    "MK114": WITH_DOWN_PARTS,
    "MK115": (Format.UPDOWN, Format.SQLX),
    "MK116": (Format.DBMATE, Format.GOOSE, Format.NODE_PG_MIGRATE, Format.ATLAS),  # Atlas's: its directives
    "MK119": (Format.PRISMA,),
    "MK130": (Format.ATLAS,),
}


SHAPES = {  # MK101: how a format's migration is named, where it is not <version>_<name>.sql
    Format.UPDOWN: "<version>_<name>.up.sql",
    Format.DIESEL: "<version>_<name>/up.sql",
    Format.PRISMA: "<timestamp>_<name>/migration.sql",
}


def judges(code: str, fmt: Format) -> bool:
    """Whether a rule judges a file of this format (FORMAT_RULES, else its family's FAMILY_FORMATS, else yes)."""
    formats = FORMAT_RULES.get(code) or FAMILY_FORMATS.get(code[:3])
    return formats is None or fmt in formats


def judges_idempotency(fmt: Format, one_transaction: bool) -> bool:
    """Whether the MK2xx rules read a file of `fmt`: a generated one (RUN_ONCE) too when it cannot run in one
    transaction (CREATE INDEX CONCURRENTLY), since a failure half-way then leaves half of it for the rerun."""
    return judges("MK2", fmt) or not one_transaction


def seed_format(d: Directory) -> bool:
    """Whether the service is in the seed's format (declared, or every file read as one): the seed's own conventions
    (MK105 README, MK106 header, MK111 tracking table in 001) are its alone."""
    if d.declared != AUTO:
        return d.declared == Format.SEED
    return all(m.format is Format.SEED for m in d.migrations)


@rule("MK101", "error", "rename it NNN_snake_case_description.sql, e.g. 004_add_email_column.sql")
def file_name(d: Directory) -> Iterable[FileHit]:
    """File name is not NNN_snake_case.sql.

    The version is the file name: a name outside the pattern sorts unpredictably and says nothing.
    Bad: 4-AddEmail.sql
    Good: 004_add_email_column.sql
    """
    for m in d.migrations:
        if m.format is Format.SEED and not SEED_NAME.match(m.filename):
            yield m.path, None, f"{m.filename} is not NNN_snake_case.sql"
        elif m.format is Format.FLYWAY:
            continue  # a file is Flyway's by its name (V1_1__x.sql, R__x.sql): every one read as Flyway's is valid
        elif m.format is not Format.SEED and m.number is None:
            shape = SHAPES.get(m.format, "<version>_<name>.sql")
            yield m.path, None, f"{m.filename} is not {shape}: {m.format} needs a numbered version"


@rule("MK102", "error", "give one of them the next free number")
def duplicate_version(d: Directory) -> Iterable[FileHit]:
    """Two migrations share one number.

    Two branches that both added 004_… merged: the order between them is an accident.
    Bad: 004_add_email.sql and 004_add_phone.sql
    Good: 004_add_email.sql and 005_add_phone.sql
    """
    numbered = [m for m in d.migrations if m.parsed_version.parts is not None and not m.repeatable]
    counts = Counter(m.parsed_version.parts for m in numbered)  # Flyway's 1, 1.0 and 01 are one version
    for m in numbered:
        if counts[m.parsed_version.parts] > 1:
            shown = m.number if m.number is not None else ".".join(map(str, m.parsed_version.parts or ()))
            yield m.path, None, f"number {shown} is used by {counts[m.parsed_version.parts]} files"


@rule(
    "MK103",
    "warning",
    "number sequentially; if gaps are deliberate, set gaps: allow for this service in workspace.yaml",
)
def gap(d: Directory) -> Iterable[FileHit]:
    """A gap in the numbering.

    A missing number usually means a file was deleted or a branch was lost.
    Bad: 001_init.sql, 002_add_users.sql, 004_add_email.sql
    Good: 001_init.sql, 002_add_users.sql, 003_add_email.sql
    """
    numbered = sorted({m.number: m for m in d.migrations if m.number is not None}.items())
    if d.gaps_allowed or (numbered and numbered[-1][0] >= TIMESTAMPS):
        return  # timestamp versions (20240101120000_…) have gaps by nature
    if any(m.format is Format.FLYWAY and m.number is None and not m.repeatable for m in d.migrations):
        return  # dotted Flyway versions (1.1, 1.2, 2) number by release: no next number to miss
    for (previous, before), (number, m) in zip(numbered, numbered[1:], strict=False):
        if number > previous + 1:
            shown = before.filename.split("_", 1)[0]  # as the file writes it: 002, not 2
            yield m.path, None, f"{m.filename} follows {shown}: {number - previous - 1} missing"


@rule("MK104", "error", "pad every number to the same width (001, 002 … 010), so name order is number order")
def unpadded(d: Directory) -> Iterable[FileHit]:
    """Numbers of different widths, so name order differs from number order.

    Files apply in name order: 10_x.sql sorts before 9_y.sql.
    Bad: 9_add_users.sql, 10_add_email.sql
    Good: 009_add_users.sql, 010_add_email.sql
    """
    numbers = [(m, _leading_number(m)) for m in d.migrations if m.format in (Format.SEED, Format.ATLAS)]
    widths = Counter(len(number) for _, number in numbers if number)
    if len(widths) > 1:
        usual = widths.most_common(1)[0][0]
        for m, number in numbers:
            if number and len(number) != usual:
                yield m.path, None, f"{m.filename} has {len(number)} digits, the others {usual}"


def _leading_number(m: Migration) -> str | None:
    """The digits a file's name starts with as its tool reads them: the seed's NNN_snake_case, Atlas's version."""
    if m.format is Format.ATLAS:
        version = m.filename.removesuffix(".sql").split("_", 1)[0]
        return version if version.isdigit() else None
    match = SEED_NAME.match(m.filename)
    return match["number"] if match else None


@rule("MK105", "warning", "add migrations/README.md: how to add a migration and how to roll one back")
def readme(d: Directory) -> Iterable[FileHit]:
    """The migrations directory has no README.md.

    The seed keeps one beside the files: how to add a migration, how each is undone.
    Bad: migrations/001_init.sql alone
    Good: migrations/001_init.sql and migrations/README.md
    """
    if not seed_format(d):
        return  # the seed's convention; another tool's service is held to that tool's, which has none
    if d.migrations and not (d.path / "README.md").is_file():
        yield d.path / "README.md", None, "migrations/README.md is missing"


@rule("MK106", "warning", "start the file with -- Migration: <version>, -- Description: …, -- Created: YYYY-MM-DD")
def header(d: Directory) -> Iterable[FileHit]:
    """The header is absent or names another file.

    A copied file that still says "-- Migration: 003_…" misleads every reader.
    Bad: -- Migration: 003_add_audit_logs   (in 004_add_email.sql)
    Good: -- Migration: 004_add_email
    """
    if not seed_format(d):
        return  # the seed's convention: another tool's files carry no seed header
    for m in d.migrations:
        if m.format is not Format.SEED:
            continue  # other tools' files carry no seed header
        named = m.header.get("migration")
        if named is None:
            yield m.path, 1, "no '-- Migration: <version>' header"
        elif named != m.version:
            yield m.path, 1, f"header names {named}, the file is {m.version}"


@rule("MK107", "error", "re-save the file as UTF-8")
def not_utf8(d: Directory) -> Iterable[FileHit]:
    """The file is not UTF-8.

    Runners decode migrations as UTF-8: other bytes become U+FFFD and the SQL changes.
    Bad: a Latin-1 file with 'é' as byte 0xE9
    Good: the same text saved as UTF-8
    """
    for m in d.migrations:
        found = m.not_utf8
        if found is not None:
            yield m.path, found[0], f"byte 0x{found[1]:02x} is not UTF-8"


@rule("MK108", "warning", "save with LF line endings and no byte-order mark (.gitattributes: *.sql text eol=lf)")
def bom_or_crlf(d: Directory) -> Iterable[FileHit]:
    """Byte-order mark or CRLF line endings.

    They change the file's checksum from one checkout to another.
    Bad: a file saved by an editor with "UTF-8 with BOM" or CRLF
    Good: UTF-8 without BOM, LF line endings
    """
    for m in d.migrations:
        if m.data.startswith(b"\xef\xbb\xbf"):
            yield m.path, 1, "starts with a byte-order mark"
        if b"\r\n" in m.data:
            yield m.path, m.data[: m.data.index(b"\r\n")].count(b"\n") + 1, "has CRLF line endings"


@rule("MK109", "error", "write the migration, or delete the file if it was never applied anywhere")
def empty(d: Directory) -> Iterable[FileHit]:
    """The file holds no SQL statement.

    It is recorded as applied and does nothing: usually a forgotten stub.
    Bad: 004_add_email.sql with only comments
    Good: 004_add_email.sql with ALTER TABLE … ADD COLUMN IF NOT EXISTS …
    """
    for m in d.migrations:
        if m.empty:
            yield m.path, None, "no SQL statement in the file"


@rule("MK110", "error", "fix the SQL; the message is PostgreSQL's own parser's", squawk=("syntax-error",))
def syntax(d: Directory) -> Iterable[FileHit]:
    """SQL that does not parse.

    Checked by PostgreSQL's own parser (pglast), before any database sees the file.
    Bad: CREAT TABLE accounts (id uuid);
    Good: CREATE TABLE IF NOT EXISTS accounts (id uuid);
    """
    for m in d.migrations:
        error = m.syntax_error
        if error is not None and m.section_error is None:  # a broken marker is MK116's
            yield m.path, error.line, f"does not parse: {error}"


@rule("MK111", "warning", "create the tracking table in 001_init.sql, exactly as the seed's 001_init does")
def init_creates_tracking_table(d: Directory) -> Iterable[FileHit]:
    """001_init.sql does not create the tracking table.

    The seed keeps schema_migrations in 001_init for every service, so the schema is complete
    from the files alone.
    Bad: 001_init.sql with only the service's tables
    Good: CREATE TABLE IF NOT EXISTS schema_migrations (version TEXT PRIMARY KEY, …);
    """
    if not seed_format(d) or any(m.format is not Format.SEED for m in d.migrations):
        return  # the seed's 001_init convention; other tools' runners create their own table
    found = tracking_table_statement(d.migrations, d.tracking_table)
    if found is not None and found[1] is None:
        yield found[0].path, None, f"001_init.sql does not create {d.tracking_table}"


@rule("MK113", "warning", "name migrations NNN_description.sql; other files in migrations/ are never applied")
def stray_file(d: Directory) -> Iterable[FileHit]:
    """A file in migrations/ that no runner will apply.

    A `.SQL`, `.sql.bak` or `.psql` file is silently skipped by every runner.
    Bad: migrations/004_add_email.SQL
    Good: migrations/004_add_email.sql
    """
    if not d.path.is_dir():
        return
    others = [p for p in d.path.iterdir() if not p.name.endswith(".sql") and p.name[0] != "." and p.name != "README.md"]
    for path in sorted(others):
        if re.search(r"\.(sql|psql|pgsql)\b", path.name, re.IGNORECASE) and path.is_file():
            yield path, None, f"{path.name} looks like a migration but is never applied"
    if d.declared in (AUTO, Format.DRIZZLE) and ((d.path / DRIZZLE_JOURNAL).is_file() or _drizzle(d)):
        layout = drizzle_layout(d.path, read_files(d.path))  # what drizzle's migrator would skip or stop at
        for path, message in layout.problems if layout is not None else ():
            yield path, None, message


def _drizzle(d: Directory) -> bool:
    return any(m.format is Format.DRIZZLE for m in d.migrations)


@rule("MK114", "warning", "add the missing .down.sql, or a note in migrations/README.md on how to undo it")
def up_without_down(d: Directory) -> Iterable[FileHit]:
    """A migration without a down part where the service's other migrations have one.

    `invoke rollback` stops at it: nothing says how to undo it.
    Bad: 003_add_email.up.sql alone, beside 001_init.up.sql and 001_init.down.sql
    Good: 003_add_email.up.sql and 003_add_email.down.sql
    """
    two_part = [m for m in d.migrations if m.format is not Format.SEED and not m.repeatable]  # R__ is never undone
    if not any(m.down_sql is not None for m in two_part):
        return  # a service that writes no down parts at all has chosen to roll forward only
    for m in two_part:
        if m.down_sql is None and m.section_error is None:
            yield m.path, None, f"{m.filename} has no down part; the others have one"


@rule("MK115", "error", "rename it to match its .up.sql, or delete it")
def down_without_up(d: Directory) -> Iterable[FileHit]:
    """A .down.sql file without its .up.sql.

    No runner applies it forward and rollback never finds it: usually a renamed or deleted up file.
    Bad: 004_add_phone.down.sql with no 004_add_phone.up.sql
    Good: 004_add_phone.up.sql and 004_add_phone.down.sql
    """
    if not d.path.is_dir():
        return
    ups = {m.filename for m in d.migrations if m.format in (Format.UPDOWN, Format.SQLX)}
    for path in sorted(d.path.glob("*.down.sql")):
        if path.name.removesuffix(".down.sql") + ".up.sql" not in ups:
            yield path, None, f"{path.name} has no {path.name.removesuffix('.down.sql')}.up.sql"


@rule("MK116", "error", "write exactly one up marker, and the down marker (if any) once after it")
def section_markers(d: Directory) -> Iterable[FileHit]:
    """Section markers that cannot be read (dbmate's -- migrate:up/down, goose's -- +goose Up/Down).

    Without one clear up section, what would be applied forward is a guess: the file is refused.
    Bad: -- migrate:down before -- migrate:up, or two -- +goose Up lines
    Good: -- migrate:up … -- migrate:down …
    """
    for m in d.migrations:
        error = m.section_error
        if error is not None:
            yield m.path, error.line, str(error)


@rule(
    "MK117",
    "error",
    "keep one format per service: move the other tool's files to a service of their own, or convert them",
)
def mixed_formats(d: Directory) -> Iterable[FileHit]:
    """A migrations directory that mixes formats.

    No runner applies both: migrate refuses the directory, and each tool skips or misreads the other's files.
    Bad: 001_init.up.sql (golang-migrate) beside 002_seed.sql with -- migrate:up (dbmate)
    Good: every file in the service's one format
    """
    if len({m.format for m in d.migrations}) > 1:
        groups = format_groups((m.filename, m.format) for m in d.migrations)
        yield d.path, None, f"mixes migration formats ({groups}); migrate refuses this directory"


@rule("MK118", "error", "set format: auto (or the files' own format) in workspace.yaml, or move the files")
def declared_format_contradicted(d: Directory) -> Iterable[FileHit]:
    """A file written in another format than the one workspace.yaml declares for the service.

    Read as the declared format, a .down.sql or another tool's down section would run forward: migrate
    refuses the service, naming the file.
    Bad: format: seed for a service whose 001_init.sql has -- migrate:up and -- migrate:down sections
    Good: format: auto, or format: dbmate
    """
    if d.declared == AUTO:
        return
    declared = Format(d.declared)
    for m in d.migrations:
        if contradicts(declared, m.format):
            yield m.path, None, f"written in {m.format}, but workspace.yaml declares format: {declared}"
        if m.down_data is not None and declared is not m.format:
            down = m.path.with_name(m.down_name or m.filename.removesuffix(".up.sql") + ".down.sql")
            yield down, None, f"a down part, but workspace.yaml declares format: {declared}"


@declare_rule(
    "MK112", "warning", "remove the ignore comment, or fix its code", scope=Scope.IGNORES, squawk=("unused-ignore",)
)
def unused_inline_ignore(ignores: Iterable[StaleIgnore]) -> Iterable[tuple[str | None, str | None, int | None, str]]:
    """An ignore comment that silences nothing.

    A stale ignore hides the next real problem of the same kind in that statement.
    Bad: -- migratekit: ignore MK302   (before a statement that no longer triggers MK302)
    Good: no comment, or one that names the code the statement triggers
    """
    for stale in ignores:
        if stale.inline:
            yield stale.service, stale.path, stale.line, f"ignore {stale.code} silences nothing here"


@rule(
    "MK119",
    "error",
    'write provider = "postgresql" in migration_lock.toml, and a migration.sql in each migration\'s directory '
    "(or remove the directory)",
)
def prisma_directory(d: Directory) -> Iterable[FileHit]:
    """A Prisma migrations directory that prisma migrate deploy refuses, and so does migratekit.

    Prisma takes every directory in prisma/migrations for a migration and fails reading one without its
    migration.sql; a migration_lock.toml naming another provider says the SQL was written for another database.
    Bad: prisma/migrations/migration_lock.toml with provider = "mysql", or 20240101120000_init/ without migration.sql
    Good: provider = "postgresql", and 20240101120000_init/migration.sql
    """
    if d.path.is_dir() and is_prisma_directory(d.path, d.declared):
        yield from prisma_problems(d.path)


@rule("MK130", "error", "check the files, then run `atlas migrate hash` so that atlas.sum records them")
def atlas_sum_mismatch(d: Directory) -> Iterable[FileHit]:
    """An Atlas directory whose files are not those its atlas.sum records.

    A file edited, added or removed without `atlas migrate hash` (or checked out with other line endings): Atlas
    refuses to apply the directory, and so does migrate; the finding names the file and the sum file's line, as
    Atlas's own message does (atlas.sum's hashes run on from file to file, so the first line that differs is it).
    Bad: 20240102000000_add_email.sql edited after atlas.sum was written
    Good: atlas.sum rewritten by `atlas migrate hash` with the change
    """
    if d.declared != Format.ATLAS and not (d.path / atlas_sum.SUM_FILE).is_file():
        return
    mismatch = atlas_sum.check(d.path)
    if mismatch is not None:
        yield d.path / atlas_sum.SUM_FILE, mismatch.line, f"{mismatch.message}; migrate refuses this directory"
