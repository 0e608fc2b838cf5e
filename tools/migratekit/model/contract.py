"""The seed's contract with the database, in one place: the tracking table's shape, its name, its lock.

A database migrated by the seed's TypeScript runner and one migrated by migratekit must be
indistinguishable. The scaffold templates, the example services and the tests are checked against
`create_table_sql` (tests/test_tracking.py), so the DDL exists once, here; database.tracking runs it.
"""

from __future__ import annotations

SEED_TABLE = "schema_migrations"  # the seed's tracking table, and every service's unless it names its own
SEED_COLUMNS = frozenset({"version", "applied_at", "checksum", "execution_time_ms"})
COLUMNS_SQL = (
    "version TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT NOW(), checksum TEXT NOT NULL, "
    "execution_time_ms INTEGER NOT NULL"
)
# The advisory lock's key, per database and tracking table (its lock_name); the TypeScript runners compute the same.
LOCK_KEY = "pg_catalog.hashtextextended('migratekit:' || pg_catalog.current_database() || ':' || %s, 0)"
MAX_IDENTIFIER = 63  # PostgreSQL truncates a longer name silently


def create_table_sql(tracking_table: str = SEED_TABLE) -> str:
    """The seed's CREATE TABLE, as the templates write it (for a name that needs no quoting)."""
    return f"CREATE TABLE IF NOT EXISTS {tracking_table} ({COLUMNS_SQL})"


def index_name(tracking_table: str) -> str:
    """The seed's `applied_at DESC` index: idx_<table>_applied_at, without the schema."""
    return f"idx_{tracking_table.rsplit('.', 1)[-1]}_applied_at"


MAX_TRACKING_NAME = MAX_IDENTIFIER - len(index_name(""))  # the longest table name whose index name fits


def qualified(tracking_table: str) -> str:
    """`schema_migrations` is `public.schema_migrations`: the runner's SQL never depends on the session's
    search_path, which a migration may change (pg_dump's output empties it)."""
    return tracking_table if "." in tracking_table else f"public.{tracking_table}"


def lock_name(tracking_table: str) -> str:
    """The name the migration lock is keyed by: one per table, however it is spelt.

    `public.` is dropped rather than added, so `schema_migrations` and `public.schema_migrations` take one lock,
    and it is the lock the seed's runners take (they pass their TRACKING_TABLE, `schema_migrations`, as written).
    """
    table = qualified(tracking_table)
    return table.removeprefix("public.")
