-- Migration: 001_init
-- Description: Tracking table, battles and the killmails they group
-- Created: 2025-11-21

CREATE TABLE IF NOT EXISTS schema_migrations (
  version TEXT PRIMARY KEY,
  applied_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  checksum TEXT NOT NULL,
  execution_time_ms INTEGER NOT NULL
);

CREATE INDEX IF NOT EXISTS idx_schema_migrations_applied_at
  ON schema_migrations(applied_at DESC);

-- A battle is a cluster of killmails in one system within a time window.
CREATE TABLE IF NOT EXISTS battles (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  system_id BIGINT NOT NULL,
  started_at TIMESTAMPTZ NOT NULL,
  ended_at TIMESTAMPTZ,
  total_isk_destroyed NUMERIC(20, 2) NOT NULL DEFAULT 0,
  created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

CREATE INDEX IF NOT EXISTS idx_battles_system_started ON battles(system_id, started_at DESC);

-- Killmails arrive from the public feed; the feed id makes re-ingestion idempotent.
CREATE TABLE IF NOT EXISTS killmails (
  killmail_id BIGINT PRIMARY KEY,
  battle_id UUID REFERENCES battles(id) ON DELETE SET NULL,
  victim_character_id BIGINT,
  ship_type_id BIGINT NOT NULL,
  isk_value NUMERIC(20, 2),
  occurred_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX IF NOT EXISTS idx_killmails_battle_id ON killmails(battle_id);
CREATE INDEX IF NOT EXISTS idx_killmails_occurred_at ON killmails(occurred_at DESC);

CREATE OR REPLACE FUNCTION update_updated_at_column()
RETURNS TRIGGER AS $$
BEGIN
  NEW.updated_at = NOW();
  RETURN NEW;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS update_battles_updated_at ON battles;
CREATE TRIGGER update_battles_updated_at
  BEFORE UPDATE ON battles
  FOR EACH ROW
  EXECUTE FUNCTION update_updated_at_column();
