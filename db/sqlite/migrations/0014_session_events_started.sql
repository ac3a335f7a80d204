-- session_events records started sessions too (kind 'started'), so another
-- process sharing the file refreshes the account's open lists on a new
-- sign-in, not only on an ending. A started row has an empty reason and
-- ended_by and its session's creation time; it carries ids only, never a
-- secret. Existing rows are endings.
ALTER TABLE session_events ADD COLUMN kind TEXT NOT NULL DEFAULT 'ended';
