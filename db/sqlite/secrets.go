package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// AppSecret returns the application secret called name, creating it with size
// random bytes the first time. Keeping it in the database means every instance
// sharing the database uses the same key, and a restart does not change it.
//
// An existing secret is read without writing, so a store that cannot write
// (opened read-only: see ReadOnlyCause) still starts.
func (s *Store) AppSecret(ctx context.Context, name string, size int, now time.Time) ([]byte, error) {
	var value []byte
	err := s.write.QueryRowContext(ctx, `SELECT value FROM app_secrets WHERE name = ?`, name).Scan(&value)
	if err == nil {
		return value, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("db: read app secret: %w", err)
	}
	fresh := make([]byte, size)
	rand.Read(fresh)
	if _, err := s.write.ExecContext(ctx,
		`INSERT INTO app_secrets (name, value, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING`,
		name, fresh, now.Unix()); err != nil {
		return nil, fmt.Errorf("db: create app secret: %w", err)
	}
	if err := s.write.QueryRowContext(ctx, `SELECT value FROM app_secrets WHERE name = ?`, name).Scan(&value); err != nil {
		return nil, fmt.Errorf("db: read app secret: %w", err)
	}
	return value, nil
}
