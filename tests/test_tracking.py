"""The tracking table's DDL exists once (migratekit.tracking); every copy the project ships must match it.

The seed's runner, the scaffold's templates, the example services and the benchmark's files all
create the table themselves: each CREATE TABLE and CREATE INDEX of it is compared, as PostgreSQL's
parser sees it (pglast's fingerprint ignores spacing, case and comments), with the contract.
"""

from __future__ import annotations

import re
import sys

import pytest
from pglast import parser

from conftest import REPO
from migratekit.model.contract import create_table_sql, index_name

TS_SQL = re.compile(r"sql`([^`]*CREATE (?:TABLE|INDEX) IF NOT EXISTS[^`]*)`")


def fingerprints(text: str, tracking_table: str) -> set[str]:
    """Fingerprints of the statements in `text` that create `tracking_table` or its index."""
    found = set()
    for statement in parser.split(text):
        if tracking_table in statement and re.search(r"CREATE (TABLE|INDEX) IF NOT EXISTS", statement, re.I):
            found.add(parser.fingerprint(statement))
    return found


def contract(tracking_table: str) -> set[str]:
    index = f"CREATE INDEX IF NOT EXISTS {index_name(tracking_table)} ON {tracking_table}(applied_at DESC)"
    return {parser.fingerprint(create_table_sql(tracking_table)), parser.fingerprint(index)}


SQL_COPIES = [
    "tools/migratekit/scaffold/templates/common/migrations/001_init.sql",
    "services/authentication/migrations/001_init.sql",
    "services/battles/migrations/001_init.sql",
]
TS_RUNNERS = [
    "tools/migratekit/scaffold/templates/typescript/src/database/migrate.ts",
    "services/authentication/src/database/migrate.ts",
    "services/battles/src/database/migrate.ts",
]


@pytest.mark.parametrize("relative", SQL_COPIES)
def test_shipped_init_files_create_the_contracts_table(relative: str) -> None:
    assert fingerprints((REPO / relative).read_text(), "schema_migrations") == contract("schema_migrations")


@pytest.mark.parametrize("relative", TS_RUNNERS)
def test_typescript_runners_create_the_contracts_table(relative: str) -> None:
    statements = ";\n".join(TS_SQL.findall((REPO / relative).read_text()))
    assert fingerprints(statements, "schema_migrations") == contract("schema_migrations")


def test_a_schema_qualified_tracking_table_matches_too() -> None:
    text = (REPO / "services/enrichment/migrations/001_init.sql").read_text()
    assert parser.fingerprint(create_table_sql("enrichment.schema_migrations")) in fingerprints(
        text, "enrichment.schema_migrations"
    )


def test_the_benchmarks_files_create_the_contracts_table() -> None:
    sys.path.insert(0, str(REPO / "bench"))
    try:
        from synth import INIT
    finally:
        sys.path.remove(str(REPO / "bench"))
    assert fingerprints(INIT, "schema_migrations") == contract("schema_migrations")


def test_a_different_table_is_told_apart() -> None:
    changed = create_table_sql().replace("checksum TEXT NOT NULL", "checksum TEXT")
    assert parser.fingerprint(changed) not in contract("schema_migrations")
