-- API tokens (personal access tokens and connected apps' tokens), the apps
-- the operator registered, and device authorization requests (RFC 8628).

-- One row per bearer token. Like a session, only the SHA-256 of its secret
-- is stored, and the row alone decides whether the token lives: no
-- revoked_at and now before expires_at. client_id is the app's for an app
-- token and '' for a personal one; it is deliberately not a foreign key:
-- removing an app revokes its tokens and keeps their rows as history.
-- scopes is space-separated ("sessions:read sessions:write").
CREATE TABLE tokens (
    id                 TEXT    PRIMARY KEY,  -- public id, also inside the token string
    secret_hash        BLOB    NOT NULL,
    user_id            INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind               TEXT    NOT NULL,     -- pat | app
    name               TEXT    NOT NULL,
    client_id          TEXT    NOT NULL DEFAULT '',
    scopes             TEXT    NOT NULL DEFAULT '',
    created_at         INTEGER NOT NULL,
    expires_at         INTEGER NOT NULL,
    created_ip         TEXT    NOT NULL DEFAULT '',
    created_location   TEXT    NOT NULL DEFAULT '',
    last_used_at       INTEGER NOT NULL DEFAULT 0,  -- 0: never used
    last_used_ip       TEXT    NOT NULL DEFAULT '',
    last_used_location TEXT    NOT NULL DEFAULT '',
    revoked_at         INTEGER,
    revoked_reason     TEXT,
    revoked_by         TEXT
);
-- A user's tokens newest first (the list), and the cascade of a user's deletion.
CREATE INDEX tokens_user_id ON tokens (user_id, created_at);
-- The live tokens of one app (removing it).
CREATE INDEX tokens_client_id ON tokens (client_id) WHERE revoked_at IS NULL;

-- Command-line tools the operator registered: public clients, no secret.
CREATE TABLE apps (
    client_id  TEXT    PRIMARY KEY,
    name       TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);

-- Device authorization requests. The device code is the client's secret:
-- only its SHA-256 is stored. The user code is what the user types; it is
-- unique among all rows (a request that expired gives its code up when a
-- new request draws it: CreateDeviceAuthorization deletes it first).
-- user_id is NULL while pending, then who approved or denied it.
CREATE TABLE device_authorizations (
    device_code_hash BLOB    PRIMARY KEY,
    user_code        TEXT    NOT NULL UNIQUE,
    client_id        TEXT    NOT NULL REFERENCES apps(client_id) ON DELETE CASCADE,
    scopes           TEXT    NOT NULL DEFAULT '',
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    interval_seconds INTEGER NOT NULL,
    last_polled_at   INTEGER NOT NULL DEFAULT 0,  -- 0: never polled
    ip               TEXT    NOT NULL DEFAULT '',
    location         TEXT    NOT NULL DEFAULT '',
    status           TEXT    NOT NULL,            -- pending | approved | denied | redeemed
    user_id          INTEGER REFERENCES users(id) ON DELETE CASCADE,
    decided_at       INTEGER
);
CREATE INDEX device_authorizations_client_id ON device_authorizations (client_id);
CREATE INDEX device_authorizations_user_id ON device_authorizations (user_id);
