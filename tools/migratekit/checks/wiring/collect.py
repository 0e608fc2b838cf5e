"""One service's wiring as data: its sources, image, programs, and every route by which its migrations run.

The MK4xx rules (checks.rules.mk4_wiring) judge a Wiring; collecting it reads the service's files once,
with the parsers made for each (tree-sitter, dockerfile-parse, YAML), and the repository-level files once
for all services (deploy.scan).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from migratekit.checks import cache
from migratekit.checks.wiring import deploy, routes
from migratekit.checks.wiring.routes import Route, Switch
from migratekit.checks.wiring.sources import (
    RECORDS_HISTORY,
    SOURCE_SUFFIXES,
    Call,
    Program,
    Span,
    blanked,
    read_source,
    service_files,
)
from migratekit.checks.wiring.startup import Tree, applies, follow, load_scripts
from migratekit.model.dockerfile import Image, analyse
from migratekit.model.workspace import Service, relative

OWN_RUNNER = RECORDS_HISTORY  # a hand-written runner: it records each file in a history table
SHELL_SUFFIXES = (".sh", ".bash")


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
    programs: list[Program] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)
    listen_first: list[Call] = field(default_factory=list)
    jobs: list[deploy.Job] = field(default_factory=list)
    calls_runner: bool = False  # some code calls a migration runner, whether or not a start reaches it
    built_in: int | None = None  # the Dockerfile line of a RUN that applies the migrations while the image builds
    switches: list[Switch] = field(default_factory=list)  # settings that can turn a runner off (MK408)

    def rel(self, path: Path) -> str:
        return relative(self.root, path)

    def own_runner(self) -> SourceFile | None:
        return next((s for s in self.sources if OWN_RUNNER.search(s.text)), None)

    def compiled_in(self) -> bool:
        return any(p.embeds_migrations for p in self.programs)

    def ordered(self) -> list[Route]:
        return [r for r in self.routes if r.ordered]

    def has_runner(self) -> bool:
        return bool(self.routes) or self.calls_runner or self.own_runner() is not None


def collect(service: Service, root: Path, repo: deploy.Repository | None = None, use_cache: bool = False) -> Wiring:
    """`use_cache`: each source file's reading from .migratekit/cache when its name and text are as it was."""
    files = sorted(service_files(service.path))
    texts = {p: p.read_text(encoding="utf-8", errors="replace") for p in files if p.suffix in SOURCE_SUFFIXES}
    cached = use_cache and bool(texts)  # a service of SQL alone has nothing to keep
    read = _readings(service, root, texts) if cached else {p: read_source(p, text) for p, text in texts.items()}
    programs = [program for program, _ in read.values() if program is not None]
    sources = [SourceFile(path, blanked(texts[path], comments)) for path, (_, comments) in read.items()]  # no comments
    package = service.path / "package.json"
    scripts = load_scripts(package) if package.is_file() else {}
    tree = Tree(
        service.path, scripts, {p.path: p for p in programs}, tuple(files), migrations_at=service.migrations_dir
    )
    tree = routes.name_sets(programs, tree)
    repo = repo or deploy.scan(root)
    builds = deploy.builds(service.name, service.path, repo, tree.files)
    image = None
    if builds:
        first = builds[0]
        own = first.context == service.path and not first.args and first.target is None
        image = analyse(first.dockerfile, service.path, root, None if own else first, service.migrations_dir)
    found, listen_first = routes.in_process(programs, tree)
    shell_steps = {p: follow(texts[p], tree, p) for p in texts if p.suffix in SHELL_SUFFIXES}  # followed once
    starts = [(follow(text, tree, None, line or 1), where, line) for text, where, line in _starts(image, tree)]
    for steps, where, line in starts + [(steps, path, 1) for path, steps in shell_steps.items()]:
        route = routes.from_steps(steps, where, line)
        if route is not None:
            found.append(route)
    jobs = deploy.jobs(service.name, tree, repo)
    found += routes.from_jobs(jobs)
    spring, switches = routes.spring_boot(service.path)
    found += spring
    if not any(r.ordered for r in found):
        found += routes.unordered(programs, tree, shell_steps)
    found = list(dict.fromkeys(found))  # a script the image starts is also met as a script of its own
    calls_runner = any(applies(c, tree) for p in programs for c in p.calls)
    built_in = routes.at_build(image.runs if image else (), tree)
    return Wiring(service, root, sources, image, programs, found, listen_first, jobs, calls_runner, built_in, switches)


def _readings(
    service: Service, root: Path, texts: dict[Path, str]
) -> dict[Path, tuple[Program | None, tuple[Span, ...]]]:
    """Each source's reading, from the cache where the file's name and text are the ones it was read from: the
    parse and walk of a large TypeScript service's files were most of a warm audit."""
    known = cache.readings(root, service.path)
    kept: dict[str, Any] = {}
    read: dict[Path, tuple[Program | None, tuple[Span, ...]]] = {}
    untrusted = False  # an entry under a file's key that is not as this version writes it: rewritten
    for path, text in texts.items():
        key = cache.reading_key(path, text)
        hit = known.get(key)
        reading = None if hit is None else _kept_reading(path, hit)
        if reading is None:
            untrusted = untrusted or key in known  # (an entry, even null, that cannot be read: rewritten)
            reading = read_source(path, text)
            hit = [None if reading[0] is None else reading[0].as_json(), reading[1]]
        read[path], kept[key] = reading, hit
    if untrusted or kept.keys() != known.keys():
        cache.store_readings(root, service.path, kept)
    return read


def _kept_reading(path: Path, hit: Any) -> tuple[Program | None, tuple[Span, ...]] | None:
    """A cache entry's reading of the file at `path`, or None when it is not as this version writes it."""
    try:
        program = None if hit[0] is None else Program.from_json(path, hit[0])
        return program, tuple((int(start), int(end)) for start, end in hit[1])
    except (TypeError, KeyError, ValueError, IndexError):
        return None


def _starts(image: Image | None, tree: Tree) -> list[tuple[str, Path, int | None]]:
    """The commands a service starts with: its image's, `npm start`, a Procfile's `web:`."""
    starts: list[tuple[str, Path, int | None]] = []
    if image is not None and image.final.start:
        starts.append((image.final.start, image.dockerfile, image.final.command_line))
    if "start" in tree.scripts:
        starts.append(("npm start", tree.directory / "package.json", None))
    starts += [
        (command, path, number) for path, number, kind, command in deploy.procfile(tree.directory) if kind == "web"
    ]
    return starts
