"""`invoke status` in the peers' shape (dbmate's [x] / [ ] and totals, Flyway info's type and installed-on), on a
real PostgreSQL: a block per service, each migration's kind, --quiet, --exit-code, --timeline and --since."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
import yaml

from conftest import Monorepo, plain
from migratekit.database.drift import since_time
from migratekit.errors import ConfigError

GOLANG_MIGRATE = (
    "CREATE TABLE public.schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL);"
    "INSERT INTO public.schema_migrations VALUES (1, false);"
)


@pytest.fixture
def history(monorepo) -> Monorepo:
    """`g` adopted one migration from golang-migrate and ran one; `s` baselined one, one edited, one pending."""
    repo = monorepo({"g": {"tracking_table": "migratekit.schema_migrations"}, "s": {}})
    repo.migration("g", "000001_create_invoices.up.sql", "CREATE TABLE IF NOT EXISTS invoices (id int);\n")
    repo.migration("g", "000001_create_invoices.down.sql", "DROP TABLE IF EXISTS invoices;\n")
    repo.migration("g", "000002_payments_invoice_idx.up.sql", "CREATE INDEX IF NOT EXISTS i ON invoices (id);\n")
    repo.migration("g", "000002_payments_invoice_idx.down.sql", "DROP INDEX IF EXISTS i;\n")
    with psycopg.connect(repo.env["G_DATABASE_URL"]) as conn:
        conn.execute("CREATE TABLE invoices (id int)")
        conn.execute(GOLANG_MIGRATE)
    assert repo.invoke("adopt", "g").returncode == 0
    repo.migration("s", "001_init.sql", "CREATE TABLE IF NOT EXISTS reports (id int);\n")
    repo.migration("s", "002_two.sql", "CREATE TABLE IF NOT EXISTS two (id int);\n")
    with psycopg.connect(repo.env["S_DATABASE_URL"]) as conn:
        conn.execute("CREATE TABLE reports (id int)")
    assert repo.invoke("baseline", "s", "--to", "001_init").returncode == 0
    assert repo.invoke("migrate-all").returncode == 0
    repo.migration("s", "002_two.sql", "CREATE TABLE IF NOT EXISTS two (id int); -- edited\n")
    repo.migration("s", "003_three.sql", "CREATE TABLE IF NOT EXISTS three (id int);\n")
    return repo


def test_each_migration_says_how_it_was_recorded(history: Monorepo) -> None:
    shown = history.invoke("status")
    assert shown.returncode == 0, shown.stdout + shown.stderr  # without --exit-code, what it finds is not a failure
    lines = [" ".join(line.split()) for line in shown.stdout.splitlines()]
    assert lines[0].startswith("g (") and lines[0].endswith("): up to date, 2 applied (1 adopted), 0 pending")
    assert lines[1] == "[x] 000001_create_invoices adopted from golang-migrate " + lines[1].split("golang-migrate ")[1]
    assert re.fullmatch(r"\[x\] 000002_payments_invoice_idx applied \S+ \S+ UTC \d+ ms", lines[2]), lines[2]
    assert lines[3].endswith("): 1 applied (1 baselined), 1 changed since applied, 1 pending")
    assert re.fullmatch(r"\[x\] 001_init baselined \S+ \S+ UTC", lines[4]), lines[4]  # no time: nothing ran
    assert lines[5].startswith("[!] 002_two changed since applied ")
    assert lines[6] == "[ ] 003_three pending"
    assert lines[7].startswith("002_two: applied checksum ")  # the detail, on its own line
    assert lines[8] == (
        "2 service(s), 1 up to date: 3 applied (1 adopted, 1 baselined), 1 changed since applied, 1 pending"
    )
    assert len(lines) == 9

    data = json.loads(history.invoke("status", "--json").stdout)
    g, s = data["services"]
    assert [(e["version"], e["state"], e["adopted_from"]) for e in g["entries"] + s["entries"]] == [
        ("000001_create_invoices", "adopted", "golang-migrate"),
        ("000002_payments_invoice_idx", "applied", None),
        ("001_init", "baselined", None),
        ("002_two", "changed", None),
        ("003_three", "pending", None),
    ]
    assert datetime.fromisoformat(g["entries"][0]["applied_at"]).tzinfo is not None


def test_quiet_shows_only_what_is_not_up_to_date_and_exit_code_is_opt_in(history: Monorepo) -> None:
    quiet = history.invoke("status", "--quiet", "--exit-code")
    assert quiet.returncode == 1, quiet.stdout + quiet.stderr
    lines = [" ".join(line.split()) for line in quiet.stdout.splitlines()]
    assert [(line[:3], line[4:].split()[0]) for line in lines[:-1] if line.startswith("[")] == [
        ("[!]", "002_two"),
        ("[ ]", "003_three"),
    ]
    assert not any(line.startswith("g ") for line in lines)
    assert history.invoke("migrate-all", "--allow-changed").returncode == 0
    clean = history.invoke("status", "--quiet", "--exit-code")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert clean.stdout.splitlines() == ["2 service(s), 2 up to date: 5 applied (1 adopted, 1 baselined), 0 pending"]


def test_the_timeline_lists_what_was_recorded_newest_first(history: Monorepo) -> None:
    with psycopg.connect(history.env["S_DATABASE_URL"]) as conn:
        conn.execute("UPDATE schema_migrations SET applied_at = now() - interval '10 days' WHERE version = '001_init'")
    shown = history.invoke("status", "--timeline")
    assert shown.returncode == 0, shown.stderr
    rows = [line.split() for line in shown.stdout.splitlines()]
    assert rows[0] == ["4", "migration(s)", "recorded,", "newest", "first"]
    assert [r[3:5] for r in rows[1:]][-1] == ["s", "001_init"]  # ten days ago: last
    assert {r[4] for r in rows[1:]} == {"000001_create_invoices", "000002_payments_invoice_idx", "001_init", "002_two"}
    times = [" ".join(r[:2]) for r in rows[1:]]
    assert times == sorted(times, reverse=True)
    recent = history.invoke("status", "--since", "7d", "--json")
    assert "001_init" not in {a["version"] for a in json.loads(recent.stdout)["timeline"]}
    assert len(json.loads(recent.stdout)["timeline"]) == 3
    bad = history.invoke("status", "--since", "last tuesday")
    assert bad.returncode == 2 and "--since 'last tuesday': give a date or time" in bad.stderr


def test_since_reads_dates_times_and_ages() -> None:
    now = datetime(2026, 12, 4, 12, tzinfo=UTC)
    assert since_time("7d", now) == now - timedelta(days=7)
    assert since_time("30min", now) == now - timedelta(minutes=30)
    assert since_time("2026-12-01", now) == datetime(2026, 12, 1, tzinfo=UTC)
    assert since_time("2026-12-01T09:30+01:00", now) == datetime(2026, 12, 1, 8, 30, tzinfo=UTC)
    with pytest.raises(ConfigError):
        since_time("soon", now)


def test_versions_are_never_folded_at_80_columns(history: Monorepo) -> None:
    shown = plain(history.invoke("status", terminal=80).stdout)
    assert "000002_payments_invoice_idx" in shown and "000001_create_invoices" in shown
    assert max(len(line) for line in shown.splitlines()) <= 80


def test_thirty_services_of_fifty_migrations_up_to_date_fit_in_forty_lines_with_quiet(monorepo, tmp_path) -> None:
    """30 services share one database, each with its own tracking table (as monorepos do)."""
    names = [f"svc{n:02d}" for n in range(30)]
    repo = monorepo({names[0]: {}})
    url = repo.env.pop(f"{names[0].upper()}_DATABASE_URL")
    services = {n: {"tracking_table": f"{n}.schema_migrations"} for n in names}
    (repo.root / "workspace.yaml").write_text(yaml.safe_dump({"version": 1, "services": services}))
    for name in names:
        repo.env[f"{name.upper()}_DATABASE_URL"] = url
        for n in range(1, 51):
            repo.migration(name, f"{n:03d}_step_{n}.sql", f"-- Migration: {n:03d}_step_{n}\nSELECT {n};\n")
    assert repo.invoke("migrate-all", "--jobs", "4").returncode == 0
    quiet = repo.invoke("status", "--quiet", "--exit-code", terminal=80)
    assert quiet.returncode == 0, quiet.stdout + quiet.stderr
    assert plain(quiet.stdout).splitlines() == ["30 service(s), 30 up to date: 1500 applied, 0 pending"]
    full = repo.invoke("status")
    assert len(full.stdout.splitlines()) == 30 * 51 + 1  # a line per service and per migration, then the total
