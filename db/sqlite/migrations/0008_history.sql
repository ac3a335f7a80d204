-- The account's security history, and what a revoked session's cookie did
-- after it was revoked.

-- One row per security event of a user (see db.SecurityEvent): sign-ins,
-- endings, tokens, apps, password, email and two-factor changes, failed
-- attempts. A write of the store's own records its event in its own
-- transaction, so the history holds exactly what committed. The id only
-- grows (AUTOINCREMENT never reuses one, even after pruning the newest), so
-- "the page before id N" is stable while new events arrive. Texts are ''
-- when they do not apply; at is Unix seconds. Rows go with their user.
CREATE TABLE security_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind       TEXT    NOT NULL,
    at         INTEGER NOT NULL,
    session_id TEXT    NOT NULL DEFAULT '',
    token_id   TEXT    NOT NULL DEFAULT '',
    device     TEXT    NOT NULL DEFAULT '',
    location   TEXT    NOT NULL DEFAULT '',
    ip         TEXT    NOT NULL DEFAULT '',
    method     TEXT    NOT NULL DEFAULT '',
    reason     TEXT    NOT NULL DEFAULT '',
    ended_by   TEXT    NOT NULL DEFAULT '',
    detail     TEXT    NOT NULL DEFAULT ''
);
-- A user's history newest first, a page at a time (and the cascade of a
-- user's deletion).
CREATE INDEX security_events_user_id ON security_events (user_id, id DESC);
-- Pruning old events.
CREATE INDEX security_events_at ON security_events (at);

-- Requests refused because they came with a revoked session's cookie:
-- how many, and the last one (0: never).
ALTER TABLE sessions ADD COLUMN refused_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN last_refused_at INTEGER NOT NULL DEFAULT 0;
