package sqlstore

import (
	"context"
	"errors"
	"time"

	"doorman/db"
)

// Apps and their device authorizations (RFC 8628's device flow). For the
// order in which their writes lock rows, see Lock order in tokens.go.

const deviceColumns = `device_code_hash, user_code, client_id, scopes, created_at, expires_at, interval_seconds,
	last_polled_at, ip, location, status, user_id, decided_at, epoch`

func scanDevice(row Row) (db.DeviceAuthorization, error) {
	var d db.DeviceAuthorization
	var scopes string
	var created, expires, polled int64
	var userID, decided *int64
	if err := row.Scan(&d.DeviceCodeHash, &d.UserCode, &d.ClientID, &scopes, &created, &expires, &d.Interval,
		&polled, &d.IP, &d.Location, &d.Status, &userID, &decided, &d.Epoch); err != nil {
		return db.DeviceAuthorization{}, err
	}
	d.Scopes = splitScopes(scopes)
	d.CreatedAt, d.ExpiresAt, d.LastPolledAt = time.Unix(created, 0), time.Unix(expires, 0), fromUnix(polled)
	if userID != nil {
		d.UserID = *userID
	}
	d.DecidedAt = optionalTime(decided)
	return d, nil
}

// scanDevices reads every row a query of deviceColumns returned (rows, err
// as the query gave them), closing them.
func scanDevices(rows Rows, err error) ([]db.DeviceAuthorization, error) {
	return scanAll(rows, err, scanDevice)
}

// CreateDeviceAuthorization stores a new request (pending unless d.Status
// says otherwise). User codes are unique among all rows; in the same
// transaction it first deletes a request holding the same code that has
// expired at d.CreatedAt, so only an unexpired holder makes the insert fail
// (db.ErrConflict: the caller draws another code; on PostgreSQL, of two
// requests drawing the same code at once, the second waits on the first's
// index entry and then fails). db.ErrNotFound if the app does not exist.
// The app's row is taken first (PostgreSQL: FOR KEY SHARE, see Lock order).
func (s *Store) CreateDeviceAuthorization(ctx context.Context, d db.DeviceAuthorization) error {
	scopes, err := joinScopes(d.Scopes)
	if err != nil {
		return failed("create device authorization", err)
	}
	status := d.Status
	if status == "" {
		status = db.DevicePending
	}
	var userID, decided *int64
	if d.UserID != 0 {
		userID = &d.UserID
	}
	if !d.DecidedAt.IsZero() {
		at := d.DecidedAt.Unix()
		decided = &at
	}
	err = s.d.Write(ctx, func(tx Q) error {
		var one int
		if err := tx.QueryRow(ctx, `SELECT 1 FROM apps WHERE client_id = ?`+s.forUpdate("KEY SHARE"), d.ClientID).Scan(&one); err != nil {
			return notFound(err)
		}
		return s.d.ExecBatch(ctx, tx,
			Stmt{`DELETE FROM device_authorizations WHERE user_code = ? AND expires_at <= ?`, []any{d.UserCode, d.CreatedAt.Unix()}},
			Stmt{`INSERT INTO device_authorizations (` + deviceColumns + `)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				[]any{d.DeviceCodeHash, d.UserCode, d.ClientID, scopes, d.CreatedAt.Unix(), d.ExpiresAt.Unix(), d.Interval,
					toUnix(d.LastPolledAt), d.IP, d.Location, status, userID, decided, d.Epoch}})
	})
	switch {
	case s.d.IsUniqueViolation(err):
		return db.ErrConflict
	case s.d.IsForeignKeyViolation(err):
		return db.ErrNotFound
	}
	return failed("create device authorization", err)
}

// DeviceAuthorizationByUserCode returns the request with that (normalised)
// user code, expired or not, or db.ErrNotFound.
func (s *Store) DeviceAuthorizationByUserCode(ctx context.Context, userCode string) (db.DeviceAuthorization, error) {
	d, err := scanDevice(s.d.Reads().QueryRow(ctx, `SELECT `+deviceColumns+` FROM device_authorizations WHERE user_code = ?`, userCode))
	if err != nil {
		return db.DeviceAuthorization{}, failed("device authorization", notFound(err))
	}
	return d, nil
}

// DecideDeviceAuthorization approves (or denies) the request userCode for
// userID if it is still pending and unexpired at now. The user's row is
// locked first (PostgreSQL: FOR KEY SHARE, see Lock order); then one
// conditional UPDATE: of two decisions racing, the second (PostgreSQL:
// after waiting for the first's row lock) re-checks the WHERE and finds it
// no longer pending. db.ErrNotFound otherwise (nothing changes), also when
// there is no such user. mail is queued in the same transaction.
func (s *Store) DecideDeviceAuthorization(ctx context.Context, userCode string, userID, epoch int64, approve bool, now time.Time, mail ...db.Mail) error {
	status := db.DeviceDenied
	if approve {
		status = db.DeviceApproved
	}
	err := s.d.Write(ctx, func(tx Q) error {
		if err := s.lockUserKey(ctx, tx, userID); err != nil {
			return err
		}
		n, err := tx.Exec(ctx, `UPDATE device_authorizations SET status = ?1, user_id = ?2, decided_at = ?3, epoch = ?4
			WHERE user_code = ?5 AND status = ?6 AND expires_at > ?3`,
			status, userID, now.Unix(), epoch, userCode, db.DevicePending)
		if err != nil {
			return err
		}
		if n == 0 {
			return db.ErrNotFound
		}
		return s.queueIn(ctx, tx, 0, mail)
	})
	if s.d.IsForeignKeyViolation(err) {
		return db.ErrNotFound
	}
	return failed("decide device authorization", err)
}

// PollDeviceAuthorization is one token-endpoint poll, in one transaction
// that reads the request before it writes it (PostgreSQL: FOR UPDATE;
// SQLite: under the writer's lock, taken at BEGIN), so of two polls at
// once the second sees the first's time and is too fast. tooFast (then
// Interval grows by 5, RFC 8628's slow_down) is whether the previous poll
// was less than Interval seconds before now; LastPolledAt becomes now
// either way.
func (s *Store) PollDeviceAuthorization(ctx context.Context, deviceCodeHash []byte, now time.Time) (db.DeviceAuthorization, bool, error) {
	var d db.DeviceAuthorization
	var fast bool
	err := s.d.Write(ctx, func(tx Q) error {
		var err error
		d, err = scanDevice(tx.QueryRow(ctx, `SELECT `+deviceColumns+` FROM device_authorizations
			WHERE device_code_hash = ?`+s.forUpdate("UPDATE"), deviceCodeHash))
		if err != nil {
			return notFound(err)
		}
		if fast = tooFast(d, now); fast {
			d.Interval += 5
		}
		_, err = tx.Exec(ctx, `UPDATE device_authorizations SET interval_seconds = ?, last_polled_at = ? WHERE device_code_hash = ?`,
			d.Interval, now.Unix(), deviceCodeHash)
		return err
	})
	if err != nil {
		return db.DeviceAuthorization{}, false, failed("poll device authorization", err)
	}
	d.LastPolledAt = time.Unix(now.Unix(), 0)
	return d, fast, nil
}

// tooFast reports whether a poll at now comes less than d.Interval seconds
// after the previous one (never, for the first poll), in whole seconds as
// the store keeps time.
func tooFast(d db.DeviceAuthorization, now time.Time) bool {
	return !d.LastPolledAt.IsZero() && now.Unix()-d.LastPolledAt.Unix() < int64(d.Interval)
}

// RedeemDeviceAuthorization, in one transaction, marks the approved request
// redeemed (it must be unexpired at t.CreatedAt and approved by t.UserID)
// and creates token t, and records the app's connection in the user's
// history. The conditional UPDATE redeems it once: a second call
// (PostgreSQL: after waiting for the first's row lock) re-checks the WHERE
// and finds it redeemed (db.ErrNotFound), and creates nothing. An approval
// from before a reset of the account (its epoch moved) or of a disabled
// account is void: the request is marked denied, and stays so, and the
// error is db.ErrSignInsReset.
//
// Locks (PostgreSQL, see Lock order): the app's row first (FOR KEY SHARE),
// as DeleteApp locks it before the users, so a removal of the app either
// ends this token or comes first and leaves nothing to redeem; then the
// user's (FOR UPDATE, by checkEpochIn, which orders the redemption against
// every reset); then the request.
func (s *Store) RedeemDeviceAuthorization(ctx context.Context, deviceCodeHash []byte, t db.Token) error {
	insert, err := insertToken(t)
	if err != nil {
		return failed("redeem device authorization", err)
	}
	voided := false
	err = s.d.Write(ctx, func(tx Q) error {
		var one int
		if err := tx.QueryRow(ctx, `SELECT 1 FROM apps
			WHERE client_id = (SELECT client_id FROM device_authorizations WHERE device_code_hash = ?)`+s.forUpdate("KEY SHARE"),
			deviceCodeHash).Scan(&one); err != nil {
			return notFound(err)
		}
		var epoch int64
		if err := tx.QueryRow(ctx, `SELECT epoch FROM device_authorizations
			WHERE device_code_hash = ? AND status = ? AND expires_at > ? AND user_id = ?`,
			deviceCodeHash, db.DeviceApproved, t.CreatedAt.Unix(), t.UserID).Scan(&epoch); err != nil {
			return notFound(err)
		}
		if err := s.checkEpochIn(ctx, tx, t.UserID, epoch); errors.Is(err, db.ErrSignInsReset) {
			// Approved before the account was reset (or disabled): the
			// approval is void, and stays so.
			voided = true
			_, err := tx.Exec(ctx, `UPDATE device_authorizations SET status = ? WHERE device_code_hash = ? AND status = ?`,
				db.DeviceDenied, deviceCodeHash, db.DeviceApproved)
			return err
		} else if err != nil {
			return err
		}
		// The app connected: its history event names the app (the token's
		// name) and where the request for it came from.
		e := db.SecurityEvent{UserID: t.UserID, Kind: db.EventAppApproved, At: t.CreatedAt, TokenID: t.ID, Detail: t.Name}
		if err := tx.QueryRow(ctx, `UPDATE device_authorizations SET status = ?
			WHERE device_code_hash = ? AND status = ? AND expires_at > ? AND user_id = ? RETURNING ip, location`,
			db.DeviceRedeemed, deviceCodeHash, db.DeviceApproved, t.CreatedAt.Unix(), t.UserID).Scan(&e.IP, &e.Location); err != nil {
			return notFound(err)
		}
		return s.d.ExecBatch(ctx, tx, insert, Stmt{insertSecurityEventSQL, securityEventArgs(e)})
	})
	if err != nil {
		return failed("redeem device authorization", err)
	}
	if voided {
		return db.ErrSignInsReset
	}
	return nil
}

// pendingApprovalsSQL selects user ?1's approvals (?2 approved) no app has
// redeemed yet that still could be at ?3 (the Security page runs it: a hot
// read).
const pendingApprovalsSQL = `SELECT ` + deviceColumns + ` FROM device_authorizations
	WHERE user_id = ?1 AND status = ?2 AND expires_at > ?3 AND epoch = (SELECT epoch FROM users WHERE id = ?1)
	ORDER BY decided_at DESC, user_code`

// PendingApprovals returns the user's approvals no app has redeemed yet
// that still could be at now (unexpired, approved at the user's current
// epoch), newest first.
func (s *Store) PendingApprovals(ctx context.Context, userID int64, now time.Time) ([]db.DeviceAuthorization, error) {
	out, err := scanDevices(s.d.Hot().Query(ctx, pendingApprovalsSQL, userID, db.DeviceApproved, now.Unix()))
	if err != nil {
		return nil, failed("pending approvals", err)
	}
	return out, nil
}

// CancelApproval withdraws one of the user's approvals still waiting (it
// becomes denied); db.ErrNotFound (nothing changes) if it is not an
// approval of theirs still waiting. One conditional UPDATE: it never
// changes the request's user, so it takes no lock of the user's row.
func (s *Store) CancelApproval(ctx context.Context, userID int64, userCode string, now time.Time) error {
	n, err := s.d.Writes().Exec(ctx, `UPDATE device_authorizations SET status = ?1, decided_at = ?2
		WHERE user_code = ?3 AND user_id = ?4 AND status = ?5 AND expires_at > ?2`,
		db.DeviceDenied, now.Unix(), userCode, userID, db.DeviceApproved)
	if err != nil {
		return failed("cancel approval", err)
	}
	if n == 0 {
		return db.ErrNotFound
	}
	return nil
}

// PruneDeviceAuthorizations deletes requests that expired before cutoff.
func (s *Store) PruneDeviceAuthorizations(ctx context.Context, cutoff time.Time) (int64, error) {
	n, err := s.d.Writes().Exec(ctx, `DELETE FROM device_authorizations WHERE expires_at < ?`, cutoff.Unix())
	return n, failed("prune device authorizations", err)
}
