package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"doorman/db"
)

// The two-factor methods are written once, in db/sqlstore. What is left
// here serves the methods not moved yet: SecurityOverview's batch,
// RecoverAccount, and the writes that lock a user's row first.

// twoFactorSQL reads the two-factor state of user $1.
const twoFactorSQL = `SELECT user_id, secret_sealed, enabled_at, last_step,
	(SELECT COUNT(*) FROM recovery_codes r WHERE r.user_id = t.user_id AND r.used_at IS NULL), unverified_address
	FROM two_factor t WHERE user_id = $1`

// scanTwoFactor reads the row of twoFactorSQL; db.ErrNotFound when there is
// none.
func scanTwoFactor(row pgx.Row) (db.TwoFactor, error) {
	var t db.TwoFactor
	var enabled *int64
	err := row.Scan(&t.UserID, &t.SecretSealed, &enabled, &t.LastStep, &t.RecoveryLeft, &t.UnverifiedAddress)
	if errors.Is(err, pgx.ErrNoRows) {
		return db.TwoFactor{}, db.ErrNotFound
	}
	if err != nil {
		return db.TwoFactor{}, err
	}
	if enabled != nil {
		t.EnabledAt = time.Unix(*enabled, 0)
	}
	return t, nil
}

// lockUserKey takes, in tx, the KEY SHARE lock on the user's row that a
// foreign key check of a row of theirs would take later (see Lock order in
// tokens.go);
// ErrNotFound if there is no such user.
func lockUserKey(ctx context.Context, tx pgx.Tx, userID int64) error {
	var one int
	err := tx.QueryRow(ctx, `SELECT 1 FROM users WHERE id = $1 FOR KEY SHARE`, userID).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return db.ErrNotFound
	}
	return err
}


// isForeignKeyViolation reports whether err is PostgreSQL's
// foreign_key_violation (a row for a user that does not exist).
func isForeignKeyViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23503"
}
