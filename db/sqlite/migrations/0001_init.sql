-- Users and their server-side sessions. Times are Unix seconds (INTEGER), so the
-- same statements work on PostgreSQL with BIGINT columns.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    email         TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    is_demo       INTEGER NOT NULL DEFAULT 0
);

-- One row per signed-in browser. The row is the only thing that decides whether
-- a session is alive: it must exist, have no revoked_at, and be before both
-- idle_expires_at and absolute_expires_at.
CREATE TABLE sessions (
    id                  TEXT    PRIMARY KEY,  -- public id: random, opaque, used in URLs and HTML
    secret_hash         BLOB    NOT NULL,     -- SHA-256 of the secret; the secret lives only in the cookie
    user_id             INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    created_at          INTEGER NOT NULL,
    last_seen_at        INTEGER NOT NULL,
    idle_expires_at     INTEGER NOT NULL,
    absolute_expires_at INTEGER NOT NULL,
    ip                  TEXT    NOT NULL,     -- most recent client address
    user_agent          TEXT    NOT NULL,
    device_label        TEXT    NOT NULL,     -- "Chrome on macOS"
    device_kind         TEXT    NOT NULL,     -- desktop | phone | tablet
    location            TEXT    NOT NULL,     -- "Berlin, Germany", from ip
    location_short      TEXT    NOT NULL,     -- "Berlin"
    auth_method         TEXT    NOT NULL,     -- password | signup | demo
    revoked_at          INTEGER,
    revoked_reason      TEXT,                 -- signed_out | revoked | revoked_others | revoked_all
    revoked_by          TEXT                  -- public id of the session that ended it
);
CREATE INDEX sessions_user_id ON sessions (user_id, last_seen_at);

-- Keys the application generates once and shares between instances (the flash
-- cookie signing key, for example).
CREATE TABLE app_secrets (
    name       TEXT    PRIMARY KEY,
    value      BLOB    NOT NULL,
    created_at INTEGER NOT NULL
);
