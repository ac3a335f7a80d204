package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"doorman/db"
)

const insertOutboxSQL = `INSERT INTO outbox (message_id, user_id, to_addr, kind, subject, text_body, html_body,
	created_at, not_after, status, next_attempt_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?8)`

const linkColumns = `id, secret_hash, user_id, purpose, email, session_id, binding_hash, epoch, created_at, expires_at,
	used_at, ip, device, location, account_email`

const insertLinkSQL = `INSERT INTO link_tokens (` + linkColumns + `)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// voidChangeLinksSQL voids a user's unused change-of-address links before a
// new one is stored: one change is pending at a time, so an undone change
// cannot be redone by a second link queued before it.
const voidChangeLinksSQL = `UPDATE link_tokens SET used_at = ? WHERE user_id = ? AND purpose = ? AND used_at IS NULL`

// queueIn puts mails and their links in the outbox inside tx (PostgreSQL:
// in one round trip): every write that sends mail queues it through here,
// in its own transaction, so a write that is refused or rolled back sends
// nothing. A UserID of 0 in a mail or a link becomes newUser (CreateUser's
// new user; 0 elsewhere, where a mail's 0 means it is about no account).
// A Message-ID or link id already stored is db.ErrConflict, a link of a
// user that does not exist db.ErrNotFound (both unwrapped). The caller
// holds the row lock of the users the links reference (see Lock order).
func (s *Store) queueIn(ctx context.Context, tx Q, newUser int64, mails []db.Mail) error {
	if len(mails) == 0 {
		return nil
	}
	var stmts []Stmt
	for _, m := range mails {
		// An empty id would be "unique" once and then collide; a mail
		// without one cannot be deduplicated by its receiver either.
		if m.MessageID == "" {
			return errors.New("queue mail: no Message-ID")
		}
		if m.UserID == 0 {
			m.UserID = newUser
		}
		if m.CreatedAt.IsZero() {
			m.CreatedAt = s.now()
		}
		// Due at once: the worker sends it on its next pass.
		stmts = append(stmts, Stmt{insertOutboxSQL, []any{m.MessageID, m.UserID, m.To, m.Kind, m.Subject, m.Text, m.HTML,
			m.CreatedAt.Unix(), toUnix(m.NotAfter), db.MailQueued}})
		for _, l := range m.Links {
			if l.UserID == 0 {
				l.UserID = newUser
			}
			var used *int64
			if !l.UsedAt.IsZero() {
				at := l.UsedAt.Unix()
				used = &at
			}
			if l.Purpose == db.LinkChangeEmail {
				stmts = append(stmts, Stmt{voidChangeLinksSQL, []any{l.CreatedAt.Unix(), l.UserID, db.LinkChangeEmail}})
			}
			stmts = append(stmts, Stmt{insertLinkSQL, []any{l.ID, l.SecretHash, l.UserID, l.Purpose, l.Email, l.SessionID,
				l.BindingHash, l.Epoch, l.CreatedAt.Unix(), l.ExpiresAt.Unix(), used, l.IP, l.Device, l.Location, l.AccountEmail}})
		}
	}
	err := s.d.ExecBatch(ctx, tx, stmts...)
	switch {
	case s.d.IsUniqueViolation(err):
		return db.ErrConflict
	case s.d.IsForeignKeyViolation(err):
		return db.ErrNotFound
	case err != nil:
		return fmt.Errorf("queue mail: %w", err)
	}
	return nil
}

// QueueMail stores m (and more) and their links in the outbox in one
// transaction; the users its links belong to are locked first, in id
// order (db.ErrNotFound if one does not exist), and a duplicate
// Message-ID or link id is db.ErrConflict.
func (s *Store) QueueMail(ctx context.Context, m db.Mail, more ...db.Mail) error {
	all := append([]db.Mail{m}, more...)
	var users []int64
	for _, m := range all {
		for _, l := range m.Links {
			users = append(users, l.UserID)
		}
	}
	slices.Sort(users)
	users = slices.Compact(users)
	err := s.d.Write(ctx, func(tx Q) error {
		for _, u := range users {
			if err := s.lockUserKey(ctx, tx, u); err != nil {
				return err
			}
		}
		return s.queueIn(ctx, tx, 0, all)
	})
	return failed("queue mail", err)
}
