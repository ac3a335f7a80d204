package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"doorman/db"
)

// channel is the LISTEN/NOTIFY channel of started and ended sessions.
const channel = "doorman_sessions"

// maxPayload keeps each NOTIFY under PostgreSQL's 8000-byte limit: a write
// that ends more sessions sends several.
const maxPayload = 7000

// notice is a NOTIFY's payload: ids, user ids and reasons, never rows or
// secrets. Started sessions have a field of their own, so an instance that
// does not know it yet ignores them rather than take them for endings.
type notice struct {
	Origin  string           `json:"o"`
	Ended   []endedSession   `json:"e,omitempty"`
	Started []startedSession `json:"n,omitempty"`
}

type endedSession struct {
	UserID    int64  `json:"u"`
	SessionID string `json:"s"`
	Reason    string `json:"r"`
	By        string `json:"b"`
	At        int64  `json:"t"`
}

type startedSession struct {
	UserID    int64  `json:"u"`
	SessionID string `json:"s"`
	At        int64  `json:"t"`
}

// announce sends events from origin as NOTIFY payloads, each under
// maxPayload, through send.
func announce(origin string, events []db.Event, send func(payload string) error) error {
	base, err := json.Marshal(notice{Origin: origin})
	if err != nil {
		return err
	}
	// Room for both arrays' brackets and names: `,"e":[]` and `,"n":[]`.
	envelope := len(base) + 16
	n := notice{Origin: origin}
	size := envelope
	flush := func() error {
		if len(n.Ended) == 0 && len(n.Started) == 0 {
			return nil
		}
		b, err := json.Marshal(n)
		if err != nil {
			return err
		}
		n.Ended, n.Started, size = nil, nil, envelope
		return send(string(b))
	}
	for _, e := range events {
		var entry any
		switch e.Kind {
		case db.SessionEnded:
			entry = endedSession{UserID: e.UserID, SessionID: e.SessionID, Reason: e.Reason, By: e.By, At: e.At.Unix()}
		case db.SessionStarted:
			entry = startedSession{UserID: e.UserID, SessionID: e.SessionID, At: e.At.Unix()}
		default:
			continue
		}
		b, err := json.Marshal(entry)
		if err != nil {
			return err
		}
		if size+len(b)+1 > maxPayload {
			if err := flush(); err != nil {
				return err
			}
		}
		size += len(b) + 1 // and its comma
		switch v := entry.(type) {
		case endedSession:
			n.Ended = append(n.Ended, v)
		case startedSession:
			n.Started = append(n.Started, v)
		}
	}
	return flush()
}

var _ db.Watcher = (*Store)(nil)

// Watch listens for started and ended sessions on a connection of its own,
// delivering those other processes started or ended, until ctx ends. A NOTIFY sent while the
// connection was down is lost for good, so after every (re)connect it calls
// resync: the caller rechecks what it holds against the tables.
func (s *Store) Watch(ctx context.Context, deliver func([]db.Event), resync func()) error {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := s.listen(ctx, deliver, resync)
		if ctx.Err() != nil {
			return nil
		}
		_ = err // the connection dropped: reconnect after a pause
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
	return nil
}

func (s *Store) listen(ctx context.Context, deliver func([]db.Event), resync func()) error {
	cfg := s.pool.Config().ConnConfig.Copy()
	cfg.RuntimeParams["application_name"] = "doorman-listen"
	// Connecting and LISTEN are bounded; the wait for a notification is
	// not (it is idle time, not a query).
	setup, cancel := context.WithTimeout(ctx, db.CallTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(setup, cfg)
	if err != nil {
		return fmt.Errorf("db: listen: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(setup, `LISTEN `+channel); err != nil {
		return fmt.Errorf("db: listen: %w", err)
	}
	resync()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		var msg notice
		if json.Unmarshal([]byte(n.Payload), &msg) != nil || msg.Origin == s.origin {
			continue
		}
		events := make([]db.Event, 0, len(msg.Ended)+len(msg.Started))
		for _, e := range msg.Ended {
			events = append(events, db.Event{Kind: db.SessionEnded, UserID: e.UserID, SessionID: e.SessionID, Reason: e.Reason, By: e.By, At: time.Unix(e.At, 0)})
		}
		for _, e := range msg.Started {
			events = append(events, db.Event{Kind: db.SessionStarted, UserID: e.UserID, SessionID: e.SessionID, At: time.Unix(e.At, 0)})
		}
		if len(events) > 0 {
			deliver(events)
		}
	}
}
