package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"doorman/db"
)

const sessionColumns = `id, secret_hash, user_id, created_at, last_seen_at, idle_expires_at,
	absolute_expires_at, ip, user_agent, device_label, device_kind, location, location_short,
	auth_method, reauth_at, revoked_at, revoked_reason, revoked_by, refused_count, last_refused_at`

// aliveSQL is the one definition, in SQL, of a live session. It takes now twice.
const aliveSQL = `revoked_at IS NULL AND idle_expires_at > ? AND absolute_expires_at > ?`

// sessionColumnsOf is sessionColumns qualified by a table alias, for joins.
func sessionColumnsOf(alias string) string {
	return alias + "." + strings.ReplaceAll(strings.Join(strings.Fields(sessionColumns), " "), ", ", ", "+alias+".")
}

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

// RotateSession gives a live session a new secret (its hash) and records a
// re-authentication at now. The old cookie stops working at once.
func (s *Store) RotateSession(ctx context.Context, id string, secretHash []byte, now time.Time) error {
	res, err := s.write.ExecContext(ctx, `UPDATE sessions SET secret_hash = ?, reauth_at = ?
		WHERE id = ? AND `+aliveSQL, secretHash, now.Unix(), id, now.Unix(), now.Unix())
	if err != nil {
		return fmt.Errorf("db: rotate session: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return db.ErrNotFound
	}
	return nil
}

var sessionWithUserSQL = `SELECT ` + sessionColumnsOf("s") + `, u.email, u.created_at, u.is_demo, u.disabled_at,
	u.email_verified_at, u.sign_in_alerts_off, u.epoch
	FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = ?`

// SessionWithUser returns the session with that public id, alive or not, and
// its user: the one query behind every request's session check. The caller
// verifies the secret and decides what a dead session means.
func (s *Store) SessionWithUser(ctx context.Context, id string) (db.Session, db.User, error) {
	row := s.sessionWithUser.QueryRowContext(hot(ctx), id)
	var u db.User
	var created int64
	var disabled, verified sql.NullInt64
	sess, err := scanSession(row, &u.Email, &created, &u.IsDemo, &disabled, &verified, &u.SignInAlertsOff, &u.Epoch)
	if errors.Is(err, sql.ErrNoRows) {
		return db.Session{}, db.User{}, db.ErrNotFound
	}
	if err != nil {
		return db.Session{}, db.User{}, fmt.Errorf("db: session with user: %w", err)
	}
	u.ID, u.CreatedAt = sess.UserID, time.Unix(created, 0)
	u.DisabledAt, u.EmailVerifiedAt = nullTime(disabled), nullTime(verified)
	return sess, u, nil
}

// UserSession returns one live session of the user, or db.ErrNotFound when the id
// is unknown, ended, or belongs to someone else.
func (s *Store) UserSession(ctx context.Context, userID int64, id string, now time.Time) (db.Session, error) {
	row := s.read.QueryRowContext(ctx, `SELECT `+sessionColumns+` FROM sessions
		WHERE user_id = ? AND id = ? AND `+aliveSQL, userID, id, now.Unix(), now.Unix())
	sess, err := scanSession(row)
	if errors.Is(err, sql.ErrNoRows) {
		return db.Session{}, db.ErrNotFound
	}
	if err != nil {
		return db.Session{}, fmt.Errorf("db: user session: %w", err)
	}
	return sess, nil
}

// ListSessions returns the user's live sessions, every column, most recently
// active first (for operators; pages use ListSessionSummaries).
func (s *Store) ListSessions(ctx context.Context, userID int64, now time.Time) ([]db.Session, error) {
	out, err := scanSessions(s.read.QueryContext(ctx, `SELECT `+sessionColumns+` FROM sessions
		WHERE user_id = ? AND `+aliveSQL+` ORDER BY last_seen_at DESC, created_at DESC`, userID, now.Unix(), now.Unix()))
	if err != nil {
		return nil, fmt.Errorf("db: list sessions: %w", err)
	}
	return out, nil
}

// listSessionsSQL reads only the columns a list shows: with 10 sessions it
// costs 28 µs instead of 67 µs for every column (BenchmarkListSessions).
const listSessionsSQL = `SELECT id, created_at, last_seen_at, device_label, device_kind, location, location_short, auth_method
	FROM sessions WHERE user_id = ? AND ` + aliveSQL + ` ORDER BY last_seen_at DESC, created_at DESC`

// ListSessionSummaries returns the user's live sessions, most recently
// active first: the query behind every list page.
func (s *Store) ListSessionSummaries(ctx context.Context, userID int64, now time.Time) ([]db.SessionSummary, error) {
	rows, err := s.listSessions.QueryContext(hot(ctx), userID, now.Unix(), now.Unix())
	if err != nil {
		return nil, fmt.Errorf("db: list sessions: %w", err)
	}
	defer rows.Close()
	var out []db.SessionSummary
	for rows.Next() {
		var ss db.SessionSummary
		var created, seen int64
		if err := rows.Scan(&ss.ID, &created, &seen, &ss.DeviceLabel, &ss.DeviceKind, &ss.Location, &ss.LocationShort, &ss.AuthMethod); err != nil {
			return nil, fmt.Errorf("db: list sessions: %w", err)
		}
		ss.CreatedAt, ss.LastSeenAt = time.Unix(created, 0), time.Unix(seen, 0)
		out = append(out, ss)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("db: list sessions: %w", err)
	}
	return out, nil
}

// TouchSession records activity on a live session. It never revives a revoked
// one: a touch racing a revocation loses.
func (s *Store) TouchSession(ctx context.Context, id string, t db.Touch) error {
	_, err := s.write.ExecContext(ctx, `UPDATE sessions SET last_seen_at = ?, idle_expires_at = ?, ip = ?,
		location = ?, location_short = ? WHERE id = ? AND revoked_at IS NULL`,
		t.LastSeenAt.Unix(), t.IdleExpiresAt.Unix(), t.IP, t.Location, t.LocationShort, id)
	if err != nil {
		return fmt.Errorf("db: touch session: %w", err)
	}
	return nil
}

// RevokeSession ends one live session of the user and returns it as it was
// ended. Another user's id, an unknown id or an already ended session give
// ErrNotFound and change nothing.
func (s *Store) RevokeSession(ctx context.Context, userID int64, id, reason, by string, now time.Time) (db.Session, error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return db.Session{}, fmt.Errorf("db: revoke session: %w", err)
	}
	defer tx.Rollback()
	ended, err := s.revokeIn(ctx, tx, `user_id = ? AND id = ?`, reason, by, now, userID, id)
	if err != nil {
		return db.Session{}, fmt.Errorf("db: revoke session: %w", err)
	}
	if len(ended) == 0 {
		return db.Session{}, db.ErrNotFound
	}
	if err := tx.Commit(); err != nil {
		return db.Session{}, fmt.Errorf("db: revoke session: %w", err)
	}
	s.notify(db.EndedEvents(ended))
	return ended[0], nil
}

// RevokeOtherSessions ends every live session of the user except keepID,
// resets the user's sign-ins (epoch) in the same transaction, and returns
// what it ended.
func (s *Store) RevokeOtherSessions(ctx context.Context, userID int64, keepID, reason string, now time.Time) ([]db.Session, error) {
	ended, err := s.resetSignIns(ctx, userID, `user_id = ? AND id <> ?`, reason, keepID, now, userID, keepID)
	if err != nil {
		return nil, fmt.Errorf("db: revoke other sessions: %w", err)
	}
	return ended, nil
}

// RevokeAllSessions ends every live session of the user, resets the user's
// sign-ins in the same transaction, and returns what it ended. by names the
// session that asked ("operator" for an operator).
func (s *Store) RevokeAllSessions(ctx context.Context, userID int64, reason, by string, now time.Time) ([]db.Session, error) {
	ended, err := s.resetSignIns(ctx, userID, `user_id = ?`, reason, by, now, userID)
	if err != nil {
		return nil, fmt.Errorf("db: revoke all sessions: %w", err)
	}
	return ended, nil
}

// resetSignIns adds one to the user's epoch and ends the live sessions
// matching where (with args), in one transaction; then reports them.
func (s *Store) resetSignIns(ctx context.Context, userID int64, where, reason, by string, now time.Time, args ...any) ([]db.Session, error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `UPDATE users SET epoch = epoch + 1 WHERE id = ?`, userID); err != nil {
		return nil, err
	}
	ended, err := s.revokeIn(ctx, tx, where, reason, by, now, args...)
	if err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	s.notify(db.EndedEvents(ended))
	return ended, nil
}

// ChangePassword replaces the user's password hash, resets their sign-ins,
// gives the session sessionID (theirs, and alive) the new secret hash and a
// re-authentication at now, and, if endOthers, ends every other session of
// theirs (ReasonPassword): all in one transaction. If sessionID is not a
// live session of the user's, nothing changes (ErrNotFound) and no mail is
// queued: mail goes in the same transaction.
func (s *Store) ChangePassword(ctx context.Context, userID int64, sessionID, passwordHash string, secretHash []byte, endOthers bool, now time.Time, mail ...db.Mail) ([]db.Session, error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("db: change password: %w", err)
	}
	defer tx.Rollback()
	e := db.SecurityEvent{UserID: userID, Kind: db.EventPasswordChanged, At: now, SessionID: sessionID}
	err = tx.QueryRowContext(ctx, `UPDATE sessions SET secret_hash = ?, reauth_at = ?
		WHERE user_id = ? AND id = ? AND `+aliveSQL+` RETURNING device_label, location, ip`,
		secretHash, now.Unix(), userID, sessionID, now.Unix(), now.Unix()).Scan(&e.Device, &e.Location, &e.IP)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, db.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("db: change password: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE users SET password_hash = ?, epoch = epoch + 1 WHERE id = ?`, passwordHash, userID); err != nil {
		return nil, fmt.Errorf("db: change password: %w", err)
	}
	if err := recordIn(ctx, tx, e); err != nil {
		return nil, fmt.Errorf("db: change password: %w", err)
	}
	var ended []db.Session
	if endOthers {
		if ended, err = s.revokeIn(ctx, tx, `user_id = ? AND id <> ?`, db.ReasonPassword, sessionID, now, userID, sessionID); err != nil {
			return nil, fmt.Errorf("db: change password: %w", err)
		}
	}
	if err := queueMailIn(ctx, tx, mail...); err != nil {
		return nil, failed("change password", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("db: change password: %w", err)
	}
	s.notify(db.EndedEvents(ended))
	return ended, nil
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

// DeleteSessionsByMethod removes the user's sessions that signed in with
// method; the demo seeder uses it to replace its sample sessions. Those alive
// at now are reported as ended.
func (s *Store) DeleteSessionsByMethod(ctx context.Context, userID int64, method string, now time.Time) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("db: delete sessions: %w", err)
	}
	defer tx.Rollback()
	deleted, err := scanSessions(tx.QueryContext(ctx, `DELETE FROM sessions WHERE user_id = ? AND auth_method = ?
		RETURNING `+sessionColumns, userID, method))
	if err != nil {
		return fmt.Errorf("db: delete sessions: %w", err)
	}
	ended := deletedAlive(deleted, now)
	if err := s.logEnded(ctx, tx, ended); err != nil {
		return fmt.Errorf("db: delete sessions: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("db: delete sessions: %w", err)
	}
	s.notify(db.EndedEvents(ended))
	return nil
}

// deletedAlive keeps the deleted sessions that were alive at now, marked as
// ended by deletion at now.
func deletedAlive(deleted []db.Session, now time.Time) []db.Session {
	out := deleted[:0]
	for _, d := range deleted {
		if d.Alive(now) {
			d.RevokedAt, d.RevokedReason = now, db.ReasonDeleted
			out = append(out, d)
		}
	}
	return out
}

// PruneSessions deletes rows of sessions that were revoked or expired before
// cutoff. Ended rows are kept for a while so a browser that comes back can be
// told it was signed out, rather than silently finding itself signed out;
// after that they are only clutter.
func (s *Store) PruneSessions(ctx context.Context, cutoff time.Time) (int64, error) {
	c := cutoff.Unix()
	res, err := s.write.ExecContext(ctx, `DELETE FROM sessions
		WHERE revoked_at < ? OR idle_expires_at < ? OR absolute_expires_at < ?`, c, c, c)
	if err != nil {
		return 0, fmt.Errorf("db: prune sessions: %w", err)
	}
	return res.RowsAffected()
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
