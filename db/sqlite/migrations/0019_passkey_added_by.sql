-- The session each passkey was added from (issue 24, the inventory rule):
-- disowning a session ("Not you?", "This wasn't me") removes the passkeys
-- it added, since whoever held it could have added one to come back with.
-- '' for passkeys added before this column existed (their session is not
-- known). Deliberately no foreign key: the session may be long gone.
ALTER TABLE passkeys ADD COLUMN added_by_session TEXT NOT NULL DEFAULT '';
CREATE INDEX passkeys_added_by_session ON passkeys (user_id, added_by_session);
