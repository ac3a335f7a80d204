package sqlstore

import (
	"context"
	"fmt"
	"time"

	"doorman/db"
)

// RenameSession gives the user's live session id the device name name (""
// removes it) and records the change in the history, in one transaction:
// the row's user and liveness are in the UPDATE's WHERE, so another user's,
// an unknown or an ended id changes nothing (db.ErrNotFound). The entry
// names the renamed session and its browser label; its device, place and
// address are the acting browser's (db.Acted), which made the change.
// Nothing ends. The user's row is locked first (KEY SHARE, see Lock
// order): the history row's foreign key takes that lock.
func (s *Store) RenameSession(ctx context.Context, userID int64, id, name string, now time.Time) (db.Session, error) {
	var renamed db.Session
	err := s.d.Write(ctx, func(tx Q) error {
		if err := s.lockUserKey(ctx, tx, userID); err != nil {
			return err
		}
		var err error
		renamed, err = scanSession(tx.QueryRow(ctx, `UPDATE sessions SET device_name = ?2
			WHERE user_id = ?3 AND id = ?4 AND `+alive(1)+` RETURNING `+sessionColumns,
			now.Unix(), name, userID, id))
		if err != nil {
			return notFound(err)
		}
		return s.recordIn(ctx, tx, db.SecurityEvent{UserID: userID, Kind: db.EventDeviceRenamed, At: now,
			SessionID: id, Detail: name, Method: renamed.DeviceLabel})
	})
	if err != nil {
		return db.Session{}, failed("rename session", err)
	}
	return renamed, nil
}

// SessionNames returns the device names of those of ids that are the
// user's sessions, alive or not, and are named (the history names a
// session's device by its name).
func (s *Store) SessionNames(ctx context.Context, userID int64, ids []string) (map[string]string, error) {
	out := map[string]string{}
	// In chunks: an IN list has a bound.
	for start := 0; start < len(ids); start += endChunk {
		chunk := ids[start:min(start+endChunk, len(ids))]
		args := []any{userID, ""}
		for _, id := range chunk {
			args = append(args, id)
		}
		rows, err := s.d.Reads().Query(ctx, `SELECT id, device_name FROM sessions
			WHERE user_id = ?1 AND device_name <> ?2 AND id IN (`+numbered(3, len(chunk))+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("db: session names: %w", err)
		}
		for rows.Next() {
			var id, name string
			if err := rows.Scan(&id, &name); err != nil {
				rows.Close()
				return nil, fmt.Errorf("db: session names: %w", err)
			}
			out[id] = name
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("db: session names: %w", err)
		}
	}
	return out, nil
}
