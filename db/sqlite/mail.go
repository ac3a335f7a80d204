package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"doorman/db"
)

// failed is a method's error: the store's sentinels as they are (callers
// compare them), anything else wrapped with what the method was doing.
func failed(what string, err error) error {
	for _, sentinel := range []error{db.ErrNotFound, db.ErrConflict, db.ErrEmailTaken, db.ErrSignInsReset,
		db.ErrLinkUsed, db.ErrTwoFactorEnabled} {
		if errors.Is(err, sentinel) {
			return err
		}
	}
	return fmt.Errorf("db: %s: %w", what, err)
}

// queueMailIn puts mails and their links in the outbox inside tx: every
// write that sends mail queues it through here, in its own transaction, so
// a write that is refused or rolled back sends nothing. A Message-ID or
// link id already stored is db.ErrConflict; a link of no user is
// db.ErrNotFound (both unwrapped).
func queueMailIn(ctx context.Context, tx *sql.Tx, mails ...db.Mail) error {
	for _, m := range mails {
		// An empty id would be "unique" once and then collide; a mail
		// without one cannot be deduplicated by its receiver either.
		if m.MessageID == "" {
			return errors.New("queue mail: no Message-ID")
		}
		// Due at once: the worker sends it on its next pass.
		_, err := tx.ExecContext(ctx, `INSERT INTO outbox (message_id, user_id, to_addr, kind, subject, text_body, html_body,
			created_at, not_after, status, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			m.MessageID, m.UserID, m.To, m.Kind, m.Subject, m.Text, m.HTML, m.CreatedAt.Unix(), toUnix(m.NotAfter),
			db.MailQueued, m.CreatedAt.Unix())
		if isTaken(err) {
			return db.ErrConflict
		}
		if err != nil {
			return fmt.Errorf("queue mail: %w", err)
		}
		for _, l := range m.Links {
			if err := insertLinkIn(ctx, tx, l); err != nil {
				return err
			}
		}
	}
	return nil
}

const linkColumns = `id, secret_hash, user_id, purpose, email, session_id, binding_hash, epoch, created_at, expires_at,
	used_at, ip, device, location, account_email`

// insertLinkIn stores link l inside tx (db.ErrConflict for an id taken,
// db.ErrNotFound for no such user). A change-of-address link voids the
// user's earlier ones: one change is pending at a time, so an undone change
// cannot be redone by a second link queued before it.
func insertLinkIn(ctx context.Context, tx *sql.Tx, l db.LinkToken) error {
	var used any
	if !l.UsedAt.IsZero() {
		used = l.UsedAt.Unix()
	}
	if l.Purpose == db.LinkChangeEmail {
		if _, err := tx.ExecContext(ctx, `UPDATE link_tokens SET used_at = ? WHERE user_id = ? AND purpose = ? AND used_at IS NULL`,
			l.CreatedAt.Unix(), l.UserID, db.LinkChangeEmail); err != nil {
			return fmt.Errorf("void earlier change links: %w", err)
		}
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO link_tokens (`+linkColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		l.ID, l.SecretHash, l.UserID, l.Purpose, l.Email, l.SessionID, l.BindingHash, l.Epoch, l.CreatedAt.Unix(),
		l.ExpiresAt.Unix(), used, l.IP, l.Device, l.Location, l.AccountEmail)
	switch {
	case isTaken(err):
		return db.ErrConflict
	case isForeignKeyViolation(err):
		return db.ErrNotFound
	case err != nil:
		return fmt.Errorf("insert link: %w", err)
	}
	return nil
}

// rememberPlaceIn records device and network as a sign-in place of the
// user's seen at at, inside tx. A later time wins: an older one never moves
// it back.
func rememberPlaceIn(ctx context.Context, tx *sql.Tx, userID int64, device, network string, at time.Time) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO sign_in_places (user_id, device, network, last_seen_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (user_id, device, network) DO UPDATE SET last_seen_at = MAX(last_seen_at, excluded.last_seen_at)`,
		userID, device, network, at.Unix())
	return err
}
