"""MK12x: what only history can tell: edits and deletions after a migration was merged, and clashes.

Compared against a git ref (the target branch of a pull request, usually): a file that was on
the ref has been applied somewhere and must never change; a new file must sort after it.
"""

from __future__ import annotations

from collections.abc import Iterable

from migratekit.changes import git, verify_ref
from migratekit.findings import Finding, make_rule
from migratekit.migration import NAME
from migratekit.workspace import Service, Workspace

EDITED = make_rule(
    "MK120",
    "error",
    "restore the file as it is on the ref and put the change in a new migration",
    """A migration that was already merged has been edited.

    Databases that applied it keep the old text: their schema and the file now disagree.
    Bad: editing 002_add_characters_table.sql after it reached main
    Good: 004_alter_characters.sql with the change
    """,
)
DELETED = make_rule(
    "MK121",
    "error",
    "restore the file; write a new migration to undo what it did",
    """A migration that was already merged has been deleted.

    Databases that applied it still have its objects, and their tracking rows name a missing file.
    Bad: git rm migrations/003_add_audit_logs.sql
    Good: 005_drop_audit_logs.sql with DROP TABLE IF EXISTS audit_logs
    """,
)
CLASH = make_rule(
    "MK122",
    "error",
    "renumber the new file after the highest version on the ref",
    """A new migration numbered at or below the highest one already merged.

    Two branches both added 004_…: databases that applied the other one skip this one, or apply
    it out of order.
    Bad: main has 004_add_email.sql; this branch adds 004_add_phone.sql
    Good: this branch adds 005_add_phone.sql
    """,
)


def history_findings(ws: Workspace, services: Iterable[Service], ref: str) -> list[Finding]:
    top = verify_ref(ws.root, ref)
    findings: list[Finding] = []
    for service in services:
        directory = service.migrations_dir.resolve().relative_to(top).as_posix()
        on_ref = [p for p in git(ws.root, "ls-tree", "-r", "--name-only", ref, "--", directory) if p.endswith(".sql")]
        numbers = [int(m["number"]) for p in on_ref if (m := NAME.match(p.rsplit("/", 1)[-1]))]
        highest = max(numbers, default=0)
        changes = git(ws.root, "diff", "--name-status", "--no-renames", ref, "--", directory)
        untracked = git(ws.root, "ls-files", "--others", "--exclude-standard", "--", directory)
        statuses = [line.split("\t", 1) for line in changes] + [["A", path] for path in untracked]
        for status, path in statuses:
            if not path.endswith(".sql"):
                continue
            rel = (top / path).relative_to(ws.root).as_posix() if (top / path).is_relative_to(ws.root) else path
            name = path.rsplit("/", 1)[-1]
            if status.startswith("M"):
                findings.append(EDITED.finding(service.name, rel, None, f"{name} was edited after it reached {ref}"))
            elif status.startswith("D"):
                findings.append(DELETED.finding(service.name, rel, None, f"{name} was deleted after it reached {ref}"))
            elif status.startswith("A") and (m := NAME.match(name)) and int(m["number"]) <= highest:
                findings.append(
                    CLASH.finding(
                        service.name, rel, None, f"{name} is new, but {ref} already has migrations up to {highest:03d}"
                    )
                )
    return findings
