package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"doorman/db"
)

// Lock order, for tokens, apps and device authorizations (PostgreSQL; see
// Lock order in sqlstore.go). A write here that locks rows of a user's
// takes the user's row first (FOR KEY SHARE, the lock a token's or a
// device authorization's foreign key check would take later): DeleteUser
// locks the user's row and then, by cascade, their tokens and device
// authorizations, so taking those first could deadlock with it.
// (RevokeTokens without it did deadlock under the conformance suite's
// ConcurrentTokenWritesDoNotDeadlock.) Statements that end several tokens
// lock them in id order (revokeTokensIn), so two of them (disabling a user
// while the operator removes an app) never wait for each other in a cycle.
// An app's row comes before its device authorizations, its tokens and the
// users whose they are: DeleteApp locks it FOR UPDATE before anything else
// (then the users whose tokens it ends, then those tokens);
// CreateDeviceAuthorization and RedeemDeviceAuthorization take it FOR KEY
// SHARE before anything else (the redemption then its user's row). So a
// redemption racing the app's removal either commits first, and its token
// is ended by the removal, or waits and finds nothing to redeem: no live
// token of a removed app remains.
//
// The security history (security_events) references users too, so every
// write that records an event holds the user's row lock before it locks
// other rows of the user's: RevokeToken, which touches one row, takes it
// (KEY SHARE) first.

const tokenColumns = `id, secret_hash, user_id, kind, name, client_id, scopes, created_at, expires_at,
	created_ip, created_location, last_used_at, last_used_ip, last_used_location,
	revoked_at, revoked_reason, revoked_by`

// tokenAlive is the one definition, in SQL, of a live token (what
// db.Token.Alive says: not revoked, and now strictly before its expiry) at
// the time in parameter ?1 (a statement using it numbers its placeholders).
const tokenAlive = `revoked_at IS NULL AND expires_at > ?1`

func scanToken(row Row, extra ...any) (db.Token, error) {
	var t db.Token
	var scopes string
	var created, expires, used int64
	var revokedAt *int64
	var reason, by *string
	dest := []any{&t.ID, &t.SecretHash, &t.UserID, &t.Kind, &t.Name, &t.ClientID, &scopes, &created, &expires,
		&t.CreatedIP, &t.CreatedLocation, &used, &t.LastUsedIP, &t.LastUsedLocation, &revokedAt, &reason, &by}
	if err := row.Scan(append(dest, extra...)...); err != nil {
		return db.Token{}, err
	}
	t.Scopes = splitScopes(scopes)
	t.CreatedAt, t.ExpiresAt, t.LastUsedAt = time.Unix(created, 0), time.Unix(expires, 0), fromUnix(used)
	t.RevokedAt = optionalTime(revokedAt)
	if reason != nil {
		t.RevokedReason = *reason
	}
	if by != nil {
		t.RevokedBy = *by
	}
	return t, nil
}

func scanTokenRow(row Row) (db.Token, error) { return scanToken(row) }

// scanTokens reads every row a query of tokenColumns returned (rows, err as
// the query gave them), closing them.
func scanTokens(rows Rows, err error) ([]db.Token, error) {
	return scanAll(rows, err, scanTokenRow)
}

// joinScopes is how scopes are stored: one space-separated string. A scope
// that is empty or holds white space could not be read back as it was, so
// it is refused rather than silently split or dropped.
func joinScopes(scopes []string) (string, error) {
	for _, sc := range scopes {
		if sc == "" || strings.ContainsFunc(sc, func(r rune) bool { return r == ' ' || r == '\t' || r == '\n' || r == '\r' }) {
			return "", fmt.Errorf("scope %q is empty or holds white space", sc)
		}
	}
	return strings.Join(scopes, " "), nil
}

// splitScopes reads stored scopes back, in the order stored; none is nil.
func splitScopes(s string) []string { return strings.Fields(s) }

const insertTokenSQL = `INSERT INTO tokens (` + tokenColumns + `)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// insertToken is the statement that inserts t (for an ExecBatch; an error
// if its scopes cannot be stored).
func insertToken(t db.Token) (Stmt, error) {
	scopes, err := joinScopes(t.Scopes)
	if err != nil {
		return Stmt{}, err
	}
	var revokedAt *int64
	var reason, by *string
	if t.Revoked() {
		at := t.RevokedAt.Unix()
		revokedAt, reason, by = &at, &t.RevokedReason, &t.RevokedBy
	}
	return Stmt{insertTokenSQL, []any{t.ID, t.SecretHash, t.UserID, t.Kind, t.Name, t.ClientID, scopes,
		t.CreatedAt.Unix(), t.ExpiresAt.Unix(), t.CreatedIP, t.CreatedLocation, toUnix(t.LastUsedAt), t.LastUsedIP,
		t.LastUsedLocation, revokedAt, reason, by}}, nil
}

// CreateToken inserts a token (the caller made the id and passes only the
// secret's hash) and, for a personal one, records its creation in the
// user's history in the same transaction (an app's token is recorded by
// RedeemDeviceAuthorization, which makes it), and queues mail there too;
// db.ErrNotFound if its user does not exist. The user's row is locked
// first (PostgreSQL: FOR UPDATE, by checkEpochIn), which orders this
// against every reset: if the epoch moved, or the user is disabled,
// nothing is written (db.ErrSignInsReset).
func (s *Store) CreateToken(ctx context.Context, t db.Token, epoch int64, mail ...db.Mail) error {
	insert, err := insertToken(t)
	if err != nil {
		return failed("create token", err)
	}
	err = s.d.Write(ctx, func(tx Q) error {
		if err := s.checkEpochIn(ctx, tx, t.UserID, epoch); err != nil {
			return err
		}
		stmts := []Stmt{insert}
		if t.Kind == db.TokenPersonal {
			stmts = append(stmts, Stmt{insertSecurityEventSQL, securityEventArgs(db.SecurityEvent{UserID: t.UserID,
				Kind: db.EventTokenCreated, At: t.CreatedAt, TokenID: t.ID, Detail: t.Name, IP: t.CreatedIP,
				Location: t.CreatedLocation})})
		}
		if err := s.d.ExecBatch(ctx, tx, stmts...); err != nil {
			return err
		}
		return s.queueIn(ctx, tx, 0, mail)
	})
	if s.d.IsForeignKeyViolation(err) {
		return db.ErrNotFound
	}
	return failed("create token", err)
}

// tokenWithUserSQL reads token ?1 and its user (the API check runs it: a
// hot read).
var tokenWithUserSQL = `SELECT t.` + strings.Join(strings.Fields(strings.ReplaceAll(tokenColumns, ",", " ")), ", t.") + `,
	u.email, u.password_hash, u.created_at, u.is_demo, u.disabled_at, u.epoch, u.email_verified_at, u.sign_in_alerts_off
	FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.id = ?`

// TokenWithUser returns the token with that public id, alive or not, and
// its user: the one read behind every API request. The caller verifies the
// secret and decides what a dead token (or a disabled user) means.
func (s *Store) TokenWithUser(ctx context.Context, id string) (db.Token, db.User, error) {
	var u db.User
	var created int64
	var disabled, verified *int64
	t, err := scanToken(s.d.Hot().QueryRow(ctx, tokenWithUserSQL, id), &u.Email, &u.PasswordHash, &created, &u.IsDemo,
		&disabled, &u.Epoch, &verified, &u.SignInAlertsOff)
	if err != nil {
		return db.Token{}, db.User{}, failed("token with user", notFound(err))
	}
	u.ID, u.CreatedAt = t.UserID, time.Unix(created, 0)
	u.DisabledAt, u.EmailVerifiedAt = optionalTime(disabled), optionalTime(verified)
	return t, u, nil
}

// listTokensSQL reads the live tokens (?1 now) of user ?2 of kind ?3 (""
// every kind), newest first (the Security page runs it: a hot read).
const listTokensSQL = `SELECT ` + tokenColumns + ` FROM tokens
	WHERE user_id = ?2 AND (?3 = '' OR kind = ?3) AND ` + tokenAlive + `
	ORDER BY created_at DESC, id DESC`

// ListTokens returns the user's live tokens of kind ("" any kind), newest
// first.
func (s *Store) ListTokens(ctx context.Context, userID int64, kind string, now time.Time) ([]db.Token, error) {
	out, err := scanTokens(s.d.Hot().Query(ctx, listTokensSQL, now.Unix(), userID, kind))
	if err != nil {
		return nil, fmt.Errorf("db: list tokens: %w", err)
	}
	return out, nil
}

// TouchToken records a use of a token that is not revoked. It never revives
// a revoked one: a use racing a revocation loses (PostgreSQL: it waits for
// the revocation's row lock, then re-checks the WHERE and changes nothing).
func (s *Store) TouchToken(ctx context.Context, id string, at time.Time, ip, location string) error {
	_, err := s.d.Writes().Exec(ctx, `UPDATE tokens SET last_used_at = ?, last_used_ip = ?, last_used_location = ?
		WHERE id = ? AND revoked_at IS NULL`, at.Unix(), ip, location, id)
	return failed("touch token", err)
}

// revokeTokensIn ends, in tx, the live tokens matching where (whose
// parameters are numbered from ?4: ?1 is now, ?2 the reason, ?3 who),
// records each ending in its user's history, and returns them: every token
// revocation goes through here. It locks them in id order first
// (PostgreSQL); the caller holds their users' row locks already (see Lock
// order).
func (s *Store) revokeTokensIn(ctx context.Context, tx Q, where, reason, by string, now time.Time, args ...any) ([]db.Token, error) {
	all := append([]any{now.Unix(), reason, by}, args...)
	ended, err := scanTokens(tx.Query(ctx, `UPDATE tokens SET revoked_at = ?1, revoked_reason = ?2, revoked_by = ?3
		WHERE id IN (SELECT id FROM tokens WHERE `+where+` AND `+tokenAlive+` ORDER BY id`+s.forUpdate("UPDATE")+`)
			AND `+tokenAlive+`
		RETURNING `+tokenColumns, all...))
	if err != nil {
		return nil, err
	}
	return ended, s.recordIn(ctx, tx, tokenRevokedEvents(ended)...)
}

// revokeUserTokens ends the live tokens of the user matching where (as in
// revokeTokensIn, the user's id is ?4) in a transaction of its own, which
// takes the user's row lock first (see Lock order). No such user is not an
// error: then there are no tokens either.
func (s *Store) revokeUserTokens(ctx context.Context, userID int64, where, reason, by string, now time.Time, args ...any) ([]db.Token, error) {
	var ended []db.Token
	err := s.d.Write(ctx, func(tx Q) error {
		if err := s.lockUserKey(ctx, tx, userID); errors.Is(err, db.ErrNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		var err error
		ended, err = s.revokeTokensIn(ctx, tx, where, reason, by, now, append([]any{userID}, args...)...)
		return err
	})
	return ended, err
}

// RevokeToken ends one live token of the user and returns it as ended.
// Another user's id, an unknown id or an ended token give db.ErrNotFound
// and change nothing: the ownership check is in the UPDATE's WHERE.
func (s *Store) RevokeToken(ctx context.Context, userID int64, id, reason, by string, now time.Time) (db.Token, error) {
	ended, err := s.revokeUserTokens(ctx, userID, `user_id = ?4 AND id = ?5`, reason, by, now, id)
	if err != nil {
		return db.Token{}, failed("revoke token", err)
	}
	if len(ended) == 0 {
		return db.Token{}, db.ErrNotFound
	}
	return ended[0], nil
}

// RevokeTokens ends every live token of the user of kind ("" every kind),
// in one transaction, and returns them. Ending every token or every
// app's token (kind db.TokenApp) ends every OpenID Connect grant of theirs
// too, offline ones included, and owes each app they are connected to a
// logout of all their sessions, in the same transaction (endUserGrantsIn).
// ("Sign out everywhere" and a password change end the tokens in the
// transaction that ends the sessions: RevokeSessionsAndTokens,
// ChangePassword.)
func (s *Store) RevokeTokens(ctx context.Context, userID int64, kind, reason, by string, now time.Time) ([]db.Token, error) {
	var ended []db.Token
	err := s.d.Write(ctx, func(tx Q) error {
		if err := s.lockUserKey(ctx, tx, userID); errors.Is(err, db.ErrNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		var err error
		if ended, err = s.revokeTokensIn(ctx, tx, `user_id = ?4 AND (?5 = '' OR kind = ?5)`, reason, by, now, userID, kind); err != nil {
			return err
		}
		if kind == "" || kind == db.TokenApp {
			return s.endUserGrantsIn(ctx, tx, userID, userID, reason, now)
		}
		return nil
	})
	if err != nil {
		return nil, failed("revoke tokens", err)
	}
	return ended, nil
}

// endAllTokensIn ends, in tx, every live token of the user's and every
// OpenID Connect grant of theirs, offline ones included, owing each app
// they are connected to a logout of all their sessions (endUserGrantsIn),
// and returns the tokens. The caller holds the user's row lock.
func (s *Store) endAllTokensIn(ctx context.Context, tx Q, userID int64, reason, by string, now time.Time) ([]db.Token, error) {
	ended, err := s.revokeTokensIn(ctx, tx, `user_id = ?4`, reason, by, now, userID)
	if err != nil {
		return nil, err
	}
	return ended, s.endUserGrantsIn(ctx, tx, userID, userID, reason, now)
}

// RevokeAppTokens ends every live token the user gave the app clientID and
// returns them (none is not an error). Only app tokens: a personal token's
// client_id is empty, and disconnecting an app must never end those.
func (s *Store) RevokeAppTokens(ctx context.Context, userID int64, clientID, reason, by string, now time.Time) ([]db.Token, error) {
	ended, err := s.revokeUserTokens(ctx, userID, `user_id = ?4 AND kind = ?5 AND client_id = ?6`, reason, by, now,
		db.TokenApp, clientID)
	if err != nil {
		return nil, failed("revoke app tokens", err)
	}
	return ended, nil
}
