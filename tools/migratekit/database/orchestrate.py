"""All services of a monorepo: dependency order, independent services in parallel, failures contained.

A service whose dependency failed is skipped (its migrations may reference the dependency's
objects); services that do not depend on the failure still finish unless fail_fast is set.
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Collection, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path

from migratekit import interrupts
from migratekit.database.apply import Finished, ProgressFn, WaveStarted, apply_service
from migratekit.database.results import Outcome, Result
from migratekit.errors import ConfigError
from migratekit.model import selection
from migratekit.model.graph import critical_paths
from migratekit.model.identity import neighbours, shared_tracking_tables
from migratekit.model.settings import RUN_DEFAULTS, RunOptions
from migratekit.model.workspace import Workspace, relative


def select_to_migrate(
    workspace: Workspace, names: list[str] | None = None, with_deps: bool = False, changed_since: str | None = None
) -> list[str]:
    """What `migrate`/`migrate-all` run (a changed service's dependents run again), refused when unsafe."""
    selected = selection.select(workspace, names, with_deps, changed_since, with_dependents=True)
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


def _files(directory: Path) -> int:
    """How many migration files a service has: its weight on the critical path (counted by name, without a
    Path per file)."""
    try:
        return sum(1 for entry in os.scandir(directory) if entry.name.endswith(".sql"))
    except OSError:
        return 0


class _Teller:
    """What the progress display is told of the run as a whole: each wave's start (the scheduler starts a service
    as soon as its dependencies are done, so the header comes with a wave's first service), each service's end."""

    def __init__(self, progress: ProgressFn | None, waves: list[list[str]], total: int) -> None:
        self.progress, self.waves, self.total = progress, waves, total
        self.wave_of = {name: number for number, wave in enumerate(waves, 1) for name in wave}
        self.announced = 0

    def starting(self, name: str) -> None:
        if self.progress and self.wave_of[name] > self.announced:
            self.announced = self.wave_of[name]
            self.progress(WaveStarted(self.announced, len(self.waves), tuple(self.waves[self.announced - 1])))

    def finished(self, result: Result, done: int) -> None:
        if self.progress:
            self.progress(Finished(result, done, self.total))


def migrate_all(
    workspace: Workspace,
    selected: Collection[str],
    urls: Mapping[str, str | None],
    run: RunOptions = RUN_DEFAULTS,
    fail_fast: bool = False,
    progress: ProgressFn | None = None,
) -> list[Result]:
    """Apply every selected service; results in dependency order."""
    jobs = run.jobs
    if jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, not {jobs}")
    sorter = workspace.sorter(set(selected))
    graph = {n: tuple(d for d in workspace.services[n].depends_on if d in selected) for n in selected}
    weights = {n: _files(workspace.services[n].migrations_dir) for n in selected}
    priority = critical_paths(graph, weights)  # the longest chain of work first, then by name
    sharing = neighbours(list(workspace.services.values()))
    results: dict[str, Result] = {}
    running: dict[Future[Result], str] = {}
    waiting: list[tuple[float, str]] = []  # ready services, the longest chain first: a heap
    stop = False
    tell = _Teller(progress, workspace.groups(set(selected)), len(selected))

    def migrate(name: str) -> Result:
        service = workspace.services[name]
        return apply_service(
            name, urls[name], service.load_migrations(), service.settings, run, progress, sharing[name], service.path
        ).located(relative(workspace.root, service.migrations_dir))

    def skip_reason(name: str) -> str | None:
        blocked = [d for d in workspace.services[name].depends_on if d in results and not results[d].ok]
        if interrupts.requested():
            return f"skipped: not started, {interrupts.describe()}"
        if blocked:
            return f"skipped: depends on {', '.join(blocked)}, which did not finish"
        return "skipped: an earlier service failed (--fail-fast)" if stop else None

    # A service is handed to a worker only when one is free, so one that becomes ready late (the next
    # link of the longest chain) still goes before services that have waited longer on shorter chains.
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        while sorter.is_active():
            for name in sorter.get_ready():
                heapq.heappush(waiting, (-priority[name], name))
            while waiting and len(running) < jobs:
                _, name = heapq.heappop(waiting)
                reason = skip_reason(name)
                tell.starting(name)
                if reason is None:
                    running[pool.submit(migrate, name)] = name
                else:
                    results[name] = Result(name, Outcome.SKIPPED, notes=(reason,))
                    tell.finished(results[name], len(results))
                    sorter.done(name)
            if not running:
                continue
            finished, _ = wait(running, timeout=0.2, return_when=FIRST_COMPLETED)  # a stop request is seen here
            for future in finished:
                name = running.pop(future)
                results[name] = future.result()
                tell.finished(results[name], len(results))
                stop = stop or (fail_fast and not results[name].ok)
                sorter.done(name)
    rank = {name: i for i, name in enumerate(workspace.order())}
    return sorted(results.values(), key=lambda r: rank[r.service])
