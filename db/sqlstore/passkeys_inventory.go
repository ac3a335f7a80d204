package sqlstore

import (
	"context"
	"errors"
	"time"

	"doorman/db"
)

// The inventory rule for passkeys (issue 24): a passkey is a credential, so
// disowning the session that added it ("Not you?", "This wasn't me")
// removes it, in the recovery's own transaction.

// PasskeysAddedFrom returns the user's passkeys that disowning sessionID
// removes (see passkeysAddedFromIn).
func (s *Store) PasskeysAddedFrom(ctx context.Context, userID int64, sessionID string) ([]db.Passkey, error) {
	out, err := passkeysAddedFromIn(ctx, s.d.Reads(), userID, sessionID)
	if err != nil {
		return nil, failed("passkeys added from", err)
	}
	return out, nil
}

// passkeysAddedFromIn returns, oldest first, the user's passkeys added from
// sessionID and, in turn, those added from any session (live or ended) one
// of them opened: whoever held the session could have added a passkey,
// signed in with it elsewhere, and added another from there. It stops when
// a round finds nothing new (each round finds at least one passkey more,
// and an account's passkeys are capped).
func passkeysAddedFromIn(ctx context.Context, q Q, userID int64, sessionID string) ([]db.Passkey, error) {
	if sessionID == "" {
		return nil, nil
	}
	var out []db.Passkey
	seenSession := map[string]bool{sessionID: true}
	seenKey := map[int64]bool{}
	frontier := []string{sessionID}
	for len(frontier) > 0 {
		args := []any{userID}
		for _, id := range frontier {
			args = append(args, id)
		}
		rows, err := q.Query(ctx, `SELECT `+passkeyColumns+` FROM passkeys WHERE user_id = ? AND added_by_session IN (`+
			placeholders(len(frontier))+`) ORDER BY created_at, id`, args...)
		found, err := scanAll(rows, err, scanPasskey)
		if err != nil {
			return nil, err
		}
		keyArgs := []any{userID}
		for _, p := range found {
			if !seenKey[p.ID] {
				seenKey[p.ID] = true
				out = append(out, p)
				keyArgs = append(keyArgs, p.ID)
			}
		}
		frontier = nil
		if len(keyArgs) == 1 {
			break
		}
		rows, err = q.Query(ctx, `SELECT id FROM sessions WHERE user_id = ? AND passkey_id IN (`+placeholders(len(keyArgs)-1)+`)`, keyArgs...)
		opened, err := scanAll(rows, err, func(r Row) (string, error) {
			var id string
			return id, r.Scan(&id)
		})
		if err != nil {
			return nil, err
		}
		for _, id := range opened {
			if !seenSession[id] {
				seenSession[id] = true
				frontier = append(frontier, id)
			}
		}
	}
	return out, nil
}

// removePasskeysIn deletes, in a recovery's tx, the passkeys r names
// (RemovePasskeysAddedBy's, then RemovePasskeys that are still the
// user's), recording each in the history. The sessions they opened are
// ended afterwards (endRemovedPasskeysIn), after the recovery's other
// endings, so a session those end keeps their reason.
func (s *Store) removePasskeysIn(ctx context.Context, tx Q, r db.Recovery) ([]db.Passkey, error) {
	added, err := passkeysAddedFromIn(ctx, tx, r.UserID, r.RemovePasskeysAddedBy)
	if err != nil {
		return nil, err
	}
	ids := make([]int64, 0, len(added)+len(r.RemovePasskeys))
	seen := map[int64]bool{}
	for _, p := range added {
		ids, seen[p.ID] = append(ids, p.ID), true
	}
	for _, id := range r.RemovePasskeys {
		if !seen[id] {
			ids, seen[id] = append(ids, id), true
		}
	}
	var out []db.Passkey
	for _, id := range ids {
		p, err := scanPasskey(tx.QueryRow(ctx, `DELETE FROM passkeys WHERE user_id = ? AND id = ? RETURNING `+passkeyColumns, r.UserID, id))
		if errors.Is(notFound(err), db.ErrNotFound) {
			continue // removed meanwhile, or never the user's
		}
		if err != nil {
			return nil, err
		}
		out = append(out, p)
		if err := s.recordIn(ctx, tx, db.SecurityEvent{UserID: r.UserID, Kind: db.EventPasskeyRemoved, At: r.Now,
			Detail: p.Name, Reason: r.Reason, By: r.By}); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// endRemovedPasskeysIn ends the live sessions (but the kept one) that the
// removed passkeys opened.
func (s *Store) endRemovedPasskeysIn(ctx context.Context, tx Q, removed []db.Passkey, keep, by string, now time.Time, userID int64) ([]db.Session, error) {
	if len(removed) == 0 {
		return nil, nil
	}
	args := []any{userID, keep}
	for _, p := range removed {
		args = append(args, p.ID)
	}
	return s.revokeIn(ctx, tx, `user_id = ?4 AND id <> ?5 AND passkey_id IN (`+numbered(6, len(removed))+`)`, db.ReasonPasskeyRemoved, by, now, args...)
}
