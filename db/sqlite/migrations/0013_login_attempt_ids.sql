-- Password and code attempts are reserved (a row written) before they are
-- checked, and a success releases its own row: every row gets an id to be
-- released by. AUTOINCREMENT, so an id is never reused and a late release
-- can never delete another attempt. SQLite cannot add a primary key to a
-- table: it is rebuilt, keeping every row.
-- The id is the last column, as on PostgreSQL (where it is added).
CREATE TABLE login_failures_new (
    account TEXT    NOT NULL,
    ip      TEXT    NOT NULL,
    at      INTEGER NOT NULL,
    scope   TEXT    NOT NULL DEFAULT '',
    id      INTEGER PRIMARY KEY AUTOINCREMENT
);
INSERT INTO login_failures_new (account, ip, at, scope) SELECT account, ip, at, scope FROM login_failures ORDER BY at;
DROP TABLE login_failures;
ALTER TABLE login_failures_new RENAME TO login_failures;
CREATE INDEX login_failures_account_scope_at ON login_failures (account, scope, at);
