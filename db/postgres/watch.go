package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"doorman/db"
)

// channel is the LISTEN/NOTIFY channel of ended sessions.
const channel = "doorman_sessions"

// maxPayload keeps each NOTIFY under PostgreSQL's 8000-byte limit: a write
// that ends more sessions sends several.
const maxPayload = 7000

// notice is a NOTIFY's payload: ids and reasons, never rows.
type notice struct {
	Origin string         `json:"o"`
	Ended  []endedSession `json:"e"`
}

type endedSession struct {
	UserID    int64  `json:"u"`
	SessionID string `json:"s"`
	Reason    string `json:"r"`
	By        string `json:"b"`
	At        int64  `json:"t"`
}

// notifyIn sends the ended sessions to every listening instance, in tx:
// PostgreSQL delivers a NOTIFY when (and only if) its transaction commits.
func (s *Store) notifyIn(ctx context.Context, tx pgx.Tx, ended []db.Session) error {
	n := notice{Origin: s.origin}
	size := 0
	flush := func() error {
		if len(n.Ended) == 0 {
			return nil
		}
		b, err := json.Marshal(n)
		if err != nil {
			return err
		}
		n.Ended, size = nil, 0
		_, err = tx.Exec(ctx, `SELECT pg_notify($1, $2)`, channel, string(b))
		return err
	}
	for _, e := range ended {
		es := endedSession{UserID: e.UserID, SessionID: e.ID, Reason: e.RevokedReason, By: e.RevokedBy, At: e.RevokedAt.Unix()}
		if size += len(e.ID) + len(e.RevokedReason) + len(e.RevokedBy) + 60; size > maxPayload {
			if err := flush(); err != nil {
				return err
			}
			size = len(e.ID) + len(e.RevokedReason) + len(e.RevokedBy) + 60
		}
		n.Ended = append(n.Ended, es)
	}
	return flush()
}

var _ db.Watcher = (*Store)(nil)

// Watch listens for ended sessions on a connection of its own, delivering
// those other processes ended, until ctx ends. A NOTIFY sent while the
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
		events := make([]db.Event, len(msg.Ended))
		for i, e := range msg.Ended {
			events[i] = db.Event{Kind: db.SessionEnded, UserID: e.UserID, SessionID: e.SessionID, Reason: e.Reason, By: e.By, At: time.Unix(e.At, 0)}
		}
		deliver(events)
	}
}
