package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"doorman/db"
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

// attemptLockClass is the first key of the transaction-level advisory
// locks that serialise the reservations of one account (the second is a
// hash of the account key). The two-key space never meets the one-key
// migration lock.
const attemptLockClass = 0x646f6f72 // "door"

// ReserveLoginAttempt records a before it is checked if every one of its
// limits has room, in one transaction that first takes an advisory lock on
// the account: reservations for one account (every scope, so a limit over
// a group of scopes holds too) are serialised, and each count, read after
// the lock, sees every reservation committed before it. Without the lock,
// two transactions under READ COMMITTED would each count the same room.
func (s *Store) ReserveLoginAttempt(ctx context.Context, a db.LoginAttempt) (db.Reservation, error) {
	var out db.Reservation
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, int32(attemptLockClass), a.Account); err != nil {
			return err
		}
		for i, l := range a.Limits {
			q := `SELECT COUNT(*), MIN(at) FROM login_failures WHERE account = $1 AND scope = $2 AND at >= $3`
			if l.Prefix {
				q = `SELECT COUNT(*), MIN(at) FROM login_failures WHERE account = $1 AND starts_with(scope, $2) AND at >= $3`
			}
			var n int
			var first *int64
			if err := tx.QueryRow(ctx, q, a.Account, l.Scope, a.Since.Unix()).Scan(&n, &first); err != nil {
				return err
			}
			if n >= l.Max {
				out.Full = i
				if first != nil {
					out.First = time.Unix(*first, 0)
				}
				return nil
			}
		}
		return tx.QueryRow(ctx, `INSERT INTO login_failures (account, scope, ip, at) VALUES ($1, $2, $3, $4) RETURNING id`,
			a.Account, a.Scope, a.IP, a.At.Unix()).Scan(&out.ID)
	})
	if err != nil {
		return db.Reservation{}, fmt.Errorf("db: reserve login attempt: %w", err)
	}
	return out, nil
}

// ReleaseLoginAttempt forgets the reserved attempt id.
func (s *Store) ReleaseLoginAttempt(ctx context.Context, id int64) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM login_failures WHERE id = $1`, id); err != nil {
		return fmt.Errorf("db: release login attempt: %w", err)
	}
	return nil
}
