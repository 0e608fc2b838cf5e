-- Migration: 002_add_characters_table
-- Description: Add characters table with ESI token storage
-- Created: 2025-11-25

-- Create table (idempotent)
CREATE TABLE IF NOT EXISTS characters (
  id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
  account_id UUID NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
  eve_character_id BIGINT NOT NULL UNIQUE,
  eve_character_name TEXT NOT NULL,
  corp_id BIGINT NOT NULL,
  corp_name TEXT NOT NULL,
  alliance_id BIGINT,
  alliance_name TEXT,
  portrait_url TEXT,
  esi_access_token BYTEA,
  esi_refresh_token BYTEA,
  esi_token_expires_at TIMESTAMPTZ,
  scopes TEXT[] NOT NULL DEFAULT ARRAY[]::TEXT[],
  last_verified_at TIMESTAMPTZ,
  created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
  updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

-- Create indexes (idempotent)
CREATE INDEX IF NOT EXISTS idx_characters_account_id ON characters(account_id);
CREATE INDEX IF NOT EXISTS idx_characters_eve_character_id ON characters(eve_character_id);
CREATE INDEX IF NOT EXISTS idx_characters_corp_id ON characters(corp_id);
CREATE INDEX IF NOT EXISTS idx_characters_alliance_id ON characters(alliance_id);

-- Create trigger for updated_at (idempotent)
CREATE OR REPLACE FUNCTION update_updated_at_column()
RETURNS TRIGGER AS $$
BEGIN
  NEW.updated_at = NOW();
  RETURN NEW;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS update_characters_updated_at ON characters;
CREATE TRIGGER update_characters_updated_at
  BEFORE UPDATE ON characters
  FOR EACH ROW
  EXECUTE FUNCTION update_updated_at_column();
