package sqlstore

import (
	"context"
	"fmt"
	"time"

	"doorman/db"
)

// RotateSession gives a live session a new secret (its hash) and records a
// re-authentication at now. The old cookie stops working at once.
func (s *Store) RotateSession(ctx context.Context, id string, secretHash []byte, now time.Time) error {
	n, err := s.d.Writes().Exec(ctx, `UPDATE sessions SET secret_hash = ?2, reauth_at = ?1 WHERE id = ?3 AND `+alive(1),
		now.Unix(), secretHash, id)
	if err != nil {
		return failed("rotate session", err)
	}
	if n == 0 {
		return db.ErrNotFound
	}
	return nil
}

// sessionWithUserSQL is the session check's one query: the session and
// the user columns it needs, joined.
var sessionWithUserSQL = `SELECT ` + sessionColumnsOf("s") + `, u.email, u.created_at, u.is_demo, u.disabled_at,
	u.email_verified_at, u.sign_in_alerts_off, u.epoch
	FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = ?`

// SessionWithUser returns the session with that public id, alive or not, and
// its user: the one query behind every request's session check (a hot
// read). The caller verifies the secret and decides what a dead session
// means.
func (s *Store) SessionWithUser(ctx context.Context, id string) (db.Session, db.User, error) {
	var u db.User
	var created int64
	var disabled, verified *int64
	sess, err := scanSession(s.d.Hot().QueryRow(ctx, sessionWithUserSQL, id), &u.Email, &created, &u.IsDemo, &disabled,
		&verified, &u.SignInAlertsOff, &u.Epoch)
	if err != nil {
		return db.Session{}, db.User{}, failed("session with user", notFound(err))
	}
	u.ID, u.CreatedAt = sess.UserID, time.Unix(created, 0)
	u.DisabledAt, u.EmailVerifiedAt = optionalTime(disabled), optionalTime(verified)
	return sess, u, nil
}

// UserSession returns one live session of the user, or db.ErrNotFound when
// the id is unknown, ended, or belongs to someone else.
func (s *Store) UserSession(ctx context.Context, userID int64, id string, now time.Time) (db.Session, error) {
	sess, err := scanSession(s.d.Reads().QueryRow(ctx, `SELECT `+sessionColumns+` FROM sessions
		WHERE user_id = ?2 AND id = ?3 AND `+alive(1), now.Unix(), userID, id))
	if err != nil {
		return db.Session{}, failed("user session", notFound(err))
	}
	return sess, nil
}

// listSessionsSQL reads user ?2's live sessions at ?1, every column, most
// recently active first.
var listSessionsSQL = `SELECT ` + sessionColumns + ` FROM sessions
	WHERE user_id = ?2 AND ` + alive(1) + ` ORDER BY last_seen_at DESC, created_at DESC`

// ListSessions returns the user's live sessions, every column, most recently
// active first (for operators; pages use ListSessionSummaries).
func (s *Store) ListSessions(ctx context.Context, userID int64, now time.Time) ([]db.Session, error) {
	out, err := scanSessions(s.d.Hot().Query(ctx, listSessionsSQL, now.Unix(), userID))
	if err != nil {
		return nil, fmt.Errorf("db: list sessions: %w", err)
	}
	return out, nil
}

// listSummariesSQL reads only the columns a list shows (?1 now, ?2 the
// user): on SQLite, with 10 sessions, it cost 28 µs instead of 67 µs for
// every column (BenchmarkListSessions).
var listSummariesSQL = `SELECT id, created_at, last_seen_at, device_label, device_kind, location, location_short, auth_method, ip, device_name,
	known_at, passkey_id FROM sessions WHERE user_id = ?2 AND ` + alive(1) + ` ORDER BY last_seen_at DESC, created_at DESC`

func scanSummary(row Row) (db.SessionSummary, error) {
	var ss db.SessionSummary
	var created, seen int64
	var known, passkey *int64
	if err := row.Scan(&ss.ID, &created, &seen, &ss.DeviceLabel, &ss.DeviceKind, &ss.Location, &ss.LocationShort, &ss.AuthMethod, &ss.IP, &ss.DeviceName, &known, &passkey); err != nil {
		return db.SessionSummary{}, err
	}
	if passkey != nil {
		ss.PasskeyID = *passkey
	}
	ss.CreatedAt, ss.LastSeenAt = time.Unix(created, 0), time.Unix(seen, 0)
	ss.KnownAt = optionalTime(known)
	return ss, nil
}

// scanSummaries reads the rows of listSummariesSQL (rows, err as the query
// gave them), closing them.
func scanSummaries(rows Rows, err error) ([]db.SessionSummary, error) {
	return scanAll(rows, err, scanSummary)
}

// ListSessionSummaries returns the user's live sessions with only the
// columns a list shows, most recently active first: the query behind every
// list page.
func (s *Store) ListSessionSummaries(ctx context.Context, userID int64, now time.Time) ([]db.SessionSummary, error) {
	out, err := scanSummaries(s.d.Hot().Query(ctx, listSummariesSQL, now.Unix(), userID))
	if err != nil {
		return nil, fmt.Errorf("db: list sessions: %w", err)
	}
	return out, nil
}

// TouchSession records activity on a live session. It never revives a
// revoked one: a touch racing a revocation loses (PostgreSQL: it waits for
// the revocation's row lock, then re-checks the WHERE). Nor an expired
// one: a request that began while its session was alive and ends after it
// expired (an event stream that ended because of the expiry) must not push
// the idle expiry forward again.
func (s *Store) TouchSession(ctx context.Context, id string, t db.Touch) error {
	_, err := s.d.Writes().Exec(ctx, `UPDATE sessions SET last_seen_at = ?1, idle_expires_at = ?2, ip = ?3,
		location = ?4, location_short = ?5 WHERE id = ?6 AND `+alive(1),
		t.LastSeenAt.Unix(), t.IdleExpiresAt.Unix(), t.IP, t.Location, t.LocationShort, id)
	return failed("touch session", err)
}

// RevokeSession ends one live session of the user and returns it as it was
// ended. Another user's id, an unknown id or an already ended session give
// db.ErrNotFound and change nothing. The user's row is locked first (KEY
// SHARE, see Lock order): the ending's history row takes that lock, and
// DeleteUser takes the user's row before their sessions.
func (s *Store) RevokeSession(ctx context.Context, userID int64, id, reason, by string, now time.Time) (db.Session, error) {
	var ended []db.Session
	err := s.d.Write(ctx, func(tx Q) error {
		if err := s.lockUserKey(ctx, tx, userID); err != nil {
			return err
		}
		var err error
		if ended, err = s.revokeIn(ctx, tx, `user_id = ?4 AND id = ?5`, reason, by, now, userID, id); err != nil {
			return err
		}
		if len(ended) == 0 {
			return db.ErrNotFound
		}
		return nil
	})
	if err != nil {
		return db.Session{}, failed("revoke session", err)
	}
	s.notify(db.EndedEvents(ended))
	return ended[0], nil
}

// RevokeOtherSessions ends every live session of the user except keepID,
// resets the user's sign-ins (epoch) in the same transaction, and returns
// what it ended.
func (s *Store) RevokeOtherSessions(ctx context.Context, userID int64, keepID, reason string, now time.Time) ([]db.Session, error) {
	ended, err := s.resetSignIns(ctx, userID, `user_id = ?4 AND id <> ?5`, reason, keepID, now, userID, keepID)
	return ended, failed("revoke other sessions", err)
}

// RevokeAllSessions ends every live session of the user, resets the user's
// sign-ins in the same transaction, and returns what it ended. by names the
// session that asked ("operator" for an operator).
func (s *Store) RevokeAllSessions(ctx context.Context, userID int64, reason, by string, now time.Time) ([]db.Session, error) {
	ended, err := s.resetSignIns(ctx, userID, `user_id = ?4`, reason, by, now, userID)
	return ended, failed("revoke all sessions", err)
}

// RevokeSessionsAndTokens ends every live session of the user but keepID
// ("" keeps none; recorded as ended by by), resets the user's sign-ins,
// and ends every live token and grant of theirs, owing each connected app
// a logout of every session, in one transaction: a failure anywhere leaves
// all of it alive, so an answer of "try again" is the whole truth. The
// epoch UPDATE takes the user's row lock first, then the sessions, then
// the tokens (see Lock order).
func (s *Store) RevokeSessionsAndTokens(ctx context.Context, userID int64, keepID, reason, by string, now time.Time) ([]db.Session, []db.Token, error) {
	var ended []db.Session
	var tokens []db.Token
	err := s.d.Write(ctx, func(tx Q) error {
		if _, err := tx.Exec(ctx, `UPDATE users SET epoch = epoch + 1 WHERE id = ?`, userID); err != nil {
			return err
		}
		var err error
		if ended, err = s.revokeIn(ctx, tx, `user_id = ?4 AND id <> ?5`, reason, by, now, userID, keepID); err != nil {
			return err
		}
		tokens, err = s.endAllTokensIn(ctx, tx, userID, reason, by, now)
		return err
	})
	if err != nil {
		return nil, nil, failed("revoke sessions and tokens", err)
	}
	s.notify(db.EndedEvents(ended))
	return ended, tokens, nil
}

// resetSignIns adds one to the user's epoch and ends the live sessions
// matching where (revokeIn's: its parameters from ?4, with args), in one
// transaction; then reports them. The UPDATE takes the user's row lock
// first (PostgreSQL), the one a sign-in's checkEpochIn takes too, so a
// sign-in that read the old epoch either commits first, and is ended here,
// or waits and is refused.
func (s *Store) resetSignIns(ctx context.Context, userID int64, where, reason, by string, now time.Time, args ...any) ([]db.Session, error) {
	var ended []db.Session
	err := s.d.Write(ctx, func(tx Q) error {
		if _, err := tx.Exec(ctx, `UPDATE users SET epoch = epoch + 1 WHERE id = ?`, userID); err != nil {
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

// ChangePassword replaces the user's password hash, resets their sign-ins,
// gives the session sessionID (theirs, and alive) the new secret hash and a
// re-authentication at now, if endOthers, ends every other session of
// theirs, and, if endTokens, every token and grant of theirs (both
// ReasonPassword, by sessionID): all in one transaction. If sessionID is
// not a live session of the user's, nothing changes (db.ErrNotFound) and
// no mail is queued: mail goes in the same transaction. The user's row is
// updated first, which takes its lock before their sessions' and tokens'
// (see Lock order).
func (s *Store) ChangePassword(ctx context.Context, userID int64, sessionID, passwordHash string, secretHash []byte, endOthers, endTokens bool, now time.Time, mail ...db.Mail) ([]db.Session, []db.Token, error) {
	var ended []db.Session
	var tokens []db.Token
	err := s.d.Write(ctx, func(tx Q) error {
		if _, err := tx.Exec(ctx, `UPDATE users SET password_hash = ?, epoch = epoch + 1 WHERE id = ?`, passwordHash, userID); err != nil {
			return err
		}
		e := db.SecurityEvent{UserID: userID, Kind: db.EventPasswordChanged, At: now, SessionID: sessionID}
		err := tx.QueryRow(ctx, `UPDATE sessions SET secret_hash = ?2, reauth_at = ?1 WHERE user_id = ?3 AND id = ?4 AND `+alive(1)+`
			RETURNING device_label, location, ip`, now.Unix(), secretHash, userID, sessionID).Scan(&e.Device, &e.Location, &e.IP)
		if err != nil {
			return notFound(err)
		}
		if err := s.recordIn(ctx, tx, e); err != nil {
			return err
		}
		if endOthers {
			if ended, err = s.revokeIn(ctx, tx, `user_id = ?4 AND id <> ?5`, db.ReasonPassword, sessionID, now, userID, sessionID); err != nil {
				return err
			}
		}
		if endTokens {
			if tokens, err = s.endAllTokensIn(ctx, tx, userID, db.ReasonPassword, sessionID, now); err != nil {
				return err
			}
		}
		return s.queueIn(ctx, tx, 0, mail)
	})
	if err != nil {
		return nil, nil, failed("change password", err)
	}
	s.notify(db.EndedEvents(ended))
	return ended, tokens, nil
}

// DeleteSessionsByMethod removes the user's sessions that signed in with
// method; the demo seeder uses it to replace its sample sessions. Those
// alive at now are reported as ended (announced to the other processes in
// the same transaction).
func (s *Store) DeleteSessionsByMethod(ctx context.Context, userID int64, method string, now time.Time) error {
	var ended []db.Session
	err := s.d.Write(ctx, func(tx Q) error {
		deleted, err := scanSessions(tx.Query(ctx, `DELETE FROM sessions WHERE user_id = ? AND auth_method = ?
			RETURNING `+sessionColumns, userID, method))
		if err != nil {
			return err
		}
		ended = deletedAlive(deleted, now)
		return s.d.Announce(ctx, tx, s.origin, db.EndedEvents(ended))
	})
	if err != nil {
		return failed("delete sessions", err)
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
	n, err := s.d.Writes().Exec(ctx, `DELETE FROM sessions
		WHERE revoked_at < ?1 OR idle_expires_at < ?1 OR absolute_expires_at < ?1`, cutoff.Unix())
	if err != nil {
		return 0, failed("prune sessions", err)
	}
	return n, nil
}
