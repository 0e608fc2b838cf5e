"""A database's schema as plain data, from PostgreSQL's catalogs, and the difference between two.

Used to prove idempotency (the schema after a second run equals the first) and to find drift
(the live schema against a replay of the migration files). Ownership, OIDs, the tracking
tables' rows and system schemas are left out: they differ legitimately.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import psycopg

SYSTEM_SCHEMAS = "('pg_catalog', 'information_schema', 'pg_toast')"
_NOT_SYSTEM = (
    f"n.nspname NOT IN {SYSTEM_SCHEMAS} AND n.nspname NOT LIKE 'pg_temp%%' AND n.nspname NOT LIKE 'pg_toast%%'"
)

# Each query returns (kind, name, definition): the name identifies an object, the definition is compared.
QUERIES = {
    "extension": "SELECT 'extension', extname, extname FROM pg_extension WHERE extname <> 'plpgsql'",
    "schema": f"SELECT 'schema', n.nspname, n.nspname FROM pg_namespace n WHERE {_NOT_SYSTEM}",
    "table": f"""
        SELECT 'table', n.nspname || '.' || c.relname, c.relkind::text
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p') AND {_NOT_SYSTEM}""",
    "column": f"""
        SELECT 'column', n.nspname || '.' || c.relname || '.' || a.attname,
               format_type(a.atttypid, a.atttypmod)
               || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
               || COALESCE(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), '')
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm') AND {_NOT_SYSTEM}""",
    "index": f"""
        SELECT 'index', n.nspname || '.' || i.relname, pg_get_indexdef(x.indexrelid)
        FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_namespace n ON n.oid = i.relnamespace
        WHERE {_NOT_SYSTEM}""",
    "constraint": f"""
        SELECT 'constraint', n.nspname || '.' || c.relname || '.' || k.conname, pg_get_constraintdef(k.oid)
        FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE {_NOT_SYSTEM}""",
    "function": f"""
        SELECT 'function', n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
               pg_get_functiondef(p.oid)
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        LEFT JOIN pg_depend dep ON dep.objid = p.oid AND dep.deptype = 'e'
        WHERE {_NOT_SYSTEM} AND p.prokind IN ('f', 'p') AND dep.objid IS NULL""",
    "trigger": f"""
        SELECT 'trigger', n.nspname || '.' || c.relname || '.' || t.tgname, pg_get_triggerdef(t.oid)
        FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE NOT t.tgisinternal AND {_NOT_SYSTEM}""",
    "view": f"""
        SELECT 'view', n.nspname || '.' || c.relname, pg_get_viewdef(c.oid)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('v', 'm') AND {_NOT_SYSTEM}""",
    "sequence": f"""
        SELECT 'sequence', n.nspname || '.' || c.relname, format_type(s.seqtypid, NULL)
        FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE {_NOT_SYSTEM}""",
    "type": f"""
        SELECT 'type', n.nspname || '.' || t.typname,
               t.typtype::text || COALESCE(':' || (SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
                                                     FROM pg_enum e WHERE e.enumtypid = t.oid), '')
        FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
        LEFT JOIN pg_depend dep ON dep.objid = t.oid AND dep.deptype = 'e'
        WHERE t.typtype IN ('e', 'd') AND {_NOT_SYSTEM} AND dep.objid IS NULL""",
}

Snapshot = Mapping[tuple[str, str], str]  # (kind, name) -> definition


def snapshot(conn: psycopg.Connection) -> dict[tuple[str, str], str]:
    """Every user object of the database the connection is on."""
    objects: dict[tuple[str, str], str] = {}
    for query in QUERIES.values():
        for kind, name, definition in conn.execute(query):
            objects[(kind, name)] = definition
    return objects


@dataclass(frozen=True)
class Difference:
    kind: str  # "table", "column", "index", ...
    name: str  # the object, schema-qualified
    change: str  # "missing" (in expected, not in actual), "extra" (in actual only), "different"
    expected: str | None  # what a replay of the files has
    actual: str | None  # what the live database has

    def describe(self) -> str:
        if self.change == "different":
            return f"{self.kind} {self.name} differs: expected {self.expected!r}, found {self.actual!r}"
        return f"{self.kind} {self.name} is {self.change}"


def compare(expected: Snapshot, actual: Snapshot) -> list[Difference]:
    """What `actual` has that `expected` lacks, the reverse, and what differs, sorted by kind and name."""
    differences = []
    for key in sorted(set(expected) | set(actual)):
        kind, name = key
        if key not in actual:
            differences.append(Difference(kind, name, "missing", expected[key], None))
        elif key not in expected:
            differences.append(Difference(kind, name, "extra", None, actual[key]))
        elif expected[key] != actual[key]:
            differences.append(Difference(kind, name, "different", expected[key], actual[key]))
    return differences
