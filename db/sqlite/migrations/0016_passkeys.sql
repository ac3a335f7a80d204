-- Passkeys (issue 24): WebAuthn credentials that sign in without a
-- password, the ceremonies in flight, and the passkey each session was
-- opened with.

-- The handle a person's passkeys carry as their user id (WebAuthn's
-- user.id): random and opaque (never the address or the row id, which an
-- authenticator shows other sites' scripts nothing of, but which must
-- still say nothing), made the first time a passkey is added, and kept
-- for good: every passkey of the account carries the same one.
CREATE TABLE passkey_users (
    user_id    INTEGER PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    handle     BLOB    NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);

-- One row per passkey. credential_id is the authenticator's id of it (what
-- a sign-in names), public_key its COSE public key. aaguid names the
-- authenticator's model (the provider shown). sign_count is the last
-- signature counter seen (0: the authenticator keeps none, as synced
-- passkeys do). backup_eligible / backup_state are the BE and BS flags:
-- a passkey that may be (and is) copied to the owner's other devices, or
-- one bound to this device. transports are space-separated. A counter
-- that did not go forward (a possible clone) is counted in clone_warnings,
-- the last at clone_warned_at.
CREATE TABLE passkeys (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id          INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name             TEXT    NOT NULL,
    credential_id    BLOB    NOT NULL UNIQUE,
    public_key       BLOB    NOT NULL,
    aaguid           BLOB    NOT NULL,
    attestation_type TEXT    NOT NULL DEFAULT '',
    sign_count       INTEGER NOT NULL DEFAULT 0,
    backup_eligible  INTEGER NOT NULL DEFAULT 0,
    backup_state     INTEGER NOT NULL DEFAULT 0,
    user_verified    INTEGER NOT NULL DEFAULT 0,
    transports       TEXT    NOT NULL DEFAULT '',
    created_at       INTEGER NOT NULL,
    last_used_at     INTEGER NOT NULL DEFAULT 0,
    clone_warnings   INTEGER NOT NULL DEFAULT 0,
    clone_warned_at  INTEGER
);
CREATE INDEX passkeys_user_id ON passkeys (user_id);

-- Ceremonies in flight (adding a passkey, signing in with one): their
-- challenge and what the library keeps of them (data, JSON), kept here so
-- whichever instance the answer reaches can finish it. id is the SHA-256
-- (hex) of a random secret held only in the browser's cookie, which binds
-- the ceremony to that browser; an added passkey's ceremony is bound to
-- its session too (session_id, user_id). A ceremony is taken once (the
-- row is deleted as it is read) and only before expires_at.
CREATE TABLE passkey_ceremonies (
    id         TEXT    PRIMARY KEY,
    kind       TEXT    NOT NULL,  -- register | login
    user_id    INTEGER REFERENCES users(id) ON DELETE CASCADE,  -- NULL for a sign-in
    session_id TEXT    NOT NULL DEFAULT '',
    name       TEXT    NOT NULL DEFAULT '',  -- the name a passkey being added gets
    data       BLOB    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX passkey_ceremonies_expires_at ON passkey_ceremonies (expires_at);
CREATE INDEX passkey_ceremonies_user_id ON passkey_ceremonies (user_id);

-- The passkey a session was opened with (NULL: another way). Deliberately
-- no foreign key: a removed passkey's sessions (if kept) still say a
-- passkey opened them.
ALTER TABLE sessions ADD COLUMN passkey_id INTEGER;
CREATE INDEX sessions_passkey_id ON sessions (passkey_id) WHERE passkey_id IS NOT NULL;
