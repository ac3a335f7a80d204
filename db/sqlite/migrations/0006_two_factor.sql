-- Two-factor sign-in with an authenticator app (TOTP) and recovery codes.

-- One row per user who started or finished a setup. The secret is sealed
-- with a key that does not live in the database, so a copy of the file alone
-- does not yield anyone's codes. enabled_at is NULL while the setup is
-- pending (the secret shown, no code entered yet). last_step is the last
-- accepted TOTP time step: a code of that step or an earlier one is refused,
-- so an observed code cannot be replayed.
CREATE TABLE two_factor (
    user_id       INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    secret_sealed TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    enabled_at    INTEGER,
    last_step     INTEGER NOT NULL DEFAULT 0
);

-- Single-use recovery codes, stored as SHA-256 hashes only.
CREATE TABLE recovery_codes (
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash  BLOB    NOT NULL,
    created_at INTEGER NOT NULL,
    used_at    INTEGER,
    UNIQUE (user_id, code_hash)
);

-- Sign-ins whose password was right, waiting for the second factor. A row
-- grants nothing: no session exists until it is completed, which deletes it.
-- epoch is the user's epoch when the password was checked (see 0004).
CREATE TABLE pending_sign_ins (
    id          TEXT    PRIMARY KEY,  -- public id, in the browser's pending cookie
    secret_hash BLOB    NOT NULL,     -- SHA-256 of the cookie's secret
    user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    epoch       INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    failures    INTEGER NOT NULL DEFAULT 0  -- wrong codes entered so far
);
CREATE INDEX pending_sign_ins_user_id ON pending_sign_ins (user_id);
