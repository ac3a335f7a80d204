package sqlite

import (
	"context"
	"fmt"
	"strings"
	"time"

	"doorman/db"
)

// RecordLoginFailure notes a failed password attempt for account (an
// opaque key the caller derives) in scope.
func (s *Store) RecordLoginFailure(ctx context.Context, account, scope, ip string, at time.Time) error {
	if _, err := s.write.ExecContext(ctx, `INSERT INTO login_failures (account, scope, ip, at) VALUES (?, ?, ?, ?)`,
		account, scope, ip, at.Unix()); err != nil {
		return fmt.Errorf("db: record login failure: %w", err)
	}
	return nil
}

// LoginFailuresSince counts account's failures in scope at or after since,
// and returns the time of the earliest of them (zero when there are none).
func (s *Store) LoginFailuresSince(ctx context.Context, account, scope string, since time.Time) (int, time.Time, error) {
	var n int
	var first *int64
	err := s.read.QueryRowContext(ctx, `SELECT COUNT(*), MIN(at) FROM login_failures WHERE account = ? AND scope = ? AND at >= ?`,
		account, scope, since.Unix()).Scan(&n, &first)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("db: login failures: %w", err)
	}
	if first == nil {
		return n, time.Time{}, nil
	}
	return n, time.Unix(*first, 0), nil
}

// ClearLoginFailures forgets account's failures in the given scopes, or in
// every scope when none is given.
func (s *Store) ClearLoginFailures(ctx context.Context, account string, scopes ...string) error {
	q, args := `DELETE FROM login_failures WHERE account = ?`, []any{account}
	if len(scopes) > 0 {
		q += ` AND scope IN (?` + strings.Repeat(`, ?`, len(scopes)-1) + `)`
		for _, sc := range scopes {
			args = append(args, sc)
		}
	}
	if _, err := s.write.ExecContext(ctx, q, args...); err != nil {
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

// ReserveLoginAttempt records a before it is checked if every one of its
// limits has room, in one transaction. The store's single writer connection
// and _txlock=immediate (the write lock taken at BEGIN) serialise it against
// every other reservation: no two can count the same room.
func (s *Store) ReserveLoginAttempt(ctx context.Context, a db.LoginAttempt) (db.Reservation, error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return db.Reservation{}, fmt.Errorf("db: reserve login attempt: %w", err)
	}
	defer tx.Rollback()
	for i, l := range a.Limits {
		q, args := `SELECT COUNT(*), MIN(at) FROM login_failures WHERE account = ? AND scope = ? AND at >= ?`, []any{a.Account, l.Scope, a.Since.Unix()}
		if l.Prefix {
			q, args = `SELECT COUNT(*), MIN(at) FROM login_failures WHERE account = ? AND substr(scope, 1, ?) = ? AND at >= ?`,
				[]any{a.Account, len(l.Scope), l.Scope, a.Since.Unix()}
		}
		var n int
		var first *int64
		if err := tx.QueryRowContext(ctx, q, args...).Scan(&n, &first); err != nil {
			return db.Reservation{}, fmt.Errorf("db: reserve login attempt: %w", err)
		}
		if n >= l.Max {
			r := db.Reservation{Full: i}
			if first != nil {
				r.First = time.Unix(*first, 0)
			}
			return r, nil
		}
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO login_failures (account, scope, ip, at) VALUES (?, ?, ?, ?)`,
		a.Account, a.Scope, a.IP, a.At.Unix())
	if err != nil {
		return db.Reservation{}, fmt.Errorf("db: reserve login attempt: %w", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return db.Reservation{}, fmt.Errorf("db: reserve login attempt: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return db.Reservation{}, fmt.Errorf("db: reserve login attempt: %w", err)
	}
	return db.Reservation{ID: id}, nil
}

// ReleaseLoginAttempt forgets the reserved attempt id.
func (s *Store) ReleaseLoginAttempt(ctx context.Context, id int64) error {
	if _, err := s.write.ExecContext(ctx, `DELETE FROM login_failures WHERE id = ?`, id); err != nil {
		return fmt.Errorf("db: release login attempt: %w", err)
	}
	return nil
}
