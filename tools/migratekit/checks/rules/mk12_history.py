"""MK12x: what only history can tell: edits and deletions after a migration was merged, and clashes.

Compared against a git ref (the target branch of a pull request, usually): a file that was on
the ref has been applied somewhere and must never change; a new file must sort after it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import partial

from migratekit.checks.rule import Scope
from migratekit.checks.rule import rule as declare_rule
from migratekit.model.formats import Version
from migratekit.model.selection import git, verify_ref
from migratekit.model.workspace import Service, Workspace, relative

rule = partial(declare_rule, scope=Scope.HISTORY)


@dataclass(frozen=True)
class Change:
    status: str  # git's name-status letter: A(dded), M(odified), D(eleted)
    path: str  # relative to the monorepo root
    name: str  # the file's name in its migrations directory (Diesel's and Prisma's with its directory's)


@dataclass(frozen=True)
class ServiceHistory:
    """One service's migration files as changed since `ref`, and the highest number on the ref."""

    service: str
    ref: str
    highest: int
    changes: tuple[Change, ...]

    def with_status(self, letter: str) -> Iterator[Change]:
        return (c for c in self.changes if c.status.startswith(letter))


HistoryHit = tuple[str, int | None, str]  # (path, line, message)


@rule("MK120", "error", "restore the file as it is on the ref and put the change in a new migration")
def edited(h: ServiceHistory) -> Iterable[HistoryHit]:
    """A migration that was already merged has been edited.

    Databases that applied it keep the old text: their schema and the file now disagree.
    Bad: editing 002_add_characters_table.sql after it reached main
    Good: 004_alter_characters.sql with the change
    """
    for change in h.with_status("M"):
        yield change.path, None, f"{change.name} was edited after it reached {h.ref}"


@rule("MK121", "error", "restore the file; write a new migration to undo what it did")
def deleted(h: ServiceHistory) -> Iterable[HistoryHit]:
    """A migration that was already merged has been deleted.

    Databases that applied it still have its objects, and their tracking rows name a missing file.
    Bad: git rm migrations/003_add_audit_logs.sql
    Good: 005_drop_audit_logs.sql with DROP TABLE IF EXISTS audit_logs
    """
    for change in h.with_status("D"):
        yield change.path, None, f"{change.name} was deleted after it reached {h.ref}"


@rule("MK122", "error", "renumber the new file after the highest version on the ref")
def clash(h: ServiceHistory) -> Iterable[HistoryHit]:
    """A new migration numbered at or below the highest one already merged.

    Two branches both added 004_…: databases that applied the other one skip this one, or apply
    it out of order.
    Bad: main has 004_add_email.sql; this branch adds 004_add_phone.sql
    Good: this branch adds 005_add_phone.sql
    """
    for change in h.with_status("A"):
        number = Version.of_file(change.name).number
        down = change.name.endswith((".down.sql", "/down.sql"))  # a pair is reported once, by its up part
        if number is not None and number <= h.highest and not down:
            yield change.path, None, f"{change.name} is new, but {h.ref} already has migrations up to {h.highest:03d}"


def service_history(ws: Workspace, service: Service, ref: str) -> ServiceHistory:
    """What git says about one service's migrations since `ref` (committed, staged, untracked)."""
    top = verify_ref(ws.root, ref)
    directory = service.migrations_dir.resolve().relative_to(top).as_posix()
    on_ref = [p for p in git(ws.root, "ls-tree", "-r", "--name-only", ref, "--", directory) if p.endswith(".sql")]
    numbers = [n for p in on_ref if (n := Version.of_file(_inside(p, directory)).number) is not None]
    changed = git(ws.root, "diff", "--name-status", "--no-renames", ref, "--", directory)
    untracked = git(ws.root, "ls-files", "--others", "--exclude-standard", "--", directory)
    statuses = [line.split("\t", 1) for line in changed] + [["A", path] for path in untracked]
    changes = tuple(
        Change(status, relative(ws.root, top / path), _inside(path, directory))
        for status, path in statuses
        if path.endswith(".sql")
    )
    return ServiceHistory(service.name, ref, max(numbers, default=0), changes)


def _inside(path: str, directory: str) -> str:
    """A git path's name in the migrations directory: 002_x.sql, or a directory format's 20240101120000_x/migration.sql
    (whose version is its directory's)."""
    return path.removeprefix(directory.rstrip("/") + "/") if directory not in ("", ".") else path
