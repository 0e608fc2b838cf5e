"""MK4xx: does each service actually run its migrations, from its image, before it serves?

Real monorepos wire this in several ways; each is recognised: an in-process call before the
server listens (the seed's way), an entrypoint script that migrates then execs the server, a
`migrate && start` command, a Kubernetes init container running the same image, or migrations
compiled into the binary (Go's embed, sqlx's migrate!). Source is scanned as text: these are
patterns across languages, not one language's syntax.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import yaml

from migratekit import findings
from migratekit.audit.dockerfile import Image, analyse, dockerignore_drops
from migratekit.findings import Finding, Scope, rules_for
from migratekit.workspace import Service, relative

SOURCE_SUFFIXES = {".ts", ".js", ".mjs", ".cjs", ".py", ".go", ".rs", ".sh", ".rb", ".java", ".kt"}
SKIP_DIRS = {"node_modules", "dist", "build", ".venv", "venv", "__pycache__", "target", ".git", "migrations"}
MAX_SOURCE_BYTES = 1_000_000

RUNNER_CALL = re.compile(
    r"\b(?:runMigrations|run_migrations|migrate_up|migrateUp|migrateLatest|applyMigrations|apply_migrations)\s*\("
    r"|\bmigratekit\s+migrate\b|-m\s+migratekit\s+migrate"
    r"|\bmigrate\.New\w*\s*\(|\bgoose\.Up\s*\(|\bsqlx::migrate!|\bembed_migrations!"
    r"|\.migrate\.latest\s*\(|\bflyway\b.*\bmigrate\b|\bdbmate\b.*\bup\b|\bnode-pg-migrate\b"
)
RUNNER_DEFINITION = re.compile(r"(?:function|def|func)\s+(?:runMigrations|run_migrations|applyMigrations)\b")
OWN_RUNNER = re.compile(r"INSERT\s+INTO\s+[\w.\"]*schema_migrations", re.IGNORECASE)
LISTEN = re.compile(
    r"\.listen\s*\(|\bserve_forever\s*\(|\buvicorn\.run\s*\(|\bapp\.run\s*\(|\bweb\.run_app\s*\("
    r"|\bListenAndServe\w*\s*\(|\bserve\s*\(\s*app|\bgunicorn\b|\bexec\s+\S+"
)
EXITS = re.compile(
    r"process\.exit\s*\(\s*[1-9]|process\.exitCode\s*=\s*[1-9]|sys\.exit\s*\(\s*(?:[1-9]|main\(|f?[\"'])"
    r"|return\s+[1-9]\b|\braise\b|\bthrow\b|os\.Exit\s*\(\s*[1-9]|log\.Fatal|panic\s*\(|SystemExit"
)
CATCHES = re.compile(r"\bcatch\s*[({]|\bexcept\b|\brecover\s*\(")
SKIP_SWITCH = re.compile(r"\b(?:SKIP|DISABLE|NO)_?MIGRAT\w*|\bMIGRATIONS?_(?:SKIP|DISABLED?)\b")
EMBEDDED = re.compile(r"//go:embed\s+\S*migrations|sqlx::migrate!|include_str!\([^)]*migrations|embed_migrations!")
DIRNAME_PATH = re.compile(r"path\.(?:join|resolve)\(\s*__dirname\s*,\s*['\"]([^'\"]+)['\"]")
ENV_PATH = re.compile(r"\b(MIGRATIONS?_(?:DIR|PATH|DIRECTORY))\b")


@dataclass
class SourceFile:
    path: Path
    text: str

    def line_of(self, offset: int) -> int:
        return self.text.count("\n", 0, offset) + 1


@dataclass
class Wiring:
    """What was found in one service, for the rules below."""

    service: Service
    root: Path
    sources: list[SourceFile]
    image: Image | None
    manifests: list[tuple[Path, dict]] = field(default_factory=list)

    def rel(self, path: Path) -> str:
        return relative(self.root, path)

    def runner_calls(self) -> Iterator[tuple[SourceFile, int]]:
        for source in self.sources:
            for match in RUNNER_CALL.finditer(source.text):
                line_start = source.text.rfind("\n", 0, match.start()) + 1
                if not RUNNER_DEFINITION.search(source.text[line_start : match.end()]):
                    yield source, match.start()

    def own_runner(self) -> SourceFile | None:
        return next((s for s in self.sources if OWN_RUNNER.search(s.text)), None)

    def embedded(self) -> bool:
        return any(EMBEDDED.search(s.text) for s in self.sources)

    def init_containers(self) -> Iterator[tuple[Path, dict, list[dict]]]:
        for path, doc in self.manifests:
            pod = doc.get("spec", {}).get("template", {}).get("spec", {}) if isinstance(doc.get("spec"), dict) else {}
            for init in pod.get("initContainers") or []:
                command = " ".join(str(x) for x in (init.get("command") or []) + (init.get("args") or []))
                if "migrat" in command:
                    yield path, init, pod.get("containers") or []


def collect(service: Service, root: Path) -> Wiring:
    sources = []
    manifests: list[tuple[Path, dict]] = []
    for path in sorted(_files(service.path)):
        if path.suffix in SOURCE_SUFFIXES or path.name in ("Procfile", "package.json"):
            sources.append(SourceFile(path, path.read_text(errors="replace")))
        elif path.suffix in (".yaml", ".yml"):
            try:
                manifests.extend(
                    (path, d)
                    for d in yaml.safe_load_all(path.read_text(errors="replace"))
                    if isinstance(d, dict) and "kind" in d
                )
            except yaml.YAMLError:
                continue
    dockerfile = service.path / "Dockerfile"
    image = analyse(dockerfile, service.path, root) if dockerfile.is_file() else None
    return Wiring(service, root, sources, image, manifests)


def _files(directory: Path) -> Iterator[Path]:
    for path in directory.iterdir():
        if path.is_dir() and not path.is_symlink():
            if path.name not in SKIP_DIRS and not path.name.startswith("."):
                yield from _files(path)
        elif path.is_file() and path.stat().st_size <= MAX_SOURCE_BYTES:
            yield path


WiringHit = tuple[str | None, int | None, str | None]  # (path, line, message)


rule = partial(findings.rule, scope=Scope.WIRING)


def _startup_styles(w: Wiring) -> list[str]:
    """Which of the recognised ways of migrating before serving this service uses."""
    styles = []
    for source, offset in w.runner_calls():
        listen = LISTEN.search(source.text, offset)
        if listen and source.path.suffix != ".sh":
            styles.append("in-process")
        elif source.path.suffix == ".sh" and re.search(r"\bexec\b", source.text[offset:]):
            styles.append("entrypoint")
    command = " ".join(w.image.final.command) if w.image else ""
    if RUNNER_CALL.search(command) or re.search(r"migrat\w*\s*&&", command):
        styles.append("command")
    if any(True for _ in w.init_containers()):
        styles.append("init-container")
    return styles


def _has_runner(w: Wiring) -> bool:
    return any(True for _ in w.runner_calls()) or w.own_runner() is not None or bool(_startup_styles(w))


@rule("MK401", "error", "add a runner (src/database/migrate.ts, migratekit.run_migrations, or an init container)")
def no_runner(w: Wiring) -> Iterable[WiringHit]:
    """No migration runner: nothing applies this service's migrations.

    The pattern's first rule: every service with a database applies its migrations itself.
    Bad: services/x/migrations/ and a server that never reads them
    Good: src/database/migrate.ts with runMigrations(db), called from src/index.ts
    """
    if not _has_runner(w):
        yield w.rel(w.service.path), None, f"{w.service.name} has migrations but nothing runs them"


@rule("MK402", "warning", "add a Dockerfile that copies migrations/ into the final image")
def no_dockerfile(w: Wiring) -> Iterable[WiringHit]:
    """The service has no Dockerfile.

    Without one the audit cannot tell whether the migrations ship with the code.
    Bad: services/x/ with no Dockerfile
    Good: services/x/Dockerfile with COPY migrations ./migrations in its final stage
    """
    if w.image is None:
        yield w.rel(w.service.path / "Dockerfile"), None, None


@rule("MK403", "error", "COPY migrations into the final stage (COPY --from=builder /app/migrations ./migrations)")
def image_lacks_migrations(w: Wiring) -> Iterable[WiringHit]:
    """The final image does not contain the migrations.

    The runner starts, finds no files, and the schema silently stays behind the code.
    Bad: FROM node:22-alpine / COPY --from=builder /app/dist ./dist   (and nothing else)
    Good: COPY --from=builder /app/migrations ./migrations
    """
    if w.image is not None and not w.image.final.carriers and not w.embedded():
        yield w.rel(w.image.dockerfile), w.image.final.line, "the final stage has no COPY of migrations/"


@rule("MK404", "error", "remove the pattern from .dockerignore, or add !migrations after it")
def dockerignore_excludes(w: Wiring) -> Iterable[WiringHit]:
    """.dockerignore drops the migrations from the build context.

    COPY migrations then copies nothing, or fails.
    Bad: *.sql   (in .dockerignore)
    Good: *.sql and !migrations/*.sql
    """
    if w.image is None:
        return
    relative = (w.service.path / "migrations" / "001_init.sql").relative_to(w.image.context).as_posix()
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
        for match in ENV_PATH.finditer(source.text):
            value = image.final.env.get(match[1])
            if value and posixpath.normpath(value) not in image.final.carriers:
                yield (
                    w.rel(image.dockerfile),
                    None,
                    f"${match[1]}={value}, but the image has the migrations at "
                    f"{', '.join(sorted(image.final.carriers))}",
                )
                return
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

    Requests then hit a schema older than the code.
    Bad: await server.listen(...); await runMigrations(db);
    Good: await runMigrations(db); await server.listen(...);
    """
    if not _has_runner(w):
        return  # MK401 already says there is no runner
    if _startup_styles(w):
        return
    for source in w.sources:
        listen = LISTEN.search(source.text)
        if listen and source.path.suffix != ".sh":
            yield w.rel(source.path), source.line_of(listen.start()), "the server listens without migrating first"
            return
    yield w.rel(w.service.path), None, "no startup path runs the migrations before serving"


@rule("MK407", "error", "exit non-zero when migrations fail: process.exit(1) / sys.exit(1) / set -e")
def exits_on_failure(w: Wiring) -> Iterable[WiringHit]:
    """Startup carries on when the migrations fail.

    The seed's rule: if migrations fail, the application must not start.
    Bad: try { await runMigrations(db) } catch (e) { logger.warn(e) }  server.listen(...)
    Good: try { … } catch (e) { logger.error(e); process.exit(1); }
    """
    for source, offset in w.runner_calls():
        if source.path.suffix == ".sh":
            if not re.search(r"^\s*set\s+-\w*e", source.text, re.MULTILINE) and not re.search(
                r"migrat\w*[^\n]*&&", source.text
            ):
                yield (
                    w.rel(source.path),
                    source.line_of(offset),
                    "the script goes on after a failed migration (no set -e)",
                )
            continue
        after = source.text[offset:]
        if LISTEN.search(after) and CATCHES.search(after) and not EXITS.search(after):
            yield (
                w.rel(source.path),
                source.line_of(offset),
                "a failed migration is caught and the server starts anyway",
            )


@rule("MK408", "warning", "remove the switch; run migrations on every start (they are idempotent)")
def skip_switch(w: Wiring) -> Iterable[WiringHit]:
    """A switch that skips migrations at startup.

    Set once for a debugging session, it is forgotten, and the next deploy runs on an old schema.
    Bad: if (!process.env.SKIP_MIGRATIONS) await runMigrations(db);
    Good: await runMigrations(db);
    """
    for source in w.sources:
        match = SKIP_SWITCH.search(source.text)
        if match:
            yield w.rel(source.path), source.line_of(match.start()), f"{match[0]} can skip the migrations"


@rule("MK409", "warning", "run the init container from the same image (and tag) as the service container")
def init_container_image(w: Wiring) -> Iterable[WiringHit]:
    """The migration init container runs another image than the service.

    Its migrations are then not the ones the service was built with.
    Bad: initContainers: [{image: org/auth-migrate:v2}]  containers: [{image: org/auth:v3}]
    Good: initContainers: [{image: org/auth:v3, command: [node, dist/migrate.js]}]
    """
    for path, init, containers in w.init_containers():
        images = {c.get("image") for c in containers}
        if init.get("image") not in images:
            yield (
                w.rel(path),
                None,
                f"init container image {init.get('image')} is not the service's: {', '.join(sorted(map(str, images)))}",
            )


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
        where = w.rel(context) if context != w.root else "the repository root"
        yield w.rel(w.image.dockerfile), line, f"COPY {source}: nothing by that name in the build context ({where})"


def audit_wiring(service: Service, root: Path) -> list[Finding]:
    """Every MK4xx finding for one service."""
    wiring = collect(service, root)
    return [r.finding(service.name, *hit) for r in rules_for(Scope.WIRING) for hit in r.check(wiring)]
