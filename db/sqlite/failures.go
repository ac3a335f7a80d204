package sqlite

import (
	"context"
	"fmt"
	"time"
)

// RecordLoginFailure notes a failed sign-in or re-authentication for email.
func (s *Store) RecordLoginFailure(ctx context.Context, email, ip string, at time.Time) error {
	if _, err := s.write.ExecContext(ctx, `INSERT INTO login_failures (email, ip, at) VALUES (?, ?, ?)`, email, ip, at.Unix()); err != nil {
		return fmt.Errorf("db: record login failure: %w", err)
	}
	return nil
}

// LoginFailuresSince counts email's failures at or after since, and returns
// the time of the earliest of them (zero when there are none).
func (s *Store) LoginFailuresSince(ctx context.Context, email string, since time.Time) (int, time.Time, error) {
	var n int
	var first *int64
	err := s.read.QueryRowContext(ctx, `SELECT COUNT(*), MIN(at) FROM login_failures WHERE email = ? AND at >= ?`,
		email, since.Unix()).Scan(&n, &first)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("db: login failures: %w", err)
	}
	if first == nil {
		return n, time.Time{}, nil
	}
	return n, time.Unix(*first, 0), nil
}

// ClearLoginFailures forgets email's failures after a successful sign-in.
func (s *Store) ClearLoginFailures(ctx context.Context, email string) error {
	if _, err := s.write.ExecContext(ctx, `DELETE FROM login_failures WHERE email = ?`, email); err != nil {
		return fmt.Errorf("db: clear login failures: %w", err)
	}
	return nil
}

// PruneLoginFailures deletes failures older than cutoff.
func (s *Store) PruneLoginFailures(ctx context.Context, cutoff time.Time) (int64, error) {
	res, err := s.write.ExecContext(ctx, `DELETE FROM login_failures WHERE at < ?`, cutoff.Unix())
	if err != nil {
		return 0, fmt.Errorf("db: prune login failures: %w", err)
	}
	return res.RowsAffected()
}
