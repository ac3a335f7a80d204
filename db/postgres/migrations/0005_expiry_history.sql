-- Sessions that simply expired get a history entry too (written by the
-- first instance to see the expiry; expiry_recorded makes that once only).
-- Sessions that had already expired before this migration are marked as
-- recorded: their history began before there was one.
ALTER TABLE sessions ADD COLUMN expiry_recorded BOOLEAN NOT NULL DEFAULT false;
UPDATE sessions SET expiry_recorded = true;
-- The sessions still to be recorded, by when they expire.
CREATE INDEX sessions_expiry_pending ON sessions (idle_expires_at, absolute_expires_at)
    WHERE NOT expiry_recorded AND revoked_at IS NULL;
