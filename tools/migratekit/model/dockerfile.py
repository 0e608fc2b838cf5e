"""Where a Dockerfile puts a service's migrations in its final image.

The Dockerfile is parsed with dockerfile-parse; COPY/ADD instructions are followed through
multi-stage builds (`--from=stage`), so `COPY --from=builder /app/migrations ./migrations`
counts only if the builder stage really had them.
"""

from __future__ import annotations

import fnmatch
import io
import json
import posixpath
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from dockerfile_parse import DockerfileParser
from dockerfile_parse.util import WordSplitter

from migratekit.model.settings import MIGRATIONS
from migratekit.model.workspace import relative


@dataclass
class Stage:
    name: str | None
    line: int
    image: str = ""  # what FROM names: a base image or an earlier stage
    workdir: str = "/"
    carriers: set[str] = field(default_factory=set)  # image paths holding the migrations
    env: dict[str, str] = field(default_factory=dict)
    command_line: int | None = None
    entrypoint: str = ""  # the ENTRYPOINT and CMD values as written
    cmd: str = ""

    @property
    def start(self) -> str:
        """The command the container starts with, as one shell command line (a shell-form ENTRYPOINT ignores CMD)."""
        if self.entrypoint and not self.entrypoint.startswith("["):
            return self.entrypoint
        return " ".join(_shell(part) for part in (self.entrypoint, self.cmd) if part)


@dataclass(frozen=True)
class Build:
    """How an image is built: a Dockerfile, its context, build args and target (compose's `build:`)."""

    dockerfile: Path
    context: Path
    args: tuple[tuple[str, str], ...] = ()
    target: str | None = None


@dataclass(frozen=True)
class Image:
    """What the final stage holds, and where in the repository its build context is."""

    dockerfile: Path
    context: Path
    final: Stage
    copies_service_paths: bool  # the Dockerfile names files by their path from the repository root
    context_copies: tuple[tuple[str, int], ...] = ()  # (source, line) of each COPY/ADD from the build context
    runs: tuple[tuple[str, int], ...] = ()  # (shell command, line) of each RUN: what the build itself executes


def _args(value: str) -> list[str]:
    value = value.strip()
    if value.startswith("["):
        try:
            return [str(v) for v in json.loads(value)]
        except ValueError:
            pass
    try:
        return shlex.split(value)
    except ValueError:
        return value.split()


def _norm(path: str) -> str:
    """A context path as written in a COPY: `./migrations/` -> `migrations`, `.` -> ``."""
    path = posixpath.normpath(path).lstrip("/")
    return "" if path == "." else path


def parse(dockerfile: Path, build_args: dict[str, str] | None = None) -> DockerfileParser:
    """dockerfile-parse over any file name (its `path=` wants a directory or a file named `Dockerfile`:
    `Dockerfile.service` and `api.Dockerfile` are given as content)."""
    return DockerfileParser(fileobj=io.BytesIO(dockerfile.read_bytes()), build_args=build_args)


def _shell(value: str) -> str:
    """An ENTRYPOINT or CMD as the shell would see it: exec form joined and quoted, shell form as written."""
    return shlex.join(_args(value)) if value.strip().startswith("[") else value.strip()


def analyse(
    dockerfile: Path, service_dir: Path, root: Path, build: Build | None = None, migrations_dir: Path | None = None
) -> Image:
    """Follow every COPY of the migrations through the stages of `dockerfile`."""
    parser = parse(dockerfile, dict(build.args) if build else None)
    instructions = [dict(i) for i in parser.structure]
    for ins, context_of in zip(instructions, parser.context_structure, strict=False):
        if ins["instruction"] in ("COPY", "ADD", "WORKDIR", "ENV") and not ins["value"].lstrip().startswith("["):
            words = WordSplitter(ins["value"], args=context_of.args, envs=context_of.envs).split(dequote=False)
            ins["value"] = " ".join(words)  # ${SERVICE} and $HOME replaced by their build-time values
    service_rel = service_dir.relative_to(root).as_posix()
    # Build context: the repository root when the Dockerfile names paths like services/<name>/...
    copies_service_paths = any(i["instruction"] in ("COPY", "ADD") and service_rel in i["value"] for i in instructions)
    context = build.context if build else root if copies_service_paths else service_dir
    migrations_rel = relative(context, migrations_dir or service_dir / MIGRATIONS)
    stages: list[Stage] = []
    context_copies: list[tuple[str, int]] = []
    runs: list[tuple[str, int]] = []
    for ins in instructions:
        kind, value, line = ins["instruction"], ins["value"], ins["startline"] + 1
        if kind == "FROM":
            words = [w for w in value.split() if not w.startswith("--")]  # --platform=…
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            base = next((s for s in stages if s.name == words[0]), None)
            stage = Stage(name=name, line=line, image=words[0] if words else "")
            if base is not None:  # FROM an earlier stage inherits its files, base image and command
                stage.workdir, stage.carriers, stage.env = base.workdir, set(base.carriers), dict(base.env)
                stage.image, stage.command_line = base.image, base.command_line
                stage.entrypoint, stage.cmd = base.entrypoint, base.cmd
            stages.append(stage)
            continue
        if not stages:
            continue
        stage = stages[-1]
        if kind == "WORKDIR":
            stage.workdir = posixpath.normpath(posixpath.join(stage.workdir, value.strip()))
        elif kind == "ENV":
            stage.env.update(_env(value))
        elif kind in ("ENTRYPOINT", "CMD"):
            stage.command_line = line
            if kind == "ENTRYPOINT":
                stage.entrypoint, stage.cmd = value.strip(), ""  # a new ENTRYPOINT resets CMD, as in Docker
            else:
                stage.cmd = value.strip()
        elif kind in ("COPY", "ADD"):
            words = _args(value)
            _copy(stage, stages, words, migrations_rel)
            context_copies += [(source, line) for source in _context_sources(words)]
        elif kind == "RUN":
            runs.append((_shell(value), line))
            if JAR_BUILD.search(value):
                _jar_carriers(stage)
    chosen = [s for s in stages if build is not None and build.target and s.name == build.target]
    final = chosen[0] if chosen else stages[-1] if stages else Stage(None, 1)
    return Image(dockerfile, context, final, copies_service_paths, tuple(context_copies), tuple(runs))


def _env(value: str) -> dict[str, str]:
    """ENV KEY=VALUE ... or the older ENV KEY VALUE."""
    pairs = dict(word.partition("=")[::2] for word in _args(value) if "=" in word)
    if "=" not in value and len(value.split(None, 1)) == 2:
        key, found = value.split(None, 1)
        pairs[key] = found.strip()
    return pairs


def _context_sources(words: list[str]) -> list[str]:
    """The sources a COPY/ADD takes from the build context (not another stage, a URL, a variable or a heredoc)."""
    if any(w.startswith("--from=") for w in words):
        return []
    paths = [w for w in words if not w.startswith("--")]
    return [p for p in paths[:-1] if "://" not in p and "$" not in p and not p.startswith("<<")]


JAR_OUTPUT = re.compile(r"(?:^|/)(?:target|build/libs)/[^/]*\.jar$|(?:^|/)(?:target|build/libs)/?$")  # Maven, Gradle
JAR_BUILD = re.compile(r"\b(?:mvn|mvnw|gradle|gradlew)\b[^|;&]*\b(?:package|install|verify|bootJar|build|assemble)\b")
CLASSPATH = "src/main/resources/"  # what Maven and Gradle put into the jar


def jar_output(path: str) -> bool:
    """A path Maven (target/*.jar) or Gradle (build/libs/*.jar) builds a jar to."""
    return JAR_OUTPUT.search(path.rstrip("/") + ("/" if path.endswith("/") else "")) is not None


def _jar_carriers(stage: Stage) -> None:
    """After a RUN that builds a jar (mvn package, gradle bootJar): the jar of each module whose resources hold the
    migrations carries them (target/app.jar and build/libs/app.jar stand for whatever name the build gives it)."""
    for carrier in list(stage.carriers):
        if CLASSPATH in carrier + "/":
            module = carrier[: (carrier + "/").index(CLASSPATH)].rstrip("/") or "/"
            stage.carriers.update(posixpath.join(module, out) for out in ("target/app.jar", "build/libs/app.jar"))


def _copy(stage: Stage, stages: list[Stage], words: list[str], migrations_rel: str) -> None:
    flags = [w for w in words if w.startswith("--")]
    paths = [w for w in words if not w.startswith("--")]
    if len(paths) < 2:
        return
    *sources, dest = paths
    dest_abs = posixpath.normpath(posixpath.join(stage.workdir, dest))
    origin = next((f.split("=", 1)[1] for f in flags if f.startswith("--from=")), None)
    for source in sources:
        if origin is not None:
            earlier = next((s for s in stages if s.name == origin or str(stages.index(s)) == origin), None)
            if earlier is None:
                continue  # an external image: nothing of ours
            src = posixpath.normpath(source if source.startswith("/") else posixpath.join(earlier.workdir, source))
            for carrier in earlier.carriers:
                if carrier == src or ("*" in src and fnmatch.fnmatch(carrier, src)):
                    stage.carriers.add(dest_abs)  # a wildcard copies each match's contents into dest
                elif carrier.startswith(src.rstrip("/") + "/"):
                    stage.carriers.add(posixpath.join(dest_abs, carrier[len(src.rstrip("/")) + 1 :]))
            continue
        src = _norm(source).rstrip("/")
        if jar_output(source) and CLASSPATH in migrations_rel + "/":
            module = migrations_rel[: (migrations_rel + "/").index(CLASSPATH)]
            if src.startswith(module) or not module:
                stage.carriers.add(dest_abs)  # a jar the build made before docker build: its classpath has them
            continue
        if src == migrations_rel or ("*" in src and fnmatch.fnmatch(migrations_rel, src)):
            stage.carriers.add(dest_abs)  # the folder's files land in dest (each match's, for a wildcard)
        elif "*" in src and fnmatch.fnmatch(migrations_rel + "/001_init.sql", src):
            stage.carriers.add(dest_abs)
        elif src in ("", "*") or migrations_rel.startswith(src + "/"):
            below = migrations_rel if src in ("", "*") else migrations_rel[len(src) + 1 :]
            stage.carriers.add(posixpath.join(dest_abs, below))


def dockerignore_drops(context: Path, relative: str) -> tuple[Path, int, str] | None:
    """The .dockerignore line that excludes `relative` (a path in the context), if one does."""
    ignore = context / ".dockerignore"
    if not ignore.is_file():
        return None
    verdict: tuple[Path, int, str] | None = None
    parts = relative.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for number, raw in enumerate(ignore.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = _norm(pattern.lstrip("!").rstrip("/"))
        regex_pattern = pattern.replace("**/", "*").replace("/**", "/*")
        if any(fnmatch.fnmatchcase(c, regex_pattern) for c in candidates):
            verdict = None if negate else (ignore, number, raw.strip())
    return verdict
