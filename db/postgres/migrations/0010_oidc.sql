-- Doorman as an OpenID Connect provider (issue 23): the apps that sign
-- their users in through it, the keys it signs with, the sign-ins in
-- flight, the consents given, the tokens apps hold, which session signed
-- in to which app, and the back-channel logouts owed to the apps. Every
-- credential here obeys the revocation rule (SECURITY.md): the write that
-- ends a session or a user's tokens ends these in the same transaction.
-- The same tables, columns and meaning as the SQLite store's migration
-- 0015 (times are Unix seconds in BIGINT columns).

-- One registry of clients: the device-flow tools are apps too. secret_hash
-- is the SHA-256 of a confidential client's secret (NULL: a public client,
-- which must use PKCE); the secret itself is shown once and never stored.
-- first_party apps are the operator's own and ask no consent.
-- backchannel_logout_uri is where logout tokens go ('': the app takes none).
ALTER TABLE apps ADD COLUMN secret_hash BYTEA;
ALTER TABLE apps ADD COLUMN first_party BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE apps ADD COLUMN backchannel_logout_uri TEXT NOT NULL DEFAULT '';

-- Where the authorization endpoint may send a browser back (login), and
-- where RP-initiated logout may (post_logout): matched exactly, so each is
-- a row, not a pattern. They go with their app.
CREATE TABLE app_redirect_uris (
    client_id TEXT NOT NULL REFERENCES apps(client_id) ON DELETE CASCADE,
    kind      TEXT NOT NULL,  -- login | post_logout
    uri       TEXT NOT NULL,
    PRIMARY KEY (client_id, kind, uri)
);

-- The sub apps know a person by: random and opaque (never the address,
-- which changes, nor the row id, which says how many accounts there are),
-- made the first time an app asks, and kept for good so the apps' own
-- accounts stay linked.
CREATE TABLE oidc_subjects (
    user_id BIGINT  PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    subject TEXT    NOT NULL UNIQUE
);

-- The keys ID, access and logout tokens are signed with. The private half
-- is sealed with the secret key, so a copy of the database signs nothing.
-- The signing key is the one not retired (the unique index keeps it to
-- one: two instances starting at once make one); a retired key's public
-- half is still published until expires_at, when the last token it signed
-- has expired.
CREATE TABLE oidc_signing_keys (
    kid            TEXT    PRIMARY KEY,
    alg            TEXT    NOT NULL,
    private_sealed BYTEA    NOT NULL,
    public_jwk     BYTEA    NOT NULL,
    created_at     BIGINT  NOT NULL,
    retired_at     BIGINT ,           -- NULL: the signing key
    expires_at     BIGINT             -- NULL while it signs
);
CREATE UNIQUE INDEX oidc_signing_keys_signing ON oidc_signing_keys ((retired_at IS NULL)) WHERE retired_at IS NULL;

-- Authorization requests in flight: made when an app sends a browser here,
-- completed by a session (user_id, session_id, and the epoch the sign-in
-- read: a reset before the code is redeemed voids it), then given a code
-- (only its SHA-256; single use, about a minute). A spent code's row is
-- kept until pruned: a second use of it is recognised and ends what the
-- first issued. Lists (scopes, prompt, amr) are space-separated.
CREATE TABLE oidc_auth_requests (
    id                    TEXT    PRIMARY KEY,
    client_id             TEXT    NOT NULL REFERENCES apps(client_id) ON DELETE CASCADE,
    redirect_uri          TEXT    NOT NULL,
    scopes                TEXT    NOT NULL DEFAULT '',
    state                 TEXT    NOT NULL DEFAULT '',
    nonce                 TEXT    NOT NULL DEFAULT '',
    response_mode         TEXT    NOT NULL DEFAULT '',
    code_challenge        TEXT    NOT NULL DEFAULT '',
    code_challenge_method TEXT    NOT NULL DEFAULT '',
    prompt                TEXT    NOT NULL DEFAULT '',
    max_age               BIGINT  NOT NULL DEFAULT -1,  -- -1: none asked
    login_hint            TEXT    NOT NULL DEFAULT '',
    created_at            BIGINT  NOT NULL,
    expires_at            BIGINT  NOT NULL,
    user_id               BIGINT  REFERENCES users(id) ON DELETE CASCADE,  -- NULL until completed
    session_id            TEXT    NOT NULL DEFAULT '',
    auth_time             BIGINT  NOT NULL DEFAULT 0,
    amr                   TEXT    NOT NULL DEFAULT '',
    epoch                 BIGINT  NOT NULL DEFAULT -1,
    done_at               BIGINT ,
    code_hash             BYTEA    UNIQUE,
    code_expires_at       BIGINT  NOT NULL DEFAULT 0,
    code_used_at          BIGINT 
);
CREATE INDEX oidc_auth_requests_user_id ON oidc_auth_requests (user_id);
CREATE INDEX oidc_auth_requests_expires_at ON oidc_auth_requests (expires_at);

-- What a person agreed an app may have, so it is asked once per app and
-- scopes. Not a credential: it lets nothing act alone. A disconnect
-- forgets it.
CREATE TABLE oidc_consents (
    user_id    BIGINT  NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    client_id  TEXT    NOT NULL REFERENCES apps(client_id) ON DELETE CASCADE,
    scopes     TEXT    NOT NULL DEFAULT '',
    created_at BIGINT  NOT NULL,
    updated_at BIGINT  NOT NULL,
    PRIMARY KEY (user_id, client_id)
);
CREATE INDEX oidc_consents_client_id ON oidc_consents (client_id);

-- Which Doorman session signed in to which app: ending that session owes
-- each of these apps a logout with the session's sid, and a session's
-- details list them. Kept with the session's row (pruned with it).
CREATE TABLE oidc_session_clients (
    session_id TEXT    NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    client_id  TEXT    NOT NULL REFERENCES apps(client_id) ON DELETE CASCADE,
    user_id    BIGINT  NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    first_at   BIGINT  NOT NULL,
    last_at    BIGINT  NOT NULL,
    PRIMARY KEY (session_id, client_id)
);
CREATE INDEX oidc_session_clients_user_id ON oidc_session_clients (user_id, client_id);
CREATE INDEX oidc_session_clients_client_id ON oidc_session_clients (client_id);

-- The tokens apps hold: access tokens (JWTs whose jti is id: the row is
-- what introspection and userinfo check) and refresh tokens (id.secret;
-- only the secret's SHA-256). Tokens issued from one code form a family
-- (family_id, the request's id): a refresh token is spent when used and
-- its successor joins the family; a spent one presented again ends the
-- whole family. A grant belongs to the session that approved it and dies
-- with it, unless offline (offline_access): then only a reset of every
-- token, a disconnect or the app's removal ends it. client_id is
-- deliberately not a foreign key: removing an app ends its grants and
-- keeps their rows, as for tokens.
CREATE TABLE oidc_grants (
    id             TEXT    PRIMARY KEY,
    kind           TEXT    NOT NULL,  -- access | refresh
    secret_hash    BYTEA,
    family_id      TEXT    NOT NULL,
    user_id        BIGINT  NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    client_id      TEXT    NOT NULL,
    session_id     TEXT    NOT NULL DEFAULT '',
    offline        BOOLEAN NOT NULL DEFAULT false,
    scopes         TEXT    NOT NULL DEFAULT '',
    auth_time      BIGINT  NOT NULL DEFAULT 0,
    amr            TEXT    NOT NULL DEFAULT '',
    created_at     BIGINT  NOT NULL,
    expires_at     BIGINT  NOT NULL,
    used_at        BIGINT ,
    revoked_at     BIGINT ,
    revoked_reason TEXT
);
-- Ending a family (a reused code or refresh token, an app's revocation).
CREATE INDEX oidc_grants_family_id ON oidc_grants (family_id);
-- Ending a user's grants (all, or one app's), and the cascade of a deletion.
CREATE INDEX oidc_grants_user_id ON oidc_grants (user_id, client_id);
-- Ending the live grants of the sessions a revocation ended.
CREATE INDEX oidc_grants_session_id ON oidc_grants (session_id) WHERE revoked_at IS NULL;
-- Ending a removed app's grants.
CREATE INDEX oidc_grants_client_id ON oidc_grants (client_id) WHERE revoked_at IS NULL;

-- Back-channel logouts owed to apps, written in the transaction that ended
-- what they report (the mail outbox's shape): sent and retried by the
-- delivery worker until the app answers 2xx, each held by one instance at
-- a time (claimed_until). session_id is the sid; '' for every session of
-- the user (sub only). Deliberately no foreign keys: a logout owed for a
-- deleted account is still sent (user_id 0 then), and one for a removed
-- app is dropped by the removal or never claimed. subject is copied in so
-- it can be sent after the account is gone.
CREATE TABLE logout_deliveries (
    id            BIGINT  GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    client_id     TEXT    NOT NULL,
    user_id       BIGINT  NOT NULL,
    subject       TEXT    NOT NULL DEFAULT '',
    session_id    TEXT    NOT NULL DEFAULT '',
    created_at    BIGINT  NOT NULL,
    next_at       BIGINT  NOT NULL,
    attempts      BIGINT  NOT NULL DEFAULT 0,
    state         TEXT    NOT NULL DEFAULT 'pending',  -- pending | delivered | gave_up
    done_at       BIGINT ,
    last_error    TEXT    NOT NULL DEFAULT '',
    claimed_until BIGINT  NOT NULL DEFAULT 0
);
-- The worker's claim: pending ones due, oldest first.
CREATE INDEX logout_deliveries_due ON logout_deliveries (state, next_at);
-- A user's deliveries, newest first (confirmations and the history).
CREATE INDEX logout_deliveries_user_id ON logout_deliveries (user_id, created_at);
CREATE INDEX logout_deliveries_client_id ON logout_deliveries (client_id);
