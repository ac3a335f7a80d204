package sqlite

import (
	"context"
	"database/sql"

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

// ListSecurityEvents returns the user's events with id < before (0: from
// the newest) and at >= since, newest first, at most limit (none for a limit
// of 0 or less). Paging by id rather than by time: ids only grow, and
// several events share a second.
// listSecurityEventsSQL is a page of a user's history (the Security page
// runs it: prepared once).
const listSecurityEventsSQL = `SELECT ` + securityEventColumns + ` FROM security_events
	WHERE user_id = ? AND (? = 0 OR id < ?) AND at >= ? ORDER BY id DESC LIMIT ?`
