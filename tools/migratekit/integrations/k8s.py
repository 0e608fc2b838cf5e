"""Kubernetes Jobs that migrate each service as migrate-all does, in dependency order.

`render` writes one Job per service. Where the service's image holds its migrations is read from its
Dockerfile (model.dockerfile.analyse), and the Job runs, in this order of preference:
- the service's own runner, where it is one whose rows are migrate-all's: the TypeScript scaffold's
  `node dist/migrate.js`, the seed's `runMigrations` (src/database/migrate.ts) through `node -e`, the Python
  scaffold's `python -m <package>.migrate`; only for seed-format files and the seed's tracking table, which
  those runners hard-code;
- migratekit's runner (`python -m migratekit migrate`) in the service's image, where the image installs it;
- migratekit's runner in the --runner-image, fed by an init container that copies the migrations out of the
  service's image (which needs a `cp`: not scratch or distroless).
migratekit's runner is given the service's tracking table, format and timeouts. Every Job reads DATABASE_URL
from a Secret, runs under the restricted Pod Security profile, and is named per revision (a hash of its pod
template and of the migrations' checksums: a Job's template cannot change, so a new revision needs a new Job).
`run` (migrate-all --on kubernetes) applies them wave by wave with the official client.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import os
import posixpath
import re
import shlex
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from migratekit.errors import ConfigError
from migratekit.files import made, read_regular, resolved, staged_together
from migratekit.model.contract import SEED_TABLE
from migratekit.model.dockerfile import Image, Stage, analyse
from migratekit.model.formats import AUTO, Format
from migratekit.model.migration import Migration
from migratekit.model.settings import CONTAINER_CONNECT_WAIT, MIGRATIONS, RUN_DEFAULTS, duration_seconds
from migratekit.model.workspace import Service, Workspace, relative

PART_OF = "migratekit"
WAVE_LABEL = "migratekit.dev/wave"
SERVICE_LABEL = "migratekit.dev/service"
MARGIN_SECONDS = 120  # pulling the image and starting, beyond what the runner itself may wait
TTL_SECONDS = 86400  # a finished Job (and its log) stays a day
USER_ID = 65532  # a numeric non-root user (distroless's nonroot), so runAsNonRoot holds whatever the image's USER
COPY_DIR = "/migratekit/migrations"  # the --runner-image's copy: a volume that hides no image path of theirs
RESOURCES = {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "256Mi"}}
HOOKS = ("helm", "argocd")
SEED_TRACKING_TABLES = (SEED_TABLE, f"public.{SEED_TABLE}")  # what the seed-shaped runners write
# The seed's runner has no entry point of its own (its index.ts migrates, then serves): call it, and exit.
SEED_RUNNER = """\
const { createDatabase } = require('./dist/database/client');
const { runMigrations } = require('./dist/database/migrate');
const db = createDatabase();
runMigrations(db)
  .then(() => db.destroy())
  .then(() => process.exit(0), (error) => { console.error(error); process.exit(1); });
"""
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")  # a namespace
DNS_NAME = re.compile(r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")  # a Secret
IMAGE = re.compile(r"^[^\s{}]+$")
CHAINGUARD_STATIC = "cgr.dev/chainguard/static"
PACKAGE = re.compile(r"migratekit(?!\w|-[A-Za-z])")  # migratekit[kubernetes], /opt/migratekit, its wheel
SHELL_OPERATORS = {"&&", "||", ";", "|", "&"}


@dataclass(frozen=True)
class Options:
    """What k8s-render's flags set, beside what each service's files say."""

    image_template: str = "{service}:latest"  # each service's image; {service} is replaced
    namespace: str = "default"
    service_account: str | None = None  # serviceAccountName; none: the namespace's default (its token unmounted)
    pull_secrets: tuple[str, ...] = ()  # imagePullSecrets
    hooks: str | None = None  # helm or argocd: the annotations that run the Jobs before the release, by wave
    runner_image: str | None = None  # an image with migratekit, for services whose own image cannot run a runner

    def image(self, service: str) -> str:
        return self.image_template.format(service=service)


def check(options: Options) -> None:
    """Every flag's value is one Kubernetes accepts, or exit 2 naming the flag."""
    try:
        image = options.image("service")
    except (KeyError, IndexError, ValueError):
        raise ConfigError(
            f"--image-template {options.image_template!r}: {{service}} is the only name it may use"
        ) from None
    if not IMAGE.match(image):
        raise ConfigError(f"--image-template {options.image_template!r}: not an image reference")
    if options.runner_image is not None and not IMAGE.match(options.runner_image):
        raise ConfigError(f"--runner-image {options.runner_image!r}: not an image reference")
    if not DNS_LABEL.match(options.namespace):
        raise ConfigError(
            f"--namespace {options.namespace!r}: a namespace is at most 63 lower-case letters, digits and '-'"
        )
    names = [("--service-account", options.service_account)] if options.service_account is not None else []
    for flag, value in names + [("--image-pull-secrets", s) for s in options.pull_secrets]:
        if not DNS_NAME.match(value):
            raise ConfigError(f"{flag} {value!r}: not a Kubernetes name (lower-case letters, digits, '-' and '.')")
    if options.hooks is not None and options.hooks not in HOOKS:
        raise ConfigError(f"--hooks {options.hooks!r}: helm or argocd")


@dataclass(frozen=True)
class Runner:
    """How one service's Job migrates it."""

    describe: str  # what k8s-render prints
    command: tuple[str, ...]
    migrations: str  # where the service's image holds its migrations
    env: tuple[tuple[str, str], ...] = ()
    image: str | None = None  # the --runner-image, fed from the service's image; None: the service's own image


@dataclass(frozen=True)
class Rendered:
    """One service's Job, and what k8s-render says of it."""

    service: str
    wave: int
    runner: Runner
    manifest: dict[str, Any]
    tracking_table: str
    format: str
    statements: int  # of all its migrations: what the deadline allows for
    statement_timeout: str

    @property
    def name(self) -> str:
        return str(self.manifest["metadata"]["name"])

    @property
    def deadline(self) -> int | None:
        value = self.manifest["spec"].get("activeDeadlineSeconds")
        return None if value is None else int(value)


def dockerfile_of(service: Service) -> Path | None:
    """The service's own Dockerfile (`Dockerfile` first, then `Dockerfile.*`; none named for migrating)."""
    own = sorted(service.path.glob("Dockerfile*"), key=lambda p: (p.name != "Dockerfile", p.name))
    return next((p for p in own if p.is_file() and "migrat" not in p.name.lower()), None)


def file_format(service: Service, migrations: tuple[Migration, ...]) -> str:
    """The format the files are read in: the declared one, else the one detected (auto when there are none)."""
    if service.settings.format != AUTO:
        return service.settings.format
    found = {m.format.value for m in migrations}
    return found.pop() if len(found) == 1 else AUTO


def runner(service: Service, root: Path, runner_image: str | None = None) -> Runner:
    """What the service's Job runs, in which image, and where that image holds the migrations."""
    dockerfile = dockerfile_of(service)
    if dockerfile is None:
        raise ConfigError(
            f"{service.name}: no Dockerfile in {relative(root, service.path)}; k8s-render reads it to know where "
            "the service's image holds its migrations"
        )
    image = analyse(dockerfile, service.path, root, migrations_dir=service.migrations_dir)
    final = image.final
    held = sorted(final.carriers)
    if not held:
        raise ConfigError(
            f"{service.name}: the final stage of {relative(root, dockerfile)} holds no migrations (the audit's "
            f"MK403); COPY {relative(root, service.migrations_dir)} into it"
        )
    beside = posixpath.join(final.workdir, MIGRATIONS)  # where the seed's runner reads them: ../../migrations of dist/
    path = beside if beside in held else held[0]
    migrations = service.load_migrations()
    fmt = file_format(service, migrations)
    settings = service.settings
    own = _own_runner(service, final, path, path == beside)
    if own is not None and fmt == Format.SEED and settings.tracking_table in SEED_TRACKING_TABLES:
        return own
    # The seed-shaped runners write the seed's table and apply every .sql file whole (a down part too).
    why = (
        ""
        if own is None
        else f" (its own runner writes {SEED_TABLE}, not {settings.tracking_table})"
        if fmt == Format.SEED
        else f" (its own runner applies every .sql file whole, which {fmt} files are not)"
    )

    def migratekit(directory: str) -> tuple[str, ...]:
        flags = ("--tracking-table", settings.tracking_table, "--format", fmt)
        timeouts = ("--lock-timeout", settings.lock_timeout, "--statement-timeout", settings.statement_timeout)
        return ("python", "-m", "migratekit", "migrate", "--dir", directory, *flags, *timeouts)

    if _installs_migratekit(image):
        return Runner(f"migratekit's runner in its image{why}", migratekit(path), path)
    cannot = f"{service.name}: its image ({final.image}) has no runner migratekit can run{why}"
    if not _has_cp(final):
        raise ConfigError(
            f"{cannot}, and no cp to hand the migrations at {path} to one; build its final stage on an image with a "
            "shell, or install migratekit in it"
        )
    if runner_image is None:
        raise ConfigError(
            f"{cannot}; pass --runner-image, an image with migratekit (python -m migratekit), and the Job copies "
            f"the migrations at {path} into it"
        )
    if COPY_DIR.startswith(path + "/") or path == COPY_DIR or path.startswith(COPY_DIR + "/"):
        raise ConfigError(f"{service.name}: its image holds the migrations at {path}, where the Job mounts its copy")
    return Runner(f"migratekit's runner in {runner_image}{why}", migratekit(COPY_DIR), path, image=runner_image)


def _own_runner(service: Service, final: Stage, path: str, beside: bool) -> Runner | None:
    """The service's own seed-compatible runner, when its image can run it on the migrations it holds: the seed's
    TypeScript runner reads them beside dist/ (WORKDIR/migrations), the Python scaffold's from MIGRATIONS_DIR."""
    src = service.path / "src"
    package = service.name.replace("-", "_")
    if beside and _runs_node(final):
        if (src / "migrate.ts").is_file():
            return Runner("its own runner (node dist/migrate.js)", ("node", "dist/migrate.js"), path)
        if (src / "database" / "migrate.ts").is_file() and (src / "database" / "client.ts").is_file():
            return Runner("its own runner (the seed's runMigrations, node -e)", ("node", "-e", SEED_RUNNER), path)
    if (src / package / "migrate.py").is_file():
        command = ("python", "-m", f"{package}.migrate")
        return Runner(f"its own runner (python -m {package}.migrate)", command, path, (("MIGRATIONS_DIR", path),))
    return None


def _base(reference: str) -> str:
    """`registry.example.com/team/node:22-alpine@sha256:…` -> `node`."""
    return reference.rsplit("/", 1)[-1].split("@")[0].split(":")[0].lower()


def _runs_node(final: Stage) -> bool:
    words = _words(final.start)
    return "node" in _base(final.image) or (bool(words) and posixpath.basename(words[0]) == "node")


def _has_cp(final: Stage) -> bool:
    """False for the images known to hold no shell tools: scratch, distroless, Chainguard's static."""
    reference = final.image.lower()
    return not (reference == "scratch" or "distroless" in reference or reference.startswith(CHAINGUARD_STATIC))


def _installs_migratekit(image: Image) -> bool:
    """Whether the final image holds migratekit: built on an image of it, or a RUN of its stage pip-installs it."""
    if "migratekit" in _base(image.final.image):
        return True
    for command, line in image.runs:
        if line <= image.final.line:
            continue  # an earlier stage's
        words = _words(command)
        for i, word in enumerate(words[:-1]):
            if posixpath.basename(word) in ("pip", "pip3") and words[i + 1] == "install":
                arguments = list(itertools.takewhile(lambda w: w not in SHELL_OPERATORS, words[i + 2 :]))
                if any(PACKAGE.match(a.rstrip("/").rsplit("/", 1)[-1]) for a in arguments if not a.startswith("-")):
                    return True
    return False


def _words(command: str) -> list[str]:
    """A shell command's words, `&&`, `;` and `|` among them (the commands of a RUN, one after another)."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        return list(lexer)
    except ValueError:
        return command.split()


def deadline(service: Service, migrations: tuple[Migration, ...]) -> int | None:
    """activeDeadlineSeconds: every statement of every migration at the statement timeout (a new database's
    run, the longest the runner can take), the runner's connect and lock waits, and a margin.
    None for statement_timeout 0, which PostgreSQL reads as no limit: the Job has none either."""
    limit = duration_seconds(service.settings.statement_timeout)
    if limit == 0:
        return None
    return math.ceil(limit * statements(migrations) + CONTAINER_CONNECT_WAIT + RUN_DEFAULTS.lock_wait) + MARGIN_SECONDS


def statements(migrations: tuple[Migration, ...]) -> int:
    """How many statements the migrations' up parts hold (a file that does not parse counts as one)."""
    return sum(1 if m.syntax_error else max(1, len(m.statements)) for m in migrations) or 1


def dns_name(service: str) -> str:
    """A service's name as Kubernetes names allow it (`_` is not allowed there)."""
    return service.replace("_", "-")


def secret_name(service: str) -> str:
    return f"{dns_name(service)}-db-credentials"


def job_name(service: str, template: dict[str, Any], migrations: tuple[Migration, ...]) -> str:
    """`migrate-<service>-<hash>`: a new pod template or a changed migration is a new Job (at most 63 characters,
    as the `job-name` label of its pods must be)."""
    revision = json.dumps([template, [(m.version, m.checksum) for m in migrations]], sort_keys=True)
    digest = hashlib.sha256(revision.encode()).hexdigest()[:8]
    return f"migrate-{dns_name(service)[:46].rstrip('-')}-{digest}"


def _security() -> dict[str, Any]:
    """A container's part of the restricted Pod Security profile."""
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _annotations(hooks: str | None, wave: int) -> dict[str, str]:
    """Helm and Argo CD run the Jobs before the release's other resources, one wave after another."""
    if hooks == "helm":
        return {
            "helm.sh/hook": "pre-install,pre-upgrade",
            "helm.sh/hook-weight": str(wave),
            "helm.sh/hook-delete-policy": "before-hook-creation",
        }
    if hooks == "argocd":
        return {
            "argocd.argoproj.io/hook": "PreSync",
            "argocd.argoproj.io/sync-wave": str(wave),
            "argocd.argoproj.io/hook-delete-policy": "BeforeHookCreation",
        }
    return {}


def job(service: Service, wave: int, root: Path, options: Options = Options()) -> Rendered:
    """One service's Job."""
    chosen = runner(service, root, options.runner_image)
    migrations = service.load_migrations()
    image = options.image(service.name)

    def labels() -> dict[str, str]:  # a dict of its own for each place: the YAML holds no anchors
        return {"app.kubernetes.io/part-of": PART_OF, SERVICE_LABEL: service.name, WAVE_LABEL: str(wave)}

    env: list[dict[str, Any]] = [
        {"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": secret_name(service.name), "key": "url"}}},
        {"name": "HOME", "value": "/tmp"},  # the root file system is read-only; /tmp is a volume of its own
        *({"name": name, "value": value} for name, value in chosen.env),
    ]
    mounts: list[dict[str, Any]] = [{"name": "tmp", "mountPath": "/tmp"}]
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}]
    pod: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": USER_ID,
            "runAsGroup": USER_ID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
    }
    if options.service_account:
        pod["serviceAccountName"] = options.service_account
    if options.pull_secrets:
        pod["imagePullSecrets"] = [{"name": name} for name in options.pull_secrets]
    if chosen.image is not None:  # the runner image reads what an init container copies out of the service's
        volumes.append({"name": "migrations", "emptyDir": {"sizeLimit": "256Mi"}})
        pod["initContainers"] = [
            {
                "name": "copy-migrations",
                "image": image,
                "command": ["cp", "-R", f"{chosen.migrations}/.", COPY_DIR],
                "resources": copy.deepcopy(RESOURCES),
                "securityContext": _security(),
                "volumeMounts": [{"name": "migrations", "mountPath": COPY_DIR}],
            }
        ]
        mounts.append({"name": "migrations", "mountPath": COPY_DIR, "readOnly": True})
    pod["containers"] = [
        {
            "name": "migrate",
            "image": chosen.image or image,
            "command": list(chosen.command),
            "env": env,
            "resources": copy.deepcopy(RESOURCES),
            "securityContext": _security(),
            "volumeMounts": mounts,
        }
    ]
    pod["volumes"] = volumes
    template = {"metadata": {"labels": labels()}, "spec": pod}
    metadata: dict[str, Any] = {
        "name": job_name(service.name, template, migrations),
        "namespace": options.namespace,
        "labels": labels(),
    }
    if options.hooks:
        metadata["annotations"] = _annotations(options.hooks, wave)
    spec: dict[str, Any] = {"backoffLimit": 0}  # a failed migration is reported, never retried blindly
    limit = deadline(service, migrations)
    if limit is not None:
        spec["activeDeadlineSeconds"] = limit
    spec |= {"ttlSecondsAfterFinished": TTL_SECONDS, "template": template}
    manifest = {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": spec}
    fmt = file_format(service, migrations)
    return Rendered(
        service.name,
        wave,
        chosen,
        manifest,
        service.settings.tracking_table,
        fmt,
        statements(migrations),
        service.settings.statement_timeout,
    )


def render(workspace: Workspace, options: Options = Options(), only: set[str] | None = None) -> list[Rendered]:
    """Every service's Job (or `only` these), wave by wave (the waves of workspace.groups()).

    A service that cannot have a Job that would succeed is a ConfigError naming it and why; all are named at once.
    """
    check(options)
    rendered, problems = [], []
    for number, wave in enumerate(workspace.groups(only), start=1):
        for name in wave:
            try:
                rendered.append(job(workspace.services[name], number, workspace.root, options))
            except ConfigError as exc:
                problems.append(str(exc))
    if problems:
        raise ConfigError(
            f"no Jobs written: {len(problems)} service(s) cannot have one that would succeed\n"
            + "\n".join(f"  {p}" for p in problems)
        )
    return rendered


def waves_of(jobs: list[dict[str, Any]]) -> list[list[str]]:
    """The services of each wave label, in order: what tests compare with workspace.groups()."""
    waves: dict[int, list[str]] = {}
    for manifest in jobs:
        labels = manifest["metadata"]["labels"]
        waves.setdefault(int(labels[WAVE_LABEL]), []).append(labels[SERVICE_LABEL])
    return [waves[n] for n in sorted(waves)]


def dump(manifest: dict[str, Any]) -> str:
    """The manifest as YAML: no anchors or aliases, and a multi-line string (a script) as a block."""
    import yaml

    class Dumper(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)

    Dumper.add_representer(str, text)
    return yaml.dump(manifest, Dumper=Dumper, sort_keys=False, width=120)


def write(rendered: list[Rendered], directory: Path, root: Path) -> tuple[list[Path], list[Path]]:
    """Write `migrate-<service>.yaml` per Job; remove the Jobs an earlier render wrote there for services gone.

    Returns (written, removed).
    """
    import yaml

    if os.path.lexists(directory) and not directory.is_dir():  # a file, or a link that leads to no directory
        raise ConfigError(
            f"{relative(root, directory)}: not a directory, where one Job per service goes; name a directory "
            "(--output): nothing was written"
        )
    written = [directory / f"migrate-{one.service}.yaml" for one in rendered]
    in_the_way = [p for p in written if (resolved(p) or p).is_dir()]  # the one rename that fails once all are whole
    if in_the_way:
        raise ConfigError(
            f"{', '.join(relative(root, p) for p in in_the_way)}: a directory where a Job goes; move it away, then run "
            f"k8s-render again: the Jobs in {relative(root, directory)} are as they were"
        )
    where = directory
    try:  # every Job whole, beside its file, before any takes its place: never one revision's Jobs beside another's
        with made(directory), staged_together() as write:
            for path, one in zip(written, rendered, strict=True):
                where = path
                write(resolved(path) or path, dump(one.manifest))  # a full disk says so while every Job is as it was
    except OSError as exc:
        raise ConfigError(
            f"{relative(root, where)}: cannot be written ({exc.strerror or exc}); the Jobs in "
            f"{relative(root, directory)} are as they were: free space or make it writable, then run k8s-render "
            "again"
        ) from None
    removed = []
    for path in sorted(directory.glob("*.yaml")):
        if path in written:
            continue
        try:
            document = yaml.safe_load(read_regular(path))  # a FIFO there is no Job: never waited on
        except (yaml.YAMLError, OSError, UnicodeError):
            continue
        labels = document.get("metadata", {}).get("labels", {}) if isinstance(document, dict) else {}
        if isinstance(labels, dict) and labels.get("app.kubernetes.io/part-of") == PART_OF and SERVICE_LABEL in labels:
            path.unlink()
            removed.append(path)
    return written, removed


def cluster_unavailable_reason() -> str | None:
    """None when a Kubernetes cluster answers (kubeconfig or in-cluster), else why not (for skips and messages)."""
    try:
        from kubernetes import client, config  # type: ignore[import-untyped]
    except ImportError:
        return "the kubernetes package is not installed (pip install 'migratekit[kubernetes]')"
    try:
        try:
            config.load_incluster_config()
        except config.ConfigException:
            config.load_kube_config()
        client.VersionApi().get_code(_request_timeout=5)
    except Exception as exc:  # the client raises many unrelated types when no cluster answers
        return f"no Kubernetes cluster answers ({type(exc).__name__})"
    return None


def run(
    workspace: Workspace,
    selected: list[str],
    image_template: str,
    namespace: str,
    progress: Any = None,
    poll: float = 2.0,
    options: Options | None = None,
) -> list[Any]:
    """Apply the Jobs wave by wave, wait on each Job's conditions, stream its log, skip dependents of a failure.

    The Jobs are k8s-render's (`options`, with `image_template` and `namespace` in place of its own), all
    rendered before the first is applied. Returns one Result per service, as a local run does, so the summary
    and exit codes are the same.
    """
    import time

    from migratekit import interrupts
    from migratekit.database.apply import Finished, Said, WaveStarted
    from migratekit.database.results import Failure, Outcome, Result
    from migratekit.errors import MigratekitError

    options = replace(options or Options(), image_template=image_template, namespace=namespace)
    jobs = {one.service: one for one in render(workspace, options, set(selected))}
    reason = cluster_unavailable_reason()  # the client not installed, or no cluster: a message, not a traceback
    if reason is not None:
        raise MigratekitError(f"--on kubernetes: {reason}")
    from kubernetes import client  # type: ignore[import-untyped]

    batch, core = client.BatchV1Api(), client.CoreV1Api()
    results: dict[str, Result] = {}
    waves = workspace.groups(set(selected))

    def tell(name: str) -> None:
        if progress:
            progress(Finished(results[name], len(results), len(selected)))

    for number, wave in enumerate(waves, 1):
        if progress:
            progress(WaveStarted(number, len(waves), tuple(wave)))
        started: dict[str, float] = {}
        for name in wave:
            failed = [d for d in workspace.services[name].depends_on if d in results and not results[d].ok]
            if failed or interrupts.requested():
                why = f"depends on {', '.join(failed)}, which did not finish" if failed else interrupts.describe()
                results[name] = Result(name, Outcome.SKIPPED, notes=(f"skipped: {why}",))
                tell(name)
                continue
            _replace_job(batch, jobs[name].manifest, namespace)
            started[name] = time.monotonic()
        seen: dict[str, int] = {}
        while started:
            for name in list(started):
                named = jobs[name].name
                for line in _new_log_lines(core, namespace, named, seen):
                    if progress:
                        progress(Said(name, line[:200]))
                state = _job_state(batch.read_namespaced_job_status(named, namespace))
                if state is None and not interrupts.requested():
                    continue
                elapsed = int((time.monotonic() - started.pop(name)) * 1000)
                if state == "Complete":
                    results[name] = Result(name, Outcome.APPLIED, elapsed_ms=elapsed, notes=("the Job completed",))
                else:
                    if state is None:  # interrupted: stop the Job; its runner's transaction rolls back
                        batch.delete_namespaced_job(named, namespace, propagation_policy="Foreground")
                    outcome = Outcome.INTERRUPTED if state is None else Outcome.FAILED
                    message = f"Job {named} {'was stopped' if state is None else 'failed'}; see its log"
                    results[name] = Result(name, outcome, elapsed_ms=elapsed, failure=Failure(message))
                tell(name)
            time.sleep(poll)
    rank = {name: i for i, name in enumerate(workspace.order())}
    return sorted(results.values(), key=lambda r: rank[r.service])


def _replace_job(batch: Any, manifest: dict[str, Any], namespace: str) -> None:
    """Create the Job, after removing a finished one of the same name (Job specs cannot be updated)."""
    import time

    from kubernetes.client.exceptions import ApiException  # type: ignore[import-untyped]

    name = manifest["metadata"]["name"]
    try:
        batch.delete_namespaced_job(name, namespace, propagation_policy="Foreground")
        while True:
            batch.read_namespaced_job(name, namespace)
            time.sleep(1)
    except ApiException as exc:
        if exc.status != 404:
            raise
    batch.create_namespaced_job(namespace, manifest)


def _job_state(status: Any) -> str | None:
    for condition in status.status.conditions or []:
        if condition.type in ("Complete", "Failed") and condition.status == "True":
            return str(condition.type)
    return None


def _new_log_lines(core: Any, namespace: str, job_name: str, seen: dict[str, int]) -> list[str]:
    """Log lines of the Job's pod not shown yet (the whole log is read; migration logs are short)."""
    pods = core.list_namespaced_pod(namespace, label_selector=f"job-name={job_name}").items
    lines: list[str] = []
    for pod in pods:
        try:
            text = core.read_namespaced_pod_log(pod.metadata.name, namespace)
        except Exception:  # the container has not started yet
            continue
        all_lines = text.splitlines()
        lines += all_lines[seen.get(pod.metadata.name, 0) :]
        seen[pod.metadata.name] = len(all_lines)
    return lines
