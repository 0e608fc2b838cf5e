"""All services of a monorepo: dependency order, independent services in parallel, failures contained.

A service whose dependency failed is skipped (its migrations may reference the dependency's
objects); services that do not depend on the failure still finish unless fail_fast is set.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import replace

from migratekit import changes, interrupts
from migratekit.apply import Options, ProgressFn, apply_service
from migratekit.databases import shared_tracking_tables
from migratekit.errors import ConfigError
from migratekit.graph import critical_paths
from migratekit.migration import load_migrations
from migratekit.results import Outcome, Result
from migratekit.workspace import Workspace


def select_to_migrate(
    workspace: Workspace, names: list[str] | None = None, with_deps: bool = False, changed_since: str | None = None
) -> list[str]:
    """What `migrate`/`migrate-all` run (a changed service's dependents run again), refused when unsafe."""
    selected = changes.select(workspace, names, with_deps, changed_since, with_dependents=True)
    refuse_shared_tracking_tables(workspace, set(selected))
    return selected


def refuse_shared_tracking_tables(workspace: Workspace, names: set[str]) -> None:
    """Two services recording into one table of one database would take each other's rows: stop first."""
    for found, sharing in shared_tracking_tables(workspace.services.values()):
        if names.isdisjoint(sharing):
            continue
        raise ConfigError(
            f"services {' and '.join(sharing)} would record their migrations in one table, "
            f"{found.tracking_table} of {found.database}; give one its own tracking_table "
            "(e.g. <service>.schema_migrations) or its own database in workspace.yaml"
        )


def service_options(workspace: Workspace, name: str, base: Options) -> Options:
    service = workspace.services[name]
    return replace(
        base,
        tracking_table=service.tracking_table,
        lock_timeout=service.lock_timeout,
        statement_timeout=service.statement_timeout,
        create_database=base.create_database or service.create_database,
    )


def migrate_all(
    workspace: Workspace,
    selected: Collection[str],
    urls: Mapping[str, str | None],
    options: Options,
    jobs: int = 4,
    fail_fast: bool = False,
    progress: ProgressFn | None = None,
) -> list[Result]:
    """Apply every selected service; results in dependency order."""
    if jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, not {jobs}")
    sorter = workspace.sorter(set(selected))
    graph = {n: tuple(d for d in workspace.services[n].depends_on if d in selected) for n in selected}
    weights = {n: len(list(workspace.services[n].migrations_dir.glob("*.sql"))) for n in selected}
    priority = critical_paths(graph, weights)  # the longest chain of work first, then by name
    results: dict[str, Result] = {}
    running: dict[Future[Result], str] = {}
    stop = False

    def run(name: str) -> Result:
        service = workspace.services[name]
        return apply_service(
            name,
            urls[name],
            load_migrations(service.migrations_dir, service.format),
            service_options(workspace, name, options),
            progress,
        )

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        while sorter.is_active():
            for name in sorted(sorter.get_ready(), key=lambda n: (-priority[n], n)):
                blocked = [d for d in workspace.services[name].depends_on if d in results and not results[d].ok]
                if blocked or stop or interrupts.requested():
                    reason = (
                        f"skipped: not started, {interrupts.describe()}"
                        if interrupts.requested()
                        else f"skipped: depends on {', '.join(blocked)}, which did not finish"
                        if blocked
                        else "skipped: an earlier service failed (--fail-fast)"
                    )
                    results[name] = Result(name, Outcome.SKIPPED, notes=(reason,))
                    sorter.done(name)
                else:
                    running[pool.submit(run, name)] = name
            if not running:
                continue
            finished, _ = wait(running, timeout=0.2, return_when=FIRST_COMPLETED)  # a stop request is seen here
            for future in finished:
                name = running.pop(future)
                results[name] = future.result()
                stop = stop or (fail_fast and not results[name].ok)
                sorter.done(name)
    rank = {name: i for i, name in enumerate(workspace.order())}
    return sorted(results.values(), key=lambda r: rank[r.service])
