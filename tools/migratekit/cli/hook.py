"""`migratekit-hook`: the pre-commit hooks (.pre-commit-hooks.yaml), for the services of the changed files.

pre-commit passes the changed files; only the services those files belong to are checked.

  migratekit-hook audit FILE...   the whole audit of the changed services (exit 1 on an error)
  migratekit-hook files FILE...   naming and numbering only: the file rules, no database, no wiring
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from migratekit.checks.rule import Scope, Severity, rules_for
from migratekit.cli import render
from migratekit.errors import Reported, reported
from migratekit.model.workspace import Workspace
from migratekit.model.workspace_file import load_workspace


def services_of(workspace: Workspace, paths: Sequence[str]) -> list[str]:
    """The services whose directories hold any of `paths` (relative to the working directory)."""
    files = [Path(p).resolve() for p in paths]
    return [
        name
        for name in workspace.order()
        if any(f.is_relative_to(workspace.services[name].path.resolve()) for f in files)
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="migratekit-hook", description=__doc__.splitlines()[0])
    parser.add_argument("check", choices=["audit", "files"], help="the whole audit, or the file rules only")
    parser.add_argument("paths", nargs="*", help="the files pre-commit passes")
    args = parser.parse_args(argv)
    from migratekit.checks.run import audit

    try:
        workspace = load_workspace()
        names = services_of(workspace, args.paths)
        if not names:
            return 0
        result = audit(workspace, names)
    except Reported as exc:
        message, code = reported(exc)
        print(message, file=sys.stderr)
        return code
    if args.check == "files":
        codes = {r.code for r in rules_for(Scope.FILES)}
        result = replace(result, findings=tuple(f for f in result.findings if f.code in codes))
    out = render.console()
    for line in render.audit_text(result):
        out.print(line)
    return 1 if any(f.severity is Severity.ERROR for f in result.findings) else 0


if __name__ == "__main__":
    sys.exit(main())
