package sqlstore

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"time"

	"doorman/db"
)

// Back-channel logouts owed to apps: written by the endings
// (endSessionGrantsIn, endUserGrantsIn, DisconnectApp) in their
// transactions, sent by the delivery worker. The outbox's shape: claimed
// with a lease so one instance sends each, retried until the app answers
// 2xx or the worker gives up.

const logoutDeliveryColumns = `id, client_id, user_id, subject, session_id, created_at, next_at, attempts, state,
	done_at, last_error`

// logoutDeliveryColumnsOf is logoutDeliveryColumns qualified by alias d.
const logoutDeliveryColumnsOf = `d.id, d.client_id, d.user_id, d.subject, d.session_id, d.created_at, d.next_at,
	d.attempts, d.state, d.done_at, d.last_error`

func scanLogoutDelivery(row Row, extra ...any) (db.LogoutDelivery, error) {
	var d db.LogoutDelivery
	var created, next int64
	var done *int64
	dest := []any{&d.ID, &d.ClientID, &d.UserID, &d.Subject, &d.SessionID, &created, &next, &d.Attempts, &d.State,
		&done, &d.LastError}
	if err := row.Scan(append(dest, extra...)...); err != nil {
		return db.LogoutDelivery{}, err
	}
	d.CreatedAt, d.NextAt, d.DoneAt = time.Unix(created, 0), time.Unix(next, 0), optionalTime(done)
	return d, nil
}

// scanLogoutDeliveryApp reads logoutDeliveryColumnsOf followed by the
// app's name and logout URI (empty for an app that is gone).
func scanLogoutDeliveryApp(row Row) (db.LogoutDelivery, error) {
	var name, uri *string
	d, err := scanLogoutDelivery(row, &name, &uri)
	if name != nil {
		d.AppName = *name
	}
	if uri != nil {
		d.URI = *uri
	}
	return d, err
}

// logoutDueSQL is the condition of a delivery the worker may claim at ?2
// (?1 is db.LogoutPending): pending, due, not leased, and its app still
// takes back-channel logouts.
const logoutDueSQL = `state = ?1 AND next_at <= ?2 AND claimed_until <= ?2
	AND client_id IN (SELECT client_id FROM apps WHERE backchannel_logout_uri <> '')`

// ClaimLogoutDeliveries takes up to limit pending deliveries due at now
// whose app still takes back-channel logouts, oldest due first, leasing
// each until now+lease and counting the attempt, in one write
// transaction. Safe with several instances: on PostgreSQL the rows are
// picked FOR UPDATE SKIP LOCKED in a WITH (run once), so two claims at
// once take disjoint deliveries; on SQLite the single writer orders them.
// A lease that ran out makes the delivery claimable again.
//
// Every instance's worker calls this every few seconds and nearly always
// finds nothing, so it first asks a read whether anything is due, and
// opens the write transaction (SQLite's one writer, PostgreSQL's row
// locks and WAL) only if so. The read decides nothing: the claim re-picks
// and locks its rows itself, so a delivery another instance claimed in
// between is skipped there, and one made just after the read is claimed
// on the next pass (or at once: its writer kicks the worker).
func (s *Store) ClaimLogoutDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]db.LogoutDelivery, error) {
	if limit <= 0 {
		return nil, nil
	}
	var one int64
	err := s.d.Reads().QueryRow(ctx, `SELECT id FROM logout_deliveries WHERE `+logoutDueSQL+` LIMIT 1`,
		db.LogoutPending, now.Unix()).Scan(&one)
	if errors.Is(err, ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, failed("claim logout deliveries", err)
	}
	var out []db.LogoutDelivery
	err = s.d.Write(ctx, func(tx Q) error {
		rows, err := tx.Query(ctx, `WITH due AS (
				SELECT id AS due_id FROM logout_deliveries WHERE `+logoutDueSQL+`
				ORDER BY next_at, id LIMIT ?4`+s.forUpdate("UPDATE SKIP LOCKED")+`)
			UPDATE logout_deliveries SET claimed_until = ?3, attempts = attempts + 1 FROM due WHERE id = due_id
			RETURNING id`, db.LogoutPending, now.Unix(), now.Add(lease).Unix(), limit)
		ids, err := scanAll(rows, err, func(row Row) (any, error) {
			var id int64
			return id, row.Scan(&id)
		})
		if err != nil || len(ids) == 0 {
			return err
		}
		rows, err = tx.Query(ctx, `SELECT `+logoutDeliveryColumnsOf+`, a.name, a.backchannel_logout_uri
			FROM logout_deliveries d LEFT JOIN apps a ON a.client_id = d.client_id
			WHERE d.id IN (`+placeholders(len(ids))+`)`, ids...)
		out, err = scanAll(rows, err, scanLogoutDeliveryApp)
		return err
	})
	if err != nil {
		return nil, failed("claim logout deliveries", err)
	}
	slices.SortFunc(out, func(a, b db.LogoutDelivery) int {
		return cmp.Or(a.NextAt.Compare(b.NextAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// LogoutDelivered records a pending delivery the app answered 2xx;
// db.ErrNotFound if it is not pending.
func (s *Store) LogoutDelivered(ctx context.Context, id int64, now time.Time) error {
	n, err := s.d.Writes().Exec(ctx, `UPDATE logout_deliveries SET state = ?, done_at = ?, claimed_until = 0
		WHERE id = ? AND state = ?`, db.LogoutDelivered, now.Unix(), id, db.LogoutPending)
	if err != nil {
		return failed("logout delivered", err)
	}
	if n == 0 {
		return db.ErrNotFound
	}
	return nil
}

// LogoutFailed records a failed attempt of a pending delivery: retried at
// next (its lease released), or given up (LogoutGaveUp, done at now) when
// giveUp. db.ErrNotFound if it is not pending.
func (s *Store) LogoutFailed(ctx context.Context, id int64, errText string, next time.Time, giveUp bool, now time.Time) error {
	state := db.LogoutPending
	var done *int64
	if giveUp {
		at := now.Unix()
		state, done = db.LogoutGaveUp, &at
	}
	n, err := s.d.Writes().Exec(ctx, `UPDATE logout_deliveries SET state = ?, done_at = ?, last_error = ?, next_at = ?, claimed_until = 0
		WHERE id = ? AND state = ?`, state, done, errText, next.Unix(), id, db.LogoutPending)
	if err != nil {
		return failed("logout failed", err)
	}
	if n == 0 {
		return db.ErrNotFound
	}
	return nil
}

// LogoutDeliveries returns the user's deliveries made at or after since,
// newest first, with their apps' names (confirmations and the history).
func (s *Store) LogoutDeliveries(ctx context.Context, userID int64, since time.Time) ([]db.LogoutDelivery, error) {
	rows, err := s.d.Reads().Query(ctx, `SELECT `+logoutDeliveryColumnsOf+`, a.name, a.backchannel_logout_uri
		FROM logout_deliveries d LEFT JOIN apps a ON a.client_id = d.client_id
		WHERE d.user_id = ? AND d.created_at >= ? ORDER BY d.created_at DESC, d.id DESC`, userID, since.Unix())
	out, err := scanAll(rows, err, scanLogoutDeliveryApp)
	if err != nil {
		return nil, failed("logout deliveries", err)
	}
	return out, nil
}

// PruneLogoutDeliveries deletes deliveries done (delivered or given up)
// before cutoff, and pending ones made before cutoff whose app is gone or
// takes no back-channel logout any more (no worker will claim them). A
// deleted account's deliveries (kept under user 0 so that the apps still
// hear the person is gone) go as soon as they are done: no history shows
// them, and they hold the account's subject, which is all that is left of
// it.
func (s *Store) PruneLogoutDeliveries(ctx context.Context, cutoff time.Time) (int64, error) {
	n, err := s.d.Writes().Exec(ctx, `DELETE FROM logout_deliveries WHERE (state <> ?2 AND (done_at < ?1 OR user_id = ?3))
		OR (state = ?2 AND created_at < ?1 AND client_id NOT IN (SELECT client_id FROM apps WHERE backchannel_logout_uri <> ''))`,
		cutoff.Unix(), db.LogoutPending, 0)
	return n, failed("prune logout deliveries", err)
}
