package sqlstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"doorman/db"
)

// The outbox worker's side of the outbox (QueueMail fills it: queue.go).
// The outbox references no one (a mail may outlive its account), so these
// writes lock no user.

// maxLastError bounds the error text kept on an outbox row.
const maxLastError = 1000

const outboxColumns = `id, message_id, user_id, to_addr, kind, subject, text_body, html_body, created_at, not_after,
	status, attempts, next_attempt_at, claimed_by, claimed_until, sent_at, last_error`

func scanOutboxMail(row Row) (db.OutboxMail, error) {
	var m db.OutboxMail
	var created, notAfter, next, until, sent int64
	if err := row.Scan(&m.ID, &m.MessageID, &m.UserID, &m.To, &m.Kind, &m.Subject, &m.Text, &m.HTML, &created, &notAfter,
		&m.Status, &m.Attempts, &next, &m.ClaimedBy, &until, &sent, &m.LastError); err != nil {
		return db.OutboxMail{}, err
	}
	m.CreatedAt, m.NotAfter, m.NextAttemptAt = time.Unix(created, 0), fromUnix(notAfter), time.Unix(next, 0)
	m.ClaimedUntil, m.SentAt = fromUnix(until), fromUnix(sent)
	return m, nil
}

// scanOutboxMails reads every row of a query of outboxColumns (rows, err
// as the query gave them), closing them.
func scanOutboxMails(rows Rows, err error) ([]db.OutboxMail, error) {
	return scanAll(rows, err, scanOutboxMail)
}

// ClaimMail claims for worker, until now+lease, up to limit queued mails
// that are due at now and that no worker holds (a claim whose lease ran out
// is free again), oldest first, in one write transaction. Queued, unheld
// mails past their NotAfter are first marked MailExpired, their bodies
// erased: a dead link is not sent late. Safe with several instances: on
// PostgreSQL the rows each statement decides on are locked FOR UPDATE SKIP
// LOCKED, so two workers claiming at once take disjoint mails without
// waiting for each other, and a row's claim is re-checked against the
// committed row once locked (the claim's rows are picked in a WITH, run
// once, so a re-check never picks others past the limit); on SQLite the
// single writer orders the claims. On both, the conditions in the UPDATEs
// keep each mail held by one worker at a time.
func (s *Store) ClaimMail(ctx context.Context, worker string, now time.Time, lease time.Duration, limit int) ([]db.OutboxMail, error) {
	if worker == "" {
		// '' is how a free mail is marked: a nameless worker could
		// finish mails it never claimed.
		return nil, errors.New("db: claim mail: no worker name")
	}
	if limit <= 0 {
		return nil, nil
	}
	n := now.Unix()
	lock := s.forUpdate("UPDATE SKIP LOCKED")
	var out []db.OutboxMail
	err := s.d.Write(ctx, func(tx Q) error {
		// status = 'queued' spelled out (not a parameter), here and below,
		// so that SQLite may use the partial index outbox_queued.
		if _, err := tx.Exec(ctx, `UPDATE outbox SET status = ?2, text_body = '', html_body = '', finished_at = ?1
			WHERE id IN (SELECT id FROM outbox WHERE status = 'queued' AND not_after <> 0 AND not_after <= ?1 AND claimed_until <= ?1`+lock+`)
				AND status = 'queued'`, n, db.MailExpired); err != nil {
			return fmt.Errorf("expire: %w", err)
		}
		// The claim leaves out the mails past their NotAfter itself: the
		// expiry above skipped those another transaction held.
		var err error
		out, err = scanOutboxMails(tx.Query(ctx, `WITH due AS (
				SELECT id AS due_id FROM outbox
				WHERE status = 'queued' AND next_attempt_at <= ?1 AND claimed_until <= ?1 AND (not_after = 0 OR not_after > ?1)
				ORDER BY created_at, id LIMIT ?4`+lock+`)
			UPDATE outbox SET claimed_by = ?2, claimed_until = ?3 FROM due WHERE id = due_id
			RETURNING `+outboxColumns, n, worker, now.Add(lease).Unix(), limit))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("db: claim mail: %w", err)
	}
	// RETURNING gives no order.
	slices.SortFunc(out, func(a, b db.OutboxMail) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// heldSQL is the condition that worker holds the queued mail id (it takes
// ?1 id, ?2 worker; a nameless worker holds nothing: the empty name marks
// a free mail). A lease that ran out still counts until another worker claims the
// mail: the mail was sent, and marking it so spares the recipient a
// duplicate; once another worker claimed it, claimed_by is no longer this
// worker's, and a send that finished late is not recorded over the other
// worker's claim.
const heldSQL = `id = ?1 AND status = 'queued' AND claimed_by = ?2 AND claimed_by <> ''`

// MarkMailSent records that worker sent mail id at now and erases its
// bodies (they may hold a link's secret); db.ErrNotFound if worker does not
// hold it.
func (s *Store) MarkMailSent(ctx context.Context, id int64, worker string, now time.Time) error {
	if worker == "" {
		return db.ErrNotFound
	}
	n, err := s.d.Writes().Exec(ctx, `UPDATE outbox SET status = ?3, sent_at = ?4, finished_at = ?4, text_body = '', html_body = ''
		WHERE `+heldSQL, id, worker, db.MailSent, now.Unix())
	if err != nil {
		return fmt.Errorf("db: mark mail sent: %w", err)
	}
	if n == 0 {
		return db.ErrNotFound
	}
	return nil
}

// MarkMailFailed records worker's failed attempt at mail id at now:
// attempts + 1 and errText (cut to maxLastError bytes); if giveUp, the mail
// is MailFailed and its bodies erased, else the claim is released and the
// next attempt is at retryAt. db.ErrNotFound if worker does not hold it.
func (s *Store) MarkMailFailed(ctx context.Context, id int64, worker, errText string, retryAt time.Time, giveUp bool, now time.Time) error {
	if worker == "" {
		return db.ErrNotFound
	}
	errText = truncate(errText, maxLastError)
	query := `UPDATE outbox SET attempts = attempts + 1, last_error = ?3, next_attempt_at = ?4, claimed_by = '', claimed_until = 0
		WHERE ` + heldSQL
	args := []any{id, worker, errText, retryAt.Unix()}
	if giveUp {
		query = `UPDATE outbox SET attempts = attempts + 1, last_error = ?3, status = ?4, finished_at = ?5, text_body = '', html_body = ''
			WHERE ` + heldSQL
		args = []any{id, worker, errText, db.MailFailed, now.Unix()}
	}
	n, err := s.d.Writes().Exec(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("db: mark mail failed: %w", err)
	}
	if n == 0 {
		return db.ErrNotFound
	}
	return nil
}

// truncate cuts s to at most n bytes, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

// OutboxMail returns the mail with that Message-ID, or db.ErrNotFound. Its
// Links are not returned: they live on as link tokens (LinkToken).
func (s *Store) OutboxMail(ctx context.Context, messageID string) (db.OutboxMail, error) {
	m, err := scanOutboxMail(s.d.Reads().QueryRow(ctx, `SELECT `+outboxColumns+` FROM outbox WHERE message_id = ?`, messageID))
	if err != nil {
		return db.OutboxMail{}, failed("outbox mail", notFound(err))
	}
	return m, nil
}

// PruneMail deletes mails that were sent, given up or expired before
// cutoff; queued ones stay however old.
func (s *Store) PruneMail(ctx context.Context, cutoff time.Time) (int64, error) {
	// status spelled out for SQLite's partial index outbox_finished.
	n, err := s.d.Writes().Exec(ctx, `DELETE FROM outbox WHERE status <> 'queued' AND finished_at < ?`, cutoff.Unix())
	return n, failed("prune mail", err)
}
