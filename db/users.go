package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// User is an account.
type User struct {
	ID           int64
	Email        string
	PasswordHash string
	CreatedAt    time.Time
	IsDemo       bool
	DisabledAt   time.Time // zero unless an operator disabled the account
}

// Disabled reports whether an operator disabled the account.
func (u User) Disabled() bool { return !u.DisabledAt.IsZero() }

const userColumns = `id, email, password_hash, created_at, is_demo, disabled_at`

func scanUser(row interface{ Scan(...any) error }) (User, error) {
	var u User
	var created int64
	var disabled sql.NullInt64
	err := row.Scan(&u.ID, &u.Email, &u.PasswordHash, &created, &u.IsDemo, &disabled)
	u.CreatedAt = time.Unix(created, 0)
	if disabled.Valid {
		u.DisabledAt = time.Unix(disabled.Int64, 0)
	}
	return u, err
}

// CreateUser inserts a user. The email must already be normalised by the
// caller; a duplicate returns ErrEmailTaken.
func (s *Store) CreateUser(ctx context.Context, email, passwordHash string, isDemo bool, now time.Time) (User, error) {
	row := s.write.QueryRowContext(ctx,
		`INSERT INTO users (email, password_hash, created_at, is_demo) VALUES (?, ?, ?, ?)
		 RETURNING `+userColumns,
		email, passwordHash, now.Unix(), isDemo)
	u, err := scanUser(row)
	if err != nil {
		if strings.Contains(err.Error(), "UNIQUE constraint failed") {
			return User{}, ErrEmailTaken
		}
		return User{}, fmt.Errorf("db: create user: %w", err)
	}
	return u, nil
}

// UserByEmail returns the user with that (normalised) email, or ErrNotFound.
func (s *Store) UserByEmail(ctx context.Context, email string) (User, error) {
	u, err := scanUser(s.read.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE email = ?`, email))
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, ErrNotFound
	}
	if err != nil {
		return User{}, fmt.Errorf("db: user by email: %w", err)
	}
	return u, nil
}

// UserByID returns the user with that id, or ErrNotFound.
func (s *Store) UserByID(ctx context.Context, id int64) (User, error) {
	u, err := scanUser(s.read.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, ErrNotFound
	}
	if err != nil {
		return User{}, fmt.Errorf("db: user by id: %w", err)
	}
	return u, nil
}

// UpdatePassword replaces the user's password hash.
func (s *Store) UpdatePassword(ctx context.Context, userID int64, hash string) error {
	return s.updateUser(ctx, "update password", `UPDATE users SET password_hash = ? WHERE id = ?`, hash, userID)
}

// UpdateEmail changes the user's (normalised) email; ErrEmailTaken if another
// account has it.
func (s *Store) UpdateEmail(ctx context.Context, userID int64, email string) error {
	err := s.updateUser(ctx, "update email", `UPDATE users SET email = ? WHERE id = ?`, email, userID)
	if err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed") {
		return ErrEmailTaken
	}
	return err
}

// SetUserDisabled disables (at now) or re-enables the user. Disabling also
// ends every live session of theirs, in the same transaction, so no request
// can slip between the two.
func (s *Store) SetUserDisabled(ctx context.Context, userID int64, disabled bool, now time.Time) (ended int64, err error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("db: disable user: %w", err)
	}
	defer tx.Rollback()
	var at any
	if disabled {
		at = now.Unix()
	}
	res, err := tx.ExecContext(ctx, `UPDATE users SET disabled_at = ? WHERE id = ?`, at, userID)
	if err != nil {
		return 0, fmt.Errorf("db: disable user: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return 0, ErrNotFound
	}
	if disabled {
		res, err = tx.ExecContext(ctx, `UPDATE sessions SET revoked_at = ?, revoked_reason = ?, revoked_by = ?
			WHERE user_id = ? AND `+aliveSQL, now.Unix(), ReasonDisabled, "operator", userID, now.Unix(), now.Unix())
		if err != nil {
			return 0, fmt.Errorf("db: disable user: %w", err)
		}
		ended, _ = res.RowsAffected()
	}
	return ended, tx.Commit()
}

// DeleteUser removes the user, every session row of theirs (by cascade: each
// of their browsers is signed out on its next request) and the failed
// sign-ins recorded under their email: nothing that names them is left.
func (s *Store) DeleteUser(ctx context.Context, userID int64) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("db: delete user: %w", err)
	}
	defer tx.Rollback()
	var email string
	err = tx.QueryRowContext(ctx, `DELETE FROM users WHERE id = ? RETURNING email`, userID).Scan(&email)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("db: delete user: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM login_failures WHERE email = ?`, email); err != nil {
		return fmt.Errorf("db: delete user: %w", err)
	}
	return tx.Commit()
}

func (s *Store) updateUser(ctx context.Context, what, query string, args ...any) error {
	res, err := s.write.ExecContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("db: %s: %w", what, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}
