-- One revocation rule for everything that can act for the account (the
-- second outside review): every emailed link but verify and undo dies when
-- the account is reset or its address is no longer the one the link was
-- mailed to or asked from; an approved device code dies when the account
-- is reset before the app redeems it.

-- The account's address when the link was made ('' for links made before
-- this migration: only their epoch is compared). Reset and sign-in links
-- already kept it in email.
ALTER TABLE link_tokens ADD COLUMN account_email TEXT NOT NULL DEFAULT '';
UPDATE link_tokens SET account_email = email WHERE purpose IN ('password_reset', 'sign_in');
-- The pending email changes the Security page lists.
CREATE INDEX link_tokens_pending ON link_tokens (user_id, purpose) WHERE used_at IS NULL;

-- The user's epoch when the code was approved: redeeming it needs the
-- account not reset since. -1 for rows from before: an approval still
-- waiting at the upgrade (minutes at most) must be given again.
ALTER TABLE device_authorizations ADD COLUMN epoch BIGINT NOT NULL DEFAULT -1;
