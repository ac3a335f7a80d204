package sqlite

import (
	"context"
	"time"

	"doorman/db"
)

// watchEvery is how often Watch looks for sessions other processes started
// or ended: the push then reaches the tab well within a second, for one
// indexed read.
const watchEvery = 250 * time.Millisecond

// eventsKept is how long session_events rows are kept.
const eventsKept = time.Hour

// Watch delivers the sessions that other processes (another server or an
// operator command on the same file) started or ended, polling
// session_events by id, until ctx ends.
var _ db.Watcher = (*Store)(nil)

// Watch implements db.Watcher.
func (s *Store) Watch(ctx context.Context, deliver func([]db.Event), resync func()) error {
	// Where to start: the newest event now. A file that cannot be read
	// yet is tried again, as a failed poll is, rather than leave the
	// instance deaf to other processes for good.
	var last int64
	for {
		first, cancel := context.WithTimeout(ctx, db.CallTimeout)
		err := s.read.QueryRowContext(first, `SELECT COALESCE(MAX(id), 0) FROM session_events`).Scan(&last)
		cancel()
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(watchEvery):
		}
	}
	resync()
	tick := time.NewTicker(watchEvery)
	defer tick.Stop()
	lastPrune, failing := time.Time{}, false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		events, next, err := s.eventsAfter(ctx, last)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			failing = true // something may be missed meanwhile
			continue
		}
		if failing {
			failing = false
			resync()
		}
		last = next
		if len(events) > 0 {
			deliver(events)
		}
		if now := s.now(); now.Sub(lastPrune) > time.Minute {
			lastPrune = now
			pctx, cancel := context.WithTimeout(ctx, db.CallTimeout)
			s.write.ExecContext(pctx, `DELETE FROM session_events WHERE at < ?`, now.Add(-eventsKept).Unix())
			cancel()
		}
	}
}

// eventsAfter reads session_events after id written by other processes.
func (s *Store) eventsAfter(ctx context.Context, after int64) ([]db.Event, int64, error) {
	ctx, cancel := context.WithTimeout(ctx, db.CallTimeout)
	defer cancel()
	rows, err := s.read.QueryContext(ctx, `SELECT id, origin, kind, user_id, session_id, reason, ended_by, at
		FROM session_events WHERE id > ? ORDER BY id LIMIT 1000`, after)
	if err != nil {
		return nil, after, err
	}
	defer rows.Close()
	var out []db.Event
	for rows.Next() {
		var e db.Event
		var origin, kind string
		var at int64
		if err := rows.Scan(&after, &origin, &kind, &e.UserID, &e.SessionID, &e.Reason, &e.By, &at); err != nil {
			return nil, after, err
		}
		if origin == s.origin {
			continue
		}
		switch kind {
		case eventStarted:
			e.Kind = db.SessionStarted
		case eventEnded:
			e.Kind = db.SessionEnded
		default:
			continue // a kind this version does not know
		}
		e.At = time.Unix(at, 0)
		out = append(out, e)
	}
	return out, after, rows.Err()
}

// The kinds of session_events rows.
const (
	eventStarted = "started"
	eventEnded   = "ended"
)
