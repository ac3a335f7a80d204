-- "It was me" (issue 25): when the person said a session's sign-in was
-- theirs, from the Security page's banner or a new sign-in alert's "This
-- was me". NULL: not said. Kept on the session row, not as one "seen
-- until" time per user: each acknowledgement is about the sign-ins the
-- person was shown (or the one a mail named), so a sign-in that happens
-- while they read the page is never acknowledged unseen, and every
-- device and instance reads the same answer from the store.
ALTER TABLE sessions ADD COLUMN known_at INTEGER;
