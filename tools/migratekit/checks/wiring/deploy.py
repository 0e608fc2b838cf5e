"""How a service is built and deployed, where that is not its own Dockerfile.

Compose files, Kubernetes manifests and Helm templates, a Procfile, and Dockerfiles shared by many services.

Every file is parsed (YAML with PyYAML, after Helm's `{{ }}` directives are blanked out;
Dockerfiles with dockerfile-parse). A migration job counts as run before the server only when
something says so: an init container, a Helm pre-install/pre-upgrade hook, an Argo CD PreSync
hook, compose's `depends_on: {condition: service_completed_successfully}`, a Procfile's
`release:` phase, or fly.toml's `release_command`.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from typing import TypeAlias

import yaml

from migratekit.checks.wiring.makefile import makefile_in, recipes
from migratekit.checks.wiring.startup import Tree, applies_migrations, follow
from migratekit.model.dockerfile import Build, analyse, parse

COMPOSE = re.compile(r"^(docker-)?compose([.-][\w.-]+)?\.ya?ml$")
DEPLOY_DIRS = (
    *("deploy", "deployment", "deployments", "k8s", "kubernetes", "manifests", "charts", "helm"),
    *("infra", "infrastructure"),
)
NAME_SUFFIXES = ("service", "svc")  # catalog-service, catalog_svc: the service catalog, as deploy files often say
DOCKER_DIRS = ("", "docker", "build", "deploy")
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob", "Pod"}
HELM_DIRECTIVE = re.compile(r"\{\{.*?\}\}")
TEMPLATED = "__helm__"  # what a `{{ }}` becomes: a value only a rendering would know
HELM_VALUE = re.compile(r"\{\{-?\s*\.Values\.([\w.]+)\s*(?:\|\s*quote\s*)?-?\}\}")
INITDB = "/docker-entrypoint-initdb.d"
INITDB_MOUNT = "docker-entrypoint-initdb.d mount"
ATLAS_MIGRATION, ATLAS_OPERATOR = "AtlasMigration", "db.atlasgo.io/"  # the Atlas Kubernetes operator's resource
PRE_HOOKS = re.compile(r"pre-install|pre-upgrade|PreSync")
MAX_BYTES = 1_000_000


Others: TypeAlias = "OtherNames | tuple[str, ...]"  # every other service's names: asked by name, or listed
Named = tuple[tuple[str, ...], Others]  # a service's names, and every other service's


@dataclass(frozen=True)
class Job:
    """A process other than the server that applies the migrations."""

    kind: str  # "init container", "Kubernetes Job", "compose service", "release phase"
    name: str
    path: Path
    ordered: bool  # something visibly runs it to completion before the server starts
    image: str | None = None
    server_images: tuple[str, ...] = ()  # an init container's pod: the images of its other containers
    line: int | None = None
    command: str = ""  # what it runs, as shell


def _yaml_documents(path: Path) -> tuple[dict, ...]:
    try:
        info = path.stat()
    except OSError:
        return ()
    values = _chart_values_file(path)
    try:
        stamp = values.stat().st_mtime_ns if values is not None else None
    except OSError:
        values, stamp = None, None
    return _parsed(path, info.st_size, info.st_mtime_ns, values, stamp)


def _chart_values_file(path: Path) -> Path | None:
    """A Helm template's chart's values.yaml: the one beside the nearest Chart.yaml above the template."""
    for directory in list(path.parents)[:4]:
        if (directory / "Chart.yaml").is_file():
            values = directory / "values.yaml"
            return values if values.is_file() else None
    return None


@cache
def _parsed(path: Path, size: int, mtime_ns: int, values: Path | None, values_mtime: int | None) -> tuple[dict, ...]:
    """One YAML file's documents, parsed once per content (an audit of 300 services reads a shared
    compose file once, and an edited file is read again). In a Helm template, `{{ .Values.image.repository }}`
    is its chart's default value (what names the service's image), any other directive a blank."""
    try:
        if size > MAX_BYTES:
            return ()
        text = path.read_text(encoding="utf-8", errors="replace")
        if "{{" in text:  # a Helm template: drop directive-only lines, blank the inline ones
            defaults = _values(values) if values is not None else {}
            text = "\n".join(
                HELM_DIRECTIVE.sub(lambda directive: _value_of(directive[0], defaults), line)
                for line in text.splitlines()
                if not re.fullmatch(r"\s*(\{\{.*?\}\}\s*)+", line)
            )
        return tuple(d for d in yaml.safe_load_all(text) if isinstance(d, dict))
    except (yaml.YAMLError, OSError, UnicodeError):
        return ()


def _values(path: Path) -> dict:
    try:
        if path.stat().st_size > MAX_BYTES:
            return {}
        loaded = yaml.safe_load(path.read_text(encoding="utf-8", errors="replace"))
    except (yaml.YAMLError, OSError, UnicodeError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _value_of(directive: str, values: dict) -> str:
    """`{{ .Values.a.b }}` (or `| quote`d) as values.yaml's a.b when that is a plain word, else TEMPLATED."""
    match = HELM_VALUE.fullmatch(directive)
    value: object = values
    for key in match[1].split(".") if match else ():
        value = value.get(key) if isinstance(value, dict) else None
    if match and isinstance(value, (str, int, float)) and not isinstance(value, bool):
        text = str(value)
        if re.fullmatch(r"[\w./:@-]+", text):  # an image, a tag, a name: nothing YAML would read otherwise
            return text
    return TEMPLATED


@dataclass(frozen=True)
class SharedDockerfile:
    """A repository-level Dockerfile, read once: the stages it names and the ARGs its paths take a service from."""

    path: Path
    stages: frozenset[str]  # FROM ... AS <name>: one target per service
    service_args: tuple[str, ...]  # ARGs used as services/${ARG}/...

    @classmethod
    def read(cls, path: Path) -> SharedDockerfile:
        instructions = parse(path).structure
        stages = {
            words[-1]
            for ins in instructions
            if ins["instruction"] == "FROM" and len(words := ins["value"].split()) >= 3 and words[-2].upper() == "AS"
        }
        arguments = sorted({ins["value"].split("=")[0].strip() for ins in instructions if ins["instruction"] == "ARG"})
        used = tuple(a for a in arguments if any(re.search(rf"services/\$\{{?{a}\b", i["value"]) for i in instructions))
        return cls(path, frozenset(stages), used)


@dataclass(frozen=True)
class Repository:
    """What lies outside the services' directories and may build or migrate any of them: read once per audit."""

    root: Path
    manifests: tuple[tuple[Path, tuple[dict, ...]], ...]  # compose files, Kubernetes manifests, Helm templates
    scripts: tuple[tuple[Path, str], ...]  # (path, text) of the repository scripts that apply migrations
    dockerfiles: tuple[SharedDockerfile, ...]  # Dockerfile* at the root and in docker/, build/, deploy/
    makefile: Path | None
    services: tuple[tuple[str, tuple[str, ...]], ...] = ()  # every service with the names deploy files give it

    def others(self, service: str) -> OtherNames:
        """The names of every other service: billing-worker-migrate is billing-worker's, not billing's."""
        return OtherNames(service, self._owners)

    @cached_property
    def _owners(self) -> dict[str, frozenset[str]]:
        """Each name deploy files may give a service (its words joined by "-") -> the services it names: made
        once, where every service's wiring once listed every other service's names (1,000 services: a million)."""
        owners: dict[str, set[str]] = {}
        for service, names in self.services:
            for name in names:
                if key := "-".join(_words(name)):
                    owners.setdefault(key, set()).add(service)
        return {key: frozenset(found) for key, found in owners.items()}


@dataclass(frozen=True)
class OtherNames:
    """The names of every service but one, asked by name (its words joined by "-") rather than listed."""

    service: str
    owners: Mapping[str, frozenset[str]]

    def __contains__(self, key: object) -> bool:
        owners = self.owners.get(key, frozenset()) if isinstance(key, str) else frozenset()
        return len(owners) > 1 or (bool(owners) and self.service not in owners)


def scan(root: Path, services: Mapping[str, Path] | None = None) -> Repository:
    dockerfiles = [
        p for folder in DOCKER_DIRS if (root / folder).is_dir() for p in sorted((root / folder).glob("Dockerfile*"))
    ]
    return Repository(
        root,
        repository_files(root),
        tuple(_migrating_scripts(root)),
        tuple(SharedDockerfile.read(p) for p in dockerfiles if p.is_file() and "migrat" not in p.name.lower()),
        makefile_in(root),
        tuple((name, service_names(name, path)) for name, path in (services or {}).items()),
    )


def repository_files(root: Path) -> tuple[tuple[Path, tuple[dict, ...]], ...]:
    """Compose files and manifests outside the services' own directories."""
    found: list[Path] = [p for p in root.glob("*.y*ml") if COMPOSE.match(p.name)]
    for name in DEPLOY_DIRS:
        directory = root / name
        if directory.is_dir():
            found += sorted(p for p in directory.rglob("*.y*ml") if len(p.relative_to(directory).parts) <= 6)
    return tuple((p, _yaml_documents(p)) for p in found)


def manifests_among(files: tuple[Path, ...]) -> list[tuple[Path, tuple[dict, ...]]]:
    """The service's own YAML files (of the files the wiring audit reads: no node_modules, no tests)."""
    return [(p, _yaml_documents(p)) for p in files if p.suffix in (".yaml", ".yml")]


def _tokens(text: str) -> set[str]:
    return set(re.split(r"[^a-z0-9]+", text.lower()))


def service_names(service: str, directory: Path) -> tuple[str, ...]:
    """The names deploy files may give a service: its own and its directory's (services/catalog declared as
    catalog-service), each also without a `-service` suffix."""
    names = []
    for name in dict.fromkeys((service.lower(), directory.name.lower())):
        names.append(name)
        words = _words(name)
        if len(words) > 1 and words[-1] in NAME_SUFFIXES:
            names.append("-".join(words[:-1]))
    return tuple(dict.fromkeys(names))


def _words(text: str) -> list[str]:
    return [w for w in re.split(r"[^a-z0-9]+", text.lower()) if w]


def names_service(written: str, names: tuple[str, ...], others: Others = ()) -> bool:
    """Does a name as written (catalog-service-migrate, ghcr.io/acme/catalog-service's catalog-service) hold one
    of the service's names, word for word in a row, and no longer name of another service? `catalog` is in
    catalog-service and catalog-service-migrate; `catalog-service` is not in catalog, nor `order` in orders; and
    billing-worker-migrate is the service billing-worker's, not billing's."""
    words = _words(written)
    mine = _longest(words, names)
    return mine > 0 and _longest_other(words, others) <= mine


def _longest_other(words: list[str], others: Others) -> int:
    """The most words in a row of `words` that are one of `others`' names: each run of them looked up, longest
    first (a name holds a few words; a monorepo may have a thousand services)."""
    known = others if isinstance(others, OtherNames) else {"-".join(_words(name)) for name in others}
    for size in range(len(words), 0, -1):
        if any("-".join(words[i : i + size]) in known for i in range(len(words) - size + 1)):
            return size
    return 0


def _longest(words: list[str], names: tuple[str, ...]) -> int:
    """The most words of one of `names` that `words` hold in a row (0: none of them)."""
    best = 0
    for name in names:
        wanted = _words(name)
        if wanted and any(words[i : i + len(wanted)] == wanted for i in range(len(words) - len(wanted) + 1)):
            best = max(best, len(wanted))
    return best


def _belongs(
    name: str, obj: object, names: tuple[str, ...], own: bool, path: Path | None = None, others: Others = ()
) -> bool:
    """A repository-level object is this service's when it says so by name, image or path, or lives in a
    directory or file named after it (charts/<service>/templates/..., infrastructure/k8s/<service>.yaml),
    and says no other service's longer name there; `path` is from the repository's root."""
    if own or (path is not None and any(names_service(part.split(".")[0], names, others) for part in path.parts)):
        return True
    text = yaml.safe_dump(obj, default_flow_style=True) if not isinstance(obj, str) else obj
    if names_service(name, names, others) or any(f"services/{n}/" in text + "/" for n in names):
        return True
    image = obj.get("image") if isinstance(obj, dict) else None
    return bool(image) and names_service(str(image).rsplit("/", 1)[-1].split(":")[0], names, others)


# Images whose entrypoint is a migration tool: a container of one given only `args` runs that tool with them
IMAGE_ENTRYPOINTS = {"arigaio/atlas": "atlas"}


def _command(spec: dict, command_key: str = "command", args_key: str = "args") -> str:
    parts = []
    image = str(spec.get("image") or "").split("@", 1)[0].rsplit(":", 1)[0]
    entrypoint = IMAGE_ENTRYPOINTS.get(image.removeprefix("docker.io/"))
    if entrypoint and spec.get(command_key) is None and spec.get(args_key) is not None:
        parts.append(entrypoint)  # arigaio/atlas with args [migrate, apply, ...]: atlas migrate apply ...
    for key in (command_key, args_key):
        value = spec.get(key)
        if isinstance(value, list):
            parts.append(shlex.join(str(v) for v in value))
        elif isinstance(value, str):
            parts.append(value)
    return " ".join(parts)


def _migrates(name: str, command: str, tree: Tree) -> bool:
    """A job migrates when its command does, or, when the command says nothing either way (none, or only steps
    that neither migrate nor serve), when its name says so (a compose service or container called migrate)."""
    steps = follow(command, tree, None) if command else []
    if any(step.kind == "migrate" for step in steps):
        return True
    return all(s.kind == "other" for s in steps) and applies_migrations(name)


def jobs(service: str, tree: Tree, repo: Repository) -> list[Job]:
    """Every migration job of this service that a compose file, manifest or Procfile declares."""
    found: list[Job] = []
    mine = manifests_among(tree.files)
    own = {p for p, _ in mine}
    root = repo.root
    names = service_names(service, tree.directory)
    others = repo.others(service)
    for path, documents in [*mine, *repo.manifests]:
        where = path.relative_to(root) if path.is_relative_to(root) else None
        for document in documents:
            if "kind" in document:
                found += _kubernetes(document, path, (names, others), path in own, tree, where)
            elif isinstance(document.get("services"), dict) and COMPOSE.match(path.name):
                found += _compose(document["services"], path, (names, others), path in own, tree, root)
    found += _manual(service, tree, repo)
    fly = tree.directory / "fly.toml"
    if fly.is_file():
        import tomllib  # only for a fly.toml: an audit of services without one never loads it

        try:
            fly_settings = tomllib.loads(fly.read_text(encoding="utf-8", errors="replace"))
            release = str(fly_settings.get("deploy", {}).get("release_command", ""))
        except (tomllib.TOMLDecodeError, AttributeError):
            release = ""
        if release and _migrates("release_command", release, tree):
            found.append(Job("release command", "fly.toml", fly, True))
    for path, number, kind, command in procfile(tree.directory):
        if kind == "release" and _migrates("release", command, tree):
            found.append(Job("release phase", "release", path, True, line=number))
    return found


def procfile(directory: Path) -> list[tuple[Path, int, str, str]]:
    """A Procfile's process types as (path, line, type, command): `web` starts the app, `release` runs first."""
    path = directory / "Procfile"
    if not path.is_file():
        return []
    found = []
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        kind, _, command = line.partition(":")
        if command.strip():
            found.append((path, number, kind.strip(), command.strip()))
    return found


def _manual(service: str, tree: Tree, repo: Repository) -> list[Job]:
    """Makefile targets and repository scripts that migrate: run by hand or by CI, never before the server."""
    found = []
    for makefile in (makefile_in(tree.directory), repo.makefile):
        if makefile is None:
            continue
        own = makefile.parent == tree.directory
        for target, lines in recipes(makefile).items():
            hit = next(
                (n for n, c in lines if (own or _names(c, service, tree.directory)) and _migrates(target, c, tree)),
                None,
            )
            if hit is not None:
                found.append(Job("Makefile target", target, makefile, False, line=hit))
                break
    for script, text in repo.scripts:
        if _names(text, service, tree.directory):
            found.append(Job("script", script.relative_to(repo.root).as_posix(), script, False))
    return found


def _migrating_scripts(root: Path) -> Iterator[tuple[Path, str]]:
    """Whether a script migrates is the same for every service it names: followed once per audit, not per service."""
    for script in repository_scripts(root):
        text = script.read_text(encoding="utf-8", errors="replace")
        if _migrates(script.name, text, Tree(root)):
            yield script, text


def _names(text: str, service: str, directory: Path) -> bool:
    """Does this command or script apply to the service: by its path (its directory's name as written, which its
    name may not be: services/Ordering.API is ordering-api), or by a path over services that either lists the
    service by name (`for s in auth users`) or walks them all (`services/*`, `ls services`)?"""
    if any(f"services/{name}/" in text + "/" for name in dict.fromkeys((service, directory.name))):
        return True
    if not re.search(r"services/\$\{?\w+\}?", text) and "services/*" not in text:
        return False
    return service.lower() in _tokens(text) or bool(re.search(r"services/\*|\b(ls|find)\s+\S*services\b", text))


def repository_scripts(root: Path) -> tuple[Path, ...]:
    found = [p for p in root.glob("*.sh")]
    for name in ("scripts", "bin", "hack", "ops", "deploy"):
        if (root / name).is_dir():
            found += [p for p in (root / name).rglob("*.sh") if len(p.relative_to(root).parts) <= 4]
    return tuple(sorted(p for p in found if p.is_file() and p.stat().st_size <= MAX_BYTES))


def _pod(document: dict) -> dict:
    spec: dict = document["spec"] if isinstance(document.get("spec"), dict) else {}
    if document.get("kind") == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    if document.get("kind") != "Pod":
        spec = (spec.get("template") or {}).get("spec") or {}
    return spec if isinstance(spec, dict) else {}


def _kubernetes(document: dict, path: Path, named: Named, own: bool, tree: Tree, where: Path | None) -> Iterator[Job]:
    metadata: dict = document["metadata"] if isinstance(document.get("metadata"), dict) else {}
    name = str(metadata.get("name", ""))
    names, others = named
    if document.get("kind") == ATLAS_MIGRATION and str(document.get("apiVersion", "")).startswith(ATLAS_OPERATOR):
        if _belongs(name, document, names, own, where, others):  # the operator applies it when it reconciles: unordered
            yield Job(f"Atlas operator's {ATLAS_MIGRATION}", name, path, False)
        return
    if document.get("kind") not in WORKLOADS:
        return
    pod = _pod(document)
    containers = [c for c in pod.get("containers") or [] if isinstance(c, dict)]
    mine = _belongs(name, document, names, own, where, others)
    if not (mine or any(_belongs("", c, names, False, others=others) for c in containers)):
        return
    if document.get("kind") in ("Job", "CronJob"):
        hooks = " ".join(str(v) for k, v in (metadata.get("annotations") or {}).items() if "hook" in str(k))
        if any(_migrates(name, _command(c), tree) for c in containers):
            image = next((str(c.get("image")) for c in containers), None)
            command = " ; ".join(_command(c) for c in containers)
            kind = f"Kubernetes {document['kind']}"  # a Job or a CronJob
            yield Job(kind, name, path, bool(PRE_HOOKS.search(hooks)), image, command=command)
        return
    images = tuple(str(c.get("image")) for c in containers)
    for init in pod.get("initContainers") or []:
        if isinstance(init, dict) and _migrates(str(init.get("name", "")), _command(init), tree):
            name, image = str(init.get("name", "")), str(init.get("image"))
            yield Job("init container", name, path, True, image, images, command=_command(init))


def _compose(services: dict, path: Path, named: Named, own: bool, tree: Tree, root: Path) -> Iterator[Job]:
    names, others = named
    migrating = {
        name
        for name, spec in services.items()
        if isinstance(spec, dict)
        and (_migrates(str(name), _command(spec, "entrypoint", "command"), tree) or _builds_migrator(spec, path))
    }
    servers = [
        spec
        for name, spec in services.items()
        if isinstance(spec, dict) and name not in migrating and _belongs(str(name), spec, names, own, others=others)
    ]
    for name in sorted(migrating):
        spec = services[name]
        if not (_belongs(str(name), spec, names, own, others=others) or _carries(spec, path, tree, root)):
            continue
        ordered = any(_waits_for(server, name) for server in servers)
        image = str(spec.get("image") or "") or None
        command = _command(spec, "entrypoint", "command")
        yield Job("compose service", str(name), path, ordered, image, command=command)
    migrations = tree.migrations
    for name, spec in services.items():
        if isinstance(spec, dict) and any(
            target.startswith(INITDB) and (path.parent / source).resolve() == migrations.resolve()
            for source, target in _volumes(spec)
        ):
            yield Job(INITDB_MOUNT, str(name), path, False)


def _volumes(spec: dict) -> Iterator[tuple[str, str]]:
    """A compose service's bind mounts as (source, target), short syntax or long."""
    for volume in spec.get("volumes") or []:
        if isinstance(volume, str) and ":" in volume:
            source, _, rest = volume.partition(":")
            yield source, rest.split(":")[0]
        elif isinstance(volume, dict) and volume.get("source") and volume.get("target"):
            yield str(volume["source"]), str(volume["target"])


def _waits_for(server: dict, job: str) -> bool:
    depends = server.get("depends_on")
    if not isinstance(depends, dict) or not isinstance(depends.get(job), dict):
        return False
    return depends[job].get("condition") == "service_completed_successfully"


def compose_build(spec: dict, compose: Path) -> Build | None:
    build = spec.get("build")
    if isinstance(build, str):
        build = {"context": build}
    if not isinstance(build, dict):
        return None
    context = (compose.parent / str(build.get("context", "."))).resolve()
    dockerfile = context / str(build.get("dockerfile", "Dockerfile"))
    args = build.get("args") or {}
    pairs = args.items() if isinstance(args, dict) else (str(a).partition("=")[::2] for a in args)
    target = build.get("target")
    return Build(dockerfile, context, tuple((str(k), str(v)) for k, v in pairs), str(target) if target else None)


def _builds_migrator(spec: dict, compose: Path) -> bool:
    build = compose_build(spec, compose)
    return build is not None and "migrat" in build.dockerfile.name.lower()


def _carries(spec: dict, compose: Path, tree: Tree, root: Path) -> bool:
    """A shared migration image (one Dockerfile.migrate for all) is this service's when it copies its migrations:
    its build context holds them (a `COPY . .` of another service's directory copies none of this one's)."""
    build = compose_build(spec, compose)
    if build is None or not build.dockerfile.is_file() or not tree.migrations.resolve().is_relative_to(build.context):
        return False
    image = analyse(build.dockerfile, tree.directory, root, build, tree.migrations)
    return bool(image.final.carriers)


def builds(service: str, directory: Path, repo: Repository, files: tuple[Path, ...]) -> list[Build]:
    """The service's image builds: its own Dockerfile(s), compose `build:` entries, shared Dockerfiles."""
    own = sorted(directory.glob("Dockerfile*"), key=lambda p: (p.name != "Dockerfile", p.name))
    found = [Build(p, directory) for p in own if p.is_file() and "migrat" not in p.name.lower()]
    root = repo.root
    for path, documents in [*manifests_among(files), *repo.manifests]:
        for document in documents:
            services = document.get("services") if COMPOSE.match(path.name) else None
            for name, spec in (services or {}).items() if isinstance(services, dict) else ():
                build = compose_build(spec, path) if isinstance(spec, dict) else None
                if build and build.dockerfile.is_file() and "migrat" not in build.dockerfile.name.lower():
                    names = service_names(service, directory)
                    if _belongs(str(name), spec, names, path.is_relative_to(directory), others=repo.others(service)):
                        found.append(build)
    for dockerfile in repo.dockerfiles:
        shared = _shared(dockerfile, service, root)
        if shared is not None:
            found.append(shared)
    return found


def _shared(shared: SharedDockerfile, service: str, root: Path) -> Build | None:
    """A root Dockerfile with a stage named after the service, or an ARG that takes the service's name."""
    if service in shared.stages:
        return Build(shared.path, root, (), service)
    if shared.service_args:
        return Build(shared.path, root, ((shared.service_args[0], service),))
    return None
