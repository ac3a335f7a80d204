package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"doorman/db"
)

// The two-factor methods are written once, in db/sqlstore. What is left
// here serves the methods not moved yet: prepare's hot statement and
// RecoverAccount.

// twoFactorSQL reads a user's two-factor state (every sign-in and Security
// page runs it: prepared once).
const twoFactorSQL = `SELECT user_id, secret_sealed, enabled_at, last_step,
	(SELECT COUNT(*) FROM recovery_codes r WHERE r.user_id = t.user_id AND r.used_at IS NULL), unverified_address
	FROM two_factor t WHERE user_id = ?`

// twoFactorOffIn removes the user's two-factor state and recovery codes in
// tx and reports whether two-factor was on. onlyUnverified
// (db.Recovery.ClearUnverifiedTwoFactor) removes it only if it was set up
// while the address was unverified: one that is on and was set up with a
// verified address is db.ErrTwoFactorEnabled, and nothing is removed.
func twoFactorOffIn(ctx context.Context, tx *sql.Tx, userID int64, onlyUnverified bool) (bool, error) {
	var on, unverified bool
	err := tx.QueryRowContext(ctx, `SELECT enabled_at IS NOT NULL, unverified_address FROM two_factor WHERE user_id = ?`, userID).Scan(&on, &unverified)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if onlyUnverified && on && !unverified {
		return false, db.ErrTwoFactorEnabled
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM two_factor WHERE user_id = ?`, userID); err != nil {
		return false, err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM recovery_codes WHERE user_id = ?`, userID); err != nil {
		return false, err
	}
	return on, nil
}

// isForeignKeyViolation reports whether err is SQLite's FOREIGN KEY
// constraint error (a row for a user that does not exist), by its extended
// result code.
func isForeignKeyViolation(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}
