package sqlstore

import (
	"context"
	"fmt"
	"time"

	"doorman/db"
)

// SecurityOverview is what the Security page shows besides the session
// check: the user's live sessions (as ListSessionSummaries), the
// two-factor state (as TwoFactor), the live tokens (as ListTokens of every
// kind), the latest history (as ListSecurityEvents), the pending change of
// address, the approved device codes not yet redeemed, the connected apps
// (as ConnectedApps) and the passkeys (as ListPasskeys). The same
// statements as those methods, sent together: on PostgreSQL one round
// trip (a batch), on SQLite the hot reads in one read transaction (one
// snapshot).
func (s *Store) SecurityOverview(ctx context.Context, userID int64, now, historySince time.Time, historyLimit int) (db.Overview, error) {
	var o db.Overview
	apps := newAppTally()
	reads := []Read{
		{listSummariesSQL, []any{now.Unix(), userID}, func(r Rows) (err error) {
			o.Sessions, err = scanSummaries(r, nil)
			return err
		}},
		{twoFactorSQL, []any{userID}, func(r Rows) (err error) {
			if !r.Next() {
				return r.Err()
			}
			o.TwoFactor, err = scanTwoFactor(r)
			o.HasTwoFactor = err == nil
			return err
		}},
		{listTokensSQL, []any{now.Unix(), userID, ""}, func(r Rows) (err error) {
			o.Tokens, err = scanTokens(r, nil)
			return err
		}},
		{pendingChangesSQL, []any{userID, now.Unix()}, func(r Rows) (err error) {
			o.EmailChanges, err = scanLinks(r, nil)
			return err
		}},
		{pendingApprovalsSQL, []any{userID, db.DeviceApproved, now.Unix()}, func(r Rows) (err error) {
			o.Approvals, err = scanDevices(r, nil)
			return err
		}},
		{listPasskeysSQL, []any{userID}, func(r Rows) (err error) {
			o.Passkeys, err = scanAll(r, nil, scanPasskey)
			return err
		}},
	}
	reads = append(reads, apps.reads(userID, now)...)
	if historyLimit > 0 {
		reads = append(reads, Read{listSecurityEventsSQL, []any{userID, 0, historySince.Unix(), historyLimit}, func(r Rows) (err error) {
			o.Events, err = scanSecurityEvents(r, nil)
			return err
		}})
	}
	if err := s.d.Batch(ctx, reads...); err != nil {
		return db.Overview{}, fmt.Errorf("db: security overview: %w", err)
	}
	o.Apps = apps.list()
	return o, nil
}
