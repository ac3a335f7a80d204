package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"doorman/db"
)

const sessionColumns = `id, secret_hash, user_id, created_at, last_seen_at, idle_expires_at,
	absolute_expires_at, ip, user_agent, device_label, device_kind, location, location_short,
	auth_method, reauth_at, revoked_at, revoked_reason, revoked_by, refused_count, last_refused_at`

// aliveSQL is the one definition, in SQL, of a live session. It takes now twice.
const aliveSQL = `revoked_at IS NULL AND idle_expires_at > ? AND absolute_expires_at > ?`

func scanSession(row interface{ Scan(...any) error }, extra ...any) (db.Session, error) {
	var s db.Session
	var created, seen, idle, abs, reauth, refused int64
	var revokedAt sql.NullInt64
	var reason, by sql.NullString
	dest := []any{&s.ID, &s.SecretHash, &s.UserID, &created, &seen, &idle, &abs, &s.IP, &s.UserAgent,
		&s.DeviceLabel, &s.DeviceKind, &s.Location, &s.LocationShort, &s.AuthMethod, &reauth, &revokedAt, &reason, &by,
		&s.RefusedCount, &refused}
	if err := row.Scan(append(dest, extra...)...); err != nil {
		return db.Session{}, err
	}
	s.CreatedAt, s.LastSeenAt = time.Unix(created, 0), time.Unix(seen, 0)
	s.IdleExpiresAt, s.AbsoluteExpiresAt = time.Unix(idle, 0), time.Unix(abs, 0)
	s.ReauthAt, s.LastRefusedAt = time.Unix(reauth, 0), fromUnix(refused)
	if revokedAt.Valid {
		s.RevokedAt = time.Unix(revokedAt.Int64, 0)
	}
	s.RevokedReason, s.RevokedBy = reason.String, by.String
	return s, nil
}

// checkEpochIn is the check every write that mints a credential makes inside
// its transaction (a session, a token, a redeemed device approval): the user
// exists (else db.ErrNotFound), is not disabled, and its epoch is still
// epoch, the one the request read (else db.ErrSignInsReset). The single
// writer orders it against every reset.
func checkEpochIn(ctx context.Context, tx *sql.Tx, userID, epoch int64) error {
	var current int64
	var disabled sql.NullInt64
	err := tx.QueryRowContext(ctx, `SELECT epoch, disabled_at FROM users WHERE id = ?`, userID).Scan(&current, &disabled)
	if errors.Is(err, sql.ErrNoRows) {
		return db.ErrNotFound
	}
	if err != nil {
		return err
	}
	if current != epoch || disabled.Valid {
		return db.ErrSignInsReset
	}
	return nil
}

// createSessionIn is CreateSession's work inside tx (every write that
// creates a session goes through it): the epoch and disabled check
// (db.ErrSignInsReset, or db.ErrNotFound for no such user, both unwrapped),
// the eviction past maxPerUser, the insert, their security events (the
// sign-in, each eviction) and the session's sign-in place. The caller
// commits, then calls notifyCreated.
func (s *Store) createSessionIn(ctx context.Context, tx *sql.Tx, sess db.Session, maxPerUser int, epoch int64) (evicted []db.Session, err error) {
	now := sess.CreatedAt.Unix()
	if err := checkEpochIn(ctx, tx, sess.UserID, epoch); err != nil {
		return nil, err
	}
	if maxPerUser > 0 {
		var live int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM sessions WHERE user_id = ? AND `+aliveSQL,
			sess.UserID, now, now).Scan(&live); err != nil {
			return nil, fmt.Errorf("count: %w", err)
		}
		if excess := live - maxPerUser + 1; excess > 0 {
			// revokeIn also records the evictions (session_events, history).
			evicted, err = s.revokeIn(ctx, tx, `id IN (SELECT id FROM sessions WHERE user_id = ? AND `+aliveSQL+`
				ORDER BY last_seen_at, created_at LIMIT ?)`,
				db.ReasonSessionLimit, sess.ID, sess.CreatedAt, sess.UserID, now, now, excess)
			if err != nil {
				return nil, fmt.Errorf("evict: %w", err)
			}
		}
	}
	reauth := sess.ReauthAt
	if reauth.IsZero() {
		reauth = sess.CreatedAt
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO sessions (id, secret_hash, user_id, created_at, last_seen_at,
		idle_expires_at, absolute_expires_at, ip, user_agent, device_label, device_kind, location, location_short, auth_method, reauth_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		sess.ID, sess.SecretHash, sess.UserID, sess.CreatedAt.Unix(), sess.LastSeenAt.Unix(),
		sess.IdleExpiresAt.Unix(), sess.AbsoluteExpiresAt.Unix(), sess.IP, sess.UserAgent,
		sess.DeviceLabel, sess.DeviceKind, sess.Location, sess.LocationShort, sess.AuthMethod, reauth.Unix())
	if err != nil {
		return nil, err
	}
	if err := recordIn(ctx, tx, signInEvent(sess)); err != nil {
		return nil, err
	}
	// The other processes watching the file hear of the start too (after
	// the evictions, as notifyCreated reports them here).
	if _, err := tx.ExecContext(ctx, `INSERT INTO session_events (origin, kind, user_id, session_id, reason, ended_by, at)
		VALUES (?, ?, ?, ?, '', '', ?)`, s.origin, eventStarted, sess.UserID, sess.ID, sess.CreatedAt.Unix()); err != nil {
		return nil, err
	}
	// The place is remembered by the write that signs in, so the next
	// sign-in's alert check sees exactly the sign-ins that committed.
	if err := rememberPlaceIn(ctx, tx, sess.UserID, sess.DeviceLabel, db.Network(sess.IP), sess.CreatedAt); err != nil {
		return nil, err
	}
	return evicted, nil
}

// notifyCreated reports, after commit, what creating sess did: the
// sessions it evicted, then its start.
func (s *Store) notifyCreated(sess db.Session, evicted []db.Session) {
	s.notify(append(db.EndedEvents(evicted), db.Event{Kind: db.SessionStarted, UserID: sess.UserID, SessionID: sess.ID, At: sess.CreatedAt}))
}

// The kinds of session_events rows.
const (
	eventStarted = "started"
	eventEnded   = "ended"
)

// scanSessions reads every row a query returned (rows, err as the query
// gave them), closing them.
func scanSessions(rows *sql.Rows, err error) ([]db.Session, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []db.Session
	for rows.Next() {
		sess, err := scanSession(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, sess)
	}
	return out, rows.Err()
}

// revokeIn ends the live sessions matching where (with args) inside tx and
// records them in session_events and in their users' security history:
// every revocation goes through here, so each ending is recorded once, by
// the write that made it. The caller reports them after commit.
func (s *Store) revokeIn(ctx context.Context, tx *sql.Tx, where, reason, by string, now time.Time, args ...any) ([]db.Session, error) {
	all := append([]any{now.Unix(), reason, by}, args...)
	all = append(all, now.Unix(), now.Unix())
	ended, err := scanSessions(tx.QueryContext(ctx, `UPDATE sessions SET revoked_at = ?, revoked_reason = ?, revoked_by = ?
		WHERE `+where+` AND `+aliveSQL+` RETURNING `+sessionColumns, all...))
	if err != nil {
		return nil, err
	}
	if err := s.logEnded(ctx, tx, ended); err != nil {
		return nil, err
	}
	return ended, recordIn(ctx, tx, sessionEndedEvents(ended)...)
}

// logEnded records ended sessions in session_events, in tx, for the other
// processes watching the database (see Watch).
func (s *Store) logEnded(ctx context.Context, tx *sql.Tx, ended []db.Session) error {
	if len(ended) == 0 {
		return nil
	}
	st, err := tx.PrepareContext(ctx, `INSERT INTO session_events (origin, kind, user_id, session_id, reason, ended_by, at) VALUES (?, '`+eventEnded+`', ?, ?, ?, ?, ?)`)
	if err != nil {
		return err
	}
	defer st.Close()
	for _, e := range ended {
		if _, err := st.ExecContext(ctx, s.origin, e.UserID, e.ID, e.RevokedReason, e.RevokedBy, e.RevokedAt.Unix()); err != nil {
			return err
		}
	}
	return nil
}

// SecurityOverview reads the Security page's four lists one after another:
// on SQLite every read is a local call already (no round trip to save), and
// each of them is a prepared statement.
func (s *Store) SecurityOverview(ctx context.Context, userID int64, now, historySince time.Time, historyLimit int) (db.Overview, error) {
	var o db.Overview
	var err error
	if o.Sessions, err = s.ListSessionSummaries(ctx, userID, now); err != nil {
		return o, err
	}
	o.TwoFactor, err = s.TwoFactor(ctx, userID)
	switch {
	case err == nil:
		o.HasTwoFactor = true
	case !errors.Is(err, db.ErrNotFound):
		return o, err
	}
	if o.Tokens, err = s.ListTokens(ctx, userID, "", now); err != nil {
		return o, err
	}
	if o.Events, err = s.ListSecurityEvents(ctx, userID, 0, historySince, historyLimit); err != nil {
		return o, err
	}
	if o.EmailChanges, err = s.PendingEmailChanges(ctx, userID, now); err != nil {
		return o, err
	}
	o.Approvals, err = s.PendingApprovals(ctx, userID, now)
	return o, err
}
