package postgres

import (
	"context"
	"fmt"
	"time"
)

// RecordLoginFailure notes a failed password attempt for account in scope.
func (s *Store) RecordLoginFailure(ctx context.Context, account, scope, ip string, at time.Time) error {
	if _, err := s.pool.Exec(ctx, `INSERT INTO login_failures (account, scope, ip, at) VALUES ($1, $2, $3, $4)`,
		account, scope, ip, at.Unix()); err != nil {
		return fmt.Errorf("db: record login failure: %w", err)
	}
	return nil
}

// LoginFailuresSince counts account's failures in scope at or after since,
// and the time of the earliest (zero when none).
func (s *Store) LoginFailuresSince(ctx context.Context, account, scope string, since time.Time) (int, time.Time, error) {
	var n int
	var first *int64
	if err := s.pool.QueryRow(ctx, `SELECT COUNT(*), MIN(at) FROM login_failures WHERE account = $1 AND scope = $2 AND at >= $3`,
		account, scope, since.Unix()).Scan(&n, &first); err != nil {
		return 0, time.Time{}, fmt.Errorf("db: login failures: %w", err)
	}
	if first == nil {
		return n, time.Time{}, nil
	}
	return n, time.Unix(*first, 0), nil
}

// ClearLoginFailures forgets account's failures in scopes, or in every
// scope when none is given.
func (s *Store) ClearLoginFailures(ctx context.Context, account string, scopes ...string) error {
	var err error
	if len(scopes) == 0 {
		_, err = s.pool.Exec(ctx, `DELETE FROM login_failures WHERE account = $1`, account)
	} else {
		_, err = s.pool.Exec(ctx, `DELETE FROM login_failures WHERE account = $1 AND scope = ANY($2)`, account, scopes)
	}
	if err != nil {
		return fmt.Errorf("db: clear login failures: %w", err)
	}
	return nil
}

// PruneLoginFailures deletes failures older than cutoff.
func (s *Store) PruneLoginFailures(ctx context.Context, cutoff time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM login_failures WHERE at < $1`, cutoff.Unix())
	if err != nil {
		return 0, fmt.Errorf("db: prune login failures: %w", err)
	}
	return tag.RowsAffected(), nil
}
