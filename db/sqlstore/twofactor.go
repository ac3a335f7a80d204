package sqlstore

import (
	"context"
	"errors"
	"time"

	"doorman/db"
)

// Lock order (see Lock order in sqlstore.go). On PostgreSQL a transaction
// here that writes two-factor rows and then inserts recovery codes or a
// security event (whose foreign key checks take a KEY SHARE lock on the
// user's row) first takes that lock itself: DeleteUser locks the user's row
// and then, by cascade, the two-factor rows, so taking them the other way
// round could deadlock with it. CompletePendingSignIn locks the user's row
// (FOR UPDATE, as CreateSession does) before the pending sign-in, for the
// same reason.

// twoFactorSQL reads a user's two-factor state, with the number of unused
// recovery codes (every sign-in and Security page runs it: a hot read).
const twoFactorSQL = `SELECT user_id, secret_sealed, enabled_at, last_step,
	(SELECT COUNT(*) FROM recovery_codes r WHERE r.user_id = t.user_id AND r.used_at IS NULL), unverified_address
	FROM two_factor t WHERE user_id = ?`

// scanTwoFactor reads the row of twoFactorSQL; db.ErrNotFound when there is
// none.
func scanTwoFactor(row Row) (db.TwoFactor, error) {
	var t db.TwoFactor
	var enabled *int64
	err := row.Scan(&t.UserID, &t.SecretSealed, &enabled, &t.LastStep, &t.RecoveryLeft, &t.UnverifiedAddress)
	if err != nil {
		return db.TwoFactor{}, notFound(err)
	}
	t.EnabledAt = optionalTime(enabled)
	return t, nil
}

// TwoFactor returns the user's two-factor state, pending or enabled, with
// the number of unused recovery codes; db.ErrNotFound when there is none.
func (s *Store) TwoFactor(ctx context.Context, userID int64) (db.TwoFactor, error) {
	t, err := scanTwoFactor(s.d.Hot().QueryRow(ctx, twoFactorSQL, userID))
	if err != nil {
		return db.TwoFactor{}, failed("two-factor", err)
	}
	return t, nil
}

// StartTwoFactor records a pending setup with the sealed secret, replacing
// an earlier pending one. One statement: the upsert leaves an enabled row
// alone (its WHERE), so a setup started in another tab (or on another
// instance) can never replace the secret the user's authenticator app
// already holds (db.ErrTwoFactorEnabled). db.ErrNotFound if there is no
// such user.
func (s *Store) StartTwoFactor(ctx context.Context, userID int64, secretSealed string, now time.Time) error {
	n, err := s.d.Writes().Exec(ctx, `INSERT INTO two_factor (user_id, secret_sealed, created_at, enabled_at, last_step)
		VALUES (?, ?, ?, NULL, 0)
		ON CONFLICT (user_id) DO UPDATE SET secret_sealed = excluded.secret_sealed, created_at = excluded.created_at, last_step = 0
		WHERE two_factor.enabled_at IS NULL`, userID, secretSealed, now.Unix())
	switch {
	case s.d.IsForeignKeyViolation(err):
		return db.ErrNotFound
	case err != nil:
		return failed("start two-factor", err)
	case n == 0:
		return db.ErrTwoFactorEnabled
	}
	return nil
}

// EnableTwoFactor confirms the pending setup whose sealed secret is
// secretSealed (enabled at now, step as the last accepted one, and whether
// the user's address is verified now), makes recoveryHashes the only
// recovery codes and records it in the user's history, in one transaction
// with mail queued in it. The user's row is locked first (PostgreSQL: KEY
// SHARE; see Lock order). db.ErrNotFound without that pending setup;
// db.ErrTwoFactorEnabled if it is already on (nothing is queued).
func (s *Store) EnableTwoFactor(ctx context.Context, userID int64, secretSealed string, step int64, recoveryHashes [][]byte, now time.Time, mail ...db.Mail) error {
	err := s.d.Write(ctx, func(tx Q) error {
		if err := s.lockUserKey(ctx, tx, userID); err != nil {
			return err
		}
		n, err := tx.Exec(ctx, `UPDATE two_factor SET enabled_at = ?, last_step = ?,
			unverified_address = (SELECT email_verified_at IS NULL FROM users WHERE id = two_factor.user_id)
			WHERE user_id = ? AND enabled_at IS NULL AND secret_sealed = ?`, now.Unix(), step, userID, secretSealed)
		if err != nil {
			return err
		}
		if n == 0 {
			var on bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM two_factor WHERE user_id = ? AND enabled_at IS NOT NULL)`,
				userID).Scan(&on); err != nil {
				return err
			}
			if on {
				return db.ErrTwoFactorEnabled
			}
			return db.ErrNotFound
		}
		// The codes and the history row together (PostgreSQL: one round
		// trip).
		stmts := append(recoveryCodeStmts(userID, recoveryHashes, now),
			eventStmt(ctx, db.SecurityEvent{UserID: userID, Kind: db.EventTwoFactorOn, At: now}))
		if err := s.d.ExecBatch(ctx, tx, stmts...); err != nil {
			return err
		}
		return s.queueIn(ctx, tx, 0, mail)
	})
	return failed("enable two-factor", err)
}

// recoveryCodeStmts are the statements that make hashes the user's only
// recovery codes: the old ones deleted, the new ones inserted in one
// statement.
func recoveryCodeStmts(userID int64, hashes [][]byte, now time.Time) []Stmt {
	stmts := []Stmt{{`DELETE FROM recovery_codes WHERE user_id = ?`, []any{userID}}}
	if len(hashes) == 0 {
		return stmts
	}
	// ?1 is the user, ?2 the time, ?3… the hashes.
	q := `INSERT INTO recovery_codes (user_id, code_hash, created_at) VALUES `
	args := []any{userID, now.Unix()}
	for i, h := range hashes {
		if i > 0 {
			q += ", "
		}
		q += "(?1, " + numbered(3+i, 1) + ", ?2)"
		args = append(args, h)
	}
	return append(stmts, Stmt{q, args})
}

// replaceRecoveryCodesIn makes hashes the user's only recovery codes, in tx
// (PostgreSQL: in one round trip). The caller holds the user's row lock
// (see Lock order).
func (s *Store) replaceRecoveryCodesIn(ctx context.Context, tx Q, userID int64, hashes [][]byte, now time.Time) error {
	return s.d.ExecBatch(ctx, tx, recoveryCodeStmts(userID, hashes, now)...)
}

// DisableTwoFactor removes the user's two-factor state and recovery codes,
// in one transaction (no error when there was none). Turning off two-factor
// that was on is recorded in the user's history (at the store's clock: the
// method takes no time) and queues mail (the notice that it is off), in the
// same transaction; removing a setup never confirmed, or nothing, records
// and queues nothing: two-factor was not on, so "it was turned off" would
// be false. Locks (PostgreSQL): the user's row first (KEY SHARE, which the
// history row needs; see Lock order), then the two_factor row:
// ReplaceRecoveryCodes takes the same two before touching the codes.
func (s *Store) DisableTwoFactor(ctx context.Context, userID int64, mail ...db.Mail) error {
	err := s.d.Write(ctx, func(tx Q) error {
		if err := s.lockUserKey(ctx, tx, userID); err != nil {
			return err
		}
		var wasOn bool
		err := tx.QueryRow(ctx, `DELETE FROM two_factor WHERE user_id = ? RETURNING enabled_at IS NOT NULL`, userID).Scan(&wasOn)
		if err != nil && !errors.Is(err, ErrNoRows) {
			return err
		}
		stmts := []Stmt{{`DELETE FROM recovery_codes WHERE user_id = ?`, []any{userID}}}
		if wasOn {
			stmts = append(stmts, eventStmt(ctx, db.SecurityEvent{UserID: userID, Kind: db.EventTwoFactorOff, At: s.now()}))
		}
		if err := s.d.ExecBatch(ctx, tx, stmts...); err != nil || !wasOn {
			return err
		}
		return s.queueIn(ctx, tx, 0, mail)
	})
	if errors.Is(err, db.ErrNotFound) {
		return nil // no such user: there was nothing to turn off
	}
	return failed("disable two-factor", err)
}

// twoFactorOffIn removes the user's two-factor state and recovery codes in
// tx (whose caller holds the user's row lock: see Lock order) and reports
// whether two-factor was on. onlyUnverified
// (db.Recovery.ClearUnverifiedTwoFactor) removes it only if it was set up
// while the address was unverified: one that is on and was set up with a
// verified address is db.ErrTwoFactorEnabled, and nothing is removed.
func (s *Store) twoFactorOffIn(ctx context.Context, tx Q, userID int64, onlyUnverified bool) (bool, error) {
	var on, unverified bool
	err := tx.QueryRow(ctx, `SELECT enabled_at IS NOT NULL, unverified_address FROM two_factor WHERE user_id = ?`+s.forUpdate("UPDATE"),
		userID).Scan(&on, &unverified)
	if errors.Is(err, ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if onlyUnverified && on && !unverified {
		return false, db.ErrTwoFactorEnabled
	}
	if err := s.d.ExecBatch(ctx, tx,
		Stmt{`DELETE FROM two_factor WHERE user_id = ?`, []any{userID}},
		Stmt{`DELETE FROM recovery_codes WHERE user_id = ?`, []any{userID}},
	); err != nil {
		return false, err
	}
	return on, nil
}

// AcceptTOTPStep records step as used if two-factor is enabled and step is
// later than the last accepted one. The check and the write are one
// conditional UPDATE, so of two requests (or instances) checking the same
// code at once exactly one sees its row change: on PostgreSQL the second
// waits for the first's row lock, then re-checks the WHERE against the
// committed row and changes nothing (SQLite's one writer runs them one
// after the other). A code is accepted once.
func (s *Store) AcceptTOTPStep(ctx context.Context, userID int64, step int64) (bool, error) {
	n, err := s.d.Writes().Exec(ctx, `UPDATE two_factor SET last_step = ?1
		WHERE user_id = ?2 AND enabled_at IS NOT NULL AND last_step < ?1`, step, userID)
	if err != nil {
		return false, failed("accept totp step", err)
	}
	return n == 1, nil
}

// UseRecoveryCode marks the user's unused code stored as one of hashes as
// used at now and counts the unused ones left, in one transaction. The
// UPDATE is conditional on used_at IS NULL, so a code works once however
// many requests race to use it; ok is false (nothing changes, nothing is
// queued) when no unused code has any of them. mail is queued only when a
// code was used, in the same transaction; with mail the user's row is
// locked first (PostgreSQL: KEY SHARE, as a mail's links reference it; see
// Lock order).
func (s *Store) UseRecoveryCode(ctx context.Context, userID int64, hashes [][]byte, now time.Time, mail ...db.Mail) (left int, ok bool, err error) {
	if len(hashes) == 0 {
		return 0, false, errors.New("db: use recovery code: no hash")
	}
	args := []any{now.Unix(), userID}
	for _, h := range hashes {
		args = append(args, h)
	}
	err = s.d.Write(ctx, func(tx Q) error {
		if len(mail) > 0 {
			if err := s.lockUserKey(ctx, tx, userID); err != nil {
				return err
			}
		}
		// One typed code's forms (a keyed hash per key of the ring, the
		// plain hash of old codes): a user's codes are replaced as a set,
		// so at most one of them is stored.
		n, err := tx.Exec(ctx, `UPDATE recovery_codes SET used_at = ?
			WHERE user_id = ? AND code_hash IN (`+placeholders(len(hashes))+`) AND used_at IS NULL`, args...)
		if err != nil {
			return err
		}
		ok = n > 0
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM recovery_codes WHERE user_id = ? AND used_at IS NULL`, userID).Scan(&left); err != nil {
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
	if err != nil {
		return 0, false, failed("use recovery code", err)
	}
	return left, ok, nil
}

// ReplaceRecoveryCodes makes hashes the user's only recovery codes, in one
// transaction; db.ErrNotFound (nothing changes) unless two-factor is
// enabled. The two_factor row is locked (PostgreSQL: after the user's; see
// Lock order) while the codes are replaced, so a DisableTwoFactor
// committing meanwhile cannot leave new codes behind it.
func (s *Store) ReplaceRecoveryCodes(ctx context.Context, userID int64, hashes [][]byte, now time.Time) error {
	err := s.d.Write(ctx, func(tx Q) error {
		if err := s.lockUserKey(ctx, tx, userID); err != nil {
			return err
		}
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM two_factor WHERE user_id = ? AND enabled_at IS NOT NULL`+s.forUpdate("UPDATE"),
			userID).Scan(&one)
		if err != nil {
			return notFound(err)
		}
		return s.replaceRecoveryCodesIn(ctx, tx, userID, hashes, now)
	})
	return failed("replace recovery codes", err)
}

const pendingSignInColumns = `id, secret_hash, user_id, epoch, created_at, expires_at, failures`

func scanPendingSignIn(row Row) (db.PendingSignIn, error) {
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
	_, err := s.d.Writes().Exec(ctx, `INSERT INTO pending_sign_ins (`+pendingSignInColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		p.ID, p.SecretHash, p.UserID, p.Epoch, p.CreatedAt.Unix(), p.ExpiresAt.Unix(), p.Failures)
	if s.d.IsForeignKeyViolation(err) {
		return db.ErrNotFound
	}
	return failed("create pending sign-in", err)
}

// PendingSignIn returns the pending sign-in with that id, expired or not
// (the caller judges expiry and verifies the secret), or db.ErrNotFound.
func (s *Store) PendingSignIn(ctx context.Context, id string) (db.PendingSignIn, error) {
	p, err := scanPendingSignIn(s.d.Reads().QueryRow(ctx, `SELECT `+pendingSignInColumns+` FROM pending_sign_ins WHERE id = ?`, id))
	if err != nil {
		return db.PendingSignIn{}, failed("pending sign-in", notFound(err))
	}
	return p, nil
}

// FailPendingSignIn counts a wrong code against the pending sign-in and
// returns its failures so far. At limit or more it is deleted in the same
// transaction: guessing codes ends at the limit, and the password must be
// entered again. db.ErrNotFound if it is gone.
func (s *Store) FailPendingSignIn(ctx context.Context, id string, limit int) (int, error) {
	var failures int
	err := s.d.Write(ctx, func(tx Q) error {
		err := tx.QueryRow(ctx, `UPDATE pending_sign_ins SET failures = failures + 1 WHERE id = ? RETURNING failures`, id).Scan(&failures)
		if err != nil || failures < limit {
			return notFound(err)
		}
		_, err = tx.Exec(ctx, `DELETE FROM pending_sign_ins WHERE id = ?`, id)
		return err
	})
	if err != nil {
		return 0, failed("fail pending sign-in", err)
	}
	return failures, nil
}

// CompletePendingSignIn, in one transaction, deletes the pending sign-in id
// (it must be sess.UserID's and unexpired at sess.CreatedAt) and creates
// session sess exactly as CreateSession does, with the epoch the pending
// sign-in recorded. The user's row is locked first (PostgreSQL: FOR UPDATE,
// before the pending sign-in's; see Lock order). Deleting redeems it once:
// a second completion, waiting on the lock (PostgreSQL) or the writer
// (SQLite), then finds no row (db.ErrNotFound). Any refusal
// (db.ErrSignInsReset: the user reset their sign-ins or was disabled since
// the password was checked) rolls everything back, the queued mail with it.
func (s *Store) CompletePendingSignIn(ctx context.Context, id string, sess db.Session, maxPerUser int, mail ...db.Mail) ([]db.Session, error) {
	var evicted []db.Session
	err := s.d.Write(ctx, func(tx Q) error {
		if _, err := s.lockUser(ctx, tx, sess.UserID); err != nil {
			return err
		}
		var epoch int64
		err := tx.QueryRow(ctx, `DELETE FROM pending_sign_ins WHERE id = ? AND user_id = ? AND expires_at > ? RETURNING epoch`,
			id, sess.UserID, sess.CreatedAt.Unix()).Scan(&epoch)
		if err != nil {
			return notFound(err)
		}
		evicted, err = s.createSessionIn(ctx, tx, sess, maxPerUser, epoch, mail)
		return err
	})
	if err != nil {
		return nil, failed("complete pending sign-in", err)
	}
	s.notifyCreated(sess, evicted)
	return evicted, nil
}

// DeletePendingSignIn removes a pending sign-in (no error if it is gone).
func (s *Store) DeletePendingSignIn(ctx context.Context, id string) error {
	_, err := s.d.Writes().Exec(ctx, `DELETE FROM pending_sign_ins WHERE id = ?`, id)
	return failed("delete pending sign-in", err)
}

// PrunePendingSignIns deletes pending sign-ins expired before cutoff.
func (s *Store) PrunePendingSignIns(ctx context.Context, cutoff time.Time) (int64, error) {
	n, err := s.d.Writes().Exec(ctx, `DELETE FROM pending_sign_ins WHERE expires_at < ?`, cutoff.Unix())
	if err != nil {
		return 0, failed("prune pending sign-ins", err)
	}
	return n, nil
}
