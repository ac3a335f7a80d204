package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"doorman/db"
)

const securityEventColumns = `id, user_id, kind, at, session_id, token_id, device, location, ip, method, reason, ended_by, detail`

const insertSecurityEventSQL = `INSERT INTO security_events
	(user_id, kind, at, session_id, token_id, device, location, ip, method, reason, ended_by, detail)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`

func securityEventArgs(e db.SecurityEvent) []any {
	return []any{e.UserID, e.Kind, e.At.Unix(), e.SessionID, e.TokenID, e.Device, e.Location, e.IP, e.Method,
		e.Reason, e.By, e.Detail}
}

func scanSecurityEvent(row pgx.Row) (db.SecurityEvent, error) {
	var e db.SecurityEvent
	var at int64
	if err := row.Scan(&e.ID, &e.UserID, &e.Kind, &at, &e.SessionID, &e.TokenID, &e.Device, &e.Location, &e.IP,
		&e.Method, &e.Reason, &e.By, &e.Detail); err != nil {
		return db.SecurityEvent{}, err
	}
	e.At = time.Unix(at, 0)
	return e, nil
}

// recordIn appends events to their users' security history in tx, in one
// round trip: the write that did what they record writes them, so the
// history holds a sign-in, an ending or a change exactly when it committed
// (unwrapped errors). Each row's foreign key check takes its user's row
// lock (KEY SHARE): the caller holds it already (see Lock order in
// tokens.go).
func recordIn(ctx context.Context, tx pgx.Tx, events ...db.SecurityEvent) error {
	if len(events) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	for _, e := range events {
		b.Queue(insertSecurityEventSQL, securityEventArgs(e)...)
	}
	return tx.SendBatch(ctx, b).Close()
}

// signInEvent is the history of session sess starting.
func signInEvent(sess db.Session) db.SecurityEvent {
	return db.SecurityEvent{UserID: sess.UserID, Kind: db.EventSignIn, At: sess.CreatedAt, SessionID: sess.ID,
		Device: sess.DeviceLabel, Location: sess.Location, IP: sess.IP, Method: sess.AuthMethod}
}

// sessionEndedEvents is the history of the sessions ended (as revoked).
func sessionEndedEvents(ended []db.Session) []db.SecurityEvent {
	out := make([]db.SecurityEvent, len(ended))
	for i, e := range ended {
		out[i] = db.SecurityEvent{UserID: e.UserID, Kind: db.EventSessionEnded, At: e.RevokedAt, SessionID: e.ID,
			Device: e.DeviceLabel, Location: e.Location, IP: e.IP, Reason: e.RevokedReason, By: e.RevokedBy}
	}
	return out
}

// tokenRevokedEvents is the history of the tokens ended (as revoked).
func tokenRevokedEvents(ended []db.Token) []db.SecurityEvent {
	out := make([]db.SecurityEvent, len(ended))
	for i, t := range ended {
		out[i] = db.SecurityEvent{UserID: t.UserID, Kind: db.EventTokenRevoked, At: t.RevokedAt, TokenID: t.ID,
			Detail: t.Name, Reason: t.RevokedReason, By: t.RevokedBy}
	}
	return out
}

// RecordSecurityEvent appends e to its user's history (the id is the
// database's); ErrNotFound if the user does not exist. It is for events
// with no write of their own (a wrong password, a wrong code): the store's
// own writes record theirs in their transaction.
func (s *Store) RecordSecurityEvent(ctx context.Context, e db.SecurityEvent) error {
	_, err := s.pool.Exec(ctx, insertSecurityEventSQL, securityEventArgs(e)...)
	if isForeignKeyViolation(err) {
		return db.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("db: record security event: %w", err)
	}
	return nil
}

// ListSecurityEvents returns the user's events with id < before (0: from
// the newest) and at >= since, newest first, at most limit (none for a limit
// of 0 or less). Paging by id rather than by time: ids only grow, and
// several events share a second.
func (s *Store) ListSecurityEvents(ctx context.Context, userID int64, before int64, since time.Time, limit int) ([]db.SecurityEvent, error) {
	if limit <= 0 {
		return nil, nil
	}
	out, err := scanSecurityEvents(s.pool.Query(ctx, listSecurityEventsSQL, userID, before, since.Unix(), limit))
	if err != nil {
		return nil, fmt.Errorf("db: list security events: %w", err)
	}
	return out, nil
}

// listSecurityEventsSQL reads user $1's events with id < $2 (0: from the
// newest) and at >= $3, newest first, at most $4.
const listSecurityEventsSQL = `SELECT ` + securityEventColumns + ` FROM security_events
	WHERE user_id = $1 AND ($2::bigint = 0 OR id < $2) AND at >= $3 ORDER BY id DESC LIMIT $4`

// scanSecurityEvents reads the rows of listSecurityEventsSQL (rows, err as
// the query gave them), closing them.
func scanSecurityEvents(rows pgx.Rows, err error) ([]db.SecurityEvent, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []db.SecurityEvent
	for rows.Next() {
		e, err := scanSecurityEvent(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// PruneSecurityEvents deletes events older than cutoff.
func (s *Store) PruneSecurityEvents(ctx context.Context, cutoff time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM security_events WHERE at < $1`, cutoff.Unix())
	if err != nil {
		return 0, fmt.Errorf("db: prune security events: %w", err)
	}
	return tag.RowsAffected(), nil
}

// NoteRefusedUse counts a request refused because it came with the cookie
// of session id after its revocation: refused_count + 1, last_refused_at =
// at. Only a revoked session counts (the WHERE), so a live one is never
// marked; an unknown id or a live session changes nothing and is no error.
func (s *Store) NoteRefusedUse(ctx context.Context, sessionID string, at time.Time) error {
	if _, err := s.pool.Exec(ctx, `UPDATE sessions SET refused_count = refused_count + 1, last_refused_at = $1
		WHERE id = $2 AND revoked_at IS NOT NULL`, at.Unix(), sessionID); err != nil {
		return fmt.Errorf("db: note refused use: %w", err)
	}
	return nil
}

// RecordExpiredSessions implements db.Store. Users are locked before their
// sessions (the lock order of this store: a user's deletion locks the user,
// then cascades to the sessions); the conditional UPDATE makes each session
// recorded once, whichever instance gets there first.
func (s *Store) RecordExpiredSessions(ctx context.Context, now time.Time, limit int) (int, error) {
	var n int
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id, user_id FROM sessions WHERE NOT expiry_recorded AND revoked_at IS NULL
			AND (idle_expires_at <= $1 OR absolute_expires_at <= $1) LIMIT $2`, now.Unix(), limit)
		if err != nil {
			return err
		}
		var ids []string
		var users []int64
		for rows.Next() {
			var id string
			var user int64
			if err := rows.Scan(&id, &user); err != nil {
				rows.Close()
				return err
			}
			ids, users = append(ids, id), append(users, user)
		}
		rows.Close()
		if err := rows.Err(); err != nil || len(ids) == 0 {
			return err
		}
		if _, err := tx.Exec(ctx, `SELECT 1 FROM users WHERE id = ANY($1) ORDER BY id FOR KEY SHARE`, users); err != nil {
			return err
		}
		ended, err := scanSessions(tx.Query(ctx, `UPDATE sessions SET expiry_recorded = true
			WHERE id = ANY($1) AND NOT expiry_recorded AND revoked_at IS NULL
				AND (idle_expires_at <= $2 OR absolute_expires_at <= $2)
			RETURNING `+sessionColumns, ids, now.Unix()))
		if err != nil {
			return err
		}
		events := make([]db.SecurityEvent, 0, len(ended))
		for _, sess := range ended {
			events = append(events, db.ExpiredEvent(sess))
		}
		n = len(ended)
		return recordIn(ctx, tx, events...)
	})
	if err != nil {
		return 0, fmt.Errorf("db: record expired sessions: %w", err)
	}
	return n, nil
}
