-- Sessions ended by a write, recorded in the same transaction, so that a
-- server sees what another process (an operator command) ended within a
-- second and can tell the open tab at once. Rows are pruned after an hour;
-- they are a courtesy feed, never consulted to decide whether a session
-- lives.
CREATE TABLE session_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    origin     TEXT    NOT NULL,  -- the writing process (its own rows it already knows)
    user_id    INTEGER NOT NULL,
    session_id TEXT    NOT NULL,
    reason     TEXT    NOT NULL,
    ended_by   TEXT    NOT NULL,
    at         INTEGER NOT NULL
);
