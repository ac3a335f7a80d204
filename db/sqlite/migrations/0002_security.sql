-- Re-authentication, disabled accounts and sign-in throttling.

-- When the password was last entered in this session (sign-in or a later
-- re-authentication): the start of its "sudo" window.
ALTER TABLE sessions ADD COLUMN reauth_at INTEGER NOT NULL DEFAULT 0;
UPDATE sessions SET reauth_at = created_at;

-- Set by an operator (`doorman users disable`); a disabled user cannot sign in
-- and has no live sessions.
ALTER TABLE users ADD COLUMN disabled_at INTEGER;

-- Failed sign-ins and re-authentications, kept in the database so the
-- per-account limit survives restarts and holds across instances. Keyed by the
-- normalised email as typed, so an unknown address is limited exactly like a
-- real one and the limit reveals nothing.
CREATE TABLE login_failures (
    email TEXT    NOT NULL,
    ip    TEXT    NOT NULL,
    at    INTEGER NOT NULL
);
CREATE INDEX login_failures_email_at ON login_failures (email, at);
