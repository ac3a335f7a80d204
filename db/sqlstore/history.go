package sqlstore

import (
	"context"
	"fmt"
	"time"

	"doorman/db"
)

const securityEventColumns = `id, user_id, kind, at, session_id, token_id, device, location, ip, method, reason, ended_by, detail`

const insertSecurityEventSQL = `INSERT INTO security_events
	(user_id, kind, at, session_id, token_id, device, location, ip, method, reason, ended_by, detail)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

func securityEventArgs(e db.SecurityEvent) []any {
	return []any{e.UserID, e.Kind, e.At.Unix(), e.SessionID, e.TokenID, e.Device, e.Location, e.IP, e.Method,
		e.Reason, e.By, e.Detail}
}

func scanSecurityEvent(row Row) (db.SecurityEvent, error) {
	var e db.SecurityEvent
	var at int64
	if err := row.Scan(&e.ID, &e.UserID, &e.Kind, &at, &e.SessionID, &e.TokenID, &e.Device, &e.Location, &e.IP,
		&e.Method, &e.Reason, &e.By, &e.Detail); err != nil {
		return db.SecurityEvent{}, err
	}
	e.At = time.Unix(at, 0)
	return e, nil
}

// scanSecurityEvents reads every row of a query of securityEventColumns
// (rows, err as the query gave them), closing them.
func scanSecurityEvents(rows Rows, err error) ([]db.SecurityEvent, error) {
	return scanAll(rows, err, scanSecurityEvent)
}

// scanAll reads every row with scan (rows, err as the query gave them),
// closing them.
func scanAll[T any](rows Rows, err error, scan func(Row) (T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// recordIn appends events to their users' security history in tx
// (PostgreSQL: in one round trip): the write that did what they record
// writes them, so the history holds a sign-in, an ending or a change
// exactly when it committed (unwrapped errors). On PostgreSQL each row's
// foreign key check takes its user's row lock (KEY SHARE): the caller
// holds it already (see Lock order).
func (s *Store) recordIn(ctx context.Context, tx Q, events ...db.SecurityEvent) error {
	stmts := make([]Stmt, len(events))
	for i, e := range events {
		stmts[i] = eventStmt(ctx, e)
	}
	return s.d.ExecBatch(ctx, tx, stmts...)
}

// eventStmt inserts e, with the acting browser of ctx if it names no
// device, place or address (db.Acted).
func eventStmt(ctx context.Context, e db.SecurityEvent) Stmt {
	return Stmt{insertSecurityEventSQL, securityEventArgs(db.Acted(ctx, e))}
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
			Method: t.Kind, Detail: t.Name, Reason: t.RevokedReason, By: t.RevokedBy}
	}
	return out
}

// RecordSecurityEvent appends e to its user's history (the id is the
// database's); db.ErrNotFound if the user does not exist. It is for events
// with no write of their own (a wrong password, a wrong code): the store's
// own writes record theirs in their transaction.
func (s *Store) RecordSecurityEvent(ctx context.Context, e db.SecurityEvent) error {
	_, err := s.d.Writes().Exec(ctx, insertSecurityEventSQL, securityEventArgs(db.Acted(ctx, e))...)
	if s.d.IsForeignKeyViolation(err) {
		return db.ErrNotFound
	}
	return failed("record security event", err)
}

// listSecurityEventsSQL reads user ?1's events with id < ?2 (0: from the
// newest) and at >= ?3, newest first, at most ?4 (the Security page runs
// it: a hot read).
const listSecurityEventsSQL = `SELECT ` + securityEventColumns + ` FROM security_events
	WHERE user_id = ?1 AND (CAST(?2 AS BIGINT) = 0 OR id < ?2) AND at >= ?3 ORDER BY id DESC LIMIT ?4`

// ListSecurityEvents returns the user's events with id < before (0: from
// the newest) and at >= since, newest first, at most limit (none for a limit
// of 0 or less). Paging by id rather than by time: ids only grow, and
// several events share a second.
func (s *Store) ListSecurityEvents(ctx context.Context, userID int64, before int64, since time.Time, limit int) ([]db.SecurityEvent, error) {
	if limit <= 0 {
		return nil, nil
	}
	out, err := scanSecurityEvents(s.d.Hot().Query(ctx, listSecurityEventsSQL, userID, before, since.Unix(), limit))
	if err != nil {
		return nil, fmt.Errorf("db: list security events: %w", err)
	}
	return out, nil
}

// FilterSecurityEvents is ListSecurityEvents narrowed by f (kinds, a
// time range), in the query: a filtered page reads no more rows than it
// shows, plus one.
func (s *Store) FilterSecurityEvents(ctx context.Context, userID int64, before int64, f db.EventFilter, limit int) ([]db.SecurityEvent, error) {
	if limit <= 0 {
		return nil, nil
	}
	q := `SELECT ` + securityEventColumns + ` FROM security_events
	WHERE user_id = ?1 AND (CAST(?2 AS BIGINT) = 0 OR id < ?2) AND at >= ?3 AND (CAST(?4 AS BIGINT) = 0 OR at < ?4)`
	args := []any{userID, before, f.Since.Unix(), toUnix(f.Until), limit}
	if len(f.Kinds) > 0 {
		q += ` AND kind IN (` + numbered(6, len(f.Kinds)) + `)`
		for _, k := range f.Kinds {
			args = append(args, k)
		}
	}
	out, err := scanSecurityEvents(s.d.Reads().Query(ctx, q+` ORDER BY id DESC LIMIT ?5`, args...))
	if err != nil {
		return nil, fmt.Errorf("db: filter security events: %w", err)
	}
	return out, nil
}

// PruneSecurityEvents deletes events older than cutoff.
func (s *Store) PruneSecurityEvents(ctx context.Context, cutoff time.Time) (int64, error) {
	n, err := s.d.Writes().Exec(ctx, `DELETE FROM security_events WHERE at < ?`, cutoff.Unix())
	return n, failed("prune security events", err)
}

// NoteRefusedUse counts a request refused because it came with the cookie
// of session id after its revocation: refused_count + 1, last_refused_at =
// at. Only a revoked session counts (the WHERE), so a live one is never
// marked; an unknown id or a live session changes nothing and is no error.
func (s *Store) NoteRefusedUse(ctx context.Context, sessionID string, at time.Time) error {
	_, err := s.d.Writes().Exec(ctx, `UPDATE sessions SET refused_count = refused_count + 1, last_refused_at = ?
		WHERE id = ? AND revoked_at IS NOT NULL`, at.Unix(), sessionID)
	return failed("note refused use", err)
}

// RecordExpiredSessions implements db.Store: one write transaction finds
// up to limit sessions expired and not yet recorded, locks their users
// (PostgreSQL, in id order: a user's deletion locks the user, then
// cascades to the sessions), marks them, writes their events, and owes
// every app each of them signed in to a back-channel logout naming it
// (sid): a session that timed out has ended as surely as one signed out,
// and the apps must hear it. The conditional UPDATE records each session
// once, whichever process gets there first, so each logout is owed once.
func (s *Store) RecordExpiredSessions(ctx context.Context, now time.Time, limit int) (int, error) {
	var n int
	err := s.d.Write(ctx, func(tx Q) error {
		rows, err := tx.Query(ctx, `SELECT id, user_id FROM sessions WHERE expiry_recorded = ?1 AND revoked_at IS NULL
			AND (idle_expires_at <= ?2 OR absolute_expires_at <= ?2) LIMIT ?3`, false, now.Unix(), limit)
		if err != nil {
			return err
		}
		var ids, users []any
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
		if s.d.RowLocks() {
			if _, err := tx.Exec(ctx, `SELECT 1 FROM users WHERE id IN (`+placeholders(len(users))+`) ORDER BY id FOR KEY SHARE`, users...); err != nil {
				return err
			}
		}
		args := append([]any{true, false, now.Unix()}, ids...)
		ended, err := scanSessions(tx.Query(ctx, `UPDATE sessions SET expiry_recorded = ?1
			WHERE expiry_recorded = ?2 AND revoked_at IS NULL AND (idle_expires_at <= ?3 OR absolute_expires_at <= ?3)
				AND id IN (`+numbered(4, len(ids))+`)
			RETURNING `+sessionColumns, args...))
		if err != nil {
			return err
		}
		events := make([]db.SecurityEvent, 0, len(ended))
		expired := make([]any, 0, len(ended))
		for _, sess := range ended {
			events = append(events, db.ExpiredEvent(sess))
			expired = append(expired, sess.ID)
		}
		n = len(ended)
		if n == 0 {
			return nil
		}
		if err := s.recordIn(ctx, tx, events...); err != nil {
			return err
		}
		// In chunks, as endSessionGrantsIn: an IN list has a bound.
		var logouts []Stmt
		for start := 0; start < len(expired); start += endChunk {
			logouts = append(logouts, sessionLogoutsStmt(expired[start:min(start+endChunk, len(expired))], now))
		}
		return s.d.ExecBatch(ctx, tx, logouts...)
	})
	if err != nil {
		return 0, fmt.Errorf("db: record expired sessions: %w", err)
	}
	return n, nil
}
