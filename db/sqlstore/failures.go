package sqlstore

import (
	"context"
	"fmt"
	"time"

	"doorman/db"
)

// RecordLoginFailure notes a failed password attempt for account (an
// opaque key the caller derives) in scope.
func (s *Store) RecordLoginFailure(ctx context.Context, account, scope, ip string, at time.Time) error {
	_, err := s.d.Writes().Exec(ctx, `INSERT INTO login_failures (account, scope, ip, at) VALUES (?, ?, ?, ?)`,
		account, scope, ip, at.Unix())
	return failed("record login failure", err)
}

// loginFailuresSQL counts account's failures in scope at or after a time,
// and finds the earliest; the prefix form counts every scope that starts
// with the one given.
const (
	loginFailuresSQL       = `SELECT COUNT(*), MIN(at) FROM login_failures WHERE account = ?1 AND scope = ?2 AND at >= ?3`
	loginFailuresPrefixSQL = `SELECT COUNT(*), MIN(at) FROM login_failures WHERE account = ?1 AND substr(scope, 1, length(?2)) = ?2 AND at >= ?3`
)

// LoginFailuresSince counts account's failures in scope at or after since,
// and returns the time of the earliest of them (zero when there are none).
func (s *Store) LoginFailuresSince(ctx context.Context, account, scope string, since time.Time) (int, time.Time, error) {
	var n int
	var first *int64
	if err := s.d.Reads().QueryRow(ctx, loginFailuresSQL, account, scope, since.Unix()).Scan(&n, &first); err != nil {
		return 0, time.Time{}, fmt.Errorf("db: login failures: %w", err)
	}
	return n, optionalTime(first), nil
}

// ClearLoginFailures forgets account's failures in the given scopes, or in
// every scope when none is given.
func (s *Store) ClearLoginFailures(ctx context.Context, account string, scopes ...string) error {
	q, args := `DELETE FROM login_failures WHERE account = ?`, []any{account}
	if len(scopes) > 0 {
		q += ` AND scope IN (` + placeholders(len(scopes)) + `)`
		for _, sc := range scopes {
			args = append(args, sc)
		}
	}
	_, err := s.d.Writes().Exec(ctx, q, args...)
	return failed("clear login failures", err)
}

// PruneLoginFailures deletes failures older than cutoff.
func (s *Store) PruneLoginFailures(ctx context.Context, cutoff time.Time) (int64, error) {
	n, err := s.d.Writes().Exec(ctx, `DELETE FROM login_failures WHERE at < ?`, cutoff.Unix())
	return n, failed("prune login failures", err)
}

// attemptLockClass is the class of the locks that serialise the
// reservations of one account (PostgreSQL: the first key of a two-key
// advisory lock, a space that never meets the one-key migration lock).
const attemptLockClass = 0x646f6f72 // "door"

// ReserveLoginAttempt records a before it is checked if every one of its
// limits has room, in one transaction that first locks the account:
// reservations for one account (every scope, so a limit over a group of
// scopes holds too) are serialised, and each count, read after the lock,
// sees every reservation committed before it. (SQLite's single writer
// serialises them anyway; PostgreSQL under READ COMMITTED would otherwise
// let two transactions count the same room.)
func (s *Store) ReserveLoginAttempt(ctx context.Context, a db.LoginAttempt) (db.Reservation, error) {
	var out db.Reservation
	err := s.d.Write(ctx, func(tx Q) error {
		if err := s.d.LockKey(ctx, tx, attemptLockClass, a.Account); err != nil {
			return err
		}
		for i, l := range a.Limits {
			q := loginFailuresSQL
			if l.Prefix {
				q = loginFailuresPrefixSQL
			}
			var n int
			var first *int64
			if err := tx.QueryRow(ctx, q, a.Account, l.Scope, a.Since.Unix()).Scan(&n, &first); err != nil {
				return err
			}
			if n >= l.Max {
				out = db.Reservation{Full: i, First: optionalTime(first)}
				return nil
			}
		}
		return tx.QueryRow(ctx, `INSERT INTO login_failures (account, scope, ip, at) VALUES (?, ?, ?, ?) RETURNING id`,
			a.Account, a.Scope, a.IP, a.At.Unix()).Scan(&out.ID)
	})
	if err != nil {
		return db.Reservation{}, fmt.Errorf("db: reserve login attempt: %w", err)
	}
	return out, nil
}

// ReleaseLoginAttempt forgets the reserved attempt id.
func (s *Store) ReleaseLoginAttempt(ctx context.Context, id int64) error {
	_, err := s.d.Writes().Exec(ctx, `DELETE FROM login_failures WHERE id = ?`, id)
	return failed("release login attempt", err)
}
