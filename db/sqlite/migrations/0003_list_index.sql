-- The session list is ordered by last activity, then sign-in time. An index
-- in exactly that order lets SQLite read the rows in order instead of sorting
-- them in a temporary B-tree on every page view. It holds only sessions that
-- were not revoked (a partial index, which PostgreSQL has too), so a user's
-- page costs the same however many sessions they ended before: revoked rows
-- stay until pruned, and a script that signs in over and over (each sign-in
-- past the limit revoking one) must not slow that user's every request.
DROP INDEX sessions_user_id;
CREATE INDEX sessions_user_live ON sessions (user_id, last_seen_at, created_at) WHERE revoked_at IS NULL;
