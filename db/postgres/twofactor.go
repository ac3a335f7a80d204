package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"doorman/db"
)

// Lock order. A transaction here that writes two-factor rows and then
// inserts recovery codes (whose foreign key check takes a KEY SHARE lock on
// the user's row) first takes that lock itself: DeleteUser locks the user's
// row and then, by cascade, the two-factor rows, so taking them the other
// way round could deadlock with it. The same holds for every write that
// records a security event (security_events references users): the user's
// row comes first. CompletePendingSignIn locks the user's
// row (FOR UPDATE, as CreateSession does) before the pending sign-in, for
// the same reason.

// TwoFactor returns the user's two-factor state, pending or enabled, with
// the number of unused recovery codes; ErrNotFound when there is none.
func (s *Store) TwoFactor(ctx context.Context, userID int64) (db.TwoFactor, error) {
	t, err := scanTwoFactor(s.pool.QueryRow(ctx, twoFactorSQL, userID))
	if err != nil && !errors.Is(err, db.ErrNotFound) {
		return db.TwoFactor{}, fmt.Errorf("db: two-factor: %w", err)
	}
	return t, err
}

// twoFactorSQL reads the two-factor state of user $1.
const twoFactorSQL = `SELECT user_id, secret_sealed, enabled_at, last_step,
	(SELECT COUNT(*) FROM recovery_codes r WHERE r.user_id = t.user_id AND r.used_at IS NULL), unverified_address
	FROM two_factor t WHERE user_id = $1`

// scanTwoFactor reads the row of twoFactorSQL; db.ErrNotFound when there is
// none.
func scanTwoFactor(row pgx.Row) (db.TwoFactor, error) {
	var t db.TwoFactor
	var enabled *int64
	err := row.Scan(&t.UserID, &t.SecretSealed, &enabled, &t.LastStep, &t.RecoveryLeft, &t.UnverifiedAddress)
	if errors.Is(err, pgx.ErrNoRows) {
		return db.TwoFactor{}, db.ErrNotFound
	}
	if err != nil {
		return db.TwoFactor{}, err
	}
	if enabled != nil {
		t.EnabledAt = time.Unix(*enabled, 0)
	}
	return t, nil
}

// StartTwoFactor records a pending setup with the sealed secret, replacing
// an earlier pending one. One statement: the upsert leaves an enabled row
// alone (its WHERE), so a setup started elsewhere can never replace the
// secret the user's authenticator app already holds (ErrTwoFactorEnabled).
func (s *Store) StartTwoFactor(ctx context.Context, userID int64, secretSealed string, now time.Time) error {
	tag, err := s.pool.Exec(ctx, `INSERT INTO two_factor (user_id, secret_sealed, created_at, enabled_at, last_step)
		VALUES ($1, $2, $3, NULL, 0)
		ON CONFLICT (user_id) DO UPDATE SET secret_sealed = excluded.secret_sealed, created_at = excluded.created_at, last_step = 0
		WHERE two_factor.enabled_at IS NULL`, userID, secretSealed, now.Unix())
	if isForeignKeyViolation(err) {
		return db.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("db: start two-factor: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return db.ErrTwoFactorEnabled
	}
	return nil
}

// EnableTwoFactor confirms the pending setup (enabled at now, step as the
// last accepted one, and whether the user's address is verified now) and
// makes recoveryHashes the only recovery codes, in one transaction. ErrNotFound without a pending setup; ErrTwoFactorEnabled
// if it is already on. mail is queued in the same transaction.
func (s *Store) EnableTwoFactor(ctx context.Context, userID int64, secretSealed string, step int64, recoveryHashes [][]byte, now time.Time, mail ...db.Mail) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := lockUserKey(ctx, tx, userID); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE two_factor SET enabled_at = $1, last_step = $2,
			unverified_address = (SELECT email_verified_at IS NULL FROM users WHERE id = two_factor.user_id)
			WHERE user_id = $3 AND enabled_at IS NULL AND secret_sealed = $4`, now.Unix(), step, userID, secretSealed)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			var on bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM two_factor WHERE user_id = $1 AND enabled_at IS NOT NULL)`, userID).Scan(&on); err != nil {
				return err
			}
			if on {
				return db.ErrTwoFactorEnabled
			}
			return db.ErrNotFound
		}
		if err := replaceRecoveryCodesIn(ctx, tx, userID, recoveryHashes, now); err != nil {
			return err
		}
		if err := recordIn(ctx, tx, db.SecurityEvent{UserID: userID, Kind: db.EventTwoFactorOn, At: now}); err != nil {
			return err
		}
		return s.queueIn(ctx, tx, 0, mail)
	})
	if errors.Is(err, db.ErrNotFound) || errors.Is(err, db.ErrTwoFactorEnabled) || errors.Is(err, db.ErrConflict) {
		return err
	}
	if err != nil {
		return fmt.Errorf("db: enable two-factor: %w", err)
	}
	return nil
}

// lockUserKey takes, in tx, the KEY SHARE lock on the user's row that a
// recovery code's foreign key check would take later (see Lock order);
// ErrNotFound if there is no such user.
func lockUserKey(ctx context.Context, tx pgx.Tx, userID int64) error {
	var one int
	err := tx.QueryRow(ctx, `SELECT 1 FROM users WHERE id = $1 FOR KEY SHARE`, userID).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return db.ErrNotFound
	}
	return err
}

// replaceRecoveryCodesIn makes hashes the user's only recovery codes, in tx.
func replaceRecoveryCodesIn(ctx context.Context, tx pgx.Tx, userID int64, hashes [][]byte, now time.Time) error {
	if _, err := tx.Exec(ctx, `DELETE FROM recovery_codes WHERE user_id = $1`, userID); err != nil {
		return err
	}
	if len(hashes) == 0 {
		return nil
	}
	_, err := tx.Exec(ctx, `INSERT INTO recovery_codes (user_id, code_hash, created_at)
		SELECT $1, h, $3 FROM unnest($2::bytea[]) AS h`, userID, hashes, now.Unix())
	return err
}

// DisableTwoFactor removes the user's two-factor state and recovery codes,
// in one transaction (no error when there was none). Turning off two-factor
// that was on is recorded in the user's history (at the store's clock: the
// method takes no time); removing a setup never confirmed, or nothing, is
// not: two-factor was not on. mail (the notice that it was turned off) is
// queued likewise only when it was on. Locks: the user's row first (KEY
// SHARE, which the history row needs; see Lock order), then the two_factor
// row: ReplaceRecoveryCodes takes the same two before touching the codes.
func (s *Store) DisableTwoFactor(ctx context.Context, userID int64, mail ...db.Mail) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := lockUserKey(ctx, tx, userID); err != nil {
			return err
		}
		var wasOn bool
		err := tx.QueryRow(ctx, `DELETE FROM two_factor WHERE user_id = $1 RETURNING enabled_at IS NOT NULL`, userID).Scan(&wasOn)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM recovery_codes WHERE user_id = $1`, userID); err != nil {
			return err
		}
		if !wasOn {
			return nil
		}
		if err := recordIn(ctx, tx, db.SecurityEvent{UserID: userID, Kind: db.EventTwoFactorOff, At: s.now()}); err != nil {
			return err
		}
		return s.queueIn(ctx, tx, 0, mail)
	})
	if errors.Is(err, db.ErrNotFound) {
		return nil // no such user: there was nothing to turn off
	}
	if errors.Is(err, db.ErrConflict) {
		return err
	}
	if err != nil {
		return fmt.Errorf("db: disable two-factor: %w", err)
	}
	return nil
}

// AcceptTOTPStep records step as used if two-factor is enabled and step is
// later than the last accepted one. The check and the write are one
// conditional UPDATE: of two instances checking the same code at once, the
// second waits for the first's row lock, then re-checks the WHERE against
// the committed row and changes nothing. A code is accepted once.
func (s *Store) AcceptTOTPStep(ctx context.Context, userID int64, step int64) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE two_factor SET last_step = $1
		WHERE user_id = $2 AND enabled_at IS NOT NULL AND last_step < $1`, step, userID)
	if err != nil {
		return false, fmt.Errorf("db: accept totp step: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// UseRecoveryCode marks the user's unused code stored as one of hashes
// (one typed code's forms; a user's codes are replaced as a set, so at most
// one is stored) as used at now and counts the unused ones left, in one
// transaction. The UPDATE is conditional on used_at IS NULL, so a code
// works once however many requests race to use it; ok is false (nothing
// changes) when no unused code has any of them. mail is queued only when a code was used, in the same
// transaction; with mail the user's row is locked first (KEY SHARE: a
// mail's links reference it, see Lock order).
func (s *Store) UseRecoveryCode(ctx context.Context, userID int64, hashes [][]byte, now time.Time, mail ...db.Mail) (left int, ok bool, err error) {
	if len(hashes) == 0 {
		return 0, false, errors.New("db: use recovery code: no hash")
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if len(mail) > 0 {
			if err := lockUserKey(ctx, tx, userID); err != nil {
				return err
			}
		}
		tag, err := tx.Exec(ctx, `UPDATE recovery_codes SET used_at = $1
			WHERE user_id = $2 AND code_hash = ANY($3) AND used_at IS NULL`, now.Unix(), userID, hashes)
		if err != nil {
			return err
		}
		ok = tag.RowsAffected() > 0
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL`, userID).Scan(&left); err != nil {
			return err
		}
		if !ok {
			return nil
		}
		return s.queueIn(ctx, tx, 0, mail)
	})
	if errors.Is(err, db.ErrNotFound) {
		return 0, false, nil // no such user: no code of theirs
	}
	if errors.Is(err, db.ErrConflict) {
		return 0, false, err
	}
	if err != nil {
		return 0, false, fmt.Errorf("db: use recovery code: %w", err)
	}
	return left, ok, nil
}

// ReplaceRecoveryCodes makes hashes the user's only recovery codes, in one
// transaction; ErrNotFound (nothing changes) unless two-factor is enabled.
// The two_factor row is locked while the codes are replaced, so a
// DisableTwoFactor committing meanwhile cannot leave new codes behind it.
func (s *Store) ReplaceRecoveryCodes(ctx context.Context, userID int64, hashes [][]byte, now time.Time) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := lockUserKey(ctx, tx, userID); err != nil {
			return err
		}
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM two_factor WHERE user_id = $1 AND enabled_at IS NOT NULL FOR UPDATE`, userID).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return db.ErrNotFound
		}
		if err != nil {
			return err
		}
		return replaceRecoveryCodesIn(ctx, tx, userID, hashes, now)
	})
	if errors.Is(err, db.ErrNotFound) {
		return err
	}
	if err != nil {
		return fmt.Errorf("db: replace recovery codes: %w", err)
	}
	return nil
}

const pendingSignInColumns = `id, secret_hash, user_id, epoch, created_at, expires_at, failures`

func scanPendingSignIn(row pgx.Row) (db.PendingSignIn, error) {
	var p db.PendingSignIn
	var created, expires int64
	if err := row.Scan(&p.ID, &p.SecretHash, &p.UserID, &p.Epoch, &created, &expires, &p.Failures); err != nil {
		return db.PendingSignIn{}, err
	}
	p.CreatedAt, p.ExpiresAt = time.Unix(created, 0), time.Unix(expires, 0)
	return p, nil
}

// CreatePendingSignIn stores a pending sign-in; ErrNotFound if its user
// does not exist.
func (s *Store) CreatePendingSignIn(ctx context.Context, p db.PendingSignIn) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO pending_sign_ins (`+pendingSignInColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		p.ID, p.SecretHash, p.UserID, p.Epoch, p.CreatedAt.Unix(), p.ExpiresAt.Unix(), p.Failures)
	if isForeignKeyViolation(err) {
		return db.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("db: create pending sign-in: %w", err)
	}
	return nil
}

// PendingSignIn returns the pending sign-in with that id, expired or not
// (the caller judges expiry and verifies the secret), or ErrNotFound.
func (s *Store) PendingSignIn(ctx context.Context, id string) (db.PendingSignIn, error) {
	p, err := scanPendingSignIn(s.pool.QueryRow(ctx, `SELECT `+pendingSignInColumns+` FROM pending_sign_ins WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return db.PendingSignIn{}, db.ErrNotFound
	}
	if err != nil {
		return db.PendingSignIn{}, fmt.Errorf("db: pending sign-in: %w", err)
	}
	return p, nil
}

// FailPendingSignIn counts a wrong code against the pending sign-in and
// returns its failures so far. At limit or more it is deleted in the same
// transaction: guessing codes ends at the limit, and the password must be
// entered again. ErrNotFound if it is gone.
func (s *Store) FailPendingSignIn(ctx context.Context, id string, limit int) (int, error) {
	var failures int
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `UPDATE pending_sign_ins SET failures = failures + 1 WHERE id = $1 RETURNING failures`, id).Scan(&failures)
		if errors.Is(err, pgx.ErrNoRows) {
			return db.ErrNotFound
		}
		if err != nil || failures < limit {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM pending_sign_ins WHERE id = $1`, id)
		return err
	})
	if errors.Is(err, db.ErrNotFound) {
		return 0, err
	}
	if err != nil {
		return 0, fmt.Errorf("db: fail pending sign-in: %w", err)
	}
	return failures, nil
}

// CompletePendingSignIn, in one transaction, deletes the pending sign-in id
// (it must be sess.UserID's and unexpired at sess.CreatedAt) and creates
// session sess exactly as CreateSession does, with the epoch the pending
// sign-in recorded. Deleting first redeems it once: a second completion,
// waiting on the row, then finds it gone (ErrNotFound). Any refusal
// (ErrSignInsReset: the user reset their sign-ins or was disabled since the
// password was checked) rolls everything back. mail is queued in the same
// transaction.
func (s *Store) CompletePendingSignIn(ctx context.Context, id string, sess db.Session, maxPerUser int, mail ...db.Mail) ([]db.Session, error) {
	var evicted []db.Session
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// The user's row before the pending one (see Lock order).
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM users WHERE id = $1 FOR UPDATE`, sess.UserID).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return db.ErrNotFound
		}
		if err != nil {
			return err
		}
		var epoch int64
		err = tx.QueryRow(ctx, `DELETE FROM pending_sign_ins WHERE id = $1 AND user_id = $2 AND expires_at > $3 RETURNING epoch`,
			id, sess.UserID, sess.CreatedAt.Unix()).Scan(&epoch)
		if errors.Is(err, pgx.ErrNoRows) {
			return db.ErrNotFound
		}
		if err != nil {
			return err
		}
		evicted, err = s.createSessionIn(ctx, tx, sess, maxPerUser, epoch, mail)
		return err
	})
	if errors.Is(err, db.ErrNotFound) || errors.Is(err, db.ErrSignInsReset) || errors.Is(err, db.ErrConflict) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("db: complete pending sign-in: %w", err)
	}
	s.notifyCreated(sess, evicted)
	return evicted, nil
}

// DeletePendingSignIn removes a pending sign-in (no error if it is gone).
func (s *Store) DeletePendingSignIn(ctx context.Context, id string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM pending_sign_ins WHERE id = $1`, id); err != nil {
		return fmt.Errorf("db: delete pending sign-in: %w", err)
	}
	return nil
}

// PrunePendingSignIns deletes pending sign-ins expired before cutoff.
func (s *Store) PrunePendingSignIns(ctx context.Context, cutoff time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM pending_sign_ins WHERE expires_at < $1`, cutoff.Unix())
	if err != nil {
		return 0, fmt.Errorf("db: prune pending sign-ins: %w", err)
	}
	return tag.RowsAffected(), nil
}

// isForeignKeyViolation reports whether err is PostgreSQL's
// foreign_key_violation (a row for a user that does not exist).
func isForeignKeyViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23503"
}
