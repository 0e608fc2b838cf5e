"""The rule engine: how findings are placed and silenced, and what the registry refuses to declaration.

Each rule's own failing and passing cases are data, in tests/rules/<CODE>.yml (test_rules.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from migratekit.checks.rule import RuleDeclarationError, Scope, declaration, rule, rules_for
from migratekit.checks.run import lint_service
from migratekit.model.migration import load_migrations, parse_statements

INIT = """-- Migration: 001_init
CREATE TABLE IF NOT EXISTS schema_migrations (version TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  checksum TEXT NOT NULL, execution_time_ms INTEGER NOT NULL);
"""
GOOD = {"001_init.sql": INIT, "002_add_users.sql": "-- Migration: 002_add_users\nSELECT 1;\n"}


def lint(tmp_path: Path, files: dict[str, str]) -> list:
    directory = tmp_path / "services" / "svc" / "migrations"
    directory.mkdir(parents=True)
    (directory / "README.md").write_text("how to add, how to roll back\n")
    for name, content in files.items():
        (directory / name).write_text(content)
    return lint_service("svc", directory, load_migrations(directory), tmp_path, "schema_migrations")[0]


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


def test_an_ignore_after_accented_text_silences_its_own_statement(tmp_path: Path) -> None:
    """PostgreSQL's scanner counts characters, the file's lines are found in bytes: é is two."""
    sql = (
        "COMMENT ON TABLE killmails IS 'é" + "é" * 60 + "';\n"
        "CREATE INDEX IF NOT EXISTS idx_a ON killmails (a);\n"
        "-- migratekit: ignore MK302 -- killmails is tiny\n"
        "CREATE INDEX IF NOT EXISTS idx_b ON killmails (b);\n"
    )
    findings = lint(tmp_path, {**GOOD, "003_x.sql": f"-- Migration: 003_x\n{sql}"})
    assert [(f.code, f.line) for f in findings if f.code in ("MK302", "MK112")] == [("MK302", 3)]


def documented(ws: object) -> list:
    """A rule for the registry tests.

    Bad: something
    Good: something else
    """
    return []


def undocumented(ws: object) -> list:
    return []


@pytest.mark.parametrize(
    ("code", "severity", "scope", "check", "kinds", "problem"),
    [
        ("MK61", "warning", Scope.ACROSS, documented, (), "three digits"),
        ("mk601", "warning", Scope.ACROSS, documented, (), "three digits"),
        ("MK701", "warning", Scope.ACROSS, documented, (), "three digits"),
        ("MK201", "warning", Scope.ACROSS, documented, (), "belongs to MK6xx"),
        ("MK401", "error", Scope.STATEMENT, documented, ("CreateStmt",), "belongs to MK2xx, MK3xx"),
        ("MK699", "fatal", Scope.ACROSS, documented, (), "severity"),
        ("MK699", "warning", Scope.ACROSS, undocumented, (), "'Bad:'"),
        ("MK299", "warning", Scope.STATEMENT, documented, (), "node types"),
    ],
)
def test_a_badly_declared_rule_is_refused(code, severity, scope, check, kinds, problem) -> None:
    with pytest.raises(RuleDeclarationError, match=problem):
        declaration(code, severity, "a hint", scope, check, kinds)


def test_a_code_declared_twice_is_refused() -> None:
    with pytest.raises(RuleDeclarationError, match="MK201 is declared twice"):
        rule("MK201", "error", "a hint", scope=Scope.STATEMENT, kinds=("CreateStmt",))(documented)


def test_a_text_test_is_for_statement_rules_only() -> None:
    with pytest.raises(RuleDeclarationError, match="only a statement rule"):
        declaration("MK699", "warning", "a hint", Scope.ACROSS, documented, may_hit=lambda text: True)


# A file whose quotes pair up differently from its statements' (a '"' in a string first), an identifier of 80
# bytes between quotes and spaces inside, an enum value added and used, the environment named.
TESTED = (
    "-- Migration: 003_x\nSELECT '\"';\n"
    f'CREATE TABLE IF NOT EXISTS "{"long name " * 8}" (id bigint REFERENCES accounts (id));\n'
    "BEGIN;\nALTER TYPE mood ADD VALUE IF NOT EXISTS 'calm';\nSELECT 'calm'::mood;\nCOMMIT;\n"
    "DO $$ BEGIN IF current_database() = 'production' THEN RAISE NOTICE 'x'; END IF; END $$;\n"
)


def test_a_rules_text_test_of_a_file_holds_when_it_holds_of_any_of_its_statements(tmp_path: Path) -> None:
    """The audit asks a rule's text test (Rule.may_hit) once a file, and runs the rule on none of the file's
    statements when it is false: so it must be true of a file that holds a statement it is true of."""
    tested = [r for r in rules_for(Scope.STATEMENT) if r.may_hit is not None]
    assert {r.code for r in tested} >= {"MK301", "MK309", "MK325", "MK328"}
    for statement in parse_statements(TESTED):
        for declared in tested:
            if declared.may_hit and declared.may_hit(statement.text):
                assert declared.may_hit(TESTED), (declared.code, statement.text)
    found = {f.code for f in lint(tmp_path, {**GOOD, "003_x.sql": TESTED})}
    assert found >= {"MK301", "MK309", "MK325", "MK328"}
