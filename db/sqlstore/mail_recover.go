package sqlstore

import (
	"context"
	"errors"
	"slices"

	"doorman/db"
)

// RecoverAccount does everything r names in one transaction, or nothing
// (see db.Recovery), and reports the sessions it ended and started after
// commit. Locks, in the store's order (PostgreSQL): the user's row FOR
// UPDATE, then the link, the sessions, the tokens (in id order), the
// two-factor row and recovery codes, the sign-in places, and last the new
// session's rows.
func (s *Store) RecoverAccount(ctx context.Context, r db.Recovery) (db.Recovered, error) {
	var out db.Recovered
	err := s.d.Write(ctx, func(tx Q) error {
		var err error
		out, err = s.recoverIn(ctx, tx, r)
		return err
	})
	if err != nil {
		return db.Recovered{}, failed("recover account", err)
	}
	ended := append(slices.Clone(out.Ended), out.Evicted...)
	if r.Start != nil {
		s.notifyCreated(*r.Start, ended)
	} else {
		s.notify(db.EndedEvents(ended))
	}
	return out, nil
}

func (s *Store) recoverIn(ctx context.Context, tx Q, r db.Recovery) (db.Recovered, error) {
	var out db.Recovered
	if r.Start != nil && r.Start.UserID != r.UserID {
		return out, errors.New("the session to start is another user's")
	}
	if _, err := s.lockUser(ctx, tx, r.UserID); err != nil {
		return out, err
	}
	var link db.LinkToken
	if r.LinkID != "" {
		// Whatever is wrong with the link (unknown, another purpose,
		// another user's, used, expired, void), the answer is the one
		// the contract gives: it cannot be used for this.
		var err error
		link, err = useLinkIn(ctx, tx, r.LinkID, r.LinkPurpose, r.UserID, r.Now)
		if errors.Is(err, db.ErrNotFound) {
			return out, db.ErrLinkUsed
		}
		if err != nil {
			return out, err
		}
	}
	now := r.Now.Unix()
	if r.KeepSessionID != "" {
		// A kept session without a new secret would keep the cookie
		// that was in use before the account was taken back.
		if len(r.KeepSecretHash) == 0 {
			return out, errors.New("a kept session needs a new secret hash")
		}
		n, err := tx.Exec(ctx, `UPDATE sessions SET secret_hash = ?2, reauth_at = ?1
			WHERE user_id = ?3 AND id = ?4 AND `+alive(1), now, r.KeepSecretHash, r.UserID, r.KeepSessionID)
		if err != nil {
			return out, err
		}
		if n == 0 {
			return out, db.ErrNotFound
		}
	}
	// Always a reset: no sign-in in flight (a password read before, an
	// older reset or sign-in link) survives taking the account back.
	var epoch int64
	if err := tx.QueryRow(ctx, `UPDATE users SET epoch = epoch + 1 WHERE id = ? RETURNING epoch`, r.UserID).Scan(&epoch); err != nil {
		return out, notFound(err)
	}
	var events []db.SecurityEvent
	if r.PasswordHash != "" {
		if _, err := tx.Exec(ctx, `UPDATE users SET password_hash = ? WHERE id = ?`, r.PasswordHash, r.UserID); err != nil {
			return out, err
		}
		events = append(events, db.SecurityEvent{UserID: r.UserID, Kind: db.EventPasswordChanged, At: r.Now, Reason: r.Reason})
	}
	if r.RestoreEmail != "" {
		_, err := tx.Exec(ctx, `UPDATE users SET email = ?, email_verified_at = ? WHERE id = ?`, r.RestoreEmail, now, r.UserID)
		if s.d.IsUniqueViolation(err) {
			return out, db.ErrEmailTaken
		}
		if err != nil {
			return out, err
		}
		events = append(events, db.SecurityEvent{UserID: r.UserID, Kind: db.EventEmailChanged, At: r.Now,
			Detail: r.RestoreEmail, Reason: r.Reason})
	}
	if !r.DropTwoFactorSince.IsZero() {
		n, err := tx.Exec(ctx, `DELETE FROM two_factor WHERE user_id = ? AND enabled_at >= ?`, r.UserID, r.DropTwoFactorSince.Unix())
		if err != nil {
			return out, err
		}
		if n > 0 {
			if _, err := tx.Exec(ctx, `DELETE FROM recovery_codes WHERE user_id = ?`, r.UserID); err != nil {
				return out, err
			}
			events = append(events, db.SecurityEvent{UserID: r.UserID, Kind: db.EventTwoFactorOff, At: r.Now, Reason: r.Reason})
		}
	}
	if r.EndSessionID != "" {
		// Already ended is fine. The kept session is never ended: it is
		// this browser, just given a new secret.
		ended, err := s.revokeIn(ctx, tx, `user_id = ?4 AND id = ?5 AND id <> ?6`, r.Reason, r.By, r.Now,
			r.UserID, r.EndSessionID, r.KeepSessionID)
		if err != nil {
			return out, err
		}
		out.Ended = append(out.Ended, ended...)
	}
	if r.EndOthers {
		ended, err := s.revokeIn(ctx, tx, `user_id = ?4 AND id <> ?5`, r.Reason, r.By, r.Now, r.UserID, r.KeepSessionID)
		if err != nil {
			return out, err
		}
		out.Ended = append(out.Ended, ended...)
	}
	if r.EndTokens {
		var err error
		if out.Tokens, err = s.revokeTokensIn(ctx, tx, `user_id = ?4`, r.Reason, r.By, r.Now, r.UserID); err != nil {
			return out, err
		}
	}
	if r.DisableTwoFactor || r.ClearUnverifiedTwoFactor {
		off, err := s.twoFactorOffIn(ctx, tx, r.UserID, !r.DisableTwoFactor)
		if err != nil {
			return out, err
		}
		if out.TwoFactorOff = off; off {
			events = append(events, db.SecurityEvent{UserID: r.UserID, Kind: db.EventTwoFactorOff, At: r.Now, Reason: r.Reason})
		}
	}
	if r.RecordReset {
		events = append(events, db.SecurityEvent{UserID: r.UserID, Kind: db.EventAccountReset, At: r.Now, Reason: r.Reason, By: r.By})
	}
	if err := s.recordIn(ctx, tx, events...); err != nil {
		return out, err
	}
	if r.VerifyEmail {
		// The address the link went to, if it names one (an undo link's
		// is the one just restored); with no link, whatever it is.
		if err := s.verifyEmailIn(ctx, tx, r.UserID, link.Email, r.Now); err != nil {
			return out, err
		}
	}
	if r.ForgetDevice != "" || r.ForgetNetwork != "" {
		if _, err := tx.Exec(ctx, `DELETE FROM sign_in_places WHERE user_id = ? AND device = ? AND network = ?`,
			r.UserID, r.ForgetDevice, r.ForgetNetwork); err != nil {
			return out, err
		}
	}
	if err := s.queueIn(ctx, tx, 0, r.Mail); err != nil {
		return out, err
	}
	var err error
	if r.Start != nil {
		// Under the epoch just moved: the one new sign-in the recovery
		// lets through.
		if out.Evicted, err = s.createSessionIn(ctx, tx, *r.Start, r.MaxPerUser, epoch, nil); err != nil {
			return out, err
		}
	}
	out.User, err = userIn(ctx, tx, r.UserID)
	return out, err
}
