package postgres

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"doorman/db"
)

const userColumns = `id, email, password_hash, created_at, is_demo, disabled_at, epoch, email_verified_at, sign_in_alerts_off`

func scanUser(row pgx.Row) (db.User, error) {
	var u db.User
	var created int64
	var disabled, verified *int64
	err := row.Scan(&u.ID, &u.Email, &u.PasswordHash, &created, &u.IsDemo, &disabled, &u.Epoch, &verified, &u.SignInAlertsOff)
	u.CreatedAt = time.Unix(created, 0)
	u.DisabledAt, u.EmailVerifiedAt = optionalTime(disabled), optionalTime(verified)
	return u, err
}

// optionalTime reads a nullable time column: NULL is the zero time.
func optionalTime(at *int64) time.Time {
	if at == nil {
		return time.Time{}
	}
	return time.Unix(*at, 0)
}

func randomBytes(n int) ([]byte, error) {
	b := make([]byte, n)
	_, err := rand.Read(b)
	return b, err
}

// CreateUser inserts a user and queues mail (a UserID of 0 in a mail or
// its links is the new user's), in one transaction; a duplicate email
// returns ErrEmailTaken, a duplicate Message-ID or link id ErrConflict.
func (s *Store) CreateUser(ctx context.Context, email, passwordHash string, isDemo bool, now time.Time, mail ...db.Mail) (db.User, error) {
	var u db.User
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		u, err = scanUser(tx.QueryRow(ctx, `INSERT INTO users (email, password_hash, created_at, is_demo)
			VALUES ($1, $2, $3, $4) RETURNING `+userColumns, email, passwordHash, now.Unix(), isDemo))
		if isUniqueViolation(err) {
			return db.ErrEmailTaken
		}
		if err != nil {
			return err
		}
		// The new row is this transaction's: its lock is held already.
		return s.queueIn(ctx, tx, u.ID, mail)
	})
	if errors.Is(err, db.ErrEmailTaken) || errors.Is(err, db.ErrConflict) || errors.Is(err, db.ErrNotFound) {
		return db.User{}, err
	}
	if err != nil {
		return db.User{}, fmt.Errorf("db: create user: %w", err)
	}
	return u, nil
}

// UserByEmail returns the user with that (normalised) email, or ErrNotFound.
func (s *Store) UserByEmail(ctx context.Context, email string) (db.User, error) {
	return s.userWhere(ctx, "user by email", `email = $1`, email)
}

// UserByID returns the user with that id, or ErrNotFound.
func (s *Store) UserByID(ctx context.Context, id int64) (db.User, error) {
	return s.userWhere(ctx, "user by id", `id = $1`, id)
}

// UserIDs returns the id of every user, in increasing order.
func (s *Store) UserIDs(ctx context.Context) ([]int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT id FROM users ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("db: user ids: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("db: user ids: %w", err)
	}
	return ids, nil
}

func (s *Store) userWhere(ctx context.Context, what, where string, arg any) (db.User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE `+where, arg))
	if errors.Is(err, pgx.ErrNoRows) {
		return db.User{}, db.ErrNotFound
	}
	if err != nil {
		return db.User{}, fmt.Errorf("db: %s: %w", what, err)
	}
	return u, nil
}

// UpdatePassword replaces the user's password hash and records the change
// in their history (at the store's clock: the method takes no time).
func (s *Store) UpdatePassword(ctx context.Context, userID int64, hash string) error {
	return s.updateUser(ctx, "update password", db.SecurityEvent{UserID: userID, Kind: db.EventPasswordChanged},
		`UPDATE users SET password_hash = $1 WHERE id = $2`, hash, userID)
}

// UpdateEmail changes the user's email and records the new address in
// their history; ErrEmailTaken if another has it. A new address is not
// verified (nothing proved it reaches the user); setting the same address
// again keeps its verification.
func (s *Store) UpdateEmail(ctx context.Context, userID int64, email string) error {
	err := s.updateUser(ctx, "update email", db.SecurityEvent{UserID: userID, Kind: db.EventEmailChanged, Detail: email},
		`UPDATE users SET email = $1, email_verified_at = CASE WHEN email = $1 THEN email_verified_at END WHERE id = $2`, email, userID)
	if isUniqueViolation(err) {
		return db.ErrEmailTaken
	}
	return err
}

// updateUser runs query (an UPDATE of e.UserID's row, which locks it first)
// and records e, at the store's clock, in one transaction; ErrNotFound if
// no row changed.
func (s *Store) updateUser(ctx context.Context, what string, e db.SecurityEvent, query string, args ...any) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, query, args...)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return db.ErrNotFound
		}
		e.At = s.now()
		return recordIn(ctx, tx, e)
	})
	if errors.Is(err, db.ErrNotFound) {
		return err
	}
	if err != nil {
		return fmt.Errorf("db: %s: %w", what, err)
	}
	return nil
}

// SetUserDisabled disables (at now) or re-enables the user. Disabling also
// resets their sign-ins and ends every live session and every live API
// token, in one transaction (the user's row, locked by the UPDATE, comes
// first: see the Lock order in tokens.go); it returns the sessions ended.
func (s *Store) SetUserDisabled(ctx context.Context, userID int64, disabled bool, now time.Time) ([]db.Session, error) {
	var ended []db.Session
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var at any
		if disabled {
			at = now.Unix()
		}
		tag, err := tx.Exec(ctx, `UPDATE users SET disabled_at = $1, epoch = epoch + 1 WHERE id = $2`, at, userID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return db.ErrNotFound
		}
		if !disabled {
			return nil
		}
		if ended, err = s.revokeIn(ctx, tx, `user_id = $4`, db.ReasonDisabled, "operator", now, userID); err != nil {
			return err
		}
		_, err = revokeTokensIn(ctx, tx, `user_id = $4`, db.ReasonDisabled, "operator", now, userID)
		return err
	})
	if errors.Is(err, db.ErrNotFound) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("db: disable user: %w", err)
	}
	s.notify(db.EndedEvents(ended))
	return ended, nil
}

// DeleteUser removes the user and every session row of theirs, and returns
// the sessions that were alive at now. The user's row is locked first, so a
// sign-in committing meanwhile is either ended here or refused.
func (s *Store) DeleteUser(ctx context.Context, userID int64, now time.Time) ([]db.Session, error) {
	var deleted []db.Session
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var one int
		if err := tx.QueryRow(ctx, `SELECT 1 FROM users WHERE id = $1 FOR UPDATE`, userID).Scan(&one); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return db.ErrNotFound
			}
			return err
		}
		var err error
		if deleted, err = scanSessions(tx.Query(ctx, `DELETE FROM sessions WHERE user_id = $1 RETURNING `+sessionColumns, userID)); err != nil {
			return err
		}
		// Everything Doorman knows about the account goes, its mails too:
		// their addresses and subjects are about it.
		if _, err = tx.Exec(ctx, `DELETE FROM outbox WHERE user_id = $1`, userID); err != nil {
			return err
		}
		if _, err = tx.Exec(ctx, `DELETE FROM users WHERE id = $1`, userID); err != nil {
			return err
		}
		deleted = deletedAlive(deleted, now)
		return s.notifyIn(ctx, tx, db.EndedEvents(deleted))
	})
	if errors.Is(err, db.ErrNotFound) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("db: delete user: %w", err)
	}
	ended := deleted
	s.notify(db.EndedEvents(ended))
	return ended, nil
}
