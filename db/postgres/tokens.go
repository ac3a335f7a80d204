package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"doorman/db"
)

// Lock order. A transaction here that locks rows belonging to a user takes
// the user's row first (FOR KEY SHARE, the lock a token's or a device
// authorization's foreign key check would take later), like the two-factor
// code: DeleteUser locks the user's row and then, by cascade, their tokens
// and device authorizations, so taking those first could deadlock with it.
// (RevokeTokens without it did deadlock under the conformance suite's
// ConcurrentTokenWritesDoNotDeadlock.) Statements that end several tokens
// lock them in id order (revokeTokensIn), so two of them (disabling a user
// while the operator removes an app) never wait for each other in a cycle.
// An app's row comes before its device authorizations and tokens:
// DeleteApp locks it FOR UPDATE before anything else (then the users whose
// tokens it ends, then those tokens), and CreateDeviceAuthorization and
// RedeemDeviceAuthorization take it FOR KEY SHARE (after the user's) before
// touching theirs. So a redemption racing the app's removal either commits
// first, and its token is ended by the removal, or waits and finds nothing
// to redeem: no live token of a removed app remains.
//
// The security history (security_events) references users too, so every
// write that records an event holds the user's row lock before it locks
// other rows of the user's: RevokeToken and RevokeSession, which touched
// one row and needed no user lock before, now take it (KEY SHARE) first.

const tokenColumns = `id, secret_hash, user_id, kind, name, client_id, scopes, created_at, expires_at,
	created_ip, created_location, last_used_at, last_used_ip, last_used_location,
	revoked_at, revoked_reason, revoked_by`

// tokenAlive is the one definition, in SQL, of a live token (what
// db.Token.Alive says) at the time in parameter $1.
const tokenAlive = `revoked_at IS NULL AND expires_at > $1`

func scanToken(row pgx.Row, extra ...any) (db.Token, error) {
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
	if revokedAt != nil {
		t.RevokedAt = time.Unix(*revokedAt, 0)
	}
	if reason != nil {
		t.RevokedReason = *reason
	}
	if by != nil {
		t.RevokedBy = *by
	}
	return t, nil
}

// scanTokens reads every row a query returned (rows, err as the query gave
// them), closing them.
func scanTokens(rows pgx.Rows, err error) ([]db.Token, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []db.Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
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

// toUnix stores an optional time: the zero time (never) as 0.
func toUnix(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

// fromUnix reads an optional time back: 0 is the zero time.
func fromUnix(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(n, 0)
}

// insertToken inserts t in tx (unwrapped errors).
func insertToken(ctx context.Context, tx pgx.Tx, t db.Token) error {
	scopes, err := joinScopes(t.Scopes)
	if err != nil {
		return err
	}
	var revokedAt *int64
	var reason, by *string
	if t.Revoked() {
		at := t.RevokedAt.Unix()
		revokedAt, reason, by = &at, &t.RevokedReason, &t.RevokedBy
	}
	_, err = tx.Exec(ctx, `INSERT INTO tokens (`+tokenColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
		t.ID, t.SecretHash, t.UserID, t.Kind, t.Name, t.ClientID, scopes, t.CreatedAt.Unix(), t.ExpiresAt.Unix(),
		t.CreatedIP, t.CreatedLocation, toUnix(t.LastUsedAt), t.LastUsedIP, t.LastUsedLocation, revokedAt, reason, by)
	return err
}

// CreateToken inserts a token (the caller made the id and passes only the
// secret's hash) and, for a personal one, records its creation in the
// user's history in the same transaction (an app's token is recorded by
// RedeemDeviceAuthorization, which makes it); ErrNotFound if its user does
// not exist. The insert's foreign key check takes the user's row lock
// before anything else (see Lock order).
func (s *Store) CreateToken(ctx context.Context, t db.Token, epoch int64, mail ...db.Mail) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := checkEpochIn(ctx, tx, t.UserID, epoch); err != nil {
			return err
		}
		if err := insertToken(ctx, tx, t); err != nil {
			return err
		}
		if t.Kind == db.TokenPersonal {
			if err := recordIn(ctx, tx, db.SecurityEvent{UserID: t.UserID, Kind: db.EventTokenCreated, At: t.CreatedAt,
				TokenID: t.ID, Detail: t.Name, IP: t.CreatedIP, Location: t.CreatedLocation}); err != nil {
				return err
			}
		}
		return s.queueIn(ctx, tx, 0, mail)
	})
	if isForeignKeyViolation(err) || errors.Is(err, db.ErrNotFound) {
		return db.ErrNotFound
	}
	if errors.Is(err, db.ErrSignInsReset) {
		return err
	}
	if err != nil {
		return fmt.Errorf("db: create token: %w", err)
	}
	return nil
}

var tokenWithUserSQL = `SELECT t.` + strings.Join(strings.Fields(strings.ReplaceAll(tokenColumns, ",", " ")), ", t.") + `,
	u.email, u.password_hash, u.created_at, u.is_demo, u.disabled_at, u.epoch, u.email_verified_at, u.sign_in_alerts_off
	FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.id = $1`

// TokenWithUser returns the token with that public id, alive or not, and
// its user: the one read behind every API request. The caller verifies the
// secret and decides what a dead token (or a disabled user) means.
func (s *Store) TokenWithUser(ctx context.Context, id string) (db.Token, db.User, error) {
	var u db.User
	var created int64
	var disabled, verified *int64
	t, err := scanToken(s.pool.QueryRow(ctx, tokenWithUserSQL, id), &u.Email, &u.PasswordHash, &created, &u.IsDemo, &disabled, &u.Epoch,
		&verified, &u.SignInAlertsOff)
	if errors.Is(err, pgx.ErrNoRows) {
		return db.Token{}, db.User{}, db.ErrNotFound
	}
	if err != nil {
		return db.Token{}, db.User{}, fmt.Errorf("db: token with user: %w", err)
	}
	u.ID, u.CreatedAt = t.UserID, time.Unix(created, 0)
	u.DisabledAt, u.EmailVerifiedAt = optionalTime(disabled), optionalTime(verified)
	return t, u, nil
}

// ListTokens returns the user's live tokens of kind ("" any kind), newest
// first.
func (s *Store) ListTokens(ctx context.Context, userID int64, kind string, now time.Time) ([]db.Token, error) {
	out, err := scanTokens(s.pool.Query(ctx, listTokensSQL, now.Unix(), userID, kind))
	if err != nil {
		return nil, fmt.Errorf("db: list tokens: %w", err)
	}
	return out, nil
}

// listTokensSQL reads the live tokens ($1 now) of user $2 of kind $3 (""
// every kind), newest first.
const listTokensSQL = `SELECT ` + tokenColumns + ` FROM tokens
	WHERE user_id = $2 AND ($3 = '' OR kind = $3) AND ` + tokenAlive + `
	ORDER BY created_at DESC, id DESC`

// TouchToken records a use of a token that is not revoked. It never revives
// a revoked one: a use racing a revocation waits for its row lock, then
// re-checks the WHERE and changes nothing.
func (s *Store) TouchToken(ctx context.Context, id string, at time.Time, ip, location string) error {
	if _, err := s.pool.Exec(ctx, `UPDATE tokens SET last_used_at = $1, last_used_ip = $2, last_used_location = $3
		WHERE id = $4 AND revoked_at IS NULL`, at.Unix(), ip, location, id); err != nil {
		return fmt.Errorf("db: touch token: %w", err)
	}
	return nil
}

// revokeTokensIn ends, in tx, the live tokens matching where (whose
// parameters start at $4: $1 is now, $2 the reason, $3 who), records each
// ending in its user's history, and returns them: every token revocation
// goes through here. It locks them in id order first; the caller holds
// their users' row locks already (see Lock order).
func revokeTokensIn(ctx context.Context, tx pgx.Tx, where, reason, by string, now time.Time, args ...any) ([]db.Token, error) {
	all := append([]any{now.Unix(), reason, by}, args...)
	ended, err := scanTokens(tx.Query(ctx, `UPDATE tokens SET revoked_at = $1, revoked_reason = $2, revoked_by = $3
		WHERE id IN (SELECT id FROM tokens WHERE `+where+` AND `+tokenAlive+` ORDER BY id FOR UPDATE) AND `+tokenAlive+`
		RETURNING `+tokenColumns, all...))
	if err != nil {
		return nil, err
	}
	return ended, recordIn(ctx, tx, tokenRevokedEvents(ended)...)
}

// lockUserTokens takes the user's row lock before their tokens (see Lock
// order). No such user is not an error: then there are no tokens either.
func lockUserTokens(ctx context.Context, tx pgx.Tx, userID int64) error {
	_, err := tx.Exec(ctx, `SELECT 1 FROM users WHERE id = $1 FOR KEY SHARE`, userID)
	return err
}

// RevokeToken ends one live token of the user and returns it as ended.
// Another user's id, an unknown id or an ended token give ErrNotFound and
// change nothing: the ownership check is in the UPDATE's WHERE. The user's
// row is locked first, as the ending's history row needs it (see Lock
// order).
func (s *Store) RevokeToken(ctx context.Context, userID int64, id, reason, by string, now time.Time) (db.Token, error) {
	var ended []db.Token
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := lockUserKey(ctx, tx, userID); err != nil {
			return err
		}
		var err error
		ended, err = revokeTokensIn(ctx, tx, `user_id = $4 AND id = $5`, reason, by, now, userID, id)
		return err
	})
	if errors.Is(err, db.ErrNotFound) {
		return db.Token{}, err
	}
	if err != nil {
		return db.Token{}, fmt.Errorf("db: revoke token: %w", err)
	}
	if len(ended) == 0 {
		return db.Token{}, db.ErrNotFound
	}
	return ended[0], nil
}

// RevokeTokens ends every live token of the user of kind ("" every kind)
// and returns them.
func (s *Store) RevokeTokens(ctx context.Context, userID int64, kind, reason, by string, now time.Time) ([]db.Token, error) {
	var ended []db.Token
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := lockUserTokens(ctx, tx, userID); err != nil {
			return err
		}
		var err error
		ended, err = revokeTokensIn(ctx, tx, `user_id = $4 AND ($5 = '' OR kind = $5)`, reason, by, now, userID, kind)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("db: revoke tokens: %w", err)
	}
	return ended, nil
}

// RevokeAppTokens ends every live token the user gave the app clientID and
// returns them (none is not an error). Only app tokens: a personal token's
// client_id is empty, and disconnecting an app must never end those.
func (s *Store) RevokeAppTokens(ctx context.Context, userID int64, clientID, reason, by string, now time.Time) ([]db.Token, error) {
	var ended []db.Token
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := lockUserTokens(ctx, tx, userID); err != nil {
			return err
		}
		var err error
		ended, err = revokeTokensIn(ctx, tx, `user_id = $4 AND kind = $5 AND client_id = $6`, reason, by, now, userID, db.TokenApp, clientID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("db: revoke app tokens: %w", err)
	}
	return ended, nil
}

// CreateApp registers an app; ErrConflict if the client_id is taken.
func (s *Store) CreateApp(ctx context.Context, a db.App) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO apps (client_id, name, created_at) VALUES ($1, $2, $3)`,
		a.ClientID, a.Name, a.CreatedAt.Unix())
	if isUniqueViolation(err) {
		return db.ErrConflict
	}
	if err != nil {
		return fmt.Errorf("db: create app: %w", err)
	}
	return nil
}

func scanApp(row pgx.Row) (db.App, error) {
	var a db.App
	var created int64
	if err := row.Scan(&a.ClientID, &a.Name, &created); err != nil {
		return db.App{}, err
	}
	a.CreatedAt = time.Unix(created, 0)
	return a, nil
}

// App returns the app with that client_id, or ErrNotFound.
func (s *Store) App(ctx context.Context, clientID string) (db.App, error) {
	a, err := scanApp(s.pool.QueryRow(ctx, `SELECT client_id, name, created_at FROM apps WHERE client_id = $1`, clientID))
	if errors.Is(err, pgx.ErrNoRows) {
		return db.App{}, db.ErrNotFound
	}
	if err != nil {
		return db.App{}, fmt.Errorf("db: app: %w", err)
	}
	return a, nil
}

// Apps returns every registered app, oldest first.
func (s *Store) Apps(ctx context.Context) ([]db.App, error) {
	rows, err := s.pool.Query(ctx, `SELECT client_id, name, created_at FROM apps ORDER BY created_at, client_id`)
	if err != nil {
		return nil, fmt.Errorf("db: apps: %w", err)
	}
	defer rows.Close()
	var out []db.App
	for rows.Next() {
		a, err := scanApp(rows)
		if err != nil {
			return nil, fmt.Errorf("db: apps: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("db: apps: %w", err)
	}
	return out, nil
}

// DeleteApp removes the app and, in the same transaction, ends every live
// token of it (ReasonAppRemoved, by "operator"; the rows stay, as history)
// and, by the foreign key's cascade, deletes its device authorizations, so
// no pending one can be approved or redeemed later. It returns the tokens
// ended; ErrNotFound (nothing changes) if unknown.
//
// Locks (see Lock order): the app's row FOR UPDATE first, which holds back
// every new device authorization and redemption of the app until this
// commits; then the rows of the users whose tokens it ends, in id order,
// before those tokens.
func (s *Store) DeleteApp(ctx context.Context, clientID string, now time.Time) ([]db.Token, error) {
	var ended []db.Token
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM apps WHERE client_id = $1 FOR UPDATE`, clientID).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return db.ErrNotFound
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `SELECT 1 FROM users WHERE id IN (
			SELECT user_id FROM tokens WHERE kind = $2 AND client_id = $3 AND `+tokenAlive+`)
			ORDER BY id FOR KEY SHARE`, now.Unix(), db.TokenApp, clientID); err != nil {
			return err
		}
		if ended, err = revokeTokensIn(ctx, tx, `kind = $4 AND client_id = $5`, db.ReasonAppRemoved, "operator", now, db.TokenApp, clientID); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM apps WHERE client_id = $1`, clientID)
		return err
	})
	if errors.Is(err, db.ErrNotFound) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("db: delete app: %w", err)
	}
	return ended, nil
}

const deviceColumns = `device_code_hash, user_code, client_id, scopes, created_at, expires_at, interval_seconds,
	last_polled_at, ip, location, status, user_id, decided_at, epoch`

func scanDevice(row pgx.Row) (db.DeviceAuthorization, error) {
	var d db.DeviceAuthorization
	var scopes string
	var created, expires, polled int64
	var userID, decided *int64
	if err := row.Scan(&d.DeviceCodeHash, &d.UserCode, &d.ClientID, &scopes, &created, &expires, &d.Interval,
		&polled, &d.IP, &d.Location, &d.Status, &userID, &decided, &d.Epoch); err != nil {
		return db.DeviceAuthorization{}, err
	}
	d.Scopes = splitScopes(scopes)
	d.CreatedAt, d.ExpiresAt, d.LastPolledAt = time.Unix(created, 0), time.Unix(expires, 0), fromUnix(polled)
	if userID != nil {
		d.UserID = *userID
	}
	if decided != nil {
		d.DecidedAt = time.Unix(*decided, 0)
	}
	return d, nil
}

// CreateDeviceAuthorization stores a new request (pending unless d.Status
// says otherwise). User codes are unique among all rows; in the same
// transaction it first deletes a request holding the same code that has
// expired at d.CreatedAt, so only an unexpired holder makes the insert fail
// (ErrConflict: the caller draws another code; of two requests drawing the
// same code at once, the second waits on the first's index entry and then
// fails). ErrNotFound if the app does not exist.
func (s *Store) CreateDeviceAuthorization(ctx context.Context, d db.DeviceAuthorization) error {
	scopes, err := joinScopes(d.Scopes)
	if err != nil {
		return fmt.Errorf("db: create device authorization: %w", err)
	}
	status := d.Status
	if status == "" {
		status = db.DevicePending
	}
	var userID, decided *int64
	if d.UserID != 0 {
		userID = &d.UserID
	}
	if !d.DecidedAt.IsZero() {
		at := d.DecidedAt.Unix()
		decided = &at
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// The app's row before any request's (see Lock order).
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM apps WHERE client_id = $1 FOR KEY SHARE`, d.ClientID).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return db.ErrNotFound
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM device_authorizations WHERE user_code = $1 AND expires_at <= $2`,
			d.UserCode, d.CreatedAt.Unix()); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO device_authorizations (`+deviceColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
			d.DeviceCodeHash, d.UserCode, d.ClientID, scopes, d.CreatedAt.Unix(), d.ExpiresAt.Unix(), d.Interval,
			toUnix(d.LastPolledAt), d.IP, d.Location, status, userID, decided, d.Epoch)
		return err
	})
	if isUniqueViolation(err) {
		return db.ErrConflict
	}
	if errors.Is(err, db.ErrNotFound) {
		return err
	}
	if isForeignKeyViolation(err) {
		return db.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("db: create device authorization: %w", err)
	}
	return nil
}

// DeviceAuthorizationByUserCode returns the request with that (normalised)
// user code, expired or not, or ErrNotFound.
func (s *Store) DeviceAuthorizationByUserCode(ctx context.Context, userCode string) (db.DeviceAuthorization, error) {
	d, err := scanDevice(s.pool.QueryRow(ctx, `SELECT `+deviceColumns+` FROM device_authorizations WHERE user_code = $1`, userCode))
	if errors.Is(err, pgx.ErrNoRows) {
		return db.DeviceAuthorization{}, db.ErrNotFound
	}
	if err != nil {
		return db.DeviceAuthorization{}, fmt.Errorf("db: device authorization: %w", err)
	}
	return d, nil
}

// DecideDeviceAuthorization approves (or denies) the request userCode for
// userID if it is still pending and unexpired at now. The user's row is
// locked first (see Lock order); then one conditional UPDATE: of two
// decisions racing, the second waits for the first's row lock, re-checks
// the WHERE and finds it no longer pending. ErrNotFound otherwise (nothing
// changes), also when there is no such user.
func (s *Store) DecideDeviceAuthorization(ctx context.Context, userCode string, userID, epoch int64, approve bool, now time.Time, mail ...db.Mail) error {
	status := db.DeviceDenied
	if approve {
		status = db.DeviceApproved
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := lockUserKey(ctx, tx, userID); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE device_authorizations SET status = $1, user_id = $2, decided_at = $3, epoch = $6
			WHERE user_code = $4 AND status = $5 AND expires_at > $3`,
			status, userID, now.Unix(), userCode, db.DevicePending, epoch)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return db.ErrNotFound
		}
		return s.queueIn(ctx, tx, 0, mail)
	})
	if errors.Is(err, db.ErrNotFound) || errors.Is(err, db.ErrConflict) {
		return err
	}
	if err != nil {
		return fmt.Errorf("db: decide device authorization: %w", err)
	}
	return nil
}

// PollDeviceAuthorization is one token-endpoint poll, in one transaction
// that reads the request FOR UPDATE: of two polls at once the second waits
// for the first to commit, then reads its time and is too fast. tooFast
// (then Interval grows by 5, RFC 8628's slow_down) is whether the previous
// poll was less than Interval seconds before now; LastPolledAt becomes now
// either way.
func (s *Store) PollDeviceAuthorization(ctx context.Context, deviceCodeHash []byte, now time.Time) (db.DeviceAuthorization, bool, error) {
	var d db.DeviceAuthorization
	var fast bool
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		d, err = scanDevice(tx.QueryRow(ctx, `SELECT `+deviceColumns+` FROM device_authorizations
			WHERE device_code_hash = $1 FOR UPDATE`, deviceCodeHash))
		if errors.Is(err, pgx.ErrNoRows) {
			return db.ErrNotFound
		}
		if err != nil {
			return err
		}
		if fast = tooFast(d, now); fast {
			d.Interval += 5
		}
		_, err = tx.Exec(ctx, `UPDATE device_authorizations SET interval_seconds = $1, last_polled_at = $2 WHERE device_code_hash = $3`,
			d.Interval, now.Unix(), deviceCodeHash)
		return err
	})
	if errors.Is(err, db.ErrNotFound) {
		return db.DeviceAuthorization{}, false, err
	}
	if err != nil {
		return db.DeviceAuthorization{}, false, fmt.Errorf("db: poll device authorization: %w", err)
	}
	d.LastPolledAt = time.Unix(now.Unix(), 0)
	return d, fast, nil
}

// tooFast reports whether a poll at now comes less than d.Interval seconds
// after the previous one (never, for the first poll), in whole seconds as
// the store keeps time.
func tooFast(d db.DeviceAuthorization, now time.Time) bool {
	return !d.LastPolledAt.IsZero() && now.Unix()-d.LastPolledAt.Unix() < int64(d.Interval)
}

// RedeemDeviceAuthorization, in one transaction, marks the approved request
// redeemed (it must be unexpired at t.CreatedAt and approved by t.UserID)
// and creates token t, and records the app's connection in the user's
// history. The conditional UPDATE redeems it once: a second call waits for
// the first's row lock, re-checks the WHERE and finds it redeemed
// (ErrNotFound), and creates nothing. Locks: the user's row, then
// the app's (so a removal of the app either ends this token or comes first
// and leaves nothing to redeem), then the request (see Lock order).
func (s *Store) RedeemDeviceAuthorization(ctx context.Context, deviceCodeHash []byte, t db.Token) error {
	voided := false
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// The app first, then the user's row, as DeleteApp locks them;
		// the approval's epoch is checked against the user's: a reset
		// since the approval voids it.
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM apps
			WHERE client_id = (SELECT client_id FROM device_authorizations WHERE device_code_hash = $1) FOR KEY SHARE`,
			deviceCodeHash).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return db.ErrNotFound
		}
		if err != nil {
			return err
		}
		var epoch int64
		err = tx.QueryRow(ctx, `SELECT epoch FROM device_authorizations WHERE device_code_hash = $1 AND status = $2 AND user_id = $3`,
			deviceCodeHash, db.DeviceApproved, t.UserID).Scan(&epoch)
		if errors.Is(err, pgx.ErrNoRows) {
			return db.ErrNotFound
		}
		if err != nil {
			return err
		}
		if err := checkEpochIn(ctx, tx, t.UserID, epoch); errors.Is(err, db.ErrSignInsReset) {
			voided = true
			_, err := tx.Exec(ctx, `UPDATE device_authorizations SET status = $1 WHERE device_code_hash = $2 AND status = $3`,
				db.DeviceDenied, deviceCodeHash, db.DeviceApproved)
			return err
		} else if err != nil {
			return err
		}
		// The app connected: its history event names the app (the token's
		// name) and where the request for it came from.
		e := db.SecurityEvent{UserID: t.UserID, Kind: db.EventAppApproved, At: t.CreatedAt, TokenID: t.ID, Detail: t.Name}
		err = tx.QueryRow(ctx, `UPDATE device_authorizations SET status = $1
			WHERE device_code_hash = $2 AND status = $3 AND expires_at > $4 AND user_id = $5 RETURNING ip, location`,
			db.DeviceRedeemed, deviceCodeHash, db.DeviceApproved, t.CreatedAt.Unix(), t.UserID).Scan(&e.IP, &e.Location)
		if errors.Is(err, pgx.ErrNoRows) {
			return db.ErrNotFound
		}
		if err != nil {
			return err
		}
		if err := insertToken(ctx, tx, t); err != nil {
			return err
		}
		return recordIn(ctx, tx, e)
	})
	if errors.Is(err, db.ErrNotFound) {
		return err
	}
	if err != nil {
		return fmt.Errorf("db: redeem device authorization: %w", err)
	}
	if voided {
		return db.ErrSignInsReset
	}
	return nil
}

// pendingApprovalsSQL selects the user's approvals no app has redeemed yet
// that still could be at $3.
const pendingApprovalsSQL = `SELECT ` + deviceColumns + ` FROM device_authorizations
	WHERE user_id = $1 AND status = $2 AND expires_at > $3 AND epoch = (SELECT epoch FROM users WHERE id = $1)
	ORDER BY decided_at DESC, user_code`

func scanDevices(rows pgx.Rows, err error) ([]db.DeviceAuthorization, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []db.DeviceAuthorization
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// PendingApprovals returns the user's approvals no app has redeemed yet.
func (s *Store) PendingApprovals(ctx context.Context, userID int64, now time.Time) ([]db.DeviceAuthorization, error) {
	out, err := scanDevices(s.pool.Query(ctx, pendingApprovalsSQL, userID, db.DeviceApproved, now.Unix()))
	if err != nil {
		return nil, fmt.Errorf("db: pending approvals: %w", err)
	}
	return out, nil
}

// CancelApproval withdraws one of the user's approvals still waiting.
func (s *Store) CancelApproval(ctx context.Context, userID int64, userCode string, now time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE device_authorizations SET status = $1, decided_at = $2
		WHERE user_code = $3 AND user_id = $4 AND status = $5 AND expires_at > $2`,
		db.DeviceDenied, now.Unix(), userCode, userID, db.DeviceApproved)
	if err != nil {
		return fmt.Errorf("db: cancel approval: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return db.ErrNotFound
	}
	return nil
}

// PruneDeviceAuthorizations deletes requests that expired before cutoff.
func (s *Store) PruneDeviceAuthorizations(ctx context.Context, cutoff time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM device_authorizations WHERE expires_at < $1`, cutoff.Unix())
	if err != nil {
		return 0, fmt.Errorf("db: prune device authorizations: %w", err)
	}
	return tag.RowsAffected(), nil
}
