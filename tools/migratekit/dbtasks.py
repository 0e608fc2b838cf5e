"""The Invoke tasks that manage the embedded PostgreSQL: db-up, db-down, db-url (part of `tasks.ns`)."""

from __future__ import annotations

from pathlib import Path

from invoke import Context, task

from migratekit import report
from migratekit.databases import resolve
from migratekit.taskflags import ROOT_HELP, user_errors, workspace_at
from migratekit.workspace import find_root


@task(help={"root": ROOT_HELP, "json": "print JSON instead of text"})
@user_errors
def db_up(c: Context, root: str | None = None, json: bool = False) -> None:
    """Start the embedded PostgreSQL and create a database for each service without a URL."""
    from migratekit.embedded import Embedded
    from migratekit.servers import running_servers

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
        print(report.as_json(info))
        return
    out = report.console()
    for line in report.db_up_text(server, rows, orphans):
        out.print(line)


@task(
    help={
        "root": ROOT_HELP,
        "orphans": "instead, stop every migratekit server on this machine whose checkout is gone (and its data)",
    }
)
@user_errors
def db_down(c: Context, root: str | None = None, orphans: bool = False) -> None:
    """Stop the embedded PostgreSQL (its data stays for the next db-up)."""
    from migratekit.embedded import Embedded
    from migratekit.servers import stop_orphans

    if orphans:
        stopped = stop_orphans()
        for line in report.orphans_stopped_text(stopped):
            print(line)
        return
    stopped_one = Embedded(find_root(Path(root)) if root else find_root()).stop()
    print("embedded PostgreSQL stopped" if stopped_one else "embedded PostgreSQL was not running")


@task(help={"root": ROOT_HELP})
@user_errors
def db_url(c: Context, service: str, root: str | None = None) -> None:
    """Print where SERVICE's database is (a password in its URL variable shows as ***)."""
    from migratekit.databases import connection_urls, redact

    workspace = workspace_at(root)
    url = connection_urls(workspace.root, [workspace.get(service)], notify=report.console(stderr=True).print)[service]
    print(redact(url or ""))
