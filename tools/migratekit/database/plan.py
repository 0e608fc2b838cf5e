"""The pure part of applying: compare a service's files with its tracking rows, say what runs and what stops."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from migratekit.database.results import Failure
from migratekit.model.formats import Format, file_name, version_key
from migratekit.model.formats import newest as newest_version
from migratekit.model.migration import NOT_UTF8, TO_UTF8, Migration

# Line comments, block comments, whitespace and empty statements from the start of a file. Exact without
# block comments; those nest in PostgreSQL (/* a /* b */ c */), which only its lexer follows.
NO_STATEMENT = re.compile(r"(?:--[^\n]*|/\*.*?\*/|;|\s)*", re.DOTALL)
NOT_A_STATEMENT = {"SQL_COMMENT", "C_COMMENT", "ASCII_59"}  # pglast's scanner tokens: comments and ';'


def holds_no_statement(text: str) -> bool:
    """Only comments, whitespace and ';'. The pattern reads a header, not the whole file (0.001 ms); a file that
    starts with a block comment is scanned by PostgreSQL's lexer through pglast (0.2 ms)."""
    end = NO_STATEMENT.match(text).end()  # type: ignore[union-attr]
    if "/*" not in text[:end]:
        return end == len(text)
    from pglast.parser import ParseError, scan

    try:
        return all(token.name in NOT_A_STATEMENT for token in scan(text))
    except ParseError:  # an unterminated comment or string: not a stub, PostgreSQL reports it
        return False


@dataclass(frozen=True)
class Plan:
    """The pending files of one database, and what stops them."""

    pending: tuple[Migration, ...]
    already_applied: int
    problems: tuple[Failure, ...] = ()
    rechecksum: tuple[Migration, ...] = ()  # edited files whose new checksum --allow-changed records
    notes: tuple[str, ...] = field(default=())


def plan(
    migrations: Sequence[Migration], applied: Mapping[str, str], allow_changed: bool = False, out_of_order: bool = False
) -> Plan:
    """Compare files with tracking rows (version -> checksum)."""
    files = {m.version: m for m in migrations}
    fmt = migrations[0].format if migrations else Format.SEED  # a gone file is named as its service's are
    problems: list[Failure] = []
    rechecksum: list[Migration] = []
    notes: list[str] = []
    for version, checksum in sorted(applied.items()):
        migration = files.get(version)
        if migration is None:
            problems.append(
                Failure(
                    "applied, but the file is gone",
                    file=file_name(version, fmt),
                    hint="restore the file from version control; never delete an applied migration",
                )
            )
        elif checksum != migration.checksum and checksum not in migration.checksums:  # variants only if needed
            if migration.repeatable:
                continue  # Flyway's R__ file: changed, so it runs again (below), its row replaced
            if allow_changed:
                rechecksum.append(migration)
                notes.append(
                    f"{migration.filename}: recorded new checksum {migration.checksum} "
                    f"(was {checksum}) after a deliberate edit (--allow-changed)"
                )
            else:
                problems.append(
                    Failure(
                        f"changed after it was applied (applied checksum {checksum}, file now {migration.checksum})",
                        file=migration.filename,
                        hint="restore the applied text and put the change in a new migration; or, after a "
                        "deliberate edit, re-run with --allow-changed to record the new checksum",
                    )
                )
    pending = tuple(m for m in migrations if m.version not in applied or _rerun(m, applied[m.version]))
    for migration in pending:
        broken = migration.section_error
        encoding = migration.up_not_utf8
        if encoding is not None:  # applied, its text would change on the way (MK107 says the same)
            line, byte = encoding
            problems.append(
                Failure(
                    NOT_UTF8.format(byte=byte), file=migration.filename, line=line, hint=f"{TO_UTF8}, then run again"
                )
            )
        elif broken is not None:  # its up part cannot be told: nothing of it may run (MK116 says the same)
            problems.append(
                Failure(
                    f"its sections cannot be read: {broken}",
                    file=migration.filename,
                    line=broken.line,
                    hint="write exactly one up marker, and the down marker (if any) once after it",
                )
            )
        elif holds_no_statement(migration.sql):
            problems.append(
                Failure(
                    "holds no SQL statement: a stub would be recorded as applied, and what is written into it "
                    "later could never run",
                    file=migration.filename,
                    hint="write the migration, or delete the file",
                )
            )
    # The newest row is found only when something is pending (every row's version parsed): up to date needs none.
    newest = (newest_version(applied) or "") if pending and applied and not out_of_order else ""
    newest_key = version_key(newest)
    for migration in pending if newest else ():
        if version_key(migration.version) < newest_key and not migration.repeatable:
            problems.append(
                Failure(
                    f"pending, but sorts before {newest}, which is already applied",
                    file=migration.filename,
                    hint="renumber it after the newest applied migration, or re-run with --out-of-order",
                )
            )
    return Plan(pending, len(applied), tuple(problems), tuple(rechecksum), tuple(notes))


def _rerun(migration: Migration, checksum: str) -> bool:
    """A repeatable migration whose file is not the text it was applied as: Flyway runs it again."""
    return migration.repeatable and checksum != migration.checksum and checksum not in migration.checksums
