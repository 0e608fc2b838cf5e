"""The apply engine on a real PostgreSQL: atomic migrations, tracking rows, refusals, locks, faults."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest

from conftest import with_secret
from migratekit import MigrationFailed, run_migrations
from migratekit.database.apply import apply_service
from migratekit.database.results import Outcome
from migratekit.database.tracking import create_statements
from migratekit.model.migration import load_migrations, seed_checksum
from migratekit.model.settings import SERVICE_DEFAULTS, RunOptions, ServiceSettings

SEED_DDL = ";\n".join(str(s.as_string(None)) for s in create_statements("schema_migrations"))


def files(directory: Path, **migrations: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, sql in migrations.items():
        (directory / f"{name}.sql").write_text(sql)
    return directory


def rows(url: str, table: str = "schema_migrations") -> list[tuple[str, str]]:
    with psycopg.connect(url) as conn:
        return conn.execute(f"SELECT version, checksum FROM {table} ORDER BY version").fetchall()


def exists(url: str, relation: str) -> bool:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (relation,)).fetchone()[0]


def apply(url: str, directory: Path, **options: object):
    """apply_service with ServiceSettings' and RunOptions' fields by name, as run_migrations takes them."""
    settings = {k: v for k, v in options.items() if k in SERVICE_DEFAULTS.__dataclass_fields__}
    run = {k: v for k, v in options.items() if k not in settings}
    return apply_service(
        directory.parent.name,
        url,
        load_migrations(directory),
        ServiceSettings(**settings),  # type: ignore[arg-type]
        RunOptions(**run),  # type: ignore[arg-type]
    )


def test_applies_in_order_records_seed_rows_and_then_is_up_to_date(scratch_db: str, tmp_path: Path) -> None:
    mdir = files(
        tmp_path / "auth" / "migrations",
        **{"001_init": "CREATE TABLE IF NOT EXISTS a (id int);", "002_add_b": "CREATE TABLE IF NOT EXISTS b (id int);"},
    )
    result = run_migrations(scratch_db, mdir)
    assert [a.version for a in result.applied] == ["001_init", "002_add_b"]
    assert rows(scratch_db) == [(m.version, seed_checksum(m.data)) for m in load_migrations(mdir)]
    again = run_migrations(scratch_db, mdir)
    assert (again.outcome, again.applied, again.already_applied) == ("up_to_date", (), 2)


def test_a_version_with_quotes_and_backslashes_is_recorded_as_written(scratch_db: str, tmp_path: Path) -> None:
    """The tracking row's literals are quoted per file by libpq; the rest of the INSERT is composed once."""
    mdir = tmp_path / "s" / "migrations"
    mdir.mkdir(parents=True)
    name = "001_o'brien\\x"  # golang-migrate's names allow any slug
    (mdir / f"{name}.up.sql").write_text("CREATE TABLE IF NOT EXISTS a (id int);\n")
    (mdir / f"{name}.down.sql").write_text("DROP TABLE IF EXISTS a;\n")
    assert [a.version for a in apply(scratch_db, mdir).applied] == [name]
    assert rows(scratch_db) == [(name, load_migrations(mdir)[0].checksum)]
    assert apply(scratch_db, mdir).outcome is Outcome.UP_TO_DATE


def messages(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many migrations' COMMITs each message sent by the engine held, as it sends them."""
    from migratekit.database import execution

    # quick below a second: these tests are about how messages are filled, not the clock (on a loaded machine, as
    # when the suite's workers share it with others, a CREATE TABLE can take longer than execution.QUICK)
    monkeypatch.setattr(execution, "QUICK", 1.0)
    sent: list[int] = []
    real = execution.protocol.send

    def counted(conn, query, *args, **kwargs):  # type: ignore[no-untyped-def]
        sent.append(query.count(b"COMMIT"))
        return real(conn, query, *args, **kwargs)

    monkeypatch.setattr(execution.protocol, "send", counted)
    return sent


DEFERRED = (
    "CREATE TABLE IF NOT EXISTS p (id int PRIMARY KEY);\n"
    "CREATE TABLE IF NOT EXISTS ch (pid int REFERENCES p DEFERRABLE INITIALLY DEFERRED);\n"
    "INSERT INTO ch VALUES (1);\n"
)


@pytest.mark.parametrize(
    ("second", "line", "sqlstate"),
    [
        ("SELECT 1;\nSELECT 1/0;\n", 2, "22012"),  # fails in the file
        (DEFERRED, None, "23503"),  # fails at its COMMIT: a deferred foreign key
    ],
)
def test_migrations_travel_together_and_none_runs_after_one_that_failed(
    scratch_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, second: str, line: int | None, sqlstate: str
) -> None:
    """Several migrations to a message, each its own transaction: PostgreSQL skips the rest of a message after an
    error, so what follows a failed migration never runs, whichever statement of it failed."""
    mdir = files(
        tmp_path / "auth" / "migrations",
        **{"001_a": "CREATE TABLE IF NOT EXISTS a (id int);", "002_b": second, "003_c": "CREATE TABLE c (id int);"},
    )
    sent = messages(monkeypatch)
    result = apply(scratch_db, mdir)
    assert sent == [1, 2]  # the first alone, then (it was quick) two to a message: 002 and 003 together
    assert (result.outcome, [a.version for a in result.applied]) == (Outcome.FAILED, ["001_a"])
    assert (result.failure.file, result.failure.line, result.failure.sqlstate) == ("002_b.sql", line, sqlstate)
    assert rows(scratch_db) == [("001_a", load_migrations(mdir)[0].checksum)]
    assert exists(scratch_db, "a") and not exists(scratch_db, "p") and not exists(scratch_db, "c")
    assert apply(scratch_db, mdir).failure.file == "002_b.sql"  # the message left no transaction open


def test_a_syntax_error_in_a_later_file_still_lets_the_earlier_ones_apply(
    scratch_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server parses a whole message before running it: the files before the broken one are sent again."""
    mdir = files(
        tmp_path / "auth" / "migrations",
        **{
            "001_a": "CREATE TABLE IF NOT EXISTS a (id int);",
            "002_b": "CREATE TABLE IF NOT EXISTS b (id int);",
            "003_c": "SELECT 1;\n\nCREAT TABLE c (id int);\n",
            "004_d": "CREATE TABLE IF NOT EXISTS d (id int);",
        },
    )
    sent = messages(monkeypatch)
    result = apply(scratch_db, mdir)
    assert sent == [1, 2, 1, 2]  # 001; 002 and 003, refused unparsed; 002 again; 003 and 004: 003 fails, 004 not run
    assert [a.version for a in result.applied] == ["001_a", "002_b"]
    assert (result.failure.file, result.failure.line, result.failure.sqlstate) == ("003_c.sql", 3, "42601")
    assert [v for v, _ in rows(scratch_db)] == ["001_a", "002_b"] and not exists(scratch_db, "d")


def test_progress_names_the_migration_the_server_is_on(
    scratch_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server sends a message's results when all of it is done: progress names every migration in flight, and
    a slow one sends the next migrations one to a message again."""
    from migratekit.database import execution

    monkeypatch.setattr(execution, "QUICK", 0.25)  # a CREATE TABLE is quick even on a loaded machine, 002 is not
    mdir = files(
        tmp_path / "auth" / "migrations",
        **{
            "001_a": "CREATE TABLE IF NOT EXISTS a (id int);",
            "002_slow": "SELECT pg_sleep(0.6);",
            "003_c": "CREATE TABLE IF NOT EXISTS c (id int);",
            "004_d": "CREATE TABLE IF NOT EXISTS d (id int);",
        },
    )

    def committed() -> list[str]:  # read by another session
        return [v for v, _ in rows(scratch_db)] if exists(scratch_db, "schema_migrations") else []

    from migratekit.database.apply import Applying, Event, Ran

    seen: list[tuple[str | None, list[str]]] = []  # (announced, versions committed then)
    ran: list[str] = []  # each migration's end, as it is told

    def progress(event: Event) -> None:
        if isinstance(event, Applying):
            seen.append((event.label, committed()))
        elif isinstance(event, Ran):
            ran.append(event.applied.version)

    assert apply_service("auth", scratch_db, load_migrations(mdir), progress=progress).ok
    everything = ["001_a", "002_slow", "003_c", "004_d"]
    assert seen == [
        ("001_a", []),
        ("002_slow … 003_c (2)", everything[:1]),
        ("004_d", everything[:3]),  # after a slow message, one at a time
    ]
    assert ran == everything


def test_a_migration_that_changes_its_session_ends_its_message(
    scratch_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SET without LOCAL outlives its transaction: RESET ALL must run before the next migration does."""
    with psycopg.connect(scratch_db, autocommit=True) as setup:
        setup.execute("CREATE SCHEMA elsewhere")
    mdir = files(
        tmp_path / "auth" / "migrations",
        **{
            "001_a": "CREATE TABLE IF NOT EXISTS a (id int);",
            "002_path": "SET search_path = elsewhere;\nCREATE TABLE IF NOT EXISTS moved (id int);",
            "003_c": "CREATE TABLE IF NOT EXISTS c (id int);",
            "004_d": "CREATE TABLE IF NOT EXISTS d (id int);",
        },
    )
    sent = messages(monkeypatch)
    assert apply(scratch_db, mdir).ok
    assert sent == [1, 1, 2]  # 002 had room for 003 beside it, but ended its message
    assert exists(scratch_db, "elsewhere.moved") and exists(scratch_db, "public.c") and exists(scratch_db, "public.d")


def test_a_failed_migration_leaves_the_database_as_before_it(scratch_db: str, tmp_path: Path) -> None:
    mdir = files(
        tmp_path / "auth" / "migrations",
        **{
            "001_init": "CREATE TABLE IF NOT EXISTS a (id int);",
            "002_broken": "-- Migration: 002_broken\nCREATE TABLE IF NOT EXISTS b (id int);\n\nINSERT INTO b\n"
            "  VALUES (1), ('not a number');\n",
            "003_later": "CREATE TABLE IF NOT EXISTS c (id int);",
        },
    )
    with pytest.raises(MigrationFailed) as caught:
        run_migrations(scratch_db, mdir)
    result = caught.value.result
    assert [a.version for a in result.applied] == ["001_init"]
    failure = result.failure
    assert (failure.file, failure.line, failure.sqlstate) == ("002_broken.sql", 5, "22P02")
    assert 'invalid input syntax for type integer: "not a number"' in failure.message
    assert [v for v, _ in rows(scratch_db)] == ["001_init"]
    assert not exists(scratch_db, "b") and not exists(scratch_db, "c")


def test_a_file_pglast_cannot_parse_still_gets_postgresql_s_line(scratch_db: str, tmp_path: Path) -> None:
    mdir = files(tmp_path / "s" / "migrations", **{"001_init": "SELECT 1;\n\nCREAT TABLE t (a int);\n"})
    result = apply(scratch_db, mdir)
    assert (result.outcome, result.failure.line, result.failure.sqlstate) == ("failed", 3, "42601")
    assert not exists(scratch_db, "schema_migrations") or rows(scratch_db) == []


@pytest.mark.parametrize(
    ("data", "line"),
    [
        # sent as written (no word that needs the parser), with a byte-order mark and CRLF
        (b"\xef\xbb\xbf-- \xc3\xa9\r\nCREATE TABLE IF NOT EXISTS b (id int);\r\n\r\nSELECT\r\nnope FROM b;\r\n", 5),
        # parsed first (a function's BEGIN/END), then sent as its statements
        (
            b"CREATE OR REPLACE FUNCTION f() RETURNS int AS $$\nBEGIN\n  RETURN 1;\nEND\n$$ LANGUAGE plpgsql;\n"
            b"CREATE TABLE IF NOT EXISTS b (id int);\n\nSELECT\n  nope FROM b;\n",
            9,
        ),
        # parsed, self-wrapped: the position is found inside the unwrapped script
        (b"BEGIN;\nCREATE TABLE IF NOT EXISTS b (id int);\nSELECT nope FROM b;\nCOMMIT;\n", 3),
    ],
)
def test_a_failure_names_the_files_own_line_whichever_way_the_file_was_sent(
    scratch_db: str, tmp_path: Path, data: bytes, line: int
) -> None:
    mdir = tmp_path / "s" / "migrations"
    mdir.mkdir(parents=True)
    (mdir / "001_x.sql").write_bytes(data)
    result = apply(scratch_db, mdir)
    assert (result.failure.file, result.failure.line, result.failure.sqlstate) == ("001_x.sql", line, "42703")
    assert not exists(scratch_db, "b")


def test_execution_time_is_the_servers_and_the_report_shows_the_row(scratch_db: str, tmp_path: Path) -> None:
    mdir = files(tmp_path / "s" / "migrations", **{"001_slow": "SELECT pg_sleep(0.3);\nSELECT 1 AS one;"})
    result = apply(scratch_db, mdir)
    with psycopg.connect(scratch_db) as conn:
        (recorded,) = conn.execute("SELECT execution_time_ms FROM schema_migrations").fetchone()
    assert 300 <= recorded < 5000
    assert result.applied[0].execution_time_ms == recorded


def test_an_edited_applied_file_stops_the_service_until_allowed(scratch_db: str, tmp_path: Path) -> None:
    mdir = files(tmp_path / "s" / "migrations", **{"001_init": "CREATE TABLE IF NOT EXISTS a (id int);\n"})
    apply(scratch_db, mdir)
    old = rows(scratch_db)[0][1]
    files(
        mdir,
        **{
            "001_init": "CREATE TABLE IF NOT EXISTS a (id bigint);\n",
            "002_next": "CREATE TABLE IF NOT EXISTS b (id int);\n",
        },
    )
    refused = apply(scratch_db, mdir)
    assert refused.outcome == "failed"
    assert f"changed after it was applied (applied checksum {old}" in refused.failure.describe()
    assert "--allow-changed" in refused.failure.hint
    assert not exists(scratch_db, "b")
    allowed = apply(scratch_db, mdir, allow_changed=True)
    assert allowed.outcome == "applied" and "recorded new checksum" in allowed.notes[0]
    assert rows(scratch_db)[0][1] == seed_checksum((mdir / "001_init.sql").read_bytes())


def test_crlf_or_bom_checkout_of_an_applied_file_is_not_drift(scratch_db: str, tmp_path: Path) -> None:
    mdir = files(tmp_path / "s" / "migrations", **{"001_init": "-- é\nCREATE TABLE IF NOT EXISTS a (id int);\n"})
    apply(scratch_db, mdir)
    (mdir / "001_init.sql").write_bytes(b"\xef\xbb\xbf" + "-- é\r\nCREATE TABLE IF NOT EXISTS a (id int);\r\n".encode())
    assert apply(scratch_db, mdir).outcome == "up_to_date"


def test_an_applied_file_that_is_gone_stops_the_service(scratch_db: str, tmp_path: Path) -> None:
    mdir = files(tmp_path / "s" / "migrations", **{"001_init": "SELECT 1;", "002_x": "SELECT 2;"})
    apply(scratch_db, mdir)
    (mdir / "002_x.sql").unlink()
    files(mdir, **{"003_y": "CREATE TABLE IF NOT EXISTS y (id int);"})
    result = apply(scratch_db, mdir)
    assert result.failure.describe().startswith("002_x.sql: applied, but the file is gone")
    assert not exists(scratch_db, "y")


def test_a_pending_file_older_than_the_newest_applied_needs_out_of_order(scratch_db: str, tmp_path: Path) -> None:
    mdir = files(tmp_path / "s" / "migrations", **{"001_init": "SELECT 1;", "003_c": "SELECT 3;"})
    apply(scratch_db, mdir)
    files(mdir, **{"002_b": "CREATE TABLE IF NOT EXISTS b (id int);"})
    refused = apply(scratch_db, mdir)
    assert "pending, but sorts before 003_c, which is already applied" in refused.failure.message
    assert apply(scratch_db, mdir, out_of_order=True).applied[0].version == "002_b"


@pytest.mark.parametrize(
    ("ddl", "tool"),
    [
        ("CREATE TABLE schema_migrations (version varchar(128) PRIMARY KEY)", "dbmate's"),
        (
            "CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL)",
            "golang-migrate's",
        ),
    ],
)
def test_another_tools_tracking_table_is_recognised_and_never_written(
    scratch_db: str, tmp_path: Path, ddl: str, tool: str
) -> None:
    with psycopg.connect(scratch_db) as conn:
        conn.execute(ddl)
    mdir = files(tmp_path / "s" / "migrations", **{"001_init": "CREATE TABLE IF NOT EXISTS a (id int);"})
    result = apply(scratch_db, mdir)
    assert tool in result.failure.message and "will not write into it" in result.failure.message
    assert not exists(scratch_db, "a")
    with psycopg.connect(scratch_db) as conn:
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone() == (0,)


def test_a_table_with_some_seed_columns_is_not_read_as_up_to_date(scratch_db: str, tmp_path: Path) -> None:
    """The first look reads the rows in one query; naming every seed column there checks the table's shape."""
    mdir = files(tmp_path / "s" / "migrations", **{"001_init": "CREATE TABLE IF NOT EXISTS a (id int);"})
    (migration,) = load_migrations(mdir)
    with psycopg.connect(scratch_db) as conn:
        conn.execute("CREATE TABLE schema_migrations (version text PRIMARY KEY, checksum text, applied_at timestamptz)")
        conn.execute("INSERT INTO schema_migrations VALUES (%s, %s, now())", (migration.version, migration.checksum))
    result = apply(scratch_db, mdir)
    assert result.outcome is Outcome.FAILED
    assert "an unknown tool's (applied_at, checksum, version) shape" in result.failure.message


def test_concurrently_runs_outside_a_transaction_and_is_recorded_after(scratch_db: str, tmp_path: Path) -> None:
    mdir = files(
        tmp_path / "s" / "migrations",
        **{
            "001_init": "CREATE TABLE IF NOT EXISTS t (a int);",
            "002_index": "CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_t_a ON t (a);\nVACUUM t;\n",
        },
    )
    result = apply(scratch_db, mdir)
    assert [a.transactional for a in result.applied] == [True, False]
    assert exists(scratch_db, "idx_t_a") and len(rows(scratch_db)) == 2


def test_a_failed_concurrent_build_names_statements_run_and_the_invalid_index(scratch_db: str, tmp_path: Path) -> None:
    mdir = files(
        tmp_path / "s" / "migrations",
        **{
            "001_init": "CREATE TABLE IF NOT EXISTS t (a int);\nINSERT INTO t VALUES (1), (1);",
            "002_unique": "-- migratekit: no-transaction\nCREATE TABLE IF NOT EXISTS u (id int);\n"
            "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS idx_t_a ON t (a);\n",
        },
    )
    result = apply(scratch_db, mdir)
    failure = result.failure
    assert (failure.file, failure.line, failure.statements_done) == ("002_unique.sql", 3, 1)
    assert failure.invalid_indexes == ("idx_t_a",)
    assert "1 statement(s) of this file ran" in failure.describe()
    assert [v for v, _ in rows(scratch_db)] == ["001_init"]


def test_a_file_with_its_own_begin_commit_is_unwrapped_and_stays_atomic(scratch_db: str, tmp_path: Path) -> None:
    mdir = files(
        tmp_path / "s" / "migrations",
        **{
            "001_init": "BEGIN;\nCREATE TABLE IF NOT EXISTS a (id int);\nCOMMIT;\n",
            "002_bad": "BEGIN;\nCREATE TABLE IF NOT EXISTS b (id int);\nSELECT 1/0;\nCOMMIT;\n",
        },
    )
    result = apply(scratch_db, mdir)
    assert [a.transactional for a in result.applied] == [True]
    assert (result.failure.line, result.failure.sqlstate) == (3, "22012")
    assert exists(scratch_db, "a") and not exists(scratch_db, "b")


def test_lock_timeout_is_retried_then_succeeds(scratch_db: str, tmp_path: Path) -> None:
    with psycopg.connect(scratch_db, autocommit=True) as setup:
        setup.execute("CREATE TABLE busy (id int)")
    holder = psycopg.connect(scratch_db)
    holder.execute("LOCK TABLE busy IN ACCESS EXCLUSIVE MODE")
    threading.Timer(0.6, holder.commit).start()
    mdir = files(
        tmp_path / "s" / "migrations",
        **{
            "001_before": "CREATE TABLE IF NOT EXISTS a (id int);",
            "002_busy": "ALTER TABLE busy ADD COLUMN IF NOT EXISTS n int;",  # sent with 003: retried from 002
            "003_after": "ALTER TABLE busy ADD COLUMN IF NOT EXISTS m int;",
        },
    )
    try:
        result = apply(scratch_db, mdir, lock_timeout="100ms", retries=5)
    finally:
        time.sleep(0.7)
        holder.close()
    assert result.outcome == "applied", result.failure
    assert [v for v, _ in rows(scratch_db)] == ["001_before", "002_busy", "003_after"]


def test_lock_timeout_that_persists_is_reported_and_not_recorded(scratch_db: str, tmp_path: Path) -> None:
    with psycopg.connect(scratch_db, autocommit=True) as setup:
        setup.execute("CREATE TABLE busy (id int)")
    with psycopg.connect(scratch_db) as holder:
        holder.execute("LOCK TABLE busy IN ACCESS EXCLUSIVE MODE")
        mdir = files(tmp_path / "s" / "migrations", **{"001_init": "ALTER TABLE busy ADD COLUMN IF NOT EXISTS n int;"})
        result = apply(scratch_db, mdir, lock_timeout="50ms", retries=2)
    assert result.failure.sqlstate == "55P03"
    assert "lock timeout persisted after 3 attempts" in result.failure.hint
    assert rows(scratch_db) == []


def test_statement_timeout_from_the_options_applies(scratch_db: str, tmp_path: Path) -> None:
    mdir = files(
        tmp_path / "s" / "migrations", **{"001_slow": "CREATE TABLE IF NOT EXISTS a (id int);\nSELECT pg_sleep(5);"}
    )
    result = apply(scratch_db, mdir, statement_timeout="200ms")
    assert (result.failure.sqlstate, result.failure.line) == ("57014", 2)
    assert not exists(scratch_db, "a")


def test_a_held_migration_lock_is_waited_for_and_its_holder_named(scratch_db: str, tmp_path: Path) -> None:
    mdir = files(tmp_path / "s" / "migrations", **{"001_init": "SELECT 1;"})
    with psycopg.connect(scratch_db, autocommit=True, application_name="other-runner") as other:
        key = other.execute(
            "SELECT hashtextextended('migratekit:' || current_database() || ':schema_migrations', 0)"
        ).fetchone()[0]
        other.execute("SELECT pg_advisory_lock(%s)", (key,))
        result = apply(scratch_db, mdir, lock_wait=0.3)
        assert f"backend pid {other.info.backend_pid} (other-runner" in result.failure.message
        # A different tracking table in the same database is another lock: not blocked.
        assert apply(scratch_db, mdir, lock_wait=0.3, tracking_table="other.schema_migrations").outcome == "applied"


def test_concurrent_runners_apply_each_migration_exactly_once(scratch_db: str, tmp_path: Path) -> None:
    with psycopg.connect(scratch_db, autocommit=True) as setup:
        setup.execute("CREATE TABLE applied_count (version text)")
    mdir = files(
        tmp_path / "s" / "migrations",
        **{
            f"{i:03d}_step": f"INSERT INTO applied_count VALUES ('{i:03d}');\nSELECT pg_sleep(0.05);"
            for i in range(1, 9)
        },
    )
    results = []
    threads = [threading.Thread(target=lambda: results.append(apply(scratch_db, mdir))) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r.ok for r in results), [r.failure for r in results]
    assert sum(len(r.applied) for r in results) == 8
    with psycopg.connect(scratch_db) as conn:
        assert (
            conn.execute("SELECT version, count(*) FROM applied_count GROUP BY 1 HAVING count(*) > 1").fetchall() == []
        )
        assert conn.execute("SELECT count(*) FROM applied_count").fetchone() == (8,)


def test_kill_during_a_long_migration_then_a_clean_rerun(scratch_db: str, tmp_path: Path) -> None:
    mdir = files(
        tmp_path / "s" / "migrations",
        **{
            "001_init": "CREATE TABLE IF NOT EXISTS a (id int);",
            "002_long": "CREATE TABLE IF NOT EXISTS b (id int);\nINSERT INTO b VALUES (1);\nSELECT pg_sleep(30);",
        },
    )
    runner = subprocess.Popen(
        [sys.executable, "-m", "migratekit", "migrate", "--dir", str(mdir), "--url", scratch_db],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    with psycopg.connect(scratch_db, autocommit=True) as watcher:
        deadline = time.monotonic() + 20
        while not watcher.execute(
            "SELECT 1 FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND datname = current_database() "
            "AND query LIKE '%%pg_sleep(30)%%'"
        ).fetchone():
            assert time.monotonic() < deadline, "the runner never reached the long statement"
            time.sleep(0.05)
        os.kill(runner.pid, signal.SIGKILL)
        runner.wait()
        assert [v for v, _ in rows(scratch_db)] == ["001_init"]
        assert not exists(scratch_db, "b")  # the half-done migration is invisible
    rerun = apply(
        scratch_db,
        files(mdir, **{"002_long": "CREATE TABLE IF NOT EXISTS b (id int);\nSELECT 1;"}),
        lock_wait=20,
        allow_changed=True,
    )
    assert [a.version for a in rerun.applied] == ["002_long"]


def test_seed_runner_databases_and_migratekit_databases_are_indistinguishable(new_db, tmp_path: Path) -> None:
    mdir = files(
        tmp_path / "s" / "migrations",
        **{
            "001_init": "-- Ünïcode\nCREATE TABLE IF NOT EXISTS a (id int);",
            "002_b": "CREATE TABLE IF NOT EXISTS b (id int);",
        },
    )
    by_seed, by_kit = new_db(), new_db()
    with psycopg.connect(by_seed) as conn:  # what the seed's runner leaves behind
        conn.execute(SEED_DDL)
        for m in load_migrations(mdir):
            conn.execute(m.text.encode())
            conn.execute(
                "INSERT INTO schema_migrations (version, checksum, execution_time_ms) VALUES (%s, %s, 3)",
                (m.version, seed_checksum(m.data)),
            )
    assert apply(by_seed, mdir).outcome == "up_to_date"
    apply(by_kit, mdir)
    assert rows(by_kit) == rows(by_seed)
    shape = (
        "SELECT column_name, data_type, is_nullable, column_default FROM information_schema.columns "
        "WHERE table_name = 'schema_migrations' ORDER BY ordinal_position"
    )
    index = "SELECT indexdef FROM pg_indexes WHERE tablename = 'schema_migrations' ORDER BY indexname"
    with psycopg.connect(by_seed) as a, psycopg.connect(by_kit) as b:
        assert a.execute(shape).fetchall() == b.execute(shape).fetchall()
        assert a.execute(index).fetchall() == b.execute(index).fetchall()


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed: the seed's own algorithm needs it")
def test_rows_read_back_by_the_seeds_own_checksum_code(scratch_db: str, tmp_path: Path) -> None:
    mdir = files(tmp_path / "s" / "migrations", **{"001_init": "-- 艦隊 ✓\nCREATE TABLE IF NOT EXISTS a (id int);"})
    apply(scratch_db, mdir)
    seed = (
        "const c=require('crypto'),fs=require('fs');"
        "console.log(c.createHash('sha256').update(fs.readFileSync(process.argv[1],'utf-8')).digest('hex').substring(0,16))"
    )
    node = subprocess.run(["node", "-e", seed, str(mdir / "001_init.sql")], capture_output=True, text=True, check=True)
    assert rows(scratch_db) == [("001_init", node.stdout.strip())]


@pytest.mark.server_auth
def test_connection_errors_are_clear_and_never_show_the_password(scratch_db: str, tmp_path: Path) -> None:
    mdir = files(tmp_path / "s" / "migrations", **{"001_init": "SELECT 1;"})
    url, secret = with_secret(scratch_db)
    missing = psycopg.conninfo.make_conninfo(url, dbname="mk_no_such_db")
    result = apply(missing, mdir)
    assert "does not exist" in result.failure.message and secret not in result.failure.describe()
    closed = "postgresql://app:hunter2@127.0.0.1:9/db"
    result = apply(closed, mdir, connect_wait=0.5)
    assert "cannot connect to postgresql://app:***@127.0.0.1:9/db (retried for 0.5s)" in result.failure.message
    assert "hunter2" not in result.failure.describe()


def test_extensions_the_server_lacks_stop_the_service_before_its_first_migration(
    scratch_db: str, tmp_path: Path
) -> None:
    mdir = files(
        tmp_path / "geo" / "migrations",
        **{
            "001_init": "CREATE TABLE IF NOT EXISTS a (id int);",
            "002_add_places": "CREATE EXTENSION IF NOT EXISTS pg_trgm;\n"
            "CREATE EXTENSION IF NOT EXISTS mk_no_such_extension;\nCREATE TABLE IF NOT EXISTS places (id int);",
        },
    )
    for dry_run in (True, False):
        result = apply(scratch_db, mdir, dry_run=dry_run)
        assert result.outcome == "failed" and result.applied == ()
        assert (result.failure.file, result.failure.line) == ("002_add_places.sql", 2)
        assert "cannot install the extension(s) that pending migrations create: mk_no_such_extension" in (
            result.failure.message
        )
        assert "pg_available_extensions" in result.failure.hint
    assert not exists(scratch_db, "a") and not exists(scratch_db, "places")
    assert rows(scratch_db) == []  # the tracking table exists (the lock was taken), with no row


def test_an_extension_is_found_after_a_function_body_and_a_run_keeps_no_parse_trees(
    scratch_db: str, tmp_path: Path
) -> None:
    """The seed's template: a function whose body says BEGIN (so the file is parsed to be sent) and CREATE
    EXTENSION. The check before the run finds the extension at its own line; the trees are not kept after."""
    body = (
        "CREATE OR REPLACE FUNCTION touch() RETURNS trigger AS $$\nBEGIN\n  -- no extension here; a ; inside\n"
        "  NEW.updated_at = now();\n  RETURN NEW;\nEND;\n$$ LANGUAGE plpgsql;\n"
    )
    mdir = files(
        tmp_path / "ledger" / "migrations",
        **{
            "001_init": body + "CREATE TABLE IF NOT EXISTS a (id int);",
            "002_add_b": body + "\nCREATE EXTENSION IF NOT EXISTS mk_no_such_extension;\n",
        },
    )
    refused = apply(scratch_db, mdir)
    assert (refused.outcome, refused.failure.file, refused.failure.line) == ("failed", "002_add_b.sql", 9)
    (mdir / "002_add_b.sql").write_text(body + '\nCREATE EXTENSION IF NOT EXISTS "uuid-ossp";\n')
    migrations = load_migrations(mdir)
    result = apply_service("ledger", scratch_db, migrations)
    assert [a.version for a in result.applied] == ["001_init", "002_add_b"]
    assert all("statements" not in m.__dict__ for m in migrations)


def test_a_failing_migration_runs_exactly_once_and_is_placed_at_its_statement(scratch_db: str, tmp_path: Path) -> None:
    mdir = files(
        tmp_path / "svc" / "migrations",
        **{
            "001_init": "CREATE SEQUENCE IF NOT EXISTS calls;",
            "002_count": "-- Migration: 002_count\nSELECT nextval('calls');\nSELECT 1;\n\nSELECT 1 / 0;\n",
        },
    )
    result = apply(scratch_db, mdir)
    assert (result.failure.file, result.failure.line, result.failure.sqlstate) == ("002_count.sql", 5, "22012")
    with psycopg.connect(scratch_db) as conn:  # nextval is not rolled back: it shows how often the file ran
        assert conn.execute("SELECT last_value FROM calls").fetchone() == (1,)


def test_the_runners_bookkeeping_ignores_a_migrations_search_path(scratch_db: str, tmp_path: Path) -> None:
    with psycopg.connect(scratch_db, autocommit=True) as conn:  # another service's table in another schema
        conn.execute("CREATE SCHEMA other")
        conn.execute(
            "CREATE TABLE other.schema_migrations (version text PRIMARY KEY, applied_at timestamptz "
            "NOT NULL DEFAULT now(), checksum text NOT NULL, execution_time_ms int NOT NULL)"
        )
    mdir = files(
        tmp_path / "svc" / "migrations",
        **{
            "001_init": "SELECT pg_catalog.set_config('search_path', '', false);\n"
            "CREATE TABLE IF NOT EXISTS public.a (id int);",
            "002_other": "SET search_path TO other, public;\nCREATE TABLE IF NOT EXISTS b (id int);",
            "003_later": "CREATE TABLE IF NOT EXISTS c (id int);",
        },
    )
    result = apply(scratch_db, mdir)
    assert [a.version for a in result.applied] == ["001_init", "002_other", "003_later"], result.failure
    assert [v for v, _ in rows(scratch_db)] == ["001_init", "002_other", "003_later"]
    assert rows(scratch_db, "other.schema_migrations") == []
    assert exists(scratch_db, "other.b") and exists(scratch_db, "public.c")  # 003 starts from the defaults
    assert apply(scratch_db, mdir).outcome == "up_to_date"


@pytest.mark.parametrize(
    ("sql", "outcome"),
    [
        ("COPY (SELECT 1) TO STDOUT;", "applied"),
        ("CREATE TABLE IF NOT EXISTS t (a int);\nCOPY t FROM STDIN;", "failed"),
    ],
)
def test_copy_to_the_runner_is_reported_truthfully(scratch_db: str, tmp_path: Path, sql: str, outcome: str) -> None:
    mdir = files(tmp_path / "svc" / "migrations", **{"001_copy": sql})
    result = apply(scratch_db, mdir)
    assert result.outcome == outcome, result.failure
    if outcome == "failed":
        assert "cannot read COPY data from the runner" in result.failure.message
        assert (result.failure.line, rows(scratch_db)) == (2, [])
        assert not exists(scratch_db, "t")
    else:
        assert [v for v, _ in rows(scratch_db)] == ["001_copy"]


@pytest.mark.parametrize(
    "stub",
    ["-- Migration: 002\n-- todo\n", "/* Migration: 002\n   /* nested, as PostgreSQL allows */ todo: UPDATE a */\n;\n"],
)
def test_a_stub_without_a_statement_is_never_applied_or_recorded(scratch_db: str, tmp_path: Path, stub: str) -> None:
    mdir = files(
        tmp_path / "svc" / "migrations",
        **{"001_init": "CREATE TABLE IF NOT EXISTS a (id int);", "002_backfill_totals": stub},
    )
    for dry_run in (True, False):
        result = apply(scratch_db, mdir, dry_run=dry_run)
        assert result.outcome == "failed" and result.applied == ()
        assert result.failure.file == "002_backfill_totals.sql" and "holds no SQL statement" in result.failure.message
    assert not exists(scratch_db, "a")
    (mdir / "002_backfill_totals.sql").write_text("UPDATE a SET id = id;\n")
    assert [m.version for m in apply(scratch_db, mdir).applied] == ["001_init", "002_backfill_totals"]


@pytest.mark.parametrize(
    ("encoded", "line", "byte"),
    [
        ("-- Migration: 002\nCREATE TABLE IF NOT EXISTS b (name text DEFAULT 'café');\n".encode("latin-1"), 2, 0xE9),
        ("-- Migration: 002\n\n-- résumé\nCREATE TABLE IF NOT EXISTS b (id int);\n".encode("cp1252"), 3, 0xE9),
        (b"\xff\xfeC\x00R\x00", 1, 0xFF),  # UTF-16, as a Windows editor saves it
    ],
)
def test_a_file_that_is_not_utf_8_is_never_applied(
    scratch_db: str, tmp_path: Path, encoded: bytes, line: int, byte: int
) -> None:
    """A Latin-1 'café' was applied as 'caf\ufffd' (the file decoded with its bad bytes replaced), the audit's
    MK107 notwithstanding: the database got other text than the file's."""
    mdir = files(tmp_path / "svc" / "migrations", **{"001_init": "CREATE TABLE IF NOT EXISTS a (id int);"})
    (mdir / "002_names.sql").write_bytes(encoded)
    result = apply(scratch_db, mdir)
    assert result.outcome == "failed" and result.applied == (), result
    assert (result.failure.file, result.failure.line) == ("002_names.sql", line)
    assert f"byte 0x{byte:02x} is not UTF-8" in result.failure.message and "iconv" in (result.failure.hint or "")
    assert not exists(scratch_db, "a") and not exists(scratch_db, "b")


@pytest.mark.parametrize(("held", "applied"), [("public.schema_migrations", "schema_migrations"), ("a.t", "a.t")])
def test_one_tracking_table_spelt_two_ways_takes_one_migration_lock(
    scratch_db: str, tmp_path: Path, held: str, applied: str
) -> None:
    """schema_migrations and public.schema_migrations are one table (identity says so): one lock, too."""
    from migratekit.database import tracking

    mdir = files(tmp_path / "auth" / "migrations", **{"001_init": "CREATE TABLE IF NOT EXISTS t (id int);"})
    with psycopg.connect(scratch_db, autocommit=True) as other, tracking.locked(other, held, 1):
        result = apply(scratch_db, mdir, tracking_table=applied, lock_wait=0.3)
    assert result.outcome is Outcome.FAILED and "another runner holds the migration lock" in result.failure.message
    assert apply(scratch_db, mdir, tracking_table=applied).ok


def test_the_lock_is_the_one_the_seeds_runners_take(scratch_db: str) -> None:
    """The TypeScript runner hashes its TRACKING_TABLE as written ('schema_migrations'): the same key."""
    from migratekit.model.contract import LOCK_KEY, lock_name

    with psycopg.connect(scratch_db, autocommit=True) as conn:
        ours = conn.execute("SELECT " + LOCK_KEY, (lock_name("public.schema_migrations"),)).fetchone()
        seeds = conn.execute(
            "SELECT hashtextextended('migratekit:' || current_database() || ':' || 'schema_migrations', 0)"
        ).fetchone()
    assert ours == seeds
