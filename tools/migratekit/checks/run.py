"""Every rule, run: the audit of each service, the workspace and the ignores, and where every hit becomes a Finding.

`invoke audit` runs the rules over every selected service, then the workspace, then the ignores;
`findings_of` is the one place a rule's hit becomes a Finding, whatever the rule's scope.

A scope's rules are handed their input (a service's migrations, one statement, its wiring, git's history,
the whole workspace) and yield hits: (path, line, message) for one service's scopes, (service, path, line,
message) for the workspace's. Each hit becomes one Finding here, with the rule's code, severity and hint.
"""

from __future__ import annotations

import functools
import os
import signal
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from migratekit import interrupts
from migratekit.checks import baseline as baselines
from migratekit.checks import cache
from migratekit.checks.rule import Finding, Rule, Scope, Severity, StaleIgnore, rules_for
from migratekit.checks.rules import mk1_files, mk3_safety, mk5_workspace, mk12_history
from migratekit.checks.sql.context import Context, FileState, Schema, ServiceFacts, ServiceObjects
from migratekit.checks.sql.statements import advance, ignore_comments, service_facts
from migratekit.checks.wiring import deploy
from migratekit.checks.wiring.collect import collect
from migratekit.collector import collector_paused
from migratekit.model.formats import AUTO, Format
from migratekit.model.migration import Migration
from migratekit.model.runner_table import own_history
from migratekit.model.selection import select
from migratekit.model.workspace import Workspace, relative


@dataclass(frozen=True)
class AuditReport:
    root: Path
    services: tuple[str, ...]
    findings: tuple[Finding, ...]
    changed_since: str | None = None
    baseline: str | None = None  # the baseline file the findings were filtered by (repository-relative)
    accepted: int = 0  # findings the baseline accepts, not listed
    fixed: int = 0  # findings the baseline accepts that are gone

    @property
    def errors(self) -> int:
        return sum(f.severity is Severity.ERROR for f in self.findings)

    @property
    def warnings(self) -> int:
        return sum(f.severity is Severity.WARNING for f in self.findings)


def audit(
    workspace: Workspace,
    only: list[str] | None = None,
    changed_since: str | None = None,
    environ: Mapping[str, str] | None = None,
    use_cache: bool = True,
    baseline: Path | None = None,
) -> AuditReport:
    """Audit `only` these services (default all; with changed_since, those changed since the ref); with a
    baseline file, list only the findings it does not accept."""
    env = os.environ if environ is None else environ
    order = select(workspace, only, changed_since=changed_since)
    selected = set(order)
    repo = deploy.scan(workspace.root, {name: s.path for name, s in workspace.services.items()})
    with collector_paused():
        audited = dict(zip(order, _map_services(workspace, order, use_cache, repo), strict=True))
        for name in workspace.order():  # what the others create: a reference to it is judged against it
            if name not in audited:
                audited[name] = lint_service_cached(workspace, name, use_cache)
        if use_cache:  # every service's lint is read: its entries as its files are now are the ones kept
            cache.keep_readings_of(workspace.root, [s.path for s in workspace.services.values()])
            cache.keep_lint_of(workspace.root, [entry for each in audited.values() for entry in each.entries])
        found: list[Finding] = [f for name in order for f in audited[name].findings]
        objects = {name: each.objects for name, each in audited.items()}
    if changed_since:
        for service in (workspace.services[n] for n in order):
            history = mk12_history.service_history(workspace, service, changed_since)
            found += findings_of(Scope.HISTORY, history, service=service.name)
    found += [f for f in findings_of(Scope.WORKSPACE, workspace, env) if f.service is None or f.service in selected]
    found += [f for f in findings_of(Scope.OBJECTS, workspace, objects, env) if f.service in selected]

    kept, used = [], set()
    for finding in found:
        silenced = _silenced_by(workspace, finding)
        if silenced is None:
            kept.append(finding)
        else:
            used.add((finding.service, silenced))
    stale = [s for s in mk5_workspace.stale_service_ignores(workspace, used) if s.service in selected]
    if stale:
        kept += findings_of(Scope.IGNORES, stale)

    rank = {name: i for i, name in enumerate(workspace.order())}
    kept.sort(key=lambda f: (rank.get(f.service or "", -1), f.path or "", f.line or 0, f.code))
    if baseline is None:
        return AuditReport(workspace.root, tuple(order), tuple(kept), changed_since)
    whole = baseline.resolve()
    shown = relative(workspace.root, whole) if whole.is_relative_to(workspace.root) else str(baseline)
    named_by = workspace.baseline_declared if whole == workspace.baseline else None
    filtered = baselines.apply(baselines.read(baseline, shown, named_by), kept, order)
    return AuditReport(
        workspace.root, tuple(order), filtered.new, changed_since, shown, filtered.accepted, filtered.fixed
    )


def _silenced_by(workspace: Workspace, finding: Finding) -> str | None:
    """The workspace.yaml ignore that silences `finding`: its code, or `files:code` for a per-file one."""
    if finding.service is None:
        return None
    service = workspace.services[finding.service]
    if finding.code in service.ignore:
        return finding.code
    if finding.path is None or not service.ignore_files:
        return None
    where = workspace.root / finding.path
    for each in service.ignore_files:
        if each.covers(service.path, where, finding.code):
            return f"{each.files}:{finding.code}"
    return None


PARALLEL_FROM = 16  # services; below this, starting worker processes costs more than it saves


def audit_service(
    workspace: Workspace,
    name: str,
    use_cache: bool = True,
    repo: deploy.Repository | None = None,
    linted: cache.Lint | None = None,
) -> cache.Lint:
    """Lint and wiring findings of one service (independent of every other service), and what its migrations
    create and use (which the workspace's rules compare across services); `linted`: its lint, already read."""
    lint = linted if linted is not None else lint_service_cached(workspace, name, use_cache)
    wiring = collect(workspace.services[name], workspace.root, repo, use_cache)
    return lint._replace(findings=lint.findings + findings_of(Scope.WIRING, wiring, service=name))


def lint_service_cached(workspace: Workspace, name: str, use_cache: bool = True) -> cache.Lint:
    """The lint of one service's migrations, from the cache when its files have not changed."""
    service = workspace.services[name]
    where = relative(workspace.root, service.migrations_dir)
    quick = cache.stat_key(service, where) if use_cache else None
    found = cache.load(workspace.root, quick, name) if quick else None
    if found is None:
        migrations = service.load_migrations(mixed=True)  # MK117 names a mix
        entry = cache.key(service, migrations, where) if use_cache else None
        found = cache.load(workspace.root, entry, name) if entry else None
        if found is None:
            found = cache.Lint(
                *lint_service(
                    name,
                    service.migrations_dir,
                    migrations,
                    workspace.root,
                    service.settings.tracking_table,
                    service.settings.gaps == "allow",
                    service.settings.format,
                    service.settings.type_advice,
                )
            )
        if quick and entry:
            cache.store(workspace.root, quick, entry, found.findings, found.objects)
            found = found._replace(entries=(quick, entry))
    return _own_table(service.path, found)


def _unchanged(workspace: Workspace, name: str) -> cache.Lint | None:
    """The lint of a service whose migrations directory is as the cache last saw it (names, sizes, mtimes),
    without reading a file; None when it is not."""
    service = workspace.services[name]
    found = cache.load(workspace.root, cache.stat_key(service, relative(workspace.root, service.migrations_dir)), name)
    return None if found is None else _own_table(service.path, found)


def _own_table(service_path: Path, found: cache.Lint) -> cache.Lint:
    if own_history(service_path) is not None:  # its runner creates its own table (MK604 judges it), not 001_init
        return found._replace(findings=[f for f in found.findings if f.code != "MK111"])
    return found


def _map_services(workspace: Workspace, names: list[str], use_cache: bool, repo: deploy.Repository) -> list[cache.Lint]:
    """Audit services on every core: parsing SQL is CPU-bound and services are independent. A service whose
    files are unchanged is audited here, from the cache: a worker would cost more than reading it."""
    done: dict[str, cache.Lint] = {}
    if use_cache:
        for name in names:
            linted = _unchanged(workspace, name)
            if linted is not None:
                done[name] = audit_service(workspace, name, use_cache, repo, linted)
    rest = [name for name in names if name not in done]
    workers = min(os.cpu_count() or 1, len(rest) // PARALLEL_FROM + 1)
    if workers >= 2:
        import multiprocessing  # (with the pool below: a warm audit never starts one)

        if "fork" in multiprocessing.get_all_start_methods():
            from concurrent.futures import ProcessPoolExecutor

            from pglast import parser  # noqa: F401 (loaded once, before the fork, rather than in each worker)

            chunk = max(1, len(rest) // (workers * 4))
            context = multiprocessing.get_context("fork")
            with ProcessPoolExecutor(workers, mp_context=context, initializer=_worker_signals) as pool:
                arguments = [workspace] * len(rest), rest, [use_cache] * len(rest), [repo] * len(rest)
                try:
                    held = signal.pthread_sigmask(signal.SIG_BLOCK, interrupts.SIGNALS)  # workers fork with them held
                    try:
                        results = pool.map(audit_service, *arguments, chunksize=chunk)  # (every worker forked)
                    finally:
                        signal.pthread_sigmask(signal.SIG_SETMASK, held)  # one that came meanwhile is raised here
                    for name, linted in zip(rest, results, strict=True):
                        done[name] = linted
                        if interrupts.requested():  # asked while its exception could not be raised: now
                            raise interrupts.Interrupted(interrupts.signal_number() or signal.SIGINT)
                except BaseException:  # a Ctrl-C, a SIGTERM: stop now, not after the services each worker holds
                    for worker in multiprocessing.active_children():  # the pool's alone: the audit starts no other
                        worker.kill()
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise
    for name in rest:
        if name not in done:
            done[name] = audit_service(workspace, name, use_cache, repo)
    return [done[name] for name in names]


def _worker_signals() -> None:
    """A Ctrl-C reaches every process of the group: a worker leaves it, and a SIGTERM, to the audit, which stops
    the workers itself (an interrupt raised in a worker came back through the pool, or not at all, as a
    traceback). A signal that came while it was forked, held until now, is dropped with them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, interrupts.SIGNALS)


def findings_of(scope: Scope, *subject: Any, service: str | None = None, root: Path | None = None) -> list[Finding]:
    """Every rule of `scope` over `subject`, each hit a Finding. With `service`, hits are (path, line, message)
    of that service; without, (service, path, line, message). A path given as a Path is shown from `root`."""
    found = []
    for declared in rules_for(scope):
        for hit in declared.check(*subject):
            owner, path, line, message = (service, *hit) if service is not None else hit
            if isinstance(path, Path) and root is not None:
                path = relative(root, path)
            found.append(declared.finding(owner, path, line, message))
    return found


def proposed_settings(workspace: Workspace, environ: Mapping[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """What `invoke init` writes for each service from what its migrations use of the others' (MK504): the
    lint of each service, from the cache when it is there (the audit init runs next reads it again)."""
    env = os.environ if environ is None else environ
    with collector_paused():
        objects = {name: lint_service_cached(workspace, name)[1] for name in workspace.order()}
    return mk5_workspace.proposed_settings(workspace, objects, env)


def across_services(workspace: Workspace) -> list[Finding]:
    """Every MK6xx finding (drift across services), rule by rule: what `invoke drift` adds to a database's."""
    return findings_of(Scope.ACROSS, workspace)


def lint_service(
    service: str,
    directory: Path,
    migrations: tuple[Migration, ...],
    root: Path,
    tracking_table: str,
    gaps_allowed: bool = False,
    declared: str = AUTO,
    type_advice: bool = False,
) -> tuple[list[Finding], ServiceObjects]:
    """Every MK1xx, MK2xx and MK3xx finding for one service's migrations directory (with `type_advice`, the
    workspace's setting, MK329-MK332 too), and what the migrations create and use (read from the same parse
    trees, as the statement rules walk them)."""

    bounded = len(migrations) >= BOUNDED_FROM
    facts = service_facts(migrations, type_advice, tracking_table, forget=bounded)
    d = mk1_files.Directory(service, directory, migrations, tracking_table, gaps_allowed, declared)
    findings = findings_of(Scope.FILES, d, service=service, root=root)
    where = relative(root, directory)
    schema = Schema()  # what the earlier migrations left, carried from file to file
    for migration in facts.migrations:  # those that parse
        path = f"{where}/{migration.filename}"
        state = FileState(earlier=schema, one_transaction=migration.transaction_mode()[0], path=path)
        findings.extend(lint_file(service, path, migration, facts, state))
        schema = state.after()
        if bounded:
            migration.forget_trees()
    return findings, schema.service_objects()


# Migrations in one service from which its files' parse trees are held one file at a time: each is parsed again
# to be linted (and once more for a fact of the whole service a rule asks late) instead of all trees staying
# until the service is done, some 50 KB a file of the seed's template (470 MB for 8,000 files).
BOUNDED_FROM = 2_000


@functools.cache
def _by_kind() -> dict[str, tuple[Rule, ...]]:
    """Statement rules by the node types they read, then the rules of every statement (under "*" alone)."""
    by_kind: dict[str, list[Rule]] = defaultdict(list)
    for statement_rule in rules_for(Scope.STATEMENT):
        for kind in statement_rule.kinds:
            by_kind[kind].append(statement_rule)
    every = tuple(by_kind.pop("*", ()))
    return {kind: (*rules, *every) for kind, rules in by_kind.items()} | {"*": every}


@functools.cache
def _by_format(fmt: Format, idempotency: bool, unhit: frozenset[str] = frozenset()) -> dict[str, tuple[Rule, ...]]:
    """The statement rules by node type that judge a file of this format (mk1_files.judges), the MK2xx family's
    only when `idempotency` (mk1_files.judges_idempotency), none of `unhit` (the file's text says they find
    nothing in it)."""

    def judged(code: str) -> bool:
        if code in unhit:
            return False
        return idempotency if code.startswith("MK2") else mk1_files.judges(code, fmt)

    return {kind: tuple(r for r in rules if judged(r.code)) for kind, rules in _by_kind().items()}


@functools.cache
def _text_tested() -> tuple[Rule, ...]:
    """The statement rules with a test of a file's text (Rule.may_hit)."""
    return tuple(r for r in rules_for(Scope.STATEMENT) if r.may_hit is not None)


def _unhit(sql: str) -> frozenset[str]:
    """The statement rules that can hit no statement of `sql`, by their own test of its text: each is asked once
    a file rather than once a statement."""
    return frozenset(r.code for r in _text_tested() if r.may_hit is not None and not r.may_hit(sql))


_NONE_SILENCED: Mapping[str, int] = MappingProxyType({})  # a statement without ignore comments


def lint_file(
    service: str, path: str, migration: Migration, facts: ServiceFacts, state: FileState | None = None
) -> list[Finding]:
    """The statement rules over one file; `state` starts from what the service's earlier migrations left."""
    statements = migration.statements
    ignores = ignore_comments(migration.text, statements)
    used: set[tuple[int, str]] = set()
    state = state if state is not None else FileState()
    findings = []
    idempotency = mk1_files.judges_idempotency(migration.format, state.one_transaction)
    unhit = _unhit(migration.sql) if facts.type_advice else _unhit(migration.sql) | mk3_safety.TYPE_ADVICE
    by_kind = _by_format(migration.format, idempotency, unhit)
    every = by_kind["*"]
    for index, statement in enumerate(statements):
        judged = by_kind.get(statement.kind, every)
        if judged:
            ctx, node = Context(migration, statement, state, facts), statement.node
            silenced = ignores.get(index, _NONE_SILENCED)
            for statement_rule in judged:
                for line, message in statement_rule.check(ctx, node):
                    code = statement_rule.code
                    if code in silenced:
                        used.add((silenced[code], code))
                        continue
                    findings.append(statement_rule.finding(service, path, line or statement.line, message))
        advance(state, statement)
    stale = [
        StaleIgnore(True, service, path, line, code)
        for codes in ignores.values()
        for code, line in codes.items()
        if (line, code) not in used
    ]
    if stale:
        findings += findings_of(Scope.IGNORES, stale)
    return findings
