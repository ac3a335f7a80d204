-- Two-factor sign-in: the same tables, columns and meaning as the SQLite
-- store's migration 0006 (times are Unix seconds in BIGINT columns).
CREATE TABLE two_factor (
    user_id       BIGINT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    secret_sealed TEXT   NOT NULL,  -- sealed with a key outside the database
    created_at    BIGINT NOT NULL,
    enabled_at    BIGINT,           -- NULL while the setup is pending
    last_step     BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE recovery_codes (
    user_id    BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash  BYTEA  NOT NULL,
    created_at BIGINT NOT NULL,
    used_at    BIGINT,
    UNIQUE (user_id, code_hash)
);

CREATE TABLE pending_sign_ins (
    id          TEXT    PRIMARY KEY,
    secret_hash BYTEA   NOT NULL,
    user_id     BIGINT  NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    epoch       BIGINT  NOT NULL,
    created_at  BIGINT  NOT NULL,
    expires_at  BIGINT  NOT NULL,
    failures    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX pending_sign_ins_user_id ON pending_sign_ins (user_id);
