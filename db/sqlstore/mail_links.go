package sqlstore

import (
	"context"
	"errors"
	"time"

	"doorman/db"
)

// Emailed links, the writes that use them, and the sign-in places.
//
// Lock order (PostgreSQL; see Lock order in sqlstore.go): a link's foreign
// key check takes its user's row (KEY SHARE), so a transaction inserting
// links holds it already (queueIn's callers). The writes that use a link
// and change the user (ConfirmEmail, SignInWithLink, RecoverAccount) lock
// the user's row FOR UPDATE before the link's: DeleteUser takes the user's
// row and then, by cascade, the links. UseLinkToken, on its own, locks the
// link's row only.

func scanLink(row Row) (db.LinkToken, error) {
	var l db.LinkToken
	var created, expires int64
	var used *int64
	if err := row.Scan(&l.ID, &l.SecretHash, &l.UserID, &l.Purpose, &l.Email, &l.SessionID, &l.BindingHash, &l.Epoch,
		&created, &expires, &used, &l.IP, &l.Device, &l.Location, &l.AccountEmail); err != nil {
		return db.LinkToken{}, err
	}
	l.CreatedAt, l.ExpiresAt, l.UsedAt = time.Unix(created, 0), time.Unix(expires, 0), optionalTime(used)
	return l, nil
}

// scanLinks reads every row of a query of linkColumns (rows, err as the
// query gave them), closing them.
func scanLinks(rows Rows, err error) ([]db.LinkToken, error) {
	return scanAll(rows, err, scanLink)
}

// LinkToken returns the link with that public id, used or not, or
// db.ErrNotFound.
func (s *Store) LinkToken(ctx context.Context, id string) (db.LinkToken, error) {
	l, err := scanLink(s.d.Reads().QueryRow(ctx, `SELECT `+linkColumns+` FROM link_tokens WHERE id = ?`, id))
	if err != nil {
		return db.LinkToken{}, failed("link token", notFound(err))
	}
	return l, nil
}

// useLinkSQL marks the link ?1 of purpose ?2 (of user ?4's, unless 0) used
// at ?3 if it is usable: unused, unexpired, and, if ?5 (the purpose
// db.LinkDiesWithReset), of its user's current epoch and sent to (or asked
// from) the address that is still the account's. A link from before links
// kept that address has none to compare.
const useLinkSQL = `UPDATE link_tokens SET used_at = ?3
	WHERE id = ?1 AND purpose = ?2 AND (CAST(?4 AS BIGINT) = 0 OR user_id = ?4) AND used_at IS NULL AND expires_at > ?3
		AND (NOT ?5 OR EXISTS (SELECT 1 FROM users u WHERE u.id = link_tokens.user_id AND u.epoch = link_tokens.epoch
			AND (link_tokens.account_email = '' OR link_tokens.account_email = u.email)))
	RETURNING ` + linkColumns

// useLinkIn marks the link id of purpose (of userID's, unless 0) as used at
// now (to the second, as the store keeps time) if it is usable, and returns
// it: one conditional UPDATE, with the epoch and address checks of the
// purposes that die with a reset in its WHERE, so of two uses racing (on
// any instances) exactly one changes the row: on PostgreSQL the second
// waits for the first's row lock, re-checks the WHERE against the committed
// row and changes nothing; on SQLite the single writer orders them.
// db.ErrLinkUsed if the link exists but is not usable, db.ErrNotFound if
// there is no such link (of userID's) of that purpose (unwrapped errors). A
// caller that changes the user locks the user's row first, which also
// makes the epoch and address compared the current ones; it rolls back on
// any error.
func useLinkIn(ctx context.Context, q Q, id, purpose string, userID int64, now time.Time) (db.LinkToken, error) {
	l, err := scanLink(q.QueryRow(ctx, useLinkSQL, id, purpose, now.Unix(), userID, db.LinkDiesWithReset(purpose)))
	if !errors.Is(err, ErrNoRows) {
		return l, err
	}
	var exists bool
	if err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM link_tokens
		WHERE id = ?1 AND purpose = ?2 AND (CAST(?3 AS BIGINT) = 0 OR user_id = ?3))`, id, purpose, userID).Scan(&exists); err != nil {
		return db.LinkToken{}, err
	}
	if exists {
		return db.LinkToken{}, db.ErrLinkUsed
	}
	return db.LinkToken{}, db.ErrNotFound
}

// UseLinkToken marks the link id of purpose used at now if it is usable
// and returns it: db.ErrLinkUsed if it was used, expired or made void,
// db.ErrNotFound if there is no such link of that purpose. Of many uses at
// once exactly one succeeds.
func (s *Store) UseLinkToken(ctx context.Context, id, purpose string, now time.Time) (db.LinkToken, error) {
	l, err := useLinkIn(ctx, s.d.Writes(), id, purpose, 0, now)
	if err != nil {
		return db.LinkToken{}, failed("use link token", err)
	}
	return l, nil
}

// PruneLinkTokens deletes links that expired before cutoff.
func (s *Store) PruneLinkTokens(ctx context.Context, cutoff time.Time) (int64, error) {
	n, err := s.d.Writes().Exec(ctx, `DELETE FROM link_tokens WHERE expires_at < ?`, cutoff.Unix())
	return n, failed("prune link tokens", err)
}

// verifyEmailIn marks the user's address verified at now inside tx if it
// is not yet and is email ("" for whatever it is), and then records
// EventEmailVerified (Detail: the address) in their history. An address
// already verified keeps the time it was first proved. The caller holds
// the user's row lock.
func (s *Store) verifyEmailIn(ctx context.Context, tx Q, userID int64, email string, now time.Time) error {
	var verified string
	err := tx.QueryRow(ctx, `UPDATE users SET email_verified_at = ?2
		WHERE id = ?1 AND email_verified_at IS NULL AND (?3 = '' OR email = ?3) RETURNING email`,
		userID, now.Unix(), email).Scan(&verified)
	if errors.Is(err, ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	return s.recordIn(ctx, tx, db.SecurityEvent{UserID: userID, Kind: db.EventEmailVerified, At: now, Detail: verified})
}

// ConfirmEmail uses the link id (LinkVerifyEmail or LinkChangeEmail; any
// other is db.ErrNotFound) at now, in one transaction, and returns the user
// as it is now. A verify link marks the address verified (recording
// EventEmailVerified) if it is still the link's Email, else db.ErrLinkUsed:
// the address changed since the link was sent, and the link proves nothing
// about the one the account has now. A change link makes the link's Email
// the user's address, verified, records EventEmailChanged and queues mail;
// db.ErrEmailTaken (the link stays unused) if another account has the
// address, and db.ErrLinkUsed if it is the account's address already
// (another link made it so: nothing would change, and a "your address
// changed" notice would be false). Locks: the user's row FOR UPDATE, then
// the link's.
func (s *Store) ConfirmEmail(ctx context.Context, id string, now time.Time, mail ...db.Mail) (db.User, error) {
	var u db.User
	err := s.d.Write(ctx, func(tx Q) error {
		var userID int64
		var purpose string
		err := tx.QueryRow(ctx, `SELECT user_id, purpose FROM link_tokens WHERE id = ?`, id).Scan(&userID, &purpose)
		if errors.Is(err, ErrNoRows) || (err == nil && purpose != db.LinkVerifyEmail && purpose != db.LinkChangeEmail) {
			return db.ErrNotFound
		}
		if err != nil {
			return err
		}
		email, err := s.lockUser(ctx, tx, userID)
		if err != nil {
			return err
		}
		l, err := useLinkIn(ctx, tx, id, purpose, userID, now)
		if err != nil {
			return err
		}
		switch purpose {
		case db.LinkVerifyEmail:
			if l.Email != email {
				return db.ErrLinkUsed
			}
			if err := s.verifyEmailIn(ctx, tx, userID, email, now); err != nil {
				return err
			}
		case db.LinkChangeEmail:
			if l.Email == email {
				return db.ErrLinkUsed
			}
			_, err := tx.Exec(ctx, `UPDATE users SET email = ?, email_verified_at = ? WHERE id = ?`, l.Email, now.Unix(), userID)
			if s.d.IsUniqueViolation(err) {
				return db.ErrEmailTaken
			}
			if err != nil {
				return err
			}
			if err := s.recordIn(ctx, tx, db.SecurityEvent{UserID: userID, Kind: db.EventEmailChanged, At: now, Detail: l.Email}); err != nil {
				return err
			}
		}
		if err := s.queueIn(ctx, tx, 0, mail); err != nil {
			return err
		}
		u, err = userIn(ctx, tx, userID)
		return err
	})
	if err != nil {
		return db.User{}, failed("confirm email", err)
	}
	return u, nil
}

// SignInWithLink, in one transaction, uses the sign-in link id (of
// sess.UserID's, unused, unexpired at sess.CreatedAt and of the user's
// current Epoch and address, else db.ErrLinkUsed; db.ErrNotFound if there
// is no such link of theirs), creates session sess as CreateSession does
// (with the link's epoch: a disabled user's is db.ErrSignInsReset, and
// either error writes nothing) and queues mail, and marks the user's
// address verified: the link reached it, unless it was sent to an address
// that is no longer the account's (its Email, when set). Locks: the user's
// row FOR UPDATE (as CreateSession), then the link's.
func (s *Store) SignInWithLink(ctx context.Context, id string, sess db.Session, maxPerUser int, mail ...db.Mail) ([]db.Session, error) {
	var evicted []db.Session
	err := s.d.Write(ctx, func(tx Q) error {
		if _, err := s.lockUser(ctx, tx, sess.UserID); err != nil {
			return err
		}
		l, err := useLinkIn(ctx, tx, id, db.LinkSignIn, sess.UserID, sess.CreatedAt)
		if err != nil {
			return err
		}
		if evicted, err = s.createSessionIn(ctx, tx, sess, maxPerUser, l.Epoch, mail); err != nil {
			return err
		}
		return s.verifyEmailIn(ctx, tx, sess.UserID, l.Email, sess.CreatedAt)
	})
	if err != nil {
		return nil, failed("sign in with link", err)
	}
	s.notifyCreated(sess, evicted)
	return evicted, nil
}

// pendingChangesSQL selects the user's change-of-address links that could
// still be used at ?2: the LinkDiesWithReset rule, as useLinkIn applies it.
const pendingChangesSQL = `SELECT ` + linkColumns + ` FROM link_tokens
	WHERE user_id = ?1 AND purpose = '` + db.LinkChangeEmail + `' AND used_at IS NULL AND expires_at > ?2
		AND epoch = (SELECT epoch FROM users WHERE id = ?1)
		AND (account_email = '' OR account_email = (SELECT email FROM users WHERE id = ?1))
	ORDER BY created_at DESC, id`

// PendingEmailChanges returns the user's usable change-of-address links,
// newest first.
func (s *Store) PendingEmailChanges(ctx context.Context, userID int64, now time.Time) ([]db.LinkToken, error) {
	out, err := scanLinks(s.d.Hot().Query(ctx, pendingChangesSQL, userID, now.Unix()))
	if err != nil {
		return nil, failed("pending email changes", err)
	}
	return out, nil
}

// CancelEmailChanges voids the user's pending change links at now, using
// up the cancel link first if one is given (the user's, else
// db.ErrNotFound), in one transaction, and returns how many it voided. The
// user's row is locked first (PostgreSQL: KEY SHARE; see Lock order):
// db.ErrNotFound if there is no such user.
func (s *Store) CancelEmailChanges(ctx context.Context, userID int64, cancelLinkID string, now time.Time) (int, error) {
	var n int64
	err := s.d.Write(ctx, func(tx Q) error {
		if err := s.lockUserKey(ctx, tx, userID); err != nil {
			return err
		}
		if cancelLinkID != "" {
			if _, err := useLinkIn(ctx, tx, cancelLinkID, db.LinkCancelEmailChange, userID, now); err != nil {
				return err
			}
		}
		var err error
		n, err = tx.Exec(ctx, `UPDATE link_tokens SET used_at = ?1
			WHERE user_id = ?2 AND purpose = ?3 AND used_at IS NULL AND expires_at > ?1`, now.Unix(), userID, db.LinkChangeEmail)
		return err
	})
	if err != nil {
		return 0, failed("cancel email changes", err)
	}
	return int(n), nil
}

// SignInPlaceSeen reports whether the user signed in with device from
// network at or after since.
func (s *Store) SignInPlaceSeen(ctx context.Context, userID int64, device, network string, since time.Time) (bool, error) {
	var seen bool
	if err := s.d.Reads().QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM sign_in_places
		WHERE user_id = ? AND device = ? AND network = ? AND last_seen_at >= ?)`,
		userID, device, network, since.Unix()).Scan(&seen); err != nil {
		return false, failed("sign-in place seen", err)
	}
	return seen, nil
}

// RememberSignInPlace records device and network as seen at at (a later
// time than the one stored only moves it forward); db.ErrNotFound if there
// is no such user. One statement: on PostgreSQL its only user lock is the
// foreign key check's, taken after nothing else of the user's.
func (s *Store) RememberSignInPlace(ctx context.Context, userID int64, device, network string, at time.Time) error {
	_, err := s.d.Writes().Exec(ctx, rememberPlaceSQL, userID, device, network, at.Unix())
	if s.d.IsForeignKeyViolation(err) {
		return db.ErrNotFound
	}
	return failed("remember sign-in place", err)
}

// SetSignInAlerts turns the user's new sign-in alerts on or off;
// db.ErrNotFound if the user does not exist.
func (s *Store) SetSignInAlerts(ctx context.Context, userID int64, on bool) error {
	n, err := s.d.Writes().Exec(ctx, `UPDATE users SET sign_in_alerts_off = ? WHERE id = ?`, !on, userID)
	if err != nil {
		return failed("set sign-in alerts", err)
	}
	if n == 0 {
		return db.ErrNotFound
	}
	return nil
}
