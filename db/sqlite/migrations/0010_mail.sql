-- Email: the outbox, the links sent by email, and the places new sign-in
-- alerts compare against.

-- When an emailed link proved the address reaches the user (NULL: not
-- verified), and the user's choice not to be mailed about new sign-ins.
-- Existing accounts start unverified, with alerts on.
ALTER TABLE users ADD COLUMN email_verified_at INTEGER;
ALTER TABLE users ADD COLUMN sign_in_alerts_off INTEGER NOT NULL DEFAULT 0;

-- Mail to send, queued in the transaction of what causes it and sent later
-- by the outbox worker, with retries. Deliberately no foreign key to users:
-- a mail may outlive its account (user_id 0: about no account). A worker
-- holds a queued mail while claimed_until is in the future (claimed_by says
-- which); a worker that died loses it then. The bodies may hold a link's
-- secret, so they are erased ('') once the mail is sent, given up or
-- expired. finished_at is when it reached one of those states (pruning
-- counts from it). Times are Unix seconds; 0 is "never" / "none".
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    message_id      TEXT    NOT NULL UNIQUE,  -- without the angle brackets; a retry sends the same
    user_id         INTEGER NOT NULL DEFAULT 0,
    to_addr         TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    subject         TEXT    NOT NULL,
    text_body       TEXT    NOT NULL,
    html_body       TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    not_after       INTEGER NOT NULL DEFAULT 0,  -- 0: worth sending whenever
    status          TEXT    NOT NULL DEFAULT 'queued',  -- queued | sent | failed | expired
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    claimed_by      TEXT    NOT NULL DEFAULT '',
    claimed_until   INTEGER NOT NULL DEFAULT 0,
    sent_at         INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT    NOT NULL DEFAULT '',
    finished_at     INTEGER NOT NULL DEFAULT 0
);
-- ClaimMail: the queued mails, oldest first (a partial index: sent mails
-- waiting to be pruned cost the worker nothing).
CREATE INDEX outbox_queued ON outbox (created_at, id) WHERE status = 'queued';
-- PruneMail.
CREATE INDEX outbox_finished ON outbox (finished_at) WHERE status <> 'queued';

-- The server's half of each link sent by email: only the SHA-256 of the
-- link's secret is stored, so a copy of the database opens no link. Each is
-- single use (used_at). epoch is the user's epoch when it was made: the
-- purposes that die with a reset of the user's sign-ins check it.
CREATE TABLE link_tokens (
    id           TEXT    PRIMARY KEY,  -- public id, inside the link
    secret_hash  BLOB    NOT NULL,
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    purpose      TEXT    NOT NULL,
    email        TEXT    NOT NULL DEFAULT '',
    session_id   TEXT    NOT NULL DEFAULT '',
    binding_hash BLOB,                 -- sign-in links: SHA-256 of the asking browser's binding cookie
    epoch        INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    used_at      INTEGER,              -- NULL while unused
    ip           TEXT    NOT NULL DEFAULT '',
    device       TEXT    NOT NULL DEFAULT '',
    location     TEXT    NOT NULL DEFAULT ''
);
-- The cascade of a user's deletion, and pruning.
CREATE INDEX link_tokens_user_id ON link_tokens (user_id);
CREATE INDEX link_tokens_expires_at ON link_tokens (expires_at);

-- Where each user signed in from: a device label and a network (the /16 of
-- an IPv4 address, the /64 of an IPv6 one), and when last. A sign-in from a
-- pair not seen lately gets a new sign-in alert.
CREATE TABLE sign_in_places (
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    device       TEXT    NOT NULL,
    network      TEXT    NOT NULL,
    last_seen_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, device, network)
);
