package sqlstore

import (
	"context"
	"time"

	"doorman/db"
)

// AcknowledgeSignIns records that the user said the sign-ins of sessions
// ids were theirs: known_at = now on each of them that is the user's, alive
// at now and not acknowledged before, with a history entry each (from the
// acting browser of ctx), in one transaction. Another user's id, an ended
// or unknown one changes nothing. It returns the sessions it acknowledged
// (none: nothing changed). The user's row is locked first (KEY SHARE, see
// Lock order): the history rows take that lock.
func (s *Store) AcknowledgeSignIns(ctx context.Context, userID int64, ids []string, now time.Time) ([]db.SessionSummary, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var known []db.SessionSummary
	err := s.d.Write(ctx, func(tx Q) error {
		if err := s.lockUserKey(ctx, tx, userID); err != nil {
			return err
		}
		args := []any{now.Unix(), userID}
		for _, id := range ids {
			args = append(args, id)
		}
		var err error
		known, err = scanSummaries(tx.Query(ctx, `UPDATE sessions SET known_at = ?1
			WHERE user_id = ?2 AND id IN (`+numbered(3, len(ids))+`) AND known_at IS NULL AND `+alive(1)+`
			RETURNING id, created_at, last_seen_at, device_label, device_kind, location, location_short, auth_method, ip, device_name, known_at, passkey_id`,
			args...))
		if err != nil || len(known) == 0 {
			return err
		}
		events := make([]db.SecurityEvent, len(known))
		for i, k := range known {
			events[i] = db.SecurityEvent{UserID: userID, Kind: db.EventSignInKnown, At: now, SessionID: k.ID,
				Detail: k.DeviceLabel + ", " + k.Location}
		}
		return s.recordIn(ctx, tx, events...)
	})
	if err != nil {
		return nil, failed("acknowledge sign-ins", err)
	}
	return known, nil
}
