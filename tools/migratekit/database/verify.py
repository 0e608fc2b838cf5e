"""`invoke verify`: what the seed's checklist asks ("tested locally, ran twice successfully"), proven.

On a throwaway database: apply every migration, snapshot the schema, run every file's SQL a
second time, and check each run succeeds and the schema did not move. Then check the newest
migration says how it is rolled back.
"""

from __future__ import annotations

import io
import os
import re
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from migratekit.database.apply import apply_service, run_again
from migratekit.database.results import Failure
from migratekit.database.schema import Difference, compare, snapshot
from migratekit.database.scratch import ScratchServer, docker_unavailable_reason, scratch_database
from migratekit.errors import ConfigError
from migratekit.model.dockerfile import analyse
from migratekit.model.formats import RUN_ONCE, Format
from migratekit.model.identity import shared_databases
from migratekit.model.migration import Migration
from migratekit.model.secrets import redact
from migratekit.model.workspace import Workspace

ROLLBACK_COMMENT = re.compile(r"^\s*--\s*(?:rollback|down|undo|revert)\b", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class Verification:
    service: str  # the service
    migrations: int  # how many were applied from empty, then each run again
    first_run: Failure | None = None  # applying from empty failed
    second_run: tuple[Failure, ...] = ()  # files whose second run failed
    schema_changes: tuple[tuple[str, Difference], ...] = ()  # (file, what its second run changed)
    rollback: str | None = None  # what is missing about the newest migration's rollback notes
    notes: tuple[str, ...] = field(default=())  # what else a person should know
    run_again: int | None = None  # how many were run a second time (None: all; Prisma's run once)

    @property
    def ok(self) -> bool:
        return self.first_run is None and not self.second_run and not self.schema_changes and self.rollback is None


def verify_service(workspace: Workspace, name: str, server: ScratchServer) -> Verification:
    service = workspace.services[name]
    migrations = service.load_migrations()
    # Services sharing this database that it depends on come first: its SQL may reference theirs.
    dependencies = workspace.with_dependencies({name}) - {name}
    ordered = [workspace.services[n] for n in workspace.order()]
    sharing = next(g for _, g in shared_databases(ordered) if name in g)
    neighbours = [d for d in sharing if d in dependencies]
    with scratch_database(server, prefix=f"mk_verify_{name.replace('-', '_')}") as url:
        notes = []
        for neighbour in neighbours:
            other = workspace.services[neighbour]
            result = apply_service(neighbour, url, other.load_migrations(), other.settings)
            if not result.ok:
                return Verification(name, len(migrations), first_run=result.failure)
            notes.append(f"applied {neighbour} first (it shares the database and {name} depends on it)")
        first = apply_service(name, url, migrations, service.settings)
        if not first.ok:
            return Verification(name, len(migrations), first_run=first.failure, notes=tuple(notes))
        failures, changes = [], []
        once = [m for m in migrations if m.format in RUN_ONCE]
        if once:
            notes.append(
                f"not run a second time: {len(once)} {once[0].format} migration(s), generated to run once in one "
                "transaction, as their tool runs them"
            )
        with psycopg.connect(url, autocommit=True) as conn:
            before = snapshot(conn)
            for migration in (m for m in migrations if m.format not in RUN_ONCE):
                failure = run_again(conn, migration, service.settings)
                if failure is not None:
                    failures.append(failure)
                    continue
                after = snapshot(conn)
                changes += [(migration.filename, d) for d in compare(before, after)]
                before = after
    return Verification(
        name,
        len(migrations),
        None,
        tuple(failures),
        tuple(changes),
        _rollback_gap(service.migrations_dir, migrations),
        tuple(notes),
        len(migrations) - len(once) if once else None,
    )


def _rollback_gap(directory: Path, migrations: tuple[Migration, ...]) -> str | None:
    """None when the newest migration says how it is undone: its down part (a .down.sql, a down section, Flyway's U
    file, Diesel's down.sql), migrations/README.md or a comment in the file. A Flyway repeatable file is run again,
    never undone: the newest versioned one is meant."""
    versioned = [m for m in migrations if not m.repeatable]
    if not versioned:
        return None
    newest = versioned[-1]
    if newest.format in RUN_ONCE:
        return None  # Prisma's migrations only go forward: a new migration reverses one
    if newest.down_sql is not None and newest.down_sql.strip():
        return None
    if newest.format is Format.DRIZZLE:  # drizzle-kit writes no down part: drizzle's migrations roll forward
        return None
    readme = directory / "README.md"
    if readme.is_file() and newest.version in readme.read_text(encoding="utf-8", errors="replace"):
        return None
    if ROLLBACK_COMMENT.search(newest.text):
        return None
    return (
        f"no rollback notes for {newest.version}: add a line for it under 'Rolling back' in "
        "migrations/README.md, or a '-- Rollback: …' comment in the file"
    )


@dataclass(frozen=True)
class ImageCheck:
    service: str  # the service
    skipped: str | None  # why nothing was built (no Docker engine), else None
    problems: tuple[str, ...] = ()  # how the image's migrations differ from the repository's


def verify_image(workspace: Workspace, name: str) -> ImageCheck:
    """Build the service's image and check the migrations inside are byte-identical to the repository's."""
    reason = docker_unavailable_reason()
    if reason is not None:
        return ImageCheck(name, f"{reason}: the image was not built")
    import docker  # type: ignore[import-untyped]

    service = workspace.services[name]
    dockerfile = service.path / "Dockerfile"
    if not dockerfile.is_file():
        raise ConfigError(f"{name} has no Dockerfile at {dockerfile}; nothing to build")
    image = analyse(dockerfile, service.path, workspace.root, migrations_dir=service.migrations_dir)
    client = docker.from_env()
    relative = dockerfile.relative_to(image.context)
    try:
        built, _ = client.images.build(
            path=str(image.context), dockerfile=str(relative), rm=True, tag=f"migratekit-verify-{name}:latest"
        )
    except (docker.errors.BuildError, docker.errors.APIError) as exc:
        # A failed build is this check's finding (exit 1), said as docker said it, with the command that repeats it
        where = [Path(os.path.relpath(p, workspace.root)).as_posix() for p in (dockerfile, image.context)]
        command = f"docker build -f {where[0]} {where[1]}"
        return ImageCheck(name, None, (f"the image did not build: {_build_failure(exc)} (to see it: {command})",))
    expected = {m.filename: m.data for m in service.load_migrations()}
    problems: list[str] = []
    if not image.final.carriers:
        problems.append("the Dockerfile's final stage copies no migrations (MK403)")
    container = client.containers.create(built.id)
    try:
        for carrier in sorted(image.final.carriers):
            stream, _ = container.get_archive(carrier)
            with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
                found = {
                    Path(m.name).name: archive.extractfile(m).read()  # type: ignore[union-attr]
                    for m in archive.getmembers()
                    if m.isfile() and m.name.endswith(".sql")
                }
            for filename, data in sorted(expected.items()):
                if filename not in found:
                    problems.append(f"{carrier}/{filename} is missing from the image")
                elif found[filename] != data:
                    problems.append(f"{carrier}/{filename} differs from the repository's file")
            problems += [
                f"{carrier}/{f} is in the image but not in the repository" for f in sorted(set(found) - set(expected))
            ]
    finally:
        container.remove(force=True)
    return ImageCheck(name, None, tuple(problems))


def _build_failure(exc: Exception) -> str:
    """The failing step and docker's error from a BuildError's log (the exception's text alone omits the step)."""
    message = redact(str(getattr(exc, "msg", None) or getattr(exc, "explanation", None) or exc)).strip()
    steps = [
        str(entry.get("stream", "")).strip()
        for entry in getattr(exc, "build_log", ()) or ()
        if isinstance(entry, dict) and str(entry.get("stream", "")).lstrip().startswith("Step ")
    ]
    return f"{steps[-1]}: {message}" if steps else message
