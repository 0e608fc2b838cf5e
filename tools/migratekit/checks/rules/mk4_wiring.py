"""MK4xx: does each service actually run its migrations, from its image, before it serves?

Real monorepos wire this in many ways; checks.wiring finds each way as data (in-process calls
read from parse trees, start commands and scripts followed step by step, compose files and
Kubernetes manifests parsed, gathered by wiring.collect), and the rules below judge those routes. Which styles are
recognised, and what each needs, is the table "Wiring styles" in docs/audit.md.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from functools import partial
from pathlib import Path

from migratekit.checks.rule import Scope
from migratekit.checks.rule import rule as declare_rule
from migratekit.checks.wiring import deploy
from migratekit.checks.wiring.collect import OWN_RUNNER, SHELL_SUFFIXES, Wiring
from migratekit.checks.wiring.routes import BUILD_FILES
from migratekit.checks.wiring.sources import Call
from migratekit.model.dockerfile import dockerignore_drops, jar_output
from migratekit.model.secrets import redact

SKIP_SWITCH = re.compile(  # an environment switch, off or on: SKIP_MIGRATIONS, MIGRATIONS_DISABLED, RUN_MIGRATIONS
    r"\b(?:SKIP|DISABLE|NO)_?MIGRAT\w*|\bMIGRATIONS?_(?:SKIP|DISABLED?)\b|\b(?:RUN|AUTO|APPLY|ENABLE)_MIGRAT\w*"
)
JS_SUFFIXES = (".ts", ".mts", ".cts", ".js", ".mjs", ".cjs")
DIRNAME_PATH = re.compile(r"path\.(?:join|resolve)\(\s*__dirname\s*,\s*['\"]([^'\"]+)['\"]")
ENV_PATH = re.compile(r"\b(MIGRATIONS?_(?:DIR|PATH|DIRECTORY))\b")
# drizzle's migrator: migrate(db, { migrationsFolder: "./drizzle" }), a path from the process's working directory
DRIZZLE_FOLDER = re.compile(r"\bmigrationsFolder\s*:\s*(['\"`])([^'\"`$]+)\1")


WiringHit = tuple[str | None, int | None, str | None]  # (path, line, message)


rule = partial(declare_rule, scope=Scope.WIRING)


@rule("MK401", "error", "add a runner (src/database/migrate.ts, migratekit.run_migrations, or an init container)")
def no_runner(w: Wiring) -> Iterable[WiringHit]:
    """No migration runner: nothing applies this service's migrations.

    The pattern's first rule: every service with a database applies its migrations itself. Go,
    TypeScript/JavaScript, Python and shell are parsed; Rust, Ruby, Java and Kotlin are not (only
    `sqlx::migrate!` and `embed_migrations!` outside tests count there, and Spring Boot's Flyway or
    Liquibase, a dependency of its build that it runs at start-up). A Dockerfile `RUN` that migrates is named:
    it runs once, at build time, against whatever database the build reaches.
    Bad: services/x/migrations/ and a server that never reads them
    Good: src/database/migrate.ts with runMigrations(db), called from src/index.ts
    """
    if not w.has_runner():
        yield _at_build(w) or (w.rel(w.service.path), None, f"{w.service.name} has migrations but nothing runs them")


def _at_build(w: Wiring) -> WiringHit | None:
    """The image's build applies the migrations: said where, in place of a vaguer finding."""
    if w.image is None or w.built_in is None:
        return None
    message = "the image build applies the migrations (RUN), against whatever database the build reaches; "
    return w.rel(w.image.dockerfile), w.built_in, message + "nothing runs them when the service starts"


@rule("MK402", "warning", "add a Dockerfile that copies migrations/ into the final image")
def no_dockerfile(w: Wiring) -> Iterable[WiringHit]:
    """The service has no Dockerfile.

    Without one the audit cannot tell whether the migrations ship with the code.
    Bad: services/x/ with no Dockerfile
    Good: services/x/Dockerfile with COPY migrations ./migrations in its final stage
    """
    buildpack = any((w.service.path / name).is_file() for name in ("Procfile", "app.json"))
    if w.image is None and not _elsewhere(w) and not buildpack:
        yield w.rel(w.service.path / "Dockerfile"), None, None


def _elsewhere(w: Wiring) -> bool:
    """The migrations run only from another image (a job, a separate program): the service's own image
    need not carry them."""
    return bool(w.routes) and not any(r.same_image for r in w.routes)


@rule("MK403", "error", "COPY migrations into the final stage (COPY --from=builder /app/migrations ./migrations)")
def image_lacks_migrations(w: Wiring) -> Iterable[WiringHit]:
    """The final image does not contain the migrations.

    The runner starts, finds no files, and the schema silently stays behind the code.
    Bad: FROM node:22-alpine / COPY --from=builder /app/dist ./dist   (and nothing else)
    Good: COPY --from=builder /app/migrations ./migrations
    """
    if w.image is not None and not w.image.final.carriers and not w.compiled_in() and not _elsewhere(w):
        yield w.rel(w.image.dockerfile), w.image.final.line, f"the final stage has no COPY of {_migrations_dir(w)}/"


def _migrations_dir(w: Wiring) -> str:
    """The service's migrations directory as its Dockerfile would name it (prisma/migrations, db/migrations)."""
    directory = w.service.migrations_dir
    return (
        directory.relative_to(w.service.path).as_posix() if directory.is_relative_to(w.service.path) else "migrations"
    )


@rule("MK404", "error", "remove the pattern from .dockerignore, or add !migrations after it")
def dockerignore_excludes(w: Wiring) -> Iterable[WiringHit]:
    """.dockerignore drops the migrations from the build context.

    COPY migrations then copies nothing, or fails.
    Bad: *.sql   (in .dockerignore)
    Good: *.sql and !migrations/*.sql
    """
    if w.image is None:
        return
    if not w.service.migrations_dir.is_relative_to(w.image.context):
        return  # outside the build context (migrations: ../../migrations/x): no COPY reaches them anyway
    relative = (w.service.migrations_dir / "001_init.sql").relative_to(w.image.context).as_posix()
    dropped = dockerignore_drops(w.image.context, relative)
    if dropped:
        path, line, pattern = dropped
        yield w.rel(path), line, f"'{pattern}' excludes {relative} from the build context"


@rule("MK405", "error", "make the path the runner reads and the Dockerfile's COPY destination the same")
def runtime_path(w: Wiring) -> Iterable[WiringHit]:
    """The runner reads its migrations from a path the image does not have.

    Bad: runner reads path.join(__dirname, '../migrations') = /app/dist/migrations; image has /app/migrations
    Good: runner reads path.join(__dirname, '../../migrations') from dist/database/migrate.js = /app/migrations
    """
    image = w.image
    if image is None or not image.final.carriers:
        return
    for source in w.sources:
        for match in ENV_PATH.finditer(source.text) if "MIGRATION" in source.text else ():  # asked first: cheaper
            value = image.final.env.get(match[1])
            if value and posixpath.normpath(value) not in image.final.carriers:
                yield (
                    w.rel(image.dockerfile),
                    None,
                    f"${match[1]}={value}, but the image has the migrations at "
                    f"{', '.join(sorted(image.final.carriers))}",
                )
                return
        drizzle = source.path.suffix in JS_SUFFIXES and "migrationsFolder" in source.text
        folder = DRIZZLE_FOLDER.search(source.text) if drizzle else None
        if folder is not None:
            reads = posixpath.normpath(posixpath.join(image.final.workdir, folder[2]))
            if reads not in image.final.carriers:
                carriers = ", ".join(sorted(image.final.carriers))
                message = f"drizzle's migrator reads {reads} in the image; the Dockerfile puts migrations at {carriers}"
                yield w.rel(source.path), source.line_of(folder.start()), message
            continue
        if source.path.suffix in (".ts", ".js") and OWN_RUNNER.search(source.text):
            found = DIRNAME_PATH.search(source.text)
            if found is None or not found[1].rstrip("/").endswith("migrations"):
                continue
            relative = source.path.parent.relative_to(w.service.path).as_posix()
            compiled = re.sub(r"^src(?=/|$)", "dist", relative) if source.path.suffix == ".ts" else relative
            reads = posixpath.normpath(posixpath.join(image.final.workdir, compiled, found[1]))
            if reads not in image.final.carriers:
                yield (
                    w.rel(source.path),
                    source.line_of(found.start()),
                    (
                        f"the runner reads {reads} in the image; the Dockerfile puts migrations at "
                        f"{', '.join(sorted(image.final.carriers))}"
                    ),
                )


@rule(
    "MK406", "error", "call the runner before the server listens (or migrate in the entrypoint, then exec the server)"
)
def migrate_before_listen(w: Wiring) -> Iterable[WiringHit]:
    """Startup does not run the migrations before the server listens.

    Requests then hit a schema older than the code. The order is read from parse trees of Go,
    TypeScript/JavaScript and Python (through the service's own functions) and from the start
    command followed through scripts and package.json; other languages are not parsed.
    Bad: await server.listen(...); await runMigrations(db);
    Good: await runMigrations(db); await server.listen(...);
    """
    if not w.has_runner() or w.ordered() or any(not r.ordered for r in w.routes):
        return  # MK401 says there is no runner; MK411 speaks of a runner that nothing orders
    for call in w.listen_first:
        yield w.rel(_path_of(w, call)), call.line, "the server listens without migrating first"
        return
    yield w.rel(w.service.path), None, "no startup path runs the migrations before serving"


def _path_of(w: Wiring, call: Call) -> Path:
    return next(p.path for p in w.programs if call in p.calls)


@rule("MK407", "error", "exit non-zero when migrations fail: process.exit(1) / sys.exit(1) / set -e")
def exits_on_failure(w: Wiring) -> Iterable[WiringHit]:
    """Startup carries on when the migrations fail.

    The seed's rule: if migrations fail, the application must not start.
    Bad: try { await runMigrations(db) } catch (e) { logger.warn(e) }  server.listen(...)
    Good: try { … } catch (e) { logger.error(e); process.exit(1); }
    """
    for route in w.ordered():
        if route.stops is not False or route.path is None:
            continue
        if route.style == "in-process":
            message = "a failed migration is caught and the server starts anyway"
        elif route.path.suffix in SHELL_SUFFIXES:
            message = "the script goes on after a failed migration (no set -e)"
        else:
            message = f"the start goes on after a failed migration ({redact(route.name)}): join the steps with &&"
        yield w.rel(route.path), route.line, message


@rule("MK408", "warning", "remove the switch; run migrations on every start (they are idempotent)")
def skip_switch(w: Wiring) -> Iterable[WiringHit]:
    """A switch that skips migrations at startup.

    Set once for a debugging session, it is forgotten, and the next deploy runs on an old schema.
    Bad: if (!process.env.SKIP_MIGRATIONS) await runMigrations(db);
    Good: await runMigrations(db);
    """
    for source in w.sources:
        match = SKIP_SWITCH.search(source.text) if "MIGRAT" in source.text else None  # each switch's word
        if match:
            yield w.rel(source.path), source.line_of(match.start()), f"{match[0]} can skip the migrations"
    for switch in w.switches:  # spring.flyway.enabled: false in a profile, or from a placeholder
        yield w.rel(switch.path), switch.line, f"{switch.text} can skip the migrations"
    for job in w.jobs:
        match = SKIP_SWITCH.search(job.command)
        if match:
            text = job.path.read_text(encoding="utf-8", errors="replace")
            line = text.count("\n", 0, text.find(match[0])) + 1 if match[0] in text else None
            yield w.rel(job.path), line, f"{match[0]} can skip the migrations ({job.kind} {job.name})"


@rule("MK409", "warning", "run the init container from the same image (and tag) as the service container")
def init_container_image(w: Wiring) -> Iterable[WiringHit]:
    """The migration init container runs another image than the service.

    Its migrations are then not the ones the service was built with.
    Bad: initContainers: [{image: org/auth-migrate:v2}]  containers: [{image: org/auth:v3}]
    Good: initContainers: [{image: org/auth:v3, command: [node, dist/migrate.js]}]
    """
    for job in w.jobs:
        templated = deploy.TEMPLATED in f"{job.image}{job.server_images}"  # Helm values decide: cannot tell
        if job.kind == "init container" and job.image not in job.server_images and not templated:
            images = ", ".join(sorted(job.server_images))
            yield w.rel(job.path), None, f"init container image {job.image} is not the service's: {images}"


@rule("MK410", "error", "copy only what the build context holds: fix the path, or build from the directory that has it")
def copy_source_missing(w: Wiring) -> Iterable[WiringHit]:
    """A COPY source that the build context does not hold.

    The image build stops at that line. A Dockerfile that copies files of the repository it was
    scaffolded in (a toolkit, a root README) cannot build in another one.
    Bad: COPY tools /opt/migratekit/tools   (no tools/ in the build context)
    Good: COPY src ./src
    """
    if w.image is None:
        return
    context = w.image.context
    for source, line in w.image.context_copies:
        pattern = posixpath.normpath(source).lstrip("/")
        if pattern in ("", ".") or next(iter(context.glob(pattern)), None) is not None:
            continue
        if jar_output(pattern) and any((w.service.path / n).is_file() for n in BUILD_FILES):
            continue  # the jar Maven or Gradle builds (in CI, before docker build), never committed
        where = w.rel(context) if context != w.root else "the repository root"
        yield w.rel(w.image.dockerfile), line, f"COPY {source}: nothing by that name in the build context ({where})"


@rule(
    "MK411",
    "warning",
    "order the job before the server: an init container, a pre-install/pre-upgrade hook, or "
    "depends_on with condition: service_completed_successfully",
)
def job_not_ordered(w: Wiring) -> Iterable[WiringHit]:
    """The migrations run in a separate program or job that nothing visibly runs before the server.

    The server can then start against the old schema, or the job is never run at all.
    Bad: a Kubernetes Job running migrate up, with no hook, beside the service's Deployment
    Good: the same Job with the annotation helm.sh/hook: pre-install,pre-upgrade
    """
    if w.ordered():
        return
    at_build = _at_build(w) if any(not r.ordered for r in w.routes) else None
    if at_build is not None:
        yield at_build
        return
    for route in w.routes:
        if not route.ordered and route.path is not None:
            if route.style == deploy.INITDB_MOUNT:
                message = (
                    f"compose service {route.name} mounts the migrations into {deploy.INITDB}: PostgreSQL runs "
                    "them once, on an empty data directory, and never the ones added later"
                )
            else:
                what = f"{route.style} {route.name}" if route.name else f"this {route.style}"
                message = f"{what} applies the migrations, but nothing runs it before the server"
            yield w.rel(route.path), route.line, message
            return
