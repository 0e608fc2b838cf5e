-- Migration: 003_add_audit_logs
-- Description: Append-only audit trail of account and character changes
-- Created: 2025-12-02

-- Who did what, kept for security reviews; rows are never updated.
CREATE TABLE IF NOT EXISTS audit_logs (
  id BIGSERIAL PRIMARY KEY,
  account_id UUID REFERENCES accounts(id) ON DELETE SET NULL,
  action TEXT NOT NULL,
  target_type TEXT NOT NULL,
  target_id TEXT,
  metadata JSONB NOT NULL DEFAULT '{}'::jsonb,
  created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);

-- Reviews filter by account and by time.
CREATE INDEX IF NOT EXISTS idx_audit_logs_account_id ON audit_logs(account_id);
CREATE INDEX IF NOT EXISTS idx_audit_logs_created_at ON audit_logs(created_at DESC);

-- Actions are a closed list; seed it idempotently.
CREATE TABLE IF NOT EXISTS audit_actions (
  key TEXT PRIMARY KEY,
  description TEXT NOT NULL
);

INSERT INTO audit_actions (key, description) VALUES
  ('account.login', 'An account logged in'),
  ('account.blocked', 'An administrator blocked an account'),
  ('character.linked', 'A character was linked to an account'),
  ('character.unlinked', 'A character was removed from an account')
ON CONFLICT (key) DO UPDATE SET description = EXCLUDED.description;
