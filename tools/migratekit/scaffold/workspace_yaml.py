"""Writing workspace.yaml: `invoke init`, and the entry `new-service` adds. Comments, order and style survive.

`init` declares every service found on disk with what can be detected (language, format, and a
tracking table of its own where the service's other tool, or its hand-written runner, already owns
`schema_migrations`), and the `depends_on` (with `database` and `tracking_table`, when what a service
uses is in another's database) that the audit proposes from what its migrations use of the others'
(MK504). What no migration shows (a service calling another's API) is left to the user, with a
comment saying so. Where no service is in a known place, it looks for the shape the monorepo's
migrations directories share and writes that down first.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from migratekit.errors import ConfigError
from migratekit.files import resolved, staged
from migratekit.model.contract import SEED_TABLE, qualified
from migratekit.model.discovery import Layout, infer_layout, migration_dirs
from migratekit.model.formats import Format
from migratekit.model.identity import configured_databases
from migratekit.model.runner_table import own_history
from migratekit.model.settings import MIGRATIONS, WORKSPACE_FILE
from migratekit.model.workspace import Service, Workspace
from migratekit.model.workspace_file import build_workspace

HEADER = (
    "The services of this monorepo, their databases and the order they migrate in (written by invoke init).\n"
    "depends_on: list, for each service, the services whose tables, roles or extensions its migrations use\n"
    "(init proposes those its migrations show; add the ones they do not, e.g. a service calling another's API)."
)
Proposals = Mapping[str, Mapping[str, Any]]  # service -> {depends_on: (...), database: ..., tracking_table: ...}
Proposer = Callable[[Workspace], Proposals]
# Tools whose own history table is called schema_migrations: migratekit's rows go beside it, never into it.
OWN_TABLE = {Format.DBMATE: "dbmate", Format.UPDOWN: "golang-migrate"}


@dataclass(frozen=True)
class Declared:
    path: Path
    added: tuple[str, ...]
    layout: Layout | None = None  # what init inferred, when no service was in a known place
    mixed: tuple[str, ...] = ()  # services whose files mix formats: declared with the most common one
    proposed: Proposals = field(default_factory=dict)  # what was written from what the migrations use


def init_workspace(workspace: Workspace, update: bool = False, propose: Proposer | None = None) -> Declared:
    """Write workspace.yaml declaring every discovered service; with update, add only the missing ones (and the
    depends_on `propose` finds to the services already declared)."""
    path = workspace.root / WORKSPACE_FILE
    if path.exists() and not update:
        raise ConfigError(f"{path} exists; invoke init --update adds the services it lacks, keeping the rest")
    layout: Layout | None = None
    top: dict[str, Any] = {}
    if not workspace.services and not path.exists():
        layout = infer_layout(migration_dirs(workspace.root))
        if layout is not None:
            top = {"services_dir": layout.services_dir}
            if layout.migrations != MIGRATIONS:
                top["defaults"] = {"migrations": layout.migrations}
            try:
                workspace = build_workspace(workspace.root, {"version": 1, **top}, {}, None)
            except ConfigError as exc:  # the inferred workspace would not load: say so, write nothing
                problem = str(exc).removeprefix(f"{WORKSPACE_FILE}: ")
                raise ConfigError(
                    f"the migrations are in {layout.services_dir}/*/{layout.migrations}, but {problem}; "
                    f"nothing was written: declare the services in {WORKSPACE_FILE} by hand"
                ) from None
    workspace.require_services()
    default = layout.migrations if layout else MIGRATIONS
    names = [n for n in workspace.order() if not workspace.services[n].declared or not path.exists()]
    proposed = propose(workspace) if propose is not None else {}
    counts = {n: _formats(workspace.services[n]) for n in names}
    settings = _configured_shared(workspace, proposed)  # and the databases compose or .env files share
    entries = {n: _detected(workspace.services[n], default, counts[n], settings.get(n)) for n in names}
    mixed = tuple(n for n in names if len(counts[n]) > 1)
    added = declare(workspace, entries, top, default, proposed)
    return Declared(path, tuple(added), layout, mixed, proposed)


def declare(
    workspace: Workspace,
    entries: dict[str, CommentedMap],
    top: Mapping[str, Any] | None = None,
    default: str = MIGRATIONS,
    proposed: Proposals | None = None,
) -> list[str]:
    """Add `entries` under services: in workspace.yaml (created when absent, with every service on disk), and
    the `proposed` depends_on to the entries already there (appended: what the user wrote stays)."""
    path = workspace.root / WORKSPACE_FILE
    yaml = YAML()  # round-trip mode: comments survive
    yaml.preserve_quotes = True
    yaml.width = 4096  # one line per service entry, however long
    data = yaml.load(path.read_text(encoding="utf-8")) if path.is_file() else None
    if data is None:
        data = CommentedMap([("version", 1), *(top or {}).items()])
        data.yaml_set_start_comment(HEADER)
        # A new file declares the services already there too, or they would become MK501 "undeclared".
        others = (n for n in workspace.order() if n not in entries)  # init passes them all: read once
        entries = {
            **{n: _detected(workspace.services[n], default, None, (proposed or {}).get(n)) for n in others},
            **entries,
        }
    if data.get("services") is None:
        data["services"] = CommentedMap()
    added = []
    for name, entry in entries.items():
        if name not in data["services"]:
            data["services"][name] = entry
            added.append(name)
    for name, proposal in (proposed or {}).items():
        _add_depends_on(data["services"], name, proposal.get("depends_on", ()))
    _write(path, yaml, data)
    return added


def _add_depends_on(services: CommentedMap, name: str, depends_on: tuple[str, ...]) -> None:
    """Append the missing ones of `depends_on` to a declared service's entry, in flow style."""
    declared = services.get(name)
    if not isinstance(declared, CommentedMap):
        return  # not declared as a mapping (`name: {}` written otherwise): left as the user wrote it
    current = declared.get("depends_on")
    if current is None:
        current = CommentedSeq()
        current.fa.set_flow_style()
        declared.insert(1 if "language" in declared else 0, "depends_on", current)
    current.extend(d for d in depends_on if d not in current)


def entry(language: str, depends_on: tuple[str, ...] = (), **settings: str) -> CommentedMap:
    """One service's entry, in flow style: {language: typescript, depends_on: [a, b]}."""
    result = CommentedMap([("language", language)])
    if depends_on:
        deps = CommentedSeq(depends_on)
        deps.fa.set_flow_style()
        result["depends_on"] = deps
    for key, value in settings.items():
        result[key] = value
    result.fa.set_flow_style()
    return result


def _formats(service: Service) -> Counter[Format]:
    """How many of the service's files are in each format (one stray init.sql among goose files is two)."""
    return Counter(m.format for m in service.load_migrations(mixed=True))


def _configured_shared(workspace: Workspace, proposed: Proposals) -> Proposals:
    """`proposed`, with the services the repository's own configuration (compose, .env) puts in one database: each
    but the first (in dependency order) declared in the first one's database, with a tracking table of its own
    (their versions would otherwise be each other's, MK502), unless something else is proposed for it."""
    services = [workspace.services[n] for n in workspace.order()]
    configured = configured_databases(workspace.root, services)
    groups: dict[str, list[str]] = {}
    for service in services:
        if service.name in configured and service.database == service.name:
            groups.setdefault(configured[service.name].database, []).append(service.name)
    merged = {name: dict(proposal) for name, proposal in proposed.items()}
    for first, *others in (names for names in groups.values() if len(names) > 1):
        for name in others:
            proposal = merged.setdefault(name, {})
            if "database" not in proposal and workspace.services[name].settings.tracking_table == SEED_TABLE:
                proposal.update(database=first, tracking_table=f"{name.replace('-', '_')}.schema_migrations")
    return merged


def _detected(
    service: Service,
    default: str = MIGRATIONS,
    counts: Counter[Format] | None = None,
    proposal: Mapping[str, Any] | None = None,
) -> CommentedMap:
    counts = _formats(service) if counts is None else counts
    proposal = proposal or {}
    fmt = max(counts, key=lambda f: (counts[f], f is Format.SEED)) if counts else Format.SEED
    settings: dict[str, str] = {}
    if service.settings.migrations != default:  # found in another layout (db/migrations): said, so it is read there
        settings["migrations"] = service.settings.migrations
    if fmt is not Format.SEED:
        settings["format"] = str(fmt)
    if fmt in OWN_TABLE and service.settings.tracking_table == SEED_TABLE:
        settings["tracking_table"] = "migratekit.schema_migrations"  # beside the other tool's, never in it
    own = own_history(service.path)  # a hand-written runner's schema_migrations(filename, ...): beside it too
    if own is not None and own.table == qualified(service.settings.tracking_table):
        settings["tracking_table"] = "migratekit.schema_migrations"
    if service.database != service.name:
        settings["database"] = service.database
    elif "database" in proposal:  # what its migrations use is in another service's database
        settings["database"] = proposal["database"]
    if "tracking_table" in proposal and "tracking_table" not in settings:
        settings["tracking_table"] = proposal["tracking_table"]
    depends_on = (*service.depends_on, *(d for d in proposal.get("depends_on", ()) if d not in service.depends_on))
    return entry(service.language, depends_on, **settings)


def _write(path: Path, yaml: YAML, data: object) -> None:
    """workspace.yaml whole or not at all: a full disk part-way left half of it, which every task then refused."""
    there = os.path.lexists(path)
    try:
        with staged(resolved(path) or path) as handle:
            yaml.dump(data, handle)
    except OSError as error:
        reason = error.strerror or str(error)
        kept = "the file there is as it was" if there else "nothing was written"
        raise ConfigError(f"{path.name}: cannot be written ({reason}); {kept}") from None


def name_baseline(workspace: Workspace, baseline: str) -> None:
    """Set `baseline:` in workspace.yaml (after `version`), so every audit (CI, pre-commit) reads it."""
    path = workspace.root / WORKSPACE_FILE
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096
    data = yaml.load(path.read_text(encoding="utf-8"))
    if "baseline" in data:
        data["baseline"] = baseline
    else:
        data.insert(1 if "version" in data else 0, "baseline", baseline)
    _write(path, yaml, data)
