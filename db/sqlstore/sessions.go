package sqlstore

import (
	"context"
	"strconv"
	"strings"
	"time"

	"doorman/db"
)

const sessionColumns = `id, secret_hash, user_id, created_at, last_seen_at, idle_expires_at,
	absolute_expires_at, ip, user_agent, device_label, device_kind, location, location_short,
	auth_method, reauth_at, revoked_at, revoked_reason, revoked_by, refused_count, last_refused_at, device_name, passkey_id`

// alive is the one definition, in SQL, of a live session at the time in
// parameter ?n (a statement using it numbers its placeholders).
func alive(n int) string {
	p := "?" + strconv.Itoa(n)
	return `revoked_at IS NULL AND idle_expires_at > ` + p + ` AND absolute_expires_at > ` + p
}

// sessionColumnsOf is sessionColumns qualified by a table alias, for joins.
func sessionColumnsOf(alias string) string {
	return alias + "." + strings.ReplaceAll(strings.Join(strings.Fields(sessionColumns), " "), ", ", ", "+alias+".")
}

func scanSession(row Row, extra ...any) (db.Session, error) {
	var s db.Session
	var created, seen, idle, abs, reauth, refused int64
	var revokedAt, passkey *int64
	var reason, by *string
	dest := []any{&s.ID, &s.SecretHash, &s.UserID, &created, &seen, &idle, &abs, &s.IP, &s.UserAgent,
		&s.DeviceLabel, &s.DeviceKind, &s.Location, &s.LocationShort, &s.AuthMethod, &reauth, &revokedAt, &reason, &by,
		&s.RefusedCount, &refused, &s.DeviceName, &passkey}
	if err := row.Scan(append(dest, extra...)...); err != nil {
		return db.Session{}, err
	}
	s.CreatedAt, s.LastSeenAt = time.Unix(created, 0), time.Unix(seen, 0)
	s.IdleExpiresAt, s.AbsoluteExpiresAt = time.Unix(idle, 0), time.Unix(abs, 0)
	s.ReauthAt, s.LastRefusedAt = time.Unix(reauth, 0), fromUnix(refused)
	s.RevokedAt = optionalTime(revokedAt)
	if reason != nil {
		s.RevokedReason = *reason
	}
	if by != nil {
		s.RevokedBy = *by
	}
	if passkey != nil {
		s.PasskeyID = *passkey
	}
	return s, nil
}

func scanSessionRow(row Row) (db.Session, error) { return scanSession(row) }

// scanSessions reads every row a query of sessionColumns returned (rows,
// err as the query gave them), closing them.
func scanSessions(rows Rows, err error) ([]db.Session, error) {
	return scanAll(rows, err, scanSessionRow)
}

const insertSessionSQL = `INSERT INTO sessions (id, secret_hash, user_id, created_at, last_seen_at,
	idle_expires_at, absolute_expires_at, ip, user_agent, device_label, device_kind, location, location_short, auth_method, reauth_at, passkey_id)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// rememberPlaceSQL records a sign-in place of a user's (user, device,
// network, seen at): a place seen again moves its time forward, never back.
const rememberPlaceSQL = `INSERT INTO sign_in_places (user_id, device, network, last_seen_at) VALUES (?, ?, ?, ?)
	ON CONFLICT (user_id, device, network) DO UPDATE SET last_seen_at = excluded.last_seen_at
	WHERE excluded.last_seen_at > sign_in_places.last_seen_at`

// insertSession is the two statements that insert sess and record its
// sign-in place (its device label and db.Network of its address, seen at
// its creation): every session made goes in with both, a bulk one too. A
// zero ReauthAt is its creation.
func insertSession(sess db.Session) [2]Stmt {
	now, reauth := sess.CreatedAt.Unix(), sess.ReauthAt
	if reauth.IsZero() {
		reauth = sess.CreatedAt
	}
	return [2]Stmt{
		{insertSessionSQL, []any{sess.ID, sess.SecretHash, sess.UserID, now, sess.LastSeenAt.Unix(),
			sess.IdleExpiresAt.Unix(), sess.AbsoluteExpiresAt.Unix(), sess.IP, sess.UserAgent,
			sess.DeviceLabel, sess.DeviceKind, sess.Location, sess.LocationShort, sess.AuthMethod, reauth.Unix(), passkeyOf(sess)}},
		{rememberPlaceSQL, []any{sess.UserID, sess.DeviceLabel, db.Network(sess.IP), now}},
	}
}

// passkeyOf is the passkey_id column of sess: NULL unless a passkey
// opened it.
func passkeyOf(sess db.Session) any {
	if sess.PasskeyID == 0 {
		return nil
	}
	return sess.PasskeyID
}

// revokeIn ends, in tx, the live sessions matching where (whose parameters
// are numbered from ?4: ?1 is now, ?2 the reason, ?3 who), announces them
// to the other processes and records them in their users' security history
// in the same transaction, and returns them: every revocation goes through
// here, so each ending is recorded once, by the write that made it. The
// revocation rule reaches the apps here too: the sessions' grants that are
// not offline end, and every app they signed in to is owed a back-channel
// logout naming them (endSessionGrantsIn). The caller holds the user's row
// lock already (see Lock order) and reports the endings after commit
// (notify).
func (s *Store) revokeIn(ctx context.Context, tx Q, where, reason, by string, now time.Time, args ...any) ([]db.Session, error) {
	all := append([]any{now.Unix(), reason, by}, args...)
	ended, err := scanSessions(tx.Query(ctx, `UPDATE sessions SET revoked_at = ?1, revoked_reason = ?2, revoked_by = ?3
		WHERE `+where+` AND `+alive(1)+` RETURNING `+sessionColumns, all...))
	if err != nil {
		return nil, err
	}
	if err := s.d.Announce(ctx, tx, s.origin, db.EndedEvents(ended)); err != nil {
		return nil, err
	}
	if err := s.recordIn(ctx, tx, sessionEndedEvents(ended)...); err != nil {
		return nil, err
	}
	return ended, s.endSessionGrantsIn(ctx, tx, ended, now)
}

// createSessionIn is CreateSession's work inside tx (every write that
// creates a session shares it: a password sign-in, a pending two-factor
// sign-in completed, a sign-in link, an account recovery): the user's row
// lock and the epoch and disabled check (db.ErrSignInsReset, or
// db.ErrNotFound for no such user, both unwrapped), the eviction past
// maxPerUser, the insert with its sign-in place, their security events
// (each eviction, the sign-in), the announcement and the mail. The caller
// commits, then calls notifyCreated.
func (s *Store) createSessionIn(ctx context.Context, tx Q, sess db.Session, maxPerUser int, epoch int64, mail []db.Mail) ([]db.Session, error) {
	var evicted []db.Session
	now := sess.CreatedAt.Unix()
	if err := s.checkEpochIn(ctx, tx, sess.UserID, epoch); err != nil {
		return nil, err
	}
	if maxPerUser > 0 {
		var live int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM sessions WHERE user_id = ?2 AND `+alive(1), now, sess.UserID).Scan(&live); err != nil {
			return nil, err
		}
		if excess := live - maxPerUser + 1; excess > 0 {
			var err error
			evicted, err = s.revokeIn(ctx, tx, `id IN (SELECT id FROM sessions WHERE user_id = ?4 AND `+alive(1)+`
				ORDER BY last_seen_at, created_at LIMIT ?5)`, db.ReasonSessionLimit, sess.ID, sess.CreatedAt, sess.UserID, excess)
			if err != nil {
				return nil, err
			}
		}
	}
	// The place is remembered by the write that signs in, so the next
	// sign-in's alert check sees exactly the sign-ins that committed.
	insert := insertSession(sess)
	if err := s.d.ExecBatch(ctx, tx, insert[0], insert[1],
		Stmt{insertSecurityEventSQL, securityEventArgs(signInEvent(sess))},
	); err != nil {
		return nil, err
	}
	// The other processes hear of the start too (after the evictions, as
	// notifyCreated reports them here): their open tabs of the user
	// refresh the list.
	if err := s.d.Announce(ctx, tx, s.origin, []db.Event{startedEvent(sess)}); err != nil {
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

// CreateSession inserts a new session row. The user's row is locked first
// (PostgreSQL: FOR UPDATE), which orders this sign-in against every reset
// of the user's sign-ins: if the epoch moved, or the user is disabled,
// nothing is written (db.ErrSignInsReset). Past maxPerUser, the least
// recently active sessions are ended in the same transaction. Its sign-in
// place is recorded and mail queued in the same transaction too, so a
// refused sign-in sends nothing.
func (s *Store) CreateSession(ctx context.Context, sess db.Session, maxPerUser int, epoch int64, mail ...db.Mail) ([]db.Session, error) {
	var evicted []db.Session
	err := s.d.Write(ctx, func(tx Q) error {
		var err error
		evicted, err = s.createSessionIn(ctx, tx, sess, maxPerUser, epoch, mail)
		return err
	})
	if err != nil {
		return nil, failed("create session", err)
	}
	s.notifyCreated(sess, evicted)
	return evicted, nil
}
