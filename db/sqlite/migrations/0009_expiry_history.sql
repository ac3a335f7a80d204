-- Sessions that simply expired get a history entry too (written by the
-- first instance to see the expiry; expiry_recorded makes that once only).
-- Sessions that had already expired before this migration are marked as
-- recorded: their history began before there was one.
ALTER TABLE sessions ADD COLUMN expiry_recorded INTEGER NOT NULL DEFAULT 0;
UPDATE sessions SET expiry_recorded = 1;
-- The sessions still to be recorded, by when they expire.
CREATE INDEX sessions_expiry_pending ON sessions (idle_expires_at, absolute_expires_at)
    WHERE expiry_recorded = 0 AND revoked_at IS NULL;
