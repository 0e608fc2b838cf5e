-- Migration: 001_init
-- Description: Enrichment schema and its tracking table, beside battles in the battles database
-- Created: 2025-11-28

-- enrichment lives in the battles database, in its own schema, with its own tracking
-- table, so its migrations and battles' never collide (workspace.yaml: tracking_table).
CREATE SCHEMA IF NOT EXISTS enrichment;

CREATE TABLE IF NOT EXISTS enrichment.schema_migrations (
  version TEXT PRIMARY KEY,
  applied_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  checksum TEXT NOT NULL,
  execution_time_ms INTEGER NOT NULL
);

CREATE INDEX IF NOT EXISTS idx_schema_migrations_applied_at
  ON enrichment.schema_migrations(applied_at DESC);

-- One summary per battle, computed from killmails; references battles' own table,
-- which is why battles must migrate first (depends_on: [battles]).
CREATE TABLE IF NOT EXISTS enrichment.battle_summaries (
  battle_id UUID PRIMARY KEY REFERENCES public.battles(id) ON DELETE CASCADE,
  ship_classes JSONB NOT NULL DEFAULT '{}'::jsonb,
  computed_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
