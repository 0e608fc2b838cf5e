"""The ways one service's migrations reach its database, and whether each runs before the server serves.

A route is an in-process call before the server listens, a start command or entrypoint script
that migrates and then starts the server, an init container or hooked Job, a compose service
the server waits for, a release phase; or, unordered, a separate program, script or job that
nothing visibly runs first. The wiring rules (MK4xx) are judgements over these routes.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from migratekit.checks.wiring.deploy import TEMPLATED, Job
from migratekit.checks.wiring.sources import Call, Program
from migratekit.checks.wiring.startup import Step, Tree, applies, flow, listens, migrates_in
from migratekit.model.discovery import SPRING_RESOURCES, spring_file_settings, spring_settings


@dataclass(frozen=True)
class Route:
    style: str  # "in-process", "start command", "entrypoint script", "package script", "init container", ...
    path: Path | None
    line: int | None
    ordered: bool  # it runs, and finishes, before the server serves
    stops: bool | None  # a failed migration stops the start (None: cannot be told)
    same_image: bool  # it runs from the service's own image, which must then carry the files
    name: str = ""


def name_sets(programs: list[Program], tree: Tree) -> Tree:
    """The service's functions that migrate, and those that serve, through any depth of calls."""
    defined = {name for p in programs for name in p.defines}
    by_scope: dict[str, list[Call]] = defaultdict(list)
    for program in programs:
        for call in program.calls:
            if call.scope:
                by_scope[call.scope].append(call)
    tree.scopes = dict(by_scope)
    # What each function does itself, and the names it calls: a round then asks only which of those names are
    # known to migrate or serve so far (applies() and listens() of every call, every round, were most of it).
    migrates_itself = {s for s in defined if any(applies(c, tree, False) and c.scope != c.name for c in by_scope[s])}
    serves_itself = {s for s in defined if any(listens(c.callee, tree, False) for c in by_scope[s])}
    calls_to = {s: {c.name for c in by_scope[s] if c.scope != c.name} for s in defined}
    listens_to = {s: {c.name for c in by_scope[s]} for s in defined}
    for _ in range(8):  # grows one call level a round; a start path deeper than 8 would be unusual
        migrating = frozenset(s for s in defined if s in migrates_itself or not calls_to[s].isdisjoint(tree.migrating))
        listening = frozenset(s for s in defined if s in serves_itself or not listens_to[s].isdisjoint(tree.listening))
        if (migrating, listening) == (tree.migrating, tree.listening):
            break
        tree.migrating, tree.listening = migrating, listening
    return tree


def in_process(programs: list[Program], tree: Tree) -> tuple[list[Route], list[Call]]:
    """Scopes that migrate before they serve (routes), and listening calls that come first (MK406)."""
    routes: list[Route] = []
    listen_first: list[Call] = []
    for program in programs:
        if program.language == "text" and program.embeds_migrations:
            # Rust's sqlx::migrate!(...).run(..) and diesel's embed_migrations!: not parsed, taken as run at start
            routes.append(Route("compiled-in", program.path, None, True, None, True))
            continue
        scopes: dict[str, list[Call]] = defaultdict(list)
        for call in program.calls:
            scopes[call.scope].append(call)
        for calls in scopes.values():
            migrate = next((c for c in calls if applies(c, tree)), None)
            listen = next((c for c in calls if listens(c.callee, tree)), None)
            if migrate is None or listen is None or migrate is listen:
                continue
            if calls.index(migrate) < calls.index(listen):
                routes.append(Route("in-process", program.path, migrate.line, True, migrate.stops, True))
            else:
                listen_first.append(listen)
    return routes, listen_first


def from_steps(steps: list[Step], where: Path, line: int | None) -> Route | None:
    """A start that migrates before it serves is a route; one that serves first, or never serves, is not."""
    kinds = [s.kind for s in steps]
    if "migrate" not in kinds or "serve" not in kinds[kinds.index("migrate") :]:
        return None
    if kinds.index("migrate") > (kinds.index("serve") if "serve" in kinds else len(kinds)):
        return None
    step = steps[kinds.index("migrate")]
    path = step.path or where
    if path.suffix in (".sh", ".bash"):
        style = "entrypoint script"
    else:
        style = "package script" if path.name == "package.json" else "start command"
    return Route(style, path, step.line if step.path else line, True, step.stops, True, step.what)


def unordered(programs: list[Program], tree: Tree, scripts: dict[Path, list[Step]]) -> list[Route]:
    """Programs, package scripts and shell scripts that migrate but are no part of a start."""
    found = []
    for program in programs:
        if program.entry is not None and flow(program, tree) == ["migrate"]:
            call = next(c for c in program.calls if c.scope == program.entry and applies(c, tree))
            found.append(Route("separate program", program.path, call.line, False, call.stops, False))
    for name, command in sorted(tree.scripts.items()):
        if migrates_in(command, tree, tree.directory / "package.json"):
            found.append(Route("package script", tree.directory / "package.json", None, False, None, False, name))
    for script, steps in scripts.items():
        if any(s.kind == "migrate" for s in steps):
            found.append(Route("script", script, None, False, None, False))
    return found


BUILD_FILES = ("pom.xml", "build.gradle.kts", "build.gradle")  # Maven's and Gradle's
# the dependency that makes Spring Boot run the tool at start-up (before its web server starts), by tool
SPRING_TOOLS = {"flyway": re.compile(r"org\.flywaydb|flyway-core"), "liquibase": re.compile(r"liquibase-core")}
SPRING_BOOT = re.compile(r"spring-boot|org\.springframework\.boot")


@dataclass(frozen=True)
class Switch:
    """A setting that can keep a runner from running: where it is, and what it says."""

    path: Path
    line: int | None
    text: str


def spring_boot(directory: Path) -> tuple[list[Route], list[Switch]]:
    """Spring Boot's Flyway or Liquibase: with the tool's dependency in a Spring Boot build (pom.xml,
    build.gradle(.kts)), Spring Boot applies the migrations on the classpath while the application starts, before
    its server listens, and a failure stops the start. `spring.flyway.enabled`/`spring.liquibase.enabled` false in
    application.yml/.properties turns it off (then there is no route); set in a profile's file, or from a
    placeholder, it is a switch that can skip them (MK408)."""
    build = next((directory / n for n in BUILD_FILES if (directory / n).is_file()), None)
    if build is None:
        return [], []
    text = build.read_text(encoding="utf-8", errors="replace")
    if not SPRING_BOOT.search(text):
        return [], []
    routes: list[Route] = []
    switches: list[Switch] = []
    settings = spring_settings(directory)
    for tool, pattern in SPRING_TOOLS.items():
        found = pattern.search(text)
        if found is None:
            continue
        key = f"spring.{tool}.enabled"
        enabled = settings.get(key, "true").strip().lower()
        switches += _switches(directory, key)
        if enabled != "false":
            line = text.count("\n", 0, found.start()) + 1
            routes.append(Route("spring boot start-up", build, line, True, True, True, f"Spring Boot's {tool}"))
    return routes, switches


def _switches(directory: Path, key: str) -> list[Switch]:
    """Each application*.yml/.properties file that sets `key` to false or to a placeholder (${…}), at its line."""
    found = []
    parent, leaf = key.rsplit(".", 1)
    for path in sorted((directory / SPRING_RESOURCES).glob("application*")):
        value = spring_file_settings(path).get(key)
        if value is None or (value.strip().lower() != "false" and "${" not in value):
            continue
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        after = next((i for i, line in enumerate(lines) if parent.rsplit(".", 1)[-1] in line), 0)
        line = next((i + 1 for i in range(after, len(lines)) if leaf in lines[i]), None)
        found.append(Switch(path, line, f"{key}={value}"))
    return found


def from_jobs(jobs: list[Job]) -> list[Route]:
    """A job's route; an init container runs from the service's image unless it names another image (Atlas's own,
    arigaio/atlas, given the files by a volume: the service's image need not carry them, MK409 says the rest)."""
    return [Route(j.kind, j.path, j.line, j.ordered, None, _same_image(j), j.name) for j in jobs]


def _same_image(job: Job) -> bool:
    if job.kind != "init container":
        return False
    return not job.image or job.image in job.server_images or TEMPLATED in f"{job.image}{job.server_images}"


def at_build(runs: tuple[tuple[str, int], ...], tree: Tree) -> int | None:
    """The line of a Dockerfile RUN that applies the migrations while the image builds, if one does."""
    return next((line for run, line in runs if migrates_in(run, tree)), None)
