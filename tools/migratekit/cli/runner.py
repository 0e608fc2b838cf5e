"""`python -m migratekit migrate --dir … --url …`: the runner for an init container or an entrypoint script.

No Invoke and no workspace here: an image carries one service's migrations and gets one URL.
Exit codes: 0 up to date, 1 a migration failed, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from migratekit import interrupts
from migratekit.cli import render
from migratekit.database.apply import apply_service
from migratekit.errors import ConfigError, Reported, reported
from migratekit.model.formats import AUTO, FORMATS
from migratekit.model.identity import as_libpq
from migratekit.model.migration import load_migrations
from migratekit.model.secrets import redact, url_problem
from migratekit.model.settings import (
    CONTAINER_CONNECT_WAIT,
    RUN_DEFAULTS,
    SERVICE_DEFAULTS,
    RunOptions,
    ServiceSettings,
)
from migratekit.model.workspace import QUALIFIED_TABLE
from migratekit.version import VERSION


def main(argv: Sequence[str] | None = None) -> int:
    name = Path(sys.argv[0]).name
    prog = "migratekit" if name == "migratekit" else "python -m migratekit"  # the console script, or the module
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {VERSION}")
    commands = parser.add_subparsers(dest="command", required=True)
    migrate = commands.add_parser("migrate", help="apply the pending migrations of one directory to one database")
    migrate.add_argument("--dir", required=True, type=Path, help="the migrations directory")
    migrate.add_argument(
        "--url", default=os.environ.get("DATABASE_URL"), help="the database URL (default: $DATABASE_URL)"
    )
    migrate.add_argument("--tracking-table", default=SERVICE_DEFAULTS.tracking_table, help="table or schema.table")
    migrate.add_argument(
        "--format",
        choices=(AUTO, *FORMATS),
        default=SERVICE_DEFAULTS.format,
        help="how the files are written, as workspace.yaml's format: (default auto: detected from the files)",
    )
    migrate.add_argument("--lock-timeout", default=SERVICE_DEFAULTS.lock_timeout)
    migrate.add_argument("--statement-timeout", default=SERVICE_DEFAULTS.statement_timeout)
    migrate.add_argument(
        "--wait",
        type=float,
        default=CONTAINER_CONNECT_WAIT,
        help=f"seconds to retry connecting while the database starts (default {CONTAINER_CONNECT_WAIT:g})",
    )
    migrate.add_argument("--lock-wait", type=float, default=RUN_DEFAULTS.lock_wait)
    migrate.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)

    if not args.url:
        parser.error("no database URL: pass --url or set DATABASE_URL")
    try:
        args.url = as_libpq(args.url, "--url")  # a Prisma service's image has its Prisma URL (?schema=public)
    except ConfigError as exc:
        parser.error(str(exc))
    problem = url_problem(args.url)
    if problem:
        parser.error(f"--url {redact(args.url)} is not a PostgreSQL URL: {problem}")
    if not args.dir.is_dir():
        parser.error(f"{args.dir}: no such migrations directory")
    for flag, seconds in (("--wait", args.wait), ("--lock-wait", args.lock_wait)):
        if not math.isfinite(seconds) or seconds < 0:
            parser.error(f"{flag} {seconds}: give a finite number of seconds, at least 0")
    if not QUALIFIED_TABLE.fullmatch(args.tracking_table):
        parser.error(f"--tracking-table {args.tracking_table!r}: use table or schema.table in lower case")
    settings = ServiceSettings(
        tracking_table=args.tracking_table,
        lock_timeout=args.lock_timeout,
        statement_timeout=args.statement_timeout,
        format=args.format,
    )
    run = RunOptions(connect_wait=args.wait, lock_wait=args.lock_wait)
    render.fit_stdout(machine=args.json)  # a server's message in any language, whatever the image's locale
    try:
        migrations = load_migrations(
            args.dir, args.format, declared_by="--format {fmt} was given"
        )  # mixed or contradicting formats: exit 2
        with interrupts.handling():
            result = apply_service(args.dir.resolve().parent.name, args.url, migrations, settings, run)
    except Reported as exc:
        message, code = reported(exc)
        print(message, file=sys.stderr)
        return code
    if args.json:
        print(render.as_json(result))
    else:
        for applied in result.applied:
            print(f"applied {applied.version} in {render.duration(applied.execution_time_ms / 1000)}")
        if result.failure:
            print(f"migration failed on {redact(args.url)}: {result.failure.describe()}", file=sys.stderr)
        else:
            said = render.OUTCOME_LABEL[result.outcome]
            print(f"{said}: {len(result.applied)} applied, {result.already_applied} already applied")
    if interrupts.signal_number():
        return 128 + (interrupts.signal_number() or 0)
    return 0 if result.ok else 1
