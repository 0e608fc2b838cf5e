"""The Invoke tasks that take over a monorepo and its history: init, adopt, baseline, status, forget."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

from invoke import Context, Exit, task

from migratekit import interrupts
from migratekit.cli import render
from migratekit.cli.flags import ROOT_HELP, user_errors, workspace_at
from migratekit.model.selection import select
from migratekit.model.settings import WORKSPACE_FILE, RunOptions

if TYPE_CHECKING:
    from migratekit.model.workspace import Workspace


@task(
    help={
        "service": "only this service",
        "json": "print JSON",
        "quiet": "show only the services and migrations that are not up to date (and the total)",
        "exit_code": "exit 1 when a migration is pending, out of order, changed or missing its file, or a database "
        "does not exist yet (without it, status exits 0 whatever it finds)",
        "timeline": "list what was recorded across services, newest first, instead of a block per service",
        "since": "with or without --timeline: only what was recorded since this date, time or age "
        "(2026-12-01, 2026-12-01T09:30, 7d, 12h)",
        "root": ROOT_HELP,
    },
    auto_shortflags=False,
)
@user_errors
def status(
    c: Context,
    service: str | None = None,
    json: bool = False,
    quiet: bool = False,
    exit_code: bool = False,
    timeline: bool = False,
    since: str | None = None,
    root: str | None = None,
) -> None:
    """Each migration of each service: applied (when, how long), adopted, baselined, pending, changed or missing.

    Exit code: 0, unless --exit-code and something is not up to date (1), or a database cannot be read
    (unreachable, or its tracking table is another tool's: 1 always); 2 for a usage or configuration error.
    """
    from datetime import UTC, datetime

    from migratekit.database import drift
    from migratekit.database.urls import workspace_urls

    cutoff = drift.since_time(since, datetime.now(UTC)) if since is not None else None
    workspace = workspace_at(root)
    names = select(workspace, [service] if service else None)
    services = [workspace.services[n] for n in names]
    notify = render.console(True).print
    urls = workspace_urls(workspace, services, create=False, notify=notify)
    statuses = [drift.service_status(workspace, name, urls.get(name)) for name in names]
    recorded = drift.timeline(statuses, cutoff) if timeline or since is not None else None
    if json:
        print(render.as_json({"services": statuses} if recorded is None else {"timeline": recorded}))
    else:
        out = render.console()
        shown = render.status_text(statuses, quiet) if recorded is None else render.timeline_text(recorded, since)
        for part in shown:
            out.print(part)
    if not all(s.readable for s in statuses) or (exit_code and not all(s.up_to_date for s in statuses)):
        raise Exit(code=1)


@task(
    help={
        "service": "the service whose row to remove",
        "version": "the recorded version to remove (the file name without .sql)",
        "yes": "remove it; without --yes, only say what would be removed",
        "root": ROOT_HELP,
    }
)
@user_errors
def forget(c: Context, service: str, version: str, yes: bool = False, root: str | None = None) -> None:
    """Remove one wrongly recorded tracking row (under the migration lock); the next migrate re-runs its file."""
    from migratekit.database.history import forget as forget_row
    from migratekit.database.urls import existing_url

    workspace = workspace_at(root)
    url = existing_url(workspace, service, "there is no row to forget")
    row = forget_row(workspace, service, url, version, yes)
    verb = "removed" if row.removed else "would remove (run again with --yes)"
    print(f"{service}: {verb} the row {row.version} (checksum {row.checksum}, applied {row.applied_at})")


@task(
    help={
        "service": "the service whose other tool's history to import",
        "from_": "the tool: auto (default: the one whose table is there), golang-migrate, dbmate, goose, flyway, "
        "node-pg-migrate, kysely, sqlx, diesel, prisma, or own-runner (the table the service's hand-written runner "
        "creates)",
        "dry_run": "say what would be recorded, and change nothing",
        "root": ROOT_HELP,
    }
)
@user_errors
def adopt(c: Context, service: str, from_: str = "auto", dry_run: bool = False, root: str | None = None) -> None:
    """Import another tool's history as migratekit's rows (nothing runs; the other tool's table is kept)."""
    from migratekit.database.history import adopt as import_history
    from migratekit.database.urls import existing_url
    from migratekit.model.identity import shared_databases
    from migratekit.model.runner_table import own_history
    from migratekit.model.workspace import relative

    workspace = workspace_at(root)
    chosen = workspace.get(service)
    url = existing_url(workspace, service, "there is no history to adopt")
    migrations = chosen.load_migrations()
    ordered = [workspace.services[n] for n in workspace.order()]
    group = next((g for _, g in shared_databases(ordered) if service in g), [service])
    neighbours = tuple(m for n in group if n != service for m in workspace.services[n].load_migrations())
    own = own_history(chosen.path)
    done = import_history(
        service, url, migrations, chosen.settings, RunOptions(dry_run=dry_run), from_, neighbours, own
    )
    verb = "would record" if done.dry_run else "recorded"
    print(
        f"{service}: {verb} {len(done.imported)} version(s) from {done.tool}'s {done.table} into "
        f"{chosen.settings.tracking_table} ({', '.join(done.imported) or 'none'}); "
        f"{len(done.already)} were already there"
    )
    if done.unmatched:
        print(
            f"{service}: {done.table} also names {len(done.unmatched)} file(s) not in "
            f"{relative(workspace.root, chosen.migrations_dir)}, not recorded: {', '.join(done.unmatched)}"
        )
    if done.edited:
        print(
            f"{service}: warning: {done.table} records another checksum than the file has now for "
            f"{', '.join(done.edited)}: edited after {done.tool} applied it ({done.tool}'s deploy does not compare "
            "them either); recorded with the file's checksum as it is: check that the database matches the file"
        )


@task(
    help={
        "service": "the service whose existing work to record",
        "to": "record every version up to and including this one as applied, without running it",
        "check": "first replay those versions into a throwaway database and refuse if the schemas differ",
        "root": ROOT_HELP,
    }
)
@user_errors
def baseline(c: Context, service: str, to: str, check: bool = False, root: str | None = None) -> None:
    """Record migrations the database already reflects as applied (with --check, proven by a replay)."""
    from migratekit.database.history import baseline as record
    from migratekit.database.scratch import scratch_session
    from migratekit.database.urls import existing_url

    workspace = workspace_at(root)
    url = existing_url(workspace, service, "there is nothing to baseline")
    with scratch_session(workspace.root) if check else nullcontext() as server:  # a Ctrl-C drops it (flags)
        done = record(workspace, service, url, to, server)
    proof = " (its schema matches a replay)" if done.checked else ""
    print(f"{service}: recorded {', '.join(done.recorded) or 'nothing new'} as applied{proof}")


@task(
    help={
        "update": "add the services workspace.yaml lacks, keeping its comments and order",
        "root": ROOT_HELP,
        "write_baseline": "also accept the audit's findings in the files already here: write them to this file "
        "and name it as workspace.yaml's baseline",
    }
)
@user_errors
def init(c: Context, update: bool = False, root: str | None = None, write_baseline: str | None = None) -> None:
    """Write workspace.yaml declaring every service found, with what can be detected (format, depends_on from
    what the migrations use of the others')."""
    from migratekit.checks.run import proposed_settings
    from migratekit.errors import ConfigError
    from migratekit.scaffold.workspace_yaml import init_workspace

    workspace = workspace_at(root)
    if write_baseline is not None:  # before workspace.yaml is written: a baseline it cannot write changes nothing
        from migratekit.checks.baseline import writable

        writable(workspace.root / write_baseline, workspace.root, write_baseline)
    kept = [_as_it_is(workspace.root / write_baseline)] if write_baseline is not None else []
    kept.append(_as_it_is(workspace.root / WORKSPACE_FILE))
    done = init_workspace(workspace, update, proposed_settings)
    try:
        offered = _offer_baseline(workspace_at(root), write_baseline)
    except (ConfigError, interrupts.Interrupted) as exc:  # a baseline that could not be written, a Ctrl-C during
        # the audit: nothing init wrote stays
        failed = [str(path) for path, ok in ((k[0], _put_back(*k)) for k in kept) if not ok]
        after = (
            f"; {WORKSPACE_FILE} is as it was"
            if not failed
            else f"; and {', '.join(failed)} could not be put back as it was: look at it before running init again"
        )
        if isinstance(exc, interrupts.Interrupted):
            raise interrupts.Interrupted(exc.signum, after) from None
        raise ConfigError(f"{exc}{after}") from None
    if done.layout is not None:
        found = f"services_dir: {done.layout.services_dir}, migrations: {done.layout.migrations}"
        others = f"; not declared, another shape: {', '.join(done.layout.others)}" if done.layout.others else ""
        print(f"{done.path.name}: no service in a known place; the migrations directories say {found}{others}")
    for name in done.mixed:
        print(f"{done.path.name}: {name}'s files mix formats: declared the most common; invoke audit names the rest")
    for name, proposal in done.proposed.items():
        settings = [f"depends_on: [{', '.join(proposal['depends_on'])}]"]
        settings += [f"{key}: {proposal[key]}" for key in ("database", "tracking_table") if key in proposal]
        print(f"{done.path.name}: {name}: {', '.join(settings)} (what its migrations use of the others')")
    print(
        f"{done.path.name}: declared {', '.join(done.added) or 'nothing new'}; check each depends_on (a service "
        "that needs another only at run time, through its API, needs one too)"
    )
    if offered:
        print(offered)


def _as_it_is(path: Path) -> tuple[Path, bytes | None]:
    """The file at `path` (through a link) and its bytes now, None where there is none: what `_put_back` writes."""
    from migratekit.files import resolved

    path = resolved(path) or path
    try:
        return path, path.read_bytes() if path.is_file() else None
    except OSError:
        return path, None


def _put_back(path: Path, before: bytes | None) -> bool:
    """The file at `path` as it was (removed where there was none); False where that could not be written."""
    from migratekit.files import staged

    try:
        if before is None:
            path.unlink(missing_ok=True)
        elif not path.is_file() or path.read_bytes() != before:
            with staged(path, errors="surrogateescape") as out:
                out.write(before.decode("utf-8", "surrogateescape"))
    except OSError:
        return False
    return True


def _offer_baseline(workspace: Workspace, target: str | None) -> str | None:
    """A monorepo with history has findings in files already applied, which cannot be edited (their checksums
    are recorded): offer to accept them, so that the audit fails only on what is new. What to say, after the rest
    of init's lines; ConfigError where the baseline or its name in workspace.yaml cannot be written."""
    from migratekit.checks import baseline as baselines
    from migratekit.checks.run import audit
    from migratekit.scaffold.workspace_yaml import name_baseline

    if not any(s.migrations_dir.is_dir() and any(s.migrations_dir.iterdir()) for s in workspace.services.values()):
        return None
    report = audit(workspace)
    if target is None:
        if report.findings:
            return (
                f"the audit finds {report.errors} error(s) and {report.warnings} warning(s) in the files already here; "
                "to accept them (files already applied cannot be edited) and fail only on new ones: "
                "invoke init --update --write-baseline migratekit-baseline.json"
            )
        return None
    baselines.write(workspace.root / target, baselines.document(report.findings), target)
    name_baseline(workspace, Path(target).as_posix())
    return f"{target}: accepted {len(report.findings)} finding(s); workspace.yaml names it as the audit's baseline"
