package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Why a session ended, stored in sessions.revoked_reason.
const (
	ReasonSignedOut     = "signed_out"     // the user signed out on that device
	ReasonRevoked       = "revoked"        // ended from another session's list (the X button)
	ReasonRevokedOthers = "revoked_others" // "Log out all other sessions" from another session
	ReasonRevokedAll    = "revoked_all"    // "Log out everywhere"
	ReasonPassword      = "password_changed"
	ReasonSessionLimit  = "session_limit" // the user's least recently active session, ended to make room
	ReasonOperator      = "operator"      // `doorman sessions revoke`
	ReasonDisabled      = "user_disabled" // `doorman users disable`
)

// Session is one signed-in browser.
type Session struct {
	ID                string // public id
	SecretHash        []byte // SHA-256 of the cookie secret
	UserID            int64
	CreatedAt         time.Time
	LastSeenAt        time.Time
	IdleExpiresAt     time.Time
	AbsoluteExpiresAt time.Time
	IP                string
	UserAgent         string
	DeviceLabel       string
	DeviceKind        string
	Location          string
	LocationShort     string
	AuthMethod        string
	ReauthAt          time.Time // when the password was last entered in this session
	RevokedAt         time.Time // zero while not revoked
	RevokedReason     string
	RevokedBy         string
}

// ExpiresAt is when the session ends if nothing else happens: the earlier of
// its idle and absolute expiry.
func (s Session) ExpiresAt() time.Time {
	if s.IdleExpiresAt.Before(s.AbsoluteExpiresAt) {
		return s.IdleExpiresAt
	}
	return s.AbsoluteExpiresAt
}

// Revoked reports whether the session was ended on purpose.
func (s Session) Revoked() bool { return !s.RevokedAt.IsZero() }

// Alive reports whether the session may be used at now.
func (s Session) Alive(now time.Time) bool {
	return !s.Revoked() && now.Before(s.ExpiresAt())
}

const sessionColumns = `id, secret_hash, user_id, created_at, last_seen_at, idle_expires_at,
	absolute_expires_at, ip, user_agent, device_label, device_kind, location, location_short,
	auth_method, reauth_at, revoked_at, revoked_reason, revoked_by`

// aliveSQL is the one definition, in SQL, of a live session. It takes now twice.
const aliveSQL = `revoked_at IS NULL AND idle_expires_at > ? AND absolute_expires_at > ?`

// sessionColumnsOf is sessionColumns qualified by a table alias, for joins.
func sessionColumnsOf(alias string) string {
	return alias + "." + strings.ReplaceAll(strings.Join(strings.Fields(sessionColumns), " "), ", ", ", "+alias+".")
}

func scanSession(row interface{ Scan(...any) error }, extra ...any) (Session, error) {
	var s Session
	var created, seen, idle, abs, reauth int64
	var revokedAt sql.NullInt64
	var reason, by sql.NullString
	dest := []any{&s.ID, &s.SecretHash, &s.UserID, &created, &seen, &idle, &abs, &s.IP, &s.UserAgent,
		&s.DeviceLabel, &s.DeviceKind, &s.Location, &s.LocationShort, &s.AuthMethod, &reauth, &revokedAt, &reason, &by}
	if err := row.Scan(append(dest, extra...)...); err != nil {
		return Session{}, err
	}
	s.CreatedAt, s.LastSeenAt = time.Unix(created, 0), time.Unix(seen, 0)
	s.IdleExpiresAt, s.AbsoluteExpiresAt = time.Unix(idle, 0), time.Unix(abs, 0)
	s.ReauthAt = time.Unix(reauth, 0)
	if revokedAt.Valid {
		s.RevokedAt = time.Unix(revokedAt.Int64, 0)
	}
	s.RevokedReason, s.RevokedBy = reason.String, by.String
	return s, nil
}

// CreateSession inserts a new session row. The caller generates the public id
// and the secret, and passes only the secret's hash.
//
// A user has at most maxPerUser live sessions (0: no limit). When the new one
// would exceed it, the least recently active ones are ended (reason
// ReasonSessionLimit) in the same transaction and returned, so the caller can
// say so: the limit is never a silent surprise.
func (s *Store) CreateSession(ctx context.Context, sess Session, maxPerUser int) (evicted []Session, err error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("db: create session: %w", err)
	}
	defer tx.Rollback()
	now := sess.CreatedAt.Unix()
	if maxPerUser > 0 {
		var live int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM sessions WHERE user_id = ? AND `+aliveSQL,
			sess.UserID, now, now).Scan(&live); err != nil {
			return nil, fmt.Errorf("db: create session: count: %w", err)
		}
		if excess := live - maxPerUser + 1; excess > 0 {
			rows, err := tx.QueryContext(ctx, `UPDATE sessions SET revoked_at = ?, revoked_reason = ?, revoked_by = ?
				WHERE id IN (SELECT id FROM sessions WHERE user_id = ? AND `+aliveSQL+`
					ORDER BY last_seen_at, created_at LIMIT ?)
				RETURNING `+sessionColumns,
				now, ReasonSessionLimit, sess.ID, sess.UserID, now, now, excess)
			if err != nil {
				return nil, fmt.Errorf("db: create session: evict: %w", err)
			}
			for rows.Next() {
				old, err := scanSession(rows)
				if err != nil {
					rows.Close()
					return nil, fmt.Errorf("db: create session: evict: %w", err)
				}
				evicted = append(evicted, old)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return nil, fmt.Errorf("db: create session: evict: %w", err)
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
		return nil, fmt.Errorf("db: create session: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("db: create session: %w", err)
	}
	return evicted, nil
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
		return ErrNotFound
	}
	return nil
}

var sessionWithUserSQL = `SELECT ` + sessionColumnsOf("s") + `, u.email, u.created_at, u.is_demo, u.disabled_at
	FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = ?`

// SessionWithUser returns the session with that public id, alive or not, and
// its user: the one query behind every request's session check. The caller
// verifies the secret and decides what a dead session means.
func (s *Store) SessionWithUser(ctx context.Context, id string) (Session, User, error) {
	row := s.sessionWithUser.QueryRowContext(ctx, id)
	var u User
	var created int64
	var disabled sql.NullInt64
	sess, err := scanSession(row, &u.Email, &created, &u.IsDemo, &disabled)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, User{}, ErrNotFound
	}
	if err != nil {
		return Session{}, User{}, fmt.Errorf("db: session with user: %w", err)
	}
	u.ID, u.CreatedAt = sess.UserID, time.Unix(created, 0)
	if disabled.Valid {
		u.DisabledAt = time.Unix(disabled.Int64, 0)
	}
	return sess, u, nil
}

// UserSession returns one live session of the user, or ErrNotFound when the id
// is unknown, ended, or belongs to someone else.
func (s *Store) UserSession(ctx context.Context, userID int64, id string, now time.Time) (Session, error) {
	row := s.read.QueryRowContext(ctx, `SELECT `+sessionColumns+` FROM sessions
		WHERE user_id = ? AND id = ? AND `+aliveSQL, userID, id, now.Unix(), now.Unix())
	sess, err := scanSession(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, ErrNotFound
	}
	if err != nil {
		return Session{}, fmt.Errorf("db: user session: %w", err)
	}
	return sess, nil
}

// ListSessions returns the user's live sessions, every column, most recently
// active first (for operators; pages use ListSessionSummaries).
func (s *Store) ListSessions(ctx context.Context, userID int64, now time.Time) ([]Session, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+sessionColumns+` FROM sessions
		WHERE user_id = ? AND `+aliveSQL+` ORDER BY last_seen_at DESC, created_at DESC`, userID, now.Unix(), now.Unix())
	if err != nil {
		return nil, fmt.Errorf("db: list sessions: %w", err)
	}
	defer rows.Close()
	var out []Session
	for rows.Next() {
		sess, err := scanSession(rows)
		if err != nil {
			return nil, fmt.Errorf("db: list sessions: %w", err)
		}
		out = append(out, sess)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("db: list sessions: %w", err)
	}
	return out, nil
}

// SessionSummary is what a list of sessions shows: no secret hash, address
// or user agent.
type SessionSummary struct {
	ID            string
	CreatedAt     time.Time
	LastSeenAt    time.Time
	DeviceLabel   string
	DeviceKind    string
	Location      string
	LocationShort string
}

// Summary is the session as a list shows it.
func (s Session) Summary() SessionSummary {
	return SessionSummary{ID: s.ID, CreatedAt: s.CreatedAt, LastSeenAt: s.LastSeenAt, DeviceLabel: s.DeviceLabel,
		DeviceKind: s.DeviceKind, Location: s.Location, LocationShort: s.LocationShort}
}

// listSessionsSQL reads only the columns a list shows: with 10 sessions it
// costs 28 µs instead of 67 µs for every column (BenchmarkListSessions).
const listSessionsSQL = `SELECT id, created_at, last_seen_at, device_label, device_kind, location, location_short
	FROM sessions WHERE user_id = ? AND ` + aliveSQL + ` ORDER BY last_seen_at DESC, created_at DESC`

// ListSessionSummaries returns the user's live sessions, most recently
// active first: the query behind every list page.
func (s *Store) ListSessionSummaries(ctx context.Context, userID int64, now time.Time) ([]SessionSummary, error) {
	rows, err := s.listSessions.QueryContext(ctx, userID, now.Unix(), now.Unix())
	if err != nil {
		return nil, fmt.Errorf("db: list sessions: %w", err)
	}
	defer rows.Close()
	var out []SessionSummary
	for rows.Next() {
		var ss SessionSummary
		var created, seen int64
		if err := rows.Scan(&ss.ID, &created, &seen, &ss.DeviceLabel, &ss.DeviceKind, &ss.Location, &ss.LocationShort); err != nil {
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

// Touch is what a request changes on its session row.
type Touch struct {
	LastSeenAt    time.Time
	IdleExpiresAt time.Time
	IP            string
	Location      string
	LocationShort string
}

// TouchSession records activity on a live session. It never revives a revoked
// one: a touch racing a revocation loses.
func (s *Store) TouchSession(ctx context.Context, id string, t Touch) error {
	_, err := s.write.ExecContext(ctx, `UPDATE sessions SET last_seen_at = ?, idle_expires_at = ?, ip = ?,
		location = ?, location_short = ? WHERE id = ? AND revoked_at IS NULL`,
		t.LastSeenAt.Unix(), t.IdleExpiresAt.Unix(), t.IP, t.Location, t.LocationShort, id)
	if err != nil {
		return fmt.Errorf("db: touch session: %w", err)
	}
	return nil
}

// RevokeSession ends one live session of the user and returns it as it was.
// Another user's id, an unknown id or an already ended session give
// ErrNotFound and change nothing.
func (s *Store) RevokeSession(ctx context.Context, userID int64, id, reason, by string, now time.Time) (Session, error) {
	row := s.write.QueryRowContext(ctx, `UPDATE sessions SET revoked_at = ?, revoked_reason = ?, revoked_by = ?
		WHERE user_id = ? AND id = ? AND `+aliveSQL+` RETURNING `+sessionColumns,
		now.Unix(), reason, by, userID, id, now.Unix(), now.Unix())
	sess, err := scanSession(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, ErrNotFound
	}
	if err != nil {
		return Session{}, fmt.Errorf("db: revoke session: %w", err)
	}
	return sess, nil
}

// RevokeOtherSessions ends every live session of the user except keepID and
// returns how many it ended.
func (s *Store) RevokeOtherSessions(ctx context.Context, userID int64, keepID, reason string, now time.Time) (int64, error) {
	res, err := s.write.ExecContext(ctx, `UPDATE sessions SET revoked_at = ?, revoked_reason = ?, revoked_by = ?
		WHERE user_id = ? AND id <> ? AND `+aliveSQL,
		now.Unix(), reason, keepID, userID, keepID, now.Unix(), now.Unix())
	if err != nil {
		return 0, fmt.Errorf("db: revoke other sessions: %w", err)
	}
	return res.RowsAffected()
}

// RevokeAllSessions ends every live session of the user and returns how many
// it ended. by names the session that asked (empty for an operator).
func (s *Store) RevokeAllSessions(ctx context.Context, userID int64, reason, by string, now time.Time) (int64, error) {
	res, err := s.write.ExecContext(ctx, `UPDATE sessions SET revoked_at = ?, revoked_reason = ?, revoked_by = ?
		WHERE user_id = ? AND `+aliveSQL,
		now.Unix(), reason, by, userID, now.Unix(), now.Unix())
	if err != nil {
		return 0, fmt.Errorf("db: revoke all sessions: %w", err)
	}
	return res.RowsAffected()
}

// DeleteSessionsByMethod removes the user's sessions that signed in with
// method; the demo seeder uses it to replace its sample sessions.
func (s *Store) DeleteSessionsByMethod(ctx context.Context, userID int64, method string) error {
	if _, err := s.write.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = ? AND auth_method = ?`, userID, method); err != nil {
		return fmt.Errorf("db: delete sessions: %w", err)
	}
	return nil
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
