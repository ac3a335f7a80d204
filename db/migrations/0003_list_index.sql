-- The session list is ordered by last activity, then sign-in time: an index
-- in exactly that order lets SQLite read the rows in order instead of
-- sorting them in a temporary B-tree on every page view.
DROP INDEX sessions_user_id;
CREATE INDEX sessions_user_last_seen ON sessions (user_id, last_seen_at, created_at);
