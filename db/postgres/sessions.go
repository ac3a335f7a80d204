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

// listSummariesSQL reads the columns a list shows ($1 now, $2 the user):
// ListSessionSummaries's query (now in db/sqlstore), kept here for
// SecurityOverview's batch until it moves too.
const listSummariesSQL = `SELECT id, created_at, last_seen_at, device_label, device_kind, location, location_short, auth_method
	FROM sessions WHERE user_id = $2 AND ` + alive + ` ORDER BY last_seen_at DESC, created_at DESC`

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
