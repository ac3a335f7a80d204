package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"doorman/db"
)

// The tokens' methods are written once, in db/sqlstore (tokens.go,
// tokens_devices.go). What stays here is what this package's own methods
// still use until they move too: revokeTokensIn (SetUserDisabled,
// RecoverAccount) and its scanners, and the time and constraint helpers of
// the mail queue and the sessions.

const tokenColumns = `id, secret_hash, user_id, kind, name, client_id, scopes, created_at, expires_at,
	created_ip, created_location, last_used_at, last_used_ip, last_used_location,
	revoked_at, revoked_reason, revoked_by`

// tokenAliveSQL is the one definition, in SQL, of a live token (what
// db.Token.Alive says): not revoked, and now strictly before its expiry.
// It takes now once.
const tokenAliveSQL = `revoked_at IS NULL AND expires_at > ?`

func scanToken(row interface{ Scan(...any) error }) (db.Token, error) {
	var t db.Token
	var scopes string
	var created, expires, used int64
	var revokedAt sql.NullInt64
	var reason, by sql.NullString
	if err := row.Scan(&t.ID, &t.SecretHash, &t.UserID, &t.Kind, &t.Name, &t.ClientID, &scopes, &created, &expires,
		&t.CreatedIP, &t.CreatedLocation, &used, &t.LastUsedIP, &t.LastUsedLocation, &revokedAt, &reason, &by); err != nil {
		return db.Token{}, err
	}
	t.Scopes = strings.Fields(scopes)
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
