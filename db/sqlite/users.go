package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"doorman/db"
)

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

// CreateUser inserts a user and queues mail (its verification mail), in one
// transaction: a mail's or link's UserID of 0 becomes the new user's id.
// The email must already be normalised by the caller; a duplicate returns
// db.ErrEmailTaken, a mail's duplicate Message-ID db.ErrConflict (and no
// user is created).
func (s *Store) CreateUser(ctx context.Context, email, passwordHash string, isDemo bool, now time.Time, mail ...db.Mail) (db.User, error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return db.User{}, fmt.Errorf("db: create user: %w", err)
	}
	defer tx.Rollback()
	u, err := scanUser(tx.QueryRowContext(ctx,
		`INSERT INTO users (email, password_hash, created_at, is_demo) VALUES (?, ?, ?, ?)
		 RETURNING `+userColumns,
		email, passwordHash, now.Unix(), isDemo))
	if isUniqueViolation(err) {
		return db.User{}, db.ErrEmailTaken
	}
	if err != nil {
		return db.User{}, fmt.Errorf("db: create user: %w", err)
	}
	if err := queueMailIn(ctx, tx, forUser(u.ID, mail)...); err != nil {
		return db.User{}, failed("create user", err)
	}
	if err := tx.Commit(); err != nil {
		return db.User{}, fmt.Errorf("db: create user: %w", err)
	}
	return u, nil
}

// UserByEmail returns the user with that (normalised) email, or db.ErrNotFound.
func (s *Store) UserByEmail(ctx context.Context, email string) (db.User, error) {
	u, err := scanUser(s.read.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE email = ?`, email))
	if errors.Is(err, sql.ErrNoRows) {
		return db.User{}, db.ErrNotFound
	}
	if err != nil {
		return db.User{}, fmt.Errorf("db: user by email: %w", err)
	}
	return u, nil
}

// UserByID returns the user with that id, or db.ErrNotFound.
func (s *Store) UserByID(ctx context.Context, id int64) (db.User, error) {
	u, err := scanUser(s.read.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return db.User{}, db.ErrNotFound
	}
	if err != nil {
		return db.User{}, fmt.Errorf("db: user by id: %w", err)
	}
	return u, nil
}

// UserIDs returns the id of every user, in increasing order.
func (s *Store) UserIDs(ctx context.Context) ([]int64, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT id FROM users ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("db: user ids: %w", err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("db: user ids: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("db: user ids: %w", err)
	}
	return ids, nil
}

// UpdatePassword replaces the user's password hash and records the change
// in their history (at the store's clock: the method takes no time).
func (s *Store) UpdatePassword(ctx context.Context, userID int64, hash string) error {
	return s.updateUser(ctx, "update password", db.SecurityEvent{UserID: userID, Kind: db.EventPasswordChanged},
		`UPDATE users SET password_hash = ? WHERE id = ?`, hash, userID)
}

// UpdateEmail changes the user's (normalised) email and records the new
// address in their history; db.ErrEmailTaken if another account has it.
func (s *Store) UpdateEmail(ctx context.Context, userID int64, email string) error {
	err := s.updateUser(ctx, "update email", db.SecurityEvent{UserID: userID, Kind: db.EventEmailChanged, Detail: email},
		`UPDATE users SET email = ?1, email_verified_at = CASE WHEN email = ?1 THEN email_verified_at END WHERE id = ?2`, email, userID)
	if isUniqueViolation(err) {
		return db.ErrEmailTaken
	}
	return err
}

// SetUserDisabled disables (at now) or re-enables the user. Disabling also
// ends every live session and every live API token of theirs, in the same
// transaction, so no request can slip between them, and returns the
// sessions it ended.
func (s *Store) SetUserDisabled(ctx context.Context, userID int64, disabled bool, now time.Time) ([]db.Session, error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("db: disable user: %w", err)
	}
	defer tx.Rollback()
	var at any
	if disabled {
		at = now.Unix()
	}
	res, err := tx.ExecContext(ctx, `UPDATE users SET disabled_at = ?, epoch = epoch + 1 WHERE id = ?`, at, userID)
	if err != nil {
		return nil, fmt.Errorf("db: disable user: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, db.ErrNotFound
	}
	var ended []db.Session
	if disabled {
		if ended, err = s.revokeIn(ctx, tx, `user_id = ?`, db.ReasonDisabled, "operator", now, userID); err != nil {
			return nil, fmt.Errorf("db: disable user: %w", err)
		}
		if _, err := revokeTokensIn(ctx, tx, `user_id = ?`, db.ReasonDisabled, "operator", now, userID); err != nil {
			return nil, fmt.Errorf("db: disable user: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("db: disable user: %w", err)
	}
	s.notify(db.EndedEvents(ended))
	return ended, nil
}

// DeleteUser removes the user and every session row of theirs (each of their
// browsers is signed out on its next request). It returns the sessions that
// were alive at now. (Failed sign-ins are keyed by a hash the caller derives
// from the address; the caller clears them.)
func (s *Store) DeleteUser(ctx context.Context, userID int64, now time.Time) ([]db.Session, error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("db: delete user: %w", err)
	}
	defer tx.Rollback()
	deleted, err := scanSessions(tx.QueryContext(ctx, `DELETE FROM sessions WHERE user_id = ? RETURNING `+sessionColumns, userID))
	if err != nil {
		return nil, fmt.Errorf("db: delete user: %w", err)
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM users WHERE id = ?`, userID)
	if err != nil {
		return nil, fmt.Errorf("db: delete user: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, db.ErrNotFound
	}
	// Everything Doorman knows about the account goes, its mails too:
	// their addresses and subjects are about it.
	if _, err := tx.ExecContext(ctx, `DELETE FROM outbox WHERE user_id = ?`, userID); err != nil {
		return nil, fmt.Errorf("db: delete user: %w", err)
	}
	ended := deletedAlive(deleted, now)
	if err := s.logEnded(ctx, tx, ended); err != nil {
		return nil, fmt.Errorf("db: delete user: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("db: delete user: %w", err)
	}
	s.notify(db.EndedEvents(ended))
	return ended, nil
}

// isUniqueViolation reports whether err is SQLite's UNIQUE constraint error,
// by its extended result code (not its text, which may change).
func isUniqueViolation(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE
}

// updateUser runs query (an UPDATE of e.UserID's row) and records e, at the
// store's clock, in one transaction; db.ErrNotFound if no row changed.
func (s *Store) updateUser(ctx context.Context, what string, e db.SecurityEvent, query string, args ...any) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("db: %s: %w", what, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("db: %s: %w", what, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return db.ErrNotFound
	}
	e.At = s.now()
	if err := recordIn(ctx, tx, e); err != nil {
		return fmt.Errorf("db: %s: %w", what, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("db: %s: %w", what, err)
	}
	return nil
}
