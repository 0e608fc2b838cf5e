-- Migration: 002_add_battle_participants
-- Description: Characters seen on each side of a battle
-- Created: 2025-12-04

-- character_id is authentication's eve_character_id: battles asks authentication
-- which of them belong to logged-in accounts, so authentication migrates first.
CREATE TABLE IF NOT EXISTS battle_participants (
  battle_id UUID NOT NULL REFERENCES battles(id) ON DELETE CASCADE,
  character_id BIGINT NOT NULL,
  side SMALLINT NOT NULL DEFAULT 0,
  ship_type_id BIGINT,
  PRIMARY KEY (battle_id, character_id)
);

CREATE INDEX IF NOT EXISTS idx_battle_participants_character_id ON battle_participants(character_id);

-- Nullable first, as the pattern asks; the enrichment service fills it.
ALTER TABLE battles ADD COLUMN IF NOT EXISTS participant_count INTEGER;
