"""`migratekit-hook`: the pre-commit hooks (.pre-commit-hooks.yaml), for the files being committed.

pre-commit passes the staged files; only findings in those files are reported, plus a service's wiring findings
(runner, image, startup) when one of its wiring files is staged (checks.staged). The workspace's findings
baseline applies.

  migratekit-hook audit FILE...   the whole audit of the staged files (exit 1 on an error)
  migratekit-hook files FILE...   naming and numbering only: the file rules, no database, no wiring
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from migratekit.checks.rule import Severity
from migratekit.cli import render
from migratekit.errors import Reported, reported
from migratekit.model.workspace_file import load_workspace


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="migratekit-hook", description=__doc__.splitlines()[0])
    parser.add_argument("check", choices=["audit", "files"], help="the whole audit, or the file rules only")
    parser.add_argument("paths", nargs="*", help="the files pre-commit passes")
    args = parser.parse_args(argv)
    from migratekit.checks.staged import audit_staged

    try:
        result = audit_staged(load_workspace(), args.paths, only_file_rules=args.check == "files")
    except Reported as exc:
        message, code = reported(exc)
        print(message, file=sys.stderr)
        return code
    if not result.services:
        return 0
    render.fit_stdout(machine=False)  # a name its locale cannot encode is escaped, not a traceback
    out = render.console()
    for line in render.audit_text(result):
        out.print(line)
    return 1 if any(f.severity is Severity.ERROR for f in result.findings) else 0


if __name__ == "__main__":
    sys.exit(main())
