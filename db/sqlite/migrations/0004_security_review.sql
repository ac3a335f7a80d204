-- Fixes from the security review.

-- A counter of resets of the user's sign-ins: a password change, "log out
-- all other sessions", "log out everywhere" and disabling the account each
-- add one in the same transaction as what they end. A sign-in creates its
-- session only if the counter is still what it read before checking the
-- password, so a sign-in in flight during a reset never outlives it.
ALTER TABLE users ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;

-- Failed sign-ins are no longer keyed by the address as typed (someone who
-- types a password into the email field must not find it stored) but by a
-- keyed hash of the normalised address ("account"), and are counted apart
-- per scope: anonymous attempts, each browser that carries a device cookie,
-- each session re-entering its password. The old rows hold typed addresses:
-- they are deleted (the counters restart once, at this upgrade).
DELETE FROM login_failures;
DROP INDEX login_failures_email_at;
ALTER TABLE login_failures RENAME COLUMN email TO account;
ALTER TABLE login_failures ADD COLUMN scope TEXT NOT NULL DEFAULT '';
CREATE INDEX login_failures_account_scope_at ON login_failures (account, scope, at);
