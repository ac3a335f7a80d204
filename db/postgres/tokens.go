package postgres

import (
	"context"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"doorman/db"
)

// The tokens' methods are written once, in db/sqlstore (tokens.go,
// tokens_devices.go). Lock order, which this package's comments cite from
// here, is written down there now (db/sqlstore/tokens.go). What stays here is what this
// package's own methods still use until they move too: revokeTokensIn
// (SetUserDisabled, RecoverAccount), the statements and scanners of
// SecurityOverview's batch (listTokensSQL, pendingApprovalsSQL), and the
// time helpers of the mail queue and the sessions.

const tokenColumns = `id, secret_hash, user_id, kind, name, client_id, scopes, created_at, expires_at,
	created_ip, created_location, last_used_at, last_used_ip, last_used_location,
	revoked_at, revoked_reason, revoked_by`

// tokenAlive is the one definition, in SQL, of a live token (what
// db.Token.Alive says) at the time in parameter $1.
const tokenAlive = `revoked_at IS NULL AND expires_at > $1`

func scanToken(row pgx.Row) (db.Token, error) {
	var t db.Token
	var scopes string
	var created, expires, used int64
	var revokedAt *int64
	var reason, by *string
	if err := row.Scan(&t.ID, &t.SecretHash, &t.UserID, &t.Kind, &t.Name, &t.ClientID, &scopes, &created, &expires,
		&t.CreatedIP, &t.CreatedLocation, &used, &t.LastUsedIP, &t.LastUsedLocation, &revokedAt, &reason, &by); err != nil {
		return db.Token{}, err
	}
	t.Scopes = strings.Fields(scopes)
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

// listTokensSQL reads the live tokens ($1 now) of user $2 of kind $3 (""
// every kind), newest first.
const listTokensSQL = `SELECT ` + tokenColumns + ` FROM tokens
	WHERE user_id = $2 AND ($3 = '' OR kind = $3) AND ` + tokenAlive + `
	ORDER BY created_at DESC, id DESC`

// revokeTokensIn ends, in tx, the live tokens matching where (whose
// parameters start at $4: $1 is now, $2 the reason, $3 who), records each
// ending in its user's history, and returns them: every token revocation
// goes through here. It locks them in id order first; the caller holds
// their users' row locks already (see Lock order in db/sqlstore/tokens.go).
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
	d.Scopes = strings.Fields(scopes)
	d.CreatedAt, d.ExpiresAt, d.LastPolledAt = time.Unix(created, 0), time.Unix(expires, 0), fromUnix(polled)
	if userID != nil {
		d.UserID = *userID
	}
	d.DecidedAt = optionalTime(decided)
	return d, nil
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
