package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
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

func scanLink(row interface{ Scan(...any) error }) (db.LinkToken, error) {
	var l db.LinkToken
	var created, expires int64
	var used sql.NullInt64
	if err := row.Scan(&l.ID, &l.SecretHash, &l.UserID, &l.Purpose, &l.Email, &l.SessionID, &l.BindingHash, &l.Epoch,
		&created, &expires, &used, &l.IP, &l.Device, &l.Location, &l.AccountEmail); err != nil {
		return db.LinkToken{}, err
	}
	l.CreatedAt, l.ExpiresAt, l.UsedAt = time.Unix(created, 0), time.Unix(expires, 0), nullTime(used)
	return l, nil
}

// useLinkIn marks the link id of purpose used at now inside tx and returns
// it: db.ErrNotFound if there is no such link of that purpose, db.ErrLinkUsed
// if it was used, has expired or (db.LinkDiesWithReset) is of an older epoch
// than its user's or was sent to an address that is no longer the user's. The
// caller checks whose it is, and rolls back on any error.
func useLinkIn(ctx context.Context, tx *sql.Tx, id, purpose string, now time.Time) (db.LinkToken, error) {
	l, err := scanLink(tx.QueryRowContext(ctx, `SELECT `+linkColumns+` FROM link_tokens WHERE id = ? AND purpose = ?`, id, purpose))
	if errors.Is(err, sql.ErrNoRows) {
		return db.LinkToken{}, db.ErrNotFound
	}
	if err != nil {
		return db.LinkToken{}, err
	}
	if !l.Usable(time.Unix(now.Unix(), 0)) { // to the second, as the store keeps time
		return db.LinkToken{}, db.ErrLinkUsed
	}
	if db.LinkDiesWithReset(purpose) {
		var epoch int64
		var email string
		if err := tx.QueryRowContext(ctx, `SELECT epoch, email FROM users WHERE id = ?`, l.UserID).Scan(&epoch, &email); err != nil {
			return db.LinkToken{}, err
		}
		// Void since the account was reset, or since the address it was
		// sent to (or asked from) stopped being the account's. A link
		// from before links kept that address has none to compare.
		if epoch != l.Epoch || l.AccountEmail != "" && l.AccountEmail != email {
			return db.LinkToken{}, db.ErrLinkUsed
		}
	}
	// Conditional on still unused: the write lock makes the read above
	// current, and the condition keeps the link single-use on its own.
	res, err := tx.ExecContext(ctx, `UPDATE link_tokens SET used_at = ? WHERE id = ? AND used_at IS NULL`, now.Unix(), id)
	if err != nil {
		return db.LinkToken{}, err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return db.LinkToken{}, db.ErrLinkUsed
	}
	l.UsedAt = time.Unix(now.Unix(), 0)
	return l, nil
}

// userIn reads the user inside tx (db.ErrNotFound if there is none).
func userIn(ctx context.Context, tx *sql.Tx, id int64) (db.User, error) {
	u, err := scanUser(tx.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return db.User{}, db.ErrNotFound
	}
	return u, err
}

// markVerifiedIn marks the user's address verified at now inside tx, if it
// is still email and not verified yet, and records that in their history.
// An address already verified keeps the time it was first proved.
func markVerifiedIn(ctx context.Context, tx *sql.Tx, userID int64, email string, now time.Time) error {
	res, err := tx.ExecContext(ctx, `UPDATE users SET email_verified_at = ?
		WHERE id = ? AND email = ? AND email_verified_at IS NULL`, now.Unix(), userID, email)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil
	}
	return recordIn(ctx, tx, db.SecurityEvent{UserID: userID, Kind: db.EventEmailVerified, At: now, Detail: email})
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

const outboxColumns = `id, message_id, user_id, to_addr, kind, subject, text_body, html_body, created_at, not_after,
	status, attempts, next_attempt_at, claimed_by, claimed_until, sent_at, last_error`

func scanOutboxMail(row interface{ Scan(...any) error }) (db.OutboxMail, error) {
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

// ClaimMail claims for worker, until now+lease, up to limit queued mails
// that are due and that no worker holds, oldest first, in one write
// transaction: the single writer (and, on any engine, the conditions in the
// UPDATE) make each mail held by one worker at a time. Queued mails past
// their NotAfter that no worker holds are marked expired first, their
// bodies erased: a dead link is not sent late.
func (s *Store) ClaimMail(ctx context.Context, worker string, now time.Time, lease time.Duration, limit int) ([]db.OutboxMail, error) {
	if worker == "" {
		// '' is how a free mail is marked: a nameless worker could
		// finish mails it never claimed.
		return nil, errors.New("db: claim mail: no worker name")
	}
	if limit <= 0 {
		return nil, nil
	}
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("db: claim mail: %w", err)
	}
	defer tx.Rollback()
	n := now.Unix()
	// status = 'queued' spelled out (not a parameter), here and below, so
	// that SQLite may use the partial index outbox_queued.
	if _, err := tx.ExecContext(ctx, `UPDATE outbox SET status = ?, text_body = '', html_body = '', finished_at = ?
		WHERE status = 'queued' AND not_after > 0 AND not_after <= ? AND claimed_until <= ?`,
		db.MailExpired, n, n, n); err != nil {
		return nil, fmt.Errorf("db: claim mail: %w", err)
	}
	rows, err := tx.QueryContext(ctx, `UPDATE outbox SET claimed_by = ?, claimed_until = ?
		WHERE id IN (SELECT id FROM outbox WHERE status = 'queued' AND next_attempt_at <= ? AND claimed_until <= ?
			ORDER BY created_at, id LIMIT ?)
		RETURNING `+outboxColumns, worker, now.Add(lease).Unix(), n, n, limit)
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
	rows.Close()
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("db: claim mail: %w", err)
	}
	// RETURNING gives no order.
	slices.SortFunc(out, func(a, b db.OutboxMail) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// heldSQL is the condition that worker holds the queued mail id (it takes
// id, then worker). A lease that ran out still counts until another worker
// claims the mail: then claimed_by is no longer this worker's, and a send
// that finished late is not recorded over the other worker's claim.
const heldSQL = `id = ? AND status = 'queued' AND claimed_by = ?`

// MarkMailSent records that worker sent mail id at now and erases its
// bodies (they may hold a link's secret); db.ErrNotFound if worker does not
// hold it.
func (s *Store) MarkMailSent(ctx context.Context, id int64, worker string, now time.Time) error {
	if worker == "" {
		return db.ErrNotFound
	}
	res, err := s.write.ExecContext(ctx, `UPDATE outbox SET status = ?, sent_at = ?, finished_at = ?, text_body = '', html_body = ''
		WHERE `+heldSQL, db.MailSent, now.Unix(), now.Unix(), id, worker)
	if err != nil {
		return fmt.Errorf("db: mark mail sent: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return db.ErrNotFound
	}
	return nil
}

// MarkMailFailed records worker's failed attempt at mail id: attempts + 1
// and errText; if giveUp, the mail is failed and its bodies erased, else
// the claim is released and the next attempt is at retryAt. db.ErrNotFound
// if worker does not hold it.
func (s *Store) MarkMailFailed(ctx context.Context, id int64, worker, errText string, retryAt time.Time, giveUp bool, now time.Time) error {
	if worker == "" {
		return db.ErrNotFound
	}
	query := `UPDATE outbox SET attempts = attempts + 1, last_error = ?, claimed_by = '', claimed_until = 0, next_attempt_at = ?
		WHERE ` + heldSQL
	args := []any{errText, retryAt.Unix(), id, worker}
	if giveUp {
		query = `UPDATE outbox SET attempts = attempts + 1, last_error = ?, status = ?, finished_at = ?, text_body = '', html_body = ''
			WHERE ` + heldSQL
		args = []any{errText, db.MailFailed, now.Unix(), id, worker}
	}
	res, err := s.write.ExecContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("db: mark mail failed: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return db.ErrNotFound
	}
	return nil
}

// OutboxMail returns the mail with that Message-ID, or db.ErrNotFound.
func (s *Store) OutboxMail(ctx context.Context, messageID string) (db.OutboxMail, error) {
	m, err := scanOutboxMail(s.read.QueryRowContext(ctx, `SELECT `+outboxColumns+` FROM outbox WHERE message_id = ?`, messageID))
	if errors.Is(err, sql.ErrNoRows) {
		return db.OutboxMail{}, db.ErrNotFound
	}
	if err != nil {
		return db.OutboxMail{}, fmt.Errorf("db: outbox mail: %w", err)
	}
	return m, nil
}

// PruneMail deletes mails that were sent, given up or expired before
// cutoff; queued ones stay however old.
func (s *Store) PruneMail(ctx context.Context, cutoff time.Time) (int64, error) {
	// status spelled out for the partial index outbox_finished.
	res, err := s.write.ExecContext(ctx, `DELETE FROM outbox WHERE status <> 'queued' AND finished_at < ?`, cutoff.Unix())
	if err != nil {
		return 0, fmt.Errorf("db: prune mail: %w", err)
	}
	return res.RowsAffected()
}

// LinkToken returns the link with that public id, used or not, or
// db.ErrNotFound.
func (s *Store) LinkToken(ctx context.Context, id string) (db.LinkToken, error) {
	l, err := scanLink(s.read.QueryRowContext(ctx, `SELECT `+linkColumns+` FROM link_tokens WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return db.LinkToken{}, db.ErrNotFound
	}
	if err != nil {
		return db.LinkToken{}, fmt.Errorf("db: link token: %w", err)
	}
	return l, nil
}

// UseLinkToken marks the link id of purpose used at now if it is usable
// and returns it: db.ErrLinkUsed if it was used, expired or made void,
// db.ErrNotFound if there is no such link of that purpose. Of many uses at
// once exactly one succeeds.
func (s *Store) UseLinkToken(ctx context.Context, id, purpose string, now time.Time) (db.LinkToken, error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return db.LinkToken{}, fmt.Errorf("db: use link: %w", err)
	}
	defer tx.Rollback()
	l, err := useLinkIn(ctx, tx, id, purpose, now)
	if err != nil {
		return db.LinkToken{}, failed("use link", err)
	}
	if err := tx.Commit(); err != nil {
		return db.LinkToken{}, fmt.Errorf("db: use link: %w", err)
	}
	return l, nil
}

// PruneLinkTokens deletes links that expired before cutoff.
func (s *Store) PruneLinkTokens(ctx context.Context, cutoff time.Time) (int64, error) {
	res, err := s.write.ExecContext(ctx, `DELETE FROM link_tokens WHERE expires_at < ?`, cutoff.Unix())
	if err != nil {
		return 0, fmt.Errorf("db: prune links: %w", err)
	}
	return res.RowsAffected()
}

// ConfirmEmail uses the verify or change link id at now, in one
// transaction. A verify link marks the address verified if it is still the
// link's (else db.ErrLinkUsed). A change link makes its address the
// account's, verified, records the change and queues mail; db.ErrEmailTaken
// (the link stays unused) if another account has it, and db.ErrLinkUsed if
// it is the account's address already (another link made it so: nothing
// would change, and a "your address changed" notice would be false).
func (s *Store) ConfirmEmail(ctx context.Context, id string, now time.Time, mail ...db.Mail) (db.User, error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return db.User{}, fmt.Errorf("db: confirm email: %w", err)
	}
	defer tx.Rollback()
	u, err := s.confirmEmailIn(ctx, tx, id, now, mail)
	if err != nil {
		return db.User{}, failed("confirm email", err)
	}
	if err := tx.Commit(); err != nil {
		return db.User{}, fmt.Errorf("db: confirm email: %w", err)
	}
	return u, nil
}

func (s *Store) confirmEmailIn(ctx context.Context, tx *sql.Tx, id string, now time.Time, mail []db.Mail) (db.User, error) {
	var purpose string
	err := tx.QueryRowContext(ctx, `SELECT purpose FROM link_tokens WHERE id = ?`, id).Scan(&purpose)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && purpose != db.LinkVerifyEmail && purpose != db.LinkChangeEmail) {
		return db.User{}, db.ErrNotFound
	}
	if err != nil {
		return db.User{}, err
	}
	l, err := useLinkIn(ctx, tx, id, purpose, now)
	if err != nil {
		return db.User{}, err
	}
	u, err := userIn(ctx, tx, l.UserID)
	if err != nil {
		return db.User{}, err
	}
	switch {
	case purpose == db.LinkVerifyEmail && u.Email != l.Email:
		// The address changed since the link was sent: the link proves
		// nothing about the one the account has now.
		return db.User{}, db.ErrLinkUsed
	case purpose == db.LinkVerifyEmail:
		if err := markVerifiedIn(ctx, tx, u.ID, u.Email, now); err != nil {
			return db.User{}, err
		}
	case u.Email == l.Email:
		return db.User{}, db.ErrLinkUsed
	default:
		_, err := tx.ExecContext(ctx, `UPDATE users SET email = ?, email_verified_at = ? WHERE id = ?`, l.Email, now.Unix(), u.ID)
		if isUniqueViolation(err) {
			return db.User{}, db.ErrEmailTaken
		}
		if err != nil {
			return db.User{}, err
		}
		if err := recordIn(ctx, tx, db.SecurityEvent{UserID: u.ID, Kind: db.EventEmailChanged, At: now, Detail: l.Email}); err != nil {
			return db.User{}, err
		}
	}
	if err := queueMailIn(ctx, tx, mail...); err != nil {
		return db.User{}, err
	}
	return userIn(ctx, tx, u.ID)
}

// SignInWithLink uses the sign-in link id (sess.UserID's: another user's is
// db.ErrNotFound) at sess.CreatedAt and creates session sess as
// CreateSession does, with the link's epoch, in one transaction: a link
// made before a reset of the user's sign-ins is db.ErrLinkUsed, a disabled
// user's db.ErrSignInsReset, and either writes nothing. It also marks the
// address verified, unless the link was sent to an address that is no
// longer the account's (its Email, when set).
func (s *Store) SignInWithLink(ctx context.Context, id string, sess db.Session, maxPerUser int, mail ...db.Mail) ([]db.Session, error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("db: sign in with link: %w", err)
	}
	defer tx.Rollback()
	evicted, err := s.signInWithLinkIn(ctx, tx, id, sess, maxPerUser, mail)
	if err != nil {
		return nil, failed("sign in with link", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("db: sign in with link: %w", err)
	}
	s.notifyCreated(sess, evicted)
	return evicted, nil
}

func (s *Store) signInWithLinkIn(ctx context.Context, tx *sql.Tx, id string, sess db.Session, maxPerUser int, mail []db.Mail) ([]db.Session, error) {
	l, err := useLinkIn(ctx, tx, id, db.LinkSignIn, sess.CreatedAt)
	if err != nil {
		return nil, err
	}
	if l.UserID != sess.UserID {
		return nil, db.ErrNotFound
	}
	evicted, err := s.createSessionIn(ctx, tx, sess, maxPerUser, l.Epoch)
	if err != nil {
		return nil, err
	}
	u, err := userIn(ctx, tx, sess.UserID)
	if err != nil {
		return nil, err
	}
	if l.Email == "" || l.Email == u.Email {
		if err := markVerifiedIn(ctx, tx, u.ID, u.Email, sess.CreatedAt); err != nil {
			return nil, err
		}
	}
	return evicted, queueMailIn(ctx, tx, mail...)
}

// pendingChangesSQL selects the user's change-of-address links that could
// still be used at $now: the LinkDiesWithReset rule, as useLinkIn applies it.
const pendingChangesSQL = `SELECT ` + linkColumns + ` FROM link_tokens
	WHERE user_id = ?1 AND purpose = '` + db.LinkChangeEmail + `' AND used_at IS NULL AND expires_at > ?2
		AND epoch = (SELECT epoch FROM users WHERE id = ?1)
		AND (account_email = '' OR account_email = (SELECT email FROM users WHERE id = ?1))
	ORDER BY created_at DESC, id`

// PendingEmailChanges returns the user's usable change-of-address links.
func (s *Store) PendingEmailChanges(ctx context.Context, userID int64, now time.Time) ([]db.LinkToken, error) {
	rows, err := s.read.QueryContext(ctx, pendingChangesSQL, userID, now.Unix())
	if err != nil {
		return nil, fmt.Errorf("db: pending email changes: %w", err)
	}
	defer rows.Close()
	var out []db.LinkToken
	for rows.Next() {
		l, err := scanLink(rows)
		if err != nil {
			return nil, fmt.Errorf("db: pending email changes: %w", err)
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("db: pending email changes: %w", err)
	}
	return out, nil
}

// CancelEmailChanges voids the user's pending change links, using up the
// cancel link first if one is given, in one transaction.
func (s *Store) CancelEmailChanges(ctx context.Context, userID int64, cancelLinkID string, now time.Time) (int, error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("db: cancel email changes: %w", err)
	}
	defer tx.Rollback()
	if cancelLinkID != "" {
		l, err := useLinkIn(ctx, tx, cancelLinkID, db.LinkCancelEmailChange, now)
		if err == nil && l.UserID != userID {
			err = db.ErrNotFound
		}
		if err != nil {
			return 0, failed("cancel email changes", err)
		}
	}
	res, err := tx.ExecContext(ctx, `UPDATE link_tokens SET used_at = ? WHERE user_id = ? AND purpose = ? AND used_at IS NULL AND expires_at > ?`,
		now.Unix(), userID, db.LinkChangeEmail, now.Unix())
	if err != nil {
		return 0, fmt.Errorf("db: cancel email changes: %w", err)
	}
	n, _ := res.RowsAffected()
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("db: cancel email changes: %w", err)
	}
	return int(n), nil
}

// RecoverAccount does everything r names in one transaction, or nothing
// (see db.Recovery), and reports the sessions it ended and started after
// commit.
func (s *Store) RecoverAccount(ctx context.Context, r db.Recovery) (db.Recovered, error) {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return db.Recovered{}, fmt.Errorf("db: recover account: %w", err)
	}
	defer tx.Rollback()
	out, err := s.recoverIn(ctx, tx, r)
	if err != nil {
		return db.Recovered{}, failed("recover account", err)
	}
	if err := tx.Commit(); err != nil {
		return db.Recovered{}, fmt.Errorf("db: recover account: %w", err)
	}
	ended := append(slices.Clone(out.Ended), out.Evicted...)
	if r.Start != nil {
		s.notifyCreated(*r.Start, ended)
	} else {
		s.notify(db.EndedEvents(ended))
	}
	return out, nil
}

func (s *Store) recoverIn(ctx context.Context, tx *sql.Tx, r db.Recovery) (db.Recovered, error) {
	var out db.Recovered
	now := r.Now.Unix()
	if _, err := userIn(ctx, tx, r.UserID); err != nil {
		return out, err
	}
	if r.LinkID != "" {
		// Whatever is wrong with the link (unknown, another purpose,
		// another user's, used, expired, void), the answer is the one
		// the contract gives: it cannot be used for this.
		l, err := useLinkIn(ctx, tx, r.LinkID, r.LinkPurpose, r.Now)
		if errors.Is(err, db.ErrNotFound) || (err == nil && l.UserID != r.UserID) {
			return out, db.ErrLinkUsed
		}
		if err != nil {
			return out, err
		}
	}
	if r.KeepSessionID != "" {
		// A kept session without a new secret would keep the cookie
		// that was in use before the account was taken back.
		if len(r.KeepSecretHash) == 0 {
			return out, errors.New("a kept session needs a new secret hash")
		}
		res, err := tx.ExecContext(ctx, `UPDATE sessions SET secret_hash = ?, reauth_at = ?
			WHERE user_id = ? AND id = ? AND `+aliveSQL, r.KeepSecretHash, now, r.UserID, r.KeepSessionID, now, now)
		if err != nil {
			return out, err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return out, db.ErrNotFound
		}
	}
	if r.Start != nil && r.Start.UserID != r.UserID {
		return out, errors.New("the session to start is another user's")
	}
	// Always a reset: no sign-in in flight (a password read before, an
	// older reset or sign-in link) survives taking the account back.
	if _, err := tx.ExecContext(ctx, `UPDATE users SET epoch = epoch + 1 WHERE id = ?`, r.UserID); err != nil {
		return out, err
	}
	var events []db.SecurityEvent
	if r.PasswordHash != "" {
		if _, err := tx.ExecContext(ctx, `UPDATE users SET password_hash = ? WHERE id = ?`, r.PasswordHash, r.UserID); err != nil {
			return out, err
		}
		events = append(events, db.SecurityEvent{UserID: r.UserID, Kind: db.EventPasswordChanged, At: r.Now, Reason: r.Reason})
	}
	if r.RestoreEmail != "" {
		_, err := tx.ExecContext(ctx, `UPDATE users SET email = ?, email_verified_at = ? WHERE id = ?`, r.RestoreEmail, now, r.UserID)
		if isUniqueViolation(err) {
			return out, db.ErrEmailTaken
		}
		if err != nil {
			return out, err
		}
		events = append(events, db.SecurityEvent{UserID: r.UserID, Kind: db.EventEmailChanged, At: r.Now, Detail: r.RestoreEmail, Reason: r.Reason})
	}
	if !r.DropTwoFactorSince.IsZero() {
		res, err := tx.ExecContext(ctx, `DELETE FROM two_factor WHERE user_id = ? AND enabled_at >= ?`, r.UserID, r.DropTwoFactorSince.Unix())
		if err != nil {
			return out, err
		}
		if n, _ := res.RowsAffected(); n > 0 {
			if _, err := tx.ExecContext(ctx, `DELETE FROM recovery_codes WHERE user_id = ?`, r.UserID); err != nil {
				return out, err
			}
			events = append(events, db.SecurityEvent{UserID: r.UserID, Kind: db.EventTwoFactorOff, At: r.Now, Reason: r.Reason})
		}
	}
	if r.DisableTwoFactor || r.ClearUnverifiedTwoFactor {
		off, err := twoFactorOffIn(ctx, tx, r.UserID, !r.DisableTwoFactor)
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
	if err := recordIn(ctx, tx, events...); err != nil {
		return out, err
	}
	if r.VerifyEmail {
		u, err := userIn(ctx, tx, r.UserID)
		if err != nil {
			return out, err
		}
		if err := markVerifiedIn(ctx, tx, r.UserID, u.Email, r.Now); err != nil {
			return out, err
		}
	}
	if r.EndSessionID != "" {
		// Already ended is fine. The kept session is never ended: it is
		// this browser, just given a new secret.
		ended, err := s.revokeIn(ctx, tx, `user_id = ? AND id = ? AND id <> ?`, r.Reason, r.By, r.Now, r.UserID, r.EndSessionID, r.KeepSessionID)
		if err != nil {
			return out, err
		}
		out.Ended = append(out.Ended, ended...)
	}
	if r.EndOthers {
		ended, err := s.revokeIn(ctx, tx, `user_id = ? AND id <> ?`, r.Reason, r.By, r.Now, r.UserID, r.KeepSessionID)
		if err != nil {
			return out, err
		}
		out.Ended = append(out.Ended, ended...)
	}
	if r.EndTokens {
		ended, err := revokeTokensIn(ctx, tx, `user_id = ?`, r.Reason, r.By, r.Now, r.UserID)
		if err != nil {
			return out, err
		}
		out.Tokens = ended
	}
	if r.ForgetDevice != "" || r.ForgetNetwork != "" {
		if _, err := tx.ExecContext(ctx, `DELETE FROM sign_in_places WHERE user_id = ? AND device = ? AND network = ?`,
			r.UserID, r.ForgetDevice, r.ForgetNetwork); err != nil {
			return out, err
		}
	}
	if r.Start != nil {
		u, err := userIn(ctx, tx, r.UserID)
		if err != nil {
			return out, err
		}
		if out.Evicted, err = s.createSessionIn(ctx, tx, *r.Start, r.MaxPerUser, u.Epoch); err != nil {
			return out, err
		}
	}
	if err := queueMailIn(ctx, tx, r.Mail...); err != nil {
		return out, err
	}
	var err error
	out.User, err = userIn(ctx, tx, r.UserID)
	return out, err
}

// SignInPlaceSeen reports whether the user signed in with device from
// network at or after since.
func (s *Store) SignInPlaceSeen(ctx context.Context, userID int64, device, network string, since time.Time) (bool, error) {
	var seen bool
	err := s.read.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM sign_in_places
		WHERE user_id = ? AND device = ? AND network = ? AND last_seen_at >= ?)`, userID, device, network, since.Unix()).Scan(&seen)
	if err != nil {
		return false, fmt.Errorf("db: sign-in place seen: %w", err)
	}
	return seen, nil
}

// RememberSignInPlace records device and network as seen at at (a later
// time than the one stored wins); db.ErrNotFound if the user does not exist.
func (s *Store) RememberSignInPlace(ctx context.Context, userID int64, device, network string, at time.Time) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("db: remember sign-in place: %w", err)
	}
	defer tx.Rollback()
	err = rememberPlaceIn(ctx, tx, userID, device, network, at)
	if isForeignKeyViolation(err) {
		return db.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("db: remember sign-in place: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("db: remember sign-in place: %w", err)
	}
	return nil
}

// SetSignInAlerts turns the user's new sign-in alerts on or off;
// db.ErrNotFound if the user does not exist.
func (s *Store) SetSignInAlerts(ctx context.Context, userID int64, on bool) error {
	res, err := s.write.ExecContext(ctx, `UPDATE users SET sign_in_alerts_off = ? WHERE id = ?`, !on, userID)
	if err != nil {
		return fmt.Errorf("db: set sign-in alerts: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return db.ErrNotFound
	}
	return nil
}
