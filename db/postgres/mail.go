package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"doorman/db"
)

// The mail queue as the methods not yet written once in db/sqlstore use it
// (their lock order: sqlstore's mail_links.go), and the links the Security
// page's overview reads (SecurityOverview, in sessions.go).

const insertOutboxSQL = `INSERT INTO outbox (message_id, user_id, to_addr, kind, subject, text_body, html_body,
	created_at, not_after, next_attempt_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $8)`

const linkColumns = `id, secret_hash, user_id, purpose, email, session_id, binding_hash, epoch, created_at, expires_at,
	used_at, ip, device, location, account_email`

const insertLinkSQL = `INSERT INTO link_tokens (` + linkColumns + `)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`

// voidChangeLinksSQL voids a user's unused change-of-address links before a
// new one is stored: one change is pending at a time, so an undone change
// cannot be redone by a second link queued before it.
const voidChangeLinksSQL = `UPDATE link_tokens SET used_at = $1 WHERE user_id = $2 AND purpose = $3 AND used_at IS NULL`

// queueIn stores mails and their links in tx, in one round trip. A UserID
// of 0 in a mail or a link becomes newUser (CreateUser's new user; 0
// elsewhere, where a mail's 0 means it is about no account). A Message-ID
// or link id already stored is ErrConflict, a link of a user that does not
// exist ErrNotFound; either aborts tx. The caller holds the row lock of
// the users the links reference (see Lock order).
func (s *Store) queueIn(ctx context.Context, tx pgx.Tx, newUser int64, mails []db.Mail) error {
	if len(mails) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	for _, m := range mails {
		if m.MessageID == "" {
			return errors.New("a mail without a Message-ID")
		}
		if m.UserID == 0 {
			m.UserID = newUser
		}
		if m.CreatedAt.IsZero() {
			m.CreatedAt = s.now()
		}
		b.Queue(insertOutboxSQL, m.MessageID, m.UserID, m.To, m.Kind, m.Subject, m.Text, m.HTML,
			m.CreatedAt.Unix(), toUnix(m.NotAfter))
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
				b.Queue(voidChangeLinksSQL, l.CreatedAt.Unix(), l.UserID, db.LinkChangeEmail)
			}
			b.Queue(insertLinkSQL, l.ID, l.SecretHash, l.UserID, l.Purpose, l.Email, l.SessionID, l.BindingHash,
				l.Epoch, l.CreatedAt.Unix(), l.ExpiresAt.Unix(), used, l.IP, l.Device, l.Location, l.AccountEmail)
		}
	}
	err := tx.SendBatch(ctx, b).Close()
	switch {
	case isUniqueViolation(err):
		return db.ErrConflict
	case isForeignKeyViolation(err):
		return db.ErrNotFound
	}
	return err
}

func scanLink(row pgx.Row) (db.LinkToken, error) {
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

// pendingChangesSQL selects the user's change-of-address links that could
// still be used at $2: the LinkDiesWithReset rule, as sqlstore's useLinkIn
// applies it.
const pendingChangesSQL = `SELECT ` + linkColumns + ` FROM link_tokens
	WHERE user_id = $1 AND purpose = '` + db.LinkChangeEmail + `' AND used_at IS NULL AND expires_at > $2
		AND epoch = (SELECT epoch FROM users WHERE id = $1)
		AND (account_email = '' OR account_email = (SELECT email FROM users WHERE id = $1))
	ORDER BY created_at DESC, id`

func scanLinks(rows pgx.Rows, err error) ([]db.LinkToken, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []db.LinkToken
	for rows.Next() {
		l, err := scanLink(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, rows.Err()
}
