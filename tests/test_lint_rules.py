"""Every lint rule: a failing and a passing example (tests/rules/*.yml and the file cases below)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from migratekit.lint.engine import STATEMENT_RULES, all_rules, lint_migrations
from migratekit.migration import load_migrations

CASES = yaml.safe_load((Path(__file__).parent / "rules" / "statement_cases.yml").read_text())
INIT = """-- Migration: 001_init
CREATE TABLE IF NOT EXISTS schema_migrations (version TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  checksum TEXT NOT NULL, execution_time_ms INTEGER NOT NULL);
"""


def lint(tmp_path: Path, files: dict[str, bytes | str], readme: bool = True) -> list:
    directory = tmp_path / "services" / "svc" / "migrations"
    directory.mkdir(parents=True)
    if readme:
        (directory / "README.md").write_text("how to add, how to roll back\n")
    for name, content in files.items():
        (directory / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    return lint_migrations("svc", directory, load_migrations(directory), tmp_path, "schema_migrations")


def codes_in_case(tmp_path: Path, sql: str) -> set[str]:
    findings = lint(tmp_path, {"001_init.sql": INIT, "002_case.sql": f"-- Migration: 002_case\n{sql}"})
    return {f.code for f in findings if f.path.endswith("002_case.sql")}


def test_every_statement_rule_has_cases() -> None:
    assert sorted(CASES) == sorted(r.rule.code for r in STATEMENT_RULES)


@pytest.mark.parametrize("code", sorted(CASES))
def test_statement_rule_fails_on_the_bad_example(tmp_path: Path, code: str) -> None:
    assert code in codes_in_case(tmp_path, CASES[code]["fail"])


@pytest.mark.parametrize("code", sorted(CASES))
def test_statement_rule_passes_the_good_example(tmp_path: Path, code: str) -> None:
    assert code not in codes_in_case(tmp_path, CASES[code]["pass"])


GOOD = {"001_init.sql": INIT, "002_add_users.sql": "-- Migration: 002_add_users\nSELECT 1;\n"}
FILE_CASES = {
    "MK101": ({**GOOD, "3-AddEmail.sql": "-- Migration: 3-AddEmail\nSELECT 1;"}, GOOD),
    "MK102": ({**GOOD, "002_add_phone.sql": "-- Migration: 002_add_phone\nSELECT 1;"}, GOOD),
    "MK103": ({**GOOD, "004_add_email.sql": "-- Migration: 004_add_email\nSELECT 1;"}, GOOD),
    "MK104": ({**GOOD, "0003_x.sql": "-- Migration: 0003_x\nSELECT 1;"}, GOOD),
    "MK106": ({**GOOD, "003_x.sql": "-- Migration: 002_add_users\nSELECT 1;"}, GOOD),
    "MK107": ({**GOOD, "003_x.sql": b"-- Migration: 003_x\nSELECT '\xe9';"}, GOOD),
    "MK108": ({**GOOD, "003_x.sql": b"\xef\xbb\xbf-- Migration: 003_x\r\nSELECT 1;\r\n"}, GOOD),
    "MK109": ({**GOOD, "003_x.sql": "-- Migration: 003_x\n-- nothing yet\n"}, GOOD),
    "MK110": ({**GOOD, "003_x.sql": "-- Migration: 003_x\nSELECT 1;\nCREAT TABLE t (a int);\n"}, GOOD),
    "MK111": ({"001_init.sql": "-- Migration: 001_init\nCREATE TABLE IF NOT EXISTS a (id int);"}, GOOD),
    "MK112": (
        {**GOOD, "003_x.sql": "-- Migration: 003_x\n-- migratekit: ignore MK302 -- small table\nSELECT 1;"},
        {
            **GOOD,
            "003_x.sql": "-- Migration: 003_x\n-- migratekit: ignore MK302 -- small table\n"
            "CREATE INDEX IF NOT EXISTS i ON t (a);",
        },
    ),
    "MK113": ({**GOOD, "003_x.sql.bak": "SELECT 1;"}, GOOD),
}


@pytest.mark.parametrize("code", sorted(FILE_CASES))
def test_file_rule_fails_and_passes(tmp_path: Path, code: str) -> None:
    bad, good = FILE_CASES[code]
    assert code in {f.code for f in lint(tmp_path / "bad", bad)}
    assert code not in {f.code for f in lint(tmp_path / "good", good)}


def test_missing_readme_is_mk105(tmp_path: Path) -> None:
    assert "MK105" in {f.code for f in lint(tmp_path / "bad", GOOD, readme=False)}
    assert "MK105" not in {f.code for f in lint(tmp_path / "good", GOOD)}


def test_findings_carry_the_line_of_the_statement_or_its_part(tmp_path: Path) -> None:
    sql = "SELECT 1;\n\nALTER TABLE accounts\n  ADD COLUMN IF NOT EXISTS a int,\n  ADD COLUMN b int;\n"
    findings = lint(tmp_path, {**GOOD, "003_x.sql": f"-- Migration: 003_x\n{sql}"})
    mk210 = [f for f in findings if f.code == "MK210"]
    assert [(f.path, f.line, f.message) for f in mk210] == [
        ("services/svc/migrations/003_x.sql", 6, "ADD COLUMN b without IF NOT EXISTS")
    ]


def test_an_ignore_silences_only_its_statement_and_code(tmp_path: Path) -> None:
    sql = (
        "-- migratekit: ignore MK302 -- killmails is tiny\n"
        "CREATE INDEX IF NOT EXISTS idx_a ON killmails (a);\n"
        "CREATE INDEX IF NOT EXISTS idx_b ON killmails (b);\n"
    )
    findings = lint(tmp_path, {**GOOD, "003_x.sql": f"-- Migration: 003_x\n{sql}"})
    assert [(f.code, f.line) for f in findings if f.code in ("MK302", "MK112")] == [("MK302", 4)]


def test_rule_codes_are_unique_documented_and_in_their_family() -> None:
    rules = all_rules()
    assert len({r.code for r in rules}) == len(rules)
    for r in rules:
        assert r.code[:3] in ("MK1", "MK2", "MK3") and r.summary and r.hint
        assert "Bad:" in r.doc and "Good:" in r.doc, r.code
