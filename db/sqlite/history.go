package sqlite

import (
	"context"
	"database/sql"
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

func scanSecurityEvent(row interface{ Scan(...any) error }) (db.SecurityEvent, error) {
	var e db.SecurityEvent
	var at int64
	if err := row.Scan(&e.ID, &e.UserID, &e.Kind, &at, &e.SessionID, &e.TokenID, &e.Device, &e.Location, &e.IP,
		&e.Method, &e.Reason, &e.By, &e.Detail); err != nil {
		return db.SecurityEvent{}, err
	}
	e.At = time.Unix(at, 0)
	return e, nil
}

// recordIn appends events to their users' security history inside tx: the
// write that did what they record writes them, so the history holds a
// sign-in, an ending or a change exactly when it committed (unwrapped
// errors).
func recordIn(ctx context.Context, tx *sql.Tx, events ...db.SecurityEvent) error {
	if len(events) == 0 {
		return nil
	}
	st, err := tx.PrepareContext(ctx, insertSecurityEventSQL)
	if err != nil {
		return err
	}
	defer st.Close()
	for _, e := range events {
		if _, err := st.ExecContext(ctx, securityEventArgs(e)...); err != nil {
			return err
		}
	}
	return nil
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
// database's); db.ErrNotFound if the user does not exist. It is for events
// with no write of their own (a wrong password, a wrong code): the store's
// own writes record theirs in their transaction.
func (s *Store) RecordSecurityEvent(ctx context.Context, e db.SecurityEvent) error {
	_, err := s.write.ExecContext(ctx, insertSecurityEventSQL, securityEventArgs(e)...)
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
// listSecurityEventsSQL is a page of a user's history (the Security page
// runs it: prepared once).
const listSecurityEventsSQL = `SELECT ` + securityEventColumns + ` FROM security_events
	WHERE user_id = ? AND (? = 0 OR id < ?) AND at >= ? ORDER BY id DESC LIMIT ?`

func (s *Store) ListSecurityEvents(ctx context.Context, userID int64, before int64, since time.Time, limit int) ([]db.SecurityEvent, error) {
	if limit <= 0 {
		return nil, nil
	}
	rows, err := s.listSecurityEvents.QueryContext(hot(ctx), userID, before, before, since.Unix(), limit)
	if err != nil {
		return nil, fmt.Errorf("db: list security events: %w", err)
	}
	defer rows.Close()
	var out []db.SecurityEvent
	for rows.Next() {
		e, err := scanSecurityEvent(rows)
		if err != nil {
			return nil, fmt.Errorf("db: list security events: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("db: list security events: %w", err)
	}
	return out, nil
}

// PruneSecurityEvents deletes events older than cutoff.
func (s *Store) PruneSecurityEvents(ctx context.Context, cutoff time.Time) (int64, error) {
	res, err := s.write.ExecContext(ctx, `DELETE FROM security_events WHERE at < ?`, cutoff.Unix())
	if err != nil {
		return 0, fmt.Errorf("db: prune security events: %w", err)
	}
	return res.RowsAffected()
}

// NoteRefusedUse counts a request refused because it came with the cookie
// of session id after its revocation: refused_count + 1, last_refused_at =
// at. Only a revoked session counts (the WHERE), so a live one is never
// marked; an unknown id or a live session changes nothing and is no error.
func (s *Store) NoteRefusedUse(ctx context.Context, sessionID string, at time.Time) error {
	if _, err := s.write.ExecContext(ctx, `UPDATE sessions SET refused_count = refused_count + 1, last_refused_at = ?
		WHERE id = ? AND revoked_at IS NOT NULL`, at.Unix(), sessionID); err != nil {
		return fmt.Errorf("db: note refused use: %w", err)
	}
	return nil
}

// RecordExpiredSessions implements db.Store: one write transaction marks
// the rows and writes their events, so no session is recorded twice.
func (s *Store) RecordExpiredSessions(ctx context.Context, now time.Time, limit int) (int, error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("db: record expired sessions: %w", err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `UPDATE sessions SET expiry_recorded = 1
		WHERE id IN (SELECT id FROM sessions WHERE expiry_recorded = 0 AND revoked_at IS NULL
			AND (idle_expires_at <= ? OR absolute_expires_at <= ?) LIMIT ?)
		RETURNING `+sessionColumns, now.Unix(), now.Unix(), limit)
	ended, err := scanSessions(rows, err)
	if err != nil {
		return 0, fmt.Errorf("db: record expired sessions: %w", err)
	}
	events := make([]db.SecurityEvent, 0, len(ended))
	for _, sess := range ended {
		events = append(events, db.ExpiredEvent(sess))
	}
	if err := recordIn(ctx, tx, events...); err != nil {
		return 0, fmt.Errorf("db: record expired sessions: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("db: record expired sessions: %w", err)
	}
	return len(ended), nil
}
