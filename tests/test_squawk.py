"""migratekit against squawk's rule set: every squawk rule is covered by a rule that names it, or says why it
does not apply, and each covering rule fires on the bad example of squawk's documentation and stays silent on
its good one (the examples are written here from squawk's docs pages, docs/docs/<rule>.md of sbdchd/squawk).

Where squawk's good example puts a VALIDATE CONSTRAINT in the same file as its NOT VALID, the good case here
puts it in a later migration, as the docs' text says: in one transaction the lock is held all the same (MK312).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from migratekit.checks.rule import all_rules
from migratekit.checks.run import lint_service
from migratekit.model.migration import load_migrations

# The rule names squawk 2.x reports (its Rule enum), each with what covers it here.
SQUAWK_RULES = {
    "adding-field-with-default",
    "adding-foreign-key-constraint",
    "adding-not-nullable-field",
    "adding-required-field",
    "adding-serial-primary-key-field",
    "ban-alter-domain-with-add-constraint",
    "ban-char-field",
    "ban-concurrent-index-creation-in-transaction",
    "ban-create-domain-with-constraint",
    "ban-drop-column",
    "ban-drop-database",
    "ban-drop-not-null",
    "ban-drop-table",
    "ban-duplicate-column-assignments",
    "ban-truncate-cascade",
    "ban-uncommitted-transaction",
    "changing-column-type",
    "constraint-missing-not-valid",
    "disallowed-unique-constraint",
    "identifier-too-long",
    "prefer-bigint-over-int",
    "prefer-bigint-over-smallint",
    "prefer-identity",
    "prefer-repack",
    "prefer-robust-stmts",
    "prefer-text-field",
    "prefer-timestamp-tz",
    "renaming-column",
    "renaming-table",
    "require-concurrent-index-creation",
    "require-concurrent-index-deletion",
    "require-concurrent-partition-detach",
    "require-concurrent-reindex",
    "require-enum-value-ordering",
    "require-lock-timeout",
    "require-statement-timeout",
    "require-table-schema",
    "require-timeout-settings",
    "transaction-nesting",
    "unused-ignore",
    "syntax-error",
}
NOT_APPLICABLE = {
    "require-lock-timeout": "the runner sets lock_timeout for every migration (workspace.yaml)",
    "require-statement-timeout": "the runner sets statement_timeout for every migration (workspace.yaml)",
    "require-timeout-settings": "the runner sets both timeouts",
    "transaction-nesting": "the runner never wraps a file that manages its own transactions",
    "require-table-schema": "each service owns its unqualified names (its search_path, its own tracking table)",
}
INIT = """-- Migration: 001_init
CREATE TABLE IF NOT EXISTS schema_migrations (version TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  checksum TEXT NOT NULL, execution_time_ms INTEGER NOT NULL);
"""
# squawk rule -> (bad, good): each a list of migrations after 001_init (the tables they touch already exist)
EXAMPLES: dict[str, tuple[list[str], list[str]]] = {
    "adding-field-with-default": (
        ['ALTER TABLE "core_recipe" ADD COLUMN IF NOT EXISTS "foo" uuid DEFAULT gen_random_uuid();'],
        ['ALTER TABLE "core_recipe" ADD COLUMN IF NOT EXISTS "foo" integer DEFAULT 10 NOT NULL;'],
    ),
    "adding-foreign-key-constraint": (
        [
            "ALTER TABLE email DROP CONSTRAINT IF EXISTS fk_user;\n"
            'ALTER TABLE "email" ADD CONSTRAINT "fk_user" FOREIGN KEY ("user_id") REFERENCES "user" ("id");'
        ],
        [
            "ALTER TABLE email DROP CONSTRAINT IF EXISTS fk_user;\n"
            'ALTER TABLE "email" ADD CONSTRAINT "fk_user" FOREIGN KEY ("user_id") REFERENCES "user" ("id") NOT VALID;',
            'ALTER TABLE "email" VALIDATE CONSTRAINT "fk_user";',
        ],
    ),
    "adding-not-nullable-field": (
        ['ALTER TABLE "core_recipe" ALTER COLUMN "foo" SET NOT NULL;'],
        [
            "ALTER TABLE core_recipe DROP CONSTRAINT IF EXISTS foo_not_null;\n"
            'ALTER TABLE "core_recipe" ADD CONSTRAINT foo_not_null CHECK ("foo" IS NOT NULL) NOT VALID;',
            'ALTER TABLE "core_recipe" VALIDATE CONSTRAINT foo_not_null;\n'
            'ALTER TABLE "core_recipe" ALTER COLUMN "foo" SET NOT NULL;',
        ],
    ),
    "adding-required-field": (
        ['ALTER TABLE "recipe" ADD COLUMN IF NOT EXISTS "public" boolean NOT NULL;'],
        ['ALTER TABLE "recipe" ADD COLUMN IF NOT EXISTS "public" boolean NOT NULL DEFAULT true;'],
    ),
    "adding-serial-primary-key-field": (
        ["ALTER TABLE account DROP CONSTRAINT IF EXISTS account_pkey;\nALTER TABLE account ADD PRIMARY KEY (id);"],
        [
            "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS account_pk_idx ON account (id);",
            "ALTER TABLE account DROP CONSTRAINT IF EXISTS account_pk;\n"
            "ALTER TABLE account ADD CONSTRAINT account_pk PRIMARY KEY USING INDEX account_pk_idx;",
        ],
    ),
    "ban-alter-domain-with-add-constraint": (
        ["ALTER DOMAIN domain_name ADD CONSTRAINT constraint_name CHECK (value > 0);"],
        [
            "ALTER TABLE t DROP CONSTRAINT IF EXISTS t_value_positive;\n"
            "ALTER TABLE t ADD CONSTRAINT t_value_positive CHECK (value > 0) NOT VALID;"
        ],
    ),
    "ban-char-field": (
        ["CREATE TABLE IF NOT EXISTS app_user (id bigint PRIMARY KEY, email char(100) NOT NULL);"],
        ["CREATE TABLE IF NOT EXISTS app_user (id bigint PRIMARY KEY, email text NOT NULL);"],
    ),
    "ban-concurrent-index-creation-in-transaction": (
        ['BEGIN;\nCREATE INDEX CONCURRENTLY IF NOT EXISTS "field_name_idx" ON "table_name" ("field_name");\nCOMMIT;'],
        ['CREATE INDEX CONCURRENTLY IF NOT EXISTS "field_name_idx" ON "table_name" ("field_name");'],
    ),
    "ban-create-domain-with-constraint": (
        ["-- migratekit: ignore MK212\nCREATE DOMAIN domain_name_1 AS TEXT CHECK (value ~ '^\\d{5}$');"],
        ["-- migratekit: ignore MK212\nCREATE DOMAIN domain_name_1 AS TEXT;"],
    ),
    "ban-drop-column": (
        ['ALTER TABLE "bar_tbl" DROP COLUMN IF EXISTS "foo_col";'],
        ['ALTER TABLE "bar_tbl" ADD COLUMN IF NOT EXISTS "baz_col" text;'],
    ),
    "ban-drop-database": (["DROP DATABASE IF EXISTS squawk;"], ["CREATE SCHEMA IF NOT EXISTS squawk;"]),
    "ban-drop-not-null": (
        ['ALTER TABLE "bar_tbl" ALTER COLUMN "foo_col" DROP NOT NULL;'],
        ['ALTER TABLE "bar_tbl" ALTER COLUMN "foo_col" SET DEFAULT \'none\';'],
    ),
    "ban-drop-table": (['DROP TABLE IF EXISTS "table_name";'], ["SELECT 1;"]),
    "ban-duplicate-column-assignments": (
        ["UPDATE t SET a = 1, a = 2;"],
        ["UPDATE t SET a = 2;"],
    ),
    "ban-truncate-cascade": (["TRUNCATE a, b, c CASCADE;"], ["TRUNCATE a, b, c;"]),
    "changing-column-type": (
        ['ALTER TABLE "core_recipe" ALTER COLUMN "edits" TYPE text USING "edits"::text;'],
        ['ALTER TABLE "core_recipe" ADD COLUMN IF NOT EXISTS "edits_text" text;'],
    ),
    "constraint-missing-not-valid": (
        [
            'ALTER TABLE "accounts" DROP CONSTRAINT IF EXISTS "positive_balance";\n'
            'ALTER TABLE "accounts" ADD CONSTRAINT "positive_balance" CHECK ("balance" >= 0);'
        ],
        [
            'ALTER TABLE "accounts" DROP CONSTRAINT IF EXISTS "positive_balance";\n'
            'ALTER TABLE "accounts" ADD CONSTRAINT "positive_balance" CHECK ("balance" >= 0) NOT VALID;',
            "ALTER TABLE accounts VALIDATE CONSTRAINT positive_balance;",
        ],
    ),
    "disallowed-unique-constraint": (
        [
            "ALTER TABLE distributors DROP CONSTRAINT IF EXISTS dist_id_uniq;\n"
            "ALTER TABLE distributors ADD CONSTRAINT dist_id_uniq UNIQUE (dist_id);"
        ],
        [
            "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS dist_id_uniq ON distributors (dist_id);",
            "ALTER TABLE distributors DROP CONSTRAINT IF EXISTS distributors_dist_id_key;\n"
            "ALTER TABLE distributors ADD CONSTRAINT distributors_dist_id_key UNIQUE USING INDEX dist_id_uniq;",
        ],
    ),
    "identifier-too-long": (
        ["CREATE TABLE IF NOT EXISTS table_very_long_very_long_very_long_very_long_very_long_very_long (id bigint);"],
        ["CREATE TABLE IF NOT EXISTS a_shorter_table_name (a_shorter_column_name bigint);"],
    ),
    "prefer-bigint-over-int": (
        ["CREATE TABLE IF NOT EXISTS users (id integer);"],
        ["CREATE TABLE IF NOT EXISTS users (id bigint);"],
    ),
    "prefer-bigint-over-smallint": (
        ["CREATE TABLE IF NOT EXISTS users (id smallint);"],
        ["CREATE TABLE IF NOT EXISTS users (id bigint);"],
    ),
    "prefer-identity": (
        ["CREATE TABLE IF NOT EXISTS users (id serial);"],
        ["CREATE TABLE IF NOT EXISTS users (id bigint GENERATED BY DEFAULT AS IDENTITY);"],
    ),
    "prefer-repack": (["VACUUM FULL t;", "CLUSTER t USING t_pkey;"], ["VACUUM (ANALYZE) t;"]),
    "prefer-robust-stmts": (
        ['ALTER TABLE "app_user" ADD COLUMN "email" integer NULL;'],
        ['ALTER TABLE "app_user" ADD COLUMN IF NOT EXISTS "email" integer NULL;'],
    ),
    "prefer-text-field": (
        ['CREATE TABLE IF NOT EXISTS "app_user" ("id" bigint PRIMARY KEY, "email" varchar(100) NOT NULL);'],
        ['CREATE TABLE IF NOT EXISTS "app_user" ("id" bigint PRIMARY KEY, "email" TEXT NOT NULL);'],
    ),
    "prefer-timestamp-tz": (
        ["CREATE TABLE IF NOT EXISTS app.users (created_ts timestamp);"],
        ["CREATE TABLE IF NOT EXISTS app.users (created_ts timestamptz);"],
    ),
    "renaming-column": (['ALTER TABLE "table_name" RENAME COLUMN "column_name" TO "new_column_name";'], ["SELECT 1;"]),
    "renaming-table": (['ALTER TABLE "table_name" RENAME TO "new_table_name";'], ["SELECT 1;"]),
    "require-concurrent-index-creation": (
        ['CREATE INDEX IF NOT EXISTS "field_name_idx" ON "table_name" ("field_name");'],
        ['CREATE INDEX CONCURRENTLY IF NOT EXISTS "field_name_idx" ON "table_name" ("field_name");'],
    ),
    "require-concurrent-index-deletion": (
        ['DROP INDEX IF EXISTS "field_name_idx";'],
        ['DROP INDEX CONCURRENTLY IF EXISTS "field_name_idx";'],
    ),
    "require-concurrent-partition-detach": (
        ["ALTER TABLE parent_table DETACH PARTITION child_table;"],
        ["ALTER TABLE parent_table DETACH PARTITION child_table CONCURRENTLY;"],
    ),
    "require-concurrent-reindex": (
        ["REINDEX TABLE foo;", "REINDEX INDEX foo_idx;"],
        ["REINDEX TABLE CONCURRENTLY foo;", "REINDEX INDEX CONCURRENTLY foo_idx;"],
    ),
    "require-enum-value-ordering": (
        ["ALTER TYPE status ADD VALUE IF NOT EXISTS 'pending_review';"],
        ["ALTER TYPE status ADD VALUE IF NOT EXISTS 'pending_review' BEFORE 'approved';"],
    ),
    "unused-ignore": (["-- migratekit: ignore MK302\nSELECT 1;"], ["SELECT 1;"]),
    "ban-uncommitted-transaction": (
        ["BEGIN;\nCREATE TABLE IF NOT EXISTS users (id bigint);"],
        ["BEGIN;\nCREATE TABLE IF NOT EXISTS users (id bigint);\nCOMMIT;"],
    ),
    "syntax-error": (["CREATE TABLE IF NOT EXISTS t (a int b int);"], ["CREATE TABLE IF NOT EXISTS t (a int, b int);"]),
}


def test_every_squawk_rule_is_covered_or_does_not_apply() -> None:
    claimed = {name for r in all_rules() for name in r.squawk}
    assert claimed <= SQUAWK_RULES, f"not squawk's names: {claimed - SQUAWK_RULES}"
    assert SQUAWK_RULES - claimed == set(NOT_APPLICABLE), "each squawk rule is covered or says why not"
    assert set(EXAMPLES) == claimed


def findings(tmp_path: Path, bodies: list[str]) -> set[str]:
    directory = tmp_path / "services" / "svc" / "migrations"
    directory.mkdir(parents=True)
    (directory / "README.md").write_text("how to add, how to roll back\n")
    (directory / "001_init.sql").write_text(INIT)
    for number, body in enumerate(bodies, start=2):
        name = f"{number:03d}_case"
        (directory / f"{name}.sql").write_text(f"-- Migration: {name}\n{body}\n")
    found, _ = lint_service(
        "svc", directory, load_migrations(directory), tmp_path, "schema_migrations", type_advice=True
    )
    return {f.code for f in found}


@pytest.mark.parametrize("squawk", sorted(EXAMPLES))
def test_the_rules_that_name_it_fire_on_its_bad_example_not_its_good_one(tmp_path: Path, squawk: str) -> None:
    codes = {r.code for r in all_rules() if squawk in r.squawk}
    bad, good = EXAMPLES[squawk]
    fired = findings(tmp_path / "bad", bad) & codes
    assert fired, f"none of {sorted(codes)} fires on squawk's bad example"
    assert not findings(tmp_path / "good", good) & codes, "a rule fires on squawk's good example"
