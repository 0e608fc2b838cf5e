"""The Invoke tasks around the databases, CI and clusters: db-up, db-down, db-url, ci-workflow, k8s-render."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from invoke import Context, task

from migratekit.cli import render
from migratekit.cli.flags import ROOT_HELP, user_errors, workspace_at
from migratekit.model.identity import resolve
from migratekit.model.settings import POSTGRES_IMAGE
from migratekit.model.workspace import relative
from migratekit.model.workspace_file import find_root

if TYPE_CHECKING:
    from migratekit.integrations import k8s


@task(help={"root": ROOT_HELP, "json": "print JSON instead of text"})
@user_errors
def db_up(c: Context, root: str | None = None, json: bool = False) -> None:
    """Start the embedded PostgreSQL and create a database for each service without a URL."""
    from migratekit.database.embedded import Embedded
    from migratekit.database.servers import running_servers

    workspace = workspace_at(root)
    embedded = Embedded(workspace.root)
    rows = []
    for name in workspace.order():
        source = resolve(workspace.services[name])
        if source.kind == "embedded":
            embedded.ensure_database(source.database)
        rows.append({"service": name, "url_variable": source.env_var, "database": source.describe()})
    server = embedded.running()
    orphans = [s for s in running_servers() if s.orphaned]
    info = {
        "embedded": None
        if server is None
        else {
            "url": server.url(),
            "datadir": server.datadir,
            "binaries": server.binaries.source,
        },
        "services": rows,
        "orphaned_servers": orphans,
    }
    if json:
        print(render.as_json(info))
        return
    out = render.console()
    for line in render.db_up_text(server, rows, orphans):
        out.print(line)


@task(
    help={
        "root": ROOT_HELP,
        "orphans": "instead, stop every migratekit server on this machine whose checkout is gone, and remove its "
        "data and that of stopped ones",
    }
)
@user_errors
def db_down(c: Context, root: str | None = None, orphans: bool = False) -> None:
    """Stop the embedded PostgreSQL (its data stays for the next db-up)."""
    from migratekit.database.embedded import Embedded
    from migratekit.database.servers import remove_stopped_orphans, stop_orphans

    if orphans:
        stopped = stop_orphans()
        for line in render.orphans_stopped_text(stopped):
            print(line)
        for directory in remove_stopped_orphans():
            print(f"removed {directory}: a stopped cluster whose checkout is gone")
        return
    stopped_one = Embedded(find_root(Path(root)) if root else find_root()).stop()
    print("embedded PostgreSQL stopped" if stopped_one else "embedded PostgreSQL was not running")


@task(help={"service": "the service whose database to show", "root": ROOT_HELP})
@user_errors
def db_url(c: Context, service: str, root: str | None = None) -> None:
    """Print where SERVICE's database is (a password in its URL variable shows as ***)."""
    from migratekit.database.urls import workspace_urls
    from migratekit.model.secrets import redact

    workspace = workspace_at(root)
    notify = render.console(stderr=True).print
    chosen = [workspace.get(service)]
    url = workspace_urls(workspace, chosen, notify=notify)[service]
    print(redact(url or ""))


@task(
    help={
        "provider": "the CI system: github (the only one so far)",
        "output": "where to write it (default .github/workflows/migratekit.yml; anywhere, inside the repository "
        "or not)",
        "install": "the step that installs migratekit in CI (default: derived from how this migratekit was "
        "installed: its git URL and commit, or its path or wheel in the repository)",
        "postgres_image": f"the image of the PostgreSQL service container (default {POSTGRES_IMAGE})",
        "root": ROOT_HELP,
    },
)
@user_errors
def ci_workflow(
    c: Context,
    provider: str = "github",
    output: str = ".github/workflows/migratekit.yml",
    install: str | None = None,
    postgres_image: str = POSTGRES_IMAGE,
    root: str | None = None,
) -> None:
    """Write a CI workflow: audit what changed (SARIF to code scanning), migrate-all once, a job summary."""
    from migratekit.errors import ConfigError
    from migratekit.files import made, resolved, staged
    from migratekit.integrations import install as installs
    from migratekit.integrations.ci import ci_databases, github_workflow
    from migratekit.integrations.k8s import dump

    if provider != "github":
        raise ConfigError(f"--provider {provider!r}: only github is supported so far")
    if not postgres_image.strip():
        raise ConfigError("--postgres-image is empty: give an image, e.g. postgres:16")
    workspace = workspace_at(root)
    workspace.require_services()
    step = install if install is not None else installs.requirement(installs.installed(), workspace.root)
    if not step.strip():
        raise ConfigError("--install is empty: give the command that installs migratekit on the runner")
    workflow = github_workflow(workspace, step, postgres_image.strip())
    path = workspace.root / output  # an absolute --output stays as it is
    if resolved(path) is None:
        raise ConfigError(f"--output {output}: a link that leads back to itself; name a file")
    try:
        if path.exists() and not path.is_file():  # a device or a FIFO (/dev/stdout): written as it is
            with path.open("w", encoding="utf-8") as out:
                out.write(dump(workflow))
        else:  # whole or not at all, through a link as workspace.yaml is: a workflow cut off is one CI cannot read
            with made(path.parent), staged(resolved(path) or path) as out:
                out.write(dump(workflow))
    except OSError as exc:
        raise ConfigError(
            f"{relative(workspace.root, path)}: cannot be written ({exc.strerror or exc}); free space or make it "
            "writable (or give --output another file), then run ci-workflow again: nothing was written, the file "
            "there is as it was"
        ) from None
    shown = relative(workspace.root, path.resolve())  # -o may point anywhere: shown whole when outside
    shared = [d for d in ci_databases(workspace) if len(d.services) > 1]
    print(f"wrote {shown}: one job, audit then migrate-all on {postgres_image.strip()}")
    print(f"  install step: {step}")
    for database in shared:
        print(f"  {', '.join(database.services)} share the database {database.name}")


@task(
    auto_shortflags=False,  # long flags only: an automatic -h would be --hooks, not help
    help={
        "image_template": "each service's image; {service} is replaced (default {service}:latest)",
        "namespace": "the namespace of the Jobs (default: default)",
        "service_account": "the Jobs' serviceAccountName (default: the namespace's; its token is never mounted)",
        "image_pull_secrets": "imagePullSecrets of the Jobs: Secret names, comma-separated",
        "hooks": "helm or argocd: annotate the Jobs as pre-install/pre-upgrade or PreSync hooks, wave by wave",
        "runner_image": "an image with migratekit (python -m migratekit), for services whose own image has no "
        "runner migratekit can run: the Job copies the migrations from the service's image into it",
        "output": "the directory to write one Job per service into (default k8s/migratekit)",
        "root": ROOT_HELP,
    },
)
@user_errors
def k8s_render(
    c: Context,
    image_template: str = "{service}:latest",
    namespace: str = "default",
    service_account: str | None = None,
    image_pull_secrets: str = "",
    hooks: str | None = None,
    runner_image: str | None = None,
    output: str = "k8s/migratekit",
    root: str | None = None,
) -> None:
    """Write a Kubernetes Job per service that migrates it as migrate-all does, labelled with its wave."""
    from migratekit.integrations import k8s

    options = k8s.Options(
        image_template=image_template,
        namespace=namespace,
        service_account=service_account,
        pull_secrets=tuple(name.strip() for name in image_pull_secrets.split(",") if name.strip()),
        hooks=hooks,
        runner_image=runner_image,
    )
    workspace = workspace_at(root)
    workspace.require_services()
    rendered = k8s.render(workspace, options)
    written, removed = k8s.write(rendered, workspace.root / output, workspace.root)
    for line in _rendered_text(rendered, written, removed, options, output):
        print(line)


def _rendered_text(
    rendered: list[k8s.Rendered], written: list[Path], removed: list[Path], options: k8s.Options, output: str
) -> list[str]:
    """What k8s-render says: each Job, its wave and runner, then what it needs and how to run them in order."""
    from migratekit.integrations import k8s

    waves = max((one.wave for one in rendered), default=0)
    lines = [f"wrote {len(written)} Job(s) in {output} (namespace {options.namespace}), in {waves} wave(s):"]
    width = max((len(one.service) for one in rendered), default=0)
    for one in rendered:
        deadline = (
            "no deadline: statement_timeout 0 is no limit"
            if one.deadline is None
            else f"deadline {one.deadline} s: statement_timeout {one.statement_timeout} for each of "
            f"{one.statements} statement(s), plus the runner's waits"
        )
        files = f"{one.format} files {'copied from' if one.runner.image else 'at'} {one.runner.migrations}"
        lines.append(f"  wave {one.wave}  {one.service:<{width}}  {one.name}")
        lines += [f"    {one.runner.describe}", f"    {files}, into {one.tracking_table}", f"    {deadline}"]
    lines += [f"removed {p.name}: a Job of a service no longer in the workspace" for p in removed]
    lines.append("each Job reads DATABASE_URL from the Secret <service>-db-credentials (key url), which must exist")
    if options.hooks:
        tool = {"helm": "Helm", "argocd": "Argo CD"}[options.hooks]
        lines.append(
            f"{tool} runs them wave by wave before the release's other resources: the Secrets cannot be among those"
        )
    else:
        lines.append(f"apply them one wave at a time (label {k8s.WAVE_LABEL}), each once the one before has completed,")
        lines.append("or let Helm or Argo CD order them: --hooks helm|argocd")
    return lines
