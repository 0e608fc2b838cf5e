"""The Invoke collection: every task of migratekit, by concern (migrate, check, adoption, scaffold, platform).

Another monorepo adopts migratekit with a tasks.py of its own:

    from migratekit.tasks import ns

Task names are flat (`invoke migrate-all`); the run defaults are Invoke configuration under `migratekit:`, so an
invoke.yaml can change them for everyone (`migratekit: {jobs: 8}`) and a flag still wins.
"""

from __future__ import annotations

import functools
from typing import Any

from invoke import Collection, Exit, ParseError
from invoke.parser import Parser, ParseResult

from migratekit.cli.adoption import adopt, baseline, forget, init, status
from migratekit.cli.check import audit, drift, rules, verify
from migratekit.cli.migrate import graph, migrate, migrate_all, rollback, services
from migratekit.cli.platform import ci_workflow, db_down, db_up, db_url, k8s_render
from migratekit.cli.scaffold import new_migration, new_service
from migratekit.model.settings import RUN_DEFAULTS


def _usage_errors_exit_2() -> None:
    """A task's bad arguments (an unknown flag, a missing SERVICE) are usage errors: exit 2, as every other.

    Invoke's program reports its parser's errors with exit 1 and no way to ask otherwise; it parses a task's
    arguments with Parser.parse_argv once this collection is loaded, and exits with an Exit's own code, so
    the parser's error is handed on as one. Invoke's own flags, parsed before the collection loads, keep 1.
    """
    original = Parser.parse_argv
    if getattr(original, "migratekit", False):
        return

    @functools.wraps(original)
    def parse_argv(self: Parser, argv: list[str]) -> Any:
        if argv and argv[0] in self.contexts and {"--help", "-h"} & set(argv[1:]) and self.initial is not None:
            # `invoke migrate --help`: the task's help, as `invoke --help migrate` gives it (Invoke's parser would
            # take --help for a positional's value, or first miss the positionals it was not given)
            self.initial.flags["--help"].value = argv[0]
            return ParseResult([self.initial])
        try:
            return original(self, argv)
        except ParseError as exc:
            raise Exit(
                f"migratekit: {exc}; invoke --list shows the tasks, invoke --help TASK its flags", code=2
            ) from None

    parse_argv.migratekit = True  # type: ignore[attr-defined]
    Parser.parse_argv = parse_argv  # type: ignore[method-assign]


_usage_errors_exit_2()


def _long_flags_only(collection: Collection) -> None:
    """One flag, one spelling, in every task: Invoke's automatic short flags gave --create-databases -c in one
    task and -e in another (first come, first served), so none are given."""
    for each in collection.tasks.values():
        each.auto_shortflags = False


ns = Collection(
    services,
    graph,
    migrate_all,
    migrate,
    rollback,
    audit,
    rules,
    verify,
    drift,
    init,
    new_service,
    new_migration,
    db_up,
    db_down,
    db_url,
    ci_workflow,
    k8s_render,
    status,
    forget,
    adopt,
    baseline,
)
ns.configure(
    {"migratekit": {"jobs": RUN_DEFAULTS.jobs, "wait": RUN_DEFAULTS.connect_wait, "lock_wait": RUN_DEFAULTS.lock_wait}}
)
_long_flags_only(ns)
