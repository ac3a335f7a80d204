-- Whether two-factor was turned on while the account's address was not
-- verified. Someone who signs up with another person's address and turns
-- two-factor on would otherwise lock the address's owner out: a password
-- reset from the owner's mailbox would still ask for the squatter's code.
-- A second factor set up before the address was proven is cleared by a
-- password reset link (which proves the mailbox); one set up afterwards
-- never is. EnableTwoFactor records the address's state at that moment
-- (the pages turn two-factor on only for a verified address).
--
-- Existing rows: turned on with no verified address (none yet, or verified
-- only after two-factor was on) counts as unverified, unless the address
-- was changed since two-factor was turned on (then its later verification
-- is the change's, not a sign that the first address was never proven).
ALTER TABLE two_factor ADD COLUMN unverified_address BOOLEAN NOT NULL DEFAULT false;
UPDATE two_factor SET unverified_address = true
    WHERE enabled_at IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM users u WHERE u.id = two_factor.user_id
                      AND u.email_verified_at IS NOT NULL AND u.email_verified_at <= two_factor.enabled_at)
      AND NOT EXISTS (SELECT 1 FROM security_events e WHERE e.user_id = two_factor.user_id
                      AND e.kind = 'email_changed' AND e.at >= two_factor.enabled_at);
