"""A synthetic monorepo of N services x M migrations in the seed's shape, for the benchmarks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml

INIT = """-- Migration: 001_init
-- Description: Tracking table and the shared trigger function
-- Created: 2025-11-25

CREATE TABLE IF NOT EXISTS schema_migrations (
  version TEXT PRIMARY KEY,
  applied_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  checksum TEXT NOT NULL,
  execution_time_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_schema_migrations_applied_at ON schema_migrations(applied_at DESC);

CREATE OR REPLACE FUNCTION update_updated_at_column()
RETURNS TRIGGER AS $$
BEGIN
  NEW.updated_at = NOW();
  RETURN NEW;
END;
$$ LANGUAGE plpgsql;
"""

TABLE = """-- Migration: {version}
-- Description: Add {table}
-- Created: 2025-11-25

-- {table} belongs to {service}; created idempotently as the seed asks.
CREATE TABLE IF NOT EXISTS {table} (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  owner_id BIGINT NOT NULL,
  name TEXT NOT NULL,
  kind TEXT NOT NULL DEFAULT 'default',
  payload JSONB NOT NULL DEFAULT '{{}}'::jsonb,
  created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

CREATE INDEX IF NOT EXISTS idx_{table}_owner_id ON {table}(owner_id);
CREATE INDEX IF NOT EXISTS idx_{table}_created_at ON {table}(created_at DESC);

ALTER TABLE {table} ADD COLUMN IF NOT EXISTS note TEXT;

DROP TRIGGER IF EXISTS update_{table}_updated_at ON {table};
CREATE TRIGGER update_{table}_updated_at
  BEFORE UPDATE ON {table}
  FOR EACH ROW
  EXECUTE FUNCTION update_updated_at_column();

INSERT INTO {table} (id, owner_id, name) VALUES
  ('550e8400-e29b-41d4-a716-446655440000', 1, 'seed')
ON CONFLICT (id) DO NOTHING;
"""


def build(
    root: Path,
    services: int,
    migrations: int,
    names: list[str] | None = None,
    chain: Callable[[int], bool] = lambda i: i % 4 != 0,
) -> list[str]:
    """Write the monorepo; service i depends on service i-1 where `chain(i)` (default: chains of 4)."""
    names = names or [f"svc{i:03d}" for i in range(services)]
    declared = {}
    for i, name in enumerate(names):
        mdir = root / "services" / name / "migrations"
        mdir.mkdir(parents=True)
        (mdir / "001_init.sql").write_text(INIT)
        for n in range(2, migrations + 1):
            version = f"{n:03d}_add_t{n:03d}"
            (mdir / f"{version}.sql").write_text(TABLE.format(version=version, table=f"t{n:03d}", service=name))
        declared[name] = {"language": "sql", "depends_on": [names[i - 1]] if i and chain(i) else []}
    (root / "workspace.yaml").write_text(yaml.safe_dump({"version": 1, "services": declared}, sort_keys=False))
    (root / "tasks.py").write_text("from migratekit.tasks import ns\n")
    return names
