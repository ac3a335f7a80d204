package sqlstore

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"doorman/db"
)

const userColumns = `id, email, password_hash, created_at, is_demo, disabled_at, epoch, email_verified_at, sign_in_alerts_off`

func scanUser(row Row) (db.User, error) {
	var u db.User
	var created int64
	var disabled, verified *int64
	if err := row.Scan(&u.ID, &u.Email, &u.PasswordHash, &created, &u.IsDemo, &disabled, &u.Epoch, &verified, &u.SignInAlertsOff); err != nil {
		return db.User{}, err
	}
	u.CreatedAt = time.Unix(created, 0)
	u.DisabledAt, u.EmailVerifiedAt = optionalTime(disabled), optionalTime(verified)
	return u, nil
}

// userIn reads the user inside tx (db.ErrNotFound if there is none).
func userIn(ctx context.Context, tx Q, id int64) (db.User, error) {
	u, err := scanUser(tx.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, id))
	return u, notFound(err)
}

// CreateUser inserts a user and queues mail (its verification mail), in one
// transaction: a mail's or link's UserID of 0 becomes the new user's id.
// The email must already be normalised by the caller; a duplicate returns
// db.ErrEmailTaken, a mail's duplicate Message-ID or link id
// db.ErrConflict (and no user is created).
func (s *Store) CreateUser(ctx context.Context, email, passwordHash string, isDemo bool, now time.Time, mail ...db.Mail) (db.User, error) {
	var u db.User
	err := s.d.Write(ctx, func(tx Q) error {
		var err error
		u, err = scanUser(tx.QueryRow(ctx, `INSERT INTO users (email, password_hash, created_at, is_demo)
			VALUES (?, ?, ?, ?) RETURNING `+userColumns, email, passwordHash, now.Unix(), isDemo))
		if s.d.IsUniqueViolation(err) {
			return db.ErrEmailTaken
		}
		if err != nil {
			return err
		}
		// The new row is this transaction's: its lock is held already.
		return s.queueIn(ctx, tx, u.ID, mail)
	})
	if err != nil {
		return db.User{}, failed("create user", err)
	}
	return u, nil
}

// UserByEmail returns the user with that (normalised) email, or db.ErrNotFound.
func (s *Store) UserByEmail(ctx context.Context, email string) (db.User, error) {
	u, err := scanUser(s.d.Reads().QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE email = ?`, email))
	if err != nil {
		return db.User{}, failed("user by email", notFound(err))
	}
	return u, nil
}

// UserByID returns the user with that id, or db.ErrNotFound.
func (s *Store) UserByID(ctx context.Context, id int64) (db.User, error) {
	u, err := userIn(ctx, s.d.Reads(), id)
	if err != nil {
		return db.User{}, failed("user by id", err)
	}
	return u, nil
}

// UserIDs returns the id of every user, in increasing order.
func (s *Store) UserIDs(ctx context.Context) ([]int64, error) {
	rows, err := s.d.Reads().Query(ctx, `SELECT id FROM users ORDER BY id`)
	ids, err := scanAll(rows, err, func(row Row) (int64, error) {
		var id int64
		return id, row.Scan(&id)
	})
	if err != nil {
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
// address in their history; db.ErrEmailTaken if another account has it. A
// new address is not verified (nothing proved it reaches the user); setting
// the same address again keeps its verification.
func (s *Store) UpdateEmail(ctx context.Context, userID int64, email string) error {
	err := s.updateUser(ctx, "update email", db.SecurityEvent{UserID: userID, Kind: db.EventEmailChanged, Detail: email},
		`UPDATE users SET email = ?1, email_verified_at = CASE WHEN email = ?1 THEN email_verified_at END WHERE id = ?2`, email, userID)
	if s.d.IsUniqueViolation(err) {
		return db.ErrEmailTaken
	}
	return err
}

// updateUser runs query (an UPDATE of e.UserID's row, which takes its lock
// first on PostgreSQL) and records e, at the store's clock, in one
// transaction; db.ErrNotFound if no row changed.
func (s *Store) updateUser(ctx context.Context, what string, e db.SecurityEvent, query string, args ...any) error {
	err := s.d.Write(ctx, func(tx Q) error {
		n, err := tx.Exec(ctx, query, args...)
		if err != nil {
			return err
		}
		if n == 0 {
			return db.ErrNotFound
		}
		e.At = s.now()
		return s.recordIn(ctx, tx, e)
	})
	return failed(what, err)
}

// SetUserDisabled disables (at now) or re-enables the user, and resets
// their sign-ins either way. Disabling also ends every live session and
// every live API token and OpenID Connect grant of theirs (owing each app
// they are connected to a logout of every session), in the same
// transaction, so no request can slip between them, and returns the
// sessions it ended. The user's
// row, locked by the UPDATE, comes first (see Lock order).
func (s *Store) SetUserDisabled(ctx context.Context, userID int64, disabled bool, now time.Time) ([]db.Session, error) {
	var ended []db.Session
	err := s.d.Write(ctx, func(tx Q) error {
		var at *int64
		if disabled {
			sec := now.Unix()
			at = &sec
		}
		n, err := tx.Exec(ctx, `UPDATE users SET disabled_at = ?, epoch = epoch + 1 WHERE id = ?`, at, userID)
		if err != nil {
			return err
		}
		if n == 0 {
			return db.ErrNotFound
		}
		if !disabled {
			return nil
		}
		if ended, err = s.revokeIn(ctx, tx, `user_id = ?4`, db.ReasonDisabled, "operator", now, userID); err != nil {
			return err
		}
		if _, err = s.revokeTokensIn(ctx, tx, `user_id = ?4`, db.ReasonDisabled, "operator", now, userID); err != nil {
			return err
		}
		return s.endUserGrantsIn(ctx, tx, userID, userID, db.ReasonDisabled, now)
	})
	if err != nil {
		return nil, failed("disable user", err)
	}
	s.notify(db.EndedEvents(ended))
	return ended, nil
}

// DeleteUser removes the user and every session row of theirs (each of
// their browsers is signed out on its next request), and their mails; the
// apps they signed in to are owed a logout of every session (kept under
// user 0, as the deleted account's subject). It
// returns the sessions that were alive at now. The user's row is locked
// first (PostgreSQL: FOR UPDATE), so a sign-in committing meanwhile is
// either ended here or refused. (Failed sign-ins are keyed by a hash the
// caller derives from the address; the caller clears them.)
func (s *Store) DeleteUser(ctx context.Context, userID int64, now time.Time) ([]db.Session, error) {
	var ended []db.Session
	err := s.d.Write(ctx, func(tx Q) error {
		if _, err := s.lockUser(ctx, tx, userID); err != nil {
			return err
		}
		// The apps the account signed in to are owed a logout of every
		// session (kept under user 0: about no account), before its rows
		// that say which apps those are go.
		if err := s.endUserGrantsIn(ctx, tx, userID, 0, db.ReasonDeleted, now); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE logout_deliveries SET user_id = 0 WHERE user_id = ?`, userID); err != nil {
			return err
		}
		deleted, err := scanSessions(tx.Query(ctx, `DELETE FROM sessions WHERE user_id = ? RETURNING `+sessionColumns, userID))
		if err != nil {
			return err
		}
		// Everything Doorman knows about the account goes, its mails too:
		// their addresses and subjects are about it.
		if _, err := tx.Exec(ctx, `DELETE FROM outbox WHERE user_id = ?`, userID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM users WHERE id = ?`, userID); err != nil {
			return err
		}
		ended = deletedAlive(deleted, now)
		return s.d.Announce(ctx, tx, s.origin, db.EndedEvents(ended))
	})
	if err != nil {
		return nil, failed("delete user", err)
	}
	s.notify(db.EndedEvents(ended))
	return ended, nil
}

const appSecretSQL = `SELECT value FROM app_secrets WHERE name = ?`

// AppSecret returns the application secret called name, creating it with
// size random bytes the first time. Keeping it in the database means every
// instance sharing the database uses the same key, and a restart does not
// change it.
//
// An existing secret is read without writing, so a store that cannot write
// (opened read-only, or a read-only replica: see ReadOnlyCause) still
// starts. Two instances creating it at once agree: the second insert does
// nothing, and both read back the first's.
func (s *Store) AppSecret(ctx context.Context, name string, size int, now time.Time) ([]byte, error) {
	var value []byte
	err := s.d.Reads().QueryRow(ctx, appSecretSQL, name).Scan(&value)
	if err == nil {
		return value, nil
	}
	if !errors.Is(err, ErrNoRows) {
		return nil, fmt.Errorf("db: read app secret: %w", err)
	}
	fresh := make([]byte, size)
	rand.Read(fresh) // never fails (it crashes the program instead)
	if _, err := s.d.Writes().Exec(ctx, `INSERT INTO app_secrets (name, value, created_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO NOTHING`, name, fresh, now.Unix()); err != nil {
		return nil, fmt.Errorf("db: create app secret: %w", err)
	}
	if err := s.d.Writes().QueryRow(ctx, appSecretSQL, name).Scan(&value); err != nil {
		return nil, fmt.Errorf("db: read app secret: %w", err)
	}
	return value, nil
}
