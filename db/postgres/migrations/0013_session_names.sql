-- A name the owner gives a session's device ("Anna's MacBook", issue 25):
-- shown in place of the browser label, which stays beside it. '' is no
-- name. It is the session's own: a later sign-in from the same browser is
-- a new session and starts unnamed (nothing ties two sessions to one
-- machine but look-alike labels, and a guess must not name a stranger's
-- browser after the owner's).
ALTER TABLE sessions ADD COLUMN device_name TEXT NOT NULL DEFAULT '';
