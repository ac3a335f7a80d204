package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"doorman/db"
)

// Lock order (see tokens.go): every write here that touches a user's rows
// takes the user's row first. A link's foreign key check takes the user's
// row (KEY SHARE), so a transaction inserting links holds it already; the
// outbox references no one (a mail may outlive its account) and locks no
// user. The writes that use a link and change the user (ConfirmEmail,
// SignInWithLink, RecoverAccount) lock the user's row FOR UPDATE before the
// link's: DeleteUser takes the user's row and then, by cascade, the links.

// maxLastError bounds the error text kept on an outbox row.
const maxLastError = 1000

// querier is what a pool and a transaction both do.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

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

const outboxColumns = `id, message_id, user_id, to_addr, kind, subject, text_body, html_body, created_at, not_after,
	status, attempts, next_attempt_at, claimed_by, claimed_until, sent_at, last_error`

func scanOutboxMail(row pgx.Row) (db.OutboxMail, error) {
	var m db.OutboxMail
	var created, notAfter, next, claimed, sent int64
	if err := row.Scan(&m.ID, &m.MessageID, &m.UserID, &m.To, &m.Kind, &m.Subject, &m.Text, &m.HTML, &created, &notAfter,
		&m.Status, &m.Attempts, &next, &m.ClaimedBy, &claimed, &sent, &m.LastError); err != nil {
		return db.OutboxMail{}, err
	}
	m.CreatedAt, m.NotAfter, m.NextAttemptAt = time.Unix(created, 0), fromUnix(notAfter), time.Unix(next, 0)
	m.ClaimedUntil, m.SentAt = fromUnix(claimed), fromUnix(sent)
	return m, nil
}

// ClaimMail claims for worker, until now+lease, up to limit queued mails
// that are due at now and that no worker holds (a claim whose lease ran out
// is free again), oldest first. Queued, unheld mails past their NotAfter
// are first marked MailExpired, their bodies erased. Safe with several
// instances: the claim is one statement whose rows are locked FOR UPDATE
// SKIP LOCKED, so two workers claiming at once take disjoint mails without
// waiting for each other, and a row's claim is re-checked against the
// committed row once locked.
func (s *Store) ClaimMail(ctx context.Context, worker string, now time.Time, lease time.Duration, limit int) ([]db.OutboxMail, error) {
	if worker == "" {
		return nil, errors.New("db: claim mail: no worker name")
	}
	if limit <= 0 {
		return nil, nil
	}
	n := now.Unix()
	if _, err := s.pool.Exec(ctx, `UPDATE outbox SET status = $2, text_body = '', html_body = '', finished_at = $1
		WHERE id IN (SELECT id FROM outbox WHERE status = $3 AND not_after <> 0 AND not_after <= $1 AND claimed_until <= $1
			FOR UPDATE SKIP LOCKED)
		AND status = $3`, n, db.MailExpired, db.MailQueued); err != nil {
		return nil, fmt.Errorf("db: claim mail: expire: %w", err)
	}
	rows, err := s.pool.Query(ctx, `WITH due AS (
			SELECT id FROM outbox
			WHERE status = $5 AND next_attempt_at <= $1 AND claimed_until <= $1 AND (not_after = 0 OR not_after > $1)
			ORDER BY created_at, id LIMIT $4 FOR UPDATE SKIP LOCKED)
		UPDATE outbox o SET claimed_by = $2, claimed_until = $3 FROM due WHERE o.id = due.id
		RETURNING `+prefixed("o.", outboxColumns), n, worker, now.Add(lease).Unix(), limit, db.MailQueued)
	if err != nil {
		return nil, fmt.Errorf("db: claim mail: %w", err)
	}
	defer rows.Close()
	var out []db.OutboxMail
	for rows.Next() {
		m, err := scanOutboxMail(rows)
		if err != nil {
			return nil, fmt.Errorf("db: claim mail: %w", err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("db: claim mail: %w", err)
	}
	// RETURNING gives no order.
	slices.SortFunc(out, func(a, b db.OutboxMail) int { return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID)) })
	return out, nil
}

// prefixed qualifies each column of a comma-separated list with p.
func prefixed(p, columns string) string {
	return p + strings.Join(strings.Fields(strings.ReplaceAll(columns, ",", " ")), ", "+p)
}

// holdsClaim is the WHERE of a worker's write on mail $1 by worker $2: the
// mail is still queued and claimed by it. A claim whose lease ran out still
// counts while no other worker took it: the mail was sent, and marking it
// so spares the recipient a duplicate.
const holdsClaim = `id = $1 AND status = 'queued' AND claimed_by = $2 AND claimed_by <> ''`

// MarkMailSent records that worker sent mail id at now and erases its
// bodies; ErrNotFound if worker does not hold the claim.
func (s *Store) MarkMailSent(ctx context.Context, id int64, worker string, now time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE outbox SET status = $3, sent_at = $4, finished_at = $4, text_body = '', html_body = ''
		WHERE `+holdsClaim, id, worker, db.MailSent, now.Unix())
	if err != nil {
		return fmt.Errorf("db: mark mail sent: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return db.ErrNotFound
	}
	return nil
}

// MarkMailFailed records a failed attempt by worker at now (attempts + 1,
// the error); if giveUp, the mail is MailFailed and its bodies erased, else
// the claim is released and the next attempt is at retryAt. ErrNotFound if
// worker does not hold the claim.
func (s *Store) MarkMailFailed(ctx context.Context, id int64, worker, errText string, retryAt time.Time, giveUp bool, now time.Time) error {
	errText = truncate(errText, maxLastError)
	var tag pgconn.CommandTag
	var err error
	if giveUp {
		tag, err = s.pool.Exec(ctx, `UPDATE outbox SET attempts = attempts + 1, last_error = $3, status = $4,
			text_body = '', html_body = '', finished_at = $5 WHERE `+holdsClaim, id, worker, errText, db.MailFailed, now.Unix())
	} else {
		tag, err = s.pool.Exec(ctx, `UPDATE outbox SET attempts = attempts + 1, last_error = $3, next_attempt_at = $4,
			claimed_by = '', claimed_until = 0 WHERE `+holdsClaim, id, worker, errText, retryAt.Unix())
	}
	if err != nil {
		return fmt.Errorf("db: mark mail failed: %w", err)
	}
	if tag.RowsAffected() == 0 {
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

// OutboxMail returns the mail with that Message-ID, or ErrNotFound. Its
// Links are not returned: they live on as link tokens (LinkToken).
func (s *Store) OutboxMail(ctx context.Context, messageID string) (db.OutboxMail, error) {
	m, err := scanOutboxMail(s.pool.QueryRow(ctx, `SELECT `+outboxColumns+` FROM outbox WHERE message_id = $1`, messageID))
	if errors.Is(err, pgx.ErrNoRows) {
		return db.OutboxMail{}, db.ErrNotFound
	}
	if err != nil {
		return db.OutboxMail{}, fmt.Errorf("db: outbox mail: %w", err)
	}
	return m, nil
}

// PruneMail deletes mails that were sent, failed or expired before cutoff.
func (s *Store) PruneMail(ctx context.Context, cutoff time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM outbox WHERE status <> $2 AND finished_at < $1`, cutoff.Unix(), db.MailQueued)
	if err != nil {
		return 0, fmt.Errorf("db: prune mail: %w", err)
	}
	return tag.RowsAffected(), nil
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

// LinkToken returns the link with that public id, used or not, or
// ErrNotFound.
func (s *Store) LinkToken(ctx context.Context, id string) (db.LinkToken, error) {
	l, err := scanLink(s.pool.QueryRow(ctx, `SELECT `+linkColumns+` FROM link_tokens WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return db.LinkToken{}, db.ErrNotFound
	}
	if err != nil {
		return db.LinkToken{}, fmt.Errorf("db: link token: %w", err)
	}
	return l, nil
}

// useLinkIn marks the link id of purpose (of userID's, unless 0) as used at
// now if it is usable: one conditional UPDATE, joined to its user for the
// epoch and address checks of the purposes that die with a reset, so of
// two uses racing (on any instances) the second waits for the first's row
// lock, re-checks the WHERE against the committed row and changes nothing. ErrLinkUsed if
// the link exists but is not usable, ErrNotFound if there is no such link
// (unwrapped errors). A caller that changes the user locks the user's row
// first, which also makes the epoch it compares the current one.
func useLinkIn(ctx context.Context, q querier, id, purpose string, userID int64, now time.Time) (db.LinkToken, error) {
	l, err := scanLink(q.QueryRow(ctx, `UPDATE link_tokens l SET used_at = $3 FROM users u
		WHERE l.id = $1 AND l.purpose = $2 AND ($4::bigint = 0 OR l.user_id = $4) AND u.id = l.user_id
			AND l.used_at IS NULL AND l.expires_at > $3 AND (NOT $5 OR (l.epoch = u.epoch AND (l.account_email = '' OR l.account_email = u.email)))
		RETURNING `+prefixed("l.", linkColumns), id, purpose, now.Unix(), userID, db.LinkDiesWithReset(purpose)))
	if err == nil || !errors.Is(err, pgx.ErrNoRows) {
		return l, err
	}
	var exists bool
	if err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM link_tokens WHERE id = $1 AND purpose = $2 AND ($3::bigint = 0 OR user_id = $3))`,
		id, purpose, userID).Scan(&exists); err != nil {
		return db.LinkToken{}, err
	}
	if exists {
		return db.LinkToken{}, db.ErrLinkUsed
	}
	return db.LinkToken{}, db.ErrNotFound
}

// UseLinkToken marks the link id of purpose as used at now if it is usable
// and returns it; ErrLinkUsed if it was used, expired or made void,
// ErrNotFound if there is no such link of that purpose.
func (s *Store) UseLinkToken(ctx context.Context, id, purpose string, now time.Time) (db.LinkToken, error) {
	l, err := useLinkIn(ctx, s.pool, id, purpose, 0, now)
	if errors.Is(err, db.ErrLinkUsed) || errors.Is(err, db.ErrNotFound) {
		return db.LinkToken{}, err
	}
	if err != nil {
		return db.LinkToken{}, fmt.Errorf("db: use link token: %w", err)
	}
	return l, nil
}

// PruneLinkTokens deletes links that expired before cutoff.
func (s *Store) PruneLinkTokens(ctx context.Context, cutoff time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM link_tokens WHERE expires_at < $1`, cutoff.Unix())
	if err != nil {
		return 0, fmt.Errorf("db: prune link tokens: %w", err)
	}
	return tag.RowsAffected(), nil
}

// lockUserForUpdate takes, in tx, the user's row lock FOR UPDATE (a write
// that changes the user, before any other row of theirs; see Lock order)
// and returns their address; ErrNotFound if there is no such user.
func lockUserForUpdate(ctx context.Context, tx pgx.Tx, userID int64) (email string, err error) {
	err = tx.QueryRow(ctx, `SELECT email FROM users WHERE id = $1 FOR UPDATE`, userID).Scan(&email)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", db.ErrNotFound
	}
	return email, err
}

// verifyEmailIn marks the user's address verified at now if it is not yet
// and is email ("" for whatever it is), and then records EventEmailVerified
// (Detail: the address) in their history. An address already verified
// keeps the time it was first proved. The caller holds the user's row lock.
func verifyEmailIn(ctx context.Context, tx pgx.Tx, userID int64, email string, now time.Time) error {
	var verified string
	err := tx.QueryRow(ctx, `UPDATE users SET email_verified_at = $2
		WHERE id = $1 AND email_verified_at IS NULL AND ($3 = '' OR email = $3) RETURNING email`, userID, now.Unix(), email).Scan(&verified)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	return recordIn(ctx, tx, db.SecurityEvent{UserID: userID, Kind: db.EventEmailVerified, At: now, Detail: verified})
}

// ConfirmEmail uses the link id (LinkVerifyEmail or LinkChangeEmail) at
// now, in one transaction, and returns the user as it is now. A verify
// link marks the address verified (recording EventEmailVerified) if it is
// still the link's Email, else ErrLinkUsed; a change link makes the link's
// Email the user's address, verified, records EventEmailChanged and queues
// mail (ErrEmailTaken if another account has the address: nothing changes,
// the link stays unused; ErrLinkUsed if it is the account's address
// already).
// Locks: the user's row FOR UPDATE, then the link's.
func (s *Store) ConfirmEmail(ctx context.Context, id string, now time.Time, mail ...db.Mail) (db.User, error) {
	var u db.User
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var userID int64
		var purpose string
		err := tx.QueryRow(ctx, `SELECT user_id, purpose FROM link_tokens WHERE id = $1`, id).Scan(&userID, &purpose)
		if errors.Is(err, pgx.ErrNoRows) || (err == nil && purpose != db.LinkVerifyEmail && purpose != db.LinkChangeEmail) {
			return db.ErrNotFound
		}
		if err != nil {
			return err
		}
		email, err := lockUserForUpdate(ctx, tx, userID)
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
			if err := verifyEmailIn(ctx, tx, userID, email, now); err != nil {
				return err
			}
		case db.LinkChangeEmail:
			if l.Email == email {
				// Another link made it the address already: nothing would
				// change, and a notice that it changed would be false.
				return db.ErrLinkUsed
			}
			_, err := tx.Exec(ctx, `UPDATE users SET email = $2, email_verified_at = $3 WHERE id = $1`, userID, l.Email, now.Unix())
			if isUniqueViolation(err) {
				return db.ErrEmailTaken
			}
			if err != nil {
				return err
			}
			if err := recordIn(ctx, tx, db.SecurityEvent{UserID: userID, Kind: db.EventEmailChanged, At: now, Detail: l.Email}); err != nil {
				return err
			}
		}
		if err := s.queueIn(ctx, tx, 0, mail); err != nil {
			return err
		}
		u, err = scanUser(tx.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, userID))
		return err
	})
	if isMailError(err) || errors.Is(err, db.ErrEmailTaken) {
		return db.User{}, err
	}
	if err != nil {
		return db.User{}, fmt.Errorf("db: confirm email: %w", err)
	}
	return u, nil
}

// isMailError reports whether err is one of the sentinel errors the writes
// here return as they are.
func isMailError(err error) bool {
	return errors.Is(err, db.ErrNotFound) || errors.Is(err, db.ErrLinkUsed) || errors.Is(err, db.ErrConflict) ||
		errors.Is(err, db.ErrSignInsReset)
}

// SignInWithLink, in one transaction, uses the sign-in link id (of
// sess.UserID's, unused, unexpired at sess.CreatedAt and of the user's
// current Epoch, else ErrLinkUsed; ErrNotFound if there is no such link of
// theirs), creates session sess as CreateSession does (with the link's
// epoch) and queues mail, and marks the user's address verified: the link
// reached it. Locks: the user's row FOR UPDATE (as CreateSession), then
// the link's.
func (s *Store) SignInWithLink(ctx context.Context, id string, sess db.Session, maxPerUser int, mail ...db.Mail) ([]db.Session, error) {
	var evicted []db.Session
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := lockUserForUpdate(ctx, tx, sess.UserID); err != nil {
			return err
		}
		l, err := useLinkIn(ctx, tx, id, db.LinkSignIn, sess.UserID, sess.CreatedAt)
		if err != nil {
			return err
		}
		if evicted, err = s.createSessionIn(ctx, tx, sess, maxPerUser, l.Epoch, mail); err != nil {
			return err
		}
		return verifyEmailIn(ctx, tx, sess.UserID, l.Email, sess.CreatedAt)
	})
	if isMailError(err) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("db: sign in with link: %w", err)
	}
	s.notifyCreated(sess, evicted)
	return evicted, nil
}

// pendingChangesSQL selects the user's change-of-address links that could
// still be used at $2: the LinkDiesWithReset rule, as useLinkIn applies it.
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

// PendingEmailChanges returns the user's usable change-of-address links.
func (s *Store) PendingEmailChanges(ctx context.Context, userID int64, now time.Time) ([]db.LinkToken, error) {
	out, err := scanLinks(s.pool.Query(ctx, pendingChangesSQL, userID, now.Unix()))
	if err != nil {
		return nil, fmt.Errorf("db: pending email changes: %w", err)
	}
	return out, nil
}

// CancelEmailChanges voids the user's pending change links, using up the
// cancel link first if one is given, in one transaction (the user's row
// locked first: the lock order).
func (s *Store) CancelEmailChanges(ctx context.Context, userID int64, cancelLinkID string, now time.Time) (int, error) {
	var n int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := lockUserKey(ctx, tx, userID); err != nil {
			return err
		}
		if cancelLinkID != "" {
			if _, err := useLinkIn(ctx, tx, cancelLinkID, db.LinkCancelEmailChange, userID, now); err != nil {
				return err
			}
		}
		tag, err := tx.Exec(ctx, `UPDATE link_tokens SET used_at = $1 WHERE user_id = $2 AND purpose = $3 AND used_at IS NULL AND expires_at > $1`,
			now.Unix(), userID, db.LinkChangeEmail)
		n = tag.RowsAffected()
		return err
	})
	if errors.Is(err, db.ErrNotFound) || errors.Is(err, db.ErrLinkUsed) {
		return 0, err
	}
	if err != nil {
		return 0, fmt.Errorf("db: cancel email changes: %w", err)
	}
	return int(n), nil
}

// RecoverAccount does everything r names in one transaction, or nothing
// (see db.Recovery). Locks, in the store's order: the user's row FOR
// UPDATE, then the link, the sessions, the tokens (in id order), the
// two-factor row and recovery codes, the sign-in places, and last the new
// session's rows.
func (s *Store) RecoverAccount(ctx context.Context, r db.Recovery) (db.Recovered, error) {
	var out db.Recovered
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		out = db.Recovered{}
		if _, err := lockUserForUpdate(ctx, tx, r.UserID); err != nil {
			return err
		}
		var link db.LinkToken
		if r.LinkID != "" {
			var err error
			link, err = useLinkIn(ctx, tx, r.LinkID, r.LinkPurpose, r.UserID, r.Now)
			if errors.Is(err, db.ErrNotFound) {
				return db.ErrLinkUsed // not the user's, or no such link: as the contract says
			}
			if err != nil {
				return err
			}
		}
		if r.KeepSessionID != "" {
			// Kept with its old secret, the session would keep the
			// cookie in use before the account was taken back.
			if len(r.KeepSecretHash) == 0 {
				return errors.New("a kept session needs a new secret hash")
			}
			tag, err := tx.Exec(ctx, `UPDATE sessions SET secret_hash = $2, reauth_at = $1
				WHERE user_id = $3 AND id = $4 AND `+alive, r.Now.Unix(), r.KeepSecretHash, r.UserID, r.KeepSessionID)
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 0 {
				return db.ErrNotFound
			}
		}
		var epoch int64
		if err := tx.QueryRow(ctx, `UPDATE users SET epoch = epoch + 1 WHERE id = $1 RETURNING epoch`, r.UserID).Scan(&epoch); err != nil {
			return err
		}
		var events []db.SecurityEvent
		if r.PasswordHash != "" {
			if _, err := tx.Exec(ctx, `UPDATE users SET password_hash = $2 WHERE id = $1`, r.UserID, r.PasswordHash); err != nil {
				return err
			}
			events = append(events, db.SecurityEvent{UserID: r.UserID, Kind: db.EventPasswordChanged, At: r.Now, Reason: r.Reason})
		}
		if r.RestoreEmail != "" {
			_, err := tx.Exec(ctx, `UPDATE users SET email = $2, email_verified_at = $3 WHERE id = $1`, r.UserID, r.RestoreEmail, r.Now.Unix())
			if isUniqueViolation(err) {
				return db.ErrEmailTaken
			}
			if err != nil {
				return err
			}
			events = append(events, db.SecurityEvent{UserID: r.UserID, Kind: db.EventEmailChanged, At: r.Now,
				Detail: r.RestoreEmail, Reason: r.Reason})
		}
		if !r.DropTwoFactorSince.IsZero() {
			tag, err := tx.Exec(ctx, `DELETE FROM two_factor WHERE user_id = $1 AND enabled_at >= $2`, r.UserID, r.DropTwoFactorSince.Unix())
			if err != nil {
				return err
			}
			if tag.RowsAffected() > 0 {
				if _, err := tx.Exec(ctx, `DELETE FROM recovery_codes WHERE user_id = $1`, r.UserID); err != nil {
					return err
				}
				events = append(events, db.SecurityEvent{UserID: r.UserID, Kind: db.EventTwoFactorOff, At: r.Now, Reason: r.Reason})
			}
		}
		if r.EndSessionID != "" {
			// Already ended is fine; the kept session (this browser) is
			// never ended.
			ended, err := s.revokeIn(ctx, tx, `user_id = $4 AND id = $5 AND id <> $6`, r.Reason, r.By, r.Now,
				r.UserID, r.EndSessionID, r.KeepSessionID)
			if err != nil {
				return err
			}
			out.Ended = append(out.Ended, ended...)
		}
		if r.EndOthers {
			ended, err := s.revokeIn(ctx, tx, `user_id = $4 AND id <> $5`, r.Reason, r.By, r.Now, r.UserID, r.KeepSessionID)
			if err != nil {
				return err
			}
			out.Ended = append(out.Ended, ended...)
		}
		if r.EndTokens {
			var err error
			if out.Tokens, err = revokeTokensIn(ctx, tx, `user_id = $4`, r.Reason, r.By, r.Now, r.UserID); err != nil {
				return err
			}
		}
		if r.DisableTwoFactor || r.ClearUnverifiedTwoFactor {
			off, err := twoFactorOffIn(ctx, tx, r.UserID, !r.DisableTwoFactor)
			if err != nil {
				return err
			}
			if out.TwoFactorOff = off; off {
				events = append(events, db.SecurityEvent{UserID: r.UserID, Kind: db.EventTwoFactorOff, At: r.Now, Reason: r.Reason})
			}
		}
		if r.RecordReset {
			events = append(events, db.SecurityEvent{UserID: r.UserID, Kind: db.EventAccountReset, At: r.Now, Reason: r.Reason, By: r.By})
		}
		if err := recordIn(ctx, tx, events...); err != nil {
			return err
		}
		if r.VerifyEmail {
			// The address the link went to, if it names one (an undo
			// link's is the one just restored).
			if err := verifyEmailIn(ctx, tx, r.UserID, link.Email, r.Now); err != nil {
				return err
			}
		}
		if r.ForgetDevice != "" || r.ForgetNetwork != "" {
			if _, err := tx.Exec(ctx, `DELETE FROM sign_in_places WHERE user_id = $1 AND device = $2 AND network = $3`,
				r.UserID, r.ForgetDevice, r.ForgetNetwork); err != nil {
				return err
			}
		}
		if err := s.queueIn(ctx, tx, 0, r.Mail); err != nil {
			return err
		}
		if r.Start != nil {
			if r.Start.UserID != r.UserID {
				return errors.New("the session to start is another user's")
			}
			var err error
			if out.Evicted, err = s.createSessionIn(ctx, tx, *r.Start, r.MaxPerUser, epoch, nil); err != nil {
				return err
			}
		}
		var err error
		out.User, err = scanUser(tx.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = $1`, r.UserID))
		return err
	})
	if isMailError(err) || errors.Is(err, db.ErrEmailTaken) || errors.Is(err, db.ErrTwoFactorEnabled) {
		return db.Recovered{}, err
	}
	if err != nil {
		return db.Recovered{}, fmt.Errorf("db: recover account: %w", err)
	}
	s.notify(db.EndedEvents(out.Ended))
	if r.Start != nil {
		s.notifyCreated(*r.Start, out.Evicted)
	}
	return out, nil
}

// SignInPlaceSeen reports whether the user signed in with device from
// network at or after since.
func (s *Store) SignInPlaceSeen(ctx context.Context, userID int64, device, network string, since time.Time) (bool, error) {
	var seen bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM sign_in_places
		WHERE user_id = $1 AND device = $2 AND network = $3 AND last_seen_at >= $4)`,
		userID, device, network, since.Unix()).Scan(&seen); err != nil {
		return false, fmt.Errorf("db: sign-in place seen: %w", err)
	}
	return seen, nil
}

// RememberSignInPlace records device and network as seen at at (a later
// time than the one stored only moves it forward); ErrNotFound if there is
// no such user. One statement: its only user lock is the foreign key
// check's, taken after nothing else of the user's.
func (s *Store) RememberSignInPlace(ctx context.Context, userID int64, device, network string, at time.Time) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO sign_in_places (user_id, device, network, last_seen_at) VALUES ($1, $2, $3, $4)
		`+placeConflictSQL, userID, device, network, at.Unix())
	if isForeignKeyViolation(err) {
		return db.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("db: remember sign-in place: %w", err)
	}
	return nil
}

// SetSignInAlerts turns the user's new sign-in alerts on or off;
// ErrNotFound if there is no such user.
func (s *Store) SetSignInAlerts(ctx context.Context, userID int64, on bool) error {
	tag, err := s.pool.Exec(ctx, `UPDATE users SET sign_in_alerts_off = $2 WHERE id = $1`, userID, !on)
	if err != nil {
		return fmt.Errorf("db: set sign-in alerts: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return db.ErrNotFound
	}
	return nil
}
