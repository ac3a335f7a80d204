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

// recoverIn is RecoverAccount's work inside tx, in the store's lock order:
// the checks and the reset of the user's sign-ins, the account's own
// changes, the endings, then what is recorded and started.
func (s *Store) recoverIn(ctx context.Context, tx Q, r db.Recovery) (db.Recovered, error) {
	var out db.Recovered
	link, epoch, err := s.recoverStart(ctx, tx, r)
	if err != nil {
		return out, err
	}
	events, err := s.recoverChanges(ctx, tx, r)
	if err != nil {
		return out, err
	}
	ended, err := s.recoverEndings(ctx, tx, r, &out)
	if err != nil {
		return out, err
	}
	events = append(events, ended...)
	if r.RecordReset {
		events = append(events, db.SecurityEvent{UserID: r.UserID, Kind: db.EventAccountReset, At: r.Now, Reason: r.Reason, By: r.By})
	}
	if err := s.recordIn(ctx, tx, events...); err != nil {
		return out, err
	}
	if err := s.recoverFinish(ctx, tx, r, link, epoch, &out); err != nil {
		return out, err
	}
	out.User, err = userIn(ctx, tx, r.UserID)
	return out, err
}

// recoverStart checks r, locks the user's row, uses the link (if any),
// gives the kept session (if any) its new secret, and resets the user's
// sign-ins: always, so no sign-in in flight (a password read before, an
// older reset or sign-in link) survives taking the account back. It
// returns the link and the new epoch.
func (s *Store) recoverStart(ctx context.Context, tx Q, r db.Recovery) (db.LinkToken, int64, error) {
	var link db.LinkToken
	if r.Start != nil && r.Start.UserID != r.UserID {
		return link, 0, errors.New("the session to start is another user's")
	}
	if _, err := s.lockUser(ctx, tx, r.UserID); err != nil {
		return link, 0, err
	}
	if r.LinkID != "" {
		// Whatever is wrong with the link (unknown, another purpose,
		// another user's, used, expired, void), the answer is the one
		// the contract gives: it cannot be used for this.
		var err error
		link, err = useLinkIn(ctx, tx, r.LinkID, r.LinkPurpose, r.UserID, r.Now)
		if errors.Is(err, db.ErrNotFound) {
			return link, 0, db.ErrLinkUsed
		}
		if err != nil {
			return link, 0, err
		}
	}
	if r.KeepSessionID != "" {
		// A kept session without a new secret would keep the cookie
		// that was in use before the account was taken back.
		if len(r.KeepSecretHash) == 0 {
			return link, 0, errors.New("a kept session needs a new secret hash")
		}
		n, err := tx.Exec(ctx, `UPDATE sessions SET secret_hash = ?2, reauth_at = ?1
			WHERE user_id = ?3 AND id = ?4 AND `+alive(1), r.Now.Unix(), r.KeepSecretHash, r.UserID, r.KeepSessionID)
		if err != nil {
			return link, 0, err
		}
		if n == 0 {
			return link, 0, db.ErrNotFound
		}
	}
	var epoch int64
	err := tx.QueryRow(ctx, `UPDATE users SET epoch = epoch + 1 WHERE id = ? RETURNING epoch`, r.UserID).Scan(&epoch)
	return link, epoch, notFound(err)
}

// recoverChanges makes the account's own changes r asks for (a new
// password, the address put back, a second factor turned on since a given
// time dropped) and returns their history events.
func (s *Store) recoverChanges(ctx context.Context, tx Q, r db.Recovery) ([]db.SecurityEvent, error) {
	var events []db.SecurityEvent
	if r.PasswordHash != "" {
		if _, err := tx.Exec(ctx, `UPDATE users SET password_hash = ? WHERE id = ?`, r.PasswordHash, r.UserID); err != nil {
			return nil, err
		}
		events = append(events, db.SecurityEvent{UserID: r.UserID, Kind: db.EventPasswordChanged, At: r.Now, Reason: r.Reason})
	}
	if r.RestoreEmail != "" {
		_, err := tx.Exec(ctx, `UPDATE users SET email = ?, email_verified_at = ? WHERE id = ?`, r.RestoreEmail, r.Now.Unix(), r.UserID)
		if s.d.IsUniqueViolation(err) {
			return nil, db.ErrEmailTaken
		}
		if err != nil {
			return nil, err
		}
		events = append(events, db.SecurityEvent{UserID: r.UserID, Kind: db.EventEmailChanged, At: r.Now,
			Detail: r.RestoreEmail, Reason: r.Reason})
	}
	if !r.DropTwoFactorSince.IsZero() {
		n, err := tx.Exec(ctx, `DELETE FROM two_factor WHERE user_id = ? AND enabled_at >= ?`, r.UserID, r.DropTwoFactorSince.Unix())
		if err != nil {
			return nil, err
		}
		if n > 0 {
			if _, err := tx.Exec(ctx, `DELETE FROM recovery_codes WHERE user_id = ?`, r.UserID); err != nil {
				return nil, err
			}
			events = append(events, db.SecurityEvent{UserID: r.UserID, Kind: db.EventTwoFactorOff, At: r.Now, Reason: r.Reason})
		}
	}
	return events, nil
}

// recoverEndings ends what r names (one session, every other, the tokens,
// the second factor) into out, and returns the second factor's history
// event if it was on (the endings record their own).
func (s *Store) recoverEndings(ctx context.Context, tx Q, r db.Recovery, out *db.Recovered) ([]db.SecurityEvent, error) {
	// The passkeys first, as RemovePasskey does (every write to a passkey
	// holds the user's row lock, taken first here); the sessions they
	// opened end after the other endings, so one those end keeps r.Reason.
	var err error
	if out.Passkeys, err = s.removePasskeysIn(ctx, tx, r); err != nil {
		return nil, err
	}
	if r.EndSessionID != "" {
		// Already ended is fine. The kept session is never ended: it is
		// this browser, just given a new secret.
		ended, err := s.revokeIn(ctx, tx, `user_id = ?4 AND id = ?5 AND id <> ?6`, r.Reason, r.By, r.Now,
			r.UserID, r.EndSessionID, r.KeepSessionID)
		if err != nil {
			return nil, err
		}
		out.Ended = append(out.Ended, ended...)
	}
	if r.EndOthers {
		ended, err := s.revokeIn(ctx, tx, `user_id = ?4 AND id <> ?5`, r.Reason, r.By, r.Now, r.UserID, r.KeepSessionID)
		if err != nil {
			return nil, err
		}
		out.Ended = append(out.Ended, ended...)
	}
	if r.EndTokens {
		if out.Tokens, err = s.revokeTokensIn(ctx, tx, `user_id = ?4`, r.Reason, r.By, r.Now, r.UserID); err != nil {
			return nil, err
		}
		// Every app's grants too, offline ones included, and a logout of
		// every session owed to each app.
		if err := s.endUserGrantsIn(ctx, tx, r.UserID, r.UserID, r.Reason, r.Now); err != nil {
			return nil, err
		}
	}
	ended, err := s.endRemovedPasskeysIn(ctx, tx, out.Passkeys, r.KeepSessionID, r.By, r.Now, r.UserID)
	if err != nil {
		return nil, err
	}
	out.Ended = append(out.Ended, ended...)
	if r.DisableTwoFactor || r.ClearUnverifiedTwoFactor {
		off, err := s.twoFactorOffIn(ctx, tx, r.UserID, !r.DisableTwoFactor)
		if err != nil {
			return nil, err
		}
		if out.TwoFactorOff = off; off {
			return []db.SecurityEvent{{UserID: r.UserID, Kind: db.EventTwoFactorOff, At: r.Now, Reason: r.Reason}}, nil
		}
	}
	return nil, nil
}

// recoverFinish verifies the address, forgets the sign-in place, queues
// the mail and starts the new session (into out.Evicted) that r asks for.
func (s *Store) recoverFinish(ctx context.Context, tx Q, r db.Recovery, link db.LinkToken, epoch int64, out *db.Recovered) error {
	if r.VerifyEmail {
		// The address the link went to, if it names one (an undo link's
		// is the one just restored); with no link, whatever it is.
		if err := s.verifyEmailIn(ctx, tx, r.UserID, link.Email, r.Now); err != nil {
			return err
		}
	}
	if r.ForgetDevice != "" || r.ForgetNetwork != "" {
		if _, err := tx.Exec(ctx, `DELETE FROM sign_in_places WHERE user_id = ? AND device = ? AND network = ?`,
			r.UserID, r.ForgetDevice, r.ForgetNetwork); err != nil {
			return err
		}
	}
	if err := s.queueIn(ctx, tx, 0, r.Mail); err != nil {
		return err
	}
	if r.Start != nil {
		// Under the epoch just moved: the one new sign-in the recovery
		// lets through.
		var err error
		if out.Evicted, err = s.createSessionIn(ctx, tx, *r.Start, r.MaxPerUser, epoch, nil); err != nil {
			return err
		}
	}
	return nil
}
