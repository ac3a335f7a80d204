-- API tokens, registered apps and device authorization requests: the same
-- tables, columns and meaning as the SQLite store's migration 0007 (times
-- are Unix seconds in BIGINT columns).

-- client_id is '' for a personal token and deliberately not a foreign key:
-- removing an app revokes its tokens and keeps their rows as history.
CREATE TABLE tokens (
    id                 TEXT   PRIMARY KEY,
    secret_hash        BYTEA  NOT NULL,   -- SHA-256 of the token's secret
    user_id            BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind               TEXT   NOT NULL,   -- pat | app
    name               TEXT   NOT NULL,
    client_id          TEXT   NOT NULL DEFAULT '',
    scopes             TEXT   NOT NULL DEFAULT '',  -- space-separated
    created_at         BIGINT NOT NULL,
    expires_at         BIGINT NOT NULL,
    created_ip         TEXT   NOT NULL DEFAULT '',
    created_location   TEXT   NOT NULL DEFAULT '',
    last_used_at       BIGINT NOT NULL DEFAULT 0,   -- 0: never used
    last_used_ip       TEXT   NOT NULL DEFAULT '',
    last_used_location TEXT   NOT NULL DEFAULT '',
    revoked_at         BIGINT,
    revoked_reason     TEXT,
    revoked_by         TEXT
);
-- A user's tokens newest first (the list), and the cascade of a user's deletion.
CREATE INDEX tokens_user_id ON tokens (user_id, created_at);
-- The live tokens of one app (removing it).
CREATE INDEX tokens_client_id ON tokens (client_id) WHERE revoked_at IS NULL;

CREATE TABLE apps (
    client_id  TEXT   PRIMARY KEY,
    name       TEXT   NOT NULL,
    created_at BIGINT NOT NULL
);

-- user_code is unique among all rows: a request that expired gives its code
-- up when a new request draws it (CreateDeviceAuthorization deletes it).
CREATE TABLE device_authorizations (
    device_code_hash BYTEA   PRIMARY KEY,  -- SHA-256 of the device code
    user_code        TEXT    NOT NULL UNIQUE,
    client_id        TEXT    NOT NULL REFERENCES apps(client_id) ON DELETE CASCADE,
    scopes           TEXT    NOT NULL DEFAULT '',
    created_at       BIGINT  NOT NULL,
    expires_at       BIGINT  NOT NULL,
    interval_seconds INTEGER NOT NULL,
    last_polled_at   BIGINT  NOT NULL DEFAULT 0,  -- 0: never polled
    ip               TEXT    NOT NULL DEFAULT '',
    location         TEXT    NOT NULL DEFAULT '',
    status           TEXT    NOT NULL,            -- pending | approved | denied | redeemed
    user_id          BIGINT  REFERENCES users(id) ON DELETE CASCADE,  -- NULL while pending
    decided_at       BIGINT
);
CREATE INDEX device_authorizations_client_id ON device_authorizations (client_id);
CREATE INDEX device_authorizations_user_id ON device_authorizations (user_id);
