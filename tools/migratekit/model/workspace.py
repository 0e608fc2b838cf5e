"""The monorepo model: its services, where their migrations are, and their dependency graph.

A Workspace is built from workspace.yaml and the services found on disk by workspace_file; here it is
plain data and the questions every command asks of it (order, waves, dependencies, a service by name).
"""

from __future__ import annotations

import contextlib
import fnmatch
import graphlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from migratekit.errors import ConfigError
from migratekit.files import staged
from migratekit.model.discovery import LAYOUTS, build_format, migration_dirs
from migratekit.model.formats import AUTO
from migratekit.model.graph import closure, dependency_sorter, parallel_groups
from migratekit.model.migration import Migration, load_migrations
from migratekit.model.settings import (
    MIGRATIONS,
    SERVICE_DEFAULTS,
    WORKSPACE_FILE,
    ServiceSettings,
)

STATE_DIR = ".migratekit"  # the embedded cluster, locks: local state, never committed
QUALIFIED_TABLE = re.compile(r"^(?:[a-z_][a-z0-9_]{0,62}\.)?[a-z_][a-z0-9_]{0,62}$")
LANGUAGES = ("typescript", "javascript", "python", "go", "java", "rust", "sql", "unknown")


@dataclass(frozen=True)
class FileIgnore:
    """Rule codes silenced for the files of a service that match a glob (relative to the service's directory)."""

    files: str
    rules: tuple[str, ...]

    def covers(self, service_path: Path, path: Path, code: str) -> bool:
        if code not in self.rules or not path.is_relative_to(service_path):
            return False
        return fnmatch.fnmatchcase(path.relative_to(service_path).as_posix(), self.files)


@dataclass(frozen=True)
class Service:
    """One service: where its migrations are, what it needs first, where its database is."""

    name: str
    path: Path
    language: str
    depends_on: tuple[str, ...]
    database: str
    declared: bool
    settings: ServiceSettings = SERVICE_DEFAULTS  # database_url_env with {SERVICE} replaced by the name
    ignore: tuple[str, ...] = ()  # audit rule codes silenced for this service
    ignore_files: tuple[FileIgnore, ...] = ()  # and for some of its files

    @property
    def migrations_dir(self) -> Path:
        return self.path / self.settings.migrations

    def load_migrations(self, mixed: bool = False) -> tuple[Migration, ...]:
        """This service's migrations, read as its declared (or detected) format reads them: a Rust service whose
        Cargo.toml depends on sqlx is in sqlx's, whose names alone are the seed's or golang-migrate's."""
        fmt = self.settings.format
        if fmt == AUTO and (built := build_format(self.path)) is not None:
            declared_by = f"{relative(self.path.parent, self.path / 'Cargo.toml')} depends on {built} (format: {{fmt}})"
            return load_migrations(self.migrations_dir, built, mixed=mixed, declared_by=declared_by)
        return load_migrations(self.migrations_dir, fmt, mixed=mixed)


@dataclass(frozen=True)
class Workspace:
    """A monorepo: its root, its services by name, and the file they were declared in (if any)."""

    root: Path
    config_path: Path | None
    services_dir: Path
    services: Mapping[str, Service]
    environments: Mapping[str, str] = field(default_factory=dict)  # name -> URL variable template
    migrations: str = MIGRATIONS  # defaults.migrations: a new service that keeps them elsewhere must say so
    embedded: bool = False  # `embedded: true`: services without a URL use the embedded PostgreSQL, even in CI
    baseline: Path | None = None  # `baseline:`: the audit's accepted findings (audit --write-baseline)
    baseline_declared: str | None = None  # where `baseline:` is written (workspace.yaml:3), for its errors

    def environment_variable(self, environment: str, service: str) -> str:
        """The variable holding `service`'s database URL in `environment` (drift --envs)."""
        return self.environments[environment].replace("{SERVICE}", env_name(service))

    @property
    def undeclared(self) -> tuple[str, ...]:
        """Services found on disk that workspace.yaml does not list (the audit reports them)."""
        if self.config_path is None:
            return ()
        return tuple(name for name, svc in self.services.items() if not svc.declared)

    def order(self) -> list[str]:
        """Every service, dependencies first, ties broken by name so runs are repeatable."""
        return [name for group in self.groups() for name in group]

    def groups(self, only: set[str] | None = None) -> list[list[str]]:
        """Waves of services that may run in parallel; each wave depends only on earlier ones."""
        return parallel_groups(self._graph(only), only)

    def sorter(self, only: set[str] | None = None) -> graphlib.TopologicalSorter[str]:
        """A prepared sorter over the services (or `only` these): for a scheduler that starts each when ready."""
        return dependency_sorter(self._graph(only), only)

    def _graph(self, only: set[str] | None) -> dict[str, tuple[str, ...]]:
        return {n: s.depends_on for n, s in self.services.items() if only is None or n in only}

    def with_dependencies(self, names: set[str]) -> set[str]:
        """`names` plus everything they depend on, transitively."""
        return closure(names, {n: set(s.depends_on) for n, s in self.services.items()})

    def with_dependents(self, names: set[str]) -> set[str]:
        """`names` plus everything that depends on them, transitively."""
        reverse: dict[str, set[str]] = {n: set() for n in self.services}
        for name, svc in self.services.items():
            for dep in svc.depends_on:
                reverse[dep].add(name)
        return closure(names, reverse)

    def require_services(self) -> None:
        """A task on a root without services is a mistake (a wrong --root, a typo'd directory): say so, exit 2."""
        if not self.services:
            where = relative(self.root, self.services_dir) if self.services_dir.is_relative_to(self.root) else "?"
            elsewhere = migration_dirs(self.root)
            if elsewhere and self.config_path is None:
                raise ConfigError(
                    f"no services in {self.root} where migratekit looks first ({where}/*), but SQL migrations are in "
                    f"{', '.join(elsewhere[:3])}{' …' if len(elsewhere) > 3 else ''}; invoke init declares them "
                    "(services_dir and migrations: in workspace.yaml)"
                )
            raise ConfigError(
                f"no services in {self.root}: no {where}/*/migrations (or {', '.join(LAYOUTS[1:])}) and none "
                f"declared in {WORKSPACE_FILE}; run from your monorepo's root, pass --root, or create one "
                "(invoke new-service)"
            )

    def get(self, name: str) -> Service:
        try:
            return self.services[name]
        except KeyError:
            known = ", ".join(self.services) or "none"
            typed = name.strip().rstrip("/")
            for service in self.services.values():  # the directory, as the user sees it (services/Ordering.API)
                where = relative(self.root, service.path)
                if typed and typed in (where, service.path.name, relative(self.services_dir, service.path)):
                    raise ConfigError(
                        f"unknown service {name!r}: {where} is the service {service.name} (a service's name is made "
                        f"from its directory's); give {service.name}"
                    ) from None
            raise ConfigError(f"unknown service {name!r}; the services are: {known}") from None


def relative(root: Path, path: Path) -> str:
    """`path` as findings and reports show it: relative to the monorepo root, with forward slashes.

    The same answer as Path.relative_to, by comparing the strings: an audit asks it for every file.
    """
    base, whole = str(root), str(path)
    if whole == base:
        return "."
    prefix = base if base.endswith(os.sep) else base + os.sep
    return whole[len(prefix) :].replace(os.sep, "/") if whole.startswith(prefix) else whole


def env_name(service: str) -> str:
    """`battle-reports` -> `BATTLE_REPORTS`, the {SERVICE} part of an environment variable."""
    return re.sub(r"[^A-Z0-9]", "_", service.upper())


def state_dir(root: Path) -> Path:
    """`<root>/.migratekit/`, created on first use and kept out of git even where .gitignore lacks it."""
    home = Path(root) / STATE_DIR
    made = not home.is_dir()
    home.mkdir(parents=True, exist_ok=True)
    ignore = home / ".gitignore"
    # written whole or not at all (an empty one, as a full disk left it before, is written again): an empty
    # .gitignore puts the cluster and the cache in git's sight for good
    if not ignore.exists() or (ignore.is_file() and not ignore.is_symlink() and ignore.stat().st_size == 0):
        try:
            with staged(ignore) as out:
                out.write("*\n")
        except OSError:
            if made:  # the directory made for it goes too: nothing was written
                with contextlib.suppress(OSError):
                    home.rmdir()
            raise
    return home
