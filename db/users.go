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
}

const userColumns = `id, email, password_hash, created_at, is_demo`

func scanUser(row interface{ Scan(...any) error }) (User, error) {
	var u User
	var created int64
	err := row.Scan(&u.ID, &u.Email, &u.PasswordHash, &created, &u.IsDemo)
	u.CreatedAt = time.Unix(created, 0)
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
