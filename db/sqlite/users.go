package sqlite

import (
	"database/sql"
	"errors"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"doorman/db"
)

// The users' methods are written once, in db/sqlstore; these stay for this
// package's methods still reading users (mail, tokens) until they move too.

const userColumns = `id, email, password_hash, created_at, is_demo, disabled_at, epoch, email_verified_at, sign_in_alerts_off`

func scanUser(row interface{ Scan(...any) error }) (db.User, error) {
	var u db.User
	var created int64
	var disabled, verified sql.NullInt64
	err := row.Scan(&u.ID, &u.Email, &u.PasswordHash, &created, &u.IsDemo, &disabled, &u.Epoch, &verified, &u.SignInAlertsOff)
	u.CreatedAt = time.Unix(created, 0)
	u.DisabledAt, u.EmailVerifiedAt = nullTime(disabled), nullTime(verified)
	return u, err
}

// nullTime reads an optional time stored as NULL when unset.
func nullTime(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.Unix(n.Int64, 0)
}

// isUniqueViolation reports whether err is SQLite's UNIQUE constraint error,
// by its extended result code (not its text, which may change).
func isUniqueViolation(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE
}
