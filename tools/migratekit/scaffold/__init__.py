"""new-service and new-migration: the pattern from the first commit.

A new service is rendered from `templates/common/` then `templates/<language>/` (tokens like `{{name}}` replaced; a
trailing `.tmpl` dropped from file names), written to a temporary directory and moved into
place in one rename, then registered in workspace.yaml with ruamel.yaml so the file keeps its
comments and order. Any refusal happens before anything is written.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from migratekit.errors import ConfigError
from migratekit.files import made, staged
from migratekit.model import atlas_sum
from migratekit.model.discovery import DEFAULT_DEPTH
from migratekit.model.formats import (
    AUTO,
    FORMATS,
    TIMESTAMPS,
    Format,
    Version,
    file_name,
    migration_files,
    new_version,
)
from migratekit.model.migration import Migration
from migratekit.model.settings import MIGRATIONS, SERVICE_NAME
from migratekit.model.workspace import STATE_DIR, Workspace, env_name, state_dir
from migratekit.scaffold.workspace_yaml import declare, entry

TEMPLATES = Path(__file__).parent / "templates"
LANGUAGES = ("typescript", "python")
RESERVED = {"migratekit", "services", "tools", "tests", "bench"}


@dataclass(frozen=True)
class NewService:
    name: str
    path: Path
    files: tuple[str, ...]  # relative to the service directory


def new_service(
    workspace: Workspace,
    name: str,
    language: str = "typescript",
    depends_on: tuple[str, ...] = (),
    port: int = 3000,
    today: datetime.date | None = None,
    fmt: str = "seed",
) -> NewService:
    """Create `<services_dir>/<name>` in the seed's shape and declare it in workspace.yaml; a nested `group/name`
    is `<services_dir>/group/name`, the service `group-name`, as discovery names it."""
    parts = name.split("/")
    if len(parts) > DEFAULT_DEPTH or not all(SERVICE_NAME.fullmatch(p) and p not in RESERVED for p in parts):
        raise ConfigError(
            f"{name!r} is not a valid service name: lower-case letters, digits, '-' and '_', starting with a "
            "letter (it becomes a directory, a database and an environment variable), or group/name for "
            f"{workspace.services_dir.name}/group/name"
        )
    if language not in LANGUAGES:
        raise ConfigError(f"--lang {language!r}: choose one of {', '.join(LANGUAGES)}")
    target = workspace.services_dir.joinpath(*parts)
    name = "-".join(parts)
    group = next((s for s in workspace.services.values() if s.path == target.parent), None)
    if group is not None:
        raise ConfigError(
            f"{target.parent.relative_to(workspace.root)} is the service {group.name}: a service inside another is "
            "never discovered; choose a group directory that is not a service"
        )
    if target.exists() or target.is_symlink() or name in workspace.services:  # a dangling link: the rename fails
        raise ConfigError(f"{target.relative_to(workspace.root)} already exists; choose another name")
    unknown = [d for d in depends_on if d not in workspace.services]
    if unknown:
        raise ConfigError(
            f"--depends-on names unknown service(s) {', '.join(unknown)}; known: "
            f"{', '.join(workspace.services) or 'none'}"
        )
    if not 1 <= port <= 65535:
        raise ConfigError(f"--port {port} is not a TCP port (1-65535)")
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if fmt == Format.PRISMA:  # the template's runner reads migrations/*.sql; Prisma's own runner is its CLI
        raise ConfigError(
            "--format prisma: a Prisma service's migrations are written by prisma migrate dev from its "
            "prisma/schema.prisma and applied by prisma migrate deploy; create it with npx prisma init, then "
            "invoke init --update declares it (invoke new-migration writes its migrations)"
        )
    if fmt == Format.DRIZZLE:  # its journal and snapshots come from the service's schema, which drizzle-kit reads
        raise ConfigError(
            "--format drizzle: drizzle's migrations are drizzle-kit's to write, from the service's schema (drizzle-kit "
            "generate); scaffold the service in another format, or add drizzle to it and generate them"
        )
    tokens = {
        "name": name,
        "package": name.replace("-", "_"),
        "ENV": env_name(name),
        "port": str(port),
        "created": (today or datetime.date.today()).isoformat(),
        "services_dir": workspace.services_dir.relative_to(workspace.root).as_posix(),
    }
    try:
        with made(target.parent):  # a group's directory made for it goes again with it
            written = _rendered(target, name, language, tokens, Format(fmt))
            try:
                seed_layout = {"migrations": MIGRATIONS} if workspace.migrations != MIGRATIONS else {}  # not default
                declare(workspace, {name: entry(language, depends_on, **seed_layout)})
            except BaseException:  # workspace.yaml is as it was (written whole or not at all): so is the tree
                shutil.rmtree(target, ignore_errors=True)
                raise
    except OSError as exc:  # a full disk, a read-only checkout: no half a service, no directory made for it
        raise ConfigError(
            f"{target.relative_to(workspace.root)} cannot be written ({exc.strerror or exc}); free space or make it "
            "writable, then run new-service again: nothing was written"
        ) from None
    return NewService(name, target, tuple(written))


def _rendered(target: Path, name: str, language: str, tokens: dict[str, str], fmt: Format) -> list[str]:
    """The service's files written beside `target` and renamed into place in one go (none there when it raises):
    their paths, relative to it."""
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    try:
        written = sorted(
            set(_render(TEMPLATES / "common", staging, tokens) + _render(TEMPLATES / language, staging, tokens))
        )
        if fmt is not Format.SEED:
            written = sorted(set(written) - {"migrations/001_init.sql"} | set(_reshape_init(staging, fmt)))
        os.rename(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return written


def _reshape_init(service: Path, fmt: Format) -> list[str]:
    """001_init.sql in another tool's format, with a down part that undoes it (the tracking table stays)."""
    init = service / MIGRATIONS / "001_init.sql"
    up = init.read_text(encoding="utf-8")
    init.unlink()
    down = "DROP FUNCTION IF EXISTS update_updated_at_column();\n"
    files = migration_files(fmt, "001_init", up, down)
    for name, text in files.items():
        (service / MIGRATIONS / name).parent.mkdir(parents=True, exist_ok=True)  # Diesel's: a directory each
        (service / MIGRATIONS / name).write_text(text, encoding="utf-8")
    if fmt is Format.ATLAS:  # the directory is Atlas's by its atlas.sum, as `atlas migrate hash` writes it
        sums = atlas_sum.render(atlas_sum.sql_files(service / MIGRATIONS))
        (service / MIGRATIONS / atlas_sum.SUM_FILE).write_text(sums, encoding="utf-8")
        files = {**files, atlas_sum.SUM_FILE: sums}
    return [f"migrations/{name}" for name in files]


def _render(source: Path, destination: Path, tokens: dict[str, str]) -> list[str]:
    written = []
    for template in sorted(p for p in source.rglob("*") if p.is_file()):
        relative = _fill(template.relative_to(source).as_posix(), tokens).removesuffix(".tmpl")
        out = destination / relative
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(_fill(template.read_text(encoding="utf-8"), tokens), encoding="utf-8")
        written.append(relative)
    return written


def _fill(text: str, tokens: dict[str, str]) -> str:
    return re.sub(r"\{\{(\w+)\}\}", lambda m: tokens.get(m[1], m[0]), text)


@dataclass(frozen=True)
class NewMigration:
    service: str
    path: Path


def new_migration(
    workspace: Workspace,
    service_name: str,
    description: str,
    today: datetime.date | None = None,
    today_time: datetime.datetime | None = None,
) -> NewMigration:
    """Write the next numbered migration of a service, with the seed's header and an idempotent start."""
    service = workspace.get(service_name)
    if any(ord(c) < 32 or ord(c) == 127 for c in description):
        raise ConfigError("the description must be one line of text, without newlines or control characters")
    if len(description) > MAX_DESCRIPTION:
        raise ConfigError(f"the description is {len(description)} characters; keep it under {MAX_DESCRIPTION}")
    slug = re.sub(r"[^a-z0-9]+", "_", description.lower()).strip("_")
    if not slug:
        raise ConfigError(f"description {description!r} has no letters or digits to name the file with")
    if len(slug) > MAX_SLUG:  # the file name keeps the first words; the header keeps the whole description
        slug = slug[: MAX_SLUG + 1].rsplit("_", 1)[0] if "_" in slug[:MAX_SLUG] else slug[:MAX_SLUG]
    with _lock(workspace.root):  # two calls at once must never take the same number
        migrations = service.load_migrations()
        fmt = Format(service.settings.format) if service.settings.format != AUTO else _format_of(migrations)
        if fmt is Format.DRIZZLE:  # its journal and schema snapshots are drizzle-kit's to write
            raise ConfigError(
                f"{service_name}'s migrations are drizzle-kit's, with its journal and schema snapshots: write the "
                "next one with drizzle-kit generate (--custom for hand-written SQL); nothing was written"
            )
        strays = tuple(
            n for n in (Version.of_file(f).number for f in _sql_names(service.migrations_dir)) if n is not None
        )
        version = new_version(fmt, _next_number(migrations, fmt, today_time, strays), slug)
        body, rollback, down = starter_sql(description)
        down_file = [n for n in migration_files(fmt, version, "", "") if n != file_name(version, fmt)]
        if fmt is Format.ATLAS:  # no down parts: Atlas plans a rollback itself (atlas migrate down)
            rollback = "none: Atlas's migrations only go forward; write a new migration that reverses it"
        elif fmt not in (
            Format.SEED,
            Format.PRISMA,
        ):  # the format's down part is the rollback: the header says where it is
            rollback = f"its down part, in {down_file[0]}" if down_file else "its down part, below"
        header = (
            f"-- Migration: {version}\n-- Description: {description.strip()}\n"
            f"-- Created: {(today or datetime.date.today()).isoformat()}\n-- Rollback: {rollback}\n\n"
        )
        written = migration_files(fmt, version, header + body, down)
        _write_all(service.migrations_dir, written)
        if fmt is Format.ATLAS:  # as `atlas migrate new` does: atlas.sum records the new file (it matched before)
            sums = atlas_sum.render(atlas_sum.sql_files(service.migrations_dir))
            try:
                with staged(service.migrations_dir / atlas_sum.SUM_FILE) as out:  # atlas refuses half a sum file
                    out.write(sums)
            except OSError as exc:  # a file atlas.sum does not list would stop every run: none is left
                for name in written:
                    (service.migrations_dir / name).unlink(missing_ok=True)
                reason = exc.strerror or exc
                raise ConfigError(
                    f"{service.migrations_dir / atlas_sum.SUM_FILE}: cannot be written ({reason}); nothing was written"
                ) from None
        path = service.migrations_dir / next(iter(written))
    return NewMigration(service_name, path)


def _sql_names(directory: Path) -> list[str]:
    return [name for name in os.listdir(directory) if name.endswith(".sql")] if directory.is_dir() else []


def _write_all(directory: Path, files: dict[str, str]) -> None:
    """Write every file of one migration, or none: an up part must never be left beside someone else's down part."""
    in_the_way = [name for name in files if (directory / name).exists() or (directory / name).is_symlink()]
    if in_the_way:
        raise ConfigError(
            f"{', '.join(str(directory / n) for n in in_the_way)} already exists (a stray file of an earlier "
            "migration?); rename or delete it, then run new-migration again: nothing was written"
        )
    done: list[Path] = []
    made: list[Path] = []
    path = directory
    try:
        for name, text in files.items():
            path = directory / name
            if path.parent != directory and not path.parent.is_dir():  # Diesel's and Prisma's: a directory each
                path.parent.mkdir()
                made.append(path.parent)
            with open(path, "x", encoding="utf-8") as handle:
                done.append(path)
                handle.write(text)
    except OSError as exc:
        for written in done:
            written.unlink(missing_ok=True)
        for empty in made:  # an empty migration directory stays a migration without its file
            with contextlib.suppress(OSError):
                empty.rmdir()
        raise ConfigError(
            f"{path}: cannot be written ({exc.strerror or exc}); free space or make it writable, then run "
            "new-migration again: nothing was written"
        ) from None


def _format_of(migrations: tuple[Migration, ...]) -> Format:
    return migrations[0].format if migrations else Format.SEED


def _next_number(
    migrations: tuple[Migration, ...], fmt: Format, now: datetime.datetime | None, strays: tuple[int, ...] = ()
) -> str:
    """The next version number in the service's style: its width, or a timestamp where it uses them.

    It is always above every existing number, strays included (a .down.sql without its .up.sql), so the new
    file never sorts before one nor shares a number with one.
    """
    if fmt is Format.FLYWAY:  # V<n>__: the next major version, unpadded, as Flyway's own examples number
        majors = [m.parsed_version.parts[0] for m in migrations if m.parsed_version.parts and not m.repeatable]
        return str(max((*majors, *strays), default=0) + 1)
    widths = [len(m.filename.split("_", 1)[0]) for m in migrations if m.number is not None]
    highest = max((*(m.number for m in migrations if m.number is not None), *strays), default=0)
    stamped = (Format.DBMATE, Format.GOOSE, Format.DIESEL, Format.PRISMA)  # their tools' own names are timestamps
    uses_timestamps = highest >= TIMESTAMPS if widths else fmt in stamped
    if uses_timestamps:
        stamp = int((now or datetime.datetime.now(datetime.UTC)).strftime("%Y%m%d%H%M%S"))
        return str(max(stamp, highest + 1))
    width = max(widths, default=DEFAULT_WIDTH.get(fmt, 3))
    return f"{highest + 1:0{max(width, 3 if fmt is Format.SEED else 1)}d}"


DEFAULT_WIDTH = {Format.SEED: 3, Format.UPDOWN: 6}  # golang-migrate's `create -seq` pads to 6
MAX_DESCRIPTION = 200
MAX_SLUG = 60  # characters of the description in the file name


def starter_sql(description: str) -> tuple[str, str, str]:
    """An idempotent first draft read off the description, Rails-generator style; how to undo it, in words and
    as a down part; else a guide.

    "add users table" / "create users" -> CREATE TABLE IF NOT EXISTS users;
    "add email to users" / "add email column to users" -> ADD COLUMN IF NOT EXISTS.
    """
    words = re.sub(r"[^a-z0-9_ ]+", " ", description.lower()).split()
    text = " ".join(words)
    column = re.fullmatch(r"add (\w+)(?: column)? to (\w+)(?: table)?", text)
    if column:
        col, table = column.groups()
        return (
            (
                f"-- Nullable first, as the pattern asks; backfill and SET NOT NULL in later migrations.\n"
                f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {col} TEXT;\n"
            ),
            f"a new migration with ALTER TABLE {table} DROP COLUMN IF EXISTS {col};",
            (f"ALTER TABLE {table} DROP COLUMN IF EXISTS {col};"),
        )
    table = re.fullmatch(r"(?:add|create) (\w+?)(?: table)?", text)
    if table:
        name = table[1]
        return (
            (
                f"CREATE TABLE IF NOT EXISTS {name} (\n"
                "  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n"
                "  created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),\n"
                "  updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()\n"
                ");\n"
            ),
            f"a new migration with DROP TABLE IF EXISTS {name};",
            f"DROP TABLE IF EXISTS {name};",
        )
    return (
        (
            "-- Write idempotent SQL: CREATE … IF NOT EXISTS, CREATE OR REPLACE, DROP TRIGGER IF EXISTS before\n"
            "-- CREATE TRIGGER, INSERT … ON CONFLICT DO NOTHING, ADD COLUMN IF NOT EXISTS (nullable first).\n"
            "-- Until a statement is here, `invoke audit` reports this file as empty (MK109).\n"
        ),
        "a new migration that reverses this one (say which statements it needs)",
        ("-- Undo the up part here: DROP … IF EXISTS for what it created, in reverse order.\n"),
    )


@contextlib.contextmanager
def _lock(root: Path) -> Iterator[None]:
    try:
        handle = open(state_dir(root) / "scaffold.lock", "a", encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"{exc.filename or Path(root) / STATE_DIR}: cannot be written ({exc.strerror or exc}); new-migration takes "
            f"its lock in the checkout's {STATE_DIR}/: free space or make it writable, then run it again: nothing "
            "was written"
        ) from None
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
