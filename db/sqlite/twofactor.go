package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"doorman/db"
)

// TwoFactor returns the user's two-factor state, pending or enabled, with
// the number of unused recovery codes; db.ErrNotFound when there is none.
// twoFactorSQL reads a user's two-factor state (every sign-in and Security
// page runs it: prepared once).
const twoFactorSQL = `SELECT user_id, secret_sealed, enabled_at, last_step,
	(SELECT COUNT(*) FROM recovery_codes r WHERE r.user_id = t.user_id AND r.used_at IS NULL), unverified_address
	FROM two_factor t WHERE user_id = ?`

func (s *Store) TwoFactor(ctx context.Context, userID int64) (db.TwoFactor, error) {
	var t db.TwoFactor
	var enabled sql.NullInt64
	err := s.twoFactor.QueryRowContext(hot(ctx), userID).Scan(&t.UserID, &t.SecretSealed, &enabled, &t.LastStep, &t.RecoveryLeft, &t.UnverifiedAddress)
	if errors.Is(err, sql.ErrNoRows) {
		return db.TwoFactor{}, db.ErrNotFound
	}
	if err != nil {
		return db.TwoFactor{}, fmt.Errorf("db: two-factor: %w", err)
	}
	if enabled.Valid {
		t.EnabledAt = time.Unix(enabled.Int64, 0)
	}
	return t, nil
}

// StartTwoFactor records a pending setup with the sealed secret, replacing
// an earlier pending one. One statement: the upsert leaves an enabled row
// alone (its WHERE), so a setup started in another tab can never replace the
// secret the user's authenticator app already holds (db.ErrTwoFactorEnabled).
func (s *Store) StartTwoFactor(ctx context.Context, userID int64, secretSealed string, now time.Time) error {
	res, err := s.write.ExecContext(ctx, `INSERT INTO two_factor (user_id, secret_sealed, created_at, enabled_at, last_step)
		VALUES (?, ?, ?, NULL, 0)
		ON CONFLICT (user_id) DO UPDATE SET secret_sealed = excluded.secret_sealed, created_at = excluded.created_at, last_step = 0
		WHERE two_factor.enabled_at IS NULL`, userID, secretSealed, now.Unix())
	if isForeignKeyViolation(err) {
		return db.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("db: start two-factor: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return db.ErrTwoFactorEnabled
	}
	return nil
}

// EnableTwoFactor confirms the pending setup (enabled at now, step as the
// last accepted one, and whether the user's address is verified now) and
// makes recoveryHashes the only recovery codes, in one transaction, with
// mail queued in it. db.ErrNotFound without a pending
// setup; db.ErrTwoFactorEnabled if it is already on (nothing is queued).
func (s *Store) EnableTwoFactor(ctx context.Context, userID int64, secretSealed string, step int64, recoveryHashes [][]byte, now time.Time, mail ...db.Mail) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("db: enable two-factor: %w", err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE two_factor SET enabled_at = ?, last_step = ?,
		unverified_address = (SELECT email_verified_at IS NULL FROM users WHERE id = two_factor.user_id)
		WHERE user_id = ? AND enabled_at IS NULL AND secret_sealed = ?`, now.Unix(), step, userID, secretSealed)
	if err != nil {
		return fmt.Errorf("db: enable two-factor: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		var on bool
		err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM two_factor WHERE user_id = ? AND enabled_at IS NOT NULL)`, userID).Scan(&on)
		if err != nil {
			return fmt.Errorf("db: enable two-factor: %w", err)
		}
		if on {
			return db.ErrTwoFactorEnabled
		}
		return db.ErrNotFound
	}
	if err := replaceRecoveryCodesIn(ctx, tx, userID, recoveryHashes, now); err != nil {
		return fmt.Errorf("db: enable two-factor: %w", err)
	}
	if err := recordIn(ctx, tx, db.SecurityEvent{UserID: userID, Kind: db.EventTwoFactorOn, At: now}); err != nil {
		return fmt.Errorf("db: enable two-factor: %w", err)
	}
	if err := queueMailIn(ctx, tx, mail...); err != nil {
		return failed("enable two-factor", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("db: enable two-factor: %w", err)
	}
	return nil
}

// replaceRecoveryCodesIn makes hashes the user's only recovery codes, in tx.
func replaceRecoveryCodesIn(ctx context.Context, tx *sql.Tx, userID int64, hashes [][]byte, now time.Time) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM recovery_codes WHERE user_id = ?`, userID); err != nil {
		return err
	}
	if len(hashes) == 0 {
		return nil
	}
	st, err := tx.PrepareContext(ctx, `INSERT INTO recovery_codes (user_id, code_hash, created_at) VALUES (?, ?, ?)`)
	if err != nil {
		return err
	}
	defer st.Close()
	for _, h := range hashes {
		if _, err := st.ExecContext(ctx, userID, h, now.Unix()); err != nil {
			return err
		}
	}
	return nil
}

// DisableTwoFactor removes the user's two-factor state and recovery codes,
// in one transaction (no error when there was none). Turning off two-factor
// that was on is recorded in the user's history (at the store's clock: the
// method takes no time) and queues mail (the notice that it is off), in the
// same transaction; removing a setup never confirmed, or nothing, records
// and queues nothing: two-factor was not on, so "it was turned off" would
// be false.
func (s *Store) DisableTwoFactor(ctx context.Context, userID int64, mail ...db.Mail) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("db: disable two-factor: %w", err)
	}
	defer tx.Rollback()
	var wasOn bool
	err = tx.QueryRowContext(ctx, `DELETE FROM two_factor WHERE user_id = ? RETURNING enabled_at IS NOT NULL`, userID).Scan(&wasOn)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("db: disable two-factor: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM recovery_codes WHERE user_id = ?`, userID); err != nil {
		return fmt.Errorf("db: disable two-factor: %w", err)
	}
	if wasOn {
		if err := recordIn(ctx, tx, db.SecurityEvent{UserID: userID, Kind: db.EventTwoFactorOff, At: s.now()}); err != nil {
			return fmt.Errorf("db: disable two-factor: %w", err)
		}
		if err := queueMailIn(ctx, tx, mail...); err != nil {
			return failed("disable two-factor", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("db: disable two-factor: %w", err)
	}
	return nil
}

// AcceptTOTPStep records step as used if two-factor is enabled and step is
// later than the last accepted one. The check and the write are one
// conditional UPDATE, so of two requests (or instances) checking the same
// code at once exactly one sees its row change: a code is accepted once.
func (s *Store) AcceptTOTPStep(ctx context.Context, userID int64, step int64) (bool, error) {
	res, err := s.write.ExecContext(ctx, `UPDATE two_factor SET last_step = ?
		WHERE user_id = ? AND enabled_at IS NOT NULL AND last_step < ?`, step, userID, step)
	if err != nil {
		return false, fmt.Errorf("db: accept totp step: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("db: accept totp step: %w", err)
	}
	return n == 1, nil
}

// UseRecoveryCode marks the user's unused code stored as one of hashes as
// used at now and counts the unused ones left, in one transaction. The
// UPDATE is conditional on used_at IS NULL, so a code works once however
// many requests race to use it; ok is false (nothing changes, nothing is
// queued) when no unused code has any of them. mail is queued only when a
// code was used, in the same transaction.
func (s *Store) UseRecoveryCode(ctx context.Context, userID int64, hashes [][]byte, now time.Time, mail ...db.Mail) (left int, ok bool, err error) {
	if len(hashes) == 0 {
		return 0, false, errors.New("db: use recovery code: no hash")
	}
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return 0, false, fmt.Errorf("db: use recovery code: %w", err)
	}
	defer tx.Rollback()
	args := []any{now.Unix(), userID}
	for _, h := range hashes {
		args = append(args, h)
	}
	// One typed code's forms (a keyed hash per key of the ring, the plain
	// hash of old codes): a user's codes are replaced as a set, so at most
	// one of them is stored.
	res, err := tx.ExecContext(ctx, `UPDATE recovery_codes SET used_at = ?
		WHERE user_id = ? AND code_hash IN (?`+strings.Repeat(", ?", len(hashes)-1)+`) AND used_at IS NULL`, args...)
	if err != nil {
		return 0, false, fmt.Errorf("db: use recovery code: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, false, fmt.Errorf("db: use recovery code: %w", err)
	}
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM recovery_codes WHERE user_id = ? AND used_at IS NULL`, userID).Scan(&left); err != nil {
		return 0, false, fmt.Errorf("db: use recovery code: %w", err)
	}
	if n > 0 {
		if err := queueMailIn(ctx, tx, mail...); err != nil {
			return 0, false, failed("use recovery code", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, false, fmt.Errorf("db: use recovery code: %w", err)
	}
	return left, n > 0, nil
}

// ReplaceRecoveryCodes makes hashes the user's only recovery codes, in one
// transaction; db.ErrNotFound (nothing changes) unless two-factor is enabled.
func (s *Store) ReplaceRecoveryCodes(ctx context.Context, userID int64, hashes [][]byte, now time.Time) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("db: replace recovery codes: %w", err)
	}
	defer tx.Rollback()
	var on bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM two_factor WHERE user_id = ? AND enabled_at IS NOT NULL)`,
		userID).Scan(&on); err != nil {
		return fmt.Errorf("db: replace recovery codes: %w", err)
	}
	if !on {
		return db.ErrNotFound
	}
	if err := replaceRecoveryCodesIn(ctx, tx, userID, hashes, now); err != nil {
		return fmt.Errorf("db: replace recovery codes: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("db: replace recovery codes: %w", err)
	}
	return nil
}

const pendingSignInColumns = `id, secret_hash, user_id, epoch, created_at, expires_at, failures`

func scanPendingSignIn(row interface{ Scan(...any) error }) (db.PendingSignIn, error) {
	var p db.PendingSignIn
	var created, expires int64
	if err := row.Scan(&p.ID, &p.SecretHash, &p.UserID, &p.Epoch, &created, &expires, &p.Failures); err != nil {
		return db.PendingSignIn{}, err
	}
	p.CreatedAt, p.ExpiresAt = time.Unix(created, 0), time.Unix(expires, 0)
	return p, nil
}

// CreatePendingSignIn stores a pending sign-in; db.ErrNotFound if its user
// does not exist.
func (s *Store) CreatePendingSignIn(ctx context.Context, p db.PendingSignIn) error {
	_, err := s.write.ExecContext(ctx, `INSERT INTO pending_sign_ins (`+pendingSignInColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
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
// (the caller judges expiry and verifies the secret), or db.ErrNotFound.
func (s *Store) PendingSignIn(ctx context.Context, id string) (db.PendingSignIn, error) {
	p, err := scanPendingSignIn(s.read.QueryRowContext(ctx, `SELECT `+pendingSignInColumns+` FROM pending_sign_ins WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
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
// entered again. db.ErrNotFound if it is gone.
func (s *Store) FailPendingSignIn(ctx context.Context, id string, limit int) (int, error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("db: fail pending sign-in: %w", err)
	}
	defer tx.Rollback()
	var failures int
	err = tx.QueryRowContext(ctx, `UPDATE pending_sign_ins SET failures = failures + 1 WHERE id = ? RETURNING failures`, id).Scan(&failures)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, db.ErrNotFound
	}
	if err != nil {
		return 0, fmt.Errorf("db: fail pending sign-in: %w", err)
	}
	if failures >= limit {
		if _, err := tx.ExecContext(ctx, `DELETE FROM pending_sign_ins WHERE id = ?`, id); err != nil {
			return 0, fmt.Errorf("db: fail pending sign-in: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("db: fail pending sign-in: %w", err)
	}
	return failures, nil
}

// CompletePendingSignIn, in one transaction, deletes the pending sign-in id
// (it must be sess.UserID's and unexpired at sess.CreatedAt) and creates
// session sess exactly as CreateSession does, with the epoch the pending
// sign-in recorded. Deleting first redeems it once: a second completion
// finds no row (db.ErrNotFound). Any refusal (db.ErrSignInsReset: the user
// reset their sign-ins or was disabled since the password was checked)
// rolls everything back, the queued mail with it.
func (s *Store) CompletePendingSignIn(ctx context.Context, id string, sess db.Session, maxPerUser int, mail ...db.Mail) ([]db.Session, error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("db: complete pending sign-in: %w", err)
	}
	defer tx.Rollback()
	var epoch int64
	err = tx.QueryRowContext(ctx, `DELETE FROM pending_sign_ins WHERE id = ? AND user_id = ? AND expires_at > ? RETURNING epoch`,
		id, sess.UserID, sess.CreatedAt.Unix()).Scan(&epoch)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, db.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("db: complete pending sign-in: %w", err)
	}
	evicted, err := s.createSessionIn(ctx, tx, sess, maxPerUser, epoch)
	if err == nil {
		err = queueMailIn(ctx, tx, mail...)
	}
	if err != nil {
		return nil, failed("complete pending sign-in", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("db: complete pending sign-in: %w", err)
	}
	s.notifyCreated(sess, evicted)
	return evicted, nil
}

// DeletePendingSignIn removes a pending sign-in (no error if it is gone).
func (s *Store) DeletePendingSignIn(ctx context.Context, id string) error {
	if _, err := s.write.ExecContext(ctx, `DELETE FROM pending_sign_ins WHERE id = ?`, id); err != nil {
		return fmt.Errorf("db: delete pending sign-in: %w", err)
	}
	return nil
}

// PrunePendingSignIns deletes pending sign-ins expired before cutoff.
func (s *Store) PrunePendingSignIns(ctx context.Context, cutoff time.Time) (int64, error) {
	res, err := s.write.ExecContext(ctx, `DELETE FROM pending_sign_ins WHERE expires_at < ?`, cutoff.Unix())
	if err != nil {
		return 0, fmt.Errorf("db: prune pending sign-ins: %w", err)
	}
	return res.RowsAffected()
}

// isForeignKeyViolation reports whether err is SQLite's FOREIGN KEY
// constraint error (a row for a user that does not exist), by its extended
// result code.
func isForeignKeyViolation(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}
