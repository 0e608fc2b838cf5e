"""`adopt` on other tools' histories as real databases hold them: undone, deleted, failed and baselined versions,
odd rows no tool writes, tables of another shape. Each case runs the dry run and the real import as a user would
and checks the exit code, what the user reads, and migratekit's rows (or that nothing at all was created).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg
import pytest

from conftest import Monorepo

TRACKING = "svc.schema_migrations"  # its schema too must not be left behind by a refused import
GM_TABLE = "CREATE TABLE schema_migrations (version bigint NOT NULL PRIMARY KEY, dirty boolean NOT NULL);"
DM_TABLE = "CREATE TABLE schema_migrations (version varchar(128) PRIMARY KEY);"
GOOSE_TABLE = (
    "CREATE TABLE goose_db_version (id serial PRIMARY KEY, version_id bigint NOT NULL, is_applied boolean NOT NULL, "
    "tstamp timestamp DEFAULT now());"
)
FLYWAY_TABLE = (
    "CREATE TABLE flyway_schema_history (installed_rank int PRIMARY KEY, version varchar(50), description "
    "varchar(200) NOT NULL, type varchar(20) NOT NULL, script varchar(1000) NOT NULL, checksum int, installed_by "
    "varchar(100) NOT NULL, installed_on timestamp NOT NULL DEFAULT now(), execution_time int NOT NULL, "
    "success boolean NOT NULL);"
)
NPM_TABLE = "CREATE TABLE pgmigrations (id serial PRIMARY KEY, name varchar(255) NOT NULL, run_on timestamp NOT NULL);"
KYSELY_TABLE = "CREATE TABLE kysely_migration (name varchar(255) PRIMARY KEY, timestamp varchar(255) NOT NULL);"


def updown(*numbers: int) -> dict[str, str]:
    files = {}
    for n in numbers:
        files[f"{n:06d}_g{n}.up.sql"] = f"CREATE TABLE IF NOT EXISTS g{n} (id int);\n"
        files[f"{n:06d}_g{n}.down.sql"] = f"DROP TABLE IF EXISTS g{n};\n"
    return files


def seed(*names: str) -> dict[str, str]:
    return {f"{name}.sql": f"CREATE TABLE IF NOT EXISTS t_{name.split('_')[-1]} (id int);\n" for name in names}


DBMATE = {f"2024010{n}000000_d{n}.sql": f"-- migrate:up\nSELECT {n};\n-- migrate:down\nSELECT {n};\n" for n in (1, 2)}
GOOSE = {f"0000{n}_s{n}.sql": f"-- +goose Up\nSELECT {n};\n-- +goose Down\nSELECT {n};\n" for n in (1, 2)}
FLYWAY = seed("001_f1", "002_f2", "003_f3")


def flyway(*rows: str) -> str:
    """Rows of (installed_rank, version, description, type, script, success)."""
    values = ", ".join(f"({r}, 'app', now(), 1)" for r in rows)
    return (
        f"{FLYWAY_TABLE} INSERT INTO flyway_schema_history (installed_rank, version, description, type, script, "
        f"success, installed_by, installed_on, execution_time) VALUES {values};"
    )


@dataclass(frozen=True)
class Case:
    name: str
    tool: str
    files: dict[str, str]
    history: str  # the other tool's table, as the database holds it
    code: int
    says: str  # what both runs print (the dry run says "would record" where the real one says "recorded")
    recorded: list[str] = field(default_factory=list)  # migratekit's rows after the real run (a refusal: no table)


CASES = [
    # R4: only what the tool vouches for
    Case(
        "golang-migrate at a version above every file",
        "golang-migrate",
        updown(1, 2, 3),
        f"{GM_TABLE} INSERT INTO schema_migrations VALUES (7, false);",
        1,
        "migratekit: golang-migrate's public.schema_migrations records as applied, but no file matches: 7",
    ),
    Case(
        "golang-migrate at a version too large for any tool",
        "golang-migrate",
        updown(1, 2, 3),
        "CREATE TABLE schema_migrations (version numeric NOT NULL, dirty boolean NOT NULL);"
        "INSERT INTO schema_migrations VALUES (99999999999999999999, false);",
        1,
        "no file matches: 99999999999999999999",
    ),
    Case(
        "golang-migrate with two rows",
        "golang-migrate",
        updown(1, 2, 3),
        f"{GM_TABLE} INSERT INTO schema_migrations VALUES (1, false), (3, false);",
        1,
        "migratekit: golang-migrate's public.schema_migrations holds 2 rows (1, 3): golang-migrate keeps one, "
        "the version it is at",
    ),
    Case(
        "golang-migrate versions compared as numbers",
        "golang-migrate",
        updown(2, 9, 10, 11),
        f"{GM_TABLE} INSERT INTO schema_migrations VALUES (10, false);",
        0,
        "3 version(s) from golang-migrate's public.schema_migrations into svc.schema_migrations "
        "(000002_g2, 000009_g9, 000010_g10)",
        ["000002_g2", "000009_g9", "000010_g10"],
    ),
    Case(
        "flyway: a version undone",
        "flyway",
        FLYWAY,
        flyway(
            "1, '1', 'f1', 'SQL', 'V1__f1.sql', true",
            "2, '2', 'f2', 'SQL', 'V2__f2.sql', true",
            "3, '2', 'f2', 'UNDO_SQL', 'U2__f2.sql', true",
        ),
        0,
        "1 version(s) from flyway's public.flyway_schema_history into svc.schema_migrations (001_f1)",
        ["001_f1"],
    ),
    Case(
        "flyway: a version undone, then applied again",
        "flyway",
        FLYWAY,
        flyway(
            "1, '1', 'f1', 'SQL', 'V1__f1.sql', true",
            "2, '2', 'f2', 'SQL', 'V2__f2.sql', true",
            "3, '2', 'f2', 'UNDO_SQL', 'U2__f2.sql', true",
            "4, '2', 'f2', 'SQL', 'V2__f2.sql', true",
        ),
        0,
        "2 version(s) from flyway's public.flyway_schema_history into svc.schema_migrations (001_f1, 002_f2)",
        ["001_f1", "002_f2"],
    ),
    Case(
        "flyway: a version repair marked deleted",
        "flyway",
        FLYWAY,
        flyway(
            "1, '1', 'f1', 'SQL', 'V1__f1.sql', true",
            "2, '2', 'f2', 'SQL', 'V2__f2.sql', true",
            "3, '2', 'f2', 'DELETE', 'V2__f2.sql', true",
        ),
        0,
        "1 version(s) from flyway's public.flyway_schema_history into svc.schema_migrations (001_f1)",
        ["001_f1"],
    ),
    Case(
        "flyway: a failed migration",
        "flyway",
        FLYWAY,
        flyway("1, '1', 'f1', 'SQL', 'V1__f1.sql', true", "2, '2', 'f2', 'SQL', 'V2__f2.sql', false"),
        1,
        "migratekit: flyway's public.flyway_schema_history records a failed migration to version 2 (f2): Flyway "
        "stops there too; remove its half-done changes and run flyway repair, then adopt",
    ),
    Case(
        "flyway: a failed migration repair marked deleted",
        "flyway",
        FLYWAY,
        flyway(
            "1, '1', 'f1', 'SQL', 'V1__f1.sql', true",
            "2, '2', 'f2', 'SQL', 'V2__f2.sql', false",
            "3, '2', 'f2', 'DELETE', 'V2__f2.sql', true",
        ),
        0,
        "(001_f1)",
        ["001_f1"],
    ),
    Case(
        "flyway: its schema-creation marker and a baseline stand for what is below it",
        "flyway",
        FLYWAY,
        flyway(
            "0, '0', '<< Flyway Schema Creation >>', 'SCHEMA', '\"public\"', true",
            "1, '2', '<< Flyway Baseline >>', 'BASELINE', '<< Flyway Baseline >>', true",
            "2, '3', 'f3', 'SQL', 'V3__f3.sql', true",
        ),
        0,
        "3 version(s) from flyway's public.flyway_schema_history into svc.schema_migrations (001_f1, 002_f2, 003_f3)",
        ["001_f1", "002_f2", "003_f3"],
    ),
    Case(
        "flyway: 1.0 is version 1, 1.1 is none of these files",
        "flyway",
        FLYWAY,
        flyway("1, '1.0', 'f1', 'SQL', 'V1.0__f1.sql', true", "2, '1.1', 'f1b', 'SQL', 'V1.1__f1b.sql', true"),
        1,
        "no file matches: 1.1",
    ),
    Case(
        "flyway: files under Flyway's own names",
        "flyway",
        {"V1__f1.sql": "CREATE TABLE IF NOT EXISTS f1 (id int);\n", "V2__f2.sql": "SELECT 2;\n"},
        flyway("1, '1', 'f1', 'SQL', 'V1__f1.sql', true", "2, '2', 'f2', 'SQL', 'V2__f2.sql', true"),
        0,
        "(V1__f1, V2__f2)",
        ["V1__f1", "V2__f2"],
    ),
    # R5: what no tool writes is refused with a message, or read as the tool reads it
    Case(
        "golang-migrate version NULL",
        "golang-migrate",
        updown(1, 2),
        "CREATE TABLE schema_migrations (version bigint, dirty boolean NOT NULL);"
        "INSERT INTO schema_migrations VALUES (NULL, false);",
        1,
        "migratekit: golang-migrate's public.schema_migrations holds a row with no version",
    ),
    Case(
        "dbmate version NULL",
        "dbmate",
        DBMATE,
        "CREATE TABLE schema_migrations (version varchar(128)); INSERT INTO schema_migrations VALUES (NULL);",
        1,
        "migratekit: dbmate's public.schema_migrations holds a row with no version",
    ),
    Case(
        "dbmate: the same version twice (a table without its key)",
        "dbmate",
        DBMATE,
        "CREATE TABLE schema_migrations (version varchar(128));"
        "INSERT INTO schema_migrations VALUES ('20240101000000'), ('20240101000000');",
        0,
        "1 version(s) from dbmate's public.schema_migrations into svc.schema_migrations (20240101000000_d1)",
        ["20240101000000_d1"],
    ),
    Case(
        "flyway: versions 1 and 01 (one version to Flyway)",
        "flyway",
        FLYWAY,
        flyway("1, '1', 'f1', 'SQL', 'V1__f1.sql', true", "2, '01', 'f1', 'SQL', 'V01__f1.sql', true"),
        0,
        "(001_f1)",
        ["001_f1"],
    ),
    Case(
        "flyway: two DELETE rows for one version",
        "flyway",
        FLYWAY,
        flyway(
            "1, '1', 'f1', 'SQL', 'V1__f1.sql', true",
            "2, '1', 'f1', 'DELETE', 'V1__f1.sql', true",
            "3, '1', 'f1', 'DELETE', 'V1__f1.sql', true",
        ),
        1,
        "migratekit: flyway's public.flyway_schema_history marks version 1 deleted twice",
    ),
    Case(
        "goose table of another shape",
        "goose",
        GOOSE,
        "CREATE TABLE goose_db_version (id int, v text); INSERT INTO goose_db_version VALUES (1, '1');",
        1,
        "migratekit: public.goose_db_version is named as goose's history table, but it lacks goose's columns "
        "(is_applied, tstamp, version_id; it has id, v)",
    ),
    Case(
        "goose version NULL",
        "goose",
        GOOSE,
        "CREATE TABLE goose_db_version (id serial PRIMARY KEY, version_id bigint, is_applied boolean NOT NULL, "
        "tstamp timestamp DEFAULT now()); INSERT INTO goose_db_version (version_id, is_applied) VALUES (0, true), "
        "(1, true), (NULL, true);",
        1,
        "migratekit: goose's public.goose_db_version holds a row with no version",
    ),
    Case(
        "node-pg-migrate: one name twice",
        "node-pg-migrate",
        seed("1700000000000_n1", "1700000000001_n2"),
        f"{NPM_TABLE} INSERT INTO pgmigrations (name, run_on) VALUES ('1700000000000_n1', now()), "
        "('1700000000000_n1', now());",
        0,
        "(1700000000000_n1)",
        ["1700000000000_n1"],
    ),
    Case(
        "kysely: a timestamp that is not a time",
        "kysely",
        seed("001_k1", "002_k2"),
        f"{KYSELY_TABLE} INSERT INTO kysely_migration VALUES ('001_k1', 'not a time');",
        1,
        "migratekit: kysely's public.kysely_migration says 001_k1 was applied at 'not a time', which is not a time",
    ),
    Case(
        "kysely: names are matched whole",
        "kysely",
        seed("001_k1", "002_k2"),
        f"{KYSELY_TABLE} INSERT INTO kysely_migration VALUES ('1', '2024-01-01T00:00:00.000Z');",
        1,
        "no file matches: 1",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_adopt_records_only_what_the_other_tool_vouches_for(monorepo, case: Case) -> None:
    repo: Monorepo = monorepo({"svc": {"tracking_table": TRACKING}})
    for name, text in case.files.items():
        repo.migration("svc", name, text)
    with psycopg.connect(repo.env["SVC_DATABASE_URL"], autocommit=True) as conn:
        conn.execute(case.history)
    for flags, verb in ((["--dry-run"], "would record"), ([], "recorded")):
        result = repo.invoke("adopt", "svc", "--from", case.tool, *flags)
        assert result.returncode == case.code, result.stdout + result.stderr
        assert "Traceback" not in result.stderr, result.stderr
        if case.code == 0:
            assert result.stdout.startswith(f"svc: {verb} ") and case.says in result.stdout, result.stdout
        else:
            assert case.says in result.stderr, result.stderr
    left = repo.query("svc", "SELECT to_regclass('svc.schema_migrations'), to_regnamespace('svc')")
    if case.code:
        assert left == [(None, None)]  # nothing created: no empty table, no schema
    else:
        assert [v for (v,) in repo.query("svc", f"SELECT version FROM {TRACKING} ORDER BY 1")] == case.recorded
