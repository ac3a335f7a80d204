package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"doorman/db"
)

const tokenColumns = `id, secret_hash, user_id, kind, name, client_id, scopes, created_at, expires_at,
	created_ip, created_location, last_used_at, last_used_ip, last_used_location,
	revoked_at, revoked_reason, revoked_by`

// tokenAliveSQL is the one definition, in SQL, of a live token (what
// db.Token.Alive says): not revoked, and now strictly before its expiry.
// It takes now once.
const tokenAliveSQL = `revoked_at IS NULL AND expires_at > ?`

func scanToken(row interface{ Scan(...any) error }, extra ...any) (db.Token, error) {
	var t db.Token
	var scopes string
	var created, expires, used int64
	var revokedAt sql.NullInt64
	var reason, by sql.NullString
	dest := []any{&t.ID, &t.SecretHash, &t.UserID, &t.Kind, &t.Name, &t.ClientID, &scopes, &created, &expires,
		&t.CreatedIP, &t.CreatedLocation, &used, &t.LastUsedIP, &t.LastUsedLocation, &revokedAt, &reason, &by}
	if err := row.Scan(append(dest, extra...)...); err != nil {
		return db.Token{}, err
	}
	t.Scopes = splitScopes(scopes)
	t.CreatedAt, t.ExpiresAt, t.LastUsedAt = time.Unix(created, 0), time.Unix(expires, 0), fromUnix(used)
	if revokedAt.Valid {
		t.RevokedAt = time.Unix(revokedAt.Int64, 0)
	}
	t.RevokedReason, t.RevokedBy = reason.String, by.String
	return t, nil
}

// scanTokens reads every row a query returned (rows, err as the query gave
// them), closing them.
func scanTokens(rows *sql.Rows, err error) ([]db.Token, error) {
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
// that is empty or holds a space could not be read back as it was, so it
// is refused rather than silently split or dropped.
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

// isTaken reports whether err is SQLite's UNIQUE or PRIMARY KEY constraint
// error: a TEXT or BLOB primary key (client_id, device_code_hash) reports
// the latter, not SQLITE_CONSTRAINT_UNIQUE.
func isTaken(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && (se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY)
}

// insertToken inserts t inside tx (unwrapped errors).
func insertToken(ctx context.Context, tx *sql.Tx, t db.Token) error {
	scopes, err := joinScopes(t.Scopes)
	if err != nil {
		return err
	}
	var revokedAt, reason, by any
	if t.Revoked() {
		revokedAt, reason, by = t.RevokedAt.Unix(), t.RevokedReason, t.RevokedBy
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO tokens (`+tokenColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		t.ID, t.SecretHash, t.UserID, t.Kind, t.Name, t.ClientID, scopes, t.CreatedAt.Unix(), t.ExpiresAt.Unix(),
		t.CreatedIP, t.CreatedLocation, toUnix(t.LastUsedAt), t.LastUsedIP, t.LastUsedLocation, revokedAt, reason, by)
	return err
}

// CreateToken inserts a token (the caller made the id and passes only the
// secret's hash) and, for a personal one, records its creation in the
// user's history in the same transaction (an app's token is recorded by
// RedeemDeviceAuthorization, which makes it); db.ErrNotFound if its user
// does not exist.
func (s *Store) CreateToken(ctx context.Context, t db.Token, epoch int64, mail ...db.Mail) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("db: create token: %w", err)
	}
	defer tx.Rollback()
	if err := checkEpochIn(ctx, tx, t.UserID, epoch); err != nil {
		return failed("create token", err)
	}
	err = insertToken(ctx, tx, t)
	if isForeignKeyViolation(err) {
		return db.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("db: create token: %w", err)
	}
	if err := queueMailIn(ctx, tx, mail...); err != nil {
		return failed("create token", err)
	}
	if t.Kind == db.TokenPersonal {
		if err := recordIn(ctx, tx, db.SecurityEvent{UserID: t.UserID, Kind: db.EventTokenCreated, At: t.CreatedAt,
			TokenID: t.ID, Detail: t.Name, IP: t.CreatedIP, Location: t.CreatedLocation}); err != nil {
			return fmt.Errorf("db: create token: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("db: create token: %w", err)
	}
	return nil
}

var tokenWithUserSQL = `SELECT t.` + strings.Join(strings.Fields(strings.ReplaceAll(tokenColumns, ",", " ")), ", t.") + `,
	u.email, u.password_hash, u.created_at, u.is_demo, u.disabled_at, u.epoch, u.email_verified_at, u.sign_in_alerts_off
	FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.id = ?`

// TokenWithUser returns the token with that public id, alive or not, and
// its user: the one read behind every API request. The caller verifies the
// secret and decides what a dead token (or a disabled user) means.
func (s *Store) TokenWithUser(ctx context.Context, id string) (db.Token, db.User, error) {
	var u db.User
	var created int64
	var disabled, verified sql.NullInt64
	t, err := scanToken(s.tokenWithUser.QueryRowContext(hot(ctx), id), &u.Email, &u.PasswordHash, &created, &u.IsDemo, &disabled, &u.Epoch,
		&verified, &u.SignInAlertsOff)
	if errors.Is(err, sql.ErrNoRows) {
		return db.Token{}, db.User{}, db.ErrNotFound
	}
	if err != nil {
		return db.Token{}, db.User{}, fmt.Errorf("db: token with user: %w", err)
	}
	u.ID, u.CreatedAt = t.UserID, time.Unix(created, 0)
	u.DisabledAt, u.EmailVerifiedAt = nullTime(disabled), nullTime(verified)
	return t, u, nil
}

// ListTokens returns the user's live tokens of kind ("" any kind), newest
// first.
// listTokensSQL lists a user's live tokens (the Security page runs it:
// prepared once).
const listTokensSQL = `SELECT ` + tokenColumns + ` FROM tokens
	WHERE user_id = ? AND (? = '' OR kind = ?) AND ` + tokenAliveSQL + `
	ORDER BY created_at DESC, id DESC`

func (s *Store) ListTokens(ctx context.Context, userID int64, kind string, now time.Time) ([]db.Token, error) {
	out, err := scanTokens(s.listTokens.QueryContext(hot(ctx), userID, kind, kind, now.Unix()))
	if err != nil {
		return nil, fmt.Errorf("db: list tokens: %w", err)
	}
	return out, nil
}

// TouchToken records a use of a token that is not revoked. It never revives
// a revoked one: a use racing a revocation loses.
func (s *Store) TouchToken(ctx context.Context, id string, at time.Time, ip, location string) error {
	_, err := s.write.ExecContext(ctx, `UPDATE tokens SET last_used_at = ?, last_used_ip = ?, last_used_location = ?
		WHERE id = ? AND revoked_at IS NULL`, at.Unix(), ip, location, id)
	if err != nil {
		return fmt.Errorf("db: touch token: %w", err)
	}
	return nil
}

// revokeTokensIn ends the live tokens matching where (with args) inside tx,
// records each ending in its user's history, and returns them as ended:
// every token revocation goes through here.
func revokeTokensIn(ctx context.Context, tx *sql.Tx, where, reason, by string, now time.Time, args ...any) ([]db.Token, error) {
	all := append([]any{now.Unix(), reason, by}, args...)
	all = append(all, now.Unix())
	ended, err := scanTokens(tx.QueryContext(ctx, `UPDATE tokens SET revoked_at = ?, revoked_reason = ?, revoked_by = ?
		WHERE `+where+` AND `+tokenAliveSQL+` RETURNING `+tokenColumns, all...))
	if err != nil {
		return nil, err
	}
	return ended, recordIn(ctx, tx, tokenRevokedEvents(ended)...)
}

// revokeTokens is revokeTokensIn in a transaction of its own (what names
// the method, for errors).
func (s *Store) revokeTokens(ctx context.Context, what, where, reason, by string, now time.Time, args ...any) ([]db.Token, error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("db: %s: %w", what, err)
	}
	defer tx.Rollback()
	ended, err := revokeTokensIn(ctx, tx, where, reason, by, now, args...)
	if err != nil {
		return nil, fmt.Errorf("db: %s: %w", what, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("db: %s: %w", what, err)
	}
	return ended, nil
}

// RevokeToken ends one live token of the user and returns it as ended.
// Another user's id, an unknown id or an ended token give db.ErrNotFound
// and change nothing: the ownership check is in the UPDATE's WHERE.
func (s *Store) RevokeToken(ctx context.Context, userID int64, id, reason, by string, now time.Time) (db.Token, error) {
	ended, err := s.revokeTokens(ctx, "revoke token", `user_id = ? AND id = ?`, reason, by, now, userID, id)
	if err != nil {
		return db.Token{}, err
	}
	if len(ended) == 0 {
		return db.Token{}, db.ErrNotFound
	}
	return ended[0], nil
}

// RevokeTokens ends every live token of the user of kind ("" every kind),
// in one transaction, and returns them.
func (s *Store) RevokeTokens(ctx context.Context, userID int64, kind, reason, by string, now time.Time) ([]db.Token, error) {
	return s.revokeTokens(ctx, "revoke tokens", `user_id = ? AND (? = '' OR kind = ?)`, reason, by, now, userID, kind, kind)
}

// RevokeAppTokens ends every live token the user gave the app clientID and
// returns them (none is not an error). Only app tokens: a personal token's
// client_id is empty, and disconnecting an app must never end those.
func (s *Store) RevokeAppTokens(ctx context.Context, userID int64, clientID, reason, by string, now time.Time) ([]db.Token, error) {
	return s.revokeTokens(ctx, "revoke app tokens", `user_id = ? AND kind = ? AND client_id = ?`, reason, by, now, userID, db.TokenApp, clientID)
}

// CreateApp registers an app; db.ErrConflict if the client_id is taken.
func (s *Store) CreateApp(ctx context.Context, a db.App) error {
	_, err := s.write.ExecContext(ctx, `INSERT INTO apps (client_id, name, created_at) VALUES (?, ?, ?)`,
		a.ClientID, a.Name, a.CreatedAt.Unix())
	if isTaken(err) {
		return db.ErrConflict
	}
	if err != nil {
		return fmt.Errorf("db: create app: %w", err)
	}
	return nil
}

func scanApp(row interface{ Scan(...any) error }) (db.App, error) {
	var a db.App
	var created int64
	if err := row.Scan(&a.ClientID, &a.Name, &created); err != nil {
		return db.App{}, err
	}
	a.CreatedAt = time.Unix(created, 0)
	return a, nil
}

// App returns the app with that client_id, or db.ErrNotFound.
func (s *Store) App(ctx context.Context, clientID string) (db.App, error) {
	a, err := scanApp(s.read.QueryRowContext(ctx, `SELECT client_id, name, created_at FROM apps WHERE client_id = ?`, clientID))
	if errors.Is(err, sql.ErrNoRows) {
		return db.App{}, db.ErrNotFound
	}
	if err != nil {
		return db.App{}, fmt.Errorf("db: app: %w", err)
	}
	return a, nil
}

// Apps returns every registered app, oldest first.
func (s *Store) Apps(ctx context.Context) ([]db.App, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT client_id, name, created_at FROM apps ORDER BY created_at, client_id`)
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
// token of it (db.ReasonAppRemoved, by "operator"; the rows stay, as
// history) and, by the foreign key's cascade, deletes its device
// authorizations, so no pending one can be approved or redeemed later. It
// returns the tokens ended; db.ErrNotFound (nothing changes) if unknown.
func (s *Store) DeleteApp(ctx context.Context, clientID string, now time.Time) ([]db.Token, error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("db: delete app: %w", err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `DELETE FROM apps WHERE client_id = ?`, clientID)
	if err != nil {
		return nil, fmt.Errorf("db: delete app: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, db.ErrNotFound
	}
	ended, err := revokeTokensIn(ctx, tx, `kind = ? AND client_id = ?`, db.ReasonAppRemoved, "operator", now, db.TokenApp, clientID)
	if err != nil {
		return nil, fmt.Errorf("db: delete app: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("db: delete app: %w", err)
	}
	return ended, nil
}

const deviceColumns = `device_code_hash, user_code, client_id, scopes, created_at, expires_at, interval_seconds,
	last_polled_at, ip, location, status, user_id, decided_at, epoch`

func scanDevice(row interface{ Scan(...any) error }) (db.DeviceAuthorization, error) {
	var d db.DeviceAuthorization
	var scopes string
	var created, expires, polled int64
	var userID, decided sql.NullInt64
	if err := row.Scan(&d.DeviceCodeHash, &d.UserCode, &d.ClientID, &scopes, &created, &expires, &d.Interval,
		&polled, &d.IP, &d.Location, &d.Status, &userID, &decided, &d.Epoch); err != nil {
		return db.DeviceAuthorization{}, err
	}
	d.Scopes = splitScopes(scopes)
	d.CreatedAt, d.ExpiresAt, d.LastPolledAt = time.Unix(created, 0), time.Unix(expires, 0), fromUnix(polled)
	d.UserID = userID.Int64
	if decided.Valid {
		d.DecidedAt = time.Unix(decided.Int64, 0)
	}
	return d, nil
}

// CreateDeviceAuthorization stores a new request (pending unless d.Status
// says otherwise). User codes are unique among all rows; in the same
// transaction it first deletes a request holding the same code that has
// expired at d.CreatedAt, so only an unexpired holder makes the insert fail
// (db.ErrConflict: the caller draws another code). db.ErrNotFound if the
// app does not exist.
func (s *Store) CreateDeviceAuthorization(ctx context.Context, d db.DeviceAuthorization) error {
	scopes, err := joinScopes(d.Scopes)
	if err != nil {
		return fmt.Errorf("db: create device authorization: %w", err)
	}
	status := d.Status
	if status == "" {
		status = db.DevicePending
	}
	var userID, decided any
	if d.UserID != 0 {
		userID = d.UserID
	}
	if !d.DecidedAt.IsZero() {
		decided = d.DecidedAt.Unix()
	}
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("db: create device authorization: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM device_authorizations WHERE user_code = ? AND expires_at <= ?`,
		d.UserCode, d.CreatedAt.Unix()); err != nil {
		return fmt.Errorf("db: create device authorization: %w", err)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO device_authorizations (`+deviceColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		d.DeviceCodeHash, d.UserCode, d.ClientID, scopes, d.CreatedAt.Unix(), d.ExpiresAt.Unix(), d.Interval,
		toUnix(d.LastPolledAt), d.IP, d.Location, status, userID, decided, d.Epoch)
	if isTaken(err) {
		return db.ErrConflict
	}
	if isForeignKeyViolation(err) {
		return db.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("db: create device authorization: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("db: create device authorization: %w", err)
	}
	return nil
}

// DeviceAuthorizationByUserCode returns the request with that (normalised)
// user code, expired or not, or db.ErrNotFound.
func (s *Store) DeviceAuthorizationByUserCode(ctx context.Context, userCode string) (db.DeviceAuthorization, error) {
	d, err := scanDevice(s.read.QueryRowContext(ctx, `SELECT `+deviceColumns+` FROM device_authorizations WHERE user_code = ?`, userCode))
	if errors.Is(err, sql.ErrNoRows) {
		return db.DeviceAuthorization{}, db.ErrNotFound
	}
	if err != nil {
		return db.DeviceAuthorization{}, fmt.Errorf("db: device authorization: %w", err)
	}
	return d, nil
}

// DecideDeviceAuthorization approves (or denies) the request userCode for
// userID if it is still pending and unexpired at now. One conditional
// UPDATE: of two decisions racing, the second finds it no longer pending.
// db.ErrNotFound otherwise (nothing changes), also when there is no such
// user.
func (s *Store) DecideDeviceAuthorization(ctx context.Context, userCode string, userID, epoch int64, approve bool, now time.Time, mail ...db.Mail) error {
	status := db.DeviceDenied
	if approve {
		status = db.DeviceApproved
	}
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("db: decide device authorization: %w", err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE device_authorizations SET status = ?, user_id = ?, decided_at = ?, epoch = ?
		WHERE user_code = ? AND status = ? AND expires_at > ?`,
		status, userID, now.Unix(), epoch, userCode, db.DevicePending, now.Unix())
	if isForeignKeyViolation(err) {
		return db.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("db: decide device authorization: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return db.ErrNotFound
	}
	if err := queueMailIn(ctx, tx, mail...); err != nil {
		return failed("decide device authorization", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("db: decide device authorization: %w", err)
	}
	return nil
}

// PollDeviceAuthorization is one token-endpoint poll, read and written in
// one transaction (the writer's BEGIN IMMEDIATE: no other write runs
// between the read and the update), so of two polls at once the second
// sees the first's time and is too fast. tooFast (then Interval grows by
// 5, RFC 8628's slow_down) is whether the previous poll was less than
// Interval seconds before now; LastPolledAt becomes now either way.
func (s *Store) PollDeviceAuthorization(ctx context.Context, deviceCodeHash []byte, now time.Time) (db.DeviceAuthorization, bool, error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return db.DeviceAuthorization{}, false, fmt.Errorf("db: poll device authorization: %w", err)
	}
	defer tx.Rollback()
	d, err := scanDevice(tx.QueryRowContext(ctx, `SELECT `+deviceColumns+` FROM device_authorizations WHERE device_code_hash = ?`, deviceCodeHash))
	if errors.Is(err, sql.ErrNoRows) {
		return db.DeviceAuthorization{}, false, db.ErrNotFound
	}
	if err != nil {
		return db.DeviceAuthorization{}, false, fmt.Errorf("db: poll device authorization: %w", err)
	}
	fast := tooFast(d, now)
	if fast {
		d.Interval += 5
	}
	if _, err := tx.ExecContext(ctx, `UPDATE device_authorizations SET interval_seconds = ?, last_polled_at = ? WHERE device_code_hash = ?`,
		d.Interval, now.Unix(), deviceCodeHash); err != nil {
		return db.DeviceAuthorization{}, false, fmt.Errorf("db: poll device authorization: %w", err)
	}
	if err := tx.Commit(); err != nil {
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
// history. The conditional UPDATE redeems it once: a second call, or one on
// a request not approved, finds no row (db.ErrNotFound) and creates
// nothing.
func (s *Store) RedeemDeviceAuthorization(ctx context.Context, deviceCodeHash []byte, t db.Token) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("db: redeem device authorization: %w", err)
	}
	defer tx.Rollback()
	// The app connected: its history event names the app (the token's name)
	// and where the request for it came from.
	e := db.SecurityEvent{UserID: t.UserID, Kind: db.EventAppApproved, At: t.CreatedAt, TokenID: t.ID, Detail: t.Name}
	var epoch int64
	err = tx.QueryRowContext(ctx, `UPDATE device_authorizations SET status = ?
		WHERE device_code_hash = ? AND status = ? AND expires_at > ? AND user_id = ? RETURNING ip, location, epoch`,
		db.DeviceRedeemed, deviceCodeHash, db.DeviceApproved, t.CreatedAt.Unix(), t.UserID).Scan(&e.IP, &e.Location, &epoch)
	if errors.Is(err, sql.ErrNoRows) {
		return db.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("db: redeem device authorization: %w", err)
	}
	if err := checkEpochIn(ctx, tx, t.UserID, epoch); errors.Is(err, db.ErrSignInsReset) {
		// Approved before the account was reset (or disabled): the
		// approval is void, and stays so.
		if _, err := tx.ExecContext(ctx, `UPDATE device_authorizations SET status = ? WHERE device_code_hash = ?`,
			db.DeviceDenied, deviceCodeHash); err != nil {
			return fmt.Errorf("db: redeem device authorization: %w", err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("db: redeem device authorization: %w", err)
		}
		return db.ErrSignInsReset
	} else if err != nil {
		return fmt.Errorf("db: redeem device authorization: %w", err)
	}
	if err := insertToken(ctx, tx, t); err != nil {
		return fmt.Errorf("db: redeem device authorization: %w", err)
	}
	if err := recordIn(ctx, tx, e); err != nil {
		return fmt.Errorf("db: redeem device authorization: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("db: redeem device authorization: %w", err)
	}
	return nil
}

// PendingApprovals returns the user's approvals no app has redeemed yet.
func (s *Store) PendingApprovals(ctx context.Context, userID int64, now time.Time) ([]db.DeviceAuthorization, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+deviceColumns+` FROM device_authorizations
		WHERE user_id = ?1 AND status = ?2 AND expires_at > ?3 AND epoch = (SELECT epoch FROM users WHERE id = ?1)
		ORDER BY decided_at DESC, user_code`, userID, db.DeviceApproved, now.Unix())
	if err != nil {
		return nil, fmt.Errorf("db: pending approvals: %w", err)
	}
	defer rows.Close()
	var out []db.DeviceAuthorization
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, fmt.Errorf("db: pending approvals: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("db: pending approvals: %w", err)
	}
	return out, nil
}

// CancelApproval withdraws one of the user's approvals still waiting.
func (s *Store) CancelApproval(ctx context.Context, userID int64, userCode string, now time.Time) error {
	res, err := s.write.ExecContext(ctx, `UPDATE device_authorizations SET status = ?, decided_at = ?
		WHERE user_code = ? AND user_id = ? AND status = ? AND expires_at > ?`,
		db.DeviceDenied, now.Unix(), userCode, userID, db.DeviceApproved, now.Unix())
	if err != nil {
		return fmt.Errorf("db: cancel approval: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return db.ErrNotFound
	}
	return nil
}

// PruneDeviceAuthorizations deletes requests that expired before cutoff.
func (s *Store) PruneDeviceAuthorizations(ctx context.Context, cutoff time.Time) (int64, error) {
	res, err := s.write.ExecContext(ctx, `DELETE FROM device_authorizations WHERE expires_at < ?`, cutoff.Unix())
	if err != nil {
		return 0, fmt.Errorf("db: prune device authorizations: %w", err)
	}
	return res.RowsAffected()
}
