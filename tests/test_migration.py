"""The migration file model: the seed's checksum, header, statements and transaction mode."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from migratekit.errors import ConfigError
from migratekit.model.migration import (
    Migration,
    SqlSyntaxError,
    body,
    checksum_variants,
    load_migrations,
    parse_statements,
    seed_checksum,
)

NON_ASCII = "-- Migration: 004_add_ship_names\n-- Description: Noms de vaisseaux, 艦名, ✓\nSELECT 'Ægir';\n"

# The seed runner's checksum, verbatim from its loadMigrations().
SEED_JS = """
const fs = require('fs'); const crypto = require('crypto');
for (const f of process.argv.slice(1)) {
  const sqlContent = fs.readFileSync(f, 'utf-8');
  console.log(crypto.createHash('sha256').update(sqlContent).digest('hex').substring(0, 16));
}
"""


def write(tmp_path: Path, name: str, data: bytes) -> Migration:
    path = tmp_path / name
    path.write_bytes(data)
    return Migration(path=path, data=data)


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed: the seed's own algorithm needs it")
def test_checksum_equals_the_seed_runner_on_non_ascii_bom_crlf_and_invalid_utf8(tmp_path: Path) -> None:
    samples = {
        "a.sql": NON_ASCII.encode(),
        "b.sql": b"\xef\xbb\xbf" + NON_ASCII.replace("\n", "\r\n").encode(),
        "c.sql": b"SELECT '\xff\xfe broken';\n",
        "d.sql": b"",
    }
    for name, data in samples.items():
        (tmp_path / name).write_bytes(data)
    node = subprocess.run(
        ["node", "-e", SEED_JS, *(str(tmp_path / n) for n in samples)], capture_output=True, text=True, check=True
    )
    assert node.stdout.split() == [seed_checksum(d) for d in samples.values()]


def test_checksum_is_sha256_prefix_of_the_text() -> None:
    assert seed_checksum(NON_ASCII.encode()) == hashlib.sha256(NON_ASCII.encode()).hexdigest()[:16]


def test_crlf_and_bom_forms_of_a_file_share_accepted_checksums() -> None:
    lf = NON_ASCII.encode()
    crlf_bom = b"\xef\xbb\xbf" + NON_ASCII.replace("\n", "\r\n").encode()
    assert seed_checksum(lf) in checksum_variants(crlf_bom)
    assert seed_checksum(crlf_bom) in checksum_variants(lf)
    assert seed_checksum(b"SELECT 2;\n") not in checksum_variants(lf)


def test_version_description_and_header(tmp_path: Path) -> None:
    m = write(tmp_path, "004_add_ship_names.sql", NON_ASCII.encode())
    assert (m.version, m.number, m.description) == ("004_add_ship_names", 4, "add ship names")
    assert m.header["migration"] == "004_add_ship_names"
    assert m.header["description"] == "Noms de vaisseaux, 艦名, ✓"


def test_files_load_in_the_seeds_sorted_order_and_only_sql(tmp_path: Path) -> None:
    for name in ("010_c.sql", "002_b.sql", "001_a.sql", "README.md", "003_x.sql.bak"):
        (tmp_path / name).write_text("SELECT 1;\n")
    assert [m.filename for m in load_migrations(tmp_path)] == ["001_a.sql", "002_b.sql", "010_c.sql"]


def test_a_pipe_or_a_directory_named_sql_is_skipped_and_a_link_within_is_read(tmp_path: Path) -> None:
    """Files are read through their descriptors: a pipe must never be opened (it would block)."""
    (tmp_path / "001_a.sql").write_text("SELECT 1;\n")
    os.mkfifo(tmp_path / "002_pipe.sql")
    (tmp_path / "003_dir.sql").mkdir()
    (tmp_path / "004_link.sql").symlink_to(tmp_path / "001_a.sql")
    loaded = load_migrations(tmp_path)
    assert [(m.filename, m.sql) for m in loaded] == [("001_a.sql", "SELECT 1;\n"), ("004_link.sql", "SELECT 1;\n")]


@pytest.mark.parametrize(
    ("layout", "script", "fmt"),
    [
        ("diesel", "up.sql", "diesel"),
        ("prisma", "migration.sql", "prisma"),
        ("drizzle 1.0", "migration.sql", "drizzle"),
    ],
)
@pytest.mark.parametrize("linked", ["directory", "file"])
def test_a_migration_directory_or_script_linked_from_outside_is_refused_as_a_linked_file_is(
    tmp_path: Path, layout: str, script: str, fmt: str, linked: str
) -> None:
    """Diesel's, Prisma's and drizzle-kit 1.0's migrations are directories: a link to one outside the migrations
    directory would apply SQL the repository's review never saw there, as a linked plain file would."""
    migrations, outside = tmp_path / "migrations", tmp_path / "elsewhere"
    (migrations / "20240101120000_init").mkdir(parents=True)
    (migrations / "20240101120000_init" / script).write_text("CREATE TABLE a (id bigint);\n")
    if layout == "drizzle 1.0":
        (migrations / "20240101120000_init" / "snapshot.json").write_text("{}")
    outside.mkdir()
    (outside / script).write_text("DROP TABLE a;\n")
    if layout == "drizzle 1.0":
        (outside / "snapshot.json").write_text("{}")
    if linked == "directory":
        (migrations / "20240201120000_more").symlink_to(outside, target_is_directory=True)
    else:
        (migrations / "20240201120000_more").mkdir()
        (migrations / "20240201120000_more" / script).symlink_to(outside / script)
        if layout == "drizzle 1.0":
            (migrations / "20240201120000_more" / "snapshot.json").write_text("{}")
    with pytest.raises(ConfigError, match=r"20240201120000_more.*symbolic link to .*elsewhere.*, outside .*migrations"):
        load_migrations(migrations, fmt)


def test_a_migration_directory_linked_within_the_migrations_directory_is_read(tmp_path: Path) -> None:
    migrations = tmp_path / "migrations"
    (migrations / ".kept").mkdir(parents=True)  # a dot-directory: Diesel skips it
    (migrations / ".kept" / "up.sql").write_text("CREATE TABLE a (id bigint);\n")
    (migrations / "2024-01-01-120000_init").symlink_to(migrations / ".kept", target_is_directory=True)
    loaded = load_migrations(migrations, "diesel")
    assert [(m.filename, m.sql) for m in loaded] == [("2024-01-01-120000_init/up.sql", "CREATE TABLE a (id bigint);\n")]


def test_short_reads_and_a_file_grown_since_its_size_was_taken_are_read_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One read is trusted only when it returns the size fstat gave; a network file system may return less."""
    text = "CREATE TABLE IF NOT EXISTS ships (id bigint PRIMARY KEY, name text NOT NULL);\n"
    (tmp_path / "001_ships.sql").write_text(text)
    read = os.read
    monkeypatch.setattr(os, "read", lambda descriptor, size: read(descriptor, min(size, 7)))
    assert load_migrations(tmp_path)[0].sql == text
    monkeypatch.setattr(os, "read", read)
    earlier = os.stat_result((0,) * 6 + (len(text) - 10,) + (0,) * 3)  # the file grew by 10 bytes after fstat
    monkeypatch.setattr(os, "fstat", lambda descriptor: earlier)
    assert load_migrations(tmp_path)[0].sql == text


def test_statements_carry_their_first_line_even_after_non_ascii_text() -> None:
    text = "-- é\n-- ü\nCREATE TABLE t (a text DEFAULT 'ééé');\n\n/* block\n */\nCREATE INDEX i ON t (a);\n"
    statements = parse_statements(text)
    assert [(s.kind, s.line) for s in statements] == [("CreateStmt", 3), ("IndexStmt", 7)]
    assert statements[0].text == "CREATE TABLE t (a text DEFAULT 'ééé')"


def test_dollar_quoted_function_bodies_stay_one_statement() -> None:
    text = "CREATE OR REPLACE FUNCTION f() RETURNS int AS $$ BEGIN RETURN 1; END; $$ LANGUAGE plpgsql;\nSELECT f();"
    assert [s.kind for s in parse_statements(text)] == ["CreateFunctionStmt", "SelectStmt"]


def test_a_syntax_error_names_its_line() -> None:
    with pytest.raises(SqlSyntaxError) as caught:
        parse_statements("SELECT 1;\n-- é\nCREAT TABLE t (a int);\n")
    assert caught.value.line == 3


TRANSACTION_MODE_CASES = [
    ("CREATE TABLE IF NOT EXISTS t (a int);", True, ""),
    ("CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a);", False, "line 1: CONCURRENTLY"),
    ("SELECT 1;\nDROP INDEX CONCURRENTLY IF EXISTS i;", False, "line 2: CONCURRENTLY"),
    ("REINDEX INDEX CONCURRENTLY i;", False, "CONCURRENTLY"),
    ("ALTER TABLE events DETACH PARTITION events_2023 CONCURRENTLY;", False, "line 1: CONCURRENTLY"),
    ("ALTER TABLE events DETACH PARTITION events_2023;", True, ""),
    ("VACUUM t;", False, "VACUUM cannot run in a transaction"),
    ("ANALYZE t;", True, ""),
    ("ALTER TYPE mood ADD VALUE IF NOT EXISTS 'meh';\nUPDATE t SET m = 'meh';", False, "ADD VALUE"),
    ("ALTER TYPE mood ADD VALUE IF NOT EXISTS 'meh';", True, ""),
    ("-- migratekit: no-transaction\nSELECT 1;", False, "header directive"),
    ("BEGIN;\nCREATE TABLE IF NOT EXISTS t (a int);\nCOMMIT;", True, ""),
    ("BEGIN;\nSELECT 1;\nCOMMIT;\nBEGIN;\nSELECT 2;\nCOMMIT;", False, "manages its own transactions"),
]


@pytest.mark.parametrize(("sql", "transactional", "why"), TRANSACTION_MODE_CASES)
def test_transaction_mode(tmp_path: Path, sql: str, transactional: bool, why: str) -> None:
    got_transactional, got_why = write(tmp_path, "001_x.sql", sql.encode()).transaction_mode()
    assert got_transactional is transactional
    assert why in got_why


def test_a_self_wrapped_file_is_unwrapped_not_double_wrapped() -> None:
    statements = parse_statements("BEGIN;\nCREATE TABLE IF NOT EXISTS t (a int);\nCOMMIT;")
    assert [s.kind for s in body(statements)] == ["CreateStmt"]


def test_the_word_test_never_skips_a_parse_that_would_matter(tmp_path: Path) -> None:
    """`runs_as_written` lets apply send a file without parsing it: it must never say so wrongly."""
    repo = Path(__file__).parent.parent
    fixtures = [yaml.safe_load(p.read_text()) for p in sorted((repo / "tests" / "rules").glob("MK*.yml"))]
    texts = [sql for sql, _, _ in TRANSACTION_MODE_CASES]
    texts += [case["sql"] for cases in fixtures for case in cases.values() if "sql" in case]
    texts += [p.read_text() for p in sorted(repo.glob("services/*/migrations/*.sql"))]
    texts += [
        "-- Rollback: DROP TABLE t;\nCREATE TABLE IF NOT EXISTS t (a int);",  # a word in a comment: parse
        "CREATE OR REPLACE FUNCTION f() RETURNS int AS $$ BEGIN RETURN 1; END $$ LANGUAGE plpgsql;",
        "ALTER TYPE mood ADD /* yes */ VALUE IF NOT EXISTS 'meh';\nSELECT 1;",
        "CREATE INDEX\n  CONCURRENTLY IF NOT EXISTS i ON t (a);",
        "CREATE TABLE IF NOT EXISTS t (start_date date, value_cents int, ended boolean);",
    ]
    fast = 0
    for i, text in enumerate(texts):
        migration = write(tmp_path, f"{i:03d}_case.sql", text.encode())
        if migration.runs_as_written:
            fast += 1
            assert migration.transaction_mode() == (True, ""), text
            assert body(migration.statements) == migration.statements, text
    assert fast >= len(texts) // 3  # and the test lets most plain files through unparsed
    plain = write(tmp_path, "999_plain.sql", b"CREATE TABLE IF NOT EXISTS t (start_date date, value_cents int);")
    assert plain.runs_as_written
    assert not write(tmp_path, "998_ddl.sql", b"CREATE INDEX CONCURRENTLY i ON t (a);").runs_as_written
