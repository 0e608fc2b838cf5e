"""What a person reads: each command's text output, piped (as in CI) and on terminals 80 and 200 columns wide.

User text (names, paths, SQL, server messages) is shown as written, never read as rich markup, and every
outcome a run can end in has its rendering.
"""

from __future__ import annotations

import dataclasses
import inspect
import io
import re
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO, Monorepo, plain
from migratekit.checks.rule import Finding, Severity, all_rules
from migratekit.checks.run import AuditReport
from migratekit.cli import render
from migratekit.database.drift import (
    Applying,
    DriftState,
    Entry,
    EntryKind,
    Item,
    ItemKind,
    Matrix,
    ServiceDrift,
    ServiceStatus,
)
from migratekit.database.embedded import Binaries, EmbeddedServer
from migratekit.database.results import Applied, Failure, Outcome, Result
from migratekit.database.schema import Difference
from migratekit.database.servers import RunningServer
from migratekit.database.verify import ImageCheck, Verification
from migratekit.model.inventory import GraphNode, ServiceGraph, ServiceInfo

WIDTHS = [None, 80, 200]  # piped, then two terminals


def seen(output: str) -> str:
    """What the text says, whatever the width: colours out, lines joined (a terminal wraps long ones)."""
    return " ".join(plain(output).split())


@pytest.fixture
def updown(monorepo: Callable[..., Monorepo]) -> Monorepo:
    """A service `g` in golang-migrate's layout with three migrations applied."""
    repo = monorepo({"g": {"language": "go"}})
    for n, name in enumerate(("one", "two", "three"), start=1):
        repo.migration("g", f"00{n}_{name}.up.sql", f"CREATE TABLE IF NOT EXISTS t{n} (id int);\n")
        repo.migration("g", f"00{n}_{name}.down.sql", f"DROP TABLE IF EXISTS t{n};\n")
    assert repo.invoke("migrate-all").returncode == 0
    return repo


def test_a_rollback_says_what_it_rolled_back(updown: Monorepo) -> None:
    said = {}
    for args, terminal in [
        (("--steps", "2", "--dry-run"), None),
        (("--steps", "2"), 80),
        (("--to", "001_one"), 200),  # nothing after it is applied any more
        ((), None),
    ]:
        done = updown.invoke("rollback", "g", *args, terminal=terminal)
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.stdout + done.stderr
        assert ("\x1b[" in done.stdout) is (terminal is not None)  # colour only on a terminal
        (row,) = [line for line in plain(done.stdout).splitlines() if line.startswith("│ g ")]
        said[args] = (row.split("│")[-2].strip(), seen(done.stdout).split(" g: ", 1)[1])
    assert said == {
        ("--steps", "2", "--dry-run"): ("planned", "would roll back 003_three, 002_two"),
        ("--steps", "2"): ("rolled back", "rolled back 003_three, 002_two; 1 still applied"),
        ("--to", "001_one"): ("rolled back", "nothing to roll back; 1 still applied"),
        (): ("rolled back", "rolled back 001_one; 0 still applied"),
    }
    assert updown.query("g", "SELECT count(*) FROM schema_migrations") == [(0,)]


def test_a_failed_rollback_names_the_file_and_line(updown: Monorepo) -> None:
    updown.migration("g", "003_three.down.sql", "DELETE FROM t3;\nSELECT 1/0;\n")
    failed = updown.invoke("rollback", "g", terminal=80)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "g: services/g/migrations/003_three.down.sql:2: rolling back: division by zero (SQLSTATE 22012)" in seen(
        failed.stdout
    )
    assert len(updown.query("g", "SELECT version FROM schema_migrations")) == 3


@pytest.mark.parametrize("terminal", [80, None], ids=["terminal", "piped"])
def test_a_file_that_is_not_utf_8_is_said_with_its_line_and_the_way_out(updown: Monorepo, terminal: int | None) -> None:
    """A run refuses it before anything of it runs, a rollback before its down part does: each as a person reads it."""
    directory = updown.root / "services/g/migrations"
    latin1 = "-- four\nCREATE TABLE t4 (name text DEFAULT 'café');\n".encode("latin-1")
    (directory / "004_four.up.sql").write_bytes(latin1)
    (directory / "004_four.down.sql").write_text("DROP TABLE IF EXISTS t4;\n")
    run = updown.invoke("migrate-all", terminal=terminal)
    assert run.returncode == 1, run.stdout + run.stderr
    said = seen(run.stdout + run.stderr)
    assert (
        "g: services/g/migrations/004_four.up.sql:2: byte 0xe9 is not UTF-8: the database would get U+FFFD in its "
        "place, not the text; save the file as UTF-8 (iconv -f latin1 -t utf-8 for a Latin-1 file), then run again"
    ) in said, said
    (directory / "004_four.up.sql").unlink()
    (directory / "004_four.down.sql").unlink()
    (directory / "003_three.down.sql").write_bytes("-- trois: supprimée\nDROP TABLE IF EXISTS t3;\n".encode("latin-1"))
    back = updown.invoke("rollback", "g", terminal=terminal)
    assert back.returncode == 2, back.stdout + back.stderr
    assert (
        "003_three.up.sql's down part (003_three.down.sql, line 1): byte 0xe9 is not UTF-8" in seen(back.stderr)
        and "nothing was rolled back" in back.stderr
    ), back.stderr
    assert len(updown.query("g", "SELECT version FROM schema_migrations")) == 3


def test_the_audit_shows_names_and_messages_as_written(monorepo: Callable[..., Monorepo]) -> None:
    repo = monorepo({"a": {}})
    repo.migration(
        "a",
        "001_init.sql",
        '-- Migration: 001_init\nCREATE TABLE "t[/]x" (id int);\nCREATE TABLE "[bold]b[/bold]" (id int);\n',
    )
    for terminal in WIDTHS:
        audit = repo.invoke("audit", "--service", "a", terminal=terminal)
        assert audit.returncode == 1 and "Traceback" not in audit.stderr, audit.stdout + audit.stderr
        text = seen(audit.stdout)
        assert "services/a/migrations/001_init.sql:2: CREATE TABLE t[/]x without IF NOT EXISTS" in text
        assert "services/a/migrations/001_init.sql:3: CREATE TABLE [bold]b[/bold] without IF NOT EXISTS" in text
        assert "fix: write CREATE TABLE IF NOT EXISTS" in text
        assert ("\x1b[" in audit.stdout) is (terminal is not None)


def test_services_never_cuts_a_name_and_shows_format_and_wave(monorepo: Callable[..., Monorepo]) -> None:
    """At 80 columns ten columns do not fit: a block per service, every name and version whole; wider, a table."""
    repo = monorepo({"billing-invoices": {}, "payments-reconciliation": {"depends_on": ["billing-invoices"]}})
    long = "004_add_invoice_line_items_with_tax_breakdown"
    repo.migration("billing-invoices", f"{long}.sql", "CREATE TABLE IF NOT EXISTS t (id int);\n")
    for terminal in WIDTHS:
        shown = repo.invoke("services", terminal=terminal)
        assert shown.returncode == 0, shown.stdout + shown.stderr
        text = plain(shown.stdout)
        assert "…" not in text and long in text and "payments-reconciliation" in text, text
        if terminal is None:  # a pipe has no width to fit: the table, whole
            header = next(line for line in text.splitlines() if "┃ service" in line)
            assert header.split()[1:6] == ["service", "┃", "format", "┃", "wave"], header
        else:  # wider than either terminal: a block per service, within its width
            assert "billing-invoices  wave 1, seed," in text and "payments-reconciliation  wave 2," in text, text
            assert "after billing-invoices" in text, text
            assert max(len(line) for line in text.splitlines()) <= terminal, text


def test_a_reader_that_stops_early_gets_no_traceback() -> None:
    """`invoke services --json | head -1`: the pipe closes before migratekit writes; it exits 1, quietly."""
    process = subprocess.Popen(
        [sys.executable, "-m", "invoke", "--search-root", str(REPO), "rules", "--json"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # before it has written anything: its start alone takes longer
    error = process.stderr.read()
    assert (process.wait(), error) == (1, ""), error


def test_a_rules_documentation_keeps_its_brackets(monorepo: Callable[..., Monorepo]) -> None:
    repo = monorepo({})
    for terminal in WIDTHS:
        shown = repo.invoke("rules", "--code", "MK501", terminal=terminal)
        assert shown.returncode == 0, shown.stdout + shown.stderr
        assert "Good: services: {payments: {depends_on: [authentication]}}" in seen(shown.stdout)  # it lost [...]


def printed(renderables: Iterable[Any], terminal: int | None, monkeypatch: pytest.MonkeyPatch, capsys) -> str:
    """What the tasks' own console (render.console) prints for `renderables`, piped or on a terminal that wide."""
    for variable in ("FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(variable, raising=False)
    if terminal is not None:
        monkeypatch.setenv("TTY_COMPATIBLE", "1")
        monkeypatch.setenv("TERM", "xterm-256color")
        monkeypatch.setenv("COLUMNS", str(terminal))
    capsys.readouterr()
    out = render.console()
    for renderable in renderables:
        out.print(renderable)
    return capsys.readouterr().out


@pytest.mark.parametrize("outcome", list(Outcome))
def test_every_outcome_has_its_rendering(outcome: Outcome, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from rich.style import Style

    style = render.OUTCOME_STYLE.get(outcome)
    assert style, f"Outcome.{outcome.name} has no style: add it to OUTCOME_STYLE in tools/migratekit/cli/render.py"
    Style.parse(style)  # a style rich knows
    failure = Failure("it stopped") if outcome in (Outcome.FAILED, Outcome.INTERRUPTED) else None
    result = Result("svc", outcome, applied=(Applied("001_a", "0" * 16, 1, True),), failure=failure)
    for terminal in WIDTHS:
        for shown in (
            [render.results_table([result]), *render.result_details([result])],
            render.rollback_text(result, dry_run=outcome is Outcome.PLANNED),
        ):
            out = printed(shown, terminal, monkeypatch, capsys)
            (row,) = [line for line in plain(out).splitlines() if line.startswith("│ svc ")]
            said = render.OUTCOME_LABEL[outcome]
            assert row.split("│")[-2].strip() == said
            if terminal:  # in its colour
                assert re.search(r"\x1b\[[0-9;]+m" + re.escape(said) + r"\x1b\[0m", out), repr(out)


H = "t[/]x[bold]b:smile:[red]"
NOW = "2026-12-04T18:00:00+00:00"  # markup, an emoji code and an unclosed tag: each must print as written


def everything_rendered() -> dict[str, list[Any]]:
    """Each text renderer of cli/render.py, given H wherever user or server text goes."""
    failure = Failure(H, file=H, line=2, hint=H)
    applied = (Applied(H, "0" * 16, 1, True),)
    finding = Finding("MK201", Severity.ERROR, H, H, 2, H, H)
    rule = dataclasses.replace(all_rules()[0], summary=H, doc=H, hint=H)
    drift = ServiceDrift(H, H, DriftState.DRIFT, 1, H, (Item(H, ItemKind.CHANGED, H),), message=H)
    orphan = RunningServer(1, Path(H), Path(H))
    return {
        "services_table": [
            render.services_table([ServiceInfo(H, H, (H,), 1, H, H, H, H, H, False, H, 1)], [H], width=width)
            for width in (1000, 40)  # a table, and a block per service where the table would not fit
        ],
        "graph_tree": [
            render.graph_tree(ServiceGraph((GraphNode(H, 1, (), H), GraphNode(H, 2, (H,), H)), ((H,), (H,))))
        ],
        "results_table": [render.results_table([Result(H, Outcome.FAILED, applied)], title=H)],
        "result_details": render.result_details([Result(H, Outcome.INTERRUPTED, applied, 0, (H,), 0, failure, (H,))]),
        "rollback_text": render.rollback_text(Result(H, Outcome.ROLLED_BACK, applied, failure=failure), False),
        "audit_text": list(render.audit_text(AuditReport(Path("/r"), (H,), (finding,), changed_since=H))),
        "rules_table": [render.rules_table([rule])],
        "rule_text": [render.rule_text(rule)],
        "verify_text": render.verify_text(
            [Verification(H, 1, failure, (failure,), ((H, Difference(H, H, H, H, H)),), H, (H,))],
            [ImageCheck(H, H), ImageCheck(H, None, (H,))],
            H,
        ),
        "drift_table": [render.drift_table([drift])],
        "drift_details": render.drift_details([drift], [finding]),
        "matrix_table": [render.matrix_table(Matrix((H,), ((H, (H,)),)))],
        "db_up_text": render.db_up_text(
            EmbeddedServer(Path(H), 5432, Binaries(Path(H), H)),
            [{"service": H, "database": H, "url_variable": H}],
            [orphan],
        ),
        "status_text": render.status_text(
            [ServiceStatus(H, H, DriftState.DRIFT, (Entry(H, EntryKind.CHANGED, NOW, 1, H),), message=H)]
        ),
        "status_totals": [render.status_totals([ServiceStatus(H, H, DriftState.UNREACHABLE, (), message=H)])],
        "timeline_text": render.timeline_text([Applying(NOW, H, H, EntryKind.ADOPTED, None, H)], since=H),
        "outcome_text": [render.outcome_text(Outcome.FAILED)],
        "totals_text": [render.totals_text([Result(H, Outcome.FAILED, applied)], 2.5)],
    }


def test_every_text_renderer_is_tested_here() -> None:
    renderers = {
        name
        for name, function in vars(render).items()
        if inspect.isfunction(function)
        and function.__module__ == render.__name__
        and not name.startswith("_")
        and re.search(r"\b(Text|Table|RenderableType)\b", str(function.__annotations__.get("return")))
    }
    assert renderers == set(everything_rendered())


@pytest.mark.parametrize("terminal", [None, 200])
def test_every_text_renderer_prints_user_text_as_written(
    terminal: int | None, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from rich.console import Console

    for name, renderables in everything_rendered().items():
        on_its_console = plain(printed(renderables, terminal, monkeypatch, capsys))
        anywhere = Console(file=io.StringIO(), width=terminal or 1000)  # rich's defaults: markup and emoji read
        for renderable in renderables:
            anywhere.print(renderable)
        for out in (on_its_console, anywhere.file.getvalue()):  # type: ignore[attr-defined]
            assert name in ("outcome_text", "totals_text") or H in out, (name, out)  # no user text in these
            assert "\N{SMILING FACE WITH OPEN MOUTH AND SMILING EYES}" not in out, name


def test_the_console_prints_a_string_as_written(capsys) -> None:
    render.console().print("started [bold]x[/] :smile:")  # a notice from the library, handed over as it is
    assert capsys.readouterr().out == "started [bold]x[/] :smile:\n"


def test_the_progress_log_prints_names_as_written(capsys) -> None:
    from migratekit.cli.progress import live_progress
    from migratekit.database.apply import Applying, Finished, Ran, WaveStarted

    with live_progress(render.console(stderr=True)) as progress:
        progress(WaveStarted(1, 2, (H,)))
        progress(Applying(H, H))
        progress(Ran(H, Applied(H, "0" * 16, 2500, True)))
        progress(Finished(Result(H, Outcome.APPLIED, (Applied(H, "0" * 16, 2500, True),), elapsed_ms=2600), 1, 2))
    assert capsys.readouterr().err.splitlines() == [
        f"wave 1 of 2: {H}",
        f"{H}: applying {H}",
        f"{H}: applied {H} in 2.5 s",
        f"{H}: 1 applied in 2.6 s (1 of 2 services)",
    ]


def test_the_live_board_shows_what_runs_and_how_many_are_done() -> None:
    from rich.console import Console

    from migratekit.cli.progress import _Board
    from migratekit.database.apply import Applying, Finished

    board = _Board()
    board.update(Applying("auth", "003_slow"))
    board.update(Applying("users", "001_init"))
    board.update(Finished(Result("users", Outcome.UP_TO_DATE), 1, 3))
    out = Console(file=io.StringIO(), width=120)
    out.print(board.render())
    text = out.file.getvalue()  # type: ignore[attr-defined]
    assert "migrating: 1 of 3 done" in text and "003_slow" in text and "users" not in text


@pytest.mark.parametrize(
    ("result", "said"),
    [
        (Result("a", Outcome.APPLIED, (Applied("1", "0" * 16, 5, True),) * 3, elapsed_ms=2500), "3 applied in 2.5 s"),
        (Result("a", Outcome.UP_TO_DATE, already_applied=3), "up to date"),
        (Result("a", Outcome.PLANNED, pending=("1", "2")), "would apply 2"),
        (
            Result("a", Outcome.FAILED, (Applied("1", "0" * 16, 5, True),), elapsed_ms=63_000),
            "failed after 1 applied in 1 min 3 s",
        ),
        (Result("a", Outcome.SKIPPED), "skipped"),
        (Result("a", Outcome.INTERRUPTED, elapsed_ms=40), "interrupted in 40 ms"),
        (Result("a", Outcome.ROLLED_BACK), "rolled back"),
    ],
)
def test_each_outcome_ends_its_service_in_the_log(result: Result, said: str) -> None:
    from migratekit.cli.progress import finished_text

    assert finished_text(result) == said


@pytest.mark.parametrize(
    ("results", "dry_run", "line"),
    [
        (
            [
                Result("a", Outcome.APPLIED, (Applied("001", "0" * 16, 5, True), Applied("002", "0" * 16, 5, True))),
                Result("b", Outcome.UP_TO_DATE, already_applied=3),
            ],
            False,
            "migrated 2 service(s): 2 applied, 0 failed, in 2.5 s",
        ),
        (
            [Result("a", Outcome.FAILED), Result("b", Outcome.SKIPPED), Result("c", Outcome.APPLIED)],
            False,
            "migrated 3 service(s): 0 applied, 1 failed, 1 skipped, in 2.5 s",
        ),
        ([Result("a", Outcome.PLANNED, pending=("001", "002"))], True, "planned 1 service(s): 2 would apply, in 2.5 s"),
    ],
)
def test_a_run_ends_with_its_totals_in_one_line(results: list[Result], dry_run: bool, line: str) -> None:
    assert render.totals_text(results, 2.5, dry_run).plain == line


@pytest.mark.parametrize(
    ("seconds", "shown"), [(0.0004, "0 ms"), (0.85, "850 ms"), (2.5, "2.5 s"), (2.04, "2.0 s"), (63.2, "1 min 3 s")]
)
def test_a_duration_reads_as_a_person_says_it(seconds: float, shown: str) -> None:
    assert render.duration(seconds) == shown


def test_migrate_all_piped_ends_with_the_totals(example_repo: Monorepo) -> None:
    try:
        result = example_repo.invoke("migrate-all")  # no URLs: the example's embedded cluster
    finally:
        example_repo.invoke("db-down")  # a test leaves no cluster behind
    assert result.returncode == 0, result.stderr
    assert re.search(
        r"^migrated 3 service\(s\): 7 applied, 0 failed, in [0-9.]+ (s|ms)$", result.stdout.splitlines()[-1]
    )


def test_a_ci_log_shows_the_waves_each_migrations_time_and_the_count(monorepo: Callable[..., Monorepo]) -> None:
    repo = monorepo({"auth": {}, "users": {"depends_on": ["auth"]}, "search": {"depends_on": ["auth"]}})
    repo.migration("auth", "001_init.sql", "CREATE TABLE IF NOT EXISTS a (id int);\n")
    repo.migration("auth", "002_slow.sql", "SELECT pg_sleep(0.3);\n")
    repo.migration("users", "001_init.sql", "CREATE TABLE IF NOT EXISTS u (id int);\n")
    done = repo.invoke("migrate-all", "--jobs", "1")
    assert done.returncode == 0, done.stdout + done.stderr
    log = done.stderr.splitlines()
    assert log[0] == "wave 1 of 2: auth" and log[1].startswith("auth: applying 001_init")
    log = [line for line in log if not line.startswith("auth: applying")]  # one message, or one each
    assert re.fullmatch(r"auth: applied 001_init in \d+ ms", log[1]), log
    assert re.fullmatch(r"auth: applied 002_slow in (3\d\d ms|\d\.\d s)", log[2]), log
    assert re.fullmatch(r"auth: 2 applied in \S+ (s|ms) \(1 of 3 services\)", log[3]), log
    assert log[4] == "wave 2 of 2: search, users"
    assert "search: up to date (2 of 3 services)" in log or "search: up to date (3 of 3 services)" in log
    assert "users: applying 001_init" in log and any(line.startswith("users: 1 applied in ") for line in log)
    assert done.stdout.splitlines()[-1].startswith("migrated 3 service(s): 3 applied, 0 failed, in ")
    again = repo.invoke("migrate-all")
    assert "auth: up to date (1 of 3 services)" in again.stderr.splitlines()


GOLDEN = Path(__file__).parent / "snapshots" / "text"
LONG = "000002_payments_invoice_idx"  # a version that must never fold at 80 columns


def _one(version: str, ms: int = 1200) -> Applied:
    return Applied(version, "0" * 16, ms, True)


def outcome_result(outcome: Outcome) -> Result:
    """One service's result for each outcome, as a run ends in it (every Outcome must be here)."""
    failure = Failure(
        'relation "missing" does not exist',
        file=f"services/billing-invoices/migrations/{LONG}.up.sql",
        line=2,
        sqlstate="42P01",
        hint="fix the file, then run again",
    )
    name = "billing-invoices"
    return {
        Outcome.APPLIED: Result(name, outcome, (_one("000001_create"), _one(LONG, 2500)), 1, elapsed_ms=3800),
        Outcome.UP_TO_DATE: Result(name, outcome, already_applied=3, elapsed_ms=40),
        Outcome.PLANNED: Result(
            name,
            outcome,
            already_applied=1,
            pending=("000001_create", LONG),
            notes=("database missing: --create-databases would create it",),
        ),
        Outcome.FAILED: Result(name, outcome, (_one("000001_create"),), 1, (LONG,), 900, failure),
        Outcome.SKIPPED: Result(name, outcome, notes=("skipped: depends on orders, which did not finish",)),
        Outcome.INTERRUPTED: Result(
            name,
            outcome,
            (_one("000001_create"),),
            1,
            (LONG,),
            63_000,
            Failure(f"interrupted by SIGINT: {LONG}.up.sql was cancelled and rolled back", hint="run migrate again"),
        ),
        Outcome.ROLLED_BACK: Result(name, outcome, (_one(LONG, 30),), 1, elapsed_ms=120),
    }[outcome]


def entry_status(kind: EntryKind) -> ServiceStatus:
    """A service whose one migration (after an applied one) is of `kind` (every EntryKind must be here)."""
    entry = {
        EntryKind.APPLIED: Entry(LONG, kind, NOW, 1200),
        EntryKind.ADOPTED: Entry(LONG, kind, NOW, None, adopted_from="golang-migrate"),
        EntryKind.BASELINED: Entry(LONG, kind, NOW),
        EntryKind.CHANGED: Entry(LONG, kind, NOW, 30, "applied checksum 0123456789abcdef, file now fedcba9876543210"),
        EntryKind.MISSING_FILE: Entry(LONG, kind, NOW, 30, "applied, but the file is gone"),
        EntryKind.PENDING: Entry(LONG, kind),
        EntryKind.OUT_OF_ORDER: Entry(LONG, kind, detail="sorts before 000003_newer, which is applied"),
    }[kind]
    state = DriftState.UP_TO_DATE if kind.done else DriftState.DRIFT
    return ServiceStatus(
        "billing-invoices",
        "postgresql://app@db.internal:5432/invoices",
        state,
        (Entry("000001_create", EntryKind.APPLIED, NOW, 5), entry),
    )


def rendered_outcomes(command: str) -> dict[str, list[Any]]:
    """What each outcome of `command` prints: a section per outcome, in the enum's order."""
    from migratekit.cli.progress import event_line
    from migratekit.database.apply import Finished

    if command == "status":
        sections: dict[str, list[Any]] = {str(k): render.status_text([entry_status(k)]) for k in EntryKind}
        sections["quiet"] = render.status_text([entry_status(k) for k in EntryKind], quiet=True)
        baselined = (Entry("001_init", EntryKind.BASELINED, NOW), Entry("002_reports", EntryKind.BASELINED, NOW))
        sections["no_times"] = render.status_text(  # no time in any row: the others keep their width
            [ServiceStatus("legacy-reports", "embedded/legacy", DriftState.UP_TO_DATE, baselined)]
        )
        for state in (DriftState.NOT_CREATED, DriftState.UNREACHABLE, DriftState.FOREIGN_TABLE):
            entries = (Entry(LONG, EntryKind.PENDING),) if state is DriftState.NOT_CREATED else ()
            unread = ServiceStatus("billing-invoices", "embedded/invoices", state, entries, "the server said no")
            sections[str(state)] = render.status_text([unread])
        sections["timeline"] = render.timeline_text(
            [
                Applying(NOW, "billing-invoices", LONG, EntryKind.APPLIED, 2500),
                Applying(NOW, "orders", "000001_create_orders", EntryKind.ADOPTED, None, "golang-migrate"),
                Applying(NOW, "legacy-reports", "002_reports", EntryKind.BASELINED),
            ],
            since="7d",
        )
        return sections
    if command == "rollback":
        return {str(o): render.rollback_text(outcome_result(o), dry_run=o is Outcome.PLANNED) for o in Outcome}
    out = {}
    for o in Outcome:
        r = outcome_result(o)
        log = event_line(Finished(r, 1, 12))
        out[str(o)] = [
            log,
            render.results_table([r], title="migrate-all (dry run)" if o is Outcome.PLANNED else "migrate-all"),
            *render.result_details([r]),
            render.totals_text([r], r.elapsed_ms / 1000, dry_run=o is Outcome.PLANNED),
        ]
    return out


@pytest.mark.parametrize("terminal", WIDTHS, ids=lambda w: f"{w}-columns" if w else "piped")
@pytest.mark.parametrize("command", ["migrate-all", "rollback", "status"])
def test_every_outcome_is_rendered_as_pinned(
    command: str, terminal: int | None, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """Golden text: what a person reads for each outcome. After a deliberate change, regenerate with
    MIGRATEKIT_UPDATE_SNAPSHOTS=1 and review the diff."""
    import os

    parts = []
    for name, renderables in rendered_outcomes(command).items():
        shown = plain(printed(renderables, terminal, monkeypatch, capsys))
        parts.append(f"== {name} ==\n" + "".join(line.rstrip() + "\n" for line in shown.splitlines()))
        if terminal == 80:
            assert max(len(line) for line in shown.splitlines()) <= 80, name
            assert shown.count(LONG) == shown.count(LONG[:12]), f"{name}: a version folded or cut at 80 columns"
            assert shown.count("billing-invoices") == shown.count("billing-inv"), f"{name}: a name folded or cut"
            assert "…" not in shown, f"{name}: something was cut at 80 columns"
    text = "\n".join(parts)
    path = GOLDEN / f"{command}.{terminal or 'piped'}.txt"
    if os.environ.get("MIGRATEKIT_UPDATE_SNAPSHOTS"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    assert path.is_file(), f"{path} is missing: run with MIGRATEKIT_UPDATE_SNAPSHOTS=1 to write it"
    assert text == path.read_text(), f"{path.name} differs from its golden text"


def test_every_outcome_and_kind_has_a_golden_section() -> None:
    for command, values in (("migrate-all", Outcome), ("rollback", Outcome), ("status", EntryKind)):
        assert set(map(str, values)) <= set(rendered_outcomes(command)), command
