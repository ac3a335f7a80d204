package sqlite

import (
	"errors"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

)

// The two-factor methods are written once, in db/sqlstore. What is left
// here serves the methods not moved yet: prepare's hot statement and
// RecoverAccount.

// twoFactorSQL reads a user's two-factor state (every sign-in and Security
// page runs it: prepared once).
const twoFactorSQL = `SELECT user_id, secret_sealed, enabled_at, last_step,
	(SELECT COUNT(*) FROM recovery_codes r WHERE r.user_id = t.user_id AND r.used_at IS NULL), unverified_address
	FROM two_factor t WHERE user_id = ?`


// isForeignKeyViolation reports whether err is SQLite's FOREIGN KEY
// constraint error (a row for a user that does not exist), by its extended
// result code.
func isForeignKeyViolation(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}
