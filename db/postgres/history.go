package postgres

import (
	"context"
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
