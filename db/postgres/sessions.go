package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"doorman/db"
)

const sessionColumns = `id, secret_hash, user_id, created_at, last_seen_at, idle_expires_at,
	absolute_expires_at, ip, user_agent, device_label, device_kind, location, location_short,
	auth_method, reauth_at, revoked_at, revoked_reason, revoked_by, refused_count, last_refused_at`

// alive is the one definition, in SQL, of a live session at the time in
// parameter $1.
const alive = `revoked_at IS NULL AND idle_expires_at > $1 AND absolute_expires_at > $1`

func scanSession(row pgx.Row, extra ...any) (db.Session, error) {
	var s db.Session
	var created, seen, idle, abs, reauth, refused int64
	var revokedAt *int64
	var reason, by *string
	dest := []any{&s.ID, &s.SecretHash, &s.UserID, &created, &seen, &idle, &abs, &s.IP, &s.UserAgent,
		&s.DeviceLabel, &s.DeviceKind, &s.Location, &s.LocationShort, &s.AuthMethod, &reauth, &revokedAt, &reason, &by,
		&s.RefusedCount, &refused}
	if err := row.Scan(append(dest, extra...)...); err != nil {
		return db.Session{}, err
	}
	s.CreatedAt, s.LastSeenAt = time.Unix(created, 0), time.Unix(seen, 0)
	s.IdleExpiresAt, s.AbsoluteExpiresAt = time.Unix(idle, 0), time.Unix(abs, 0)
	s.ReauthAt, s.LastRefusedAt = time.Unix(reauth, 0), fromUnix(refused)
	if revokedAt != nil {
		s.RevokedAt = time.Unix(*revokedAt, 0)
	}
	if reason != nil {
		s.RevokedReason = *reason
	}
	if by != nil {
		s.RevokedBy = *by
	}
	return s, nil
}

// scanSessions reads every row a query returned (rows, err as the query
// gave them), closing them.
func scanSessions(rows pgx.Rows, err error) ([]db.Session, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []db.Session
	for rows.Next() {
		s, err := scanSession(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// insertSessionSQL inserts a session row and, in the same statement,
// records its sign-in place (its device label and db.Network of its
// address, seen at its creation): every session created records it.
const insertSessionSQL = `WITH s AS (INSERT INTO sessions (id, secret_hash, user_id, created_at, last_seen_at,
	idle_expires_at, absolute_expires_at, ip, user_agent, device_label, device_kind, location, location_short, auth_method, reauth_at)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING user_id, device_label, created_at)
	INSERT INTO sign_in_places (user_id, device, network, last_seen_at) SELECT user_id, device_label, $16, created_at FROM s
	` + placeConflictSQL

// placeConflictSQL is the ON CONFLICT of an upsert into sign_in_places: a
// place seen again moves its time forward, never back.
const placeConflictSQL = `ON CONFLICT (user_id, device, network)
	DO UPDATE SET last_seen_at = GREATEST(sign_in_places.last_seen_at, excluded.last_seen_at)`

func sessionArgs(s db.Session, reauth time.Time) []any {
	return []any{s.ID, s.SecretHash, s.UserID, s.CreatedAt.Unix(), s.LastSeenAt.Unix(),
		s.IdleExpiresAt.Unix(), s.AbsoluteExpiresAt.Unix(), s.IP, s.UserAgent,
		s.DeviceLabel, s.DeviceKind, s.Location, s.LocationShort, s.AuthMethod, reauth.Unix(), db.Network(s.IP)}
}

// revokeIn ends, in tx, the live sessions matching where (whose parameters
// start at $4: $1 is now, $2 the reason, $3 who), sends their NOTIFY and
// records them in their users' security history in the same transaction,
// and returns them: every revocation goes through here, so each ending is
// recorded once, by the write that made it. The caller must hold the
// user's row lock already (see Lock order in tokens.go): the history's
// foreign key check takes it.
func (s *Store) revokeIn(ctx context.Context, tx pgx.Tx, where, reason, by string, now time.Time, args ...any) ([]db.Session, error) {
	all := append([]any{now.Unix(), reason, by}, args...)
	ended, err := scanSessions(tx.Query(ctx, `UPDATE sessions SET revoked_at = $1, revoked_reason = $2, revoked_by = $3
		WHERE `+where+` AND `+alive+` RETURNING `+sessionColumns, all...))
	if err != nil {
		return nil, err
	}
	if err := s.notifyIn(ctx, tx, db.EndedEvents(ended)); err != nil {
		return nil, err
	}
	return ended, recordIn(ctx, tx, sessionEndedEvents(ended)...)
}

// checkEpochIn is the check every write that mints a credential makes inside
// its transaction (a session, a token, a redeemed device approval): it locks
// the user's row (FOR UPDATE, which orders it against every reset: each
// moves the epoch first), and the user must exist (else db.ErrNotFound), not
// be disabled, and still have epoch, the one the request read (else
// db.ErrSignInsReset).
func checkEpochIn(ctx context.Context, tx pgx.Tx, userID, epoch int64) error {
	var current int64
	var disabled *int64
	err := tx.QueryRow(ctx, `SELECT epoch, disabled_at FROM users WHERE id = $1 FOR UPDATE`, userID).Scan(&current, &disabled)
	if errors.Is(err, pgx.ErrNoRows) {
		return db.ErrNotFound
	}
	if err != nil {
		return err
	}
	if current != epoch || disabled != nil {
		return db.ErrSignInsReset
	}
	return nil
}

// createSessionIn is CreateSession's work inside tx (every write that
// creates a session shares it: CompletePendingSignIn, SignInWithLink,
// RecoverAccount): the user's row lock and the epoch and disabled check
// (ErrSignInsReset, or ErrNotFound for no such user), the eviction past
// maxPerUser, the insert with its sign-in place, their security events
// (each eviction, the sign-in) and the mail. The caller commits, then
// calls notifyCreated.
func (s *Store) createSessionIn(ctx context.Context, tx pgx.Tx, sess db.Session, maxPerUser int, epoch int64, mail []db.Mail) ([]db.Session, error) {
	var evicted []db.Session
	now := sess.CreatedAt.Unix()
	if err := checkEpochIn(ctx, tx, sess.UserID, epoch); err != nil {
		return nil, err
	}
	if maxPerUser > 0 {
		var live int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM sessions WHERE user_id = $2 AND `+alive, now, sess.UserID).Scan(&live); err != nil {
			return nil, err
		}
		if excess := live - maxPerUser + 1; excess > 0 {
			var err error
			evicted, err = s.revokeIn(ctx, tx, `id IN (SELECT id FROM sessions WHERE user_id = $4 AND `+alive+`
				ORDER BY last_seen_at, created_at LIMIT $5)`, db.ReasonSessionLimit, sess.ID, sess.CreatedAt, sess.UserID, excess)
			if err != nil {
				return nil, err
			}
		}
	}
	reauth := sess.ReauthAt
	if reauth.IsZero() {
		reauth = sess.CreatedAt
	}
	if _, err := tx.Exec(ctx, insertSessionSQL, sessionArgs(sess, reauth)...); err != nil {
		return nil, err
	}
	if err := recordIn(ctx, tx, signInEvent(sess)); err != nil {
		return nil, err
	}
	// The other instances hear of the start too (after the evictions'
	// NOTIFY, as notifyCreated reports them here): their open tabs of the
	// user refresh the list.
	if err := s.notifyIn(ctx, tx, []db.Event{startedEvent(sess)}); err != nil {
		return nil, err
	}
	return evicted, s.queueIn(ctx, tx, 0, mail)
}

// notifyCreated reports, after commit, what creating sess did: the
// sessions it evicted, then its start.
func (s *Store) notifyCreated(sess db.Session, evicted []db.Session) {
	s.notify(append(db.EndedEvents(evicted), startedEvent(sess)))
}

// startedEvent is the SessionStarted event of a new session.
func startedEvent(sess db.Session) db.Event {
	return db.Event{Kind: db.SessionStarted, UserID: sess.UserID, SessionID: sess.ID, At: sess.CreatedAt}
}

// RotateSession gives a live session a new secret hash and records a
// re-authentication at now.
func (s *Store) RotateSession(ctx context.Context, id string, secretHash []byte, now time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE sessions SET secret_hash = $2, reauth_at = $1 WHERE id = $3 AND `+alive,
		now.Unix(), secretHash, id)
	if err != nil {
		return fmt.Errorf("db: rotate session: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return db.ErrNotFound
	}
	return nil
}

var sessionWithUserSQL = `SELECT s.id, s.secret_hash, s.user_id, s.created_at, s.last_seen_at, s.idle_expires_at,
	s.absolute_expires_at, s.ip, s.user_agent, s.device_label, s.device_kind, s.location, s.location_short,
	s.auth_method, s.reauth_at, s.revoked_at, s.revoked_reason, s.revoked_by, s.refused_count, s.last_refused_at,
	u.email, u.created_at, u.is_demo, u.disabled_at, u.email_verified_at, u.sign_in_alerts_off, u.epoch
	FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1`

// SessionWithUser returns the session with that public id, alive or not,
// and its user: the one query behind every request's session check.
func (s *Store) SessionWithUser(ctx context.Context, id string) (db.Session, db.User, error) {
	var u db.User
	var created int64
	var disabled, verified *int64
	sess, err := scanSession(s.pool.QueryRow(ctx, sessionWithUserSQL, id), &u.Email, &created, &u.IsDemo, &disabled,
		&verified, &u.SignInAlertsOff, &u.Epoch)
	if errors.Is(err, pgx.ErrNoRows) {
		return db.Session{}, db.User{}, db.ErrNotFound
	}
	if err != nil {
		return db.Session{}, db.User{}, fmt.Errorf("db: session with user: %w", err)
	}
	u.ID, u.CreatedAt = sess.UserID, time.Unix(created, 0)
	u.DisabledAt, u.EmailVerifiedAt = optionalTime(disabled), optionalTime(verified)
	return sess, u, nil
}

// UserSession returns one live session of the user, or ErrNotFound.
func (s *Store) UserSession(ctx context.Context, userID int64, id string, now time.Time) (db.Session, error) {
	sess, err := scanSession(s.pool.QueryRow(ctx, `SELECT `+sessionColumns+` FROM sessions
		WHERE user_id = $2 AND id = $3 AND `+alive, now.Unix(), userID, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return db.Session{}, db.ErrNotFound
	}
	if err != nil {
		return db.Session{}, fmt.Errorf("db: user session: %w", err)
	}
	return sess, nil
}

// ListSessions returns the user's live sessions, every column, most
// recently active first.
func (s *Store) ListSessions(ctx context.Context, userID int64, now time.Time) ([]db.Session, error) {
	out, err := scanSessions(s.pool.Query(ctx, `SELECT `+sessionColumns+` FROM sessions
		WHERE user_id = $2 AND `+alive+` ORDER BY last_seen_at DESC, created_at DESC`, now.Unix(), userID))
	if err != nil {
		return nil, fmt.Errorf("db: list sessions: %w", err)
	}
	return out, nil
}

// listSummariesSQL reads the columns a list shows ($1 now, $2 the user).
const listSummariesSQL = `SELECT id, created_at, last_seen_at, device_label, device_kind, location, location_short, auth_method
	FROM sessions WHERE user_id = $2 AND ` + alive + ` ORDER BY last_seen_at DESC, created_at DESC`

// ListSessionSummaries returns the user's live sessions with only the
// columns a list shows, most recently active first.
func (s *Store) ListSessionSummaries(ctx context.Context, userID int64, now time.Time) ([]db.SessionSummary, error) {
	out, err := scanSummaries(s.pool.Query(ctx, listSummariesSQL, now.Unix(), userID))
	if err != nil {
		return nil, fmt.Errorf("db: list sessions: %w", err)
	}
	return out, nil
}

// scanSummaries reads the rows of listSummariesSQL (rows, err as the query
// gave them), closing them.
func scanSummaries(rows pgx.Rows, err error) ([]db.SessionSummary, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []db.SessionSummary
	for rows.Next() {
		var ss db.SessionSummary
		var created, seen int64
		if err := rows.Scan(&ss.ID, &created, &seen, &ss.DeviceLabel, &ss.DeviceKind, &ss.Location, &ss.LocationShort, &ss.AuthMethod); err != nil {
			return nil, err
		}
		ss.CreatedAt, ss.LastSeenAt = time.Unix(created, 0), time.Unix(seen, 0)
		out = append(out, ss)
	}
	return out, rows.Err()
}

// SecurityOverview reads the Security page's four lists in one round trip:
// a pgx batch sends the four queries together and reads their results in
// order (each is the query of its own method).
func (s *Store) SecurityOverview(ctx context.Context, userID int64, now, historySince time.Time, historyLimit int) (db.Overview, error) {
	var o db.Overview
	b := &pgx.Batch{}
	b.Queue(listSummariesSQL, now.Unix(), userID)
	b.Queue(twoFactorSQL, userID)
	b.Queue(listTokensSQL, now.Unix(), userID, "")
	b.Queue(listSecurityEventsSQL, userID, 0, historySince.Unix(), max(historyLimit, 0))
	b.Queue(pendingChangesSQL, userID, now.Unix())
	b.Queue(pendingApprovalsSQL, userID, db.DeviceApproved, now.Unix())
	br := s.pool.SendBatch(ctx, b)
	defer br.Close()
	var err error
	if o.Sessions, err = scanSummaries(br.Query()); err != nil {
		return o, fmt.Errorf("db: security overview: %w", err)
	}
	o.TwoFactor, err = scanTwoFactor(br.QueryRow())
	switch {
	case err == nil:
		o.HasTwoFactor = true
	case !errors.Is(err, db.ErrNotFound):
		return o, fmt.Errorf("db: security overview: %w", err)
	}
	if o.Tokens, err = scanTokens(br.Query()); err != nil {
		return o, fmt.Errorf("db: security overview: %w", err)
	}
	if o.Events, err = scanSecurityEvents(br.Query()); err != nil {
		return o, fmt.Errorf("db: security overview: %w", err)
	}
	if o.EmailChanges, err = scanLinks(br.Query()); err != nil {
		return o, fmt.Errorf("db: security overview: %w", err)
	}
	if o.Approvals, err = scanDevices(br.Query()); err != nil {
		return o, fmt.Errorf("db: security overview: %w", err)
	}
	if err := br.Close(); err != nil {
		return o, fmt.Errorf("db: security overview: %w", err)
	}
	return o, nil
}

// TouchSession records activity on a session that is not revoked; a touch
// racing a revocation loses.
func (s *Store) TouchSession(ctx context.Context, id string, t db.Touch) error {
	if _, err := s.pool.Exec(ctx, `UPDATE sessions SET last_seen_at = $1, idle_expires_at = $2, ip = $3,
		location = $4, location_short = $5 WHERE id = $6 AND revoked_at IS NULL`,
		t.LastSeenAt.Unix(), t.IdleExpiresAt.Unix(), t.IP, t.Location, t.LocationShort, id); err != nil {
		return fmt.Errorf("db: touch session: %w", err)
	}
	return nil
}

// RevokeSession ends one live session of the user and returns it. The
// user's row is locked first (KEY SHARE, see Lock order in tokens.go): the
// ending's history row takes that lock, and DeleteUser takes the user's
// row before their sessions.
func (s *Store) RevokeSession(ctx context.Context, userID int64, id, reason, by string, now time.Time) (db.Session, error) {
	var ended []db.Session
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := lockUserKey(ctx, tx, userID); err != nil {
			return err
		}
		var err error
		ended, err = s.revokeIn(ctx, tx, `user_id = $4 AND id = $5`, reason, by, now, userID, id)
		return err
	})
	if errors.Is(err, db.ErrNotFound) {
		return db.Session{}, err
	}
	if err != nil {
		return db.Session{}, fmt.Errorf("db: revoke session: %w", err)
	}
	if len(ended) == 0 {
		return db.Session{}, db.ErrNotFound
	}
	s.notify(db.EndedEvents(ended))
	return ended[0], nil
}

// RevokeOtherSessions ends every live session of the user except keepID and
// resets the user's sign-ins, in one transaction.
func (s *Store) RevokeOtherSessions(ctx context.Context, userID int64, keepID, reason string, now time.Time) ([]db.Session, error) {
	ended, err := s.resetSignIns(ctx, userID, `user_id = $4 AND id <> $5`, reason, keepID, now, userID, keepID)
	if err != nil {
		return nil, fmt.Errorf("db: revoke other sessions: %w", err)
	}
	return ended, nil
}

// RevokeAllSessions ends every live session of the user and resets the
// user's sign-ins, in one transaction.
func (s *Store) RevokeAllSessions(ctx context.Context, userID int64, reason, by string, now time.Time) ([]db.Session, error) {
	ended, err := s.resetSignIns(ctx, userID, `user_id = $4`, reason, by, now, userID)
	if err != nil {
		return nil, fmt.Errorf("db: revoke all sessions: %w", err)
	}
	return ended, nil
}

// resetSignIns moves the user's epoch (taking the user's row lock, which a
// sign-in's CreateSession also takes) and ends the matching sessions.
func (s *Store) resetSignIns(ctx context.Context, userID int64, where, reason, by string, now time.Time, args ...any) ([]db.Session, error) {
	var ended []db.Session
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE users SET epoch = epoch + 1 WHERE id = $1`, userID); err != nil {
			return err
		}
		var err error
		ended, err = s.revokeIn(ctx, tx, where, reason, by, now, args...)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.notify(db.EndedEvents(ended))
	return ended, nil
}

// ChangePassword sets the hash, resets the user's sign-ins, rotates the
// live session sessionID and, if endOthers, ends the others: one
// transaction. ErrNotFound (nothing changed) if sessionID is not a live
// session of the user's. mail is queued in the same transaction.
func (s *Store) ChangePassword(ctx context.Context, userID int64, sessionID, passwordHash string, secretHash []byte, endOthers bool, now time.Time, mail ...db.Mail) ([]db.Session, error) {
	var ended []db.Session
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE users SET password_hash = $1, epoch = epoch + 1 WHERE id = $2`, passwordHash, userID); err != nil {
			return err
		}
		e := db.SecurityEvent{UserID: userID, Kind: db.EventPasswordChanged, At: now, SessionID: sessionID}
		err := tx.QueryRow(ctx, `UPDATE sessions SET secret_hash = $2, reauth_at = $1 WHERE user_id = $3 AND id = $4 AND `+alive+`
			RETURNING device_label, location, ip`, now.Unix(), secretHash, userID, sessionID).Scan(&e.Device, &e.Location, &e.IP)
		if errors.Is(err, pgx.ErrNoRows) {
			return db.ErrNotFound
		}
		if err != nil {
			return err
		}
		if err := recordIn(ctx, tx, e); err != nil {
			return err
		}
		if endOthers {
			if ended, err = s.revokeIn(ctx, tx, `user_id = $4 AND id <> $5`, db.ReasonPassword, sessionID, now, userID, sessionID); err != nil {
				return err
			}
		}
		return s.queueIn(ctx, tx, 0, mail)
	})
	if errors.Is(err, db.ErrNotFound) || errors.Is(err, db.ErrConflict) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("db: change password: %w", err)
	}
	s.notify(db.EndedEvents(ended))
	return ended, nil
}

// DeleteSessionsByMethod removes the user's sessions that signed in with
// method (the demo seeder); those alive at now are reported as ended.
func (s *Store) DeleteSessionsByMethod(ctx context.Context, userID int64, method string, now time.Time) error {
	var ended []db.Session
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		deleted, err := scanSessions(tx.Query(ctx, `DELETE FROM sessions WHERE user_id = $1 AND auth_method = $2 RETURNING `+sessionColumns, userID, method))
		if err != nil {
			return err
		}
		ended = deletedAlive(deleted, now)
		return s.notifyIn(ctx, tx, db.EndedEvents(ended))
	})
	if err != nil {
		return fmt.Errorf("db: delete sessions: %w", err)
	}
	s.notify(db.EndedEvents(ended))
	return nil
}

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

// PruneSessions deletes rows of sessions revoked or expired before cutoff.
func (s *Store) PruneSessions(ctx context.Context, cutoff time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE revoked_at < $1 OR idle_expires_at < $1 OR absolute_expires_at < $1`, cutoff.Unix())
	if err != nil {
		return 0, fmt.Errorf("db: prune sessions: %w", err)
	}
	return tag.RowsAffected(), nil
}
